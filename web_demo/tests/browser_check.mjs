#!/usr/bin/env node
// Drives the demo page in headless Chromium (Debian's /usr/bin/chromium through playwright-core)
// and writes what it saw to OUT/results.json plus a screenshot of each state. The assertions
// live in tests/test_web_demo.py, which also runs the same inputs through Node TF.js.
//
//   node tests/browser_check.mjs --url http://127.0.0.1:PORT/ --out DIR --model NAME[,NAME...]
//        [--backends webgpu,webgl,wasm,cpu] [--png FILE] [--photo FILE] [--bench N]
//        [--max-texture NAME=SIDE[,NAME=SIDE...]] [--pooled NAME=BACKEND+BACKEND[,...]]
//        [--only BACKEND=NAME+NAME[,...]] [--pages N]
//
// One Chromium runs every (model, backend) case in a page of its own, N pages at a time (1 by
// default: SwiftShader spreads one page over the cores already; measured here on 2 cores, 10
// pages took 131 s and 184 s of CPU one at a time, 111 s and 194 s two at a time, while each
// page ran 2-4 times slower), the slowest cases first (GPU backends, then larger models), so
// that no page is left running alone at the end (list --model smallest first). --only runs BACKEND on the
// models it names only. --png is a digit dropped on the MNIST models,
// --photo a picture dropped on the colour (3-channel) models. The page publishes its state as
// window.alaeDemo when opened with ?test=1. --max-texture opens model NAME's WebGL page with
// WEBGL_MAX_TEXTURE_SIZE lowered to SIDE (?max_texture=SIDE), so that its grids are decoded in
// chunks. --pooled names the pages that also decode a seeded grid to compare (pooledSamples).
// WebGPU runs on SwiftShader's Vulkan adapter (FLAGS), WebGL on SwiftShader's GL.
import fs from 'node:fs';
import path from 'node:path';
import {chromium} from 'playwright-core';

const FLAGS = ['--headless', '--no-sandbox', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  // WebGPU on SwiftShader's Vulkan (Debian's chromium ships libvk_swiftshader): no GPU here.
  '--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=swiftshader',
  '--use-webgpu-adapter=swiftshader'];

function option(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const url = option('--url');
const out = option('--out');
const models = option('--model', 'mnist_mlp').split(',');
const backends = option('--backends', 'webgpu,webgl,wasm,cpu').split(',');
const png = option('--png');
const photo = option('--photo');
const bench = Number(option('--bench', '0'));
const pages = Number(option('--pages', '1'));
/** An option of KEY=VALUE items separated by commas, as {KEY: parse(VALUE)}. */
const keyed = (name, parse) => Object.fromEntries(option(name, '').split(',').filter(Boolean)
  .map((item) => item.split('=')).map(([key, value]) => [key, parse(value)]));
const maxTexture = keyed('--max-texture', Number);
const only = keyed('--only', (list) => list.split('+'));
const pooled = keyed('--pooled', (list) => list.split('+'));
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

/**
 * The canvas's RGBA pixels, kept in the page (a handle): copying a grid's pixels out through
 * the DevTools protocol takes seconds, comparing them in the page milliseconds.
 */
async function canvasPixels(page, id) {
  return page.evaluateHandle((canvasId) => {
    const c = document.getElementById(canvasId);
    return c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  }, id);
}

/** Mean |a - b| over the pixels of two ``canvasPixels`` handles, computed in the page. */
async function meanAbsDiff(page, a, b) {
  return page.evaluate(([x, y]) => {
    let sum = 0;
    for (let i = 0; i < x.length; i++) sum += Math.abs(x[i] - y[i]);
    return sum / x.length;
  }, [a, b]);
}

/**
 * The last reconstruction's input (and its shape) and output, their count, and the message
 * and the photo note on show.
 */
async function snapshot(page) {
  // Values are read with data(), not dataSync(): on WebGPU a synchronous read breaks the device
  // (later buffers fail to be created).
  return page.evaluate(async () => {
    const d = window.alaeDemo;
    const values = async (t) => t && Array.from(await t.data());
    const shown = (id) => {
      const el = document.getElementById(id);
      return el.hidden ? null : el.textContent;
    };
    return {input: await values(d.input),
            input_shape: d.input && d.input.shape,
            reconstruction: await values(d.reconstruction),
            count: d.counts.reconstruct, message: shown('message'), note: shown('photo-note')};
  });
}

/** Waits until no reconstruction is running, waiting or queued for the next frame. */
async function settle(page) {
  await page.waitForTimeout(50);
  await page.waitForFunction(() => {
    const d = window.alaeDemo;
    return !d.busy && !d.pending && !d.frameRequested;
  });
}

/** Moves slider ``id`` to ``value`` and waits until the view it drives (``view``) is redrawn. */
async function setRange(page, id, value, view) {
  const count = await page.evaluate((v) => window.alaeDemo.counts[v], view);
  await page.evaluate(([rangeId, v]) => {
    const el = document.getElementById(rangeId);
    el.value = String(v);
    el.dispatchEvent(new Event('input', {bubbles: true}));
  }, [id, value]);
  await page.waitForFunction(([v, n]) => window.alaeDemo.counts[v] > n, [view, count]);
  return canvasPixels(page, view);
}

/** Median and p95 ms of ``runs`` reconstruct calls in the page (see timeCalls). */
async function benchmark(page, runs, graph) {
  return page.evaluate(async ([n, useGraph]) => {
    const {timeCalls} = await import(new URL('js/alae_model.js', location.href).href);
    const {model, name, noise} = window.alaeDemo;
    const tf = window.tf;
    if (useGraph && !model.graphs.reconstruct) {
      model.graphs.reconstruct = await tf.loadGraphModel(
        `models/${name}/${model.manifest.graphs.reconstruct.path}`);
    }
    const x = tf.randomUniform([1, model.resolution, model.resolution, model.channels]);
    const call = () => (useGraph ? model.reconstructGraph(x, noise) : model.reconstruct(x, noise));
    const times = await timeCalls(call, n);
    x.dispose();
    return {...times, batch: 1, backend: tf.getBackend()};
  }, [runs, graph]);
}

async function drawSeven(page, result) {
  const box = await page.locator('#draw').boundingBox();
  const at = (x, y) => [box.x + x * box.width, box.y + y * box.height];
  const before = await snapshot(page);
  await page.mouse.move(...at(0.25, 0.2));
  await page.mouse.down();
  for (const [x, y] of [[0.5, 0.2], [0.75, 0.2], [0.62, 0.5], [0.5, 0.8]]) {
    await page.mouse.move(...at(x, y), {steps: 2});  // the page joins the points with lines
  }
  await page.mouse.up();
  await settle(page);
  result.drawn = await snapshot(page);
  result.drawn.reconstructions_while_drawing = result.drawn.count - before.count;
}

/**
 * Drops the PNG ``file`` on the canvas (a real drop event carrying a File) and returns the
 * snapshot after its reconstruction.
 */
async function dropPng(page, file) {
  const before = (await snapshot(page)).count;
  const bytes = fs.readFileSync(file).toString('base64');
  const transfer = await page.evaluateHandle(([b64, name]) => {
    const raw = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([raw], name, {type: 'image/png'}));
    return dt;
  }, [bytes, path.basename(file)]);
  await page.dispatchEvent('#draw', 'drop', {dataTransfer: transfer});
  await page.waitForFunction((n) => window.alaeDemo.counts.reconstruct > n, before);
  await settle(page);
  return snapshot(page);
}

/** A text file named .png, through the file chooser: a message, nothing else changes. */
async function chooseBadFile(page, result) {
  await settle(page);
  const reconBefore = await canvasPixels(page, 'reconstruction');
  const countBefore = (await snapshot(page)).count;
  await page.setInputFiles('#file', {name: 'notes.png', mimeType: 'image/png',
                                     buffer: Buffer.from('these are my notes, not an image\n')});
  await page.waitForFunction(() => !document.getElementById('message').hidden);
  await settle(page);
  const after = await snapshot(page);
  result.bad_file = {
    message: after.message,
    visible: await page.locator('#message').isVisible(),
    reconstructions: after.count - countBefore,
    canvas_change: await meanAbsDiff(page, reconBefore,
                                   await canvasPixels(page, 'reconstruction')),
  };
}

/**
 * Interpolation t, truncation psi and (StyleALAE) the mixing crossover, end to end. psi moves
 * from where the page starts it (its grid is on show already: one grid decode fewer).
 */
async function moveSliders(page, result, shot) {
  const sliders = [['t', 'interpolation', 0.0, 1.0], ['psi', 'samples', null, 0.0]];
  if (result.mixing_visible) {
    sliders.push(['crossover', 'mixing', 0, await page.$eval('#crossover', (el) => Number(el.max))]);
  }
  result.sliders = {};
  for (const [id, view, from, to] of sliders) {
    const a = from === null ? await canvasPixels(page, view) :
      await setRange(page, id, from, view);
    const b = await setRange(page, id, to, view);
    result.sliders[id] = await meanAbsDiff(page, a, b);
    await shot(id === 'crossover' ? 'crossover_max' : `${id}_${to}`);
    if (id === 'crossover') {  // a real mix differs from both pure ends
      const mid = await setRange(page, id, Math.round((from + to) / 2), view);
      result.sliders.crossover_mid = Math.min(await meanAbsDiff(page, a, mid),
                                              await meanAbsDiff(page, b, mid));
      await shot('crossover_mid');
    }
  }
}

/** Opens the page on ``model`` and ``backend`` and waits until it is ready or has failed. */
async function openPage(page, model, backend, limit) {
  const started = Date.now();
  await page.goto(`${url}?model=${model}&backend=${backend}&test=1` +
                  (limit ? `&max_texture=${limit}` : ''));
  await page.waitForFunction(() => window.alaeDemo && (window.alaeDemo.ready ||
      window.alaeDemo.error));
  const loaded = await page.evaluate(async () => {
    const d = window.alaeDemo;
    return {ready: d.ready, error: d.error, active_backend: d.backend, renderer: d.renderer,
            status: document.getElementById('status').textContent,
            timing: document.getElementById('timing').textContent,
            dataset: d.model && d.model.dataset, channels: d.model && d.model.channels,
            fixed_noise: d.noise && Array.from(await d.noise.data()),
            mixing_visible: !document.getElementById('mixing-panel').hidden,
            max_texture: window.tf.env().getNumber('WEBGL_MAX_TEXTURE_SIZE'),
            threads: d.threads, isolated: d.isolated, convolution: d.convolution,
            hardware_threads: navigator.hardwareConcurrency,
            runtime: document.getElementById('runtime').textContent,
            max_batch: d.model && d.model.maxBatch,
            chunked: d.model && {...d.model.chunked}};
  });
  return {load_ms: Date.now() - started, ...loaded};
}

/**
 * An 8-image grid decoded through the page's model (its chunks, its convolution) from seeded
 * w and noise, so every backend decodes the same codes; pooled to 16 x 16 per image (a 28 px
 * model: not pooled): [8][16][16][C]. A wrong chunk, chunks out of order or a wrong
 * convolution shows here, with few numbers to copy out of the page.
 */
async function pooledSamples(page) {
  return page.evaluate(async () => {
    const {model} = window.alaeDemo;
    const tf = window.tf;
    const grid = tf.tidy(() => {
      const w = tf.randomNormal([8, model.latentDim], 0, 1, 'float32', 11);
      const noise = model.styled ? model.randomNoise(8, 12) : undefined;
      const cell = Math.max(1, Math.floor(model.resolution / 16));
      return tf.avgPool(model.decode(w, noise), cell, cell, 'valid');
    });
    const values = await grid.array();
    grid.dispose();
    return values;
  });
}

async function checkBackend(browser, model, backend) {
  const page = await browser.newPage({viewport: {width: 1000, height: 1400}});
  // The pages run side by side, and a 128 px model on the CPU backend is slow.
  page.setDefaultTimeout(120000);
  const consoleErrors = [];
  const pageErrors = [];
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  const result = {model, backend, stage_ms: {}};
  let last = Date.now();
  const shot = async (state) => {
    result.stage_ms[state] = Date.now() - last;  // what led to this state
    // Tensors alive in the page after each action: the page keeps the same few (noise, the
    // samples' w, A and B, the last input and reconstruction) beside the weights.
    (result.tensors ||= {})[state] = await page.evaluate(() => window.tf.memory().numTensors);
    const file = path.join(out, `${model}_${backend}_${state}.png`);
    const before = Date.now();
    await page.screenshot({path: file, fullPage: true});
    result.stage_ms.screenshots = (result.stage_ms.screenshots || 0) + Date.now() - before;
    (result.screenshots ||= []).push(file);
    last = Date.now();
  };
  try {
    const limit = backend === 'webgl' ? maxTexture[model] : undefined;
    Object.assign(result, await openPage(page, model, backend, limit));
    await shot('loaded');
    if (!result.ready) return result;
    if ((pooled[model] || []).includes(backend)) {
      result.pooled_samples = await pooledSamples(page);
    }
    await drawSeven(page, result);
    await shot('drawn');
    if (png && result.dataset === 'mnist') {
      result.dropped = await dropPng(page, png);
      await shot('dropped');
    }
    if (photo && result.channels === 3) {
      result.photo = await dropPng(page, photo);
      await shot('photo');
    }
    await chooseBadFile(page, result);
    await shot('bad_file');
    await moveSliders(page, result, shot);
    if (bench) {
      result.bench = {chain: await benchmark(page, bench, false),
                      graph: await benchmark(page, bench, true)};
    }
    return result;
  } finally {
    result.console_errors = consoleErrors;
    result.page_errors = pageErrors;
    await page.close();
  }
}

// SwiftShader's WebGL and WebGPU pages take longest here, then the CPU backend's.
const BACKEND_COST = {webgpu: 4, webgl: 3, cpu: 2, wasm: 1};
const cases = models.flatMap((model, m) => backends
  .filter((backend) => !only[backend] || only[backend].includes(model))
  .map((backend) => ({model, backend, cost: (BACKEND_COST[backend] || 0) * 10 + m})))
  .sort((a, b) => b.cost - a.cost);
const browser = await chromium.launch({executablePath, args: FLAGS, headless: true});
const runs = [];
try {
  const queue = [...cases];
  const worker = async () => {
    while (queue.length) {
      const {model, backend} = queue.shift();
      runs.push(await checkBackend(browser, model, backend));
    }
  };
  await Promise.all(Array.from({length: pages}, worker));
} finally {
  await browser.close();
}
fs.writeFileSync(path.join(out, 'results.json'), JSON.stringify({model: models.join(','), runs}));
process.stdout.write(`browser_check: ${runs.length} pages, results in ${out}\n`);
