//! A WinRM server that misbehaves on purpose (issue 16), for `hostile_servers.rs`.
//!
//! It speaks HTTP/1.1 by hand on a loopback TCP listener, so that it can misbehave at the
//! byte level, and uses `winrm`'s NTLM acceptor and sealing to get a client through a real
//! authentication before it misbehaves. Honest, it answers like the lab: one shell, one
//! command that prints `ok` and exits 0. Each [`Mode`] breaks one thing. Every loop in it
//! is bounded (bytes to write, requests per connection); a slow write is a server being
//! slow on purpose, never a wait for readiness.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    dead_code
)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use winrm::encryption;
use winrm::ntlm::{
    Acceptor, AwaitingAuthenticate, NegotiateFlags, ServerIdentity, SessionSecurity,
};
use winrm::secret::secret;
use winrm::soap::{
    self, build_fault, build_response, CommandState, ReceiveOutput, Request, Response, StreamChunk,
    WsmanFault,
};

/// The administrator password the hostile server accepts (a test value, never real).
pub const PASSWORD: &str = "H0stile!Adm1n";
/// The shell and command ids it hands out.
pub const SHELL_ID: &str = "11111111-2222-3333-4444-555555555555";
/// The command id of every command.
pub const COMMAND_ID: &str = "66666666-7777-8888-9999-000000000000";

/// What the server breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Nothing: a working WinRM listener.
    Honest,
    /// Every reply, from the first 401 on, one byte every 20 ms (slowloris).
    Slowloris,
    /// The head of the Create's reply at once, its body one byte every 20 ms.
    SlowlorisBody,
    /// Every Receive: the command is still Running, no output, no `Done` ever.
    NeverDone,
    /// Every Receive: 64 KiB more stdout, still Running.
    EndlessOutput,
    /// The Create's reply announces and sends 64 MiB.
    OversizeBody,
    /// The Create's reply is chunked and never ends (up to 64 MiB).
    OversizeChunked,
    /// The 401 to NEGOTIATE carries 200 KB of headers.
    OversizeHead,
    /// A byte of the Create's sealed reply is flipped.
    TamperedSeal,
    /// The Command is answered with the Create's sealed reply again (sequence 0 replayed).
    ReplayedSeal,
    /// The Command's reply skips a sequence number (2 where 1 is due).
    WrongSequence,
    /// NEGOTIATE is answered with a 302 to the given port on loopback.
    Redirect(u16),
    /// The Create (after logon) is answered with a 307 to the given port on loopback.
    RedirectAfterLogon(u16),
    /// The Create is answered with an ASP.NET-style HTML 500 page, in clear.
    HtmlError,
    /// The Create is answered with a well-formed CreateResponse, in clear (unsealed).
    PlaintextAfterLogon,
    /// The Create's reply announces 4000 bytes, sends 100, then resets the connection.
    ResetMidBody,
    /// The CHALLENGE drops NTLMSSP_NEGOTIATE_SEAL, _128 and _KEY_EXCH.
    DowngradeFlags,
    /// The first TargetInfo AV pair claims a length past the end of the message.
    AvPairPastEnd,
    /// TargetInfoFields point past the end of the message.
    TargetInfoPastEnd,
    /// TargetInfo holds 10,000 AV pairs.
    ManyAvPairs,
    /// A body on the AUTHENTICATE is ignored and answered 200 with no body: the server
    /// wants MS-WSMV 2.2.9.1's empty-body AUTHENTICATE first (not hostile: a legitimate
    /// server the client must fall back for).
    AuthenticateOnly,
}

/// A running hostile server.
pub struct Hostile {
    /// Where it listens.
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    connections: Arc<AtomicUsize>,
}

impl Hostile {
    /// Starts a server in `mode` on 127.0.0.1 (an ephemeral port).
    pub async fn start(mode: Mode) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (l, c) = (log.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let l = l.clone();
                tokio::spawn(async move {
                    serve(stream, mode, l).await;
                });
            }
        });
        Hostile {
            addr,
            log,
            connections,
        }
    }

    /// What it received, in order: `NEGOTIATE`, `AUTHENTICATE`, operations by name
    /// (`Create`, `Command`, `Receive`, `Signal <code>`, `Delete`), `unauthenticated body`.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// How many TCP connections it accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// A listener that never answers and only counts the connections made to it: the host a
/// redirect names. Counting accepts every connection already in its accept queue without
/// waiting: a client's `connect` returns only once the kernel queued the connection, so
/// after the client is done, the count is final.
pub struct RedirectTarget {
    listener: std::net::TcpListener,
    seen: usize,
}

impl RedirectTarget {
    /// Binds 127.0.0.1 on an ephemeral port.
    pub fn bind() -> RedirectTarget {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        RedirectTarget { listener, seen: 0 }
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().unwrap().port()
    }

    /// Connections made to it so far (bounded: at most 1024 queued are counted).
    pub fn connections(&mut self) -> usize {
        for _ in 0..1024 {
            match self.listener.accept() {
                Ok(_) => self.seen += 1,
                Err(_) => break,
            }
        }
        self.seen
    }
}

fn identity() -> ServerIdentity {
    ServerIdentity {
        nb_domain: "LAB".into(),
        nb_computer: "HOSTILE".into(),
        dns_domain: "lab.test".into(),
        dns_computer: "hostile.lab.test".into(),
    }
}

/// One parsed request.
struct HttpRequest {
    head: String,
    body: Vec<u8>,
}

impl HttpRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Reads one request (head at most 64 KiB, body at most 4 MiB); `None` when the client
/// closed or sent something else.
async fn read_request<S: AsyncRead + Unpin>(s: &mut S, buf: &mut Vec<u8>) -> Option<HttpRequest> {
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut req = HttpRequest {
        head,
        body: Vec::new(),
    };
    let len: usize = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if len > 4 * 1024 * 1024 {
        return None;
    }
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    req.body = buf[head_end..head_end + len].to_vec();
    buf.drain(..head_end + len);
    Some(req)
}

/// An HTTP/1.1 response with `Content-Length`.
fn response(status: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\nServer: Microsoft-HTTPAPI/2.0\r\n");
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Writes `bytes` one byte every 20 ms (bounded by their length; stops when the client
/// hangs up).
async fn trickle<S: AsyncWrite + Unpin>(s: &mut S, bytes: &[u8]) -> bool {
    for b in bytes {
        if s.write_all(&[*b]).await.is_err() || s.flush().await.is_err() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// Writes up to 64 MiB of zeros in 64 KiB pieces, chunk-encoded or not; stops when the
/// client hangs up.
async fn flood<S: AsyncWrite + Unpin>(s: &mut S, chunked: bool) {
    let piece = vec![0u8; 64 * 1024];
    for _ in 0..1024 {
        let ok = if chunked {
            let mut c = format!("{:x}\r\n", piece.len()).into_bytes();
            c.extend_from_slice(&piece);
            c.extend_from_slice(b"\r\n");
            s.write_all(&c).await.is_ok()
        } else {
            s.write_all(&piece).await.is_ok()
        };
        if !ok {
            return;
        }
    }
}

struct Conn {
    awaiting: Option<AwaitingAuthenticate>,
    security: Option<SessionSecurity>,
    /// The last sealed body sent (for [`Mode::ReplayedSeal`]).
    last_sealed: Option<Vec<u8>>,
}

/// Serves one connection: at most 10,000 requests.
async fn serve(mut stream: TcpStream, mode: Mode, log: Arc<Mutex<Vec<String>>>) {
    let mut buf = Vec::new();
    let mut conn = Conn {
        awaiting: None,
        security: None,
        last_sealed: None,
    };
    for _ in 0..10_000 {
        let Some(req) = read_request(&mut stream, &mut buf).await else {
            return;
        };
        let token = req.header("authorization").and_then(|v| {
            let (_, t) = v.split_once(' ')?;
            base64::engine::general_purpose::STANDARD
                .decode(t.trim())
                .ok()
        });
        let reply = match token {
            Some(t) if t.get(8) == Some(&1) => {
                log.lock().unwrap().push("NEGOTIATE".into());
                negotiate_reply(mode, &t, &mut conn)
            }
            Some(t) if t.get(8) == Some(&3) => {
                log.lock().unwrap().push("AUTHENTICATE".into());
                let Some(awaiting) = conn.awaiting.take() else {
                    return;
                };
                match awaiting.accept(&t, &secret(PASSWORD)) {
                    Ok(sec) => conn.security = Some(sec),
                    Err(_) => {
                        let r = response("401 Unauthorized", &[], b"");
                        if stream.write_all(&r).await.is_err() {
                            return;
                        }
                        continue;
                    }
                }
                if req.body.is_empty() {
                    Reply::Bytes(response("200 OK", &[], b""))
                } else if mode == Mode::AuthenticateOnly {
                    log.lock()
                        .unwrap()
                        .push("body on AUTHENTICATE ignored".into());
                    // The body is dropped unread: the client's sealing state counted a
                    // message this side never unsealed, so this connection cannot go on.
                    let _ = stream.write_all(&response("200 OK", &[], b"")).await;
                    return;
                } else {
                    sealed_reply(mode, &req, &mut conn, &log).await
                }
            }
            _ if conn.security.is_some() => sealed_reply(mode, &req, &mut conn, &log).await,
            _ => {
                if !req.body.is_empty() {
                    log.lock().unwrap().push("unauthenticated body".into());
                }
                Reply::Bytes(response(
                    "401 Unauthorized",
                    &[("WWW-Authenticate", "Negotiate".into())],
                    b"",
                ))
            }
        };
        if !deliver(&mut stream, mode, reply).await {
            return;
        }
    }
}

/// How a reply goes out.
enum Reply {
    /// As is (trickled in [`Mode::Slowloris`]).
    Bytes(Vec<u8>),
    /// The head at once, the body trickled.
    TrickleBody(Vec<u8>, Vec<u8>),
    /// A head, then a flood of zeros.
    Flood(Vec<u8>, bool),
    /// These bytes, then a TCP reset.
    Reset(Vec<u8>),
}

/// Sends a reply; false when the connection is over.
async fn deliver(stream: &mut TcpStream, mode: Mode, reply: Reply) -> bool {
    match reply {
        Reply::Bytes(b) if mode == Mode::Slowloris => trickle(stream, &b).await,
        Reply::Bytes(b) => stream.write_all(&b).await.is_ok(),
        Reply::TrickleBody(head, body) => {
            stream.write_all(&head).await.is_ok() && trickle(stream, &body).await
        }
        Reply::Flood(head, chunked) => {
            if stream.write_all(&head).await.is_ok() {
                flood(stream, chunked).await;
            }
            false
        }
        Reply::Reset(b) => {
            let _ = stream.write_all(&b).await;
            let _ = stream.flush().await;
            // SO_LINGER 0: close() sends RST instead of FIN (and, with a zero linger, the
            // drop does not block, which is what the deprecation warns of).
            #[allow(deprecated)]
            let _ = stream.set_linger(Some(Duration::ZERO));
            false
        }
    }
}

fn negotiate_reply(mode: Mode, negotiate: &[u8], conn: &mut Conn) -> Reply {
    match mode {
        Mode::Redirect(port) => {
            return Reply::Bytes(response(
                "302 Found",
                &[
                    ("Location", format!("http://127.0.0.1:{port}/wsman")),
                    ("Content-Type", "text/html".into()),
                ],
                b"<html><body>Moved</body></html>",
            ))
        }
        Mode::OversizeHead => {
            let mut head = String::from("HTTP/1.1 401 Unauthorized\r\n");
            // Few headers (under any count limit) but 200 KB of them: under hyper's own
            // default buffer (about 400 KiB), over the client's head limit.
            for i in 0..4 {
                head.push_str(&format!("X-Filler-{i}: {}\r\n", "a".repeat(50_000)));
            }
            head.push_str("Content-Length: 0\r\n\r\n");
            return Reply::Bytes(head.into_bytes());
        }
        _ => {}
    }
    let (mut challenge, awaiting) = Acceptor::new(identity()).challenge(negotiate).unwrap();
    conn.awaiting = Some(awaiting);
    let info_offset =
        usize::try_from(u32::from_le_bytes(challenge[44..48].try_into().unwrap())).unwrap();
    match mode {
        Mode::DowngradeFlags => {
            let flags = u32::from_le_bytes(challenge[20..24].try_into().unwrap());
            let dropped = NegotiateFlags::SEAL.0
                | NegotiateFlags::NEGOTIATE_128.0
                | NegotiateFlags::KEY_EXCH.0;
            challenge[20..24].copy_from_slice(&(flags & !dropped).to_le_bytes());
        }
        Mode::AvPairPastEnd => {
            challenge[info_offset + 2..info_offset + 4].copy_from_slice(&0xfff0u16.to_le_bytes());
        }
        Mode::TargetInfoPastEnd => {
            challenge[44..48].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
        }
        Mode::ManyAvPairs => {
            // The fixed part as sent, then an empty TargetName and 10,000 pairs (each an
            // empty MsvAvNbComputerName) and MsvAvEOL.
            let mut m = challenge[..56].to_vec();
            m[12..14].copy_from_slice(&0u16.to_le_bytes());
            m[14..16].copy_from_slice(&0u16.to_le_bytes());
            m[16..20].copy_from_slice(&56u32.to_le_bytes());
            let mut info = Vec::with_capacity(40_004);
            for _ in 0..10_000 {
                info.extend_from_slice(&[1, 0, 0, 0]);
            }
            info.extend_from_slice(&[0, 0, 0, 0]);
            let len = u16::try_from(info.len()).unwrap();
            m[40..42].copy_from_slice(&len.to_le_bytes());
            m[42..44].copy_from_slice(&len.to_le_bytes());
            m[44..48].copy_from_slice(&56u32.to_le_bytes());
            m.extend_from_slice(&info);
            challenge = m;
        }
        _ => {}
    }
    let token = base64::engine::general_purpose::STANDARD.encode(&challenge);
    Reply::Bytes(response(
        "401 Unauthorized",
        &[("WWW-Authenticate", format!("Negotiate {token}"))],
        b"",
    ))
}

fn sealed(sec: &mut SessionSecurity, xml: &str) -> Vec<u8> {
    encryption::seal_body(sec, xml.as_bytes())
}

fn sealed_response(status: &str, body: &[u8]) -> Vec<u8> {
    response(
        status,
        &[("Content-Type", encryption::CONTENT_TYPE.to_string())],
        body,
    )
}

async fn sealed_reply(
    mode: Mode,
    req: &HttpRequest,
    conn: &mut Conn,
    log: &Arc<Mutex<Vec<String>>>,
) -> Reply {
    let content_type = req.header("content-type").unwrap_or("").to_string();
    let Some(sec) = conn.security.as_mut() else {
        return Reply::Bytes(response("401 Unauthorized", &[], b""));
    };
    let Ok(plain) = encryption::unseal_body(sec, &content_type, &req.body) else {
        return Reply::Bytes(response("400 Bad Request", &[], b""));
    };
    let Ok(parsed) = soap::parse_request(&plain) else {
        return Reply::Bytes(response("400 Bad Request", &[], b""));
    };
    let id = parsed.message_id.clone();
    let name = match &parsed.request {
        Request::Create(_) => "Create".to_string(),
        Request::Command { .. } => "Command".into(),
        Request::Receive { .. } => "Receive".into(),
        Request::Send { .. } => "Send".into(),
        Request::Signal { code, .. } => {
            format!("Signal {}", code.rsplit('/').next().unwrap_or(code))
        }
        Request::Delete { .. } => "Delete".into(),
        _ => "other".into(),
    };
    log.lock().unwrap().push(name.clone());
    let ok = |resp: Response| build_response(&id, &resp, None);
    match (name.as_str(), mode) {
        ("Create", Mode::HtmlError) => {
            return Reply::Bytes(response(
                "500 Internal Server Error",
                &[("Content-Type", "text/html; charset=utf-8".into())],
                b"<!DOCTYPE html>\r\n<html><head><title>Runtime Error</title></head>\r\n<body><h1>Server Error in '/' Application.</h1>\r\n<p>An unhandled exception occurred.</p></body></html>",
            ))
        }
        ("Create", Mode::RedirectAfterLogon(port)) => {
            return Reply::Bytes(response(
                "307 Temporary Redirect",
                &[("Location", format!("http://127.0.0.1:{port}/wsman"))],
                b"",
            ))
        }
        ("Create", Mode::ResetMidBody) => {
            let mut b = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: 4000\r\n\r\n",
                encryption::CONTENT_TYPE
            )
            .into_bytes();
            b.extend_from_slice(&[b'x'; 100]);
            return Reply::Reset(b);
        }
        ("Create", Mode::OversizeBody) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\n\r\n",
                encryption::CONTENT_TYPE,
                64 * 1024 * 1024
            );
            return Reply::Flood(head.into_bytes(), false);
        }
        ("Create", Mode::OversizeChunked) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nTransfer-Encoding: chunked\r\n\r\n",
                encryption::CONTENT_TYPE
            );
            return Reply::Flood(head.into_bytes(), true);
        }
        ("Create", Mode::PlaintextAfterLogon) => {
            let xml = ok(Response::Created {
                shell_id: SHELL_ID.into(),
            });
            return Reply::Bytes(response(
                "200 OK",
                &[("Content-Type", "application/soap+xml;charset=UTF-8".into())],
                xml.as_bytes(),
            ));
        }
        ("Command", Mode::ReplayedSeal) => {
            let old = conn.last_sealed.clone().unwrap_or_default();
            return Reply::Bytes(sealed_response("200 OK", &old));
        }
        ("Command", Mode::WrongSequence) => {
            // A message the client never sees: the next one carries sequence number 2.
            let _ = sec.wrap(b"lost on the way");
        }
        ("Receive", Mode::NeverDone) => {
            // The long poll of a command that never ends, shortened.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        _ => {}
    }
    let xml = match name.as_str() {
        "Create" => ok(Response::Created {
            shell_id: SHELL_ID.into(),
        }),
        "Command" => ok(Response::CommandStarted {
            command_id: COMMAND_ID.into(),
        }),
        "Receive" => {
            let (data, done) = match mode {
                Mode::NeverDone => (Vec::new(), false),
                Mode::EndlessOutput => (vec![b'y'; 64 * 1024], false),
                _ => (b"ok\r\n".to_vec(), true),
            };
            ok(Response::Received(ReceiveOutput {
                chunks: vec![StreamChunk {
                    stream: "stdout".into(),
                    command_id: Some(COMMAND_ID.into()),
                    data,
                    end: done,
                }],
                state: Some(CommandState {
                    command_id: COMMAND_ID.into(),
                    done,
                    exit_code: done.then_some(0),
                }),
            }))
        }
        "Send" => ok(Response::Sent),
        n if n.starts_with("Signal") => ok(Response::Signalled),
        "Delete" => ok(Response::Deleted),
        _ => build_fault(Some(&id), &WsmanFault::action_not_supported("hostile")),
    };
    let status = if name == "other" {
        "500 Internal Server Error"
    } else {
        "200 OK"
    };
    let mut body = sealed(sec, &xml);
    conn.last_sealed = Some(body.clone());
    match (name.as_str(), mode) {
        ("Create", Mode::TamperedSeal) => {
            // The last byte of the sealed envelope, just before the closing boundary.
            let tail = format!("--{}--\r\n", encryption::BOUNDARY).len();
            let at = body.len() - tail - 1;
            body[at] ^= 0x01;
        }
        ("Create", Mode::SlowlorisBody) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\n\r\n",
                encryption::CONTENT_TYPE,
                body.len()
            );
            return Reply::TrickleBody(head.into_bytes(), body);
        }
        _ => {}
    }
    Reply::Bytes(sealed_response(status, &body))
}
