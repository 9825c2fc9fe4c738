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

/// Builds what the probe script prints.
#[derive(Clone, Debug)]
pub struct ProbeOut {
    pub name: String,
    pub domain: String,
    pub part_of_domain: bool,
    pub user: String,
    pub admin_sid: String,
    pub tcsc: String,
    pub tcsc_error: String,
    pub nltest_exit: i64,
    pub nltest: String,
    pub dclist: String,
    pub crlf: bool,
}

impl ProbeOut {
    /// A healthy member (real `nltest_sc_verify_ok.txt`), one DC.
    pub fn healthy(name: &str, sid_tail: u32) -> Self {
        ProbeOut {
            name: name.to_string(),
            domain: DOMAIN.to_string(),
            part_of_domain: true,
            user: format!("{name}\\administrator"),
            admin_sid: format!("S-1-5-21-1004336348-1177238915-{sid_tail}-500"),
            tcsc: "True".to_string(),
            tcsc_error: String::new(),
            nltest_exit: 0,
            nltest: fixture("nltest_sc_verify_ok.txt"),
            dclist: dclist(&[DC1]),
            crlf: false,
        }
    }

    /// Broken with the given real nltest output and `Test-ComputerSecureChannel` False.
    pub fn broken(name: &str, sid_tail: u32, nltest_fixture: &str) -> Self {
        ProbeOut {
            tcsc: "False".to_string(),
            nltest: fixture(nltest_fixture),
            ..ProbeOut::healthy(name, sid_tail)
        }
    }

    pub fn dcs(mut self, dcs: &[&str]) -> Self {
        self.dclist = dclist(dcs);
        self
    }

    pub fn crlf(mut self, yes: bool) -> Self {
        self.crlf = yes;
        self
    }

    pub fn workgroup(mut self) -> Self {
        self.domain = "WORKGROUP".to_string();
        self.part_of_domain = false;
        self.tcsc = String::new();
        self.tcsc_error = "Cannot verify the secure channel password for the local computer. The computer is not joined to a domain.".to_string();
        self.nltest =
            "I_NetLogonControl failed: Status = 1722 0x6ba RPC_S_SERVER_UNAVAILABLE\n".to_string();
        self.nltest_exit = 1;
        self.dclist = "Cannot find DC to get DC list from.Status = 1355 0x54b ERROR_NO_SUCH_DOMAIN\nThe command completed successfully\n".to_string();
        self
    }

    pub fn render(&self) -> String {
        let s = format!(
            "ts.name={}\nts.domain={}\nts.part_of_domain={}\nts.user={}\nts.admin_sid={}\nts.tcsc={}\nts.tcsc_error={}\nts.nltest_exit={}\n--- nltest\n{}--- end\n--- dclist\n{}--- end\n",
            self.name,
            self.domain,
            if self.part_of_domain { "True" } else { "False" },
            self.user,
            self.admin_sid,
            self.tcsc,
            self.tcsc_error,
            self.nltest_exit,
            self.nltest,
            self.dclist
        );
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
