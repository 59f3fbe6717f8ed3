//! `docs/reference/configuration.md`: every key of the config file, from the config types'
//! JSON Schemas (engine and backends: `schemars` derives, doc comments as descriptions) and the
//! sinks' published `CONFIG_SCHEMA`s.

use std::path::Path;

use calpump_backend_common::expiry::TomlDate;
use calpump_backend_common::http::HttpSettings;
use calpump_backend_common::settings::OAuthSettings;
use calpump_engine::config::CalendarSelection;
use calpump_engine::config::schema::{HumanDuration, engine_sections};
use calpump_engine::secret::SecretRef;
use calpump_graph::config::GraphSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::Value;

use crate::schema_doc::{self, prose};
use crate::{Error, md, source};

/// The generator every reference uses: draft 2020-12, sub-schemas inlined (a key table
/// needs the whole shape at each key).
pub fn generator() -> SchemaGenerator {
    schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator()
}

fn value_type<T: JsonSchema>(generator: &mut SchemaGenerator, name: &str) -> String {
    let schema = generator.subschema_for::<T>();
    let v = schema.as_value();
    let description = v
        .get("description")
        .and_then(Value::as_str)
        .map(prose)
        .unwrap_or_default();
    let examples = v
        .get("examples")
        .and_then(Value::as_array)
        .map(|e| {
            e.iter()
                .map(|x| md::code(&schema_doc::toml_value(x)))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let mut line = format!("- **{name}** — {description}");
    if !examples.is_empty() {
        line.push_str(&format!(" Examples: {examples}."));
    }
    line.push('\n');
    line
}

fn section(
    out: &mut String,
    heading: &str,
    summary: &str,
    schema: &Value,
    example: Option<String>,
) {
    out.push_str(&format!("### {heading}\n\n"));
    if !summary.is_empty() {
        out.push_str(&format!("{}\n\n", prose(summary)));
    }
    out.push_str(&schema_doc::table(&schema_doc::rows(schema)));
    if let Some(example) = example {
        out.push_str(&format!("\n```toml\n{example}```\n"));
    }
    out.push('\n');
}

fn as_value(schema: &Schema) -> Value {
    schema.as_value().clone()
}

fn parse_sink_schema(name: &str, text: &str) -> Result<Value, Error> {
    serde_json::from_str(text).map_err(|e| Error(format!("the {name} sink's CONFIG_SCHEMA: {e}")))
}

/// The whole page.
pub fn render(root: &Path) -> Result<String, Error> {
    let mut g = generator();
    let mut out = md::generated_note(
        "the config types' doc comments (`engine/src/config/`, `backends/*/src/config.rs`, `backends/common/src/{settings,http}.rs`) and the sinks' `CONFIG_SCHEMA`",
    );
    out.push_str("# Configuration reference\n\n");
    out.push_str(
        "calpump reads one TOML file: `--config FILE`, default `./calpump.toml` (`calpump init` writes a commented one). \
`calpump check` validates it without touching the network and names every problem with file, line and column. \
Unknown keys are errors everywhere. Relative paths are relative to the current directory.\n\n",
    );
    out.push_str(
        "Keys are listed in alphabetical order; `a.b` is key `b` of the table or inline table `a`, `a[].b` key `b` of each table in the array `a`, `a.<name>` any key of the table `a`.\n\n",
    );
    out.push_str("Contents: [value types](#value-types) · [engine](#engine) · [profiles](#profiles) · [sinks](#sinks)\n\n");

    out.push_str("## Value types\n\n");
    out.push_str(&value_type::<HumanDuration>(&mut g, "duration"));
    out.push_str(&value_type::<TomlDate>(&mut g, "date"));
    out.push_str(&value_type::<SecretRef>(&mut g, "secret"));
    out.push_str(&value_type::<CalendarSelection>(&mut g, "calendars"));
    out.push('\n');

    out.push_str("## Engine\n\n");
    for s in engine_sections(&mut g) {
        let schema = as_value(&s.schema);
        let example = match s.key {
            "profiles" | "sinks" => None,
            _ => {
                let values = schema_doc::example(&schema);
                Some(schema_doc::example_toml(s.header, &values))
            }
        };
        section(&mut out, &md::code(s.header), s.summary, &schema, example);
    }

    out.push_str("## Profiles\n\n");
    out.push_str(
        "A profile is `[profiles.<name>]` with `backend = \"graph\"` or `backend = \"ews\"`; `calpump profile add` writes one, `calpump profile test <name>` proves it works. \
Every Microsoft endpoint is a key with the public cloud as default, so national clouds and the simulator work the same way; plain `http://` is accepted only to loopback addresses unless `allow_insecure = true`.\n\n",
    );
    let graph_example = source::module_toml_example(&root.join("backends/graph/src/config.rs"))?;
    let graph_own = as_value(&g.root_schema_for::<GraphSettings>());
    section(
        &mut out,
        "Graph profile (`backend = \"graph\"`)",
        "Microsoft Graph v1.0 with OAuth2 client credentials. Takes Graph's own keys below, the [OAuth keys](#oauth-keys) at the top level of the profile, and the [transport keys](#transport-keys).",
        &graph_own,
        graph_example,
    );
    let ews_example = source::module_toml_example(&root.join("backends/ews/src/config.rs"))?;
    let mut ews = as_value(&calpump_ews::config::profile_schema(&mut g));
    // The transport keys have their own section.
    if let Some(props) = ews.get_mut("properties").and_then(Value::as_object_mut) {
        for key in HttpSettings::KEYS {
            props.remove(*key);
        }
    }
    section(
        &mut out,
        "EWS profile (`backend = \"ews\"`)",
        "Exchange Web Services: on-premises Exchange (Basic or NTLM, usually with impersonation) or Exchange Online (OAuth2 in `auth`). Takes the keys below and the [transport keys](#transport-keys); with `auth.kind = \"oauth\"` the [OAuth keys](#oauth-keys) go inside `auth`.",
        &ews,
        ews_example,
    );
    let oauth_example = source::module_toml_example(&root.join("backends/common/src/settings.rs"))?;
    out.push_str("<a id=\"oauth-keys\"></a>\n\n");
    section(
        &mut out,
        "OAuth keys (Graph profiles; EWS `auth` with `kind = \"oauth\"`)",
        "Sign-in against Microsoft Entra ID. Exactly one credential: `client_secret`; `certificate` + `private_key`; or `username` + `password` (the password grant, optionally with `client_secret`).",
        &as_value(&g.root_schema_for::<OAuthSettings>()),
        oauth_example.map(|e| format!("[profiles.cloud]\nbackend = \"graph\"\n{e}")),
    );
    out.push_str("<a id=\"transport-keys\"></a>\n\n");
    section(
        &mut out,
        "Transport keys (every profile)",
        "How calpump talks HTTP to Microsoft, the simulator or an on-premises server.",
        &as_value(&g.root_schema_for::<HttpSettings>()),
        None,
    );

    out.push_str("## Sinks\n\n");
    out.push_str(
        "A sink is `[sinks.<name>]` with `plugin = \"…\"`; the built-in plugins are below, loaded plugins publish their own schema (`calpump plugins --json`). Secret references in a sink's table are resolved before the plugin sees it.\n\n",
    );
    for (name, text) in [
        ("doorsign", calpump_sink_doorsign::CONFIG_SCHEMA),
        ("database", calpump_sink_database::CONFIG_SCHEMA),
    ] {
        let schema = parse_sink_schema(name, text)?;
        let summary = schema
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        section(
            &mut out,
            &format!("`plugin = \"{name}\"`"),
            &summary,
            &schema,
            None,
        );
    }
    Ok(out)
}
