// Accounts: register, log in, log out, and the remembered token.

import { $, log, state } from "./page.js";
import { addEntry } from "./render.js";
import { askNotifications } from "./notify.js";
import { send } from "./connection.js";
import { submit, toggle } from "./input.js";

// ---- accounts ----------------------------------------------------------
// "Remember me" keeps a token (`:token`) in localStorage; on every welcome
// (reload, new tab, reconnect) `:resume TOKEN` logs in again. A failed
// resume forgets the token and the page goes on as a guest.

export const TOKEN_KEY = "loopchat.token";
export const accountButton = $("account-button");
export const accountDialog = $("account-dialog");
export const accountForm = $("account-form");
export const accountError = $("account-error");

export function renderAccount() {
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
export function accountLine(line, when) {
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
