//! `CAP LS` and what each capability changes in what a client is sent.

use crate::client::{irc_addr, numeric, start, Irc, SERVER};
use crate::common::{Client, Lines};
use crate::{split_tags, tag, with_caps};

/// `CAP LS 302` offers the capabilities the server has, `sasl` with its
/// mechanism; `005` advertises `CHATHISTORY` and `MSGREFTYPES`.
#[test]
fn cap_ls_offers_the_ircv3_caps_and_005_the_history_tokens() {
    let server = start();
    let mut irc = Irc::connect(irc_addr(&server));
    irc.send("CAP LS 302");
    irc.expect(&format!(
        ":{SERVER} CAP * LS :cap-notify message-tags server-time echo-message batch labeled-response \
         multi-prefix userhost-in-names account-tag extended-join sasl=PLAIN draft/chathistory"
    ));
    let mut old = Irc::connect(irc_addr(&server));
    old.send("CAP LS");
    old.expect(&format!(
        ":{SERVER} CAP * LS :cap-notify message-tags server-time echo-message batch labeled-response \
         multi-prefix userhost-in-names account-tag extended-join sasl draft/chathistory"
    ));
    irc.send("NICK alice");
    irc.send("USER alice 0 * :alice");
    irc.send("CAP END");
    let burst = irc.until(&numeric("422", "alice", ":MOTD File is missing"));
    let isupport: Vec<&String> = burst.iter().filter(|l| l.contains(" 005 ")).collect();
    assert!(
        isupport
            .iter()
            .any(|l| l.contains(" CHATHISTORY=100 ") && l.contains(" MSGREFTYPES=msgid,timestamp ")),
        "{isupport:?}"
    );
}

/// A line client with tags on, in `#rust`.
fn tagged_line_client(server: &loopchat::RunningServer, nick: &str) -> Client {
    let mut line = Client::named(server.addr(), nick);
    line.send(":join #rust");
    line.expect(&format!("* {nick} joined #rust"));
    line.send(":tags on");
    let on = line.line();
    assert!(on.ends_with(" * tags on"), "{on}");
    line
}

/// `server-time` and `message-tags`: a channel message carries `time` and
/// `msgid`, the same as the line client's `time` and `id` tags; a client
/// without them gets the bare message; one with only `server-time` only
/// `time`.
#[test]
fn server_time_and_message_tags_tag_channel_messages() {
    let server = start();
    let mut both = with_caps(irc_addr(&server), "both", "server-time message-tags");
    let mut time_only = with_caps(irc_addr(&server), "timeonly", "server-time");
    let mut bare = Irc::register(irc_addr(&server), "bare");
    for irc in [&mut both, &mut time_only, &mut bare] {
        irc.send("JOIN #rust");
        irc.sync();
    }
    let mut carol = tagged_line_client(&server, "carol");
    both.sync();
    time_only.sync();
    bare.sync();
    carol.send("hello tags");
    let echo = carol.line();
    let (line_tags, text) = loopchat::protocol::tags::parse_server_line(&echo).unwrap();
    assert_eq!(text, "carol: hello tags");
    let id = line_tags.id.expect("the line's id");
    let mut time = Vec::new();
    loopchat::protocol::tags::write_time_ms(line_tags.time_ms.expect("the line's time"), &mut time);
    let time = String::from_utf8(time).unwrap();
    let tagged = both.line();
    assert_eq!(
        tagged,
        format!("@time={time};msgid={id} :carol!carol@{SERVER} PRIVMSG #rust :hello tags")
    );
    assert_eq!(
        time_only.line(),
        format!("@time={time} :carol!carol@{SERVER} PRIVMSG #rust :hello tags")
    );
    assert_eq!(
        bare.line(),
        format!(":carol!carol@{SERVER} PRIVMSG #rust :hello tags")
    );
    // Client-only tags (TAGMSG) are dropped, not refused with 421.
    assert!(both.ask("@+typing=active TAGMSG #rust").is_empty());
    // A JOIN has its time, and no msgid (it is not a room line with an id).
    let mut dave = Irc::register(irc_addr(&server), "dave");
    dave.send("JOIN #rust");
    let join = both.line();
    let (tags, rest) = split_tags(&join);
    assert_eq!(rest, format!(":dave!dave@{SERVER} JOIN #rust"));
    assert_eq!(tags.len(), 1, "{join}");
    assert!(tag(&join, "time").is_some(), "{join}");
}

/// `echo-message`: the sender gets its own channel message and private
/// message back (tagged as others get them); without it, nothing.
#[test]
fn echo_message_returns_the_senders_own_messages() {
    let server = start();
    let mut echo = with_caps(irc_addr(&server), "echo", "echo-message message-tags");
    let mut quiet = Irc::register(irc_addr(&server), "quiet");
    echo.ask("JOIN #rust");
    quiet.ask("JOIN #rust");
    echo.sync();
    echo.send("PRIVMSG #rust :my own words");
    let own = echo.line();
    let (tags, rest) = split_tags(&own);
    assert_eq!(
        rest,
        format!(":echo!echo@{SERVER} PRIVMSG #rust :my own words")
    );
    assert_eq!(tags[0].0, "msgid", "{own}");
    assert_eq!(
        quiet.line(),
        format!(":echo!echo@{SERVER} PRIVMSG #rust :my own words")
    );
    echo.send("PRIVMSG quiet :psst");
    assert_eq!(
        split_tags(&echo.line()).1,
        format!(":echo!echo@{SERVER} PRIVMSG quiet :psst")
    );
    assert_eq!(
        quiet.line(),
        format!(":echo!echo@{SERVER} PRIVMSG quiet :psst")
    );
    // Without echo-message the sender hears nothing of its own.
    quiet.send("PRIVMSG #rust :no echo for me");
    assert!(quiet.sync().is_empty());
    let heard = echo.line();
    assert!(heard.ends_with("PRIVMSG #rust :no echo for me"), "{heard}");
    // Turned off again with CAP REQ -echo-message.
    echo.send("CAP REQ :-echo-message");
    echo.expect(&format!(":{SERVER} CAP echo ACK :-echo-message"));
    echo.send("PRIVMSG #rust :now silent");
    assert!(echo.sync().is_empty());
}

/// `multi-prefix` changes nothing (the only prefix is `@`);
/// `userhost-in-names` shows each member's full mask in `353`.
#[test]
fn userhost_in_names_shows_masks_and_multi_prefix_the_one_prefix() {
    let server = start();
    let mut full = with_caps(irc_addr(&server), "full", "multi-prefix userhost-in-names");
    full.ask("JOIN #rust");
    let mut bob = Irc::register(irc_addr(&server), "bob");
    bob.ask("JOIN #rust");
    full.sync();
    assert_eq!(
        full.ask("NAMES #rust"),
        [
            numeric(
                "353",
                "full",
                &format!("= #rust :bob!bob@{SERVER} @full!full@{SERVER}")
            ),
            numeric("366", "full", "#rust :End of /NAMES list"),
        ]
    );
    assert_eq!(
        bob.ask("NAMES #rust"),
        [
            numeric("353", "bob", "= #rust :bob @full"),
            numeric("366", "bob", "#rust :End of /NAMES list"),
        ]
    );
}

/// `account-tag`: messages from a logged-in sender carry its account;
/// `extended-join`: a JOIN names the account (`*` for none) and the real
/// name (the nick). Without the caps, neither.
#[test]
fn account_tag_and_extended_join_name_the_senders_account() {
    let server = start();
    let mut irc = with_caps(irc_addr(&server), "watcher", "account-tag extended-join");
    let mut plain = Irc::register(irc_addr(&server), "plain");
    irc.ask("JOIN #rust");
    plain.ask("JOIN #rust");
    irc.sync();
    let mut acct = Client::named(server.addr(), "acct");
    acct.send(":register a long password");
    acct.expect("* registered acct");
    acct.send(":join #rust");
    acct.expect("* acct joined #rust");
    assert_eq!(
        irc.line(),
        format!("@account=acct :acct!acct@{SERVER} JOIN #rust acct :acct")
    );
    assert_eq!(plain.line(), format!(":acct!acct@{SERVER} JOIN #rust"));
    acct.send("signed in");
    assert_eq!(
        irc.line(),
        format!("@account=acct :acct!acct@{SERVER} PRIVMSG #rust :signed in")
    );
    assert_eq!(
        plain.line(),
        format!(":acct!acct@{SERVER} PRIVMSG #rust :signed in")
    );
    let mut guest = Client::named(server.addr(), "guest9x");
    guest.send(":join #rust");
    guest.expect("* guest9x joined #rust");
    assert_eq!(
        irc.line(),
        format!(":guest9x!guest9x@{SERVER} JOIN #rust * :guest9x")
    );
    guest.send("not signed in");
    assert_eq!(
        irc.line(),
        format!(":guest9x!guest9x@{SERVER} PRIVMSG #rust :not signed in")
    );
}
