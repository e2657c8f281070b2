import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/** The API's address for `npm run dev:web`, which serves the page with hot reload and forwards the API. */
const api = process.env.API_URL ?? 'http://127.0.0.1:3000';
const apiPaths = [
  '/predict',
  '/jobs',
  '/models',
  '/datasets',
  '/feedback',
  '/samples',
  '/openapi.json',
  '/docs',
  '/healthz',
  '/readyz',
];

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  // The API serves the build from dist/web (src/api/plugins/web.ts).
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
  },
  server: { proxy: Object.fromEntries(apiPaths.map((path) => [path, api])) },
});
