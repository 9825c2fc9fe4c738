//! trustsweep's judgement: what to send to a Windows host, how to read what it prints, why
//! its trust with the domain broke, what to do about it, and doing it. Pure logic over the
//! small [`Remote`] trait: no HTTP, no dependency on any other crate of ours. The CLI
//! implements [`Remote`] over a WinRM session; tests implement it as a scripted fake.
//!
//! A sweep uses it in this order:
//! 1. per host: run [`scripts::PROBE`] (one PowerShell start), [`parse_probe`] it; if
//!    [`needs_dc_tests`], run [`scripts::test_dc`] for each of [`dc_test_targets`] and
//!    [`parse_dc_test`]; collect a [`HostObservation`] (also for hosts that could not be
//!    reached);
//! 2. fleet: [`diagnose_fleet`] → one [`Finding`] per host; [`summarize`] for `check`;
//! 3. plan: [`plan_host`] / [`plan_fleet`] with [`PlanOptions`] (`plan` stops here);
//! 4. repair: [`repair_host`] for member actions, [`repair_on_dc`] for DC-side ones; each
//!    ends with a fresh probe and reports what is, not what was meant.
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
//! * [`probe`] — parsers for the probe and for `nltest` (`/sc_verify`, `/sc_query`,
//!   `/sc_reset`, `/query`, `/dclist`) and the per-DC test. They read numeric statuses,
//!   never English words; CRLF or LF.
//! * [`diagnose`] — [`HostObservation`] in, [`Finding`] ([`Diagnosis`] + evidence) out,
//!   fleet-wide: clones (shared machine SID or computer name), replication lag (per-DC
//!   tests disagree), domain logon refused where it works elsewhere, UAC-filtered local
//!   admins; [`HostState`] buckets for `check`.
//! * [`plan`] — a [`HostPlan`] per finding: the ladder of [`Action`]s (each with its exact
//!   command), why, reboots, and what extra permission or person is needed.
//! * [`repair`] — [`repair_host`] runs a plan through a [`Remote`] and verifies;
//!   [`RepairEvent`]s stream progress; [`RepairOutcome`] is the verified result.

pub mod diagnose;
pub mod plan;
pub mod probe;
pub mod remote;
pub mod repair;
pub mod scripts;

pub use diagnose::{
    DcAccount, DcAccountState,
    dc_test_targets, diagnose_fleet, diagnose_host, fleet_pdc, looks_local, needs_dc_tests,
    summarize, Access, Diagnosis, DomainLogon, Finding, HostObservation, HostState, Summary,
};
pub use plan::{plan_fleet, plan_host, Action, HostPlan, PlanOptions, Target};
pub use probe::{
    parse_dc_test, parse_dclist, parse_nltest, parse_probe, parse_tcsc_output, DcEntry, DcList,
    DcTest, NltestFailure, NltestOutput, NltestStatus, Probe, ProbeError,
};
pub use remote::{
    CommandOutput, CredentialError, Directory, DomainCredential, Remote, RemoteError, RemoteErrorKind, Secret,
    StdinPayload,
};
pub use repair::{
    parse_reset_output, repair_host, repair_host_with, repair_on_dc, verify, RepairEvent,
    RepairOptions, RepairOutcome, RepairStatus, StepRecord, Verification,
};
pub use scripts::ScriptError;
