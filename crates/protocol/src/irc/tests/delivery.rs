//! Tags by capability, and `labeled-response`'s frames (IRCv3 examples).

use super::parse;
use crate::irc::caps::{Cap, CapSet};
use crate::irc::delivery::{prefix_each, render_caps, write_labelled, Tags};

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap()
}

#[test]
fn each_tag_is_written_only_with_its_capability() {
    let tags = Tags {
        time_ms: Some(1_546_612_406_123),
        msgid: Some(41),
        account: Some("alice"),
        batch: Some("b1"),
        label: Some("l;1"),
    };
    let all = CapSet::of(&Cap::ALL);
    let mut out = Vec::new();
    assert!(tags.write_prefix(all, &mut out));
    assert_eq!(
        text(out),
        "@label=l\\:1;batch=b1;time=2019-01-04T14:33:26.123Z;msgid=41;account=alice "
    );
    let cases = [
        (Cap::ServerTime, "@time=2019-01-04T14:33:26.123Z "),
        (Cap::MessageTags, "@msgid=41 "),
        (Cap::AccountTag, "@account=alice "),
        (Cap::Batch, "@batch=b1 "),
        (Cap::LabeledResponse, "@label=l\\:1 "),
    ];
    for (cap, want) in cases {
        let mut out = Vec::new();
        tags.write_prefix(CapSet::of(&[cap]), &mut out);
        assert_eq!(text(out), want, "{cap:?}");
    }
    let mut out = Vec::new();
    assert!(!tags.write_prefix(CapSet::of(&[Cap::EchoMessage, Cap::MultiPrefix]), &mut out));
    assert!(out.is_empty());
    // Without the data, nothing, whatever the caps.
    assert!(!Tags::default().write_prefix(all, &mut out));
}

#[test]
fn only_caps_that_change_shared_bytes_are_part_of_the_render_key() {
    let all = CapSet::of(&Cap::ALL);
    assert_eq!(
        render_caps(all),
        CapSet::of(&[
            Cap::ServerTime,
            Cap::MessageTags,
            Cap::AccountTag,
            Cap::ExtendedJoin
        ])
    );
    assert_eq!(
        render_caps(CapSet::of(&[
            Cap::EchoMessage,
            Cap::Batch,
            Cap::LabeledResponse
        ])),
        CapSet::EMPTY
    );
}

#[test]
fn every_message_of_a_rendering_gets_the_prefix() {
    let mut out = Vec::new();
    prefix_each(
        b"@msgid=9 ",
        b":a!a@s PRIVMSG #r :one\r\n:a!a@s PRIVMSG #r :two\r\n",
        &mut out,
    );
    assert_eq!(
        text(out),
        "@msgid=9 :a!a@s PRIVMSG #r :one\r\n@msgid=9 :a!a@s PRIVMSG #r :two\r\n"
    );
    let mut out = Vec::new();
    prefix_each(b"", b":s PONG s :x\r\n", &mut out);
    assert_eq!(text(out), ":s PONG s :x\r\n");
}

#[test]
fn a_labelled_answer_is_an_ack_a_labelled_message_or_a_batch() {
    let mut out = Vec::new();
    write_labelled("irc.test", "abc", "lr1", b"", &mut out);
    assert_eq!(text(out), "@label=abc :irc.test ACK\r\n");
    let mut out = Vec::new();
    write_labelled(
        "irc.test",
        "abc",
        "lr1",
        b":irc.test 221 alice +i\r\n",
        &mut out,
    );
    assert_eq!(text(out), "@label=abc :irc.test 221 alice +i\r\n");
    let mut out = Vec::new();
    write_labelled(
        "irc.test",
        "abc",
        "lr1",
        b"@time=2019-01-04T14:33:26.123Z :a!a@irc.test PRIVMSG #r :hi\r\n",
        &mut out,
    );
    assert_eq!(
        text(out),
        "@label=abc;time=2019-01-04T14:33:26.123Z :a!a@irc.test PRIVMSG #r :hi\r\n"
    );
    let mut out = Vec::new();
    write_labelled(
        "irc.test",
        "abc",
        "lr1",
        b":irc.test 311 alice bob bob irc.test * :bob\r\n:irc.test 318 alice bob :End of /WHOIS list\r\n",
        &mut out,
    );
    let out = text(out);
    assert_eq!(
        out,
        "@label=abc :irc.test BATCH +lr1 labeled-response\r\n\
         @batch=lr1 :irc.test 311 alice bob bob irc.test * :bob\r\n\
         @batch=lr1 :irc.test 318 alice bob :End of /WHOIS list\r\n\
         :irc.test BATCH -lr1\r\n"
    );
    for line in out.split_terminator("\r\n") {
        parse(line);
    }
}
