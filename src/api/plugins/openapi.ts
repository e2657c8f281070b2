import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import fp from 'fastify-plugin';
import { API_TAGS, contractTransform, SECURITY_SCHEMES, type ContractOptions } from '../openapi-contract.js';

/**
 * OpenAPI 3 from the same zod schemas that validate the routes, so the docs cannot drift from the
 * code: `/openapi.json` for tools, `/docs` for people. Register before the routes it documents
 * (it sees only routes added after it), with the options the API runs with: they decide which
 * routes need the key and which are rate-limited (src/api/openapi-contract.ts).
 */
export const openApiPlugin = fp<Omit<ContractOptions, 'bodyLimit'>>(
  async (app, options) => {
    await app.register(swagger, {
      openapi: {
        info: {
          title: 'digit-service',
          description:
            'Trains and serves a handwritten-digit CNN (TensorFlow.js) over REST. Errors are ' +
            '`{ "error": { "code", "message", "details"? } }`. Routes marked with a lock need the API ' +
            'key (API_KEY), as `Authorization: Bearer <key>` or `X-API-Key: <key>`.',
          version: '0.1.0',
        },
        tags: API_TAGS.map((tag) => ({ ...tag })),
        components: { securitySchemes: SECURITY_SCHEMES },
      },
      transform: contractTransform({ ...options, bodyLimit: app.initialConfig.bodyLimit! }),
    });
    await app.register(swaggerUi, { routePrefix: '/docs' });
    app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  },
  { name: 'openapi' },
);
