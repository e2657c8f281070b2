/**
 * The API's answers as the page sees them: the typed client's (clients/typescript, generated from
 * the service's OpenAPI document), so the page reads what the contract promises and no more.
 */
import type { SuccessBody } from '../../../clients/typescript/src/index.js';

// The event stream's payloads are not JSON answers the document types: from the job contract itself.
export type { JobProgress } from '../../../src/jobs/job-schema.js';

/** GET /jobs/{id} (and POST /jobs, DELETE /jobs/{id}). */
export type JobView = SuccessBody<'get', '/jobs/{id}'>;
export type JobState = JobView['state'];
export type EpochRecord = JobView['history'][number];
/** GET /jobs. */
export type JobList = SuccessBody<'get', '/jobs'>;

/** GET /models. */
export type ModelList = SuccessBody<'get', '/models'>;
/** GET /models/{version}: a version's metadata and its accuracy on the feedback. */
export type ModelMetadata = SuccessBody<'get', '/models/{version}'>;
export type VersionFeedbackAccuracy = NonNullable<ModelMetadata['feedback']>;

/** POST /predict. */
export type PredictResponse = SuccessBody<'post', '/predict'>;

/** GET /datasets. */
export type DatasetList = SuccessBody<'get', '/datasets'>;
export type DatasetRecord = SuccessBody<'get', '/datasets/{id}'>;

/** GET /feedback. */
export type FeedbackSummary = SuccessBody<'get', '/feedback'>;
/** POST /feedback's answer (201 stored now, 200 stored before). */
export type FeedbackCreated = SuccessBody<'post', '/feedback'>;
/** GET /feedback/examples. */
export type FeedbackExamplesPage = SuccessBody<'get', '/feedback/examples'>;
export type FeedbackExampleView = FeedbackExamplesPage['examples'][number];
