// Activity: the ledger of /v1 and proxy requests (GET /api/activity), newest first, live from
// the feed's request_completed events, with filters, the filter's totals and export links.
import { $, api, state, toast } from "./api.js";

const MAX_ROWS = 500;
const FILTERS = ["instance", "model", "key", "user", "status"];
const totalsTimer = { id: null };

function filters() {
  const form = $("#activity-filters"), query = new URLSearchParams();
  for (const name of FILTERS) if (form[name].value.trim()) query.set(name, form[name].value.trim());
  return query;
}

const ms = (v) => v == null ? "" : Math.round(v) + " ms";

/** One record as a table row (the instance page's Activity tab shows the same rows). */
export function rowFor(r) {
  const tr = document.createElement("tr");
  tr.setAttribute("role", "row");
  tr.dataset.id = r.id;
  const tokens = r.prompt_tokens == null && r.completion_tokens == null ? ""
    : (r.prompt_tokens ?? 0) + " → " + (r.completion_tokens ?? 0);
  const cells = [r.time, r.instance ?? "", r.model ?? "", r.principal.name ?? r.principal.kind,
    String(r.status) + (r.cancelled ? " (cancelled)" : ""), tokens, ms(r.ttft_ms), ms(r.duration_ms),
    r.generation_tps == null ? "" : r.generation_tps.toFixed(1)];
  for (const [i, text] of cells.entries()) {
    const td = document.createElement("td");
    td.setAttribute("role", "cell"); td.textContent = text;
    if ([2, 3, 6, 7, 8].includes(i)) td.classList.add("minor");
    if (i === 4 && r.status >= 400) td.className = "error";
    tr.append(td);
  }
  return tr;
}

export async function loadActivity() {
  const query = filters();
  query.set("limit", "100");
  // The totals are asked for beside the list and shown in the same frame: shown later, their
  // line would push the table down (a layout shift).
  const totals = fetchTotals().catch(() => null);
  let items;
  try { ({ items } = await api("GET", "/api/activity?" + query)); }
  catch (e) { $("#activity-totals").textContent = "Activity unavailable: " + e.message; return; }
  showTotals(await totals);
  $("#activity-list tbody").replaceChildren(...items.map(rowFor));
  $("#activity-empty").hidden = items.length > 0;
  exportLinks();
}

async function fetchTotals() {
  const query = filters();
  query.delete("status");  // the summary takes no status filter
  return (await api("GET", "/api/activity/summary?by=instance&" + query)).groups;
}

function showTotals(groups) {
  if (!groups) return;
  const sum = (key) => groups.reduce((n, g) => n + g[key], 0);
  $("#activity-totals").textContent = sum("requests") + " requests, " + sum("errors") + " errors, " +
    sum("prompt_tokens") + " prompt and " + sum("completion_tokens") + " completion tokens";
}

async function loadTotals() { showTotals(await fetchTotals()); }

function exportLinks() {
  const query = filters();
  for (const format of ["csv", "jsonl"]) {
    query.set("format", format);
    $("#export-" + format).href = "/api/activity/export?" + query;
  }
}

/** The export needs the user's token, which a plain link cannot carry: fetched, then saved. */
async function download(ev) {
  ev.preventDefault();
  const a = ev.currentTarget;
  const res = await fetch(a.href, { headers: state.token ? { Authorization: "Bearer " + state.token } : {} });
  if (!res.ok) { toast("error", "Export failed (HTTP " + res.status + ")"); return; }
  const url = URL.createObjectURL(await res.blob());
  const save = document.createElement("a");
  save.href = url; save.download = a.getAttribute("download");
  save.click(); URL.revokeObjectURL(url);
}

function matches(r) {
  const query = filters();
  const who = r.principal.name;
  const checks = { instance: r.instance, model: r.model, key: r.principal.kind === "key" ? who : null,
    user: r.principal.kind === "user" ? who : null };
  for (const [name, value] of Object.entries(checks)) if (query.has(name) && query.get(name) !== value) return false;
  const status = query.get("status");
  if (status && !(status === String(r.status) || (/^\dxx$/i.test(status) && String(r.status)[0] === status[0]))) return false;
  return true;
}

/** The feed's request_completed: the new record on top, if it passes the filter. */
export function activityRecord(record) {
  if ($('[data-view="activity"]').hidden || !matches(record)) return;
  const body = $("#activity-list tbody");
  body.prepend(rowFor(record));
  while (body.childElementCount > MAX_ROWS) body.lastElementChild.remove();
  $("#activity-empty").hidden = true;
  clearTimeout(totalsTimer.id);
  totalsTimer.id = setTimeout(() => loadTotals().catch(() => {}), 500);
}

export function initActivity() {
  // One head for both tables, put in at start (before any view shows: no layout shift).
  for (const table of ["#activity-list", "#instance-activity"]) {
    $(table).prepend($("#activity-head").content.cloneNode(true));
  }
  $("#activity-filters").addEventListener("submit", (ev) => { ev.preventDefault(); loadActivity(); });
  for (const format of ["csv", "jsonl"]) $("#export-" + format).addEventListener("click", download);
}
