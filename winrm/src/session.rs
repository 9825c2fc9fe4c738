//! A host session: one transport (one connection, one handshake) and one WinRS `cmd`
//! shell, reused for every command run on the host.
//!
//! A command follows MS-WSMV 3.1.4: Command, optional Send of stdin (chunked to fit the
//! envelope, `End` on the last chunk; such a command is started with
//! `WINRS_CONSOLEMODE_STDIN=FALSE`), Receive until `CommandState/Done` with its `ExitCode` (an
//! `OperationTimeout` fault, WSManFault 2150858793, only means "nothing yet, poll again",
//! MS-WSMV 3.1.4.14), then a Signal `terminate` (required after Done by the same section).
//! The command's result does not wait for that Signal: it is sent before the session's
//! next request (a next command, or the Delete of [`Session::close`]), so a session that
//! runs one command and is closed in the background ([`Session::close_in_background`])
//! costs its caller connect, NEGOTIATE, AUTHENTICATE with the Create on it (see
//! [`crate::transport`]), Command and Receive; Signal and Delete follow on their own.
//! The shell is created lazily with `WINRS_CODEPAGE=65001` and `WINRS_NOPROFILE`, and
//! re-created once if the server says it no longer knows it.
//!
//! A command is bounded however the server behaves: it must reach `Done` within the
//! session's command timeout ([`Error::CommandTimeout`]) and its output stay under the
//! session's cap ([`Error::OutputTooLarge`]); either way it is told to terminate before
//! the session's next request (MS-WSMV 3.1.4.12).
//!
//! Every shell created is deleted (leaked shells count against `MaxShellsPerUser`, 30,
//! for their two-hour idle timeout; MS-WSMV 2.2.4.42, DOMAIN.md "WinRM details"). A caller
//! that is cut off — its future dropped by a deadline, an interrupt, an error path that
//! never reaches [`Session::close`] — cannot run more code, so the clean-up does not rely
//! on it: dropping a [`Session`] with an open shell spawns a bounded best-effort Delete on
//! a fresh connection ([`CLEANUP_TIMEOUT`]); a Create in flight runs in its own task that
//! deletes the shell it gets back if nobody is left to use it; and open shells are kept in
//! a process-wide registry, so that [`finish_cleanup`] can wait for those deletions and
//! [`delete_open_shells`] can delete every shell before the process exits.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::error::Error;
use crate::powershell;
use crate::secret::Secret;
use crate::soap::{self, FaultKind, Request, RequestContext, Response, ShellOptions};
use crate::transport::{AuthMethod, Endpoint, TlsOptions, Transport, TransportConfig};

/// The client's default `MaxEnvelopeSize`: 150 KiB, which Windows Server 2008 R2 accepts
/// (newer hosts allow 500 KiB; pywinrm and pypsrp send the same default).
pub const DEFAULT_MAX_ENVELOPE_SIZE: u32 = 153_600;

/// The default cap on a command's output, stdout and stderr together (64 MiB): past it the
/// command is stopped ([`Error::OutputTooLarge`]).
pub const MAX_OUTPUT_BYTES: usize = 64 * 1024 * 1024;

/// The default time a command may take from its Command to its `Done` (one hour): a
/// server that never says Done cannot keep a session polling for ever.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(3600);

/// Everything needed to open a session on one host.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Where.
    pub endpoint: Endpoint,
    /// NTLM or Basic.
    pub auth: AuthMethod,
    /// The connecting user (`DOMAIN\user`, `user@domain`, `user`).
    pub user: String,
    /// Its password.
    pub password: Secret,
    /// TLS settings (HTTPS).
    pub tls: TlsOptions,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// WS-Man `OperationTimeout` sent to the server (how long a Receive may block).
    pub operation_timeout: Duration,
    /// HTTP read timeout; must be longer than `operation_timeout`.
    pub read_timeout: Duration,
    /// `MaxEnvelopeSize` we announce, and the budget for our own requests; replies larger
    /// than it (plus framing, [`crate::transport::reply_limit`]) are refused.
    pub max_envelope_size: u32,
    /// How long one command may run, Command to `Done` ([`Error::CommandTimeout`]).
    pub command_timeout: Duration,
    /// The most output (stdout and stderr together) one command may produce
    /// ([`Error::OutputTooLarge`]).
    pub max_output_bytes: usize,
}

impl SessionConfig {
    /// A configuration with the usual defaults: 10 s connect, 20 s operation timeout,
    /// 30 s read timeout (pywinrm's pair), 150 KiB envelopes, one hour and 64 MiB of output
    /// per command.
    pub fn new(
        endpoint: Endpoint,
        auth: AuthMethod,
        user: impl Into<String>,
        password: Secret,
    ) -> Self {
        SessionConfig {
            endpoint,
            auth,
            user: user.into(),
            password,
            tls: TlsOptions::default(),
            connect_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(20),
            read_timeout: Duration::from_secs(30),
            max_envelope_size: DEFAULT_MAX_ENVELOPE_SIZE,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            max_output_bytes: MAX_OUTPUT_BYTES,
        }
    }

    fn validate(&self) -> Result<(), Error> {
        if self.read_timeout <= self.operation_timeout {
            return Err(Error::InvalidConfig(format!(
                "the read timeout ({:?}) must be longer than the operation timeout ({:?}), or every long poll would look like a dead server",
                self.read_timeout, self.operation_timeout
            )));
        }
        if self.max_envelope_size < 8192 {
            return Err(Error::InvalidConfig(format!(
                "max envelope size {} is below the 8192 bytes WS-Management requires (MS-WSMV 3.1.4.1.7)",
                self.max_envelope_size
            )));
        }
        if self.command_timeout.is_zero() || self.max_output_bytes == 0 {
            return Err(Error::InvalidConfig(
                "the command timeout and the output cap must be above zero".into(),
            ));
        }
        Ok(())
    }
}

/// Which output stream a chunk belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// The result of one command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    /// Raw stdout bytes (UTF-8, as the shell runs with code page 65001).
    pub stdout: Vec<u8>,
    /// Raw stderr bytes. For PowerShell, see [`Output::stderr_text`].
    pub stderr: Vec<u8>,
    /// The process exit code.
    pub exit_code: i64,
}

impl Output {
    /// stdout as text (lossy UTF-8).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    /// stderr as readable text: a `#< CLIXML` document from PowerShell is decoded to its
    /// error messages.
    pub fn stderr_text(&self) -> String {
        powershell::decode_clixml(&String::from_utf8_lossy(&self.stderr))
    }
}

/// What a Receive's `CommandState` says: `None` while the command runs, `Some(Ok(code))`
/// once it is done, `Some(Err(()))` when it is done without an `ExitCode`. MS-WSMV 2.2.4.7
/// puts the exit code in the Done state; without one the outcome is unknown, never success
/// (pywinrm's `get_command_output_raw` fails on it too).
fn finished(state: Option<&soap::CommandState>) -> Option<Result<i64, ()>> {
    let state = state.filter(|s| s.done)?;
    Some(state.exit_code.ok_or(()))
}

/// How long one best-effort Delete of a shell may take when its session was cut off or
/// its connection is unusable (connect, handshake and Delete together).
pub const CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);

/// A shell the process has open: what it takes to delete it without its session.
struct OpenShell {
    transport: Transport,
    ctx: RequestContext,
    shell_id: String,
}

#[derive(Default)]
struct Registry {
    next: u64,
    open: HashMap<u64, OpenShell>,
    /// Deletions (and in-flight Creates) running on their own, not yet awaited.
    pending: Vec<JoinHandle<()>>,
}

fn registry() -> MutexGuard<'static, Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    // A poisoned lock only means a panic elsewhere mid-update; the table stays usable.
    REGISTRY
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

fn register(shell: OpenShell) -> u64 {
    let mut r = registry();
    r.next = r.next.wrapping_add(1);
    let id = r.next;
    r.open.insert(id, shell);
    id
}

fn unregister(id: Option<u64>) {
    if let Some(id) = id {
        registry().open.remove(&id);
    }
}

/// Runs `fut` on its own task (if there is a runtime) and records it for
/// [`finish_cleanup`].
fn spawn_tracked(fut: impl std::future::Future<Output = ()> + Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            // Boxed: tokio moves a spawned future by value (into its task, and its stage
            // on completion); a box moves a pointer.
            let task = rt.spawn(Box::pin(fut));
            let mut r = registry();
            r.pending.retain(|t| !t.is_finished());
            r.pending.push(task);
        }
        Err(_) => tracing::warn!("no async runtime left to delete an abandoned WinRS shell"),
    }
}

/// Deletes `shell_id` over `transport` (a fresh connection), within [`CLEANUP_TIMEOUT`].
/// Best effort: returns whether the server confirmed (or no longer knew the shell).
async fn delete_shell(mut transport: Transport, ctx: RequestContext, shell_id: String) -> bool {
    let endpoint = transport.endpoint().clone();
    let xml = request_xml(
        &ctx,
        &Request::Delete {
            shell_id: shell_id.clone(),
        },
    );
    let res = tokio::time::timeout(CLEANUP_TIMEOUT, transport.send(&xml)).await;
    let ok = match res {
        Ok(Ok(reply)) => match soap::parse_response(&reply.body) {
            Ok(_) => true,
            Err(soap::SoapError::Fault(f)) if f.kind == FaultKind::InvalidSelectors => true,
            Err(e) => {
                tracing::warn!(%endpoint, shell_id, error = %e, "deleting an abandoned shell failed");
                false
            }
        },
        Ok(Err(e)) => {
            tracing::warn!(%endpoint, shell_id, error = %e, "deleting an abandoned shell failed");
            false
        }
        Err(_) => {
            tracing::warn!(%endpoint, shell_id, "deleting an abandoned shell timed out");
            false
        }
    };
    transport.disconnect();
    ok
}

/// Waits, at most `within`, for every shell deletion that dropped sessions started on
/// their own (and for Creates still in flight for them). Call it before the process or
/// the runtime ends, e.g. after each fan-out over hosts. Returns how many were still
/// running when the time ran out (they go on running while the runtime does).
pub async fn finish_cleanup(within: Duration) -> usize {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let tasks = std::mem::take(&mut registry().pending);
        if tasks.is_empty() {
            return 0;
        }
        let mut left = 0usize;
        for task in tasks {
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                left += 1;
            }
        }
        if left > 0 {
            return left;
        }
    }
}

/// Deletes every shell this process still has open, whatever session holds it, each on a
/// fresh connection, and waits at most `within`: for an interrupt that ends the process
/// now. Returns how many deletions did not finish in time.
pub async fn delete_open_shells(within: Duration) -> usize {
    let open: Vec<OpenShell> = registry().open.drain().map(|(_, s)| s).collect();
    for shell in open {
        spawn_tracked(async move {
            delete_shell(shell.transport, shell.ctx, shell.shell_id).await;
        });
    }
    finish_cleanup(within).await
}

/// How many shells this process has open (created and not yet deleted), over all sessions.
pub fn open_shell_count() -> usize {
    registry().open.len()
}

fn request_xml(ctx: &RequestContext, req: &Request) -> String {
    soap::build_request(ctx, &soap::new_message_id(), req)
}

/// A WinRM session with one host.
///
/// Dropping a session whose shell is still open deletes the shell in the background
/// (bounded; see the module documentation); [`Session::close`] does it in line.
#[derive(Debug)]
pub struct Session {
    transport: Transport,
    ctx: RequestContext,
    shell_id: Option<String>,
    /// This session's entry in the registry of open shells.
    registration: Option<u64>,
    max_envelope_size: u32,
    command_timeout: Duration,
    max_output_bytes: usize,
    /// A command that is Done but not yet signalled (shell, command): the Signal goes out
    /// before this session's next request.
    unsignalled: Option<(String, String)>,
}

impl Drop for Session {
    fn drop(&mut self) {
        let Some(shell_id) = self.shell_id.take() else {
            return;
        };
        unregister(self.registration.take());
        // The old connection may be mid-request (the future was dropped while awaiting a
        // reply): delete on a fresh one.
        let transport = self.transport.blank();
        let ctx = self.ctx.clone();
        spawn_tracked(async move {
            delete_shell(transport, ctx, shell_id).await;
        });
    }
}

impl Session {
    /// Creates a session; nothing is sent until the first command.
    pub fn new(cfg: SessionConfig) -> Result<Self, Error> {
        cfg.validate()?;
        let ctx = RequestContext {
            to: cfg.endpoint.url(),
            max_envelope_size: cfg.max_envelope_size,
            operation_timeout: cfg.operation_timeout,
            locale: "en-US".to_string(),
        };
        let transport = Transport::new(TransportConfig {
            endpoint: cfg.endpoint,
            auth: cfg.auth,
            user: cfg.user,
            password: cfg.password,
            tls: cfg.tls,
            connect_timeout: cfg.connect_timeout,
            read_timeout: cfg.read_timeout,
            max_reply_bytes: crate::transport::reply_limit(cfg.max_envelope_size),
        })?;
        Ok(Session {
            transport,
            ctx,
            shell_id: None,
            registration: None,
            max_envelope_size: cfg.max_envelope_size,
            command_timeout: cfg.command_timeout,
            max_output_bytes: cfg.max_output_bytes,
            unsignalled: None,
        })
    }

    /// The endpoint of this session.
    pub fn endpoint(&self) -> &Endpoint {
        self.transport.endpoint()
    }

    /// How many TCP connections (each with one NTLM handshake) this session has opened.
    pub fn connects(&self) -> u32 {
        self.transport.connects()
    }

    /// Connects and authenticates without running anything (a logon test).
    pub async fn connect(&mut self) -> Result<(), Error> {
        self.transport.connect().await
    }

    /// Runs a command line through the shell and collects its output.
    pub async fn run(
        &mut self,
        command: &str,
        args: &[String],
        stdin: Option<&[u8]>,
    ) -> Result<Output, Error> {
        self.run_streaming(command, args, stdin, |_, _| {}).await
    }

    /// Runs a PowerShell script the way admins and Ansible do
    /// (`powershell.exe -NoProfile -NonInteractive -EncodedCommand …`), with optional stdin
    /// (read by the script through `$input`). Secrets belong in stdin, never in the script.
    pub async fn run_powershell(
        &mut self,
        script: &str,
        stdin: Option<&[u8]>,
    ) -> Result<Output, Error> {
        let (shell_id, command_id) = {
            let (cmd, args) = powershell::command_line(script);
            self.start(&cmd, &args, stdin.is_some()).await?
        };
        // The command line (the script in base64 of UTF-16: kilobytes) is freed once the
        // command runs, not kept for as long as its output takes, on every host in flight.
        self.finish_command(&shell_id, &command_id, stdin, &mut |_, _| {})
            .await
    }

    /// Like [`Session::run`], calling `on_output` for every chunk as it arrives.
    pub async fn run_streaming(
        &mut self,
        command: &str,
        args: &[String],
        stdin: Option<&[u8]>,
        mut on_output: impl FnMut(Stream, &[u8]),
    ) -> Result<Output, Error> {
        let (shell_id, command_id) = self.start(command, args, stdin.is_some()).await?;
        self.finish_command(&shell_id, &command_id, stdin, &mut on_output)
            .await
    }

    /// Sends what is owed first (a Signal), opens the shell if needed and starts the
    /// command in it: (shell id, command id).
    async fn start(
        &mut self,
        command: &str,
        args: &[String],
        sends_stdin: bool,
    ) -> Result<(String, String), Error> {
        self.signal_finished().await?;
        let shell_id = self.shell().await?;
        match self
            .start_command(&shell_id, command, args, sends_stdin)
            .await
        {
            Err(e) if e.fault_kind() == Some(FaultKind::InvalidSelectors) => {
                // The server forgot our shell (idle timeout, service restart): open a new
                // one and try once more, as WinRb does.
                self.shell_id = None;
                unregister(self.registration.take());
                let shell_id = self.shell().await?;
                let id = self
                    .start_command(&shell_id, command, args, sends_stdin)
                    .await?;
                Ok((shell_id, id))
            }
            other => Ok((shell_id, other?)),
        }
    }

    async fn finish_command(
        &mut self,
        shell_id: &str,
        command_id: &str,
        stdin: Option<&[u8]>,
        on_output: &mut impl FnMut(Stream, &[u8]),
    ) -> Result<Output, Error> {
        // From here on the command runs on the host: however this ends early, it is told
        // to terminate before the session's next request (MS-WSMV 3.1.4.14: the Signal
        // that follows Done, or a terminate of a command still running, 3.1.4.12).
        self.unsignalled = Some((shell_id.to_string(), command_id.to_string()));
        let addr = self.transport.endpoint().addr();
        let deadline = tokio::time::Instant::now() + self.command_timeout;
        let timed_out = |this: &mut Self| {
            // A request may have been cut mid-flight: its connection is of no further use.
            this.transport.disconnect();
            Error::CommandTimeout {
                addr: addr.clone(),
                command_id: command_id.to_string(),
                after: this.command_timeout,
            }
        };
        if let Some(data) = stdin {
            match tokio::time::timeout_at(deadline, self.send_stdin(shell_id, command_id, data))
                .await
            {
                Ok(r) => r?,
                Err(_) => return Err(timed_out(self)),
            }
        }
        let mut out = Output::default();
        // Bounded by the deadline: every pass is one request, each within the read timeout.
        let exit_code = loop {
            let req = Request::Receive {
                shell_id: shell_id.to_string(),
                command_id: Some(command_id.to_string()),
                streams: vec!["stdout".into(), "stderr".into()],
            };
            let called = match tokio::time::timeout_at(deadline, self.call(&req)).await {
                Ok(r) => r,
                Err(_) => return Err(timed_out(self)),
            };
            let received = match called {
                Ok(Response::Received(r)) => r,
                Ok(other) => return Err(self.unexpected("ReceiveResponse", &other)),
                // MS-WSMV 3.1.4.14: no output within OperationTimeout; poll again.
                Err(e) if e.fault_kind() == Some(FaultKind::OperationTimedOut) => continue,
                Err(e) => return Err(e),
            };
            for chunk in received.chunks {
                if chunk
                    .command_id
                    .as_deref()
                    .is_some_and(|id| id != command_id)
                {
                    continue;
                }
                if chunk.data.is_empty() {
                    continue;
                }
                // Bounded: a runaway command cannot exhaust our memory. Past the cap it is
                // stopped (the terminate goes out before the next request).
                let kept = out.stdout.len().saturating_add(out.stderr.len());
                if kept.saturating_add(chunk.data.len()) > self.max_output_bytes {
                    return Err(Error::OutputTooLarge {
                        addr,
                        command_id: command_id.to_string(),
                        limit: self.max_output_bytes,
                    });
                }
                let (stream, buf) = match chunk.stream.as_str() {
                    "stdout" => (Stream::Stdout, &mut out.stdout),
                    "stderr" => (Stream::Stderr, &mut out.stderr),
                    _ => continue,
                };
                on_output(stream, &chunk.data);
                buf.extend_from_slice(&chunk.data);
            }
            match finished(received.state.as_ref()) {
                None => {}
                Some(Ok(code)) => break code,
                Some(Err(())) => {
                    return Err(Error::NoExitCode {
                        addr,
                        command_id: command_id.to_string(),
                    })
                }
            }
        };
        out.exit_code = exit_code;
        // MS-WSMV 3.1.4.14: after Done the client must still Signal the command; it goes
        // out before this session's next request (`unsignalled`, set above), so the result
        // does not wait for it.
        Ok(out)
    }

    /// Sends the Signal `terminate` owed to a finished command, if any (MS-WSMV 3.1.4.14).
    async fn signal_finished(&mut self) -> Result<(), Error> {
        let Some((shell_id, command_id)) = self.unsignalled.take() else {
            return Ok(());
        };
        let signal = Request::Signal {
            shell_id,
            command_id,
            code: soap::signal::TERMINATE.to_string(),
        };
        match self.call(&signal).await {
            Ok(_) => Ok(()),
            // The process is gone; a fault here changes nothing about the result.
            Err(Error::Fault(f)) => {
                tracing::debug!(fault = %f, "Signal after Done faulted");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn send_stdin(
        &mut self,
        shell_id: &str,
        command_id: &str,
        data: &[u8],
    ) -> Result<(), Error> {
        // Room for the payload: the envelope minus headers (about 1.5 KiB), in base64 (4/3).
        let budget = (self.max_envelope_size as usize).saturating_sub(2048) / 4 * 3;
        let chunk_size = budget.max(1024);
        let mut chunks: Vec<&[u8]> = data.chunks(chunk_size).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        let last = chunks.len().saturating_sub(1);
        for (i, chunk) in chunks.into_iter().enumerate() {
            let req = Request::Send {
                shell_id: shell_id.to_string(),
                command_id: command_id.to_string(),
                stream: "stdin".to_string(),
                data: chunk.to_vec(),
                end: i == last,
            };
            match self.call(&req).await? {
                Response::Sent => {}
                other => return Err(self.unexpected("SendResponse", &other)),
            }
        }
        Ok(())
    }

    /// Starts a command. One that will be sent stdin gets `WINRS_CONSOLEMODE_STDIN=FALSE`
    /// (MS-WSMV 3.1.4.11): its stdin is then a pipe, which PowerShell reads into `$input`;
    /// with TRUE it gets a console and `$input` stays empty (DOMAIN.md "WinRM details";
    /// Ansible's winrm connection sends `console_mode_stdin=(stdin_iterator is None)`).
    /// The others keep TRUE, pywinrm's default.
    async fn start_command(
        &mut self,
        shell_id: &str,
        command: &str,
        args: &[String],
        sends_stdin: bool,
    ) -> Result<String, Error> {
        let req = Request::Command {
            shell_id: shell_id.to_string(),
            command: command.to_string(),
            arguments: args.to_vec(),
            skip_cmd_shell: false,
            console_mode_stdin: !sends_stdin,
        };
        match self.call(&req).await? {
            Response::CommandStarted { command_id } => Ok(command_id),
            other => Err(self.unexpected("CommandResponse", &other)),
        }
    }

    /// Creates the shell. The Create runs on its own task holding the transport, so that
    /// if this session is dropped while it is in flight, the task still reads the reply
    /// and deletes the shell nobody will use; it is never resent once it may have reached
    /// the server (a second Create would open a second shell).
    async fn shell(&mut self) -> Result<String, Error> {
        if let Some(id) = &self.shell_id {
            return Ok(id.clone());
        }
        let xml = request_xml(
            &self.ctx,
            &Request::Create(ShellOptions {
                codepage: Some(65001),
                no_profile: true,
                environment: Vec::new(),
                working_directory: None,
                idle_timeout: None,
            }),
        );
        let blank = self.transport.blank();
        let mut transport = std::mem::replace(&mut self.transport, blank);
        let ctx = self.ctx.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        spawn_tracked(async move {
            let res = transport.send_with(&xml, false).await;
            if let Err((transport, Ok(reply))) = tx.send((transport, res)) {
                // Abandoned mid-Create (deadline, interrupt): delete what it created.
                if let Ok(Response::Created { shell_id }) = soap::parse_response(&reply.body) {
                    // Boxed: a rare path, kept out of every Create's future.
                    Box::pin(delete_shell(transport, ctx, shell_id)).await;
                }
            }
        });
        let (transport, res) = rx.await.map_err(|_| Error::ConnectionClosed {
            addr: self.transport.endpoint().addr(),
        })?;
        self.transport = transport;
        let reply = res?;
        let response = soap::parse_response(&reply.body)
            .map_err(|e| crate::transport::soap_error(self.transport.endpoint(), e))?;
        match response {
            Response::Created { shell_id } => {
                self.shell_id = Some(shell_id.clone());
                self.registration = Some(register(OpenShell {
                    transport: self.transport.blank(),
                    ctx: self.ctx.clone(),
                    shell_id: shell_id.clone(),
                }));
                Ok(shell_id)
            }
            other => Err(self.unexpected("CreateResponse", &other)),
        }
    }

    /// Deletes the shell (if one is open) and drops the connection. Bounded by
    /// [`CLEANUP_TIMEOUT`]; when the session's connection fails, the Delete is tried once
    /// more on a fresh one. If this future is dropped midway, dropping the session still
    /// deletes the shell.
    pub async fn close(mut self) -> Result<(), Error> {
        let Some(shell_id) = self.shell_id.clone() else {
            return Ok(());
        };
        let req = Request::Delete {
            shell_id: shell_id.clone(),
        };
        let signal_and_delete = async {
            // A Signal that fails on the connection leaves the Delete to the retry below.
            self.signal_finished().await?;
            self.call(&req).await
        };
        let res = match tokio::time::timeout(CLEANUP_TIMEOUT, signal_and_delete).await {
            Ok(r) => r,
            Err(_) => Err(Error::ReadTimeout {
                addr: self.transport.endpoint().addr(),
                after: CLEANUP_TIMEOUT,
            }),
        };
        self.transport.disconnect();
        let res = match res {
            Ok(_) => Ok(()),
            // Already gone (idle timeout, service restart).
            Err(e) if e.fault_kind() == Some(FaultKind::InvalidSelectors) => Ok(()),
            Err(e @ (Error::Fault(_) | Error::AccessDenied { .. })) => Err(e),
            Err(e) => {
                let fresh = self.transport.blank();
                // Boxed: a rare path, kept out of every close's future.
                if Box::pin(delete_shell(fresh, self.ctx.clone(), shell_id)).await {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        };
        // Deleted, or refused by the server itself: nothing more to try from here.
        self.shell_id = None;
        unregister(self.registration.take());
        res
    }

    /// Closes the session on its own task, tracked like the clean-ups of dropped sessions
    /// ([`finish_cleanup`] waits for it, [`delete_open_shells`] covers its shell): for a
    /// caller whose result is in and who should not wait for Signal and Delete. Without a
    /// runtime it closes nothing here, and dropping the session deletes the shell.
    pub fn close_in_background(self) {
        self.close_in_background_holding(());
    }

    /// [`Session::close_in_background`], keeping `guard` alive until the close is over
    /// (dropped at once when there is nothing to close): e.g. the caller's share of a
    /// concurrency limit, so that connections still closing count against it and a
    /// sweep never holds more connections than it runs hosts.
    pub fn close_in_background_holding<G: Send + 'static>(self, guard: G) {
        if self.shell_id.is_none() {
            return;
        }
        spawn_tracked(async move {
            let _guard = guard;
            let endpoint = self.transport.endpoint().clone();
            if let Err(e) = self.close().await {
                tracing::debug!(%endpoint, error = %e, "closing the session failed");
            }
        });
    }

    async fn call(&mut self, req: &Request) -> Result<Response, Error> {
        let xml = request_xml(&self.ctx, req);
        // Command and Send start or feed a process, Create opens a shell, Receive hands out
        // output once: none is resent after a connection broke with it on the wire.
        let idempotent = !matches!(
            req,
            Request::Command { .. }
                | Request::Send { .. }
                | Request::Create(_)
                | Request::Receive { .. }
        );
        let reply = self.transport.send_with(&xml, idempotent).await?;
        soap::parse_response(&reply.body)
            .map_err(|e| crate::transport::soap_error(self.transport.endpoint(), e))
    }

    fn unexpected(&self, expected: &str, got: &Response) -> Error {
        Error::Soap {
            addr: self.transport.endpoint().addr(),
            source: soap::SoapError::Unexpected {
                expected: expected.to_string(),
                found: format!("{got:?}"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receive_response(state: &str) -> soap::ReceiveOutput {
        let xml = format!(
            r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Header><a:Action>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/ReceiveResponse</a:Action><a:MessageID>uuid:1</a:MessageID><a:RelatesTo>uuid:2</a:RelatesTo></s:Header><s:Body><rsp:ReceiveResponse><rsp:Stream Name="stdout" CommandId="C1" End="true"></rsp:Stream>{state}</rsp:ReceiveResponse></s:Body></s:Envelope>"#
        );
        match soap::parse_response(xml.as_bytes()) {
            Ok(Response::Received(r)) => r,
            other => panic!("not a ReceiveResponse: {other:?}"),
        }
    }

    /// A session that never opened a shell has nothing to close: the guard it is handed
    /// (a host's engine slot) is let go at once, on a runtime or without one.
    #[test]
    fn nothing_to_close_lets_the_guard_go_at_once() {
        let new_session = || {
            Session::new(SessionConfig::new(
                Endpoint::new("127.0.0.1", Some(5985), crate::transport::Scheme::Http),
                AuthMethod::Ntlm,
                "u",
                crate::secret::secret("p"),
            ))
            .expect("session")
        };
        let guard = std::sync::Arc::new(());
        new_session().close_in_background_holding(guard.clone());
        assert_eq!(std::sync::Arc::strong_count(&guard), 1, "without a runtime");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            new_session().close_in_background_holding(guard.clone());
            assert_eq!(std::sync::Arc::strong_count(&guard), 1, "on a runtime");
        });
    }

    #[test]
    fn done_needs_an_exit_code() {
        // MS-WSMV 2.2.4.7: Done carries ExitCode; pywinrm fails a Done without one.
        let done = receive_response(
            r#"<rsp:CommandState CommandId="C1" State="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"><rsp:ExitCode>3</rsp:ExitCode></rsp:CommandState>"#,
        );
        assert_eq!(finished(done.state.as_ref()), Some(Ok(3)));
        let no_code = receive_response(
            r#"<rsp:CommandState CommandId="C1" State="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"/>"#,
        );
        assert_eq!(finished(no_code.state.as_ref()), Some(Err(())));
        let running = receive_response(
            r#"<rsp:CommandState CommandId="C1" State="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running"/>"#,
        );
        assert_eq!(finished(running.state.as_ref()), None);
        assert_eq!(finished(None), None);
    }
}
