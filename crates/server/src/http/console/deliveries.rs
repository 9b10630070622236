//! `/console/deliveries`: the instance's back-channel deliveries, filtered and paged as the
//! admin API's `/back-channel-deliveries` lists them (the same filter mapping, cursor and
//! bodies, from `crate::http::admin::deliveries`), one delivery with its history, and a
//! redelivery form.

use std::collections::BTreeMap;

use axum::Form;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use domain::session_logout::{DeliveryCursor, DeliveryFilter, DeliveryView};
use notify::back_channel::{Redeliver, RedeliveryError};
use protocol::response::escape_html;
use serde::Deserialize;

use super::auth::ConsoleAdmin;
use super::form::{Invalid, field_error, input};
use super::page::{self, failed, see_other, segment};
use crate::http::AppState;
use crate::http::admin::deliveries::{
    DeliveryBody, bodies, decode_cursor, encode_cursor, state_filter,
};
use crate::http::error::ApiError;

/// The list page's path.
pub const PATH: &str = "/console/deliveries";
/// Deliveries per page.
const PAGE: u32 = 50;
/// The state filter's choices (value, label); the empty value is any state.
const STATES: [(&str, &str); 7] = [
    ("", "Any"),
    ("registered", "Registered (session live)"),
    ("due", "Due"),
    ("retry_at", "Waiting for a retry"),
    ("unsettled", "Unsettled"),
    ("sent", "Sent"),
    ("failed", "Failed"),
];

/// The filter form as typed; empty fields are unset.
#[derive(Default)]
struct Query {
    state: String,
    client_id: String,
    session_id: String,
    since: String,
    until: String,
    cursor: String,
}

impl Query {
    fn parse(raw: Option<&str>) -> Self {
        let mut query = Query::default();
        for (name, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            let value = value.trim().to_owned();
            match name.as_ref() {
                "state" => query.state = value,
                "client_id" => query.client_id = value,
                "session_id" => query.session_id = value,
                "since" => query.since = value,
                "until" => query.until = value,
                "cursor" => query.cursor = value,
                _ => {}
            }
        }
        query
    }

    /// The query string of this filter (without the cursor), for the next page's link.
    fn filter_pairs(&self) -> form_urlencoded::Serializer<'static, String> {
        let mut serializer = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("state", &self.state),
            ("client_id", &self.client_id),
            ("session_id", &self.session_id),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if !value.is_empty() {
                serializer.append_pair(name, value);
            }
        }
        serializer
    }
}

impl From<ApiError> for Invalid {
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::Invalid { field, message } => Invalid { field, message },
            other => Invalid {
                field: String::new(),
                message: format!("{other:?}"),
            },
        }
    }
}

/// A time as the admin API reads it (RFC 3339).
fn time(name: &str, raw: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, Invalid> {
    if raw.is_empty() {
        return Ok(None);
    }
    chrono::DateTime::parse_from_rfc3339(raw)
        .map(|at| Some(at.to_utc()))
        .map_err(|_| Invalid {
            field: name.to_owned(),
            message: "expected a time in RFC 3339 form such as 2026-11-29T10:00:00Z".into(),
        })
}

/// The filter and cursor the form asks for, as the admin API maps them.
fn filter_of(
    query: &Query,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(DeliveryFilter, Option<DeliveryCursor>), Invalid> {
    let non_empty = |value: &str| (!value.is_empty()).then(|| value.to_owned());
    let mut filter = DeliveryFilter {
        client_id: non_empty(&query.client_id),
        session_id: non_empty(&query.session_id),
        registered_since: time("since", &query.since)?,
        registered_before: time("until", &query.until)?,
        ..DeliveryFilter::default()
    };
    if !query.state.is_empty() {
        state_filter(&query.state, &mut filter, now)?;
    }
    let cursor = non_empty(&query.cursor)
        .map(|raw| decode_cursor(&raw))
        .transpose()?;
    Ok((filter, cursor))
}

fn detail_path(session_id: &str, client_id: &str) -> String {
    format!("{PATH}/{}/{}", segment(session_id), segment(client_id))
}

/// A text field of the filter; `hint` is its placeholder.
fn text_field(
    query_value: &str,
    field: &str,
    label: &str,
    hint: &str,
    invalid: Option<&Invalid>,
) -> String {
    let placeholder = if hint.is_empty() {
        String::new()
    } else {
        format!(" placeholder=\"{}\"", escape_html(hint))
    };
    input(
        field,
        field,
        label,
        "text",
        query_value,
        &placeholder,
        invalid,
    )
}

fn filter_form(query: &Query, invalid: Option<&Invalid>) -> String {
    let (state_error, state_marker) = field_error(invalid, "state", "state");
    let options: String = STATES
        .iter()
        .map(|(value, label)| {
            let selected = if *value == query.state {
                " selected"
            } else {
                ""
            };
            format!("<option value=\"{value}\"{selected}>{label}</option>")
        })
        .collect();
    let unknown_state =
        if !query.state.is_empty() && !STATES.iter().any(|(value, _)| *value == query.state) {
            let state = escape_html(&query.state);
            format!("<option value=\"{state}\" selected>{state}</option>")
        } else {
            String::new()
        };
    let cursor_error = field_error(invalid, "cursor", "cursor").0;
    format!(
        "<form method=\"get\" action=\"{PATH}\" class=\"filters\" aria-label=\"Filter deliveries\">\
         <div><label for=\"state\">State</label>{state_error}\
         <select id=\"state\" name=\"state\"{state_marker}>{options}{unknown_state}</select></div>\
         {client}{session}{since}{until}{cursor_error}\
         <button type=\"submit\">Filter</button></form>",
        client = text_field(
            &query.client_id,
            "client_id",
            "Application client ID",
            "",
            invalid
        ),
        session = text_field(&query.session_id, "session_id", "Session ID", "", invalid),
        since = text_field(
            &query.since,
            "since",
            "Signed in since (RFC 3339)",
            "2026-11-29T10:00:00Z",
            invalid
        ),
        until = text_field(
            &query.until,
            "until",
            "Signed in before (RFC 3339)",
            "2026-11-29T18:00:00Z",
            invalid
        ),
    )
}

/// The names of the applications `deliveries` went to, by client id (one look-up per
/// application on the page, not per row); a removed application is left out.
pub(super) async fn application_names(
    state: &AppState,
    instance_id: &str,
    deliveries: &[DeliveryBody],
) -> Result<BTreeMap<String, String>, domain::DomainError> {
    let mut names = BTreeMap::new();
    for delivery in deliveries {
        if names.contains_key(&delivery.client_id) {
            continue;
        }
        match state
            .domain
            .application(instance_id, &delivery.client_id)
            .await
        {
            Ok(app) => {
                names.insert(delivery.client_id.clone(), app.config.name);
            }
            Err(domain::DomainError::NotFound(_)) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(names)
}

/// An application by name, its client id beside it; by client id alone once removed.
fn application_label(names: &BTreeMap<String, String>, client_id: &str) -> String {
    match names.get(client_id) {
        Some(name) => format!(
            "{} <small class=\"id\">{}</small>",
            escape_html(name),
            escape_html(client_id)
        ),
        None => escape_html(client_id),
    }
}

/// The deliveries table, each linking to its page (also an application's recent ones), the
/// applications named from `names` (see [`application_names`]).
pub(super) fn table(deliveries: &[DeliveryBody], names: &BTreeMap<String, String>) -> String {
    if deliveries.is_empty() {
        return "<p>No deliveries match.</p>".to_owned();
    }
    let rows: String = deliveries
        .iter()
        .map(|delivery| {
            format!(
                "<tr><th scope=\"row\"><a href=\"{href}\">{session}</a></th><td>{client}</td>\
                 <td>{state}</td><td>{attempts}</td><td>{ended}</td><td>{error}</td></tr>",
                href = escape_html(&detail_path(&delivery.session_id, &delivery.client_id)),
                session = escape_html(&delivery.session_id),
                client = application_label(names, &delivery.client_id),
                state = escape_html(&delivery.state),
                attempts = delivery.attempts,
                ended = escape_html(delivery.ended_at.as_deref().unwrap_or("")),
                error = escape_html(delivery.last_error.as_deref().unwrap_or("")),
            )
        })
        .collect();
    format!(
        "<div class=\"table\"><table><caption>Back-channel logout deliveries, newest first\
         </caption><thead><tr><th scope=\"col\">Session</th><th scope=\"col\">Application</th>\
         <th scope=\"col\">State</th><th scope=\"col\">Attempts</th>\
         <th scope=\"col\">Ended at</th><th scope=\"col\">Last error</th></tr></thead>\
         <tbody>{rows}</tbody></table></div>"
    )
}

/// `GET /console/deliveries`
pub async fn list(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = Query::parse(raw.as_deref());
    let instance_id = &admin.session.principal.instance_id;
    let show = |status: StatusCode, invalid: Option<&Invalid>, listing: &str| {
        let body = format!(
            "<h1>Deliveries</h1>{}{listing}",
            filter_form(&query, invalid)
        );
        page::signed_in(status, PATH, &admin.session.csrf, "Deliveries", &body)
    };
    let (filter, cursor) = match filter_of(&query, state.domain.now()) {
        Ok(found) => found,
        Err(invalid) => return show(StatusCode::BAD_REQUEST, Some(&invalid), ""),
    };
    let views = match state
        .domain
        .deliveries_of_instance(instance_id, &filter, cursor.as_ref(), PAGE)
        .await
    {
        Ok(views) => views,
        Err(error) => return failed("listing deliveries", error),
    };
    let next_cursor = (views.len() == PAGE as usize)
        .then(|| {
            views
                .last()
                .map(|last| encode_cursor(&DeliveryCursor::after(last)))
        })
        .flatten();
    let deliveries = match bodies(&state, instance_id, views).await {
        Ok(deliveries) => deliveries,
        Err(error) => return failed("reading deliveries", error),
    };
    let names = match application_names(&state, instance_id, &deliveries).await {
        Ok(names) => names,
        Err(error) => return failed("naming applications", error),
    };
    let next = next_cursor
        .map(|cursor| {
            let mut pairs = query.filter_pairs();
            pairs.append_pair("cursor", &cursor);
            format!(
                "<p><a href=\"{PATH}?{}\" rel=\"next\">Next page</a></p>",
                escape_html(&pairs.finish())
            )
        })
        .unwrap_or_default();
    let bulk = if query.client_id.trim().is_empty() {
        String::new()
    } else {
        format!(
            "<h2>Redeliver this application's failed deliveries</h2>{}",
            super::redelivery::application_form(&admin, query.client_id.trim(), "", None)
        )
    };
    show(
        StatusCode::OK,
        None,
        &format!("{}{next}{bulk}", table(&deliveries, &names)),
    )
}

/// The delivery `session_id` sent (or sends) to `client_id`, with its history.
async fn one(
    state: &AppState,
    instance_id: &str,
    session_id: &str,
    client_id: &str,
) -> Result<Option<DeliveryBody>, Response> {
    let views: Vec<DeliveryView> = state
        .domain
        .deliveries_of_session(instance_id, session_id)
        .await
        .map_err(|error| failed("reading a delivery", error))?
        .into_iter()
        .filter(|view| view.client_id == client_id)
        .collect();
    if views.is_empty() {
        return Ok(None);
    }
    let mut bodies = bodies(state, instance_id, views)
        .await
        .map_err(|error| failed("reading a delivery", error))?;
    Ok(Some(bodies.remove(0)))
}

fn detail_page(
    status: StatusCode,
    admin: &ConsoleAdmin,
    delivery: &DeliveryBody,
    refusal: Option<&str>,
) -> Response {
    let optional = |value: &Option<String>| escape_html(value.as_deref().unwrap_or("—"));
    let field = |label: &str, value: String| format!("<dt>{label}</dt><dd>{value}</dd>");
    let fields = [
        field("Session", escape_html(&delivery.session_id)),
        field("Application", escape_html(&delivery.client_id)),
        field("Logout URI", escape_html(&delivery.uri)),
        field("State", escape_html(&delivery.state)),
        field("Next attempt at", optional(&delivery.next_attempt_at)),
        field("Attempts", delivery.attempts.to_string()),
        field("Last error", optional(&delivery.last_error)),
        field("Ended on", optional(&delivery.triggered_at_origin)),
        field("Signed in at", escape_html(&delivery.registered_at)),
        field("Ended at", optional(&delivery.ended_at)),
        field("Settled at", optional(&delivery.settled_at)),
    ]
    .concat();
    let history = if delivery.history.is_empty() {
        "<p>No attempts yet.</p>".to_owned()
    } else {
        let rows: String = delivery
            .history
            .iter()
            .map(|entry| {
                let event = match (entry.kind.as_str(), entry.outcome.as_deref()) {
                    ("attempt", Some(outcome)) => format!("attempt: {outcome}"),
                    ("redelivery_requested", _) => format!(
                        "redelivery requested by {}",
                        entry.requested_by.as_deref().unwrap_or("an admin")
                    ),
                    (kind, _) => kind.to_owned(),
                };
                format!(
                    "<tr><td>{at}</td><td>{event}</td><td>{status}</td><td>{duration}</td>\
                     <td>{error}</td></tr>",
                    at = escape_html(entry.at.as_deref().unwrap_or("")),
                    event = escape_html(&event),
                    status = entry.http_status.map(|s| s.to_string()).unwrap_or_default(),
                    duration = entry
                        .duration_ms
                        .map(|ms| format!("{ms} ms"))
                        .unwrap_or_default(),
                    error = escape_html(entry.error.as_deref().unwrap_or("")),
                )
            })
            .collect();
        format!(
            "<div class=\"table\"><table><caption>History, oldest first</caption><thead><tr>\
             <th scope=\"col\">Time</th><th scope=\"col\">Event</th>\
             <th scope=\"col\">HTTP status</th><th scope=\"col\">Duration</th>\
             <th scope=\"col\">Error</th></tr></thead><tbody>{rows}</tbody></table></div>"
        )
    };
    let refusal = refusal
        .map(|reason| {
            format!(
                "<p class=\"error\" role=\"alert\">Not redelivered: {}</p>",
                escape_html(reason)
            )
        })
        .unwrap_or_default();
    let redeliver = if matches!(delivery.state.as_str(), "sent" | "registered") {
        String::new()
    } else {
        format!(
            "<form method=\"post\" action=\"{action}\" class=\"redeliver\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button type=\"submit\">Redeliver</button></form>",
            action = escape_html(&format!(
                "{}/redeliver",
                detail_path(&delivery.session_id, &delivery.client_id)
            )),
            csrf = escape_html(&admin.session.csrf),
        )
    };
    let body = format!(
        "<p><a href=\"{PATH}\">All deliveries</a></p><h1>Delivery</h1>{refusal}\
         <dl class=\"fields\">{fields}</dl>{redeliver}<h2>History</h2>{history}\
         <h2>This session's deliveries</h2>{session}",
        session = super::redelivery::session_form(admin, &delivery.session_id),
    );
    page::signed_in(status, PATH, &admin.session.csrf, "Delivery", &body)
}

fn not_found(admin: &ConsoleAdmin) -> Response {
    page::signed_in(
        StatusCode::NOT_FOUND,
        PATH,
        &admin.session.csrf,
        "No such delivery",
        &format!(
            "<h1>No such delivery</h1><p>This session has no back-channel delivery to that \
             application.</p><p><a href=\"{PATH}\">All deliveries</a></p>"
        ),
    )
}

/// `GET /console/deliveries/{session_id}/{client_id}`
pub async fn show(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Path((session_id, client_id)): Path<(String, String)>,
) -> Response {
    let instance_id = admin.session.principal.instance_id.clone();
    match one(&state, &instance_id, &session_id, &client_id).await {
        Ok(Some(delivery)) => detail_page(StatusCode::OK, &admin, &delivery, None),
        Ok(None) => not_found(&admin),
        Err(response) => response,
    }
}

/// A form that only carries the session's CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    pub(super) csrf: Option<String>,
}

/// `POST /console/deliveries/{session_id}/{client_id}/redeliver`: queues the delivery again
/// (sent with a freshly signed logout token), then back to its page.
pub async fn redeliver(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Path((session_id, client_id)): Path<(String, String)>,
    Form(submitted): Form<CsrfForm>,
) -> Response {
    if !admin.csrf_matches(submitted.csrf.as_deref()) {
        return ConsoleAdmin::csrf_refused();
    }
    let principal = &admin.session.principal;
    let what = Redeliver::One {
        session_id: session_id.clone(),
        client_id: client_id.clone(),
    };
    let refusal = match state
        .deliveries
        .redeliver(&principal.instance_id, &principal.token_id, &what)
        .await
    {
        Ok(_) => {
            tracing::info!(
                instance_id = %principal.instance_id,
                token_id = %principal.token_id,
                %session_id,
                %client_id,
                "console: redelivery requested"
            );
            return see_other(&detail_path(&session_id, &client_id));
        }
        Err(RedeliveryError::NotFound(_)) => return not_found(&admin),
        Err(RedeliveryError::Refused(reason)) => reason.to_string(),
        Err(RedeliveryError::Domain(error)) => return failed("a redelivery", error),
    };
    let instance_id = principal.instance_id.clone();
    match one(&state, &instance_id, &session_id, &client_id).await {
        Ok(Some(delivery)) => detail_page(StatusCode::CONFLICT, &admin, &delivery, Some(&refusal)),
        Ok(None) => not_found(&admin),
        Err(response) => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_maps_to_the_admin_apis_filter_and_keeps_it_for_the_next_page() {
        let now = chrono::Utc::now();
        let query = Query::parse(Some(
            "state=retry_at&client_id=+app+&session_id=&since=2026-11-29T10:00:00Z&cursor=5~s~c",
        ));
        let (filter, cursor) = filter_of(&query, now).unwrap_or_else(|_| panic!("valid"));
        assert_eq!(filter.client_id.as_deref(), Some("app"));
        assert_eq!(filter.session_id, None);
        assert_eq!(filter.next_attempt_after, Some(now));
        assert!(filter.registered_since.is_some() && filter.registered_before.is_none());
        let cursor = cursor.expect("a cursor");
        assert_eq!(encode_cursor(&cursor), "5~s~c");
        assert_eq!(
            query.filter_pairs().finish(),
            "state=retry_at&client_id=app&since=2026-11-29T10%3A00%3A00Z"
        );
        let Err(invalid) = filter_of(&Query::parse(Some("until=noon")), now) else {
            panic!("noon is not RFC 3339");
        };
        assert_eq!(invalid.field, "until");
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(
            detail_path("a b/c", "x~y"),
            "/console/deliveries/a%20b%2Fc/x~y"
        );
    }
}
