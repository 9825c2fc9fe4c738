//! HTTPS (the 5986 listener): certificates verified by default against the system roots
//! plus `--ca-file`, a visibly dangerous opt-out, NTLM and Basic over TLS — our client
//! against our listener with a throwaway CA generated here.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use winrm::ntlm::{ClaimedIdentity, ServerIdentity};
use winrm::secret::secret;
use winrm::server::{Backend, ExecOutput, HostIdentity, Logon, Server, ServerConfig, StdinMode};
use winrm::session::{Session, SessionConfig};
use winrm::transport::{AuthMethod, Endpoint, Scheme};

const PW: &str = "Tls!Adm1n";

#[derive(Debug)]
struct Echo;

impl Backend for Echo {
    type Principal = String;
    fn identity(&self, _: SocketAddr) -> Option<HostIdentity> {
        Some(HostIdentity {
            ntlm: ServerIdentity {
                nb_domain: "LAB".into(),
                nb_computer: "WS0001".into(),
                dns_domain: "lab.test".into(),
                dns_computer: "localhost".into(),
            },
            machine: "localhost".into(),
        })
    }
    fn logon(&self, _: SocketAddr, c: &ClaimedIdentity) -> Logon<String> {
        if c.user.eq_ignore_ascii_case("administrator") {
            Logon::Verify {
                password: secret(PW),
                principal: "ws0001\\administrator".into(),
            }
        } else {
            Logon::Reject
        }
    }
    fn authorize(&self, _: SocketAddr, _: &String) -> bool {
        true
    }
    fn principal_name(&self, who: &String) -> String {
        who.clone()
    }
    fn reads_stdin(&self, _: SocketAddr, _: &str) -> bool {
        false
    }
    #[allow(clippy::manual_async_fn)]
    fn execute(
        &self,
        _: SocketAddr,
        who: String,
        cl: String,
        _: Vec<u8>,
        _: StdinMode,
    ) -> impl std::future::Future<Output = ExecOutput> + Send + 'static {
        async move {
            ExecOutput {
                stdout: format!("{who}: {cl}\r\n").into_bytes(),
                stderr: vec![],
                exit_code: 0,
            }
        }
    }
}

/// A CA and a server certificate for localhost/127.0.0.1; returns the TLS acceptor and the
/// CA's PEM file.
fn pki(name: &str) -> (tokio_rustls::TlsAcceptor, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "trustsweep test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    let ca_path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("tls-ca-{name}-{}.pem", std::process::id()));
    std::fs::write(&ca_path, ca.pem()).unwrap();
    (tokio_rustls::TlsAcceptor::from(Arc::new(config)), ca_path)
}

async fn start(name: &str) -> (SocketAddr, PathBuf) {
    let (acceptor, ca) = pki(name);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new(
        Arc::new(Echo),
        ServerConfig {
            allow_basic: true,
            ..ServerConfig::default()
        },
    );
    tokio::spawn(server.serve_tls(listener, acceptor));
    (addr, ca)
}

fn cfg(addr: SocketAddr, host: &str, auth: AuthMethod, pw: &str) -> SessionConfig {
    let mut c = SessionConfig::new(
        Endpoint::new(host, Some(addr.port()), Scheme::Https),
        auth,
        "Administrator",
        secret(pw),
    );
    c.operation_timeout = Duration::from_secs(2);
    c.read_timeout = Duration::from_secs(10);
    c
}

#[tokio::test]
async fn ntlm_and_basic_over_verified_tls() {
    let (addr, ca) = start("ok").await;
    for (host, auth) in [
        ("localhost", AuthMethod::Ntlm),
        ("127.0.0.1", AuthMethod::Basic),
    ] {
        let mut c = cfg(addr, host, auth, PW);
        c.tls.ca_file = Some(ca.clone());
        let mut s = Session::new(c).unwrap();
        let out = s.run("hostname", &[], None).await.unwrap();
        assert_eq!(
            out.stdout_text(),
            "ws0001\\administrator: hostname\r\n",
            "{auth:?}"
        );
        assert_eq!(s.connects(), 1);
    }
    let mut c = cfg(addr, "localhost", AuthMethod::Basic, "wrong");
    c.tls.ca_file = Some(ca);
    let e = Session::new(c)
        .unwrap()
        .run("hostname", &[], None)
        .await
        .unwrap_err();
    assert!(e.is_unauthorized(), "{e}");
}

#[tokio::test]
async fn untrusted_certificate_is_refused_unless_dangerously_skipped() {
    let (addr, _ca) = start("untrusted").await;
    let e = Session::new(cfg(addr, "localhost", AuthMethod::Ntlm, PW))
        .unwrap()
        .run("hostname", &[], None)
        .await
        .unwrap_err();
    assert!(matches!(e, winrm::Error::Tls { .. }), "{e}");
    // What to check, in the library's terms: naming CLI flags is the CLI's job.
    assert!(
        e.to_string().contains("CA trusted") && !e.to_string().contains("--"),
        "the error says what to check: {e}"
    );
    let mut c = cfg(addr, "localhost", AuthMethod::Ntlm, PW);
    c.tls.dangerous_skip_verify = true;
    let out = Session::new(c)
        .unwrap()
        .run("hostname", &[], None)
        .await
        .unwrap();
    assert_eq!(out.exit_code, 0);
}

#[tokio::test]
async fn a_ca_file_without_certificates_is_a_config_error() {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("empty-ca-{}.pem", std::process::id()));
    std::fs::write(&path, "not a certificate\n").unwrap();
    let mut c = cfg(
        "127.0.0.1:5986".parse().unwrap(),
        "localhost",
        AuthMethod::Ntlm,
        PW,
    );
    c.tls.ca_file = Some(path.clone());
    let e = Session::new(c).unwrap_err();
    assert!(e.to_string().contains(path.to_str().unwrap()), "{e}");
}
