//! TLS with rustls, driven sans-IO by the event loop: no thread, no blocking
//! handshake.
//!
//! The server side is driven as in rustls's `tlsserver-mio` example
//! (read, process, hand out plaintext; interest from what TLS wants), on
//! rustls's *unbuffered* API, so the buffers are ours and an idle
//! connection holds none (the buffered `ServerConnection` keeps a 4 KiB
//! input buffer per connection forever: 7.8 KB against 3.7 KB per idle
//! session, measured). A [`TlsSession`] sits between a connection's socket
//! and its plaintext:
//!
//! - reading: [`TlsSession::read`] reads the socket, lets rustls process the
//!   records (`process_tls_records`; on an error the alert it prepared is
//!   sent, then the connection is closed) and returns plaintext, with the
//!   same meaning as a socket read: `Ok(0)` is the end of the stream,
//!   `WouldBlock` means wait for readiness;
//! - writing: [`TlsSession::write`] encrypts a recipient's whole queued
//!   plaintext with **one** `encrypt` call, so one record (up to 16 KiB)
//!   carries every line queued in a turn (a record per line would cost
//!   about ten times the CPU), then writes the records. At most
//!   [`TLS_BUFFER_LIMIT`] of records wait here; the rest of the plaintext
//!   stays in the connection's own queue and counts toward its output
//!   limit;
//! - interest: WRITABLE is wanted while records wait
//!   ([`TlsSession::wants_write`]); READABLE always.
//!
//! [`CertStore`] loads the certificate chain and key (PEM) and reloads them
//! on SIGHUP: new handshakes get the new certificate, connected clients keep
//! theirs, a broken file keeps the old one.
//!
//! The client side (a blocking stream for the example client, the load
//! generator and the tests) is `loopchat_client::tls`.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, InsufficientSizeError, UnbufferedStatus,
    WriteTraffic,
};
use rustls::ServerConfig;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Encrypted bytes a session holds for one client before it takes no more
/// plaintext (rustls's own default for its buffered API). The connection's
/// plaintext queue holds the rest.
pub const TLS_BUFFER_LIMIT: usize = 64 * 1024;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads a PEM certificate chain and private key and builds a server
/// configuration (TLS 1.2 and 1.3). Errors are one line, naming the file.
pub fn load_server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    let cert_pem = std::fs::read(cert)
        .map_err(|e| format!("cannot read certificate {}: {e}", cert.display()))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad certificate file {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("no certificate in {}", cert.display()));
    }
    let key_pem =
        std::fs::read(key).map_err(|e| format!("cannot read key {}: {e}", key.display()))?;
    let private_key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| format!("no usable private key in {}: {e}", key.display()))?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|e| {
            format!(
                "certificate {} and key {} do not make a usable pair: {e}",
                cert.display(),
                key.display()
            )
        })?;
    Ok(Arc::new(config))
}

/// The server's certificate, reloadable from its files.
#[derive(Debug)]
pub struct CertStore {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: Arc<ServerConfig>,
}

impl CertStore {
    /// Loads the certificate chain and key; fails with a one-line reason.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<CertStore, String> {
        let current = load_server_config(cert_path, key_path)?;
        Ok(CertStore {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            current,
        })
    }

    /// Reads the files again. On success new handshakes use the new
    /// certificate; on failure the old one stays and the reason is returned.
    pub fn reload(&mut self) -> Result<(), String> {
        self.current = load_server_config(&self.cert_path, &self.key_path)?;
        Ok(())
    }

    /// The configuration for the next handshake.
    pub fn config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.current)
    }
}

/// Bytes read from the socket at once: a whole record fits.
const READ_CHUNK: usize = 17 * 1024;

/// The TLS state of one server-side connection, on rustls's unbuffered
/// API: the buffers are ours, so an idle connection holds none (rustls's
/// buffered connection keeps 4 KiB of input buffer per connection forever).
pub struct TlsSession {
    conn: UnbufferedServerConnection,
    /// Received bytes not processed yet (an unfinished record).
    incoming: Vec<u8>,
    /// Records not yet taken by the socket, and how much of them was.
    outgoing: Vec<u8>,
    sent: usize,
    /// Decrypted input not yet handed to the caller, and how much was.
    plaintext: Vec<u8>,
    taken: usize,
    /// Whether [`Self::take_established`] already reported the handshake.
    established: bool,
    /// The socket reached its end.
    eof: bool,
    /// The peer sent `close_notify`.
    peer_closed: bool,
    /// `close_notify` has been queued.
    closed: bool,
    /// Whether any byte arrived yet.
    got_bytes: bool,
    /// Sent, in the clear, to a peer whose first bytes are plain text (a
    /// person or a plain client at a TLS port), instead of an alert it
    /// could not read.
    plain_answer: &'static [u8],
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field("handshaking", &self.conn.is_handshaking())
            .field("incoming", &self.incoming.len())
            .field("outgoing", &(self.outgoing.len() - self.sent))
            .finish()
    }
}

/// What [`TlsSession::process`] calls once application data may be sent:
/// encrypt (or close) into the outgoing records.
type Encrypt<'a> = dyn FnMut(&mut WriteTraffic<'_, ServerConnectionData>, &mut Vec<u8>) + 'a;

/// Runs `fill` on a free tail of `out` big enough for it: `fill` returns
/// the bytes it wrote, or `Err(Some(n))` when it needs `n` bytes of room.
fn append_with(
    out: &mut Vec<u8>,
    mut fill: impl FnMut(&mut [u8]) -> Result<usize, Option<usize>>,
) -> Result<(), rustls::Error> {
    let start = out.len();
    let mut room = 1024;
    loop {
        out.resize(start + room, 0);
        match fill(&mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(());
            }
            Err(Some(needed)) if needed > room => room = needed,
            Err(_) => {
                out.truncate(start);
                return Err(rustls::Error::General("cannot encode a TLS record".into()));
            }
        }
    }
}

fn encode_room(err: EncodeError) -> Option<usize> {
    match err {
        EncodeError::InsufficientSize(InsufficientSizeError { required_size }) => {
            Some(required_size)
        }
        _ => None,
    }
}

fn encrypt_room(err: EncryptError) -> Option<usize> {
    match err {
        EncryptError::InsufficientSize(InsufficientSizeError { required_size }) => {
            Some(required_size)
        }
        _ => None,
    }
}

impl TlsSession {
    /// A session that will handshake with the given configuration.
    pub fn new(config: Arc<ServerConfig>) -> io::Result<TlsSession> {
        let conn = UnbufferedServerConnection::new(config).map_err(io::Error::other)?;
        Ok(TlsSession {
            conn,
            incoming: Vec::new(),
            outgoing: Vec::new(),
            sent: 0,
            plaintext: Vec::new(),
            taken: 0,
            established: false,
            eof: false,
            peer_closed: false,
            closed: false,
            got_bytes: false,
            plain_answer: b"",
        })
    }

    /// What to say, in the clear, to a peer that speaks plain text to this
    /// TLS port (one line, or an HTTP answer on the web address).
    pub fn with_plain_answer(mut self, answer: &'static [u8]) -> TlsSession {
        self.plain_answer = answer;
        self
    }

    /// Whether the first bytes of the connection are plain text, not a TLS
    /// record: printable ASCII (a TLS record starts with its type, 20 to
    /// 24, all control bytes).
    fn starts_with_plain_text(&self) -> bool {
        self.incoming
            .first()
            .is_some_and(|&b| b.is_ascii_graphic() || b == b' ')
    }

    /// Lets rustls process what arrived: decrypted data goes to
    /// `plaintext`, handshake messages and alerts to `outgoing`. With
    /// `write`, once application data may be sent, it is called once with
    /// the means to encrypt. Returns whether `write` was called.
    fn process(&mut self, mut write: Option<&mut Encrypt<'_>>) -> Result<bool, rustls::Error> {
        let TlsSession {
            conn,
            incoming,
            outgoing,
            plaintext,
            peer_closed,
            ..
        } = self;
        let mut wrote = false;
        loop {
            let UnbufferedStatus { discard, state } = conn.process_tls_records(incoming);
            let mut done = false;
            let result = match state {
                Err(err) => Err(err),
                Ok(ConnectionState::ReadTraffic(mut traffic)) => {
                    let mut result = Ok(());
                    while let Some(record) = traffic.next_record() {
                        match record {
                            Ok(record) => plaintext.extend_from_slice(record.payload),
                            Err(err) => {
                                result = Err(err);
                                break;
                            }
                        }
                    }
                    result
                }
                Ok(ConnectionState::EncodeTlsData(mut encode)) => {
                    append_with(outgoing, |buf| encode.encode(buf).map_err(encode_room))
                }
                // Records leave in order from `outgoing`: hand-over done.
                Ok(ConnectionState::TransmitTlsData(transmit)) => {
                    transmit.done();
                    Ok(())
                }
                Ok(ConnectionState::PeerClosed) => {
                    *peer_closed = true;
                    Ok(())
                }
                Ok(ConnectionState::WriteTraffic(mut traffic)) => {
                    if let Some(write) = write.take() {
                        write(&mut traffic, outgoing);
                        wrote = true;
                    }
                    done = true;
                    Ok(())
                }
                Ok(_) => {
                    // Blocked on the peer, closed, or early data (off).
                    done = true;
                    Ok(())
                }
            };
            if discard > 0 {
                incoming.drain(..discard);
            }
            result?;
            if done {
                break;
            }
        }
        if incoming.is_empty() && incoming.capacity() > 0 {
            *incoming = Vec::new();
        }
        Ok(wrote)
    }

    /// After a TLS error: queue the alert rustls prepared and send it,
    /// best effort.
    fn send_alert(&mut self, socket: &mut impl Write) {
        // One call only: a second would find the same bad input again.
        let UnbufferedStatus { state, .. } = self.conn.process_tls_records(&mut self.incoming);
        if let Ok(ConnectionState::EncodeTlsData(mut encode)) = state {
            let _ = append_with(&mut self.outgoing, |buf| {
                encode.encode(buf).map_err(encode_room)
            });
        }
        self.incoming = Vec::new();
        let _ = self.flush(socket);
    }

    /// Reads plaintext into `buf`, pulling records from `socket` as needed.
    /// Like a socket read: `Ok(0)` once the peer has closed (with or
    /// without `close_notify`), `WouldBlock` when the socket has nothing
    /// more. A TLS error (not TLS at all, a bad record, a failed handshake)
    /// is `InvalidData`; the alert has then already been sent, best effort.
    /// Any handshake records to answer are left for [`Self::flush`]: check
    /// [`Self::wants_write`].
    pub fn read<S: Read + Write>(&mut self, socket: &mut S, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.taken < self.plaintext.len() {
                let n = buf.len().min(self.plaintext.len() - self.taken);
                buf[..n].copy_from_slice(&self.plaintext[self.taken..self.taken + n]);
                self.taken += n;
                if self.taken == self.plaintext.len() {
                    self.plaintext = Vec::new();
                    self.taken = 0;
                }
                return Ok(n);
            }
            if self.peer_closed || self.eof {
                return Ok(0);
            }
            let start = self.incoming.len();
            self.incoming.resize(start + READ_CHUNK, 0);
            let read = socket.read(&mut self.incoming[start..]);
            let got = *read.as_ref().unwrap_or(&0);
            self.incoming.truncate(start + got);
            match read {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(err) => {
                    if self.incoming.is_empty() {
                        self.incoming = Vec::new();
                    }
                    return Err(err);
                }
            }
            let first = !std::mem::replace(&mut self.got_bytes, true);
            if let Err(err) = self.process(None) {
                if first && !self.plain_answer.is_empty() && self.starts_with_plain_text() {
                    // Someone speaking plain text: an answer it can read.
                    self.incoming = Vec::new();
                    self.outgoing.extend_from_slice(self.plain_answer);
                    let _ = self.flush(socket);
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "plain text at a TLS port",
                    ));
                }
                self.send_alert(socket);
                return Err(io::Error::new(io::ErrorKind::InvalidData, err));
            }
        }
    }

    /// True once, the first time this is asked after the handshake
    /// completed: the moment the client may join the chat.
    pub fn take_established(&mut self) -> bool {
        if self.established || self.conn.is_handshaking() {
            return false;
        }
        self.established = true;
        true
    }

    /// Whether the handshake is still going on.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Whether records wait that the socket has not taken yet.
    pub fn wants_write(&self) -> bool {
        self.sent < self.outgoing.len()
    }

    /// Encrypts `plaintext` (a recipient's whole queue) with **one**
    /// `encrypt` call, so lines share records (one per 16 KiB), and writes
    /// the records to `socket` until they are out or it would block. At
    /// most [`TLS_BUFFER_LIMIT`] of records wait here; the rest of the
    /// plaintext stays in the caller's queue. During the handshake nothing
    /// is taken. Returns the plaintext bytes taken.
    pub fn write(&mut self, plaintext: &[u8], socket: &mut impl Write) -> io::Result<usize> {
        if self.conn.is_handshaking() {
            return Ok(0);
        }
        let mut taken = 0;
        loop {
            let waiting = self.outgoing.len() - self.sent;
            if taken < plaintext.len() && waiting < TLS_BUFFER_LIMIT {
                let end = plaintext.len().min(taken + (TLS_BUFFER_LIMIT - waiting));
                let chunk = &plaintext[taken..end];
                let mut failed = None;
                let wrote = self
                    .process(Some(&mut |traffic, outgoing| {
                        failed = append_with(outgoing, |buf| {
                            traffic.encrypt(chunk, buf).map_err(encrypt_room)
                        })
                        .err();
                    }))
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                if let Some(err) = failed {
                    return Err(io::Error::other(err));
                }
                if !wrote {
                    // Closed, or blocked on the peer: nothing can be sent.
                    return Ok(taken);
                }
                taken = end;
            }
            match self.flush(socket) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(taken),
                Err(err) => return Err(err),
            }
            if taken == plaintext.len() {
                return Ok(taken);
            }
        }
    }

    /// Writes the records waiting here; `WouldBlock` if the socket cannot
    /// take them all now.
    pub fn flush(&mut self, socket: &mut impl Write) -> io::Result<()> {
        while self.sent < self.outgoing.len() {
            match socket.write(&self.outgoing[self.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        self.outgoing = Vec::new();
        self.sent = 0;
        Ok(())
    }

    /// Queues a `close_notify` alert after everything written so far;
    /// [`Self::flush`] sends it. Returns false if it was already queued (or
    /// cannot be: the handshake is not done).
    pub fn close(&mut self) -> bool {
        if self.closed || self.conn.is_handshaking() {
            return false;
        }
        self.closed = true;
        let _ = self.process(Some(&mut |traffic, outgoing| {
            let _ = append_with(outgoing, |buf| {
                traffic.queue_close_notify(buf).map_err(encrypt_room)
            });
        }));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::ServerName;
    use rustls::{ClientConfig, ClientConnection, RootCertStore};
    use std::collections::VecDeque;

    /// A socket in memory: reads take what the peer wrote, `WouldBlock`
    /// when nothing is there, like a non-blocking socket.
    #[derive(Default)]
    struct Pipe {
        inbound: VecDeque<u8>,
        outbound: Vec<u8>,
        /// Write calls, to count records' way out.
        writes: usize,
    }

    impl Read for Pipe {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.inbound.is_empty() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.inbound.len());
            for (slot, byte) in buf.iter_mut().zip(self.inbound.drain(..n)) {
                *slot = byte;
            }
            Ok(n)
        }
    }

    impl Write for Pipe {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.writes += 1;
            self.outbound.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    struct Pki {
        server: Arc<ServerConfig>,
        client: Arc<ClientConfig>,
    }

    fn pki() -> Pki {
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let cert = generated.cert.der().clone();
        let key = PrivateKeyDer::try_from(generated.key_pair.serialize_der()).unwrap();
        let server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(cert).unwrap();
        let client = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Pki {
            server: Arc::new(server),
            client: Arc::new(client),
        }
    }

    /// Moves bytes between an in-memory client and a server session until
    /// neither has anything to say; returns the plaintext the server read.
    /// A server session, a client for `localhost` trusting it, and the
    /// wire between them; nothing exchanged yet.
    fn pair() -> (ClientConnection, TlsSession, Pipe) {
        let pki = pki();
        let server = TlsSession::new(pki.server).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let client = ClientConnection::new(pki.client, name).unwrap();
        (client, server, Pipe::default())
    }

    fn pump(client: &mut ClientConnection, server: &mut TlsSession, wire: &mut Pipe) -> Vec<u8> {
        let mut received = Vec::new();
        for _ in 0..20 {
            let mut to_server = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut to_server).unwrap();
            }
            wire.inbound.extend(to_server);
            let mut buf = [0u8; 4096];
            loop {
                match server.read(wire, &mut buf) {
                    Ok(0) => break,
                    Ok(n) => received.extend_from_slice(&buf[..n]),
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                    Err(err) => panic!("server read: {err}"),
                }
            }
            server.flush(wire).unwrap();
            let to_client = std::mem::take(&mut wire.outbound);
            if to_client.is_empty() && !client.wants_write() {
                break;
            }
            let mut slice = &to_client[..];
            while !slice.is_empty() {
                client.read_tls(&mut slice).unwrap();
                client.process_new_packets().unwrap();
            }
        }
        received
    }

    fn client_plaintext(client: &mut ClientConnection) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match client.reader().read(&mut buf) {
                Ok(0) => return out,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return out,
                Err(err) => panic!("client read: {err}"),
            }
        }
    }

    #[test]
    fn handshake_then_lines_both_ways() {
        let (mut client, mut server, mut wire) = pair();
        client.writer().write_all(b"hello\n:ping\n").unwrap();
        let received = pump(&mut client, &mut server, &mut wire);
        assert!(!server.is_handshaking());
        assert!(server.take_established());
        assert!(!server.take_established(), "reported once");
        assert_eq!(received, b"hello\n:ping\n");
        server.write(b"* pong\n", &mut wire).unwrap();
        pump(&mut client, &mut server, &mut wire);
        assert_eq!(client_plaintext(&mut client), b"* pong\n");
    }

    #[test]
    fn one_write_of_many_lines_is_one_record() {
        let (mut client, mut server, mut wire) = pair();
        pump(&mut client, &mut server, &mut wire);
        wire.outbound.clear();
        let lines: Vec<u8> = (0..100)
            .flat_map(|i| format!("alice: line {i:03} of a busy room\n").into_bytes())
            .collect();
        assert!(lines.len() < 16 * 1024);
        let taken = server.write(&lines, &mut wire).unwrap();
        assert_eq!(taken, lines.len());
        // One TLS 1.3 record: 5 header bytes, 1 content type, 16 tag.
        assert_eq!(wire.outbound.len(), lines.len() + 22);
        pump(&mut client, &mut server, &mut wire);
        assert_eq!(client_plaintext(&mut client), lines);
    }

    #[test]
    fn garbage_is_an_error_with_an_alert() {
        let pki = pki();
        let mut server = TlsSession::new(pki.server).unwrap();
        let mut wire = Pipe::default();
        wire.inbound
            .extend(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".iter());
        let err = server.read(&mut wire, &mut [0u8; 1024]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        // An alert record went out: content type 21.
        assert_eq!(wire.outbound.first(), Some(&21));
    }

    #[test]
    fn end_of_stream_reads_zero() {
        let (mut client, mut server, mut wire) = pair();
        pump(&mut client, &mut server, &mut wire);
        client.send_close_notify();
        let mut alert = Vec::new();
        client.write_tls(&mut alert).unwrap();
        wire.inbound.extend(alert);
        assert_eq!(server.read(&mut wire, &mut [0u8; 64]).unwrap(), 0);
        assert!(server.close());
        assert!(!server.close(), "close_notify is queued once");
        assert!(server.wants_write());
    }

    fn write_temp(dir: &tempfile::TempDir, name: &str, contents: &[u8]) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    #[test]
    fn config_errors_are_one_line_and_name_the_file() {
        let a = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        // Removed when the test ends, pass or fail.
        let dir = tempfile::tempdir().unwrap();
        let cert = write_temp(&dir, "cert.pem", a.cert.pem().as_bytes());
        let key = write_temp(&dir, "key.pem", a.key_pair.serialize_pem().as_bytes());
        let other_key = write_temp(&dir, "other.pem", b.key_pair.serialize_pem().as_bytes());
        let junk = write_temp(&dir, "junk.pem", b"not a pem file\n");
        assert!(load_server_config(&cert, &key).is_ok());
        let errors = [
            load_server_config(Path::new("/nonexistent/cert.pem"), &key).unwrap_err(),
            load_server_config(&junk, &key).unwrap_err(),
            load_server_config(&cert, &junk).unwrap_err(),
            load_server_config(&cert, &other_key).unwrap_err(),
        ];
        for err in &errors {
            assert!(!err.contains('\n'), "one line: {err}");
        }
        assert!(errors[0].contains("/nonexistent/cert.pem"), "{}", errors[0]);
        assert!(errors[1].contains("junk.pem"), "{}", errors[1]);
        assert!(errors[2].contains("junk.pem"), "{}", errors[2]);
        assert!(
            errors[3].contains("do not make a usable pair"),
            "{}",
            errors[3]
        );

        let mut store = CertStore::load(&cert, &key).unwrap();
        let before = store.config();
        std::fs::write(&key, b"broken").unwrap();
        assert!(store.reload().is_err());
        assert!(Arc::ptr_eq(&before, &store.config()), "the old one is kept");
        std::fs::write(&key, a.key_pair.serialize_pem()).unwrap();
        store.reload().unwrap();
        assert!(!Arc::ptr_eq(&before, &store.config()));
    }
}
