//! `/console/instance`: the instance's feature flags (turn on, turn off, reset to the system
//! value) and "sign out everyone" with a required confirmation, its progress page (reloaded
//! every second by a `<meta http-equiv="refresh">` while it runs) and the past operations. The
//! Domain calls, the feature-name parsing and the issuer are the admin API's
//! (`crate::http::admin::features`, `crate::http::admin::sign_out`).

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use domain::instance_sign_out::SignOutOperation;
use domain::{DomainError, FeatureState};
use protocol::response::escape_html;
use serde::Deserialize;

use super::auth::ConsoleAdmin;
use super::page::{self, failed, see_other};
use crate::http::AppState;
use crate::http::admin::features::feature as parse_feature;
use crate::http::admin::instance_issuer;
use crate::http::admin::sign_out::SignOutBody;

/// The instance page's path.
pub const PATH: &str = "/console/instance";
/// The "sign out everyone" form's target.
pub const SIGN_OUT_PATH: &str = "/console/instance/sign-out";
/// Past operations listed on the instance page.
const OPERATIONS_SHOWN: usize = 20;

fn on_off(value: bool) -> &'static str {
    if value { "on" } else { "off" }
}

/// A form whose only fields are the CSRF token and one button's value.
fn feature_form(csrf: &str, name: &str, action: &str, label: &str, secondary: bool) -> String {
    format!(
        "<form method=\"post\" action=\"{PATH}/features/{name}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <input type=\"hidden\" name=\"action\" value=\"{action}\">\
         <button type=\"submit\"{class} aria-label=\"{label} {name}\">{label}</button></form>",
        class = if secondary {
            " class=\"secondary\""
        } else {
            ""
        },
    )
}

fn features_table(features: &[FeatureState], csrf: &str) -> String {
    let csrf = escape_html(csrf);
    let rows: String = features
        .iter()
        .map(|state| {
            let name = escape_html(state.feature.name());
            let mut actions = String::new();
            if state.instance != Some(true) {
                actions.push_str(&feature_form(&csrf, &name, "on", "Turn on", false));
            }
            if state.instance != Some(false) {
                actions.push_str(&feature_form(&csrf, &name, "off", "Turn off", false));
            }
            if state.instance.is_some() {
                actions.push_str(&feature_form(
                    &csrf,
                    &name,
                    "reset",
                    "Reset to the system value",
                    true,
                ));
            }
            format!(
                "<tr><th scope=\"row\"><code>{name}</code></th><td>{system}</td>\
                 <td>{instance}</td><td>{effective}</td>\
                 <td><div class=\"actions\">{actions}</div></td></tr>",
                system = on_off(state.system),
                instance = state.instance.map(on_off).unwrap_or("not set"),
                effective = on_off(state.effective),
            )
        })
        .collect();
    format!(
        "<div class=\"table\"><table><caption>Feature flags: the instance value wins where \
         set</caption><thead><tr><th scope=\"col\">Feature</th>\
         <th scope=\"col\">System value</th><th scope=\"col\">Instance value</th>\
         <th scope=\"col\">In force</th><th scope=\"col\">Change</th></tr></thead>\
         <tbody>{rows}</tbody></table></div>"
    )
}

fn progress_path(operation_id: &str) -> String {
    format!("{SIGN_OUT_PATH}/{}", escape_html(operation_id))
}

fn state_of(operation: &SignOutOperation) -> &'static str {
    if operation.running() {
        "running"
    } else {
        "completed"
    }
}

fn operations_table(operations: &[SignOutOperation]) -> String {
    if operations.is_empty() {
        return "<p>Nobody has signed out everyone yet.</p>".to_owned();
    }
    let rows: String = operations
        .iter()
        .take(OPERATIONS_SHOWN)
        .map(|operation| {
            let started = &operation.started;
            format!(
                "<tr><th scope=\"row\"><a href=\"{href}\">{started_at}</a></th><td>{state}</td>\
                 <td>{ended} of {total}</td><td>{finished}</td><td>{by}</td></tr>",
                href = progress_path(&started.operation_id),
                started_at = escape_html(&started.started_at.to_rfc3339()),
                state = state_of(operation),
                ended = operation.ended,
                total = started.total,
                finished = escape_html(
                    &operation
                        .finished_at
                        .map(|at| at.to_rfc3339())
                        .unwrap_or_default()
                ),
                by = escape_html(&started.requested_by),
            )
        })
        .collect();
    format!(
        "<div class=\"table\"><table><caption>Sign-out-everyone operations, newest first\
         </caption><thead><tr><th scope=\"col\">Started at</th><th scope=\"col\">State</th>\
         <th scope=\"col\">Sessions ended</th><th scope=\"col\">Finished at</th>\
         <th scope=\"col\">Requested by (admin token)</th></tr></thead><tbody>{rows}</tbody>\
         </table></div>"
    )
}

/// The "sign out everyone" form, with the error of a submission without the confirmation.
fn sign_out_form(csrf: &str, error: Option<&str>) -> String {
    let (error, invalid) = match error {
        Some(message) => (
            format!(
                "<p class=\"error\" id=\"confirm-error\" role=\"alert\">{}</p>",
                escape_html(message)
            ),
            " aria-invalid=\"true\" aria-describedby=\"confirm-error\"",
        ),
        None => (String::new(), ""),
    };
    format!(
        "<form method=\"post\" action=\"{SIGN_OUT_PATH}\" class=\"sign-out-everyone\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">{error}\
         <div class=\"confirm\"><input type=\"checkbox\" id=\"confirm\" name=\"confirm\" \
         value=\"yes\" required{invalid}>\
         <label for=\"confirm\">I understand every session of this instance ends</label></div>\
         <button type=\"submit\">Sign out everyone</button></form>",
        csrf = escape_html(csrf),
    )
}

/// The instance page with `status`, and `error` next to the sign-out form.
async fn instance_page(
    state: &AppState,
    admin: &ConsoleAdmin,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let instance_id = &admin.session.principal.instance_id;
    let found = async {
        let features = state.domain.features(instance_id).await?;
        let operations = state.domain.sign_out_operations(instance_id).await?;
        Ok::<_, DomainError>((features, operations))
    };
    let (features, operations) = match found.await {
        Ok(found) => found,
        Err(error) => return failed("the instance page", error),
    };
    let csrf = &admin.session.csrf;
    let body = format!(
        "<h1>Instance</h1><h2>Feature flags</h2>{features}\
         <h2>Sign out everyone</h2><p>Ends every live session of this instance; each \
         session's applications get a back-channel logout notification. Sessions that begin \
         afterwards are not ended.</p>{form}<h2>Past operations</h2>{operations}",
        features = features_table(&features, csrf),
        form = sign_out_form(csrf, error),
        operations = operations_table(&operations),
    );
    page::signed_in(status, PATH, csrf, "Instance", &body)
}

/// `GET /console/instance`
pub async fn show(State(state): State<AppState>, admin: ConsoleAdmin) -> Response {
    instance_page(&state, &admin, StatusCode::OK, None).await
}

/// A feature's form: the CSRF token and `on`, `off` or `reset`.
#[derive(Deserialize)]
pub struct FeatureForm {
    csrf: Option<String>,
    action: Option<String>,
}

/// `POST /console/instance/features/{name}`: sets or resets the feature's instance value,
/// then back to the instance page.
pub async fn set_feature(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Path(name): Path<String>,
    Form(submitted): Form<FeatureForm>,
) -> Response {
    if !admin.csrf_matches(submitted.csrf.as_deref()) {
        return ConsoleAdmin::csrf_refused();
    }
    let Ok(feature) = parse_feature(&name) else {
        return page::signed_in(
            StatusCode::NOT_FOUND,
            PATH,
            &admin.session.csrf,
            "No such feature",
            &format!(
                "<h1>No such feature</h1><p>There is no feature {}.</p>\
                 <p><a href=\"{PATH}\">Back to the instance</a></p>",
                escape_html(&name)
            ),
        );
    };
    let principal = &admin.session.principal;
    let changed = match submitted.action.as_deref() {
        Some("on") => state.domain.set_feature(principal, feature, true).await,
        Some("off") => state.domain.set_feature(principal, feature, false).await,
        Some("reset") => state.domain.reset_feature(principal, feature).await,
        _ => {
            return page::error(
                StatusCode::BAD_REQUEST,
                "Unknown change",
                "Nothing was changed: the form asked for neither on, off nor reset.",
            );
        }
    };
    match changed {
        Ok(now) => {
            tracing::info!(
                instance_id = %principal.instance_id,
                token_id = %principal.token_id,
                feature = feature.name(),
                instance_value = ?now.instance,
                "console: feature changed"
            );
            see_other(PATH)
        }
        Err(error) => failed("changing a feature", error),
    }
}

/// The sign-out form: the CSRF token and the confirmation checkbox.
#[derive(Deserialize)]
pub struct SignOutForm {
    csrf: Option<String>,
    confirm: Option<String>,
}

/// `POST /console/instance/sign-out`: starts ending every live session (or finds the one
/// running), then to its progress page. Without the confirmation: the instance page again,
/// 422, nothing started.
pub async fn sign_out_everyone(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Form(submitted): Form<SignOutForm>,
) -> Response {
    if !admin.csrf_matches(submitted.csrf.as_deref()) {
        return ConsoleAdmin::csrf_refused();
    }
    if submitted.confirm.as_deref() != Some("yes") {
        return instance_page(
            &state,
            &admin,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("Nothing was started: tick the box to confirm that every session ends."),
        )
        .await;
    }
    let principal = &admin.session.principal;
    let origin = match instance_issuer(&state, principal).await {
        Ok(origin) => origin,
        Err(error) => return failed("reading the instance's issuer", error),
    };
    match state.domain.sign_out_everyone(principal, &origin).await {
        Ok((operation, started)) => {
            if started {
                state.sign_out_wake.notify_one();
                tracing::info!(
                    instance_id = %principal.instance_id,
                    token_id = %principal.token_id,
                    operation_id = %operation.started.operation_id,
                    "console: sign out everyone started"
                );
            }
            see_other(&format!(
                "{SIGN_OUT_PATH}/{}",
                operation.started.operation_id
            ))
        }
        Err(error) => failed("signing out everyone", error),
    }
}

/// The `<progress>` element's value and maximum. It needs a positive maximum: with no
/// session to end it is empty while running and full once completed.
fn bar(ended: u64, total: u64, running: bool) -> (u64, u64) {
    if total == 0 {
        (u64::from(!running), 1)
    } else {
        (ended.min(total), total)
    }
}

/// `GET /console/instance/sign-out/{operation_id}`: how far the operation got; reloads itself
/// every second while it runs.
pub async fn progress(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Path(operation_id): Path<String>,
) -> Response {
    let instance_id = &admin.session.principal.instance_id;
    let csrf = &admin.session.csrf;
    let progress = match state
        .domain
        .sign_out_progress(instance_id, &operation_id)
        .await
    {
        Ok(progress) => progress,
        Err(DomainError::NotFound(_)) => {
            return page::signed_in(
                StatusCode::NOT_FOUND,
                PATH,
                csrf,
                "No such operation",
                &format!(
                    "<h1>No such operation</h1><p>This instance has no sign-out-everyone \
                     operation with that id.</p><p><a href=\"{PATH}\">Back to the instance</a></p>"
                ),
            );
        }
        Err(error) => return failed("reading a sign-out operation", error),
    };
    let running = progress.operation.running();
    let body = SignOutBody::from(progress);
    let (value, max) = bar(body.sessions_ended, body.sessions_total, running);
    let field = |label: &str, value: String| format!("<dt>{label}</dt><dd>{value}</dd>");
    let fields = [
        field("State", escape_html(&body.state)),
        field("Started at", escape_html(&body.started_at)),
        field(
            "Finished at",
            escape_html(body.finished_at.as_deref().unwrap_or("—")),
        ),
        field(
            "Requested by (admin token)",
            escape_html(&body.requested_by),
        ),
        field(
            "Sessions ended",
            format!("{} of {}", body.sessions_ended, body.sessions_total),
        ),
        field(
            "Logout notifications sent",
            body.deliveries_sent.to_string(),
        ),
        field(
            "Logout notifications failed",
            body.deliveries_failed.to_string(),
        ),
        field(
            "Logout notifications pending",
            body.deliveries_pending.to_string(),
        ),
    ]
    .concat();
    let status_line = if running {
        "<p role=\"status\">Running: this page reloads every second until it is done.</p>"
    } else {
        "<p role=\"status\">Completed.</p>"
    };
    let html = format!(
        "<p><a href=\"{PATH}\">Back to the instance</a></p><h1>Sign out everyone</h1>\
         {status_line}<label for=\"sessions-ended\">Sessions ended</label>\
         <progress id=\"sessions-ended\" value=\"{value}\" max=\"{max}\">{ended} of {total}\
         </progress><dl class=\"fields\">{fields}</dl>",
        ended = body.sessions_ended,
        total = body.sessions_total,
    );
    let title = "Sign out everyone";
    if running {
        page::signed_in_refreshing(StatusCode::OK, PATH, csrf, title, &html)
    } else {
        page::signed_in(StatusCode::OK, PATH, csrf, title, &html)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_bar_always_has_a_positive_maximum() {
        assert_eq!(bar(0, 0, true), (0, 1));
        assert_eq!(bar(0, 0, false), (1, 1));
        assert_eq!(bar(2, 5, true), (2, 5));
        assert_eq!(bar(7, 5, false), (5, 5));
    }

    #[test]
    fn the_sign_out_form_requires_the_confirmation_and_escapes_its_token() {
        let html = sign_out_form("a\"b", Some("<tick>"));
        assert!(html.contains("value=\"a&quot;b\""), "{html}");
        assert!(html.contains("required aria-invalid=\"true\""), "{html}");
        assert!(html.contains("&lt;tick&gt;"), "{html}");
    }
}
