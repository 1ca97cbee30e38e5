// The backend's option table (GET /api/backends) as form fields, and "Import command line".
import { $, state } from "./api.js";

export function currentOptions() {
  const name = $("#instance-form").backend.value;
  return (state.backends || []).find((b) => b.name === name)?.options || [];
}

function optionInput(o) {
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
  return input;
}

export function renderOptionFields() {
  const select = $("#instance-form").backend;
  if (!select.options.length || select.options.length !== state.backends.length) {
    select.replaceChildren(...state.backends.map((b) => new Option(b.name, b.name)));
  }
  const set = $("#option-fields");
  set.querySelectorAll(".field").forEach((el) => el.remove());
  for (const o of currentOptions()) {
    const label = document.createElement("label");
    label.title = o.help + " (" + o.flag + ")";
    label.append(o.name + " ", optionInput(o));
    const error = document.createElement("span");
    error.className = "error"; error.dataset.for = "options." + o.name;
    const div = document.createElement("div");
    div.className = "field"; div.append(label, error);
    set.append(div);
  }
}

export function setOptionValues(options) {
  for (const input of document.querySelectorAll("#option-fields [data-option]")) {
    const value = options[input.dataset.option];
    input.value = value === undefined || value === null ? "" : Array.isArray(value) ? value.join(",") : String(value);
  }
}

export function optionValues() {
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

/** The form's option fields as the API names them: {name: input}. */
export function optionInputs() {
  return new Map([...document.querySelectorAll("#option-fields [data-option]")]
    .map((input) => [input.dataset.option, input]));
}
