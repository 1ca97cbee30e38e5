// Navigation: each view has its own URL (#/instances, #/activity ...), so reload and Back
// keep the place. A view's loader runs each time it is shown (its data may have changed).
import { $, api, may, state } from "./api.js";

const VIEWS = ["instances", "instance", "activity", "playground", "models", "system", "keys", "audit"];
const ADMIN_ONLY = new Set(["keys", "audit"]);
const TITLES = { instances: "Instances", instance: "Instance", activity: "Activity", playground: "Playground",
  models: "Models", system: "System", keys: "Keys", audit: "Audit" };
const loaders = {}, leavers = {};
let shown = null;

/** What to run when a view is shown: loader() (may be async); leave(): when another is. */
export function onView(name, loader, leave) { loaders[name] = loader; if (leave) leavers[name] = leave; }

/** The hash's parts: "#/instances/qwen/logs" is ["instances", "qwen", "logs"]. */
export function hashParts() {
  return location.hash.replace(/^#\/?/, "").split("/").map((part) => decodeURIComponent(part));
}

function allowed(name) {
  return VIEWS.includes(name) && (!ADMIN_ONLY.has(name) || (may("admin") && state.kind !== "anonymous"));
}

export function currentView() {
  const [name, instance] = hashParts();
  if (name === "instances" && instance) return "instance";  // an instance's own page
  return allowed(name) ? name : "instances";
}

/** Show the view the URL names; moveFocus: a link was followed (not a first load). */
export function showView(moveFocus) {
  const name = currentView();
  for (const el of document.querySelectorAll("#app [data-view]")) el.hidden = el.dataset.view !== name;
  for (const a of document.querySelectorAll("#views a")) {
    if (a.dataset.view === name.replace(/^instance$/, "instances")) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
    a.hidden = !allowed(a.dataset.view);
  }
  document.title = TITLES[name] + " · llamactl";
  if (moveFocus) document.querySelector('#app [data-view="' + name + '"] h2')?.focus();
  if (shown !== name) leavers[shown]?.();
  shown = name;
  Promise.resolve(loaders[name]?.()).catch(() => {});
}

let listening = false;
export function initViews() {
  $("#views").hidden = false;
  if (!listening) window.addEventListener("hashchange", () => showView(true));
  listening = true;
  showView(false);
}

// ---- The audit log ---------------------------------------------------------------------------
export async function loadAudit() {
  const { items } = await api("GET", "/api/audit?limit=100");
  $("#audit-list tbody").replaceChildren(...items.map((r) => {
    const tr = document.createElement("tr");
    tr.setAttribute("role", "row");
    for (const text of [r.time, (r.principal.name || r.principal.kind), r.action, r.target ?? "", String(r.status)]) {
      const td = document.createElement("td");
      td.setAttribute("role", "cell"); td.textContent = text; tr.append(td);
    }
    return tr;
  }));
}
