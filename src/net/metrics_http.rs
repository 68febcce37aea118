//! The `/metrics` endpoint: a few short HTTP/1.1 exchanges on connections
//! the loop accepts on its metrics listener, driven by the event loop like
//! any other socket, no thread.
//!
//! One request per connection, answered with `Connection: close`:
//! `GET /metrics` (or `HEAD`) gets the metrics, any other path `404`, any
//! other method on `/metrics` `405`. The request is parsed with `httparse`
//! and bounded in size ([`MAX_REQUEST_BYTES`]), in time (the server's close
//! timeout, from accept to the last byte) and in number
//! ([`MAX_SCRAPES`] at once; more are closed at once). Nothing here blocks:
//! a scraper that stops reading or never finishes its request only holds
//! its own connection until its deadline.
//!
//! This is deliberately the smallest HTTP server that serves a scrape; it
//! shares no state with the chat and can move onto a shared HTTP module
//! without changing the loop's hooks.

use log::debug;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use slab::Slab;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

/// Largest request accepted (request line and headers); past it, `431`.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// Scrape connections served at once; more are closed on accept.
pub const MAX_SCRAPES: usize = 16;
/// Bytes read from one scrape connection per event once its request is in
/// (the rest of a request body, or garbage) before it is closed anyway.
const DRAIN_BYTES: usize = 64 * 1024;

/// The open scrape connections.
pub struct Endpoint {
    /// Scrape `k` has token `first_scrape + k`.
    first_scrape: usize,
    scrapes: Slab<Scrape>,
    timeout: Duration,
}

/// One scrape connection.
struct Scrape {
    socket: TcpStream,
    /// The request read so far.
    request: Vec<u8>,
    /// The response, and how much of it the socket has taken.
    response: Vec<u8>,
    sent: usize,
    state: State,
    /// When it is closed whatever state it is in.
    deadline: Instant,
    wants_writable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the request.
    Reading,
    /// Writing the response.
    Writing,
    /// Response written and write side shut down; reading until the
    /// scraper closes, so our close cannot reset the connection before it
    /// has read everything.
    Draining,
    /// Finished: removed before the call returns.
    Done,
}

/// What a request asked for.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Metrics { head: bool },
    Error(u16, &'static str),
}

impl Endpoint {
    /// No scrapes yet: scrape connections use tokens from `first_scrape`
    /// to `first_scrape + MAX_SCRAPES - 1`. A scrape may take `timeout`
    /// from accept to its last byte.
    pub fn new(first_scrape: usize, timeout: Duration) -> Endpoint {
        Endpoint {
            first_scrape,
            scrapes: Slab::with_capacity(MAX_SCRAPES),
            timeout,
        }
    }

    /// Takes a scraper the loop accepted on the metrics listener; closed at
    /// once when [`MAX_SCRAPES`] are already open.
    pub fn admit(
        &mut self,
        mut socket: TcpStream,
        peer: SocketAddr,
        registry: &Registry,
        now: Instant,
    ) {
        if self.scrapes.len() >= MAX_SCRAPES {
            debug!("metrics: {peer}: closed, {MAX_SCRAPES} scrapes already open");
            return;
        }
        let entry = self.scrapes.vacant_entry();
        let token = Token(self.first_scrape + entry.key());
        if let Err(err) = registry.register(&mut socket, token, Interest::READABLE) {
            debug!("metrics: {peer}: cannot register: {err}");
            return;
        }
        entry.insert(Scrape {
            socket,
            request: Vec::new(),
            response: Vec::new(),
            sent: 0,
            state: State::Reading,
            deadline: now + self.timeout,
            wants_writable: false,
        });
    }

    /// Serves a readiness event on a scrape connection. `render` produces
    /// the metrics text; it is called only for a complete `GET` or `HEAD`
    /// of `/metrics`.
    pub fn ready(&mut self, token: Token, registry: &Registry, render: impl FnOnce() -> String) {
        let key = token.0 - self.first_scrape;
        let Some(scrape) = self.scrapes.get_mut(key) else {
            return;
        };
        if scrape.state == State::Reading {
            scrape.read_request(render);
        }
        if scrape.state == State::Writing {
            scrape.write_response();
        }
        if scrape.state == State::Draining {
            scrape.drain();
        }
        if scrape.state == State::Done {
            self.close(key, registry);
            return;
        }
        let wants_writable = scrape.state == State::Writing;
        if scrape.wants_writable != wants_writable {
            scrape.wants_writable = wants_writable;
            let interest = if wants_writable {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if registry
                .reregister(&mut scrape.socket, token, interest)
                .is_err()
            {
                self.close(key, registry);
            }
        }
    }

    /// Closes the scrape connections past their deadline. Returns the
    /// earliest deadline still pending.
    pub fn expire(&mut self, registry: &Registry, now: Instant) -> Option<Instant> {
        let expired: Vec<usize> = self
            .scrapes
            .iter()
            .filter(|(_, scrape)| now >= scrape.deadline)
            .map(|(key, _)| key)
            .collect();
        for key in expired {
            debug!("metrics: scrape closed at its deadline");
            self.close(key, registry);
        }
        self.scrapes.iter().map(|(_, scrape)| scrape.deadline).min()
    }

    fn close(&mut self, key: usize, registry: &Registry) {
        let mut scrape = self.scrapes.remove(key);
        let _ = registry.deregister(&mut scrape.socket);
    }
}

impl Scrape {
    fn read_request(&mut self, render: impl FnOnce() -> String) {
        let mut chunk = [0u8; 2048];
        loop {
            match self.socket.read(&mut chunk) {
                Ok(0) => {
                    self.state = State::Done;
                    return;
                }
                Ok(n) => {
                    let room = MAX_REQUEST_BYTES + 1 - self.request.len();
                    self.request.extend_from_slice(&chunk[..n.min(room)]);
                    match route(&self.request) {
                        Some(Route::Metrics { head }) => {
                            let body = render();
                            self.respond(
                                200,
                                "text/plain; version=0.0.4; charset=utf-8",
                                &body,
                                head,
                            );
                            return;
                        }
                        Some(Route::Error(status, message)) => {
                            self.respond(status, "text/plain; charset=utf-8", message, false);
                            return;
                        }
                        None => {}
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.state = State::Done;
                    return;
                }
            }
        }
    }

    fn respond(&mut self, status: u16, content_type: &str, body: &str, head: bool) {
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            431 => "Request Header Fields Too Large",
            _ => "Error",
        };
        let allow = if status == 405 {
            "Allow: GET, HEAD\r\n"
        } else {
            ""
        };
        self.response = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\n{allow}Cache-Control: no-store\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        if !head {
            self.response.extend_from_slice(body.as_bytes());
        }
        self.request = Vec::new();
        self.state = State::Writing;
    }

    fn write_response(&mut self) {
        while self.sent < self.response.len() {
            match self.socket.write(&self.response[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.state = State::Done;
                    return;
                }
            }
        }
        self.response = Vec::new();
        let _ = self.socket.shutdown(Shutdown::Write);
        self.state = State::Draining;
    }

    fn drain(&mut self) {
        let mut chunk = [0u8; 2048];
        let mut budget = DRAIN_BYTES;
        while budget > 0 {
            match self.socket.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => budget = budget.saturating_sub(n),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.state = State::Done;
    }
}

/// Parses the request read so far: `None` while it is incomplete.
fn route(request: &[u8]) -> Option<Route> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(request) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) if request.len() > MAX_REQUEST_BYTES => {
            return Some(Route::Error(431, "request too large\n"));
        }
        Ok(httparse::Status::Partial) => return None,
        Err(httparse::Error::TooManyHeaders) => {
            return Some(Route::Error(431, "too many headers\n"))
        }
        Err(_) => return Some(Route::Error(400, "bad request\n")),
    }
    let path = parsed.path.unwrap_or_default();
    let path = path.split_once('?').map_or(path, |(path, _query)| path);
    if path != "/metrics" {
        return Some(Route::Error(404, "not found: try /metrics\n"));
    }
    match parsed.method.unwrap_or_default() {
        "GET" => Some(Route::Metrics { head: false }),
        "HEAD" => Some(Route::Metrics { head: true }),
        _ => Some(Route::Error(405, "method not allowed\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let get = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(route(get), Some(Route::Metrics { head: false }));
        assert_eq!(route(&get[..20]), None);
        assert_eq!(
            route(b"HEAD /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Some(Route::Metrics { head: true })
        );
        assert!(matches!(
            route(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Some(Route::Error(405, _))
        ));
        assert!(matches!(
            route(b"GET / HTTP/1.1\r\n\r\n"),
            Some(Route::Error(404, _))
        ));
        assert!(matches!(
            route(b"\x00\x01 nonsense\r\n\r\n"),
            Some(Route::Error(400, _))
        ));
        let mut huge = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        huge.resize(MAX_REQUEST_BYTES + 1, b'a');
        assert!(matches!(route(&huge), Some(Route::Error(431, _))));
    }
}
