//! The tampering proxy: a TCP proxy between one real client and the real
//! server that passes everything on until told to attack. It speaks the
//! line protocol (the terminal client) or HTTP and WebSocket (the page:
//! the page's files pass as they are, and on a connection upgraded to
//! WebSocket each text frame is one line, the client's masked).

use loopchat_client::e2e::{E2e, KeyPair, Pins, Shown};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{mpsc, Arc, Mutex};

/// What the proxy does to the next transport message (`v1.m.`) it
/// relays from the server to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attack {
    /// Changes one character of its data.
    Flip,
    /// Delivers it twice.
    Replay,
    /// Never delivers it.
    Drop,
}

/// How the proxied client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Lines ending in `\n` (the terminal client).
    Lines,
    /// HTTP, then WebSocket text frames (the page).
    WebSocket,
}

/// The proxy's shared state.
#[derive(Default)]
pub struct Plan {
    /// The attack on the next transport message, if any.
    next: Option<Attack>,
    /// A man in the middle: "bob" as the proxy plays him, with a key of
    /// its own; while set, the real bob's payloads and the client's
    /// payloads to bob never pass.
    mitm: Option<E2e>,
    /// A key to put in place of bob's in the directory's answers
    /// (`* keys bob: …`).
    pub swap_keys: Option<String>,
    /// What the man in the middle's "bob" decrypted from the client.
    pub mitm_read: Vec<String>,
    /// Every line the client sent, as it passed.
    pub from_client: Vec<String>,
}

/// A writer to the current client, framed as it speaks.
type ToClient = Arc<Mutex<Option<(TcpStream, Framing)>>>;

/// The tampering proxy.
pub struct Proxy {
    /// Where the client connects.
    pub addr: SocketAddr,
    /// What it does next, and what it saw.
    pub plan: Arc<Mutex<Plan>>,
    /// Each attack, once carried out.
    done: mpsc::Receiver<Attack>,
    to_client: ToClient,
}

impl Proxy {
    /// A proxy to `server` for clients that speak `framing`; connections
    /// are handled one after the other for lines (a restarted client
    /// connects again), each on its own thread for the page's HTTP.
    pub fn start(server: SocketAddr, framing: Framing) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().unwrap();
        let plan = Arc::new(Mutex::new(Plan::default()));
        let to_client: ToClient = Arc::new(Mutex::new(None));
        let (tell, done) = mpsc::channel();
        let (plan2, to_client2) = (Arc::clone(&plan), Arc::clone(&to_client));
        std::thread::spawn(move || {
            while let Ok((client, _)) = listener.accept() {
                let upstream = TcpStream::connect(server).expect("the proxy reaches the server");
                let (plan, to_client, tell) = (plan2.clone(), to_client2.clone(), tell.clone());
                let handle = std::thread::spawn(move || {
                    connection(client, upstream, framing, &plan, &to_client, &tell);
                });
                if framing == Framing::Lines {
                    let _ = handle.join();
                }
            }
        });
        Proxy {
            addr,
            plan,
            done,
            to_client,
        }
    }

    /// Arms `attack` for the next transport message to the client.
    pub fn arm(&self, attack: Attack) {
        self.plan.lock().unwrap().next = Some(attack);
    }

    /// Waits until the armed attack was carried out.
    pub fn wait_done(&self, attack: Attack) {
        let done = self
            .done
            .recv_timeout(crate::common::tmux::TIMEOUT)
            .expect("the attack was carried out");
        assert_eq!(done, attack);
    }

    /// Becomes "bob" with a key of its own and starts a handshake with the
    /// client, with `text` to send once it is up.
    pub fn impersonate_bob(&self, text: &str) {
        let mut fake = E2e::with(KeyPair::generate(), Pins::in_memory(), "loopchat", "bob");
        let lines = fake.send("alice", text).expect("the fake bob sends");
        self.plan.lock().unwrap().mitm = Some(fake);
        inject(&self.to_client, &lines);
    }

    /// Stops playing bob: the real bob's lines pass again.
    pub fn stop_impersonating(&self) {
        self.plan.lock().unwrap().mitm = None;
    }

    /// Every line the client sent so far.
    pub fn sent_by_client(&self) -> Vec<String> {
        self.plan.lock().unwrap().from_client.clone()
    }
}

/// One line (or WebSocket text message) to the client.
fn write_to(client: &mut TcpStream, framing: Framing, line: &str) -> std::io::Result<()> {
    match framing {
        Framing::Lines => client.write_all(format!("{line}\n").as_bytes()),
        Framing::WebSocket => {
            let mut frame = Vec::new();
            loopchat::net::ws::text_frame(line.as_bytes(), &mut frame);
            client.write_all(&frame)
        }
    }
}

/// Writes the fake bob's `:e2e alice PAYLOAD` lines to the client as the
/// server would relay them. (Its `:keys alice` goes nowhere: it knows
/// whom it attacks.)
fn inject(to_client: &ToClient, lines: &[String]) {
    let mut guard = to_client.lock().unwrap();
    let (client, framing) = guard.as_mut().expect("a client");
    for line in lines.iter().filter(|line| !line.starts_with(":keys ")) {
        let payload = line.strip_prefix(":e2e alice ").expect("to alice");
        write_to(client, *framing, &format!("[e2e] bob: {payload}")).unwrap();
    }
}

/// A line from the client: whether to pass it on to the server (the man
/// in the middle keeps the client's payloads to bob and answers them).
fn from_client(plan: &Mutex<Plan>, to_client: &ToClient, line: &str) -> bool {
    let mut guard = plan.lock().unwrap();
    guard.from_client.push(line.to_string());
    let Some(payload) = line.strip_prefix(":e2e bob ") else {
        return true;
    };
    let plan = &mut *guard;
    let Some(fake) = plan.mitm.as_mut() else {
        return true;
    };
    let (answers, shown) = fake
        .on_line(&format!("[e2e] alice: {payload}"))
        .expect("an e2e line");
    for item in shown {
        if let Shown::Message { text, .. } = item {
            plan.mitm_read.push(text);
        }
    }
    drop(guard);
    inject(to_client, &answers);
    false
}

/// A line from the server: the lines to deliver in its place. Tags (the
/// page turns them on: `@time=…;id=… LINE`) stay as they came.
fn from_server(plan: &Mutex<Plan>, line: &str, done: &mpsc::Sender<Attack>) -> Vec<String> {
    let (tags, line) = match line.split_once(' ') {
        Some((tags, rest)) if tags.starts_with('@') => (format!("{tags} "), rest),
        _ => (String::new(), line),
    };
    untagged(plan, line, done)
        .into_iter()
        .map(|out| format!("{tags}{out}"))
        .collect()
}

fn untagged(plan: &Mutex<Plan>, line: &str, done: &mpsc::Sender<Attack>) -> Vec<String> {
    let mut plan = plan.lock().unwrap();
    if line.starts_with("[e2e] bob: ") && plan.mitm.is_some() {
        return Vec::new();
    }
    if let (true, Some(key)) = (line.starts_with("* keys bob: "), &plan.swap_keys) {
        return vec![format!("* keys bob: {key}")];
    }
    if !line.starts_with("[e2e] bob: v1.m.") {
        return vec![line.to_string()];
    }
    let Some(attack) = plan.next.take() else {
        return vec![line.to_string()];
    };
    let _ = done.send(attack);
    match attack {
        Attack::Flip => {
            let mut bytes = line.as_bytes().to_vec();
            let at = bytes.len() - 10;
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            vec![String::from_utf8(bytes).unwrap()]
        }
        Attack::Replay => vec![line.to_string(), line.to_string()],
        Attack::Drop => Vec::new(),
    }
}

/// Relays one connection until either side closes.
fn connection(
    client: TcpStream,
    server: TcpStream,
    framing: Framing,
    plan: &Arc<Mutex<Plan>>,
    to_client: &ToClient,
    done: &mpsc::Sender<Attack>,
) {
    let mut from_server_side = BufReader::new(server.try_clone().unwrap());
    let mut client_reader = BufReader::new(client.try_clone().unwrap());
    let mut to_server = server;
    let mut client_writer = client.try_clone().unwrap();
    if framing == Framing::WebSocket {
        // The request, then the response: an upgrade or a file.
        let request = head(&mut client_reader);
        let _ = to_server.write_all(&request);
        let response = head(&mut from_server_side);
        let _ = client_writer.write_all(&response);
        if !response.starts_with(b"HTTP/1.1 101") {
            let mut rest = Vec::new();
            let _ = from_server_side.read_to_end(&mut rest);
            let _ = client_writer.write_all(&rest);
            return;
        }
    }
    *to_client.lock().unwrap() = Some((client, framing));
    let (plan2, to_client2) = (Arc::clone(plan), Arc::clone(to_client));
    std::thread::spawn(move || {
        while let Some(message) = read_message(&mut client_reader, framing, true) {
            let pass = match &message.text {
                Some(line) => from_client(&plan2, &to_client2, line),
                None => true,
            };
            if pass && to_server.write_all(&message.raw).is_err() || message.close {
                break;
            }
        }
        let _ = to_server.shutdown(std::net::Shutdown::Write);
    });
    while let Some(message) = read_message(&mut from_server_side, framing, false) {
        // Written to this connection's client, in turn with injections.
        let _turn = to_client.lock().unwrap();
        let written = match &message.text {
            Some(line) => from_server(plan, line, done)
                .iter()
                .try_for_each(|piece| write_to(&mut client_writer, framing, piece)),
            None => client_writer.write_all(&message.raw),
        };
        if written.is_err() || message.close {
            break;
        }
    }
    let _ = client_writer.shutdown(std::net::Shutdown::Write);
}

/// An HTTP head, up to and with its empty line.
fn head(reader: &mut impl BufRead) -> Vec<u8> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
            break;
        }
        head.extend(line);
    }
    head
}

/// One line or WebSocket frame.
struct Message {
    /// The line (without `\n`) or the text message (unmasked); `None` for
    /// WebSocket control frames, which pass as they came.
    text: Option<String>,
    /// Its bytes as they came.
    raw: Vec<u8>,
    /// A WebSocket close frame: the last.
    close: bool,
}

/// The next line or WebSocket frame; `None` at the end.
fn read_message(reader: &mut impl BufRead, framing: Framing, masked: bool) -> Option<Message> {
    if framing == Framing::Lines {
        let mut line = String::new();
        return match reader.read_line(&mut line) {
            Ok(n) if n > 0 => Some(Message {
                text: Some(line.trim_end_matches('\n').to_string()),
                raw: line.into_bytes(),
                close: false,
            }),
            _ => None,
        };
    }
    let mut raw = vec![0u8; 2];
    reader.read_exact(&mut raw).ok()?;
    let mut len = u64::from(raw[1] & 0x7f);
    if len >= 126 {
        let mut ext = vec![0u8; if len == 126 { 2 } else { 8 }];
        reader.read_exact(&mut ext).ok()?;
        len = ext.iter().fold(0, |n, b| n << 8 | u64::from(*b));
        raw.extend(ext);
    }
    let mut mask = [0u8; 4];
    if raw[1] & 0x80 != 0 {
        reader.read_exact(&mut mask).ok()?;
        raw.extend(mask);
    }
    assert_eq!(raw[1] & 0x80 != 0, masked, "only client frames are masked");
    let mut payload = vec![0u8; usize::try_from(len).unwrap()];
    reader.read_exact(&mut payload).ok()?;
    raw.extend(&payload);
    for (i, byte) in payload.iter_mut().enumerate() {
        *byte ^= mask[i % 4];
    }
    let opcode = raw[0] & 0x0f;
    // Lines are final text frames, one each (docs/web.md).
    let text = (raw[0] == 0x81).then(|| String::from_utf8_lossy(&payload).into_owned());
    Some(Message {
        text,
        raw,
        close: opcode == 8,
    })
}
