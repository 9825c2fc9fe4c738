//! Ansible Vault: the `!vault` values of YAML inventories and vars files, and whole files
//! encrypted with `ansible-vault encrypt`, decrypted with the vault secrets the user gives
//! (`--vault-password-file`, `--vault-id`, `--ask-vault-pass`). Pure over text and bytes,
//! except [`VaultSecret::from_file`], which reads a password file or runs a password script.
//!
//! The format (Ansible's "Vault payload format 1.1 - 1.2", cipher `AES256`):
//!
//! ```text
//! $ANSIBLE_VAULT;1.1;AES256            (1.2 adds the vault ID: $ANSIBLE_VAULT;1.2;AES256;prod)
//! hexlify( hexlify(salt) \n hexlify(hmac) \n hexlify(ciphertext) ), in lines of 80
//! ```
//!
//! Key material is PBKDF2-HMAC-SHA256(password, salt, 10000 iterations, 80 bytes): the
//! AES-256 key, the HMAC-SHA256 key and the 16-byte initial counter block, in that order.
//! The HMAC over the ciphertext is checked (in constant time) before AES-256-CTR decrypts
//! it; the plaintext carries PKCS#7 padding to the AES block.
//!
//! Passwords and plaintexts live in zeroizing buffers and the secret types; neither ever
//! appears in an error, a log line or `Debug` output.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use aes::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

/// The vault ID of secrets given without a label, and of 1.1 vault texts (Ansible's
/// `DEFAULT_VAULT_IDENTITY`).
pub const DEFAULT_VAULT_ID: &str = "default";

/// How every vault text starts.
const MAGIC: &str = "$ANSIBLE_VAULT";
/// The one cipher Ansible has written since 2.0.
const CIPHER: &str = "AES256";
/// PBKDF2 iterations of `VaultAES256`.
const ITERATIONS: u32 = 10_000;
const KEY_LEN: usize = 32;
const IV_LEN: usize = 16;
/// The AES block, the unit of the PKCS#7 padding.
const BLOCK: usize = 16;

type Aes256Ctr = ctr::Ctr128BE<aes::Aes256>;

/// Whether `text` is vault-encrypted (starts with `$ANSIBLE_VAULT`, as Ansible's
/// `is_encrypted` checks; leading whitespace and a byte-order mark allowed).
pub fn is_vault_encrypted(text: &str) -> bool {
    text.trim_start_matches('\u{feff}')
        .trim_start()
        .starts_with(MAGIC)
}

/// One vault secret: a vault ID (`default` unless labelled) and its password.
#[derive(Clone)]
pub struct VaultSecret {
    id: String,
    password: SecretSlice<u8>,
}

impl fmt::Debug for VaultSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultSecret")
            .field("id", &self.id)
            .field("password", &crate::MASK)
            .finish()
    }
}

impl VaultSecret {
    /// A secret with vault ID `id` (empty: [`DEFAULT_VAULT_ID`]) and the password as given;
    /// an empty password is refused, as Ansible refuses it.
    pub fn new(id: &str, password: SecretSlice<u8>) -> Result<VaultSecret, VaultSecretError> {
        if password.expose_secret().is_empty() {
            return Err(VaultSecretError::Empty {
                origin: "the password given".into(),
            });
        }
        Ok(VaultSecret {
            id: if id.is_empty() { DEFAULT_VAULT_ID } else { id }.to_string(),
            password,
        })
    }

    /// A secret typed at a prompt: surrounding whitespace removed, as Ansible's
    /// `PromptVaultSecret` does.
    pub fn from_prompt(id: &str, typed: &SecretString) -> Result<VaultSecret, VaultSecretError> {
        let trimmed = typed.expose_secret().trim().as_bytes().to_vec();
        VaultSecret::new(id, SecretSlice::from(trimmed)).map_err(|_| VaultSecretError::Empty {
            origin: "the prompt".into(),
        })
    }

    /// A secret from a password file, as Ansible's `get_file_vault_secret` reads it: an
    /// executable file is run and its standard output, less the line break, is the
    /// password (a `NAME-client` script is asked `--vault-id ID`); any other file's text,
    /// whitespace-trimmed, is the password.
    pub fn from_file(id: &str, path: &Path) -> Result<VaultSecret, VaultSecretError> {
        let meta = std::fs::metadata(path).map_err(|source| VaultSecretError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if meta.is_dir() {
            return Err(VaultSecretError::Read {
                path: path.to_path_buf(),
                source: std::io::Error::other("it is a directory"),
            });
        }
        let password = if is_executable(&meta) {
            run_script(id, path)?
        } else {
            read_password_file(path)?
        };
        VaultSecret::new(id, password).map_err(|_| VaultSecretError::Empty {
            origin: path.display().to_string(),
        })
    }

    /// The vault ID.
    pub fn id(&self) -> &str {
        &self.id
    }
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &std::fs::Metadata) -> bool {
    false
}

/// The whole file, whitespace-trimmed (Ansible's `FileVaultSecret`: `read().strip()`).
fn read_password_file(path: &Path) -> Result<SecretSlice<u8>, VaultSecretError> {
    let read_err = |source| VaultSecretError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut raw = Zeroizing::new(Vec::new());
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut raw))
        .map_err(read_err)?;
    Ok(SecretSlice::from(raw.trim_ascii().to_vec()))
}

/// A password script's standard output less its line breaks (Ansible's
/// `ScriptVaultSecret`); its standard error goes to ours, so it may prompt.
fn run_script(id: &str, path: &Path) -> Result<SecretSlice<u8>, VaultSecretError> {
    let mut cmd = Command::new(path);
    let client = path
        .file_stem()
        .and_then(|s| s.to_str())
        .is_some_and(|s| s.ends_with("-client"));
    if client {
        cmd.args(["--vault-id", id]);
    }
    let out = cmd
        .stdin(Stdio::inherit())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|source| VaultSecretError::Run {
            path: path.to_path_buf(),
            source,
        })?;
    let stdout = Zeroizing::new(out.stdout);
    match out.status.code() {
        Some(0) => {}
        Some(2) if client => {
            return Err(VaultSecretError::UnknownVaultId {
                path: path.to_path_buf(),
                id: id.to_string(),
            })
        }
        code => {
            return Err(VaultSecretError::ScriptFailed {
                path: path.to_path_buf(),
                code,
            })
        }
    }
    let mut s: &[u8] = &stdout;
    while let [rest @ .., b'\r' | b'\n'] = s {
        s = rest;
    }
    while let [b'\r' | b'\n', rest @ ..] = s {
        s = rest;
    }
    Ok(SecretSlice::from(s.to_vec()))
}

/// Where a vault secret comes from, as `--vault-id` writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VaultIdSource {
    /// A password file or script.
    File(PathBuf),
    /// Asked on the terminal (`prompt`).
    Prompt,
}

/// A `--vault-id` argument: `LABEL@SOURCE`, or just `SOURCE` for the `default` ID; the
/// source is a file or `prompt` (Ansible's `split_vault_id`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultIdSpec {
    /// The vault ID.
    pub id: String,
    /// Where its password comes from.
    pub source: VaultIdSource,
}

impl std::str::FromStr for VaultIdSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<VaultIdSpec, String> {
        let (id, source) = match s.split_once('@') {
            Some((id, source)) => (id, source),
            None => ("", s),
        };
        if source.is_empty() {
            return Err(format!(
                "'{s}' names no password source: write LABEL@FILE or LABEL@prompt"
            ));
        }
        let source = match source {
            "prompt" | "prompt_ask_vault_pass" => VaultIdSource::Prompt,
            file => VaultIdSource::File(PathBuf::from(file)),
        };
        Ok(VaultIdSpec {
            id: if id.is_empty() { DEFAULT_VAULT_ID } else { id }.to_string(),
            source,
        })
    }
}

/// The vault secrets of a run, in the order given. Cloning shares nothing mutable; `Debug`
/// shows the vault IDs only.
#[derive(Clone, Default)]
pub struct VaultSecrets {
    secrets: Vec<VaultSecret>,
}

impl fmt::Debug for VaultSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultSecrets")
            .field("ids", &self.ids())
            .finish()
    }
}

impl VaultSecrets {
    /// No secrets: a vaulted value is then an error saying how to give one.
    pub fn none() -> VaultSecrets {
        VaultSecrets::default()
    }

    /// Adds a secret; secrets are tried in the order added (after those whose ID matches
    /// a 1.2 header).
    pub fn push(&mut self, secret: VaultSecret) {
        self.secrets.push(secret);
    }

    /// Whether no secret was given.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// The vault IDs, in order.
    pub fn ids(&self) -> Vec<&str> {
        self.secrets.iter().map(|s| s.id.as_str()).collect()
    }

    /// Decrypts a vault text to its plaintext bytes, trying the secrets whose ID the
    /// header names first, then the others in order (as Ansible's `VaultLib.decrypt`).
    pub fn decrypt(&self, vault_text: &str) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let env = Envelope::parse(vault_text)?;
        if self.secrets.is_empty() {
            return Err(VaultError::NoSecret);
        }
        let id = env.vault_id.as_deref();
        let matching = self.secrets.iter().filter(|s| Some(s.id.as_str()) == id);
        let others = self.secrets.iter().filter(|s| Some(s.id.as_str()) != id);
        for secret in matching.chain(others) {
            if let Some(plain) = env.decrypt(secret.password.expose_secret())? {
                return Ok(plain);
            }
        }
        Err(VaultError::WrongPassword {
            vault_id: env.vault_id.clone(),
            tried: self.secrets.iter().map(|s| s.id.clone()).collect(),
        })
    }

    /// Decrypts a vault text holding UTF-8 text (what `encrypt_string` and vaulted YAML
    /// files hold).
    pub fn decrypt_string(&self, vault_text: &str) -> Result<SecretString, VaultError> {
        let plain = self.decrypt(vault_text)?;
        zeroizing_utf8(plain).map(SecretString::from)
    }
}

/// The plaintext as a `String` of exactly its length (so the secret types never
/// reallocate it, leaving a copy behind); non-UTF-8 bytes are wiped and refused.
pub(crate) fn zeroizing_utf8(mut plain: Zeroizing<Vec<u8>>) -> Result<String, VaultError> {
    let mut exact = Vec::with_capacity(plain.len());
    exact.extend_from_slice(&plain);
    plain.zeroize();
    String::from_utf8(exact).map_err(|e| {
        e.into_bytes().zeroize();
        VaultError::NotUtf8
    })
}

/// A parsed vault text.
struct Envelope {
    /// The 1.2 header's vault ID.
    vault_id: Option<String>,
    salt: Vec<u8>,
    hmac: Vec<u8>,
    ciphertext: Vec<u8>,
}

impl Envelope {
    fn parse(text: &str) -> Result<Envelope, VaultError> {
        let text = text.trim_start_matches('\u{feff}').trim_start();
        let mut lines = text.lines();
        let header = lines.next().unwrap_or("").trim();
        let fields: Vec<&str> = header.split(';').map(str::trim).collect();
        let (version, cipher, rest) = match fields.as_slice() {
            [magic, version, cipher, rest @ ..] if *magic == MAGIC => (*version, *cipher, rest),
            _ => {
                return Err(VaultError::Format(
                    "no $ANSIBLE_VAULT;VERSION;CIPHER header",
                ))
            }
        };
        let vault_id = match version {
            "1.1" => None,
            "1.2" => rest
                .first()
                .filter(|id| !id.is_empty())
                .map(|id| id.to_string()),
            other => return Err(VaultError::Version(other.to_string())),
        };
        if cipher != CIPHER {
            return Err(VaultError::Cipher(cipher.to_string()));
        }
        let hex_text: String = lines.map(str::trim).collect();
        let outer = hex::decode(hex_text.as_bytes())
            .map_err(|_| VaultError::Format("the payload is not hexadecimal"))?;
        let mut parts = outer.splitn(3, |b| *b == b'\n');
        let mut field = |what: &'static str| {
            parts
                .next()
                .ok_or(VaultError::Format(what))
                .and_then(|p| hex::decode(p.trim_ascii()).map_err(|_| VaultError::Format(what)))
        };
        let salt = field("the salt is missing or not hexadecimal")?;
        let hmac = field("the HMAC is missing or not hexadecimal")?;
        let ciphertext = field("the ciphertext is missing or not hexadecimal")?;
        if ciphertext.is_empty() || ciphertext.len() % BLOCK != 0 {
            return Err(VaultError::Format(
                "the ciphertext is not a whole number of AES blocks",
            ));
        }
        Ok(Envelope {
            vault_id,
            salt,
            hmac,
            ciphertext,
        })
    }

    /// The plaintext, or `None` when `password` is not the one it was encrypted with (the
    /// HMAC does not match).
    fn decrypt(&self, password: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, VaultError> {
        let mut keys = Zeroizing::new([0u8; 2 * KEY_LEN + IV_LEN]);
        pbkdf2::pbkdf2_hmac::<Sha256>(password, &self.salt, ITERATIONS, keys.as_mut_slice());
        let (aes_key, rest) = keys.split_at(KEY_LEN);
        let (hmac_key, iv) = rest.split_at(KEY_LEN);
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(hmac_key)
            .map_err(|_| VaultError::Format("HMAC key"))?;
        mac.update(&self.ciphertext);
        // Constant-time comparison (`Mac::verify_slice`).
        if mac.verify_slice(&self.hmac).is_err() {
            return Ok(None);
        }
        let mut cipher = Aes256Ctr::new_from_slices(aes_key, iv)
            .map_err(|_| VaultError::Format("AES key or counter length"))?;
        let mut plain = Zeroizing::new(self.ciphertext.clone());
        cipher.apply_keystream(plain.as_mut_slice());
        // PKCS#7: the last byte says how many bytes of padding, each of that value.
        let pad = plain.last().copied().map(usize::from).unwrap_or(0);
        let ok = (1..=BLOCK).contains(&pad)
            && plain.len() >= pad
            && plain
                .get(plain.len() - pad..)
                .is_some_and(|tail| tail.iter().all(|b| usize::from(*b) == pad));
        if !ok {
            return Err(VaultError::Format("the padding is not PKCS#7"));
        }
        let len = plain.len() - pad;
        plain.truncate(len);
        Ok(Some(plain))
    }
}

/// Why a vault text could not be decrypted. Never carries any of the plaintext or a
/// password; the caller adds which file and variable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    // The user gave no secret or the wrong one.
    /// Vault-encrypted, but no vault secret was given.
    #[error("it is vault-encrypted and no vault password was given: pass --vault-password-file FILE (or set ANSIBLE_VAULT_PASSWORD_FILE), --vault-id LABEL@FILE, or --ask-vault-pass")]
    NoSecret,
    /// No secret given decrypts it.
    #[error(
        "the vault password is wrong: no vault secret given decrypts it (tried vault ID {tried}{header}); give the password it was encrypted with, by --vault-password-file FILE, --vault-id LABEL@FILE or --ask-vault-pass",
        tried = tried.join(", "),
        header = vault_id.as_ref().map(|id| format!("; it was encrypted with vault ID '{id}'")).unwrap_or_default()
    )]
    WrongPassword {
        /// The vault ID of a 1.2 header.
        vault_id: Option<String>,
        /// The vault IDs of the secrets tried.
        tried: Vec<String>,
    },

    // The vault text is not one we can read.
    /// Not a well-formed vault text.
    #[error("it is not a valid Ansible Vault text ({0}); re-encrypt it with ansible-vault")]
    Format(&'static str),
    /// A format version other than 1.1 and 1.2.
    #[error("vault format version {0} is not supported (only 1.1 and 1.2); re-encrypt it with ansible-vault")]
    Version(String),
    /// A cipher other than AES256.
    #[error("vault cipher {0} is not supported (only AES256); re-encrypt it with ansible-vault")]
    Cipher(String),
    /// Decrypted to bytes that are not text.
    #[error("it decrypts to bytes that are not UTF-8 text")]
    NotUtf8,
}

/// Why a vault secret could not be had. Never carries the password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultSecretError {
    /// The password file could not be read.
    #[error("cannot read vault password file {path}: {source}", path = path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The password script could not be run.
    #[error("cannot run vault password script {path}: {source} (if it is not a script, remove its executable bit: chmod -x)", path = path.display())]
    Run {
        /// The script.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The password script failed.
    #[error("vault password script {path} failed ({status})", path = path.display(), status = code.map(|c| format!("exit code {c}")).unwrap_or_else(|| "killed by a signal".into()))]
    ScriptFailed {
        /// The script.
        path: PathBuf,
        /// Its exit code.
        code: Option<i32>,
    },
    /// A `-client` script knows no secret for the vault ID (exit code 2).
    #[error("vault password client script {path} has no secret for vault ID '{id}'", path = path.display())]
    UnknownVaultId {
        /// The script.
        path: PathBuf,
        /// The vault ID asked for.
        id: String,
    },
    /// The password is empty.
    #[error("the vault password from {origin} is empty")]
    Empty {
        /// Which file, script or prompt.
        origin: String,
    },
}

/// Decrypts the `!vault` values in a YAML value. `Ok(None)`: it holds none (use it as it
/// is). A value that is itself `!vault` becomes its plaintext; a mapping or list holding
/// `!vault` values becomes its JSON text with them decrypted (the whole value is then a
/// secret).
pub(crate) fn decrypt_yaml(
    value: &serde_norway::Value,
    secrets: &VaultSecrets,
) -> Result<Option<SecretString>, VaultError> {
    if let Some(text) = vault_tagged(value) {
        return secrets.decrypt_string(text).map(Some);
    }
    if !holds_vault(value, 0) {
        return Ok(None);
    }
    let mut json = yaml_to_json(value, secrets, 0)?;
    let text = serde_json::to_string(&json).map_err(|_| VaultError::NotUtf8);
    wipe_json(&mut json);
    text.map(|t| Some(SecretString::from(t)))
}

/// Nesting deeper than this is not looked into (inventories are shallow).
const MAX_DEPTH: usize = 64;

/// The vault text of a `!vault`-tagged string.
fn vault_tagged(value: &serde_norway::Value) -> Option<&str> {
    match value {
        serde_norway::Value::Tagged(t) if t.tag == "vault" => t.value.as_str(),
        _ => None,
    }
}

fn holds_vault(value: &serde_norway::Value, depth: usize) -> bool {
    use serde_norway::Value as Y;
    if depth > MAX_DEPTH {
        return false;
    }
    match value {
        Y::Tagged(t) => t.tag == "vault" || holds_vault(&t.value, depth + 1),
        Y::Sequence(s) => s.iter().any(|v| holds_vault(v, depth + 1)),
        Y::Mapping(m) => m.values().any(|v| holds_vault(v, depth + 1)),
        _ => false,
    }
}

fn yaml_to_json(
    value: &serde_norway::Value,
    secrets: &VaultSecrets,
    depth: usize,
) -> Result<serde_json::Value, VaultError> {
    use serde_json::Value as J;
    use serde_norway::Value as Y;
    if let Some(text) = vault_tagged(value) {
        let plain = secrets.decrypt(text)?;
        return zeroizing_utf8(plain).map(J::String);
    }
    Ok(match value {
        Y::Sequence(s) if depth < MAX_DEPTH => J::Array(
            s.iter()
                .map(|v| yaml_to_json(v, secrets, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(m) if depth < MAX_DEPTH => {
            let mut out = serde_json::Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s.clone(),
                    other => serde_json::to_string(other).unwrap_or_default(),
                };
                out.insert(key, yaml_to_json(v, secrets, depth + 1)?);
            }
            J::Object(out)
        }
        Y::Tagged(t) => yaml_to_json(&t.value, secrets, depth + 1)?,
        other => serde_json::to_value(other).unwrap_or(J::Null),
    })
}

/// Overwrites every string of a JSON value that held decrypted text.
fn wipe_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => s.zeroize(),
        serde_json::Value::Array(a) => a.iter_mut().for_each(wipe_json),
        serde_json::Value::Object(o) => o.values_mut().for_each(wipe_json),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The password of every vector below that was made with `default`: a throwaway.
    const PASSWORD: &str = "correct horse vault";
    /// The password of the `prod` vault ID's vectors: a throwaway.
    const PROD_PASSWORD: &str = "prod-only secret";

    /// `ansible-vault encrypt_string --vault-password-file pw 'S3cret!Adm1n'`
    /// (ansible-core 2.19.14; format 1.1, a 12-byte plaintext: 4 bytes of padding).
    const V11: &str = "$ANSIBLE_VAULT;1.1;AES256
          65623932616435303837323733663237666562383362633633656331353637356132383835376663
          6166663163656532653765383365353935653561663263370a333534393064396134623464653839
          37336566303238343832313836336233666432643636303034303462626339633561303034393564
          6163316533333230360a313065613666303732613366336137303736396139336439396235313837
          3963
";

    /// `ansible-vault encrypt_string --vault-id prod@pwprod 'exactly16bytes!!'`
    /// (format 1.2 with vault ID `prod`; a whole block of padding).
    const V12_PROD: &str = "$ANSIBLE_VAULT;1.2;AES256;prod
          36653862336331366466646539353730383462633631626365303137663863613037353061393366
          6539383136306462386435383762393436353432336236620a306533336530643730633431386133
          36386231643065316164636362653735363130653437323764313434333731306639636337373438
          6633623939376563640a666561396162643066373564356264643936383566666531353263316130
          33313334633737666432323138376633623230323566333437316661613533633964
";

    /// `ansible-vault encrypt --vault-password-file pw inv.yml`: a whole YAML inventory.
    const FILE_V11: &str = "$ANSIBLE_VAULT;1.1;AES256
30613263366531356465333136633266306537623236653632653962393534616466383762623530
3564316531366463333861313137333961323037623261650a323163386432363064333234653366
37613861386332346232346361383465346562333730346339383839386566393236393030643831
3132373234613966610a313335306335663565336665653931336561366534373039383132363033
35353631633935656165633764326435666337363461336239383465396366343561363261383865
35303566656132393962303562646234343730663835633563656663633634336365353838323637
38383665653733363565396338633330363930646637316265323266313164653263333038343439
36663835333238346162376363393735306532323064303630653266663664303264323639306564
6332
";
    const FILE_PLAIN: &str = "all:\n  hosts:\n    ws1:\n      ansible_host: 127.0.0.1\n      ansible_password: file-level secret\n";

    fn secret(id: &str, pw: &str) -> VaultSecret {
        VaultSecret::new(id, SecretSlice::from(pw.as_bytes().to_vec())).unwrap()
    }

    fn secrets(list: &[(&str, &str)]) -> VaultSecrets {
        let mut s = VaultSecrets::none();
        for (id, pw) in list {
            s.push(secret(id, pw));
        }
        s
    }

    fn text(s: &VaultSecrets, v: &str) -> String {
        s.decrypt_string(v).unwrap().expose_secret().to_string()
    }

    #[test]
    fn decrypts_ansible_vault_1_1() {
        let s = secrets(&[("", PASSWORD)]);
        assert_eq!(text(&s, V11), "S3cret!Adm1n");
        assert_eq!(text(&s, FILE_V11), FILE_PLAIN);
    }

    #[test]
    fn decrypts_ansible_vault_1_2_with_its_vault_id_first() {
        // The matching ID is tried first, whatever the order given.
        let s = secrets(&[("default", PASSWORD), ("prod", PROD_PASSWORD)]);
        assert_eq!(text(&s, V12_PROD), "exactly16bytes!!");
        // A secret under another label still decrypts it (Ansible tries them all).
        let s = secrets(&[("other", PROD_PASSWORD)]);
        assert_eq!(text(&s, V12_PROD), "exactly16bytes!!");
        // And a 1.1 text with several secrets.
        let s = secrets(&[("prod", PROD_PASSWORD), ("default", PASSWORD)]);
        assert_eq!(text(&s, V11), "S3cret!Adm1n");
    }

    #[test]
    fn wrong_password_is_a_clear_error_without_secrets() {
        let s = secrets(&[("default", "not it"), ("dev", "nor this")]);
        let e = s.decrypt(V12_PROD).unwrap_err();
        assert!(matches!(e, VaultError::WrongPassword { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains("vault password is wrong"), "{msg}");
        assert!(msg.contains("default, dev"), "{msg}");
        assert!(msg.contains("vault ID 'prod'"), "{msg}");
        assert!(
            !msg.contains("not it") && !msg.contains("exactly16"),
            "{msg}"
        );
        let dbg = format!("{s:?} {:?}", secret("x", "hunter2"));
        assert!(!dbg.contains("hunter2") && !dbg.contains("not it"), "{dbg}");
    }

    #[test]
    fn no_secret_says_which_flags() {
        let e = VaultSecrets::none().decrypt(V11).unwrap_err().to_string();
        assert!(e.contains("--vault-password-file"), "{e}");
        assert!(
            e.contains("--vault-id") && e.contains("--ask-vault-pass"),
            "{e}"
        );
    }

    #[test]
    fn tampering_and_malformed_texts_are_refused_without_panicking() {
        let s = secrets(&[("", PASSWORD)]);
        // One ciphertext nibble changed: the HMAC no longer matches.
        let tampered = V11.replacen("3963\n", "3964\n", 1);
        assert!(matches!(
            s.decrypt(&tampered),
            Err(VaultError::WrongPassword { .. } | VaultError::Format(_))
        ));
        for bad in [
            "",
            "$ANSIBLE_VAULT",
            "$ANSIBLE_VAULT;1.1;AES256",
            "$ANSIBLE_VAULT;1.1;AES256\nzz",
            "$ANSIBLE_VAULT;1.1;AES256\n6162",
            "$ANSIBLE_VAULT;1.1;AES256\n61620a63640a",
            "$ANSIBLE_VAULT;1.1;AES256\n61620a63640a6566",
            "not a vault",
        ] {
            assert!(
                matches!(s.decrypt(bad), Err(VaultError::Format(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            s.decrypt("$ANSIBLE_VAULT;1.0;AES256\n00"),
            Err(VaultError::Version(_))
        ));
        assert!(matches!(
            s.decrypt("$ANSIBLE_VAULT;1.1;AES\n00"),
            Err(VaultError::Cipher(_))
        ));
        // Every truncation of a real vault text fails cleanly or decrypts.
        for n in 0..V11.len() {
            let _ = s.decrypt(V11.get(..n).unwrap_or(""));
        }
    }

    #[test]
    fn vault_id_specs() {
        let p = |s: &str| s.parse::<VaultIdSpec>().unwrap();
        assert_eq!(
            p("prod@/etc/pw"),
            VaultIdSpec {
                id: "prod".into(),
                source: VaultIdSource::File("/etc/pw".into())
            }
        );
        assert_eq!(p("dev@prompt").source, VaultIdSource::Prompt);
        assert_eq!(p("dev@prompt").id, "dev");
        assert_eq!(p("prompt").id, DEFAULT_VAULT_ID);
        assert_eq!(p("pw.txt").source, VaultIdSource::File("pw.txt".into()));
        assert!("prod@".parse::<VaultIdSpec>().is_err());
    }

    #[test]
    fn password_files_and_scripts() {
        let dir = std::env::temp_dir().join(format!("inventory-vault-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A plain file: whole content, trimmed.
        let file = dir.join("pw");
        std::fs::write(&file, format!("  {PASSWORD}\n\n")).unwrap();
        let mut s = VaultSecrets::none();
        s.push(VaultSecret::from_file("", &file).unwrap());
        assert_eq!(text(&s, V11), "S3cret!Adm1n");
        assert_eq!(s.ids(), vec!["default"]);
        // An empty one is refused, naming the file.
        let empty = dir.join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let e = VaultSecret::from_file("", &empty).unwrap_err().to_string();
        assert!(
            e.contains("empty") && e.contains(&*empty.to_string_lossy()),
            "{e}"
        );
        assert!(VaultSecret::from_file("", &dir.join("missing")).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let script = |name: &str, body: &str| {
                let p = dir.join(name);
                std::fs::write(&p, body).unwrap();
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).unwrap();
                p
            };
            // An executable: its output is the password.
            let plain = script("pw.sh", &format!("#!/bin/sh\necho '{PROD_PASSWORD}'\n"));
            let mut s = VaultSecrets::none();
            s.push(VaultSecret::from_file("prod", &plain).unwrap());
            assert_eq!(text(&s, V12_PROD), "exactly16bytes!!");
            // A client script is asked for the vault ID.
            let client = script(
                "vault-client.sh",
                &format!("#!/bin/sh\n[ \"$1 $2\" = '--vault-id prod' ] || exit 2\necho '{PROD_PASSWORD}'\n"),
            );
            assert!(VaultSecret::from_file("prod", &client).is_ok());
            let e = VaultSecret::from_file("dev", &client).unwrap_err();
            assert!(
                matches!(e, VaultSecretError::UnknownVaultId { .. }),
                "{e:?}"
            );
            let failing = script("fail.sh", "#!/bin/sh\nexit 3\n");
            let e = VaultSecret::from_file("", &failing)
                .unwrap_err()
                .to_string();
            assert!(e.contains("exit code 3"), "{e}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn prompt_is_trimmed_and_must_not_be_empty() {
        let mut s = VaultSecrets::none();
        let typed = SecretString::from(format!(" {PASSWORD} "));
        s.push(VaultSecret::from_prompt("", &typed).unwrap());
        assert_eq!(text(&s, V11), "S3cret!Adm1n");
        assert!(VaultSecret::from_prompt("", &SecretString::from("  ")).is_err());
    }

    #[test]
    fn yaml_values() {
        let s = secrets(&[("", PASSWORD)]);
        let doc: serde_norway::Value = serde_norway::from_str(&format!(
            "a: !vault |\n  {}\nb:\n  inner: !vault |\n    {}\nc: plain\n",
            V11.trim().replace('\n', "\n  "),
            V11.trim().replace('\n', "\n    ")
        ))
        .unwrap();
        let a = decrypt_yaml(&doc["a"], &s).unwrap().unwrap();
        assert_eq!(a.expose_secret(), "S3cret!Adm1n");
        let b = decrypt_yaml(&doc["b"], &s).unwrap().unwrap();
        assert_eq!(b.expose_secret(), r#"{"inner":"S3cret!Adm1n"}"#);
        assert!(decrypt_yaml(&doc["c"], &s).unwrap().is_none());
        assert!(matches!(
            decrypt_yaml(&doc["a"], &VaultSecrets::none()),
            Err(VaultError::NoSecret)
        ));
    }

    #[test]
    fn the_loader_keeps_vaulted_values_secret() {
        let indent = |n: usize| V11.trim().replace('\n', &format!("\n{}", " ".repeat(n)));
        let text = format!(
            "all:\n  vars:\n    ansible_user: !vault |\n      {}\n  hosts:\n    ws1:\n      ansible_host: 127.0.0.1\n      ansible_password: !vault |\n        {}\n",
            indent(6),
            indent(8)
        );
        let path = Path::new("inv.yml");
        let s = secrets(&[("", PASSWORD)]);
        let inv = crate::yaml::parse_yaml_with_vault(&text, path, &s).unwrap();
        let ws1 = inv.host("ws1").unwrap();
        assert_eq!(ws1.password().unwrap().expose_secret(), "S3cret!Adm1n");
        // Vaulted, so a secret whatever its name; still what `user()` reads.
        assert!(!ws1.vars.contains_key("ansible_user"));
        assert_eq!(ws1.user().as_deref(), Some("S3cret!Adm1n"));
        assert!(!format!("{inv:?}").contains("S3cret"));
        // Without a secret: the file, the line, the variable and what to pass.
        let e = crate::yaml::parse_yaml(&text, path)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("inv.yml:3: group 'all': variable 'ansible_user'"),
            "{e}"
        );
        assert!(e.contains("--vault-password-file"), "{e}");
        // The wrong one: the same place, said to be the wrong password.
        let wrong = secrets(&[("", "nope")]);
        let e = crate::yaml::parse_yaml_with_vault(&text, path, &wrong)
            .unwrap_err()
            .to_string();
        assert!(e.contains("vault password is wrong"), "{e}");
        assert!(!e.contains("S3cret"), "{e}");
    }

    #[test]
    fn whole_encrypted_files_load() {
        let dir = std::env::temp_dir().join(format!("inventory-vault-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hosts");
        std::fs::write(&path, FILE_V11).unwrap();
        let inv = crate::load_with_vault(&path, &secrets(&[("", PASSWORD)])).unwrap();
        let ws1 = inv.host("ws1").unwrap();
        assert_eq!(ws1.address, "127.0.0.1");
        assert_eq!(ws1.password().unwrap().expose_secret(), "file-level secret");
        let e = crate::load(&path).unwrap_err().to_string();
        assert!(e.contains("hosts: the file (encrypted whole"), "{e}");
        assert!(e.contains("--ask-vault-pass"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn detects_vault_files() {
        assert!(is_vault_encrypted(FILE_V11));
        assert!(is_vault_encrypted("\u{feff}\n$ANSIBLE_VAULT;1.1;AES256\n"));
        assert!(!is_vault_encrypted(FILE_PLAIN));
    }
}
