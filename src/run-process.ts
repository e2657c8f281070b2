import { ConfigError } from './config.js';

/**
 * Runs a process entry point: `start` sets the process up and returns how to stop it, which runs
 * once on SIGTERM or SIGINT before a clean exit. A failure to start exits 1 with the reason
 * (a bad setting is named, without a stack trace).
 */
export function runProcess(start: () => Promise<(signal: string) => Promise<void>>): void {
  start().then(
    (stop) => {
      const onSignal = (signal: string) => {
        stop(signal).then(
          () => process.exit(0),
          (error: unknown) => {
            process.stderr.write(`error while stopping: ${String(error)}\n`);
            process.exit(1);
          },
        );
      };
      process.once('SIGTERM', onSignal);
      process.once('SIGINT', onSignal);
    },
    (error: unknown) => {
      const reason = error instanceof ConfigError ? error.message : String((error as Error).stack ?? error);
      process.stderr.write(`${reason}\n`);
      process.exit(1);
    },
  );
}
