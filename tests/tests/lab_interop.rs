//! The referees of the lab's fidelity: pywinrm and pypsrp (pinned, from PyPI), clients
//! nobody here wrote, run commands on lab hosts over NTLM with message encryption on —
//! exactly as they would against Windows — using the inventory the lab writes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use secrecy::ExposeSecret;

const SCRIPT: &str = r#"
import sys, json, winrm, pypsrp.client
from winrm.exceptions import InvalidCredentialsError
hosts = json.loads(sys.argv[1])
out = []
for h in hosts:
    url = f"http://{h['ip']}:{h['port']}/wsman"
    s = winrm.Session(url, auth=(h['user'], h['password']), transport="ntlm", message_encryption="always")
    r = s.run_cmd("hostname")
    rc_ip = s.run_cmd("nltest", ["/sc_verify:lab.test"])
    ps = s.run_ps("Write-Output \"ts.name=$((Get-CimInstance -ClassName Win32_ComputerSystem).Name)\"; Test-ComputerSecureChannel")
    bad = s.run_ps("Get-Frobnicator")
    c = pypsrp.client.Client(h['ip'], port=h['port'], username=h['user'], password=h['password'], ssl=False, auth="ntlm", encryption="always")
    o, e, rc = c.execute_cmd("whoami")
    try:
        d = winrm.Session(url, auth=(h['domain_user'], h['domain_password']), transport="ntlm", message_encryption="always")
        d.run_cmd("hostname")
        domain_logon = "accepted"
    except InvalidCredentialsError:
        domain_logon = "refused"
    out.append({
        "name": h['name'],
        "hostname": r.std_out.decode().strip(), "hostname_rc": r.status_code,
        "nltest": rc_ip.std_out.decode(), "nltest_rc": rc_ip.status_code,
        "ps_out": ps.std_out.decode(), "ps_err": ps.std_err.decode(), "ps_rc": ps.status_code,
        "bad_err": bad.std_err.decode(), "bad_rc": bad.status_code,
        "whoami": o.strip(), "whoami_rc": rc,
        "domain_logon": domain_logon,
    })
print(json.dumps(out))
"#;

#[tokio::test]
async fn pywinrm_and_pypsrp_against_lab_hosts() {
    use lab::faults::FaultKind;
    let spec = lab::model::LabSpec::healthy(6, 11)
        .with_fault(FaultKind::Snapshot, 1)
        .with_fault(FaultKind::DcReset, 1);
    let lab = lab::model::Lab::build(spec).unwrap();
    let running = lab::wire::RunningLab::start(lab, lab::wire::WireOptions::default())
        .await
        .unwrap();
    let repair = running.lab().repair_credentials();
    let healthy = running
        .endpoints()
        .iter()
        .find(|e| e.info.fault.is_none())
        .unwrap()
        .clone();
    let broken = running
        .endpoints()
        .iter()
        .find(|e| e.info.fault == Some(FaultKind::Snapshot))
        .unwrap()
        .clone();
    let hosts: Vec<serde_json::Value> = [&healthy, &broken]
        .iter()
        .map(|e| {
            serde_json::json!({
                "name": e.info.computer_name,
                "ip": e.addr.ip().to_string(),
                "port": e.addr.port(),
                "user": e.info.local_admin.user,
                "password": e.info.local_admin.password.expose_secret(),
                "domain_user": repair.user,
                "domain_password": repair.password.expose_secret(),
            })
        })
        .collect();
    let arg = serde_json::to_string(&hosts).unwrap();
    let (ok, stdout, stderr) =
        tokio::task::spawn_blocking(move || trustsweep_tests::run_python(SCRIPT, &[&arg]))
            .await
            .unwrap();
    assert!(ok, "python failed:\nstdout:\n{stdout}\nstderr:\n{stderr}");
    let results: Vec<serde_json::Value> = serde_json::from_str(stdout.trim()).unwrap();
    let h = &results[0];
    assert_eq!(h["hostname"], healthy.info.computer_name.as_str());
    assert_eq!(h["hostname_rc"], 0);
    assert!(
        h["nltest"]
            .as_str()
            .unwrap()
            .contains("Trust Verification Status = 0 0x0 NERR_Success"),
        "{h}"
    );
    assert_eq!(h["ps_rc"], 0, "{h}");
    assert!(
        h["ps_out"]
            .as_str()
            .unwrap()
            .contains(&format!("ts.name={}", healthy.info.computer_name)),
        "{h}"
    );
    assert!(h["ps_out"].as_str().unwrap().contains("True"), "{h}");
    assert_eq!(h["bad_rc"], 1, "{h}");
    assert!(
        h["bad_err"]
            .as_str()
            .unwrap()
            .contains("is not recognized as the name of a cmdlet"),
        "{h}"
    );
    assert_eq!(
        h["whoami"],
        format!(
            "{}\\administrator",
            healthy.info.computer_name.to_lowercase()
        )
    );
    assert_eq!(
        h["domain_logon"], "accepted",
        "a healthy member verifies domain logons"
    );

    let b = &results[1];
    assert_eq!(b["hostname_rc"], 0);
    assert!(
        !b["nltest"]
            .as_str()
            .unwrap()
            .contains("Trust Verification Status = 0 0x0"),
        "{b}"
    );
    assert!(b["ps_out"].as_str().unwrap().contains("False"), "{b}");
    assert_eq!(
        b["domain_logon"], "refused",
        "a broken trust answers 401 to domain credentials"
    );
}

/// What issue 10 asks the independent clients to confirm (DOMAIN.md "Testing the channel"
/// and "The secure channel", revised): `Test-ComputerSecureChannel -Server <each DC>`
/// answers as without `-Server`; `/dclist` as the local Administrator lists no DC while
/// `/dsgetdc: /pdc` names the PDC; a snapshot younger than one rotation is healthy (and,
/// where DCs accept the previous password, one younger than two).
const WINDOWS_TRUTH: &str = r#"
import sys, json, winrm
hosts = json.loads(sys.argv[1])
out = []
for h in hosts:
    url = f"http://{h['ip']}:{h['port']}/wsman"
    s = winrm.Session(url, auth=(h['user'], h['password']), transport="ntlm", message_encryption="always")
    plain = s.run_ps("Test-ComputerSecureChannel").std_out.decode().strip()
    per_dc = [s.run_ps(f"Test-ComputerSecureChannel -Server '{dc}'").std_out.decode().strip() for dc in h['dcs']]
    dclist = s.run_cmd("nltest", ["/dclist:lab.test"])
    pdc = s.run_cmd("nltest", ["/dsgetdc:lab.test", "/pdc"])
    verify = s.run_cmd("nltest", ["/sc_verify:lab.test"])
    out.append({
        "name": h['name'], "plain": plain, "per_dc": per_dc,
        "dclist_out": dclist.std_out.decode(), "dclist_err": dclist.std_err.decode(), "dclist_rc": dclist.status_code,
        "pdc_out": pdc.std_out.decode(), "pdc_rc": pdc.status_code,
        "verify": verify.std_out.decode(),
    })
print(json.dumps(out))
"#;

async fn windows_truth(
    spec: lab::model::LabSpec,
) -> Vec<(lab::model::HostInfo, serde_json::Value)> {
    let lab = lab::model::Lab::build(spec).unwrap();
    let running = lab::wire::RunningLab::start(lab, lab::wire::WireOptions::default())
        .await
        .unwrap();
    let dcs = running.lab().dcs();
    let eps = running.endpoints().to_vec();
    let hosts: Vec<serde_json::Value> = eps
        .iter()
        .map(|e| {
            serde_json::json!({
                "name": e.info.computer_name,
                "ip": e.addr.ip().to_string(),
                "port": e.addr.port(),
                "user": e.info.local_admin.user,
                "password": e.info.local_admin.password.expose_secret(),
                "dcs": dcs,
            })
        })
        .collect();
    let arg = serde_json::to_string(&hosts).unwrap();
    let (ok, stdout, stderr) =
        tokio::task::spawn_blocking(move || trustsweep_tests::run_python(WINDOWS_TRUTH, &[&arg]))
            .await
            .unwrap();
    assert!(ok, "python failed:\nstdout:\n{stdout}\nstderr:\n{stderr}");
    let results: Vec<serde_json::Value> = serde_json::from_str(stdout.trim()).unwrap();
    eps.into_iter().map(|e| e.info).zip(results).collect()
}

#[tokio::test]
async fn pywinrm_confirms_the_revised_windows_behaviours() {
    use lab::faults::FaultKind;
    // Default DCs (current password only): a fresh snapshot (no rotation since) is
    // healthy, one with a rotation since is not.
    let mut fresh = lab::model::LabSpec::healthy(3, 17)
        .with_fault(FaultKind::Snapshot, 1)
        .with_fault(FaultKind::StaleDc, 1);
    fresh.snapshot_rotations = 0;
    for (info, r) in windows_truth(fresh).await {
        let per_dc: Vec<&str> = r["per_dc"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(per_dc.len(), 2);
        assert!(
            per_dc.iter().all(|v| *v == r["plain"].as_str().unwrap()),
            "-Server changes nothing: {r}"
        );
        let expected = if info.fault == Some(FaultKind::StaleDc) {
            "False"
        } else {
            "True"
        };
        assert_eq!(
            r["plain"], expected,
            "{} ({:?}): {r}",
            info.computer_name, info.fault
        );
        assert_eq!(r["dclist_rc"], 1, "{r}");
        assert!(!r["dclist_out"].as_str().unwrap().contains("[PDC]"), "{r}");
        assert!(r["dclist_err"].as_str().unwrap().contains("6118"), "{r}");
        assert_eq!(r["pdc_rc"], 0, "{r}");
        assert!(
            r["pdc_out"]
                .as_str()
                .unwrap()
                .starts_with("           DC: \\\\dc1.lab.test\r\n"),
            "{r}"
        );
        assert!(
            r["pdc_out"].as_str().unwrap().contains("Flags: PDC "),
            "{r}"
        );
    }
    let mut aged = lab::model::LabSpec::healthy(2, 17).with_fault(FaultKind::Snapshot, 1);
    aged.snapshot_rotations = 1;
    let snap = windows_truth(aged.clone())
        .await
        .into_iter()
        .find(|(i, _)| i.fault.is_some())
        .unwrap();
    assert_eq!(
        snap.1["plain"], "False",
        "one rotation since the snapshot breaks it: {}",
        snap.1
    );
    assert!(
        snap.1["verify"]
            .as_str()
            .unwrap()
            .contains("Status = 5 0x5 ERROR_ACCESS_DENIED"),
        "{}",
        snap.1
    );
    aged.dc_accepts_previous = true;
    let snap = windows_truth(aged)
        .await
        .into_iter()
        .find(|(i, _)| i.fault.is_some())
        .unwrap();
    assert_eq!(
        snap.1["plain"], "True",
        "DCs that accept the previous password tolerate one rotation: {}",
        snap.1
    );
}
