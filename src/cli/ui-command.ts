import { loadConfigFile } from '../config/load.js';
import { serveFlow } from '../ui/serve-flow.js';
import type { UiFlags } from './main.js';

/** `ferry ui`: serve the dashboard until Ctrl-C. It only reads: the flow runs (or not) in its own `ferry run`. */
export async function uiCommand(path: string, flags: UiFlags): Promise<number> {
  const config = await loadConfigFile(path);
  const served = await serveFlow(config, { ...flags, keepAlive: true });
  process.stderr.write(`ferry: dashboard at ${served.dashboard.openUrl} for ${path} (Ctrl-C to stop)\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await served.close();
  return 0;
}
