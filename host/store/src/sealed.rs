//! Secrets at rest: every account secret is stored sealed with XChaCha20-Poly1305 (an
//! authenticated cipher, RustCrypto's `chacha20poly1305`), bound to its account and name
//! (a value copied to another row does not open), so a database backup alone leaks no
//! platform token.
//!
//! The key (32 bytes, hex) comes from, in order: `PASSERELLE_SECRETS_KEY`; systemd's
//! credentials (`$CREDENTIALS_DIRECTORY/passerelle-secrets-key`, `LoadCredential=`); the
//! data directory's `secrets.key` (created 0600 at first use; refused if others may read
//! it). Several daemons on one PostgreSQL need the same key (environment or credential).
//! Previous keys still open what they sealed: `PASSERELLE_SECRETS_KEY_PREVIOUS`, or the
//! data directory's `secrets.key.previous` / `secrets.key.new` (a rotation in progress).
//! `passerelle secrets rotate-key` re-seals everything under a new key.
//!
//! A stored value reads `sealed1:<key id>:<base64 of nonce and ciphertext>`; the key id
//! (8 hex digits of the key's SHA-256) names the key it needs. Rows written before
//! sealing existed are plain text: opened as they are, and sealed when a store opens.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

const PREFIX: &str = "sealed1:";
const KEY_FILE: &str = "secrets.key";
const PREVIOUS_FILE: &str = "secrets.key.previous";
const NEW_FILE: &str = "secrets.key.new";
const KEY_ENV: &str = "PASSERELLE_SECRETS_KEY";
const PREVIOUS_ENV: &str = "PASSERELLE_SECRETS_KEY_PREVIOUS";
const CREDENTIAL: &str = "passerelle-secrets-key";

/// Why a secret cannot be opened (never with the value).
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("a secret is sealed with key {id}, which this process does not have: give every daemon the same key ({KEY_ENV}, a systemd credential, or the data directory's {KEY_FILE})")]
    UnknownKey { id: String },
    #[error("a sealed secret does not open: it was altered or moved to another account or name")]
    Tampered,
    #[error("a sealed secret is malformed")]
    Malformed,
    #[error("a secret is stored in plain text in a database whose secrets are sealed: passerelle did not write it (planted?) and does not use it; set it again (`passerelle accounts set-secret`)")]
    Unsealed,
}

/// Why an audit entry's tag cannot be checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditTagError {
    #[error("it is not keyed (a plain hash, which anyone who can write the database can make)")]
    Unkeyed,
    #[error("it is keyed with key {0}, which this process does not hold")]
    UnknownKey(String),
}

/// Where the current key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Environment,
    Credential(PathBuf),
    DataDir(PathBuf),
}

struct Key {
    id: String,
    cipher: XChaCha20Poly1305,
    /// The audit trail's MAC key, derived from this key (its own domain: never the
    /// sealing key itself).
    audit: [u8; 32],
}

/// The domain of the audit trail's MAC keys.
const AUDIT_DOMAIN: &[u8] = b"passerelle audit trail v1";
/// How a keyed audit entry's hash begins: `hmac1:<key id>:<hex>`.
const AUDIT_TAG: &str = "hmac1:";

impl Key {
    fn from_bytes(bytes: &[u8; 32]) -> Key {
        use hmac::Mac;
        let mut mac = <hmac::Hmac<Sha256> as Mac>::new_from_slice(bytes).expect("any key length");
        mac.update(AUDIT_DOMAIN);
        Key {
            id: hex::encode(&Sha256::digest(bytes)[..4]),
            cipher: XChaCha20Poly1305::new(bytes.into()),
            audit: mac.finalize().into_bytes().into(),
        }
    }

    fn audit_mac(&self, message: &[u8]) -> hmac::Hmac<Sha256> {
        use hmac::Mac;
        let mut mac =
            <hmac::Hmac<Sha256> as Mac>::new_from_slice(&self.audit).expect("any key length");
        mac.update(message);
        mac
    }

    fn from_hex(text: &str, what: &str) -> anyhow::Result<Key> {
        let bytes = hex::decode(text.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| anyhow::anyhow!("{what}: a secrets key is 64 hex digits (32 bytes)"))?;
        Ok(Key::from_bytes(&bytes))
    }

    fn generate() -> ([u8; 32], Key) {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        (bytes, Key::from_bytes(&bytes))
    }
}

/// The key that seals, and the keys that still open.
pub struct Keyring {
    current: Key,
    previous: Vec<Key>,
    source: KeySource,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Keyring(current {}, {} previous)",
            self.current.id,
            self.previous.len()
        )
    }
}

impl Keyring {
    /// Where the key for `data_dir` would come from, if one is there — without making
    /// one (a restore needs the source's key, not a new one).
    pub fn configured(data_dir: &Path) -> Option<String> {
        if std::env::var_os(KEY_ENV).is_some() {
            return Some(KEY_ENV.into());
        }
        if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
            let path = Path::new(&dir).join(CREDENTIAL);
            if path.exists() {
                return Some(path.display().to_string());
            }
        }
        let path = data_dir.join(KEY_FILE);
        path.exists().then(|| path.display().to_string())
    }

    /// The key file's name in a data directory.
    pub const KEY_FILE: &'static str = KEY_FILE;

    /// The keys for `data_dir` (see the module documentation for the order).
    pub fn load(data_dir: &Path) -> anyhow::Result<Keyring> {
        let mut previous = Vec::new();
        if let Ok(text) = std::env::var(PREVIOUS_ENV) {
            previous.push(Key::from_hex(&text, PREVIOUS_ENV)?);
        }
        if let Ok(text) = std::env::var(KEY_ENV) {
            return Ok(Keyring {
                current: Key::from_hex(&text, KEY_ENV)?,
                previous,
                source: KeySource::Environment,
            });
        }
        if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
            let path = Path::new(&dir).join(CREDENTIAL);
            if path.exists() {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
                return Ok(Keyring {
                    current: Key::from_hex(&text, &path.display().to_string())?,
                    previous,
                    source: KeySource::Credential(path),
                });
            }
        }
        let path = data_dir.join(KEY_FILE);
        let current = match read_private(&path)? {
            Some(text) => Key::from_hex(&text, &path.display().to_string())?,
            None => {
                let (bytes, key) = Key::generate();
                match write_private(&path, &hex::encode(bytes)) {
                    Ok(()) => {
                        tracing::info!(path = %path.display(), key = %key.id, "secrets key generated");
                        key
                    }
                    // Another process of this data directory created it first: use theirs.
                    Err(_) if path.exists() => match read_private(&path)? {
                        Some(text) => Key::from_hex(&text, &path.display().to_string())?,
                        None => anyhow::bail!("{} vanished while being created", path.display()),
                    },
                    Err(e) => return Err(e),
                }
            }
        };
        for extra in [PREVIOUS_FILE, NEW_FILE] {
            let p = data_dir.join(extra);
            if let Some(text) = read_private(&p)? {
                previous.push(Key::from_hex(&text, &p.display().to_string())?);
            }
        }
        Ok(Keyring {
            current,
            previous,
            source: KeySource::DataDir(path),
        })
    }

    /// The audit trail's tag of `message` under the current key: `hmac1:<key id>:<hex>`.
    /// Only a holder of the key (kept outside the database) can make one, so a database
    /// writer cannot rewrite an entry and its chain.
    pub fn audit_tag(&self, message: &[u8]) -> String {
        use hmac::Mac;
        let tag = self.current.audit_mac(message).finalize().into_bytes();
        format!("{AUDIT_TAG}{}:{}", self.current.id, hex::encode(tag))
    }

    /// Whether `tag` is `message`'s audit tag under one of the keys held: `Ok(true)` or
    /// `Ok(false)`; an error when the tag is unkeyed (a plain hash) or names a key this
    /// keyring does not hold.
    pub fn check_audit_tag(&self, tag: &str, message: &[u8]) -> Result<bool, AuditTagError> {
        use hmac::Mac;
        let rest = tag.strip_prefix(AUDIT_TAG).ok_or(AuditTagError::Unkeyed)?;
        let (id, hex_tag) = rest.split_once(':').ok_or(AuditTagError::Unkeyed)?;
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
            .ok_or_else(|| AuditTagError::UnknownKey(id.to_string()))?;
        let Ok(bytes) = hex::decode(hex_tag) else {
            return Ok(false);
        };
        // Constant time, by the MAC's own comparison.
        Ok(key.audit_mac(message).verify_slice(&bytes).is_ok())
    }

    /// A keyring of one fresh key (tests and tools that need no persistence).
    pub fn ephemeral() -> Keyring {
        Keyring {
            current: Key::generate().1,
            previous: Vec::new(),
            source: KeySource::Environment,
        }
    }

    pub fn source(&self) -> &KeySource {
        &self.source
    }

    /// The current key's id.
    pub fn key_id(&self) -> &str {
        &self.current.id
    }

    /// `value` sealed under the current key, bound to `account` and `name`.
    pub fn seal(&self, account: &str, name: &str, value: &str) -> String {
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut nonce);
        let aad = binding(account, name);
        let sealed = self
            .current
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: value.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .expect("sealing a short value cannot fail");
        let mut blob = nonce.to_vec();
        blob.extend(sealed);
        format!("{PREFIX}{}:{}", self.current.id, STANDARD.encode(blob))
    }

    /// The value of a sealed secret; a plain one is refused ([`SealError::Unsealed`]).
    pub fn open(&self, account: &str, name: &str, stored: &str) -> Result<String, SealError> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Err(SealError::Unsealed);
        };
        let (id, blob) = rest.split_once(':').ok_or(SealError::Malformed)?;
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
            .ok_or_else(|| SealError::UnknownKey { id: id.to_string() })?;
        let blob = STANDARD.decode(blob).map_err(|_| SealError::Malformed)?;
        if blob.len() < 24 {
            return Err(SealError::Malformed);
        }
        let (nonce, sealed) = blob.split_at(24);
        let aad = binding(account, name);
        let plain = key
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| SealError::Tampered)?;
        String::from_utf8(plain).map_err(|_| SealError::Malformed)
    }

    /// The value of a stored secret, sealed or plain: only for sealing a database's
    /// secrets the first time (they were plain before sealing existed).
    pub fn open_legacy(
        &self,
        account: &str,
        name: &str,
        stored: &str,
    ) -> Result<String, SealError> {
        if self.is_sealed(stored) {
            self.open(account, name, stored)
        } else {
            Ok(stored.to_string())
        }
    }

    /// Whether `stored` is sealed (under any key).
    pub fn is_sealed(&self, stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }

    /// Whether `stored` is sealed under the current key.
    pub fn is_current(&self, stored: &str) -> bool {
        stored
            .strip_prefix(PREFIX)
            .and_then(|r| r.split_once(':'))
            .is_some_and(|(id, _)| id == self.current.id)
    }

    /// For a rotation from the data directory's key: a new key written to
    /// `secrets.key.new` and a keyring sealing with it (the old one still opens).
    pub fn start_rotation(&self) -> anyhow::Result<Keyring> {
        let KeySource::DataDir(path) = &self.source else {
            anyhow::bail!("the key is not the data directory's");
        };
        let new_path = path.with_file_name(NEW_FILE);
        let (bytes, key) = Key::generate();
        write_private(&new_path, &hex::encode(bytes))?;
        let old = Key {
            id: self.current.id.clone(),
            cipher: self.current.cipher.clone(),
            audit: self.current.audit,
        };
        Ok(Keyring {
            current: key,
            previous: vec![old],
            source: self.source.clone(),
        })
    }

    /// After every secret is sealed under the new key: the new key becomes
    /// `secrets.key`, the old one `secrets.key.previous` (delete it once no backup
    /// sealed with it matters).
    pub fn finish_rotation(&self) -> anyhow::Result<()> {
        let KeySource::DataDir(path) = &self.source else {
            anyhow::bail!("the key is not the data directory's");
        };
        let rename = |from: &Path, to: &Path| {
            std::fs::rename(from, to).map_err(|e| {
                anyhow::anyhow!("renaming {} to {}: {e}", from.display(), to.display())
            })
        };
        rename(path, &path.with_file_name(PREVIOUS_FILE))?;
        rename(&path.with_file_name(NEW_FILE), path)
    }
}

/// What a sealed value is bound to.
fn binding(account: &str, name: &str) -> String {
    format!("passerelle secret\0{account}\0{name}")
}

/// A key file's text (owner-only, not a link), if there is one.
fn read_private(path: &Path) -> anyhow::Result<Option<String>> {
    crate::private_file::read(
        path,
        "the secrets key",
        "and keep it: without it the sealed secrets cannot be opened",
    )
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    crate::private_file::create(path, text)
}

#[cfg(test)]
mod tests {
    use crate::sealed::*;

    #[test]
    fn sealed_values_open_only_where_they_were_sealed() {
        let k = Keyring::ephemeral();
        let sealed = k.seal("acc", "api-token", "tok-123456789");
        assert!(sealed.starts_with("sealed1:"));
        assert!(!sealed.contains("tok-123456789"));
        assert_eq!(
            k.open("acc", "api-token", &sealed).unwrap(),
            "tok-123456789"
        );
        assert!(matches!(
            k.open("other", "api-token", &sealed),
            Err(SealError::Tampered)
        ));
        assert!(matches!(
            k.open("acc", "x", &sealed),
            Err(SealError::Tampered)
        ));
        let mut altered = sealed.clone();
        altered.pop();
        altered.push('A');
        assert!(k.open("acc", "api-token", &altered).is_err());
        assert!(matches!(
            Keyring::ephemeral().open("acc", "api-token", &sealed),
            Err(SealError::UnknownKey { .. })
        ));
        // Plain values open only for the first sealing.
        assert!(matches!(
            k.open("acc", "n", "legacy"),
            Err(SealError::Unsealed)
        ));
        assert_eq!(k.open_legacy("acc", "n", "legacy").unwrap(), "legacy");
        assert!(k.is_current(&sealed) && !k.is_current("legacy"));
    }

    #[test]
    fn the_data_dir_key_is_created_private_and_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let k = Keyring::load(dir.path()).unwrap();
        let sealed = k.seal("a", "n", "v-0123456789");
        let again = Keyring::load(dir.path()).unwrap();
        assert_eq!(again.key_id(), k.key_id());
        let next = k.start_rotation().unwrap();
        assert_ne!(next.key_id(), k.key_id());
        assert_eq!(next.open("a", "n", &sealed).unwrap(), "v-0123456789");
        // Interrupted here: a new process opens both.
        let mid = Keyring::load(dir.path()).unwrap();
        assert_eq!(mid.key_id(), k.key_id());
        assert_eq!(mid.open("a", "n", &next.seal("a", "n", "w")).unwrap(), "w");
        next.finish_rotation().unwrap();
        let after = Keyring::load(dir.path()).unwrap();
        assert_eq!(after.key_id(), next.key_id());
        assert_eq!(after.open("a", "n", &sealed).unwrap(), "v-0123456789");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let key = dir.path().join(KEY_FILE);
            assert_eq!(
                std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
                0o600
            );
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
            let err = format!("{:#}", Keyring::load(dir.path()).unwrap_err());
            assert!(err.contains("readable by other users"), "{err}");
        }
    }
}
