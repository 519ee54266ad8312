# gpubot production image.
#
#   docker build -t gpubot:local .
#   docker run --rm gpubot:local help
#   docker compose up -d            # the bot + PostgreSQL, see docker-compose.yml
#
# Stages: deps (every dependency, better-sqlite3 compiled) -> prod-deps (dev dependencies
# pruned) and build (prisma generate + tsc) -> the runtime image (node:20-bookworm-slim, no
# compiler, production dependencies only, user node). Dependencies are installed from
# package.json + package-lock.json alone, before any source is copied: a code change reuses
# the install layers and the runtime image's node_modules layer, and only dist/ changes.

# ---------------------------------------------------------------------------------------------
# deps: all dependencies. node:20-bookworm has g++, make and python3 for better-sqlite3.
FROM node:20-bookworm AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no install script runs. npm 10 (the image's) ignores package.json's
# "allowScripts" and would run every one, and @prisma/engines' postinstall downloads engine
# binaries the bot does not use. The one native addon is then compiled from source against the
# image's own Node headers (/usr/local/include/node), with nothing downloaded: no prebuilt binary,
# no headers tarball. ssh2's optional crypto addon likewise: the SSH gateway's AES-GCM and the host
# connections run several times faster with it.
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npm_config_build_from_source=true npm_config_nodedir=/usr/local npm_config_jobs=max npm rebuild better-sqlite3 \
 && node -e "new (require('better-sqlite3'))(':memory:').close()" \
 && npm_config_nodedir=/usr/local npm rebuild ssh2 \
 && node -e "process.exit(require('ssh2/lib/protocol/crypto.js').bindingAvailable ? 0 : 1)" \
 && npm cache clean --force
# resvg's native binary (an optional dependency per platform and libc) when npm skipped it.
RUN node -e "require('@resvg/resvg-js')" 2>/dev/null \
 || npm install --no-save --ignore-scripts --no-audit --no-fund --libc=glibc \
      "@resvg/resvg-js-linux-$(node -p process.arch)-gnu@$(node -p "require('@resvg/resvg-js/package.json').version")" \
 && node -e "require('@resvg/resvg-js')" && npm cache clean --force

# prod-deps: the same tree without dev dependencies. --omit=optional too: the prisma CLI and
# typescript are optional peers of @prisma/client ("devOptional" in the lockfile), which
# --omit=dev alone keeps; the only optional production packages are ssh2's cpu-features (never
# compiled: ssh2 runs without it) and pg-cloudflare (Cloudflare Workers only). better-sqlite3
# keeps its compiled addon only, as a prebuilt install has it (no sources, no object files).
FROM deps AS prod-deps
RUN npm prune --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund \
 && cd node_modules/better-sqlite3 \
 && mv build/Release/better_sqlite3.node /tmp/ \
 && rm -rf build deps src binding.gyp \
 && mkdir -p build/Release && mv /tmp/better_sqlite3.node build/Release/ \
 && cd /app && node -e "new (require('better-sqlite3'))(':memory:').close()"

# build: the Prisma clients (generated into src/db/, no engine downloaded: the build script sets
# PRISMA_SCHEMA_ENGINE_BINARY) and tsc into dist/.
FROM deps AS build
COPY tsconfig.json tsconfig.build.json prisma.config.ts ./
COPY prisma ./prisma
COPY src ./src
# The dashboard's page and the charts' font; the build copies them into dist/static.
COPY static ./static
RUN npm run build && chmod 755 dist/cli/main.js

# ---------------------------------------------------------------------------------------------
# runtime
FROM node:20-bookworm-slim
ENV NODE_ENV=production
# A small young generation: the idle bot stays well under 150 MB RSS, and 4 MB still holds an SSH
# gateway forward's in-flight data (2 MB halved its speed; docs/BENCHMARKS.md, "Memory", "SSH gateway").
ENV NODE_OPTIONS=--max-semi-space-size=4
WORKDIR /app
# data/: the default SQLite location (DATABASE_URL=file:./data/gpubot.db), writable by the bot;
# mount a volume there to keep a SQLite database. `gpubot` on PATH for `docker exec ... gpubot chat`.
RUN mkdir -p /app/data && chown node:node /app/data \
 && ln -s /app/dist/cli/main.js /usr/local/bin/gpubot
# Everything below is owned by root and read-only for the bot. Least often changed first.
COPY package.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
# The migrations the bot applies at start (prisma/migrations, prisma/postgres/migrations).
COPY prisma ./prisma
COPY --from=build /app/dist ./dist
USER node
# No HEALTHCHECK here: the /healthz side port is optional config (`http: {port, host}`);
# docker-compose.yml sets one up.
ENTRYPOINT ["gpubot"]
CMD ["start"]
