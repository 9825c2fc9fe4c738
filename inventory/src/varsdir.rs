//! `group_vars/` and `host_vars/` beside an inventory, found and read the way Ansible's
//! `host_group_vars` vars plugin does (`DataLoader.find_vars_files`): for a group or host
//! `NAME`, the first of `NAME`, `NAME.yml`, `NAME.yaml`, `NAME.json` that exists is used;
//! when it is a directory, its files with no extension or one of those (hidden files and
//! `~` backups skipped) are read in lexical order, subdirectories without an extension
//! recursed into, later files winning. Every file is YAML (JSON is YAML) holding a mapping
//! of variables; an empty file sets nothing; a file encrypted whole by `ansible-vault`
//! is decrypted as Ansible's loader does.
//!
//! Which directories: the inventory file's own directory, or the inventory directory
//! itself (not its subdirectories), once per `-i` source, as Ansible's
//! `get_vars_from_inventory_sources` does.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde_norway::Value;

use crate::vault::VaultSecrets;
use crate::InventoryError;

/// Extensions Ansible's `YAML_FILENAME_EXTENSIONS` allows, after the bare name.
const EXTENSIONS: [&str; 4] = ["", ".yml", ".yaml", ".json"];

/// Subdirectories deeper than this are not followed (a symlink loop).
const MAX_DEPTH: usize = 16;

/// `group_vars` or `host_vars` of one base directory: the names it holds, read once.
#[derive(Debug, Default)]
pub(crate) struct VarsDir {
    dir: PathBuf,
    entries: HashSet<OsString>,
}

impl VarsDir {
    /// `base/sub` (sub is `group_vars` or `host_vars`), or nothing when it is no
    /// directory (Ansible warns and skips a file of that name; so does this, through
    /// `tracing`).
    pub(crate) fn open(base: &Path, sub: &str) -> Result<Option<VarsDir>, InventoryError> {
        let dir = base.join(sub);
        match std::fs::metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                tracing::warn!(
                    "{}: found {sub} that is not a directory, skipping it",
                    dir.display()
                );
                return Ok(None);
            }
            Err(_) => return Ok(None),
        }
        let read = std::fs::read_dir(&dir).map_err(|source| InventoryError::Read {
            path: dir.clone(),
            source,
        })?;
        let mut entries = HashSet::new();
        for e in read {
            let e = e.map_err(|source| InventoryError::Read {
                path: dir.clone(),
                source,
            })?;
            entries.insert(e.file_name());
        }
        Ok(Some(VarsDir { dir, entries }))
    }

    /// The files that hold `name`'s variables, in the order they apply.
    pub(crate) fn files_for(&self, name: &str) -> Result<Vec<PathBuf>, InventoryError> {
        // Ansible skips names starting with the path separator ('chroot' hosts).
        if name.is_empty() || name.starts_with('/') || name.contains(['/', '\0']) {
            return Ok(Vec::new());
        }
        for ext in EXTENSIONS {
            let file = format!("{name}{ext}");
            if !self.entries.contains(std::ffi::OsStr::new(&file)) {
                continue;
            }
            let path = self.dir.join(&file);
            if path.is_dir() {
                let mut out = Vec::new();
                dir_files(&path, &mut out, 0)?;
                return Ok(out);
            }
            return Ok(vec![path]);
        }
        Ok(Vec::new())
    }
}

/// Ansible's `_get_dir_vars_files`.
fn dir_files(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> Result<(), InventoryError> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    let read = std::fs::read_dir(dir).map_err(|source| InventoryError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut names: Vec<String> = Vec::new();
    for e in read {
        let e = e.map_err(|source| InventoryError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        names.push(e.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    for name in names {
        if name.starts_with('.') || name.ends_with('~') {
            continue;
        }
        let path = dir.join(&name);
        let ext = Path::new(&name)
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()));
        if path.is_dir() {
            if ext.is_none() {
                dir_files(&path, out, depth + 1)?;
            }
        } else if path.is_file() && ext.as_deref().is_none_or(|e| EXTENSIONS.contains(&e)) {
            out.push(path);
        }
    }
    Ok(())
}

/// One variable of a vars file: name, value as written, 1-based line (0 when unknown).
pub(crate) type FileVar = (String, Value, usize);

/// Reads a vars file: a YAML (or JSON) mapping of variables; an empty file (or one
/// holding only `---` or comments) sets nothing.
pub(crate) fn read(path: &Path, vault: &VaultSecrets) -> Result<Vec<FileVar>, InventoryError> {
    let text = crate::read_text(path, vault)?;
    let text: &str = &text;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let err = |line: usize, message: String| InventoryError::Syntax {
        path: path.to_path_buf(),
        line,
        message,
    };
    let doc: Value = serde_norway::from_str(text).map_err(|e| {
        let line = e.location().map(|l| l.line()).unwrap_or(0);
        err(line, format!("not valid YAML or JSON: {e}"))
    })?;
    let map = match doc {
        Value::Null => return Ok(Vec::new()),
        Value::Mapping(m) => m,
        _ => {
            return Err(err(
                1,
                "a vars file must be a mapping of variable names to values (name: value)".into(),
            ))
        }
    };
    let lines = crate::yaml::top_key_lines(text);
    let mut out = Vec::with_capacity(map.len());
    for (k, v) in map {
        let name = match &k {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return Err(err(0, "variable names must be strings".into())),
        };
        let line = lines.get(&name).copied().unwrap_or(0);
        // YAML 1.1's plain yes/no/on/off are booleans to Ansible.
        let v = match (&v, line.checked_sub(1).and_then(|i| text.lines().nth(i))) {
            (Value::String(_), Some(raw)) => {
                match crate::yaml::yaml11_value(raw, serde_json::to_value(&v).unwrap_or_default()) {
                    serde_json::Value::Bool(b) => Value::Bool(b),
                    _ => v,
                }
            }
            _ => v,
        };
        out.push((name, v, line));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_existing_name_wins_and_directories_merge_in_order() {
        let d = std::env::temp_dir().join(format!("varsdir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let gv = d.join("group_vars");
        std::fs::create_dir_all(gv.join("web").join("sub")).unwrap();
        std::fs::write(gv.join("web.yml"), "a: 1\n").unwrap();
        std::fs::write(gv.join("web").join("b.yml"), "a: 2\n").unwrap();
        std::fs::write(gv.join("web").join("a.json"), "{\"a\": 3}\n").unwrap();
        std::fs::write(gv.join("web").join("notes.txt"), "x\n").unwrap();
        std::fs::write(gv.join("web").join(".hidden.yml"), "x: 1\n").unwrap();
        std::fs::write(gv.join("web").join("sub").join("z"), "a: 4\n").unwrap();
        std::fs::write(gv.join("db.yaml"), "b: 1\n").unwrap();
        std::fs::write(gv.join("db.json"), "{\"b\": 2}\n").unwrap();
        let vd = VarsDir::open(&d, "group_vars").unwrap().unwrap();
        let names = |v: Vec<PathBuf>| {
            v.iter()
                .map(|p| p.strip_prefix(&gv).unwrap().display().to_string())
                .collect::<Vec<_>>()
        };
        // The bare name (a directory) is found first, as in Ansible.
        assert_eq!(
            names(vd.files_for("web").unwrap()),
            ["web/a.json", "web/b.yml", "web/sub/z"]
        );
        assert_eq!(names(vd.files_for("db").unwrap()), ["db.yaml"]);
        assert!(vd.files_for("none").unwrap().is_empty());
        assert!(VarsDir::open(&d, "host_vars").unwrap().is_none());
        let _ = std::fs::remove_dir_all(&d);
    }
}
