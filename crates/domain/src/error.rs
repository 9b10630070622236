//! Domain errors: a rejected command, a lost race, or the store failing.

use eventstore::{StoreError, WaitError};

/// Why a domain operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// The command breaks a rule; nothing was written. `field` names the input at fault.
    #[error("{field}: {reason}")]
    Invalid {
        /// The input at fault, as the caller named it.
        field: &'static str,
        /// What is wrong and what to do.
        reason: String,
    },
    /// The command clashes with what exists, and retrying will not change that (a URL
    /// another instance uses, the default instance asked to be removed): HTTP 409.
    #[error("{0}")]
    StateConflict(String),
    /// A presented credential (an initial or registration access token) is unknown, expired,
    /// used up or revoked (RFC 6750 `invalid_token` to the client).
    #[error("{0}")]
    Unauthorized(String),
    /// The thing the command is about does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// Another writer changed the aggregate first; reload and retry.
    #[error(transparent)]
    Conflict(StoreError),
    /// A stored event cannot be understood by this binary.
    #[error("stored {event_type} event of {aggregate} is unreadable: {reason}")]
    UnreadableEvent {
        /// The event's type.
        event_type: String,
        /// The aggregate it belongs to.
        aggregate: String,
        /// Why it cannot be read.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
    /// A code or refresh token cannot be used (`invalid_grant` to the client).
    #[error(transparent)]
    Grant(#[from] crate::grant::GrantRejection),
    /// Read models did not catch up with a write in time.
    #[error(transparent)]
    Wait(#[from] WaitError),
}

impl From<StoreError> for DomainError {
    fn from(error: StoreError) -> Self {
        match error {
            conflict @ StoreError::Conflict { .. } => DomainError::Conflict(conflict),
            other => DomainError::Store(other),
        }
    }
}
