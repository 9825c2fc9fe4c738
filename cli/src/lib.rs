//! `trustsweep_cli`: everything behind the `trustsweep` binary — arguments in two stages
//! (clap flags, then a validated run plan), the fleet engine (bounded fan-out, events),
//! the sweep phases, reporters and named exit codes. A library so that its reporters and
//! commands are testable and reusable; `main.rs` only parses and dispatches.

pub mod dc;
pub mod engine;
pub mod exit;
pub mod fleet;
pub mod inventory_cmd;
pub mod journal;
pub mod lab_cmd;
pub mod progress;
pub mod remote;
pub mod report;
pub mod run;
pub mod sweep;
pub mod targets;
