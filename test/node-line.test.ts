import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as {
  engines: { node: string };
  devDependencies: Record<string, string>;
};
const nvmrc = readFileSync('.nvmrc', 'utf8').trim();
const dockerfile = readFileSync('Dockerfile', 'utf8');
const ensureNode = readFileSync('scripts/ensure-node.sh', 'utf8');

/** engines.node as a lower bound: ">=24.11" -> [24, 11]. */
const floor = /^>=(\d+)\.(\d+)$/.exec(pkg.engines.node);

describe('the Node line', () => {
  it('when engines names it, then it is a lower bound on the .nvmrc line', () => {
    expect(floor, `engines.node is ${pkg.engines.node}`).not.toBeNull();
    expect(nvmrc).toMatch(/^\d+$/);
    expect(floor![1]).toBe(nvmrc);
  });

  it('when the image is built, then both stages run the .nvmrc line', () => {
    const bases = [...dockerfile.matchAll(/^FROM node:(\d+)-\S+ AS (\w+)$/gm)].map((m) => [m[2], m[1]]);
    expect(bases).toEqual([
      ['build', nvmrc],
      ['runtime', nvmrc],
    ]);
    expect(dockerfile.match(/^FROM /gm)).toHaveLength(2);
  });

  it("when types are checked, then they are the .nvmrc line's", () => {
    expect(pkg.devDependencies['@types/node']).toMatch(new RegExp(`^\\^${nvmrc}\\.`));
  });

  it('when CI fetches Node, then the pinned release is on the line and within engines', () => {
    const pinned = /^NODE_PINNED=(\d+)\.(\d+)\.(\d+)$/m.exec(ensureNode);
    expect(pinned).not.toBeNull();
    expect(pinned![1]).toBe(nvmrc);
    expect(Number(pinned![2])).toBeGreaterThanOrEqual(Number(floor![2]));
  });

  it('when the tests run, then they run on a Node that engines allows (scripts/ensure-node.sh)', () => {
    const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
    const [least, leastMinor] = [Number(floor![1]), Number(floor![2])];
    expect(major > least || (major === least && minor >= leastMinor), `Node ${process.version}`).toBe(true);
  });
});
