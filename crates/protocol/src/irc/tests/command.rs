//! A registered client's messages as typed commands.

use super::parse;
use crate::irc::command::{self, list, room_name, Command, Refusal};
use crate::irc::message::Params;

fn command(line: &str) -> Command<'_> {
    command::parse(&parse(line))
}

#[test]
fn privmsg_and_notice_to_channels_and_nicks() {
    assert_eq!(
        command("PRIVMSG #rust,bob :hello there"),
        Command::Message {
            targets: "#rust,bob",
            text: "hello there",
            notice: false
        }
    );
    assert_eq!(list("#rust,bob,,").collect::<Vec<_>>(), ["#rust", "bob"]);
    assert_eq!(
        command("NOTICE bob hi"),
        Command::Message {
            targets: "bob",
            text: "hi",
            notice: true
        }
    );
}

#[test]
fn ctcp_action_is_an_action_and_other_ctcp_is_ignored() {
    assert_eq!(
        command("PRIVMSG #c :\x01ACTION waves\x01"),
        Command::Action {
            targets: "#c",
            text: "waves"
        }
    );
    assert_eq!(command("PRIVMSG bob :\x01VERSION\x01"), Command::Ctcp);
}

#[test]
fn privmsg_without_recipient_or_text_is_411_or_412_and_notice_is_silent() {
    assert_eq!(
        command("PRIVMSG"),
        Command::Refused(Refusal::NoRecipient("PRIVMSG"))
    );
    assert_eq!(
        command("PRIVMSG #a"),
        Command::Refused(Refusal::NoTextToSend)
    );
    assert_eq!(
        command("PRIVMSG #a :"),
        Command::Refused(Refusal::NoTextToSend)
    );
    assert_eq!(command("NOTICE"), Command::Refused(Refusal::Silent));
    assert_eq!(command("NOTICE #a"), Command::Refused(Refusal::Silent));
    let write = |refusal: Refusal<'_>| {
        let mut out = Vec::new();
        refusal.write("loopchat", "alice", &mut out);
        String::from_utf8(out).unwrap()
    };
    assert_eq!(
        write(Refusal::NoRecipient("PRIVMSG")),
        ":loopchat 411 alice :No recipient given (PRIVMSG)\r\n"
    );
    assert_eq!(
        write(Refusal::NoTextToSend),
        ":loopchat 412 alice :No text to send\r\n"
    );
    assert_eq!(
        write(Refusal::NeedMoreParams("JOIN")),
        ":loopchat 461 alice JOIN :Not enough parameters\r\n"
    );
    assert_eq!(
        write(Refusal::UnknownCommand("FOO")),
        ":loopchat 421 alice FOO :Unknown command\r\n"
    );
    assert_eq!(write(Refusal::Silent), "");
}

#[test]
fn join_part_and_channel_names() {
    assert_eq!(
        command("JOIN #a,#b key"),
        Command::Join { channels: "#a,#b" }
    );
    assert_eq!(command("JOIN 0"), Command::PartAll);
    assert_eq!(
        command("JOIN"),
        Command::Refused(Refusal::NeedMoreParams("JOIN"))
    );
    assert_eq!(
        command("PART #a,#b :gone home"),
        Command::Part {
            channels: "#a,#b",
            reason: Some("gone home")
        }
    );
    assert_eq!(
        command("PART #a"),
        Command::Part {
            channels: "#a",
            reason: None
        }
    );
    assert_eq!(room_name("#rust"), Some("rust"));
    for bad in ["rust", "#", "#a b", "#1abc", "&local", "##x"] {
        assert_eq!(room_name(bad), None, "{bad}");
    }
}

#[test]
fn queries_and_channel_operator_commands() {
    assert_eq!(command("NICK alicia"), Command::Nick("alicia"));
    assert_eq!(
        command("TOPIC #a"),
        Command::Topic {
            channel: "#a",
            topic: None
        }
    );
    assert_eq!(
        command("TOPIC #a :"),
        Command::Topic {
            channel: "#a",
            topic: Some("")
        }
    );
    assert_eq!(command("NAMES #a"), Command::Names(Some("#a")));
    assert_eq!(command("LIST"), Command::List(None));
    assert_eq!(command("WHO #a"), Command::Who(Some("#a")));
    assert_eq!(command("WHOIS bob"), Command::Whois("bob"));
    assert_eq!(command("WHOIS loopchat bob"), Command::Whois("bob"));
    assert_eq!(
        command("MODE #a"),
        Command::Mode {
            target: "#a",
            changes: Params::default()
        }
    );
    assert_eq!(
        command("MODE #a +o bob"),
        Command::Mode {
            target: "#a",
            changes: Params::new(&["+o", "bob"]).unwrap()
        }
    );
    assert_eq!(
        command("KICK #a bob :spam"),
        Command::Kick {
            channel: "#a",
            nick: "bob",
            reason: Some("spam")
        }
    );
    assert_eq!(command("AWAY :lunch"), Command::Away(Some("lunch")));
    assert_eq!(command("AWAY"), Command::Away(None));
    assert_eq!(
        command("ISON alice bob"),
        Command::Ison(Params::new(&["alice", "bob"]).unwrap())
    );
    assert_eq!(
        command("OPER admin secret"),
        Command::Oper {
            name: "admin",
            password: "secret"
        }
    );
    assert_eq!(command("motd"), Command::Motd);
    assert_eq!(command("LUSERS"), Command::Lusers);
}

#[test]
fn missing_parameters_are_461_and_unknown_commands_421() {
    for line in [
        "PART",
        "NICK",
        "TOPIC",
        "WHOIS",
        "MODE",
        "KICK #a",
        "ISON",
        "USERHOST",
        "OPER admin",
    ] {
        let name = line.split(' ').next().unwrap();
        assert_eq!(
            command(line),
            Command::Refused(Refusal::NeedMoreParams(name)),
            "{line}"
        );
    }
    assert_eq!(
        command("FROB x"),
        Command::Refused(Refusal::UnknownCommand("FROB"))
    );
}
