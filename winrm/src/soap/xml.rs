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

use quick_xml::events::attributes::{Attribute, Attributes};
use quick_xml::events::BytesStart;
use quick_xml::events::Event;
use quick_xml::name::{NamespaceError, PrefixDeclaration};
use quick_xml::Reader;

use super::{ns, SoapError};

/// Deepest element nesting accepted. Real envelopes are about 10 levels deep.
pub(crate) const MAX_DEPTH: usize = 64;

/// The namespace the `xmlns` prefix is bound to by definition (Namespaces in XML 1.0 §3).
const XMLNS_NAMESPACE: &str = "http://www.w3.org/2000/xmlns/";

/// An attribute, namespace-resolved. Text borrows the source where it can.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Attr<'a> {
    /// Namespace URI; `None` for unprefixed attributes (which are in no namespace).
    pub ns: Option<Cow<'a, str>>,
    /// Local name.
    pub name: Cow<'a, str>,
    /// Unescaped value.
    pub value: Cow<'a, str>,
}

/// An element, namespace-resolved, with its direct text and children. Names, values and
/// text borrow the source document unless they had to be built (entities, text in
/// several pieces, UTF-16 input).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Element<'a> {
    /// Namespace URI (`None` when unqualified and no default namespace is in scope).
    pub ns: Option<Cow<'a, str>>,
    /// Local name.
    pub name: Cow<'a, str>,
    /// Attributes except namespace declarations.
    pub attrs: Vec<Attr<'a>>,
    /// Child elements in document order.
    pub children: Vec<Element<'a>>,
    /// Concatenated direct text and CDATA content, unescaped, untrimmed.
    pub text: Cow<'a, str>,
    /// When `text` (trimmed) looks like a QName `prefix:local`, the namespace the prefix was
    /// bound to at this element.
    pub text_ns: Option<Cow<'a, str>>,
    /// Byte range of the whole element in the (UTF-8) source.
    pub span: (usize, usize),
}

impl<'a> Element<'a> {
    /// True if this element is `{ns}name`.
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.name == name && self.ns.as_deref() == Some(ns)
    }

    /// The first child `{ns}name`.
    pub fn child(&self, ns: &str, name: &str) -> Option<&Element<'a>> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    /// All children `{ns}name`.
    pub fn children_named<'e>(
        &'e self,
        ns: &'e str,
        name: &'e str,
    ) -> impl Iterator<Item = &'e Element<'a>> + 'e {
        self.children.iter().filter(move |c| c.is(ns, name))
    }

    /// The first descendant `{ns}name` (depth-first, document order), excluding `self`.
    pub fn descendant(&self, ns: &str, name: &str) -> Option<&Element<'a>> {
        let mut stack: Vec<&Element<'a>> = self.children.iter().rev().collect();
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
            .map(|a| &*a.value)
    }

    /// An attribute `{ns}name`.
    pub fn attr_ns(&self, ns: &str, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.name == name && a.ns.as_deref() == Some(ns))
            .map(|a| &*a.value)
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

    /// The same element owning all its text (for a source that does not outlive it).
    fn into_owned(self) -> Element<'static> {
        let own = |c: Cow<'_, str>| Cow::Owned(c.into_owned());
        Element {
            ns: self.ns.map(own),
            name: own(self.name),
            attrs: self
                .attrs
                .into_iter()
                .map(|a| Attr {
                    ns: a.ns.map(own),
                    name: own(a.name),
                    value: own(a.value),
                })
                .collect(),
            children: self.children.into_iter().map(Element::into_owned).collect(),
            text: own(self.text),
            text_ns: self.text_ns.map(own),
            span: self.span,
        }
    }
}

/// A parsed document: the source (as UTF-8) and its root element.
#[derive(Debug)]
pub(crate) struct Document<'a> {
    pub source: Cow<'a, str>,
    pub root: Element<'a>,
}

impl Document<'_> {
    /// The source text of an element (empty if the span is somehow out of range).
    pub fn source_of(&self, e: &Element<'_>) -> &str {
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

/// `part` as the same bytes of `src`, borrowed for `src`'s lifetime. The reader works on
/// `src` itself, so every name, attribute and text it hands out is a slice of it; `None`
/// only if that were ever not so.
fn in_source<'a>(src: &'a str, part: &[u8]) -> Option<&'a str> {
    in_source_at(src, part, 0)
}

/// Like [`in_source`], extended by `more` bytes past the end of `part`.
fn in_source_at<'a>(src: &'a str, part: &[u8], more: usize) -> Option<&'a str> {
    let offset = part.as_ptr().addr().checked_sub(src.as_ptr().addr())?;
    let end = offset.checked_add(part.len())?.checked_add(more)?;
    let s = src.get(offset..end)?;
    (s.as_ptr() == part.as_ptr()).then_some(s)
}

fn not_in_source() -> SoapError {
    SoapError::Xml("internal error: XML token outside the document".into())
}

/// How a prefix resolves (Namespaces in XML 1.0 §5-6).
enum Resolved<'a> {
    Bound(&'a str),
    Unbound,
    Unknown,
}

/// The namespace bindings in scope, innermost last: `(prefix, URI)` with the prefix `""`
/// for the default namespace and the URI `""` for an undeclaration (`xmlns=""`). URIs are
/// the raw attribute values, as quick-xml's resolver keeps them.
#[derive(Default)]
struct Scopes<'a> {
    bindings: Vec<(&'a str, &'a str)>,
    /// `bindings.len()` when each open element started.
    marks: Vec<usize>,
}

impl<'a> Scopes<'a> {
    /// Adds a declaration of the element being opened (quick-xml's
    /// `NamespaceResolver::push` rules: the `xml` prefix only to its own namespace and
    /// then not recorded, the `xmlns` prefix never, neither namespace to another prefix;
    /// `xmlns:=".."` declares the default namespace like quick-xml does).
    fn declare(
        &mut self,
        decl: PrefixDeclaration<'_>,
        prefix: &'a str,
        uri: &'a str,
    ) -> Result<(), NamespaceError> {
        match decl {
            PrefixDeclaration::Default => self.bindings.push(("", uri)),
            PrefixDeclaration::Named(b"xml") => {
                if uri != ns::XML {
                    return Err(NamespaceError::InvalidXmlPrefixBind(
                        uri.as_bytes().to_vec(),
                    ));
                }
            }
            PrefixDeclaration::Named(b"xmlns") => {
                return Err(NamespaceError::InvalidXmlnsPrefixBind(
                    uri.as_bytes().to_vec(),
                ));
            }
            PrefixDeclaration::Named(_) => {
                if uri == ns::XML {
                    return Err(NamespaceError::InvalidPrefixForXml(
                        prefix.as_bytes().to_vec(),
                    ));
                }
                if uri == XMLNS_NAMESPACE {
                    return Err(NamespaceError::InvalidPrefixForXmlns(
                        prefix.as_bytes().to_vec(),
                    ));
                }
                self.bindings.push((prefix, uri));
            }
        }
        Ok(())
    }

    /// Resolves a prefix (`None`: unprefixed) as quick-xml's `NamespaceResolver` does;
    /// `use_default` for element names (unprefixed attributes are in no namespace).
    fn resolve(&self, prefix: Option<&str>, use_default: bool) -> Resolved<'a> {
        for &(p, uri) in self.bindings.iter().rev() {
            match prefix {
                None if p.is_empty() => {
                    return match uri {
                        "" => Resolved::Unbound,
                        _ if !use_default => Resolved::Unbound,
                        _ => Resolved::Bound(uri),
                    }
                }
                Some(want) if !p.is_empty() && p == want => {
                    return if uri.is_empty() {
                        Resolved::Unknown
                    } else {
                        Resolved::Bound(uri)
                    };
                }
                _ => {}
            }
        }
        match prefix {
            Some("xml") => Resolved::Bound(ns::XML),
            Some("xmlns") => Resolved::Bound(XMLNS_NAMESPACE),
            Some(_) => Resolved::Unknown,
            None => Resolved::Unbound,
        }
    }

    /// `name` (`prefix:local`) as (namespace, local name), or the error for an
    /// undeclared prefix on `what`.
    fn resolve_name(
        &self,
        name: &'a str,
        use_default: bool,
        what: &str,
    ) -> Result<(Option<Cow<'a, str>>, &'a str), SoapError> {
        let (prefix, local) = match name.split_once(':') {
            Some((p, l)) => (Some(p), l),
            None => (None, name),
        };
        match self.resolve(prefix, use_default) {
            Resolved::Bound(uri) => Ok((Some(Cow::Borrowed(uri)), local)),
            Resolved::Unbound => Ok((None, local)),
            Resolved::Unknown => Err(SoapError::Xml(format!(
                "undeclared namespace prefix '{}' on {what}",
                prefix.unwrap_or_default()
            ))),
        }
    }
}

/// Parses a whole document into a tree.
pub(crate) fn parse(bytes: &[u8]) -> Result<Document<'_>, SoapError> {
    match to_utf8(bytes)? {
        Cow::Borrowed(source) => Ok(Document {
            root: parse_str(source)?,
            source: Cow::Borrowed(source),
        }),
        Cow::Owned(source) => {
            let root = parse_str(&source)?.into_owned();
            Ok(Document {
                source: Cow::Owned(source),
                root,
            })
        }
    }
}

/// One start tag: its namespace declarations into `scopes`, then the element with its
/// name and attributes resolved (in the order of errors NsReader had: declarations, the
/// element's prefix, then each attribute's value and prefix).
fn start_element<'a>(
    src: &'a str,
    tag: &BytesStart<'_>,
    scopes: &mut Scopes<'a>,
    raw: &mut Vec<Attribute<'a>>,
    start: usize,
    error_position: u64,
) -> Result<Element<'a>, SoapError> {
    let qname = tag.name().into_inner();
    let name_len = qname.len();
    // The whole tag text (name and attributes) as a slice of the source, so that names
    // and values borrow the source.
    let tag_text =
        in_source_at(src, qname, tag.attributes_raw().len()).ok_or_else(not_in_source)?;
    let name = tag_text.get(..name_len).ok_or_else(not_in_source)?;
    let mut attrs = Vec::new();
    let mut bad_attr = None;
    raw.clear();
    for a in Attributes::new(tag_text, name_len) {
        let a = match a {
            Ok(a) => a,
            Err(err) => {
                bad_attr = Some(SoapError::Xml(format!("bad attribute: {err}")));
                break;
            }
        };
        if let Some(decl) = a.key.as_namespace_binding() {
            let key = in_source(src, a.key.into_inner()).ok_or_else(not_in_source)?;
            let prefix = key.get(6..).unwrap_or_default();
            let uri = match &a.value {
                Cow::Borrowed(v) => in_source(src, v).ok_or_else(not_in_source)?,
                Cow::Owned(_) => return Err(not_in_source()),
            };
            scopes.declare(decl, prefix, uri).map_err(|e| {
                SoapError::Xml(format!(
                    "{} (at byte {error_position})",
                    quick_xml::Error::Namespace(e)
                ))
            })?;
        } else {
            raw.push(a);
        }
    }
    let (ns, local) = scopes.resolve_name(name, true, "an element")?;
    if let Some(err) = bad_attr {
        return Err(err);
    }
    if !raw.is_empty() {
        attrs.reserve_exact(raw.len());
        for a in raw.drain(..) {
            let key = in_source(src, a.key.into_inner()).ok_or_else(not_in_source)?;
            let value = a
                .unescape_value()
                .map_err(|err| SoapError::Xml(format!("bad attribute value: {err}")))?;
            let (ans, aname) = scopes.resolve_name(key, false, "an attribute")?;
            attrs.push(Attr {
                ns: ans,
                name: Cow::Borrowed(aname),
                value,
            });
        }
    }
    Ok(Element {
        ns,
        name: Cow::Borrowed(local),
        attrs,
        span: (start, start),
        ..Element::default()
    })
}

fn parse_str(src: &str) -> Result<Element<'_>, SoapError> {
    let mut reader = Reader::from_str(src);
    {
        let cfg = reader.config_mut();
        cfg.expand_empty_elements = true;
        cfg.check_end_names = true;
        cfg.trim_text(false);
    }
    let pos = |r: &Reader<&[u8]>| usize::try_from(r.buffer_position()).unwrap_or(usize::MAX);
    let mut scopes = Scopes::default();
    // Attributes of the tag being read, reused from tag to tag.
    let mut raw = Vec::new();
    let mut stack: Vec<Element<'_>> = Vec::new();
    let mut root: Option<Element<'_>> = None;
    loop {
        let start = pos(&reader);
        let event = match reader.read_event() {
            Ok(e) => e,
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
                scopes.marks.push(scopes.bindings.len());
                let el = start_element(
                    src,
                    &e,
                    &mut scopes,
                    &mut raw,
                    start,
                    reader.error_position(),
                )?;
                stack.push(el);
            }
            Event::End(_) => {
                let Some(mut el) = stack.pop() else {
                    return Err(SoapError::Xml("unexpected end tag".into()));
                };
                let t = el.text.trim();
                if looks_like_qname(t) {
                    if let Some((prefix, _)) = t.split_once(':') {
                        // The element's own declarations are still in scope here.
                        if let Resolved::Bound(uri) = scopes.resolve(Some(prefix), true) {
                            el.text_ns = Some(Cow::Borrowed(uri));
                        }
                    }
                }
                if let Some(mark) = scopes.marks.pop() {
                    scopes.bindings.truncate(mark);
                }
                el.span.1 = pos(&reader);
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                // The text is a slice of the (already UTF-8) source: unescape it there
                // rather than have quick-xml validate it as UTF-8 again.
                let text = match t.into_inner() {
                    Cow::Borrowed(b) => {
                        quick_xml::escape::unescape(in_source(src, b).ok_or_else(not_in_source)?)
                    }
                    Cow::Owned(_) => return Err(not_in_source()),
                }
                .map_err(|e| SoapError::Xml(format!("bad text: {e}")))?;
                match stack.last_mut() {
                    Some(el) if el.text.is_empty() => el.text = text,
                    Some(el) => el.text.to_mut().push_str(&text),
                    None if text.trim().is_empty() => {}
                    None => return Err(SoapError::Xml("text outside the root element".into())),
                }
            }
            Event::CData(c) => {
                let text = match c.into_inner() {
                    Cow::Borrowed(b) => Cow::Borrowed(
                        std::str::from_utf8(b)
                            .map_err(|e| SoapError::Xml(format!("bad CDATA: {e}")))?,
                    ),
                    Cow::Owned(b) => Cow::Owned(
                        String::from_utf8(b)
                            .map_err(|e| SoapError::Xml(format!("bad CDATA: {e}")))?,
                    ),
                };
                match stack.last_mut() {
                    Some(el) if el.text.is_empty() => el.text = text,
                    Some(el) => el.text.to_mut().push_str(&text),
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
            stack.last().map(|e| &*e.name).unwrap_or("")
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
    use proptest::prelude::*;
    use quick_xml::name::{QName, ResolveResult};
    use quick_xml::NsReader;

    /// The parser as it was built on quick-xml's `NsReader` (namespace resolution by
    /// quick-xml, everything copied): the single-pass parser must agree with it.
    fn reference(src: &str) -> Result<Element<'static>, SoapError> {
        fn ns_of(r: ResolveResult<'_>) -> Result<Option<Cow<'static, str>>, SoapError> {
            match r {
                ResolveResult::Bound(ns) => Ok(Some(Cow::Owned(
                    String::from_utf8_lossy(ns.into_inner()).into_owned(),
                ))),
                ResolveResult::Unbound => Ok(None),
                ResolveResult::Unknown(_) => Err(SoapError::Xml("undeclared prefix".into())),
            }
        }
        let owned = |b: &[u8]| Cow::Owned(String::from_utf8_lossy(b).into_owned());
        let mut reader = NsReader::from_str(src);
        {
            let cfg = reader.config_mut();
            cfg.expand_empty_elements = true;
            cfg.check_end_names = true;
            cfg.trim_text(false);
        }
        let pos = |r: &NsReader<&[u8]>| usize::try_from(r.buffer_position()).unwrap_or(0);
        let mut stack: Vec<Element<'static>> = Vec::new();
        let mut root = None;
        loop {
            let start = pos(&reader);
            let (resolved, event) = reader
                .read_resolved_event()
                .map_err(|e| SoapError::Xml(e.to_string()))?;
            match event {
                Event::Start(e) => {
                    if root.is_some() || stack.len() >= MAX_DEPTH {
                        return Err(SoapError::Xml("root or depth".into()));
                    }
                    let ns = ns_of(resolved)?;
                    let name = owned(e.local_name().into_inner());
                    let mut attrs = Vec::new();
                    for a in e.attributes() {
                        let a = a.map_err(|err| SoapError::Xml(err.to_string()))?;
                        if a.key.as_namespace_binding().is_some() {
                            continue;
                        }
                        let (ans, local) = reader.resolve_attribute(a.key);
                        let value = a
                            .unescape_value()
                            .map_err(|err| SoapError::Xml(err.to_string()))?;
                        attrs.push(Attr {
                            ns: ns_of(ans)?,
                            name: owned(local.into_inner()),
                            value: Cow::Owned(value.into_owned()),
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
                    let mut el = stack.pop().ok_or(SoapError::Xml("end".into()))?;
                    let t = el.text.trim().to_owned();
                    if looks_like_qname(&t) {
                        if let Some((prefix, _)) = t.split_once(':') {
                            let probe = format!("{prefix}:x");
                            if let (ResolveResult::Bound(ns), _) =
                                reader.resolve_element(QName(probe.as_bytes()))
                            {
                                el.text_ns = Some(owned(ns.into_inner()));
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
                    let text = t.unescape().map_err(|e| SoapError::Xml(e.to_string()))?;
                    match stack.last_mut() {
                        Some(el) => el.text.to_mut().push_str(&text),
                        None if text.trim().is_empty() => {}
                        None => return Err(SoapError::Xml("text outside".into())),
                    }
                }
                Event::CData(c) => {
                    let text = std::str::from_utf8(&c)
                        .map_err(|e| SoapError::Xml(e.to_string()))?
                        .to_owned();
                    match stack.last_mut() {
                        Some(el) => el.text.to_mut().push_str(&text),
                        None => return Err(SoapError::Xml("CDATA outside".into())),
                    }
                }
                Event::Empty(_) => return Err(SoapError::Xml("empty".into())),
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
                Event::Eof => break,
            }
        }
        if !stack.is_empty() {
            return Err(SoapError::Xml("unclosed".into()));
        }
        let root = root.ok_or(SoapError::Xml("no root".into()))?;
        if root.span.1 == 0 || src.as_bytes().get(root.span.1 - 1) != Some(&b'>') {
            return Err(SoapError::Xml("cut end tag".into()));
        }
        Ok(root)
    }

    fn element_names() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "a",
            "p:a",
            "q:b",
            "d:c",
            ":x",
            "a:b:c",
            "xmlns:c",
            "xml:e",
            "xmlns",
            "s:Envelope",
        ])
    }

    fn attributes() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop::sample::select(vec![
                r#"x="1""#,
                r#"p:y="2""#,
                r#"q:y="3""#,
                r#"xmlns:p="urn:p""#,
                r#"xmlns:q="urn:q""#,
                r#"xmlns:d="urn:a&amp;b""#,
                r#"xmlns="urn:default""#,
                r#"xmlns="""#,
                r#"xmlns:p="""#,
                r#"xmlns:="urn:empty""#,
                r#"xmlns:xml="http://www.w3.org/XML/1998/namespace""#,
                r#"xmlns:xml="urn:not-xml""#,
                r#"xmlns:xmlns="urn:x""#,
                r#"xmlns:r="http://www.w3.org/2000/xmlns/""#,
                r#"xmlns:r="http://www.w3.org/XML/1998/namespace""#,
                r#"xml:lang="en""#,
                r#"xmlns:s="http://www.w3.org/2003/05/soap-envelope""#,
                r#"z="a&amp;b&#x41;""#,
                r#"z="&bad;""#,
                r#"x="dup""#,
                r#"w='single'"#,
                r#"broken"#,
            ]),
            0..4,
        )
        .prop_map(|v| v.iter().map(|a| format!(" {a}")).collect())
    }

    fn texts() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "",
            "",
            "t",
            " ",
            "\n  ",
            "p:Val",
            " q:V ",
            "d:x",
            "z:none",
            "&lt;&amp;",
            "&#x41;",
            "&foo;",
            "<![CDATA[c<d]]>",
            "<!-- c -->",
            "<?pi x?>",
            "a < b",
        ])
    }

    fn element() -> impl Strategy<Value = String> {
        let leaf =
            (element_names(), attributes(), texts(), any::<bool>()).prop_map(|(n, a, t, empty)| {
                if empty {
                    format!("<{n}{a}/>")
                } else {
                    format!("<{n}{a}>{t}</{n}>")
                }
            });
        leaf.prop_recursive(4, 32, 4, |inner| {
            (
                element_names(),
                attributes(),
                texts(),
                prop::collection::vec(inner, 0..4),
                texts(),
            )
                .prop_map(|(n, a, t1, kids, t2)| format!("<{n}{a}>{t1}{}{t2}</{n}>", kids.concat()))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Same tree (or both refused) as the NsReader-based reference, on documents full
        /// of namespace corner cases, entities, mixed content and truncations.
        #[test]
        fn agrees_with_the_nsreader_reference(
            prolog in prop::sample::select(vec!["", "<?xml version=\"1.0\"?>", " \n", "x"]),
            body in element(),
            tail in prop::sample::select(vec!["", " ", "<a/>", "t"]),
            cut in prop::option::of(0usize..400),
        ) {
            let mut doc = format!("{prolog}{body}{tail}");
            if let Some(c) = cut {
                doc.truncate(c.min(doc.len()));
            }
            let ours = parse_str(&doc).map(Element::into_owned);
            let theirs = reference(&doc);
            match (&ours, &theirs) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b, "{}", doc),
                (Err(_), Err(_)) => {}
                _ => prop_assert!(false, "{doc}: ours {ours:?}, reference {theirs:?}"),
            }
        }
    }

    /// Valid documents for each Namespaces in XML 1.0 rule the random documents above
    /// mostly reach only as errors: each must parse, and to the reference's tree.
    #[test]
    fn namespace_corner_cases_agree_with_the_reference() {
        for doc in [
            // Undeclaring the default namespace (§6.2), and declaring it again below.
            r#"<a xmlns="urn:d"><b xmlns=""><c xmlns="urn:e"/></b><d/></a>"#,
            // A prefix redeclared in a child, back in scope after it (§6.1).
            r#"<p:a xmlns:p="urn:1"><p:b xmlns:p="urn:2">p:v</p:b><p:c>p:v</p:c></p:a>"#,
            // Unprefixed attributes are in no namespace, prefixed ones in theirs (§6.3).
            r#"<a xmlns="urn:d" xmlns:q="urn:q" x="1" q:x="2"/>"#,
            // The xml prefix is bound without a declaration, and may be declared to its own
            // namespace; xmlns-prefixed attributes are declarations, not attributes.
            r#"<a xml:lang="en" xmlns:xml="http://www.w3.org/XML/1998/namespace"/>"#,
            // A declaration after the attribute that uses it, on the same element.
            r#"<p:a p:x="1" xmlns:p="urn:p"/>"#,
            // xmlns:="" treated as quick-xml does (a default-namespace declaration).
            r#"<a xmlns:="urn:e"><b/></a>"#,
            // Text split by a comment, a PI and CDATA; entities and references.
            "<a>x<!-- c -->y<?pi?>z<![CDATA[<&>]]>&lt;&#x41;&amp;</a>",
            // Mixed content around children, QName text resolved at the element itself.
            r#"<a xmlns:s="urn:s"> s:One <b xmlns:t="urn:t">t:Two</b> tail </a>"#,
        ] {
            let ours = parse_str(doc).map(Element::into_owned);
            let theirs = reference(doc);
            assert!(ours.is_ok(), "{doc}: {ours:?}");
            assert_eq!(ours.ok(), theirs.ok(), "{doc}");
        }
        for bad in [
            r#"<a xmlns:p="urn:p"><p:b xmlns:p=""/></a>"#,
            r#"<a xmlns:p=""><p:b/></a>"#,
            r#"<q:a/>"#,
            r#"<a q:x="1"/>"#,
            r#"<a xmlns:xml="urn:x"/>"#,
            r#"<a xmlns:xmlns="urn:x"/>"#,
            r#"<a xmlns:r="http://www.w3.org/2000/xmlns/"/>"#,
            r#"<a xmlns:r="http://www.w3.org/XML/1998/namespace"/>"#,
        ] {
            assert!(parse_str(bad).is_err(), "{bad}");
            assert!(reference(bad).is_err(), "{bad}");
        }
    }

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
