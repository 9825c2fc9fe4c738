//! The listener side of WinRM, as the lab's simulated Windows hosts serve it.
//!
//! It behaves on the wire the way a default Windows listener on port 5985 does, so that
//! independent clients (pywinrm, pypsrp) and ours see the same thing they would see on
//! Windows: `401` with `WWW-Authenticate: Negotiate` and `Kerberos` until NTLM completes
//! (raw NTLM tokens under `Negotiate` or `NTLM`), message encryption required
//! (`AllowUnencrypted=false`, MS-WSMV 2.2.9.1), faults in Windows' shape with HTTP 500,
//! `413` for envelopes above `MaxEnvelopeSizekb`, and long-polling Receives that end in an
//! `OperationTimeout` fault (MS-WSMV 3.1.4.14). The WinRS shell table (Create, Command,
//! Send, Receive, Signal, Delete) lives here too; what a command *does* is the
//! [`Backend`]'s business (the lab's model of a Windows host).
//!
//! The HTTPS listener ([`Server::serve_https`]) knows its own certificate, so it checks the
//! channel binding in NTLM AUTHENTICATE messages as [`ServerConfig::cbt_hardening`] says
//! (Windows' `CbtHardeningLevel`, Relaxed by default); a refusal is a plain 401.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, SERVER, WWW_AUTHENTICATE};
use hyper::{Request, Response as HttpResponse, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::encryption;
use crate::ntlm::{
    Acceptor, AwaitingAuthenticate, CbtHardening, ChannelBindings, ClaimedIdentity, NtlmError,
    ServerIdentity, SessionSecurity,
};
use crate::secret::Secret;
use crate::soap::{
    self, ParsedRequest, ReceiveOutput, Request as WsRequest, Response, ShellInfo, StreamChunk,
    WsmanFault,
};

/// What the backend decides about a user who claims an identity in NTLM AUTHENTICATE.
#[derive(Debug)]
pub enum Logon<P> {
    /// Verify the NTLM response against this password; on success the connection runs as
    /// `principal`.
    Verify {
        /// The account's password.
        password: Secret,
        /// Who the connection will be.
        principal: P,
    },
    /// Answer 401 (unknown account, or a domain account the host cannot verify).
    Reject,
}

/// The host identity a listener presents.
#[derive(Clone, Debug)]
pub struct HostIdentity {
    /// NTLM target information (NetBIOS and DNS names).
    pub ntlm: ServerIdentity,
    /// `Machine=` in faults (the host's DNS name).
    pub machine: String,
}

/// Output of a finished command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecOutput {
    /// stdout bytes.
    pub stdout: Vec<u8>,
    /// stderr bytes.
    pub stderr: Vec<u8>,
    /// Exit code.
    pub exit_code: i64,
}

/// How WinRS attaches a command's stdin: `WINRS_CONSOLEMODE_STDIN` on the Command
/// (MS-WSMV 3.1.4.11). An absent option is read as [`StdinMode::Console`]: MS-WSMV names no
/// default, and the console is the pessimistic side (DOMAIN.md "WinRM details").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StdinMode {
    /// TRUE (or absent): the process gets a console. What it reads of the Send data is
    /// undocumented; PowerShell's `$input` is modelled as empty (DOMAIN.md, inferred).
    Console,
    /// FALSE: stdin is a pipe carrying the Send data; PowerShell fills `$input` from it.
    Pipe,
}

impl StdinMode {
    /// The mode a Command's `console_mode_stdin` asks for.
    pub fn from_console_mode(console_mode_stdin: bool) -> Self {
        if console_mode_stdin {
            StdinMode::Console
        } else {
            StdinMode::Pipe
        }
    }
}

/// The host behind a listener: who may log on, and what commands do.
pub trait Backend: Send + Sync + 'static {
    /// The authenticated identity of a connection.
    type Principal: Clone + Send + Sync + fmt::Debug + 'static;

    /// The host served on `local`, or `None` to drop the connection (no such host / off).
    fn identity(&self, local: SocketAddr) -> Option<HostIdentity>;
    /// Decides how to verify a claimed identity.
    fn logon(&self, local: SocketAddr, claimed: &ClaimedIdentity) -> Logon<Self::Principal>;
    /// After authentication: may this principal use WinRM? `false` is answered with the
    /// Access Denied fault (e.g. UAC remote restrictions on a local administrator).
    fn authorize(&self, local: SocketAddr, who: &Self::Principal) -> bool;
    /// The name shown as the shell's `Owner`.
    fn principal_name(&self, who: &Self::Principal) -> String;
    /// Whether the program reads stdin (then it runs once stdin has ended).
    fn reads_stdin(&self, local: SocketAddr, command_line: &str) -> bool;
    /// Runs a command line (as `cmd.exe /c` would) with the stdin the client sent,
    /// attached as `stdin_mode` says, and returns its output.
    fn execute(
        &self,
        local: SocketAddr,
        who: Self::Principal,
        command_line: String,
        stdin: Vec<u8>,
        stdin_mode: StdinMode,
    ) -> impl Future<Output = ExecOutput> + Send + 'static;
    /// Simulated network round-trip time added to every reply of this host.
    fn latency(&self, _local: SocketAddr) -> Duration {
        Duration::ZERO
    }
    /// Simulated cost of opening a connection (the TCP handshake's round trip): an
    /// accepted connection is served only after it.
    fn connect_delay(&self, _local: SocketAddr) -> Duration {
        Duration::ZERO
    }
    /// Does the host accept connections and never answer (a wedged service)?
    fn hangs(&self, _local: SocketAddr) -> bool {
        false
    }
    /// Simulated server time of one parsed request (e.g. creating a shell), waited before
    /// it is dispatched.
    fn operation_time(&self, _local: SocketAddr, _request: &WsRequest) -> Duration {
        Duration::ZERO
    }
    /// Told of every step a listener sees on the wire (a TCP connection accepted, an HTTP
    /// request answered), for request logs in tests and benchmarks. Default: nothing.
    fn on_wire(&self, _local: SocketAddr, _step: WireStep) {}
}

/// One step a listener saw on the wire ([`Backend::on_wire`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WireStep {
    /// A TCP connection was accepted (the client paid one round trip for it).
    Connect {
        /// The connection's number (unique in the process).
        connection: u64,
        /// When.
        at: std::time::Instant,
    },
    /// An HTTP request was answered: one round trip.
    Request {
        /// The number of the connection it came on.
        connection: u64,
        /// When it arrived.
        at: std::time::Instant,
        /// The authentication leg its `Authorization` header carried, if any.
        auth: Option<AuthLeg>,
        /// The WS-Man `a:Action` of its body, when it had one that parsed (sealed or not).
        action: Option<String>,
        /// The HTTP status of the answer.
        status: u16,
    },
}

/// Numbers the accepted connections of every listener in the process ([`WireStep`]).
static NEXT_CONNECTION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Which authentication message an HTTP request carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthLeg {
    /// NTLM NEGOTIATE (MS-NLMP 2.2.1.1).
    Negotiate,
    /// NTLM AUTHENTICATE (MS-NLMP 2.2.1.3).
    Authenticate,
    /// HTTP Basic, or a token that is neither of the above.
    Other,
}

impl AuthLeg {
    /// Reads the leg from an `Authorization` header value: only the first bytes of an
    /// NTLM token are decoded (signature and `MessageType`, MS-NLMP 2.2.1).
    fn of_header(header: &str) -> AuthLeg {
        let mut parts = header.splitn(2, ' ');
        let scheme = parts.next().unwrap_or("");
        if !(scheme.eq_ignore_ascii_case("Negotiate") || scheme.eq_ignore_ascii_case("NTLM")) {
            return AuthLeg::Other;
        }
        let token = parts.next().unwrap_or("").trim();
        // 16 base64 characters are 12 bytes: the 8-byte signature and the u32 type.
        let head = token.get(..16).unwrap_or(token);
        let message_type = base64::engine::general_purpose::STANDARD
            .decode(head)
            .ok()
            .and_then(|b| b.get(8..12).and_then(|t| <[u8; 4]>::try_from(t).ok()))
            .map(u32::from_le_bytes);
        match message_type {
            Some(1) => AuthLeg::Negotiate,
            Some(3) => AuthLeg::Authenticate,
            _ => AuthLeg::Other,
        }
    }
}

/// Listener settings, named as in `winrm/config`.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// `MaxEnvelopeSizekb` (Windows default 500).
    pub max_envelope_size_kb: u32,
    /// `MaxTimeoutms`: the cap on a request's OperationTimeout (default 60000).
    pub max_timeout_ms: u64,
    /// `Winrs/MaxShellsPerUser` (default 30).
    pub max_shells_per_user: usize,
    /// `Service/Auth/Basic` (default false); honoured on TLS connections only.
    pub allow_basic: bool,
    /// `Service/Auth/CbtHardeningLevel` (default Relaxed): how NTLM channel bindings are
    /// checked on HTTPS listeners started with [`Server::serve_https`].
    pub cbt_hardening: CbtHardening,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_envelope_size_kb: 500,
            max_timeout_ms: 60_000,
            max_shells_per_user: 30,
            allow_basic: false,
            cbt_hardening: CbtHardening::Relaxed,
        }
    }
}

/// The TLS side of an HTTPS listener: the acceptor, and the channel binding of the
/// certificate it presents (RFC 5929 `tls-server-end-point`), which NTLM logons on it are
/// checked against.
#[derive(Clone)]
pub struct TlsListener {
    acceptor: tokio_rustls::TlsAcceptor,
    bindings: Option<ChannelBindings>,
}

impl fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsListener")
            .field("bindings", &self.bindings)
            .finish_non_exhaustive()
    }
}

/// Why a [`TlsListener`] could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsListenerError {
    /// The certificate chain is empty.
    #[error("no server certificate given")]
    NoCertificate,
    /// rustls refused the certificate or key.
    #[error("TLS server setup: {0}")]
    Tls(#[from] rustls::Error),
    /// The certificate has no `tls-server-end-point` hash or cannot be parsed.
    #[error("server certificate: {0}")]
    Certificate(#[from] NtlmError),
}

impl TlsListener {
    /// A listener presenting `chain` (leaf first) with its private key.
    pub fn new(
        chain: Vec<rustls_pki_types::CertificateDer<'static>>,
        key: rustls_pki_types::PrivateKeyDer<'static>,
    ) -> Result<Self, TlsListenerError> {
        let leaf = chain.first().ok_or(TlsListenerError::NoCertificate)?;
        let bindings = ChannelBindings::tls_server_end_point(leaf)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        Ok(TlsListener {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            bindings: Some(bindings),
        })
    }

    /// A listener around a ready acceptor whose certificate is unknown here: channel
    /// bindings are not checked on it, whatever the hardening level.
    pub fn from_acceptor(acceptor: tokio_rustls::TlsAcceptor) -> Self {
        TlsListener {
            acceptor,
            bindings: None,
        }
    }

    /// The channel binding of the listener's certificate, when known.
    pub fn channel_bindings(&self) -> Option<ChannelBindings> {
        self.bindings
    }
}

/// A WinRM server over one backend, able to serve many listeners (one per simulated host).
pub struct Server<B: Backend> {
    backend: Arc<B>,
    config: ServerConfig,
    shells: Mutex<ShellTable<B::Principal>>,
    /// Every command line started, in order (bounded), so tests can audit what clients send.
    command_log: Mutex<Vec<String>>,
}

/// How many command lines [`Server::command_log`] keeps.
pub const COMMAND_LOG_LIMIT: usize = 100_000;

impl<B: Backend> fmt::Debug for Server<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Open shells of every listener, keyed by (listener address, ShellId).
type ShellTable<P> = HashMap<(SocketAddr, String), Shell<P>>;

struct Shell<P> {
    owner: P,
    owner_name: String,
    commands: HashMap<String, Command>,
}

struct Command {
    command_line: String,
    stdin: Vec<u8>,
    stdin_mode: StdinMode,
    started: bool,
    result: watch::Receiver<Option<Arc<ExecOutput>>>,
    sender: Option<watch::Sender<Option<Arc<ExecOutput>>>>,
    /// Bytes of stdout/stderr already delivered.
    stdout_pos: usize,
    stderr_pos: usize,
    task: Option<tokio::task::JoinHandle<()>>,
}

enum ConnState {
    Fresh,
    Challenged(Box<AwaitingAuthenticate>),
    /// Authenticated; NTLM's session security when it is used for sealing (plain HTTP),
    /// `None` for Basic over TLS.
    Authenticated(Option<Box<SessionSecurity>>),
}

struct Conn<P> {
    state: ConnState,
    principal: Option<P>,
    scheme: &'static str,
    tls: bool,
    /// The binding of this TLS channel, when the listener knows its certificate.
    bindings: Option<ChannelBindings>,
}

impl<B: Backend> Server<B> {
    /// A server for `backend`.
    pub fn new(backend: Arc<B>, config: ServerConfig) -> Arc<Self> {
        Arc::new(Server {
            backend,
            config,
            shells: Mutex::new(HashMap::new()),
            command_log: Mutex::new(Vec::new()),
        })
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<B> {
        &self.backend
    }

    /// Accepts plain-HTTP connections on `listener` until the task is dropped/aborted.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        self.accept_loop(listener, None).await
    }

    /// Accepts HTTPS connections on `listener` (the 5986 listener): TLS protects the body,
    /// so SOAP travels unsealed, and Basic is accepted when [`ServerConfig::allow_basic`].
    /// The acceptor's certificate is unknown here, so channel bindings are not checked:
    /// use [`Server::serve_https`] for Extended Protection.
    pub async fn serve_tls(self: Arc<Self>, listener: TcpListener, tls: tokio_rustls::TlsAcceptor) {
        self.accept_loop(listener, Some(TlsListener::from_acceptor(tls)))
            .await
    }

    /// Like [`Server::serve_tls`], checking NTLM channel bindings against the listener's
    /// certificate as [`ServerConfig::cbt_hardening`] says.
    pub async fn serve_https(self: Arc<Self>, listener: TcpListener, tls: TlsListener) {
        self.accept_loop(listener, Some(tls)).await
    }

    async fn accept_loop(self: Arc<Self>, listener: TcpListener, tls: Option<TlsListener>) {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(error = %e, "accept failed");
                    // Out of file descriptors and the like: back off briefly, bounded.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let local = match stream.local_addr() {
                Ok(a) => a,
                Err(_) => continue,
            };
            if self.backend.identity(local).is_none() {
                drop(stream);
                continue;
            }
            if self.backend.hangs(local) {
                tokio::spawn(hold_silently(stream));
                continue;
            }
            let _ = stream.set_nodelay(true);
            let connection = NEXT_CONNECTION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.backend.on_wire(
                local,
                WireStep::Connect {
                    connection,
                    at: std::time::Instant::now(),
                },
            );
            let server = self.clone();
            let tls = tls.clone();
            let delay = self.backend.connect_delay(local);
            tokio::spawn(async move {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                match tls {
                    None => {
                        server
                            .serve_connection(TokioIo::new(stream), local, connection, None)
                            .await
                    }
                    Some(tls) => match tls.acceptor.accept(stream).await {
                        Ok(s) => {
                            server
                                .serve_connection(
                                    TokioIo::new(s),
                                    local,
                                    connection,
                                    Some(tls.bindings),
                                )
                                .await
                        }
                        Err(e) => tracing::debug!(error = %e, "TLS handshake failed"),
                    },
                }
            });
        }
    }

    /// `tls`: `None` for plain HTTP, else the channel's binding when known.
    async fn serve_connection<I>(
        self: Arc<Self>,
        io: TokioIo<I>,
        local: SocketAddr,
        connection: u64,
        tls: Option<Option<ChannelBindings>>,
    ) where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let conn = Arc::new(tokio::sync::Mutex::new(Conn::<B::Principal> {
            state: ConnState::Fresh,
            principal: None,
            scheme: "Negotiate",
            tls: tls.is_some(),
            bindings: tls.flatten(),
        }));
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let server = self.clone();
            let conn = conn.clone();
            async move {
                let at = std::time::Instant::now();
                let auth = req
                    .headers()
                    .get(AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .map(AuthLeg::of_header);
                let mut action = None;
                let resp = server.handle_http(local, &conn, req, &mut action).await;
                let status = resp.status().as_u16();
                server.backend.on_wire(
                    local,
                    WireStep::Request {
                        connection,
                        at,
                        auth,
                        action,
                        status,
                    },
                );
                Ok::<_, std::convert::Infallible>(resp)
            }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .serve_connection(io, service)
            .await;
    }

    async fn handle_http(
        &self,
        local: SocketAddr,
        conn: &tokio::sync::Mutex<Conn<B::Principal>>,
        req: Request<Incoming>,
        action: &mut Option<String>,
    ) -> HttpResponse<Full<Bytes>> {
        let latency = self.backend.latency(local);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let Some(host) = self.backend.identity(local) else {
            // The host went down under an open connection (a reboot): HTTP.sys answers
            // 503 while no WinRM service is registered, and the connection ends.
            let mut resp = plain(StatusCode::SERVICE_UNAVAILABLE, "");
            resp.headers_mut()
                .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
            return resp;
        };
        let auth = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = match req.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return plain(StatusCode::BAD_REQUEST, ""),
        };
        let mut conn = conn.lock().await;

        if let Some(auth) = auth {
            match self.authenticate(local, &host, &mut conn, &auth) {
                AuthStep::Continue(resp) => return resp,
                AuthStep::Done => {
                    if body.is_empty() {
                        return plain(StatusCode::OK, "");
                    }
                }
            }
        }
        let allow_basic = conn.tls && self.config.allow_basic;
        let tls = conn.tls;
        let ConnState::Authenticated(security) = &mut conn.state else {
            return unauthorized(None, conn.scheme, allow_basic);
        };
        if body.is_empty() {
            return plain(StatusCode::OK, "");
        }
        let sealed_request = encryption::is_encrypted(&content_type);
        let plaintext = match (sealed_request, security.as_mut()) {
            (true, Some(security)) => match encryption::unseal_body(security, &content_type, &body)
            {
                Ok(p) => p,
                Err(e) => {
                    tracing::debug!(error = %e, "cannot unseal request; dropping context");
                    conn.state = ConnState::Fresh;
                    conn.principal = None;
                    return plain(StatusCode::BAD_REQUEST, "");
                }
            },
            (true, None) => return plain(StatusCode::BAD_REQUEST, ""),
            // TLS protects the body on HTTPS.
            (false, _) if tls => body.to_vec(),
            // AllowUnencrypted=false: a plaintext SOAP body over HTTP is refused.
            (false, _) => return unauthorized(None, conn.scheme, allow_basic),
        };
        let limit = (self.config.max_envelope_size_kb as usize).saturating_mul(1024);
        if plaintext.len() > limit {
            return plain(StatusCode::PAYLOAD_TOO_LARGE, "");
        }
        let Some(principal) = conn.principal.clone() else {
            return unauthorized(None, conn.scheme, allow_basic);
        };
        // Release the connection lock while a Receive long-polls? HTTP/1.1 is sequential
        // per connection, so holding it costs nothing.
        let (status, xml) = if !self.backend.authorize(local, &principal) {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                soap::build_fault(None, &WsmanFault::access_denied(&host.machine)),
            )
        } else {
            match soap::parse_request(&plaintext) {
                Err(e) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    soap::build_fault(
                        soap::peek_message_id(&plaintext).as_deref(),
                        &WsmanFault::from_request_error(&e, &host.machine),
                    ),
                ),
                Ok(parsed) => {
                    *action = Some(parsed.action.clone());
                    let message_id = parsed.message_id.clone();
                    let cost = self.backend.operation_time(local, &parsed.request);
                    if !cost.is_zero() {
                        tokio::time::sleep(cost).await;
                    }
                    match self.dispatch(local, &host, &principal, &parsed).await {
                        Ok((resp, shell)) => (
                            StatusCode::OK,
                            soap::build_response_for(&parsed, &resp, shell.as_ref()),
                        ),
                        Err(fault) => (
                            StatusCode::INTERNAL_SERVER_ERROR,
                            soap::build_fault(Some(&message_id), &fault),
                        ),
                    }
                }
            }
        };
        let mut resp = match (&mut conn.state, sealed_request) {
            (ConnState::Authenticated(Some(security)), true) => {
                let sealed = encryption::seal_body(security, xml.as_bytes());
                let mut resp = HttpResponse::new(Full::new(Bytes::from(sealed)));
                resp.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static(encryption::CONTENT_TYPE),
                );
                resp
            }
            (ConnState::Authenticated(_), false) => {
                let mut resp = HttpResponse::new(Full::new(Bytes::from(xml)));
                resp.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/soap+xml;charset=UTF-8"),
                );
                resp
            }
            _ => return unauthorized(None, conn.scheme, allow_basic),
        };
        *resp.status_mut() = status;
        resp.headers_mut()
            .insert(SERVER, HeaderValue::from_static("Microsoft-HTTPAPI/2.0"));
        resp
    }

    fn authenticate(
        &self,
        local: SocketAddr,
        host: &HostIdentity,
        conn: &mut Conn<B::Principal>,
        header: &str,
    ) -> AuthStep {
        let mut parts = header.splitn(2, ' ');
        let scheme_name = parts.next().unwrap_or("");
        let allow_basic = conn.tls && self.config.allow_basic;
        if scheme_name.eq_ignore_ascii_case("Basic") && allow_basic {
            return self.basic(local, conn, parts.next().unwrap_or(""));
        }
        let scheme: &'static str = if scheme_name.eq_ignore_ascii_case("Negotiate") {
            "Negotiate"
        } else if scheme_name.eq_ignore_ascii_case("NTLM") {
            "NTLM"
        } else {
            // Kerberos is offered but not implemented by this listener; Basic only over
            // TLS when enabled (Windows' default has Basic off).
            return AuthStep::Continue(unauthorized(None, conn.scheme, allow_basic));
        };
        conn.scheme = scheme;
        let Some(token) = parts.next().and_then(|t| {
            base64::engine::general_purpose::STANDARD
                .decode(t.trim())
                .ok()
        }) else {
            return AuthStep::Continue(plain(StatusCode::BAD_REQUEST, ""));
        };
        // MS-NLMP 2.2.1: MessageType is the u32 after the 8-byte signature.
        let message_type = token
            .get(8..12)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_le_bytes);
        let state = std::mem::replace(&mut conn.state, ConnState::Fresh);
        conn.principal = None;
        match (message_type, state) {
            (Some(1), _) => match Acceptor::new(host.ntlm.clone()).challenge(&token) {
                Ok((challenge, awaiting)) => {
                    conn.state = ConnState::Challenged(Box::new(awaiting));
                    AuthStep::Continue(unauthorized(Some(&challenge), scheme, allow_basic))
                }
                Err(e) => {
                    tracing::debug!(error = %e, "bad NTLM NEGOTIATE");
                    AuthStep::Continue(unauthorized(None, scheme, allow_basic))
                }
            },
            (Some(3), ConnState::Challenged(awaiting)) => {
                let claimed = match awaiting.claimed_identity(&token) {
                    Ok(c) => c,
                    Err(_) => return AuthStep::Continue(unauthorized(None, scheme, allow_basic)),
                };
                match self.backend.logon(local, &claimed) {
                    Logon::Reject => AuthStep::Continue(unauthorized(None, scheme, allow_basic)),
                    Logon::Verify {
                        password,
                        principal,
                    } => match self.bound(*awaiting, conn).accept(&token, &password) {
                        Ok(security) => {
                            conn.state = ConnState::Authenticated(Some(Box::new(security)));
                            conn.principal = Some(principal);
                            AuthStep::Done
                        }
                        Err(e) => {
                            tracing::debug!(user = %claimed.user, error = %e, "NTLM authentication failed");
                            AuthStep::Continue(unauthorized(None, scheme, allow_basic))
                        }
                    },
                }
            }
            _ => AuthStep::Continue(unauthorized(None, scheme, allow_basic)),
        }
    }

    /// The acceptor with the channel-binding check of this connection, if any: TLS with a
    /// known certificate (Extended Protection); plain HTTP has no channel to bind to.
    fn bound(
        &self,
        awaiting: AwaitingAuthenticate,
        conn: &Conn<B::Principal>,
    ) -> AwaitingAuthenticate {
        match conn.bindings {
            Some(cb) if conn.tls => awaiting.check_channel_bindings(self.config.cbt_hardening, cb),
            _ => awaiting,
        }
    }

    /// HTTP Basic over TLS: `user:password`, checked against the backend's password.
    fn basic(&self, local: SocketAddr, conn: &mut Conn<B::Principal>, token: &str) -> AuthStep {
        conn.state = ConnState::Fresh;
        conn.principal = None;
        let refused = || AuthStep::Continue(unauthorized(None, "Negotiate", true));
        let Some(decoded) = base64::engine::general_purpose::STANDARD
            .decode(token.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
        else {
            return refused();
        };
        let decoded = zeroize::Zeroizing::new(decoded);
        let Some((user_spec, password)) = decoded.split_once(':') else {
            return refused();
        };
        let (domain, user) = match user_spec.split_once('\\') {
            Some((d, u)) => (d.to_string(), u.to_string()),
            None => (String::new(), user_spec.to_string()),
        };
        let claimed = ClaimedIdentity {
            domain,
            user,
            workstation: String::new(),
        };
        match self.backend.logon(local, &claimed) {
            Logon::Verify {
                password: expected,
                principal,
            } => {
                use secrecy::ExposeSecret;
                if crate::ntlm::crypto::ct_eq(
                    expected.expose_secret().as_bytes(),
                    password.as_bytes(),
                ) {
                    conn.state = ConnState::Authenticated(None);
                    conn.principal = Some(principal);
                    AuthStep::Done
                } else {
                    refused()
                }
            }
            Logon::Reject => refused(),
        }
    }

    async fn dispatch(
        &self,
        local: SocketAddr,
        host: &HostIdentity,
        principal: &B::Principal,
        req: &ParsedRequest,
    ) -> Result<(Response, Option<ShellInfo>), WsmanFault> {
        let machine = host.machine.as_str();
        let op_timeout = req
            .operation_timeout
            .unwrap_or(Duration::from_secs(60))
            .min(Duration::from_millis(self.config.max_timeout_ms));
        let max_env = req
            .max_envelope_size
            .map(|v| v as usize)
            .unwrap_or(153_600)
            .min((self.config.max_envelope_size_kb as usize).saturating_mul(1024));
        match req.request.clone() {
            WsRequest::Create(_options) => {
                let owner_name = self.backend.principal_name(principal);
                let mut shells = self.lock_shells();
                let open = shells
                    .iter()
                    .filter(|((addr, _), s)| *addr == local && s.owner_name == owner_name)
                    .count();
                if open >= self.config.max_shells_per_user {
                    return Err(WsmanFault::quota_max_shells(
                        self.config.max_shells_per_user,
                        machine,
                    ));
                }
                let shell_id = uuid::Uuid::new_v4().to_string().to_uppercase();
                shells.insert(
                    (local, shell_id.clone()),
                    Shell {
                        owner: principal.clone(),
                        owner_name: owner_name.clone(),
                        commands: HashMap::new(),
                    },
                );
                let info = ShellInfo {
                    shell_id: shell_id.clone(),
                    owner: owner_name,
                    client_ip: "127.0.0.1".to_string(),
                    idle_timeout: "PT7200.000S".to_string(),
                };
                Ok((Response::Created { shell_id }, Some(info)))
            }
            WsRequest::Command {
                shell_id,
                command,
                arguments,
                console_mode_stdin,
                ..
            } => {
                let command_line = std::iter::once(command)
                    .chain(arguments)
                    .collect::<Vec<_>>()
                    .join(" ");
                {
                    let mut log = self.command_log.lock().unwrap_or_else(|p| p.into_inner());
                    if log.len() < COMMAND_LOG_LIMIT {
                        log.push(command_line.clone());
                    }
                }
                let reads_stdin = self.backend.reads_stdin(local, &command_line);
                let command_id = uuid::Uuid::new_v4().to_string().to_uppercase();
                let mut shells = self.lock_shells();
                let shell = shells
                    .get_mut(&(local, shell_id.clone()))
                    .ok_or_else(|| WsmanFault::shell_not_found(&shell_id, machine))?;
                let (tx, rx) = watch::channel(None);
                let mut cmd = Command {
                    command_line,
                    stdin: Vec::new(),
                    stdin_mode: StdinMode::from_console_mode(console_mode_stdin),
                    started: false,
                    result: rx,
                    sender: Some(tx),
                    stdout_pos: 0,
                    stderr_pos: 0,
                    task: None,
                };
                if !reads_stdin {
                    self.start(local, shell.owner.clone(), &mut cmd);
                }
                shell.commands.insert(command_id.clone(), cmd);
                Ok((Response::CommandStarted { command_id }, None))
            }
            WsRequest::Send {
                shell_id,
                command_id,
                data,
                end,
                ..
            } => {
                let mut shells = self.lock_shells();
                let shell = shells
                    .get_mut(&(local, shell_id.clone()))
                    .ok_or_else(|| WsmanFault::shell_not_found(&shell_id, machine))?;
                let owner = shell.owner.clone();
                let cmd = shell
                    .commands
                    .get_mut(&command_id)
                    .ok_or_else(|| WsmanFault::unknown_command_id(machine))?;
                if !cmd.started {
                    cmd.stdin.extend_from_slice(&data);
                    if end {
                        self.start(local, owner, cmd);
                    }
                }
                Ok((Response::Sent, None))
            }
            WsRequest::Receive {
                shell_id,
                command_id,
                ..
            } => {
                let Some(command_id) = command_id else {
                    return Err(WsmanFault::invalid_parameter_receive_without_command(
                        machine,
                    ));
                };
                let mut rx = {
                    let shells = self.lock_shells();
                    let shell = shells
                        .get(&(local, shell_id.clone()))
                        .ok_or_else(|| WsmanFault::shell_not_found(&shell_id, machine))?;
                    let cmd = shell
                        .commands
                        .get(&command_id)
                        .ok_or_else(|| WsmanFault::unknown_command_id(machine))?;
                    cmd.result.clone()
                };
                // Long poll: wait for the process, at most the OperationTimeout.
                let ready = tokio::time::timeout(op_timeout, rx.wait_for(|r| r.is_some())).await;
                let output = match ready {
                    Ok(Ok(r)) => r.clone(),
                    Ok(Err(_)) => None,
                    Err(_) => return Err(WsmanFault::operation_timed_out(machine)),
                };
                let Some(output) = output else {
                    return Err(WsmanFault::operation_timed_out(machine));
                };
                let mut shells = self.lock_shells();
                let shell = shells
                    .get_mut(&(local, shell_id.clone()))
                    .ok_or_else(|| WsmanFault::shell_not_found(&shell_id, machine))?;
                let cmd = shell
                    .commands
                    .get_mut(&command_id)
                    .ok_or_else(|| WsmanFault::unknown_command_id(machine))?;
                Ok((
                    Response::Received(next_chunks(cmd, &command_id, &output, max_env)),
                    None,
                ))
            }
            WsRequest::Signal {
                shell_id,
                command_id,
                ..
            } => {
                let mut shells = self.lock_shells();
                let shell = shells
                    .get_mut(&(local, shell_id.clone()))
                    .ok_or_else(|| WsmanFault::shell_not_found(&shell_id, machine))?;
                let cmd = shell
                    .commands
                    .remove(&command_id)
                    .ok_or_else(|| WsmanFault::unknown_command_id(machine))?;
                if let Some(task) = cmd.task {
                    task.abort();
                }
                Ok((Response::Signalled, None))
            }
            WsRequest::Delete { shell_id } => {
                let mut shells = self.lock_shells();
                let shell = shells
                    .remove(&(local, shell_id.clone()))
                    .ok_or_else(|| WsmanFault::shell_not_found(&shell_id, machine))?;
                for (_, cmd) in shell.commands {
                    if let Some(task) = cmd.task {
                        task.abort();
                    }
                }
                Ok((Response::Deleted, None))
            }
            WsRequest::GetConfig => Ok((
                Response::Config {
                    max_envelope_size_kb: self.config.max_envelope_size_kb,
                    max_timeout_ms: self.config.max_timeout_ms,
                },
                None,
            )),
        }
    }

    fn start(&self, local: SocketAddr, who: B::Principal, cmd: &mut Command) {
        cmd.started = true;
        let Some(tx) = cmd.sender.take() else { return };
        let fut = self.backend.execute(
            local,
            who,
            cmd.command_line.clone(),
            std::mem::take(&mut cmd.stdin),
            cmd.stdin_mode,
        );
        cmd.task = Some(tokio::spawn(async move {
            let out = fut.await;
            let _ = tx.send(Some(Arc::new(out)));
        }));
    }

    fn lock_shells(&self) -> std::sync::MutexGuard<'_, ShellTable<B::Principal>> {
        // A poisoned lock only means another request panicked mid-update; the table is
        // still usable for a simulator.
        self.shells.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every command line clients started (up to [`COMMAND_LOG_LIMIT`]), for audits in tests.
    pub fn command_log(&self) -> Vec<String> {
        self.command_log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Number of open shells on all listeners (for tests).
    pub fn open_shells(&self) -> usize {
        self.lock_shells().len()
    }
}

/// Output longer than this (bytes of stdout) is delivered in two Receives, the first with
/// `CommandState/Running`.
pub const STREAMED_OUTPUT: usize = 4096;

/// The next Receive response for a finished command: as much output as fits the client's
/// MaxEnvelopeSize, `End` markers and `CommandState/Done` with the exit code once
/// everything was delivered.
fn next_chunks(
    cmd: &mut Command,
    command_id: &str,
    out: &ExecOutput,
    max_env: usize,
) -> ReceiveOutput {
    // Leave room for the envelope itself; base64 grows data by 4/3.
    let mut budget = max_env.saturating_sub(4096) / 4 * 3;
    let budget_floor = 1024;
    if budget < budget_floor {
        budget = budget_floor;
    }
    // A long command's output arrives while it runs: Windows answers a Receive with what
    // is there so far and `CommandState/Running` (pypsrp's recorded
    // `receive_response_running.xml`; MS-WSMV 3.1.4.14). The simulated commands finish at
    // once, so a long output (over [`STREAMED_OUTPUT`]) is handed out the same way: its
    // first half (to a line end) with `Running`, the rest on the next Receive.
    if cmd.stdout_pos == 0 && cmd.stderr_pos == 0 && out.stdout.len() > STREAMED_OUTPUT {
        let half = out.stdout.len() / 2;
        let cut = out
            .stdout
            .get(half..)
            .and_then(|t| t.iter().position(|b| *b == b'\n'))
            .map_or(half, |i| half + i + 1);
        budget = budget.min(cut);
    }
    let mut chunks = Vec::new();
    for (name, data, pos) in [
        ("stdout", &out.stdout, &mut cmd.stdout_pos),
        ("stderr", &out.stderr, &mut cmd.stderr_pos),
    ] {
        let remaining = data.get(*pos..).unwrap_or(&[]);
        if remaining.is_empty() {
            continue;
        }
        let take = remaining.len().min(budget);
        if take == 0 {
            continue;
        }
        chunks.push(StreamChunk {
            stream: name.to_string(),
            command_id: Some(command_id.to_string()),
            data: remaining.get(..take).unwrap_or(&[]).to_vec(),
            end: false,
        });
        *pos += take;
        budget -= take;
    }
    let done = cmd.stdout_pos >= out.stdout.len() && cmd.stderr_pos >= out.stderr.len();
    if done {
        for name in ["stdout", "stderr"] {
            chunks.push(StreamChunk {
                stream: name.to_string(),
                command_id: Some(command_id.to_string()),
                data: Vec::new(),
                end: true,
            });
        }
    }
    ReceiveOutput {
        chunks,
        state: Some(soap::CommandState {
            command_id: command_id.to_string(),
            done,
            exit_code: done.then_some(out.exit_code),
        }),
    }
}

enum AuthStep {
    /// Answer this now (a challenge or a refusal).
    Continue(HttpResponse<Full<Bytes>>),
    /// Authenticated; go on with the request body.
    Done,
}

/// A hung host's connection: accepted, read and discarded until the client closes it,
/// never answered.
async fn hold_silently(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

fn plain(status: StatusCode, body: &'static str) -> HttpResponse<Full<Bytes>> {
    let mut resp = HttpResponse::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(SERVER, HeaderValue::from_static("Microsoft-HTTPAPI/2.0"));
    resp
}

/// 401 as Windows sends it: with a CHALLENGE token, or offering `Negotiate` and
/// `Kerberos` (and `Basic realm="WSMAN"` where Basic is enabled).
fn unauthorized(challenge: Option<&[u8]>, scheme: &str, basic: bool) -> HttpResponse<Full<Bytes>> {
    let mut resp = plain(StatusCode::UNAUTHORIZED, "");
    let headers = resp.headers_mut();
    match challenge {
        Some(token) => {
            let value = format!(
                "{scheme} {}",
                base64::engine::general_purpose::STANDARD.encode(token)
            );
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(WWW_AUTHENTICATE, v);
            }
        }
        None => {
            headers.append(WWW_AUTHENTICATE, HeaderValue::from_static("Negotiate"));
            headers.append(WWW_AUTHENTICATE, HeaderValue::from_static("Kerberos"));
            if basic {
                headers.append(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"WSMAN\""),
                );
            }
        }
    }
    resp
}
