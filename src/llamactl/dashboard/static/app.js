// The llamactl dashboard: plain JavaScript over the same /api as every client. No inline
// script (the page's CSP forbids it); data is written with textContent only, never as HTML.
"use strict";

const $ = (sel) => document.querySelector(sel);
const RANK = { viewer: 0, operator: 1, admin: 2 };
const state = { token: sessionStorage.getItem("llamactl.token"), role: null, rows: new Map(),
  ws: null, wsRetry: 0, refreshTimer: null, editing: null, logAbort: null, logPaused: false };

// ---- API ---------------------------------------------------------------------------------
async function api(method, path, body) {
  const headers = {};
  if (state.token) headers.Authorization = "Bearer " + state.token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers,
    body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 401 && path !== "/api/auth/login") { showSignIn(); throw new ApiError(res.status, {}); }
  const data = res.headers.get("content-type")?.includes("json") ? await res.json() : null;
  if (!res.ok) throw new ApiError(res.status, data || {});
  return data;
}
class ApiError extends Error {
  constructor(status, doc) { super(doc.error || ("HTTP " + status)); this.status = status; this.doc = doc; }
}

// ---- Sign in -------------------------------------------------------------------------------
function showSignIn() {
  stopFeed(); setToken(null);
  $("#app").hidden = true; $("#signin").hidden = false; $("#who").hidden = true;
  $("#sign-out").hidden = true;
  $("#signin-form [name=username]").focus();
}
function setToken(token, expiresAt) {
  state.token = token;
  clearTimeout(state.refreshTimer);
  if (token) {
    sessionStorage.setItem("llamactl.token", token);
    if (expiresAt) scheduleRefresh(expiresAt);
  } else sessionStorage.removeItem("llamactl.token");
}
function scheduleRefresh(expiresAt) {
  // A new token a minute before this one ends (or halfway, for short ones).
  const left = Date.parse(expiresAt) - Date.now();
  const wait = Math.max(5000, Math.min(left - 60000, left / 2));
  state.refreshTimer = setTimeout(async () => {
    try { const t = await api("POST", "/api/auth/refresh"); setToken(t.token, t.expires_at); }
    catch (e) { /* a 401 has shown the sign-in form */ }
  }, wait);
}
async function signIn(ev) {
  ev.preventDefault();
  const form = ev.target, err = $("#signin-error");
  err.textContent = "";
  try {
    const t = await api("POST", "/api/auth/login",
      { username: form.username.value, password: form.password.value });
    setToken(t.token, t.expires_at);
    form.password.value = "";
    await enter();
  } catch (e) {
    err.textContent = e.status === 401 ? "Wrong username or password." : e.message;
  }
}
async function enter() {
  const me = await api("GET", "/api/auth/me");
  state.role = me.role;
  document.body.dataset.role = me.role;
  $("#signin").hidden = true; $("#app").hidden = false;
  if (me.kind !== "anonymous") {
    $("#who").textContent = me.username + " (" + me.role + ")";
    $("#who").hidden = false; $("#sign-out").hidden = false;
  }
  $("#new-instance").hidden = !may("operator");
  // The option table is for the form: fetched beside the table, never before it.
  const backends = api("GET", "/api/backends");
  for (const el of document.querySelectorAll(".admin-only")) el.hidden = !may("admin");
  await loadInstances();
  startFeed();
  state.backends = (await backends).backends;
  renderOptionFields();
  loadSystem();
  $("#keys").hidden = !may("admin") || me.kind === "anonymous";
  if (!$("#keys").hidden) loadKeys();
}
const may = (role) => RANK[state.role] >= RANK[role];

// ---- Instances table -----------------------------------------------------------------------
async function loadInstances() {
  const { instances } = await api("GET", "/api/instances");
  const body = $("#instances tbody");
  const rows = instances.map((inst) => rowFor(inst));
  body.replaceChildren(...rows);
  $("#empty").hidden = instances.length > 0;
  // bench/dashboard.py reads this: time from navigation to the table shown.
  if (!performance.getEntriesByName("llamactl:table").length) performance.mark("llamactl:table");
}
function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text ?? "";
  if (cls) td.className = cls;
  return td;
}
function button(label, onClick) {
  const b = document.createElement("button");
  b.type = "button"; b.textContent = label;
  b.addEventListener("click", onClick);
  return b;
}
function rowFor(inst) {
  const tr = document.createElement("tr");
  tr.dataset.name = inst.name;
  const status = cell("", "status");
  const model = (inst.model_path || "").split("/").pop();
  tr.append(cell(inst.name), status, cell(inst.backend), cell(model), cell(inst.port),
    cell("", "uptime"), cell("", "memory"), cell("", "cpu"), cell(inst.restart_count ?? 0, "restarts"),
    cell(inst.group), actionsFor(inst));
  tr.cells[3].title = inst.model_path || "";
  state.rows.set(inst.name, { tr, inst });
  setStatus(inst.name, inst.status, inst.last_error);
  setStats(inst.name, inst.stats);
  return tr;
}
function actionsFor(inst) {
  const td = cell("", "actions");
  if (may("operator")) {
    td.append(
      button("Start", () => act(inst.name, "start")),
      button("Stop", () => act(inst.name, "stop")),
      button("Restart", () => act(inst.name, "restart")));
  }
  td.append(button("Logs", () => openLogs(inst.name)));
  if (may("operator")) {
    td.append(button("Edit", () => openEditor(state.rows.get(inst.name).inst)),
      button("Delete", () => confirmDelete(inst.name)));
  }
  return td;
}
function setStatus(name, status, lastError) {
  const row = state.rows.get(name);
  if (!row) return;
  row.inst.status = status;
  const td = row.tr.cells[1];
  td.textContent = status;
  td.className = "status status-" + status;
  td.title = lastError ? "Last error: " + lastError : "";
  if (lastError) row.tr.cells[0].title = "Last error: " + lastError;
}
function setStats(name, stats) {
  const row = state.rows.get(name);
  if (!row || !stats) return;
  row.tr.querySelector(".uptime").textContent = duration(stats.uptime);
  row.tr.querySelector(".memory").textContent = bytes(stats.memory_usage);
  const live = row.inst.status === "running";  // a stopped instance's zeros say nothing
  row.tr.querySelector(".cpu").textContent = !live || stats.cpu_usage == null ? "" : stats.cpu_usage.toFixed(1) + "%";
}
function duration(s) {
  if (!s) return "";
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h ? h + "h " + m + "m" : m ? m + "m " + (s % 60) + "s" : s + "s";
}
function bytes(n) {
  if (!n) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return n.toFixed(i ? 1 : 0) + " " + units[i];
}
async function act(name, action) {
  try { await api("POST", "/api/instances/" + encodeURIComponent(name) + "/" + action); }
  catch (e) { toast("error", name + ": " + e.message + (e.doc.details ? " (" + e.doc.details + ")" : "")); }
}
function confirmDelete(name) {
  const dialog = $("#confirm-delete");
  $("#confirm-text").textContent = "Delete " + name + "? This cannot be undone.";
  dialog.dataset.name = name;
  dialog.showModal();
}
async function doDelete() {
  const dialog = $("#confirm-delete");
  dialog.close();
  try { await api("DELETE", "/api/instances/" + encodeURIComponent(dialog.dataset.name)); }
  catch (e) { toast("error", e.message); }
  await loadInstances();
}

// ---- Live feed -----------------------------------------------------------------------------
function startFeed() {
  stopFeed();
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const query = state.token ? "?token=" + encodeURIComponent(state.token) : "";
  const ws = new WebSocket(scheme + "//" + location.host + "/api/ws" + query);
  state.ws = ws;
  ws.onopen = () => {
    if (state.wsRetry > 0) loadInstances();  // what changed while we were away
    state.wsRetry = 0; feedState("");
  };
  ws.onmessage = (m) => onEvent(JSON.parse(m.data));
  ws.onclose = () => {
    if (state.ws !== ws) return;
    // Back off 1, 2, 4 ... 30 s, and say so on the page.
    const wait = Math.min(30, 2 ** state.wsRetry++);
    feedState("Live updates lost: reconnecting in " + wait + " s…");
    state.wsTimer = setTimeout(startFeed, wait * 1000);
  };
}
function stopFeed() {
  clearTimeout(state.wsTimer);
  const ws = state.ws;
  state.ws = null;
  if (ws) ws.close();
}
function feedState(text) { $("#feed-state").textContent = text; $("#feed-state").hidden = !text; }
function onEvent(ev) {
  const d = ev.data || {};
  if (ev.type === "instance_status_changed") {
    if (!state.rows.has(d.name)) { loadInstances(); return; }
    setStatus(d.name, d.status);
    if (d.status === "stopped" || d.status === "failed") setStats(d.name, { uptime: 0, memory_usage: 0, cpu_usage: null });
  } else if (ev.type === "instance_stats_updated") {
    setStats(d.name, d.stats);
  } else if (ev.type === "system_alert") {
    toast(d.level, (d.instance ? d.instance + ": " : "") + d.message);
  } else if (ev.type === "ping") {
    state.ws?.send(JSON.stringify({ type: "pong" }));
  }
}
function toast(level, text) {
  const div = document.createElement("div");
  div.className = "toast " + level;
  div.setAttribute("role", level === "error" ? "alert" : "status");
  div.textContent = text;
  $("#toasts").append(div);
  setTimeout(() => div.remove(), 8000);
}

// ---- New instance / Edit -------------------------------------------------------------------
function openEditor(inst) {
  const form = $("#instance-form");
  state.editing = inst ? inst.name : null;
  clearErrors();
  form.reset();
  $("#editor-title").textContent = inst ? "Edit " + inst.name : "New instance";
  $("#submit-instance").textContent = inst ? "Save" : "Create";
  form.name.readOnly = !!inst;
  for (const el of document.querySelectorAll(".edit-only")) el.hidden = !inst;
  if (inst) {
    form.name.value = inst.name; form.model_path.value = inst.model_path || "";
    form.port.value = inst.port ?? ""; form.backend.value = inst.backend || "llama_cpp";
    setOptionValues(inst.options || {});
    form.group.value = inst.group || "";
    form.auto_restart.value = String(!!inst.auto_restart);
    form.on_demand_start.value = String(!!inst.on_demand_start);
    form.idle_timeout.value = inst.idle_timeout ?? "";
    form.environment.value = JSON.stringify(inst.environment || {});
    form.extra_args.value = (inst.extra_args || []).join("\n");
  }
  $("#editor").hidden = false;
  (inst ? form.model_path : form.name).focus();
}
function clearErrors() {
  for (const el of document.querySelectorAll("#instance-form .error")) el.textContent = "";
}
function formBody(form) {
  const body = { model_path: form.model_path.value, backend: form.backend.value };
  if (!state.editing) body.name = form.name.value;
  if (form.port.value !== "") body.port = Number(form.port.value);
  body.options = optionValues();
  if (form.group.value) body.group = form.group.value;
  // "server default" sends nothing, so instances.* defaults apply.
  for (const key of ["auto_restart", "on_demand_start"]) {
    if (form[key].value) body[key] = form[key].value === "true";
  }
  if (form.idle_timeout.value !== "") body.idle_timeout = Number(form.idle_timeout.value);
  if (may("admin")) {
    const env = parseJson(form.environment.value, "environment");
    const args = form.extra_args.value.split("\n").map((s) => s.trim()).filter(Boolean);
    if (Object.keys(env).length || state.editing) body.environment = env;
    if (args.length || state.editing) body.extra_args = args;
  }
  return body;
}
function parseJson(text, field) {
  try { return text.trim() ? JSON.parse(text) : {}; }
  catch { throw new FieldError(field, "not valid JSON"); }
}
class FieldError extends Error { constructor(field, msg) { super(msg); this.field = field; } }
function showFieldError(field, message) {
  const slot = document.querySelector('#instance-form .error[data-for="' + field + '"]');
  if (slot) { slot.textContent = message; return true; }
  return false;
}
// The API names fields in `details`: "field.path: problem; other: problem".
function showApiErrors(e) {
  const doc = e.doc || {};
  let placed = false;
  if (doc.code === "MODEL_NOT_FOUND" || doc.code === "MODEL_NOT_ALLOWED") {
    placed = showFieldError("model_path", doc.error + (doc.details ? ": " + doc.details : ""));
  } else if (doc.code === "PORT_IN_USE" || doc.code === "PORT_CONFLICT") {
    placed = showFieldError("port", doc.error);
  } else if (doc.code === "INSTANCE_EXISTS" || doc.code === "CONFLICT") {
    placed = showFieldError("name", doc.error);
  }
  for (const part of (doc.details || "").split(/;\s*|\n/)) {
    const m = /^(([A-Za-z_]+)(?:\.([A-Za-z_]+))?)[\w.[\]]*:\s*(.*)$/.exec(part);
    if (m && (showFieldError(m[1], m[4]) || showFieldError(m[2], m[4]))) placed = true;
  }
  if (!placed) $("#form-error").textContent = doc.error ? doc.error + (doc.details ? ": " + doc.details : "") : e.message;
}
async function submitInstance(ev) {
  ev.preventDefault();
  const form = ev.target;
  clearErrors();
  let body;
  try { body = formBody(form); } catch (e) { showFieldError(e.field, e.message); return; }
  try {
    if (state.editing) {
      const path = "/api/instances/" + encodeURIComponent(state.editing);
      await api("PUT", path, body);
      if (form.restart_now.checked) await api("POST", path + "/restart");
    } else {
      await api("POST", "/api/instances", body);
    }
  } catch (e) { showApiErrors(e); return; }  // what was typed stays in the form
  $("#editor").hidden = true;
  state.editing = null;
  await loadInstances();
}
// "llama-server -m X --port N --ctx-size 4096 ..." -> the form: the option table's flags
// (from /api/backends) fill their fields, anything else goes to extra args.
const FLAG_NAMES = { "-m": "model_path", "--model": "model_path", "--port": "port" };
function importCommand() {
  const form = $("#instance-form");
  const byFlag = new Map(currentOptions().map((o) => [o.flag, o]));
  const words = $("#import-cmd").value.trim().split(/\s+/).filter(Boolean);
  const options = {};
  const extra = [];
  for (let i = words[0] && !words[0].startsWith("-") ? 1 : 0; i < words.length; i++) {
    const flag = words[i];
    const next = words[i + 1];
    const value = next !== undefined && !next.startsWith("-") ? next : null;
    const spec = byFlag.get(flag);
    if (value !== null && !(spec && spec.type === "bool")) i++;
    if (FLAG_NAMES[flag]) form[FLAG_NAMES[flag]].value = value ?? "";
    else if (spec) options[spec.name] = spec.type === "bool" ? true : value;
    else extra.push(flag, ...(value === null ? [] : [value]));
  }
  setOptionValues(options);
  if (extra.length) form.extra_args.value = extra.join("\n");
  if (!form.name.value && form.model_path.value) {
    form.name.value = form.model_path.value.split("/").pop().replace(/\.gguf$/i, "").replace(/[^A-Za-z0-9_-]/g, "-");
  }
}

// ---- Option fields, from the backend's option table ------------------------------------------
function currentOptions() {
  const name = $("#instance-form").backend.value;
  return (state.backends || []).find((b) => b.name === name)?.options || [];
}
function renderOptionFields() {
  const select = $("#instance-form").backend;
  select.replaceChildren(...state.backends.map((b) => new Option(b.name, b.name)));
  const set = $("#option-fields");
  set.querySelectorAll(".field").forEach((el) => el.remove());
  for (const o of currentOptions()) {
    let input;
    if (o.type === "bool" || o.type === "choice") {
      input = document.createElement("select");
      const values = o.type === "bool" ? [["true", "on"], ["false", "off"]] : o.choices.map((c) => [c, c]);
      input.append(new Option("default", ""), ...values.map(([v, t]) => new Option(t, v)));
    } else {
      input = document.createElement("input");
      if (o.type === "int" || o.type === "float") {
        input.type = "number"; input.step = o.type === "int" ? "1" : "any";
        if (o.minimum !== null) input.min = String(o.minimum);
      }
      if (o.type === "str_list") input.placeholder = "comma-separated";
    }
    input.dataset.option = o.name;
    input.dataset.type = o.type;
    const label = document.createElement("label");
    label.title = o.help + " (" + o.flag + ")";
    label.append(o.name + " ", input);
    const error = document.createElement("span");
    error.className = "error"; error.dataset.for = "options." + o.name;
    const div = document.createElement("div");
    div.className = "field"; div.append(label, error);
    set.append(div);
  }
}
function setOptionValues(options) {
  for (const input of document.querySelectorAll("#option-fields [data-option]")) {
    const value = options[input.dataset.option];
    input.value = value === undefined || value === null ? "" : Array.isArray(value) ? value.join(",") : String(value);
  }
}
function optionValues() {
  const options = {};
  for (const input of document.querySelectorAll("#option-fields [data-option]")) {
    const raw = input.value.trim();
    if (raw === "") continue;
    const type = input.dataset.type;
    options[input.dataset.option] = type === "int" || type === "float" ? Number(raw)
      : type === "bool" ? raw === "true" : type === "str_list" ? raw.split(",").map((s) => s.trim()) : raw;
  }
  return options;
}

// ---- Logs ----------------------------------------------------------------------------------
const MAX_LOG_LINES = 10000;
function openLogs(name) {
  state.logName = name;
  $("#logs-title").textContent = "Logs: " + name;
  $("#logs").hidden = false;
  $("#log-lines").textContent = "";
  followLogs();
}
async function followLogs() {
  state.logAbort?.abort();
  const abort = new AbortController();
  state.logAbort = abort;
  const pre = $("#log-lines");
  pre.textContent = "";
  const url = "/api/instances/" + encodeURIComponent(state.logName) +
    "/logs?follow=true&lines=1000&level=" + $("#log-level").value;
  const headers = state.token ? { Authorization: "Bearer " + state.token } : {};
  try {
    const res = await fetch(url, { headers, signal: abort.signal });
    if (!res.ok) { pre.textContent = "Cannot read the log (HTTP " + res.status + ")"; return; }
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      const events = buffer.split("\n\n");
      buffer = events.pop();
      const lines = events.filter((e) => e.startsWith("data: "))
        .map((e) => JSON.parse(e.slice(6))).map((l) => l.timestamp + " " + l.level.padEnd(5) + " " + l.message + "\n");
      if (lines.length) appendLog(lines.join(""));
    }
  } catch (e) { if (e.name !== "AbortError") pre.append("\n[log stream ended: " + e.message + "]"); }
}
function appendLog(text) {
  // One text node per batch; the oldest are dropped past MAX_LOG_LINES, so it stays fast.
  const pre = $("#log-lines");
  if (state.logPaused) { (state.logHeld ||= []).push(text); return; }
  const stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  pre.append(text);
  while (pre.childNodes.length > 1 && countLines(pre) > MAX_LOG_LINES) pre.firstChild.remove();
  if (stick) pre.scrollTop = pre.scrollHeight;
}
function countLines(pre) {
  let n = 0;
  for (const node of pre.childNodes) n += (node.textContent.match(/\n/g) || []).length;
  return n;
}
function togglePause() {
  state.logPaused = !state.logPaused;
  $("#log-pause").setAttribute("aria-pressed", String(state.logPaused));
  $("#log-pause").textContent = state.logPaused ? "Resume" : "Pause";
  if (!state.logPaused && state.logHeld) { const held = state.logHeld; state.logHeld = null; appendLog(held.join("")); }
}
function downloadLog() {
  const blob = new Blob([$("#log-lines").textContent], { type: "text/plain" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob); a.download = state.logName + ".log";
  a.click(); URL.revokeObjectURL(a.href);
}

// ---- System --------------------------------------------------------------------------------
async function loadSystem() {
  const facts = $("#system-facts");
  const [status, info] = await Promise.all([api("GET", "/api/system/status"), api("GET", "/api/system/info")]);
  const r = status.resources || {};
  const items = [
    ["Version", info.version], ["Host", info.hostname + " (" + info.os + "/" + info.arch + ")"],
    ["CPUs", info.cpu_count], ["CPU use", (r.cpu_usage ?? 0).toFixed(1) + "%"],
    ["Memory", bytes(r.memory_usage) + " of " + bytes(r.memory_total)],
    ["Disk (data dir)", (r.disk_usage ?? 0).toFixed(1) + "%"],
    ["Instances", status.instances.running + " running of " + status.instances.total],
  ];
  for (const gpu of info.gpus || []) items.push(["GPU", gpu.name + ": " + bytes(gpu.memory_used) + " of " + bytes(gpu.memory_total)]);
  // The server hides every secret as "***" (docs/api.md, Configuration).
  api("GET", "/api/config").then((config) => { $("#config-text").textContent = JSON.stringify(config, null, 2); })
    .catch(() => { $("#config").hidden = true; });
  facts.replaceChildren(...items.flatMap(([k, v]) => {
    const dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = k; dd.textContent = v; return [dt, dd];
  }));
}

// ---- API keys (admins) -------------------------------------------------------------------------
async function loadKeys() {
  const { keys } = await api("GET", "/api/keys");
  $("#key-list tbody").replaceChildren(...keys.map((k) => {
    const tr = document.createElement("tr");
    tr.dataset.key = k.name;
    const expired = k.expires_at && Date.parse(k.expires_at) < Date.now();
    tr.append(cell(k.name), cell(k.prefix + "…"), cell(k.created_at),
      cell(k.expires_at ? k.expires_at + (expired ? " (expired)" : "") : "never"),
      cell(k.last_used_at || "never"), cell("", "actions"));
    tr.lastChild.append(button("Revoke", async () => {
      try { await api("DELETE", "/api/keys/" + encodeURIComponent(k.name)); } catch (e) { toast("error", e.message); }
      loadKeys();
    }));
    return tr;
  }));
}
async function createKey(ev) {
  ev.preventDefault();
  const form = ev.target;
  $("#key-error").textContent = "";
  try {
    const made = await api("POST", "/api/keys", { name: form.name.value });
    $("#new-key-value").textContent = made.key;  // never stored: gone on reload
    $("#new-key").hidden = false;
    form.reset();
  } catch (e) { $("#key-error").textContent = e.message + (e.doc.details ? ": " + e.doc.details : ""); }
  loadKeys();
}

// ---- Start ---------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", () => {
  $("#v1-url").textContent = location.origin + "/v1";
  $("#copy-v1").addEventListener("click", () => navigator.clipboard?.writeText(location.origin + "/v1"));
  $("#signin-form").addEventListener("submit", signIn);
  $("#sign-out").addEventListener("click", showSignIn);
  $("#new-instance").addEventListener("click", () => openEditor(null));
  $("#instance-form").addEventListener("submit", submitInstance);
  $("#cancel-edit").addEventListener("click", () => { $("#editor").hidden = true; });
  $("#import").addEventListener("click", importCommand);
  $("#confirm-yes").addEventListener("click", doDelete);
  $("#confirm-no").addEventListener("click", () => $("#confirm-delete").close());
  $("#log-level").addEventListener("change", followLogs);
  $("#log-pause").addEventListener("click", togglePause);
  $("#log-copy").addEventListener("click", () => navigator.clipboard?.writeText($("#log-lines").textContent));
  $("#log-download").addEventListener("click", downloadLog);
  $("#key-form").addEventListener("submit", createKey);
  $("#copy-key").addEventListener("click", () => navigator.clipboard?.writeText($("#new-key-value").textContent));
  $("#log-close").addEventListener("click", () => { state.logAbort?.abort(); $("#logs").hidden = true; });
  enter().catch(() => { if ($("#app").hidden) showSignIn(); });
});
