//! The notifier's metrics, on `prometheus-client`: per application, deliveries sent, attempts
//! retried and deliveries given up; the run of failed attempts and an alert gauge; and the
//! end-to-delivery latency histogram. The server registers them with its registry and serves
//! them at `/metrics`.
//!
//! Cardinality: the per-application series carry one label, `client_id`, and there are five
//! of them per application this process delivered to (`sent`, `retried`, `failed`,
//! `consecutive_failures`, `alert`): 5 × applications. The latency histogram has no label
//! (15 series). A removed application's series stay until the process restarts.
//!
//! Everything here is counted in this process: after a restart the counters start at zero and
//! the runs are forgotten, and each replica counts its own attempts and raises its own alert.
//! Figures that survive restarts and span replicas are the store's (the admin API's
//! back-channel health).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Upper bounds (seconds) of the latency histogram's buckets.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

/// The alert threshold when none is configured.
pub const DEFAULT_ALERT_AFTER: u32 = 5;

/// The one label of per-application series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Application {
    client_id: String,
}

impl Application {
    fn of(client_id: &str) -> Self {
        Application {
            client_id: client_id.to_owned(),
        }
    }
}

/// What an attempt did to an application's alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertChange {
    /// The run of failed attempts reached the threshold: the alert gauge went to 1.
    Raised {
        /// The run's length (the threshold).
        consecutive_failures: u64,
    },
    /// A delivery was acknowledged while the alert stood: the gauge went back to 0.
    Cleared {
        /// How many attempts had failed in a row before it.
        consecutive_failures: u64,
    },
}

/// The notifier's counters, gauges and histogram.
#[derive(Debug)]
pub struct Metrics {
    sent: Family<Application, Counter>,
    retried: Family<Application, Counter>,
    failed: Family<Application, Counter>,
    consecutive_failures: Family<Application, Gauge>,
    alert: Family<Application, Gauge>,
    latency: Histogram,
    alert_after: u64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(DEFAULT_ALERT_AFTER)
    }
}

impl Metrics {
    /// Metrics that raise an application's alert after `alert_after` failed attempts in a row
    /// (at least 1).
    pub fn new(alert_after: u32) -> Self {
        Metrics {
            sent: Family::default(),
            retried: Family::default(),
            failed: Family::default(),
            consecutive_failures: Family::default(),
            alert: Family::default(),
            latency: Histogram::new(BUCKETS),
            alert_after: u64::from(alert_after.max(1)),
        }
    }

    /// Registers every series with `registry` (they stay shared with this value).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "portcullis_back_channel_sent",
            "Logout tokens acknowledged, per application",
            self.sent.clone(),
        );
        registry.register(
            "portcullis_back_channel_retried",
            "Delivery attempts that failed recoverably and were rescheduled, per application",
            self.retried.clone(),
        );
        registry.register(
            "portcullis_back_channel_failed",
            "Deliveries given up (refused, or out of attempts), per application",
            self.failed.clone(),
        );
        registry.register(
            "portcullis_back_channel_consecutive_failures",
            "Delivery attempts to the application that failed in a row, as this process saw them",
            self.consecutive_failures.clone(),
        );
        registry.register(
            "portcullis_back_channel_alert",
            "1 while the application's run of failed attempts has reached \
             back_channel.alert_consecutive_failures, 0 once one succeeds again",
            self.alert.clone(),
        );
        registry.register(
            "portcullis_back_channel_delivery_seconds",
            "Time from the end of a session to an application acknowledging its logout token",
            self.latency.clone(),
        );
    }

    /// A delivery to `client_id` was acknowledged `latency` after its session ended; ends the
    /// application's run of failures.
    pub fn sent(&self, client_id: &str, latency: Duration) -> Option<AlertChange> {
        let application = Application::of(client_id);
        self.sent.get_or_create(&application).inc();
        self.latency.observe(latency.as_secs_f64());
        let run = self.consecutive_failures.get_or_create(&application).set(0);
        // Only the attempt that finds the alert raised clears it (and reports it): a swap. A
        // failure racing this success may raise it again just after; the next success clears
        // it, and the store's run (the admin API) is the exact one.
        let was_raised = self.alert.get_or_create(&application).set(0) == 1;
        was_raised.then(|| AlertChange::Cleared {
            consecutive_failures: u64::try_from(run).unwrap_or(0),
        })
    }

    /// An attempt to `client_id` failed recoverably and was rescheduled.
    pub fn retried(&self, client_id: &str) -> Option<AlertChange> {
        let application = Application::of(client_id);
        self.retried.get_or_create(&application).inc();
        self.attempt_failed(&application)
    }

    /// A delivery to `client_id` was given up.
    pub fn failed(&self, client_id: &str) -> Option<AlertChange> {
        let application = Application::of(client_id);
        self.failed.get_or_create(&application).inc();
        self.attempt_failed(&application)
    }

    /// Lengthens the application's run; raises its alert when the run reaches the threshold.
    fn attempt_failed(&self, application: &Application) -> Option<AlertChange> {
        let run = self.consecutive_failures.get_or_create(application).inc() + 1;
        // The series exists (at 0) from the application's first attempt, so a rule on it sees
        // the application before it ever alerts.
        let alert = self.alert.get_or_create(application);
        // Exactly one attempt makes the run reach the threshold (the increment is atomic), so
        // the alert is raised, and reported, once per run.
        if u64::try_from(run).ok()? != self.alert_after {
            return None;
        }
        alert.set(1);
        Some(AlertChange::Raised {
            consecutive_failures: self.alert_after,
        })
    }

    /// Whether the alert of `client_id` stands.
    pub fn alerting(&self, client_id: &str) -> bool {
        self.alert
            .get(&Application::of(client_id))
            .is_some_and(|gauge| gauge.get() == 1)
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::prometheus_text::encode;

    use super::*;

    fn exposition(metrics: &Metrics) -> String {
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        text
    }

    #[test]
    fn the_exposition_counts_per_application_and_buckets() {
        let metrics = Metrics::default();
        metrics.sent("a", Duration::from_millis(30));
        metrics.sent("b", Duration::from_secs(3));
        metrics.failed("a");
        let text = exposition(&metrics);
        assert!(text.contains("portcullis_back_channel_sent_total{client_id=\"a\"} 1\n"));
        assert!(text.contains("portcullis_back_channel_sent_total{client_id=\"b\"} 1\n"));
        assert!(text.contains("portcullis_back_channel_failed_total{client_id=\"a\"} 1\n"));
        assert!(text.contains("portcullis_back_channel_delivery_seconds_bucket{le=\"0.05\"} 1\n"));
        assert!(text.contains("portcullis_back_channel_delivery_seconds_bucket{le=\"5\"} 2\n"));
        assert!(text.contains("portcullis_back_channel_delivery_seconds_count 2\n"));
    }

    #[test]
    fn the_alert_is_raised_once_at_the_threshold_and_cleared_by_a_success() {
        let metrics = Metrics::new(3);
        assert_eq!(metrics.retried("a"), None);
        assert_eq!(metrics.failed("a"), None);
        assert_eq!(
            metrics.retried("a"),
            Some(AlertChange::Raised {
                consecutive_failures: 3
            })
        );
        assert!(metrics.alerting("a"));
        assert_eq!(metrics.failed("a"), None, "raised once per run");
        assert!(!metrics.alerting("b"));
        assert!(
            exposition(&metrics).contains("portcullis_back_channel_alert{client_id=\"a\"} 1\n")
        );
        assert_eq!(
            metrics.sent("a", Duration::ZERO),
            Some(AlertChange::Cleared {
                consecutive_failures: 4
            })
        );
        assert!(!metrics.alerting("a"));
        assert_eq!(metrics.sent("a", Duration::ZERO), None);
        let text = exposition(&metrics);
        assert!(text.contains("portcullis_back_channel_alert{client_id=\"a\"} 0\n"));
        assert!(text.contains("portcullis_back_channel_consecutive_failures{client_id=\"a\"} 0\n"));
    }
}
