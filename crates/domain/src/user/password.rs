//! Password hashing with argon2id. Deliberately slow: callers run these through
//! [`on_hashing_thread`], never on the async executor.

use std::sync::{LazyLock, Mutex, mpsc};

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

type Job = Box<dyn FnOnce() + Send>;

/// A few threads that do nothing but hash, one per core. Each argon2id hash holds ~19 MiB while
/// it runs, so a burst of sign-ins must queue rather than run together (64 at once took
/// 1.2 GiB). Dedicated threads rather than tokio's blocking pool, so that hash buffers only
/// ever touch these threads' malloc arenas (the binary also keeps such large buffers out of
/// the arenas altogether: `server::allocator`).
/// Written here rather than taken from rayon because rayon aborts the process when a job panics.
static HASHING: LazyLock<mpsc::Sender<Job>> = LazyLock::new(|| {
    let (sender, receiver) = mpsc::channel::<Job>();
    let receiver = std::sync::Arc::new(Mutex::new(receiver));
    let threads = std::thread::available_parallelism().map_or(2, |cores| cores.get());
    for index in 0..threads {
        let receiver = receiver.clone();
        std::thread::Builder::new()
            .name(format!("hashing-{index}"))
            .spawn(move || {
                loop {
                    let job = receiver.lock().expect("hashing queue lock").recv();
                    let Ok(job) = job else { return };
                    // A panicking job loses only its own answer (its caller sees
                    // `HashingInterrupted`); the thread goes on with the next.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            })
            .expect("a hashing thread can be started");
    }
    sender
});

/// The hashing thread ran `work` but it panicked, so there is no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the hashing thread stopped before answering")]
pub struct HashingInterrupted;

/// Runs `work` (a hash or a verification) on one of the hashing threads, in arrival order.
pub async fn on_hashing_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, HashingInterrupted> {
    let (answer, answered) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = answer.send(work());
    });
    HASHING.send(job).map_err(|_| HashingInterrupted)?;
    answered.await.map_err(|_| HashingInterrupted)
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

    #[tokio::test]
    async fn hashing_threads_answer_and_survive_a_panic() {
        let panicked = on_hashing_thread(|| -> u32 { panic!("a job that fails") }).await;
        assert_eq!(panicked, Err(HashingInterrupted));
        let jobs: Vec<_> = (0..8u32)
            .map(|n| tokio::spawn(on_hashing_thread(move || n * 2)))
            .collect();
        for (n, job) in (0..8u32).zip(jobs) {
            assert_eq!(job.await.unwrap(), Ok(n * 2));
        }
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
