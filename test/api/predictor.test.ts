import { FileModelStore } from '../../src/registry/file-model-store.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoadedVersion } from '../../src/registry/model-store.js';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Predictor } from '../../src/api/predictor.js';
import { buildModel } from '../../src/ml/architectures.js';
import { initBackend } from '../../src/ml/backend/index.js';
import { trainingReportFixture } from '../helpers/training-report.js';

/** A store whose next load waits until `open()`: a swap caught in the middle. */
class GatedStore extends FileModelStore {
  private gate: Promise<void> | undefined;
  open: () => void = () => undefined;
  /** Resolves once a load is waiting at the closed gate. */
  held: Promise<void> = Promise.resolve();
  private markHeld: () => void = () => undefined;

  closeGate(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
    this.held = new Promise((resolve) => (this.markHeld = resolve));
  }

  override async loadWithMetadata(version: number): Promise<LoadedVersion> {
    const gate = this.gate;
    this.gate = undefined;
    if (gate) this.markHeld();
    await gate;
    return super.loadWithMetadata(version);
  }
}

describe('predictor: hot swap', () => {
  let dir: string;
  let store: GatedStore;
  let predictor: Predictor;

  async function publish(seed: number): Promise<number> {
    const model = buildModel('seed', seed);
    try {
      return (await store.publish(model, trainingReportFixture(), { jobId: `seed-${seed}` })).version;
    } finally {
      model.dispose();
    }
  }

  beforeAll(async () => {
    await initBackend('wasm');
    dir = await mkdtemp(join(tmpdir(), 'predictor-'));
    store = new GatedStore(dir);
    predictor = new Predictor({ store, logger: pino({ level: 'silent' }) });
  });
  afterAll(async () => {
    predictor.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('when a version is announced while the swap to the one before is loading, then the predictor ends on the newer one', async () => {
    await publish(1);
    await predictor.refresh();
    const second = await publish(2);
    store.closeGate();
    const swapping = predictor.onVersionPublished(second);
    // The swap to `second` has read the store and waits in load(); `third` arrives meanwhile.
    await store.held;
    const third = await publish(3);
    const heard = predictor.onVersionPublished(third);
    store.open();
    await Promise.all([swapping, heard]);
    expect(predictor.version).toBe(third);
  });
});
