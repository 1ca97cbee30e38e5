// New instance / Edit: one form. The API's errors appear by the fields they name and what was
// typed stays; the memory estimate follows what is typed (debounced).
import { $, api, bytes, may, state } from "./api.js";
import { filterOptions, optionInputs, optionValues, renderOptionFields, revealOption, setOptionValues }
  from "./options.js";
import { systemSoon } from "./system.js";
import { loadInstances } from "./table.js";

/** inst: the instance to edit, or null for a new one; preset: a new one's first values
 * ({model_path}: "New instance from this model" in the Models view). */
export function openEditor(inst, preset) {
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
    form.group.value = inst.group || "";
    form.auto_restart.value = String(!!inst.auto_restart);
    form.on_demand_start.value = String(!!inst.on_demand_start);
    form.idle_timeout.value = inst.idle_timeout ?? "";
    form.environment.value = JSON.stringify(inst.environment || {});
    form.extra_args.value = (inst.extra_args || []).join("\n");
  }
  // What Edit shows, to send only what the user changed: an inherited default read back is
  // not saved as an explicit value, and a cleared field is sent as null (issue 34).
  if (state.backends) renderOptionFields();  // the chosen backend's options
  setOptionValues(inst?.options || {});  // and their groups open where they hold a value
  state.loaded = inst ? formSnapshot(form) : null;
  if (!inst && preset?.model_path) form.model_path.value = preset.model_path;
  $("#import-note").textContent = "";
  showEstimate("");
  if (inst || preset?.model_path) estimateSoon();
  openedFrom = document.activeElement;  // where focus goes back to (the Options tab, or a row)
  $("#editor").hidden = false;
  (inst ? form.model_path : form.name).focus();
  libraryChoices();
}

/** Beside "Model path": the library's models (GET /api/models) to pick one from. */
async function libraryChoices() {
  let models = [];
  try { ({ models } = await api("GET", "/api/models")); } catch { return; }
  const usable = models.filter((m) => !m.error && !m.mmproj);
  $("#library-pick").replaceChildren(new Option("choose a model…", ""), ...usable.map((m) =>
    new Option([m.id, m.quantization, bytes(m.size)].filter(Boolean).join(" · "), m.path)));
  $("#library-pick-wrap").hidden = usable.length === 0;
}

function pickFromLibrary() {
  const form = $("#instance-form"), path = $("#library-pick").value;
  if (!path) return;
  form.model_path.value = path;
  showFieldError("model_path", "");
  estimateSoon();
}

let openedFrom = null;

function closeEditor() {
  $("#editor").hidden = true;
  state.editing = null;
  // Back where the editor was opened from, if that is still shown; a hidden button takes no
  // focus (the instance page has no New instance button in view).
  const back = [openedFrom, $("#new-instance")].find((el) => el?.isConnected && el.offsetParent);
  (back || document.querySelector("main h1, main h2"))?.focus();
}

function clearErrors() {
  for (const el of document.querySelectorAll("#instance-form .error")) el.textContent = "";
  for (const el of document.querySelectorAll("#instance-form [aria-invalid]")) el.removeAttribute("aria-invalid");
}

const EDITABLE = ["model_path", "port", "backend", "group", "auto_restart", "on_demand_start",
  "idle_timeout", "environment", "extra_args"];

/** Every field's text as shown: {field: string, "options.<name>": string}. */
function formSnapshot(form) {
  const snap = {};
  for (const key of EDITABLE) snap[key] = form[key].value;
  for (const [name, input] of optionInputs()) snap["options." + name] = input.value;
  return snap;
}

function formBody(form) {
  return state.editing ? editBody(form) : createBody(form);
}

function createBody(form) {
  const body = { name: form.name.value, model_path: form.model_path.value, backend: form.backend.value };
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
    const args = splitArgs(form.extra_args.value);
    if (Object.keys(env).length) body.environment = env;
    if (args.length) body.extra_args = args;
  }
  return body;
}

/** Edit: only the fields changed since the form opened; a cleared one is null. */
function editBody(form) {
  const before = state.loaded, now = formSnapshot(form), body = {};
  const changed = (key) => now[key] !== before[key];
  for (const key of ["model_path", "backend", "group"]) if (changed(key)) body[key] = now[key] || null;
  for (const key of ["port", "idle_timeout"]) if (changed(key)) body[key] = now[key] === "" ? null : Number(now[key]);
  for (const key of ["auto_restart", "on_demand_start"]) {
    if (changed(key)) body[key] = now[key] === "" ? null : now[key] === "true";
  }
  if (may("admin") && changed("environment")) body.environment = parseJson(now.environment, "environment");
  if (may("admin") && changed("extra_args")) body.extra_args = splitArgs(now.extra_args);
  const values = optionValues(), options = {};
  for (const name of optionInputs().keys()) {
    if (changed("options." + name)) options[name] = name in values ? values[name] : null;
  }
  if (Object.keys(options).length) body.options = options;
  return body;
}

function splitArgs(text) { return text.split("\n").map((s) => s.trim()).filter(Boolean); }

function parseJson(text, field) {
  try { return text.trim() ? JSON.parse(text) : {}; }
  catch { throw new FieldError(field, "not valid JSON"); }
}
class FieldError extends Error { constructor(field, msg) { super(msg); this.field = field; } }

function showFieldError(field, message) {
  const slot = document.querySelector('#instance-form .error[data-for="' + field + '"]');
  if (!slot) return false;
  slot.textContent = message;
  const control = controlOf(slot);
  if (control && message) control.setAttribute("aria-invalid", "true");
  else control?.removeAttribute("aria-invalid");
  return true;
}

function controlOf(slot) {
  return slot.closest(".field, fieldset")?.querySelector("input, select, textarea") || null;
}

/** The first message in the form, in reading order, gets the focus (and so the view). */
function focusFirstError() {
  const first = [...document.querySelectorAll("#instance-form .error")].find((el) => el.textContent);
  if (!first) return;
  const control = first.id === "form-error" ? null : controlOf(first);
  revealOption(control);  // in a collapsed group, or filtered out: shown first
  (control || first).focus();
}

/** What the browser can tell before asking the server: every problem at once. */
function localProblems(form) {
  const problems = [];
  if (!state.editing && !form.name.value.trim()) problems.push(["name", "a name is required"]);
  if (!form.model_path.value.trim()) problems.push(["model_path", "a model path is required"]);
  const port = form.port.value;
  if (port !== "" && !(Number.isInteger(Number(port)) && port >= 1024 && port <= 65535)) {
    problems.push(["port", "a port is a whole number from 1024 to 65535"]);
  }
  if (form.idle_timeout.value !== "" && Number(form.idle_timeout.value) < 0) {
    problems.push(["idle_timeout", "0 or more minutes"]);
  }
  return problems;
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
  const problems = localProblems(form);
  let body;
  try { body = formBody(form); } catch (e) { problems.push([e.field, e.message]); }
  if (problems.length) {
    for (const [field, message] of problems) showFieldError(field, message);
    focusFirstError();
    return;
  }
  try {
    if (state.editing) {
      const path = "/api/instances/" + encodeURIComponent(state.editing);
      await api("PUT", path, body);
      if (form.restart_now.checked) await api("POST", path + "/restart");
    } else {
      await api("POST", "/api/instances", body);
    }
  } catch (e) { showApiErrors(e); focusFirstError(); return; }  // what was typed stays
  closeEditor();
  await loadInstances();
  systemSoon();  // a new instance has no event of its own
}

// ---- Import command line: read by the server (POST .../parse-command), not here ------------
async function importCommand() {
  const form = $("#instance-form");
  const note = $("#import-note");
  note.textContent = "";
  const command = $("#import-cmd").value.trim();
  if (!command) { note.textContent = "Paste a llama-server command line first."; return; }
  let answer;
  try {
    answer = await api("POST", "/api/backends/" + encodeURIComponent(form.backend.value) +
      "/parse-command", { command });
  } catch (e) {
    note.textContent = "Cannot import: " + e.message + (e.doc?.details ? " (" + e.doc.details + ")" : "");
    return;
  }
  const inst = answer.instance;
  form.model_path.value = inst.model_path || "";
  if (inst.port != null) form.port.value = inst.port;
  setOptionValues(inst.options || {});
  form.extra_args.value = (inst.extra_args || []).join("\n");
  if (!form.name.value && inst.model_path) {
    form.name.value = inst.model_path.split("/").pop().replace(/\.gguf$/i, "").replace(/[^A-Za-z0-9_-]/g, "-");
  }
  if (answer.ignored.length) note.textContent = "Not imported (llamactl sets these itself, or cannot use them): " + answer.ignored.join(" ");
  estimateSoon();
}

// ---- The memory estimate, as the user types ------------------------------------------------
const ESTIMATE_DELAY_MS = 400;
let estimateTimer = null;
let estimateSeq = 0;

function showEstimate(text) { $("#estimate").textContent = text; }

function estimateSoon() {
  clearTimeout(estimateTimer);
  estimateTimer = setTimeout(estimateNow, ESTIMATE_DELAY_MS);
}

async function estimateNow() {
  const form = $("#instance-form");
  const modelPath = form.model_path.value.trim();
  const seq = ++estimateSeq;  // only the latest answer is shown
  if (!modelPath) { showEstimate(""); return; }
  let text;
  try {
    const est = await api("POST", "/api/backends/" + encodeURIComponent(form.backend.value) + "/estimate",
      { model_path: modelPath, options: optionValues() });
    text = "Estimated memory: " + bytes(est.ram) + " RAM" +
      (est.vram == null ? "" : ", " + (bytes(est.vram) || "0 B") + " VRAM");
  } catch (e) {
    text = "No estimate: " + e.message;
  }
  if (seq === estimateSeq) showEstimate(text);
}

export function initForm() {
  const form = $("#instance-form");
  $("#new-instance").addEventListener("click", () => openEditor(null));
  form.addEventListener("submit", submitInstance);
  $("#cancel-edit").addEventListener("click", closeEditor);
  $("#import").addEventListener("click", importCommand);
  $("#option-filter").addEventListener("input", filterOptions);
  $("#library-pick").addEventListener("change", pickFromLibrary);
  $("#option-filter").addEventListener("keydown", (ev) => { if (ev.key === "Enter") ev.preventDefault(); });
  form.backend.addEventListener("change", () => { renderOptionFields(); estimateSoon(); });
  form.addEventListener("input", (ev) => {
    // The field being changed is what its error was about: the message goes with the edit.
    showFieldError(ev.target.dataset.option ? "options." + ev.target.dataset.option
      : ev.target.name, "");
    if (ev.target.name === "model_path" || ev.target.dataset.option) estimateSoon();
  });
  $("#editor").addEventListener("keydown", (ev) => { if (ev.key === "Escape") closeEditor(); });
}
