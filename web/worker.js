// The page's worker: every step from a photograph's bytes to its mask, its PNG and the view
// with the outline runs here, off the page's thread, so that the page never freezes. The
// steps themselves are segment.js's; this file only sequences them and answers app.js.
//
// A classic worker, bundled with its imports by esbuild (`npm run build`, run by `npm ci`,
// into web/build/worker.js): LiteRT.js 2.5.3 loads its wasm glue with importScripts, which a
// module worker refuses, and an import map does not reach into a worker.
//
// Messages from the page, each answered with one message of the same `id` (a photograph's
// view comes first, in a message of its own):
//   {type: "load", id, model, wasm}      -> {type: "loaded", size} or {type: "failed", message}
//   {type: "segment", id, name, bytes, viewWidth}
//                                        -> {type: "drawn", width, height, area, view, times},
//                                           then {type: "segmented", png, times};
//                                           or {type: "refused", message}
//   {type: "zip", id, files: [[name, Blob]]} -> {type: "zipped", zip} or {type: "failed", message}

import {Tensor, loadAndCompile, loadLiteRt} from "@litertjs/core";
import {zipSync} from "fflate";

import * as segment from "./segment.js";

let runtime = null;  // the promise of LiteRT.js, loaded once
let network = null;  // {size, run(Float32Array) -> Promise<Float32Array>}

async function load(modelUrl, wasmDir) {
  if (!runtime) {
    // The wasm glue finds its .wasm beside the worker unless told where it is.
    self.Module = {locateFile: (file) => new URL(file, wasmDir).href};
    runtime = loadLiteRt(wasmDir).catch((error) => { runtime = null; throw error; });
  }
  await runtime;
  const model = await loadAndCompile(modelUrl, {accelerator: "wasm"});
  const shape = Array.from(model.getInputDetails()[0].shape);  // [1, s, s, 3]
  if (shape.length !== 4 || shape[1] !== shape[2] || shape[3] !== 3) {
    throw new Error(`${modelUrl}: input shape [${shape}] is not [1, s, s, 3]`);
  }
  network = {
    size: shape[1],
    async run(input) {
      const tensor = new Tensor(input, shape);
      const [output] = await model.run(tensor);
      const logits = new Float32Array(output.toTypedArray());
      tensor.delete();
      output.delete();
      return logits;
    },
  };
  return network.size;
}

// The photograph's bytes -> its bitmap and [height, width] RGBA, refusing what predict.py
// refuses.
async function decode(bytes) {
  const size = segment.photographSize(bytes);
  segment.checkSize(size);
  segment.checkComplete(bytes, size.kind);
  let bitmap;
  try {  // the pixels as stored: no EXIF rotation, no colour-profile conversion
    bitmap = await createImageBitmap(new Blob([segment.withoutOrientation(bytes)]), {
      imageOrientation: "none", colorSpaceConversion: "none", premultiplyAlpha: "none"});
  } catch (error) {
    throw new segment.PhotographError(`the browser cannot decode this ${size.kind} (${error.message})`);
  }
  if (bitmap.width !== size.width || bitmap.height !== size.height) {
    throw new segment.PhotographError(`decoded as ${bitmap.width}x${bitmap.height}, its header ` +
      `says ${size.width}x${size.height}`);
  }
  const canvas = new OffscreenCanvas(size.width, size.height);
  const context = canvas.getContext("2d", {willReadFrequently: true});
  context.drawImage(bitmap, 0, 0);
  const rgba = context.getImageData(0, 0, size.width, size.height).data;
  return {bitmap, rgba, width: size.width, height: size.height};
}

// The photograph shrunk to at most `viewWidth` pixels wide, the mask's outline in green over
// it, as an ImageBitmap for the page to show.
function view(bitmap, mask, width, height, viewWidth) {
  const scale = Math.min(1, viewWidth / width);
  const w = Math.max(1, Math.round(width * scale)), h = Math.max(1, Math.round(height * scale));
  const canvas = new OffscreenCanvas(w, h);
  const context = canvas.getContext("2d", {willReadFrequently: true});
  context.drawImage(bitmap, 0, 0, w, h);
  const picture = context.getImageData(0, 0, w, h);
  const small = new Uint8Array(w * h);  // the mask sampled at the view's pixels
  for (let y = 0; y < h; y++) {
    const row = Math.min(height - 1, Math.floor((y + 0.5) * height / h)) * width;
    for (let x = 0; x < w; x++) small[y * w + x] = mask[row + Math.min(width - 1, Math.floor((x + 0.5) * width / w))];
  }
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      if (!small[i]) continue;
      const edge = x === 0 || y === 0 || x === w - 1 || y === h - 1 ||
        !small[i - 1] || !small[i + 1] || !small[i - w] || !small[i + w];
      if (!edge) continue;
      for (const j of [i, i - 1, i + 1, i - w, i + w]) {  // two pixels thick
        if (j >= 0 && j < w * h) picture.data.set([0, 255, 0, 255], j * 4);
      }
    }
  }
  context.putImageData(picture, 0, 0);
  return canvas.transferToImageBitmap();
}

// Posts the view as soon as it is drawn ({type: "drawn", id, ...}), then returns the PNG.
async function segmentBytes(id, bytes, viewWidth) {
  if (!network) throw new Error("the model is not loaded");
  let start = performance.now();
  const photo = await decode(new Uint8Array(bytes));
  const decoded = performance.now() - start;
  const {mask, times} = await segment.segmentPhotograph(
    network.run, photo.rgba, photo.width, photo.height, network.size, 4);
  start = performance.now();
  const picture = view(photo.bitmap, mask, photo.width, photo.height, viewWidth);
  photo.bitmap.close();
  let area = 0;
  for (let i = 0; i < mask.length; i++) area += mask[i] ? 1 : 0;
  postMessage({type: "drawn", id, width: photo.width, height: photo.height, area, view: picture,
               times: {decode: decoded, ...times, draw: performance.now() - start}}, [picture]);
  start = performance.now();
  const png = await segment.encodePng(mask, photo.width, photo.height);
  return {png: png.buffer, times: {png: performance.now() - start}};
}

async function zip(files) {
  const entries = {};
  for (const [name, blob] of files) entries[name] = new Uint8Array(await blob.arrayBuffer());
  return zipSync(entries, {level: 0}).buffer;  // PNGs are compressed already: stored as they are
}

self.onmessage = async ({data}) => {
  const {type, id} = data;
  try {
    if (type === "load") {
      postMessage({type: "loaded", id, size: await load(data.model, data.wasm)});
    } else if (type === "segment") {
      const result = await segmentBytes(id, data.bytes, data.viewWidth);
      postMessage({type: "segmented", id, ...result}, [result.png]);
    } else if (type === "zip") {
      const bytes = await zip(data.files);
      postMessage({type: "zipped", id, zip: bytes}, [bytes]);
    } else {
      throw new Error(`unknown message ${type}`);
    }
  } catch (error) {
    const refused = type === "segment" && error instanceof segment.PhotographError;
    postMessage({type: refused ? "refused" : "failed", id,
                 message: refused ? error.message : `${error.message || error}`});
  }
};
