// The Playground: a chat (or a raw completion, for base models) with an instance or a pool,
// streamed token by token through /v1 with the signed-in user's token (or a pasted inference
// key). The conversation stays in this tab (sessionStorage) and is sent nowhere else.
import { $, state } from "./api.js";

const STORE = "llamactl.playground";
const pg = { messages: JSON.parse(sessionStorage.getItem(STORE) || "[]"), abort: null };

function save() { sessionStorage.setItem(STORE, JSON.stringify(pg.messages)); }

function bubble(role, text) {
  const div = document.createElement("div");
  div.className = "msg msg-" + role;
  const who = document.createElement("strong");
  who.textContent = role === "user" ? "You" : role === "assistant" ? "Model" : "Prompt";
  const body = document.createElement("div");
  body.className = "msg-text"; body.textContent = text;
  div.append(who, body);
  $("#pg-log").append(div);
  return body;
}

function render() {
  $("#pg-log").replaceChildren();
  for (const m of pg.messages) bubble(m.role, m.content);
}

export async function loadPlayground() {
  const select = $("#pg-model");
  const chosen = select.value;
  let ids = [];
  try {
    const res = await fetch("/v1/models", { headers: authHeaders() });
    if (res.ok) ids = (await res.json()).data.map((m) => m.id);
  } catch { /* the instances below */ }
  for (const name of state.rows.keys()) if (!ids.includes(name)) ids.push(name);
  select.replaceChildren(...ids.sort().map((id) => new Option(id, id)));
  if (ids.includes(chosen)) select.value = chosen;
  render();
}

function authHeaders() {
  const key = $("#pg-form").key.value.trim() || state.token;
  return key ? { Authorization: "Bearer " + key } : {};
}

function requestFor(form, prompt) {
  const common = { model: form.model.value, stream: true, stream_options: { include_usage: true },
    temperature: Number(form.temperature.value), top_p: Number(form.top_p.value),
    max_tokens: Number(form.max_tokens.value) };
  if (form.mode.value === "completion") {
    return ["/v1/completions", { ...common, prompt: form.system.value + prompt }];
  }
  const system = form.system.value.trim() ? [{ role: "system", content: form.system.value }] : [];
  return ["/v1/chat/completions", { ...common, messages: [...system, ...pg.messages] }];
}

/** Reads the answer's server-sent events; each piece of text goes on screen as it comes. */
async function stream(res, onText) {
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "", usage = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return usage;
    buffer += value;
    const events = buffer.split("\n\n");
    buffer = events.pop();
    for (const ev of events) {
      const data = ev.split("\n").find((l) => l.startsWith("data: "))?.slice(6);
      if (!data || data === "[DONE]") continue;
      const chunk = JSON.parse(data);
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices?.[0];
      const text = choice?.delta?.content ?? choice?.text;
      if (text) onText(text);
    }
  }
}

async function send(ev) {
  ev.preventDefault();
  const form = ev.target, prompt = form.message.value;
  if (!prompt.trim() || pg.abort) return;
  pg.messages.push({ role: "user", content: prompt });
  bubble("user", prompt);
  form.message.value = "";
  const [path, body] = requestFor(form, prompt);
  const answer = { role: "assistant", content: "" };
  const shown = bubble("assistant", "");
  const t = { sent: performance.now(), first: null, pieces: 0 };
  pg.abort = new AbortController();
  $("#pg-stop").disabled = false; $("#pg-send").disabled = true;
  $("#pg-stats").textContent = "Waiting for the first token…";
  let usage = null;
  try {
    const res = await fetch(path, { method: "POST", signal: pg.abort.signal,
      headers: { ...authHeaders(), "Content-Type": "application/json" }, body: JSON.stringify(body) });
    if (!res.ok) throw new Error((await res.json().catch(() => ({}))).error?.message || "HTTP " + res.status);
    usage = await stream(res, (text) => {
      t.first ??= performance.now(); t.pieces++;
      answer.content += text; shown.textContent = answer.content;
    });
  } catch (e) {
    if (e.name !== "AbortError") shown.textContent = answer.content + " [" + e.message + "]";
  }
  finish(answer, t, usage);
}

function finish(answer, t, usage) {
  pg.abort = null;
  $("#pg-stop").disabled = true; $("#pg-send").disabled = false;
  pg.messages.push(answer);
  save();
  const tokens = usage?.completion_tokens ?? t.pieces;
  if (t.first === null) { $("#pg-stats").textContent = "No answer."; return; }
  const seconds = (performance.now() - t.first) / 1000;
  const rate = seconds > 0 && tokens > 1 ? ((tokens - 1) / seconds).toFixed(1) : "–";
  $("#pg-stats").textContent = tokens + " tokens · first token after " +
    Math.round(t.first - t.sent) + " ms · " + rate + " tokens/s";
}

export function initPlayground() {
  $("#pg-form").addEventListener("submit", send);
  $("#pg-stop").addEventListener("click", () => pg.abort?.abort());
  $("#pg-clear").addEventListener("click", () => { pg.messages = []; save(); render(); $("#pg-stats").textContent = ""; });
  $("#pg-message").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) $("#pg-form").requestSubmit();
  });
}
