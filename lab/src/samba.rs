//! The lab's computer accounts in a real Active Directory: the Samba AD DC pair that
//! `scripts/samba-dc.sh start` runs with `LAB_WITH_DC2=1` (dc1 `ldaps://127.0.0.10`, dc2
//! `ldaps://127.0.0.11`, realm `LAB.TEST`). With [`crate::model::Directory::Samba`] the lab
//! still simulates the member hosts, but every read and write of a computer account is an
//! LDAPS operation on those DCs, through `ad`:
//!
//! - a secure channel works when the DC the member uses accepts a simple bind as
//!   `LAB\NAME$` with the member's secret; when it refuses, the object is read to tell
//!   "no (enabled) account" (1787) from "wrong password" (5);
//! - `Reset-ComputerMachinePassword -Credential` and `Test-ComputerSecureChannel -Repair`
//!   reset the password bound as the credential the command was given, so the DC enforces
//!   the Reset Password right (the script delegates it to `tsrepair` on the lab OU);
//! - `nltest /sc_change_pwd` is the member's own change, bound as `LAB\NAME$`;
//! - a DC-side "Reset Account", the rejoin of `Add-Computer` and the disabling of
//!   `Remove-Computer` write as the domain administrator (for the last two the lab checks
//!   the credential's rights against its own user table first, as it does in memory);
//! - `pwdLastSet`, objectSids and replication state are Samba's own.
//!
//! Differences from the in-memory model, all Samba's (see `ad`'s admin docs for
//! what was observed):
//! - Replication between the DCs happens only when forced ([`SambaDirectory::replicate`],
//!   `samba-dc.sh replicate DEST SRC`, which replicates the whole domain partition); the
//!   script turns periodic replication off. The in-memory model replicates by itself after
//!   `replication_delay`.
//! - The script sets `old password allowed period = 0`, so a DC accepts only the current
//!   password: an administrative reset breaks the member at once, as Microsoft documents
//!   for "Reset Account"; but a member holding the password of one rotation ago is broken
//!   too, where the in-memory model (DOMAIN.md: the DC accepts the current and the previous
//!   password) still accepts it. The lab's own faults use secrets two rotations old, so
//!   they behave the same in both modes.
//! - Domain users still log on to members from the lab's own user table (NTLM is verified
//!   by the lab); only computer accounts live in Samba. The lab's `Administrator`,
//!   `tsrepair` and `helpdesk` take the passwords the facts give for them, and their RIDs
//!   and the domain SID are read from the DC.
//!
//! The DC pair is shared by everything that uses it: accounts are kept apart by name
//! prefix (the lab touches only `PREFIXnnnn` accounts of its OU), but replication is
//! domain-wide, so two labs on the same pair must not run at once if either relies on a
//! difference between the DCs.
//!
//! # Blocking
//! The lab's model is synchronous and holds one mutex, and it is called from async code
//! (`Lab::logon`, possibly on a current-thread runtime) and from `spawn_blocking`
//! (`Lab::execute`). So the LDAP work runs on a thread of its own that owns a
//! current-thread tokio runtime; callers hand it a job over a std channel and wait for the
//! answer at most [`OP_TIMEOUT`] (plus a little), never with `block_on` on their own
//! runtime. That serialises the lab behind LDAP round trips (one or two sessions per channel
//! check): fine for tens of hosts. It is a correctness mode, not a benchmark mode.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use ad::{AdConfig, AdError, DirectoryAccount};
use secrecy::{ExposeSecret, SecretString};

use crate::domain::{AccountView, ChannelCheck, DcIndex, WriteRefused};

/// How long one directory operation may take (connection, TLS, bind and the request).
pub const OP_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a forced replication may take.
const REPLICATION_TIMEOUT: Duration = Duration::from_secs(60);

/// One DC of the pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SambaDc {
    /// `dc1`.
    pub name: String,
    /// `dc1.lab.test`.
    pub fqdn: String,
    /// `ldaps://127.0.0.10` (the certificate carries the address as an IP SAN).
    pub url: String,
}

/// A domain user the facts name, with its password in the DC.
#[derive(Clone)]
pub struct SambaUser {
    /// As the facts write it: `helpdesk@lab.test`.
    pub name: String,
    /// Its password.
    pub password: SecretString,
}

impl fmt::Debug for SambaUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SambaUser")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Where the DCs are and who may write to them: the facts `samba-dc.sh` writes.
#[derive(Clone)]
pub struct SambaConfig {
    /// The DCs, dc1 first (it holds the PDC emulator role).
    pub dcs: Vec<SambaDc>,
    /// The lab CA (PEM) that signed the DCs' certificate.
    pub ca_file: PathBuf,
    /// `Administrator@lab.test`: creates, resets and deletes the lab's accounts.
    pub admin_user: String,
    /// Its password.
    pub admin_password: SecretString,
    /// NetBIOS domain name, `LAB` (the first label of the realm).
    pub netbios: String,
    /// DNS domain name, `lab.test`.
    pub dns_domain: String,
    /// The domain's DN, `DC=lab,DC=test` (its objectSid is the domain SID).
    pub base_dn: String,
    /// The OU holding the lab's computer accounts, `OU=TrustsweepLab,DC=lab,DC=test`.
    pub lab_ou: String,
    /// The repair account with the Reset Password right on the lab OU's computers:
    /// `tsrepair@lab.test`.
    pub repair_user: String,
    /// Its password.
    pub repair_password: SecretString,
    /// Other domain users the facts name (`helpdesk@lab.test`, no rights).
    pub other_users: Vec<SambaUser>,
    /// `(scripts/samba-dc.sh, SAMBA_LAB_DIR)`, to force replication; `None` when the facts
    /// do not say.
    pub replicate: Option<(PathBuf, PathBuf)>,
}

impl fmt::Debug for SambaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SambaConfig")
            .field("dcs", &self.dcs)
            .field("ca_file", &self.ca_file)
            .field("admin_user", &self.admin_user)
            .field("base_dn", &self.base_dn)
            .field("lab_ou", &self.lab_ou)
            .field("repair_user", &self.repair_user)
            .field("other_users", &self.other_users)
            .field("replicate", &self.replicate)
            .finish_non_exhaustive()
    }
}

/// Why the Samba lab's facts file could not be used (the environment: the DCs were not
/// started, or by an older script).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FactsError {
    /// The file could not be read.
    #[error("cannot read the Samba lab facts {}: {source} (start the DCs with LAB_WITH_DC2=1 scripts/samba-dc.sh start)", path.display())]
    Unreadable {
        /// The facts file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A key is missing.
    #[error("{}: no {key} (written by an older scripts/samba-dc.sh? start the DCs again)", path.display())]
    Missing {
        /// The facts file.
        path: PathBuf,
        /// The missing key.
        key: String,
    },
}

impl SambaConfig {
    /// Reads `facts.env` as `scripts/samba-dc.sh start` writes it (`KEY=VALUE` lines). The
    /// DCs are `LAB_DC1_ADDR`, `LAB_DC2_ADDR`, … as far as they go (dc2 only with
    /// `LAB_WITH_DC2=1`).
    pub fn from_facts_file(path: &Path) -> Result<SambaConfig, FactsError> {
        let text = std::fs::read_to_string(path).map_err(|source| FactsError::Unreadable {
            path: path.to_path_buf(),
            source,
        })?;
        let facts: BTreeMap<&str, &str> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        let opt = |key: &str| {
            facts
                .get(key)
                .map(|v| v.to_string())
                .filter(|v| !v.is_empty())
        };
        let get = |key: &str| -> Result<String, FactsError> {
            opt(key).ok_or_else(|| FactsError::Missing {
                path: path.to_path_buf(),
                key: key.to_string(),
            })
        };
        let dns_domain = get("LAB_DNS_DOMAIN")?;
        let realm = get("LAB_REALM")?;
        let mut dcs = Vec::new();
        for i in 1usize.. {
            let Some(addr) = opt(&format!("LAB_DC{i}_ADDR")) else {
                break;
            };
            dcs.push(SambaDc {
                name: format!("dc{i}"),
                fqdn: format!("dc{i}.{dns_domain}"),
                url: format!("ldaps://{addr}"),
            });
        }
        if dcs.is_empty() {
            get("LAB_DC1_ADDR")?;
        }
        let user_password = get("LAB_USER_PASSWORD")?;
        let other_users = opt("LAB_NON_READER")
            .map(|name| SambaUser {
                name,
                password: SecretString::from(user_password.clone()),
            })
            .into_iter()
            .collect();
        let replicate = match (opt("LAB_SCRIPT"), opt("LAB_DIR")) {
            (Some(script), Some(dir)) => Some((PathBuf::from(script), PathBuf::from(dir))),
            _ => None,
        };
        Ok(SambaConfig {
            dcs,
            ca_file: PathBuf::from(get("LAB_CA_FILE")?),
            admin_user: get("LAB_ADMIN_USER")?,
            admin_password: SecretString::from(get("LAB_ADMIN_PASSWORD")?),
            netbios: realm
                .split('.')
                .next()
                .unwrap_or(&realm)
                .to_ascii_uppercase(),
            dns_domain,
            base_dn: get("LAB_BASE_DN")?,
            lab_ou: get("LAB_LAB_OU")?,
            repair_user: get("LAB_REPAIR_USER")?,
            repair_password: SecretString::from(user_password),
            other_users,
            replicate,
        })
    }

    /// The password the facts give for domain user `sam` (`tsrepair`, `Administrator`,
    /// `helpdesk`), if they name it.
    pub fn password_of(&self, sam: &str) -> Option<SecretString> {
        let named = |upn: &str| {
            upn.split('@')
                .next()
                .is_some_and(|u| u.eq_ignore_ascii_case(sam))
        };
        if named(&self.admin_user) {
            return Some(self.admin_password.clone());
        }
        if named(&self.repair_user) {
            return Some(self.repair_password.clone());
        }
        self.other_users
            .iter()
            .find(|u| named(&u.name))
            .map(|u| u.password.clone())
    }
}

/// Why a directory operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SambaError {
    /// The DC answered with an error, or could not be reached (the DC is named).
    #[error(transparent)]
    Directory(#[from] AdError),
    /// No answer within the bound: the DC or the worker thread is stuck.
    #[error("no answer from the Samba DCs within {after:?} ({what})")]
    NoAnswer {
        /// What was asked.
        what: &'static str,
        /// How long the caller waited.
        after: Duration,
    },
    /// The worker thread is gone (it only stops when the directory is dropped).
    #[error("the Samba directory's worker thread has stopped")]
    WorkerGone,
    /// The worker could not be started.
    #[error("cannot start the Samba directory's worker thread: {0}")]
    Start(#[source] std::io::Error),
    /// No DC with that index.
    #[error("the Samba lab has no DC with index {0}")]
    NoSuchDc(DcIndex),
    /// A lab computer's name is taken by an account outside the lab OU.
    #[error(
        "the computer name {name} is taken by {dn}, outside the lab OU: give the lab another name prefix \
         (the Samba lab's OU=Workstations holds WS0001…)"
    )]
    NameTaken {
        /// The computer name.
        name: String,
        /// The other account.
        dn: String,
    },
    /// The facts name no script to force replication with.
    #[error("the Samba lab facts name no replication script (LAB_SCRIPT and LAB_DIR)")]
    NoReplicationScript,
    /// `samba-dc.sh replicate` failed.
    #[error("replication {src} -> {dest} failed: {message}")]
    Replication {
        /// Destination DC.
        dest: String,
        /// Source DC.
        src: String,
        /// What the script said.
        message: String,
    },
}

type Job = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The thread that does the LDAP work (see the module docs). It stops when the sender is
/// dropped, i.e. with the directory.
struct Worker {
    jobs: mpsc::Sender<Job>,
}

impl Worker {
    fn start() -> Result<Worker, SambaError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(SambaError::Start)?;
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("lab-samba".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    rt.block_on(job);
                }
            })
            .map_err(SambaError::Start)?;
        Ok(Worker { jobs })
    }

    /// Runs `fut` on the worker and waits for its result, at most `after` (the job itself
    /// is cut off at `after` too).
    fn run<T: Send + 'static>(
        &self,
        what: &'static str,
        after: Duration,
        fut: impl Future<Output = Result<T, SambaError>> + Send + 'static,
    ) -> Result<T, SambaError> {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::pin(async move {
            let r = tokio::time::timeout(after, fut).await;
            let _ = tx.send(r);
        });
        self.jobs.send(job).map_err(|_| SambaError::WorkerGone)?;
        match rx.recv_timeout(after.saturating_add(Duration::from_secs(1))) {
            Ok(Ok(r)) => r,
            Ok(Err(_)) | Err(mpsc::RecvTimeoutError::Timeout) => {
                Err(SambaError::NoAnswer { what, after })
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(SambaError::WorkerGone),
        }
    }
}

/// The lab's connection to the DCs (see the module docs).
pub struct SambaDirectory {
    cfg: SambaConfig,
    worker: Worker,
}

impl fmt::Debug for SambaDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SambaDirectory")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl SambaDirectory {
    /// Starts the worker and makes sure the lab OU exists (on dc1, as the administrator).
    pub fn connect(cfg: SambaConfig) -> Result<SambaDirectory, SambaError> {
        let dir = SambaDirectory {
            worker: Worker::start()?,
            cfg,
        };
        let admin = dir.admin(0)?;
        let ou = dir.cfg.lab_ou.clone();
        dir.ldap("lab OU creation", async move {
            ad::ensure_ou(&admin, &ou).await
        })?;
        Ok(dir)
    }

    /// The configuration.
    pub fn config(&self) -> &SambaConfig {
        &self.cfg
    }

    fn ldap<T: Send + 'static>(
        &self,
        what: &'static str,
        fut: impl Future<Output = Result<T, AdError>> + Send + 'static,
    ) -> Result<T, SambaError> {
        self.worker.run(what, OP_TIMEOUT, async move {
            fut.await.map_err(SambaError::from)
        })
    }

    fn dc(&self, dc: DcIndex) -> Result<&SambaDc, SambaError> {
        self.cfg.dcs.get(dc).ok_or(SambaError::NoSuchDc(dc))
    }

    /// A session configuration for `dc`, bound as `user`.
    fn bind_as(
        &self,
        dc: DcIndex,
        user: &str,
        password: &SecretString,
    ) -> Result<AdConfig, SambaError> {
        let d = self.dc(dc)?;
        let mut c = AdConfig::new(
            d.url.clone(),
            user.to_string(),
            password.clone(),
            self.cfg.base_dn.clone(),
        );
        c.ca_file = Some(self.cfg.ca_file.clone());
        c.connect_timeout = Duration::from_secs(5);
        c.op_timeout = OP_TIMEOUT;
        Ok(c)
    }

    fn admin(&self, dc: DcIndex) -> Result<AdConfig, SambaError> {
        self.bind_as(dc, &self.cfg.admin_user, &self.cfg.admin_password)
    }

    /// `LAB\NAME$`: the simple-bind name of a computer account that Samba accepts.
    fn machine_name(&self, computer: &str) -> String {
        format!(
            "{}\\{}$",
            self.cfg.netbios,
            computer.trim_end_matches('$').to_ascii_uppercase()
        )
    }

    /// The domain SID, from the domain object's objectSid on dc1.
    pub fn domain_sid(&self) -> Result<String, SambaError> {
        let admin = self.admin(0)?;
        self.ldap(
            "domain SID read",
            async move { ad::domain_sid(&admin).await },
        )
    }

    /// The RID of domain user `sam` on dc1 (`None` when dc1 holds no such account).
    pub fn user_rid(&self, sam: &str) -> Result<Option<u32>, SambaError> {
        let admin = self.admin(0)?;
        let sam = sam.to_string();
        Ok(self
            .ldap(
                "user read",
                async move { ad::read_account(&admin, &sam).await },
            )?
            .and_then(|a| a.rid()))
    }

    /// `computer`'s account in the lab OU as `dc` holds it, read as the administrator. The
    /// lab never sees (nor writes) an account outside its OU.
    pub fn account(
        &self,
        computer: &str,
        dc: DcIndex,
    ) -> Result<Option<DirectoryAccount>, SambaError> {
        let mut admin = self.admin(dc)?;
        admin.base_dn = self.cfg.lab_ou.clone();
        let name = computer.to_string();
        self.ldap("computer read", async move {
            ad::read_computer(&admin, &name).await
        })
    }

    /// Would a patched Windows DC let `joiner_sid` reuse `computer`'s object (KB5020276)?
    /// Samba 4.17 does not enforce the block itself, so the lab decides as Windows would from
    /// what the real DC holds: the owner in `nTSecurityDescriptor` and `mS-DS-CreatorSID`,
    /// read by the same preflight code trustsweep uses (`ad::reuse_facts`).
    /// `Ok(false)` when no object is found (the caller has seen one: refuse, pessimistically).
    pub fn reuse_allowed(
        &self,
        computer: &str,
        dc: DcIndex,
        joiner_sid: &str,
    ) -> Result<bool, SambaError> {
        let mut admin = self.admin(dc)?;
        admin.base_dn = self.cfg.lab_ou.clone();
        let name = computer.to_string();
        let facts = self.ldap(
            "reuse read",
            async move { ad::reuse_facts(&admin, &name).await },
        )?;
        Ok(facts.is_some_and(|f| f.verdict(Some(joiner_sid)).allowed))
    }

    /// Creates `computer` in the lab OU on `dc`, unless the name is taken elsewhere in the
    /// domain (by the script's `WS0001`… in `OU=Workstations`, say).
    fn create(
        &self,
        computer: &str,
        dc: DcIndex,
        password: &SecretString,
    ) -> Result<(), SambaError> {
        let admin = self.admin(dc)?;
        let name = computer.to_ascii_uppercase();
        let (read_as, read_name) = (admin.clone(), name.clone());
        if let Some(other) = self.ldap("computer read", async move {
            ad::read_computer(&read_as, &read_name).await
        })? {
            return Err(SambaError::NameTaken { name, dn: other.dn });
        }
        let (ou, domain, new) = (
            self.cfg.lab_ou.clone(),
            self.cfg.dns_domain.clone(),
            password.clone(),
        );
        self.ldap("computer creation", async move {
            ad::create_computer(&admin, &ou, &name, &domain, &new).await
        })?;
        Ok(())
    }

    /// Does `secret` open a secure channel with `dc`? A bind as `LAB\NAME$`; when it is
    /// refused, the object says whether the account is missing or disabled (1787) or the
    /// password wrong (5). A DC that cannot be asked is [`ChannelCheck::DcUnreachable`].
    pub fn check_secret(&self, computer: &str, dc: DcIndex, secret: &SecretString) -> ChannelCheck {
        if secret.expose_secret().is_empty() {
            return ChannelCheck::WrongPassword;
        }
        let checked = self.admin(dc).and_then(|admin| {
            let (account, secret) = (self.machine_name(computer), secret.clone());
            self.ldap("channel check", async move {
                ad::check_password(&admin, &account, &secret).await
            })
        });
        match checked {
            Ok(true) => ChannelCheck::Ok,
            Ok(false) => match self.account(computer, dc) {
                Ok(Some(a)) if !a.disabled() => ChannelCheck::WrongPassword,
                Ok(_) => ChannelCheck::NoAccount,
                Err(e) => unreachable_dc(dc, computer, &e),
            },
            Err(e) => unreachable_dc(dc, computer, &e),
        }
    }

    /// What `dc` holds of `computer` (`None` when nothing, or when the DC cannot be read,
    /// which is logged). `version` is always 0: AD has no per-account write counter to
    /// compare across DCs (`uSNChanged` is each DC's own sequence).
    pub fn view(&self, computer: &str, dc: DcIndex) -> Option<AccountView> {
        match self.account(computer, dc) {
            Ok(found) => found.map(|a| AccountView {
                sam_account_name: format!(
                    "{}$",
                    computer.trim_end_matches('$').to_ascii_uppercase()
                ),
                enabled: !a.disabled(),
                pwd_last_set: a.pwd_last_set,
                object_sid: a.object_sid.unwrap_or_default(),
                version: 0,
                dn: Some(a.dn),
                // `ad` reads neither the owner nor `mS-DS-CreatorSID`; the
                // lab's join refuses reuse on real DCs instead (see `Add-Computer`).
                owner_sid: None,
                creator_sid: None,
            }),
            Err(e) => {
                tracing::warn!(dc, computer, "Samba DC read failed: {e}");
                None
            }
        }
    }

    /// Deletes `computer`'s object on `dc` if there is one, then creates it afresh in the
    /// lab OU with `password` (a new objectSid).
    pub fn recreate(
        &self,
        computer: &str,
        dc: DcIndex,
        password: &SecretString,
    ) -> Result<(), SambaError> {
        self.delete(computer, dc)?;
        self.create(computer, dc, password)
    }

    /// An administrative reset of `computer`'s password on `dc` as the administrator,
    /// creating the account in the lab OU when `dc` holds none.
    pub fn write_password(
        &self,
        computer: &str,
        dc: DcIndex,
        new: &SecretString,
    ) -> Result<(), SambaError> {
        match self.account(computer, dc)? {
            Some(a) => {
                let (admin, new) = (self.admin(dc)?, new.clone());
                self.ldap("password reset", async move {
                    ad::set_password(&admin, &a.dn, &new).await
                })
            }
            None => self.create(computer, dc, new),
        }
    }

    /// The member's own password change on `dc`, bound as `LAB\NAME$` with `old`.
    pub fn change_own_password(
        &self,
        computer: &str,
        dc: DcIndex,
        old: &SecretString,
        new: &SecretString,
    ) -> Result<(), SambaError> {
        let Some(a) = self.account(computer, dc)? else {
            return Err(AdError::NotFound {
                dc: self.dc(dc)?.url.clone(),
                what: format!("computer account {}", self.machine_name(computer)),
            }
            .into());
        };
        let cfg = self.bind_as(dc, &self.machine_name(computer), old)?;
        let new = new.clone();
        self.ldap("password change", async move {
            ad::change_own_password(&cfg, &a.dn, &new).await
        })
    }

    /// Is `user` (a simple-bind name: `LAB\tsrepair`, `tsrepair@lab.test`) with `password`
    /// accepted by `dc`?
    pub fn credential_valid(
        &self,
        dc: DcIndex,
        user: &str,
        password: &SecretString,
    ) -> Result<bool, SambaError> {
        if password.expose_secret().is_empty() {
            return Ok(false);
        }
        let admin = self.admin(dc)?;
        let (user, password) = (user.to_string(), password.clone());
        self.ldap("credential check", async move {
            ad::check_password(&admin, &user, &password).await
        })
    }

    /// Resets `computer`'s password on `dc` bound as `user` with `password` (what
    /// `Reset-ComputerMachinePassword -Credential` does): the DC checks the credential and
    /// enforces the Reset Password right.
    pub fn reset_as(
        &self,
        computer: &str,
        dc: DcIndex,
        new: &SecretString,
        user: &str,
        password: &SecretString,
    ) -> Result<(), WriteRefused> {
        let unavailable = |e: &SambaError| {
            tracing::warn!(dc, computer, "Samba password reset as {user} failed: {e}");
            WriteRefused::Unavailable
        };
        let Some(a) = self.account(computer, dc).map_err(|e| unavailable(&e))? else {
            return Err(WriteRefused::NoAccount);
        };
        if password.expose_secret().is_empty() {
            return Err(WriteRefused::BadCredentials);
        }
        let cfg = self
            .bind_as(dc, user, password)
            .map_err(|e| unavailable(&e))?;
        let new = new.clone();
        match self.ldap("password reset", async move {
            ad::set_password(&cfg, &a.dn, &new).await
        }) {
            Ok(()) => Ok(()),
            Err(SambaError::Directory(AdError::AccessDenied { .. })) => {
                Err(WriteRefused::AccessDenied)
            }
            Err(SambaError::Directory(AdError::BindFailed { .. })) => {
                Err(WriteRefused::BadCredentials)
            }
            Err(SambaError::Directory(AdError::NotFound { .. })) => Err(WriteRefused::NoAccount),
            Err(e) => Err(unavailable(&e)),
        }
    }

    /// Enables or disables `computer` on `dc` (as the administrator). `Ok(false)` when `dc`
    /// holds no such account.
    pub fn set_enabled(
        &self,
        computer: &str,
        dc: DcIndex,
        enabled: bool,
    ) -> Result<bool, SambaError> {
        let Some(a) = self.account(computer, dc)? else {
            return Ok(false);
        };
        let admin = self.admin(dc)?;
        let uac = if enabled {
            a.user_account_control & !ad::UAC_ACCOUNTDISABLE
        } else {
            a.user_account_control | ad::UAC_ACCOUNTDISABLE
        };
        self.ldap("userAccountControl write", async move {
            ad::set_user_account_control(&admin, &a.dn, uac).await
        })?;
        Ok(true)
    }

    /// Makes `owner` (a SID) the owner of `computer`'s object on `dc` (as the
    /// administrator). `Ok(false)` when `dc` holds no such account.
    pub fn set_owner(&self, computer: &str, dc: DcIndex, owner: &str) -> Result<bool, SambaError> {
        let Some(a) = self.account(computer, dc)? else {
            return Ok(false);
        };
        let admin = self.admin(dc)?;
        let owner = owner.to_string();
        self.ldap("owner write", async move {
            ad::set_owner(&admin, &a.dn, &owner).await
        })?;
        Ok(true)
    }

    /// Writes what Windows LAPS on `computer` writes after a rotation (`msLAPS-Password`
    /// JSON naming `account`, and the expiration time) on its object on `dc`, as the
    /// administrator standing in for the device's own write. `Ok(false)` when `dc` holds
    /// no such account.
    pub fn write_laps(
        &self,
        computer: &str,
        dc: DcIndex,
        account: &str,
        password: &SecretString,
        updated: u64,
        expires: u64,
    ) -> Result<bool, SambaError> {
        let Some(a) = self.account(computer, dc)? else {
            return Ok(false);
        };
        let admin = self.admin(dc)?;
        let (account, password) = (account.to_string(), password.clone());
        self.ldap("LAPS write", async move {
            ad::write_laps(&admin, &a.dn, &account, &password, updated, expires).await
        })?;
        Ok(true)
    }

    /// Deletes `computer`'s object on `dc` (as the administrator). `Ok(false)` when `dc`
    /// holds none.
    pub fn delete(&self, computer: &str, dc: DcIndex) -> Result<bool, SambaError> {
        let Some(a) = self.account(computer, dc)? else {
            return Ok(false);
        };
        let admin = self.admin(dc)?;
        self.ldap(
            "deletion",
            async move { ad::delete_object(&admin, &a.dn).await },
        )?;
        Ok(true)
    }

    /// Deletes, on `dc`, the lab OU's computer accounts named `prefix` and four digits
    /// (`TSL0042`) that are not in `keep`: what an earlier, larger lab with the same prefix
    /// left. Other names in the OU are left alone. Returns how many were deleted.
    pub fn remove_stale(
        &self,
        dc: DcIndex,
        prefix: &str,
        keep: &[String],
    ) -> Result<usize, SambaError> {
        let mut cfg = self.admin(dc)?;
        cfg.base_dn = self.cfg.lab_ou.clone();
        cfg.include_disabled = true;
        let found = self.ldap("lab OU listing", async move {
            ad::enumerate_computers(&cfg).await
        })?;
        let prefix = prefix.to_ascii_uppercase();
        let mut deleted = 0;
        for c in found {
            let name = c.name.to_ascii_uppercase();
            let numbered = name.strip_prefix(prefix.as_str()).is_some_and(|digits| {
                digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_digit())
            });
            if numbered && !keep.iter().any(|k| k.eq_ignore_ascii_case(&name)) {
                let admin = self.admin(dc)?;
                let dn = c.distinguished_name.clone();
                self.ldap(
                    "deletion",
                    async move { ad::delete_object(&admin, &dn).await },
                )?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    /// Forces replication of the domain partition from DC `src` to DC `dest`
    /// (`samba-dc.sh replicate`, i.e. `samba-tool drs replicate`).
    pub fn replicate(&self, dest: DcIndex, src: DcIndex) -> Result<(), SambaError> {
        let (d, s) = (self.dc(dest)?.name.clone(), self.dc(src)?.name.clone());
        let (script, dir) = self
            .cfg
            .replicate
            .clone()
            .ok_or(SambaError::NoReplicationScript)?;
        self.worker
            .run("replication", REPLICATION_TIMEOUT, async move {
                let failed = |message: String| SambaError::Replication {
                    dest: d.clone(),
                    src: s.clone(),
                    message,
                };
                let out = tokio::process::Command::new("bash")
                    .arg(&script)
                    .args(["replicate", d.as_str(), s.as_str()])
                    .env("SAMBA_LAB_DIR", &dir)
                    .stdin(Stdio::null())
                    .kill_on_drop(true)
                    .output()
                    .await
                    .map_err(|e| failed(format!("cannot run {}: {e}", script.display())))?;
                if out.status.success() {
                    Ok(())
                } else {
                    Err(failed(
                        String::from_utf8_lossy(&out.stderr).trim().to_string(),
                    ))
                }
            })
    }
}

fn unreachable_dc(dc: DcIndex, computer: &str, e: &SambaError) -> ChannelCheck {
    tracing::warn!(dc, computer, "Samba DC not usable for a channel check: {e}");
    ChannelCheck::DcUnreachable
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(tag: &str, extra: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("lab-samba-facts-{}-{tag}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("facts.env");
        let text = format!(
            "LAB_DIR=/srv/lab\nLAB_REALM=LAB.TEST\nLAB_DNS_DOMAIN=lab.test\nLAB_BASE_DN=DC=lab,DC=test\n\
             LAB_LAB_OU=OU=TrustsweepLab,DC=lab,DC=test\nLAB_SCRIPT=/srv/samba-dc.sh\nLAB_DC1_ADDR=127.0.0.10\n\
             LAB_CA_FILE=/srv/ca.pem\nLAB_ADMIN_USER=Administrator@lab.test\nLAB_ADMIN_PASSWORD=Adm=in!1\n\
             LAB_NON_READER=helpdesk@lab.test\nLAB_REPAIR_USER=tsrepair@lab.test\nLAB_USER_PASSWORD=User-1!\n{extra}"
        );
        let _ = std::fs::write(&path, text);
        path
    }

    #[test]
    fn facts_file() {
        let cfg = SambaConfig::from_facts_file(&facts("two", "LAB_DC2_ADDR=127.0.0.11\n")).ok();
        let cfg = cfg.as_ref();
        assert_eq!(cfg.map(|c| c.dcs.len()), Some(2));
        assert_eq!(
            cfg.and_then(|c| c.dcs.last()).map(|d| d.url.as_str()),
            Some("ldaps://127.0.0.11")
        );
        assert_eq!(
            cfg.and_then(|c| c.dcs.last()).map(|d| d.fqdn.as_str()),
            Some("dc2.lab.test")
        );
        assert_eq!(cfg.map(|c| c.netbios.as_str()), Some("LAB"));
        assert_eq!(
            cfg.and_then(|c| c.password_of("ADMINISTRATOR"))
                .map(|p| p.expose_secret().to_string())
                .as_deref(),
            Some("Adm=in!1")
        );
        assert_eq!(
            cfg.and_then(|c| c.password_of("helpdesk"))
                .map(|p| p.expose_secret().to_string())
                .as_deref(),
            Some("User-1!")
        );
        assert!(cfg.and_then(|c| c.password_of("nobody")).is_none());
        assert_eq!(
            cfg.and_then(|c| c.replicate.clone()),
            Some((PathBuf::from("/srv/samba-dc.sh"), PathBuf::from("/srv/lab")))
        );
        let debug = format!("{cfg:?}");
        assert!(
            !debug.contains("Adm=in!1") && !debug.contains("User-1!"),
            "{debug}"
        );

        let one = SambaConfig::from_facts_file(&facts("one", "")).map(|c| c.dcs.len());
        assert_eq!(one.ok(), Some(1));
        let missing = SambaConfig::from_facts_file(Path::new("/nonexistent/facts.env"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(missing.contains("/nonexistent/facts.env"), "{missing}");
    }

    #[test]
    fn missing_key_names_file_and_key() {
        let path = facts("missing", "");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .replace("LAB_LAB_OU=", "#LAB_LAB_OU=");
        let _ = std::fs::write(&path, text);
        let err = SambaConfig::from_facts_file(&path)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("no LAB_LAB_OU") && err.contains(&path.display().to_string()),
            "{err}"
        );
    }
}
