import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { storeLocation } from '../src/store/store-location.js';

const dockerfile = readFileSync('Dockerfile', 'utf8');
const compose = readFileSync('docker-compose.yml', 'utf8');
const scripts = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> })
  .scripts;

const KEY = { API_KEY: 'a-long-enough-deploy-key-0123' };
/** The compose variants a user can run: the shared volumes, and the store in MinIO. */
const VARIANTS = {
  volumes: ['docker-compose.yml'],
  minio: ['docker-compose.yml', 'docker-compose.minio.yml'],
} as const;

/** Every `node dist/<file>.js` a container runs. */
function nodeCommands(text: string): string[] {
  return [...text.matchAll(/["']node["'],\s*["'](dist\/[^"']+\.js)["']/g)].map((m) => m[1]!);
}

/** `docker-compose config` of the files: validated and resolved, without a Docker engine. */
function composeConfig(files: readonly string[], env: NodeJS.ProcessEnv = { ...process.env, ...KEY }) {
  const args = [...files.flatMap((file) => ['-f', file]), 'config'];
  return spawnSync('docker-compose', args, { encoding: 'utf8', env });
}

/**
 * The lines under `key:` (`indent` spaces deep) in the YAML `docker-compose config` prints: deeper
 * lines, and list items at the key's own depth (it writes lists that way).
 */
function block(yaml: string, key: string, indent: number): string {
  const pad = ' '.repeat(indent);
  const lines = yaml.split('\n');
  const start = lines.indexOf(`${pad}${key}:`);
  if (start === -1) return '';
  const inside = (line: string) => line.startsWith(`${pad} `) || line.startsWith(`${pad}- `);
  const end = lines.findIndex((line, i) => i > start && !inside(line));
  return lines.slice(start + 1, end === -1 ? undefined : end).join('\n');
}

/** A service's section of the resolved file. */
const service = (resolved: string, name: string) => block(block(resolved, 'services', 0), name, 2);

/** `KEY: value` lines of a service's environment, unquoted as the container sees them. */
function environment(serviceYaml: string): Record<string, string> {
  return Object.fromEntries(
    [...block(serviceYaml, 'environment', 4).matchAll(/^ {6}(\w+): (.*)$/gm)].map((m) => [
      m[1]!,
      m[2]!.replace(/^(["'])(.*)\1$/, '$2'),
    ]),
  );
}

/** The image's `ENV` settings, which a container's own environment overrides. */
function imageEnvironment(): Record<string, string> {
  const env = /^ENV ((?:.*\\\n)*.*)$/m.exec(dockerfile)![1]!;
  return Object.fromEntries(env.split(/\\\n/).map((line) => line.trim().split('=') as [string, string]));
}

describe('Docker image and compose file', () => {
  it('when docker-compose checks the compose file, then it is valid and wires Redis, the API and 2 workers', () => {
    const result = composeConfig(VARIANTS.volumes);
    expect(result.error, 'docker-compose is installed (apt-get install docker-compose)').toBeUndefined();
    expect(result.stderr).not.toMatch(/ERROR/);
    expect(result.status).toBe(0);
    const resolved = result.stdout;
    for (const name of ['redis', 'api', 'worker']) expect(service(resolved, name)).not.toBe('');
    expect(service(resolved, 'minio')).toBe('');
    expect(resolved).toMatch(/replicas: 2/);
    expect(resolved).toMatch(/- --appendonly\n\s+- "yes"/);
    expect(resolved).toMatch(/noeviction/);
    expect(resolved).toMatch(/published: 3000/);
    // One store for the API and the workers, a directory of volumes: models and datasets for both
    // (the API writes uploads, the workers train on them), checkpoints shared by the workers.
    expect(resolved.match(/STORE_URL: \/data$/gm)?.length).toBe(2);
    expect(resolved.match(/models:\/data\/models/g)?.length).toBe(2);
    expect(resolved.match(/datasets:\/data\/datasets/g)?.length).toBe(2);
    expect(service(resolved, 'worker')).toContain('checkpoints:/data/checkpoints');
  });

  it('when the MinIO override is added, then it is valid, and the API and workers wait for the bucket and store in it', () => {
    const result = composeConfig(VARIANTS.minio);
    expect(result.stderr).not.toMatch(/ERROR/);
    expect(result.status).toBe(0);
    const resolved = result.stdout;

    const minio = service(resolved, 'minio');
    expect(minio).toMatch(/image: quay\.io\/minio\/minio:RELEASE\./);
    expect(minio).toMatch(/- server\n\s+- \/data\n\s+- --console-address\n\s+- :9001/);
    expect(minio).toContain('minio-data:/data');
    expect(minio).toMatch(/test:\n\s+- CMD\n\s+- mc\n\s+- ready\n\s+- local/);
    // The console only on this machine, and the S3 port on the compose network only.
    expect(block(minio, 'ports', 4).trim()).toBe('- 127.0.0.1:9001:9001/tcp');

    const bucketStep = service(resolved, 'create-bucket');
    expect(bucketStep).toMatch(/image: quay\.io\/minio\/mc:RELEASE\./);
    expect(bucketStep).toMatch(
      // $$: the shell in the container reads the credentials, they are not written into the command.
      /mc alias set store http:\/\/minio:9000 "\$\$MINIO_ROOT_USER" "\$\$MINIO_ROOT_PASSWORD"\s+&&\s+mc mb --ignore-existing store\/digit-service/,
    );
    expect(bucketStep).toMatch(/minio:\n\s+condition: service_healthy/);
    const root = environment(minio);
    expect(environment(bucketStep)).toEqual(root);

    for (const name of ['api', 'worker']) {
      const settings = service(resolved, name);
      expect(environment(settings), name).toMatchObject({
        STORE_URL: 's3://digit-service/digits',
        S3_ENDPOINT: 'http://minio:9000',
        S3_FORCE_PATH_STYLE: 'true',
        AWS_ACCESS_KEY_ID: root.MINIO_ROOT_USER,
        AWS_SECRET_ACCESS_KEY: root.MINIO_ROOT_PASSWORD,
        STORE_CACHE_DIR: '/data/cache',
      });
      // Anonymous: a volume of its own for every container, worker replicas included.
      expect(block(settings, 'volumes', 4), name).toMatch(/^ {4}- \/data\/cache$/m);
      expect(settings, name).toMatch(/create-bucket:\n\s+condition: service_completed_successfully/);
    }
  });

  it('when MINIO_ROOT_USER and MINIO_ROOT_PASSWORD are set, then MinIO, the bucket step and the service all take them', () => {
    const result = composeConfig(VARIANTS.minio, {
      ...process.env,
      ...KEY,
      MINIO_ROOT_USER: 'digits-admin',
      MINIO_ROOT_PASSWORD: 'not-the-default-0123',
    });
    expect(result.status).toBe(0);
    const root = { MINIO_ROOT_USER: 'digits-admin', MINIO_ROOT_PASSWORD: 'not-the-default-0123' };
    expect(environment(service(result.stdout, 'minio'))).toEqual(root);
    expect(environment(service(result.stdout, 'create-bucket'))).toEqual(root);
    for (const name of ['api', 'worker'])
      expect(environment(service(result.stdout, name))).toMatchObject({
        AWS_ACCESS_KEY_ID: 'digits-admin',
        AWS_SECRET_ACCESS_KEY: 'not-the-default-0123',
      });
  });

  it.each(Object.entries(VARIANTS))(
    'when the %s variant starts the image, then the API and worker settings pass the config check',
    (variant, files) => {
      const resolved = composeConfig(files).stdout;
      for (const name of ['api', 'worker']) {
        // What the process sees: the image's ENV, overridden by the service's environment.
        const env = { ...imageEnvironment(), ...environment(service(resolved, name)) };
        const location = storeLocation(loadConfig(env));
        expect(location.kind, `${variant} ${name}`).toBe(variant === 'minio' ? 's3' : 'file');
      }
    },
  );

  it.each(Object.entries(VARIANTS))(
    'when API_KEY is not set, then docker-compose refuses the %s variant, saying to set it',
    (_, files) => {
      const env = { ...process.env };
      delete env.API_KEY;
      const result = composeConfig(files, env);
      expect(result.status).not.toBe(0);
      expect(result.stderr).toContain('set API_KEY (16 or more characters)');
      expect(dockerfile).toMatch(/^\s+HOST=0\.0\.0\.0/m);
    },
  );

  it('when the containers start, then they run scripts that package.json has, from files the build makes', () => {
    const commands = [...nodeCommands(dockerfile), ...nodeCommands(compose)];
    expect(commands).toContain('dist/api/server.js');
    expect(commands).toContain('dist/worker/main.js');
    const scripted = Object.values(scripts);
    for (const file of commands) {
      expect(scripted, `a package.json script runs ${file}`).toContain(`node ${file}`);
      expect(existsSync(file.replace(/^dist\//, 'src/').replace(/\.js$/, '.ts')), `src for ${file}`).toBe(
        true,
      );
    }
    expect(dockerfile).toContain('RUN npm run build');
    expect(scripts.build).toBeDefined();
  });

  it('when the image is built, then it is multi-stage, runs as a non-root user and has a health check', () => {
    expect(dockerfile.match(/^FROM /gm)?.length).toBe(2);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK .*\n?.*\/healthz/m);
    expect(dockerfile).toContain('npm ci');
    expect(readFileSync('.dockerignore', 'utf8').split('\n')).toEqual(
      expect.arrayContaining(['node_modules', 'data', '.git']),
    );
  });
});
