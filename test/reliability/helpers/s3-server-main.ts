/**
 * `node --import tsx s3-server-main.ts <dir> <key prefix> <cache dir>`: a scenario's S3 server
 * (test/helpers/s3-server.ts) in a process of its own, as a real store is, so that the scenario's
 * own clients and store watchers, busy in the test process, do not slow the store the service
 * uses. Prints one JSON line (S3ServerInfo) once it listens; runs until killed.
 */
import { S3Server } from '../../helpers/s3-server.js';

/** What the cluster needs to know of the server: how processes and the scenario reach it. */
export interface S3ServerInfo {
  endpoint: string;
  bucket: string;
  /** The environment of a process that uses it as its store under the key prefix. */
  env: Record<string, string>;
  /** A location for S3Objects.open under the key prefix. */
  location: ReturnType<S3Server['location']>;
}

const [dir, prefix, cacheDir] = process.argv.slice(2);
if (!dir || !prefix || !cacheDir) throw new Error('usage: s3-server-main.ts <dir> <key prefix> <cache dir>');
const server = await S3Server.start(dir);
const info: S3ServerInfo = {
  endpoint: server.endpoint,
  bucket: server.bucket,
  env: server.env(prefix),
  location: server.location(`${prefix}/`, cacheDir),
};
process.stdout.write(`${JSON.stringify(info)}\n`);
