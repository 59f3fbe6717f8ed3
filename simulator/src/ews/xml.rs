//! A small namespace-aware element tree for SOAP requests, and escaping for responses.
//!
//! Requests are matched on (namespace URI, local name), never on the prefix: clients write
//! `t:`/`m:`, `typ:`/`mes:` or default namespaces (EWS docs show all three, e.g.
//! `web-service-reference/getitem-operation-calendar-item.md` and `calendarview.md`). This module
//! shares nothing with `backends/`.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

/// `http://schemas.xmlsoap.org/soap/envelope/`
pub const SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// `http://schemas.microsoft.com/exchange/services/2006/messages`
pub const MSG: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";
/// `http://schemas.microsoft.com/exchange/services/2006/types`
pub const TYP: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
/// `http://schemas.microsoft.com/exchange/services/2006/errors`
pub const ERR: &str = "http://schemas.microsoft.com/exchange/services/2006/errors";
/// SOAP Autodiscover: `http://schemas.microsoft.com/exchange/2010/Autodiscover`
pub const AUTOD: &str = "http://schemas.microsoft.com/exchange/2010/Autodiscover";
/// WS-Addressing (SOAP Autodiscover headers).
pub const WSA: &str = "http://www.w3.org/2005/08/addressing";

/// Nesting limit: EWS requests are shallow; a deep document is an attack or garbage.
const MAX_DEPTH: usize = 64;

/// An element: namespace URI (empty = none), local name, attributes, children, text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Element {
    pub ns: String,
    pub name: String,
    pub attrs: Vec<Attr>,
    pub children: Vec<Element>,
    /// Concatenated character data directly inside the element (entities resolved).
    pub text: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Attr {
    pub ns: String,
    pub name: String,
    pub value: String,
}

/// Why a document did not parse (the text goes into `ErrorSchemaValidation`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} Line {line}, position {column}.")]
pub struct XmlError {
    pub message: String,
    pub line: usize,
    pub column: usize,
}

impl Element {
    /// The first child with this namespace and local name.
    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.ns == ns && c.name == name)
    }

    /// All children with this namespace and local name.
    pub fn children_named<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children
            .iter()
            .filter(move |c| c.ns == ns && c.name == name)
    }

    /// An unqualified attribute (EWS attributes carry no namespace).
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.ns.is_empty() && a.name == name)
            .map(|a| a.value.as_str())
    }

    /// The element's text, trimmed.
    pub fn text(&self) -> &str {
        self.text.trim()
    }

    /// The trimmed text of a child, if the child exists.
    pub fn child_text(&self, ns: &str, name: &str) -> Option<&str> {
        self.child(ns, name).map(Element::text)
    }

    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns == ns && self.name == name
    }
}

fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn resolve_ns(r: ResolveResult<'_>) -> Result<String, String> {
    match r {
        ResolveResult::Bound(ns) => Ok(ns.0.to_string()),
        ResolveResult::Unbound => Ok(String::new()),
        ResolveResult::Unknown(p) => Err(format!("'{p}' is an undeclared prefix.")),
    }
}

/// Parses a whole document into its root element. DOCTYPEs are refused (no entity expansion).
pub fn parse(bytes: &[u8]) -> Result<Element, XmlError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let (line, column) = position(
            std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or(""),
            e.valid_up_to(),
        );
        XmlError {
            message: "Invalid character in the given encoding.".into(),
            line,
            column,
        }
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = NsReader::from_str(text);
    let fail = |reader: &NsReader<&[u8]>, message: String| {
        let (line, column) = position(text, reader.buffer_position() as usize);
        XmlError {
            message,
            line,
            column,
        }
    };
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let (ns, ev) = match reader.read_resolved_event() {
            Ok(x) => x,
            Err(e) => return Err(fail(&reader, e.to_string())),
        };
        let ns = ns_owned(ns);
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let is_empty = matches!(ev, Event::Empty(_));
                if root.is_some() {
                    return Err(fail(&reader, "Multiple root elements.".into()));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(fail(&reader, "The document is nested too deeply.".into()));
                }
                let ns = ns.map_err(|m| fail(&reader, m))?;
                let mut el = Element {
                    ns,
                    name: e.local_name().as_ref().to_string(),
                    ..Element::default()
                };
                for a in e.attributes() {
                    let a = a.map_err(|x| fail(&reader, x.to_string()))?;
                    let key = a.key.0;
                    if key == "xmlns" || key.starts_with("xmlns:") {
                        continue;
                    }
                    let (ans, local) = reader.resolver().resolve_attribute(a.key);
                    let ans = resolve_ns(ans).map_err(|m| fail(&reader, m))?;
                    let value = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|x| fail(&reader, x.to_string()))?
                        .into_owned();
                    el.attrs.push(Attr {
                        ns: ans,
                        name: local.as_ref().to_string(),
                        value,
                    });
                }
                if is_empty {
                    match stack.last_mut() {
                        Some(p) => p.children.push(el),
                        None => root = Some(el),
                    }
                } else {
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let Some(el) = stack.pop() else {
                    return Err(fail(&reader, "Unexpected end tag.".into()));
                };
                match stack.last_mut() {
                    Some(p) => p.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&t.xml10_content());
                } else if !t.xml10_content().trim().is_empty() {
                    return Err(fail(&reader, "Data at the root level is invalid.".into()));
                }
            }
            Event::CData(t) => {
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                let c = if r.is_char_ref() {
                    r.resolve_char_ref()
                        .map_err(|x| fail(&reader, x.to_string()))?
                        .map(String::from)
                } else {
                    match r.as_ref() {
                        "lt" => Some("<".into()),
                        "gt" => Some(">".into()),
                        "amp" => Some("&".into()),
                        "apos" => Some("'".into()),
                        "quot" => Some("\"".into()),
                        other => {
                            return Err(fail(
                                &reader,
                                format!("Reference to undeclared entity '{other}'."),
                            ));
                        }
                    }
                };
                if let (Some(el), Some(c)) = (stack.last_mut(), c) {
                    el.text.push_str(&c);
                }
            }
            Event::DocType(_) => {
                return Err(fail(
                    &reader,
                    "For security reasons DTD is prohibited in this XML document.".into(),
                ));
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(fail(&reader, "Unexpected end of file.".into()));
    }
    root.ok_or_else(|| fail(&reader, "Root element is missing.".into()))
}

fn ns_owned(r: ResolveResult<'_>) -> Result<String, String> {
    resolve_ns(r)
}

/// Escapes text and attribute values for XML 1.0; drops characters XML 1.0 cannot carry.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_do_not_matter_only_namespaces() {
        let a = parse(
            br#"<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:mes="http://schemas.microsoft.com/exchange/services/2006/messages"><s:Body><mes:GetFolder><x Id="a&amp;b">T &lt;&#x41;<![CDATA[<c>]]></x></mes:GetFolder></s:Body></s:Envelope>"#,
        )
        .unwrap_or_default();
        let b = parse(
            br#"<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Body><GetFolder xmlns="http://schemas.microsoft.com/exchange/services/2006/messages"><x xmlns="" Id="a&amp;b">T &lt;A<![CDATA[<c>]]></x></GetFolder></Body></Envelope>"#,
        )
        .unwrap_or_default();
        assert_eq!(a, b);
        let op = a
            .child(SOAP, "Body")
            .and_then(|b| b.child(MSG, "GetFolder"));
        assert!(op.is_some());
        let x = op.and_then(|o| o.children.first());
        assert_eq!(x.and_then(|x| x.attr("Id")), Some("a&b"));
        assert_eq!(x.map(|x| x.text()), Some("T <A<c>"));
    }

    #[test]
    fn bad_documents_are_refused_with_a_position() {
        let e = parse(b"<a>\n  <b></a>").err();
        assert!(e.is_some_and(|e| e.line == 2));
        assert!(
            parse(b"<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><x>&e;</x>").is_err()
        );
        assert!(parse(b"<p:x/>").is_err());
        assert!(parse(b"<x>&nope;</x>").is_err());
        assert!(parse(b"").is_err());
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;"
        );
    }
}
