//! What every loopchat program's command line shares: `-h` as `--help`,
//! and `--version` / `-V`, on top of argh (which knows neither).

use argh::TopLevelCommand;

/// Parses the process's arguments into `T` like `argh::from_env`, after
/// two additions: `-h` means `--help`, and `--version` or `-V` prints
/// `NAME VERSION` and exits 0. `version` is the caller's
/// `env!("CARGO_PKG_VERSION")`.
pub fn from_env<T: TopLevelCommand>(version: &str) -> T {
    let args: Vec<String> = std::env::args().collect();
    let path = args.first().map(String::as_str).unwrap_or("loopchat");
    let name = std::path::Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(path);
    match parse(name, version, &args[1.min(args.len())..]) {
        Ok(parsed) => parsed,
        Err((code, text)) => {
            // Not println!: `--help | head` closes the pipe early, and a
            // closed pipe is no reason to panic.
            use std::io::Write;
            let _ = if code == 0 {
                writeln!(std::io::stdout(), "{text}")
            } else {
                writeln!(std::io::stderr(), "{text}")
            };
            std::process::exit(code);
        }
    }
}

/// The pure part of [`from_env`]: `Err((exit code, text to print))` for
/// help, version and errors.
pub fn parse<T: TopLevelCommand>(
    name: &str,
    version: &str,
    args: &[String],
) -> Result<T, (i32, String)> {
    if args.iter().any(|a| a == "--version" || a == "-V") {
        return Err((0, format!("{name} {version}")));
    }
    let args: Vec<&str> = args
        .iter()
        .map(|a| if a == "-h" { "--help" } else { a.as_str() })
        .collect();
    T::from_args(&[name], &args).map_err(|exit| match exit.status {
        Ok(()) => (0, exit.output),
        Err(()) => (
            1,
            format!("{}\nRun {name} --help for more information.", exit.output),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use argh::FromArgs;

    /// A tiny program.
    #[derive(FromArgs, Debug)]
    struct Flags {
        /// a number
        #[argh(option, default = "1")]
        n: u32,
    }

    fn run(args: &[&str]) -> Result<Flags, (i32, String)> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse("prog", "9.8.7", &args)
    }

    #[test]
    fn version_and_short_help() {
        assert_eq!(run(&["--version"]).unwrap_err(), (0, "prog 9.8.7".into()));
        assert_eq!(
            run(&["-n", "3", "-V"]).unwrap_err(),
            (0, "prog 9.8.7".into())
        );
        let (code, text) = run(&["-h"]).unwrap_err();
        assert_eq!(code, 0);
        assert!(text.starts_with("Usage: prog"), "{text}");
        assert_eq!(run(&["--help"]).unwrap_err().1, text);
    }

    #[test]
    fn parses_and_reports_errors() {
        assert_eq!(run(&["--n", "3"]).unwrap().n, 3);
        let (code, text) = run(&["--bogus"]).unwrap_err();
        assert_eq!(code, 1);
        assert!(text.contains("Unrecognized argument: --bogus"), "{text}");
        assert!(text.ends_with("Run prog --help for more information."));
    }
}
