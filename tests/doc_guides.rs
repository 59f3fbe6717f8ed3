//! Every command block of the guides in `docs/` that targets the simulator (fenced as
//! ```` ```sh sim ````, or ```` ```sh sim exit=N ```` when the block must end with status N)
//! runs against a fresh in-process simulator, in the guide's order, in one directory per guide,
//! with the simulator's port put in for 5077 (`calpump simulator`'s default). A block that no
//! longer works fails the test, naming the guide, the block and its output.
//!
//! When a ```` ```text ```` block follows a command block (nothing but blank lines between
//! them), it is the output the guide promises: the block's standard output must equal it, line
//! for line, after the few volatile parts listed in [`MASKS`] are masked on both sides. A
//! difference fails with a diff and the real output to paste into the guide. The German guides
//! (`*.de.md`) run with `LANG=de_DE.UTF-8`, as a German admin's terminal would, so their
//! output blocks show calpump's German texts.

use std::path::{Path, PathBuf};
use std::process::Command;

use calpump_simulator::{SimConfig, Simulator};

const BIN: &str = env!("CARGO_BIN_EXE_calpump");

/// The guides whose simulator blocks run.
const GUIDES: &[&str] = &[
    "docs/setup-graph.md",
    "docs/setup-graph.de.md",
    "docs/setup-ews-online.md",
    "docs/setup-ews-online.de.md",
    "docs/setup-ews-onprem.md",
    "docs/setup-ews-onprem.de.md",
    "docs/migrate-ews-to-graph.md",
];

/// The port the guides show for the simulator (`calpump simulator`'s default).
const GUIDE_PORT: u16 = 5077;

/// What may differ between a guide's output block and a run today, and why; everything else
/// must be equal. A pattern matches within one line: `#` is one or more digits, `%` one or more
/// lowercase hex digits, `{a|b}` one of the words listed, every other character itself. Both
/// the guide's text and the real output are masked, each match replaced by the second column.
/// Keep each rule as narrow as the sentence it masks: a number that does not depend on the day
/// or the hour (events synced, items in a calendar, mailboxes) is compared.
const MASKS: &[(&str, &str, &str)] = &[
    (
        "has # days left",
        "has <n> days left",
        "a secret's days left are counted from today",
    ),
    (
        "valid for # min",
        "valid for <n> min",
        "a token's lifetime runs down while the guide runs",
    ),
    (
        "expires in # min",
        "expires in <n> min",
        "a token's lifetime runs down while the guide runs",
    ),
    (
        ": # events in the next day and a half",
        ": <n> events in the next day and a half",
        "the probe reads from now on: the count depends on the hour",
    ),
    (
        "read # events around today",
        "read <n> events around today",
        "the probe reads around now: the count depends on the hour",
    ),
    (
        "window #-#-# #:# UTC – #-#-# #:# UTC",
        "window <from> – <to>",
        "a route's window is counted from today",
    ),
    (
        "switch-#T#.#Z-%",
        "switch-<id>",
        "a run-history id: the time of the switch and a random suffix",
    ),
    (
        "<title>Room 1.01 · {Free|Busy|Starting soon|Ending soon}</title>",
        "<title>Room 1.01 · <status></title>",
        "whether the room is free depends on the hour (a stale or unread sign does not match)",
    ),
];

#[derive(Debug, PartialEq)]
struct Expected {
    line: usize,
    text: String,
}

struct Block {
    line: usize,
    expect: i32,
    script: String,
    output: Option<Expected>,
}

/// The ```` ```sh sim ```` blocks of a Markdown text, with their first line number and the
/// ```` ```text ```` block right after each, if any.
fn sim_blocks(text: &str) -> Vec<Block> {
    enum State {
        Outside,
        Script(Block),
        /// After a command block, before anything but blank lines.
        AfterScript,
        Output(Expected),
        /// Inside a fence that is not ours.
        Other,
    }
    let mut out: Vec<Block> = Vec::new();
    let mut state = State::Outside;
    for (i, line) in text.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        state = match (state, fence) {
            (State::Script(block), Some(_)) => {
                out.push(block);
                State::AfterScript
            }
            (State::Script(mut block), None) => {
                block.script.push_str(line);
                block.script.push('\n');
                State::Script(block)
            }
            (State::Output(expected), Some(_)) => {
                if let Some(block) = out.last_mut() {
                    block.output = Some(expected);
                }
                State::Outside
            }
            (State::Output(mut expected), None) => {
                expected.text.push_str(line);
                expected.text.push('\n');
                State::Output(expected)
            }
            (State::Other, Some(_)) => State::Outside,
            (State::Other, None) => State::Other,
            (State::AfterScript, None) if line.trim().is_empty() => State::AfterScript,
            (State::AfterScript, Some(info)) if info.trim() == "text" => State::Output(Expected {
                line: i + 1,
                text: String::new(),
            }),
            (State::Outside | State::AfterScript, None) => State::Outside,
            (State::Outside | State::AfterScript, Some(info)) => {
                let words: Vec<&str> = info.split_whitespace().collect();
                if words.first() == Some(&"sh") && words.get(1) == Some(&"sim") {
                    let expect = words
                        .iter()
                        .find_map(|w| w.strip_prefix("exit="))
                        .map_or(0, |n| n.parse().expect("exit=N"));
                    State::Script(Block {
                        line: i + 1,
                        expect,
                        script: String::new(),
                        output: None,
                    })
                } else {
                    State::Other
                }
            }
        };
    }
    assert!(
        matches!(state, State::Outside | State::AfterScript),
        "unterminated fenced block"
    );
    out
}

/// One piece of a mask pattern.
enum Token<'a> {
    Digits,
    Hex,
    OneOf(Vec<&'a str>),
    Char(char),
}

fn tokens(pattern: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut rest = pattern;
    while let Some(c) = rest.chars().next() {
        if c == '{' {
            let end = rest.find('}').expect("`{` closed in a mask pattern");
            out.push(Token::OneOf(rest[1..end].split('|').collect()));
            rest = &rest[end + 1..];
            continue;
        }
        out.push(match c {
            '#' => Token::Digits,
            '%' => Token::Hex,
            c => Token::Char(c),
        });
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// The end of a match of `pattern` at the start of `text`, if it matches there.
fn match_len(pattern: &[Token<'_>], text: &str) -> Option<usize> {
    let mut at = 0;
    for token in pattern {
        let rest = &text[at..];
        let run = |class: fn(&char) -> bool| -> Option<usize> {
            let n: usize = rest.chars().take_while(class).map(char::len_utf8).sum();
            (n > 0).then_some(n)
        };
        at += match token {
            Token::Digits => run(char::is_ascii_digit)?,
            Token::Hex => run(|c| c.is_ascii_digit() || ('a'..='f').contains(c))?,
            Token::OneOf(words) => words.iter().find(|w| rest.starts_with(**w))?.len(),
            Token::Char(c) => rest.starts_with(*c).then_some(c.len_utf8())?,
        };
    }
    Some(at)
}

/// `line` with every match of `pattern` replaced by `with`. A match never starts inside a
/// number.
fn mask_line(line: &str, pattern: &[Token<'_>], with: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    let mut previous: Option<char> = None;
    while i < line.len() {
        let inside_number = previous.is_some_and(|p| p.is_ascii_alphanumeric())
            && matches!(pattern.first(), Some(Token::Digits | Token::Hex));
        if !inside_number && let Some(n) = match_len(pattern, &line[i..]) {
            out.push_str(with);
            i += n;
            previous = line[..i].chars().next_back();
            continue;
        }
        let c = line[i..].chars().next().expect("char");
        out.push(c);
        previous = Some(c);
        i += c.len_utf8();
    }
    out
}

/// A text with the [`MASKS`] applied to every line.
fn masked(text: &str) -> String {
    let masks: Vec<(Vec<Token<'_>>, &str)> = MASKS
        .iter()
        .map(|(pattern, with, _why)| (tokens(pattern), *with))
        .collect();
    text.lines()
        .map(|line| {
            masks.iter().fold(line.to_string(), |l, (pattern, with)| {
                mask_line(&l, pattern, with)
            })
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The real output as the guide shows it: the simulator's port written as 5077.
fn with_guide_port(output: &str, port: u16) -> String {
    let from = format!("127.0.0.1:{port}");
    let to = format!("127.0.0.1:{GUIDE_PORT}");
    let mut out = String::with_capacity(output.len());
    let mut rest = output;
    while let Some(at) = rest.find(&from) {
        let after = &rest[at + from.len()..];
        out.push_str(&rest[..at]);
        if after.starts_with(|c: char| c.is_ascii_digit()) {
            out.push_str(&from);
        } else {
            out.push_str(&to);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// A line diff (longest common subsequence): `  ` same, `- ` only in `expected`, `+ ` only in
/// `actual`.
fn diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    // lcs[i][j]: the common lines of a[i..] and b[j..].
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = String::new();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!("  {}\n", a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push_str(&format!("- {}\n", a[i]));
            i += 1;
        } else {
            out.push_str(&format!("+ {}\n", b[j]));
            j += 1;
        }
    }
    out
}

/// Compares a block's output with the guide's; the failure message, if they differ.
fn compare_output(guide: &str, block: &Block, stdout: &str) -> Option<String> {
    let expected = block.output.as_ref()?;
    let want = masked(expected.text.trim_end_matches('\n'));
    let got = masked(stdout.trim_end_matches('\n'));
    if want == got {
        return None;
    }
    Some(format!(
        "{guide}:{}: the output of the block at line {} differs from the guide (after masking; - guide, + real):\n{}\n--- the real output, to paste into the guide:\n{}",
        expected.line,
        block.line,
        diff(&want, &got),
        stdout.trim_end_matches('\n')
    ))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a guide's blocks; the problems found (a block failing stops the guide).
async fn run_guide(guide: &str) -> (usize, usize, Vec<String>) {
    let text = std::fs::read_to_string(root().join(guide)).expect(guide);
    let blocks = sim_blocks(&text);
    assert!(!blocks.is_empty(), "{guide} has no ```sh sim block");
    let lang = if guide.ends_with(".de.md") {
        "de_DE.UTF-8"
    } else {
        "C.UTF-8"
    };
    let sim = Simulator::start(SimConfig::default())
        .await
        .expect("simulator");
    let port = sim.addr().port();
    let tmp = tempfile::tempdir().expect("tmp");
    let bin_dir = Path::new(BIN).parent().expect("bin dir").to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut problems = Vec::new();
    let mut compared = 0;
    for block in &blocks {
        let script = block
            .script
            .replace("127.0.0.1:5077", &format!("127.0.0.1:{port}"));
        // Variables exported by earlier blocks carry over, as in one terminal.
        let wrapped = format!(
            "[ -f .guide-env ] && . ./.guide-env\ntrap 'export -p > .guide-env' EXIT\nset -euo pipefail\n{script}"
        );
        let dir = tmp.path().to_path_buf();
        let path = path.clone();
        let out = tokio::task::spawn_blocking(move || {
            Command::new("bash")
                .arg("-c")
                .arg(&wrapped)
                .current_dir(&dir)
                .env("PATH", &path)
                .env_remove("RUST_LOG")
                .env_remove("CALPUMP_CONFIG")
                .env_remove("LC_ALL")
                .env_remove("LC_MESSAGES")
                .env("LANG", lang)
                .output()
                .expect("bash")
        })
        .await
        .expect("join");
        let code = out.status.code().unwrap_or(-1);
        let stdout = with_guide_port(&String::from_utf8_lossy(&out.stdout), port);
        if code != block.expect {
            problems.push(format!(
                "{guide}:{}: the block ended with status {code} (expected {}):\n{}\n--- stdout\n{}\n--- stderr\n{}",
                block.line,
                block.expect,
                block.script,
                stdout,
                String::from_utf8_lossy(&out.stderr)
            ));
            break;
        }
        if block.output.is_some() {
            compared += 1;
        }
        problems.extend(compare_output(guide, block, &stdout));
    }
    sim.shutdown().await;
    (blocks.len(), compared, problems)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_simulator_block_of_the_guides_works_and_prints_what_the_guide_shows() {
    let mut total = 0;
    let mut problems = Vec::new();
    for guide in GUIDES {
        let (blocks, compared, found) = run_guide(guide).await;
        total += blocks;
        // Every guide shows what its connection test prints.
        if compared == 0 {
            problems.push(format!(
                "{guide}: no command block is followed by its output"
            ));
        }
        problems.extend(found);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    assert!(total >= GUIDES.len());
}

#[test]
fn blocks_are_found_with_their_expected_status_and_output() {
    let text = "x\n```sh sim\ncalpump check\n```\n\n```text\nok\n  two\n```\n```sh\nnot run\n```\n```sh sim exit=1\nfalse\n```\nprose\n```text\nnot an output\n```\n```sh sim\ntrue\n```\n";
    let blocks = sim_blocks(text);
    assert_eq!(blocks.len(), 3);
    assert_eq!(blocks[0].line, 2);
    assert_eq!(blocks[0].script, "calpump check\n");
    assert_eq!(
        blocks[0].output,
        Some(Expected {
            line: 6,
            text: "ok\n  two\n".to_string()
        })
    );
    assert_eq!(blocks[1].expect, 1);
    // Prose between a command block and a text block: not its output.
    assert_eq!(blocks[1].output, None);
    assert_eq!(blocks[2].script, "true\n");
    assert_eq!(blocks[2].output, None);
}

#[test]
fn masks_hide_what_changes_with_the_day_and_nothing_else() {
    let same = [
        (
            "the client secret (secret_expires) has 214 days left",
            "the client secret (secret_expires) has 26696 days left",
        ),
        (
            "(tenant 8f2c), valid for 59 min; roles",
            "(tenant 8f2c), valid for 60 min; roles",
        ),
        (
            "read room-1.01@contoso.com: 7 events in the next day and a half",
            "read room-1.01@contoso.com: 8 events in the next day and a half",
        ),
        (
            "graph (graph), window 2026-11-27 00:00 UTC – 2026-12-13 00:00 UTC",
            "graph (graph), window 2027-02-01 00:00 UTC – 2027-02-17 00:00 UTC",
        ),
        (
            "recorded as switch-20261128T162943.901Z-1d8e6fec; a running",
            "recorded as switch-20270101T000000.000Z-00ff00aa; a running",
        ),
        (
            "<title>Room 1.01 · Busy</title>",
            "<title>Room 1.01 · Starting soon</title>",
        ),
    ];
    for (a, b) in same {
        assert_eq!(masked(a), masked(b), "{a} / {b}");
        assert_ne!(masked(a), a, "{a} is masked");
    }
    let different = [
        (
            "route rooms (graph): ok — 1 mailboxes, 1 calendars, 51 upserts, 0 deletes",
            "route rooms (graph): ok — 1 mailboxes, 1 calendars, 52 upserts, 0 deletes",
        ),
        ("    └── Calendar · 32 items", "    └── Calendar · 31 items"),
        (
            "<title>Room 1.01 · Busy</title>",
            "<title>Room 1.01 · Not up to date</title>",
        ),
        (
            "the client secret (secret_expires) has 214 days left",
            "the client secret (secret_expires) expires in 2 days",
        ),
        ("valid for 59 min", "valid for 59 s"),
        (
            "switch-20261128T162943.901Z-1d8e6fec",
            "run-20261128T162943.901Z-1d8e6fec",
        ),
    ];
    for (a, b) in different {
        assert_ne!(masked(a), masked(b), "{a} / {b}");
    }
    // A number only matches whole.
    assert_eq!(masked("x has 12 days left"), "x has <n> days left");
    assert_eq!(masked("x has12 days left"), "x has12 days left");
}

#[test]
fn the_port_is_written_as_the_guides_show_it_and_differences_show_a_diff() {
    assert_eq!(
        with_guide_port(
            "at http://127.0.0.1:40123/v1.0, not 127.0.0.1:401234",
            40123
        ),
        "at http://127.0.0.1:5077/v1.0, not 127.0.0.1:401234"
    );
    let block = Block {
        line: 10,
        expect: 0,
        script: "calpump sync\n".to_string(),
        output: Some(Expected {
            line: 14,
            text: "a\nhas 3 days left\nb\nc\n".to_string(),
        }),
    };
    assert_eq!(
        compare_output("g.md", &block, "a\nhas 9 days left\nb\nc\n"),
        None
    );
    let message =
        compare_output("g.md", &block, "a\nhas 9 days left\nB\nc\nd\n").expect("a difference");
    assert!(
        message.contains("  a\n  has <n> days left\n- b\n+ B\n  c\n+ d\n"),
        "{message}"
    );
    assert!(
        message.starts_with("g.md:14: the output of the block at line 10"),
        "{message}"
    );
    assert!(
        message.ends_with("a\nhas 9 days left\nB\nc\nd"),
        "{message}"
    );
}
