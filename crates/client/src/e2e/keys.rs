//! Keys at rest: this device's key pair in a file only its owner can read
//! (mode 0600), and the peers' keys pinned on first use.
//!
//! The device key file is one line, `loopchat-e2e-key-v1 SECRET`, SECRET
//! the private key in base64url. The pin file has one line per pinned key,
//! `SERVER ACCOUNT KEY` and then ` verified` when the user compared the
//! safety number; both are written whole to a temporary file then renamed.

use super::noise::{KeyPair, KEY_LEN};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

const KEY_FILE_TAG: &str = "loopchat-e2e-key-v1";

/// A public key in the protocol's form: 43 characters of base64url.
pub fn encode_key(key: &[u8; KEY_LEN]) -> String {
    URL_SAFE_NO_PAD.encode(key)
}

/// A public key from the protocol's form; `None` unless exactly 32 bytes
/// in 43 characters of base64url without padding.
pub fn decode_key(text: &str) -> Option<[u8; KEY_LEN]> {
    if text.len() != 43 {
        return None;
    }
    URL_SAFE_NO_PAD.decode(text).ok()?.try_into().ok()
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Writes `text` to `path` with mode 0600, through a temporary file in the
/// same folder renamed over it.
fn write_private(path: &Path, text: &str) -> io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let _ = fs::remove_file(&temporary);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    fs::rename(&temporary, path)
}

/// This device's key pair from `path`, made (mode 0600) if the file does
/// not exist. A file others can read or write is refused, as ssh does.
pub fn load_or_create_device_key(path: &Path) -> io::Result<KeyPair> {
    match fs::read_to_string(path) {
        Ok(text) => {
            let mode = fs::metadata(path)?.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(invalid(format!(
                    "{} is open to others (mode {:o}); run chmod 600 on it",
                    path.display(),
                    mode & 0o777
                )));
            }
            let secret = text
                .trim_end()
                .strip_prefix(KEY_FILE_TAG)
                .and_then(|rest| rest.strip_prefix(' '))
                .and_then(|secret| URL_SAFE_NO_PAD.decode(secret).ok())
                .and_then(|bytes| <[u8; KEY_LEN]>::try_from(bytes).ok())
                .ok_or_else(|| invalid(format!("{} is not a device key file", path.display())))?;
            Ok(KeyPair::from_secret(secret))
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            let pair = KeyPair::generate();
            let line = format!(
                "{KEY_FILE_TAG} {}\n",
                URL_SAFE_NO_PAD.encode(pair.secret_bytes())
            );
            write_private(path, &line)?;
            Ok(pair)
        }
        Err(err) => Err(err),
    }
}

/// What the pins say of a peer's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinCheck {
    /// No key pinned for this account yet: first contact.
    FirstContact,
    /// A key accepted before; `verified` if the user compared the safety
    /// number.
    Known {
        /// The user marked it verified.
        verified: bool,
    },
    /// Another key than the ones accepted: sending stops until the user
    /// accepts it.
    Changed {
        /// The keys accepted before, oldest first.
        accepted: Vec<[u8; KEY_LEN]>,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Pinned {
    keys: Vec<[u8; KEY_LEN]>,
    verified: Vec<[u8; KEY_LEN]>,
}

/// The peers' keys this device accepted, per server and account (account
/// names compared lower-cased, as the protocol compares nicks).
#[derive(Debug, Default)]
pub struct Pins {
    path: Option<PathBuf>,
    accounts: BTreeMap<(String, String), Pinned>,
}

impl Pins {
    /// Pins kept in memory only.
    pub fn in_memory() -> Pins {
        Pins::default()
    }

    /// The pins in `path` (none if it does not exist yet); changes are
    /// written back to it.
    pub fn open(path: &Path) -> io::Result<Pins> {
        let mut pins = Pins {
            path: Some(path.to_path_buf()),
            accounts: BTreeMap::new(),
        };
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(pins),
            Err(err) => return Err(err),
        };
        for (number, line) in text.lines().enumerate() {
            let fields: Vec<&str> = line.split(' ').collect();
            let bad = || invalid(format!("{} line {}: not a pin", path.display(), number + 1));
            let (server, account, key, verified) = match fields[..] {
                [server, account, key] => (server, account, key, false),
                [server, account, key, "verified"] => (server, account, key, true),
                _ => return Err(bad()),
            };
            let key = decode_key(key).ok_or_else(bad)?;
            let entry = pins.entry(server, account);
            entry.keys.push(key);
            if verified {
                entry.verified.push(key);
            }
        }
        Ok(pins)
    }

    fn entry(&mut self, server: &str, account: &str) -> &mut Pinned {
        self.accounts
            .entry((server.to_string(), account.to_ascii_lowercase()))
            .or_default()
    }

    fn get(&self, server: &str, account: &str) -> Option<&Pinned> {
        self.accounts
            .get(&(server.to_string(), account.to_ascii_lowercase()))
            .filter(|pinned| !pinned.keys.is_empty())
    }

    /// Whether a key was ever accepted for `account` on `server`.
    pub fn has(&self, server: &str, account: &str) -> bool {
        self.get(server, account).is_some()
    }

    /// What is known of `key` for `account` on `server`.
    pub fn check(&self, server: &str, account: &str, key: &[u8; KEY_LEN]) -> PinCheck {
        match self.get(server, account) {
            None => PinCheck::FirstContact,
            Some(pinned) if pinned.keys.contains(key) => PinCheck::Known {
                verified: pinned.verified.contains(key),
            },
            Some(pinned) => PinCheck::Changed {
                accepted: pinned.keys.clone(),
            },
        }
    }

    /// Accepts `key` for `account` (first contact, or the user accepted a
    /// change) and saves the pins.
    pub fn accept(&mut self, server: &str, account: &str, key: &[u8; KEY_LEN]) -> io::Result<()> {
        let entry = self.entry(server, account);
        if !entry.keys.contains(key) {
            entry.keys.push(*key);
        }
        self.save()
    }

    /// Marks an accepted `key` verified (the user compared the safety
    /// number); `false` if it is not accepted.
    pub fn verify(&mut self, server: &str, account: &str, key: &[u8; KEY_LEN]) -> io::Result<bool> {
        let entry = self.entry(server, account);
        if !entry.keys.contains(key) {
            return Ok(false);
        }
        if !entry.verified.contains(key) {
            entry.verified.push(*key);
        }
        self.save().map(|()| true)
    }

    fn save(&self) -> io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut text = String::new();
        for ((server, account), pinned) in &self.accounts {
            for key in &pinned.keys {
                let mark = if pinned.verified.contains(key) {
                    " verified"
                } else {
                    ""
                };
                text.push_str(&format!("{server} {account} {}{mark}\n", encode_key(key)));
            }
        }
        write_private(path, &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_device_key_is_made_once_with_mode_0600_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.key");
        let made = load_or_create_device_key(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = load_or_create_device_key(&path).unwrap();
        assert_eq!(made.public, again.public);
        assert_eq!(made.secret_bytes(), again.secret_bytes());

        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_or_create_device_key(&path).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");

        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&path, "something else\n").unwrap();
        let err = load_or_create_device_key(&path).unwrap_err();
        assert!(err.to_string().contains("not a device key file"), "{err}");
    }

    #[test]
    fn keys_are_43_characters_of_base64url() {
        let key = [0xfb; 32];
        let text = encode_key(&key);
        assert_eq!(text.len(), 43);
        assert_eq!(decode_key(&text), Some(key));
        assert_eq!(decode_key(&format!("{text}=")), None);
        assert_eq!(decode_key(&text[..42]), None);
        assert_eq!(decode_key(&text.replace('-', "+")), None);
    }

    #[test]
    fn pins_are_first_use_then_known_then_changed_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pins");
        let (one, two) = ([1; 32], [2; 32]);
        let mut pins = Pins::open(&path).unwrap();
        assert_eq!(pins.check("loopchat", "Bob", &one), PinCheck::FirstContact);
        pins.accept("loopchat", "Bob", &one).unwrap();
        assert_eq!(
            pins.check("loopchat", "bob", &one),
            PinCheck::Known { verified: false }
        );
        assert_eq!(
            pins.check("loopchat", "bob", &two),
            PinCheck::Changed {
                accepted: vec![one]
            }
        );
        assert_eq!(pins.check("elsewhere", "bob", &two), PinCheck::FirstContact);
        assert!(!pins.verify("loopchat", "bob", &two).unwrap());
        assert!(pins.verify("loopchat", "bob", &one).unwrap());

        let pins = Pins::open(&path).unwrap();
        assert_eq!(
            pins.check("loopchat", "BOB", &one),
            PinCheck::Known { verified: true }
        );
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        fs::write(&path, "loopchat bob notakey\n").unwrap();
        assert!(Pins::open(&path).is_err());
    }
}
