//! `GET /console`: the instance at a glance: live sessions, sign-ins and session ends in the
//! last hour and day, back-channel deliveries by outcome, and how deliveries to each
//! application went lately: a chart of its last 24 hours (`super::chart`) and the health
//! table with the same figures in words. Every figure is a count query or a read model
//! grouped in the database; nothing is loaded row by row.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use std::collections::BTreeMap;

use domain::session::SessionActivity;
use domain::session_logout::{DeliveryCounts, DeliveryHealth, DeliveryHour, empty_day};
use domain::{AdminPrincipal, DomainError};
use protocol::response::escape_html;

use super::auth::ConsoleAdmin;
use super::{PREFIX, chart, page};
use crate::http::AppState;

/// One row of the health table.
pub(super) struct Row {
    /// The application's client id.
    pub client_id: String,
    /// The application's name.
    pub name: String,
    /// How deliveries to it went lately.
    pub health: DeliveryHealth,
}

/// Every application with a back-channel logout URI or with deliveries recorded, by client
/// id, as the admin API's `/back-channel-health` lists them.
async fn health_rows(state: &AppState, admin: &AdminPrincipal) -> Result<Vec<Row>, DomainError> {
    let paired = state
        .domain
        .delivery_health_of_applications(&admin.instance_id)
        .await?;
    Ok(paired
        .into_iter()
        .map(|(app, health)| Row {
            client_id: app.client_id,
            name: app.config.name,
            health,
        })
        .collect())
}

/// What the figures at the top show.
struct Figures {
    live: u64,
    activity: SessionActivity,
    counts: DeliveryCounts,
}

fn figures(figures: &Figures) -> String {
    let figure = |id: &str, label: &str, value: u64| {
        format!("<div><dt id=\"{id}\">{label}</dt><dd aria-labelledby=\"{id}\">{value}</dd></div>")
    };
    let activity = &figures.activity;
    let counts = &figures.counts;
    format!(
        "<dl class=\"figures\">{}{}{}{}{}</dl><dl class=\"figures\">{}{}{}</dl>",
        figure("live-sessions", "Live sessions", figures.live),
        figure(
            "sign-ins-hour",
            "Sign-ins, last hour",
            activity.last_hour.started
        ),
        figure(
            "sign-ins-day",
            "Sign-ins, last day",
            activity.last_day.started
        ),
        figure(
            "ends-hour",
            "Session ends, last hour",
            activity.last_hour.ended
        ),
        figure(
            "ends-day",
            "Session ends, last day",
            activity.last_day.ended
        ),
        figure("deliveries-sent", "Deliveries sent", counts.sent),
        figure("deliveries-failed", "Deliveries failed", counts.failed),
        figure("deliveries-pending", "Deliveries pending", counts.pending),
    )
}

/// A chart per application of the health table, in its order.
fn charts(
    rows: &[Row],
    mut hours: BTreeMap<String, Vec<DeliveryHour>>,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let figures: String = rows
        .iter()
        .enumerate()
        .map(|(index, row)| {
            let day = hours
                .remove(&row.client_id)
                .unwrap_or_else(|| empty_day(now));
            format!(
                "<figure class=\"chart\">{svg}<figcaption>{name}</figcaption></figure>",
                svg = chart::delivery_chart(&format!("chart-{index}"), &row.name, &day),
                name = escape_html(&row.name),
            )
        })
        .collect();
    format!(
        "<h3>Last 24 hours</h3><p class=\"legend\">Per hour: <span class=\"sent\">attempts \
         acknowledged</span>, <span class=\"failed\">attempts failed</span> (bars) and \
         <span class=\"latency\">median latency</span> from a session\u{2019}s end to the \
         acknowledgement (line). The table below has the figures.</p>\
         <div class=\"charts\">{figures}</div>"
    )
}

/// The health table (also on an application's page, with its one row).
pub(super) fn health_table(rows: &[Row], alert_after: u32) -> String {
    if rows.is_empty() {
        return "<p>No application has a back-channel logout URI.</p>".to_owned();
    }
    let body: String = rows
        .iter()
        .map(|row| {
            let health = &row.health;
            let alerting = health.consecutive_failures >= u64::from(alert_after);
            let status = if alerting {
                "<span class=\"alerting\">Alerting</span>"
            } else {
                "OK"
            };
            format!(
                "<tr><th scope=\"row\">{name}</th><td>{hour_sent}</td><td>{hour_failed}</td>\
                 <td>{day_sent}</td><td>{day_failed}</td><td>{in_a_row}</td><td>{status}</td>\
                 <td>{last_error}</td></tr>",
                name = escape_html(&row.name),
                hour_sent = health.last_hour.sent,
                hour_failed = health.last_hour.failed,
                day_sent = health.last_day.sent,
                day_failed = health.last_day.failed,
                in_a_row = health.consecutive_failures,
                last_error = escape_html(health.last_error.as_deref().unwrap_or("")),
            )
        })
        .collect();
    format!(
        "<div class=\"table\"><table><caption>Back-channel logout deliveries per application\
         </caption><thead><tr><th scope=\"col\">Application</th>\
         <th scope=\"col\">Sent, last hour</th><th scope=\"col\">Failed, last hour</th>\
         <th scope=\"col\">Sent, last day</th><th scope=\"col\">Failed, last day</th>\
         <th scope=\"col\">Failed in a row</th><th scope=\"col\">Status</th>\
         <th scope=\"col\">Last error</th></tr></thead><tbody>{body}</tbody></table></div>"
    )
}

/// `GET /console`
pub async fn show(State(state): State<AppState>, admin: ConsoleAdmin) -> Response {
    let principal = &admin.session.principal;
    let figures_and_rows = async {
        let instance_id = &principal.instance_id;
        // Independent reads, side by side: the store answers reads on several connections.
        let (live, activity, counts, hours, rows) = tokio::try_join!(
            state.domain.live_sessions_of_instance(instance_id),
            state.domain.session_activity(instance_id),
            state.domain.delivery_counts_of_instance(instance_id),
            state.domain.delivery_hours(instance_id),
            health_rows(&state, principal),
        )?;
        let figures = Figures {
            live,
            activity,
            counts,
        };
        Ok::<_, DomainError>((figures, hours, rows))
    };
    let (shown, hours, rows) = match figures_and_rows.await {
        Ok(found) => found,
        Err(error) => {
            tracing::error!(%error, "console overview failed");
            return page::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Please try again later.",
            );
        }
    };
    let body = format!(
        "<h1>Overview</h1>{}<h2>Delivery health</h2>{}{}",
        figures(&shown),
        charts(&rows, hours, state.domain.now()),
        health_table(&rows, state.settings.alert_consecutive_failures),
    );
    page::signed_in(
        StatusCode::OK,
        PREFIX,
        &admin.session.csrf,
        "Overview",
        &body,
    )
}

/// Any other console path: the pages issue 15 lists that are not built yet, and typos.
pub async fn not_built(admin: ConsoleAdmin) -> Response {
    page::signed_in(
        StatusCode::NOT_FOUND,
        "",
        &admin.session.csrf,
        "Not here yet",
        "<h1>Not here yet</h1><p>This console page does not exist (yet).</p>",
    )
}
