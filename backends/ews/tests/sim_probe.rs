//! `profile test` against the simulator: numbered steps that pass, or fail with the catalogue's
//! diagnostic and skip the rest.

mod common;

use calpump_engine::source::{ProbeStep, Source, StepOutcome};
use common::*;

fn summary(steps: &[ProbeStep]) -> Vec<(String, &'static str, String)> {
    steps
        .iter()
        .map(|s| match &s.outcome {
            StepOutcome::Passed { detail } => (s.id.clone(), "passed", detail.clone()),
            StepOutcome::Warning { diagnostic, .. } => {
                (s.id.clone(), "warning", diagnostic.code().to_string())
            }
            StepOutcome::Failed { diagnostic } => {
                (s.id.clone(), "failed", diagnostic.code().to_string())
            }
            StepOutcome::Skipped { reason } => (s.id.clone(), "skipped", reason.clone()),
        })
        .collect()
}

#[tokio::test]
async fn every_step_passes_with_a_good_profile() {
    let sim = sim(3).await;
    for mode in ["ntlm", "basic", "client_credentials", "password_grant"] {
        let source = source(&sim, mode);
        let steps = source.probe(Some("room-1.01@contoso.com")).await;
        let s = summary(&steps);
        let ids: Vec<&str> = s.iter().map(|(id, _, _)| id.as_str()).collect();
        let last = if mode == "password_grant" {
            "mailbox-access"
        } else {
            "impersonation"
        };
        assert_eq!(
            ids,
            vec![
                "config",
                "autodiscover",
                "dns-tls",
                "auth",
                "first-call",
                last
            ],
            "{mode}"
        );
        for (id, status, detail) in &s {
            let ok = *status == "passed" || (id == "autodiscover" && *status == "skipped");
            assert!(ok, "{mode}: {id} {status} {detail}");
        }
        if mode == "client_credentials" {
            assert!(s[3].2.contains("full_access_as_app"), "{}", s[3].2);
        }
        assert!(s[4].2.contains("items"), "{}", s[4].2);
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn failures_name_their_diagnostic_and_skip_the_rest() {
    let sim = sim(3).await;
    // No ApplicationImpersonation: the first call as the room is denied.
    let text = profile_toml(&sim, "basic").replace("svc-pump@contoso.com", "svc-noimp@contoso.com");
    let steps = source_from(&text)
        .probe(Some("room-1.01@contoso.com"))
        .await;
    let s = summary(&steps);
    assert_eq!(s[3].1, "passed", "{s:?}");
    assert_eq!(
        (s[4].1, s[4].2.as_str()),
        ("failed", "ews.ErrorImpersonateUserDenied"),
        "{s:?}"
    );
    assert_eq!(s[5].1, "skipped");

    // A wrong password: the handshake fails, every later step is skipped.
    let text = profile_toml(&sim, "ntlm").replace(PASSWORD, "not-the-password");
    let steps = source_from(&text)
        .probe(Some("room-1.01@contoso.com"))
        .await;
    let s = summary(&steps);
    assert_eq!(
        (s[3].1, s[3].2.as_str()),
        ("failed", "ews.Unauthorized"),
        "{s:?}"
    );
    assert!(s[4..].iter().all(|(_, st, _)| *st == "skipped"), "{s:?}");

    // Autodiscover configured: the URL found is shown.
    let text = format!(
        r#"autodiscover = "svc-pump@contoso.com"
           autodiscover_url = "{}"
           auth = {{ kind = "ntlm", username = 'CONTOSO\svc-pump', password = "{PASSWORD}" }}
           impersonation = true"#,
        sim.base_url()
    );
    let steps = source_from(&text)
        .probe(Some("room-1.02@contoso.com"))
        .await;
    let s = summary(&steps);
    assert_eq!(s[1].1, "passed", "{s:?}");
    assert!(s[1].2.contains("/EWS/Exchange.asmx"), "{}", s[1].2);
    assert!(s.iter().all(|(_, st, _)| *st == "passed"), "{s:?}");

    // Nothing listens: DNS/TLS step fails with net.Connect.
    let text =
        profile_toml(&sim, "basic").replace(&sim.ews_url(), "http://127.0.0.1:9/EWS/Exchange.asmx");
    let steps = source_from(&text).probe(None).await;
    let s = summary(&steps);
    assert_eq!(
        (s[2].1, s[2].2.as_str()),
        ("failed", "net.Connect"),
        "{s:?}"
    );
    sim.shutdown().await;
}

/// An app without `full_access_as_app` (admin consent missing): the auth step names
/// `ews.TokenLacksPermission`, a permission-type failure that `profile test --wait` retries; a
/// sync gets Exchange Online's 401 with `x-ms-diagnostics` 2000008 and the same code.
#[tokio::test]
async fn a_token_without_full_access_as_app_is_a_permission_failure() {
    let sim = sim(3).await;
    let text = profile_toml(&sim, "client_credentials")
        .replace(
            calpump_simulator::catalogue::EWS_APP_ID,
            calpump_simulator::catalogue::NO_CONSENT_APP_ID,
        )
        .replace(
            calpump_simulator::catalogue::EWS_APP_SECRET,
            calpump_simulator::catalogue::NO_CONSENT_APP_SECRET,
        );
    let source = source_from(&text);
    let steps = source.probe(Some("room-1.01@contoso.com")).await;
    let s = summary(&steps);
    assert_eq!(
        (s[3].0.as_str(), s[3].1, s[3].2.as_str()),
        ("auth", "failed", "ews.TokenLacksPermission"),
        "{s:?}"
    );
    let StepOutcome::Failed { diagnostic } = &steps[3].outcome else {
        panic!("{s:?}");
    };
    assert!(diagnostic.info().permission);
    assert!(
        diagnostic
            .detail()
            .contains("full_access_as_app is missing"),
        "{}",
        diagnostic.detail()
    );
    assert!(s[4..].iter().all(|(_, st, _)| *st == "skipped"), "{s:?}");

    // The same app syncing: the 401 carries 2000008.
    let err = source
        .calendars(&common::room("room-1.01@contoso.com"))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), "ews.TokenLacksPermission", "{err:?}");
    assert!(
        err.diagnostic.detail().contains("2000008"),
        "{}",
        err.diagnostic.detail()
    );
    sim.shutdown().await;
}
