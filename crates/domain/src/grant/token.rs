//! Codes and tokens as presented: which grant issued them, what they are, whether they work.

use chrono::{DateTime, Utc};
use eventstore::EventStore;

use super::{AccessTokenBinding, Grant};
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

/// On whose behalf a grant's tokens act.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantSubject {
    /// A user who authorized the client in a browser session (authorization code grant).
    User {
        /// The user (`sub`).
        user_id: String,
        /// The session the grant was issued in.
        session_id: String,
        /// The authorization request's nonce.
        nonce: Option<String>,
        /// When the user authenticated.
        auth_time: DateTime<Utc>,
    },
    /// The client itself (client credentials grant): no user and no session.
    Client,
}

/// A token, its grant and whether it is usable now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenView {
    /// What it is.
    pub kind: TokenKind,
    /// The grant that issued it.
    pub grant_id: String,
    /// The client.
    pub client_id: String,
    /// Whose the token is: a user in a session, or the client itself.
    pub subject: GrantSubject,
    /// The token's scopes: the grant's, or narrower for an access token from a refresh that
    /// asked for less.
    pub scopes: Vec<String>,
    /// When the token expires.
    pub expires_at: DateTime<Utc>,
    /// Whether the grant includes offline_access.
    pub offline: bool,
    /// Whether the token stops working when its session ends: codes and access tokens issued
    /// in the session always do; refresh tokens unless the grant is offline.
    pub bound_to_session: bool,
    /// Whether a newer token set replaced it (codes and refresh tokens).
    pub superseded: bool,
    /// Whether the grant was revoked.
    pub revoked: bool,
    /// Whether the session is over (ended, expired or gone); never set for a client's token.
    pub session_over: bool,
}

impl TokenView {
    /// The user the token acts for, if any (a client credentials token has none).
    pub fn user_id(&self) -> Option<&str> {
        match &self.subject {
            GrantSubject::User { user_id, .. } => Some(user_id),
            GrantSubject::Client => None,
        }
    }

    /// The session the token was issued in, if any.
    pub fn session_id(&self) -> Option<&str> {
        match &self.subject {
            GrantSubject::User { session_id, .. } => Some(session_id),
            GrantSubject::Client => None,
        }
    }

    /// Whether the token can be used at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        let ended_with_session = self.bound_to_session && self.session_over;
        !self.revoked && !self.superseded && self.expires_at > now && !ended_with_session
    }

    /// What `grant` says of the token with hash `token_hash`, with `session_over` unset.
    pub fn in_grant(grant_id: &str, grant: &Grant, token_hash: &str) -> Option<Self> {
        let Some(code) = grant.code.as_ref() else {
            return Self::in_client_grant(grant_id, grant, token_hash);
        };
        let find = |tokens: &[(String, DateTime<Utc>)]| {
            tokens
                .iter()
                .find(|(hash, _)| hash == token_hash)
                .map(|(_, expires_at)| *expires_at)
        };
        let access = grant
            .access_tokens
            .iter()
            .find(|record| record.hash == token_hash);
        let (kind, expires_at, superseded) = if code.code_hash == token_hash {
            (TokenKind::Code, code.expires_at, grant.code_redeemed)
        } else if let Some(record) = access {
            (TokenKind::Access, record.expires_at, false)
        } else if grant.refresh_token_hash.as_deref() == Some(token_hash) {
            (TokenKind::Refresh, grant.refresh_expires_at?, false)
        } else if let Some(expires_at) = find(&grant.rotated_refresh_tokens) {
            (TokenKind::Refresh, expires_at, true)
        } else {
            return None;
        };
        let offline = grant.offline();
        let bound_to_session = match (kind, access) {
            (TokenKind::Refresh, _) => !offline,
            (_, Some(record)) => record.binding == AccessTokenBinding::Session,
            (_, None) => true,
        };
        let scopes = access
            .and_then(|record| record.scopes.clone())
            .unwrap_or_else(|| code.scopes.clone());
        Some(TokenView {
            kind,
            grant_id: grant_id.to_owned(),
            client_id: code.client_id.clone(),
            subject: GrantSubject::User {
                user_id: code.user_id.clone(),
                session_id: code.session_id.clone(),
                nonce: code.nonce.clone(),
                auth_time: code.auth_time,
            },
            scopes,
            expires_at,
            offline,
            bound_to_session,
            superseded,
            revoked: grant.revoked,
            session_over: true,
        })
    }

    /// A client credentials grant's access token: it has only access tokens, bound to
    /// nothing but the grant (revocation) and their expiry.
    fn in_client_grant(grant_id: &str, grant: &Grant, token_hash: &str) -> Option<Self> {
        let granted = grant.client_credentials.as_ref()?;
        let record = grant
            .access_tokens
            .iter()
            .find(|record| record.hash == token_hash)?;
        Some(TokenView {
            kind: TokenKind::Access,
            grant_id: grant_id.to_owned(),
            client_id: granted.client_id.clone(),
            subject: GrantSubject::Client,
            scopes: record
                .scopes
                .clone()
                .unwrap_or_else(|| granted.scopes.clone()),
            expires_at: record.expires_at,
            offline: false,
            bound_to_session: false,
            superseded: false,
            revoked: grant.revoked,
            session_over: false,
        })
    }

    /// The presented `token` (hashed as `token_hash`), read from its grant's and session's
    /// events, with the session's state as of `now`; a client's token has no session to read.
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
        if let Some(session_id) = view.session_id() {
            let session = Loaded::<Session>::load(store, instance_id, session_id).await?;
            view.session_over = !session.state.is_live(now);
        }
        Ok(Some((view, grant)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::Aggregate;
    use crate::grant::{GrantEvent, test_code, test_tokens};

    /// A grant whose code was redeemed for access token `a-r1` and refresh token `r1`, with
    /// `scopes`.
    fn redeemed(scopes: &[&str], now: DateTime<Utc>) -> Grant {
        let mut code = test_code(now);
        code.scopes = scopes.iter().map(|scope| scope.to_string()).collect();
        let mut grant = Grant::default();
        grant.apply(&GrantEvent::CodeIssued(code));
        grant.apply(&GrantEvent::TokensIssued(test_tokens("r1", now)));
        grant
    }

    /// Whether `hash` of `grant` works at `now` with its session live or over.
    fn works(grant: &Grant, hash: &str, session_over: bool, now: DateTime<Utc>) -> bool {
        let mut view = TokenView::in_grant("g", grant, hash).expect("a token of the grant");
        view.session_over = session_over;
        view.is_active(now)
    }

    #[test]
    fn ending_the_session_ends_its_access_tokens_and_non_offline_refresh_tokens() {
        let now = Utc::now();
        // (grant scopes, token, works once the session ended)
        let cases = [
            (&["openid"][..], "a-r1", false),
            (&["openid", "offline_access"][..], "a-r1", false),
            (&["openid"][..], "r1", false),
            (&["openid", "offline_access"][..], "r1", true),
        ];
        for (scopes, token, after) in cases {
            let grant = redeemed(scopes, now);
            assert!(works(&grant, token, false, now), "{scopes:?} {token}");
            assert_eq!(works(&grant, token, true, now), after, "{scopes:?} {token}");
        }
    }

    #[test]
    fn an_offline_refresh_after_the_session_issues_access_bound_to_the_grant() {
        let now = Utc::now();
        let mut grant = redeemed(&["openid", "offline_access", "email"], now);
        let mut later = test_tokens("r2", now);
        later.access_token_binding = AccessTokenBinding::OfflineGrant;
        later.access_token_scopes = Some(vec!["openid".into()]);
        grant.apply(&GrantEvent::TokensIssued(later));
        assert!(works(&grant, "a-r2", true, now));
        assert!(
            !works(&grant, "a-r1", true, now),
            "the session's token stays dead"
        );
        let view = TokenView::in_grant("g", &grant, "a-r2").unwrap();
        assert_eq!(
            view.scopes,
            vec!["openid".to_owned()],
            "narrowed by the refresh"
        );
        let first = TokenView::in_grant("g", &grant, "a-r1").unwrap();
        assert_eq!(first.scopes.len(), 3);
        let expired = now + chrono::Duration::seconds(3601);
        assert!(!works(&grant, "a-r2", true, expired));
    }

    #[test]
    fn a_client_token_has_no_user_and_outlives_any_session_until_revoked_or_expired() {
        let now = Utc::now();
        let mut grant = Grant::default();
        let mut tokens = test_tokens("unused", now);
        tokens.access_token_binding = AccessTokenBinding::ClientGrant;
        tokens.refresh_token_hash = None;
        tokens.refresh_expires_at = None;
        let granted = crate::grant::ClientCredentialsGranted {
            client_id: "c".into(),
            scopes: vec!["read".into()],
        };
        for event in grant.grant_client_credentials(granted, tokens).unwrap() {
            grant.apply(&event);
        }
        let view = TokenView::in_grant("g", &grant, "a-unused").expect("the access token");
        assert_eq!(
            (view.kind, &view.subject, view.user_id(), view.session_id()),
            (TokenKind::Access, &GrantSubject::Client, None, None)
        );
        assert_eq!(view.scopes, ["read"]);
        assert!(!view.bound_to_session && !view.offline);
        assert!(works(&grant, "a-unused", true, now), "no session to end it");
        assert!(!works(
            &grant,
            "a-unused",
            false,
            now + chrono::Duration::seconds(3601)
        ));
        assert!(
            TokenView::in_grant("g", &grant, "unused").is_none(),
            "no refresh token"
        );
        grant.apply(&grant.revoke(crate::grant::RevocationReason::RevokedByClient)[0]);
        assert!(!works(&grant, "a-unused", false, now));
    }

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
