// The instances table: one row per instance, updated in place from the feed.
import { $, api, bytes, button, cell, duration, may, state, toast } from "./api.js";
import { openEditor } from "./form.js";
import { openLogs } from "./logs.js";
import { actionsMenu } from "./menu.js";
import { systemSoon } from "./system.js";

export async function loadInstances() {
  const { instances } = await api("GET", "/api/instances");
  const body = $("#instances tbody");
  body.replaceChildren(...instances.map((inst) => rowFor(inst)));
  $("#empty").hidden = instances.length > 0;
  // The Node column only where some instance runs on a cluster node (Ray).
  $("#instances").classList.toggle("with-nodes", instances.some((inst) => inst.node));
  // The Pool column only where some instance serves a replica pool (issue 32).
  $("#instances").classList.toggle("with-pools", instances.some((inst) => inst.pool));
  // bench/dashboard.py reads this: time from navigation to the table shown.
  if (!performance.getEntriesByName("llamactl:table").length) performance.mark("llamactl:table");
}

function rowFor(inst) {
  const tr = document.createElement("tr");
  tr.setAttribute("role", "row");
  tr.dataset.name = inst.name;
  const model = (inst.model_path || "").split("/").pop();
  tr.append(nameCell(inst.name), cell("", "state"), cell(inst.backend), cell(model), cell(inst.port),
    cell("", "uptime"), cell("", "memory"), cell("", "cpu"), cell(inst.restart_count ?? 0, "restarts"),
    cell(inst.group), cell(inst.pool, "pool"), cell(nodeText(inst.node), "node"), actionsFor(inst));
  tr.cells[3].title = inst.model_path || "";
  for (const [i, td] of [...tr.cells].entries()) {
    td.setAttribute("role", "cell");
    if ([2, 4, 5, 7, 8, 9].includes(i)) td.classList.add("minor");
  }
  state.rows.set(inst.name, { tr, inst });
  setStatus(inst.name, inst.status, inst.last_error);
  setStats(inst.name, inst.stats);
  return tr;
}

/** The name links to the instance's page; the cell's accessible name stays the name. */
function nameCell(name) {
  const td = cell("");
  const a = document.createElement("a");
  a.href = "#/instances/" + encodeURIComponent(name);
  a.textContent = name;
  td.append(a);
  return td;
}

export function nodeText(node) {
  if (!node) return "";
  return node.address || node.id || "";
}

/** The actions a role may take on a row, in order: [label, run, danger]. */
function actionList(inst) {
  const list = [];
  if (may("operator")) {
    for (const action of ["start", "stop", "restart"]) {
      list.push([action[0].toUpperCase() + action.slice(1), () => act(inst.name, action)]);
    }
  }
  list.push(["Logs", () => openLogs(inst.name)]);
  if (may("operator")) {
    list.push(["Edit", () => openEditor(state.rows.get(inst.name).inst)],
      ["Delete", (ev, opener) => confirmDelete(inst.name, opener || ev.currentTarget), true]);
  }
  return list;
}

// Wide screens: a button each. Narrow ones (CSS): the same behind one "Actions" menu.
function actionsFor(inst) {
  const td = cell("", "actions");
  const list = actionList(inst);
  const wide = document.createElement("div");
  wide.className = "wide-actions";
  for (const [label, run, danger] of list) {
    const b = button(label, run);
    if (danger) b.classList.add("danger");
    wide.append(b);
  }
  const narrow = actionsMenu(list.map(([label, run, danger]) => ({ label, run, danger })));
  narrow.classList.add("narrow-actions");
  td.append(wide, narrow);
  return td;
}

export function setStatus(name, status, lastError) {
  const row = state.rows.get(name);
  if (!row) return;
  row.inst.status = status;
  const word = document.createElement("span");
  word.textContent = status;
  word.className = "status status-" + status;
  row.tr.cells[1].replaceChildren(word);
  enableActions(row.tr, status);
  // Why it failed, as text in the row (issue 27); the feed's event does not carry it.
  if (status === "failed" && lastError === undefined) {
    api("GET", "/api/instances/" + encodeURIComponent(name))
      .then((inst) => { if (row.inst.status === "failed") showError(row, inst.last_error); })
      .catch(() => {});
  } else if (status === "failed") {
    showError(row, lastError);
  }
}

// What each action cannot do from a status: Start a running one, Stop a stopped one.
const NOT_FROM = { Start: ["running", "starting", "restarting", "stopping"],
  Stop: ["stopped", "failed", "stopping"] };

function enableActions(tr, status) {
  for (const b of tr.querySelectorAll("td.actions button")) {
    const no = (NOT_FROM[b.textContent] || []).includes(status);
    if (b.getAttribute("role") === "menuitem") b.setAttribute("aria-disabled", String(no));
    else b.disabled = no;
  }
}

function showError(row, lastError) {
  if (!lastError) return;
  const text = document.createElement("div");
  text.className = "last-error";
  text.textContent = lastError;
  row.tr.cells[1].append(text);
}

/** Measured memory beside the estimate: "312.0 MiB / est. 340.0 MiB". */
export function memoryText(used, estimate) {
  const measured = bytes(used);
  if (!estimate) return measured;
  let est = "est. " + bytes(estimate.ram);
  if (estimate.vram) est += " + " + bytes(estimate.vram) + " VRAM";
  return measured ? measured + " / " + est : est;
}

export function setStats(name, stats) {
  const row = state.rows.get(name);
  if (!row) return;
  const live = row.inst.status === "running";  // a stopped instance's zeros say nothing
  row.tr.querySelector(".memory").textContent = memoryText(stats?.memory_usage, row.inst.memory_estimate);
  if (!stats) return;
  row.tr.querySelector(".uptime").textContent = duration(stats.uptime);
  row.tr.querySelector(".cpu").textContent = !live || stats.cpu_usage == null ? "" : stats.cpu_usage.toFixed(1) + "%";
}

async function act(name, action) {
  try { await api("POST", "/api/instances/" + encodeURIComponent(name) + "/" + action); }
  catch (e) { toast("error", name + ": " + e.message + (e.doc.details ? " (" + e.doc.details + ")" : "")); }
}

// ---- Delete, asked in a modal dialog ----------------------------------------------------------
let deleteOpener = null;

function confirmDelete(name, opener) {
  const dialog = $("#confirm-delete");
  $("#confirm-text").textContent = "Delete " + name + "? This cannot be undone.";
  dialog.dataset.name = name;
  deleteOpener = opener;
  dialog.showModal();
  $("#confirm-no").focus();  // the safe choice first
}

async function doDelete() {
  const dialog = $("#confirm-delete");
  deleteOpener = $("#new-instance");  // the row and its button are about to go
  dialog.close();
  try { await api("DELETE", "/api/instances/" + encodeURIComponent(dialog.dataset.name)); }
  catch (e) { toast("error", e.message); }
  await loadInstances();
  systemSoon();
}

/** Tab and Shift+Tab cycle inside the dialog; closing it (Escape too) returns focus. */
function trapFocus(ev) {
  if (ev.key !== "Tab") return;
  const items = [...ev.currentTarget.querySelectorAll("button, [href], input, select, textarea")];
  const first = items[0], last = items[items.length - 1];
  if (ev.shiftKey && document.activeElement === first) { last.focus(); ev.preventDefault(); }
  else if (!ev.shiftKey && document.activeElement === last) { first.focus(); ev.preventDefault(); }
}

export function initTable() {
  const dialog = $("#confirm-delete");
  $("#confirm-yes").addEventListener("click", doDelete);
  $("#confirm-no").addEventListener("click", () => dialog.close());
  dialog.addEventListener("keydown", trapFocus);
  dialog.addEventListener("close", () => { deleteOpener?.focus(); deleteOpener = null; });
}
