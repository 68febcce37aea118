//! Unit tests of the tag codec, and property tests: escaping round-trips
//! any string, a rendered prefix parses back to its tags, any client line
//! parses without panicking.

use super::*;
use proptest::prelude::*;

fn label_of(line: &str) -> Option<String> {
    parse_client_line(line)
        .expect("valid prefix")
        .label
        .map(|label| label.as_str().to_string())
}

#[test]
fn a_line_without_at_is_left_alone() {
    for line in ["hello", ":tags on", " @x=1 hi", "::@x"] {
        assert_eq!(
            parse_client_line(line),
            Ok(ClientLine { label: None, line })
        );
    }
}

#[test]
fn the_label_is_taken_and_the_line_follows_the_space() {
    let parsed = parse_client_line("@label=a-1_Z :ping tok").unwrap();
    assert_eq!(parsed.label.unwrap().as_str(), "a-1_Z");
    assert_eq!(parsed.line, ":ping tok");
    // Only one space belongs to the prefix: the rest is verbatim.
    assert_eq!(parse_client_line("@label=x  hi ").unwrap().line, " hi ");
}

#[test]
fn chat_starting_with_at_is_sent_by_labelling_it() {
    let parsed = parse_client_line("@label=1 @all lunch?").unwrap();
    assert_eq!(parsed.line, "@all lunch?");
    assert_eq!(parse_client_line("@all lunch?"), Err(TagError::NoValue));
}

#[test]
fn other_client_tags_are_ignored() {
    let parsed = parse_client_line("@+draft/reply=7;x=;vendor.example/k=v\\s1 hi").unwrap();
    assert_eq!(
        parsed,
        ClientLine {
            label: None,
            line: "hi"
        }
    );
    assert_eq!(label_of("@a=1;label=L;b=2 hi").as_deref(), Some("L"));
}

#[test]
fn a_repeated_label_counts_once_the_last() {
    assert_eq!(
        label_of("@label=first;label=last hi").as_deref(),
        Some("last")
    );
    // Only the last one is checked: an earlier bad one does not matter.
    assert_eq!(
        label_of("@label=no\\sgood;label=ok hi").as_deref(),
        Some("ok")
    );
    assert_eq!(
        parse_client_line("@label=ok;label=no\\sgood hi"),
        Err(TagError::BadLabel)
    );
}

#[test]
fn label_is_1_to_64_of_letters_digits_underscore_hyphen() {
    let longest = "a".repeat(MAX_LABEL_BYTES);
    assert_eq!(
        label_of(&format!("@label={longest} hi")),
        Some(longest.clone())
    );
    assert_eq!(
        parse_client_line(&format!("@label={longest}b hi")),
        Err(TagError::LabelTooLong)
    );
    for bad in ["", "a.b", "a/b", "é", "a+b", "a\\sb", "a\\:b", "a=b"] {
        assert_eq!(
            parse_client_line(&format!("@label={bad} hi")),
            Err(TagError::BadLabel),
            "{bad:?}"
        );
    }
    assert_eq!(Label::new("x y"), Err(TagError::BadLabel));
    assert_eq!(Label::new(&"9".repeat(65)), Err(TagError::LabelTooLong));
}

#[test]
fn the_label_is_unescaped_before_it_is_checked() {
    // `\b` is `b`, a lone `\` at the end is dropped: both valid.
    assert_eq!(label_of("@label=a\\b hi").as_deref(), Some("ab"));
    assert_eq!(label_of("@label=ab\\ hi").as_deref(), Some("ab"));
    assert_eq!(parse_client_line("@label=\\ hi"), Err(TagError::BadLabel));
}

#[test]
fn malformed_prefixes_are_refused_with_their_reason() {
    for (line, error) in [
        ("@", TagError::NoSpace),
        ("@label=1", TagError::NoSpace),
        ("@label=1 ", TagError::NoLine),
        ("@ hi", TagError::EmptyTag),
        ("@;label=1 hi", TagError::EmptyTag),
        ("@label=1; hi", TagError::EmptyTag),
        ("@a=1;;b=2 hi", TagError::EmptyTag),
        ("@label hi", TagError::NoValue),
        ("@bob see you", TagError::NoValue),
        ("@=1 hi", TagError::EmptyKey),
        ("@label=1;=2 hi", TagError::EmptyKey),
    ] {
        assert_eq!(parse_client_line(line), Err(error), "{line:?}");
    }
    assert_eq!(TagError::NoValue.to_string(), "a tag without =");
    assert_eq!(BAD_TAGS_LINE, "! bad tags");
}

#[test]
fn values_escape_as_in_ircv3() {
    assert_eq!(escape("a;b c\\d\re\nf"), "a\\:b\\sc\\\\d\\re\\nf");
    assert!(matches!(escape("#rust"), Cow::Borrowed("#rust")));
    assert_eq!(unescape("a\\:b\\sc\\\\d\\re\\nf"), "a;b c\\d\re\nf");
    assert!(matches!(unescape("plain"), Cow::Borrowed("plain")));
}

#[test]
fn unknown_escapes_drop_the_backslash_and_a_trailing_one_is_dropped() {
    assert_eq!(unescape("\\b\\é\\;"), "bé;");
    assert_eq!(unescape("test\\"), "test");
    assert_eq!(unescape("\\"), "");
    assert_eq!(unescape("\\\\\\"), "\\");
}

#[test]
fn server_prefix_has_time_room_id_to_label_in_order() {
    let mut out = Vec::new();
    ServerTags {
        time_ms: 1_796_638_503_123,
        room: Some("#rust"),
        id: Some(8412),
        to: None,
        label: None,
    }
    .write_prefix(&mut out);
    assert_eq!(out, b"@time=2026-12-07T10:15:03.123Z;room=#rust;id=8412 ");
    out.clear();
    ServerTags {
        to: Some("bob"),
        label: Some("L1"),
        ..ServerTags::at(0)
    }
    .write_prefix(&mut out);
    assert_eq!(out, b"@time=1970-01-01T00:00:00.000Z;to=bob;label=L1 ");
    out.clear();
    ServerTags {
        room: Some("a;b c"),
        id: Some(u64::MAX),
        ..ServerTags::at(-1)
    }
    .write_prefix(&mut out);
    assert_eq!(
        out,
        b"@time=1969-12-31T23:59:59.999Z;room=a\\:b\\sc;id=18446744073709551615 "
    );
}

#[test]
fn rendering_again_reuses_the_buffer() {
    let tags = ServerTags {
        room: Some("#lobby"),
        id: Some(1),
        ..ServerTags::at(1_796_638_503_123)
    };
    let mut out = Vec::with_capacity(64);
    let before = out.as_ptr();
    for _ in 0..100 {
        out.clear();
        tags.write_prefix(&mut out);
    }
    assert_eq!(out.as_ptr(), before, "no reallocation");
}

#[test]
fn a_label_is_inserted_into_a_shared_tagged_line() {
    let mut shared = Vec::new();
    let tags = ServerTags {
        room: Some("#rust"),
        id: Some(3),
        ..ServerTags::at(1_796_638_503_123)
    };
    tags.write_prefix(&mut shared);
    shared.extend_from_slice(b"alice: a b\n");
    let mut echo = Vec::new();
    insert_label(&shared, "L-9", &mut echo);
    let mut expected = Vec::new();
    ServerTags {
        label: Some("L-9"),
        ..tags
    }
    .write_prefix(&mut expected);
    expected.extend_from_slice(b"alice: a b\n");
    assert_eq!(echo, expected);
    echo.clear();
    insert_label(b"* pong\n", "x", &mut echo);
    assert_eq!(echo, b"@label=x * pong\n");
}

#[test]
fn server_lines_parse_back() {
    let (tags, rest) =
        parse_server_line("@time=2026-12-07T10:15:03.123Z;room=#rust;id=8412;new=1 alice: hi")
            .unwrap();
    assert_eq!(rest, "alice: hi");
    assert_eq!(
        tags.as_server_tags(),
        Some(ServerTags {
            room: Some("#rust"),
            id: Some(8412),
            ..ServerTags::at(1_796_638_503_123)
        })
    );
    let (tags, rest) = parse_server_line("* bye").unwrap();
    assert_eq!((tags, rest), (ParsedTags::default(), "* bye"));
    // Values a client cannot read are ignored, not fatal.
    let (tags, _) = parse_server_line("@time=yesterday;id=+5 x").unwrap();
    assert_eq!((tags.time_ms, tags.id), (None, None));
    assert_eq!(parse_server_line("@time=x"), Err(TagError::NoSpace));
}

#[test]
fn time_is_utc_with_milliseconds() {
    for (ms, text) in [
        (0, "1970-01-01T00:00:00.000Z"),
        (951_782_400_001, "2000-02-29T00:00:00.001Z"),
        (1_796_638_503_123, "2026-12-07T10:15:03.123Z"),
        (4_107_542_399_999, "2100-02-28T23:59:59.999Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        (-62_167_219_200_000, "0000-01-01T00:00:00.000Z"),
    ] {
        let mut out = Vec::new();
        write_time_ms(ms, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), text);
        assert_eq!(parse_time_ms(text), Some(ms), "{text}");
    }
    for bad in [
        "2026-12-07T10:15:03Z",
        "2026-12-07T10:15:03.12Z",
        "2026-12-07 10:15:03.123Z",
        "2026-13-07T10:15:03.123Z",
        "2026-02-29T10:15:03.123Z",
        "2026-12-07T24:00:00.000Z",
        "+026-12-07T10:15:03.123Z",
        "2026-12-07T10:15:03.1-3Z",
    ] {
        assert_eq!(parse_time_ms(bad), None, "{bad}");
    }
    let mut out = Vec::new();
    write_time_ms(253_402_300_800_000, &mut out);
    assert_eq!(out, b"10000-01-01T00:00:00.000Z");
}

/// Milliseconds from year 0000 to 9999, the range `time` can show.
const TIME_RANGE: std::ops::RangeInclusive<i64> = -62_167_219_200_000..=253_402_300_799_999;

proptest! {
    /// Escaping then unescaping gives back any string, and an escaped
    /// value never holds what would end a tag or the prefix.
    #[test]
    fn escape_then_unescape_round_trips(value in any::<String>()) {
        let escaped = escape(&value);
        prop_assert!(!escaped.contains([';', ' ', '\r', '\n']));
        prop_assert_eq!(unescape(&escaped), value.as_str());
    }

    /// A rendered prefix parses back to the same tags, and the line
    /// after it comes back untouched.
    #[test]
    fn a_rendered_prefix_parses_back(
        time_ms in TIME_RANGE,
        room in proptest::option::of(any::<String>()),
        id in proptest::option::of(any::<u64>()),
        to in proptest::option::of(any::<String>()),
        label in proptest::option::of(any::<String>()),
        line in "[^\n]{1,40}",
    ) {
        let tags = ServerTags {
            time_ms,
            room: room.as_deref(),
            id,
            to: to.as_deref(),
            label: label.as_deref(),
        };
        let mut out = Vec::new();
        tags.write_prefix(&mut out);
        out.extend_from_slice(line.as_bytes());
        let rendered = String::from_utf8(out).unwrap();
        let (parsed, rest) = parse_server_line(&rendered).unwrap();
        prop_assert_eq!(parsed.as_server_tags(), Some(tags));
        prop_assert_eq!(rest, line.as_str());
    }

    /// Time stamps read back to the millisecond.
    #[test]
    fn time_round_trips(ms in TIME_RANGE) {
        let mut out = Vec::new();
        write_time_ms(ms, &mut out);
        prop_assert_eq!(parse_time_ms(std::str::from_utf8(&out).unwrap()), Some(ms));
    }

    /// Any line parses without panicking; what follows a valid prefix is
    /// the end of the line, and a valid label is one a client may send.
    #[test]
    fn any_client_line_parses(line in "\\PC*|@[a-z=;\\\\ ]{0,12}.{0,8}") {
        match parse_client_line(&line) {
            Ok(parsed) => {
                prop_assert!(line.ends_with(parsed.line));
                prop_assert!(parsed.line == line || !parsed.line.is_empty());
                if let Some(label) = parsed.label {
                    prop_assert!(Label::new(label.as_str()).is_ok());
                }
            }
            Err(_) => prop_assert!(line.starts_with('@')),
        }
    }

    /// Every valid label with any line after it is read back exactly.
    #[test]
    fn every_valid_label_is_read(label in "[A-Za-z0-9_-]{1,64}", rest in "[^\n]{1,20}") {
        let line = format!("@label={label} {rest}");
        let parsed = parse_client_line(&line).unwrap();
        prop_assert_eq!(parsed.label.map(|l| l.as_str().to_string()), Some(label));
        prop_assert_eq!(parsed.line, rest.as_str());
    }
}
