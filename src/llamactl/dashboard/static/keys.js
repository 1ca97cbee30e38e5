// API keys, for admins: create (the key is shown once, never stored), list, revoke.
import { $, api, button, cell, toast } from "./api.js";

export async function loadKeys() {
  const { keys } = await api("GET", "/api/keys");
  $("#key-list tbody").replaceChildren(...keys.map((k) => {
    const tr = document.createElement("tr");
    tr.dataset.key = k.name;
    const expired = k.expires_at && Date.parse(k.expires_at) < Date.now();
    tr.append(cell(k.name), cell(k.prefix + "…"), cell(k.created_at),
      cell(k.expires_at ? k.expires_at + (expired ? " (expired)" : "") : "never"),
      cell(k.last_used_at || "never"), cell("", "actions"));
    tr.lastChild.append(button("Revoke", async () => {
      try { await api("DELETE", "/api/keys/" + encodeURIComponent(k.name)); } catch (e) { toast("error", e.message); }
      loadKeys();
    }));
    return tr;
  }));
}

async function createKey(ev) {
  ev.preventDefault();
  const form = ev.target;
  $("#key-error").textContent = "";
  try {
    const made = await api("POST", "/api/keys", { name: form.name.value });
    $("#new-key-value").textContent = made.key;  // never stored: gone on reload
    $("#new-key").hidden = false;
    form.reset();
  } catch (e) { $("#key-error").textContent = e.message + (e.doc.details ? ": " + e.doc.details : ""); }
  loadKeys();
}

export function initKeys() {
  $("#key-form").addEventListener("submit", createKey);
  $("#copy-key").addEventListener("click", () => navigator.clipboard?.writeText($("#new-key-value").textContent));
}
