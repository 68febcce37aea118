//! The `--config` file: reading it with errors that name the key and the
//! line, printing the effective settings (`--print-config`), and reading it
//! again on SIGHUP ([`Reload`]).

use super::Flags;
use crate::config::Config;
use std::path::{Path, PathBuf};

/// Settings that SIGHUP changes on a running server, without dropping
/// anyone: limits and timeouts read afresh at each use, flood control and
/// the per-address guard (for connections already open too), socket options
/// and trusted proxies (for new connections). Any other key needs a
/// restart; certificates are re-read on SIGHUP whatever the file says.
pub const RELOADABLE: &[&str] = &[
    "max-line-bytes",
    "max-outbuf-bytes",
    "idle-timeout",
    "close-timeout",
    "max-per-address",
    "limit-loopback",
    "auth-timeout",
    "auth-max-failures",
    "auth-lockout",
    "keepalive-idle",
    "keepalive-interval",
    "keepalive-count",
    "max-output-total-bytes",
    "soft-outbuf-bytes",
    "soft-outbuf-secs",
    "work-budget-bytes",
    "flood-lines-per-sec",
    "flood-bytes-per-sec",
    "flood-burst-secs",
    "sndbuf-bytes",
    "ws-ping-interval",
    "trusted-proxy",
];

/// Reads a settings file. Errors name the file, the line and the key:
/// `loopchat.toml:3: max-clients: invalid type: string "many", expected usize`.
pub fn load(path: &Path) -> Result<Flags, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    parse(&path.display().to_string(), &text)
}

/// Parses settings from `text`; `label` (the file name) starts each error.
pub fn parse(label: &str, text: &str) -> Result<Flags, String> {
    toml::from_str(text).map_err(|err| describe(label, text, &err))
}

fn describe(label: &str, text: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim();
    let Some(span) = err.span() else {
        return format!("{label}: {message}");
    };
    let start = span.start.min(text.len());
    let line = text[..start].matches('\n').count() + 1;
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let key = rest.split('`').next().unwrap_or(rest);
        return format!(
            "{label}:{line}: unknown key `{key}` (the keys are the flags' names, see --help)"
        );
    }
    let line_text = text.lines().nth(line - 1).unwrap_or_default();
    match line_text.split_once('=') {
        Some((key, _)) => format!("{label}:{line}: {}: {message}", key.trim()),
        None => format!("{label}:{line}: {message}"),
    }
}

/// The settings as a TOML file that gives them back when read (with the
/// password shown as `***`). Options without a value are left out.
pub fn print(flags: &Flags) -> String {
    let mut shown = flags.clone();
    if shown.password.is_some() {
        shown.password = Some("***".into());
    }
    match toml::to_string(&shown) {
        Ok(text) => text,
        Err(err) => format!("# cannot print the settings: {err}\n"),
    }
}

/// The settings as a TOML table, for comparing them key by key.
fn table(flags: &Flags) -> Result<toml::Table, String> {
    toml::Table::try_from(flags).map_err(|err| format!("cannot compare settings: {err}"))
}

/// What one SIGHUP changed.
#[derive(Debug)]
pub struct Reloaded {
    /// The server settings with the changes that apply now; keys that need
    /// a restart keep their running values.
    pub config: Config,
    /// `key old -> new` for each change applied now.
    pub applied: Vec<String>,
    /// `key old -> new` for each change that waits for a restart.
    pub need_restart: Vec<String>,
}

/// What a server started with `--config` needs to read its file again: the
/// file, the command line (which still wins) and the settings it runs with.
#[derive(Clone, Debug)]
pub struct Reload {
    file: PathBuf,
    command_line: Flags,
    running: Flags,
}

impl Reload {
    /// A reload of `file` under `command_line`, from `running` (the
    /// effective settings the server started with).
    pub fn new(file: PathBuf, command_line: Flags, running: Flags) -> Reload {
        Reload {
            file,
            command_line,
            running,
        }
    }

    /// Reads the file again: the changes, sorted into those that apply now
    /// and those that need a restart, or why the file is unusable (then
    /// nothing changes). A small file read: the loop does it on SIGHUP,
    /// like the certificate reload.
    pub fn reload(&mut self) -> Result<Reloaded, String> {
        let file = load(&self.file)?;
        let new = self.command_line.clone().or(file).or(Flags::defaults());
        new.to_config()
            .map_err(|err| format!("{}: {err}", self.file.display()))?;
        let old_table = table(&self.running)?;
        let new_table = table(&new)?;
        let mut running = old_table.clone();
        let (mut applied, mut need_restart) = (Vec::new(), Vec::new());
        let mut keys: Vec<&String> = old_table.keys().chain(new_table.keys()).collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            let (old, new) = (old_table.get(key), new_table.get(key));
            if old == new {
                continue;
            }
            let shown = |value: Option<&toml::Value>| match value {
                None => "(none)".to_string(),
                Some(_) if key == "password" => "***".to_string(),
                Some(value) => value.to_string(),
            };
            let change = format!("{key} {} -> {}", shown(old), shown(new));
            if RELOADABLE.contains(&key.as_str()) {
                match new {
                    Some(value) => running.insert(key.clone(), value.clone()),
                    None => running.remove(key),
                };
                applied.push(change);
            } else {
                need_restart.push(change);
            }
        }
        let running: Flags = running
            .try_into()
            .map_err(|err| format!("cannot apply the settings: {err}"))?;
        let config = running.to_config()?;
        self.running = running;
        Ok(Reloaded {
            config,
            applied,
            need_restart,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_key_and_the_line() {
        let err = parse("f.toml", "# comment\nmax-clients = \"many\"\n").unwrap_err();
        assert!(
            err.starts_with("f.toml:2: max-clients: invalid type"),
            "{err}"
        );
        let err = parse("f.toml", "addr = \"127.0.0.1:1\"\n\nmax-cleints = 5\n").unwrap_err();
        assert_eq!(
            err,
            "f.toml:3: unknown key `max-cleints` (the keys are the flags' names, see --help)"
        );
        let err = parse("f.toml", "trusted-proxy = [\"10.0.0.0/99\"]\n").unwrap_err();
        assert!(err.starts_with("f.toml:1: trusted-proxy: "), "{err}");
        assert!(err.contains("0 to 32"), "{err}");
        let err = parse("f.toml", "max-clients = 5\nmax-clients = 6\n").unwrap_err();
        assert!(err.starts_with("f.toml:2: "), "{err}");
        let err = parse("f.toml", "history-writer-priority = \"high\"\n").unwrap_err();
        assert!(err.contains("expected idle or normal"), "{err}");
    }

    #[test]
    fn every_key_round_trips_through_print() {
        let defaults = Flags::defaults();
        let printed = print(&defaults);
        assert_eq!(parse("printed", &printed).unwrap(), defaults);
        // Every key the struct has (options without a default aside) is
        // printed, so the file covers every flag.
        for key in RELOADABLE {
            assert!(printed.contains(&format!("\n{key} = ")), "{key} missing");
        }
    }

    #[test]
    fn reload_sorts_changes_and_keeps_restart_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loopchat.toml");
        std::fs::write(
            &path,
            "flood-lines-per-sec = 20\naddr = \"127.0.0.1:7000\"\n",
        )
        .unwrap();
        let command_line = Flags {
            max_clients: Some(50),
            ..Flags::default()
        };
        let running = command_line
            .clone()
            .or(load(&path).unwrap())
            .or(Flags::defaults());
        let mut reload = Reload::new(path.clone(), command_line, running);
        std::fs::write(
            &path,
            "flood-lines-per-sec = 2\naddr = \"127.0.0.1:7001\"\nmax-clients = 9\n",
        )
        .unwrap();
        let reloaded = reload.reload().unwrap();
        assert_eq!(reloaded.applied, ["flood-lines-per-sec 20 -> 2"]);
        assert_eq!(
            reloaded.need_restart,
            ["addr \"127.0.0.1:7000\" -> \"127.0.0.1:7001\""]
        );
        assert_eq!(reloaded.config.flood.lines_per_sec, 2);
        assert_eq!(reloaded.config.addr.port(), 7000, "kept until a restart");
        assert_eq!(reloaded.config.max_clients, 50, "the command line wins");
        std::fs::write(&path, "flood-lines-per-sec = \"x\"\n").unwrap();
        let err = reload.reload().unwrap_err();
        assert!(
            err.contains("loopchat.toml:1: flood-lines-per-sec"),
            "{err}"
        );
    }
}
