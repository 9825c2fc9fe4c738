//! The `trustsweep` binary: parses arguments and dispatches to the library's commands.

use trustsweep_cli::{exit, fleet, inventory_cmd, lab_cmd, run};

use clap::{CommandFactory, Parser, Subcommand};

/// mimalloc instead of the C library's malloc: a sweep allocates and frees many small
/// buffers per host (XML, sealed messages, strings), and glibc's malloc and free were about
/// a sixth of the client's and the lab's instructions (BENCHMARKS.md, "round 2").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc's `mi_option_t` (`mimalloc.h`). mimalloc keeps the
/// values of this enum stable across versions (retired options stay as `deprecated_`
/// placeholders); this one was `mi_option_reset_delay` before 2.1, at the same value.
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

/// mimalloc 3's default purge delay (`options.c`), in milliseconds.
const MI_DEFAULT_PURGE_DELAY: std::ffi::c_long = 1000;

extern "C" {
    // Exported by the mimalloc library that `libmimalloc-sys` builds and links (the
    // global allocator above); declared here because that crate only exposes them with
    // its `extended` feature, which needs a crate this workspace does not have.
    fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// Makes mimalloc return freed pages to the system at once instead of a second later
/// (issue 15: at 10,000 hosts and 1,024 wide the client churns through its connections'
/// buffers so fast that a second's worth of freed pages was about 40 MB of its peak
/// memory; the instructions per host did not change, BENCHMARKS.md round 3). Only when
/// the option still has mimalloc 3's default: `MIMALLOC_PURGE_DELAY` (or its old name
/// `MIMALLOC_RESET_DELAY`) in the environment, read by mimalloc at load, wins, and a
/// mimalloc whose enum or default differ is left as it is.
#[allow(unsafe_code)]
fn purge_freed_memory_at_once() {
    let set_by_user = ["MIMALLOC_PURGE_DELAY", "MIMALLOC_RESET_DELAY"]
        .iter()
        .any(|name| std::env::var_os(name).is_some());
    if set_by_user {
        return;
    }
    // SAFETY: both functions take plain integers, keep no pointer, and check the option
    // index against the table's length before reading or writing one entry of mimalloc's
    // option table (`options.c`). The write is a plain store: it runs first thing in
    // `main`, before any other thread of ours exists to read the table at the same time.
    unsafe {
        if mi_option_get(MI_OPTION_PURGE_DELAY) == MI_DEFAULT_PURGE_DELAY {
            mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        }
    }
}

/// Sweep Windows hosts over WinRM: test, diagnose and repair broken domain trust.
#[derive(Debug, Parser)]
#[command(
    name = "trustsweep",
    version,
    about,
    long_about = None,
    after_help = "Examples:\n  trustsweep check -i hosts.yml\n  trustsweep plan -i hosts.yml --allow-rejoin\n  trustsweep repair -i hosts.yml --max-changes 20 --limit 'ws00*'\n  trustsweep repair --lab 200\n\nExit codes: 0 all healthy, 1 usage/configuration error, 2 some trust broken,\n3 some hosts could not be checked, 130 interrupted."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one command line on one host over WinRM (like `ansible -m raw`).
    Run(run::RunArgs),
    /// Test every host's secure channel and say why broken ones broke (changes no password
    /// and no AD object).
    ///
    /// Per host: the stored channel status (Test-ComputerSecureChannel, nltest /sc_query),
    /// a live test (nltest /sc_verify), the DC locator's DC and PDC, and recent NETLOGON
    /// events. Like Windows' own /sc_verify, a live test of a broken channel makes Netlogon
    /// rediscover a DC, which can move the channel to another DC.
    Check(fleet::CheckArgs),
    /// Show what `repair` would do on each host, and why (changes no password and no AD
    /// object; its live tests may move a broken channel to another DC, as /sc_verify does).
    Plan(fleet::PlanArgs),
    /// Repair broken hosts with the lightest fix each allows, then verify.
    Repair(fleet::RepairArgs),
    /// Show the resolved hosts, groups and variables (secrets masked); connects to nothing.
    Inventory(inventory_cmd::InventoryArgs),
    /// Show, per host, what changed across the runs recorded with --history.
    History(fleet::HistoryArgs),
    /// Combine the JSON reports of shards (--shard K/N) into one.
    Merge(fleet::MergeArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout.
    Man,
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
    purge_freed_memory_at_once();
    // Before any secret is read (passwords, vault secrets, LAPS values, NTLM keys): a crash
    // must not write them to a core file, nor may another process of the same user read
    // this one's memory (ptrace, /proc/<pid>/mem).
    let core_dumps = forbid_core_dumps();
    let cli = Cli::parse();
    init_tracing(cli.verbose, cli.quiet, cli.log_format);
    if let Err(e) = core_dumps {
        tracing::warn!(error = %e, "cannot turn core dumps off; secrets could reach a core file");
    }
    // Every host in flight holds sockets: take the hard open-file limit, which the default
    // concurrency follows (trustsweep_cli::limits).
    let open_files = trustsweep_cli::limits::raise_open_file_limit();
    tracing::debug!(?open_files, "open-file limit");
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
            Command::Inventory(args) => inventory_cmd::main(args).await,
            Command::History(args) => fleet::history(args),
            Command::Merge(args) => fleet::merge(args),
            Command::Completions { shell } => {
                clap_complete::generate(
                    shell,
                    &mut Cli::command(),
                    "trustsweep",
                    &mut std::io::stdout(),
                );
                exit::OK
            }
            Command::Man => {
                match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
                    Ok(()) => exit::OK,
                    Err(e) => {
                        eprintln!("trustsweep man: {e}");
                        exit::USAGE
                    }
                }
            }
        }
    });
    std::process::exit(code);
}

/// Turns core dumps off for the whole life of the process, which holds secrets from its
/// start: `RLIMIT_CORE` 0 (soft and hard, so nothing in the process raises it again) and,
/// on Linux, `prctl(PR_SET_DUMPABLE, 0)`. The second also covers what the limit does not:
/// a `core_pattern` that pipes to a helper (systemd-coredump, apport) is not bound by
/// `RLIMIT_CORE`, but no dump at all is made of a non-dumpable process unless
/// `fs.suid_dumpable` is 2 (then the limit of 0 still stops a file dump); it also stops
/// other processes of the same user from attaching with ptrace or reading
/// `/proc/<pid>/mem` and `/proc/<pid>/environ` (proc(5), prctl(2) `PR_SET_DUMPABLE`,
/// core(5)).
#[cfg(unix)]
fn forbid_core_dumps() -> Result<(), rustix::io::Errno> {
    use rustix::process::{setrlimit, Resource, Rlimit};
    // Both are tried whatever the other did; the first refusal is reported.
    #[cfg(target_os = "linux")]
    let dumpable =
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    #[cfg(not(target_os = "linux"))]
    let dumpable = Ok(());
    let limit = setrlimit(
        Resource::Core,
        Rlimit {
            current: Some(0),
            maximum: Some(0),
        },
    );
    dumpable.and(limit)
}

/// Windows writes no core files of its own accord (Windows Error Reporting's LocalDumps
/// are opt-in per machine).
#[cfg(not(unix))]
fn forbid_core_dumps() -> Result<(), std::io::Error> {
    Ok(())
}

fn init_tracing(verbose: u8, quiet: bool, format: LogFormat) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let ansi = std::env::var_os("NO_COLOR").is_none()
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }

    /// What `main` does first leaves the process without core dumps: the limit is 0 and,
    /// on Linux, the kernel says the process is not dumpable (`PR_GET_DUMPABLE`). (The
    /// canary test observes the same from outside, on a running `trustsweep`.)
    #[cfg(unix)]
    #[test]
    fn core_dumps_are_off_after_start() {
        use rustix::process::{getrlimit, Resource};
        super::forbid_core_dumps().unwrap();
        let core = getrlimit(Resource::Core);
        assert_eq!((core.current, core.maximum), (Some(0), Some(0)));
        #[cfg(target_os = "linux")]
        assert_eq!(
            rustix::process::dumpable_behavior().unwrap(),
            rustix::process::DumpableBehavior::NotDumpable
        );
    }
}
