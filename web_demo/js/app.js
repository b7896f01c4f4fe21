// The demo page: loads an alae-tf TF.js export and wires the canvas, file input and sliders to
// its encoder, generator and mapping graphs. Everything runs in this browser. The computations
// live in js/alae_model.js (the model), js/canvas.js (pictures) and js/startup.js (choices);
// this file holds the page's state, its actions and the event wiring.
import {AlaeModel, DEMO_GRAPHS, GRID, TEXTURE_FILL, lerp, webglPlan, webgpuPlan} from
  './alae_model.js';
import {canvasInput, canvasPoint, clearCanvas, drawPicture, showImages, strokeLine} from
  './canvas.js';
import {useWebgpuKernels} from './webgpu_kernels.js';
import {BACKENDS, activeRenderer, chooseModel, defaultBackend, describe, loadingLine,
  wasmThreads} from './startup.js';

const tf = window.tf;
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const NUM_SAMPLES = GRID;
const NOISE_SEED = 1234;

// Everything the page changes as it runs.
const state = {
  ready: false,
  error: null,
  backend: null,
  renderer: null,
  threads: null,       // WASM's thread count, as TF.js reports it
  wantedThreads: 1,    // the count asked of WASM (wasmThreads)
  convolution: null,   // WebGL's convolution: "im2col" or "direct" (webglPlan)
  isolated: false,     // window.crossOriginIsolated: WASM may use threads
  backendNote: null,   // why the page chose a backend itself
  name: null,          // the export's name
  model: null,         // an AlaeModel
  noise: null,         // fixed noise of reconstructions, interpolation and mixing, [1, noise]
  sampleW: null,       // w of the samples on show, [8, latent] or [8, S, latent]
  sampleSeed: 1,
  slots: {A: null, B: null},
  input: null,         // the last reconstruction's input and output, [1, R, R, C]
  reconstruction: null,
  timings: {},         // ms of the last call of each kind, shown in the header
  counts: {reconstruct: 0, samples: 0, interpolation: 0, mixing: 0},
  pen: null,           // the last point of the stroke being drawn, null when the pen is up
  busy: false,         // a reconstruction is running ...
  pending: false,      // ... and another one is wanted after it
  frameRequested: false,
};

// ?test=1 publishes the state for web_demo/tests/browser_check.mjs; the page never reads it.
if (params.get('test') === '1') window.alaeDemo = state;

// ---------------------------------------------------------------- messages and status

function showMessage(text) {
  const box = $('message');
  box.textContent = text;
  box.hidden = false;
}

function clearMessage() {
  $('message').hidden = true;
}

/** The line under the drawing about how a dropped picture was framed; null hides it. */
function showPhotoNote(text) {
  $('photo-note').textContent = text || '';
  $('photo-note').hidden = !text;
}

function setStatus(text) {
  $('status').textContent = text;
}

/** The page cannot go on: says why and shows the status "stopped". */
function stop(text) {
  showMessage(text);
  setStatus('stopped');
}

function fail(error) {
  state.error = error;
  showMessage(`Something went wrong: ${error}`);
}

/** Runs ``fn`` (returning a tensor), waits for its values and shows the time in the header. */
async function timed(name, fn) {
  const start = performance.now();
  const out = fn();
  await out.data();
  state.timings[name] = performance.now() - start;
  const parts = Object.entries(state.timings).map(([k, v]) => `${k} ${v.toFixed(1)} ms`);
  $('timing').textContent = `${state.backend}: ${parts.join(' · ')}`;
  return out;
}

// ---------------------------------------------------------------- reconstruction

async function reconstruct() {
  if (!state.model) return;
  if (state.busy) {
    state.pending = true;
    return;
  }
  state.busy = true;
  try {
    const x = canvasInput(tf, $('draw'), state.model);
    const y = await timed('reconstruct', () => state.model.reconstruct(x, state.noise));
    await showImages(tf, x, $('input-view'));
    await showImages(tf, y, $('reconstruction'));
    tf.dispose([state.input, state.reconstruction]);
    state.input = x;
    state.reconstruction = y;
    state.counts.reconstruct += 1;
  } finally {
    state.busy = false;
  }
  if (state.pending) {
    // Through scheduleReconstruct, so the frame it queues shows in state.frameRequested.
    state.pending = false;
    scheduleReconstruct();
  }
}

/** One reconstruction per animation frame at most, however fast the pointer moves. */
function scheduleReconstruct() {
  if (state.frameRequested) return;
  state.frameRequested = true;
  requestAnimationFrame(() => {
    state.frameRequested = false;
    reconstruct();
  });
}

function penTo(point) {
  strokeLine($('draw'), state.pen, point);
  state.pen = point;
  scheduleReconstruct();
}

async function loadFile(file) {
  if (!file || !state.model) return;
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
  const {channels, dataset, resolution} = state.model;
  // A colour model gets the centre square, as its training pictures were framed; a digit
  // model gets the whole picture on black, the background of its digits.
  const side = drawPicture($('draw'), bitmap,
                           {grayscale: channels === 1, mnist: dataset === 'mnist',
                            crop: channels === 3});
  showPhotoNote(side && `"${file.name}" (${bitmap.width} x ${bitmap.height}) was cropped to ` +
                `its centre square, ${side} x ${side}, for the model's square ${resolution} x ` +
                `${resolution} input.`);
  bitmap.close();
  await reconstruct();
}

// ---------------------------------------------------------------- samples, A and B

function fixedNoise(n) {
  return state.model.styled ? tf.tile(state.noise, [n, 1]) : undefined;
}

async function resample() {
  const {model, sampleSeed} = state;
  const psi = Number($('psi').value);
  $('psi-value').textContent = psi.toFixed(2);
  const z = tf.randomNormal([NUM_SAMPLES, model.latentDim], 0, 1, 'float32', sampleSeed);
  const noise = model.styled ? model.randomNoise(NUM_SAMPLES, sampleSeed + 1) : undefined;
  const w = model.map(z, psi);
  const images = await timed(`samples (${NUM_SAMPLES})`, () => model.decode(w, noise));
  await showImages(tf, images, $('samples'));
  tf.dispose([z, noise, images, state.sampleW]);
  state.sampleW = w;
  state.counts.samples += 1;
}

/** w as the slots keep it: [1, latent] (MLP) or [1, S, latent] (StyleALAE). */
function asSlot(w) {
  const {model} = state;
  return model.styled && w.rank === 2 ? tf.tile(w.expandDims(1), [1, model.numStyles, 1]) : w;
}

async function setSlot(name, w) {
  tf.dispose(state.slots[name]);
  const slot = asSlot(w);
  if (slot !== w) w.dispose();
  state.slots[name] = slot;
  const image = state.model.decode(slot, fixedNoise(1));
  await showImages(tf, image, $(name === 'A' ? 'a-view' : 'b-view'));
  image.dispose();
  await Promise.all([interpolate(), mix()]);
}

function sampleToSlot(event) {
  if (!state.sampleW) return;
  const r = event.currentTarget.getBoundingClientRect();
  const i = Math.min(NUM_SAMPLES - 1,
                     Math.floor((event.clientX - r.left) / r.width * NUM_SAMPLES));
  setSlot(event.shiftKey ? 'B' : 'A', tf.tidy(() => state.sampleW.slice([i], [1])));
}

async function drawingToSlot(name) {
  const x = canvasInput(tf, $('draw'), state.model);
  const w = state.model.encode(x);
  x.dispose();
  await setSlot(name, w);
}

async function interpolate() {
  const {A, B} = state.slots;
  if (!A || !B) return;
  const t = Number($('t').value);
  $('t-value').textContent = t.toFixed(2);
  const image = await timed('interpolation', () => tf.tidy(() =>
    state.model.decode(lerp(tf, A, B, t), fixedNoise(1))));
  await showImages(tf, image, $('interpolation'));
  image.dispose();
  state.counts.interpolation += 1;
}

async function mix() {
  const {A, B} = state.slots;
  if (!state.model.styled || !A || !B) return;
  const k = Number($('crossover').value);
  $('crossover-value').textContent = String(k);
  const image = await timed('mixing', () => tf.tidy(() =>
    state.model.decode(state.model.mix(A, B, k), fixedNoise(1))));
  await showImages(tf, image, $('mixing'));
  image.dispose();
  state.counts.mixing += 1;
}

// ---------------------------------------------------------------- wiring

function wireDrawing() {
  const draw = $('draw');
  draw.addEventListener('pointerdown', (e) => {
    draw.setPointerCapture(e.pointerId);
    state.pen = canvasPoint(draw, e);
    penTo(state.pen);
  });
  draw.addEventListener('pointermove', (e) => {
    if (state.pen) penTo(canvasPoint(draw, e));
  });
  for (const type of ['pointerup', 'pointercancel']) {
    draw.addEventListener(type, () => {
      state.pen = null;
      scheduleReconstruct();
    });
  }
  $('clear').addEventListener('click', () => {
    clearCanvas(draw);
    clearMessage();
    showPhotoNote(null);
    scheduleReconstruct();
  });
}

function wireFiles() {
  $('file').addEventListener('change', (e) => {
    loadFile(e.target.files[0]);
    e.target.value = '';
  });
  const draw = $('draw');
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
}

function wireLatents() {
  $('samples').addEventListener('click', sampleToSlot);
  $('to-a').addEventListener('click', () => drawingToSlot('A'));
  $('to-b').addEventListener('click', () => drawingToSlot('B'));
  $('psi').addEventListener('input', () => resample());
  $('resample').addEventListener('click', () => {
    state.sampleSeed += 2;
    resample();
  });
  $('t').addEventListener('input', () => interpolate());
  $('crossover').addEventListener('input', () => mix());
}

/** A choice in a <select> reloads the page with it as the query parameter ``key``. */
function reloadOnChange(select, key) {
  select.addEventListener('change', (e) => {
    params.set(key, e.target.value);
    location.search = params.toString();
  });
}

window.addEventListener('error', (e) => fail(String(e.message)));
window.addEventListener('unhandledrejection', (e) =>
  fail(String(e.reason && e.reason.message || e.reason)));
wireDrawing();
wireFiles();
wireLatents();

// ---------------------------------------------------------------- start-up

async function fetchJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

/** The ?backend= asked for, else the best one here (noting why in state.backendNote). */
async function requestedBackend() {
  if (params.get('backend')) return params.get('backend');
  const {backend, note} = await defaultBackend();
  state.backendNote = note;
  return backend;
}

function listModels(index, name) {
  const select = $('model');
  for (const m of index) {
    const option = new Option(m.error ? `${m.name} (unreadable)` : `${m.name} (${m.preset})`, m.name);
    option.disabled = Boolean(m.error);
    select.add(option);
  }
  select.value = name;
}

/** Asks TF.js for ``backend``; true when it runs. */
async function trySetBackend(backend) {
  if (backend === 'wasm') {
    tf.wasm.setWasmPaths(new URL('vendor/', location.href).href);
    tf.wasm.setThreadsCount(state.wantedThreads);  // read when the backend starts
  }
  try {
    const ok = await tf.setBackend(backend);
    await tf.ready();
    return ok && tf.getBackend() === backend;
  } catch (e) {
    return false;
  }
}

/**
 * Starts ``backend``; if it cannot start, WASM (for a GPU backend) or the CPU backend, with a
 * message saying so.
 */
async function startBackend(backend) {
  setStatus(`starting the ${backend} backend`);
  // WebGL compiles one shader program per op and shape unless shapes are uniforms: with them,
  // ops of one kind share a program, and a model's first run compiles far fewer.
  if (backend === 'webgl') tf.env().set('WEBGL_USE_SHAPES_UNIFORMS', true);
  if (backend === 'webgpu') useWebgpuKernels(tf);  // two of TF.js's kernels replaced
  // ?max_texture=N plays a GPU with a smaller texture limit (the tests lower it).
  if (backend === 'webgl' && params.get('max_texture')) {
    tf.env().set('WEBGL_MAX_TEXTURE_SIZE', Number(params.get('max_texture')));
  }
  if (!await trySetBackend(backend)) {
    const fallback = backend === 'webgpu' || backend === 'webgl' ? 'wasm' : 'cpu';
    if (!await trySetBackend(fallback)) await tf.setBackend('cpu');
    showMessage(`The ${backend} backend could not start in this browser; using the ` +
                `${tf.getBackend()} backend.`);
  }
  state.backend = tf.getBackend();
  $('backend').value = state.backend;
  state.renderer = activeRenderer(tf);
  showRuntime();
}

/**
 * The header's line about what computes: the backend, WASM's thread count (threads need a
 * cross-origin isolated page, which alae-demo's headers make it), WebGL's renderer and
 * texture limit.
 */
function showRuntime() {
  state.isolated = Boolean(window.crossOriginIsolated);
  state.threads = state.backend === 'wasm' ? tf.wasm.getThreadsCount() : null;
  const parts = [`backend ${state.backend}`];
  if (state.backend === 'wasm') {
    parts.push(`${state.threads} thread${state.threads === 1 ? '' : 's'}`);
  }
  if (state.backend === 'webgl') {
    parts.push(`${state.renderer}, textures up to ${textureLimit()} px` +
               (state.convolution ? `, ${state.convolution} convolutions` : ''));
  }
  if (state.backend === 'webgpu') {
    parts.push(`${state.renderer}, buffers up to ${Math.round(bufferLimit() / 2 ** 20)} MiB`);
  }
  parts.push(state.isolated ? 'cross-origin isolated' : 'not cross-origin isolated (WASM runs ' +
             'one thread)');
  $('runtime').textContent = parts.join(' · ');
}

async function loadExport(name, manifest) {
  const total = DEMO_GRAPHS.reduce((sum, g) => sum + manifest.graphs[g].bytes, 0);
  const start = performance.now();
  try {
    return await AlaeModel.load(tf, manifest,
        (graph, path, onFraction) => tf.loadGraphModel(`models/${name}/${path}`,
            {onProgress: onFraction}),
        {onProgress: (f) => {
          $('progress').value = f;
          setStatus(loadingLine(name, f, total, performance.now() - start));
        }});
  } catch (e) {
    throw new Error(`the export "${name}" could not be loaded (${e.message}); its files may be ` +
                    'damaged: export it again with alae-export --format tfjs');
  }
}

/** WEBGL_MAX_TEXTURE_SIZE of the running WebGL backend, else null (no texture limit). */
function textureLimit() {
  return state.backend === 'webgl' ? tf.env().getNumber('WEBGL_MAX_TEXTURE_SIZE') : null;
}

/** The running WebGPU device's largest storage buffer binding in bytes, else null. */
function bufferLimit() {
  return state.backend === 'webgpu' ?
    tf.backend().device.limits.maxStorageBufferBindingSize : null;
}

/**
 * Before any weights are downloaded, on WebGL: picks the convolution and the chunk sizes that
 * fit this GPU's textures (webglPlan); a model whose single image does not fit moves to the
 * WASM backend, with one line saying why. Returns {graph: most images per call}.
 */
async function fitBackendTo(manifest) {
  if (state.backend === 'webgpu') return fitWebgpuTo(manifest);
  const limit = textureLimit();
  if (!limit) return {};
  const plan = webglPlan(manifest, limit);
  const tooLarge = DEMO_GRAPHS.filter((g) => plan.maxBatch[g] < 1);
  if (!tooLarge.length) {
    state.convolution = plan.convolution;
    tf.env().set('WEBGL_EXP_CONV', plan.convolution === 'direct');
    showRuntime();
    return plan.maxBatch;
  }
  const side = Math.ceil(Math.sqrt(largestTensor(manifest, tooLarge) / TEXTURE_FILL));
  return moveToWasm(`WebGL needs ${side} x ${side} textures for one image of this model and ` +
                    `this GPU allows ${limit} x ${limit}`);  // textures as webglPlan counts
}

/** The largest tensor_values of ``graphs`` in the manifest. */
function largestTensor(manifest, graphs) {
  return Math.max(...graphs.map((g) => manifest.graphs[g].tensor_values));
}

/** A model too large for the GPU backend: WASM instead, saying ``why``; no batch limits. */
async function moveToWasm(why) {
  await startBackend('wasm');
  state.backendNote = `${why}: using ${state.backend}`;
  showMessage(`${state.backendNote}.`);
  return {};
}

/**
 * fitBackendTo on WebGPU: grids decode in chunks whose tensors fit the device's storage
 * buffers (webgpuPlan); a model whose one image does not fit moves to WASM, saying why.
 */
async function fitWebgpuTo(manifest) {
  const limit = bufferLimit();
  const plan = webgpuPlan(manifest, limit);
  const tooLarge = DEMO_GRAPHS.filter((g) => plan.maxBatch[g] < 1);
  if (!tooLarge.length) return plan.maxBatch;
  const mib = Math.ceil(4 * largestTensor(manifest, tooLarge) / 2 ** 20);
  return moveToWasm(`WebGPU needs ${mib} MiB buffers for one image of this model and this ` +
                    `device allows ${Math.floor(limit / 2 ** 20)} MiB`);
}

/** Loads the export ``name`` and fits the page to it. */
async function loadModel(name, entry) {
  const manifest = await fetchJson(`models/${name}/manifest.json`);
  const maxBatch = await fitBackendTo(manifest);
  setStatus(`loading ${name}`);
  const model = await loadExport(name, manifest);
  model.limitBatches(maxBatch);  // grids decode in chunks that fit the GPU's textures
  state.model = model;
  state.name = name;
  state.noise = model.styled ?
    tf.randomNormal([1, model.noiseSize], 0, 1, 'float32', NOISE_SEED) : null;
  if (model.styled) {
    $('mixing-panel').hidden = false;
    $('crossover').max = String(model.numStyles);
    $('crossover').value = String(Math.floor(model.numStyles / 2));
  }
  $('about').textContent = describe(manifest, entry);
  if (manifest.dataset !== 'mnist') {
    $('reconstruct-title').textContent = 'Draw or drop an image: E encodes it, G redraws it';
  }
}

async function start() {
  clearCanvas($('draw'));
  const backend = await requestedBackend();
  $('backend').value = BACKENDS.includes(backend) ? backend : 'wasm';
  reloadOnChange($('backend'), 'backend');
  if (!BACKENDS.includes(backend)) {
    stop(`Unknown backend "${backend}": use ${BACKENDS.join(', ')}.`);
    return;
  }
  const threads = wasmThreads(params.get('threads'), navigator.hardwareConcurrency);
  if (threads.problem) {
    stop(threads.problem);
    return;
  }
  state.wantedThreads = threads.threads;
  const index = await fetchJson('models/index.json');
  const {name, entry, problem} = chooseModel(index, params.get('model'));
  listModels(index, name);
  reloadOnChange($('model'), 'model');
  if (problem) {
    stop(problem);
    return;
  }
  await startBackend(backend);
  await loadModel(name, entry);
  await reconstruct();  // the first reconstruction before the grids
  await resample();
  await setSlot('A', tf.tidy(() => state.sampleW.slice([0], [1])));
  await setSlot('B', tf.tidy(() => state.sampleW.slice([1], [1])));
  setStatus(`${name} on ${state.backend}${state.renderer ? ` (${state.renderer})` : ''}: ready` +
            (state.backendNote ? ` (${state.backendNote})` : ''));
  state.ready = true;
  document.body.dataset.ready = 'true';
}

start().catch((e) => {
  state.error = String(e.message || e);
  stop(`The demo could not start: ${state.error}`);
});
