//! The numerics: parameters and texts as the documents give them.

use crate::irc::numeric;
use crate::irc::*;

fn numeric_line(numeric: Numeric, client: &str, params: &[&str], text: Option<&str>) -> String {
    let mut out = Vec::new();
    numeric::write(&mut out, "loopchat", numeric, client, params, text);
    String::from_utf8(out).unwrap()
}

#[test]
fn error_numerics_have_the_documents_parameters_and_texts() {
    use Numeric::*;
    for (numeric, params, expected) in [
        (
            NoSuchNick,
            &["bob"][..],
            ":loopchat 401 alice bob :No such nick/channel",
        ),
        (
            NoSuchChannel,
            &["#nope"],
            ":loopchat 403 alice #nope :No such channel",
        ),
        (
            CannotSendToChan,
            &["#a"],
            ":loopchat 404 alice #a :Cannot send to channel",
        ),
        (NoTextToSend, &[], ":loopchat 412 alice :No text to send"),
        (
            InputTooLong,
            &[],
            ":loopchat 417 alice :Input line was too long",
        ),
        (
            UnknownCommand,
            &["FOO"],
            ":loopchat 421 alice FOO :Unknown command",
        ),
        (
            NoNicknameGiven,
            &[],
            ":loopchat 431 alice :No nickname given",
        ),
        (
            ErroneusNickname,
            &["1x"],
            ":loopchat 432 alice 1x :Erroneus nickname",
        ),
        (
            NicknameInUse,
            &["bob"],
            ":loopchat 433 alice bob :Nickname is already in use",
        ),
        (
            NotOnChannel,
            &["#a"],
            ":loopchat 442 alice #a :You're not on that channel",
        ),
        (
            NotRegistered,
            &[],
            ":loopchat 451 alice :You have not registered",
        ),
        (
            NeedMoreParams,
            &["USER"],
            ":loopchat 461 alice USER :Not enough parameters",
        ),
        (
            AlreadyRegistered,
            &[],
            ":loopchat 462 alice :You may not reregister",
        ),
        (
            PasswdMismatch,
            &[],
            ":loopchat 464 alice :Password incorrect",
        ),
        (
            ChanOPrivsNeeded,
            &["#a"],
            ":loopchat 482 alice #a :You're not channel operator",
        ),
        (
            NoOperHost,
            &[],
            ":loopchat 491 alice :No O-lines for your host",
        ),
        (
            YoureOper,
            &[],
            ":loopchat 381 alice :You are now an IRC operator",
        ),
    ] {
        assert_eq!(
            numeric_line(numeric, "alice", params, None),
            format!("{expected}\r\n"),
            "{}",
            numeric.name()
        );
    }
    assert_eq!(
        numeric_line(
            NoRecipient,
            "alice",
            &[],
            Some(&numeric::no_recipient_text("PRIVMSG"))
        ),
        ":loopchat 411 alice :No recipient given (PRIVMSG)\r\n"
    );
}

#[test]
fn channel_replies_have_the_documents_shapes() {
    use Numeric::*;
    for (line, expected) in [
        (
            numeric_line(NamReply, "alice", &["=", "#rust"], Some("@alice bob")),
            ":loopchat 353 alice = #rust :@alice bob",
        ),
        (
            numeric_line(EndOfNames, "alice", &["#rust"], None),
            ":loopchat 366 alice #rust :End of /NAMES list",
        ),
        (
            numeric_line(List, "alice", &["#rust", "2"], Some("Rust talk")),
            ":loopchat 322 alice #rust 2 :Rust talk",
        ),
        (
            numeric_line(ListEnd, "alice", &[], None),
            ":loopchat 323 alice :End of /LIST",
        ),
        (
            numeric_line(Topic, "alice", &["#rust"], Some("Rust talk")),
            ":loopchat 332 alice #rust :Rust talk",
        ),
        (
            numeric_line(NoTopic, "alice", &["#rust"], None),
            ":loopchat 331 alice #rust :No topic is set",
        ),
        (
            numeric_line(TopicWhoTime, "alice", &["#rust", "bob", "1796638503"], None),
            ":loopchat 333 alice #rust bob 1796638503",
        ),
        (
            numeric_line(
                WhoReply,
                "alice",
                &["#rust", "bob", "loopchat", "loopchat", "bob", "H@"],
                Some("0 Bob"),
            ),
            ":loopchat 352 alice #rust bob loopchat loopchat bob H@ :0 Bob",
        ),
        (
            numeric_line(EndOfWho, "alice", &["#rust"], None),
            ":loopchat 315 alice #rust :End of WHO list",
        ),
        (
            numeric_line(
                WhoisUser,
                "alice",
                &["bob", "bob", "loopchat", "*"],
                Some("Bob"),
            ),
            ":loopchat 311 alice bob bob loopchat * :Bob",
        ),
        (
            numeric_line(EndOfWhois, "alice", &["bob"], None),
            ":loopchat 318 alice bob :End of /WHOIS list",
        ),
        (
            numeric_line(ChannelModeIs, "alice", &["#rust", "+nt"], None),
            ":loopchat 324 alice #rust +nt",
        ),
        (
            numeric_line(BanList, "alice", &["#rust", "eve!*@*"], None),
            ":loopchat 367 alice #rust eve!*@*",
        ),
        (
            numeric_line(EndOfBanList, "alice", &["#rust"], None),
            ":loopchat 368 alice #rust :End of channel ban list",
        ),
    ] {
        assert_eq!(line, format!("{expected}\r\n"));
    }
}

#[test]
fn the_numerics_table_is_consistent() {
    let mut codes = std::collections::HashSet::new();
    for &numeric in Numeric::ALL {
        let code = numeric.code();
        assert!(code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()));
        assert!(codes.insert(code), "{code} twice");
        let name = numeric.name();
        let error =
            code.starts_with('4') || matches!(code, "501" | "502" | "904" | "905" | "906" | "907");
        assert_eq!(name.starts_with("ERR_"), error, "{name} {code}");
        assert!(error || name.starts_with("RPL_"), "{name}");
        if let Some(text) = numeric.text() {
            assert!(text.is_ascii() && !text.is_empty());
        }
    }
}
