import { Redis } from 'ioredis';
import type { z } from 'zod';

export interface Subscription {
  close(): Promise<void>;
}

export interface ChannelHandlers<T> {
  /** Each message that passed the schema. */
  onMessage: (message: T) => void;
  /**
   * A message that did not pass (not JSON, wrong shape): it is dropped and told here, so one bad
   * publisher cannot take a process down. @default ignored
   */
  onInvalid?: (problem: string) => void;
  /** Connection errors (ioredis reconnects and resubscribes meanwhile), and throws of onMessage. @default ignored */
  onError?: (error: Error) => void;
  /** How a message's text becomes what the schema checks; @default JSON.parse */
  decode?: (text: string) => unknown;
}

/** Shown of a dropped message: enough to find its publisher, never a flood in the logs. */
const SHOWN_CHARS = 200;

/**
 * Subscribes to one pub/sub channel and hands on only messages that match `schema`. Opens its own
 * connection (a subscribed connection can run no other command): from the URL, or as a duplicate
 * of the given one, which stays the caller's.
 */
export async function subscribeChannel<T>(
  connection: string | Redis,
  channel: string,
  schema: z.ZodType<T>,
  handlers: ChannelHandlers<T>,
): Promise<Subscription> {
  const { onMessage, onInvalid, onError = () => undefined, decode = JSON.parse } = handlers;
  const subscriber = typeof connection === 'string' ? new Redis(connection) : connection.duplicate();
  // Without a listener ioredis prints every connection error to the console.
  subscriber.on('error', onError);
  subscriber.on('message', (from: string, text: string) => {
    if (from !== channel) return;
    const checked = check(text, schema, decode);
    if (!checked.ok) {
      onInvalid?.(
        `${channel}: dropped a message that ${checked.problem}: ${JSON.stringify(text.slice(0, SHOWN_CHARS))}`,
      );
      return;
    }
    // A throw here would escape through ioredis's socket handler and end the process.
    try {
      onMessage(checked.value);
    } catch (err) {
      onError(err instanceof Error ? err : new Error(String(err)));
    }
  });
  try {
    await subscriber.subscribe(channel);
  } catch (err) {
    subscriber.disconnect();
    throw err;
  }
  return {
    // quit() waits for pending replies; when the connection is already gone it just disconnects.
    close: async () => {
      await subscriber.quit().catch(() => subscriber.disconnect());
    },
  };
}

function check<T>(
  text: string,
  schema: z.ZodType<T>,
  decode: (text: string) => unknown,
): { ok: true; value: T } | { ok: false; problem: string } {
  let decoded: unknown;
  try {
    decoded = decode(text);
  } catch {
    return { ok: false, problem: 'is not JSON' };
  }
  const parsed = schema.safeParse(decoded);
  if (parsed.success) return { ok: true, value: parsed.data };
  return { ok: false, problem: `does not match (${parsed.error.issues.map((i) => i.message).join('; ')})` };
}
