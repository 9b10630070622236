//! Redelivering many deliveries at once from the console: every failed or waiting delivery of
//! one session (from a delivery's page), or every delivery to one application that failed
//! since a time (from the application's page and from the deliveries list filtered by it).
//! Each is one `Redeliver` request to the notifier, recorded with the admin's token as every
//! redelivery is; the answer says how many were queued and why the others were left.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use notify::back_channel::{Redeliver, Redelivered, RedeliveryError};
use protocol::response::escape_html;
use serde::Deserialize;

use super::auth::ConsoleAdmin;
use super::deliveries::CsrfForm;
use super::form::{Invalid, action_form, input};
use super::page::{self, failed, segment};
use crate::http::AppState;

/// Where an application's failed deliveries are re-sent.
pub const APPLICATION_PATH: &str = "/console/deliveries/redeliver-failed";

/// The form that re-sends every failed or waiting delivery of `session_id`.
pub(super) fn session_form(admin: &ConsoleAdmin, session_id: &str) -> String {
    action_form(
        admin,
        &format!("/console/deliveries/{}/redeliver-all", segment(session_id)),
        "",
        "Redeliver every failed or waiting delivery of this session",
    )
}

/// The form that re-sends `client_id`'s deliveries failed since a time (as typed, with its
/// error when it was refused).
pub(super) fn application_form(
    admin: &ConsoleAdmin,
    client_id: &str,
    since: &str,
    invalid: Option<&Invalid>,
) -> String {
    let fields = format!(
        "<input type=\"hidden\" name=\"client_id\" value=\"{client_id}\">{since}",
        client_id = escape_html(client_id),
        since = input(
            "failed-since",
            "failed_since",
            "Failed since (RFC 3339)",
            "text",
            since,
            " required placeholder=\"2026-11-29T10:00:00Z\"",
            invalid,
        ),
    );
    action_form(
        admin,
        APPLICATION_PATH,
        &fields,
        "Redeliver failed deliveries",
    )
}

/// What the console shows after a redelivery of many.
fn outcome_page(admin: &ConsoleAdmin, what: &str, back: &str, done: &Redelivered) -> Response {
    let skipped: String = done
        .skipped
        .iter()
        .map(|skipped| {
            format!(
                "<li>{} → {}: {}</li>",
                escape_html(&skipped.session_id),
                escape_html(&skipped.client_id),
                escape_html(&skipped.reason.to_string()),
            )
        })
        .collect();
    let skipped = if skipped.is_empty() {
        String::new()
    } else {
        format!("<h2>Left as they were</h2><ul>{skipped}</ul>")
    };
    let body = format!(
        "<h1>Redelivery</h1><p role=\"status\">{what}: {queued} queued again, each with a \
         freshly signed logout token; {left} left as they were.</p>{skipped}\
         <p><a href=\"{back}\">Back to the deliveries</a></p>",
        what = escape_html(what),
        queued = done.queued.len(),
        left = done.skipped.len(),
        back = escape_html(back),
    );
    page::signed_in(
        StatusCode::OK,
        super::deliveries::PATH,
        &admin.session.csrf,
        "Redelivery",
        &body,
    )
}

/// A refused request: nothing to redeliver (404), a refusal (409), or the store's failure.
fn refused(admin: &ConsoleAdmin, error: RedeliveryError) -> Response {
    let (status, title, message) = match error {
        RedeliveryError::NotFound(what) => (StatusCode::NOT_FOUND, "Nothing to redeliver", what),
        RedeliveryError::Refused(reason) => {
            (StatusCode::CONFLICT, "Not redelivered", reason.to_string())
        }
        RedeliveryError::Domain(error) => return failed("a redelivery", error),
    };
    page::signed_in(
        status,
        super::deliveries::PATH,
        &admin.session.csrf,
        title,
        &format!(
            "<h1>{title}</h1><p role=\"alert\">{}</p><p><a href=\"{}\">All deliveries</a></p>",
            escape_html(&message),
            super::deliveries::PATH
        ),
    )
}

/// Sends `what` to the notifier in the admin's name and shows the outcome.
async fn redeliver(
    state: &AppState,
    admin: &ConsoleAdmin,
    what: Redeliver,
    described: &str,
    back: &str,
) -> Response {
    let principal = &admin.session.principal;
    match state
        .deliveries
        .redeliver(&principal.instance_id, &principal.token_id, &what)
        .await
    {
        Ok(done) => {
            tracing::info!(
                instance_id = %principal.instance_id,
                token_id = %principal.token_id,
                queued = done.queued.len(),
                skipped = done.skipped.len(),
                "console: redelivery of many requested"
            );
            outcome_page(admin, described, back, &done)
        }
        Err(error) => refused(admin, error),
    }
}

/// `POST /console/deliveries/{session_id}/redeliver-all`
pub async fn session(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Path(session_id): Path<String>,
    Form(submitted): Form<CsrfForm>,
) -> Response {
    if !admin.csrf_matches(submitted.csrf.as_deref()) {
        return ConsoleAdmin::csrf_refused();
    }
    let back = format!(
        "{}?{}",
        super::deliveries::PATH,
        form_urlencoded::Serializer::new(String::new())
            .append_pair("session_id", &session_id)
            .finish()
    );
    let what = Redeliver::Session {
        session_id: session_id.clone(),
    };
    redeliver(
        &state,
        &admin,
        what,
        &format!("Session {session_id}"),
        &back,
    )
    .await
}

/// The application form as typed.
#[derive(Deserialize)]
pub struct ApplicationForm {
    csrf: Option<String>,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    failed_since: String,
}

/// `POST /console/deliveries/redeliver-failed`: an invalid time gets the deliveries list of
/// the application again with 422, the error next to the field and what was typed kept.
pub async fn application(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Form(submitted): Form<ApplicationForm>,
) -> Response {
    if !admin.csrf_matches(submitted.csrf.as_deref()) {
        return ConsoleAdmin::csrf_refused();
    }
    let typed = submitted.failed_since.trim();
    let since = match chrono::DateTime::parse_from_rfc3339(typed) {
        Ok(since) => since.to_utc(),
        Err(_) => {
            let invalid = Invalid::new(
                "failed_since",
                "Enter a time in RFC 3339 form such as 2026-11-29T10:00:00Z.",
            );
            let body = format!(
                "<h1>Redeliver failed deliveries</h1><p>Application \
                 <code>{}</code></p>{}",
                escape_html(&submitted.client_id),
                application_form(&admin, &submitted.client_id, typed, Some(&invalid)),
            );
            return page::signed_in(
                StatusCode::UNPROCESSABLE_ENTITY,
                super::deliveries::PATH,
                &admin.session.csrf,
                "Redeliver failed deliveries",
                &body,
            );
        }
    };
    let back = format!(
        "{}?{}",
        super::deliveries::PATH,
        form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &submitted.client_id)
            .finish()
    );
    let what = Redeliver::FailedOfApplication {
        client_id: submitted.client_id.clone(),
        since,
    };
    let described = format!(
        "Deliveries to {} failed since {}",
        submitted.client_id,
        since.to_rfc3339()
    );
    redeliver(&state, &admin, what, &described, &back).await
}
