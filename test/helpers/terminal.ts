import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Finished {
  code: number;
  /** stdout and stderr together, as the terminal showed them (its line ends are \r\n). */
  output: string;
}

const quote = (arg: string) => `'${arg.replaceAll("'", "'\\''")}'`;

/**
 * Runs `command` with a pseudo-terminal as its stdin, stdout and stderr (util-linux `script`), so
 * `isTTY` is true in it, as for someone typing the command; answers what the terminal showed.
 */
export async function runInTerminal(
  command: string[],
  { env = process.env, timeoutMs = 120_000 }: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<Finished> {
  // -q: no banner; -f: flush as it comes; -e: the command's exit code; /dev/null: no typescript file.
  const args = ['-qfec', command.map(quote).join(' '), '/dev/null'];
  try {
    const { stdout } = await run('script', args, { env, timeout: timeoutMs, maxBuffer: 64 * 1024 ** 2 });
    return { code: 0, output: stdout };
  } catch (error) {
    const e = error as { code: number; stdout: string };
    return { code: e.code, output: e.stdout };
  }
}
