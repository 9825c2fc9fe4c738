#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `ad` against a real Active Directory DC: a throwaway Samba AD DC (two, for
//! replication) on loopback, started by `scripts/samba-dc.sh` once per test process.
//!
//! The script installs Samba with apt-get on first use and needs root. These tests do not
//! skip: if the DC cannot be started, they fail with the script's own explanation (a test
//! tier that silently skips is one that cannot fail). The lab stops by itself once this
//! process has exited (`--watch-pid`), and in any case after `--maximum-runtime`.
//!
//! The DC is `ldaps://dc1.lab.test` with a certificate from the lab's own CA; the name is
//! not in DNS, so the tests connect to 127.0.0.10 and verify the certificate for the name
//! (`AdConfig::connect_to`). The per-DC tests use `ldaps://127.0.0.10` / `.11`, verified
//! against the certificate's IP SANs.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ad::{
    enumerate, enumerate_computers, pwd_last_set_differs, pwd_last_set_per_dc, read_laps,
    reset_computer_account, AdConfig, AdError, LapsSource,
};
use secrecy::{ExposeSecret as _, SecretString};

use trustsweep_tests::samba::COMPUTERS;

struct Lab {
    facts: HashMap<String, String>,
    script: PathBuf,
    dir: PathBuf,
}

impl Lab {
    fn fact(&self, key: &str) -> &str {
        self.facts
            .get(key)
            .unwrap_or_else(|| panic!("{key} missing from {}/facts.env", self.dir.display()))
    }

    /// Admin-level config for dc1, by name, connecting to its address.
    fn config(&self, user: &str, password: &str) -> AdConfig {
        let mut cfg = AdConfig::new(
            self.fact("LAB_DC1_URL"),
            user,
            SecretString::from(password.to_string()),
            self.fact("LAB_OU"),
        );
        cfg.ca_file = Some(PathBuf::from(self.fact("LAB_CA_FILE")));
        cfg.connect_to = Some(self.fact("LAB_DC1_ADDR").parse::<IpAddr>().unwrap());
        cfg
    }

    fn admin(&self) -> AdConfig {
        self.config(self.fact("LAB_ADMIN_USER"), self.fact("LAB_ADMIN_PASSWORD"))
    }

    fn dn(&self, cn: &str) -> String {
        format!("CN={cn},{}", self.fact("LAB_OU"))
    }

    /// `kinit` as a machine account against dc1's KDC: does the DC accept this password?
    fn kinit(&self, principal: &str, password: &str) -> (bool, String) {
        let cache = self.dir.join(format!(
            "cc.{}.{}",
            std::process::id(),
            principal.replace('$', "_")
        ));
        let mut child = Command::new("kinit")
            .arg(principal)
            .env("KRB5_CONFIG", self.fact("LAB_KRB5_CONFIG"))
            .env("KRB5CCNAME", format!("FILE:{}", cache.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kinit (krb5-user, installed by scripts/samba-dc.sh)");
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        let out = child.wait_with_output().unwrap();
        let _ = fs::remove_file(&cache);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        )
    }
}

/// The shared Samba lab (`trustsweep_tests::samba`), with this file's helpers.
fn lab() -> &'static Lab {
    static LAB: OnceLock<Lab> = OnceLock::new();
    LAB.get_or_init(|| {
        let s = trustsweep_tests::samba::samba_lab();
        Lab {
            facts: s.facts.clone(),
            script: s.script.clone(),
            dir: s.dir.clone(),
        }
    })
}

fn disabled_names(lab: &Lab) -> BTreeSet<String> {
    lab.fact("LAB_DISABLED")
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn unique_password(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{tag}-{nanos}-Aa1!")
}

#[tokio::test]
async fn ou_enumeration_pages_past_1000_and_skips_disabled() {
    let lab = lab();
    let disabled = disabled_names(lab);
    assert_eq!(disabled.len(), 4, "every 250th of {COMPUTERS} is disabled");

    let t = Instant::now();
    let cfg = lab.admin();
    let e = enumerate(&cfg).await.unwrap();
    eprintln!(
        "enumerated {} computers in {} pages in {:?}",
        e.computers.len(),
        e.pages,
        t.elapsed()
    );
    assert_eq!(e.computers.len(), COMPUTERS - disabled.len());
    assert_eq!(e.pages, 2, "1096 entries in pages of 1000");
    let names: BTreeSet<String> = e.computers.iter().map(|c| c.name.clone()).collect();
    assert_eq!(
        names.len(),
        e.computers.len(),
        "no computer twice across pages"
    );
    assert!(names.is_disjoint(&disabled), "disabled accounts skipped");
    assert!(e.computers.iter().all(|c| !c.disabled));

    let ws1 = e.computers.iter().find(|c| c.name == "WS0001").unwrap();
    assert_eq!(ws1.sam_account_name, "WS0001$");
    assert_eq!(ws1.dns_host_name.as_deref(), Some("ws0001.lab.test"));
    assert_eq!(ws1.distinguished_name, lab.dn("WS0001"));
    assert_eq!(ws1.ou, lab.fact("LAB_OU"));
    assert_eq!(
        ws1.operating_system.as_deref(),
        Some("Windows 11 Enterprise")
    );
    let sid = ws1.object_sid.as_deref().unwrap();
    assert!(
        sid.starts_with("S-1-5-21-") && sid.split('-').count() == 8,
        "{sid}"
    );
    assert!(
        ws1.pwd_last_set.unwrap() > 0 && ws1.pwd_last_set_display().starts_with("20"),
        "{ws1:?}"
    );
    let sids: BTreeSet<&str> = e
        .computers
        .iter()
        .filter_map(|c| c.object_sid.as_deref())
        .collect();
    assert_eq!(
        sids.len(),
        e.computers.len(),
        "every computer has its own SID"
    );

    // Smaller pages: more of them, same set.
    let mut small = lab.admin();
    small.page_size = 300;
    let e300 = enumerate(&small).await.unwrap();
    assert_eq!(e300.pages, 4);
    assert_eq!(
        e300.computers
            .iter()
            .map(|c| c.name.clone())
            .collect::<BTreeSet<_>>(),
        names
    );

    // Disabled ones on request.
    let mut all = lab.admin();
    all.include_disabled = true;
    let every = enumerate_computers(&all).await.unwrap();
    assert_eq!(every.len(), COMPUTERS);
    let got: BTreeSet<String> = every
        .iter()
        .filter(|c| c.disabled)
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(got, disabled);

    // The user's filter is AND'ed; one level = the same here (no sub-OUs).
    let mut filtered = lab.admin();
    filtered.filter = Some("cn=WS00*".into());
    filtered.scope = ad::Scope::OneLevel;
    assert_eq!(enumerate_computers(&filtered).await.unwrap().len(), 99);

    // What `inventory` turns into host variables (its own unit test covers the mapping).
    let c = e
        .computers
        .iter()
        .find(|c| c.host_name() == "ws0001.lab.test")
        .unwrap();
    assert_eq!(
        ad::ou_path(&c.distinguished_name),
        vec!["Workstations".to_string()]
    );
    assert_eq!(c.object_sid.as_deref(), Some(sid));
    assert_eq!(c.ou, lab.fact("LAB_OU"));
    assert_eq!(c.operating_system.as_deref(), Some("Windows 11 Enterprise"));
    assert_eq!(c.pwd_last_set, ws1.pwd_last_set);
}

#[tokio::test]
async fn transport_rules_certificates_and_credentials() {
    let lab = lab();
    let one = |mut cfg: AdConfig| {
        cfg.filter = Some("(cn=WS0001)".into());
        cfg
    };

    // StartTLS on ldap://, certificate verified for the name.
    let mut starttls = one(lab.admin());
    starttls.url = lab.fact("LAB_DC1_URL").replace("ldaps://", "ldap://");
    starttls.starttls = true;
    assert_eq!(enumerate_computers(&starttls).await.unwrap().len(), 1);

    // Plain ldap:// is refused before anything is sent.
    let mut plain = starttls.clone();
    plain.starttls = false;
    let err = enumerate_computers(&plain).await.unwrap_err();
    assert!(matches!(err, AdError::PlainLdapRefused { .. }), "{err}");
    assert!(err.to_string().contains("use ldaps://"), "{err}");

    // Without our CA the certificate is not trusted.
    let mut no_ca = one(lab.admin());
    no_ca.ca_file = None;
    let err = enumerate_computers(&no_ca).await.unwrap_err();
    assert!(matches!(err, AdError::TlsUntrusted { .. }), "{err:?}");
    assert!(err.to_string().contains("--ca-file"), "{err}");

    // Trusted, but issued for other names.
    let mut wrong_name = one(lab.admin());
    wrong_name.url = "ldaps://intruder.lab.test".into();
    let err = enumerate_computers(&wrong_name).await.unwrap_err();
    assert!(matches!(err, AdError::TlsNameMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("intruder.lab.test"), "{err}");

    // Bad password: says so, names the DC and the account.
    let bad = one(lab.config(lab.fact("LAB_ADMIN_USER"), "not-the-password"));
    let err = enumerate_computers(&bad).await.unwrap_err();
    assert!(matches!(err, AdError::BindFailed { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("bad user name or password") && msg.contains("Administrator@lab.test"),
        "{msg}"
    );
    assert!(msg.contains(lab.fact("LAB_DC1_URL")), "{msg}");

    // Nothing listens: a connection error naming the DC (loopback, refused at once).
    let mut closed = one(lab.admin());
    closed.url = "ldaps://dc1.lab.test:1".into();
    let err = enumerate_computers(&closed).await.unwrap_err();
    assert!(matches!(err, AdError::Connect { .. }), "{err:?}");

    // A base DN that does not exist.
    let mut nowhere = lab.admin();
    nowhere.base_dn = format!("OU=Nowhere,{}", lab.fact("LAB_BASE_DN"));
    let err = enumerate_computers(&nowhere).await.unwrap_err();
    assert!(matches!(err, AdError::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn laps_read_by_a_delegated_reader_windows_json_and_legacy() {
    let lab = lab();
    let reader = lab.config(lab.fact("LAB_LAPS_READER"), lab.fact("LAB_USER_PASSWORD"));

    let windows = read_laps(&reader, &lab.dn("WS0003"))
        .await
        .unwrap()
        .expect("WS0003 has Windows LAPS");
    assert_eq!(windows.source, LapsSource::Windows);
    assert_eq!(windows.account, "LapsAdmin");
    assert_eq!(windows.password.expose_secret(), "Windows-Laps-0003!");
    assert_eq!(windows.updated, Some(0x1dbe1d1a2b3c4d5));
    assert!(windows.expires.is_some());
    assert!(
        !format!("{windows:?}").contains("Windows-Laps-0003!"),
        "Debug must not show the password"
    );

    let legacy = read_laps(&reader, &lab.dn("WS0002"))
        .await
        .unwrap()
        .expect("WS0002 has legacy LAPS");
    assert_eq!(legacy.source, LapsSource::Legacy);
    assert_eq!(legacy.account, "Administrator");
    assert_eq!(legacy.password.expose_secret(), "Legacy-Laps-0002!");

    // Not managed by LAPS: no password, and no error.
    assert!(read_laps(&reader, &lab.dn("WS0004"))
        .await
        .unwrap()
        .is_none());

    // Domain Admins can read it too.
    let admin = read_laps(&lab.admin(), &lab.dn("WS0003"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(admin.password.expose_secret(), "Windows-Laps-0003!");
}

#[tokio::test]
async fn laps_read_without_the_right_is_a_clear_error() {
    let lab = lab();
    let helpdesk = lab.config(lab.fact("LAB_NON_READER"), lab.fact("LAB_USER_PASSWORD"));
    for cn in ["WS0002", "WS0003"] {
        let err = read_laps(&helpdesk, &lab.dn(cn)).await.unwrap_err();
        match &err {
            AdError::LapsAccessDenied {
                computer, reader, ..
            } => {
                assert_eq!(computer, &lab.dn(cn));
                assert_eq!(reader, lab.fact("LAB_NON_READER"));
            }
            other => panic!("{cn}: expected LapsAccessDenied, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains("helpdesk@lab.test may not read the LAPS password of CN=")
                && msg.contains("delegate"),
            "{msg}"
        );
    }
    // A computer without LAPS is still just "no password", even for this reader.
    assert!(read_laps(&helpdesk, &lab.dn("WS0004"))
        .await
        .unwrap()
        .is_none());
    let err = read_laps(&helpdesk, &lab.dn("NOSUCHPC")).await.unwrap_err();
    assert!(matches!(err, AdError::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn per_dc_pwd_last_set_shows_replication_lag_until_replicated() {
    let lab = lab();
    let dcs = vec![
        format!("ldaps://{}", lab.fact("LAB_DC1_ADDR")),
        format!("ldaps://{}", lab.fact("LAB_DC2_ADDR")),
    ];
    let cfg = lab.admin();
    let t = Instant::now();
    let replicate = || {
        let out = Command::new("bash")
            .arg(&lab.script)
            .args(["replicate", "dc2", "dc1"])
            .env("SAMBA_LAB_DIR", &lab.dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "replicate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };

    // In step to begin with (also if an earlier run left a reused lab lagging).
    replicate();
    let before = pwd_last_set_per_dc(&cfg, &dcs, "WS0010").await;
    assert_eq!(before.len(), 2);
    assert_eq!(before[0].dc, dcs[0]);
    let b1 = *before[0].pwd_last_set.as_ref().unwrap();
    let b2 = *before[1].pwd_last_set.as_ref().unwrap();
    assert!(b1.is_some() && b2.is_some(), "{before:?}");
    assert!(
        !pwd_last_set_differs(&before),
        "both DCs agree once replicated: {before:?}"
    );

    // Reset on dc1 only: dc2 still has the old value (automatic replication is off in the
    // lab; tests force it).
    tokio::time::sleep(Duration::from_millis(20)).await;
    reset_computer_account(
        &cfg,
        &lab.dn("WS0010"),
        &SecretString::from(unique_password("Lag")),
    )
    .await
    .unwrap();
    let lagging = pwd_last_set_per_dc(&cfg, &dcs, "WS0010$").await;
    let l1 = lagging[0].pwd_last_set.as_ref().unwrap().unwrap();
    let l2 = lagging[1].pwd_last_set.as_ref().unwrap().unwrap();
    assert!(pwd_last_set_differs(&lagging), "{lagging:?}");
    assert!(l1 > b1.unwrap(), "dc1 has the new pwdLastSet");
    assert_eq!(Some(l2), b2, "dc2 still has the old one");

    // Replicate dc1 -> dc2 (samba-tool drs replicate): they agree again.
    replicate();
    let after = pwd_last_set_per_dc(&cfg, &dcs, "WS0010").await;
    assert!(!pwd_last_set_differs(&after), "{after:?}");
    assert_eq!(after[1].pwd_last_set.as_ref().unwrap(), &Some(l1));

    // A DC that cannot be asked is an error for that DC, not "no value".
    let with_dead = vec![dcs[0].clone(), "ldaps://127.0.0.10:1".to_string()];
    let r = pwd_last_set_per_dc(&cfg, &with_dead, "WS0010").await;
    assert_eq!(r[0].pwd_last_set.as_ref().unwrap(), &Some(l1));
    assert!(
        matches!(r[1].pwd_last_set, Err(AdError::Connect { .. })),
        "{r:?}"
    );
    // A computer that does not exist: no value on any DC.
    let none = pwd_last_set_per_dc(&cfg, &dcs, "NOSUCHPC").await;
    assert!(
        none.iter().all(|r| matches!(r.pwd_last_set, Ok(None))),
        "{none:?}"
    );
    eprintln!("per-DC pwdLastSet checks in {:?}", t.elapsed());
}

#[tokio::test]
async fn dc_side_reset_takes_effect_for_the_machine_kinit() {
    let lab = lab();
    let dn = lab.dn("WS0001");
    let principal = format!("WS0001$@{}", lab.fact("LAB_REALM"));
    let admin = lab.admin();
    let t = Instant::now();

    // The machine's current password (set here so the test does not depend on history).
    let old = unique_password("Old");
    reset_computer_account(&admin, &dn, &SecretString::from(old.clone()))
        .await
        .unwrap();
    let (ok, err) = lab.kinit(&principal, &old);
    assert!(ok, "kinit with the current machine password: {err}");

    // The DC-side "Reset Account".
    let new = unique_password("New");
    reset_computer_account(&admin, &dn, &SecretString::from(new.clone()))
        .await
        .unwrap();
    let (ok, err) = lab.kinit(&principal, &new);
    assert!(ok, "kinit with the new password after the reset: {err}");
    let (ok, err) = lab.kinit(&principal, &old);
    assert!(
        !ok,
        "the old machine password must no longer work after the reset"
    );
    assert!(
        err.contains("Password incorrect") || err.contains("Preauthentication failed"),
        "{err}"
    );

    // Someone without the Reset Password right is told so; nothing changes.
    let helpdesk = lab.config(lab.fact("LAB_NON_READER"), lab.fact("LAB_USER_PASSWORD"));
    let err = reset_computer_account(&helpdesk, &dn, &SecretString::from(unique_password("Nope")))
        .await
        .unwrap_err();
    assert!(matches!(err, AdError::AccessDenied { .. }), "{err:?}");
    assert!(err.to_string().contains("Reset Password right"), "{err}");
    assert!(
        lab.kinit(&principal, &new).0,
        "a refused reset leaves the password alone"
    );

    let err = reset_computer_account(&admin, &lab.dn("NOSUCHPC"), &SecretString::from(new))
        .await
        .unwrap_err();
    assert!(matches!(err, AdError::NotFound { .. }), "{err:?}");
    eprintln!("DC-side reset + kinit checks in {:?}", t.elapsed());
}

/// `ad`'s directory administration (what the lab's Samba mode uses), and the
/// Samba behaviour its docs describe, under the script's settings (`old password allowed
/// period = 0`). Works on its own computer account in the lab OU.
#[tokio::test]
async fn directory_administration_as_samba_does_it() {
    use ad::{
        change_own_password, check_password, create_computer, delete_object, domain_sid,
        read_account, read_computer, set_password, set_user_account_control,
        UAC_WORKSTATION_TRUST_ACCOUNT,
    };
    let lab = lab();
    let t = Instant::now();
    let by_ip = |user: &str, password: &str| {
        let mut cfg = AdConfig::new(
            format!("ldaps://{}", lab.fact("LAB_DC1_ADDR")),
            user,
            SecretString::from(password.to_string()),
            lab.fact("LAB_BASE_DN"),
        );
        cfg.ca_file = Some(PathBuf::from(lab.fact("LAB_CA_FILE")));
        cfg
    };
    let admin = by_ip(lab.fact("LAB_ADMIN_USER"), lab.fact("LAB_ADMIN_PASSWORD"));
    let ou = lab.fact("LAB_LAB_OU");
    let (name, dns) = ("TSIA0001", lab.fact("LAB_DNS_DOMAIN"));
    if let Some(stale) = read_computer(&admin, name).await.unwrap() {
        delete_object(&admin, &stale.dn).await.unwrap();
    }
    assert_eq!(read_computer(&admin, name).await.unwrap(), None);
    let machine = format!("LAB\\{name}$");
    let first = unique_password("First");
    assert!(
        !check_password(&admin, &machine, &SecretString::from(first.clone()))
            .await
            .unwrap(),
        "no account yet"
    );

    // Created in the OU, enabled, in the domain of the domain object's SID.
    let dn = create_computer(&admin, ou, name, dns, &SecretString::from(first.clone()))
        .await
        .unwrap();
    assert_eq!(dn, format!("CN={name},{ou}"));
    let sid = domain_sid(&admin).await.unwrap();
    let acct = read_computer(&admin, &format!("{}$", name.to_lowercase()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(acct.dn, dn);
    assert_eq!(acct.sam_account_name, format!("{name}$"));
    assert_eq!(acct.user_account_control, UAC_WORKSTATION_TRUST_ACCOUNT);
    assert!(
        !acct.disabled() && acct.pwd_last_set > 0 && acct.usn_changed > 0,
        "{acct:?}"
    );
    assert!(
        acct.object_sid
            .as_deref()
            .unwrap()
            .starts_with(&format!("{sid}-")),
        "{acct:?} in {sid}"
    );
    assert!(acct.rid().unwrap() > 1000);
    let tsrepair = read_account(&admin, "tsrepair").await.unwrap().unwrap();
    assert!(tsrepair.object_sid.unwrap().starts_with(&sid));

    // The simple-bind names a computer account has (and has not).
    let pw = SecretString::from(first.clone());
    for ok in [
        machine.clone(),
        dn.clone(),
        format!("{name}$@{dns}"),
        format!("{name}$@{}", lab.fact("LAB_REALM")),
    ] {
        assert!(
            check_password(&admin, &ok, &pw).await.unwrap(),
            "{ok} should bind"
        );
    }
    for refused in [
        format!("{dns}\\{name}$"),
        format!("{name}$"),
        format!("{name}@{dns}"),
        format!("LAB\\{name}"),
    ] {
        assert!(
            !check_password(&admin, &refused, &pw).await.unwrap(),
            "{refused} should not bind"
        );
    }
    assert!(
        !check_password(&admin, &machine, &SecretString::from("wrong-Passw0rd"))
            .await
            .unwrap()
    );

    // The member's own change: bound as itself, delete old + add new. Only the current
    // password binds afterwards (the script's old-password period is 0).
    let second = unique_password("Second");
    let as_machine = by_ip(&machine, &first);
    change_own_password(&as_machine, &dn, &SecretString::from(second.clone()))
        .await
        .unwrap();
    assert!(
        check_password(&admin, &machine, &SecretString::from(second.clone()))
            .await
            .unwrap()
    );
    assert!(
        !check_password(&admin, &machine, &SecretString::from(first.clone()))
            .await
            .unwrap()
    );
    let stale = by_ip(&machine, &second);
    // A computer may not replace (reset) its own password.
    let err = set_password(&stale, &dn, &SecretString::from(unique_password("Self")))
        .await
        .unwrap_err();
    assert!(matches!(err, AdError::AccessDenied { .. }), "{err:?}");

    // The administrative reset; the previous password no longer binds.
    let third = unique_password("Third");
    set_password(&admin, &dn, &SecretString::from(third.clone()))
        .await
        .unwrap();
    assert!(
        check_password(&admin, &machine, &SecretString::from(third.clone()))
            .await
            .unwrap()
    );
    assert!(
        !check_password(&admin, &machine, &SecretString::from(second))
            .await
            .unwrap()
    );
    let reset_at = read_computer(&admin, name)
        .await
        .unwrap()
        .unwrap()
        .pwd_last_set;
    assert!(reset_at >= acct.pwd_last_set);

    // tsrepair's delegation is Reset Password and userAccountControl (enable/disable);
    // helpdesk has none.
    let tsrepair = by_ip(lab.fact("LAB_REPAIR_USER"), lab.fact("LAB_USER_PASSWORD"));
    let fourth = unique_password("Fourth");
    set_password(&tsrepair, &dn, &SecretString::from(fourth.clone()))
        .await
        .unwrap();
    assert!(
        check_password(&admin, &machine, &SecretString::from(fourth.clone()))
            .await
            .unwrap()
    );
    set_user_account_control(&tsrepair, &dn, UAC_WORKSTATION_TRUST_ACCOUNT | 2)
        .await
        .unwrap();
    let helpdesk = by_ip(lab.fact("LAB_NON_READER"), lab.fact("LAB_USER_PASSWORD"));
    let err = set_user_account_control(&helpdesk, &dn, UAC_WORKSTATION_TRUST_ACCOUNT)
        .await
        .unwrap_err();
    assert!(matches!(err, AdError::AccessDenied { .. }), "{err:?}");
    let err = set_password(&helpdesk, &dn, &SecretString::from(unique_password("Nope")))
        .await
        .unwrap_err();
    assert!(matches!(err, AdError::AccessDenied { .. }), "{err:?}");

    // Disabled: the bind is refused, the object says why.
    set_user_account_control(&admin, &dn, UAC_WORKSTATION_TRUST_ACCOUNT | 2)
        .await
        .unwrap();
    assert!(
        !check_password(&admin, &machine, &SecretString::from(fourth.clone()))
            .await
            .unwrap()
    );
    assert!(read_computer(&admin, name)
        .await
        .unwrap()
        .unwrap()
        .disabled());

    // A DC that is not there is an error, not a "no".
    let mut dead = admin.clone();
    dead.url = "ldaps://127.0.0.10:1".into();
    assert!(matches!(
        check_password(&dead, &machine, &SecretString::from(fourth)).await,
        Err(AdError::Connect { .. })
    ));

    delete_object(&admin, &dn).await.unwrap();
    assert_eq!(read_computer(&admin, name).await.unwrap(), None);
    delete_object(&admin, &dn).await.unwrap();
    eprintln!("directory administration checks in {:?}", t.elapsed());
}

#[tokio::test]
async fn the_pdc_is_the_domain_objects_role_owner() {
    // MS-ADTS 3.1.1.1.11: fSMORoleOwner of the domain object names the PDC emulator's
    // nTDSDSA object; its parent server object carries the DC's DNS name. Samba's first DC
    // (dc1, provisioned first) holds every role.
    let lab = lab();
    let pdc = ad::pdc_role_owner(&lab.admin()).await.unwrap();
    assert_eq!(pdc.as_deref(), Some("dc1.lab.test"));
}

#[tokio::test]
async fn rejoin_preflight_reads_owner_and_creator() {
    // KB5020276's rules need the object's owner (nTSecurityDescriptor, read with the SD
    // flags control) and mS-DS-CreatorSID. The script's computers were created by the
    // domain Administrator: owned by an admin group (or a member), so a rejoin may reuse
    // them; no creator SID (not made through the machine-account quota).
    let lab = lab();
    let facts = ad::reuse_facts(&lab.admin(), "WS0001")
        .await
        .unwrap()
        .expect("WS0001 exists");
    assert!(facts.dn.starts_with("CN=WS0001,"), "{facts:?}");
    assert_eq!(facts.ou, facts.dn.split_once(',').unwrap().1);
    assert!(
        facts
            .owner
            .as_deref()
            .is_some_and(|o| o.starts_with("S-1-5-")),
        "{facts:?}"
    );
    assert!(facts.owner_privileged, "{facts:?}");
    assert_eq!(facts.creator, None);
    assert!(facts.verdict(Some("S-1-5-21-1-2-3-1105")).allowed);
    assert!(ad::reuse_facts(&lab.admin(), "NOSUCH99")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_deleted_computer_without_the_recycle_bin_is_a_tombstone_without_its_password() {
    // Issue 11 (DOMAIN.md "Why a trust breaks"): only an object in the AD Recycle Bin keeps
    // its password. The lab's forest does not have the Recycle Bin enabled (Samba 4.17 can
    // enable it, but then refuses to restore a deleted object: see ad::restore),
    // so a deleted computer is a tombstone: the preflight says a restore would not heal
    // the member, and reanimating it (the same LDAP modify a Recycle Bin restore is) brings
    // back the object without the password.
    use ad::{
        check_password, create_computer, delete_object, read_computer, restore_deleted,
        restore_facts,
    };
    let lab = lab();
    let mut admin = lab.admin();
    admin.base_dn = lab.fact("LAB_BASE_DN").to_string();
    let ou = lab.fact("LAB_LAB_OU");
    let (name, dns) = ("TSRB0001", lab.fact("LAB_DNS_DOMAIN"));
    if let Some(stale) = read_computer(&admin, name).await.unwrap() {
        delete_object(&admin, &stale.dn).await.unwrap();
    }
    let password = SecretString::from(unique_password("Restore"));
    let dn = create_computer(&admin, ou, name, dns, &password)
        .await
        .unwrap();
    let machine = format!("LAB\\{name}$");
    assert!(check_password(&admin, &machine, &password).await.unwrap());
    let facts = restore_facts(&admin, name).await.unwrap();
    assert!(facts.live && !facts.recycle_bin, "{facts:?}");
    assert!(!facts.verdict(name).restorable);

    delete_object(&admin, &dn).await.unwrap();
    let facts = restore_facts(&admin, name).await.unwrap();
    assert!(!facts.live, "{facts:?}");
    let deleted = facts
        .deleted
        .clone()
        .expect("the tombstone, seen by the administrator");
    assert!(deleted.recycled, "{deleted:?}");
    assert_eq!(deleted.restore_dn().as_deref(), Some(dn.as_str()));
    let verdict = facts.verdict(name);
    assert!(!verdict.restorable);
    assert!(verdict.reason.contains("not enabled"), "{verdict:?}");

    // The delegated repair account cannot list Deleted Objects: no restore, and the
    // reason says it may be the reading account's rights.
    let tsrepair = lab.config(lab.fact("LAB_REPAIR_USER"), lab.fact("LAB_USER_PASSWORD"));
    let seen = restore_facts(&tsrepair, name).await.unwrap();
    assert_eq!(seen.deleted, None, "{seen:?}");
    assert!(seen.verdict(name).reason.contains("not readable"));

    // Reanimated: the object is back where it was, with its SID, but not its password.
    let to = restore_deleted(&admin, &deleted).await.unwrap();
    assert_eq!(to, dn);
    let back = read_computer(&admin, name)
        .await
        .unwrap()
        .expect("restored");
    assert_eq!(back.dn, dn);
    assert!(!check_password(&admin, &machine, &password).await.unwrap());
    delete_object(&admin, &dn).await.unwrap();
}

#[tokio::test]
async fn laps_written_as_the_device_does_is_read_back_by_name() {
    // Issue 11: after a rejoin the LAPS password may have been rotated and the computer
    // object may be a new one, so the re-read finds the object by sAMAccountName. The lab
    // plays the device's part with write_laps (msLAPS-Password JSON and its expiration).
    use ad::{create_computer, delete_object, read_computer, read_laps_by_name, write_laps};
    let lab = lab();
    let mut admin = lab.admin();
    admin.base_dn = lab.fact("LAB_BASE_DN").to_string();
    let ou = lab.fact("LAB_LAB_OU");
    let (name, dns) = ("TSLP0001", lab.fact("LAB_DNS_DOMAIN"));
    if let Some(stale) = read_computer(&admin, name).await.unwrap() {
        delete_object(&admin, &stale.dn).await.unwrap();
    }
    let dn = create_computer(
        &admin,
        ou,
        name,
        dns,
        &SecretString::from(unique_password("Lp")),
    )
    .await
    .unwrap();
    assert!(read_laps_by_name(&admin, name).await.unwrap().is_none());
    let password = SecretString::from(unique_password("Laps"));
    write_laps(
        &admin,
        &dn,
        "Administrator",
        &password,
        0x1dc_0000_0000_0000,
        0x1dd_0000_0000_0000,
    )
    .await
    .unwrap();
    let read = read_laps_by_name(&admin, &name.to_lowercase())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.account, "Administrator");
    assert_eq!(read.password.expose_secret(), password.expose_secret());
    assert_eq!(read.updated, Some(0x1dc_0000_0000_0000));
    assert_eq!(read.expires, Some(0x1dd_0000_0000_0000));
    // Confidential: an ordinary user sees the expiration time only.
    let helpdesk = lab.config(lab.fact("LAB_NON_READER"), lab.fact("LAB_USER_PASSWORD"));
    let mut helpdesk = helpdesk;
    helpdesk.base_dn = lab.fact("LAB_BASE_DN").to_string();
    assert!(matches!(
        read_laps_by_name(&helpdesk, name).await,
        Err(AdError::LapsAccessDenied { .. })
    ));
    assert!(matches!(
        read_laps_by_name(&admin, "TSLP9999").await,
        Err(AdError::NotFound { .. })
    ));
    delete_object(&admin, &dn).await.unwrap();
}
