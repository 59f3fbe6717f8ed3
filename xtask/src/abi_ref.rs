//! `docs/reference/plugin-abi.md`: the C table, statuses, buffers and calling rules from
//! `plugins/src/abi.rs` (its doc comments and declarations, checked against the compiled layout),
//! the payloads' JSON Schemas from the model types (`calpump-plugin`'s `schema` feature), and the
//! example plugin.

use std::mem::{offset_of, size_of};
use std::path::Path;

use calpump_plugin::abi::{
    ABI_MAJOR, ABI_MINOR, HostApiV1, OwnedBuf, SINK_ENTRY_SYMBOL, SINK_PLUGIN_V1_0_SIZE,
    SinkPluginV1, StrRef,
};
use calpump_plugin::{Batch, Event, SCHEMA_VERSION, SinkResult, Tick, TickResult};
use schemars::JsonSchema;
use serde_json::Value;

use crate::source::{self, Documented};
use crate::{Error, config_ref, md, schema_doc};

/// Module documentation embedded under a `##` heading: its headings go two levels down.
fn embedded(text: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in rustdoc(text).lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        }
        if !fenced && line.starts_with('#') {
            out.push_str("##");
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Rustdoc to Markdown: intra-doc links (`` [`Status::OK`] ``) become plain code.
fn rustdoc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("[`") {
        let after = &rest[at + 2..];
        match after.find("`]") {
            Some(end) if !after[end + 2..].starts_with('(') && !after[..end].contains('\n') => {
                out.push_str(&rest[..at]);
                out.push('`');
                out.push_str(&after[..end]);
                out.push('`');
                rest = &after[end + 2..];
            }
            _ => {
                out.push_str(&rest[..at + 2]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Offsets of the v1 table's fields in the compiled type, by name.
fn table_offsets() -> Vec<(&'static str, usize)> {
    macro_rules! offsets {
        ($t:ty; $($f:ident),* $(,)?) => { vec![$((stringify!($f), offset_of!($t, $f))),*] };
    }
    offsets!(SinkPluginV1;
        abi_major, abi_minor, struct_size, name, version, config_schema,
        create, check, write_batch, flush, tick, destroy, free_buf)
}

fn host_offsets() -> Vec<(&'static str, usize)> {
    macro_rules! offsets {
        ($t:ty; $($f:ident),* $(,)?) => { vec![$((stringify!($f), offset_of!($t, $f))),*] };
    }
    offsets!(HostApiV1; struct_size, ctx, max_level, log, metric)
}

/// A struct's fields as a table with offsets; fails when the source and the compiled type
/// disagree (a field added in one place only).
fn layout_table(
    name: &str,
    fields: &[Documented],
    offsets: &[(&'static str, usize)],
    aliases: &[Documented],
) -> Result<String, Error> {
    let parsed: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
    let compiled: Vec<&str> = offsets.iter().map(|(n, _)| *n).collect();
    if parsed != compiled {
        return Err(Error(format!(
            "{name}: the fields in plugins/src/abi.rs ({parsed:?}) differ from the ones xtask/src/abi_ref.rs lists ({compiled:?}); update the list"
        )));
    }
    let mut out = String::from("| # | offset | field | type | meaning |\n|---|---|---|---|---|\n");
    for (i, (f, (_, offset))) in fields.iter().zip(offsets).enumerate() {
        // A function pointer field says what it does on its type alias.
        let doc = if f.doc.trim().is_empty() {
            aliases
                .iter()
                .find(|a| a.name == f.detail)
                .map(|a| a.doc.clone())
                .unwrap_or_default()
        } else {
            f.doc.clone()
        };
        out.push_str(&format!(
            "| {} | {} | `{}` | {} | {} |\n",
            i + 1,
            offset,
            f.name,
            md::code(&f.detail),
            md::cell(&schema_doc::prose(&rustdoc(&doc)))
        ));
    }
    Ok(out)
}

fn documented_list(items: &[Documented]) -> String {
    let mut out = String::new();
    for item in items {
        let doc = schema_doc::prose(&rustdoc(&item.doc));
        if doc.is_empty() {
            out.push_str(&format!("- `{}` = `{}`\n", item.name, item.detail));
        } else {
            out.push_str(&format!("- `{}` = `{}` — {doc}\n", item.name, item.detail));
        }
    }
    out
}

fn payload<T: JsonSchema>(out: &mut String, heading: &str, what: &str) -> Result<(), Error> {
    let mut inline = config_ref::generator();
    let inlined = inline.root_schema_for::<T>().as_value().clone();
    let compact = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>();
    let json = serde_json::to_string_pretty(compact.as_value())
        .map_err(|e| Error(format!("{heading}: {e}")))?;
    out.push_str(&format!("### `{heading}`\n\n{what}\n\n"));
    if let Some(description) = inlined.get("description").and_then(Value::as_str) {
        out.push_str(&format!("{}\n\n", schema_doc::prose(&rustdoc(description))));
    }
    let rows = schema_doc::rows(&inlined);
    // JSON words, not TOML's.
    let table = schema_doc::table(&rows)
        .replacen("| key |", "| field |", 1)
        .replace("array of table", "array of object")
        .replace("| table |", "| object |");
    out.push_str(&rustdoc(&table));
    out.push_str(&format!(
        "\n<details><summary>JSON Schema of <code>{heading}</code></summary>\n\n```json\n{json}\n```\n\n</details>\n\n"
    ));
    Ok(())
}

/// The page.
pub fn render(root: &Path) -> Result<String, Error> {
    let abi = source::read(&root.join("plugins/src/abi.rs"))?;
    let model = source::read(&root.join("plugins/src/model.rs"))?;
    let sdk = source::read(&root.join("plugins/src/sdk.rs"))?;
    let example_dir = root.join("plugins/examples/jsonl-sink");
    let example_lib = source::read(&example_dir.join("src/lib.rs"))?;
    let example_manifest = source::read(&example_dir.join("Cargo.toml"))?;

    let symbol = String::from_utf8_lossy(SINK_ENTRY_SYMBOL)
        .trim_end_matches('\0')
        .to_string();
    let mut out = md::generated_note(
        "`plugins/src/abi.rs`, `plugins/src/sdk.rs`, `plugins/src/model.rs` (doc comments, declarations and the compiled layout) and `plugins/examples/jsonl-sink/`",
    );
    out.push_str("# Sink plugin ABI reference\n\n");
    out.push_str(&format!(
        "ABI version **{ABI_MAJOR}.{ABI_MINOR}** · entry symbol **`{symbol}`** · payload `schema_version` **{SCHEMA_VERSION}** · \
smallest table a v{ABI_MAJOR} host accepts: **{SINK_PLUGIN_V1_0_SIZE} bytes** (offsets below are for 64-bit targets, where pointers and `usize` are 8 bytes; \
`StrRef` is {} bytes, `OwnedBuf` {} bytes).\n\n",
        size_of::<StrRef>(),
        size_of::<OwnedBuf>()
    ));
    out.push_str(
        "A sink plugin is a shared library that calpump loads from a directory listed in `[plugins] dirs`. \
Write it in Rust with the SDK (`calpump-plugin`, `export_sink!`) — [the example](#the-example-plugin) is a complete one — \
or in any language that can export a C function. `calpump plugins` lists what was found, with the ABI version and the configuration schema; a library with another major version is refused with a clear error.\n\n",
    );
    out.push_str("Contents: [rules](#rules) · [the table](#the-table-sinkpluginv1) · [calls](#calls) · [statuses](#statuses) · [buffers](#buffers) · [host callbacks](#host-callbacks) · [the SDK](#the-rust-sdk) · [payloads](#payloads) · [the example plugin](#the-example-plugin)\n\n");

    out.push_str("## Rules\n\n");
    out.push_str(&embedded(&source::module_doc(&abi)));
    out.push('\n');

    out.push_str("## The table (`SinkPluginV1`)\n\n");
    out.push_str(&format!(
        "`{symbol}` is `extern \"C\" fn() -> *const SinkPluginV1`; the table lives as long as the library (libraries are never unloaded). Fields in this order, `#[repr(C)]`:\n\n"
    ));
    let aliases = source::type_aliases(&abi);
    out.push_str(&layout_table(
        "SinkPluginV1",
        &source::struct_fields(&abi, "SinkPluginV1")?,
        &table_offsets(),
        &aliases,
    )?);
    out.push('\n');

    out.push_str("## Calls\n\n");
    out.push_str(&documented_list(&aliases));
    out.push('\n');

    out.push_str("## Statuses\n\n");
    out.push_str("Every call returns a `Status`, a `u32` (not a Rust enum: an unknown value from a newer plugin is not undefined behaviour; the host treats it as fatal).\n\n");
    out.push_str(&documented_list(&source::consts(source::block(
        &abi,
        "impl Status {",
    )?)));
    out.push('\n');

    out.push_str("## Buffers\n\n");
    out.push_str("Strings into the plugin are borrowed `StrRef`s; strings out are `OwnedBuf`s the plugin allocated and the host hands back to the plugin's `free_buf`, so each side frees with its own allocator.\n\n");
    out.push_str("`StrRef`:\n\n");
    out.push_str(&field_list(&source::struct_fields(&abi, "StrRef")?));
    out.push_str("\n`OwnedBuf`:\n\n");
    out.push_str(&field_list(&source::struct_fields(&abi, "OwnedBuf")?));
    out.push('\n');

    out.push_str("## Host callbacks\n\n");
    out.push_str("`create` receives a `*const HostApiV1`; its callbacks live as long as the process and may be called from any thread.\n\n");
    out.push_str(&layout_table(
        "HostApiV1",
        &source::struct_fields(&abi, "HostApiV1")?,
        &host_offsets(),
        &aliases,
    )?);
    out.push_str("\nLog levels (`log_level`):\n\n");
    out.push_str(&documented_list(&source::consts(source::block(
        &abi,
        "pub mod log_level {",
    )?)));
    out.push_str("\nMetric kinds (`metric_kind`):\n\n");
    out.push_str(&documented_list(&source::consts(source::block(
        &abi,
        "pub mod metric_kind {",
    )?)));
    out.push_str("\nThe host exposes a plugin's metric `<name>` as `calpump_plugin_<name>` with the label `plugin` added (see the [metrics reference](metrics.md#plugin-metrics)).\n\n");

    out.push_str("## The Rust SDK\n\n");
    out.push_str(&embedded(&source::module_doc(&sdk)));
    out.push('\n');

    out.push_str("## Payloads\n\n");
    out.push_str(&embedded(&source::module_doc(&model)));
    out.push('\n');
    out.push_str("`check` answers `{\"warnings\": [\"…\"]}` on `OK`; on any other status every call's out-buffer holds an error text for the admin.\n\n");
    payload::<Batch>(
        &mut out,
        "Batch",
        "The input of `write_batch`: changes of one calendar of one mailbox.",
    )?;
    payload::<Event>(
        &mut out,
        "Event",
        "One event in `Batch.upserts`: a single event, an occurrence or an exception.",
    )?;
    payload::<SinkResult>(
        &mut out,
        "SinkResult",
        "The output of `write_batch` on `OK`.",
    )?;
    payload::<Tick>(
        &mut out,
        "Tick",
        "The input of `tick`: called periodically and at the instants a sink asked for.",
    )?;
    payload::<TickResult>(&mut out, "TickResult", "The output of `tick` on `OK`.")?;

    out.push_str("## The example plugin\n\n");
    out.push_str(
        "[`plugins/examples/jsonl-sink/`](../../plugins/examples/jsonl-sink/) is a third-party sink built the way an outsider builds one: its own package outside calpump's workspace, depending only on `calpump-plugin`. \
CI builds it and a test (`tests/example_plugin.rs`) loads it with `calpump plugins --json` and writes batches through it with `calpump sync`.\n\n",
    );
    out.push_str("```sh\ncd plugins/examples/jsonl-sink && cargo build --release\nmkdir -p ~/calpump-plugins && cp target/release/libcalpump_example_jsonl_sink.so ~/calpump-plugins/\n```\n\n");
    out.push_str("```toml\n[plugins]\ndirs = [\"/home/me/calpump-plugins\"]\n\n[sinks.audit]\nplugin = \"jsonl\"\npath = \"batches.jsonl\"\n```\n\n");
    out.push_str(&format!(
        "`Cargo.toml`:\n\n```toml\n{}```\n\n`src/lib.rs`:\n\n```rust\n{}```\n",
        example_manifest, example_lib
    ));
    Ok(out)
}

fn field_list(fields: &[Documented]) -> String {
    fields
        .iter()
        .map(|f| {
            let doc = schema_doc::prose(&rustdoc(&f.doc));
            if doc.is_empty() {
                format!("- `{}: {}`\n", f.name, f.detail)
            } else {
                format!("- `{}: {}` — {}\n", f.name, f.detail, doc)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intra_doc_links_become_code() {
        assert_eq!(
            rustdoc("see [`Status::OK`] and [`a`](b) [x]"),
            "see `Status::OK` and [`a`](b) [x]"
        );
    }
}
