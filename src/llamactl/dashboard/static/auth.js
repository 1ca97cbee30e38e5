// Sign in, sign out, and a token refreshed before it ends. The token lives in
// sessionStorage (never localStorage): gone with the tab.
import { $, api, state, whenUnauthorized } from "./api.js";

let refreshTimer = null;
let afterSignIn = async () => {};
let beforeSignOut = () => {};

export function initAuth(hooks) {
  afterSignIn = hooks.afterSignIn;
  beforeSignOut = hooks.beforeSignOut;
  whenUnauthorized(showSignIn);
  $("#signin-form").addEventListener("submit", signIn);
  $("#sign-out").addEventListener("click", showSignIn);
}

export function showSignIn() {
  beforeSignOut(); setToken(null);
  // Only the sign-in form: no view links, no dialog left open over it (enter() shows them).
  for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
  $("#app").hidden = true; $("#views").hidden = true; $("#signin").hidden = false;
  $("#who").hidden = true; $("#sign-out").hidden = true;
  $("#signin-form [name=username]").focus();
}

function setToken(token, expiresAt) {
  state.token = token;
  clearTimeout(refreshTimer);
  refreshTimer = null;
  if (token) {
    sessionStorage.setItem("llamactl.token", token);
    if (expiresAt) scheduleRefresh(expiresAt);
  } else sessionStorage.removeItem("llamactl.token");
}

/** When to ask for a new token: a minute before this one ends, or at 60 % of a short one. */
export function refreshDelay(msLeft) {
  return Math.max(1000, msLeft > 150000 ? msLeft - 60000 : msLeft * 0.6);
}

const RETRY_MS = 2000;

function scheduleRefresh(expiresAt, delay) {
  refreshTimer = setTimeout(async () => {
    const token = state.token;
    try { const t = await api("POST", "/api/auth/refresh"); setToken(t.token, t.expires_at); }
    catch (e) {
      // A 401 has shown the sign-in form. Anything else (the server restarting, the network
      // gone) is tried again while the token may still be good: it would end unrenewed.
      if (e.status !== 401 && state.token === token && Date.parse(expiresAt) > Date.now()) {
        scheduleRefresh(expiresAt, RETRY_MS);
      }
    }
  }, delay ?? refreshDelay(Date.parse(expiresAt) - Date.now()));
}

async function signIn(ev) {
  ev.preventDefault();
  const form = ev.target, err = $("#signin-error");
  err.textContent = "";
  try {
    const t = await api("POST", "/api/auth/login",
      { username: form.username.value, password: form.password.value });
    setToken(t.token, t.expires_at);
    form.password.value = "";
    await afterSignIn();
  } catch (e) {
    err.textContent = e.status === 401 ? "Wrong username or password." : e.message;
  }
}

/** After a reload the stored token's end is read from the token itself (its `exp`). */
export function resumeRefresh() {
  if (!state.token || refreshTimer) return;
  try {
    const claims = JSON.parse(atob(state.token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    if (claims.exp) scheduleRefresh(new Date(claims.exp * 1000).toISOString());
  } catch { /* not a JWT (an API key): nothing to refresh */ }
}
