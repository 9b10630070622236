//! An instance's live sessions a page at a time, newest first, for the console's Sessions
//! page: keyset paging over the `sessions_live_newest` index (never an offset, never every
//! row), each session with its user's login name and the applications it is signed in to.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use eventstore::{EventStore, KEYS_PER_STATEMENT, Projection, SqlValue};

use super::SessionView;
use crate::error::DomainError;
use crate::grant::GrantProjection;
use crate::service::Domain;
use crate::user::normalize_username;

/// Which live sessions to list; `None` is any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionFilter {
    /// Only the sessions of the user with this login name (as typed; compared as sign-in does).
    pub username: Option<String>,
    /// Only the sessions signed in to this application.
    pub client_id: Option<String>,
}

/// Where the next page starts: after the session that began at `created_at` (RFC 3339, as
/// the read model stores it) with `session_id`, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCursor {
    /// When the last listed session began.
    pub created_at: String,
    /// Its id, which breaks ties between sessions begun at the same moment.
    pub session_id: String,
}

/// A live session as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSession {
    /// The session.
    pub session: SessionView,
    /// The user's login name (none if the user is gone from the read model).
    pub username: Option<String>,
    /// The applications it is signed in to, by name, sorted.
    pub applications: Vec<String>,
    /// Where the page after this session starts.
    pub cursor: SessionCursor,
}

/// The page statement for each combination of filters present (bit 0 the user, bit 1 the
/// application, bit 2 the cursor). Built per combination rather than with
/// `($n IS NULL OR …)`, which would keep SQLite's planner from using the index's range for
/// the cursor; and once, because the store caches statements by their `'static` text.
static PAGE_STATEMENTS: LazyLock<Vec<String>> =
    LazyLock::new(|| (0..8).map(page_statement).collect());

fn page_statement(shape: usize) -> String {
    let mut sql = String::from(
        "SELECT s.instance_id, s.session_id, s.user_id, s.auth_time, s.expires_at, s.user_agent,
            s.terminated, s.created_at, u.username
         FROM sessions s LEFT JOIN users u ON u.instance_id = s.instance_id AND u.user_id = s.user_id
         WHERE s.instance_id = $1 AND s.terminated = false AND s.expires_at > $2",
    );
    let mut n = 2;
    if shape & 1 != 0 {
        n += 1;
        sql.push_str(&format!(
            " AND s.user_id IN (SELECT user_id FROM users WHERE instance_id = $1 AND username_lower = ${n})"
        ));
    }
    if shape & 2 != 0 {
        n += 1;
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM oidc_grants g WHERE g.instance_id = s.instance_id
                AND g.session_id = s.session_id AND g.client_id = ${n})"
        ));
    }
    if shape & 4 != 0 {
        let (at, id) = (n + 1, n + 2);
        n += 2;
        sql.push_str(&format!(
            " AND s.created_at <= ${at} AND (s.created_at < ${at} OR s.session_id < ${id})"
        ));
    }
    sql.push_str(&format!(
        " ORDER BY s.created_at DESC, s.session_id DESC LIMIT ${}",
        n + 1
    ));
    sql
}

/// One page of live sessions, newest first, each with its user's login name and when it
/// began as stored (the cursor's key).
async fn live_page(
    store: &dyn EventStore,
    instance_id: &str,
    filter: &SessionFilter,
    after: Option<&SessionCursor>,
    now: chrono::DateTime<chrono::Utc>,
    limit: u32,
) -> Result<Vec<(SessionView, Option<String>, String)>, DomainError> {
    let mut shape = 0;
    let mut params: Vec<SqlValue> = vec![instance_id.into(), now.to_rfc3339().into()];
    if let Some(username) = &filter.username {
        shape |= 1;
        let lower = normalize_username(username).unwrap_or_else(|_| username.to_lowercase());
        params.push(lower.into());
    }
    if let Some(client_id) = &filter.client_id {
        shape |= 2;
        params.push(client_id.as_str().into());
    }
    if let Some(after) = after {
        shape |= 4;
        params.push(after.created_at.as_str().into());
        params.push(after.session_id.as_str().into());
    }
    params.push(i64::from(limit).into());
    let sql: &'static str = PAGE_STATEMENTS[shape].as_str();
    let rows = store.query(sql, &params).await?;
    rows.iter()
        .map(|row| {
            let session = SessionView {
                instance_id: row.text(0)?.to_owned(),
                session_id: row.text(1)?.to_owned(),
                user_id: row.text(2)?.to_owned(),
                auth_time: row.text(3)?.to_owned(),
                expires_at: row.text(4)?.to_owned(),
                user_agent: row.opt_text(5)?.map(str::to_owned),
                terminated: row.bool(6)?,
            };
            Ok((
                session,
                row.opt_text(8)?.map(str::to_owned),
                row.text(7)?.to_owned(),
            ))
        })
        .collect()
}

/// The application names of [`KEYS_PER_STATEMENT`] sessions ($2…) of one instance ($1).
static NAMES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT DISTINCT g.session_id, a.name FROM oidc_grants g JOIN applications a
           ON a.instance_id = g.instance_id AND a.client_id = g.client_id
         WHERE g.instance_id = $1 AND g.session_id IN ({})
         ORDER BY g.session_id, a.name",
        eventstore::key_placeholders(2)
    )
});

/// The names of the applications each of `sessions` is signed in to, sorted, by session id;
/// one statement per [`KEYS_PER_STATEMENT`] sessions (a page is one).
async fn application_names(
    store: &dyn EventStore,
    instance_id: &str,
    sessions: &[&str],
) -> Result<BTreeMap<String, Vec<String>>, DomainError> {
    let mut names: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for chunk in sessions.chunks(KEYS_PER_STATEMENT) {
        let mut params: Vec<SqlValue> = vec![instance_id.into()];
        // A short chunk repeats its last id, which an `IN` list ignores: one statement shape.
        for index in 0..KEYS_PER_STATEMENT {
            let key = chunk.get(index).or(chunk.last()).copied().unwrap_or("");
            params.push(key.into());
        }
        for row in &store.query(NAMES.as_str(), &params).await? {
            names
                .entry(row.text(0)?.to_owned())
                .or_default()
                .push(row.text(1)?.to_owned());
        }
    }
    Ok(names)
}

impl Domain {
    /// Up to `limit` of an instance's live, unexpired sessions after `after`, newest first,
    /// with their users' login names and their applications. The grants read model is caught
    /// up first, as for [`Domain::applications_of_session`].
    pub async fn live_sessions_page(
        &self,
        instance_id: &str,
        filter: &SessionFilter,
        after: Option<&SessionCursor>,
        limit: u32,
    ) -> Result<Vec<LiveSession>, DomainError> {
        self.runner.catch_up(GrantProjection.name()).await?;
        let store = self.store.as_ref();
        let page = live_page(store, instance_id, filter, after, self.now(), limit).await?;
        let ids: Vec<&str> = page
            .iter()
            .map(|(session, _, _)| session.session_id.as_str())
            .collect();
        let mut names = application_names(store, instance_id, &ids).await?;
        Ok(page
            .into_iter()
            .map(|(session, username, created_at)| LiveSession {
                applications: names.remove(&session.session_id).unwrap_or_default(),
                cursor: SessionCursor {
                    created_at,
                    session_id: session.session_id.clone(),
                },
                username,
                session,
            })
            .collect())
    }
}
