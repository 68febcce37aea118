//! IRC conformance over real sockets (`docs/irc.md`): a server on free
//! ports, IRC clients speaking raw IRC lines, line clients beside them.
//! Each test holds one rule to the exact numerics and parameters the Modern
//! IRC documents give. Split by subject:
//!
//! - `irc/client.rs`: the test IRC client (CR LF lines, every read bounded
//!   by a timeout, `PING` round trips to know the server is done);
//! - `irc/registration.rs`: PASS, NICK, USER, CAP, the welcome burst, the
//!   numerics before and around registration, bad input, QUIT;
//! - `irc/channels.rs`: JOIN, PART, PRIVMSG/NOTICE between IRC and line
//!   clients, TOPIC, NAMES, LIST, WHO, WHOIS, MODE, KICK, AWAY, ISON,
//!   USERHOST, OPER, the error numerics of channel commands;
//! - `irc/limits.rs`: output bounds, long lines split;
//! - `irc/cluster.rs`: IRC clients of two servers of a cluster (a real
//!   redis-server).

mod common;

#[path = "irc/channels.rs"]
mod channels;
#[path = "irc/client.rs"]
mod client;
#[path = "irc/cluster.rs"]
mod cluster;
#[path = "irc/limits.rs"]
mod limits;
#[path = "irc/registration.rs"]
mod registration;
