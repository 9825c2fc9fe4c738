//! NTLM interoperability with an independent implementation: pyspnego 0.12.4 (and
//! pypsrp 0.9.1's `WinRMEncryption` for the MS-WSMV multipart framing), both run from the
//! pinned interop venv.
//!
//! 1. pyspnego's NTLM *acceptor* (credentials from an `NTLM_USER_FILE`) accepts our
//!    [`Initiator`]'s tokens; it unwraps what we seal and we unwrap what it seals.
//! 2. pyspnego's NTLM *initiator* authenticates to our [`Acceptor`]; both sides exchange
//!    sealed messages.
//!
//! Python runs as one long-lived process per test, driven line by line over stdin/stdout
//! (tokens and data as hex), so a context keeps its RC4 state and sequence numbers across
//! steps. Any Python exception is reported back as `ERR ...` and fails the test unless
//! the test expects it; a missing venv fails loudly (see `trustsweep_tests::python`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use secrecy::SecretString;
use winrm::encryption::{seal_body, unseal_body, CONTENT_TYPE};
use winrm::ntlm::messages::{av_id, AuthenticateMessage, NtlmV2Response, AV_FLAG_MIC_PRESENT};
use winrm::ntlm::{Acceptor, Credentials, Initiator, NtlmError, ServerIdentity, SessionSecurity};

/// The Python side: one pyspnego context at a time, commands on stdin, one reply line each.
const DRIVER: &str = r#"
import sys
import spnego
from pypsrp.encryption import WinRMEncryption

ctx = None

def unhex(s):
    return b"" if s == "-" else bytes.fromhex(s)

def tohex(b):
    return b.hex() if b else "-"

def out(*fields):
    sys.stdout.write(" ".join(fields) + "\n")
    sys.stdout.flush()

for line in sys.stdin:
    parts = line.split()
    if not parts:
        continue
    cmd, args = parts[0], parts[1:]
    try:
        if cmd == "server":
            ctx = spnego.server(protocol="ntlm", options=spnego.NegotiateOptions.use_ntlm)
            out("OK")
        elif cmd == "client":
            user, password = unhex(args[0]).decode(), unhex(args[1]).decode()
            ctx = spnego.client(user, password, hostname="lab-host", service="http",
                                protocol="ntlm", options=spnego.NegotiateOptions.use_ntlm)
            out("OK")
        elif cmd == "step":
            token = unhex(args[0]) if args else b""
            result = ctx.step(token or None)
            out("OK", tohex(result), "1" if ctx.complete else "0")
        elif cmd == "session_key":
            out("OK", tohex(ctx.session_key))
        elif cmd == "wrap":
            out("OK", tohex(ctx.wrap(unhex(args[0]), encrypt=True).data))
        elif cmd == "unwrap":
            out("OK", tohex(ctx.unwrap(unhex(args[0])).data))
        elif cmd == "seal_body":
            content_type, body = WinRMEncryption(ctx, WinRMEncryption.SPNEGO).wrap_message(unhex(args[0]))
            out("OK", tohex(content_type.encode()), tohex(body))
        elif cmd == "unseal_body":
            data = WinRMEncryption(ctx, WinRMEncryption.SPNEGO).unwrap_message(unhex(args[0]), "Encrypted Boundary")
            out("OK", tohex(data))
        else:
            out("ERR", "unknown-command", cmd)
    except Exception as e:
        out("ERR", type(e).__name__, str(e).replace("\n", " "))
"#;

struct Py {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Py {
    fn start(user_file: Option<&std::path::Path>) -> Self {
        let mut cmd = Command::new(trustsweep_tests::python());
        cmd.arg("-c")
            .arg(DRIVER)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("NTLM_USER_FILE");
        if let Some(f) = user_file {
            cmd.env("NTLM_USER_FILE", f);
        }
        let mut child = cmd.spawn().expect("spawn python");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Self {
            child,
            stdin,
            stdout,
        }
    }

    /// Sends one command; returns the reply fields after `OK`, or the `ERR` line.
    fn try_call(&mut self, line: &str) -> Result<Vec<String>, String> {
        writeln!(self.stdin, "{line}").expect("write to python");
        self.stdin.flush().expect("flush");
        let mut reply = String::new();
        let n = self.stdout.read_line(&mut reply).expect("read from python");
        if n == 0 {
            let mut err = String::new();
            if let Some(mut e) = self.child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("python exited while handling {:?}:\n{err}", truncate(line));
        }
        let mut fields = reply.split_whitespace().map(str::to_owned);
        match fields.next().as_deref() {
            Some("OK") => Ok(fields.collect()),
            _ => Err(reply.trim().to_owned()),
        }
    }

    fn call(&mut self, line: &str) -> Vec<String> {
        self.try_call(line)
            .unwrap_or_else(|e| panic!("python failed on {:?}: {e}", truncate(line)))
    }
}

impl Drop for Py {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn truncate(s: &str) -> &str {
    &s[..s.len().min(80)]
}

fn hx(b: &[u8]) -> String {
    if b.is_empty() {
        "-".to_owned()
    } else {
        hex::encode(b)
    }
}

fn unhx(s: &str) -> Vec<u8> {
    if s == "-" {
        Vec::new()
    } else {
        hex::decode(s).expect("hex from python")
    }
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

const PASSWORD: &str = "Pässwörd-1!";

fn user_file(dir: &std::path::Path) -> std::path::PathBuf {
    // Heimdal format DOMAIN:USER:PASSWORD; a UPN has an empty domain.
    let path = dir.join("ntlm_users");
    std::fs::write(
        &path,
        format!(
            "CONTOSO:alice:{PASSWORD}\n:bob@contoso.com:{PASSWORD}\nCONTOSO:carol:other-password\n"
        ),
    )
    .expect("write NTLM_USER_FILE");
    path
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("trustsweep-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Messages in both directions through both framings: MS-WSMV bodies (ours ↔ pypsrp's
/// `WinRMEncryption`) and raw GSS wrap tokens (ours ↔ pyspnego's `wrap`/`unwrap`).
fn exchange(py: &mut Py, ours: &mut SessionSecurity, rounds: usize) {
    for i in 0..rounds {
        // Ours -> Python, multipart body.
        let msg = format!(
            "<s:Envelope>from-rust-{i} ü {}</s:Envelope>",
            "r".repeat(i * 37)
        );
        let body = seal_body(ours, msg.as_bytes());
        let got = py.call(&format!("unseal_body {}", hx(&body)));
        assert_eq!(
            unhx(&got[0]),
            msg.as_bytes(),
            "python unsealed our body {i}"
        );

        // Python -> ours, multipart body.
        let msg = format!(
            "<s:Envelope>from-python-{i} ✓ {}</s:Envelope>",
            "p".repeat(i * 53)
        );
        let got = py.call(&format!("seal_body {}", hx(msg.as_bytes())));
        assert_eq!(unhx(&got[0]), b"multipart/encrypted");
        let body = unhx(&got[1]);
        let plain = unseal_body(ours, CONTENT_TYPE, &body).expect("we unseal python's body");
        assert_eq!(plain, msg.as_bytes());

        // Raw wrap tokens, several in a row each way.
        for j in 0..(i % 3 + 1) {
            let msg = format!("raw-{i}-{j}");
            let (sig, sealed) = ours.wrap(msg.as_bytes());
            let mut token = sig.to_vec();
            token.extend_from_slice(&sealed);
            let got = py.call(&format!("unwrap {}", hx(&token)));
            assert_eq!(unhx(&got[0]), msg.as_bytes());
        }
        let got = py.call(&format!("wrap {}", hx(format!("raw-back-{i}").as_bytes())));
        let token = unhx(&got[0]);
        assert_eq!(
            ours.unwrap(&token[..16], &token[16..])
                .expect("unwrap python's token"),
            format!("raw-back-{i}").as_bytes()
        );
    }
}

/// Our initiator against pyspnego's acceptor; returns our context or Python's error.
fn rust_client_handshake(
    py: &mut Py,
    user_spec: &str,
    password: &str,
) -> Result<SessionSecurity, String> {
    py.call("server");
    let creds = Credentials::from_user_spec(user_spec, secret(password));
    let (neg, awaiting) = Initiator::new(creds, "RUSTWS")
        .with_target_spn("HTTP/lab-host")
        .negotiate();
    let got = py.call(&format!("step {}", hx(&neg)));
    assert_eq!(got[1], "0", "pyspnego finished after NEGOTIATE?");
    let challenge = unhx(&got[0]);
    let (auth, sec) = awaiting
        .authenticate(&challenge)
        .expect("our initiator accepts pyspnego's CHALLENGE");
    let got = py.try_call(&format!("step {}", hx(&auth)))?;
    assert_eq!(
        got,
        ["-", "1"],
        "pyspnego acceptor complete with no output token"
    );
    let key = py.call("session_key");
    assert_eq!(
        unhx(&key[0]),
        sec.exported_session_key(),
        "same session key"
    );
    Ok(sec)
}

#[test]
fn pyspnego_server_accepts_our_initiator() {
    let dir = temp_dir("pyspnego-server");
    let file = user_file(&dir);
    let mut py = Py::start(Some(&file));

    let mut sec =
        rust_client_handshake(&mut py, "CONTOSO\\alice", PASSWORD).expect("alice authenticates");
    exchange(&mut py, &mut sec, 6);

    // A message altered in transit is refused by pyspnego.
    let (sig, mut sealed) = sec.wrap(b"tampered");
    sealed[0] ^= 1;
    let mut token = sig.to_vec();
    token.extend_from_slice(&sealed);
    let err = py
        .try_call(&format!("unwrap {}", hx(&token)))
        .expect_err("tampered token accepted");
    assert!(err.contains("ERR"), "{err}");

    // UPN user (empty domain) and a wrong password.
    let mut sec =
        rust_client_handshake(&mut py, "bob@contoso.com", PASSWORD).expect("UPN authenticates");
    exchange(&mut py, &mut sec, 2);
    let err = rust_client_handshake(&mut py, "CONTOSO\\carol", PASSWORD)
        .expect_err("wrong password accepted");
    assert!(
        err.contains("Invalid NTLM response") || err.contains("ERR"),
        "{err}"
    );

    let _ = std::fs::remove_dir_all(&dir);
}

fn identity() -> ServerIdentity {
    ServerIdentity {
        nb_domain: "CONTOSO".into(),
        nb_computer: "LAB-HOST".into(),
        dns_domain: "contoso.com".into(),
        dns_computer: "lab-host.contoso.com".into(),
    }
}

/// pyspnego's initiator against our acceptor: returns (claimed user, our context or error).
fn python_client_handshake(
    py: &mut Py,
    user: &str,
    client_password: &str,
    server_password: &str,
) -> (
    winrm::ntlm::ClaimedIdentity,
    Result<SessionSecurity, NtlmError>,
) {
    py.call(&format!(
        "client {} {}",
        hx(user.as_bytes()),
        hx(client_password.as_bytes())
    ));
    let got = py.call("step -");
    assert_eq!(got[1], "0");
    let negotiate = unhx(&got[0]);
    let (challenge, pending) = Acceptor::new(identity())
        .challenge(&negotiate)
        .expect("our CHALLENGE");
    let got = py.call(&format!("step {}", hx(&challenge)));
    assert_eq!(
        got[1], "1",
        "pyspnego initiator complete after AUTHENTICATE"
    );
    let auth = unhx(&got[0]);

    // pyspnego saw our MsvAvTimestamp, so it must send a MIC (and we must check it).
    let msg = AuthenticateMessage::parse(&auth).expect("parse pyspnego AUTHENTICATE");
    assert!(msg.mic.is_some());
    let v2 = NtlmV2Response::parse(&msg.nt_challenge_response).expect("NTLMv2");
    assert_eq!(
        v2.client.av_pairs.flags().unwrap_or(0) & AV_FLAG_MIC_PRESENT,
        AV_FLAG_MIC_PRESENT
    );
    assert_eq!(
        v2.client.av_pairs.get_string(av_id::TARGET_NAME).as_deref(),
        Some("http/lab-host")
    );

    let who = pending.claimed_identity(&auth).expect("claimed identity");
    (who, pending.accept(&auth, &secret(server_password)))
}

#[test]
fn pyspnego_client_authenticates_to_our_acceptor() {
    let mut py = Py::start(None);

    let (who, sec) = python_client_handshake(&mut py, "CONTOSO\\alice", PASSWORD, PASSWORD);
    assert_eq!(
        (who.domain.as_str(), who.user.as_str()),
        ("CONTOSO", "alice")
    );
    let mut sec = sec.expect("our acceptor accepts pyspnego's AUTHENTICATE");
    let key = py.call("session_key");
    assert_eq!(
        unhx(&key[0]),
        sec.exported_session_key(),
        "same session key"
    );
    exchange(&mut py, &mut sec, 6);

    // A tampered message from Python is refused by us.
    let got = py.call(&format!("wrap {}", hx(b"tampered")));
    let mut token = unhx(&got[0]);
    let last = token.len() - 1;
    token[last] ^= 1;
    assert!(matches!(
        sec.unwrap(&token[..16], &token[16..]),
        Err(NtlmError::SignatureMismatch { .. })
    ));

    // UPN: user is the whole UPN, domain empty.
    let (who, sec) = python_client_handshake(&mut py, "bob@contoso.com", PASSWORD, PASSWORD);
    assert_eq!(
        (who.domain.as_str(), who.user.as_str()),
        ("", "bob@contoso.com")
    );
    let mut sec = sec.expect("UPN accepted");
    exchange(&mut py, &mut sec, 2);

    // Wrong password.
    let (_, sec) = python_client_handshake(&mut py, "CONTOSO\\alice", "wrong", PASSWORD);
    assert!(
        matches!(sec, Err(NtlmError::AuthenticationFailed { .. })),
        "wrong password must fail: {sec:?}"
    );
}
