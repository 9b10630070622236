//! Session commands and queries: creating a session at sign-in, ending one or all of a user's,
//! expiry, and what the sign-out page lists.

use std::collections::BTreeMap;
use std::time::Duration;

use eventstore::{AggregateAppend, Projection};

use crate::admin_token;
use crate::aggregate::{Loaded, Stamp, create};
use crate::error::DomainError;
use crate::grant::GrantProjection;
use crate::service::{Domain, retry_on_conflict};
use crate::session::{Session, SessionCreated, SessionView, TerminationReason};

/// Sessions ended per transaction when all of a user's sessions end: the memory a sign-out
/// holds stays bounded however many sessions there are (100,000 in one transaction peaked at
/// 300 MiB), and the notifier starts on the first chunk while the next is written.
const SIGN_OUT_CHUNK: usize = 1_000;

impl Domain {
    /// Appends ending every live session of a user.
    pub(crate) async fn session_terminations(
        &self,
        instance_id: &str,
        user_id: &str,
        reason: TerminationReason,
        origin: &str,
        stamp: &Stamp,
    ) -> Result<Vec<AggregateAppend>, DomainError> {
        let live = SessionView::live_ids_of_user(self.store.as_ref(), instance_id, user_id).await?;
        self.terminations_of(instance_id, &live, reason, origin, stamp)
            .await
    }

    /// Appends ending each of `sessions` that is still live.
    pub(crate) async fn terminations_of(
        &self,
        instance_id: &str,
        sessions: &[String],
        reason: TerminationReason,
        origin: &str,
        stamp: &Stamp,
    ) -> Result<Vec<AggregateAppend>, DomainError> {
        let mut appends = Vec::new();
        for session in
            Loaded::<Session>::load_many(self.store.as_ref(), instance_id, sessions).await?
        {
            let events = session.state.terminate(reason, origin)?;
            if !events.is_empty() {
                appends.push(session.append(&events, stamp));
            }
        }
        Ok(appends)
    }

    /// Starts a session after a successful sign-in; returns it and the cookie secret.
    pub async fn create_session(
        &self,
        instance_id: &str,
        user_id: &str,
        lifetime: Duration,
        user_agent: Option<String>,
    ) -> Result<(SessionView, String), DomainError> {
        let session_id = uuid::Uuid::new_v4().simple().to_string();
        let cookie = random_token();
        let now = self.clock.now();
        let lifetime = chrono::Duration::from_std(lifetime).map_err(|_| DomainError::Invalid {
            field: "session_lifetime",
            reason: "too long".into(),
        })?;
        let created = SessionCreated {
            user_id: user_id.to_owned(),
            cookie_hash: admin_token::hash_token(&cookie),
            auth_time: now,
            expires_at: now + lifetime,
            user_agent: user_agent.map(|agent| agent.chars().take(512).collect()),
        };
        let events = Session::default().create(created)?;
        self.commit(&[create::<Session>(
            instance_id,
            &session_id,
            &events,
            &self.stamp(user_id),
        )])
        .await?;
        let session = SessionView::by_id(self.store.as_ref(), instance_id, &session_id)
            .await?
            .ok_or_else(|| DomainError::NotFound(format!("session {session_id}")))?;
        Ok((session, cookie))
    }

    /// The live, unexpired session a browser cookie belongs to.
    pub async fn session_by_cookie(
        &self,
        instance_id: &str,
        cookie: &str,
    ) -> Result<Option<SessionView>, DomainError> {
        let session = SessionView::by_cookie_hash(
            self.store.as_ref(),
            instance_id,
            &admin_token::hash_token(cookie),
        )
        .await?;
        let now = self.clock.now();
        Ok(session.filter(|session| {
            chrono::DateTime::parse_from_rfc3339(&session.expires_at)
                .is_ok_and(|expires_at| expires_at > now)
        }))
    }

    /// A user's live sessions (or all, with `include_ended`).
    pub async fn sessions_of_user(
        &self,
        instance_id: &str,
        user_id: &str,
        include_ended: bool,
    ) -> Result<Vec<SessionView>, DomainError> {
        SessionView::of_user(self.store.as_ref(), instance_id, user_id, include_ended).await
    }

    /// The names of the applications that received a code or tokens in a session, sorted, for
    /// the sign-out page. The grants read model is caught up first, so on SQLite an application
    /// signed in a moment ago is named; on PostgreSQL a transaction still open elsewhere can
    /// hold the read horizon back for that moment.
    pub async fn applications_of_session(
        &self,
        instance_id: &str,
        session_id: &str,
    ) -> Result<Vec<String>, DomainError> {
        self.runner.catch_up(GrantProjection.name()).await?;
        crate::grant::application_names_of_session(self.store.as_ref(), instance_id, session_id)
            .await
    }

    /// The applications that received a code or tokens in a session, by client id; one
    /// removed since is left out.
    pub async fn applications_signed_in(
        &self,
        instance_id: &str,
        session_id: &str,
    ) -> Result<Vec<crate::application::ApplicationView>, DomainError> {
        self.runner.catch_up(GrantProjection.name()).await?;
        let ids = crate::grant::client_ids_of_session(self.store.as_ref(), instance_id, session_id)
            .await?;
        let mut applications = Vec::with_capacity(ids.len());
        for client_id in ids {
            match self.application(instance_id, &client_id).await {
                Ok(application) => applications.push(application),
                Err(DomainError::NotFound(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(applications)
    }

    /// Ends one session; ending an ended session succeeds and records nothing.
    pub async fn terminate_session(
        &self,
        instance_id: &str,
        session_id: &str,
        reason: TerminationReason,
        origin: &str,
        creator: &str,
    ) -> Result<(), DomainError> {
        self.execute::<Session, _>(instance_id, session_id, creator, |session| {
            session.terminate(reason, origin)
        })
        .await
    }

    /// Ends every live session of a user, [`SIGN_OUT_CHUNK`] sessions per transaction; returns
    /// how many it ended.
    pub async fn sign_out_user(
        &self,
        instance_id: &str,
        user_id: &str,
        reason: TerminationReason,
        origin: &str,
        creator: &str,
    ) -> Result<usize, DomainError> {
        let stamp = self.stamp(creator);
        let live = SessionView::live_ids_of_user(self.store.as_ref(), instance_id, user_id).await?;
        self.end_sessions(instance_id, &live, reason, origin, &stamp)
            .await
    }

    /// Ends every live session whose lifetime ran out by now (reason `expired`, origin the
    /// instance's external URL), up to `limit` of them; returns how many lapsed sessions it
    /// found. The sessions of one instance end together, [`SIGN_OUT_CHUNK`] per transaction, as
    /// a user's sign-out does (one commit, so one fsync on SQLite, instead of one per session).
    /// Safe to run in several processes: ending an ended session records nothing.
    pub async fn expire_sessions(&self, limit: u32) -> Result<usize, DomainError> {
        let expired =
            crate::session::expired_sessions(self.store.as_ref(), self.clock.now(), limit).await?;
        let mut by_instance: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (instance_id, session_id) in &expired {
            by_instance
                .entry(instance_id)
                .or_default()
                .push(session_id.clone());
        }
        let stamp = self.stamp("session_expiry");
        for (instance_id, sessions) in by_instance {
            let origin = self.instance(instance_id).await?.external_url;
            self.end_sessions(
                instance_id,
                &sessions,
                TerminationReason::Expired,
                &origin,
                &stamp,
            )
            .await?;
        }
        Ok(expired.len())
    }

    /// Ends each of `sessions` that is still live, [`SIGN_OUT_CHUNK`] per transaction; returns
    /// how many it ended.
    async fn end_sessions(
        &self,
        instance_id: &str,
        sessions: &[String],
        reason: TerminationReason,
        origin: &str,
        stamp: &Stamp,
    ) -> Result<usize, DomainError> {
        let mut ended = 0;
        for chunk in sessions.chunks(SIGN_OUT_CHUNK) {
            ended += retry_on_conflict(|| async move {
                let appends = self
                    .terminations_of(instance_id, chunk, reason, origin, stamp)
                    .await?;
                if appends.is_empty() {
                    return Ok(0);
                }
                self.commit(&appends).await.map(|_| appends.len())
            })
            .await?;
        }
        Ok(ended)
    }
}

/// A random 256-bit token, hex-encoded.
fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}
