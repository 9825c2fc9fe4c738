//! `trustsweep run`: one command line on one host, output streamed as it arrives, exit
//! code passed through. The smallest end-to-end use of the `winrm` crate.

use std::path::PathBuf;

use clap::Args;
use winrm::session::{Session, SessionConfig, Stream};
use winrm::transport::{AuthMethod, Endpoint, Scheme};

use crate::exit;
use crate::heading;
use crate::reporter::console;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Host to connect to, as HOST or HOST:PORT.
    #[arg(long, value_name = "HOST[:PORT]", help_heading = heading::CONNECTION)]
    host: String,
    /// User to connect as (DOMAIN\user, user@domain or a local user). The password comes
    /// from TRUSTSWEEP_PASSWORD or a prompt, never from the command line.
    #[arg(long, short = 'u', help_heading = heading::CONNECTION)]
    user: String,
    /// http (port 5985, NTLM with message encryption) or https (port 5986).
    #[arg(long, default_value = "http", help_heading = heading::CONNECTION)]
    scheme: Scheme,
    /// Extra CA certificate(s) (PEM) to trust for HTTPS, besides the system roots.
    #[arg(long, value_name = "FILE", help_heading = heading::CONNECTION)]
    ca_file: Option<PathBuf>,
    /// Do not verify the HTTPS certificate. Dangerous: anyone on the path can read the password.
    #[arg(long, help_heading = heading::CONNECTION)]
    insecure_skip_tls_verify: bool,
    /// ntlm, or basic (HTTPS only).
    #[arg(long, default_value = "ntlm", help_heading = heading::CONNECTION)]
    auth: AuthMethod,
    /// Run the argument as a PowerShell script instead of a cmd line.
    #[arg(long)]
    powershell: bool,
    /// Connect timeout in seconds.
    #[arg(long, default_value_t = 10, help_heading = heading::CONNECTION)]
    connect_timeout: u64,
    /// WS-Management operation timeout in seconds (how long one Receive may wait).
    #[arg(long, default_value_t = 20, help_heading = heading::CONNECTION)]
    operation_timeout: u64,
    /// The command line (or script with --powershell).
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

pub async fn main(args: RunArgs) -> i32 {
    let (host, port) = match split_host_port(&args.host) {
        Ok(hp) => hp,
        Err(e) => {
            console::failed(Some("run"), &e);
            return exit::USAGE;
        }
    };
    let password = match crate_password(
        "TRUSTSWEEP_PASSWORD",
        &format!("Password for {}@{}: ", args.user, host),
    ) {
        Ok(p) => p,
        Err(e) => {
            console::failed(Some("run"), &e);
            return exit::USAGE;
        }
    };
    let endpoint = Endpoint::new(host, port, args.scheme);
    let mut cfg = SessionConfig::new(endpoint, args.auth, args.user.clone(), password);
    cfg.tls.ca_file = args.ca_file.clone();
    cfg.tls.dangerous_skip_verify = args.insecure_skip_tls_verify;
    cfg.connect_timeout = std::time::Duration::from_secs(args.connect_timeout);
    cfg.operation_timeout = std::time::Duration::from_secs(args.operation_timeout);
    cfg.read_timeout = cfg.operation_timeout + std::time::Duration::from_secs(10);
    let mut session = match Session::new(cfg) {
        Ok(s) => s,
        Err(e) => {
            console::failed(Some("run"), &e);
            return exit::USAGE;
        }
    };
    // PowerShell's stderr is a CLIXML document: decoded once it is complete.
    let on_output =
        |stream: Stream, data: &[u8]| console::run_output(stream, data, args.powershell);
    let result = if args.powershell {
        let script = args.command.join(" ");
        let (cmd, cmd_args) = winrm::powershell::command_line(&script);
        session
            .run_streaming(&cmd, &cmd_args, None, on_output)
            .await
    } else {
        let (cmd, rest) = match args.command.split_first() {
            Some((c, r)) => (c.clone(), r.to_vec()),
            None => return exit::USAGE,
        };
        session.run_streaming(&cmd, &rest, None, on_output).await
    };
    match result {
        Ok(out) => {
            if args.powershell && !out.stderr.is_empty() {
                console::run_powershell_errors(&out.stderr_text());
            }
            let _ = session.close().await;
            // A process exit status keeps only 8 bits on Unix: map codes that would wrap
            // (256, Windows' 1603, ...) to 1 rather than let a failure read as success.
            match out.exit_code {
                0 => 0,
                c @ 1..=255 => i32::try_from(c).unwrap_or(1),
                _ => 1,
            }
        }
        Err(e) => {
            console::failed(
                Some("run"),
                &format_args!("{}: {}", args.host, crate::remote::error_text(&e)),
            );
            // Delete the shell (bounded), so a failed run leaves none behind.
            let _ = session.close().await;
            winrm::session::finish_cleanup(std::time::Duration::from_secs(10)).await;
            exit::INCOMPLETE
        }
    }
}

/// `--host` is not `HOST`, `HOST:PORT` or `[IPv6]:PORT`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HostPortError {
    /// `[` without `]`.
    #[error("bad host '{0}': missing ']'")]
    MissingBracket(String),
    /// `[IPv6]:port` whose port is no port.
    #[error("bad port in '{0}'")]
    BadBracketedPort(String),
    /// `host:port` whose port is no port.
    #[error("bad port '{port}' in '{spec}'")]
    BadPort {
        /// What came after the colon.
        port: String,
        /// The whole `--host`.
        spec: String,
    },
}

fn split_host_port(s: &str) -> Result<(String, Option<u16>), HostPortError> {
    if let Some(rest) = s.strip_prefix('[') {
        // [IPv6]:port
        let (h, tail) = rest
            .split_once(']')
            .ok_or_else(|| HostPortError::MissingBracket(s.to_string()))?;
        let port = match tail.strip_prefix(':') {
            Some(p) => Some(
                p.parse()
                    .map_err(|_| HostPortError::BadBracketedPort(s.to_string()))?,
            ),
            None => None,
        };
        return Ok((h.to_string(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Ok((
            h.to_string(),
            Some(p.parse().map_err(|_| HostPortError::BadPort {
                port: p.to_string(),
                spec: s.to_string(),
            })?),
        )),
        _ => Ok((s.to_string(), None)),
    }
}

/// No password could be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// The variable is unset and there is no terminal to prompt on.
    #[error("no password: set {var} or run on a terminal to be prompted")]
    NoTerminal {
        /// The environment variable that would have held it.
        var: String,
    },
    /// The prompt failed.
    #[error("cannot read password: {0}")]
    Prompt(#[source] std::io::Error),
}

/// A password from an environment variable, or a no-echo prompt on a terminal.
pub fn crate_password(var: &str, prompt: &str) -> Result<winrm::Secret, PasswordError> {
    if let Ok(v) = std::env::var(var) {
        return Ok(winrm::secret::secret(v));
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Err(PasswordError::NoTerminal {
            var: var.to_string(),
        });
    }
    rpassword::prompt_password(prompt)
        .map(winrm::secret::secret)
        .map_err(PasswordError::Prompt)
}
