//! JSON Schemas of the configuration, for the generated configuration reference
//! (`docs/reference/configuration.md`, written by `cargo run -p xtask -- docs`).
//!
//! The section types derive [`JsonSchema`], so their doc comments become the descriptions and
//! their `serde` defaults the defaults of the reference. Types that deserialise by hand — a
//! duration written as `"2m"`, [`CalendarSelection`], a secret reference — describe
//! themselves here (and in `crate::secret`) precisely, in words and as a schema.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::{
    CalendarSelection, HttpConfig, PluginsConfig, RouteConfig, SecretsConfig, StateConfig,
    TOP_LEVEL_KEYS,
};

/// A duration as the config writes it: `"2m"`, `"30s"`, `"1h 30m"` (parsed by `humantime`).
/// Schema only: fields of type `std::time::Duration` use it through `#[schemars(with)]`.
pub struct HumanDuration;

impl JsonSchema for HumanDuration {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "title": "duration",
            "type": "string",
            "description": "A duration: numbers with units (`ms`, `s`, `m`, `h`, `d`), several may follow each other.",
            "pattern": "^\\s*([0-9]+\\s*[a-zA-Z]+\\s*)+$",
            "examples": ["30s", "2m", "1h 30m"]
        })
    }
}

impl JsonSchema for CalendarSelection {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "CalendarSelection".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "title": "calendars",
            "description": "`\"default\"`: the mailbox's main calendar; `\"all\"`: the main calendar and every calendar below it; or a list of neutral calendar paths (`\"default\"`, `\"default/Projects\"`).",
            "oneOf": [
                { "type": "string", "enum": ["default", "all"] },
                { "type": "array", "items": { "type": "string" } }
            ],
            "default": "default",
            "examples": ["all", ["default", "default/Projects"]]
        })
    }
}

/// One table of the configuration file as the reference lists it.
pub struct SectionSchema {
    /// How the table is written: `[state]`, `[[routes]]`, `[profiles.<name>]`.
    pub header: &'static str,
    /// The top-level key the table sits under.
    pub key: &'static str,
    /// What the table is for.
    pub summary: &'static str,
    pub schema: Schema,
}

/// The engine's own tables, in the order of a config file. Profiles and sinks show only the
/// key the engine reads (`backend`, `plugin`); the rest belongs to the backend or the sink.
pub fn engine_sections(generator: &mut SchemaGenerator) -> Vec<SectionSchema> {
    let sections = vec![
        SectionSchema {
            header: "[state]",
            key: "state",
            summary: "Where cursors, run history and mailbox status are kept.",
            schema: generator.root_schema_for::<StateConfig>(),
        },
        SectionSchema {
            header: "[plugins]",
            key: "plugins",
            summary: "Where sink plugins are loaded from.",
            schema: generator.root_schema_for::<PluginsConfig>(),
        },
        SectionSchema {
            header: "[http]",
            key: "http",
            summary: "The status server of `calpump run`.",
            schema: generator.root_schema_for::<HttpConfig>(),
        },
        SectionSchema {
            header: "[secrets]",
            key: "secrets",
            summary: "The key for `{ encrypted = \"…\" }` secret values.",
            schema: generator.root_schema_for::<SecretsConfig>(),
        },
        SectionSchema {
            header: "[profiles.<name>]",
            key: "profiles",
            summary: "A connection to Exchange. The engine reads `backend`; every other key belongs to the backend (see the EWS and Graph profile keys).",
            schema: json_schema!({
                "type": "object",
                "required": ["backend"],
                "properties": {
                    "backend": {
                        "description": "Which backend reads the profile's mailboxes.",
                        "type": "string",
                        "enum": ["ews", "graph"]
                    }
                }
            }),
        },
        SectionSchema {
            header: "[sinks.<name>]",
            key: "sinks",
            summary: "An instance of a sink plugin. The engine reads `plugin`; every other key belongs to the plugin (see the sinks' keys). Secret references (`{ env }`, `{ file }`, `{ encrypted }`) in a sink's table are resolved before the plugin sees it.",
            schema: json_schema!({
                "type": "object",
                "required": ["plugin"],
                "properties": {
                    "plugin": {
                        "description": "The plugin's name: `doorsign`, `database` (built in) or a loaded plugin's (`calpump plugins` lists them).",
                        "type": "string",
                        "examples": ["doorsign", "database"]
                    }
                }
            }),
        },
        SectionSchema {
            header: "[[routes]]",
            key: "routes",
            summary: "Which mailboxes of which profile go into which sinks, how often. One `[[routes]]` table per route.",
            schema: generator.root_schema_for::<RouteConfig>(),
        },
    ];
    debug_assert_eq!(sections.len(), TOP_LEVEL_KEYS.len());
    sections
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generator() -> SchemaGenerator {
        schemars::generate::SchemaSettings::draft2020_12()
            .with(|s| s.inline_subschemas = true)
            .into_generator()
    }

    #[test]
    fn every_top_level_key_has_a_section_and_every_field_a_description() {
        let sections = engine_sections(&mut generator());
        let keys: Vec<&str> = sections.iter().map(|s| s.key).collect();
        assert_eq!(keys, TOP_LEVEL_KEYS);
        for section in &sections {
            let props = section
                .schema
                .get("properties")
                .and_then(|p| p.as_object())
                .expect("properties");
            for (name, prop) in props {
                assert!(
                    prop.get("description").is_some(),
                    "{} `{name}` has no doc comment",
                    section.header
                );
            }
        }
    }

    #[test]
    fn defaults_come_from_the_code() {
        let sections = engine_sections(&mut generator());
        let route = &sections.last().expect("routes").schema;
        assert_eq!(
            route.pointer("/properties/interval/default"),
            Some(&serde_json::json!("2m"))
        );
        assert_eq!(
            route.pointer("/properties/concurrency/default"),
            Some(&serde_json::json!(8))
        );
        assert_eq!(
            route.pointer("/properties/window/default"),
            Some(&serde_json::json!({ "past_days": 1, "future_days": 14 }))
        );
        let state = &sections[0].schema;
        assert_eq!(
            state.pointer("/properties/path/default"),
            Some(&serde_json::json!("calpump-state.db"))
        );
    }
}
