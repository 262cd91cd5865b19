//! Password rules and hashing: Argon2id with OWASP's parameters (19 MiB, 2 passes, 1 lane).

use std::collections::HashSet;
use std::sync::LazyLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};

use crate::Error;

pub const MINIMUM_LENGTH: usize = 8;
pub const MAXIMUM_LENGTH: usize = 128;

static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../data/common-passwords.txt")
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .collect()
});

/// Checks a new password against the rules; the error says what to change.
pub fn check_policy(password: &SecretString) -> Result<(), Error> {
    let password = password.expose_secret();
    let length = password.chars().count();
    if length < MINIMUM_LENGTH {
        return Err(Error::Invalid(format!(
            "The password must have at least {MINIMUM_LENGTH} characters."
        )));
    }
    if length > MAXIMUM_LENGTH {
        return Err(Error::Invalid(format!(
            "The password must have at most {MAXIMUM_LENGTH} characters."
        )));
    }
    if COMMON_PASSWORDS.contains(password.to_lowercase().as_str()) {
        return Err(Error::Invalid(
            "This password is one of the most common ones and easy to guess. Choose another."
                .into(),
        ));
    }
    Ok(())
}

fn hasher() -> Result<Argon2<'static>, Error> {
    let params = Params::new(19 * 1024, 2, 1, None)
        .map_err(|error| Error::Internal(format!("argon2 parameters: {error}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes on a blocking thread (it takes tens of milliseconds by design).
pub async fn hash(password: SecretString) -> Result<String, Error> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        hasher()?
            .hash_password(password.expose_secret().as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|error| Error::Internal(format!("hashing a password: {error}")))
    })
    .await
    .map_err(|error| Error::Internal(format!("hashing task: {error}")))?
}

/// Whether `password` matches `stored` (a PHC string). Takes as long for a wrong password as for
/// a right one.
pub async fn verify(password: SecretString, stored: String) -> Result<bool, Error> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&stored)
            .map_err(|error| Error::Internal(format!("stored hash unreadable: {error}")))?;
        Ok(hasher()?
            .verify_password(password.expose_secret().as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(|error| Error::Internal(format!("verifying task: {error}")))?
}

/// A hash of a random password, verified against when the email is unknown so that a wrong
/// email takes as long as a wrong password.
pub static DECOY_HASH: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .ok()
        .and_then(|hasher| {
            hasher
                .hash_password(b"decoy password, never valid", &salt)
                .ok()
        })
        .map(|hash| hash.to_string())
        .unwrap_or_default()
});

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> SecretString {
        SecretString::from(text.to_owned())
    }

    #[test]
    fn the_policy_checks_length_and_common_passwords() {
        assert!(check_policy(&secret("short")).is_err());
        assert!(check_policy(&secret(&"x".repeat(129))).is_err());
        let common = check_policy(&secret("Password1")).unwrap_err().to_string();
        assert!(common.contains("most common"), "{common}");
        assert!(check_policy(&secret("qwertyuiop")).is_err());
        assert!(check_policy(&secret("correct horse battery staple 42")).is_ok());
        assert!(check_policy(&secret(&"é".repeat(8))).is_ok());
        assert!(COMMON_PASSWORDS.len() > 10_000);
    }

    #[tokio::test]
    async fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let hash = hash(secret("correct horse battery staple")).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            verify(secret("correct horse battery staple"), hash.clone())
                .await
                .unwrap()
        );
        assert!(
            !verify(secret("wrong horse battery staple"), hash)
                .await
                .unwrap()
        );
        assert!(DECOY_HASH.starts_with("$argon2id$"));
    }
}
