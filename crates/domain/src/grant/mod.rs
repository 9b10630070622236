//! OIDC grants: what one authorization issued to one client in one session — the code, then
//! access and refresh tokens (refresh tokens rotate on use) — or, for the client credentials
//! grant (RFC 6749 §4.4), the access token a client received for itself: a grant whose subject
//! is the client, with no user, no session and no refresh token, so no session's end reaches
//! it; only revocation and expiry end it.
//!
//! A grant's tokens are valid only while the grant is not revoked and they have not expired.
//! Codes and access tokens issued while the session was live die with the session, whatever
//! the scope; refresh tokens die with it unless the grant has `offline_access` (Back-Channel
//! Logout 1.0 §2.7), and an access token such a refresh issues after the session ended is
//! bound to the offline grant instead. The session rule is checked when a token is used (see
//! `TokenView`), so ending a session needs no event per token and no token issued at the same
//! moment can slip past it.
//!
//! Every code and token starts with its grant's id, so using one reads the grant's own events
//! from the log (always current) instead of a read model: the token endpoint can redeem a code
//! the moment it was issued, without waiting for a projection.

mod commands;
mod projection;
mod token;

pub use commands::{CODE_LIFETIME_SECS, ClientToken, CodeRequest, IssuedTokens};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use projection::{GrantProjection, application_names_of_session, client_ids_of_session};
pub use token::{GrantSubject, TokenKind, TokenView, grant_id_of, grant_token};

#[cfg(test)]
pub(crate) use tests::{issued as test_code, tokens as test_tokens};

use crate::aggregate::{Aggregate, DecodeError, DomainEvent, to_json};

/// An authorization code was issued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeIssued {
    /// The browser session.
    pub session_id: String,
    /// The client.
    pub client_id: String,
    /// The user.
    pub user_id: String,
    /// SHA-256 of the code.
    pub code_hash: String,
    /// The redirect URI the code was sent to (must be repeated at the token endpoint).
    pub redirect_uri: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// The request's nonce, echoed in the ID token.
    pub nonce: Option<String>,
    /// The PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// When the user authenticated.
    pub auth_time: DateTime<Utc>,
    /// When the code stops being redeemable.
    pub expires_at: DateTime<Utc>,
}

/// A client asked for tokens for itself (client credentials, RFC 6749 §4.4); the same
/// append carries the `oidc_grant.tokens.issued` with the access token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientCredentialsGranted {
    /// The client, which is also the subject.
    pub client_id: String,
    /// Granted scopes (within the application's `client_credentials_scopes`).
    pub scopes: Vec<String>,
}

/// What an access token's life is tied to besides its expiry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessTokenBinding {
    /// Issued while the session was live: inactive as soon as the session ends.
    #[default]
    Session,
    /// Issued by refreshing an `offline_access` grant after its session ended.
    OfflineGrant,
    /// Issued to a client for itself (client credentials): there is no session.
    ClientGrant,
}

/// Tokens were issued (from the code, or by refreshing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokensIssued {
    /// SHA-256 of the access token.
    pub access_token_hash: String,
    /// When it expires.
    pub access_expires_at: DateTime<Utc>,
    /// What the access token's life is tied to (events written before it existed: the
    /// session, which is what they were issued in).
    #[serde(default)]
    pub access_token_binding: AccessTokenBinding,
    /// The access token's scopes when a refresh narrowed them (RFC 6749 §6); unset means
    /// the grant's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_scopes: Option<Vec<String>>,
    /// SHA-256 of the refresh token, if one was issued; replaces any earlier one.
    pub refresh_token_hash: Option<String>,
    /// When the refresh token expires.
    pub refresh_expires_at: Option<DateTime<Utc>>,
}

/// Why a grant was revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationReason {
    /// Its code was presented a second time (RFC 6749 §4.1.2: revoke what it issued).
    CodeReplayed,
    /// A revoked refresh token was presented again.
    RefreshTokenReplayed,
    /// The client revoked a token (RFC 7009).
    RevokedByClient,
}

/// The grant and every token it issued stopped being valid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrantRevoked {
    /// Why.
    pub reason: RevocationReason,
}

/// Events of the `oidc_grant` aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum GrantEvent {
    /// `oidc_grant.code.issued`
    CodeIssued(CodeIssued),
    /// `oidc_grant.tokens.issued`
    TokensIssued(TokensIssued),
    /// `oidc_grant.revoked`
    Revoked(GrantRevoked),
    /// `oidc_grant.client_credentials.granted`
    ClientCredentialsGranted(ClientCredentialsGranted),
}

impl DomainEvent for GrantEvent {
    fn event_type(&self) -> &'static str {
        match self {
            GrantEvent::CodeIssued(_) => "oidc_grant.code.issued",
            GrantEvent::TokensIssued(_) => "oidc_grant.tokens.issued",
            GrantEvent::Revoked(_) => "oidc_grant.revoked",
            GrantEvent::ClientCredentialsGranted(_) => "oidc_grant.client_credentials.granted",
        }
    }

    fn payload(&self) -> String {
        match self {
            GrantEvent::CodeIssued(payload) => to_json(payload),
            GrantEvent::TokensIssued(payload) => to_json(payload),
            GrantEvent::Revoked(payload) => to_json(payload),
            GrantEvent::ClientCredentialsGranted(payload) => to_json(payload),
        }
    }

    fn decode(event_type: &str, payload: &str) -> Result<Self, DecodeError> {
        Ok(match event_type {
            "oidc_grant.code.issued" => GrantEvent::CodeIssued(serde_json::from_str(payload)?),
            "oidc_grant.tokens.issued" => GrantEvent::TokensIssued(serde_json::from_str(payload)?),
            "oidc_grant.revoked" => GrantEvent::Revoked(serde_json::from_str(payload)?),
            "oidc_grant.client_credentials.granted" => {
                GrantEvent::ClientCredentialsGranted(serde_json::from_str(payload)?)
            }
            other => return Err(DecodeError::UnknownType(other.to_owned())),
        })
    }
}

/// An access token a grant issued, as far as deciding whether it works needs.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessTokenRecord {
    /// SHA-256 of the token.
    pub hash: String,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// What else its life is tied to.
    pub binding: AccessTokenBinding,
    /// Its scopes when narrower than the grant's.
    pub scopes: Option<Vec<String>>,
}

/// A grant's state, as commands see it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Grant {
    /// The code's details, once issued (a user's grant).
    pub code: Option<CodeIssued>,
    /// The client's own grant (client credentials); such a grant never has a code.
    pub client_credentials: Option<ClientCredentialsGranted>,
    /// Whether the code was exchanged.
    pub code_redeemed: bool,
    /// The current refresh token's hash.
    pub refresh_token_hash: Option<String>,
    /// When the current refresh token expires.
    pub refresh_expires_at: Option<DateTime<Utc>>,
    /// Every access token issued: a rotation does not cut short the old one.
    pub access_tokens: Vec<AccessTokenRecord>,
    /// Refresh tokens replaced by a rotation (hash, expiry); presenting one is a replay.
    pub rotated_refresh_tokens: Vec<(String, DateTime<Utc>)>,
    /// Whether the grant was revoked.
    pub revoked: bool,
}

impl Aggregate for Grant {
    const TYPE: &'static str = "oidc_grant";
    type Event = GrantEvent;

    fn apply(&mut self, event: &GrantEvent) {
        match event {
            GrantEvent::CodeIssued(issued) => self.code = Some(issued.clone()),
            GrantEvent::TokensIssued(issued) => {
                self.code_redeemed = true;
                if let (Some(hash), Some(expires_at)) =
                    (self.refresh_token_hash.take(), self.refresh_expires_at)
                {
                    self.rotated_refresh_tokens.push((hash, expires_at));
                }
                self.access_tokens.push(AccessTokenRecord {
                    hash: issued.access_token_hash.clone(),
                    expires_at: issued.access_expires_at,
                    binding: issued.access_token_binding,
                    scopes: issued.access_token_scopes.clone(),
                });
                self.refresh_token_hash = issued.refresh_token_hash.clone();
                self.refresh_expires_at = issued.refresh_expires_at;
            }
            GrantEvent::Revoked(_) => self.revoked = true,
            GrantEvent::ClientCredentialsGranted(granted) => {
                self.client_credentials = Some(granted.clone());
            }
        }
    }
}

/// Why a code or refresh token cannot be used (all are `invalid_grant` to the client).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantRejection {
    /// Unknown, expired, revoked or already used.
    #[error("the {0} is invalid, expired, revoked or was already used")]
    Invalid(&'static str),
    /// Issued to another client.
    #[error("the {0} was issued to another client")]
    OtherClient(&'static str),
    /// The redirect_uri differs from the authorization request's.
    #[error("redirect_uri does not match the one in the authorization request")]
    RedirectUriMismatch,
    /// A refresh asked for scopes the grant does not have (`invalid_scope` to the client).
    #[error("scope exceeds the scope originally granted")]
    ScopeExceeded,
}

impl Grant {
    /// Decides `RedeemCode`: the first redemption issues tokens; any later one revokes the
    /// grant. The caller has checked PKCE.
    pub fn redeem_code(
        &self,
        client_id: &str,
        redirect_uri: Option<&str>,
        tokens: TokensIssued,
        now: DateTime<Utc>,
    ) -> Result<Vec<GrantEvent>, GrantRejection> {
        let Some(code) = &self.code else {
            return Err(GrantRejection::Invalid("code"));
        };
        if code.client_id != client_id {
            return Err(GrantRejection::OtherClient("code"));
        }
        if self.revoked || code.expires_at <= now {
            return Err(GrantRejection::Invalid("code"));
        }
        if redirect_uri != Some(code.redirect_uri.as_str()) {
            return Err(GrantRejection::RedirectUriMismatch);
        }
        Ok(vec![GrantEvent::TokensIssued(tokens)])
    }

    /// The events that answer a replayed code: revoke everything the grant issued.
    pub fn revoke(&self, reason: RevocationReason) -> Vec<GrantEvent> {
        if self.revoked {
            vec![]
        } else {
            vec![GrantEvent::Revoked(GrantRevoked { reason })]
        }
    }

    /// Decides `Refresh`: only the current refresh token of a live grant rotates.
    pub fn refresh(
        &self,
        client_id: &str,
        presented_hash: &str,
        tokens: TokensIssued,
        now: DateTime<Utc>,
    ) -> Result<Vec<GrantEvent>, GrantRejection> {
        let Some(code) = &self.code else {
            return Err(GrantRejection::Invalid("refresh token"));
        };
        if code.client_id != client_id {
            return Err(GrantRejection::OtherClient("refresh token"));
        }
        let current = self.refresh_token_hash.as_deref() == Some(presented_hash);
        let unexpired = self
            .refresh_expires_at
            .is_some_and(|expires_at| expires_at > now);
        if self.revoked || !current || !unexpired {
            return Err(GrantRejection::Invalid("refresh token"));
        }
        Ok(vec![GrantEvent::TokensIssued(tokens)])
    }

    /// Decides `IssueClientToken` on a new grant: the client's own grant and its access token.
    pub fn grant_client_credentials(
        &self,
        granted: ClientCredentialsGranted,
        tokens: TokensIssued,
    ) -> Result<Vec<GrantEvent>, GrantRejection> {
        // A grant id is fresh for each request; anything already here is not ours to extend.
        if self.code.is_some() || self.client_credentials.is_some() {
            return Err(GrantRejection::Invalid("grant"));
        }
        Ok(vec![
            GrantEvent::ClientCredentialsGranted(granted),
            GrantEvent::TokensIssued(tokens),
        ])
    }

    /// Whether the grant includes `offline_access`, so its refresh token outlives the session.
    pub fn offline(&self) -> bool {
        self.code
            .as_ref()
            .is_some_and(|code| code.scopes.iter().any(|scope| scope == "offline_access"))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn issued(now: DateTime<Utc>) -> CodeIssued {
        CodeIssued {
            session_id: "s".into(),
            client_id: "c".into(),
            user_id: "u".into(),
            code_hash: "h".into(),
            redirect_uri: "https://app/cb".into(),
            scopes: vec!["openid".into()],
            nonce: None,
            code_challenge: None,
            auth_time: now,
            expires_at: now + chrono::Duration::seconds(60),
        }
    }

    pub(crate) fn tokens(refresh: &str, now: DateTime<Utc>) -> TokensIssued {
        TokensIssued {
            access_token_hash: format!("a-{refresh}"),
            access_expires_at: now + chrono::Duration::seconds(3600),
            access_token_binding: AccessTokenBinding::Session,
            access_token_scopes: None,
            refresh_token_hash: Some(refresh.into()),
            refresh_expires_at: Some(now + chrono::Duration::days(1)),
        }
    }

    #[test]
    fn a_code_is_redeemed_once_by_its_client_at_its_redirect_uri() {
        let now = Utc::now();
        let mut grant = Grant::default();
        grant.apply(&GrantEvent::CodeIssued(issued(now)));
        assert_eq!(
            grant.redeem_code("other", Some("https://app/cb"), tokens("r1", now), now),
            Err(GrantRejection::OtherClient("code"))
        );
        assert_eq!(
            grant.redeem_code("c", Some("https://app/cb/"), tokens("r1", now), now),
            Err(GrantRejection::RedirectUriMismatch)
        );
        assert_eq!(
            grant.redeem_code("c", None, tokens("r1", now), now),
            Err(GrantRejection::RedirectUriMismatch)
        );
        let late = now + chrono::Duration::seconds(61);
        assert_eq!(
            grant.redeem_code("c", Some("https://app/cb"), tokens("r1", late), late),
            Err(GrantRejection::Invalid("code"))
        );
        let events = grant
            .redeem_code("c", Some("https://app/cb"), tokens("r1", now), now)
            .unwrap();
        grant.apply(&events[0]);
        assert!(grant.code_redeemed);
        assert_eq!(grant.revoke(RevocationReason::CodeReplayed).len(), 1);
    }

    #[test]
    fn a_client_grant_has_an_access_token_and_nothing_to_redeem_or_refresh() {
        let now = Utc::now();
        let granted = ClientCredentialsGranted {
            client_id: "c".into(),
            scopes: vec!["read".into()],
        };
        let mut access_only = tokens("unused", now);
        access_only.access_token_binding = AccessTokenBinding::ClientGrant;
        access_only.refresh_token_hash = None;
        access_only.refresh_expires_at = None;
        let mut grant = Grant::default();
        let events = grant
            .grant_client_credentials(granted.clone(), access_only.clone())
            .unwrap();
        for event in &events {
            let decoded = GrantEvent::decode(event.event_type(), &event.payload()).unwrap();
            assert_eq!(&decoded, event);
            grant.apply(event);
        }
        assert_eq!(grant.client_credentials, Some(granted.clone()));
        assert_eq!(grant.access_tokens.len(), 1);
        assert_eq!(grant.refresh_token_hash, None);
        assert_eq!(
            grant.grant_client_credentials(granted, access_only.clone()),
            Err(GrantRejection::Invalid("grant")),
            "a grant is granted once"
        );
        assert_eq!(
            grant.redeem_code("c", Some("https://app/cb"), access_only.clone(), now),
            Err(GrantRejection::Invalid("code"))
        );
        assert_eq!(
            grant.refresh("c", "a-unused", access_only, now),
            Err(GrantRejection::Invalid("refresh token"))
        );
        assert!(!grant.offline());
    }

    #[test]
    fn tokens_issued_before_bindings_existed_are_session_bound() {
        let stored = r#"{"access_token_hash":"a","access_expires_at":"2026-01-01T00:00:00Z",
            "refresh_token_hash":null,"refresh_expires_at":null}"#;
        let GrantEvent::TokensIssued(tokens) =
            GrantEvent::decode("oidc_grant.tokens.issued", stored).unwrap()
        else {
            panic!("tokens issued");
        };
        assert_eq!(tokens.access_token_binding, AccessTokenBinding::Session);
    }

    #[test]
    fn refresh_tokens_rotate() {
        let now = Utc::now();
        let mut grant = Grant::default();
        grant.apply(&GrantEvent::CodeIssued(issued(now)));
        grant.apply(&GrantEvent::TokensIssued(tokens("r1", now)));
        let rotated = grant.refresh("c", "r1", tokens("r2", now), now).unwrap();
        grant.apply(&rotated[0]);
        assert_eq!(
            grant.refresh("c", "r1", tokens("r3", now), now),
            Err(GrantRejection::Invalid("refresh token"))
        );
        assert!(grant.refresh("c", "r2", tokens("r3", now), now).is_ok());
        grant.apply(&grant.revoke(RevocationReason::RevokedByClient)[0]);
        assert!(grant.refresh("c", "r2", tokens("r3", now), now).is_err());
        assert!(!grant.offline());
    }
}
