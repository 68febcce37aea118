//! Accounts across servers (`--cluster`, docs/cluster.md "Accounts"):
//! every account change a server makes (the writes its history file gets:
//! registrations, passwords, tokens, `:key`s) is published for the others,
//! which apply it to memory and to their own file. Accounts and published
//! keys are also kept in Redis hashes (`accounts`, `keys`, one field per
//! account, whose value is the change that made it; tokens under `t:` and
//! their digest, revocations included), read by a server that
//! (re)connects.

use super::EventLoop;
use crate::accounts::persist::{AccountWrite, StoredAccount, StoredToken};
use crate::cluster::Cluster;

/// Separates the fields of a change (no name, hash, digest or key holds
/// it).
const SEP: char = '\u{1f}';

/// A token's digest in hex, as changes and Redis fields name it.
fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// An account change as the servers pass it: `A`, a letter, fields.
pub(crate) fn encode_write(write: &AccountWrite) -> Vec<u8> {
    let fields: Vec<String> = match write {
        AccountWrite::Create(account) => vec![
            "C".into(),
            account.name.clone(),
            account.phc.clone(),
            account.created.to_string(),
        ],
        AccountWrite::SetPassword { key, phc } => vec!["P".into(), key.clone(), phc.clone()],
        AccountWrite::Rehash { key, phc } => vec!["H".into(), key.clone(), phc.clone()],
        AccountWrite::PutToken(token) => vec![
            "T".into(),
            hex(&token.digest),
            token.account.clone(),
            token.last_used.to_string(),
        ],
        AccountWrite::RevokeToken(digest) => vec!["R".into(), hex(digest)],
        AccountWrite::PutKeys { key, keys } => {
            let mut fields = vec!["K".into(), key.clone()];
            fields.extend(keys.iter().cloned());
            fields
        }
    };
    let mut msg = String::from("A");
    for field in fields {
        msg.push(SEP);
        msg.push_str(&field);
    }
    msg.into_bytes()
}

/// Reads what [`encode_write`] wrote; `None` for anything else.
pub(crate) fn decode_write(msg: &[u8]) -> Option<AccountWrite> {
    let msg = std::str::from_utf8(msg).ok()?;
    let mut fields = msg.split(SEP);
    if fields.next()? != "A" {
        return None;
    }
    let kind = fields.next()?;
    let rest: Vec<&str> = fields.collect();
    let digest = |hex: &str| -> Option<[u8; 32]> {
        if hex.len() != 64 || !hex.is_ascii() {
            return None;
        }
        let mut digest = [0u8; 32];
        for (i, byte) in digest.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(digest)
    };
    let write = match (kind, rest.as_slice()) {
        ("C", [name, phc, created]) => AccountWrite::Create(StoredAccount {
            name: (*name).to_owned(),
            phc: (*phc).to_owned(),
            created: created.parse().ok()?,
        }),
        ("P", [key, phc]) => AccountWrite::SetPassword {
            key: (*key).to_owned(),
            phc: (*phc).to_owned(),
        },
        ("H", [key, phc]) => AccountWrite::Rehash {
            key: (*key).to_owned(),
            phc: (*phc).to_owned(),
        },
        ("T", [hex, account, last_used]) => AccountWrite::PutToken(StoredToken {
            digest: digest(hex)?,
            account: (*account).to_owned(),
            last_used: last_used.parse().ok()?,
        }),
        ("R", [hex]) => AccountWrite::RevokeToken(digest(hex)?),
        ("K", [key, keys @ ..]) => AccountWrite::PutKeys {
            key: (*key).to_owned(),
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
        },
        _ => return None,
    };
    Some(write)
}

impl EventLoop {
    /// Publishes this server's account changes of the turn, each with the
    /// Redis hash field it sets (an account's, its keys'), in order.
    pub(super) fn cluster_accounts(&mut self, writes: &[AccountWrite]) {
        let Cluster::Redis(redis) = &mut self.cluster else {
            return;
        };
        for write in writes {
            let msg = encode_write(write);
            let (hash, field, value) = match write {
                AccountWrite::Create(account) => {
                    ("accounts", account.name.to_ascii_lowercase(), msg.clone())
                }
                AccountWrite::SetPassword { key, phc } | AccountWrite::Rehash { key, phc } => {
                    // The account's entry: the account as it is now.
                    let name = self
                        .chat
                        .accounts()
                        .name(key)
                        .unwrap_or(key.as_str())
                        .to_owned();
                    let now = StoredAccount {
                        name,
                        phc: phc.clone(),
                        created: 0,
                    };
                    (
                        "accounts",
                        key.clone(),
                        encode_write(&AccountWrite::Create(now)),
                    )
                }
                AccountWrite::PutKeys { key, .. } => ("keys", key.clone(), msg.clone()),
                // A token's own field (`t:` and its digest, which no
                // account name can be): its latest use, or its revocation,
                // which stays so that a server started later does not take
                // the token back.
                AccountWrite::PutToken(StoredToken { digest, .. })
                | AccountWrite::RevokeToken(digest) => {
                    ("accounts", format!("t:{}", hex(digest)), msg.clone())
                }
            };
            let fields: Vec<(&[u8], &[u8])> = if field.is_empty() {
                Vec::new()
            } else {
                vec![(field.as_bytes(), value.as_slice())]
            };
            if redis.publish_shared(hash, &msg, &fields).is_err() {
                log::warn!("cluster: account changes made while Redis is away stay on this server");
                return;
            }
        }
    }

    /// Account changes from another server (published, or read from
    /// Redis's hashes): applied to the chat, and written to this server's
    /// file when they changed anything.
    ///
    /// From the snapshot (`snapshot`: Redis's hashes, read on connecting),
    /// an account known here with another hash is given Redis's: its
    /// password changed (or was rehashed) while this server was away, or
    /// two servers registered the name at once and Redis kept the last.
    /// Its tokens are not revoked by that: each token's own field says
    /// whether it still holds.
    pub(super) fn remote_account_writes(&mut self, msgs: &[Vec<u8>], snapshot: bool) {
        let mut writes: Vec<AccountWrite> = Vec::with_capacity(msgs.len());
        for msg in msgs {
            match decode_write(msg) {
                Some(AccountWrite::Create(account)) if snapshot => {
                    let key = account.name.to_ascii_lowercase();
                    let known = self.chat.accounts().password_hash(&key);
                    writes.push(match known {
                        Some(phc) if phc != account.phc => AccountWrite::Rehash {
                            key,
                            phc: account.phc,
                        },
                        _ => AccountWrite::Create(account),
                    });
                }
                Some(write) => writes.push(write),
                None => log::warn!("cluster: an account change that is not one"),
            }
        }
        // Accounts before the rest: Redis's hash gives its fields in no
        // order, and a token or a password applies only to an account
        // known here (a server's own changes come in order anyway).
        writes.sort_by_key(|write| !matches!(write, AccountWrite::Create(_)));
        let mut changed = Vec::new();
        for write in writes {
            if self.chat.remote_account_write(&write) {
                changed.push(write);
            }
        }
        if !changed.is_empty() {
            self.history.submit_accounts(changed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_changes_pass_through_redis_and_back() {
        let writes = [
            AccountWrite::Create(StoredAccount {
                name: "Alice".into(),
                phc: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
                created: 1_796_000_000,
            }),
            AccountWrite::SetPassword {
                key: "alice".into(),
                phc: "$argon2id$x".into(),
            },
            AccountWrite::Rehash {
                key: "alice".into(),
                phc: "$argon2id$y".into(),
            },
            AccountWrite::PutToken(StoredToken {
                digest: [0xab; 32],
                account: "alice".into(),
                last_used: 5,
            }),
            AccountWrite::RevokeToken([7; 32]),
            AccountWrite::PutKeys {
                key: "alice".into(),
                keys: vec!["k1".into(), "k2".into()],
            },
            AccountWrite::PutKeys {
                key: "alice".into(),
                keys: vec![],
            },
        ];
        for write in writes {
            assert_eq!(decode_write(&encode_write(&write)), Some(write));
        }
        for bad in [
            &b""[..],
            b"A",
            b"A\x1fZ\x1fx",
            b"A\x1fR\x1fzz",
            b"B\x1fR\x1f00",
        ] {
            assert_eq!(decode_write(bad), None);
        }
    }
}
