//! The `users` read model: profile, lifecycle state and password hash for sign-in.

use async_trait::async_trait;
use eventstore::{BoxError, EventStore, Projection, ReadModelTx, SqlRow, SqlValue, StoredEvent};

use super::{Profile, User, UserEvent, UserState, normalize_username};
use crate::aggregate::{Aggregate, decode};
use crate::error::DomainError;

/// Folds user events into `users`.
pub struct UserProjection;

#[async_trait]
impl Projection for UserProjection {
    fn name(&self) -> &'static str {
        "users"
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &[User::TYPE]
    }

    fn schema(&self) -> &'static [&'static str] {
        &[
            "CREATE TABLE IF NOT EXISTS users (
                instance_id     TEXT NOT NULL,
                user_id         TEXT NOT NULL,
                username        TEXT NOT NULL,
                username_lower  TEXT NOT NULL,
                email           TEXT,
                email_lower     TEXT,
                email_verified  BOOLEAN NOT NULL,
                given_name      TEXT,
                family_name     TEXT,
                password_hash   TEXT NOT NULL,
                state           TEXT NOT NULL,
                created_at      TEXT NOT NULL,
                updated_at      TEXT NOT NULL,
                PRIMARY KEY (instance_id, user_id)
            )",
            "CREATE INDEX IF NOT EXISTS users_by_username ON users (instance_id, username_lower)",
            "CREATE INDEX IF NOT EXISTS users_by_email ON users (instance_id, email_lower)",
        ]
    }

    async fn apply(&self, tx: &mut dyn ReadModelTx, event: &StoredEvent) -> Result<(), BoxError> {
        let key = || {
            [
                SqlValue::from(event.aggregate.instance_id.as_str()),
                event.aggregate.aggregate_id.as_str().into(),
            ]
        };
        let at = SqlValue::from(event.created_at.to_rfc3339());
        match decode::<UserEvent>(event)? {
            UserEvent::HumanAdded(added) => {
                let [instance_id, user_id] = key();
                let profile = profile_values(&added.profile);
                tx.execute(
                    "INSERT INTO users (instance_id, user_id, username, username_lower, email, email_lower,
                        email_verified, given_name, family_name, password_hash, state, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)
                     ON CONFLICT (instance_id, user_id) DO NOTHING",
                    &[
                        instance_id,
                        user_id,
                        added.username.as_str().into(),
                        normalize_username(&added.username).unwrap_or_else(|_| added.username.to_lowercase()).into(),
                        profile[0].clone(),
                        profile[1].clone(),
                        profile[2].clone(),
                        profile[3].clone(),
                        profile[4].clone(),
                        added.password_hash.into(),
                        UserState::Active.as_str().into(),
                        at,
                    ],
                )
                .await?;
            }
            UserEvent::ProfileChanged(changed) => {
                let [instance_id, user_id] = key();
                let [email, email_lower, verified, given, family] =
                    profile_values(&changed.profile);
                tx.execute(
                    "UPDATE users SET email = $3, email_lower = $4, email_verified = $5, given_name = $6,
                        family_name = $7, updated_at = $8 WHERE instance_id = $1 AND user_id = $2",
                    &[instance_id, user_id, email, email_lower, verified, given, family, at],
                )
                .await?;
            }
            UserEvent::PasswordChanged(changed) => {
                let [instance_id, user_id] = key();
                tx.execute(
                    "UPDATE users SET password_hash = $3, updated_at = $4 WHERE instance_id = $1 AND user_id = $2",
                    &[instance_id, user_id, changed.password_hash.into(), at],
                )
                .await?;
            }
            UserEvent::Deactivated(_) => set_state(tx, key(), UserState::Inactive, at).await?,
            UserEvent::Reactivated(_) => set_state(tx, key(), UserState::Active, at).await?,
            UserEvent::Removed(_) => {
                let [instance_id, user_id] = key();
                tx.execute(
                    "DELETE FROM users WHERE instance_id = $1 AND user_id = $2",
                    &[instance_id, user_id],
                )
                .await?;
            }
        }
        Ok(())
    }
}

async fn set_state(
    tx: &mut dyn ReadModelTx,
    key: [SqlValue; 2],
    state: UserState,
    at: SqlValue,
) -> Result<(), BoxError> {
    let [instance_id, user_id] = key;
    tx.execute(
        "UPDATE users SET state = $3, updated_at = $4 WHERE instance_id = $1 AND user_id = $2",
        &[instance_id, user_id, state.as_str().into(), at],
    )
    .await?;
    Ok(())
}

fn profile_values(profile: &Profile) -> [SqlValue; 5] {
    [
        SqlValue::Text(profile.email.clone()),
        SqlValue::Text(profile.email.as_deref().map(str::to_lowercase)),
        profile.email_verified.into(),
        SqlValue::Text(profile.given_name.clone()),
        SqlValue::Text(profile.family_name.clone()),
    ]
}

/// A user as read models show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserView {
    /// The instance the user belongs to.
    pub instance_id: String,
    /// The user's id (the `sub` claim).
    pub user_id: String,
    /// The login name.
    pub username: String,
    /// Profile data.
    pub profile: Profile,
    /// `active` or `inactive`.
    pub state: UserState,
    /// The argon2id hash, for sign-in.
    pub password_hash: String,
    /// When the user was created (RFC 3339).
    pub created_at: String,
}

/// A `SELECT` of the columns `UserView::from_row` reads, followed by `$tail`.
macro_rules! select_users {
    ($tail:literal) => {
        concat!(
            "SELECT instance_id, user_id, username, email, email_verified, given_name, family_name, state, \
             password_hash, created_at FROM users ",
            $tail
        )
    };
}

impl UserView {
    fn from_row(row: &SqlRow) -> Result<Self, DomainError> {
        let state = match row.text(7)? {
            "inactive" => UserState::Inactive,
            _ => UserState::Active,
        };
        Ok(UserView {
            instance_id: row.text(0)?.to_owned(),
            user_id: row.text(1)?.to_owned(),
            username: row.text(2)?.to_owned(),
            profile: Profile {
                email: row.opt_text(3)?.map(str::to_owned),
                email_verified: row.bool(4)?,
                given_name: row.opt_text(5)?.map(str::to_owned),
                family_name: row.opt_text(6)?.map(str::to_owned),
            },
            state,
            password_hash: row.text(8)?.to_owned(),
            created_at: row.text(9)?.to_owned(),
        })
    }

    /// The user with this id.
    pub async fn by_id(
        store: &dyn EventStore,
        instance_id: &str,
        user_id: &str,
    ) -> Result<Option<Self>, DomainError> {
        let rows = store
            .query(
                select_users!("WHERE instance_id = $1 AND user_id = $2"),
                &[instance_id.into(), user_id.into()],
            )
            .await?;
        rows.first().map(Self::from_row).transpose()
    }

    /// The user a sign-in name refers to: a login name, or an e-mail address that exactly one
    /// user has.
    pub async fn by_login(
        store: &dyn EventStore,
        instance_id: &str,
        login: &str,
    ) -> Result<Option<Self>, DomainError> {
        let rows = store
            .query(
                select_users!(
                    "WHERE instance_id = $1 AND (username_lower = $2 OR email_lower = $2) \
                     ORDER BY CASE WHEN username_lower = $2 THEN 0 ELSE 1 END LIMIT 2"
                ),
                &[instance_id.into(), login.to_lowercase().into()],
            )
            .await?;
        let users = rows
            .iter()
            .map(Self::from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(match users.as_slice() {
            [only] => Some(only.clone()),
            [first, _] if first.username.to_lowercase() == login.to_lowercase() => {
                Some(first.clone())
            }
            _ => None,
        })
    }

    /// A page of an instance's users whose login name or e-mail address starts with
    /// `starts_with` (case-insensitive), by login name.
    pub async fn find(
        store: &dyn EventStore,
        instance_id: &str,
        starts_with: &str,
        after_username: &str,
        limit: i64,
    ) -> Result<Vec<Self>, DomainError> {
        // LIKE's wildcards in what was typed are meant literally.
        let mut pattern = String::with_capacity(starts_with.len() + 1);
        for c in starts_with.to_lowercase().chars() {
            if matches!(c, '\\' | '%' | '_') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        let rows = store
            .query(
                select_users!(
                    "WHERE instance_id = $1 AND username_lower > $2 \
                     AND (username_lower LIKE $3 ESCAPE '\\' OR email_lower LIKE $3 ESCAPE '\\') \
                     ORDER BY username_lower LIMIT $4"
                ),
                &[
                    instance_id.into(),
                    after_username.to_lowercase().into(),
                    pattern.into(),
                    limit.into(),
                ],
            )
            .await?;
        rows.iter().map(Self::from_row).collect()
    }

    /// A page of an instance's users, by login name.
    pub async fn list(
        store: &dyn EventStore,
        instance_id: &str,
        after_username: &str,
        limit: i64,
    ) -> Result<Vec<Self>, DomainError> {
        let rows = store
            .query(
                select_users!("WHERE instance_id = $1 AND username_lower > $2 ORDER BY username_lower LIMIT $3"),
                &[instance_id.into(), after_username.to_lowercase().into(), limit.into()],
            )
            .await?;
        rows.iter().map(Self::from_row).collect()
    }
}
