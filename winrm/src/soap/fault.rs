//! WS-Management faults (the `WSManFault` detail of MS-WSMV, header faults of 3.1.4.1.x) typed by
//! their code, both ways: parsing what a server sent, and building faults in the exact shape
//! and wording Windows uses (captures `fault_*.xml` in `testdata/winrm`).
//!
//! A fault is an HTTP 500 carrying `s:Fault` with `s:Code/s:Value` (Sender or Receiver), a
//! WS-Management subcode (`w:TimedOut`, `w:InvalidSelectors`, …), `s:Reason/s:Text`, and in
//! `s:Detail` an optional `w:FaultDetail` URI and an `f:WSManFault Code="…" Machine="…"`
//! whose `f:Message` holds text, or an `f:ProviderFault` (text or a nested `f:WSManFault`).
//! WMI-flavoured errors put a `p:MSFT_WmiError` with `p:error_Code` in `s:Detail` instead.
//! [`FaultKind`] is decided by the numeric code first and the subcode second, as pypsrp's
//! `_parse_wsman_fault` does.

use std::fmt;

use super::ns;
use super::xml::{self, escape_attr, escape_text, Document, Element};
use super::SoapError;

/// `wsa:Action` of most Windows faults.
pub const ACTION_WSMAN_FAULT: &str = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault";
/// `wsa:Action` of WS-Addressing header faults (InvalidMessageInformationHeader, …).
pub const ACTION_ADDRESSING_FAULT: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing/fault";
/// `wsa:Action` of WS-Enumeration faults (CannotProcessFilter).
pub const ACTION_ENUMERATION_FAULT: &str =
    "http://schemas.xmlsoap.org/ws/2004/09/enumeration/fault";

/// `w:FaultDetail` URIs Windows sends (captures; MS-WSMV 3.1.4.1.7 for MaxEnvelopeSize).
pub mod detail {
    /// With InvalidSelectors (unknown CommandId, shell not found).
    pub const UNEXPECTED_SELECTORS: &str =
        "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors";
    /// With InvalidParameter (Receive without CommandId).
    pub const INVALID_VALUE: &str =
        "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/InvalidValue";
    /// With EncodingLimit when a response would exceed MaxEnvelopeSize (MS-WSMV 3.1.4.1.7).
    pub const MAX_ENVELOPE_SIZE: &str =
        "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/MaxEnvelopeSize";
}

/// Numeric `f:WSManFault/@Code` values (decimal HRESULTs / Win32 errors) from PROTOCOL.md §6
/// and `wsmerror.h`.
pub mod code {
    /// ERROR_WSMAN_OPERATION_TIMEDOUT (0x80338029).
    pub const OPERATION_TIMED_OUT: u32 = 2_150_858_793;
    /// ERROR_WSMAN_INVALID_SELECTORS as the shell reports it (0x8033805B).
    pub const INVALID_SELECTORS: u32 = 2_150_858_843;
    /// ERROR_WSMAN_INVALID_SELECTORS, generic (0x8033803D).
    pub const INVALID_SELECTORS_GENERIC: u32 = 2_150_858_813;
    /// ERROR_WSMAN_INVALID_MESSAGE_INFORMATION_HEADER (0x8033800F).
    pub const INVALID_MESSAGE_INFORMATION_HEADER: u32 = 2_150_858_767;
    /// ERROR_WSMAN_MESSAGE_INFORMATION_HEADER_REQUIRED (0x80338011).
    pub const MESSAGE_INFORMATION_HEADER_REQUIRED: u32 = 2_150_858_769;
    /// ERROR_WSMAN_ACTION_NOT_SUPPORTED (0x80338013).
    pub const ACTION_NOT_SUPPORTED: u32 = 2_150_858_771;
    /// ERROR_WSMAN_ENUMERATE_CANNOT_PROCESS_FILTER (0x8033801A).
    pub const CANNOT_PROCESS_FILTER: u32 = 2_150_858_778;
    /// ERROR_WSMAN_ENVELOPE_TOO_LARGE (0x80338026).
    pub const ENVELOPE_TOO_LARGE: u32 = 2_150_858_790;
    /// ERROR_WSMAN_SCHEMA_VALIDATION_ERROR (0x80338041).
    pub const SCHEMA_VALIDATION: u32 = 2_150_858_817;
    /// ERROR_WSMAN_MAX_ENVELOPE_SIZE (0x80338047).
    pub const MAX_ENVELOPE_SIZE: u32 = 2_150_858_823;
    /// ERROR_WSMAN_MAX_ENVELOPE_SIZE_EXCEEDED (0x80338048).
    pub const MAX_ENVELOPE_SIZE_EXCEEDED: u32 = 2_150_858_824;
    /// Too many concurrent shells for the user (0x803381A5).
    pub const QUOTA_MAX_SHELLS: u32 = 2_150_859_173;
    /// Too many commands per shell/user (0x803381A6).
    pub const QUOTA_MAX_COMMANDS: u32 = 2_150_859_174;
    /// ERROR_ACCESS_DENIED as a Win32 code.
    pub const ACCESS_DENIED: u32 = 5;
    /// E_ACCESSDENIED (0x80070005).
    pub const ACCESS_DENIED_HRESULT: u32 = 2_147_942_405;
    /// ERROR_INVALID_PARAMETER.
    pub const INVALID_PARAMETER: u32 = 87;
    /// ERROR_INVALID_PARAMETER as an HRESULT (0x80070057).
    pub const INVALID_PARAMETER_HRESULT: u32 = 2_147_942_487;
    /// ERROR_FILE_NOT_FOUND as an HRESULT (0x80070002).
    pub const FILE_NOT_FOUND: u32 = 2_147_942_402;
    /// ERROR_FILENAME_EXCED_RANGE as an HRESULT (0x800700CE).
    pub const FILENAME_TOO_LONG: u32 = 2_147_942_606;
}

/// What a fault means for the client, decided by code first and subcode second.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// `w:TimedOut` / 2150858793: nothing happened within OperationTimeout. On Receive this is
    /// the normal long-poll result: poll again (MS-WSMV 3.1.4.14).
    OperationTimedOut,
    /// `w:InvalidSelectors` / 2150858843: the shell is gone (idle timeout, service restart)
    /// or the CommandId is unknown. WinRb re-opens the shell and retries once.
    InvalidSelectors,
    /// Code 5 / 0x80070005 (`w:AccessDenied`): authenticated, but not allowed to use WinRM.
    AccessDenied,
    /// `w:InvalidParameter` / 87, e.g. a Receive without CommandId.
    InvalidParameter,
    /// `w:QuotaLimit` / 2150859173 (shells per user) or 2150859174 (commands).
    QuotaLimit,
    /// `w:EncodingLimit` / 2150858824 and friends: an envelope exceeds MaxEnvelopeSize.
    EnvelopeTooLarge,
    /// `a:InvalidMessageInformationHeader` / 2150858767 (e.g. OperationTimeout `PT-1S`) or a
    /// missing header (2150858769).
    InvalidHeader,
    /// `w:SchemaValidationError` / 2150858817: the request XML is not what the service
    /// expects.
    SchemaValidation,
    /// `n:CannotProcessFilter` / 2150858778 (WMI class or filter errors).
    CannotProcessFilter,
    /// `w:InternalError` with a code not listed here.
    InternalError,
    /// 2147942402 "The system cannot find the file specified" (e.g. `WINRS_SKIP_CMD_SHELL`
    /// with an executable that is not a full path).
    FileNotFound,
    /// 2147942606 "The filename or extension is too long" (command line too long).
    FilenameTooLong,
    /// Anything else.
    Other,
}

impl FaultKind {
    /// Classifies by `f:WSManFault/@Code` (or `p:error_Code`) first, then by the subcode as
    /// `(namespace URI, local name)`.
    pub fn classify(code: Option<u32>, subcode: Option<(&str, &str)>) -> FaultKind {
        if let Some(k) = code.and_then(FaultKind::from_code) {
            return k;
        }
        match subcode {
            Some((ns::WSMAN, "TimedOut")) => FaultKind::OperationTimedOut,
            Some((ns::WSMAN, "InvalidSelectors")) => FaultKind::InvalidSelectors,
            Some((ns::WSMAN, "AccessDenied")) => FaultKind::AccessDenied,
            Some((ns::WSMAN, "InvalidParameter")) => FaultKind::InvalidParameter,
            Some((ns::WSMAN, "QuotaLimit")) => FaultKind::QuotaLimit,
            Some((ns::WSMAN, "EncodingLimit")) => FaultKind::EnvelopeTooLarge,
            Some((
                ns::ADDRESSING,
                "InvalidMessageInformationHeader" | "MessageInformationHeaderRequired",
            )) => FaultKind::InvalidHeader,
            Some((ns::WSMAN, "SchemaValidationError")) => FaultKind::SchemaValidation,
            Some((ns::ENUMERATION, "CannotProcessFilter")) => FaultKind::CannotProcessFilter,
            Some((ns::WSMAN, "InternalError")) => FaultKind::InternalError,
            _ => FaultKind::Other,
        }
    }

    /// The kind a numeric code alone implies, if it is one we know.
    pub fn from_code(value: u32) -> Option<FaultKind> {
        Some(match value {
            code::OPERATION_TIMED_OUT => FaultKind::OperationTimedOut,
            code::INVALID_SELECTORS | code::INVALID_SELECTORS_GENERIC => {
                FaultKind::InvalidSelectors
            }
            code::ACCESS_DENIED | code::ACCESS_DENIED_HRESULT => FaultKind::AccessDenied,
            code::INVALID_PARAMETER | code::INVALID_PARAMETER_HRESULT => {
                FaultKind::InvalidParameter
            }
            code::QUOTA_MAX_SHELLS | code::QUOTA_MAX_COMMANDS => FaultKind::QuotaLimit,
            code::ENVELOPE_TOO_LARGE
            | code::MAX_ENVELOPE_SIZE
            | code::MAX_ENVELOPE_SIZE_EXCEEDED => FaultKind::EnvelopeTooLarge,
            code::INVALID_MESSAGE_INFORMATION_HEADER
            | code::MESSAGE_INFORMATION_HEADER_REQUIRED => FaultKind::InvalidHeader,
            code::SCHEMA_VALIDATION => FaultKind::SchemaValidation,
            code::CANNOT_PROCESS_FILTER => FaultKind::CannotProcessFilter,
            code::FILE_NOT_FOUND => FaultKind::FileNotFound,
            code::FILENAME_TOO_LONG => FaultKind::FilenameTooLong,
            _ => return None,
        })
    }
}

/// A WS-Management fault: typed, with the texts and the raw detail kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WsmanFault {
    /// What it means.
    pub kind: FaultKind,
    /// `f:WSManFault/@Code` (or `p:error_Code` of an `MSFT_WmiError`).
    pub code: Option<u32>,
    /// `s:Code/s:Value` with Windows' prefix: `s:Sender` or `s:Receiver`.
    pub soap_code: Option<String>,
    /// `s:Subcode/s:Value` with Windows' prefix for known namespaces (`w:TimedOut`,
    /// `a:InvalidMessageInformationHeader`), whatever prefix the server used.
    pub subcode: Option<String>,
    /// `s:Reason/s:Text` (whitespace-normalised when parsed).
    pub reason: String,
    /// The innermost `f:Message` text (inside `f:ProviderFault` if there is one), or the
    /// `MSFT_WmiError` message.
    pub message: Option<String>,
    /// `f:WSManFault/@Machine` (`None` when absent or empty).
    pub machine: Option<String>,
    /// `w:FaultDetail` URI.
    pub fault_detail: Option<String>,
    /// `f:ProviderFault/@provider` (e.g. "Shell cmd plugin").
    pub provider: Option<String>,
    /// `f:ProviderFault/@path` (e.g. `%systemroot%\system32\winrscmd.dll`).
    pub provider_path: Option<String>,
    /// True when the detail is (or, when building, should be) a `p:MSFT_WmiError` instead of
    /// an `f:WSManFault` — Windows' shape for QuotaLimit.
    pub wmi_error: bool,
    /// The XML this fault was parsed from (`s:Detail`, else `s:Fault`, else the fragment);
    /// empty for faults built locally.
    pub raw: String,
}

impl fmt::Display for WsmanFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WS-Management fault")?;
        if let Some(code) = self.code {
            write!(f, " {code}")?;
        }
        if let Some(sub) = &self.subcode {
            write!(f, " ({sub})")?;
        }
        if let Some(m) = self.machine.as_deref().filter(|m| !m.is_empty()) {
            write!(f, " from {m}")?;
        }
        let text = self
            .message
            .as_deref()
            .filter(|m| !m.trim().is_empty())
            .unwrap_or(&self.reason);
        write!(f, ": {}", text.trim())
    }
}

// --- Windows' texts (captures; PROTOCOL.md §6; wsmerror.h message table)
const TIMED_OUT_TEXT: &str =
    "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  ";
const INVALID_SELECTORS_REASON: &str =
    "The WS-Management service cannot process the request because the request contained invalid selectors for the resource. ";
const UNKNOWN_COMMAND_TEXT: &str = "The Windows Remote Shell received a request to perform an operation on a command identifier that does not exist. Either the command has completed execution or the client specified an invalid command identifier. ";
const INVALID_HEADER_REASON: &str =
    "The WS-Management service cannot process the request. The request contains one or more invalid SOAP headers. ";
const MISSING_HEADER_TEXT: &str =
    "The WS-Management service cannot process the request. The request does not have all the expected SOAP headers. ";
const PARAMETER_INCORRECT_TEXT: &str = "The parameter is incorrect. ";
const ACCESS_DENIED_TEXT: &str = "Access is denied. ";
const SCHEMA_VALIDATION_TEXT: &str =
    "The SOAP XML in the message does not match the corresponding XML schema definition. Change the XML and retry. ";
const ACTION_NOT_SUPPORTED_TEXT: &str =
    "The WS-Management service does not support the action specified in the request. ";
const FILE_NOT_FOUND_TEXT: &str = "The system cannot find the file specified. ";
const FILENAME_TOO_LONG_TEXT: &str = "The filename or extension is too long. ";
const QUOTA_SHELLS_REASON: &str = "The WS-Management service cannot process the request. The maximum number of concurrent shells for this user has been exceeded. Close existing shells or raise the quota for this user. ";
const SHELL_CMD_PLUGIN: &str = "Shell cmd plugin";
const WINRSCMD_DLL: &str = "%systemroot%\\system32\\winrscmd.dll";

const SENDER: &str = "s:Sender";
const RECEIVER: &str = "s:Receiver";

impl WsmanFault {
    /// A fault with the given parts and nothing else (no detail URI, no provider).
    pub fn new(
        kind: FaultKind,
        code: Option<u32>,
        subcode: &str,
        reason: &str,
        message: Option<&str>,
        machine: &str,
    ) -> Self {
        let receiver = matches!(
            kind,
            FaultKind::OperationTimedOut
                | FaultKind::InternalError
                | FaultKind::FileNotFound
                | FaultKind::FilenameTooLong
        );
        WsmanFault {
            kind,
            code,
            soap_code: Some(if receiver { RECEIVER } else { SENDER }.to_string()),
            subcode: Some(subcode.to_string()),
            reason: reason.to_string(),
            message: message.map(str::to_string),
            machine: Some(machine.to_string()),
            fault_detail: None,
            provider: None,
            provider_path: None,
            wmi_error: false,
            raw: String::new(),
        }
    }

    fn with_detail(mut self, uri: &str) -> Self {
        self.fault_detail = Some(uri.to_string());
        self
    }

    fn by_shell_plugin(mut self) -> Self {
        self.provider = Some(SHELL_CMD_PLUGIN.to_string());
        self.provider_path = Some(WINRSCMD_DLL.to_string());
        self
    }

    /// The Receive long-poll timeout (`fault_operation_timeout.xml`): `s:Receiver`,
    /// `w:TimedOut`, code 2150858793.
    pub fn operation_timed_out(machine: &str) -> Self {
        Self::new(
            FaultKind::OperationTimedOut,
            Some(code::OPERATION_TIMED_OUT),
            "w:TimedOut",
            TIMED_OUT_TEXT,
            Some(TIMED_OUT_TEXT),
            machine,
        )
    }

    /// A request for a shell the server does not have (`fault_shell_not_found_wsmanfault_fragment.xml`;
    /// envelope as for an unknown CommandId).
    pub fn shell_not_found(shell_id: &str, machine: &str) -> Self {
        let message = format!(
            "The request for the Windows Remote Shell with ShellId {shell_id} failed because the shell was not found on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer exists on the server. Provide the correct ShellId or create a new shell and retry the operation. "
        );
        Self::new(
            FaultKind::InvalidSelectors,
            Some(code::INVALID_SELECTORS),
            "w:InvalidSelectors",
            INVALID_SELECTORS_REASON,
            Some(&message),
            machine,
        )
        .with_detail(detail::UNEXPECTED_SELECTORS)
    }

    /// A CommandId the shell does not know (`fault_invalid_selectors_unknown_command_id.xml`).
    pub fn unknown_command_id(machine: &str) -> Self {
        Self::new(
            FaultKind::InvalidSelectors,
            Some(code::INVALID_SELECTORS),
            "w:InvalidSelectors",
            INVALID_SELECTORS_REASON,
            Some(UNKNOWN_COMMAND_TEXT),
            machine,
        )
        .with_detail(detail::UNEXPECTED_SELECTORS)
    }

    /// Selectors missing or wrong for the resource (no ShellId, say), as the shell
    /// provider reports it.
    pub fn invalid_selectors(machine: &str) -> Self {
        Self::new(
            FaultKind::InvalidSelectors,
            Some(code::INVALID_SELECTORS),
            "w:InvalidSelectors",
            INVALID_SELECTORS_REASON,
            Some(INVALID_SELECTORS_REASON),
            machine,
        )
        .with_detail(detail::UNEXPECTED_SELECTORS)
    }

    /// An authenticated user without WinRM access: `f:WSManFault Code="5"` "Access is
    /// denied." (`fault_access_denied_wsmanfault_fragment.xml`; the subcode was never captured
    /// — `w:AccessDenied`, the WS-Management fault for it, is used).
    pub fn access_denied(machine: &str) -> Self {
        Self::new(
            FaultKind::AccessDenied,
            Some(code::ACCESS_DENIED),
            "w:AccessDenied",
            ACCESS_DENIED_TEXT,
            Some(ACCESS_DENIED_TEXT),
            machine,
        )
    }

    /// Receive without a CommandId on a cmd shell (`fault_invalid_parameter_87.xml`).
    pub fn invalid_parameter_receive_without_command(machine: &str) -> Self {
        Self::new(
            FaultKind::InvalidParameter,
            Some(code::INVALID_PARAMETER),
            "w:InvalidParameter",
            PARAMETER_INCORRECT_TEXT,
            Some(PARAMETER_INCORRECT_TEXT),
            machine,
        )
        .with_detail(detail::INVALID_VALUE)
        .by_shell_plugin()
    }

    /// An unparsable `w:OperationTimeout` such as `PT-1S` (`fault_invalid_header_bad_timeout.xml`).
    pub fn invalid_operation_timeout(value: &str, machine: &str) -> Self {
        let message = format!(
            "The WS-Management service cannot process the request. The XML contains an invalid timeout field in the SOAP header: {value}. "
        );
        Self::new(
            FaultKind::InvalidHeader,
            Some(code::INVALID_MESSAGE_INFORMATION_HEADER),
            "a:InvalidMessageInformationHeader",
            INVALID_HEADER_REASON,
            Some(&message),
            machine,
        )
    }

    /// Another invalid header value (e.g. a non-numeric MaxEnvelopeSize).
    pub fn invalid_header(machine: &str) -> Self {
        Self::new(
            FaultKind::InvalidHeader,
            Some(code::INVALID_MESSAGE_INFORMATION_HEADER),
            "a:InvalidMessageInformationHeader",
            INVALID_HEADER_REASON,
            Some(INVALID_HEADER_REASON),
            machine,
        )
    }

    /// A required header (MessageID, Action, ResourceURI) is missing.
    pub fn missing_header(machine: &str) -> Self {
        Self::new(
            FaultKind::InvalidHeader,
            Some(code::MESSAGE_INFORMATION_HEADER_REQUIRED),
            "a:MessageInformationHeaderRequired",
            MISSING_HEADER_TEXT,
            Some(MISSING_HEADER_TEXT),
            machine,
        )
    }

    /// A response that would exceed the client's MaxEnvelopeSize (MS-WSMV 3.1.4.1.7;
    /// message text as quoted in PROTOCOL.md §6).
    pub fn max_envelope_size_exceeded(computed: usize, allowed: usize, machine: &str) -> Self {
        let text = format!(
            "The WS-Management service cannot process the request. The computed response packet size ({computed}) exceeds the maximum envelope size that is allowed ({allowed}). "
        );
        Self::new(
            FaultKind::EnvelopeTooLarge,
            Some(code::MAX_ENVELOPE_SIZE_EXCEEDED),
            "w:EncodingLimit",
            &text,
            Some(&text),
            machine,
        )
        .with_detail(detail::MAX_ENVELOPE_SIZE)
    }

    /// More shells than `MaxShellsPerUser` (`winrb_fault_quota_limit_max_shells.xml`: an
    /// `MSFT_WmiError` detail with `error_Code` 2150859173, no `f:WSManFault`, so no machine).
    pub fn quota_max_shells(max_shells: usize, machine: &str) -> Self {
        let message = format!(
            "The WS-Management service cannot process the request. This user is allowed a maximum number of {max_shells} concurrent shells, which has been exceeded. Close existing shells or raise the quota for this user. "
        );
        let mut f = Self::new(
            FaultKind::QuotaLimit,
            Some(code::QUOTA_MAX_SHELLS),
            "w:QuotaLimit",
            QUOTA_SHELLS_REASON,
            Some(&message),
            machine,
        );
        f.wmi_error = true;
        f.machine = None;
        f
    }

    /// The request XML is not what the service expects.
    pub fn schema_validation(machine: &str) -> Self {
        Self::new(
            FaultKind::SchemaValidation,
            Some(code::SCHEMA_VALIDATION),
            "w:SchemaValidationError",
            SCHEMA_VALIDATION_TEXT,
            Some(SCHEMA_VALIDATION_TEXT),
            machine,
        )
    }

    /// An action (or action/resource pair) the service does not implement.
    pub fn action_not_supported(machine: &str) -> Self {
        Self::new(
            FaultKind::Other,
            Some(code::ACTION_NOT_SUPPORTED),
            "a:ActionNotSupported",
            ACTION_NOT_SUPPORTED_TEXT,
            Some(ACTION_NOT_SUPPORTED_TEXT),
            machine,
        )
    }

    /// `WINRS_SKIP_CMD_SHELL` with an executable that is not found
    /// (`fault_internal_error_file_not_found.xml`).
    pub fn file_not_found(machine: &str) -> Self {
        Self::new(
            FaultKind::FileNotFound,
            Some(code::FILE_NOT_FOUND),
            "w:InternalError",
            FILE_NOT_FOUND_TEXT,
            Some(FILE_NOT_FOUND_TEXT),
            machine,
        )
        .by_shell_plugin()
    }

    /// A command line too long for the shell (`masterzen_fault_filename_too_long.xml`).
    pub fn filename_too_long(machine: &str) -> Self {
        Self::new(
            FaultKind::FilenameTooLong,
            Some(code::FILENAME_TOO_LONG),
            "w:InternalError",
            FILENAME_TOO_LONG_TEXT,
            Some(FILENAME_TOO_LONG_TEXT),
            machine,
        )
        .by_shell_plugin()
    }

    /// The fault Windows answers a request with that [`super::parse_request`] refused.
    pub fn from_request_error(err: &SoapError, machine: &str) -> Self {
        match err {
            SoapError::InvalidTimeout { value } => Self::invalid_operation_timeout(value, machine),
            SoapError::InvalidHeader { .. } => Self::invalid_header(machine),
            SoapError::MissingHeader { .. } => Self::missing_header(machine),
            SoapError::MissingSelector { .. } => Self::invalid_selectors(machine),
            SoapError::Unsupported { .. } => Self::action_not_supported(machine),
            SoapError::Fault(f) => (**f).clone(),
            _ => Self::schema_validation(machine),
        }
    }

    /// `wsa:Action` Windows puts on this fault: the addressing fault action for `a:`
    /// subcodes, the enumeration one for `n:`, else the WS-Management one.
    pub fn action(&self) -> &'static str {
        match self.subcode.as_deref() {
            Some(s) if s.starts_with("a:") => ACTION_ADDRESSING_FAULT,
            Some(s) if s.starts_with("n:") => ACTION_ENUMERATION_FAULT,
            _ => ACTION_WSMAN_FAULT,
        }
    }
}

/// Builds a whole fault envelope as Windows sends it (captures `fault_*.xml`): `s`, `a`, `x`,
/// `e`, `n`, `w`, `p` declared on the envelope, a new MessageID, `a:RelatesTo` when the
/// request's MessageID is known, and `f:WSManFault` (or `p:MSFT_WmiError`) in `s:Detail`.
pub fn build_fault(relates_to: Option<&str>, fault: &WsmanFault) -> String {
    let mut x = String::with_capacity(1600);
    x.push_str(r#"<s:Envelope xml:lang="en-US" xmlns:s=""#);
    for (p, uri) in [
        ("", ns::SOAP),
        ("a", ns::ADDRESSING),
        ("x", ns::TRANSFER),
        ("e", ns::EVENTING),
        ("n", ns::ENUMERATION),
        ("w", ns::WSMAN),
        ("p", ns::MS_WSMAN),
    ] {
        if !p.is_empty() {
            x.push_str(" xmlns:");
            x.push_str(p);
            x.push_str("=\"");
        }
        x.push_str(uri);
        x.push('"');
    }
    x.push_str("><s:Header><a:Action>");
    x.push_str(fault.action());
    x.push_str("</a:Action><a:MessageID>");
    x.push_str(&super::new_message_id());
    x.push_str("</a:MessageID><a:To>");
    x.push_str(super::ANONYMOUS);
    x.push_str("</a:To>");
    if let Some(r) = relates_to {
        x.push_str("<a:RelatesTo>");
        x.push_str(&escape_text(r));
        x.push_str("</a:RelatesTo>");
    }
    x.push_str("</s:Header><s:Body><s:Fault><s:Code><s:Value>");
    x.push_str(&escape_text(fault.soap_code.as_deref().unwrap_or(SENDER)));
    x.push_str("</s:Value>");
    if let Some(sub) = &fault.subcode {
        x.push_str("<s:Subcode><s:Value>");
        x.push_str(&escape_text(sub));
        x.push_str("</s:Value></s:Subcode>");
    }
    x.push_str(r#"</s:Code><s:Reason><s:Text xml:lang="en-US">"#);
    x.push_str(&escape_text(&fault.reason));
    x.push_str("</s:Text></s:Reason><s:Detail>");
    if let Some(d) = &fault.fault_detail {
        x.push_str("<w:FaultDetail>");
        x.push_str(&escape_text(d));
        x.push_str("</w:FaultDetail>");
    }
    let message = fault.message.as_deref().unwrap_or(&fault.reason);
    if fault.wmi_error {
        push_wmi_error(&mut x, fault.code, message);
    } else {
        x.push_str(r#"<f:WSManFault xmlns:f=""#);
        x.push_str(ns::WSMAN_FAULT);
        x.push('"');
        if let Some(c) = fault.code {
            x.push_str(&format!(" Code=\"{c}\""));
        }
        x.push_str(" Machine=\"");
        x.push_str(&escape_attr(fault.machine.as_deref().unwrap_or("")));
        x.push_str("\"><f:Message>");
        match &fault.provider {
            Some(p) => {
                x.push_str("<f:ProviderFault provider=\"");
                x.push_str(&escape_attr(p));
                x.push_str("\" path=\"");
                x.push_str(&escape_attr(fault.provider_path.as_deref().unwrap_or("")));
                x.push_str("\">");
                x.push_str(&escape_text(message));
                x.push_str("</f:ProviderFault>");
            }
            None => x.push_str(&escape_text(message)),
        }
        x.push_str("</f:Message></f:WSManFault>");
    }
    x.push_str("</s:Detail></s:Fault></s:Body></s:Envelope>");
    x
}

/// `p:MSFT_WmiError` as in `winrb_fault_quota_limit_max_shells.xml` (declaring its own `p`).
fn push_wmi_error(x: &mut String, code: Option<u32>, message: &str) {
    let m = escape_text(message);
    let code = code.unwrap_or(0);
    x.push_str(&format!(
        concat!(
            r#"<p:MSFT_WmiError b:IsCIM_Error="true" xmlns:b="{b}" xmlns:cim="{cim}" xmlns:p="{p}" xsi:type="p:MSFT_WmiError_Type" xmlns:xsi="{xsi}">"#,
            r#"<p:CIMStatusCode xsi:type="cim:cimUnsignedInt">27</p:CIMStatusCode>"#,
            r#"<p:CIMStatusCodeDescription xsi:nil="true" xsi:type="cim:cimString"/>"#,
            r#"<p:ErrorSource xsi:nil="true" xsi:type="cim:cimString"/>"#,
            r#"<p:ErrorSourceFormat xsi:type="cim:cimUnsignedShort">0</p:ErrorSourceFormat>"#,
            r#"<p:ErrorType xsi:type="cim:cimUnsignedShort">0</p:ErrorType>"#,
            r#"<p:Message xsi:type="cim:cimString">{m}</p:Message>"#,
            r#"<p:MessageID xsi:type="cim:cimString">HRESULT 0x{hex:08x}</p:MessageID>"#,
            r#"<p:OtherErrorSourceFormat xsi:nil="true" xsi:type="cim:cimString"/>"#,
            r#"<p:OtherErrorType xsi:nil="true" xsi:type="cim:cimString"/>"#,
            r#"<p:OwningEntity xsi:nil="true" xsi:type="cim:cimString"/>"#,
            r#"<p:PerceivedSeverity xsi:type="cim:cimUnsignedShort">0</p:PerceivedSeverity>"#,
            r#"<p:ProbableCause xsi:type="cim:cimUnsignedShort">0</p:ProbableCause>"#,
            r#"<p:ProbableCauseDescription xsi:nil="true" xsi:type="cim:cimString"/>"#,
            r#"<p:error_Category xsi:type="cim:cimUnsignedInt">30</p:error_Category>"#,
            r#"<p:error_Code xsi:type="cim:cimUnsignedInt">{code}</p:error_Code>"#,
            r#"<p:error_Type xsi:type="cim:cimString">HRESULT</p:error_Type>"#,
            r#"<p:error_WindowsErrorMessage xsi:type="cim:cimString">{m}</p:error_WindowsErrorMessage>"#,
            r#"</p:MSFT_WmiError>"#
        ),
        b = ns::CIM_BINDING,
        cim = ns::CIM_COMMON,
        p = ns::WMI_ERROR,
        xsi = ns::XSI,
        m = m,
        hex = code,
        code = code,
    ));
}

/// Parses a fault from a whole envelope, a bare `s:Fault`, or a bare `f:WSManFault`
/// fragment (as clients such as the WinRb gem print it).
pub fn parse_fault(xml: &[u8]) -> Result<WsmanFault, SoapError> {
    let doc = xml::parse(xml)?;
    let root = &doc.root;
    if root.is(ns::SOAP, "Envelope") {
        let fault = root
            .child(ns::SOAP, "Body")
            .and_then(|b| b.child(ns::SOAP, "Fault"))
            .ok_or_else(|| SoapError::Unexpected {
                expected: "s:Fault".into(),
                found: "a message without a fault".into(),
            })?;
        return Ok(fault_from_element(&doc, fault));
    }
    if root.is(ns::SOAP, "Fault") {
        return Ok(fault_from_element(&doc, root));
    }
    if root.is(ns::WSMAN_FAULT, "WSManFault") {
        let mut f = WsmanFault {
            kind: FaultKind::Other,
            code: None,
            soap_code: None,
            subcode: None,
            reason: String::new(),
            message: None,
            machine: None,
            fault_detail: None,
            provider: None,
            provider_path: None,
            wmi_error: false,
            raw: doc.source_of(root).to_string(),
        };
        apply_wsman_fault(&mut f, root);
        f.reason = f.message.clone().unwrap_or_default();
        f.kind = FaultKind::classify(f.code, None);
        return Ok(f);
    }
    Err(SoapError::Unexpected {
        expected: "a SOAP fault".into(),
        found: format!("<{}>", root.name),
    })
}

/// Collapses runs of whitespace (OMI pretty-prints its reason texts over several lines).
fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A QName text rendered with Windows' prefix for its namespace.
fn canonical_qname(e: &Element) -> String {
    match e.qname() {
        (Some(uri), local) => match ns::windows_prefix(uri) {
            Some(p) => format!("{p}:{local}"),
            None => e.trimmed().to_string(),
        },
        (None, _) => e.trimmed().to_string(),
    }
}

pub(crate) fn fault_from_element(doc: &Document, fault: &Element) -> WsmanFault {
    let code_el = fault.child(ns::SOAP, "Code");
    let value = code_el.and_then(|c| c.child(ns::SOAP, "Value"));
    let sub = code_el
        .and_then(|c| c.child(ns::SOAP, "Subcode"))
        .and_then(|s| s.child(ns::SOAP, "Value"));
    let reason = fault
        .child(ns::SOAP, "Reason")
        .and_then(|r| r.child(ns::SOAP, "Text"))
        .map(|t| normalise(&t.text))
        .unwrap_or_default();
    let detail = fault.child(ns::SOAP, "Detail");
    let mut f = WsmanFault {
        kind: FaultKind::Other,
        code: None,
        soap_code: value.map(canonical_qname),
        subcode: sub.map(canonical_qname),
        reason,
        message: None,
        machine: None,
        fault_detail: detail
            .and_then(|d| d.child(ns::WSMAN, "FaultDetail"))
            .map(|e| e.trimmed().to_string())
            .filter(|s| !s.is_empty()),
        provider: None,
        provider_path: None,
        wmi_error: false,
        raw: doc.source_of(detail.unwrap_or(fault)).to_string(),
    };
    if let Some(d) = detail {
        if let Some(wf) = d
            .child(ns::WSMAN_FAULT, "WSManFault")
            .or_else(|| d.descendant(ns::WSMAN_FAULT, "WSManFault"))
        {
            apply_wsman_fault(&mut f, wf);
        } else if let Some(wmi) = d.child(ns::WMI_ERROR, "MSFT_WmiError") {
            f.wmi_error = true;
            f.code = wmi
                .child(ns::WMI_ERROR, "error_Code")
                .and_then(|c| c.trimmed().parse().ok());
            f.message = wmi
                .child(ns::WMI_ERROR, "Message")
                .or_else(|| wmi.child(ns::WMI_ERROR, "error_WindowsErrorMessage"))
                .map(|m| normalise(&m.text))
                .filter(|m| !m.is_empty());
        }
    }
    let sub_q = sub.map(|s| s.qname());
    let sub_pair = match sub_q {
        Some((Some(uri), local)) => Some((uri, local)),
        _ => None,
    };
    f.kind = FaultKind::classify(f.code, sub_pair);
    f
}

/// Reads `Code`, `Machine`, the provider and the innermost message of an `f:WSManFault`.
fn apply_wsman_fault(f: &mut WsmanFault, wf: &Element) {
    f.code = wf.attr("Code").and_then(|c| c.trim().parse().ok());
    f.machine = wf
        .attr("Machine")
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty());
    let mut current = wf;
    // Follow ProviderFault → nested WSManFault chains (bounded by the tree depth).
    for _ in 0..xml::MAX_DEPTH {
        let Some(msg) = current.child(ns::WSMAN_FAULT, "Message") else {
            break;
        };
        if !msg.text.trim().is_empty() {
            f.message = Some(normalise(&msg.text));
            break;
        }
        let Some(pf) = msg.child(ns::WSMAN_FAULT, "ProviderFault") else {
            break;
        };
        if f.provider.is_none() {
            f.provider = pf.attr("provider").map(str::to_string);
            f.provider_path = pf.attr("path").map(str::to_string);
        }
        if !pf.text.trim().is_empty() {
            f.message = Some(normalise(&pf.text));
            break;
        }
        match pf.child(ns::WSMAN_FAULT, "WSManFault") {
            Some(inner) => current = inner,
            None => break,
        }
    }
}
