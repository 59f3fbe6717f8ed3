//! No secret in anything the real `calpump` binary prints or writes.
//!
//! Profiles of every sign-in calpump has — EWS Basic, EWS NTLM, EWS OAuth with a client secret,
//! EWS with the password grant, Graph with a client secret, Graph with the password grant — each
//! given its credential through every secret reference form (`{ env }`, `{ file }`,
//! `{ encrypted }` made by `calpump secret encrypt`, and the discouraged plain string), against
//! the in-process simulator with its real credentials (so the calls succeed), and again with
//! marker passwords and secrets that the simulator refuses (EWS 401, AADSTS7000215,
//! AADSTS50126). `check`, `profile list`, `profile test` (text and `--json`), `mailboxes
//! --json`, `sync` (text and `--json`) and `profile add --secret-stdin` run with
//! `RUST_LOG=trace`, half of them with `--log-format json`; the simulator also answers with
//! HTML sign-in pages (token endpoint, EWS, Graph) and issues three-second tokens so the password
//! grant's refresh token is used. A password written without quotes (a TOML number) is refused
//! by `check` and `profile test` without being repeated.
//!
//! Everything the runs printed (stdout and stderr) and every file they wrote (state database,
//! the database sink's SQLite file, door signs, WAL files) is searched for each real and marker
//! secret (as written, form-encoded and base64), `base64(user:password)`, the encryption key,
//! NTLM authenticate messages, and any token the simulator issued (a JWT — the simulator's
//! access and refresh tokens are JWTs — or `Bearer ` with a token after it).
//!
//! So that the test can fail: the search is first shown to find the markers in the inputs the
//! test wrote (config, secret files, encrypted values decrypted, environment) and a token the
//! simulator issues in a sample `Authorization` header; every run is checked to have reached
//! the simulator (request counts, the catalogue's code of the refusal) and to have logged at
//! TRACE level.

#[path = "common/binary.rs"]
mod binary;

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use binary::{BIN, Env, Run, q};
use calpump_engine::secret::{SecretRef, SecretResolver};
use calpump_simulator::auth::Claims;
use calpump_simulator::{Fault, FaultRule, Protocol, SimConfig, catalogue};
use serde_json::Value;

/// A password the simulator refuses, planted where the real one would go.
const MARKER_PASSWORD: &str = "Wr0ng-Marker-Pass-7781";
/// A client secret the simulator refuses (AADSTS7000215); `~` and `.` as in Entra's secrets.
const MARKER_SECRET: &str = "Wr0ng~Marker-Secret.7781-x";

/// A password written without quotes (a TOML integer): refused, never repeated.
const NUMERIC_PASSWORD: &str = "778177817781";

/// Rooms of the simulated tenant; every good profile's route reads one of them.
const ROOMS: u32 = 30;
/// The mailbox failing profiles probe.
const BAD_PROBE: &str = "room-1.30@contoso.com";

// ---- Profiles ----

/// A way of signing in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cred {
    EwsBasic,
    EwsNtlm,
    EwsOauthSecret,
    EwsPasswordGrant,
    GraphSecret,
    GraphPasswordGrant,
}

const CREDS: [Cred; 6] = [
    Cred::EwsBasic,
    Cred::EwsNtlm,
    Cred::EwsOauthSecret,
    Cred::EwsPasswordGrant,
    Cred::GraphSecret,
    Cred::GraphPasswordGrant,
];

impl Cred {
    fn name(self) -> &'static str {
        match self {
            Cred::EwsBasic => "ews-basic",
            Cred::EwsNtlm => "ews-ntlm",
            Cred::EwsOauthSecret => "ews-secret",
            Cred::EwsPasswordGrant => "ews-ropc",
            Cred::GraphSecret => "graph-secret",
            Cred::GraphPasswordGrant => "graph-ropc",
        }
    }

    /// The simulator's real credential.
    fn real(self) -> &'static str {
        match self {
            Cred::EwsOauthSecret => catalogue::EWS_APP_SECRET,
            Cred::GraphSecret => catalogue::GRAPH_APP_SECRET,
            _ => catalogue::ACCOUNT_PASSWORD,
        }
    }

    /// The marker the simulator refuses.
    fn marker(self) -> &'static str {
        match self {
            Cred::EwsOauthSecret | Cred::GraphSecret => MARKER_SECRET,
            _ => MARKER_PASSWORD,
        }
    }

    /// The catalogue code a wrong credential fails with.
    fn refusal(self) -> &'static str {
        match self {
            Cred::EwsBasic | Cred::EwsNtlm => "ews.Unauthorized",
            Cred::EwsOauthSecret | Cred::GraphSecret => "entra.AADSTS7000215",
            Cred::EwsPasswordGrant | Cred::GraphPasswordGrant => "entra.AADSTS50126",
        }
    }

    /// Whether the credential is checked by the token endpoint (else by EWS itself).
    fn uses_token_endpoint(self) -> bool {
        !matches!(self, Cred::EwsBasic | Cred::EwsNtlm)
    }

    /// The `[profiles.x]` body with `secret` (a TOML value) as the credential.
    fn body(self, env: &Env, secret: &str, probe: &str) -> String {
        let ews = q(&env.sim.ews_url());
        let authority = q(env.sim.authority());
        let tenant = q(catalogue::TENANT_DOMAIN);
        let graph = q(&env.sim.graph_url());
        let probe = q(probe);
        match self {
            Cred::EwsBasic => format!(
                "backend = \"ews\"\nurl = {ews}\nauth = {{ kind = \"basic\", username = \"svc-pump@contoso.com\", password = {secret} }}\nimpersonation = true\nprobe_mailbox = {probe}\n"
            ),
            Cred::EwsNtlm => format!(
                "backend = \"ews\"\nurl = {ews}\nauth = {{ kind = \"ntlm\", username = 'CONTOSO\\svc-pump', password = {secret} }}\nimpersonation = true\nprobe_mailbox = {probe}\n"
            ),
            Cred::EwsOauthSecret => format!(
                "backend = \"ews\"\nurl = {ews}\nauth = {{ kind = \"oauth\", tenant = {tenant}, client_id = {id}, client_secret = {secret}, authority = {authority} }}\nprobe_mailbox = {probe}\n",
                id = q(catalogue::EWS_APP_ID),
            ),
            Cred::EwsPasswordGrant => format!(
                "backend = \"ews\"\nurl = {ews}\nauth = {{ kind = \"oauth\", tenant = {tenant}, client_id = {id}, username = \"svc-pump@contoso.com\", password = {secret}, authority = {authority} }}\nimpersonation = false\nprobe_mailbox = {probe}\n",
                id = q(catalogue::DELEGATED_APP_ID),
            ),
            Cred::GraphSecret => format!(
                "backend = \"graph\"\ntenant = {tenant}\nclient_id = {id}\nclient_secret = {secret}\nauthority = {authority}\ngraph_url = {graph}\nprobe_mailbox = {probe}\n",
                id = q(catalogue::GRAPH_APP_ID),
            ),
            Cred::GraphPasswordGrant => format!(
                "backend = \"graph\"\ntenant = {tenant}\nclient_id = {id}\nusername = \"svc-pump@contoso.com\"\npassword = {secret}\nauthority = {authority}\ngraph_url = {graph}\nprobe_mailbox = {probe}\n",
                id = q(catalogue::DELEGATED_APP_ID),
            ),
        }
    }
}

/// How the config refers to a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Env,
    File,
    Encrypted,
    Plain,
}

const FORMS: [Form; 4] = [Form::Env, Form::File, Form::Encrypted, Form::Plain];

impl Form {
    fn name(self) -> &'static str {
        match self {
            Form::Env => "env",
            Form::File => "file",
            Form::Encrypted => "encrypted",
            Form::Plain => "plain",
        }
    }
}

/// One profile of the config, with a route of the same name.
#[derive(Debug, Clone)]
struct Profile {
    name: String,
    cred: Cred,
    form: Form,
    /// The simulator's credential (else the marker).
    good: bool,
    /// The route's mailbox (and the profile's probe mailbox).
    room: String,
}

fn room(n: u32) -> String {
    format!("room-1.{n:02}@contoso.com")
}

/// Every credential through every form, real (`good`) or marker; rooms from `first_room`.
fn profiles(prefix: &str, good: bool, first_room: u32) -> Vec<Profile> {
    let mut out = Vec::new();
    for cred in CREDS {
        for form in FORMS {
            let n = first_room + out.len() as u32;
            out.push(Profile {
                name: format!("{prefix}{}-{}", cred.name(), form.name()),
                cred,
                form,
                good,
                room: if good { room(n) } else { BAD_PROBE.to_string() },
            });
        }
    }
    out
}

// ---- Runs ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Log {
    Text,
    Json,
}

/// One run of the binary.
struct Out {
    label: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Out {
    fn show(&self) -> String {
        let tail: Vec<&str> = self.stderr.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(
            "{}: exit {:?}\n--- stdout\n{}\n--- stderr (end)\n{}",
            self.label,
            self.code,
            self.stdout.chars().take(4000).collect::<String>(),
            tail.join("\n")
        )
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.show()))
    }

    /// As the binary tests' sync run (report, error codes).
    fn sync_run(&self) -> Run {
        Run {
            code: self.code,
            stdout: self.stdout.clone(),
            stderr: self.stderr.clone(),
            report: serde_json::from_str(&self.stdout).unwrap_or(Value::Null),
            took: std::time::Duration::ZERO,
        }
    }

    /// A TRACE line was logged (the filter took effect) in the format asked for.
    fn assert_traced(&self, log: Log) {
        let traced = match log {
            Log::Json => self
                .stderr
                .lines()
                .any(|l| serde_json::from_str::<Value>(l).is_ok_and(|v| v["level"] == "TRACE")),
            Log::Text => self.stderr.lines().any(|l| l.contains("TRACE")),
        };
        assert!(traced, "no TRACE line in {log:?} format:\n{}", self.show());
    }
}

/// A simulator, a working directory with a config of `profiles`, and everything the binary
/// printed.
struct Bench {
    env: Env,
    dir: PathBuf,
    profiles: Vec<Profile>,
    vars: Vec<(String, String)>,
    /// Files the test wrote (not searched for secrets: they hold them on purpose).
    inputs: BTreeSet<PathBuf>,
    /// (label, bytes) of every stdout and stderr.
    printed: Vec<(String, Vec<u8>)>,
    /// Encrypted references made by `calpump secret encrypt`, by value.
    encrypted: Vec<(String, String)>,
}

impl Bench {
    fn new(seed: u64, profiles: Vec<Profile>) -> Bench {
        let env = Env::start(SimConfig {
            rooms: ROOMS,
            events_per_room: 8,
            users: 2,
            seed,
            ..SimConfig::default()
        });
        let dir = env.tmp.path().join("work");
        std::fs::create_dir_all(dir.join("secrets")).expect("dirs");
        let mut bench = Bench {
            env,
            dir,
            profiles,
            vars: Vec::new(),
            inputs: BTreeSet::new(),
            printed: Vec::new(),
            encrypted: Vec::new(),
        };
        // The key file for `{ encrypted }`, made by `calpump init` (beside a starter config).
        let init = bench.run("init", &["--config", "starter.toml", "init"], Log::Text);
        assert_eq!(init.code, Some(0), "{}", init.show());
        for f in ["starter.toml", "calpump.key"] {
            assert!(bench.dir.join(f).exists(), "init wrote no {f}");
            bench.inputs.insert(bench.dir.join(f));
        }
        bench.write_config();
        bench
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Runs `calpump args` in the directory with `RUST_LOG=trace`, the secrets' variables and
    /// the log format; keeps what it printed.
    fn run(&mut self, label: &str, args: &[&str], log: Log) -> Out {
        self.run_with(label, args, log, None, &[])
    }

    fn run_with(
        &mut self,
        label: &str,
        args: &[&str],
        log: Log,
        stdin: Option<&str>,
        extra_env: &[(&str, &str)],
    ) -> Out {
        let mut cmd = Command::new(BIN);
        if log == Log::Json {
            cmd.args(["--log-format", "json"]);
        }
        cmd.args(args)
            .current_dir(&self.dir)
            .env("RUST_LOG", "trace")
            .env("NO_COLOR", "1")
            .env("LANG", "C")
            .env_remove("CALPUMP_CONFIG")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("calpump starts");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        let out = child.wait_with_output().expect("calpump runs");
        let label = format!("{label} ({log:?} log)");
        self.printed
            .push((format!("{label}: stdout"), out.stdout.clone()));
        self.printed
            .push((format!("{label}: stderr"), out.stderr.clone()));
        Out {
            label,
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).to_string(),
        }
    }

    /// `{ encrypted = "cp1:…" }` for `value`, made by `calpump secret encrypt` (stdin).
    fn encrypted(&mut self, value: &str) -> String {
        if let Some((_, r)) = self.encrypted.iter().find(|(v, _)| v == value) {
            return r.clone();
        }
        let out = self.run_with(
            "secret encrypt",
            &["secret", "encrypt"],
            Log::Text,
            Some(&format!("{value}\n")),
            &[],
        );
        assert_eq!(out.code, Some(0), "{}", out.show());
        let reference = out.stdout.trim().to_string();
        assert!(
            reference.starts_with("{ encrypted = \"cp1:"),
            "{}",
            out.show()
        );
        self.encrypted.push((value.to_string(), reference.clone()));
        reference
    }

    /// The secret reference of a profile, its file or variable created.
    fn reference(&mut self, p: &Profile) -> String {
        let value = if p.good {
            p.cred.real()
        } else {
            p.cred.marker()
        };
        match p.form {
            Form::Env => {
                let var = format!("CALPUMP_E2E_{}", p.name.to_uppercase().replace('-', "_"));
                self.vars.push((var.clone(), value.to_string()));
                format!("{{ env = {} }}", q(&var))
            }
            Form::File => {
                let path = self.dir.join("secrets").join(&p.name);
                // A trailing newline, as an editor leaves it.
                std::fs::write(&path, format!("{value}\n")).expect("secret file");
                self.inputs.insert(path.clone());
                format!("{{ file = {} }}", q(&path.display().to_string()))
            }
            Form::Encrypted => self.encrypted(value),
            Form::Plain => q(value),
        }
    }

    fn write_config(&mut self) {
        let mut config = format!(
            "[state]\npath = \"state.db\"\n\n[secrets]\nkey_file = \"calpump.key\"\n\n[sinks.db]\nplugin = \"database\"\nurl = {db}\n\n[sinks.signs]\nplugin = \"doorsign\"\nout_dir = \"signs\"\n",
            db = q(&format!("sqlite://{}", self.path("events.db").display())),
        );
        let profiles = self.profiles.clone();
        for p in &profiles {
            let secret = self.reference(p);
            config.push_str(&format!(
                "\n[profiles.{}]\n{}",
                p.name,
                p.cred.body(&self.env, &secret, &p.room)
            ));
        }
        for p in &profiles {
            config.push_str(&format!(
                "\n[[routes]]\nname = {}\nprofile = {}\nsinks = [\"db\", \"signs\"]\nmailboxes = [{}]\ncalendars = \"all\"\nwindow = {{ past_days = 1, future_days = 14 }}\n",
                q(&p.name),
                q(&p.name),
                q(&p.room)
            ));
        }
        std::fs::write(self.path("calpump.toml"), config).expect("config");
        self.inputs.insert(self.path("calpump.toml"));
        self.assert_inputs_hold_the_secrets();
    }

    /// The search finds each profile's secret where the test put it: the config (plain), the
    /// secret file, the variable, the encrypted value once decrypted with the key file.
    fn assert_inputs_hold_the_secrets(&self) {
        let config = std::fs::read_to_string(self.path("calpump.toml")).expect("config");
        let resolver = SecretResolver::new(self.path("calpump.key"));
        for p in &self.profiles {
            let value = if p.good {
                p.cred.real()
            } else {
                p.cred.marker()
            };
            let needles = Needles::for_secrets(&[("it", value)]);
            let held: Vec<u8> = match p.form {
                Form::Plain => config.clone().into_bytes(),
                Form::File => {
                    std::fs::read(self.dir.join("secrets").join(&p.name)).expect("secret file")
                }
                Form::Env => {
                    let var = format!("CALPUMP_E2E_{}", p.name.to_uppercase().replace('-', "_"));
                    self.vars
                        .iter()
                        .find(|(k, _)| *k == var)
                        .map(|(_, v)| v.clone().into_bytes())
                        .unwrap_or_default()
                }
                Form::Encrypted => {
                    let (_, reference) = self
                        .encrypted
                        .iter()
                        .find(|(v, _)| v == value)
                        .expect("encrypted");
                    assert!(
                        config.contains(reference.as_str()),
                        "{}: the reference is in the config",
                        p.name
                    );
                    assert!(
                        needles.find_in(reference.as_bytes()).is_empty(),
                        "{}: the encrypted reference shows the value",
                        p.name
                    );
                    let sealed = reference
                        .trim_start_matches("{ encrypted = \"")
                        .trim_end_matches("\" }");
                    resolver
                        .resolve(&SecretRef::Encrypted(sealed.to_string()))
                        .expect("decrypts")
                        .expose()
                        .as_bytes()
                        .to_vec()
                }
            };
            assert!(
                !needles.find_in(&held).is_empty(),
                "{}: the search does not find the secret where the test put it",
                p.name
            );
        }
    }

    /// `calpump profile add --name NAME --secret-stdin ARGS` with `secret` on stdin; the
    /// profile it wrote into the config refers to the secret encrypted, never by value.
    fn add_profile(&mut self, name: &str, args: &[&str], secret: &str, log: Log) -> Out {
        let mut all = vec!["profile", "add", "--name", name, "--secret-stdin"];
        all.extend_from_slice(args);
        let out = self.run_with(
            &format!("profile add {name} --secret-stdin"),
            &all,
            log,
            Some(&format!("{secret}\n")),
            &[],
        );
        let config = std::fs::read_to_string(self.path("calpump.toml")).expect("config");
        let header = format!("[profiles.{name}]");
        let Some(at) = config.find(&header) else {
            panic!("no {header} written:\n{}", out.show());
        };
        let section: String = config[at + header.len()..]
            .lines()
            .take_while(|l| !l.starts_with('['))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(section.contains("{ encrypted = \"cp1:"), "{section}");
        let hits = Needles::for_secrets(&[("the secret", secret)]).find_in(section.as_bytes());
        assert!(hits.is_empty(), "profile add wrote the secret: {hits:?}");
        out
    }

    fn profile(&self, name: &str) -> Profile {
        self.profiles
            .iter()
            .find(|p| p.name == name)
            .cloned()
            .unwrap_or_else(|| panic!("no profile {name}"))
    }

    fn requests(&self) -> (u64, u64) {
        let stats = self.env.stats();
        let token = stats.by_protocol.get("token").copied().unwrap_or(0);
        (stats.total, token)
    }

    /// Searches everything printed and every file written for secrets and tokens.
    fn assert_nothing_leaked(self, expect_files: &[&str]) {
        let mut key_text = std::fs::read_to_string(self.path("calpump.key")).expect("key");
        key_text = key_text.trim().to_string();
        let mut secrets: Vec<(String, String)> = CREDS
            .iter()
            .flat_map(|c| {
                [
                    (format!("{} real secret", c.name()), c.real().to_string()),
                    (format!("{} marker", c.name()), c.marker().to_string()),
                ]
            })
            .collect();
        secrets.push(("the encryption key".into(), key_text));
        secrets.push(("the numeric password".into(), NUMERIC_PASSWORD.into()));
        let refs: Vec<(&str, &str)> = secrets
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let needles = Needles::for_secrets(&refs);

        let mut material = self.printed.clone();
        let mut files = Vec::new();
        walk(&self.dir, &mut files);
        let written: Vec<PathBuf> = files
            .into_iter()
            .filter(|f| !self.inputs.contains(f))
            .collect();
        for want in expect_files {
            assert!(
                written
                    .iter()
                    .any(|f| f.strip_prefix(&self.dir).is_ok_and(|r| r.starts_with(want))),
                "no written file {want} to search: {written:?}"
            );
        }
        for f in &written {
            material.push((
                format!("file {}", f.display()),
                std::fs::read(f).expect("read written file"),
            ));
        }
        let bytes: usize = material.iter().map(|(_, b)| b.len()).sum();
        let mut leaks = Vec::new();
        for (label, data) in &material {
            for hit in needles.find_in(data) {
                leaks.push(format!("{label}: {hit}"));
            }
            for hit in token_shapes(&String::from_utf8_lossy(data)) {
                leaks.push(format!("{label}: {hit}"));
            }
        }
        eprintln!(
            "searched {} outputs and files, {bytes} bytes, for {} needles",
            material.len(),
            needles.0.len()
        );
        assert!(
            leaks.is_empty(),
            "secrets or tokens in what calpump printed or wrote:\n{}",
            leaks.join("\n")
        );
        self.env.shutdown();
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

// ---- The search ----

/// Byte strings that must not appear, with what each is.
struct Needles(Vec<(String, Vec<u8>)>);

impl Needles {
    /// Each secret as written, form-encoded, percent-encoded, JSON-escaped, base64; for
    /// passwords also `base64(user:password)` for the account's spellings.
    fn for_secrets(secrets: &[(&str, &str)]) -> Needles {
        let mut out: Vec<(String, Vec<u8>)> = Vec::new();
        let mut add = |what: String, s: String| {
            if !out.iter().any(|(_, b)| b == s.as_bytes()) {
                out.push((what, s.into_bytes()));
            }
        };
        for (what, s) in secrets {
            add(what.to_string(), s.to_string());
            add(format!("{what} (form-encoded)"), form_encode(s, true));
            add(format!("{what} (percent-encoded)"), form_encode(s, false));
            add(
                format!("{what} (JSON string)"),
                serde_json::to_string(s)
                    .expect("json")
                    .trim_matches('"')
                    .to_string(),
            );
            add(format!("{what} (base64)"), base64(s.as_bytes()));
            for user in ["svc-pump@contoso.com", "CONTOSO\\svc-pump", "svc-pump"] {
                add(
                    format!("{what} (base64 of {user}:…)"),
                    base64(format!("{user}:{s}").as_bytes()),
                );
            }
        }
        Needles(out)
    }

    /// Each needle found, with a little context (the needle itself masked).
    fn find_in(&self, data: &[u8]) -> Vec<String> {
        let mut hits = Vec::new();
        for (what, needle) in &self.0 {
            if needle.is_empty() || needle.len() > data.len() {
                continue;
            }
            if let Some(at) = data
                .windows(needle.len())
                .position(|w| w == needle.as_slice())
            {
                let from = at.saturating_sub(60);
                let to = (at + needle.len() + 60).min(data.len());
                let context = format!(
                    "{}«{what}»{}",
                    String::from_utf8_lossy(&data[from..at]),
                    String::from_utf8_lossy(&data[at + needle.len()..to])
                );
                hits.push(format!("{what} at byte {at}: …{context}…"));
            }
        }
        hits
    }
}

/// `application/x-www-form-urlencoded` (`form`) or RFC 3986 percent-encoding of `s`.
fn form_encode(s: &str, form: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => out.push(b as char),
            b'*' if form => out.push('*'),
            b'~' if !form => out.push('~'),
            b' ' if form => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | '+' | '/' | '=')
}

/// Tokens in `text`: JWTs (`eyJ…` three dot-separated base64url parts — the simulator's access
/// and refresh tokens), `Bearer ` followed by a token, NTLM authenticate messages (type 3).
fn token_shapes(text: &str) -> Vec<String> {
    let mut hits = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("eyJ") {
        let start = from + at;
        let run: String = text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect();
        let parts: Vec<&str> = run.split('.').collect();
        if parts.len() >= 3 && parts[1].starts_with("eyJ") && parts[2].len() >= 16 {
            hits.push(format!(
                "a JWT at {start}: {}…",
                run.chars().take(24).collect::<String>()
            ));
        }
        from = start + run.len().max(3);
    }
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(at) = lower[from..].find("bearer ") {
        let start = from + at + "bearer ".len();
        let token: String = text[start..]
            .chars()
            .take_while(|&c| token_char(c))
            .collect();
        if token.len() >= 20 {
            hits.push(format!(
                "a bearer token at {start}: {}…",
                token.chars().take(12).collect::<String>()
            ));
        }
        from = start;
    }
    // base64 of "NTLMSSP\0" and message type 3 (AUTHENTICATE: the password's NT response).
    if let Some(at) = text.find("TlRMTVNTUAAD") {
        hits.push(format!("an NTLM authenticate message at {at}"));
    }
    hits
}

/// A token the simulator would issue (same signing key and shape as the real ones).
fn sample_token(env: &Env, kind: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        aud: catalogue::GRAPH_AUDIENCE.into(),
        iss: format!("https://sts.windows.net/{}/", catalogue::TENANT_ID),
        iat: now,
        nbf: now,
        exp: now + 60,
        tid: catalogue::TENANT_ID.into(),
        appid: catalogue::DELEGATED_APP_ID.into(),
        app_displayname: "sample".into(),
        idtyp: "user".into(),
        roles: vec![],
        scp: Some("Calendars.Read".into()),
        upn: Some(catalogue::SVC_PUMP.into()),
        oid: "0".into(),
        ver: "1.0".into(),
        sim_typ: kind.into(),
        uti: "u".into(),
    };
    calpump_simulator::auth::issue(env.control(), &claims)
}

#[test]
fn the_search_finds_what_it_looks_for() {
    assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
    assert_eq!(base64(b"ab"), "YWI=");
    assert_eq!(base64(b"a"), "YQ==");
    assert_eq!(
        form_encode("Sim-Passw0rd! a~b", true),
        "Sim-Passw0rd%21+a%7Eb"
    );
    assert_eq!(form_encode("a~b c", false), "a~b%20c");
    let needles = Needles::for_secrets(&[("pw", catalogue::ACCOUNT_PASSWORD)]);
    let basic = format!(
        "authorization: Basic {}",
        base64(format!("svc-pump@contoso.com:{}", catalogue::ACCOUNT_PASSWORD).as_bytes())
    );
    assert!(!needles.find_in(basic.as_bytes()).is_empty());
    assert!(
        !needles
            .find_in(b"grant_type=password&password=Sim-Passw0rd%21&scope=x")
            .is_empty()
    );
    assert!(needles.find_in(b"password=[redacted]").is_empty());

    let env = Env::start(SimConfig {
        rooms: 2,
        events_per_room: 2,
        users: 1,
        seed: 5,
        ..SimConfig::default()
    });
    for kind in ["access", "refresh"] {
        let token = sample_token(&env, kind);
        assert!(
            calpump_simulator::auth::decode(env.control(), &token).is_ok(),
            "a token of the simulator's"
        );
        for text in [
            format!("authorization: Bearer {token}\n"),
            format!("{{\"access_token\":\"{token}\",\"expires_in\":2}}"),
            format!("refresh_token={token}&grant_type=refresh_token"),
        ] {
            assert!(!token_shapes(&text).is_empty(), "{text}");
        }
    }
    assert!(!token_shapes("Authorization: NTLM TlRMTVNTUAADAAAAGAAYAEgAAAA=").is_empty());
    assert!(
        token_shapes(
            "a 401 with a bearer token; fetching a new one. Bearer [redacted] (NTLM TlRMTVNTUAABAAAA)"
        )
        .is_empty()
    );
    env.shutdown();
}

// ---- The scenarios ----

/// Every credential through every form, with the simulator's real credentials: everything
/// passes, nothing prints a secret or a token.
#[test]
fn real_credentials_in_every_form_never_show() {
    let mut bench = Bench::new(71, profiles("", true, 1));

    let out = bench.run("check", &["check"], Log::Text);
    assert_eq!(out.code, Some(0), "{}", out.show());
    let out = bench.run("check --json", &["check", "--json"], Log::Json);
    assert_eq!(out.code, Some(0), "{}", out.show());
    let doc = out.json();
    assert_eq!(doc["errors"], 0, "{}", out.show());
    // Plain values work but are warned about — the warning names the place, not the value.
    assert!(
        doc["warnings"].as_u64().unwrap_or(0) >= 6,
        "plain secrets warned: {}",
        out.show()
    );
    for (args, log) in [
        (&["profile", "list", "--json"][..], Log::Json),
        (&["profile", "list"][..], Log::Text),
    ] {
        let out = bench.run(&args.join(" "), args, log);
        assert_eq!(out.code, Some(0), "{}", out.show());
    }

    for p in bench.profiles.clone() {
        let name = p.name.as_str();
        let (before, tokens_before) = bench.requests();
        let out = bench.run(
            &format!("profile test {name} --json"),
            &["profile", "test", name, "--json"],
            Log::Json,
        );
        assert_eq!(out.code, Some(0), "{}", out.show());
        assert_eq!(out.json()["ok"], true, "{}", out.show());
        out.assert_traced(Log::Json);
        let (after, tokens_after) = bench.requests();
        assert!(after > before, "{name}: profile test reached the simulator");
        if p.cred.uses_token_endpoint() {
            assert!(tokens_after > tokens_before, "{name}: a token was fetched");
        }

        let out = bench.run(
            &format!("profile test {name}"),
            &["profile", "test", name],
            Log::Text,
        );
        assert_eq!(out.code, Some(0), "{}", out.show());
        out.assert_traced(Log::Text);

        let out = bench.run(
            &format!("mailboxes {name} --json"),
            &["mailboxes", name, "--json"],
            Log::Json,
        );
        assert_eq!(out.code, Some(0), "{}", out.show());
        assert!(out.stdout.contains(&p.room), "{}", out.show());

        let before = bench.requests().0;
        let out = bench.run(
            &format!("sync --route {name} --json"),
            &["sync", "--route", name, "--json"],
            Log::Json,
        );
        let run = out.sync_run();
        assert!(
            run.ok() && run.error_codes().is_empty() && run.status() == "ok",
            "{}",
            out.show()
        );
        let upserts = run.report["routes"][0]["counts"]["upserts"]
            .as_u64()
            .unwrap_or(0);
        assert!(upserts > 0, "{name}: events synced\n{}", out.show());
        assert!(
            bench.requests().0 > before,
            "{name}: sync reached the simulator"
        );
    }

    // Every route again, incremental, with text output and text logs.
    let out = bench.run("sync", &["sync"], Log::Text);
    assert_eq!(out.code, Some(0), "{}", out.show());
    out.assert_traced(Log::Text);

    // `profile add` with the secret on stdin: stored encrypted, tested, written.
    let authority = bench.env.sim.authority().to_string();
    let graph_url = bench.env.sim.graph_url();
    let out = bench.add_profile(
        "added",
        &[
            "--backend",
            "graph",
            "--tenant",
            catalogue::TENANT_DOMAIN,
            "--client-id",
            catalogue::GRAPH_APP_ID,
            "--authority",
            &authority,
            "--graph-url",
            &graph_url,
            "--probe-mailbox",
            "room-1.02@contoso.com",
        ],
        catalogue::GRAPH_APP_SECRET,
        Log::Text,
    );
    assert_eq!(out.code, Some(0), "{}", out.show());
    let out = bench.run(
        "profile test added --json",
        &["profile", "test", "added", "--json"],
        Log::Json,
    );
    assert_eq!(out.code, Some(0), "{}", out.show());

    bench.assert_nothing_leaked(&["state.db", "events.db", "signs"]);
}

/// The marker credentials in every form: every sign-in is refused with the catalogue's code
/// (EWS 401, AADSTS7000215, AADSTS50126), and no marker shows.
#[test]
fn wrong_credentials_in_every_form_never_show() {
    let mut bench = Bench::new(72, profiles("bad-", false, 1));

    let out = bench.run("check --json", &["check", "--json"], Log::Json);
    assert_eq!(out.code, Some(0), "{}", out.show());
    let out = bench.run("check", &["check"], Log::Text);
    assert_eq!(out.code, Some(0), "{}", out.show());

    for p in bench.profiles.clone() {
        let name = p.name.as_str();
        let code = p.cred.refusal();
        let (_, tokens_before) = bench.requests();
        let out = bench.run(
            &format!("profile test {name} --json"),
            &["profile", "test", name, "--json"],
            Log::Json,
        );
        assert_eq!(out.code, Some(1), "{}", out.show());
        assert_eq!(
            out.json()["failed_step"]["code"],
            code,
            "{name}: refused by the simulator\n{}",
            out.show()
        );
        out.assert_traced(Log::Json);
        if p.cred.uses_token_endpoint() {
            assert!(
                bench.requests().1 > tokens_before,
                "{name}: the token endpoint was asked"
            );
        }

        let out = bench.run(
            &format!("profile test {name}"),
            &["profile", "test", name],
            Log::Text,
        );
        assert_eq!(out.code, Some(1), "{}", out.show());
        assert!(out.stdout.contains(code), "{}", out.show());
        out.assert_traced(Log::Text);

        let out = bench.run(
            &format!("mailboxes {name} --json"),
            &["mailboxes", name, "--json"],
            Log::Json,
        );
        assert_ne!(out.code, Some(0), "{}", out.show());
        assert!(
            out.stdout.contains(code) || out.stderr.contains(code),
            "{}",
            out.show()
        );

        for (log, json) in [(Log::Json, true), (Log::Text, false)] {
            let mut args = vec!["sync", "--route", name];
            if json {
                args.push("--json");
            }
            let out = bench.run(&format!("sync --route {name}"), &args, log);
            assert_eq!(out.code, Some(1), "{}", out.show());
            if json {
                let codes: Vec<String> = out
                    .sync_run()
                    .error_codes()
                    .into_iter()
                    .map(|(_, c)| c)
                    .collect();
                assert!(
                    !codes.is_empty() && codes.iter().all(|c| c == code),
                    "{name}: {codes:?}\n{}",
                    out.show()
                );
            } else {
                assert!(
                    out.stdout.contains(code) || out.stderr.contains(code),
                    "{}",
                    out.show()
                );
            }
        }
    }

    // A password written without quotes: the config error names the key, not the value.
    let numeric = bench.path("numeric.toml");
    std::fs::write(
        &numeric,
        format!(
            "[profiles.numeric]\nbackend = \"ews\"\nurl = {}\nauth = {{ kind = \"basic\", username = \"svc-pump@contoso.com\", password = {NUMERIC_PASSWORD} }}\n",
            q(&bench.env.sim.ews_url())
        ),
    )
    .expect("numeric.toml");
    bench.inputs.insert(numeric);
    // (arguments, log format, exit code: 2 for a config error, 1 for a failed profile test)
    for (args, log, code) in [
        (
            &["--config", "numeric.toml", "check", "--json"][..],
            Log::Json,
            2,
        ),
        (&["--config", "numeric.toml", "check"][..], Log::Text, 2),
        (
            &["--config", "numeric.toml", "profile", "test", "numeric"][..],
            Log::Text,
            1,
        ),
        (
            &[
                "--config",
                "numeric.toml",
                "profile",
                "test",
                "numeric",
                "--json",
            ][..],
            Log::Json,
            1,
        ),
    ] {
        let out = bench.run(&args.join(" "), args, log);
        assert_eq!(out.code, Some(code), "{}", out.show());
        let shown = format!("{}{}", out.stdout, out.stderr);
        assert!(
            shown.contains("profiles.numeric.auth.password"),
            "{}",
            out.show()
        );
    }

    // `profile add` with a marker password on stdin: the connection test fails (the profile is
    // written all the same, for the admin to fix), nothing shows.
    let ews_url = bench.env.sim.ews_url();
    for (name, log) in [("added-json", Log::Json), ("added-text", Log::Text)] {
        let out = bench.add_profile(
            name,
            &[
                "--backend",
                "ews",
                "--auth",
                "basic",
                "--url",
                &ews_url,
                "--username",
                "svc-pump@contoso.com",
                "--probe-mailbox",
                "room-1.02@contoso.com",
            ],
            MARKER_PASSWORD,
            log,
        );
        assert_eq!(out.code, Some(1), "{}", out.show());
        assert!(out.stdout.contains("ews.Unauthorized"), "{}", out.show());
        let out = bench.run(
            &format!("profile test {name} --json"),
            &["profile", "test", name, "--json"],
            log,
        );
        assert_eq!(
            out.json()["failed_step"]["code"],
            "ews.Unauthorized",
            "{}",
            out.show()
        );
    }

    bench.assert_nothing_leaked(&["state.db"]);
}

/// HTML sign-in pages from the token endpoint, EWS and Graph; three-second tokens so that the
/// password grant's refresh token is used mid-run: the runs fail with `http.HtmlInsteadOfApi`
/// or finish, and nothing shows.
#[test]
fn html_pages_and_refreshed_tokens_never_show_a_secret() {
    let mut all = profiles("", true, 1);
    all.retain(|p| matches!(p.form, Form::Env | Form::Encrypted));
    let mut bench = Bench::new(73, all);
    let control = bench.env.control().clone();

    // (profile, fault, what the runs must fail with)
    let html = |p: Protocol| FaultRule::new(Fault::HtmlLoginPage).protocol(p);
    let cases: Vec<(&str, FaultRule)> = vec![
        ("graph-secret-env", html(Protocol::Token)),
        ("ews-secret-encrypted", html(Protocol::Token)),
        ("graph-ropc-encrypted", html(Protocol::Token)),
        ("ews-basic-env", html(Protocol::Ews)),
        ("ews-ntlm-encrypted", html(Protocol::Ews)),
        ("ews-ropc-env", html(Protocol::Ews)),
        ("graph-ropc-env", html(Protocol::Graph)),
        ("graph-secret-encrypted", html(Protocol::Graph)),
    ];
    for (name, rule) in cases {
        let p = bench.profile(name);
        control.clear_faults();
        control.add_fault(rule.clone());
        let before = bench.requests().0;
        let out = bench.run(
            &format!("profile test {name} --json ({:?} HTML)", rule.protocol),
            &["profile", "test", name, "--json"],
            Log::Json,
        );
        assert_eq!(out.code, Some(1), "{}", out.show());
        assert_eq!(
            out.json()["failed_step"]["code"],
            "http.HtmlInsteadOfApi",
            "{}",
            out.show()
        );
        for (log, json) in [(Log::Json, true), (Log::Text, false)] {
            let mut args = vec!["sync", "--route", name, "--full"];
            if json {
                args.push("--json");
            }
            let out = bench.run(
                &format!("sync --route {name} ({:?} HTML)", rule.protocol),
                &args,
                log,
            );
            assert_eq!(out.code, Some(1), "{}", out.show());
            let shown = format!("{}{}", out.stdout, out.stderr);
            assert!(shown.contains("http.HtmlInsteadOfApi"), "{}", out.show());
            out.assert_traced(log);
        }
        assert!(
            bench.requests().0 > before,
            "{}: the faults were met",
            p.name
        );
        control.clear_faults();
    }

    // Tokens of three seconds and slow answers: a sync outlives its first token, and the password
    // grant's refresh token is used.
    control.set_token_lifetime(3);
    for name in ["graph-ropc-env", "ews-ropc-encrypted", "graph-secret-env"] {
        let p = bench.profile(name);
        control.clear_faults();
        // Direct requests only: a `$batch`'s items are not slowed once more.
        control.add_fault(
            FaultRule::new(Fault::Latency { ms: 1000 })
                .protocol(if name.starts_with("graph") {
                    Protocol::Graph
                } else {
                    Protocol::Ews
                })
                .in_batch(false),
        );
        for (log, json) in [(Log::Json, true), (Log::Text, false)] {
            let (_, tokens_before) = bench.requests();
            let mut args = vec!["sync", "--route", name, "--full"];
            if json {
                args.push("--json");
            }
            let out = bench.run(&format!("sync --route {name} (3 s tokens)"), &args, log);
            assert_eq!(out.code, Some(0), "{}", out.show());
            let tokens = bench.requests().1 - tokens_before;
            assert!(
                tokens >= 2,
                "{name}: the token was renewed mid-run ({tokens} token requests)\n{}",
                out.show()
            );
            if p.cred == Cred::GraphPasswordGrant || p.cred == Cred::EwsPasswordGrant {
                let refreshed = out.stderr.lines().any(|l| {
                    l.contains("token acquired")
                        && (l.contains("refresh=true") || l.contains("\"refresh\":true"))
                });
                assert!(
                    refreshed,
                    "{name}: the refresh token was used\n{}",
                    out.show()
                );
            }
        }
    }
    control.clear_faults();

    bench.assert_nothing_leaked(&["state.db"]);
}
