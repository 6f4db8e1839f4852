// backprop digits: draw on the pad, the server's MNIST model classifies it.
"use strict";

const $ = (id) => document.getElementById(id);
const pad = $("pad"), ctx = pad.getContext("2d");
const SIDE = 140; // the drawing is sent at half resolution
let drawing = false, last = null, ready = false, pending = false, dirty = false;

function clearPad() {
  ctx.fillStyle = "#000"; ctx.fillRect(0, 0, pad.width, pad.height);
  $("prediction").textContent = ""; $("prediction").dataset.digit = "";
  $("probs").innerHTML = "";
  $("seen").getContext("2d").clearRect(0, 0, 28, 28);
}

function pos(e) {
  const r = pad.getBoundingClientRect();
  return [(e.clientX - r.left) * pad.width / r.width, (e.clientY - r.top) * pad.height / r.height];
}

function stroke(a, b) {
  ctx.strokeStyle = "#fff"; ctx.lineWidth = 20; ctx.lineCap = "round"; ctx.lineJoin = "round";
  ctx.beginPath(); ctx.moveTo(a[0], a[1]); ctx.lineTo(b[0], b[1]); ctx.stroke();
}

pad.addEventListener("pointerdown", (e) => { drawing = true; last = pos(e); stroke(last, last); pad.setPointerCapture && pad.setPointerCapture(e.pointerId); });
pad.addEventListener("pointermove", (e) => { if (!drawing) return; const p = pos(e); stroke(last, p); last = p; schedule(); });
const end = () => { if (drawing) { drawing = false; schedule(); } };
pad.addEventListener("pointerup", end);
pad.addEventListener("pointerleave", end);
$("clear").onclick = clearPad;

function schedule() {
  dirty = true;
  if (!pending) send();
}

async function send() {
  if (!ready || !dirty) return;
  dirty = false; pending = true;
  const small = document.createElement("canvas");
  small.width = SIDE; small.height = SIDE;
  const sctx = small.getContext("2d");
  sctx.drawImage(pad, 0, 0, SIDE, SIDE);
  const data = sctx.getImageData(0, 0, SIDE, SIDE).data;
  const pixels = new Array(SIDE * SIDE);
  for (let i = 0; i < SIDE * SIDE; i++) pixels[i] = data[4 * i];
  try {
    const r = await fetch("/api/digits/predict", {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ width: SIDE, height: SIDE, pixels }),
    });
    const v = await r.json();
    if (!r.ok) throw new Error(v.error);
    show(v);
  } catch (e) { $("status").textContent = e.message; }
  pending = false;
  if (dirty) send();
}

function show(v) {
  if (v.empty) { $("prediction").textContent = ""; return; }
  $("prediction").textContent = v.prediction; $("prediction").dataset.digit = v.prediction;
  const best = v.probabilities.indexOf(Math.max(...v.probabilities));
  $("probs").innerHTML = v.probabilities.map((p, k) =>
    `<div class="bar${k === best ? " best" : ""}" data-class="${k}" data-p="${p}"><b>${k}</b><span class="fill" style="width:${(100 * p).toFixed(1)}%"></span><span>${(100 * p).toFixed(1)}%</span></div>`).join("");
  const seen = $("seen").getContext("2d"), img = seen.createImageData(28, 28);
  v.input.forEach((g, i) => { img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = g; img.data[4 * i + 3] = 255; });
  seen.putImageData(img, 0, 0);
}

async function poll() {
  try {
    const s = await (await fetch("/api/digits/status")).json();
    const st = $("status");
    st.dataset.state = s.state;
    $("progress").value = s.progress || 0;
    if (s.state === "ready") {
      ready = true;
      st.textContent = `Ready: ${s.model}` + (s.test_accuracy ? ` (test accuracy ${(100 * s.test_accuracy).toFixed(2)}%)` : "");
      $("progress").hidden = true;
      $("weights").src = "/api/digits/weights.png"; $("weights").hidden = false;
      $("weights-note").textContent = `Each tile is one of the first layer's ${s.first_layer_units} units, its weights as an image (each scaled to its own range).`;
      send();
      return;
    }
    st.textContent = s.state === "failed" ? `The digits model could not be prepared: ${s.message}` : s.message;
    if (s.state !== "failed") setTimeout(poll, 400);
  } catch (e) { setTimeout(poll, 1000); }
}

clearPad();
poll();
