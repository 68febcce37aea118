//! `loadgen`: load a loopchat server with many clients and report
//! deliveries per second, latency, loss and CPU (see `loopchat_loadgen`).
//!
//! ```text
//! cargo run --release --bin loadgen -- --clients 500
//! cargo run --release --bin loadgen -- --addr 127.0.0.1:7878 --flood 4 --json
//! cargo run --release --bin loadgen -- --idle --clients 10000 --duration 2
//! cargo run --release --bin loadgen -- --attack flood --clients 1000 --slow-readers 300 --payload 1000
//! cargo run --release --bin loadgen -- --attack login --addr 127.0.0.1:7878 --guessers 200 --duration 20
//! ```
//!
//! Exit status: 0 when the run passed, 1 when messages were lost or clients
//! failed (see `Report::failures`), 2 when it could not start.

use loopchat_loadgen::{self as loadgen, Options};

fn main() {
    let opts: Options = loopchat_protocol::cli::from_env(env!("CARGO_PKG_VERSION"));
    // The in-process server logs through `log`: show its warnings (slow
    // consumers cut off, accept errors) but not a line per connection.
    // RUST_LOG overrides, as for the server binary.
    if let Err(e) = simple_logger::SimpleLogger::new()
        .with_level(log::LevelFilter::Warn)
        .env()
        .init()
    {
        eprintln!("loadgen: no logging: {e}");
    }
    if opts.attack.is_some() {
        match loadgen::run_attack(&opts) {
            Ok(report) => {
                print!("{}", report.to_text());
                std::process::exit(0);
            }
            Err(e) => {
                eprintln!("loadgen: {e}");
                std::process::exit(2);
            }
        }
    }
    match loadgen::run(&opts) {
        Ok(report) => {
            if opts.json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.to_text());
            }
            std::process::exit(if report.ok() { 0 } else { 1 });
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(2);
        }
    }
}
