//! `/console/sessions`: the instance's live sessions a page at a time, newest first (keyset
//! paging through `Domain::live_sessions_page`, so the hundred-thousandth session costs what
//! the first does), filtered by user and by application, each with an "End" form that ends
//! the session as the admin API's `DELETE /sessions/{session_id}` does (reason `admin`, so its
//! applications get their back-channel logout) and comes back to the same filtered page.

use axum::Form;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use domain::session::{LiveSession, SessionCursor, SessionFilter};
use domain::{DomainError, TerminationReason};
use protocol::response::escape_html;
use serde::Deserialize;

use super::auth::ConsoleAdmin;
use super::page::{self, failed, see_other, segment};
use crate::http::AppState;

/// The list page's path.
pub const PATH: &str = "/console/sessions";
/// Sessions per page.
const PAGE: u32 = 50;

/// The filters and the page as the query string (or the End form) carries them; empty fields
/// are unset.
#[derive(Debug, Default, Deserialize)]
pub struct Query {
    #[serde(default)]
    user: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    cursor: String,
}

impl Query {
    fn parse(raw: Option<&str>) -> Self {
        let mut query = Query::default();
        for (name, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            let value = value.trim().to_owned();
            match name.as_ref() {
                "user" => query.user = value,
                "client_id" => query.client_id = value,
                "cursor" => query.cursor = value,
                _ => {}
            }
        }
        query
    }

    fn filter(&self) -> SessionFilter {
        let present = |value: &str| (!value.is_empty()).then(|| value.to_owned());
        SessionFilter {
            username: present(self.user.trim()),
            client_id: present(self.client_id.trim()),
        }
    }

    /// The cursor, if the query has a readable one (an unreadable one starts at the top).
    fn cursor(&self) -> Option<SessionCursor> {
        let (created_at, session_id) = self.cursor.split_once('~')?;
        Some(SessionCursor {
            created_at: created_at.to_owned(),
            session_id: session_id.to_owned(),
        })
    }

    /// This query's string with `cursor` in place of its own (none: the first page).
    fn with_cursor(&self, cursor: Option<&str>) -> String {
        let mut serializer = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("user", self.user.trim()),
            ("client_id", self.client_id.trim()),
            ("cursor", cursor.unwrap_or_default()),
        ] {
            if !value.is_empty() {
                serializer.append_pair(name, value);
            }
        }
        serializer.finish()
    }

    /// The list page showing this query.
    fn path(&self) -> String {
        let query = self.with_cursor(Some(&self.cursor));
        if query.is_empty() {
            PATH.to_owned()
        } else {
            format!("{PATH}?{query}")
        }
    }
}

fn encode_cursor(cursor: &SessionCursor) -> String {
    format!("{}~{}", cursor.created_at, cursor.session_id)
}

fn filter_form(query: &Query) -> String {
    let field = |id: &str, label: &str, value: &str| {
        format!(
            "<div><label for=\"{id}\">{label}</label>\
             <input id=\"{id}\" name=\"{id}\" type=\"search\" value=\"{value}\"></div>",
            value = escape_html(value),
        )
    };
    format!(
        "<form method=\"get\" action=\"{PATH}\" class=\"filters\" aria-label=\"Filter sessions\">\
         {user}{client}<button type=\"submit\">Filter</button></form>",
        user = field("user", "User (login name)", &query.user),
        client = field("client_id", "Application (client ID)", &query.client_id),
    )
}

/// The hidden fields that bring the End form back to this page.
fn return_fields(query: &Query) -> String {
    [
        ("user", &query.user),
        ("client_id", &query.client_id),
        ("cursor", &query.cursor),
    ]
    .iter()
    .filter(|(_, value)| !value.is_empty())
    .map(|(name, value)| {
        format!(
            "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
            escape_html(value)
        )
    })
    .collect()
}

fn table(admin: &ConsoleAdmin, query: &Query, sessions: &[LiveSession]) -> String {
    if sessions.is_empty() {
        return "<p>No live sessions match.</p>".to_owned();
    }
    let rows: String = sessions
        .iter()
        .map(|live| {
            let session = &live.session;
            let user = escape_html(live.username.as_deref().unwrap_or(&session.user_id));
            let applications = if live.applications.is_empty() {
                "—".to_owned()
            } else {
                escape_html(&live.applications.join(", "))
            };
            let action = format!("{PATH}/{}/end", segment(&session.session_id));
            format!(
                "<tr><th scope=\"row\"><a href=\"{href}\">{user}</a></th><td>{started}</td>\
                 <td>{expires}</td><td>{applications}</td><td>\
                 <form method=\"post\" action=\"{action}\" class=\"action\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">{back}\
                 <button type=\"submit\" aria-label=\"End session {sid} of {user}\">End</button>\
                 </form></td></tr>",
                href = escape_html(&format!("/console/users/{}", segment(&session.user_id))),
                started = escape_html(&session.auth_time),
                expires = escape_html(&session.expires_at),
                action = escape_html(&action),
                csrf = escape_html(&admin.session.csrf),
                back = return_fields(query),
                sid = escape_html(&session.session_id),
            )
        })
        .collect();
    format!(
        "<div class=\"table\"><table><caption>Live sessions, newest first</caption><thead><tr>\
         <th scope=\"col\">User</th><th scope=\"col\">Signed in at</th>\
         <th scope=\"col\">Expires at</th><th scope=\"col\">Applications</th>\
         <th scope=\"col\">Action</th></tr></thead><tbody>{rows}</tbody></table></div>"
    )
}

/// `GET /console/sessions`
pub async fn list(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = Query::parse(raw.as_deref());
    let instance_id = &admin.session.principal.instance_id;
    let cursor = query.cursor();
    let sessions = match state
        .domain
        .live_sessions_page(instance_id, &query.filter(), cursor.as_ref(), PAGE)
        .await
    {
        Ok(sessions) => sessions,
        Err(error) => return failed("listing sessions", error),
    };
    let next = (sessions.len() == PAGE as usize)
        .then(|| sessions.last())
        .flatten()
        .map(|last| {
            let next = query.with_cursor(Some(&encode_cursor(&last.cursor)));
            format!(
                "<p><a href=\"{PATH}?{}\" rel=\"next\">Next page</a></p>",
                escape_html(&next)
            )
        })
        .unwrap_or_default();
    let first = if cursor.is_some() {
        format!(
            "<p><a href=\"{}\">First page</a></p>",
            escape_html(&format!("{PATH}?{}", query.with_cursor(None)))
        )
    } else {
        String::new()
    };
    let body = format!(
        "<h1>Sessions</h1>{form}{first}{table}{next}",
        form = filter_form(&query),
        table = table(&admin, &query, &sessions),
    );
    page::signed_in(StatusCode::OK, PATH, &admin.session.csrf, "Sessions", &body)
}

/// The End form: the CSRF token and the page to come back to.
#[derive(Deserialize)]
pub struct EndForm {
    csrf: Option<String>,
    #[serde(flatten)]
    back: Query,
}

/// `POST /console/sessions/{session_id}/end`: ends the session (reason `admin`, as the admin
/// API does), then back to the list with the same filters and page (303). Ending a session
/// that has ended since the page was shown succeeds and records nothing.
pub async fn end(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Path(session_id): Path<String>,
    Form(form): Form<EndForm>,
) -> Response {
    if !admin.csrf_matches(form.csrf.as_deref()) {
        return ConsoleAdmin::csrf_refused();
    }
    let principal = &admin.session.principal;
    let instance_id = &principal.instance_id;
    let ended = async {
        let origin = state.domain.instance(instance_id).await?.external_url;
        state
            .domain
            .terminate_session(
                instance_id,
                &session_id,
                TerminationReason::Admin,
                &origin,
                &principal.token_id,
            )
            .await
    }
    .await;
    match ended {
        Ok(()) => {
            tracing::info!(
                instance_id = %instance_id,
                token_id = %principal.token_id,
                %session_id,
                "console: session ended"
            );
            see_other(&form.back.path())
        }
        Err(DomainError::NotFound(_)) => page::signed_in(
            StatusCode::NOT_FOUND,
            PATH,
            &admin.session.csrf,
            "No such session",
            &format!("<h1>No such session</h1><p><a href=\"{PATH}\">All sessions</a></p>"),
        ),
        Err(error) => failed("ending a session", error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_keeps_its_filters_and_reads_its_cursor() {
        let query = Query::parse(Some(
            "user=+carol+&client_id=app%201&cursor=2026-11-29T10%3A00%3A00%2B00%3A00~abc",
        ));
        assert_eq!(
            query.filter(),
            SessionFilter {
                username: Some("carol".into()),
                client_id: Some("app 1".into()),
            }
        );
        assert_eq!(
            query.cursor(),
            Some(SessionCursor {
                created_at: "2026-11-29T10:00:00+00:00".into(),
                session_id: "abc".into(),
            })
        );
        assert_eq!(
            query.path(),
            "/console/sessions?user=carol&client_id=app+1&cursor=2026-11-29T10%3A00%3A00%2B00%3A00%7Eabc"
        );
        assert_eq!(Query::parse(None).path(), PATH);
        assert_eq!(Query::parse(Some("cursor=garbage")).cursor(), None);
    }
}
