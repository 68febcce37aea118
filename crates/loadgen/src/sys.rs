//! The operating-system side of the load generator: CPU time, resident
//! memory, the open-file limit, the ephemeral port range, and opening a
//! non-blocking connection from a chosen source address. Linux only, like
//! the rest of the project's measurements (`/proc`, `RUSAGE_THREAD`).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// CPU time (user + system) used so far by the calling thread: the load
/// generator's own cost, even when a server runs in the same process.
pub fn thread_cpu() -> Duration {
    rusage(libc::RUSAGE_THREAD)
}

/// CPU time (user + system) used so far by the whole process, every thread.
pub fn process_cpu() -> Duration {
    rusage(libc::RUSAGE_SELF)
}

fn rusage(who: libc::c_int) -> Duration {
    // SAFETY: getrusage only writes into the zeroed struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer to a properly sized struct.
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// CPU time of process `pid` (all its threads), or of one thread `tid` of
/// this process when `pid` is `None`, from `/proc`; `None` when it is gone.
/// Clock-tick resolution (usually 10 ms): fine over a window of seconds.
pub fn proc_cpu(pid: Option<u32>, tid: Option<u32>) -> Option<Duration> {
    let path = match (pid, tid) {
        (Some(p), _) => format!("/proc/{p}/stat"),
        (None, Some(t)) => format!("/proc/self/task/{t}/stat"),
        (None, None) => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    stat_cpu_ticks(&stat).map(|ticks| Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64))
}

/// utime + stime in clock ticks from the text of a `/proc/.../stat` file.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name is parenthesised and may hold spaces: skip past it.
    let after = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state); utime and stime are fields 14, 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf reads a constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// Busy and total time of the whole machine so far, in clock ticks summed
/// over every core, from the first line of `/proc/stat`: how much CPU other
/// processes took from the load generator and the server.
pub fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    machine_ticks_of(stat.lines().next()?)
}

fn machine_ticks_of(cpu_line: &str) -> Option<(u64, u64)> {
    let mut words = cpu_line.split_whitespace();
    if words.next()? != "cpu" {
        return None;
    }
    // user nice system idle iowait irq softirq steal (guest time is
    // already inside user and nice).
    let v: Vec<u64> = words
        .take(8)
        .map(|w| w.parse().ok())
        .collect::<Option<_>>()?;
    if v.len() < 5 {
        return None;
    }
    let total: u64 = v.iter().sum();
    Some((total - v[3] - v[4], total))
}

/// Cores this process may run on.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Thread ids of this process, to find the one a spawn just created.
pub fn task_ids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Resident memory in KiB (`VmRSS`) of process `pid`, or of this process.
pub fn vm_rss_kib(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_string(),
    };
    status_rss_kib(&std::fs::read_to_string(path).ok()?)
}

fn status_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Makes sure this process may open `need` file descriptors (see
/// [`loopchat::net::fd_limit::raise`]); returns the limit now in force, or an error a
/// person can act on.
pub fn raise_nofile(need: u64) -> Result<u64, String> {
    let limit = loopchat::net::fd_limit::raise(need)
        .map_err(|err| format!("getrlimit(RLIMIT_NOFILE): {err}"))?;
    if limit < need {
        return Err(format!(
            "need {need} open files (clients, plus the in-process server's side), \
             but RLIMIT_NOFILE is {limit}: raise it with `ulimit -n {need}` \
             or use fewer --clients"
        ));
    }
    Ok(limit)
}

/// Size of the kernel's ephemeral port range: how many connections one
/// source address can open to one server address.
pub fn ephemeral_port_count() -> u32 {
    let range =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut it = range
        .split_whitespace()
        .filter_map(|x| x.parse::<u32>().ok());
    match (it.next(), it.next()) {
        (Some(lo), Some(hi)) if hi >= lo => hi - lo + 1,
        _ => 28_232, // Linux's default 32768..=60999
    }
}

/// Starts a non-blocking connect to `target`, from `source` when given, with
/// `TCP_NODELAY` so small chat lines are not held back by Nagle. The connect
/// is usually still in progress on return: wait for writability, then check
/// `take_error` and `peer_addr` (see `mio::net::TcpStream::connect`).
pub fn start_connect(
    target: SocketAddr,
    source: Option<IpAddr>,
) -> io::Result<mio::net::TcpStream> {
    let socket = Socket::new(
        Domain::for_address(target),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_nonblocking(true)?;
    socket.set_nodelay(true)?;
    if let Some(ip) = source {
        // Choose the port at connect time, per destination, instead of at
        // bind time from the address's whole range: without this, binding
        // many sockets to one source address runs out of ports early.
        let on: libc::c_int = 1;
        // SAFETY: setsockopt reads `on` for the given length; a failure only
        // means the kernel picks ports at bind time, which still works.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        socket.bind(&SockAddr::from(SocketAddr::new(ip, 0)))?;
    }
    match socket.connect(&SockAddr::from(target)) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(mio::net::TcpStream::from_std(std::net::TcpStream::from(
        socket,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat() {
        let stat = "1234 (a (weird) name) S 1 2 3 4 5 6 7 8 9 10 250 30 0 0 20 0 1";
        assert_eq!(stat_cpu_ticks(stat), Some(280));
        assert_eq!(stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn parses_proc_stat() {
        let line = "cpu  100 5 50 800 10 1 4 30 0 0";
        assert_eq!(machine_ticks_of(line), Some((190, 1000)));
        assert_eq!(machine_ticks_of("cpu0 1 2 3 4 5"), None);
        assert!(machine_ticks().is_some());
    }

    #[test]
    fn parses_status() {
        let s = "Name:\tx\nVmPeak:\t  9000 kB\nVmRSS:\t   4321 kB\nThreads: 1\n";
        assert_eq!(status_rss_kib(s), Some(4321));
        assert_eq!(status_rss_kib("Name: x\n"), None);
    }

    #[test]
    fn reads_own_process() {
        assert!(vm_rss_kib(None).is_some_and(|k| k > 0));
        assert!(proc_cpu(None, None).is_some());
        assert!(!task_ids().is_empty());
        let burn: u64 = (0..2_000_000u64).fold(0, |a, x| a ^ x.wrapping_mul(7));
        assert!(burn != 1 || thread_cpu() <= process_cpu());
    }

    #[test]
    fn nofile_already_enough() {
        assert!(raise_nofile(16).is_ok_and(|n| n >= 16));
    }
}
