//! `Get-ItemProperty` on the one registry key the scripts read: UAC's
//! `HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System` (where
//! `LocalAccountTokenFilterPolicy` decides whether a local administrator's WinRM logon is
//! elevated).

use super::{err, obj, Bound, CmdOutcome, Engine, ErrorRecord, Value};

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

pub(super) fn get_item_property(eng: &mut Engine<'_, '_>, b: &Bound) -> CmdOutcome {
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
    let output = if selected.is_empty() {
        Vec::new()
    } else {
        vec![key_object(selected)]
    };
    CmdOutcome {
        output,
        errors,
        ..CmdOutcome::default()
    }
}

/// The PSCustomObject Get-ItemProperty returns: the selected values, then the provider's
/// `PS*` properties.
fn key_object(selected: Vec<(&str, Value)>) -> Value {
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
    obj(
        "System.Management.Automation.PSCustomObject",
        "@{...}".into(),
        props,
    )
}
