//! WS-Management SOAP messages for the Windows Remote Shell (`cmd`), sans-IO, both sides:
//! the client builds requests and parses responses and faults; the lab parses requests and
//! builds responses and faults in Windows' own shape and wording. Everything here is pure
//! string/bytes in, typed values out; nothing panics on input.
//!
//! The protocol is MS-WSMV (Web Services Management Protocol Extensions for Windows Vista):
//! SOAP 1.2 envelopes with WS-Addressing and WS-Management headers (MS-WSMV 3.1.4.1), the
//! WinRS shell operations Create/Command/Send/Receive/Signal/Delete (MS-WSMV 3.1.4.x) and
//! `f:WSManFault` faults. Elements are matched by namespace URI, never by
//! prefix: pypsrp writes `wsa:`/`wsman:`/`wsmv:`, pywinrm `env:`/`a:`/`w:`/`p:`, Windows
//! `s:`/`a:`/`w:`/`p:`/`rsp:`, and OMI (Linux) `SOAP-ENV:` with pretty-printed whitespace
//! inside text nodes.
//!
//! * [`request`] — [`build_request`] / [`parse_request`].
//! * [`response`] — [`parse_response`] / [`build_response`].
//! * [`fault`] — [`WsmanFault`], [`FaultKind`], [`parse_fault`], [`build_fault`].
//! * [`ns`], [`action`], [`signal`], [`command_state`] — the URIs.
//! * [`duration`] — `xs:duration` (`PT20S`, `PT7200.000S`).

pub mod duration;
pub mod fault;
pub mod ns;
pub mod request;
pub mod response;
mod xml;

use base64::Engine as _;

pub use duration::{format_duration, format_duration_windows, parse_duration};
pub use fault::{build_fault, parse_fault, FaultKind, WsmanFault};
pub use request::{
    build_request, parse_request, peek_message_id, ParsedRequest, Request, RequestContext,
    ShellOptions,
};
pub use response::{
    build_response, build_response_for, parse_response, CommandState, ReceiveOutput, Response,
    ShellInfo, StreamChunk,
};

/// `w:ResourceURI` of the cmd shell.
pub const RESOURCE_CMD: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd";
/// `w:ResourceURI` of the shell collection (pypsrp's shell Get; PSRP).
pub const RESOURCE_SHELL: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell";
/// `w:ResourceURI` of the WinRM configuration (MaxEnvelopeSizekb).
pub const RESOURCE_CONFIG: &str = "http://schemas.microsoft.com/wbem/wsman/1/config";
/// `w:ResourceURI` of the default PowerShell remoting endpoint (PSRP; not served by WinRS).
pub const RESOURCE_POWERSHELL: &str =
    "http://schemas.microsoft.com/powershell/Microsoft.PowerShell";
/// WS-Addressing anonymous reply address (`a:ReplyTo/a:Address`, responses' `a:To`).
pub const ANONYMOUS: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous";
/// MaxEnvelopeSize pywinrm and pypsrp send: 150 KiB, Windows Server 2008 (R2)'s limit.
pub const DEFAULT_MAX_ENVELOPE_SIZE: u32 = 153_600;

/// `wsa:Action` URIs (MS-WSMV 3.1.4.x).
pub mod action {
    /// WS-Transfer Create (open a shell).
    pub const CREATE: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create";
    /// CreateResponse.
    pub const CREATE_RESPONSE: &str =
        "http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse";
    /// WS-Transfer Delete (close a shell).
    pub const DELETE: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete";
    /// DeleteResponse.
    pub const DELETE_RESPONSE: &str =
        "http://schemas.xmlsoap.org/ws/2004/09/transfer/DeleteResponse";
    /// WS-Transfer Get (config, shell details).
    pub const GET: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get";
    /// GetResponse.
    pub const GET_RESPONSE: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer/GetResponse";
    /// WinRS Command (MS-WSMV 3.1.4.11).
    pub const COMMAND: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command";
    /// CommandResponse.
    pub const COMMAND_RESPONSE: &str =
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandResponse";
    /// WinRS Send (MS-WSMV 3.1.4.13).
    pub const SEND: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send";
    /// SendResponse.
    pub const SEND_RESPONSE: &str =
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/SendResponse";
    /// WinRS Receive (MS-WSMV 3.1.4.14).
    pub const RECEIVE: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive";
    /// ReceiveResponse.
    pub const RECEIVE_RESPONSE: &str =
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/ReceiveResponse";
    /// WinRS Signal (MS-WSMV 3.1.4.12).
    pub const SIGNAL: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal";
    /// SignalResponse.
    pub const SIGNAL_RESPONSE: &str =
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/SignalResponse";
}

/// Signal codes (MS-WSMV 2.2.5.6). Lowercase `terminate` as the enumeration, pywinrm and
/// WinRb spell it (pypsrp's `Terminate` differs).
pub mod signal {
    /// Terminate the process (pywinrm's cleanup).
    pub const TERMINATE: &str =
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate";
    /// Ctrl+C (pypsrp's cleanup).
    pub const CTRL_C: &str =
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_c";
    /// Ctrl+Break.
    pub const CTRL_BREAK: &str =
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_break";
}

/// `rsp:CommandState/@State` values (captures).
pub mod command_state {
    /// Still running: Receive again.
    pub const RUNNING: &str =
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running";
    /// Finished; `rsp:ExitCode` present.
    pub const DONE: &str =
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done";
    /// Not started yet.
    pub const PENDING: &str =
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Pending";
}

/// Why a SOAP message could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SoapError {
    /// Not well-formed (namespace-aware) XML, or truncated.
    #[error("malformed XML: {0}")]
    Xml(String),
    /// Well-formed, but not the SOAP structure expected (missing element, bad value).
    #[error("malformed WS-Management message: {what}")]
    Malformed {
        /// What is missing or wrong.
        what: String,
    },
    /// A valid message of another kind than the one expected.
    #[error("expected {expected}, got {found}")]
    Unexpected {
        /// What we wanted.
        expected: String,
        /// What arrived.
        found: String,
    },
    /// The server answered with a fault.
    #[error("{0}")]
    Fault(Box<WsmanFault>),
    /// `w:OperationTimeout` is not a valid non-negative duration (e.g. `PT-1S`).
    #[error("invalid OperationTimeout {value:?}")]
    InvalidTimeout {
        /// The header text.
        value: String,
    },
    /// Another header has an invalid value.
    #[error("invalid header {name}: {value:?}")]
    InvalidHeader {
        /// Header name, e.g. `w:MaxEnvelopeSize`.
        name: String,
        /// The header text.
        value: String,
    },
    /// A required header is missing.
    #[error("missing header {name}")]
    MissingHeader {
        /// Header name, e.g. `a:MessageID`.
        name: String,
    },
    /// A required selector (`ShellId`) is missing.
    #[error("missing selector {name}")]
    MissingSelector {
        /// Selector name.
        name: String,
    },
    /// An action/resource combination this implementation does not serve.
    #[error("unsupported operation {action} on {resource_uri}")]
    Unsupported {
        /// `a:Action`.
        action: String,
        /// `w:ResourceURI`.
        resource_uri: String,
    },
}

impl SoapError {
    /// The fault, when this error is one.
    pub fn as_fault(&self) -> Option<&WsmanFault> {
        match self {
            SoapError::Fault(f) => Some(f),
            _ => None,
        }
    }
}

/// `uuid:<GUID>` in upper case, as Windows and pypsrp write MessageIDs.
pub fn new_message_id() -> String {
    let mut buf = uuid::Uuid::encode_buffer();
    let id = uuid::Uuid::new_v4().hyphenated().encode_upper(&mut buf);
    let mut out = String::with_capacity(5 + id.len());
    out.push_str("uuid:");
    out.push_str(id);
    out
}

/// Decodes base64 stream data leniently: whitespace anywhere (OMI) and missing padding are
/// accepted.
pub(crate) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::{
        general_purpose::GeneralPurpose, general_purpose::GeneralPurposeConfig, DecodePaddingMode,
    };
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    // Most streams are one unbroken run of the alphabet: decode them as they are (the
    // decoder refuses anything else, whitespace included, so a success here is what
    // decoding the text without its whitespace would give).
    if let Ok(bytes) = LENIENT.decode(text.as_bytes()) {
        return Some(bytes);
    }
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    LENIENT.decode(compact.as_bytes()).ok()
}
