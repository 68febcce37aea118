// The WebSocket and the protocol: tags, labels, and one line from the
// server placed where it belongs.

import { keyOf, nickInput, pmKey, sayForm, SERVER_WORDS, state, status, statusText } from "./page.js";
import { closeView, openView, rememberRooms, renderRooms, renderUsers, serverView, setNick, show, view } from "./rooms.js";
import { addEntry, addTo, chatParts, mentions, nickSpan, push, richText, timeText } from "./render.js";
import { accountLine, renderAccount, TOKEN_KEY } from "./accounts.js";
import { askPassword } from "./input.js";
import { e2eKeysAnswer, e2eLine, e2ePublish, markPlain } from "./app.js";

// ---- the connection ----------------------------------------------------

export function setStatus(kind, text) {
  status.className = `status ${kind}`;
  statusText.textContent = text;
  // Left by `:quit`, Enter (a submit) comes back.
  sayForm.querySelector("button").disabled = kind !== "online" && kind !== "left";
}

export function send(line) {
  if (!state.socket || state.socket.readyState !== WebSocket.OPEN) {
    addEntry("error", ["not connected: ", line]);
    return false;
  }
  state.socket.send(line);
  return true;
}

// Sends `line` with a fresh label (tags on); returns the label, or null
// when nothing was sent.
export function sendLabelled(line) {
  if (!state.tags) return send(line) ? "" : null;
  const label = `p${state.nextLabel++}`;
  return send(`@label=${label} ${line}`) ? label : null;
}

export function sendQuietly(kind, line) {
  if (send(line)) state.quiet[kind] += 1;
}

export function connect() {
  clearTimeout(state.retryTimer);
  state.left = false;
  setStatus("connecting", state.retry ? "reconnecting…" : "connecting…");
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}/ws`);
  state.socket = socket;
  state.welcomed = false;
  state.tags = false;
  state.quiet = { users: 0, rooms: 0 };
  socket.addEventListener("open", () => setStatus("online", "connected"));
  socket.addEventListener("message", (event) => {
    if (typeof event.data === "string") handleRaw(event.data);
  });
  socket.addEventListener("close", (event) => {
    if (state.socket !== socket) return;
    state.socket = null;
    clearInterval(state.roomsTimer);
    for (const { item } of state.pending.values()) refuse(item, "not sent: disconnected");
    state.pending.clear();
    if (state.left) {
      setStatus("left", "you left");
      addEntry("info", ["* you left the chat; press Enter to come back"]);
      return;
    }
    const delay = Math.min(30, 2 ** state.retry) * 1000 * (0.75 + Math.random() / 2);
    state.retry = Math.min(state.retry + 1, 6);
    const why = event.code === 1013 ? "server full" : event.code === 1001 ? "server went away" : "disconnected";
    setStatus("offline", `${why} — retrying in ${Math.round(delay / 1000)} s`);
    if (state.welcomed) addEntry("info", [`* ${why}; reconnecting…`]);
    state.retryTimer = setTimeout(connect, delay);
  });
}

export function afterWelcome() {
  state.welcomed = true;
  state.retry = 0;
  setStatus("online", "connected");
  // Tags before anything else: the join of #lobby may come untagged, the
  // rest is placed by its `room` tag and answers match by `label`.
  send(":tags on");
  state.account = null;
  renderAccount();
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) {
    // Back as the same person: the saved token logs in (and renames).
    state.resuming = true;
    send(`:resume ${token}`);
  } else if (state.wantedNick && state.wantedNick.toLowerCase() !== state.nick.toLowerCase()) {
    send(`:nick ${state.wantedNick}`);
  }
  // The rooms we are in, as kept while we join and leave (this session's
  // storage, so a reload comes back to them too), and the current one.
  const wantedRooms = JSON.parse(sessionStorage.getItem("loopchat.rooms") || "[]");
  const wantedRoom = sessionStorage.getItem("loopchat.room");
  const rooms = wantedRooms.filter((r) => r.toLowerCase() !== "#lobby");
  if (wantedRoom && !rooms.some((r) => r.toLowerCase() === wantedRoom.toLowerCase())
    && wantedRoom.toLowerCase() !== "#lobby") {
    rooms.push(wantedRoom);
  }
  // The room that was current last is joined last, so it is current again.
  rooms.sort((a, b) => (wantedRoom && a.toLowerCase() === wantedRoom.toLowerCase() ? 1 : 0)
    - (wantedRoom && b.toLowerCase() === wantedRoom.toLowerCase() ? 1 : 0));
  for (const room of rooms) send(`:join ${room}`);
  if (wantedRoom && wantedRoom.toLowerCase() === "#lobby" && rooms.length) send(":join #lobby");
  clearInterval(state.roomsTimer);
  state.roomsTimer = setInterval(() => sendQuietly("rooms", ":rooms"), 30000);
}

// We entered `room`: it is the server's current room; its people, its
// history (lines we have are dropped by id).
export function enteredRoom(room) {
  const key = keyOf(room);
  const fresh = !state.views.has(key);
  const v = openView(key, room, "room");
  if (fresh && view(state.current) === serverView && serverView.items.length) {
    // What the server said before the first room stays in sight.
    v.items.unshift(...serverView.items.splice(0));
    v.lastDay = serverView.lastDay;
  }
  v.users = new Set([state.nick]);
  v.ops = new Set();
  // The server says the topic right after the join if there is one (a
  // room made again after a restart has none).
  v.topic = "";
  state.serverRoom = key;
  rememberRooms();
  show(key);
  sendQuietly("users", `:users ${room}`);
  sendQuietly("rooms", ":rooms");
  send(":history 50");
}

export function leftRoom(room) {
  const key = keyOf(room);
  closeView(key);
  rememberRooms();
  sendQuietly("rooms", ":rooms");
}

// ---- one line from the server ------------------------------------------

export function unescapeTag(value) {
  return value.replace(/\\(.)?/g, (_, c) => ({ ":": ";", s: " ", r: "\r", n: "\n", "\\": "\\" }[c] ?? (c || "")));
}

export function handleRaw(raw) {
  const tags = {};
  let line = raw;
  if (raw.startsWith("@")) {
    const space = raw.indexOf(" ");
    if (space > 0) {
      for (const pair of raw.slice(1, space).split(";")) {
        const eq = pair.indexOf("=");
        if (eq > 0) tags[pair.slice(0, eq)] = unescapeTag(pair.slice(eq + 1));
      }
      line = raw.slice(space + 1);
    }
  }
  handleLine(line, tags);
}

export function tagTime(tags) {
  const when = tags.time ? new Date(tags.time) : null;
  return when && !Number.isNaN(when.getTime()) ? when : undefined;
}

export function refuse(item, why) {
  item.classList.remove("pending");
  item.classList.add("refused");
  const note = document.createElement("span");
  note.className = "refusal";
  note.textContent = ` — refused: ${why}`;
  item.querySelector(".body").append(note);
}

export function memberOf(room) {
  return room ? state.views.get(keyOf(room)) : null;
}

// A chat, `:me` or history line of a room or a private conversation; the
// entry added, if any.
export function chatLine(key, line, tags, history) {
  const v = view(key);
  const pending = tags.label && state.pending.get(tags.label);
  // A replayed line has the id and time of its first delivery; the pair
  // (not the id alone) also survives a server that numbers from 1 again.
  const seen = tags.id ? `${tags.id}|${tags.time || ""}` : null;
  if (seen && v.ids.has(seen) && !pending) return;
  if (seen) v.ids.add(seen);
  if (pending) {
    state.pending.delete(tags.label);
    pending.item.classList.remove("pending");
    pending.item.classList.add("sent");
    if (tags.time) {
      const time = pending.item.querySelector("time");
      time.dateTime = tagTime(tags).toISOString();
      time.textContent = timeText(tagTime(tags));
    }
    return;
  }
  const when = tagTime(tags);
  const cls = history ? "history" : "";
  if (line.startsWith("* ")) {
    const word = line.slice(2).split(" ", 1)[0];
    const rest = line.slice(2 + word.length);
    const own = word === state.nick;
    const mention = !own && !history && mentions(rest);
    return addTo(key, `action ${cls} ${own ? "own" : ""}`, ["* ", nickSpan(word), ...richText(rest, own)],
      { when, count: !own && !history, mention });
  }
  const { nick, text } = chatParts(line);
  const own = nick === state.nick;
  const mention = !own && !history && mentions(text);
  return addTo(key, `chat ${cls} ${own ? "own" : ""}`, nick ? [nickSpan(nick), " ", ...richText(text, own)] : [line],
    { when, count: !own && !history, mention });
}

export function handleLine(line, tags) {
  let m;
  const when = tagTime(tags);
  if (line.startsWith("[e2e] ")) {
    e2eLine(line);
    return;
  }
  if (line.startsWith("* keys ") && e2eKeysAnswer(line)) return;
  if (/^\* (?:logged in as|registered) \S+$/.test(line)) e2ePublish();
  if (accountLine(line, when)) return;
  if (line === "* tags on") {
    state.tags = true;
    return;
  }
  // A labelled error: our line was refused.
  if (line.startsWith("! ") && tags.label && state.pending.has(tags.label)) {
    const { item } = state.pending.get(tags.label);
    state.pending.delete(tags.label);
    refuse(item, line.slice(2));
    return;
  }
  // The nick field never keeps a nick the server refused.
  if (line.startsWith("! ") && tags.label && tags.label === state.nickLabel) {
    state.wantedNick = state.nick;
    sessionStorage.setItem("loopchat.nick", state.nick);
    nickInput.value = state.nick;
  }
  // Without tags (an older server): other rooms' lines as `[#room] …`.
  if ((m = /^\[(#[A-Za-z][A-Za-z0-9_-]*)\] (.*)$/.exec(line))) {
    handleLine(m[2], { ...tags, room: m[1] });
    return;
  }
  if ((m = /^\[history (\S+)\] (.*)$/.exec(line))) {
    const room = tags.room;
    const at = new Date(m[1]);
    chatLine(room ? keyOf(room) : null, m[2], { ...tags, time: tags.time || (Number.isNaN(at.getTime()) ? undefined : m[1]) }, true);
    return;
  }
  if (line.startsWith("[pm] ")) {
    const { nick, text } = chatParts(line.slice(5));
    const peer = tags.to || nick;
    if (!peer) {
      markPlain(addEntry("pm", [line], when));
      return;
    }
    const key = pmKey(peer);
    openView(key, peer, "pm");
    renderRooms();
    // A plain `:pm` (ours is tagged when typed): the server can read it.
    const item = chatLine(key, `${nick}: ${text}`, tags, false);
    if (item) markPlain(item);
    return;
  }
  if (tags.id && tags.room) {
    chatLine(keyOf(tags.room), line, tags, false);
    return;
  }
  if ((m = /^\* current room (#\S+)$/.exec(line))) {
    state.serverRoom = keyOf(m[1]);
    if (state.views.has(state.serverRoom)) show(state.serverRoom);
    sessionStorage.setItem("loopchat.room", m[1]);
    return;
  }
  if (line === "* not in any room (try :join ROOM)") {
    state.serverRoom = null;
    if (view(state.current).kind !== "pm") show(null);
    addEntry("info", [line], when);
    return;
  }
  if (line === "* bye") {
    // We said `:quit`: the close that follows is not one to undo.
    state.left = true;
    addEntry("info", [line], when);
    return;
  }
  if ((m = /^\* welcome (\S+)$/.exec(line))) {
    setNick(m[1]);
    addEntry("info", [line], when);
    if (!state.hinted) {
      state.hinted = true;
      addEntry("info hint", ["Type a message and press Enter; :help lists the commands. Up and Down recall what you typed; Tab completes nicks and commands."]);
    }
    afterWelcome();
    return;
  }
  if (line === "* password required") {
    addEntry("info", [line], when);
    askPassword(null);
    return;
  }
  if (line === "! wrong password" || line === "! too many attempts") {
    askPassword(line.slice(2));
    addEntry("error", [line], when);
    return;
  }
  if ((m = /^\* (\S+) joined (#\S+)$/.exec(line))) {
    const [, nick, room] = m;
    if (nick === state.nick) enteredRoom(room);
    else if (memberOf(room)) memberOf(room).users.add(nick);
    renderUsers();
    addTo(memberOf(room) ? keyOf(room) : null, "info", [line], { when });
    return;
  }
  if ((m = /^\* (\S+) (?:left (#\S+)(?: \(.*\))?|was kicked from (#\S+) by \S+(?: \(.*\))?)$/.exec(line))) {
    const nick = m[1];
    const room = m[2] || m[3];
    const v = memberOf(room);
    if (v) {
      v.users.delete(nick);
      v.ops.delete(nick);
    }
    if (nick === state.nick) {
      leftRoom(room);
      addEntry("info", [line], when);
    } else {
      addTo(v ? v.key : null, "info", [line], { when });
    }
    renderUsers();
    return;
  }
  if ((m = /^\* (\S+) is now known as (\S+)$/.exec(line))) {
    const [, from, to] = m;
    for (const v of state.views.values()) {
      if (v.users.delete(from)) {
        v.users.add(to);
        addTo(v.key, "info", [line], { when });
      }
      if (v.ops.delete(from)) v.ops.add(to);
    }
    const pm = state.views.get(pmKey(from));
    if (pm) {
      state.views.delete(pm.key);
      pm.key = pmKey(to);
      pm.name = to;
      state.views.set(pm.key, pm);
      if (state.current === pmKey(from)) state.current = pm.key;
      addTo(pm.key, "info", [line], { when });
    }
    if (from === state.nick) {
      setNick(to);
      state.wantedNick = to;
      sessionStorage.setItem("loopchat.nick", to);
      if (!state.views.size) addEntry("info", [line], when);
    }
    renderUsers();
    renderRooms();
    return;
  }
  if ((m = /^\* users in (#\S+): ?(.*)$/.exec(line))) {
    const v = memberOf(m[1]);
    if (v) {
      const entries = m[2].split(" ").filter(Boolean);
      v.users = new Set(entries.map((entry) => entry.replace(/^@/, "")));
      v.ops = new Set(entries.filter((entry) => entry.startsWith("@")).map((entry) => entry.slice(1)));
      renderUsers();
    }
    if (state.quiet.users > 0) state.quiet.users -= 1;
    else addEntry("info", [line], when);
    return;
  }
  if ((m = /^\* rooms: (.*)$/.exec(line))) {
    state.rooms = m[1].split(", ").map((entry) => {
      const r = /^(\S+) \((\d+)\)$/.exec(entry);
      return r ? { name: r[1], members: Number(r[2]) } : { name: entry, members: 0 };
    });
    renderRooms();
    if (state.quiet.rooms > 0) state.quiet.rooms -= 1;
    else addEntry("info", [line], when);
    return;
  }
  if ((m = /^\* history (#\S+): (\d+) lines?$/.exec(line))) {
    return;
  }
  if ((m = /^\* (?:topic (#\S+): (.*)|no topic for (#\S+)|\S+ set the topic of (#\S+): (.*)|\S+ cleared the topic of (#\S+))$/.exec(line))) {
    const room = m[1] || m[3] || m[4] || m[6];
    const v = memberOf(room);
    if (v) {
      v.topic = m[2] ?? m[5] ?? "";
      if (state.current === v.key) show(v.key);
    }
    addTo(v ? v.key : null, "info", [line], { when });
    return;
  }
  if ((m = /^\* \S+ (?:made (\S+) an operator of (#\S+)|took operator from (\S+) in (#\S+))$/.exec(line))) {
    const v = memberOf(m[2] || m[4]);
    if (v) {
      if (m[1]) v.ops.add(m[1]);
      else v.ops.delete(m[3]);
      renderUsers();
    }
    addTo(v ? v.key : null, "info", [line], { when });
    return;
  }
  if (line.startsWith("! ")) {
    addEntry("error", [line], when);
    return;
  }
  if (line.startsWith("* ")) {
    const word = line.slice(2).split(" ", 1)[0];
    const key = tags.room && memberOf(tags.room) ? keyOf(tags.room) : null;
    if (word.startsWith(":")) {
      addEntry("info help", [line], when);
    } else if (SERVER_WORDS.has(word.toLowerCase()) || !/^[A-Za-z][A-Za-z0-9_-]*$/.test(word) || tags.room) {
      addTo(key, "info", [line], { when });
    } else {
      addEntry("action", ["* ", nickSpan(word), ...richText(line.slice(2 + word.length))], when);
    }
    return;
  }
  // Without tags: a line of the current room.
  chatLine(state.serverRoom, line, tags, false);
}
