//! From arguments to a validated list of targets, before any host is contacted
//! (ripgrep's LowArgs → HiArgs): the inventory (`-i`) or an in-process lab (`--lab N`),
//! connection settings per host, and the two credentials kept apart — the one that
//! connects and the domain account that may reset machine passwords.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use lab::wire::RunningLab;
use playbooks::DomainCredential;
use secrecy::SecretString;
use winrm::transport::{AuthMethod, Endpoint, Scheme, TlsOptions};

use crate::heading;
use crate::lab_cmd::{self, LabArgs};

/// Where the hosts come from and how to reach them (shared by check, plan, repair).
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// Inventory: an Ansible YAML or INI file (with the group_vars/ and host_vars/ beside
    /// it), an inventory directory, a plain host list, CSV, or the JSON of
    /// `ansible-inventory --list`; `-` reads it from standard input; `ws1,ws2,` is a list
    /// of hosts, as in Ansible. Repeatable: the
    /// sources merge as Ansible merges them. Default: ANSIBLE_INVENTORY, else the
    /// `inventory =` of the ansible.cfg Ansible would read.
    #[arg(short = 'i', long = "inventory", value_name = "FILE|DIR|-", conflicts_with_all = ["lab", "ou"], help_heading = heading::INVENTORY)]
    pub inventory: Vec<PathBuf>,
    /// Only hosts matching PATTERN, in Ansible's syntax: names, groups, globs (`ws00*`),
    /// `~regex`, `:` or `,` for union, `:&` intersection, `:!` exclusion.
    #[arg(long, value_name = "PATTERN", help_heading = heading::INVENTORY)]
    pub limit: Option<String>,
    /// Take only a deterministic slice K of N of the hosts (1-based), for CI matrices;
    /// combine the shards' JSON reports with `trustsweep merge`. `auto` reads it from
    /// TRUSTSWEEP_SHARD=K/N, GitLab's CI_NODE_INDEX/CI_NODE_TOTAL, or a Kubernetes Indexed
    /// Job's JOB_COMPLETION_INDEX (0-based) with N from `auto/N` or TRUSTSWEEP_SHARD_TOTAL.
    #[arg(long, value_name = "K/N|auto[/N]", value_parser = crate::shard_env::parse_shard_arg, help_heading = heading::INVENTORY)]
    pub shard: Option<report::Shard>,
    /// Credentials file (YAML or GROUP.KEY=VALUE lines, owner-only) giving user/password
    /// and repair_user/repair_password per inventory group.
    #[arg(long, value_name = "FILE", help_heading = heading::INVENTORY)]
    pub credentials: Option<PathBuf>,
    /// Ansible Vault password file for `!vault` values and vault-encrypted files (vault
    /// ID `default`); an executable file is run and its output is the password.
    #[arg(long, value_name = "FILE", env = "ANSIBLE_VAULT_PASSWORD_FILE", help_heading = heading::INVENTORY)]
    pub vault_password_file: Vec<PathBuf>,
    /// A vault secret as LABEL@FILE or LABEL@prompt (repeatable); a 1.2 vault text is
    /// tried with the secret of its label first.
    #[arg(long = "vault-id", value_name = "LABEL@SOURCE", help_heading = heading::INVENTORY)]
    pub vault_ids: Vec<inventory::VaultIdSpec>,
    /// Ask for the vault password on the terminal.
    #[arg(long, help_heading = heading::INVENTORY)]
    pub ask_vault_pass: bool,
    /// A DC to reach over LDAPS (ldaps://dc) or StartTLS (ldap://dc with
    /// --ldap-starttls); never a plain-text bind. With --ou, the hosts are every enabled
    /// computer under that OU. With any inventory, the sweep reads each host's computer
    /// account from every DC (replication lag shows as DCs disagreeing on pwdLastSet)
    /// instead of asking the host to test each DC, and `repair --allow-dc-reset` resets
    /// accounts over it as the repair account.
    #[arg(long, value_name = "URL", help_heading = heading::ACTIVE_DIRECTORY)]
    pub ldap: Option<String>,
    /// The DCs to read the computer accounts from (repeatable); default: every DC that
    /// AD lists, reached by its DNS name with the scheme and port of --ldap.
    #[arg(long = "ldap-dc", value_name = "URL", requires = "ldap", help_heading = heading::ACTIVE_DIRECTORY)]
    pub ldap_dcs: Vec<String>,
    /// The OU (or any base DN) to enumerate, e.g. "OU=Workstations,DC=lab,DC=test".
    #[arg(long, value_name = "DN", requires = "ldap", conflicts_with = "lab", help_heading = heading::ACTIVE_DIRECTORY)]
    pub ou: Option<String>,
    /// An extra LDAP filter AND'ed with (objectCategory=computer).
    #[arg(long, value_name = "FILTER", help_heading = heading::ACTIVE_DIRECTORY)]
    pub ldap_filter: Option<String>,
    /// Search only the OU itself, not its sub-OUs.
    #[arg(long, help_heading = heading::ACTIVE_DIRECTORY)]
    pub ldap_one_level: bool,
    /// Upgrade ldap:// with StartTLS.
    #[arg(long, help_heading = heading::ACTIVE_DIRECTORY)]
    pub ldap_starttls: bool,
    /// Account to bind as for reading (password from TRUSTSWEEP_LDAP_PASSWORD or a
    /// prompt). Without --ou it defaults to the repair account.
    #[arg(long, value_name = "USER", help_heading = heading::ACTIVE_DIRECTORY)]
    pub ldap_user: Option<String>,
    /// Include disabled computer accounts.
    #[arg(long, help_heading = heading::ACTIVE_DIRECTORY)]
    pub include_disabled: bool,
    /// Connect to each host as its LAPS-managed local Administrator, reading the password
    /// from AD (msLAPS-Password or ms-Mcs-AdmPwd) with the --ldap-user account, for the
    /// computers of --ou.
    #[arg(long, requires = "ou", help_heading = heading::ACTIVE_DIRECTORY)]
    pub laps: bool,
    /// Connecting user for hosts whose inventory sets no ansible_user (password from
    /// TRUSTSWEEP_PASSWORD or a prompt).
    #[arg(long, short = 'u', help_heading = heading::CONNECTION)]
    pub user: Option<String>,
    /// A least-privileged domain account whose NTLM logon to each reachable host tests
    /// whether the host accepts domain logons (password from
    /// TRUSTSWEEP_LOGON_TEST_PASSWORD or a prompt). Never the repair account: its logon
    /// would reach every host, where a compromised one could relay it. Overrides
    /// trustsweep_logon_test_user; without either the test is skipped and the report says so.
    #[arg(long, value_name = "USER", help_heading = heading::CONNECTION)]
    pub logon_test_user: Option<String>,
    /// Extra CA certificates (PEM) for HTTPS hosts.
    #[arg(long, value_name = "FILE", help_heading = heading::CONNECTION)]
    pub ca_file: Option<PathBuf>,
    /// Do not verify HTTPS certificates. Dangerous: anyone on the path can read passwords.
    #[arg(long, help_heading = heading::CONNECTION)]
    pub insecure_skip_tls_verify: bool,
    /// Hosts worked on at once [default: as many as the open-file limit allows, raised to
    /// its hard limit at start, at most 1024]; a value above what the limit allows is
    /// lowered to it.
    #[arg(long, value_name = "N", help_heading = heading::CONNECTION)]
    pub concurrency: Option<usize>,
    /// Seconds one host may take in a phase before it is reported as timed out.
    #[arg(long, value_name = "SECONDS", default_value_t = 120, help_heading = heading::CONNECTION)]
    pub host_deadline: u64,
    /// Seconds to wait for a TCP/TLS connection.
    #[arg(long, value_name = "SECONDS", default_value_t = 10, help_heading = heading::CONNECTION)]
    pub connect_timeout: u64,
    /// WS-Management OperationTimeout in seconds (how long one Receive may wait).
    #[arg(long, value_name = "SECONDS", default_value_t = 20, help_heading = heading::CONNECTION)]
    pub operation_timeout: u64,
    /// Domain account allowed to reset machine passwords (password from
    /// TRUSTSWEEP_REPAIR_PASSWORD or a prompt). Overrides trustsweep_repair_user.
    #[arg(long, help_heading = heading::REPAIR)]
    pub repair_user: Option<String>,
    /// Write a report file as FORMAT=PATH (json, jsonl, junit, csv, html, markdown);
    /// repeatable. jsonl is the live journal of finished hosts.
    #[arg(long = "output", short = 'o', value_name = "FORMAT=PATH", help_heading = heading::OUTPUT)]
    pub outputs: Vec<String>,
    /// Write every report format into DIR (trustsweep.json, trustsweep-junit.xml, ...).
    #[arg(long, value_name = "DIR", help_heading = heading::OUTPUT)]
    pub report: Option<PathBuf>,
    /// Append every finished host to this JSON Lines journal as it finishes (nothing is
    /// lost if the sweep is interrupted).
    #[arg(long, value_name = "FILE", help_heading = heading::OUTPUT)]
    pub journal: Option<PathBuf>,
    /// Continue the sweep recorded in this journal: hosts it already holds are not probed
    /// or repaired again, and new results are appended to it.
    #[arg(long, value_name = "FILE", conflicts_with = "journal", help_heading = heading::OUTPUT)]
    pub resume: Option<PathBuf>,
    /// Record this run in a SQLite history database (see `trustsweep history`).
    #[arg(long, value_name = "FILE", help_heading = heading::OUTPUT)]
    pub history: Option<PathBuf>,
    /// Which findings make the exit code non-zero: `broken` (2), `unreachable` (3: also
    /// access problems and unknown states), `any` (both; the default behaviour). Lets a
    /// scheduled dry run fail only on drift that matters to it.
    #[arg(long, value_name = "broken|unreachable|any", value_delimiter = ',', help_heading = heading::OUTPUT)]
    pub fail_on: Vec<FailOn>,
    /// Sweep a built-in simulated domain of N hosts on loopback instead of real hosts.
    #[arg(long, value_name = "N", help_heading = heading::LAB)]
    pub lab: Option<usize>,
    #[command(flatten)]
    pub lab_opts: LabArgs,
}

/// A condition that `--fail-on` turns into a non-zero exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// Some trust is broken (exit 2).
    Broken,
    /// Some host could not be checked: unreachable, access problem, unknown (exit 3).
    Unreachable,
    /// Either.
    Any,
}

/// Why the arguments do not resolve into targets: grouped by who must act. The words are
/// the ones the command prints after `trustsweep CMD: `.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TargetsError {
    // The flags.
    /// No host source given.
    #[error("no hosts: give an inventory with -i FILE (or set one in ansible.cfg's [defaults] inventory =), an OU with --ldap URL --ou DN, or --lab N for the built-in lab")]
    NoHosts,
    /// `-i -` given more than once.
    #[error("-i - (standard input) can be given only once")]
    StdinTwice,
    /// `-i -` with standard input a terminal.
    #[error("-i - reads the inventory from standard input, which is a terminal: pipe it in (ansible-inventory -i INVENTORY --list | trustsweep ... -i -)")]
    StdinIsTerminal,
    /// Standard input could not be read.
    #[error("cannot read the inventory from standard input: {0}")]
    Stdin(#[source] std::io::Error),
    /// `-i` with `--lab`.
    #[error("-i and --lab cannot be used together")]
    InventoryAndLab,
    /// `--concurrency 0`.
    #[error("--concurrency must be at least 1")]
    NoConcurrency,
    /// `--ldap` as a host source without `--ou`.
    #[error("--ldap needs --ou DN (the OU to enumerate)")]
    LdapNeedsOu,
    /// `--ldap --ou` without `--ldap-user`.
    #[error("--ldap needs --ldap-user (its password from TRUSTSWEEP_LDAP_PASSWORD or a prompt)")]
    LdapNeedsUser,
    /// `--ldap` for DC-side evidence with nobody to bind as.
    #[error("--ldap {url} needs an account to bind as: --ldap-user (password from TRUSTSWEEP_LDAP_PASSWORD) or a repair account (--repair-user or trustsweep_repair_user)")]
    LdapNeedsAccount {
        /// The `--ldap` URL.
        url: String,
    },
    /// `--limit` is no pattern.
    #[error(transparent)]
    Limit(#[from] inventory::PatternError),

    // The inventory and credentials files.
    /// The inventory could not be read or parsed.
    #[error(transparent)]
    Inventory(#[from] inventory::InventoryError),
    /// The credentials file could not be read or parsed.
    #[error(transparent)]
    Credentials(#[from] inventory::CredentialsError),
    /// A vault password could not be read.
    #[error(transparent)]
    VaultSecret(#[from] inventory::VaultSecretError),
    /// A vault password prompt failed (no terminal, or end of input).
    #[error("cannot ask for the vault password of vault ID '{id}': {source}; give it with --vault-password-file FILE or --vault-id {id}@FILE")]
    VaultPrompt {
        /// The vault ID.
        id: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A variable a host's connection needs is a template trustsweep does not evaluate.
    #[error(transparent)]
    Template(#[from] inventory::TemplateError),
    /// A host's read timeout is not longer than its operation timeout.
    #[error("host {host}: the read timeout ({read:?}, ansible_winrm_read_timeout_sec) must be longer than the operation timeout ({operation:?}, ansible_winrm_operation_timeout_sec or --operation-timeout), as pywinrm requires")]
    Timeouts {
        /// Inventory name.
        host: String,
        /// The HTTP read timeout.
        read: Duration,
        /// The WS-Management operation timeout.
        operation: Duration,
    },
    /// A host's `ansible_winrm_scheme` is neither http nor https.
    #[error("host {host}: ansible_winrm_scheme: {reason}")]
    Scheme {
        /// Inventory name.
        host: String,
        /// Why.
        reason: String,
    },
    /// A host's logon-test account is its repair account (its logon would reach every host).
    #[error("host {host}: the logon-test account {user} is the repair account; give a least-privileged domain account (--logon-test-user or trustsweep_logon_test_user)")]
    LogonTestIsRepair {
        /// Inventory name.
        host: String,
        /// The account.
        user: String,
    },

    // The environment.
    /// A password could not be had.
    #[error(transparent)]
    Password(#[from] crate::run::PasswordError),
    /// The built-in lab could not start.
    #[error(transparent)]
    Lab(#[from] lab_cmd::LabError),
    /// The Samba lab's facts could not be read.
    #[error("{0}")]
    SambaFacts(String),
    /// The Samba lab's facts name no DC.
    #[error("the Samba lab facts name no DC")]
    SambaNoDc,
    /// The Samba lab has no repair account to read its DCs as.
    #[error("the Samba-backed lab needs its repair account to read the DCs")]
    SambaNoRepairAccount,

    // The directory.
    /// Enumerating the OU failed.
    #[error(transparent)]
    Ad(#[from] ad::AdError),
}

/// Why a host's LAPS password could not be had (the host is reported, the sweep goes on).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LapsError {
    /// AD holds none for this computer.
    #[error("no LAPS password in AD (LAPS does not manage this computer)")]
    NotManaged,
    /// Reading it failed.
    #[error(transparent)]
    Ad(#[from] ad::AdError),
}

/// A credential: user and password (the password never printed).
#[derive(Clone, Debug)]
pub struct Credential {
    /// `DOMAIN\user`, `user@domain` or a local user.
    pub user: String,
    /// The password.
    pub password: SecretString,
}

/// One host to sweep, fully resolved.
#[derive(Clone, Debug)]
pub struct Target {
    /// Inventory name.
    pub name: String,
    /// Where its WinRM listener is.
    pub endpoint: Endpoint,
    /// NTLM or Basic.
    pub auth: AuthMethod,
    /// TLS settings.
    pub tls: TlsOptions,
    /// The connecting credential (local Administrator for broken hosts).
    pub connect: Option<Credential>,
    /// The domain account that may reset machine passwords (the playbooks' type: it goes
    /// to them as it is).
    pub repair: Option<DomainCredential>,
    /// The least-privileged domain account of the domain-logon test.
    pub logon_test: Option<Credential>,
    /// Why there is no connecting credential (e.g. LAPS not readable), for the report.
    pub connect_error: Option<String>,
    /// Inventory groups (for reports).
    pub groups: Vec<String>,
    /// Timeouts.
    pub connect_timeout: Duration,
    /// WS-Man operation timeout (`ansible_winrm_operation_timeout_sec` or
    /// `ansible_winrm_connection_timeout`, else `--operation-timeout`).
    pub operation_timeout: Duration,
    /// HTTP read timeout (`ansible_winrm_read_timeout_sec`, or
    /// `ansible_winrm_connection_timeout` + 10 s, else the operation timeout + 10 s);
    /// always longer than the operation timeout.
    pub read_timeout: Duration,
    /// `--laps`: the connecting local Administrator is LAPS-managed, so a restart that
    /// refuses its password has its LAPS value read again (it may have been rotated).
    pub laps: bool,
}

/// The resolved sweep: targets, plus the lab if one was started (it must outlive the sweep).
#[derive(Debug)]
pub struct Resolved {
    /// The hosts.
    pub targets: Vec<Target>,
    /// The in-process lab, for `--lab`.
    pub lab: Option<RunningLab>,
    /// DC access (`--ldap`).
    pub dc_access: Option<crate::dc::DcAccess>,
}

/// The hosts of the sweep, before any connection: the inventory (file, AD or lab) with
/// credentials files applied, `--shard` and `--limit` taken, plus LAPS results.
#[derive(Debug)]
pub struct Loaded {
    /// The hosts.
    pub inventory: inventory::Inventory,
    /// Per-host LAPS credentials (with `--laps`), or why they could not be read.
    pub laps: std::collections::HashMap<String, Result<Credential, LapsError>>,
    /// The in-process lab, for `--lab`.
    pub lab: Option<RunningLab>,
    /// The LDAP settings of an AD inventory (`--ldap --ou`).
    pub ad: Option<ad::AdConfig>,
}

/// Loads the hosts without contacting any of them.
pub async fn load(args: &SourceArgs) -> Result<Loaded, TargetsError> {
    let mut ad_cfg = None;
    let sources = inventory_sources(args)?;
    let (mut inventory, lab) = match (sources.is_empty(), args.lab) {
        (true, None) if args.ldap.is_some() && args.ou.is_some() => {
            let (inv, cfg) = from_ad(args).await?;
            ad_cfg = Some(cfg);
            (inv, None)
        }
        (false, None) => (
            inventory::load_sources(&sources, &vault_secrets(args)?)?,
            None,
        ),
        (true, Some(n)) => {
            let running = lab_cmd::start(n, &args.lab_opts, None).await?;
            // The lab is swept through the same inventory format a user would write.
            let inv = inventory::parse_yaml(
                &running.inventory_yaml(),
                std::path::Path::new("<lab inventory>"),
            )?;
            (inv, Some(running))
        }
        (true, None) => return Err(TargetsError::NoHosts),
        (false, Some(_)) => return Err(TargetsError::InventoryAndLab),
    };
    if let Some(path) = &args.credentials {
        let creds = inventory::credentials::Credentials::load(path)?;
        creds.apply(&mut inventory);
    }
    if let Some(shard) = args.shard {
        inventory.hosts.retain(|h| shard.contains(&h.name));
    }
    if let Some(limit) = &args.limit {
        let pattern = inventory::pattern::Pattern::parse(limit)?;
        inventory = inventory.try_limit(&pattern)?;
    }
    // LAPS is read only for the hosts that remain after --shard and --limit.
    let laps = match (&ad_cfg, args.laps) {
        (Some(cfg), true) => read_laps_all(cfg, &inventory).await,
        _ => std::collections::HashMap::new(),
    };
    Ok(Loaded {
        inventory,
        laps,
        lab,
        ad: ad_cfg,
    })
}

/// The inventory sources of `-i` (each a file or directory, `-` standard input); without
/// `-i` (and no lab or OU), the default Ansible would use: `ANSIBLE_INVENTORY`, else the
/// `inventory =` of the ansible.cfg it would read.
fn inventory_sources(args: &SourceArgs) -> Result<Vec<inventory::Source>, TargetsError> {
    use std::io::{IsTerminal, Read};
    if args.inventory.is_empty() {
        if args.lab.is_some() || (args.ldap.is_some() && args.ou.is_some()) {
            return Ok(Vec::new());
        }
        let Some(default) = inventory::ansible_cfg::default_inventory()? else {
            return Ok(Vec::new());
        };
        tracing::info!(
            "inventory from {}: {}",
            default.from,
            default
                .sources
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(default
            .sources
            .into_iter()
            .map(inventory::Source::Path)
            .collect());
    }
    let mut out = Vec::with_capacity(args.inventory.len());
    let mut stdin_used = false;
    for p in &args.inventory {
        if p.as_os_str() == "-" {
            if stdin_used {
                return Err(TargetsError::StdinTwice);
            }
            stdin_used = true;
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                return Err(TargetsError::StdinIsTerminal);
            }
            let mut text = String::new();
            stdin
                .lock()
                .read_to_string(&mut text)
                .map_err(TargetsError::Stdin)?;
            out.push(inventory::Source::Text {
                name: PathBuf::from("<stdin>"),
                text,
            });
        } else if !p.exists() && p.to_string_lossy().contains(',') {
            // Ansible's host list: `-i 'ws1.corp.test,ws2.corp.test,'`.
            let text = p
                .to_string_lossy()
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .collect::<Vec<_>>()
                .join("\n");
            out.push(inventory::Source::Text {
                name: PathBuf::from("<host list>"),
                text,
            });
        } else {
            out.push(inventory::Source::Path(p.clone()));
        }
    }
    Ok(out)
}

/// The vault secrets of the arguments, in Ansible's order: `--vault-id`s, then
/// `--vault-password-file`s (`ANSIBLE_VAULT_PASSWORD_FILE`), then `--ask-vault-pass`;
/// prompts are asked here, before any host is contacted.
fn vault_secrets(args: &SourceArgs) -> Result<inventory::VaultSecrets, TargetsError> {
    use inventory::vault::{VaultIdSource, DEFAULT_VAULT_ID};
    use inventory::VaultSecret;
    let prompt = |id: &str, text: &str| {
        rpassword::prompt_password(text)
            .map(SecretString::from)
            .map_err(|source| TargetsError::VaultPrompt {
                id: id.to_string(),
                source,
            })
            .and_then(|typed| Ok(VaultSecret::from_prompt(id, &typed)?))
    };
    let mut secrets = inventory::VaultSecrets::none();
    for spec in &args.vault_ids {
        secrets.push(match &spec.source {
            VaultIdSource::File(path) => VaultSecret::from_file(&spec.id, path)?,
            _ => prompt(&spec.id, &format!("Vault password ({}): ", spec.id))?,
        });
    }
    for path in &args.vault_password_file {
        secrets.push(VaultSecret::from_file(DEFAULT_VAULT_ID, path)?);
    }
    if args.ask_vault_pass {
        secrets.push(prompt(DEFAULT_VAULT_ID, "Vault password: ")?);
    }
    Ok(secrets)
}

/// Resolves the arguments into targets. Errors name the file and what to do.
pub async fn resolve(args: &SourceArgs) -> Result<Resolved, TargetsError> {
    let Loaded {
        inventory,
        mut laps,
        lab,
        ad,
    } = load(args).await?;
    if args.concurrency == Some(0) {
        return Err(TargetsError::NoConcurrency);
    }
    let accounts = Accounts::from_args(args, &inventory)?;
    let targets = inventory
        .hosts
        .iter()
        .map(|h| target(h, args, &accounts, laps.remove(&h.name)))
        .collect::<Result<Vec<_>, _>>()?;
    let dc_access = match (&args.ldap, &args.lab_opts.lab_samba) {
        (Some(url), _) => Some(dc_access(args, url, ad, &targets)?),
        (None, Some(facts)) if lab.is_some() => Some(samba_lab_access(facts, &targets)?),
        (None, _) => None,
    };
    Ok(Resolved {
        targets,
        lab,
        dc_access,
    })
}

/// The accounts given on the command line (each password from its variable or a prompt,
/// asked in this order): they stand in for, or override, the inventory's.
struct Accounts {
    /// `--user`: for hosts whose inventory sets no user and password (asked only if some
    /// host lacks them).
    fallback: Option<Credential>,
    /// `--repair-user`: overrides `trustsweep_repair_user`.
    repair: Option<DomainCredential>,
    /// `--logon-test-user`: overrides `trustsweep_logon_test_user`.
    logon_test: Option<Credential>,
}

impl Accounts {
    fn from_args(
        args: &SourceArgs,
        inventory: &inventory::Inventory,
    ) -> Result<Accounts, TargetsError> {
        let some_host_lacks_one = inventory
            .hosts
            .iter()
            .any(|h| h.user().is_none() || h.password().is_none());
        let fallback = match &args.user {
            Some(u) if some_host_lacks_one => Some(account(u, "TRUSTSWEEP_PASSWORD")?),
            _ => None,
        };
        let repair = match &args.repair_user {
            Some(u) => Some(DomainCredential {
                user: u.clone(),
                password: account(u, "TRUSTSWEEP_REPAIR_PASSWORD")?.password,
            }),
            None => None,
        };
        let logon_test = match &args.logon_test_user {
            Some(u) => Some(account(u, "TRUSTSWEEP_LOGON_TEST_PASSWORD")?),
            None => None,
        };
        Ok(Accounts {
            fallback,
            repair,
            logon_test,
        })
    }
}

/// `user` with the password from `var` or a prompt.
fn account(user: &str, var: &str) -> Result<Credential, crate::run::PasswordError> {
    Ok(Credential {
        user: user.to_string(),
        password: crate::run::crate_password(var, &format!("Password for {user}: "))?,
    })
}

/// One inventory host as a target: endpoint, auth and TLS from its Ansible variables, its
/// three accounts kept apart. `laps` is its LAPS read (`--laps`), if any.
fn target(
    h: &inventory::Host,
    args: &SourceArgs,
    accounts: &Accounts,
    laps: Option<Result<Credential, LapsError>>,
) -> Result<Target, TargetsError> {
    // A template trustsweep cannot evaluate is never used as a value: the address, port,
    // scheme, TLS and timeouts have no stand-in, so such a host stops the run here.
    if let Some(e) = h.connection_unresolved() {
        return Err(e.clone().into());
    }
    // Ansible's winrm plugin: https on 5986 unless the port is 5985.
    let scheme: Scheme = match h.scheme() {
        Some(s) => s.parse().map_err(|reason| TargetsError::Scheme {
            host: h.name.clone(),
            reason,
        })?,
        None => match h.winrm_scheme() {
            Some(inventory::WinrmScheme::Http) => Scheme::Http,
            _ => Scheme::Https,
        },
    };
    let operation_timeout = h
        .operation_timeout()
        .unwrap_or(Duration::from_secs(args.operation_timeout));
    let read_timeout = h
        .read_timeout()
        .unwrap_or(operation_timeout + Duration::from_secs(10));
    if read_timeout <= operation_timeout {
        return Err(TargetsError::Timeouts {
            host: h.name.clone(),
            read: read_timeout,
            operation: operation_timeout,
        });
    }
    // The credentials: an unresolved template is an error unless another source (LAPS,
    // --user, --repair-user, --logon-test-user) stands in for it.
    let stands_in = laps.is_some() || accounts.fallback.is_some();
    for names in [
        inventory::connection::USER_VARS,
        inventory::connection::PASSWORD_VARS,
    ] {
        if let (false, Some(e)) = (stands_in, h.unresolved_for(names)) {
            return Err(e.clone().into());
        }
    }
    if accounts.repair.is_none() {
        for names in [
            &["trustsweep_repair_user"][..],
            &["trustsweep_repair_password"],
        ] {
            if let Some(e) = h.unresolved_for(names) {
                return Err(e.clone().into());
            }
        }
    }
    if accounts.logon_test.is_none() {
        for names in [
            &["trustsweep_logon_test_user"][..],
            &["trustsweep_logon_test_password"],
        ] {
            if let Some(e) = h.unresolved_for(names) {
                return Err(e.clone().into());
            }
        }
    }
    // An unsupported transport (e.g. kerberos) is that host's problem, not the run's.
    let (auth, transport_error) = match h.transport() {
        Some(t) => match t.parse::<AuthMethod>() {
            Ok(a) => (a, None),
            Err(e) => (
                AuthMethod::Ntlm,
                Some(format!("{}: ansible_winrm_transport: {e}", h.name)),
            ),
        },
        None => (AuthMethod::Ntlm, None),
    };
    let skip_verify = args.insecure_skip_tls_verify || h.cert_validation() == Some(false);
    let mut connect_error = transport_error.clone();
    let connect = match (laps, h.user(), h.password()) {
        _ if transport_error.is_some() => None,
        (Some(Ok(cred)), _, _) => Some(cred),
        (Some(Err(e)), _, _) => {
            connect_error = Some(e.to_string());
            None
        }
        (None, Some(user), Some(password)) => Some(Credential {
            user,
            password: password.clone(),
        }),
        _ => accounts.fallback.clone(),
    };
    let repair = accounts.repair.clone().or_else(|| {
        Some(DomainCredential {
            user: h.repair_user()?,
            password: h.repair_password()?.clone(),
        })
    });
    let logon_test = accounts.logon_test.clone().or_else(|| {
        Some(Credential {
            user: h.logon_test_user()?,
            password: h.logon_test_password()?.clone(),
        })
    });
    if let (Some(t), Some(r)) = (&logon_test, &repair) {
        if t.user.eq_ignore_ascii_case(&r.user) {
            return Err(TargetsError::LogonTestIsRepair {
                host: h.name.clone(),
                user: t.user.clone(),
            });
        }
    }
    Ok(Target {
        name: h.name.clone(),
        // The address and port by the winrm connection's precedence
        // (ansible_winrm_host > ansible_host, ansible_winrm_port > ansible_port).
        endpoint: Endpoint::new(h.address.clone(), h.port, scheme),
        auth,
        tls: TlsOptions {
            // The host's own CA (pywinrm's `ca_trust_path`) wins over --ca-file.
            ca_file: h.ca_trust_path().or_else(|| args.ca_file.clone()),
            dangerous_skip_verify: skip_verify,
        },
        connect,
        repair,
        logon_test,
        connect_error,
        laps: args.laps,
        groups: h.groups.clone(),
        connect_timeout: Duration::from_secs(args.connect_timeout),
        operation_timeout,
        read_timeout,
    })
}

/// The DC access of a lab whose accounts are in the Samba DCs: both DCs by address, the
/// lab CA, reads and resets as the lab's repair account (`LAB\tsrepair`).
fn samba_lab_access(
    facts: &std::path::Path,
    targets: &[Target],
) -> Result<crate::dc::DcAccess, TargetsError> {
    let cfg = lab::samba::SambaConfig::from_facts_file(facts)
        .map_err(|e| TargetsError::SambaFacts(e.to_string()))?;
    let reset_as = targets.iter().find_map(|t| t.repair.clone());
    let Some(read_as) = reset_as.clone() else {
        return Err(TargetsError::SambaNoRepairAccount);
    };
    let urls: Vec<String> = cfg.dcs.iter().map(|d| d.url.clone()).collect();
    let first = urls.first().cloned().ok_or(TargetsError::SambaNoDc)?;
    let mut read = ad::AdConfig::new(first, read_as.user, read_as.password, String::new());
    read.ca_file = Some(cfg.ca_file.clone());
    Ok(crate::dc::DcAccess {
        read,
        dcs: urls,
        reset_as,
        verify: domain_credentials(targets),
    })
}

/// The DC access of `--ldap URL`: reads bind as the inventory's LDAP account (`--ou`
/// with `--ldap-user`), else `--ldap-user`, else the repair account; resets always bind as
/// the repair account.
fn dc_access(
    args: &SourceArgs,
    url: &str,
    ad: Option<ad::AdConfig>,
    targets: &[Target],
) -> Result<crate::dc::DcAccess, TargetsError> {
    let reset_as = targets.iter().find_map(|t| t.repair.clone());
    let read = match ad {
        Some(cfg) => cfg,
        None => {
            let (user, password) = match (&args.ldap_user, &reset_as) {
                (Some(u), _) => (
                    u.clone(),
                    crate::run::crate_password(
                        "TRUSTSWEEP_LDAP_PASSWORD",
                        &format!("LDAP password for {u}: "),
                    )?,
                ),
                (None, Some(r)) => (r.user.clone(), r.password.clone()),
                (None, None) => {
                    return Err(TargetsError::LdapNeedsAccount {
                        url: url.to_string(),
                    })
                }
            };
            let mut cfg = ad::AdConfig::new(url.to_string(), user, password, String::new());
            cfg.starttls = args.ldap_starttls;
            cfg.ca_file = args.ca_file.clone();
            cfg.connect_timeout = Duration::from_secs(args.connect_timeout);
            cfg
        }
    };
    Ok(crate::dc::DcAccess {
        read,
        dcs: args.ldap_dcs.clone(),
        reset_as,
        verify: domain_credentials(targets),
    })
}

/// The distinct domain credentials of `targets` (connecting, logon-test and repair
/// accounts), for their one check with a DC before any host is sent them (issue 16,
/// [`crate::dc::verify_credentials`]); local accounts are left out.
fn domain_credentials(targets: &[Target]) -> Vec<DomainCredential> {
    use secrecy::ExposeSecret as _;
    let mut out: Vec<DomainCredential> = Vec::new();
    for t in targets {
        let creds = [t.connect.as_ref(), t.logon_test.as_ref()]
            .into_iter()
            .flatten()
            .map(|c| (&c.user, &c.password))
            .chain(t.repair.as_ref().map(|r| (&r.user, &r.password)));
        for (user, password) in creds {
            let seen = out.iter().any(|c| {
                c.user.eq_ignore_ascii_case(user)
                    && c.password.expose_secret() == password.expose_secret()
            });
            if !seen && crate::credential_gate::is_domain_account(user) {
                out.push(DomainCredential {
                    user: user.clone(),
                    password: password.clone(),
                });
            }
        }
    }
    out
}

/// Hosts from Active Directory, and the LDAP settings (for LAPS reads).
async fn from_ad(args: &SourceArgs) -> Result<(inventory::Inventory, ad::AdConfig), TargetsError> {
    use ad::{AdConfig, Scope};
    let (Some(url), Some(ou)) = (&args.ldap, &args.ou) else {
        return Err(TargetsError::LdapNeedsOu);
    };
    let Some(user) = &args.ldap_user else {
        return Err(TargetsError::LdapNeedsUser);
    };
    let password = crate::run::crate_password(
        "TRUSTSWEEP_LDAP_PASSWORD",
        &format!("LDAP password for {user}: "),
    )?;
    let mut cfg = AdConfig::new(url.clone(), user.clone(), password, ou.clone());
    cfg.starttls = args.ldap_starttls;
    cfg.ca_file = args.ca_file.clone();
    cfg.filter = args.ldap_filter.clone();
    cfg.scope = if args.ldap_one_level {
        Scope::OneLevel
    } else {
        Scope::Subtree
    };
    cfg.include_disabled = args.include_disabled;
    cfg.connect_timeout = Duration::from_secs(args.connect_timeout);
    let computers = ad::enumerate_computers(&cfg).await?;
    Ok((inventory::ad::to_inventory(&computers), cfg))
}

/// Each host's LAPS-managed local Administrator, or why it could not be read; at most 16
/// reads at once.
async fn read_laps_all(
    cfg: &ad::AdConfig,
    inv: &inventory::Inventory,
) -> std::collections::HashMap<String, Result<Credential, LapsError>> {
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(16));
    let mut set = tokio::task::JoinSet::new();
    for h in &inv.hosts {
        let Some(dn) = h.var("ad_dn") else { continue };
        let (cfg, name, sem) = (cfg.clone(), h.name.clone(), sem.clone());
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let res = match ad::read_laps(&cfg, &dn).await {
                Ok(Some(s)) => Ok(Credential {
                    user: s.account,
                    password: s.password,
                }),
                Ok(None) => Err(LapsError::NotManaged),
                Err(e) => Err(LapsError::Ad(e)),
            };
            (name, res)
        });
    }
    let mut out = std::collections::HashMap::new();
    while let Some(r) = set.join_next().await {
        if let Ok((name, res)) = r {
            out.insert(name, res);
        }
    }
    out
}
