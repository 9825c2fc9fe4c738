//! Exit codes: named constants, documented in the README, so a CI job can act on them.

/// Every host healthy (or, for `run`, the remote command's own exit code).
pub const OK: i32 = 0;
/// Usage or configuration error (bad flags, unreadable inventory, missing password).
pub const USAGE: i32 = 1;
/// At least one host has a broken trust.
pub const BROKEN: i32 = 2;
/// No trust is broken, but some hosts could not be checked (unreachable, access denied).
pub const INCOMPLETE: i32 = 3;
/// Interrupted (Ctrl-C).
pub const INTERRUPTED: i32 = 130;
