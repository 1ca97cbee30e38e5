// An instance's log, following live (logs?follow=true, SSE read through fetch so the token
// goes in a header). Past MAX_LOG_LINES the oldest go, so it stays fast.
import { $, state } from "./api.js";

const MAX_LOG_LINES = 10000;
const logs = { name: null, abort: null, paused: false, held: null };

export function openLogs(name) {
  logs.name = name;
  $("#logs-title").textContent = "Logs: " + name;
  $("#logs").hidden = false;
  $("#log-lines").textContent = "";
  followLogs();
}

function closeLogs() { logs.abort?.abort(); $("#logs").hidden = true; }

/** One line as a span coloured by its level (app.css: .log-warn, .log-error, ...). */
function lineElement(l) {
  const span = document.createElement("span");
  span.className = "log-" + l.level;
  span.textContent = l.timestamp + " " + l.level.padEnd(5) + " " + l.message + "\n";
  return span;
}

async function followLogs() {
  logs.abort?.abort();
  const abort = new AbortController();
  logs.abort = abort;
  const pre = $("#log-lines");
  pre.textContent = "";
  const url = "/api/instances/" + encodeURIComponent(logs.name) +
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
      const lines = events.filter((e) => e.startsWith("data: ")).map((e) => lineElement(JSON.parse(e.slice(6))));
      if (lines.length) appendLog(lines);
    }
  } catch (e) { if (e.name !== "AbortError") pre.append("\n[log stream ended: " + e.message + "]"); }
}

/** The search box: lines without its text (any case) are hidden, not dropped. */
function searchHides(span) {
  const query = $("#log-search").value.trim().toLowerCase();
  span.hidden = query !== "" && !span.textContent.toLowerCase().includes(query);
}

function searchLog() { for (const span of $("#log-lines").children) searchHides(span); }

function appendLog(lines) {
  // One span per line, appended a batch at a time; the oldest go past MAX_LOG_LINES.
  const pre = $("#log-lines");
  if (logs.paused) { (logs.held ||= []).push(...lines); return; }
  lines.forEach(searchHides);
  const stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  pre.append(...lines);
  let extra = pre.childElementCount - MAX_LOG_LINES;
  while (extra-- > 0) pre.firstElementChild.remove();
  if (stick) pre.scrollTop = pre.scrollHeight;
}

function togglePause() {
  logs.paused = !logs.paused;
  $("#log-pause").setAttribute("aria-pressed", String(logs.paused));
  $("#log-pause").textContent = logs.paused ? "Resume" : "Pause";
  if (!logs.paused && logs.held) { const held = logs.held; logs.held = null; appendLog(held); }
}

function downloadLog() {
  const blob = new Blob([$("#log-lines").textContent], { type: "text/plain" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob); a.download = logs.name + ".log";
  a.click(); URL.revokeObjectURL(a.href);
}

export function stopLogs() { logs.abort?.abort(); }

export function initLogs() {
  $("#log-level").addEventListener("change", followLogs);
  $("#log-search").addEventListener("input", searchLog);
  $("#log-pause").addEventListener("click", togglePause);
  $("#log-copy").addEventListener("click", () => navigator.clipboard?.writeText($("#log-lines").textContent));
  $("#log-download").addEventListener("click", downloadLog);
  $("#log-close").addEventListener("click", closeLogs);
}
