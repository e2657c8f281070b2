import { ConfigError } from './config.js';

/**
 * Runs a process entry point: `start` sets the process up and returns how to stop it, which runs
 * once on SIGTERM or SIGINT before a clean exit. A failure to start exits 1 with the reason
 * (a bad setting is named, without a stack trace).
 */
export function runProcess(start: () => Promise<(signal: string) => Promise<void>>): void {
  start().then(
    (stop) => {
      let stopping = false;
      const onSignal = (signal: string) => {
        // Ctrl-C reaches a whole process group, and `npm start` also passes it on to its
        // children: a second signal must not cut the first one's clean stop short.
        if (stopping) return;
        stopping = true;
        stop(signal).then(
          () => process.exit(0),
          (error: unknown) => {
            process.stderr.write(`error while stopping: ${String(error)}\n`);
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
    },
    (error: unknown) => {
      const reason = error instanceof ConfigError ? error.message : String((error as Error).stack ?? error);
      process.stderr.write(`${reason}\n`);
      process.exit(1);
    },
  );
}
