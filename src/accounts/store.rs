//! The accounts in memory: names and password hashes, tokens by digest,
//! loaded from the history file at start and changed only by the event
//! loop. Every change also becomes an [`AccountWrite`], which the loop
//! hands to the history writer with the turn's batch
//! ([`Accounts::take_writes`]); in memory-only mode they are dropped.
//!
//! Nothing here is slow: hashing happens on the worker
//! ([`super::worker`]); the store only keeps its results.

use super::persist::{AccountWrite, Loaded, StoredAccount, StoredToken};
use super::tokens::{self, Digest};
use super::AccountsConfig;
use std::collections::HashMap;

/// The longest password accepted, in bytes (the protocol's bound).
pub const MAX_PASSWORD_BYTES: usize = 256;

/// One account.
#[derive(Debug, Clone)]
struct Account {
    name: String,
    phc: String,
}

/// One live token.
#[derive(Debug, Clone)]
struct Token {
    /// The account's lower-cased name.
    account: String,
    /// Its last use, Unix seconds.
    last_used: i64,
}

/// A password outside the bounds in force: the error names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordBounds {
    /// The shortest allowed, in bytes.
    pub min: usize,
    /// The longest allowed, in bytes.
    pub max: usize,
}

/// The name has an account already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlreadyRegistered;

/// Every account of the server, and its tokens.
#[derive(Debug)]
pub struct Accounts {
    config: AccountsConfig,
    /// By lower-cased name.
    accounts: HashMap<String, Account>,
    /// By SHA-256 of the token.
    tokens: HashMap<Digest, Token>,
    /// Changes not yet handed to the history writer.
    writes: Vec<AccountWrite>,
    /// The published keys read from the file, until the chat takes them.
    loaded_keys: Vec<(String, Vec<String>)>,
}

impl Accounts {
    /// No accounts yet.
    pub fn new(config: AccountsConfig) -> Self {
        Accounts {
            config,
            accounts: HashMap::new(),
            tokens: HashMap::new(),
            writes: Vec::new(),
            loaded_keys: Vec::new(),
        }
    }

    /// The accounts and tokens read from the history file; tokens expired
    /// by `now` (Unix seconds) are left out, and their rows deleted with
    /// the first writes.
    pub fn load(config: AccountsConfig, loaded: Loaded, now: i64) -> Self {
        let mut accounts = Accounts::new(config);
        accounts.loaded_keys = loaded.keys;
        for account in loaded.accounts {
            accounts.accounts.insert(
                account.name.to_ascii_lowercase(),
                Account {
                    name: account.name,
                    phc: account.phc,
                },
            );
        }
        for token in loaded.tokens {
            if accounts.accounts.contains_key(&token.account)
                && !accounts.expired(token.last_used, now)
            {
                accounts.tokens.insert(
                    token.digest,
                    Token {
                        account: token.account,
                        last_used: token.last_used,
                    },
                );
            } else {
                // Expired (or orphaned): its row goes with the first batch.
                accounts
                    .writes
                    .push(AccountWrite::RevokeToken(token.digest));
            }
        }
        accounts
    }

    /// The settings in force.
    pub fn config(&self) -> &AccountsConfig {
        &self.config
    }

    /// New settings (a reload): the new token span applies to every token.
    pub fn set_config(&mut self, config: AccountsConfig) {
        self.config = config;
    }

    /// Accounts registered.
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// Whether no account is registered.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// Live tokens.
    pub fn token_count(&self) -> usize {
        self.tokens.len()
    }

    /// The account named `name` (any letter case), as registered.
    pub fn name(&self, name: &str) -> Option<&str> {
        self.accounts
            .get(&name.to_ascii_lowercase())
            .map(|account| account.name.as_str())
    }

    /// Whether an account has the name `name` (any letter case).
    pub fn is_registered(&self, name: &str) -> bool {
        self.accounts.contains_key(&name.to_ascii_lowercase())
    }

    /// The password hash (PHC string) of account `name`.
    pub fn password_hash(&self, name: &str) -> Option<&str> {
        self.accounts
            .get(&name.to_ascii_lowercase())
            .map(|account| account.phc.as_str())
    }

    /// Whether `password` is within the bounds in force.
    pub fn check_password(&self, password: &str) -> Result<(), PasswordBounds> {
        let bounds = PasswordBounds {
            min: self.config.min_password_bytes,
            max: MAX_PASSWORD_BYTES,
        };
        if (bounds.min..=bounds.max).contains(&password.len()) {
            Ok(())
        } else {
            Err(bounds)
        }
    }

    /// Registers `name` with the hash `phc` at `now` (Unix seconds). Err
    /// when the name was taken meanwhile.
    pub fn register(&mut self, name: &str, phc: String, now: i64) -> Result<(), AlreadyRegistered> {
        let key = name.to_ascii_lowercase();
        if self.accounts.contains_key(&key) {
            return Err(AlreadyRegistered);
        }
        self.writes.push(AccountWrite::Create(StoredAccount {
            name: name.to_string(),
            phc: phc.clone(),
            created: now,
        }));
        self.accounts.insert(
            key,
            Account {
                name: name.to_string(),
                phc,
            },
        );
        Ok(())
    }

    /// Sets account `name`'s password hash to `phc` and revokes every token
    /// of the account. Returns how many tokens went.
    pub fn change_password(&mut self, name: &str, phc: String) -> usize {
        let key = name.to_ascii_lowercase();
        let Some(account) = self.accounts.get_mut(&key) else {
            return 0;
        };
        account.phc = phc.clone();
        let revoked: Vec<Digest> = self
            .tokens
            .iter()
            .filter(|(_, token)| token.account == key)
            .map(|(digest, _)| *digest)
            .collect();
        for digest in &revoked {
            self.tokens.remove(digest);
        }
        self.writes.push(AccountWrite::SetPassword { key, phc });
        // Each token's revocation said too (the file drops them with the
        // password change already): a cluster keeps every token in Redis
        // under its own digest, and a server started later must not take
        // one back.
        self.writes.extend(
            revoked
                .iter()
                .map(|digest| AccountWrite::RevokeToken(*digest)),
        );
        revoked.len()
    }

    /// Replaces account `name`'s hash by one of the same password with
    /// this build's parameters (no token is revoked).
    pub fn rehash(&mut self, name: &str, phc: String) {
        let key = name.to_ascii_lowercase();
        if let Some(account) = self.accounts.get_mut(&key) {
            account.phc = phc.clone();
            self.writes.push(AccountWrite::Rehash { key, phc });
        }
    }

    /// A new token for account `name` at `now` (Unix seconds): the secret
    /// to hand to the client once, and its digest. `None` when there is no
    /// such account or no randomness.
    pub fn issue_token(&mut self, name: &str, now: i64) -> Option<(String, Digest)> {
        let key = name.to_ascii_lowercase();
        if !self.accounts.contains_key(&key) {
            return None;
        }
        let (secret, digest) = tokens::new_token()?;
        self.tokens.insert(
            digest,
            Token {
                account: key.clone(),
                last_used: now,
            },
        );
        self.writes.push(AccountWrite::PutToken(StoredToken {
            digest,
            account: key,
            last_used: now,
        }));
        Some((secret, digest))
    }

    /// The account `token` logs in to at `now` (Unix seconds), as
    /// registered, with the token's digest; its expiry slides. `None` for
    /// garbage, an unknown token, or one unused for longer than the span
    /// (then forgotten).
    pub fn resume(&mut self, token: &str, now: i64) -> Option<(String, Digest)> {
        if !tokens::well_formed(token) {
            return None;
        }
        let digest = tokens::digest_of(token);
        let last_used = self.tokens.get(&digest)?.last_used;
        if self.expired(last_used, now) {
            self.revoke(&digest);
            return None;
        }
        let entry = self.tokens.get_mut(&digest)?;
        entry.last_used = now.max(entry.last_used);
        let key = entry.account.clone();
        let name = self.accounts.get(&key)?.name.clone();
        self.writes.push(AccountWrite::PutToken(StoredToken {
            digest,
            account: key,
            last_used: now,
        }));
        Some((name, digest))
    }

    /// Revokes the token with this digest. Returns whether it was live.
    pub fn revoke(&mut self, digest: &Digest) -> bool {
        let live = self.tokens.remove(digest).is_some();
        if live {
            self.writes.push(AccountWrite::RevokeToken(*digest));
        }
        live
    }

    /// Forgets tokens unused for longer than the span (their rows go too).
    /// Returns how many.
    pub fn expire_tokens(&mut self, now: i64) -> usize {
        let expired: Vec<Digest> = self
            .tokens
            .iter()
            .filter(|(_, token)| self.expired(token.last_used, now))
            .map(|(digest, _)| *digest)
            .collect();
        for digest in &expired {
            self.revoke(digest);
        }
        expired.len()
    }

    /// A change another server of a cluster made (and published), applied
    /// to memory only: no write is queued (the caller sends it to this
    /// server's file itself). Returns whether it changed anything here (a
    /// token of an account unknown here, or an account known already,
    /// does not).
    pub fn apply_remote(&mut self, write: &AccountWrite) -> bool {
        match write {
            AccountWrite::Create(account) => {
                let key = account.name.to_ascii_lowercase();
                if self.accounts.contains_key(&key) {
                    return false;
                }
                self.accounts.insert(
                    key,
                    Account {
                        name: account.name.clone(),
                        phc: account.phc.clone(),
                    },
                );
                true
            }
            AccountWrite::SetPassword { key, phc } => {
                let Some(account) = self.accounts.get_mut(key) else {
                    return false;
                };
                account.phc = phc.clone();
                self.tokens.retain(|_, token| token.account != *key);
                true
            }
            AccountWrite::Rehash { key, phc } => match self.accounts.get_mut(key) {
                Some(account) => {
                    account.phc = phc.clone();
                    true
                }
                None => false,
            },
            AccountWrite::PutToken(token) => {
                if !self.accounts.contains_key(&token.account) {
                    return false;
                }
                self.tokens.insert(
                    token.digest,
                    Token {
                        account: token.account.clone(),
                        last_used: token.last_used,
                    },
                );
                true
            }
            AccountWrite::RevokeToken(digest) => self.tokens.remove(digest).is_some(),
            AccountWrite::PutKeys { key, .. } => self.accounts.contains_key(key),
        }
    }

    /// The published keys read from the file (by lower-cased account
    /// name, oldest first), once: the chat's key directory takes them.
    pub fn take_loaded_keys(&mut self) -> Vec<(String, Vec<String>)> {
        std::mem::take(&mut self.loaded_keys)
    }

    /// Stores `keys` (oldest first) as the published keys of `account`.
    pub fn put_keys(&mut self, account: &str, keys: Vec<String>) {
        self.writes.push(AccountWrite::PutKeys {
            key: account.to_ascii_lowercase(),
            keys,
        });
    }

    /// The changes made since the last call, for the history writer.
    pub fn take_writes(&mut self) -> Vec<AccountWrite> {
        std::mem::take(&mut self.writes)
    }

    /// Whether changes wait for the history writer.
    pub fn has_writes(&self) -> bool {
        !self.writes.is_empty()
    }

    /// The oldest last use (Unix seconds) a token may have at `now`.
    pub fn valid_since(&self, now: i64) -> i64 {
        now - self.span_secs()
    }

    fn span_secs(&self) -> i64 {
        i64::from(self.config.token_days) * 86_400
    }

    fn expired(&self, last_used: i64, now: i64) -> bool {
        now - last_used > self.span_secs()
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
