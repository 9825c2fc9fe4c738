//! Hostile servers (issue 16): a WinRM listener that misbehaves on purpose — trickles
//! bytes, never says Done, sends endless output, oversize bodies and heads, a tampered or
//! replayed seal, wrong sequence numbers, redirects, a certificate for another name, HTML
//! 500 pages, resets mid-body, a CHALLENGE that downgrades the flags, absurd AV pairs.
//! Each must end as that host's typed error, within its deadlines (short ones here; the
//! outer timeout is only a hang guard, never a speed assertion) and with bounded memory
//! (the client refuses past its caps and says so). Nothing is ever sent to a redirect's
//! target. The last test sweeps hostile hosts among healthy lab hosts with the real
//! `trustsweep check`: every host gets a result and the sweep completes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod hostile;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hostile::{Hostile, Mode, RedirectTarget, PASSWORD};
use winrm::ntlm::NtlmError;
use winrm::secret::secret;
use winrm::session::{Session, SessionConfig, DEFAULT_MAX_ENVELOPE_SIZE};
use winrm::transport::{reply_limit, AuthMethod, Endpoint, Scheme, MAX_HEAD_BYTES};
use winrm::Error;

/// The hang guard: far beyond every deadline configured below.
const GUARD: Duration = Duration::from_secs(60);
/// The per-request deadline given to the client.
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// The per-command deadline given to the client.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);
/// The output cap given to the client.
const OUTPUT_CAP: usize = 1024 * 1024;

fn config(host: &str, port: u16, scheme: Scheme) -> SessionConfig {
    let mut cfg = SessionConfig::new(
        Endpoint::new(host, Some(port), scheme),
        AuthMethod::Ntlm,
        "Administrator",
        secret(PASSWORD),
    );
    cfg.connect_timeout = Duration::from_secs(2);
    cfg.operation_timeout = Duration::from_secs(1);
    cfg.read_timeout = READ_TIMEOUT;
    cfg.command_timeout = COMMAND_TIMEOUT;
    cfg.max_output_bytes = OUTPUT_CAP;
    cfg
}

fn session(server: &Hostile) -> Session {
    Session::new(config("127.0.0.1", server.addr.port(), Scheme::Http)).unwrap()
}

async fn guarded<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: hung past the {GUARD:?} guard"))
}

/// Starts a server in `mode`, runs one command against it and returns the error.
async fn run_against(mode: Mode) -> (Hostile, Error) {
    let server = Hostile::start(mode).await;
    let mut s = session(&server);
    let e = guarded(&format!("{mode:?}"), s.run("hostname", &[], None))
        .await
        .expect_err("a hostile server must not yield a result");
    drop(s);
    (server, e)
}

#[tokio::test]
async fn the_honest_server_is_a_working_listener() {
    // The baseline: everything below fails because of its misbehaviour, nothing else.
    let server = Hostile::start(Mode::Honest).await;
    let mut s = session(&server);
    let out = guarded("honest", s.run("hostname", &[], None))
        .await
        .unwrap();
    assert_eq!((out.stdout_text().as_str(), out.exit_code), ("ok\r\n", 0));
    guarded("close", s.close()).await.unwrap();
    assert_eq!(
        server.log(),
        [
            "NEGOTIATE",
            "AUTHENTICATE",
            "Create",
            "Command",
            "Receive",
            "Signal terminate",
            "Delete"
        ]
    );
}

/// A server that answers the AUTHENTICATE carrying the sealed Create with an empty 200
/// (it wants MS-WSMV 2.2.9.1's empty-body AUTHENTICATE first) costs one more connection,
/// then the classic handshake, and the command still runs: the Create that went unanswered
/// did nothing, so sending it again is safe.
#[tokio::test]
async fn a_server_that_ignores_a_body_on_authenticate_gets_the_classic_handshake() {
    let server = Hostile::start(Mode::AuthenticateOnly).await;
    let mut s = session(&server);
    let out = guarded("authenticate-only", s.run("hostname", &[], None))
        .await
        .unwrap();
    assert_eq!((out.stdout_text().as_str(), out.exit_code), ("ok\r\n", 0));
    guarded("close", s.close()).await.unwrap();
    assert_eq!(
        server.log(),
        [
            "NEGOTIATE",
            "AUTHENTICATE",
            "body on AUTHENTICATE ignored",
            "NEGOTIATE",
            "AUTHENTICATE",
            "Create",
            "Command",
            "Receive",
            "Signal terminate",
            "Delete"
        ]
    );
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn a_trickling_server_cannot_stretch_the_read_deadline() {
    // Every reply, from the 401 on, at 50 bytes a second: each byte arrives well within
    // any idle timeout, and the exchange still ends at the read timeout.
    let server = Hostile::start(Mode::Slowloris).await;
    let e = guarded("slowloris logon", session(&server).connect())
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::ReadTimeout { after, .. } if after == READ_TIMEOUT),
        "{e:?}"
    );
    assert!(e.is_timeout());

    // The head at once, then the body trickled: the deadline covers the body too.
    let (_, e) = run_against(Mode::SlowlorisBody).await;
    assert!(
        matches!(e, Error::ReadTimeout { after, .. } if after == READ_TIMEOUT),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_command_that_never_finishes_ends_at_the_command_timeout_and_is_terminated() {
    let server = Hostile::start(Mode::NeverDone).await;
    let mut s = session(&server);
    let e = guarded("never done", s.run("hostname", &[], None))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::CommandTimeout { after, command_id, .. }
            if *after == COMMAND_TIMEOUT && command_id == hostile::COMMAND_ID),
        "{e:?}"
    );
    assert!(e.is_timeout());
    // The session tells the runaway command to stop before it goes away.
    guarded("close", s.close()).await.unwrap();
    let log = server.log();
    let signal = log.iter().position(|l| l == "Signal terminate");
    let delete = log.iter().position(|l| l == "Delete");
    assert!(
        signal.is_some() && signal < delete,
        "terminate, then Delete: {log:?}"
    );
}

#[tokio::test]
async fn endless_output_stops_at_the_cap_with_an_error_saying_so() {
    let server = Hostile::start(Mode::EndlessOutput).await;
    let mut s = session(&server);
    let e = guarded("endless output", s.run("hostname", &[], None))
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::OutputTooLarge { limit, .. } if limit == OUTPUT_CAP),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("more than 1048576 bytes of output"),
        "{e}"
    );
    // 64 KiB per Receive: the cap is reached on the 17th, and no Receive follows it.
    let receives = server.log().iter().filter(|l| *l == "Receive").count();
    assert_eq!(receives, 17);
    guarded("close", s.close()).await.unwrap();
    assert!(server.log().contains(&"Signal terminate".to_string()));
}

#[tokio::test]
async fn oversize_bodies_are_refused_at_the_envelope_limit() {
    let limit = reply_limit(DEFAULT_MAX_ENVELOPE_SIZE);
    assert!(
        limit < 1024 * 1024,
        "the limit follows MaxEnvelopeSize: {limit}"
    );
    // Announced (Content-Length: 64 MiB) and unannounced (chunked, endless).
    for mode in [Mode::OversizeBody, Mode::OversizeChunked] {
        let (_, e) = run_against(mode).await;
        assert!(
            matches!(e, Error::ReplyTooLarge { part: "body", limit: l, .. } if l == limit),
            "{mode:?}: {e:?}"
        );
    }
}

#[tokio::test]
async fn an_oversize_head_is_refused() {
    let (server, e) = run_against(Mode::OversizeHead).await;
    assert!(
        matches!(
            e,
            Error::ReplyTooLarge {
                part: "head",
                limit: MAX_HEAD_BYTES,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(!server.log().contains(&"AUTHENTICATE".to_string()));
}

#[tokio::test]
async fn a_tampered_seal_is_an_integrity_error_that_ends_the_connection() {
    let server = Hostile::start(Mode::TamperedSeal).await;
    let mut s = session(&server);
    for attempt in 1..=2 {
        let e = guarded("tampered", s.run("hostname", &[], None))
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::Integrity {
                    source: NtlmError::SignatureMismatch { seq_num: 0 },
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.is_integrity());
        // The context is not reused: every attempt authenticates on a new connection.
        assert_eq!(s.connects(), attempt);
        assert_eq!(server.connections(), attempt as usize);
    }
    // Nothing was built on the altered reply.
    assert!(!server.log().contains(&"Command".to_string()));
}

#[tokio::test]
async fn a_replayed_seal_and_a_skipped_sequence_number_are_integrity_errors() {
    let (server, e) = run_against(Mode::ReplayedSeal).await;
    assert!(
        matches!(
            e,
            Error::Integrity {
                source: NtlmError::SequenceMismatch {
                    expected: 1,
                    received: 0
                },
                ..
            }
        ),
        "{e:?}"
    );
    assert!(!server.log().contains(&"Receive".to_string()));

    let (server, e) = run_against(Mode::WrongSequence).await;
    assert!(
        matches!(
            e,
            Error::Integrity {
                source: NtlmError::SequenceMismatch {
                    expected: 1,
                    received: 2
                },
                ..
            }
        ),
        "{e:?}"
    );
    assert!(!server.log().contains(&"Receive".to_string()));
}

#[tokio::test]
async fn redirects_are_errors_naming_the_target_and_never_followed() {
    let mut target = RedirectTarget::bind();
    let port = target.port();
    // At the first request (NEGOTIATE), and after logon (the Create).
    for (mode, status) in [
        (Mode::Redirect(port), 302),
        (Mode::RedirectAfterLogon(port), 307),
    ] {
        let (server, e) = run_against(mode).await;
        match &e {
            Error::Redirected {
                status: s,
                location,
                ..
            } => {
                assert_eq!(*s, status);
                assert_eq!(location, &format!("http://127.0.0.1:{port}/wsman"));
            }
            other => panic!("{mode:?}: {other:?}"),
        }
        assert!(e.is_not_winrm());
        assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
        assert!(!server.log().contains(&"unauthenticated body".to_string()));
    }
    winrm::session::finish_cleanup(Duration::from_secs(15)).await;
    assert_eq!(
        target.connections(),
        0,
        "nothing reaches a redirect's target"
    );
}

#[tokio::test]
async fn an_html_500_page_is_not_a_fault_and_is_quoted() {
    let (_, e) = run_against(Mode::HtmlError).await;
    assert!(matches!(e, Error::ErrorPage { status: 500, .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains("HTTP 500 (not a WS-Man fault)"), "{text}");
    assert!(
        text.contains("Runtime Error Server Error in '/' Application."),
        "the page's text, without its tags: {text}"
    );
    assert!(!text.contains('<') && !text.contains('\n'), "{text}");
}

#[tokio::test]
async fn an_unsealed_reply_after_logon_is_refused() {
    // Well-formed SOAP, but in clear where sealing was negotiated: anyone on the path
    // could have written it (MS-WSMV 2.2.9.1).
    let (server, e) = run_against(Mode::PlaintextAfterLogon).await;
    assert!(
        matches!(
            e,
            Error::Encryption {
                source: winrm::encryption::EncryptionError::NotEncrypted { .. },
                ..
            }
        ),
        "{e:?}"
    );
    assert!(!server.log().contains(&"Command".to_string()));
}

#[tokio::test]
async fn a_reset_mid_body_is_an_error_and_a_create_is_not_resent() {
    let (server, e) = run_against(Mode::ResetMidBody).await;
    assert!(matches!(e, Error::Http { .. }), "{e:?}");
    // The Create may have opened a shell: sending it again could open a second one.
    let creates = server.log().iter().filter(|l| *l == "Create").count();
    assert_eq!(creates, 1, "{:?}", server.log());
}

#[tokio::test]
async fn a_challenge_that_drops_sealing_is_refused_before_anything_is_sent() {
    let (server, e) = run_against(Mode::DowngradeFlags).await;
    match &e {
        Error::Ntlm {
            source: NtlmError::Unsupported(why),
            ..
        } => {
            for flag in ["SEAL", "128", "KEY_EXCH"] {
                assert!(why.contains(flag), "{why}");
            }
        }
        other => panic!("{other:?}"),
    }
    // No AUTHENTICATE, and never a body in clear: no fallback to unsealed HTTP.
    assert_eq!(server.log(), ["NEGOTIATE"]);
}

#[tokio::test]
async fn absurd_av_pairs_are_malformed_challenges() {
    for mode in [
        Mode::AvPairPastEnd,
        Mode::TargetInfoPastEnd,
        Mode::ManyAvPairs,
    ] {
        let (server, e) = run_against(mode).await;
        assert!(
            matches!(
                &e,
                Error::Ntlm {
                    source: NtlmError::Malformed { message, .. },
                    ..
                } if message.starts_with("CHALLENGE")
            ),
            "{mode:?}: {e:?}"
        );
        if mode == Mode::ManyAvPairs {
            // Refused unparsed: its pairs would be echoed in our AUTHENTICATE.
            assert!(e.to_string().contains("more than the 8192"), "{e}");
        }
        assert_eq!(server.log(), ["NEGOTIATE"], "{mode:?}");
    }
}

/// A TLS listener whose certificate, issued by a CA the client trusts, names another host.
async fn tls_for_another_name() -> (u16, PathBuf, Arc<std::sync::atomic::AtomicUsize>) {
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "hostile test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["other.lab.test".to_string()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(cert.der().to_vec())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
    .unwrap();
    // One file per listener: tests in this process run at once.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let ca_path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("hostile-ca-{}-{n}.pem", std::process::id()));
    std::fs::write(&ca_path, ca.pem()).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = requests.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    use tokio::io::AsyncReadExt;
                    let mut b = [0u8; 1];
                    if matches!(tls.read(&mut b).await, Ok(n) if n > 0) {
                        seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                }
            });
        }
    });
    (port, ca_path, requests)
}

#[tokio::test]
async fn a_certificate_for_another_name_is_a_tls_error() {
    let (port, ca, requests) = tls_for_another_name().await;
    let mut cfg = config("localhost", port, Scheme::Https);
    cfg.tls.ca_file = Some(ca.clone());
    let e = guarded(
        "wrong name",
        Session::new(cfg).unwrap().run("hostname", &[], None),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, Error::Tls { .. }), "{e:?}");
    assert!(e.to_string().contains("not valid for name"), "{e}");
    assert_eq!(
        requests.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no HTTP byte over a channel to the wrong host"
    );
    let _ = std::fs::remove_file(&ca);
}

/// `trustsweep check`'s arguments, parsed as its command line would be.
#[derive(clap::Parser)]
struct CheckCommand {
    #[command(flatten)]
    args: trustsweep_cli::fleet::CheckArgs,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_among_hostile_hosts_gives_every_host_a_result_and_completes() {
    use clap::Parser as _;
    use lab::model::{Lab, LabSpec};
    use lab::wire::{RunningLab, WireOptions};

    let running = RunningLab::start(
        Lab::build(LabSpec::healthy(3, 16)).unwrap(),
        WireOptions::default(),
    )
    .await
    .unwrap();
    let mut target = RedirectTarget::bind();
    // Host name, behaviour, and what its report entry must say ("" for a timeout). Endless
    // output is left to the session test: at the default 64 MiB cap it would only burn
    // the host deadline here.
    let redirect = target.port();
    let cases = [
        (
            "hostile-redirect",
            Mode::Redirect(redirect),
            "HTTP 302 redirecting to",
        ),
        (
            "hostile-redirect-later",
            Mode::RedirectAfterLogon(redirect),
            "HTTP 307 redirecting to",
        ),
        ("hostile-tampered", Mode::TamperedSeal, "integrity check"),
        (
            "hostile-replayed",
            Mode::ReplayedSeal,
            "sequence number mismatch: expected 1, received 0",
        ),
        (
            "hostile-skipped",
            Mode::WrongSequence,
            "sequence number mismatch: expected 1, received 2",
        ),
        (
            "hostile-plaintext",
            Mode::PlaintextAfterLogon,
            "not SPNEGO-encrypted",
        ),
        (
            "hostile-html",
            Mode::HtmlError,
            "HTTP 500 (not a WS-Man fault)",
        ),
        ("hostile-reset", Mode::ResetMidBody, "HTTP error"),
        (
            "hostile-downgrade",
            Mode::DowngradeFlags,
            "does not agree to SEAL|128|KEY_EXCH",
        ),
        (
            "hostile-oversize",
            Mode::OversizeBody,
            "reply body larger than",
        ),
        (
            "hostile-chunked",
            Mode::OversizeChunked,
            "reply body larger than",
        ),
        ("hostile-head", Mode::OversizeHead, "reply head larger than"),
        (
            "hostile-av-pairs",
            Mode::AvPairPastEnd,
            "malformed NTLM CHALLENGE",
        ),
        (
            "hostile-target-info",
            Mode::TargetInfoPastEnd,
            "malformed NTLM CHALLENGE",
        ),
        (
            "hostile-many-pairs",
            Mode::ManyAvPairs,
            "more than the 8192",
        ),
        ("hostile-slowloris", Mode::Slowloris, ""),
        ("hostile-slow-body", Mode::SlowlorisBody, ""),
        ("hostile-never-done", Mode::NeverDone, ""),
    ];
    let mut servers = Vec::new();
    let mut inventory = running.inventory_yaml();
    inventory.push_str("    hostile:\n      hosts:\n");
    // HTTPS with a certificate for another name, from a CA the inventory trusts.
    let (tls_port, ca, tls_requests) = tls_for_another_name().await;
    inventory.push_str(&format!(
        "        hostile-tls-name:\n          ansible_host: localhost\n          ansible_port: {tls_port}\n          ansible_user: Administrator\n          ansible_password: \"{PASSWORD}\"\n          ansible_winrm_scheme: https\n          ansible_winrm_ca_trust_path: {}\n",
        ca.display()
    ));
    for (name, mode, _) in &cases {
        let server = Hostile::start(*mode).await;
        inventory.push_str(&format!(
            "        {name}:\n          ansible_host: 127.0.0.1\n          ansible_port: {}\n          ansible_user: Administrator\n          ansible_password: \"{PASSWORD}\"\n          ansible_winrm_operation_timeout_sec: 1\n          ansible_winrm_read_timeout_sec: 2\n",
            server.addr.port()
        ));
        servers.push(server);
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let inv = dir.join(format!("hostile-inventory-{}.yml", std::process::id()));
    let report = dir.join(format!("hostile-report-{}.json", std::process::id()));
    std::fs::write(&inv, inventory).unwrap();
    let cmd = CheckCommand::try_parse_from([
        "check".to_string(),
        "-i".into(),
        inv.display().to_string(),
        "--format".into(),
        "json".into(),
        "-o".into(),
        format!("json={}", report.display()),
        // Cuts the host whose command never finishes (and anything else that hangs).
        "--host-deadline".into(),
        "10".into(),
    ])
    .unwrap();
    let code = guarded("the sweep", trustsweep_cli::fleet::check(cmd.args)).await;
    assert_eq!(code, 3, "some hosts could not be checked");

    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let hosts = doc["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 4 + cases.len(), "every host has a result");
    let tls = &trustsweep_tests::report_host(&doc, "hostile-tls-name")["observation"]["access"];
    assert_eq!(tls["state"], "unreachable", "{tls}");
    assert!(
        tls["message"]
            .as_str()
            .is_some_and(|m| m.contains("not valid for name")),
        "{tls}"
    );
    assert_eq!(tls_requests.load(std::sync::atomic::Ordering::SeqCst), 0);
    for (name, _, says) in &cases {
        let access = &trustsweep_tests::report_host(&doc, name)["observation"]["access"];
        let state = access["state"].as_str().unwrap_or_default();
        match says {
            &"" => assert_eq!(state, "timeout", "{name}: {access}"),
            _ => {
                assert_eq!(state, "unreachable", "{name}: {access}");
                let message = access["message"].as_str().unwrap_or_default();
                assert!(message.contains(says), "{name}: {message}");
            }
        }
    }
    assert_eq!(doc["summary"]["healthy"], 3, "the lab hosts are unaffected");
    // No report or journal line carries a hostile host's password.
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(!text.contains(PASSWORD));
    winrm::session::finish_cleanup(Duration::from_secs(15)).await;
    assert_eq!(
        target.connections(),
        0,
        "nothing reaches a redirect's target"
    );
    let _ = std::fs::remove_file(&ca);
    let _ = std::fs::remove_file(&inv);
    let _ = std::fs::remove_file(&report);
}
