// loopchat's browser client: one WebSocket, one text message per protocol
// line, with protocol 1.2's tags turned on at connect. Every line is placed
// in its conversation (a room, by its `room` tag, or a private one) and the
// log shows the current conversation only. Every piece of text from the
// server is inserted with textContent, never as HTML; links become anchors
// only for http and https. docs/web.md describes the page.
//
// The page's parts are ES modules: page.js (elements, state), rooms.js
// (conversations, side panel), render.js (the log), notify.js (title,
// notifications), connection.js (WebSocket, protocol), accounts.js,
// input.js; this one holds the end-to-end messages (web/e2e.js does the
// cryptography) and starts the page.

import { pmKey, roomName, sayInput, state } from "./page.js";
import { openView, renderRooms, show } from "./rooms.js";
import { addEntry, addTo, nickSpan } from "./render.js";
import { notify } from "./notify.js";
import { connect, send } from "./connection.js";
import { renderAccount } from "./accounts.js";

// ---- end-to-end messages (web/e2e.js, docs/e2e.md) ---------------------
// `:e2e NICK TEXT` is encrypted, never sent as typed; `[e2e] NICK: PAYLOAD`
// lines are decrypted. `:e2e-safety`, `:e2e-verify`, `:e2e-accept NICK`
// and `:key` (publish this device's key) as in the terminal client.
// End-to-end messages (both ways) go in the private conversation with the
// peer; notes about a conversation show where the reader is, so a warning
// is never hidden in another one.

export const E2E_COMMAND = /^:(e2e|e2e-safety|e2e-verify|e2e-accept)(?:\s|$)|^:key\s*$/i;
// The server's name in every handshake's prologue: the line protocol does
// not tell it, and `loopchat` is the server's default (docs/e2e.md).
export const E2E_SERVER = "loopchat";
// `waiting`: peer -> our own message entries not yet encrypted (their
// handshake runs), oldest first.
export const e2e = {
  device: null, pins: null, me: null, conversations: new Map(), asked: new Set(), waiting: new Map(),
};

export function e2eNote(text, warning) {
  addEntry(warning ? "error" : "info", [`${warning ? "!" : "*"} e2e: ${text}`]);
}

// This device's key pair; null (and a note saying why) where end-to-end
// encryption is unavailable.
export async function e2eDevice() {
  const E = window.LoopchatE2E;
  const available = E ? await E.availability : { ok: false, why: "e2e.js did not load" };
  if (!available.ok) {
    e2eNote(`unavailable: ${available.why} (nothing was sent)`, true);
    return null;
  }
  if (!e2e.device) e2e.device = E.loadOrCreateDeviceKey();
  return e2e.device;
}

// The conversation with `peer`, or null where unavailable.
export async function e2eConversation(peer) {
  const E = window.LoopchatE2E;
  const device = await e2eDevice();
  if (!device) return null;
  e2ePins();
  if (e2e.me !== state.nick) {
    // Sessions are bound to names: a rename starts them again.
    e2e.me = state.nick;
    e2e.conversations.clear();
    e2e.waiting.clear();
  }
  const id = peer.toLowerCase();
  if (!e2e.conversations.has(id)) {
    e2e.conversations.set(id, new E.Conversation(E2E_SERVER, state.nick, peer, device, e2e.pins));
  }
  return e2e.conversations.get(id);
}

// The peers' accepted keys (localStorage), or null without web/e2e.js.
function e2ePins() {
  if (!e2e.pins && window.LoopchatE2E) e2e.pins = new window.LoopchatE2E.Pins("loopchat.e2e.pins");
  return e2e.pins;
}

// ---- what the reader sees of it: locks and plain marks -----------------

// What the private conversation with `peer` is now: "secure" or "verified"
// (a session is up, its key accepted), "changed" (the key changed: nothing
// is sent until accepted), "pending" (end to end was used with `peer`, or
// a key is pinned, but no session is up yet) or "plain" (what is typed
// goes as a plain `:pm`, which the server can read).
export function e2eLock(peer) {
  const conversation = e2e.me === state.nick ? e2e.conversations.get(peer.toLowerCase()) : null;
  if (conversation && (conversation.state.kind !== "idle" || conversation.queued.length)) {
    if (conversation.unaccepted) return "changed";
    if (!conversation.isSecure()) return "pending";
    const check = conversation.pins.check(E2E_SERVER, peer, conversation.peerKey());
    return check.verified ? "verified" : "secure";
  }
  const pins = e2ePins();
  return pins && pins.has(E2E_SERVER, peer) ? "pending" : "plain";
}

// Per lock: the list's mark, the header's words, the explanation.
const LOCKS = {
  secure: ["🔒", "🔒 end-to-end encrypted", "only you and PEER can read this conversation"],
  verified: ["🔒✓", "🔒✓ end-to-end encrypted, verified",
    "only you and PEER can read this conversation; PEER's key is verified (safety numbers compared)"],
  changed: ["⚠", "⚠ PEER's key changed: nothing is sent until you accept it",
    "compare safety numbers (:e2e-safety PEER), then :e2e-accept PEER"],
  pending: ["🔒…", "🔒… end-to-end, no session yet",
    "what you type goes encrypted once the session with PEER is up, never in the clear"],
  plain: ["", "not end-to-end: the server can read these messages",
    "PEER has no end-to-end session with you: private messages go as plain :pm, which the server "
    + "(and whoever runs it) can read; :e2e PEER TEXT sends one end to end"],
};

// The mark of the conversation with `peer`: a span, or null where none is
// shown (in the list, only a session or a changed key is marked; in the
// header, every state is said in words).
export function e2eMark(peer, inList) {
  const lock = e2eLock(peer);
  if (inList && (lock === "pending" || lock === "plain")) return null;
  const [short, long, why] = LOCKS[lock];
  const mark = document.createElement("span");
  mark.className = `e2e-mark ${lock}`;
  mark.dataset.lock = lock;
  mark.textContent = (inList ? short : long).replaceAll("PEER", peer);
  mark.title = `${long}: ${why}`.replaceAll("PEER", peer);
  return mark;
}

// The header's line under the name and the message box of private
// conversation `v` (show()); none for a room.
export function e2eHeader(v) {
  const old = document.getElementById("room-e2e");
  if (old) old.remove();
  if (!v || v.kind !== "pm") return;
  const mark = e2eMark(v.name, false);
  mark.id = "room-e2e";
  roomName.after(mark);
  const lock = mark.dataset.lock;
  sayInput.placeholder = lock === "plain"
    ? `Message ${v.name} privately (plain: the server can read it) — or :help`
    : `Message ${v.name} end-to-end encrypted — or :help`;
}

// The marks after a conversation's lock may have changed.
function e2eRefresh() {
  renderRooms();
  const v = state.views.get(state.current);
  if (v && v.kind === "pm") e2eHeader(v);
}

// Whether a line typed in the private conversation with `peer` goes end
// to end: once end to end was used with `peer` (or a key is pinned), never
// again silently as a plain `:pm`.
export function e2eWanted(peer) {
  return e2eLock(peer) !== "plain";
}

// A plain `:pm` entry (ours or received): tagged readable by the server.
export function markPlain(item) {
  const tag = document.createElement("span");
  tag.className = "tag plain";
  tag.textContent = "not end-to-end";
  tag.title = "A plain :pm, not end-to-end encrypted: the server (and whoever runs it) can read it";
  item.classList.add("plain");
  item.querySelector(".body").prepend(tag);
  return item;
}

export function e2eEvents(peer, events) {
  for (const event of events) {
    if (event.type === "send") {
      send(`:e2e ${peer} ${event.payload}`);
      if (event.payload.startsWith("v1.m.")) sealed(peer);
    } else if (event.type === "message") {
      const tag = document.createElement("span");
      tag.className = "tag";
      tag.textContent = "🔒 e2e";
      openView(pmKey(peer), peer, "pm");
      addTo(pmKey(peer), "pm e2e", [tag, nickSpan(peer), " ", event.text], { count: true });
    } else if (event.type === "secure") {
      const how = event.verified ? " (verified)"
        : event.firstContact ? " (first contact: compare safety numbers to be sure)" : "";
      e2eNote(`messages with ${peer} are end-to-end encrypted${how}`, false);
    } else if (event.type === "key-changed") {
      e2eNote(`${peer}'s key changed: nothing is sent to ${peer} until you accept the new key `
        + `(compare safety numbers first, then :e2e-accept ${peer})`, true);
    } else if (event.type === "lost") {
      e2eNote(`${event.count} end-to-end message(s) from ${peer} never arrived`, true);
    } else if (event.type === "rejected") {
      e2eNote(`a message from ${peer} was rejected (${event.reason.replace("-", " ")})`, true);
    }
  }
  e2eRefresh();
}

// Our oldest message to `peer` still waiting was encrypted and sent.
function sealed(peer) {
  const item = (e2e.waiting.get(peer.toLowerCase()) || []).shift();
  if (!item) return;
  item.classList.remove("pending");
  item.removeAttribute("title");
}

// On login the device's key is published for the account.
export async function e2ePublish() {
  const E = window.LoopchatE2E;
  if (!E || !(await E.availability).ok) return;
  if (!e2e.device) e2e.device = E.loadOrCreateDeviceKey();
  send(`:key ${E.encodeKey((await e2e.device).public)}`);
}

export async function e2eInput(line) {
  const [word, peer = ""] = line.split(" ");
  const command = word.toLowerCase();
  if (command === ":key") {
    const device = await e2eDevice();
    if (device) send(`:key ${window.LoopchatE2E.encodeKey(device.public)}`);
    return;
  }
  const text = line.slice(word.length + 1 + peer.length + 1);
  if (!peer || (command === ":e2e" && !text)) {
    e2eNote(`usage: ${command} NICK${command === ":e2e" ? " TEXT" : ""} (nothing was sent)`, true);
    return;
  }
  if (command === ":e2e" && state.current !== pmKey(peer)) {
    // The message goes in the private conversation with `peer`: shown.
    openView(pmKey(peer), peer, "pm");
    show(pmKey(peer));
  }
  const conversation = await e2eConversation(peer);
  if (!conversation) return;
  try {
    if (command === ":e2e") {
      const events = await conversation.send(text);
      const tag = document.createElement("span");
      tag.className = "tag";
      tag.textContent = `🔒 e2e → ${peer}`;
      const item = addTo(pmKey(peer), "pm e2e own pending", [tag, text]);
      item.title = `waiting for the end-to-end session with ${peer} (never sent in the clear)`;
      const id = peer.toLowerCase();
      if (!e2e.waiting.has(id)) e2e.waiting.set(id, []);
      e2e.waiting.get(id).push(item);
      e2eAskKeys(peer, events);
      e2eEvents(peer, events);
    } else if (command === ":e2e-accept") {
      e2eEvents(peer, await conversation.acceptKey());
    } else if (command === ":e2e-safety") {
      const number = await conversation.safetyNumber();
      if (number) e2eNote(`safety number with ${peer}: ${window.LoopchatE2E.grouped(number)}`, false);
      else e2eNote(`no end-to-end session with ${peer} yet`, true);
    } else if (command === ":e2e-verify") {
      if (conversation.verify()) e2eNote(`${peer}'s key is marked verified`, false);
      else e2eNote(`no accepted key of ${peer} to verify`, true);
      e2eRefresh();
    }
  } catch (error) {
    const why = error && error.kind === "key-changed"
      ? `${peer}'s key changed: compare safety numbers, then :e2e-accept ${peer}`
      : String(error && error.message || error);
    e2eNote(`${why} (nothing was sent)`, true);
  }
}

// Before a new handshake, ask the key directory: its answer comes before
// the peer's and says at once when the peer has no key (docs/e2e.md).
function e2eAskKeys(peer, events) {
  if (!events.some((event) => event.type === "send" && event.payload.startsWith("v1.a."))) return;
  e2e.asked.add(peer.toLowerCase());
  send(`:keys ${peer}`);
}

// `* keys PEER: …`: true when it answered e2eAskKeys (then not shown as is).
export function e2eKeysAnswer(line) {
  const m = /^\* keys (\S+): (.*)$/.exec(line);
  if (!m || !e2e.asked.delete(m[1].toLowerCase()) || !e2e.pins) return false;
  const warning = window.LoopchatE2E.keysWarning(E2E_SERVER, m[1], m[2], e2e.pins);
  if (warning) e2eNote(warning, true);
  return true;
}

export async function e2eLine(line) {
  const m = /^\[e2e\] (\S+): (\S+)$/.exec(line);
  if (!m) {
    addEntry("error", [line]);
    return;
  }
  const conversation = await e2eConversation(m[1]);
  if (conversation) e2eEvents(m[1], await conversation.receive(m[2]));
}

show(null);
renderAccount();
connect();
