//! Delivery counters and the end-to-delivery latency histogram, rendered in the Prometheus
//! text format. Hand-written: four series do not justify a metrics framework.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram's buckets.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

/// The notifier's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    sent: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
}

impl Metrics {
    /// A delivery succeeded `latency` after its session ended.
    pub fn sent(&self, latency: Duration) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        let seconds = latency.as_secs_f64();
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// An attempt failed recoverably and was rescheduled.
    pub fn retried(&self) {
        self.retried.fetch_add(1, Ordering::Relaxed);
    }

    /// A delivery was given up.
    pub fn failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, help, counter) in [
            (
                "portcullis_back_channel_sent_total",
                "Logout tokens acknowledged by applications.",
                &self.sent,
            ),
            (
                "portcullis_back_channel_retried_total",
                "Delivery attempts that failed recoverably and were rescheduled.",
                &self.retried,
            ),
            (
                "portcullis_back_channel_failed_total",
                "Deliveries given up (refused, or out of attempts).",
                &self.failed,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                counter.load(Ordering::Relaxed)
            );
        }
        let name = "portcullis_back_channel_delivery_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time from the end of a session to an application acknowledging its logout token."
        );
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let sum = self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"+Inf\"}} {count}\n{name}_sum {sum}\n{name}_count {count}"
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_counts_and_buckets() {
        let metrics = Metrics::default();
        metrics.sent(Duration::from_millis(30));
        metrics.sent(Duration::from_secs(3));
        metrics.failed();
        let text = metrics.render();
        assert!(text.contains("portcullis_back_channel_sent_total 2\n"));
        assert!(text.contains("portcullis_back_channel_failed_total 1\n"));
        assert!(text.contains("portcullis_back_channel_delivery_seconds_bucket{le=\"0.05\"} 1\n"));
        assert!(text.contains("portcullis_back_channel_delivery_seconds_bucket{le=\"5\"} 2\n"));
        assert!(text.contains("portcullis_back_channel_delivery_seconds_count 2\n"));
    }
}
