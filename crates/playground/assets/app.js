// backprop playground: the page. Training happens on the server; this draws what it streams.
"use strict";

const FEATURES = [
  ["x1", "X₁", (a, b) => a],
  ["x2", "X₂", (a, b) => b],
  ["x1sq", "X₁²", (a, b) => a * a],
  ["x2sq", "X₂²", (a, b) => b * b],
  ["x1x2", "X₁X₂", (a, b) => a * b],
  ["sinx1", "sin(X₁)", (a, b) => Math.sin(a)],
  ["sinx2", "sin(X₂)", (a, b) => Math.sin(b)],
];
const DATASETS = [
  ["circle", "Circle", "classification"], ["xor", "Exclusive or", "classification"],
  ["gauss", "Gaussian", "classification"], ["spiral", "Spiral", "classification"],
  ["blobs", "Blobs (multiclass)", "classification"], ["spirals", "Spirals (multiclass)", "classification"],
  ["plane", "Plane (regression)", "regression"], ["multigauss", "Multi-Gaussian (regression)", "regression"],
];
// The menus come from the server (/api/options), which reads the library's own lists.
let ACTIVATIONS = [];
const CLASS_COLORS = [[245, 147, 34], [8, 119, 189], [46, 160, 44], [214, 39, 40], [148, 103, 189], [140, 86, 75], [227, 119, 194], [23, 190, 207]];
const DEFAULTS = {
  dataset: "circle", classes: 3, points: 500, noise: 0, train_fraction: 0.5, batch_size: 10, seed: 1,
  features: ["x1", "x2"], layers: [{ neurons: 4, activation: "tanh" }, { neurons: 2, activation: "tanh" }],
  dropout: 0, learning_rate: 0.03, regularization: "none", regularization_rate: 0,
  problem: "classification", loss: "cross-entropy", optimizer: "sgd", momentum: 0, speed: 1,
};

const $ = (id) => document.getElementById(id);
const state = {
  cfg: null, id: null, setup: null, version: 0, frame: null, history: [], playing: false,
  showTest: false, discretize: false, selected: null, events: null, framesThisSecond: 0,
  fps: 0, drawPending: false, mathTimer: null, creating: null,
};
window.playground = state; // for tests and the curious

// ---------- URL state ----------
function cfgToHash(cfg) {
  const p = new URLSearchParams();
  p.set("dataset", cfg.dataset); p.set("classes", cfg.classes); p.set("points", cfg.points);
  p.set("noise", cfg.noise); p.set("ratio", cfg.train_fraction); p.set("batch", cfg.batch_size);
  p.set("seed", cfg.seed); p.set("features", cfg.features.join(","));
  p.set("layers", cfg.layers.map((l) => l.neurons + ":" + l.activation).join(","));
  p.set("dropout", cfg.dropout); p.set("lr", cfg.learning_rate); p.set("reg", cfg.regularization);
  p.set("regRate", cfg.regularization_rate); p.set("problem", cfg.problem); p.set("loss", cfg.loss);
  p.set("optimizer", cfg.optimizer); p.set("momentum", cfg.momentum); p.set("speed", cfg.speed);
  p.set("showTest", state.showTest ? 1 : 0); p.set("discretize", state.discretize ? 1 : 0);
  return "#" + p.toString();
}

function cfgFromHash() {
  const cfg = JSON.parse(JSON.stringify(DEFAULTS));
  const p = new URLSearchParams(location.hash.slice(1));
  const num = (k, f) => { if (p.has(k) && p.get(k) !== "" && !isNaN(+p.get(k))) f(+p.get(k)); };
  if (p.has("dataset")) cfg.dataset = p.get("dataset");
  num("classes", (v) => cfg.classes = v); num("points", (v) => cfg.points = v);
  num("noise", (v) => cfg.noise = v); num("ratio", (v) => cfg.train_fraction = v);
  num("batch", (v) => cfg.batch_size = v); num("seed", (v) => cfg.seed = v);
  if (p.has("features")) cfg.features = p.get("features").split(",").filter((s) => s);
  if (p.has("layers")) cfg.layers = p.get("layers") === "" ? [] : p.get("layers").split(",").map((s) => {
    const [n, a] = s.split(":"); return { neurons: +n, activation: a || "tanh" };
  });
  num("dropout", (v) => cfg.dropout = v); num("lr", (v) => cfg.learning_rate = v);
  if (p.has("reg")) cfg.regularization = p.get("reg");
  num("regRate", (v) => cfg.regularization_rate = v);
  if (p.has("problem")) cfg.problem = p.get("problem");
  if (p.has("loss")) cfg.loss = p.get("loss") === "cross_entropy" ? "cross-entropy" : p.get("loss");
  if (p.has("optimizer")) cfg.optimizer = p.get("optimizer");
  num("momentum", (v) => cfg.momentum = v);
  // links from before the optimizer list: "momentum" was SGD with momentum 0.9
  if (cfg.optimizer === "momentum") { cfg.optimizer = "sgd"; cfg.momentum = 0.9; }
  num("speed", (v) => cfg.speed = v);
  state.showTest = p.get("showTest") === "1";
  state.discretize = p.get("discretize") === "1";
  return cfg;
}

// ---------- server ----------
async function api(method, path, body, raw) {
  const opts = { method, headers: {} };
  if (body !== undefined) {
    opts.body = raw ? body : JSON.stringify(body);
    opts.headers["content-type"] = raw ? "text/csv" : "application/json";
  }
  const r = await fetch(path, opts);
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = { error: text }; }
  if (!r.ok) {
    const err = new Error((data && data.error) || r.statusText);
    err.status = r.status;
    throw err;
  }
  return data;
}

function showError(msg) {
  const e = $("error");
  if (!msg) { e.hidden = true; e.textContent = ""; return; }
  e.hidden = false; e.textContent = msg;
}

async function createSession() {
  const snap = await api("POST", "/api/sessions", state.cfg);
  state.id = snap.id;
  applySnapshot(snap);
  openEvents();
}

function openEvents() {
  if (state.events) state.events.close();
  const es = new EventSource(`/api/sessions/${state.id}/events`);
  es.addEventListener("frame", (ev) => {
    const f = JSON.parse(ev.data);
    if (!f) return;
    state.framesThisSecond++;
    if (f.version !== state.version) { refreshSnapshot(); return; }
    acceptFrame(f);
  });
  es.onerror = () => {
    // the server may have closed an idle session: make a new one with the same set-up
    if (es.readyState === EventSource.CLOSED) recover();
  };
  state.events = es;
}

async function recover() {
  try { await api("GET", `/api/sessions/${state.id}`); openEvents(); }
  catch (e) { if (e.status === 404) { await createSession(); } }
}

async function refreshSnapshot() {
  try { applySnapshot(await api("GET", `/api/sessions/${state.id}`)); }
  catch (e) { if (e.status === 404) await createSession(); else showError(e.message); }
}

async function sessionCall(method, path, body, raw) {
  try {
    return await api(method, `/api/sessions/${state.id}${path}`, body, raw);
  } catch (e) {
    if (e.status === 404) { await createSession(); return api(method, `/api/sessions/${state.id}${path}`, body, raw); }
    throw e;
  }
}

function applySnapshot(snap) {
  state.version = snap.version;
  state.setup = snap.setup;
  state.cfg = snap.setup.config;
  state.history = (snap.history || []).slice();
  state.playing = snap.playing;
  history.replaceState(null, "", cfgToHash(state.cfg));
  buildControls();
  buildNetwork();
  if (snap.frame) acceptFrame(snap.frame);
}

function acceptFrame(f) {
  state.frame = f;
  state.playing = f.playing;
  if (f.history && (!state.history.length || state.history[state.history.length - 1][0] < f.history[0])) {
    state.history.push(f.history);
    if (state.history.length > 2000) state.history = state.history.filter((_, i) => i % 2 === 0);
  }
  if (f.epoch === 0) state.history = [];
  if (!state.drawPending) {
    state.drawPending = true;
    requestAnimationFrame(() => { state.drawPending = false; draw(); });
  }
}

async function setConfig(change) {
  const cfg = Object.assign(JSON.parse(JSON.stringify(state.cfg)), change);
  try {
    const snap = await sessionCall("PUT", "/config", cfg);
    showError(null);
    applySnapshot(snap);
  } catch (e) {
    showError(e.message);
    buildControls(); // back to what the server has
  }
}

// ---------- colours ----------
function diverging(v) {
  // orange (−1) – white (0) – blue (+1), as TensorFlow Playground
  const t = Math.max(-1, Math.min(1, v));
  const [c, a] = t < 0 ? [CLASS_COLORS[0], -t] : [CLASS_COLORS[1], t];
  return [255 + (c[0] - 255) * a, 255 + (c[1] - 255) * a, 255 + (c[2] - 255) * a];
}
function classColor(k, conf) {
  const c = CLASS_COLORS[k % CLASS_COLORS.length];
  const a = Math.max(0, Math.min(1, conf));
  return [255 + (c[0] - 255) * a, 255 + (c[1] - 255) * a, 255 + (c[2] - 255) * a];
}

function paintGrid(canvas, side, colorAt) {
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(side, side);
  for (let i = 0; i < side * side; i++) {
    const c = colorAt(i);
    img.data[4 * i] = c[0]; img.data[4 * i + 1] = c[1]; img.data[4 * i + 2] = c[2]; img.data[4 * i + 3] = 255;
  }
  canvas.width = side; canvas.height = side;
  ctx.putImageData(img, 0, 0);
}

// ---------- controls ----------
function setSelect(id, value) {
  const el = $(id);
  const v = String(value);
  if (![...el.options].some((o) => (o.value || o.text) === v)) {
    const o = document.createElement("option"); o.text = v; o.value = v; el.add(o);
  }
  el.value = v;
}

function buildControls() {
  const cfg = state.cfg;
  setSelect("lr", cfg.learning_rate); setSelect("optimizer", cfg.optimizer); setSelect("momentum", cfg.momentum);
  setSelect("reg", cfg.regularization); setSelect("reg-rate", cfg.regularization_rate);
  setSelect("problem", cfg.problem); setSelect("loss", cfg.loss);
  setSelect("dropout", cfg.dropout); setSelect("speed", cfg.speed);
  setSelect("classes", cfg.classes); setSelect("points", cfg.points);
  $("ratio").value = Math.round(cfg.train_fraction * 100); $("ratio-v").textContent = Math.round(cfg.train_fraction * 100) + "%";
  $("noise").value = Math.round(cfg.noise * 100); $("noise-v").textContent = Math.round(cfg.noise * 100);
  $("batch").value = cfg.batch_size; $("batch-v").textContent = cfg.batch_size;
  $("seed").textContent = cfg.seed;
  $("classes-row").style.display = ["blobs", "spirals"].includes(cfg.dataset) ? "" : "none";
  $("show-test").checked = state.showTest; $("discretize").checked = state.discretize;
  $("play").textContent = state.playing ? "❚❚" : "▶";
  const box = $("datasets");
  if (!box.childElementCount) {
    for (const [name, label] of DATASETS) {
      const b = document.createElement("button");
      b.dataset.dataset = name; b.title = label;
      const c = document.createElement("canvas"); c.width = 40; c.height = 40;
      b.appendChild(c);
      b.appendChild(document.createTextNode(label.replace(/ \(.*/, "")));
      b.onclick = () => {
        const problem = DATASETS.find((d) => d[0] === name)[2];
        const change = { dataset: name, problem };
        if (problem === "regression") change.loss = "squared";
        setConfig(change);
      };
      box.appendChild(b);
    }
    const up = document.createElement("button");
    up.dataset.dataset = "upload"; up.textContent = "Uploaded CSV"; up.title = "Upload a CSV below";
    up.onclick = () => $("upload").click();
    box.appendChild(up);
  }
  for (const b of box.children) b.classList.toggle("active", b.dataset.dataset === cfg.dataset);
  drawThumbnails();
}

// a sketch of each generated set (the current one shows its real points)
const SKETCH = {
  circle: (t, i) => { const r = i % 2 ? 0.25 * t : 0.75 + 0.2 * t, a = 2 * Math.PI * ((i * 0.618) % 1); return [r * Math.cos(a), r * Math.sin(a), i % 2]; },
  xor: (t, i) => { const x = ((i * 0.754877) % 1) * 2 - 1, y = ((i * 0.569840) % 1) * 2 - 1; return [x, y, x * y > 0 ? 1 : 0]; },
  gauss: (t, i) => { const c = i % 2 ? 0.45 : -0.45, a = 2 * Math.PI * ((i * 0.618) % 1), r = 0.3 * t; return [c + r * Math.cos(a), c + r * Math.sin(a), i % 2]; },
  spiral: (t, i) => { const r = 0.05 + 0.9 * t, a = 1.75 * 2 * Math.PI * t + Math.PI * (i % 2); return [r * Math.cos(a), r * Math.sin(a), i % 2]; },
  blobs: (t, i) => { const k = i % 3, a = 2 * Math.PI * k / 3, b = 2 * Math.PI * ((i * 0.618) % 1), r = 0.25 * t; return [0.6 * Math.cos(a) + r * Math.cos(b), 0.6 * Math.sin(a) + r * Math.sin(b), k]; },
  spirals: (t, i) => { const k = i % 3, r = 0.05 + 0.9 * t, a = 1.25 * 2 * Math.PI * t + 2 * Math.PI * k / 3; return [r * Math.cos(a), r * Math.sin(a), k]; },
  plane: (t, i) => { const x = ((i * 0.754877) % 1) * 2 - 1, y = ((i * 0.569840) % 1) * 2 - 1; return [x, y, (x + y) / 2]; },
  multigauss: (t, i) => { const x = ((i * 0.754877) % 1) * 2 - 1, y = ((i * 0.569840) % 1) * 2 - 1; const g = (cx, cy) => Math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 0.08); return [x, y, g(-0.6, 0.6) - g(0.6, 0.6) - g(-0.6, -0.6) + g(0.6, -0.6)]; },
};

function drawThumbnails() {
  for (const b of $("datasets").children) {
    const c = b.querySelector("canvas");
    if (!c) continue;
    const ctx = c.getContext("2d"), name = b.dataset.dataset;
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, 40, 40);
    if (name === state.cfg.dataset && state.setup) { drawPoints(ctx, 40, state.setup.train, 1.2, false); continue; }
    const f = SKETCH[name];
    const regression = ["plane", "multigauss"].includes(name), multi = ["blobs", "spirals"].includes(name);
    for (let i = 0; i < 120; i++) {
      const [x, y, t] = f((i * 0.381966) % 1, i);
      const col = regression ? diverging(t).map(Math.round) : CLASS_COLORS[multi ? t : t];
      ctx.fillStyle = `rgb(${col})`;
      ctx.fillRect(20 + x * 18 - 1, 20 - y * 18 - 1, 2.2, 2.2);
    }
  }
}

function bindControls() {
  const onSel = (id, key, conv) => $(id).addEventListener("change", (e) => setConfig({ [key]: conv(e.target.value) }));
  onSel("lr", "learning_rate", Number); onSel("optimizer", "optimizer", String);
  onSel("momentum", "momentum", Number);
  onSel("reg", "regularization", String); onSel("reg-rate", "regularization_rate", Number);
  onSel("loss", "loss", String); onSel("dropout", "dropout", Number); onSel("speed", "speed", Number);
  onSel("classes", "classes", Number); onSel("points", "points", Number);
  $("problem").addEventListener("change", (e) => {
    const problem = e.target.value;
    const ds = problem === "regression" ? "plane" : "circle";
    setConfig({ problem, dataset: state.cfg.dataset === "upload" ? "upload" : ds, loss: problem === "regression" ? "squared" : state.cfg.loss });
  });
  $("ratio").addEventListener("input", (e) => $("ratio-v").textContent = e.target.value + "%");
  $("ratio").addEventListener("change", (e) => setConfig({ train_fraction: e.target.value / 100 }));
  $("noise").addEventListener("input", (e) => $("noise-v").textContent = e.target.value);
  $("noise").addEventListener("change", (e) => setConfig({ noise: e.target.value / 100 }));
  $("batch").addEventListener("input", (e) => $("batch-v").textContent = e.target.value);
  $("batch").addEventListener("change", (e) => setConfig({ batch_size: +e.target.value }));
  $("regenerate").onclick = () => setConfig({ seed: (Math.random() * 4294967295) >>> 0 });
  $("show-test").onchange = (e) => { state.showTest = e.target.checked; history.replaceState(null, "", cfgToHash(state.cfg)); draw(); };
  $("discretize").onchange = (e) => { state.discretize = e.target.checked; history.replaceState(null, "", cfgToHash(state.cfg)); draw(); };
  $("play").onclick = async () => {
    try {
      const r = await sessionCall("POST", state.playing ? "/pause" : "/play");
      state.playing = r.playing; $("play").textContent = state.playing ? "❚❚" : "▶"; showError(null);
    } catch (e) { showError(e.message); }
  };
  $("step").onclick = async () => {
    try { acceptFrame(await sessionCall("POST", "/step?epochs=1")); refreshMath(); } catch (e) { showError(e.message); }
  };
  $("reset").onclick = async () => {
    try { applySnapshot(await sessionCall("POST", "/reset")); } catch (e) { showError(e.message); }
  };
  $("add-layer").onclick = () => {
    if (state.cfg.layers.length >= 6) return;
    const last = state.cfg.layers[state.cfg.layers.length - 1];
    setConfig({ layers: state.cfg.layers.concat([{ neurons: 2, activation: last ? last.activation : "tanh" }]) });
  };
  $("remove-layer").onclick = () => {
    if (!state.cfg.layers.length) return;
    setConfig({ layers: state.cfg.layers.slice(0, -1) });
  };
  $("upload").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    if (file.size > 1048576) { showError(`upload: ${file.name} is ${file.size} bytes; the limit is 1 MiB`); return; }
    const text = await file.text();
    try {
      applySnapshot(await sessionCall("POST", `/upload?problem=${state.cfg.problem}`, text, true));
      showError(null);
    } catch (err) { showError(err.message); }
    e.target.value = "";
  });
  $("math-close").onclick = () => { state.selected = null; $("math").hidden = true; markSelected(); };
  window.addEventListener("resize", () => drawLinks());
}

// ---------- network ----------
function buildNetwork() {
  const cfg = state.cfg;
  const cols = $("columns");
  cols.innerHTML = "";
  // inputs
  const inCol = document.createElement("div"); inCol.className = "col";
  inCol.innerHTML = `<div class="title">Features</div>`;
  for (const [key, label] of FEATURES) {
    const n = document.createElement("div");
    n.className = "node feature" + (cfg.features.includes(key) ? "" : " off");
    n.dataset.feature = key; n.title = "Click to use or drop " + label;
    n.innerHTML = `<span class="lbl">${label}</span><canvas></canvas>`;
    n.onclick = () => {
      const f = cfg.features.includes(key) ? cfg.features.filter((x) => x !== key) : cfg.features.concat([key]);
      const order = FEATURES.map((x) => x[0]).filter((x) => f.includes(x));
      setConfig({ features: order });
    };
    inCol.appendChild(n);
    drawFeature(n.querySelector("canvas"), FEATURES.find((x) => x[0] === key)[2]);
  }
  cols.appendChild(inCol);
  // hidden layers
  cfg.layers.forEach((layer, li) => {
    const col = document.createElement("div"); col.className = "col hidden-layer";
    const head = document.createElement("div"); head.className = "title layer-head";
    const ctl = document.createElement("div");
    const plus = document.createElement("button"); plus.textContent = "+"; plus.title = "Add a neuron";
    const minus = document.createElement("button"); minus.textContent = "−"; minus.title = "Remove a neuron";
    plus.onclick = () => changeNeurons(li, +1); minus.onclick = () => changeNeurons(li, -1);
    ctl.append(plus, minus);
    const sel = document.createElement("select");
    sel.className = "act-select"; sel.dataset.layer = li;
    for (const [v, t] of ACTIVATIONS) { const o = document.createElement("option"); o.value = v; o.text = t; sel.add(o); }
    sel.value = layer.activation;
    sel.onchange = () => {
      const layers = cfg.layers.map((l, i) => i === li ? { neurons: l.neurons, activation: sel.value } : l);
      setConfig({ layers });
    };
    const lbl = document.createElement("span"); lbl.textContent = `${layer.neurons} neuron${layer.neurons > 1 ? "s" : ""}`;
    head.append(ctl, lbl, sel);
    col.appendChild(head);
    for (let j = 0; j < layer.neurons; j++) {
      const n = document.createElement("div");
      n.className = "node neuron"; n.dataset.layer = li + 1; n.dataset.neuron = j;
      n.title = `Layer ${li + 1}, neuron ${j + 1}: click for z, a, δ`;
      n.innerHTML = `<canvas></canvas>`;
      n.onclick = () => selectNeuron(li + 1, j);
      col.appendChild(n);
    }
    cols.appendChild(col);
  });
  // output layer
  const outCol = document.createElement("div"); outCol.className = "col";
  outCol.innerHTML = `<div class="title">Output</div>`;
  const k = state.setup.classes || 1;
  for (let j = 0; j < k; j++) {
    const n = document.createElement("div");
    n.className = "node out neuron"; n.dataset.layer = cfg.layers.length + 1; n.dataset.neuron = j;
    n.textContent = state.setup.classes ? `ŷ${j}` : "ŷ";
    if (state.setup.classes) { const c = CLASS_COLORS[j % CLASS_COLORS.length]; n.style.borderColor = `rgb(${c})`; n.style.borderWidth = "3px"; }
    n.title = "Output neuron: click for z, a, δ";
    n.onclick = () => selectNeuron(cfg.layers.length + 1, j);
    outCol.appendChild(n);
  }
  cols.appendChild(outCol);
  $("layer-count").textContent = `${cfg.layers.length} HIDDEN LAYER${cfg.layers.length === 1 ? "" : "S"}`;
  markSelected();
  requestAnimationFrame(drawLinks);
}

function changeNeurons(li, d) {
  const layers = state.cfg.layers.map((l, i) => i === li ? { neurons: Math.max(1, Math.min(8, l.neurons + d)), activation: l.activation } : l);
  setConfig({ layers });
}

function drawFeature(canvas, f) {
  const d = state.setup.domain, side = 25;
  const vals = [];
  let m = 1e-9;
  for (let r = 0; r < side; r++) for (let c = 0; c < side; c++) {
    const x = d[0] + (d[1] - d[0]) * (c + 0.5) / side, y = d[3] - (d[3] - d[2]) * (r + 0.5) / side;
    const v = f(x, y); vals.push(v); m = Math.max(m, Math.abs(v));
  }
  paintGrid(canvas, side, (i) => diverging(vals[i] / m));
}

function nodeCentre(el, box) {
  const r = el.getBoundingClientRect();
  return [r.left - box.left + r.width / 2, r.top - box.top + r.height / 2, r.width / 2];
}

function drawLinks() {
  const svg = $("links"), net = $("network");
  if (!state.setup) return;
  const box = net.getBoundingClientRect();
  svg.setAttribute("width", net.scrollWidth); svg.setAttribute("height", net.scrollHeight);
  const cols = [...$("columns").children].map((col) => [...col.querySelectorAll(".node")].filter((n) => !n.classList.contains("off")));
  const layers = state.frame ? state.frame.layers : null;
  let html = "";
  for (let c = 0; c + 1 < cols.length; c++) {
    for (let j = 0; j < cols[c + 1].length; j++) {
      for (let k = 0; k < cols[c].length; k++) {
        const [x1, y1, r1] = nodeCentre(cols[c][k], box), [x2, y2, r2] = nodeCentre(cols[c + 1][j], box);
        const w = layers && layers[c] ? layers[c].w[j][k] : 0;
        const col = diverging(w > 0 ? 1 : -1).map(Math.round);
        const width = Math.min(6, 0.5 + Math.abs(w) * 1.5);
        html += `<line x1="${x1 + r1}" y1="${y1}" x2="${x2 - r2}" y2="${y2}" stroke="rgb(${col})" stroke-width="${width.toFixed(2)}" stroke-opacity="0.75"><title>w = ${w}</title></line>`;
      }
    }
  }
  svg.innerHTML = html;
}

// ---------- drawing ----------
function toCanvas(d, size, x, y) {
  return [(x - d[0]) / (d[1] - d[0]) * size, (d[3] - y) / (d[3] - d[2]) * size];
}

function pointColor(t) {
  if (state.setup.classes) return CLASS_COLORS[t % CLASS_COLORS.length];
  return diverging(t).map(Math.round);
}

function drawPoints(ctx, size, pts, radius, test) {
  const d = state.setup.domain;
  for (const [x, y, t] of pts) {
    const [cx, cy] = toCanvas(d, size, x, y);
    ctx.beginPath(); ctx.arc(cx, cy, radius, 0, 2 * Math.PI);
    ctx.fillStyle = `rgb(${pointColor(t)})`; ctx.fill();
    if (radius > 2) { ctx.lineWidth = 1; ctx.strokeStyle = test ? "#000" : "#fff"; ctx.stroke(); }
  }
}

function fmt(v, digits = 3) {
  return v === null || v === undefined ? "–" : Number(v).toFixed(digits);
}

// One bar per layer, its length the log of ‖∂C/∂W‖ over six decades below the largest.
function drawGradientFlow(norms) {
  const box = $("gradflow");
  const top = Math.max(...norms.filter((v) => v > 0), 1e-30);
  box.replaceChildren(...norms.map((v, i) => {
    const row = document.createElement("div");
    row.className = "bar-row";
    const label = document.createElement("span");
    label.className = "bar-label";
    label.textContent = i === norms.length - 1 ? "out" : `L${i + 1}`;
    const bar = document.createElement("span");
    bar.className = "bar";
    const decades = v > 0 ? Math.log10(top / v) : 6;
    bar.style.width = `${Math.max(1, 200 * (1 - Math.min(decades, 6) / 6))}px`;
    const value = document.createElement("span");
    value.className = "bar-value";
    value.textContent = v.toExponential(1);
    row.append(label, bar, value);
    return row;
  }));
}

function draw() {
  const f = state.frame, s = state.setup;
  if (!f || !s) return;
  const ep = $("epoch");
  ep.dataset.epoch = f.epoch;
  ep.textContent = String(f.epoch).padStart(6, "0").replace(/(\d{3})(\d{3})$/, "$1,$2");
  $("play").textContent = state.playing ? "❚❚" : "▶";
  $("train-loss").textContent = fmt(f.train_loss); $("test-loss").textContent = fmt(f.test_loss);
  $("train-loss").dataset.value = f.train_loss; $("test-loss").dataset.value = f.test_loss;
  $("train-acc").textContent = f.train_accuracy == null ? "" : `(accuracy ${(100 * f.train_accuracy).toFixed(1)}%)`;
  $("test-acc").textContent = f.test_accuracy == null ? "" : `(accuracy ${(100 * f.test_accuracy).toFixed(1)}%)`;
  drawGradientFlow(f.grad_norms || []);
  // output heatmap
  const G = s.grid;
  const heat = document.createElement("canvas");
  paintGrid(heat, G, (i) => {
    if (f.output_class) {
      const conf = state.discretize ? 0.7 : Math.max(0, (f.output[i] - 1 / s.classes) / (1 - 1 / s.classes)) * 0.75;
      return classColor(f.output_class[i], conf);
    }
    let v = f.output[i];
    if (state.discretize) v = s.classes ? (v > 0 ? 0.7 : -0.7) : Math.sign(v) * 0.7;
    return diverging(v * 0.8);
  });
  const out = $("heatmap"), ctx = out.getContext("2d");
  ctx.imageSmoothingEnabled = !state.discretize;
  ctx.drawImage(heat, 0, 0, out.width, out.height);
  drawPoints(ctx, out.width, s.train, 3.5, false);
  if (state.showTest) drawPoints(ctx, out.width, s.test, 3.5, true);
  // neurons
  const side = s.neuron_grid;
  document.querySelectorAll(".node.neuron:not(.out)").forEach((n) => {
    const l = +n.dataset.layer - 1, j = +n.dataset.neuron;
    const vals = f.neurons[l] && f.neurons[l][j];
    if (!vals) return;
    let m = 1;
    for (const v of vals) m = Math.max(m, Math.abs(v));
    paintGrid(n.querySelector("canvas"), side, (i) => diverging(vals[i] / m));
  });
  drawLinks();
  drawChart();
  // legend
  const lg = $("legend");
  if (s.classes) lg.innerHTML = "Colours: " + [...Array(s.classes).keys()].map((k) => `<i style="background:rgb(${CLASS_COLORS[k % 8]})"></i>class ${k}`).join(" ");
  else lg.innerHTML = `<i style="background:rgb(${CLASS_COLORS[0]})"></i>−1 <i style="background:#fff;border:1px solid #ccc"></i>0 <i style="background:rgb(${CLASS_COLORS[1]})"></i>+1`;
}

function drawChart() {
  const c = $("chart"), ctx = c.getContext("2d");
  ctx.clearRect(0, 0, c.width, c.height);
  const h = state.history;
  if (h.length < 2) return;
  let m = 1e-9;
  for (const p of h) m = Math.max(m, isFinite(p[1]) ? p[1] : 0, isFinite(p[2]) ? p[2] : 0);
  const x0 = h[0][0], x1 = h[h.length - 1][0] || 1;
  const line = (k, color) => {
    ctx.beginPath();
    h.forEach((p, i) => {
      const x = (p[0] - x0) / Math.max(1e-9, x1 - x0) * (c.width - 2) + 1;
      const y = c.height - 2 - (Math.min(p[k], m) / m) * (c.height - 4);
      if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
    });
    ctx.strokeStyle = color; ctx.lineWidth = 1.5; ctx.stroke();
  };
  line(1, "#999"); line(2, "#000");
}

// ---------- the math of one neuron ----------
function selectNeuron(layer, neuron) {
  state.selected = [layer, neuron];
  markSelected();
  refreshMath();
}

function markSelected() {
  document.querySelectorAll(".node.neuron").forEach((n) => {
    n.classList.toggle("selected", !!state.selected && +n.dataset.layer === state.selected[0] && +n.dataset.neuron === state.selected[1]);
  });
}

async function refreshMath() {
  if (!state.selected) return;
  const [layer, neuron] = state.selected;
  try {
    const m = await sessionCall("GET", `/neuron?layer=${layer}&neuron=${neuron}`);
    renderMath(m);
  } catch (e) { state.selected = null; $("math").hidden = true; markSelected(); }
}

function renderMath(m) {
  const l = m.layer, j = m.neuron + 1, prev = l - 1;
  const n = (v) => Number(v).toPrecision(5);
  const sub = (s) => `<sub>${s}</sub>`, sup = (s) => `<sup>${s}</sup>`;
  const inputs = m.inputs.map((a, k) => `<tr><td>${k + 1}</td><td>${m.input_names[k]}</td><td>${n(a)}</td><td>${n(m.weights[k])}</td><td>${n(a * m.weights[k])}</td><td>${n(m.dC_dw[k])}</td></tr>`).join("");
  const target = state.setup.classes ? `class ${m.sample.target}` : `y = ${n(m.sample.target)}`;
  let html = `<h2>Layer ${l}${m.output_layer ? " (output)" : ""}, neuron ${j}</h2>
  <p class="hint">One training sample (it moves on every epoch): #${m.sample.index} at (x₁, x₂) = (${n(m.sample.point[0])}, ${n(m.sample.point[1])}), ${target}; its cost C = ${n(m.cost)}. Dropout off. Superscripts are layers, as in the lectures.</p>
  <table><tr><th>k</th><th>input</th><th>a${sub("k")}${sup(prev)}</th><th>w${sub(j + "k")}${sup(l)}</th><th>w·a</th><th>∂C/∂w${sub(j + "k")}${sup(l)} = a${sub("k")}${sup(prev)} δ${sub(j)}${sup(l)}</th></tr>${inputs}</table>
  <div class="eq">z${sub(j)}${sup(l)} = Σ${sub("k")} w${sub(j + "k")}${sup(l)} a${sub("k")}${sup(prev)} + b${sub(j)}${sup(l)} = ${n(m.z_check - m.bias)} + ${n(m.bias)} = <b id="math-z">${n(m.z)}</b></div>`;
  if (m.output_layer) {
    html += `<div class="eq">a${sub(j)}${sup(l)} = <b id="math-a">${n(m.a)}</b> &nbsp; (${m.formula.split(":")[0]}), target y${sub(j)} = ${n(m.y)}</div>
    <div class="eq">δ${sub(j)}${sup(l)} = ∂C/∂z${sub(j)}${sup(l)} = <b id="math-delta">${n(m.delta)}</b> &nbsp; (${m.formula})</div>`;
  } else {
    const back = m.w_next.map((w, i) => `${n(w)}·${n(m.delta_next[i])}`).join(" + ");
    const agree = Math.abs(m.delta - m.delta_bp2) <= 1e-5 * (1 + Math.abs(m.delta));
    html += `<div class="eq">a${sub(j)}${sup(l)} = f(z${sub(j)}${sup(l)}) = <b id="math-a">${n(m.a)}</b>, f′(z) = ${n(m.fprime)} &nbsp; (${m.formula})</div>
    <div class="eq">δ${sub(j)}${sup(l)} = ∂C/∂z${sub(j)}${sup(l)} = <b id="math-delta">${n(m.delta)}</b> (from the engine's backward pass)</div>
    <div class="eq">BP2: f′(z${sub(j)}${sup(l)}) · Σ${sub("i")} w${sub("i" + j)}${sup(l + 1)} δ${sub("i")}${sup(l + 1)} = ${n(m.fprime)} · (${back}) = ${n(m.delta_bp2)} <span class="${agree ? "ok" : ""}">${agree ? "✓ agrees" : "differs"}</span></div>`;
  }
  html += `<div class="eq">∂C/∂b${sub(j)}${sup(l)} = δ${sub(j)}${sup(l)} = ${n(m.dC_db)}; an SGD step on this sample alone would change b by −η·δ = ${n(-m.learning_rate * m.dC_db)}</div>`;
  $("math-body").innerHTML = html;
  $("math").hidden = false;
}

// ---------- start ----------
setInterval(() => {
  state.fps = state.framesThisSecond; state.framesThisSecond = 0;
  $("fps").textContent = state.playing ? state.fps : "–";
  if (state.playing && state.selected) refreshMath();
}, 1000);

/** Fills the optimizer, loss and activation menus from the server's lists. */
async function loadOptions() {
  const o = await (await fetch("/api/options")).json();
  const fill = (id, items) => {
    const sel = $(id); sel.innerHTML = "";
    for (const it of items) { const opt = document.createElement("option"); opt.value = it.name; opt.text = it.label; sel.add(opt); }
  };
  fill("optimizer", o.optimizers);
  fill("loss", o.losses);
  ACTIVATIONS = o.activations.map((a) => [a.name, a.label]);
}

async function start() {
  await loadOptions();
  bindControls();
  state.cfg = cfgFromHash();
  try {
    await createSession();
  } catch (e) {
    showError(`${e.message} (the link's set-up was not accepted; starting from the defaults)`);
    state.cfg = JSON.parse(JSON.stringify(DEFAULTS));
    await createSession();
  }
}
start();
