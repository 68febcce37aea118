// The log: text with nicks, mentions and safe links, entries with their
// times and day dividers.

import { log, MAX_VIEW, state } from "./page.js";
import { renderRooms, serverView, view } from "./rooms.js";
import { notify, updateTitle } from "./notify.js";

// ---- text: nicks, mentions and links -----------------------------------

export function hue(nick) {
  let h = 0;
  for (const c of nick.toLowerCase()) h = (h * 31 + c.codePointAt(0)) % 360;
  return h;
}

export function nickSpan(nick) {
  const span = document.createElement("span");
  span.className = "nick";
  span.textContent = nick;
  span.style.setProperty("--hue", String(hue(nick)));
  if (nick === state.nick) span.classList.add("self");
  return span;
}

export function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

export function mentions(text) {
  if (!state.nick) return false;
  return new RegExp(`(^|[^A-Za-z0-9_-])${escapeRegExp(state.nick)}(?![A-Za-z0-9_-])`, "i").test(text);
}

// Only http and https addresses become anchors; anything else stays text.
export function safeUrl(text) {
  try {
    const url = new URL(text);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

// `text` as nodes: links as anchors, the reader's nick marked.
export function richText(text, own = false) {
  const nodes = [];
  const linkRe = /https?:\/\/[^\s<>"]+/gi;
  let at = 0;
  let m;
  while ((m = linkRe.exec(text))) {
    let raw = m[0].replace(/[.,;:!?)\]'}]+$/, "");
    const href = safeUrl(raw);
    if (!href) continue;
    nodes.push(...(own ? [text.slice(at, m.index)] : marked(text.slice(at, m.index))));
    const a = document.createElement("a");
    a.href = href;
    a.textContent = raw;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    nodes.push(a);
    at = m.index + raw.length;
    linkRe.lastIndex = at;
  }
  nodes.push(...(own ? [text.slice(at)] : marked(text.slice(at))));
  return nodes.filter((n) => n !== "");
}

export function marked(text) {
  if (!text) return [];
  if (!state.nick || !mentions(text)) return [text];
  const re = new RegExp(`(^|[^A-Za-z0-9_-])(${escapeRegExp(state.nick)})(?![A-Za-z0-9_-])`, "gi");
  const nodes = [];
  let at = 0;
  let m;
  while ((m = re.exec(text))) {
    const start = m.index + m[1].length;
    nodes.push(text.slice(at, start));
    const mark = document.createElement("mark");
    mark.textContent = m[2];
    nodes.push(mark);
    at = start + m[2].length;
  }
  nodes.push(text.slice(at));
  return nodes.filter((n) => n !== "");
}

// ---- the log -----------------------------------------------------------

export function timeText(date) {
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
}

export function dayText(date) {
  return date.toLocaleDateString([], { weekday: "long", year: "numeric", month: "long", day: "numeric" });
}

export function push(v, item) {
  v.items.push(item);
  if (v.items.length > MAX_VIEW) {
    const old = v.items.shift();
    old.remove();
  }
  if (state.current === v.key || (v === serverView && view(state.current) === serverView)) {
    const nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 60;
    log.append(item);
    if (nearBottom || item.classList.contains("own")) log.scrollTop = log.scrollHeight;
  }
}

// Adds one entry to conversation `key` (null: the one shown). `parts` are
// strings (text) or elements. `opts`: when (a Date), count (an unread
// line), mention (mentions the reader).
export function addTo(key, kind, parts, opts = {}) {
  const v = view(key);
  const date = opts.when || new Date();
  const day = date.toDateString();
  if (v.lastDay !== day) {
    if (v.lastDay !== null || v.kind !== "server") {
      const divider = document.createElement("li");
      divider.className = "divider day";
      divider.textContent = dayText(date);
      push(v, divider);
    }
    v.lastDay = day;
  }
  const item = document.createElement("li");
  item.className = kind;
  if (opts.mention) item.classList.add("mention");
  const time = document.createElement("time");
  time.dateTime = date.toISOString();
  time.textContent = timeText(date);
  const body = document.createElement("span");
  body.className = "body";
  for (const part of parts) {
    body.append(typeof part === "string" ? document.createTextNode(part) : part);
  }
  item.append(time, body);
  push(v, item);
  if (opts.count) {
    const away = document.visibilityState !== "visible" || !document.hasFocus();
    if (state.current !== v.key || away) {
      v.unread += 1;
      if (opts.mention || v.kind === "pm") v.mention = true;
      renderRooms();
      updateTitle();
    }
    if ((opts.mention || v.kind === "pm") && away) notify(v, parts);
  }
  return item;
}

export function addEntry(kind, parts, when) {
  return addTo(null, kind, parts, { when });
}

export function addDivider(key, text) {
  const item = document.createElement("li");
  item.className = "divider";
  item.textContent = text;
  push(view(key), item);
}

export function chatParts(line) {
  const colon = line.indexOf(": ");
  if (colon > 0) return { nick: line.slice(0, colon), text: line.slice(colon + 2) };
  return { nick: null, text: line };
}
