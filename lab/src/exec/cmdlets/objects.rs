//! `New-Object` (a PSCredential, or the UTF-8 encoding Ansible's bootstrap assigns to
//! `[Console]::InputEncoding`) and `ConvertTo-SecureString -AsPlainText -Force`.

use secrecy::SecretString;

use super::{err, Bound, CmdOutcome, ErrorRecord, PsCred, PsObject, Value};

pub(super) fn new_object(b: &Bound) -> CmdOutcome {
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

pub(super) fn convert_to_secure_string(b: &Bound) -> CmdOutcome {
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
