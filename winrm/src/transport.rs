//! The thin async transport under the sans-IO core: one HTTP/1.1 connection per host,
//! with the authentication context that belongs to it.
//!
//! NTLM authenticates a *connection*, not a request, and the RC4 sealing state and
//! sequence numbers of MS-NLMP 3.4 live as long as that connection. So a [`Transport`]
//! owns exactly one hyper connection (no pool that could silently swap sockets), runs the
//! handshake once on an empty-body POST (MS-WSMV 2.2.9.1; pywinrm and pypsrp do the same),
//! then seals every SOAP body with the context. If the connection drops, the context is
//! gone: the transport reconnects, re-authenticates, and carries on from sequence 0.
//! The first request of a connection rides on the AUTHENTICATE itself, sealed with the
//! context AUTHENTICATE completes (as Windows' own client does; MS-WSMV 2.2.9.1.1 has the
//! client send `Authorization` until the server answers 200): one round trip less per
//! connection. A server that authenticates without answering that body gets the
//! empty-body AUTHENTICATE from then on. A logon test ([`Transport::connect`]) sends no
//! body.
//!
//! A server is not trusted to behave (issue 16; `tests/tests/hostile_servers.rs`): each
//! exchange has one total deadline (the read timeout, from writing the request to the last
//! byte of the reply, so a server trickling bytes cannot stretch it); a reply's head must
//! fit in [`MAX_HEAD_BYTES`] and its body in the `MaxEnvelopeSize` we announced plus framing
//! ([`reply_limit`], MS-WSMV 3.1.4.1.7), and nothing past a limit is read; a redirect is an
//! error naming its target and is never followed; a sealed reply that fails its signature
//! or sequence check ends the connection as [`Error::Integrity`]; a CHALLENGE that does not
//! agree to sealing, or is larger than [`MAX_CHALLENGE_BYTES`], ends the handshake before
//! anything else is sent; an HTML error page is [`Error::ErrorPage`], quoted.
//!
//! Authentication is a seam ([`AuthMethod`]): NTLM (under whichever of `Negotiate`/`NTLM`
//! the server offers — Windows' default listener offers `Negotiate` and `Kerberos`, not
//! `NTLM`) and Basic (HTTPS only). Kerberos will slot in beside NTLM.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{
    HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST, WWW_AUTHENTICATE,
};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use secrecy::ExposeSecret;
use tokio::net::TcpStream;
use zeroize::Zeroizing;

use crate::encryption;
use crate::error::Error;
use crate::ntlm::{Credentials, Initiator, NtlmError, SessionSecurity};
use crate::secret::Secret;
use crate::soap::SoapError;

/// Content type of an unencrypted SOAP body.
pub const SOAP_CONTENT_TYPE: &str = "application/soap+xml;charset=UTF-8";

/// HTTP or HTTPS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP (default port 5985); message encryption is mandatory.
    Http,
    /// HTTPS (default port 5986); certificates are verified.
    Https,
}

impl Scheme {
    /// Windows' default listener port for the scheme.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 5985,
            Scheme::Https => 5986,
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

impl std::str::FromStr for Scheme {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "http" => Ok(Scheme::Http),
            "https" => Ok(Scheme::Https),
            other => Err(format!("unknown scheme '{other}' (expected http or https)")),
        }
    }
}

/// How we authenticate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// NTLMv2 with session security (sealing over HTTP).
    Ntlm,
    /// HTTP Basic; allowed over HTTPS only.
    Basic,
}

impl std::str::FromStr for AuthMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "ntlm" | "negotiate" => Ok(AuthMethod::Ntlm),
            "basic" => Ok(AuthMethod::Basic),
            other => Err(format!(
                "unknown auth method '{other}' (expected ntlm or basic)"
            )),
        }
    }
}

/// Where to connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or IP address (also the TLS server name).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// HTTP or HTTPS.
    pub scheme: Scheme,
}

impl Endpoint {
    /// An endpoint with the scheme's default port.
    pub fn new(host: impl Into<String>, port: Option<u16>, scheme: Scheme) -> Self {
        Endpoint {
            host: host.into(),
            port: port.unwrap_or(scheme.default_port()),
            scheme,
        }
    }
    /// `http://host:port/wsman`, the URL of the WinRM listener (also the SOAP `a:To`).
    pub fn url(&self) -> String {
        format!(
            "{}://{}:{}/wsman",
            self.scheme.as_str(),
            url_host(&self.host),
            self.port
        )
    }
    /// `host:port`, used in error messages.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url())
    }
}

/// TLS settings for HTTPS.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// Extra PEM CA file to trust besides the system roots.
    pub ca_file: Option<PathBuf>,
    /// Skip certificate verification entirely. Dangerous: only reachable through a flag
    /// whose name says so (`--insecure-skip-tls-verify`).
    pub dangerous_skip_verify: bool,
}

/// Everything a transport needs.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// Where.
    pub endpoint: Endpoint,
    /// How to authenticate.
    pub auth: AuthMethod,
    /// User name as given (`DOMAIN\user`, `user@domain` or `user`).
    pub user: String,
    /// The password.
    pub password: Secret,
    /// TLS settings.
    pub tls: TlsOptions,
    /// TCP (and TLS) connect timeout.
    pub connect_timeout: Duration,
    /// How long one HTTP exchange may take, from sending the request to the last byte of
    /// the reply: a total deadline that a server trickling bytes cannot extend. Must exceed
    /// the WS-Man OperationTimeout.
    pub read_timeout: Duration,
    /// The largest reply body accepted: the `MaxEnvelopeSize` announced plus framing (see
    /// [`reply_limit`]). A larger one ends the exchange with [`Error::ReplyTooLarge`].
    pub max_reply_bytes: usize,
}

impl TransportConfig {
    /// Checks the settings before any I/O: Basic over plain HTTP is refused (it would send
    /// the password in clear text and the body unencrypted).
    pub fn validate(&self) -> Result<(), Error> {
        if self.auth == AuthMethod::Basic && self.endpoint.scheme == Scheme::Http {
            return Err(Error::InvalidConfig(format!(
                "Basic authentication over plain HTTP to {} would send the password in clear text; connect over HTTPS or authenticate with NTLM",
                self.endpoint.addr()
            )));
        }
        if self.user.is_empty() {
            return Err(Error::InvalidConfig(format!(
                "no user name given for {}",
                self.endpoint.addr()
            )));
        }
        Ok(())
    }
}

/// One authenticated connection.
struct Connection {
    sender: SendRequest<Full<Bytes>>,
    /// Present for NTLM over HTTP: every body is sealed with it.
    security: Option<SessionSecurity>,
    /// Basic authorization header value (HTTPS only), sent on every request; zeroized on
    /// drop.
    basic: Option<Zeroizing<String>>,
}

/// A WinRM transport to one host: one connection, one authentication context.
pub struct Transport {
    cfg: TransportConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    conn: Option<Connection>,
    /// Number of TCP connections opened (and handshakes run) so far.
    connects: u32,
    /// Channel-binding hook (issue 12): the DER leaf certificate the server presented on
    /// the current TLS connection, for NTLM's `tls-server-end-point` binding.
    tls_peer_certificate: Option<Vec<u8>>,
    /// Whether the first request of a connection rides on the NTLM AUTHENTICATE (one
    /// round trip less); turned off for good when the server authenticated without
    /// answering that body.
    body_on_authenticate: bool,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("endpoint", &self.cfg.endpoint)
            .field("user", &self.cfg.user)
            .field("connected", &self.conn.is_some())
            .field("connects", &self.connects)
            .finish()
    }
}

/// What the transport got back for one SOAP request.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status (200 for success, 500 for a SOAP fault).
    pub status: u16,
    /// The plaintext SOAP envelope.
    pub body: Vec<u8>,
}

impl Transport {
    /// Creates a transport; no I/O happens until the first [`Transport::send`].
    pub fn new(cfg: TransportConfig) -> Result<Self, Error> {
        cfg.validate()?;
        let tls = match cfg.endpoint.scheme {
            Scheme::Https => Some(tls_config(&cfg.tls)?),
            Scheme::Http => None,
        };
        Ok(Transport {
            cfg,
            tls,
            conn: None,
            connects: 0,
            tls_peer_certificate: None,
            body_on_authenticate: true,
        })
    }

    /// The endpoint this transport talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.cfg.endpoint
    }

    /// How many TCP connections (each with one authentication handshake) were opened.
    pub fn connects(&self) -> u32 {
        self.connects
    }

    /// Sends one SOAP envelope and returns the plaintext reply (status 200 or 500).
    ///
    /// Connects and authenticates on first use. If the connection turns out to be closed
    /// before the request could be written, or the server no longer knows our context
    /// (401 on an authenticated connection), it reconnects, re-authenticates and retries
    /// once.
    pub async fn send(&mut self, soap: &str) -> Result<Reply, Error> {
        self.send_with(soap, true).await
    }

    /// Like [`Transport::send`]; with `idempotent` false (Command, Send) a request that may
    /// have reached the server before the connection broke is not sent again: running a
    /// repair command twice is worse than reporting the error.
    pub async fn send_with(&mut self, soap: &str, idempotent: bool) -> Result<Reply, Error> {
        let mut retried = false;
        loop {
            let sent = if self.conn.as_ref().is_none_or(|c| c.sender.is_closed()) {
                self.conn = None;
                // Boxed: connecting (TCP, TLS, the NTLM handshake) is a state machine of
                // kilobytes that only a connection's first request needs; inline it would
                // size every request's future, held by every host in flight.
                Box::pin(self.connect_and_send(soap)).await?
            } else {
                self.send_once(soap, None).await
            };
            match sent {
                Ok(reply) => return Ok(reply),
                Err(SendFailure::MaybeDelivered(e)) if !retried && idempotent => {
                    tracing::debug!(endpoint = %self.cfg.endpoint, error = %e, "connection lost mid-request; re-authenticating");
                    self.conn = None;
                    retried = true;
                }
                Err(SendFailure::Retryable(e)) if !retried => {
                    tracing::debug!(endpoint = %self.cfg.endpoint, error = %e, "connection lost; re-authenticating");
                    self.conn = None;
                    retried = true;
                }
                Err(SendFailure::Retryable(e))
                | Err(SendFailure::MaybeDelivered(e))
                | Err(SendFailure::Fatal(e)) => {
                    // A failed exchange leaves the sealing state unknown: start afresh next time.
                    self.conn = None;
                    return Err(e);
                }
            }
        }
    }

    /// Sends `soap` on the current connection. With `authorization` (the NTLM AUTHENTICATE
    /// of a connection whose context was just derived from it) the request is also the
    /// handshake's last leg, and a 401 is the logon refused.
    async fn send_once(
        &mut self,
        soap: &str,
        authorization: Option<HeaderValue>,
    ) -> Result<Reply, SendFailure> {
        let authenticating = authorization.is_some();
        let addr = self.cfg.endpoint.addr();
        let url_path = "/wsman";
        let host_header = self.host_header();
        let read_timeout = self.cfg.read_timeout;
        let user = self.cfg.user.clone();
        let conn = match self.conn.as_mut() {
            Some(c) => c,
            None => return Err(SendFailure::Retryable(Error::ConnectionClosed { addr })),
        };
        let (content_type, body): (&str, Vec<u8>) = match conn.security.as_mut() {
            Some(sec) => (
                encryption::CONTENT_TYPE,
                encryption::seal_body(sec, soap.as_bytes()),
            ),
            None => (SOAP_CONTENT_TYPE, soap.as_bytes().to_vec()),
        };
        let size = body.len();
        let mut req = Request::post(url_path)
            .header(HOST, host_header)
            .header(CONTENT_TYPE, content_type)
            .header(CONTENT_LENGTH, size)
            .header("Accept-Encoding", "identity");
        if let Some(a) = authorization {
            req = req.header(AUTHORIZATION, a);
        }
        if let Some(basic) = &conn.basic {
            // Built per request from the zeroized string: hyper's copy lives only as long
            // as the request.
            let mut value = HeaderValue::from_str(basic).map_err(|_| {
                SendFailure::Fatal(Error::InvalidConfig(
                    "user name or password contains characters not allowed in an HTTP header"
                        .into(),
                ))
            })?;
            value.set_sensitive(true);
            req = req.header(AUTHORIZATION, value);
        }
        let req = req.body(Full::new(Bytes::from(body))).map_err(|e| {
            SendFailure::Fatal(Error::InvalidConfig(format!("cannot build request: {e}")))
        })?;
        let limit = self.cfg.max_reply_bytes;
        // One deadline for the whole exchange (ready, write, head, body): a server that
        // trickles bytes cannot stretch it.
        let deadline = tokio::time::Instant::now() + read_timeout;
        if !matches!(
            tokio::time::timeout_at(deadline, conn.sender.ready()).await,
            Ok(Ok(()))
        ) {
            return Err(SendFailure::Retryable(Error::ConnectionClosed { addr }));
        }
        let fut = async {
            let resp = conn.sender.send_request(req).await?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let bytes = read_limited(resp, limit).await?;
            Ok::<_, hyper::Error>((status, headers, bytes))
        };
        let (status, headers, bytes) = match tokio::time::timeout_at(deadline, fut).await {
            Err(_) => {
                return Err(SendFailure::Fatal(Error::ReadTimeout {
                    addr,
                    after: read_timeout,
                }))
            }
            // Never written: safe to send again on a new connection.
            Ok(Err(e)) if e.is_canceled() => {
                return Err(SendFailure::Retryable(Error::Http { addr, source: e }))
            }
            // Written, then the connection broke: the server may have acted on it.
            Ok(Err(e)) if e.is_closed() || e.is_incomplete_message() => {
                return Err(SendFailure::MaybeDelivered(Error::Http { addr, source: e }))
            }
            Ok(Err(e)) => return Err(SendFailure::Fatal(hyper_error(addr, e))),
            Ok(Ok(r)) => r,
        };
        let Some(bytes) = bytes else {
            return Err(SendFailure::Fatal(Error::ReplyTooLarge {
                addr,
                part: "body",
                limit,
            }));
        };
        match status {
            StatusCode::OK | StatusCode::INTERNAL_SERVER_ERROR => {}
            // Basic sends the credentials with every request: a 401 is the logon refused.
            StatusCode::UNAUTHORIZED if conn.basic.is_some() || authenticating => {
                return Err(SendFailure::Fatal(Error::Unauthorized { addr, user }));
            }
            StatusCode::UNAUTHORIZED => {
                // 401 after authentication: the server dropped our context (service
                // restart, idle timeout). It did not act on the request: retry once with a
                // fresh handshake (which reports a refused logon as `Unauthorized`).
                return Err(SendFailure::Retryable(Error::SessionLost { addr, user }));
            }
            StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(SendFailure::Fatal(Error::EnvelopeTooLarge { addr, size }))
            }
            other => {
                return Err(SendFailure::Fatal(status_error(
                    &addr, other, &headers, &bytes,
                )))
            }
        }
        let reply_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let plain = match conn.security.as_mut() {
            Some(sec) if encryption::is_encrypted(reply_type) => {
                encryption::unseal_body(sec, reply_type, &bytes)
                    .map_err(|source| SendFailure::Fatal(unseal_error(&addr, source)))?
            }
            Some(_) if bytes.is_empty() => Vec::new(),
            // An error page in clear (IIS, HTTP.sys, a proxy): not a fault of WinRM's, and
            // nothing in it is acted on.
            Some(_)
                if status == StatusCode::INTERNAL_SERVER_ERROR && !is_soap(reply_type, &bytes) =>
            {
                return Err(SendFailure::Fatal(error_page(&addr, status, &bytes)));
            }
            Some(_) => {
                // MS-WSMV 2.2.9.1: with encryption negotiated, a plaintext reply is not
                // acceptable (it could be injected by anyone on the path).
                return Err(SendFailure::Fatal(Error::Encryption {
                    addr,
                    source: encryption::EncryptionError::NotEncrypted {
                        content_type: reply_type.to_string(),
                    },
                }));
            }
            None if status == StatusCode::INTERNAL_SERVER_ERROR
                && !bytes.is_empty()
                && !is_soap(reply_type, &bytes) =>
            {
                return Err(SendFailure::Fatal(error_page(&addr, status, &bytes)));
            }
            None if !bytes.is_empty() && !is_soap(reply_type, &bytes) => {
                return Err(SendFailure::Fatal(Error::NotWinrm {
                    addr,
                    status: Some(status.as_u16()),
                    detail: format!(
                        "the reply is not SOAP ({reply_type:?}): {}",
                        snippet(&bytes)
                    ),
                }));
            }
            None => bytes.to_vec(),
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR && plain.is_empty() {
            return Err(SendFailure::Fatal(Error::UnexpectedStatus {
                addr,
                status: 500,
                snippet: "empty body".into(),
            }));
        }
        Ok(Reply {
            status: status.as_u16(),
            body: plain,
        })
    }

    /// `Host`: the host as connected, an IPv6 literal in brackets (RFC 9110 7.2, RFC
    /// 3986 3.2.2), with the port when it is not the scheme's default.
    fn host_header(&self) -> String {
        let ep = &self.cfg.endpoint;
        let host = url_host(&ep.host);
        if ep.port == ep.scheme.default_port() {
            host
        } else {
            format!("{host}:{}", ep.port)
        }
    }

    /// A transport to the same endpoint with the same settings and no connection: for a
    /// clean-up that must not touch a connection left mid-request.
    pub(crate) fn blank(&self) -> Transport {
        Transport {
            cfg: self.cfg.clone(),
            tls: self.tls.clone(),
            conn: None,
            connects: 0,
            tls_peer_certificate: None,
            body_on_authenticate: self.body_on_authenticate,
        }
    }

    /// Connects, authenticates and sends `soap`: for NTLM, on the AUTHENTICATE itself
    /// (its context is complete once the client has computed AUTHENTICATE, MS-NLMP
    /// 3.1.5.1.2, so the body can be sealed with it, MS-WSMV 2.2.9.1; the client keeps the
    /// `Authorization` header on its requests until the server answers 200, MS-WSMV
    /// 2.2.9.1.1), which saves the round trip of an empty-body AUTHENTICATE. The outer
    /// `Err` is a connect or handshake failure; the inner result is the request's.
    async fn connect_and_send(&mut self, soap: &str) -> Result<Result<Reply, SendFailure>, Error> {
        if self.cfg.auth != AuthMethod::Ntlm || !self.body_on_authenticate {
            self.connect_and_authenticate().await?;
            return Ok(self.send_once(soap, None).await);
        }
        let sender = self.open().await?;
        self.connects = self.connects.saturating_add(1);
        let (sender, authenticate) = match self.ntlm_challenge(sender).await? {
            Handshake::Open(conn) => {
                self.conn = Some(conn);
                return Ok(self.send_once(soap, None).await);
            }
            Handshake::Challenged {
                sender,
                authenticate,
            } => (sender, authenticate),
        };
        let header = authenticate.header;
        self.conn = Some(self.authenticated(sender, authenticate.security));
        let sent = self.send_once(soap, Some(header)).await;
        if let Ok(reply) = &sent {
            if reply.body.is_empty() {
                // Authenticated, but the body went unanswered: this server wants the
                // empty-body AUTHENTICATE of MS-WSMV 2.2.9.1. Our sealing state counted a
                // message it never read, so start over on a new connection, the classic way
                // (the request did nothing: resending it is safe).
                tracing::debug!(endpoint = %self.cfg.endpoint, "no reply to the request sent with AUTHENTICATE; authenticating first from now on");
                self.body_on_authenticate = false;
                self.conn = None;
                return Ok(Err(SendFailure::Retryable(Error::ConnectionClosed {
                    addr: self.cfg.endpoint.addr(),
                })));
            }
        }
        Ok(sent)
    }

    /// A connection authenticated with `security`: sealing over HTTP; over TLS the body
    /// is protected by TLS (pywinrm and pypsrp do not seal there).
    fn authenticated(
        &self,
        sender: SendRequest<Full<Bytes>>,
        security: SessionSecurity,
    ) -> Connection {
        let security = match self.cfg.endpoint.scheme {
            Scheme::Http => Some(security),
            Scheme::Https => None,
        };
        Connection {
            sender,
            security,
            basic: None,
        }
    }

    async fn connect_and_authenticate(&mut self) -> Result<(), Error> {
        let sender = self.open().await?;
        self.connects = self.connects.saturating_add(1);
        let conn = match self.cfg.auth {
            AuthMethod::Basic => {
                // Every buffer that holds the password is zeroized on drop.
                let mut plain = Zeroizing::new(Vec::with_capacity(64));
                plain.extend_from_slice(self.cfg.user.as_bytes());
                plain.push(b':');
                plain.extend_from_slice(self.cfg.password.expose_secret().as_bytes());
                let mut value = Zeroizing::new(String::with_capacity(16 + plain.len() * 4 / 3));
                value.push_str("Basic ");
                base64::engine::general_purpose::STANDARD.encode_string(&*plain, &mut value);
                Connection {
                    sender,
                    security: None,
                    basic: Some(value),
                }
            }
            AuthMethod::Ntlm => self.ntlm_handshake(sender).await?,
        };
        self.conn = Some(conn);
        Ok(())
    }

    async fn open(&mut self) -> Result<SendRequest<Full<Bytes>>, Error> {
        let ep = &self.cfg.endpoint;
        let addr = ep.addr();
        let tcp = match tokio::time::timeout(
            self.cfg.connect_timeout,
            TcpStream::connect((bare_host(&ep.host), ep.port)),
        )
        .await
        {
            Err(_) => {
                return Err(Error::ConnectTimeout {
                    addr,
                    after: self.cfg.connect_timeout,
                })
            }
            Ok(Err(source)) => return Err(Error::Connect { addr, source }),
            Ok(Ok(s)) => s,
        };
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => handshake_http(TokioIo::new(tcp), &addr).await,
            Some(cfg) => {
                let name = rustls_pki_types::ServerName::try_from(bare_host(&ep.host).to_string())
                    .map_err(|_| {
                        Error::InvalidConfig(format!(
                            "'{}' is not a valid TLS server name",
                            ep.host
                        ))
                    })?;
                let connector = tokio_rustls::TlsConnector::from(cfg.clone());
                let tls = match tokio::time::timeout(
                    self.cfg.connect_timeout,
                    connector.connect(name, tcp),
                )
                .await
                {
                    Err(_) => {
                        return Err(Error::ConnectTimeout {
                            addr,
                            after: self.cfg.connect_timeout,
                        })
                    }
                    Ok(Err(source)) => return Err(Error::Tls { addr, source }),
                    Ok(Ok(s)) => s,
                };
                // Channel-binding hook: keep the leaf certificate for the NTLM handshake.
                self.tls_peer_certificate = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .map(|c| c.to_vec());
                handshake_http(TokioIo::new(tls), &addr).await
            }
        }
    }

    /// NTLM over HTTP (MS-WSMV 2.2.9.1 handshake on an empty-body POST): learn which
    /// scheme the server offers, send NEGOTIATE, answer the CHALLENGE with AUTHENTICATE,
    /// expect 200.
    async fn ntlm_handshake(
        &mut self,
        sender: SendRequest<Full<Bytes>>,
    ) -> Result<Connection, Error> {
        let addr = self.cfg.endpoint.addr();
        let (mut sender, authenticate) = match self.ntlm_challenge(sender).await? {
            Handshake::Open(conn) => return Ok(conn),
            Handshake::Challenged {
                sender,
                authenticate,
            } => (sender, authenticate),
        };
        let (status, headers, body) = self
            .empty_post(&mut sender, Some(authenticate.header))
            .await?;
        match status {
            StatusCode::OK => {}
            // Still within the handshake: the logon itself was refused.
            StatusCode::UNAUTHORIZED => {
                return Err(Error::Unauthorized {
                    addr,
                    user: self.cfg.user.clone(),
                })
            }
            other => return Err(status_error(&addr, other, &headers, &body)),
        }
        Ok(self.authenticated(sender, authenticate.security))
    }

    /// The handshake up to the AUTHENTICATE message (not sent): NEGOTIATE on an
    /// empty-body POST, under whichever of `Negotiate`/`NTLM` the server offers, and the
    /// AUTHENTICATE answering its CHALLENGE, with the context it completes.
    async fn ntlm_challenge(
        &mut self,
        mut sender: SendRequest<Full<Bytes>>,
    ) -> Result<Handshake, Error> {
        let addr = self.cfg.endpoint.addr();
        // No anonymous "which schemes?" request first: NEGOTIATE goes out at once under
        // `Negotiate` (Windows' listener offers it; pypsrp and masterzen do the same). A
        // server that offers only `NTLM` says so in its 401, and we start again under that
        // name; a server that closes the connection after a 401 gets one new connection.
        let mut scheme = "Negotiate";
        let mut restarted = false;
        let (challenge, awaiting) = loop {
            let creds = Credentials::from_user_spec(&self.cfg.user, self.cfg.password.clone());
            // Channel-binding hook: MsvAvTargetName HTTP/<host>, and over TLS the binding of
            // the certificate this connection presented (plain HTTP: none).
            let (negotiate, awaiting) = Initiator::for_winrm(
                creds,
                &workstation_name(),
                &self.cfg.endpoint.host,
                self.tls_peer_certificate.as_deref(),
            )
            .negotiate();
            let sent = self
                .empty_post(&mut sender, Some(auth_header(scheme, &negotiate)?))
                .await;
            let (status, headers, body) = match sent {
                Err(Error::ConnectionClosed { .. }) if !restarted => {
                    restarted = true;
                    sender = self.open().await?;
                    continue;
                }
                other => other?,
            };
            if status == StatusCode::OK {
                // No authentication required: nothing to seal with. WinRM always asks for
                // it; over HTTP every request would then travel in clear text.
                if self.cfg.endpoint.scheme == Scheme::Http {
                    return Err(Error::NotWinrm {
                        addr,
                        status: Some(200),
                        detail: "it accepted a request without authentication; refusing to send commands unencrypted".into(),
                    });
                }
                return Ok(Handshake::Open(Connection {
                    sender,
                    security: None,
                    basic: None,
                }));
            }
            if status != StatusCode::UNAUTHORIZED {
                return Err(status_error(&addr, status, &headers, &body));
            }
            if let Some(challenge) = challenge_token(&headers, scheme) {
                break (challenge, awaiting);
            }
            let offered = offered_schemes(&headers);
            let offers = |name: &str| offered.iter().any(|s| s.eq_ignore_ascii_case(name));
            if scheme == "Negotiate" && !offers("Negotiate") && offers("NTLM") && !restarted {
                scheme = "NTLM";
                restarted = true;
                if sender.is_closed() || closes(&headers) {
                    sender = self.open().await?;
                }
                continue;
            }
            if !offers(scheme) {
                return Err(Error::AuthSchemeUnsupported {
                    addr,
                    offered: offered.join(", "),
                });
            }
            // The scheme is offered but our NEGOTIATE got no CHALLENGE: refused outright.
            return Err(Error::Unauthorized {
                addr,
                user: self.cfg.user.clone(),
            });
        };
        if challenge.len() > MAX_CHALLENGE_BYTES {
            // Its TargetInfo would be copied into our AUTHENTICATE: refuse it unread.
            return Err(Error::Ntlm {
                addr,
                source: NtlmError::malformed(
                    "CHALLENGE",
                    format!(
                        "{} bytes, more than the {MAX_CHALLENGE_BYTES} any server needs",
                        challenge.len()
                    ),
                ),
            });
        }
        let (authenticate, security) = awaiting
            .authenticate(&challenge)
            .map_err(|source| Error::Ntlm { addr, source })?;
        Ok(Handshake::Challenged {
            sender,
            authenticate: Authenticate {
                header: auth_header(scheme, &authenticate)?,
                security,
            },
        })
    }

    async fn empty_post(
        &self,
        sender: &mut SendRequest<Full<Bytes>>,
        authorization: Option<HeaderValue>,
    ) -> Result<(StatusCode, hyper::HeaderMap, Bytes), Error> {
        let addr = self.cfg.endpoint.addr();
        let mut req = Request::post("/wsman")
            .header(HOST, self.host_header())
            .header(CONTENT_TYPE, SOAP_CONTENT_TYPE)
            .header(CONTENT_LENGTH, 0)
            .header("Accept-Encoding", "identity");
        if let Some(a) = authorization {
            req = req.header(AUTHORIZATION, a);
        }
        let req = req
            .body(Full::new(Bytes::new()))
            .map_err(|e| Error::InvalidConfig(format!("cannot build request: {e}")))?;
        let fut = async {
            sender.ready().await?;
            let resp = sender.send_request(req).await?;
            let status = resp.status();
            let headers = resp.headers().clone();
            // The handshake replies carry no body worth reading: bound them tightly (the
            // status and headers are what counts; an oversize body is dropped unread).
            let body = read_limited(resp, MAX_HANDSHAKE_BODY_BYTES)
                .await?
                .unwrap_or_default();
            Ok::<_, hyper::Error>((status, headers, body))
        };
        match tokio::time::timeout(self.cfg.read_timeout, fut).await {
            Err(_) => Err(Error::ReadTimeout {
                addr,
                after: self.cfg.read_timeout,
            }),
            Ok(Err(source))
                if source.is_incomplete_message() || source.is_closed() || source.is_canceled() =>
            {
                Err(Error::ConnectionClosed { addr })
            }
            Ok(Err(source)) => Err(hyper_error(addr, source)),
            Ok(Ok(r)) => Ok(r),
        }
    }

    /// Connects and authenticates now (if not already), without sending a command: a
    /// logon test. `Err(Error::Unauthorized)` means the credentials were refused.
    pub async fn connect(&mut self) -> Result<(), Error> {
        if self.conn.as_ref().is_none_or(|c| c.sender.is_closed()) {
            self.conn = None;
            self.connect_and_authenticate().await?;
        }
        Ok(())
    }

    /// Closes the connection (the server forgets the context).
    pub fn disconnect(&mut self) {
        self.conn = None;
    }
}

/// Where an NTLM handshake stands once the CHALLENGE is answered.
enum Handshake {
    /// The server asked for no authentication (HTTPS only).
    Open(Connection),
    /// The AUTHENTICATE to send next, on `sender`.
    Challenged {
        sender: SendRequest<Full<Bytes>>,
        authenticate: Authenticate,
    },
}

/// An AUTHENTICATE message ready to send, and the context it completes.
struct Authenticate {
    /// `Authorization: <scheme> <AUTHENTICATE>`.
    header: HeaderValue,
    security: SessionSecurity,
}

enum SendFailure {
    /// The request never reached the server, or the context was lost: reconnect and send.
    Retryable(Error),
    /// The request was written before the connection broke: resend only if idempotent.
    MaybeDelivered(Error),
    Fatal(Error),
}

/// The most a reply's status line and headers may take (hyper's read buffer, which must
/// hold the whole head). WinRM's heads are a few hundred bytes; the largest honest header
/// is an NTLM CHALLENGE in `WWW-Authenticate`, well under 4 KiB.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// The most header lines a reply may have (hyper's default, stated here).
pub const MAX_HEADERS: usize = 100;

/// The largest NTLM CHALLENGE accepted. Its variable parts (MS-NLMP 2.2.1.2) are the
/// TargetName and the TargetInfo AV pairs (2.2.2.1): a handful of names of at most 255
/// UTF-16 characters each, a timestamp and flags, about 2.5 KiB at the very most. A larger
/// one carries pairs no server sends, which the AUTHENTICATE would have to echo.
pub const MAX_CHALLENGE_BYTES: usize = 8 * 1024;

/// The body of a handshake reply (a 401 or an error page) is read up to this much.
pub const MAX_HANDSHAKE_BODY_BYTES: usize = 64 * 1024;

/// What a sealed reply adds to the envelope it carries, and room for a server that counts
/// its envelope a little differently: the multipart framing of MS-WSMV 2.2.9.1.1 is a few
/// hundred bytes.
pub const REPLY_FRAMING_SLACK: usize = 64 * 1024;

/// The largest reply body to accept when `max_envelope_size` was announced: MS-WSMV
/// 3.1.4.1.7 (after DMTF DSP0226 6.2) has the client state the largest response it
/// expects in `wsman:MaxEnvelopeSize`, and the server fit its response into it; the
/// sealed framing comes on top ([`REPLY_FRAMING_SLACK`]).
pub fn reply_limit(max_envelope_size: u32) -> usize {
    usize::try_from(max_envelope_size)
        .unwrap_or(usize::MAX)
        .saturating_add(REPLY_FRAMING_SLACK)
}

/// Reads a reply body of at most `limit` bytes: `Ok(None)` when it is larger, announced
/// (`Content-Length`) or found while reading; what is past the limit is never read.
async fn read_limited(
    resp: hyper::Response<hyper::body::Incoming>,
    limit: usize,
) -> Result<Option<Bytes>, hyper::Error> {
    let announced = resp
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX)) {
        return Ok(None);
    }
    match http_body_util::Limited::new(resp.into_body(), limit)
        .collect()
        .await
    {
        Ok(b) => Ok(Some(b.to_bytes())),
        Err(e) => match e.downcast::<hyper::Error>() {
            Ok(h) => Err(*h),
            // The only other error `Limited` makes: the limit was reached.
            Err(_) => Ok(None),
        },
    }
}

async fn handshake_http<I>(io: TokioIo<I>, addr: &str) -> Result<SendRequest<Full<Bytes>>, Error>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS)
        .handshake(io)
        .await
        .map_err(|source| Error::Http {
            addr: addr.to_string(),
            source,
        })?;
    // Boxed: hyper's connection state is large, and tokio moves a spawned future by value.
    let conn = Box::pin(conn);
    tokio::spawn(async move {
        // The connection task ends when the SendRequest is dropped or the peer closes.
        let _ = conn.await;
    });
    Ok(sender)
}

fn auth_header(scheme: &str, token: &[u8]) -> Result<HeaderValue, Error> {
    let value = format!(
        "{scheme} {}",
        base64::engine::general_purpose::STANDARD.encode(token)
    );
    HeaderValue::from_str(&value)
        .map_err(|_| Error::InvalidConfig("cannot encode Authorization header".into()))
}

/// The scheme names in all `WWW-Authenticate` headers (`Negotiate`, `Kerberos`, `Basic`, …).
fn offered_schemes(headers: &hyper::HeaderMap) -> Vec<String> {
    headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| part.split_whitespace().next())
        .filter(|s| !s.contains('='))
        .map(str::to_string)
        .collect()
}

/// The base64 token of `WWW-Authenticate: <scheme> <token>`.
fn challenge_token(headers: &hyper::HeaderMap, scheme: &str) -> Option<Vec<u8>> {
    headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| {
            let mut it = part.split_whitespace();
            let name = it.next()?;
            let token = it.next()?;
            name.eq_ignore_ascii_case(scheme)
                .then(|| base64::engine::general_purpose::STANDARD.decode(token).ok())?
        })
        .next()
}

/// The host for a URL or `Host` header: an IPv6 literal in brackets (once).
fn url_host(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// The host without URL brackets, for connecting and as the TLS server name.
fn bare_host(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// Whether the server announced it closes the connection after this response.
fn closes(headers: &hyper::HeaderMap) -> bool {
    headers
        .get(hyper::header::CONNECTION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("close"))
}

/// Whether an unsealed reply looks like a SOAP envelope.
fn is_soap(content_type: &str, body: &[u8]) -> bool {
    let ct = content_type.to_ascii_lowercase();
    if ct.contains("soap") || ct.contains("xml") {
        return true;
    }
    // Some proxies drop the content type: accept what starts like XML.
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .and_then(|i| body.get(i));
    ct.is_empty() && start == Some(&b'<')
}

/// The error for an HTTP status WinRM does not send in this exchange. A 3xx is a redirect,
/// never followed ([`Error::Redirected`]); 404, 405 and the like mean something other than
/// a WinRM listener answered (wrong port, path, service); a 500 that is not SOAP is an
/// error page ([`Error::ErrorPage`]); 503 is HTTP.sys with no WinRM service registered
/// (stopping, starting, rebooting).
fn status_error(addr: &str, status: StatusCode, headers: &hyper::HeaderMap, body: &[u8]) -> Error {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if status.is_redirection() {
        let location = headers
            .get(hyper::header::LOCATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        return Error::Redirected {
            addr: addr.to_string(),
            status: status.as_u16(),
            location: printable(&location, 200),
        };
    }
    if status == StatusCode::INTERNAL_SERVER_ERROR
        && !body.is_empty()
        && !is_soap(content_type, body)
    {
        return error_page(addr, status, body);
    }
    match status {
        StatusCode::NOT_FOUND
        | StatusCode::METHOD_NOT_ALLOWED
        | StatusCode::NOT_IMPLEMENTED
        | StatusCode::UNSUPPORTED_MEDIA_TYPE => Error::NotWinrm {
            addr: addr.to_string(),
            status: Some(status.as_u16()),
            detail: format!("HTTP {status}: {}", snippet(body)),
        },
        other => Error::UnexpectedStatus {
            addr: addr.to_string(),
            status: other.as_u16(),
            snippet: snippet(body),
        },
    }
}

/// [`Error::ErrorPage`] for a status with a body that is not a WS-Man fault: the page's
/// text without its tags, whitespace folded, at most 200 characters.
fn error_page(addr: &str, status: StatusCode, body: &[u8]) -> Error {
    let text = String::from_utf8_lossy(body.get(..4096).unwrap_or(body));
    let mut plain = String::with_capacity(text.len());
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => {
                in_tag = true;
                plain.push(' ');
            }
            '>' if in_tag => in_tag = false,
            c if !in_tag => plain.push(c),
            _ => {}
        }
    }
    let folded = plain.split_whitespace().collect::<Vec<_>>().join(" ");
    Error::ErrorPage {
        addr: addr.to_string(),
        status: status.as_u16(),
        excerpt: printable(&folded, 200),
    }
}

/// At most `max` characters of `s`, control characters replaced: text from a peer, fit for
/// one line of a log or report.
fn printable(s: &str, max: usize) -> String {
    s.chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The error for a sealed reply that could not be opened: a failed signature or sequence
/// check (or a context already broken by one) is [`Error::Integrity`], anything else in the
/// framing [`Error::Encryption`].
fn unseal_error(addr: &str, source: encryption::EncryptionError) -> Error {
    match source {
        encryption::EncryptionError::Signature(
            e @ (NtlmError::SignatureMismatch { .. }
            | NtlmError::SequenceMismatch { .. }
            | NtlmError::ContextBroken),
        ) => Error::Integrity {
            addr: addr.to_string(),
            source: e,
        },
        other => Error::Encryption {
            addr: addr.to_string(),
            source: other,
        },
    }
}

/// A hyper error: a reply that is not HTTP means the service on the port is not WinRM; a
/// head past [`MAX_HEAD_BYTES`] or [`MAX_HEADERS`] is [`Error::ReplyTooLarge`].
fn hyper_error(addr: String, source: hyper::Error) -> Error {
    if source.is_parse_too_large() {
        return Error::ReplyTooLarge {
            addr,
            part: "head",
            limit: MAX_HEAD_BYTES,
        };
    }
    if source.is_parse() || source.is_parse_status() {
        Error::NotWinrm {
            addr,
            status: None,
            detail: format!("the reply is not HTTP: {source}"),
        }
    } else {
        Error::Http { addr, source }
    }
}

fn snippet(bytes: &[u8]) -> String {
    printable(
        &String::from_utf8_lossy(bytes.get(..4096).unwrap_or(bytes)),
        200,
    )
}

/// The NetBIOS-style name we announce as our workstation in NTLM.
fn workstation_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| {
            h.trim()
                .split('.')
                .next()
                .unwrap_or("")
                .to_ascii_uppercase()
        })
        .filter(|h| !h.is_empty() && h.len() <= 15)
        .unwrap_or_else(|| "TRUSTSWEEP".to_string())
}

fn tls_config(opts: &TlsOptions) -> Result<Arc<rustls::ClientConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::InvalidConfig(format!("TLS setup: {e}")))?;
    let config = if opts.dangerous_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(danger::NoVerify(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for cert in native.certs {
            let _ = roots.add(cert);
        }
        if let Some(path) = &opts.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                Error::InvalidConfig(format!("cannot read CA file {}: {e}", path.display()))
            })?;
            let mut added = 0usize;
            for item in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
                let cert = item.map_err(|e| {
                    Error::InvalidConfig(format!("CA file {}: {e}", path.display()))
                })?;
                roots.add(cert).map_err(|e| {
                    Error::InvalidConfig(format!("CA file {}: {e}", path.display()))
                })?;
                added += 1;
            }
            if added == 0 {
                return Err(Error::InvalidConfig(format!(
                    "CA file {} holds no PEM certificate",
                    path.display()
                )));
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(Arc::new(config))
}

use rustls_pki_types::pem::PemObject as _;

mod danger {
    //! The certificate verifier behind `--insecure-skip-tls-verify`: accepts any
    //! certificate but still checks the handshake signatures.
    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::CryptoProvider;
    use rustls::DigitallySignedStruct;
    use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

    #[derive(Debug)]
    pub(super) struct NoVerify(pub(super) Arc<CryptoProvider>);

    impl ServerCertVerifier for NoVerify {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }
        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
}

/// Maps a SOAP parse failure of a reply to the crate error, naming the host.
pub(crate) fn soap_error(endpoint: &Endpoint, source: SoapError) -> Error {
    match source {
        // Authenticated, then refused: its own variant, so it is never read as a 401.
        SoapError::Fault(f) if f.kind == crate::soap::FaultKind::AccessDenied => {
            Error::AccessDenied {
                addr: endpoint.addr(),
                fault: f,
            }
        }
        SoapError::Fault(f) => Error::Fault(f),
        other => Error::Soap {
            addr: endpoint.addr(),
            source: other,
        },
    }
}
