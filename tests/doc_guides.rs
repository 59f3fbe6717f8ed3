//! Every command block of the guides in `docs/` that targets the simulator (fenced as
//! ```` ```sh sim ````, or ```` ```sh sim exit=N ```` when the block must end with status N)
//! runs against a fresh in-process simulator, in the guide's order, in one directory per guide,
//! with the simulator's port put in for 5077 (`calpump simulator`'s default). A block that no
//! longer works fails the test, naming the guide, the block and its output.

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

struct Block {
    line: usize,
    expect: i32,
    script: String,
}

/// The ```` ```sh sim ```` blocks of a Markdown text, with their first line number.
fn sim_blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut current: Option<Block> = None;
    for (i, line) in text.lines().enumerate() {
        match current.as_mut() {
            Some(block) => {
                if line.trim_start().starts_with("```") {
                    out.extend(current.take());
                } else {
                    block.script.push_str(line);
                    block.script.push('\n');
                }
            }
            None => {
                let Some(info) = line.trim_start().strip_prefix("```") else {
                    continue;
                };
                let words: Vec<&str> = info.split_whitespace().collect();
                if words.first() == Some(&"sh") && words.get(1) == Some(&"sim") {
                    let expect = words
                        .iter()
                        .find_map(|w| w.strip_prefix("exit="))
                        .map_or(0, |n| n.parse().expect("exit=N"));
                    current = Some(Block {
                        line: i + 1,
                        expect,
                        script: String::new(),
                    });
                }
            }
        }
    }
    assert!(current.is_none(), "unterminated ```sh sim block");
    out
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

async fn run_guide(guide: &str) -> usize {
    let text = std::fs::read_to_string(root().join(guide)).expect(guide);
    let blocks = sim_blocks(&text);
    assert!(!blocks.is_empty(), "{guide} has no ```sh sim block");
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
                .env("LANG", "C.UTF-8")
                .output()
                .expect("bash")
        })
        .await
        .expect("join");
        let code = out.status.code().unwrap_or(-1);
        assert_eq!(
            code,
            block.expect,
            "{guide}:{}: the block ended with status {code} (expected {}):\n{}\n--- stdout\n{}\n--- stderr\n{}",
            block.line,
            block.expect,
            block.script,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    blocks.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_simulator_block_of_the_guides_works() {
    let mut total = 0;
    for guide in GUIDES {
        total += run_guide(guide).await;
    }
    assert!(total >= GUIDES.len());
}

#[test]
fn blocks_are_found_with_their_expected_status() {
    let text =
        "x\n```sh sim\ncalpump check\n```\n```sh\nnot run\n```\n```sh sim exit=1\nfalse\n```\n";
    let blocks = sim_blocks(text);
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0].line, 2);
    assert_eq!(blocks[0].script, "calpump check\n");
    assert_eq!(blocks[1].expect, 1);
}
