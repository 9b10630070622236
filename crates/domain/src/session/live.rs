//! How many sessions are live, for the `/metrics` gauge.

use crate::error::DomainError;
use crate::service::Domain;

impl Domain {
    /// Sessions of every instance that have not ended and whose lifetime has not run out by
    /// the domain's clock. Read from `session_expiries`, which holds live sessions only (ended
    /// ones leave it), through its time index: a count of the live rows, not of every session
    /// ever; a lapsed session the sweeper has not ended yet is not counted.
    pub async fn live_sessions(&self) -> Result<u64, DomainError> {
        let rows = self
            .store
            .query(
                "SELECT COUNT(*) FROM session_expiries WHERE expires_at_ms > $1",
                &[self.now().timestamp_millis().into()],
            )
            .await?;
        let count = rows.first().map(|row| row.int(0)).transpose()?;
        Ok(count.map_or(0, |count| u64::try_from(count).unwrap_or(0)))
    }
}

impl Domain {
    /// Sessions of one instance that have not ended and whose lifetime has not run out, for
    /// the console's overview: an admin sees their own instance's figure, never the server's
    /// total. Uses the table's primary key (instance first), so it reads only the instance's
    /// rows.
    pub async fn live_sessions_of_instance(&self, instance_id: &str) -> Result<u64, DomainError> {
        let rows = self
            .store
            .query(
                "SELECT COUNT(*) FROM session_expiries WHERE instance_id = $1 AND expires_at_ms > $2",
                &[instance_id.into(), self.now().timestamp_millis().into()],
            )
            .await?;
        let count = rows.first().map(|row| row.int(0)).transpose()?;
        Ok(count.map_or(0, |count| u64::try_from(count).unwrap_or(0)))
    }
}
