//! Instance commands and queries: first-start setup, the default instance's settings, creating
//! and removing instances (the system API), finding the instance a request addresses, feature
//! values.

use std::sync::Arc;

use eventstore::Projection;

use crate::admin_token::{self, AdminPrincipal, AdminToken};
use crate::aggregate::{Loaded, create};
use crate::error::DomainError;
use crate::features::{Feature, FeatureState};
use crate::instance::{Instance, InstanceView};
use crate::service::Domain;
use crate::service::retry_on_conflict;
use crate::session::{SessionProjection, SessionView};
use crate::session_logout::{BackChannelDeliveryProjection, DeliveryView};
use crate::system::{SYSTEM_AGGREGATE_ID, SYSTEM_INSTANCE_ID, SetupCompleted, System, SystemEvent};

/// What first-start setup needs from configuration.
#[derive(Debug, Clone)]
pub struct SetupRequest {
    /// The default instance's issuer URL.
    pub external_url: String,
    /// The initial admin token, if configured; otherwise one is generated.
    pub initial_admin_token: Option<String>,
    /// The default instance's display name; `None` shows its issuer's host.
    pub display_name: Option<String>,
}

/// What setup did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupOutcome {
    /// The default instance.
    pub instance: InstanceView,
    /// A token generated on this start, to be shown once; `None` when setup had already
    /// happened or the token came from configuration.
    pub generated_admin_token: Option<String>,
}

/// A new instance and its first admin token, shown once.
#[derive(Debug, Clone)]
pub struct CreatedInstance {
    /// The instance.
    pub instance: InstanceView,
    /// Its first admin token, in clear; only its hash is stored.
    pub admin_token: String,
}

/// Where an instance's removal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemovalProgress {
    /// Its sessions are being ended, or their logout deliveries have not settled yet.
    Waiting,
    /// It is gone.
    Removed,
}

/// The creator recorded on what the system API and its background work append.
const SYSTEM_ACTOR: &str = "system";

impl Domain {
    /// Creates the default instance and the initial admin token on first start; on later
    /// starts brings the default instance's URL in line with configuration. Safe to run from
    /// several processes at once: exactly one of them performs first-start setup.
    pub async fn setup(&self, request: &SetupRequest) -> Result<SetupOutcome, DomainError> {
        if let Some(token) = &request.initial_admin_token {
            admin_token::check_token(token)?;
        }
        loop {
            let system = Loaded::<System>::load(
                self.store.as_ref(),
                SYSTEM_INSTANCE_ID,
                SYSTEM_AGGREGATE_ID,
            )
            .await?;
            if let Some(instance_id) = &system.state.default_instance_id {
                self.configure_default_instance(instance_id, request)
                    .await?;
                // Setup may have been done by another process a moment ago: wait until this
                // process's read models show it.
                let created =
                    Loaded::<Instance>::load(self.store.as_ref(), instance_id, instance_id).await?;
                self.runner
                    .wait_for(
                        instance_id,
                        created.position,
                        &[],
                        self.options.read_your_writes_timeout,
                    )
                    .await?;
                let instance = self.instance(instance_id).await?;
                return Ok(SetupOutcome {
                    instance,
                    generated_admin_token: None,
                });
            }
            let instance_id = uuid::Uuid::now_v7().to_string();
            let generated = request
                .initial_admin_token
                .is_none()
                .then(admin_token::generate_token);
            let token = request
                .initial_admin_token
                .as_deref()
                .or(generated.as_deref())
                .unwrap_or_default();
            let stamp = self.stamp("system");
            let appends = [
                system.append(
                    &[SystemEvent::SetupCompleted(SetupCompleted {
                        default_instance_id: instance_id.clone(),
                    })],
                    &stamp,
                ),
                create::<Instance>(
                    &instance_id,
                    &instance_id,
                    &Instance::default().add("default", &request.external_url, true)?,
                    &stamp,
                ),
                create::<AdminToken>(
                    &instance_id,
                    &uuid::Uuid::now_v7().to_string(),
                    &AdminToken::default().add(token, "initial admin token")?,
                    &stamp,
                ),
            ];
            match self.commit(&appends).await {
                // Another process completed setup first; use what it created.
                Err(DomainError::Conflict(_)) => continue,
                Err(other) => return Err(other),
                Ok(_) => {
                    self.configure_default_instance(&instance_id, request)
                        .await?;
                    let instance = self.instance(&instance_id).await?;
                    return Ok(SetupOutcome {
                        instance,
                        generated_admin_token: generated,
                    });
                }
            }
        }
    }

    /// Brings the default instance's issuer and display name in line with configuration.
    pub(crate) async fn configure_default_instance(
        &self,
        instance_id: &str,
        request: &SetupRequest,
    ) -> Result<(), DomainError> {
        self.execute::<Instance, _>(instance_id, instance_id, "system", |instance| {
            let mut events = instance.change_external_url(&request.external_url)?;
            events.extend(instance.change_display_name(request.display_name.as_deref())?);
            Ok(events)
        })
        .await
    }

    /// The instance with this id.
    pub async fn instance(&self, instance_id: &str) -> Result<InstanceView, DomainError> {
        self.instances()
            .await?
            .iter()
            .find(|instance| instance.instance_id == instance_id)
            .cloned()
            .ok_or_else(|| DomainError::NotFound(format!("instance {instance_id}")))
    }

    /// Every instance, from memory while unchanged.
    pub(crate) async fn instances(&self) -> Result<Arc<Vec<InstanceView>>, DomainError> {
        self.caches
            .instances
            .get_or_load(&(), async {
                Ok::<_, DomainError>(Arc::new(InstanceView::all(self.store.as_ref()).await?))
            })
            .await
    }

    /// The instance whose issuer URL has this origin (`scheme://host[:port]`). A request on
    /// another host is answered by the only instance when there is just one (a development
    /// setup answers on 127.0.0.1 as on localhost); once there are several it addresses none
    /// (`NotFound`), never silently the default one. An instance being removed answers on no
    /// host.
    pub async fn instance_for_origin(&self, origin: &str) -> Result<InstanceView, DomainError> {
        let instances = self.instances().await?;
        let owner = instances
            .iter()
            .position(|instance| origin_of(&instance.external_url) == origin);
        let found = match (owner, instances.len()) {
            (Some(index), _) => Some(&instances[index]),
            (None, 1) => Some(&instances[0]),
            (None, 0) => {
                return Err(DomainError::NotFound(
                    "default instance (setup has not run)".into(),
                ));
            }
            (None, _) => None,
        };
        match found {
            Some(instance) if !instance.removing => Ok(instance.clone()),
            _ => Err(DomainError::NotFound(format!(
                "an instance answering on {origin}"
            ))),
        }
    }

    /// Adds an instance (a tenant) answering on `external_url`, its issuer, without an admin
    /// token; tests use it to arrange several instances.
    pub async fn add_instance(
        &self,
        name: &str,
        external_url: &str,
    ) -> Result<InstanceView, DomainError> {
        let instance_id = uuid::Uuid::now_v7().to_string();
        let events = Instance::default().add(name, external_url, false)?;
        let stamp = self.stamp(SYSTEM_ACTOR);
        self.commit(&[create::<Instance>(
            &instance_id,
            &instance_id,
            &events,
            &stamp,
        )])
        .await?;
        self.instance(&instance_id).await
    }

    /// Creates an instance answering on `external_url` (already normalized: an absolute
    /// http(s) URL without query, fragment or trailing slash) with its first admin token.
    /// Requests are routed by origin, so a URL whose origin another instance uses (one being
    /// removed included, until it is gone) is a `StateConflict`: checked against the read
    /// model (which holds the default instance, whose URL comes from configuration) and,
    /// race-free, against the origins claimed on the `system` aggregate.
    pub async fn create_instance(
        &self,
        external_url: &str,
        display_name: &str,
    ) -> Result<CreatedInstance, DomainError> {
        let display_name = Instance::check_display_name(display_name)?;
        let origin = origin_of(external_url);
        if let Some(owner) = self
            .instances()
            .await?
            .iter()
            .find(|instance| origin_of(&instance.external_url) == origin)
        {
            return Err(DomainError::StateConflict(format!(
                "{origin} is the origin of instance {} ({}); requests are routed by host, so \
                 choose another host or port",
                owner.instance_id, owner.external_url
            )));
        }
        let instance_id = uuid::Uuid::now_v7().to_string();
        let token = admin_token::generate_token();
        let mut events = Instance::default().add(display_name, external_url, false)?;
        let mut named = Instance::default();
        events
            .iter()
            .for_each(|event| crate::aggregate::Aggregate::apply(&mut named, event));
        events.extend(named.change_display_name(Some(display_name))?);
        let token_events = AdminToken::default().add(&token, "first admin token")?;
        let token_id = uuid::Uuid::now_v7().to_string();
        let stamp = self.stamp(SYSTEM_ACTOR);
        // The claim on the system aggregate makes two creations racing for one origin
        // conflict; the loser reloads and is refused.
        retry_on_conflict(|| async {
            let system = Loaded::<System>::load(
                self.store.as_ref(),
                SYSTEM_INSTANCE_ID,
                SYSTEM_AGGREGATE_ID,
            )
            .await?;
            let claim = system.state.claim_origin(origin, &instance_id)?;
            self.commit(&[
                system.append(&claim, &stamp),
                create::<Instance>(&instance_id, &instance_id, &events, &stamp),
                create::<AdminToken>(&instance_id, &token_id, &token_events, &stamp),
            ])
            .await
            .map(drop)
        })
        .await?;
        Ok(CreatedInstance {
            instance: self.instance(&instance_id).await?,
            admin_token: token,
        })
    }

    /// Every instance, the default one first, then by creation (ids are time-ordered).
    pub async fn list_instances(&self) -> Result<Vec<InstanceView>, DomainError> {
        let mut instances = self.instances().await?.as_ref().clone();
        instances
            .sort_by(|a, b| (!a.is_default, &a.instance_id).cmp(&(!b.is_default, &b.instance_id)));
        Ok(instances)
    }

    /// Begins removing an instance: from now on it answers on no host and accepts no admin
    /// token, and [`Domain::continue_instance_removals`] ends its sessions (their applications
    /// are told, with the instance's issuer) and removes it once their deliveries settled.
    /// Asking again while it runs changes nothing; the default instance cannot be removed.
    pub async fn start_instance_removal(&self, instance_id: &str) -> Result<(), DomainError> {
        self.execute::<Instance, _>(
            instance_id,
            instance_id,
            SYSTEM_ACTOR,
            Instance::start_removal,
        )
        .await
    }

    /// Moves every removal along: starts a sign-out of the instance's live sessions when none
    /// runs (again if sessions began after the last one started), and once none is live, the
    /// sign-out completed and no delivery is left due, records the instance removed. Returns
    /// whether a removal is still waiting. Safe in several processes at once.
    pub async fn continue_instance_removals(&self) -> Result<bool, DomainError> {
        let mut waiting = false;
        for instance in self.instances().await?.iter().filter(|i| i.removing) {
            waiting |= self.continue_instance_removal(instance).await? == RemovalProgress::Waiting;
        }
        Ok(waiting)
    }

    async fn continue_instance_removal(
        &self,
        instance: &InstanceView,
    ) -> Result<RemovalProgress, DomainError> {
        let instance_id = instance.instance_id.as_str();
        if self.sign_out_running(instance_id).await? {
            return Ok(RemovalProgress::Waiting);
        }
        // On PostgreSQL the sessions read model follows the log in the background: let it show
        // every session begun before the removal, so none is missed.
        self.runner.catch_up(SessionProjection.name()).await?;
        if SessionView::count_live(self.store.as_ref(), instance_id).await? > 0 {
            self.start_sign_out(instance_id, SYSTEM_ACTOR, &instance.external_url)
                .await?;
            return Ok(RemovalProgress::Waiting);
        }
        // Every session has ended: let the deliveries read model show their ends (on
        // PostgreSQL it follows the log in the background), then wait for what is due.
        self.runner
            .catch_up(BackChannelDeliveryProjection.name())
            .await?;
        if DeliveryView::unsettled_of_instance(self.store.as_ref(), instance_id).await? > 0 {
            return Ok(RemovalProgress::Waiting);
        }
        retry_on_conflict(|| async move {
            let loaded =
                Loaded::<Instance>::load(self.store.as_ref(), instance_id, instance_id).await?;
            if loaded.state.removed {
                return Ok(());
            }
            let events = loaded.state.finish_removal()?;
            let system = Loaded::<System>::load(
                self.store.as_ref(),
                SYSTEM_INSTANCE_ID,
                SYSTEM_AGGREGATE_ID,
            )
            .await?;
            // The origin is free for a new instance once this one is gone.
            let release = system
                .state
                .release_origin(origin_of(&loaded.state.external_url), instance_id);
            let stamp = self.stamp(SYSTEM_ACTOR);
            let mut appends = vec![loaded.append(&events, &stamp)];
            if !release.is_empty() {
                appends.push(system.append(&release, &stamp));
            }
            self.commit(&appends).await.map(drop)
        })
        .await?;
        Ok(RemovalProgress::Removed)
    }

    /// The instance created on first start.
    pub async fn default_instance(&self) -> Result<InstanceView, DomainError> {
        self.instances()
            .await?
            .iter()
            .find(|instance| instance.is_default)
            .cloned()
            .ok_or_else(|| DomainError::NotFound("default instance (setup has not run)".into()))
    }

    /// Every feature's values for an instance.
    pub async fn features(&self, instance_id: &str) -> Result<Vec<FeatureState>, DomainError> {
        let values = InstanceView::feature_values(self.store.as_ref(), instance_id).await?;
        Ok(Feature::ALL
            .iter()
            .map(|feature| FeatureState::resolve(*feature, &self.options.system_features, &values))
            .collect())
    }

    /// One feature's values for an instance.
    pub async fn feature(
        &self,
        instance_id: &str,
        feature: Feature,
    ) -> Result<FeatureState, DomainError> {
        let values = InstanceView::feature_values(self.store.as_ref(), instance_id).await?;
        Ok(FeatureState::resolve(
            feature,
            &self.options.system_features,
            &values,
        ))
    }

    /// Sets a feature's instance value.
    pub async fn set_feature(
        &self,
        actor: &AdminPrincipal,
        feature: Feature,
        enabled: bool,
    ) -> Result<FeatureState, DomainError> {
        let instance_id = &actor.instance_id;
        self.execute::<Instance, _>(instance_id, instance_id, &actor.token_id, |instance| {
            instance.set_feature(feature, enabled)
        })
        .await?;
        self.feature(instance_id, feature).await
    }

    /// Removes a feature's instance value, so the system value applies.
    pub async fn reset_feature(
        &self,
        actor: &AdminPrincipal,
        feature: Feature,
    ) -> Result<FeatureState, DomainError> {
        let instance_id = &actor.instance_id;
        self.execute::<Instance, _>(instance_id, instance_id, &actor.token_id, |instance| {
            instance.reset_feature(feature)
        })
        .await?;
        self.feature(instance_id, feature).await
    }
}

/// The origin (`scheme://host[:port]`) of an issuer URL: what requests are routed by.
fn origin_of(external_url: &str) -> &str {
    let after_scheme = external_url.find("://").map_or(0, |index| index + 3);
    match external_url[after_scheme..].find('/') {
        Some(slash) => &external_url[..after_scheme + slash],
        None => external_url,
    }
}

#[cfg(test)]
mod tests {
    use super::origin_of;

    #[test]
    fn an_issuers_origin_drops_its_path() {
        for (url, origin) in [
            ("https://id.example.com", "https://id.example.com"),
            ("http://localhost:8080", "http://localhost:8080"),
            ("https://example.com/tenant/a", "https://example.com"),
        ] {
            assert_eq!(origin_of(url), origin);
        }
    }
}
