//! `loopchat --help` with the addresses actually configured: the blurb's
//! `nc 127.0.0.1 7878` and `http://127.0.0.1:7879/` are the defaults', so
//! with other flags or a `--config` file the help names the addresses this
//! command line would listen on.

use super::Flags;
use crate::config::Config;

/// The blurb's addresses in argh's help text (the doc comment of [`Flags`]).
const DEFAULT_NC: &str = "`nc 127.0.0.1 7878`";
const DEFAULT_PAGE: &str = "http://127.0.0.1:7879/";

/// Whether `args` (without the program name) ask for help.
pub fn wants_help(args: &[String]) -> bool {
    args.iter().any(|a| a == "--help" || a == "-h")
}

/// `help` (argh's text) with the blurb naming the addresses of `config`:
/// the plain line address (or the TLS one with `--no-plain`), and the page
/// (`https://` with a certificate; none without a web address).
pub fn with_addresses(help: &str, config: &Config) -> String {
    let line = if config.plain {
        format!("`nc {} {}`", config.addr.ip(), config.addr.port())
    } else {
        format!("`openssl s_client -connect {}` (TLS only)", config.tls_addr)
    };
    let page = match config.web_addr {
        Some(web) if config.tls_cert.is_some() => format!("https://{web}/"),
        Some(web) => format!("http://{web}/"),
        None => "(no web address)".to_string(),
    };
    help.replacen(DEFAULT_NC, &line, 1)
        .replacen(DEFAULT_PAGE, &page, 1)
}

/// The help for `args`: the flags other than `--help` (and a `--config`
/// file) give the addresses; when they cannot be read, argh's help as is.
pub fn help_for(name: &str, args: &[String], help: &str) -> String {
    let rest: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "--help" && *a != "-h")
        .collect();
    let Ok(command_line) = <Flags as argh::FromArgs>::from_args(&[name], &rest) else {
        return help.to_string();
    };
    let file = match &command_line.config {
        Some(path) => match super::load(path) {
            Ok(file) => file,
            Err(_) => return help.to_string(),
        },
        None => Flags::default(),
    };
    match command_line.or(file).or(Flags::defaults()).to_config() {
        Ok(config) => with_addresses(help, &config),
        Err(_) => help.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn help() -> String {
        match <Flags as argh::FromArgs>::from_args(&["loopchat"], &["--help"]) {
            Err(exit) => exit.output,
            Ok(_) => panic!("--help is not flags"),
        }
    }

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_blurb_names_the_configured_addresses() {
        let text = help();
        assert!(
            text.contains(DEFAULT_NC) && text.contains(DEFAULT_PAGE),
            "{text}"
        );
        let shown = help_for(
            "loopchat",
            &args(&[
                "--addr",
                "0.0.0.0:9000",
                "--web-addr",
                "127.0.0.1:9001",
                "--help",
            ]),
            &text,
        );
        assert!(shown.contains("Try it with `nc 0.0.0.0 9000`"), "{shown}");
        assert!(
            shown.contains("a browser on http://127.0.0.1:9001/"),
            "{shown}"
        );
        assert_eq!(help_for("loopchat", &args(&["--help"]), &text), text);
    }
}
