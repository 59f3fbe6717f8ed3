//! `calpump profile test` against the simulator: every failure state the simulator's catalogue
//! demonstrates names the failing step, the right code, the cause and the remedy — once in
//! English, once in German (the German remedy text asserted too); good profiles of both
//! backends pass with exit 0; `--json` has a stable shape; `--wait` retries a permission
//! failure until the admin's change arrives.
//!
//! "EWS disabled" uses the simulator's `ews_disabled` fault: Exchange Online's answer when EWS
//! is switched off for the tenant or the app (403 Forbidden, empty body, no SOAP).

mod profile_support;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use calpump_engine::diagnostics::catalogue::lookup;
use calpump_simulator::{Fault, FaultRule, Protocol, catalogue};
use profile_support::*;

struct Case {
    what: &'static str,
    profile: String,
    probe: Option<&'static str>,
    step: usize,
    step_id: &'static str,
    code: &'static str,
}

/// Runs the case in both languages and checks what an admin reads.
fn check_case(case: &Case) {
    let (tmp, _) = config_dir(&case.profile);
    for lang in ["en", "de"] {
        let mut args = vec!["--lang", lang, "profile", "test", "p"];
        if let Some(p) = case.probe {
            args.extend(["--probe", p]);
        }
        let out = calpump(tmp.path(), &args);
        let text = stdout(&out);
        let context = format!("{} ({lang}):\n{}", case.what, all_output(&out));
        assert_eq!(out.status.code(), Some(1), "{context}");
        let info = lookup(case.code).unwrap_or_else(|| panic!("{} not catalogued", case.code));
        let texts = if lang == "en" { &info.en } else { &info.de };
        // The failing step, numbered, with its code, title, cause and remedy.
        let mark = format!("{:>3} ✗ ", case.step);
        assert!(
            text.contains(&mark),
            "no ✗ at step {}: {context}",
            case.step
        );
        assert!(
            text.contains(&format!("[{}] {}", case.code, texts.title)),
            "{context}"
        );
        assert!(text.contains(texts.cause), "cause missing: {context}");
        assert!(text.contains(texts.remedy), "remedy missing: {context}");
        let (cause, remedy, result) = if lang == "en" {
            (
                "Cause: ",
                "Remedy: ",
                format!("Result: step {} (", case.step),
            )
        } else {
            (
                "Ursache: ",
                "Abhilfe: ",
                format!("Ergebnis: Schritt {} (", case.step),
            )
        };
        assert!(
            text.contains(cause) && text.contains(remedy),
            "labels: {context}"
        );
        let last = text
            .lines()
            .rev()
            .find(|l| l.starts_with(&result))
            .unwrap_or_else(|| panic!("no result line `{result}`: {context}"));
        assert!(last.contains(&format!("[{}]", case.code)), "{context}");
        if lang == "de" {
            assert!(last.contains("ist fehlgeschlagen"), "{context}");
        }
        // The steps after the failure are skipped.
        let after = format!("{:>3} – ", case.step + 1);
        if text.contains(&after) {
            let skipped = if lang == "en" {
                "skipped: "
            } else {
                "übersprungen: "
            };
            assert!(text.contains(skipped), "{context}");
        }
        // JSON names the same step.
        let mut json_args = args.clone();
        json_args.push("--json");
        let out = calpump(tmp.path(), &json_args);
        assert_eq!(out.status.code(), Some(1));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(doc["failed_step"]["number"], case.step, "{}", case.what);
        assert_eq!(doc["failed_step"]["id"], case.step_id, "{}", case.what);
        assert_eq!(doc["failed_step"]["code"], case.code, "{}", case.what);
        let step = &doc["steps"][case.step - 1];
        assert_eq!(step["status"], "failed");
        assert_eq!(step["diagnostic"]["remedy"], texts.remedy);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_failure_names_its_step_code_and_remedy_in_both_languages() {
    let sim = simulator(20).await;
    let cases = vec![
        Case {
            what: "admin consent missing (a token without roles)",
            profile: graph_profile(
                &sim,
                "p",
                catalogue::NO_CONSENT_APP_ID,
                catalogue::NO_CONSENT_APP_SECRET,
            ),
            probe: Some("room-1.01@contoso.com"),
            step: 3,
            step_id: "token",
            code: "graph.NoPermissionsInToken",
        },
        Case {
            what: "user not assigned to the app (password grant)",
            profile: format!(
                "[profiles.p]\nbackend = \"graph\"\ntenant = \"{}\"\nclient_id = \"{}\"\nusername = \"{}\"\npassword = {}\nauthority = \"{}\"\ngraph_url = \"{}\"\n",
                catalogue::TENANT_DOMAIN,
                catalogue::DELEGATED_APP_ID,
                catalogue::UNASSIGNED_USER,
                toml_str(catalogue::ACCOUNT_PASSWORD),
                sim.base_url(),
                sim.graph_url()
            ),
            probe: Some("room-1.01@contoso.com"),
            step: 3,
            step_id: "token",
            code: "entra.AADSTS50105",
        },
        Case {
            what: "the secret's ID pasted instead of its value",
            profile: graph_profile(
                &sim,
                "p",
                catalogue::GRAPH_APP_ID,
                catalogue::GRAPH_APP_SECRET_ID,
            ),
            probe: None,
            step: 3,
            step_id: "token",
            code: "entra.AADSTS7000215",
        },
        Case {
            what: "expired client secret",
            profile: graph_profile(
                &sim,
                "p",
                catalogue::EXPIRED_SECRET_APP_ID,
                catalogue::EXPIRED_SECRET_APP_SECRET,
            ),
            probe: None,
            step: 3,
            step_id: "token",
            code: "entra.AADSTS7000222",
        },
        Case {
            what: "roles missing",
            profile: graph_profile(
                &sim,
                "p",
                catalogue::NO_ROLES_APP_ID,
                catalogue::NO_ROLES_APP_SECRET,
            ),
            probe: None,
            step: 4,
            step_id: "first-call",
            code: "graph.ErrorAccessDenied",
        },
        Case {
            what: "Graph scope: Access to OData is disabled",
            profile: graph_profile(
                &sim,
                "p",
                catalogue::SCOPED_APP_ID,
                catalogue::SCOPED_APP_SECRET,
            ),
            probe: Some("svc-pump@contoso.com"),
            step: 5,
            step_id: "mailbox-access",
            code: "graph.MailboxOutOfScope",
        },
        Case {
            what: "mailbox not found (Graph)",
            profile: graph_profile(
                &sim,
                "p",
                catalogue::GRAPH_APP_ID,
                catalogue::GRAPH_APP_SECRET,
            ),
            probe: Some("nobody@contoso.com"),
            step: 5,
            step_id: "mailbox-access",
            code: "graph.NotFound",
        },
        Case {
            what: "impersonation denied (EWS)",
            profile: ews_profile(&sim, "p", catalogue::SVC_NOIMP),
            probe: Some("room-1.01@contoso.com"),
            step: 5,
            step_id: "first-call",
            code: "ews.ErrorImpersonateUserDenied",
        },
        Case {
            what: "mailbox not found (EWS)",
            profile: ews_profile(&sim, "p", catalogue::SVC_PUMP),
            probe: Some("nobody@contoso.com"),
            step: 5,
            step_id: "first-call",
            code: "ews.ErrorNonExistentMailbox",
        },
        Case {
            what: "a secret that can't be read (config step)",
            profile: format!(
                "[profiles.p]\nbackend = \"graph\"\ntenant = \"{}\"\nclient_id = \"{}\"\nclient_secret = {{ env = \"CALPUMP_TEST_UNSET_SECRET\" }}\nauthority = \"{}\"\ngraph_url = \"{}\"\n",
                catalogue::TENANT_DOMAIN,
                catalogue::GRAPH_APP_ID,
                sim.base_url(),
                sim.graph_url()
            ),
            probe: None,
            step: 1,
            step_id: "config",
            code: "secret.Missing",
        },
    ];
    for case in cases {
        tokio::task::spawn_blocking(move || check_case(&case))
            .await
            .expect("case");
    }
    sim.shutdown().await;
}

/// EWS switched off for the tenant or the app (`EWSEnabled = False`, an app missing from
/// `EWSAllowedAppIDs`): the simulator answers every authenticated EWS request with a bare 403.
/// The app-only OAuth profile gets its token (with `full_access_as_app`) and fails at step 4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ews_switched_off_is_named_with_its_remedy() {
    let sim = simulator(5).await;
    sim.control()
        .add_fault(FaultRule::new(Fault::EwsDisabled).protocol(Protocol::Ews));
    let profile = format!(
        "[profiles.p]\nbackend = \"ews\"\nurl = \"{}\"\nauth = {{ kind = \"oauth\", tenant = \"{}\", client_id = \"{}\", client_secret = {}, authority = \"{}\" }}\n",
        sim.ews_url(),
        catalogue::TENANT_DOMAIN,
        catalogue::EWS_APP_ID,
        toml_str(catalogue::EWS_APP_SECRET),
        sim.base_url()
    );
    let case = Case {
        what: "EWS disabled (403 without an EWS answer)",
        profile,
        probe: Some("room-1.01@contoso.com"),
        step: 4,
        step_id: "auth",
        code: "ews.EwsDisabled",
    };
    tokio::task::spawn_blocking(move || check_case(&case))
        .await
        .expect("case");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_profiles_of_both_backends_pass_and_json_has_its_shape() {
    let sim = simulator(20).await;
    let body = format!(
        "{}\n{}\n[[routes]]\nname = \"rooms\"\nprofile = \"graph\"\nmailboxes = [\"room-1.02@contoso.com\"]\nsinks = []\n",
        graph_profile(
            &sim,
            "graph",
            catalogue::GRAPH_APP_ID,
            catalogue::GRAPH_APP_SECRET
        ),
        ews_profile(&sim, "ews", catalogue::SVC_PUMP)
    );
    let (tmp, _) = config_dir(&body);
    // Graph: the probe mailbox comes from the route.
    let out = calpump_async(tmp.path(), &["--lang", "en", "profile", "test", "graph"]).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert!(
        text.contains("probe mailbox room-1.02@contoso.com"),
        "{text}"
    );
    for n in 1..=6 {
        assert!(text.contains(&format!("{n:>3} ✓ ")), "step {n}: {text}");
    }
    assert!(text.contains("Result: the connection works"), "{text}");

    let out = calpump_async(
        tmp.path(),
        &[
            "--lang",
            "de",
            "profile",
            "test",
            "ews",
            "--probe",
            "room-1.01@contoso.com",
        ],
    )
    .await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert!(text.contains("Basic-Authentifizierung"), "{text}");
    assert!(
        text.contains("Identitätswechsel für room-1.01@contoso.com"),
        "{text}"
    );
    assert!(
        text.contains("Ergebnis: Die Verbindung funktioniert"),
        "{text}"
    );

    // JSON: the documented shape, titles in the chosen language.
    let out = calpump_async(
        tmp.path(),
        &["--lang", "de", "profile", "test", "graph", "--json"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["profile"], "graph");
    assert_eq!(doc["backend"], "graph");
    assert_eq!(doc["lang"], "de");
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["attempts"], 1);
    assert_eq!(doc["probe_mailbox"], "room-1.02@contoso.com");
    assert!(doc["failed_step"].is_null());
    let steps = doc["steps"].as_array().expect("steps");
    let ids: Vec<&str> = steps.iter().filter_map(|s| s["id"].as_str()).collect();
    assert_eq!(
        ids,
        [
            "config",
            "dns-tls",
            "token",
            "first-call",
            "mailbox-access",
            "permissions"
        ]
    );
    for (i, s) in steps.iter().enumerate() {
        assert_eq!(s["number"], i + 1);
        assert_eq!(s["status"], "passed", "{s}");
        assert!(s["detail"].is_string());
    }
    assert_eq!(steps[0]["title"], "Konfiguration und Geheimnisse");
    assert_eq!(steps[2]["title"], "Zugriffstoken von Microsoft Entra ID");

    // An unknown profile is a usage error naming the known ones.
    let out = calpump_async(tmp.path(), &["profile", "test", "nope"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ews, graph"));
    sim.shutdown().await;
}

/// `--wait`: the consent arrives while calpump waits; the second attempt passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_retries_a_permission_failure_until_the_change_arrives() {
    let sim = simulator(5).await;
    let (tmp, _) = config_dir(&graph_profile(
        &sim,
        "p",
        catalogue::NO_CONSENT_APP_ID,
        catalogue::NO_CONSENT_APP_SECRET,
    ));
    // Without --wait: the replication note points at --wait.
    let out = calpump_async(tmp.path(), &["--lang", "en", "profile", "test", "p"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("take minutes (sometimes up to an hour) to reach Exchange"),
        "{}",
        all_output(&out)
    );
    assert!(stdout(&out).contains("calpump profile test p --wait"));

    let mut child = Command::new(BIN)
        .args([
            "--lang",
            "en",
            "profile",
            "test",
            "p",
            "--wait",
            "--wait-first",
            "1s",
            "--wait-limit",
            "60s",
        ])
        .current_dir(tmp.path())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout_pipe = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout_pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let mut seen = Vec::new();
    let mut granted = false;
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) {
        if line.contains("attempt 1: step 3 ") && !granted {
            assert!(
                seen.iter()
                    .any(|l: &String| l.starts_with("Waiting: role, consent")),
                "{seen:?}"
            );
            // The admin grants consent while calpump waits.
            assert!(
                sim.control()
                    .update_app(catalogue::NO_CONSENT_APP_ID, |a| a.consented = true)
            );
            granted = true;
        }
        seen.push(line);
    }
    let status = child.wait().expect("wait");
    assert!(granted, "no retry announced: {seen:?}");
    assert_eq!(status.code(), Some(0), "{seen:#?}");
    assert!(
        seen.iter()
            .any(|l| l.starts_with("Result: the connection works")),
        "{seen:#?}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));

    // A limit that runs out: the failure stays, exit 1.
    sim.control()
        .update_app(catalogue::NO_CONSENT_APP_ID, |a| a.consented = false);
    let out = calpump_async(
        tmp.path(),
        &[
            "--lang",
            "de",
            "profile",
            "test",
            "p",
            "--wait",
            "--wait-first",
            "1s",
            "--wait-limit",
            "2s",
            "--json",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(doc["attempts"].as_u64().is_some_and(|n| n >= 2), "{doc}");
    assert_eq!(doc["failed_step"]["code"], "graph.NoPermissionsInToken");
    assert_eq!(doc["steps"][2]["diagnostic"]["permission"], true);
    assert!(
        doc["steps"][2]["diagnostic"]["note"]
            .as_str()
            .is_some_and(|n| n.contains("Minuten"))
    );
    sim.shutdown().await;
}
