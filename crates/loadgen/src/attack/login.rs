//! The `login` attack (issue 22): a storm of wrong passwords for one
//! account, from many addresses, while a bystander pings.
//!
//! 1. An owner registers a fresh account (`acct` and a few hex digits,
//!    with a password only this run knows) and leaves.
//! 2. `--guessers` clients connect, each from its own loopback address
//!    (127.0.0.2, 127.0.0.3, ...; `--guesser-sources` changes how many):
//!    the server's per-address rules (the `:login` lockout after
//!    `--auth-max-failures`) then see what they would see of a botnet,
//!    not one address that locks itself out at once. The probe (and the
//!    owner, later) use 127.0.0.1, which no guesser shares.
//! 3. Each guesser, on its own thread, sends `:login ACCOUNT wrong-N` and
//!    waits for the `! ...` answer before the next: as fast as it is
//!    answered. Answers are counted by kind: `! login failed` (a hash was
//!    verified, at once or after the name's throttle), `! server busy`
//!    (the hashing queue was full), the address lockout, anything else.
//! 4. Meanwhile the probe pings (every 10 ms by default) for `--duration`.
//! 5. The guessers stop and leave; the owner connects and logs in with
//!    the right password, retrying on `! server busy` (the queue may still
//!    hold guesses): the report says whether it got in, after how long and
//!    how many tries. A throttled name may keep it waiting up to one
//!    `--login-interval-secs`; it is never refused for the guesses.
//!
//! Every wait is bounded: the guessers stop within a read timeout of the
//! end, the owner's login within [`OWNER_LIMIT`].

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::{
    dial, join, probe_for, probe_interval, spawn_sampler, sys, tcp_mem_kib, Attack, AttackReport,
    LineReader, Options, SETUP_TIMEOUT,
};

/// How long the owner's final login may take in all, busy answers and
/// retries included: the name's throttle may hold it one
/// `--login-interval-secs` (60 s by default), the queue of guesses drains
/// in seconds.
pub const OWNER_LIMIT: Duration = Duration::from_secs(180);
/// The owner's pause after `! server busy` before trying again.
const BUSY_RETRY: Duration = Duration::from_millis(200);
/// How often a waiting guesser looks at the stop flag.
const GUESSER_POLL: Duration = Duration::from_millis(200);
/// Most loopback source addresses: 127.0.0.2 to 127.0.255.254.
const MAX_SOURCES: usize = 253 * 256;

/// What the `login` attack's guessers and the account's owner saw.
#[derive(Debug, Default, Clone)]
pub struct LoginReport {
    /// The account guessed at.
    pub account: String,
    /// Guessing clients, and the source addresses they were spread over
    /// (0: the kernel's choice).
    pub guessers: usize,
    /// Source addresses the guessers used.
    pub sources: usize,
    /// Seconds the guessers guessed.
    pub seconds: f64,
    /// `! login failed`: a wrong password verified (hashed).
    pub failed: u64,
    /// `! server busy`: the hashing queue was full.
    pub busy: u64,
    /// `! too many attempts from your address ...`: the per-address
    /// lockout.
    pub locked_out: u64,
    /// Any other answer (the first is in `other_example`).
    pub other: u64,
    /// The first answer of no kind above.
    pub other_example: Option<String>,
    /// Guessers whose connection the server closed.
    pub closed: u64,
    /// Whether the owner got in with the right password at the end.
    pub owner_logged_in: bool,
    /// How long the owner's login took, first try to answer.
    pub owner_wait: Duration,
    /// The owner's tries (1 unless the queue was full).
    pub owner_tries: u32,
    /// The owner's last answer.
    pub owner_answer: String,
}

impl LoginReport {
    /// Every guess answered.
    pub fn answered(&self) -> u64 {
        self.failed + self.busy + self.locked_out + self.other
    }

    /// Lines of the attack report.
    pub fn to_text(&self) -> String {
        let per_sec = |n: u64| n as f64 / self.seconds.max(1e-9);
        let mut out = format!(
            "guesses answered: {} ({:.1}/s) from {} guessers on {} source addresses: \
             {} login failed ({:.1}/s, each a hash verified), {} server busy, \
             {} locked out (address), {} other{}\n",
            self.answered(),
            per_sec(self.answered()),
            self.guessers,
            if self.sources == 0 {
                "the kernel's".to_string()
            } else {
                self.sources.to_string()
            },
            self.failed,
            per_sec(self.failed),
            self.busy,
            self.locked_out,
            self.other,
            self.other_example
                .as_ref()
                .map_or(String::new(), |l| format!(" (first: {l:?})")),
        );
        if self.closed > 0 {
            out += &format!("guessers disconnected by the server: {}\n", self.closed);
        }
        out += &format!(
            "owner's login with the right password afterwards: {} after {:.2} s, {} tries ({:?})\n",
            if self.owner_logged_in {
                "LOGGED IN"
            } else {
                "REFUSED"
            },
            self.owner_wait.as_secs_f64(),
            self.owner_tries,
            self.owner_answer
        );
        out
    }
}

/// Per-kind answer counts, shared by the guessers' threads.
#[derive(Default)]
struct Counts {
    failed: AtomicU64,
    busy: AtomicU64,
    locked_out: AtomicU64,
    other: AtomicU64,
    closed: AtomicU64,
    other_example: std::sync::Mutex<Option<String>>,
}

/// Guesser `i`'s source address among `sources` (127.0.0.2, 127.0.0.3,
/// ..., 127.0.0.254, 127.0.1.2, ...); none for 0 sources.
pub fn source_of(i: usize, sources: usize) -> Option<IpAddr> {
    if sources == 0 {
        return None;
    }
    let k = i % sources.min(MAX_SOURCES);
    Some(IpAddr::V4(Ipv4Addr::new(
        127,
        0,
        (k / 253) as u8,
        (2 + k % 253) as u8,
    )))
}

/// How many source addresses the guessers use against `addr`.
fn sources_for(opts: &Options, addr: SocketAddr, notes: &mut Vec<String>) -> io::Result<usize> {
    let loopback_v4 = addr.is_ipv4() && addr.ip().is_loopback();
    match opts.guesser_sources {
        Some(0) => Ok(0),
        Some(n) if !loopback_v4 => Err(io::Error::other(format!(
            "--guesser-sources {n}: only for an IPv4 loopback --addr (use 0)"
        ))),
        Some(n) if n > MAX_SOURCES => Err(io::Error::other(format!(
            "--guesser-sources {n}: at most {MAX_SOURCES}"
        ))),
        Some(n) => Ok(n),
        None if loopback_v4 => Ok(opts.guessers.min(MAX_SOURCES)),
        None => {
            notes.push(
                "the server is not on IPv4 loopback: every guesser comes from this host's one address"
                    .into(),
            );
            Ok(0)
        }
    }
}

/// A fresh account name and password for this run.
fn fresh_account() -> (String, String) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64 ^ d.as_secs());
    let tag = nanos ^ (u64::from(std::process::id()) << 20);
    (
        format!("acct{:06x}", tag & 0xff_ffff),
        format!("right-{:016x}", tag.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
    )
}

/// Registers `account` with `password` from a client named after it.
fn register(addr: SocketAddr, account: &str, password: &str) -> io::Result<()> {
    let stream = join(addr, account, false, None)?;
    let mut reader = LineReader::new(stream.try_clone()?);
    let mut writer = stream;
    writer.write_all(format!(":register {password}\n").as_bytes())?;
    loop {
        let line = reader.line()?;
        if line.starts_with("* registered") {
            return Ok(());
        }
        if line.starts_with("! ") {
            return Err(io::Error::other(format!(
                "could not register {account}: {line}"
            )));
        }
    }
}

/// A connection from `source` whose welcome was read.
fn connect_guesser(addr: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let stream = dial(addr, false, source)?;
    stream.set_read_timeout(Some(SETUP_TIMEOUT))?;
    let mut reader = LineReader::new(stream.try_clone()?);
    let welcome = reader.line()?;
    if !welcome.starts_with("* welcome") {
        return Err(io::Error::other(format!(
            "guesser from {source:?}: expected a welcome, got {welcome:?}"
        )));
    }
    Ok(stream)
}

/// One guesser's loop: a wrong password, its answer, the next.
fn spawn_guesser(
    i: usize,
    stream: TcpStream,
    account: String,
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
) -> io::Result<thread::JoinHandle<()>> {
    stream.set_read_timeout(Some(GUESSER_POLL))?;
    let mut reader = LineReader::new(stream.try_clone()?);
    let mut writer = stream;
    thread::Builder::new()
        .name(format!("guesser{i}"))
        .stack_size(128 * 1024)
        .spawn(move || {
            let mut n = 0u64;
            'guess: while !stop.load(Ordering::Relaxed) {
                n += 1;
                if writer
                    .write_all(format!(":login {account} wrong-{i}-{n}\n").as_bytes())
                    .is_err()
                {
                    counts.closed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                loop {
                    match reader.line() {
                        Ok(line) if line.starts_with("! ") => {
                            count(&counts, &line);
                            break;
                        }
                        // Guests joining #lobby, and the like.
                        Ok(_) => {}
                        Err(e)
                            if matches!(
                                e.kind(),
                                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                            ) =>
                        {
                            if stop.load(Ordering::Relaxed) {
                                break 'guess;
                            }
                        }
                        Err(_) => {
                            counts.closed.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                }
            }
        })
}

/// Counts one `! ...` answer by kind.
fn count(counts: &Counts, line: &str) {
    let counter = match line {
        "! login failed" => &counts.failed,
        "! server busy" => &counts.busy,
        l if l.starts_with("! too many attempts from your address") => &counts.locked_out,
        _ => {
            let mut example = counts
                .other_example
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            example.get_or_insert_with(|| line.to_string());
            &counts.other
        }
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The owner logs in with the right password, from 127.0.0.1 (the kernel's
/// choice), retrying on `! server busy`; within [`OWNER_LIMIT`].
fn owner_login(
    addr: SocketAddr,
    account: &str,
    password: &str,
    report: &mut LoginReport,
) -> io::Result<()> {
    let stream = connect_guesser(addr, None)?;
    let started = Instant::now();
    stream.set_read_timeout(Some(GUESSER_POLL))?;
    let mut reader = LineReader::new(stream.try_clone()?);
    let mut writer = stream;
    'try_again: while started.elapsed() < OWNER_LIMIT {
        report.owner_tries += 1;
        writer.write_all(format!(":login {account} {password}\n").as_bytes())?;
        while started.elapsed() < OWNER_LIMIT {
            let line = match reader.line() {
                Ok(line) => line,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    continue
                }
                Err(e) => return Err(e),
            };
            if line.starts_with("* logged in as") {
                report.owner_logged_in = true;
                report.owner_answer = line;
                break 'try_again;
            }
            if line == "! server busy" {
                report.owner_answer = line;
                thread::sleep(BUSY_RETRY);
                continue 'try_again;
            }
            if line.starts_with("! ") {
                report.owner_answer = line;
                break 'try_again;
            }
        }
    }
    report.owner_wait = started.elapsed();
    if report.owner_answer.is_empty() {
        report.owner_answer = format!("no answer within {OWNER_LIMIT:?}");
    }
    Ok(())
}

/// Runs the `login` attack against `addr` (see the module docs).
pub(super) fn run(
    opts: &Options,
    addr: SocketAddr,
    server_pid: Option<u32>,
    in_process: bool,
) -> io::Result<AttackReport> {
    let mut report = AttackReport::default();
    let duration = Duration::try_from_secs_f64(opts.duration)
        .map_err(|_| io::Error::other("--duration: seconds >= 0"))?;
    if in_process {
        report.notes.push(
            "in-process server (flood control off): RSS is the whole load generator's; use --addr and --server-pid"
                .into(),
        );
    }
    let log = |msg: String| {
        if !opts.quiet {
            eprintln!("loadgen: {msg}");
        }
    };
    let sources = sources_for(opts, addr, &mut report.notes)?;
    let (account, password) = fresh_account();
    register(addr, &account, &password)?;
    let probe_stream = join(addr, "probe", false, None)?;
    let mut probe = LineReader::new(probe_stream.try_clone()?);
    let mut probe_writer = probe_stream;
    log(format!(
        "connecting {} guessers from {} source addresses",
        opts.guessers, sources
    ));
    let mut guessers = Vec::with_capacity(opts.guessers);
    for i in 0..opts.guessers {
        guessers.push(connect_guesser(addr, source_of(i, sources))?);
    }
    report.rss_before_kib = sys::vm_rss_kib(server_pid);
    report.tcp_mem_kib.1 = tcp_mem_kib();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = spawn_sampler(server_pid, stop.clone());
    let counts = Arc::new(Counts::default());
    let started = Instant::now();
    let mut threads = Vec::with_capacity(guessers.len());
    for (i, stream) in guessers.into_iter().enumerate() {
        match spawn_guesser(i, stream, account.clone(), stop.clone(), counts.clone()) {
            Ok(thread) => threads.push(thread),
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                for thread in threads {
                    let _ = thread.join();
                }
                return Err(e);
            }
        }
    }
    log(format!("guessing for {duration:?}"));
    probe_for(
        &mut probe,
        &mut probe_writer,
        duration,
        probe_interval(opts, Attack::Login),
        &mut report,
    );
    stop.store(true, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    for thread in threads {
        let _ = thread.join();
    }
    let (peak_rss, peak_tcp) = sampler.join().unwrap_or((0, 0));
    report.peak_rss_kib = Some(peak_rss).filter(|&v| v > 0);
    report.tcp_mem_kib.0 = peak_tcp;
    report.read_bytes = probe.bytes;
    let mut login = LoginReport {
        account: account.clone(),
        guessers: opts.guessers,
        sources,
        seconds,
        failed: counts.failed.load(Ordering::Relaxed),
        busy: counts.busy.load(Ordering::Relaxed),
        locked_out: counts.locked_out.load(Ordering::Relaxed),
        other: counts.other.load(Ordering::Relaxed),
        other_example: counts
            .other_example
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone(),
        closed: counts.closed.load(Ordering::Relaxed),
        ..LoginReport::default()
    };
    report.what = format!(
        "login: {} guessers sending wrong passwords for {account}, {:?}",
        opts.guessers, duration
    );
    log(format!("the owner logs in to {account}"));
    owner_login(addr, &account, &password, &mut login)?;
    report.login = Some(login);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_start_at_127_0_0_2_and_skip_0_and_255() {
        assert_eq!(source_of(0, 0), None);
        assert_eq!(source_of(0, 200), Some([127, 0, 0, 2].into()));
        assert_eq!(source_of(252, 300), Some([127, 0, 0, 254].into()));
        assert_eq!(source_of(253, 300), Some([127, 0, 1, 2].into()));
        // Fewer sources than guessers: they share, round robin.
        assert_eq!(source_of(5, 3), Some([127, 0, 0, 4].into()));
    }
}
