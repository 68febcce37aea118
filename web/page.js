// What every part of the page shares: its elements, the protocol's words
// and limits, and the page's state. Imports nothing, so it runs first.

// Script errors are kept for the browser test to find.
window.addEventListener("error", (event) => {
  (window.__loopchatErrors = window.__loopchatErrors || []).push(String(event.message));
});

export const $ = (id) => document.getElementById(id);
export const log = $("log");
export const sayForm = $("say-form");
export const sayInput = $("say-input");
export const nickForm = $("nick-form");
export const nickInput = $("nick-input");
export const roomName = $("room-name");
export const roomTopic = $("room-topic");
export const roomsList = $("rooms");
export const allRoomsList = $("all-rooms");
export const usersList = $("users");
export const userCount = $("user-count");
export const status = $("status");
export const statusText = $("status-text");
export const passwordDialog = $("password-dialog");
export const passwordForm = $("password-form");
export const passwordInput = $("password-input");
export const passwordError = $("password-error");
export const joinForm = $("join-form");
export const joinInput = $("join-input");

// Words that start the server's own information lines; never nicks.
// The same list as RESERVED_NICKS in the Rust protocol code: a unit test
// in src/net/http.rs fails when the two differ.
export const SERVER_WORDS = new Set([
  "welcome", "server", "password", "users", "rooms", "pong", "bye", "history", "you",
  "current", "not", "topic", "no", "bans", "tags",
  "registered", "logged", "token", "whois", "key", "keys",
]);
export const MAX_VIEW = 2000;
export const MAX_RECALL = 100;
// The protocol's 4096 bytes, less room for the label and a `:pm NICK `.
export const MAX_LINE_BYTES = 4000;
export const COMMANDS = [":help", ":join", ":part", ":nick", ":me", ":pm", ":users", ":rooms", ":history",
  ":topic", ":op", ":deop", ":kick", ":ban", ":unban", ":bans", ":quit", ":e2e", ":e2e-safety",
  ":e2e-verify", ":e2e-accept", ":key"];

export const state = {
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
  quiet: { users: 0, rooms: 0 },
  recall: [],
  recallAt: 0,
  retry: 0,
  // We said `:quit` (the server's `* bye`): no reconnect until Enter.
  left: false,
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

export const keyOf = (room) => room.toLowerCase();
export const pmKey = (nick) => `pm:${nick.toLowerCase()}`;
