// Conversations (rooms and private ones) and the side panel that lists
// them with their unread counts, members and operators.

import { allRoomsList, keyOf, log, nickInput, pmKey, roomName, roomsList, roomTopic, sayInput, state, userCount, usersList } from "./page.js";
import { askNotifications, updateTitle } from "./notify.js";
import { sendLabelled } from "./connection.js";
import { closeSide } from "./input.js";
import { e2eHeader, e2eMark } from "./app.js";

// ---- conversations -----------------------------------------------------

// The server's lines that belong to no conversation are shown wherever
// the reader is; before any room, in this one.
export const serverView = newView("", "server", "server");

export function newView(key, name, kind) {
  return {
    key, name, kind, items: [], ids: new Set(), unread: 0, mention: false, topic: "",
    users: new Set(), ops: new Set(), lastDay: null,
  };
}

export function view(key) {
  return (key !== null && state.views.get(key)) || state.views.get(state.current) || serverView;
}

export function openView(key, name, kind) {
  let v = state.views.get(key);
  if (!v) {
    v = newView(key, name, kind);
    state.views.set(key, v);
  }
  v.name = name;
  return v;
}

export function closeView(key) {
  state.views.delete(key);
  if (state.current === key) show(state.serverRoom && state.views.has(state.serverRoom) ? state.serverRoom : null);
  renderRooms();
}

export function rememberRooms() {
  const rooms = [...state.views.values()].filter((v) => v.kind === "room").map((v) => v.name);
  sessionStorage.setItem("loopchat.rooms", JSON.stringify(rooms));
}

// Shows conversation `key` (null: the server's lines).
export function show(key) {
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
  e2eHeader(v);
  renderUsers();
  renderRooms();
  updateTitle();
}

// ---- the side panel ----------------------------------------------------

export function renderUsers() {
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

export function renderRooms() {
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
    const lock = v.kind === "pm" ? e2eMark(v.name, true) : null;
    if (lock) button.append(lock);
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
      + `${v.mention ? ", mentioned" : ""}${current ? ", current" : ""}${lock ? `, ${lock.title}` : ""}`);
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
export function select(key) {
  const v = state.views.get(key);
  if (!v) return;
  if (v.kind === "room" && state.serverRoom !== key) sendLabelled(`:join ${v.name}`);
  show(key);
}

export function openPm(nick) {
  openView(pmKey(nick), nick, "pm");
  show(pmKey(nick));
  closeSide();
  sayInput.focus();
}

export function setNick(nick) {
  state.nick = nick;
  if (document.activeElement !== nickInput) nickInput.value = nick;
}
