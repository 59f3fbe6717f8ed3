//! `calpump profile test` against the simulator: every failure state the simulator's catalogue
//! demonstrates names the failing step, the right code, the cause and the remedy — once in
//! English, once in German (the German remedy text asserted too); good profiles of both
//! backends pass with exit 0; `--json` has a stable shape; `--wait` retries a permission
//! failure until the admin's change arrives.
//!
//! "EWS disabled" uses the simulator's `ews_disabled` fault: Exchange Online's answer when EWS
//! is switched off for the tenant or the app (403 Forbidden, empty body, no SOAP). A wrong
//! password fails the NTLM or Basic handshake (step 4) with `ews.Unauthorized`, its detail
//! saying the scheme was offered, so the password was refused. A secret that expires within 30
//! days (`secret_expires`, backend-common's `expiry::WARN_DAYS`) is a ⚠ warning on step 1 with
//! `secret.ExpiresSoon` on both backends while the test still passes; 31 days ahead is not.

mod profile_support;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use calpump_engine::diagnostics::catalogue::lookup;
use calpump_simulator::{Fault, FaultRule, Protocol, catalogue};
use chrono::Utc;
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

/// A wrong password over NTLM (the simulator verifies the NTLMv2 response) and over Basic: the
/// handshake step fails with `ews.Unauthorized`, its cause and remedy in both languages, and the
/// detail tells the admin that the scheme was offered, so it is the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ews_password_fails_the_ntlm_or_basic_handshake() {
    let sim = simulator(5).await;
    let wrong = "Wr0ng-Passw0rd!";
    assert_ne!(wrong, catalogue::ACCOUNT_PASSWORD);
    let profile = |kind: &str, user: &str| {
        format!(
            "[profiles.p]\nbackend = \"ews\"\nurl = \"{}\"\nauth = {{ kind = \"{kind}\", username = {}, password = {} }}\nimpersonation = true\n",
            sim.ews_url(),
            toml_str(user),
            toml_str(wrong)
        )
    };
    let cases = [
        (
            "NTLM",
            "NTLM handshake",
            "NTLM-Anmeldung",
            Case {
                what: "wrong password (NTLM)",
                profile: profile("ntlm", "CONTOSO\\svc-pump"),
                probe: Some("room-1.01@contoso.com"),
                step: 4,
                step_id: "auth",
                code: "ews.Unauthorized",
            },
        ),
        (
            "Basic",
            "Basic authentication",
            "Basic-Authentifizierung",
            Case {
                what: "wrong password (Basic)",
                profile: profile("basic", catalogue::SVC_PUMP),
                probe: Some("room-1.01@contoso.com"),
                step: 4,
                step_id: "auth",
                code: "ews.Unauthorized",
            },
        ),
    ];
    for (scheme, title_en, title_de, case) in cases {
        let profile = case.profile.clone();
        tokio::task::spawn_blocking(move || check_case(&case))
            .await
            .expect("case");
        let (tmp, _) = config_dir(&profile);
        for (lang, title) in [("en", title_en), ("de", title_de)] {
            let out = calpump_async(
                tmp.path(),
                &[
                    "--lang",
                    lang,
                    "profile",
                    "test",
                    "p",
                    "--probe",
                    "room-1.01@contoso.com",
                ],
            )
            .await;
            let text = stdout(&out);
            assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
            // The step that failed is the handshake, after a working connection.
            assert!(text.contains(&format!("  4 ✗ {title}\n")), "{text}");
            assert!(text.contains("  3 ✓ "), "{text}");
            assert!(
                text.contains(&format!(
                    "{scheme} is offered, so the server refused the user name or password"
                )),
                "{text}"
            );
            // Never the password itself.
            assert!(!text.contains(wrong), "{text}");
        }
        let out = calpump_async(
            tmp.path(),
            &[
                "profile",
                "test",
                "p",
                "--probe",
                "room-1.01@contoso.com",
                "--json",
            ],
        )
        .await;
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(doc["steps"][3]["title"], title_en, "{doc}");
        assert_eq!(doc["steps"][3]["diagnostic"]["permission"], false, "{doc}");
        assert!(
            doc["steps"][3]["diagnostic"]["detail"]
                .as_str()
                .is_some_and(|d| d.contains(&format!("HTTP 401 to {scheme} authentication"))),
            "{doc}"
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains(wrong));
    }
    sim.shutdown().await;
}

fn day(offset: i64) -> String {
    (Utc::now().date_naive() + chrono::Duration::days(offset))
        .format("%Y-%m-%d")
        .to_string()
}

/// A secret 29 days (and 30, the last day warned) from expiry: step 1 is ⚠ with
/// `secret.ExpiresSoon`, its cause and remedy in the admin's language, the other steps run and
/// pass, exit 0; `--json` says `warning`. 31 days ahead: no warning anywhere. Through a Graph
/// profile (client secret) and an EWS one (the account's password), whose probes check the
/// date separately.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_expiring_within_30_days_warns_and_31_days_ahead_does_not() {
    let sim = simulator(5).await;
    // The profile of `backend`, its secret expiring on `expires`.
    let profile = |backend: &str, expires: &str| {
        let table = if backend == "graph" {
            graph_profile(
                &sim,
                "p",
                catalogue::GRAPH_APP_ID,
                catalogue::GRAPH_APP_SECRET,
            )
        } else {
            ews_profile(&sim, "p", catalogue::SVC_PUMP)
        };
        format!("{table}secret_expires = {expires}\n")
    };
    let info = lookup("secret.ExpiresSoon").expect("catalogued");
    for backend in ["graph", "ews"] {
        for days in [29, 30] {
            let (tmp, _) = config_dir(&profile(backend, &day(days)));
            let base = ["profile", "test", "p", "--probe", "room-1.01@contoso.com"];
            for lang in ["en", "de"] {
                let mut args = vec!["--lang", lang];
                args.extend(base);
                let out = calpump_async(tmp.path(), &args).await;
                let text = stdout(&out);
                let context = format!("{backend}, {days} days ({lang}):\n{}", all_output(&out));
                assert_eq!(out.status.code(), Some(0), "{context}");
                let texts = if lang == "en" { &info.en } else { &info.de };
                let (step1, cause, remedy, result) = if lang == "en" {
                    (
                        "  1 ⚠ Configuration and secrets\n",
                        "Cause: ",
                        "Remedy: ",
                        "Result: all 6 steps passed, 1 with a warning",
                    )
                } else {
                    (
                        "  1 ⚠ Konfiguration und Geheimnisse\n",
                        "Ursache: ",
                        "Abhilfe: ",
                        "Ergebnis: alle 6 Schritte bestanden, 1 mit Warnung",
                    )
                };
                assert!(text.contains(step1), "{context}");
                assert!(
                    text.contains(&format!("[secret.ExpiresSoon] {}", texts.title)),
                    "{context}"
                );
                assert!(
                    text.contains(&format!("expires in {days} days ({})", day(days))),
                    "{context}"
                );
                assert!(
                    text.contains(&format!("{cause}{}", texts.cause)),
                    "{context}"
                );
                assert!(
                    text.contains(&format!("{remedy}{}", texts.remedy)),
                    "{context}"
                );
                assert!(text.contains(result), "{context}");
                // Only step 1 warns; the connection itself works.
                let warned = text
                    .lines()
                    .filter_map(|l| l.trim_start().split_once(' '))
                    .filter(|(n, rest)| n.parse::<u32>().is_ok() && rest.starts_with('⚠'))
                    .count();
                assert_eq!(warned, 1, "{context}");
                assert!(!text.contains(" ✗ "), "{context}");
                for n in [3, 4, 5, 6] {
                    assert!(text.contains(&format!("{n:>3} ✓ ")), "step {n}: {context}");
                }

                args.push("--json");
                let out = calpump_async(tmp.path(), &args).await;
                assert_eq!(out.status.code(), Some(0), "{context}");
                let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
                assert_eq!(doc["ok"], true, "{doc}");
                assert!(doc["failed_step"].is_null(), "{doc}");
                let step = &doc["steps"][0];
                assert_eq!(step["id"], "config", "{doc}");
                assert_eq!(step["status"], "warning", "{doc}");
                assert_eq!(step["diagnostic"]["code"], "secret.ExpiresSoon", "{doc}");
                assert_eq!(step["diagnostic"]["title"], texts.title, "{doc}");
                assert_eq!(step["diagnostic"]["remedy"], texts.remedy, "{doc}");
                assert!(
                    step["diagnostic"]["detail"]
                        .as_str()
                        .is_some_and(|d| d.contains(&format!("expires in {days} days"))),
                    "{doc}"
                );
            }
        }

        // 31 days ahead: nothing to warn about.
        let (tmp, _) = config_dir(&profile(backend, &day(31)));
        for lang in ["en", "de"] {
            let out = calpump_async(
                tmp.path(),
                &[
                    "--lang",
                    lang,
                    "profile",
                    "test",
                    "p",
                    "--probe",
                    "room-1.01@contoso.com",
                ],
            )
            .await;
            let text = stdout(&out);
            let context = format!("{backend}, 31 days ({lang}):\n{}", all_output(&out));
            assert_eq!(out.status.code(), Some(0), "{context}");
            assert!(text.contains("  1 ✓ "), "{context}");
            assert!(!text.contains('⚠'), "{context}");
            assert!(!text.contains("secret.ExpiresSoon"), "{context}");
            if backend == "graph" {
                // The Graph probe says how long the secret has.
                assert!(
                    text.contains("the client secret (secret_expires) has 31 days left"),
                    "{context}"
                );
            }
        }
        let out = calpump_async(
            tmp.path(),
            &[
                "profile",
                "test",
                "p",
                "--probe",
                "room-1.01@contoso.com",
                "--json",
            ],
        )
        .await;
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(doc["ok"], true, "{doc}");
        assert_eq!(doc["steps"][0]["status"], "passed", "{doc}");
        assert!(doc["steps"][0]["diagnostic"].is_null(), "{doc}");
        assert!(
            doc["steps"]
                .as_array()
                .expect("steps")
                .iter()
                .all(|s| s["status"] != "warning"),
            "{doc}"
        );
    }
    sim.shutdown().await;
}
