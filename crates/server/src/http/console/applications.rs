//! `/console/applications`: the instance's OIDC applications a page at a time (by client_id,
//! as the admin API's `/applications` lists them), a new-application form, and one
//! application's page: its settings form, its back-channel delivery health and most recent
//! deliveries, a new client secret and removal (both behind a ticked "I understand" box).
//!
//! The settings go through the admin API's own `ApplicationSettings` (its defaults) to the
//! same domain commands, which validate them; a refusal is shown next to the field the domain
//! names, with 422 and what was typed kept. A client secret is shown once, in the answer to
//! the POST that made it: it is not kept anywhere in clear, not even for a redirect, and the
//! console's pages are `Cache-Control: no-store`.

use std::collections::BTreeMap;

use axum::Form;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use domain::DomainError;
use domain::application::{ApplicationView, ClientType};
use domain::session_logout::{DeliveryFilter, DeliveryHealth};
use protocol::response::escape_html;
use serde::Deserialize;

use super::application_form::{self, ApplicationForm, Purpose};
use super::auth::ConsoleAdmin;
use super::form::{Invalid, action_form, confirm_box, csrf_field, general_error};
use super::page::{self, failed, see_other, segment};
use super::{deliveries, overview};
use crate::http::AppState;
use crate::http::admin::application_settings::ApplicationConfig;
use crate::http::admin::deliveries::bodies;

/// The list page's path.
pub const PATH: &str = "/console/applications";
/// Applications per page.
const PAGE: u32 = 50;
/// Recent deliveries shown on an application's page.
const RECENT_DELIVERIES: u32 = 20;

fn application_path(client_id: &str) -> String {
    format!("{PATH}/{}", segment(client_id))
}

fn type_label(client_type: ClientType) -> &'static str {
    match client_type {
        ClientType::Confidential => "confidential",
        ClientType::Public => "public",
    }
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

fn table(applications: &[ApplicationView]) -> String {
    if applications.is_empty() {
        return "<p>No applications here.</p>".to_owned();
    }
    let rows: String = applications
        .iter()
        .map(|app| {
            format!(
                "<tr><th scope=\"row\"><a href=\"{href}\">{name}</a></th><td>{client_id}</td>\
                 <td>{kind}</td><td>{back_channel}</td></tr>",
                href = escape_html(&application_path(&app.client_id)),
                name = escape_html(&app.config.name),
                client_id = escape_html(&app.client_id),
                kind = type_label(app.config.client_type),
                back_channel = yes_no(app.config.back_channel_logout_uri.is_some()),
            )
        })
        .collect();
    format!(
        "<div class=\"table\"><table><caption>Applications by client ID</caption><thead><tr>\
         <th scope=\"col\">Name</th><th scope=\"col\">Client ID</th><th scope=\"col\">Type</th>\
         <th scope=\"col\">Back-channel logout</th></tr></thead><tbody>{rows}</tbody></table>\
         </div>"
    )
}

fn create_form(admin: &ConsoleAdmin, typed: &ApplicationForm, invalid: Option<&Invalid>) -> String {
    let general = general_error(invalid, &application_form::FIELDS);
    format!(
        "<h2 id=\"create\">New application</h2>{general}\
         <form method=\"post\" action=\"{PATH}\" class=\"settings\" aria-labelledby=\"create\">\
         {csrf}{fields}<button type=\"submit\">Create application</button></form>",
        csrf = csrf_field(admin),
        fields = application_form::fields(Purpose::New, typed, invalid),
    )
}

/// The list page with the new-application form below it.
async fn list_page(
    state: &AppState,
    admin: &ConsoleAdmin,
    after: &str,
    status: StatusCode,
    typed: &ApplicationForm,
    invalid: Option<&Invalid>,
) -> Response {
    let instance_id = &admin.session.principal.instance_id;
    let applications = match state.domain.applications(instance_id, after, PAGE).await {
        Ok(applications) => applications,
        Err(error) => return failed("listing applications", error),
    };
    let next = (applications.len() == PAGE as usize)
        .then(|| applications.last())
        .flatten()
        .map(|last| {
            let query = form_urlencoded::Serializer::new(String::new())
                .append_pair("after", &last.client_id)
                .finish();
            format!(
                "<p><a href=\"{PATH}?{}\" rel=\"next\">Next page</a></p>",
                escape_html(&query)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<h1>Applications</h1>{table}{next}{create}",
        table = table(&applications),
        create = create_form(admin, typed, invalid),
    );
    page::signed_in(status, PATH, &admin.session.csrf, "Applications", &body)
}

/// `GET /console/applications`
pub async fn list(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    RawQuery(raw): RawQuery,
) -> Response {
    let after = form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .find(|(name, _)| name == "after")
        .map(|(_, value)| value.trim().to_owned())
        .unwrap_or_default();
    let typed = ApplicationForm::new_application();
    list_page(&state, &admin, &after, StatusCode::OK, &typed, None).await
}

/// The page that shows a client secret, the only time it is shown.
fn secret_page(
    status: StatusCode,
    admin: &ConsoleAdmin,
    app: &ApplicationView,
    secret: &str,
) -> Response {
    let body = format!(
        "<h1>Client secret of {name}</h1>\
         <p role=\"status\">Copy the client secret now: it is shown only this once. Only its \
         hash is kept, so it cannot be shown again (make a new one if it is lost).</p>\
         <dl class=\"fields\"><dt>Client ID</dt><dd><code>{client_id}</code></dd>\
         <dt>Client secret</dt><dd><code class=\"secret\">{secret}</code></dd></dl>\
         <p><a href=\"{href}\">Continue to the application</a></p>",
        name = escape_html(&app.config.name),
        client_id = escape_html(&app.client_id),
        secret = escape_html(secret),
        href = escape_html(&application_path(&app.client_id)),
    );
    page::signed_in(status, PATH, &admin.session.csrf, "Client secret", &body)
}

/// `POST /console/applications`: creates an application. A confidential one's secret is
/// shown in the answer (201), the only time; a public one goes to its page. A refused
/// setting gets the list page again with 422, its error next to the field and the form as
/// typed; nothing is saved.
pub async fn create(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Form(typed): Form<ApplicationForm>,
) -> Response {
    if !admin.csrf_matches(typed.csrf.as_deref()) {
        return ConsoleAdmin::csrf_refused();
    }
    let principal = &admin.session.principal;
    let invalid = match typed.settings() {
        Err(invalid) => invalid,
        Ok(config) => match state.domain.add_application(principal, config).await {
            Ok((app, secret)) => {
                tracing::info!(
                    instance_id = %principal.instance_id,
                    token_id = %principal.token_id,
                    client_id = %app.client_id,
                    "console: application added"
                );
                return match secret {
                    Some(secret) => secret_page(StatusCode::CREATED, &admin, &app, &secret),
                    None => see_other(&application_path(&app.client_id)),
                };
            }
            Err(DomainError::Invalid { field, reason }) => Invalid::new(field, &reason),
            Err(error) => return failed("adding an application", error),
        },
    };
    list_page(
        &state,
        &admin,
        "",
        StatusCode::UNPROCESSABLE_ENTITY,
        &typed,
        Some(&invalid),
    )
    .await
}

/// What an application's page shows beside the application: the status, the settings form
/// as typed (else the application's settings) and an error.
struct Outcome<'a> {
    status: StatusCode,
    typed: Option<&'a ApplicationForm>,
    invalid: Option<&'a Invalid>,
}

impl Outcome<'_> {
    fn shown() -> Self {
        Outcome {
            status: StatusCode::OK,
            typed: None,
            invalid: None,
        }
    }
}

/// The application's delivery health (the overview's figures), if it has a back-channel
/// logout URI or deliveries were recorded.
async fn health(
    state: &AppState,
    app: &ApplicationView,
) -> Result<Option<DeliveryHealth>, DomainError> {
    let mut recorded = state
        .domain
        .delivery_health(&app.instance_id, Some(&app.client_id))
        .await?;
    Ok(match recorded.remove(&app.client_id) {
        Some(health) => Some(health),
        None if app.config.back_channel_logout_uri.is_some() => {
            Some(DeliveryHealth::unrecorded(&app.client_id))
        }
        None => None,
    })
}

/// The application's most recent back-channel deliveries, as the deliveries page lists them.
async fn recent_deliveries(state: &AppState, app: &ApplicationView) -> Result<String, Response> {
    let filter = DeliveryFilter {
        client_id: Some(app.client_id.clone()),
        ..DeliveryFilter::default()
    };
    let views = state
        .domain
        .deliveries_of_instance(&app.instance_id, &filter, None, RECENT_DELIVERIES)
        .await
        .map_err(|error| failed("listing an application's deliveries", error))?;
    let listed = bodies(state, &app.instance_id, views)
        .await
        .map_err(|error| failed("reading an application's deliveries", error))?;
    let all = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &app.client_id)
        .finish();
    Ok(format!(
        "{table}<p><a href=\"{path}?{query}\">All deliveries to this application</a></p>",
        table = deliveries::table(
            &listed,
            &BTreeMap::from([(app.client_id.clone(), app.config.name.clone())])
        ),
        path = deliveries::PATH,
        query = escape_html(&all),
    ))
}

/// An application's page.
async fn application_page(
    state: &AppState,
    admin: &ConsoleAdmin,
    client_id: &str,
    outcome: Outcome<'_>,
) -> Response {
    let instance_id = &admin.session.principal.instance_id;
    let app = match state.domain.application(instance_id, client_id).await {
        Ok(app) => app,
        Err(DomainError::NotFound(_)) => return not_found(admin),
        Err(error) => return failed("reading an application", error),
    };
    let health = match health(state, &app).await {
        Ok(health) => health,
        Err(error) => return failed("reading an application's delivery health", error),
    };
    let recent = match recent_deliveries(state, &app).await {
        Ok(recent) => recent,
        Err(response) => return response,
    };
    let health = match health {
        Some(health) => overview::health_table(
            &[overview::Row {
                client_id: app.client_id.clone(),
                name: app.config.name.clone(),
                health,
            }],
            state.settings.alert_consecutive_failures,
        ),
        None => "<p>No back-channel logout URI is set.</p>".to_owned(),
    };
    let invalid = outcome.invalid;
    let shown_settings = ApplicationForm::of(ApplicationConfig::from(app.config.clone()));
    let typed = outcome.typed.unwrap_or(&shown_settings);
    let field = |label: &str, value: String| format!("<dt>{label}</dt><dd>{value}</dd>");
    let fields = [
        field(
            "Client ID",
            format!("<code>{}</code>", escape_html(&app.client_id)),
        ),
        field("Type", type_label(app.config.client_type).to_owned()),
        field(
            "Client secret",
            (if app.client_secret_hash.is_some() {
                "set (shown only when made)"
            } else {
                "none"
            })
            .to_owned(),
        ),
        field("Created at", escape_html(&app.created_at)),
    ]
    .concat();
    let base = application_path(&app.client_id);
    let mut placed = application_form::FIELDS.to_vec();
    placed.extend(["secret-confirm", "remove-confirm"]);
    let general = general_error(invalid, &placed);
    let settings = format!(
        "<form method=\"post\" action=\"{action}\" class=\"settings\" aria-labelledby=\"settings\">\
         {csrf}{fields}<button type=\"submit\">Save settings</button></form>",
        action = escape_html(&base),
        csrf = csrf_field(admin),
        fields = application_form::fields(Purpose::Existing, typed, invalid),
    );
    let secret = match app.config.client_type {
        ClientType::Confidential => action_form(
            admin,
            &format!("{base}/secret"),
            &confirm_box(
                "secret-confirm",
                "I understand the current secret stops working now",
                invalid,
            ),
            "Make a new client secret",
        ),
        ClientType::Public => "<p>A public client has no secret.</p>".to_owned(),
    };
    let remove = action_form(
        admin,
        &format!("{base}/remove"),
        &confirm_box(
            "remove-confirm",
            "I understand this removes the application for good",
            invalid,
        ),
        "Remove application",
    );
    let body = format!(
        "<p><a href=\"{PATH}\">All applications</a></p><h1>{name}</h1>{general}\
         <dl class=\"fields\">{fields}</dl>\
         <h2>Delivery health</h2>{health}\
         <h2>Recent back-channel deliveries</h2>{recent}\
         <h3>Redeliver failed deliveries</h3>{bulk}\
         <h2 id=\"settings\">Settings</h2>{settings}\
         <h2>Client secret</h2>{secret}\
         <h2>Removal</h2>{remove}",
        name = escape_html(&app.config.name),
        bulk = super::redelivery::application_form(admin, &app.client_id, "", None),
    );
    page::signed_in(
        outcome.status,
        PATH,
        &admin.session.csrf,
        "Application",
        &body,
    )
}

fn not_found(admin: &ConsoleAdmin) -> Response {
    page::signed_in(
        StatusCode::NOT_FOUND,
        PATH,
        &admin.session.csrf,
        "No such application",
        &format!("<h1>No such application</h1><p><a href=\"{PATH}\">All applications</a></p>"),
    )
}

/// `GET /console/applications/{client_id}`
pub async fn show(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Path(client_id): Path<String>,
) -> Response {
    application_page(&state, &admin, &client_id, Outcome::shown()).await
}

/// `POST /console/applications/{client_id}`: replaces the application's settings (as the
/// admin API's PUT: the type stays), then back to its page; a refused setting gets the page
/// again with 422, the error next to the field and the form as typed; nothing is saved.
pub async fn change(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Path(client_id): Path<String>,
    Form(mut typed): Form<ApplicationForm>,
) -> Response {
    if !admin.csrf_matches(typed.csrf.as_deref()) {
        return ConsoleAdmin::csrf_refused();
    }
    let principal = &admin.session.principal;
    let app = match state
        .domain
        .application(&principal.instance_id, &client_id)
        .await
    {
        Ok(app) => app,
        Err(DomainError::NotFound(_)) => return not_found(&admin),
        Err(error) => return failed("reading an application", error),
    };
    // The form shows the type without a field for it: the domain refuses to change it.
    typed.client_type = ApplicationForm::of(ApplicationConfig::from(app.config)).client_type;
    let invalid = match typed.settings() {
        Err(invalid) => invalid,
        Ok(config) => match state
            .domain
            .change_application(principal, &client_id, config)
            .await
        {
            Ok(_) => {
                tracing::info!(
                    instance_id = %principal.instance_id,
                    token_id = %principal.token_id,
                    %client_id,
                    "console: application changed"
                );
                return see_other(&application_path(&client_id));
            }
            Err(DomainError::Invalid { field, reason }) => Invalid::new(field, &reason),
            Err(DomainError::NotFound(_)) => return not_found(&admin),
            Err(error) => return failed("changing an application", error),
        },
    };
    let outcome = Outcome {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        typed: Some(&typed),
        invalid: Some(&invalid),
    };
    application_page(&state, &admin, &client_id, outcome).await
}

/// The new-secret and remove forms: the CSRF token and the "I understand" box.
#[derive(Deserialize)]
pub struct ActionForm {
    csrf: Option<String>,
    confirm: Option<String>,
}

/// `POST /console/applications/{client_id}/{action}`: `secret` (a new client secret, shown
/// in the answer, the only time) or `remove` (then to the list); both need the ticked box
/// (422 and nothing done without it).
pub async fn action(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Path((client_id, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Response {
    if !admin.csrf_matches(form.csrf.as_deref()) {
        return ConsoleAdmin::csrf_refused();
    }
    let principal = &admin.session.principal;
    let confirmed = form.confirm.as_deref() == Some("yes");
    let refused = match (action.as_str(), confirmed) {
        ("secret", false) => Invalid::new(
            "secret-confirm",
            "Tick the box to confirm replacing the client secret.",
        ),
        ("remove", false) => Invalid::new(
            "remove-confirm",
            "Tick the box to confirm removing the application.",
        ),
        ("secret", true) => {
            // Read first, so the page that shows the new secret needs nothing that could
            // fail once the secret is made (it would be lost).
            let app = match state
                .domain
                .application(&principal.instance_id, &client_id)
                .await
            {
                Ok(app) => app,
                Err(DomainError::NotFound(_)) => return not_found(&admin),
                Err(error) => return failed("reading an application", error),
            };
            match state
                .domain
                .regenerate_client_secret(principal, &client_id)
                .await
            {
                Ok(secret) => {
                    tracing::info!(
                        instance_id = %principal.instance_id,
                        token_id = %principal.token_id,
                        %client_id,
                        "console: client secret replaced"
                    );
                    return secret_page(StatusCode::OK, &admin, &app, &secret);
                }
                Err(DomainError::Invalid { field, reason }) => Invalid::new(field, &reason),
                Err(DomainError::NotFound(_)) => return not_found(&admin),
                Err(error) => return failed("making a client secret", error),
            }
        }
        ("remove", true) => match state.domain.remove_application(principal, &client_id).await {
            Ok(()) => {
                tracing::info!(
                    instance_id = %principal.instance_id,
                    token_id = %principal.token_id,
                    %client_id,
                    "console: application removed"
                );
                return see_other(PATH);
            }
            Err(DomainError::Invalid { field, reason }) => Invalid::new(field, &reason),
            Err(DomainError::NotFound(_)) => return not_found(&admin),
            Err(error) => return failed("removing an application", error),
        },
        _ => return not_found(&admin),
    };
    let outcome = Outcome {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        typed: None,
        invalid: Some(&refused),
    };
    application_page(&state, &admin, &client_id, outcome).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_paths_are_percent_encoded() {
        assert_eq!(application_path("a b/c"), "/console/applications/a%20b%2Fc");
    }
}
