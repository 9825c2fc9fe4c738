//! Loading an inventory the way Ansible's `InventoryManager` does: one or more sources
//! (`-i` repeated), each a file, an inventory directory, or text already read (`-i -`);
//! every file read into one group graph, so the hosts and groups of all sources merge (a
//! later source's variable wins); then `group_vars/` and `host_vars/` beside each source
//! (found and read as Ansible's `host_group_vars` vars plugin does).
//!
//! An inventory directory is read as `InventoryManager.parse_source` reads one: its
//! entries in lexical order, subdirectories recursed into, skipping hidden entries,
//! `group_vars`, `host_vars`, `vars_plugins`, and names ending in one of Ansible's
//! `INVENTORY_IGNORE_EXTS` (`.pyc .pyo .swp .bak ~ .rpm .md .txt .rst .orig .cfg
//! .retry`). Only the directory itself (not its subdirectories) holds the vars
//! directories, as Ansible reads them.
//!
//! What Ansible would have to run (an executable inventory script, a `plugin:`
//! configuration such as `aws_ec2.yml`) is refused with the way through Ansible:
//! `ansible-inventory -i SOURCE --list | trustsweep ... -i -`.

use std::path::{Path, PathBuf};

use crate::model::{Builder, Entity};
use crate::varsdir::{self, VarsDir};
use crate::vault::{decrypt_yaml, VaultSecrets};
use crate::{json_inventory, Format, Inventory, InventoryError};

/// Ansible's `INVENTORY_IGNORE_EXTS` default (`REJECT_EXTS` + `.orig .cfg .retry`).
pub const INVENTORY_IGNORE_EXTS: &[&str] = &[
    ".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".cfg", ".retry",
];

/// Entries of an inventory directory that are never inventory files (`IGNORED_ALWAYS`).
const IGNORED_NAMES: &[&str] = &["host_vars", "group_vars", "vars_plugins"];

/// Directories nested deeper than this are not followed (a symlink loop).
const MAX_DEPTH: usize = 16;

/// One inventory source.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// A file, or an inventory directory.
    Path(PathBuf),
    /// Inventory text read elsewhere (`-i -`: standard input), any format, including the
    /// JSON `ansible-inventory --list` prints; `name` is used in messages. It has no
    /// `group_vars`/`host_vars` beside it.
    Text {
        /// What to call it (`<stdin>`).
        name: PathBuf,
        /// The text.
        text: String,
    },
}

impl Source {
    /// The path of a file or directory source, the name of a text one.
    pub fn name(&self) -> &Path {
        match self {
            Source::Path(p) => p,
            Source::Text { name, .. } => name,
        }
    }
}

/// Loads and merges `sources` in order, with the `group_vars`/`host_vars` beside each, as
/// Ansible does for `-i A -i B`. `vault` decrypts vault-encrypted files and values.
pub fn load_sources(sources: &[Source], vault: &VaultSecrets) -> Result<Inventory, InventoryError> {
    // Which files to read (text sources carry theirs), and which vars directories.
    let mut files: Vec<(PathBuf, Option<&str>)> = Vec::new();
    let mut vars_bases: Vec<PathBuf> = Vec::new();
    for s in sources {
        match s {
            Source::Path(p) => {
                let meta = std::fs::metadata(p).map_err(|source| InventoryError::Read {
                    path: p.clone(),
                    source,
                })?;
                if meta.is_dir() {
                    walk(p, &mut files, 0)?;
                    vars_bases.push(p.clone());
                } else {
                    files.push((p.clone(), None));
                    vars_bases.push(p.parent().map(Path::to_path_buf).unwrap_or_default());
                }
            }
            Source::Text { name, text } => files.push((name.clone(), Some(text.as_str()))),
        }
    }
    let first = sources
        .first()
        .map(|s| s.name().to_path_buf())
        .unwrap_or_else(|| PathBuf::from("<no inventory>"));
    let mut b = Builder::new(&first);
    for (path, text) in &files {
        b.set_file(path);
        match text {
            Some(t) => read_into(&mut b, path, t, vault)?,
            None => {
                if let Some(e) = script_error(path) {
                    return Err(e);
                }
                let t = crate::read_text(path, vault)?;
                read_into(&mut b, path, &t, vault)?;
            }
        }
    }
    for base in &vars_bases {
        read_vars_dirs(&mut b, base, vault)?;
    }
    let mut inv = b.finish_inventory()?;
    inv.source = match sources {
        [one] => Some(one.name().to_path_buf()),
        _ => None,
    };
    inv.sources = sources.iter().map(|s| s.name().to_path_buf()).collect();
    Ok(inv)
}

/// Reads one file's text (any [`Format`], or `ansible-inventory --list` JSON) into `b`.
pub(crate) fn read_into(
    b: &mut Builder<'_>,
    path: &Path,
    text: &str,
    vault: &VaultSecrets,
) -> Result<(), InventoryError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim_start().starts_with('{') {
        if let Ok(doc) = serde_json::from_str::<json_inventory::Ordered>(text) {
            if json_inventory::is_list_output(&doc) {
                return json_inventory::read_into(b, &doc, vault);
            }
        }
    }
    match Format::detect(path, text) {
        Format::Yaml => crate::yaml::read_into(b, text, vault),
        Format::Ini => crate::ini::read_into(b, text),
        Format::List => crate::list::read_into(b, text),
        Format::Csv => crate::csv_file::read_into(b, text),
    }
}

/// An executable file starting with `#!` is an inventory script Ansible would run.
fn script_error(path: &Path) -> Option<InventoryError> {
    if !is_executable(path) {
        return None;
    }
    let mut head = [0u8; 2];
    let n = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
        .ok()?;
    (n == 2 && head == *b"#!").then(|| InventoryError::Syntax {
        path: path.to_path_buf(),
        line: 1,
        message: format!(
            "this is an executable inventory script, which trustsweep does not run: let Ansible run it and pipe its hosts in: \
             ansible-inventory -i {} --list | trustsweep ... -i -",
            path.display()
        ),
    })
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(_path: &Path) -> bool {
    false
}

/// Whether Ansible skips this directory entry (`IGNORED` in `inventory/manager.py`).
pub fn ignored_in_directory(name: &str) -> bool {
    name.starts_with('.')
        || IGNORED_NAMES.contains(&name)
        || INVENTORY_IGNORE_EXTS.iter().any(|e| name.ends_with(e))
}

/// The inventory files of a directory, in the order Ansible reads them.
fn walk(
    dir: &Path,
    out: &mut Vec<(PathBuf, Option<&str>)>,
    depth: usize,
) -> Result<(), InventoryError> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    let read_err = |source| InventoryError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut names: Vec<String> = Vec::new();
    for e in std::fs::read_dir(dir).map_err(read_err)? {
        names.push(
            e.map_err(read_err)?
                .file_name()
                .to_string_lossy()
                .into_owned(),
        );
    }
    names.sort();
    for name in names {
        if ignored_in_directory(&name) {
            continue;
        }
        let path = dir.join(&name);
        if path.is_dir() {
            walk(&path, out, depth + 1)?;
        } else if path.is_file() {
            out.push((path, None));
        }
    }
    Ok(())
}

/// The `group_vars/` and `host_vars/` of one source's directory: files for every group and
/// host the inventory has (files for others are not read, as in Ansible).
fn read_vars_dirs(
    b: &mut Builder<'_>,
    base: &Path,
    vault: &VaultSecrets,
) -> Result<(), InventoryError> {
    let layer = b.add_layer();
    if let Some(dir) = VarsDir::open(base, "group_vars")? {
        for g in b.group_names() {
            for f in dir.files_for(&g)? {
                read_vars_file(b, layer, Entity::Group(&g), &f, vault)?;
            }
        }
    }
    if let Some(dir) = VarsDir::open(base, "host_vars")? {
        for h in b.host_names() {
            for f in dir.files_for(&h)? {
                read_vars_file(b, layer, Entity::Host(&h), &f, vault)?;
            }
        }
    }
    Ok(())
}

fn read_vars_file(
    b: &mut Builder<'_>,
    layer: usize,
    entity: Entity<'_>,
    path: &Path,
    vault: &VaultSecrets,
) -> Result<(), InventoryError> {
    b.set_file(path);
    for (k, v, line) in varsdir::read(path, vault)? {
        let json = match decrypt_yaml(&v, vault)
            .map_err(|source| b.vault_err(line, format!("variable '{k}'"), source))?
        {
            Some(secret) => b.vaulted(secret),
            None => serde_json::to_value(&v)
                .map_err(|e| b.err(line, format!("variable '{k}' cannot be used: {e}")))?,
        };
        b.set_layer_var(layer, entity, &k, json, line)?;
    }
    Ok(())
}
