//! Finding the line of a key path in the configuration text, for messages that name the place.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// A place in the configuration file (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    pub file: Option<PathBuf>,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{}:{}:{}", file.display(), self.line, self.column),
            None => write!(f, "line {}:{}", self.line, self.column),
        }
    }
}

/// One segment of a key path: a key or an array index.
#[derive(Debug, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// Splits `routes[1].sinks[0]` into segments.
fn segments(path: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            let key = &rest[..open];
            if !key.is_empty() {
                out.push(Segment::Key(key.to_string()));
            }
            rest = &rest[open..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let Some(close) = stripped.find(']') else {
                    break;
                };
                if let Ok(index) = stripped[..close].parse() {
                    out.push(Segment::Index(index));
                }
                rest = &stripped[close + 1..];
            }
        } else if !rest.is_empty() {
            out.push(Segment::Key(rest.to_string()));
        }
    }
    out
}

pub(crate) struct Locator<'a> {
    text: &'a str,
    file: Option<PathBuf>,
    document: Option<toml_edit::Document<&'a str>>,
}

impl<'a> Locator<'a> {
    pub(crate) fn new(text: &'a str, file: Option<&Path>) -> Self {
        Self {
            text,
            file: file.map(Path::to_path_buf),
            document: toml_edit::Document::parse(text).ok(),
        }
    }

    pub(crate) fn location_of_offset(&self, offset: usize) -> Location {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before
            .rsplit('\n')
            .next()
            .map(|l| l.chars().count())
            .unwrap_or(0)
            + 1;
        Location {
            file: self.file.clone(),
            line,
            column,
        }
    }

    /// The location of the deepest existing key on `path` (the key itself if it exists, else
    /// its closest ancestor).
    pub(crate) fn locate(&self, path: &str) -> Option<Location> {
        let document = self.document.as_ref()?;
        let mut node = Node::Item(document.as_item());
        let mut best: Option<std::ops::Range<usize>> = None;
        for segment in segments(path) {
            match segment {
                Segment::Key(key) => {
                    let Some(table) = node.table_like() else {
                        break;
                    };
                    let Some((k, v)) = table.get_key_value(&key) else {
                        break;
                    };
                    if let Some(span) = k.span() {
                        best = Some(span);
                    }
                    node = Node::Item(v);
                }
                Segment::Index(index) => {
                    let Node::Item(item) = node else { break };
                    if let Some(array) = item.as_array_of_tables() {
                        let Some(table) = array.get(index) else { break };
                        if let Some(span) = table.span() {
                            best = Some(span);
                        }
                        node = Node::Table(table);
                    } else if let Some(array) = item.as_array() {
                        if let Some(span) = array.get(index).and_then(|v| v.span()) {
                            best = Some(span);
                        }
                        break;
                    } else {
                        break;
                    }
                }
            }
        }
        best.map(|span| self.location_of_offset(span.start))
    }
}

/// Where the walk down a key path stands: an item, or a table inside an array of tables.
#[derive(Clone, Copy)]
enum Node<'d> {
    Item(&'d toml_edit::Item),
    Table(&'d toml_edit::Table),
}

impl<'d> Node<'d> {
    fn table_like(self) -> Option<&'d dyn toml_edit::TableLike> {
        match self {
            Node::Item(item) => item.as_table_like(),
            Node::Table(table) => Some(table),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_paths() {
        assert_eq!(
            segments("routes[1].sinks[0]"),
            vec![
                Segment::Key("routes".into()),
                Segment::Index(1),
                Segment::Key("sinks".into()),
                Segment::Index(0)
            ]
        );
    }
}
