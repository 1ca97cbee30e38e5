// The one way the page talks to llamactl: the same /api as every client, with the signed-in
// user's token. Shared state and small DOM helpers live here too.
import { takeEarly } from "./boot.js";

export const $ = (sel) => document.querySelector(sel);
const RANK = { viewer: 0, operator: 1, admin: 2 };

export const state = { token: sessionStorage.getItem("llamactl.token"), role: null,
  rows: new Map(), backends: null, editing: null };

let onUnauthorized = () => {};
/** What a 401 does (auth.js: back to the sign-in form). */
export function whenUnauthorized(handler) { onUnauthorized = handler; }

export class ApiError extends Error {
  constructor(status, doc) { super(doc.error || ("HTTP " + status)); this.status = status; this.doc = doc; }
}

export async function api(method, path, body) {
  const headers = {};
  if (state.token) headers.Authorization = "Bearer " + state.token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const started = method === "GET" ? takeEarly(path, state.token) : undefined;
  const res = await (started ?? fetch(path, { method, headers,
    body: body === undefined ? undefined : JSON.stringify(body) }));
  if (res.status === 401 && path !== "/api/auth/login") { onUnauthorized(); throw new ApiError(res.status, {}); }
  const data = res.headers.get("content-type")?.includes("json") ? await res.json() : null;
  if (!res.ok) throw new ApiError(res.status, data || {});
  return data;
}

export const may = (role) => RANK[state.role] >= RANK[role];

export function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text ?? "";
  if (cls) td.className = cls;
  return td;
}
/** A cell of a table read as role=table, labelled for its phone card (data-label). */
export function labelledCell(text, label, cls) {
  const td = cell(text, cls);
  td.setAttribute("role", "cell");
  if (label) td.dataset.label = label;
  return td;
}
export function button(label, onClick) {
  const b = document.createElement("button");
  b.type = "button"; b.textContent = label;
  b.addEventListener("click", onClick);
  return b;
}
export function duration(s) {
  if (!s) return "";
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h ? h + "h " + m + "m" : m ? m + "m " + (s % 60) + "s" : s + "s";
}
export function bytes(n) {
  if (!n) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return n.toFixed(i ? 1 : 0) + " " + units[i];
}
export function toast(level, text) {
  const div = document.createElement("div");
  div.className = "toast " + level;
  div.setAttribute("role", level === "error" ? "alert" : "status");
  div.textContent = text;
  $("#toasts").append(div);
  setTimeout(() => div.remove(), 8000);
}
