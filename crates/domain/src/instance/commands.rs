//! Instance commands and queries: first-start setup, the default instance's settings, finding
//! the instance a request addresses, feature values.

use std::sync::Arc;

use crate::admin_token::{self, AdminPrincipal, AdminToken};
use crate::aggregate::{Loaded, create};
use crate::error::DomainError;
use crate::features::{Feature, FeatureState};
use crate::instance::{Instance, InstanceView};
use crate::service::Domain;
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
    /// (`NotFound`), never silently the default one.
    pub async fn instance_for_origin(&self, origin: &str) -> Result<InstanceView, DomainError> {
        let instances = self.instances().await?;
        let owner = instances.iter().position(|instance| {
            instance.external_url == origin
                || instance
                    .external_url
                    .strip_prefix(origin)
                    .is_some_and(|rest| rest.starts_with('/'))
        });
        match (owner, instances.len()) {
            (Some(index), _) => Ok(instances[index].clone()),
            (None, 1) => Ok(instances[0].clone()),
            (None, 0) => Err(DomainError::NotFound(
                "default instance (setup has not run)".into(),
            )),
            (None, _) => Err(DomainError::NotFound(format!(
                "no instance answers on {origin}"
            ))),
        }
    }

    /// Adds an instance (a tenant) answering on `external_url`, its issuer. The system API
    /// that exposes this is still to come; tests use it to check that instances stay apart.
    pub async fn add_instance(
        &self,
        name: &str,
        external_url: &str,
    ) -> Result<InstanceView, DomainError> {
        let instance_id = uuid::Uuid::now_v7().to_string();
        let events = Instance::default().add(name, external_url, false)?;
        let stamp = self.stamp("system");
        self.commit(&[create::<Instance>(
            &instance_id,
            &instance_id,
            &events,
            &stamp,
        )])
        .await?;
        self.instance(&instance_id).await
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
