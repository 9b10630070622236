//! Password hashing with argon2id. Deliberately slow: callers run these through
//! [`on_hashing_thread`], never on the async executor.

use std::sync::LazyLock;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use tokio::sync::Semaphore;

/// At most one hash per core at a time. Each argon2id hash holds ~19 MiB while it runs, so a
/// burst of sign-ins would otherwise take memory in proportion to the burst (64 at once took
/// 1.2 GiB); beyond the cores, running them together gains no speed either.
static HASHING: LazyLock<Semaphore> = LazyLock::new(|| {
    Semaphore::new(std::thread::available_parallelism().map_or(2, |cores| cores.get()))
});

/// Runs `work` (a hash or a verification) on a blocking thread once a hashing slot is free.
pub async fn on_hashing_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    let _slot = HASHING
        .acquire()
        .await
        .expect("the hashing semaphore is never closed");
    tokio::task::spawn_blocking(work).await
}

/// Fewer characters than this are refused.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// More bytes than this are refused, so a huge input cannot make hashing expensive.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Why a password could not be hashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Too short.
    #[error("the password needs at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    /// Too long.
    #[error("the password may have at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    /// The hasher failed (out of memory, no randomness).
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// Hashes a password with argon2id (default parameters) and a random salt, in PHC format.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|error| PasswordError::Hashing(error.to_string()))
}

/// Whether `password` matches a stored PHC hash; a malformed hash never matches.
pub fn verify_password(hash: &str, password: &str) -> bool {
    password.len() <= MAX_PASSWORD_BYTES
        && Argon2::default()
            .verify_password(password.as_bytes(), hash)
            .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_salted() {
        let first = hash_password("correct horse").unwrap();
        let second = hash_password("correct horse").unwrap();
        assert!(first.starts_with("$argon2id$"));
        assert_ne!(first, second, "each hash has its own salt");
        assert!(verify_password(&first, "correct horse"));
        assert!(!verify_password(&first, "correct horsf"));
        assert!(!verify_password("not a phc string", "correct horse"));
    }

    #[test]
    fn lengths_are_bounded() {
        assert_eq!(hash_password("short"), Err(PasswordError::TooShort));
        assert_eq!(
            hash_password(&"x".repeat(MAX_PASSWORD_BYTES + 1)),
            Err(PasswordError::TooLong)
        );
    }
}
