//! `labeled-response`: a labelled command's answer carries the label: on
//! its one message, as `ACK` when there is none, or as a
//! `labeled-response` batch around several (a `chathistory` batch nested
//! inside).

use crate::client::{irc_addr, numeric, start, Irc, SERVER};
use crate::common::{Client, Lines};
use crate::{split_tags, tag, with_caps};

#[test]
fn labelled_commands_get_their_label_on_one_message_an_ack_or_a_batch() {
    let server = start();
    let mut bob = Irc::register(irc_addr(&server), "bob");
    bob.ask("JOIN #rust");
    let mut irc = with_caps(irc_addr(&server), "alice", "labeled-response batch");
    irc.ask("JOIN #rust");
    bob.sync();
    // One message.
    assert_eq!(
        irc.ask("@label=one PING token"),
        [format!("@label=one :{SERVER} PONG {SERVER} :token")]
    );
    // No answer (no echo-message): ACK; bob gets the message unlabelled.
    assert_eq!(
        irc.ask("@label=two PRIVMSG #rust :hello"),
        [format!("@label=two :{SERVER} ACK")]
    );
    assert_eq!(
        bob.line(),
        format!(":alice!alice@{SERVER} PRIVMSG #rust :hello")
    );
    // Several: a batch, each message in it.
    let whois = irc.ask("@label=three WHOIS bob");
    let (tags, open) = split_tags(&whois[0]);
    assert_eq!(tags, [("label".to_string(), "three".to_string())]);
    let id = open
        .strip_prefix(&format!(":{SERVER} BATCH +"))
        .and_then(|rest| rest.strip_suffix(" labeled-response"))
        .unwrap_or_else(|| panic!("{whois:?}"))
        .to_string();
    assert_eq!(whois.last().unwrap(), &format!(":{SERVER} BATCH -{id}"));
    let inside = &whois[1..whois.len() - 1];
    assert!(inside.len() >= 2, "{whois:?}");
    for line in inside {
        assert_eq!(tag(line, "batch").as_deref(), Some(id.as_str()), "{line}");
    }
    assert!(inside
        .iter()
        .any(|l| split_tags(l).1 == numeric("318", "alice", "bob :End of /WHOIS list")));
    // Without the label, nothing changes.
    assert_eq!(
        irc.ask("PING plain"),
        [format!(":{SERVER} PONG {SERVER} :plain")]
    );
}

#[test]
fn a_chathistory_batch_nests_in_the_labelled_one() {
    let server = start();
    let mut carol = Client::named(server.addr(), "carol");
    carol.send(":join #rust");
    carol.expect("* carol joined #rust");
    carol.send("one");
    carol.send("two");
    carol.sync();
    let mut irc = with_caps(
        irc_addr(&server),
        "reader",
        "labeled-response batch draft/chathistory",
    );
    irc.ask("JOIN #rust");
    let lines = irc.ask("@label=h CHATHISTORY LATEST #rust * 5");
    assert_eq!(lines.len(), 6, "{lines:?}");
    let outer = split_tags(&lines[0])
        .1
        .strip_prefix(&format!(":{SERVER} BATCH +"))
        .and_then(|rest| rest.strip_suffix(" labeled-response"))
        .unwrap_or_else(|| panic!("{lines:?}"))
        .to_string();
    assert_eq!(tag(&lines[0], "label").as_deref(), Some("h"));
    let (tags, open) = split_tags(&lines[1]);
    assert_eq!(tags, [("batch".to_string(), outer.clone())]);
    let inner = open
        .strip_prefix(&format!(":{SERVER} BATCH +"))
        .and_then(|rest| rest.strip_suffix(" chathistory #rust"))
        .unwrap_or_else(|| panic!("{lines:?}"))
        .to_string();
    for (line, text) in lines[2..4].iter().zip(["one", "two"]) {
        assert_eq!(tag(line, "batch").as_deref(), Some(inner.as_str()));
        assert!(line.ends_with(&format!("PRIVMSG #rust :{text}")), "{line}");
    }
    assert_eq!(lines[4], format!("@batch={outer} :{SERVER} BATCH -{inner}"));
    assert_eq!(lines[5], format!(":{SERVER} BATCH -{outer}"));
}
