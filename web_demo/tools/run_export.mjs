#!/usr/bin/env node
// Runs a TF.js export in Node with pure @tensorflow/tfjs (CPU backend, the runtime the tests
// compare against Keras and the benchmark times) or, with --backend wasm, on TF.js's
// WebAssembly backend (XNNPACK), as the page's WASM backend computes.
//
//   node tools/run_export.mjs EXPORT_DIR --inputs IN.json --out OUT.json [--backend cpu|wasm]
//       IN.json: {graph: {input: {shape: [...], data: [...]}}}; OUT.json: the same for each
//       graph's output, plus "chain_reconstruct" (encoder then generator, as the page does)
//       when IN.json has a "reconstruct" entry.
//   node tools/run_export.mjs EXPORT_DIR --bench N [--batch B]
//       prints JSON: median and p95 ms of N reconstruct calls after 3 warm-up calls.
//   node tools/run_export.mjs EXPORT_DIR --profile [--batch B]
//       prints JSON: the kernels of one reconstruct call (after one warm-up), ms summed by
//       kernel name, slowest first (tf.profile).
import fs from 'node:fs';
import path from 'node:path';
import {createRequire} from 'node:module';
import * as tf from '@tensorflow/tfjs';
import {setWasmPaths} from '@tensorflow/tfjs-backend-wasm';

import {AlaeModel, timeCalls} from '../js/alae_model.js';

function fail(message) {
  process.stderr.write(`run_export: ${message}\n`);
  process.exit(2);
}

async function loadExport(dir, graphs) {
  let manifest;
  try {
    manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  } catch (e) {
    fail(`${dir}: cannot read manifest.json (${e.message}); is it an alae-export --format tfjs folder?`);
  }
  const loadGraph = async (name, rel) => {
    const file = path.join(dir, rel);
    const folder = path.dirname(file);
    const json = JSON.parse(fs.readFileSync(file, 'utf8'));
    const weightSpecs = json.weightsManifest.flatMap((g) => g.weights);
    const data = Buffer.concat(
      json.weightsManifest.flatMap((g) => g.paths.map((p) => fs.readFileSync(path.join(folder, p)))));
    return tf.loadGraphModel(tf.io.fromMemory({
      modelTopology: json.modelTopology, weightSpecs,
      weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
      signature: json.signature, userDefinedMetadata: json.userDefinedMetadata,
    }));
  };
  return AlaeModel.load(tf, manifest, loadGraph, {graphs});
}

function toTensor(entry) {
  return tf.tensor(Float32Array.from(entry.data), entry.shape, 'float32');
}

function fromTensor(t) {
  return {shape: t.shape, data: Array.from(t.dataSync())};
}

/** Prints the median and p95 ms of ``runs`` reconstruct calls, E then G and the one graph. */
async function benchmark(dir, runs, batch) {
  const model = await loadExport(dir, ['encoder', 'generator', 'reconstruct']);
  const images = tf.randomUniform([batch, model.resolution, model.resolution, model.channels]);
  const times = {};
  for (const [name, call] of [['chain', (x) => model.reconstruct(x)],
                              ['graph', (x) => model.reconstructGraph(x)]]) {
    times[name] = await timeCalls(() => call(images), runs);
  }
  process.stdout.write(JSON.stringify({backend: tf.getBackend(), batch, ...times}) + '\n');
}

/** Prints the kernel times of one reconstruct call (E then G), summed by kernel name. */
async function profile(dir, batch) {
  const model = await loadExport(dir, ['encoder', 'generator']);
  const images = tf.randomUniform([batch, model.resolution, model.resolution, model.channels]);
  const warm = model.reconstruct(images);
  await warm.data();
  warm.dispose();
  const start = performance.now();
  const info = await tf.profile(async () => {
    const y = model.reconstruct(images);
    await y.data();
    y.dispose();
  });
  const total = performance.now() - start;
  const byName = {};
  const calls = [];
  for (const k of info.kernels) {
    const entry = (byName[k.name] ||= {name: k.name, ms: 0, calls: 0});
    const ms = await k.kernelTimeMs;
    entry.ms += ms;
    entry.calls += 1;
    calls.push({name: k.name, ms: Math.round(ms * 10) / 10, inputs: k.inputShapes,
                output: k.outputShapes});
  }
  calls.sort((a, b) => b.ms - a.ms);
  const kernels = Object.values(byName).sort((a, b) => b.ms - a.ms)
    .map((k) => ({...k, ms: Math.round(k.ms * 10) / 10}));
  process.stdout.write(JSON.stringify({backend: tf.getBackend(), batch, total_ms: total,
                                       peak_bytes: info.peakBytes, kernels,
                                       slowest_calls: calls.slice(0, 10)}) + '\n');
}

/** Runs each graph of IN.json on its inputs and writes the outputs to OUT.json. */
async function runGraphs(dir, inFile, outFile) {
  const inputs = JSON.parse(fs.readFileSync(inFile, 'utf8'));
  const graphs = new Set(Object.keys(inputs));
  if (graphs.has('reconstruct')) ['encoder', 'generator'].forEach((g) => graphs.add(g));
  const model = await loadExport(dir, [...graphs]);
  const results = {};
  for (const [graph, feeds] of Object.entries(inputs)) {
    const tensors = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, toTensor(v)]));
    const key = Object.keys(model.manifest.graphs[graph].outputs)[0];
    results[graph] = {[key]: fromTensor(model.run(graph, tensors))};
    if (graph === 'reconstruct') {
      results.chain_reconstruct = {images: fromTensor(model.reconstruct(tensors.images, tensors.noise))};
    }
  }
  fs.writeFileSync(outFile, JSON.stringify(results));
}

async function main() {
  const args = process.argv.slice(2);
  if (!args.length || args[0].startsWith('-')) fail('usage: run_export.mjs EXPORT_DIR (--inputs IN --out OUT | --bench N)');
  const option = (name, fallback) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : fallback;
  };
  const backend = option('--backend', 'cpu');
  if (!['cpu', 'wasm'].includes(backend)) fail(`--backend ${backend}: choose cpu or wasm`);
  if (backend === 'wasm') {
    const wasmMain = createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm');
    setWasmPaths(path.dirname(wasmMain) + path.sep);
  }
  if (!(await tf.setBackend(backend))) fail(`the ${backend} backend did not start`);
  if (args.includes('--profile')) {
    await profile(args[0], Number(option('--batch', '1')));
  } else if (option('--bench')) {
    await benchmark(args[0], Number(option('--bench')), Number(option('--batch', '1')));
  } else {
    await runGraphs(args[0], option('--inputs'), option('--out'));
  }
}

main().catch((e) => fail(e.stack || String(e)));
