//! The output cmdlets: `Write-Output`, `Write-Host`, `Write-Error`, `Write-Warning`,
//! `Write-Verbose`, `Out-String`, `Select-Object` (`Out-Null` is in the table itself).

use super::{err, Bound, CmdOutcome, Engine, ErrorRecord, Value};

pub(super) fn write_output(b: &Bound, input: Vec<Value>) -> CmdOutcome {
    let mut out = Vec::new();
    if let Some(v) = b.get("InputObject") {
        match v {
            Value::Array(items) if !b.switch("NoEnumerate") => out.extend(items.iter().cloned()),
            other => out.push(other.clone()),
        }
    }
    out.extend(input);
    CmdOutcome {
        output: out,
        ..CmdOutcome::default()
    }
}

pub(super) fn write_host(eng: &mut Engine<'_, '_>, b: &Bound) -> CmdOutcome {
    let text = b.get("Object").map(Value::to_ps_string).unwrap_or_default();
    eng.stdout.push_str(&text);
    if !b.switch("NoNewline") {
        eng.stdout.push('\n');
    }
    CmdOutcome::none()
}

/// `Write-Error`: a non-terminating error whose FullyQualifiedErrorId is the exception
/// type alone (no cmdlet class after it).
pub(super) fn write_error(b: &Bound) -> CmdOutcome {
    const FQID: &str = "Microsoft.PowerShell.Commands.WriteErrorException";
    let msg = b.str("Message").unwrap_or_default();
    CmdOutcome::error(ErrorRecord {
        exception_type: FQID.into(),
        fqid: FQID.into(),
        ..err(
            "Write-Error",
            msg,
            FQID,
            "NotSpecified",
            "",
            "WriteErrorException",
        )
    })
}

pub(super) fn write_warning(b: &Bound) -> CmdOutcome {
    CmdOutcome {
        warnings: vec![b.str("Message").unwrap_or_default()],
        ..CmdOutcome::default()
    }
}

pub(super) fn write_verbose(b: &Bound) -> CmdOutcome {
    CmdOutcome {
        verbose: vec![b.str("Message").unwrap_or_default()],
        ..CmdOutcome::default()
    }
}

pub(super) fn out_string(input: &[Value]) -> CmdOutcome {
    let text: Vec<String> = input.iter().map(Value::to_ps_string).collect();
    CmdOutcome::out(Value::Str(if text.is_empty() {
        String::new()
    } else {
        format!("{}\r\n", text.join("\r\n"))
    }))
}

/// `Select-Object -ExpandProperty p` (other forms pass the input through).
pub(super) fn select_object(b: &Bound, input: Vec<Value>) -> CmdOutcome {
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
