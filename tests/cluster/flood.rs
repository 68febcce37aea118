//! The load generator spread over three servers of one cluster while Redis
//! kills their subscriptions mid-flood (`CLIENT KILL TYPE pubsub`): every
//! receiver gets every sender's lines gap-free and in order (or is
//! disconnected), and `:history` with its ids is the same on every server.

use super::common::{Client, Lines};
use super::engine::redis;
use super::servers::{clustered, join, settle};
use loopchat_loadgen::{self as loadgen, Options};
use std::time::Duration;

/// `:history 100` with tags on: each line's id and text.
fn tagged_history(client: &mut Client) -> Vec<(u64, String)> {
    client.send(":tags on");
    client.send(":history 100");
    client.send(":ping h");
    let mut lines = Vec::new();
    loop {
        let raw = client.line();
        let (tags, line) = loopchat::protocol::tags::parse_server_line(&raw).unwrap();
        if line == "* pong h" {
            return lines;
        }
        if line.starts_with("[history ") {
            lines.push((tags.id.expect("a history line has an id"), line.to_string()));
        }
    }
}

#[test]
fn a_flood_over_three_servers_survives_its_subscriptions_killed() {
    let Some(redis) = redis("the cluster flood test") else {
        return;
    };
    let servers = [clustered(&redis), clustered(&redis), clustered(&redis)];
    // Each server reachable before the load generator connects.
    let mut watchers: Vec<Client> = servers.iter().map(|s| join(s.addr())).collect();
    let mut refs: Vec<&mut Client> = watchers.iter_mut().collect();
    settle(&mut refs);
    let addrs: Vec<String> = servers.iter().map(|s| s.addr().to_string()).collect();
    let mut args = vec![
        "--quiet",
        "--clients",
        "30",
        "--senders",
        "9",
        "--rate",
        "40",
        "--warmup",
        "0.5",
        "--duration",
        "3",
        "--drain",
        "20",
    ];
    for addr in &addrs {
        args.extend(["--addr", addr.as_str()]);
    }
    let opts = match <Options as argh::FromArgs>::from_args(&["loadgen"], &args) {
        Ok(o) => o,
        Err(e) => panic!("bad flags {args:?}: {}", e.output),
    };
    let run = std::thread::spawn(move || loadgen::run(&opts));
    // Redis drops every subscription a few times while the lines flow
    // (paced, bounded: at most 8 kills).
    let mut kills = 0;
    while !run.is_finished() && kills < 8 {
        std::thread::sleep(Duration::from_millis(500));
        redis.cli(&["CLIENT", "KILL", "TYPE", "pubsub"]);
        kills += 1;
    }
    let report = run.join().unwrap().expect("the load generator ran");
    let text = report.to_text();
    assert!(
        kills >= 2,
        "the run ended before the subscriptions were killed"
    );
    assert_eq!(report.connected, 30, "{text}");
    assert!(report.sent_total > 0, "{text}");
    assert_eq!(report.reordered, 0, "{text}");
    assert_eq!(report.duplicated, 0, "{text}");
    assert_eq!(report.misattributed, 0, "{text}");
    // A receiver that missed a line is disconnected, never left with a
    // gap; here the streams hold every line, so none is.
    assert!(report.lost == 0 || report.disconnects > 0, "{text}");
    assert_eq!(report.lost, 0, "{text}");
    // :history on every server: the same lines, with the same ids, one
    // after the other.
    let histories: Vec<Vec<(u64, String)>> = watchers.iter_mut().map(tagged_history).collect();
    assert_eq!(histories[0].len(), 100, "{:?}", histories[0]);
    assert_eq!(histories[0], histories[1]);
    assert_eq!(histories[0], histories[2]);
    let ids: Vec<u64> = histories[0].iter().map(|(id, _)| *id).collect();
    let first = ids[0];
    assert_eq!(ids, (first..first + 100).collect::<Vec<u64>>());
    assert!(
        ids[99] >= report.sent_total,
        "{} lines, last id {}",
        report.sent_total,
        ids[99]
    );
}
