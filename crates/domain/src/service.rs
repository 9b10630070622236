//! `Domain`: the commands and queries the server calls, over one event store.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use eventstore::{
    AggregateAppend, EventStore, Projection, ProjectionRunner, RunnerOptions, StoredEvent,
};

use crate::admin_token::{self, AdminPrincipal, AdminToken, AdminTokenProjection};
use crate::aggregate::{Aggregate, Loaded, Stamp, create};
use crate::application::{Application, ApplicationProjection, ApplicationView, OidcConfig};
use crate::clock::Clock;
use crate::error::DomainError;
use crate::features::{Feature, FeatureState, SystemFeatures};
use crate::grant::{
    AccessTokenBinding, CodeIssued, Grant, GrantProjection, GrantRejection, RevocationReason,
    TokenKind, TokenView, TokensIssued, grant_token,
};
use crate::instance::{Instance, InstanceProjection, InstanceView};
use crate::keys::{SigningKeyAdded, SigningKeyProjection, SigningKeyRecord, SigningKeys};
use crate::session::{Session, SessionCreated, SessionProjection, SessionView, TerminationReason};
use crate::session_logout::{
    BackChannelDeliveryProjection, BackChannelRegistered, DeliveryView, SessionLogout,
    SessionLogoutEvent,
};
use crate::system::{SYSTEM_AGGREGATE_ID, SYSTEM_INSTANCE_ID, SetupCompleted, System, SystemEvent};
use crate::user::{
    Profile, User, UserProjection, UserView, Username, hash_password, normalize_username,
    on_hashing_thread, verify_password,
};

/// How often a command is retried after losing a race to another writer.
const CONFLICT_RETRIES: usize = 5;

/// Sessions ended per transaction when all of a user's sessions end: the memory a sign-out
/// holds stays bounded however many sessions there are (100,000 in one transaction peaked at
/// 300 MiB), and the notifier starts on the first chunk while the next is written.
const SIGN_OUT_CHUNK: usize = 1_000;

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

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// The login name.
    pub username: String,
    /// Profile data.
    pub profile: Profile,
    /// The initial password, in clear (hashed before anything is stored).
    pub password: String,
}

/// What an authorization code is issued for.
#[derive(Debug, Clone)]
pub struct CodeRequest {
    /// The browser session.
    pub session_id: String,
    /// The client.
    pub client_id: String,
    /// The user.
    pub user_id: String,
    /// Where the code goes.
    pub redirect_uri: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// The request's nonce.
    pub nonce: Option<String>,
    /// The PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// When the user authenticated.
    pub auth_time: chrono::DateTime<chrono::Utc>,
}

/// Tokens handed to a client, in clear (only their hashes are stored).
#[derive(Debug, Clone)]
pub struct IssuedTokens {
    /// The grant they belong to.
    pub grant_id: String,
    /// What the grant was issued for (user, session, scopes, nonce, auth_time).
    pub code: CodeIssued,
    /// The access token.
    pub access_token: String,
    /// The access token's scopes: the grant's, or narrower when a refresh asked for less.
    pub scopes: Vec<String>,
    /// Its lifetime in seconds.
    pub expires_in: u32,
    /// The rotated refresh token, when the client may refresh.
    pub refresh_token: Option<String>,
}

/// How long an authorization code can be redeemed.
pub const CODE_LIFETIME_SECS: i64 = 60;

/// Settings of the domain layer.
#[derive(Debug, Clone)]
pub struct DomainOptions {
    /// System-level feature values.
    pub system_features: SystemFeatures,
    /// How projections run.
    pub runner: RunnerOptions,
    /// How long a command waits for read models to show its own write.
    pub read_your_writes_timeout: Duration,
}

impl Default for DomainOptions {
    fn default() -> Self {
        DomainOptions {
            system_features: SystemFeatures::default(),
            runner: RunnerOptions::default(),
            read_your_writes_timeout: Duration::from_secs(5),
        }
    }
}

/// Commands and queries over one event store.
pub struct Domain {
    store: Arc<dyn EventStore>,
    runner: Arc<ProjectionRunner>,
    clock: Arc<dyn Clock>,
    options: DomainOptions,
}

impl Domain {
    /// The domain over `store`; call [`Domain::install`] before use.
    pub fn new(store: Arc<dyn EventStore>, clock: Arc<dyn Clock>, options: DomainOptions) -> Self {
        let runner = Arc::new(ProjectionRunner::new(
            store.clone(),
            Self::projections(),
            options.runner,
        ));
        Domain {
            store,
            runner,
            clock,
            options,
        }
    }

    /// Every projection the domain's read models need.
    pub fn projections() -> Vec<Arc<dyn Projection>> {
        vec![
            Arc::new(InstanceProjection),
            Arc::new(AdminTokenProjection),
            Arc::new(UserProjection),
            Arc::new(ApplicationProjection),
            Arc::new(SessionProjection),
            Arc::new(GrantProjection),
            Arc::new(SigningKeyProjection),
            Arc::new(BackChannelDeliveryProjection),
            Arc::new(crate::session::SessionExpiryProjection),
        ]
    }

    /// Installs the projections (their tables and starting points).
    pub async fn install(&self) -> Result<(), DomainError> {
        Ok(self.runner.install().await?)
    }

    /// The projection runner, for the server to drive in the background.
    pub fn runner(&self) -> Arc<ProjectionRunner> {
        self.runner.clone()
    }

    /// The event store.
    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    pub(crate) fn stamp(&self, creator: &str) -> Stamp {
        Stamp {
            creator: creator.to_owned(),
            at: self.clock.now(),
        }
    }

    /// Appends, then waits until the read models of every touched instance show the write.
    pub(crate) async fn commit(
        &self,
        appends: &[AggregateAppend],
    ) -> Result<Vec<StoredEvent>, DomainError> {
        let stored = self.store.append(appends).await?;
        // One wait per instance, for the projections that read what was written.
        let mut touched: std::collections::BTreeMap<&str, (eventstore::Position, Vec<&str>)> =
            Default::default();
        for event in &stored {
            let entry = touched
                .entry(event.aggregate.instance_id.as_str())
                .or_insert((event.position, Vec::new()));
            entry.0 = entry.0.max(event.position);
            if !entry.1.contains(&event.aggregate.aggregate_type.as_str()) {
                entry.1.push(event.aggregate.aggregate_type.as_str());
            }
        }
        for (instance_id, (position, aggregate_types)) in touched {
            self.runner
                .wait_for(
                    instance_id,
                    position,
                    &aggregate_types,
                    self.options.read_your_writes_timeout,
                )
                .await?;
        }
        Ok(stored)
    }

    /// Appends without waiting for read models: for writes that are read back from the log
    /// itself (grants), where waiting would only add latency.
    async fn append(&self, appends: &[AggregateAppend]) -> Result<Vec<StoredEvent>, DomainError> {
        Ok(self.store.append(appends).await?)
    }

    /// Loads an aggregate, decides, appends; retries from a fresh load when another writer won.
    /// Returns once the read models show the write.
    pub(crate) async fn execute<A, F>(
        &self,
        instance_id: &str,
        aggregate_id: &str,
        creator: &str,
        decide: F,
    ) -> Result<(), DomainError>
    where
        A: Aggregate,
        F: Fn(&A) -> Result<Vec<A::Event>, DomainError>,
    {
        self.execute_with::<A, F>(instance_id, aggregate_id, creator, true, decide)
            .await
    }

    /// [`Domain::execute`]; `observed` false skips waiting for read models, for aggregates
    /// that are read back from the log itself (grants).
    async fn execute_with<A, F>(
        &self,
        instance_id: &str,
        aggregate_id: &str,
        creator: &str,
        observed: bool,
        decide: F,
    ) -> Result<(), DomainError>
    where
        A: Aggregate,
        F: Fn(&A) -> Result<Vec<A::Event>, DomainError>,
    {
        let mut attempt = 0;
        loop {
            let loaded = Loaded::<A>::load(self.store.as_ref(), instance_id, aggregate_id).await?;
            let events = decide(&loaded.state)?;
            if events.is_empty() {
                return Ok(());
            }
            let appends = [loaded.append(&events, &self.stamp(creator))];
            let appended = if observed {
                self.commit(&appends).await
            } else {
                self.append(&appends).await
            };
            match appended {
                Err(DomainError::Conflict(_)) if attempt < CONFLICT_RETRIES => attempt += 1,
                other => return other.map(drop),
            }
        }
    }

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
    async fn configure_default_instance(
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
        InstanceView::by_id(self.store.as_ref(), instance_id)
            .await?
            .ok_or_else(|| DomainError::NotFound(format!("instance {instance_id}")))
    }

    /// The instance whose issuer URL has this origin (`scheme://host[:port]`). A request on
    /// another host is answered by the only instance when there is just one (a development
    /// setup answers on 127.0.0.1 as on localhost); once there are several it addresses none
    /// (`NotFound`), never silently the default one.
    pub async fn instance_for_origin(&self, origin: &str) -> Result<InstanceView, DomainError> {
        let mut instances = InstanceView::all(self.store.as_ref()).await?;
        let owner = instances.iter().position(|instance| {
            instance.external_url == origin
                || instance
                    .external_url
                    .strip_prefix(origin)
                    .is_some_and(|rest| rest.starts_with('/'))
        });
        match (owner, instances.len()) {
            (Some(index), _) => Ok(instances.swap_remove(index)),
            (None, 1) => Ok(instances.swap_remove(0)),
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
        InstanceView::default_instance(self.store.as_ref())
            .await?
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

    /// The principal a presented admin token belongs to.
    pub async fn authenticate_admin(
        &self,
        token: &str,
    ) -> Result<Option<AdminPrincipal>, DomainError> {
        AdminPrincipal::authenticate(self.store.as_ref(), token).await
    }

    /// Checks the store and that setup has completed.
    pub async fn check_ready(&self) -> Result<(), DomainError> {
        self.store.check_ready().await?;
        self.default_instance().await.map(drop)
    }

    /// Hashes on a blocking thread: argon2id takes tens of milliseconds on purpose.
    async fn hash(password: String) -> Result<String, DomainError> {
        on_hashing_thread(move || hash_password(&password))
            .await
            .map_err(|error| DomainError::Invalid {
                field: "password",
                reason: format!("hashing was interrupted: {error}"),
            })?
            .map_err(|error| DomainError::Invalid {
                field: "password",
                reason: error.to_string(),
            })
    }

    /// Creates a human user with a unique login name.
    pub async fn add_user(
        &self,
        actor: &AdminPrincipal,
        new: NewUser,
    ) -> Result<UserView, DomainError> {
        let instance_id = &actor.instance_id;
        let name = normalize_username(&new.username)?;
        // Validate before the slow hash; the full decision is made below with it.
        new.profile.validate()?;
        let password_hash = Self::hash(new.password).await?;
        let user_id = uuid::Uuid::now_v7().to_string();
        let mut attempt = 0;
        loop {
            let username =
                Loaded::<Username>::load(self.store.as_ref(), instance_id, &name).await?;
            let claim = username.state.claim(&user_id)?;
            let added =
                User::default().add(&new.username, new.profile.clone(), password_hash.clone())?;
            let stamp = self.stamp(&actor.token_id);
            let appends = [
                username.append(&claim, &stamp),
                create::<User>(instance_id, &user_id, &added, &stamp),
            ];
            match self.commit(&appends).await {
                Err(DomainError::Conflict(_)) if attempt < CONFLICT_RETRIES => attempt += 1,
                Err(other) => return Err(other),
                Ok(_) => return self.user(instance_id, &user_id).await,
            }
        }
    }

    /// The user with this id.
    pub async fn user(&self, instance_id: &str, user_id: &str) -> Result<UserView, DomainError> {
        UserView::by_id(self.store.as_ref(), instance_id, user_id)
            .await?
            .ok_or_else(|| DomainError::NotFound(format!("user {user_id}")))
    }

    /// A page of users ordered by login name, after `after_username`.
    pub async fn users(
        &self,
        instance_id: &str,
        after_username: &str,
        limit: u32,
    ) -> Result<Vec<UserView>, DomainError> {
        UserView::list(
            self.store.as_ref(),
            instance_id,
            after_username,
            i64::from(limit.clamp(1, 500)),
        )
        .await
    }

    /// Replaces a user's profile.
    pub async fn change_profile(
        &self,
        actor: &AdminPrincipal,
        user_id: &str,
        profile: Profile,
    ) -> Result<UserView, DomainError> {
        self.execute::<User, _>(&actor.instance_id, user_id, &actor.token_id, |user| {
            user.change_profile(profile.clone())
        })
        .await?;
        self.user(&actor.instance_id, user_id).await
    }

    /// Sets a new password.
    pub async fn set_password(
        &self,
        actor: &AdminPrincipal,
        user_id: &str,
        password: String,
    ) -> Result<(), DomainError> {
        let password_hash = Self::hash(password).await?;
        self.execute::<User, _>(&actor.instance_id, user_id, &actor.token_id, |user| {
            user.set_password(password_hash.clone())
        })
        .await
    }

    /// Stops a user from signing in and ends the user's sessions, in one transaction.
    pub async fn deactivate_user(
        &self,
        actor: &AdminPrincipal,
        user_id: &str,
        origin: &str,
    ) -> Result<UserView, DomainError> {
        self.change_user_and_end_sessions(
            actor,
            user_id,
            origin,
            TerminationReason::UserDeactivated,
            User::deactivate,
        )
        .await?;
        self.user(&actor.instance_id, user_id).await
    }

    /// Lets a deactivated user sign in again.
    pub async fn reactivate_user(
        &self,
        actor: &AdminPrincipal,
        user_id: &str,
    ) -> Result<UserView, DomainError> {
        self.execute::<User, _>(
            &actor.instance_id,
            user_id,
            &actor.token_id,
            User::reactivate,
        )
        .await?;
        self.user(&actor.instance_id, user_id).await
    }

    /// Removes a user, frees the login name and ends the user's sessions, in one transaction.
    pub async fn remove_user(
        &self,
        actor: &AdminPrincipal,
        user_id: &str,
        origin: &str,
    ) -> Result<(), DomainError> {
        self.change_user_and_end_sessions(
            actor,
            user_id,
            origin,
            TerminationReason::UserRemoved,
            User::remove,
        )
        .await
    }

    async fn change_user_and_end_sessions(
        &self,
        actor: &AdminPrincipal,
        user_id: &str,
        origin: &str,
        reason: TerminationReason,
        decide: fn(&User) -> Result<Vec<crate::user::UserEvent>, DomainError>,
    ) -> Result<(), DomainError> {
        let instance_id = &actor.instance_id;
        let mut attempt = 0;
        loop {
            let user = Loaded::<User>::load(self.store.as_ref(), instance_id, user_id).await?;
            let events = decide(&user.state)?;
            if events.is_empty() {
                return Ok(());
            }
            let stamp = self.stamp(&actor.token_id);
            let mut appends = vec![user.append(&events, &stamp)];
            if reason == TerminationReason::UserRemoved {
                let name = normalize_username(&user.state.username)?;
                let username =
                    Loaded::<Username>::load(self.store.as_ref(), instance_id, &name).await?;
                let released = username.state.release(user_id);
                if !released.is_empty() {
                    appends.push(username.append(&released, &stamp));
                }
            }
            appends.extend(
                self.session_terminations(instance_id, user_id, reason, origin, &stamp)
                    .await?,
            );
            match self.commit(&appends).await {
                Err(DomainError::Conflict(_)) if attempt < CONFLICT_RETRIES => attempt += 1,
                other => return other.map(drop),
            }
        }
    }

    /// Appends ending every live session of a user.
    async fn session_terminations(
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
    async fn terminations_of(
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
        let rows = self
            .store
            .query(
                "SELECT DISTINCT a.name FROM oidc_grants g JOIN applications a
                   ON a.instance_id = g.instance_id AND a.client_id = g.client_id
                 WHERE g.instance_id = $1 AND g.session_id = $2 ORDER BY a.name",
                &[instance_id.into(), session_id.into()],
            )
            .await?;
        rows.iter().map(|row| Ok(row.text(0)?.to_owned())).collect()
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
        let mut ended = 0;
        for sessions in live.chunks(SIGN_OUT_CHUNK) {
            let mut attempt = 0;
            ended += loop {
                let appends = self
                    .terminations_of(instance_id, sessions, reason, origin, &stamp)
                    .await?;
                if appends.is_empty() {
                    break 0;
                }
                match self.commit(&appends).await {
                    Err(DomainError::Conflict(_)) if attempt < CONFLICT_RETRIES => attempt += 1,
                    other => break other.map(|_| appends.len())?,
                }
            };
        }
        Ok(ended)
    }

    /// Checks a sign-in: the user a login name or e-mail refers to, if active and the password
    /// matches. Never says which part was wrong.
    pub async fn check_password(
        &self,
        instance_id: &str,
        login: &str,
        password: String,
    ) -> Result<Option<UserView>, DomainError> {
        let user = UserView::by_login(self.store.as_ref(), instance_id, login).await?;
        // Hash even for unknown users, so timing does not tell whether a login name exists.
        let hash = user
            .as_ref()
            .map_or_else(|| DUMMY_HASH.clone(), |user| user.password_hash.clone());
        let matches = on_hashing_thread(move || verify_password(&hash, &password))
            .await
            .unwrap_or(false);
        Ok(user.filter(|user| matches && user.state == crate::user::UserState::Active))
    }

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
        ApplicationView::by_client_id(self.store.as_ref(), instance_id, client_id)
            .await?
            .ok_or_else(|| DomainError::NotFound(format!("application {client_id}")))
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
    async fn check_back_channel_scheme(
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
        let app =
            ApplicationView::by_client_id(self.store.as_ref(), instance_id, client_id).await?;
        Ok(app.filter(|app| app.secret_matches(secret)))
    }

    /// Issues an authorization code; returns the code (stored only as a hash).
    pub async fn issue_code(
        &self,
        instance_id: &str,
        request: CodeRequest,
    ) -> Result<String, DomainError> {
        let grant_id = uuid::Uuid::now_v7().simple().to_string();
        let code = grant_token(&grant_id);
        let now = self.clock.now();
        let issued = CodeIssued {
            session_id: request.session_id,
            client_id: request.client_id,
            user_id: request.user_id.clone(),
            code_hash: admin_token::hash_token(&code),
            redirect_uri: request.redirect_uri,
            scopes: request.scopes,
            nonce: request.nonce,
            code_challenge: request.code_challenge,
            auth_time: request.auth_time,
            expires_at: now + chrono::Duration::seconds(CODE_LIFETIME_SECS),
        };
        let events = [crate::grant::GrantEvent::CodeIssued(issued)];
        self.append(&[create::<Grant>(
            instance_id,
            &grant_id,
            &events,
            &self.stamp(&request.user_id),
        )])
        .await?;
        Ok(code)
    }

    /// Redeems a code at the token endpoint. `pkce_verified` tells, given the code's stored
    /// challenge, whether the request's code_verifier matches (checked by the protocol layer).
    /// A second redemption of the same code revokes every token it issued.
    pub async fn redeem_code(
        &self,
        instance_id: &str,
        app: &ApplicationView,
        code: &str,
        redirect_uri: Option<&str>,
        pkce_verified: &(dyn Fn(Option<&str>) -> bool + Send + Sync),
    ) -> Result<IssuedTokens, DomainError> {
        let client_id = app.client_id.as_str();
        let now = self.clock.now();
        let (token, grant) = TokenView::load(
            self.store.as_ref(),
            instance_id,
            code,
            &admin_token::hash_token(code),
            now,
        )
        .await?
        .filter(|(token, _)| token.kind == TokenKind::Code)
        .ok_or(GrantRejection::Invalid("code"))?;
        let issued = grant
            .state
            .code
            .clone()
            .ok_or(GrantRejection::Invalid("code"))?;
        if grant.state.code_redeemed {
            if issued.client_id == client_id {
                let revoked = grant.state.revoke(RevocationReason::CodeReplayed);
                if !revoked.is_empty() {
                    // Best effort: a concurrent revocation is just as good.
                    let _ = self
                        .append(&[grant.append(&revoked, &self.stamp(client_id))])
                        .await;
                }
            }
            return Err(GrantRejection::Invalid("code").into());
        }
        if !pkce_verified(issued.code_challenge.as_deref()) {
            return Err(GrantRejection::Invalid("code").into());
        }
        // A code dies with its session: the user signed out before the client redeemed it.
        if token.session_over {
            return Err(GrantRejection::Invalid("code").into());
        }
        let (tokens, access_token, refresh_token) = self.new_tokens(
            &token.grant_id,
            &app.config,
            AccessTokenBinding::Session,
            None,
            now,
        );
        let events = grant
            .state
            .redeem_code(client_id, redirect_uri, tokens, now)?;
        // Another request redeemed the code at the same moment: this one is the replay.
        self.issue_tokens(instance_id, app, &grant, &events, &issued)
            .await
            .map_err(|error| match error {
                DomainError::Conflict(_) => GrantRejection::Invalid("code").into(),
                other => other,
            })?;
        Ok(IssuedTokens {
            grant_id: token.grant_id,
            scopes: issued.scopes.clone(),
            code: issued,
            access_token,
            expires_in: app.config.access_token_lifetime_secs,
            refresh_token,
        })
    }

    /// Rotates a refresh token. Presenting an already rotated refresh token revokes the grant
    /// (it was leaked or replayed). `narrow_scope` is given the grant's scopes and answers the
    /// new access token's (the protocol layer's RFC 6749 §6 rule), or `None` when the request
    /// asked for more than was granted; it is asked before anything is written, so a refused
    /// scope leaves the refresh token usable.
    ///
    /// While the session is live the new access token is bound to it; after the session ended
    /// (only an `offline_access` refresh token still works then) it is bound to the grant.
    pub async fn refresh(
        &self,
        instance_id: &str,
        app: &ApplicationView,
        refresh_token: &str,
        narrow_scope: &(dyn Fn(&[String]) -> Option<Vec<String>> + Send + Sync),
    ) -> Result<IssuedTokens, DomainError> {
        let client_id = app.client_id.as_str();
        let now = self.clock.now();
        let presented = admin_token::hash_token(refresh_token);
        let (token, grant) = TokenView::load(
            self.store.as_ref(),
            instance_id,
            refresh_token,
            &presented,
            now,
        )
        .await?
        .filter(|(token, _)| token.kind == TokenKind::Refresh)
        .ok_or(GrantRejection::Invalid("refresh token"))?;
        if token.client_id != client_id {
            return Err(GrantRejection::OtherClient("refresh token").into());
        }
        if token.superseded && grant.state.refresh_token_hash.as_deref() != Some(presented.as_str())
        {
            let revoked = grant.state.revoke(RevocationReason::RefreshTokenReplayed);
            if !revoked.is_empty() {
                let _ = self
                    .append(&[grant.append(&revoked, &self.stamp(client_id))])
                    .await;
            }
            return Err(GrantRejection::Invalid("refresh token").into());
        }
        if !token.is_active(now) {
            return Err(GrantRejection::Invalid("refresh token").into());
        }
        let code = grant
            .state
            .code
            .clone()
            .ok_or(GrantRejection::Invalid("refresh token"))?;
        let scopes = narrow_scope(&code.scopes).ok_or(GrantRejection::ScopeExceeded)?;
        let binding = if token.session_over {
            AccessTokenBinding::OfflineGrant
        } else {
            AccessTokenBinding::Session
        };
        let as_set = |scopes: &[String]| scopes.iter().cloned().collect::<BTreeSet<_>>();
        let narrowed = (as_set(&scopes) != as_set(&code.scopes)).then(|| scopes.clone());
        let (tokens, access_token, refresh_token) =
            self.new_tokens(&token.grant_id, &app.config, binding, narrowed, now);
        let events = grant.state.refresh(client_id, &presented, tokens, now)?;
        self.issue_tokens(instance_id, app, &grant, &events, &code)
            .await
            .map_err(|error| match error {
                DomainError::Conflict(_) => GrantRejection::Invalid("refresh token").into(),
                other => other,
            })?;
        Ok(IssuedTokens {
            grant_id: token.grant_id,
            code,
            scopes,
            access_token,
            expires_in: app.config.access_token_lifetime_secs,
            refresh_token,
        })
    }

    /// Appends a grant's token events together with the back-channel registration they call
    /// for, in one transaction: an application holding tokens of a session is always known to
    /// the notifier. A conflict on the grant is returned (the code or refresh token was used
    /// concurrently); one on the registration (another application of the same session got
    /// tokens at the same moment) is retried.
    async fn issue_tokens(
        &self,
        instance_id: &str,
        app: &ApplicationView,
        grant: &Loaded<Grant>,
        events: &[crate::grant::GrantEvent],
        code: &CodeIssued,
    ) -> Result<(), DomainError> {
        let stamp = self.stamp(&app.client_id);
        let mut attempt = 0;
        loop {
            let mut appends = vec![grant.append(events, &stamp)];
            appends.extend(
                self.back_channel_registration(instance_id, app, code)
                    .await?,
            );
            match self.append(&appends).await {
                Err(DomainError::Conflict(eventstore::StoreError::Conflict {
                    aggregate, ..
                })) if aggregate.aggregate_type == SessionLogout::TYPE
                    && attempt < CONFLICT_RETRIES =>
                {
                    attempt += 1;
                }
                other => return other.map(drop),
            }
        }
    }

    /// The registration to record with tokens issued to `app` for `code`'s session, when the
    /// application has a back-channel logout URI and the feature is on for the instance.
    async fn back_channel_registration(
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

    /// Ends every live session whose lifetime ran out by now (reason `expired`, origin the
    /// instance's external URL); returns how many it ended. Safe to run in several processes:
    /// ending an ended session records nothing.
    pub async fn expire_sessions(&self, limit: u32) -> Result<usize, DomainError> {
        let expired =
            crate::session::expired_sessions(self.store.as_ref(), self.clock.now(), limit).await?;
        let mut origins: std::collections::HashMap<String, String> = Default::default();
        for (instance_id, session_id) in &expired {
            if !origins.contains_key(instance_id) {
                let instance = self.instance(instance_id).await?;
                origins.insert(instance_id.clone(), instance.external_url);
            }
            self.terminate_session(
                instance_id,
                session_id,
                TerminationReason::Expired,
                &origins[instance_id],
                "session_expiry",
            )
            .await?;
        }
        Ok(expired.len())
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
        let mut attempt = 0;
        loop {
            let mut appends = Vec::new();
            for (instance_id, by_session) in &by_instance {
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
                        appends.push(logout.append(&events, &stamp));
                    }
                }
            }
            if appends.is_empty() {
                return Ok(());
            }
            match self.commit(&appends).await {
                Err(DomainError::Conflict(_)) if attempt < CONFLICT_RETRIES => attempt += 1,
                other => return other.map(drop),
            }
        }
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

    fn new_tokens(
        &self,
        grant_id: &str,
        config: &OidcConfig,
        access_token_binding: AccessTokenBinding,
        access_token_scopes: Option<Vec<String>>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> (TokensIssued, String, Option<String>) {
        let access_token = grant_token(grant_id);
        let refresh_token = config
            .grant_types
            .contains(&crate::application::GrantType::RefreshToken)
            .then(|| grant_token(grant_id));
        let tokens = TokensIssued {
            access_token_hash: admin_token::hash_token(&access_token),
            access_expires_at: now
                + chrono::Duration::seconds(i64::from(config.access_token_lifetime_secs)),
            access_token_binding,
            access_token_scopes,
            refresh_token_hash: refresh_token.as_deref().map(admin_token::hash_token),
            refresh_expires_at: refresh_token.as_ref().map(|_| {
                now + chrono::Duration::seconds(i64::from(config.refresh_token_lifetime_secs))
            }),
        };
        (tokens, access_token, refresh_token)
    }

    /// A token (access or refresh) and whether it is active now; for introspection and UserInfo.
    pub async fn token(
        &self,
        instance_id: &str,
        token: &str,
    ) -> Result<Option<(TokenView, bool)>, DomainError> {
        let now = self.clock.now();
        let view = TokenView::load(
            self.store.as_ref(),
            instance_id,
            token,
            &admin_token::hash_token(token),
            now,
        )
        .await?;
        Ok(view
            .map(|(view, _)| view)
            .filter(|view| view.kind != TokenKind::Code)
            .map(|view| {
                let active = view.is_active(now);
                (view, active)
            }))
    }

    /// Revokes the grant a token belongs to, if the token is the client's (RFC 7009: unknown
    /// tokens are not an error).
    pub async fn revoke_token(
        &self,
        instance_id: &str,
        client_id: &str,
        token: &str,
    ) -> Result<(), DomainError> {
        let Some((view, _)) = self.token(instance_id, token).await? else {
            return Ok(());
        };
        if view.client_id != client_id {
            return Ok(());
        }
        self.execute_with::<Grant, _>(instance_id, &view.grant_id, client_id, false, |grant| {
            Ok(grant.revoke(RevocationReason::RevokedByClient))
        })
        .await
    }

    /// An instance's signing keys that are still published, newest first.
    pub async fn signing_keys(
        &self,
        instance_id: &str,
    ) -> Result<Vec<SigningKeyRecord>, DomainError> {
        let now = self.clock.now();
        let keys = SigningKeyRecord::of_instance(self.store.as_ref(), instance_id).await?;
        Ok(keys
            .into_iter()
            .filter(|key| key.publish_until > now)
            .collect())
    }

    /// Adds a signing key unless one for its algorithm is current (another process may have
    /// just added one); returns whether this one was added.
    pub async fn add_signing_key(
        &self,
        instance_id: &str,
        key: SigningKeyAdded,
    ) -> Result<bool, DomainError> {
        let mut attempt = 0;
        loop {
            let keys =
                Loaded::<SigningKeys>::load(self.store.as_ref(), instance_id, instance_id).await?;
            let events = keys.state.add(key.clone(), self.clock.now());
            if events.is_empty() {
                // Make sure this process's read model shows the key that won.
                self.runner
                    .wait_for(
                        instance_id,
                        keys.position,
                        &[SigningKeys::TYPE],
                        self.options.read_your_writes_timeout,
                    )
                    .await?;
                return Ok(false);
            }
            match self
                .commit(&[keys.append(&events, &self.stamp("system"))])
                .await
            {
                Err(DomainError::Conflict(_)) if attempt < CONFLICT_RETRIES => attempt += 1,
                other => return other.map(|_| true),
            }
        }
    }

    /// The current time as the domain sees it.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }
}

/// A random 256-bit token, hex-encoded.
fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// A real argon2id hash (same cost as users' hashes), verified against when the login name is
/// unknown.
static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    hash_password("no user has this password").expect("hashing a fixed valid password succeeds")
});
