// What the reader does: the message line (send, recall, Tab), the nick,
// join and password forms, the side panel's toggle.

import { $, COMMANDS, joinForm, joinInput, keyOf, MAX_LINE_BYTES, MAX_RECALL, nickForm, nickInput, passwordDialog, passwordError, passwordForm, passwordInput, pmKey, sayForm, sayInput, state } from "./page.js";
import { openView, renderRooms, show, view } from "./rooms.js";
import { addEntry, addTo, nickSpan, push, richText } from "./render.js";
import { askNotifications } from "./notify.js";
import { connect, send, sendLabelled, sendQuietly } from "./connection.js";
import { E2E_COMMAND, e2eInput, e2eWanted, markPlain } from "./app.js";

// ---- what the user does ------------------------------------------------

// Our own chat, `:me` or `:pm` line, shown as pending until its echo
// (matched by label) arrives, or refused with the server's error; a `:pm`
// (`parts.plain`) tagged readable by the server.
export function sendOwn(viewKey, wire, parts) {
  const label = sendLabelled(wire);
  if (label === null) return false;
  const item = addTo(viewKey, `${parts.kind} own pending`, parts.nodes);
  if (parts.plain) markPlain(item);
  if (label) state.pending.set(label, { view: viewKey, item });
  else item.classList.remove("pending");
  return true;
}

// A command typed as in IRC and most chats, `/word ...` (a letter, then
// letters, digits and `-`: `/me`, `/e2e-safety`), is `:word ...`;
// `//text` is chat starting with one `/`; anything else is as typed
// (`/usr/bin` is chat).
function slashCommand(line) {
  if (line.startsWith("//")) return line.slice(1);
  return /^\/[A-Za-z][A-Za-z0-9-]*( |$)/.test(line) ? `:${line.slice(1)}` : line;
}

// What the user typed, sent as the current conversation needs it.
export function submit(line) {
  const v = view(state.current);
  const me = state.nick ? nickSpan(state.nick) : "";
  let m;
  if (!line.startsWith(":") || line.startsWith("::")) {
    const text = line.startsWith("::") ? line.slice(1) : line;
    if (v.kind === "pm" && e2eWanted(v.name)) {
      // End to end was used with this person: never silently in the clear.
      e2eInput(`:e2e ${v.name} ${text}`);
      return true;
    }
    if (v.kind === "pm") {
      return sendOwn(v.key, `:pm ${v.name} ${text}`,
        { kind: "chat", plain: true, nodes: [me, " ", ...richText(text, true)] });
    }
    return sendOwn(v.key, line, { kind: "chat", nodes: [me, " ", ...richText(text, true)] });
  }
  if ((m = /^:me (.+)$/i.exec(line)) && v.kind === "room") {
    return sendOwn(v.key, line, { kind: "action", nodes: ["* ", me, " ", ...richText(m[1], true)] });
  }
  if ((m = /^:(?:pm|msg) (\S+) (.+)$/i.exec(line))) {
    openView(pmKey(m[1]), m[1], "pm");
    renderRooms();
    return sendOwn(pmKey(m[1]), line, { kind: "chat", plain: true, nodes: [me, " ", ...richText(m[2], true)] });
  }
  if ((m = /^:join (\S+)$/i.exec(line))) {
    const room = m[1].startsWith("#") ? m[1] : `#${m[1]}`;
    if (state.views.has(keyOf(room)) && state.serverRoom === keyOf(room)) {
      show(keyOf(room));
      return true;
    }
  }
  return sendLabelled(line) !== null;
}

sayForm.addEventListener("submit", (event) => {
  event.preventDefault();
  askNotifications();
  const typed = sayInput.value;
  if (state.left && !state.socket) {
    // After `:quit`, Enter comes back (what was typed stays in the input).
    state.retry = 0;
    connect();
    return;
  }
  if (!typed.trim()) return;
  if (typed.includes("\n")) return;
  // Before anything looks at it: `/e2e` is `:e2e` too.
  const line = slashCommand(typed);
  if (E2E_COMMAND.test(line)) {
    // Never sent as typed: it would carry the text in the clear.
    e2eInput(line.trim());
    if (state.recall[state.recall.length - 1] !== typed) state.recall.push(typed);
    state.recallAt = state.recall.length;
    sayInput.value = "";
    return;
  }
  // The server refuses a line over 4096 bytes; the label takes a few.
  const bytes = new TextEncoder().encode(line).length;
  if (bytes > MAX_LINE_BYTES) {
    addEntry("error", [`! not sent: ${bytes} bytes, the limit is ${MAX_LINE_BYTES} (shorten it or split it)`]);
    return;
  }
  if (submit(line)) {
    if (state.recall[state.recall.length - 1] !== typed) state.recall.push(typed);
    if (state.recall.length > MAX_RECALL) state.recall.shift();
    state.recallAt = state.recall.length;
    sayInput.value = "";
  }
});

// Tab completes a nick of the conversation or a command.
export function complete() {
  const value = sayInput.value;
  const end = sayInput.selectionStart ?? value.length;
  const start = value.lastIndexOf(" ", end - 1) + 1;
  const word = value.slice(start, end);
  if (!word) return false;
  const v = view(state.current);
  // A command begun with `/` (as in IRC) completes with `/`.
  const command = start === 0 && (word.startsWith(":") || word.startsWith("/"));
  const pool = command ? COMMANDS.map((c) => word[0] + c.slice(1)) : [...v.users, ...(v.kind === "pm" ? [v.name] : [])];
  const found = pool.filter((c) => c.toLowerCase().startsWith(word.toLowerCase()) && c !== state.nick);
  if (found.length !== 1) return found.length > 1;
  const suffix = start === 0 && !command ? ": " : " ";
  sayInput.value = value.slice(0, start) + found[0] + suffix + value.slice(end);
  const at = start + found[0].length + suffix.length;
  sayInput.setSelectionRange(at, at);
  return true;
}

sayInput.addEventListener("keydown", (event) => {
  if (event.key === "Tab" && !event.shiftKey && sayInput.value) {
    complete();
    event.preventDefault();
  } else if (event.key === "ArrowUp" && state.recallAt > 0) {
    state.recallAt -= 1;
    sayInput.value = state.recall[state.recallAt];
    event.preventDefault();
  } else if (event.key === "ArrowDown" && state.recallAt < state.recall.length) {
    state.recallAt += 1;
    sayInput.value = state.recall[state.recallAt] ?? "";
    event.preventDefault();
  }
});

nickForm.addEventListener("submit", (event) => {
  event.preventDefault();
  askNotifications();
  const nick = nickInput.value.trim();
  if (!nick || nick === state.nick) return;
  state.wantedNick = nick;
  sessionStorage.setItem("loopchat.nick", nick);
  state.nickLabel = sendLabelled(`:nick ${nick}`);
  sayInput.focus();
});

joinForm.addEventListener("submit", (event) => {
  event.preventDefault();
  askNotifications();
  const room = joinInput.value.trim();
  if (!room) return;
  submit(`:join ${room}`);
  joinInput.value = "";
  closeSide();
  sayInput.focus();
});

$("refresh-rooms").addEventListener("click", () => sendQuietly("rooms", ":rooms"));

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") show(state.current);
});
window.addEventListener("focus", () => show(state.current));

export const toggle = $("toggle-side");
export function closeSide() {
  document.querySelector(".app").classList.remove("side-open");
  toggle.setAttribute("aria-expanded", "false");
}
toggle.addEventListener("click", () => {
  const open = document.querySelector(".app").classList.toggle("side-open");
  toggle.setAttribute("aria-expanded", String(open));
});

export function askPassword(error) {
  passwordError.hidden = !error;
  passwordError.textContent = error || "";
  if (error === "too many attempts") return;
  passwordInput.value = "";
  if (!passwordDialog.open) passwordDialog.showModal();
  passwordInput.focus();
}

passwordForm.addEventListener("submit", () => {
  send(`:auth ${passwordInput.value}`);
  passwordInput.value = "";
});
