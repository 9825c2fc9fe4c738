//! Our WinRM client against our WinRM server pieces on loopback, with a tiny scripted
//! backend: authentication outcomes, encryption, stdin chunking, long output across
//! several Receives, OperationTimeout polling, one connection per session, transparent
//! re-authentication when the connection drops — and pywinrm/pypsrp against the same
//! server, so both sides are checked by clients nobody here wrote.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use winrm::ntlm::{ClaimedIdentity, ServerIdentity};
use winrm::secret::secret;
use winrm::server::{Backend, ExecOutput, HostIdentity, Logon, Server, ServerConfig, StdinMode};
use winrm::session::{Session, SessionConfig};
use winrm::transport::{AuthMethod, Endpoint, Scheme};

const ADMIN_PW: &str = "Adm1n!Loopback";

#[derive(Debug)]
struct Scripted;

impl Backend for Scripted {
    type Principal = String;

    fn identity(&self, _local: SocketAddr) -> Option<HostIdentity> {
        Some(HostIdentity {
            ntlm: ServerIdentity {
                nb_domain: "LAB".into(),
                nb_computer: "WS0001".into(),
                dns_domain: "lab.test".into(),
                dns_computer: "ws0001.lab.test".into(),
            },
            machine: "ws0001.lab.test".into(),
        })
    }

    fn logon(&self, _local: SocketAddr, claimed: &ClaimedIdentity) -> Logon<String> {
        match (
            claimed.domain.to_ascii_uppercase().as_str(),
            claimed.user.to_ascii_lowercase().as_str(),
        ) {
            ("" | "WS0001" | ".", "administrator") => Logon::Verify {
                password: secret(ADMIN_PW),
                principal: "ws0001\\administrator".into(),
            },
            ("" | "WS0001" | ".", "opsadmin") => Logon::Verify {
                password: secret("0ps!Admin"),
                principal: "ws0001\\opsadmin".into(),
            },
            _ => Logon::Reject,
        }
    }

    fn authorize(&self, _local: SocketAddr, who: &String) -> bool {
        who != "ws0001\\opsadmin"
    }

    fn principal_name(&self, who: &String) -> String {
        who.clone()
    }

    fn reads_stdin(&self, _local: SocketAddr, command_line: &str) -> bool {
        command_line.eq_ignore_ascii_case("more")
    }

    #[allow(clippy::manual_async_fn)]
    fn execute(
        &self,
        _local: SocketAddr,
        who: String,
        command_line: String,
        stdin: Vec<u8>,
        mode: StdinMode,
    ) -> impl std::future::Future<Output = ExecOutput> + Send + 'static {
        async move {
            let mut words = command_line.splitn(2, ' ');
            let cmd = words.next().unwrap_or("").to_ascii_lowercase();
            let rest = words.next().unwrap_or("").to_string();
            match cmd.as_str() {
                "stdinmode" => ExecOutput { stdout: format!("{mode:?}\r\n").into_bytes(), stderr: vec![], exit_code: 0 },
                "echo" => ExecOutput { stdout: format!("{rest}\r\n").into_bytes(), stderr: vec![], exit_code: 0 },
                "whoami" => ExecOutput { stdout: format!("{who}\r\n").into_bytes(), stderr: vec![], exit_code: 0 },
                "exit" => ExecOutput { stdout: vec![], stderr: b"bye\r\n".to_vec(), exit_code: rest.trim().parse().unwrap_or(1) },
                "more" => ExecOutput { stdout: stdin, stderr: vec![], exit_code: 0 },
                "big" => {
                    let n: usize = rest.trim().parse().unwrap_or(0);
                    ExecOutput { stdout: (0..n).map(|i| b'a' + (i % 26) as u8).collect(), stderr: vec![], exit_code: 0 }
                }
                "sleep" => {
                    let ms: u64 = rest.trim().parse().unwrap_or(0);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    ExecOutput { stdout: b"woke\r\n".to_vec(), stderr: vec![], exit_code: 0 }
                }
                other => ExecOutput {
                    stdout: vec![],
                    stderr: format!("'{other}' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n").into_bytes(),
                    exit_code: 1,
                },
            }
        }
    }
}

async fn start_server() -> (SocketAddr, Arc<Server<Scripted>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new(Arc::new(Scripted), ServerConfig::default());
    tokio::spawn(server.clone().serve(listener));
    (addr, server)
}

fn config(addr: SocketAddr, user: &str, password: &str) -> SessionConfig {
    let mut cfg = SessionConfig::new(
        Endpoint::new(addr.ip().to_string(), Some(addr.port()), Scheme::Http),
        AuthMethod::Ntlm,
        user,
        secret(password),
    );
    cfg.operation_timeout = Duration::from_secs(1);
    cfg.read_timeout = Duration::from_secs(10);
    cfg
}

#[tokio::test]
async fn runs_commands_with_one_connection_per_session() {
    let (addr, server) = start_server().await;
    let mut s = Session::new(config(addr, "Administrator", ADMIN_PW)).unwrap();
    for i in 0..20 {
        let out = s.run("echo", &[format!("hello {i}")], None).await.unwrap();
        assert_eq!(out.stdout_text(), format!("hello {i}\r\n"));
        assert_eq!(out.exit_code, 0);
    }
    let out = s.run("exit", &["7".into()], None).await.unwrap();
    assert_eq!(out.exit_code, 7);
    assert_eq!(out.stderr, b"bye\r\n");
    let out = s.run("whoami", &[], None).await.unwrap();
    assert_eq!(out.stdout_text(), "ws0001\\administrator\r\n");
    assert_eq!(
        s.connects(),
        1,
        "one TCP connection and one NTLM handshake for the whole session"
    );
    assert_eq!(
        server.open_shells(),
        1,
        "one shell reused for every command"
    );
    s.close().await.unwrap();
    assert_eq!(server.open_shells(), 0);
}

#[tokio::test]
async fn stdin_larger_than_an_envelope_and_output_across_receives() {
    let (addr, _server) = start_server().await;
    let mut s = Session::new(config(addr, "Administrator", ADMIN_PW)).unwrap();
    let input: Vec<u8> = (0..400_000u32).map(|i| b'0' + (i % 10) as u8).collect();
    let out = s.run("more", &[], Some(&input)).await.unwrap();
    assert_eq!(out.stdout.len(), input.len());
    assert_eq!(out.stdout, input);
    let out = s.run("big", &["1000000".into()], None).await.unwrap();
    assert_eq!(out.stdout.len(), 1_000_000);
    assert!(out
        .stdout
        .iter()
        .enumerate()
        .all(|(i, b)| *b == b'a' + (i % 26) as u8));
}

#[tokio::test]
async fn a_command_that_gets_stdin_is_started_with_a_pipe() {
    // DOMAIN.md "WinRM details": WINRS_CONSOLEMODE_STDIN=FALSE whenever stdin is sent
    // (MS-WSMV 3.1.4.11; Ansible's console_mode_stdin=(stdin_iterator is None)); the
    // other commands keep TRUE.
    let (addr, _server) = start_server().await;
    let mut s = Session::new(config(addr, "Administrator", ADMIN_PW)).unwrap();
    assert_eq!(
        s.run("stdinmode", &[], Some(b"secret\n"))
            .await
            .unwrap()
            .stdout_text(),
        "Pipe\r\n"
    );
    assert_eq!(
        s.run("stdinmode", &[], None).await.unwrap().stdout_text(),
        "Console\r\n"
    );
    s.close().await.unwrap();
}

#[tokio::test]
async fn operation_timeout_faults_mean_poll_again() {
    let (addr, _server) = start_server().await;
    let mut s = Session::new(config(addr, "Administrator", ADMIN_PW)).unwrap();
    // The server answers the first Receive(s) with the OperationTimeout fault after 1 s.
    let out = s.run("sleep", &["2300".into()], None).await.unwrap();
    assert_eq!(out.stdout_text(), "woke\r\n");
}

#[tokio::test]
async fn wrong_password_and_unknown_domain_user_are_401() {
    let (addr, _server) = start_server().await;
    let mut s = Session::new(config(addr, "Administrator", "wrong")).unwrap();
    let e = s.run("echo", &["x".into()], None).await.unwrap_err();
    assert!(e.is_unauthorized(), "{e}");
    assert!(
        !e.to_string().contains("wrong"),
        "the password must not appear in errors: {e}"
    );
    let mut s = Session::new(config(addr, "LAB\\someone", "whatever")).unwrap();
    let e = s.run("echo", &["x".into()], None).await.unwrap_err();
    assert!(e.is_unauthorized(), "{e}");
}

#[tokio::test]
async fn filtered_admin_gets_access_denied_fault() {
    let (addr, _server) = start_server().await;
    let mut s = Session::new(config(addr, "opsadmin", "0ps!Admin")).unwrap();
    let e = s.run("echo", &["x".into()], None).await.unwrap_err();
    assert!(e.is_access_denied(), "{e}");
}

#[tokio::test]
async fn basic_over_http_is_refused_before_any_io() {
    let cfg = SessionConfig::new(
        Endpoint::new("127.0.0.1", Some(1), Scheme::Http),
        AuthMethod::Basic,
        "u",
        secret("p"),
    );
    let e = Session::new(cfg).unwrap_err();
    assert!(e.to_string().contains("clear text"), "{e}");
}

/// A TCP proxy whose connections can all be cut at once.
async fn cuttable_proxy(upstream: SocketAddr) -> (SocketAddr, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cut = Arc::new(AtomicBool::new(false));
    let generation = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let cut2 = cut.clone();
    tokio::spawn(async move {
        loop {
            let (mut client, _) = listener.accept().await.unwrap();
            let mut server = TcpStream::connect(upstream).await.unwrap();
            let cut = cut2.clone();
            let _gen = generation.clone();
            tokio::spawn(async move {
                let mut a = [0u8; 65536];
                let mut b = [0u8; 65536];
                loop {
                    if cut.swap(false, Ordering::SeqCst) {
                        return; // drop both sockets
                    }
                    tokio::select! {
                        n = client.read(&mut a) => { let Ok(n) = n else { return }; if n == 0 || server.write_all(&a[..n]).await.is_err() { return } }
                        n = server.read(&mut b) => { let Ok(n) = n else { return }; if n == 0 || client.write_all(&b[..n]).await.is_err() { return } }
                    }
                }
            });
        }
    });
    (addr, cut)
}

#[tokio::test]
async fn reauthenticates_transparently_when_the_connection_drops() {
    let (addr, _server) = start_server().await;
    let (proxy, cut) = cuttable_proxy(addr).await;
    let mut s = Session::new(config(proxy, "Administrator", ADMIN_PW)).unwrap();
    let out = s.run("echo", &["one".into()], None).await.unwrap();
    assert_eq!(out.stdout_text(), "one\r\n");
    assert_eq!(s.connects(), 1);
    cut.store(true, Ordering::SeqCst);
    // Poke the proxy so the cut takes effect on the idle connection: the next request
    // finds the connection closed, reconnects, re-authenticates and goes on.
    let mut ok = None;
    for _ in 0..3 {
        match s.run("echo", &["two".into()], None).await {
            Ok(o) => {
                ok = Some(o);
                break;
            }
            Err(e) => eprintln!("attempt failed: {e}"),
        }
    }
    let out = ok.expect("the session recovers after the connection drops");
    assert_eq!(out.stdout_text(), "two\r\n");
    assert!(
        s.connects() >= 2,
        "a new connection and handshake were made"
    );
}

#[tokio::test]
async fn pywinrm_and_pypsrp_run_commands_against_the_server() {
    let (addr, _server) = start_server().await;
    let script = r#"
import sys, winrm, pypsrp.client
host, port, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = winrm.Session(f"http://{host}:{port}/wsman", auth=("Administrator", pw), transport="ntlm", message_encryption="always")
r = s.run_cmd("echo", ["from pywinrm"])
print("pywinrm", r.status_code, r.std_out.decode().strip())
c = pypsrp.client.Client(host, port=port, username="Administrator", password=pw, ssl=False, auth="ntlm", encryption="always")
out, err, rc = c.execute_cmd("echo from pypsrp")
print("pypsrp", rc, out.strip())
"#;
    let port = addr.port().to_string();
    let (ok, stdout, stderr) = tokio::task::spawn_blocking(move || {
        trustsweep_tests::run_python(script, &["127.0.0.1", &port, ADMIN_PW])
    })
    .await
    .unwrap();
    assert!(ok, "python failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("pywinrm 0 from pywinrm"), "{stdout}");
    assert!(stdout.contains("pypsrp 0 from pypsrp"), "{stdout}");
}

#[tokio::test]
async fn an_envelope_above_max_envelope_size_kb_is_413_and_named() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // A listener configured like an old host with a small MaxEnvelopeSizekb.
    let server = Server::new(
        Arc::new(Scripted),
        ServerConfig {
            max_envelope_size_kb: 16,
            ..ServerConfig::default()
        },
    );
    tokio::spawn(server.serve(listener));
    let mut s = Session::new(config(addr, "Administrator", ADMIN_PW)).unwrap();
    let input = vec![b'x'; 100_000];
    let e = s.run("more", &[], Some(&input)).await.unwrap_err();
    assert!(matches!(e, winrm::Error::EnvelopeTooLarge { .. }), "{e}");
    assert!(e.to_string().contains("MaxEnvelopeSizekb"), "{e}");
}
