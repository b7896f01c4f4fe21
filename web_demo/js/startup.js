// What the page decides before it loads a model: the backend, the model, and the line that
// describes it. Plain functions of their arguments; js/app.js shows their answers.

export const BACKENDS = ['webgl', 'wasm', 'cpu'];

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

/**
 * {backend, note}: WebGL on a real GPU, else WASM with a note saying why. A software WebGL
 * renderer (SwiftShader, llvmpipe) is slower than WASM on a CPU.
 */
export function defaultBackend() {
  const renderer = webglRenderer();
  if (renderer && !/swiftshader|llvmpipe|software/i.test(renderer)) {
    return {backend: 'webgl', note: null};
  }
  return {backend: 'wasm', note: renderer ?
    `WebGL here is a software renderer (${renderer}), slower than WASM: starting on WASM` :
    'no WebGL here: starting on WASM'};
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

/** The renderer of a running WebGL backend, 'unknown' if it will not say. */
export function activeRenderer(tf) {
  try {
    const gl = tf.backend().gpgpu.gl;
    return gl.getParameter(gl.RENDERER);
  } catch (e) {
    return 'unknown';
  }
}
