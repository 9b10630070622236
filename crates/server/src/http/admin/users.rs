//! `/admin/v1/users`: human users. Passwords go in, never come out: no response carries a
//! password or its hash.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::IntoResponse;
use domain::{NewUser, Profile, UserState, UserView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Admin, instance_issuer};
use super::body::{JsonBody, QueryParams};
use crate::http::AppState;
use crate::http::error::{ApiError, ErrorBody};

/// The user routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::default()
        .routes(routes!(create, list))
        .routes(routes!(show, replace_profile, remove))
        .routes(routes!(set_password))
        .routes(routes!(deactivate))
        .routes(routes!(reactivate))
}

/// Whether a user can sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    /// Can sign in.
    Active,
    /// Cannot sign in until reactivated.
    Inactive,
}

impl From<UserState> for UserStatus {
    fn from(state: UserState) -> Self {
        match state {
            UserState::Inactive => UserStatus::Inactive,
            // The users read model holds only present users: never unknown or removed ones.
            UserState::Active | UserState::Unknown | UserState::Removed => UserStatus::Active,
        }
    }
}

/// A user as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserBody {
    /// The user's id (the `sub` claim).
    pub user_id: String,
    /// The login name.
    pub username: String,
    /// `active` or `inactive`.
    pub state: UserStatus,
    /// E-mail address.
    pub email: Option<String>,
    /// Whether the address was verified.
    pub email_verified: bool,
    /// Given name(s).
    pub given_name: Option<String>,
    /// Family name.
    pub family_name: Option<String>,
    /// When the user was created (RFC 3339).
    pub created_at: String,
}

impl From<UserView> for UserBody {
    fn from(view: UserView) -> Self {
        UserBody {
            user_id: view.user_id,
            username: view.username,
            state: view.state.into(),
            email: view.profile.email,
            email_verified: view.profile.email_verified,
            given_name: view.profile.given_name,
            family_name: view.profile.family_name,
            created_at: view.created_at,
        }
    }
}

/// The body of `POST /users`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// The login name: 1 to 200 characters, no spaces; unique per instance (ignoring case).
    pub username: String,
    /// The initial password (at least 8 characters); stored only as an argon2id hash.
    pub password: String,
    /// E-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// Whether the address was verified.
    #[serde(default)]
    pub email_verified: bool,
    /// Given name(s).
    #[serde(default)]
    pub given_name: Option<String>,
    /// Family name.
    #[serde(default)]
    pub family_name: Option<String>,
}

/// The body of `PUT /users/{user_id}`: the whole profile (omitted fields are cleared).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileBody {
    /// E-mail address.
    #[serde(default)]
    pub email: Option<String>,
    /// Whether the address was verified.
    #[serde(default)]
    pub email_verified: bool,
    /// Given name(s).
    #[serde(default)]
    pub given_name: Option<String>,
    /// Family name.
    #[serde(default)]
    pub family_name: Option<String>,
}

impl From<ProfileBody> for Profile {
    fn from(body: ProfileBody) -> Self {
        Profile {
            email: body.email,
            email_verified: body.email_verified,
            given_name: body.given_name,
            family_name: body.family_name,
        }
    }
}

/// The body of `POST /users/{user_id}/password`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    /// The new password (at least 8 characters).
    pub password: String,
}

/// A page of users.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserList {
    /// Users ordered by login name.
    pub users: Vec<UserBody>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<String>,
}

/// Creates a user.
#[utoipa::path(
    post,
    path = "/users",
    operation_id = "create_user",
    tag = "users",
    request_body = CreateUser,
    responses(
        (status = 201, description = "Created", body = UserBody),
        (status = 400, description = "A field is wrong or the login name is taken; `field` names it", body = ErrorBody),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
    )
)]
async fn create(
    State(state): State<AppState>,
    Admin(admin): Admin,
    JsonBody(body): JsonBody<CreateUser>,
) -> Result<impl IntoResponse, ApiError> {
    let new = NewUser {
        username: body.username,
        password: body.password,
        profile: Profile {
            email: body.email,
            email_verified: body.email_verified,
            given_name: body.given_name,
            family_name: body.family_name,
        },
    };
    let user = state.domain.add_user(&admin, new).await?;
    let location = format!("/admin/v1/users/{}", user.user_id);
    Ok((
        StatusCode::CREATED,
        [(LOCATION, location)],
        Json(UserBody::from(user)),
    ))
}

/// Lists users, a page at a time.
#[utoipa::path(
    get,
    path = "/users",
    operation_id = "list_users",
    tag = "users",
    params(
        ("limit" = Option<u32>, Query, description = "Page size, 1 to 500 (default 100)"),
        ("after" = Option<String>, Query, description = "Start after this login name (`next_after` of the previous page)"),
    ),
    responses(
        (status = 200, description = "A page of users", body = UserList),
        (status = 400, description = "A query parameter is wrong", body = ErrorBody),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
    )
)]
async fn list(
    State(state): State<AppState>,
    Admin(admin): Admin,
    RawQuery(query): RawQuery,
) -> Result<Json<UserList>, ApiError> {
    let query = QueryParams::parse(query.as_deref(), &["limit", "after"])?;
    let limit = query.number("limit", 1, 500, 100)?;
    let after = query.text("after").unwrap_or_default();
    let users = state.domain.users(&admin.instance_id, after, limit).await?;
    let next_after = (users.len() == limit as usize)
        .then(|| users.last().map(|user| user.username.clone()))
        .flatten();
    Ok(Json(UserList {
        users: users.into_iter().map(Into::into).collect(),
        next_after,
    }))
}

/// Shows one user.
#[utoipa::path(
    get,
    path = "/users/{user_id}",
    operation_id = "get_user",
    tag = "users",
    params(("user_id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user", body = UserBody),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
async fn show(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(user_id): Path<String>,
) -> Result<Json<UserBody>, ApiError> {
    let user = state.domain.user(&admin.instance_id, &user_id).await?;
    Ok(Json(user.into()))
}

/// Replaces a user's profile (the login name cannot change).
#[utoipa::path(
    put,
    path = "/users/{user_id}",
    operation_id = "replace_user_profile",
    tag = "users",
    params(("user_id" = String, Path, description = "The user's id")),
    request_body = ProfileBody,
    responses(
        (status = 200, description = "The changed user", body = UserBody),
        (status = 400, description = "A field is wrong; `field` names it", body = ErrorBody),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
async fn replace_profile(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(user_id): Path<String>,
    JsonBody(body): JsonBody<ProfileBody>,
) -> Result<Json<UserBody>, ApiError> {
    let user = state
        .domain
        .change_profile(&admin, &user_id, body.into())
        .await?;
    Ok(Json(user.into()))
}

/// Removes a user: frees the login name and ends the user's sessions.
#[utoipa::path(
    delete,
    path = "/users/{user_id}",
    operation_id = "remove_user",
    tag = "users",
    params(("user_id" = String, Path, description = "The user's id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
async fn remove(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(user_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let origin = instance_issuer(&state, &admin).await?;
    state.domain.remove_user(&admin, &user_id, &origin).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets a new password.
#[utoipa::path(
    post,
    path = "/users/{user_id}/password",
    operation_id = "set_user_password",
    tag = "users",
    params(("user_id" = String, Path, description = "The user's id")),
    request_body = SetPassword,
    responses(
        (status = 204, description = "Set; the user's live sessions ended (reason `credential_changed`) unless the instance turned `end_sessions_on_credential_change` off"),
        (status = 400, description = "The password is too short or too long", body = ErrorBody),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
async fn set_password(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(user_id): Path<String>,
    JsonBody(body): JsonBody<SetPassword>,
) -> Result<StatusCode, ApiError> {
    // Look the user up first, so an unknown id is not answered only after a slow hash.
    state.domain.user(&admin.instance_id, &user_id).await?;
    let origin = instance_issuer(&state, &admin).await?;
    state
        .domain
        .set_password(&admin, &user_id, body.password, &origin)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stops a user from signing in and ends the user's sessions.
#[utoipa::path(
    post,
    path = "/users/{user_id}/deactivate",
    operation_id = "deactivate_user",
    tag = "users",
    params(("user_id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The deactivated user", body = UserBody),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
async fn deactivate(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(user_id): Path<String>,
) -> Result<Json<UserBody>, ApiError> {
    let origin = instance_issuer(&state, &admin).await?;
    let user = state
        .domain
        .deactivate_user(&admin, &user_id, &origin)
        .await?;
    Ok(Json(user.into()))
}

/// Lets a deactivated user sign in again.
#[utoipa::path(
    post,
    path = "/users/{user_id}/reactivate",
    operation_id = "reactivate_user",
    tag = "users",
    params(("user_id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The reactivated user", body = UserBody),
        (status = 401, description = "No or an unknown admin token", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
async fn reactivate(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Path(user_id): Path<String>,
) -> Result<Json<UserBody>, ApiError> {
    let user = state.domain.reactivate_user(&admin, &user_id).await?;
    Ok(Json(user.into()))
}
