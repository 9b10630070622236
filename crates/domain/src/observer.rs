//! `Observer`: what the domain tells the server about the events it records, for metrics.
//!
//! The domain reports from the one place every append passes (`Domain::commit` and
//! `Domain::append`), after the store accepted it, so a new way to start or end sessions is
//! counted without anyone remembering to count it. Reports are per process: each replica
//! reports the events it appended itself, so summing replicas counts every event once.

use eventstore::StoredEvent;

use crate::aggregate::{Aggregate, decode};
use crate::session::{Session, SessionEvent, TerminationReason};

/// Receives the domain's reports; every method defaults to doing nothing.
pub trait Observer: Send + Sync {
    /// A session began (`session.created` was recorded).
    fn session_started(&self) {}

    /// A session ended for `reason` (`session.terminated` was recorded).
    fn session_ended(&self, reason: TerminationReason) {
        let _ = reason;
    }
}

/// Reports what `stored` (events just appended) means to `observer`.
pub(crate) fn report(observer: &dyn Observer, stored: &[StoredEvent]) {
    for event in stored {
        if event.aggregate.aggregate_type != Session::TYPE {
            continue;
        }
        // A stored event this binary just wrote always decodes; were it not to, a metric is
        // not worth failing a committed command for.
        match decode::<SessionEvent>(event) {
            Ok(SessionEvent::Created(_)) => observer.session_started(),
            Ok(SessionEvent::Terminated(ended)) => observer.session_ended(ended.reason),
            Err(error) => tracing::warn!(%error, "could not report a session event to metrics"),
        }
    }
}
