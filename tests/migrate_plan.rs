//! `calpump migrate plan` names each permission the simulator's tenant withholds, with its
//! remedy: the roles-missing app (Calendars.Read and Place.Read.All, with the `az` lines), the
//! consent-missing app (admin consent), the scoped app (RBAC for Applications / application
//! access policy, with the PowerShell lines), the on-premises room (MailboxNotEnabledForRESTAPI,
//! and the split of the route as TOML). `--write-profile` derives the Graph profile from the
//! EWS Office 365 profile and writes it without touching the rest of the file; once the app has
//! the Graph roles the plan is ready.

mod migrate_support;

use calpump_simulator::catalogue;
use migrate_support as s;
use serde_json::Value;

fn needs(doc: &Value) -> Vec<(String, Option<String>)> {
    doc["needs"]
        .as_array()
        .expect("needs")
        .iter()
        .map(|n| {
            (
                n["kind"].as_str().unwrap_or_default().to_string(),
                n["permission"].as_str().map(str::to_string),
            )
        })
        .collect()
}

fn need<'a>(doc: &'a Value, kind: &str) -> &'a Value {
    doc["needs"]
        .as_array()
        .and_then(|l| l.iter().find(|n| n["kind"] == kind))
        .unwrap_or_else(|| panic!("no need {kind}: {doc:#}"))
}

fn commands(need: &Value) -> String {
    need["commands"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_names_every_missing_permission_with_its_remedy() {
    let sim = s::simulator(60, 8, 31).await;
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().to_path_buf();
    let config = format!(
        r#"{profiles}
[sinks.db]
plugin = "database"
url = "sqlite://db.sqlite"

# Building 1, a room of Building 2 and the room still on-premises.
[[routes]]
name = "rooms"
profile = "online"
room_lists = ["Building 1"]
mailboxes = ["room-onprem@contoso.com", "room-2.01@contoso.com"]
sinks = ["db"]
"#,
        profiles = s::profiles(&sim)
    );
    s::write_config(&dir, &config);
    let plan = |to: &str, json: bool| {
        let dir = dir.clone();
        let to = to.to_string();
        async move {
            let mut args = vec!["migrate", "plan", "--route", "rooms", "--to", to.as_str()];
            if json {
                args.push("--json");
            }
            s::run_async(&dir, &args).await
        }
    };

    // Roles missing: the token has User.Read.All only.
    let out = plan("noroles", true).await;
    assert_eq!(out.status.code(), Some(1), "{}", s::text(&out));
    let doc = s::json(&out);
    assert_eq!(doc["ready"], false);
    assert_eq!(
        needs(&doc),
        [
            ("permission".to_string(), Some("Calendars.Read".to_string())),
            ("permission".to_string(), Some("Place.Read.All".to_string())),
        ]
    );
    let calendars = &doc["needs"][0];
    assert_eq!(calendars["diagnostic"]["code"], "graph.ErrorAccessDenied");
    assert!(
        commands(calendars).contains(&format!(
            "az ad app permission add --id {} --api 00000003-0000-0000-c000-000000000000 --api-permissions 798ee544-9d2d-430c-a058-570e29e34338=Role",
            catalogue::NO_ROLES_APP_ID
        )),
        "{calendars:#}"
    );
    assert!(commands(calendars).contains(&format!(
        "az ad app permission admin-consent --id {}",
        catalogue::NO_ROLES_APP_ID
    )));
    assert!(commands(&doc["needs"][1]).contains("913b9306-0ce1-42b8-9137-6a7df690a760=Role"));
    assert_eq!(doc["room_lists"][0]["ok"], false);
    assert_eq!(doc["summary"]["readable"], 0);
    let token = doc["steps"]
        .as_array()
        .and_then(|l| l.iter().find(|s| s["id"] == "token"))
        .expect("token step");
    assert!(
        token["detail"]
            .as_str()
            .is_some_and(|d| d.contains("roles: User.Read.All")),
        "{token}"
    );
    // The same in German, as text.
    let out = s::run_async(
        &dir,
        &[
            "--lang", "de", "migrate", "plan", "--route", "rooms", "--to", "noroles",
        ],
    )
    .await;
    let text = s::text(&out);
    assert!(
        text.contains(
            "Anwendungsberechtigung Calendars.Read (Microsoft Graph) [graph.ErrorAccessDenied]"
        ),
        "{text}"
    );
    assert!(
        text.contains("Anwendungsberechtigung Place.Read.All (Microsoft Graph)"),
        "{text}"
    );
    assert!(
        text.contains("Abhilfe: Im Microsoft Entra Admin Center"),
        "{text}"
    );
    assert!(
        text.contains("Nicht bereit: 52 von 52 Postfächern"),
        "{text}"
    );

    // Consent missing: a token without roles.
    let out = plan("noconsent", true).await;
    assert_eq!(out.status.code(), Some(1));
    let doc = s::json(&out);
    assert_eq!(needs(&doc), [("admin_consent".to_string(), None)]);
    let consent = need(&doc, "admin_consent");
    assert_eq!(consent["diagnostic"]["code"], "graph.NoPermissionsInToken");
    assert!(commands(consent).contains(&format!(
        "az ad app permission admin-consent --id {}",
        catalogue::NO_CONSENT_APP_ID
    )));
    let out = plan("noconsent", false).await;
    let text = s::text(&out);
    assert!(
        text.contains(
            "1. Admin consent for the app's application permissions [graph.NoPermissionsInToken]"
        ),
        "{text}"
    );
    assert!(
        text.contains("Grant admin consent for contoso.onmicrosoft.com"),
        "{text}"
    );

    // Scoped: Building 1 only. The room of Building 2 (and the on-premises one: the policy is
    // checked first) are out of scope; Building 1 is readable.
    let out = plan("scoped", true).await;
    assert_eq!(out.status.code(), Some(1));
    let doc = s::json(&out);
    assert_eq!(needs(&doc), [("mailbox_scope".to_string(), None)]);
    let scope = need(&doc, "mailbox_scope");
    assert_eq!(scope["diagnostic"]["code"], "graph.MailboxOutOfScope");
    let mut out_of_scope: Vec<&str> = scope["mailboxes"]
        .as_array()
        .expect("mailboxes")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    out_of_scope.sort();
    assert_eq!(
        out_of_scope,
        ["room-2.01@contoso.com", "room-onprem@contoso.com"]
    );
    let lines = commands(scope);
    assert!(lines.contains(&format!(
        "New-ManagementRoleAssignment -App {} -Role \"Application Calendars.Read\" -CustomResourceScope \"calpump-rooms\"",
        catalogue::SCOPED_APP_ID
    )), "{lines}");
    assert!(
        lines.contains("New-ManagementScope -Name \"calpump-rooms\" -RecipientRestrictionFilter"),
        "{lines}"
    );
    assert!(lines.contains(&format!(
        "Test-ServicePrincipalAuthorization -Identity {}",
        catalogue::SCOPED_APP_ID
    )));
    assert!(lines.contains("Add-DistributionGroupMember"), "{lines}");
    assert!(lines.contains("\"room-2.01@contoso.com\""), "{lines}");
    assert_eq!(doc["summary"]["readable"], 50);

    // The good app: only the on-premises room is missing — and the plan proposes the split.
    let out = plan("cloud", true).await;
    assert_eq!(out.status.code(), Some(1));
    let doc = s::json(&out);
    assert_eq!(needs(&doc), [("on_premises".to_string(), None)]);
    let onprem = need(&doc, "on_premises");
    assert_eq!(
        onprem["diagnostic"]["code"],
        "graph.MailboxNotEnabledForRESTAPI"
    );
    assert_eq!(
        onprem["mailboxes"],
        serde_json::json!(["room-onprem@contoso.com"])
    );
    assert_eq!(doc["summary"]["readable"], 51);
    let split = doc["split"].as_str().expect("split");
    let body: String = split
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let proposal: toml::Table = body.parse().expect("the split is TOML");
    let routes = proposal["routes"].as_array().expect("routes");
    assert_eq!(routes[0]["name"].as_str(), Some("rooms"));
    assert_eq!(routes[0]["profile"].as_str(), Some("cloud"));
    assert_eq!(
        routes[0]["mailboxes"],
        toml::Value::Array(vec!["room-2.01@contoso.com".into()])
    );
    assert_eq!(routes[0]["room_lists"][0].as_str(), Some("Building 1"));
    assert_eq!(routes[1]["name"].as_str(), Some("rooms-onprem"));
    assert_eq!(routes[1]["profile"].as_str(), Some("online"));
    assert_eq!(
        routes[1]["mailboxes"],
        toml::Value::Array(vec!["room-onprem@contoso.com".into()])
    );
    let text = s::text(&plan("cloud", false).await);
    assert!(
        text.contains("✗ room-onprem@contoso.com  [graph.MailboxNotEnabledForRESTAPI]"),
        "{text}"
    );
    assert!(
        text.contains("Mixed tenant — keep the on-premises mailboxes on EWS"),
        "{text}"
    );
    assert!(text.contains("name = \"rooms-onprem\""), "{text}");

    // --write-profile: a Graph profile from the EWS Office 365 profile (same tenant, client id
    // and secret reference), written into the file without disturbing anything else. The EWS
    // app has no Graph roles yet: the plan says so.
    let out = s::run_async(
        &dir,
        &[
            "migrate",
            "plan",
            "--route",
            "rooms",
            "--write-profile",
            "graph",
            "--json",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", s::text(&out));
    let doc = s::json(&out);
    assert_eq!(doc["target"]["client_id"], catalogue::EWS_APP_ID);
    assert!(
        doc["notes"][0]
            .as_str()
            .is_some_and(|n| n.contains("Calendars.Read and Place.Read.All")),
        "{doc:#}"
    );
    assert_eq!(needs(&doc)[0].0, "admin_consent");
    let written = std::fs::read_to_string(dir.join("calpump.toml")).expect("config");
    let (before_sinks, after_sinks) = config.split_at(config.find("[sinks.db]").expect("sinks"));
    assert!(written.starts_with(before_sinks.trim_end()), "{written}");
    assert!(written.ends_with(after_sinks), "{written}");
    assert!(written.contains(&format!(
        "[profiles.graph]\nbackend = \"graph\"\ntenant = \"{}\"\nclient_id = \"{}\"\nclient_secret = {{ env = \"MIG_EWS_SECRET\" }}\nauthority = \"{}\"\ngraph_url = \"{}\"\n",
        catalogue::TENANT_DOMAIN,
        catalogue::EWS_APP_ID,
        sim.authority(),
        sim.graph_url()
    )), "{written}");
    let check = s::run(&dir, &["check"]);
    assert!(check.status.success(), "{}", s::text(&check));
    // Writing it again is refused.
    let out = s::run_async(
        &dir,
        &[
            "migrate",
            "plan",
            "--route",
            "rooms",
            "--write-profile",
            "graph",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", s::text(&out));

    // The admin grants the Graph roles to the app: only the on-premises room is left.
    sim.control().update_app(catalogue::EWS_APP_ID, |a| {
        a.graph_roles = vec!["Calendars.Read".into(), "Place.Read.All".into()];
    });
    let out = plan("graph", true).await;
    let doc = s::json(&out);
    assert_eq!(needs(&doc), [("on_premises".to_string(), None)], "{doc:#}");

    // A route without the on-premises room is ready: exit 0.
    std::fs::write(
        dir.join("calpump.toml"),
        written.replace(
            "mailboxes = [\"room-onprem@contoso.com\", \"room-2.01@contoso.com\"]",
            "mailboxes = [\"room-2.01@contoso.com\"]",
        ),
    )
    .expect("config");
    let out = plan("graph", false).await;
    assert_eq!(out.status.code(), Some(0), "{}", s::text(&out));
    assert!(
        s::text(&out).contains("Ready: every mailbox can be read through graph"),
        "{}",
        s::text(&out)
    );
    sim.shutdown().await;
}
