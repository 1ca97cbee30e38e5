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

function formatLine(l) { return l.timestamp + " " + l.level.padEnd(5) + " " + l.message + "\n"; }

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
      const lines = events.filter((e) => e.startsWith("data: ")).map((e) => formatLine(JSON.parse(e.slice(6))));
      if (lines.length) appendLog(lines.join(""));
    }
  } catch (e) { if (e.name !== "AbortError") pre.append("\n[log stream ended: " + e.message + "]"); }
}

function appendLog(text) {
  // One text node per batch; the oldest batches go past MAX_LOG_LINES.
  const pre = $("#log-lines");
  if (logs.paused) { (logs.held ||= []).push(text); return; }
  const stick = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  pre.append(text);
  while (pre.childNodes.length > 1 && countLines(pre) > MAX_LOG_LINES) pre.firstChild.remove();
  if (stick) pre.scrollTop = pre.scrollHeight;
}

function countLines(pre) {
  let n = 0;
  for (const node of pre.childNodes) n += (node.textContent.match(/\n/g) || []).length;
  return n;
}

function togglePause() {
  logs.paused = !logs.paused;
  $("#log-pause").setAttribute("aria-pressed", String(logs.paused));
  $("#log-pause").textContent = logs.paused ? "Resume" : "Pause";
  if (!logs.paused && logs.held) { const held = logs.held; logs.held = null; appendLog(held.join("")); }
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
  $("#log-pause").addEventListener("click", togglePause);
  $("#log-copy").addEventListener("click", () => navigator.clipboard?.writeText($("#log-lines").textContent));
  $("#log-download").addEventListener("click", downloadLog);
  $("#log-close").addEventListener("click", closeLogs);
}
