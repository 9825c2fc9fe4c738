//! A small namespace-resolved XML tree for SOAP envelopes, and escaping for the builders.
//!
//! Messages are tiny (MaxEnvelopeSize caps them at a few hundred KiB), so the parser reads
//! the whole document into a tree of [`Element`]s whose names are `(namespace URI, local
//! name)` pairs: prefixes are resolved while reading and then forgotten, because pypsrp,
//! pywinrm, Windows and OMI all pick different ones (MS-WSMV 2.2.1 names only the URIs).
//! QName-valued text such as a fault's `s:Value` keeps the namespace its prefix was bound
//! to. The parser refuses rather than panics: malformed or truncated XML, undeclared
//! prefixes, more than one root, nesting deeper than [`MAX_DEPTH`] (which also keeps the
//! recursive drop of the tree shallow). DTDs are not expanded; only the predefined entities
//! and character references are.

use std::borrow::Cow;

use quick_xml::events::Event;
use quick_xml::name::{QName, ResolveResult};
use quick_xml::NsReader;

use super::{ns, SoapError};

/// Deepest element nesting accepted. Real envelopes are about 10 levels deep.
pub(crate) const MAX_DEPTH: usize = 64;

/// An attribute, namespace-resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Attr {
    /// Namespace URI; `None` for unprefixed attributes (which are in no namespace).
    pub ns: Option<Cow<'static, str>>,
    /// Local name.
    pub name: String,
    /// Unescaped value.
    pub value: String,
}

/// An element, namespace-resolved, with its direct text and children.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Element {
    /// Namespace URI (`None` when unqualified and no default namespace is in scope).
    pub ns: Option<Cow<'static, str>>,
    /// Local name.
    pub name: String,
    /// Attributes except namespace declarations.
    pub attrs: Vec<Attr>,
    /// Child elements in document order.
    pub children: Vec<Element>,
    /// Concatenated direct text and CDATA content, unescaped, untrimmed.
    pub text: String,
    /// When `text` (trimmed) looks like a QName `prefix:local`, the namespace the prefix was
    /// bound to at this element.
    pub text_ns: Option<Cow<'static, str>>,
    /// Byte range of the whole element in the (UTF-8) source.
    pub span: (usize, usize),
}

impl Element {
    /// True if this element is `{ns}name`.
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.name == name && self.ns.as_deref() == Some(ns)
    }

    /// The first child `{ns}name`.
    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    /// All children `{ns}name`.
    pub fn children_named<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.is(ns, name))
    }

    /// The first descendant `{ns}name` (depth-first, document order), excluding `self`.
    pub fn descendant(&self, ns: &str, name: &str) -> Option<&Element> {
        let mut stack: Vec<&Element> = self.children.iter().rev().collect();
        while let Some(e) = stack.pop() {
            if e.is(ns, name) {
                return Some(e);
            }
            stack.extend(e.children.iter().rev());
        }
        None
    }

    /// An attribute by local name: the unqualified one if present, else one in any
    /// namespace (some producers qualify `CommandId` or `mustUnderstand`).
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.ns.is_none() && a.name == name)
            .or_else(|| self.attrs.iter().find(|a| a.name == name))
            .map(|a| a.value.as_str())
    }

    /// An attribute `{ns}name`.
    pub fn attr_ns(&self, ns: &str, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.name == name && a.ns.as_deref() == Some(ns))
            .map(|a| a.value.as_str())
    }

    /// The text, trimmed (OMI pretty-prints whitespace into text nodes).
    pub fn trimmed(&self) -> &str {
        self.text.trim()
    }

    /// The text as a resolved QName: `(namespace URI, local name)`.
    pub fn qname(&self) -> (Option<&str>, &str) {
        let t = self.trimmed();
        match t.split_once(':') {
            Some((_, local)) => (self.text_ns.as_deref(), local),
            None => (self.text_ns.as_deref(), t),
        }
    }
}

/// A parsed document: the source (as UTF-8) and its root element.
#[derive(Debug)]
pub(crate) struct Document {
    pub source: String,
    pub root: Element,
}

impl Document {
    /// The source text of an element (empty if the span is somehow out of range).
    pub fn source_of(&self, e: &Element) -> &str {
        self.source.get(e.span.0..e.span.1).unwrap_or("")
    }
}

/// Turns raw bytes into UTF-8 text: strips a UTF-8 BOM, decodes UTF-16 (with BOM), and
/// rejects anything else that is not UTF-8.
fn to_utf8(bytes: &[u8]) -> Result<Cow<'_, str>, SoapError> {
    let utf16 = |le: bool, rest: &[u8]| -> Result<Cow<'_, str>, SoapError> {
        if !rest.len().is_multiple_of(2) {
            return Err(SoapError::Xml(
                "UTF-16 document with an odd number of bytes".into(),
            ));
        }
        let units = rest.chunks_exact(2).map(|c| match c {
            [a, b] if le => u16::from_le_bytes([*a, *b]),
            [a, b] => u16::from_be_bytes([*a, *b]),
            _ => 0,
        });
        char::decode_utf16(units)
            .collect::<Result<String, _>>()
            .map(Cow::Owned)
            .map_err(|_| SoapError::Xml("invalid UTF-16".into()))
    };
    match bytes {
        [0xEF, 0xBB, 0xBF, rest @ ..] => std::str::from_utf8(rest)
            .map(Cow::Borrowed)
            .map_err(|e| SoapError::Xml(format!("invalid UTF-8: {e}"))),
        [0xFF, 0xFE, rest @ ..] => utf16(true, rest),
        [0xFE, 0xFF, rest @ ..] => utf16(false, rest),
        _ => std::str::from_utf8(bytes)
            .map(Cow::Borrowed)
            .map_err(|e| SoapError::Xml(format!("invalid UTF-8: {e}"))),
    }
}

fn ns_of(r: ResolveResult<'_>, what: &str) -> Result<Option<Cow<'static, str>>, SoapError> {
    match r {
        ResolveResult::Bound(ns) => Ok(Some(namespace(ns.into_inner()))),
        ResolveResult::Unbound => Ok(None),
        ResolveResult::Unknown(p) => Err(SoapError::Xml(format!(
            "undeclared namespace prefix '{}' on {what}",
            String::from_utf8_lossy(&p)
        ))),
    }
}

/// The namespaces of WS-Management messages, shared rather than copied into every element.
const KNOWN_NAMESPACES: &[&str] = &[
    ns::SOAP,
    ns::ADDRESSING,
    ns::WSMAN,
    ns::SHELL,
    ns::MS_WSMAN,
    ns::TRANSFER,
    ns::WSMAN_FAULT,
    ns::CONFIG,
    ns::XML,
    ns::XSI,
    ns::EVENTING,
    ns::ENUMERATION,
    ns::WMI_ERROR,
    ns::CIM_BINDING,
    ns::CIM_COMMON,
    ns::POWERSHELL_CLIXML,
];

/// A namespace URI as text (invalid UTF-8 replaced): a known one borrowed, others copied.
fn namespace(b: &[u8]) -> Cow<'static, str> {
    if let Some(known) = KNOWN_NAMESPACES.iter().find(|k| k.as_bytes() == b) {
        return Cow::Borrowed(known);
    }
    Cow::Owned(String::from_utf8_lossy(b).into_owned())
}

fn utf8(b: &[u8]) -> Result<String, SoapError> {
    std::str::from_utf8(b)
        .map(str::to_owned)
        .map_err(|e| SoapError::Xml(format!("invalid UTF-8 in a name: {e}")))
}

/// True for `prefix:local` where both parts look like NCNames (no spaces, no slashes):
/// the shape of a QName value, as opposed to a URI or prose.
fn looks_like_qname(t: &str) -> bool {
    match t.split_once(':') {
        Some((p, l)) => {
            let ok = |s: &str| {
                !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
            };
            ok(p) && ok(l)
        }
        None => false,
    }
}

/// Parses a whole document into a tree.
pub(crate) fn parse(bytes: &[u8]) -> Result<Document, SoapError> {
    let source = to_utf8(bytes)?;
    let root = parse_str(&source)?;
    Ok(Document {
        source: source.into_owned(),
        root,
    })
}

fn parse_str(src: &str) -> Result<Element, SoapError> {
    let mut reader = NsReader::from_str(src);
    {
        let cfg = reader.config_mut();
        cfg.expand_empty_elements = true;
        cfg.check_end_names = true;
        cfg.trim_text(false);
    }
    let pos = |r: &NsReader<&[u8]>| usize::try_from(r.buffer_position()).unwrap_or(usize::MAX);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let start = pos(&reader);
        let (resolved, event) = match reader.read_resolved_event() {
            Ok(r) => r,
            Err(e) => {
                return Err(SoapError::Xml(format!(
                    "{e} (at byte {})",
                    reader.error_position()
                )))
            }
        };
        match event {
            Event::Start(e) => {
                if root.is_some() {
                    return Err(SoapError::Xml("more than one root element".into()));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(SoapError::Xml(format!(
                        "elements nested deeper than {MAX_DEPTH} levels"
                    )));
                }
                let ns = ns_of(resolved, "an element")?;
                let name = utf8(e.local_name().into_inner())?;
                let mut attrs = Vec::new();
                for a in e.attributes() {
                    let a = a.map_err(|err| SoapError::Xml(format!("bad attribute: {err}")))?;
                    if a.key.as_namespace_binding().is_some() {
                        continue;
                    }
                    let (ans, local) = reader.resolve_attribute(a.key);
                    let value = a
                        .unescape_value()
                        .map_err(|err| SoapError::Xml(format!("bad attribute value: {err}")))?;
                    attrs.push(Attr {
                        ns: ns_of(ans, "an attribute")?,
                        name: utf8(local.into_inner())?,
                        value: value.into_owned(),
                    });
                }
                stack.push(Element {
                    ns,
                    name,
                    attrs,
                    span: (start, start),
                    ..Element::default()
                });
            }
            Event::End(_) => {
                let Some(mut el) = stack.pop() else {
                    return Err(SoapError::Xml("unexpected end tag".into()));
                };
                let t = el.text.trim();
                if looks_like_qname(t) {
                    if let Some((prefix, _)) = t.split_once(':') {
                        let probe = format!("{prefix}:x");
                        if let (ResolveResult::Bound(ns), _) =
                            reader.resolve_element(QName(probe.as_bytes()))
                        {
                            el.text_ns = Some(namespace(ns.into_inner()));
                        }
                    }
                }
                el.span.1 = pos(&reader);
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                let text = t
                    .unescape()
                    .map_err(|e| SoapError::Xml(format!("bad text: {e}")))?;
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&text),
                    None if text.trim().is_empty() => {}
                    None => return Err(SoapError::Xml("text outside the root element".into())),
                }
            }
            Event::CData(c) => {
                let text = std::str::from_utf8(&c)
                    .map_err(|e| SoapError::Xml(format!("bad CDATA: {e}")))?;
                match stack.last_mut() {
                    Some(el) => el.text.push_str(text),
                    None => return Err(SoapError::Xml("CDATA outside the root element".into())),
                }
            }
            Event::Empty(_) => {
                // expand_empty_elements turns these into Start + End.
                return Err(SoapError::Xml("unexpected empty-element event".into()));
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(SoapError::Xml(format!(
            "document ends inside <{}>",
            stack.last().map(|e| e.name.as_str()).unwrap_or("")
        )));
    }
    let root = root.ok_or_else(|| SoapError::Xml("no root element".into()))?;
    // quick-xml accepts an end tag cut off before its '>' at the end of input.
    if root.span.1 == 0 || src.as_bytes().get(root.span.1 - 1) != Some(&b'>') {
        return Err(SoapError::Xml(
            "document ends inside the root's end tag".into(),
        ));
    }
    Ok(root)
}

/// Escapes text content. `\r` becomes `&#xD;` so that it survives the parser's line-end
/// normalisation; characters XML 1.0 cannot carry at all become U+FFFD.
pub(crate) fn escape_text(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// Escapes an attribute value (quotes, and whitespace other than space as references so
/// that attribute-value normalisation keeps it).
pub(crate) fn escape_attr(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

fn escape(s: &str, attr: bool) -> Cow<'_, str> {
    let needs = |c: char| {
        matches!(c, '&' | '<' | '>' | '\r')
            || (attr && matches!(c, '"' | '\'' | '\t' | '\n'))
            || !is_xml_char(c)
    };
    // Byte pre-scan (most values are plain ASCII: base64, GUIDs, URIs): only these bytes
    // can start something to escape; 0xEF leads U+FFFE and U+FFFF.
    let suspicious = |b: u8| match b {
        b'&' | b'<' | b'>' | b'\r' => true,
        b'"' | b'\'' | b'\t' | b'\n' => attr,
        0..=0x1F | 0xEF => true,
        _ => false,
    };
    // In blocks without an early exit, which the compiler vectorises.
    let clean = s
        .as_bytes()
        .chunks(64)
        .all(|block| !block.iter().fold(false, |acc, &b| acc | suspicious(b)));
    if clean || !s.chars().any(needs) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            '"' if attr => out.push_str("&quot;"),
            '\'' if attr => out.push_str("&apos;"),
            '\t' if attr => out.push_str("&#x9;"),
            '\n' if attr => out.push_str("&#xA;"),
            c if !is_xml_char(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// What [`escape_text`] does to a string, without the escaping: the value a parser reads
/// back. Useful to predict round trips.
#[cfg(test)]
pub(crate) fn xml_safe(s: &str) -> String {
    s.chars()
        .map(|c| if is_xml_char(c) { c } else { '\u{FFFD}' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_namespaces_and_qname_text() {
        let doc =
            parse(br#"<e:A xmlns:e="urn:a" xmlns:q="urn:q"><e:B x="1" q:y="2">q:Val</e:B></e:A>"#)
                .unwrap();
        assert!(doc.root.is("urn:a", "A"));
        let b = doc.root.child("urn:a", "B").unwrap();
        assert_eq!(b.attr("x"), Some("1"));
        assert_eq!(b.attr_ns("urn:q", "y"), Some("2"));
        assert_eq!(b.qname(), (Some("urn:q"), "Val"));
        assert_eq!(doc.source_of(b), r#"<e:B x="1" q:y="2">q:Val</e:B>"#);
    }

    #[test]
    fn rejects_bad_documents() {
        for bad in [
            &b"<a>"[..],
            b"<a></b>",
            b"<p:a/>",
            b"",
            b"<a/><b/>",
            b"x<a/>",
            b"<a>&foo;</a>",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = "<a>".repeat(MAX_DEPTH + 1) + &"</a>".repeat(MAX_DEPTH + 1);
        assert!(parse(deep.as_bytes()).is_err());
    }

    #[test]
    fn escapes_round_trip() {
        let s = "a&b<c>\"d'\r\n\te\u{1}";
        let xml = format!("<a x=\"{}\">{}</a>", escape_attr(s), escape_text(s));
        let doc = parse(xml.as_bytes()).unwrap();
        assert_eq!(doc.root.attr("x"), Some(xml_safe(s).as_str()));
        assert_eq!(doc.root.text, xml_safe(s));
    }

    #[test]
    fn decodes_utf16() {
        let mut bytes = vec![0xFF, 0xFE];
        for u in "<a>\u{65e5}</a>".encode_utf16() {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        assert_eq!(parse(&bytes).unwrap().root.text, "\u{65e5}");
    }
}
