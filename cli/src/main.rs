//! The `trustsweep` binary: arguments in two stages (clap flags, then a validated run
//! plan), the engine, reporters and named exit codes.

mod engine;
mod exit;
mod fleet;
mod lab_cmd;
mod remote;
mod report;
mod run;
mod sweep;
mod targets;

use clap::{Parser, Subcommand};

/// Sweep Windows hosts over WinRM: test, diagnose and repair broken domain trust.
#[derive(Debug, Parser)]
#[command(name = "trustsweep", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one command line on one host over WinRM (like `ansible -m raw`).
    Run(run::RunArgs),
    /// Test every host's secure channel and say why broken ones broke (changes nothing).
    Check(fleet::CheckArgs),
    /// Show what `repair` would do on each host, and why (changes nothing).
    Plan(fleet::PlanArgs),
    /// Repair broken hosts with the lightest fix each allows, then verify.
    Repair(fleet::RepairArgs),
    /// The built-in simulated Windows domain.
    #[command(subcommand)]
    Lab(LabCommand),
}

#[derive(Debug, Subcommand)]
enum LabCommand {
    /// Serve a simulated domain on loopback until interrupted.
    Serve(lab_cmd::ServeArgs),
}

fn main() {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("trustsweep: cannot start the async runtime: {e}");
            std::process::exit(exit::USAGE);
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run::main(args).await,
            Command::Check(args) => fleet::check(args).await,
            Command::Plan(args) => fleet::plan(args).await,
            Command::Repair(args) => fleet::repair(args).await,
            Command::Lab(LabCommand::Serve(args)) => lab_cmd::serve(args).await,
        }
    });
    std::process::exit(code);
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
