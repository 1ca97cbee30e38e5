// A row's actions behind one button named "Actions" (narrow screens): a role=menu of
// role=menuitem entries, opened by click, Enter or Space; arrows move, Escape closes.
let open = null;  // {button, menu}

function close(refocus) {
  if (!open) return;
  const { button, menu } = open;
  open = null;
  menu.hidden = true;
  button.setAttribute("aria-expanded", "false");
  if (refocus) button.focus();
}

function items(menu) { return [...menu.querySelectorAll('[role="menuitem"]:not([aria-disabled="true"])')]; }

function onKey(ev) {
  const menu = ev.currentTarget, list = items(menu);
  const at = list.indexOf(document.activeElement);
  if (ev.key === "Escape") { close(true); ev.preventDefault(); }
  else if (ev.key === "ArrowDown") { list[(at + 1) % list.length]?.focus(); ev.preventDefault(); }
  else if (ev.key === "ArrowUp") { list[(at - 1 + list.length) % list.length]?.focus(); ev.preventDefault(); }
  else if (ev.key === "Tab") close(false);
}

/** entries: [{label, run, danger}]; returns the element holding the button and its menu. */
export function actionsMenu(entries) {
  const wrap = document.createElement("div");
  wrap.className = "menu-wrap";
  const button = document.createElement("button");
  button.type = "button"; button.textContent = "Actions";
  button.setAttribute("aria-haspopup", "menu"); button.setAttribute("aria-expanded", "false");
  const menu = document.createElement("div");
  menu.setAttribute("role", "menu"); menu.hidden = true; menu.className = "menu";
  for (const entry of entries) {
    const item = document.createElement("button");
    item.type = "button"; item.setAttribute("role", "menuitem"); item.tabIndex = -1;
    item.textContent = entry.label;
    if (entry.danger) item.classList.add("danger-text");
    item.addEventListener("click", (ev) => {
      if (item.getAttribute("aria-disabled") === "true") return;
      close(false); entry.run(ev, button);
    });
    menu.append(item);
  }
  button.addEventListener("click", () => {
    const wasOpen = open?.menu === menu;
    close(false);
    if (wasOpen) return;
    menu.hidden = false; button.setAttribute("aria-expanded", "true");
    open = { button, menu };
    items(menu)[0]?.focus();
  });
  menu.addEventListener("keydown", onKey);
  wrap.append(button, menu);
  return wrap;
}

document.addEventListener("click", (ev) => {
  if (open && !open.button.parentElement.contains(ev.target)) close(false);
});
