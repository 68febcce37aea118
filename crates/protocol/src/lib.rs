//! What both ends of a loopchat connection share. The line protocol:
//! parses one client line into a [`Command`], checks names, and cleans
//! text before anyone else sees it; the server's side in [`event`] (every
//! line it sends, typed), [`line`] (the line dialect: rendering those and
//! recognising them back) and [`time`]; the protocol's constants; [`tags`],
//! the tag prefix of protocol 1.2 in both directions; [`irc`], the IRC
//! codec (messages, numerics, registration) with no sockets; and [`cli`], the
//! command-line conventions of every loopchat program. No sockets here.
//!
//! The full contract is `docs/protocol.md`.

pub mod cli;
pub mod event;
pub mod irc;
pub mod line;
pub mod tags;
pub mod time;

pub use event::{Dialect, Error, Event, HelpRow, Missing, Reply, ServerLine, Stamp};
pub use line::{recognise, recognise_history};

use std::borrow::Cow;

/// The room every client joins on arrival; it never disappears.
pub const LOBBY: &str = "#lobby";

/// The address `cargo run --release` listens on for line clients.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7878";

/// The TLS line address used when a certificate is given and no address is.
pub const DEFAULT_TLS_ADDR: &str = "127.0.0.1:7443";

/// The web address `cargo run --release` serves the chat page on.
pub const DEFAULT_WEB_ADDR: &str = "127.0.0.1:7879";

/// The longest nick or room name (without the room's `#`).
pub const MAX_NAME_BYTES: usize = 32;

/// What one client line asks for. Borrows from the line.
#[derive(Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// Text for the current room (a line without a leading `:`, or with
    /// `::`, whose first colon is removed).
    Chat(&'a str),
    /// `:help`
    Help,
    /// `:nick NAME`
    Nick(&'a str),
    /// `:pm NAME TEXT` or `:msg NAME TEXT`
    PrivateMessage {
        /// The recipient's nick, as typed.
        to: &'a str,
        /// The message, verbatim.
        text: &'a str,
    },
    /// `:users [ROOM]`: the current room, or ROOM as typed.
    Users(Option<&'a str>),
    /// `:join ROOM`
    Join(&'a str),
    /// `:part [ROOM [REASON]]` (version 1.2)
    Part {
        /// The room as typed; `None`: the current room.
        room: Option<&'a str>,
        /// Why, verbatim, when given.
        reason: Option<&'a str>,
    },
    /// `:topic [TEXT]`: show the topic, or set it (`-` clears it).
    Topic(Option<&'a str>),
    /// `:op NICK`
    Op(&'a str),
    /// `:deop NICK`
    Deop(&'a str),
    /// `:kick NICK [REASON]`
    Kick {
        /// The nick as typed.
        nick: &'a str,
        /// Why, verbatim, when given.
        reason: Option<&'a str>,
    },
    /// `:ban NICK`
    Ban(&'a str),
    /// `:unban NICK`
    Unban(&'a str),
    /// `:bans`
    Bans,
    /// `:rooms`
    Rooms,
    /// `:me TEXT`
    Me(&'a str),
    /// `:ping [TOKEN]`
    Ping(Option<&'a str>),
    /// `:quit [REASON]`
    Quit(Option<&'a str>),
    /// `:auth PASSWORD`
    Auth(&'a str),
    /// `:history [N]`, with N as typed; see [`history_count`].
    History(Option<&'a str>),
    /// `:register PASSWORD` (the rest of the line).
    Register(&'a str),
    /// `:login NAME PASSWORD` (PASSWORD: the rest of the line).
    Login {
        /// The account's name, as typed.
        name: &'a str,
        /// The password, verbatim.
        password: &'a str,
    },
    /// `:token`
    Token,
    /// `:resume TOKEN`
    Resume(&'a str),
    /// `:logout`
    Logout,
    /// `:passwd OLD NEW` (OLD: the next word; NEW: the rest of the line).
    Passwd {
        /// The current password.
        old: &'a str,
        /// The new password, verbatim.
        new: &'a str,
    },
    /// `:whois NICK`
    Whois(&'a str),
    /// `:tags on` (true) or `:tags off` (false), protocol 1.2.
    Tags(bool),
    /// `:key KEY` (protocol 1.2, end-to-end encryption): the rest of the
    /// line, checked by the chat.
    Key(&'a str),
    /// `:keys NICK`
    Keys(&'a str),
    /// `:e2e NICK PAYLOAD` (PAYLOAD: the rest of the line, verbatim,
    /// checked by the chat).
    E2e {
        /// The recipient's nick, as typed.
        to: &'a str,
        /// The opaque payload, verbatim.
        payload: &'a str,
    },
    /// A known command without its required argument; holds the usage text.
    Usage(&'static str),
    /// A command word nobody knows, as typed (with its colon).
    Unknown(&'a str),
}

/// Parses a complete, non-empty line.
pub fn parse(line: &str) -> Command<'_> {
    let Some(body) = line.strip_prefix(':') else {
        return Command::Chat(line);
    };
    if body.starts_with(':') {
        return Command::Chat(body);
    }
    let (word, args) = match body.split_once(' ') {
        Some((word, args)) => (word, args),
        None => (body, ""),
    };
    let command = &line[..word.len() + 1];
    // The rest of the line is verbatim text; an empty rest is no argument.
    let rest = (!args.is_empty()).then_some(args);
    let name = args.split(' ').next().filter(|name| !name.is_empty());
    // After NAME: the rest of the line, verbatim; empty is none.
    let after_name = args
        .split_once(' ')
        .map(|(_, rest)| rest)
        .filter(|rest| !rest.is_empty());
    match word.to_ascii_lowercase().as_str() {
        "help" => Command::Help,
        "nick" => name.map_or(Command::Usage(":nick NAME"), Command::Nick),
        "pm" | "msg" => {
            let usage = if word.eq_ignore_ascii_case("pm") {
                ":pm NAME TEXT"
            } else {
                ":msg NAME TEXT"
            };
            match args.split_once(' ') {
                Some((to, text)) if !to.is_empty() && !text.is_empty() => {
                    Command::PrivateMessage { to, text }
                }
                _ => Command::Usage(usage),
            }
        }
        "users" => Command::Users(name),
        "join" => name.map_or(Command::Usage(":join ROOM"), Command::Join),
        "part" => Command::Part {
            room: name,
            reason: name.and(after_name),
        },
        "topic" => Command::Topic(rest),
        "op" => name.map_or(Command::Usage(":op NICK"), Command::Op),
        "deop" => name.map_or(Command::Usage(":deop NICK"), Command::Deop),
        "kick" => name.map_or(Command::Usage(":kick NICK [REASON]"), |nick| {
            Command::Kick {
                nick,
                reason: after_name,
            }
        }),
        "ban" => name.map_or(Command::Usage(":ban NICK"), Command::Ban),
        "unban" => name.map_or(Command::Usage(":unban NICK"), Command::Unban),
        "bans" => Command::Bans,
        "rooms" => Command::Rooms,
        "me" => rest.map_or(Command::Usage(":me TEXT"), Command::Me),
        "ping" => Command::Ping(rest),
        "quit" => Command::Quit(rest),
        "auth" => rest.map_or(Command::Usage(":auth PASSWORD"), Command::Auth),
        "history" => Command::History(rest),
        "register" => rest.map_or(Command::Usage(":register PASSWORD"), Command::Register),
        "login" => match args.split_once(' ') {
            Some((name, password)) if !name.is_empty() && !password.is_empty() => {
                Command::Login { name, password }
            }
            _ => Command::Usage(":login NAME PASSWORD"),
        },
        "token" => Command::Token,
        "resume" => rest.map_or(Command::Usage(":resume TOKEN"), Command::Resume),
        "logout" => Command::Logout,
        "passwd" => match args.split_once(' ') {
            Some((old, new)) if !old.is_empty() && !new.is_empty() => Command::Passwd { old, new },
            _ => Command::Usage(":passwd OLD NEW"),
        },
        "whois" => name.map_or(Command::Usage(":whois NICK"), Command::Whois),
        "tags" => match rest {
            Some(on) if on.eq_ignore_ascii_case("on") => Command::Tags(true),
            Some(off) if off.eq_ignore_ascii_case("off") => Command::Tags(false),
            _ => Command::Usage(TAGS_USAGE),
        },
        "key" => rest.map_or(Command::Usage(KEY_USAGE), Command::Key),
        "keys" => name.map_or(Command::Usage(":keys NICK"), Command::Keys),
        "e2e" => match args.split_once(' ') {
            Some((to, payload)) if !to.is_empty() && !payload.is_empty() => {
                Command::E2e { to, payload }
            }
            _ => Command::Usage(E2E_USAGE),
        },
        _ => Command::Unknown(command),
    }
}

/// The usage error for `:key` without a key.
pub const KEY_USAGE: &str = ":key KEY";

/// The usage error for `:e2e` without a nick and a payload, or with a
/// payload outside printable ASCII or with a space.
pub const E2E_USAGE: &str = ":e2e NICK PAYLOAD";

/// The usage error for `:tags` without `on` or `off`.
pub const TAGS_USAGE: &str = ":tags on|off";

/// The usage error for a bad `:history` argument.
pub const HISTORY_USAGE: &str = ":history [N]";

/// The protocol's default N for `:history`.
pub const HISTORY_DEFAULT: usize = 20;

/// How many lines `:history` with argument `arg` asks for: 20 without one;
/// otherwise ASCII digits worth at least 1, any length, clamped to `max`.
/// `None` for anything else (answered with the usage).
pub fn history_count(arg: Option<&str>, max: usize) -> Option<usize> {
    let Some(arg) = arg else {
        return Some(HISTORY_DEFAULT.min(max));
    };
    if arg.is_empty() || !arg.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = arg.trim_start_matches('0');
    if digits.is_empty() {
        return None;
    }
    // Past 20 digits it is above any maximum; no need to parse it. 20
    // digits may still fit (u64::MAX has 20), so they are parsed (a
    // fuzzing finding, docs/fuzzing.md).
    let value = if digits.len() > 20 {
        usize::MAX
    } else {
        digits
            .parse::<u64>()
            .map_or(usize::MAX, |v| usize::try_from(v).unwrap_or(usize::MAX))
    };
    Some(value.min(max))
}

/// Nicks no client may take (version 1.1): the first word after `* ` of
/// every information line the server sends, so `:me` can never produce a
/// line that reads as the server's (`* server shutting down`). Compared
/// case-insensitively. A test renders one of every line in the
/// vocabulary ([`event`]) and checks that these are exactly the words
/// that start the server's information lines; another checks that the
/// web page's copy (`SERVER_WORDS` in `web/app.js`) is this list.
pub const RESERVED_NICKS: [&str; 21] = [
    "bans",
    "bye",
    "current",
    "history",
    "no",
    "not",
    "password",
    "pong",
    "rooms",
    "server",
    "tags",
    "topic",
    "users",
    "welcome",
    "you",
    // Accounts (version 1.2).
    "registered",
    "logged",
    "token",
    "whois",
    // End-to-end encryption (version 1.2).
    "key",
    "keys",
];

/// Whether `nick` is a guest nick (`guest` and digits, any letter case):
/// the server gives these out, so none can be registered.
pub fn is_guest_nick(nick: &str) -> bool {
    nick.get(..5)
        .is_some_and(|head| head.eq_ignore_ascii_case("guest"))
        && nick.len() > 5
        && nick.as_bytes()[5..].iter().all(u8::is_ascii_digit)
}

/// Whether `nick` is reserved (see [`RESERVED_NICKS`]).
pub fn is_reserved_nick(nick: &str) -> bool {
    RESERVED_NICKS
        .iter()
        .any(|reserved| reserved.eq_ignore_ascii_case(nick))
}

/// Whether `name` is a valid nick, or room name without its `#`:
/// 1–32 of `A-Z a-z 0-9 _ -`, starting with a letter.
pub fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_NAME_BYTES
        && bytes[0].is_ascii_alphabetic()
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether a character may never reach another client's terminal: C0 except
/// TAB, DEL, and C1.
pub(crate) fn is_forbidden_control(c: char) -> bool {
    ((c.is_control() && c != '\t') || ('\u{80}'..='\u{9f}').contains(&c))
        && !irc::text::is_format_code(c)
}

/// Replaces every control character (C0 except TAB, DEL, C1) with U+FFFD so
/// no client can paint another's terminal. IRC formatting codes (bold,
/// colours…: [`irc::text::is_format_code`]) are kept: IRC clients get them,
/// and the line dialect removes them when it renders (protocol 1.2,
/// "IRC"). Borrows when there is nothing to replace, which is almost
/// always.
pub fn sanitize(text: &str) -> Cow<'_, str> {
    // C0 and DEL are single bytes; C1 is 0xC2 0x80..=0x9F in UTF-8. A
    // fold with no early exit, so the compiler checks 16 bytes at a time
    // (the chat line's hot path: this runs for every line sent).
    let clean = !text.as_bytes().iter().fold(false, |suspect, &b| {
        suspect | ((b < 0x20) & (b != b'\t')) | (b == 0x7f) | (b == 0xc2)
    });
    if clean || !text.chars().any(is_forbidden_control) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| {
                if is_forbidden_control(c) {
                    '\u{fffd}'
                } else {
                    c
                }
            })
            .collect(),
    )
}

/// Compares a password attempt with the secret in time that depends only on
/// the attempt's length, never on where the two first differ.
pub fn password_matches(attempt: &str, secret: &str) -> bool {
    let (attempt, secret) = (attempt.as_bytes(), secret.as_bytes());
    let mut diff = u8::from(attempt.len() != secret.len());
    if secret.is_empty() {
        return attempt.is_empty();
    }
    for (i, &byte) in attempt.iter().enumerate() {
        diff |= byte ^ secret[i % secret.len()];
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use Command::*;

    #[test]
    fn chat_lines() {
        assert_eq!(parse("hello"), Chat("hello"));
        assert_eq!(parse("  spaced  "), Chat("  spaced  "));
        assert_eq!(parse("::colon"), Chat(":colon"));
        assert_eq!(parse("::"), Chat(":"));
    }

    #[test]
    fn commands_are_case_insensitive() {
        assert_eq!(parse(":HELP"), Help);
        assert_eq!(parse(":Nick bob"), Nick("bob"));
        assert_eq!(parse(":UsErS"), Users(None));
    }

    #[test]
    fn arguments() {
        assert_eq!(parse(":nick bob extra"), Nick("bob"));
        assert_eq!(
            parse(":pm bob hello  world "),
            PrivateMessage {
                to: "bob",
                text: "hello  world "
            }
        );
        assert_eq!(
            parse(":msg bob hi"),
            PrivateMessage {
                to: "bob",
                text: "hi"
            }
        );
        assert_eq!(parse(":join #rust"), Join("#rust"));
        assert_eq!(parse(":me waves  "), Me("waves  "));
        assert_eq!(parse(":ping"), Ping(None));
        assert_eq!(parse(":ping tok en"), Ping(Some("tok en")));
        assert_eq!(parse(":quit"), Quit(None));
        assert_eq!(parse(":quit gone home"), Quit(Some("gone home")));
        assert_eq!(parse(":auth pass word"), Auth("pass word"));
        assert_eq!(parse(":users #rust extra"), Users(Some("#rust")));
    }

    #[test]
    fn room_and_operator_arguments() {
        let part = |room, reason| Part { room, reason };
        assert_eq!(parse(":part"), part(None, None));
        assert_eq!(parse(":part "), part(None, None));
        assert_eq!(parse(":PART #rust"), part(Some("#rust"), None));
        assert_eq!(parse(":part rust "), part(Some("rust"), None));
        assert_eq!(
            parse(":part rust gone  home "),
            part(Some("rust"), Some("gone  home "))
        );
        assert_eq!(parse(":topic"), Topic(None));
        assert_eq!(parse(":topic  two  words"), Topic(Some(" two  words")));
        assert_eq!(parse(":topic -"), Topic(Some("-")));
        assert_eq!(parse(":op bob x"), Op("bob"));
        assert_eq!(parse(":deop bob"), Deop("bob"));
        assert_eq!(
            parse(":kick bob"),
            Kick {
                nick: "bob",
                reason: None
            }
        );
        assert_eq!(
            parse(":kick bob spam (again)"),
            Kick {
                nick: "bob",
                reason: Some("spam (again)")
            }
        );
        assert_eq!(parse(":ban Bob"), Ban("Bob"));
        assert_eq!(parse(":unban bob"), Unban("bob"));
        assert_eq!(parse(":bans"), Bans);
        for (line, usage) in [
            (":op", ":op NICK"),
            (":deop ", ":deop NICK"),
            (":kick", ":kick NICK [REASON]"),
            (":ban", ":ban NICK"),
            (":unban", ":unban NICK"),
        ] {
            assert_eq!(parse(line), Usage(usage), "{line}");
        }
    }

    #[test]
    fn end_to_end_commands() {
        assert_eq!(parse(":key AbC"), Key("AbC"));
        assert_eq!(parse(":KEY a b"), Key("a b"), "the chat refuses it");
        assert_eq!(parse(":keys alice x"), Keys("alice"));
        assert_eq!(
            parse(":e2e bob v1.a.x y"),
            E2e {
                to: "bob",
                payload: "v1.a.x y"
            },
            "the chat refuses the space"
        );
        for (line, usage) in [
            (":key", KEY_USAGE),
            (":keys ", ":keys NICK"),
            (":e2e", E2E_USAGE),
            (":e2e bob", E2E_USAGE),
            (":e2e bob ", E2E_USAGE),
            (":e2e  x", E2E_USAGE),
        ] {
            assert_eq!(parse(line), Usage(usage), "{line}");
        }
    }

    #[test]
    fn account_commands() {
        assert_eq!(parse(":register pass word "), Register("pass word "));
        assert_eq!(
            parse(":LOGIN alice pass word"),
            Login {
                name: "alice",
                password: "pass word"
            }
        );
        assert_eq!(parse(":token"), Token);
        assert_eq!(parse(":resume lc_abc"), Resume("lc_abc"));
        assert_eq!(parse(":logout"), Logout);
        assert_eq!(
            parse(":passwd old new one"),
            Passwd {
                old: "old",
                new: "new one"
            }
        );
        assert_eq!(parse(":whois bob"), Whois("bob"));
        for (line, usage) in [
            (":register", ":register PASSWORD"),
            (":login", ":login NAME PASSWORD"),
            (":login alice", ":login NAME PASSWORD"),
            (":login alice ", ":login NAME PASSWORD"),
            (":login  pw", ":login NAME PASSWORD"),
            (":resume", ":resume TOKEN"),
            (":passwd", ":passwd OLD NEW"),
            (":passwd old", ":passwd OLD NEW"),
            (":passwd old ", ":passwd OLD NEW"),
            (":whois", ":whois NICK"),
        ] {
            assert_eq!(parse(line), Usage(usage), "{line}");
        }
    }

    #[test]
    fn guest_nicks() {
        for nick in ["guest1", "Guest42", "GUEST007"] {
            assert!(is_guest_nick(nick), "{nick}");
        }
        for nick in ["guest", "guests", "guest1a", "alice", "gue", "guest-1"] {
            assert!(!is_guest_nick(nick), "{nick}");
        }
    }

    #[test]
    fn missing_arguments_get_usage() {
        assert_eq!(parse(":nick"), Usage(":nick NAME"));
        assert_eq!(parse(":nick "), Usage(":nick NAME"));
        assert_eq!(parse(":pm"), Usage(":pm NAME TEXT"));
        assert_eq!(parse(":pm bob"), Usage(":pm NAME TEXT"));
        assert_eq!(parse(":pm bob "), Usage(":pm NAME TEXT"));
        assert_eq!(parse(":MSG bob"), Usage(":msg NAME TEXT"));
        assert_eq!(parse(":join"), Usage(":join ROOM"));
        assert_eq!(parse(":me"), Usage(":me TEXT"));
        assert_eq!(parse(":auth"), Usage(":auth PASSWORD"));
    }

    #[test]
    fn unknown_commands_keep_their_spelling() {
        assert_eq!(parse(":Foo bar"), Unknown(":Foo"));
        assert_eq!(parse(":"), Unknown(":"));
        assert_eq!(parse(": x"), Unknown(":"));
    }

    #[test]
    fn history_arguments() {
        assert_eq!(parse(":history"), History(None));
        assert_eq!(parse(":HISTORY 5"), History(Some("5")));
        assert_eq!(parse(":history 5 x"), History(Some("5 x")));
        assert_eq!(parse(":tags on"), Tags(true));
        assert_eq!(parse(":TAGS Off"), Tags(false));
        for wrong in [":tags", ":tags maybe", ":tags on now", ":tags  on"] {
            assert_eq!(parse(wrong), Usage(":tags on|off"), "{wrong}");
        }
        assert_eq!(history_count(None, 100), Some(20));
        assert_eq!(history_count(Some("1"), 100), Some(1));
        assert_eq!(history_count(Some("007"), 100), Some(7));
        assert_eq!(history_count(Some("100"), 100), Some(100));
        assert_eq!(history_count(Some("101"), 100), Some(100));
        let huge = "9".repeat(500);
        assert_eq!(history_count(Some(&huge), 100), Some(100));
        assert_eq!(history_count(Some("18446744073709551616"), 30), Some(30));
        for bad in [
            "0", "000", "-1", "+1", "1.5", " 1", "1 ", "5 x", "abc", "\u{661}",
        ] {
            assert_eq!(history_count(Some(bad), 100), None, "{bad:?}");
        }
    }

    /// Fuzzing finding (docs/fuzzing.md): a 20-digit count below
    /// `u64::MAX` was taken as above any maximum, so a maximum larger than
    /// it did not give the count back.
    #[test]
    fn history_count_of_twenty_digits_below_the_maximum_is_exact() {
        let arg = "00012870000080000852614";
        assert_eq!(
            history_count(Some(arg), usize::MAX),
            Some(12_870_000_080_000_852_614)
        );
        assert_eq!(history_count(Some(arg), 100), Some(100));
        assert_eq!(
            history_count(Some("18446744073709551615"), usize::MAX),
            Some(usize::MAX)
        );
        assert_eq!(
            history_count(Some("18446744073709551616"), usize::MAX),
            Some(usize::MAX)
        );
    }

    #[test]
    fn names() {
        assert!(is_valid_name("a"));
        assert!(is_valid_name("Alice_9-x"));
        assert!(is_valid_name(&"a".repeat(32)));
        assert!(!is_valid_name(&"a".repeat(33)));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("9lives"));
        assert!(!is_valid_name("_x"));
        assert!(!is_valid_name("a b"));
        assert!(!is_valid_name("a\rb"));
        assert!(!is_valid_name("émile"));
        assert!(!is_valid_name("#room"));
    }

    #[test]
    fn reserved_nicks_ignore_case() {
        assert!(is_reserved_nick("server"));
        assert!(is_reserved_nick("Users"));
        assert!(is_reserved_nick("BYE"));
        assert!(!is_reserved_nick("servers"));
        assert!(!is_reserved_nick("guest1"));
    }

    #[test]
    fn sanitize_replaces_c0_del_c1_but_not_tab() {
        assert!(matches!(sanitize("plain\ttext é ✓"), Cow::Borrowed(_)));
        assert_eq!(sanitize("a\x1b[31mb"), "a\u{fffd}[31mb");
        assert_eq!(
            sanitize("\0\r\x7f\u{85}\u{9b}\u{a0}"),
            "\u{fffd}\u{fffd}\u{fffd}\u{fffd}\u{fffd}\u{a0}"
        );
    }

    #[test]
    fn passwords() {
        assert!(password_matches("secret", "secret"));
        assert!(!password_matches("secreT", "secret"));
        assert!(!password_matches("secret1", "secret"));
        assert!(!password_matches("secre", "secret"));
        assert!(!password_matches("", "secret"));
        assert!(!password_matches("secretsecret", "secret"));
    }

    #[test]
    fn help_lists_auth_only_with_a_password() {
        assert_eq!(HelpRow::rows(false).count(), HelpRow::ALL.len() - 1);
        assert!(HelpRow::rows(true).any(|row| row == HelpRow::Auth));
        assert!(HelpRow::rows(false)
            .all(|row| line::help_text(row).starts_with("* :") && row != HelpRow::Auth));
    }

    proptest::proptest! {
        /// Parsing never panics, and whatever comes back borrows from the
        /// line it was given.
        #[test]
        fn any_line_parses(line in "\\PC*|:[a-zA-Z]{0,6}( .{0,20}){0,3}") {
            let _ = parse(&line);
        }

        /// No control character survives sanitizing, and clean text is
        /// left untouched.
        #[test]
        fn sanitized_text_has_no_controls(text in ".{0,64}") {
            let clean = sanitize(&text);
            proptest::prop_assert!(!clean.chars().any(is_forbidden_control));
            if !text.chars().any(is_forbidden_control) {
                proptest::prop_assert_eq!(clean.as_ref(), text.as_str());
            }
        }
    }
}
