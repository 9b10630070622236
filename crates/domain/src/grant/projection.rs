//! The `oidc_grants` and `oidc_tokens` read models: a token's hash leads to its grant, and
//! the grant's session decides whether non-offline tokens still live.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use eventstore::{BoxError, EventStore, Projection, ReadModelTx, SqlRow, SqlValue, StoredEvent};

use super::{Grant, GrantEvent};
use crate::aggregate::{Aggregate, decode};
use crate::error::DomainError;

/// Folds grant events into `oidc_grants` and `oidc_tokens`.
pub struct GrantProjection;

#[async_trait]
impl Projection for GrantProjection {
    fn name(&self) -> &'static str {
        "oidc_grants"
    }

    fn aggregate_types(&self) -> &'static [&'static str] {
        &[Grant::TYPE]
    }

    fn schema(&self) -> &'static [&'static str] {
        &[
            "CREATE TABLE IF NOT EXISTS oidc_grants (
                instance_id TEXT NOT NULL,
                grant_id    TEXT NOT NULL,
                session_id  TEXT NOT NULL,
                client_id   TEXT NOT NULL,
                user_id     TEXT NOT NULL,
                scopes      TEXT NOT NULL,
                nonce       TEXT,
                auth_time   TEXT NOT NULL,
                offline     BOOLEAN NOT NULL,
                revoked     BOOLEAN NOT NULL,
                PRIMARY KEY (instance_id, grant_id)
            )",
            "CREATE INDEX IF NOT EXISTS oidc_grants_by_session ON oidc_grants (instance_id, session_id)",
            "CREATE TABLE IF NOT EXISTS oidc_tokens (
                token_hash  TEXT PRIMARY KEY,
                instance_id TEXT NOT NULL,
                grant_id    TEXT NOT NULL,
                kind        TEXT NOT NULL,
                expires_at  TEXT NOT NULL,
                superseded  BOOLEAN NOT NULL
            )",
            "CREATE INDEX IF NOT EXISTS oidc_tokens_by_grant ON oidc_tokens (instance_id, grant_id)",
        ]
    }

    async fn apply(&self, tx: &mut dyn ReadModelTx, event: &StoredEvent) -> Result<(), BoxError> {
        let instance_id = || SqlValue::from(event.aggregate.instance_id.as_str());
        let grant_id = || SqlValue::from(event.aggregate.aggregate_id.as_str());
        match decode::<GrantEvent>(event)? {
            GrantEvent::CodeIssued(code) => {
                let offline = code.scopes.iter().any(|scope| scope == "offline_access");
                tx.execute(
                    "INSERT INTO oidc_grants (instance_id, grant_id, session_id, client_id, user_id, scopes, nonce,
                        auth_time, offline, revoked)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (instance_id, grant_id) DO NOTHING",
                    &[
                        instance_id(),
                        grant_id(),
                        code.session_id.into(),
                        code.client_id.into(),
                        code.user_id.into(),
                        code.scopes.join(" ").into(),
                        code.nonce.into(),
                        code.auth_time.to_rfc3339().into(),
                        offline.into(),
                        false.into(),
                    ],
                )
                .await?;
                insert_token(tx, event, &code.code_hash, TokenKind::Code, code.expires_at).await?;
            }
            GrantEvent::TokensIssued(tokens) => {
                // A new token set supersedes the code and the previous refresh token.
                tx.execute(
                    "UPDATE oidc_tokens SET superseded = $3 WHERE instance_id = $1 AND grant_id = $2 AND kind <> 'access'",
                    &[instance_id(), grant_id(), true.into()],
                )
                .await?;
                insert_token(
                    tx,
                    event,
                    &tokens.access_token_hash,
                    TokenKind::Access,
                    tokens.access_expires_at,
                )
                .await?;
                if let (Some(hash), Some(expires_at)) =
                    (&tokens.refresh_token_hash, tokens.refresh_expires_at)
                {
                    insert_token(tx, event, hash, TokenKind::Refresh, expires_at).await?;
                }
            }
            GrantEvent::Revoked(_) => {
                tx.execute(
                    "UPDATE oidc_grants SET revoked = $3 WHERE instance_id = $1 AND grant_id = $2",
                    &[instance_id(), grant_id(), true.into()],
                )
                .await?;
            }
        }
        Ok(())
    }
}

async fn insert_token(
    tx: &mut dyn ReadModelTx,
    event: &StoredEvent,
    hash: &str,
    kind: TokenKind,
    expires_at: DateTime<Utc>,
) -> Result<(), BoxError> {
    tx.execute(
        "INSERT INTO oidc_tokens (token_hash, instance_id, grant_id, kind, expires_at, superseded)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (token_hash) DO NOTHING",
        &[
            hash.into(),
            event.aggregate.instance_id.as_str().into(),
            event.aggregate.aggregate_id.as_str().into(),
            kind.as_str().into(),
            expires_at.to_rfc3339().into(),
            false.into(),
        ],
    )
    .await?;
    Ok(())
}

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// An authorization code.
    Code,
    /// An access token.
    Access,
    /// A refresh token.
    Refresh,
}

impl TokenKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Code => "code",
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        [TokenKind::Code, TokenKind::Access, TokenKind::Refresh]
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

/// A token, its grant and whether it is usable now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenView {
    /// What it is.
    pub kind: TokenKind,
    /// The grant that issued it.
    pub grant_id: String,
    /// The grant's session.
    pub session_id: String,
    /// The client.
    pub client_id: String,
    /// The user (`sub`).
    pub user_id: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// The authorization request's nonce.
    pub nonce: Option<String>,
    /// When the user authenticated (RFC 3339).
    pub auth_time: String,
    /// When the token expires.
    pub expires_at: DateTime<Utc>,
    /// Whether the grant includes offline_access.
    pub offline: bool,
    /// Whether a newer token set replaced it (codes and refresh tokens).
    pub superseded: bool,
    /// Whether the grant was revoked.
    pub revoked: bool,
    /// Whether the session is over (ended, expired or gone).
    pub session_over: bool,
}

impl TokenView {
    fn from_row(row: &SqlRow, now: DateTime<Utc>) -> Result<Self, DomainError> {
        let unreadable = |what: &str| DomainError::UnreadableEvent {
            event_type: "oidc_tokens read model".into(),
            aggregate: format!("grant {}", row.text(1).unwrap_or("?")),
            reason: format!("bad {what}"),
        };
        let parse_time =
            |text: &str| DateTime::parse_from_rfc3339(text).map(|time| time.with_timezone(&Utc));
        let session_expired = match row.opt_text(13)? {
            Some(expires_at) => {
                parse_time(expires_at).map_err(|_| unreadable("session expiry"))? <= now
            }
            None => true,
        };
        Ok(TokenView {
            kind: TokenKind::parse(row.text(0)?).ok_or_else(|| unreadable("kind"))?,
            grant_id: row.text(1)?.to_owned(),
            session_id: row.text(2)?.to_owned(),
            client_id: row.text(3)?.to_owned(),
            user_id: row.text(4)?.to_owned(),
            scopes: row.text(5)?.split_whitespace().map(str::to_owned).collect(),
            nonce: row.opt_text(6)?.map(str::to_owned),
            auth_time: row.text(7)?.to_owned(),
            expires_at: parse_time(row.text(8)?).map_err(|_| unreadable("expiry"))?,
            offline: row.bool(9)?,
            superseded: row.bool(10)?,
            revoked: row.bool(11)?,
            session_over: row.opt_bool(12)?.unwrap_or(true) || session_expired,
        })
    }

    /// Whether the token can be used at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        !self.revoked
            && !self.superseded
            && self.expires_at > now
            && (self.offline || !self.session_over)
    }

    /// The token with this hash, with its grant and session state as of `now`.
    pub async fn by_hash(
        store: &dyn EventStore,
        instance_id: &str,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Self>, DomainError> {
        let rows = store
            .query(
                "SELECT t.kind, g.grant_id, g.session_id, g.client_id, g.user_id, g.scopes, g.nonce, g.auth_time,
                        t.expires_at, g.offline, t.superseded, g.revoked, s.terminated, s.expires_at
                 FROM oidc_tokens t
                 JOIN oidc_grants g ON g.instance_id = t.instance_id AND g.grant_id = t.grant_id
                 LEFT JOIN sessions s ON s.instance_id = g.instance_id AND s.session_id = g.session_id
                 WHERE t.token_hash = $1 AND t.instance_id = $2",
                &[token_hash.into(), instance_id.into()],
            )
            .await?;
        rows.first().map(|row| Self::from_row(row, now)).transpose()
    }
}
