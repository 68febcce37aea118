//! `:key`, `:keys` and `:e2e` (protocol 1.2, end-to-end encrypted private
//! messages): the chat's side of the key directory ([`crate::chat::keys`])
//! and the opaque relay. A payload goes to the recipient's connection
//! unchanged and nowhere else: not to history, not to the log. Keys are
//! stored with the account (`account_keys` in the history file).

use super::{Chat, ClientId, Member, Outbox};
use crate::chat::keys;
use crate::protocol::{self, Error, Event, Reply};

impl Chat {
    /// `:key KEY`: publishes a key of the sender's device for its account.
    pub(super) fn publish_key(&mut self, id: ClientId, key: &str, out: &mut impl Outbox) {
        let Some(account) = self.account_of(id).map(str::to_string) else {
            return out.reply(id, &Error::LogInFirst.into());
        };
        if !keys::is_key(key) {
            return out.reply(id, &Error::InvalidKey.into());
        }
        self.accounts.keys.publish(&account, key);
        // Stored with the account, in the history writer's next batch.
        let now = self.accounts.keys.keys(&account);
        let now = now.into_iter().map(str::to_string).collect();
        self.accounts_mut().put_keys(&account, now);
        out.reply(id, &Reply::KeyPublished.into());
    }

    /// `:keys NICK`: the keys account NICK published, oldest first.
    pub(super) fn list_keys(&mut self, id: ClientId, name: &str, out: &mut impl Outbox) {
        if !protocol::is_valid_name(name) {
            return out.reply(id, &Error::InvalidName(name).into());
        }
        let reply = Reply::Keys {
            name,
            keys: self.accounts.keys.keys(name),
        };
        out.reply(id, &reply.into());
    }

    /// `:e2e NICK PAYLOAD`: relays PAYLOAD, unchanged, to NICK's
    /// connection; both must be logged in.
    pub(super) fn relay_e2e(
        &mut self,
        id: ClientId,
        to: &str,
        payload: &str,
        out: &mut impl Outbox,
    ) {
        if self.account_of(id).is_none() {
            return out.reply(id, &Error::LogInFirst.into());
        }
        if !keys::is_payload(payload) {
            return out.reply(id, &Error::Usage(protocol::E2E_USAGE).into());
        }
        let Some(&recipient) = self.nicks.get(&to.to_ascii_lowercase()) else {
            return out.reply(id, &Error::NoSuchUser(to).into());
        };
        let (Some(Some(Member::Joined(me))), Some(Some(Member::Joined(them)))) =
            (self.members.get(id), self.members.get(recipient))
        else {
            return out.reply(id, &Error::NoSuchUser(to).into());
        };
        if self.accounts.account(recipient).is_none() {
            return out.reply(id, &Error::NotLoggedIn(&them.nick).into());
        }
        let line = Event::E2e {
            from: &me.nick,
            payload,
        };
        out.deliver(recipient, &line.into());
    }
}

impl Chat {
    /// An `:e2e` from `from` on another server for `to` here, relayed as
    /// [`Chat::relay_e2e`] would (only to a recipient logged in). `false`
    /// when no one here may take it (gone, or not logged in).
    pub fn deliver_e2e(
        &mut self,
        from: &str,
        to: &str,
        payload: &str,
        out: &mut impl Outbox,
    ) -> bool {
        let Some(&recipient) = self.nicks.get(&to.to_ascii_lowercase()) else {
            return false;
        };
        if self.accounts.account(recipient).is_none() || !keys::is_payload(payload) {
            return false;
        }
        out.deliver(recipient, &Event::E2e { from, payload }.into());
        true
    }
}
