//! One back-channel delivery's lifecycle as a single type and one pure transition function:
//!
//! ```text
//! registered ──session ended──▶ due ──claimed──▶ in flight ──delivered──▶ sent
//!                                ▲                 │  │ └──refused / out of attempts──▶ failed
//!                                │   lease lapsed  │  └──may recover──▶ retry at ──claimed──▶ in flight
//!                                ├─────────────────┘         deferred ─▶ retry at
//!                                └──────── redelivery (from due, retry at, failed)
//! ```
//!
//! Everything else is refused with a reason an admin can read. No I/O and no clock: the
//! time comes in. What is stored is the event history and the read model's stage
//! (`domain::session_logout`); [`DeliveryState::of`] reads a row back into this type, and
//! [`DeliveryState::settled_by`] folds a registration's history, which is how the store
//! checks an event against the state it finds when it appends.

use chrono::{DateTime, Utc};
use domain::session_logout::{DeliveryStage, DeliveryView, Registration, SessionLogoutEvent};

/// Where one delivery stands. `attempts` counts the attempts of the current round (a
/// redelivery starts a new one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryState {
    /// The session is live; nothing to send yet.
    Registered,
    /// To be sent now.
    Due {
        /// Attempts made so far in this round.
        attempts: u32,
    },
    /// Claimed by a notifier, which is attempting it.
    InFlight {
        /// Attempts made before this one.
        attempts: u32,
        /// When the claim runs out (a crashed notifier's work is due again then).
        until: DateTime<Utc>,
    },
    /// Waiting for its next attempt.
    RetryAt {
        /// Attempts made so far in this round.
        attempts: u32,
        /// When it is due again.
        at: DateTime<Utc>,
    },
    /// The application acknowledged.
    Sent {
        /// Attempts it took.
        attempts: u32,
    },
    /// Given up.
    Failed {
        /// Attempts made.
        attempts: u32,
    },
}

/// What happened to a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Its session ended.
    SessionEnded,
    /// A notifier claimed it until `until`.
    Claimed {
        /// When the claim runs out.
        until: DateTime<Utc>,
    },
    /// The notifier handed it back without an attempt (its host is busy); due at `at`.
    Deferred {
        /// When it is due again.
        at: DateTime<Utc>,
    },
    /// The claim ran out without an outcome (the notifier crashed or stalled).
    LeaseLapsed,
    /// An attempt ended.
    Attempted(Verdict),
    /// An admin asked for it to be sent again.
    RedeliveryRequested,
}

/// How an attempt ended, as `delivery::classify` judged it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Acknowledged (200 or 204).
    Delivered,
    /// Refused or forbidden: not retried.
    Refused,
    /// May succeed later.
    Recoverable,
}

/// How retries are spaced and when they stop.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts per round before a recoverable failure is given up.
    pub max_attempts: u32,
    /// The first retry delay; each further one doubles, up to `cap`.
    pub base: std::time::Duration,
    /// The longest retry delay.
    pub cap: std::time::Duration,
}

/// Why a step does not apply to a delivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Redelivery of a delivery that was acknowledged.
    #[error(
        "the delivery was already acknowledged by the application; there is nothing to re-send"
    )]
    AlreadySent,
    /// Redelivery while the session is live.
    #[error("the session is still live; its applications are told when it ends")]
    SessionLive,
    /// Redelivery while an attempt runs.
    #[error("an attempt is running right now; wait for its outcome")]
    InFlight,
    /// A claim before the retry time, or of a settled delivery.
    #[error("the delivery is not due")]
    NotDue,
    /// Any other step that does not fit the state (a bug in the caller).
    #[error("{step} does not apply to a delivery that is {state}")]
    Unexpected {
        /// The step.
        step: &'static str,
        /// The state's name.
        state: &'static str,
    },
}

impl DeliveryState {
    /// The state's name as the admin API shows it.
    pub fn name(&self) -> &'static str {
        match self {
            DeliveryState::Registered => "registered",
            DeliveryState::Due { .. } => "due",
            DeliveryState::InFlight { .. } => "in_flight",
            DeliveryState::RetryAt { .. } => "retry_at",
            DeliveryState::Sent { .. } => "sent",
            DeliveryState::Failed { .. } => "failed",
        }
    }

    /// Whether the delivery is settled (sent or failed).
    pub fn is_settled(&self) -> bool {
        matches!(
            self,
            DeliveryState::Sent { .. } | DeliveryState::Failed { .. }
        )
    }

    /// A stored row read back at `now`; `claimed_until` is a claim held in memory (SQLite),
    /// which the row does not show.
    pub fn of(
        view: &DeliveryView,
        claimed_until: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Self {
        let attempts = view.attempts;
        match view.stage {
            DeliveryStage::Registered => DeliveryState::Registered,
            DeliveryStage::Sent => DeliveryState::Sent { attempts },
            DeliveryStage::Failed => DeliveryState::Failed { attempts },
            DeliveryStage::Due => {
                let until = claimed_until.unwrap_or(view.leased_until);
                if until > now {
                    DeliveryState::InFlight { attempts, until }
                } else if view.next_attempt_at > now {
                    DeliveryState::RetryAt {
                        attempts,
                        at: view.next_attempt_at,
                    }
                } else {
                    DeliveryState::Due { attempts }
                }
            }
        }
    }

    /// Whether a registration's recorded history has settled it (sent or failed since the last
    /// redelivery request). Only the settled/unsettled split is in the history: the session's
    /// end is recorded on the session, the schedule and claims in the read model.
    pub fn settled_by(registration: &Registration) -> bool {
        last_outcome(registration).is_some()
    }

    /// Whether a registration's recorded history says the application acknowledged (and no
    /// redelivery was asked since).
    pub fn sent_by(registration: &Registration) -> bool {
        matches!(
            last_outcome(registration),
            Some(SessionLogoutEvent::Sent(_))
        )
    }
}

/// The `sent` or `failed` that settled the current round, if one did.
fn last_outcome(registration: &Registration) -> Option<&SessionLogoutEvent> {
    registration
        .history
        .iter()
        .rev()
        .find_map(|event| match event {
            SessionLogoutEvent::Sent(_) | SessionLogoutEvent::Failed(_) => Some(Some(event)),
            SessionLogoutEvent::RedeliveryRequested(_) => Some(None),
            SessionLogoutEvent::Registered(_) | SessionLogoutEvent::RetryScheduled(_) => None,
        })
        .flatten()
}

impl Step {
    fn name(&self) -> &'static str {
        match self {
            Step::SessionEnded => "the session's end",
            Step::Claimed { .. } => "a claim",
            Step::Deferred { .. } => "a deferral",
            Step::LeaseLapsed => "a lapsed claim",
            Step::Attempted(_) => "an attempt's outcome",
            Step::RedeliveryRequested => "a redelivery",
        }
    }
}

/// The state after `step`, at `now`; `jitter` (0 to 1) spreads retries of one mass logout.
pub fn next(
    state: &DeliveryState,
    step: &Step,
    now: DateTime<Utc>,
    policy: &RetryPolicy,
    jitter: f64,
) -> Result<DeliveryState, Refused> {
    use DeliveryState as S;
    Ok(match (state, step) {
        (S::Registered, Step::SessionEnded) => S::Due { attempts: 0 },
        (S::Due { attempts }, Step::Claimed { until }) => S::InFlight {
            attempts: *attempts,
            until: *until,
        },
        (S::RetryAt { attempts, at }, Step::Claimed { until }) if *at <= now => S::InFlight {
            attempts: *attempts,
            until: *until,
        },
        (S::RetryAt { .. } | S::Sent { .. } | S::Failed { .. }, Step::Claimed { .. }) => {
            return Err(Refused::NotDue);
        }
        (S::InFlight { attempts, .. }, Step::Deferred { at }) => S::RetryAt {
            attempts: *attempts,
            at: *at,
        },
        (S::InFlight { attempts, until }, Step::LeaseLapsed) if *until <= now => S::Due {
            attempts: *attempts,
        },
        (S::InFlight { attempts, .. }, Step::Attempted(verdict)) => {
            let attempts = attempts + 1;
            match verdict {
                Verdict::Delivered => S::Sent { attempts },
                Verdict::Refused => S::Failed { attempts },
                Verdict::Recoverable if attempts >= policy.max_attempts => S::Failed { attempts },
                Verdict::Recoverable => S::RetryAt {
                    attempts,
                    at: retry_at(now, attempts, policy.base, policy.cap, jitter),
                },
            }
        }
        (S::Due { .. } | S::RetryAt { .. } | S::Failed { .. }, Step::RedeliveryRequested) => {
            S::Due { attempts: 0 }
        }
        (S::Sent { .. }, Step::RedeliveryRequested) => return Err(Refused::AlreadySent),
        (S::Registered, Step::RedeliveryRequested) => return Err(Refused::SessionLive),
        (S::InFlight { .. }, Step::RedeliveryRequested) => return Err(Refused::InFlight),
        (state, step) => {
            return Err(Refused::Unexpected {
                step: step.name(),
                state: state.name(),
            });
        }
    })
}

/// When a delivery attempt may next be made: exponential backoff from `base`, doubled per
/// attempt up to `cap`, with up to 50 % random jitter subtracted so that retries of one mass
/// logout do not arrive in lockstep.
pub fn retry_at(
    now: DateTime<Utc>,
    attempts: u32,
    base: std::time::Duration,
    cap: std::time::Duration,
    jitter: f64,
) -> DateTime<Utc> {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1));
    let delay = base.saturating_mul(factor).min(cap);
    let delay = delay.mul_f64(1.0 - 0.5 * jitter.clamp(0.0, 1.0));
    now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeliveryState as S;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    const POLICY: RetryPolicy = RetryPolicy {
        max_attempts: 3,
        base: std::time::Duration::from_secs(1),
        cap: std::time::Duration::from_secs(4),
    };

    /// Every (state, step) pair that matters, with what must come of it at time 10.
    #[test]
    fn the_lifecycle_as_a_table() {
        let now = at(10);
        let flying = |attempts| S::InFlight {
            attempts,
            until: at(20),
        };
        let table: Vec<(S, Step, Result<S, Refused>)> = vec![
            (
                S::Registered,
                Step::SessionEnded,
                Ok(S::Due { attempts: 0 }),
            ),
            (
                S::Registered,
                Step::Claimed { until: at(20) },
                Err(Refused::Unexpected {
                    step: "a claim",
                    state: "registered",
                }),
            ),
            (
                S::Due { attempts: 0 },
                Step::Claimed { until: at(20) },
                Ok(flying(0)),
            ),
            (
                S::RetryAt {
                    attempts: 1,
                    at: at(5),
                },
                Step::Claimed { until: at(20) },
                Ok(flying(1)),
            ),
            (
                S::RetryAt {
                    attempts: 1,
                    at: at(15),
                },
                Step::Claimed { until: at(20) },
                Err(Refused::NotDue),
            ),
            (
                S::Sent { attempts: 1 },
                Step::Claimed { until: at(20) },
                Err(Refused::NotDue),
            ),
            (
                flying(0),
                Step::Attempted(Verdict::Delivered),
                Ok(S::Sent { attempts: 1 }),
            ),
            (
                flying(1),
                Step::Attempted(Verdict::Refused),
                Ok(S::Failed { attempts: 2 }),
            ),
            (
                flying(0),
                Step::Attempted(Verdict::Recoverable),
                Ok(S::RetryAt {
                    attempts: 1,
                    at: at(11),
                }),
            ),
            (
                flying(1),
                Step::Attempted(Verdict::Recoverable),
                Ok(S::RetryAt {
                    attempts: 2,
                    at: at(12),
                }),
            ),
            (
                flying(2),
                Step::Attempted(Verdict::Recoverable),
                Ok(S::Failed { attempts: 3 }),
            ),
            (
                flying(1),
                Step::Deferred { at: at(11) },
                Ok(S::RetryAt {
                    attempts: 1,
                    at: at(11),
                }),
            ),
            (
                flying(1),
                Step::LeaseLapsed,
                Err(Refused::Unexpected {
                    step: "a lapsed claim",
                    state: "in_flight",
                }),
            ),
            (
                S::InFlight {
                    attempts: 1,
                    until: at(9),
                },
                Step::LeaseLapsed,
                Ok(S::Due { attempts: 1 }),
            ),
            (
                S::Failed { attempts: 8 },
                Step::RedeliveryRequested,
                Ok(S::Due { attempts: 0 }),
            ),
            (
                S::RetryAt {
                    attempts: 2,
                    at: at(30),
                },
                Step::RedeliveryRequested,
                Ok(S::Due { attempts: 0 }),
            ),
            (
                S::Due { attempts: 1 },
                Step::RedeliveryRequested,
                Ok(S::Due { attempts: 0 }),
            ),
            (
                S::Sent { attempts: 1 },
                Step::RedeliveryRequested,
                Err(Refused::AlreadySent),
            ),
            (
                S::Registered,
                Step::RedeliveryRequested,
                Err(Refused::SessionLive),
            ),
            (flying(0), Step::RedeliveryRequested, Err(Refused::InFlight)),
            (
                S::Sent { attempts: 1 },
                Step::Attempted(Verdict::Delivered),
                Err(Refused::Unexpected {
                    step: "an attempt's outcome",
                    state: "sent",
                }),
            ),
            (
                S::Due { attempts: 0 },
                Step::SessionEnded,
                Err(Refused::Unexpected {
                    step: "the session's end",
                    state: "due",
                }),
            ),
        ];
        for (state, step, expected) in table {
            assert_eq!(
                next(&state, &step, now, &POLICY, 0.0),
                expected,
                "{state:?} + {step:?}"
            );
        }
    }

    #[test]
    fn retries_back_off_exponentially_up_to_the_cap() {
        let now = Utc::now();
        let base = std::time::Duration::from_millis(100);
        let cap = std::time::Duration::from_secs(10);
        let delay = |attempts, jitter| {
            (retry_at(now, attempts, base, cap, jitter) - now).num_milliseconds()
        };
        assert_eq!(delay(1, 0.0), 100);
        assert_eq!(delay(2, 0.0), 200);
        assert_eq!(delay(4, 0.0), 800);
        assert_eq!(delay(30, 0.0), 10_000);
        assert_eq!(delay(2, 1.0), 100);
    }

    fn registration(history: Vec<SessionLogoutEvent>) -> Registration {
        Registration {
            registered: domain::session_logout::BackChannelRegistered {
                client_id: "a".into(),
                uri: "https://a.example/logout".into(),
                user_id: "u".into(),
                signing_alg: "ES256".into(),
            },
            history,
        }
    }

    #[test]
    fn the_history_settles_until_a_redelivery_reopens() {
        use domain::session_logout::{
            BackChannelFailed, BackChannelRedeliveryRequested, BackChannelSent,
        };
        let failed = SessionLogoutEvent::Failed(BackChannelFailed {
            client_id: "a".into(),
            attempts: 1,
            reason: "HTTP 400".into(),
            attempt: None,
        });
        let again = SessionLogoutEvent::RedeliveryRequested(BackChannelRedeliveryRequested {
            client_id: "a".into(),
            requested_by: "admin".into(),
            at: at(0),
        });
        let sent = SessionLogoutEvent::Sent(BackChannelSent {
            client_id: "a".into(),
            attempts: 1,
            attempt: None,
        });
        assert!(!DeliveryState::settled_by(&registration(vec![])));
        assert!(DeliveryState::settled_by(&registration(vec![
            failed.clone()
        ])));
        assert!(!DeliveryState::settled_by(&registration(vec![
            failed.clone(),
            again.clone()
        ])));
        assert!(!DeliveryState::sent_by(&registration(vec![failed.clone()])));
        let resent = registration(vec![failed, again, sent]);
        assert!(DeliveryState::settled_by(&resent));
        assert!(DeliveryState::sent_by(&resent));
    }
}
