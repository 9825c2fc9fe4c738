//! XML namespace URIs of WS-Management and the Windows Remote Shell (MS-WSMV 2.2.1), with
//! the prefixes Windows itself writes in its responses (`s`, `a`, `x`, `w`, `p`, `rsp`, `f`,
//! `e`, `n`, `cfg`). Parsing never looks at prefixes — clients and servers all choose their
//! own — but the builders use Windows' so that our output reads like a capture.

/// SOAP 1.2 envelope (`s`).
pub const SOAP: &str = "http://www.w3.org/2003/05/soap-envelope";
/// WS-Addressing 2004/08 (`a`).
pub const ADDRESSING: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing";
/// WS-Transfer (`x`).
pub const TRANSFER: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer";
/// WS-Eventing (`e`).
pub const EVENTING: &str = "http://schemas.xmlsoap.org/ws/2004/08/eventing";
/// WS-Enumeration (`n`).
pub const ENUMERATION: &str = "http://schemas.xmlsoap.org/ws/2004/09/enumeration";
/// DMTF WS-Management (`w`).
pub const WSMAN: &str = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd";
/// Microsoft WS-Management extensions (`p`): DataLocale, SessionId, ActivityId.
pub const MS_WSMAN: &str = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd";
/// Windows Remote Shell (`rsp`).
pub const SHELL: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell";
/// The `f:WSManFault` detail element (`f`).
pub const WSMAN_FAULT: &str = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault";
/// The WinRM configuration resource (`cfg`).
pub const CONFIG: &str = "http://schemas.microsoft.com/wbem/wsman/1/config";
/// `MSFT_WmiError` fault details (WMI-style errors, e.g. QuotaLimit).
pub const WMI_ERROR: &str = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/MSFT_WmiError";
/// CIM binding (`b`, used by `MSFT_WmiError`).
pub const CIM_BINDING: &str = "http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd";
/// CIM common types (`cim`).
pub const CIM_COMMON: &str = "http://schemas.dmtf.org/wbem/wscim/1/common";
/// XML Schema instance (`xsi`).
pub const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
/// The `xml:` prefix (`xml:lang`).
pub const XML: &str = "http://www.w3.org/XML/1998/namespace";
/// PowerShell CLIXML (`#< CLIXML` documents on stderr).
pub const POWERSHELL_CLIXML: &str = "http://schemas.microsoft.com/powershell/2004/04";

/// The prefix Windows uses for a namespace URI in its own messages, if it is one of ours.
pub fn windows_prefix(uri: &str) -> Option<&'static str> {
    Some(match uri {
        SOAP => "s",
        ADDRESSING => "a",
        TRANSFER => "x",
        EVENTING => "e",
        ENUMERATION => "n",
        WSMAN => "w",
        MS_WSMAN => "p",
        SHELL => "rsp",
        WSMAN_FAULT => "f",
        CONFIG => "cfg",
        _ => return None,
    })
}
