// The instance page's charts over the last hour, drawn by uPlot (vendored in uplot/, loaded
// only when an instance's Overview first shows: the first load stays small). Requests come from
// the ledger (GET /api/activity), memory and CPU from GET /api/instances/{name}/history; both
// then grow live from the feed's request_completed and instance_stats_updated events.
import { api, bytes } from "./api.js";

const HOUR = 3600;
const MINUTE = 60;
const HEIGHT = 180;
const charts = { name: null, inst: null, records: [], samples: [], drawn: [], observer: null, generation: 0 };
let uplotLoading = null;

/** uPlot's script and stylesheet, injected once, from beside this module (same version). */
function loadUplot() {
  if (window.uPlot) return Promise.resolve(window.uPlot);
  uplotLoading ||= new Promise((resolve, reject) => {
    const css = document.createElement("link");
    css.rel = "stylesheet"; css.href = new URL("uplot/uPlot.min.css", import.meta.url).href;
    const script = document.createElement("script");
    script.src = new URL("uplot/uPlot.iife.min.js", import.meta.url).href;
    script.onload = () => resolve(window.uPlot);
    script.onerror = () => { uplotLoading = null; reject(new Error("the chart library did not load")); };
    document.head.append(css, script);
  });
  return uplotLoading;
}

const now = () => Date.now() / 1000;
const at = (time) => Date.parse(time) / 1000;
const recent = (list) => list.filter((item) => item.t >= now() - HOUR);
const fixed = (digits, unit) => (v) => v == null ? "" : v.toFixed(digits) + unit;
/** An axis's tick: short, no unit (the chart's heading names it). */
const short = (v) => Math.abs(v) >= 1000 ? (v / 1000).toFixed(1) + "k" : String(Math.round(v * 10) / 10);

/** Requests and errors per minute over the hour: [minutes, requests, errors]. */
function perMinute(records) {
  const start = Math.floor((now() - HOUR) / MINUTE) * MINUTE;
  const xs = [], requests = [], errors = [];
  for (let t = start; t <= now(); t += MINUTE) { xs.push(t); requests.push(0); errors.push(0); }
  for (const r of records) {
    const i = Math.floor((r.t - start) / MINUTE);
    if (i < 0 || i >= xs.length) continue;
    requests[i] += 1;
    if (r.status >= 400) errors[i] += 1;
  }
  return [xs, requests, errors];
}

function pointsOf(records, field) {
  const kept = records.filter((r) => r[field] != null);
  return [kept.map((r) => r.t), kept.map((r) => r[field])];
}

function memoryData(samples) {
  const estimate = charts.inst?.memory_estimate?.ram ?? null;
  return [samples.map((s) => s.t), samples.map((s) => s.memory_usage), samples.map(() => estimate)];
}

// Each chart: its accessible name, heading, series, data, how a value reads, what "empty" says.
const CHARTS = [
  { name: "generation tokens per second, last hour", title: "Generation tokens/s", source: "records",
    series: [["tokens/s", "--accent"]], data: (c) => pointsOf(c.records, "generation_tps"),
    value: fixed(1, " tokens/s"), empty: "No generated tokens in the last hour." },
  { name: "requests and errors, last hour", title: "Requests and errors per minute", source: "records",
    series: [["requests", "--accent"], ["errors", "--bad"]], bars: true, data: (c) => perMinute(c.records),
    value: (v) => v == null ? "" : String(v), empty: "No requests in the last hour.",
    count: (data) => data[1].reduce((n, v) => n + v, 0) },
  { name: "time to first token, last hour", title: "Time to first token", source: "records",
    series: [["TTFT", "--accent"]], data: (c) => pointsOf(c.records, "ttft_ms"),
    value: fixed(0, " ms"), tick: fixed(0, " ms"), empty: "No answers in the last hour." },
  { name: "memory against estimate, last hour", title: "Memory against estimate", source: "samples",
    series: [["memory", "--accent"], ["estimate", "--muted", [6, 4]]], data: (c) => memoryData(c.samples),
    value: (v) => v == null ? "" : bytes(v), tick: (v) => bytes(v) || "0", empty: "No samples yet: it has not run in the last hour." },
  { name: "CPU, last hour", title: "CPU", source: "samples", series: [["CPU", "--accent"]],
    data: (c) => [c.samples.map((s) => s.t), c.samples.map((s) => s.cpu_usage)],
    value: fixed(1, "%"), tick: (v) => short(v) + "%", empty: "No samples yet: it has not run in the last hour." },
];

function colour(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

function plotOptions(uPlot, spec, width) {
  const axis = { stroke: colour("--fg"), grid: { stroke: colour("--line"), width: 1 }, ticks: { stroke: colour("--line") } };
  const series = spec.series.map(([label, stroke, dash]) => ({
    label, stroke: colour(stroke), width: 2, dash, value: (u, v) => spec.value(v),
    fill: spec.bars ? colour(stroke) : undefined,
    paths: spec.bars ? uPlot.paths.bars({ size: [0.8, 12] }) : undefined,
    points: { show: !spec.bars && spec.source === "records", size: 5 } }));
  return { width, height: HEIGHT, series: [{}, ...series],
    scales: { x: { time: true, range: () => [now() - HOUR, now()] } },
    axes: [axis, { ...axis, size: 70, values: (u, ticks) => ticks.map(spec.tick || short) }],
    legend: { show: true }, cursor: { drag: { x: false, y: false } } };
}

function figure(spec) {
  const box = document.createElement("div");
  box.className = "chart";
  const title = document.createElement("h3");
  title.textContent = spec.title;
  const plot = document.createElement("div");
  plot.setAttribute("role", "img");
  plot.setAttribute("aria-label", spec.name);
  const note = document.createElement("p");
  note.className = "empty";
  box.append(title, plot, note);
  return { box, plot, note };
}

/** Draw a chart's data again; its empty state says so where there is nothing to draw. */
function redraw(entry) {
  const data = entry.spec.data(charts);
  entry.plot.setData(data);
  const count = entry.spec.count ? entry.spec.count(data) : data[0].length;
  entry.el.dataset.points = String(count);
  entry.note.textContent = count ? "" : entry.spec.empty;
  entry.note.hidden = count > 0;
}

async function fetchData(name) {
  const since = new Date((now() - HOUR) * 1000).toISOString();
  const query = new URLSearchParams({ instance: name, since, limit: "1000" });
  const [activity, history] = await Promise.all([
    api("GET", "/api/activity?" + query).catch(() => ({ items: [] })),
    api("GET", "/api/instances/" + encodeURIComponent(name) + "/history").catch(() => ({ samples: [] }))]);
  charts.records = activity.items.map((r) => ({ ...r, t: at(r.time) })).sort((a, b) => a.t - b.t);
  charts.samples = history.samples.map((s) => ({ ...s, t: at(s.time) }));
}

/** The Overview's charts of instance `inst` into `container` (drawn afresh each time). */
export async function showCharts(container, inst) {
  const generation = ++charts.generation;
  const [uPlot] = await Promise.all([loadUplot(), fetchData(inst.name)]);
  if (generation !== charts.generation) return;  // another instance or tab meanwhile
  dropCharts();
  charts.name = inst.name; charts.inst = inst;
  const width = Math.max(200, container.clientWidth > 0 ? chartWidth(container) : 300);
  for (const spec of CHARTS) {
    const { box, plot, note } = figure(spec);
    container.append(box);
    const entry = { spec, el: plot, note, plot: new uPlot(plotOptions(uPlot, spec, width), spec.data(charts), plot) };
    charts.drawn.push(entry);
    redraw(entry);
  }
  charts.observer = new ResizeObserver(() => resize(container));
  charts.observer.observe(container);
}

function chartWidth(container) {
  const first = container.querySelector(".chart");
  return Math.floor((first || container).clientWidth);
}

function resize(container) {
  const width = chartWidth(container);
  for (const entry of charts.drawn) {
    if (width > 0 && entry.plot.width !== width) entry.plot.setSize({ width, height: HEIGHT });
  }
}

/** instance_stats_updated of the page's instance: one more sample on memory and CPU. */
export function statsSample(name, stats) {
  if (name !== charts.name) return;
  charts.samples = recent([...charts.samples, { t: now(), memory_usage: stats.memory_usage, cpu_usage: stats.cpu_usage }]);
  for (const entry of charts.drawn) if (entry.spec.source === "samples") redraw(entry);
}

/** request_completed for the page's instance: one more request on the request charts. */
export function activitySample(record) {
  if (record.instance !== charts.name) return;
  charts.records = recent([...charts.records, { ...record, t: at(record.time) }]);
  for (const entry of charts.drawn) if (entry.spec.source === "records") redraw(entry);
}

/** The page was left: nothing pending draws, nothing drawn stays. */
export function stopCharts() {
  charts.generation += 1;
  dropCharts();
}

function dropCharts() {
  charts.observer?.disconnect();
  charts.observer = null;
  for (const entry of charts.drawn) { entry.plot.destroy(); entry.el.closest(".chart")?.remove(); }
  charts.drawn = [];
  charts.name = null;
}
