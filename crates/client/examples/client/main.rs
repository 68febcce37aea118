//! A terminal client for loopchat: `cargo run --example client`.
//!
//! Two faces, one protocol:
//!
//! - **Full screen** ([`tui`]) when stdin and stdout are both terminals: a
//!   message pane with timestamps and scrollback, a side panel with the room,
//!   its users and the room list, an input line that incoming lines never
//!   disturb, and a status line. It reconnects when the server goes away.
//! - **Plain lines** ([`plain`]) when either is piped, or with `--plain`:
//!   stdin lines go to the server, server lines go to stdout with control
//!   characters escaped, status messages go to stderr. Scripts rely on it.
//!
//! The client's only commands of its own are the end-to-end ones
//! ([`secure`]: `:e2e NICK TEXT` is encrypted, never sent as typed); `:help`,
//! `:nick`, `:quit` and the rest are the server's, as described in
//! `docs/protocol.md`.
//!
//! ```text
//! cargo run --release                                   # the server
//! cargo run --example client -- --nick alice            # a person
//! printf 'hi all\n' | cargo run --example client        # a script
//! LOOPCHAT_PASSWORD=secret cargo run --example client   # a server with a password
//! cargo run --example client -- --tls --addr chat.example.org:7443   # TLS, system roots
//! cargo run --example client -- --tls --ca cert.pem     # TLS, a private or self-signed cert
//! ```
//!
//! # Layout
//!
//! - `main.rs`: flags, choosing the mode, the first connection.
//! - [`net`]: the one thread that owns the connection (reads, writes,
//!   reconnects); with `--tls` it wraps each connection in
//!   `loopchat_client::tls::connect_client`.
//! - [`plain`]: the line mode.
//! - [`tui`]: the full-screen mode's event loop and terminal handling;
//!   [`state`] what it knows about the chat, [`editor`] the input line,
//!   [`ui`] the drawing ([`panel`] the side panel); [`secure`] end-to-end
//!   encrypted messages.
//! - [`text`]: making server text safe to show; clock times.
//!
//! # Exit status
//!
//! - 0: we quit (`:quit` typed, stdin ended, Ctrl-C or Ctrl-D on screen) and
//!   the server said `* bye` (line mode), or the screen was closed.
//! - 1: the server closed or vanished without a `* bye` to our `:quit`
//!   (including `! server full`, `! too many attempts`, a wrong
//!   `--password`, shutdown), or did not answer in time.
//! - 2: the server could not be reached, its certificate was refused
//!   (`--tls`), or a flag was invalid.

mod editor;
mod net;
mod panel;
mod plain;
mod secure;
mod state;
mod text;
mod tui;
mod ui;

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use argh::FromArgs;

const EXIT_UNREACHABLE: u8 = 2;
const EXIT_USAGE: u8 = 2;

/// What the client sends when it has been quiet for `--keepalive` seconds,
/// and the answer it then keeps off the screen.
pub const KEEPALIVE_PING: &str = ":ping keepalive";
/// The token of [`KEEPALIVE_PING`], which its `* pong` carries back.
pub const KEEPALIVE_TOKEN: &str = "keepalive";

/// Chat with a loopchat server. On a terminal it opens a full-screen
/// interface; with stdin or stdout piped (or --plain) lines from stdin are sent
/// to the server and the server's lines are printed on stdout with control
/// characters escaped, status messages on stderr. Type :help for the server's
/// commands and :quit to leave; when piped stdin ends the client quits by
/// itself.
#[derive(FromArgs)]
struct Args {
    /// server address, HOST:PORT (default: 127.0.0.1:7878, or
    /// 127.0.0.1:7443 with --tls)
    #[argh(option)]
    addr: Option<String>,

    /// nick to take once welcomed, sent as `:nick NAME` before any line from
    /// stdin (default: none, keep the guestN nick the server assigns)
    #[argh(option)]
    nick: Option<String>,

    /// password for a server that asks for one, sent as `:auth PASSWORD`
    /// (default: the LOOPCHAT_PASSWORD environment variable when set and not
    /// empty, else none: type `:auth PASSWORD` yourself). Prefer the variable:
    /// command lines are visible to other users of the machine.
    #[argh(option)]
    password: Option<String>,

    /// plain line mode even on a terminal (default: full screen when stdin
    /// and stdout are both terminals)
    #[argh(switch)]
    plain: bool,

    /// after this many seconds without sending anything, send `:ping
    /// keepalive` (its `* pong keepalive` is not shown); 0 turns it off
    /// (default: 60)
    #[argh(option, default = "60")]
    keepalive: u64,

    /// full screen: leave when the server goes away instead of reconnecting
    /// with backoff (default: reconnect)
    #[argh(switch)]
    no_reconnect: bool,

    /// connect with TLS, verifying that the server's certificate is valid
    /// for HOST (against the system's trusted roots, or --ca)
    #[argh(switch)]
    tls: bool,

    /// with --tls: trust the certificates in this PEM file instead of the
    /// system's roots (a private CA or a self-signed server certificate)
    #[argh(option)]
    ca: Option<std::path::PathBuf>,

    /// full screen: do not capture the mouse (the wheel then no longer
    /// scrolls, but the terminal's own text selection works without Shift)
    #[argh(switch)]
    no_mouse: bool,

    /// full screen: the folder of this device's end-to-end key and of the
    /// peers' pinned keys, made with mode 0600 files on first use (default:
    /// $XDG_DATA_HOME/loopchat/e2e, else ~/.local/share/loopchat/e2e)
    #[argh(option)]
    e2e_dir: Option<std::path::PathBuf>,

    /// the server's name, bound into every end-to-end handshake; both
    /// people must use the same (default: loopchat, the server's default)
    #[argh(option, default = "String::from(\"loopchat\")")]
    server_name: String,
}

/// The settings both modes use.
pub struct Options {
    pub addr: String,
    pub nick: Option<String>,
    pub password: Option<String>,
    pub keepalive: Option<Duration>,
    pub reconnect: bool,
    pub mouse: bool,
    pub e2e_dir: std::path::PathBuf,
    pub server_name: String,
}

/// `$XDG_DATA_HOME/loopchat/e2e`, else `~/.local/share/loopchat/e2e`, else
/// `.loopchat-e2e` in the working directory.
fn default_e2e_dir() -> std::path::PathBuf {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|home| std::path::Path::new(&home).join(".local/share"))
        });
    match data {
        Some(data) => data.join("loopchat/e2e"),
        None => std::path::PathBuf::from(".loopchat-e2e"),
    }
}

fn main() -> ExitCode {
    let args: Args = loopchat_protocol::cli::from_env(env!("CARGO_PKG_VERSION"));
    let password = args.password.or_else(|| {
        std::env::var("LOOPCHAT_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty())
    });
    // These strings are sent inside a protocol line; a line break or control
    // character in them would turn the rest into a command of its own.
    if let Some(nick) = &args.nick {
        if nick.is_empty() || nick.chars().any(|c| c.is_whitespace() || c.is_control()) {
            let _ = writeln!(
                io::stderr(),
                "invalid --nick {nick:?}: it must be one word without control characters"
            );
            return ExitCode::from(EXIT_USAGE);
        }
    }
    if password
        .as_deref()
        .is_some_and(|p| p.contains(['\n', '\r']))
    {
        let _ = writeln!(
            io::stderr(),
            "invalid password: it must not contain a line break"
        );
        return ExitCode::from(EXIT_USAGE);
    }
    if args.ca.is_some() && !args.tls {
        let _ = writeln!(io::stderr(), "--ca needs --tls");
        return ExitCode::from(EXIT_USAGE);
    }
    if args.tls {
        match loopchat_client::tls::client_config(args.ca.as_deref()) {
            Ok(config) => net::use_tls(config),
            Err(e) => {
                let _ = writeln!(io::stderr(), "{e}");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    }
    let addr = args.addr.unwrap_or_else(|| {
        String::from(if args.tls {
            loopchat_protocol::DEFAULT_TLS_ADDR
        } else {
            loopchat_protocol::DEFAULT_ADDR
        })
    });
    let options = Options {
        addr,
        nick: args.nick,
        password,
        keepalive: (args.keepalive > 0).then(|| Duration::from_secs(args.keepalive)),
        reconnect: !args.no_reconnect,
        mouse: !args.no_mouse,
        e2e_dir: args.e2e_dir.unwrap_or_else(default_e2e_dir),
        server_name: args.server_name,
    };

    // The first connection is made before the screen changes, so "cannot
    // connect" is an ordinary message with an ordinary exit status.
    let connection = match net::connect(&options.addr) {
        Ok(connection) => connection,
        // The TLS handshake failed (a refused certificate, not TLS): the
        // server is there, so no hint about starting it.
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            let _ = writeln!(io::stderr(), "{}: {e}", options.addr);
            return ExitCode::from(EXIT_UNREACHABLE);
        }
        Err(e) => {
            let _ = writeln!(
                io::stderr(),
                "cannot connect to {}: {e}; is the server running? start it with cargo run --release",
                options.addr
            );
            return ExitCode::from(EXIT_UNREACHABLE);
        }
    };

    let full_screen = !args.plain && io::stdin().is_terminal() && io::stdout().is_terminal();
    let code = if full_screen {
        tui::run(options, connection)
    } else {
        plain::run(options, connection)
    };
    ExitCode::from(code)
}

/// Matches the server's parsing: the command word ends at the first space and
/// command names are case-insensitive. A `\r` before the `\n` is not part of
/// the line for the server either.
pub fn is_quit_command(line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let word = line.split(|&b| b == b' ').next().unwrap_or(line);
    word.eq_ignore_ascii_case(b":quit")
}
