//! Secrets canary (issue 16): every command (`check`, `plan`, `repair`, `inventory`, `run`,
//! `lab serve`, `history`, `merge`) runs at `-vvv` with `RUST_LOG=trace` against a lab
//! whose passwords are canaries (the connecting account, the repair account, the
//! least-privileged logon-test account, the LDAP bind password, every member's local
//! Administrator), and not one byte of what the processes leave behind may hold one: stdout,
//! stderr, every report format, the journal, the SQLite history, the merged reports, and
//! `/proc/<pid>/cmdline` of every process started (and its descendants). Each canary is
//! looked for as UTF-8, UTF-16LE (NTLM's and PowerShell's encoding), base64 of either (at
//! each of the three byte alignments: stdin and `-EncodedCommand` travel as base64), hex,
//! Rust's `Debug` of the bytes, and as its NT hash (MD4 of the UTF-16LE password: what
//! NTLM keys come from). Each run also proves its canary was really used (the logons it
//! carried succeeded), so zero hits means "held and not leaked", not "never read".
//!
//! Also observed from outside: a running `trustsweep` is not dumpable and may not write a
//! core file (`cli/src/main.rs`).
//!
//! The in-memory lab has no LDAP server: there the LDAP password is read and held while
//! the LDAPS connection fails (a listener that closes every connection). Binds that reach
//! a DC and LAPS values read from one are the Samba AD DC tier's test here
//! (`ldap_binds_and_laps_values_do_not_leak`); vault passwords and `!vault` values,
//! `vault_passwords_and_vaulted_values_do_not_leak`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[allow(dead_code)] // Not every helper is used here.
mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use lab::faults::FaultKind;
use lab::model::{Lab, LabSpec};
use lab::wire::{RunningLab, WireOptions};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

/// The password of `LAB\Administrator`, given to `-u` hosts through `TRUSTSWEEP_PASSWORD`.
const CONN: &str = "Canary-Conn-7f3a91c2e4d0";
/// The repair account's (`LAB\tsrepair`): from the inventory, over stdin to the host.
const REPAIR: &str = "Canary-Repair-b85d0e6f13aa";
/// The least-privileged logon-test account's (`LAB\helpdesk`).
const LOGON: &str = "Canary-Logon-2c94a7d5e8b1";
/// The LDAP bind password (`TRUSTSWEEP_LDAP_PASSWORD`).
const LDAP: &str = "Canary-Ldap-e13f58b2a6c7";
/// A wrong connection password: the 401 path must not echo it either.
const WRONG: &str = "Canary-Wrong-5a0c7e9d21f8";

/// Longest a single command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(240);

/// Everything the processes left behind, labelled.
#[derive(Default)]
struct Evidence {
    items: Vec<(String, Vec<u8>)>,
    /// Processes whose cmdline was read (pid, label), to prove the reading happened.
    cmdlines: Vec<(u32, String)>,
}

impl Evidence {
    fn add(&mut self, label: impl Into<String>, bytes: Vec<u8>) {
        self.items.push((label.into(), bytes));
    }

    /// Reads `/proc/<pid>/cmdline` of `pid` and of every descendant of it now running.
    fn record_process_tree(&mut self, pid: u32, label: &str) {
        let mut todo = vec![pid];
        // Bounded: at most as many processes as the system has.
        let mut seen = 0usize;
        while let Some(p) = todo.pop() {
            seen += 1;
            if seen > 10_000 {
                break;
            }
            if let Some(cmdline) = read_cmdline(p) {
                if !cmdline.is_empty() && !self.cmdlines.iter().any(|(q, _)| *q == p) {
                    self.cmdlines.push((p, label.to_string()));
                }
                self.add(format!("/proc/{p}/cmdline ({label})"), cmdline);
            }
            todo.extend(children_of(p));
        }
    }

    /// Every file under `dir`, recursively.
    fn add_files(&mut self, dir: &Path) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                self.add_files(&path);
            } else {
                self.add(path.display().to_string(), std::fs::read(&path).unwrap());
            }
        }
    }
}

/// `/proc/<pid>/cmdline`. Right after a spawn it can be empty for a moment: execve(2)
/// closes the close-on-exec pipe that `spawn` waits on before the kernel has placed the
/// new arguments (fs/exec.c: `begin_new_exec`, then `create_elf_tables`); so an empty one
/// is read again, at most 200 times over about 200 ms, unless the process is a zombie
/// (whose cmdline stays empty). `None` once the process is gone.
fn read_cmdline(pid: u32) -> Option<Vec<u8>> {
    for _ in 0..200 {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()?
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
        if !cmdline.is_empty() || zombie {
            return Some(cmdline);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    std::fs::read(format!("/proc/{pid}/cmdline")).ok()
}

/// Pids whose parent is `pid` (from `/proc/*/stat`).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces and parentheses.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|s| s.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}

/// The forms a leaked secret could take, each named.
fn forms(secret: &str) -> Vec<(String, Vec<u8>)> {
    let utf8 = secret.as_bytes().to_vec();
    let utf16: Vec<u8> = secret.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let nt_hash = winrm::ntlm::crypto::ntowfv1(secret).to_vec();
    let mut out = Vec::new();
    for (name, bytes) in [("utf-8", utf8), ("utf-16le", utf16), ("nt-hash", nt_hash)] {
        out.push((name.to_string(), bytes.clone()));
        out.push((format!("hex of {name}"), hex(&bytes).into_bytes()));
        out.push((
            format!("HEX of {name}"),
            hex(&bytes).to_uppercase().into_bytes(),
        ));
        out.push((
            format!("Debug of the bytes of {name}"),
            format!("{bytes:?}")
                .trim_matches(|c| c == '[' || c == ']')
                .as_bytes()
                .to_vec(),
        ));
        for skew in 0..3 {
            out.push((
                format!("base64 of {name} at offset {skew}"),
                base64_core(&bytes, skew).into_bytes(),
            ));
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The base64 characters that depend only on `bytes` when they start `skew` bytes into a
/// base64-encoded stream (RFC 4648 section 4): whatever precedes or follows them, these
/// characters appear in the encoding.
fn base64_core(bytes: &[u8], skew: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut padded = vec![0u8; skew];
    padded.extend_from_slice(bytes);
    let mut chars = Vec::new();
    for chunk in padded.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            chars.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]);
        }
    }
    // Character j covers bits [6j, 6j + 6): keep those inside the secret's bits.
    let first = (8 * skew).div_ceil(6);
    let end = (8 * (skew + bytes.len())) / 6;
    String::from_utf8(chars[first..end].to_vec()).unwrap()
}

/// Bytes as Latin-1 text, so that std's substring search works on any byte string.
fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// Every place a secret of `secrets` shows up in `evidence`, in any of its forms.
fn leaks(evidence: &Evidence, secrets: &[(String, String)]) -> Vec<String> {
    let needles: Vec<(String, String)> = secrets
        .iter()
        .flat_map(|(name, secret)| {
            forms(secret)
                .into_iter()
                .map(move |(form, bytes)| (format!("{name} as {form}"), latin1(&bytes)))
        })
        .collect();
    let mut found = Vec::new();
    for (label, bytes) in &evidence.items {
        let hay = latin1(bytes);
        for (what, needle) in &needles {
            if hay.contains(needle.as_str()) {
                found.push(format!("{what} in {label}"));
            }
        }
    }
    found
}

/// A scratch directory of this test process: `in/` for what the test gives the commands
/// (inventories hold lab passwords by design), `out/` for what they write (searched).
fn scratch(name: &str) -> (PathBuf, PathBuf) {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("canary-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let (inp, out) = (root.join("in"), root.join("out"));
    std::fs::create_dir_all(&inp).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    (inp, out)
}

/// Runs `trustsweep -vvv ARGS` with `RUST_LOG=trace`, no password variable inherited and
/// `env` set; records its stdout, stderr and the cmdline of it and its descendants.
async fn run(ev: &mut Evidence, label: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_trustsweep"))
        .arg("-vvv")
        .args(args)
        .env_remove("TRUSTSWEEP_PASSWORD")
        .env_remove("TRUSTSWEEP_REPAIR_PASSWORD")
        .env_remove("TRUSTSWEEP_LDAP_PASSWORD")
        .env_remove("TRUSTSWEEP_LOGON_TEST_PASSWORD")
        .env("RUST_LOG", "trace")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // spawn returns once the child has exec'd: its cmdline is trustsweep's, unless it
    // has already exited (a zombie's is empty): then what it was started with is the
    // argv given here, recorded as such.
    let pid = child.id().unwrap();
    ev.record_process_tree(pid, label);
    let argv: Vec<u8> = ["trustsweep", "-vvv"]
        .iter()
        .chain(args)
        .flat_map(|a| a.bytes().chain([0]))
        .collect();
    ev.add(format!("argv of {label}"), argv);
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_task = tokio::spawn(async move {
        let mut b = Vec::new();
        let _ = stdout.read_to_end(&mut b).await;
        b
    });
    let err_task = tokio::spawn(async move {
        let mut b = Vec::new();
        let _ = stderr.read_to_end(&mut b).await;
        b
    });
    // While it runs, look for processes it starts (bounded by COMMAND_TIMEOUT).
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status.unwrap(),
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                assert!(Instant::now() < deadline, "{label}: no exit within {COMMAND_TIMEOUT:?}");
                // Itself again until its cmdline has been read (a loaded machine can
                // stretch the moment after exec), then whatever it started.
                if !ev.cmdlines.iter().any(|(p, _)| *p == pid) {
                    ev.record_process_tree(pid, label);
                } else {
                    for c in children_of(pid) {
                        ev.record_process_tree(c, label);
                    }
                }
            }
        }
    };
    let stdout = out_task.await.unwrap();
    let stderr = err_task.await.unwrap();
    ev.add(format!("stdout of {label}"), stdout.clone());
    ev.add(format!("stderr of {label}"), stderr.clone());
    Output {
        status,
        stdout,
        stderr,
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(out: &Output) -> Value {
    trustsweep_tests::json_stdout(out)
}

/// The inventory the lab writes, with `plain` hosts' own user and password lines removed
/// (they connect as `-u` with `TRUSTSWEEP_PASSWORD`).
fn inventory_without_credentials_of(running: &RunningLab, plain: &[&str]) -> String {
    let mut out = String::new();
    let mut in_plain = false;
    for line in running.inventory_yaml().lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if indent == 8 && trimmed.ends_with(':') {
            let name = trimmed.trim_end_matches(':').trim_matches('\'');
            in_plain = plain.contains(&name);
        }
        if in_plain
            && (trimmed.starts_with("ansible_user:") || trimmed.starts_with("ansible_password:"))
        {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// A loopback listener that accepts and closes every connection: an LDAPS "DC" whose TLS
/// handshake fails, so the LDAP password is read and held but never sent.
async fn closing_listener() -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            drop(conn);
        }
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_command_leaks_a_canary_password() {
    let (inp, out_dir) = scratch("sweep");
    let out = |name: &str| out_dir.join(name).display().to_string();

    let mut spec = LabSpec::healthy(8, 16);
    for kind in [
        FaultKind::Snapshot,
        FaultKind::DcReset,
        FaultKind::DenyNetworkLogon,
        FaultKind::DisabledAccount,
        FaultKind::FilteredAdmin,
        FaultKind::Offline,
    ] {
        spec = spec.with_fault(kind, 1);
    }
    let lab = Lab::build(spec).unwrap();
    assert!(lab.set_domain_password("Administrator", SecretString::from(CONN)));
    assert!(lab.set_domain_password("tsrepair", SecretString::from(REPAIR)));
    assert!(lab.set_domain_password("helpdesk", SecretString::from(LOGON)));
    let running = RunningLab::start(lab, WireOptions::default())
        .await
        .unwrap();
    let eps = running.endpoints().to_vec();
    let healthy: Vec<&str> = eps
        .iter()
        .filter(|e| e.info.fault.is_none())
        .map(|e| e.info.address.as_str())
        .collect();
    assert_eq!(healthy.len(), 2);
    let snapshot = eps
        .iter()
        .find(|e| e.info.fault == Some(FaultKind::Snapshot))
        .unwrap();

    let mut secrets: Vec<(String, String)> = vec![
        ("connection canary".into(), CONN.into()),
        ("repair canary".into(), REPAIR.into()),
        ("logon-test canary".into(), LOGON.into()),
        ("LDAP canary".into(), LDAP.into()),
        ("wrong-password canary".into(), WRONG.into()),
    ];
    for ep in &eps {
        secrets.push((
            format!("local Administrator password of {}", ep.info.address),
            ep.info.local_admin.password.expose_secret().to_string(),
        ));
    }

    // The healthy hosts connect as LAB\Administrator (-u, TRUSTSWEEP_PASSWORD), the
    // others as their local Administrator from the inventory.
    let inv_path = inp.join("hosts.yml");
    let yaml = inventory_without_credentials_of(&running, &healthy);
    assert!(yaml.contains(REPAIR) && yaml.contains(LOGON), "{yaml}");
    std::fs::write(&inv_path, yaml).unwrap();
    let inv = inv_path.to_str().unwrap();
    let conn_env = [("TRUSTSWEEP_PASSWORD", CONN)];
    let mut ev = Evidence::default();

    // check: every output there is at once.
    let report_dir = out("check-report");
    let (journal, history) = (out("check.jsonl"), out("history.sqlite"));
    let check = run(
        &mut ev,
        "check",
        &[
            "check",
            "-i",
            inv,
            "-u",
            "LAB\\Administrator",
            "--format",
            "json",
            "--report",
            &report_dir,
            "--journal",
            &journal,
            "--history",
            &history,
            "-o",
            &format!("json={}", out("check.json")),
            "-o",
            &format!("junit={}", out("check.xml")),
            "-o",
            &format!("csv={}", out("check.csv")),
            "-o",
            &format!("html={}", out("check.html")),
            "-o",
            &format!("markdown={}", out("check.md")),
        ],
        &conn_env,
    )
    .await;
    assert_eq!(check.status.code(), Some(2), "{}", stderr(&check));
    // The logs really are verbose (the binary has few events below debug), and the
    // connection canary was really used: the -u hosts got in with it.
    assert!(stderr(&check).contains("DEBUG"), "{}", stderr(&check));
    let doc = json(&check);
    for name in &healthy {
        let h = trustsweep_tests::report_host(&doc, name);
        assert_eq!(h["diagnosis"]["kind"], "healthy", "{h:#}");
        assert_eq!(
            h["observation"]["access"]["user"], "LAB\\Administrator",
            "{h:#}"
        );
    }
    // The logon-test canary, really used: on the healthy hosts alone (in the whole fleet
    // the hosts with a broken channel refuse it, and the sweep stops trying it after a
    // few refusals, so as not to lock the account out).
    let limit = healthy.join(":");
    let logon = run(
        &mut ev,
        "check --limit healthy",
        &[
            "check",
            "-i",
            inv,
            "-u",
            "LAB\\Administrator",
            "--limit",
            &limit,
            "--format",
            "json",
        ],
        &conn_env,
    )
    .await;
    assert_eq!(logon.status.code(), Some(0), "{}", stderr(&logon));
    let doc = json(&logon);
    for name in &healthy {
        let h = trustsweep_tests::report_host(&doc, name);
        assert_eq!(h["observation"]["domain_logon"], "accepted", "{h:#}");
    }

    // plan, text on stdout, its own report directory.
    let plan = run(
        &mut ev,
        "plan",
        &[
            "plan",
            "-i",
            inv,
            "-u",
            "LAB\\Administrator",
            "--allow-rejoin",
            "--report",
            &out("plan-report"),
        ],
        &conn_env,
    )
    .await;
    assert_eq!(plan.status.code(), Some(2), "{}", stderr(&plan));

    // repair: the repair canary crosses to the snapshot host over stdin and repairs it.
    let repair = run(
        &mut ev,
        "repair",
        &[
            "repair",
            "-i",
            inv,
            "-u",
            "LAB\\Administrator",
            "--yes",
            "--format",
            "json",
            "--report",
            &out("repair-report"),
            "--journal",
            &out("repair.jsonl"),
            "--history",
            &history,
        ],
        &conn_env,
    )
    .await;
    let doc = json(&repair);
    let h = trustsweep_tests::report_host(&doc, &snapshot.info.address);
    assert_eq!(
        h["repair"]["status"],
        "repaired",
        "{h:#}\n{}",
        stderr(&repair)
    );

    // Shards and their merge.
    let mut shards = Vec::new();
    for k in 1..=2 {
        let path = out(&format!("shard-{k}.json"));
        let shard = run(
            &mut ev,
            &format!("check --shard {k}/2"),
            &[
                "check",
                "-i",
                inv,
                "-u",
                "LAB\\Administrator",
                "--shard",
                &format!("{k}/2"),
                "-o",
                &format!("json={path}"),
            ],
            &conn_env,
        )
        .await;
        assert!(
            matches!(shard.status.code(), Some(0 | 2 | 3)),
            "{}",
            stderr(&shard)
        );
        shards.push(path);
    }
    let merge = run(
        &mut ev,
        "merge",
        &[
            "merge",
            &shards[0],
            &shards[1],
            "-o",
            &format!("html={}", out("merged.html")),
            "-o",
            &format!("csv={}", out("merged.csv")),
            "-o",
            &format!("junit={}", out("merged.xml")),
            "-o",
            &format!("markdown={}", out("merged.md")),
        ],
        &[],
    )
    .await;
    assert_eq!(json(&merge)["hosts"].as_array().unwrap().len(), eps.len());

    // history, both formats.
    for format in ["text", "json"] {
        let hist = run(
            &mut ev,
            &format!("history --format {format}"),
            &["history", &history, "--format", format],
            &[],
        )
        .await;
        assert_eq!(hist.status.code(), Some(0), "{}", stderr(&hist));
    }

    // inventory: the table, JSON and --explain (secrets masked).
    for extra in [&[][..], &["--format", "json"][..], &["--explain"][..]] {
        let mut args = vec!["inventory", "-i", inv];
        args.extend_from_slice(extra);
        let shown = run(&mut ev, &format!("inventory {extra:?}"), &args, &conn_env).await;
        assert_eq!(shown.status.code(), Some(0), "{}", stderr(&shown));
        assert!(String::from_utf8_lossy(&shown.stdout).contains(healthy[0]));
    }

    // run: one command with the connection canary, and one refused with a wrong password.
    let ep = eps.iter().find(|e| e.info.address == healthy[0]).unwrap();
    let host = format!("{}:{}", ep.addr.ip(), ep.addr.port());
    let ok = run(
        &mut ev,
        "run",
        &[
            "run",
            "--host",
            &host,
            "-u",
            "LAB\\Administrator",
            "--",
            "nltest",
            "/sc_verify:lab.test",
        ],
        &conn_env,
    )
    .await;
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let refused = run(
        &mut ev,
        "run (wrong password)",
        &[
            "run",
            "--host",
            &host,
            "-u",
            "LAB\\Administrator",
            "--",
            "hostname",
        ],
        &[("TRUSTSWEEP_PASSWORD", WRONG)],
    )
    .await;
    assert_ne!(refused.status.code(), Some(0), "{}", stderr(&refused));

    // LDAP: the bind password held while the LDAPS connection fails, for DC-side evidence
    // and for an OU sweep with LAPS.
    let (ldap_port, ldap_task) = closing_listener().await;
    let ldap_url = format!("ldaps://127.0.0.1:{ldap_port}");
    let ldap_env = [
        ("TRUSTSWEEP_PASSWORD", CONN),
        ("TRUSTSWEEP_LDAP_PASSWORD", LDAP),
    ];
    let with_ldap = run(
        &mut ev,
        "check --ldap",
        &[
            "check",
            "-i",
            inv,
            "-u",
            "LAB\\Administrator",
            "--ldap",
            &ldap_url,
            "--ldap-user",
            "LAB\\laps-reader",
            "--connect-timeout",
            "5",
            "--report",
            &out("ldap-report"),
        ],
        &ldap_env,
    )
    .await;
    assert_ne!(with_ldap.status.code(), Some(0), "{}", stderr(&with_ldap));
    let laps = run(
        &mut ev,
        "check --ou --laps",
        &[
            "check",
            "--ldap",
            &ldap_url,
            "--ou",
            "OU=Workstations,DC=lab,DC=test",
            "--ldap-user",
            "LAB\\laps-reader",
            "--laps",
            "--connect-timeout",
            "5",
        ],
        &ldap_env,
    )
    .await;
    assert_ne!(laps.status.code(), Some(0), "{}", stderr(&laps));
    assert!(
        stderr(&laps).to_lowercase().contains("ldap"),
        "{}",
        stderr(&laps)
    );
    ldap_task.abort();

    // lab serve, and sweeps of it: its own (lab-only) secrets are canaries too.
    let served_inv = inp.join("served.yml");
    let mut lab_serve = tokio::process::Command::new(env!("CARGO_BIN_EXE_trustsweep"))
        .args([
            "-vvv",
            "lab",
            "serve",
            "--hosts",
            "3",
            "--faults",
            "snapshot=1",
        ])
        .args(["--port", "0", "--seed", "7", "--write-inventory"])
        .arg(&served_inv)
        .env("RUST_LOG", "trace")
        .env_remove("TRUSTSWEEP_PASSWORD")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let serve_pid = lab_serve.id().unwrap();
    ev.record_process_tree(serve_pid, "lab serve");
    let mut serve_out = lab_serve.stdout.take().unwrap();
    let serve_out_task = tokio::spawn(async move {
        let mut b = Vec::new();
        let _ = serve_out.read_to_end(&mut b).await;
        b
    });
    let mut serve_err = BufReader::new(lab_serve.stderr.take().unwrap());
    let mut serve_log = Vec::new();
    let mut listening = false;
    for _ in 0..100_000 {
        let mut line = Vec::new();
        let n = tokio::time::timeout(
            Duration::from_secs(60),
            serve_err.read_until(b'\n', &mut line),
        )
        .await
        .expect("lab serve said nothing for 60 s")
        .unwrap();
        serve_log.extend_from_slice(&line);
        if n == 0 || String::from_utf8_lossy(&line).contains("listening for WinRM") {
            listening = n > 0;
            break;
        }
    }
    assert!(listening, "{}", String::from_utf8_lossy(&serve_log));
    let serve_err_task = tokio::spawn(async move {
        let _ = serve_err.read_to_end(&mut serve_log).await;
        serve_log
    });
    let served_yaml = std::fs::read_to_string(&served_inv).unwrap();
    let served_secrets: Vec<String> = served_yaml
        .lines()
        .filter_map(|l| l.trim().split_once(": "))
        .filter(|(key, _)| key.ends_with("_password"))
        .map(|(_, v)| v.trim_matches('\'').replace("''", "'"))
        .collect();
    assert_eq!(
        served_secrets.len(),
        5,
        "repair, logon test, three hosts: {served_yaml}"
    );
    for (i, s) in served_secrets.iter().enumerate() {
        secrets.push((format!("lab serve's password #{i}"), s.clone()));
    }
    let served = inp.join("served.yml").display().to_string();
    let sweep = run(
        &mut ev,
        "repair (lab serve)",
        &[
            "repair",
            "-i",
            &served,
            "--yes",
            "--report",
            &out("served-report"),
        ],
        &[],
    )
    .await;
    assert_eq!(sweep.status.code(), Some(0), "{}", stderr(&sweep));
    ev.record_process_tree(serve_pid, "lab serve");
    common::ctrl_c(&lab_serve);
    let status = tokio::time::timeout(Duration::from_secs(30), lab_serve.wait())
        .await
        .expect("lab serve did not stop on Ctrl-C")
        .unwrap();
    assert!(status.code().is_some() || status.success(), "{status:?}");
    ev.add("stdout of lab serve", serve_out_task.await.unwrap());
    ev.add("stderr of lab serve", serve_err_task.await.unwrap());

    // Every file written, then the search.
    ev.add_files(&out_dir);
    for file in [
        "check-report/trustsweep.json",
        "check.jsonl",
        "history.sqlite",
        "check.xml",
        "check.csv",
        "check.html",
        "check.md",
        "merged.html",
        "repair.jsonl",
    ] {
        assert!(
            ev.items
                .iter()
                .any(|(l, b)| l.ends_with(file) && !b.is_empty()),
            "{file} was written"
        );
    }
    // The long-running ones were certainly read while running (quick ones may have
    // exited before the first look: their argv is in the evidence instead).
    for label in ["check", "repair", "lab serve", "repair (lab serve)"] {
        assert!(
            ev.cmdlines.iter().any(|(_, l)| l == label),
            "cmdline of {label} read: {:?}",
            ev.cmdlines
        );
    }
    let total: usize = ev.items.iter().map(|(_, b)| b.len()).sum();
    eprintln!(
        "canary: searched {} items ({total} bytes) for {} secrets in {} forms each",
        ev.items.len(),
        secrets.len(),
        forms(CONN).len()
    );
    let found = leaks(&ev, &secrets);
    assert!(found.is_empty(), "secrets leaked:\n{}", found.join("\n"));
}

/// The LDAP and LAPS secrets against real Active Directory (the Samba AD DC pair of
/// `trustsweep_tests::samba`): DC-side evidence read with a bind of the Administrator,
/// `repair` with it, and an OU sweep with `--laps` that reads the seeded LAPS values
/// (`ms-Mcs-AdmPwd` of WS0002, `msLAPS-Password` of WS0003) as laps-reader. Those hosts
/// have no address (their names resolve nowhere here), so the values are read and held
/// but only connection attempts follow. Canaries: the two bind passwords, both LAPS
/// values, the repair account's password and every member's local Administrator password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldap_binds_and_laps_values_do_not_leak() {
    use lab::model::Directory;
    use lab::samba::SambaConfig;
    let samba = trustsweep_tests::samba::samba_lab();
    let (inp, out_dir) = scratch("samba");
    let out = |name: &str| out_dir.join(name).display().to_string();
    let mut spec = LabSpec::healthy(3, 43).with_fault(FaultKind::Snapshot, 1);
    spec.directory = Directory::Samba(Box::new(
        SambaConfig::from_facts_file(&samba.facts_file()).unwrap(),
    ));
    spec.name_prefix = "TSLC".into();
    spec.deployer_created_one_in = 0;
    let lab = tokio::task::spawn_blocking(move || Lab::build(spec).unwrap())
        .await
        .unwrap();
    let running = RunningLab::start(lab, WireOptions::default())
        .await
        .unwrap();
    let eps = running.endpoints().to_vec();
    let snapshot = eps
        .iter()
        .find(|e| e.info.fault == Some(FaultKind::Snapshot))
        .unwrap();
    let admin_pw = samba.fact("LAB_ADMIN_PASSWORD");
    let user_pw = samba.fact("LAB_USER_PASSWORD");
    let mut secrets: Vec<(String, String)> = vec![
        (
            "the Administrator's LDAP bind password".into(),
            admin_pw.into(),
        ),
        (
            "laps-reader's (and tsrepair's) password".into(),
            user_pw.into(),
        ),
        (
            "WS0002's legacy LAPS value".into(),
            "Legacy-Laps-0002!".into(),
        ),
        (
            "WS0003's Windows LAPS value".into(),
            "Windows-Laps-0003!".into(),
        ),
    ];
    for ep in &eps {
        secrets.push((
            format!("local Administrator password of {}", ep.info.address),
            ep.info.local_admin.password.expose_secret().to_string(),
        ));
    }
    let inv_path = inp.join("hosts.yml");
    let yaml = running.inventory_yaml();
    assert!(
        yaml.contains(user_pw),
        "the repair password is tsrepair's: {yaml}"
    );
    std::fs::write(&inv_path, yaml).unwrap();
    let inv = inv_path.to_str().unwrap();
    let ca = samba.fact("LAB_CA_FILE");
    let dcs = [
        "--ldap",
        "ldaps://127.0.0.10",
        "--ldap-dc",
        "ldaps://127.0.0.10",
        "--ldap-dc",
        "ldaps://127.0.0.11",
        "--ca-file",
        ca,
    ];
    let admin = samba.fact("LAB_ADMIN_USER");
    let admin_env = [("TRUSTSWEEP_LDAP_PASSWORD", admin_pw)];
    let mut ev = Evidence::default();

    // DC-side evidence, read as the Administrator: the DCs' copies of every account.
    let history = out("history.sqlite");
    let mut args = vec!["check", "-i", inv, "--format", "json", "--ldap-user", admin];
    args.extend_from_slice(&dcs);
    let report_dir = out("check-report");
    let journal = out("check.jsonl");
    args.extend_from_slice(&[
        "--report",
        &report_dir,
        "--journal",
        &journal,
        "--history",
        &history,
    ]);
    let check = run(&mut ev, "check --ldap", &args, &admin_env).await;
    assert_eq!(check.status.code(), Some(2), "{}", stderr(&check));
    let doc = json(&check);
    let evidence =
        trustsweep_tests::report_host(&doc, &snapshot.info.address)["evidence"].to_string();
    assert!(
        evidence.contains("computer account on dc1.lab.test: pwdLastSet")
            && evidence.contains("computer account on dc2.lab.test: pwdLastSet"),
        "the bind worked and the DCs were read: {evidence}\n{}",
        stderr(&check)
    );

    // repair with the DCs read: the repair password crosses to the snapshot host.
    let mut args = vec!["repair", "-i", inv, "--yes", "--format", "json"];
    args.extend_from_slice(&["--ldap-user", admin]);
    args.extend_from_slice(&dcs);
    let report_dir = out("repair-report");
    args.extend_from_slice(&["--report", &report_dir, "--history", &history]);
    let repair = run(&mut ev, "repair --ldap", &args, &admin_env).await;
    let doc = json(&repair);
    let h = trustsweep_tests::report_host(&doc, &snapshot.info.address);
    assert_eq!(
        h["repair"]["status"],
        "repaired",
        "{h:#}\n{}",
        stderr(&repair)
    );

    // An OU sweep with LAPS: the values are read (as laps-reader) and held.
    let laps_args = [
        "check",
        "--ldap",
        "ldaps://127.0.0.10",
        "--ca-file",
        ca,
        "--ou",
        samba.fact("LAB_OU"),
        "--ldap-filter",
        "(|(cn=WS0002)(cn=WS0003))",
        "--ldap-user",
        samba.fact("LAB_LAPS_READER"),
        "--laps",
        "--connect-timeout",
        "5",
        "--format",
        "json",
    ];
    let report_dir = out("laps-report");
    let mut args = laps_args.to_vec();
    args.extend_from_slice(&["--report", &report_dir]);
    let laps = run(
        &mut ev,
        "check --ou --laps",
        &args,
        &[("TRUSTSWEEP_LDAP_PASSWORD", user_pw)],
    )
    .await;
    let doc = json(&laps);
    let hosts = doc["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 2, "{doc:#}\n{}", stderr(&laps));
    for h in hosts {
        // Read and used: the connection it carried failed on the name, not on LAPS.
        let access = &h["observation"]["access"];
        assert_eq!(access["state"], "unreachable", "{h:#}");
        assert!(
            access["message"]
                .as_str()
                .unwrap()
                .contains("cannot connect")
                && !h.to_string().to_lowercase().contains("laps"),
            "the LAPS value was read (only the connection failed): {h:#}"
        );
    }

    ev.add_files(&out_dir);
    let found = leaks(&ev, &secrets);
    assert!(found.is_empty(), "secrets leaked:\n{}", found.join("\n"));
}

/// `ansible-vault encrypt_string` (the pinned ansible-core of the test venv) of each
/// `(name, value)` with `--vault-password-file FILE`: name → the vault text.
fn vault_encrypt(password_file: &Path, values: &[(String, String)]) -> Vec<(String, String)> {
    let mut cmd =
        std::process::Command::new(trustsweep_tests::python().with_file_name("ansible-vault"));
    cmd.arg("encrypt_string")
        .arg(format!("--vault-password-file={}", password_file.display()));
    for (name, _) in values {
        cmd.args(["--name", name]);
    }
    cmd.arg("--").args(values.iter().map(|(_, v)| v));
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut blocks: Vec<(String, String)> = Vec::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        if let Some(name) = line.strip_suffix(": !vault |") {
            blocks.push((name.to_string(), String::new()));
        } else if let Some((_, text)) = blocks.last_mut() {
            if !line.trim().is_empty() {
                text.push_str(line.trim());
                text.push('\n');
            }
        }
    }
    assert_eq!(blocks.len(), values.len());
    blocks
}

/// Ansible Vault: an inventory whose passwords (every member's local Administrator, the
/// repair account's canary) are `!vault` values under a canary vault password, read with
/// `--vault-password-file` by `check`, `repair` and `inventory`, and once with a wrong
/// vault password (another canary): neither vault password nor any decrypted value may
/// show up anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_passwords_and_vaulted_values_do_not_leak() {
    const VAULT: &str = "Canary-Vault-d41c8e07b3";
    const WRONG_VAULT: &str = "Canary-WrongVault-6e2f9a";
    let (inp, out_dir) = scratch("vault");
    let out = |name: &str| out_dir.join(name).display().to_string();
    let lab = Lab::build(LabSpec::healthy(3, 18).with_fault(FaultKind::Snapshot, 1)).unwrap();
    assert!(lab.set_domain_password("tsrepair", SecretString::from(REPAIR)));
    let running = RunningLab::start(lab, WireOptions::default())
        .await
        .unwrap();
    let eps = running.endpoints().to_vec();
    let snapshot = eps
        .iter()
        .find(|e| e.info.fault == Some(FaultKind::Snapshot))
        .unwrap();
    let private = |name: &str, text: &str| {
        use std::os::unix::fs::PermissionsExt;
        let path = inp.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    };
    let pass = private("vault-pass", &format!("{VAULT}\n"));
    let wrong = private("wrong-pass", &format!("{WRONG_VAULT}\n"));

    // Every password of the lab's inventory becomes a !vault value.
    let plain = running.inventory_yaml();
    let secret_of = |line: &str| {
        let (key, value) = line.trim_start().split_once(": ")?;
        (key == "ansible_password" || key == "trustsweep_repair_password")
            .then(|| value.trim_matches('\'').replace("''", "'"))
    };
    let values: Vec<(String, String)> = plain
        .lines()
        .filter_map(secret_of)
        .enumerate()
        .map(|(i, v)| (format!("v{i}"), v))
        .collect();
    assert_eq!(values.len(), eps.len() + 1, "{plain}");
    let vaulted = vault_encrypt(&pass, &values);
    let mut n = 0;
    let mut yaml = String::new();
    for line in plain.lines() {
        if secret_of(line).is_some() {
            let indent = &line[..line.len() - line.trim_start().len()];
            let key = line.trim_start().split_once(':').unwrap().0;
            yaml.push_str(&format!("{indent}{key}: !vault |\n"));
            for l in vaulted[n].1.lines() {
                yaml.push_str(&format!("{indent}  {l}\n"));
            }
            n += 1;
        } else {
            yaml.push_str(line);
            yaml.push('\n');
        }
    }
    for (_, v) in &values {
        assert!(!yaml.contains(v.as_str()), "still in the clear: {yaml}");
    }
    let inv_path = private("vaulted.yml", &yaml);
    let inv = inv_path.to_str().unwrap();
    let pass_arg = pass.to_str().unwrap();
    let mut secrets: Vec<(String, String)> = vec![
        ("the vault password".into(), VAULT.into()),
        ("a wrong vault password".into(), WRONG_VAULT.into()),
    ];
    secrets.extend(
        values
            .iter()
            .map(|(n, v)| (format!("vaulted value {n}"), v.clone())),
    );
    let mut ev = Evidence::default();

    let check = run(
        &mut ev,
        "check (vault)",
        &[
            "check",
            "-i",
            inv,
            "--vault-password-file",
            pass_arg,
            "--format",
            "json",
            "--report",
            &out("check-report"),
            "--history",
            &out("history.sqlite"),
        ],
        &[],
    )
    .await;
    assert_eq!(check.status.code(), Some(2), "{}", stderr(&check));
    // The decrypted passwords really were used: every host let its Administrator in.
    for h in json(&check)["hosts"].as_array().unwrap() {
        assert_eq!(h["observation"]["access"]["state"], "connected", "{h:#}");
    }
    let repair = run(
        &mut ev,
        "repair (vault)",
        &[
            "repair",
            "-i",
            inv,
            "--vault-password-file",
            pass_arg,
            "--yes",
            "--format",
            "json",
            "--journal",
            &out("repair.jsonl"),
        ],
        &[],
    )
    .await;
    let doc = json(&repair);
    let h = trustsweep_tests::report_host(&doc, &snapshot.info.address);
    assert_eq!(
        h["repair"]["status"],
        "repaired",
        "{h:#}\n{}",
        stderr(&repair)
    );
    for extra in [&["--explain"][..], &["--format", "json"][..]] {
        let mut args = vec!["inventory", "-i", inv, "--vault-password-file", pass_arg];
        args.extend_from_slice(extra);
        let shown = run(&mut ev, &format!("inventory (vault) {extra:?}"), &args, &[]).await;
        assert_eq!(shown.status.code(), Some(0), "{}", stderr(&shown));
    }
    let refused = run(
        &mut ev,
        "check (wrong vault password)",
        &[
            "check",
            "-i",
            inv,
            "--vault-password-file",
            wrong.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("vault"), "{}", stderr(&refused));

    ev.add_files(&out_dir);
    let found = leaks(&ev, &secrets);
    assert!(found.is_empty(), "secrets leaked:\n{}", found.join("\n"));
}

/// The search itself finds what it should: a secret in each form it claims to cover, inside
/// other bytes (so a zero above is not a blind search).
#[test]
fn the_search_finds_every_form() {
    let secret = "Canary-Self-Test-01";
    for (form, bytes) in forms(secret) {
        let mut ev = Evidence::default();
        let mut hay = b"prefix \x00\xff".to_vec();
        hay.extend_from_slice(&bytes);
        hay.extend_from_slice(b" suffix");
        ev.add("hay", hay);
        assert!(
            !leaks(&ev, &[("s".into(), secret.into())]).is_empty(),
            "{form}"
        );
    }
    // base64 at any alignment, as part of a longer encoded stream.
    for prefix in ["", "a", "ab", "abc"] {
        let stream = format!("{prefix}{secret}tail");
        let encoded = base64_core(stream.as_bytes(), 0);
        let mut ev = Evidence::default();
        ev.add("stream", encoded.into_bytes());
        assert!(
            !leaks(&ev, &[("s".into(), secret.into())]).is_empty(),
            "prefix {prefix:?}"
        );
    }
    let mut ev = Evidence::default();
    ev.add("clean", b"Canary-Self-Test-0 and nothing else".to_vec());
    assert!(leaks(&ev, &[("s".into(), secret.into())]).is_empty());
}

/// A running `trustsweep` is not dumpable and has a core-file limit of 0. Seen from
/// outside: `/proc/<pid>/limits`, and the owner of `/proc/<pid>` files, which the kernel
/// reports as root for a non-dumpable process (proc(5), "/proc/pid"): so the process runs
/// as another user than root (nobody, when this test is root).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_trustsweep_is_not_dumpable() {
    use std::os::unix::process::CommandExt;
    let me = std::fs::metadata("/proc/self").unwrap().uid();
    let run_as = if me == 0 { 65_534 } else { me };
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_trustsweep"));
    // nobody must be able to reach the binary: a checkout under /root is not searchable
    // by others, so then it runs from a copy in a world-searchable temporary directory.
    let _copy;
    let binary = if me == 0 && !others_may_run(&binary) {
        let dir = std::env::temp_dir().join(format!("canary-dumpable-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let copy = dir.join("trustsweep");
        std::fs::copy(&binary, &copy).unwrap();
        _copy = RemoveOnDrop(dir);
        copy
    } else {
        binary
    };
    let mut cmd = std::process::Command::new(&binary);
    cmd.args(["lab", "serve", "--hosts", "1", "--port", "0"])
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if me == 0 {
        cmd.uid(run_as).gid(65_534);
    }
    let mut child = tokio::process::Command::from(cmd)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut said = Vec::new();
    for _ in 0..20 {
        match tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await {
            Ok(Ok(Some(line))) if line.contains("listening for WinRM") => break,
            Ok(Ok(Some(line))) => said.push(line),
            other => panic!("lab serve did not start: {other:?} {said:?}"),
        }
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line.split_whitespace().nth(1) == Some(&run_as.to_string()),
        "{uid_line}"
    );
    assert_eq!(
        std::fs::metadata(format!("/proc/{pid}/status"))
            .unwrap()
            .uid(),
        0,
        "/proc/{pid} of a process running as uid {run_as} belongs to root only when it is \
         not dumpable"
    );
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(&fields[4..6], ["0", "0"], "{core}");
    common::ctrl_c(&child);
    let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
}

/// Whether a user other than the owner may execute `path` (every directory above it
/// searchable by others, the file executable by others).
fn others_may_run(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let file_ok = std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o001 != 0);
    file_ok
        && path.ancestors().skip(1).all(|dir| {
            dir.as_os_str().is_empty()
                || std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o001 != 0)
        })
}

/// Removes a directory when dropped.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
