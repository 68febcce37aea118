// loopchat's browser client: one WebSocket, one text message per protocol
// line, with protocol 1.2's tags turned on at connect. Every line is placed
// in its conversation (a room, by its `room` tag, or a private one) and the
// log shows the current conversation only. Every piece of text from the
// server is inserted with textContent, never as HTML; links become anchors
// only for http and https. docs/web.md describes the page.
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
  const roomTopic = $("room-topic");
  const roomsList = $("rooms");
  const allRoomsList = $("all-rooms");
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
    "registered", "logged", "token", "whois", "key", "keys",
  ]);
  const MAX_VIEW = 2000;
  const MAX_RECALL = 100;
  // The protocol's 4096 bytes, less room for the label and a `:pm NICK `.
  const MAX_LINE_BYTES = 4000;
  const COMMANDS = [":help", ":join", ":part", ":nick", ":me", ":pm", ":users", ":rooms", ":history",
    ":topic", ":op", ":deop", ":kick", ":ban", ":unban", ":bans", ":quit", ":e2e", ":e2e-safety",
    ":e2e-verify", ":e2e-accept", ":key"];

  const state = {
    socket: null,
    nick: null,
    // The server's current room (`* current room`), lower-cased key.
    serverRoom: null,
    // The conversation shown: a room key (`#rust`) or `pm:bob`.
    current: null,
    // key -> { key, name, kind, items, ids, unread, mention, topic, users, ops, lastDay }
    views: new Map(),
    rooms: [],
    tags: false,
    // label -> { view, item } for own lines waiting for their echo.
    pending: new Map(),
    nextLabel: 1,
    wantedNick: sessionStorage.getItem("loopchat.nick"),
    wantedRooms: JSON.parse(sessionStorage.getItem("loopchat.rooms") || "[]"),
    wantedRoom: sessionStorage.getItem("loopchat.room"),
    quiet: { users: 0, rooms: 0 },
    recall: [],
    recallAt: 0,
    retry: 0,
    retryTimer: null,
    roomsTimer: null,
    welcomed: false,
    hinted: false,
    // The account we are logged in to; a `:resume` with the saved token on
    // its way; whether to keep a token ("remember me").
    account: null,
    resuming: false,
    remember: false,
    accountAsked: false,
  };
  window.__loopchatNotifications = [];

  // ---- conversations -----------------------------------------------------

  const keyOf = (room) => room.toLowerCase();
  const pmKey = (nick) => `pm:${nick.toLowerCase()}`;

  // The server's lines that belong to no conversation are shown wherever
  // the reader is; before any room, in this one.
  const serverView = newView("", "server", "server");

  function newView(key, name, kind) {
    return {
      key, name, kind, items: [], ids: new Set(), unread: 0, mention: false, topic: "",
      users: new Set(), ops: new Set(), lastDay: null,
    };
  }

  function view(key) {
    return (key !== null && state.views.get(key)) || state.views.get(state.current) || serverView;
  }

  function openView(key, name, kind) {
    let v = state.views.get(key);
    if (!v) {
      v = newView(key, name, kind);
      state.views.set(key, v);
    }
    v.name = name;
    return v;
  }

  function closeView(key) {
    state.views.delete(key);
    if (state.current === key) show(state.serverRoom && state.views.has(state.serverRoom) ? state.serverRoom : null);
    renderRooms();
  }

  function rememberRooms() {
    const rooms = [...state.views.values()].filter((v) => v.kind === "room").map((v) => v.name);
    sessionStorage.setItem("loopchat.rooms", JSON.stringify(rooms));
  }

  // Shows conversation `key` (null: the server's lines).
  function show(key) {
    state.current = key;
    const v = view(key);
    v.unread = 0;
    v.mention = false;
    log.replaceChildren(...v.items);
    log.scrollTop = log.scrollHeight;
    roomName.textContent = v === serverView ? "no room" : v.kind === "pm" ? `@ ${v.name}` : v.name;
    roomTopic.textContent = v.topic;
    roomTopic.hidden = !v.topic;
    sayInput.placeholder = v.kind === "pm" ? `Message ${v.name} privately — or :help`
      : v === serverView ? "Not in any room — :join ROOM" : `Message ${v.name} — or :help`;
    if (v.kind === "room") sessionStorage.setItem("loopchat.room", v.name);
    renderUsers();
    renderRooms();
    updateTitle();
  }

  // ---- text: nicks, mentions and links -----------------------------------

  function hue(nick) {
    let h = 0;
    for (const c of nick.toLowerCase()) h = (h * 31 + c.codePointAt(0)) % 360;
    return h;
  }

  function nickSpan(nick) {
    const span = document.createElement("span");
    span.className = "nick";
    span.textContent = nick;
    span.style.setProperty("--hue", String(hue(nick)));
    if (nick === state.nick) span.classList.add("self");
    return span;
  }

  function escapeRegExp(text) {
    return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  }

  function mentions(text) {
    if (!state.nick) return false;
    return new RegExp(`(^|[^A-Za-z0-9_-])${escapeRegExp(state.nick)}(?![A-Za-z0-9_-])`, "i").test(text);
  }

  // Only http and https addresses become anchors; anything else stays text.
  function safeUrl(text) {
    try {
      const url = new URL(text);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch {
      return null;
    }
  }

  // `text` as nodes: links as anchors, the reader's nick marked.
  function richText(text, own = false) {
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

  function marked(text) {
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

  function timeText(date) {
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  }

  function dayText(date) {
    return date.toLocaleDateString([], { weekday: "long", year: "numeric", month: "long", day: "numeric" });
  }

  function push(v, item) {
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
  function addTo(key, kind, parts, opts = {}) {
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

  function addEntry(kind, parts, when) {
    return addTo(null, kind, parts, { when });
  }

  function addDivider(key, text) {
    const item = document.createElement("li");
    item.className = "divider";
    item.textContent = text;
    push(view(key), item);
  }

  function updateTitle() {
    let unread = 0;
    for (const v of state.views.values()) unread += v.unread;
    const name = view(state.current) === serverView ? "no room" : view(state.current).name;
    document.title = `${unread ? `(${unread}) ` : ""}${name} · loopchat`;
  }

  // A desktop notification for a mention or a private line while the page
  // is hidden or not focused (only with the reader's permission).
  function notify(v, parts) {
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
  function askNotifications() {
    if ("Notification" in window && Notification.permission === "default") {
      Notification.requestPermission().catch(() => {});
    }
  }

  // A delivered chat line `NICK: TEXT`.
  function chatParts(line) {
    const colon = line.indexOf(": ");
    if (colon > 0) return { nick: line.slice(0, colon), text: line.slice(colon + 2) };
    return { nick: null, text: line };
  }

  // ---- the side panel ----------------------------------------------------

  function renderUsers() {
    usersList.replaceChildren();
    const v = view(state.current);
    const sorted = [...v.users].sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()));
    const amOp = v.ops.has(state.nick);
    for (const nick of sorted) {
      const li = document.createElement("li");
      const name = document.createElement("button");
      name.type = "button";
      name.className = "member";
      name.textContent = v.ops.has(nick) ? `@${nick}` : nick;
      name.title = nick === state.nick ? "you" : `Message ${nick} privately`;
      if (nick !== state.nick) name.addEventListener("click", () => openPm(nick));
      li.append(name);
      if (nick === state.nick) li.classList.add("self");
      if (v.ops.has(nick)) li.classList.add("op");
      if (amOp && nick !== state.nick) {
        for (const action of ["kick", "ban"]) {
          const b = document.createElement("button");
          b.type = "button";
          b.className = `small mod ${action}`;
          b.textContent = action;
          b.title = `${action} ${nick} from ${v.name}`;
          b.addEventListener("click", () => sendLabelled(`:${action} ${nick}`));
          li.append(b);
        }
      }
      usersList.append(li);
    }
    userCount.textContent = v.users.size ? `(${v.users.size})` : "";
  }

  function renderRooms() {
    roomsList.replaceChildren();
    const views = [...state.views.values()];
    views.sort((a, b) => (a.kind === b.kind ? 0 : a.kind === "room" ? -1 : 1));
    for (const v of views) {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.key = v.key;
      const label = document.createElement("span");
      label.className = "name";
      label.textContent = v.kind === "pm" ? `@ ${v.name}` : v.name;
      button.append(label);
      if (v.mention) {
        const mark = document.createElement("span");
        mark.className = "mention-mark";
        mark.textContent = "@";
        mark.title = "you were mentioned";
        button.append(mark);
      }
      if (v.unread) {
        const count = document.createElement("span");
        count.className = "unread";
        count.textContent = String(v.unread);
        button.append(count);
      }
      const current = v.key === state.current;
      button.setAttribute("aria-current", current ? "true" : "false");
      button.setAttribute("aria-label", `${v.name}${v.unread ? `, ${v.unread} unread` : ""}`
        + `${v.mention ? ", mentioned" : ""}${current ? ", current" : ""}`);
      button.addEventListener("click", () => {
        askNotifications();
        select(v.key);
        closeSide();
        sayInput.focus();
      });
      li.append(button);
      roomsList.append(li);
    }
    allRoomsList.replaceChildren();
    for (const { name, members } of state.rooms) {
      if (state.views.has(keyOf(name))) continue;
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      const label = document.createElement("span");
      label.textContent = name;
      const count = document.createElement("span");
      count.className = "members";
      count.textContent = String(members);
      button.append(label, count);
      button.setAttribute("aria-label", `join ${name}, ${members} ${members === 1 ? "person" : "people"}`);
      button.addEventListener("click", () => {
        askNotifications();
        sendLabelled(`:join ${name}`);
        closeSide();
        sayInput.focus();
      });
      li.append(button);
      allRoomsList.append(li);
    }
  }

  // Shows conversation `key`; a room becomes the server's current room.
  function select(key) {
    const v = state.views.get(key);
    if (!v) return;
    if (v.kind === "room" && state.serverRoom !== key) sendLabelled(`:join ${v.name}`);
    show(key);
  }

  function openPm(nick) {
    openView(pmKey(nick), nick, "pm");
    show(pmKey(nick));
    closeSide();
    sayInput.focus();
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

  // Sends `line` with a fresh label (tags on); returns the label, or null
  // when nothing was sent.
  function sendLabelled(line) {
    if (!state.tags) return send(line) ? "" : null;
    const label = `p${state.nextLabel++}`;
    return send(`@label=${label} ${line}`) ? label : null;
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
      const delay = Math.min(30, 2 ** state.retry) * 1000 * (0.75 + Math.random() / 2);
      state.retry = Math.min(state.retry + 1, 6);
      const why = event.code === 1013 ? "server full" : event.code === 1001 ? "server went away" : "disconnected";
      setStatus("offline", `${why} — retrying in ${Math.round(delay / 1000)} s`);
      if (state.welcomed) addEntry("info", [`* ${why}; reconnecting…`]);
      for (const { item } of state.pending.values()) refuse(item, "not sent: disconnected");
      state.pending.clear();
      state.retryTimer = setTimeout(connect, delay);
    });
  }

  function afterWelcome() {
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
    const rooms = state.wantedRooms.filter((r) => r.toLowerCase() !== "#lobby");
    if (state.wantedRoom && !rooms.some((r) => r.toLowerCase() === state.wantedRoom.toLowerCase())
      && state.wantedRoom.toLowerCase() !== "#lobby") {
      rooms.push(state.wantedRoom);
    }
    // The room that was current last is joined last, so it is current again.
    rooms.sort((a, b) => (state.wantedRoom && a.toLowerCase() === state.wantedRoom.toLowerCase() ? 1 : 0)
      - (state.wantedRoom && b.toLowerCase() === state.wantedRoom.toLowerCase() ? 1 : 0));
    for (const room of rooms) send(`:join ${room}`);
    if (state.wantedRoom && state.wantedRoom.toLowerCase() === "#lobby" && rooms.length) send(":join #lobby");
    clearInterval(state.roomsTimer);
    state.roomsTimer = setInterval(() => sendQuietly("rooms", ":rooms"), 30000);
  }

  // We entered `room`: it is the server's current room; its people, its
  // history (lines we have are dropped by id).
  function enteredRoom(room) {
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
    state.serverRoom = key;
    rememberRooms();
    show(key);
    sendQuietly("users", `:users ${room}`);
    sendQuietly("rooms", ":rooms");
    send(":history 50");
  }

  function leftRoom(room) {
    const key = keyOf(room);
    closeView(key);
    rememberRooms();
    sendQuietly("rooms", ":rooms");
  }

  // ---- accounts ----------------------------------------------------------
  // "Remember me" keeps a token (`:token`) in localStorage; on every welcome
  // (reload, new tab, reconnect) `:resume TOKEN` logs in again. A failed
  // resume forgets the token and the page goes on as a guest.

  const TOKEN_KEY = "loopchat.token";
  const accountButton = $("account-button");
  const accountDialog = $("account-dialog");
  const accountForm = $("account-form");
  const accountError = $("account-error");

  function renderAccount() {
    const who = state.account;
    accountButton.textContent = who ? `✓ ${who}` : "Log in";
    accountButton.classList.toggle("in", !!who);
    accountButton.title = who ? `logged in as ${who}` : "register or log in";
    $("account-out").hidden = !!who;
    $("account-in").hidden = !who;
    $("account-who").textContent = who || "";
    $("account-login").hidden = !!who;
    $("account-register").hidden = !!who;
    $("account-logout").hidden = !who;
  }

  // Handles the accounts' lines; true when the line was one.
  function accountLine(line, when) {
    let m;
    if ((m = /^\* (?:logged in as|registered) (\S+)$/.exec(line))) {
      state.account = m[1];
      const resumed = state.resuming;
      state.resuming = false;
      state.accountAsked = false;
      renderAccount();
      if (accountDialog.open) accountDialog.close();
      if (state.remember && !resumed) send(":token");
      state.wantedNick = m[1];
      sessionStorage.setItem("loopchat.nick", m[1]);
      addEntry("info", [line], when);
      return true;
    }
    if ((m = /^\* token (\S+)$/.exec(line))) {
      // A secret: kept, never shown.
      localStorage.setItem(TOKEN_KEY, m[1]);
      addEntry("info", ["* this browser remembers you (Log out forgets it)"], when);
      return true;
    }
    if (line === "* logged out") {
      state.account = null;
      localStorage.removeItem(TOKEN_KEY);
      renderAccount();
      addEntry("info", [line], when);
      return true;
    }
    if (line === "! login failed" && state.resuming) {
      state.resuming = false;
      localStorage.removeItem(TOKEN_KEY);
      addEntry("info", ["* the saved login no longer works: continuing as a guest"], when);
      if (state.wantedNick && state.wantedNick.toLowerCase() !== (state.nick || "").toLowerCase()) {
        send(`:nick ${state.wantedNick}`);
      }
      return true;
    }
    if (line.startsWith("! ") && state.accountAsked && accountDialog.open) {
      accountError.hidden = false;
      accountError.textContent = line.slice(2);
      state.accountAsked = false;
      addEntry("error", [line], when);
      return true;
    }
    return false;
  }

  accountButton.addEventListener("click", () => {
    askNotifications();
    accountError.hidden = true;
    $("account-name").value = state.account || state.nick || "";
    $("account-password").value = "";
    renderAccount();
    accountDialog.showModal();
    (state.account ? $("account-logout") : $("account-password")).focus();
  });

  accountForm.addEventListener("submit", (event) => {
    const action = event.submitter ? event.submitter.value : "login";
    if (action === "cancel") return;
    if (action === "logout") {
      send(":logout");
      return;
    }
    event.preventDefault();
    const name = $("account-name").value.trim();
    const password = $("account-password").value;
    if (!name || !password) {
      accountError.hidden = false;
      accountError.textContent = "a name and a password, please";
      return;
    }
    state.remember = $("account-remember").checked;
    state.accountAsked = true;
    accountError.hidden = true;
    if (action === "register") {
      if (name !== state.nick) send(`:nick ${name}`);
      send(`:register ${password}`);
    } else {
      send(`:login ${name} ${password}`);
    }
    $("account-password").value = "";
  });

  // ---- one line from the server ------------------------------------------

  function unescapeTag(value) {
    return value.replace(/\\(.)?/g, (_, c) => ({ ":": ";", s: " ", r: "\r", n: "\n", "\\": "\\" }[c] ?? (c || "")));
  }

  function handleRaw(raw) {
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

  function tagTime(tags) {
    const when = tags.time ? new Date(tags.time) : null;
    return when && !Number.isNaN(when.getTime()) ? when : undefined;
  }

  function refuse(item, why) {
    item.classList.remove("pending");
    item.classList.add("refused");
    const note = document.createElement("span");
    note.className = "refusal";
    note.textContent = ` — refused: ${why}`;
    item.querySelector(".body").append(note);
  }

  function memberOf(room) {
    return room ? state.views.get(keyOf(room)) : null;
  }

  // A chat, `:me` or history line of a room or a private conversation.
  function chatLine(key, line, tags, history) {
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
      addTo(key, `action ${cls} ${own ? "own" : ""}`, ["* ", nickSpan(word), ...richText(rest, own)],
        { when, count: !own && !history, mention });
      return;
    }
    const { nick, text } = chatParts(line);
    const own = nick === state.nick;
    const mention = !own && !history && mentions(text);
    addTo(key, `chat ${cls} ${own ? "own" : ""}`, nick ? [nickSpan(nick), " ", ...richText(text, own)] : [line],
      { when, count: !own && !history, mention });
  }

  function handleLine(line, tags) {
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
        addEntry("pm", [line], when);
        return;
      }
      const key = pmKey(peer);
      openView(key, peer, "pm");
      renderRooms();
      chatLine(key, `${nick}: ${text}`, tags, false);
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

  // ---- what the user does ------------------------------------------------

  // Our own chat, `:me` or `:pm` line, shown as pending until its echo
  // (matched by label) arrives, or refused with the server's error.
  function sendOwn(viewKey, wire, parts) {
    const label = sendLabelled(wire);
    if (label === null) return false;
    const item = addTo(viewKey, `${parts.kind} own pending`, parts.nodes);
    if (label) state.pending.set(label, { view: viewKey, item });
    else item.classList.remove("pending");
    return true;
  }

  // What the user typed, sent as the current conversation needs it.
  function submit(line) {
    const v = view(state.current);
    const me = state.nick ? nickSpan(state.nick) : "";
    let m;
    if (!line.startsWith(":") || line.startsWith("::")) {
      const text = line.startsWith("::") ? line.slice(1) : line;
      if (v.kind === "pm") {
        return sendOwn(v.key, `:pm ${v.name} ${text}`, { kind: "chat", nodes: [me, " ", ...richText(text, true)] });
      }
      return sendOwn(v.key, line, { kind: "chat", nodes: [me, " ", ...richText(text, true)] });
    }
    if ((m = /^:me (.+)$/i.exec(line)) && v.kind === "room") {
      return sendOwn(v.key, line, { kind: "action", nodes: ["* ", me, " ", ...richText(m[1], true)] });
    }
    if ((m = /^:(?:pm|msg) (\S+) (.+)$/i.exec(line))) {
      openView(pmKey(m[1]), m[1], "pm");
      renderRooms();
      return sendOwn(pmKey(m[1]), line, { kind: "chat", nodes: [me, " ", ...richText(m[2], true)] });
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

  // ---- end-to-end messages (web/e2e.js, docs/e2e.md) ---------------------
  // `:e2e NICK TEXT` is encrypted, never sent as typed; `[e2e] NICK: PAYLOAD`
  // lines are decrypted. `:e2e-safety`, `:e2e-verify`, `:e2e-accept NICK`
  // and `:key` (publish this device's key) as in the terminal client.

  const E2E_COMMAND = /^:(e2e|e2e-safety|e2e-verify|e2e-accept)(?:\s|$)|^:key\s*$/i;
  const e2e = { device: null, pins: null, me: null, conversations: new Map(), asked: new Set() };

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
  function e2eKeysAnswer(line) {
    const m = /^\* keys (\S+): (.*)$/.exec(line);
    if (!m || !e2e.asked.delete(m[1].toLowerCase()) || !e2e.pins) return false;
    const warning = window.LoopchatE2E.keysWarning("loopchat", m[1], m[2], e2e.pins);
    if (warning) e2eNote(warning, true);
    return true;
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
    askNotifications();
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
    // The server refuses a line over 4096 bytes; the label takes a few.
    const bytes = new TextEncoder().encode(line).length;
    if (bytes > MAX_LINE_BYTES) {
      addEntry("error", [`! not sent: ${bytes} bytes, the limit is ${MAX_LINE_BYTES} (shorten it or split it)`]);
      return;
    }
    if (submit(line)) {
      if (state.recall[state.recall.length - 1] !== line) state.recall.push(line);
      if (state.recall.length > MAX_RECALL) state.recall.shift();
      state.recallAt = state.recall.length;
      sayInput.value = "";
    }
  });

  // Tab completes a nick of the conversation or a command.
  function complete() {
    const value = sayInput.value;
    const end = sayInput.selectionStart ?? value.length;
    const start = value.lastIndexOf(" ", end - 1) + 1;
    const word = value.slice(start, end);
    if (!word) return false;
    const v = view(state.current);
    const pool = word.startsWith(":") && start === 0 ? COMMANDS : [...v.users, ...(v.kind === "pm" ? [v.name] : [])];
    const found = pool.filter((c) => c.toLowerCase().startsWith(word.toLowerCase()) && c !== state.nick);
    if (found.length !== 1) return found.length > 1;
    const suffix = start === 0 && !word.startsWith(":") ? ": " : " ";
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

  show(null);
  renderAccount();
  connect();
})();
