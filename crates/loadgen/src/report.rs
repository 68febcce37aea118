//! The outcome of one load-generator run and its three renderings: the
//! human summary, one JSON object (`--json`), and a markdown table row for
//! `cargo bench`.
//!
//! [`Report::failures`] is the single place that decides whether a run
//! failed, so the binary's exit status, the bench and the tests agree.

use std::fmt::Write as _;

use super::Mode;

/// Latency percentiles in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Latency {
    /// Samples the percentiles are drawn from.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest sample.
    pub max: u64,
    /// Arithmetic mean.
    pub mean: f64,
}

impl Latency {
    /// Percentiles of a histogram of microsecond samples.
    pub fn of(h: &hdrhistogram::Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            count: h.len(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: h.mean(),
        }
    }
}

/// CPU time over the measured window.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cpu {
    /// Wall-clock length of the window, seconds.
    pub wall_s: f64,
    /// The load generator's driving thread (`RUSAGE_THREAD`), seconds.
    pub loadgen_s: f64,
    /// The server: its thread when in-process, its process with
    /// `--server-pid`; `None` when unknown.
    pub server_s: Option<f64>,
    /// The whole machine, every process, in CPU seconds; `None` when
    /// `/proc/stat` is unreadable. Minus the two above: what other
    /// processes took.
    pub machine_s: Option<f64>,
    /// Cores on the machine (the most `machine_s` can be per second).
    pub cores: usize,
}

impl Cpu {
    /// Load generator CPU as percent of one core.
    pub fn loadgen_pct(&self) -> f64 {
        pct(self.loadgen_s, self.wall_s)
    }
    /// Server CPU as percent of one core, when known.
    pub fn server_pct(&self) -> Option<f64> {
        self.server_s.map(|s| pct(s, self.wall_s))
    }
    /// CPU seconds other processes used (the machine less the load
    /// generator and the server): a busy neighbour makes every figure worse.
    pub fn others_s(&self) -> Option<f64> {
        self.machine_s
            .map(|m| (m - self.loadgen_s - self.server_s.unwrap_or(0.0)).max(0.0))
    }
    /// [`Cpu::others_s`] as percent of one core.
    pub fn others_pct(&self) -> Option<f64> {
        self.others_s().map(|s| pct(s, self.wall_s))
    }
}

fn pct(cpu: f64, wall: f64) -> f64 {
    if wall > 0.0 {
        cpu * 100.0 / wall
    } else {
        0.0
    }
}

/// Server resident memory around connecting the clients (`--idle`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Memory {
    /// VmRSS before the first client connected, KiB.
    pub before_kib: u64,
    /// VmRSS with every client connected and idle, KiB.
    pub after_kib: u64,
    /// Whether the figures are of this process (in-process server plus the
    /// load generator's own small per-client state) rather than the server's
    /// own process.
    pub includes_loadgen: bool,
}

impl Memory {
    /// Growth per connected client, bytes.
    pub fn per_client_bytes(&self, clients: usize) -> f64 {
        if clients == 0 {
            return 0.0;
        }
        (self.after_kib as f64 - self.before_kib as f64) * 1024.0 / clients as f64
    }
}

/// Everything one run measured. Counts named `*_window` cover the measured
/// window only; the rest cover the whole run.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// What was loaded, e.g. `in-process server 127.0.0.1:41234`.
    pub target: String,
    /// How the senders sent.
    pub mode: Option<Mode>,
    /// Clients asked for.
    pub clients: usize,
    /// Senders asked for.
    pub senders: usize,
    /// Chat text bytes per message.
    pub payload: usize,
    /// Warmup seconds asked for.
    pub warmup_s: f64,
    /// Measured seconds (the hold time with `--idle`).
    pub duration_s: f64,

    /// Clients welcomed and in the room when the run started.
    pub connected: usize,
    /// Clients that never got there (refused, timed out, cut off early).
    pub connect_failed: usize,
    /// From the first connect until every client was ready, seconds.
    pub setup_s: f64,
    /// Barrier (probe reaching every client), seconds.
    pub barrier_s: f64,
    /// Whether the barrier probe reached every client.
    pub barrier_ok: bool,
    /// Connect start to welcome, per client, microseconds.
    pub connect_us: Latency,
    /// Welcome, join and leave lines received while setting up.
    pub setup_lines: u64,

    /// Messages whose send time fell in the window.
    pub sent_window: u64,
    /// Messages sent over the whole run (warmup and window).
    pub sent_total: u64,
    /// First deliveries received during the window.
    pub delivered_window: u64,
    /// First deliveries over the whole run, drain included.
    pub delivered_total: u64,
    /// Latency of every delivery of a message sent in the window.
    pub latency_us: Latency,
    /// How late the sends were against their schedule (rate mode):
    /// loadgen lag, already included in latency.
    pub send_lag_us: Latency,

    /// Deliveries owed to a client still connected at the end that never
    /// arrived.
    pub lost: u64,
    /// Deliveries received twice.
    pub duplicated: u64,
    /// Deliveries that arrived after a later message from the same sender.
    pub reordered: u64,
    /// Chat lines whose nick is not the sender's named in the marker, or
    /// whose marker names no sender or an unsent number.
    pub misattributed: u64,
    /// Messages a sender received back (the protocol says no echo).
    pub echoed: u64,
    /// `! ` lines received.
    pub server_errors: u64,
    /// Clients disconnected after they were ready.
    pub disconnects: u64,
    /// Sends skipped because the sender's socket had a large backlog (the
    /// server was not reading it).
    pub send_skipped: u64,
    /// Lines the load generator could not place (not protocol lines).
    pub unknown_lines: u64,
    /// `* ` lines received during the run that are not setup traffic.
    pub info_lines: u64,
    /// Chat lines without a marker (other people on a shared server).
    pub foreign_chat: u64,
    /// Whether deliveries were still outstanding when the drain gave up.
    pub drain_incomplete: bool,
    /// Whether the in-process server failed.
    pub server_failed: bool,

    /// CPU over the window.
    pub cpu: Cpu,
    /// Server memory (`--idle`, when it can be read).
    pub memory: Option<Memory>,
    /// Details worth a look: first errors, timeouts.
    pub notes: Vec<String>,
}

impl Report {
    /// Server CPU seconds per million deliveries in the window: the cost of
    /// fan-out, comparable across client counts at the same delivery rate.
    pub fn server_cpu_per_million(&self) -> Option<f64> {
        let server_s = self.cpu.server_s?;
        (self.delivered_window > 0).then(|| server_s * 1e6 / self.delivered_window as f64)
    }

    /// Why this run counts as failed; empty when it passed.
    pub fn failures(&self) -> Vec<String> {
        let mut f = Vec::new();
        let mut count = |n: u64, what: &str| {
            if n > 0 {
                f.push(format!("{n} {what}"));
            }
        };
        count(self.connect_failed as u64, "clients failed to connect");
        count(self.lost, "messages lost");
        count(self.duplicated, "duplicated deliveries");
        count(self.reordered, "reordered deliveries");
        count(self.misattributed, "misattributed deliveries");
        count(self.echoed, "messages echoed to their sender");
        count(self.server_errors, "`! ` lines from the server");
        count(self.disconnects, "disconnects");
        count(self.send_skipped, "sends skipped on a full socket");
        count(self.unknown_lines, "unrecognised lines");
        if self.connected < self.clients && self.connect_failed == 0 {
            f.push(format!(
                "only {} of {} clients ready",
                self.connected, self.clients
            ));
        }
        if !self.barrier_ok {
            f.push("barrier probe did not reach every client".into());
        }
        if self.drain_incomplete && self.lost == 0 {
            f.push("deliveries still outstanding after the drain".into());
        }
        if self.server_failed {
            f.push("the in-process server failed".into());
        }
        let sending = !matches!(self.mode, Some(Mode::Idle) | None);
        if sending && self.connected >= 2 && self.delivered_total == 0 {
            f.push("no deliveries at all".into());
        }
        f
    }

    /// Whether the run passed.
    pub fn ok(&self) -> bool {
        self.failures().is_empty()
    }

    /// Errors of every kind except lost messages, summed: the markdown
    /// table's `errors` column (lost messages have their own).
    pub fn error_count(&self) -> u64 {
        self.connect_failed as u64
            + self.duplicated
            + self.reordered
            + self.misattributed
            + self.echoed
            + self.server_errors
            + self.disconnects
            + self.send_skipped
            + self.unknown_lines
    }

    /// Per second of the nominal window, which is exactly the interval the
    /// `*_window` counts cover.
    fn per_s(&self, n: u64) -> f64 {
        if self.duration_s > 0.0 {
            n as f64 / self.duration_s
        } else {
            0.0
        }
    }

    /// The human-readable summary, several lines.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let mode = self.mode.map_or("-".to_string(), |m| m.to_string());
        let _ = writeln!(
            s,
            "loadgen: {}, {} clients, {} senders, {mode}, payload {} B, warmup {} s, measured {} s",
            self.target, self.clients, self.senders, self.payload, self.warmup_s, self.duration_s
        );
        let c = &self.connect_us;
        let _ = writeln!(
            s,
            "  clients     {}/{} connected in {:.2} s (connect to welcome p50 {} us, p99 {} us, max {} us), \
             barrier {:.0} ms, {} setup lines",
            self.connected,
            self.clients,
            self.setup_s,
            c.p50,
            c.p99,
            c.max,
            self.barrier_s * 1e3,
            self.setup_lines
        );
        if self.mode != Some(Mode::Idle) {
            let _ = writeln!(
                s,
                "  sent        {} messages in the window ({:.0}/s), {} in all",
                self.sent_window,
                self.per_s(self.sent_window),
                self.sent_total
            );
            let _ = writeln!(
                s,
                "  delivered   {} in the window ({:.0}/s), {} in all",
                self.delivered_window,
                self.per_s(self.delivered_window),
                self.delivered_total
            );
            let l = &self.latency_us;
            let _ = writeln!(
                s,
                "  latency     p50 {} us, p90 {} us, p99 {} us, p99.9 {} us, max {} us ({} samples)",
                l.p50, l.p90, l.p99, l.p999, l.max, l.count
            );
            if matches!(self.mode, Some(Mode::Rate(_))) {
                let g = &self.send_lag_us;
                let _ = writeln!(
                    s,
                    "  send lag    p99 {} us, max {} us (loadgen behind schedule; included in latency)",
                    g.p99, g.max
                );
            }
        }
        let _ = writeln!(
            s,
            "  errors      lost {}, duplicated {}, reordered {}, misattributed {}, echoed {}, \
             `!` lines {}, disconnects {}, failed connects {}",
            self.lost,
            self.duplicated,
            self.reordered,
            self.misattributed,
            self.echoed,
            self.server_errors,
            self.disconnects,
            self.connect_failed
        );
        let server = match (self.cpu.server_s, self.cpu.server_pct()) {
            (Some(x), Some(p)) => format!("{x:.2} s ({p:.0}% of a core)"),
            _ => "unknown".into(),
        };
        let server = match self.server_cpu_per_million() {
            Some(per_m) => format!("{server}, {per_m:.3} s per million deliveries"),
            None => server,
        };
        let machine = match (self.cpu.machine_s, self.cpu.others_s()) {
            (Some(m), Some(others)) => format!(
                "; whole machine {m:.2} s of {} cores (other processes {others:.2} s)",
                self.cpu.cores
            ),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "  cpu         loadgen {:.2} s ({:.0}% of a core), server {server}, over {:.2} s{machine}",
            self.cpu.loadgen_s,
            self.cpu.loadgen_pct(),
            self.cpu.wall_s
        );
        if let Some(m) = &self.memory {
            let _ = writeln!(
                s,
                "  memory      VmRSS {} KiB before, {} KiB with {} clients: {:.0} bytes per client{}",
                m.before_kib,
                m.after_kib,
                self.connected,
                m.per_client_bytes(self.connected),
                if m.includes_loadgen {
                    " (this process: server plus loadgen)"
                } else {
                    ""
                }
            );
        }
        if self.info_lines + self.foreign_chat > 0 {
            let _ = writeln!(
                s,
                "  other       {} info lines, {} chat lines without a marker",
                self.info_lines, self.foreign_chat
            );
        }
        for n in &self.notes {
            let _ = writeln!(s, "  note: {n}");
        }
        let failures = self.failures();
        if failures.is_empty() {
            let _ = writeln!(s, "  result      OK");
        } else {
            let _ = writeln!(s, "  result      FAILED: {}", failures.join("; "));
        }
        s
    }

    /// The same figures as one JSON object on one line.
    pub fn to_json(&self) -> String {
        let lat = |l: &Latency| {
            obj(&[
                ("count", l.count.to_string()),
                ("p50", l.p50.to_string()),
                ("p90", l.p90.to_string()),
                ("p99", l.p99.to_string()),
                ("p999", l.p999.to_string()),
                ("max", l.max.to_string()),
                ("mean", num(l.mean)),
            ])
        };
        let (mode, rate, window) = match self.mode {
            Some(Mode::Rate(r)) => ("rate", num(r), "null".into()),
            Some(Mode::Flood(w)) => ("flood", "null".into(), w.to_string()),
            Some(Mode::Idle) => ("idle", "null".into(), "null".into()),
            None => ("unknown", "null".into(), "null".into()),
        };
        let memory = match &self.memory {
            None => "null".into(),
            Some(m) => obj(&[
                ("before_kib", m.before_kib.to_string()),
                ("after_kib", m.after_kib.to_string()),
                ("per_client_bytes", num(m.per_client_bytes(self.connected))),
                ("includes_loadgen", m.includes_loadgen.to_string()),
            ]),
        };
        let failures: Vec<String> = self.failures().iter().map(|f| string(f)).collect();
        let notes: Vec<String> = self.notes.iter().map(|n| string(n)).collect();
        obj(&[
            ("target", string(&self.target)),
            ("mode", string(mode)),
            ("rate_per_sender", rate),
            ("flood_window", window),
            ("clients", self.clients.to_string()),
            ("senders", self.senders.to_string()),
            ("payload", self.payload.to_string()),
            ("warmup_s", num(self.warmup_s)),
            ("duration_s", num(self.duration_s)),
            ("connected", self.connected.to_string()),
            ("connect_failed", self.connect_failed.to_string()),
            ("setup_s", num(self.setup_s)),
            ("barrier_s", num(self.barrier_s)),
            ("barrier_ok", self.barrier_ok.to_string()),
            ("connect_us", lat(&self.connect_us)),
            ("setup_lines", self.setup_lines.to_string()),
            ("sent_window", self.sent_window.to_string()),
            ("sent_per_s", num(self.per_s(self.sent_window))),
            ("sent_total", self.sent_total.to_string()),
            ("delivered_window", self.delivered_window.to_string()),
            ("delivered_per_s", num(self.per_s(self.delivered_window))),
            ("delivered_total", self.delivered_total.to_string()),
            ("latency_us", lat(&self.latency_us)),
            ("send_lag_us", lat(&self.send_lag_us)),
            ("lost", self.lost.to_string()),
            ("duplicated", self.duplicated.to_string()),
            ("reordered", self.reordered.to_string()),
            ("misattributed", self.misattributed.to_string()),
            ("echoed", self.echoed.to_string()),
            ("server_errors", self.server_errors.to_string()),
            ("disconnects", self.disconnects.to_string()),
            ("send_skipped", self.send_skipped.to_string()),
            ("unknown_lines", self.unknown_lines.to_string()),
            ("info_lines", self.info_lines.to_string()),
            ("foreign_chat", self.foreign_chat.to_string()),
            ("drain_incomplete", self.drain_incomplete.to_string()),
            (
                "cpu",
                obj(&[
                    ("wall_s", num(self.cpu.wall_s)),
                    ("loadgen_s", num(self.cpu.loadgen_s)),
                    ("loadgen_pct", num(self.cpu.loadgen_pct())),
                    ("server_s", self.cpu.server_s.map_or("null".into(), num)),
                    (
                        "server_pct",
                        self.cpu.server_pct().map_or("null".into(), num),
                    ),
                    ("machine_s", self.cpu.machine_s.map_or("null".into(), num)),
                    (
                        "server_s_per_million_deliveries",
                        self.server_cpu_per_million().map_or("null".into(), num),
                    ),
                    ("cores", self.cpu.cores.to_string()),
                ]),
            ),
            ("memory", memory),
            ("ok", failures.is_empty().to_string()),
            ("failures", format!("[{}]", failures.join(","))),
            ("notes", format!("[{}]", notes.join(","))),
        ])
    }

    /// Header of the markdown table [`Report::markdown_row`] fills.
    pub fn markdown_header() -> String {
        "| scenario | clients | senders | mode | sent/s | deliveries/s | p50 us | p99 us | p99.9 us | max us | lost | errors | loadgen CPU | server CPU | server s/M deliveries | others CPU | RSS/client |\n\
         | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
            .to_string()
    }

    /// One markdown table row named `scenario`.
    pub fn markdown_row(&self, scenario: &str) -> String {
        let idle = self.mode == Some(Mode::Idle);
        let dash = || "-".to_string();
        let (sent, deliv, p50, p99, p999, max) = if idle {
            (dash(), dash(), dash(), dash(), dash(), dash())
        } else {
            let l = &self.latency_us;
            (
                format!("{:.0}", self.per_s(self.sent_window)),
                format!("{:.0}", self.per_s(self.delivered_window)),
                l.p50.to_string(),
                l.p99.to_string(),
                l.p999.to_string(),
                l.max.to_string(),
            )
        };
        let mode = match self.mode {
            Some(Mode::Rate(r)) => format!("rate {r}/s"),
            Some(Mode::Flood(w)) => format!("flood {w}"),
            Some(Mode::Idle) => "idle".into(),
            None => dash(),
        };
        let errors = self.error_count();
        let rss = self.memory.map_or_else(dash, |m| {
            format!("{:.0} B", m.per_client_bytes(self.connected))
        });
        format!(
            "| {scenario} | {} | {} | {mode} | {sent} | {deliv} | {p50} | {p99} | {p999} | {max} | {} | {errors} | {:.0}% | {} | {} | {} | {rss} |",
            self.connected,
            self.senders,
            self.lost,
            self.cpu.loadgen_pct(),
            self.cpu
                .server_pct()
                .map_or_else(dash, |p| format!("{p:.0}%")),
            self.server_cpu_per_million()
                .map_or_else(dash, |s| format!("{s:.3}")),
            self.cpu
                .others_pct()
                .map_or_else(dash, |p| format!("{p:.0}%")),
        )
    }
}

/// A JSON object from keys and already-encoded values.
fn obj(fields: &[(&str, String)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}:{v}", string(k)))
        .collect();
    format!("{{{}}}", body.join(","))
}

/// A JSON number; JSON has no NaN or infinity, so those become null.
fn num(x: f64) -> String {
    if x.is_finite() {
        let r = (x * 1000.0).round() / 1000.0;
        format!("{r}")
    } else {
        "null".into()
    }
}

/// A JSON string literal.
fn string(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for ch in s.chars() {
        match ch {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        Report {
            target: "server 127.0.0.1:1".into(),
            mode: Some(Mode::Rate(2.0)),
            clients: 3,
            senders: 3,
            payload: 64,
            warmup_s: 1.0,
            duration_s: 2.0,
            connected: 3,
            barrier_ok: true,
            sent_window: 12,
            sent_total: 18,
            delivered_window: 24,
            delivered_total: 36,
            latency_us: Latency {
                count: 24,
                p50: 100,
                p90: 200,
                p99: 300,
                p999: 400,
                max: 500,
                mean: 150.5,
            },
            cpu: Cpu {
                wall_s: 2.0,
                loadgen_s: 0.5,
                server_s: Some(1.0),
                machine_s: Some(2.0),
                cores: 2,
            },
            notes: vec!["say \"hi\"\n".into()],
            ..Report::default()
        }
    }

    #[test]
    fn clean_run_passes() {
        let r = sample();
        assert!(r.ok(), "{:?}", r.failures());
        let text = r.to_text();
        assert!(
            text.contains("delivered   24 in the window (12/s)"),
            "{text}"
        );
        assert!(text.contains("result      OK"), "{text}");
        assert!(text.contains("loadgen 0.50 s (25% of a core)"), "{text}");
    }

    #[test]
    fn loss_fails() {
        let r = Report {
            lost: 2,
            disconnects: 1,
            ..sample()
        };
        let f = r.failures();
        assert_eq!(f, vec!["2 messages lost", "1 disconnects"]);
        assert!(r
            .to_text()
            .contains("FAILED: 2 messages lost; 1 disconnects"));
        let row = r.markdown_row("x");
        assert!(
            row.starts_with(
                "| x | 3 | 3 | rate 2/s | 6 | 12 | 100 | 300 | 400 | 500 | 2 | 1 | 25% | 50% | 41666.667 | 25% | - |"
            ),
            "{row}"
        );
    }

    #[test]
    fn json_is_well_formed() {
        let j = sample().to_json();
        assert!(j.starts_with("{\"target\":\"server 127.0.0.1:1\",\"mode\":\"rate\""));
        assert!(
            j.contains("\"latency_us\":{\"count\":24,\"p50\":100,"),
            "{j}"
        );
        assert!(j.contains("\"mean\":150.5"), "{j}");
        assert!(j.contains("\"notes\":[\"say \\\"hi\\\"\\n\"]"), "{j}");
        assert!(j.contains("\"ok\":true,\"failures\":[]"), "{j}");
        // Braces and brackets balance outside strings.
        let mut depth = 0i32;
        let mut in_str = false;
        let mut esc = false;
        for c in j.chars() {
            match (in_str, esc, c) {
                (true, true, _) => esc = false,
                (true, false, '\\') => esc = true,
                (true, false, '"') => in_str = false,
                (false, _, '"') => in_str = true,
                (false, _, '{' | '[') => depth += 1,
                (false, _, '}' | ']') => depth -= 1,
                _ => {}
            }
            assert!(depth >= 0);
        }
        assert_eq!(depth, 0);
        assert!(!in_str);
        assert_eq!(num(f64::NAN), "null");
    }

    #[test]
    fn idle_row_shows_memory() {
        let r = Report {
            mode: Some(Mode::Idle),
            senders: 0,
            memory: Some(Memory {
                before_kib: 1000,
                after_kib: 1003,
                includes_loadgen: true,
            }),
            ..sample()
        };
        assert_eq!(r.memory.unwrap().per_client_bytes(3), 1024.0);
        let row = r.markdown_row("idle");
        assert!(row.ends_with("| 1024 B |"), "{row}");
        assert!(r.to_text().contains("1024 bytes per client"));
    }
}
