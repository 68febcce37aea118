//! A real `redis-server` for the cluster tests: its own free loopback port
//! and temporary directory, ready once it says so in its log (no sleep),
//! stopped when dropped. And a blocking RESP client for the test's side
//! (`cli`), using the server's own RESP code.

use loopchat::cluster::resp::{self, Reply};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running redis-server.
pub struct Redis {
    binary: PathBuf,
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Redis {
    /// Starts redis-server, or `None` (with a note) when it is not
    /// installed outside CI; in CI a missing redis-server fails the test.
    pub fn start(test: &str) -> Option<Redis> {
        let binary = super::tool_or_skip("redis-server", test)?;
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Redis {
            binary,
            child: None,
            port,
            dir: tempfile::tempdir().unwrap(),
        };
        redis.spawn();
        Some(redis)
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its process id (to stop it with SIGSTOP).
    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    fn spawn(&mut self) {
        let mut child = Command::new(&self.binary)
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "yes"])
            .args(["--appendfsync", "no", "--logfile", "", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let stdout = child.stdout.take().unwrap();
        let (ready_tx, ready_rx) = mpsc::channel();
        // Reads its log to the end, so it never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut ready_tx = Some(ready_tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains("Ready to accept connections") {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(());
                    }
                }
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("redis-server says it is ready");
        self.child = Some(child);
    }

    /// Kills redis-server (SIGKILL: no goodbye to its clients beyond the
    /// kernel's) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and directory (its append-only
    /// file brings its data back).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Starts it again with its data gone (its directory emptied), as a
    /// Redis without persistence comes back.
    pub fn restart_empty(&mut self) {
        self.kill();
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                std::fs::remove_dir_all(path).unwrap();
            } else {
                std::fs::remove_file(path).unwrap();
            }
        }
        self.spawn();
    }

    /// Runs one command on a new connection and returns the reply.
    pub fn cli(&self, args: &[&str]) -> Reply {
        let mut conn = self.connect();
        conn.call(args)
    }

    /// A blocking connection of the test's own.
    pub fn connect(&self) -> Cli {
        let stream = TcpStream::connect(self.addr()).expect("connect to redis");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        Cli {
            stream,
            input: Vec::new(),
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A stopped redis must be woken to die quickly and cleanly.
            unsafe { libc::kill(child.id() as i32, libc::SIGCONT) };
        }
        self.kill();
    }
}

/// The test's blocking Redis connection.
pub struct Cli {
    stream: TcpStream,
    input: Vec<u8>,
}

impl Cli {
    /// Sends one command and reads its reply.
    pub fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Reply {
        self.send(args);
        self.reply()
    }

    /// Sends one command without reading its reply.
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        let mut out = Vec::new();
        resp::encode(&mut out, args);
        self.stream.write_all(&out).unwrap();
    }

    /// Reads one reply.
    pub fn reply(&mut self) -> Reply {
        loop {
            if let Some((reply, used)) = resp::decode(&self.input).unwrap() {
                self.input.drain(..used);
                return reply;
            }
            let mut chunk = [0u8; 65536];
            let n = self.stream.read(&mut chunk).expect("read from redis");
            assert!(n > 0, "redis closed the connection");
            self.input.extend_from_slice(&chunk[..n]);
        }
    }
}
