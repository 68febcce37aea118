//! Why a connection ended: one [`EndReason`] per way out, which supplies
//! the text of the disconnect log line, the `reason` label of the
//! `loopchat_disconnects_total` and `loopchat_connections_not_joined_total`
//! series, and the status of a WebSocket client's close frame.
//!
//! A connection gets its reason when it leaves the `Open` phase (or, while
//! it handshakes, the timeout that will end it unless something else does
//! first); see `Connection` (`src/connection.rs`).

use std::fmt;

/// Why a connection ended (or, while it handshakes, what will end it if
/// nothing else does first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The client sent `:quit`.
    Quit,
    /// The peer closed its side (TCP FIN, or a WebSocket close frame).
    ClosedByPeer,
    /// The peer reset the connection.
    ResetByPeer,
    /// Keepalive probes (or retransmissions) went unanswered.
    DeadPeer,
    /// Reading failed otherwise.
    ReadError,
    /// Writing failed (the peer went away).
    WriteError,
    /// Not TLS, a bad record, or a failed handshake.
    TlsError,
    /// Cut off as a slow consumer by one of the output limits.
    TooSlow,
    /// An unfinished line stayed unfinished past `--idle-timeout`.
    IdleTimeout,
    /// No right password within `--auth-timeout`.
    AuthTimeout,
    /// A wrong password ended the connection.
    AuthFailed,
    /// Its address is locked out after too many wrong passwords.
    AuthLockout,
    /// Its last lines were not taken (or the peer never closed) within
    /// `--close-timeout`.
    CloseTimeout,
    /// The server shut down.
    ServerShutdown,
    /// With `--cluster`: it arrived while the cluster was unreachable
    /// (`! cluster unavailable`).
    ClusterUnavailable,
    /// With `--cluster`: lines of its room were lost before this server
    /// got them; it is disconnected rather than left with a gap.
    MissedLines,
    /// Another connection logged in to the same account.
    LoggedInElsewhere,
    /// The poller refused to watch the socket.
    PollerError,
    /// A page or an HTTP error was served; the connection never joined.
    HttpResponseSent,
    /// No complete HTTP request head within the close timeout.
    RequestHeadTimeout,
    /// No finished TLS handshake within the close timeout.
    TlsHandshakeTimeout,
    /// Its first bytes were a PROXY header, and its address is not a
    /// trusted proxy's.
    UntrustedProxyHeader,
    /// An IRC client sent a line that is not IRC at all before it
    /// registered (binary, a TLS hello, an HTTP header).
    NotIrc,
    /// Turned away on arrival: `! server full` and the like.
    Refused(Refusal),
    /// A WebSocket client broke the protocol; the close frame carries
    /// `code`.
    WebSocket {
        /// The close status sent.
        code: u16,
        /// The rule it broke.
        why: WsViolation,
    },
}

/// A WebSocket rule (RFC 6455) a client broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsViolation {
    /// RSV1-3 set without an extension that defines them.
    ReservedBits,
    /// A client frame without a mask.
    Unmasked,
    /// A 64-bit length with its top bit set.
    LengthOutOfRange,
    /// A control frame without FIN.
    FragmentedControl,
    /// A control frame over 125 bytes.
    ControlTooLong,
    /// An opcode RFC 6455 reserves.
    ReservedOpcode,
    /// A continuation frame with no message started.
    ContinuationWithoutMessage,
    /// A new data frame before the fragmented message ended.
    MessageInsideFragmented,
    /// A binary message (the chat speaks text).
    BinaryMessage,
    /// Text or a close reason that is not UTF-8.
    InvalidUtf8,
    /// A close frame with a one-byte payload.
    BadCloseFrame,
    /// A close status a peer may not send.
    BadCloseCode,
}

impl WsViolation {
    /// As the log says it (`disconnected (unmasked client frame)`).
    pub fn text(self) -> &'static str {
        match self {
            WsViolation::ReservedBits => "reserved bits set",
            WsViolation::Unmasked => "unmasked client frame",
            WsViolation::LengthOutOfRange => "frame length out of range",
            WsViolation::FragmentedControl => "fragmented control frame",
            WsViolation::ControlTooLong => "control frame too long",
            WsViolation::ReservedOpcode => "reserved opcode",
            WsViolation::ContinuationWithoutMessage => "continuation without a message",
            WsViolation::MessageInsideFragmented => "new message inside a fragmented one",
            WsViolation::BinaryMessage => "binary message",
            WsViolation::InvalidUtf8 => "invalid UTF-8",
            WsViolation::BadCloseFrame => "bad close frame",
            WsViolation::BadCloseCode => "bad close code",
        }
    }
}

impl EndReason {
    /// The reasons an admitted client's connection ends by, seeded at zero
    /// in `loopchat_disconnects_total` so every series exists from the
    /// first scrape. Others (WebSocket protocol errors) appear when they
    /// first happen.
    pub const DISCONNECTS: [EndReason; 19] = [
        EndReason::Quit,
        EndReason::ClosedByPeer,
        EndReason::ResetByPeer,
        EndReason::DeadPeer,
        EndReason::ReadError,
        EndReason::WriteError,
        EndReason::TlsError,
        EndReason::TooSlow,
        EndReason::IdleTimeout,
        EndReason::AuthTimeout,
        EndReason::AuthFailed,
        EndReason::AuthLockout,
        EndReason::CloseTimeout,
        EndReason::ServerShutdown,
        EndReason::PollerError,
        EndReason::ClusterUnavailable,
        EndReason::MissedLines,
        EndReason::LoggedInElsewhere,
        EndReason::NotIrc,
    ];

    /// The reasons a connection ends by before it joins the chat (TLS
    /// handshakes, HTTP requests, pages served), seeded at zero in
    /// `loopchat_connections_not_joined_total`.
    pub const NOT_JOINED: [EndReason; 6] = [
        EndReason::HttpResponseSent,
        EndReason::RequestHeadTimeout,
        EndReason::TlsHandshakeTimeout,
        EndReason::TlsError,
        EndReason::ClosedByPeer,
        EndReason::ResetByPeer,
    ];

    /// The reason as the disconnect log line says it
    /// (`alice disconnected (closed by peer)`).
    pub fn text(self) -> &'static str {
        match self {
            EndReason::Quit => "quit",
            EndReason::ClosedByPeer => "closed by peer",
            EndReason::ResetByPeer => "reset by peer",
            EndReason::DeadPeer => "dead peer (timed out)",
            EndReason::ReadError => "read error",
            EndReason::WriteError => "write error",
            EndReason::TlsError => "TLS error",
            EndReason::TooSlow => "too slow",
            EndReason::IdleTimeout => "idle timeout",
            EndReason::AuthTimeout => "auth timeout",
            EndReason::AuthFailed => "auth failed",
            EndReason::AuthLockout => "auth lockout",
            EndReason::CloseTimeout => "close timeout",
            EndReason::ServerShutdown => "server shutdown",
            EndReason::ClusterUnavailable => "cluster unavailable",
            EndReason::MissedLines => "missed lines",
            EndReason::LoggedInElsewhere => "logged in elsewhere",
            EndReason::PollerError => "poller error",
            EndReason::HttpResponseSent => "http response sent",
            EndReason::RequestHeadTimeout => "request head timeout",
            EndReason::TlsHandshakeTimeout => "TLS handshake timeout",
            EndReason::UntrustedProxyHeader => "PROXY header from an untrusted address",
            EndReason::NotIrc => "not IRC",
            EndReason::Refused(Refusal::ServerFull) => "server full",
            EndReason::Refused(Refusal::PerAddressLimit) => "too many from address",
            EndReason::WebSocket { why, .. } => why.text(),
        }
    }

    /// The `reason` label value: the text in lower case, its words joined
    /// by `_` (`dead peer (timed out)` is `dead_peer_timed_out`).
    pub fn label(self) -> String {
        let mut label = String::new();
        for word in self
            .text()
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|word| !word.is_empty())
        {
            if !label.is_empty() {
                label.push('_');
            }
            label.push_str(&word.to_ascii_lowercase());
        }
        label
    }

    /// The status of the close frame a WebSocket client gets when its
    /// connection ends for this reason: `1001` at shutdown, `1013` when the
    /// server is full, the broken rule's status after a protocol error,
    /// else `1000`.
    pub fn close_code(self) -> u16 {
        // RFC 6455 §7.4 (the same numbers as `net::ws::CLOSE_*`, which
        // its tests check; this module depends on nothing).
        match self {
            EndReason::ServerShutdown => 1001,
            EndReason::Refused(Refusal::ServerFull) => 1013,
            EndReason::WebSocket { code, .. } => code,
            _ => 1000,
        }
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

/// Why a new connection was turned away before it joined: the `reason`
/// label of `loopchat_connections_refused_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `--max-clients` connections were already open.
    ServerFull,
    /// Its address already had `--max-per-address` connections open.
    PerAddressLimit,
}

impl Refusal {
    /// Every refusal reason, in the order their series are rendered.
    pub const ALL: [Refusal; 2] = [Refusal::ServerFull, Refusal::PerAddressLimit];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::ServerFull => "server_full",
            Refusal::PerAddressLimit => "per_address_limit",
        }
    }

    /// Its place in [`Refusal::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every reason with its log text and label exactly as the server said
    /// them when reasons were strings (the metrics tests and dashboards
    /// depend on the labels).
    const TABLE: [(EndReason, &str, &str); 26] = [
        (EndReason::NotIrc, "not IRC", "not_irc"),
        (
            EndReason::UntrustedProxyHeader,
            "PROXY header from an untrusted address",
            "proxy_header_from_an_untrusted_address",
        ),
        (EndReason::Quit, "quit", "quit"),
        (EndReason::ClosedByPeer, "closed by peer", "closed_by_peer"),
        (EndReason::ResetByPeer, "reset by peer", "reset_by_peer"),
        (
            EndReason::DeadPeer,
            "dead peer (timed out)",
            "dead_peer_timed_out",
        ),
        (EndReason::ReadError, "read error", "read_error"),
        (EndReason::WriteError, "write error", "write_error"),
        (EndReason::TlsError, "TLS error", "tls_error"),
        (EndReason::TooSlow, "too slow", "too_slow"),
        (EndReason::IdleTimeout, "idle timeout", "idle_timeout"),
        (EndReason::AuthTimeout, "auth timeout", "auth_timeout"),
        (EndReason::AuthFailed, "auth failed", "auth_failed"),
        (EndReason::AuthLockout, "auth lockout", "auth_lockout"),
        (EndReason::CloseTimeout, "close timeout", "close_timeout"),
        (
            EndReason::ServerShutdown,
            "server shutdown",
            "server_shutdown",
        ),
        (EndReason::PollerError, "poller error", "poller_error"),
        (
            EndReason::ClusterUnavailable,
            "cluster unavailable",
            "cluster_unavailable",
        ),
        (EndReason::MissedLines, "missed lines", "missed_lines"),
        (
            EndReason::LoggedInElsewhere,
            "logged in elsewhere",
            "logged_in_elsewhere",
        ),
        (
            EndReason::HttpResponseSent,
            "http response sent",
            "http_response_sent",
        ),
        (
            EndReason::RequestHeadTimeout,
            "request head timeout",
            "request_head_timeout",
        ),
        (
            EndReason::TlsHandshakeTimeout,
            "TLS handshake timeout",
            "tls_handshake_timeout",
        ),
        (
            EndReason::Refused(Refusal::ServerFull),
            "server full",
            "server_full",
        ),
        (
            EndReason::Refused(Refusal::PerAddressLimit),
            "too many from address",
            "too_many_from_address",
        ),
        (
            EndReason::WebSocket {
                code: 1007,
                why: WsViolation::InvalidUtf8,
            },
            "invalid UTF-8",
            "invalid_utf_8",
        ),
    ];

    #[test]
    fn each_reason_has_its_log_text_and_label() {
        for (reason, text, label) in TABLE {
            assert_eq!(reason.text(), text);
            assert_eq!(reason.to_string(), text);
            assert_eq!(reason.label(), label, "{reason:?}");
        }
    }

    #[test]
    fn websocket_violations_keep_their_log_text_and_label() {
        let table = [
            (WsViolation::ReservedBits, "reserved_bits_set"),
            (WsViolation::Unmasked, "unmasked_client_frame"),
            (WsViolation::LengthOutOfRange, "frame_length_out_of_range"),
            (WsViolation::FragmentedControl, "fragmented_control_frame"),
            (WsViolation::ControlTooLong, "control_frame_too_long"),
            (WsViolation::ReservedOpcode, "reserved_opcode"),
            (
                WsViolation::ContinuationWithoutMessage,
                "continuation_without_a_message",
            ),
            (
                WsViolation::MessageInsideFragmented,
                "new_message_inside_a_fragmented_one",
            ),
            (WsViolation::BinaryMessage, "binary_message"),
            (WsViolation::InvalidUtf8, "invalid_utf_8"),
            (WsViolation::BadCloseFrame, "bad_close_frame"),
            (WsViolation::BadCloseCode, "bad_close_code"),
        ];
        for (why, label) in table {
            let reason = EndReason::WebSocket { code: 1002, why };
            assert_eq!(reason.text(), why.text());
            assert_eq!(reason.label(), label);
        }
    }

    #[test]
    fn seeded_reasons_have_distinct_labels() {
        for list in [&EndReason::DISCONNECTS[..], &EndReason::NOT_JOINED[..]] {
            let mut labels: Vec<String> = list.iter().map(|r| r.label()).collect();
            labels.sort();
            labels.dedup();
            assert_eq!(labels.len(), list.len());
        }
    }

    #[test]
    fn close_codes() {
        assert_eq!(EndReason::ServerShutdown.close_code(), 1001);
        assert_eq!(EndReason::Refused(Refusal::ServerFull).close_code(), 1013);
        assert_eq!(
            EndReason::WebSocket {
                code: 1002,
                why: WsViolation::Unmasked
            }
            .close_code(),
            1002
        );
        for reason in [
            EndReason::Quit,
            EndReason::IdleTimeout,
            EndReason::TooSlow,
            EndReason::ClosedByPeer,
            EndReason::Refused(Refusal::PerAddressLimit),
        ] {
            assert_eq!(reason.close_code(), 1000, "{reason:?}");
        }
    }
}
