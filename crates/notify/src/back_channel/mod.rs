//! OpenID Connect Back-Channel Logout 1.0: when a session ends, every application registered
//! in it gets a signed logout token by HTTP POST.
//!
//! A delivery's life is one type, [`lifecycle::DeliveryState`], moved only by
//! [`lifecycle::next`]. The work list is the `back_channel_deliveries` read model (see
//! `domain::session_logout`), reached only through [`DeliveryStore`]: a registration becomes
//! due when its session ends. [`Notifier`] claims due rows (on PostgreSQL one conditional
//! UPDATE, so replicas never work the same row at once), delivers in parallel under a
//! concurrency bound, and records every attempt as an event (`sent`, `failed`, or
//! `retry_scheduled` with backoff). A claim outlives a crash only by its lease, after which the
//! row is due again: a crash between the POST and the record re-sends once, with a fresh `jti`.

mod delivery;
pub mod lifecycle;
mod local_claims;
mod metrics;
mod notifier;
mod redelivery;
mod store;
mod targets;

use std::time::Duration;

pub use delivery::{Outcome, classify};
pub use metrics::{AlertChange, DEFAULT_ALERT_AFTER, Metrics};
pub use notifier::{LogoutSigner, Notifier};
pub use redelivery::{Redeliver, Redelivered, RedeliveryError, Skipped};
pub use store::{AttemptDone, DeliveryStore, DomainDeliveries};
pub use targets::{TargetPolicy, TargetRefused};

/// How the notifier delivers.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Lifetime of a logout token (`exp - iat`).
    pub token_lifetime: Duration,
    /// Time allowed to connect to an application.
    pub connect_timeout: Duration,
    /// Time allowed for a whole delivery attempt.
    pub timeout: Duration,
    /// Attempts before a recoverable failure is given up.
    pub max_attempts: u32,
    /// The first retry delay; each further one doubles, up to `retry_cap`.
    pub retry_base: Duration,
    /// The longest retry delay.
    pub retry_cap: Duration,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// Deliveries in flight to one host at once, so that a slow or dead application cannot
    /// take every slot; further ones wait their turn without counting an attempt.
    pub per_host_concurrency: usize,
    /// Which addresses deliveries may reach.
    pub targets: TargetPolicy,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            token_lifetime: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(2),
            timeout: Duration::from_secs(5),
            max_attempts: 8,
            retry_base: Duration::from_millis(500),
            retry_cap: Duration::from_secs(30),
            concurrency: 64,
            per_host_concurrency: 8,
            targets: TargetPolicy::default(),
        }
    }
}
