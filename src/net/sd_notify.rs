//! systemd's readiness protocol (`Type=notify`), written by hand: one
//! datagram such as `READY=1` to the unix socket named by `NOTIFY_SOCKET`.
//! About twenty lines, so no crate. Without `NOTIFY_SOCKET` (not started by
//! systemd, or `Type=simple`) nothing is sent.
//!
//! The server says `READY=1` once its listeners are bound and its signal
//! handlers installed, so `systemctl start` returns when clients can connect
//! and a `systemctl reload` (SIGHUP) can never come too early; `STOPPING=1`
//! when a shutdown begins.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;

/// Sends `state` (e.g. `READY=1`) to systemd; `Ok(false)` when there is no
/// `NOTIFY_SOCKET` to send it to.
pub fn notify(state: &str) -> io::Result<bool> {
    match std::env::var_os("NOTIFY_SOCKET") {
        Some(path) => notify_to(&path, state).map(|()| true),
        None => Ok(false),
    }
}

/// Sends `state` to the notify socket at `path` (`@name`: abstract).
pub fn notify_to(path: &std::ffi::OsStr, state: &str) -> io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    match path.as_bytes().strip_prefix(b"@") {
        // An abstract socket name (Linux): `@` stands for the leading NUL.
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.send_to_addr(state.as_bytes(), &addr)?;
        }
        None => {
            socket.send_to(state.as_bytes(), path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_one_datagram_to_the_notify_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let systemd = UnixDatagram::bind(&path).unwrap();
        notify_to(path.as_os_str(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = systemd.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        let name = format!("@loopchat-test-{}", std::process::id());
        let abstract_socket = {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name[1..]).unwrap();
            UnixDatagram::bind_addr(&addr).unwrap()
        };
        notify_to(std::ffi::OsStr::new(&name), "STOPPING=1").unwrap();
        let n = abstract_socket.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }
}
