//! Unit tests of the accounts store: registration, verification, tokens
//! (sliding expiry, revocation), and the history file (the writes round
//! trip, and a version-3 file migrated with every line kept).

use super::*;
use crate::accounts::persist::ACCOUNTS_SCHEMA_VERSION;
use crate::accounts::worker::{perform, Job, JobResult};
use crate::chat::history::store::{NewLine, Store};

const DAY: i64 = 86_400;

fn config() -> AccountsConfig {
    AccountsConfig {
        token_days: 30,
        ..AccountsConfig::default()
    }
}

fn hashed(password: &str) -> String {
    match perform(Job::Hash {
        password: password.into(),
    }) {
        JobResult::Hashed(Some(phc)) => phc,
        other => panic!("{other:?}"),
    }
}

fn verifies(accounts: &Accounts, name: &str, password: &str) -> bool {
    let job = Job::Verify {
        phc: accounts.password_hash(name).map(str::to_string),
        password: password.into(),
    };
    matches!(perform(job), JobResult::Verified { ok: true, .. })
}

#[test]
fn register_then_verify_any_letter_case_and_never_twice() {
    let mut accounts = Accounts::new(config());
    assert!(!accounts.is_registered("alice"));
    accounts.register("Alice", hashed("hunter22"), 100).unwrap();
    assert!(accounts.is_registered("ALICE"));
    assert_eq!(accounts.name("alice"), Some("Alice"));
    assert_eq!(accounts.len(), 1);
    assert!(verifies(&accounts, "alice", "hunter22"));
    assert!(!verifies(&accounts, "alice", "hunter23"));
    assert!(!verifies(&accounts, "bob", "hunter22"), "unknown name");
    assert!(accounts
        .register("aLiCe", hashed("other-one"), 101)
        .is_err());
    assert!(verifies(&accounts, "alice", "hunter22"), "unchanged");
}

#[test]
fn password_bounds_are_the_ones_in_force() {
    let accounts = Accounts::new(config());
    let bounds = PasswordBounds { min: 8, max: 256 };
    assert_eq!(accounts.check_password("1234567"), Err(bounds));
    assert_eq!(accounts.check_password("12345678"), Ok(()));
    assert_eq!(accounts.check_password(&"x".repeat(256)), Ok(()));
    assert_eq!(accounts.check_password(&"x".repeat(257)), Err(bounds));
    let strict = Accounts::new(AccountsConfig {
        min_password_bytes: 12,
        ..config()
    });
    assert_eq!(
        strict.check_password("12345678"),
        Err(PasswordBounds { min: 12, max: 256 })
    );
}

#[test]
fn a_token_logs_in_slides_and_expires_after_its_span_unused() {
    let mut accounts = Accounts::new(config());
    accounts.register("alice", hashed("hunter22"), 0).unwrap();
    assert!(accounts.issue_token("nobody", 0).is_none());
    let (token, digest) = accounts.issue_token("alice", 0).unwrap();
    assert_eq!(
        accounts.resume(&token, 29 * DAY),
        Some(("alice".into(), digest))
    );
    // Used on day 29: valid until day 59.
    assert!(accounts.resume(&token, 58 * DAY).is_some());
    assert!(accounts.resume(&token, 88 * DAY).is_some());
    assert!(accounts.resume(&token, 118 * DAY + 1).is_none(), "expired");
    assert!(
        accounts.resume(&token, 118 * DAY).is_none(),
        "and forgotten"
    );
    assert_eq!(accounts.token_count(), 0);
}

#[test]
fn garbage_and_unknown_tokens_log_in_to_nothing() {
    let mut accounts = Accounts::new(config());
    accounts.register("alice", hashed("hunter22"), 0).unwrap();
    let (token, _) = accounts.issue_token("alice", 0).unwrap();
    for garbage in [
        "",
        "x",
        "lc_ short",
        &"a".repeat(500),
        "lc_ünïcødé_ünïcødé_ünïcødé",
    ] {
        assert!(accounts.resume(garbage, 1).is_none(), "{garbage:?}");
    }
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    assert!(accounts.resume(&forged, 1).is_none());
    assert!(accounts.resume(&token, 1).is_some());
}

#[test]
fn logout_revokes_one_token_and_a_new_password_all() {
    let mut accounts = Accounts::new(config());
    accounts.register("alice", hashed("hunter22"), 0).unwrap();
    accounts.register("bob", hashed("hunter22"), 0).unwrap();
    let (phone, phone_digest) = accounts.issue_token("alice", 0).unwrap();
    let (laptop, laptop_digest) = accounts.issue_token("alice", 0).unwrap();
    let (tablet, tablet_digest) = accounts.issue_token("alice", 0).unwrap();
    let (bobs, _) = accounts.issue_token("bob", 0).unwrap();
    assert!(accounts.revoke(&phone_digest));
    assert!(!accounts.revoke(&phone_digest), "once");
    assert!(accounts.resume(&phone, 1).is_none());
    assert!(accounts.resume(&laptop, 1).is_some());
    accounts.take_writes();
    assert_eq!(accounts.change_password("ALICE", hashed("new-password")), 2);
    // The change, then each token's revocation (a cluster's Redis keeps
    // tokens by digest: docs/cluster.md "Accounts").
    let writes = accounts.take_writes();
    assert!(matches!(writes[0], AccountWrite::SetPassword { .. }));
    let mut revoked: Vec<_> = writes[1..]
        .iter()
        .map(|write| match write {
            AccountWrite::RevokeToken(digest) => *digest,
            other => panic!("not a revocation: {other:?}"),
        })
        .collect();
    let mut expected = vec![laptop_digest, tablet_digest];
    revoked.sort_unstable();
    expected.sort_unstable();
    assert_eq!(revoked, expected);
    assert!(accounts.resume(&laptop, 2).is_none());
    assert!(accounts.resume(&tablet, 2).is_none());
    assert!(
        accounts.resume(&bobs, 2).is_some(),
        "other accounts keep theirs"
    );
    assert!(verifies(&accounts, "alice", "new-password"));
    assert!(!verifies(&accounts, "alice", "hunter22"));
}

#[test]
fn every_change_reaches_the_file_and_comes_back_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let mut accounts = Accounts::new(config());
    let mut store = Store::open(&path).unwrap();
    accounts.register("alice", hashed("hunter22"), 10).unwrap();
    accounts
        .register("Bob", hashed("bobs-password"), 10)
        .unwrap();
    let (kept, _) = accounts.issue_token("alice", 10).unwrap();
    let (_, revoked) = accounts.issue_token("alice", 10).unwrap();
    let (bobs, _) = accounts.issue_token("bob", 10).unwrap();
    store
        .commit_batch(std::iter::empty(), &accounts.take_writes())
        .unwrap();
    assert!(!accounts.has_writes());
    accounts.revoke(&revoked);
    accounts.change_password("bob", hashed("bobs-new-password"));
    assert!(accounts.resume(&kept, 20 * DAY).is_some());
    store
        .commit_batch(std::iter::empty(), &accounts.take_writes())
        .unwrap();
    drop(store);

    let store = Store::open(&path).unwrap();
    let loaded = store.load_accounts(i64::MIN).unwrap();
    assert_eq!(loaded.accounts.len(), 2);
    assert_eq!(loaded.tokens.len(), 1, "only alice's kept token is left");
    assert_eq!(loaded.tokens[0].last_used, 20 * DAY, "its last use slid");
    // Day 45: the kept token was used on day 20, so it is still valid.
    let mut again = Accounts::load(config(), loaded, 45 * DAY);
    assert_eq!(again.name("bob"), Some("Bob"));
    assert!(verifies(&again, "alice", "hunter22"));
    assert!(verifies(&again, "bob", "bobs-new-password"));
    assert!(again.resume(&bobs, 45 * DAY).is_none());
    assert!(again.resume(&kept, 45 * DAY).is_some());
    // Loaded later than its span: gone.
    let loaded = store.load_accounts(i64::MIN).unwrap();
    let mut late = Accounts::load(config(), loaded, 51 * DAY);
    assert!(late.resume(&kept, 51 * DAY).is_none());
    // Reading with a cut-off deletes the rows of expired tokens.
    assert!(store.load_accounts(21 * DAY).unwrap().tokens.is_empty());
}

#[test]
fn a_version_3_file_with_lines_gets_the_accounts_tables_and_keeps_every_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v3.db");
    {
        // A version-3 file as the previous release wrote it.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE rooms (id INTEGER PRIMARY KEY, room_key TEXT NOT NULL UNIQUE);
             CREATE TABLE lines (
                 room INTEGER NOT NULL REFERENCES rooms (id),
                 id   INTEGER NOT NULL,
                 ts   INTEGER NOT NULL,
                 line TEXT NOT NULL,
                 nick TEXT NOT NULL,
                 PRIMARY KEY (room, id)
             ) WITHOUT ROWID;
             INSERT INTO rooms (id, room_key) VALUES (1, '#lobby'), (2, '#rust');
             PRAGMA user_version = 3;",
        )
        .unwrap();
        let mut insert = conn
            .prepare("INSERT INTO lines (room, id, ts, line, nick) VALUES (?1, ?2, ?3, ?4, ?5)")
            .unwrap();
        for id in 1..=500i64 {
            let room = 1 + id % 2;
            let nick = format!("user{}", id % 7);
            insert
                .execute(rusqlite::params![
                    room,
                    id,
                    1_700_000_000 + id,
                    format!("{nick}: line {id}"),
                    nick
                ])
                .unwrap();
        }
    }
    let mut store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), ACCOUNTS_SCHEMA_VERSION);
    assert_eq!(store.count().unwrap(), 500);
    let tails = store.load_tails(1000).unwrap();
    assert_eq!(tails.len(), 2);
    for (room, lines) in &tails {
        assert_eq!(lines.len(), 250, "{room}");
        for line in lines {
            // Seconds became milliseconds on the way (version 4).
            assert_eq!(line.ts, (1_700_000_000 + line.id) * 1000);
            assert!(line.line.ends_with(&format!(": line {}", line.id)));
        }
    }
    assert_eq!(store.next_id().unwrap(), 501);
    // The new tables work, next to new lines.
    let mut accounts = Accounts::new(config());
    accounts.register("alice", hashed("hunter22"), 1).unwrap();
    let line = NewLine::new(501, "#lobby".into(), 2, "alice", "alice: hi".into());
    store
        .commit_batch([&line], &accounts.take_writes())
        .unwrap();
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.count().unwrap(), 501);
    assert_eq!(
        store.load_accounts(i64::MIN).unwrap().accounts[0].name,
        "alice"
    );
}

#[test]
fn an_expiry_pass_forgets_unused_tokens_and_deletes_their_rows() {
    let mut accounts = Accounts::new(config());
    accounts.register("alice", hashed("hunter22"), 0).unwrap();
    let (old, old_digest) = accounts.issue_token("alice", 0).unwrap();
    let (fresh, _) = accounts.issue_token("alice", 20 * DAY).unwrap();
    accounts.take_writes();
    assert_eq!(accounts.expire_tokens(31 * DAY), 1);
    assert_eq!(
        accounts.take_writes(),
        [crate::accounts::persist::AccountWrite::RevokeToken(
            old_digest
        )]
    );
    assert!(accounts.resume(&old, 31 * DAY).is_none());
    assert!(accounts.resume(&fresh, 31 * DAY).is_some());
}
