import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import fp from 'fastify-plugin';

export interface WebOptions {
  /** The built page (`npm run build:web`); @default dist/web of this checkout */
  root?: string;
}

// From source (tsx) this file is src/api/plugins/web.ts, built it is dist/api/plugins/web.js: both
// find the page in dist/web, where vite writes it.
const fromSource = import.meta.url.endsWith('.ts');
export const DEFAULT_WEB_ROOT = fileURLToPath(
  new URL(fromSource ? '../../../dist/web/' : '../../web/', import.meta.url),
);

/**
 * The page's own Content-Security-Policy (the API turns helmet's off because /docs needs inline
 * code): scripts, styles and requests from this origin only; `data:` images for the 28x28 input
 * the API returns as a data URL. No upgrade-insecure-requests: the service is often reached over
 * plain HTTP on a LAN, where it would break every request.
 */
export const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

// Vite puts a content hash in every file name under assets/, so those never change.
const IMMUTABLE = 'public, max-age=31536000, immutable';

const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>digit-service</title></head>
<body><h1>The web page is not built</h1>
<p>Run <code>npm run build:web</code> (<code>npm start</code> and <code>npm run build</code> do it too),
then restart the API. The REST API works without it: see <a href="/docs">/docs</a>.</p></body></html>
`;

/**
 * The web page at `/`: static files from the vite build, hidden from the OpenAPI
 * document. Without a build, `/` says how to make one instead of failing the API's start.
 */
export const webPlugin = fp<WebOptions>(
  async (app, options) => {
    const root = path.resolve(options.root ?? DEFAULT_WEB_ROOT);
    if (!existsSync(path.join(root, 'index.html'))) {
      app.log.warn({ root }, 'the web page is not built (npm run build:web): / shows how to build it');
      app.get('/', { schema: { hide: true } }, async (_request, reply) =>
        reply
          .status(503)
          .type('text/html; charset=utf-8')
          .header('content-security-policy', PAGE_CSP)
          .send(NOT_BUILT),
      );
      return;
    }
    // Its own scope: /docs registers @fastify/static too, and reply decorators may exist only once.
    await app.register(async (scope) => {
      await scope.register(fastifyStatic, {
        root,
        prefix: '/',
        decorateReply: false,
        index: 'index.html',
        cacheControl: false,
        setHeaders: (reply, file) => {
          reply.header('content-security-policy', PAGE_CSP);
          const hashed = path.relative(root, file).startsWith(`assets${path.sep}`);
          reply.header('cache-control', hashed ? IMMUTABLE : 'no-cache');
        },
      });
    });
  },
  { name: 'web' },
);
