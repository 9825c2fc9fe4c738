//! The lab's computer accounts in a real Active Directory: a Samba AD DC pair started by
//! `scripts/samba-dc.sh start` (with `LAB_WITH_DC2=1`). With [`crate::model::Directory::Samba`]
//! the lab still simulates the member hosts, but every computer-account read and write
//! goes to the DCs over LDAPS: a secure channel works when the DC the member uses accepts
//! a simple bind as `LAB\NAME$` with the member's secret; `Reset-ComputerMachinePassword`
//! and a DC-side reset replace `unicodePwd` on one DC; `pwdLastSet`, SIDs and replication
//! lag are Samba's own.
//!
//! Differences from the in-memory model, all from Samba:
//! - Replication between the DCs happens only when forced ([`SambaDirectory::replicate`],
//!   `samba-dc.sh replicate`); the script turns periodic replication off, so a write stays
//!   on its DC (the in-memory model replicates after `replication_delay`).
//! - The script sets `old password allowed period = 0`, so a DC accepts only the current
//!   password: an administrative reset takes effect at once, as Microsoft documents for
//!   "Reset Account", but a member that restored the password it had one rotation ago
//!   is broken too (Windows' Netlogon would accept the previous password there; lab
//!   faults use secrets two rotations old, so they behave the same in both modes).
//! - Domain users (`tsrepair`, …) still log on to members from the lab's own table; only
//!   computer accounts live in Samba. `tsrepair`'s password is the one the script gave it.
//!
//! The lab model is synchronous and holds one mutex; LDAP runs on a small runtime owned
//! here, and callers wait for it (bounded). That serialises the lab behind LDAP round
//! trips: fine for tens of hosts (a correctness mode, not a benchmark mode).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use inventory::ad::{self, AdConfig};
use secrecy::{ExposeSecret, SecretString};

use crate::domain::{AccountView, ChannelCheck, DcIndex};

/// How long one directory operation may take, waiting included.
const OP_TIMEOUT: Duration = Duration::from_secs(20);

/// One DC of the pair.
#[derive(Debug, Clone)]
pub struct SambaDc {
    /// `dc1`.
    pub name: String,
    /// `dc1.lab.test`.
    pub fqdn: String,
    /// `ldaps://127.0.0.10` (the certificate carries the address).
    pub url: String,
}

/// Where the DCs are and who may write to them, from the script's `facts.env`.
#[derive(Clone)]
pub struct SambaConfig {
    /// The DCs; index 0 (`dc1`) holds the PDC emulator role.
    pub dcs: Vec<SambaDc>,
    /// The lab CA (PEM) that signed the DCs' certificates.
    pub ca_file: PathBuf,
    /// `Administrator@lab.test`: creates, resets and deletes the lab's accounts.
    pub admin_user: String,
    /// Its password.
    pub admin_password: SecretString,
    /// NetBIOS domain name, `LAB`.
    pub netbios: String,
    /// DNS domain name, `lab.test`.
    pub dns_domain: String,
    /// The OU holding the lab's computer accounts.
    pub lab_ou: String,
    /// `tsrepair`'s password in the DC (the lab's repair account uses it).
    pub repair_password: SecretString,
    /// `scripts/samba-dc.sh`, to force replication.
    pub script: PathBuf,
    /// The script's `SAMBA_LAB_DIR`.
    pub lab_dir: PathBuf,
}

impl fmt::Debug for SambaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SambaConfig")
            .field("dcs", &self.dcs)
            .field("lab_ou", &self.lab_ou)
            .field("admin_user", &self.admin_user)
            .finish_non_exhaustive()
    }
}

impl SambaConfig {
    /// Reads `facts.env` as `scripts/samba-dc.sh start` writes it (with `LAB_WITH_DC2=1`).
    pub fn from_facts_file(path: &Path) -> Result<SambaConfig, String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!("cannot read the Samba lab facts {}: {e} (start the DCs with LAB_WITH_DC2=1 scripts/samba-dc.sh start)", path.display())
        })?;
        let facts: BTreeMap<&str, &str> =
            text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.trim(), v.trim())).collect();
        let get = |key: &str| -> Result<String, String> {
            facts.get(key).map(|v| v.to_string()).filter(|v| !v.is_empty()).ok_or_else(|| {
                format!("{}: no {key}: written by an older scripts/samba-dc.sh or without LAB_WITH_DC2=1; start the DCs again", path.display())
            })
        };
        let dns_domain = get("LAB_DNS_DOMAIN")?;
        let dcs = ["1", "2"]
            .iter()
            .map(|i| {
                Ok(SambaDc {
                    name: format!("dc{i}"),
                    fqdn: format!("dc{i}.{dns_domain}"),
                    url: format!("ldaps://{}", get(&format!("LAB_DC{i}_ADDR"))?),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let realm = get("LAB_REALM")?;
        Ok(SambaConfig {
            dcs,
            ca_file: PathBuf::from(get("LAB_CA_FILE")?),
            admin_user: get("LAB_ADMIN_USER")?,
            admin_password: SecretString::from(get("LAB_ADMIN_PASSWORD")?),
            netbios: realm.split('.').next().unwrap_or(&realm).to_string(),
            dns_domain,
            lab_ou: get("LAB_LAB_OU")?,
            repair_password: SecretString::from(get("LAB_USER_PASSWORD")?),
            script: PathBuf::from(get("LAB_SCRIPT")?),
            lab_dir: PathBuf::from(get("LAB_DIR")?),
        })
    }
}

/// The lab's connection to the DCs (see the module docs).
pub struct SambaDirectory {
    cfg: SambaConfig,
    rt: Option<tokio::runtime::Runtime>,
}

impl fmt::Debug for SambaDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SambaDirectory").field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

impl Drop for SambaDirectory {
    fn drop(&mut self) {
        // Dropping a runtime may happen inside another one (a test's): never block there.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl SambaDirectory {
    /// Connects (creating the lab OU if needed).
    pub fn connect(cfg: SambaConfig) -> Result<SambaDirectory, String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("lab-samba")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the Samba directory's runtime: {e}"))?;
        let dir = SambaDirectory { cfg, rt: Some(rt) };
        let admin = dir.admin(0)?;
        let ou = dir.cfg.lab_ou.clone();
        dir.run(async move { ad::ensure_ou(&admin, &ou).await })??;
        Ok(dir)
    }

    /// The configuration.
    pub fn config(&self) -> &SambaConfig {
        &self.cfg
    }

    /// Runs `fut` on the directory's runtime and waits for it, at most [`OP_TIMEOUT`].
    fn run<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = Result<T, ad::AdError>> + Send + 'static,
    ) -> Result<Result<T, String>, String> {
        let rt = self.rt.as_ref().ok_or("the Samba directory is shut down")?;
        let (tx, rx) = mpsc::sync_channel(1);
        rt.spawn(async move {
            let r = tokio::time::timeout(OP_TIMEOUT, fut).await;
            let _ = tx.send(r);
        });
        match rx.recv_timeout(OP_TIMEOUT + Duration::from_secs(1)) {
            Ok(Ok(r)) => Ok(r.map_err(|e| e.to_string())),
            Ok(Err(_)) | Err(_) => Err(format!("no answer from the Samba DCs within {OP_TIMEOUT:?}")),
        }
    }

    fn ad_config(&self, dc: DcIndex, user: &str, password: &SecretString) -> Result<AdConfig, String> {
        let d = self.cfg.dcs.get(dc).ok_or_else(|| format!("no DC with index {dc}"))?;
        let mut c = AdConfig::new(d.url.clone(), user.to_string(), password.clone(), String::new());
        c.ca_file = Some(self.cfg.ca_file.clone());
        c.connect_timeout = Duration::from_secs(5);
        c.op_timeout = OP_TIMEOUT;
        Ok(c)
    }

    fn admin(&self, dc: DcIndex) -> Result<AdConfig, String> {
        self.ad_config(dc, &self.cfg.admin_user, &self.cfg.admin_password)
    }

    /// The account of `computer` on `dc`, as an admin reads it. `Err` when the DC could
    /// not be read.
    fn read(&self, computer: &str, dc: DcIndex) -> Result<Option<ad::ComputerOnDc>, String> {
        let admin = self.admin(dc)?;
        let name = computer.to_string();
        self.run(async move { ad::find_computer(&admin, &name).await })?
    }

    /// Does `secret` open a secure channel with `dc`?
    pub fn check_secret(&self, computer: &str, dc: DcIndex, secret: &SecretString) -> ChannelCheck {
        if secret.expose_secret().is_empty() {
            return ChannelCheck::WrongPassword;
        }
        let user = format!("{}\\{}$", self.cfg.netbios, computer.to_ascii_uppercase());
        let accepted = self.ad_config(dc, &user, secret).map(|cfg| self.run(async move { ad::password_accepted(&cfg).await }));
        match accepted {
            Ok(Ok(Ok(true))) => ChannelCheck::Ok,
            Ok(Ok(Ok(false))) => match self.read(computer, dc) {
                Ok(Some(c)) if !c.disabled => ChannelCheck::WrongPassword,
                Ok(_) => ChannelCheck::NoAccount,
                Err(e) => unreachable_dc(dc, &e),
            },
            Ok(Ok(Err(e)) | Err(e)) | Err(e) => unreachable_dc(dc, &e),
        }
    }

    /// What `dc` holds of `computer` (`None` when nothing, or when the DC cannot be read).
    pub fn view(&self, computer: &str, dc: DcIndex) -> Option<AccountView> {
        match self.read(computer, dc) {
            Ok(found) => found.map(|c| AccountView {
                sam_account_name: format!("{}$", computer.to_ascii_uppercase()),
                object_sid: c.object_sid.unwrap_or_default(),
                enabled: !c.disabled,
                pwd_last_set: c.pwd_last_set,
                version: 0,
            }),
            Err(e) => {
                tracing::warn!(dc, computer, "Samba DC read failed: {e}");
                None
            }
        }
    }

    /// Sets `computer`'s password on `dc` (as the administrator), creating the account in
    /// the lab OU when `dc` holds none. False when the DC refused or could not be reached.
    pub fn write_password(&self, computer: &str, dc: DcIndex, new: &SecretString) -> bool {
        let existing = match self.read(computer, dc) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(dc, computer, "Samba DC read failed: {e}");
                return false;
            }
        };
        let Ok(admin) = self.admin(dc) else { return false };
        let (new, name) = (new.clone(), computer.to_ascii_uppercase());
        let (ou, domain) = (self.cfg.lab_ou.clone(), self.cfg.dns_domain.clone());
        let r = match existing {
            Some(c) => self.run(async move { ad::reset_computer_account(&admin, &c.dn, &new).await }),
            None => self.run(async move { ad::create_computer(&admin, &ou, &name, &domain, &new).await.map(|_| ()) }),
        };
        ok_or_warn(dc, computer, "password write", r)
    }

    /// Resets `computer`'s password on `dc` bound as domain user `sam` with `password`
    /// (what `Reset-ComputerMachinePassword -Credential` does): the DC enforces the Reset
    /// Password right.
    pub fn reset_as(
        &self,
        computer: &str,
        dc: DcIndex,
        new: &SecretString,
        sam: &str,
        password: &SecretString,
    ) -> Result<(), crate::domain::WriteRefused> {
        use crate::domain::WriteRefused;
        let existing = self.read(computer, dc).map_err(|e| {
            tracing::warn!(dc, computer, "Samba DC read failed: {e}");
            WriteRefused::Unavailable
        })?;
        let Some(c) = existing else { return Err(WriteRefused::NoAccount) };
        let user = format!("{}\\{sam}", self.cfg.netbios);
        let cfg = self.ad_config(dc, &user, password).map_err(|_| WriteRefused::Unavailable)?;
        let new = new.clone();
        match self.run(async move { ad::reset_computer_account(&cfg, &c.dn, &new).await }) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) if e.contains("Reset Password right") || e.contains("insufficient") => Err(WriteRefused::AccessDenied),
            Ok(Err(e)) | Err(e) => {
                tracing::warn!(dc, computer, "Samba password reset as {user} failed: {e}");
                Err(WriteRefused::Unavailable)
            }
        }
    }

    /// Enables or disables `computer` on `dc`. False when `dc` holds no such account.
    pub fn set_enabled(&self, computer: &str, dc: DcIndex, enabled: bool) -> bool {
        let Ok(Some(c)) = self.read(computer, dc) else { return false };
        let Ok(admin) = self.admin(dc) else { return false };
        let uac = if enabled {
            c.user_account_control & !ad::UAC_ACCOUNTDISABLE
        } else {
            c.user_account_control | ad::UAC_ACCOUNTDISABLE
        };
        ok_or_warn(dc, computer, "userAccountControl write", self.run(async move {
            ad::set_user_account_control(&admin, &c.dn, uac).await
        }))
    }

    /// Deletes `computer`'s object on `dc`. False when `dc` holds none.
    pub fn delete(&self, computer: &str, dc: DcIndex) -> bool {
        let Ok(Some(c)) = self.read(computer, dc) else { return false };
        let Ok(admin) = self.admin(dc) else { return false };
        ok_or_warn(dc, computer, "deletion", self.run(async move { ad::delete_object(&admin, &c.dn).await }))
    }

    /// Forces replication of the domain from DC `src` to DC `dest` (`samba-tool drs
    /// replicate` through the script).
    pub fn replicate(&self, dest: DcIndex, src: DcIndex) -> Result<(), String> {
        let name = |i: DcIndex| self.cfg.dcs.get(i).map(|d| d.name.clone()).ok_or_else(|| format!("no DC with index {i}"));
        let (d, s) = (name(dest)?, name(src)?);
        let out = Command::new("bash")
            .arg(&self.cfg.script)
            .args(["replicate", &d, &s])
            .env("SAMBA_LAB_DIR", &self.cfg.lab_dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.cfg.script.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "replication {s} -> {d} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// Deletes, on `dc`, the lab OU's computer accounts whose names start with `prefix`
    /// and are not in `keep` (left by an earlier, larger lab).
    pub fn remove_others(&self, dc: DcIndex, prefix: &str, keep: &[String]) -> Result<(), String> {
        let admin = self.admin(dc)?;
        let mut cfg = admin.clone();
        cfg.base_dn = self.cfg.lab_ou.clone();
        cfg.include_disabled = true;
        let found = self.run(async move { ad::enumerate_computers(&cfg).await })??;
        for c in found {
            let name = c.name.to_ascii_uppercase();
            if name.starts_with(&prefix.to_ascii_uppercase()) && !keep.contains(&name) {
                let (admin, dn) = (admin.clone(), c.distinguished_name.clone());
                self.run(async move { ad::delete_object(&admin, &dn).await })??;
            }
        }
        Ok(())
    }
}

fn unreachable_dc(dc: DcIndex, e: &str) -> ChannelCheck {
    tracing::warn!(dc, "Samba DC not usable for a channel check: {e}");
    ChannelCheck::DcUnreachable
}

fn ok_or_warn(dc: DcIndex, computer: &str, what: &str, r: Result<Result<(), String>, String>) -> bool {
    match r {
        Ok(Ok(())) => true,
        Ok(Err(e)) | Err(e) => {
            tracing::warn!(dc, computer, "Samba {what} failed: {e}");
            false
        }
    }
}
