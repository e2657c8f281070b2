import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { modelMetadataSchema } from '../../registry/model-store.js';
import { errorBodySchema } from '../error-handler.js';
import { notFound } from '../http-error.js';

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
};
