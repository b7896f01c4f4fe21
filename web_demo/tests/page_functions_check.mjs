#!/usr/bin/env node
// Calls the page's plain functions (js/startup.js, js/alae_model.js) on fixed arguments in Node
// and prints their answers as JSON; tests/test_web_demo.py judges them.
import {webgpuPlan} from '../js/alae_model.js';
import {loadingLine, wasmThreads} from '../js/startup.js';

const manifest = {graphs: {encoder: {tensor_values: 2 ** 20}, generator: {tensor_values: 2 ** 22},
                           mapping: {}}};
process.stdout.write(JSON.stringify({
  threads: {
    default_2_cores: wasmThreads(null, 2), default_64_cores: wasmThreads('', 64),
    asked_3: wasmThreads('3', 2), asked_0: wasmThreads('0', 2), asked_x: wasmThreads('x', 2),
    asked_9: wasmThreads('9', 2),
  },
  loading: {
    start: loadingLine('m', 0, 3.9e6, 0), half: loadingLine('m', 0.5, 3.9e6, 3000),
    nearly: loadingLine('m', 0.99, 3.9e6, 3000), done: loadingLine('m', 1, 3.9e6, 6000),
  },
  // 1 GiB buffers: 64 images of 4 MiB-per-image tensors, 256 of 1 MiB; no need: Infinity
  webgpu: webgpuPlan(manifest, 2 ** 30).maxBatch,
  webgpu_small: webgpuPlan(manifest, 2 ** 23).maxBatch,
}, (k, v) => (v === Infinity ? 'Infinity' : v)) + '\n');
