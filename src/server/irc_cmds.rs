//! A registered IRC client's commands (`docs/irc.md`), mapped onto the
//! line protocol's typed commands wherever the chat has one, so they run
//! exactly as a line client's do (the cluster included): a channel
//! message is a chat line in that room, `NICK` is `:nick`, `JOIN` is
//! `:join` then `:users`, `TOPIC`, `KICK` and `MODE +o/-o/+b/-b` are the
//! operators' commands in the channel named. The line protocol's room
//! commands act on the client's current room: the channel an IRC command
//! names is made current first (silently; IRC has no current channel, and
//! its rendering is the same for every room). What IRC has and the line
//! protocol has not (`WHO`, `ISON`, `USERHOST`, `AWAY`, user modes) is
//! answered here from the chat's read-only views.

use super::EventLoop;
use crate::chat::ClientId;
use crate::chat::IrcChannel;
use crate::protocol::irc::command::{self, Command as Irc};
use crate::protocol::irc::mask::{banned_nick, nickmask};
use crate::protocol::irc::message::Params;
use crate::protocol::irc::{burst, numeric, replies, Cap, Message, Numeric};
use crate::protocol::Command;

impl EventLoop {
    /// Runs one command of a registered IRC client.
    pub(super) fn run_irc_command(&mut self, id: ClientId, message: &Message<'_>) {
        if message.is("CHATHISTORY") {
            return self.irc_chathistory(id, message);
        }
        if message.is("TAGMSG") {
            // Client-only tags (`+typing`…) are not relayed: a tags-only
            // message is dropped, never refused (clients send them freely
            // once they have `message-tags`).
            return;
        }
        match command::parse(message) {
            Irc::Message {
                targets,
                text,
                notice,
            } => {
                for target in command::list(targets) {
                    self.irc_message(id, target, text, false, notice);
                }
            }
            Irc::Action { targets, text } => {
                for target in command::list(targets) {
                    self.irc_message(id, target, text, true, false);
                }
            }
            Irc::Ctcp => {}
            Irc::Join { channels } => {
                for channel in command::list(channels) {
                    self.irc_join(id, channel);
                }
            }
            Irc::PartAll => {
                for (room, _) in self.chat.rooms_of_member(id) {
                    let part = Command::Part {
                        room: Some(&room),
                        reason: None,
                    };
                    self.run_command(id, ":part", part, None);
                }
            }
            Irc::Part { channels, reason } => {
                for channel in command::list(channels) {
                    if self.irc_channel_member(id, channel) {
                        let part = Command::Part {
                            room: Some(channel),
                            reason,
                        };
                        self.run_command(id, ":part", part, None);
                    }
                }
            }
            Irc::Nick(nick) => self.run_command(id, ":nick", Command::Nick(nick), None),
            Irc::Topic { channel, topic } => self.irc_topic(id, channel, topic),
            Irc::Names(channels) => self.irc_names(id, channels),
            // With --cluster the cluster knows every server's rooms.
            Irc::List(_) if !self.cluster.is_single() => {
                self.run_command(id, ":rooms", Command::Rooms, None)
            }
            Irc::List(_) => self.irc_list(id),
            Irc::Who(mask) => self.irc_who(id, mask),
            Irc::Whois(nick) => self.irc_whois(id, nick),
            Irc::Mode { target, changes } => self.irc_mode(id, target, changes),
            Irc::Kick {
                channel,
                nick,
                reason,
            } => {
                for nick in command::list(nick) {
                    if self.irc_enter_channel(id, channel) {
                        let kick = Command::Kick { nick, reason };
                        self.run_command(id, ":kick", kick, None);
                    }
                }
            }
            Irc::Away(text) => {
                if let Some(irc) = self.irc_state(id) {
                    irc.away = text.map(str::to_string);
                }
                let numeric = match text {
                    Some(_) => Numeric::NowAway,
                    None => Numeric::UnAway,
                };
                self.irc_numeric(id, numeric, &[], None);
            }
            Irc::Ison(nicks) => {
                let online: Vec<&str> = words(&nicks)
                    .filter_map(|nick| self.chat.find_nick(nick).map(|(_, spelled)| spelled))
                    .collect();
                let text = online.join(" ");
                self.irc_numeric(id, Numeric::IsOn, &[], Some(&text));
            }
            Irc::Userhost(nicks) => {
                let server = &self.config.server_name;
                let found: Vec<String> = words(&nicks)
                    .take(5)
                    .filter_map(|nick| {
                        let (who, spelled) = self.chat.find_nick(nick)?;
                        let away = if self.irc_away(who).is_some() {
                            '-'
                        } else {
                            '+'
                        };
                        Some(format!("{spelled}={away}{spelled}@{server}"))
                    })
                    .collect();
                let text = found.join(" ");
                self.irc_numeric(id, Numeric::UserHost, &[], Some(&text));
            }
            Irc::Oper { name, password } => self.irc_oper(id, name, password),
            Irc::Motd => self.irc_motd(id),
            Irc::Lusers => {
                let nick = self.irc_nick(id);
                let counts = self.irc_lusers();
                let mut out = Vec::new();
                burst::write_lusers(&mut out, &self.config.server_name, &nick, counts);
                self.irc_send(id, &out);
            }
            Irc::Refused(refusal) => {
                let nick = self.irc_nick(id);
                let mut out = Vec::new();
                refusal.write(&self.config.server_name, &nick, &mut out);
                self.irc_send(id, &out);
            }
        }
    }

    /// The IRC state of connection `id`.
    fn irc_state(&mut self, id: ClientId) -> Option<&mut crate::net::irc::IrcState> {
        self.clients.irc_mut(id)
    }

    /// The away message of client `who`, when it is an IRC client that set
    /// one.
    fn irc_away(&self, who: ClientId) -> Option<String> {
        self.clients
            .conns
            .get(who)
            .and_then(|c| c.irc.as_ref())
            .and_then(|irc| irc.away.clone())
    }

    /// Whether `id` is in `channel`; if not, says why (`403` for no such
    /// channel, `442` for one it is not in).
    fn irc_channel_member(&mut self, id: ClientId, channel: &str) -> bool {
        let member =
            command::room_name(channel).and_then(|_| self.chat.irc_membership(id, channel));
        match member {
            None => self.irc_numeric(id, Numeric::NoSuchChannel, &[channel], None),
            Some(false) => self.irc_numeric(id, Numeric::NotOnChannel, &[channel], None),
            Some(true) => return true,
        }
        false
    }

    /// [`Self::irc_channel_member`], and the channel made `id`'s current
    /// room, for a line-protocol command that acts on it.
    fn irc_enter_channel(&mut self, id: ClientId, channel: &str) -> bool {
        self.irc_channel_member(id, channel) && self.chat.make_current(id, channel)
    }

    /// `PRIVMSG`/`NOTICE` (or an action) to one target: a chat line in a
    /// channel the sender is in, or a private message to a nick. A
    /// `NOTICE` is never answered with an error.
    fn irc_message(&mut self, id: ClientId, target: &str, text: &str, action: bool, notice: bool) {
        if target.starts_with('#') {
            let member = self.chat.irc_membership(id, target);
            match member {
                Some(true) if self.chat.make_current(id, target) => {
                    let command = if action {
                        Command::Me(text)
                    } else {
                        Command::Chat(text)
                    };
                    self.run_command(id, ":say", command, None);
                }
                _ if notice => {}
                None => self.irc_numeric(id, Numeric::NoSuchNick, &[target], None),
                Some(_) => self.irc_numeric(id, Numeric::CannotSendToChan, &[target], None),
            }
            return;
        }
        let local = self
            .chat
            .find_nick(target)
            .map(|(to, spelled)| (to, spelled.to_string()));
        if local.is_none() && self.cluster.is_single() {
            // (With --cluster the nick may be another server's: the
            // cluster answers `401` for nobody.)
            if !notice {
                self.irc_numeric(id, Numeric::NoSuchNick, &[target], None);
            }
            return;
        }
        // The line protocol has no private action: it is sent as text.
        let acted;
        let text = if action {
            acted = format!("* {} {text}", self.irc_nick(id));
            acted.as_str()
        } else {
            text
        };
        let command = Command::PrivateMessage { to: target, text };
        self.run_command(id, ":pm", command, None);
        if let Some((to, spelled)) = local.filter(|_| !notice) {
            if let Some(away) = self.irc_away(to) {
                self.irc_numeric(id, Numeric::Away, &[&spelled], Some(&away));
            }
        }
    }

    /// `JOIN` of one channel: `:join`, then the channel's names (`353`,
    /// `366`) once the client is in it (the chat has sent the `JOIN` and
    /// the topic). A channel the client is in already is ignored.
    fn irc_join(&mut self, id: ClientId, channel: &str) {
        if command::room_name(channel).is_none() {
            return self.irc_numeric(id, Numeric::NoSuchChannel, &[channel], None);
        }
        let was_member = self.chat.irc_membership(id, channel) == Some(true);
        if was_member {
            return;
        }
        self.run_command(id, ":join", Command::Join(channel), None);
        let member = self.chat.irc_membership(id, channel) == Some(true);
        if member && self.irc_userhost_in_names(id) {
            if let Some(found) = self.chat.irc_channel(id, channel) {
                self.irc_write_names(id, &found);
            }
        } else if member {
            self.run_command(id, ":users", Command::Users(Some(channel)), None);
        }
    }

    /// Whether client `id` asked for `userhost-in-names`.
    fn irc_userhost_in_names(&self, id: ClientId) -> bool {
        self.clients
            .conns
            .get(id)
            .and_then(|c| c.irc.as_ref())
            .is_some_and(|irc| irc.registration.caps().contains(Cap::UserhostInNames))
    }

    /// `353`s and `366` of `found` written here (a channel one is not in,
    /// or any channel for a client with `userhost-in-names`, whose names
    /// are full masks).
    fn irc_write_names(&mut self, id: ClientId, found: &IrcChannel) {
        let nick = self.irc_nick(id);
        let server = &self.config.server_name;
        let masks = self.irc_userhost_in_names(id);
        let names: Vec<String> = found
            .members
            .iter()
            .map(|(nick, op)| {
                let prefix = if *op { "@" } else { "" };
                if masks {
                    format!("{prefix}{}", nickmask(nick, server))
                } else {
                    format!("{prefix}{nick}")
                }
            })
            .collect();
        let mut out = Vec::new();
        let names = names.iter().map(String::as_str);
        replies::write_names(&mut out, server, &nick, &found.name, names);
        self.irc_send(id, &out);
    }

    /// `TOPIC #channel [TEXT]`: the topic (`332`, or `331`), or set it (an
    /// empty text clears it), as `:topic` in that room.
    fn irc_topic(&mut self, id: ClientId, channel: &str, topic: Option<&str>) {
        if !self.irc_enter_channel(id, channel) {
            return;
        }
        let edit = match topic {
            None => None,
            Some("") => Some("-"),
            Some(text) => Some(text),
        };
        self.run_command(id, ":topic", Command::Topic(edit), None);
    }

    /// `NAMES [CHANNELS]`: each channel's members (`353`, `366`); just
    /// `366` for a channel that does not exist, or without channels.
    fn irc_names(&mut self, id: ClientId, channels: Option<&str>) {
        let Some(channels) = channels else {
            return self.irc_numeric(id, Numeric::EndOfNames, &["*"], None);
        };
        for channel in command::list(channels) {
            match self.chat.irc_channel(id, channel) {
                Some(found) if found.member && !self.irc_userhost_in_names(id) => {
                    let users = Command::Users(Some(channel));
                    self.run_command(id, ":users", users, None);
                }
                Some(found) => self.irc_write_names(id, &found),
                None => self.irc_numeric(id, Numeric::EndOfNames, &[channel], None),
            }
        }
    }

    /// `WHOIS NICK`: 311, 319 (channels, `@` where an operator), 312, 301
    /// when away, 330 when logged in, 318; 401 and 318 for nobody.
    fn irc_whois(&mut self, id: ClientId, nick: &str) {
        let (spelled, rooms, account, away) = match self.chat.find_nick(nick) {
            Some((who, spelled)) => (
                spelled.to_string(),
                self.chat.rooms_of_member(who),
                self.chat.account_of(who).map(str::to_string),
                self.irc_away(who),
            ),
            // Another server's client (`--cluster`): what the cluster
            // mirrors of it (its away message is its server's).
            None => match self.chat.remote_whois(nick) {
                Some(found) => (found.nick, found.rooms, found.account, None),
                None => {
                    self.irc_numeric(id, Numeric::NoSuchNick, &[nick], None);
                    return self.irc_numeric(id, Numeric::EndOfWhois, &[nick], None);
                }
            },
        };
        let me = self.irc_nick(id);
        let server = self.config.server_name.clone();
        let channels: Vec<String> = rooms
            .into_iter()
            .map(|(room, op)| if op { format!("@{room}") } else { room })
            .collect();
        let mut out = Vec::new();
        let s = spelled.as_str();
        let params = [s, s, server.as_str(), "*"];
        numeric::write(&mut out, &server, Numeric::WhoisUser, &me, &params, Some(s));
        if !channels.is_empty() {
            let list = channels.join(" ");
            numeric::write(
                &mut out,
                &server,
                Numeric::WhoisChannels,
                &me,
                &[s],
                Some(&list),
            );
        }
        let params = [s, server.as_str()];
        numeric::write(
            &mut out,
            &server,
            Numeric::WhoisServer,
            &me,
            &params,
            Some("loopchat"),
        );
        if let Some(away) = &away {
            numeric::write(&mut out, &server, Numeric::Away, &me, &[s], Some(away));
        }
        if let Some(account) = &account {
            // 330 RPL_WHOISACCOUNT is not in the numeric table.
            Message::new("330", &[&me, s, account, "is logged in as"])
                .from_source(&server)
                .with_trailing()
                .write(&mut out);
        }
        numeric::write(&mut out, &server, Numeric::EndOfWhois, &me, &[s], None);
        self.irc_send(id, &out);
    }

    /// `LIST`: 321, a 322 per room with members (its count and topic),
    /// 323.
    fn irc_list(&mut self, id: ClientId) {
        let nick = self.irc_nick(id);
        let server = self.config.server_name.clone();
        let mut out = Vec::new();
        Message::new("321", &[&nick, "Channel", "Users  Name"])
            .from_source(&server)
            .with_trailing()
            .write(&mut out);
        for (room, count, topic) in self.chat.irc_list() {
            let count = count.to_string();
            let topic = topic.unwrap_or_default();
            let params = [room.as_str(), count.as_str()];
            numeric::write(
                &mut out,
                &server,
                Numeric::List,
                &nick,
                &params,
                Some(&topic),
            );
        }
        numeric::write(&mut out, &server, Numeric::ListEnd, &nick, &[], None);
        self.irc_send(id, &out);
    }

    /// `WHO #channel` or `WHO nick`: a `352` per user, then `315`. With
    /// `--cluster`, other servers' clients too (as here: this server's
    /// name; never away, which stays on their server).
    fn irc_who(&mut self, id: ClientId, mask: Option<&str>) {
        let mask = mask.unwrap_or("*");
        // (channel, nick, operator, away)
        let mut rows: Vec<(String, String, bool, bool)> = Vec::new();
        if mask.starts_with('#') {
            if let Some(found) = self.chat.irc_channel(id, mask) {
                for (nick, op) in found.members {
                    let away = match self.chat.find_nick(&nick) {
                        Some((who, _)) => self.irc_away(who).is_some(),
                        None => false,
                    };
                    rows.push((found.name.clone(), nick, op, away));
                }
            }
        } else if let Some((who, spelled)) = self.chat.find_nick(mask) {
            let away = self.irc_away(who).is_some();
            rows.push(("*".to_string(), spelled.to_string(), false, away));
        } else if let Some(found) = self.chat.remote_whois(mask) {
            rows.push(("*".to_string(), found.nick, false, false));
        }
        let nick = self.irc_nick(id);
        let server = self.config.server_name.clone();
        let mut out = Vec::new();
        for (channel, who_nick, op, away) in rows {
            let mut flags = String::from(if away { "G" } else { "H" });
            if op {
                flags.push('@');
            }
            let params = [
                channel.as_str(),
                who_nick.as_str(),
                server.as_str(),
                server.as_str(),
                who_nick.as_str(),
                flags.as_str(),
            ];
            let text = format!("0 {who_nick}");
            numeric::write(
                &mut out,
                &server,
                Numeric::WhoReply,
                &nick,
                &params,
                Some(&text),
            );
        }
        numeric::write(&mut out, &server, Numeric::EndOfWho, &nick, &[mask], None);
        self.irc_send(id, &out);
    }

    /// `MODE`: a channel's modes (`324 +nt`), `+o/-o NICK`, `+b/-b
    /// NICK!*@*` (and `+b` alone: the ban list), `+n`/`+t` (always set);
    /// the client's own user modes (`+i`).
    fn irc_mode(&mut self, id: ClientId, target: &str, changes: Params<'_>) {
        if !target.starts_with('#') {
            return self.irc_user_mode(id, target, changes);
        }
        let changes = changes.as_slice();
        let Some(found) = self.chat.irc_channel(id, target) else {
            return self.irc_numeric(id, Numeric::NoSuchChannel, &[target], None);
        };
        let Some((modes, args)) = changes.split_first() else {
            return self.irc_numeric(id, Numeric::ChannelModeIs, &[&found.name, "+nt"], None);
        };
        let mut args = args.iter().copied();
        let mut adding = true;
        for mode in modes.chars() {
            match mode {
                '+' => adding = true,
                '-' => adding = false,
                'n' | 't' => {}
                'b' if adding && changes.len() == 1 => {
                    // The ban list, for any member (irssi asks on join).
                    let nick = self.irc_nick(id);
                    let server = self.config.server_name.clone();
                    let mut out = Vec::new();
                    for ban in &found.bans {
                        let mask = format!("{ban}!*@*");
                        let params = [found.name.as_str(), mask.as_str()];
                        numeric::write(&mut out, &server, Numeric::BanList, &nick, &params, None);
                    }
                    let params = [found.name.as_str()];
                    numeric::write(
                        &mut out,
                        &server,
                        Numeric::EndOfBanList,
                        &nick,
                        &params,
                        None,
                    );
                    self.irc_send(id, &out);
                }
                'o' | 'b' => {
                    let arg = args.next();
                    if !self.irc_enter_channel(id, target) {
                        return;
                    }
                    let command = match (mode, adding, arg) {
                        ('o', true, Some(nick)) => Command::Op(nick),
                        ('o', false, Some(nick)) => Command::Deop(nick),
                        ('b', _, None) => Command::Bans,
                        ('b', adding, Some(mask)) => {
                            let Some(nick) = banned_nick(mask) else {
                                // Only NICK!*@* masks: bans are by nick.
                                continue;
                            };
                            if adding {
                                Command::Ban(nick)
                            } else {
                                Command::Unban(nick)
                            }
                        }
                        _ => {
                            let command = "MODE";
                            self.irc_numeric(id, Numeric::NeedMoreParams, &[command], None);
                            continue;
                        }
                    };
                    self.run_command(id, ":mode", command, None);
                }
                other => {
                    let mut buf = [0; 4];
                    let other = other.encode_utf8(&mut buf);
                    self.irc_numeric(id, Numeric::UnknownMode, &[other], None);
                }
            }
        }
    }

    /// `MODE NICK [MODES]` for the client itself: `221` or `+i`/`-i`
    /// (anything else `501`); `502` for someone else's modes.
    fn irc_user_mode(&mut self, id: ClientId, target: &str, changes: Params<'_>) {
        let nick = self.irc_nick(id);
        if !target.eq_ignore_ascii_case(&nick) {
            if self.chat.find_nick(target).is_none() {
                return self.irc_numeric(id, Numeric::NoSuchNick, &[target], None);
            }
            return self.irc_numeric(id, Numeric::UsersDontMatch, &[], None);
        }
        let Some(modes) = changes.as_slice().first() else {
            let invisible = self.irc_state(id).is_some_and(|irc| irc.invisible);
            let modes = if invisible { "+i" } else { "+" };
            return self.irc_numeric(id, Numeric::UModeIs, &[modes], None);
        };
        let mut adding = true;
        let mut changed = String::new();
        let mut unknown = false;
        for mode in modes.chars() {
            match mode {
                '+' => adding = true,
                '-' => adding = false,
                'i' => {
                    if let Some(irc) = self.irc_state(id) {
                        if irc.invisible != adding {
                            irc.invisible = adding;
                            changed.push(if adding { '+' } else { '-' });
                            changed.push('i');
                        }
                    }
                }
                _ => unknown = true,
            }
        }
        if unknown {
            self.irc_numeric(id, Numeric::UModeUnknownFlag, &[], None);
        }
        if !changed.is_empty() {
            let source = crate::protocol::irc::mask::nickmask(&nick, &self.config.server_name);
            let mut out = Vec::new();
            Message::new("MODE", &[&nick, &changed])
                .from_source(&source)
                .with_trailing()
                .write(&mut out);
            self.irc_send(id, &out);
        }
    }

    /// `OPER NAME PASSWORD`: logs in to account NAME (`:login`, through
    /// the hashing worker); `381` once in when NAME administers the
    /// server, `491` when it does not, `464` for a wrong password.
    fn irc_oper(&mut self, id: ClientId, name: &str, password: &str) {
        if let Some(irc) = self.irc_state(id) {
            irc.oper = Some(name.to_string());
        }
        let login = Command::Login { name, password };
        self.run_command(id, ":login", login, None);
        let waiting = self.clients.conns.get(id).is_some_and(|c| c.account_wait);
        if !waiting {
            // Answered at once (already logged in, refused): no job to wait for.
            let ok = self
                .chat
                .account_of(id)
                .is_some_and(|account| account.eq_ignore_ascii_case(name));
            self.irc_oper_done(id, ok);
        }
    }
}

/// The nicks of `ISON`/`USERHOST` parameters (some clients send them as
/// one space-separated trailing parameter).
fn words<'a>(params: &'a Params<'a>) -> impl Iterator<Item = &'a str> {
    params
        .as_slice()
        .iter()
        .flat_map(|param| param.split(' '))
        .filter(|word| !word.is_empty())
}
