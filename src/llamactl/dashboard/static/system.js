// System: /api/system/status and /info, the cluster's nodes (Ray) and the memory budget when
// the server reports them, and the configuration (the server hides its secrets as "***").
import { $, api, bytes } from "./api.js";

function facts(items) {
  return items.flatMap(([k, v]) => {
    const dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = k; dd.textContent = v; return [dt, dd];
  });
}

/** "RAM 1.0 GiB, VRAM 2.0 GiB"; a null side (not limited) is left out; all null: "". */
function ramVram(pair) {
  const parts = [];
  if (pair?.ram != null) parts.push("RAM " + (bytes(pair.ram) || "0 B"));
  if (pair?.vram != null) parts.push("VRAM " + (bytes(pair.vram) || "0 B"));
  return parts.join(", ");
}

/** The budget, what instances claim and what is free; without a budget, only the claim. */
function memoryFacts(memory) {
  if (!memory) return [];
  const claimed = ["Memory claimed", ramVram(memory.claimed)];
  const budget = ramVram(memory.budget);
  if (!budget) return [["Memory budget", "not set"], claimed];
  return [["Memory budget", budget], claimed, ["Memory free", ramVram(memory.free)]];
}

function resourceText(resources) {
  const total = resources?.total || {}, available = resources?.available || {};
  return Object.keys(total).sort().map((key) => {
    const isBytes = /memory/i.test(key);
    const show = (n) => n == null ? "?" : isBytes ? bytes(n) || "0 B" : String(n);
    return key + " " + show(available[key]) + " free of " + show(total[key]);
  }).join("; ");
}

function renderNodes(nodes) {
  const section = $("#nodes");
  section.hidden = !Array.isArray(nodes);
  if (section.hidden) return;
  $("#node-list tbody").replaceChildren(...nodes.map((node) => {
    const tr = document.createElement("tr");
    tr.dataset.node = node.id;
    const cells = [node.address, node.alive ? "alive" : "dead", resourceText(node.resources),
      (node.instances || []).join(", "), node.id];
    for (const text of cells) { const td = document.createElement("td"); td.textContent = text; tr.append(td); }
    tr.cells[1].className = node.alive ? "status status-running" : "status status-failed";
    return tr;
  }));
}

export async function loadSystem() {
  const [status, info] = await Promise.all([api("GET", "/api/system/status"), api("GET", "/api/system/info")]);
  const r = status.resources || {};
  const items = [
    ["Version", info.version], ["Host", info.hostname + " (" + info.os + "/" + info.arch + ")"],
    ["CPUs", info.cpu_count], ["CPU use", (r.cpu_usage ?? 0).toFixed(1) + "%"],
    ["Memory", bytes(r.memory_usage) + " of " + bytes(r.memory_total)],
    ...memoryFacts(status.memory),
    ["Disk (data dir)", (r.disk_usage ?? 0).toFixed(1) + "%"],
    ["Instances", status.instances.running + " running of " + status.instances.total],
  ];
  for (const gpu of info.gpus || []) items.push(["GPU", gpu.name + ": " + bytes(gpu.memory_used) + " of " + bytes(gpu.memory_total)]);
  api("GET", "/api/config").then((config) => { $("#config-text").textContent = JSON.stringify(config, null, 2); })
    .catch(() => { $("#config").hidden = true; });
  $("#system-facts").replaceChildren(...facts(items));
  renderNodes(status.nodes);
}

// Kept current (issue 34: it was loaded once): again shortly after any instance's status
// changes (the feed), and every POLL_MS for what has no event (CPU, memory, disk).
const POLL_MS = 15000;
const SOON_MS = 300;
const refresh = { poll: null, soon: null };

/** Only while the System view is shown (showing it loads it). */
function loadIfShown() { if (!$("#system").hidden) loadSystem().catch(() => {}); }

export function systemSoon() {
  clearTimeout(refresh.soon);
  refresh.soon = setTimeout(loadIfShown, SOON_MS);
}

export function startSystemRefresh() {
  stopSystemRefresh();
  refresh.poll = setInterval(loadIfShown, POLL_MS);
}

export function stopSystemRefresh() {
  clearInterval(refresh.poll); clearTimeout(refresh.soon);
  refresh.poll = refresh.soon = null;
}
