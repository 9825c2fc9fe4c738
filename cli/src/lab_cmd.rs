//! `trustsweep lab serve` and the in-process lab behind `--lab N`: a simulated Windows
//! domain whose member hosts each listen for WinRM on their own loopback address.
//!
//! `--scheme https` serves WinRM over TLS with certificates from a CA generated at start
//! (written owner-only next to the inventory as `ansible_winrm_ca_trust_path`), and
//! `--cbt` sets the listeners' `CbtHardeningLevel` for NTLM channel bindings.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use lab::faults::FaultKind;
use lab::model::{Directory, Lab, LabSpec};
use lab::samba::SambaConfig;
use lab::wire::{OfflineMode, RunningLab, WireOptions};
use winrm::ntlm::CbtHardening;
use winrm::server::ServerConfig;
use winrm::transport::Scheme;

use crate::exit;
use crate::heading;
use crate::reporter::console::{self, LabEvent};

/// How to build a lab (shared by `lab serve` and `--lab`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = heading::LAB)]
pub struct LabArgs {
    /// Faults to place, as KIND=COUNT,... (snapshot, clone, stale-dc, dc-reset,
    /// disabled-account, deleted-account, sid-duplicate, dns, no-dc, deny-network-logon,
    /// domain-controller, offline, slow, filtered-admin, hung; for clone and sid-duplicate
    /// the count is of pairs). Default: a realistic mix of every kind but hung (accepts,
    /// never answers: opt-in, it costs each client its read timeout).
    #[arg(long, value_name = "KIND=COUNT,...", value_parser = parse_faults)]
    pub faults: Option<FaultList>,
    /// Seed: the same seed and options give the same lab.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// What hosts cost in time, as measured on Windows (issue 15): lan, wan or far (RTT
    /// 1, 30 or 150 ms, paid per TCP connect and per request; 8 ms of server time per
    /// request; 60 ms to create a shell; PowerShell start-up drawn from the seed, median
    /// 450 ms, p99 2.5 s; Test-ComputerSecureChannel 60 ms and nltest 40 ms plus their DC
    /// round trips). Offline hosts become black holes (connects hang until the client's
    /// connect timeout). --latency-ms and --powershell-ms, when given, override its RTT
    /// and its PowerShell start-up.
    #[arg(long, value_name = "PROFILE")]
    pub latency_profile: Option<lab::latency::Profile>,
    /// Simulated network round-trip time per request (and per TCP connect), in
    /// milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub latency_ms: u64,
    /// Simulated round-trip time of the `slow` hosts, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 800)]
    pub slow_ms: u64,
    /// Simulated PowerShell start-up time per command, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub powershell_ms: u64,
    /// How many machine-password rotations `snapshot` hosts went through between the
    /// snapshot and the restore (0: a harmless restore).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub snapshot_rotations: usize,
    /// Let the in-memory DCs accept an account's previous password too (undocumented for
    /// Windows, refused by Samba; off by default, the pessimistic side).
    #[arg(long)]
    pub dc_accepts_previous: bool,
    /// Keep the lab's computer accounts in the real Samba AD DC pair that
    /// `LAB_WITH_DC2=1 scripts/samba-dc.sh start` runs, given its facts.env (hosts are
    /// then named TSL0001...). Sweeps of such a lab read the DCs over LDAPS.
    #[arg(long, value_name = "FACTS")]
    pub lab_samba: Option<PathBuf>,
    /// Serve WinRM over http (the 5985 listener, NTLM message encryption) or https (the
    /// 5986 listener, certificates from a CA the lab generates).
    #[arg(long, value_name = "SCHEME", default_value = "http", value_parser = parse_scheme)]
    pub scheme: Scheme,
    /// CbtHardeningLevel of the HTTPS listeners: none ignores NTLM channel bindings,
    /// relaxed (Windows' default) refuses a wrong one, strict also a missing one.
    #[arg(long, value_name = "LEVEL", default_value = "relaxed", value_parser = parse_cbt)]
    pub cbt: CbtHardening,
}

/// A `--scheme` or `--cbt` value the lab does not know (the `winrm` crate's words).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LabOptionError {
    /// `--scheme` is neither http nor https.
    #[error("{0}")]
    Scheme(String),
    /// `--cbt` is not none, relaxed or strict.
    #[error("{0}")]
    Cbt(String),
}

fn parse_scheme(s: &str) -> Result<Scheme, LabOptionError> {
    s.parse().map_err(LabOptionError::Scheme)
}

fn parse_cbt(s: &str) -> Result<CbtHardening, LabOptionError> {
    s.parse().map_err(LabOptionError::Cbt)
}

/// `trustsweep lab serve`.
#[derive(Debug, Args)]
#[command(next_help_heading = heading::LAB)]
pub struct ServeArgs {
    /// Number of member hosts.
    #[arg(long, default_value_t = 20)]
    hosts: usize,
    #[command(flatten)]
    lab: LabArgs,
    /// Write an Ansible-style YAML inventory of the lab (with its lab-only credentials) here.
    #[arg(long, value_name = "PATH")]
    write_inventory: Option<PathBuf>,
    /// Port every host listens on (falls back to an ephemeral port where it is taken);
    /// default 5985 for http, 5986 for https.
    #[arg(long)]
    port: Option<u16>,
}

/// A parsed `--faults` list (a newtype, so clap sees one value, not many).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultList(pub Vec<(FaultKind, usize)>);

/// A `--faults` entry that is not KIND=COUNT.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FaultsError {
    /// No `=`.
    #[error("'{0}': expected KIND=COUNT, e.g. snapshot=3")]
    NotKindCount(String),
    /// An unknown kind (the lab's words).
    #[error("{0}")]
    Kind(String),
    /// A count that is no whole number.
    #[error("'{0}': COUNT must be a whole number")]
    Count(String),
}

fn parse_faults(s: &str) -> Result<FaultList, FaultsError> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (kind, count) = part
            .split_once('=')
            .ok_or_else(|| FaultsError::NotKindCount(part.to_string()))?;
        let kind: FaultKind = kind
            .trim()
            .parse()
            .map_err(|e| FaultsError::Kind(format!("{e}")))?;
        let count: usize = count
            .trim()
            .parse()
            .map_err(|_| FaultsError::Count(part.to_string()))?;
        out.push((kind, count));
    }
    Ok(FaultList(out))
}

/// Why a lab could not be built or started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LabError {
    /// `--lab-samba FACTS` could not be read.
    #[error("{0}")]
    SambaFacts(String),
    /// The model could not be built from the options.
    #[error("cannot build the lab: {0}")]
    Build(#[from] lab::model::BuildError),
    /// The task building it failed.
    #[error("cannot build the lab: {0}")]
    BuildTask(#[from] tokio::task::JoinError),
    /// Its listeners could not start.
    #[error("cannot start the lab: {0}")]
    Start(#[from] lab::wire::WireError),
}

/// Builds the model for `hosts` hosts.
pub fn build(hosts: usize, args: &LabArgs) -> Result<Lab, LabError> {
    let mut spec = LabSpec::new(hosts, args.seed);
    if let Some(f) = &args.faults {
        spec.faults = f.0.clone();
    }
    spec.latency = Duration::from_millis(args.latency_ms);
    if let Some(profile) = args.latency_profile {
        spec.costs = profile.costs();
        if args.latency_ms == 0 {
            spec.latency = profile.rtt();
        }
        if args.powershell_ms > 0 {
            spec.costs.powershell = None;
        }
    }
    spec.snapshot_rotations = args.snapshot_rotations;
    spec.dc_accepts_previous = args.dc_accepts_previous;
    spec.slow_latency = Duration::from_millis(args.slow_ms).max(spec.latency);
    if let Some(facts) = &args.lab_samba {
        let samba =
            SambaConfig::from_facts_file(facts).map_err(|e| LabError::SambaFacts(e.to_string()))?;
        spec.directory = Directory::Samba(Box::new(samba));
        spec.name_prefix = SAMBA_NAME_PREFIX.to_string();
    }
    Ok(Lab::build(spec)?)
}

/// Computer names of a lab whose accounts live in Samba: apart from the WS* accounts the
/// Samba script seeds for the AD tests.
pub const SAMBA_NAME_PREFIX: &str = "TSL";

/// Starts the lab's listeners (ephemeral ports unless `port` is given).
pub async fn start(
    hosts: usize,
    args: &LabArgs,
    port: Option<u16>,
) -> Result<RunningLab, LabError> {
    // Building a Samba-backed lab talks to the DCs: off the async workers.
    let owned = args.clone();
    let lab = tokio::task::spawn_blocking(move || build(hosts, &owned)).await??;
    let opts = WireOptions {
        port,
        powershell_startup: Duration::from_millis(args.powershell_ms),
        server: ServerConfig {
            cbt_hardening: args.cbt,
            ..ServerConfig::default()
        },
        scheme: args.scheme,
        offline: match args.latency_profile {
            Some(_) => OfflineMode::BlackHole,
            None => OfflineMode::Refuse,
        },
        ..WireOptions::default()
    };
    Ok(RunningLab::start(lab, opts).await?)
}

/// `trustsweep lab serve`: runs in the foreground until interrupted.
pub async fn serve(args: ServeArgs) -> i32 {
    let port = args.port.unwrap_or(args.lab.scheme.default_port());
    const SERVE: Option<&str> = Some("lab serve");
    let running = match start(args.hosts, &args.lab, Some(port)).await {
        Ok(r) => r,
        Err(e) => {
            console::failed(SERVE, &e);
            return exit::USAGE;
        }
    };
    if let Some(path) = &args.write_inventory {
        if let Err(e) = write_lab_inventory(&running, path) {
            console::failed(SERVE, &e);
            return exit::USAGE;
        }
        console::lab(LabEvent::InventoryWritten { path });
    } else if let Some(path) = running.ca_file() {
        console::lab(LabEvent::CaFile { path });
    }
    console::lab(LabEvent::Serving {
        running: &running,
        cbt: args.lab.cbt,
    });
    let _ = tokio::signal::ctrl_c().await;
    console::lab(LabEvent::Stopped);
    exit::OK
}

/// `lab serve --write-inventory` could not write a file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteInventoryError {
    /// The HTTPS lab's CA, next to the inventory.
    #[error("cannot write the lab CA: {0}")]
    Ca(#[source] std::io::Error),
    /// The inventory.
    #[error("cannot write inventory {}: {source}", path.display())]
    Inventory {
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Writes the lab's inventory (with its lab-only credentials) to `path`; an HTTPS lab's CA
/// outlives the lab's temporary copy: it goes next to the inventory.
fn write_lab_inventory(
    running: &RunningLab,
    path: &std::path::Path,
) -> Result<(), WriteInventoryError> {
    let ca_path = match running.ca_pem() {
        Some(pem) => Some(write_ca_next_to(path, pem).map_err(WriteInventoryError::Ca)?),
        None => None,
    };
    write_private(path, &running.inventory_yaml_with_ca(ca_path.as_deref())).map_err(|source| {
        WriteInventoryError::Inventory {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// Writes an HTTPS lab's CA as `<inventory stem>-ca.pem` beside the inventory, owner-only,
/// and returns its absolute path (what the inventory names).
fn write_ca_next_to(inventory: &std::path::Path, pem: &str) -> std::io::Result<PathBuf> {
    let stem = inventory
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "inventory".into());
    let dir = match inventory.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let path = std::fs::canonicalize(&dir)?.join(format!("{stem}-ca.pem"));
    write_private(&path, pem)?;
    Ok(path)
}

/// Writes a file readable by its owner only (it holds lab passwords).
pub fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    lab::wire::write_owner_only(path, text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn scheme_and_cbt_errors_keep_the_winrm_words() {
        assert_eq!(parse_scheme("https").unwrap(), Scheme::Https);
        assert_eq!(parse_cbt("Strict").unwrap(), CbtHardening::Strict);
        assert_eq!(
            parse_scheme("ftp").unwrap_err().to_string(),
            "unknown scheme 'ftp' (expected http or https)"
        );
        assert_eq!(
            parse_cbt("loose").unwrap_err().to_string(),
            "unknown CbtHardeningLevel 'loose' (expected none, relaxed or strict)"
        );
    }
}
