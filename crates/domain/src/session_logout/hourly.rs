//! Deliveries per application and hour over the last 24 hours, for the console overview's
//! chart: attempts sent and failed from `back_channel_health_minutes` (grouped by hour in the
//! database), and each hour's median latency from `back_channel_deliveries` (ranked in the
//! database over the day's sent rows, through `back_channel_sent_latency`). Two statements
//! whatever the traffic: no delivery row travels to the process.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::error::DomainError;
use crate::service::Domain;

const HOUR_MS: i64 = 3_600_000;

/// Hours in the chart: the hour in progress and the 23 before it.
pub const HOURS: usize = 24;

/// Per application and hour since `$2`: attempts acknowledged, and attempts that failed
/// (retried or given up).
const HOURLY_COUNTS: &str = "SELECT client_id, minute_ms / 3600000,
        CAST(SUM(sent) AS BIGINT), CAST(SUM(retried) + SUM(failed) AS BIGINT)
     FROM back_channel_health_minutes
     WHERE instance_id = $1 AND minute_ms >= $2
     GROUP BY client_id, minute_ms / 3600000";

/// Per application and hour since `$2`: the latency (session end to acknowledgement) at the
/// median's nearest rank among the deliveries acknowledged in that hour.
const HOURLY_MEDIANS: &str = "SELECT client_id, hour, latency_ms FROM (
        SELECT client_id, settled_at_ms / 3600000 AS hour, settled_at_ms - ended_at_ms AS latency_ms,
            ROW_NUMBER() OVER (PARTITION BY client_id, settled_at_ms / 3600000
                               ORDER BY settled_at_ms - ended_at_ms) AS nth,
            COUNT(*) OVER (PARTITION BY client_id, settled_at_ms / 3600000) AS samples
        FROM back_channel_deliveries
        WHERE instance_id = $1 AND state = 'sent' AND settled_at_ms >= $2
          AND ended_at_ms IS NOT NULL
     ) ranked
     WHERE nth = (samples + 1) / 2";

/// One hour of deliveries to one application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryHour {
    /// The hour's start (UTC).
    pub start: DateTime<Utc>,
    /// Attempts the application acknowledged.
    pub sent: u64,
    /// Attempts that failed (retried later, or given up).
    pub failed: u64,
    /// The median time from a session's end to the acknowledgement, over the deliveries
    /// acknowledged in the hour; none when none was.
    pub median_latency_ms: Option<u64>,
}

impl DeliveryHour {
    /// An hour with nothing delivered.
    pub fn empty(start: DateTime<Utc>) -> Self {
        DeliveryHour {
            start,
            sent: 0,
            failed: 0,
            median_latency_ms: None,
        }
    }
}

fn millis(value: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(value).unwrap_or_default()
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// [`HOURS`] empty hours ending with the one holding `now`, oldest first: the day of an
/// application nothing was delivered to.
pub fn empty_day(now: DateTime<Utc>) -> Vec<DeliveryHour> {
    let now_ms = now.timestamp_millis();
    let first = now_ms.div_euclid(HOUR_MS) - (HOURS as i64 - 1);
    (0..HOURS as i64)
        .map(|offset| DeliveryHour::empty(millis((first + offset) * HOUR_MS)))
        .collect()
}

/// The `index`th hour of `client_id`'s day (made empty when it has none yet); none outside
/// the day (a row written while the hour turned).
fn slot<'a>(
    hours: &'a mut BTreeMap<String, Vec<DeliveryHour>>,
    client_id: &str,
    index: i64,
    now_ms: i64,
) -> Option<&'a mut DeliveryHour> {
    let index = usize::try_from(index).ok()?;
    hours
        .entry(client_id.to_owned())
        .or_insert_with(|| empty_day(millis(now_ms)))
        .get_mut(index)
}

impl Domain {
    /// The last [`HOURS`] hours of deliveries to each of the instance's applications that had
    /// any, by client id, oldest hour first, every hour present.
    pub async fn delivery_hours(
        &self,
        instance_id: &str,
    ) -> Result<BTreeMap<String, Vec<DeliveryHour>>, DomainError> {
        let store = self.store.as_ref();
        let now_ms = self.now().timestamp_millis();
        let first_hour = now_ms.div_euclid(HOUR_MS) - (HOURS as i64 - 1);
        let from_ms = first_hour * HOUR_MS;
        let mut hours: BTreeMap<String, Vec<DeliveryHour>> = BTreeMap::new();
        let params = [instance_id.into(), from_ms.into()];
        for row in &store.query(HOURLY_COUNTS, &params).await? {
            if let Some(hour) = slot(&mut hours, row.text(0)?, row.int(1)? - first_hour, now_ms) {
                hour.sent = count(row.int(2)?);
                hour.failed = count(row.int(3)?);
            }
        }
        for row in &store.query(HOURLY_MEDIANS, &params).await? {
            if let Some(hour) = slot(&mut hours, row.text(0)?, row.int(1)? - first_hour, now_ms) {
                hour.median_latency_ms = Some(count(row.int(2)?));
            }
        }
        Ok(hours)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_is_24_whole_hours_ending_with_the_current_one() {
        let now = DateTime::parse_from_rfc3339("2026-11-29T10:30:00Z")
            .unwrap()
            .to_utc();
        let day = empty_day(now);
        assert_eq!(day.len(), HOURS);
        assert_eq!(day[0].start.to_rfc3339(), "2026-11-28T11:00:00+00:00");
        assert_eq!(day[23].start.to_rfc3339(), "2026-11-29T10:00:00+00:00");
    }
}
