// The live feed: /api/ws, no polling. A dropped feed reconnects with backoff (1, 2, 4 ...
// 30 s), says so on the page, and reloads the list once back (what changed meanwhile).
import { $, state, toast } from "./api.js";

const feed = { ws: null, retries: 0, timer: null, handlers: null };

/** handlers: {status(name, status), stats(name, stats), unknown(name), reconnected()} */
export function startFeed(handlers) {
  feed.handlers = handlers || feed.handlers;
  closeSocket();
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const query = state.token ? "?token=" + encodeURIComponent(state.token) : "";
  const ws = new WebSocket(scheme + "//" + location.host + "/api/ws" + query);
  feed.ws = ws;
  ws.onopen = () => {
    if (feed.retries > 0) feed.handlers.reconnected();
    feed.retries = 0; feedState("");
  };
  ws.onmessage = (m) => onEvent(JSON.parse(m.data));
  ws.onclose = () => {
    if (feed.ws !== ws) return;
    const wait = Math.min(30, 2 ** feed.retries++);
    feedState("Live updates lost: reconnecting in " + wait + " s…");
    feed.timer = setTimeout(() => startFeed(), wait * 1000);
  };
}

function closeSocket() {
  clearTimeout(feed.timer);
  const ws = feed.ws;
  feed.ws = null;
  if (ws) ws.close();
}

/** Signed out: no feed, and nothing to say about one. */
export function stopFeed() {
  closeSocket();
  feed.retries = 0;
  feedState("");
}

function feedState(text) { $("#feed-state").textContent = text; $("#feed-state").hidden = !text; }

function onEvent(ev) {
  const d = ev.data || {};
  const on = feed.handlers;
  if (ev.type === "instance_status_changed") {
    if (!state.rows.has(d.name)) { on.unknown(d.name); return; }
    on.status(d.name, d.status);
    if (d.status === "stopped" || d.status === "failed") on.stats(d.name, { uptime: 0, memory_usage: 0, cpu_usage: null });
  } else if (ev.type === "instance_stats_updated") {
    on.stats(d.name, d.stats);
  } else if (ev.type === "request_completed") {
    on.activity?.(d);
  } else if (ev.type === "model_pull_progress") {
    on.pull?.(d);
  } else if (ev.type === "system_alert") {
    toast(d.level, (d.instance ? d.instance + ": " : "") + d.message);
  } else if (ev.type === "ping") {
    feed.ws?.send(JSON.stringify({ type: "pong" }));
  }
}
