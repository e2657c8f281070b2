/** One way to write a request target for a route's path. */
export interface PathVariant {
  kind: string;
  target: string;
}

const hex = (c: string) => c.charCodeAt(0).toString(16).padStart(2, '0');

/**
 * Request targets that differ from `path` as text but that a router may still take for it: the
 * ways around an auth check that reads the URL (issue 12). `path` is absolute, such as
 * /jobs/no-such-job; none of the variants equals it.
 */
export function pathVariants(path: string): PathVariant[] {
  const segments = path.split('/').slice(1);
  const [first, ...rest] = segments;
  const tail = rest.length ? `/${rest.join('/')}` : '';
  const encodeFirst = (upper: boolean) => {
    const code = hex(first![0]!);
    return `/%${upper ? code.toUpperCase() : code}${first!.slice(1)}${tail}`;
  };
  const variants: PathVariant[] = [
    { kind: 'encoded letter, upper-case hex', target: encodeFirst(true) },
    { kind: 'encoded letter, lower-case hex', target: encodeFirst(false) },
    { kind: 'every letter encoded', target: `/${[...first!].map((c) => `%${hex(c)}`).join('')}${tail}` },
    { kind: 'absolute form', target: `http://x${path}` },
    { kind: 'absolute form, upper-case scheme and host', target: `HTTP://LOCALHOST:1${path}` },
    { kind: 'absolute form, https', target: `https://127.0.0.1${path}` },
    { kind: 'absolute form, encoded letter', target: `http://x${encodeFirst(true)}` },
    { kind: 'doubled slash at the start', target: `/${path}` },
    { kind: 'trailing slash', target: `${path}/` },
    { kind: 'dot-dot segment', target: `/x/..${path}` },
    { kind: 'dot segment', target: `/.${path}` },
    { kind: 'encoded dot-dot segment', target: `/x/%2e%2e${path}` },
    { kind: 'encoded dot segment', target: `/%2E${path}` },
    { kind: 'trailing dot segment', target: `${path}/.` },
    { kind: 'fragment', target: `${path}#x` },
    { kind: 'empty fragment', target: `${path}#` },
    { kind: 'fragment after a query', target: `${path}?a=1#x` },
  ];
  if (rest.length > 0) {
    const last = rest.at(-1)!;
    const before = path.slice(0, path.length - last.length);
    variants.push(
      { kind: 'encoded slash, upper-case hex', target: `/${segments.join('%2F')}` },
      { kind: 'encoded slash, lower-case hex', target: `/${segments.join('%2f')}` },
      { kind: 'doubled slash inside', target: `/${first}//${rest.join('/')}` },
      { kind: 'encoded letter in the last segment', target: `${before}%${hex(last[0]!)}${last.slice(1)}` },
    );
  }
  return variants;
}

const MUTATING = new Set(['post', 'put', 'delete', 'patch']);

/**
 * Every state-changing operation an OpenAPI document lists, its path parameters filled in with
 * the values given (`{id}` -> ids.id), so each can be sent as it is.
 */
export function stateChangingRoutes(
  spec: { paths: Record<string, Record<string, unknown>> },
  ids: Record<string, string>,
): { method: string; path: string }[] {
  return Object.entries(spec.paths).flatMap(([path, operations]) =>
    Object.keys(operations)
      .filter((method) => MUTATING.has(method))
      .map((method) => ({
        method: method.toUpperCase(),
        path: path.replace(/\{(\w+)\}/g, (_, name: string) => ids[name] ?? name),
      })),
  );
}
