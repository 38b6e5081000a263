// The page: loads the shipped network with LiteRT.js, reads the photograph the user gives,
// runs segment.js on it, and shows and offers the mask. Every step that turns a photograph
// into a mask is in segment.js; this file only calls it and draws.

import {Tensor, loadAndCompile, loadLiteRt} from "@litertjs/core";

import * as segment from "./segment.js";

const WASM_DIR = "../node_modules/@litertjs/core/wasm/";
const MODEL_URL = "../pretrained/lesionseg_isic2017/lesionseg_int8.tflite";
const VIEW_WIDTH = 900;  // the drawing's width at most, in pixels
const MAX_SIDE = 32767;  // the largest canvas side Chromium draws

const $ = (id) => document.getElementById(id);
let network = null;  // {run(Float32Array) -> Promise<Float32Array>, size}
let downloadUrl = null;

function setState(state, status = "") {
  document.body.dataset.state = state;
  $("status").textContent = status;
}

function showError(message) {
  $("error").textContent = message;
  setState("error");
}

async function loadNetwork() {
  await loadLiteRt(WASM_DIR);  // single-threaded wasm: no cross-origin isolation needed
  const model = await loadAndCompile(MODEL_URL, {accelerator: "wasm"});
  const shape = Array.from(model.getInputDetails()[0].shape);  // [1, s, s, 3]
  if (shape.length !== 4 || shape[1] !== shape[2] || shape[3] !== 3) {
    throw new Error(`${MODEL_URL}: input shape [${shape}] is not [1, s, s, 3]`);
  }
  return {
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
}

// The photograph's bytes -> [height, width] RGB, refusing what predict.py refuses.
async function decode(name, bytes) {
  const size = segment.photographSize(bytes);
  segment.checkSize(size);
  if (Math.max(size.width, size.height) > MAX_SIDE) {
    throw new segment.PhotographError(`${size.width}x${size.height}: wider or taller than ` +
      `${MAX_SIDE} pixels, more than the browser can draw`);
  }
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
  const rgb = new Uint8Array(size.width * size.height * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    rgb[j] = rgba[i]; rgb[j + 1] = rgba[i + 1]; rgb[j + 2] = rgba[i + 2];
  }
  return {bitmap, rgb, width: size.width, height: size.height};
}

// The photograph shrunk to the view, the predicted outline in green over it.
function draw(bitmap, mask, width, height) {
  const scale = Math.min(1, VIEW_WIDTH / width);
  const w = Math.max(1, Math.round(width * scale)), h = Math.max(1, Math.round(height * scale));
  const canvas = $("view");
  canvas.width = w;
  canvas.height = h;
  const context = canvas.getContext("2d");
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
        if (j < 0 || j >= w * h) continue;
        picture.data.set([0, 255, 0, 255], j * 4);
      }
    }
  }
  context.putImageData(picture, 0, 0);
}

function report(rows) {
  $("result").replaceChildren(...rows.map(([label, value]) => {
    const tr = document.createElement("tr");
    for (const text of [label, value]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    return tr;
  }));
}

async function segmentFile(name, bytesPromise) {
  const start = performance.now();
  $("error").textContent = "";
  $("download").hidden = true;
  report([]);
  setState("busy", `Segmenting ${name}…`);
  try {
    if (!network) throw new Error("the model is not loaded");
    const bytes = new Uint8Array(await bytesPromise);
    const photo = await decode(name, bytes);
    const decoded = performance.now();
    const {mask, times} = await segment.segmentPhotograph(
      network.run, photo.rgb, photo.width, photo.height, network.size);
    const drawStart = performance.now();
    draw(photo.bitmap, mask, photo.width, photo.height);
    const drawn = performance.now();
    let area = 0;
    for (let i = 0; i < mask.length; i++) area += mask[i] ? 1 : 0;
    const png = await segment.encodePng(mask, photo.width, photo.height);
    if (downloadUrl) URL.revokeObjectURL(downloadUrl);
    downloadUrl = URL.createObjectURL(new Blob([png], {type: "image/png"}));
    const stem = name.replace(/\.[^.]*$/, "");
    const link = $("download");
    link.href = downloadUrl;
    link.download = `${stem}_segmentation.png`;
    link.textContent = `Download the mask (${stem}_segmentation.png, ${photo.width}x${photo.height})`;
    link.hidden = false;
    const timing = {decode: decoded - start, resize: times.resize, network: times.network,
                    postprocess: times.postprocess, draw: drawn - drawStart, total: drawn - start};
    report([
      ["photograph", `${name}, ${photo.width}x${photo.height} pixels`],
      ["lesion area", `${area.toLocaleString("en")} pixels, ` +
        `${(100 * area / mask.length).toFixed(1)}% of the photograph`],
      ["time", `${(timing.total / 1000).toFixed(2)} s (decode ${timing.decode.toFixed(0)} ms, ` +
        `network input ${timing.resize.toFixed(0)} ms, network ${timing.network.toFixed(0)} ms, ` +
        `post-processing ${timing.postprocess.toFixed(0)} ms, drawing ${timing.draw.toFixed(0)} ms)`],
    ]);
    window.lesionseg.last = {name, width: photo.width, height: photo.height, area, times: timing};
    setState("done", `${name}: done.`);
  } catch (error) {
    const message = error instanceof segment.PhotographError ? error.message :
      `could not segment it (${error.message})`;
    showError(`${name}: ${message}`);
  }
}

window.lesionseg = {segmentFile, last: null, inputSize: null};

$("file").addEventListener("change", (event) => {
  const file = event.target.files[0];
  if (file) segmentFile(file.name, file.arrayBuffer());
});
const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  const file = event.dataTransfer.files[0];
  if (file) segmentFile(file.name, file.arrayBuffer());
});
for (const button of document.querySelectorAll("#examples button")) {
  button.addEventListener("click", () => {
    const url = button.dataset.src;
    segmentFile(url.split("/").pop(), fetch(url).then((r) => r.arrayBuffer()));
  });
}

try {
  network = await loadNetwork();
  window.lesionseg.inputSize = network.size;
  setState("ready", `Model loaded (input ${network.size}x${network.size}). Choose a photograph.`);
} catch (error) {
  showError(`The model could not be loaded: ${error.message}`);
}
