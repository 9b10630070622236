//! Claims held in memory, where this process is alone on its database (SQLite).
//!
//! There no other process can take a delivery, so a claim need not be written: the notifier,
//! woken after the commit that made deliveries due, reads them (a read on its own thread,
//! no commit) and holds them here. The registration and termination events stay the source
//! of truth: a restart forgets these claims, and every delivery still pending is due again.
//! On PostgreSQL claims stay leases in the read model, so that of several replicas exactly
//! one takes each delivery.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use domain::session_logout::DeliveryView;

/// Deliveries this process is working on, until when.
#[derive(Default)]
pub(super) struct LocalClaims {
    held: Mutex<HashMap<String, DateTime<Utc>>>,
}

/// How a delivery is named in the held list: `instance_id || '|' || session_id || '|' ||
/// client_id` in the queries that skip held deliveries. Instance and session ids are UUIDs,
/// so `|` cannot make two keys equal.
fn key(instance_id: &str, session_id: &str, client_id: &str) -> String {
    format!("{instance_id}|{session_id}|{client_id}")
}

impl LocalClaims {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, DateTime<Utc>>> {
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The keys of the claims still running at `now`, as a JSON list for the queries that
    /// must skip them (a crashed attempt's claim runs out like a lease).
    pub(super) fn held(&self, now: DateTime<Utc>) -> String {
        let mut held = self.lock();
        held.retain(|_, until| *until > now);
        serde_json::to_string(&held.keys().collect::<Vec<_>>())
            .expect("a list of strings serializes")
    }

    /// Until when `delivery` is held, if it is.
    pub(super) fn held_until(
        &self,
        instance_id: &str,
        session_id: &str,
        client_id: &str,
    ) -> Option<DateTime<Utc>> {
        self.lock()
            .get(&key(instance_id, session_id, client_id))
            .copied()
    }

    /// When the earliest claim runs out.
    pub(super) fn earliest_expiry(&self) -> Option<DateTime<Utc>> {
        self.lock().values().min().copied()
    }

    /// Holds `deliveries` until `until`.
    pub(super) fn hold(&self, deliveries: &[DeliveryView], until: DateTime<Utc>) {
        let mut held = self.lock();
        for delivery in deliveries {
            held.insert(
                key(
                    &delivery.instance_id,
                    &delivery.session_id,
                    &delivery.client_id,
                ),
                until,
            );
        }
    }

    /// Lets go of one delivery (handed back, rescheduled or settled).
    pub(super) fn release(&self, instance_id: &str, session_id: &str, client_id: &str) {
        self.lock().remove(&key(instance_id, session_id, client_id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(client_id: &str) -> DeliveryView {
        DeliveryView {
            instance_id: "i".into(),
            session_id: "s".into(),
            client_id: client_id.into(),
            uri: "https://rp.example/logout".into(),
            user_id: "u".into(),
            signing_alg: "ES256".into(),
            stage: domain::session_logout::DeliveryStage::Due,
            triggered_at_origin: None,
            registered_at: Utc::now(),
            ended_at: None,
            settled_at: None,
            attempts: 0,
            last_error: None,
            next_attempt_at: DateTime::default(),
            leased_until: DateTime::default(),
        }
    }

    #[test]
    fn claims_run_out_and_are_released() {
        let claims = LocalClaims::default();
        let now = Utc::now();
        claims.hold(
            &[delivery("a"), delivery("b")],
            now + chrono::Duration::seconds(30),
        );
        claims.hold(&[delivery("c")], now + chrono::Duration::seconds(1));
        claims.release("i", "s", "b");
        let held: Vec<String> =
            serde_json::from_str(&claims.held(now + chrono::Duration::seconds(2))).unwrap();
        assert_eq!(held, ["i|s|a"]);
        assert_eq!(
            claims.earliest_expiry(),
            Some(now + chrono::Duration::seconds(30))
        );
    }
}
