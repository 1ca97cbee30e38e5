// The llamactl dashboard: plain JavaScript modules over the same /api as every client, no
// build step. No inline script (the page's CSP forbids it); data is written with textContent
// only, never as HTML. This module wires the others together.
import { $, api, may, state } from "./api.js";
import { initAuth, resumeRefresh, showSignIn } from "./auth.js";
import { startFeed, stopFeed } from "./feed.js";
import { initForm } from "./form.js";
import { initKeys, loadKeys } from "./keys.js";
import { initLogs, stopLogs } from "./logs.js";
import { renderOptionFields } from "./options.js";
import { loadSystem, startSystemRefresh, stopSystemRefresh, systemSoon } from "./system.js";
import { initTable, loadInstances, setStats, setStatus } from "./table.js";
import { activityRecord, initActivity, loadActivity } from "./activity.js";
import { initPlayground, loadPlayground } from "./playground.js";
import { initViews, loadAudit, onView } from "./views.js";
import { initModels, loadModels, pullProgress } from "./models.js";
import { initInstancePage, instanceActivity, instanceStats, instanceStatus, leaveInstancePage,
  loadInstancePage } from "./instance.js";

const feedHandlers = {
  status: (name, status) => { setStatus(name, status); instanceStatus(name, status); systemSoon(); },
  stats: (name, stats) => { setStats(name, stats); instanceStats(name, stats); },
  activity: (record) => { activityRecord(record); instanceActivity(record); },
  pull: pullProgress,
  unknown: () => { loadInstances(); systemSoon(); },
  reconnected: () => { loadInstances(); systemSoon(); } };

async function enter() {
  const me = await api("GET", "/api/auth/me");
  state.role = me.role;
  state.kind = me.kind;
  document.body.dataset.role = me.role;
  $("#signin").hidden = true; $("#app").hidden = false;
  if (me.kind !== "anonymous") {
    $("#who").textContent = me.username + " (" + me.role + ")";
    $("#who").hidden = false; $("#sign-out").hidden = false;
  }
  resumeRefresh();
  $("#new-instance").hidden = !may("operator");
  // The option table is for the form: fetched beside the table, never before it.
  const backends = api("GET", "/api/backends");
  for (const el of document.querySelectorAll(".admin-only")) el.hidden = !may("admin");
  initViews();
  await loadInstances();
  startFeed(feedHandlers);
  state.backends = (await backends).backends;
  renderOptionFields();
  startSystemRefresh();
}

function start() {
  $("#v1-url").textContent = location.origin + "/v1";
  $("#copy-v1").addEventListener("click", () => navigator.clipboard?.writeText(location.origin + "/v1"));
  initAuth({ afterSignIn: enter, beforeSignOut: () => { stopFeed(); stopLogs(); stopSystemRefresh(); } });
  initTable();
  initForm();
  initLogs();
  initKeys();
  onView("system", loadSystem);
  onView("keys", loadKeys);
  onView("audit", loadAudit);
  onView("models", loadModels);
  initModels();
  onView("playground", loadPlayground);
  initPlayground();
  onView("activity", loadActivity);
  onView("instance", loadInstancePage, leaveInstancePage);
  initInstancePage();
  initActivity();
  enter().catch(() => { if ($("#app").hidden) showSignIn(); });
}

// Module scripts run once the document is parsed.
start();
