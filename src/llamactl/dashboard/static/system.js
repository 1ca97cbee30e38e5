// System: /api/system/status and /info, the cluster's nodes (Ray), the memory budget (a bar
// when one is set), storage and the activity ledger, the replica pools (pools.js), and the
// configuration (the server hides its secrets as "***").
import { $, api, bytes } from "./api.js";
import { renderPools } from "./pools.js";

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

/** One bar per limited side: what instances claim of the budget. */
function renderBudget(memory) {
  const bars = [];
  for (const [side, name] of [["ram", "RAM"], ["vram", "VRAM"]]) {
    const budget = memory?.budget?.[side], claimed = memory?.claimed?.[side] ?? 0;
    if (budget == null) continue;
    const percent = budget ? Math.min(100, Math.round((100 * claimed) / budget)) : 100;
    const row = document.createElement("div");
    row.className = "budget-row";
    const label = document.createElement("span");
    label.textContent = name + ": " + (bytes(claimed) || "0 B") + " claimed of " + (bytes(budget) || "0 B");
    const meter = document.createElement("div");
    meter.setAttribute("role", "meter");
    meter.setAttribute("aria-label", name + " budget claimed");
    meter.setAttribute("aria-valuemin", "0"); meter.setAttribute("aria-valuemax", "100");
    meter.setAttribute("aria-valuenow", String(percent));
    meter.setAttribute("aria-valuetext", percent + "% (" + label.textContent + ")");
    meter.className = "meter" + (percent >= 90 ? " meter-failed" : "");
    const fill = document.createElement("span");
    fill.style.width = percent + "%";
    meter.append(fill);
    row.append(label, meter);
    bars.push(row);
  }
  $("#budget").replaceChildren(...bars);
  $("#budget-section").hidden = bars.length === 0;
}

/** The database's writes and the activity ledger's backlog: what to look at when one fails. */
function storageFacts(storage, activity) {
  const items = [];
  if (storage) {
    items.push(["Storage", storage.available
      ? "writing (" + storage.pending_writes + " pending)" : "failing: " + (storage.error || "unknown")]);
  }
  if (activity) {
    items.push(["Activity ledger", !activity.enabled ? "off" : activity.error ? "failing: " + activity.error
      : activity.written + " written since start, " + activity.pending + " pending, " + activity.dropped + " dropped"]);
  }
  return items;
}

export async function loadSystem() {
  const [status, info, pools] = await Promise.all([api("GET", "/api/system/status"),
    api("GET", "/api/system/info"), api("GET", "/api/pools").catch(() => ({ pools: [] }))]);
  const r = status.resources || {};
  const items = [
    ["Version", info.version], ["Host", info.hostname + " (" + info.os + "/" + info.arch + ")"],
    ["CPUs", info.cpu_count], ["CPU use", (r.cpu_usage ?? 0).toFixed(1) + "%"],
    ["Memory", bytes(r.memory_usage) + " of " + bytes(r.memory_total)],
    ...memoryFacts(status.memory),
    ["Disk (data dir)", (r.disk_usage ?? 0).toFixed(1) + "%"],
    ["Instances", status.instances.running + " running of " + status.instances.total],
    ...storageFacts(status.storage, status.activity),
  ];
  for (const gpu of info.gpus || []) items.push(["GPU", gpu.name + ": " + bytes(gpu.memory_used) + " of " + bytes(gpu.memory_total)]);
  api("GET", "/api/config").then((config) => { $("#config-text").textContent = JSON.stringify(config, null, 2); })
    .catch(() => { $("#config").hidden = true; });
  $("#system-facts").replaceChildren(...facts(items));
  renderBudget(status.memory);
  renderNodes(status.nodes);
  renderPools(pools.pools);
  const fast = pools.pools.length > 0;
  if (fast !== refresh.fast) { refresh.fast = fast; pollLater(); }
}

// Kept current (issue 34: it was loaded once): again shortly after any instance's status
// changes (the feed), and by a poll for what has no event (CPU, memory, disk; a pool's
// requests in flight and waiting, which change with every request: polled faster).
const POLL_MS = 15000;
const POOL_POLL_MS = 2000;
const SOON_MS = 300;
const refresh = { poll: null, soon: null, fast: false, on: false };

/** Only while the System view is shown (showing it loads it). */
function loadIfShown() { if (!$("#system").hidden) loadSystem().catch(() => {}); }

function pollLater() {
  clearTimeout(refresh.poll);
  if (!refresh.on) return;
  refresh.poll = setTimeout(() => { loadIfShown(); pollLater(); }, refresh.fast ? POOL_POLL_MS : POLL_MS);
}

export function systemSoon() {
  clearTimeout(refresh.soon);
  refresh.soon = setTimeout(loadIfShown, SOON_MS);
}

export function startSystemRefresh() {
  stopSystemRefresh();
  refresh.on = true;
  pollLater();
}

export function stopSystemRefresh() {
  refresh.on = false;
  clearTimeout(refresh.poll); clearTimeout(refresh.soon);
  refresh.poll = refresh.soon = null;
}
