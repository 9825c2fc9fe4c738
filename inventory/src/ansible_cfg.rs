//! The inventory Ansible would use when none is given: `ANSIBLE_INVENTORY`, else the
//! `inventory =` of the `[defaults]` section of the first `ansible.cfg` found where Ansible
//! looks (`find_ini_config_file`): `ANSIBLE_CONFIG` (a file, or a directory holding
//! `ansible.cfg`), `./ansible.cfg` (skipped when the current directory is world-writable,
//! as Ansible does), `~/.ansible.cfg`, `/etc/ansible/ansible.cfg`.
//!
//! Values are comma-separated paths (`type: pathlist`): `~` and `$VAR` expanded, relative
//! ones taken from the directory of the `ansible.cfg` (from the current directory for
//! `ANSIBLE_INVENTORY`). Ansible's own fallback, `/etc/ansible/hosts`, is not used: with
//! no inventory named anywhere, trustsweep asks for one.

use std::path::{Path, PathBuf};

use crate::InventoryError;

/// Where the default inventory came from, and its sources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultInventory {
    /// The inventory sources, in order.
    pub sources: Vec<PathBuf>,
    /// `ANSIBLE_INVENTORY`, or the `ansible.cfg` that named them.
    pub from: String,
}

/// The process's view: its environment, current directory and home.
pub fn default_inventory() -> Result<Option<DefaultInventory>, InventoryError> {
    let cwd = std::env::current_dir().ok();
    let home = std::env::var_os("HOME").map(PathBuf::from);
    default_inventory_in(
        &|k| std::env::var(k).ok(),
        cwd.as_deref(),
        home.as_deref(),
        Path::new("/etc/ansible/ansible.cfg"),
    )
}

/// [`default_inventory`] with the environment, current directory, home and system
/// configuration given (for tests).
pub fn default_inventory_in(
    env: &dyn Fn(&str) -> Option<String>,
    cwd: Option<&Path>,
    home: Option<&Path>,
    system_cfg: &Path,
) -> Result<Option<DefaultInventory>, InventoryError> {
    if let Some(v) = env("ANSIBLE_INVENTORY").filter(|v| !v.trim().is_empty()) {
        let base = cwd.unwrap_or(Path::new("."));
        return Ok(Some(DefaultInventory {
            sources: path_list(&v, base, env, home),
            from: "ANSIBLE_INVENTORY".into(),
        }));
    }
    let Some(cfg) = find_config(env, cwd, home, system_cfg) else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&cfg).map_err(|source| InventoryError::Read {
        path: cfg.clone(),
        source,
    })?;
    let Some(value) = defaults_value(&text, &["inventory", "hostfile"]) else {
        return Ok(None);
    };
    let base = cfg.parent().unwrap_or(Path::new("."));
    let sources = path_list(&value, base, env, home);
    if sources.is_empty() {
        return Ok(None);
    }
    Ok(Some(DefaultInventory {
        sources,
        from: cfg.display().to_string(),
    }))
}

/// The `ansible.cfg` Ansible would read, if any.
fn find_config(
    env: &dyn Fn(&str) -> Option<String>,
    cwd: Option<&Path>,
    home: Option<&Path>,
    system_cfg: &Path,
) -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(p) = env("ANSIBLE_CONFIG") {
        let p = expand(&p, cwd.unwrap_or(Path::new(".")), env, home);
        candidates.push(if p.is_dir() { p.join("ansible.cfg") } else { p });
    }
    if let Some(cwd) = cwd {
        if !world_writable(cwd) {
            candidates.push(cwd.join("ansible.cfg"));
        } else if cwd.join("ansible.cfg").exists() {
            tracing::warn!(
                "{}: Ansible does not load ansible.cfg from a world-writable directory, nor does trustsweep",
                cwd.display()
            );
        }
    }
    if let Some(home) = home {
        candidates.push(home.join(".ansible.cfg"));
    }
    candidates.push(system_cfg.to_path_buf());
    candidates
        .into_iter()
        .find(|p| p.is_file() && std::fs::File::open(p).is_ok())
}

#[cfg(unix)]
fn world_writable(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o002 != 0)
}

#[cfg(not(unix))]
fn world_writable(_dir: &Path) -> bool {
    false
}

/// The value of the first of `keys` in `[defaults]`, read as Python's `configparser` does
/// for Ansible (keys ignore case; `=` or `:`; `#` and `;` start full-line comments, `;`
/// after whitespace an inline one; indented lines continue a value).
pub(crate) fn defaults_value(text: &str, keys: &[&str]) -> Option<String> {
    let mut in_defaults = false;
    let mut found: Vec<(String, String)> = Vec::new();
    let mut last: Option<usize> = None;
    for raw in text.lines() {
        let line = raw.trim_end();
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let (true, Some(i)) = (in_defaults, last) {
                if let Some((_, v)) = found.get_mut(i) {
                    v.push('\n');
                    v.push_str(strip_inline_comment(trimmed));
                }
            }
            continue;
        }
        if let Some(section) = trimmed.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            in_defaults = section.trim() == "defaults";
            last = None;
            continue;
        }
        if !in_defaults {
            last = None;
            continue;
        }
        let Some(sep) = trimmed.find(['=', ':']) else {
            continue;
        };
        let key = trimmed.get(..sep).unwrap_or_default().trim().to_lowercase();
        let value = strip_inline_comment(trimmed.get(sep + 1..).unwrap_or_default().trim());
        found.push((key, value.to_string()));
        last = Some(found.len() - 1);
    }
    for k in keys {
        // configparser keeps the last of a repeated key.
        if let Some((_, v)) = found.iter().rev().find(|(fk, _)| fk == k) {
            return Some(v.trim().to_string());
        }
    }
    None
}

fn strip_inline_comment(v: &str) -> &str {
    let bytes = v.as_bytes();
    for (i, c) in v.char_indices() {
        if c == ';' && i > 0 && bytes.get(i - 1).is_some_and(|b| b.is_ascii_whitespace()) {
            return v.get(..i).unwrap_or(v).trim_end();
        }
    }
    v
}

/// A comma-separated path list, each expanded and made absolute against `base`.
fn path_list(
    value: &str,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    home: Option<&Path>,
) -> Vec<PathBuf> {
    value
        .split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| expand(s, base, env, home))
        .collect()
}

/// `~` and `$VAR`/`${VAR}` expanded (unknown variables left as written, as Python's
/// `expandvars`), then relative to `base`.
fn expand(
    s: &str,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    home: Option<&Path>,
) -> PathBuf {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(rest.get(..i).unwrap_or_default());
        let after = rest.get(i + 1..).unwrap_or_default();
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (braced.get(..end).unwrap_or_default(), end + 2),
                None => ("", 0),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (after.get(..end).unwrap_or_default(), end)
        };
        match (name.is_empty(), env(name)) {
            (false, Some(v)) => out.push_str(&v),
            _ => out.push_str(rest.get(i..i + 1 + consumed).unwrap_or("$")),
        }
        rest = rest.get(i + 1 + consumed..).unwrap_or_default();
    }
    out.push_str(rest);
    let path = match (out.strip_prefix('~'), home) {
        (Some(r), Some(h)) if r.is_empty() || r.starts_with('/') => {
            h.join(r.trim_start_matches('/'))
        }
        _ => PathBuf::from(out),
    };
    if path.is_absolute() {
        path
    } else {
        base.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_defaults_inventory_like_configparser() {
        let text = "[defaults]\n# a comment\nhost_key_checking = False\nINVENTORY = ./inventory/prod , extra.ini ; why\n[inventory]\ninventory = nope\n";
        assert_eq!(
            defaults_value(text, &["inventory"]).as_deref(),
            Some("./inventory/prod , extra.ini")
        );
        assert_eq!(defaults_value("[x]\ninventory=a\n", &["inventory"]), None);
        assert_eq!(
            defaults_value("[defaults]\ninventory: a#b\n", &["inventory"]).as_deref(),
            Some("a#b")
        );
    }

    #[test]
    fn expands_like_ansible() {
        let env = |k: &str| (k == "PROJ").then(|| "/srv/proj".to_string());
        let home = Path::new("/home/u");
        assert_eq!(
            expand("$PROJ/hosts", Path::new("/cfg"), &env, Some(home)),
            PathBuf::from("/srv/proj/hosts")
        );
        assert_eq!(
            expand("~/inv", Path::new("/cfg"), &env, Some(home)),
            PathBuf::from("/home/u/inv")
        );
        assert_eq!(
            expand("inv/hosts", Path::new("/cfg"), &env, Some(home)),
            PathBuf::from("/cfg/inv/hosts")
        );
        assert_eq!(
            expand("$NOPE/x", Path::new("/c"), &env, Some(home)),
            PathBuf::from("/c/$NOPE/x")
        );
    }
}
