// The unread count in the title, and desktop notifications for mentions
// and private lines while the page is not looked at.

import { state } from "./page.js";
import { select, serverView, view } from "./rooms.js";
import { mentions, push } from "./render.js";

export function updateTitle() {
  let unread = 0;
  for (const v of state.views.values()) unread += v.unread;
  const name = view(state.current) === serverView ? "no room" : view(state.current).name;
  document.title = `${unread ? `(${unread}) ` : ""}${name} · loopchat`;
}

// A desktop notification for a mention or a private line while the page
// is hidden or not focused (only with the reader's permission).
export function notify(v, parts) {
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  const body = parts.map((p) => (typeof p === "string" ? p : p.textContent)).join("");
  const title = v.kind === "pm" ? `${v.name} (private)` : `${v.name} · loopchat`;
  try {
    const note = new Notification(title, { body, tag: v.key });
    note.addEventListener("click", () => {
      window.focus();
      select(v.key);
    });
    window.__loopchatNotifications.push({ title, body });
  } catch (error) {
    window.__loopchatNotifications.push({ title, body, error: String(error) });
  }
}

// The permission prompt comes only after something the reader did.
export function askNotifications() {
  if ("Notification" in window && Notification.permission === "default") {
    Notification.requestPermission().catch(() => {});
  }
}

// A delivered chat line `NICK: TEXT`.
