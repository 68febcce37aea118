//! "Remember me": the account token kept in a 0600 file under the user's
//! config folder, used to `:resume` on the next welcome, forgotten on
//! `* logged out` or when the server no longer takes it.

use super::{Kind, State};

/// Where the account token of `server` is kept: `$XDG_CONFIG_HOME/loopchat/`,
/// else `~/.config/loopchat/`, one file per server address.
pub fn token_path(server: &str) -> Option<std::path::PathBuf> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|home| std::path::Path::new(&home).join(".config"))
        })?;
    let name: String = server
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Some(config.join("loopchat").join(format!("token-{name}")))
}

/// Writes `token` to `path` with mode 0600 (the folder made as needed).
fn save_token(path: &std::path::Path, token: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    #[cfg(unix)]
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(token.as_bytes())
}

impl State {
    /// The saved token, if there is a usable one.
    pub(super) fn saved_token(&self) -> Option<String> {
        (self.token_path.as_ref())
            .and_then(|path| std::fs::read_to_string(path).ok())
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty() && !t.contains(char::is_whitespace))
    }

    /// The accounts' lines (`body` without its tags): keeps the token
    /// (`* token` is never shown), forgets it on `* logged out` or a failed
    /// resume (then goes on as a guest under the wanted nick). True when
    /// the line is handled.
    pub(super) fn account_line(&mut self, body: &str, send: &mut Vec<String>) -> bool {
        if let Some(token) = body.strip_prefix("* token ") {
            match self.token_path.clone() {
                Some(path) => match save_token(&path, token) {
                    Ok(()) => self.notice(format!(
                        "logged in; this client remembers you ({}), :logout forgets",
                        path.display()
                    )),
                    Err(e) => {
                        self.notice(format!("cannot keep the token in {}: {e}", path.display()))
                    }
                },
                None => self.notice("no config folder to keep the token in"),
            }
            return true;
        }
        if body.starts_with("* logged in as ") || body.starts_with("* registered ") {
            if self.remember && !self.resuming {
                send.push(":token".to_string());
            }
            self.remember = false;
            self.resuming = false;
            return false;
        }
        if body == "* logged out" {
            if let Some(path) = &self.token_path {
                let _ = std::fs::remove_file(path);
            }
            return false;
        }
        if body == "! login failed" && self.resuming {
            self.resuming = false;
            if let Some(path) = &self.token_path {
                let _ = std::fs::remove_file(path);
            }
            self.push(Kind::Notice(
                "the saved login no longer works: continuing as a guest".into(),
            ));
            if let Some(want) = self.want_nick.clone() {
                send.push(format!(":nick {want}"));
            }
            return true;
        }
        false
    }
}
