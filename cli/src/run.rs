//! `trustsweep run`: one command line on one host, output streamed as it arrives, exit
//! code passed through. The smallest end-to-end use of the `winrm` crate.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use winrm::session::{Session, SessionConfig, Stream};
use winrm::transport::{AuthMethod, Endpoint, Scheme};

use crate::exit;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Host to connect to, as HOST or HOST:PORT.
    #[arg(long, value_name = "HOST[:PORT]")]
    host: String,
    /// User to connect as (DOMAIN\user, user@domain or a local user). The password comes
    /// from TRUSTSWEEP_PASSWORD or a prompt, never from the command line.
    #[arg(long, short = 'u')]
    user: String,
    /// http (port 5985, NTLM with message encryption) or https (port 5986).
    #[arg(long, default_value = "http")]
    scheme: Scheme,
    /// Extra CA certificate(s) (PEM) to trust for HTTPS, besides the system roots.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Do not verify the HTTPS certificate. Dangerous: anyone on the path can read the password.
    #[arg(long)]
    insecure_skip_tls_verify: bool,
    /// ntlm, or basic (HTTPS only).
    #[arg(long, default_value = "ntlm")]
    auth: AuthMethod,
    /// Run the argument as a PowerShell script instead of a cmd line.
    #[arg(long)]
    powershell: bool,
    /// Connect timeout in seconds.
    #[arg(long, default_value_t = 10)]
    connect_timeout: u64,
    /// WS-Management operation timeout in seconds (how long one Receive may wait).
    #[arg(long, default_value_t = 20)]
    operation_timeout: u64,
    /// The command line (or script with --powershell).
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

pub async fn main(args: RunArgs) -> i32 {
    let (host, port) = match split_host_port(&args.host) {
        Ok(hp) => hp,
        Err(e) => {
            eprintln!("trustsweep run: {e}");
            return exit::USAGE;
        }
    };
    let password = match crate_password(
        "TRUSTSWEEP_PASSWORD",
        &format!("Password for {}@{}: ", args.user, host),
    ) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("trustsweep run: {e}");
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
            eprintln!("trustsweep run: {e}");
            return exit::USAGE;
        }
    };
    let on_output = |stream: Stream, data: &[u8]| match stream {
        Stream::Stdout => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(data);
            let _ = out.flush();
        }
        Stream::Stderr if !args.powershell => {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(data);
            let _ = err.flush();
        }
        // PowerShell's stderr is a CLIXML document: decoded once it is complete.
        Stream::Stderr => {}
    };
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
                let text = out.stderr_text();
                if !text.is_empty() {
                    eprintln!("{}", text.trim_end());
                }
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
            eprintln!(
                "trustsweep run: {}: {}",
                args.host,
                crate::remote::error_text(&e)
            );
            // Delete the shell (bounded), so a failed run leaves none behind.
            let _ = session.close().await;
            winrm::session::finish_cleanup(std::time::Duration::from_secs(10)).await;
            exit::INCOMPLETE
        }
    }
}

fn split_host_port(s: &str) -> Result<(String, Option<u16>), String> {
    if let Some(rest) = s.strip_prefix('[') {
        // [IPv6]:port
        let (h, tail) = rest
            .split_once(']')
            .ok_or_else(|| format!("bad host '{s}': missing ']'"))?;
        let port = match tail.strip_prefix(':') {
            Some(p) => Some(p.parse().map_err(|_| format!("bad port in '{s}'"))?),
            None => None,
        };
        return Ok((h.to_string(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Ok((
            h.to_string(),
            Some(p.parse().map_err(|_| format!("bad port '{p}' in '{s}'"))?),
        )),
        _ => Ok((s.to_string(), None)),
    }
}

/// A password from an environment variable, or a no-echo prompt on a terminal.
pub fn crate_password(var: &str, prompt: &str) -> Result<winrm::Secret, String> {
    if let Ok(v) = std::env::var(var) {
        return Ok(winrm::secret::secret(v));
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Err(format!(
            "no password: set {var} or run on a terminal to be prompted"
        ));
    }
    rpassword::prompt_password(prompt)
        .map(winrm::secret::secret)
        .map_err(|e| format!("cannot read password: {e}"))
}
