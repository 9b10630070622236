//! Application (OIDC client) commands and queries.

use crate::admin_token::AdminPrincipal;
use crate::aggregate::{Loaded, create};
use crate::application::{Application, ApplicationView, OidcConfig};
use crate::error::DomainError;
use crate::features::Feature;
use crate::service::Domain;

impl Domain {
    /// Creates an OIDC application; returns it and, for a confidential client, its secret
    /// (shown once, stored only as a hash).
    pub async fn add_application(
        &self,
        actor: &AdminPrincipal,
        config: OidcConfig,
    ) -> Result<(ApplicationView, Option<String>), DomainError> {
        let client_id = uuid::Uuid::now_v7().simple().to_string();
        self.check_back_channel_scheme(&actor.instance_id, &config)
            .await?;
        let (events, secret) = Application::default().add(config)?;
        let stamp = self.stamp(&actor.token_id);
        self.commit(&[create::<Application>(
            &actor.instance_id,
            &client_id,
            &events,
            &stamp,
        )])
        .await?;
        Ok((
            self.application(&actor.instance_id, &client_id).await?,
            secret,
        ))
    }

    /// The application with this client_id.
    pub async fn application(
        &self,
        instance_id: &str,
        client_id: &str,
    ) -> Result<ApplicationView, DomainError> {
        self.cached_application(instance_id, client_id)
            .await?
            .ok_or_else(|| DomainError::NotFound(format!("application {client_id}")))
    }

    /// The application with this client_id, from memory while unchanged.
    async fn cached_application(
        &self,
        instance_id: &str,
        client_id: &str,
    ) -> Result<Option<ApplicationView>, DomainError> {
        let key = (instance_id.to_owned(), client_id.to_owned());
        self.caches
            .applications
            .get_or_load(
                &key,
                ApplicationView::by_client_id(self.store.as_ref(), instance_id, client_id),
            )
            .await
    }

    /// A page of applications ordered by client_id, after `after_client_id`.
    pub async fn applications(
        &self,
        instance_id: &str,
        after_client_id: &str,
        limit: u32,
    ) -> Result<Vec<ApplicationView>, DomainError> {
        ApplicationView::list(
            self.store.as_ref(),
            instance_id,
            after_client_id,
            i64::from(limit.clamp(1, 500)),
        )
        .await
    }

    /// Replaces an application's settings.
    pub async fn change_application(
        &self,
        actor: &AdminPrincipal,
        client_id: &str,
        config: OidcConfig,
    ) -> Result<ApplicationView, DomainError> {
        self.check_back_channel_scheme(&actor.instance_id, &config)
            .await?;
        self.execute::<Application, _>(&actor.instance_id, client_id, &actor.token_id, |app| {
            app.change(config.clone())
        })
        .await?;
        self.application(&actor.instance_id, client_id).await
    }

    /// A plain-http back-channel logout URI is refused unless the instance allows it (a
    /// development setting): logout tokens are bearer credentials for ending sessions.
    pub(crate) async fn check_back_channel_scheme(
        &self,
        instance_id: &str,
        config: &OidcConfig,
    ) -> Result<(), DomainError> {
        let Some(uri) = &config.back_channel_logout_uri else {
            return Ok(());
        };
        if !uri.to_ascii_lowercase().starts_with("http://") {
            return Ok(());
        }
        if self
            .feature(instance_id, Feature::BackChannelLogoutAllowHttp)
            .await?
            .effective
        {
            return Ok(());
        }
        Err(DomainError::Invalid {
            field: "back_channel_logout_uri",
            reason: format!(
                "{uri:?} must be an https URL; plain http is accepted only where the feature \
                 back_channel_logout_allow_http is on (development)"
            ),
        })
    }

    /// Replaces a confidential application's secret; returns the new one (shown once).
    pub async fn regenerate_client_secret(
        &self,
        actor: &AdminPrincipal,
        client_id: &str,
    ) -> Result<String, DomainError> {
        let app =
            Loaded::<Application>::load(self.store.as_ref(), &actor.instance_id, client_id).await?;
        let (events, secret) = app.state.regenerate_secret()?;
        self.commit(&[app.append(&events, &self.stamp(&actor.token_id))])
            .await?;
        Ok(secret)
    }

    /// Removes an application.
    pub async fn remove_application(
        &self,
        actor: &AdminPrincipal,
        client_id: &str,
    ) -> Result<(), DomainError> {
        self.execute::<Application, _>(
            &actor.instance_id,
            client_id,
            &actor.token_id,
            Application::remove,
        )
        .await
    }

    /// The application, if `secret` is its current secret (constant-time comparison).
    pub async fn authenticate_client(
        &self,
        instance_id: &str,
        client_id: &str,
        secret: &str,
    ) -> Result<Option<ApplicationView>, DomainError> {
        let app = self.cached_application(instance_id, client_id).await?;
        Ok(app.filter(|app| app.secret_matches(secret)))
    }
}
