//! The loop's life around the chat: signals, certificate and settings
//! reload, the
//! metrics text rendered on scrape, log summaries, reaping ended
//! connections, and the graceful shutdown.

use super::{EventLoop, ShutdownHandle};
use crate::chat::ClientId;
use crate::config::SHUTDOWN_GRACE;
use crate::end_reason::EndReason;
use crate::metrics::{self, HistorySnapshot, Snapshot, Standing};
use crate::protocol::Event;
use crate::Config;
use log::{info, warn};
use mio::{Interest, Registry, Token};
use signal_hook_mio::v1_0::Signals;
use std::io;
use std::sync::atomic::Ordering;

/// The loop's own life: how it is asked to stop, and whether it is
/// stopping.
pub(super) struct Life {
    shutdown: ShutdownHandle,
    /// Kept alive so signal handlers stay registered; `None` when the server
    /// does not handle signals.
    signals: Option<Signals>,
    /// Set once shutdown began; the loop ends when no connection is left.
    pub(super) shutting_down: bool,
}

impl Life {
    /// Registers SIGINT, SIGTERM and SIGHUP under `token` when
    /// `handle_signals` (the binary), and then tells systemd it is ready.
    pub(super) fn new(
        shutdown: ShutdownHandle,
        handle_signals: bool,
        registry: &Registry,
        token: Token,
    ) -> io::Result<Life> {
        let signals = if handle_signals {
            let mut signals = Signals::new([
                signal_hook::consts::SIGINT,
                signal_hook::consts::SIGTERM,
                signal_hook::consts::SIGHUP,
            ])?;
            registry.register(&mut signals, token, Interest::READABLE)?;
            // Listening, and SIGHUP handled from here on: ready for systemd.
            if let Err(err) = crate::net::sd_notify::notify("READY=1") {
                warn!("cannot tell systemd the server is ready: {err}");
            }
            Some(signals)
        } else {
            None
        };
        Ok(Life {
            shutdown,
            signals,
            shutting_down: false,
        })
    }

    /// Whether a [`ShutdownHandle`] asked the server to stop.
    pub(super) fn shutdown_requested(&self) -> bool {
        self.shutdown.requested.load(Ordering::SeqCst)
    }
}

impl EventLoop {
    /// SIGINT/SIGTERM start a graceful shutdown; a second one, while
    /// clients are still taking their goodbye, closes them all at once.
    pub(super) fn take_signals(&mut self) {
        let Some(signals) = self.life.signals.as_mut() else {
            return;
        };
        let received: Vec<i32> = signals.pending().collect();
        for signal in received {
            if signal == signal_hook::consts::SIGHUP {
                self.reload_certificate();
                self.reload_settings();
                continue;
            }
            let name = if signal == signal_hook::consts::SIGINT {
                "SIGINT"
            } else {
                "SIGTERM"
            };
            if self.life.shutting_down {
                info!("{name} again: closing every connection now");
                let ids: Vec<ClientId> = self.clients.conns.iter().map(|(id, _)| id).collect();
                for id in ids {
                    self.clients.kill(id, EndReason::ServerShutdown);
                }
            } else {
                self.begin_shutdown(name);
            }
        }
    }

    /// Re-reads the certificate and key: new handshakes get the new
    /// certificate, connected clients keep their sessions, and a broken file
    /// keeps the old certificate.
    fn reload_certificate(&mut self) {
        match self.transports.certs.as_mut() {
            None => info!("SIGHUP: no TLS certificate configured, nothing to reload"),
            Some(certs) => match certs.reload() {
                Ok(()) => info!("SIGHUP: TLS certificate reloaded; new connections get it"),
                Err(err) => warn!("SIGHUP: keeping the old TLS certificate: {err}"),
            },
        }
    }

    /// Re-reads the `--config` file, when there is one: the settings that
    /// can change on a running server do (see
    /// [`crate::settings::file::RELOADABLE`]), the others are logged as
    /// needing a restart, and a broken file changes nothing. Reading a small
    /// file on the loop is as quick as the certificate reload next to it.
    fn reload_settings(&mut self) {
        let Some(mut reload) = self.reload.take() else {
            return;
        };
        match reload.reload() {
            Ok(reloaded) => {
                for change in &reloaded.applied {
                    info!("SIGHUP: {change}");
                }
                for change in &reloaded.need_restart {
                    warn!("SIGHUP: {change} needs a restart; the running value stays");
                }
                if reloaded.applied.is_empty() && reloaded.need_restart.is_empty() {
                    info!("SIGHUP: settings unchanged");
                }
                self.apply_settings(reloaded.config);
            }
            Err(err) => warn!("SIGHUP: keeping the running settings: {err}"),
        }
        self.reload = Some(reload);
    }

    /// Takes the reloadable settings from `new` (the others are already
    /// the running ones). Each is read where it is used, so open
    /// connections follow at their next line, read or tick; socket options
    /// apply to new connections.
    fn apply_settings(&mut self, new: Config) {
        let config = &mut self.config;
        config.max_line_bytes = new.max_line_bytes;
        config.max_outbuf_bytes = new.max_outbuf_bytes;
        config.idle_timeout = new.idle_timeout;
        config.close_timeout = new.close_timeout;
        config.max_output_total_bytes = new.max_output_total_bytes;
        config.soft_outbuf = new.soft_outbuf;
        config.work_budget_bytes = new.work_budget_bytes;
        config.flood = new.flood;
        config.send_buffer_bytes = new.send_buffer_bytes;
        config.ws_ping_interval = new.ws_ping_interval;
        config.trusted_proxies = new.trusted_proxies;
        self.clients.max_outbuf_bytes = new.max_outbuf_bytes;
        self.clients.max_output_total_bytes = new.max_output_total_bytes;
        self.clients.soft_outbuf = new.soft_outbuf;
        self.guard.set_config(new.guard.clone());
        config.guard = new.guard;
    }

    /// The metrics text: the counters, plus gauges measured now by walking
    /// the connections (only a scrape pays for that walk).
    pub(super) fn render_metrics(&self) -> String {
        let mut snapshot = Snapshot {
            clients: self.open_count as u64,
            clients_limit: self.config.max_clients as u64,
            output_queue_limit_bytes: self.config.max_outbuf_bytes as u64,
            output_buffer_bytes: self.clients.pool.lent_bytes() as u64,
            output_buffer_limit_bytes: self.config.max_output_total_bytes as u64,
            rooms: self.chat.room_count() as u64,
            accounts: {
                let (depth, limit) = self.accounts.queue();
                crate::metrics::AccountsSnapshot {
                    accounts: self.chat.accounts().len() as u64,
                    tokens: self.chat.accounts().token_count() as u64,
                    logged_in: self.chat.logged_in() as u64,
                    queue_depth: depth as u64,
                    queue_limit: limit as u64,
                    delayed_logins: self.accounts.delayed() as u64,
                }
            },
            history: self.config.history.file.is_some().then(|| HistorySnapshot {
                stats: self.history.stats,
                waiting_lines: self.history.waiting_lines() as u64,
                writer_up: self.history.writing(),
            }),
            cluster: match &self.cluster {
                crate::cluster::Cluster::Redis(redis) => Some(crate::metrics::ClusterSnapshot {
                    up: redis.is_up(),
                    in_flight: redis.in_flight() as u64,
                    stats: redis.stats().clone(),
                }),
                crate::cluster::Cluster::Single => None,
            },
            ..Snapshot::default()
        };
        for (_, conn) in self.clients.conns.iter() {
            // Output held until the history commit counts as queued.
            let queued = (conn.output.len() + conn.held.len()) as u64;
            snapshot.output_queued_bytes += queued;
            snapshot.output_queued_max_bytes = snapshot.output_queued_max_bytes.max(queued);
            if let (Standing::Admitted(transport), false) = (conn.standing(), conn.is_dead()) {
                snapshot.count_open(transport);
            }
        }
        metrics::render(&self.clients.metrics, &snapshot)
    }

    /// Logs a summary line for each address whose connect and disconnect
    /// lines were left out in the window just closed (every window when
    /// `all`).
    pub(super) fn log_summaries(&mut self, all: bool) {
        for line in self.logs.summaries(self.now, all) {
            info!("{line}");
        }
    }

    /// Drops the connections that ended this turn.
    pub(super) fn reap_dead(&mut self) {
        let dead = std::mem::take(&mut self.clients.dead);
        for id in dead {
            if !self.clients.conns.get(id).is_some_and(|c| c.is_dead()) {
                continue;
            }
            if self.clients.departures.is_pending(id) {
                // Its room has not been told yet: the slot (and the nick)
                // stay taken until then.
                self.clients.dead.push(id);
                continue;
            }
            let mut conn = self.clients.conns.remove(id);
            conn.held.clear(&mut self.clients.held_bytes);
            let _ = self.poll.registry().deregister(&mut conn.stream);
            self.chat.forget_history_waits(id);
            if conn.on_read_list() {
                // The slot may be reused next turn; the read lists must not
                // carry this id over to a stranger.
                self.reads.forget(id);
            }
            self.guard.release(id);
            let reason = conn.end_reason().unwrap_or(EndReason::ClosedByPeer);
            match conn.standing() {
                Standing::Admitted(_) => self.clients.metrics.disconnected(reason),
                Standing::Pending => self.clients.metrics.ended_before_joining(reason),
                Standing::Refused => {}
            }
            let nick = self.chat.departed_nick(id);
            if let Some(nick) = &nick {
                self.cluster_departed(nick);
            }
            let peer = conn.peer();
            if self.logs.allow(peer.ip(), self.now) {
                match nick {
                    Some(nick) => info!("{peer}: {nick} disconnected ({reason})"),
                    None => info!("{peer}: disconnected ({reason})"),
                }
            }
        }
    }

    /// Stops accepting and tells everyone; the loop ends once every
    /// connection has taken its last line or passed the close timeout.
    pub(super) fn begin_shutdown(&mut self, why: &str) {
        if self.life.shutting_down {
            return;
        }
        info!(
            "{why}: shutting down, {} connections to close",
            self.clients.conns.len()
        );
        self.life.shutting_down = true;
        if self.life.signals.is_some() {
            let _ = crate::net::sd_notify::notify("STOPPING=1");
        }
        // The chat listeners close; scrapes go on until the loop ends.
        let (chat, others) = std::mem::take(&mut self.listeners)
            .into_iter()
            .partition(|listener| listener.kind.is_chat());
        self.listeners = others;
        for listener in chat {
            listener.close(self.poll.registry());
        }
        self.expire_proxy_waits(true);
        let handshakes: Vec<ClientId> = self
            .clients
            .conns
            .iter()
            .filter(|(_, conn)| conn.is_handshaking())
            .map(|(id, _)| id)
            .collect();
        for id in handshakes {
            self.clients.kill(id, EndReason::ServerShutdown);
        }
        let open: Vec<ClientId> = self
            .clients
            .conns
            .iter()
            .filter(|(_, conn)| conn.is_open())
            .map(|(id, _)| id)
            .collect();
        self.queue_last_line(
            &open,
            &Event::ShuttingDown.into(),
            EndReason::ServerShutdown,
        );
        // Told or not, everyone is gone within the grace, whatever the close
        // timeout: the process must exit within 5 s even if peers never
        // read or never close.
        let last = self.now + self.config.close_timeout.min(SHUTDOWN_GRACE);
        for (_, conn) in self.clients.conns.iter_mut() {
            conn.shorten_deadline(last);
        }
        self.next_timer_check = self.now;
    }
}
