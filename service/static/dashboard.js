// isosched dashboard: embeds the Vega-Lite charts of a page, sorts tables, follows jobs.
"use strict";

async function embedCharts() {
  const specs = document.querySelectorAll("script.chart-spec");
  const jobs = [];
  for (const node of specs) {
    const target = document.getElementById(node.dataset.target);
    const spec = JSON.parse(node.textContent);
    jobs.push(vegaEmbed(target, spec, { renderer: "svg", actions: false }));
  }
  await Promise.all(jobs);
  window.__chartsReady = true;
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

function followJob(jobId, bar, label, onDone) {
  const events = new EventSource(`/v1/jobs/${jobId}/events`);
  events.addEventListener("progress", (ev) => {
    const data = JSON.parse(ev.data);
    label.textContent = data.message;
    if (data.fraction !== null && data.fraction !== undefined) bar.value = data.fraction;
  });
  events.addEventListener("state", (ev) => {
    const data = JSON.parse(ev.data);
    if (["done", "failed", "cancelled"].includes(data.state)) {
      events.close();
      if (data.state === "done") { bar.value = 1; onDone(); }
      else { label.textContent = `${data.state}: ${data.error || ""}`; label.classList.add("error"); }
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
        label.textContent = err.message; label.classList.add("error");
      }
      status.hidden = false;
    });
  });
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
      const body = { scenario: f.get("scenario"), seed: Number(f.get("seed")), scale: Number(f.get("scale")) };
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
  const scales = String(f.get("scales")).split(",").map(Number);
  const body = { scenario: f.get("scenario"), hw: f.get("hw"), policies: f.getAll("policy").join(",") || "all", scales, seeds: Number(f.get("seeds")) };
  const job = await submitJSON("/v1/sweeps", JSON.stringify(body), json);
  return { id: job.id, page: `/sweeps/${job.id}` };
}

function followPending() {
  const node = document.querySelector("[data-follow-job]");
  if (!node) return;
  followJob(node.dataset.followJob, node.querySelector("progress"), node.querySelector(".progress-label"),
    () => window.location.reload());
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("th.sortable").forEach((th) => th.addEventListener("click", () => sortTable(th)));
  wireForms();
  followPending();
  embedCharts().catch((err) => { console.error(err); });
});
