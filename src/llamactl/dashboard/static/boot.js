// The first view's two requests (who is signed in, the instances), sent the moment this
// small module arrives: it is loaded `async`, first in the page, and imports nothing, so
// they go out while the other modules are still on their way, instead of one after the other
// once every module is in (bench/dashboard.py; tests/dashboard/test_first_load.py).
// api.js takes each answer once, for the token it was asked with. Sent without a token too
// (auth off: the anonymous user needs them at once); where auth is on, a tab not signed in
// spends two small 401s, never taken (the token after signing in is another).
const token = sessionStorage.getItem("llamactl.token");
const early = new Map();
for (const path of ["/api/auth/me", "/api/instances"]) {
  const answer = fetch(path, { headers: token ? { Authorization: "Bearer " + token } : {} });
  answer.catch(() => {});  // a network error is api()'s to report, when it takes this one
  early.set(path, answer);
}

/** The answer already asked for `path` with `withToken`, once; else undefined. */
export function takeEarly(path, withToken) {
  const answer = early.get(path);
  early.delete(path);
  return withToken === token ? answer : undefined;
}
