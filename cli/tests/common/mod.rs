//! What the binary's end-to-end tests share: running `trustsweep` as a person would, from
//! a clean environment. (The lab and the reports' JSON helpers live in `trustsweep-tests`.)

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

/// Runs the `trustsweep` binary with `args` and stdin closed, none of the password
/// variables it reads (`TRUSTSWEEP_PASSWORD`, `TRUSTSWEEP_REPAIR_PASSWORD`,
/// `TRUSTSWEEP_LDAP_PASSWORD`) inherited from the test's environment, and `env` set.
pub async fn run_trustsweep<S: AsRef<OsStr>>(
    args: impl IntoIterator<Item = S>,
    env: &[(&str, &str)],
) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_trustsweep"))
        .args(args)
        .env_remove("TRUSTSWEEP_PASSWORD")
        .env_remove("TRUSTSWEEP_REPAIR_PASSWORD")
        .env_remove("TRUSTSWEEP_LDAP_PASSWORD")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap()
}

/// `trustsweep lab serve` of four hosts, one a snapshot (seed 3), on free ports, with
/// `extra` options, writing its inventory to `inventory`. Waits (bounded: a handful of
/// lines) for the line it prints once every listener is bound, and returns the child
/// (killed when dropped) with that line.
#[allow(dead_code)] // Not every test binary serves a lab.
pub async fn serve_lab(extra: &[&str], inventory: &Path) -> (Child, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_trustsweep"))
        .args([
            "lab",
            "serve",
            "--hosts",
            "4",
            "--faults",
            "snapshot=1",
            "--port",
            "0",
            "--seed",
            "3",
        ])
        .args(extra)
        .arg("--write-inventory")
        .arg(inventory)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for _ in 0..10 {
        match tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await {
            Ok(Ok(Some(line))) if line.contains("listening for WinRM") => {
                // Its stderr stays open: a lab whose stderr is closed fails on its next line.
                child.stderr = Some(lines.into_inner().into_inner());
                return (child, line);
            }
            Ok(Ok(Some(_))) => continue,
            other => panic!("lab serve did not start: {other:?}"),
        }
    }
    panic!("lab serve did not say it was listening");
}

/// Sends `child` Ctrl-C (SIGINT), as a person stopping it would.
#[allow(dead_code)] // Not every test binary interrupts one.
pub fn ctrl_c(child: &Child) {
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
}

/// Writes `yaml` (a lab's inventory) to `NAME-PID.yml` in the tests' scratch directory and
/// returns its path: one file per test and test process, so runs side by side never share.
#[allow(dead_code)] // Not every test binary writes one.
pub fn write_inventory(name: &str, yaml: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{name}-{}.yml", std::process::id()));
    std::fs::write(&path, yaml).unwrap();
    path
}
