// The instances table: one row per instance, updated in place from the feed.
import { $, api, bytes, cell, duration, may, state, toast } from "./api.js";
import { openEditor } from "./form.js";
import { openLogs } from "./logs.js";
import { actionsMenu, onMenuClick, onMenuKey } from "./menu.js";
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

// Every row is a copy of one built row (cloneNode), its text then filled in: a hundred rows
// built element by element, each button with its own listeners, took most of the first
// load's script time (bench/dashboard.py). The buttons' clicks are the table's (initTable).
let built = null;  // {role, tr}: the row copied, for the role it was built for

function builtRow() {
  if (built?.role === state.role) return built.tr;
  const tr = document.createElement("tr");
  tr.setAttribute("role", "row");
  const a = document.createElement("a");
  const name = cell("");
  name.append(a);
  tr.append(name, cell("", "state"), cell(""), cell(""), cell(""), cell("", "uptime"), cell("", "memory"),
    cell("", "cpu"), cell("", "restarts"), cell(""), cell("", "pool"), cell("", "node"), actionsFor());
  for (const [i, td] of [...tr.cells].entries()) {
    td.setAttribute("role", "cell");
    if ([2, 4, 5, 7, 8, 9].includes(i)) td.classList.add("minor");
  }
  built = { role: state.role, tr };
  return tr;
}

function rowFor(inst) {
  const tr = builtRow().cloneNode(true);
  tr.dataset.name = inst.name;
  const cells = tr.cells;
  // The name links to the instance's page; the cell's accessible name stays the name.
  cells[0].firstChild.href = "#/instances/" + encodeURIComponent(inst.name);
  cells[0].firstChild.textContent = inst.name;
  const model = (inst.model_path || "").split("/").pop();
  const texts = { 2: inst.backend, 3: model, 4: inst.port, 8: inst.restart_count ?? 0, 9: inst.group,
    10: inst.pool, 11: nodeText(inst.node) };
  for (const [i, text] of Object.entries(texts)) cells[i].textContent = text ?? "";
  cells[3].title = inst.model_path || "";
  state.rows.set(inst.name, { tr, inst });
  setStatus(inst.name, inst.status, inst.last_error);
  setStats(inst.name, inst.stats);
  return tr;
}

export function nodeText(node) {
  if (!node) return "";
  return node.address || node.id || "";
}

/** The actions a role may take on a row, in order: [label, danger]. */
function actionList() {
  const list = may("operator") ? [["Start"], ["Stop"], ["Restart"]] : [];
  list.push(["Logs"]);
  if (may("operator")) list.push(["Edit"], ["Delete", true]);
  return list;
}

/** An action's button (or menu entry) pressed on the row of instance `name`. */
function runAction(label, name, opener) {
  if (label === "Logs") openLogs(name);
  else if (label === "Edit") openEditor(state.rows.get(name).inst);
  else if (label === "Delete") confirmDelete(name, opener);
  else act(name, label.toLowerCase());
}

function onTableClick(ev) {
  const name = ev.target.closest?.("tr")?.dataset.name;
  if (!name) return;
  if (onMenuClick(ev, (label, _ev, opener) => runAction(label, name, opener))) return;
  const b = ev.target.closest(".wide-actions button");
  if (b && !b.disabled) runAction(b.dataset.action, name, b);
}

// Wide screens: a button each. Narrow ones (CSS): the same behind one "Actions" menu.
function actionsFor() {
  const td = cell("", "actions");
  const list = actionList();
  const wide = document.createElement("div");
  wide.className = "wide-actions";
  for (const [label, danger] of list) {
    const b = document.createElement("button");
    b.type = "button"; b.textContent = label; b.dataset.action = label;
    if (danger) b.classList.add("danger");
    wide.append(b);
  }
  const narrow = actionsMenu(list.map(([label, danger]) => ({ label, danger })));
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
  // Only Start and Stop depend on it: two buttons and two menu entries, not every button.
  for (const b of tr.cells[12].querySelectorAll('[data-action="Start"], [data-action="Stop"]')) {
    const no = NOT_FROM[b.dataset.action].includes(status);
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
  const body = $("#instances tbody");
  body.addEventListener("click", onTableClick);
  body.addEventListener("keydown", onMenuKey);
  const dialog = $("#confirm-delete");
  $("#confirm-yes").addEventListener("click", doDelete);
  $("#confirm-no").addEventListener("click", () => dialog.close());
  dialog.addEventListener("keydown", trapFocus);
  dialog.addEventListener("close", () => { deleteOpener?.focus(); deleteOpener = null; });
}
