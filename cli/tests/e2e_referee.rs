//! The referee (issue 11, "never worse"): a lab with every fault kind, repaired by
//! `trustsweep repair --yes --allow-rejoin` as `LAB\tsrepair`, a delegated account that is
//! not a Domain Admin and created none of the computer objects. Before and after, an
//! independent client (pywinrm, not our WinRM code and not our report) logs on to every
//! host as its local administrator and reads `Win32_ComputerSystem.PartOfDomain` and
//! `nltest /sc_verify:lab.test`. From that data alone: no host went from domain member to
//! workgroup, no host that verified before fails after, and each fault ends in the state
//! its row of the table names. The report's recap must count nobody made worse.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use lab::domain::ReuseVerdict;
use lab::faults::FaultKind;
use lab::model::{Directory, Lab, LabSpec};
use lab::samba::SambaConfig;
use lab::wire::{RunningLab, WireOptions};
use secrecy::ExposeSecret;
use serde_json::Value;

/// pywinrm as the local administrator: `PartOfDomain` and the numeric statuses of
/// `nltest /sc_verify` (DOMAIN.md "Testing the channel": numbers, never the words). A host
/// that does not answer, or refuses the logon, says so instead.
const REFEREE: &str = r#"
import sys, json, re, winrm
hosts = json.loads(sys.argv[1])
out = {}
for h in hosts:
    url = f"http://{h['ip']}:{h['port']}/wsman"
    r = {"reachable": False, "logon": None, "part_of_domain": None, "statuses": [], "verify": ""}
    try:
        s = winrm.Session(url, auth=(h['user'], h['password']), transport="ntlm",
                          message_encryption="always", read_timeout_sec=20, operation_timeout_sec=10)
        pod = s.run_ps("(Get-CimInstance Win32_ComputerSystem).PartOfDomain")
        r["reachable"] = True
        r["logon"] = "accepted"
        text = pod.std_out.decode().strip()
        r["part_of_domain"] = {"True": True, "False": False}.get(text)
        v = s.run_cmd("nltest", ["/sc_verify:lab.test"])
        r["verify"] = v.std_out.decode() + v.std_err.decode()
        r["statuses"] = [int(n) for n in re.findall(r"Status = (\d+)", r["verify"])]
    except winrm.exceptions.InvalidCredentialsError as e:
        r["reachable"] = True
        r["logon"] = "refused: " + str(e)
    except winrm.exceptions.WinRMTransportError as e:
        r["reachable"] = True
        r["logon"] = "refused: " + str(e)
    except Exception as e:
        r["logon"] = "no answer: " + type(e).__name__ + ": " + str(e)
    out[h['name']] = r
print(json.dumps(out))
"#;

/// What pywinrm saw on one host.
#[derive(Debug, Clone)]
struct Seen {
    reachable: bool,
    /// The local administrator's logon was accepted.
    logged_on: bool,
    part_of_domain: Option<bool>,
    /// The first non-zero status of `/sc_verify`, 0 when all are 0; `None` without any.
    status: Option<u64>,
    raw: String,
}

impl Seen {
    /// The facts compared before and after (the raw text may differ in a bound DC name).
    fn state(&self) -> (bool, bool, Option<bool>, Option<u64>) {
        (
            self.reachable,
            self.logged_on,
            self.part_of_domain,
            self.status,
        )
    }

    fn healthy(&self) -> bool {
        self.logged_on && self.part_of_domain == Some(true) && self.status == Some(0)
    }
}

async fn referee(running: &RunningLab) -> BTreeMap<String, Seen> {
    let hosts: Vec<Value> = running
        .endpoints()
        .iter()
        .map(|e| {
            serde_json::json!({
                "name": e.info.address,
                "ip": e.addr.ip().to_string(),
                "port": e.addr.port(),
                "user": e.info.local_admin.user,
                "password": e.info.local_admin.password.expose_secret(),
            })
        })
        .collect();
    let arg = serde_json::to_string(&hosts).unwrap();
    let (ok, stdout, stderr) =
        tokio::task::spawn_blocking(move || trustsweep_tests::run_python(REFEREE, &[&arg]))
            .await
            .unwrap();
    assert!(ok, "python failed:\nstdout:\n{stdout}\nstderr:\n{stderr}");
    let raw: BTreeMap<String, Value> = serde_json::from_str(stdout.trim()).unwrap();
    raw.into_iter()
        .map(|(name, r)| {
            let statuses: Vec<u64> = r["statuses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            let status = if statuses.is_empty() {
                None
            } else {
                Some(statuses.iter().copied().find(|s| *s != 0).unwrap_or(0))
            };
            let seen = Seen {
                reachable: r["reachable"].as_bool().unwrap(),
                logged_on: r["logon"] == "accepted",
                part_of_domain: r["part_of_domain"].as_bool(),
                status,
                raw: r.to_string(),
            };
            (name, seen)
        })
        .collect()
}

/// The end state each fault's row names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Broken before, verified healthy after, by the repair.
    Repaired,
    /// Left as found, and a person is told what to do.
    UntouchedNeedsPerson,
    /// Left as found.
    Untouched,
    /// Healthy before and after, nothing run.
    HealthyUntouched,
    /// Does not answer, before or after.
    Unreachable,
}

/// The rows with in-memory DCs and no DC access: no preflight, so no rejoin.
fn row(fault: Option<FaultKind>) -> End {
    match fault {
        Some(FaultKind::Snapshot | FaultKind::DcReset | FaultKind::StaleDc) => End::Repaired,
        // No --ldap: no preflight, so no rejoin; a person must act.
        Some(FaultKind::DisabledAccount | FaultKind::DeletedAccount) => End::UntouchedNeedsPerson,
        Some(FaultKind::Clone | FaultKind::SidDuplicate) => End::Untouched,
        Some(FaultKind::Dns | FaultKind::NoDc) => End::Untouched,
        Some(FaultKind::DomainController) => End::Untouched,
        Some(FaultKind::FilteredAdmin) => End::Untouched,
        Some(FaultKind::DenyNetworkLogon | FaultKind::Slow) | None => End::HealthyUntouched,
        Some(FaultKind::Offline | FaultKind::Hung) => End::Unreachable,
        Some(
            k @ (FaultKind::DropAfterReset
            | FaultKind::RebootMidRejoin
            | FaultKind::DcAwayMidRepair
            | FaultKind::WinrmRestart),
        ) => panic!("{k} is opt-in and not placed here (cli/tests/crash_resume.rs has them)"),
    }
}

fn host_entry<'a>(doc: &'a Value, name: &str) -> &'a Value {
    trustsweep_tests::report_host(doc, name)
}

/// Nothing was run on the host: no repair, or one that ran no step and changed nothing.
fn untouched_by_report(h: &Value) -> bool {
    let r = &h["repair"];
    r.is_null() || (r["changed"] == false && r["steps"].as_array().is_none_or(Vec::is_empty))
}

/// The rows with the Samba DCs and `--ldap`: the DCs tell a disabled account from a
/// deleted one; the disabled one is re-enabled (`--allow-enable`), the deleted one rejoined
/// (the preflight finds no object, so the join creates one; the forest has no Recycle Bin,
/// so nothing is restored).
fn samba_row(fault: Option<FaultKind>) -> End {
    match fault {
        Some(FaultKind::DisabledAccount | FaultKind::DeletedAccount) => End::Repaired,
        other => row(other),
    }
}

fn every_fault(spec: LabSpec) -> LabSpec {
    let mut spec = spec;
    // `hung` would cost the referees their read timeouts.
    for kind in FaultKind::DEFAULT_MIX {
        spec = spec.with_fault(kind, 1);
    }
    spec.slow_latency = Duration::from_millis(150);
    spec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pywinrm_referee_sees_no_host_made_worse_by_a_repair() {
    let spec = every_fault(LabSpec::healthy(18, 11));
    let lab = Lab::build(spec).unwrap();
    referee_run(lab, &[], row, 5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pywinrm_referee_with_the_samba_dcs_and_ldap() {
    let samba = trustsweep_tests::samba::samba_lab();
    let mut spec = every_fault(LabSpec::healthy(18, 13));
    spec.directory = Directory::Samba(Box::new(
        SambaConfig::from_facts_file(&samba.facts_file()).unwrap(),
    ));
    spec.name_prefix = "TSLF".into();
    // Half the objects owned by a non-admin: their rejoin is refused by the preflight
    // (their reset ladder still repairs them).
    spec.deployer_created_one_in = 2;
    spec.reboot_duration = Duration::from_secs(2);
    let lab = tokio::task::spawn_blocking(move || Lab::build(spec).unwrap())
        .await
        .unwrap();
    let args: Vec<String> = [
        "--ldap",
        "ldaps://127.0.0.10",
        "--ldap-dc",
        "ldaps://127.0.0.10",
        "--ldap-dc",
        "ldaps://127.0.0.11",
        "--ca-file",
        samba.fact("LAB_CA_FILE"),
        "--allow-enable",
        "--allow-restore",
        "--reboot-timeout",
        "60",
    ]
    .map(String::from)
    .to_vec();
    referee_run(lab, &args, samba_row, 4).await;
}

/// Repairs `lab` with `trustsweep repair --yes --allow-rejoin` plus `extra` as tsrepair,
/// with pywinrm looking before and after; each fault must end in its `row`, and `rows`
/// different rows must be met.
async fn referee_run(lab: Lab, extra: &[String], row: fn(Option<FaultKind>) -> End, rows: usize) {
    let running = RunningLab::start(lab, WireOptions::default())
        .await
        .unwrap();
    let lab = running.lab();

    // The repair account is the delegated tsrepair: not the domain's Administrator, not
    // Domain Admins, and neither the creator nor the owner of any computer object, so no
    // object may be reused by it on the strength of having created it.
    let repair = lab.repair_credentials();
    assert!(
        repair.user.eq_ignore_ascii_case("LAB\\tsrepair"),
        "{}",
        repair.user
    );
    let tsrepair = lab.user_sid("tsrepair").unwrap();
    assert_ne!(Some(&tsrepair), lab.user_sid("Administrator").as_ref());
    assert_ne!(tsrepair, lab.domain_admins_sid());
    assert!(!tsrepair.ends_with("-500") && !tsrepair.ends_with("-512"));
    for ep in running.endpoints() {
        let Some(own) = lab.account_ownership(&ep.info.computer_name) else {
            continue;
        };
        assert_ne!(own.owner_sid, tsrepair, "{}", ep.info.address);
        assert_ne!(
            own.creator_sid.as_ref(),
            Some(&tsrepair),
            "{}",
            ep.info.address
        );
        assert_ne!(
            lab.reuse_verdict(&ep.info.computer_name, "tsrepair"),
            Some(ReuseVerdict::Creator),
            "{}",
            ep.info.address
        );
    }

    let before = referee(&running).await;
    assert_eq!(before.len(), running.endpoints().len());

    let inv = common::write_inventory("e2e-referee", &running.inventory_yaml());
    let args = [
        "repair",
        "-i",
        inv.to_str().unwrap(),
        "--format",
        "json",
        "--yes",
        "--allow-rejoin",
        "--host-deadline",
        "60",
    ]
    .map(String::from);
    let out = common::run_trustsweep(args.iter().chain(extra), &[]).await;
    let doc = trustsweep_tests::json_stdout(&out);

    let after = referee(&running).await;

    // From pywinrm's data: never worse.
    for ep in running.endpoints() {
        let name = &ep.info.address;
        let (b, a) = (&before[name], &after[name]);
        if b.part_of_domain == Some(true) {
            assert_eq!(
                a.part_of_domain,
                Some(true),
                "{name} ({:?}) went from domain member to {a:?}",
                ep.info.fault
            );
        }
        if b.healthy() {
            assert!(
                a.healthy(),
                "{name} ({:?}) verified before and not after:\nbefore {b:?}\nafter {a:?}",
                ep.info.fault
            );
        }
        if b.reachable {
            assert!(a.reachable, "{name} answered before and not after: {a:?}");
        }
    }

    // The table: each fault ends in the state its row names.
    let mut seen_rows = BTreeMap::new();
    for ep in running.endpoints() {
        let name = &ep.info.address;
        let (b, a) = (&before[name], &after[name]);
        let h = host_entry(&doc, name);
        let end = row(ep.info.fault);
        *seen_rows.entry(format!("{end:?}")).or_insert(0) += 1;
        let ctx = format!(
            "{name} ({:?}, row {end:?}):\nbefore {}\nafter {}\nreport {h:#}",
            ep.info.fault, b.raw, a.raw
        );
        match end {
            End::Repaired => {
                assert!(b.logged_on && b.status.is_some_and(|s| s != 0), "{ctx}");
                assert!(a.healthy(), "{ctx}");
                assert_eq!(h["repair"]["status"], "repaired", "{ctx}");
            }
            End::UntouchedNeedsPerson => {
                assert_eq!(a.state(), b.state(), "{ctx}");
                assert!(b.status.is_some_and(|s| s != 0), "{ctx}");
                assert!(untouched_by_report(h), "{ctx}");
                let needs = h["plan"]["needs"].as_array().unwrap();
                assert!(
                    needs.iter().any(|n| n.as_str().unwrap().contains("--ldap")),
                    "the rejoin needs the LDAP preflight: {ctx}"
                );
            }
            End::Untouched => {
                assert_eq!(a.state(), b.state(), "{ctx}");
                assert!(untouched_by_report(h), "{ctx}");
            }
            End::HealthyUntouched => {
                assert!(b.healthy() && a.healthy(), "{ctx}");
                assert!(untouched_by_report(h), "{ctx}");
            }
            End::Unreachable => {
                assert!(!b.reachable && !a.reachable, "{ctx}");
                assert!(untouched_by_report(h), "{ctx}");
            }
        }
    }
    assert_eq!(seen_rows.len(), rows, "every row met: {seen_rows:?}");

    // And our own report agrees: nobody made worse, in JSON and in the recap.
    let worse: Vec<&Value> = doc["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["repair"]["status"] == "made_worse")
        .collect();
    assert!(worse.is_empty(), "{worse:#?}");
    let parsed: trustsweep_cli::report::Document = serde_json::from_value(doc.clone()).unwrap();
    let recap = trustsweep_cli::report::recap(&parsed, false);
    assert!(recap.contains("\n  made worse: none\n"), "{recap}");
}
