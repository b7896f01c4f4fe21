// The demo page: loads an alae-tf TF.js export and wires the canvas, file input and sliders to
// its encoder, generator and mapping graphs. Everything runs in this browser.
import {AlaeModel, lerp, timeCalls} from './alae_model.js';

const tf = window.tf;
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const BACKENDS = ['webgl', 'wasm', 'cpu'];
const NUM_SAMPLES = 8;
const DRAW_SIZE = 280;
const NOISE_SEED = 1234;

// The page's state, also read by the browser tests (web_demo/tests/browser_check.mjs).
const demo = window.alaeDemo = {
  ready: false, error: null, message: null, backend: null, renderer: null, model: null,
  backendNote: null,
  manifest: null, counts: {reconstruct: 0, samples: 0, interpolation: 0, mixing: 0},
  timings: {}, lastInput: null, lastReconstruction: null, fixedNoise: null,
};

let model = null;
let noise1 = null;        // the fixed noise of reconstructions, interpolation and mixing
let sampleW = null;       // w of the samples on show, [8, latent] or [8, S, latent]
let sampleSeed = 1;
const slots = {A: null, B: null};

// ---------------------------------------------------------------- messages and status

function showMessage(text) {
  demo.message = text;
  const box = $('message');
  box.textContent = text;
  box.hidden = false;
}

function clearMessage() {
  demo.message = null;
  $('message').hidden = true;
}

function setStatus(text) {
  $('status').textContent = text;
}

function recordTime(name, ms) {
  demo.timings[name] = ms;
  const parts = Object.entries(demo.timings).map(([k, v]) => `${k} ${v.toFixed(1)} ms`);
  $('timing').textContent = `${demo.backend}: ${parts.join(' · ')}`;
}

window.addEventListener('error', (e) => {
  demo.error = String(e.message);
  showMessage(`Something went wrong: ${e.message}`);
});
window.addEventListener('unhandledrejection', (e) => {
  demo.error = String(e.reason && e.reason.message || e.reason);
  showMessage(`Something went wrong: ${demo.error}`);
});

// ---------------------------------------------------------------- drawing images

/** Draws images [N, H, W, C] in [0, 1] side by side, scaled to fill ``canvas``. */
async function show(images, canvas) {
  const row = tf.tidy(() => {
    const x = images.rank === 3 ? images.expandDims(0) : images;
    return tf.concat(tf.unstack(x), 1).clipByValue(0, 1);
  });
  const tile = document.createElement('canvas');
  await tf.browser.toPixels(row, tile);
  row.dispose();
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(tile, 0, 0, canvas.width, canvas.height);
}

/** Runs ``fn`` (returning a tensor), waits for its values and records the time. */
async function timed(name, fn) {
  const start = performance.now();
  const out = fn();
  await out.data();
  recordTime(name, performance.now() - start);
  return out;
}

// ---------------------------------------------------------------- the drawing canvas

const draw = $('draw');
const drawCtx = draw.getContext('2d');

function clearDrawing() {
  drawCtx.fillStyle = '#000';
  drawCtx.fillRect(0, 0, DRAW_SIZE, DRAW_SIZE);
}

/**
 * MNIST geometry: the strokes' bounding box scaled to 20x20 of the 28x28 frame and their
 * centre of mass put in the middle, as the MNIST digits were prepared. Returns a canvas.
 */
function mnistFramed(source) {
  const {data} = source.getContext('2d').getImageData(0, 0, DRAW_SIZE, DRAW_SIZE);
  let x0 = DRAW_SIZE; let y0 = DRAW_SIZE; let x1 = -1; let y1 = -1;
  let mass = 0; let mx = 0; let my = 0;
  for (let y = 0; y < DRAW_SIZE; y++) {
    for (let x = 0; x < DRAW_SIZE; x++) {
      const v = data[4 * (y * DRAW_SIZE + x)] / 255;
      if (v > 0.1) {
        x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
      }
      mass += v; mx += v * x; my += v * y;
    }
  }
  if (x1 < 0 || mass === 0) return source;  // blank: nothing to centre
  const scale = (DRAW_SIZE * 20 / 28) / Math.max(x1 - x0 + 1, y1 - y0 + 1);
  const out = document.createElement('canvas');
  out.width = out.height = DRAW_SIZE;
  const ctx = out.getContext('2d');
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, DRAW_SIZE, DRAW_SIZE);
  ctx.setTransform(scale, 0, 0, scale, DRAW_SIZE / 2 - scale * mx / mass,
                   DRAW_SIZE / 2 - scale * my / mass);
  ctx.drawImage(source, 0, 0);
  return out;
}

/** The drawing as the model's input, [1, H, W, C] in [0, 1]. */
function modelInput() {
  const m = demo.manifest;
  const mnist = m.dataset === 'mnist';
  const source = mnist ? mnistFramed(draw) : draw;
  const frame = mnist ? 28 : m.resolution;
  return tf.tidy(() => {
    let x = tf.browser.fromPixels(source, m.channels === 1 ? 1 : 3).toFloat().div(255)
        .expandDims(0);
    x = DRAW_SIZE % frame === 0 ?
      tf.avgPool(x, DRAW_SIZE / frame, DRAW_SIZE / frame, 'valid') :
      tf.image.resizeBilinear(x, [frame, frame], false, true);
    if (frame < m.resolution) {  // MNIST at 32 px: zero padding, as in training
      const before = Math.floor((m.resolution - frame) / 2);
      const after = m.resolution - frame - before;
      x = x.pad([[0, 0], [before, after], [before, after], [0, 0]]);
    } else if (frame > m.resolution) {
      x = tf.image.resizeBilinear(x, [m.resolution, m.resolution], false, true);
    }
    return x;
  });
}

let busy = false;
let pending = false;

async function reconstruct() {
  if (!model) return;
  if (busy) {
    pending = true;
    return;
  }
  busy = true;
  try {
    const x = modelInput();
    const y = await timed('reconstruct', () => model.reconstruct(x, noise1));
    demo.lastInput = Array.from(await x.data());
    demo.lastReconstruction = Array.from(await y.data());
    await show(x, $('input-view'));
    await show(y, $('reconstruction'));
    x.dispose();
    y.dispose();
    demo.counts.reconstruct += 1;
  } finally {
    busy = false;
  }
  if (pending) {
    // Through scheduleReconstruct, so idle() sees the queued frame.
    pending = false;
    scheduleReconstruct();
  }
}

let drawing = false;
let last = null;
let frameRequested = false;

function scheduleReconstruct() {
  if (frameRequested) return;
  frameRequested = true;
  requestAnimationFrame(() => {
    frameRequested = false;
    reconstruct();
  });
}

function pointAt(e) {
  const r = draw.getBoundingClientRect();
  return [(e.clientX - r.left) * DRAW_SIZE / r.width, (e.clientY - r.top) * DRAW_SIZE / r.height];
}

draw.addEventListener('pointerdown', (e) => {
  draw.setPointerCapture(e.pointerId);
  drawing = true;
  last = pointAt(e);
  strokeTo(last);
});
draw.addEventListener('pointermove', (e) => {
  if (!drawing) return;
  const p = pointAt(e);
  strokeTo(p);
  last = p;
});
for (const type of ['pointerup', 'pointercancel']) {
  draw.addEventListener(type, () => {
    drawing = false;
    scheduleReconstruct();
  });
}

function strokeTo(p) {
  drawCtx.strokeStyle = '#fff';
  drawCtx.lineWidth = 22;
  drawCtx.lineCap = 'round';
  drawCtx.lineJoin = 'round';
  drawCtx.beginPath();
  drawCtx.moveTo(last[0], last[1]);
  drawCtx.lineTo(p[0], p[1]);
  drawCtx.stroke();
  scheduleReconstruct();
}

$('clear').addEventListener('click', () => {
  clearDrawing();
  clearMessage();
  scheduleReconstruct();
});

// ---------------------------------------------------------------- image files

async function loadFile(file) {
  if (!file || !model) return;
  if (file.type && !file.type.startsWith('image/')) {
    showMessage(`"${file.name}" is not an image (${file.type}): choose a PNG, JPEG, GIF, ` +
                'BMP or WebP file.');
    return;
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch (e) {
    showMessage(`Could not read "${file.name}" as an image: it is damaged or not an image ` +
                `file. Nothing was changed. (${e.name})`);
    return;
  }
  clearMessage();
  const scale = Math.min(DRAW_SIZE / bitmap.width, DRAW_SIZE / bitmap.height);
  const w = bitmap.width * scale;
  const h = bitmap.height * scale;
  clearDrawing();
  drawCtx.filter = demo.manifest.channels === 1 ? 'grayscale(1)' : 'none';
  drawCtx.drawImage(bitmap, (DRAW_SIZE - w) / 2, (DRAW_SIZE - h) / 2, w, h);
  drawCtx.filter = 'none';
  bitmap.close();
  if (demo.manifest.dataset === 'mnist') {
    // A dark digit on light paper becomes MNIST's light digit on black.
    const image = drawCtx.getImageData(0, 0, DRAW_SIZE, DRAW_SIZE);
    let mean = 0;
    for (let i = 0; i < image.data.length; i += 4) mean += image.data[i];
    if (mean / (image.data.length / 4) > 127) {
      for (let i = 0; i < image.data.length; i += 4) {
        for (let c = 0; c < 3; c++) image.data[i + c] = 255 - image.data[i + c];
      }
      drawCtx.putImageData(image, 0, 0);
    }
  }
  await reconstruct();
}

$('file').addEventListener('change', (e) => {
  loadFile(e.target.files[0]);
  e.target.value = '';
});
const panel = $('reconstruct-panel');
panel.addEventListener('dragover', (e) => {
  e.preventDefault();
  draw.classList.add('dragover');
});
panel.addEventListener('dragleave', () => draw.classList.remove('dragover'));
panel.addEventListener('drop', (e) => {
  e.preventDefault();
  draw.classList.remove('dragover');
  const file = e.dataTransfer && e.dataTransfer.files[0];
  if (file) loadFile(file);
  else showMessage('Nothing to read in that drop: drop an image file.');
});

// ---------------------------------------------------------------- samples, A and B

function fixedNoise(n) {
  return model.styled ? tf.tile(noise1, [n, 1]) : undefined;
}

async function resample() {
  const psi = Number($('psi').value);
  $('psi-value').textContent = psi.toFixed(2);
  const z = tf.randomNormal([NUM_SAMPLES, model.latentDim], 0, 1, 'float32', sampleSeed);
  const noise = model.styled ? model.randomNoise(NUM_SAMPLES, sampleSeed + 1) : undefined;
  const w = model.map(z, psi);
  const images = await timed(`samples (${NUM_SAMPLES})`, () => model.decode(w, noise));
  await show(images, $('samples'));
  tf.dispose([z, noise, images, sampleW]);
  sampleW = w;
  demo.counts.samples += 1;
}

/** w as the slots keep it: [1, latent] (MLP) or [1, S, latent] (StyleALAE). */
function asSlot(w) {
  return model.styled && w.rank === 2 ? tf.tile(w.expandDims(1), [1, model.numStyles, 1]) : w;
}

async function setSlot(name, w) {
  tf.dispose(slots[name]);
  const slot = asSlot(w);
  if (slot !== w) w.dispose();
  slots[name] = slot;
  const image = model.decode(slots[name], fixedNoise(1));
  await show(image, $(name === 'A' ? 'a-view' : 'b-view'));
  image.dispose();
  await Promise.all([interpolate(), mix()]);
}

$('samples').addEventListener('click', (e) => {
  if (!sampleW) return;
  const r = e.currentTarget.getBoundingClientRect();
  const i = Math.min(NUM_SAMPLES - 1, Math.floor((e.clientX - r.left) / r.width * NUM_SAMPLES));
  setSlot(e.shiftKey ? 'B' : 'A', tf.tidy(() => sampleW.slice([i], [1])));
});

async function drawingToSlot(name) {
  const x = modelInput();
  const w = model.encode(x);
  x.dispose();
  await setSlot(name, w);
}

$('to-a').addEventListener('click', () => drawingToSlot('A'));
$('to-b').addEventListener('click', () => drawingToSlot('B'));

async function interpolate() {
  if (!slots.A || !slots.B) return;
  const t = Number($('t').value);
  $('t-value').textContent = t.toFixed(2);
  const image = await timed('interpolation', () => tf.tidy(() =>
    model.decode(lerp(tf, slots.A, slots.B, t), fixedNoise(1))));
  await show(image, $('interpolation'));
  image.dispose();
  demo.counts.interpolation += 1;
}

async function mix() {
  if (!model.styled || !slots.A || !slots.B) return;
  const k = Number($('crossover').value);
  $('crossover-value').textContent = String(k);
  const image = await timed('mixing', () => tf.tidy(() =>
    model.decode(model.mix(slots.A, slots.B, k), fixedNoise(1))));
  await show(image, $('mixing'));
  image.dispose();
  demo.counts.mixing += 1;
}

$('psi').addEventListener('input', () => resample());
$('resample').addEventListener('click', () => {
  sampleSeed += 2;
  resample();
});
$('t').addEventListener('input', () => interpolate());
$('crossover').addEventListener('input', () => mix());

// ---------------------------------------------------------------- hooks for tests and benchmarks

/** Resolves once no reconstruction is running or waiting. */
demo.idle = () => new Promise((resolve) => {
  const check = () => (!busy && !pending && !frameRequested ? resolve() : setTimeout(check, 20));
  check();
});


/** Median and p95 ms of ``runs`` reconstruct calls of a random batch, after 3 warm-ups. */
demo.benchmark = async (runs = 50, batch = 1, graph = false) => {
  if (graph && !model.graphs.reconstruct) {
    model.graphs.reconstruct = await tf.loadGraphModel(
      `models/${demo.model}/${demo.manifest.graphs.reconstruct.path}`);
  }
  const x = tf.randomUniform([batch, model.resolution, model.resolution, model.channels]);
  const noise = fixedNoise(batch);
  const call = () => (graph ? model.reconstructGraph(x, noise) : model.reconstruct(x, noise));
  const times = await timeCalls(call, runs);
  tf.dispose([x, noise]);
  return {...times, batch, backend: tf.getBackend()};
};

// ---------------------------------------------------------------- start-up

async function fetchJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

function describe(manifest, entry) {
  const s = manifest.scores || {};
  const parts = [`${manifest.preset} (${manifest.model}, ${manifest.resolution} px, ` +
    `latent ${manifest.latent_dim}${manifest.num_styles ? `, ${manifest.num_styles} style slots` : ''})`,
  `${manifest.quantization} weights, ${(entry.demo_bytes / 1e6).toFixed(1)} MB downloaded`];
  if (s['w/ema']) {
    parts.push(`alae-eval on ${s.num_test} test digits: w 1-NN ${s['w/ema'].knn1}, ` +
               `linear SVM ${s['w/ema'].svm}, reconstruction MSE ${s.reconstruction_mse}`);
  }
  if (manifest.source && manifest.source.epoch) parts.push(`trained ${manifest.source.epoch} epochs`);
  return parts.join('; ');
}

/**
 * WebGL's real renderer, or null. A software one (SwiftShader, llvmpipe) is slower than WASM on
 * a CPU, so the page then starts on WASM unless a backend was asked for.
 */
function webglRenderer() {
  try {
    const gl = document.createElement('canvas').getContext('webgl2') ||
        document.createElement('canvas').getContext('webgl');
    if (!gl) return null;
    const info = gl.getExtension('WEBGL_debug_renderer_info');
    return String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
  } catch (e) {
    return null;
  }
}

function defaultBackend() {
  const renderer = webglRenderer();
  if (renderer && !/swiftshader|llvmpipe|software/i.test(renderer)) return 'webgl';
  demo.backendNote = renderer ?
    `WebGL here is a software renderer (${renderer}), slower than WASM: starting on WASM` :
    'no WebGL here: starting on WASM';
  return 'wasm';
}

async function loadModel(name, manifest) {
  try {
    return await AlaeModel.load(tf, manifest,
        (graph, path, onFraction) => tf.loadGraphModel(`models/${name}/${path}`,
            {onProgress: onFraction}),
        {onProgress: (f) => {
          $('progress').value = f;
          setStatus(`loading ${name}: ${Math.round(100 * f)}%`);
        }});
  } catch (e) {
    throw new Error(`the export "${name}" could not be loaded (${e.message}); its files may be ` +
                    'damaged: export it again with alae-export --format tfjs');
  }
}

async function start() {
  clearDrawing();
  const backend = params.get('backend') || defaultBackend();
  $('backend').value = BACKENDS.includes(backend) ? backend : 'webgl';
  $('backend').addEventListener('change', (e) => {
    params.set('backend', e.target.value);
    location.search = params.toString();
  });
  if (!BACKENDS.includes(backend)) {
    showMessage(`Unknown backend "${backend}": use webgl, wasm or cpu.`);
    setStatus('stopped');
    return;
  }
  const index = await fetchJson('models/index.json');
  const usable = index.filter((m) => !m.error);
  const name = params.get('model') ||
      (usable.find((m) => m.name === 'mnist_mlp') || usable[0] || {}).name;
  const select = $('model');
  for (const m of index) {
    const option = new Option(m.error ? `${m.name} (unreadable)` : `${m.name} (${m.preset})`, m.name);
    option.disabled = Boolean(m.error);
    select.add(option);
  }
  select.value = name;
  select.addEventListener('change', (e) => {
    params.set('model', e.target.value);
    location.search = params.toString();
  });
  const entry = usable.find((m) => m.name === name);
  const broken = index.find((m) => m.name === name && m.error);
  if (broken) {
    showMessage(`The export "${name}" cannot be used: ${broken.error}. Export it again with ` +
                'alae-export --format tfjs, or choose another model.');
    setStatus('stopped');
    return;
  }
  if (!entry) {
    showMessage(`No model named "${name}" is served here; choose one of: ` +
                `${usable.map((m) => m.name).join(', ')}.`);
    setStatus('stopped');
    return;
  }

  setStatus(`starting the ${backend} backend`);
  if (backend === 'wasm') tf.wasm.setWasmPaths(new URL('vendor/', location.href).href);
  let ok = false;
  try {
    ok = await tf.setBackend(backend);
    await tf.ready();
  } catch (e) {
    ok = false;
  }
  if (!ok || tf.getBackend() !== backend) {
    await tf.setBackend('cpu');
    showMessage(`The ${backend} backend could not start in this browser; using the CPU backend.`);
  }
  demo.backend = tf.getBackend();
  $('backend').value = demo.backend;
  if (demo.backend === 'webgl') {
    try {
      const gl = tf.backend().gpgpu.gl;
      demo.renderer = gl.getParameter(gl.RENDERER);
    } catch (e) {
      demo.renderer = 'unknown';
    }
  }

  const manifest = await fetchJson(`models/${name}/manifest.json`);
  setStatus(`loading ${name}`);
  model = await loadModel(name, manifest);
  demo.model = name;
  demo.manifest = manifest;
  noise1 = model.styled ? tf.randomNormal([1, model.noiseSize], 0, 1, 'float32', NOISE_SEED) : null;
  demo.fixedNoise = noise1 ? Array.from(await noise1.data()) : null;
  if (model.styled) {
    $('mixing-panel').hidden = false;
    $('crossover').max = String(model.numStyles);
    $('crossover').value = String(Math.floor(model.numStyles / 2));
  }
  $('about').textContent = describe(manifest, entry);
  if (manifest.dataset !== 'mnist') {
    $('reconstruct-title').textContent = 'Draw or drop an image: E encodes it, G redraws it';
  }

  await resample();
  await setSlot('A', tf.tidy(() => sampleW.slice([0], [1])));
  await setSlot('B', tf.tidy(() => sampleW.slice([1], [1])));
  await reconstruct();
  setStatus(`${name} on ${demo.backend}${demo.renderer ? ` (${demo.renderer})` : ''}: ready` +
            (demo.backendNote && !params.get('backend') ? ` (${demo.backendNote})` : ''));
  demo.ready = true;
  document.body.dataset.ready = 'true';
}

start().catch((e) => {
  demo.error = String(e.message || e);
  setStatus('stopped');
  showMessage(`The demo could not start: ${demo.error}`);
});
