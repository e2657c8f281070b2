import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { aliasNameSchema } from '../../registry/model-aliases.js';
import { modelMetadataSchema } from '../../registry/model-store.js';
import { errorBodySchema } from '../error-handler.js';
import { HttpError, notFound } from '../http-error.js';

const versionParams = z.object({ version: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER) });
const summarySchema = modelMetadataSchema.pick({
  version: true,
  createdAt: true,
  jobId: true,
  architecture: true,
  backend: true,
  parameterCount: true,
  accuracy: true,
});

export const modelRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/models',
    {
      schema: {
        summary: 'Model versions, newest first, and the one being served',
        response: { 200: z.object({ serving: z.int().nullable(), models: z.array(summarySchema) }) },
      },
    },
    async () => {
      const models = (await app.store.list()).reverse().map((m) => summarySchema.parse(m));
      return { serving: app.predictor.version, models };
    },
  );

  app.get(
    '/models/:version',
    {
      schema: {
        summary: "A version's metadata: parameters, metrics, history, confusion matrix, errors",
        params: versionParams,
        response: { 200: modelMetadataSchema, 400: errorBodySchema, 404: errorBodySchema },
      },
    },
    async (request) => {
      const metadata = await app.store.get(request.params.version);
      if (!metadata) throw notFound(`model version ${request.params.version}`);
      return metadata;
    },
  );

  app.delete(
    '/models/:version',
    {
      schema: {
        summary: 'Delete a version (refused while an alias points at it)',
        params: versionParams,
        response: { 204: z.null(), 400: errorBodySchema, 404: errorBodySchema, 409: errorBodySchema },
      },
    },
    async (request, reply) => {
      const { version } = request.params;
      const aliases = await app.aliases.pointingAt(version);
      if (aliases.length > 0) {
        throw new HttpError(
          409,
          'conflict',
          `model version ${version} is aliased as ${aliases.join(', ')}; move the alias first`,
        );
      }
      if (!(await app.store.remove(version))) throw notFound(`model version ${version}`);
      request.log.info({ modelVersion: version }, 'model version deleted');
      // If it was the one served, fall back to the newest remaining.
      await app.predictor.refresh();
      return reply.status(204).send(null);
    },
  );

  const aliasParams = z.object({ name: aliasNameSchema });

  app.get(
    '/models/aliases',
    {
      schema: {
        summary: 'Every alias and the version it names',
        response: { 200: z.record(z.string(), z.int()) },
      },
    },
    async () => app.aliases.all(),
  );

  app.put(
    '/models/aliases/:name',
    {
      schema: {
        summary: 'Point an alias at a version (promote, roll back)',
        params: aliasParams,
        body: z.object({ version: z.int().min(1).max(Number.MAX_SAFE_INTEGER) }).strict(),
        response: {
          200: z.object({ name: z.string(), version: z.int() }),
          400: errorBodySchema,
          404: errorBodySchema,
        },
      },
    },
    async (request) => {
      const { name } = request.params;
      const { version } = request.body;
      if (!(await app.store.get(version))) throw notFound(`model version ${version}`);
      await app.aliases.set(name, version);
      request.log.info({ alias: name, modelVersion: version }, 'alias moved');
      return { name, version };
    },
  );

  app.delete(
    '/models/aliases/:name',
    {
      schema: {
        summary: 'Remove an alias',
        params: aliasParams,
        response: { 204: z.null(), 400: errorBodySchema, 404: errorBodySchema },
      },
    },
    async (request, reply) => {
      if (!(await app.aliases.remove(request.params.name))) throw notFound(`alias ${request.params.name}`);
      return reply.status(204).send(null);
    },
  );
};
