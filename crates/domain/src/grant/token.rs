//! Codes and tokens as presented: which grant issued them, what they are, whether they work.

use chrono::{DateTime, Utc};
use eventstore::EventStore;

use super::Grant;
use crate::aggregate::Loaded;
use crate::error::DomainError;
use crate::session::Session;

/// Length of a grant id (a UUID without dashes).
const GRANT_ID_LEN: usize = 32;

/// A new code or token of `grant_id`: the id, a dot, 256 random bits in hex. Only its hash is
/// stored; the id prefix lets a presented token find its grant in the log.
pub fn grant_token(grant_id: &str) -> String {
    format!("{grant_id}.{}", hex::encode(rand::random::<[u8; 32]>()))
}

/// The grant id a presented code or token names, if it has the shape we issue.
pub fn grant_id_of(token: &str) -> Option<&str> {
    let (grant_id, _) = token.split_once('.')?;
    (grant_id.len() == GRANT_ID_LEN && grant_id.bytes().all(|byte| byte.is_ascii_hexdigit()))
        .then_some(grant_id)
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
    /// When the user authenticated.
    pub auth_time: DateTime<Utc>,
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
    /// Whether the token can be used at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        !self.revoked
            && !self.superseded
            && self.expires_at > now
            && (self.offline || !self.session_over)
    }

    /// What `grant` says of the token with hash `token_hash`, with `session_over` unset.
    pub fn in_grant(grant_id: &str, grant: &Grant, token_hash: &str) -> Option<Self> {
        let code = grant.code.as_ref()?;
        let find = |tokens: &[(String, DateTime<Utc>)]| {
            tokens
                .iter()
                .find(|(hash, _)| hash == token_hash)
                .map(|(_, expires_at)| *expires_at)
        };
        let (kind, expires_at, superseded) = if code.code_hash == token_hash {
            (TokenKind::Code, code.expires_at, grant.code_redeemed)
        } else if let Some(expires_at) = find(&grant.access_tokens) {
            (TokenKind::Access, expires_at, false)
        } else if grant.refresh_token_hash.as_deref() == Some(token_hash) {
            (TokenKind::Refresh, grant.refresh_expires_at?, false)
        } else if let Some(expires_at) = find(&grant.rotated_refresh_tokens) {
            (TokenKind::Refresh, expires_at, true)
        } else {
            return None;
        };
        Some(TokenView {
            kind,
            grant_id: grant_id.to_owned(),
            session_id: code.session_id.clone(),
            client_id: code.client_id.clone(),
            user_id: code.user_id.clone(),
            scopes: code.scopes.clone(),
            nonce: code.nonce.clone(),
            auth_time: code.auth_time,
            expires_at,
            offline: grant.offline(),
            superseded,
            revoked: grant.revoked,
            session_over: true,
        })
    }

    /// The presented `token` (hashed as `token_hash`), read from its grant's and session's
    /// events, with the session's state as of `now`.
    pub async fn load(
        store: &dyn EventStore,
        instance_id: &str,
        token: &str,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(Self, Loaded<Grant>)>, DomainError> {
        let Some(grant_id) = grant_id_of(token) else {
            return Ok(None);
        };
        let grant = Loaded::<Grant>::load(store, instance_id, grant_id).await?;
        let Some(mut view) = Self::in_grant(grant_id, &grant.state, token_hash) else {
            return Ok(None);
        };
        let session = Loaded::<Session>::load(store, instance_id, &view.session_id).await?;
        view.session_over = !session.state.is_live(now);
        Ok(Some((view, grant)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tokens_of_our_shape_name_a_grant() {
        let grant_id = uuid::Uuid::now_v7().simple().to_string();
        let token = grant_token(&grant_id);
        assert_eq!(grant_id_of(&token), Some(grant_id.as_str()));
        assert_eq!(token.len(), 32 + 1 + 64);
        assert_eq!(grant_id_of("no-dot"), None);
        assert_eq!(grant_id_of("short.abc"), None);
        assert_eq!(grant_id_of(&format!("{}.x", "g".repeat(32))), None);
    }
}
