// Models: the library (GET /api/models, issue 33): each model on disk with what it needs and
// the instances using it; pulls from the Hub with a live progress bar each (the feed's
// model_pull_progress events, and a slow poll in case an event was dropped), Cancel, Delete,
// and "New instance from this model". What a role cannot do is not shown.
import { $, api, bytes, button, labelledCell, may, state } from "./api.js";
import { openEditor } from "./form.js";

const ACTIVE = new Set(["queued", "downloading", "verifying"]);
const FINISHED_SHOWN = 3;  // the last few finished pulls stay listed, with how they ended
const POLL_MS = 5000;
const pulls = new Map();  // id -> job, as last heard
const poll = { timer: null };

const shown = () => !$("#models").hidden;
const problem = (e) => (e.doc?.error || e.message) + (e.doc?.details ? ": " + e.doc.details : "");

function estimateText(est) {
  if (!est) return "";
  return bytes(est.ram) + " RAM" + (est.vram ? ", " + bytes(est.vram) + " VRAM" : "");
}

function modelRow(m) {
  const tr = document.createElement("tr");
  tr.setAttribute("role", "row");
  tr.dataset.id = m.id;
  const name = labelledCell(m.id, null, "model-name");
  tr.append(name, labelledCell(bytes(m.size), "Size"), labelledCell(m.quantization, "Quantization"),
    labelledCell(m.context_length ? m.context_length.toLocaleString("en") : "", "Context"),
    labelledCell(estimateText(m.memory_estimate), "Memory estimate"),
    labelledCell((m.instances || []).join(", "), "Instances"),
    labelledCell(m.error, "Problem", m.error ? "error" : ""), modelActions(m));
  return tr;
}

function modelActions(m) {
  const td = labelledCell("", null, "actions");
  const box = document.createElement("div");
  box.className = "model-actions";
  if (may("operator") && !m.error) {
    box.append(button("New instance from this model", () => newInstanceFrom(m)));
  }
  // Only the library's own files: the server refuses others (403), never deletes them.
  if (may("admin") && m.deletable) {
    const del = button("Delete", (ev) => confirmModelDelete(m, ev.currentTarget));
    del.classList.add("danger");
    del.setAttribute("aria-label", "Delete " + m.id);
    box.append(del);
  }
  td.append(box);
  return td;
}

/** The Instances view, its New instance form open with this model's path. */
function newInstanceFrom(m) {
  // views.js moves the focus to the view's heading on hashchange: open the form after it.
  window.addEventListener("hashchange", () => openEditor(null, { model_path: m.path }), { once: true });
  location.hash = "#/instances";
}

/** Models an instance uses that the library does not list (a file outside its folders). */
function outsideModels(listed) {
  const paths = new Set(listed.map((m) => m.path)), byPath = new Map();
  for (const { inst } of state.rows.values()) {
    if (!inst.model_path || paths.has(inst.model_path)) continue;
    byPath.set(inst.model_path, [...(byPath.get(inst.model_path) || []), inst.name]);
  }
  return [...byPath].sort().map(([path, names]) => {
    const li = document.createElement("li");
    li.textContent = path + " — " + names.join(", ");
    return li;
  });
}

export async function loadModels() {
  $("#pull-form").hidden = !may("operator");
  const [library] = await Promise.all([api("GET", "/api/models"), loadPulls()]);
  const models = library.models.filter((m) => !m.mmproj);
  $("#model-table tbody").replaceChildren(...models.map(modelRow));
  $("#model-table").hidden = models.length === 0;
  $("#models-empty").hidden = models.length > 0;
  const outside = outsideModels(library.models);
  $("#outside-models").replaceChildren(...outside);
  $("#outside").hidden = outside.length === 0;
}

// ---- Pulls ---------------------------------------------------------------------------------
async function loadPulls() {
  const { pulls: jobs } = await api("GET", "/api/models/pulls");
  pulls.clear();
  for (const job of jobs) pulls.set(job.id, job);
  renderPulls();
}

function pullItem(id) {
  const li = document.createElement("li");
  li.className = "pull";
  li.dataset.id = id;
  const bar = document.createElement("div");
  bar.setAttribute("role", "progressbar");
  bar.setAttribute("aria-valuemin", "0"); bar.setAttribute("aria-valuemax", "100");
  bar.append(document.createElement("span"));
  li.append(document.createElement("strong"), bar, document.createElement("span"));
  return li;
}

/** The item shows the job as it is now: updated in place, so a focused Cancel keeps focus
 * while the progress events arrive (four a second). */
function fillPull(li, job) {
  const [title, bar, said] = li.children;
  const percent = job.status === "done" ? 100
    : job.bytes_total ? Math.floor((100 * job.bytes_done) / job.bytes_total) : 0;
  title.textContent = job.source;
  bar.setAttribute("aria-label", job.source);
  bar.setAttribute("aria-valuenow", String(percent));
  bar.setAttribute("aria-valuetext", percent + "% (" + job.status + ")");
  bar.className = "meter meter-" + job.status;
  bar.firstElementChild.style.width = percent + "%";
  said.className = "pull-state " + (job.status === "failed" ? "error" : "muted");
  said.textContent = job.status + " · " + (bytes(job.bytes_done) || "0 B") + " of " + bytes(job.bytes_total) +
    (job.error ? " · " + job.error : "") + (job.model ? " · " + job.model : "");
  const cancel = li.querySelector("button");
  if (ACTIVE.has(job.status) && may("operator") && !cancel) {
    const button_ = button("Cancel", () => cancelPull(job.id));
    button_.setAttribute("aria-label", "Cancel " + job.source);
    li.append(button_);
  } else if (!ACTIVE.has(job.status) && cancel) {
    if (document.activeElement === cancel) $("#pull-source").focus();
    cancel.remove();
  }
  return li;
}

function renderPulls() {
  const jobs = [...pulls.values()].sort((a, b) => b.created_at.localeCompare(a.created_at));
  const active = jobs.filter((j) => ACTIVE.has(j.status));
  const sources = new Set(active.map((j) => j.source));  // one line a source: its latest pull
  const ended = jobs.filter((j) => !ACTIVE.has(j.status) && !sources.has(j.source) && sources.add(j.source))
    .slice(0, FINISHED_SHOWN);
  const list = [...active, ...ended], items = $("#pull-list").children;
  const same = list.length === items.length && list.every((job, i) => items[i].dataset.id === job.id);
  if (same) list.forEach((job, i) => fillPull(items[i], job));
  else $("#pull-list").replaceChildren(...list.map((job) => fillPull(pullItem(job.id), job)));
  $("#pulls").hidden = list.length === 0;
  clearTimeout(poll.timer);
  if (active.length && shown()) poll.timer = setTimeout(() => loadPulls().catch(() => {}), POLL_MS);
}

/** The feed's model_pull_progress: the job as it is now (the last one with its end). */
export function pullProgress(job) {
  const before = pulls.get(job.id);
  pulls.set(job.id, job);
  if (!shown()) return;
  renderPulls();
  if (job.status === "done" && before?.status !== "done") loadModels().catch(() => {});
}

async function startPull(ev) {
  ev.preventDefault();
  const form = ev.currentTarget, error = $("#pull-error");
  error.textContent = "";
  form.source.removeAttribute("aria-invalid");
  const source = form.source.value.trim();
  if (!source) { error.textContent = "Name a model: <user>/<repo>:<quant>"; form.source.focus(); return; }
  try {
    const job = await api("POST", "/api/models/pull", { source });
    if (!pulls.has(job.id) || ACTIVE.has(job.status)) pulls.set(job.id, job);  // an event may be newer
    form.source.value = "";
    renderPulls();
  } catch (e) {
    error.textContent = problem(e);  // what was typed stays, to be corrected
    form.source.setAttribute("aria-invalid", "true");
    form.source.focus();
  }
}

async function cancelPull(id) {
  try { pullProgress(await api("DELETE", "/api/models/pulls/" + encodeURIComponent(id))); }
  catch (e) { $("#pull-error").textContent = problem(e); }
}

// ---- Delete, asked in a modal dialog; 409 MODEL_IN_USE says which instances ----------------
let deleting = null;  // {model, opener}

function confirmModelDelete(model, opener) {
  deleting = { model, opener };
  $("#model-confirm-text").textContent = "Delete " + model.id + " from the disk? This cannot be undone.";
  $("#confirm-model-delete").showModal();
  $("#model-confirm-no").focus();
}

async function doModelDelete() {
  const { model } = deleting;
  deleting.opener = $("#models-title");  // the row is about to go
  $("#confirm-model-delete").close();
  $("#model-error").textContent = "";
  try { await api("DELETE", "/api/models/" + model.id.split("/").map(encodeURIComponent).join("/")); }
  catch (e) {
    $("#model-error").textContent = e.doc?.code === "MODEL_IN_USE"
      ? "Cannot delete " + model.id + ": it is in use (" + (e.doc.details || "by an instance") +
        "). Delete those instances, or give them another model, first."
      : "Cannot delete " + model.id + ": " + problem(e);
  }
  await loadModels();
}

export function initModels() {
  $("#pull-form").addEventListener("submit", startPull);
  $("#pull-form").source.addEventListener("input", () => { $("#pull-error").textContent = ""; });
  const dialog = $("#confirm-model-delete");
  $("#model-confirm-yes").addEventListener("click", doModelDelete);
  $("#model-confirm-no").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => { deleting?.opener?.focus(); deleting = null; });
}
