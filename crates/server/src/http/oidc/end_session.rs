//! RP-Initiated Logout 1.0: ends the browser's session (recording the origin the request came
//! in on), which ends its tokens (offline refresh tokens live on), clears the cookie, and
//! redirects only to a registered post_logout_redirect_uri. Without a valid id_token_hint the
//! person confirms first, on a page that names the instance and the applications they will be
//! signed out of, and may choose to stay signed in instead. When the response waits for the
//! back-channel fan-out, it is a receipt page (`logout_receipt`) with a link on instead.

use axum::extract::{Form, RawQuery, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use domain::TerminationReason;
use domain::session_logout::{DeliveryStage, DeliveryView};
use protocol::end_session::{
    AfterLogout, Confirmation, CurrentSession, EndSessionRequest, VerifiedIdTokenHint,
};
use protocol::response::escape_html;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::front_channel::FrontChannel;
use super::logout_receipt::Receipt;
use super::session::{SESSION_COOKIE, cookie, current_session};
use super::{Issuer, client, page};
use crate::http::AppState;

const CONFIRM_COOKIE: &str = "portcullis_logout";

/// `GET /oidc/v1/end_session`
pub async fn get(
    State(state): State<AppState>,
    issuer: Issuer,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Response {
    answer_request(state, issuer, jar, query.unwrap_or_default()).await
}

/// `POST /oidc/v1/end_session` (form-encoded)
pub async fn post(
    State(state): State<AppState>,
    issuer: Issuer,
    jar: CookieJar,
    body: String,
) -> Response {
    answer_request(state, issuer, jar, body).await
}

/// What the person chose on the confirmation page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Answer {
    /// End the session (also what a form without a chosen button means).
    #[default]
    SignOut,
    /// Leave the session untouched.
    StaySignedIn,
}

/// The confirmation form's answer.
#[derive(Deserialize)]
pub struct Confirmed {
    csrf: String,
    request: String,
    #[serde(default)]
    answer: Answer,
}

/// `POST /oidc/v1/end_session/confirm`: the person signed out or chose to stay signed in.
pub async fn confirm(
    State(state): State<AppState>,
    issuer: Issuer,
    jar: CookieJar,
    Form(form): Form<Confirmed>,
) -> Response {
    let matches = jar
        .get(CONFIRM_COOKIE)
        .is_some_and(|cookie| bool::from(cookie.value().as_bytes().ct_eq(form.csrf.as_bytes())));
    if !matches {
        return page::error(
            StatusCode::BAD_REQUEST,
            "The logout form expired",
            "Start the logout again from the application.",
        );
    }
    let jar = jar.remove(CONFIRM_COOKIE);
    let logout = match Logout::decide(&state, &issuer, &jar, &form.request).await {
        Ok(logout) => logout,
        Err(response) => return response,
    };
    match form.answer {
        Answer::SignOut => logout.sign_out(&state, &issuer, jar).await,
        Answer::StaySignedIn => logout.stay_signed_in(jar),
    }
}

fn invalid(description: &str) -> Response {
    page::error(
        StatusCode::BAD_REQUEST,
        "This logout request is not valid",
        description,
    )
}

/// An end-session request: ask first where the spec wants the person's consent, else sign out.
async fn answer_request(
    state: AppState,
    issuer: Issuer,
    jar: CookieJar,
    raw_request: String,
) -> Response {
    let logout = match Logout::decide(&state, &issuer, &jar, &raw_request).await {
        Ok(logout) => logout,
        Err(response) => return response,
    };
    if logout.decision.confirmation == Confirmation::Required && logout.session.is_some() {
        logout.ask(&state, &issuer, jar, &raw_request).await
    } else {
        logout.sign_out(&state, &issuer, jar).await
    }
}

/// A validated end-session request and the browser's session, before anything changed.
struct Logout {
    decision: protocol::end_session::EndSessionDecision,
    session: Option<domain::SessionView>,
}

impl Logout {
    /// Validates the request (the hint must be ours: signature and issuer; an expired one is
    /// fine) and decides, without changing anything. An invalid request is an error page.
    async fn decide(
        state: &AppState,
        issuer: &Issuer,
        jar: &CookieJar,
        raw_request: &str,
    ) -> Result<Logout, Response> {
        let instance_id = &issuer.instance.instance_id;
        let raw = protocol::params::parse_form_urlencoded(raw_request);
        let request = EndSessionRequest::parse(&raw)
            .map_err(|error| invalid(&error.to_oauth_error().description.unwrap_or_default()))?;
        let hint = match &request.id_token_hint {
            None => None,
            Some(token) => Some(verify_hint(state, issuer, token).await?),
        };
        let client_id = request
            .client_to_resolve(hint.as_ref())
            .map_err(|error| invalid(&error.to_oauth_error().description.unwrap_or_default()))?
            .map(str::to_owned);
        let application = match &client_id {
            Some(client_id) => state.domain.application(instance_id, client_id).await.ok(),
            None => None,
        };
        let policy = application
            .as_ref()
            .map(|app| client::policy(&app.client_id, &app.config));
        let session = current_session(state, instance_id, jar)
            .await
            .map_err(server_error)?
            .map(|(session, _)| session);
        let current = session.as_ref().map(|session| CurrentSession {
            sub: session.user_id.clone(),
            sid: session.session_id.clone(),
        });
        let decision = request
            .decide(hint.as_ref(), policy.as_ref(), current.as_ref())
            .map_err(|error| invalid(&error.to_oauth_error().description.unwrap_or_default()))?;
        Ok(Logout { decision, session })
    }

    /// The confirmation page: the instance by its display name, the applications the person
    /// will be signed out of, and a way to stay signed in.
    async fn ask(
        self,
        state: &AppState,
        issuer: &Issuer,
        jar: CookieJar,
        raw_request: &str,
    ) -> Response {
        let instance_id = &issuer.instance.instance_id;
        let applications = match &self.session {
            Some(session) => match state
                .domain
                .applications_of_session(instance_id, &session.session_id)
                .await
            {
                Ok(applications) => applications,
                Err(error) => return server_error(error),
            },
            None => vec![],
        };
        let applications = if applications.is_empty() {
            String::new()
        } else {
            let items: String = applications
                .iter()
                .map(|name| format!("<li>{}</li>", escape_html(name)))
                .collect();
            format!(
                "<p>You will also be signed out of:</p>\
                 <ul class=\"applications\">{items}</ul>"
            )
        };
        let csrf = hex::encode(rand::random::<[u8; 32]>());
        let body = format!(
            "<h1>Sign out of {name}?</h1>{applications}\
             <form method=\"post\" action=\"/oidc/v1/end_session/confirm\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <input type=\"hidden\" name=\"request\" value=\"{request}\">\
             <button type=\"submit\" name=\"answer\" value=\"sign_out\" autofocus>Sign out</button>\
             <button type=\"submit\" name=\"answer\" value=\"stay_signed_in\" class=\"secondary\">\
             Stay signed in</button></form>",
            name = escape_html(&issuer.instance.display_name),
            request = escape_html(raw_request),
        );
        let jar = jar.add(cookie(state, CONFIRM_COOKIE, csrf));
        (jar, page::html(StatusCode::OK, "Sign out", &body)).into_response()
    }

    /// Ends the session (recording the origin the request came in on), then continues to the
    /// validated post-logout URI or the signed-out page; when it waited for the session's
    /// back-channel deliveries, it shows their receipt first. Applications with a
    /// front-channel logout URI get their hidden frames on whichever page is shown; with such
    /// frames, the redirect becomes a page that moves on once they have loaded.
    async fn sign_out(self, state: &AppState, issuer: &Issuer, jar: CookieJar) -> Response {
        let instance_id = &issuer.instance.instance_id;
        let mut jar = jar;
        let mut front_channel = FrontChannel::default();
        if let Some(session) = &self.session {
            let ended = state
                .domain
                .terminate_session(
                    instance_id,
                    &session.session_id,
                    TerminationReason::RpInitiatedLogout,
                    issuer.termination_origin(),
                    &session.user_id,
                )
                .await;
            if let Err(error) = ended {
                return server_error(error);
            }
            jar = jar.remove(SESSION_COOKIE);
            front_channel = FrontChannel::of(state, issuer, &session.session_id).await;
            let deliveries = wait_for_deliveries(state, instance_id, &session.session_id).await;
            if !deliveries.is_empty() {
                let receipt = Receipt::of(state, instance_id, &deliveries).await;
                let page = receipt.page(self.continue_location(), &front_channel.frames());
                return (jar, front_channel.allow_frames(page)).into_response();
            }
        }
        if front_channel.is_empty() {
            return self.continue_to(
                jar,
                "Signed out",
                "<h1>You are signed out</h1><p>You can close this window.</p>",
            );
        }
        let page = match self.continue_location() {
            Some(location) => page::html_with_head(
                StatusCode::OK,
                "Signed out",
                &FrontChannel::continue_head(location),
                &format!(
                    "<h1>You are signed out</h1><p>Signing you out of your applications…</p>\
                     {}{}",
                    FrontChannel::continue_link(location),
                    front_channel.frames()
                ),
            ),
            None => page::html(
                StatusCode::OK,
                "Signed out",
                &format!(
                    "<h1>You are signed out</h1><p>You can close this window.</p>{}",
                    front_channel.frames()
                ),
            ),
        };
        (jar, front_channel.allow_frames(page)).into_response()
    }

    /// The validated post-logout URI with its `state`, exactly as the redirect would carry it.
    fn continue_location(&self) -> Option<&str> {
        match &self.decision.after_logout {
            AfterLogout::Redirect { location } => Some(location.as_str()),
            AfterLogout::ShowLoggedOutPage => None,
        }
    }

    /// Leaves the session as it is; back to the validated post-logout URI, if one was given.
    fn stay_signed_in(self, jar: CookieJar) -> Response {
        self.continue_to(
            jar,
            "Still signed in",
            "<h1>You are still signed in</h1><p>Nothing was changed. You can close this \
             window.</p>",
        )
    }

    /// On to the validated post-logout URI, else a page with this title and (fixed) body.
    fn continue_to(self, jar: CookieJar, title: &str, body: &str) -> Response {
        match self.decision.after_logout {
            AfterLogout::Redirect { location } => {
                (StatusCode::SEE_OTHER, [(LOCATION, location)], jar).into_response()
            }
            AfterLogout::ShowLoggedOutPage => {
                (jar, page::html(StatusCode::OK, title, body)).into_response()
            }
        }
    }
}

/// Verifies an `id_token_hint`: signed by this instance's key, issued by it (expiry ignored).
async fn verify_hint(
    state: &AppState,
    issuer: &Issuer,
    token: &str,
) -> Result<VerifiedIdTokenHint, Response> {
    let keys = state
        .keys
        .instance_keys(&issuer.instance.instance_id)
        .await
        .map_err(server_error)?;
    let validation = jose::Validation::new()
        .issuer(&issuer.instance.external_url)
        .allow_expired();
    let verified = keys
        .verifier
        .verify(token, &validation, state.domain.now().timestamp())
        .map_err(|_| invalid("The id_token_hint was not issued by this server."))?;
    let claims = verified.claims;
    let text = |name: &str| {
        claims
            .get(name)
            .and_then(|value| value.as_str())
            .map(str::to_owned)
    };
    let aud = match claims.get("aud") {
        Some(serde_json::Value::String(aud)) => vec![aud.clone()],
        Some(serde_json::Value::Array(auds)) => auds
            .iter()
            .filter_map(|aud| aud.as_str().map(str::to_owned))
            .collect(),
        _ => vec![],
    };
    Ok(VerifiedIdTokenHint {
        aud,
        azp: text("azp"),
        sub: text("sub").unwrap_or_default(),
        sid: text("sid"),
    })
}

fn server_error(error: impl std::fmt::Display) -> Response {
    tracing::error!(%error, "logout failed");
    page::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Please try again later.",
    )
}

/// Waits, up to the configured deadline, until none of the session's back-channel deliveries is
/// still pending, so the user reaches the post-logout page after the applications have heard;
/// returns the deliveries as they stood when the wait ended (none when the wait is off or they
/// cannot be read, so the response stays a plain redirect). Delivery itself never depends on
/// this wait.
async fn wait_for_deliveries(
    state: &AppState,
    instance_id: &str,
    session_id: &str,
) -> Vec<DeliveryView> {
    let deadline = state.settings.end_session_wait;
    if deadline.is_zero() {
        return vec![];
    }
    let read = || state.domain.deliveries_of_session(instance_id, session_id);
    let settled = async {
        loop {
            match read().await {
                Ok(deliveries)
                    if deliveries
                        .iter()
                        .all(|delivery| delivery.stage != DeliveryStage::Due) =>
                {
                    return Ok(deliveries);
                }
                Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
                Err(error) => return Err(error),
            }
        }
    };
    let deliveries = match tokio::time::timeout(deadline, settled).await {
        Ok(settled) => settled,
        // The deadline passed: the receipt shows where each delivery stands now.
        Err(_) => read().await,
    };
    deliveries.unwrap_or_else(|error| {
        tracing::warn!(%error, "could not follow back-channel deliveries");
        vec![]
    })
}
