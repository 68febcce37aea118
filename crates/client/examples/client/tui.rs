//! Full-screen mode: the terminal, the keys and the event loop.
//!
//! Three threads feed one channel: the network thread ([`crate::net`]), a
//! thread blocked in crossterm's `event::read` (keys, mouse, paste, resize),
//! and the main thread's own tick for timers. The main thread owns the
//! [`State`], the [`Editor`] and the screen, so an incoming line only ever
//! redraws the pane; the input line is a separate widget it never touches.
//!
//! The terminal is restored (raw mode off, main screen back, mouse released,
//! cursor shown) on every way out: `:quit`, Ctrl-C, Ctrl-D on an empty line,
//! the server going away with `--no-reconnect`, SIGTERM/SIGHUP/SIGINT, an
//! error, and a panic (a panic hook restores it before the message prints).

use std::io::{self, Stdout, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Once};
use std::thread;
use std::time::{Duration, Instant};

use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{
    self, DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEventKind,
};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::Terminal;

use crate::editor::Editor;
use crate::net::{self, Connection, Net, NetEvent};
use crate::secure::Secure;
use crate::state::{Link, State};
use crate::{is_quit_command, ui, Options, KEEPALIVE_PING};

/// How often the loop wakes without an event (timers, the reconnect
/// countdown, signals).
const TICK: Duration = Duration::from_millis(250);
/// How often the room list is refreshed with `:rooms`. (Not `:users`: in a
/// room of thousands its answer is large, and joins, leaves and renames keep
/// the user list current anyway.)
const REFRESH: Duration = Duration::from_secs(30);
/// How long `:quit` waits for `* bye`.
const BYE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a last `:quit` may take to leave on Ctrl-C.
const CLOSE_WAIT: Duration = Duration::from_millis(500);
/// Longest time events are handled without a redraw.
const DRAIN_LIMIT: Duration = Duration::from_millis(50);
/// Rows the mouse wheel scrolls per step.
const WHEEL_ROWS: usize = 3;

const EXIT_OK: u8 = 0;
const EXIT_DISCONNECTED: u8 = 1;

enum Event {
    Net(NetEvent),
    Term(TermEvent),
    TermGone(io::Error),
}

/// Runs the full-screen client on an established connection; returns the
/// exit status once the screen is restored.
pub fn run(options: Options, connection: Connection) -> u8 {
    let (tx, rx) = mpsc::channel();
    let net_tx = tx.clone();
    let server = connection.peer.clone();
    let reconnect = options.reconnect.then(|| options.addr.clone());
    let net = match net::spawn(connection, reconnect, move |event| {
        net_tx.send(Event::Net(event)).is_ok()
    }) {
        Ok(net) => net,
        Err(e) => {
            let _ = writeln!(io::stderr(), "cannot start the client's threads: {e}");
            return EXIT_DISCONNECTED;
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGINT,
    ] {
        // The first signal asks the loop to restore the terminal and leave;
        // a second one, should the loop be stuck, ends the process at once.
        // Without the handlers the default action still ends the process
        // (only the restore is lost), so a failure is not fatal.
        let _ = signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&stop));
        let _ = signal_hook::flag::register(signal, Arc::clone(&stop));
    }

    let mut screen = match Screen::enter(options.mouse) {
        Ok(screen) => screen,
        Err(e) => {
            restore();
            let _ = writeln!(
                io::stderr(),
                "cannot open the full screen: {e}; try --plain"
            );
            return EXIT_DISCONNECTED;
        }
    };
    // Not joined: it sits in a blocking read until the process ends.
    let spawned = thread::Builder::new()
        .name("terminal-input".into())
        .spawn(move || loop {
            let event = match event::read() {
                Ok(event) => Event::Term(event),
                Err(e) => {
                    let _ = tx.send(Event::TermGone(e));
                    return;
                }
            };
            if tx.send(event).is_err() {
                return;
            }
        });
    if let Err(e) = spawned {
        drop(screen);
        let _ = writeln!(io::stderr(), "cannot start the client's threads: {e}");
        return EXIT_DISCONNECTED;
    }

    let mut state = State::new(
        server.clone(),
        options.nick,
        options.password,
        Secure::new(options.e2e_dir.clone(), options.server_name.clone()),
    );
    state.token_path = crate::state::token_path(&options.addr);
    let mut app = App {
        state,
        editor: Editor::default(),
        net,
        reconnect: options.reconnect,
        keepalive: options.keepalive,
        last_sent: Instant::now(),
        refreshed: Instant::now(),
        quitting: None,
        exit: None,
        farewell: None,
        dirty: true,
    };
    app.state.notice(format!(
        "connected to {server}; type :help for commands, :quit or Ctrl-C to leave"
    ));
    loop {
        if app.dirty {
            app.dirty = false;
            if let Err(e) = screen.draw(&mut app) {
                app.leave(
                    EXIT_DISCONNECTED,
                    Some(format!("cannot draw the screen: {e}")),
                );
            }
        }
        if let Some(code) = app.exit {
            drop(screen);
            if let Some(message) = app.farewell {
                let _ = writeln!(io::stderr(), "{message}");
            }
            return code;
        }
        match rx.recv_timeout(TICK) {
            Ok(event) => {
                app.handle(event, &mut screen);
                // Take what is already waiting before drawing once, but
                // draw at least every DRAIN_LIMIT under a flood.
                let until = Instant::now() + DRAIN_LIMIT;
                while app.exit.is_none() && Instant::now() < until {
                    match rx.try_recv() {
                        Ok(event) => app.handle(event, &mut screen),
                        Err(_) => break,
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                app.leave(
                    EXIT_DISCONNECTED,
                    Some(format!("* disconnected from {server}")),
                );
            }
        }
        if stop.load(Ordering::Relaxed) {
            app.quit_now(EXIT_DISCONNECTED);
        }
        app.tick();
    }
}

/// Whether the terminal is in full-screen mode (so [`restore`] has work).
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Puts the terminal back as we found it. Only the first call after
/// entering does anything: leaving the alternate screen twice would move
/// the cursor back over whatever was printed in between (a panic message).
fn restore() {
    if !ACTIVE.swap(false, Ordering::SeqCst) {
        return;
    }
    let _ = disable_raw_mode();
    let _ = execute!(
        io::stdout(),
        DisableMouseCapture,
        DisableBracketedPaste,
        LeaveAlternateScreen,
        ratatui::crossterm::cursor::Show
    );
}

/// The terminal in full-screen mode; dropping it restores the terminal.
struct Screen {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Screen {
    fn enter(mouse: bool) -> io::Result<Screen> {
        static HOOK: Once = Once::new();
        HOOK.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore();
                previous(info);
                // A panic on any thread ends the client: the screen is gone,
                // and a half-working client would only confuse.
                std::process::exit(101);
            }));
        });
        ACTIVE.store(true, Ordering::SeqCst);
        enable_raw_mode()?;
        let mut out = io::stdout();
        execute!(out, EnterAlternateScreen, EnableBracketedPaste)?;
        if mouse {
            execute!(out, EnableMouseCapture)?;
        }
        let terminal = Terminal::new(CrosstermBackend::new(out))?;
        Ok(Screen { terminal })
    }

    fn draw(&mut self, app: &mut App) -> io::Result<()> {
        self.terminal
            .draw(|frame| ui::draw(frame, &mut app.state, &app.editor))?;
        Ok(())
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

struct App {
    state: State,
    editor: Editor,
    net: Net,
    reconnect: bool,
    keepalive: Option<Duration>,
    last_sent: Instant,
    refreshed: Instant,
    /// We sent `:quit`: leave at `* bye`, the close, or this deadline.
    quitting: Option<Instant>,
    /// Set when the loop should restore the screen and exit.
    exit: Option<u8>,
    /// Said on stderr once the screen is restored.
    farewell: Option<String>,
    dirty: bool,
}

impl App {
    fn leave(&mut self, code: u8, farewell: Option<String>) {
        if self.exit.is_none() {
            self.exit = Some(code);
            self.farewell = farewell;
        }
    }

    fn send(&mut self, line: &str) {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.net.send(bytes);
        self.last_sent = Instant::now();
    }

    fn connected(&self) -> bool {
        self.state.link == Link::Connected
    }

    /// Ctrl-C, Ctrl-D, a signal: say goodbye if we can and leave now.
    fn quit_now(&mut self, code: u8) {
        if self.connected() && self.quitting.is_none() {
            self.send(":quit");
        }
        self.net.close(CLOSE_WAIT);
        self.leave(code, None);
    }

    fn handle(&mut self, event: Event, screen: &mut Screen) {
        self.dirty = true;
        match event {
            Event::Net(event) => self.on_net(event),
            Event::Term(TermEvent::Key(key)) => self.on_key(key, screen),
            Event::Term(TermEvent::Mouse(mouse)) => match mouse.kind {
                MouseEventKind::ScrollUp => self.state.scroll += WHEEL_ROWS,
                MouseEventKind::ScrollDown => {
                    self.state.scroll = self.state.scroll.saturating_sub(WHEEL_ROWS);
                }
                _ => self.dirty = false,
            },
            Event::Term(TermEvent::Paste(text)) => self.editor.insert_str(&text),
            // Resize: ratatui sizes the next frame to the new screen.
            Event::Term(_) => {}
            Event::TermGone(e) => {
                self.quit_now(EXIT_DISCONNECTED);
                self.farewell = Some(format!("the terminal went away: {e}"));
            }
        }
    }

    fn on_net(&mut self, event: NetEvent) {
        match event {
            NetEvent::Line { bytes, .. } => {
                if self.quitting.is_some() && bytes == b"* bye" {
                    self.leave(EXIT_OK, None);
                    return;
                }
                for line in self.state.on_line(&bytes) {
                    self.send(&line);
                }
                // One bell per line naming us.
                while self.state.bells > 0 {
                    self.state.bells -= 1;
                    let mut out = io::stdout();
                    let _ = out.write_all(b"\x07").and_then(|()| out.flush());
                }
            }
            NetEvent::Closed(error) => {
                self.state.disconnected();
                self.state.link = Link::Lost;
                let why = error.map(|e| format!(" ({e})")).unwrap_or_default();
                if self.quitting.is_some() {
                    self.leave(EXIT_OK, None);
                } else if !self.reconnect {
                    let mut farewell = format!("* disconnected from {}{why}", self.state.server);
                    if let Some(error) = self.state.last_error() {
                        farewell.push_str(&format!(": {error}"));
                    }
                    self.leave(EXIT_DISCONNECTED, Some(farewell));
                } else {
                    self.state.notice(format!("connection lost{why}"));
                }
            }
            NetEvent::Retrying { attempt, delay } => {
                self.state.link = Link::Retrying {
                    attempt,
                    at: Instant::now() + delay,
                };
            }
            NetEvent::Connected(peer) => {
                self.state.link = Link::Connected;
                self.state.notice(format!("connected to {peer} again"));
                self.state.server = peer;
                self.last_sent = Instant::now();
                self.refreshed = Instant::now();
            }
        }
    }

    fn on_key(&mut self, key: KeyEvent, screen: &mut Screen) {
        if key.kind == KeyEventKind::Release {
            self.dirty = false;
            return;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        let page = self.state.pane_height.saturating_sub(1).max(1);
        let e = &mut self.editor;
        match key.code {
            KeyCode::Char('c') if ctrl => self.quit_now(EXIT_OK),
            KeyCode::Char('d') if ctrl => {
                if e.is_empty() {
                    self.quit_now(EXIT_OK);
                } else {
                    e.delete();
                }
            }
            KeyCode::Char('a') if ctrl => e.home(),
            KeyCode::Char('e') if ctrl => e.end(),
            KeyCode::Char('b') if ctrl => e.left(),
            KeyCode::Char('f') if ctrl => e.right(),
            KeyCode::Char('b') if alt => e.word_left(),
            KeyCode::Char('f') if alt => e.word_right(),
            KeyCode::Char('w') if ctrl => e.delete_word(),
            KeyCode::Char('h') if ctrl => e.backspace(),
            KeyCode::Char('u') if ctrl => e.kill_to_start(),
            KeyCode::Char('k') if ctrl => e.kill_to_end(),
            KeyCode::Char('p') if ctrl => e.history_up(),
            KeyCode::Char('n') if ctrl => e.history_down(),
            KeyCode::Char('l') if ctrl => {
                let _ = screen.terminal.clear();
            }
            // Alt-1…9: the Nth room or conversation of the list; Alt-0 the
            // server's buffer.
            KeyCode::Char(c @ '0'..='9') if alt && !ctrl => {
                let n = c as usize - '0' as usize;
                let index = match n {
                    0 => Some(0),
                    n => self.state.listed().get(n - 1).copied(),
                };
                if let Some(index) = index {
                    for line in self.state.switch_to(index) {
                        self.send(&line);
                    }
                }
            }
            KeyCode::Char(_) if ctrl || alt => self.dirty = false,
            KeyCode::Char(c) => e.insert(c),
            KeyCode::Backspace => e.backspace(),
            KeyCode::Delete => e.delete(),
            KeyCode::Left if ctrl || alt => e.word_left(),
            KeyCode::Right if ctrl || alt => e.word_right(),
            KeyCode::Left => e.left(),
            KeyCode::Right => e.right(),
            KeyCode::Home => e.home(),
            KeyCode::End if ctrl => self.state.scroll = 0,
            KeyCode::End => e.end(),
            KeyCode::Up => e.history_up(),
            KeyCode::Down => e.history_down(),
            KeyCode::Tab => {
                let rooms: Vec<String> = self.state.rooms.iter().map(|(r, _)| r.clone()).collect();
                e.complete(&self.state.nicks(), &rooms);
            }
            KeyCode::PageUp => self.state.scroll += page,
            KeyCode::PageDown => self.state.scroll = self.state.scroll.saturating_sub(page),
            KeyCode::Esc => self.state.scroll = 0,
            KeyCode::Enter => self.submit(),
            _ => self.dirty = false,
        }
    }

    fn submit(&mut self) {
        let line = self.editor.submit();
        if line.is_empty() {
            return;
        }
        // Debug builds only: lets tests/tui.rs check that a panic restores
        // the terminal.
        #[cfg(debug_assertions)]
        if std::env::var("LOOPCHAT_CLIENT_PANIC_ON").is_ok_and(|p| p == line) {
            panic!("panic requested with LOOPCHAT_CLIENT_PANIC_ON");
        }
        self.state.scroll = 0;
        // `/quit`, `/me waves`: commands typed as in IRC.
        let line = crate::state::slash_command(&line).unwrap_or(line);
        if is_quit_command(line.as_bytes()) {
            if self.connected() {
                self.send(&line);
                self.quitting = Some(Instant::now() + BYE_TIMEOUT);
            } else {
                self.leave(EXIT_OK, None);
            }
            return;
        }
        if !self.connected() {
            self.state
                .notice("not connected: the line was not sent (it is back in the input line)");
            self.editor.insert_str(&line);
            return;
        }
        for out in self.state.on_input(&line) {
            self.send(&out);
        }
    }

    /// Timers: the `:quit` deadline, keepalive, the list refresh, the
    /// reconnect countdown.
    fn tick(&mut self) {
        let now = Instant::now();
        if self.quitting.is_some_and(|deadline| now >= deadline) {
            self.net.close(CLOSE_WAIT);
            self.leave(EXIT_DISCONNECTED, None);
        }
        if matches!(self.state.link, Link::Retrying { .. }) {
            self.dirty = true;
        }
        if !self.connected() || !self.state.welcomed || self.quitting.is_some() {
            return;
        }
        if now.duration_since(self.refreshed) >= REFRESH {
            self.refreshed = now;
            if let Some(line) = self.state.refresh_rooms() {
                self.send(&line);
            }
        }
        if let Some(every) = self.keepalive {
            if now.duration_since(self.last_sent) >= every {
                self.state.keepalive_sent();
                self.send(KEEPALIVE_PING);
            }
        }
    }
}
