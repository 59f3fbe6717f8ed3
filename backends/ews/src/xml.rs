//! Namespace-correct XML for EWS: a small element tree read with quick-xml's namespace reader,
//! navigation that matches elements by **namespace URI and local name** (never by prefix), and
//! errors that name the path of the element that failed.
//!
//! Exchange 2013, 2016/2019 and Exchange Online spell prefixes differently (`s:`/`soap:`,
//! `m:`/`t:`/`h:`, default namespaces on `GetItemResponse` or `ServerVersionInfo`), so the
//! prefix carries no meaning here. Unknown elements and attributes are ignored (lenient); an
//! element the caller requires and does not find is an error naming its path, e.g.
//! `Envelope/Body/GetItemResponse/ResponseMessages/GetItemResponseMessage[2]/Items/CalendarItem[1]/Start`.
//!
//! Requests are written with [`Writer`]: fixed prefixes (`soap`, `m`, `t`) declared on the
//! envelope, every value escaped.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use quick_xml::NsReader;
use quick_xml::escape::{escape, resolve_predefined_entity};
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

/// SOAP 1.1 envelope.
pub const NS_SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// EWS messages (`m:`).
pub const NS_MESSAGES: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";
/// EWS types (`t:`).
pub const NS_TYPES: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
/// EWS errors (`e:` in a SOAP fault's detail).
pub const NS_ERRORS: &str = "http://schemas.microsoft.com/exchange/services/2006/errors";
/// SOAP Autodiscover (`GetUserSettings`).
pub const NS_AUTODISCOVER: &str = "http://schemas.microsoft.com/exchange/2010/Autodiscover";
/// WS-Addressing (SOAP Autodiscover headers).
pub const NS_WSA: &str = "http://www.w3.org/2005/08/addressing";
/// XML Schema instance (`i:nil`, `i:type`).
pub const NS_XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
/// POX Autodiscover request.
pub const NS_POX_REQUEST: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006";
/// POX Autodiscover response, outer element.
pub const NS_POX_RESPONSE: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006";
/// POX Autodiscover response, the Outlook schema (`Response`, `Account`, `Protocol`).
pub const NS_POX_OUTLOOK: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";

/// Deepest nesting accepted (EWS answers are < 20 deep; this stops hostile input).
const MAX_DEPTH: usize = 128;

/// One attribute: namespace URI (`None` for an unprefixed attribute), local name, value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub ns: Option<String>,
    pub name: String,
    pub value: String,
}

/// One element with its resolved namespace, attributes, text and children.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// The namespace URI, `None` when the element is in no namespace.
    pub ns: Option<String>,
    /// The local name (prefix removed).
    pub name: String,
    pub attributes: Vec<Attribute>,
    /// The element's own text (text and CDATA directly inside it, concatenated).
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// Whether this element is `{ns}name`.
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.name == name && self.ns.as_deref() == Some(ns)
    }

    /// `{ns}name` for messages.
    pub fn qualified(&self) -> String {
        match &self.ns {
            Some(ns) => format!("{{{ns}}}{}", self.name),
            None => self.name.clone(),
        }
    }

    /// An unqualified attribute (EWS attributes carry no namespace).
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.ns.is_none() && a.name == name)
            .map(|a| a.value.as_str())
    }

    /// An attribute in a namespace (`xsi:nil`).
    pub fn attr_ns(&self, ns: &str, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.ns.as_deref() == Some(ns) && a.name == name)
            .map(|a| a.value.as_str())
    }
}

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    /// Not well-formed XML (or cut off) at a byte position.
    #[error("not well-formed XML at byte {position}{inside}: {message}")]
    Syntax {
        position: u64,
        inside: String,
        message: String,
    },
    /// The document ended while elements were still open.
    #[error("the XML ends early, inside <{open}> (the answer was cut off)")]
    Truncated { open: String },
    /// No root element at all.
    #[error("the answer holds no XML element")]
    Empty,
    /// A required element is missing.
    #[error("element `{path}` is missing")]
    Missing { path: String },
    /// An element or attribute holds a value of the wrong form.
    #[error("`{path}`: {message}")]
    Invalid { path: String, message: String },
}

fn syntax(position: u64, stack: &[Element], message: impl fmt::Display) -> XmlError {
    let inside = if stack.is_empty() {
        String::new()
    } else {
        let path: Vec<&str> = stack.iter().map(|e| e.name.as_str()).collect();
        format!(" inside {}", path.join("/"))
    };
    XmlError::Syntax {
        position,
        inside,
        message: message.to_string(),
    }
}

fn ns_of(result: &ResolveResult<'_>) -> Option<String> {
    match result {
        ResolveResult::Bound(ns) => Some(ns.as_ref().to_string()),
        _ => None,
    }
}

/// Parses a whole document into its root element. Bytes that are not UTF-8 are replaced.
pub fn parse(bytes: &[u8]) -> Result<Element, XmlError> {
    let text: Cow<'_, str> = String::from_utf8_lossy(bytes);
    let text = text.trim_start_matches('\u{feff}');
    let mut reader = NsReader::from_str(text);
    let config = reader.config_mut();
    config.trim_text(false);
    config.expand_empty_elements = false;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let position = reader.buffer_position();
        let (ns, event) = match reader.read_resolved_event() {
            Ok((resolved, event)) => (ns_of(&resolved), event),
            Err(e) => return Err(syntax(position, &stack, e)),
        };
        match event {
            Event::Start(start) => {
                let element = build_element(&reader, &start, ns, position, &stack)?;
                if stack.len() >= MAX_DEPTH {
                    return Err(syntax(position, &stack, "elements nested too deep"));
                }
                stack.push(element);
            }
            Event::Empty(start) => {
                let element = build_element(&reader, &start, ns, position, &stack)?;
                attach(&mut stack, &mut root, element);
            }
            Event::End(_) => {
                let Some(element) = stack.pop() else {
                    return Err(syntax(position, &stack, "closing tag without an opening one"));
                };
                attach(&mut stack, &mut root, element);
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                } else if !t.xml10_content().trim().is_empty() {
                    return Err(syntax(position, &stack, "text outside the root element"));
                }
            }
            Event::CData(c) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&c.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                let resolved: String = if r.is_char_ref() {
                    match r.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        Ok(None) | Err(_) => {
                            return Err(syntax(
                                position,
                                &stack,
                                format!("invalid character reference &{};", r.xml10_content()),
                            ));
                        }
                    }
                } else {
                    let name = r.xml10_content();
                    match resolve_predefined_entity(&name) {
                        Some(value) => value.to_string(),
                        None => {
                            return Err(syntax(
                                position,
                                &stack,
                                format!("unknown entity &{name};"),
                            ));
                        }
                    }
                };
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&resolved);
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        let path: Vec<&str> = stack.iter().map(|e| e.name.as_str()).collect();
        return Err(XmlError::Truncated {
            open: path.join("/"),
        });
    }
    root.ok_or(XmlError::Empty)
}

fn build_element(
    reader: &NsReader<&[u8]>,
    start: &quick_xml::events::BytesStart<'_>,
    ns: Option<String>,
    position: u64,
    stack: &[Element],
) -> Result<Element, XmlError> {
    let name = start.local_name().as_ref().to_string();
    let mut attributes = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| syntax(position, stack, e))?;
        if attr.key.as_namespace_binding().is_some() {
            continue;
        }
        let (attr_ns, local) = reader.resolver().resolve_attribute(attr.key);
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| syntax(position, stack, e))?;
        attributes.push(Attribute {
            ns: ns_of(&attr_ns),
            name: local.as_ref().to_string(),
            value: value.into_owned(),
        });
    }
    Ok(Element {
        ns,
        name,
        attributes,
        ..Element::default()
    })
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, element: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None => {
            if root.is_none() {
                *root = Some(element);
            }
        }
    }
}

/// An element and the path that led to it, for error messages.
#[derive(Debug, Clone)]
pub struct Node<'a> {
    pub el: &'a Element,
    path: String,
}

impl<'a> Node<'a> {
    pub fn root(el: &'a Element) -> Self {
        Self {
            el,
            path: el.name.clone(),
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    fn step(&self, el: &'a Element, index: Option<usize>) -> Node<'a> {
        let path = match index {
            Some(i) => format!("{}/{}[{}]", self.path, el.name, i + 1),
            None => format!("{}/{}", self.path, el.name),
        };
        Node { el, path }
    }

    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.el.is(ns, name)
    }

    pub fn name(&self) -> &'a str {
        &self.el.name
    }

    /// The first child `{ns}name`, if any.
    pub fn child(&self, ns: &str, name: &str) -> Option<Node<'a>> {
        self.el
            .children
            .iter()
            .find(|c| c.is(ns, name))
            .map(|c| self.step(c, None))
    }

    /// The first child `{ns}name`, or an error naming the path.
    pub fn req(&self, ns: &str, name: &str) -> Result<Node<'a>, XmlError> {
        self.child(ns, name).ok_or_else(|| XmlError::Missing {
            path: format!("{}/{name}", self.path),
        })
    }

    /// Every child `{ns}name`, numbered in the path.
    pub fn all(&self, ns: &str, name: &str) -> Vec<Node<'a>> {
        self.el
            .children
            .iter()
            .filter(|c| c.is(ns, name))
            .enumerate()
            .map(|(i, c)| self.step(c, Some(i)))
            .collect()
    }

    /// Every child element, whatever its name, numbered by position.
    pub fn elements(&self) -> Vec<Node<'a>> {
        self.el
            .children
            .iter()
            .enumerate()
            .map(|(i, c)| self.step(c, Some(i)))
            .collect()
    }

    /// The first child element in namespace `ns`, whatever its name.
    pub fn first_in(&self, ns: &str) -> Option<Node<'a>> {
        self.el
            .children
            .iter()
            .find(|c| c.ns.as_deref() == Some(ns))
            .map(|c| self.step(c, None))
    }

    /// The element's text, trimmed.
    pub fn text(&self) -> &'a str {
        self.el.text.trim()
    }

    /// The text of child `{ns}name`, trimmed; `None` when absent or empty.
    pub fn child_text(&self, ns: &str, name: &str) -> Option<&'a str> {
        self.el
            .children
            .iter()
            .find(|c| c.is(ns, name))
            .map(|c| c.text.trim())
            .filter(|t| !t.is_empty())
    }

    /// The text of a required child.
    pub fn req_text(&self, ns: &str, name: &str) -> Result<&'a str, XmlError> {
        let node = self.req(ns, name)?;
        Ok(node.text())
    }

    /// An unqualified attribute.
    pub fn attr(&self, name: &str) -> Option<&'a str> {
        self.el.attr(name)
    }

    /// A required unqualified attribute.
    pub fn req_attr(&self, name: &str) -> Result<&'a str, XmlError> {
        self.el.attr(name).ok_or_else(|| XmlError::Missing {
            path: format!("{}/@{name}", self.path),
        })
    }

    /// Parses the text of child `{ns}name` when present.
    pub fn parse_child<T: FromStr>(&self, ns: &str, name: &str) -> Result<Option<T>, XmlError>
    where
        T::Err: fmt::Display,
    {
        match self.child_text(ns, name) {
            None => Ok(None),
            Some(text) => text.parse::<T>().map(Some).map_err(|e| XmlError::Invalid {
                path: format!("{}/{name}", self.path),
                message: format!("`{}`: {e}", shorten(text)),
            }),
        }
    }

    /// Parses an attribute when present.
    pub fn parse_attr<T: FromStr>(&self, name: &str) -> Result<Option<T>, XmlError>
    where
        T::Err: fmt::Display,
    {
        match self.el.attr(name) {
            None => Ok(None),
            Some(text) => text.trim().parse::<T>().map(Some).map_err(|e| XmlError::Invalid {
                path: format!("{}/@{name}", self.path),
                message: format!("`{}`: {e}", shorten(text)),
            }),
        }
    }

    /// An error about this element.
    pub fn invalid(&self, message: impl Into<String>) -> XmlError {
        XmlError::Invalid {
            path: self.path.clone(),
            message: message.into(),
        }
    }

    /// An `xs:boolean` child (`true`/`false`/`1`/`0`).
    pub fn bool_child(&self, ns: &str, name: &str) -> Result<Option<bool>, XmlError> {
        match self.child_text(ns, name) {
            None => Ok(None),
            Some("true" | "1") => Ok(Some(true)),
            Some("false" | "0") => Ok(Some(false)),
            Some(other) => Err(XmlError::Invalid {
                path: format!("{}/{name}", self.path),
                message: format!("`{}` is not a boolean", shorten(other)),
            }),
        }
    }
}

fn shorten(text: &str) -> String {
    let mut out: String = text.chars().take(60).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// Writes a request document. Element names carry their prefix (`m:FindItem`, `t:FieldURI`);
/// the prefixes are declared once on the root by the caller.
#[derive(Debug, Default)]
pub struct Writer {
    out: String,
}

impl Writer {
    pub fn new() -> Self {
        Self {
            out: String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>"),
        }
    }

    fn attrs(&mut self, attrs: &[(&str, &str)]) {
        for (name, value) in attrs {
            self.out.push(' ');
            self.out.push_str(name);
            self.out.push_str("=\"");
            self.out.push_str(&escape(*value));
            self.out.push('"');
        }
    }

    /// `<name attrs…>`
    pub fn open(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.attrs(attrs);
        self.out.push('>');
        self
    }

    /// `</name>`
    pub fn close(&mut self, name: &str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    /// `<name attrs…/>`
    pub fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.attrs(attrs);
        self.out.push_str("/>");
        self
    }

    /// `<name>text</name>`, the text escaped.
    pub fn text(&mut self, name: &str, text: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self.out.push_str(&escape(text));
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_not_prefixes_decide() {
        let a = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:X xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><m:Y>1</m:Y></m:X></s:Body></s:Envelope>"#;
        let b = r#"<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Body><X xmlns="http://schemas.microsoft.com/exchange/services/2006/messages"><Y>1</Y></X></Body></Envelope>"#;
        let wrong = r#"<s:Envelope xmlns:s="http://example.com/not-soap"><s:Body/></s:Envelope>"#;
        for doc in [a, b] {
            let root = parse(doc.as_bytes()).expect("parse");
            let node = Node::root(&root);
            assert!(node.is(NS_SOAP, "Envelope"));
            let y = node
                .req(NS_SOAP, "Body")
                .and_then(|b| b.req(NS_MESSAGES, "X"))
                .and_then(|x| x.req(NS_MESSAGES, "Y"))
                .expect("path");
            assert_eq!(y.text(), "1");
            assert_eq!(y.path(), "Envelope/Body/X/Y");
        }
        let root = parse(wrong.as_bytes()).expect("parse");
        assert!(!Node::root(&root).is(NS_SOAP, "Envelope"));
    }

    #[test]
    fn entities_attributes_and_empty_elements() {
        let doc = r#"<a xmlns:t="urn:t" t:q="x &amp; y" p='1'><b/><b>&lt;img&gt; &#252;&#x00FC; &quot;</b><c><![CDATA[<raw>]]></c></a>"#;
        let root = parse(doc.as_bytes()).expect("parse");
        assert_eq!(root.children.len(), 3);
        assert_eq!(root.children[0].text, "");
        assert_eq!(root.children[1].text, "<img> üü \"");
        assert_eq!(root.children[2].text, "<raw>");
        assert_eq!(root.attr("p"), Some("1"));
        assert_eq!(root.attr("q"), None);
        assert_eq!(root.attr_ns("urn:t", "q"), Some("x & y"));
    }

    #[test]
    fn truncated_and_malformed_input_are_errors_not_panics() {
        let cut = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:GetItemResponse xmlns:m="urn:m"><m:Res"#;
        let err = parse(cut.as_bytes()).expect_err("cut");
        assert!(err.to_string().contains("Envelope/Body/GetItemResponse") || err.to_string().contains("Body"), "{err}");
        let cut2 = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><x>"#;
        assert!(matches!(parse(cut2.as_bytes()), Err(XmlError::Truncated { .. })));
        assert!(parse(b"").is_err());
        assert!(parse(b"\x00\xff\xfe garbage <<<").is_err());
        assert!(parse(b"<a></b>").is_err());
        assert!(parse(b"<a>&nbsp;</a>").is_err());
    }

    #[test]
    fn missing_elements_name_their_path() {
        let root = parse(br#"<a xmlns="urn:x"><b><c/></b><b/></a>"#).expect("parse");
        let node = Node::root(&root);
        let bs = node.all("urn:x", "b");
        assert_eq!(bs.len(), 2);
        let err = bs[1].req("urn:x", "c").expect_err("missing");
        assert_eq!(err.to_string(), "element `a/b[2]/c` is missing");
    }

    #[test]
    fn writer_escapes() {
        let mut w = Writer::new();
        w.open("m:A", &[("x", "a\"<b>&")]).text("t:B", "<x & y>").empty("t:C", &[]).close("m:A");
        let out = w.finish();
        assert!(out.ends_with(r#"<m:A x="a&quot;&lt;b&gt;&amp;"><t:B>&lt;x &amp; y&gt;</t:B><t:C/></m:A>"#), "{out}");
    }
}
