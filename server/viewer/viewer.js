// The annpage viewer: an embedding of every cell, coloured by an obs column or a gene.
// Talks only to the server that served it (see the README for the endpoints).
"use strict";

const $ = (id) => document.getElementById(id);
const MAX_POINTS = 2000000;
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
  "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2",
  "#c7c7c7", "#dbdb8d", "#9edae5"];
// A viridis-like ramp: five stops, interpolated.
const RAMP = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

// `columns`: obs's columns (name, kind; no values), `column`: the values of those read so far.
const state = { dataset: null, xy: null, positions: null, columns: [], column: new Map(), varNames: [], colors: null, grid: null, screen: null, laidOut: null, hovered: -1 };

function setStatus(text, kind) {
  $("status").textContent = text;
  if (kind) document.body.dataset.state = kind;
}

async function json(url) {
  const r = await fetch(url);
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

// The server's binary answer: named little-endian arrays behind a small header.
async function arrays(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error((await r.json()).error || r.statusText);
  const buf = await r.arrayBuffer();
  const dv = new DataView(buf);
  if (String.fromCharCode(...new Uint8Array(buf, 0, 4)) !== "APAR") throw new Error("not an array answer");
  const count = dv.getUint16(6, true);
  const out = {};
  let at = 8;
  const text = new TextDecoder();
  for (let a = 0; a < count; a++) {
    const nameLen = dv.getUint16(at, true); at += 2;
    const name = text.decode(new Uint8Array(buf, at, nameLen)); at += nameLen;
    const dtype = text.decode(new Uint8Array(buf, at, 2)); at += 2;
    const ndim = dv.getUint8(at); at += 2;
    const shape = [];
    for (let d = 0; d < ndim; d++) { shape.push(Number(dv.getBigUint64(at, true))); at += 8; }
    const len = Number(dv.getBigUint64(at, true)); at += 8;
    const bytes = buf.slice(at, at + len); at += len;
    const Kind = { f4: Float32Array, f8: Float64Array, i4: Int32Array, u4: Uint32Array, u8: BigUint64Array, i8: BigInt64Array }[dtype] || Uint8Array;
    out[name] = { shape, data: new Kind(bytes) };
  }
  return out;
}

// Fills a <select> with text options (names come from files: never parsed as HTML).
function options(select, values) {
  select.replaceChildren(...values.map((v) => {
    const o = document.createElement("option");
    o.value = v;
    o.textContent = v;
    return o;
  }));
}

function ramp(t) {
  t = Math.min(1, Math.max(0, t)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(t)), f = t - i;
  return RAMP[i].map((c, k) => Math.round(c + f * (RAMP[i + 1][k] - c)));
}

function hex(c) { return [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16)); }

function legend(entries) {
  const el = $("legend");
  el.innerHTML = "";
  for (const [rgb, label] of entries) {
    const row = document.createElement("div");
    const sw = document.createElement("i");
    sw.style.background = `rgb(${rgb.join(",")})`;
    row.append(sw, document.createTextNode(label));
    el.append(row);
  }
  el.style.display = entries.length ? "block" : "none";
}

// Colours each shown cell by `value(cell position)`: categories from a palette, numbers on the ramp.
function colorBy(label, values, categories) {
  const n = state.positions.length;
  const colors = new Uint8ClampedArray(n * 3);
  if (categories) {
    const rgb = categories.map((_, i) => hex(PALETTE[i % PALETTE.length]));
    for (let i = 0; i < n; i++) {
      const c = values[Number(state.positions[i])];
      const v = c >= 0 ? rgb[c] : [200, 200, 200];
      colors.set(v, i * 3);
    }
    legend(categories.slice(0, 60).map((c, i) => [rgb[i], String(c)]));
  } else {
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < n; i++) {
      const v = values[Number(state.positions[i])];
      if (v != null && !Number.isNaN(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    }
    const span = hi > lo ? hi - lo : 1;
    for (let i = 0; i < n; i++) {
      const v = values[Number(state.positions[i])];
      colors.set(v == null || Number.isNaN(v) ? [200, 200, 200] : ramp((v - lo) / span), i * 3);
    }
    legend(Number.isFinite(lo) ? [[ramp(0), `${label} ${lo.toPrecision(3)}`], [ramp(1), `${hi.toPrecision(3)}`]] : []);
  }
  state.colors = colors;
  document.body.dataset.coloredBy = label;
  draw();
}

// Where each cell lands on a canvas of w × h pixels, and a grid of 8-pixel squares that finds
// the cell under the mouse: worked out when the embedding or the canvas's size changes.
function layout(w, h) {
  const { xy } = state, n = state.positions.length;
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (let i = 0; i < n; i++) {
    const x = xy[2 * i], y = xy[2 * i + 1];
    if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y;
  }
  const pad = 12 * devicePixelRatio;
  const sx = (w - 2 * pad) / ((x1 - x0) || 1), sy = (h - 2 * pad) / ((y1 - y0) || 1), s = Math.min(sx, sy);
  const grid = new Map();
  state.screen = new Int32Array(2 * n);
  for (let i = 0; i < n; i++) {
    const X = Math.round(pad + (xy[2 * i] - x0) * s), Y = Math.round(h - pad - (xy[2 * i + 1] - y0) * s);
    state.screen[2 * i] = X; state.screen[2 * i + 1] = Y;
    const key = ((X >> 3) << 16) | (Y >> 3);
    const cell = grid.get(key);
    if (cell) cell.push(i); else grid.set(key, [i]);
  }
  state.grid = grid;
  state.laidOut = `${w}x${h}`;
}

function draw() {
  const canvas = $("plot");
  const w = canvas.width = canvas.clientWidth * devicePixelRatio;
  const h = canvas.height = canvas.clientHeight * devicePixelRatio;
  const ctx = canvas.getContext("2d");
  if (!state.xy) return;
  if (state.laidOut !== `${w}x${h}`) layout(w, h);
  const n = state.positions.length, screen = state.screen, colors = state.colors;
  const image = ctx.createImageData(w, h);
  const px = image.data;
  const size = n > 200000 ? 1 : n > 20000 ? 2 : 3;
  for (let i = 0; i < n; i++) {
    const X = screen[2 * i], Y = screen[2 * i + 1];
    const r = colors ? colors[3 * i] : 60, g = colors ? colors[3 * i + 1] : 90, b = colors ? colors[3 * i + 2] : 160;
    for (let dy = 0; dy < size; dy++) for (let dx = 0; dx < size; dx++) {
      const xx = X + dx, yy = Y + dy;
      if (xx < 0 || yy < 0 || xx >= w || yy >= h) continue;
      const o = 4 * (yy * w + xx);
      px[o] = r; px[o + 1] = g; px[o + 2] = b; px[o + 3] = 255;
    }
  }
  ctx.putImageData(image, 0, 0);
}

function nearest(X, Y) {
  if (!state.grid) return -1;
  let best = -1, bestD = 64;
  for (let gx = (X >> 3) - 1; gx <= (X >> 3) + 1; gx++) for (let gy = (Y >> 3) - 1; gy <= (Y >> 3) + 1; gy++) {
    for (const i of state.grid.get((gx << 16) | gy) || []) {
      const d = (state.screen[2 * i] - X) ** 2 + (state.screen[2 * i + 1] - Y) ** 2;
      if (d < bestD) { bestD = d; best = i; }
    }
  }
  return best;
}

// The cell under the mouse, its obs row read from the server (one small request; an answer
// that arrives after the mouse moved on is dropped).
async function hover(ev) {
  const tip = $("tip");
  const rect = $("plot").getBoundingClientRect();
  const i = nearest(Math.round((ev.clientX - rect.left) * devicePixelRatio), Math.round((ev.clientY - rect.top) * devicePixelRatio));
  if (i < 0) { tip.style.display = "none"; state.hovered = -1; return; }
  tip.style.left = `${ev.clientX - rect.left + 12}px`;
  tip.style.top = `${ev.clientY - rect.top + 12}px`;
  const cell = Number(state.positions[i]);
  if (cell === state.hovered) return;
  state.hovered = cell;
  const row = await json(`datasets/${state.dataset.name}/obs?rows=${cell}`).catch(() => null);
  if (state.hovered !== cell || !row) return;
  const lines = [row.index[0]];
  for (const c of row.columns) {
    const v = c.kind === "categorical" ? (c.codes[0] >= 0 ? c.categories[c.codes[0]] : "NA") : c.values[0];
    lines.push(`${c.name}: ${v}`);
  }
  tip.textContent = lines.join("\n");
  tip.style.display = "block";
}

// Colours by an obs column, read alone the first time it is chosen.
async function colorByColumn(name) {
  if (!state.columns.some((c) => c.name === name)) return;
  if (!state.column.has(name)) {
    const one = await json(`datasets/${state.dataset.name}/obs?columns=${encodeURIComponent(name)}&index=false`);
    state.column.set(name, one.columns[0]);
  }
  const c = state.column.get(name);
  if (c.kind === "categorical") colorBy(name, c.codes, c.categories);
  else if (c.dtype === "str" || typeof c.values[0] === "string" || typeof c.values[0] === "boolean") {
    const categories = [...new Set(c.values)].map(String);
    const code = new Map(categories.map((v, i) => [v, i]));
    colorBy(name, c.values.map((v) => code.get(String(v))), categories);
  } else colorBy(name, c.values);
}

async function colorByGene(name) {
  if (!name) return;
  setStatus(`reading ${name}…`);
  try {
    const t = performance.now();
    const { values } = await arrays(`datasets/${state.dataset.name}/genes/${encodeURIComponent(name)}`);
    colorBy(`gene:${name}`, values.data);
    $("color").value = "";
    setStatus(`${name}: ${(performance.now() - t).toFixed(0)} ms`, "ready");
  } catch (e) { setStatus(e.message, "error"); }
}

function complete() {
  const q = $("gene").value.toLowerCase();
  const list = $("genes");
  list.innerHTML = "";
  if (!q) return;
  let shown = 0;
  for (const g of state.varNames) {
    if (g.toLowerCase().startsWith(q)) {
      const o = document.createElement("option");
      o.value = g;
      list.append(o);
      if (++shown >= 30) break;
    }
  }
}

async function loadEmbedding() {
  const key = $("embedding").value;
  if (!key) { setStatus("this dataset has no obsm embedding", "ready"); return; }
  setStatus(`reading ${key}…`);
  const { values, positions } = await arrays(`datasets/${state.dataset.name}/obsm/${encodeURIComponent(key)}?dims=0,1&max_points=${MAX_POINTS}`);
  state.xy = values.data;
  state.positions = positions.data;
  state.colors = null;
  state.laidOut = null;
  draw();
  const column = $("color").value;
  if (column) await colorByColumn(column);
  setStatus(`${state.positions.length} cells`, "ready");
}

async function loadDataset(name) {
  setStatus(`opening ${name}…`, "loading");
  state.dataset = await json(`datasets/${name}`);
  // obs's columns without their values (`rows=`: none); a column is read when it colours.
  const [obs, variables] = await Promise.all([json(`datasets/${name}/obs?rows=&index=false`), json(`datasets/${name}/var?columns=`)]);
  state.columns = obs.columns;
  state.column = new Map();
  state.hovered = -1;
  state.varNames = variables.index || [];
  // Embeddings first (UMAP, t-SNE, a drawn graph, PCA), then any other obsm entry.
  const rank = (k) => { const i = ["umap", "tsne", "draw", "pca"].findIndex((p) => k.toLowerCase().includes(p)); return i < 0 ? 9 : i; };
  const keys = [...state.dataset.obsm].sort((a, b) => rank(a) - rank(b));
  options($("embedding"), keys);
  const usable = obs.columns.filter((c) => c.kind === "categorical").concat(obs.columns.filter((c) => c.kind !== "categorical"));
  options($("color"), ["", ...usable.map((c) => c.name)]);
  $("color").options[0].textContent = "(none)";
  if (usable.length && usable[0].kind === "categorical") $("color").value = usable[0].name;
  await loadEmbedding();
}

async function main() {
  try {
    const datasets = await json("datasets");
    options($("dataset"), datasets.map((d) => d.name));
    $("dataset").onchange = () => loadDataset($("dataset").value).catch((e) => setStatus(e.message, "error"));
    $("embedding").onchange = () => loadEmbedding().catch((e) => setStatus(e.message, "error"));
    $("color").onchange = () => colorByColumn($("color").value).catch((e) => setStatus(e.message, "error"));
    $("gene").oninput = complete;
    $("gene").onchange = () => colorByGene($("gene").value);
    $("gene").onkeydown = (e) => { if (e.key === "Enter") colorByGene($("gene").value); };
    $("plot").onmousemove = hover;
    $("plot").onmouseleave = () => { $("tip").style.display = "none"; state.hovered = -1; };
    window.onresize = draw;
    const wanted = new URLSearchParams(location.search).get("dataset");
    if (wanted) $("dataset").value = wanted;
    if (datasets.length) await loadDataset($("dataset").value);
    const gene = new URLSearchParams(location.search).get("gene");
    if (gene) { $("gene").value = gene; await colorByGene(gene); }
  } catch (e) { setStatus(e.message, "error"); }
}

main();
