//! NTLM channel binding (MS-NLMP 2.2.2.1 `MsvAvChannelBindings`, RFC 5929
//! `tls-server-end-point`) against an independent implementation: requests_ntlm computes
//! the certificate hash, pyspnego the binding and its acceptor checks ours.
//!
//! Certificates are generated here with rcgen (ECDSA P-256/SHA-256, P-384/SHA-384,
//! Ed25519) and written to a temporary file that Python reads.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use winrm::ntlm::channel_bindings::{certificate_hash, tls_server_end_point_data};
use winrm::ntlm::messages::{av_id, AuthenticateMessage, NtlmV2Response};
use winrm::ntlm::{
    Acceptor, BindingProblem, CbtHardening, ChannelBindings, Credentials, Initiator, NtlmError,
    ServerIdentity,
};
use winrm::secret::secret;

const PASSWORD: &str = "Bind1ng-Pass!";

const DRIVER: &str = r#"
import sys, hashlib
import spnego
from spnego.channel_bindings import GssChannelBindings
from requests_ntlm.requests_ntlm import _get_certificate_hash

ctx = None

def unhex(s):
    return b"" if s == "-" else bytes.fromhex(s)

def tohex(b):
    return b.hex() if b else "-"

def cb(arg):
    return None if arg == "-" else GssChannelBindings(application_data=unhex(arg))

def out(*f):
    sys.stdout.write(" ".join(f) + "\n")
    sys.stdout.flush()

for line in sys.stdin:
    parts = line.split()
    if not parts:
        continue
    cmd, args = parts[0], parts[1:]
    try:
        if cmd == "certhash":
            der = open(args[0], "rb").read()
            out("OK", tohex(_get_certificate_hash(der)))
        elif cmd == "md5cb":
            out("OK", tohex(hashlib.md5(cb(args[0]).pack()).digest()))
        elif cmd == "server":
            ctx = spnego.server(protocol="ntlm", options=spnego.NegotiateOptions.use_ntlm,
                                channel_bindings=cb(args[0]))
            out("OK")
        elif cmd == "client":
            ctx = spnego.client("CONTOSO\\alice", unhex(args[1]).decode(), hostname="lab-host", service="http",
                                protocol="ntlm", options=spnego.NegotiateOptions.use_ntlm,
                                channel_bindings=cb(args[0]))
            out("OK")
        elif cmd == "step":
            token = unhex(args[0]) if args else b""
            r = ctx.step(token or None)
            out("OK", tohex(r), "1" if ctx.complete else "0")
        else:
            out("ERR", "unknown", cmd)
    except Exception as e:
        out("ERR", type(e).__name__, str(e).replace("\n", " "))
"#;

struct Py {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Py {
    fn start(user_file: &std::path::Path) -> Self {
        let mut child = Command::new(trustsweep_tests::python())
            .arg("-c")
            .arg(DRIVER)
            .env("NTLM_USER_FILE", user_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Py {
            child,
            stdin,
            stdout,
        }
    }
    fn try_call(&mut self, line: &str) -> Result<Vec<String>, String> {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
        let mut reply = String::new();
        assert!(
            self.stdout.read_line(&mut reply).unwrap() > 0,
            "python died"
        );
        let mut f = reply.split_whitespace().map(str::to_owned);
        match f.next().as_deref() {
            Some("OK") => Ok(f.collect()),
            _ => Err(reply.trim().to_owned()),
        }
    }
    fn call(&mut self, line: &str) -> Vec<String> {
        self.try_call(line)
            .unwrap_or_else(|e| panic!("{line}: {e}"))
    }
}

impl Drop for Py {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hx(b: &[u8]) -> String {
    if b.is_empty() {
        "-".into()
    } else {
        hex::encode(b)
    }
}

fn unhx(s: &str) -> Vec<u8> {
    if s == "-" {
        Vec::new()
    } else {
        hex::decode(s).unwrap()
    }
}

fn temp_dir() -> std::path::PathBuf {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cbt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("users"), format!("CONTOSO:alice:{PASSWORD}\n")).unwrap();
    dir
}

/// A self-signed server certificate for `lab-host` signed with `alg`, as DER.
fn certificate(alg: &'static rcgen::SignatureAlgorithm) -> Vec<u8> {
    let key = rcgen::KeyPair::generate_for(alg).unwrap();
    let params = rcgen::CertificateParams::new(vec!["lab-host".to_string()]).unwrap();
    params.self_signed(&key).unwrap().der().to_vec()
}

fn identity() -> ServerIdentity {
    ServerIdentity {
        nb_domain: "CONTOSO".into(),
        nb_computer: "LABHOST".into(),
        dns_domain: "contoso.com".into(),
        dns_computer: "lab-host.contoso.com".into(),
    }
}

fn sent_bindings(auth: &[u8]) -> Option<Vec<u8>> {
    let a = AuthenticateMessage::parse(auth).unwrap();
    let v2 = NtlmV2Response::parse(&a.nt_challenge_response).unwrap();
    v2.client
        .av_pairs
        .get(av_id::CHANNEL_BINDINGS)
        .map(<[u8]>::to_vec)
}

#[test]
fn cbt_value_equals_requests_ntlm_hash_and_pyspnego_binding() {
    let dir = temp_dir();
    let mut py = Py::start(&dir.join("users"));
    for (name, alg, hash_len) in [
        ("p256", &rcgen::PKCS_ECDSA_P256_SHA256, 32),
        ("p384", &rcgen::PKCS_ECDSA_P384_SHA384, 48),
        ("ed25519", &rcgen::PKCS_ED25519, 32),
    ] {
        let der = certificate(alg);
        let path = dir.join(format!("{name}.der"));
        std::fs::write(&path, &der).unwrap();
        let ours = certificate_hash(&der).unwrap();
        assert_eq!(ours.len(), hash_len, "{name}");
        let theirs = py.call(&format!("certhash {}", path.display()));
        assert_eq!(
            hx(&ours),
            theirs[0],
            "{name}: requests_ntlm's certificate hash"
        );

        let app = tls_server_end_point_data(&der).unwrap();
        assert!(app.starts_with(b"tls-server-end-point:"));
        let cbt = ChannelBindings::tls_server_end_point(&der).unwrap();
        assert_eq!(
            py.call(&format!("md5cb {}", hx(&app)))[0],
            hx(&cbt.0),
            "{name}"
        );

        // pyspnego's initiator with these bindings puts the same value in AUTHENTICATE,
        // and our acceptor, checking strictly against the certificate, accepts it.
        py.call(&format!("client {} {}", hx(&app), hx(PASSWORD.as_bytes())));
        let neg = unhx(&py.call("step")[0]);
        let (chal, pending) = Acceptor::new(identity()).challenge(&neg).unwrap();
        let auth = unhx(&py.call(&format!("step {}", hx(&chal)))[0]);
        assert_eq!(sent_bindings(&auth), Some(cbt.0.to_vec()), "{name}");
        pending
            .check_channel_bindings(CbtHardening::Strict, cbt)
            .accept(&auth, &secret(PASSWORD))
            .expect("our acceptor accepts pyspnego's bound AUTHENTICATE");
    }
}

/// Our initiator bound to `cbt` (or not) against our acceptor checking `level` against
/// `expected`.
fn ours_vs_ours(
    sent: Option<ChannelBindings>,
    level: CbtHardening,
    expected: ChannelBindings,
) -> Result<(), NtlmError> {
    let creds = Credentials::from_user_spec("CONTOSO\\alice", secret(PASSWORD));
    let mut init = Initiator::new(creds, "WS01").with_target_spn("HTTP/lab-host");
    if let Some(cb) = sent {
        init = init.with_channel_bindings(cb);
    }
    let (neg, awaiting) = init.negotiate();
    let (chal, pending) = Acceptor::new(identity()).challenge(&neg)?;
    let (auth, _) = awaiting.authenticate(&chal)?;
    pending
        .check_channel_bindings(level, expected)
        .accept(&auth, &secret(PASSWORD))
        .map(|_| ())
}

#[test]
fn both_acceptors_accept_our_binding_and_refuse_a_wrong_one() {
    let der = certificate(&rcgen::PKCS_ECDSA_P256_SHA256);
    let other = certificate(&rcgen::PKCS_ECDSA_P256_SHA256);
    let good = ChannelBindings::tls_server_end_point(&der).unwrap();
    let wrong = ChannelBindings::tls_server_end_point(&other).unwrap();
    assert_ne!(good, wrong);

    // Ours.
    use CbtHardening::{None as Off, Relaxed, Strict};
    for level in [Relaxed, Strict] {
        ours_vs_ours(Some(good), level, good).unwrap();
        assert!(matches!(
            ours_vs_ours(Some(wrong), level, good),
            Err(NtlmError::ChannelBindingRefused(BindingProblem::Mismatch))
        ));
        assert!(matches!(
            ours_vs_ours(Some(ChannelBindings::ZERO), level, good),
            Err(NtlmError::ChannelBindingRefused(BindingProblem::Zero))
        ));
    }
    ours_vs_ours(None, Relaxed, good).expect("Relaxed accepts a client without bindings");
    assert!(matches!(
        ours_vs_ours(None, Strict, good),
        Err(NtlmError::ChannelBindingRefused(BindingProblem::Missing))
    ));
    ours_vs_ours(Some(wrong), Off, good).expect("None ignores bindings");

    // pyspnego's acceptor, given the certificate's application data.
    let dir = temp_dir();
    let mut py = Py::start(&dir.join("users"));
    let app = tls_server_end_point_data(&der).unwrap();
    for (sent, accepted) in [(good, true), (wrong, false)] {
        py.call(&format!("server {}", hx(&app)));
        let creds = Credentials::from_user_spec("CONTOSO\\alice", secret(PASSWORD));
        let (neg, awaiting) = Initiator::new(creds, "WS01")
            .with_target_spn("HTTP/lab-host")
            .with_channel_bindings(sent)
            .negotiate();
        let chal = unhx(&py.call(&format!("step {}", hx(&neg)))[0]);
        let (auth, _) = awaiting.authenticate(&chal).unwrap();
        let r = py.try_call(&format!("step {}", hx(&auth)));
        if accepted {
            assert_eq!(r.unwrap(), ["-", "1"], "pyspnego accepts our binding");
        } else {
            let e = r.unwrap_err();
            assert!(
                e.contains("BadBindings"),
                "pyspnego refuses a wrong one: {e}"
            );
        }
    }
}

#[test]
fn for_winrm_sends_target_name_and_binds_only_over_tls() {
    let der = certificate(&rcgen::PKCS_ECDSA_P256_SHA256);
    for (cert, want) in [
        (
            Some(der.as_slice()),
            Some(
                ChannelBindings::tls_server_end_point(&der)
                    .unwrap()
                    .0
                    .to_vec(),
            ),
        ),
        (None, None),
    ] {
        let creds = Credentials::from_user_spec("CONTOSO\\alice", secret(PASSWORD));
        let (neg, awaiting) =
            Initiator::for_winrm(creds, "WS01", "ws0001.lab.test", cert).negotiate();
        let (chal, _) = Acceptor::new(identity()).challenge(&neg).unwrap();
        let (auth, _) = awaiting.authenticate(&chal).unwrap();
        assert_eq!(sent_bindings(&auth), want);
        let a = AuthenticateMessage::parse(&auth).unwrap();
        let v2 = NtlmV2Response::parse(&a.nt_challenge_response).unwrap();
        assert_eq!(
            v2.client.av_pairs.get_string(av_id::TARGET_NAME).as_deref(),
            Some("HTTP/ws0001.lab.test")
        );
    }
}
