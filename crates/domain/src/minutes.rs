//! The time arithmetic of the per-minute read models (session activity, back-channel delivery
//! health): which minute a moment counts in, how much history they keep, and where the last
//! hour's and the last day's windows begin.

use chrono::{DateTime, Utc};

/// One minute, the models' bucket.
const MINUTE_MS: i64 = 60_000;

/// Minutes in the short window: the minute in progress and the 59 before it.
const HOUR_MINUTES: i64 = 60;

/// Minutes in the long window, and how many are kept.
const DAY_MINUTES: i64 = 24 * 60;

/// How far behind its newest minute a model forgets.
pub(crate) const KEPT_MS: i64 = DAY_MINUTES * MINUTE_MS;

/// The start of the minute `at_ms` falls in.
pub(crate) fn minute_of(at_ms: i64) -> i64 {
    at_ms.div_euclid(MINUTE_MS) * MINUTE_MS
}

/// Where the windows ending with the minute in progress begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Windows {
    /// The first minute of the last hour.
    pub(crate) hour_from: i64,
    /// The first minute of the last day.
    pub(crate) day_from: i64,
}

impl Windows {
    /// The windows that end with the minute `now` falls in.
    pub(crate) fn ending_at(now: DateTime<Utc>) -> Windows {
        let now_minute = minute_of(now.timestamp_millis());
        Windows {
            hour_from: now_minute - (HOUR_MINUTES - 1) * MINUTE_MS,
            day_from: now_minute - (DAY_MINUTES - 1) * MINUTE_MS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_count_the_minute_in_progress() {
        let now = DateTime::from_timestamp_millis(10 * 86_400_000 + 90_500).unwrap();
        assert_eq!(minute_of(now.timestamp_millis()), 10 * 86_400_000 + 60_000);
        let windows = Windows::ending_at(now);
        assert_eq!(windows.hour_from, 10 * 86_400_000 + 60_000 - 59 * 60_000);
        assert_eq!(windows.day_from, 10 * 86_400_000 + 60_000 - 1_439 * 60_000);
        assert_eq!(minute_of(-1), -60_000, "before 1970 still rounds down");
    }
}
