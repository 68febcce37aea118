//! SASL in the chat state (IRC `AUTHENTICATE`, `docs/irc.md`): the
//! credentials are checked by the hashing worker like a `:login`'s, for a
//! connection that may not be in the chat yet; the account it proves is
//! logged in when the connection arrives. The IRC numerics are the
//! server's business.

use super::accounts::Purpose;
use super::{Chat, ClientId, Outbox, Outcome};
use crate::accounts::worker::Job;
use crate::protocol;

impl Chat {
    /// Checks `name` and `password` for connection `id` (SASL `PLAIN`),
    /// whether it is in the chat yet or not: a job like `:login`'s, under
    /// the same throttle; its result comes to [`Chat::account_job_done`]
    /// as [`JobKind::Sasl`], which logs a member in at once and keeps the
    /// account of one not yet in the chat for [`Chat::sasl_log_in`].
    /// Nothing is answered here: IRC's numerics are the server's.
    pub fn sasl_verify(&mut self, id: ClientId, name: &str, password: &str) -> Outcome {
        let key = if protocol::is_valid_name(name) {
            name.to_ascii_lowercase()
        } else {
            String::new()
        };
        let job = Job::Verify {
            phc: self.accounts.store.password_hash(&key).map(str::to_string),
            password: password.to_string(),
        };
        self.queue_job(id, Some(key), Purpose::Sasl, job)
    }

    /// The account connection `id` is logged in to, or that SASL verified
    /// for it before it entered the chat.
    pub fn sasl_account(&self, id: ClientId) -> Option<&str> {
        self.account_of(id)
            .or_else(|| self.accounts.sasl.get(&id).map(String::as_str))
    }

    /// Connection `id` has just entered the chat: logs it in to the
    /// account SASL verified for it, if any (it takes the account's name
    /// as its nick, as `:login` does). Returns the account.
    pub fn sasl_log_in(&mut self, id: ClientId, out: &mut impl Outbox) -> Option<String> {
        let name = self.accounts.sasl.remove(&id)?;
        self.nick(id)?;
        self.log_in(id, &name, None, out);
        Some(name)
    }
}
