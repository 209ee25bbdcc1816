/** Starts the long-running streamer somewhere (a Fargate task on AWS). */
export interface StreamerLauncher {
  /** Returns an identifier of what was started. Starting twice is harmless: streamers take a lease per flow. */
  launch(flow: string, config: unknown): Promise<string>;
}
