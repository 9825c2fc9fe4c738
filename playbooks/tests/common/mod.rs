//! Shared test helpers: the real Windows outputs, a probe-output builder, and a scripted
//! fake `Remote`.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::VecDeque;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use playbooks::{CommandOutput, Remote, RemoteError};

pub const DOMAIN: &str = "contoso.com";
pub const DC1: &str = "dc01.contoso.com";
pub const DC2: &str = "dc02.contoso.com";

/// Real Windows outputs (copied from the project's shared fixtures, see their SOURCES.md).
pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/windows-output")
}

/// A real Windows output, as stored (LF).
pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixture_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub fn crlf(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\n', "\r\n")
}

/// `nltest /dclist` as Windows prints it for a domain caller.
pub fn dclist(dcs: &[&str]) -> String {
    let mut s = format!(
        "Get list of DCs in domain '{DOMAIN}' from '\\\\{}'.\n",
        dcs.first().copied().unwrap_or(DC1)
    );
    for (i, dc) in dcs.iter().enumerate() {
        let pdc = if i == 0 { "[PDC]" } else { "     " };
        s.push_str(&format!(
            "    {dc} {pdc}  [DS] Site: Default-First-Site-Name\n"
        ));
    }
    s.push_str("The command completed successfully\n");
    s
}

/// `nltest /dsgetdc:<domain>` naming `dc`, shaped as the real capture
/// (`nltest_dsgetdc_ok.txt`), with or without the `PDC` flag.
pub fn dsgetdc(dc: &str, pdc: bool) -> String {
    format!(
        "           DC: \\\\{dc}\n      Address: \\\\192.168.0.1\n     Dom Guid: fdbd0643-d664-411b-aea0-fe343d7670a8\n     Dom Name: CONTOSO\n  Forest Name: {DOMAIN}\n Dc Site Name: Default-First-Site-Name\nOur Site Name: Default-First-Site-Name\n        Flags: {}GC DS LDAP KDC TIMESERV WRITABLE DNS_FOREST CLOSE_SITE FULL_SECRET WS 0xC000\nThe command completed successfully\n",
        if pdc { "PDC " } else { "" }
    )
}

/// The DC locator finding nothing (the real capture).
pub fn dsgetdc_failed() -> String {
    fixture("nltest_dsgetdc_failed_no_such_domain_1355.txt")
}

/// `/sc_query` as it goes with a `/sc_verify` output: the same lines without the
/// verification status (both print the channel's connection status).
pub fn sc_query_of(sc_verify: &str) -> String {
    sc_verify
        .lines()
        .filter(|l| !l.contains("Verification"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Builds what the probe script prints.
#[derive(Clone, Debug)]
pub struct ProbeOut {
    pub name: String,
    pub domain: String,
    pub part_of_domain: bool,
    pub domain_role: u32,
    pub user: String,
    pub admin_sid: String,
    pub tcsc: String,
    pub tcsc_error: String,
    pub sc_query_exit: i64,
    pub sc_query: String,
    pub sc_verify_exit: i64,
    pub sc_verify: String,
    pub dsgetdc: String,
    pub dsgetdc_pdc: String,
    pub crlf: bool,
}

impl ProbeOut {
    /// A healthy member (real `nltest_sc_verify_ok.txt`), bound to DC1, which is the PDC.
    pub fn healthy(name: &str, sid_tail: u32) -> Self {
        let verify = fixture("nltest_sc_verify_ok.txt");
        ProbeOut {
            name: name.to_string(),
            domain: DOMAIN.to_string(),
            part_of_domain: true,
            domain_role: 1,
            user: format!("{name}\\administrator"),
            admin_sid: format!("S-1-5-21-1004336348-1177238915-{sid_tail}-500"),
            tcsc: "True".to_string(),
            tcsc_error: String::new(),
            sc_query_exit: 0,
            sc_query: sc_query_of(&verify),
            sc_verify_exit: 0,
            sc_verify: verify,
            dsgetdc: dsgetdc(DC1, true),
            dsgetdc_pdc: dsgetdc(DC1, true),
            crlf: false,
        }
    }

    /// Broken with the given real nltest output (live and stored) and
    /// `Test-ComputerSecureChannel` False.
    pub fn broken(name: &str, sid_tail: u32, nltest_fixture: &str) -> Self {
        let verify = fixture(nltest_fixture);
        ProbeOut {
            tcsc: "False".to_string(),
            sc_query: sc_query_of(&verify),
            sc_verify: verify,
            ..ProbeOut::healthy(name, sid_tail)
        }
    }

    pub fn crlf(mut self, yes: bool) -> Self {
        self.crlf = yes;
        self
    }

    pub fn role(mut self, role: u32) -> Self {
        self.domain_role = role;
        self
    }

    pub fn domain(mut self, domain: &str) -> Self {
        self.domain = domain.to_string();
        self
    }

    /// The DC locator finds no DC (DNS pointing at a non-DC).
    pub fn no_locator(mut self) -> Self {
        self.dsgetdc = dsgetdc_failed();
        self.dsgetdc_pdc = dsgetdc_failed();
        self
    }

    pub fn workgroup(mut self) -> Self {
        self.domain = "WORKGROUP".to_string();
        self.part_of_domain = false;
        self.domain_role = 2;
        self
    }

    /// Does the probe script run its channel section (a member, not a DC)?
    fn member(&self) -> bool {
        self.part_of_domain && self.domain_role < 4
    }

    pub fn render(&self) -> String {
        let mut s = format!(
            "ts.name={}\nts.domain={}\nts.part_of_domain={}\nts.domain_role={}\nts.user={}\nts.admin_sid={}\n",
            self.name,
            self.domain,
            if self.part_of_domain { "True" } else { "False" },
            self.domain_role,
            self.user,
            self.admin_sid,
        );
        if self.member() {
            s.push_str(&format!(
                "ts.tcsc={}\nts.tcsc_error={}\nts.sc_query_exit={}\n--- sc_query\n{}--- end\nts.sc_verify_exit={}\n--- sc_verify\n{}--- end\n--- dsgetdc\n{}--- end\n--- dsgetdc_pdc\n{}--- end\n",
                self.tcsc,
                self.tcsc_error,
                self.sc_query_exit,
                nl(&self.sc_query),
                self.sc_verify_exit,
                nl(&self.sc_verify),
                nl(&self.dsgetdc),
                nl(&self.dsgetdc_pdc),
            ));
        }
        if self.crlf {
            crlf(&s)
        } else {
            s
        }
    }

    pub fn output(&self) -> CommandOutput {
        CommandOutput::ok(self.render())
    }

    pub fn probe(&self) -> playbooks::Probe {
        playbooks::parse_probe(&self.output()).expect("probe parses")
    }
}

/// Text ending in exactly one newline (fixtures may lack it).
fn nl(s: &str) -> String {
    if s.is_empty() || s.ends_with('\n') {
        s.to_string()
    } else {
        format!("{s}\n")
    }
}

/// What the fake expects next, and what it answers.
#[derive(Debug)]
pub enum Step {
    /// A PowerShell script containing the text; answer.
    Ps(&'static str, Result<CommandOutput, RemoteError>),
    /// A cmd line containing the text; answer.
    Cmd(&'static str, Result<CommandOutput, RemoteError>),
    /// A reconnect after reboot; answer.
    Reconnect(Result<(), RemoteError>),
}

/// One call the fake saw.
#[derive(Debug, Clone)]
pub struct Call {
    pub kind: &'static str,
    pub text: String,
    pub stdin: Option<Vec<u8>>,
}

/// A scripted remote: answers calls in order, panics on anything unexpected.
#[derive(Debug, Default)]
pub struct FakeRemote {
    pub steps: VecDeque<Step>,
    pub calls: Vec<Call>,
    pub reconnect: bool,
}

impl FakeRemote {
    pub fn new(steps: Vec<Step>) -> Self {
        FakeRemote {
            steps: steps.into(),
            calls: Vec::new(),
            reconnect: false,
        }
    }

    pub fn with_reconnect(mut self) -> Self {
        self.reconnect = true;
        self
    }

    pub fn assert_done(&self) {
        assert!(self.steps.is_empty(), "unused steps: {:?}", self.steps);
    }

    fn next(
        &mut self,
        kind: &'static str,
        text: &str,
        stdin: Option<&[u8]>,
    ) -> Result<CommandOutput, RemoteError> {
        self.calls.push(Call {
            kind,
            text: text.to_string(),
            stdin: stdin.map(<[u8]>::to_vec),
        });
        match self.steps.pop_front() {
            Some(Step::Ps(needle, reply)) if kind == "ps" => {
                assert!(
                    text.contains(needle),
                    "expected a script containing {needle:?}, got:\n{text}"
                );
                reply
            }
            Some(Step::Cmd(needle, reply)) if kind == "cmd" => {
                assert!(
                    text.contains(needle),
                    "expected a cmd line containing {needle:?}, got {text:?}"
                );
                reply
            }
            other => panic!("unexpected {kind} call {text:?}; next step was {other:?}"),
        }
    }
}

impl Remote for FakeRemote {
    fn run_powershell(
        &mut self,
        script: &str,
        stdin: Option<&[u8]>,
    ) -> impl Future<Output = Result<CommandOutput, RemoteError>> + Send {
        let r = self.next("ps", script, stdin);
        async move { r }
    }

    fn run_cmd(
        &mut self,
        command_line: &str,
    ) -> impl Future<Output = Result<CommandOutput, RemoteError>> + Send {
        let r = self.next("cmd", command_line, None);
        async move { r }
    }

    fn reconnect_after_reboot(
        &mut self,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), RemoteError>> + Send {
        self.calls.push(Call {
            kind: "reconnect",
            text: format!("{timeout:?}"),
            stdin: None,
        });
        let r = match self.steps.pop_front() {
            Some(Step::Reconnect(r)) => r,
            other => panic!("unexpected reconnect; next step was {other:?}"),
        };
        async move { r }
    }

    fn supports_reconnect(&self) -> bool {
        self.reconnect
    }
}

pub fn ok(stdout: &str) -> Result<CommandOutput, RemoteError> {
    Ok(CommandOutput::ok(crlf(stdout)))
}
