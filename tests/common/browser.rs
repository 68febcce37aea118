//! A real browser for the tests: Debian's headless chromium driven
//! through chromedriver (W3C WebDriver over HTTP). `tools_or_skip` finds
//! both; in CI (`CI=true`) a missing browser fails the test instead of
//! skipping it.

use base64::Engine;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the page may take to show something expected.
pub const WAIT: Duration = Duration::from_secs(20);

/// Finds a program on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    })
}

/// chromium and chromedriver, or the reason the test cannot run.
pub fn browser_tools() -> Result<(PathBuf, PathBuf), String> {
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
pub fn tools_or_skip() -> Option<(PathBuf, PathBuf)> {
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
pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    _profile: TempDir,
}

/// A fresh directory, removed on drop.
pub struct TempDir(PathBuf);

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
    pub fn start(chromium: &Path, chromedriver: &Path) -> Browser {
        Browser::start_with(chromium, chromedriver, &[])
    }

    /// A browser with extra command-line switches.
    pub fn start_with(chromium: &Path, chromedriver: &Path, extra: &[&str]) -> Browser {
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
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body)
            .unwrap_or_else(|err| panic!("WebDriver {method} {path}: {err}"))
    }

    /// One WebDriver command, failures returned (for cleanup in `Drop`).
    pub fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
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

    pub fn session_path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    pub fn open(&self, url: &str) {
        self.call(
            "POST",
            &self.session_path("/url"),
            Some(json!({ "url": url })),
        );
    }

    pub fn new_window(&self) -> String {
        let window = self.call(
            "POST",
            &self.session_path("/window/new"),
            Some(json!({"type": "window"})),
        );
        window["handle"].as_str().expect("handle").to_string()
    }

    pub fn window(&self) -> String {
        self.call("GET", &self.session_path("/window"), None)
            .as_str()
            .expect("handle")
            .to_string()
    }

    pub fn switch_to(&self, handle: &str) {
        self.call(
            "POST",
            &self.session_path("/window"),
            Some(json!({ "handle": handle })),
        );
    }

    /// Runs `script` (a function body) in the page and returns its result.
    pub fn run(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            &self.session_path("/execute/sync"),
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Runs `script` (a function body that returns a promise) in the page
    /// and returns what the promise resolves to; a rejection fails the test.
    pub fn run_async(&self, script: &str, args: Value) -> Value {
        let wrapped = format!(
            "const done = arguments[arguments.length - 1];\n\
             (async (...args) => {{ {script} }})(...Array.from(arguments).slice(0, -1))\n\
             .then((value) => done({{ ok: value === undefined ? null : value }}),\n\
                   (error) => done({{ error: String(error && error.stack || error) }}));"
        );
        let value = self.call(
            "POST",
            &self.session_path("/execute/async"),
            Some(json!({"script": wrapped, "args": args})),
        );
        if let Some(error) = value.get("error") {
            panic!(
                "the page's script failed: {}",
                error.as_str().unwrap_or_default()
            );
        }
        value["ok"].clone()
    }

    pub fn element(&self, css: &str) -> String {
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
    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.call(
            "POST",
            &self.session_path(&format!("/element/{id}/value")),
            Some(json!({ "text": text })),
        );
    }

    pub fn click(&self, css: &str) {
        let id = self.element(css);
        self.call(
            "POST",
            &self.session_path(&format!("/element/{id}/click")),
            Some(json!({})),
        );
    }

    /// Types one line into the message box and presses Enter.
    pub fn say(&self, line: &str) {
        self.type_into("#say-input", &format!("{line}\u{E007}"));
    }

    /// The text of every log entry, in order.
    pub fn log(&self) -> Vec<String> {
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
    pub fn wait_for_line(&self, text: &str) {
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
    pub fn wait_until(&self, what: &str, script: &str) {
        let deadline = Instant::now() + WAIT;
        while self.run(script, json!([])) != json!(true) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn screenshot(&self, path: &Path) {
        let data = self.call("GET", &self.session_path("/screenshot"), None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().expect("base64"))
            .expect("valid base64");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).expect("write the screenshot");
        println!("screenshot: {}", path.display());
    }

    pub fn set_size(&self, width: u32, height: u32) {
        self.call(
            "POST",
            &self.session_path("/window/rect"),
            Some(json!({"width": width, "height": height})),
        );
    }
}
