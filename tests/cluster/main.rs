//! Several servers, one chat (`--cluster`, docs/cluster.md), against a
//! real redis-server: each test starts its own on a free loopback port
//! with a temporary directory, and stops it. Under CI (CI=true) a missing
//! redis-server fails the tests; `.ci/run` installs it.
//!
//! - `engine`: the Redis engine alone, driven turn by turn;
//! - `servers`: loopchat servers started with `--cluster`;
//! - `flood`: the load generator over three servers, subscriptions
//!   killed mid-flood;
//! - `shared`: three servers: joins, leaves, `:users`, `:rooms`, a
//!   server lost, nick races, `:e2e`, accounts; `shared_rooms`: topics,
//!   bans, operators; `shared_history`: `:history`, history files, a
//!   server started later.

#[path = "../common/mod.rs"]
mod common;

mod engine;
mod flood;
mod servers;
mod shared;
mod shared_history;
mod shared_rooms;
