// A row's actions behind one button named "Actions" (narrow screens): a role=menu of
// role=menuitem entries, opened by click, Enter or Space; arrows move, Escape closes.
// The menus carry no listeners of their own: the table holding them passes its clicks and
// keys to onMenuClick and onMenuKey (one listener for a hundred rows, and rows that are
// copies of one built row: bench/dashboard.py's first load).
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

/** A key pressed inside a table of menus: arrows move, Escape closes, Tab leaves. */
export function onMenuKey(ev) {
  const menu = ev.target.closest?.('[role="menu"]');
  if (!menu) return;
  const list = items(menu);
  const at = list.indexOf(document.activeElement);
  if (ev.key === "Escape") { close(true); ev.preventDefault(); }
  else if (ev.key === "ArrowDown") { list[(at + 1) % list.length]?.focus(); ev.preventDefault(); }
  else if (ev.key === "ArrowUp") { list[(at - 1 + list.length) % list.length]?.focus(); ev.preventDefault(); }
  else if (ev.key === "Tab") close(false);
}

/** A click inside a table of menus: an entry runs run(label, ev, the menu's button); the
 * menu's button opens or closes it. True when the click was a menu's. */
export function onMenuClick(ev, run) {
  const item = ev.target.closest?.('[role="menuitem"]');
  if (item) {
    if (item.getAttribute("aria-disabled") === "true") return true;
    const button = item.closest(".menu-wrap").querySelector('[aria-haspopup="menu"]');
    close(false); run(item.dataset.action, ev, button);
    return true;
  }
  const button = ev.target.closest?.('button[aria-haspopup="menu"]');
  if (!button) return false;
  const menu = button.nextElementSibling, wasOpen = open?.menu === menu;
  close(false);
  if (wasOpen) return true;
  menu.hidden = false; button.setAttribute("aria-expanded", "true");
  open = { button, menu };
  items(menu)[0]?.focus();
  return true;
}

/** entries: [{label, danger}]; returns the element holding the button and its menu. */
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
    item.textContent = entry.label; item.dataset.action = entry.label;
    if (entry.danger) item.classList.add("danger-text");
    menu.append(item);
  }
  wrap.append(button, menu);
  return wrap;
}

document.addEventListener("click", (ev) => {
  if (open && !open.button.parentElement.contains(ev.target)) close(false);
});
