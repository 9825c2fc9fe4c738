//! `trustsweep_cli`: everything behind the `trustsweep` binary — arguments in two stages
//! (clap flags, then a validated run plan), the fleet engine (bounded fan-out, events),
//! the sweep phases, reporters and named exit codes. A library so that its reporters and
//! commands are testable and reusable; `main.rs` only parses and dispatches.

pub mod credential_gate;
pub mod dc;
pub mod engine;
pub mod exit;
pub mod fleet;
pub mod heading;
pub mod inventory_cmd;
pub mod journal;
pub mod lab_cmd;
pub mod limits;
pub mod remote;
pub mod reporter;
pub mod run;
pub mod run_plan;
pub mod shard_env;
pub mod sweep;
pub mod targets;

/// The report model and its renderers (the `trustsweep-report` crate), as the commands use it.
pub use report;
