use super::*;

const GOOD: &str = r#"
[state]
path = "state.db"

[profiles.cloud]
backend = "graph"
tenant = "contoso.onmicrosoft.com"

[sinks.signs]
plugin = "doorsign"
out_dir = "doorsigns"

[[routes]]
name = "rooms"
profile = "cloud"
mailboxes = ["room-1@contoso.com"]
interval = "2m"
sinks = ["signs"]
"#;

#[test]
fn a_good_config_parses_with_defaults() {
    let (config, issues) = Config::parse(GOOD, None);
    assert!(issues.is_empty(), "{issues:?}");
    assert_eq!(config.state.path, PathBuf::from("state.db"));
    assert_eq!(
        config.state.retention(),
        crate::state::Retention {
            keep_runs: 100,
            keep_days: 14
        }
    );
    assert_eq!(config.profiles["cloud"].backend, "graph");
    assert!(config.profiles["cloud"].settings.contains_key("tenant"));
    assert!(!config.profiles["cloud"].settings.contains_key("backend"));
    assert_eq!(config.sinks["signs"].plugin, "doorsign");
    let route = &config.routes[0];
    assert_eq!(route.interval, Duration::from_secs(120));
    assert_eq!(
        route.window,
        WindowConfig {
            past_days: 1,
            future_days: 14
        }
    );
    assert_eq!(route.calendars, CalendarSelection::Default);
}

#[test]
fn every_problem_is_reported_with_its_line_and_path() {
    let text = r#"
[state]
path = "state.db"
colour = "blue"

[profiles.cloud]
backend = "graph"

[sinks.signs]
plugin = "doorsign"

[[routes]]
name = "rooms"
profile = "cloud"
mailboxes = ["room-1@contoso.com"]
sinks = ["signs"]

[[routes]]
name = "more"
profile = "nope"
mailboxes = ["room-2@contoso.com"]
sinks = ["signs", "missing"]
interval = "soon"
"#;
    let (_, issues) = Config::parse(text, Some(Path::new("calpump.toml")));
    let rendered: Vec<String> = issues.iter().map(ToString::to_string).collect();
    let find = |path: &str| {
        issues
            .iter()
            .find(|i| i.path == path)
            .unwrap_or_else(|| panic!("no issue at {path}: {rendered:#?}"))
    };
    let colour = find("state.colour");
    assert_eq!(colour.location.as_ref().map(|l| l.line), Some(4));
    assert!(colour.message.contains("unknown field"));
    let interval = find("routes[1].interval");
    assert!(interval.message.contains("soon"));
    assert_eq!(interval.location.as_ref().map(|l| l.line), Some(23));
    // The second route did not parse, so its references are not checked; fix it and they are.
    let fixed = text.replace("interval = \"soon\"", "interval = \"5m\"");
    let (_, issues) = Config::parse(&fixed, Some(Path::new("calpump.toml")));
    let profile = issues
        .iter()
        .find(|i| i.path == "routes[1].profile")
        .expect("profile issue");
    assert_eq!(profile.location.as_ref().map(|l| l.line), Some(20));
    assert!(
        profile
            .to_string()
            .starts_with("calpump.toml:20:1: error: `routes[1].profile`")
    );
    let sink = issues
        .iter()
        .find(|i| i.path == "routes[1].sinks[1]")
        .expect("sink issue");
    assert!(sink.message.contains("missing"));
    assert_eq!(sink.location.as_ref().map(|l| l.line), Some(22));
}

#[test]
fn syntax_errors_have_a_line() {
    let (_, issues) = Config::parse("[state\npath = 1", None);
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].location.as_ref().map(|l| l.line), Some(1));
}

#[test]
fn unknown_top_level_keys_and_missing_tags() {
    let (_, issues) = Config::parse("[wat]\n[profiles.x]\ntenant = \"t\"\n", None);
    assert!(issues.iter().any(|i| i.path == "wat"));
    assert!(
        issues
            .iter()
            .any(|i| i.path == "profiles.x" && i.message.contains("backend"))
    );
}

#[test]
fn state_retention_is_read_from_the_state_table() {
    let text = GOOD.replace(
        "path = \"state.db\"",
        "path = \"state.db\"\nkeep_runs = 20\nkeep_days = 3",
    );
    let (config, issues) = Config::parse(&text, None);
    assert!(issues.is_empty(), "{issues:?}");
    assert_eq!(
        config.state.retention(),
        crate::state::Retention {
            keep_runs: 20,
            keep_days: 3
        }
    );
}
