//! `calpump migrate plan --write-profile`: a Microsoft Graph profile derived from the route's
//! EWS Office 365 profile (same tenant, client id and credential; the Graph URL of the EWS
//! URL's cloud), written after the last profile table with toml_edit, nothing else in the file
//! changed. It knows the profile keys of both backends, which the engine must not, so it lives
//! in the binary.

use calpump_engine::diagnostics::Lang;
use toml_edit::{DocumentMut, Item, Table};

use crate::error::{CliError, Result};
use crate::i18n::tr;

/// `--write-profile`: a Graph profile derived from the route's EWS Office 365 profile.
/// Returns the new configuration text and what the admin must still add.
pub(super) fn derive_graph_profile(
    text: &str,
    from: &str,
    name: &str,
    lang: Lang,
) -> Result<(String, Vec<String>)> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e| CliError::usage(format!("not valid TOML: {e}")))?;
    let profiles = doc
        .get("profiles")
        .and_then(Item::as_table_like)
        .ok_or_else(|| CliError::usage("no [profiles] in the configuration"))?;
    if profiles.contains_key(name) {
        return Err(CliError::usage(tr!(
            lang,
            format!(
                "a profile `{name}` exists already: plan with `--to {name}`, or choose another name"
            ),
            format!(
                "ein Profil `{name}` gibt es schon: mit `--to {name}` planen oder einen anderen Namen wählen"
            )
        )));
    }
    let source = profiles
        .get(from)
        .and_then(Item::as_table_like)
        .ok_or_else(|| CliError::usage(format!("no profile `{from}`")))?;
    let backend = source.get("backend").and_then(Item::as_str).unwrap_or("");
    let auth = source.get("auth").and_then(Item::as_table_like);
    let kind = auth.and_then(|a| a.get("kind")).and_then(Item::as_str);
    if backend != "ews" || kind != Some("oauth") {
        return Err(CliError::usage(tr!(
            lang,
            format!(
                "profile `{from}` is not an EWS profile for Exchange Online (backend = \"ews\" with auth.kind = \"oauth\"); add a Graph profile with `calpump profile add --backend graph`"
            ),
            format!(
                "Profil `{from}` ist kein EWS-Profil für Exchange Online (backend = \"ews\" mit auth.kind = \"oauth\"); ein Graph-Profil mit `calpump profile add --backend graph` anlegen"
            )
        )));
    }
    let Some(auth) = auth else {
        return Err(CliError::usage(format!("profile `{from}` has no auth")));
    };
    let value_of = |item: Option<&Item>| {
        item.cloned()
            .and_then(|i| i.into_value().ok())
            .map(|mut v| {
                v.decor_mut().clear();
                v
            })
    };
    let (Some(tenant), Some(client_id)) = (
        value_of(auth.get("tenant")),
        value_of(auth.get("client_id")),
    ) else {
        return Err(CliError::usage(format!(
            "profile `{from}`: auth needs tenant and client_id"
        )));
    };
    let client = client_id.as_str().unwrap_or("<client-id>").to_string();
    let mut table = Table::new();
    table.insert("backend", toml_edit::value("graph"));
    table.insert("tenant", Item::Value(tenant));
    table.insert("client_id", Item::Value(client_id));
    let mut notes = vec![tr!(
        lang,
        format!(
            "app {client}: add the Microsoft Graph application permissions Calendars.Read and Place.Read.All and grant admin consent (its Exchange permission full_access_as_app is not used by Graph; remove it after the switch)"
        ),
        format!(
            "App {client}: die Microsoft-Graph-Anwendungsberechtigungen Calendars.Read und Place.Read.All hinzufügen und die Administratorzustimmung erteilen (ihre Exchange-Berechtigung full_access_as_app nutzt Graph nicht; nach der Umstellung entfernen)"
        )
    )];
    let secret = value_of(auth.get("client_secret"));
    let cert = value_of(auth.get("certificate"));
    let key = value_of(auth.get("private_key"));
    match (secret, cert, key) {
        (Some(secret), _, _) => {
            table.insert("client_secret", Item::Value(secret));
            if let Some(exp) = value_of(auth.get("secret_expires"))
                .or_else(|| value_of(source.get("secret_expires")))
            {
                table.insert("secret_expires", Item::Value(exp));
            }
        }
        (None, Some(cert), Some(key)) => {
            table.insert("certificate", Item::Value(cert));
            table.insert("private_key", Item::Value(key));
        }
        _ => {
            // The password grant (delegated EWS.AccessAsUser.All): Graph needs the app's own
            // credential for application permissions.
            let var = format!(
                "CALPUMP_{}_SECRET",
                name.to_uppercase()
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                    .collect::<String>()
            );
            let mut reference = toml_edit::InlineTable::new();
            reference.insert("env", var.as_str().into());
            table.insert(
                "client_secret",
                Item::Value(toml_edit::Value::InlineTable(reference)),
            );
            notes.push(tr!(
                lang,
                format!(
                    "profile `{from}` signs in with a password (delegated); Graph reads rooms with the app's own credential: create a client secret for app {client} (Certificates & secrets) and put its value in the environment variable {var} — or replace client_secret by certificate + private_key"
                ),
                format!(
                    "Profil `{from}` meldet sich mit Kennwort an (delegiert); Graph liest Räume mit den eigenen Anmeldedaten der App: für App {client} einen geheimen Clientschlüssel anlegen (Zertifikate & Geheimnisse) und seinen Wert in die Umgebungsvariable {var} legen — oder client_secret durch certificate + private_key ersetzen"
                )
            ));
        }
    }
    if let Some(authority) = value_of(auth.get("authority")) {
        table.insert("authority", Item::Value(authority));
    }
    let url = source.get("url").and_then(Item::as_str).unwrap_or("");
    match graph_url_for(url) {
        Some(Some(graph_url)) => {
            table.insert("graph_url", toml_edit::value(graph_url));
        }
        Some(None) => {}
        None => notes.push(tr!(
            lang,
            format!("the EWS URL {url} is not a known Exchange Online endpoint: set graph_url to your cloud's Graph (e.g. https://graph.microsoft.us/v1.0)"),
            format!("die EWS-URL {url} ist kein bekannter Exchange-Online-Endpunkt: graph_url auf den Graph Ihrer Cloud setzen (z. B. https://graph.microsoft.us/v1.0)")
        )),
    }
    for key in [
        "allow_insecure",
        "ca_file",
        "timeout",
        "connect_timeout",
        "probe_mailbox",
    ] {
        if let Some(v) = value_of(source.get(key)) {
            table.insert(key, Item::Value(v));
        }
    }
    table.decor_mut().set_prefix(format!(
        "\n# Microsoft Graph profile derived from [profiles.{from}] by `calpump migrate plan --write-profile {name}`.\n"
    ));
    let profiles = doc
        .get_mut("profiles")
        .and_then(Item::as_table_mut)
        .ok_or_else(|| CliError::usage("`profiles` is not a table; edit it by hand"))?;
    // After the last profile table.
    let after = profiles
        .iter()
        .filter_map(|(_, item)| item.as_table().and_then(Table::position))
        .max();
    if let Some(position) = after {
        table.set_position(Some(position + 1));
        // Tables after it move one down so the order stays.
        shift_positions(&mut doc, position + 1);
        let profiles = doc
            .get_mut("profiles")
            .and_then(Item::as_table_mut)
            .ok_or_else(|| CliError::usage("`profiles` is not a table"))?;
        profiles.insert(name, Item::Table(table));
    } else {
        profiles.insert(name, Item::Table(table));
    }
    Ok((doc.to_string(), notes))
}

/// Moves every table at `from` or later one position down (room for a table at `from`).
fn shift_positions(doc: &mut DocumentMut, from: isize) {
    fn walk(table: &mut Table, from: isize) {
        if let Some(p) = table.position()
            && p >= from
        {
            table.set_position(Some(p + 1));
        }
        for (_, item) in table.iter_mut() {
            match item {
                Item::Table(t) => walk(t, from),
                Item::ArrayOfTables(a) => {
                    for t in a.iter_mut() {
                        walk(t, from);
                    }
                }
                _ => {}
            }
        }
    }
    walk(doc.as_table_mut(), from);
}

/// The Graph URL of an EWS URL's cloud: `Some(None)` = the default (public cloud), `Some(url)`
/// = a national cloud or the simulator (same origin on loopback), `None` = unknown.
fn graph_url_for(ews_url: &str) -> Option<Option<String>> {
    if ews_url.is_empty() {
        return Some(None);
    }
    let lower = ews_url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))?;
    let host_port = rest.split('/').next().unwrap_or("");
    let host = host_port
        .rsplit_once(':')
        .filter(|(h, p)| !h.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        .map_or(host_port, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    match host {
        "outlook.office365.com" | "outlook.office.com" => Some(None),
        "outlook.office365.us" => Some(Some("https://graph.microsoft.us/v1.0".into())),
        "webmail.apps.mil" => Some(Some("https://dod-graph.microsoft.us/v1.0".into())),
        "partner.outlook.cn" => Some(Some("https://microsoftgraph.chinacloudapi.cn/v1.0".into())),
        "127.0.0.1" | "localhost" | "::1" => {
            let scheme = if lower.starts_with("https://") {
                "https"
            } else {
                "http"
            };
            Some(Some(format!("{scheme}://{host_port}/v1.0")))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::TEST_CONFIG as CONFIG;
    use super::*;
    use calpump_engine::config::Config;

    #[test]
    fn a_graph_profile_is_derived_from_an_ews_online_profile() {
        let (text, notes) =
            derive_graph_profile(CONFIG, "online", "cloud", Lang::En).expect("derive");
        assert!(text.starts_with(CONFIG[..CONFIG.find("[sinks.db]").expect("sinks")].trim_end()));
        assert!(text.contains("[profiles.cloud]\nbackend = \"graph\"\ntenant = \"contoso.onmicrosoft.com\"\nclient_id = \"0a1b\"\nclient_secret = { env = \"EWS_SECRET\" }\nsecret_expires = 2027-03-19\ngraph_url = \"http://127.0.0.1:5077/v1.0\"\nprobe_mailbox = \"room-1.01@contoso.com\"\n"), "{text}");
        assert!(
            text.find("[profiles.cloud]") < text.find("[sinks.db]"),
            "{text}"
        );
        assert!(
            text.ends_with(&CONFIG[CONFIG.find("[sinks.db]").expect("sinks")..]),
            "{text}"
        );
        assert!(notes[0].contains("Calendars.Read"));
        let (config, issues) = Config::parse(&text, None);
        assert!(issues.iter().all(|i| !i.is_error()), "{issues:?}");
        assert_eq!(config.profiles["cloud"].backend, "graph");
        assert!(derive_graph_profile(&text, "online", "cloud", Lang::En).is_err());
        assert!(derive_graph_profile(CONFIG, "nope", "x", Lang::En).is_err());
    }

    #[test]
    fn graph_urls_of_clouds() {
        assert_eq!(graph_url_for(""), Some(None));
        assert_eq!(
            graph_url_for("https://outlook.office365.com/EWS/Exchange.asmx"),
            Some(None)
        );
        assert_eq!(
            graph_url_for("https://outlook.office365.us/EWS/Exchange.asmx"),
            Some(Some("https://graph.microsoft.us/v1.0".into()))
        );
        assert_eq!(
            graph_url_for("https://mail.contoso.com/EWS/Exchange.asmx"),
            None
        );
    }
}
