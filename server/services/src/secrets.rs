//! Provider keys encrypted at rest: XChaCha20-Poly1305 under a master key, with associated data
//! that binds each ciphertext to its user, provider, label and master-key version (a ciphertext
//! copied to another row does not decrypt).
//!
//! The master key comes from `ASYNC_CODER_MASTER_KEY` (`v<version>:<base64 of 32 bytes>`) or from
//! the key file in the data folder, created with mode 0600 on first start.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretBox, SecretString};

use crate::Error;

pub const MASTER_KEY_VARIABLE: &str = "ASYNC_CODER_MASTER_KEY";
/// The setting (`server_settings`) that holds the check of the master key the database's
/// provider keys are encrypted with: every instance of one database must hold that key.
pub const MASTER_KEY_CHECK: &str = "master_key_check";
pub const MASTER_KEY_FILE: &str = "master.key";
const NONCE_LENGTH: usize = 24;

/// The key that encrypts every provider key. Never logged (its `Debug` shows only the version).
pub struct MasterKey {
    version: u32,
    key: SecretBox<[u8; 32]>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "MasterKey(v{})", self.version)
    }
}

impl MasterKey {
    pub fn generate(version: u32) -> Result<Self, Error> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)
            .map_err(|error| Error::Internal(format!("no randomness: {error}")))?;
        Ok(Self {
            version,
            key: SecretBox::new(Box::new(key)),
        })
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    /// `v<version>:<base64>`, the form of the environment variable and the key file.
    pub fn encode(&self) -> SecretString {
        SecretString::from(format!(
            "v{}:{}",
            self.version,
            STANDARD.encode(self.key.expose_secret())
        ))
    }

    pub fn decode(text: &str) -> Result<Self, Error> {
        let invalid = || {
            Error::Internal(
                "the master key is not of the form v<number>:<base64 of 32 bytes>".into(),
            )
        };
        let (version, encoded) = text.trim().split_once(':').ok_or_else(invalid)?;
        let version: u32 = version
            .strip_prefix('v')
            .and_then(|number| number.parse().ok())
            .ok_or_else(invalid)?;
        let bytes = STANDARD.decode(encoded).map_err(|_| invalid())?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| invalid())?;
        Ok(Self {
            version,
            key: SecretBox::new(Box::new(key)),
        })
    }

    /// From the environment variable if set, else from `<data folder>/master.key`, which is
    /// created (mode 0600) when missing.
    pub fn load_or_create(data_directory: &Path) -> Result<Self, Error> {
        Self::load_or_create_at(&data_directory.join(MASTER_KEY_FILE))
    }

    /// The configured key, without creating one: the environment variable, else the key file
    /// at `path` if it exists.
    pub fn load(path: &Path) -> Result<Option<Self>, Error> {
        if let Ok(text) = std::env::var(MASTER_KEY_VARIABLE) {
            return Self::decode(&text).map(Some);
        }
        match std::fs::read_to_string(path) {
            Ok(text) => Self::decode(&text).map(Some),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(Error::Internal(format!(
                "cannot read {}: {error}",
                path.display()
            ))),
        }
    }

    /// From the environment variable if set, else from the key file at `path`, created (mode
    /// 0600) when missing.
    pub fn load_or_create_at(path: &Path) -> Result<Self, Error> {
        if let Ok(text) = std::env::var(MASTER_KEY_VARIABLE) {
            return Self::decode(&text);
        }
        let path = path.to_path_buf();
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::decode(&text),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate(1)?;
                key.write_to(&path)?;
                tracing::info!(path = %path.display(), "created a new master key file");
                Ok(key)
            }
            Err(error) => Err(Error::Internal(format!(
                "cannot read {}: {error}",
                path.display()
            ))),
        }
    }

    /// Writes the key file with mode 0600 (replacing any older one).
    pub fn write_to(&self, path: &Path) -> Result<(), Error> {
        use std::io::Write;
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).map_err(|error| {
                Error::Internal(format!("cannot create {}: {error}", folder.display()))
            })?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(|error| {
            Error::Internal(format!("cannot write {}: {error}", path.display()))
        })?;
        file.write_all(self.encode().expose_secret().as_bytes())
            .map_err(|error| Error::Internal(format!("cannot write {}: {error}", path.display())))
    }

    /// A fingerprint of the key for the database (`v<version>:<hex>`): SHA-256 of the key and a
    /// fixed label. It tells whether two instances hold the same key; it reveals nothing of it.
    pub fn check(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut digest = Sha256::new();
        digest.update(self.key.expose_secret());
        digest.update(b"async-coder master key check v1");
        let hex: String = digest
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        format!("v{}:{hex}", self.version)
    }

    /// A fresh random key with the next version number.
    pub fn successor(&self) -> Result<Self, Error> {
        Self::generate(self.version + 1)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.key.expose_secret().into())
    }

    /// Nonce followed by ciphertext.
    pub fn encrypt(&self, plaintext: &SecretString, associated: &str) -> Result<Vec<u8>, Error> {
        let mut nonce = [0u8; NONCE_LENGTH];
        getrandom::fill(&mut nonce)
            .map_err(|error| Error::Internal(format!("no randomness: {error}")))?;
        let associated = self.associated_data(associated);
        let ciphertext = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.expose_secret().as_bytes(),
                    aad: associated.as_bytes(),
                },
            )
            .map_err(|_| Error::Internal("encryption failed".into()))?;
        let mut stored = nonce.to_vec();
        stored.extend_from_slice(&ciphertext);
        Ok(stored)
    }

    pub fn decrypt(&self, stored: &[u8], associated: &str) -> Result<SecretString, Error> {
        if stored.len() <= NONCE_LENGTH {
            return Err(Error::Internal("stored key too short".into()));
        }
        let (nonce, ciphertext) = stored.split_at(NONCE_LENGTH);
        let associated = self.associated_data(associated);
        let plaintext = self
            .cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: associated.as_bytes(),
                },
            )
            .map_err(|_| {
                Error::Internal("a stored key does not decrypt with this master key".into())
            })?;
        String::from_utf8(plaintext)
            .map(SecretString::from)
            .map_err(|_| Error::Internal("a stored key is not text".into()))
    }

    fn associated_data(&self, binding: &str) -> String {
        format!(
            "async-coder provider key|{binding}|master v{}",
            self.version
        )
    }
}

/// Why a master key may not serve a database.
#[derive(Debug, thiserror::Error)]
pub enum KeyRefusal {
    #[error(
        "the master key does not match the one this database's provider keys are encrypted with \
         (its check is {expected}, this key's is {found}). Start every instance of one database \
         with the same key: set ASYNC_CODER_MASTER_KEY, or --master-key-file, to the other \
         instances' key. Nothing was changed."
    )]
    Mismatch { expected: String, found: String },
    #[error(
        "no master key is configured, but this database holds provider keys encrypted with one. \
         Give this instance the other instances' key (ASYNC_CODER_MASTER_KEY or \
         --master-key-file); no new key was made. Nothing was changed."
    )]
    Missing,
    #[error(
        "the master key does not decrypt the provider keys stored in this database. Start with \
         the key they were saved with (ASYNC_CODER_MASTER_KEY or --master-key-file). Nothing was \
         changed."
    )]
    DoesNotDecrypt,
    #[error("checking the master key failed: {0}")]
    Database(#[from] db::Error),
}

/// Whether the database holds keys made under a master key (a check, or encrypted keys).
pub async fn database_has_a_key(database: &db::Database) -> Result<bool, KeyRefusal> {
    Ok(database.server_setting(MASTER_KEY_CHECK).await?.is_some()
        || database.any_encrypted_credential().await?.is_some())
}

/// The master key of this instance, checked against the database's: the configured key (the
/// environment variable or the key file at `key_file`); when none is configured, a new key file
/// is made only for a database that holds no encrypted key yet.
pub async fn master_key_for(
    database: &db::Database,
    key_file: &Path,
) -> Result<MasterKey, StartupError> {
    let key = match MasterKey::load(key_file)? {
        Some(key) => key,
        None if database_has_a_key(database).await? => return Err(KeyRefusal::Missing.into()),
        None => MasterKey::load_or_create_at(key_file)?,
    };
    verify_master_key(database, &key).await?;
    Ok(key)
}

/// What stops a start: a refused key, or an unreadable key file.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Refused(#[from] KeyRefusal),
    #[error(transparent)]
    Key(#[from] Error),
}

/// Compares `key` with the database's check: none yet (a fresh database, or one from before
/// the check existed) is written, after decrypting a stored key if there is one; the same is
/// accepted; another is refused, and nothing is written.
pub async fn verify_master_key(database: &db::Database, key: &MasterKey) -> Result<(), KeyRefusal> {
    let check = key.check();
    match database.server_setting(MASTER_KEY_CHECK).await? {
        Some(expected) if expected == check => return Ok(()),
        Some(expected) => {
            return Err(KeyRefusal::Mismatch {
                expected,
                found: check,
            });
        }
        None => {}
    }
    if let Some(credential) = database.any_encrypted_credential().await?
        && let Some(stored) = &credential.encrypted_key
    {
        let binding = crate::providers::binding_of(
            credential.user_id,
            credential.provider,
            &credential.label,
        );
        if key.decrypt(stored, &binding).is_err() {
            return Err(KeyRefusal::DoesNotDecrypt);
        }
    }
    if !database
        .insert_server_setting_if_missing(MASTER_KEY_CHECK, &check, chrono::Utc::now())
        .await?
    {
        // Another instance wrote its check first: it must be this one's.
        return Box::pin(verify_master_key(database, key)).await;
    }
    Ok(())
}

impl crate::Services {
    /// Whether this instance's master key is still the database's (another instance may have
    /// rotated it: then this one can decrypt no stored key until it restarts with the new one).
    pub async fn master_key_is_current(&self) -> Result<bool, Error> {
        Ok(
            match self.database.server_setting(MASTER_KEY_CHECK).await? {
                Some(expected) => expected == self.master_key.check(),
                None => true,
            },
        )
    }
}

/// What [`rotate`] did.
#[derive(Debug)]
pub struct Rotation {
    pub old_version: u32,
    pub new_version: u32,
    pub keys_reencrypted: usize,
    /// Set when the master key came from the environment: the operator must put this value in
    /// `ASYNC_CODER_MASTER_KEY` before the next start. `None` when the key file was replaced.
    pub new_environment_value: Option<SecretString>,
}

/// Rotates the master key: a new random key with the next version re-encrypts every stored
/// provider key in one transaction. With a key file, the new key is first written to
/// `master.key.next` (0600), the database is updated, then the file replaces `master.key`; if the
/// process stops in between, `master.key.next` holds the key that matches the database.
pub async fn rotate(database: &db::Database, key_file: &Path) -> Result<Rotation, Error> {
    let from_environment = std::env::var(MASTER_KEY_VARIABLE).is_ok();
    let old = MasterKey::load(key_file)?.ok_or_else(|| {
        Error::Invalid(format!(
            "no master key to rotate: set {MASTER_KEY_VARIABLE} or the key file {}",
            key_file.display()
        ))
    })?;
    verify_master_key(database, &old)
        .await
        .map_err(|refusal| Error::Invalid(refusal.to_string()))?;
    let new = old.successor()?;
    let key_file = key_file.to_path_buf();
    let mut next_name = key_file.as_os_str().to_owned();
    next_name.push(".next");
    let next_file = std::path::PathBuf::from(next_name);
    if !from_environment {
        new.write_to(&next_file)?;
    }
    let keys_reencrypted = match crate::providers::rotate_master_key(database, &old, &new).await {
        Ok(count) => count,
        Err(error) => {
            if !from_environment && let Err(removal) = std::fs::remove_file(&next_file) {
                tracing::warn!(%removal, path = %next_file.display(), "cannot remove the unused key file");
            }
            return Err(error);
        }
    };
    if !from_environment {
        std::fs::rename(&next_file, &key_file).map_err(|error| {
            Error::Internal(format!(
                "the database now uses the key in {}, but it could not replace {}: {error}",
                next_file.display(),
                key_file.display()
            ))
        })?;
    }
    Ok(Rotation {
        old_version: old.version(),
        new_version: new.version(),
        keys_reencrypted,
        new_environment_value: from_environment.then(|| new.encode()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_only_with_the_same_binding_and_master_key() {
        let master = MasterKey::generate(1).unwrap();
        let secret = SecretString::from("sk-test-1234567890".to_owned());
        let stored = master.encrypt(&secret, "user-a|openai|default").unwrap();
        assert!(!String::from_utf8_lossy(&stored).contains("sk-test"));
        assert_eq!(
            master
                .decrypt(&stored, "user-a|openai|default")
                .unwrap()
                .expose_secret(),
            "sk-test-1234567890"
        );
        assert!(
            master.decrypt(&stored, "user-b|openai|default").is_err(),
            "bound to the user"
        );
        assert!(
            master.decrypt(&stored, "user-a|anthropic|default").is_err(),
            "bound to the provider"
        );
        let other = MasterKey::generate(1).unwrap();
        assert!(other.decrypt(&stored, "user-a|openai|default").is_err());
        let reencoded = MasterKey::decode(master.encode().expose_secret()).unwrap();
        assert_eq!(
            reencoded
                .decrypt(&stored, "user-a|openai|default")
                .unwrap()
                .expose_secret(),
            "sk-test-1234567890"
        );
        let next_version = MasterKey {
            version: 2,
            key: SecretBox::new(Box::new(*master.key.expose_secret())),
        };
        assert!(
            next_version
                .decrypt(&stored, "user-a|openai|default")
                .is_err(),
            "bound to the key version"
        );
        assert!(!format!("{master:?}").contains(&STANDARD.encode(master.key.expose_secret())));
    }

    #[test]
    fn the_key_file_is_created_once_with_mode_0600() {
        let folder = std::env::temp_dir().join(format!("async-coder-key-{}", std::process::id()));
        if folder.exists() {
            std::fs::remove_dir_all(&folder).unwrap();
        }
        let first = MasterKey::load_or_create(&folder).unwrap();
        let second = MasterKey::load_or_create(&folder).unwrap();
        assert_eq!(
            first.encode().expose_secret(),
            second.encode().expose_secret()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(folder.join(MASTER_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&folder).unwrap();
        assert!(MasterKey::decode("v1:not-base64!").is_err());
        assert!(MasterKey::decode("nonsense").is_err());
    }
}
