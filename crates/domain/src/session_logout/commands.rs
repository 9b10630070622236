//! Back-channel logout registrations and delivery outcomes.

use std::collections::BTreeMap;

use eventstore::AggregateAppend;

use crate::aggregate::{Aggregate, Loaded};
use crate::application::ApplicationView;
use crate::error::DomainError;
use crate::features::Feature;
use crate::grant::CodeIssued;
use crate::service::{Domain, retry_on_conflict};
use crate::session_logout::{
    BackChannelRegistered, DeliveryView, SessionLogout, SessionLogoutEvent,
};

impl Domain {
    /// The registration to record with tokens issued to `app` for `code`'s session, when the
    /// application has a back-channel logout URI and the feature is on for the instance.
    pub(crate) async fn back_channel_registration(
        &self,
        instance_id: &str,
        app: &ApplicationView,
        code: &CodeIssued,
    ) -> Result<Option<AggregateAppend>, DomainError> {
        let Some(uri) = &app.config.back_channel_logout_uri else {
            return Ok(None);
        };
        if !self
            .feature(instance_id, Feature::BackChannelLogout)
            .await?
            .effective
        {
            return Ok(None);
        }
        let logout =
            Loaded::<SessionLogout>::load(self.store.as_ref(), instance_id, &code.session_id)
                .await?;
        let events = logout.state.register(BackChannelRegistered {
            client_id: app.client_id.clone(),
            uri: uri.clone(),
            user_id: code.user_id.clone(),
            signing_alg: app.config.id_token_signing_alg.name().to_owned(),
        });
        Ok((!events.is_empty()).then(|| logout.append(&events, &self.stamp(&app.client_id))))
    }

    /// Records delivery outcomes (`Sent` or `Failed`), each once: an outcome for a registration
    /// that already has one (another notifier finished first) records nothing. All of them go
    /// in one transaction, one append per session, so a fan-out of many applications in one
    /// session, or a mass logout, does not make its outcomes race each other for the same
    /// aggregate. Entries are (instance id, session id, outcome).
    pub async fn record_back_channel_outcomes(
        &self,
        outcomes: &[(String, String, SessionLogoutEvent)],
    ) -> Result<(), DomainError> {
        type BySession<'a> = BTreeMap<&'a str, Vec<&'a SessionLogoutEvent>>;
        let mut by_instance: BTreeMap<&str, BySession> = BTreeMap::new();
        for (instance_id, session_id, outcome) in outcomes {
            by_instance
                .entry(instance_id)
                .or_default()
                .entry(session_id)
                .or_default()
                .push(outcome);
        }
        let stamp = self.stamp("back_channel_notifier");
        let (stamp, by_instance) = (&stamp, &by_instance);
        retry_on_conflict(|| async move {
            let mut appends = Vec::new();
            for (instance_id, by_session) in by_instance {
                let sessions: Vec<String> = by_session.keys().map(|id| (*id).to_owned()).collect();
                let loaded =
                    Loaded::<SessionLogout>::load_many(self.store.as_ref(), instance_id, &sessions)
                        .await?;
                for (mut logout, outcomes) in loaded.into_iter().zip(by_session.values()) {
                    let mut events = Vec::new();
                    for outcome in outcomes {
                        for event in logout.state.record((*outcome).clone()) {
                            logout.state.apply(&event);
                            events.push(event);
                        }
                    }
                    if !events.is_empty() {
                        appends.push(logout.append(&events, stamp));
                    }
                }
            }
            if appends.is_empty() {
                return Ok(());
            }
            self.commit(&appends).await.map(drop)
        })
        .await
    }

    /// A session's back-channel deliveries.
    pub async fn deliveries_of_session(
        &self,
        instance_id: &str,
        session_id: &str,
    ) -> Result<Vec<DeliveryView>, DomainError> {
        DeliveryView::of_session(self.store.as_ref(), instance_id, session_id).await
    }

    /// An application's back-channel deliveries, newest first.
    pub async fn deliveries_of_client(
        &self,
        instance_id: &str,
        client_id: &str,
        limit: u32,
    ) -> Result<Vec<DeliveryView>, DomainError> {
        DeliveryView::of_client(self.store.as_ref(), instance_id, client_id, limit).await
    }

    /// The back-channel registrations of a session and where each stands.
    pub async fn session_logout(
        &self,
        instance_id: &str,
        session_id: &str,
    ) -> Result<SessionLogout, DomainError> {
        Ok(
            Loaded::<SessionLogout>::load(self.store.as_ref(), instance_id, session_id)
                .await?
                .state,
        )
    }
}
