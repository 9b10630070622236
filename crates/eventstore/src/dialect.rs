//! The few places where SQLite and PostgreSQL need different SQL.

/// SQL fragments that differ between the back ends; everything else in `sql_core.rs` is shared.
pub(crate) struct Dialect {
    /// Starts a transaction that will write (SQLite must take its write lock up front, or
    /// two writers each holding a read lock cannot both upgrade).
    pub begin_write: &'static str,
    /// An expression for the number of the current appending transaction.
    pub next_tx: &'static str,
    /// An expression: no event below this transaction number can still appear.
    pub horizon: &'static str,
    /// Whether every committed event is visible at once (positions assigned in commit order),
    /// so that asking is never needed.
    pub visible_at_commit: bool,
    /// A subquery yielding the strings of the JSON array bound at the given parameter number.
    pub json_text_list: fn(usize) -> String,
    /// Parameter 9 (an event's payload) as the payload column expects it.
    pub json_param_9: &'static str,
    /// The database's current time, for bookkeeping columns.
    pub now: &'static str,
    /// Run inside an appending transaction to wake other processes once it commits.
    pub notify: Option<&'static str>,
    /// Selects whether this transaction got a projection's lock for an instance ($1, $2).
    pub try_lock_projection: Option<&'static str>,
    /// Whether a driver error code means "another connection holds the write lock".
    pub is_busy: fn(&str) -> bool,
    /// Serializes projection installs between processes.
    pub lock_installs: Option<&'static str>,
}
