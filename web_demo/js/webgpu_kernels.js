// Two kernels of TF.js 4.22's WebGPU backend, replaced for the graphs of this project's exports
// (useWebgpuKernels). Found by comparing every node of the exported graphs with the CPU backend
// in headless Chromium on SwiftShader's Vulkan adapter:
//
// - Tile of a tensor of rank 5 or more runs on the CPU: the backend reads the tensor back
//   synchronously, which is slow on any GPU and, on SwiftShader, loses the device ("A valid
//   external Instance reference no longer exists"). StyleALAE's nearest upsampling broadcasts a
//   rank-6 view [N, H, 1, W, 1, C] to [N, H, 2, W, 2, C] (TF.js runs BroadcastTo as Tile). The
//   same tile over fewer, merged axes is the same array, so the replacement merges axes and
//   keeps the work on the GPU.
// - AddN of 8 tensors comes out wrong (the StyleALAE encoder sums its 8 styles into w: 4.9 off
//   for the 32 px model; a shader with 8 inputs and an output binds 9 storage buffers, one more
//   than WebGPU's default limit per stage). The replacement adds at most MAX_ADDN at a time.

/**
 * The tile of ``shape`` by ``reps`` over merged axes: {shape, reps} of the same flattened
 * result. An axis whose inner neighbour (merged so far) is not repeated takes it in: tiling
 * the outer axis r times copies the contiguous block under it r times either way.
 */
export function mergeTileAxes(shape, reps) {
  const merged = {shape: [], reps: []};
  let size = shape[shape.length - 1];
  let rep = reps[reps.length - 1];
  for (let i = shape.length - 2; i >= 0; i--) {
    if (rep === 1) {
      size *= shape[i];
      rep = reps[i];
    } else {
      merged.shape.unshift(size);
      merged.reps.unshift(rep);
      size = shape[i];
      rep = reps[i];
    }
  }
  merged.shape.unshift(size);
  merged.reps.unshift(rep);
  return merged;
}

/** The most tensors one AddN shader adds (its inputs and output within 8 storage buffers). */
export const MAX_ADDN = 4;

const registered = new Set();

/**
 * Replaces the Tile and AddN kernels of ``backendName`` ('webgpu'; the tests replace the CPU
 * backend's to check them in Node) once per page: Tile of rank-5 and rank-6 tensors runs as a
 * tile of merged axes (rank 4 or lower), AddN adds at most MAX_ADDN tensors per call;
 * everything else goes to TF.js's kernels. Returns whether the kernels are in place (false
 * without that backend).
 */
export function useWebgpuKernels(tf, backendName = 'webgpu') {
  if (registered.has(backendName)) return true;
  const original = tf.getKernel('Tile', backendName);
  const reshapeKernel = tf.getKernel('Reshape', backendName);
  const addNKernel = tf.getKernel('AddN', backendName);
  if (!original || !reshapeKernel || !addNKernel) return false;
  const reshape = (x, shape, backend) => reshapeKernel.kernelFunc(
      {inputs: {x}, backend, attrs: {shape}});
  const tile = ({inputs, backend, attrs}) => {
    const {x} = inputs;
    const merged = x.shape.length >= 5 && x.dtype !== 'string' ?
      mergeTileAxes(x.shape, attrs.reps) : null;
    if (!merged || merged.shape.length >= 5) return original.kernelFunc({inputs, backend, attrs});
    const flat = reshape(x, merged.shape, backend);
    const tiled = original.kernelFunc({inputs: {x: flat}, backend, attrs: {reps: merged.reps}});
    const out = reshape(tiled, x.shape.map((d, i) => d * attrs.reps[i]), backend);
    backend.disposeData(flat.dataId);
    backend.disposeData(tiled.dataId);
    return out;
  };
  const addN = ({inputs, backend}) => {
    if (inputs.length <= MAX_ADDN) return addNKernel.kernelFunc({inputs, backend});
    const sums = [];
    for (let start = 0; start < inputs.length; start += MAX_ADDN) {
      sums.push(addNKernel.kernelFunc({inputs: inputs.slice(start, start + MAX_ADDN), backend}));
    }
    const out = addN({inputs: sums, backend});
    for (const sum of sums) backend.disposeData(sum.dataId);
    return out;
  };
  tf.unregisterKernel('Tile', backendName);
  tf.registerKernel({kernelName: 'Tile', backendName, kernelFunc: tile});
  tf.unregisterKernel('AddN', backendName);
  tf.registerKernel({kernelName: 'AddN', backendName, kernelFunc: addN});
  registered.add(backendName);
  return true;
}
