#!/usr/bin/env node
// Runs js/webgpu_kernels.js's Tile and AddN replacements on TF.js's CPU backend in Node (Node
// has no WebGPU) beside TF.js's own kernels, and prints what both computed as JSON: the rank-6
// tile of StyleALAE's upsampling and other tiles, sums of 1 to 9 tensors, and how many data
// buffers each call left behind. tests/test_web_demo.py judges the output.
import * as tf from '@tensorflow/tfjs';
import {MAX_ADDN, mergeTileAxes, useWebgpuKernels} from '../js/webgpu_kernels.js';

await tf.setBackend('cpu');
const TILES = [
  [[2, 3, 1, 4, 1, 5], [1, 1, 2, 1, 2, 1]],  // the upsampling: [N, H, 1, W, 1, C] -> 2x2
  [[2, 1, 3, 1, 2], [3, 2, 1, 2, 1]],
  [[1, 2, 3, 4, 5, 6], [2, 1, 2, 1, 2, 1]],
  [[2, 3, 4, 5, 6, 7], [1, 2, 1, 2, 1, 2]],
  [[2, 3, 2, 2, 3], [2, 2, 2, 2, 2]],  // no axis merges: TF.js's own kernel
  [[2, 3], [2, 2]],
];
const tiles = () => TILES.map(([shape, reps]) => tf.tidy(() => tf.tile(
    tf.range(0, shape.reduce((a, b) => a * b)).reshape(shape), reps).arraySync()));
const sums = () => Array.from({length: 9}, (_, n) => tf.tidy(() => tf.addN(
    Array.from({length: n + 1}, (__, i) => tf.fill([2, 3], 2 ** i))).arraySync()));
const buffers = () => tf.memory().numDataBuffers;

const reference = {tiles: tiles(), sums: sums()};
const start = buffers();
const replaced = useWebgpuKernels(tf, 'cpu');
const result = {tiles: tiles(), sums: sums()};
process.stdout.write(JSON.stringify({
  replaced, unknown_backend: useWebgpuKernels(tf, 'no-such-backend'), max_addn: MAX_ADDN,
  merged: TILES.map(([shape, reps]) => mergeTileAxes(shape, reps)), reference, result,
  leaked_buffers: buffers() - start,
}) + '\n');
