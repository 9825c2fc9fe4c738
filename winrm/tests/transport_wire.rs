//! The transport's first bytes and its errors against servers that are not WinRM: a raw
//! TCP listener on loopback records what the client sends and answers what a wrong port
//! would. NEGOTIATE goes first (no anonymous request), `Host` brackets an IPv6 literal,
//! and a 404 or a non-HTTP reply is `NotWinrm`, never `UnexpectedStatus { status: 0 }`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use winrm::session::{Session, SessionConfig};
use winrm::transport::{AuthMethod, Endpoint, Scheme};

/// Serves one connection: reads the request head, answers `reply`, returns the head.
async fn one_shot(bind: &str, reply: &'static [u8]) -> (u16, tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind(bind).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        s.write_all(reply).await.unwrap();
        s.shutdown().await.ok();
        String::from_utf8_lossy(&head).into_owned()
    });
    (port, task)
}

fn session(host: &str, port: u16) -> Session {
    let mut cfg = SessionConfig::new(
        Endpoint::new(host, Some(port), Scheme::Http),
        AuthMethod::Ntlm,
        "Administrator",
        winrm::secret::secret("pw"),
    );
    cfg.connect_timeout = Duration::from_secs(5);
    cfg.operation_timeout = Duration::from_secs(5);
    cfg.read_timeout = Duration::from_secs(10);
    Session::new(cfg).unwrap()
}

#[tokio::test]
async fn negotiate_goes_first_and_a_404_is_not_winrm() {
    let (port, head) = one_shot(
        "127.0.0.1:0",
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found",
    )
    .await;
    let e = session("127.0.0.1", port).connect().await.unwrap_err();
    let head = head.await.unwrap();
    // MS-NLMP NEGOTIATE, base64 of "NTLMSSP\0\x01": the very first request authenticates.
    assert!(
        head.to_ascii_lowercase()
            .contains("authorization: negotiate tlrmtvntuaab"),
        "first request: {head}"
    );
    assert!(e.is_not_winrm(), "{e:?}");
    assert!(
        matches!(
            e,
            winrm::Error::NotWinrm {
                status: Some(404),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        !e.to_string().contains("--"),
        "no CLI flags in library errors: {e}"
    );
}

#[tokio::test]
async fn a_service_that_is_not_http_is_not_winrm() {
    let (port, head) = one_shot("127.0.0.1:0", b"SSH-2.0-OpenSSH_9.6\r\n").await;
    let e = session("127.0.0.1", port).connect().await.unwrap_err();
    head.await.unwrap();
    assert!(e.is_not_winrm(), "{e:?}");
}

#[tokio::test]
async fn ipv6_literals_are_bracketed_in_host_and_url() {
    let Ok(probe) = TcpListener::bind("[::1]:0").await else {
        eprintln!("no IPv6 loopback here; skipped");
        return;
    };
    drop(probe);
    let (port, head) = one_shot(
        "[::1]:0",
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    let _ = session("::1", port).connect().await;
    let head = head.await.unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("host: [::1]:{port}\r\n")),
        "{head}"
    );
    assert_eq!(
        Endpoint::new("::1", None, Scheme::Https).url(),
        "https://[::1]:5986/wsman"
    );
}
