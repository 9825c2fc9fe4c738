//! The throwaway Samba AD DC pair of `scripts/samba-dc.sh` (dc1 127.0.0.10, dc2
//! 127.0.0.11), started once per test process: other processes serialise on a file lock
//! and reuse a running lab of the same shape. The DCs stop when every process that asked
//! for them has exited (`--watch-pid`). A failure to start is kept, so every test that
//! needs the DCs fails with the same explanation instead of retrying.

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

use crate::workspace_root;

/// Computer accounts the script seeds in `OU=Workstations` (more than one LDAP page).
/// Every test binary asks for the same shape, or the script would re-provision.
pub const COMPUTERS: usize = 1100;

/// A running Samba lab and its facts (`facts.env`).
#[derive(Debug)]
pub struct SambaLab {
    /// `KEY=VALUE` facts the script wrote.
    pub facts: HashMap<String, String>,
    /// `scripts/samba-dc.sh`.
    pub script: PathBuf,
    /// `SAMBA_LAB_DIR`.
    pub dir: PathBuf,
}

impl SambaLab {
    /// A fact; panics (test support) naming the file when it is missing.
    #[allow(clippy::panic)]
    pub fn fact(&self, key: &str) -> &str {
        self.facts
            .get(key)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("{key} missing from {}/facts.env", self.dir.display()))
    }

    /// The facts file (what `--lab-samba` takes).
    pub fn facts_file(&self) -> PathBuf {
        self.dir.join("facts.env")
    }
}

/// The Samba lab, started on first use.
#[allow(clippy::panic)]
pub fn samba_lab() -> &'static SambaLab {
    static LAB: OnceLock<Result<SambaLab, String>> = OnceLock::new();
    match LAB.get_or_init(start) {
        Ok(lab) => lab,
        Err(why) => panic!("{why}"),
    }
}

fn start() -> Result<SambaLab, String> {
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let dir = target.join("samba-lab");
    fs::create_dir_all(&target).map_err(|e| format!("create {}: {e}", target.display()))?;
    let lock =
        File::create(target.join("samba-lab.lock")).map_err(|e| format!("lock file: {e}"))?;
    lock.lock().map_err(|e| format!("lock: {e}"))?;
    let script = root.join("scripts").join("samba-dc.sh");
    let t0 = Instant::now();
    let out = Command::new("bash")
        .arg(&script)
        .args([
            "--maximum-runtime",
            "1800",
            "--watch-pid",
            &std::process::id().to_string(),
            "start",
        ])
        .env("SAMBA_LAB_DIR", &dir)
        .env("LAB_WITH_DC2", "1")
        .env("LAB_COMPUTERS", COMPUTERS.to_string())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!(
            "could not start the Samba AD DC for the AD tests ({} start exited {:?}):\n{stdout}\n{stderr}",
            script.display(),
            out.status.code()
        ));
    }
    eprintln!(
        "{stderr}{stdout}samba lab ready in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    drop(lock);
    let text = fs::read_to_string(dir.join("facts.env"))
        .map_err(|e| format!("read {}/facts.env: {e}", dir.display()))?;
    let facts = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .collect();
    Ok(SambaLab { facts, script, dir })
}
