//! What can go wrong in the event store.

use crate::event::{AggregateRef, Position};

/// A boxed error raised by a projection's own code.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An event store failure. The variants say whose fault it is: a caller that lost a race
/// (`Conflict`), stored data this binary cannot read (`CorruptEvent`, `SchemaNewer`), or the
/// database itself.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or opened.
    #[error("cannot connect to the {backend} database at {target}: {source}")]
    Connect {
        /// `sqlite` or `postgres`.
        backend: &'static str,
        /// The file or URL, with any password removed.
        target: String,
        /// The driver's error.
        source: BoxError,
    },
    /// The database holds a schema version this binary does not know.
    #[error(
        "the database schema is newer than this binary: migration {version} is applied but unknown here; \
         run the Portcullis version that wrote it (nothing was changed)"
    )]
    SchemaNewer {
        /// The unknown migration's version.
        version: i64,
    },
    /// A migration failed or an applied migration was altered.
    #[error("database migration failed: {0}")]
    Migrate(String),
    /// Another writer appended to the aggregate first.
    #[error(
        "{aggregate} was changed concurrently (expected sequence {expected}, found {actual}); reload it and try again"
    )]
    Conflict {
        /// The aggregate both writers appended to.
        aggregate: AggregateRef,
        /// The sequence the losing command expected.
        expected: i64,
        /// The sequence actually stored.
        actual: i64,
    },
    /// The append request itself is malformed.
    #[error("invalid append: {0}")]
    InvalidAppend(String),
    /// A stored event cannot be read by this binary.
    #[error("stored event {aggregate} #{sequence} at {position} is unreadable: {reason}")]
    CorruptEvent {
        /// The event's aggregate.
        aggregate: AggregateRef,
        /// The event's sequence.
        sequence: i64,
        /// The event's position.
        position: Position,
        /// What is wrong with it.
        reason: String,
    },
    /// A projection was run before it was installed.
    #[error("projection {0} is not installed; install it before running it")]
    NotInstalled(String),
    /// A projection's own code rejected an event; its progress did not advance.
    #[error("projection {projection} failed on {event_type} of {aggregate} #{sequence}: {source}")]
    Projection {
        /// The projection's name.
        projection: String,
        /// The event's aggregate (boxed to keep every `Result` of this crate small).
        aggregate: Box<AggregateRef>,
        /// The event's sequence.
        sequence: i64,
        /// The event's type.
        event_type: String,
        /// The projection's error.
        source: BoxError,
    },
    /// A read-model value had an unexpected type.
    #[error("read model column {column}: {reason}")]
    Column {
        /// The column's index.
        column: usize,
        /// What was expected.
        reason: String,
    },
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// An error of the embedded SQLite database.
    #[error("SQLite error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The transaction that carried this write did not commit (for example the disk is full
    /// or failed): nothing of it was saved, and neither was anything of the commands that
    /// shared its group commit.
    #[error(
        "the write was not saved: committing its transaction failed ({0}); nothing of it is on disk. \
         Check the database's disk (space, permissions, errors) and try again"
    )]
    CommitFailed(String),
    /// The SQLite writer thread is gone (the store is shutting down or the thread panicked).
    #[error("the SQLite writer has stopped; restart the server")]
    WriterStopped,
}

impl StoreError {
    /// Whether `applied` (the newest migration the database ran) is the newest `migrator`
    /// knows: older is an unfinished migration, newer a schema this binary cannot read.
    pub(crate) fn check_schema(
        migrator: &sqlx::migrate::Migrator,
        applied: Option<i64>,
    ) -> Result<(), StoreError> {
        let expected = migrator
            .iter()
            .map(|migration| migration.version)
            .max()
            .unwrap_or(0);
        match applied {
            Some(version) if version == expected => Ok(()),
            Some(version) if version > expected => Err(StoreError::SchemaNewer { version }),
            _ => Err(StoreError::Migrate(format!(
                "migrations are not applied up to version {expected}"
            ))),
        }
    }

    /// Maps a sqlx migration error, singling out a schema newer than this binary.
    pub(crate) fn from_migrate(error: sqlx::migrate::MigrateError) -> Self {
        match error {
            sqlx::migrate::MigrateError::VersionMissing(version) => {
                StoreError::SchemaNewer { version }
            }
            other => StoreError::Migrate(other.to_string()),
        }
    }
}
