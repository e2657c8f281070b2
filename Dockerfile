# syntax=docker/dockerfile:1
# Build: compile TypeScript with the dev dependencies, then keep only what runs. Node 24, the line
# of .nvmrc and package.json's engines, in both stages.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# The web page (issue 6): vite builds it into dist/web, which the runtime stage copies with dist.
COPY web ./web
# The page calls the API through the typed client, which vite bundles from its source.
COPY clients ./clients
RUN npm run build && npm prune --omit=dev

# Runtime: the compiled service, production dependencies, a non-root user. MALLOC_ARENA_MAX=2:
# fewer glibc arenas keep the API's memory about 30 % lower after image floods (docs/RELIABILITY.md).
# HOST=0.0.0.0 so the port can be published: the API then refuses to start without API_KEY
# (or ALLOW_UNAUTHENTICATED=true, to run open on purpose). Workers listen on nothing and need neither.
# The store is the directory /data unless STORE_URL says otherwise (s3://bucket/prefix); with S3,
# STORE_CACHE_DIR is local scratch space. Both under /data: /app belongs to root, not to node.
FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    STORE_URL=/data \
    STORE_CACHE_DIR=/data/cache \
    MALLOC_ARENA_MAX=2
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# Volumes mounted here take this ownership, so the node user can write models, checkpoints,
# datasets and its cache.
RUN mkdir -p /data/models /data/checkpoints /data/datasets /data/cache && chown -R node:node /data
USER node
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:3000/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# The API by default (npm run serve:api); workers run the same image with `node dist/worker/main.js`.
CMD ["node", "dist/api/server.js"]
