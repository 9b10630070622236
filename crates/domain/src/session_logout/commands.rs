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
    BackChannelRegistered, DeliveryCounts, DeliveryCursor, DeliveryFilter, DeliveryView,
    Registration, SessionLogout, SessionLogoutEvent,
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

    /// Appends delivery events (attempts, outcomes, redelivery requests) that `admit` allows
    /// against the registration's history as it stands when appended: the notifier's
    /// lifecycle decides, the domain records. All go in one transaction, one append per
    /// session, so a fan-out of many applications in one session, or a mass logout, does not
    /// race itself for the same aggregate; another writer's conflict reloads and asks `admit`
    /// again. Entries are (instance id, session id, event); the answer says, per entry,
    /// whether it was recorded (an entry for an unknown registration never is).
    pub async fn append_delivery_events(
        &self,
        entries: &[(String, String, SessionLogoutEvent)],
        creator: &str,
        admit: &(dyn Fn(&Registration, &SessionLogoutEvent) -> bool + Sync),
    ) -> Result<Vec<bool>, DomainError> {
        type BySession<'a> = BTreeMap<&'a str, Vec<(usize, &'a SessionLogoutEvent)>>;
        let mut by_instance: BTreeMap<&str, BySession> = BTreeMap::new();
        for (index, (instance_id, session_id, event)) in entries.iter().enumerate() {
            by_instance
                .entry(instance_id)
                .or_default()
                .entry(session_id)
                .or_default()
                .push((index, event));
        }
        let stamp = self.stamp(creator);
        let (stamp, by_instance) = (&stamp, &by_instance);
        retry_on_conflict(|| async move {
            let mut recorded = vec![false; entries.len()];
            let mut appends = Vec::new();
            for (instance_id, by_session) in by_instance {
                let sessions: Vec<String> = by_session.keys().map(|id| (*id).to_owned()).collect();
                let loaded =
                    Loaded::<SessionLogout>::load_many(self.store.as_ref(), instance_id, &sessions)
                        .await?;
                for (mut logout, events) in loaded.into_iter().zip(by_session.values()) {
                    let mut admitted = Vec::new();
                    for (index, event) in events {
                        let Some(registration) = logout.state.registrations.get(event.client_id())
                        else {
                            continue;
                        };
                        if admit(registration, event) {
                            logout.state.apply(event);
                            admitted.push((*event).clone());
                            recorded[*index] = true;
                        }
                    }
                    if !admitted.is_empty() {
                        appends.push(logout.append(&admitted, stamp));
                    }
                }
            }
            if !appends.is_empty() {
                self.commit(&appends).await?;
            }
            Ok(recorded)
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

    /// An instance's back-channel deliveries that pass `filter`, newest registration first,
    /// after `cursor`, at most `limit`.
    pub async fn deliveries_of_instance(
        &self,
        instance_id: &str,
        filter: &DeliveryFilter,
        cursor: Option<&DeliveryCursor>,
        limit: u32,
    ) -> Result<Vec<DeliveryView>, DomainError> {
        DeliveryView::list(self.store.as_ref(), instance_id, filter, cursor, limit).await
    }

    /// How many of an instance's deliveries were sent, failed, or are still to be sent.
    pub async fn delivery_counts_of_instance(
        &self,
        instance_id: &str,
    ) -> Result<DeliveryCounts, DomainError> {
        DeliveryView::counts_of_instance(self.store.as_ref(), instance_id).await
    }

    /// The back-channel registrations of several sessions of one instance (one read), in
    /// the order of `session_ids`.
    pub async fn session_logouts(
        &self,
        instance_id: &str,
        session_ids: &[String],
    ) -> Result<Vec<SessionLogout>, DomainError> {
        Ok(
            Loaded::<SessionLogout>::load_many(self.store.as_ref(), instance_id, session_ids)
                .await?
                .into_iter()
                .map(|loaded| loaded.state)
                .collect(),
        )
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
