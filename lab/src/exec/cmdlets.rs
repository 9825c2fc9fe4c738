//! The cmdlets the subset knows, behaving (and failing) as on Windows PowerShell 5.1.
//!
//! Error texts come from Windows PowerShell's `ComputerResources` strings and the cmdlets'
//! logic (`Reset-ComputerMachinePassword` binds to LDAP with the credential and calls
//! `SetPassword` on the computer object, then writes the LSA secret; COM/DirectoryServices
//! messages keep their trailing CRLF, which is why some messages end with `\r\n.`).

// Error records are returned by value on cold paths; boxing them buys nothing here.
#![allow(clippy::result_large_err)]

use secrecy::SecretString;

use super::clixml::ErrorRecord;
use super::ps::{Bound, CmdOutcome, Engine, ParamSpec, PsCred, PsObject, Value};
use crate::domain::{
    filetime_at, DcIndex, Ownership, ReuseVerdict, ACCOUNT_REUSE_BLOCKED_MESSAGE,
    MACHINE_ACCOUNT_QUOTA_EXCEEDED_MESSAGE,
};
use crate::host::{Membership, PowerState};

const NS: &str = "Microsoft.PowerShell.Commands";

type P = (&'static str, bool, &'static [&'static str]);

/// Canonical name of a cmdlet (by lower-case name or alias).
fn canonical(lname: &str) -> Option<&'static str> {
    Some(match lname {
        "write-output" | "echo" | "write" => "Write-Output",
        "write-host" => "Write-Host",
        "write-error" => "Write-Error",
        "write-warning" => "Write-Warning",
        "write-verbose" => "Write-Verbose",
        "out-null" => "Out-Null",
        "out-string" => "Out-String",
        "select-object" | "select" => "Select-Object",
        "get-ciminstance" => "Get-CimInstance",
        "get-wmiobject" | "gwmi" => "Get-WmiObject",
        "get-itemproperty" | "gp" => "Get-ItemProperty",
        "test-computersecurechannel" => "Test-ComputerSecureChannel",
        "reset-computermachinepassword" => "Reset-ComputerMachinePassword",
        "new-object" => "New-Object",
        "convertto-securestring" => "ConvertTo-SecureString",
        "remove-computer" => "Remove-Computer",
        "add-computer" => "Add-Computer",
        "restart-computer" => "Restart-Computer",
        "get-winevent" => "Get-WinEvent",
        _ => return None,
    })
}

/// Full .NET class of a cmdlet (for FullyQualifiedErrorId).
pub(crate) fn class_of(name: &str) -> String {
    let Some(c) = canonical(&name.to_ascii_lowercase()) else {
        return String::new();
    };
    if c == "Get-CimInstance" {
        return "Microsoft.Management.Infrastructure.CimCmdlets.GetCimInstanceCommand".into();
    }
    format!("{NS}.{}Command", c.replace('-', ""))
}

/// Parameters of a cmdlet.
pub(crate) fn spec(lname: &str) -> Option<ParamSpec> {
    const WRITE_OUTPUT: &[P] = &[("InputObject", false, &[]), ("NoEnumerate", true, &[])];
    const WRITE_HOST: &[P] = &[
        ("Object", false, &[]),
        ("NoNewline", true, &[]),
        ("ForegroundColor", false, &[]),
        ("Separator", false, &[]),
    ];
    const WRITE_MSG: &[P] = &[("Message", false, &["Msg"])];
    const OUT_NULL: &[P] = &[("InputObject", false, &[])];
    const OUT_STRING: &[P] = &[
        ("InputObject", false, &[]),
        ("Stream", true, &[]),
        ("Width", false, &[]),
    ];
    const SELECT: &[P] = &[
        ("ExpandProperty", false, &[]),
        ("Property", false, &[]),
        ("First", false, &[]),
    ];
    const CIM: &[P] = &[
        ("ClassName", false, &["Class"]),
        ("Filter", false, &[]),
        ("Namespace", false, &[]),
        ("ComputerName", false, &["CN"]),
    ];
    const GIP: &[P] = &[
        ("Path", false, &[]),
        ("Name", false, &[]),
        ("LiteralPath", false, &["PSPath"]),
    ];
    const TCSC: &[P] = &[
        ("Repair", true, &[]),
        ("Server", false, &[]),
        ("Credential", false, &[]),
    ];
    const RCMP: &[P] = &[("Server", false, &[]), ("Credential", false, &[])];
    const NEWOBJ: &[P] = &[
        ("TypeName", false, &[]),
        ("ArgumentList", false, &["Args"]),
        ("Property", false, &[]),
    ];
    const CTSS: &[P] = &[
        ("String", false, &[]),
        ("AsPlainText", true, &[]),
        ("Force", true, &[]),
        ("Key", false, &[]),
    ];
    const REMOVE: &[P] = &[
        ("UnjoinDomainCredential", false, &["Credential"]),
        ("LocalCredential", false, &[]),
        ("WorkgroupName", false, &[]),
        ("Force", true, &[]),
        ("Restart", true, &[]),
        ("PassThru", true, &[]),
        ("ComputerName", false, &["CN"]),
    ];
    const ADD: &[P] = &[
        ("DomainName", false, &["DN", "Domain"]),
        ("Credential", false, &[]),
        ("Server", false, &["DC"]),
        ("OUPath", false, &["OU"]),
        ("Force", true, &[]),
        ("Restart", true, &[]),
        ("PassThru", true, &[]),
        ("Options", false, &[]),
        ("NewName", false, &[]),
        ("ComputerName", false, &["CN"]),
        ("LocalCredential", false, &[]),
    ];
    const WINEVENT: &[P] = &[
        ("FilterHashtable", false, &[]),
        ("MaxEvents", false, &[]),
        ("LogName", false, &[]),
        ("Oldest", true, &[]),
    ];
    const RESTART: &[P] = &[
        ("Force", true, &["f"]),
        (
            "ComputerName",
            false,
            &["CN", "__SERVER", "Server", "IPAddress"],
        ),
        ("Wait", true, &[]),
    ];
    let (params, positional): (&'static [P], &'static [&'static str]) = match canonical(lname)? {
        "Write-Output" => (WRITE_OUTPUT, &["InputObject"]),
        "Write-Host" => (WRITE_HOST, &["Object"]),
        "Write-Error" | "Write-Warning" | "Write-Verbose" => (WRITE_MSG, &["Message"]),
        "Out-Null" => (OUT_NULL, &[]),
        "Out-String" => (OUT_STRING, &[]),
        "Select-Object" => (SELECT, &["Property"]),
        "Get-CimInstance" | "Get-WmiObject" => (CIM, &["ClassName"]),
        "Get-ItemProperty" => (GIP, &["Path", "Name"]),
        "Test-ComputerSecureChannel" => (TCSC, &[]),
        "Reset-ComputerMachinePassword" => (RCMP, &[]),
        "New-Object" => (NEWOBJ, &["TypeName", "ArgumentList"]),
        "ConvertTo-SecureString" => (CTSS, &["String"]),
        "Remove-Computer" => (REMOVE, &["UnjoinDomainCredential"]),
        "Add-Computer" => (ADD, &["DomainName", "Credential"]),
        "Restart-Computer" => (RESTART, &["ComputerName"]),
        "Get-WinEvent" => (WINEVENT, &["LogName"]),
        _ => return None,
    };
    Some(ParamSpec { params, positional })
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
        &class_of(cmdlet),
        message,
        fqid,
        category,
        target,
        reason,
    )
}

/// Runs a cmdlet.
pub(crate) fn invoke(
    eng: &mut Engine<'_, '_>,
    lname: &str,
    b: &Bound,
    input: Vec<Value>,
) -> CmdOutcome {
    let Some(name) = canonical(lname) else {
        return CmdOutcome::none();
    };
    match name {
        "Write-Output" => {
            let mut out = Vec::new();
            if let Some(v) = b.get("InputObject") {
                match v {
                    Value::Array(items) if !b.switch("NoEnumerate") => {
                        out.extend(items.iter().cloned())
                    }
                    other => out.push(other.clone()),
                }
            }
            out.extend(input);
            CmdOutcome {
                output: out,
                ..CmdOutcome::default()
            }
        }
        "Write-Host" => {
            let text = b.get("Object").map(Value::to_ps_string).unwrap_or_default();
            eng.stdout.push_str(&text);
            if !b.switch("NoNewline") {
                eng.stdout.push('\n');
            }
            CmdOutcome::none()
        }
        "Write-Error" => {
            let msg = b.str("Message").unwrap_or_default();
            CmdOutcome::error(ErrorRecord {
                exception_type: "Microsoft.PowerShell.Commands.WriteErrorException".into(),
                ..err(
                    "Write-Error",
                    msg,
                    "Microsoft.PowerShell.Commands.WriteErrorException",
                    "NotSpecified",
                    "",
                    "WriteErrorException",
                )
            })
            .with_plain_fqid("Microsoft.PowerShell.Commands.WriteErrorException")
        }
        "Write-Warning" => CmdOutcome {
            warnings: vec![b.str("Message").unwrap_or_default()],
            ..CmdOutcome::default()
        },
        "Write-Verbose" => CmdOutcome {
            verbose: vec![b.str("Message").unwrap_or_default()],
            ..CmdOutcome::default()
        },
        "Out-Null" => CmdOutcome::none(),
        "Out-String" => {
            let text: Vec<String> = input.iter().map(Value::to_ps_string).collect();
            CmdOutcome::out(Value::Str(if text.is_empty() {
                String::new()
            } else {
                format!("{}\r\n", text.join("\r\n"))
            }))
        }
        "Select-Object" => {
            if let Some(p) = b.str("ExpandProperty") {
                let vals = input
                    .iter()
                    .map(|v| match v {
                        Value::Obj(o) => o.get(&p).cloned().unwrap_or(Value::Null),
                        _ => Value::Null,
                    })
                    .collect();
                return CmdOutcome {
                    output: vals,
                    ..CmdOutcome::default()
                };
            }
            CmdOutcome {
                output: input,
                ..CmdOutcome::default()
            }
        }
        "Get-CimInstance" | "Get-WmiObject" => cim(eng, name, b),
        "Get-ItemProperty" => get_item_property(eng, b),
        "Test-ComputerSecureChannel" => test_secure_channel(eng, b),
        "Reset-ComputerMachinePassword" => reset_machine_password(eng, b),
        "New-Object" => new_object(b),
        "ConvertTo-SecureString" => convert_to_secure_string(b),
        "Remove-Computer" => remove_computer(eng, b),
        "Add-Computer" => add_computer(eng, b),
        "Restart-Computer" => restart_computer(eng, b),
        "Get-WinEvent" => get_win_event(eng, b),
        _ => CmdOutcome::none(),
    }
}

impl CmdOutcome {
    fn with_plain_fqid(mut self, fqid: &str) -> Self {
        for e in &mut self.errors {
            e.fqid = fqid.to_string();
        }
        self
    }
}

fn obj(type_name: &str, text: String, props: Vec<(&str, Value)>) -> Value {
    Value::Obj(Box::new(PsObject {
        type_name: type_name.into(),
        props: props.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        text,
    }))
}

/// `MM/dd/yyyy HH:mm:ss` (invariant culture, as string expansion prints a DateTime).
fn datetime_text(filetime: u64) -> String {
    let secs = filetime / 10_000_000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Days since 1601-01-01 → civil date (proleptic Gregorian).
    let z = days - 134_774 + 719_468; // shift to days since 0000-03-01 via 1970 epoch
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{m:02}/{d:02}/{y:04} {:02}:{:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

fn cim(eng: &mut Engine<'_, '_>, cmdlet: &str, b: &Bound) -> CmdOutcome {
    let class = b.str("ClassName").unwrap_or_default();
    let Some(h) = eng.env.st.host(eng.env.host).cloned() else {
        return CmdOutcome::none();
    };
    let domain = eng.env.st.domain.dns_name.clone();
    let server = h.os == crate::host::HostOs::Server2022;
    let objects: Vec<Value> = match class.to_ascii_lowercase().as_str() {
        "win32_computersystem" => {
            let joined = h.joined();
            // Win32_ComputerSystem.DomainRole: 0/2 standalone workstation/server, 1/3
            // member, 4 backup DC, 5 primary DC (the PDC emulator).
            let role = match (joined, server) {
                _ if h.domain_controller => 4,
                (false, false) => 0,
                (true, false) => 1,
                (false, true) => 2,
                (true, true) => 3,
            };
            vec![obj(
                "Microsoft.Management.Infrastructure.CimInstance#root/cimv2/Win32_ComputerSystem",
                format!("Win32_ComputerSystem (Name = \"{}\")", h.computer_name),
                vec![
                    ("Name", Value::Str(h.computer_name.clone())),
                    (
                        "Domain",
                        Value::Str(if joined {
                            domain.clone()
                        } else {
                            h.workgroup().unwrap_or("WORKGROUP").to_string()
                        }),
                    ),
                    ("PartOfDomain", Value::Bool(joined)),
                    ("DNSHostName", Value::Str(h.dns_label())),
                    (
                        "Workgroup",
                        if joined {
                            Value::Null
                        } else {
                            Value::Str(h.workgroup().unwrap_or("WORKGROUP").to_string())
                        },
                    ),
                    ("DomainRole", Value::Int(role)),
                    ("Manufacturer", Value::Str("Microsoft Corporation".into())),
                    ("Model", Value::Str("Virtual Machine".into())),
                ],
            )]
        }
        "win32_operatingsystem" => vec![obj(
            "Microsoft.Management.Infrastructure.CimInstance#root/cimv2/Win32_OperatingSystem",
            String::new(),
            vec![
                ("Caption", Value::Str(h.os.caption().into())),
                ("Version", Value::Str(h.os.version().into())),
                (
                    "BuildNumber",
                    Value::Str(h.os.version().rsplit('.').next().unwrap_or("").into()),
                ),
                ("CSName", Value::Str(h.computer_name.clone())),
                (
                    "LastBootUpTime",
                    Value::Str(datetime_text(filetime_at(h.last_boot))),
                ),
            ],
        )],
        "win32_useraccount" => {
            let mut list: Vec<Value> = h
                .local_accounts
                .iter()
                .map(|a| {
                    obj(
                        "Microsoft.Management.Infrastructure.CimInstance#root/cimv2/Win32_UserAccount",
                        format!("Win32_UserAccount (Name = \"{}\", Domain = \"{}\")", a.name, h.computer_name),
                        vec![
                            ("Name", Value::Str(a.name.clone())),
                            ("Domain", Value::Str(h.computer_name.clone())),
                            ("Caption", Value::Str(format!("{}\\{}", h.computer_name, a.name))),
                            ("SID", Value::Str(format!("{}-{}", h.machine_sid, a.rid))),
                            ("Disabled", Value::Bool(!a.enabled)),
                            ("LocalAccount", Value::Bool(true)),
                            ("AccountType", Value::Int(512)),
                        ],
                    )
                })
                .collect();
            if h.joined() {
                let netbios = eng.env.st.domain.netbios.clone();
                let dsid = eng.env.st.domain.sid.clone();
                for u in &eng.env.st.domain.users {
                    list.push(obj(
                        "Microsoft.Management.Infrastructure.CimInstance#root/cimv2/Win32_UserAccount",
                        format!("Win32_UserAccount (Name = \"{}\", Domain = \"{netbios}\")", u.sam),
                        vec![
                            ("Name", Value::Str(u.sam.clone())),
                            ("Domain", Value::Str(netbios.clone())),
                            ("Caption", Value::Str(format!("{netbios}\\{}", u.sam))),
                            ("SID", Value::Str(format!("{dsid}-{}", u.rid))),
                            ("Disabled", Value::Bool(false)),
                            ("LocalAccount", Value::Bool(false)),
                            ("AccountType", Value::Int(512)),
                        ],
                    ));
                }
            }
            list
        }
        _ => {
            return CmdOutcome::error(ErrorRecord {
                exception_type: "Microsoft.Management.Infrastructure.CimException".into(),
                ..err(
                    cmdlet,
                    "Invalid class ".into(),
                    "HRESULT 0x80041010",
                    "MetadataError",
                    &format!("root\\cimv2:{class}"),
                    "CimException",
                )
            })
        }
    };
    let filter = b.str("Filter");
    let mut out = Vec::new();
    for o in objects {
        match &filter {
            None => out.push(o),
            Some(f) => match wql_match(&o, f) {
                Some(true) => out.push(o),
                Some(false) => {}
                None => {
                    return CmdOutcome::error(err(
                        cmdlet,
                        "Invalid query ".into(),
                        "HRESULT 0x80041017",
                        "InvalidArgument",
                        "",
                        "CimException",
                    ))
                }
            },
        }
    }
    CmdOutcome {
        output: out,
        ..CmdOutcome::default()
    }
}

/// A tiny WQL WHERE evaluator: `A=B AND C LIKE 'x%'` (None when it cannot parse).
fn wql_match(o: &Value, filter: &str) -> Option<bool> {
    let Value::Obj(o) = o else { return Some(false) };
    let lower = filter.to_ascii_lowercase();
    let mut rest = filter;
    let mut rest_lower = lower.as_str();
    let mut all = true;
    loop {
        let (cond, next) = match rest_lower.find(" and ") {
            Some(i) => (rest.get(..i)?, rest.get(i + 5..)),
            None => (rest, None),
        };
        all &= wql_cond(o, cond.trim())?;
        match next {
            Some(n) => {
                let consumed = rest.len() - n.len();
                rest = n;
                rest_lower = rest_lower.get(consumed..)?;
            }
            None => break,
        }
    }
    Some(all)
}

fn wql_cond(o: &PsObject, cond: &str) -> Option<bool> {
    let lower = cond.to_ascii_lowercase();
    let (prop, op, val) = if let Some(i) = lower.find(" like ") {
        (cond.get(..i)?.trim(), "like", cond.get(i + 6..)?.trim())
    } else if let Some(i) = cond.find("<>") {
        (cond.get(..i)?.trim(), "<>", cond.get(i + 2..)?.trim())
    } else if let Some(i) = cond.find('=') {
        (cond.get(..i)?.trim(), "=", cond.get(i + 1..)?.trim())
    } else {
        return None;
    };
    let unquoted = val.trim_matches(|c| c == '\'' || c == '"');
    let actual = o.get(prop).map(Value::to_ps_string).unwrap_or_default();
    Some(match op {
        "like" => {
            let pattern = unquoted.replace('%', "*").replace('_', "?");
            wildcard(&actual, &pattern)
        }
        "<>" => !actual.eq_ignore_ascii_case(unquoted),
        _ => actual.eq_ignore_ascii_case(unquoted),
    })
}

fn wildcard(text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    let (mut ti, mut pi) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        match (p.get(pi), t.get(ti)) {
            (Some('?'), _) => {
                ti += 1;
                pi += 1;
            }
            (Some('*'), _) => {
                star = Some(pi);
                mark = ti;
                pi += 1;
            }
            (Some(pc), Some(tc)) if pc.eq_ignore_ascii_case(tc) => {
                ti += 1;
                pi += 1;
            }
            _ => match star {
                Some(s) => {
                    pi = s + 1;
                    mark += 1;
                    ti = mark;
                }
                None => return false,
            },
        }
    }
    while p.get(pi) == Some(&'*') {
        pi += 1;
    }
    pi == p.len()
}

const POLICIES_SYSTEM: &str =
    "HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies\\System";

fn normalize_reg_path(path: &str) -> String {
    let p = path.trim();
    let p = p.strip_prefix("Microsoft.PowerShell.Core\\").unwrap_or(p);
    let p = if p.len() >= 10
        && p.get(..10)
            .is_some_and(|s| s.eq_ignore_ascii_case("registry::"))
    {
        p.get(10..).unwrap_or("")
    } else {
        p
    };
    let lower = p.to_ascii_lowercase();
    let body = if let Some(r) = lower.strip_prefix("hklm:") {
        format!("hkey_local_machine\\{}", r.trim_start_matches('\\'))
    } else if let Some(r) = lower.strip_prefix("hkey_local_machine") {
        format!("hkey_local_machine\\{}", r.trim_start_matches('\\'))
    } else {
        lower
    };
    body.trim_end_matches('\\').to_string()
}

fn get_item_property(eng: &mut Engine<'_, '_>, b: &Bound) -> CmdOutcome {
    let path = b
        .str("Path")
        .or_else(|| b.str("LiteralPath"))
        .unwrap_or_default();
    let Some(h) = eng.env.st.host(eng.env.host) else {
        return CmdOutcome::none();
    };
    if normalize_reg_path(&path) != POLICIES_SYSTEM.to_ascii_lowercase() {
        return CmdOutcome::error(ErrorRecord {
            exception_type: "System.Management.Automation.ItemNotFoundException".into(),
            ..err(
                "Get-ItemProperty",
                format!("Cannot find path '{path}' because it does not exist."),
                "PathNotFound",
                "ObjectNotFound",
                &path,
                "ItemNotFoundException",
            )
        });
    }
    let mut values: Vec<(&str, Value)> = vec![
        ("ConsentPromptBehaviorAdmin", Value::Int(5)),
        ("ConsentPromptBehaviorUser", Value::Int(3)),
        ("EnableLUA", Value::Int(1)),
        ("FilterAdministratorToken", Value::Int(0)),
    ];
    if let Some(v) = h.latfp {
        values.push(("LocalAccountTokenFilterPolicy", Value::Int(i64::from(v))));
    }
    let names: Option<Vec<String>> = b.get("Name").map(|v| match v {
        Value::Array(items) => items.iter().map(Value::to_ps_string).collect(),
        other => vec![other.to_ps_string()],
    });
    let mut errors = Vec::new();
    let selected: Vec<(&str, Value)> = match &names {
        None => values.clone(),
        Some(ns) => {
            let mut sel = Vec::new();
            for n in ns {
                match values.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)) {
                    Some((k, v)) => sel.push((*k, v.clone())),
                    None => errors.push(ErrorRecord {
                        exception_type: "System.Management.Automation.PSArgumentException".into(),
                        ..err(
                            "Get-ItemProperty",
                            format!("Property {n} does not exist at path {POLICIES_SYSTEM}."),
                            "System.Management.Automation.PSArgumentException",
                            "InvalidArgument",
                            n,
                            "PSArgumentException",
                        )
                    }),
                }
            }
            sel
        }
    };
    let mut output = Vec::new();
    if !selected.is_empty() {
        let mut props = selected;
        props.push((
            "PSPath",
            Value::Str(format!(
                "Microsoft.PowerShell.Core\\Registry::{POLICIES_SYSTEM}"
            )),
        ));
        props.push((
            "PSParentPath",
            Value::Str("Microsoft.PowerShell.Core\\Registry::HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Policies".into()),
        ));
        props.push(("PSChildName", Value::Str("System".into())));
        props.push(("PSDrive", Value::Str("HKLM".into())));
        props.push((
            "PSProvider",
            Value::Str("Microsoft.PowerShell.Core\\Registry".into()),
        ));
        output.push(obj(
            "System.Management.Automation.PSCustomObject",
            "@{...}".into(),
            props,
        ));
    }
    CmdOutcome {
        output,
        errors,
        ..CmdOutcome::default()
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

/// Resolves `-Server` (BeginProcessing: `Dns.GetHostEntry`).
fn resolve_server(
    eng: &Engine<'_, '_>,
    cmdlet: &str,
    server: &str,
) -> Result<DcIndex, ErrorRecord> {
    let s = if server == "." { "localhost" } else { server };
    resolve_dc(eng, s).ok_or_else(|| resolve_error(cmdlet, s))
}

/// Does the lab's DNS know `name` (a DC, a member, `localhost`)? What
/// `Test-ComputerSecureChannel -Server` checks with `Dns.GetHostEntry` before it ignores
/// the value (Computer.cs).
fn resolves(eng: &Engine<'_, '_>, name: &str) -> bool {
    let n = name.trim_start_matches('\\');
    let label = n.split('.').next().unwrap_or(n);
    n.eq_ignore_ascii_case("localhost")
        || eng.env.st.domain.dc_by_name(n).is_some()
        || eng.env.st.hosts.iter().any(|h| {
            h.address.eq_ignore_ascii_case(n)
                || h.computer_name.eq_ignore_ascii_case(label) && !n.contains('.')
        })
}

fn resolve_dc(eng: &Engine<'_, '_>, name: &str) -> Option<DcIndex> {
    eng.env.st.domain.dc_by_name(name)
}

fn resolve_error(cmdlet: &str, s: &str) -> ErrorRecord {
    ErrorRecord {
        exception_type: "System.InvalidOperationException".into(),
        ..err(
            cmdlet,
            format!(
                "Computer name {s} cannot be resolved with the exception: No such host is known."
            ),
            "AddressResolutionException",
            "InvalidArgument",
            s,
            "InvalidOperationException",
        )
    }
}

/// `ResetMachineAccountPassword`: LDAP bind with the credential on `-Server` (or a DC of
/// the domain), `SetPassword` on the computer object, then the LSA secret.
fn reset_machine_account(
    eng: &mut Engine<'_, '_>,
    cmdlet: &str,
    server: Option<DcIndex>,
    cred: Option<&PsCred>,
) -> Result<DcIndex, ErrorRecord> {
    let me = host_name(eng);
    let on_domain = |msg: &str| -> ErrorRecord {
        err(
            cmdlet,
            format!("Cannot reset the secure channel password for the computer account in the domain. Operation failed with the following exception: {msg}."),
            "FailToResetPasswordOnDomain",
            "OperationStopped",
            &me,
            "InvalidOperationException",
        )
    };
    let Some(h) = eng.env.st.host(eng.env.host).cloned() else {
        return Err(on_domain("The server is not operational.\r\n"));
    };
    let dc = match server {
        Some(dc) if h.reaches(dc) => dc,
        Some(_) => return Err(on_domain("The server is not operational.\r\n")),
        None => match h.effective_dc() {
            Some(dc) => dc,
            None => {
                return Err(on_domain(
                    "The specified domain either does not exist or could not be contacted.\r\n",
                ))
            }
        },
    };
    // Without -Credential the LDAP bind uses the session's identity, which a WinRM
    // network logon cannot delegate (double hop).
    let Some(cred) = cred else {
        return Err(on_domain("An operations error occurred.\r\n"));
    };
    let bad_credential = || on_domain("The user name or password is incorrect.\r\n");
    // In memory the lab checks the credential and its rights against its user table; real
    // DCs check both themselves (a bind as the credential, then the write's access check).
    let lab_user = match eng.env.st.domain.directory.clone() {
        None => match eng
            .env
            .st
            .domain
            .check_credential(&cred.user, &cred.password)
        {
            Ok(u) => Some(u.clone()),
            Err(_) => return Err(bad_credential()),
        },
        Some(d) => {
            let Some(bind) = eng.env.st.domain.bind_name(&cred.user) else {
                return Err(bad_credential());
            };
            match d.credential_valid(dc, &bind, &cred.password) {
                Ok(true) => None,
                Ok(false) => return Err(bad_credential()),
                Err(e) => {
                    tracing::warn!(dc, "Samba credential check failed: {e}");
                    return Err(on_domain("The server is not operational.\r\n"));
                }
            }
        }
    };
    let dc_fqdn = eng
        .env
        .st
        .domain
        .dcs
        .get(dc)
        .map(|d| d.fqdn.clone())
        .unwrap_or_default();
    if eng
        .env
        .st
        .domain
        .view(&h.computer_name, dc, eng.env.now)
        .is_none()
    {
        let msg = match server {
            Some(_) => format!("Cannot find the computer account for the local computer from the domain controller {dc_fqdn}."),
            None => format!("Cannot find the computer account for the local computer in the domain {}.", eng.env.st.domain.dns_name),
        };
        return Err(err(
            cmdlet,
            msg,
            "CannotFindMachineAccount",
            "OperationStopped",
            &me,
            "InvalidOperationException",
        ));
    }
    if lab_user.is_some_and(|u| !u.can_reset_computers()) {
        return Err(on_domain(
            "Access is denied. (Exception from HRESULT: 0x80070005 (E_ACCESSDENIED))",
        ));
    }
    let new = eng.env.st.new_password(120);
    let now = eng.env.now;
    match eng.env.st.domain.reset_password_as(
        &h.computer_name,
        dc,
        now,
        new.clone(),
        &cred.user,
        &cred.password,
    ) {
        Ok(()) => {}
        Err(crate::domain::WriteRefused::AccessDenied) => {
            return Err(on_domain(
                "Access is denied. (Exception from HRESULT: 0x80070005 (E_ACCESSDENIED))",
            ))
        }
        Err(crate::domain::WriteRefused::BadCredentials) => return Err(bad_credential()),
        Err(_) => return Err(on_domain("The server is not operational.\r\n")),
    }
    if !eng.env.elevated {
        return Err(err(
            cmdlet,
            "Administrator rights are required to reset the secure channel password on the local computer. Access is denied.".into(),
            "UnauthorizedAccessException",
            "InvalidOperation",
            &me,
            "InvalidOperationException",
        ));
    }
    if let Some(hm) = eng.env.st.host_mut(eng.env.host) {
        // The LSA secret keeps the value it replaces as the previous one. Netlogon's
        // binding and stored status stay as they were: the cmdlet does not rebind
        // (DOMAIN.md "Repairing it", revised; Computer.cs), so a member bound to a DC that
        // lacks the new password stays broken until replication or `nltest /sc_reset`.
        hm.old_secret = hm.secret.replace(new);
    }
    Ok(dc)
}

fn test_secure_channel(eng: &mut Engine<'_, '_>, b: &Bound) -> CmdOutcome {
    const C: &str = "Test-ComputerSecureChannel";
    let me = host_name(eng);
    let server = match b.str("Server") {
        Some(s) if !resolves(eng, if s == "." { "localhost" } else { &s }) => {
            return CmdOutcome::terminate(resolve_error(C, if s == "." { "localhost" } else { &s }))
        }
        // A name that resolves but is no DC: -Repair cannot reset there (the LDAP bind
        // fails); without -Repair the value is not used at all.
        Some(s) => resolve_dc(eng, &s),
        None => None,
    };
    let cred = match credential_arg(C, b, "Credential") {
        Ok(c) => c,
        Err(e) => return CmdOutcome::terminate(e),
    };
    let Some(h) = eng.env.st.host(eng.env.host).cloned() else {
        return CmdOutcome::none();
    };
    let domain = eng.env.st.domain.dns_name.clone();
    let mut verbose = vec![format!(
        "Performing the operation \"Test-ComputerSecureChannel\" on target \"{me}\"."
    )];
    if !h.joined() {
        return CmdOutcome::terminate(err(
            C,
            "Cannot verify the secure channel password for the local computer. The local computer is not currently part of a domain.".into(),
            "ComputerNotInDomain",
            "InvalidOperation",
            &me,
            "InvalidOperationException",
        ));
    }
    if b.switch("Repair") {
        return match reset_machine_account(eng, C, server, cred.as_ref()) {
            Ok(_) => {
                // Then NETLOGON_CONTROL_REDISCOVER for the domain with no DC named: the
                // locator's DC, not necessarily the one just written; True when a DC name
                // comes back, whatever the connection status (DOMAIN.md "Repairing it",
                // revised; Computer.cs). A member that cannot be rediscovered stays as is.
                let now = eng.env.now;
                let id = eng.env.host;
                let found = match eng.env.st.host(id).and_then(|h| h.locate()) {
                    Some(dc) => eng.env.st.use_channel(id, Some(dc), now).dc().is_some(),
                    None => false,
                };
                if found {
                    verbose.push(format!("The secure channel between the local computer and the domain {domain} was successfully repaired."));
                } else {
                    verbose.push(format!("The secure channel between the local computer and the domain {domain} was not repaired."));
                }
                CmdOutcome {
                    output: vec![Value::Bool(found)],
                    verbose,
                    ..CmdOutcome::default()
                }
            }
            Err(mut e) => {
                e.fqid = e.fqid.replace(
                    "ResetComputerMachinePasswordCommand",
                    "TestComputerSecureChannelCommand",
                );
                CmdOutcome::terminate(e)
            }
        };
    }
    if h.domain_controller {
        // On a DC the cmdlet's TC_QUERY for its own domain fails (real capture
        // `test_computersecurechannel_verbose_on_dc_1355.txt`).
        return CmdOutcome::terminate(err(
            C,
            "Cannot verify the secure channel for the local computer. Operation failed with the following exception: The specified domain either does not exist or could not be contacted.".into(),
            "FailToTestSecureChannel",
            "OperationStopped",
            &me,
            "InvalidOperationException",
        ));
    }
    // Without -Repair: Netlogon's stored status (TC_QUERY, `pdc_connection_status`), the
    // result of the channel's last use; `-Server` was only resolved above (DOMAIN.md
    // "Testing the channel", revised; Computer.cs TestComputerSecureChannelCommand).
    let _ = server;
    let ok = eng.env.st.stored_channel(&h, eng.env.now).pdc_status == 0;
    verbose.push(if ok {
        format!("The secure channel between the local computer and the domain {domain} is in good condition.")
    } else {
        format!("The Secure channel between the local computer and the domain {domain} is broken.")
    });
    CmdOutcome {
        output: vec![Value::Bool(ok)],
        verbose,
        ..CmdOutcome::default()
    }
}

fn reset_machine_password(eng: &mut Engine<'_, '_>, b: &Bound) -> CmdOutcome {
    const C: &str = "Reset-ComputerMachinePassword";
    let me = host_name(eng);
    let server = match b.str("Server") {
        Some(s) => match resolve_server(eng, C, &s) {
            Ok(dc) => Some(dc),
            Err(e) => return CmdOutcome::terminate(e),
        },
        None => None,
    };
    let cred = match credential_arg(C, b, "Credential") {
        Ok(c) => c,
        Err(e) => return CmdOutcome::terminate(e),
    };
    if !eng.env.st.host(eng.env.host).is_some_and(|h| h.joined()) {
        return CmdOutcome::terminate(err(
            C,
            "Cannot reset the secure channel password for the account of the local computer. The local computer is not currently part of a domain."
                .into(),
            "ComputerNotInDomain",
            "InvalidOperation",
            &me,
            "InvalidOperationException",
        ));
    }
    match reset_machine_account(eng, C, server, cred.as_ref()) {
        Ok(_) => CmdOutcome::none(),
        Err(e) => CmdOutcome::terminate(e),
    }
}

fn new_object(b: &Bound) -> CmdOutcome {
    const C: &str = "New-Object";
    let type_name = b.str("TypeName").unwrap_or_default();
    let t = type_name.trim_start_matches('[').trim_end_matches(']');
    let lower = t.to_ascii_lowercase();
    if lower.trim_start_matches("system.") == "text.utf8encoding" {
        // `New-Object System.Text.UTF8Encoding $false`: UTF-8 without BOM, what Ansible's
        // bootstrap assigns to `[Console]::InputEncoding`.
        return CmdOutcome::out(Value::Obj(Box::new(PsObject {
            type_name: "System.Text.UTF8Encoding".into(),
            props: vec![
                ("WebName".into(), Value::Str("utf-8".into())),
                ("CodePage".into(), Value::Int(65001)),
            ],
            text: "System.Text.UTF8Encoding".into(),
        })));
    }
    if lower != "system.management.automation.pscredential"
        && lower != "pscredential"
        && lower != "management.automation.pscredential"
    {
        return CmdOutcome::terminate(ErrorRecord {
            exception_type: "System.Management.Automation.PSArgumentException".into(),
            ..err(
                C,
                format!("Cannot find type [{t}]: verify that the assembly containing this type is loaded."),
                "TypeNotFound",
                "InvalidType",
                "",
                "PSArgumentException",
            )
        });
    }
    let args: Vec<Value> = match b.get("ArgumentList") {
        Some(Value::Array(a)) => a.clone(),
        Some(Value::Null) | None => Vec::new(),
        Some(v) => vec![v.clone()],
    };
    let overload = || {
        CmdOutcome::terminate(ErrorRecord {
            exception_type: "System.Management.Automation.MethodException".into(),
            ..err(
                C,
                format!(
                    "Cannot find an overload for \"PSCredential\" and the argument count: \"{}\".",
                    args.len()
                ),
                "ConstructorInvokedThrowException",
                "InvalidOperation",
                "",
                "MethodException",
            )
        })
    };
    match args.as_slice() {
        [user, Value::Secure(pw)] => {
            let u = user.to_ps_string();
            if matches!(user, Value::Null) || u.is_empty() {
                return CmdOutcome::terminate(ErrorRecord {
                    exception_type: "System.Management.Automation.MethodInvocationException".into(),
                    ..err(
                        C,
                        "Exception calling \".ctor\" with \"2\" argument(s): \"Cannot process argument because the value of argument \"userName\" is not valid. Change the value of the \"userName\" argument and run the operation again.\"".into(),
                        "ConstructorInvokedThrowException",
                        "InvalidOperation",
                        "",
                        "MethodInvocationException",
                    )
                });
            }
            CmdOutcome::out(Value::Cred(Box::new(PsCred {
                user: u,
                password: pw.clone(),
            })))
        }
        _ => overload(),
    }
}

fn convert_to_secure_string(b: &Bound) -> CmdOutcome {
    const C: &str = "ConvertTo-SecureString";
    let v = b.get("String");
    let Some(v) = v.filter(|v| !matches!(v, Value::Null)) else {
        return CmdOutcome::terminate(ErrorRecord {
            exception_type: "System.Management.Automation.ParameterBindingValidationException"
                .into(),
            ..err(
                C,
                "Cannot bind argument to parameter 'String' because it is null.".into(),
                "ParameterArgumentValidationErrorNullNotAllowed",
                "InvalidData",
                "",
                "ParameterBindingValidationException",
            )
        });
    };
    if !b.switch("AsPlainText") {
        return CmdOutcome::terminate(ErrorRecord {
            exception_type: "System.FormatException".into(),
            ..err(
                C,
                "Input string was not in a correct format.".into(),
                "ImportSecureString_InvalidArgument",
                "InvalidArgument",
                "",
                "FormatException",
            )
        });
    }
    if !b.switch("Force") {
        return CmdOutcome::terminate(ErrorRecord {
            exception_type: "System.ArgumentException".into(),
            ..err(
                C,
                "The system cannot protect plain text input. To suppress this warning and convert the plain text to a SecureString, reissue the command specifying the Force parameter. For more information ,type: get-help ConvertTo-SecureString.".into(),
                "ImportSecureString_ForceRequired",
                "InvalidArgument",
                "",
                "ArgumentException",
            )
        });
    }
    CmdOutcome::out(Value::Secure(SecretString::from(v.to_ps_string())))
}

fn restart_needed_warning(me: &str) -> String {
    format!("The changes will take effect after you restart the computer {me}.")
}

fn reboot(eng: &mut Engine<'_, '_>) {
    let until = eng.env.now.saturating_add(eng.env.st.reboot_duration);
    if let Some(h) = eng.env.st.host_mut(eng.env.host) {
        h.power = PowerState::Rebooting { until };
        h.last_boot = until;
    }
}

/// `Remove-Computer [-UnjoinDomainCredential c] [-WorkgroupName w] [-Force] [-Restart]`,
/// as Computer.cs (RemoveComputerCommand) runs it on the local machine (DOMAIN.md
/// "Repairing it", revised):
/// - without `-Force` it asks `ShouldContinue` (the RemoveComputerConfirm prompt) first;
///   under `-NonInteractive` the host throws PowerShell's "NonInteractive mode" error (a
///   real 5.1 capture of another cmdlet's `ShouldContinue` under `-NonInteractive`:
///   `Remove-Item`, category InvalidOperation, PSInvalidOperationException). Without
///   `-NonInteractive` the lab takes the unanswerable prompt as declined: nothing changes
///   (unverified);
/// - then NetUnjoinDomain with NETSETUP_ACCT_DELETE, which *disables* the computer object
///   on a DC with the credential's rights; without a credential with the session's own,
///   and a WinRM network logon has none on the DC (a local account is unknown there, a
///   domain account cannot be delegated: the double hop), so the disable fails with
///   Access is denied, the unjoin with it, and the host stays joined (inferred from the
///   cmdlet retrying locally only for 1355/53; pessimistic: nothing is gained);
/// - with the domain unreachable (1355 ERROR_NO_SUCH_DOMAIN / 53 ERROR_BAD_NETPATH) and
///   `-Force` it retries without NETSETUP_ACCT_DELETE: a local unjoin only, the object is
///   left as it was;
/// - afterwards the host is in a workgroup: domain logons fail (no channel), only local
///   accounts reach it.
///
/// Error texts: PowerShell's FailToUnjoinDomain resource string (fixture
/// `remove_computer_unjoin_failed_UNVERIFIED.txt`; no capture exists).
fn remove_computer(eng: &mut Engine<'_, '_>, b: &Bound) -> CmdOutcome {
    const C: &str = "Remove-Computer";
    let me = host_name(eng);
    let cred = match credential_arg(C, b, "UnjoinDomainCredential") {
        Ok(c) => c,
        Err(e) => return CmdOutcome::terminate(e),
    };
    let Some(h) = eng.env.st.host(eng.env.host).cloned() else {
        return CmdOutcome::none();
    };
    if !b.switch("Force") {
        if eng.env.non_interactive {
            return CmdOutcome::terminate(ErrorRecord {
                exception_type: "System.Management.Automation.PSInvalidOperationException"
                    .into(),
                ..err(
                    C,
                    "Windows PowerShell is in NonInteractive mode. Read and Prompt functionality is not available.".into(),
                    "InvalidOperation",
                    "InvalidOperation",
                    "",
                    "PSInvalidOperationException",
                )
            });
        }
        return CmdOutcome::none();
    }
    let domain = eng.env.st.domain.dns_name.clone();
    if !h.joined() {
        return CmdOutcome::error(err(
            C,
            format!("Cannot remove computer '{me}' because it is not in a domain."),
            "ComputerNotInDomain",
            "InvalidOperation",
            &me,
            "InvalidOperationException",
        ));
    }
    let fail = |msg: &str| {
        CmdOutcome::error(err(
            C,
            format!("Failed to unjoin computer '{me}' from domain '{domain}' with the following error message: {msg}."),
            "FailToUnjoinDomain",
            "OperationStopped",
            &me,
            "InvalidOperationException",
        ))
    };
    if !eng.env.elevated {
        return fail("Access is denied");
    }
    let now = eng.env.now;
    match h.effective_dc() {
        // 1355: no DC found. With -Force (always given here) the cmdlet unjoins locally
        // only; the computer object stays enabled (DOMAIN.md "Repairing it", revised).
        None => {}
        Some(dc) => {
            // NETSETUP_ACCT_DELETE: disable the object on the DC, with the credential's
            // rights or, without one, the session's (none on the DC over WinRM).
            let Some(cred) = cred else {
                return fail("Access is denied");
            };
            let user = match eng
                .env
                .st
                .domain
                .check_credential(&cred.user, &cred.password)
            {
                Ok(u) => u.clone(),
                Err(_) => return fail("The user name or password is incorrect"),
            };
            let own = eng.env.st.domain.ownership(&h.computer_name).cloned();
            let creator = own.as_ref().and_then(|o| o.creator_sid.clone());
            let is_creator = creator.is_some_and(|c| c == eng.env.st.domain.user_sid(&user));
            if !user.can_reset_computers() && !is_creator {
                return fail("Access is denied");
            }
            // A missing object (deleted on the DCs) has nothing to disable; the lab lets
            // the unjoin go on (no capture says otherwise).
            eng.env
                .st
                .domain
                .set_enabled(&h.computer_name, dc, now, false);
        }
    }
    let workgroup = b.str("WorkgroupName").unwrap_or_else(|| "WORKGROUP".into());
    if let Some(hm) = eng.env.st.host_mut(eng.env.host) {
        hm.membership = Membership::Workgroup(workgroup.to_ascii_uppercase());
        hm.secret = None;
        hm.old_secret = None;
    }
    if b.switch("Restart") {
        reboot(eng);
        return CmdOutcome::none();
    }
    CmdOutcome {
        warnings: vec![restart_needed_warning(&me)],
        ..CmdOutcome::default()
    }
}

/// `Add-Computer -DomainName d -Credential c [-Server dc] [-OUPath ou] [-Force] [-Restart]`
/// (NetJoinDomain with NETSETUP_JOIN_DOMAIN | NETSETUP_ACCT_CREATE):
/// - an existing object of the computer's name is reused only when KB5020276's check
///   allows it ([`crate::domain::Domain::reuse_verdict`]); otherwise the join fails with
///   0xaac NERR_AccountReuseBlockedByPolicy (2732) and nothing changes on the DC or the
///   host (Microsoft's NetSetup.log: `NetpModifyComputerObjectInDs: Account exists and
///   re-use is blocked by policy. Error: 0xaac`, then `NetpDoDomainJoin: status: 0xaac`;
///   fixtures `netsetup_log_account_reuse_blocked_0xaac.txt` and
///   `join_domain_dialog_account_reuse_blocked_0xaac.txt`; the cmdlet's wrapping of it is
///   inferred, `add_computer_account_reuse_blocked_0xaac_UNVERIFIED.txt`). A reused object
///   gets an administrative password set, is enabled again and stays where it is;
/// - no object: one is created in `CN=Computers` (or `-OUPath`), owned by the joining
///   account, with `mS-DS-CreatorSID` when that account is not a Domain Admin; a
///   non-admin may create only `ms-DS-MachineAccountQuota` of them (8557
///   ERROR_DS_MACHINE_ACCOUNT_QUOTA_EXCEEDED, Microsoft's message text);
/// - the join sets the channel up with the DC it wrote.
fn add_computer(eng: &mut Engine<'_, '_>, b: &Bound) -> CmdOutcome {
    const C: &str = "Add-Computer";
    let me = host_name(eng);
    let target = b.str("DomainName").unwrap_or_default();
    let cred = match credential_arg(C, b, "Credential") {
        Ok(c) => c,
        Err(e) => return CmdOutcome::terminate(e),
    };
    let Some(h) = eng.env.st.host(eng.env.host).cloned() else {
        return CmdOutcome::none();
    };
    if h.joined() && eng.env.st.domain.is_named(&target) {
        return CmdOutcome::error(err(
            C,
            format!("Cannot add computer '{me}' to domain '{target}' because it is already in that domain."),
            "AddComputerToSameDomain",
            "InvalidOperation",
            &me,
            "InvalidOperationException",
        ));
    }
    let workgroup = h.workgroup().unwrap_or("WORKGROUP").to_string();
    let fail = |msg: &str| {
        let text = if h.joined() {
            format!("Computer '{me}' was successfully unjoined from domain '{target}', but failed to join the new domain '{target}' with the following error message: {msg}.")
        } else {
            format!("Computer '{me}' failed to join domain '{target}' from its current workgroup '{workgroup}' with following error message: {msg}.")
        };
        CmdOutcome::error(err(
            C,
            text,
            "FailToJoinDomainFromWorkgroup",
            "OperationStopped",
            &me,
            "InvalidOperationException",
        ))
    };
    if !eng.env.elevated {
        return fail("Access is denied");
    }
    let server = match b.str("Server") {
        Some(s) => match eng.env.st.domain.dc_by_name(&s) {
            Some(dc) => Some(dc),
            None => {
                return fail("The specified domain either does not exist or could not be contacted")
            }
        },
        None => None,
    };
    if !eng.env.st.domain.is_named(&target) {
        return fail("The specified domain either does not exist or could not be contacted");
    }
    let dc = match server {
        Some(dc) if h.reaches(dc) => dc,
        Some(_) => {
            return fail("The specified domain either does not exist or could not be contacted")
        }
        None => match h.effective_dc() {
            Some(dc) => dc,
            None => {
                return fail("The specified domain either does not exist or could not be contacted")
            }
        },
    };
    let Some(cred) = cred else {
        return fail("Access is denied");
    };
    let user = match eng
        .env
        .st
        .domain
        .check_credential(&cred.user, &cred.password)
    {
        Ok(u) => u.clone(),
        Err(_) => return fail("The user name or password is incorrect"),
    };
    let now = eng.env.now;
    let user_sid = eng.env.st.domain.user_sid(&user);
    let reuse_blocked = ACCOUNT_REUSE_BLOCKED_MESSAGE.trim_end_matches('.');
    let exists = eng.env.st.domain.view(&h.computer_name, dc, now).is_some();
    let new = if exists {
        // KB5020276: the DC decides from the object's owner and mS-DS-CreatorSID first
        // (NetSetup.log: NetpGetADObjectOwnerAttributes, then the policy check).
        let verdict = if let Some(d) = eng.env.st.domain.directory.clone() {
            // Samba 4.17 does not implement the block: the lab applies Windows' rule to
            // what the real DC holds (an unreadable object is refused, pessimistically).
            match d.reuse_allowed(&h.computer_name, dc, &user_sid) {
                Ok(true) => ReuseVerdict::PrivilegedOwner,
                _ => ReuseVerdict::Blocked,
            }
        } else {
            match eng.env.st.domain.ownership(&h.computer_name) {
                Some(own) => eng.env.st.domain.reuse_verdict(own, &user),
                None => ReuseVerdict::Blocked,
            }
        };
        if !verdict.allowed() {
            return fail(reuse_blocked);
        }
        // The creator of a quota-made object may write it; others need the delegated
        // rights (Reset Password and the rest of what the join writes).
        if !user.can_reset_computers() && verdict != ReuseVerdict::Creator {
            return fail("Access is denied");
        }
        let new = eng.env.st.new_password(120);
        eng.env
            .st
            .domain
            .write_password(&h.computer_name, dc, now, new.clone(), true);
        eng.env
            .st
            .domain
            .set_enabled(&h.computer_name, dc, now, true);
        new
    } else {
        if !user.domain_admin {
            let quota = usize::try_from(eng.env.st.domain.machine_account_quota).unwrap_or(0);
            if eng.env.st.domain.created_by(&user_sid) >= quota {
                return fail(MACHINE_ACCOUNT_QUOTA_EXCEEDED_MESSAGE.trim_end_matches('.'));
            }
        }
        let container = b
            .str("OUPath")
            .unwrap_or_else(|| eng.env.st.domain.computers_container());
        let ownership = Ownership {
            dn: format!("CN={},{container}", h.computer_name.to_ascii_uppercase()),
            owner_sid: user_sid.clone(),
            creator_sid: (!user.domain_admin).then_some(user_sid),
        };
        let new = eng.env.st.new_password(120);
        if !eng.env.st.domain.create_joined_computer(
            &h.computer_name,
            dc,
            now,
            new.clone(),
            ownership,
        ) {
            return fail("The specified domain either does not exist or could not be contacted");
        }
        new
    };
    if let Some(hm) = eng.env.st.host_mut(eng.env.host) {
        hm.membership = Membership::Domain;
        hm.secret = Some(new);
        hm.old_secret = None;
        hm.bound_dc = dc;
    }
    // The join sets the channel up with the DC it wrote.
    eng.env.st.use_channel(eng.env.host, Some(dc), now);
    if b.switch("Restart") {
        reboot(eng);
        return CmdOutcome::none();
    }
    CmdOutcome {
        warnings: vec![restart_needed_warning(&me)],
        ..CmdOutcome::default()
    }
}

fn restart_computer(eng: &mut Engine<'_, '_>, b: &Bound) -> CmdOutcome {
    const C: &str = "Restart-Computer";
    let me = host_name(eng);
    if let Some(target) = b.str("ComputerName") {
        let label = target.split('.').next().unwrap_or(&target).to_string();
        if !label.eq_ignore_ascii_case(&me)
            && !label.eq_ignore_ascii_case("localhost")
            && target != "."
        {
            return CmdOutcome::error(err(
                C,
                format!("Failed to restart the computer {target} with the following error message: The RPC server is unavailable. "),
                "RestartcomputerFailed",
                "OperationStopped",
                &target,
                "InvalidOperationException",
            ));
        }
    }
    if !eng.env.elevated {
        return CmdOutcome::error(err(
            C,
            format!("Failed to restart the computer {me} with the following error message: Access is denied. "),
            "RestartcomputerFailed",
            "OperationStopped",
            &me,
            "InvalidOperationException",
        ));
    }
    reboot(eng);
    CmdOutcome::none()
}

/// `Get-WinEvent -FilterHashtable @{ LogName = 'System'; ProviderName = 'NETLOGON'; Id = … }
/// [-MaxEvents n]` (or `-LogName System`): the host's NETLOGON events, newest first (as
/// Get-WinEvent returns them unless `-Oldest`), as `EventLogRecord`s with `Id`,
/// `ProviderName`, `LogName`, `TimeCreated` (a DateTime whose `ToFileTimeUtc()` works),
/// `Message` (the English text of the captures) and `Properties` (the insertion strings,
/// each with `.Value`). A filter matching nothing is the cmdlet's non-terminating
/// `NoMatchingEventsFound` error. Only the System log's NETLOGON events are modelled.
fn get_win_event(eng: &mut Engine<'_, '_>, b: &Bound) -> CmdOutcome {
    const C: &str = "Get-WinEvent";
    let field = |name: &str| -> Option<Value> {
        match b.get("FilterHashtable") {
            Some(Value::Obj(o)) => o
                .props
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone()),
            _ => None,
        }
    };
    let log = field("LogName")
        .or_else(|| b.get("LogName").cloned())
        .map(|v| v.to_ps_string())
        .unwrap_or_default();
    let provider = field("ProviderName").map(|v| v.to_ps_string());
    let ids: Option<Vec<i64>> = field("Id").map(|v| match v {
        Value::Array(items) => items
            .iter()
            .filter_map(|i| i.to_ps_string().trim().parse().ok())
            .collect(),
        one => one.to_ps_string().trim().parse().ok().into_iter().collect(),
    });
    let max = b
        .get("MaxEvents")
        .and_then(|v| v.to_ps_string().trim().parse::<usize>().ok())
        .unwrap_or(usize::MAX);
    let Some(h) = eng.env.st.host(eng.env.host) else {
        return CmdOutcome::none();
    };
    let netlogon = provider
        .as_deref()
        .is_none_or(|p| p.eq_ignore_ascii_case("NETLOGON"));
    let mut events: Vec<Value> = Vec::new();
    if log.eq_ignore_ascii_case("System") && netlogon {
        let mut matching: Vec<_> = h
            .events
            .iter()
            .filter(|e| {
                ids.as_ref()
                    .is_none_or(|ids| ids.contains(&i64::from(e.id)))
            })
            .collect();
        if !b.switch("Oldest") {
            matching.reverse();
        }
        for e in matching.into_iter().take(max) {
            let ft = filetime_at(e.at);
            let time = obj(
                "System.DateTime",
                datetime_text(ft),
                vec![(
                    "FileTimeUtc",
                    Value::Int(i64::try_from(ft).unwrap_or(i64::MAX)),
                )],
            );
            let props: Vec<Value> = e
                .data
                .iter()
                .map(|d| {
                    obj(
                        "System.Diagnostics.Eventing.Reader.EventProperty",
                        d.clone(),
                        vec![("Value", Value::Str(d.clone()))],
                    )
                })
                .collect();
            events.push(obj(
                "System.Diagnostics.Eventing.Reader.EventLogRecord",
                "System.Diagnostics.Eventing.Reader.EventLogRecord".into(),
                vec![
                    ("Id", Value::Int(i64::from(e.id))),
                    ("ProviderName", Value::Str("NETLOGON".into())),
                    ("LogName", Value::Str("System".into())),
                    ("TimeCreated", time),
                    ("Message", Value::Str(event_message(e))),
                    ("Properties", Value::Array(props)),
                ],
            ));
        }
    }
    if events.is_empty() {
        return CmdOutcome::error(ErrorRecord {
            exception_type: "System.Exception".into(),
            ..err(
                C,
                "No events were found that match the specified selection criteria.".into(),
                "NoMatchingEventsFound",
                "ObjectNotFound",
                "",
                "Exception",
            )
        });
    }
    CmdOutcome {
        output: events,
        ..CmdOutcome::default()
    }
}

/// The English description of a lab NETLOGON event (fixtures `netlogon_3210_event_text.txt`
/// and `netlogon_5719_event_xml_rendered.txt`).
fn event_message(e: &crate::host::NetlogonEvent) -> String {
    let at = |i: usize| e.data.get(i).cloned().unwrap_or_default();
    match e.id {
        3210 => format!(
            "This computer could not authenticate with {}, a Windows domain controller for domain {}, and therefore this computer might deny logon requests. This inability to authenticate might be caused by another computer on the same network using the same name or the password for this computer account is not recognized. If this message appears again, contact your system administrator.",
            at(0),
            at(1)
        ),
        _ => format!(
            "This computer was not able to set up a secure session with a domain controller in domain {} due to the following:\r\nWe can't sign you in with this credential because your domain isn't available. Make sure your device is connected to your organization's network and try again. If you previously signed in on this device with another credential, you can sign in with that credential.\r\nThis may lead to authentication problems. Make sure that this computer is connected to the network. If the problem persists, please contact your domain administrator.",
            at(0)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::LAB_EPOCH_FILETIME;
    use secrecy::ExposeSecret;

    #[test]
    fn datetime_of_lab_epoch() {
        assert_eq!(datetime_text(LAB_EPOCH_FILETIME), "11/01/2025 00:00:00");
    }

    #[test]
    fn wildcard_matches_sid_pattern() {
        assert!(wildcard("S-1-5-21-1-2-3-500", "S-1-5-21-*-500"));
        assert!(!wildcard("S-1-5-21-1-2-3-1001", "S-1-5-21-*-500"));
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
}
