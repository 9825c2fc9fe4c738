//! The lab over HTTPS (Windows' 5986 listener) with Extended Protection: each host has a
//! certificate from the lab's CA, and NTLM logons are checked against it as
//! `CbtHardeningLevel` says. Referees: pywinrm (requests_ntlm sends the binding) and
//! pypsrp (pyspnego) with the lab CA as their trust path, and a pyspnego client that sends
//! no binding; and our own client.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use lab::model::{Lab, LabSpec};
use lab::wire::{RunningLab, WireOptions};
use secrecy::ExposeSecret;
use winrm::ntlm::CbtHardening;
use winrm::server::ServerConfig;
use winrm::session::{Session, SessionConfig};
use winrm::transport::{AuthMethod, Endpoint, Scheme};

async fn https_lab(hosts: usize, cbt: CbtHardening) -> RunningLab {
    let opts = WireOptions {
        scheme: Scheme::Https,
        server: ServerConfig {
            cbt_hardening: cbt,
            ..ServerConfig::default()
        },
        ..WireOptions::default()
    };
    RunningLab::start(Lab::build(LabSpec::healthy(hosts, 5)).unwrap(), opts)
        .await
        .unwrap()
}

const SCRIPT: &str = r#"
import os, sys, json, ssl, base64
# requests lets these override a session's CA path; the referees must use the lab CA only.
for k in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
    os.environ.pop(k, None)
import requests, spnego, winrm, pypsrp.client
from spnego.channel_bindings import GssChannelBindings
from requests_ntlm.requests_ntlm import _get_certificate_hash
h = json.loads(sys.argv[1])
url = f"https://{h['ip']}:{h['port']}/wsman"
out = {}
s = winrm.Session(url, auth=(h['user'], h['password']), transport="ntlm",
                  server_cert_validation="validate", ca_trust_path=h['ca'])
r = s.run_cmd("hostname")
out["pywinrm"] = [r.status_code, r.std_out.decode().strip()]
c = pypsrp.client.Client(h['ip'], port=h['port'], username=h['user'], password=h['password'],
                         ssl=True, cert_validation=h['ca'], auth="ntlm")
o, e, rc = c.execute_cmd("hostname")
out["pypsrp"] = [rc, o.strip()]

def raw_logon(bind):
    # An NTLM handshake by hand, with or without the tls-server-end-point binding.
    cb = None
    if bind:
        der = ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate((h['ip'], h['port'])))
        cb = GssChannelBindings(application_data=b"tls-server-end-point:" + _get_certificate_hash(der))
    ctx = spnego.client(h['user'], h['password'], hostname=h['ip'], service="http",
                        protocol="ntlm", channel_bindings=cb)
    sess = requests.Session()
    sess.verify = h['ca']
    hdr = {"Content-Type": "application/soap+xml;charset=UTF-8"}
    tok = ctx.step()
    r = sess.post(url, data=b"", headers={**hdr, "Authorization": "Negotiate " + base64.b64encode(tok).decode()})
    chal = base64.b64decode(r.headers["WWW-Authenticate"].split()[1])
    tok = ctx.step(chal)
    r = sess.post(url, data=b"", headers={**hdr, "Authorization": "Negotiate " + base64.b64encode(tok).decode()})
    return r.status_code

out["raw_bound"] = raw_logon(True)
out["raw_unbound"] = raw_logon(False)
print(json.dumps(out))
"#;

fn referee(running: &RunningLab) -> serde_json::Value {
    let ep = &running.endpoints()[0];
    let args = serde_json::json!({
        "ip": ep.addr.ip().to_string(),
        "port": ep.addr.port(),
        "user": ep.info.local_admin.user,
        "password": ep.info.local_admin.password.expose_secret(),
        "ca": running.ca_file().unwrap().to_str().unwrap(),
    });
    let (ok, stdout, stderr) = trustsweep_tests::run_python(SCRIPT, &[&args.to_string()]);
    assert!(ok, "referee script failed:\n{stdout}\n{stderr}");
    serde_json::from_str(stdout.trim()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn pywinrm_and_pypsrp_pass_strict_extended_protection_and_an_unbound_client_does_not() {
    let running = https_lab(2, CbtHardening::Strict).await;
    let name = running.endpoints()[0]
        .info
        .computer_name
        .to_ascii_uppercase();
    let r = {
        let running = &running;
        tokio::task::block_in_place(|| referee(running))
    };
    assert_eq!(r["pywinrm"], serde_json::json!([0, name]), "{r}");
    assert_eq!(r["pypsrp"], serde_json::json!([0, name]), "{r}");
    assert_eq!(r["raw_bound"], 200, "{r}");
    assert_eq!(
        r["raw_unbound"], 401,
        "Strict refuses a logon without binding: {r}"
    );

    // Windows' default, Relaxed, lets the unbound (legacy) client in.
    let relaxed = https_lab(1, CbtHardening::Relaxed).await;
    let r = {
        let relaxed = &relaxed;
        tokio::task::block_in_place(|| referee(relaxed))
    };
    assert_eq!(r["raw_unbound"], 200, "{r}");
    assert_eq!(r["raw_bound"], 200, "{r}");
}

#[tokio::test]
async fn our_client_passes_strict_hardening_verifying_the_lab_ca() {
    let running = https_lab(2, CbtHardening::Strict).await;
    let yaml = running.inventory_yaml();
    assert!(yaml.contains("ansible_winrm_scheme: https"), "{yaml}");
    let ca = running.ca_file().unwrap();
    assert!(
        yaml.contains(&format!("ansible_winrm_ca_trust_path: '{}'", ca.display())),
        "{yaml}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(ca).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "owner-only CA file");
    }
    for ep in running.endpoints() {
        {
            // By address, as the inventory's ansible_host: the certificate names it too.
            let host = ep.addr.ip().to_string();
            let mut c = SessionConfig::new(
                Endpoint::new(host, Some(ep.addr.port()), Scheme::Https),
                AuthMethod::Ntlm,
                ep.info.local_admin.user.clone(),
                ep.info.local_admin.password.clone(),
            );
            c.tls.ca_file = Some(ca.to_path_buf());
            c.read_timeout = Duration::from_secs(60);
            c.operation_timeout = Duration::from_secs(5);
            let mut s = Session::new(c).unwrap();
            let out = s.run("hostname", &[], None).await.unwrap();
            assert_eq!(
                out.stdout_text().trim(),
                ep.info.computer_name.to_ascii_uppercase()
            );
        }
    }
    // Without the CA the certificate is not trusted.
    let ep = &running.endpoints()[0];
    let c = SessionConfig::new(
        Endpoint::new(
            ep.addr.ip().to_string(),
            Some(ep.addr.port()),
            Scheme::Https,
        ),
        AuthMethod::Ntlm,
        ep.info.local_admin.user.clone(),
        ep.info.local_admin.password.clone(),
    );
    let e = Session::new(c)
        .unwrap()
        .run("hostname", &[], None)
        .await
        .unwrap_err();
    assert!(matches!(e, winrm::Error::Tls { .. }), "{e}");
    let path = ca.to_path_buf();
    drop(running);
    assert!(!path.exists(), "the temporary CA file goes with the lab");
}
