//! Attack modes of the load generator (`--attack`): what one hostile client
//! (or a few) can do to everyone else, measured from outside.
//!
//! - `flood`: `--clients` members in `#lobby`, `--slow-readers` of them with
//!   a 4 KiB receive buffer that never read, one flooder sending
//!   `--payload`-byte chat lines as fast as the server takes them.
//! - `rooms`: `--clients` members each alone in a room of their own, and two
//!   attackers pipelining `:rooms` and `:users` as fast as they can, reading
//!   the answers.
//! - `pm`: a victim reading normally, and an attacker writing `:pm victim`
//!   lines of `--payload` bytes as fast as the server takes them.
//! - `login`: `--guessers` clients, each from its own loopback address,
//!   sending wrong passwords for one account as fast as they are answered,
//!   then its owner logging in with the right one ([`login`]).
//!
//! In every mode a probe client in `#lobby` reads everything it is sent and
//! sends `:ping` every `--probe-interval-ms` (100 ms, 10 ms for `login`)
//! after the answer to the last; the report gives its round trips, who was cut
//! off (the `(too slow)` announcements the probe saw, by role), the server's
//! peak RSS (with `--server-pid`, or this process's when the server runs
//! in-process) and the peak kernel TCP memory from `/proc/net/sockstat`.
//! Each sender stops after `--duration` seconds or `MAX_ATTACK_BYTES`.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::{Events, Interest, Poll, Token};

use super::{sys, Options};
use loopchat_protocol::{recognise, Event, Reply, ServerLine};

pub mod login;

/// Most bytes one attacker sends, whatever `--duration` says.
const MAX_ATTACK_BYTES: u64 = 4 << 30;
/// Pause between the probe's pings unless `--probe-interval-ms` says
/// otherwise: 10 a second at most, under the default flood control's 20
/// lines a second, so the probe is never throttled itself.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);
/// The `login` attack's probe interval: a ping every 10 ms (issue 22), for
/// a server with flood control off.
const LOGIN_PROBE_INTERVAL: Duration = Duration::from_millis(10);
/// How long a setup step may wait for a line.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Which attack to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attack {
    /// One flooder in a big room, some members never reading.
    Flood,
    /// Pipelined `:rooms` and `:users` with many rooms.
    Rooms,
    /// A burst of private messages at one reading victim.
    Pm,
    /// Many clients guessing one account's password.
    Login,
}

impl std::str::FromStr for Attack {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "flood" => Ok(Attack::Flood),
            "rooms" => Ok(Attack::Rooms),
            "pm" => Ok(Attack::Pm),
            "login" => Ok(Attack::Login),
            _ => Err(format!("--attack {s}: one of flood, rooms, pm, login")),
        }
    }
}

/// What an attack run measured.
#[derive(Debug, Default)]
pub struct AttackReport {
    /// The attack and its size, in words.
    pub what: String,
    /// Probe `:ping` round trips, microseconds.
    pub ping_count: u64,
    /// p50, p99 and max round trip, microseconds.
    pub ping_us: (u64, u64, u64),
    /// Pings sent but never answered before the probe stopped.
    pub pings_unanswered: u64,
    /// Bytes the attackers wrote.
    pub attack_bytes: u64,
    /// Bytes the attackers and readers read (answers, fan-out).
    pub read_bytes: u64,
    /// Flood lines the probe received (`flood` attack).
    pub probe_flood_lines: u64,
    /// Cut off as too slow, by role (nick prefix).
    pub cut_off: BTreeMap<String, u64>,
    /// Whether the probe itself was disconnected.
    pub probe_closed: bool,
    /// Peak server RSS, KiB (None: unknown).
    pub peak_rss_kib: Option<u64>,
    /// Server RSS before the attack, KiB.
    pub rss_before_kib: Option<u64>,
    /// Peak and starting kernel TCP memory from /proc/net/sockstat, KiB.
    pub tcp_mem_kib: (u64, u64),
    /// What the `login` attack's guessers and the account's owner saw.
    pub login: Option<login::LoginReport>,
    /// Things the reader should know (in-process RSS, ...).
    pub notes: Vec<String>,
}

impl AttackReport {
    /// The report as text, one `key value` line each.
    pub fn to_text(&self) -> String {
        let mut out = format!("attack: {}\n", self.what);
        out += &format!(
            "probe pings: {} answered, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} unanswered{}\n",
            self.ping_count,
            self.ping_us.0 as f64 / 1000.0,
            self.ping_us.1 as f64 / 1000.0,
            self.ping_us.2 as f64 / 1000.0,
            self.pings_unanswered,
            if self.probe_closed {
                ", PROBE DISCONNECTED"
            } else {
                ""
            }
        );
        if let Some(login) = &self.login {
            out += &login.to_text();
        }
        out += &format!(
            "attackers wrote {} MB (into their sockets), clients read {} MB; the probe got {} flood lines\n",
            self.attack_bytes / 1_000_000,
            self.read_bytes / 1_000_000,
            self.probe_flood_lines
        );
        let cut: Vec<String> = self
            .cut_off
            .iter()
            .map(|(role, n)| format!("{n} {role}"))
            .collect();
        out += &format!(
            "cut off as too slow: {}\n",
            if cut.is_empty() {
                "nobody".to_string()
            } else {
                cut.join(", ")
            }
        );
        let kib = |v: Option<u64>| v.map_or("?".to_string(), |v| format!("{} MiB", v / 1024));
        out += &format!(
            "server RSS: {} before, peak {}\n",
            kib(self.rss_before_kib),
            kib(self.peak_rss_kib)
        );
        out += &format!(
            "kernel TCP memory (/proc/net/sockstat): {} MiB before, peak {} MiB\n",
            self.tcp_mem_kib.1 / 1024,
            self.tcp_mem_kib.0 / 1024
        );
        for note in &self.notes {
            out += &format!("note: {note}\n");
        }
        out
    }
}

/// Kernel TCP memory in KiB, from the `TCP: ... mem PAGES` line.
fn tcp_mem_kib() -> u64 {
    let text = std::fs::read_to_string("/proc/net/sockstat").unwrap_or_default();
    let pages = text
        .lines()
        .find(|l| l.starts_with("TCP:"))
        .and_then(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "mem")?;
            words.get(at + 1)?.parse::<u64>().ok()
        })
        .unwrap_or(0);
    // SAFETY: sysconf reads a constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
    pages * page / 1024
}

/// A connected, welcomed client renamed to `nick`, blocking, with a read
/// timeout. `small_rcvbuf`: a 4 KiB receive buffer, for clients that will
/// stop reading. Returns the stream; lines after the rename are unread.
fn join(
    addr: SocketAddr,
    nick: &str,
    small_rcvbuf: bool,
    room: Option<&str>,
) -> io::Result<TcpStream> {
    let stream = dial(addr, small_rcvbuf, None)?;
    stream.set_read_timeout(Some(SETUP_TIMEOUT))?;
    let mut reader = LineReader::new(stream.try_clone()?);
    let welcome = reader.line()?;
    let Some(ServerLine::Reply(Reply::Welcome { nick: guest })) = recognise(&welcome) else {
        return Err(io::Error::other(format!(
            "expected a welcome, got {welcome:?}"
        )));
    };
    let guest = guest.to_string();
    let mut writer = stream.try_clone()?;
    writer.write_all(setup_commands(nick, room).as_bytes())?;
    loop {
        let line = reader.line()?;
        let done = match (recognise(&line), room) {
            // In a room other than #lobby, setup ends with leaving #lobby.
            (
                Some(ServerLine::Event(Event::Left {
                    nick: who,
                    room: from,
                    ..
                })),
                Some(room),
            ) if !is_lobby(room) => who == nick && is_lobby(from),
            (
                Some(ServerLine::Event(Event::Joined {
                    nick: who,
                    room: to,
                })),
                Some(room),
            ) => is_lobby(room) && who == nick && to.strip_prefix('#') == Some(room),
            (Some(ServerLine::Event(Event::Renamed { old, new })), None) => {
                old == guest && new == nick
            }
            _ => false,
        };
        if done {
            return Ok(stream);
        }
    }
}

/// A member connected without waiting for anything: its rename (and join)
/// are sent at once, and the probe's barrier sees them through. Thousands
/// connect in seconds this way, where waiting for each would pay every
/// join's fan-out to the whole room in turn.
fn connect_member(
    addr: SocketAddr,
    nick: &str,
    small_rcvbuf: bool,
    room: Option<&str>,
) -> io::Result<TcpStream> {
    let mut stream = dial(addr, small_rcvbuf, None)?;
    stream.write_all(setup_commands(nick, room).as_bytes())?;
    Ok(stream)
}

/// A blocking TCP connection with Nagle off; `small_rcvbuf`: a 4 KiB
/// receive buffer, set before connecting so the window starts small;
/// `source`: the local address to connect from (the kernel's choice
/// without it).
fn dial(addr: SocketAddr, small_rcvbuf: bool, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    if small_rcvbuf {
        socket.set_recv_buffer_size(4096)?;
    }
    if let Some(ip) = source {
        socket
            .bind(&SocketAddr::new(ip, 0).into())
            .map_err(|e| io::Error::new(e.kind(), format!("bind to {ip}: {e}")))?;
    }
    socket.connect_timeout(&addr.into(), SETUP_TIMEOUT)?;
    let stream: TcpStream = socket.into();
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// The lines that rename a member and, with a room, move it there.
fn setup_commands(nick: &str, room: Option<&str>) -> String {
    let mut cmds = format!(":nick {nick}\n");
    if let Some(room) = room {
        cmds += &format!(":join {room}\n");
        // Protocol 1.2 keeps the rooms one was in: leave #lobby, so the
        // member is in its room only, as before.
        if !is_lobby(room) {
            cmds += ":part #lobby\n";
        }
    }
    cmds
}

/// Whether `room` (`#` optional, any letter case) is `#lobby`.
fn is_lobby(room: &str) -> bool {
    room.trim_start_matches('#')
        .eq_ignore_ascii_case(&loopchat_protocol::LOBBY[1..])
}

/// Line reads over a blocking stream, counting bytes.
struct LineReader {
    inner: BufReader<TcpStream>,
    buf: Vec<u8>,
    bytes: u64,
}

impl LineReader {
    fn new(stream: TcpStream) -> Self {
        LineReader {
            inner: BufReader::with_capacity(256 * 1024, stream),
            buf: Vec::new(),
            bytes: 0,
        }
    }

    /// The next line without its `\n`; an error at end of stream. A
    /// read timeout in the middle of a line keeps what was read of it for
    /// the next call.
    fn line(&mut self) -> io::Result<String> {
        let before = self.buf.len();
        let read = self.inner.read_until(b'\n', &mut self.buf);
        self.bytes += (self.buf.len() - before) as u64;
        let n = read?;
        if n == 0 || self.buf.last() != Some(&b'\n') {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.buf.pop();
        let line = String::from_utf8_lossy(&self.buf).into_owned();
        self.buf.clear();
        Ok(line)
    }
}

/// Reads and discards everything on many sockets from one thread; counts
/// bytes and closed connections.
fn spawn_sink(
    streams: Vec<TcpStream>,
    stop: Arc<AtomicBool>,
    read_bytes: Arc<AtomicU64>,
) -> io::Result<thread::JoinHandle<u64>> {
    let mut poll = Poll::new()?;
    let mut socks = Vec::with_capacity(streams.len());
    for (i, stream) in streams.into_iter().enumerate() {
        stream.set_nonblocking(true)?;
        let mut sock = mio::net::TcpStream::from_std(stream);
        poll.registry()
            .register(&mut sock, Token(i), Interest::READABLE)?;
        socks.push(Some(sock));
    }
    Ok(thread::spawn(move || {
        let mut events = Events::with_capacity(1024);
        let mut buf = vec![0u8; 256 * 1024];
        let mut closed = 0;
        // Anything already buffered raised its edge before registration?
        // No: registration reports current readiness, so one pass suffices.
        while !stop.load(Ordering::Relaxed) {
            if poll
                .poll(&mut events, Some(Duration::from_millis(100)))
                .is_err()
            {
                break;
            }
            for event in events.iter() {
                let Some(slot) = socks.get_mut(event.token().0) else {
                    continue;
                };
                let Some(sock) = slot.as_mut() else {
                    continue;
                };
                loop {
                    match sock.read(&mut buf) {
                        Ok(0) => {
                            closed += 1;
                            *slot = None;
                            break;
                        }
                        Ok(n) => {
                            read_bytes.fetch_add(n as u64, Ordering::Relaxed);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => {
                            closed += 1;
                            *slot = None;
                            break;
                        }
                    }
                }
            }
        }
        closed
    }))
}

/// Writes `line(i)` for i = 0, 1, ... until `stop` or the byte cap.
fn spawn_writer(
    mut stream: TcpStream,
    stop: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
    line: impl Fn(u64) -> Vec<u8> + Send + 'static,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        // A throttled writer blocks; wake up now and then to see `stop`.
        let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
        let mut i = 0;
        let mut batch = Vec::new();
        let mut pending: &[u8] = &[];
        let mut total = 0u64;
        while !stop.load(Ordering::Relaxed) && total < MAX_ATTACK_BYTES {
            if pending.is_empty() {
                batch.clear();
                while batch.len() < 64 * 1024 {
                    batch.extend_from_slice(&line(i));
                    i += 1;
                }
                pending = &batch[..];
            }
            match stream.write(pending) {
                Ok(n) => {
                    pending = &pending[n..];
                    total += n as u64;
                    written.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(_) => break,
            }
        }
    })
}

/// Samples the server's RSS and the kernel's TCP memory every 50 ms.
fn spawn_sampler(pid: Option<u32>, stop: Arc<AtomicBool>) -> thread::JoinHandle<(u64, u64)> {
    thread::spawn(move || {
        let (mut rss, mut tcp) = (0, 0);
        while !stop.load(Ordering::Relaxed) {
            rss = rss.max(sys::vm_rss_kib(pid).unwrap_or(0));
            tcp = tcp.max(tcp_mem_kib());
            thread::sleep(Duration::from_millis(50));
        }
        (rss, tcp)
    })
}

/// Runs the attack `opts.attack` names against `addr` (see the module
/// docs) and reports what the probe and the samplers saw.
pub fn run(
    opts: &Options,
    attack: Attack,
    addr: SocketAddr,
    server_pid: Option<u32>,
    in_process: bool,
) -> io::Result<AttackReport> {
    if attack == Attack::Login {
        return login::run(opts, addr, server_pid, in_process);
    }
    let mut report = AttackReport::default();
    let duration = Duration::try_from_secs_f64(opts.duration)
        .map_err(|_| io::Error::other("--duration: seconds >= 0"))?;
    let payload = opts.payload.clamp(16, 4000);
    if in_process {
        report.notes.push(
            "in-process server: RSS is the whole load generator's; use --addr and --server-pid"
                .into(),
        );
    }
    let log = |msg: String| {
        if !opts.quiet {
            eprintln!("loadgen: {msg}");
        }
    };
    // The probe first, so it sees every member's rename.
    let probe_stream = join(addr, "probe", false, None)?;
    let mut probe = LineReader::new(probe_stream.try_clone()?);
    let mut probe_writer = probe_stream;
    let read_bytes = Arc::new(AtomicU64::new(0));
    let written = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let slow_count = opts.slow_readers.min(opts.clients);
    let mut readers = Vec::new();
    let mut slow = Vec::new();
    log(format!("connecting {} members", opts.clients));
    for i in 0..opts.clients {
        match attack {
            Attack::Rooms => readers.push(connect_member(
                addr,
                &format!("member{i}"),
                false,
                Some(&format!("r{i}")),
            )?),
            _ if i < slow_count => {
                slow.push(connect_member(addr, &format!("slow{i}"), true, None)?)
            }
            _ => readers.push(connect_member(addr, &format!("reader{i}"), false, None)?),
        }
    }
    // Members read from now on (slow ones never do).
    let sink = spawn_sink(
        std::mem::take(&mut readers),
        stop.clone(),
        read_bytes.clone(),
    )?;
    // Barrier: the probe has seen every member renamed (and, for rooms,
    // leave #lobby for its own room).
    let mut seen = 0;
    while seen < opts.clients {
        let line = probe.line()?;
        let member = match (attack, recognise(&line)) {
            (Attack::Rooms, Some(ServerLine::Event(Event::Left { nick, room, .. }))) => {
                nick.starts_with("member") && room == "#lobby"
            }
            (Attack::Rooms, _) => false,
            (_, event) => matches!(event, Some(ServerLine::Event(Event::Renamed { .. }))),
        };
        seen += usize::from(member);
    }
    let mut writers = Vec::new();
    match attack {
        Attack::Login => unreachable!("the login attack returned above"),
        Attack::Flood => {
            let flooder = join(addr, "flooder", false, None)?;
            readers.push(flooder.try_clone()?);
            report.what = format!(
                "flood: 1 flooder, {payload}-byte lines, room of {} ({} never reading), {:?}",
                opts.clients + 2,
                slow_count,
                duration
            );
            writers.push(flooder);
        }
        Attack::Rooms => {
            for a in 0..2 {
                let attacker = join(addr, &format!("asker{a}"), false, None)?;
                readers.push(attacker.try_clone()?);
                writers.push(attacker);
            }
            report.what = format!(
                "rooms: 2 clients pipelining :rooms and :users, {} rooms, {:?}",
                opts.clients + 1,
                duration
            );
        }
        Attack::Pm => {
            let attacker = join(addr, "attacker", false, None)?;
            readers.push(attacker.try_clone()?);
            let victim = join(addr, "victim", false, None)?;
            readers.push(victim);
            writers.push(attacker);
            report.what = format!(
                ":pm burst: {payload}-byte private messages at one reading victim, {:?}",
                duration
            );
        }
    }
    // Barrier: the probe has seen everyone arrive in #lobby.
    probe_writer.write_all(b":ping ready\n")?;
    while !is_pong(&probe.line()?, "ready") {}
    report.rss_before_kib = sys::vm_rss_kib(server_pid);
    report.tcp_mem_kib.1 = tcp_mem_kib();
    let sampler = spawn_sampler(server_pid, stop.clone());
    let attack_sink = spawn_sink(readers, stop.clone(), read_bytes.clone())?;
    let filler = "x".repeat(payload);
    let mut writer_threads = Vec::new();
    for (a, stream) in writers.into_iter().enumerate() {
        let filler = filler.clone();
        let line: Box<dyn Fn(u64) -> Vec<u8> + Send> = match attack {
            Attack::Flood => Box::new(move |i| {
                let head = format!("f {i} ");
                let mut l = head.clone().into_bytes();
                l.extend_from_slice(&filler.as_bytes()[..payload.saturating_sub(head.len())]);
                l.push(b'\n');
                l
            }),
            Attack::Rooms => {
                Box::new(move |i| format!(":rooms\n:users\n:ping {a}-{i}\n").into_bytes())
            }
            Attack::Pm => Box::new(move |i| format!(":pm victim {i} {filler}\n").into_bytes()),
            Attack::Login => unreachable!("the login attack returned above"),
        };
        writer_threads.push(spawn_writer(stream, stop.clone(), written.clone(), line));
    }
    log(format!("attacking for {duration:?}"));
    probe_for(
        &mut probe,
        &mut probe_writer,
        duration,
        probe_interval(opts, attack),
        &mut report,
    );
    stop.store(true, Ordering::Relaxed);
    for t in writer_threads {
        let _ = t.join();
    }
    let _ = sink.join();
    let _ = attack_sink.join();
    let (peak_rss, peak_tcp) = sampler.join().unwrap_or((0, 0));
    report.peak_rss_kib = Some(peak_rss).filter(|&v| v > 0);
    report.tcp_mem_kib.0 = peak_tcp;
    report.attack_bytes = written.load(Ordering::Relaxed);
    report.read_bytes = read_bytes.load(Ordering::Relaxed) + probe.bytes;
    drop(slow);
    Ok(report)
}

/// The probe's part of an attack: `:ping` every `interval` after the
/// answer to the last, for `duration`, counting what else it is sent (flood
/// lines, the `(too slow)` departures); fills the report's ping fields.
fn probe_for(
    probe: &mut LineReader,
    probe_writer: &mut TcpStream,
    duration: Duration,
    interval: Duration,
    report: &mut AttackReport,
) {
    let mut rtt = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("histogram");
    let started = Instant::now();
    let _ = probe
        .inner
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(5)));
    let mut seq = 0u64;
    'probe: while started.elapsed() < duration {
        let token = format!("p{seq}");
        seq += 1;
        let sent = Instant::now();
        if probe_writer
            .write_all(format!(":ping {token}\n").as_bytes())
            .is_err()
        {
            report.probe_closed = true;
            break;
        }
        loop {
            match probe.line() {
                Ok(line) if is_pong(&line, &token) => {
                    let _ = rtt.record(sent.elapsed().as_micros() as u64);
                    break;
                }
                Ok(line) => match recognise(&line) {
                    Some(ServerLine::Event(Event::Said { from, text, .. }))
                        if from == "flooder" && text.starts_with("f ") =>
                    {
                        report.probe_flood_lines += 1;
                    }
                    Some(ServerLine::Event(Event::Left {
                        nick,
                        reason: Some("too slow"),
                        ..
                    })) => {
                        let role = nick.trim_end_matches(|c: char| c.is_ascii_digit());
                        *report.cut_off.entry(role.to_string()).or_default() += 1;
                    }
                    _ => {}
                },
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.kind() == io::ErrorKind::TimedOut =>
                {
                    if started.elapsed() >= duration {
                        report.pings_unanswered += 1;
                        break 'probe;
                    }
                }
                Err(_) => {
                    report.probe_closed = true;
                    report.pings_unanswered += 1;
                    break 'probe;
                }
            }
        }
        thread::sleep(interval);
    }
    report.ping_count = rtt.len();
    if !rtt.is_empty() {
        report.ping_us = (
            rtt.value_at_quantile(0.5),
            rtt.value_at_quantile(0.99),
            rtt.max(),
        );
    }
}

/// The pause between the probe's pings: `--probe-interval-ms`, or the
/// attack's default.
fn probe_interval(opts: &Options, attack: Attack) -> Duration {
    match (opts.probe_interval_ms, attack) {
        (Some(ms), _) => Duration::from_millis(ms),
        (None, Attack::Login) => LOGIN_PROBE_INTERVAL,
        (None, _) => PROBE_INTERVAL,
    }
}

/// Whether `line` is the server's `* pong TOKEN`.
fn is_pong(line: &str, token: &str) -> bool {
    matches!(
        recognise(line),
        Some(ServerLine::Reply(Reply::Pong { token: Some(t) })) if t == token
    )
}
