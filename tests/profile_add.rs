//! `calpump profile add` as an admin uses it: the walk-through driven through a pseudo-terminal
//! for each backend (Graph with a client secret, EWS on-premises with NTLM — in German —, EWS
//! Exchange Online with OAuth), each starting from `calpump init`'s config, replacing its
//! placeholder profile, and ending with a config `calpump check` accepts and a profile `calpump
//! profile test` passes, the rest of the file (comments, layout) untouched; a "no" to replacing
//! an existing profile asks for another name; and the flag form
//! for scripts (EWS Basic, secret from stdin, encrypted; an existing profile refused without
//! `--force`; missing flags named).

mod profile_support;

use std::io::{Read as _, Write as _};
use std::os::fd::{FromRawFd as _, OwnedFd};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use calpump_simulator::{Simulator, catalogue};
use profile_support::*;

/// A child process on a pseudo-terminal: what it prints (ANSI sequences removed) and a way to
/// type.
struct Pty {
    master: std::fs::File,
    child: Child,
    rx: Receiver<Vec<u8>>,
    seen: String,
    /// Where the last `expect` matched; the next one searches after it.
    pos: usize,
}

/// Removes terminal control sequences (CSI, OSC, two-byte escapes) and carriage returns.
fn strip_ansi(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    for c in chars.by_ref() {
                        if c == '\u{7}' {
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

impl Pty {
    fn spawn(dir: &Path, args: &[&str]) -> Pty {
        // SAFETY: plain POSIX pseudo-terminal calls; every result is checked.
        let (master, slave) = unsafe {
            let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
            assert!(master >= 0, "posix_openpt");
            assert_eq!(libc::grantpt(master), 0, "grantpt");
            assert_eq!(libc::unlockpt(master), 0, "unlockpt");
            let mut name = [0 as libc::c_char; 128];
            assert_eq!(
                libc::ptsname_r(master, name.as_mut_ptr(), name.len()),
                0,
                "ptsname"
            );
            let slave = libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY);
            assert!(slave >= 0, "open slave");
            let size = libc::winsize {
                ws_row: 50,
                ws_col: 200,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            libc::ioctl(slave, libc::TIOCSWINSZ, &size);
            (
                std::fs::File::from_raw_fd(master),
                OwnedFd::from_raw_fd(slave),
            )
        };
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .env_remove("LANG")
            .env_remove("LC_ALL")
            .env_remove("LC_MESSAGES")
            .env_remove("CALPUMP_CONFIG")
            .env("TERM", "xterm")
            .stdin(Stdio::from(slave.try_clone().expect("dup")))
            .stdout(Stdio::from(slave.try_clone().expect("dup")))
            .stderr(Stdio::from(slave));
        // SAFETY: only async-signal-safe calls between fork and exec: a new session whose
        // controlling terminal is the pseudo-terminal (so /dev/tty is it).
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::ioctl(0, libc::TIOCSCTTY, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn calpump on a pty");
        drop(cmd);
        let mut reader = master.try_clone().expect("clone master");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once the child closed the terminal: the end.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Pty {
            master,
            child,
            rx,
            seen: String::new(),
            pos: 0,
        }
    }

    fn pump(&mut self, wait: Duration) -> bool {
        match self.rx.recv_timeout(wait) {
            Ok(bytes) => {
                let mut raw = bytes;
                while let Ok(more) = self.rx.try_recv() {
                    raw.extend(more);
                }
                self.seen
                    .push_str(&strip_ansi(&String::from_utf8_lossy(&raw)));
                true
            }
            Err(_) => false,
        }
    }

    /// Waits until `text` appears after the previous match.
    fn expect(&mut self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(at) = self.seen[self.pos..].find(text) {
                self.pos += at + text.len();
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let _ = self.child.kill();
                panic!(
                    "waited for {text:?}; the terminal shows:\n{}",
                    &self.seen[self.pos.min(self.seen.len())..]
                );
            }
            self.pump(left.min(Duration::from_millis(200)));
        }
    }

    /// Answers the prompt `prompt` with `keys` (a pause first, as a person would).
    fn answer(&mut self, prompt: &str, keys: &str) {
        self.expect(prompt);
        std::thread::sleep(Duration::from_millis(150));
        self.master.write_all(keys.as_bytes()).expect("type");
        self.master.flush().expect("flush");
    }

    /// Waits for the process to end; returns its exit code and everything it printed.
    fn finish(mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            self.pump(Duration::from_millis(100));
            if let Ok(Some(status)) = self.child.try_wait() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("profile add did not end:\n{}", self.seen);
            }
        };
        while self.pump(Duration::from_millis(200)) {}
        (status.code(), self.seen)
    }
}

const DOWN: &str = "\u{1b}[B";

/// `calpump init` in a fresh directory: the starter config with its placeholder profile
/// `cloud` and a route `rooms` reading room-1.01 through it.
fn init() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = calpump(tmp.path(), &["init"]);
    assert!(out.status.success(), "{}", all_output(&out));
    tmp
}

/// After the walk-through: the file kept the rest, `check` accepts it, `profile test` passes.
fn verify(dir: &Path, expect_in_profile: &[&str], secret: &str) {
    let text = std::fs::read_to_string(dir.join("calpump.toml")).expect("config");
    for kept in [
        "# calpump configuration. `calpump check` validates it without touching the network.",
        "[sinks.signs]                # door-sign pages, served by `calpump run` under /sinks/signs/",
        "mailboxes = [\"room-1.01@contoso.com\"]   # and/or room_lists = [\"Building A\"]",
        "# An on-premises Exchange through EWS (uncomment to use).",
    ] {
        assert!(text.contains(kept), "lost {kept:?}:\n{text}");
    }
    assert_eq!(text.matches("[profiles.cloud]").count(), 1, "{text}");
    for key in expect_in_profile {
        assert!(text.contains(key), "missing {key:?}:\n{text}");
    }
    assert!(
        text.contains("{ encrypted = \"cp1:"),
        "secret not encrypted:\n{text}"
    );
    assert!(!text.contains(secret), "plain secret in the file:\n{text}");
    let out = calpump(dir, &["check"]);
    assert_eq!(out.status.code(), Some(0), "check: {}", all_output(&out));
    let out = calpump(dir, &["--lang", "en", "profile", "test", "cloud"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "profile test: {}",
        all_output(&out)
    );
    assert!(stdout(&out).contains("Result: the connection works"));
}

fn walk_graph(sim: &Simulator, dir: &Path) -> (Option<i32>, String) {
    let mut pty = Pty::spawn(dir, &["--lang", "en", "profile", "add"]);
    pty.answer("Profile name", "cloud\r");
    pty.answer("A profile `cloud` exists. Replace it?", "y\r");
    pty.answer("What does calpump connect to?", "\r");
    pty.answer(
        "Tenant (primary domain or directory id)",
        "contoso.onmicrosoft.com\r",
    );
    pty.answer(
        "Application (client) ID of the app registration",
        &format!("{}\r", catalogue::GRAPH_APP_ID),
    );
    pty.answer("Credential", "\r");
    pty.answer(
        "Client secret (its Value, not the Secret ID)",
        &format!("{}\r", catalogue::GRAPH_APP_SECRET),
    );
    pty.answer("When does the client secret expire?", "2030-01-31\r");
    pty.answer("Change advanced settings (sign-in host, Graph URL", "y\r");
    pty.answer("Sign-in host", &format!("{}\r", sim.base_url()));
    pty.answer("Graph URL", &format!("{}\r", sim.graph_url()));
    pty.answer("A mailbox to test with", "room-1.01@contoso.com\r");
    pty.expect("Testing the connection of `cloud`");
    pty.finish()
}

fn walk_ews_onprem_de(sim: &Simulator, dir: &Path) -> (Option<i32>, String) {
    let mut pty = Pty::spawn(dir, &["--lang", "de", "profile", "add"]);
    pty.answer("Name des Profils", "cloud\r");
    pty.answer("Ein Profil `cloud` gibt es schon. Ersetzen?", "y\r");
    pty.answer("Womit verbindet sich calpump?", &format!("{DOWN}\r"));
    pty.answer("Wie wird der EWS-Endpunkt gefunden?", "\r");
    pty.answer("EWS-URL", &format!("{}\r", sim.ews_url()));
    pty.answer("Authentifizierung", "\r");
    pty.answer(
        "Dienstkonto (DOMÄNE\\benutzer oder UPN)",
        "CONTOSO\\svc-pump\r",
    );
    pty.answer(
        "Sein Kennwort",
        &format!("{}\r", catalogue::ACCOUNT_PASSWORD),
    );
    pty.answer("Identitätswechsel verwenden", "\r");
    pty.answer("Wann läuft das Kennwort ab?", "\r");
    pty.answer("Ein Postfach zum Testen", "room-1.01@contoso.com\r");
    pty.expect("Teste die Verbindung von `cloud`");
    pty.finish()
}

fn walk_ews_online(sim: &Simulator, dir: &Path) -> (Option<i32>, String) {
    let mut pty = Pty::spawn(dir, &["--lang", "en", "profile", "add"]);
    pty.answer("Profile name", "cloud\r");
    pty.answer("Replace it?", "y\r");
    pty.answer("What does calpump connect to?", &format!("{DOWN}{DOWN}\r"));
    pty.answer(
        "Tenant (primary domain or directory id)",
        "contoso.onmicrosoft.com\r",
    );
    pty.answer(
        "Application (client) ID",
        &format!("{}\r", catalogue::EWS_APP_ID),
    );
    pty.answer("How does calpump sign in?", "\r");
    pty.answer("Credential", "\r");
    pty.answer(
        "Client secret (its Value",
        &format!("{}\r", catalogue::EWS_APP_SECRET),
    );
    pty.answer("Change advanced settings (sign-in host, EWS URL", "y\r");
    pty.answer("Sign-in host", &format!("{}\r", sim.base_url()));
    pty.answer("EWS URL", &format!("{}\r", sim.ews_url()));
    pty.answer("When does the client secret expire?", "2030-01-31\r");
    pty.answer("A mailbox to test with", "room-1.01@contoso.com\r");
    pty.expect("Testing the connection of `cloud`");
    pty.finish()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_walk_through_sets_up_each_backend_on_a_terminal() {
    let sim = simulator(10).await;
    let sim = std::sync::Arc::new(sim);

    // Graph with a client secret.
    let s = std::sync::Arc::clone(&sim);
    tokio::task::spawn_blocking(move || {
        let tmp = init();
        let (code, seen) = walk_graph(&s, tmp.path());
        assert_eq!(code, Some(0), "{seen}");
        assert!(
            seen.contains("  3 ✓ Access token from Microsoft Entra ID"),
            "{seen}"
        );
        assert!(
            seen.contains("Wrote profile `cloud` to calpump.toml."),
            "{seen}"
        );
        assert!(seen.contains("The connection works."), "{seen}");
        // The secret typed at the hidden prompt never shows on the terminal.
        assert!(!seen.contains(catalogue::GRAPH_APP_SECRET), "{seen}");
        verify(
            tmp.path(),
            &[
                "backend = \"graph\"",
                "tenant = \"contoso.onmicrosoft.com\"",
                &format!("client_id = \"{}\"", catalogue::GRAPH_APP_ID),
                "secret_expires = 2030-01-31",
                &format!("graph_url = \"{}\"", s.graph_url()),
            ],
            catalogue::GRAPH_APP_SECRET,
        );
    })
    .await
    .expect("graph");

    // EWS on-premises, NTLM, in German.
    let s = std::sync::Arc::clone(&sim);
    tokio::task::spawn_blocking(move || {
        let tmp = init();
        let (code, seen) = walk_ews_onprem_de(&s, tmp.path());
        assert_eq!(code, Some(0), "{seen}");
        assert!(seen.contains("  4 ✓ NTLM-Anmeldung"), "{seen}");
        assert!(
            seen.contains("Identitätswechsel für room-1.01@contoso.com"),
            "{seen}"
        );
        assert!(seen.contains("Profil `cloud` in calpump.toml geschrieben."), "{seen}");
        assert!(seen.contains("Die Verbindung funktioniert."), "{seen}");
        verify(
            tmp.path(),
            &[
                "backend = \"ews\"",
                &format!("url = \"{}\"", s.ews_url()),
                "auth = { kind = \"ntlm\", username = 'CONTOSO\\svc-pump', password = { encrypted = \"cp1:",
                "impersonation = true",
                "probe_mailbox = \"room-1.01@contoso.com\"",
            ],
            catalogue::ACCOUNT_PASSWORD,
        );
    })
    .await
    .expect("ews on-prem");

    // EWS Exchange Online, OAuth client credentials.
    let s = std::sync::Arc::clone(&sim);
    tokio::task::spawn_blocking(move || {
        let tmp = init();
        let (code, seen) = walk_ews_online(&s, tmp.path());
        assert_eq!(code, Some(0), "{seen}");
        assert!(seen.contains("✓ OAuth token"), "{seen}");
        assert!(seen.contains("full_access_as_app"), "{seen}");
        verify(
            tmp.path(),
            &[
                "backend = \"ews\"",
                &format!("url = \"{}\"", s.ews_url()),
                &format!(
                    "auth = {{ kind = \"oauth\", tenant = \"contoso.onmicrosoft.com\", client_id = \"{}\", client_secret = {{ encrypted = \"cp1:",
                    catalogue::EWS_APP_ID
                ),
                &format!("authority = \"{}\" }}", s.base_url()),
                "secret_expires = 2030-01-31",
            ],
            catalogue::EWS_APP_SECRET,
        );
    })
    .await
    .expect("ews online");
    if let Ok(sim) = std::sync::Arc::try_unwrap(sim) {
        sim.shutdown().await;
    }
}

/// The starter's `cloud` exists; "no" to replacing it asks for another name, and the new
/// profile is written beside the old one.
fn walk_graph_under_another_name(sim: &Simulator, dir: &Path) -> (Option<i32>, String) {
    let mut pty = Pty::spawn(dir, &["--lang", "en", "profile", "add"]);
    pty.answer("Profile name", "cloud\r");
    pty.answer("A profile `cloud` exists. Replace it?", "n\r");
    pty.expect("`cloud` stays as it is; choose another name for the new profile.");
    pty.answer("Profile name", "graph\r");
    pty.answer("What does calpump connect to?", "\r");
    pty.answer(
        "Tenant (primary domain or directory id)",
        "contoso.onmicrosoft.com\r",
    );
    pty.answer(
        "Application (client) ID of the app registration",
        &format!("{}\r", catalogue::GRAPH_APP_ID),
    );
    pty.answer("Credential", "\r");
    pty.answer(
        "Client secret (its Value, not the Secret ID)",
        &format!("{}\r", catalogue::GRAPH_APP_SECRET),
    );
    pty.answer("When does the client secret expire?", "\r");
    pty.answer("Change advanced settings (sign-in host, Graph URL", "y\r");
    pty.answer("Sign-in host", &format!("{}\r", sim.base_url()));
    pty.answer("Graph URL", &format!("{}\r", sim.graph_url()));
    pty.answer("A mailbox to test with", "room-1.01@contoso.com\r");
    pty.expect("Testing the connection of `graph`");
    pty.finish()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_to_replacing_an_existing_profile_asks_for_another_name() {
    let sim = simulator(10).await;
    let sim = std::sync::Arc::new(sim);
    let s = std::sync::Arc::clone(&sim);
    tokio::task::spawn_blocking(move || {
        let tmp = init();
        let starter = std::fs::read_to_string(tmp.path().join("calpump.toml")).expect("config");
        let (code, seen) = walk_graph_under_another_name(&s, tmp.path());
        assert_eq!(code, Some(0), "{seen}");
        assert!(!seen.contains("pass --force"), "{seen}");
        assert!(
            seen.contains("Wrote profile `graph` to calpump.toml."),
            "{seen}"
        );
        let text = std::fs::read_to_string(tmp.path().join("calpump.toml")).expect("config");
        // The starter's profile is untouched, the new one is beside it.
        let cloud = starter
            .split("[profiles.cloud]")
            .nth(1)
            .and_then(|rest| rest.split("\n\n").next())
            .expect("the starter's cloud profile");
        assert!(
            text.contains(&format!("[profiles.cloud]{cloud}")),
            "cloud changed:\n{text}"
        );
        assert_eq!(text.matches("[profiles.graph]").count(), 1, "{text}");
        assert!(
            text.contains(&format!("client_id = \"{}\"", catalogue::GRAPH_APP_ID)),
            "{text}"
        );
        let out = calpump(tmp.path(), &["--lang", "en", "profile", "test", "graph"]);
        assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    })
    .await
    .expect("another name");
    if let Ok(sim) = std::sync::Arc::try_unwrap(sim) {
        sim.shutdown().await;
    }
}

fn add_with_flags(dir: &Path, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("LANG")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("output")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flag_form_adds_a_profile_for_scripts() {
    let sim = simulator(10).await;
    let ews_url = sim.ews_url();
    tokio::task::spawn_blocking(move || {
        let tmp = tempfile::tempdir().expect("tmp");
        let original = "# Our calpump — edited by hand, keep this comment.\n\n[state]\npath = \"state.db\"   # beside the config\n\n[sinks.signs]\nplugin = \"doorsign\"\nout_dir = \"signs\"\ntime_zone = \"Europe/Berlin\"\n\n[[routes]]\nname = \"rooms\"\nprofile = \"onprem\"\nmailboxes = [\"room-1.02@contoso.com\"]\nsinks = [\"signs\"]\n";
        std::fs::write(tmp.path().join("calpump.toml"), original).expect("config");
        let args = [
            "profile",
            "add",
            "--name",
            "onprem",
            "--backend",
            "ews",
            "--auth",
            "basic",
            "--url",
            &ews_url,
            "--username",
            "svc-pump@contoso.com",
            "--secret-stdin",
            "--secret-expires",
            "2030-06-30",
        ];
        let out = add_with_flags(tmp.path(), &args, &format!("{}\n", catalogue::ACCOUNT_PASSWORD));
        assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
        let text = stdout(&out);
        // The probe mailbox came from the route.
        assert!(
            text.contains("Impersonation of room-1.02@contoso.com"),
            "{}",
            all_output(&out)
        );
        assert!(text.contains("Wrote profile `onprem` to calpump.toml."), "{text}");
        // The key file was created for the encrypted password.
        assert!(tmp.path().join("calpump.key").exists());
        let written = std::fs::read_to_string(tmp.path().join("calpump.toml")).expect("read");
        // Everything that was there is still there, byte for byte, in front of the profile.
        let (before, added) = written.split_at(
            written
                .find("\n[profiles.onprem]")
                .unwrap_or_else(|| panic!("no profile:\n{written}")),
        );
        assert!(original.starts_with(before) || before.starts_with(original.trim_end()), "{written}");
        assert!(written.contains("# Our calpump — edited by hand, keep this comment."));
        assert!(written.contains("path = \"state.db\"   # beside the config"));
        assert!(added.contains("auth = { kind = \"basic\", username = \"svc-pump@contoso.com\", password = { encrypted = \"cp1:"), "{added}");
        assert!(added.contains("secret_expires = 2030-06-30"), "{added}");
        assert!(!written.contains(catalogue::ACCOUNT_PASSWORD));
        let out = calpump(tmp.path(), &["check"]);
        assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
        let out = calpump(tmp.path(), &["profile", "test", "onprem"]);
        assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));

        // The same name again: refused without --force, file unchanged.
        let out = add_with_flags(tmp.path(), &args, "another\n");
        assert_eq!(out.status.code(), Some(2), "{}", all_output(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains("pass --force to replace it"));
        assert_eq!(
            std::fs::read_to_string(tmp.path().join("calpump.toml")).expect("read"),
            written
        );
        // With --force it is replaced in place (still one table, same position).
        let mut forced = args.to_vec();
        forced.extend(["--force", "--no-test", "--probe-mailbox", "room-1.03@contoso.com"]);
        let out = add_with_flags(tmp.path(), &forced, &format!("{}\n", catalogue::ACCOUNT_PASSWORD));
        assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
        let replaced = std::fs::read_to_string(tmp.path().join("calpump.toml")).expect("read");
        assert_eq!(replaced.matches("[profiles.onprem]").count(), 1, "{replaced}");
        assert!(replaced.contains("probe_mailbox = \"room-1.03@contoso.com\""));
        assert!(replaced.find("[profiles.onprem]") == written.find("[profiles.onprem]"));

        // Missing answers without a terminal: named as flags.
        let out = add_with_flags(
            tmp.path(),
            &["--lang", "de", "profile", "add", "--name", "x", "--backend", "graph"],
            "",
        );
        assert_eq!(out.status.code(), Some(2), "{}", all_output(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("fehlt") && err.contains("--tenant") && err.contains("--client-id"), "{err}");
    })
    .await
    .expect("flags");
    sim.shutdown().await;
}
