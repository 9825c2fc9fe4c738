//! The lab on the wire: every member host is its own WinRM listener on a loopback address,
//! served by `winrm`'s server pieces, answering from the [`Lab`] model.
//!
//! One process serves thousands of hosts: each host is a `TcpListener` on its own
//! `127.10.x.y` address (port 5985 when free, else an ephemeral port), all sharing one
//! [`Server`] and one shell table. The latency model adds a round-trip time to every reply
//! (per host, from the model) and a PowerShell start-up time to every `powershell.exe`
//! command, so benchmarks can model a real network; both default to zero.
//!
//! With [`WireOptions::scheme`] HTTPS the hosts serve WinRM over TLS instead (Windows'
//! 5986 listener), each with its own certificate from a CA generated at start
//! ([`crate::tls`]), and check NTLM channel bindings as the listener's
//! `CbtHardeningLevel` ([`ServerConfig::cbt_hardening`]) says. The CA's PEM is written to
//! an owner-only temporary file, removed when the lab stops, and named in the inventory as
//! `ansible_winrm_ca_trust_path`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use winrm::ntlm::{ClaimedIdentity, ServerIdentity};
use winrm::server::{
    Backend, ExecOutput, HostIdentity, Logon as WireLogon, Server, ServerConfig, StdinMode,
    WireStep,
};
use winrm::transport::Scheme;

use crate::faults::FaultKind;
use crate::host::HostId;
use crate::latency::Costs;
use crate::model::{HostInfo, Identity, Lab, Logon};
use crate::tls::{LabCa, PkiError};

/// Where and how the lab listens.
#[derive(Clone, Debug)]
pub struct WireOptions {
    /// Address of the first host; the others follow (`127.10.0.1`, `127.10.0.2`, …).
    pub first_address: Ipv4Addr,
    /// Port for every host; `None` for an ephemeral port per host (what tests use, so that
    /// labs running side by side never collide).
    pub port: Option<u16>,
    /// Added to every `powershell.exe` command (PowerShell's start-up cost).
    pub powershell_startup: Duration,
    /// Listener settings (`MaxEnvelopeSizekb`, `MaxTimeoutms`, shells per user,
    /// `CbtHardeningLevel` for HTTPS).
    pub server: ServerConfig,
    /// HTTP (the 5985 listener, message encryption) or HTTPS (5986, TLS with a lab CA).
    pub scheme: Scheme,
    /// How `offline` hosts fail to answer.
    pub offline: OfflineMode,
    /// One listener per host (`Some(false)`), one wildcard listener for every host's
    /// address (`Some(true)`, plain HTTP only), or whichever the descriptor limit allows
    /// (`None`, the default: per host while hosts are under a quarter of it).
    pub shared_listener: Option<bool>,
}

/// How an `offline` host fails to answer.
///
/// A powered-off host behind a router or firewall is a black hole: the SYN goes
/// unanswered and `connect` waits for its timeout. On loopback nothing drops packets
/// (that needs a network namespace and a firewall rule, issue 16), so the black hole is
/// made of what Linux does for a listener whose accept queue is full: it drops new SYNs
/// without answering (`tcp_conn_request`, `sk_acceptq_is_full`; `tcp_abort_on_overflow`
/// is 0 by default), and the client's SYN retransmits until its connect timeout. The lab
/// listens with a backlog of 0 and fills that queue with one connection of its own, which
/// it never accepts. It costs two descriptors per offline host, none per client attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OfflineMode {
    /// The connection is accepted and closed at once: fast, what tests use.
    #[default]
    Refuse,
    /// Connects hang until the client's connect timeout (what the latency profiles use).
    BlackHole,
}

impl Default for WireOptions {
    fn default() -> Self {
        WireOptions {
            first_address: Ipv4Addr::new(127, 10, 0, 1),
            port: None,
            powershell_startup: Duration::ZERO,
            server: ServerConfig::default(),
            scheme: Scheme::Http,
            offline: OfflineMode::Refuse,
            shared_listener: None,
        }
    }
}

/// The backend the WinRM server asks: which host is behind an address, who may log on,
/// what commands do.
#[derive(Debug)]
pub struct LabBackend {
    lab: Lab,
    by_addr: HashMap<SocketAddr, HostId>,
    powershell_startup: Duration,
    /// What the latency profile charges ([`crate::model::LabSpec::costs`]).
    costs: Costs,
    /// The lab's seed (PowerShell start-up draws repeat per seed).
    seed: u64,
    /// Per host, by id: what the wire needs without taking the model's lock.
    wire_hosts: Vec<WireHost>,
    /// The request log, once [`RunningLab::record_requests`] switched it on.
    requests: Mutex<Option<Vec<WireRecord>>>,
}

/// What the wire layer keeps of a host (fixed at build time).
#[derive(Debug)]
struct WireHost {
    /// Its RTT (a `slow` host's is larger).
    latency: Duration,
    /// `hung`: accepts, never answers.
    hung: bool,
    /// PowerShell starts so far (the draw's index).
    powershell_starts: AtomicU32,
}

/// How many entries the request log keeps (about 64 bytes each).
pub const REQUEST_LOG_LIMIT: usize = 1_000_000;

/// One step a host's listener saw on the wire: a TCP connection accepted, or an HTTP
/// request answered (its authentication leg, WS-Man action, status and arrival time).
/// Each costs the client one round trip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireRecord {
    /// The host behind the listener.
    pub host: Option<HostId>,
    /// The listener's address.
    pub listener: SocketAddr,
    /// What happened.
    pub step: WireStep,
}

impl WireRecord {
    /// When the connection was accepted or the request arrived.
    pub fn at(&self) -> Instant {
        match &self.step {
            WireStep::Connect { at, .. } | WireStep::Request { at, .. } => *at,
        }
    }

    /// The number of the connection the step belongs to.
    pub fn connection(&self) -> u64 {
        match &self.step {
            WireStep::Connect { connection, .. } | WireStep::Request { connection, .. } => {
                *connection
            }
        }
    }

    /// The step in one word, for test messages: `connect`, `negotiate`, `authenticate`,
    /// the action's last path segment (`Create`, `Command`, `Receive`, …), joined with `+`
    /// when one request carried both an authentication leg and a body.
    pub fn label(&self) -> String {
        match &self.step {
            WireStep::Connect { .. } => "connect".to_string(),
            WireStep::Request { auth, action, .. } => {
                let mut parts = Vec::new();
                match auth {
                    Some(winrm::server::AuthLeg::Negotiate) => parts.push("negotiate"),
                    Some(winrm::server::AuthLeg::Authenticate) => parts.push("authenticate"),
                    Some(winrm::server::AuthLeg::Other) => parts.push("auth"),
                    None => {}
                }
                if let Some(a) = action {
                    parts.push(a.rsplit('/').next().unwrap_or(a));
                }
                if parts.is_empty() {
                    parts.push("empty");
                }
                parts.join("+")
            }
        }
    }
}

impl LabBackend {
    fn host(&self, local: SocketAddr) -> Option<HostId> {
        self.by_addr.get(&local).copied()
    }

    fn wire_host(&self, local: SocketAddr) -> Option<&WireHost> {
        self.host(local).and_then(|id| self.wire_hosts.get(id.0))
    }

    /// The start-up time of the next `powershell.exe` on `id`: the profile's draw, else
    /// the fixed [`WireOptions::powershell_startup`].
    fn powershell_startup(&self, id: Option<HostId>) -> Duration {
        let (Some(ps), Some(id)) = (self.costs.powershell, id) else {
            return self.powershell_startup;
        };
        let nth = self
            .wire_hosts
            .get(id.0)
            .map(|h| h.powershell_starts.fetch_add(1, Ordering::Relaxed))
            .unwrap_or(0);
        ps.sample(self.seed, id.0, nth)
    }
}

impl Backend for LabBackend {
    type Principal = Identity;

    fn identity(&self, local: SocketAddr) -> Option<HostIdentity> {
        let id = self.host(local)?;
        if !self.lab.is_online(id) {
            return None;
        }
        let info = self.lab.host(id)?;
        let domain = self.lab.domain_name();
        let netbios_domain = domain.split('.').next().unwrap_or("").to_ascii_uppercase();
        Some(HostIdentity {
            ntlm: ServerIdentity {
                nb_domain: netbios_domain,
                nb_computer: info.computer_name.to_ascii_uppercase(),
                dns_domain: domain,
                dns_computer: info.dns_name.clone(),
            },
            machine: info.dns_name,
        })
    }

    fn logon(&self, local: SocketAddr, claimed: &ClaimedIdentity) -> WireLogon<Identity> {
        let Some(id) = self.host(local) else {
            return WireLogon::Reject;
        };
        match self.lab.logon(id, &claimed.domain, &claimed.user) {
            Logon::Verify { password, identity } => {
                // A domain account's response is checked by the DC (pass-through): a
                // locked account is refused, a wrong password counts (crate::lockout).
                if identity.is_domain() {
                    let lockout = self.lab.lockout();
                    if lockout.is_locked(identity.user()) {
                        tracing::debug!(host = id.0, user = %claimed.user, "logon refused with 401: account locked out");
                        return WireLogon::Reject;
                    }
                    crate::lockout::pending_logon(&lockout, identity.user());
                }
                WireLogon::Verify {
                    password,
                    principal: identity,
                }
            }
            Logon::Reject(reason) => {
                tracing::debug!(host = id.0, user = %claimed.user, ?reason, "logon refused with 401");
                WireLogon::Reject
            }
        }
    }

    fn authorize(&self, local: SocketAddr, who: &Identity) -> bool {
        crate::lockout::settle_pending_logon(true);
        self.host(local)
            .is_some_and(|id| self.lab.authorize_winrm(id, who).is_ok())
    }

    fn principal_name(&self, who: &Identity) -> String {
        who.qualified()
    }

    fn reads_stdin(&self, _local: SocketAddr, command_line: &str) -> bool {
        Lab::reads_stdin(command_line)
    }

    fn execute(
        &self,
        local: SocketAddr,
        who: Identity,
        command_line: String,
        stdin: Vec<u8>,
        stdin_mode: StdinMode,
    ) -> impl std::future::Future<Output = ExecOutput> + Send + 'static {
        let lab = self.lab.clone();
        let id = self.host(local);
        let startup = if is_powershell(&command_line) {
            self.powershell_startup(id)
        } else {
            Duration::ZERO
        };
        let costs = self.costs;
        async move {
            if !startup.is_zero() {
                tokio::time::sleep(startup).await;
            }
            let Some(id) = id else {
                return ExecOutput {
                    stdout: Vec::new(),
                    stderr: b"The system cannot find the path specified.\r\n".to_vec(),
                    exit_code: 1,
                };
            };
            // The model is synchronous and quick; run it off the reactor anyway so that a
            // large fleet's commands never stall the listeners.
            let res = tokio::task::spawn_blocking(move || {
                lab.execute_with(id, &who, &command_line, &stdin, stdin_mode)
            })
            .await;
            match res {
                Ok(r) => {
                    let work = costs.work(&r.work);
                    if !work.is_zero() {
                        tokio::time::sleep(work).await;
                    }
                    ExecOutput {
                        stdout: r.stdout,
                        stderr: r.stderr,
                        exit_code: r.exit_code,
                    }
                }
                Err(_) => ExecOutput {
                    stdout: Vec::new(),
                    stderr: b"The process terminated unexpectedly.\r\n".to_vec(),
                    exit_code: 1,
                },
            }
        }
    }

    fn latency(&self, local: SocketAddr) -> Duration {
        self.wire_host(local)
            .map(|h| h.latency.saturating_add(self.costs.server_time))
            .unwrap_or_default()
    }

    fn connect_delay(&self, local: SocketAddr) -> Duration {
        self.wire_host(local).map(|h| h.latency).unwrap_or_default()
    }

    fn hangs(&self, local: SocketAddr) -> bool {
        self.wire_host(local).is_some_and(|h| h.hung)
    }

    fn operation_time(&self, _local: SocketAddr, request: &winrm::soap::Request) -> Duration {
        match request {
            winrm::soap::Request::Create(_) => self.costs.create_shell,
            _ => Duration::ZERO,
        }
    }

    fn on_wire(&self, local: SocketAddr, step: WireStep) {
        if let WireStep::Request { status, .. } = &step {
            crate::lockout::settle_pending_logon(*status != 401);
        }
        let mut log = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(log) = log.as_mut().filter(|l| l.len() < REQUEST_LOG_LIMIT) {
            log.push(WireRecord {
                host: self.host(local),
                listener: local,
                step,
            });
        }
    }
}

fn is_powershell(command_line: &str) -> bool {
    crate::exec::starts_powershell(command_line)
}

/// A member host as reachable on the wire.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The model's view of the host.
    pub info: HostInfo,
    /// Where its WinRM listener is.
    pub addr: SocketAddr,
}

/// A lab whose hosts are listening. Dropping it stops every listener.
#[derive(Debug)]
pub struct RunningLab {
    lab: Lab,
    server: Arc<Server<LabBackend>>,
    endpoints: Vec<Endpoint>,
    tasks: Vec<JoinHandle<()>>,
    /// The black holes of `offline` hosts ([`OfflineMode::BlackHole`]), kept open.
    _holes: Vec<(TcpListener, tokio::net::TcpStream)>,
    scheme: Scheme,
    /// The CA of an HTTPS lab: its PEM and the temporary file holding it.
    ca: Option<(String, PathBuf)>,
}

impl Drop for RunningLab {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        if let Some((_, path)) = &self.ca {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Why the lab could not start listening.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Binding a host's address failed.
    #[error("cannot listen on {addr} for {host}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The host's name.
        host: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The HTTPS lab's certificates could not be made.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// The CA file of an HTTPS lab could not be written.
    #[error("cannot write the lab CA to {path}: {source}")]
    CaFile {
        /// Where.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The wildcard listener shared by every host could not be set up.
    #[error("cannot listen on the lab's shared port: {source}")]
    Shared {
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// More hosts than the address plan holds.
    #[error("the lab's address plan from {first} has room for {room} hosts, not {wanted}")]
    AddressesExhausted {
        /// First address.
        first: Ipv4Addr,
        /// How many fit.
        room: usize,
        /// How many were asked for.
        wanted: usize,
    },
}

impl RunningLab {
    /// Binds one listener per member host and starts serving.
    pub async fn start(lab: Lab, opts: WireOptions) -> Result<RunningLab, WireError> {
        let hosts = lab.hosts();
        let mut listeners = Vec::with_capacity(hosts.len());
        let first = u32::from(opts.first_address);
        // Stay inside 127.0.0.0/8.
        let room = (u32::from(Ipv4Addr::new(127, 255, 255, 254)).saturating_sub(first)) as usize;
        if hosts.len() > room {
            return Err(WireError::AddressesExhausted {
                first: opts.first_address,
                room,
                wanted: hosts.len(),
            });
        }
        // One wildcard listener for every host's address when the descriptors would not
        // stretch to one each (plain HTTP only: HTTPS hosts present their own certificate).
        let shared = opts.scheme == Scheme::Http
            && opts
                .shared_listener
                .unwrap_or_else(|| hosts.len() > open_files_limit() / 4);
        let shared = match shared {
            true => Some(bind_shared(opts.port).await?),
            false => None,
        };
        let shared_port = match &shared {
            Some(l) => Some(
                l.local_addr()
                    .map_err(|source| WireError::Shared { source })?
                    .port(),
            ),
            None => None,
        };
        let mut holes = Vec::new();
        for (i, info) in hosts.iter().enumerate() {
            let ip = Ipv4Addr::from(first.saturating_add(i as u32));
            let wanted = SocketAddr::V4(SocketAddrV4::new(ip, opts.port.unwrap_or(0)));
            let bind_err = |source| WireError::Bind {
                addr: wanted,
                host: info.address.clone(),
                source,
            };
            if opts.offline == OfflineMode::BlackHole && info.fault == Some(FaultKind::Offline) {
                let (addr, hole) = black_hole(ip, opts.port).await.map_err(bind_err)?;
                holes.push(hole);
                listeners.push((info.clone(), addr, None));
                continue;
            }
            if let Some(port) = shared_port {
                let addr = SocketAddr::V4(SocketAddrV4::new(ip, port));
                listeners.push((info.clone(), addr, None));
                continue;
            }
            let listener = match TcpListener::bind(wanted).await {
                Ok(l) => l,
                // Port 5985 taken on that address (another lab?): fall back to an
                // ephemeral port rather than fail; the inventory carries the port.
                Err(_) if opts.port.is_some() => {
                    TcpListener::bind(SocketAddr::V4(SocketAddrV4::new(ip, 0)))
                        .await
                        .map_err(bind_err)?
                }
                Err(source) => return Err(bind_err(source)),
            };
            let addr = listener.local_addr().map_err(bind_err)?;
            listeners.push((info.clone(), addr, Some(listener)));
        }
        let by_addr = listeners
            .iter()
            .map(|(info, addr, _)| (*addr, info.id))
            .collect();
        let backend = Arc::new(LabBackend {
            lab: lab.clone(),
            by_addr,
            powershell_startup: opts.powershell_startup,
            costs: lab.spec().costs,
            seed: lab.spec().seed,
            wire_hosts: wire_hosts(&lab),
            requests: Mutex::new(None),
        });
        let server = Server::new(backend, opts.server);
        let ca = match opts.scheme {
            Scheme::Http => None,
            Scheme::Https => Some(LabCa::generate(&lab.domain_name())?),
        };
        let mut endpoints = Vec::with_capacity(listeners.len());
        let mut tasks = Vec::with_capacity(listeners.len());
        if let Some(listener) = shared {
            tasks.push(tokio::spawn(server.clone().serve(listener)));
        }
        for (info, addr, listener) in listeners {
            let Some(listener) = listener else {
                endpoints.push(Endpoint { info, addr });
                continue;
            };
            let task = match &ca {
                None => tokio::spawn(server.clone().serve(listener)),
                Some(ca) => {
                    let names = [info.dns_name.as_str(), info.address.as_str()];
                    let tls = ca.listener(&names, addr.ip())?;
                    tokio::spawn(server.clone().serve_https(listener, tls))
                }
            };
            tasks.push(task);
            endpoints.push(Endpoint { info, addr });
        }
        let mut running = RunningLab {
            lab,
            server,
            endpoints,
            tasks,
            _holes: holes,
            scheme: opts.scheme,
            ca: None,
        };
        if let Some(ca) = ca {
            let pem = ca.pem();
            let path = temp_ca_path();
            write_owner_only(&path, &pem).map_err(|source| WireError::CaFile {
                path: path.clone(),
                source,
            })?;
            running.ca = Some((pem, path));
        }
        Ok(running)
    }

    /// HTTP or HTTPS.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The PEM of the CA behind an HTTPS lab's certificates.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca.as_ref().map(|(pem, _)| pem.as_str())
    }

    /// The owner-only temporary file holding [`RunningLab::ca_pem`] while the lab runs.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca.as_ref().map(|(_, path)| path.as_path())
    }

    /// The model behind the listeners (ground truth for tests).
    pub fn lab(&self) -> &Lab {
        &self.lab
    }

    /// Every member host and its listener address, in host order.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// Every command line clients started on any host (for audits in tests).
    pub fn command_log(&self) -> Vec<String> {
        self.server.command_log()
    }

    /// Starts the request log (off by default: it costs memory at scale): from now on every
    /// TCP connection and HTTP request any host sees is kept, up to [`REQUEST_LOG_LIMIT`].
    /// Starting it again clears it.
    pub fn record_requests(&self) {
        *self.requests().lock().unwrap_or_else(|p| p.into_inner()) = Some(Vec::new());
    }

    /// The request log so far (empty unless [`RunningLab::record_requests`] started it),
    /// in the order the steps ended.
    pub fn request_log(&self) -> Vec<WireRecord> {
        self.requests()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default()
    }

    /// The request log of the host listening on `listener`, in arrival order.
    pub fn request_log_of(&self, listener: SocketAddr) -> Vec<WireRecord> {
        let mut log: Vec<WireRecord> = self
            .request_log()
            .into_iter()
            .filter(|r| r.listener == listener)
            .collect();
        log.sort_by_key(WireRecord::at);
        log
    }

    fn requests(&self) -> &Mutex<Option<Vec<WireRecord>>> {
        &self.server.backend().requests
    }

    /// Open WinRS shells across all hosts.
    pub fn open_shells(&self) -> usize {
        self.server.open_shells()
    }

    /// An inventory in Ansible's YAML shape listing every host with its address, port and
    /// local administrator credentials (lab secrets only), and in `all.vars` the domain
    /// account that may reset machine passwords (`trustsweep_repair_user/_password`).
    /// An HTTPS lab names its CA as `ansible_winrm_ca_trust_path` ([`RunningLab::ca_file`]).
    pub fn inventory_yaml(&self) -> String {
        self.inventory_yaml_with_ca(self.ca_file())
    }

    /// [`RunningLab::inventory_yaml`] naming `ca_path` as the CA file of an HTTPS lab
    /// (for a copy of [`RunningLab::ca_pem`] that outlives the lab's temporary one).
    pub fn inventory_yaml_with_ca(&self, ca_path: Option<&Path>) -> String {
        let repair = self.lab.repair_credentials();
        let logon_test = self.lab.helpdesk_credentials();
        let mut y = String::new();
        let _ = writeln!(
            y,
            "# trustsweep lab inventory (Ansible YAML). Lab secrets only: never reuse them."
        );
        let _ = writeln!(y, "all:");
        let _ = writeln!(y, "  vars:");
        let _ = writeln!(y, "    ansible_connection: winrm");
        let _ = writeln!(y, "    ansible_winrm_transport: ntlm");
        match self.scheme {
            Scheme::Http => {
                let _ = writeln!(y, "    ansible_winrm_scheme: http");
            }
            Scheme::Https => {
                let _ = writeln!(y, "    ansible_winrm_scheme: https");
                let _ = writeln!(y, "    ansible_winrm_server_cert_validation: validate");
                if let Some(path) = ca_path {
                    let _ = writeln!(
                        y,
                        "    ansible_winrm_ca_trust_path: {}",
                        yaml_str(&path.to_string_lossy())
                    );
                }
            }
        }
        let _ = writeln!(
            y,
            "    trustsweep_domain: {}",
            yaml_str(&self.lab.domain_name())
        );
        let _ = writeln!(y, "    trustsweep_repair_user: {}", yaml_str(&repair.user));
        let _ = writeln!(
            y,
            "    trustsweep_repair_password: {}",
            yaml_str(repair.password.expose_secret())
        );
        // The domain-logon test uses the least-privileged account, never the repair one.
        let _ = writeln!(
            y,
            "    trustsweep_logon_test_user: {}",
            yaml_str(&logon_test.user)
        );
        let _ = writeln!(
            y,
            "    trustsweep_logon_test_password: {}",
            yaml_str(logon_test.password.expose_secret())
        );
        let _ = writeln!(y, "  children:");
        let _ = writeln!(y, "    lab_members:");
        let _ = writeln!(y, "      hosts:");
        for ep in &self.endpoints {
            let _ = writeln!(y, "        {}:", yaml_str(&ep.info.address));
            let _ = writeln!(
                y,
                "          ansible_host: {}",
                yaml_str(&ep.addr.ip().to_string())
            );
            let _ = writeln!(y, "          ansible_port: {}", ep.addr.port());
            let _ = writeln!(
                y,
                "          ansible_user: {}",
                yaml_str(&ep.info.local_admin.user)
            );
            let _ = writeln!(
                y,
                "          ansible_password: {}",
                yaml_str(ep.info.local_admin.password.expose_secret())
            );
        }
        y
    }
}

/// What the wire keeps of every host, by id.
fn wire_hosts(lab: &Lab) -> Vec<WireHost> {
    lab.hosts()
        .iter()
        .map(|info| WireHost {
            latency: lab.latency(info.id),
            hung: info.fault == Some(FaultKind::Hung),
            powershell_starts: AtomicU32::new(0),
        })
        .collect()
}

/// The soft limit on open files (`/proc/self/limits`; 1024, the usual default, where it
/// cannot be read).
fn open_files_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|soft| soft.parse().ok())
        })
        .unwrap_or(1024)
}

/// One listener on the wildcard address for every host: each connection's local address
/// (`127.10.x.y`) tells the host, and connections to any address not in the lab (another
/// interface) are closed unanswered, as [`Backend::identity`] knows no host there. Linux
/// delivers connections to any `127.0.0.0/8` address to it; one descriptor serves 60,000
/// hosts. The port given (5985) when free, else an ephemeral one.
///
/// Its accept queue is [`SHARED_BACKLOG`] deep rather than tokio's default of 1024: it
/// stands for thousands of machines, each with its own queue, and a sweep opening two
/// connections per host at a concurrency of 1024 overflowed one queue of 1024, so Linux
/// dropped SYNs and those hosts paid the client's SYN retransmissions (1, 3, 7, 15 s …),
/// which no real fleet of separate listeners would cost (measured, BENCHMARKS.md).
async fn bind_shared(port: Option<u16>) -> Result<TcpListener, WireError> {
    let listen = |p| -> std::io::Result<TcpListener> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        // As TcpListener::bind does on Unix: a restarted lab can take the port at once.
        socket.set_reuseaddr(true)?;
        socket.bind(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, p)))?;
        socket.listen(SHARED_BACKLOG)
    };
    match listen(port.unwrap_or(0)) {
        Ok(l) => Ok(l),
        Err(_) if port.is_some() => listen(0).map_err(|source| WireError::Shared { source }),
        Err(source) => Err(WireError::Shared { source }),
    }
}

/// The accept queue of the shared listener (Linux caps it at `net.core.somaxconn`, 4096 by
/// default since 5.4).
const SHARED_BACKLOG: u32 = 4096;

/// A black-holed host ([`OfflineMode::BlackHole`]): a listener with a backlog of 0 whose
/// accept queue holds one connection of the lab's own, never accepted, so Linux drops
/// every further SYN to it unanswered.
async fn black_hole(
    ip: Ipv4Addr,
    port: Option<u16>,
) -> std::io::Result<(SocketAddr, (TcpListener, tokio::net::TcpStream))> {
    let listen = |p| -> std::io::Result<TcpListener> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::V4(SocketAddrV4::new(ip, p)))?;
        socket.listen(0)
    };
    let listener = match listen(port.unwrap_or(0)) {
        Ok(l) => l,
        Err(_) if port.is_some() => listen(0)?,
        Err(e) => return Err(e),
    };
    let addr = listener.local_addr()?;
    let plug = tokio::net::TcpStream::connect(addr).await?;
    Ok((addr, (listener, plug)))
}

/// A fresh path in the temporary directory for an HTTPS lab's CA.
fn temp_ca_path() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("trustsweep-lab-ca-{}-{n}.pem", std::process::id()))
}

/// Writes a file readable by its owner only (mode 0600 on Unix): inventories and CA keys
/// the lab writes hold lab secrets.
pub fn write_owner_only(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(path)?;
    f.write_all(text.as_bytes())
}

/// A YAML scalar in single quotes (no escapes needed but doubled quotes).
fn yaml_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
