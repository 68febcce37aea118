//! The documentation holds together: README.md stays a front door, every
//! relative link in README.md and docs/*.md leads to a file (and heading)
//! that exists, docs/flags.md lists exactly the flags the server's `--help`
//! prints with the same numeric defaults, the README's test commands are the
//! ones `.ci/run` runs, and docs/protocol.md is the shared PROTOCOL.md.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The most lines README.md may have: a front door, not a manual.
const README_MAX_LINES: usize = 260;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// README.md and every docs/*.md file.
fn documents() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = fs::read_dir(root().join("docs"))
        .expect("docs/")
        .map(|entry| entry.expect("docs/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// The lines of a markdown text outside fenced code blocks.
fn prose_lines(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .filter(|line| {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect()
}

/// Targets of the markdown links and images on `line`: what is between
/// `](` and the next `)`.
fn link_targets(line: &str) -> Vec<&str> {
    let mut targets = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find("](") {
        rest = &rest[start + 2..];
        match rest.find(')') {
            Some(end) => {
                targets.push(&rest[..end]);
                rest = &rest[end + 1..];
            }
            None => break,
        }
    }
    targets
}

/// GitHub's anchor for a heading: lower case, spaces to hyphens, and
/// punctuation other than `-` and `_` dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of every heading of a markdown text.
fn anchors(text: &str) -> BTreeSet<String> {
    prose_lines(text)
        .into_iter()
        .filter(|line| line.starts_with('#'))
        .map(|line| slug(line.trim_start_matches('#')))
        .collect()
}

#[test]
fn readme_is_a_front_door() {
    let readme = read(&root().join("README.md"));
    let lines = readme.lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines, more than {README_MAX_LINES}: move the detail into docs/"
    );
    for command in [
        "cargo run --release",
        "cargo run --example client",
        "cargo test",
    ] {
        assert!(readme.contains(command), "README.md lost `{command}`");
    }
    assert!(
        readme.contains("docs/browser-page.png"),
        "README.md lost its screenshot"
    );
}

#[test]
fn every_relative_link_leads_to_an_existing_file_and_heading() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in documents() {
        let text = read(&file);
        let dir = file.parent().expect("a file has a directory");
        for line in prose_lines(&text) {
            for target in link_targets(line) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                checked += 1;
                let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
                let resolved = if path.is_empty() {
                    file.clone()
                } else {
                    dir.join(path)
                };
                if !resolved.exists() {
                    broken.push(format!("{}: {target}: no such file", file.display()));
                    continue;
                }
                let is_markdown = resolved.extension().is_some_and(|ext| ext == "md");
                if !anchor.is_empty() && is_markdown && !anchors(&read(&resolved)).contains(anchor)
                {
                    broken.push(format!("{}: {target}: no such heading", file.display()));
                }
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} links found: is the parser broken?"
    );
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn protocol_md_is_the_shared_protocol() {
    let shared = root().join("../shared/PROTOCOL.md");
    let copy = read(&root().join("docs/protocol.md"));
    assert!(
        copy.starts_with("# Line chat protocol, version "),
        "docs/protocol.md is not the protocol"
    );
    if shared.exists() {
        assert!(
            read(&shared) == copy,
            "docs/protocol.md differs from ../shared/PROTOCOL.md: cp ../shared/PROTOCOL.md docs/protocol.md"
        );
    } else {
        // CI has ../shared beside the checkout; a bare clone does not.
        eprintln!("no {}: comparison skipped", shared.display());
    }
}

/// The server's `--help`: each flag with its description on one line.
fn server_help() -> Vec<(String, String)> {
    let output = Command::new(env!("CARGO_BIN_EXE_loopchat"))
        .arg("--help")
        .output()
        .expect("run loopchat --help");
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).expect("UTF-8 help");
    let mut flags: Vec<(String, String)> = Vec::new();
    for line in text
        .lines()
        .skip_while(|line| !line.starts_with("Options:"))
    {
        // A flag starts its line after two spaces; its description's
        // continuation lines are indented further (and may start with --).
        let trimmed = line.trim_start();
        if let Some(flag) = line.strip_prefix("  --") {
            let (name, description) = flag.split_once(' ').unwrap_or((flag, ""));
            let name = name.trim_end_matches(',');
            flags.push((format!("--{name}"), description.trim().to_string()));
        } else if let Some((_, description)) = flags.last_mut() {
            description.push(' ');
            description.push_str(trimmed);
        }
    }
    flags.retain(|(name, _)| name != "--help");
    assert!(flags.len() > 30, "could not read --help:\n{text}");
    flags
}

/// The rows of the first table under `heading` in `text`: each row's
/// flags (the backticked `--names` of its first cell) and its cells.
fn flag_rows(text: &str, heading: &str) -> Vec<(Vec<String>, Vec<String>)> {
    let section = text
        .split_once(heading)
        .unwrap_or_else(|| panic!("no heading {heading}"))
        .1;
    section
        .lines()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .skip(2)
        .map(|row| {
            let cells: Vec<String> = row
                .trim_matches('|')
                .split('|')
                .map(|cell| cell.trim().to_string())
                .collect();
            let flags = cells[0]
                .split('`')
                .filter(|part| part.starts_with("--"))
                .map(|part| part.split(' ').next().unwrap_or(part).to_string())
                .collect();
            (flags, cells)
        })
        .collect()
}

/// The number in "(default N)" of a help description, if the default is one.
fn numeric_default(description: &str) -> Option<&str> {
    let start = description.find("(default ")? + "(default ".len();
    let value = &description[start..];
    let value = &value[..value.find(')')?];
    value.bytes().all(|b| b.is_ascii_digit()).then_some(value)
}

#[test]
fn flags_md_lists_every_server_flag_with_its_default() {
    let help = server_help();
    let doc = read(&root().join("docs/flags.md"));
    let rows = flag_rows(&doc, "## Server");
    let documented: BTreeSet<&str> = rows
        .iter()
        .flat_map(|(flags, _)| flags.iter().map(String::as_str))
        .collect();
    let offered: BTreeSet<&str> = help.iter().map(|(name, _)| name.as_str()).collect();
    let undocumented: Vec<_> = offered.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&offered).collect();
    assert!(
        undocumented.is_empty(),
        "flags in --help but not in docs/flags.md: {undocumented:?}"
    );
    assert!(
        unknown.is_empty(),
        "flags in docs/flags.md but not in --help: {unknown:?}"
    );
    for (name, description) in &help {
        let Some(default) = numeric_default(description) else {
            continue;
        };
        let (_, cells) = rows
            .iter()
            .find(|(flags, _)| flags.contains(name))
            .expect("checked above");
        assert_eq!(
            cells[1], default,
            "docs/flags.md gives {name} the default {}, --help says {default}",
            cells[1]
        );
    }
    // The README's short table names real flags too.
    let readme = read(&root().join("README.md"));
    for (flags, _) in flag_rows(&readme, "## Important flags") {
        for flag in flags {
            assert!(
                offered.contains(flag.as_str()),
                "README.md names {flag}, which --help does not offer"
            );
        }
    }
}

#[test]
fn readme_test_commands_are_what_ci_runs() {
    let readme = read(&root().join("README.md"));
    let ci = read(&root().join(".ci/run"));
    let tests = readme
        .split_once("## Tests")
        .expect("README.md has a Tests section")
        .1;
    let tests = tests.split("\n## ").next().unwrap_or(tests);
    assert!(
        tests.contains("`bash .ci/run`"),
        "README's Tests section must say CI runs `bash .ci/run`"
    );
    let prose = prose_lines(tests).join("\n");
    let commands: Vec<&str> = prose
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|span| span.starts_with("cargo "))
        .collect();
    assert!(
        commands.len() >= 3,
        "README names the commands .ci/run runs: {commands:?}"
    );
    for command in commands {
        assert!(
            ci.lines().any(|line| {
                let line = line.trim_start();
                !line.starts_with('#') && !line.starts_with("echo") && line.contains(command)
            }),
            "README says CI runs `{command}`, .ci/run does not"
        );
    }
    assert!(
        tests.contains("cargo test\n"),
        "README's Tests section shows `cargo test`"
    );
}

/// The paths the README's folder map names: the first column of its
/// `text` block, an indented entry relative to the folder above it.
fn folder_map(readme: &str) -> Vec<String> {
    let block = readme
        .split_once("```text\n")
        .expect("README.md has a folder map in a ```text block")
        .1;
    let block = block.split_once("```").expect("the folder map ends").0;
    let mut parent = String::new();
    let mut paths = Vec::new();
    for line in block.lines().filter(|line| !line.trim().is_empty()) {
        let indented = line.starts_with(' ');
        let entry = line.trim_start();
        let entry = entry.split_once("  ").map_or(entry, |(names, _)| names);
        for name in entry.split(", ") {
            let path = if indented {
                format!("{parent}{name}")
            } else {
                name.to_string()
            };
            if !indented && name.ends_with('/') {
                parent = name.to_string();
            }
            paths.push(path);
        }
    }
    paths
}

#[test]
fn readme_folder_map_agrees_with_the_tree() {
    let readme = read(&root().join("README.md"));
    let named = folder_map(&readme);
    let missing: Vec<&String> = named
        .iter()
        .filter(|path| !root().join(path).exists())
        .collect();
    assert!(
        missing.is_empty(),
        "README's folder map names what does not exist: {missing:?}"
    );
    // Every folder of the server crate and every crate of the workspace is
    // on the map.
    for parent in ["src", "crates"] {
        for entry in fs::read_dir(root().join(parent)).expect("read folder") {
            let entry = entry.expect("folder entry");
            if !entry.file_type().expect("file type").is_dir() {
                continue;
            }
            let folder = format!("{parent}/{}/", entry.file_name().to_string_lossy());
            assert!(
                named.contains(&folder),
                "README's folder map lacks {folder}"
            );
        }
    }
}
