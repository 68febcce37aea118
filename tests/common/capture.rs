//! A capture of the traffic on loopback: `tcpdump` writing a pcap file
//! (it needs the rights to capture; the tests run as root here and in CI),
//! read back as TCP streams so a string split across two segments is still
//! found.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

/// `tcpdump` capturing TCP on the loopback interface into a pcap file.
pub struct Capture {
    child: Option<Child>,
    file: PathBuf,
}

impl Capture {
    /// Starts `tcpdump` (at `tool`) on `lo` for TCP to or from any of
    /// `ports`, writing `file`; returns once it says it is listening.
    pub fn start(tool: &Path, file: &Path, ports: &[u16]) -> Capture {
        let filter = ports
            .iter()
            .map(|port| format!("port {port}"))
            .collect::<Vec<_>>()
            .join(" or ");
        let mut child = Command::new(tool)
            // -U: each packet written as it comes; -Z root: keep the
            // rights to write into our own (0700) temporary directory.
            .args(["-i", "lo", "-n", "-U", "-Z", "root", "-s", "0", "-w"])
            .arg(file)
            .arg(format!("tcp and ({filter})"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tcpdump");
        let stderr = child.stderr.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut said = Vec::new();
        loop {
            match rx.recv_timeout(super::READ_TIMEOUT) {
                Ok(line) if line.contains("listening on") => break,
                Ok(line) => said.push(line),
                Err(_) => panic!("tcpdump never started listening: {said:?}"),
            }
        }
        Capture {
            child: Some(child),
            file: file.to_path_buf(),
        }
    }

    /// Stops the capture (SIGINT: tcpdump writes what it has and exits)
    /// and returns every TCP stream in it, one per direction of each
    /// connection.
    pub fn finish(mut self) -> Streams {
        let mut child = self.child.take().expect("running");
        let pid = i32::try_from(child.id()).expect("pid fits");
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(pid, libc::SIGINT) };
        let status = child.wait().expect("wait for tcpdump");
        assert!(status.success(), "tcpdump: {status}");
        Streams::read(&std::fs::read(&self.file).expect("read the pcap file"))
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The TCP payloads of a pcap file, put back together per direction of
/// each connection (segments seen twice counted once).
pub struct Streams {
    /// (source port, destination port) and the bytes sent that way.
    pub flows: Vec<((u16, u16), Vec<u8>)>,
}

impl Streams {
    /// Parses a pcap file of Ethernet (or Linux "cooked") frames of IPv4
    /// or IPv6 TCP.
    pub fn read(pcap: &[u8]) -> Streams {
        let magic = u32::from_le_bytes(pcap[0..4].try_into().unwrap());
        assert!(
            magic == 0xa1b2_c3d4 || magic == 0xa1b2_3c4d,
            "a little-endian pcap file"
        );
        let link = u32::from_le_bytes(pcap[20..24].try_into().unwrap());
        let link_header = match link {
            1 => 14,   // Ethernet
            113 => 16, // Linux cooked capture
            other => panic!("link type {other}"),
        };
        let mut flows: Vec<((u16, u16), Vec<u8>)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut at = 24;
        while at + 16 <= pcap.len() {
            let len = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
            let frame = &pcap[at + 16..at + 16 + len];
            at += 16 + len;
            let ip = &frame[link_header..];
            let tcp = match ip[0] >> 4 {
                4 => {
                    let header = usize::from(ip[0] & 0x0f) * 4;
                    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
                    if ip[9] != 6 {
                        continue;
                    }
                    &ip[header..total]
                }
                6 => {
                    let payload = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
                    if ip[6] != 6 {
                        continue;
                    }
                    &ip[40..40 + payload]
                }
                _ => continue,
            };
            let ports = (
                u16::from_be_bytes([tcp[0], tcp[1]]),
                u16::from_be_bytes([tcp[2], tcp[3]]),
            );
            let seq = u32::from_be_bytes(tcp[4..8].try_into().unwrap());
            let data = &tcp[usize::from(tcp[12] >> 4) * 4..];
            if data.is_empty() || !seen.insert((ports, seq, data.len())) {
                continue;
            }
            match flows.iter_mut().find(|(p, _)| *p == ports) {
                Some((_, bytes)) => bytes.extend_from_slice(data),
                None => flows.push((ports, data.to_vec())),
            }
        }
        Streams { flows }
    }

    /// Whether any stream holds `needle`.
    pub fn contains(&self, needle: &str) -> bool {
        self.flows.iter().any(|(_, bytes)| {
            bytes
                .windows(needle.len())
                .any(|window| window == needle.as_bytes())
        })
    }

    /// How many bytes were captured, all streams together.
    pub fn total(&self) -> usize {
        self.flows.iter().map(|(_, bytes)| bytes.len()).sum()
    }
}
