// The page's thread: takes the photographs the user gives (chosen, dropped, a folder or an
// example), queues them, and shows what the worker (worker.js) returns: the outline, the
// mask to download, and at the end of a batch one zip of all the masks. Nothing here decodes
// a photograph or runs the network, so the page answers while a photograph is segmented.

const WORKER_URL = "build/worker.js";  // worker.js bundled by `npm ci` (package.json "build")
const WASM_DIR = new URL("../node_modules/@litertjs/core/wasm/", location.href).href;
const MODELS_URL = "models.json";  // the models the page offers: [{name, label, tflite}]
const VIEW_WIDTH = 900;  // the drawing's width at most, in pixels
const ZIP_NAME = "lesionseg_masks.zip";
const PHOTOGRAPH = /\.(jpe?g|png|bmp)$/i;  // what a folder is filtered to

const $ = (id) => document.getElementById(id);
const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

// --- The worker, asked and answered by message id ------------------------------------------

const worker = new Worker(WORKER_URL);
const pending = new Map();  // id -> {resolve, early}
let lastId = 0;

// Posts `message` and resolves with the worker's answer; `early(answer)` takes the messages
// that come before it (a photograph's view).
function ask(message, {transfer = [], early = null} = {}) {
  const id = ++lastId;
  return new Promise((resolve) => {
    pending.set(id, {resolve, early});
    worker.postMessage({...message, id}, transfer);
  });
}

worker.onmessage = ({data}) => {
  const {resolve, early} = pending.get(data.id);
  if (data.type === "drawn") {
    early(data);
    return;
  }
  pending.delete(data.id);
  resolve(data);
};
worker.onerror = (event) => {  // the worker could not start or threw outside a message
  event.preventDefault();
  const why = event.message || "it could not be loaded; run npm ci in the repository";
  const message = `the page's worker (web/${WORKER_URL}) failed: ${why}`;
  for (const {resolve} of pending.values()) resolve({type: "failed", message});
  pending.clear();
};

// --- What the page shows -------------------------------------------------------------------

let models = [];  // models.json's entries
let model = {ready: false, size: null, name: null};
const queue = [];  // {name, bytes: Promise<ArrayBuffer>, chosen: ms}
let batch = null;  // the photographs given since the queue was last empty
let running = false;

function setState(state, status) {
  document.body.dataset.state = state;
  $("status").textContent = status;
}

function addError(message) {
  const line = document.createElement("div");
  line.textContent = message;
  $("error").append(line);
}

function clearLatest() {
  const canvas = $("view");
  canvas.getContext("bitmaprenderer").transferFromImageBitmap(null);
  canvas.width = canvas.height = 0;
  $("result").replaceChildren();
  $("download").hidden = true;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement("td");
    td.append(cell);
    tr.append(td);
  }
  return tr;
}

function startBatch() {
  if (batch) for (const mask of batch.masks) URL.revokeObjectURL(mask.url);
  if (batch?.zipUrl) URL.revokeObjectURL(batch.zipUrl);
  batch = {total: 0, started: 0, masks: [], refused: [], zipUrl: null};
  window.lesionseg.batch = batch;
  $("error").replaceChildren();
  $("masks").replaceChildren();
  $("zip").hidden = true;
  clearLatest();
}

function waitingStatus() {
  const waiting = plural(queue.length, "photograph");
  if (model.error) {
    const verb = queue.length === 1 ? "waits" : "wait";
    setState("error", queue.length ? `${waiting} ${verb} for the model.` : "");
  } else {
    setState(queue.length ? "waiting" : "loading",
             queue.length ? `Loading the model… ${waiting} will be segmented once it is ready.` :
               "Loading the model…");
  }
}

// Queues photographs ({name, bytes: Promise<ArrayBuffer>}), segmented one after another.
function give(items, skipped = 0) {
  if (!batch || (!running && queue.length === 0 && batch.finished)) startBatch();
  if (skipped) addError(`${plural(skipped, "file")} of the folder skipped: not .jpg, .jpeg, .png or .bmp`);
  const chosen = performance.now();
  for (const item of items) queue.push({...item, chosen});
  batch.total += items.length;
  if (items.length) pump();
  else if (!running) finishBatch();  // a folder with no photograph: said, nothing to wait for
}

async function pump() {
  if (running) return;
  if (!model.ready) {
    waitingStatus();
    return;
  }
  running = true;
  $("model").disabled = true;  // one model for a photograph from start to end
  while (queue.length) {
    const item = queue.shift();
    batch.started += 1;
    const count = batch.total > 1 ? `${batch.started} of ${batch.total}: ` : "";
    setState("busy", `Segmenting ${count}${item.name}…`);
    await segmentOne(item);
  }
  running = false;
  $("model").disabled = false;
  await finishBatch();
}

// The photograph's outline and details as soon as the worker has drawn them.
function showDrawn(name, chosen, drawn) {
  const canvas = $("view");
  canvas.width = drawn.view.width;
  canvas.height = drawn.view.height;
  canvas.getContext("bitmaprenderer").transferFromImageBitmap(drawn.view);
  const t = {...drawn.times, total: performance.now() - chosen};
  const size = `${drawn.width}x${drawn.height}`;
  const share = `${(100 * drawn.area / (drawn.width * drawn.height)).toFixed(1)}%`;
  $("result").replaceChildren(
    row(["photograph", `${name}, ${size} pixels`]),
    row(["model", model.name]),
    row(["lesion area", `${drawn.area.toLocaleString("en")} pixels, ${share} of the photograph`]),
    row(["time", `${(t.total / 1000).toFixed(2)} s from choosing it (decode ${t.decode.toFixed(0)} ms, ` +
      `network input ${t.resize.toFixed(0)} ms, network ${t.network.toFixed(0)} ms, ` +
      `post-processing ${t.postprocess.toFixed(0)} ms, drawing ${t.draw.toFixed(0)} ms)`]));
  return {name, model: model.name, width: drawn.width, height: drawn.height, area: drawn.area,
          size, share, times: t};
}

async function segmentOne({name, bytes, chosen}) {
  let answer;
  let shown = null;
  try {
    const buffer = await bytes;
    answer = await ask({type: "segment", name, bytes: buffer, viewWidth: VIEW_WIDTH}, {
      transfer: [buffer], early: (drawn) => { shown = showDrawn(name, chosen, drawn); }});
  } catch (error) {
    answer = {type: "failed", message: `it could not be read (${error.message})`};
  }
  if (answer.type !== "segmented") {
    clearLatest();
    batch.refused.push(name);
    addError(`${name}: ${answer.type === "refused" ? answer.message :
      `could not segment it (${answer.message})`}`);
    return;
  }
  const stem = name.replace(/\.[^.]*$/, "");
  const mask = {name, file: `${stem}_segmentation.png`,
                blob: new Blob([answer.png], {type: "image/png"})};
  mask.url = URL.createObjectURL(mask.blob);
  batch.masks.push(mask);
  const link = $("download");
  link.href = mask.url;
  link.download = mask.file;
  link.textContent = `Download the mask (${mask.file}, ${shown.size})`;
  link.hidden = false;
  const each = document.createElement("a");
  each.href = mask.url;
  each.download = mask.file;
  each.textContent = mask.file;
  $("masks").append(row([name, shown.size, `lesion ${shown.share}`, `by ${shown.model}`, each]));
  window.lesionseg.count += 1;
  const {size, share, ...last} = shown;
  window.lesionseg.last = {...last, times: {...shown.times, ...answer.times}};
}

async function finishBatch() {
  const done = batch;
  done.finished = true;
  const made = plural(done.masks.length, "mask");
  const refused = done.refused.length ? `, ${done.refused.length} refused (above)` : "";
  if (done.total > 1 && done.masks.length) {
    setState("busy", `Writing ${ZIP_NAME}…`);
    const answer = await ask({type: "zip", files: done.masks.map((m) => [m.file, m.blob])});
    if (done !== batch) return;  // a new batch began meanwhile
    if (answer.type === "zipped") {
      done.zipUrl = URL.createObjectURL(new Blob([answer.zip], {type: "application/zip"}));
      const zip = $("zip");
      zip.href = done.zipUrl;
      zip.download = ZIP_NAME;
      zip.textContent = `Download all ${made} (${ZIP_NAME})`;
      zip.hidden = false;
    } else {
      addError(`${ZIP_NAME} could not be written (${answer.message}); each mask is above`);
    }
  }
  if (queue.length || running) return;
  const summary = done.total > 1 ? `Done: ${made} of ${plural(done.total, "photograph")}${refused}.` :
    `${done.masks[0]?.name}: done.`;
  setState(done.masks.length ? "done" : "error", done.masks.length ? summary : "");
}

// models.json's entries, offered in the model choice where there are several.
async function readModels() {
  const response = await fetch(MODELS_URL);
  if (!response.ok) throw new Error(`web/${MODELS_URL}: HTTP ${response.status}`);
  models = await response.json();
  const choice = $("model");
  choice.replaceChildren(...models.map((entry, i) => {
    const option = document.createElement("option");
    option.value = String(i);
    option.textContent = `${entry.name}: ${entry.label}`;
    return option;
  }));
  $("model-choice").hidden = models.length < 2;
}

async function loadModel() {
  const entry = models[Number($("model").value || 0)];
  model = {ready: false, size: null, error: null, name: entry.name};
  window.lesionseg.model = null;
  $("retry").hidden = true;
  $("load-error").textContent = "";  // a new attempt: the last one's failure no longer holds
  waitingStatus();
  const url = new URL(entry.tflite, new URL(MODELS_URL, location.href)).href;
  const answer = await ask({type: "load", model: url, wasm: WASM_DIR});
  if (model.name !== entry.name) return;  // another model was chosen meanwhile
  if (answer.type !== "loaded") {
    model.error = answer.message;
    $("load-error").textContent = `The model could not be loaded (${answer.message}). Check the ` +
      "connection and press Retry; photographs chosen meanwhile are kept and wait for it.";
    $("retry").hidden = false;
    waitingStatus();
    return;
  }
  model = {ready: true, size: answer.size, name: entry.name};
  $("load-error").textContent = "";
  window.lesionseg.inputSize = answer.size;
  window.lesionseg.model = entry.name;
  if (queue.length) {
    pump();
  } else {
    setState("ready", `Model ${entry.name} loaded (input ${answer.size}x${answer.size}). ` +
      "Choose photographs.");
  }
}

// --- Where photographs come from -----------------------------------------------------------

const fromFiles = (files) => files.map((file) => ({name: file.name, bytes: file.arrayBuffer()}));

function giveFolder(files) {
  const photographs = files.filter((f) => PHOTOGRAPH.test(f.name))
    .sort((a, b) => (a.webkitRelativePath || a.name).localeCompare(b.webkitRelativePath || b.name));
  give(fromFiles(photographs), files.length - photographs.length);
}

for (const id of ["file", "folder"]) {
  $(id).addEventListener("change", (event) => {
    const files = Array.from(event.target.files);
    event.target.value = "";  // the same file chosen again is a new choice
    if (id === "folder") giveFolder(files);
    else if (files.length) give(fromFiles(files));
  });
}

// A dropped folder's files, read through its entries (where the browser gives them).
async function entryFiles(entry) {
  if (entry.isFile) return [await new Promise((ok, fail) => entry.file(ok, fail))];
  const reader = entry.createReader();
  const files = [];
  for (;;) {
    const entries = await new Promise((ok, fail) => reader.readEntries(ok, fail));
    if (!entries.length) return files;
    for (const child of entries) files.push(...await entryFiles(child));
  }
}

const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", async (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  const entries = Array.from(event.dataTransfer.items || [], (item) => item.webkitGetAsEntry?.());
  if (entries.some((entry) => entry?.isDirectory)) {
    const files = [];
    for (const entry of entries.filter(Boolean)) files.push(...await entryFiles(entry));
    giveFolder(files);
  } else {
    const files = Array.from(event.dataTransfer.files);
    if (files.length) give(fromFiles(files));
  }
});
for (const button of document.querySelectorAll("#examples button")) {
  button.addEventListener("click", () => {
    const url = button.dataset.src;
    give([{name: url.split("/").pop(), bytes: fetch(url).then((r) => {
      if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
      return r.arrayBuffer();
    })}]);
  });
}
$("retry").addEventListener("click", loadModel);
$("model").addEventListener("change", loadModel);

// The tests' and `tools.web --time`'s window into the page.
window.lesionseg = {last: null, inputSize: null, model: null, count: 0, batch: null};
try {
  await readModels();
  loadModel();
} catch (error) {
  model.error = error.message;
  $("load-error").textContent = `The list of models could not be read (${error.message}).`;
  waitingStatus();
}
