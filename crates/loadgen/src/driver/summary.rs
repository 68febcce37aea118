//! What the run tells a person: one progress line per second on stderr,
//! and the final [`Report`].

use std::time::{Duration, Instant};

use super::{Driver, Mode, Phase};
use crate::report::{Cpu, Latency, Memory, Report};
use crate::sys;

impl Driver<'_> {
    /// Prints one progress line per second to stderr (unless `--quiet`).
    pub(super) fn progress(&mut self, now: Instant) {
        if now < self.next_progress {
            return;
        }
        self.next_progress = now + Duration::from_secs(1);
        if self.plan.quiet {
            return;
        }
        let t = now.duration_since(self.base).as_secs_f64();
        let r = &self.report;
        let what = match self.phase {
            Phase::Setup => format!(
                "setup: {}/{} ready, {} connecting, {} failed",
                self.ready,
                self.clients.len(),
                self.in_progress,
                self.connect_failed
            ),
            Phase::Barrier => format!(
                "barrier: probe reached {}/{} clients",
                self.probe_hits,
                self.ready.saturating_sub(1)
            ),
            Phase::Run if self.plan.mode == Mode::Idle => format!(
                "idle: {} clients connected, VmRSS {}",
                self.ready,
                self.rss()
                    .map_or("unknown".into(), |k| format!("{} KiB", k))
            ),
            Phase::Run => {
                let stage = if now < self.w0 { "warmup" } else { "run" };
                let in_flight: u64 = self.inflight.iter().map(|&x| x as u64).sum();
                format!(
                    "{stage}: sent {} (+{}), delivered {} (+{}), in flight {in_flight}, errors {}",
                    r.sent_total,
                    r.sent_total - self.last_sent,
                    r.delivered_total,
                    r.delivered_total - self.last_delivered,
                    r.server_errors + r.disconnects + r.duplicated + r.reordered + r.misattributed
                )
            }
            Phase::Drain => format!("drain: {} deliveries outstanding", self.outstanding),
            Phase::Closing => format!("closing: {} connections open", self.open),
            Phase::Done => return,
        };
        self.last_sent = r.sent_total;
        self.last_delivered = r.delivered_total;
        eprintln!("loadgen [{t:6.1}s] {what}");
    }

    /// Turns the counters and histograms into the [`Report`].
    pub(super) fn finish(mut self) -> Report {
        if self.phase == Phase::Run || self.phase == Phase::Drain {
            // Stopped early (time limit): count what is missing now.
            self.report.lost = self.count_outstanding() + self.tracker.forgotten();
        }
        if self.notes_dropped > 0 {
            let n = self.notes_dropped;
            self.report.notes.push(format!("... and {n} more notes"));
        }
        let mut r = self.report;
        r.connected = self.connected;
        r.connect_failed = self.connect_failed;
        r.barrier_ok = self.barrier_ok || self.connected < 2;
        r.connect_us = Latency::of(&self.connect_us);
        r.latency_us = Latency::of(&self.latency);
        r.send_lag_us = Latency::of(&self.send_lag);
        r.duplicated = self.tracker.duplicated;
        r.reordered = self.tracker.reordered;
        if let (Some(a), Some(b)) = (self.cpu0, self.cpu1) {
            let loadgen = b.thread.saturating_sub(a.thread);
            let server = match (a.server, b.server) {
                (Some(x), Some(y)) => Some(y.saturating_sub(x).as_secs_f64()),
                // In-process without a known thread id: everything but us.
                _ if self.plan.in_process => Some(
                    b.process
                        .saturating_sub(a.process)
                        .saturating_sub(loadgen)
                        .as_secs_f64(),
                ),
                _ => None,
            };
            let wall_s = b.at.duration_since(a.at).as_secs_f64();
            let cores = sys::cores();
            let machine_s = match (a.machine, b.machine) {
                (Some((busy0, total0)), Some((busy1, total1))) if total1 > total0 => {
                    let busy = busy1.saturating_sub(busy0) as f64 / (total1 - total0) as f64;
                    Some(busy * cores as f64 * wall_s)
                }
                _ => None,
            };
            r.cpu = Cpu {
                wall_s,
                loadgen_s: loadgen.as_secs_f64(),
                server_s: server,
                machine_s,
                cores,
            };
        }
        if let (Some(before_kib), Some(after_kib)) = (self.rss_before, self.rss_after) {
            r.memory = Some(Memory {
                before_kib,
                after_kib,
                includes_loadgen: self.plan.in_process,
            });
        }
        if self.shutdown.is_some()
            && self.shutdown_lines < self.connected.saturating_sub(r.disconnects as usize)
        {
            r.notes.push(format!(
                "only {} of {} clients received `* server shutting down`",
                self.shutdown_lines, self.connected
            ));
        }
        r
    }
}
