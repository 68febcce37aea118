//! NAMES and topics.

use super::parse;
use crate::irc::replies::{write_names, write_topic, Topic};
use crate::irc::MAX_MESSAGE_BYTES;

fn lines(out: &[u8]) -> Vec<String> {
    String::from_utf8(out.to_vec())
        .unwrap()
        .split_terminator("\r\n")
        .map(str::to_owned)
        .collect()
}

#[test]
fn names_of_a_small_channel_are_one_353_and_366() {
    let mut out = Vec::new();
    write_names(&mut out, "loopchat", "alice", "#rust", ["@alice", "bob"]);
    assert_eq!(
        lines(&out),
        [
            ":loopchat 353 alice = #rust :@alice bob",
            ":loopchat 366 alice #rust :End of /NAMES list"
        ]
    );
    let mut out = Vec::new();
    write_names(&mut out, "loopchat", "alice", "#empty", []);
    assert_eq!(
        lines(&out),
        [":loopchat 366 alice #empty :End of /NAMES list"]
    );
}

#[test]
fn names_of_a_big_channel_split_into_lines_that_fit() {
    let nicks: Vec<String> = (0..300)
        .map(|i| format!("user{i:04}-{}", "x".repeat(20)))
        .collect();
    let mut out = Vec::new();
    write_names(
        &mut out,
        "loopchat",
        "alice",
        "#big",
        nicks.iter().map(String::as_str),
    );
    let lines = lines(&out);
    assert!(lines.len() > 10);
    let mut seen = Vec::new();
    for line in &lines[..lines.len() - 1] {
        assert!(line.len() + 2 <= MAX_MESSAGE_BYTES, "{}", line.len());
        // Full lines: another nick would not have fitted.
        let m = parse(line);
        assert_eq!(
            (m.command, m.param(1), m.param(2)),
            ("353", Some("="), Some("#big"))
        );
        seen.extend(m.param(3).unwrap().split(' ').map(str::to_owned));
    }
    assert_eq!(seen, nicks);
    assert!(lines[..lines.len() - 2]
        .iter()
        .all(|line| line.len() + 2 + 1 + nicks[0].len() > MAX_MESSAGE_BYTES));
    assert_eq!(parse(lines.last().unwrap()).command, "366");
}

#[test]
fn a_topic_is_332_and_333_and_none_is_331_only_when_asked() {
    let topic = Topic {
        text: "Rust talk",
        set_by: "bob",
        set_at: 1_796_638_503,
    };
    let mut out = Vec::new();
    write_topic(&mut out, "loopchat", "alice", "#rust", Some(topic), false);
    assert_eq!(
        lines(&out),
        [
            ":loopchat 332 alice #rust :Rust talk",
            ":loopchat 333 alice #rust bob 1796638503"
        ]
    );
    let mut out = Vec::new();
    write_topic(&mut out, "loopchat", "alice", "#rust", None, false);
    assert!(out.is_empty());
    write_topic(&mut out, "loopchat", "alice", "#rust", None, true);
    assert_eq!(lines(&out), [":loopchat 331 alice #rust :No topic is set"]);
}
