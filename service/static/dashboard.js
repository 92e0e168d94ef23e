// isosched dashboard: embeds the Vega-Lite charts of a page, sorts tables, follows jobs.
"use strict";

window.__views = {};

// A title longer than its chart is wide is cut off by the chart's edge (Vega-Lite draws it on
// one line): on a narrow screen it is broken into lines at spaces instead.
function wrapTitle(spec, width) {
  if (typeof spec.title !== "string") return;
  const perLine = Math.max(16, Math.floor(width / 8));  // characters of a 13 px bold title
  if (spec.title.length <= perLine) return;
  const lines = [];
  let line = "";
  for (const word of spec.title.split(" ")) {
    if (line && line.length + 1 + word.length > perLine) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  lines.push(line);
  spec.title = { text: lines };
}

async function embedCharts() {
  const specs = document.querySelectorAll("script.chart-spec");
  const jobs = [];
  for (const node of specs) {
    const target = document.getElementById(node.dataset.target);
    const spec = JSON.parse(node.textContent);
    wrapTitle(spec, target.clientWidth);
    if (target.clientWidth < 700) {  // a legend beside the plot would be cut off: below, in rows
      const config = spec.config || {};
      spec.config = { ...config, legend: { ...config.legend, orient: "bottom", columns: 3 } };
    }
    jobs.push(vegaEmbed(target, spec, { renderer: "svg", actions: false })
      .then((res) => { window.__views[node.dataset.target] = res.view; }));
  }
  await Promise.all(jobs);
  window.__chartsReady = true;
  document.dispatchEvent(new Event("charts-ready"));
}

// The chip over time: the mesh at the slider's instant, tiles coloured by the holding job's
// stream, checkpointing tiles hatched, restoring ones ringed; the Gantt's rule follows.
function initChip() {
  const node = document.getElementById("chip-data");
  if (!node) return;
  const d = JSON.parse(node.textContent);
  const [w, h] = d.mesh;
  const svg = document.getElementById("chip-mesh");
  const ns = "http://www.w3.org/2000/svg";
  const cell = Math.max(10, Math.min(56, Math.floor(520 / Math.max(w, h))));
  svg.setAttribute("viewBox", `0 0 ${w * cell} ${h * cell}`);
  svg.setAttribute("width", w * cell);
  svg.setAttribute("height", h * cell);
  svg.innerHTML = `<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse"
    patternTransform="rotate(45)"><rect width="6" height="6" fill="none"/>
    <line x1="0" y1="0" x2="0" y2="6" stroke="#111" stroke-width="3"/></pattern></defs>`;
  const tiles = [];
  for (let t = 0; t < w * h; t++) {
    const x = t % w, y = Math.floor(t / w);
    const g = document.createElementNS(ns, "g");
    g.setAttribute("transform", `translate(${x * cell},${y * cell})`);
    const base = document.createElementNS(ns, "rect");
    base.setAttribute("x", 1); base.setAttribute("y", 1);
    base.setAttribute("width", cell - 2); base.setAttribute("height", cell - 2);
    base.setAttribute("rx", 2);
    base.classList.add("tile");
    const over = document.createElementNS(ns, "rect");
    over.setAttribute("x", 1); over.setAttribute("y", 1);
    over.setAttribute("width", cell - 2); over.setAttribute("height", cell - 2);
    over.setAttribute("fill", "url(#hatch)");
    over.setAttribute("visibility", "hidden");
    const title = document.createElementNS(ns, "title");
    g.append(base, over, title);
    svg.appendChild(g);
    tiles.push({ base, over, title, x, y });
  }
  const slider = document.getElementById("chip-time");
  const out = document.getElementById("chip-now");
  const span = d.t1 - d.t0;
  // any instant, not a grid: a span shorter than the window's 1/1000 must be reachable too
  slider.min = d.t0; slider.max = d.t1; slider.step = "any"; slider.value = d.t0;
  // the instants the chip changes in the window, for the previous / next buttons
  const changes = [...new Set(d.intervals.flatMap((iv) => [iv[2], iv[3]]))]
    .filter((t) => t >= d.t0 && t <= d.t1)
    .sort((a, b) => a - b);
  function draw(t) {
    const owner = new Array(w * h).fill(null);
    for (const iv of d.intervals) {
      if (iv[2] <= t && t < iv[3]) for (const tile of iv[4]) owner[tile] = iv;
    }
    tiles.forEach((tile, i) => {
      const iv = owner[i];
      if (iv === null) {
        tile.base.setAttribute("fill", "#f2f3f5");
        tile.base.removeAttribute("stroke");
        tile.base.removeAttribute("stroke-dasharray");
        tile.over.setAttribute("visibility", "hidden");
        tile.base.dataset.job = "";
        tile.base.dataset.kind = "free";
        tile.title.textContent = `tile (${tile.x},${tile.y}): free`;
        return;
      }
      const job = d.jobs[iv[0]];
      const kind = iv[1];
      tile.base.setAttribute("fill", d.colours[job.stream] || "#888");
      tile.base.dataset.job = job.id;
      tile.base.dataset.kind = kind;
      tile.over.setAttribute("visibility", kind === "checkpoint" ? "visible" : "hidden");
      if (kind === "restore" || kind === "reload") {
        tile.base.setAttribute("stroke", "#111");
        tile.base.setAttribute("stroke-width", 2.5);
        tile.base.setAttribute("stroke-dasharray", "3 2");
      } else {
        tile.base.removeAttribute("stroke");
        tile.base.removeAttribute("stroke-dasharray");
      }
      tile.title.textContent = `tile (${tile.x},${tile.y}): ${job.id} (${job.stream}, ${job.model}), ${kind}`;
    });
    out.textContent = `${Number(t).toFixed(3)} ms`;
    const view = window.__views.gantt;
    if (view) view.signal("now", Number(t)).runAsync();
  }
  slider.addEventListener("input", () => draw(Number(slider.value)));
  function step(forward) {
    const t = Number(slider.value);
    const to = forward ? changes.find((c) => c > t) : changes.findLast((c) => c < t);
    if (to === undefined) return;
    slider.value = to;
    draw(to);
  }
  document.getElementById("chip-prev").addEventListener("click", () => step(false));
  document.getElementById("chip-next").addEventListener("click", () => step(true));
  let timer = null;
  const play = document.getElementById("chip-play");
  play.addEventListener("click", () => {
    if (timer !== null) { clearInterval(timer); timer = null; play.textContent = "▶ play"; return; }
    if (Number(slider.value) >= d.t1) slider.value = d.t0;
    play.textContent = "❚❚ pause";
    timer = setInterval(() => {
      const next = Math.min(d.t1, Number(slider.value) + span / 200);
      slider.value = next;
      draw(next);
      if (next >= d.t1) { clearInterval(timer); timer = null; play.textContent = "▶ play"; }
    }, 50);
  });
  draw(d.t0);
  document.addEventListener("charts-ready", () => {
    draw(Number(slider.value));
    const view = window.__views.gantt;
    if (!view) return;
    // a click on a job's bar shows the chip in the middle of that span
    view.addEventListener("click", (_ev, item) => {
      const datum = item && item.datum;
      if (!datum || datum.start_ms === undefined) return;
      const t = (datum.start_ms + datum.end_ms) / 2;
      slider.value = t;
      draw(t);
    });
  });
}

function sortTable(th) {
  const table = th.closest("table");
  const col = Array.from(th.parentNode.children).indexOf(th);
  const asc = th.getAttribute("aria-sort") !== "ascending";
  table.querySelectorAll("th").forEach((h) => h.removeAttribute("aria-sort"));
  th.setAttribute("aria-sort", asc ? "ascending" : "descending");
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  const key = (row) => {
    const cell = row.cells[col];
    const raw = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent.trim();
    const num = parseFloat(raw);
    return Number.isNaN(num) || raw === "" ? raw.toLowerCase() : num;
  };
  rows.sort((a, b) => {
    const x = key(a), y = key(b);
    if (typeof x === typeof y) return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
    return (typeof x === "number" ? -1 : 1) * (asc ? 1 : -1);
  });
  rows.forEach((r) => body.appendChild(r));
}

// Follow a job's server-sent events: its progress message in `label` (in brackets when
// `inline`), its fraction in `bar` (if any), its state in `badge` (if any); `onDone` when done.
function followJob(jobId, bar, label, onDone, { badge = null, inline = false } = {}) {
  const events = new EventSource(`/v1/jobs/${jobId}/events`);
  events.addEventListener("progress", (ev) => {
    const data = JSON.parse(ev.data);
    label.textContent = inline ? ` (${data.message})` : data.message;
    if (bar && data.fraction !== null && data.fraction !== undefined) bar.value = data.fraction;
  });
  events.addEventListener("state", (ev) => {
    const data = JSON.parse(ev.data);
    if (badge) { badge.textContent = data.state; badge.className = `state ${data.state}`; }
    if (["done", "failed", "cancelled", "deleted"].includes(data.state)) {
      events.close();
      if (data.state === "done") { if (bar) bar.value = 1; onDone(); }
      else { label.textContent = `${inline ? " " : ""}${data.state}: ${data.error || ""}`; label.classList.add("error"); }
    }
  });
}

async function submitJSON(url, body, headers) {
  const res = await fetch(url, { method: "POST", body, headers });
  const data = await res.json();
  if (!res.ok) throw new Error(data.detail || res.statusText);
  return data;
}

function wireForms() {
  document.querySelectorAll("form[data-kind]").forEach((form) => {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const button = form.querySelector("button[type=submit]");
      if (button.disabled) return;  // a double click submits once
      button.disabled = true;
      const status = form.querySelector(".status");
      const bar = form.querySelector("progress");
      const label = form.querySelector(".progress-label");
      label.classList.remove("error");
      bar.hidden = false; bar.removeAttribute("value");
      try {
        const job = await startJob(form);
        label.textContent = `job ${job.id} queued`;
        followJob(job.id, bar, label, () => { window.location = job.page; });
      } catch (err) {
        bar.hidden = true;  // refused: nothing is running
        label.textContent = err.message; label.classList.add("error");
      } finally {
        button.disabled = false;  // the request is answered: another job may be started
      }
      status.hidden = false;
    });
  });
}

function numberField(f, name) {
  // an empty field is an error, not 0
  const raw = String(f.get(name) ?? "").trim();
  const x = raw === "" ? NaN : Number(raw);
  if (!Number.isFinite(x)) throw new Error(`${name}: give a number`);
  return x;
}

async function startJob(form) {
  const f = new FormData(form);
  const json = { "content-type": "application/json" };
  if (form.dataset.kind === "replay") {
    let trace;
    const file = f.get("trace_file");
    if (file && file.size > 0) {
      trace = await submitJSON("/v1/traces", await file.text(), { "content-type": "application/x-ndjson" });
    } else {
      const body = { scenario: f.get("scenario"), seed: numberField(f, "seed"), scale: numberField(f, "scale") };
      trace = await submitJSON("/v1/traces", JSON.stringify(body), json);
    }
    const policies = f.getAll("policy").join(",") || "all";
    const job = await submitJSON("/v1/replays", JSON.stringify({ trace_id: trace.id, hw: f.get("hw"), policies }), json);
    return { id: job.id, page: `/runs/${job.id}` };
  }
  if (form.dataset.kind === "plan") {
    const file = f.get("graph_file");
    let body;
    if (file && file.size > 0) {
      const onnx = file.name.toLowerCase().endsWith(".onnx");
      const graph = await submitJSON("/v1/graphs", onnx ? await file.arrayBuffer() : await file.text(),
        { "content-type": onnx ? "application/onnx" : "application/json" });
      body = { graph_id: graph.id, hw: f.get("hw") };
    } else {
      body = { model: f.get("model"), hw: f.get("hw") };
    }
    const job = await submitJSON("/v1/plans", JSON.stringify(body), json);
    return { id: job.id, page: `/plans/${job.id}` };
  }
  const scales = String(f.get("scales")).split(",").map((item) => {
    const x = item.trim() === "" ? NaN : Number(item);
    if (!(Number.isFinite(x) && x > 0)) throw new Error(`load scales: ${JSON.stringify(item.trim())} is not a positive number`);
    return x;
  });
  const body = { scenario: f.get("scenario"), hw: f.get("hw"), policies: f.getAll("policy").join(",") || "all", scales, seeds: numberField(f, "seeds") };
  const job = await submitJSON("/v1/sweeps", JSON.stringify(body), json);
  return { id: job.id, page: `/sweeps/${job.id}` };
}

// A job page's pending block (a progress bar and its label), or the home page's sentence about
// the sweep that will draw its first curves (a state and a label): followed live, and the page
// reloads when the job is done.
function followPending() {
  const node = document.querySelector("[data-follow-job]");
  if (!node) return;
  const bar = node.querySelector("progress");
  const label = node.querySelector(".progress-label");
  if (!label) return;  // only a queued or running job has one
  const badge = bar ? null : node.querySelector(".state");
  followJob(node.dataset.followJob, bar, label, () => window.location.reload(), { badge, inline: !bar });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("th.sortable").forEach((th) => th.addEventListener("click", () => sortTable(th)));
  wireForms();
  followPending();
  initChip();
  embedCharts().catch((err) => { console.error(err); });
});
