/** Starts the long-running streamer somewhere (a Fargate task on AWS). */
export interface StreamerLauncher {
  /**
   * Start a streamer for the flow and return an identifier of what was started. Only the flow id is passed: the
   * streamer reads its config from the state store. Starting twice is harmless: streamers take a lease per flow.
   */
  launch(flow: string): Promise<string>;
}
