//! Channels and messages between IRC clients and line clients: the JOIN
//! burst, PRIVMSG and NOTICE both ways, CTCP ACTION, NICK, TOPIC, NAMES,
//! LIST, WHO, WHOIS, MODE, KICK, AWAY, ISON, USERHOST, OPER, and the
//! numerics refusing them.

use crate::client::{irc_addr, numeric, start, start_with, Irc, SERVER};
use crate::common::{Client, Lines};

/// A line client named `nick`, in `#rust` (its current room).
fn line_in_rust(server: &loopchat::RunningServer, nick: &str) -> Client {
    let mut line = Client::named(server.addr(), nick);
    line.send(":join #rust");
    line.expect(&format!("* {nick} joined #rust"));
    line.sync();
    line
}

/// JOIN: the JOIN echo, then the names (353, 366), the creator an
/// operator; a second joiner also gets the topic (332) and everyone
/// hears the JOIN.
#[test]
fn join_sends_the_join_burst() {
    let server = start();
    let mut alice = Irc::register(irc_addr(&server), "alice");
    assert_eq!(
        alice.ask("JOIN #rust"),
        [
            format!(":{} JOIN #rust", alice.mask()),
            numeric("353", "alice", "= #rust :@alice"),
            numeric("366", "alice", "#rust :End of /NAMES list"),
        ]
    );
    assert_eq!(
        alice.ask("TOPIC #rust :all about crabs"),
        [format!(":{} TOPIC #rust :all about crabs", alice.mask())]
    );
    let mut bob = Irc::register(irc_addr(&server), "bob");
    assert_eq!(
        bob.ask("JOIN #rust"),
        [
            format!(":{} JOIN #rust", bob.mask()),
            numeric("332", "bob", "#rust :all about crabs"),
            numeric("353", "bob", "= #rust :@alice bob"),
            numeric("366", "bob", "#rust :End of /NAMES list"),
        ]
    );
    assert_eq!(alice.sync(), [format!(":{} JOIN #rust", bob.mask())]);
    // A channel one is in already: nothing.
    assert!(bob.ask("JOIN #rust").is_empty());
}

/// JOIN and PART take comma lists; a name that is not a channel is 403;
/// PART of a channel one is not in is 442, of none that exists 403.
#[test]
fn join_and_part_take_lists_and_refuse_with_403_and_442() {
    let server = start();
    let mut alice = Irc::register(irc_addr(&server), "alice");
    let joined = alice.ask("JOIN #a,#b,nochan");
    assert_eq!(
        joined,
        [
            format!(":{} JOIN #a", alice.mask()),
            numeric("353", "alice", "= #a :@alice"),
            numeric("366", "alice", "#a :End of /NAMES list"),
            format!(":{} JOIN #b", alice.mask()),
            numeric("353", "alice", "= #b :@alice"),
            numeric("366", "alice", "#b :End of /NAMES list"),
            numeric("403", "alice", "nochan :No such channel"),
        ]
    );
    let mut bob = Irc::register(irc_addr(&server), "bob");
    assert_eq!(
        bob.ask("PART #a"),
        [numeric("442", "bob", "#a :You're not on that channel")]
    );
    assert_eq!(
        bob.ask("PART #zzz"),
        [numeric("403", "bob", "#zzz :No such channel")]
    );
    assert_eq!(
        alice.ask("PART #a,#b :done here"),
        [
            format!(":{} PART #a :done here", alice.mask()),
            format!(":{} PART #b :done here", alice.mask()),
        ]
    );
}

/// PRIVMSG to a channel from an IRC client reaches a line client as an
/// ordinary chat line, and a line client's line reaches the IRC client as
/// a PRIVMSG from its nickmask.
#[test]
fn channel_messages_flow_between_irc_and_line_clients() {
    let server = start();
    let mut bob = line_in_rust(&server, "bob");
    let mut alice = Irc::register(irc_addr(&server), "alice");
    alice.ask("JOIN #rust");
    bob.expect("* alice joined #rust");
    assert!(alice.ask("PRIVMSG #rust :hello from irssi").is_empty());
    bob.expect("alice: hello from irssi");
    bob.send("hello from nc");
    alice.expect(&format!(":bob!bob@{SERVER} PRIVMSG #rust :hello from nc"));
    // NOTICE to a channel is a chat line too.
    alice.send("NOTICE #rust :a notice");
    bob.expect("alice: a notice");
}

/// Private messages both ways: PRIVMSG NICK is `:pm`, `:pm` reaches the
/// IRC client as PRIVMSG to its nick.
#[test]
fn private_messages_flow_both_ways() {
    let server = start();
    let mut bob = Client::named(server.addr(), "bob");
    let mut alice = Irc::register(irc_addr(&server), "alice");
    assert!(alice.ask("PRIVMSG bob :psst").is_empty());
    bob.expect("[pm] alice: psst");
    bob.send(":pm alice hi there");
    alice.expect(&format!(":bob!bob@{SERVER} PRIVMSG alice :hi there"));
    // Between two IRC clients, comma lists included.
    let mut carol = Irc::register(irc_addr(&server), "carol");
    alice.send("PRIVMSG carol,bob :to you both");
    carol.expect(&format!(":{} PRIVMSG carol :to you both", alice.mask()));
    bob.expect("[pm] alice: to you both");
}

/// CTCP ACTION is `:me`, and `:me` reaches IRC clients as CTCP ACTION.
#[test]
fn ctcp_action_is_me() {
    let server = start();
    let mut bob = line_in_rust(&server, "bob");
    let mut alice = Irc::register(irc_addr(&server), "alice");
    alice.ask("JOIN #rust");
    bob.expect("* alice joined #rust");
    alice.send("PRIVMSG #rust :\u{1}ACTION waves\u{1}");
    bob.expect("* alice waves");
    bob.send(":me dances");
    alice.expect(&format!(
        ":bob!bob@{SERVER} PRIVMSG #rust :\u{1}ACTION dances\u{1}"
    ));
    // Other CTCP requests are not chat: nobody hears them.
    alice.send("PRIVMSG #rust :\u{1}VERSION\u{1}");
    assert!(bob.sync().is_empty());
}

/// The refusals of PRIVMSG: 401 (no such nick or channel), 404 (a
/// channel one is not in), 411 (no recipient), 412 (no text); a NOTICE is
/// never answered with an error.
#[test]
fn privmsg_errors_are_401_404_411_412() {
    let server = start();
    let _bob = line_in_rust(&server, "bob");
    let mut alice = Irc::register(irc_addr(&server), "alice");
    assert_eq!(
        alice.ask("PRIVMSG nobody :hi"),
        [numeric("401", "alice", "nobody :No such nick/channel")]
    );
    assert_eq!(
        alice.ask("PRIVMSG #nowhere :hi"),
        [numeric("401", "alice", "#nowhere :No such nick/channel")]
    );
    assert_eq!(
        alice.ask("PRIVMSG #rust :hi"),
        [numeric("404", "alice", "#rust :Cannot send to channel")]
    );
    assert_eq!(
        alice.ask("PRIVMSG"),
        [numeric("411", "alice", ":No recipient given (PRIVMSG)")]
    );
    assert_eq!(
        alice.ask("PRIVMSG bob"),
        [numeric("412", "alice", ":No text to send")]
    );
    assert!(alice.ask("NOTICE nobody :hi").is_empty());
    assert!(alice.ask("NOTICE #rust :hi").is_empty());
}

/// NICK after registration: everyone sharing a channel sees it, and the
/// numerics then name the new nick; a taken one is 433, a bad one 432.
#[test]
fn nick_changes_are_seen_by_all() {
    let server = start();
    let mut bob = line_in_rust(&server, "bob");
    let mut alice = Irc::register(irc_addr(&server), "alice");
    alice.ask("JOIN #rust");
    bob.expect("* alice joined #rust");
    assert_eq!(
        alice.ask("NICK alicia"),
        [format!(":{} NICK alicia", alice.mask())]
    );
    bob.expect("* alice is now known as alicia");
    assert_eq!(
        alice.ask("NICK bob"),
        [numeric("433", "alicia", "bob :Nickname is already in use")]
    );
    assert_eq!(
        alice.ask("NICK 1x"),
        [numeric("432", "alicia", "1x :Erroneus nickname")]
    );
    bob.send(":nick robert");
    alice.expect(&format!(":bob!bob@{SERVER} NICK robert"));
}

/// TOPIC: the query is 332 or 331, an operator sets it (a line client
/// sees it), a member who is not an operator gets 482, a non-member 442.
#[test]
fn topic_is_queried_and_set_by_operators() {
    let server = start();
    let mut alice = Irc::register(irc_addr(&server), "alice");
    alice.ask("JOIN #rust");
    let mut bob = line_in_rust(&server, "bob");
    assert_eq!(alice.sync(), [format!(":bob!bob@{SERVER} JOIN #rust")]);
    assert_eq!(
        alice.ask("TOPIC #rust"),
        [numeric("331", "alice", "#rust :No topic is set")]
    );
    alice.send("TOPIC #rust :crabs only");
    bob.expect("* alice set the topic of #rust: crabs only");
    assert_eq!(
        alice.sync(),
        [format!(":{} TOPIC #rust :crabs only", alice.mask())]
    );
    assert_eq!(
        alice.ask("TOPIC #rust"),
        [numeric("332", "alice", "#rust :crabs only")]
    );
    let mut carol = Irc::register(irc_addr(&server), "carol");
    assert_eq!(
        carol.ask("TOPIC #rust :mine now"),
        [numeric("442", "carol", "#rust :You're not on that channel")]
    );
    carol.ask("JOIN #rust");
    assert_eq!(
        carol.ask("TOPIC #rust :mine now"),
        [numeric(
            "482",
            "carol",
            "#rust :You're not channel operator"
        )]
    );
    assert_eq!(alice.sync(), [format!(":{} JOIN #rust", carol.mask())]);
}

/// NAMES lists a channel's members (operators with `@`); a channel that
/// does not exist is only 366. LIST shows the rooms that have members
/// (322), then 323.
#[test]
fn names_and_list() {
    let server = start();
    let _bob = line_in_rust(&server, "bob");
    let mut alice = Irc::register(irc_addr(&server), "alice");
    assert_eq!(
        alice.ask("NAMES #rust,#none"),
        [
            numeric("353", "alice", "= #rust :@bob"),
            numeric("366", "alice", "#rust :End of /NAMES list"),
            numeric("366", "alice", "#none :End of /NAMES list"),
        ]
    );
    alice.ask("JOIN #empty-soon");
    alice.ask("PART #empty-soon");
    assert_eq!(
        alice.ask("LIST"),
        [
            numeric("322", "alice", "#lobby 1 :"),
            numeric("322", "alice", "#rust 1 :"),
            numeric("323", "alice", ":End of /LIST"),
        ]
    );
}

/// WHO #channel: a 352 per member (`H`, `@` for an operator, `G` when
/// away), then 315; WHO nick: that user.
#[test]
fn who_lists_a_channel_or_a_nick() {
    let server = start();
    let _bob = line_in_rust(&server, "bob");
    let mut alice = Irc::register(irc_addr(&server), "alice");
    alice.ask("JOIN #rust");
    alice.ask("AWAY :lunch");
    assert_eq!(
        alice.ask("WHO #rust"),
        [
            numeric(
                "352",
                "alice",
                &format!("#rust alice {SERVER} {SERVER} alice G :0 alice")
            ),
            numeric(
                "352",
                "alice",
                &format!("#rust bob {SERVER} {SERVER} bob H@ :0 bob")
            ),
            numeric("315", "alice", "#rust :End of WHO list"),
        ]
    );
    assert_eq!(
        alice.ask("WHO BOB"),
        [
            numeric(
                "352",
                "alice",
                &format!("* bob {SERVER} {SERVER} bob H :0 bob")
            ),
            numeric("315", "alice", "BOB :End of WHO list"),
        ]
    );
}

/// WHOIS: 311, 319 (channels), 312, 318; 401 then 318 for nobody.
#[test]
fn whois_describes_a_user() {
    let server = start();
    let _bob = line_in_rust(&server, "bob");
    let mut alice = Irc::register(irc_addr(&server), "alice");
    assert_eq!(
        alice.ask("WHOIS bob"),
        [
            numeric("311", "alice", &format!("bob bob {SERVER} * :bob")),
            numeric("319", "alice", "bob :#lobby #rust"),
            numeric("312", "alice", &format!("bob {SERVER} :loopchat")),
            numeric("318", "alice", "bob :End of /WHOIS list"),
        ]
    );
    assert_eq!(
        alice.ask("WHOIS nobody"),
        [
            numeric("401", "alice", "nobody :No such nick/channel"),
            numeric("318", "alice", "nobody :End of /WHOIS list"),
        ]
    );
}

/// MODE: the query is 324 `+nt`; +o/-o and +b/-b (`NICK!*@*`) are the
/// operators' commands, seen by line clients; `+b` alone lists the bans
/// (367, 368); an unknown mode is 472; a member not an operator gets 482.
#[test]
fn channel_modes() {
    let server = start();
    let mut alice = Irc::register(irc_addr(&server), "alice");
    alice.ask("JOIN #rust");
    let mut bob = line_in_rust(&server, "bob");
    alice.sync();
    assert_eq!(
        alice.ask("MODE #rust"),
        [numeric("324", "alice", "#rust +nt")]
    );
    alice.send("MODE #rust +o bob");
    bob.expect("* alice made bob an operator of #rust");
    assert_eq!(
        alice.sync(),
        [format!(":{} MODE #rust +o bob", alice.mask())]
    );
    bob.send(":deop alice");
    assert_eq!(
        alice.sync(),
        [format!(":bob!bob@{SERVER} MODE #rust -o alice")]
    );
    assert_eq!(
        alice.ask("MODE #rust +b mallory!*@*"),
        [numeric(
            "482",
            "alice",
            "#rust :You're not channel operator"
        )]
    );
    bob.send(":ban mallory");
    bob.sync();
    assert_eq!(
        alice.sync(),
        [format!(":bob!bob@{SERVER} MODE #rust +b mallory!*@*")]
    );
    assert_eq!(
        alice.ask("MODE #rust +b"),
        [
            numeric("367", "alice", "#rust mallory!*@*"),
            numeric("368", "alice", "#rust :End of channel ban list"),
        ]
    );
    assert_eq!(
        alice.ask("MODE #rust +k key"),
        [numeric("472", "alice", "k :is unknown mode char to me")]
    );
    // User modes: +i is accepted and shown; another user's are 502.
    assert_eq!(
        alice.ask("MODE alice +i"),
        [format!(":{} MODE alice :+i", alice.mask())]
    );
    assert_eq!(alice.ask("MODE alice"), [numeric("221", "alice", "+i")]);
    assert_eq!(
        alice.ask("MODE bob +i"),
        [numeric("502", "alice", ":Cant change mode for other users")]
    );
}

/// KICK by an operator: everyone hears it, the kicked client is out; by
/// a member who is not an operator it is 482; of someone not in the
/// channel 441.
#[test]
fn kick_removes_a_member() {
    let server = start();
    let mut alice = Irc::register(irc_addr(&server), "alice");
    alice.ask("JOIN #rust");
    let mut bob = line_in_rust(&server, "bob");
    let mut carol = Irc::register(irc_addr(&server), "carol");
    carol.ask("JOIN #rust");
    alice.sync();
    assert_eq!(
        carol.ask("KICK #rust bob"),
        [numeric(
            "482",
            "carol",
            "#rust :You're not channel operator"
        )]
    );
    assert_eq!(
        alice.ask("KICK #rust dave"),
        [numeric("401", "alice", "dave :No such nick/channel")]
    );
    alice.send("KICK #rust bob :behave");
    bob.expect("* carol joined #rust");
    bob.expect("* bob was kicked from #rust by alice (behave)");
    carol.expect(&format!(":{} KICK #rust bob :behave", alice.mask()));
    assert_eq!(
        alice.sync(),
        [format!(":{} KICK #rust bob :behave", alice.mask())]
    );
    assert_eq!(
        alice.ask("KICK #rust bob"),
        [numeric(
            "441",
            "alice",
            "bob #rust :They aren't on that channel"
        )]
    );
}

/// AWAY sets (306) and clears (305) an away message, which a PRIVMSG to
/// the away client is answered with (301); ISON (303) and USERHOST (302).
#[test]
fn away_ison_and_userhost() {
    let server = start();
    let _bob = Client::named(server.addr(), "bob");
    let mut alice = Irc::register(irc_addr(&server), "alice");
    let mut carol = Irc::register(irc_addr(&server), "carol");
    assert_eq!(
        carol.ask("AWAY :gone fishing"),
        [numeric(
            "306",
            "carol",
            ":You have been marked as being away"
        )]
    );
    assert_eq!(
        alice.ask("PRIVMSG carol :you there?"),
        [numeric("301", "alice", "carol :gone fishing")]
    );
    assert_eq!(
        alice.ask("ISON bob nobody CAROL"),
        [numeric("303", "alice", ":bob carol")]
    );
    assert_eq!(
        alice.ask("USERHOST bob carol"),
        [numeric(
            "302",
            "alice",
            &format!(":bob=+bob@{SERVER} carol=-carol@{SERVER}")
        )]
    );
    assert_eq!(
        carol.ask("AWAY"),
        [
            format!(":{} PRIVMSG carol :you there?", alice.mask()),
            numeric("305", "carol", ":You are no longer marked as being away"),
        ]
    );
}

/// OPER NAME PASSWORD logs in to account NAME: 381 for an administrator,
/// 491 for another account, 464 for a wrong password.
#[test]
fn oper_logs_in_to_an_administrator_account() {
    let server = start_with(|config| config.admins = vec!["root".into()]);
    let mut root = Client::named(server.addr(), "root");
    root.send(":register correct horse");
    root.expect("* registered root");
    let mut plain = Client::named(server.addr(), "plain");
    plain.send(":register battery staple");
    plain.expect("* registered plain");
    drop(root);
    drop(plain);
    let mut alice = Irc::register(irc_addr(&server), "alice");
    alice.send("OPER root :wrong password");
    alice.expect(&numeric("464", "alice", ":Password incorrect"));
    // Logging in takes the account's name as nick, as `:login` does.
    alice.send("OPER plain :battery staple");
    assert_eq!(
        alice.until(&numeric("491", "plain", ":No O-lines for your host")),
        [
            ":alice!alice@irc.test NICK plain",
            &numeric(
                "900",
                "plain",
                "plain!plain@irc.test plain :You are now logged in as plain"
            ),
        ]
    );
    let mut oper = Irc::register(irc_addr(&server), "oper");
    oper.send("OPER root :correct horse");
    oper.until(&numeric("381", "root", ":You are now an IRC operator"));
}

/// IRC formatting codes (bold, colours…) never reach line clients: they
/// are removed, not shown as replacement characters.
#[test]
fn formatting_codes_are_removed_for_line_clients() {
    let server = start();
    let mut bob = line_in_rust(&server, "bob");
    let mut alice = Irc::register(irc_addr(&server), "alice");
    alice.ask("JOIN #rust");
    bob.expect("* alice joined #rust");
    alice.send("PRIVMSG #rust :\u{2}bold\u{2} and \u{3}04,01red\u{3} \u{1d}it\u{f}");
    bob.expect("alice: bold and red it");
}
