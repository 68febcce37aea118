//! `loopchat`: reads its settings (flags, and a `--config` file), sets up
//! logging, and runs the server.

use log::{error, info, warn, LevelFilter};
use loopchat::settings::{self, Flags, Reload};
use loopchat::{Server, StartError};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if settings::help::wants_help(&args) {
        // The blurb names the addresses these flags would listen on.
        let version = env!("CARGO_PKG_VERSION");
        if let Err((0, help)) = loopchat::protocol::cli::parse::<Flags>("loopchat", version, &args)
        {
            use std::io::Write;
            let help = settings::help::help_for("loopchat", &args, &help);
            let _ = writeln!(std::io::stdout(), "{help}");
            return ExitCode::SUCCESS;
        }
    }
    let mut command_line: Flags = loopchat::protocol::cli::from_env(env!("CARGO_PKG_VERSION"));
    if let Err(err) = simple_logger::SimpleLogger::new()
        .with_level(LevelFilter::Info)
        .env()
        .init()
    {
        eprintln!("loopchat: cannot set up logging: {err}");
    }
    if command_line.password.is_none() {
        command_line.password = std::env::var("LOOPCHAT_PASSWORD")
            .ok()
            .filter(|password| !password.is_empty());
    }
    if command_line.cluster.is_none() {
        command_line.cluster = std::env::var("LOOPCHAT_CLUSTER")
            .ok()
            .filter(|url| !url.is_empty());
    }
    let file = match &command_line.config {
        Some(path) => match settings::load(path) {
            Ok(file) => file,
            Err(err) => {
                eprintln!("loopchat: {err}");
                return ExitCode::from(2);
            }
        },
        None => Flags::default(),
    };
    let effective = command_line.clone().or(file).or(Flags::defaults());
    let mut config = match effective.to_config() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("loopchat: {err}");
            return ExitCode::from(2);
        }
    };
    if command_line.print_config {
        print!("{}", settings::file::print(&effective));
        return ExitCode::SUCCESS;
    }
    config.handle_signals = true;
    let reload = command_line
        .config
        .clone()
        .map(|file| Reload::new(file, command_line, effective));
    let with_tls = config.tls_cert.is_some();
    raise_descriptor_limit(config.max_clients);
    let with_password = config.password.is_some();
    let server = match Server::bind(config) {
        Ok(server) => server.with_reload(reload),
        Err(err @ StartError::Tls(_)) => {
            error!("cannot start: {err}");
            return ExitCode::FAILURE;
        }
        // Which listener on which address, the history file, the poller.
        Err(err) => {
            error!("{err}");
            return ExitCode::FAILURE;
        }
    };
    info!(
        "listening on {}{}",
        server.local_addr(),
        if with_password {
            " (password required)"
        } else {
            ""
        }
    );
    match server.web_addr() {
        Some(web) if with_tls => info!("chat page on https://{web}/ (WebSocket at wss://{web}/ws)"),
        Some(web) => info!("chat page on http://{web}/ (WebSocket at ws://{web}/ws)"),
        None => {}
    }
    if let Some(tls_addr) = server.tls_addr() {
        info!("TLS line clients on {tls_addr}");
    }
    if let Some(irc) = server.irc_addr() {
        info!("IRC clients on {irc}");
    }
    if let Some(irc) = server.irc_tls_addr() {
        info!("IRC clients over TLS on {irc}");
    }
    if let Some(metrics) = server.metrics_addr() {
        info!("metrics on http://{metrics}/metrics");
    }
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            error!("event loop failed: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Descriptors the server needs besides one per client: stdio, the poller,
/// the listener, the waker, the signal pipe, and some slack.
const SPARE_DESCRIPTORS: u64 = 32;

/// Raises the soft descriptor limit toward `max_clients` (as Redis does), so
/// the default 1024 does not silently cap the server; warns when it cannot.
/// Past the limit the server keeps serving and retries accepting, so this is
/// about capacity, not safety.
fn raise_descriptor_limit(max_clients: usize) {
    let wanted = u64::try_from(max_clients)
        .unwrap_or(u64::MAX)
        .saturating_add(SPARE_DESCRIPTORS);
    match loopchat::net::fd_limit::raise(wanted) {
        Ok(limit) if limit < wanted => warn!(
            "only {limit} file descriptors (ulimit -n): fewer than --max-clients {max_clients} \
             can connect; raise the hard limit to serve them all"
        ),
        Ok(_) => {}
        Err(err) => warn!("cannot read the file descriptor limit: {err}"),
    }
}
