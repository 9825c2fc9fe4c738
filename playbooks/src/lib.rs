//! trustsweep's judgement: what to send to a Windows host, how to read what it prints, why
//! its trust with the domain broke, what to do about it, and doing it. Pure logic over the
//! small [`Remote`] trait: no HTTP, no dependency on any other crate of ours. The CLI
//! implements [`Remote`] over a WinRM session; tests implement it as a scripted fake.
//!
//! A sweep uses it in this order:
//! 1. per host: the CLI connects and calls [`probe_host`] (one PowerShell start of
//!    [`scripts::PROBE`]: name, domain, `DomainRole`, machine SID, the stored channel
//!    status (`Test-ComputerSecureChannel`, `nltest /sc_query`), then the live test
//!    (`nltest /sc_verify`, which may rebind the channel as Windows does), then the DC
//!    locator and the PDC (`nltest /dsgetdc /force`, `/dsgetdc /pdc`); nothing else runs);
//!    it records a [`HostObservation`] (also for hosts that could not be reached, with
//!    [`Access::from_remote_error`]), with the endpoint `address`, the logon test with the
//!    least-privileged logon-test account ([`DomainLogon`]) and, with `--ldap`, each DC's
//!    copy of the computer account ([`DcAccount`]);
//!    [`observe_host`] does all of this step but the DC side, over connections the CLI built;
//! 2. fleet: [`diagnose_fleet`] → one [`Finding`] per host; [`summarize`] for `check`;
//!    [`fleet_pdcs`] → the PDC per domain;
//! 3. plan: [`plan_host`] / [`plan_fleet`] with [`PlanOptions`] (`plan` stops here);
//! 4. repair: [`repair_host`] for member actions, [`repair_on_dc`] for DC-side ones; each
//!    ends with a fresh probe and reports what the live test shows, not what was meant.
//!
//! Modules:
//!
//! * [`remote`] — the [`Remote`] trait (`run_powershell`, `run_cmd`, and a
//!   `reconnect_after_reboot` hook for rejoins), [`CommandOutput`], [`RemoteError`], and the
//!   credential types ([`DomainCredential`], [`StdinPayload`]): the repair password travels
//!   only over stdin and is redacted from `Debug` and from anything recorded.
//! * [`scripts`] — the exact PowerShell 5.1 scripts and `cmd` lines sent to hosts (the lab
//!   interprets exactly these). Only DC/domain/computer names are parameters, validated and
//!   single-quoted.
//! * [`observe`] — [`observe_host`]: phase 1 for one host over a [`Remote`] the CLI
//!   built (probe, access read from a failed run, the domain-logon test through a
//!   [`LogonAttempt`] as [`LogonTest`] allows), one [`HostObservation`] out.
//! * [`probe`] — [`probe_host`], and the parsers for the probe and for `nltest`
//!   (`/sc_query`, `/sc_verify`, `/sc_reset`, `/query`, `/dsgetdc`, `/dclist`). They read
//!   numeric statuses, line positions and shapes, never English words alone; CRLF or LF.
//! * [`diagnose`] — [`HostObservation`] in, [`Finding`] ([`Diagnosis`] + evidence) out,
//!   fleet-wide: name twins, SID duplicates, stale DCs (from DC-side `pwdLastSet`), DC
//!   locator failures against the rest of the domain; a 401 alone is never a broken
//!   trust; [`HostState`] buckets for `check`.
//! * [`plan`] — a [`HostPlan`] per finding: the ladder of [`Action`]s (each with its exact
//!   command), why, reboots, and what extra permission or person is needed.
//! * [`repair`] — [`repair_host`] runs a plan through a [`Remote`] and verifies;
//!   [`RepairEvent`]s stream progress; [`RepairOutcome`] is the verified result.

pub mod diagnose;
pub mod observe;
pub mod plan;
pub mod probe;
pub mod remote;
pub mod repair;
pub mod scripts;

pub use diagnose::{
    diagnose_fleet, diagnose_host, fleet_pdcs, looks_local, summarize, Access, DcAccount,
    DcAccountState, Diagnosis, DomainLogon, Finding, HostObservation, HostState, Summary,
};
pub use observe::{
    observe_host, record_probe, CloseRemote, LogonAttempt, LogonOutcome, LogonTest,
    RemoteSetupError,
};
pub use plan::{
    plan_fleet, plan_host, Action, HostPlan, PlanOptions, RejoinPreflight, RestorePreflight, Target,
};
pub use probe::{
    parse_dclist, parse_dsgetdc, parse_nltest, parse_probe, parse_tcsc_output, probe_host, DcEntry,
    DcList, DcLocator, NetlogonEvent, NltestFailure, NltestOutput, NltestStatus, Probe, ProbeError,
    ProbeRunError,
};
pub use remote::{
    CommandOutput, CredentialError, Directory, DirectoryError, DomainCredential, Remote,
    RemoteError, RemoteErrorKind, Secret, StdinPayload,
};
pub use repair::{
    parse_reset_output, repair_host, repair_host_with, repair_on_dc, verify, verify_interrupted,
    HostBaseline, RepairEvent, RepairOptions, RepairOutcome, RepairStatus, ResetFailed, StepRecord,
    Verification,
};
pub use scripts::ScriptError;
