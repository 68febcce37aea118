//! Accounts and tokens in the history file: the tables, the migration
//! step that adds them, reading them at start, and the writes the history
//! writer applies (in the same transaction as a batch's chat lines).
//!
//! ```sql
//! CREATE TABLE accounts (
//!     name_key TEXT PRIMARY KEY,   -- the name lower-cased
//!     name     TEXT NOT NULL,      -- as registered
//!     phc      TEXT NOT NULL,      -- Argon2id PHC string
//!     created  INTEGER NOT NULL    -- Unix seconds
//! ) WITHOUT ROWID;
//! CREATE TABLE tokens (
//!     digest    BLOB PRIMARY KEY,  -- SHA-256 of the token; never the token
//!     account   TEXT NOT NULL,     -- accounts.name_key
//!     last_used INTEGER NOT NULL   -- Unix seconds; expiry slides from it
//! ) WITHOUT ROWID;
//! CREATE TABLE account_keys (      -- `:key` (protocol 1.2); no version
//!     account  TEXT NOT NULL,      -- accounts.name_key; created IF NOT
//!     position INTEGER NOT NULL,   -- EXISTS at every open, so files
//!     key      TEXT NOT NULL,      -- already at version 5 get it too
//!     PRIMARY KEY (account, position)
//! ) WITHOUT ROWID;
//! ```
//!
//! Only this module knows the tables; `chat::history::store` calls
//! [`migrate_accounts`] after its own steps, [`load`] at open and
//! [`apply`] in each batch's transaction.

use super::tokens::Digest;
use rusqlite::{params, Connection, Transaction};

/// The history file's schema version that adds the accounts tables. The
/// migration is one step keyed on this constant alone, run after the
/// chat lines' steps.
pub const ACCOUNTS_SCHEMA_VERSION: i64 = 5;

const CREATE: &str = "CREATE TABLE IF NOT EXISTS accounts (
         name_key TEXT PRIMARY KEY,
         name     TEXT NOT NULL,
         phc      TEXT NOT NULL,
         created  INTEGER NOT NULL
     ) WITHOUT ROWID;
     CREATE TABLE IF NOT EXISTS tokens (
         digest    BLOB PRIMARY KEY,
         account   TEXT NOT NULL,
         last_used INTEGER NOT NULL
     ) WITHOUT ROWID;
     CREATE INDEX IF NOT EXISTS tokens_account ON tokens (account);";

const KEYS: &str = "CREATE TABLE IF NOT EXISTS account_keys (
         account  TEXT NOT NULL,
         position INTEGER NOT NULL,
         key      TEXT NOT NULL,
         PRIMARY KEY (account, position)
     ) WITHOUT ROWID;";

/// Adds the accounts tables to a file below [`ACCOUNTS_SCHEMA_VERSION`]
/// and sets that version; the chat lines are not touched. Does nothing to
/// a file already there.
pub fn migrate_accounts(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.execute_batch(KEYS)?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version >= ACCOUNTS_SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn.transaction()?;
    tx.execute_batch(CREATE)?;
    tx.pragma_update(None, "user_version", ACCOUNTS_SCHEMA_VERSION)?;
    tx.commit()
}

/// One account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAccount {
    /// The name as registered.
    pub name: String,
    /// Its password's PHC string.
    pub phc: String,
    /// When it was registered, Unix seconds.
    pub created: i64,
}

/// One token as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    /// SHA-256 of the token.
    pub digest: Digest,
    /// Its account's lower-cased name.
    pub account: String,
    /// Its last use, Unix seconds.
    pub last_used: i64,
}

/// Everything read from the file at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    /// Every account.
    pub accounts: Vec<StoredAccount>,
    /// Every token not yet expired.
    pub tokens: Vec<StoredToken>,
    /// The public keys each account published (`:key`), by lower-cased
    /// name, oldest first.
    pub keys: Vec<(String, Vec<String>)>,
}

/// Reads every account, and the tokens used since `valid_since` (Unix
/// seconds); older ones are deleted.
pub fn load(conn: &Connection, valid_since: i64) -> rusqlite::Result<Loaded> {
    conn.execute("DELETE FROM tokens WHERE last_used < ?1", [valid_since])?;
    let accounts = {
        let mut stmt = conn.prepare("SELECT name, phc, created FROM accounts")?;
        let rows = stmt.query_map([], |row| {
            Ok(StoredAccount {
                name: row.get(0)?,
                phc: row.get(1)?,
                created: row.get(2)?,
            })
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    let tokens = {
        let mut stmt = conn.prepare("SELECT digest, account, last_used FROM tokens")?;
        let rows = stmt.query_map([], |row| {
            let bytes: Vec<u8> = row.get(0)?;
            Ok((bytes, row.get(1)?, row.get(2)?))
        })?;
        let mut tokens = Vec::new();
        for row in rows {
            let (bytes, account, last_used) = row?;
            // A digest of another length is not ours: skipped.
            if let Ok(digest) = Digest::try_from(bytes.as_slice()) {
                tokens.push(StoredToken {
                    digest,
                    account,
                    last_used,
                });
            }
        }
        tokens
    };
    let mut keys: Vec<(String, Vec<String>)> = Vec::new();
    {
        let mut stmt =
            conn.prepare("SELECT account, key FROM account_keys ORDER BY account, position")?;
        let rows = stmt.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get(1)?)))?;
        for row in rows {
            let (account, key) = row?;
            match keys.last_mut() {
                Some((last, list)) if *last == account => list.push(key),
                _ => keys.push((account, vec![key])),
            }
        }
    }
    Ok(Loaded {
        accounts,
        tokens,
        keys,
    })
}

/// A change to the accounts, on its way to the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountWrite {
    /// A new account.
    Create(StoredAccount),
    /// A new password for the account (lower-cased name); every token of
    /// the account is revoked with it.
    SetPassword {
        /// The account's lower-cased name.
        key: String,
        /// The new PHC string.
        phc: String,
    },
    /// The same password hashed again with this build's parameters; the
    /// tokens stay.
    Rehash {
        /// The account's lower-cased name.
        key: String,
        /// The new PHC string.
        phc: String,
    },
    /// A new token, or one used again (its last use moves).
    PutToken(StoredToken),
    /// A token revoked.
    RevokeToken(Digest),
    /// The account's published keys now, oldest first (replacing those
    /// stored).
    PutKeys {
        /// The account's lower-cased name.
        key: String,
        /// Its keys.
        keys: Vec<String>,
    },
}

/// Applies `writes` in order inside the caller's transaction.
pub fn apply<'a>(
    tx: &Transaction<'_>,
    writes: impl IntoIterator<Item = &'a AccountWrite>,
) -> rusqlite::Result<()> {
    for write in writes {
        match write {
            AccountWrite::Create(account) => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO accounts (name_key, name, phc, created)
                         VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![
                    account.name.to_ascii_lowercase(),
                    account.name,
                    account.phc,
                    account.created
                ])?;
            }
            AccountWrite::SetPassword { key, phc } => {
                tx.prepare_cached("UPDATE accounts SET phc = ?2 WHERE name_key = ?1")?
                    .execute(params![key, phc])?;
                tx.prepare_cached("DELETE FROM tokens WHERE account = ?1")?
                    .execute([key])?;
            }
            AccountWrite::Rehash { key, phc } => {
                tx.prepare_cached("UPDATE accounts SET phc = ?2 WHERE name_key = ?1")?
                    .execute(params![key, phc])?;
            }
            AccountWrite::PutToken(token) => {
                tx.prepare_cached(
                    "INSERT INTO tokens (digest, account, last_used) VALUES (?1, ?2, ?3)
                         ON CONFLICT (digest) DO UPDATE SET last_used = excluded.last_used",
                )?
                .execute(params![
                    &token.digest[..],
                    token.account,
                    token.last_used
                ])?;
            }
            AccountWrite::RevokeToken(digest) => {
                tx.prepare_cached("DELETE FROM tokens WHERE digest = ?1")?
                    .execute([&digest[..]])?;
            }
            AccountWrite::PutKeys { key, keys } => {
                tx.prepare_cached("DELETE FROM account_keys WHERE account = ?1")?
                    .execute([key])?;
                for (position, public) in keys.iter().enumerate() {
                    tx.prepare_cached(
                        "INSERT INTO account_keys (account, position, key) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![key, position as i64, public])?;
                }
            }
        }
    }
    Ok(())
}
