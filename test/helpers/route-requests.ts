import type { Server } from 'node:http';
import request from 'supertest';
import type { HttpRequest } from './raw-http.js';

export type RouteRequest = HttpRequest & { headers: Record<string, string> };

const JSON_TYPE = 'application/json';

/** A value goes as JSON; text and bytes go as they are, to send what is not JSON. */
const bodyOf = (body: unknown): Buffer =>
  Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));

const withBody = (method: string, path: string, body: unknown, type: string, headers = {}): RouteRequest => ({
  method,
  path,
  headers: { 'content-type': type, ...headers },
  body: bodyOf(body),
});

const query = (text: string) => (text ? `?${text}` : '');

/**
 * One function a route, making its request from what a test varies (the body and its type, the
 * query, the path's parameters), good or bad. The api tests send them with `send`, the
 * reliability scenarios as bytes with `sendRaw`.
 */
export const routes = {
  postJob: (body: unknown, type = JSON_TYPE, headers: Record<string, string> = {}) =>
    withBody('POST', '/jobs', body, type, headers),
  listJobs: (search = ''): RouteRequest => ({ method: 'GET', path: `/jobs${query(search)}`, headers: {} }),
  job: (method: 'GET' | 'DELETE', id: string): RouteRequest => ({ method, path: `/jobs/${id}`, headers: {} }),
  jobEvents: (id: string): RouteRequest => ({ method: 'GET', path: `/jobs/${id}/events`, headers: {} }),
  predict: (body: unknown, type = JSON_TYPE, search = '') =>
    withBody('POST', `/predict${query(search)}`, body, type),
  model: (method: 'GET' | 'DELETE', version: string): RouteRequest => ({
    method,
    path: `/models/${version}`,
    headers: {},
  }),
  alias: (method: 'GET' | 'PUT' | 'DELETE', name: string, body: unknown) =>
    withBody(method, `/models/aliases/${name}`, body, JSON_TYPE),
  uploadDataset: (body: unknown, type = 'application/zip', search = 'name=upload') =>
    withBody('POST', `/datasets${query(search)}`, body, type),
  dataset: (method: 'GET' | 'DELETE', id: string): RouteRequest => ({
    method,
    path: `/datasets/${id}`,
    headers: {},
  }),
  postFeedback: (body: unknown, type = JSON_TYPE, search = '') =>
    withBody('POST', `/feedback${query(search)}`, body, type),
  feedbackExamples: (search = ''): RouteRequest => ({
    method: 'GET',
    path: `/feedback/examples${query(search)}`,
    headers: {},
  }),
  feedbackItem: (method: 'GET' | 'DELETE', id: string): RouteRequest => ({
    method,
    path: `/feedback/${id}`,
    headers: {},
  }),
  datasetSamples: (id: string): RouteRequest => ({
    method: 'GET',
    path: `/datasets/${id}/samples.png`,
    headers: {},
  }),
};

/** Sends a route's request to an app's server through supertest, the body byte for byte. */
export function send(server: Server, { method, path, headers, body }: RouteRequest): request.Test {
  const test = request(server)[method.toLowerCase() as 'post'](path).set(headers);
  // superagent would otherwise encode a Buffer itself (as JSON, or as a form) for those types.
  return body ? test.serialize((bytes: Buffer) => bytes as unknown as string).send(body) : test;
}
