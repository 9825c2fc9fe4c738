//! The referees of the lab's fidelity: pywinrm and pypsrp (pinned, from PyPI), clients
//! nobody here wrote, run commands on lab hosts over NTLM with message encryption on —
//! exactly as they would against Windows — using the inventory the lab writes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

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
    let spec = lab::model::LabSpec::healthy(6, 11).with_fault(FaultKind::Snapshot, 1).with_fault(FaultKind::DcReset, 1);
    let lab = lab::model::Lab::build(spec).unwrap();
    let running = lab::wire::RunningLab::start(lab, lab::wire::WireOptions::default()).await.unwrap();
    let repair = running.lab().repair_credentials();
    let healthy = running.endpoints().iter().find(|e| e.info.fault.is_none()).unwrap().clone();
    let broken = running.endpoints().iter().find(|e| e.info.fault == Some(FaultKind::Snapshot)).unwrap().clone();
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
    let (ok, stdout, stderr) = tokio::task::spawn_blocking(move || trustsweep_tests::run_python(SCRIPT, &[&arg]))
        .await
        .unwrap();
    assert!(ok, "python failed:\nstdout:\n{stdout}\nstderr:\n{stderr}");
    let results: Vec<serde_json::Value> = serde_json::from_str(stdout.trim()).unwrap();
    let h = &results[0];
    assert_eq!(h["hostname"], healthy.info.computer_name.as_str());
    assert_eq!(h["hostname_rc"], 0);
    assert!(h["nltest"].as_str().unwrap().contains("Trust Verification Status = 0 0x0 NERR_Success"), "{h}");
    assert_eq!(h["ps_rc"], 0, "{h}");
    assert!(h["ps_out"].as_str().unwrap().contains(&format!("ts.name={}", healthy.info.computer_name)), "{h}");
    assert!(h["ps_out"].as_str().unwrap().contains("True"), "{h}");
    assert_eq!(h["bad_rc"], 1, "{h}");
    assert!(h["bad_err"].as_str().unwrap().contains("is not recognized as the name of a cmdlet"), "{h}");
    assert_eq!(h["whoami"], format!("{}\\administrator", healthy.info.computer_name.to_lowercase()));
    assert_eq!(h["domain_logon"], "accepted", "a healthy member verifies domain logons");

    let b = &results[1];
    assert_eq!(b["hostname_rc"], 0);
    assert!(!b["nltest"].as_str().unwrap().contains("Trust Verification Status = 0 0x0"), "{b}");
    assert!(b["ps_out"].as_str().unwrap().contains("False"), "{b}");
    assert_eq!(b["domain_logon"], "refused", "a broken trust answers 401 to domain credentials");
}
