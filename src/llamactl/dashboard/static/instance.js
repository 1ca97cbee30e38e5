// An instance's own page (#/instances/<name>[/<tab>]): its name, status and node as the
// heading, and tabs: Overview (facts and charts), Logs, Activity, Options, Pool (when in one).
// The Logs and Options tabs borrow the Instances view's log viewer and edit form (one of each
// on the page) and give them back when the page is left.
import { $, api, duration, may, state } from "./api.js";
import { rowFor as activityRow } from "./activity.js";
import { openEditor } from "./form.js";
import { openLogs, stopLogs } from "./logs.js";
import { memoryText, nodeText } from "./table.js";
import { hashParts } from "./views.js";

const TABS = ["overview", "logs", "activity", "options", "pool"];
const MAX_ACTIVITY_ROWS = 200;
const page = { name: null, inst: null, tab: null, charts: null };

const tabButton = (tab) => $("#tab-" + tab);
const visibleTabs = () => TABS.filter((tab) => !tabButton(tab).hidden);

/** The view's loader: the instance the URL names, on the tab it names. */
export async function loadInstancePage() {
  const [, name, tab] = hashParts();
  if (name !== page.name) leaveInstancePage();
  page.name = name;
  document.title = name + " · llamactl";
  $("#instance-name").textContent = name;
  let inst;
  try { inst = await api("GET", "/api/instances/" + encodeURIComponent(name)); }
  catch (e) { showMissing(e.status === 404 ? "No instance named " + name + "." : e.message); return; }
  if (page.name !== name) return;  // another page was opened meanwhile
  page.inst = inst;
  $("#instance-missing").hidden = true; $("#instance-body").hidden = false;
  showHeading(inst);
  tabButton("pool").hidden = !inst.pool;
  showFacts();
  selectTab(visibleTabs().includes(tab) ? tab : "overview", false);
}

function showMissing(text) {
  page.inst = null;
  $("#instance-status").replaceChildren(); $("#instance-node").textContent = "";
  $("#instance-missing").textContent = text;
  $("#instance-missing").hidden = false; $("#instance-body").hidden = true;
}

function showHeading(inst) {
  const badge = document.createElement("span");
  badge.className = "status status-" + inst.status;
  badge.textContent = inst.status;
  $("#instance-status").replaceChildren(badge);
  $("#instance-node").textContent = inst.node ? "node " + nodeText(inst.node) : "local node";
}

/** Overview's facts: what the table's row says, on one screen, plus why it failed. */
function showFacts() {
  const inst = page.inst, stats = inst.stats || {};
  const live = inst.status === "running";
  const facts = [["Model", inst.model_path], ["Backend", inst.backend], ["Port", inst.port],
    ["Uptime", live ? duration(stats.uptime) : ""], ["Memory", memoryText(live ? stats.memory_usage : 0, inst.memory_estimate)],
    ["CPU", live && stats.cpu_usage != null ? stats.cpu_usage.toFixed(1) + "%" : ""],
    ["Group", inst.group], ["Pool", inst.pool], ["Restarts", inst.restart_count ?? 0],
    ["Last error", inst.status === "failed" ? inst.last_error : ""]];
  $("#instance-facts").replaceChildren(...definitions(facts));
}

function definitions(pairs) {
  return pairs.filter(([, value]) => value !== "" && value != null).flatMap(([term, value]) => {
    const dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = term; dd.textContent = String(value);
    return [dt, dd];
  });
}

// ---- Tabs: role=tablist, arrows/Home/End move and select (automatic activation) -------------
function selectTab(tab, moveFocus) {
  page.tab = tab;
  for (const each of TABS) {
    const selected = each === tab;
    tabButton(each).setAttribute("aria-selected", String(selected));
    tabButton(each).tabIndex = selected ? 0 : -1;
    $("#panel-" + each).hidden = !selected;
  }
  if (moveFocus) tabButton(tab).focus();
  // The tab in the URL (reload keeps it), without a history entry per tab.
  const hash = "#/instances/" + encodeURIComponent(page.name) + (tab === "overview" ? "" : "/" + tab);
  if (location.hash !== hash) history.replaceState(null, "", hash);
  if (tab !== "logs") stopLogs();
  Promise.resolve(TAB_LOADERS[tab]()).catch(() => {});
}

function onTabKey(ev) {
  const tabs = visibleTabs(), at = tabs.indexOf(page.tab);
  const next = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: tabs.length - 1 }[ev.key];
  if (next === undefined) return;
  ev.preventDefault();
  selectTab(tabs[(next + tabs.length) % tabs.length], true);
}

const TAB_LOADERS = { overview: loadOverview, logs: showLogs, activity: loadActivity,
  options: showOptions, pool: loadPool };

// The charts' module (and uPlot with it) is fetched when an Overview first shows, not before.
async function loadOverview() {
  page.charts ||= await import("./charts.js");
  await page.charts.showCharts($("#instance-charts"), page.inst);
}

// ---- Logs and Options: the Instances view's log viewer and form, borrowed ------------------
function borrow(selector, panel) {
  const el = $(selector);
  if (el.parentElement !== $(panel)) $(panel).append(el);
  return el;
}

function giveBack() {
  const home = $('#app [data-view="instances"]');
  for (const id of ["#editor", "#logs"]) {
    const el = $(id);
    if (el.parentElement !== home) { el.hidden = true; home.append(el); }
  }
}

function showLogs() {
  borrow("#logs", "#panel-logs");
  openLogs(page.name);
}

function showOptions() {
  const inst = page.inst;
  const pairs = [["Model path", inst.model_path], ["Port", inst.port], ["Backend", inst.backend],
    ["Group", inst.group], ["Idle timeout (minutes)", inst.idle_timeout],
    ...Object.entries(inst.options || {}).map(([name, value]) =>
      [name, Array.isArray(value) ? value.join(", ") : value])];
  $("#instance-options").replaceChildren(...definitions(pairs));
  $("#instance-edit").hidden = !may("operator");
  if (may("operator")) editOptions();
}

async function editOptions() {
  // A reload straight onto this tab comes before the option fields exist (GET /api/backends):
  // the form opened then would read the options as cleared, and Save would send nulls.
  for (let waited = 0; !state.backends && waited < 100; waited++) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 0));  // main.js renders the fields right after
  borrow("#editor", "#panel-options");
  openEditor(page.inst);
}

// ---- Activity: this instance's requests, newest first, live ---------------------------------
async function loadActivity() {
  const query = new URLSearchParams({ instance: page.name, limit: "100" });
  const { items } = await api("GET", "/api/activity?" + query);
  $("#instance-activity tbody").replaceChildren(...items.map(activityRow));
  $("#instance-activity-empty").hidden = items.length > 0;
}

// ---- Pool: the members of the instance's pool, their load --------------------------------
async function loadPool() {
  const { pools } = await api("GET", "/api/pools");
  const pool = pools.find((p) => p.name === page.inst.pool);
  if (!pool) { $("#pool-summary").textContent = "Pool " + page.inst.pool + " is not configured."; return; }
  $("#pool-summary").textContent = "Pool " + pool.name + ": " + pool.members.length + " members, " +
    pool.min_running + " kept running, " + pool.waiting + " requests waiting";
  $("#pool-members tbody").replaceChildren(...pool.members.map(memberRow));
}

function memberRow(member) {
  const tr = document.createElement("tr");
  tr.setAttribute("role", "row");
  const link = document.createElement("a");
  link.href = "#/instances/" + encodeURIComponent(member.name);
  link.textContent = member.name;
  const badge = document.createElement("span");
  badge.className = "status status-" + member.status;
  badge.textContent = member.status + (member.sleeping ? " (asleep)" : "");
  for (const [i, content] of [link, badge, member.in_flight, member.slots, member.node ?? ""].entries()) {
    const td = document.createElement("td");
    td.setAttribute("role", "cell");
    td.append(content instanceof Node ? content : String(content));
    if (i === 4) td.classList.add("minor");
    tr.append(td);
  }
  return tr;
}

// ---- The feed: what the page shows live --------------------------------------------------
const showing = (name) => page.inst && page.name === name && !$('[data-view="instance"]').hidden;

export function instanceStatus(name, status) {
  if (!showing(name)) return;
  page.inst.status = status;
  showHeading(page.inst);
  showFacts();
}

export function instanceStats(name, stats) {
  if (!showing(name)) return;
  page.inst.stats = stats;
  if (page.tab === "overview") showFacts();
  page.charts?.statsSample(name, stats);
}

export function instanceActivity(record) {
  if (!showing(record.instance)) return;
  page.charts?.activitySample(record);
  if (page.tab !== "activity") return;
  const body = $("#instance-activity tbody");
  body.prepend(activityRow(record));
  while (body.childElementCount > MAX_ACTIVITY_ROWS) body.lastElementChild.remove();
  $("#instance-activity-empty").hidden = true;
}

/** Another view was shown: the borrowed parts go home, the log stops following. */
export function leaveInstancePage() {
  stopLogs();
  giveBack();
  page.charts?.stopCharts();
  page.name = null; page.inst = null;
}

export function initInstancePage() {
  $("#instance-tabs").addEventListener("keydown", onTabKey);
  for (const tab of TABS) tabButton(tab).addEventListener("click", () => selectTab(tab, false));
  $("#instance-edit").addEventListener("click", editOptions);
}
