// System's Pools (GET /api/pools, issue 32): each replica pool, its members (status, requests
// in flight of its slots, asleep, node) and the requests waiting for a free slot.
import { $, labelledCell } from "./api.js";

function memberRow(m) {
  const tr = document.createElement("tr");
  tr.setAttribute("role", "row");
  tr.dataset.member = m.name;
  const state = labelledCell("", "Status");
  const badge = document.createElement("span");
  badge.className = "status status-" + m.status;
  badge.textContent = m.status;
  state.append(badge);
  tr.append(labelledCell(m.name, null, "member-name"), state,
    labelledCell(m.in_flight + " of " + m.slots, "In flight"),
    labelledCell(m.sleeping ? "asleep" : "awake", "Sleeping"), labelledCell(m.node || "local", "Node"));
  return tr;
}

function poolCard(pool) {
  const card = document.createElement("section");
  card.className = "pool-card";
  card.dataset.pool = pool.name;
  card.setAttribute("aria-label", "Pool " + pool.name);
  const title = document.createElement("h4");
  title.textContent = pool.name;
  const running = pool.members.filter((m) => m.status === "running").length;
  const facts = document.createElement("p");
  facts.className = "pool-facts";
  facts.textContent = running + " of " + pool.members.length + " running · at least " + pool.min_running +
    " kept running · " + pool.waiting + (pool.waiting === 1 ? " request" : " requests") + " waiting";
  if (pool.waiting) facts.classList.add("waiting");
  const table = document.createElement("table");
  table.className = "cards labelled";
  table.setAttribute("role", "table");
  const head = document.createElement("thead");
  head.setAttribute("role", "rowgroup");
  const hr = document.createElement("tr");
  hr.setAttribute("role", "row");
  for (const text of ["Member", "Status", "In flight", "Sleeping", "Node"]) {
    const th = document.createElement("th");
    th.scope = "col"; th.setAttribute("role", "columnheader"); th.textContent = text;
    hr.append(th);
  }
  head.append(hr);
  const body = document.createElement("tbody");
  body.setAttribute("role", "rowgroup");
  body.append(...pool.members.map(memberRow));
  table.append(head, body);
  card.append(title, facts, table);
  return card;
}

/** pools: GET /api/pools' list; the section is hidden when there is none. */
export function renderPools(pools) {
  $("#pools").hidden = !pools.length;
  $("#pool-list").replaceChildren(...pools.map(poolCard));
}
