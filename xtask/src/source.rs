//! Reading documentation out of Rust source: module docs (`//!`), the doc comments and types of
//! a struct's fields, constants and type aliases. Rust has no reflection; the ABI reference
//! takes the table's layout from the source text and checks it against the compiled type
//! (`std::mem::offset_of!`).

use std::path::Path;

use crate::Error;

pub fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| Error(format!("{}: {e}", path.display())))
}

/// The `//!` documentation at the top of a file, markers removed.
pub fn module_doc(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("//!") {
            out.push_str(rest.strip_prefix(' ').unwrap_or(rest));
            out.push('\n');
        } else if !trimmed.is_empty() {
            break;
        }
    }
    out
}

/// The first ```toml block of a file's module documentation.
pub fn module_toml_example(path: &Path) -> Result<Option<String>, Error> {
    let doc = module_doc(&read(path)?);
    let mut lines = doc.lines();
    if !lines.any(|l| l.trim() == "```toml") {
        return Ok(None);
    }
    let mut block = String::new();
    for line in lines {
        if line.trim() == "```" {
            return Ok(Some(block));
        }
        block.push_str(line);
        block.push('\n');
    }
    Err(Error(format!(
        "{}: unterminated ```toml block",
        path.display()
    )))
}

/// An item with the doc comment above it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Documented {
    pub name: String,
    /// The field's type, the constant's value, the alias's definition.
    pub detail: String,
    pub doc: String,
}

/// Doc comment lines (`///`) collected while scanning; attributes pass through.
#[derive(Default)]
struct DocBuffer(Vec<String>);

impl DocBuffer {
    /// Feeds a trimmed line; returns `true` when the line was a doc comment or an attribute.
    fn feed(&mut self, line: &str) -> bool {
        if let Some(rest) = line.strip_prefix("///") {
            self.0
                .push(rest.strip_prefix(' ').unwrap_or(rest).to_string());
            true
        } else {
            line.starts_with("#[")
        }
    }

    fn take(&mut self) -> String {
        let doc = self.0.join("\n");
        self.0.clear();
        doc
    }
}

/// The fields of `pub struct NAME { … }`, in order.
pub fn struct_fields(text: &str, name: &str) -> Result<Vec<Documented>, Error> {
    let open = format!("pub struct {name} {{");
    let start = text
        .find(&open)
        .ok_or_else(|| Error(format!("`{open}` not found")))?;
    let body = &text[start + open.len()..];
    let end = body
        .find("\n}")
        .ok_or_else(|| Error(format!("end of `{name}` not found")))?;
    let mut docs = DocBuffer::default();
    let mut out = Vec::new();
    let mut pending: Option<(String, String, String)> = None;
    for line in body[..end].lines() {
        let line = line.trim();
        if let Some((field, mut ty, doc)) = pending.take() {
            // A type spread over several lines (function pointers).
            ty.push(' ');
            ty.push_str(line);
            if complete(&ty) {
                out.push(finish(field, ty, doc));
            } else {
                pending = Some((field, ty, doc));
            }
            continue;
        }
        if line.is_empty() || docs.feed(line) || line.starts_with("//") {
            continue;
        }
        let Some(rest) = line.strip_prefix("pub ") else {
            continue;
        };
        let Some((field, ty)) = rest.split_once(':') else {
            continue;
        };
        let doc = docs.take();
        let ty = ty.trim().to_string();
        if complete(&ty) {
            out.push(finish(field.trim().to_string(), ty, doc));
        } else {
            pending = Some((field.trim().to_string(), ty, doc));
        }
    }
    Ok(out)
}

/// A field's type is complete when it ends with `,` and its brackets are balanced (`->` is
/// not a bracket).
fn complete(ty: &str) -> bool {
    let count = |c: char| ty.matches(c).count();
    ty.trim_end().ends_with(',')
        && count('(') == count(')')
        && count('<') + ty.matches("->").count() == count('>')
}

fn finish(name: String, ty: String, doc: String) -> Documented {
    let detail = ty
        .trim()
        .trim_end_matches(',')
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace("( ", "(")
        .replace(" )", ")")
        .replace(", >", ">");
    Documented { name, detail, doc }
}

/// `pub const NAME: TYPE = VALUE;` items inside `scope` (the text of a module or impl block),
/// with their docs.
pub fn consts(scope: &str) -> Vec<Documented> {
    let mut docs = DocBuffer::default();
    let mut out = Vec::new();
    for line in scope.lines() {
        let line = line.trim();
        if docs.feed(line) {
            continue;
        }
        if let Some(rest) = line.strip_prefix("pub const ")
            && let Some((name, rest)) = rest.split_once(':')
            && let Some((_, value)) = rest.split_once('=')
        {
            out.push(Documented {
                name: name.trim().to_string(),
                detail: value.trim().trim_end_matches(';').to_string(),
                doc: docs.take(),
            });
        } else {
            docs.take();
        }
    }
    out
}

/// `pub type NAME = …;` items (possibly spread over lines), with their docs.
pub fn type_aliases(text: &str) -> Vec<Documented> {
    let mut docs = DocBuffer::default();
    let mut out = Vec::new();
    let mut pending: Option<(String, String, String)> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some((name, mut def, doc)) = pending.take() {
            def.push(' ');
            def.push_str(line);
            if def.ends_with(';') {
                out.push(finish(name, def.trim_end_matches(';').to_string(), doc));
            } else {
                pending = Some((name, def, doc));
            }
            continue;
        }
        if docs.feed(line) {
            continue;
        }
        if let Some(rest) = line.strip_prefix("pub type ")
            && let Some((name, def)) = rest.split_once('=')
        {
            let doc = docs.take();
            let def = def.trim().to_string();
            if def.ends_with(';') {
                out.push(finish(
                    name.trim().to_string(),
                    def.trim_end_matches(';').to_string(),
                    doc,
                ));
            } else {
                pending = Some((name.trim().to_string(), def, doc));
            }
        } else {
            docs.take();
        }
    }
    out
}

/// The text of the block that starts at the first line containing `opening` (`impl Status {`,
/// `pub mod log_level {`), up to its closing brace.
pub fn block<'a>(text: &'a str, opening: &str) -> Result<&'a str, Error> {
    let start = text
        .find(opening)
        .ok_or_else(|| Error(format!("`{opening}` not found")))?;
    let mut depth = 0usize;
    for (i, c) in text[start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Ok(&text[start..start + i + 1]);
                }
            }
            _ => {}
        }
    }
    Err(Error(format!("`{opening}` is not closed")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"//! A module.
//!
//! ```toml
//! a = 1
//! ```

/// The table.
#[repr(C)]
pub struct T {
    pub a: u32,
    /// Bee.
    /// Two lines.
    pub b: StrRef,
    pub f: Option<unsafe extern "C" fn(*mut c_void, u32, StrRef,
        StrRef)>,
}

impl S {
    /// Zero.
    pub const OK: S = S(0);
    pub const BAD: S = S(1);
}

/// Make.
pub type MakeFn =
    unsafe extern "C" fn(StrRef) -> Status;
"#;

    #[test]
    fn fields_consts_and_aliases_with_docs() {
        let fields = struct_fields(SAMPLE, "T").expect("fields");
        assert_eq!(fields.len(), 3);
        assert_eq!(fields[0].name, "a");
        assert_eq!(fields[1].doc, "Bee.\nTwo lines.");
        assert_eq!(
            fields[2].detail,
            "Option<unsafe extern \"C\" fn(*mut c_void, u32, StrRef, StrRef)>"
        );
        let consts = consts(block(SAMPLE, "impl S {").expect("block"));
        assert_eq!(consts[0].name, "OK");
        assert_eq!(consts[0].detail, "S(0)");
        assert_eq!(consts[0].doc, "Zero.");
        assert_eq!(consts[1].doc, "");
        let aliases = type_aliases(SAMPLE);
        assert_eq!(aliases[0].name, "MakeFn");
        assert_eq!(
            aliases[0].detail,
            "unsafe extern \"C\" fn(StrRef) -> Status"
        );
        assert!(module_doc(SAMPLE).starts_with("A module."));
    }
}
