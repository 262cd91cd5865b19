//! Password rules and hashing: Argon2id with OWASP's parameters (19 MiB, 2 passes, 1 lane).

use std::collections::HashSet;
use std::sync::LazyLock;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

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

const MEMORY_KIB: u32 = 19 * 1024;

fn parameters() -> Result<Params, Error> {
    Params::new(MEMORY_KIB, 2, 1, None)
        .map_err(|error| Error::Internal(format!("argon2 parameters: {error}")))
}

fn hasher() -> Result<Argon2<'static>, Error> {
    Ok(Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        parameters()?,
    ))
}

/// How long a hash waits for a free slot before the request is answered "busy".
const QUEUE_DEADLINE: Duration = Duration::from_secs(3);

/// Password hashing is the one piece of work anyone may start without an account, and each
/// takes 19 MiB for tens of milliseconds. At most one hash per core runs at once, each in a
/// memory block taken from a pool (so memory is bounded by the cores, never by the callers,
/// and is reused instead of growing the allocator's arenas); the others wait in line for
/// [`QUEUE_DEADLINE`] at most, then get [`Error::Busy`].
struct HashingSlots {
    permits: Semaphore,
    capacity: usize,
    memory: Mutex<Vec<Vec<Block>>>,
    running: AtomicUsize,
    peak: AtomicUsize,
}

static SLOTS: LazyLock<HashingSlots> = LazyLock::new(|| {
    let capacity = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    HashingSlots {
        permits: Semaphore::new(capacity),
        capacity,
        memory: Mutex::new(Vec::new()),
        running: AtomicUsize::new(0),
        peak: AtomicUsize::new(0),
    }
});

/// Runs `work` with a memory block of at least `blocks` blocks on a blocking thread, once a slot
/// is free (waiting `deadline` at most).
async fn with_slot<T: Send + 'static>(
    blocks: usize,
    deadline: Duration,
    work: impl FnOnce(&mut [Block]) -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let slots = &*SLOTS;
    let permit = match tokio::time::timeout(deadline, slots.permits.acquire()).await {
        Ok(Ok(permit)) => permit,
        Ok(Err(closed)) => return Err(Error::Internal(format!("hashing slots: {closed}"))),
        Err(_elapsed) => {
            tracing::warn!("password hashing is at capacity; a request was answered busy");
            return Err(Error::Busy {
                retry_after: chrono::Duration::seconds(2),
            });
        }
    };
    let result = tokio::task::spawn_blocking(move || {
        let mut memory = slots
            .memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
            .unwrap_or_default();
        if memory.len() < blocks {
            memory = vec![Block::default(); blocks];
        }
        let running = slots.running.fetch_add(1, Ordering::SeqCst) + 1;
        slots.peak.fetch_max(running, Ordering::SeqCst);
        let result = work(&mut memory);
        slots.running.fetch_sub(1, Ordering::SeqCst);
        // Only blocks of the standard size go back: an odd stored hash does not keep more.
        if memory.len() == MEMORY_KIB as usize {
            let mut pool = slots
                .memory
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if pool.len() < slots.capacity {
                pool.push(memory);
            }
        }
        result
    })
    .await
    .map_err(|error| Error::Internal(format!("hashing task: {error}")));
    drop(permit);
    result?
}

/// Hashes on a blocking thread (it takes tens of milliseconds by design), within the bound on
/// concurrent hashes.
pub async fn hash(password: SecretString) -> Result<String, Error> {
    let params = parameters()?;
    with_slot(params.block_count(), QUEUE_DEADLINE, move |memory| {
        let salt = SaltString::generate(&mut OsRng);
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt
            .decode_b64(&mut salt_bytes)
            .map_err(|error| Error::Internal(format!("salt: {error}")))?;
        let hasher = hasher()?;
        let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
        hasher
            .hash_password_into_with_memory(
                password.expose_secret().as_bytes(),
                salt_bytes,
                &mut output,
                memory,
            )
            .map_err(|error| Error::Internal(format!("hashing a password: {error}")))?;
        let hash = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params)
                .map_err(|error| Error::Internal(format!("argon2 parameters: {error}")))?,
            salt: Some(salt.as_salt()),
            hash: Some(
                Output::new(&output)
                    .map_err(|error| Error::Internal(format!("hash output: {error}")))?,
            ),
        };
        Ok(hash.to_string())
    })
    .await
}

/// Whether `password` matches `stored` (a PHC string). Takes as long for a wrong password as for
/// a right one; runs within the bound on concurrent hashes.
pub async fn verify(password: SecretString, stored: String) -> Result<bool, Error> {
    let blocks = {
        let parsed = PasswordHash::new(&stored)
            .map_err(|error| Error::Internal(format!("stored hash unreadable: {error}")))?;
        Params::try_from(&parsed)
            .map_err(|error| Error::Internal(format!("stored hash parameters: {error}")))?
            .block_count()
    };
    with_slot(blocks, QUEUE_DEADLINE, move |memory| {
        let parsed = PasswordHash::new(&stored)
            .map_err(|error| Error::Internal(format!("stored hash unreadable: {error}")))?;
        let unreadable = |error: &dyn std::fmt::Display| {
            Error::Internal(format!("stored hash unreadable: {error}"))
        };
        let algorithm =
            Algorithm::try_from(parsed.algorithm).map_err(|error| unreadable(&error))?;
        let version = parsed
            .version
            .map(Version::try_from)
            .transpose()
            .map_err(|error| unreadable(&error))?
            .unwrap_or_default();
        let params = Params::try_from(&parsed).map_err(|error| unreadable(&error))?;
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return Err(Error::Internal("stored hash without salt or hash".into()));
        };
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt
            .decode_b64(&mut salt_bytes)
            .map_err(|error| unreadable(&error))?;
        let mut output = vec![0u8; expected.len()];
        Argon2::new(algorithm, version, params)
            .hash_password_into_with_memory(
                password.expose_secret().as_bytes(),
                salt_bytes,
                &mut output,
                memory,
            )
            .map_err(|error| Error::Internal(format!("verifying a password: {error}")))?;
        // `Output`'s equality is constant-time.
        Ok(Output::new(&output).is_ok_and(|computed| computed == expected))
    })
    .await
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_hashes_are_bounded_by_the_cores_and_the_rest_wait_or_are_refused() {
        let hash = hash(secret("correct horse battery staple")).await.unwrap();
        let verifications: Vec<_> = (0..24)
            .map(|_| tokio::spawn(verify(secret("wrong horse battery staple"), hash.clone())))
            .collect();
        for verification in verifications {
            assert!(!verification.await.unwrap().unwrap());
        }
        let peak = SLOTS.peak.load(Ordering::SeqCst);
        assert!(
            (1..=SLOTS.capacity).contains(&peak),
            "{peak} hashes ran at once with {} slots",
            SLOTS.capacity
        );
        assert!(
            SLOTS.memory.lock().unwrap().len() <= SLOTS.capacity,
            "memory blocks are kept for the slots only"
        );

        // Every slot taken: a hash waits its deadline, then the caller hears "busy".
        let held: Vec<_> =
            futures::future::join_all((0..SLOTS.capacity).map(|_| SLOTS.permits.acquire())).await;
        let refused = with_slot(1, Duration::from_millis(50), |_| Ok(())).await;
        assert!(matches!(refused, Err(Error::Busy { .. })), "{refused:?}");
        drop(held);
        assert!(
            with_slot(1, Duration::from_millis(50), |_| Ok(()))
                .await
                .is_ok()
        );
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
