//! Shared helpers for the end-to-end tests: the Python virtual environment that holds the
//! independent clients (pywinrm, pypsrp, pyspnego) used as referees of our wire format.
//!
//! The venv is created on first use under `target/interop-venv` from the pinned
//! `tests/python/requirements.txt`, guarded by a file lock so that concurrent test
//! binaries create it once. A test that needs it fails loudly if it cannot be made:
//! an interop test that silently skips would be a test that cannot fail.

pub mod samba;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Root of the workspace (the parent of this crate's manifest directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Path of the venv's Python interpreter, creating the venv if needed.
///
/// Panics (this is test support code) with the pip output when the venv cannot be built.
#[allow(clippy::panic, clippy::expect_used)]
pub fn python() -> PathBuf {
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let venv = target.join("interop-venv");
    let py = venv.join("bin").join("python");
    let requirements = root.join("tests").join("python").join("requirements.txt");
    let stamp = venv.join(".requirements-installed");
    fs::create_dir_all(&target).expect("create target dir");
    let lock = File::create(target.join("interop-venv.lock")).expect("create venv lock file");
    lock.lock().expect("lock venv");
    let wanted = fs::read_to_string(&requirements).expect("read tests/python/requirements.txt");
    if fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        let status = Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&venv)
            .status()
            .expect("run python3 -m venv");
        assert!(status.success(), "python3 -m venv failed");
        let out = Command::new(&py)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&requirements)
            .output()
            .expect("run pip");
        if !out.status.success() {
            panic!(
                "pip install -r {} failed:\n{}\n{}",
                requirements.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        fs::write(&stamp, wanted).expect("write venv stamp");
    }
    drop(lock);
    py
}

/// Runs a Python script (given as source text) in the interop venv with the given
/// arguments and returns (exit status success, stdout, stderr).
#[allow(clippy::expect_used)]
pub fn run_python(script: &str, args: &[&str]) -> (bool, String, String) {
    let py = python();
    let out = Command::new(py)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A command's stdout as JSON; panics (test support) with stdout and stderr when it is not.
#[allow(clippy::panic)]
pub fn json_stdout(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The entry of host `name` in a JSON report's `hosts`; panics (test support) when the
/// report has none.
#[allow(clippy::panic)]
pub fn report_host<'a>(doc: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    doc.get("hosts")
        .and_then(serde_json::Value::as_array)
        .and_then(|hosts| {
            hosts
                .iter()
                .find(|h| h.get("host").is_some_and(|n| n == name))
        })
        .unwrap_or_else(|| panic!("{name} missing from report"))
}
