//! Active Directory as a host source: the computer objects an OU holds (read by the `ad`
//! crate's [`ad::enumerate_computers`]) as inventory hosts.

use std::collections::{BTreeMap, BTreeSet};

use ad::{filetime_display, group_name, ou_path, AdComputer};

/// The computers as inventory hosts: name and address = `dNSHostName` (else `cn`); groups
/// `all` plus one per OU on the path (`OU=Kiosks,OU=Workstations` → `Workstations`,
/// `Kiosks`; characters other than letters, digits and `_` become `_`); vars
/// `ad_object_sid`, `ad_pwd_last_set` (FILETIME), `ad_pwd_last_set_utc`,
/// `ad_last_logon_timestamp`, `ad_os`, `ad_os_version`, `ad_ou`, `ad_dn`,
/// `ad_sam_account_name`, `ad_disabled`.
pub fn to_inventory(computers: &[AdComputer]) -> crate::Inventory {
    let hosts = computers
        .iter()
        .map(|c| {
            let mut groups: BTreeSet<String> = ou_path(&c.distinguished_name)
                .iter()
                .map(|ou| group_name(ou))
                .collect();
            groups.insert("all".to_string());
            let mut vars = BTreeMap::new();
            let mut put = |k: &str, v: serde_json::Value| {
                vars.insert(k.to_string(), v);
            };
            if let Some(sid) = &c.object_sid {
                put("ad_object_sid", sid.clone().into());
            }
            if let Some(p) = c.pwd_last_set {
                put("ad_pwd_last_set", p.into());
                put("ad_pwd_last_set_utc", filetime_display(p).into());
            }
            if let Some(l) = c.last_logon_timestamp {
                put("ad_last_logon_timestamp", l.into());
            }
            if let Some(os) = &c.operating_system {
                put("ad_os", os.clone().into());
            }
            if let Some(v) = &c.operating_system_version {
                put("ad_os_version", v.clone().into());
            }
            put("ad_ou", c.ou.clone().into());
            put("ad_dn", c.distinguished_name.clone().into());
            put("ad_sam_account_name", c.sam_account_name.clone().into());
            put("ad_disabled", c.disabled.into());
            let name = c.host_name().to_string();
            crate::Host {
                address: name.clone(),
                name,
                port: None,
                groups: groups.into_iter().collect(),
                vars,
                secrets: BTreeMap::new(),
                origins: BTreeMap::new(),
                unresolved: BTreeMap::new(),
            }
        })
        .collect();
    crate::Inventory {
        hosts,
        ..crate::Inventory::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ad::parent_dn;

    fn computer(dn: &str, disabled: bool) -> AdComputer {
        AdComputer {
            name: "WS0001".into(),
            sam_account_name: "WS0001$".into(),
            dns_host_name: Some("ws0001.lab.test".into()),
            object_sid: Some("S-1-5-21-1-2-3-1105".into()),
            pwd_last_set: Some(135_379_296_000_000_000),
            last_logon_timestamp: None,
            operating_system: Some("Windows 11 Enterprise".into()),
            operating_system_version: None,
            distinguished_name: dn.into(),
            ou: parent_dn(dn).unwrap_or_default(),
            user_account_control: 4096,
            disabled,
        }
    }

    #[test]
    fn inventory_from_computers() {
        let c = computer("CN=WS0001,OU=Kiosks,OU=Work Stations,DC=lab,DC=test", false);
        let inv = to_inventory(&[c]);
        let h = inv.hosts.first().expect("one host");
        assert_eq!(h.name, "ws0001.lab.test");
        assert_eq!(h.address, "ws0001.lab.test");
        assert_eq!(h.groups, vec!["Kiosks", "Work_Stations", "all"]);
        assert_eq!(
            h.var("ad_object_sid").as_deref(),
            Some("S-1-5-21-1-2-3-1105")
        );
        assert_eq!(
            h.var("ad_pwd_last_set").as_deref(),
            Some("135379296000000000")
        );
        assert_eq!(
            h.var("ad_pwd_last_set_utc").as_deref(),
            Some("2030-01-01T00:00:00Z")
        );
        assert_eq!(h.var("ad_os").as_deref(), Some("Windows 11 Enterprise"));
        assert_eq!(
            h.var("ad_ou").as_deref(),
            Some("OU=Kiosks,OU=Work Stations,DC=lab,DC=test")
        );
        let mut no_dns = computer("CN=WS0001,CN=Computers,DC=lab,DC=test", false);
        no_dns.dns_host_name = None;
        assert_eq!(
            to_inventory(&[no_dns])
                .hosts
                .first()
                .map(|h| h.name.clone())
                .as_deref(),
            Some("WS0001")
        );
    }
}
