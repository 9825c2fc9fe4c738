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

/// Why the Samba lab could not be started: the environment is at fault (a file under the
/// target directory, bash, or the script itself).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SambaStartError {
    /// A file or directory under the target directory could not be created, locked or read.
    #[error("{action} {}: {source}", path.display())]
    File {
        /// What was being done (`create`, `lock`, `read`).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// bash could not be run.
    #[error("cannot run {}: {source}", script.display())]
    Spawn {
        /// `scripts/samba-dc.sh`.
        script: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The script ran and failed; its output says why.
    #[error(
        "could not start the Samba AD DC for the AD tests ({} start exited {code:?}):\n{stdout}\n{stderr}",
        script.display()
    )]
    Script {
        /// `scripts/samba-dc.sh`.
        script: PathBuf,
        /// Its exit code (`None` when a signal ended it).
        code: Option<i32>,
        /// Its standard output.
        stdout: String,
        /// Its standard error.
        stderr: String,
    },
}

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
    static LAB: OnceLock<Result<SambaLab, SambaStartError>> = OnceLock::new();
    match LAB.get_or_init(start) {
        Ok(lab) => lab,
        Err(why) => panic!("{why}"),
    }
}

fn start() -> Result<SambaLab, SambaStartError> {
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let dir = target.join("samba-lab");
    let file_err = |action, path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| SambaStartError::File {
            action,
            path,
            source,
        }
    };
    fs::create_dir_all(&target).map_err(file_err("create", &target))?;
    let lock_path = target.join("samba-lab.lock");
    let lock = File::create(&lock_path).map_err(file_err("create", &lock_path))?;
    lock.lock().map_err(file_err("lock", &lock_path))?;
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
        .map_err(|source| SambaStartError::Spawn {
            script: script.clone(),
            source,
        })?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(SambaStartError::Script {
            script,
            code: out.status.code(),
            stdout: stdout.into_owned(),
            stderr: stderr.into_owned(),
        });
    }
    eprintln!(
        "{stderr}{stdout}samba lab ready in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    drop(lock);
    let facts_path = dir.join("facts.env");
    let text = fs::read_to_string(&facts_path).map_err(file_err("read", &facts_path))?;
    let facts = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .collect();
    Ok(SambaLab { facts, script, dir })
}
