// The backend's option table (GET /api/backends) as form fields: the essentials (context size,
// GPU layers) beside Name and Model path, the rest in collapsed groups with a Filter options
// box; each field with its description, flag and the backend's default (never sent).
import { $, state } from "./api.js";

const ESSENTIAL = { context_size: "Context size", gpu_layers: "GPU layers", max_model_len: "Context size" };
const GROUPS = [["performance", "Performance"], ["sampling", "Sampling"], ["context", "Context"],
  ["speculative", "Speculative decoding"], ["multimodal", "Multimodal"], ["server", "Server"]];

export function currentOptions() {
  const name = $("#instance-form").backend.value;
  return (state.backends || []).find((b) => b.name === name)?.options || [];
}

/** A default as a person reads it: on/off for booleans, lists comma-separated. */
function shown(value) {
  if (value === true) return "on";
  if (value === false) return "off";
  return Array.isArray(value) ? value.join(",") : String(value);
}

function optionInput(o) {
  let input;
  const fallback = o.default == null ? "default" : "default (" + shown(o.default) + ")";
  if (o.type === "bool" || o.type === "choice") {
    input = document.createElement("select");
    const values = o.type === "bool" ? [["true", "on"], ["false", "off"]] : o.choices.map((c) => [c, c]);
    input.append(new Option(fallback, ""), ...values.map(([v, t]) => new Option(t, v)));
  } else {
    input = document.createElement("input");
    if (o.type === "int" || o.type === "float") {
      input.type = "number"; input.step = o.type === "int" ? "1" : "any";
      if (o.minimum !== null) input.min = String(o.minimum);
    }
    input.placeholder = o.type === "str_list" ? "comma-separated" : o.default == null ? "" : shown(o.default);
  }
  input.dataset.option = o.name;
  input.dataset.type = o.type;
  input.id = "option-" + o.name;
  return input;
}

function optionField(o) {
  const input = optionInput(o);
  const label = document.createElement("label");
  label.htmlFor = input.id;
  label.textContent = ESSENTIAL[o.name] || o.name;
  const about = document.createElement("small");
  about.id = input.id + "-about";
  about.className = "about";
  about.textContent = o.help + (o.default == null ? "" : " · default: " + shown(o.default)) + " · " + o.flag;
  input.setAttribute("aria-describedby", about.id);
  const error = document.createElement("span");
  error.className = "error"; error.dataset.for = "options." + o.name;
  const div = document.createElement("div");
  div.className = "field option";
  div.dataset.search = (o.name + " " + o.flag + " " + o.help).toLowerCase();
  div.append(label, input, about, error);
  return div;
}

function groupOf(key, title, fields) {
  const details = document.createElement("details");
  details.className = "option-group";
  details.dataset.group = key;
  const summary = document.createElement("summary");
  summary.textContent = title + " ";
  const count = document.createElement("span");
  count.className = "muted"; count.textContent = "(" + fields.length + ")";
  summary.append(count);
  const grid = document.createElement("div");
  grid.className = "option-grid";
  grid.append(...fields);
  details.append(summary, grid);
  return details;
}

export function renderOptionFields() {
  const select = $("#instance-form").backend;
  if (!select.options.length || select.options.length !== state.backends.length) {
    select.replaceChildren(...state.backends.map((b) => new Option(b.name, b.name)));
  }
  const options = currentOptions();
  $("#essential-options").replaceChildren(...options.filter((o) => o.name in ESSENTIAL).map(optionField));
  const rest = options.filter((o) => !(o.name in ESSENTIAL));
  $("#option-groups").replaceChildren(...GROUPS.map(([key, title]) => {
    const fields = rest.filter((o) => (o.group || "server") === key).map(optionField);
    return fields.length ? groupOf(key, title, fields) : null;
  }).filter(Boolean));
  filterOptions();
}

/** Filter options: only the fields whose name, flag or description hold the words, their
 * groups open; empty: every group again, open where it holds a value. */
export function filterOptions() {
  const words = $("#option-filter").value.trim().toLowerCase();
  let matches = 0;
  for (const details of document.querySelectorAll("#option-groups details")) {
    let inGroup = 0;
    for (const field of details.querySelectorAll(".option")) {
      field.hidden = !!words && !field.dataset.search.includes(words);
      if (!field.hidden) inGroup++;
    }
    matches += inGroup;
    details.hidden = !!words && inGroup === 0;
    details.open = words ? inGroup > 0 : holdsValue(details);
  }
  $("#option-filter-none").hidden = !words || matches > 0;
}

function holdsValue(details) {
  return [...details.querySelectorAll("[data-option]")].some((input) => input.value !== "");
}

/** A field about to be pointed at (its error): out of the filter and its group open. */
export function revealOption(control) {
  const field = control?.closest(".option");
  if (!field) return;
  if (field.hidden) { $("#option-filter").value = ""; filterOptions(); }
  const details = field.closest("details");
  if (details) details.open = true;
}

export function setOptionValues(options) {
  for (const input of document.querySelectorAll("#instance-form [data-option]")) {
    const value = options[input.dataset.option];
    input.value = value === undefined || value === null ? "" : Array.isArray(value) ? value.join(",") : String(value);
  }
  filterOptions();
}

export function optionValues() {
  const options = {};
  for (const input of document.querySelectorAll("#instance-form [data-option]")) {
    const raw = input.value.trim();
    if (raw === "") continue;
    const type = input.dataset.type;
    options[input.dataset.option] = type === "int" || type === "float" ? Number(raw)
      : type === "bool" ? raw === "true" : type === "str_list" ? raw.split(",").map((s) => s.trim()) : raw;
  }
  return options;
}

/** The form's option fields as the API names them: {name: input}. */
export function optionInputs() {
  return new Map([...document.querySelectorAll("#instance-form [data-option]")]
    .map((input) => [input.dataset.option, input]));
}
