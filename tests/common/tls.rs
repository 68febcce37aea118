//! TLS helpers for the integration tests: a test CA and server
//! certificates made with rcgen, written to a temporary directory, and a
//! TLS line client with the same reading helpers as [`super::Client`].

use super::{Lines, READ_TIMEOUT};
use loopchat_client::tls::{client_config, connect_client, ClientStream};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A test CA, and a server certificate it signed for `localhost` and
/// `127.0.0.1`, as PEM files in a directory removed on drop.
pub struct TestPki {
    pub dir: PathBuf,
    /// The CA certificate: what clients trust.
    pub ca_file: PathBuf,
    /// The server's certificate chain and key, as given to the server.
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    ca_cert: rcgen::Certificate,
    ca_key: KeyPair,
    /// DER of the server certificate now in `cert_file`.
    pub leaf_der: Vec<u8>,
}

impl TestPki {
    pub fn new() -> TestPki {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "loopchat-tls-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let ca_key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "loopchat test CA");
        let ca_cert = params.self_signed(&ca_key).expect("CA cert");
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca_cert.pem()).expect("write CA");
        let mut pki = TestPki {
            cert_file: dir.join("cert.pem"),
            key_file: dir.join("key.pem"),
            dir,
            ca_file,
            ca_cert,
            ca_key,
            leaf_der: Vec::new(),
        };
        pki.renew();
        pki
    }

    /// Issues a new server certificate (new key too) into the cert and key
    /// files, as a renewal would; returns its DER.
    pub fn renew(&mut self) -> Vec<u8> {
        let key = KeyPair::generate().expect("leaf key");
        let params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("leaf params");
        let cert = params
            .signed_by(&key, &self.ca_cert, &self.ca_key)
            .expect("leaf cert");
        std::fs::write(&self.cert_file, cert.pem()).expect("write cert");
        std::fs::write(&self.key_file, key.serialize_pem()).expect("write key");
        self.leaf_der = cert.der().to_vec();
        self.leaf_der.clone()
    }

    /// A client configuration trusting this CA only.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        client_config(Some(&self.ca_file)).expect("client config")
    }

    /// The certificate and key paths as server flags.
    pub fn server_flags(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.cert_file.display().to_string(),
            "--tls-key".into(),
            self.key_file.display().to_string(),
        ]
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TLS line client: handshake done, server name verified.
pub struct TlsClient {
    pub reader: BufReader<ClientStream>,
    pub writer: ClientStream,
    pub nick: String,
}

impl Lines for TlsClient {
    fn send(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\n").as_bytes())
            .expect("send");
    }

    /// The next line; `Ok(None)` on a clean close (`close_notify`).
    fn try_line(&mut self) -> io::Result<Option<String>> {
        let mut buf = Vec::new();
        if self.reader.read_until(b'\n', &mut buf)? == 0 {
            return Ok(None);
        }
        assert_eq!(buf.pop(), Some(b'\n'), "line without newline: {buf:?}");
        Ok(Some(String::from_utf8(buf).expect("server sends UTF-8")))
    }
}

impl TlsClient {
    /// Connects and handshakes as `server_name`; an error is the handshake's.
    pub fn try_connect_raw(
        addr: SocketAddr,
        server_name: &str,
        config: Arc<rustls::ClientConfig>,
    ) -> io::Result<TlsClient> {
        let tcp = TcpStream::connect(addr)?;
        tcp.set_read_timeout(Some(READ_TIMEOUT))?;
        tcp.set_nodelay(true)?;
        let stream = connect_client(tcp, server_name, config)?;
        Ok(TlsClient {
            writer: stream.try_clone()?,
            reader: BufReader::new(stream),
            nick: String::new(),
        })
    }

    /// Connects as `localhost` trusting `pki`'s CA and reads the welcome.
    pub fn connect(addr: SocketAddr, pki: &TestPki) -> TlsClient {
        TlsClient::connect_tcp(TcpStream::connect(addr).expect("connect"), pki)
    }

    /// Handshakes over a connected socket and reads the welcome.
    pub fn connect_tcp(tcp: TcpStream, pki: &TestPki) -> TlsClient {
        tcp.set_read_timeout(Some(READ_TIMEOUT)).expect("timeout");
        let stream = connect_client(tcp, "localhost", pki.client_config()).expect("TLS connect");
        let mut client = TlsClient {
            writer: stream.try_clone().expect("clone"),
            reader: BufReader::new(stream),
            nick: String::new(),
        };
        client.read_welcome();
        client
    }

    /// Reads `* welcome NICK` and the own join line; keeps the nick.
    pub fn read_welcome(&mut self) {
        let client = self;
        let welcome = client.line();
        let nick = welcome
            .strip_prefix("* welcome ")
            .unwrap_or_else(|| panic!("expected a welcome, got {welcome:?}"))
            .to_string();
        client.expect(&format!("* {nick} joined #lobby"));
        client.nick = nick;
    }

    /// The certificate the server presented (DER).
    pub fn server_certificate(&self) -> Vec<u8> {
        self.writer
            .peer_certificate()
            .expect("a server certificate")
    }
}
