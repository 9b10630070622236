//! Grant commands and queries: codes, the token endpoint's exchanges, client credentials
//! tokens, token lookups, revocation.

use std::collections::BTreeSet;

use crate::admin_token;
use crate::aggregate::{Aggregate, Loaded, create};
use crate::application::{ApplicationView, ClientType, GrantType, OidcConfig};
use crate::error::DomainError;
use crate::grant::{
    AccessTokenBinding, ClientCredentialsGranted, CodeIssued, Grant, GrantRejection,
    RevocationReason, TokenKind, TokenView, TokensIssued, grant_token,
};
use crate::service::{Domain, retry_conflicts};
use crate::session_logout::SessionLogout;

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

/// An access token a client received for itself (client credentials), in clear.
#[derive(Debug, Clone)]
pub struct ClientToken {
    /// The grant it belongs to.
    pub grant_id: String,
    /// The access token.
    pub access_token: String,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// Its lifetime in seconds.
    pub expires_in: u32,
}

/// How long an authorization code can be redeemed.
pub const CODE_LIFETIME_SECS: i64 = 60;

impl Domain {
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

    /// Issues an access token to `app` for itself (client credentials, RFC 6749 §4.4): a new
    /// grant whose subject is the client, with no session and no refresh token (§4.4.3). The
    /// protocol layer has chosen `scopes`; the application's settings are checked again here
    /// so no caller can issue what the settings do not allow.
    pub async fn issue_client_token(
        &self,
        instance_id: &str,
        app: &ApplicationView,
        scopes: Vec<String>,
    ) -> Result<ClientToken, DomainError> {
        let config = &app.config;
        if config.client_type != ClientType::Confidential
            || !config.allows(GrantType::ClientCredentials)
        {
            return Err(DomainError::Invalid {
                field: "grant_type",
                reason: "the application may not use client_credentials".into(),
            });
        }
        if !scopes
            .iter()
            .all(|scope| config.client_credentials_scopes.contains(scope))
        {
            return Err(GrantRejection::ScopeExceeded.into());
        }
        let grant_id = uuid::Uuid::now_v7().simple().to_string();
        let now = self.clock.now();
        let access_token = grant_token(&grant_id);
        let tokens = TokensIssued {
            access_token_hash: admin_token::hash_token(&access_token),
            access_expires_at: now
                + chrono::Duration::seconds(i64::from(config.access_token_lifetime_secs)),
            access_token_binding: AccessTokenBinding::ClientGrant,
            access_token_scopes: None,
            refresh_token_hash: None,
            refresh_expires_at: None,
        };
        let granted = ClientCredentialsGranted {
            client_id: app.client_id.clone(),
            scopes: scopes.clone(),
        };
        let events = Grant::default().grant_client_credentials(granted, tokens)?;
        self.append(&[create::<Grant>(
            instance_id,
            &grant_id,
            &events,
            &self.stamp(&app.client_id),
        )])
        .await?;
        Ok(ClientToken {
            grant_id,
            access_token,
            scopes,
            expires_in: config.access_token_lifetime_secs,
        })
    }

    /// Appends a grant's token events together with the back-channel registration they call
    /// for, in one transaction: an application holding tokens of a session is always known to
    /// the notifier. A conflict on the grant is returned (the code or refresh token was used
    /// concurrently); one on the registration (another application of the same session got
    /// tokens at the same moment) is retried.
    pub(crate) async fn issue_tokens(
        &self,
        instance_id: &str,
        app: &ApplicationView,
        grant: &Loaded<Grant>,
        events: &[crate::grant::GrantEvent],
        code: &CodeIssued,
    ) -> Result<(), DomainError> {
        let stamp = self.stamp(&app.client_id);
        let registration_raced = |conflict: &eventstore::StoreError| {
            matches!(conflict, eventstore::StoreError::Conflict { aggregate, .. }
                if aggregate.aggregate_type == SessionLogout::TYPE)
        };
        let stamp = &stamp;
        retry_conflicts(registration_raced, || async move {
            let mut appends = vec![grant.append(events, stamp)];
            appends.extend(
                self.back_channel_registration(instance_id, app, code)
                    .await?,
            );
            self.append(&appends).await.map(drop)
        })
        .await
    }

    pub(crate) fn new_tokens(
        &self,
        grant_id: &str,
        config: &OidcConfig,
        access_token_binding: AccessTokenBinding,
        access_token_scopes: Option<Vec<String>>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> (TokensIssued, String, Option<String>) {
        let access_token = grant_token(grant_id);
        let refresh_token = config
            .allows(GrantType::RefreshToken)
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
}
