//! The `--help` headings options are grouped under, so lab-only options never sit among
//! the ones that reach real hosts.

/// Where the hosts come from and which of them.
pub const INVENTORY: &str = "Inventory";
/// Reading (and, for repairs, writing) the DCs over LDAPS.
pub const ACTIVE_DIRECTORY: &str = "Active Directory";
/// How hosts are reached: accounts, TLS, concurrency and timeouts.
pub const CONNECTION: &str = "Connection";
/// What a repair may do.
pub const REPAIR: &str = "Repair";
/// Stdout, report files, the journal and the history.
pub const OUTPUT: &str = "Output";
/// The built-in simulated domain.
pub const LAB: &str = "Lab";
