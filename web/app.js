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

import { log, state } from "./page.js";
import { show } from "./rooms.js";
import { addEntry, marked, nickSpan } from "./render.js";
import { notify } from "./notify.js";
import { connect, send } from "./connection.js";
import { renderAccount } from "./accounts.js";

// ---- end-to-end messages (web/e2e.js, docs/e2e.md) ---------------------
// `:e2e NICK TEXT` is encrypted, never sent as typed; `[e2e] NICK: PAYLOAD`
// lines are decrypted. `:e2e-safety`, `:e2e-verify`, `:e2e-accept NICK`
// and `:key` (publish this device's key) as in the terminal client.

export const E2E_COMMAND = /^:(e2e|e2e-safety|e2e-verify|e2e-accept)(?:\s|$)|^:key\s*$/i;
export const e2e = { device: null, pins: null, me: null, conversations: new Map(), asked: new Set() };

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
  if (!e2e.pins) e2e.pins = new E.Pins("loopchat.e2e.pins");
  if (e2e.me !== state.nick) {
    // Sessions are bound to names: a rename starts them again.
    e2e.me = state.nick;
    e2e.conversations.clear();
  }
  const id = peer.toLowerCase();
  if (!e2e.conversations.has(id)) {
    e2e.conversations.set(id, new E.Conversation("loopchat", state.nick, peer, device, e2e.pins));
  }
  return e2e.conversations.get(id);
}

export function e2eEvents(peer, events) {
  for (const event of events) {
    if (event.type === "send") send(`:e2e ${peer} ${event.payload}`);
    else if (event.type === "message") {
      const tag = document.createElement("span");
      tag.className = "tag";
      tag.textContent = "🔒 e2e";
      addEntry("pm e2e", [tag, nickSpan(peer), " ", event.text]);
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
  const conversation = await e2eConversation(peer);
  if (!conversation) return;
  try {
    if (command === ":e2e") {
      const events = await conversation.send(text);
      const tag = document.createElement("span");
      tag.className = "tag";
      tag.textContent = `🔒 e2e → ${peer}`;
      addEntry("pm e2e own", [tag, text]);
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
  const warning = window.LoopchatE2E.keysWarning("loopchat", m[1], m[2], e2e.pins);
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
