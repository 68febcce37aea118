//! HTTP on the web address: one request per connection, parsed by
//! `httparse` from the loop's own buffers. `GET /` and its assets serve the
//! chat page (embedded in the binary), `GET /ws` upgrades to a WebSocket;
//! everything else gets a short error and the connection closes.
//!
//! The request head is limited in size ([`MAX_HEAD_BYTES`], else `431`) and,
//! by the loop, in time (the close timeout).

use crate::protocol::irc::mask::{choose_subprotocol, Subprotocol};
use tungstenite::handshake::derive_accept_key;

/// Largest request head accepted; a longer one is answered `431`.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Headers accepted in one request head; more is answered `431`.
const MAX_HEADERS: usize = 64;

/// The security headers every response carries: no inline or foreign
/// script, no foreign connections, no framing, no sniffing, no referrer.
const SECURITY_HEADERS: &str = "Content-Security-Policy: default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'\r\n\
     X-Content-Type-Options: nosniff\r\n\
     Referrer-Policy: no-referrer\r\n\
     X-Frame-Options: DENY\r\n";

/// The files of the chat page, embedded at build time.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_bytes!("../../web/index.html"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/app.js"),
    ),
    // app.js's ES modules (docs/web.md).
    (
        "/page.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/page.js"),
    ),
    (
        "/rooms.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/rooms.js"),
    ),
    (
        "/render.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/render.js"),
    ),
    (
        "/notify.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/notify.js"),
    ),
    (
        "/connection.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/connection.js"),
    ),
    (
        "/accounts.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/accounts.js"),
    ),
    (
        "/input.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/input.js"),
    ),
    (
        "/e2e.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../web/e2e.js"),
    ),
    (
        "/style.css",
        "text/css; charset=utf-8",
        include_bytes!("../../web/style.css"),
    ),
    (
        "/favicon.svg",
        "image/svg+xml",
        include_bytes!("../../web/favicon.svg"),
    ),
];

/// The answer to a web connection refused at accept (server full, or too
/// many connections from one address).
pub const UNAVAILABLE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n\
Content-Length: 20\r\nConnection: close\r\n\r\nserver is too busy\r\n";

/// The path that upgrades to a WebSocket.
pub const WS_PATH: &str = "/ws";

/// The parts of a request head the server looks at.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// The path, without its query string.
    pub path: String,
    /// The `Host` header.
    pub host: Option<String>,
    /// The `Origin` header.
    pub origin: Option<String>,
    /// `Upgrade` names `websocket`.
    pub upgrade_websocket: bool,
    /// `Connection` names `upgrade`.
    pub connection_upgrade: bool,
    /// `Sec-WebSocket-Key`.
    pub ws_key: Option<String>,
    /// `Sec-WebSocket-Version`.
    pub ws_version: Option<String>,
    /// `Sec-WebSocket-Protocol`: the subprotocols offered, in the client's
    /// order (several headers joined with `,`).
    pub ws_protocols: Option<String>,
}

/// What the head reader produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Head {
    /// A complete, well-formed request head.
    Request(Request),
    /// A head the server refuses with this status (400, 431).
    Refused(u16),
}

/// Collects one request head. Holds nothing until bytes arrive.
#[derive(Debug, Default)]
pub struct HeadReader {
    buf: Vec<u8>,
    /// The head was complete (or refused): later bytes are not parsed here.
    done: bool,
}

impl HeadReader {
    /// Feeds bytes; returns the head once it is complete or refused. Bytes
    /// after a complete head stay for [`take_rest`](Self::take_rest).
    pub fn feed(&mut self, input: &[u8]) -> Option<Head> {
        if self.done {
            self.buf.extend_from_slice(input);
            return None;
        }
        self.buf.extend_from_slice(input);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        let head = match request.parse(&self.buf) {
            Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD_BYTES => {
                let head = Head::Request(Request::from_parsed(&request));
                self.buf.drain(..len);
                head
            }
            Ok(httparse::Status::Complete(_)) => Head::Refused(431),
            Ok(httparse::Status::Partial) if self.buf.len() > MAX_HEAD_BYTES => Head::Refused(431),
            Ok(httparse::Status::Partial) => return None,
            Err(httparse::Error::TooManyHeaders) => Head::Refused(431),
            Err(_) => Head::Refused(400),
        };
        self.done = true;
        if matches!(head, Head::Refused(_)) {
            self.buf = Vec::new();
        }
        Some(head)
    }

    /// The bytes that came after the head (a client may send its first
    /// WebSocket frames right behind the upgrade request).
    pub fn take_rest(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    /// Heap bytes held.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

impl Request {
    fn from_parsed(parsed: &httparse::Request<'_, '_>) -> Request {
        let target = parsed.path.unwrap_or("");
        // An absolute-form target (`http://host/path`) names the same path.
        let target = match target.find("://") {
            Some(scheme_end) => {
                let after = &target[scheme_end + 3..];
                after.find('/').map_or("/", |at| &after[at..])
            }
            None => target,
        };
        let path = target.split(['?', '#']).next().unwrap_or("");
        let mut request = Request {
            method: parsed.method.unwrap_or("").to_string(),
            path: path.to_string(),
            ..Request::default()
        };
        for header in parsed.headers.iter() {
            let Ok(value) = std::str::from_utf8(header.value) else {
                continue;
            };
            let value = value.trim();
            let name = header.name;
            if name.eq_ignore_ascii_case("host") {
                request.host = Some(value.to_string());
            } else if name.eq_ignore_ascii_case("origin") {
                request.origin = Some(value.to_string());
            } else if name.eq_ignore_ascii_case("upgrade") {
                request.upgrade_websocket |= has_token(value, "websocket");
            } else if name.eq_ignore_ascii_case("connection") {
                request.connection_upgrade |= has_token(value, "upgrade");
            } else if name.eq_ignore_ascii_case("sec-websocket-key") {
                request.ws_key = Some(value.to_string());
            } else if name.eq_ignore_ascii_case("sec-websocket-version") {
                request.ws_version = Some(value.to_string());
            } else if name.eq_ignore_ascii_case("sec-websocket-protocol") {
                match &mut request.ws_protocols {
                    Some(offered) => {
                        offered.push(',');
                        offered.push_str(value);
                    }
                    None => request.ws_protocols = Some(value.to_string()),
                }
            }
        }
        request
    }
}

/// Whether a comma-separated header value lists `token`.
fn has_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|part| part.trim().eq_ignore_ascii_case(token))
}

/// What to do with a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// Send this response, then close.
    Respond(Vec<u8>),
    /// Send this `101` response and speak WebSocket from now on.
    Upgrade(Vec<u8>),
    /// Send this `101` response (it names the subprotocol) and speak IRC
    /// over WebSocket from now on.
    UpgradeIrc(Vec<u8>, Subprotocol),
}

impl Route {
    /// The response to send, whatever follows it.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Route::Respond(bytes) | Route::Upgrade(bytes) | Route::UpgradeIrc(bytes, _) => bytes,
        }
    }
}

/// The rules for the web address: which origins may open a WebSocket.
#[derive(Debug, Clone, Default)]
pub struct WebRules {
    /// Origins allowed besides the server's own, e.g. `https://chat.example`.
    pub allowed_origins: Vec<String>,
    /// The web address speaks TLS, so the own origin is `https://HOST`.
    pub tls: bool,
    /// IRC is served: an upgrade on `/` or [`WS_PATH`] offering the
    /// `text.ircv3.net` or `binary.ircv3.net` subprotocol speaks IRC.
    pub irc: bool,
}

impl WebRules {
    /// Decides a request: the page, the upgrade, or an error. An answer to
    /// `HEAD` has the headers of the answer to `GET` and no body (RFC 9110
    /// §9.3.2), errors included.
    pub fn route(&self, request: &Request) -> Route {
        match self.route_get(request) {
            Route::Respond(mut response) if request.method == "HEAD" => {
                if let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") {
                    response.truncate(end + 4);
                }
                Route::Respond(response)
            }
            route => route,
        }
    }

    /// [`WebRules::route`], bodies included.
    fn route_get(&self, request: &Request) -> Route {
        let head_only = request.method == "HEAD";
        if request.path == WS_PATH || (request.path == "/" && self.irc_offered(request).is_some()) {
            return self.upgrade(request);
        }
        let Some(&(_, content_type, body)) =
            ASSETS.iter().find(|(path, _, _)| *path == request.path)
        else {
            return Route::Respond(error(404, "Not Found", "no such page", ""));
        };
        if request.method != "GET" && !head_only {
            return Route::Respond(error(
                405,
                "Method Not Allowed",
                "use GET",
                "Allow: GET, HEAD\r\n",
            ));
        }
        let mut response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
             Cache-Control: no-cache\r\n{SECURITY_HEADERS}Connection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        response.extend_from_slice(body);
        Route::Respond(response)
    }

    fn upgrade(&self, request: &Request) -> Route {
        if request.method != "GET" {
            return Route::Respond(error(
                405,
                "Method Not Allowed",
                "use GET",
                "Allow: GET\r\n",
            ));
        }
        if !request.upgrade_websocket || !request.connection_upgrade {
            return Route::Respond(error(
                426,
                "Upgrade Required",
                "this address speaks WebSocket",
                "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n",
            ));
        }
        if request.ws_version.as_deref() != Some("13") {
            return Route::Respond(error(
                426,
                "Upgrade Required",
                "WebSocket version 13 only",
                "Sec-WebSocket-Version: 13\r\n",
            ));
        }
        let Some(key) = request.ws_key.as_deref().filter(|key| key.len() == 24) else {
            return Route::Respond(error(400, "Bad Request", "bad Sec-WebSocket-Key", ""));
        };
        let Some(host) = request.host.as_deref() else {
            return Route::Respond(error(400, "Bad Request", "no Host header", ""));
        };
        if let Some(origin) = request.origin.as_deref() {
            if !self.origin_allowed(origin, host) {
                return Route::Respond(error(403, "Forbidden", "origin not allowed", ""));
            }
        }
        let irc = self.irc_offered(request);
        let protocol_header = irc.map_or(String::new(), |irc| {
            format!("Sec-WebSocket-Protocol: {}\r\n", irc.name())
        });
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n{protocol_header}\r\n",
            derive_accept_key(key.as_bytes())
        )
        .into_bytes();
        match irc {
            Some(irc) => Route::UpgradeIrc(response, irc),
            None => Route::Upgrade(response),
        }
    }

    /// The IRC subprotocol an upgrade request offers first, when IRC is
    /// served and the request is an upgrade.
    fn irc_offered(&self, request: &Request) -> Option<Subprotocol> {
        if !self.irc || !request.upgrade_websocket {
            return None;
        }
        choose_subprotocol(request.ws_protocols.as_deref()?)
    }

    /// The server's own origin (`http://` + `Host`, `https://` on TLS) or
    /// one the operator allowed; `null` never.
    fn origin_allowed(&self, origin: &str, host: &str) -> bool {
        if origin.eq_ignore_ascii_case("null") {
            return false;
        }
        let scheme = if self.tls { "https://" } else { "http://" };
        // `get`, not indexing: a multi-byte character may straddle the
        // scheme's end (a fuzzing finding, docs/fuzzing.md).
        let own = origin.len() == scheme.len() + host.len()
            && origin
                .get(..scheme.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(scheme))
            && origin
                .get(scheme.len()..)
                .is_some_and(|rest| rest.eq_ignore_ascii_case(host));
        own || self
            .allowed_origins
            .iter()
            .any(|allowed| allowed.trim_end_matches('/').eq_ignore_ascii_case(origin))
    }
}

/// A refused head (`400`, `431`) as a response.
pub fn refusal(status: u16) -> Vec<u8> {
    match status {
        431 => error(
            431,
            "Request Header Fields Too Large",
            "request head too large",
            "",
        ),
        _ => error(400, "Bad Request", "malformed request", ""),
    }
}

/// A short plain-text error response that closes the connection.
fn error(status: u16, reason: &str, text: &str, extra_headers: &str) -> Vec<u8> {
    let body = format!("{status} {reason}: {text}\n");
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\n{extra_headers}{SECURITY_HEADERS}Connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page tells a `:me` action from the server's own `* ` lines by
    /// the first word, with its own copy of the server's words (JavaScript
    /// cannot use the Rust recogniser). The copy is kept by this test, not
    /// served: the page stays static and needs no extra request. It must
    /// be exactly [`crate::protocol::RESERVED_NICKS`], which the protocol's
    /// tests hold to the words the renderer writes.
    #[test]
    fn the_pages_server_words_are_the_reserved_nicks() {
        let page = include_str!("../../web/page.js");
        let start = page
            .find("const SERVER_WORDS = new Set([")
            .expect("page.js defines SERVER_WORDS");
        let list = &page[start..];
        let list = &list[list.find('[').unwrap() + 1..list.find(']').unwrap()];
        let mut words: Vec<&str> = list
            .split(',')
            .map(|word| word.trim().trim_matches('"'))
            .filter(|word| !word.is_empty())
            .collect();
        words.sort_unstable();
        let mut reserved = crate::protocol::RESERVED_NICKS.to_vec();
        reserved.sort_unstable();
        assert_eq!(words, reserved, "SERVER_WORDS in web/page.js");
    }

    fn parse(text: &str) -> Option<Head> {
        HeadReader::default().feed(text.as_bytes())
    }

    fn status(route: &Route) -> String {
        let bytes = match route {
            Route::Respond(bytes) | Route::Upgrade(bytes) | Route::UpgradeIrc(bytes, _) => bytes,
        };
        String::from_utf8_lossy(&bytes[9..12]).into_owned()
    }

    #[test]
    fn an_upgrade_offering_an_irc_subprotocol_speaks_irc_in_the_clients_order() {
        let irc = WebRules {
            irc: true,
            ..WebRules::default()
        };
        let offer = |path: &str, protocols: &[&str]| {
            let mut text = format!(
                "GET {path} HTTP/1.1\r\nHost: chat.example\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                 Sec-WebSocket-Version: 13\r\n"
            );
            for value in protocols {
                text.push_str(&format!("Sec-WebSocket-Protocol: {value}\r\n"));
            }
            text.push_str("\r\n");
            let Some(Head::Request(request)) = parse(&text) else {
                panic!("{text}")
            };
            request
        };
        let cases: [(&str, &[&str], Subprotocol); 5] = [
            ("/", &["text.ircv3.net"], Subprotocol::Text),
            ("/ws", &["binary.ircv3.net"], Subprotocol::Binary),
            (
                "/",
                &["binary.ircv3.net, text.ircv3.net"],
                Subprotocol::Binary,
            ),
            (
                "/ws",
                &["text.ircv3.net, binary.ircv3.net"],
                Subprotocol::Text,
            ),
            (
                "/ws",
                &["chat", "binary.ircv3.net", "text.ircv3.net"],
                Subprotocol::Binary,
            ),
        ];
        for (path, protocols, want) in cases {
            let request = offer(path, protocols);
            let Route::UpgradeIrc(bytes, chosen) = irc.route(&request) else {
                panic!("{path} {protocols:?}: not IRC")
            };
            assert_eq!(chosen, want, "{path} {protocols:?}");
            let text = String::from_utf8(bytes).unwrap();
            assert!(text.starts_with("HTTP/1.1 101 "), "{text}");
            let header = format!("\r\nSec-WebSocket-Protocol: {}\r\n", want.name());
            assert!(text.contains(&header), "{text}");
        }
        // No IRC offered: the line protocol on /ws, the page on /.
        let plain = irc.route(&offer("/ws", &["chat"]));
        let Route::Upgrade(bytes) = plain else {
            panic!("{plain:?}")
        };
        assert!(!String::from_utf8(bytes)
            .unwrap()
            .contains("Sec-WebSocket-Protocol"));
        assert_eq!(status(&irc.route(&offer("/", &[]))), "200");
        // IRC not served: an IRC offer gets the line protocol, no subprotocol.
        let off = WebRules::default().route(&offer("/ws", &["text.ircv3.net"]));
        assert!(matches!(off, Route::Upgrade(_)), "{off:?}");
        assert_eq!(
            status(&WebRules::default().route(&offer("/", &["text.ircv3.net"]))),
            "200"
        );
    }

    fn upgrade_request(origin: Option<&str>) -> Request {
        Request {
            method: "GET".into(),
            path: "/ws".into(),
            host: Some("Chat.Example:7879".into()),
            origin: origin.map(str::to_string),
            upgrade_websocket: true,
            connection_upgrade: true,
            ws_key: Some("dGhlIHNhbXBsZSBub25jZQ==".into()),
            ws_version: Some("13".into()),
            ws_protocols: None,
        }
    }

    #[test]
    fn parses_a_head_in_pieces() {
        let mut reader = HeadReader::default();
        assert_eq!(reader.feed(b"GET /ws?x=1 HTTP/1.1\r\nHost: a\r\n"), None);
        let head = reader
            .feed(b"Connection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\n\r\n\x81")
            .unwrap();
        let Head::Request(request) = head else {
            panic!("{head:?}")
        };
        assert_eq!(request.path, "/ws");
        assert!(request.upgrade_websocket && request.connection_upgrade);
        assert_eq!(reader.take_rest(), b"\x81");
    }

    #[test]
    fn oversized_and_malformed_heads_are_refused() {
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(MAX_HEAD_BYTES));
        assert_eq!(parse(&big), Some(Head::Refused(431)));
        assert_eq!(
            parse("GET / HTTP/1.1\r\nbad header\r\n\r\n"),
            Some(Head::Refused(400))
        );
    }

    #[test]
    fn origin_rule() {
        let rules = WebRules {
            allowed_origins: vec!["https://friend.example".into()],
            tls: false,
            irc: false,
        };
        let accept = "HTTP/1.1 101";
        for (origin, allowed) in [
            (None, true),
            (Some("http://chat.example:7879"), true),
            (Some("HTTP://CHAT.EXAMPLE:7879"), true),
            (Some("https://chat.example:7879"), false),
            (Some("http://chat.example"), false),
            (Some("https://friend.example"), true),
            (Some("null"), false),
            (Some("http://evil.example"), false),
        ] {
            let route = rules.route(&upgrade_request(origin));
            let shown = status(&route);
            assert_eq!(
                route.into_bytes().starts_with(accept.as_bytes()),
                allowed,
                "{origin:?}: {shown}"
            );
        }
    }

    /// Fuzzing finding (docs/fuzzing.md): an Origin as long as the own
    /// origin with a two-byte character across the end of `http://` made
    /// the origin check slice inside the character and panic, which took
    /// the whole server down.
    #[test]
    fn origin_with_a_character_across_the_scheme_end_is_refused() {
        let rules = WebRules::default();
        let mut request = upgrade_request(Some("http:/\u{460}hat.example:7879"));
        let host = request.host.clone().unwrap();
        assert_eq!(
            request.origin.as_ref().unwrap().len(),
            "http://".len() + host.len()
        );
        let Route::Respond(bytes) = rules.route(&request) else {
            panic!("upgraded")
        };
        assert!(bytes.starts_with(b"HTTP/1.1 403 "));
        request.origin = Some("https:/\u{460}hat.example:7879".into());
        let tls = WebRules {
            tls: true,
            ..WebRules::default()
        };
        assert!(matches!(tls.route(&request), Route::Respond(_)));
    }

    #[test]
    fn accept_key_of_rfc_6455() {
        let Route::Upgrade(bytes) = WebRules::default().route(&upgrade_request(None)) else {
            panic!("no upgrade")
        };
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    }

    /// Fuzzing finding (docs/fuzzing.md): `HEAD` to a missing page got the
    /// error's body after its headers; an answer to `HEAD` has none.
    #[test]
    fn head_answers_have_no_body() {
        let rules = WebRules::default();
        for path in ["/", "/app.js", "/nope"] {
            let get = Request {
                method: "GET".into(),
                path: path.into(),
                ..Request::default()
            };
            let head = Request {
                method: "HEAD".into(),
                ..get.clone()
            };
            let get = rules.route(&get).into_bytes();
            let head = rules.route(&head).into_bytes();
            let text = String::from_utf8(head).unwrap();
            assert!(text.ends_with("\r\n\r\n"), "{path}: {text:?}");
            let length = text
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .unwrap();
            let get_head_len = get.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            assert_eq!(
                length.parse::<usize>().unwrap(),
                get.len() - get_head_len,
                "{path}"
            );
        }
        let head_ws = Request {
            method: "HEAD".into(),
            path: "/ws".into(),
            ..Request::default()
        };
        let bytes = rules.route(&head_ws).into_bytes();
        assert!(bytes.starts_with(b"HTTP/1.1 405 ") && bytes.ends_with(b"\r\n\r\n"));
    }

    #[test]
    fn statuses() {
        let rules = WebRules::default();
        let request = |method: &str, path: &str| Request {
            method: method.into(),
            path: path.into(),
            ..Request::default()
        };
        assert_eq!(status(&rules.route(&request("GET", "/"))), "200");
        assert_eq!(status(&rules.route(&request("HEAD", "/app.js"))), "200");
        assert_eq!(status(&rules.route(&request("POST", "/"))), "405");
        assert_eq!(status(&rules.route(&request("HEAD", "/ws"))), "405");
        assert_eq!(status(&rules.route(&request("GET", "/nope"))), "404");
        assert_eq!(status(&rules.route(&request("DELETE", "/nope"))), "404");
        assert_eq!(status(&rules.route(&request("GET", "/ws"))), "426");
    }
}
