//! `Get-CimInstance` / `Get-WmiObject`: the three classes the scripts read
//! (Win32_ComputerSystem, Win32_OperatingSystem, Win32_UserAccount), with a tiny WQL
//! `-Filter`.

use super::super::wildcard;
use super::{datetime_text, err, obj, Bound, CmdOutcome, Engine, ErrorRecord, PsObject, Value};
use crate::domain::filetime_at;
use crate::host::{Host, HostOs};

pub(super) fn cim(eng: &mut Engine<'_, '_>, cmdlet: &str, b: &Bound) -> CmdOutcome {
    let class = b.str("ClassName").unwrap_or_default();
    let Some(h) = eng.env.st.host(eng.env.host).cloned() else {
        return CmdOutcome::none();
    };
    let objects: Vec<Value> = match class.to_ascii_lowercase().as_str() {
        "win32_computersystem" => {
            let domain = eng.env.st.domain.dns_name.clone();
            vec![computer_system(&h, &domain)]
        }
        "win32_operatingsystem" => vec![operating_system(&h)],
        "win32_useraccount" => user_accounts(eng, &h),
        _ => return invalid_class(cmdlet, &class),
    };
    filtered(cmdlet, b.str("Filter").as_deref(), objects)
}

fn computer_system(h: &Host, domain: &str) -> Value {
    let server = h.os == HostOs::Server2022;
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
    obj(
        "Microsoft.Management.Infrastructure.CimInstance#root/cimv2/Win32_ComputerSystem",
        format!("Win32_ComputerSystem (Name = \"{}\")", h.computer_name),
        vec![
            ("Name", Value::Str(h.computer_name.clone())),
            (
                "Domain",
                Value::Str(if joined {
                    domain.to_string()
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
    )
}

fn operating_system(h: &Host) -> Value {
    obj(
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
    )
}

/// The host's local accounts, then (when joined) the domain's users.
fn user_accounts(eng: &Engine<'_, '_>, h: &Host) -> Vec<Value> {
    let mut list: Vec<Value> = h
        .local_accounts
        .iter()
        .map(|a| {
            obj(
                "Microsoft.Management.Infrastructure.CimInstance#root/cimv2/Win32_UserAccount",
                format!(
                    "Win32_UserAccount (Name = \"{}\", Domain = \"{}\")",
                    a.name, h.computer_name
                ),
                vec![
                    ("Name", Value::Str(a.name.clone())),
                    ("Domain", Value::Str(h.computer_name.clone())),
                    (
                        "Caption",
                        Value::Str(format!("{}\\{}", h.computer_name, a.name)),
                    ),
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
                format!(
                    "Win32_UserAccount (Name = \"{}\", Domain = \"{netbios}\")",
                    u.sam
                ),
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

fn invalid_class(cmdlet: &str, class: &str) -> CmdOutcome {
    CmdOutcome::error(ErrorRecord {
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

/// Applies `-Filter` (a WQL WHERE clause) to the objects.
fn filtered(cmdlet: &str, filter: Option<&str>, objects: Vec<Value>) -> CmdOutcome {
    let mut out = Vec::new();
    for o in objects {
        match filter {
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
            wildcard::matches(&actual, &pattern)
        }
        "<>" => !actual.eq_ignore_ascii_case(unquoted),
        _ => actual.eq_ignore_ascii_case(unquoted),
    })
}
