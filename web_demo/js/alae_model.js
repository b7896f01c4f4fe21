// An ALAE TF.js export (alae-export --format tfjs) as one object: encode, decode, map,
// reconstruct, style mixing. Shared by the page (tf is the global from tf.min.js) and by the
// Node tools (tf is the @tensorflow/tfjs module), so both run the same code.

/** The graphs the demo needs; "reconstruct" holds the encoder and generator weights again. */
export const DEMO_GRAPHS = ['encoder', 'generator', 'mapping'];
/** MNIST's digits are 28 px; an MNIST export's resolution may be larger (32 px). */
export const MNIST_SIDE = 28;
/**
 * The share of a WebGL texture limit (max side squared) one call may fill with one tensor, in
 * values: TF.js's unpacked programs keep one value per texel (its packed ones 4), and packed
 * textures round each side up to an even size.
 */
export const TEXTURE_FILL = 0.9;
/** The page's largest batch: its sample grid. */
export const GRID = 8;

/**
 * How TF.js's WebGL backend should run an export under a texture limit of ``maxTextureSize``
 * (WEBGL_MAX_TEXTURE_SIZE), from the manifest's per-graph texture needs:
 *
 * - convolution "im2col" (TF.js's default and fastest) while every graph's im2col matrix for a
 *   whole grid fits one texture as it is: N * im2col_values within the fill, and the matrix's
 *   width (im2col_width / 2 texels, packed) within the limit. Past the limit TF.js folds the
 *   texture into a square and the convolution's result is wrong (0.27 off on the 128 px test
 *   model's images, measured against WASM with 1024 px textures);
 * - else "direct" (WEBGL_EXP_CONV: a packed convolution with no im2col matrix), one image per
 *   call for the graphs with convolutions: there, with 688 px textures, one image at a time
 *   matched WASM to 2e-6, six at a time were 0.10 off.
 *
 * Returns {convolution, maxBatch: {graph: most images per call}} (Infinity where the manifest
 * says nothing: exports written before it did, whose convolutions run as TF.js chooses).
 */
export function webglPlan(manifest, maxTextureSize) {
  const graphs = Object.entries(manifest.graphs || {});
  const capacity = TEXTURE_FILL * maxTextureSize * maxTextureSize;
  const most = (values) => (values ? Math.floor(capacity / values) : Infinity);
  const im2colFits = graphs.every(([, g]) => (
    !g.im2col_values || (most(g.im2col_values) >= GRID && g.im2col_width / 2 <= maxTextureSize)));
  const convolution = im2colFits ? 'im2col' : 'direct';
  const convolved = (g) => (convolution === 'im2col' ? most(g.im2col_values) : 1);
  const maxBatch = Object.fromEntries(graphs.map(([name, g]) => [name, Math.min(
      g.im2col_values ? convolved(g) : Infinity, most(g.tensor_values))]));
  return {convolution, maxBatch};
}

/**
 * {maxBatch: {graph: most images per call}} on TF.js's WebGPU backend, whose convolutions
 * need no im2col matrix of the size WebGL's do: one storage buffer (at most
 * ``maxBindingBytes``, the device's maxStorageBufferBindingSize) holds a whole tensor, so a
 * graph's largest float32 tensor (manifest ``tensor_values`` per image) times the batch must
 * fit. Infinity where the manifest says nothing.
 */
export function webgpuPlan(manifest, maxBindingBytes) {
  const most = (values) => (values ? Math.floor(maxBindingBytes / (4 * values)) : Infinity);
  return {maxBatch: Object.fromEntries(Object.entries(manifest.graphs || {}).map(
      ([name, g]) => [name, most(g.tensor_values)]))};
}

export class AlaeModel {
  /**
   * @param tf the TF.js namespace.
   * @param manifest the export's manifest.json.
   * @param graphs {name: tf.GraphModel}.
   */
  constructor(tf, manifest, graphs) {
    if (!manifest || !String(manifest.format || '').startsWith('alae-tf TF.js export')) {
      throw new Error('not an alae-tf TF.js export (manifest.json has no alae-tf format)');
    }
    this.tf = tf;
    this.manifest = manifest;
    this.graphs = graphs;
    this.resolution = manifest.resolution;
    this.channels = manifest.channels;
    this.latentDim = manifest.latent_dim;
    this.numStyles = manifest.num_styles;
    this.noiseSize = manifest.noise.size;
    this.styled = manifest.num_styles > 0;
    this.dataset = manifest.dataset;
    /** The side inputs are prepared at: MNIST's 28 px for an MNIST export, else the resolution. */
    this.frame = manifest.dataset === 'mnist' ? MNIST_SIDE : manifest.resolution;
    /** {graph: most images per call}; a larger batch is run in chunks (limitBatches). */
    this.maxBatch = {};
    /** How many calls were split into chunks, and into how many chunks in all. */
    this.chunked = {calls: 0, chunks: 0};
  }

  /**
   * Splits every later call of a graph into chunks of at most ``maxBatch[graph]`` images
   * (``webglPlan``).
   */
  limitBatches(maxBatch) {
    this.maxBatch = {...maxBatch};
  }

  /**
   * Loads an export.
   * @param loadGraph async (name, path, onFraction) => tf.GraphModel; path is the graph's
   *     model.json relative to the export folder.
   * @param onProgress optional (fraction in [0, 1]) over all graphs.
   */
  static async load(tf, manifest, loadGraph, {graphs = DEMO_GRAPHS, onProgress} = {}) {
    const missing = graphs.filter((g) => !(manifest.graphs && manifest.graphs[g]));
    if (missing.length) throw new Error(`the export has no ${missing.join(', ')} graph`);
    const total = graphs.reduce((sum, g) => sum + manifest.graphs[g].bytes, 0);
    let done = 0;
    const loaded = {};
    for (const name of graphs) {
      const size = manifest.graphs[name].bytes;
      loaded[name] = await loadGraph(name, manifest.graphs[name].path, (fraction) => {
        if (onProgress) onProgress((done + fraction * size) / total);
      });
      done += size;
      if (onProgress) onProgress(done / total);
    }
    return new AlaeModel(tf, manifest, loaded);
  }

  /**
   * images [N, frame, frame, C] -> [N, R, R, C]: centred zero padding when the frame is smaller
   * (MNIST's 28 px at 32 px, as the training data are padded in alae_tf/data.py), a bilinear
   * resize when it is larger.
   */
  fromFrame(images) {
    const side = images.shape[1];
    const r = this.resolution;
    if (side < r) {
      const before = Math.floor((r - side) / 2);
      const after = r - side - before;
      return images.pad([[0, 0], [before, after], [before, after], [0, 0]]);
    }
    return side > r ? this.tf.image.resizeBilinear(images, [r, r], false, true) : images;
  }

  /** Runs ``graph`` on ``inputs`` ({name: tensor}, batch first), in chunks if it must. */
  run(graph, inputs) {
    const model = this.graphs[graph];
    if (!model) throw new Error(`graph ${graph} is not loaded`);
    const n = Object.values(inputs)[0].shape[0];
    const most = this.maxBatch[graph] ?? Infinity;
    if (n <= most) return this.runOnce(graph, inputs);
    if (most < 1) {
      throw new Error(`the ${graph} graph needs a larger texture than this GPU allows for one ` +
                      'image');
    }
    const tf = this.tf;
    return tf.tidy(() => {
      const parts = [];
      for (let start = 0; start < n; start += most) {
        const size = Math.min(most, n - start);
        const chunk = Object.fromEntries(Object.entries(inputs).map(
            ([name, t]) => [name, t.slice([start], [size])]));
        parts.push(this.runOnce(graph, chunk));
      }
      this.chunked.calls += 1;
      this.chunked.chunks += parts.length;
      return tf.concat(parts, 0);
    });
  }

  runOnce(graph, inputs) {
    const out = this.graphs[graph].predict(inputs);
    const keys = Object.keys(this.manifest.graphs[graph].outputs);
    return out instanceof this.tf.Tensor ? out : out[keys[0]];
  }

  /** images [N, H, W, C] in [0, 1] -> w [N, latent]. */
  encode(images) {
    return this.run('encoder', {images});
  }

  /** w [N, latent] or w_styles [N, S, latent] -> images [N, H, W, C] in [0, 1]. */
  decode(w, noise) {
    const tf = this.tf;
    return tf.tidy(() => {
      if (!this.styled) return this.run('generator', {w});
      const styles = w.rank === 2 ? tf.tile(w.expandDims(1), [1, this.numStyles, 1]) : w;
      return this.run('generator', {
        w_styles: styles, noise: noise || this.zeroNoise(w.shape[0])});
    });
  }

  /** z [N, latent], psi (number or [N]) -> w [N, latent] or w_styles [N, S, latent]. */
  map(z, psi = 1) {
    const tf = this.tf;
    return tf.tidy(() => {
      const n = z.shape[0];
      const truncation = typeof psi === 'number' ? tf.fill([n], psi) : psi;
      return this.run('mapping', {z, truncation_psi: truncation});
    });
  }

  /** images -> G(E(images)), through the encoder and generator graphs. */
  reconstruct(images, noise) {
    return this.tf.tidy(() => this.decode(this.encode(images), noise));
  }

  /** The same through the one-call reconstruct graph (when it is loaded). */
  reconstructGraph(images, noise) {
    const inputs = {images};
    if (this.styled) inputs.noise = noise || this.zeroNoise(images.shape[0]);
    return this.run('reconstruct', inputs);
  }

  zeroNoise(n) {
    return this.tf.zeros([n, this.noiseSize]);
  }

  randomNoise(n, seed) {
    return this.tf.randomNormal([n, this.noiseSize], 0, 1, 'float32', seed);
  }

  /**
   * Style mixing: slots [0, crossover) from a, [crossover, S) from b. a, b: [N, latent] or
   * [N, S, latent]. Returns w_styles [N, S, latent].
   */
  mix(a, b, crossover) {
    const tf = this.tf;
    if (!this.styled) throw new Error('style mixing needs a StyleALAE export');
    return tf.tidy(() => {
      const slots = (w) => (w.rank === 2 ? tf.tile(w.expandDims(1), [1, this.numStyles, 1]) : w);
      const k = Math.max(0, Math.min(this.numStyles, Math.round(crossover)));
      const mask = tf.tensor1d(
        Array.from({length: this.numStyles}, (_, i) => (i < k ? 1 : 0))).reshape([1, -1, 1]);
      const wa = slots(a);
      const wb = slots(b);
      return wa.mul(mask).add(wb.mul(tf.scalar(1).sub(mask)));
    });
  }

  dispose() {
    for (const g of Object.values(this.graphs)) g.dispose();
  }
}

/** Linear interpolation of two w tensors, t in [0, 1]. */
export function lerp(tf, a, b, t) {
  return tf.tidy(() => a.add(b.sub(a).mul(t)));
}

/**
 * Median and p95 milliseconds of ``runs`` calls of ``call`` (which returns a tensor), after
 * 3 warm-up calls; each call is timed until its values are read back.
 */
export async function timeCalls(call, runs) {
  for (let i = 0; i < 3; i++) {
    const y = call();
    await y.data();
    y.dispose();
  }
  const ms = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    const y = call();
    await y.data();
    ms.push(performance.now() - start);
    y.dispose();
  }
  ms.sort((a, b) => a - b);
  const at = (q) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))];
  return {median_ms: at(0.5), p95_ms: at(0.95), runs};
}
