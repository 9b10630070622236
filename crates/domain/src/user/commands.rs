//! User commands and queries: adding (with a unique login name), profile and password changes,
//! deactivation and removal (which end the user's sessions), sign-in checks.

use crate::admin_token::AdminPrincipal;
use crate::aggregate::{Loaded, create};
use crate::error::DomainError;
use crate::features::Feature;
use crate::service::{Domain, retry_on_conflict};
use crate::session::TerminationReason;
use crate::user::{
    Profile, User, UserView, Username, hash_password, normalize_username, on_hashing_thread,
    verify_password,
};

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

impl Domain {
    /// Hashes on a blocking thread: argon2id takes tens of milliseconds on purpose.
    pub(crate) async fn hash(password: String) -> Result<String, DomainError> {
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
        let NewUser {
            username,
            profile,
            password,
        } = new;
        let password_hash = Self::hash(password).await?;
        let user_id = uuid::Uuid::now_v7().to_string();
        let (user_id, name, password_hash) = (&user_id, &name, &password_hash);
        let (username_given, profile) = (&username, &profile);
        retry_on_conflict(|| async move {
            let username = Loaded::<Username>::load(self.store.as_ref(), instance_id, name).await?;
            let claim = username.state.claim(user_id)?;
            let added =
                User::default().add(username_given, profile.clone(), password_hash.clone())?;
            let stamp = self.stamp(&actor.token_id);
            let appends = [
                username.append(&claim, &stamp),
                create::<User>(instance_id, user_id, &added, &stamp),
            ];
            match self.commit(&appends).await {
                Err(other) => Err(other),
                Ok(_) => self.user(instance_id, user_id).await,
            }
        })
        .await
    }

    /// The user with this id.
    pub async fn user(&self, instance_id: &str, user_id: &str) -> Result<UserView, DomainError> {
        UserView::by_id(self.store.as_ref(), instance_id, user_id)
            .await?
            .ok_or_else(|| DomainError::NotFound(format!("user {user_id}")))
    }

    /// A page of an instance's users whose login name or e-mail address starts with
    /// `starts_with` (case-insensitive), by login name, after `after_username`.
    pub async fn find_users(
        &self,
        instance_id: &str,
        starts_with: &str,
        after_username: &str,
        limit: u32,
    ) -> Result<Vec<UserView>, DomainError> {
        UserView::find(
            self.store.as_ref(),
            instance_id,
            starts_with,
            after_username,
            i64::from(limit.clamp(1, 500)),
        )
        .await
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

    /// Sets a new password. Unless the instance turns `end_sessions_on_credential_change` off,
    /// the user's live sessions end in the same transaction (reason `credential_changed`, told
    /// to their applications like any other end): whoever held the old password is signed out.
    pub async fn set_password(
        &self,
        actor: &AdminPrincipal,
        user_id: &str,
        password: String,
        origin: &str,
    ) -> Result<(), DomainError> {
        let password_hash = Self::hash(password).await?;
        let change = |user: &User| user.set_password(password_hash.clone());
        let end_sessions = self
            .feature(&actor.instance_id, Feature::EndSessionsOnCredentialChange)
            .await?
            .effective;
        if !end_sessions {
            return self
                .execute::<User, _>(&actor.instance_id, user_id, &actor.token_id, change)
                .await;
        }
        self.change_user_and_end_sessions(
            actor,
            user_id,
            origin,
            TerminationReason::CredentialChanged,
            change,
        )
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

    pub(crate) async fn change_user_and_end_sessions(
        &self,
        actor: &AdminPrincipal,
        user_id: &str,
        origin: &str,
        reason: TerminationReason,
        decide: impl Fn(&User) -> Result<Vec<crate::user::UserEvent>, DomainError>,
    ) -> Result<(), DomainError> {
        let instance_id = &actor.instance_id;
        let decide = &decide;
        retry_on_conflict(|| async move {
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
            self.commit(&appends).await.map(drop)
        })
        .await
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
}

/// A real argon2id hash (same cost as users' hashes), verified against when the login name is
/// unknown.
static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    hash_password("no user has this password").expect("hashing a fixed valid password succeeds")
});
