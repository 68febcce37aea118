//! A real browser: Debian's headless chromium, driven through chromedriver
//! (W3C WebDriver over HTTP), opens the chat page twice next to a TCP client
//! in one room. Each sees the others' lines, a nick change, a `:pm`, a room
//! switch through the room list, and a message `<img src=x onerror=alert(1)>`
//! shown as text. Screenshots of both pages go to `target/browser/`.
//!
//! CI (`CI=true`) installs chromium and chromium-driver and never skips this;
//! elsewhere it skips with a printed reason when they are missing.

mod common;

use base64::Engine;
use common::{start, Client, Lines};
use loopchat::protocol::{recognise, Event, ServerLine};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the page may take to show something expected.
const WAIT: Duration = Duration::from_secs(20);
const XSS: &str = "<img src=x onerror=alert(1)>";

/// Finds a program on PATH.
fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    })
}

/// chromium and chromedriver, or the reason the test cannot run.
fn browser_tools() -> Result<(PathBuf, PathBuf), String> {
    let chromium = ["chromium", "chromium-browser"]
        .iter()
        .find_map(|name| which(name))
        .ok_or("chromium is not installed (apt-get install chromium)")?;
    let driver = which("chromedriver")
        .ok_or("chromedriver is not installed (apt-get install chromium-driver)")?;
    Ok((chromium, driver))
}

/// The browser and its driver; `None` (the test skips) where they are
/// missing, except in CI, where a missing browser fails the test.
fn tools_or_skip() -> Option<(PathBuf, PathBuf)> {
    match browser_tools() {
        Ok(tools) => Some(tools),
        Err(reason) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI must run the browser test: {reason}")
        }
        Err(reason) => {
            eprintln!("skipping the browser test: {reason}");
            None
        }
    }
}

/// A chromedriver process and one browser session in it.
struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    _profile: TempDir,
}

/// A fresh directory, removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.try_call("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    fn start(chromium: &Path, chromedriver: &Path) -> Browser {
        Browser::start_with(chromium, chromedriver, &[])
    }

    /// A browser with extra command-line switches.
    fn start_with(chromium: &Path, chromedriver: &Path, extra: &[&str]) -> Browser {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let stdout = driver.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        loop {
            match lines.next() {
                Some(Ok(line)) if line.contains("started successfully") => break,
                Some(Ok(_)) => continue,
                other => panic!("chromedriver did not start: {other:?}"),
            }
        }
        // Keep draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let profile =
            std::env::temp_dir().join(format!("loopchat-browser-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).expect("profile directory");
        let mut browser = Browser {
            driver,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            session: String::new(),
            _profile: TempDir(profile.clone()),
        };
        let mut args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1100,720".into(),
            format!("--user-data-dir={}", profile.display()),
        ];
        args.extend(extra.iter().map(|arg| arg.to_string()));
        let created = browser.call(
            "POST",
            "/session",
            Some(json!({
                "capabilities": {"alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {"binary": chromium, "args": args},
                }}
            })),
        );
        browser.session = created["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        browser
    }

    /// One WebDriver command; returns its `value`. Panics on any failure.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body)
            .unwrap_or_else(|err| panic!("WebDriver {method} {path}: {err}"))
    }

    /// One WebDriver command, failures returned (for cleanup in `Drop`).
    fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut stream = TcpStream::connect(self.addr).map_err(|e| format!("connect: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| e.to_string())?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .map_err(|e| format!("send: {e}"))?;
        // Read the head, then exactly Content-Length bytes of body.
        let mut reader = BufReader::new(stream);
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader
                .read_line(&mut line)
                .map_err(|e| format!("read: {e}"))?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().map_err(|_| "bad length")?;
                }
            }
        }
        let mut body = vec![0; length];
        reader
            .read_exact(&mut body)
            .map_err(|e| format!("read body: {e}"))?;
        let text = String::from_utf8_lossy(&body);
        let value: Value =
            serde_json::from_str(&text).map_err(|err| format!("bad response ({err}): {text}"))?;
        let value = value["value"].clone();
        if let Some(error) = value.get("error") {
            return Err(format!("{error}: {}", value["message"]));
        }
        Ok(value)
    }

    fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    fn open(&self, url: &str) {
        self.call(
            "POST",
            &self.session_path("/url"),
            Some(json!({ "url": url })),
        );
    }

    fn new_window(&self) -> String {
        let window = self.call(
            "POST",
            &self.session_path("/window/new"),
            Some(json!({"type": "window"})),
        );
        window["handle"].as_str().expect("handle").to_string()
    }

    fn window(&self) -> String {
        self.call("GET", &self.session_path("/window"), None)
            .as_str()
            .expect("handle")
            .to_string()
    }

    fn switch_to(&self, handle: &str) {
        self.call(
            "POST",
            &self.session_path("/window"),
            Some(json!({ "handle": handle })),
        );
    }

    /// Runs `script` (a function body) in the page and returns its result.
    fn run(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            &self.session_path("/execute/sync"),
            Some(json!({"script": script, "args": args})),
        )
    }

    fn element(&self, css: &str) -> String {
        let found = self.call(
            "POST",
            &self.session_path("/element"),
            Some(json!({"using": "css selector", "value": css})),
        );
        found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .expect("element id")
            .to_string()
    }

    /// Types into an element as a user would (`\u{E007}` is Enter).
    fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.call(
            "POST",
            &self.session_path(&format!("/element/{id}/value")),
            Some(json!({ "text": text })),
        );
    }

    fn click(&self, css: &str) {
        let id = self.element(css);
        self.call(
            "POST",
            &self.session_path(&format!("/element/{id}/click")),
            Some(json!({})),
        );
    }

    /// Types one line into the message box and presses Enter.
    fn say(&self, line: &str) {
        self.type_into("#say-input", &format!("{line}\u{E007}"));
    }

    /// The text of every log entry, in order.
    fn log(&self) -> Vec<String> {
        let value = self.run(
            "return [...document.querySelectorAll('#log li')].map(li => li.textContent);",
            json!([]),
        );
        value
            .as_array()
            .expect("an array")
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Waits until a log entry ends with `text` (entries start with a time).
    fn wait_for_line(&self, text: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let log = self.log();
            if log.iter().any(|entry| entry.ends_with(text)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the page never showed {text:?}; its log: {log:#?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `script` returns true.
    fn wait_until(&self, what: &str, script: &str) {
        let deadline = Instant::now() + WAIT;
        while self.run(script, json!([])) != json!(true) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn screenshot(&self, path: &Path) {
        let data = self.call("GET", &self.session_path("/screenshot"), None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().expect("base64"))
            .expect("valid base64");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).expect("write the screenshot");
        println!("screenshot: {}", path.display());
    }

    fn set_size(&self, width: u32, height: u32) {
        self.call(
            "POST",
            &self.session_path("/window/rect"),
            Some(json!({"width": width, "height": height})),
        );
    }
}

/// Opens the page in the current window and sets its nick.
fn join_as(browser: &Browser, url: &str, nick: &str, tcp: &mut Client) -> String {
    browser.open(url);
    browser.wait_until(
        "the welcome",
        "return document.querySelector('#status').classList.contains('online') \
         && [...document.querySelectorAll('#log li')].some(li => li.textContent.includes('* welcome '));",
    );
    let joined = tcp.line();
    let guest = match recognise(&joined) {
        Some(ServerLine::Event(Event::Joined {
            nick,
            room: "#lobby",
        })) => nick.to_string(),
        _ => panic!("expected a join, got {joined:?}"),
    };
    let nick_input = browser.element("#nick-input");
    browser.call(
        "POST",
        &browser.session_path(&format!("/element/{nick_input}/clear")),
        Some(json!({})),
    );
    browser.type_into("#nick-input", &format!("{nick}\u{E007}"));
    tcp.expect(&format!("* {guest} is now known as {nick}"));
    browser.wait_for_line(&format!("* {guest} is now known as {nick}"));
    guest
}

#[test]
fn two_pages_and_a_terminal_chat_in_a_real_browser() {
    let Some((chromium, chromedriver)) = tools_or_skip() else {
        return;
    };
    let server = start();
    let url = format!("http://{}/", server.web_addr().expect("web address"));
    let mut tcp = Client::named(server.addr(), "terminal");
    let browser = Browser::start(&chromium, &chromedriver);

    let alice = browser.window();
    join_as(&browser, &url, "alice", &mut tcp);
    let bob = browser.new_window();
    browser.switch_to(&bob);
    let bob_guest = join_as(&browser, &url, "bob", &mut tcp);
    browser.switch_to(&alice);
    browser.wait_for_line(&format!("* {bob_guest} is now known as bob"));
    browser.wait_until(
        "the user list to show all three",
        "return [...document.querySelectorAll('#users li')].map(li => li.textContent).join(' ') \
         === 'alice bob terminal';",
    );

    // Each sees the others' lines.
    browser.say("hello from alice");
    tcp.expect("alice: hello from alice");
    browser.switch_to(&bob);
    browser.wait_for_line("alice hello from alice");
    browser.say("hello from bob");
    tcp.expect("bob: hello from bob");
    tcp.send("hello from the terminal");
    browser.wait_for_line("terminal hello from the terminal");
    browser.switch_to(&alice);
    browser.wait_for_line("bob hello from bob");
    browser.wait_for_line("terminal hello from the terminal");
    assert!(
        browser
            .log()
            .iter()
            .any(|l| l.ends_with("alice hello from alice")),
        "alice's own line is shown to her"
    );

    // A private message, from a page to the other page and to the terminal.
    browser.switch_to(&bob);
    browser.say(":pm alice just between us");
    browser.switch_to(&alice);
    browser.wait_for_line("pmbob just between us");
    tcp.send(":pm bob psst from the terminal");
    browser.switch_to(&bob);
    browser.wait_for_line("pmterminal psst from the terminal");

    // Markup is text, never HTML: from the terminal and from a page.
    tcp.send(XSS);
    browser.wait_for_line(&format!("terminal {XSS}"));
    browser.say(&format!(":me says {XSS}"));
    tcp.expect(&format!("* bob says {XSS}"));
    browser.switch_to(&alice);
    browser.wait_for_line(&format!("terminal {XSS}"));
    browser.wait_for_line(&format!("bob says {XSS}"));
    assert_eq!(
        browser.run(
            "return document.querySelectorAll('#log img, #log [onerror]').length;",
            json!([])
        ),
        json!(0),
        "no element was made from a message"
    );

    // A nick change, seen by everyone.
    browser.type_into("#say-input", ":nick alicia\u{E007}");
    tcp.expect("* alice is now known as alicia");
    browser.switch_to(&bob);
    browser.wait_for_line("* alice is now known as alicia");
    browser.wait_until(
        "bob's user list to follow the rename",
        "return [...document.querySelectorAll('#users li')].map(li => li.textContent).join(' ') \
         === 'alicia bob terminal';",
    );

    // A room joined through the room list (protocol 1.2 keeps #lobby).
    tcp.send(":join #rust");
    tcp.expect("* terminal joined #rust");
    browser.switch_to(&alice);
    browser.click("#refresh-rooms");
    browser.wait_until(
        "#rust in the room list",
        "return [...document.querySelectorAll('#rooms button')].some(b => b.textContent.startsWith('#rust'));",
    );
    browser.run(
        "[...document.querySelectorAll('#rooms button')].find(b => b.textContent.startsWith('#rust')).id = 'rust-room';",
        json!([]),
    );
    browser.click("#rust-room");
    tcp.expect("* alicia joined #rust");
    browser.wait_until(
        "the room title",
        "return document.querySelector('#room-name').textContent === '#rust';",
    );
    tcp.send("welcome to rust");
    browser.wait_for_line("terminal welcome to rust");
    browser.say("glad to be here");
    tcp.expect("alicia: glad to be here");
    // #lobby's lines still reach alicia, marked with their room.
    browser.switch_to(&bob);
    browser.say("still in the lobby");
    tcp.expect("[#lobby] bob: still in the lobby");
    browser.switch_to(&alice);
    browser.wait_until(
        "a #lobby line marked with its room",
        "return [...document.querySelectorAll('#log li.other-room')].some(li => \
         li.querySelector('.room-tag').textContent === '#lobby' \
         && li.textContent.endsWith('bob still in the lobby'));",
    );
    // :part leaves #lobby; #rust stays the current room.
    browser.say(":part lobby");
    tcp.expect("[#lobby] * alicia left #lobby");
    browser.wait_for_line("* alicia left #lobby");
    assert_eq!(
        browser.run(
            "return document.querySelector('#room-name').textContent;",
            json!([])
        ),
        json!("#rust")
    );
    browser.switch_to(&bob);
    browser.wait_for_line("* alicia left #lobby");
    browser.say("anyone still here?");
    tcp.expect("[#lobby] bob: anyone still here?");
    tcp.assert_quiet();
    assert!(
        !browser.log().iter().any(|l| l.contains("welcome to rust")),
        "bob, still in #lobby, does not hear #rust"
    );

    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser");
    browser.switch_to(&alice);
    browser.screenshot(&shots.join("alice.png"));
    browser.switch_to(&bob);
    browser.screenshot(&shots.join("bob.png"));
    browser.set_size(390, 844);
    browser.screenshot(&shots.join("bob-phone.png"));
    let errors = browser.run("return window.__loopchatErrors || [];", json!([]));
    assert_eq!(errors, json!([]), "no script errors on the page");
}

/// The page over HTTPS and its WebSocket over `wss://`, next to a TLS line
/// client. The test CA is not in the browser's store, so this browser
/// session (only this one) ignores certificate errors.
#[test]
fn the_page_over_https_and_wss() {
    let Some((chromium, chromedriver)) = tools_or_skip() else {
        return;
    };
    let pki = common::tls::TestPki::new();
    let server = common::start_with(|config| {
        config.tls_cert = Some(pki.cert_file.clone());
        config.tls_key = Some(pki.key_file.clone());
    });
    let web = server.web_addr().expect("web address");
    let url = format!("https://localhost:{}/", web.port());
    let mut tcp = Client::named(server.addr(), "terminal");
    let mut secure = common::tls::TlsClient::connect(server.tls_addr().expect("TLS address"), &pki);
    tcp.expect(&format!("* {} joined #lobby", secure.nick));
    let browser = Browser::start_with(&chromium, &chromedriver, &["--ignore-certificate-errors"]);

    let guest = join_as(&browser, &url, "carol", &mut tcp);
    assert_eq!(
        browser.run("return location.protocol;", json!([])),
        json!("https:")
    );
    secure.skip_until(&format!("* {guest} is now known as carol"));
    browser.say("hello over wss");
    tcp.expect("carol: hello over wss");
    secure.expect("carol: hello over wss");
    secure.send("hello from a TLS terminal");
    browser.wait_for_line(&format!("{} hello from a TLS terminal", secure.nick));
}

#[test]
fn the_page_asks_for_the_password_of_a_password_server() {
    let Some((chromium, chromedriver)) = tools_or_skip() else {
        return;
    };
    let server = common::start_with(|c| c.password = Some("open sesame".into()));
    let url = format!("http://{}/", server.web_addr().expect("web address"));
    let browser = Browser::start(&chromium, &chromedriver);
    browser.open(&url);
    browser.wait_until(
        "the password dialog",
        "return document.querySelector('#password-dialog').open;",
    );
    browser.type_into("#password-input", "wrong\u{E007}");
    browser.wait_for_line("! wrong password");
    browser.wait_until(
        "the dialog again, with the error",
        "return document.querySelector('#password-dialog').open \
         && document.querySelector('#password-error').textContent === 'wrong password';",
    );
    browser.type_into("#password-input", "open sesame\u{E007}");
    browser.wait_until(
        "the welcome, the dialog closed",
        "return !document.querySelector('#password-dialog').open \
         && [...document.querySelectorAll('#log li')].some(li => li.textContent.includes('* welcome '));",
    );
    let mut tcp = Client::connect_raw(server.addr());
    tcp.expect("* password required");
    tcp.send(":auth open sesame");
    tcp.read_welcome();
    browser.say("the page got in");
    tcp.expect("guest1: the page got in");
}

#[test]
fn the_page_reconnects_after_a_restart_and_keeps_its_nick() {
    let Some((chromium, chromedriver)) = tools_or_skip() else {
        return;
    };
    let server = common::start();
    let web = server.web_addr().expect("web address");
    let url = format!("http://{web}/");
    let browser = Browser::start(&chromium, &chromedriver);
    let mut tcp = Client::connect(server.addr());
    join_as(&browser, &url, "phoenix", &mut tcp);
    drop(tcp);
    server.stop().expect("the first server stops");
    browser.wait_for_line("* server went away; reconnecting…");
    browser.wait_until(
        "the offline status",
        "return document.querySelector('#status').classList.contains('offline');",
    );
    // A new server on the same web address: the page comes back by itself
    // and asks for its nick again.
    let server = common::start_with(|c| c.web_addr = Some(web));
    let mut tcp = Client::connect(server.addr());
    // Whether the page came back before or after this client: ask.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        tcp.send(":users");
        // Skipping the page's join and rename, if they come meanwhile.
        let users = loop {
            let line = tcp.line();
            if line.starts_with("* users in #lobby: ") {
                break line;
            }
        };
        let names: Vec<&str> = users["* users in #lobby: ".len()..].split(' ').collect();
        if names.contains(&"phoenix") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the page never came back as phoenix: {users:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    browser.wait_until(
        "the online status",
        "return document.querySelector('#status').classList.contains('online');",
    );
    tcp.sync();
    browser.say("risen again");
    tcp.expect("phoenix: risen again");
}
