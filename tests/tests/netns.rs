//! Networks that really fail (issue 16): the lab and the sweep in two network namespaces
//! this test creates, joined by a veth pair, with nftables dropping packets in between.
//!
//! - A black-holed host (its SYNs dropped): its result is a connect timeout, after the
//!   sweep's `--connect-timeout`, and every other host is checked as usual.
//! - Packet loss (7% of the WinRM packets each way, dropped at random by nftables) and
//!   jitter of 0–300 ms: a sweep over NTLM-sealed HTTP finds every host healthy, so
//!   neither retransmissions nor delays break the sealing or its sequence numbers
//!   (MS-WSMV 2.2.9.1, MS-NLMP 3.4.4: every sealed message carries the next sequence
//!   number, and any gap or replay fails the signature check).
//!
//! Jitter comes from `tc netem` (`delay 150ms 150ms`) where the kernel has it; otherwise
//! (the Firecracker kernels CI runs on have no `sch_netem`) from a relay in the lab's
//! namespace that holds each chunk read from either side for a random 0–300 ms before
//! passing it on, in order. The relay delays the bytes of a stream, not single packets,
//! so it does not reorder segments as netem does; TCP hides reordering from both ends
//! anyway.
//!
//! Both ends run as this test binary again (`ip netns exec NS <this binary> --exact
//! <role>`): the lab through the `lab` API, the sweep as `trustsweep check` through the
//! `trustsweep` library, exactly as the binary runs it. Namespaces are named after this
//! process's pid, so parallel runs never collide, and deleted by a guard even when the
//! test fails. Without root, `ip` or `nft`, the tests say why and pass as skipped, except
//! in CI (`CI=true` or `TRUSTSWEEP_REQUIRE_NETNS=1`), where a skip is a failure unless
//! `TRUSTSWEEP_ALLOW_NETNS_SKIP=1`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// Which part this process plays when run again inside a namespace.
const ROLE: &str = "TRUSTSWEEP_NETNS_ROLE";
/// The lab's settings, for the `lab` role: hosts, whether to relay with jitter, the
/// inventory path to write.
const LAB_HOSTS: &str = "TRUSTSWEEP_NETNS_HOSTS";
const LAB_JITTER: &str = "TRUSTSWEEP_NETNS_JITTER";
const LAB_INVENTORY: &str = "TRUSTSWEEP_NETNS_INVENTORY";
/// The sweep's arguments after `check`, separated by U+001F (an environment value cannot hold NUL), for the `sweep` role.
const SWEEP_ARGS: &str = "TRUSTSWEEP_NETNS_SWEEP_ARGS";

/// The lab side of the veth pair; hosts at `HOSTS_FROM`, `HOSTS_FROM + 1`, ...; relays
/// (when jitter is the relay's) at `RELAYS_FROM + i`.
const LAB_SIDE: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const SWEEP_SIDE: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const HOSTS_FROM: u8 = 10;
const RELAYS_FROM: u8 = 100;
const WINRM_PORT: u16 = 5985;
/// The longest jitter the relay adds to a chunk.
const JITTER_MAX_MS: u64 = 300;

fn host_ip(i: usize, from: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, 0, from + u8::try_from(i).unwrap())
}

// ---------------------------------------------------------------------------------------
// Prerequisites and the namespaces.

/// Why namespaces cannot be made here, if they cannot.
fn unavailable() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or("?");
    if euid != "0" {
        return Some(format!(
            "not root (euid {euid}): `ip netns add` needs CAP_SYS_ADMIN"
        ));
    }
    for (tool, arg, package) in [("ip", "-V", "iproute2"), ("nft", "--version", "nftables")] {
        let ok = Command::new(tool)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Some(format!(
                "`{tool}` is not installed (Debian package {package})"
            ));
        }
    }
    None
}

/// Returns false (after saying why) when the test must skip; panics where a skip is not
/// allowed.
fn available(test: &str) -> bool {
    let Some(why) = unavailable() else {
        return true;
    };
    skip(test, &why);
    false
}

fn skip(test: &str, why: &str) {
    let required = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
        || std::env::var("TRUSTSWEEP_REQUIRE_NETNS").is_ok_and(|v| v == "1");
    let allowed = std::env::var("TRUSTSWEEP_ALLOW_NETNS_SKIP").is_ok_and(|v| v == "1");
    if required && !allowed {
        panic!(
            "{test}: network namespaces are unavailable ({why}), and CI requires them \
             (set TRUSTSWEEP_ALLOW_NETNS_SKIP=1 to allow the skip)"
        );
    }
    eprintln!("SKIPPED {test}: network namespaces are unavailable: {why}");
}

/// Runs a command, panicking with its output when it fails.
fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `nft -f -` in namespace `ns` with `rules`.
fn nft(ns: &str, rules: &str) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(rules.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "nft -f - in {ns}: {}\n{rules}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Packets counted by the rules of namespace `ns` that carry `comment`.
fn dropped(ns: &str, comment: &str) -> u64 {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "list", "ruleset"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!("comment \"{comment}\"")))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "packets")?;
            words.next()?.parse::<u64>().ok()
        })
        .sum()
}

/// Two namespaces joined by a veth pair: `lab` (10.77.0.1 and every host address) and
/// `sweep` (10.77.0.2). Deleted on drop, also when the test panics.
struct Namespaces {
    lab: String,
    sweep: String,
    created: Vec<String>,
}

impl Namespaces {
    fn create(case: &str, hosts: usize) -> Result<Namespaces, String> {
        let pid = std::process::id();
        let mut ns = Namespaces {
            lab: format!("tsw-{pid}-{case}-lab"),
            sweep: format!("tsw-{pid}-{case}-sweep"),
            created: Vec::new(),
        };
        for name in [ns.lab.clone(), ns.sweep.clone()] {
            let out = Command::new("ip")
                .args(["netns", "add", &name])
                .output()
                .map_err(|e| format!("cannot run ip: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "`ip netns add {name}` failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            ns.created.push(name);
        }
        // Made inside the namespaces directly: nothing appears in the namespace this
        // test runs in, so fixed interface names cannot collide with a parallel run.
        sh(&[
            "ip",
            "link",
            "add",
            "veth-lab",
            "netns",
            &ns.lab,
            "type",
            "veth",
            "peer",
            "name",
            "veth-sweep",
            "netns",
            &ns.sweep,
        ]);
        let lab_side = format!("{LAB_SIDE}/24");
        let sweep_side = format!("{SWEEP_SIDE}/24");
        sh(&[
            "ip", "-n", &ns.lab, "addr", "add", &lab_side, "dev", "veth-lab",
        ]);
        for i in 0..hosts {
            for from in [HOSTS_FROM, RELAYS_FROM] {
                let a = format!("{}/24", host_ip(i, from));
                sh(&["ip", "-n", &ns.lab, "addr", "add", &a, "dev", "veth-lab"]);
            }
        }
        sh(&[
            "ip",
            "-n",
            &ns.sweep,
            "addr",
            "add",
            &sweep_side,
            "dev",
            "veth-sweep",
        ]);
        for (n, dev) in [(&ns.lab, "veth-lab"), (&ns.sweep, "veth-sweep")] {
            sh(&["ip", "-n", n, "link", "set", "lo", "up"]);
            sh(&["ip", "-n", n, "link", "set", dev, "up"]);
        }
        Ok(ns)
    }

    /// Adds `delay 150ms 150ms` (0–300 ms) on both ends when the kernel has netem.
    fn netem_jitter(&self) -> bool {
        let mut ok = true;
        for (n, dev) in [(&self.lab, "veth-lab"), (&self.sweep, "veth-sweep")] {
            ok &= Command::new("ip")
                .args(["netns", "exec", n, "tc", "qdisc", "add", "dev", dev, "root"])
                .args(["netem", "delay", "150ms", "150ms"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
        }
        ok
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in &self.created {
            // Deleting a namespace removes its veth end, and with it the peer.
            let _ = Command::new("ip")
                .args(["netns", "del", name])
                .stderr(Stdio::null())
                .status();
        }
    }
}

// ---------------------------------------------------------------------------------------
// The two roles, run as this binary again inside a namespace.

/// This binary, run again in `ns` as `role` (an ignored test of this file) with `env`.
fn role_command(ns: &str, role: &str, env: &[(&str, String)]) -> tokio::process::Command {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = tokio::process::Command::new("ip");
    cmd.args(["netns", "exec", ns])
        .arg(exe)
        .args([
            "--exact",
            role,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, role)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .kill_on_drop(true);
    cmd
}

fn in_role(role: &str) -> bool {
    let mine = std::env::var(ROLE).is_ok_and(|r| r == role);
    assert!(
        mine,
        "{role} is one end of the netns tests, started by them inside a namespace"
    );
    mine
}

/// The lab end: a lab of `TRUSTSWEEP_NETNS_HOSTS` healthy hosts on the veth addresses
/// (port 5985), relays with jitter in front of them when asked, the inventory (pointing
/// at the relays, if any) written; `ready` on stdout, then serves until stdin closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "one end of the netns tests: they start it inside a namespace"]
async fn role_lab() {
    use lab::model::{Lab, LabSpec};
    use lab::wire::{RunningLab, WireOptions};
    if !in_role("role_lab") {
        return;
    }
    let hosts: usize = std::env::var(LAB_HOSTS).unwrap().parse().unwrap();
    let jitter = std::env::var(LAB_JITTER).is_ok_and(|v| v == "relay");
    let running = RunningLab::start(
        Lab::build(LabSpec::healthy(hosts, 16)).unwrap(),
        WireOptions {
            first_address: host_ip(0, HOSTS_FROM),
            port: Some(WINRM_PORT),
            shared_listener: Some(false),
            ..WireOptions::default()
        },
    )
    .await
    .unwrap();
    let mut yaml = running.inventory_yaml();
    let stats = Arc::new(RelayStats::default());
    let mut relays = Vec::new();
    for (i, ep) in running.endpoints().iter().enumerate() {
        assert_eq!(ep.addr.port(), WINRM_PORT, "{ep:?}");
        if jitter {
            let front = (host_ip(i, RELAYS_FROM), WINRM_PORT);
            let listener = tokio::net::TcpListener::bind(front).await.unwrap();
            relays.push(tokio::spawn(relay(
                listener,
                ep.addr,
                i as u64,
                stats.clone(),
            )));
            yaml = yaml.replace(
                &format!("ansible_host: '{}'", ep.addr.ip()),
                &format!("ansible_host: '{}'", front.0),
            );
        }
    }
    std::fs::write(std::env::var(LAB_INVENTORY).unwrap(), yaml).unwrap();
    // On a line of its own: the harness has printed "test role_lab ... " without one.
    println!("\nready");
    // Serve until the test closes stdin (bounded: the test's own timeouts end it first).
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        let _ = closed_tx.send(());
    });
    let _ = tokio::time::timeout(Duration::from_secs(900), closed_rx).await;
    println!(
        "\nrelay: {} chunks delayed, {} ms the longest",
        stats.chunks.load(Ordering::SeqCst),
        stats.longest_ms.load(Ordering::SeqCst)
    );
}

#[derive(Default)]
struct RelayStats {
    chunks: AtomicU64,
    longest_ms: AtomicU64,
}

/// Accepts on `listener` and relays each connection to `target`, every chunk held for a
/// random 0–300 ms (a fixed-seed generator per connection), in order.
async fn relay(
    listener: tokio::net::TcpListener,
    target: std::net::SocketAddr,
    seed: u64,
    stats: Arc<RelayStats>,
) {
    let mut n = 0u64;
    while let Ok((client, _)) = listener.accept().await {
        n += 1;
        let connect = tokio::net::TcpStream::connect(target);
        let Ok(Ok(server)) = tokio::time::timeout(Duration::from_secs(10), connect).await else {
            continue;
        };
        let (cr, cw) = client.into_split();
        let (sr, sw) = server.into_split();
        let s = seed * 1_000 + n;
        tokio::spawn(delayed_pipe(cr, sw, s * 2 + 1, stats.clone()));
        tokio::spawn(delayed_pipe(sr, cw, s * 2 + 2, stats.clone()));
    }
}

/// Copies `from` to `to`, each chunk delivered at max(previous delivery, arrival + a
/// random 0–300 ms): jitter without reordering. Ends at EOF or an error on either side.
async fn delayed_pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    seed: u64,
    stats: Arc<RelayStats>,
) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(tokio::time::Instant, Vec<u8>)>(1024);
    let reader = tokio::spawn(async move {
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut last = tokio::time::Instant::now();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            // xorshift64: a fixed sequence per connection.
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let delay = rng % (JITTER_MAX_MS + 1);
            stats.chunks.fetch_add(1, Ordering::SeqCst);
            stats.longest_ms.fetch_max(delay, Ordering::SeqCst);
            let at = (tokio::time::Instant::now() + Duration::from_millis(delay)).max(last);
            last = at;
            if tx.send((at, buf[..n].to_vec())).await.is_err() {
                break;
            }
        }
    });
    while let Some((at, chunk)) = rx.recv().await {
        tokio::time::sleep_until(at).await;
        if to.write_all(&chunk).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
    reader.abort();
}

/// `trustsweep check`'s arguments, parsed as its command line would be.
#[derive(clap::Parser)]
struct CheckCommand {
    #[command(flatten)]
    args: trustsweep_cli::fleet::CheckArgs,
}

/// The sweep end: `trustsweep check` with the arguments of `TRUSTSWEEP_NETNS_SWEEP_ARGS`;
/// prints its exit code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "one end of the netns tests: they start it inside a namespace"]
async fn role_sweep() {
    use clap::Parser as _;
    if !in_role("role_sweep") {
        return;
    }
    let raw = std::env::var(SWEEP_ARGS).unwrap();
    let args = std::iter::once("check").chain(raw.split('\x1f'));
    let cmd = CheckCommand::try_parse_from(args).unwrap();
    let code = trustsweep_cli::fleet::check(cmd.args).await;
    println!("\nsweep exit code: {code}");
}

// ---------------------------------------------------------------------------------------
// The tests.

/// A lab running in `ns.lab`; the child ends when dropped.
struct LabEnd {
    child: tokio::process::Child,
    inventory: PathBuf,
}

async fn start_lab(ns: &Namespaces, hosts: usize, jitter_relay: bool, tag: &str) -> LabEnd {
    let inventory = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("netns-{tag}-{}.yml", std::process::id()));
    let mut child = role_command(
        &ns.lab,
        "role_lab",
        &[
            (LAB_HOSTS, hosts.to_string()),
            (
                LAB_JITTER,
                if jitter_relay { "relay" } else { "none" }.to_string(),
            ),
            (LAB_INVENTORY, inventory.display().to_string()),
        ],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut said = Vec::new();
    // Bounded: the harness prints a few lines before the role's own.
    for _ in 0..50 {
        match tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await {
            Ok(Ok(Some(line))) if line == "ready" => {
                child.stdout = Some(lines.into_inner().into_inner());
                return LabEnd { child, inventory };
            }
            Ok(Ok(Some(line))) => said.push(line),
            other => panic!("the lab did not start: {other:?}\n{}", said.join("\n")),
        }
    }
    panic!("the lab did not say it was ready:\n{}", said.join("\n"));
}

impl LabEnd {
    /// Closes its stdin and returns what it printed after `ready`.
    async fn stop(mut self) -> String {
        drop(self.child.stdin.take());
        let mut out = String::new();
        let mut stdout = self.child.stdout.take().unwrap();
        let _ =
            tokio::time::timeout(Duration::from_secs(30), stdout.read_to_string(&mut out)).await;
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
        out
    }
}

/// Runs the sweep in `ns.sweep` over `inventory` with `extra` arguments; returns its exit
/// code and JSON report.
async fn sweep(ns: &Namespaces, inventory: &Path, extra: &[&str], tag: &str) -> (i32, Value) {
    let report = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("netns-{tag}-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&report);
    let mut args = vec![
        "-i".to_string(),
        inventory.display().to_string(),
        "-o".into(),
        format!("json={}", report.display()),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = role_command(&ns.sweep, "role_sweep", &[(SWEEP_ARGS, args.join("\x1f"))])
        .stdin(Stdio::null())
        .output();
    let out = tokio::time::timeout(Duration::from_secs(600), out)
        .await
        .expect("the sweep did not end within 600 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let code = stdout
        .lines()
        .find_map(|l| l.strip_prefix("sweep exit code: "))
        .and_then(|c| c.trim().parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "the sweep did not finish:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let doc = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    (code, doc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_holed_host_times_out_at_connect_and_the_others_are_checked() {
    const TEST: &str = "netns black hole";
    if !available(TEST) {
        return;
    }
    let hosts = 4;
    let ns = match Namespaces::create("bh", hosts) {
        Ok(ns) => ns,
        Err(why) => return skip(TEST, &why),
    };
    let hole = host_ip(2, HOSTS_FROM);
    // Every SYN to the hole is dropped: no RST, no ICMP, as a powered-off host behind a
    // firewall (nftables `tcp flags syn / syn,ack`: SYN set, ACK clear).
    nft(
        &ns.lab,
        &format!(
            "table inet tsw {{\n  chain in {{\n    type filter hook input priority 0; policy accept;\n    ip daddr {hole} tcp dport {WINRM_PORT} tcp flags & (syn | ack) == syn counter drop comment \"hole\"\n  }}\n}}\n"
        ),
    );
    let lab = start_lab(&ns, hosts, false, "bh").await;
    let (code, doc) = sweep(
        &ns,
        &lab.inventory,
        &["--connect-timeout", "2", "--host-deadline", "60"],
        "bh",
    )
    .await;
    lab.stop().await;
    assert_eq!(code, 3, "some hosts could not be checked: {doc:#}");
    assert!(dropped(&ns.lab, "hole") > 0, "the SYNs really were dropped");
    let entries = doc["hosts"].as_array().unwrap();
    assert_eq!(entries.len(), hosts, "every host has a result: {doc:#}");
    for h in entries {
        let ip = h["address"].as_str().unwrap_or_default();
        let access = &h["observation"]["access"];
        if ip == format!("{hole}:{WINRM_PORT}") {
            // A connect timeout is a timeout (winrm::Error::ConnectTimeout), not a refusal.
            assert_eq!(access["state"], "timeout", "{h:#}");
            assert_eq!(h["diagnosis"]["kind"], "unreachable", "{h:#}");
            eprintln!(
                "{TEST}: the black hole's result came after {} ms (connect timeout 2 s)",
                h["probe_ms"]
            );
        } else {
            assert_eq!(access["state"], "connected", "{h:#}");
            assert_eq!(h["diagnosis"]["kind"], "healthy", "{h:#}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loss_and_jitter_do_not_break_sealed_sessions() {
    const TEST: &str = "netns loss and jitter";
    if !available(TEST) {
        return;
    }
    let hosts = 6;
    let ns = match Namespaces::create("lj", hosts) {
        Ok(ns) => ns,
        Err(why) => return skip(TEST, &why),
    };
    // 7% of the WinRM packets on the wire, each way, dropped at random.
    nft(
        &ns.lab,
        &format!(
            "table inet tsw {{\n  chain in {{\n    type filter hook input priority 0; policy accept;\n    iifname \"veth-lab\" tcp dport {WINRM_PORT} numgen random mod 100 < 7 counter drop comment \"loss\"\n  }}\n  chain out {{\n    type filter hook output priority 0; policy accept;\n    oifname \"veth-lab\" tcp sport {WINRM_PORT} numgen random mod 100 < 7 counter drop comment \"loss\"\n  }}\n}}\n"
        ),
    );
    let netem = ns.netem_jitter();
    eprintln!(
        "{TEST}: jitter from {}",
        if netem {
            "tc netem (delay 150ms 150ms)"
        } else {
            "the relay (no sch_netem in this kernel)"
        }
    );
    let lab = start_lab(&ns, hosts, !netem, "lj").await;
    let (code, doc) = sweep(
        &ns,
        &lab.inventory,
        &["--connect-timeout", "20", "--host-deadline", "300"],
        "lj",
    )
    .await;
    let relay_said = lab.stop().await;
    let lost = dropped(&ns.lab, "loss");
    eprintln!("{TEST}: {lost} packets dropped; {}", relay_said.trim());
    assert_eq!(code, 0, "every host healthy: {doc:#}");
    let entries = doc["hosts"].as_array().unwrap();
    assert_eq!(entries.len(), hosts);
    for h in entries {
        assert_eq!(h["observation"]["access"]["state"], "connected", "{h:#}");
        assert_eq!(h["diagnosis"]["kind"], "healthy", "{h:#}");
    }
    assert!(lost > 0, "packets really were lost");
    if !netem {
        let chunks: u64 = relay_said
            .lines()
            .find_map(|l| l.strip_prefix("relay: "))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(chunks > 0, "the relay carried the sweep: {relay_said}");
    }
}
