import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';
import sharp from 'sharp';
import { build } from 'vite';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { loadDataset } from '../../src/ml/data/dataset.js';
import { IMAGE_PIXELS } from '../../src/ml/image-shape.js';

/**
 * The web page in a real headless Chromium (Debian's, driven by playwright-core), for the tests in
 * test/web/. Screenshots go to ARTIFACTS for a person to look at; nothing there is committed.
 */
// Debian's chromium by default; CHROMIUM_PATH points elsewhere (e.g. a Chrome on a laptop).
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const ARTIFACTS = 'test-artifacts/web';
// How long the page may take to show what it should: a net for a busy machine, not a bar (speed
// is measured in bench/).
export const PATIENCE_MS = 30_000;

/** The page as `npm run build:web` makes it, into `root`; answers `root`. */
export async function buildWebPage(root: string): Promise<string> {
  await build({
    configFile: 'web/vite.config.ts',
    logLevel: 'warn',
    build: { outDir: root, emptyOutDir: true },
  });
  return root;
}

export interface Chromium {
  /** Set before the block's first test. */
  browser: BrowserContext;
  /** Uncaught errors and CSP violations of the pages opened, emptied before each test. */
  problems: string[];
  open(url: string): Promise<Page>;
}

/**
 * One Chromium for the calling describe block, with its profile in `profileDir` (a directory the
 * block removes), launched before its first test and closed after its last.
 */
export function useChromium(profileDir: string): Chromium {
  const problems: string[] = [];
  const handle = { problems } as Chromium;
  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `${CHROMIUM} is missing: apt-get install chromium (.ci/run installs it), or set CHROMIUM_PATH`,
      );
    }
    await mkdir(ARTIFACTS, { recursive: true });
    handle.browser = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1200, height: 900 },
    });
  });
  beforeEach(() => {
    problems.length = 0;
  });
  afterAll(async () => {
    await handle.browser?.close();
  });
  handle.open = async (url) => {
    const page = await handle.browser.newPage();
    page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) problems.push(`CSP: ${message.text()}`);
    });
    await page.goto(url);
    return page;
  };
  return handle;
}

export const text = (page: Page, selector: string) =>
  page.locator(selector).textContent({ timeout: PATIENCE_MS });

// Code that runs in the page is written with locators or as strings: outside web/, the project's
// TypeScript has no DOM types.
export const textBecomes = (page: Page, selector: string, pattern: RegExp, timeout = PATIENCE_MS) =>
  page.locator(selector, { hasText: pattern }).first().waitFor({ timeout });

/** A slightly slanted stroke down the middle of the canvas, as a person draws a 1. */
export async function drawOne(page: Page): Promise<void> {
  const box = (await page.getByLabel('Drawing area').boundingBox())!;
  const x = box.x + box.width / 2;
  await page.mouse.move(x, box.y + box.height * 0.15);
  await page.mouse.down();
  await page.mouse.move(x + box.width * 0.03, box.y + box.height * 0.85, { steps: 15 });
  await page.mouse.up();
}

/** The decoded size of the first image that `selector` finds; null until it has loaded. */
export const imageSize = (page: Page, selector: string) =>
  page.evaluate<number[] | null>(`(() => {
    const img = document.querySelector(${JSON.stringify(selector)});
    return img && img.complete && img.naturalWidth > 0 ? [img.naturalWidth, img.naturalHeight] : null;
  })()`);

/** Where the page stands on a `width`-wide screen: settled once nothing scrolls sideways; what sticks out. */
export const layoutOn = (page: Page, width: number) =>
  page.evaluate<Record<string, unknown>>(`({
    settled: window.innerWidth === ${width} && document.documentElement.scrollWidth <= ${width},
    width: window.innerWidth,
    scrollWidth: document.documentElement.scrollWidth,
    outside: [...document.querySelectorAll('body *')]
      .filter((e) => e.getBoundingClientRect().right > window.innerWidth)
      .map((e) => e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))
      .slice(0, 5),
  })`);

/** The values of a select's options, in order. */
export async function optionValues(select: Locator): Promise<string[]> {
  const options = select.locator('option');
  const values: string[] = [];
  for (let i = 0; i < (await options.count()); i++)
    values.push((await options.nth(i).getAttribute('value')) ?? '');
  return values;
}

/** MNIST test digit `index` as a photo of ink on paper would come: 280x280, dark on light, PNG. */
export async function mnistDigitPng(index: number): Promise<Buffer> {
  const { test } = await loadDataset('mnist');
  return sharp(Buffer.from(test.images.subarray(index * IMAGE_PIXELS, (index + 1) * IMAGE_PIXELS)), {
    raw: { width: 28, height: 28, channels: 1 },
  })
    .resize(280, 280, { kernel: 'cubic' })
    .negate()
    .png()
    .toBuffer();
}
