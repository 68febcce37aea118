//! loopchat servers with `--cluster`: the start-up check, `/metrics`.

use super::engine::{redis, PATIENCE};
use loopchat::cluster::ClusterSettings;
use loopchat::{Config, Server, StartError};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Instant;

fn config_for(addr: SocketAddr) -> Config {
    let mut config = Config::ephemeral();
    config.history.file = None;
    config.cluster = Some(ClusterSettings::new(addr));
    config
}

fn start_error(config: Config) -> String {
    match Server::bind(config) {
        Err(err @ StartError::Cluster(_)) => err.to_string(),
        Err(other) => panic!("another start error: {other}"),
        Ok(_) => panic!("the server started"),
    }
}

#[test]
fn an_address_where_nothing_listens_fails_the_start_clearly() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = start_error(config_for(SocketAddr::from(([127, 0, 0, 1], port))));
    assert!(
        err.starts_with(&format!(
            "cannot reach the cluster's Redis at 127.0.0.1:{port}: "
        )),
        "{err}"
    );
}

#[test]
fn an_address_that_is_not_redis_fails_the_start_clearly() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let web = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    });
    let err = start_error(config_for(addr));
    assert_eq!(
        err,
        format!("{addr} is not a Redis server (it answered something else)")
    );
    web.join().unwrap();
}

#[test]
fn the_binary_says_why_it_cannot_start_from_the_flag_or_the_environment() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    let base = [
        "--addr",
        "127.0.0.1:0",
        "--web-addr",
        "off",
        "--history-file",
        ":memory:",
    ];
    let with_flag = std::process::Command::new(env!("CARGO_BIN_EXE_loopchat"))
        .args(base)
        .args(["--cluster", &url])
        .env_remove("LOOPCHAT_CLUSTER")
        .output()
        .unwrap();
    let with_env = std::process::Command::new(env!("CARGO_BIN_EXE_loopchat"))
        .args(base)
        .env("LOOPCHAT_CLUSTER", &url)
        .output()
        .unwrap();
    for output in [with_flag, with_env] {
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!(
                "cannot reach the cluster's Redis at 127.0.0.1:{port}"
            )),
            "{stderr}"
        );
    }
}

fn fetch_metrics(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn a_clustered_server_shows_its_redis_in_metrics() {
    let Some(redis) = redis("the cluster metrics test") else {
        return;
    };
    let mut config = config_for(redis.addr());
    config.metrics_addr = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    let server = Server::bind(config).unwrap().spawn().unwrap();
    let metrics = server.metrics_addr().unwrap();
    // Connected a moment after the start: asked again until it is.
    let deadline = Instant::now() + PATIENCE;
    let text = loop {
        let text = fetch_metrics(metrics);
        if text.contains("\nloopchat_cluster_up 1\n") {
            break text;
        }
        assert!(Instant::now() < deadline, "never up: {text}");
    };
    for family in [
        "loopchat_cluster_lag_lines 0",
        "loopchat_cluster_disconnects_total 0",
        "loopchat_cluster_lines_lost_total 0",
    ] {
        assert!(
            text.contains(&format!("\n{family}\n")),
            "{family} in {text}"
        );
    }
    // A server alone has none of them.
    let alone = Server::bind(Config {
        metrics_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..Config::ephemeral()
    })
    .unwrap()
    .spawn()
    .unwrap();
    assert!(!fetch_metrics(alone.metrics_addr().unwrap()).contains("loopchat_cluster"));
}
