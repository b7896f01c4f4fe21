#!/usr/bin/env node
// Drives the demo page in headless Chromium (Debian's /usr/bin/chromium through playwright-core)
// and writes what it saw to OUT/results.json plus a screenshot of each state. The assertions
// live in tests/test_web_demo.py, which also runs the same inputs through Node TF.js.
//
//   node tests/browser_check.mjs --url http://127.0.0.1:PORT/ --out DIR --model NAME
//        [--backends webgl,wasm,cpu] [--png FILE] [--bench N]
import fs from 'node:fs';
import path from 'node:path';
import {chromium} from 'playwright-core';

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

function option(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const url = option('--url');
const out = option('--out');
const modelName = option('--model', 'mnist_mlp');
const backends = option('--backends', 'webgl,wasm,cpu').split(',');
const png = option('--png');
const bench = Number(option('--bench', '0'));
const executablePath = option('--chromium', process.env.CHROMIUM || '/usr/bin/chromium');
if (!url || !out) {
  process.stderr.write('usage: browser_check.mjs --url URL --out DIR [--model NAME] ...\n');
  process.exit(2);
}
if (!fs.existsSync(executablePath)) {
  process.stderr.write(`browser_check: no Chromium at ${executablePath}: ` +
                       'apt-get install chromium (make browser-deps does)\n');
  process.exit(3);
}
fs.mkdirSync(out, {recursive: true});

/** The canvas's RGBA pixels, read in the page. */
async function canvasPixels(page, id) {
  return page.evaluate((canvasId) => {
    const c = document.getElementById(canvasId);
    return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);
  }, id);
}

function meanAbsDiff(a, b) {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i] - b[i]);
  return sum / a.length;
}

async function snapshot(page) {
  return page.evaluate(() => {
    const d = window.alaeDemo;
    return {input: d.lastInput, reconstruction: d.lastReconstruction,
            count: d.counts.reconstruct, message: d.message};
  });
}

async function setRange(page, id, value) {
  await page.evaluate(([rangeId, v]) => {
    const el = document.getElementById(rangeId);
    el.value = String(v);
    el.dispatchEvent(new Event('input', {bubbles: true}));
  }, [id, value]);
}

async function settle(page) {
  await page.waitForTimeout(50);
  await page.evaluate(() => window.alaeDemo.idle());
}

async function checkBackend(browser, backend) {
  const page = await browser.newPage({viewport: {width: 1000, height: 1400}});
  const consoleErrors = [];
  const pageErrors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  const result = {backend};
  const shot = async (state) => {
    const file = path.join(out, `${modelName}_${backend}_${state}.png`);
    await page.screenshot({path: file, fullPage: true});
    (result.screenshots ||= []).push(file);
  };
  const started = Date.now();
  await page.goto(`${url}?model=${modelName}&backend=${backend}`);
  await page.waitForFunction(() => window.alaeDemo && (window.alaeDemo.ready ||
      window.alaeDemo.error), null, {timeout: 120000});
  result.load_ms = Date.now() - started;
  Object.assign(result, await page.evaluate(() => {
    const d = window.alaeDemo;
    return {ready: d.ready, error: d.error, active_backend: d.backend, renderer: d.renderer,
            status: document.getElementById('status').textContent,
            timing: document.getElementById('timing').textContent,
            fixed_noise: d.fixedNoise, mixing_visible: !document.getElementById('mixing-panel').hidden};
  }));
  await shot('loaded');
  if (!result.ready) return finish();

  // Draw a stroke with the mouse: a "7".
  const box = await page.locator('#draw').boundingBox();
  const at = (x, y) => [box.x + x * box.width, box.y + y * box.height];
  const before = await snapshot(page);
  await page.mouse.move(...at(0.25, 0.2));
  await page.mouse.down();
  for (const [x, y] of [[0.5, 0.2], [0.75, 0.2], [0.62, 0.5], [0.5, 0.8]]) {
    await page.mouse.move(...at(x, y), {steps: 6});
  }
  await page.mouse.up();
  await settle(page);
  result.drawn = await snapshot(page);
  result.drawn.reconstructions_while_drawing = result.drawn.count - before.count;
  await shot('drawn');

  // Drop a PNG on the canvas (a real drop event carrying a File).
  if (png) {
    const bytes = fs.readFileSync(png).toString('base64');
    const transfer = await page.evaluateHandle((b64) => {
      const raw = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([raw], 'digit.png', {type: 'image/png'}));
      return dt;
    }, bytes);
    await page.dispatchEvent('#draw', 'drop', {dataTransfer: transfer});
    await page.waitForFunction((n) => window.alaeDemo.counts.reconstruct > n, result.drawn.count);
    await settle(page);
    result.dropped = await snapshot(page);
    await shot('dropped');
  }

  // A text file named .png, through the file chooser: a message, nothing else changes.
  await settle(page);
  const reconBefore = await canvasPixels(page, 'reconstruction');
  const countBefore = (await snapshot(page)).count;
  await page.setInputFiles('#file', {name: 'notes.png', mimeType: 'image/png',
                                     buffer: Buffer.from('these are my notes, not an image\n')});
  await page.waitForFunction(() => window.alaeDemo.message, null, {timeout: 10000});
  await settle(page);
  const after = await snapshot(page);
  result.bad_file = {
    message: after.message,
    visible: await page.locator('#message').isVisible(),
    reconstructions: after.count - countBefore,
    canvas_change: meanAbsDiff(reconBefore, await canvasPixels(page, 'reconstruction')),
  };
  await shot('bad_file');

  // Sliders: interpolation t, truncation psi, and (StyleALAE) the mixing crossover.
  const sliders = [['t', 'interpolation', 0.0, 1.0], ['psi', 'samples', 1.0, 0.0]];
  if (result.mixing_visible) {
    sliders.push(['crossover', 'mixing', 0, await page.$eval('#crossover', (el) => Number(el.max))]);
  }
  result.sliders = {};
  for (const [id, canvas, from, to] of sliders) {
    await setRange(page, id, from);
    await page.waitForTimeout(300);
    const a = await canvasPixels(page, canvas);
    await setRange(page, id, to);
    await page.waitForTimeout(300);
    const b = await canvasPixels(page, canvas);
    result.sliders[id] = meanAbsDiff(a, b);
    await shot(id === 'crossover' ? 'crossover_max' : `${id}_${to}`);
    if (id === 'crossover') {  // a real mix differs from both pure ends
      await setRange(page, id, Math.round((from + to) / 2));
      await page.waitForTimeout(300);
      const mid = await canvasPixels(page, canvas);
      result.sliders.crossover_mid = Math.min(meanAbsDiff(a, mid), meanAbsDiff(b, mid));
      await shot('crossover_mid');
    }
  }
  if (bench) {
    result.bench = {
      chain: await page.evaluate((n) => window.alaeDemo.benchmark(n, 1, false), bench),
      graph: await page.evaluate((n) => window.alaeDemo.benchmark(n, 1, true), bench),
    };
  }
  return finish();

  async function finish() {
    result.console_errors = consoleErrors;
    result.page_errors = pageErrors;
    await page.close();
    return result;
  }
}

const browser = await chromium.launch({executablePath, args: FLAGS, headless: true});
const results = {model: modelName, runs: []};
try {
  for (const backend of backends) results.runs.push(await checkBackend(browser, backend));
} finally {
  await browser.close();
}
fs.writeFileSync(path.join(out, 'results.json'), JSON.stringify(results));
process.stdout.write(`browser_check: ${results.runs.length} backends, results in ${out}\n`);
