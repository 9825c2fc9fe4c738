//! The cmdlets the subset knows, behaving (and failing) as on Windows PowerShell 5.1, and
//! the one table that describes them ([`CMDLETS`]: name, aliases, .NET class, parameters,
//! positional order, handler).
//!
//! Error texts come from Windows PowerShell's `ComputerResources` strings and the cmdlets'
//! logic (`Reset-ComputerMachinePassword` binds to LDAP with the credential and calls
//! `SetPassword` on the computer object, then writes the LSA secret; COM/DirectoryServices
//! messages keep their trailing CRLF, which is why some messages end with `\r\n.`).

// Error records are returned by value on cold paths; boxing them buys nothing here.
#![allow(clippy::result_large_err)]

mod channel;
mod cim;
mod membership;
mod objects;
mod output;
mod registry;
mod winevent;

use super::ps::binding::{Bound, ParamSpec};
use super::ps::engine::Engine;
use super::ps::error::ErrorRecord;
use super::ps::value::{PsCred, PsObject, Value};

/// What a cmdlet did.
#[derive(Debug, Default)]
pub(crate) struct CmdOutcome {
    pub(crate) output: Vec<Value>,
    /// Non-terminating errors.
    pub(crate) errors: Vec<ErrorRecord>,
    /// A statement-terminating error (ThrowTerminatingError).
    pub(crate) terminating: Option<ErrorRecord>,
    pub(crate) warnings: Vec<String>,
    pub(crate) verbose: Vec<String>,
}

impl CmdOutcome {
    pub(crate) fn out(v: Value) -> Self {
        CmdOutcome {
            output: vec![v],
            ..CmdOutcome::default()
        }
    }

    pub(crate) fn none() -> Self {
        CmdOutcome::default()
    }

    pub(crate) fn terminate(e: ErrorRecord) -> Self {
        CmdOutcome {
            terminating: Some(e),
            ..CmdOutcome::default()
        }
    }

    pub(crate) fn error(e: ErrorRecord) -> Self {
        CmdOutcome {
            errors: vec![e],
            ..CmdOutcome::default()
        }
    }
}

/// Runs a cmdlet: the engine (the lab's state, stdout), the bound arguments, the pipeline
/// input.
pub(crate) type Handler = fn(&mut Engine<'_, '_>, &Bound, Vec<Value>) -> CmdOutcome;

/// One cmdlet: everything the binder and the invoker need to know about it.
#[derive(Debug)]
pub(crate) struct CmdletSpec {
    /// The canonical name (`Write-Output`).
    pub(crate) name: &'static str,
    /// Other names it answers to (`echo`, `write`).
    pub(crate) aliases: &'static [&'static str],
    /// The full .NET class, which FullyQualifiedErrorIds end with.
    pub(crate) class: &'static str,
    /// Its own parameters (the common ones are added by the binder).
    pub(crate) params: &'static [ParamSpec],
    /// The parameters values without a name bind to, in order.
    pub(crate) positional: &'static [&'static str],
    /// What it does.
    pub(crate) handler: Handler,
}

const fn v(name: &'static str) -> ParamSpec {
    ParamSpec::value(name, &[])
}

const fn sw(name: &'static str) -> ParamSpec {
    ParamSpec::switch(name, &[])
}

const CIM_PARAMS: &[ParamSpec] = &[
    ParamSpec::value("ClassName", &["Class"]),
    v("Filter"),
    v("Namespace"),
    ParamSpec::value("ComputerName", &["CN"]),
];

const WRITE_MESSAGE: &[ParamSpec] = &[ParamSpec::value("Message", &["Msg"])];

/// Every cmdlet the lab knows.
pub(crate) static CMDLETS: &[CmdletSpec] = &[
    CmdletSpec {
        name: "Write-Output",
        aliases: &["echo", "write"],
        class: "Microsoft.PowerShell.Commands.WriteOutputCommand",
        params: &[v("InputObject"), sw("NoEnumerate")],
        positional: &["InputObject"],
        handler: |_, b, input| output::write_output(b, input),
    },
    CmdletSpec {
        name: "Write-Host",
        aliases: &[],
        class: "Microsoft.PowerShell.Commands.WriteHostCommand",
        params: &[
            v("Object"),
            sw("NoNewline"),
            v("ForegroundColor"),
            v("Separator"),
        ],
        positional: &["Object"],
        handler: |eng, b, _| output::write_host(eng, b),
    },
    CmdletSpec {
        name: "Write-Error",
        aliases: &[],
        class: "Microsoft.PowerShell.Commands.WriteErrorCommand",
        params: WRITE_MESSAGE,
        positional: &["Message"],
        handler: |_, b, _| output::write_error(b),
    },
    CmdletSpec {
        name: "Write-Warning",
        aliases: &[],
        class: "Microsoft.PowerShell.Commands.WriteWarningCommand",
        params: WRITE_MESSAGE,
        positional: &["Message"],
        handler: |_, b, _| output::write_warning(b),
    },
    CmdletSpec {
        name: "Write-Verbose",
        aliases: &[],
        class: "Microsoft.PowerShell.Commands.WriteVerboseCommand",
        params: WRITE_MESSAGE,
        positional: &["Message"],
        handler: |_, b, _| output::write_verbose(b),
    },
    CmdletSpec {
        name: "Out-Null",
        aliases: &[],
        class: "Microsoft.PowerShell.Commands.OutNullCommand",
        params: &[v("InputObject")],
        positional: &[],
        handler: |_, _, _| CmdOutcome::none(),
    },
    CmdletSpec {
        name: "Out-String",
        aliases: &[],
        class: "Microsoft.PowerShell.Commands.OutStringCommand",
        params: &[v("InputObject"), sw("Stream"), v("Width")],
        positional: &[],
        handler: |_, _, input| output::out_string(&input),
    },
    CmdletSpec {
        name: "Select-Object",
        aliases: &["select"],
        class: "Microsoft.PowerShell.Commands.SelectObjectCommand",
        params: &[v("ExpandProperty"), v("Property"), v("First")],
        positional: &["Property"],
        handler: |_, b, input| output::select_object(b, input),
    },
    CmdletSpec {
        name: "Get-CimInstance",
        aliases: &[],
        class: "Microsoft.Management.Infrastructure.CimCmdlets.GetCimInstanceCommand",
        params: CIM_PARAMS,
        positional: &["ClassName"],
        handler: |eng, b, _| cim::cim(eng, "Get-CimInstance", b),
    },
    CmdletSpec {
        name: "Get-WmiObject",
        aliases: &["gwmi"],
        class: "Microsoft.PowerShell.Commands.GetWmiObjectCommand",
        params: CIM_PARAMS,
        positional: &["ClassName"],
        handler: |eng, b, _| cim::cim(eng, "Get-WmiObject", b),
    },
    CmdletSpec {
        name: "Get-ItemProperty",
        aliases: &["gp"],
        class: "Microsoft.PowerShell.Commands.GetItemPropertyCommand",
        params: &[
            v("Path"),
            v("Name"),
            ParamSpec::value("LiteralPath", &["PSPath"]),
        ],
        positional: &["Path", "Name"],
        handler: |eng, b, _| registry::get_item_property(eng, b),
    },
    CmdletSpec {
        name: "Test-ComputerSecureChannel",
        aliases: &[],
        class: "Microsoft.PowerShell.Commands.TestComputerSecureChannelCommand",
        params: &[sw("Repair"), v("Server"), v("Credential")],
        positional: &[],
        handler: |eng, b, _| channel::test_secure_channel(eng, b),
    },
    CmdletSpec {
        name: "Reset-ComputerMachinePassword",
        aliases: &[],
        class: "Microsoft.PowerShell.Commands.ResetComputerMachinePasswordCommand",
        params: &[v("Server"), v("Credential")],
        positional: &[],
        handler: |eng, b, _| channel::reset_machine_password(eng, b),
    },
    CmdletSpec {
        name: "New-Object",
        aliases: &[],
        class: "Microsoft.PowerShell.Commands.NewObjectCommand",
        params: &[
            v("TypeName"),
            ParamSpec::value("ArgumentList", &["Args"]),
            v("Property"),
        ],
        positional: &["TypeName", "ArgumentList"],
        handler: |_, b, _| objects::new_object(b),
    },
    CmdletSpec {
        name: "ConvertTo-SecureString",
        aliases: &[],
        class: "Microsoft.PowerShell.Commands.ConvertToSecureStringCommand",
        params: &[v("String"), sw("AsPlainText"), sw("Force"), v("Key")],
        positional: &["String"],
        handler: |_, b, _| objects::convert_to_secure_string(b),
    },
    CmdletSpec {
        name: "Remove-Computer",
        aliases: &[],
        class: "Microsoft.PowerShell.Commands.RemoveComputerCommand",
        params: &[
            ParamSpec::value("UnjoinDomainCredential", &["Credential"]),
            v("LocalCredential"),
            v("WorkgroupName"),
            sw("Force"),
            sw("Restart"),
            sw("PassThru"),
            ParamSpec::value("ComputerName", &["CN"]),
        ],
        positional: &["UnjoinDomainCredential"],
        handler: |eng, b, _| membership::remove_computer(eng, b),
    },
    CmdletSpec {
        name: "Add-Computer",
        aliases: &[],
        class: "Microsoft.PowerShell.Commands.AddComputerCommand",
        params: &[
            ParamSpec::value("DomainName", &["DN", "Domain"]),
            v("Credential"),
            ParamSpec::value("Server", &["DC"]),
            ParamSpec::value("OUPath", &["OU"]),
            sw("Force"),
            sw("Restart"),
            sw("PassThru"),
            v("Options"),
            v("NewName"),
            ParamSpec::value("ComputerName", &["CN"]),
            v("LocalCredential"),
        ],
        positional: &["DomainName", "Credential"],
        handler: |eng, b, _| membership::add_computer(eng, b),
    },
    CmdletSpec {
        name: "Restart-Computer",
        aliases: &[],
        class: "Microsoft.PowerShell.Commands.RestartComputerCommand",
        params: &[
            ParamSpec::switch("Force", &["f"]),
            ParamSpec::value("ComputerName", &["CN", "__SERVER", "Server", "IPAddress"]),
            sw("Wait"),
        ],
        positional: &["ComputerName"],
        handler: |eng, b, _| membership::restart_computer(eng, b),
    },
    CmdletSpec {
        name: "Get-WinEvent",
        aliases: &[],
        class: "Microsoft.PowerShell.Commands.GetWinEventCommand",
        params: &[
            v("FilterHashtable"),
            v("MaxEvents"),
            v("LogName"),
            sw("Oldest"),
        ],
        positional: &["LogName"],
        handler: |eng, b, _| winevent::get_win_event(eng, b),
    },
];

/// The cmdlet a command name means (its name or an alias, any case).
pub(crate) fn lookup(name: &str) -> Option<&'static CmdletSpec> {
    CMDLETS.iter().find(|c| {
        c.name.eq_ignore_ascii_case(name) || c.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    })
}

/// Full .NET class of a cmdlet (for FullyQualifiedErrorId); empty for an unknown name.
pub(crate) fn class_of(name: &str) -> &'static str {
    lookup(name).map_or("", |c| c.class)
}

fn err(
    cmdlet: &str,
    message: String,
    fqid: &str,
    category: &str,
    target: &str,
    reason: &str,
) -> ErrorRecord {
    ErrorRecord::cmdlet(
        cmdlet,
        class_of(cmdlet),
        message,
        fqid,
        category,
        target,
        reason,
    )
}

fn obj(type_name: &str, text: String, props: Vec<(&str, Value)>) -> Value {
    Value::Obj(Box::new(PsObject {
        type_name: type_name.into(),
        props: props.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        text,
    }))
}

/// Seconds from 1601-01-01 (FILETIME's epoch) to 1970-01-01 (Unix's).
const FILETIME_UNIX_SECS: i64 = 11_644_473_600;

/// `MM/dd/yyyy HH:mm:ss` (invariant culture, as string expansion prints a DateTime).
fn datetime_text(filetime: u64) -> String {
    let secs = i64::try_from(filetime / 10_000_000).unwrap_or(i64::MAX);
    match time::OffsetDateTime::from_unix_timestamp(secs.saturating_sub(FILETIME_UNIX_SECS)) {
        Ok(t) => {
            let ((y, m, d), (hh, mm, ss)) = (t.to_calendar_date(), t.to_hms());
            let m = u8::from(m);
            format!("{m:02}/{d:02}/{y:04} {hh:02}:{mm:02}:{ss:02}")
        }
        Err(_) => filetime.to_string(),
    }
}

fn credential_arg(cmdlet: &str, b: &Bound, name: &str) -> Result<Option<PsCred>, ErrorRecord> {
    match b.get(name) {
        None => Ok(None),
        Some(Value::Null) => Err(ErrorRecord {
            exception_type: "System.Management.Automation.ParameterBindingValidationException".into(),
            ..err(
                cmdlet,
                format!("Cannot validate argument on parameter '{name}'. The argument is null or empty. Provide an argument that is not null or empty, and then try the command again."),
                "ParameterArgumentValidationError",
                "InvalidData",
                "",
                "ParameterBindingValidationException",
            )
        }),
        Some(Value::Cred(c)) => Ok(Some((**c).clone())),
        Some(_) => Err(ErrorRecord {
            exception_type: "System.Management.Automation.Host.HostException".into(),
            ..err(
                cmdlet,
                "PowerShell is in NonInteractive mode. Read and Prompt functionality is not available.".into(),
                "ParameterArgumentTransformationError",
                "InvalidData",
                "",
                "ParameterBindingArgumentTransformationException",
            )
        }),
    }
}

/// The host name .NET's `Dns.GetHostName()` gives (the error target of these cmdlets).
fn host_name(eng: &Engine<'_, '_>) -> String {
    eng.env
        .st
        .host(eng.env.host)
        .map(|h| h.computer_name.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::LAB_EPOCH_FILETIME;
    use secrecy::{ExposeSecret, SecretString};

    #[test]
    fn datetime_of_lab_epoch() {
        assert_eq!(datetime_text(LAB_EPOCH_FILETIME), "11/01/2025 00:00:00");
    }

    #[test]
    fn secret_not_in_debug() {
        let c = PsCred {
            user: "u".into(),
            password: SecretString::from("hunter2"),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(c.password.expose_secret(), "hunter2");
    }

    #[test]
    fn classes_follow_the_powershell_naming() {
        // Microsoft.PowerShell.Commands.<Verb><Noun>Command, except the CIM cmdlets'
        // own namespace.
        for c in CMDLETS {
            if c.name == "Get-CimInstance" {
                assert!(c
                    .class
                    .starts_with("Microsoft.Management.Infrastructure.CimCmdlets."));
                continue;
            }
            assert_eq!(
                c.class,
                format!(
                    "Microsoft.PowerShell.Commands.{}Command",
                    c.name.replace('-', "")
                ),
            );
        }
    }

    #[test]
    fn names_and_aliases_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for c in CMDLETS {
            for n in std::iter::once(&c.name).chain(c.aliases) {
                assert!(seen.insert(n.to_ascii_lowercase()), "{n} twice");
            }
        }
        assert_eq!(lookup("ECHO").map(|c| c.name), Some("Write-Output"));
        assert_eq!(
            class_of("gwmi"),
            "Microsoft.PowerShell.Commands.GetWmiObjectCommand"
        );
        assert_eq!(class_of("nope"), "");
    }
}
