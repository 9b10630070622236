//! `/console/users`: the instance's users a page at a time (by login name, as the admin API's
//! `/users` lists them), a create form, and one user with their live sessions and the forms
//! that sign them out, deactivate, reactivate, remove the user or set a password. Every POST
//! carries the session's CSRF token; removing a user and signing out of every session also
//! need a ticked "I understand" box (no script needed to confirm).

use axum::Form;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use domain::{DomainError, NewUser, Profile, SessionView, TerminationReason, UserState, UserView};
use protocol::response::escape_html;
use serde::Deserialize;

use super::auth::ConsoleAdmin;
use super::form::{Invalid, action_form, confirm_box, csrf_field, general_error, input};
use super::page::{self, failed, see_other, segment};
use crate::http::AppState;

/// The list page's path.
pub const PATH: &str = "/console/users";
/// Users per page.
const PAGE: u32 = 50;

fn user_path(user_id: &str) -> String {
    format!("{PATH}/{}", segment(user_id))
}

/// The create form as typed (the password is never shown again).
#[derive(Default, Deserialize)]
pub struct CreateForm {
    csrf: Option<String>,
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

fn create_form(admin: &ConsoleAdmin, typed: &CreateForm, invalid: Option<&Invalid>) -> String {
    let general = general_error(invalid, &["username", "email", "password"]);
    format!(
        "<h2 id=\"create\">Add a user</h2>{general}\
         <form method=\"post\" action=\"{PATH}\" class=\"filters\" aria-labelledby=\"create\">{csrf}\
         {username}{email}{password}<button type=\"submit\">Add user</button></form>",
        csrf = csrf_field(admin),
        username = input(
            "new-username",
            "username",
            "Login name",
            "text",
            &typed.username,
            " required autocomplete=\"off\"",
            invalid
        ),
        email = input(
            "new-email",
            "email",
            "E-mail (optional)",
            "email",
            &typed.email,
            " autocomplete=\"off\"",
            invalid
        ),
        password = input(
            "new-password",
            "password",
            "Initial password (at least 8 characters)",
            "password",
            "",
            " required autocomplete=\"new-password\"",
            invalid
        ),
    )
}

fn state_label(state: UserState) -> &'static str {
    match state {
        UserState::Inactive => "inactive",
        UserState::Active | UserState::Unknown | UserState::Removed => "active",
    }
}

fn table(users: &[UserView]) -> String {
    if users.is_empty() {
        return "<p>No users here.</p>".to_owned();
    }
    let rows: String = users
        .iter()
        .map(|user| {
            format!(
                "<tr><th scope=\"row\"><a href=\"{href}\">{name}</a></th><td>{email}</td>\
                 <td>{state}</td></tr>",
                href = escape_html(&user_path(&user.user_id)),
                name = escape_html(&user.username),
                email = escape_html(user.profile.email.as_deref().unwrap_or("")),
                state = state_label(user.state),
            )
        })
        .collect();
    format!(
        "<div class=\"table\"><table><caption>Users by login name</caption><thead><tr>\
         <th scope=\"col\">Login name</th><th scope=\"col\">E-mail</th>\
         <th scope=\"col\">State</th></tr></thead><tbody>{rows}</tbody></table></div>"
    )
}

/// Which users the list shows: those whose login name or e-mail starts with `find` (all when
/// empty), from after the login name `after`.
#[derive(Default)]
struct Listing {
    find: String,
    after: String,
}

impl Listing {
    fn parse(raw: Option<&str>) -> Self {
        let mut listing = Listing::default();
        for (name, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            match name.as_ref() {
                "find" => listing.find = value.trim().to_owned(),
                "after" => listing.after = value.trim().to_owned(),
                _ => {}
            }
        }
        listing
    }
}

/// The list page with the create form below it.
async fn list_page(
    state: &AppState,
    admin: &ConsoleAdmin,
    listing: &Listing,
    status: StatusCode,
    typed: &CreateForm,
    invalid: Option<&Invalid>,
) -> Response {
    let instance_id = &admin.session.principal.instance_id;
    let found = if listing.find.is_empty() {
        state.domain.users(instance_id, &listing.after, PAGE).await
    } else {
        state
            .domain
            .find_users(instance_id, &listing.find, &listing.after, PAGE)
            .await
    };
    let users = match found {
        Ok(users) => users,
        Err(error) => return failed("listing users", error),
    };
    let next = (users.len() == PAGE as usize)
        .then(|| users.last())
        .flatten()
        .map(|last| {
            let mut query = form_urlencoded::Serializer::new(String::new());
            if !listing.find.is_empty() {
                query.append_pair("find", &listing.find);
            }
            query.append_pair("after", &last.username);
            format!(
                "<p><a href=\"{PATH}?{}\" rel=\"next\">Next page</a></p>",
                escape_html(&query.finish())
            )
        })
        .unwrap_or_default();
    let search = format!(
        "<form method=\"get\" action=\"{PATH}\" class=\"filters\" aria-label=\"Find users\">\
         {find}{after}<button type=\"submit\">Show</button></form>",
        find = input(
            "find",
            "find",
            "Login name or e-mail starts with",
            "search",
            &listing.find,
            "",
            None
        ),
        after = input(
            "after",
            "after",
            "Login names after",
            "search",
            &listing.after,
            "",
            None
        ),
    );
    let table = if users.is_empty() && !listing.find.is_empty() {
        "<p>No user's login name or e-mail starts with that.</p>".to_owned()
    } else {
        table(&users)
    };
    let body = format!(
        "<h1>Users</h1>{search}{table}{next}{create}",
        create = create_form(admin, typed, invalid),
    );
    page::signed_in(status, PATH, &admin.session.csrf, "Users", &body)
}

/// `GET /console/users`
pub async fn list(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    RawQuery(raw): RawQuery,
) -> Response {
    list_page(
        &state,
        &admin,
        &Listing::parse(raw.as_deref()),
        StatusCode::OK,
        &CreateForm::default(),
        None,
    )
    .await
}

/// `POST /console/users`: adds a user, then to their page; a wrong field gets the list page
/// again with 422, the error next to the field and what was typed (but the password) kept.
pub async fn create(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Form(typed): Form<CreateForm>,
) -> Response {
    if !admin.csrf_matches(typed.csrf.as_deref()) {
        return ConsoleAdmin::csrf_refused();
    }
    let invalid = |field: &str, message: &str| Invalid {
        field: field.to_owned(),
        message: message.to_owned(),
    };
    let refusal = if typed.username.trim().is_empty() {
        Some(invalid("username", "Enter a login name."))
    } else if typed.password.is_empty() {
        Some(invalid("password", "Enter an initial password."))
    } else {
        let email = typed.email.trim();
        let new = NewUser {
            username: typed.username.trim().to_owned(),
            password: typed.password.clone(),
            profile: Profile {
                email: (!email.is_empty()).then(|| email.to_owned()),
                ..Profile::default()
            },
        };
        match state.domain.add_user(&admin.session.principal, new).await {
            Ok(user) => {
                tracing::info!(
                    instance_id = %admin.session.principal.instance_id,
                    token_id = %admin.session.principal.token_id,
                    user_id = %user.user_id,
                    "console: user added"
                );
                return see_other(&user_path(&user.user_id));
            }
            Err(DomainError::Invalid { field, reason }) => Some(invalid(field, &reason)),
            Err(error) => return failed("adding a user", error),
        }
    };
    list_page(
        &state,
        &admin,
        &Listing::default(),
        StatusCode::UNPROCESSABLE_ENTITY,
        &typed,
        refusal.as_ref(),
    )
    .await
}

/// What a POST on a user's page left to show (an error above the forms).
struct Outcome<'a> {
    status: StatusCode,
    invalid: Option<&'a Invalid>,
}

async fn sessions_with_applications(
    state: &AppState,
    instance_id: &str,
    user_id: &str,
) -> Result<Vec<(SessionView, Vec<String>)>, DomainError> {
    let sessions = state
        .domain
        .sessions_of_user(instance_id, user_id, false)
        .await?;
    let mut shown = Vec::with_capacity(sessions.len());
    for session in sessions {
        let applications = state
            .domain
            .applications_of_session(instance_id, &session.session_id)
            .await?;
        shown.push((session, applications));
    }
    Ok(shown)
}

fn sessions_table(
    admin: &ConsoleAdmin,
    user: &UserView,
    sessions: &[(SessionView, Vec<String>)],
) -> String {
    if sessions.is_empty() {
        return "<p>No live sessions.</p>".to_owned();
    }
    let rows: String = sessions
        .iter()
        .map(|(session, applications)| {
            let action = format!(
                "{}/sessions/{}/sign-out",
                user_path(&user.user_id),
                segment(&session.session_id)
            );
            format!(
                "<tr><th scope=\"row\">{id}</th><td>{auth}</td><td>{expires}</td>\
                 <td>{applications}</td><td>{form}</td></tr>",
                id = escape_html(&session.session_id),
                auth = escape_html(&session.auth_time),
                expires = escape_html(&session.expires_at),
                applications = escape_html(&applications.join(", ")),
                form = action_form(admin, &action, "", "Sign out"),
            )
        })
        .collect();
    format!(
        "<div class=\"table\"><table><caption>Live sessions, oldest first</caption><thead><tr>\
         <th scope=\"col\">Session</th><th scope=\"col\">Signed in at</th>\
         <th scope=\"col\">Expires at</th><th scope=\"col\">Applications</th>\
         <th scope=\"col\">Action</th></tr></thead><tbody>{rows}</tbody></table></div>"
    )
}

/// A user's page.
async fn user_page(
    state: &AppState,
    admin: &ConsoleAdmin,
    user_id: &str,
    outcome: Outcome<'_>,
) -> Response {
    let instance_id = &admin.session.principal.instance_id;
    let user = match state.domain.user(instance_id, user_id).await {
        Ok(user) => user,
        Err(DomainError::NotFound(_)) => return not_found(admin),
        Err(error) => return failed("reading a user", error),
    };
    let sessions = match sessions_with_applications(state, instance_id, user_id).await {
        Ok(sessions) => sessions,
        Err(error) => return failed("reading a user's sessions", error),
    };
    let optional = |value: &Option<String>| escape_html(value.as_deref().unwrap_or("—"));
    let field = |label: &str, value: String| format!("<dt>{label}</dt><dd>{value}</dd>");
    let fields = [
        field("User ID", escape_html(&user.user_id)),
        field("Login name", escape_html(&user.username)),
        field("State", state_label(user.state).to_owned()),
        field("E-mail", optional(&user.profile.email)),
        field(
            "E-mail verified",
            (if user.profile.email_verified {
                "yes"
            } else {
                "no"
            })
            .to_owned(),
        ),
        field("Given name", optional(&user.profile.given_name)),
        field("Family name", optional(&user.profile.family_name)),
        field("Created at", escape_html(&user.created_at)),
    ]
    .concat();
    let base = user_path(&user.user_id);
    let invalid = outcome.invalid;
    let general = general_error(
        invalid,
        &["password", "sign-out-all-confirm", "remove-confirm"],
    );
    let sign_out_all = if sessions.is_empty() {
        String::new()
    } else {
        action_form(
            admin,
            &format!("{base}/sign-out"),
            &confirm_box(
                "sign-out-all-confirm",
                "I understand this ends every session of this user",
                invalid,
            ),
            "Sign out of all sessions",
        )
    };
    let state_form = match user.state {
        UserState::Inactive => action_form(admin, &format!("{base}/reactivate"), "", "Reactivate"),
        _ => action_form(
            admin,
            &format!("{base}/deactivate"),
            "",
            "Deactivate (and end the user's sessions)",
        ),
    };
    let password = action_form(
        admin,
        &format!("{base}/password"),
        &input(
            "password",
            "password",
            "New password (at least 8 characters)",
            "password",
            "",
            " required autocomplete=\"new-password\"",
            invalid,
        ),
        "Set password",
    );
    let remove = action_form(
        admin,
        &format!("{base}/remove"),
        &confirm_box(
            "remove-confirm",
            "I understand this removes the user for good",
            invalid,
        ),
        "Remove user",
    );
    let body = format!(
        "<p><a href=\"{PATH}\">All users</a></p><h1>{name}</h1>{general}\
         <dl class=\"fields\">{fields}</dl>\
         <h2>Sessions</h2>{sessions}{sign_out_all}\
         <h2>Password</h2>{password}\
         <h2>Account</h2>{state_form}{remove}",
        name = escape_html(&user.username),
        sessions = sessions_table(admin, &user, &sessions),
    );
    page::signed_in(outcome.status, PATH, &admin.session.csrf, "User", &body)
}

fn not_found(admin: &ConsoleAdmin) -> Response {
    page::signed_in(
        StatusCode::NOT_FOUND,
        PATH,
        &admin.session.csrf,
        "No such user",
        &format!("<h1>No such user</h1><p><a href=\"{PATH}\">All users</a></p>"),
    )
}

/// `GET /console/users/{user_id}`
pub async fn show(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Path(user_id): Path<String>,
) -> Response {
    let outcome = Outcome {
        status: StatusCode::OK,
        invalid: None,
    };
    user_page(&state, &admin, &user_id, outcome).await
}

/// The forms on a user's page: the CSRF token, and the confirmation or password some carry.
#[derive(Deserialize)]
pub struct ActionForm {
    csrf: Option<String>,
    confirm: Option<String>,
    password: Option<String>,
}

/// What an action did: back to the user's page (or the list, after a removal), or the page
/// again with an error.
enum Done {
    To(String),
    Refused(Invalid),
}

async fn act(
    state: &AppState,
    admin: &ConsoleAdmin,
    user_id: &str,
    action: &str,
    form: &ActionForm,
) -> Result<Done, DomainError> {
    let principal = &admin.session.principal;
    let instance_id = &principal.instance_id;
    // Every action is about a user of this instance; an unknown id is a 404.
    state.domain.user(instance_id, user_id).await?;
    let origin = || async {
        state
            .domain
            .instance(instance_id)
            .await
            .map(|instance| instance.external_url)
    };
    let confirmed = form.confirm.as_deref() == Some("yes");
    let refused = |field: &str, message: &str| {
        Done::Refused(Invalid {
            field: field.to_owned(),
            message: message.to_owned(),
        })
    };
    let back = Done::To(user_path(user_id));
    match action {
        "deactivate" => {
            state
                .domain
                .deactivate_user(principal, user_id, &origin().await?)
                .await?;
        }
        "reactivate" => {
            state.domain.reactivate_user(principal, user_id).await?;
        }
        "sign-out" => {
            if !confirmed {
                return Ok(refused(
                    "sign-out-all-confirm",
                    "Tick the box to confirm signing the user out of every session.",
                ));
            }
            state
                .domain
                .sign_out_user(
                    instance_id,
                    user_id,
                    TerminationReason::Admin,
                    &origin().await?,
                    &principal.token_id,
                )
                .await?;
        }
        "remove" => {
            if !confirmed {
                return Ok(refused(
                    "remove-confirm",
                    "Tick the box to confirm removing the user.",
                ));
            }
            state
                .domain
                .remove_user(principal, user_id, &origin().await?)
                .await?;
            return Ok(Done::To(PATH.to_owned()));
        }
        "password" => {
            let password = form.password.clone().unwrap_or_default();
            if password.is_empty() {
                return Ok(refused("password", "Enter a new password."));
            }
            let origin = origin().await?;
            match state
                .domain
                .set_password(principal, user_id, password, &origin)
                .await
            {
                Ok(()) => {}
                Err(DomainError::Invalid { field, reason }) => return Ok(refused(field, &reason)),
                Err(error) => return Err(error),
            }
        }
        _ => return Err(DomainError::NotFound(format!("action {action}"))),
    }
    Ok(back)
}

async fn finish(
    state: &AppState,
    admin: &ConsoleAdmin,
    user_id: &str,
    what: &str,
    done: Result<Done, DomainError>,
) -> Response {
    match done {
        Ok(Done::To(path)) => {
            tracing::info!(
                instance_id = %admin.session.principal.instance_id,
                token_id = %admin.session.principal.token_id,
                %user_id,
                action = what,
                "console: user changed"
            );
            see_other(&path)
        }
        Ok(Done::Refused(invalid)) => {
            let outcome = Outcome {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                invalid: Some(&invalid),
            };
            user_page(state, admin, user_id, outcome).await
        }
        Err(DomainError::NotFound(_)) => not_found(admin),
        Err(DomainError::Invalid { field, reason }) => {
            let invalid = Invalid {
                field: field.to_owned(),
                message: reason,
            };
            let outcome = Outcome {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                invalid: Some(&invalid),
            };
            user_page(state, admin, user_id, outcome).await
        }
        Err(error) => failed(what, error),
    }
}

/// `POST /console/users/{user_id}/{action}`: `deactivate`, `reactivate`, `sign-out` (every
/// session, confirmed), `remove` (confirmed) or `password`.
pub async fn action(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Path((user_id, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Response {
    if !admin.csrf_matches(form.csrf.as_deref()) {
        return ConsoleAdmin::csrf_refused();
    }
    let done = act(&state, &admin, &user_id, &action, &form).await;
    finish(&state, &admin, &user_id, &action, done).await
}

/// `POST /console/users/{user_id}/sessions/{session_id}/sign-out`: ends one of the user's
/// sessions (a session of another user is not found).
pub async fn sign_out_session(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Path((user_id, session_id)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Response {
    if !admin.csrf_matches(form.csrf.as_deref()) {
        return ConsoleAdmin::csrf_refused();
    }
    let principal = &admin.session.principal;
    let instance_id = &principal.instance_id;
    let done = async {
        let sessions = state
            .domain
            .sessions_of_user(instance_id, &user_id, true)
            .await?;
        if !sessions
            .iter()
            .any(|session| session.session_id == session_id)
        {
            return Err(DomainError::NotFound(format!("session {session_id}")));
        }
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
            .await?;
        Ok(Done::To(user_path(&user_id)))
    }
    .await;
    finish(&state, &admin, &user_id, "session sign-out", done).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_paths_are_percent_encoded() {
        assert_eq!(user_path("a b/c"), "/console/users/a%20b%2Fc");
    }
}
