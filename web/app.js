// loopchat's browser client: one WebSocket, one text message per protocol
// line. Every piece of text from the server is inserted with textContent,
// never as HTML.
"use strict";

// Script errors are kept for the browser test to find.
window.addEventListener("error", (event) => {
  (window.__loopchatErrors = window.__loopchatErrors || []).push(String(event.message));
});

(() => {
  const $ = (id) => document.getElementById(id);
  const log = $("log");
  const sayForm = $("say-form");
  const sayInput = $("say-input");
  const nickForm = $("nick-form");
  const nickInput = $("nick-input");
  const roomName = $("room-name");
  const roomsList = $("rooms");
  const usersList = $("users");
  const userCount = $("user-count");
  const status = $("status");
  const statusText = $("status-text");
  const passwordDialog = $("password-dialog");
  const passwordForm = $("password-form");
  const passwordInput = $("password-input");
  const passwordError = $("password-error");
  const joinForm = $("join-form");
  const joinInput = $("join-input");

  // Words that start the server's own information lines; never nicks.
  // The same list as RESERVED_NICKS in the Rust protocol code: a unit test
  // in src/net/http.rs fails when the two differ.
  const SERVER_WORDS = new Set([
    "welcome", "server", "password", "users", "rooms", "pong", "bye", "history", "you",
    "current", "not", "topic", "no", "bans", "tags",
    "registered", "logged", "token", "whois",
  ]);
  const MAX_LOG = 2000;
  const MAX_RECALL = 100;

  const state = {
    socket: null,
    nick: null,
    room: null,
    users: new Set(),
    // Operators of the current room (`@` in `:users`).
    ops: new Set(),
    rooms: [],
    wantedNick: sessionStorage.getItem("loopchat.nick"),
    wantedRoom: sessionStorage.getItem("loopchat.room"),
    // Answers to requests the page made by itself, not shown in the log.
    quiet: { users: 0, rooms: 0 },
    historyPending: false,
    historySupported: true,
    recall: [],
    recallAt: 0,
    retry: 0,
    retryTimer: null,
    roomsTimer: null,
    welcomed: false,
    hinted: false,
  };

  // ---- the log -----------------------------------------------------------

  function hue(nick) {
    let h = 0;
    for (const c of nick.toLowerCase()) h = (h * 31 + c.codePointAt(0)) % 360;
    return h;
  }

  function timeText(date) {
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  }

  function nickSpan(nick) {
    const span = document.createElement("span");
    span.className = "nick";
    span.textContent = nick;
    span.style.setProperty("--hue", String(hue(nick)));
    return span;
  }

  // Adds one entry: `parts` are strings (text) or elements.
  function addEntry(kind, parts, when) {
    const nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 60;
    const item = document.createElement("li");
    item.className = kind;
    const time = document.createElement("time");
    const date = when || new Date();
    time.dateTime = date.toISOString();
    time.textContent = timeText(date);
    const body = document.createElement("span");
    body.className = "body";
    for (const part of parts) {
      body.append(typeof part === "string" ? document.createTextNode(part) : part);
    }
    item.append(time, body);
    log.append(item);
    while (log.childElementCount > MAX_LOG) log.firstElementChild.remove();
    if (nearBottom || kind.includes("own")) log.scrollTop = log.scrollHeight;
    return item;
  }

  function addDivider(text) {
    const item = document.createElement("li");
    item.className = "divider";
    item.textContent = text;
    log.append(item);
    log.scrollTop = log.scrollHeight;
  }

  // A delivered chat line `NICK: TEXT`, `* NICK TEXT` or `[pm] NICK: TEXT`.
  function chatParts(line) {
    const colon = line.indexOf(": ");
    if (colon > 0) return { nick: line.slice(0, colon), text: line.slice(colon + 2) };
    return { nick: null, text: line };
  }

  // ---- the side panel ----------------------------------------------------

  function renderUsers() {
    usersList.replaceChildren();
    const sorted = [...state.users].sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()));
    for (const nick of sorted) {
      const li = document.createElement("li");
      li.textContent = state.ops.has(nick) ? `@${nick}` : nick;
      if (nick === state.nick) li.classList.add("self");
      usersList.append(li);
    }
    userCount.textContent = state.users.size ? `(${state.users.size})` : "";
  }

  function renderRooms() {
    roomsList.replaceChildren();
    for (const { name, members } of state.rooms) {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      const label = document.createElement("span");
      label.textContent = name;
      const count = document.createElement("span");
      count.className = "members";
      count.textContent = String(members);
      button.append(label, count);
      const current = state.room && name.toLowerCase() === state.room.toLowerCase();
      button.setAttribute("aria-current", current ? "true" : "false");
      button.setAttribute("aria-label", `${name}, ${members} ${members === 1 ? "person" : "people"}${current ? ", current room" : ""}`);
      button.addEventListener("click", () => {
        if (!current) send(`:join ${name}`);
        closeSide();
        sayInput.focus();
      });
      li.append(button);
      roomsList.append(li);
    }
  }

  function setRoom(room) {
    state.room = room;
    roomName.textContent = room || "no room";
    sayInput.placeholder = room ? `Message ${room} — or :help` : "Not in any room — :join ROOM";
    document.title = `${room || "no room"} · loopchat`;
    if (room) sessionStorage.setItem("loopchat.room", room);
    else sessionStorage.removeItem("loopchat.room");
    state.users = new Set(state.nick && room ? [state.nick] : []);
    state.ops = new Set();
    renderUsers();
    renderRooms();
  }

  function setNick(nick) {
    state.nick = nick;
    if (document.activeElement !== nickInput) nickInput.value = nick;
  }

  // ---- the connection ----------------------------------------------------

  function setStatus(kind, text) {
    status.className = `status ${kind}`;
    statusText.textContent = text;
    sayForm.querySelector("button").disabled = kind !== "online";
  }

  function send(line) {
    if (!state.socket || state.socket.readyState !== WebSocket.OPEN) {
      addEntry("error", ["not connected: ", line]);
      return false;
    }
    state.socket.send(line);
    return true;
  }

  function sendQuietly(kind, line) {
    if (send(line)) state.quiet[kind] += 1;
  }

  function connect() {
    clearTimeout(state.retryTimer);
    setStatus("connecting", state.retry ? "reconnecting…" : "connecting…");
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/ws`);
    state.socket = socket;
    state.welcomed = false;
    state.quiet = { users: 0, rooms: 0 };
    socket.addEventListener("open", () => setStatus("online", "connected"));
    socket.addEventListener("message", (event) => {
      if (typeof event.data === "string") handleLine(event.data);
    });
    socket.addEventListener("close", (event) => {
      if (state.socket !== socket) return;
      state.socket = null;
      clearInterval(state.roomsTimer);
      const delay = Math.min(30, 2 ** state.retry) * 1000 * (0.75 + Math.random() / 2);
      state.retry = Math.min(state.retry + 1, 6);
      const why = event.code === 1013 ? "server full" : event.code === 1001 ? "server went away" : "disconnected";
      setStatus("offline", `${why} — retrying in ${Math.round(delay / 1000)} s`);
      if (state.welcomed) addEntry("info", [`* ${why}; reconnecting…`]);
      state.retryTimer = setTimeout(connect, delay);
    });
  }

  function afterWelcome() {
    state.welcomed = true;
    state.retry = 0;
    setStatus("online", "connected");
    if (state.wantedNick && state.wantedNick.toLowerCase() !== state.nick.toLowerCase()) {
      send(`:nick ${state.wantedNick}`);
    }
    if (state.wantedRoom && state.wantedRoom.toLowerCase() !== "#lobby") {
      send(`:join ${state.wantedRoom}`);
    }
    clearInterval(state.roomsTimer);
    state.roomsTimer = setInterval(() => sendQuietly("rooms", ":rooms"), 15000);
  }

  function enteredRoom(room) {
    const changed = room !== state.room;
    setRoom(room);
    if (changed) addDivider(`— ${room} —`);
    sendQuietly("users", ":users");
    sendQuietly("rooms", ":rooms");
    if (state.historySupported) {
      state.historyPending = true;
      send(":history 50");
    }
  }

  // Another of our rooms became current (`* current room #x`): the same
  // log, that room's people. Its history is not asked again.
  function switchedRoom(room) {
    setRoom(room);
    addDivider(`— ${room} —`);
    sendQuietly("users", ":users");
    sendQuietly("rooms", ":rooms");
  }

  // A line of one of our rooms that is not the current one (protocol 1.2
  // keeps the rooms one joined): `[#room] ` and the line as usual.
  function addOtherRoomLine(room, rest) {
    const tag = document.createElement("span");
    tag.className = "tag room-tag";
    tag.textContent = room;
    if (rest.startsWith("* ")) {
      addEntry("other-room info", [tag, " ", rest]);
      return;
    }
    const { nick, text } = chatParts(rest);
    addEntry("other-room chat", nick ? [tag, " ", nickSpan(nick), " ", text] : [tag, " ", rest]);
  }

  // ---- one line from the server ------------------------------------------

  function handleLine(line) {
    let m;
    if (line.startsWith("[e2e] ")) {
      e2eLine(line);
      return;
    }
    if (/^\* (?:logged in as|registered) \S+$/.test(line)) e2ePublish();
    if ((m = /^\[(#[A-Za-z][A-Za-z0-9_-]*)\] (.*)$/.exec(line))) {
      addOtherRoomLine(m[1], m[2]);
      return;
    }
    if ((m = /^\* current room (#\S+)$/.exec(line))) {
      switchedRoom(m[1]);
      addEntry("info", [line]);
      return;
    }
    if (line === "* not in any room (try :join ROOM)") {
      setRoom(null);
      addEntry("info", [line]);
      return;
    }
    if ((m = /^\* welcome (\S+)$/.exec(line))) {
      setNick(m[1]);
      addEntry("info", [line]);
      if (!state.hinted) {
        state.hinted = true;
        addEntry("info hint", ["Type a message and press Enter; :help lists the commands. Up and Down recall what you typed."]);
      }
      afterWelcome();
      return;
    }
    if (line === "* password required") {
      addEntry("info", [line]);
      askPassword(null);
      return;
    }
    if (line === "! wrong password" || line === "! too many attempts") {
      askPassword(line.slice(2));
      addEntry("error", [line]);
      return;
    }
    if ((m = /^\* (\S+) joined (#\S+)$/.exec(line))) {
      const [, nick, room] = m;
      if (nick === state.nick) enteredRoom(room);
      else state.users.add(nick);
      renderUsers();
      addEntry("info", [line]);
      return;
    }
    if ((m = /^\* (\S+) (?:left (#\S+)( \(.*\))?|was kicked from (#\S+) by \S+( \(.*\))?)$/.exec(line))) {
      state.users.delete(m[1]);
      state.ops.delete(m[1]);
      renderUsers();
      addEntry("info", [line]);
      return;
    }
    if ((m = /^\* (\S+) is now known as (\S+)$/.exec(line))) {
      const [, from, to] = m;
      if (state.users.delete(from)) state.users.add(to);
      if (state.ops.delete(from)) state.ops.add(to);
      if (from === state.nick) {
        setNick(to);
        state.wantedNick = to;
        sessionStorage.setItem("loopchat.nick", to);
      }
      renderUsers();
      addEntry("info", [line]);
      return;
    }
    if ((m = /^\* users in (#\S+): ?(.*)$/.exec(line))) {
      if (state.room && m[1].toLowerCase() === state.room.toLowerCase()) {
        const entries = m[2].split(" ").filter(Boolean);
        state.users = new Set(entries.map((entry) => entry.replace(/^@/, "")));
        state.ops = new Set(entries.filter((entry) => entry.startsWith("@")).map((entry) => entry.slice(1)));
        renderUsers();
      }
      if (state.quiet.users > 0) state.quiet.users -= 1;
      else addEntry("info", [line]);
      return;
    }
    if ((m = /^\* rooms: (.*)$/.exec(line))) {
      state.rooms = m[1].split(", ").map((entry) => {
        const r = /^(\S+) \((\d+)\)$/.exec(entry);
        return r ? { name: r[1], members: Number(r[2]) } : { name: entry, members: 0 };
      });
      renderRooms();
      if (state.quiet.rooms > 0) state.quiet.rooms -= 1;
      else addEntry("info", [line]);
      return;
    }
    if ((m = /^\* history (#\S+): (\d+) lines?$/.exec(line))) {
      state.historyPending = false;
      if (m[2] !== "0") addDivider(`earlier in ${m[1]}`);
      return;
    }
    if ((m = /^\[history (\S+)\] (.*)$/.exec(line))) {
      const when = new Date(m[1]);
      const rest = m[2];
      const date = Number.isNaN(when.getTime()) ? undefined : when;
      if (rest.startsWith("* ")) {
        addEntry("history action", [rest], date);
      } else {
        const { nick, text } = chatParts(rest);
        addEntry("history", nick ? [nickSpan(nick), " ", text] : [rest], date);
      }
      return;
    }
    if (line.startsWith("! ")) {
      if (state.historyPending && line.startsWith("! unknown command :history")) {
        state.historyPending = false;
        state.historySupported = false;
        return;
      }
      addEntry("error", [line]);
      return;
    }
    if (line.startsWith("[pm] ")) {
      const { nick, text } = chatParts(line.slice(5));
      const tag = document.createElement("span");
      tag.className = "tag";
      tag.textContent = "pm";
      addEntry("pm", nick ? [tag, nickSpan(nick), " ", text] : [tag, line.slice(5)]);
      return;
    }
    if (line.startsWith("* ")) {
      const word = line.slice(2).split(" ", 1)[0];
      if (word.startsWith(":")) {
        addEntry("info help", [line]);
      } else if (SERVER_WORDS.has(word.toLowerCase()) || !/^[A-Za-z][A-Za-z0-9_-]*$/.test(word)) {
        addEntry("info", [line]);
      } else {
        addEntry("action", ["* ", nickSpan(word), line.slice(2 + word.length)]);
      }
      return;
    }
    const { nick, text } = chatParts(line);
    addEntry("chat", nick ? [nickSpan(nick), " ", text] : [line]);
  }

  // ---- what the user does ------------------------------------------------

  function showOwn(line) {
    // The server does not echo a sender's own lines; show them here, the
    // way the others see them.
    if (!state.nick) return;
    if (!line.startsWith(":")) {
      addEntry("chat own", [nickSpan(state.nick), " ", line]);
    } else if (line.startsWith("::")) {
      addEntry("chat own", [nickSpan(state.nick), " ", line.slice(1)]);
    } else {
      let m;
      if ((m = /^:me (.+)$/i.exec(line))) {
        addEntry("action own", ["* ", nickSpan(state.nick), " ", m[1]]);
      } else if ((m = /^:(?:pm|msg) (\S+) (.+)$/i.exec(line))) {
        const tag = document.createElement("span");
        tag.className = "tag";
        tag.textContent = `pm → ${m[1]}`;
        addEntry("pm own", [tag, m[2]]);
      }
    }
  }

  // ---- end-to-end messages (web/e2e.js, docs/e2e.md) ---------------------
  // `:e2e NICK TEXT` is encrypted, never sent as typed; `[e2e] NICK: PAYLOAD`
  // lines are decrypted. `:e2e-safety`, `:e2e-verify`, `:e2e-accept NICK`
  // and `:key` (publish this device's key) as in the terminal client.

  const E2E_COMMAND = /^:(e2e|e2e-safety|e2e-verify|e2e-accept)(?:\s|$)|^:key\s*$/i;
  const e2e = { device: null, pins: null, me: null, conversations: new Map() };

  function e2eNote(text, warning) {
    addEntry(warning ? "error" : "info", [`${warning ? "!" : "*"} e2e: ${text}`]);
  }

  // This device's key pair; null (and a note saying why) where end-to-end
  // encryption is unavailable.
  async function e2eDevice() {
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
  async function e2eConversation(peer) {
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

  function e2eEvents(peer, events) {
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
  async function e2ePublish() {
    const E = window.LoopchatE2E;
    if (!E || !(await E.availability).ok) return;
    if (!e2e.device) e2e.device = E.loadOrCreateDeviceKey();
    send(`:key ${E.encodeKey((await e2e.device).public)}`);
  }

  async function e2eInput(line) {
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

  async function e2eLine(line) {
    const m = /^\[e2e\] (\S+): (\S+)$/.exec(line);
    if (!m) {
      addEntry("error", [line]);
      return;
    }
    const conversation = await e2eConversation(m[1]);
    if (conversation) e2eEvents(m[1], await conversation.receive(m[2]));
  }

  sayForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const line = sayInput.value;
    if (!line.trim()) return;
    if (line.includes("\n")) return;
    if (E2E_COMMAND.test(line)) {
      // Never sent as typed: it would carry the text in the clear.
      e2eInput(line.trim());
      if (state.recall[state.recall.length - 1] !== line) state.recall.push(line);
      state.recallAt = state.recall.length;
      sayInput.value = "";
      return;
    }
    if (send(line)) {
      showOwn(line);
      if (state.recall[state.recall.length - 1] !== line) state.recall.push(line);
      if (state.recall.length > MAX_RECALL) state.recall.shift();
      state.recallAt = state.recall.length;
      sayInput.value = "";
    }
  });

  sayInput.addEventListener("keydown", (event) => {
    if (event.key === "ArrowUp" && state.recallAt > 0) {
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
    const nick = nickInput.value.trim();
    if (!nick || nick === state.nick) return;
    state.wantedNick = nick;
    sessionStorage.setItem("loopchat.nick", nick);
    send(`:nick ${nick}`);
    sayInput.focus();
  });

  joinForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const room = joinInput.value.trim();
    if (!room) return;
    send(`:join ${room}`);
    joinInput.value = "";
    closeSide();
    sayInput.focus();
  });

  $("refresh-rooms").addEventListener("click", () => sendQuietly("rooms", ":rooms"));

  const toggle = $("toggle-side");
  function closeSide() {
    document.querySelector(".app").classList.remove("side-open");
    toggle.setAttribute("aria-expanded", "false");
  }
  toggle.addEventListener("click", () => {
    const open = document.querySelector(".app").classList.toggle("side-open");
    toggle.setAttribute("aria-expanded", String(open));
  });

  function askPassword(error) {
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

  connect();
})();
