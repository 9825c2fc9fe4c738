//! WinRS requests both ways: the client builds them ([`build_request`]) and the lab parses
//! them ([`parse_request`]) — from us, pywinrm (`env:`/`a:`/`w:`/`p:` prefixes, unqualified
//! `mustUnderstand`) and pypsrp (`wsa:`/`wsman:`/`wsmv:`, `s:mustUnderstand`, `SessionId`).
//!
//! Every request carries the WS-Addressing and WS-Management headers (MS-WSMV 3.1.4.1: `To`,
//! `ReplyTo`, `Action`, `MessageID`, `ResourceURI`, `MaxEnvelopeSize`, `OperationTimeout`
//! (3.1.4.1.6), `Locale`, `DataLocale`), a `ShellId` selector for everything after Create,
//! and the WinRS options: `WINRS_NOPROFILE` and `WINRS_CODEPAGE` on Create (as in MS-WSMV
//! 4.7.1's example), `WINRS_CONSOLEMODE_STDIN` and `WINRS_SKIP_CMD_SHELL` on Command
//! (3.1.4.11), `WSMAN_CMDSHELL_OPTION_KEEPALIVE` on Receive (3.1.4.14). Bodies are the
//! MS-WSMV `rsp:Shell`, `rsp:CommandLine`, `rsp:Send` (3.1.4.13), `rsp:Receive` and
//! `rsp:Signal` (3.1.4.12) elements.

use std::time::Duration;

use base64::Engine as _;

use super::duration::{format_duration, parse_duration};
use super::xml::{self, escape_attr, escape_text, Element};
use super::{action, ns, SoapError, ANONYMOUS, RESOURCE_CMD, RESOURCE_CONFIG};

/// Header values shared by every request of a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestContext {
    /// `a:To`: the endpoint URL (`http://host:5985/wsman`).
    pub to: String,
    /// `w:MaxEnvelopeSize` in bytes: the largest response we accept.
    pub max_envelope_size: u32,
    /// `w:OperationTimeout`: how long the server may hold a request (Receive long-poll).
    pub operation_timeout: Duration,
    /// `w:Locale` / `p:DataLocale` (`xml:lang`).
    pub locale: String,
}

impl RequestContext {
    /// pywinrm's and pypsrp's defaults: 153600-byte envelopes (Windows Server 2008 R2's
    /// 150 KiB limit), `PT20S`, `en-US`.
    pub fn new(to: impl Into<String>) -> Self {
        RequestContext {
            to: to.into(),
            max_envelope_size: super::DEFAULT_MAX_ENVELOPE_SIZE,
            operation_timeout: Duration::from_secs(20),
            locale: "en-US".to_string(),
        }
    }
}

/// Options of a new cmd shell.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShellOptions {
    /// `WINRS_CODEPAGE` (437 is pywinrm's default; 65001 makes output UTF-8).
    pub codepage: Option<u32>,
    /// `WINRS_NOPROFILE`: do not load the user profile.
    pub no_profile: bool,
    /// `rsp:Environment/rsp:Variable`.
    pub environment: Vec<(String, String)>,
    /// `rsp:WorkingDirectory`.
    pub working_directory: Option<String>,
    /// `rsp:IdleTimeOut`.
    pub idle_timeout: Option<Duration>,
}

/// A WinRS operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Create a cmd shell (`transfer/Create`).
    Create(ShellOptions),
    /// Start a process in the shell.
    Command {
        /// Target shell.
        shell_id: String,
        /// `rsp:Command`.
        command: String,
        /// `rsp:Arguments`, one element each.
        arguments: Vec<String>,
        /// `WINRS_SKIP_CMD_SHELL` (absent means false).
        skip_cmd_shell: bool,
        /// `WINRS_CONSOLEMODE_STDIN` (MS-WSMV 3.1.4.11): TRUE gives the process a console
        /// for stdin, FALSE a pipe fed by Send. The server reads an absent option as TRUE:
        /// MS-WSMV names no default, and a console is the pessimistic side (PowerShell's
        /// `$input` then stays empty; DOMAIN.md "WinRM details"). pywinrm always sends it
        /// (TRUE unless told otherwise), pypsrp never does.
        console_mode_stdin: bool,
    },
    /// Write to a command's input stream.
    Send {
        /// Target shell.
        shell_id: String,
        /// Target command.
        command_id: String,
        /// Stream name (`stdin`).
        stream: String,
        /// Raw bytes (base64 on the wire).
        data: Vec<u8>,
        /// `End="true"`: the last chunk.
        end: bool,
    },
    /// Long-poll for output.
    Receive {
        /// Target shell.
        shell_id: String,
        /// `DesiredStream/@CommandId`; `None` is the shell-level Receive that a cmd shell
        /// answers with InvalidParameter (code 87).
        command_id: Option<String>,
        /// Stream names (`stdout`, `stderr`).
        streams: Vec<String>,
    },
    /// Signal a command (terminate, ctrl_c).
    Signal {
        /// Target shell.
        shell_id: String,
        /// Target command.
        command_id: String,
        /// Signal URI ([`super::signal`]).
        code: String,
    },
    /// Close a shell (`transfer/Delete`).
    Delete {
        /// Target shell.
        shell_id: String,
    },
    /// `transfer/Get` of `wsman/1/config` (pypsrp reads `MaxEnvelopeSizekb` this way).
    GetConfig,
}

impl Request {
    /// The `wsa:Action` URI of this request.
    pub fn action(&self) -> &'static str {
        match self {
            Request::Create(_) => action::CREATE,
            Request::Command { .. } => action::COMMAND,
            Request::Send { .. } => action::SEND,
            Request::Receive { .. } => action::RECEIVE,
            Request::Signal { .. } => action::SIGNAL,
            Request::Delete { .. } => action::DELETE,
            Request::GetConfig => action::GET,
        }
    }

    /// The `w:ResourceURI` of this request.
    pub fn resource_uri(&self) -> &'static str {
        match self {
            Request::GetConfig => RESOURCE_CONFIG,
            _ => RESOURCE_CMD,
        }
    }

    fn shell_id(&self) -> Option<&str> {
        match self {
            Request::Create(_) | Request::GetConfig => None,
            Request::Command { shell_id, .. }
            | Request::Send { shell_id, .. }
            | Request::Receive { shell_id, .. }
            | Request::Signal { shell_id, .. }
            | Request::Delete { shell_id } => Some(shell_id),
        }
    }
}

fn bool_text(b: bool) -> &'static str {
    if b {
        "TRUE"
    } else {
        "FALSE"
    }
}

/// Builds the envelope for `req` (client side). Prefixes are Windows' own; the header
/// options are the ones pywinrm sends. Every value is XML-escaped; characters XML 1.0
/// cannot carry become U+FFFD.
pub fn build_request(ctx: &RequestContext, message_id: &str, req: &Request) -> String {
    let mut x = String::with_capacity(2048);
    x.push_str(r#"<s:Envelope xmlns:s=""#);
    x.push_str(ns::SOAP);
    x.push_str(r#"" xmlns:a=""#);
    x.push_str(ns::ADDRESSING);
    x.push_str(r#"" xmlns:w=""#);
    x.push_str(ns::WSMAN);
    x.push_str(r#"" xmlns:p=""#);
    x.push_str(ns::MS_WSMAN);
    x.push_str(r#"" xmlns:rsp=""#);
    x.push_str(ns::SHELL);
    x.push_str(r#""><s:Header><a:To>"#);
    x.push_str(&escape_text(&ctx.to));
    x.push_str(r#"</a:To><a:ReplyTo><a:Address s:mustUnderstand="true">"#);
    x.push_str(ANONYMOUS);
    x.push_str(r#"</a:Address></a:ReplyTo><a:Action s:mustUnderstand="true">"#);
    x.push_str(req.action());
    x.push_str("</a:Action><a:MessageID>");
    x.push_str(&escape_text(message_id));
    x.push_str(r#"</a:MessageID><w:ResourceURI s:mustUnderstand="true">"#);
    x.push_str(req.resource_uri());
    x.push_str(r#"</w:ResourceURI><w:MaxEnvelopeSize s:mustUnderstand="true">"#);
    x.push_str(&ctx.max_envelope_size.to_string());
    x.push_str("</w:MaxEnvelopeSize><w:OperationTimeout>");
    x.push_str(&format_duration(ctx.operation_timeout));
    x.push_str(r#"</w:OperationTimeout><w:Locale xml:lang=""#);
    x.push_str(&escape_attr(&ctx.locale));
    x.push_str(r#"" s:mustUnderstand="false"/><p:DataLocale xml:lang=""#);
    x.push_str(&escape_attr(&ctx.locale));
    x.push_str(r#"" s:mustUnderstand="false"/>"#);
    if let Some(id) = req.shell_id() {
        x.push_str(r#"<w:SelectorSet><w:Selector Name="ShellId">"#);
        x.push_str(&escape_text(id));
        x.push_str("</w:Selector></w:SelectorSet>");
    }
    let mut options: Vec<(&str, String)> = Vec::new();
    match req {
        Request::Create(o) => {
            options.push(("WINRS_NOPROFILE", bool_text(o.no_profile).to_string()));
            if let Some(cp) = o.codepage {
                options.push(("WINRS_CODEPAGE", cp.to_string()));
            }
        }
        Request::Command {
            skip_cmd_shell,
            console_mode_stdin,
            ..
        } => {
            options.push((
                "WINRS_CONSOLEMODE_STDIN",
                bool_text(*console_mode_stdin).to_string(),
            ));
            options.push((
                "WINRS_SKIP_CMD_SHELL",
                bool_text(*skip_cmd_shell).to_string(),
            ));
        }
        Request::Receive { .. } => {
            options.push(("WSMAN_CMDSHELL_OPTION_KEEPALIVE", "TRUE".to_string()))
        }
        _ => {}
    }
    if !options.is_empty() {
        x.push_str("<w:OptionSet>");
        for (name, value) in &options {
            x.push_str(r#"<w:Option Name=""#);
            x.push_str(name);
            x.push_str(r#"">"#);
            x.push_str(value);
            x.push_str("</w:Option>");
        }
        x.push_str("</w:OptionSet>");
    }
    x.push_str("</s:Header>");
    push_body(&mut x, req);
    x.push_str("</s:Envelope>");
    x
}

fn push_body(x: &mut String, req: &Request) {
    match req {
        Request::Create(o) => {
            x.push_str("<s:Body><rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams>");
            if !o.environment.is_empty() {
                x.push_str("<rsp:Environment>");
                for (k, v) in &o.environment {
                    x.push_str(r#"<rsp:Variable Name=""#);
                    x.push_str(&escape_attr(k));
                    x.push_str(r#"">"#);
                    x.push_str(&escape_text(v));
                    x.push_str("</rsp:Variable>");
                }
                x.push_str("</rsp:Environment>");
            }
            if let Some(t) = o.idle_timeout {
                x.push_str("<rsp:IdleTimeOut>");
                x.push_str(&format_duration(t));
                x.push_str("</rsp:IdleTimeOut>");
            }
            if let Some(d) = &o.working_directory {
                x.push_str("<rsp:WorkingDirectory>");
                x.push_str(&escape_text(d));
                x.push_str("</rsp:WorkingDirectory>");
            }
            x.push_str("</rsp:Shell></s:Body>");
        }
        Request::Command {
            command, arguments, ..
        } => {
            x.push_str("<s:Body><rsp:CommandLine><rsp:Command>");
            x.push_str(&escape_text(command));
            x.push_str("</rsp:Command>");
            for a in arguments {
                x.push_str("<rsp:Arguments>");
                x.push_str(&escape_text(a));
                x.push_str("</rsp:Arguments>");
            }
            x.push_str("</rsp:CommandLine></s:Body>");
        }
        Request::Send {
            command_id,
            stream,
            data,
            end,
            ..
        } => {
            x.push_str(r#"<s:Body><rsp:Send><rsp:Stream Name=""#);
            x.push_str(&escape_attr(stream));
            x.push_str(r#"" CommandId=""#);
            x.push_str(&escape_attr(command_id));
            x.push_str(r#"" End=""#);
            x.push_str(if *end { "true" } else { "false" });
            x.push_str(r#"">"#);
            x.push_str(&base64::engine::general_purpose::STANDARD.encode(data));
            x.push_str("</rsp:Stream></rsp:Send></s:Body>");
        }
        Request::Receive {
            command_id,
            streams,
            ..
        } => {
            x.push_str("<s:Body><rsp:Receive><rsp:DesiredStream");
            if let Some(id) = command_id {
                x.push_str(r#" CommandId=""#);
                x.push_str(&escape_attr(id));
                x.push('"');
            }
            x.push('>');
            x.push_str(&escape_text(&streams.join(" ")));
            x.push_str("</rsp:DesiredStream></rsp:Receive></s:Body>");
        }
        Request::Signal {
            command_id, code, ..
        } => {
            x.push_str(r#"<s:Body><rsp:Signal CommandId=""#);
            x.push_str(&escape_attr(command_id));
            x.push_str(r#""><rsp:Code>"#);
            x.push_str(&escape_text(code));
            x.push_str("</rsp:Code></rsp:Signal></s:Body>");
        }
        Request::Delete { .. } | Request::GetConfig => x.push_str("<s:Body/>"),
    }
}

/// A request as the server sees it: headers plus the typed operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedRequest {
    /// `a:MessageID` (echo it in `a:RelatesTo`; pypsrp compares byte-for-byte).
    pub message_id: String,
    /// `a:To` (pywinrm always sends `http://windows-host:5985/wsman`).
    pub to: Option<String>,
    /// `w:ResourceURI`.
    pub resource_uri: String,
    /// `a:Action`.
    pub action: String,
    /// `w:MaxEnvelopeSize` in bytes.
    pub max_envelope_size: Option<u32>,
    /// `w:OperationTimeout`.
    pub operation_timeout: Option<Duration>,
    /// `w:Locale/@xml:lang`.
    pub locale: Option<String>,
    /// `w:OptionSet/w:Option` as `(Name, value)`, in order.
    pub options: Vec<(String, String)>,
    /// `w:SelectorSet/w:Selector` as `(Name, value)`, in order.
    pub selectors: Vec<(String, String)>,
    /// The operation.
    pub request: Request,
}

impl ParsedRequest {
    /// An option's value by name (case-insensitive, as Windows treats them).
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A selector's value by name (case-insensitive: clients send `ShellId`, the MS-WSMV
    /// prose writes `ShellID`).
    pub fn selector(&self, name: &str) -> Option<&str> {
        self.selectors
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn envelope_parts<'d, 'a>(
    root: &'d Element<'a>,
) -> Result<(&'d Element<'a>, &'d Element<'a>), SoapError> {
    if !root.is(ns::SOAP, "Envelope") {
        return Err(SoapError::Malformed {
            what: format!("root element <{}> is not a SOAP 1.2 Envelope", root.name),
        });
    }
    let header = root
        .child(ns::SOAP, "Header")
        .ok_or_else(|| SoapError::Malformed {
            what: "no s:Header".into(),
        })?;
    let body = root
        .child(ns::SOAP, "Body")
        .ok_or_else(|| SoapError::Malformed {
            what: "no s:Body".into(),
        })?;
    Ok((header, body))
}

/// Finds `a:MessageID` in a request on a best-effort basis, for answering a request that
/// [`parse_request`] refused with a fault that still carries `a:RelatesTo`.
pub fn peek_message_id(xml_bytes: &[u8]) -> Option<String> {
    let doc = xml::parse(xml_bytes).ok()?;
    let header = doc.root.child(ns::SOAP, "Header")?;
    let id = header.child(ns::ADDRESSING, "MessageID")?.trimmed();
    (!id.is_empty()).then(|| id.to_string())
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim() {
        v if v.eq_ignore_ascii_case("true") || v == "1" => Some(true),
        v if v.eq_ignore_ascii_case("false") || v == "0" => Some(false),
        _ => None,
    }
}

/// Parses a request (server side). Errors are the ones Windows faults on:
/// [`SoapError::InvalidTimeout`] (→ [`super::WsmanFault::invalid_operation_timeout`]),
/// [`SoapError::MissingHeader`], [`SoapError::MissingSelector`], [`SoapError::Unsupported`],
/// and [`SoapError::Xml`]/[`SoapError::Malformed`] (→ SchemaValidationError); see
/// [`super::WsmanFault::from_request_error`].
pub fn parse_request(xml_bytes: &[u8]) -> Result<ParsedRequest, SoapError> {
    let doc = xml::parse(xml_bytes)?;
    let (header, body) = envelope_parts(&doc.root)?;

    let text_of =
        |name: &str, ns_uri: &str| header.child(ns_uri, name).map(|e| e.trimmed().to_string());
    let message_id = text_of("MessageID", ns::ADDRESSING)
        .filter(|s| !s.is_empty())
        .ok_or(SoapError::MissingHeader {
            name: "a:MessageID".into(),
        })?;
    let action = text_of("Action", ns::ADDRESSING)
        .filter(|s| !s.is_empty())
        .ok_or(SoapError::MissingHeader {
            name: "a:Action".into(),
        })?;
    let resource_uri = text_of("ResourceURI", ns::WSMAN)
        .filter(|s| !s.is_empty())
        .ok_or(SoapError::MissingHeader {
            name: "w:ResourceURI".into(),
        })?;
    let to = text_of("To", ns::ADDRESSING);
    let max_envelope_size = match header.child(ns::WSMAN, "MaxEnvelopeSize") {
        Some(e) => Some(
            e.trimmed()
                .parse::<u32>()
                .map_err(|_| SoapError::InvalidHeader {
                    name: "w:MaxEnvelopeSize".into(),
                    value: e.trimmed().to_string(),
                })?,
        ),
        None => None,
    };
    let operation_timeout = match header.child(ns::WSMAN, "OperationTimeout") {
        Some(e) => Some(
            parse_duration(e.trimmed()).ok_or_else(|| SoapError::InvalidTimeout {
                value: e.trimmed().to_string(),
            })?,
        ),
        None => None,
    };
    let locale = header
        .child(ns::WSMAN, "Locale")
        .and_then(|e| e.attr_ns(ns::XML, "lang"))
        .map(str::to_string);
    let named = |set: &str, item: &str| -> Vec<(String, String)> {
        header
            .children_named(ns::WSMAN, set)
            .flat_map(|s| s.children_named(ns::WSMAN, item))
            .map(|o| {
                (
                    o.attr("Name").unwrap_or("").trim().to_string(),
                    o.trimmed().to_string(),
                )
            })
            .collect()
    };
    let options = named("OptionSet", "Option");
    let selectors = named("SelectorSet", "Selector");

    let mut parsed = ParsedRequest {
        message_id,
        to,
        resource_uri,
        action,
        max_envelope_size,
        operation_timeout,
        locale,
        options,
        selectors,
        request: Request::GetConfig,
    };
    parsed.request = parse_operation(&parsed, body)?;
    Ok(parsed)
}

/// The operation `a:Action` names, parsed from `body`: a WinRS shell operation (MS-WSMV
/// 3.1.4.x) or a WS-Transfer Get of the config resource.
fn parse_operation(p: &ParsedRequest, body: &Element) -> Result<Request, SoapError> {
    match p.action.as_str() {
        action::CREATE => parse_create(p, body),
        action::COMMAND => parse_command(p, body),
        action::SEND => parse_send(p, body),
        action::RECEIVE => parse_receive(p, body),
        action::SIGNAL => parse_signal(p, body),
        action::DELETE => Ok(Request::Delete {
            shell_id: shell_selector(p)?,
        }),
        action::GET if p.resource_uri == RESOURCE_CONFIG => Ok(Request::GetConfig),
        _ => Err(SoapError::Unsupported {
            action: p.action.clone(),
            resource_uri: p.resource_uri.clone(),
        }),
    }
}

/// The `ShellId` selector every operation after Create names its shell with.
fn shell_selector(p: &ParsedRequest) -> Result<String, SoapError> {
    p.selector("ShellId")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or(SoapError::MissingSelector {
            name: "ShellId".into(),
        })
}

fn malformed(what: &str) -> SoapError {
    SoapError::Malformed {
        what: what.to_string(),
    }
}

/// A boolean WinRS option (`TRUE`/`FALSE`, `1`/`0`); `None` when absent.
fn option_bool(p: &ParsedRequest, name: &str) -> Result<Option<bool>, SoapError> {
    match p.option(name) {
        None => Ok(None),
        Some(v) => parse_bool(v).map(Some).ok_or_else(|| SoapError::Malformed {
            what: format!("option {name}={v}"),
        }),
    }
}

/// WS-Transfer Create of a cmd shell: `rsp:Shell` with its environment, working
/// directory and idle timeout; `WINRS_CODEPAGE` and `WINRS_NOPROFILE` (MS-WSMV 4.7.1).
fn parse_create(p: &ParsedRequest, body: &Element) -> Result<Request, SoapError> {
    let shell = body
        .child(ns::SHELL, "Shell")
        .ok_or_else(|| malformed("Create without rsp:Shell"))?;
    let codepage = match p.option("WINRS_CODEPAGE") {
        Some(v) => Some(
            v.trim()
                .parse::<u32>()
                .map_err(|_| malformed(&format!("WINRS_CODEPAGE={v}")))?,
        ),
        None => None,
    };
    let environment = shell
        .children_named(ns::SHELL, "Environment")
        .flat_map(|e| e.children_named(ns::SHELL, "Variable"))
        .map(|v| (v.attr("Name").unwrap_or("").to_string(), v.text.to_string()))
        .collect();
    let idle_timeout = match shell.child(ns::SHELL, "IdleTimeOut") {
        Some(e) => Some(parse_duration(e.trimmed()).ok_or_else(|| malformed("rsp:IdleTimeOut"))?),
        None => None,
    };
    Ok(Request::Create(ShellOptions {
        codepage,
        no_profile: option_bool(p, "WINRS_NOPROFILE")?.unwrap_or(false),
        environment,
        working_directory: shell
            .child(ns::SHELL, "WorkingDirectory")
            .map(|e| e.text.to_string()),
        idle_timeout,
    }))
}

/// WinRS Command (MS-WSMV 3.1.4.11): `rsp:CommandLine` with `rsp:Command` and its
/// `rsp:Arguments`; `WINRS_SKIP_CMD_SHELL` (absent: false) and `WINRS_CONSOLEMODE_STDIN`
/// (absent: true, see [`Request::Command`]).
fn parse_command(p: &ParsedRequest, body: &Element) -> Result<Request, SoapError> {
    let shell_id = shell_selector(p)?;
    let line = body
        .child(ns::SHELL, "CommandLine")
        .ok_or_else(|| malformed("Command without rsp:CommandLine"))?;
    let command = line
        .child(ns::SHELL, "Command")
        .map(|c| c.text.to_string())
        .ok_or_else(|| malformed("CommandLine without rsp:Command"))?;
    Ok(Request::Command {
        shell_id,
        command,
        arguments: line
            .children_named(ns::SHELL, "Arguments")
            .map(|a| a.text.to_string())
            .collect(),
        skip_cmd_shell: option_bool(p, "WINRS_SKIP_CMD_SHELL")?.unwrap_or(false),
        console_mode_stdin: option_bool(p, "WINRS_CONSOLEMODE_STDIN")?.unwrap_or(true),
    })
}

/// WinRS Send (MS-WSMV 3.1.4.13): one base64 `rsp:Stream` for a command, `End="true"` on
/// the last chunk.
fn parse_send(p: &ParsedRequest, body: &Element) -> Result<Request, SoapError> {
    let shell_id = shell_selector(p)?;
    let stream = body
        .child(ns::SHELL, "Send")
        .and_then(|s| s.child(ns::SHELL, "Stream"))
        .ok_or_else(|| malformed("Send without rsp:Stream"))?;
    let command_id = stream
        .attr("CommandId")
        .map(|s| s.trim().to_string())
        .ok_or_else(|| malformed("rsp:Stream without CommandId"))?;
    let end = match stream.attr("End") {
        Some(v) => parse_bool(v).ok_or_else(|| malformed(&format!("End=\"{v}\"")))?,
        None => false,
    };
    Ok(Request::Send {
        shell_id,
        command_id,
        stream: stream.attr("Name").unwrap_or("stdin").trim().to_string(),
        data: super::decode_base64(&stream.text).ok_or_else(|| malformed("stdin is not base64"))?,
        end,
    })
}

/// WinRS Receive (MS-WSMV 3.1.4.14): `rsp:DesiredStream`, the stream names it lists and
/// the command it names (none for a shell-level Receive).
fn parse_receive(p: &ParsedRequest, body: &Element) -> Result<Request, SoapError> {
    let shell_id = shell_selector(p)?;
    let desired = body
        .child(ns::SHELL, "Receive")
        .and_then(|r| r.child(ns::SHELL, "DesiredStream"))
        .ok_or_else(|| malformed("Receive without rsp:DesiredStream"))?;
    Ok(Request::Receive {
        shell_id,
        command_id: desired
            .attr("CommandId")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()),
        streams: desired
            .text
            .split_whitespace()
            .map(str::to_string)
            .collect(),
    })
}

/// WinRS Signal (MS-WSMV 3.1.4.12): `rsp:Signal` naming a command, with its `rsp:Code`
/// (MS-WSMV 2.2.5.6).
fn parse_signal(p: &ParsedRequest, body: &Element) -> Result<Request, SoapError> {
    let shell_id = shell_selector(p)?;
    let signal = body
        .child(ns::SHELL, "Signal")
        .ok_or_else(|| malformed("Signal without rsp:Signal"))?;
    Ok(Request::Signal {
        shell_id,
        command_id: signal
            .attr("CommandId")
            .map(|s| s.trim().to_string())
            .ok_or_else(|| malformed("rsp:Signal without CommandId"))?,
        code: signal
            .child(ns::SHELL, "Code")
            .map(|c| c.trimmed().to_string())
            .ok_or_else(|| malformed("rsp:Signal without rsp:Code"))?,
    })
}
