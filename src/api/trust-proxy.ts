import type { FastifyServerOptions } from 'fastify';

/**
 * TRUST_PROXY as Fastify takes it. A number of hops becomes a function that trusts that many
 * addresses counted from the socket: Fastify 5.12 ignores a bare number (it trusts no hop, as a
 * direct client could claim any address through enough X-Forwarded-For entries), so hops are for
 * an API that only the proxies can reach.
 */
export function trustProxyOption(setting: boolean | number | string[]): FastifyServerOptions['trustProxy'] {
  if (typeof setting !== 'number') return setting;
  return (_address: string, hop: number) => hop < setting;
}
