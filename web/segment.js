// A photograph to its mask in the browser: the steps of lesionseg_tf/segment.py around the
// network (paper sections 3.2 and 3.4), as pure functions over typed arrays. Each is named
// after its Python twin and tied to it by tests/test_web.py.
//
//   photograph [H, W] RGB (Uint8Array, 3 per pixel)
//     -> resizeImage: bilinear with antialiasing to the network's square input, rounded to
//        uint8 (pipeline.resize_image: tf.image.resize(antialias=True))
//     -> standardize: per-image standardization (pipeline.standardize)
//     -> the network (LiteRT.js, in app.js): [1, s, s, 2] logits
//     -> lesionProbability: softmax, the lesion channel (postprocess.lesion_probability)
//     -> probabilityToMask: 0-255 scale rounded, bicubic upscaling to [H, W], lesion at
//        >= 128, opening with the 3x3 cross (postprocess.probability_to_mask)
//   mask [H, W] (Uint8Array, 0 or 255)

export const BINARY_THRESHOLD = 128;  // postprocess.BINARY_THRESHOLD
export const MAX_PIXELS = 100_000_000;  // config.DEFAULT_MAX_PIXELS: refused from the header
export const MIN_SIDE = 8;  // smaller than a 8x8 photograph: nothing to segment
export const MAX_SIDE = 32767;  // the largest canvas side Chromium draws

// Round half to even, as tf.round (and NumPy) do.
export function roundHalfEven(x) {
  const r = Math.round(x);
  return (r - x === 0.5 && r % 2 !== 0) ? r - 1 : r;
}

// --- Reading the file: what images.photograph_size and the decoders check ---------------

export class PhotographError extends Error {}

const JPEG_SIGNATURE = [0xff, 0xd8, 0xff];
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const BMP_SIGNATURE = [0x42, 0x4d];

function startsWith(bytes, signature) {
  return bytes.length >= signature.length && signature.every((b, i) => bytes[i] === b);
}

// {kind, width, height} of an encoded JPEG, PNG or BMP, from its header; the twin of
// images.photograph_size. Throws PhotographError for anything else.
export function photographSize(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (startsWith(bytes, PNG_SIGNATURE)) {
    if (bytes.length < 24) throw new PhotographError("the PNG header is cut short");
    return {kind: "PNG", width: view.getUint32(16), height: view.getUint32(20)};
  }
  if (startsWith(bytes, BMP_SIGNATURE)) {
    if (bytes.length < 26) throw new PhotographError("the BMP header is cut short");
    return {kind: "BMP", width: Math.abs(view.getInt32(18, true)),
            height: Math.abs(view.getInt32(22, true))};
  }
  if (startsWith(bytes, JPEG_SIGNATURE)) {
    let at = 2;
    while (at + 9 < bytes.length) {
      if (bytes[at] !== 0xff) { at += 1; continue; }
      const marker = bytes[at + 1];
      const isFrame = marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker);
      if (isFrame) return {kind: "JPEG", height: view.getUint16(at + 5), width: view.getUint16(at + 7)};
      if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0xff) {
        at += marker === 0xff ? 1 : 2;
        continue;
      }
      at += 2 + view.getUint16(at + 2);
    }
    throw new PhotographError("the JPEG has no frame header (cut short or damaged)");
  }
  throw new PhotographError("not a JPEG, PNG or BMP image");
}

function lastIndexOf(bytes, pattern) {
  outer: for (let i = bytes.length - pattern.length; i >= 0; i--) {
    for (let j = 0; j < pattern.length; j++) if (bytes[i + j] !== pattern[j]) continue outer;
    return i;
  }
  return -1;
}

// Throws PhotographError where TensorFlow's decoders (and so predict.py) refuse a file that
// a browser would quietly decode: a JPEG without its end after the last scan, a PNG without
// its IEND chunk, a BMP shorter than its header says.
export function checkComplete(bytes, kind) {
  if (kind === "JPEG") {
    const scan = lastIndexOf(bytes, [0xff, 0xda]);
    const end = lastIndexOf(bytes, [0xff, 0xd9]);
    if (scan < 0 || end < scan) throw new PhotographError("the JPEG is cut short (truncated)");
  } else if (kind === "PNG") {
    if (lastIndexOf(bytes, [0x49, 0x45, 0x4e, 0x44]) < 0) {
      throw new PhotographError("the PNG is cut short (no IEND chunk)");
    }
  } else if (kind === "BMP") {
    const declared = new DataView(bytes.buffer, bytes.byteOffset).getUint32(2, true);
    if (bytes.length < declared) throw new PhotographError("the BMP is cut short");
  }
}

// A copy of a JPEG's bytes whose EXIF orientation (if any) says "as stored": browsers rotate
// a photograph by it when decoding, TensorFlow (and so predict.py) does not.
export function withoutOrientation(bytes) {
  if (!startsWith(bytes, JPEG_SIGNATURE)) return bytes;
  const copy = new Uint8Array(bytes);
  const view = new DataView(copy.buffer);
  let at = 2;
  while (at + 4 <= copy.length && copy[at] === 0xff && copy[at + 1] !== 0xda) {
    const length = view.getUint16(at + 2);
    const isExif = copy[at + 1] === 0xe1 && at + 10 <= copy.length &&
      String.fromCharCode(...copy.subarray(at + 4, at + 10)) === "Exif\0\0";
    if (isExif) {
      const tiff = at + 10;
      const little = copy[tiff] === 0x49;  // "II": little-endian
      const ifd = tiff + view.getUint32(tiff + 4, little);
      const count = ifd + 2 <= copy.length ? view.getUint16(ifd, little) : 0;
      for (let i = 0, entry = ifd + 2; i < count && entry + 12 <= copy.length; i++, entry += 12) {
        if (view.getUint16(entry, little) === 0x0112) view.setUint16(entry + 8, 1, little);
      }
    }
    at += 2 + length;
  }
  return copy;
}

// Throws PhotographError for a photograph the page will not segment (the twin of the
// max_pixels check of images.decode_photograph, a minimum size, and the browser's limit).
export function checkSize({width, height}) {
  if (width * height > MAX_PIXELS) {
    throw new PhotographError(`${width}x${height} is ${(width * height).toLocaleString("en")} ` +
      `pixels, over the limit of ${MAX_PIXELS.toLocaleString("en")}`);
  }
  if (Math.max(width, height) > MAX_SIDE) {
    throw new PhotographError(`${width}x${height}: wider or taller than ${MAX_SIDE} pixels, ` +
      "more than the browser can draw");
  }
  if (width < MIN_SIDE || height < MIN_SIDE) {
    throw new PhotographError(`${width}x${height} pixels is too small to segment ` +
      `(at least ${MIN_SIDE}x${MIN_SIDE})`);
  }
}

// --- Section 3.2: the network's input ------------------------------------------------------

// The spans and weights of TensorFlow's scale_and_translate along one axis, with the triangle
// kernel (bilinear) and antialiasing: each output position averages the inputs under a
// triangle widened by the scale when shrinking, the weights normalized to sum 1.
function triangleSpans(inSize, outSize) {
  const scale = outSize / inSize;
  const kernelScale = Math.max(1 / scale, 1);
  const radius = kernelScale;  // the triangle's radius is 1
  const starts = new Int32Array(outSize);
  const weights = [];
  for (let x = 0; x < outSize; x++) {
    const sample = (x + 0.5) / scale;
    let start = Math.ceil(sample - radius - 0.5);
    let end = Math.floor(sample + radius - 0.5);
    start = Math.min(Math.max(start, 0), inSize - 1);
    end = Math.min(Math.max(end, 0), inSize - 1) + 1;
    const w = new Float64Array(end - start);
    let total = 0;
    for (let s = start; s < end; s++) {
      const v = Math.max(0, 1 - Math.abs((s + 0.5 - sample) / kernelScale));
      w[s - start] = v;
      total += v;
    }
    if (total > 0) for (let i = 0; i < w.length; i++) w[i] /= total;
    starts[x] = start;
    weights.push(w);
  }
  return {starts, weights};
}

// [height, width, 3] uint8 -> [size, size, 3] uint8: pipeline.resize_image (columns, then
// rows, as TensorFlow gathers them), rounded half to even and clipped. With `stride` 4 the
// pixels are RGBA, as a canvas gives them, and the alpha is passed over.
export function resizeImage(rgb, width, height, size, stride = 3) {
  const cols = triangleSpans(width, size);
  const rows = triangleSpans(height, size);
  const narrow = new Float32Array(height * size * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < size; x++) {
      const w = cols.weights[x];
      let r = 0, g = 0, b = 0;
      for (let i = 0, at = (y * width + cols.starts[x]) * stride; i < w.length; i++, at += stride) {
        r += w[i] * rgb[at]; g += w[i] * rgb[at + 1]; b += w[i] * rgb[at + 2];
      }
      const out = (y * size + x) * 3;
      narrow[out] = r; narrow[out + 1] = g; narrow[out + 2] = b;
    }
  }
  const result = new Uint8Array(size * size * 3);
  const row = new Float64Array(size * 3);
  for (let y = 0; y < size; y++) {
    row.fill(0);
    const w = rows.weights[y];
    for (let i = 0; i < w.length; i++) {
      const from = (rows.starts[y] + i) * size * 3;
      for (let k = 0; k < size * 3; k++) row[k] += w[i] * narrow[from + k];
    }
    for (let k = 0; k < size * 3; k++) {
      result[y * size * 3 + k] = Math.min(255, Math.max(0, roundHalfEven(Math.fround(row[k]))));
    }
  }
  return result;
}

// uint8 pixels -> Float32Array: tf.image.per_image_standardization (mean 0, standard
// deviation 1, the deviation at least 1/sqrt(number of values)).
export function standardize(pixels) {
  let sum = 0;
  for (let i = 0; i < pixels.length; i++) sum += pixels[i];
  const mean = sum / pixels.length;
  let squares = 0;
  for (let i = 0; i < pixels.length; i++) squares += (pixels[i] - mean) ** 2;
  const deviation = Math.max(Math.sqrt(squares / pixels.length), 1 / Math.sqrt(pixels.length));
  const out = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) out[i] = (pixels[i] - mean) / deviation;
  return out;
}

// --- Section 3.4: the probability to the mask ----------------------------------------------

// [..., 2] logits (background, lesion) -> the lesion's softmax probability.
export function lesionProbability(logits) {
  const out = new Float32Array(logits.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = 1 / (1 + Math.exp(logits[2 * i] - logits[2 * i + 1]));
  return out;
}

// TensorFlow's bicubic resize along one axis (resize_bicubic, half-pixel centres, Keys'
// kernel a = -0.5 from a table of 1024 steps, taps outside the input dropped and the rest
// renormalized), as 4 indices and 4 weights per output position: the twin of
// postprocess.bicubic_weights, which reads the same numbers off tf.image.resize.
const TABLE_SIZE = 1024;
const KEYS_A = -0.5;
const KEYS_TABLE = (() => {
  const table = new Float32Array((TABLE_SIZE + 1) * 2);
  for (let i = 0; i <= TABLE_SIZE; i++) {
    const x = i / TABLE_SIZE;
    table[i * 2] = ((KEYS_A + 2) * x - (KEYS_A + 3)) * x * x + 1;
    const y = x + 1;
    table[i * 2 + 1] = ((KEYS_A * y - 5 * KEYS_A) * y + 8 * KEYS_A) * y - 4 * KEYS_A;
  }
  return table;
})();

export function bicubicTaps(inSize, outSize) {
  const scale = Math.fround(inSize / outSize);
  const indices = new Int32Array(outSize * 4);
  const weights = new Float32Array(outSize * 4);
  for (let o = 0; o < outSize; o++) {
    const position = Math.fround(Math.fround(o + 0.5) * scale - 0.5);
    const floor = Math.floor(position);
    const offset = roundHalfEven(Math.fround(position - floor) * TABLE_SIZE);
    const w = [KEYS_TABLE[offset * 2 + 1], KEYS_TABLE[offset * 2],
               KEYS_TABLE[(TABLE_SIZE - offset) * 2], KEYS_TABLE[(TABLE_SIZE - offset) * 2 + 1]];
    let total = 0;
    for (let k = 0; k < 4; k++) {
      const index = floor - 1 + k;
      if (index < 0 || index >= inSize) w[k] = 0;
      indices[o * 4 + k] = Math.min(Math.max(index, 0), inSize - 1);
      total += w[k];
    }
    for (let k = 0; k < 4; k++) weights[o * 4 + k] = w[k] / total;
  }
  return {indices, weights};
}

// [h, w] 0-255 values -> [height, width] Uint8Array of 0/1: the bicubic upscaling read as 8
// bits, >= 128 (postprocess._upscale_and_threshold). Columns first, then each output row
// from 4 rows of that: separable, in typed arrays.
export function upscaleAndThreshold(scaled, h, w, height, width) {
  const cols = bicubicTaps(w, width);
  const rows = bicubicTaps(h, height);
  const narrow = new Float32Array(h * width);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < width; x++) {
      let v = 0;
      for (let k = 0; k < 4; k++) v += cols.weights[x * 4 + k] * scaled[y * w + cols.indices[x * 4 + k]];
      narrow[y * width + x] = v;
    }
  }
  const binary = new Uint8Array(height * width);
  const limit = BINARY_THRESHOLD - 0.5;  // an 8-bit value >= 128 is a float >= 127.5
  for (let y = 0; y < height; y++) {
    const r0 = rows.indices[y * 4] * width, r1 = rows.indices[y * 4 + 1] * width;
    const r2 = rows.indices[y * 4 + 2] * width, r3 = rows.indices[y * 4 + 3] * width;
    const w0 = rows.weights[y * 4], w1 = rows.weights[y * 4 + 1];
    const w2 = rows.weights[y * 4 + 2], w3 = rows.weights[y * 4 + 3];
    const out = y * width;
    for (let x = 0; x < width; x++) {
      const v = w0 * narrow[r0 + x] + w1 * narrow[r1 + x] + w2 * narrow[r2 + x] + w3 * narrow[r3 + x];
      binary[out + x] = v >= limit ? 1 : 0;
    }
  }
  return binary;
}

// Each pixel combined with its 4 neighbours (the 3x3 cross), positions outside reading
// `outside`: erosion with `and`, dilation with `or` (postprocess._disk_extreme).
function crossExtreme(binary, width, height, isAnd, outside) {
  const out = new Uint8Array(binary.length);
  const edge = outside ? 1 : 0;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      const i = row + x;
      const up = y > 0 ? binary[i - width] : edge;
      const down = y < height - 1 ? binary[i + width] : edge;
      const left = x > 0 ? binary[i - 1] : edge;
      const right = x < width - 1 ? binary[i + 1] : edge;
      out[i] = isAnd ? (binary[i] & up & down & left & right) : (binary[i] | up | down | left | right);
    }
  }
  return out;
}

// Opening with the 3x3 cross (postprocess.open_with_disk): pixels outside the photograph
// neither erode nor dilate it.
export function openWithDisk(binary, width, height) {
  return crossExtreme(crossExtreme(binary, width, height, true, true), width, height, false, false);
}

// [s, s] lesion probability -> [height, width] 0/255 mask (postprocess.probability_to_mask).
export function probabilityToMask(probability, size, height, width) {
  const scaled = new Float32Array(probability.length);
  for (let i = 0; i < probability.length; i++) {
    scaled[i] = roundHalfEven(Math.fround(Math.min(1, Math.max(0, probability[i])) * 255));
  }
  const opened = openWithDisk(upscaleAndThreshold(scaled, size, size, height, width), width, height);
  for (let i = 0; i < opened.length; i++) opened[i] *= 255;
  return opened;
}

// The whole way (segment.segment_photograph): `network` maps a standardized
// Float32Array [1, size, size, 3] to logits [1, size, size, 2] (a promise); `stride` is 3 for
// RGB pixels, 4 for RGBA. Returns the mask and the milliseconds of each step.
export async function segmentPhotograph(network, rgb, width, height, size, stride = 3) {
  const times = {};
  let start = performance.now();
  const input = standardize(resizeImage(rgb, width, height, size, stride));
  times.resize = performance.now() - start;
  start = performance.now();
  const logits = await network(input);
  times.network = performance.now() - start;
  start = performance.now();
  const mask = probabilityToMask(lesionProbability(logits), size, height, width);
  times.postprocess = performance.now() - start;
  return {mask, times};
}

// --- Writing the mask: an 8-bit greyscale PNG, as predict.py writes it ----------------------

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes) {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

// [height, width] uint8 -> PNG bytes (single channel, 8-bit), zlib-compressed by the
// browser's CompressionStream.
export async function encodePng(mask, width, height) {
  const raw = new Uint8Array(height * (width + 1));  // each row: filter type 0, then pixels
  for (let y = 0; y < height; y++) raw.set(mask.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
  const compressed = new Uint8Array(await new Response(
    new Blob([raw]).stream().pipeThrough(new CompressionStream("deflate"))).arrayBuffer());
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header.set([8, 0, 0, 0, 0], 8);  // 8 bits, greyscale, deflate, no filter choice, no interlace
  const parts = [new Uint8Array(PNG_SIGNATURE), chunk("IHDR", header), chunk("IDAT", compressed),
                 chunk("IEND", new Uint8Array(0))];
  const png = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { png.set(p, at); at += p.length; }
  return png;
}
