//! What an operator can watch: counters, gauges and histograms owned by the
//! event loop, rendered in the Prometheus text exposition format (version
//! 0.0.4) only when someone scrapes `/metrics`.
//!
//! Counting costs the hot path one integer addition: every counter is a
//! plain `u64` field of [`Metrics`], which only the loop's thread touches, so
//! there are no atomics, locks or registries. Gauges that describe state
//! (connections open, output queued) are not kept up to date at all: the loop
//! measures them when a scrape asks and hands them to [`render`] as a
//! [`Snapshot`]. The process metrics (`process_*`) are read from `/proc/self`
//! at the same moment.

pub use crate::end_reason::{EndReason, Refusal};
use std::cell::Cell;
use std::fmt::{Display, Write as _};
use std::time::{Duration, Instant};

/// How long a count of open descriptors is reused. Listing `/proc/self/fd`
/// costs the kernel about a microsecond per descriptor (some 10-20 ms at
/// 10,000 clients on a busy machine), so a scraper polling in a loop must
/// not make the loop pay that on every request.
pub const OPEN_FDS_REFRESH: Duration = Duration::from_secs(5);

/// How a client reaches the server: the `transport` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// The line protocol over plain TCP.
    Tcp,
    /// The line protocol over TLS.
    Tls,
    /// WebSocket from the web address, `ws://` or `wss://`.
    WebSocket,
}

impl Transport {
    /// Every transport, in the order their series are rendered.
    pub const ALL: [Transport; 3] = [Transport::Tcp, Transport::Tls, Transport::WebSocket];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::WebSocket => "websocket",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Where a connection stands, for counting: each is counted once, as
/// accepted or as refused, and only accepted ones count as disconnects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Not yet a client: a TLS or HTTP handshake, or a page request.
    Pending,
    /// Counted as accepted over this transport: in the chat or asked for
    /// the password.
    Admitted(Transport),
    /// Counted as refused: taking its `! server full` or the like.
    Refused,
}

/// Which limit cut a client off as too slow: the `limit` label of
/// `loopchat_too_slow_cutoffs_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlowLimit {
    /// Its own queue passed `--max-outbuf-bytes`.
    Queue,
    /// Its queue stayed above `--soft-outbuf-bytes` for `--soft-outbuf-secs`.
    Soft,
    /// All queues together passed `--max-output-total-bytes` and it held
    /// the most.
    Global,
}

impl SlowLimit {
    /// Every limit, in the order their series are rendered.
    pub const ALL: [SlowLimit; 3] = [SlowLimit::Queue, SlowLimit::Soft, SlowLimit::Global];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            SlowLimit::Queue => "queue",
            SlowLimit::Soft => "soft",
            SlowLimit::Global => "global",
        }
    }
}

/// Upper bounds of the loop turn histogram, in nanoseconds: 50 µs to 1 s.
const TURN_BOUNDS_NANOS: [u64; 14] = [
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
];

/// Upper bounds of the fan-out histogram, in recipients.
const FANOUT_BOUNDS: [u64; 14] = [
    0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000,
];

/// A histogram over integer observations with fixed bucket bounds.
#[derive(Debug, Clone)]
pub struct Histogram {
    /// Inclusive upper bounds, ascending.
    bounds: &'static [u64],
    /// Observations per bucket, not cumulative; the last is `+Inf`.
    buckets: Vec<u64>,
    sum: u64,
    count: u64,
}

impl Histogram {
    /// An empty histogram with these inclusive upper bounds (ascending).
    pub fn new(bounds: &'static [u64]) -> Self {
        Histogram {
            bounds,
            buckets: vec![0; bounds.len() + 1],
            sum: 0,
            count: 0,
        }
    }

    /// Records one observation.
    pub fn observe(&mut self, value: u64) {
        let bucket = self.bounds.partition_point(|&bound| bound < value);
        self.buckets[bucket] += 1;
        self.sum = self.sum.saturating_add(value);
        self.count += 1;
    }

    /// Observations recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The sum of every observation.
    pub fn sum(&self) -> u64 {
        self.sum
    }
}

/// Every counter and histogram the loop keeps. Fields are public so a hook
/// is one `+= 1` where the event happens.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Connections admitted (welcomed or asked for the password), per
    /// [`Transport`].
    pub accepted: [u64; Transport::ALL.len()],
    /// Connections turned away, per [`Refusal`].
    pub refused: [u64; Refusal::ALL.len()],
    /// Admitted connections that ended, per reason (seeded with
    /// [`EndReason::DISCONNECTS`]).
    disconnects: Vec<(EndReason, u64)>,
    /// Connections that ended before joining the chat, per reason (seeded
    /// with [`EndReason::NOT_JOINED`]).
    not_joined: Vec<(EndReason, u64)>,
    /// Wrong passwords.
    pub auth_failures: u64,
    /// Addresses locked out of `:auth` after too many wrong passwords.
    pub auth_lockouts: u64,
    /// Accounts: logins, failures, throttling, registrations, tokens.
    pub accounts: AccountCounters,
    /// Complete non-empty lines received (commands included; an over-long
    /// line counts once).
    pub lines_received: u64,
    /// Chat and `:me` lines sent to a room.
    pub room_lines: u64,
    /// Private messages delivered.
    pub private_messages: u64,
    /// Lines queued for a client: every recipient of a fan-out counts once.
    pub lines_sent: u64,
    /// Bytes read from client sockets.
    pub bytes_received: u64,
    /// Bytes written to client sockets.
    pub bytes_sent: u64,
    /// Queued output thrown away because its client was cut off or failed.
    pub bytes_discarded: u64,
    /// Clients cut off as too slow, per [`SlowLimit`].
    pub too_slow: [u64; SlowLimit::ALL.len()],
    /// Times flood control held a client's input back until later.
    pub flood_throttles: u64,
    /// Loop turn durations, in nanoseconds.
    pub turn: Histogram,
    /// Recipients per chat or `:me` line.
    pub fanout: Histogram,
    /// The last count of open descriptors and when it was taken.
    open_fds: Cell<Option<(Instant, usize)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            accepted: [0; Transport::ALL.len()],
            refused: [0; Refusal::ALL.len()],
            disconnects: EndReason::DISCONNECTS.iter().map(|&r| (r, 0)).collect(),
            not_joined: EndReason::NOT_JOINED.iter().map(|&r| (r, 0)).collect(),
            auth_failures: 0,
            auth_lockouts: 0,
            accounts: AccountCounters::default(),
            lines_received: 0,
            room_lines: 0,
            private_messages: 0,
            lines_sent: 0,
            bytes_received: 0,
            bytes_sent: 0,
            bytes_discarded: 0,
            too_slow: [0; SlowLimit::ALL.len()],
            flood_throttles: 0,
            turn: Histogram::new(&TURN_BOUNDS_NANOS),
            fanout: Histogram::new(&FANOUT_BOUNDS),
            open_fds: Cell::new(None),
        }
    }
}

impl Metrics {
    /// Counts one admitted connection.
    pub fn accepted(&mut self, transport: Transport) {
        self.accepted[transport.index()] += 1;
    }

    /// Counts one refused connection.
    pub fn refused(&mut self, why: Refusal) {
        self.refused[why.index()] += 1;
    }

    /// Counts one client cut off as too slow by `limit`.
    pub fn cut_off(&mut self, limit: SlowLimit) {
        self.too_slow[limit as usize] += 1;
    }

    /// Counts one ended connection under its logged reason. Runs once per
    /// disconnect, off the chat path; the list is a dozen entries long.
    pub fn disconnected(&mut self, reason: EndReason) {
        count_reason(&mut self.disconnects, reason);
    }

    /// Counts one connection that ended before it joined the chat (during
    /// its TLS handshake or HTTP request, or after a page was served).
    pub fn ended_before_joining(&mut self, reason: EndReason) {
        count_reason(&mut self.not_joined, reason);
    }
}

fn count_reason(counts: &mut Vec<(EndReason, u64)>, reason: EndReason) {
    match counts.iter_mut().find(|(r, _)| *r == reason) {
        Some((_, count)) => *count += 1,
        None => counts.push((reason, 1)),
    }
}

/// What the accounts did, counted as it happens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountCounters {
    /// Logins with a password (`:login`; `:register` counts as a
    /// registration instead).
    pub password_logins: u64,
    /// Logins with a token (`:resume`).
    pub token_logins: u64,
    /// `:login` (and `:passwd`) with a wrong name or password.
    pub password_failures: u64,
    /// `:resume` with a wrong or expired token.
    pub token_failures: u64,
    /// Logins the throttle held back before checking them.
    pub throttled: u64,
    /// Accounts registered.
    pub registrations: u64,
    /// Registrations refused by the per-address or server-wide limit.
    pub registrations_refused: u64,
    /// Tokens issued.
    pub tokens_issued: u64,
    /// Jobs refused because the hashing queue was full (`! server busy`).
    pub busy: u64,
    /// Hashing jobs done, and the seconds they took (for the average).
    pub hash_jobs: u64,
    /// Total hashing time of those jobs, in microseconds.
    pub hash_micros: u64,
}

/// The accounts as a scrape finds them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountsSnapshot {
    /// Registered accounts.
    pub accounts: u64,
    /// Live tokens.
    pub tokens: u64,
    /// Clients logged in.
    pub logged_in: u64,
    /// Hashing jobs queued or running.
    pub queue_depth: u64,
    /// `--accounts-queue`.
    pub queue_limit: u64,
    /// Logins held back by the throttle.
    pub delayed_logins: u64,
}

/// State measured when a scrape asks, rather than kept up to date.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Admitted connections the server still holds, per [`Transport`].
    pub open: [u64; Transport::ALL.len()],
    /// Connections in the chat or waiting for the password: what
    /// `--max-clients` counts.
    pub clients: u64,
    /// `--max-clients`.
    pub clients_limit: u64,
    /// Output bytes queued for all clients together.
    pub output_queued_bytes: u64,
    /// The largest single client's queue, in bytes.
    pub output_queued_max_bytes: u64,
    /// `--max-outbuf-bytes`: the queue past which one client is cut off.
    pub output_queue_limit_bytes: u64,
    /// Memory held by all clients' output buffers: what the global bound
    /// counts.
    pub output_buffer_bytes: u64,
    /// `--max-output-total-bytes` (0: no bound).
    pub output_buffer_limit_bytes: u64,
    /// Rooms that exist, `#lobby` included.
    pub rooms: u64,
    /// The history writer, when a history file is in use.
    pub history: Option<HistorySnapshot>,
    /// The accounts.
    pub accounts: AccountsSnapshot,
    /// The cluster's Redis, with `--cluster`.
    pub cluster: Option<ClusterSnapshot>,
}

/// The cluster's Redis as the loop sees it.
#[derive(Debug, Clone, Default)]
pub struct ClusterSnapshot {
    /// Both connections ready.
    pub up: bool,
    /// Lines sent and not yet answered.
    pub in_flight: u64,
    /// The engine's counters.
    pub stats: crate::cluster::ClusterStats,
}

/// The history writer as the loop sees it.
#[derive(Debug, Clone, Copy, Default)]
pub struct HistorySnapshot {
    /// What the writer acknowledged.
    pub stats: crate::chat::history::WriterStats,
    /// Chat lines accepted and not yet acknowledged.
    pub waiting_lines: u64,
    /// Whether the writer thread still runs.
    pub writer_up: bool,
}

impl Snapshot {
    /// Counts one open connection.
    pub fn count_open(&mut self, transport: Transport) {
        self.open[transport.index()] += 1;
    }
}

/// The accounts' families.
fn render_accounts(text: &mut Text, counters: &AccountCounters, now: &AccountsSnapshot) {
    text.family(
        "loopchat_logins_total",
        "counter",
        "Logins to an account, per method: password (:login) or token (:resume).",
    );
    text.sample(
        "loopchat_logins_total",
        &[("method", "password")],
        counters.password_logins,
    );
    text.sample(
        "loopchat_logins_total",
        &[("method", "token")],
        counters.token_logins,
    );
    text.family(
        "loopchat_login_failures_total",
        "counter",
        "Failed logins (! login failed), per method: password (:login, :passwd) or token (:resume).",
    );
    text.sample(
        "loopchat_login_failures_total",
        &[("method", "password")],
        counters.password_failures,
    );
    text.sample(
        "loopchat_login_failures_total",
        &[("method", "token")],
        counters.token_failures,
    );
    let singles = [
        (
            "loopchat_logins_throttled_total",
            "counter",
            "Logins the per-name throttle held back before checking them (slowed, never refused).",
            counters.throttled,
        ),
        (
            "loopchat_registrations_total",
            "counter",
            "Accounts registered.",
            counters.registrations,
        ),
        (
            "loopchat_registrations_refused_total",
            "counter",
            "Registrations refused by --registrations-per-address or --registrations-per-hour.",
            counters.registrations_refused,
        ),
        (
            "loopchat_tokens_issued_total",
            "counter",
            "Login tokens issued (:token).",
            counters.tokens_issued,
        ),
        (
            "loopchat_accounts_busy_total",
            "counter",
            "Account commands answered ! server busy: the hashing queue was full.",
            counters.busy,
        ),
        (
            "loopchat_password_hashes_total",
            "counter",
            "Password hashes computed or verified by the hashing worker.",
            counters.hash_jobs,
        ),
        (
            "loopchat_accounts",
            "gauge",
            "Registered accounts.",
            now.accounts,
        ),
        ("loopchat_tokens", "gauge", "Live login tokens.", now.tokens),
        (
            "loopchat_logged_in",
            "gauge",
            "Clients logged in to an account.",
            now.logged_in,
        ),
        (
            "loopchat_password_queue_depth",
            "gauge",
            "Hashing jobs queued or running on the hashing worker.",
            now.queue_depth,
        ),
        (
            "loopchat_password_queue_limit",
            "gauge",
            "--accounts-queue: hashing jobs that may wait.",
            now.queue_limit,
        ),
        (
            "loopchat_logins_delayed",
            "gauge",
            "Logins the throttle holds back right now.",
            now.delayed_logins,
        ),
    ];
    for (name, kind, help, value) in singles {
        text.single(name, kind, help, value);
    }
    text.single(
        "loopchat_password_hash_seconds_total",
        "counter",
        "Time the hashing worker spent on them.",
        counters.hash_micros as f64 / 1e6,
    );
}

/// Renders every metric in the Prometheus text format.
pub fn render(metrics: &Metrics, snapshot: &Snapshot) -> String {
    let mut text = Text::default();

    text.family(
        "loopchat_connections_open",
        "gauge",
        "Admitted client connections the server holds, per transport \
         (in the chat, or taking their last line).",
    );
    for transport in Transport::ALL {
        text.sample(
            "loopchat_connections_open",
            &[("transport", transport.label())],
            snapshot.open[transport.index()],
        );
    }
    text.single(
        "loopchat_clients",
        "gauge",
        "Connections in the chat or waiting for the password: what --max-clients counts.",
        snapshot.clients,
    );
    text.single(
        "loopchat_clients_limit",
        "gauge",
        "--max-clients: open connections allowed at once.",
        snapshot.clients_limit,
    );
    text.family(
        "loopchat_connections_accepted_total",
        "counter",
        "Client connections admitted (welcomed or asked for the password), per transport.",
    );
    for transport in Transport::ALL {
        text.sample(
            "loopchat_connections_accepted_total",
            &[("transport", transport.label())],
            metrics.accepted[transport.index()],
        );
    }
    text.family(
        "loopchat_connections_refused_total",
        "counter",
        "Client connections turned away before joining, per reason.",
    );
    for why in Refusal::ALL {
        text.sample(
            "loopchat_connections_refused_total",
            &[("reason", why.label())],
            metrics.refused[why.index()],
        );
    }
    text.family(
        "loopchat_disconnects_total",
        "counter",
        "Admitted client connections that ended, per reason.",
    );
    for &(reason, count) in &metrics.disconnects {
        let label = reason.label();
        text.sample("loopchat_disconnects_total", &[("reason", &label)], count);
    }
    text.family(
        "loopchat_connections_not_joined_total",
        "counter",
        "Connections that ended before joining the chat (TLS handshakes, HTTP requests, pages served), per reason.",
    );
    for &(reason, count) in &metrics.not_joined {
        let label = reason.label();
        text.sample(
            "loopchat_connections_not_joined_total",
            &[("reason", &label)],
            count,
        );
    }
    text.single(
        "loopchat_auth_failures_total",
        "counter",
        "Wrong passwords given to :auth.",
        metrics.auth_failures,
    );
    text.single(
        "loopchat_auth_lockouts_total",
        "counter",
        "Addresses locked out of :auth after too many wrong passwords.",
        metrics.auth_lockouts,
    );
    render_accounts(&mut text, &metrics.accounts, &snapshot.accounts);
    text.single(
        "loopchat_rooms",
        "gauge",
        "Rooms that exist, #lobby included.",
        snapshot.rooms,
    );

    text.single(
        "loopchat_lines_received_total",
        "counter",
        "Complete non-empty lines received from clients, commands included.",
        metrics.lines_received,
    );
    text.single(
        "loopchat_room_lines_total",
        "counter",
        "Chat and :me lines sent to a room.",
        metrics.room_lines,
    );
    text.single(
        "loopchat_private_messages_total",
        "counter",
        "Private messages delivered.",
        metrics.private_messages,
    );
    text.single(
        "loopchat_lines_sent_total",
        "counter",
        "Lines queued for clients (deliveries): each recipient of a fan-out counts once.",
        metrics.lines_sent,
    );
    text.single(
        "loopchat_received_bytes_total",
        "counter",
        "Bytes read from client sockets.",
        metrics.bytes_received,
    );
    text.single(
        "loopchat_sent_bytes_total",
        "counter",
        "Bytes written to client sockets.",
        metrics.bytes_sent,
    );
    text.single(
        "loopchat_discarded_bytes_total",
        "counter",
        "Queued output thrown away because its client was cut off or failed.",
        metrics.bytes_discarded,
    );

    text.single(
        "loopchat_output_queued_bytes",
        "gauge",
        "Output bytes queued in the server for all clients together.",
        snapshot.output_queued_bytes,
    );
    text.single(
        "loopchat_output_queued_max_bytes",
        "gauge",
        "Output bytes queued for the client holding the most.",
        snapshot.output_queued_max_bytes,
    );
    text.single(
        "loopchat_output_queue_limit_bytes",
        "gauge",
        "--max-outbuf-bytes: output queued for one client past which it is cut off as too slow.",
        snapshot.output_queue_limit_bytes,
    );
    text.single(
        "loopchat_output_buffer_bytes",
        "gauge",
        "Memory held by all clients' output buffers: what --max-output-total-bytes bounds.",
        snapshot.output_buffer_bytes,
    );
    text.single(
        "loopchat_output_buffer_limit_bytes",
        "gauge",
        "--max-output-total-bytes: output memory of all clients together past which the \
         biggest queues are cut off (0: no bound).",
        snapshot.output_buffer_limit_bytes,
    );
    text.family(
        "loopchat_too_slow_cutoffs_total",
        "counter",
        "Clients cut off as too slow, per limit: queue (--max-outbuf-bytes), soft \
         (--soft-outbuf-bytes for --soft-outbuf-secs), global (--max-output-total-bytes).",
    );
    for limit in SlowLimit::ALL {
        text.sample(
            "loopchat_too_slow_cutoffs_total",
            &[("limit", limit.label())],
            metrics.too_slow[limit as usize],
        );
    }
    text.single(
        "loopchat_flood_throttles_total",
        "counter",
        "Times flood control held a client's input back (its socket then waits, TCP pushes back).",
        metrics.flood_throttles,
    );

    if let Some(history) = &snapshot.history {
        text.single(
            "loopchat_history_rows_written_total",
            "counter",
            "Chat lines committed to the history file.",
            history.stats.rows_written,
        );
        text.single(
            "loopchat_history_batches_written_total",
            "counter",
            "Batches of chat lines (one per loop turn that accepted any) committed to the history file.",
            history.stats.batches_written,
        );
        text.single(
            "loopchat_history_write_errors_total",
            "counter",
            "Batches the history writer could not write.",
            history.stats.batches_failed,
        );
        text.single(
            "loopchat_history_rows_failed_total",
            "counter",
            "Chat lines in batches that could not be written (kept in memory only).",
            history.stats.rows_failed,
        );
        text.single(
            "loopchat_history_writer_promotions_total",
            "counter",
            "Times the idle-priority history writer fell behind and a normal-priority one took over.",
            history.stats.promotions,
        );
        text.single(
            "loopchat_history_lag_lines",
            "gauge",
            "Chat lines accepted and not yet committed by the history writer.",
            history.waiting_lines,
        );
        text.single(
            "loopchat_history_writer_up",
            "gauge",
            "1 while the history writer thread runs, 0 once it has stopped.",
            u8::from(history.writer_up),
        );
    }

    if let Some(cluster) = &snapshot.cluster {
        render_cluster(&mut text, cluster);
    }

    text.histogram(
        "loopchat_loop_turn_duration_seconds",
        "Time the event loop spent on one turn, from waking up to waiting again.",
        &metrics.turn,
        1e9,
    );
    text.histogram(
        "loopchat_fanout_recipients",
        "Recipients of each chat or :me line.",
        &metrics.fanout,
        1.0,
    );

    process::render(&mut text, &metrics.open_fds);
    text.out
}

fn render_cluster(text: &mut Text, cluster: &ClusterSnapshot) {
    let stats = &cluster.stats;
    text.single(
        "loopchat_cluster_up",
        "gauge",
        "1 while both connections to the cluster's Redis are ready, else 0 (! cluster unavailable).",
        u8::from(cluster.up),
    );
    text.single(
        "loopchat_cluster_lag_lines",
        "gauge",
        "Chat lines sent to the cluster's Redis and not yet answered.",
        cluster.in_flight,
    );
    let counters: [(&str, &str, u64); 8] = [
        ("loopchat_cluster_disconnects_total", "Connections to the cluster's Redis lost.", stats.disconnects),
        ("loopchat_cluster_batches_total", "Calls numbering, storing and publishing a room's lines (one per room per loop turn).", stats.batches_sent),
        ("loopchat_cluster_lines_accepted_total", "Chat lines of this server numbered by the cluster's Redis.", stats.lines_accepted),
        ("loopchat_cluster_lines_delivered_total", "Room lines of every server delivered here in id order.", stats.lines_delivered),
        ("loopchat_cluster_gaps_total", "Gaps seen on the subscription (filled from the room's stream, or lost).", stats.gaps),
        ("loopchat_cluster_lines_lost_total", "Room lines gone from the stream before this server could deliver them (their members here were disconnected).", stats.lines_lost),
        ("loopchat_cluster_fills_total", "Reads of a room's stream to fill a gap or catch up after a reconnect.", stats.fills),
        ("loopchat_cluster_restarts_total", "Times the cluster's Redis came back without its data.", stats.restarts),
    ];
    for (name, help, value) in counters {
        text.single(name, "counter", help, value);
    }
}

/// The exposition text being written.
#[derive(Default)]
struct Text {
    out: String,
}

impl Text {
    /// `# HELP` and `# TYPE` lines.
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        // Writing to a String cannot fail.
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// A metric with one unlabelled sample.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: impl Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{label}=\"{}\"", escape_label(value));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    /// A histogram whose integer observations are divided by `scale` to
    /// give the metric's unit (nanoseconds to seconds: 1e9).
    fn histogram(&mut self, name: &str, help: &str, histogram: &Histogram, scale: f64) {
        self.family(name, "histogram", help);
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0;
        for (i, &bound) in histogram.bounds.iter().enumerate() {
            cumulative += histogram.buckets[i];
            let le = (bound as f64 / scale).to_string();
            self.sample(&bucket, &[("le", &le)], cumulative);
        }
        self.sample(&bucket, &[("le", "+Inf")], histogram.count);
        self.sample(&format!("{name}_sum"), &[], histogram.sum as f64 / scale);
        self.sample(&format!("{name}_count"), &[], histogram.count);
    }
}

fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The conventional `process_*` metrics, as Prometheus's own client
/// libraries export them, read from `/proc/self` (Linux only; elsewhere
/// they are left out).
mod process {
    use super::Text;
    use std::cell::Cell;
    use std::time::Instant;

    #[cfg(target_os = "linux")]
    pub(super) fn render(text: &mut Text, open_fds: &Cell<Option<(Instant, usize)>>) {
        let Some(stat) = Stat::read() else {
            return;
        };
        // SAFETY: sysconf only reads system constants.
        let (ticks, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        if ticks > 0 {
            let ticks = ticks as f64;
            text.single(
                "process_cpu_seconds_total",
                "counter",
                "Total user and system CPU time spent in seconds.",
                (stat.utime + stat.stime) as f64 / ticks,
            );
            if let Some(boot) = boot_time() {
                text.single(
                    "process_start_time_seconds",
                    "gauge",
                    "Start time of the process since unix epoch in seconds.",
                    boot as f64 + stat.start_ticks as f64 / ticks,
                );
            }
        }
        if page > 0 {
            text.single(
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes.",
                stat.rss_pages.saturating_mul(page as u64),
            );
        }
        text.single(
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            stat.vsize,
        );
        let now = Instant::now();
        let fresh = open_fds
            .get()
            .filter(|&(at, _)| now.duration_since(at) < super::OPEN_FDS_REFRESH);
        let counted = fresh.map(|(_, open)| open).or_else(|| {
            let dir = std::fs::read_dir("/proc/self/fd").ok()?;
            // The listing's own descriptor is in it; it is not the server's.
            let open = dir.count().saturating_sub(1);
            open_fds.set(Some((now, open)));
            Some(open)
        });
        if let Some(open) = counted {
            text.single(
                "process_open_fds",
                "gauge",
                "Number of open file descriptors.",
                open,
            );
        }
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes only into the struct we pass.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
            text.single(
                "process_max_fds",
                "gauge",
                "Maximum number of open file descriptors.",
                limit.rlim_cur,
            );
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn render(_text: &mut Text, _open_fds: &Cell<Option<(Instant, usize)>>) {}

    /// The fields of `/proc/self/stat` we export.
    #[cfg(target_os = "linux")]
    struct Stat {
        utime: u64,
        stime: u64,
        start_ticks: u64,
        vsize: u64,
        rss_pages: u64,
    }

    #[cfg(target_os = "linux")]
    impl Stat {
        fn read() -> Option<Stat> {
            let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
            // The command name may hold spaces and parentheses: the fields
            // start after the last `)`, with field 3 (state) first.
            let rest = stat.get(stat.rfind(')')? + 1..)?;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
            Some(Stat {
                utime: field(14)?,
                stime: field(15)?,
                start_ticks: field(22)?,
                vsize: field(23)?,
                rss_pages: field(24)?,
            })
        }
    }

    /// Boot time in seconds since the epoch, from `/proc/stat`.
    #[cfg(target_os = "linux")]
    fn boot_time() -> Option<u64> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        stat.lines()
            .find_map(|line| line.strip_prefix("btime "))
            .and_then(|value| value.trim().parse().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_inclusive_and_cumulative() {
        let mut metrics = Metrics::default();
        for recipients in [0, 1, 1, 3, 10, 20_000] {
            metrics.fanout.observe(recipients);
        }
        let text = render(&metrics, &Snapshot::default());
        for expected in [
            "loopchat_fanout_recipients_bucket{le=\"0\"} 1\n",
            "loopchat_fanout_recipients_bucket{le=\"1\"} 3\n",
            "loopchat_fanout_recipients_bucket{le=\"2\"} 3\n",
            "loopchat_fanout_recipients_bucket{le=\"5\"} 4\n",
            "loopchat_fanout_recipients_bucket{le=\"10\"} 5\n",
            "loopchat_fanout_recipients_bucket{le=\"10000\"} 5\n",
            "loopchat_fanout_recipients_bucket{le=\"+Inf\"} 6\n",
            "loopchat_fanout_recipients_sum 20015\n",
            "loopchat_fanout_recipients_count 6\n",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }

    #[test]
    fn turn_durations_render_in_seconds() {
        let mut metrics = Metrics::default();
        metrics.turn.observe(75_000);
        metrics.turn.observe(2_000_000_000);
        let text = render(&metrics, &Snapshot::default());
        assert!(text.contains("loopchat_loop_turn_duration_seconds_bucket{le=\"0.00005\"} 0\n"));
        assert!(text.contains("loopchat_loop_turn_duration_seconds_bucket{le=\"0.0001\"} 1\n"));
        assert!(text.contains("loopchat_loop_turn_duration_seconds_bucket{le=\"1\"} 1\n"));
        assert!(text.contains("loopchat_loop_turn_duration_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("loopchat_loop_turn_duration_seconds_sum 2.000075\n"));
    }

    #[test]
    fn disconnect_reasons_are_seeded_and_new_ones_appear() {
        let mut metrics = Metrics::default();
        metrics.disconnected(EndReason::TooSlow);
        metrics.disconnected(EndReason::TooSlow);
        metrics.disconnected(EndReason::WebSocket {
            code: 1003,
            why: crate::end_reason::WsViolation::BinaryMessage,
        });
        metrics.ended_before_joining(EndReason::TlsError);
        let text = render(&metrics, &Snapshot::default());
        assert!(text.contains("loopchat_disconnects_total{reason=\"too_slow\"} 2\n"));
        assert!(text.contains("loopchat_disconnects_total{reason=\"quit\"} 0\n"));
        assert!(text.contains("loopchat_disconnects_total{reason=\"binary_message\"} 1\n"));
        assert!(text.contains("loopchat_connections_not_joined_total{reason=\"tls_error\"} 1\n"));
        assert!(text
            .contains("loopchat_connections_not_joined_total{reason=\"http_response_sent\"} 0\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
