//! WinRS responses both ways: the client parses them ([`parse_response`]) from Windows,
//! older Windows, OMI (Linux, pretty-printed) and the lab; the lab builds them
//! ([`build_response`]) in Windows' exact shape so that pywinrm and pypsrp read them as they
//! read a real host.
//!
//! Shapes (MS-WSMV 3.1.4.x and the captures in `testdata/winrm`): CreateResponse is
//! `x:ResourceCreated` with the `ShellId` selector followed, on current Windows, by an
//! `rsp:Shell` with the shell's details; CommandResponse has `rsp:CommandId` (3.1.4.11);
//! ReceiveResponse has base64 `rsp:Stream` chunks, `End="true"` markers and
//! `rsp:CommandState` with `rsp:ExitCode` once `Done` (3.1.4.14); Send/Signal responses are
//! empty elements, DeleteResponse an empty body; the config Get returns `cfg:Config`
//! (MaxEnvelopeSizekb, MS-WSMV 2.2.4.10). Every response has a fresh `a:MessageID` and
//! `a:RelatesTo` = the request's MessageID.

use base64::Engine as _;

use super::fault::fault_from_element;
use super::request::ParsedRequest;
use super::xml::{self, escape_attr, escape_text, Element};
use super::{action, command_state, ns, SoapError, ANONYMOUS, RESOURCE_CMD};

/// A typed WinRS response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// CreateResponse: the new shell's id (from the selector, byte-for-byte).
    Created {
        /// `ShellId` selector value.
        shell_id: String,
    },
    /// CommandResponse.
    CommandStarted {
        /// `rsp:CommandId`.
        command_id: String,
    },
    /// ReceiveResponse.
    Received(ReceiveOutput),
    /// SendResponse.
    Sent,
    /// SignalResponse.
    Signalled,
    /// DeleteResponse.
    Deleted,
    /// GetResponse of `wsman/1/config`.
    Config {
        /// `cfg:MaxEnvelopeSizekb`.
        max_envelope_size_kb: u32,
        /// `cfg:MaxTimeoutms`.
        max_timeout_ms: u64,
    },
    /// GetResponse of `windows/shell` with a ShellId selector: the shell's `rsp:Shell`
    /// details (pypsrp reads these to check that a shell is alive).
    Shell(ShellInfo),
}

/// What one Receive returned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReceiveOutput {
    /// Stream chunks in document order (decode and concatenate per stream before turning
    /// bytes into text: chunks may split multi-byte characters).
    pub chunks: Vec<StreamChunk>,
    /// `rsp:CommandState`, if present (PSRP responses may have none).
    pub state: Option<CommandState>,
}

/// One `rsp:Stream` element.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamChunk {
    /// `Name` (`stdout`, `stderr`).
    pub stream: String,
    /// `CommandId` (absent on shell-level PSRP streams).
    pub command_id: Option<String>,
    /// Decoded bytes (in the shell's code page).
    pub data: Vec<u8>,
    /// `End="true"`: no more data on this stream.
    pub end: bool,
}

/// `rsp:CommandState`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommandState {
    /// `CommandId`.
    pub command_id: String,
    /// `State` is `…/CommandState/Done` (else Running or Pending: poll again).
    pub done: bool,
    /// `rsp:ExitCode` (present once Done).
    pub exit_code: Option<i64>,
}

/// The shell details Windows echoes in `rsp:Shell` (CreateResponse, shell Get).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShellInfo {
    /// `rsp:ShellId`.
    pub shell_id: String,
    /// `rsp:Owner` (user name without domain, e.g. `vagrant`).
    pub owner: String,
    /// `rsp:ClientIP`.
    pub client_ip: String,
    /// `rsp:IdleTimeOut` as Windows writes it (`PT7200.000S`;
    /// [`super::format_duration_windows`]).
    pub idle_timeout: String,
}

/// Builds a response as Windows does, with `a:Address` in CreateResponse set to the
/// anonymous role (use [`build_response_for`] to echo the endpoint URL as current Windows
/// does).
pub fn build_response(
    message_id_of_request: &str,
    resp: &Response,
    shell: Option<&ShellInfo>,
) -> String {
    build(message_id_of_request, resp, shell, ANONYMOUS, RESOURCE_CMD)
}

/// Like [`build_response`], echoing the request's `a:To` as CreateResponse's `a:Address`
/// and its ResourceURI, exactly as in `create_shell_response.xml`.
pub fn build_response_for(
    request: &ParsedRequest,
    resp: &Response,
    shell: Option<&ShellInfo>,
) -> String {
    let address = request.to.as_deref().unwrap_or(ANONYMOUS);
    build(
        &request.message_id,
        resp,
        shell,
        address,
        &request.resource_uri,
    )
}

fn build(
    relates_to: &str,
    resp: &Response,
    shell: Option<&ShellInfo>,
    address: &str,
    resource_uri: &str,
) -> String {
    let (response_action, prefixes): (&str, &[(&str, &str)]) = match resp {
        Response::Created { .. } => (action::CREATE_RESPONSE, &FULL_PREFIXES),
        Response::CommandStarted { .. } => (action::COMMAND_RESPONSE, &FULL_PREFIXES),
        Response::Received(_) => (action::RECEIVE_RESPONSE, &RECEIVE_PREFIXES),
        Response::Sent => (action::SEND_RESPONSE, &FULL_PREFIXES),
        Response::Signalled => (action::SIGNAL_RESPONSE, &FULL_PREFIXES),
        Response::Deleted => (action::DELETE_RESPONSE, &DELETE_PREFIXES),
        Response::Config { .. } | Response::Shell(_) => (action::GET_RESPONSE, &GET_PREFIXES),
    };
    let mut x = String::with_capacity(1024);
    x.push_str(r#"<s:Envelope xml:lang="en-US""#);
    for (p, uri) in prefixes {
        x.push_str(" xmlns:");
        x.push_str(p);
        x.push_str("=\"");
        x.push_str(uri);
        x.push('"');
    }
    x.push_str("><s:Header><a:Action>");
    x.push_str(response_action);
    x.push_str("</a:Action><a:MessageID>");
    x.push_str(&super::new_message_id());
    x.push_str("</a:MessageID><a:To>");
    x.push_str(ANONYMOUS);
    x.push_str("</a:To><a:RelatesTo>");
    x.push_str(&escape_text(relates_to));
    x.push_str("</a:RelatesTo></s:Header><s:Body>");
    match resp {
        Response::Created { shell_id } => {
            x.push_str("<x:ResourceCreated><a:Address>");
            x.push_str(&escape_text(address));
            x.push_str("</a:Address><a:ReferenceParameters><w:ResourceURI>");
            x.push_str(&escape_text(resource_uri));
            x.push_str(r#"</w:ResourceURI><w:SelectorSet><w:Selector Name="ShellId">"#);
            x.push_str(&escape_text(shell_id));
            x.push_str("</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>");
            if let Some(info) = shell {
                push_shell(&mut x, info, resource_uri);
            }
        }
        Response::CommandStarted { command_id } => {
            x.push_str("<rsp:CommandResponse><rsp:CommandId>");
            x.push_str(&escape_text(command_id));
            x.push_str("</rsp:CommandId></rsp:CommandResponse>");
        }
        Response::Received(out) => push_receive(&mut x, out),
        Response::Sent => x.push_str("<rsp:SendResponse/>"),
        Response::Signalled => x.push_str("<rsp:SignalResponse/>"),
        Response::Deleted => {}
        Response::Config {
            max_envelope_size_kb,
            max_timeout_ms,
        } => {
            x.push_str(
                &CONFIG_TEMPLATE
                    .replace("{kb}", &max_envelope_size_kb.to_string())
                    .replace("{ms}", &max_timeout_ms.to_string()),
            );
        }
        Response::Shell(info) => push_shell(&mut x, info, resource_uri),
    }
    x.push_str("</s:Body></s:Envelope>");
    x
}

const FULL_PREFIXES: [(&str, &str); 6] = [
    ("s", ns::SOAP),
    ("a", ns::ADDRESSING),
    ("x", ns::TRANSFER),
    ("w", ns::WSMAN),
    ("rsp", ns::SHELL),
    ("p", ns::MS_WSMAN),
];
const RECEIVE_PREFIXES: [(&str, &str); 5] = [
    ("s", ns::SOAP),
    ("a", ns::ADDRESSING),
    ("w", ns::WSMAN),
    ("rsp", ns::SHELL),
    ("p", ns::MS_WSMAN),
];
const DELETE_PREFIXES: [(&str, &str); 4] = [
    ("s", ns::SOAP),
    ("a", ns::ADDRESSING),
    ("w", ns::WSMAN),
    ("p", ns::MS_WSMAN),
];
const GET_PREFIXES: [(&str, &str); 5] = [
    ("s", ns::SOAP),
    ("a", ns::ADDRESSING),
    ("x", ns::TRANSFER),
    ("w", ns::WSMAN),
    ("p", ns::MS_WSMAN),
];

/// `rsp:Shell` as in `create_shell_response.xml` (declaring `rsp` itself, as Windows does).
fn push_shell(x: &mut String, info: &ShellInfo, resource_uri: &str) {
    x.push_str(r#"<rsp:Shell xmlns:rsp=""#);
    x.push_str(ns::SHELL);
    x.push_str(r#""><rsp:ShellId>"#);
    x.push_str(&escape_text(&info.shell_id));
    x.push_str("</rsp:ShellId><rsp:ResourceUri>");
    x.push_str(&escape_text(resource_uri));
    x.push_str("</rsp:ResourceUri><rsp:Owner>");
    x.push_str(&escape_text(&info.owner));
    x.push_str("</rsp:Owner><rsp:ClientIP>");
    x.push_str(&escape_text(&info.client_ip));
    x.push_str("</rsp:ClientIP><rsp:IdleTimeOut>");
    x.push_str(&escape_text(&info.idle_timeout));
    x.push_str("</rsp:IdleTimeOut><rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams><rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime><rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity></rsp:Shell>");
}

fn push_receive(x: &mut String, out: &ReceiveOutput) {
    x.push_str("<rsp:ReceiveResponse>");
    for c in &out.chunks {
        x.push_str(r#"<rsp:Stream Name=""#);
        x.push_str(&escape_attr(&c.stream));
        x.push('"');
        if let Some(id) = &c.command_id {
            x.push_str(r#" CommandId=""#);
            x.push_str(&escape_attr(id));
            x.push('"');
        }
        if c.end {
            x.push_str(r#" End="true""#);
        }
        x.push('>');
        x.push_str(&base64::engine::general_purpose::STANDARD.encode(&c.data));
        x.push_str("</rsp:Stream>");
    }
    if let Some(s) = &out.state {
        x.push_str(r#"<rsp:CommandState CommandId=""#);
        x.push_str(&escape_attr(&s.command_id));
        x.push_str(r#"" State=""#);
        x.push_str(if s.done {
            command_state::DONE
        } else {
            command_state::RUNNING
        });
        x.push_str(r#"">"#);
        if let Some(code) = s.exit_code {
            x.push_str("<rsp:ExitCode>");
            x.push_str(&code.to_string());
            x.push_str("</rsp:ExitCode>");
        }
        x.push_str("</rsp:CommandState>");
    }
    x.push_str("</rsp:ReceiveResponse>");
}

/// `cfg:Config` as in `wsman_config_get_response_maxenvelope_150kb.xml`, with
/// `MaxEnvelopeSizekb` and `MaxTimeoutms` filled in.
const CONFIG_TEMPLATE: &str = concat!(
    r#"<cfg:Config xmlns:cfg="http://schemas.microsoft.com/wbem/wsman/1/config"><cfg:MaxEnvelopeSizekb>{kb}</cfg:MaxEnvelopeSizekb><cfg:MaxTimeoutms>{ms}</cfg:MaxTimeoutms><cfg:MaxBatchItems>32000</cfg:MaxBatchItems><cfg:MaxProviderRequests>4294967295</cfg:MaxProviderRequests>"#,
    r#"<cfg:Client><cfg:NetworkDelayms>5000</cfg:NetworkDelayms><cfg:URLPrefix>wsman</cfg:URLPrefix><cfg:AllowUnencrypted>false</cfg:AllowUnencrypted><cfg:Auth><cfg:Basic>true</cfg:Basic><cfg:Digest>true</cfg:Digest><cfg:Kerberos>true</cfg:Kerberos><cfg:Negotiate>true</cfg:Negotiate><cfg:Certificate>true</cfg:Certificate><cfg:CredSSP>false</cfg:CredSSP></cfg:Auth><cfg:DefaultPorts><cfg:HTTP>5985</cfg:HTTP><cfg:HTTPS>5986</cfg:HTTPS></cfg:DefaultPorts><cfg:TrustedHosts></cfg:TrustedHosts></cfg:Client>"#,
    r#"<cfg:Service><cfg:RootSDDL>O:NSG:BAD:P(A;;GA;;;BA)(A;;GR;;;IU)S:P(AU;FA;GA;;;WD)(AU;SA;GXGW;;;WD)</cfg:RootSDDL><cfg:MaxConcurrentOperations>4294967295</cfg:MaxConcurrentOperations><cfg:MaxConcurrentOperationsPerUser>1500</cfg:MaxConcurrentOperationsPerUser><cfg:EnumerationTimeoutms>240000</cfg:EnumerationTimeoutms><cfg:MaxConnections>300</cfg:MaxConnections><cfg:MaxPacketRetrievalTimeSeconds>120</cfg:MaxPacketRetrievalTimeSeconds><cfg:AllowUnencrypted>false</cfg:AllowUnencrypted><cfg:Auth><cfg:Basic>true</cfg:Basic><cfg:Kerberos>true</cfg:Kerberos><cfg:Negotiate>true</cfg:Negotiate><cfg:Certificate>false</cfg:Certificate><cfg:CredSSP>true</cfg:CredSSP><cfg:CbtHardeningLevel>Relaxed</cfg:CbtHardeningLevel></cfg:Auth><cfg:DefaultPorts><cfg:HTTP>5985</cfg:HTTP><cfg:HTTPS>5986</cfg:HTTPS></cfg:DefaultPorts><cfg:IPv4Filter>*</cfg:IPv4Filter><cfg:IPv6Filter>*</cfg:IPv6Filter><cfg:EnableCompatibilityHttpListener>false</cfg:EnableCompatibilityHttpListener><cfg:EnableCompatibilityHttpsListener>false</cfg:EnableCompatibilityHttpsListener><cfg:CertificateThumbprint></cfg:CertificateThumbprint><cfg:AllowRemoteAccess>true</cfg:AllowRemoteAccess></cfg:Service>"#,
    r#"<cfg:Winrs><cfg:AllowRemoteShellAccess>true</cfg:AllowRemoteShellAccess><cfg:IdleTimeout>7200000</cfg:IdleTimeout><cfg:MaxConcurrentUsers>2147483647</cfg:MaxConcurrentUsers><cfg:MaxShellRunTime>2147483647</cfg:MaxShellRunTime><cfg:MaxProcessesPerShell>2147483647</cfg:MaxProcessesPerShell><cfg:MaxMemoryPerShellMB>2147483647</cfg:MaxMemoryPerShellMB><cfg:MaxShellsPerUser>2147483647</cfg:MaxShellsPerUser></cfg:Winrs></cfg:Config>"#
);

/// Parses a response (client side). A fault envelope becomes `Err(SoapError::Fault(..))`.
/// Whitespace around values (OMI) is ignored; stream data is base64-decoded per chunk.
pub fn parse_response(xml_bytes: &[u8]) -> Result<Response, SoapError> {
    let doc = xml::parse(xml_bytes)?;
    let root = &doc.root;
    if !root.is(ns::SOAP, "Envelope") {
        return Err(SoapError::Malformed {
            what: format!("root element <{}> is not a SOAP 1.2 Envelope", root.name),
        });
    }
    let body = root
        .child(ns::SOAP, "Body")
        .ok_or_else(|| SoapError::Malformed {
            what: "no s:Body".into(),
        })?;
    if let Some(fault) = body.child(ns::SOAP, "Fault") {
        return Err(SoapError::Fault(Box::new(fault_from_element(&doc, fault))));
    }
    let action = root
        .child(ns::SOAP, "Header")
        .and_then(|h| h.child(ns::ADDRESSING, "Action"))
        .map(|a| a.trimmed().to_string())
        .unwrap_or_default();

    if let Some(r) = body.child(ns::SHELL, "ReceiveResponse") {
        return parse_receive(r).map(Response::Received);
    }
    if let Some(c) = body.child(ns::SHELL, "CommandResponse") {
        let id = c
            .child(ns::SHELL, "CommandId")
            .map(|e| e.trimmed().to_string())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| SoapError::Malformed {
                what: "CommandResponse without rsp:CommandId".into(),
            })?;
        return Ok(Response::CommandStarted { command_id: id });
    }
    let shell = body.child(ns::SHELL, "Shell");
    if let Some(created) = body.child(ns::TRANSFER, "ResourceCreated") {
        let from_selector = created
            .descendant(ns::WSMAN, "SelectorSet")
            .and_then(|s| {
                s.children_named(ns::WSMAN, "Selector").find(|sel| {
                    sel.attr("Name")
                        .is_some_and(|n| n.trim().eq_ignore_ascii_case("ShellId"))
                })
            })
            .map(|sel| sel.trimmed().to_string())
            .filter(|s| !s.is_empty());
        let from_shell = || {
            shell
                .and_then(|s| s.child(ns::SHELL, "ShellId"))
                .map(|e| e.trimmed().to_string())
                .filter(|s| !s.is_empty())
        };
        return from_selector
            .or_else(from_shell)
            .map(|shell_id| Response::Created { shell_id })
            .ok_or_else(|| SoapError::Malformed {
                what: "CreateResponse without a ShellId".into(),
            });
    }
    if let Some(cfg) = body.child(ns::CONFIG, "Config") {
        let num = |name: &str| {
            cfg.child(ns::CONFIG, name)
                .map(|e| e.trimmed().to_string())
                .ok_or_else(|| SoapError::Malformed {
                    what: format!("cfg:Config without cfg:{name}"),
                })
        };
        let kb = num("MaxEnvelopeSizekb")?;
        let ms = num("MaxTimeoutms")?;
        return Ok(Response::Config {
            max_envelope_size_kb: kb.parse().map_err(|_| SoapError::Malformed {
                what: format!("cfg:MaxEnvelopeSizekb {kb}"),
            })?,
            max_timeout_ms: ms.parse().map_err(|_| SoapError::Malformed {
                what: format!("cfg:MaxTimeoutms {ms}"),
            })?,
        });
    }
    if body.child(ns::SHELL, "SendResponse").is_some() || action == action::SEND_RESPONSE {
        return Ok(Response::Sent);
    }
    if body.child(ns::SHELL, "SignalResponse").is_some() || action == action::SIGNAL_RESPONSE {
        return Ok(Response::Signalled);
    }
    if action == action::DELETE_RESPONSE {
        return Ok(Response::Deleted);
    }
    if let Some(s) = shell {
        if action == action::GET_RESPONSE || action == action::CREATE_RESPONSE {
            let info = shell_info(s);
            if action == action::CREATE_RESPONSE && !info.shell_id.is_empty() {
                return Ok(Response::Created {
                    shell_id: info.shell_id,
                });
            }
            return Ok(Response::Shell(info));
        }
    }
    Err(SoapError::Unexpected {
        expected: "a WinRS response".into(),
        found: if action.is_empty() {
            "a message without a:Action".into()
        } else {
            action
        },
    })
}

/// Reads `rsp:Shell` details.
pub(crate) fn shell_info(s: &Element) -> ShellInfo {
    let t = |name: &str| {
        s.child(ns::SHELL, name)
            .map(|e| e.trimmed().to_string())
            .unwrap_or_default()
    };
    ShellInfo {
        shell_id: t("ShellId"),
        owner: t("Owner"),
        client_ip: t("ClientIP"),
        idle_timeout: t("IdleTimeOut"),
    }
}

fn parse_receive(r: &Element) -> Result<ReceiveOutput, SoapError> {
    let mut out = ReceiveOutput::default();
    for e in &r.children {
        if e.is(ns::SHELL, "Stream") {
            let data = super::decode_base64(&e.text).ok_or_else(|| SoapError::Malformed {
                what: format!("rsp:Stream {} is not base64", e.attr("Name").unwrap_or("")),
            })?;
            out.chunks.push(StreamChunk {
                stream: e.attr("Name").unwrap_or("").trim().to_string(),
                command_id: e.attr("CommandId").map(|s| s.trim().to_string()),
                data,
                end: e
                    .attr("End")
                    .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
            });
        } else if e.is(ns::SHELL, "CommandState") {
            let state = e.attr("State").unwrap_or("").trim();
            let exit_code = match e.child(ns::SHELL, "ExitCode") {
                Some(c) => Some(
                    c.trimmed()
                        .parse::<i64>()
                        .map_err(|_| SoapError::Malformed {
                            what: format!("rsp:ExitCode {}", c.trimmed()),
                        })?,
                ),
                None => None,
            };
            out.state = Some(CommandState {
                command_id: e.attr("CommandId").unwrap_or("").trim().to_string(),
                done: state == command_state::DONE || state.ends_with("CommandState/Done"),
                exit_code,
            });
        }
    }
    Ok(out)
}
