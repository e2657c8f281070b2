import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const dockerfile = readFileSync('Dockerfile', 'utf8');
const compose = readFileSync('docker-compose.yml', 'utf8');
const scripts = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> })
  .scripts;

/** Every `node dist/<file>.js` a container runs. */
function nodeCommands(text: string): string[] {
  return [...text.matchAll(/["']node["'],\s*["'](dist\/[^"']+\.js)["']/g)].map((m) => m[1]!);
}

describe('Docker image and compose file', () => {
  it('when docker-compose checks the compose file, then it is valid and wires Redis, the API and 2 workers', () => {
    // No Docker engine runs here; `config` validates and resolves the file without one.
    const result = spawnSync('docker-compose', ['-f', 'docker-compose.yml', 'config'], {
      encoding: 'utf8',
      env: { ...process.env, API_KEY: 'a-long-enough-deploy-key-0123' },
    });
    expect(result.error, 'docker-compose is installed (apt-get install docker-compose)').toBeUndefined();
    expect(result.stderr).not.toMatch(/ERROR/);
    expect(result.status).toBe(0);
    const resolved = result.stdout;
    for (const service of ['redis:', 'api:', 'worker:']) expect(resolved).toContain(`  ${service}`);
    expect(resolved).toMatch(/replicas: 2/);
    expect(resolved).toMatch(/- --appendonly\n\s+- "yes"/);
    expect(resolved).toMatch(/noeviction/);
    expect(resolved).toMatch(/published: 3000/);
    // One model store for the API and the workers; checkpoints shared by the workers.
    expect(resolved.match(/models:\/data\/models/g)?.length).toBe(2);
    expect(resolved).toContain('checkpoints:/data/checkpoints');
    // One dataset store too: the API writes uploads, the workers train on them.
    expect(resolved.match(/datasets:\/data\/datasets/g)?.length).toBe(2);
    expect(resolved.match(/DATASET_DIR: \/data\/datasets/g)?.length).toBe(2);
  });

  it('when API_KEY is not set, then docker-compose refuses the file, saying to set it', () => {
    const env = { ...process.env };
    delete env.API_KEY;
    const result = spawnSync('docker-compose', ['-f', 'docker-compose.yml', 'config'], {
      encoding: 'utf8',
      env,
    });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('set API_KEY (16 or more characters)');
    expect(dockerfile).toMatch(/^\s+HOST=0\.0\.0\.0/m);
  });

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
