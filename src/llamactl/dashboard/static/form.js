// New instance / Edit: one form. The API's errors appear by the fields they name and what was
// typed stays; the memory estimate follows what is typed (debounced).
import { $, api, bytes, may, state } from "./api.js";
import { importCommand, optionValues, renderOptionFields, setOptionValues } from "./options.js";
import { loadInstances } from "./table.js";

export function openEditor(inst) {
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
  showEstimate("");
  if (inst) estimateSoon();
  $("#editor").hidden = false;
  (inst ? form.model_path : form.name).focus();
}

function closeEditor() {
  $("#editor").hidden = true;
  state.editing = null;
  $("#new-instance").focus();
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
  closeEditor();
  await loadInstances();
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
  $("#import").addEventListener("click", () => { importCommand(); estimateSoon(); });
  form.backend.addEventListener("change", () => { renderOptionFields(); estimateSoon(); });
  form.addEventListener("input", (ev) => {
    // The field being changed is what its error was about: the message goes with the edit.
    showFieldError(ev.target.dataset.option ? "options." + ev.target.dataset.option
      : ev.target.name, "");
    if (ev.target.name === "model_path" || ev.target.dataset.option) estimateSoon();
  });
  $("#editor").addEventListener("keydown", (ev) => { if (ev.key === "Escape") closeEditor(); });
}
