//! The check at start: is the cluster's address a Redis this server can
//! use? Blocking, with a short timeout, before the event loop starts (the
//! only blocking Redis call there is), so a wrong address is a clear error
//! at start instead of a server that says `! cluster unavailable` forever.

use super::resp::{self, Reply};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How long the check waits for Redis in all.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Asks `addr` for `INFO server`: `Ok(version)` for a Redis 7 or later,
/// else what is wrong, worded for the operator.
pub fn probe(addr: SocketAddr) -> Result<String, String> {
    let deadline = Instant::now() + PROBE_TIMEOUT;
    let mut stream = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT)
        .map_err(|err| format!("cannot reach the cluster's Redis at {addr}: {err}"))?;
    let mut command = Vec::new();
    resp::encode(&mut command, &["INFO", "server"]);
    stream
        .write_all(&command)
        .map_err(|err| format!("cannot talk to the cluster's Redis at {addr}: {err}"))?;
    let mut input = Vec::new();
    let reply = loop {
        match resp::decode(&input) {
            Ok(Some((reply, _))) => break reply,
            Ok(None) => {}
            Err(_) => {
                return Err(format!(
                    "{addr} is not a Redis server (it answered something else)"
                ))
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "{addr} did not answer like a Redis server within {PROBE_TIMEOUT:?}"
            ));
        }
        let _ = stream.set_read_timeout(Some(left));
        let mut chunk = [0u8; 16 * 1024];
        match stream.read(&mut chunk) {
            Ok(0) => return Err(format!("{addr} closed the connection: not a Redis server?")),
            Ok(n) => input.extend_from_slice(&chunk[..n]),
            Err(err) => {
                return Err(format!("{addr} did not answer like a Redis server: {err}"));
            }
        }
    };
    let info = match reply {
        Reply::Bulk(info) => String::from_utf8_lossy(&info).into_owned(),
        Reply::Error(err) => {
            return Err(format!("the cluster's Redis at {addr} refused INFO: {err}"))
        }
        _ => {
            return Err(format!(
                "{addr} is not a Redis server (it answered something else)"
            ))
        }
    };
    let version = info
        .lines()
        .find_map(|line| line.strip_prefix("redis_version:"))
        .map(|v| v.trim().to_owned())
        .ok_or_else(|| format!("{addr} is not a Redis server (no version in its INFO)"))?;
    let major: u32 = version
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < 7 {
        return Err(format!(
            "the cluster needs Redis 7 or later; {addr} runs {version}"
        ));
    }
    Ok(version)
}
