//! `cargo run -p xtask -- docs [--check]`.

use std::process::ExitCode;

const USAGE: &str = "usage: cargo run -p xtask -- docs [--check]\n\
  docs          write the generated references into docs/reference/\n\
  docs --check  compare instead of writing; exit 1 with a summary when they differ";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["docs"] => docs(false),
        ["docs", "--check"] => docs(true),
        ["-h" | "--help" | "help"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn docs(check: bool) -> ExitCode {
    let root = xtask::workspace_root();
    let files = match xtask::generate(&root) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("xtask docs: {e}");
            return ExitCode::FAILURE;
        }
    };
    if check {
        let problems = xtask::check(&root, &files);
        if problems.is_empty() {
            println!("xtask docs: {} references are current", files.len());
            return ExitCode::SUCCESS;
        }
        for problem in &problems {
            eprintln!("{problem}");
        }
        eprintln!(
            "xtask docs: {} of the references differ from the code; run `cargo run -p xtask -- docs` and commit the result",
            problems.len()
        );
        return ExitCode::FAILURE;
    }
    match xtask::write(&root, &files) {
        Ok(changed) => {
            for path in &changed {
                println!("wrote {}", path.display());
            }
            println!(
                "xtask docs: {} references, {} changed",
                files.len(),
                changed.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xtask docs: {e}");
            ExitCode::FAILURE
        }
    }
}
