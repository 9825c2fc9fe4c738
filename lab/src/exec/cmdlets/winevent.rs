//! `Get-WinEvent`: the NETLOGON events of the System log.

use super::{datetime_text, err, obj, Bound, CmdOutcome, Engine, ErrorRecord, Value};
use crate::domain::filetime_at;
use crate::host::NetlogonEvent;

/// `Get-WinEvent -FilterHashtable @{ LogName = 'System'; ProviderName = 'NETLOGON'; Id = … }
/// [-MaxEvents n]` (or `-LogName System`): the host's NETLOGON events, newest first (as
/// Get-WinEvent returns them unless `-Oldest`), as `EventLogRecord`s with `Id`,
/// `ProviderName`, `LogName`, `TimeCreated` (a DateTime whose `ToFileTimeUtc()` works),
/// `Message` (the English text of the captures) and `Properties` (the insertion strings,
/// each with `.Value`). A filter matching nothing is the cmdlet's non-terminating
/// `NoMatchingEventsFound` error. Only the System log's NETLOGON events are modelled.
pub(super) fn get_win_event(eng: &mut Engine<'_, '_>, b: &Bound) -> CmdOutcome {
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
        events.extend(matching.into_iter().take(max).map(event_record));
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
fn event_message(e: &NetlogonEvent) -> String {
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

/// One event as the `EventLogRecord` Get-WinEvent returns.
fn event_record(e: &NetlogonEvent) -> Value {
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
    obj(
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
    )
}
