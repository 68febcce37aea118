//! IRC clients in a cluster (`--cluster`, a real redis-server): their
//! channel and private messages go through the same cluster path as line
//! clients' and reach clients of the other server.

use crate::client::{numeric, Irc, SERVER};
use crate::common::redis::Redis;
use crate::common::{Client, Lines, READ_TIMEOUT};
use loopchat::cluster::ClusterSettings;
use loopchat::{Config, RunningServer, Server};
use std::time::Instant;

fn clustered(redis: &Redis) -> RunningServer {
    let mut config = Config::ephemeral();
    config.history.file = None;
    config.server_name = SERVER.to_string();
    config.flood = loopchat::policy::limits::FloodLimit::OFF;
    config.cluster = Some(ClusterSettings::new(redis.addr()));
    Server::bind(config).unwrap().spawn().unwrap()
}

/// Registers on a clustered server once it has reached Redis (until
/// then it answers `ERROR` and closes).
fn register(server: &RunningServer, nick: &str) -> Irc {
    let deadline = Instant::now() + READ_TIMEOUT;
    loop {
        let mut irc = Irc::connect(server.irc_addr().unwrap());
        irc.send(&format!("NICK {nick}"));
        irc.send(&format!("USER {nick} 0 * :{nick}"));
        let first = irc.line();
        if first.starts_with("ERROR :") {
            assert!(Instant::now() < deadline, "the server never reached Redis");
            continue;
        }
        assert!(first.starts_with(&numeric("001", nick, ":")), "{first}");
        irc.until(&numeric("422", nick, ":MOTD File is missing"));
        irc.nick = nick.to_string();
        return irc;
    }
}

/// A line client of a clustered server, once it has reached Redis.
fn line_client(server: &RunningServer, nick: &str) -> Client {
    let deadline = Instant::now() + READ_TIMEOUT;
    loop {
        let mut client = Client::connect_raw(server.addr());
        let first = client.line();
        if first == "! cluster unavailable" {
            assert!(Instant::now() < deadline, "the server never reached Redis");
            continue;
        }
        client.nick = first["* welcome ".len()..].to_string();
        client.expect(&format!("* {} joined #lobby", client.nick));
        client.send(&format!(":nick {nick}"));
        client.expect(&format!("* {} is now known as {nick}", client.nick));
        client.nick = nick.to_string();
        return client;
    }
}

#[test]
fn irc_and_line_clients_of_two_servers_share_channels_and_private_messages() {
    let Some(redis) = Redis::start("the IRC cluster test") else {
        return;
    };
    let a = clustered(&redis);
    let b = clustered(&redis);
    let mut alice = register(&a, "alice");
    let mut bob = line_client(&b, "bob");
    bob.send(":join #rust");
    // Joins and renames are shared across servers: alice's arrival on A
    // may reach bob before his own join's answer, and her join of #rust
    // before her line.
    let before = bob.skip_until("* bob joined #rust");
    assert!(before.iter().all(|l| l.contains("* ")), "{before:?}");
    // NAMES of a channel that has members only on the other server lists
    // them. Until server A has heard of #rust, alice's JOIN would make the
    // room there too, her its operator until Redis said B made it first
    // (docs/cluster.md, "Operators"): she waits for NAMES to show bob.
    let deadline = Instant::now() + READ_TIMEOUT;
    loop {
        let names = alice.ask("NAMES #rust");
        if names[0] == numeric("353", "alice", "= #rust :@bob") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "server A never heard of #rust: {names:?}"
        );
    }
    // LIST counts every server's members (bob is in #lobby, alice, an IRC
    // client, is not).
    assert_eq!(
        alice.ask("LIST"),
        [
            numeric("321", "alice", "Channel :Users  Name"),
            numeric("322", "alice", "#lobby 1 :"),
            numeric("322", "alice", "#rust 1 :"),
            numeric("323", "alice", ":End of /LIST"),
        ]
    );
    alice.ask("JOIN #rust");
    alice.send("PRIVMSG #rust :hello from A");
    let before = bob.skip_until("alice: hello from A");
    assert!(before.iter().all(|l| l.contains("* ")), "{before:?}");
    bob.send("hello from B");
    // bob's arrival, rename and join may reach server A after alice's own
    // JOIN (membership travels on its own channel): those lines, if any,
    // first.
    let before = alice.until(&format!(":bob!bob@{SERVER} PRIVMSG #rust :hello from B"));
    assert!(
        before
            .iter()
            .all(|l| l.contains(" JOIN #") || l.contains(" NICK ")),
        "{before:?}"
    );
    alice.send("PRIVMSG bob :psst");
    bob.skip_until("[pm] alice: psst");
    bob.send(":pm alice back");
    alice.until(&format!(":bob!bob@{SERVER} PRIVMSG alice :back"));
    // WHOIS of the other server's client: its channels as the cluster
    // mirrors them (A saw bob join #rust above), `@` where it is an
    // operator, as for a client of this server.
    assert_eq!(
        alice.ask("WHOIS bob"),
        [
            numeric("311", "alice", &format!("bob bob {SERVER} * :bob")),
            numeric("319", "alice", "bob :#lobby @#rust"),
            numeric("312", "alice", &format!("bob {SERVER} :loopchat")),
            numeric("318", "alice", "bob :End of /WHOIS list"),
        ]
    );
    // NAMES lists the other server's members too (bob made #rust, so he
    // is its operator on every server), and so does a line client's
    // `:users` on the other side, sorted by nick as everywhere.
    assert_eq!(
        alice.ask("NAMES #rust"),
        [
            numeric("353", "alice", "= #rust :alice @bob"),
            numeric("366", "alice", "#rust :End of /NAMES list"),
        ]
    );
    bob.send(":users");
    bob.skip_until("* users in #rust: alice @bob");
    // WHO lists them as well (never away: that stays on their server).
    let row = |who: &str, flags: &str| {
        let params = format!("#rust {who} {SERVER} {SERVER} {who} {flags} :0 {who}");
        numeric("352", "alice", &params)
    };
    assert_eq!(
        alice.ask("WHO #rust"),
        [
            row("alice", "H"),
            row("bob", "H@"),
            numeric("315", "alice", "#rust :End of WHO list"),
        ]
    );
    assert_eq!(
        alice.ask("WHO Bob"),
        [
            numeric(
                "352",
                "alice",
                &format!("* bob {SERVER} {SERVER} bob H :0 bob")
            ),
            numeric("315", "alice", "Bob :End of WHO list"),
        ]
    );
    // A nick held on the other server is refused at registration (433),
    // and another one registers.
    let mut dup = Irc::connect(a.irc_addr().unwrap());
    dup.send("NICK Bob");
    dup.send("USER bob 0 * :not bob");
    dup.expect(&numeric("433", "*", "Bob :Nickname is already in use"));
    dup.send("NICK robert");
    dup.expect(&numeric(
        "001",
        "robert",
        ":Welcome to the irc.test Network, robert",
    ));
}
