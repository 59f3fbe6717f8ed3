//! Renders a JSON Schema of a TOML table as Markdown: one row per key (nested tables as dotted
//! keys), with type, default and description, and an example table built from the schema's
//! examples and defaults.

use serde_json::{Map, Value};

use crate::md;

/// One row of a key table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub key: String,
    pub ty: String,
    /// `required`, a default value, or empty.
    pub default: String,
    pub description: String,
}

/// Whether a schema stands for a named value type (duration, date, secret …) explained once
/// in the reference's "Value types" section rather than expanded at every use.
fn value_type(schema: &Value) -> Option<&str> {
    schema.get("title").and_then(Value::as_str).filter(|t| {
        // Derived structs get their Rust name as a title only at the root; the hand-written
        // value types use lower-case words.
        t.chars().next().is_some_and(char::is_lowercase)
    })
}

/// Strips `null` from an `Option<T>`'s schema (`anyOf: [T, null]`, `type: [t, "null"]`).
pub fn unwrap_option(schema: &Value) -> Value {
    let mut schema = schema.clone();
    if let Some(Value::Array(variants)) = schema.get("anyOf") {
        let rest: Vec<&Value> = variants.iter().filter(|v| !is_null(v)).collect();
        if rest.len() == 1 && rest.len() < variants.len() {
            let mut inner = rest[0].clone();
            if let (Some(obj), Some(outer)) = (inner.as_object_mut(), schema.as_object()) {
                for (k, v) in outer {
                    if k != "anyOf" {
                        obj.insert(k.clone(), v.clone());
                    }
                }
            }
            schema = inner;
        }
    }
    if let Some(Value::Array(types)) = schema.get("type") {
        let rest: Vec<Value> = types
            .iter()
            .filter(|t| t.as_str() != Some("null"))
            .cloned()
            .collect();
        if let Some(obj) = schema.as_object_mut() {
            if rest.len() == 1 {
                obj.insert("type".into(), rest[0].clone());
            } else {
                obj.insert("type".into(), Value::Array(rest));
            }
        }
    }
    schema
}

fn is_null(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
}

fn toml_word(json_type: &str) -> &str {
    match json_type {
        "object" => "table",
        "array" => "array",
        "integer" => "integer",
        "number" => "number",
        "boolean" => "boolean",
        other => other,
    }
}

/// The type column: `string`, `integer (1–64)`, `"soft" \| "hard"`, `array of string`, …
pub fn type_name(schema: &Value) -> String {
    let schema = unwrap_option(schema);
    if let Some(name) = value_type(&schema) {
        return name.to_string();
    }
    if let Some(Value::Array(values)) = schema.get("enum") {
        return values
            .iter()
            .map(toml_value)
            .collect::<Vec<_>>()
            .join(" or ");
    }
    if let Some(value) = schema.get("const") {
        return toml_value(value);
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(variants)) = schema.get(key) {
            let mut names: Vec<String> = Vec::new();
            for v in variants.iter().filter(|v| !is_null(v)) {
                let name = type_name(v);
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            return names.join(" or ");
        }
    }
    let mut name = match schema.get("type") {
        Some(Value::String(t)) => match t.as_str() {
            "array" => match schema.get("items") {
                Some(items) => format!("array of {}", type_name(items)),
                None => "array".to_string(),
            },
            "string" => match schema.get("format").and_then(Value::as_str) {
                Some("date-time") => "date-time (RFC 3339)".to_string(),
                Some("date") => "date".to_string(),
                _ => "string".to_string(),
            },
            other => toml_word(other).to_string(),
        },
        Some(Value::Array(types)) => types
            .iter()
            .filter_map(Value::as_str)
            .map(toml_word)
            .collect::<Vec<_>>()
            .join(" or "),
        _ if schema.get("properties").is_some() => "table".to_string(),
        _ => "any".to_string(),
    };
    let min = schema.get("minimum").and_then(Value::as_i64);
    let max = schema.get("maximum").and_then(Value::as_i64);
    match (min, max) {
        (Some(a), Some(b)) => name.push_str(&format!(" ({a}–{b})")),
        (Some(a), None) if a != 0 => name.push_str(&format!(" (≥ {a})")),
        (None, Some(b)) => name.push_str(&format!(" (≤ {b})")),
        _ => {}
    }
    name
}

/// A JSON value written as TOML (`"2m"`, `8`, `["a"]`, `{ past_days = 1 }`).
pub fn toml_value(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => toml::Value::String(s.clone()).to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(toml_value).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => {
            if map.is_empty() {
                return "{}".to_string();
            }
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{} = {}", toml_key(k), toml_value(v)))
                .collect();
            format!("{{ {} }}", parts.join(", "))
        }
    }
}

fn toml_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_string()
    } else {
        toml::Value::String(key.to_string()).to_string()
    }
}

/// A doc comment as one paragraph-preserving line: single line breaks become spaces.
pub fn prose(text: &str) -> String {
    text.split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn describe(schema: &Value) -> String {
    let schema = unwrap_option(schema);
    let mut text = schema
        .get("description")
        .and_then(Value::as_str)
        .map(prose)
        .unwrap_or_default();
    // A value type's examples are shown once, in the "Value types" section.
    if let Some(Value::Array(examples)) = schema.get("examples")
        && !examples.is_empty()
        && value_type(&schema).is_none()
    {
        let list: Vec<String> = examples.iter().map(|e| md::code(&toml_value(e))).collect();
        if !text.is_empty() {
            text.push(' ');
        }
        let word = if list.len() == 1 {
            "Example:"
        } else {
            "Examples:"
        };
        text.push_str(&format!("{word} {}.", list.join(", ")));
    }
    text
}

/// The rows of a table's schema (its `properties`), nested tables flattened to dotted keys.
pub fn rows(schema: &Value) -> Vec<Row> {
    let mut out = Vec::new();
    collect(schema, "", &mut out);
    out
}

fn collect(schema: &Value, prefix: &str, out: &mut Vec<Row>) {
    let schema = unwrap_option(schema);
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(Value::Object(props)) = schema.get("properties") {
        for (name, prop) in props {
            let key = format!("{prefix}{name}");
            let default = if required.contains(&name.as_str()) {
                "required".to_string()
            } else {
                match unwrap_option(prop).get("default") {
                    Some(Value::Null) | None => String::new(),
                    Some(v) => md::code(&toml_value(v)),
                }
            };
            out.push(Row {
                key: key.clone(),
                ty: type_name(prop),
                default,
                description: describe(prop),
            });
            nested(prop, &key, out);
        }
    }
}

/// Rows below a key: the keys of a table, of an array's tables, of a map's values, of the
/// variants of a tagged table.
fn nested(prop: &Value, key: &str, out: &mut Vec<Row>) {
    let prop = unwrap_option(prop);
    if value_type(&prop).is_some() {
        return;
    }
    if prop.get("properties").is_some() {
        collect(&prop, &format!("{key}."), out);
    }
    if let Some(items) = prop.get("items") {
        let items = unwrap_option(items);
        if items.get("properties").is_some() {
            collect(&items, &format!("{key}[]."), out);
        }
    }
    if let Some(values) = prop.get("additionalProperties").filter(|v| v.is_object()) {
        let child = format!("{key}.<name>");
        out.push(Row {
            key: child.clone(),
            ty: type_name(values),
            default: String::new(),
            description: describe(values),
        });
        nested(values, &child, out);
    }
    for keyword in ["oneOf", "anyOf"] {
        let Some(Value::Array(variants)) = prop.get(keyword) else {
            continue;
        };
        for variant in variants {
            let variant = unwrap_option(variant);
            if value_type(&variant).is_some() || variant.get("properties").is_none() {
                continue;
            }
            let tag = tag_of(&variant);
            let mut rows = Vec::new();
            collect(&variant, &format!("{key}."), &mut rows);
            for mut row in rows {
                if let Some((tag_key, tag_value)) = &tag {
                    if row.key == format!("{key}.{tag_key}") {
                        // The tag's own row: one per variant, with the variant's description.
                        row.ty = toml_value(tag_value);
                        row.description = describe(&variant);
                    } else {
                        row.description = format!(
                            "With `{tag_key} = {}`: {}",
                            toml_value(tag_value),
                            row.description
                        );
                    }
                }
                if !out.contains(&row) {
                    out.push(row);
                }
            }
        }
    }
}

/// The discriminating key of a tagged variant (`kind = "ntlm"`): a required property with a
/// `const` value.
fn tag_of(variant: &Value) -> Option<(String, Value)> {
    let props = variant.get("properties")?.as_object()?;
    props.iter().find_map(|(k, v)| {
        let v = unwrap_option(v);
        v.get("const")
            .cloned()
            .or_else(|| {
                v.get("enum")
                    .and_then(Value::as_array)
                    .filter(|e| e.len() == 1)
                    .map(|e| e[0].clone())
            })
            .map(|c| (k.clone(), c))
    })
}

/// The key table as Markdown.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from("| key | type | default | description |\n|---|---|---|---|\n");
    for row in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            md::code(&row.key),
            md::cell(&row.ty),
            md::cell(&row.default),
            md::cell(&row.description)
        ));
    }
    out
}

/// An example table: every key with an example or a non-empty default, nested tables inline.
pub fn example(schema: &Value) -> Map<String, Value> {
    let schema = unwrap_option(schema);
    let mut out = Map::new();
    if let Some(Value::Object(props)) = schema.get("properties") {
        for (name, prop) in props {
            let prop = unwrap_option(prop);
            // The field's own example, else its default (a value type's examples are
            // generic), never an empty default.
            let own_example = prop
                .get("examples")
                .and_then(Value::as_array)
                .and_then(|e| e.first().cloned())
                .filter(|_| value_type(&prop).is_none());
            let value = own_example
                .or_else(|| prop.get("default").cloned())
                .filter(|v| !is_empty(v));
            match value {
                Some(v) => {
                    out.insert(name.clone(), v);
                }
                None if prop.get("properties").is_some() && value_type(&prop).is_none() => {
                    let inner = example(&prop);
                    if !inner.is_empty() {
                        out.insert(name.clone(), Value::Object(inner));
                    }
                }
                None => {}
            }
        }
    }
    out
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// `[header]` and its keys as TOML lines.
pub fn example_toml(header: &str, values: &Map<String, Value>) -> String {
    let mut out = format!("{header}\n");
    for (k, v) in values {
        out.push_str(&format!("{} = {}\n", toml_key(k), toml_value(v)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn options_enums_and_nested_tables() {
        let schema = json!({
            "type": "object",
            "required": ["url"],
            "properties": {
                "url": { "type": "string", "description": "Where.\nReally.", "examples": ["x://y"] },
                "mode": { "enum": ["soft", "hard"], "default": "soft" },
                "n": { "type": ["integer", "null"], "minimum": 1, "maximum": 64 },
                "window": { "type": "object", "description": "Span.",
                    "properties": { "days": { "type": "integer", "default": 2 } },
                    "default": { "days": 2 } }
            }
        });
        let rows = rows(&schema);
        let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
        // Keys come in alphabetical order (serde_json's map).
        assert_eq!(keys, ["mode", "n", "url", "window", "window.days"]);
        assert_eq!(rows[2].default, "required");
        assert_eq!(rows[2].description, "Where. Really. Example: `\"x://y\"`.");
        assert_eq!(rows[0].ty, "\"soft\" or \"hard\"");
        assert_eq!(rows[0].default, "`\"soft\"`");
        assert_eq!(rows[1].ty, "integer (1–64)");
        assert_eq!(rows[3].default, "`{ days = 2 }`");
        let ex = example(&schema);
        assert_eq!(
            example_toml("[t]", &ex),
            "[t]\nmode = \"soft\"\nurl = \"x://y\"\nwindow = { days = 2 }\n"
        );
    }
}
