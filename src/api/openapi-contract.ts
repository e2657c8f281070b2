import { STATUS_CODES } from 'node:http';
import type { FastifySchema } from 'fastify';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import { acceptedTypes, errorBodySchema } from './error-handler.js';
import { checksHost, needsKey, routeAuth, type AuthOptions } from './plugins/auth.js';
import { bucketLimits, bucketOf, type RateLimitSettings } from './plugins/rate-limit.js';

/** The groups of /docs; a route's tag is its own (`schema.tags`), else its path's first segment's. */
export const API_TAGS = [
  { name: 'predict', description: 'Classify 28x28 images with the served model (or a pinned version)' },
  { name: 'jobs', description: 'Training jobs: start one, follow it (Server-Sent Events), cancel it' },
  { name: 'models', description: 'Published model versions, their misclassified digits, and aliases' },
  { name: 'datasets', description: 'The built-in datasets and uploaded ones that jobs train on' },
  { name: 'feedback', description: 'Corrections sent by clients, and how each model version does on them' },
  { name: 'health', description: 'Liveness and readiness, for orchestrators and load balancers' },
  { name: 'metrics', description: 'Prometheus metrics' },
  { name: 'samples', description: 'MNIST test digits to try /predict with, as PNG or as a ready JSON body' },
] as const;

type Tag = (typeof API_TAGS)[number]['name'];
const TAG_OF_SEGMENT: Record<string, Tag> = {
  predict: 'predict',
  jobs: 'jobs',
  models: 'models',
  datasets: 'datasets',
  feedback: 'feedback',
  healthz: 'health',
  readyz: 'health',
  metrics: 'metrics',
  samples: 'samples',
};

/** How the API key may be sent (src/api/plugins/auth.ts takes either). */
export const SECURITY_SCHEMES = {
  bearerKey: {
    type: 'http',
    scheme: 'bearer',
    description: 'API_KEY as `Authorization: Bearer <key>`',
  },
  apiKeyHeader: {
    type: 'apiKey',
    in: 'header',
    name: 'X-API-Key',
    description: 'API_KEY as `X-API-Key: <key>`',
  },
} as const;

/** Either scheme will do: two alternatives, not both at once. */
const KEYED = [{ bearerKey: [] }, { apiKeyHeader: [] }];

/** What the running API is configured with, which decides each route's security and error answers. */
export interface ContractOptions {
  auth: AuthOptions;
  rateLimit?: RateLimitSettings | undefined;
  /** The body limit of routes that set none of their own (Fastify's `bodyLimit`). */
  bodyLimit: number;
}

type Document = Parameters<typeof jsonSchemaTransform>[0];
type JsonObject = Record<string, unknown>;

const BINARY = { type: 'string', format: 'binary' };

/** Answers from layers that run before any route's own code (auth, rate limit). */
const BEFORE_THE_ROUTE = new Set(['401', '403', '429']);

const descriptionOf = (schema: unknown, status: string) =>
  (schema as { description?: string }).description ?? STATUS_CODES[status] ?? 'Error';

/**
 * The OpenAPI transform for every route, so none can leave out what all share: its tag, its
 * security and the error answers the service's own layers give it, each as the running
 * configuration has it (a 401 only where a key is asked for, a 429 only where a limit counts), and
 * a request body under every content type the route takes (`config.accepts`, which its 415
 * answer names too). What a route declares itself is kept; the rest is added. The zod schemas are
 * then turned into JSON Schema as before.
 */
export function contractTransform(options: ContractOptions): typeof jsonSchemaTransform {
  return (document) => {
    const { route } = document;
    const schema = document.schema as (FastifySchema & { hide?: boolean }) | undefined;
    if (!schema || schema.hide) return jsonSchemaTransform(document);
    const auth = routeAuth([route.method].flat()[0]!, route.config);
    const keyed = needsKey(options.auth, auth);
    const hasBody = schema.body !== undefined;
    const accepts = acceptedTypes({ config: route.config, schema });

    const errors: Record<number, string> = {};
    if (schema.body ?? schema.querystring ?? schema.params ?? schema.headers)
      errors[400] =
        'The request is not valid: a parameter, a header or the body (`details` names each field)';
    if (keyed)
      errors[401] =
        '`unauthorized`: the API key is missing or wrong (send `Authorization: Bearer <key>` or `X-API-Key: <key>`)';
    if (checksHost(options.auth, auth))
      errors[403] =
        '`forbidden_host`: without API_KEY, this route answers only requests addressed to localhost, 127.0.0.1 or [::1]';
    if (schema.params) errors[404] = '`not_found`: nothing has this id';
    if (hasBody) {
      errors[413] = `\`payload_too_large\`: the body is over ${route.bodyLimit ?? options.bodyLimit} bytes`;
      errors[415] = `\`unsupported_media_type\`: send ${accepts.join(' or ')}`;
    }
    const limit = bucketLimits(options.rateLimit)[bucketOf(route.config)];
    if (limit > 0)
      errors[429] = `\`rate_limited\`: over ${limit} requests per minute from this client (Retry-After says when to retry)`;

    const response = { ...(schema.response as Record<string, unknown> | undefined) };
    for (const [status, description] of Object.entries(errors)) {
      const declared = response[status];
      if (declared === undefined || declared === errorBodySchema)
        response[status] = errorBodySchema.describe(description);
      // The key, Host and rate-limit checks answer before the route: both meanings hold.
      else if (BEFORE_THE_ROUTE.has(status))
        response[status] = errorBodySchema.describe(`${descriptionOf(declared, status)}; or ${description}`);
    }
    // Error answers a route declares without saying what they mean get at least the status's name.
    for (const [status, declared] of Object.entries(response))
      if (declared === errorBodySchema)
        response[status] = errorBodySchema.describe(descriptionOf({}, status));

    const withErrors = Object.keys(response).length > 0 ? { ...schema, response } : schema;
    const transformed = jsonSchemaTransform({ ...document, schema: withErrors } as Document);
    const out = transformed.schema as JsonObject & { response?: Record<string, JsonObject> };
    const tag = TAG_OF_SEGMENT[route.url.split('/')[1] ?? ''];
    if (out.tags === undefined && tag) out.tags = [tag];
    if (keyed) out.security = KEYED;
    if (hasBody) {
      const json = out.body;
      out.body = {
        content: Object.fromEntries(
          accepts.map((type) => [type, { schema: type === 'application/json' ? json : BINARY }]),
        ),
      };
      delete out.consumes;
    }
    const responses = out.response ?? {};
    // A 204 has no body: `type: 'null'` is how @fastify/swagger is told to give it no content.
    const noContent = responses[204];
    if (noContent) responses[204] = { type: 'null', description: noContent.description ?? 'No Content' };
    addHeader(responses[401], 'WWW-Authenticate', 'Bearer');
    if (limit > 0) addHeader(responses[429], 'Retry-After', 'seconds until the count starts again');
    return transformed;
  };
}

function addHeader(response: JsonObject | undefined, name: string, description: string): void {
  if (!response) return;
  const headers = (response.headers ?? {}) as JsonObject;
  response.headers = { ...headers, [name]: { type: 'string', description } };
}
