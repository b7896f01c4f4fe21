// What the page decides before it loads a model: the backend, the model, and the line that
// describes it. Plain functions of their arguments; js/app.js shows their answers.

export const BACKENDS = ['webgpu', 'webgl', 'wasm', 'cpu'];
/** TF.js's WASM build starts a pool of 8 workers: XNNPACK can use at most that many threads. */
export const MAX_WASM_THREADS = 8;
/** Renderers and adapters that compute on the CPU: slower than WASM there. */
const SOFTWARE = /swiftshader|llvmpipe|lavapipe|software|fallback/i;

/**
 * How many threads WASM computes with: ``requested`` (?threads=N) if given, else one per
 * logical core, at most MAX_WASM_THREADS. Left alone, TF.js takes half the logical cores
 * (it assumes two per physical core), so a 2-core machine computes on one thread. Threads
 * need a cross-origin isolated page; elsewhere TF.js loads its one-thread build.
 * Returns {threads} or {problem} for a ?threads= that is not a whole number from 1 to 8.
 */
export function wasmThreads(requested, cores) {
  if (requested === null || requested === undefined || requested === '') {
    return {threads: Math.max(1, Math.min(MAX_WASM_THREADS, Math.floor(cores || 1)))};
  }
  const n = Number(requested);
  if (!Number.isInteger(n) || n < 1 || n > MAX_WASM_THREADS) {
    return {problem: `?threads=${requested} is not a thread count: use a whole number from 1 ` +
      `to ${MAX_WASM_THREADS}.`};
  }
  return {threads: n};
}

/** WebGL's real renderer, or null. */
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

/** A WebGPU adapter's name ("vendor architecture") from its GPUAdapterInfo. */
export function adapterName(info) {
  const parts = [info && info.vendor, info && info.architecture, info && info.description];
  return parts.filter(Boolean).join(' ') || 'unknown adapter';
}

/** This browser's WebGPU adapter as {name, software}, or null when it has none. */
async function webgpuAdapter() {
  try {
    if (!navigator.gpu) return null;
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) return null;
    const info = adapter.info || {};
    const name = adapterName(info);
    return {name, software: Boolean(info.isFallbackAdapter || adapter.isFallbackAdapter) ||
            SOFTWARE.test(name)};
  } catch (e) {
    return null;
  }
}

/**
 * {backend, note}: WebGPU on a real GPU adapter, else WebGL on a real GPU, else WASM with a
 * note saying why. Software adapters and renderers (SwiftShader, llvmpipe) are slower than
 * WASM on a CPU.
 */
export async function defaultBackend() {
  const adapter = await webgpuAdapter();
  if (adapter && !adapter.software) return {backend: 'webgpu', note: null};
  const renderer = webglRenderer();
  if (renderer && !SOFTWARE.test(renderer)) return {backend: 'webgl', note: null};
  const found = [adapter && `WebGPU: ${adapter.name}`, renderer && `WebGL: ${renderer}`]
    .filter(Boolean);
  return {backend: 'wasm', note: found.length ?
    `the GPU backends here compute in software (${found.join('; ')}), slower than WASM: ` +
    'starting on WASM' : 'no WebGPU or WebGL here: starting on WASM'};
}

/**
 * The model to load from the server's index (models/index.json): {name, entry} or
 * {name, problem} with the message to show when it cannot be used. ``requested`` is the
 * ?model= name, if any; else mnist_mlp, else the first usable export.
 */
export function chooseModel(index, requested) {
  const usable = index.filter((m) => !m.error);
  const name = requested || (usable.find((m) => m.name === 'mnist_mlp') || usable[0] || {}).name;
  const broken = index.find((m) => m.name === name && m.error);
  if (broken) {
    return {name, problem: `The export "${name}" cannot be used: ${broken.error}. Export it ` +
      'again with alae-export --format tfjs, or choose another model.'};
  }
  const entry = usable.find((m) => m.name === name);
  if (!entry) {
    return {name, problem: `No model named "${name}" is served here; choose one of: ` +
      `${usable.map((m) => m.name).join(', ')}.`};
  }
  return {name, entry};
}

/**
 * The status line while an export downloads: bytes so far of the total and, once a rate is
 * known, the time left at that rate ("loading NAME: 1.2 of 3.9 MB, about 3 s left").
 */
export function loadingLine(name, fraction, totalBytes, elapsedMs) {
  const mb = (bytes) => (bytes / 1e6).toFixed(1);
  const done = fraction * totalBytes;
  let line = `loading ${name}: ${mb(done)} of ${mb(totalBytes)} MB`;
  if (fraction > 0.02 && fraction < 1 && elapsedMs > 500) {
    const left = elapsedMs * (1 - fraction) / fraction / 1000;
    line += left < 1 ? ', under a second left' : `, about ${Math.round(left)} s left`;
  }
  return line;
}

/** The footer's line: the export, its download size and its alae-eval scores. */
export function describe(manifest, entry) {
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
 * The renderer of a running WebGL backend or the adapter of a running WebGPU one, 'unknown'
 * if it will not say; null on the CPU backends.
 */
export function activeRenderer(tf) {
  try {
    if (tf.getBackend() === 'webgpu') return adapterName(tf.backend().adapterInfo);
    if (tf.getBackend() !== 'webgl') return null;
    const gl = tf.backend().gpgpu.gl;
    return gl.getParameter(gl.RENDERER);
  } catch (e) {
    return 'unknown';
  }
}
