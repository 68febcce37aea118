//! The client side of TLS: a blocking stream that verifies the server name
//! against the system's trusted roots or a given CA file. Used by the example
//! client, the load generator and the tests; the server's side is
//! `loopchat::net::tls`.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// How long [`connect_client`] waits for the server's side of the
/// handshake (the socket's own read timeout applies again after it).
pub const CLIENT_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration that trusts the certificates in `ca_file` (PEM),
/// or the system's trusted roots when it is `None`.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| format!("bad CA file {}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("bad CA certificate in {}: {e}", path.display()))?;
            }
            if roots.is_empty() {
                return Err(format!("no certificate in CA file {}", path.display()));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(
                    "no trusted root certificates found on this system; give one with --ca FILE"
                        .into(),
                );
            }
        }
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The host part of a `HOST:PORT` address (`[::1]:7443` gives `::1`): the
/// name a client verifies the server's certificate against.
pub fn server_name_of(addr: &str) -> &str {
    let host = match addr.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => addr,
    };
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// Completes a TLS handshake over a connected blocking `tcp` stream,
/// verifying that the server's certificate is valid for `server_name` (a
/// DNS name or an IP address). A failure (bad certificate, not TLS) is an
/// error whose message is one line.
pub fn connect_client(
    tcp: TcpStream,
    server_name: &str,
    config: Arc<ClientConfig>,
) -> io::Result<ClientStream> {
    let name = ServerName::try_from(server_name.to_owned()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{server_name:?} is not a valid server name"),
        )
    })?;
    let mut conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
    // A server that never answers must not hang the handshake forever.
    let read_timeout = tcp.read_timeout()?;
    tcp.set_read_timeout(Some(CLIENT_HANDSHAKE_TIMEOUT))?;
    let mut socket = Recording {
        tcp: &tcp,
        first: Vec::new(),
    };
    while conn.is_handshaking() {
        conn.complete_io(&mut socket).map_err(|e| {
            let text = e.to_string();
            // A loopchat server's plain port greets first, in plain text.
            if socket.first.starts_with(b"* ") || socket.first.starts_with(b"! ") {
                return io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{server_name} answered in plain text: not a TLS port \
                         (drop --tls, or use the TLS port: 7443 by default)"
                    ),
                );
            }
            // A self-signed certificate checked against the system's roots
            // can also fail as an unsupported signature algorithm, when a
            // root happens to share its issuer name.
            let hint = if text.contains("UnknownIssuer")
                || text.contains("BadSignature")
                || text.contains("UnsupportedSignatureAlgorithm")
            {
                " (not signed by a certificate this client trusts; for a private or \
                 self-signed certificate, pass it with --ca FILE)"
            } else if text.contains("CaUsedAsEndEntity") {
                " (the server's certificate is a CA certificate; issue it with CA:FALSE)"
            } else if text.contains("NotValidForName") {
                " (the certificate is for another name)"
            } else {
                ""
            };
            io::Error::new(
                e.kind(),
                format!("TLS handshake with {server_name} failed: {text}{hint}"),
            )
        })?;
    }
    tcp.set_read_timeout(read_timeout)?;
    Ok(ClientStream {
        shared: Arc::new(Mutex::new(Session {
            conn,
            unread: Vec::new(),
        })),
        tcp,
    })
}

/// The socket during the handshake, keeping the first bytes the server
/// sent: a plain-text greeting tells a plain port from a broken TLS one.
struct Recording<'a> {
    tcp: &'a TcpStream,
    first: Vec<u8>,
}

impl Read for Recording<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (&*self.tcp).read(buf)?;
        let room = 2usize.saturating_sub(self.first.len()).min(n);
        self.first.extend_from_slice(&buf[..room]);
        Ok(n)
    }
}

impl Write for Recording<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.tcp).write(buf)
    }

    // rustls writes its records vectored, and its last alert in a single
    // try: all of them must go, as on the socket itself.
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        (&*self.tcp).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        (&*self.tcp).flush()
    }
}

/// A blocking TLS client stream. [`ClientStream::try_clone`] gives a second
/// handle to the same session, so one thread can read while another writes,
/// as with a `TcpStream`.
#[derive(Debug)]
pub struct ClientStream {
    shared: Arc<Mutex<Session>>,
    tcp: TcpStream,
}

/// The session both handles share.
#[derive(Debug)]
struct Session {
    conn: ClientConnection,
    /// TLS bytes read from the socket that rustls did not take yet: it takes
    /// none while plaintext waits to be read, and one socket read can hold
    /// more records than its plaintext buffer (16 KB). Fed before the socket
    /// is read again.
    unread: Vec<u8>,
}

impl ClientStream {
    /// Another handle to the same session and socket.
    pub fn try_clone(&self) -> io::Result<ClientStream> {
        Ok(ClientStream {
            shared: Arc::clone(&self.shared),
            tcp: self.tcp.try_clone()?,
        })
    }

    /// The underlying TCP socket (for timeouts and shutdown).
    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// The server's certificate (DER), as presented in the handshake.
    pub fn peer_certificate(&self) -> Option<Vec<u8>> {
        let session = lock(&self.shared);
        let chain = session.conn.peer_certificates()?;
        chain.first().map(|cert| cert.as_ref().to_vec())
    }

    /// Whether a read would find bytes already here (plaintext, or TLS read
    /// from the socket and not yet decrypted) without the socket: a caller
    /// that waits for the socket to be readable must read these first.
    pub fn has_buffered(&self) -> bool {
        let mut session = lock(&self.shared);
        !session.unread.is_empty()
            || session
                .conn
                .process_new_packets()
                .is_ok_and(|state| state.plaintext_bytes_to_read() > 0)
    }

    /// Sends `close_notify`, so the server sees a clean end of the session.
    pub fn close(&mut self) -> io::Result<()> {
        let mut session = lock(&self.shared);
        let conn = &mut session.conn;
        conn.send_close_notify();
        let mut socket = &self.tcp;
        while conn.wants_write() {
            conn.write_tls(&mut socket)?;
        }
        Ok(())
    }
}

fn lock(shared: &Mutex<Session>) -> std::sync::MutexGuard<'_, Session> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Reads plaintext. `Ok(0)` is a clean end (the server sent
/// `close_notify`); a connection that ended without it is an
/// `UnexpectedEof` error, since the end could have been forged.
impl Read for ClientStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut scratch = [0u8; 16 * 1024];
        loop {
            {
                let mut session = lock(&self.shared);
                match session.conn.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                    Err(err) => return Err(err),
                }
                // No plaintext: what an earlier read left comes first.
                if !session.unread.is_empty() {
                    session.feed(&self.tcp)?;
                    continue;
                }
            }
            // Records a timed-out write left behind go out first.
            {
                let mut session = lock(&self.shared);
                let conn = &mut session.conn;
                let mut socket = &self.tcp;
                while conn.wants_write() {
                    match conn.write_tls(&mut socket) {
                        Ok(_) => {}
                        Err(e)
                            if matches!(
                                e.kind(),
                                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                            ) =>
                        {
                            break
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            // Block on the socket without holding the lock, so a writer on
            // another thread is not held up. The socket's read timeout
            // applies: `WouldBlock` or `TimedOut` as for a `TcpStream`.
            let n = (&self.tcp).read(&mut scratch)?;
            let mut session = lock(&self.shared);
            if n == 0 {
                let conn = &mut session.conn;
                conn.read_tls(&mut &[][..])?;
                conn.process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            } else {
                session.unread.extend_from_slice(&scratch[..n]);
                session.feed(&self.tcp)?;
            }
            // Key updates and the like need an answer.
            let conn = &mut session.conn;
            let mut socket = &self.tcp;
            while conn.wants_write() {
                conn.write_tls(&mut socket)?;
            }
        }
    }
}

impl Session {
    /// Gives rustls the unread TLS bytes until they yield plaintext (or run
    /// out): it takes no more while plaintext waits, and the rest stays.
    fn feed(&mut self, tcp: &TcpStream) -> io::Result<()> {
        let Session { conn, unread } = self;
        let mut input = &unread[..];
        while !input.is_empty() {
            if conn.read_tls(&mut input)? == 0 {
                // After `close_notify` rustls takes nothing more.
                break;
            }
            match conn.process_new_packets() {
                Ok(state) if state.plaintext_bytes_to_read() > 0 => break,
                Ok(_) => {}
                Err(err) => {
                    let mut socket = tcp;
                    let _ = conn.write_tls(&mut socket);
                    return Err(io::Error::new(io::ErrorKind::InvalidData, err));
                }
            }
        }
        let taken = unread.len() - input.len();
        unread.drain(..taken);
        Ok(())
    }
}

/// Writes plaintext. Bytes rustls took count as written even when the
/// socket's write timeout stopped their records: those leave with the next
/// write, flush or read, so a caller that retries never sends twice.
impl Write for ClientStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut session = lock(&self.shared);
        let conn = &mut session.conn;
        let n = conn.writer().write(buf)?;
        let mut socket = &self.tcp;
        while conn.wants_write() {
            match conn.write_tls(&mut socket) {
                Ok(_) => {}
                Err(e)
                    if n > 0
                        && matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                {
                    break
                }
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    /// Writes the records rustls still holds.
    fn flush(&mut self) -> io::Result<()> {
        let mut session = lock(&self.shared);
        let conn = &mut session.conn;
        let mut socket = &self.tcp;
        while conn.wants_write() {
            conn.write_tls(&mut socket)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_from_addresses() {
        assert_eq!(server_name_of("chat.example.org:7443"), "chat.example.org");
        assert_eq!(server_name_of("127.0.0.1:7443"), "127.0.0.1");
        assert_eq!(server_name_of("[::1]:7443"), "::1");
        assert_eq!(server_name_of("localhost"), "localhost");
    }
}
