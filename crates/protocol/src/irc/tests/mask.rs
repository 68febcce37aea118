//! Wildcard masks, nickmasks, WebSocket subprotocols.

use crate::irc::mask::{banned_nick, choose_subprotocol, matches, nickmask, Subprotocol};
use proptest::prelude::*;

#[test]
fn the_documents_wildcard_examples() {
    // `a?c`: any 3 characters starting with a and ending with c.
    assert!(matches("a?c", "abc") && matches("a?c", "aéc"));
    assert!(!matches("a?c", "ac") && !matches("a?c", "abbc"));
    // `a*c`: 2 or more characters starting with a and ending with c.
    assert!(matches("a*c", "ac") && matches("a*c", "abbbc") && matches("a*c", "acc"));
    assert!(!matches("a*c", "ab") && !matches("a*c", "ca"));
}

#[test]
fn bans_match_nickmasks_ignoring_ascii_case() {
    let mask = nickmask("Eve", "loopchat");
    assert_eq!(mask, "Eve!Eve@loopchat");
    assert!(matches("eve!*@*", &mask));
    assert!(matches("*!*@loopchat", &mask));
    assert!(!matches("evelyn!*@*", &mask));
    assert!(matches("*", "") && matches("**", "x") && !matches("?", ""));
    assert!(matches("a\\*b", "a*b") && !matches("a\\*b", "axb"));
    assert!(matches("a\\?", "a?") && !matches("a\\?", "ab"));
    assert_eq!(banned_nick("eve!*@*"), Some("eve"));
    assert_eq!(banned_nick("*!*@host"), None);
    assert_eq!(banned_nick("1eve!*@*"), None);
}

#[test]
fn the_first_irc_subprotocol_the_client_offers_is_chosen() {
    assert_eq!(
        choose_subprotocol("text.ircv3.net, binary.ircv3.net"),
        Some(Subprotocol::Text)
    );
    assert_eq!(
        choose_subprotocol("binary.ircv3.net,text.ircv3.net"),
        Some(Subprotocol::Binary)
    );
    assert_eq!(
        choose_subprotocol("chat, binary.ircv3.net"),
        Some(Subprotocol::Binary)
    );
    assert_eq!(choose_subprotocol("chat"), None);
    assert_eq!(choose_subprotocol(""), None);
    assert_eq!(Subprotocol::Text.name(), "text.ircv3.net");
}

/// A slow but obvious matcher: recursion over characters.
fn model(mask: &[char], text: &[char]) -> bool {
    match mask.split_first() {
        None => text.is_empty(),
        Some(('*', rest)) => (0..=text.len()).any(|i| model(rest, &text[i..])),
        Some(('?', rest)) => !text.is_empty() && model(rest, &text[1..]),
        Some((c, rest)) => {
            text.first().is_some_and(|t| t.eq_ignore_ascii_case(c)) && model(rest, &text[1..])
        }
    }
}

proptest! {
    /// The matcher agrees with the obvious recursive one (masks without
    /// escapes).
    #[test]
    fn matching_agrees_with_a_model(mask in "[ab*?é]{0,8}", text in "[abAé]{0,8}") {
        let m: Vec<char> = mask.chars().collect();
        let t: Vec<char> = text.chars().collect();
        prop_assert_eq!(matches(&mask, &text), model(&m, &t), "{} {}", mask, text);
    }
}
