//! Native executables: `hostname`, `whoami`, `nltest`.
//!
//! `nltest` follows the output format of nltest's source (status lines `Status = N 0xHEX
//! NAME`, `Flags: %lx` then ` HAS_IP ` / ` HAS_TIMESERV `, `Trusted DC Name %ws ` — note
//! the trailing spaces, which the stored captures in testdata have lost; failures of the
//! Netlogon call go to stderr as `I_NetLogonControl failed: Status = ...` with exit code 1,
//! everything else ends with `The command completed successfully` and exit code 0).

use super::Env;
use crate::host::Host;
use crate::model::ChannelStatus;

/// Output of a native process (LF line endings).
#[derive(Debug, Clone, Default)]
pub(crate) struct NativeOut {
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) exit: i64,
}

impl NativeOut {
    fn ok(stdout: String) -> Self {
        NativeOut { stdout, stderr: String::new(), exit: 0 }
    }

    fn fail(stderr: String) -> Self {
        NativeOut { stdout: String::new(), stderr, exit: 1 }
    }
}

/// Runs a native program by (lower-case, `.exe`-less) name; `None` when it does not exist.
pub(crate) fn run(env: &mut Env<'_>, prog: &str, args: &[String]) -> Option<NativeOut> {
    match prog {
        "hostname" => Some(hostname(env)),
        "whoami" => Some(whoami(env, args)),
        "nltest" => Some(nltest(env, args)),
        _ => None,
    }
}

fn hostname(env: &Env<'_>) -> NativeOut {
    let name = env.st.host(env.host).map(|h| h.computer_name.clone()).unwrap_or_default();
    NativeOut::ok(format!("{name}\n"))
}

fn whoami(env: &Env<'_>, args: &[String]) -> NativeOut {
    match args.first() {
        None => NativeOut::ok(format!("{}\n", env.identity.whoami())),
        Some(a) => NativeOut::fail(format!("ERROR: Invalid argument/option - '{a}'.\nType \"WHOAMI /?\" for usage.\n")),
    }
}

/// Win32 status name as nltest prints it.
pub(crate) fn status_name(code: u32) -> &'static str {
    match code {
        0 => "NERR_Success",
        5 => "ERROR_ACCESS_DENIED",
        1311 => "ERROR_NO_LOGON_SERVERS",
        1326 => "ERROR_LOGON_FAILURE",
        1355 => "ERROR_NO_SUCH_DOMAIN",
        1722 => "RPC_S_SERVER_UNAVAILABLE",
        1786 => "ERROR_NO_TRUST_LSA_SECRET",
        1787 => "ERROR_NO_TRUST_SAM_ACCOUNT",
        _ => "",
    }
}

/// `Status = 5 0x5 ERROR_ACCESS_DENIED`.
pub(crate) fn status(code: u32) -> String {
    format!("Status = {code} 0x{code:x} {}", status_name(code))
}

fn control_failed(code: u32) -> NativeOut {
    NativeOut::fail(format!("I_NetLogonControl failed: {}\n", status(code)))
}

const USAGE: &str = "Usage: nltest [/OPTIONS]\n\n\n    /SERVER:<ServerName> - Specify <ServerName>\n\n    /QUERY - Query <ServerName> netlogon service\n    /SC_QUERY:<DomainName> - Query secure channel for <Domain> on <ServerName>\n    /SC_RESET:<DomainName>[\\<DcName>] - Reset secure channel for <Domain> on <ServerName> to <DcName>\n    /SC_VERIFY:<DomainName> - Verify secure channel for <Domain> on <ServerName>\n    /SC_CHANGE_PWD:<DomainName> - Change a secure channel  password for <Domain> on <ServerName>\n    /DCLIST:<DomainName> - Get list of DC's for <DomainName>\n";

enum Op {
    Query,
    ScQuery(String),
    ScVerify(String),
    ScReset(String),
    ScChangePwd(String),
    DcList(String),
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

fn nltest(env: &mut Env<'_>, args: &[String]) -> NativeOut {
    let mut op = None;
    for a in args {
        let next = if a.eq_ignore_ascii_case("/query") {
            Op::Query
        } else if let Some(d) = strip_prefix_ci(a, "/sc_query:") {
            Op::ScQuery(d.to_string())
        } else if let Some(d) = strip_prefix_ci(a, "/sc_verify:") {
            Op::ScVerify(d.to_string())
        } else if let Some(d) = strip_prefix_ci(a, "/sc_reset:") {
            Op::ScReset(d.to_string())
        } else if let Some(d) = strip_prefix_ci(a, "/sc_change_pwd:") {
            Op::ScChangePwd(d.to_string())
        } else if let Some(d) = strip_prefix_ci(a, "/dclist:") {
            Op::DcList(d.to_string())
        } else if let Some(server) = strip_prefix_ci(a, "/server:") {
            let own = env.st.host(env.host).map(|h| h.computer_name.clone()).unwrap_or_default();
            let s = server.trim_start_matches('\\');
            let label = s.split('.').next().unwrap_or(s);
            if !label.eq_ignore_ascii_case(&own) && !label.eq_ignore_ascii_case("localhost") {
                // Querying another machine's Netlogon is not modelled.
                return control_failed(1722);
            }
            continue;
        } else {
            return NativeOut::fail(USAGE.to_string());
        };
        if op.is_some() {
            return NativeOut::fail(USAGE.to_string());
        }
        op = Some(next);
    }
    let Some(op) = op else { return NativeOut::fail(USAGE.to_string()) };
    if let Op::DcList(d) = &op {
        return dclist(env, d);
    }
    let Some(host) = env.st.host(env.host).cloned() else { return control_failed(1722) };
    // TC_QUERY and QUERY need only query access; the others need control access.
    let needs_control = matches!(op, Op::ScVerify(_) | Op::ScReset(_) | Op::ScChangePwd(_));
    if needs_control && !env.elevated {
        return control_failed(5);
    }
    if !host.joined() {
        // Netlogon does not run on a workgroup machine.
        return control_failed(1722);
    }
    match op {
        Op::Query => {
            let s = env.st.channel(&host, None, env.now);
            NativeOut::ok(format!("Flags: 0\nConnection {}\nThe command completed successfully\n", status(s.win32())))
        }
        Op::ScQuery(d) => {
            if !env.st.domain.is_named(&d) {
                return control_failed(1355);
            }
            let s = env.st.channel(&host, None, env.now);
            NativeOut::ok(tc_info(env, s, false))
        }
        Op::ScVerify(d) => {
            if !env.st.domain.is_named(&d) {
                return control_failed(1355);
            }
            let s = env.st.channel(&host, None, env.now);
            NativeOut::ok(tc_info(env, s, true))
        }
        Op::ScReset(spec) => sc_reset(env, &host, &spec),
        Op::ScChangePwd(d) => {
            if !env.st.domain.is_named(&d) {
                return control_failed(1355);
            }
            sc_change_pwd(env, &host)
        }
        Op::DcList(_) => control_failed(1355),
    }
}

/// Level-2 output (`/sc_query`, `/sc_reset`, and with `verify` `/sc_verify`).
fn tc_info(env: &Env<'_>, s: ChannelStatus, verify: bool) -> String {
    let code = s.win32();
    let mut out = String::new();
    match s {
        ChannelStatus::Ok { dc } => {
            let fqdn = env.st.domain.dcs.get(dc).map(|d| d.fqdn.as_str()).unwrap_or("");
            let flags = if verify { "b0" } else { "30" };
            out.push_str(&format!("Flags: {flags} HAS_IP  HAS_TIMESERV \n"));
            out.push_str(&format!("Trusted DC Name \\\\{fqdn} \n"));
        }
        _ => {
            out.push_str(if verify { "Flags: 80\n" } else { "Flags: 0\n" });
            out.push_str("Trusted DC Name  \n");
        }
    }
    out.push_str(&format!("Trusted DC Connection Status {}\n", status(code)));
    if verify {
        out.push_str(&format!("Trust Verification {}\n", status(code)));
    }
    out.push_str("The command completed successfully\n");
    out
}

fn sc_reset(env: &mut Env<'_>, host: &Host, spec: &str) -> NativeOut {
    let (dom, dc_name) = match spec.split_once('\\') {
        Some((d, dc)) => (d, Some(dc)),
        None => (spec, None),
    };
    if !env.st.domain.is_named(dom) {
        return control_failed(1355);
    }
    let target = match dc_name {
        Some(name) => match env.st.domain.dc_by_name(name) {
            Some(i) => Some(i),
            None => return control_failed(1355),
        },
        None => host.effective_dc(),
    };
    let Some(dc) = target else { return NativeOut::ok(tc_info(env, ChannelStatus::NoLogonServers, false)) };
    if !host.reaches(dc) {
        return NativeOut::ok(tc_info(env, ChannelStatus::NoLogonServers, false));
    }
    if let Some(h) = env.st.host_mut(env.host) {
        h.bound_dc = dc;
    }
    let Some(host) = env.st.host(env.host) else { return control_failed(1722) };
    let s = env.st.channel(host, Some(dc), env.now);
    NativeOut::ok(tc_info(env, s, false))
}

fn sc_change_pwd(env: &mut Env<'_>, host: &Host) -> NativeOut {
    let s = env.st.channel(host, None, env.now);
    let ChannelStatus::Ok { dc } = s else { return control_failed(s.win32()) };
    let new = env.st.new_password(32);
    let computer = host.computer_name.clone();
    let Some(old) = host.secret.clone() else { return control_failed(5) };
    if !env.st.domain.change_password_self(&computer, dc, env.now, &old, new.clone()) {
        // Only real DCs refuse or fail here (the change binds as the computer account);
        // which status nltest prints then is not verified: the DC could not be used.
        return control_failed(1311);
    }
    if let Some(h) = env.st.host_mut(env.host) {
        h.secret = Some(new);
        h.bound_dc = dc;
    }
    NativeOut::ok(format!("Flags: 0\nConnection {}\nThe command completed successfully\n", status(0)))
}

fn dclist(env: &Env<'_>, domain: &str) -> NativeOut {
    let Some(host) = env.st.host(env.host) else { return control_failed(1722) };
    let from = host.effective_dc();
    let (true, Some(from)) = (env.st.domain.is_named(domain), from) else {
        return NativeOut::ok(format!("Cannot find DC to get DC list from.{}\nThe command completed successfully\n", status(1355)));
    };
    let dcs = &env.st.domain.dcs;
    let from_fqdn = dcs.get(from).map(|d| d.fqdn.as_str()).unwrap_or("");
    let mut out = String::new();
    if env.identity.is_domain() {
        out.push_str(&format!("Get list of DCs in domain '{domain}' from '\\\\{from_fqdn}'.\n"));
        let width = dcs.iter().map(|d| d.fqdn.len()).max().unwrap_or(1).clamp(1, 50);
        for d in dcs {
            out.push_str(&format!("    {:>width$}", d.fqdn));
            // Modern nltest prints " [PDC] " / 7 spaces (the old source printed 6).
            out.push_str(if d.pdc { " [PDC] " } else { "       " });
            out.push_str(&format!(" [DS] Site: {}\n", d.site));
        }
    } else {
        // A local account has no network identity the DC accepts: DsBind is refused and
        // nltest falls back (format of the fallback list not verified on a live host).
        out.push_str(&format!(
            "You don't have access to DsBind to {domain} (\\\\{from_fqdn}) (Trying NetServerEnum).\nList of DCs in Domain {domain}\n"
        ));
        for d in dcs {
            out.push_str(&format!("    \\\\{}", d.name.to_ascii_uppercase()));
            if d.pdc {
                out.push_str(" (PDC)");
            }
            out.push('\n');
        }
    }
    out.push_str("The command completed successfully\n");
    NativeOut::ok(out)
}
