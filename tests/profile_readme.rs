//! "Tried as a new user would, from the README alone": runs exactly the command blocks of
//! README.md between `<!-- readme-test:begin -->` and `<!-- readme-test:end -->` — the
//! `calpump simulator` block in the background (as the second terminal the README asks for),
//! the others one after the other in one shell, as typed into one terminal — with the
//! simulator's port replaced by a free one. Fails when any command stops working or stops
//! saying what the README promises.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_calpump");
const README_PORT: &str = "5077";

/// The ```sh blocks between the markers.
fn blocks(readme: &str) -> Vec<String> {
    let begin = readme
        .find("<!-- readme-test:begin -->")
        .expect("README has the begin marker");
    let end = readme
        .find("<!-- readme-test:end -->")
        .expect("README has the end marker");
    assert!(begin < end);
    let part = &readme[begin..end];
    let mut out = Vec::new();
    let mut rest = part;
    while let Some(start) = rest.find("```sh\n") {
        let body = &rest[start + 6..];
        let stop = body.find("```").expect("closed block");
        out.push(body[..stop].to_string());
        rest = &body[stop + 3..];
    }
    out
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn path_with_calpump() -> String {
    let dir = Path::new(BIN).parent().expect("bin dir");
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

struct Background(Child);

impl Drop for Background {
    fn drop(&mut self) {
        // SAFETY: SIGTERM to our own child.
        unsafe {
            libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
    }
}

#[test]
fn the_readme_gets_a_new_user_to_a_tested_profile() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let port = free_port().to_string();
    let blocks: Vec<String> = blocks(&readme)
        .into_iter()
        .map(|b| b.replace(README_PORT, &port))
        .collect();
    assert!(blocks.len() >= 4, "{blocks:?}");
    let (server, typed): (Vec<String>, Vec<String>) = blocks
        .into_iter()
        .partition(|b| b.trim_start().starts_with("calpump simulator"));
    assert_eq!(server.len(), 1, "one simulator block");
    assert!(
        server[0].contains(&format!("--port {port}")),
        "the simulator block names the port: {}",
        server[0]
    );
    let tmp = tempfile::tempdir().expect("tmp");
    let path = path_with_calpump();

    let _simulator = Background(
        Command::new("sh")
            .arg("-c")
            .arg(format!("exec {}", server[0].trim()))
            .current_dir(tmp.path())
            .env("PATH", &path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("simulator block"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port.parse::<u16>().expect("port"))).is_err() {
        assert!(Instant::now() < deadline, "the simulator did not start");
        std::thread::sleep(Duration::from_millis(100));
    }

    let script = typed.join("\n");
    let out = Command::new("sh")
        .arg("-e")
        .arg("-c")
        .arg(&script)
        .current_dir(tmp.path())
        .env("PATH", &path)
        .env_remove("LANG")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env_remove("RUST_LOG")
        .env_remove("CALPUMP_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("sh");
    let text = format!(
        "{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "a README command failed:\n{script}\n\n{text}"
    );
    for promised in [
        "wrote calpump.toml",
        "Wrote profile `cloud` to calpump.toml.",
        "Result: the connection works",
        "Ergebnis: Die Verbindung funktioniert",
        "Room lists",
        "Room 1.01 <room-1.01@contoso.com>",
        "configuration OK",
        "route rooms (graph): ok",
        "Wrote profile `wrong` to calpump.toml.",
        "[entra.AADSTS7000215] Invalid client secret",
        "Result: step 3 (Access token from Microsoft Entra ID) failed",
    ] {
        assert!(text.contains(promised), "missing {promised:?}:\n{text}");
    }
    let config = std::fs::read_to_string(tmp.path().join("calpump-try/calpump.toml"))
        .expect("the README's config");
    assert!(config.contains("client_secret = { encrypted = \"cp1:"));
    assert!(!config.contains("sIm8Q~GraphAppSecretValue"));
}
