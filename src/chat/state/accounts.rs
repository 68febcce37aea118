//! The account commands in the chat state (protocol 1.2, "Accounts"):
//! `:register`, `:login`, `:token`, `:resume`, `:logout`, `:passwd`,
//! `:whois`, the nick rules of registered names, and taking over a login.
//!
//! The engine ([`crate::accounts`]) keeps the accounts; this file decides
//! what each command does to the chat. Hashing never happens here: a
//! command that needs it leaves an [`AccountJob`] for the server
//! ([`Chat::take_account_jobs`]), answers nothing yet, and says so in its
//! [`Outcome`] (`waits_for: Some(Awaited::Password)`): the server holds the
//! client's input until the result comes back to
//! [`Chat::account_job_done`].

use super::{Awaited, Chat, ChatEvent, ClientId, Member, Outbox, Outcome};
use crate::accounts::tokens::Digest;
use crate::accounts::worker::{Finished, Job, JobResult};
use crate::accounts::Accounts;
use crate::chat::history::tails::unix_now_ms;
use crate::protocol::{self, Error, Reply};
use std::collections::HashMap;

/// Work for the hashing worker, left by a command.
#[derive(Debug)]
pub struct AccountJob {
    /// Names the job and its result.
    pub ticket: u64,
    /// The client whose input waits for it.
    pub client: ClientId,
    /// The name whose failed logins slow this one (`:login`, `:passwd`),
    /// lower-cased; `None` when the throttle does not apply (`:register`).
    pub throttle: Option<String>,
    /// What to compute.
    pub job: Job,
}

/// What a finished job came to, for the server's throttle and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobDone {
    /// The client whose input may go on.
    pub client: ClientId,
    /// As in [`AccountJob::throttle`].
    pub throttle: Option<String>,
    /// What kind of job it was, and how it went.
    pub kind: JobKind,
    /// Whether it succeeded (a right password, a stored account).
    pub ok: bool,
}

/// The kinds of account jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// `:register`
    Register,
    /// `:login`
    Login,
    /// `:passwd`
    Passwd,
    /// SASL `PLAIN` (IRC `AUTHENTICATE`): a login, possibly before the
    /// client is in the chat.
    Sasl,
}

/// What a job was for, kept until its result comes.
#[derive(Debug)]
struct Pending {
    client: ClientId,
    throttle: Option<String>,
    what: Purpose,
}

#[derive(Debug)]
pub(super) enum Purpose {
    Register { name: String },
    Login,
    Passwd { account: String },
    Sasl,
}

/// A logged-in client.
#[derive(Debug)]
struct Session {
    /// The account's name as registered.
    account: String,
    /// The token it logged in with, revoked by `:logout`.
    token: Option<Digest>,
}

/// The chat's side of accounts: the store, who is logged in, the jobs in
/// flight.
#[derive(Debug)]
pub(super) struct AccountsSide {
    pub(super) store: Accounts,
    sessions: HashMap<ClientId, Session>,
    /// Lower-cased account name to the client logged in to it.
    by_account: HashMap<String, ClientId>,
    pending: HashMap<u64, Pending>,
    jobs: Vec<AccountJob>,
    next_ticket: u64,
    /// Clients that lost their login to another connection: the server
    /// closes them.
    taken_over: Vec<ClientId>,
    /// Lower-cased names of the server administrators.
    admins: Vec<String>,
    /// The keys each account published (`:key`), in memory only.
    pub(super) keys: crate::chat::keys::KeyDirectory,
    /// Accounts a SASL exchange verified for connections not yet in the
    /// chat: they are logged in when they arrive ([`Chat::sasl_log_in`]).
    pub(super) sasl: HashMap<ClientId, String>,
}

impl AccountsSide {
    pub(super) fn new(mut store: Accounts) -> Self {
        let mut keys = crate::chat::keys::KeyDirectory::new();
        for (account, published) in store.take_loaded_keys() {
            for key in published {
                keys.publish(&account, &key);
            }
        }
        AccountsSide {
            store,
            sessions: HashMap::new(),
            by_account: HashMap::new(),
            pending: HashMap::new(),
            jobs: Vec::new(),
            next_ticket: 1,
            taken_over: Vec::new(),
            admins: Vec::new(),
            keys,
            sasl: HashMap::new(),
        }
    }

    /// The account client `id` is logged in to, as registered.
    pub(super) fn account(&self, id: ClientId) -> Option<&str> {
        self.sessions
            .get(&id)
            .map(|session| session.account.as_str())
    }
}

/// A token's lifetime is counted in Unix seconds.
fn now() -> i64 {
    unix_now_ms() / 1000
}

impl Chat {
    /// Uses `accounts` (loaded from the history file, say).
    pub fn with_accounts(mut self, accounts: Accounts) -> Self {
        self.accounts = AccountsSide::new(accounts);
        self
    }

    /// Makes the accounts named in `admins` (`--admin`) server
    /// administrators while logged in: operators of every room they are
    /// in, whose `:kick` and `:ban` work in every room.
    pub fn with_admins(mut self, admins: &[String]) -> Self {
        self.accounts.admins = admins.iter().map(|a| a.to_ascii_lowercase()).collect();
        self
    }

    /// Whether client `id` is logged in to an administrator's account.
    pub fn is_admin(&self, id: ClientId) -> bool {
        self.account_of(id)
            .is_some_and(|account| self.accounts.admins.contains(&account.to_ascii_lowercase()))
    }

    /// The accounts.
    pub fn accounts(&self) -> &Accounts {
        &self.accounts.store
    }

    /// An account change another server of the cluster made: applied
    /// here (accounts, tokens, the key directory). Returns whether it
    /// changed anything (then it goes to this server's file too).
    pub fn remote_account_write(&mut self, write: &crate::accounts::persist::AccountWrite) -> bool {
        let changed = self.accounts.store.apply_remote(write);
        if let crate::accounts::persist::AccountWrite::PutKeys { key, keys } = write {
            if changed {
                self.accounts.keys.replace(key, keys);
            }
        }
        changed
    }

    /// The accounts, to take their writes for the history file.
    pub fn accounts_mut(&mut self) -> &mut Accounts {
        &mut self.accounts.store
    }

    /// The account client `id` is logged in to, as registered.
    pub fn account_of(&self, id: ClientId) -> Option<&str> {
        self.accounts.account(id)
    }

    /// Clients logged in.
    pub fn logged_in(&self) -> usize {
        self.accounts.sessions.len()
    }

    /// The jobs commands left for the hashing worker since the last call.
    pub fn take_account_jobs(&mut self) -> Vec<AccountJob> {
        std::mem::take(&mut self.accounts.jobs)
    }

    /// The client waiting for job `ticket`, unless it left.
    pub fn account_job_client(&self, ticket: u64) -> Option<ClientId> {
        self.accounts
            .pending
            .get(&ticket)
            .map(|pending| pending.client)
    }

    /// Whether the job `ticket` still has someone waiting for it (its
    /// client has not left).
    pub fn account_job_wanted(&self, ticket: u64) -> bool {
        self.accounts.pending.contains_key(&ticket)
    }

    /// Clients that lost their login to another connection since the last
    /// call: told, and out of the chat; the server closes them.
    pub fn take_taken_over(&mut self) -> Vec<ClientId> {
        std::mem::take(&mut self.accounts.taken_over)
    }

    /// The worker's queue was full: the job's client is answered
    /// `! server busy`. Returns the client, whose input may go on.
    pub fn account_job_refused(&mut self, ticket: u64, out: &mut impl Outbox) -> Option<ClientId> {
        let pending = self.accounts.pending.remove(&ticket)?;
        out.reply(pending.client, &Error::ServerBusy.into());
        Some(pending.client)
    }

    /// A job came back from the worker: the command's answer. `None` when
    /// its client left meanwhile.
    pub fn account_job_done(
        &mut self,
        finished: Finished,
        out: &mut impl Outbox,
    ) -> Option<JobDone> {
        let pending = self.accounts.pending.remove(&finished.ticket)?;
        let id = pending.client;
        let (kind, ok) = match (pending.what, finished.result) {
            (Purpose::Register { name }, JobResult::Hashed(Some(phc))) => {
                let ok = self.accounts.store.register(&name, phc, now()).is_ok();
                if ok {
                    self.log_in(id, &name, None, out);
                    out.note(ChatEvent::Registered);
                    out.reply(id, &Reply::Registered { name: &name }.into());
                } else {
                    out.reply(id, &Error::AlreadyRegistered(&name).into());
                }
                (JobKind::Register, ok)
            }
            (Purpose::Register { .. }, _) => {
                out.reply(id, &Error::ServerBusy.into());
                (JobKind::Register, false)
            }
            (Purpose::Login, JobResult::Verified { ok: true, rehashed }) => {
                let name = pending
                    .throttle
                    .as_deref()
                    .and_then(|key| self.accounts.store.name(key))
                    .map(str::to_string);
                match name {
                    Some(name) => {
                        if let Some(phc) = rehashed {
                            self.accounts.store.rehash(&name, phc);
                        }
                        self.log_in(id, &name, None, out);
                        out.note(ChatEvent::Login {
                            token: false,
                            ok: true,
                        });
                        out.reply(id, &Reply::LoggedIn { name: &name }.into());
                        (JobKind::Login, true)
                    }
                    None => {
                        out.note(ChatEvent::Login {
                            token: false,
                            ok: false,
                        });
                        out.reply(id, &Error::LoginFailed.into());
                        (JobKind::Login, false)
                    }
                }
            }
            (Purpose::Login, _) => {
                out.note(ChatEvent::Login {
                    token: false,
                    ok: false,
                });
                out.reply(id, &Error::LoginFailed.into());
                (JobKind::Login, false)
            }
            (Purpose::Passwd { account }, JobResult::Changed(Some(phc))) => {
                self.accounts.store.change_password(&account, phc);
                if let Some(session) = self.accounts.sessions.get_mut(&id) {
                    session.token = None;
                }
                out.reply(id, &Reply::PasswordChanged.into());
                (JobKind::Passwd, true)
            }
            (Purpose::Sasl, JobResult::Verified { ok: true, rehashed }) => {
                let name = pending
                    .throttle
                    .as_deref()
                    .and_then(|key| self.accounts.store.name(key))
                    .map(str::to_string);
                out.note(ChatEvent::Login {
                    token: false,
                    ok: name.is_some(),
                });
                match name {
                    Some(name) => {
                        if let Some(phc) = rehashed {
                            self.accounts.store.rehash(&name, phc);
                        }
                        if self.nick(id).is_some() {
                            self.log_in(id, &name, None, out);
                        } else {
                            self.accounts.sasl.insert(id, name);
                        }
                        (JobKind::Sasl, true)
                    }
                    None => (JobKind::Sasl, false),
                }
            }
            (Purpose::Sasl, _) => {
                out.note(ChatEvent::Login {
                    token: false,
                    ok: false,
                });
                (JobKind::Sasl, false)
            }
            (Purpose::Passwd { .. }, _) => {
                out.note(ChatEvent::Login {
                    token: false,
                    ok: false,
                });
                out.reply(id, &Error::LoginFailed.into());
                (JobKind::Passwd, false)
            }
        };
        Some(JobDone {
            client: id,
            throttle: pending.throttle,
            kind,
            ok,
        })
    }

    /// Runs an account command of a welcomed client.
    pub(super) fn account_command(
        &mut self,
        id: ClientId,
        command: protocol::Command<'_>,
        out: &mut impl Outbox,
    ) -> Outcome {
        use protocol::Command;
        match command {
            Command::Register(password) => return self.register(id, password, out),
            Command::Login { name, password } => {
                let key = if protocol::is_valid_name(name) {
                    name.to_ascii_lowercase()
                } else {
                    // Every name that cannot exist shares one throttle.
                    String::new()
                };
                let job = Job::Verify {
                    phc: self.accounts.store.password_hash(&key).map(str::to_string),
                    password: password.to_string(),
                };
                return self.queue_job(id, Some(key), Purpose::Login, job);
            }
            Command::Passwd { old, new } => {
                let Some(session) = self.accounts.sessions.get(&id) else {
                    out.reply(id, &Error::LogInFirst.into());
                    return Outcome::CONTINUE;
                };
                let account = session.account.clone();
                if let Err(bounds) = self.accounts.store.check_password(new) {
                    let (min, max) = (bounds.min, bounds.max);
                    out.reply(id, &Error::PasswordBounds { min, max }.into());
                    return Outcome::CONTINUE;
                }
                let Some(phc) = self.accounts.store.password_hash(&account) else {
                    out.reply(id, &Error::LoginFailed.into());
                    return Outcome::CONTINUE;
                };
                let job = Job::Change {
                    phc: phc.to_string(),
                    old: old.to_string(),
                    new: new.to_string(),
                };
                let throttle = Some(account.to_ascii_lowercase());
                return self.queue_job(id, throttle, Purpose::Passwd { account }, job);
            }
            Command::Token => match self.accounts.sessions.get(&id) {
                None => out.reply(id, &Error::LogInFirst.into()),
                Some(session) => {
                    let account = session.account.clone();
                    match self.accounts.store.issue_token(&account, now()) {
                        Some((token, _)) => {
                            out.note(ChatEvent::TokenIssued);
                            out.reply(id, &Reply::Token { token: &token }.into())
                        }
                        None => out.reply(id, &Error::ServerBusy.into()),
                    }
                }
            },
            Command::Resume(token) => {
                let resumed = self.accounts.store.resume(token, now());
                out.note(ChatEvent::Login {
                    token: true,
                    ok: resumed.is_some(),
                });
                match resumed {
                    Some((name, digest)) => {
                        self.log_in(id, &name, Some(digest), out);
                        out.reply(id, &Reply::LoggedIn { name: &name }.into());
                    }
                    None => out.reply(id, &Error::LoginFailed.into()),
                }
            }
            Command::Logout => match self.accounts.sessions.remove(&id) {
                None => out.reply(id, &Error::LogInFirst.into()),
                Some(session) => {
                    let key = session.account.to_ascii_lowercase();
                    if self.accounts.by_account.get(&key) == Some(&id) {
                        self.accounts.by_account.remove(&key);
                    }
                    if let Some(digest) = session.token {
                        self.accounts.store.revoke(&digest);
                    }
                    self.rooms.set_admin(id, false);
                    out.reply(id, &Reply::LoggedOut.into());
                    let guest = self.new_guest_nick();
                    self.rename(id, &guest, out);
                }
            },
            Command::Whois(nick) => {
                let Some(&who) = self.nicks.get(&nick.to_ascii_lowercase()) else {
                    self.whois_remote(id, nick, out);
                    return Outcome::CONTINUE;
                };
                let Some(Some(Member::Joined(joined))) = self.members.get(who) else {
                    out.reply(id, &Error::NoSuchUser(nick).into());
                    return Outcome::CONTINUE;
                };
                let mut rooms: Vec<&str> = self
                    .rooms
                    .rooms_of(who)
                    .filter_map(|room| self.rooms.get(room).map(|room| room.name()))
                    .collect();
                rooms.sort_by_cached_key(|name| name.to_ascii_lowercase());
                let account = self.account_of(who);
                let reply = Reply::Whois {
                    nick: &joined.nick,
                    account,
                    rooms,
                };
                out.reply(id, &reply.into());
            }
            _ => {}
        }
        Outcome::CONTINUE
    }

    /// `:whois` of a nick no client here holds: another server's member
    /// (with `--cluster`, [`Chat::remote_whois`]), or `! no such user`.
    fn whois_remote(&mut self, id: ClientId, nick: &str, out: &mut impl Outbox) {
        let Some(found) = self.remote_whois(nick) else {
            out.reply(id, &Error::NoSuchUser(nick).into());
            return;
        };
        let rooms = found.rooms.iter().map(|(room, _)| room.as_str()).collect();
        let reply = Reply::Whois {
            nick: &found.nick,
            account: found.account.as_deref(),
            rooms,
        };
        out.reply(id, &reply.into());
    }

    /// What `:whois` (and IRC's `WHOIS`) tells of `nick` when another
    /// server's client holds it: its rooms as the cluster mirrors them
    /// (sorted, each with whether it is an operator there), and its
    /// account, which is its nick's when that is a registered account
    /// (only a client logged in to an account may hold its name, and a
    /// logged-in client keeps it); otherwise it is a guest. `None` when
    /// no other server's client holds it.
    pub fn remote_whois(&self, nick: &str) -> Option<RemoteWhois> {
        let remote = &self.shared.as_ref()?.remote;
        let member = remote.member(nick)?;
        let mut rooms: Vec<(String, bool)> = member
            .rooms
            .iter()
            .map(|key| {
                let name = self
                    .rooms
                    .find(key)
                    .and_then(|room| self.rooms.get(room))
                    .map(|room| room.name())
                    .or_else(|| remote.room_name(key))
                    .unwrap_or(key);
                (name.to_string(), member.ops.contains(key))
            })
            .collect();
        rooms.sort_by_cached_key(|(name, _)| name.to_ascii_lowercase());
        Some(RemoteWhois {
            nick: member.nick.clone(),
            account: self.accounts.store.name(&member.nick).map(str::to_string),
            rooms,
        })
    }

    fn register(&mut self, id: ClientId, password: &str, out: &mut impl Outbox) -> Outcome {
        let Some(nick) = self.nick(id).map(str::to_string) else {
            return Outcome::CONTINUE;
        };
        if protocol::is_guest_nick(&nick) {
            out.reply(id, &Error::GuestCannotRegister.into());
            return Outcome::CONTINUE;
        }
        let pending_same = self.accounts.pending.values().any(|pending| {
            matches!(&pending.what, Purpose::Register { name } if name.eq_ignore_ascii_case(&nick))
        });
        if self.accounts.store.is_registered(&nick) || pending_same {
            out.reply(id, &Error::AlreadyRegistered(&nick).into());
            return Outcome::CONTINUE;
        }
        if let Err(bounds) = self.accounts.store.check_password(password) {
            let (min, max) = (bounds.min, bounds.max);
            out.reply(id, &Error::PasswordBounds { min, max }.into());
            return Outcome::CONTINUE;
        }
        let job = Job::Hash {
            password: password.to_string(),
        };
        self.queue_job(id, None, Purpose::Register { name: nick }, job)
    }

    pub(super) fn queue_job(
        &mut self,
        id: ClientId,
        throttle: Option<String>,
        what: Purpose,
        job: Job,
    ) -> Outcome {
        let ticket = self.accounts.next_ticket;
        self.accounts.next_ticket += 1;
        self.accounts.pending.insert(
            ticket,
            Pending {
                client: id,
                throttle: throttle.clone(),
                what,
            },
        );
        self.accounts.jobs.push(AccountJob {
            ticket,
            client: id,
            throttle,
            job,
        });
        Outcome {
            waits_for: Some(Awaited::Password),
            ..Outcome::CONTINUE
        }
    }

    /// A client of another server logged in to account `name`, whose nick
    /// (the account's name) a client here holds, logged in to it: this
    /// one is told and leaves, as on a login here (`* logged in
    /// elsewhere`; then [`Chat::take_taken_over`]). `false` when no such
    /// client is here.
    pub fn logged_in_elsewhere(&mut self, name: &str, out: &mut impl Outbox) -> bool {
        let key = name.to_ascii_lowercase();
        let Some(&other) = self.accounts.by_account.get(&key) else {
            return false;
        };
        if self
            .nick(other)
            .is_none_or(|nick| !nick.eq_ignore_ascii_case(name))
        {
            return false;
        }
        self.take_over(other, out);
        true
    }

    /// Client `other`'s login was taken over by another connection: it is
    /// told and leaves (closed by the server, [`Chat::take_taken_over`]).
    fn take_over(&mut self, other: ClientId, out: &mut impl Outbox) {
        self.accounts.sessions.remove(&other);
        out.deliver(other, &Reply::LoggedInElsewhere.into());
        self.disconnect(other, Some("logged in elsewhere"), out);
        self.accounts.taken_over.push(other);
    }

    /// Logs client `id` in to account `name` (as registered): a connection
    /// logged in to it already is told and leaves, whoever else holds the
    /// name gets a guest nick, and `id` takes the name (unless it has it
    /// in another letter case).
    pub(super) fn log_in(
        &mut self,
        id: ClientId,
        name: &str,
        token: Option<Digest>,
        out: &mut impl Outbox,
    ) {
        let key = name.to_ascii_lowercase();
        if let Some(&other) = self.accounts.by_account.get(&key) {
            if other != id {
                self.take_over(other, out);
            }
        }
        if let Some(&holder) = self.nicks.get(&key) {
            if holder != id {
                let guest = self.new_guest_nick();
                self.rename(holder, &guest, out);
            }
        }
        let has_name = self
            .nick(id)
            .is_some_and(|nick| nick.eq_ignore_ascii_case(name));
        if !has_name {
            self.rename(id, name, out);
        }
        if let Some(old) = self.accounts.sessions.insert(
            id,
            Session {
                account: name.to_string(),
                token,
            },
        ) {
            let old_key = old.account.to_ascii_lowercase();
            if old_key != key && self.accounts.by_account.get(&old_key) == Some(&id) {
                self.accounts.by_account.remove(&old_key);
            }
        }
        let admin = self.accounts.admins.contains(&key);
        self.accounts.by_account.insert(key, id);
        self.rooms.set_admin(id, admin);
    }

    /// The refusal for client `id` taking nick `name` under the account
    /// rules, if any.
    pub(super) fn refuse_nick(&self, id: ClientId, name: &str, out: &mut impl Outbox) -> bool {
        if let Some(account) = self.account_of(id) {
            if !account.eq_ignore_ascii_case(name) {
                out.reply(id, &Error::LoggedInAs(account).into());
                return true;
            }
            return false;
        }
        if self.accounts.store.is_registered(name) {
            out.reply(id, &Error::NickRegistered(name).into());
            return true;
        }
        false
    }

    /// Client `id` leaves the chat: its login ends and its jobs are
    /// forgotten.
    pub(super) fn accounts_forget(&mut self, id: ClientId) {
        if let Some(session) = self.accounts.sessions.remove(&id) {
            let key = session.account.to_ascii_lowercase();
            if self.accounts.by_account.get(&key) == Some(&id) {
                self.accounts.by_account.remove(&key);
            }
        }
        self.accounts.sasl.remove(&id);
        self.accounts
            .pending
            .retain(|_, pending| pending.client != id);
        self.accounts.jobs.retain(|job| job.client != id);
    }
}

/// Another server's client as `:whois` shows it ([`Chat::remote_whois`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteWhois {
    /// The nick as its holder spells it.
    pub nick: String,
    /// The account it is logged in to, if any.
    pub account: Option<String>,
    /// Its rooms as spelled, sorted, each with whether it is an operator
    /// there.
    pub rooms: Vec<(String, bool)>,
}
