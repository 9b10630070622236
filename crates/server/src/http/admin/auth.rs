//! Bearer-token authentication of admin requests.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use domain::AdminPrincipal;

use crate::http::AppState;
use crate::http::error::ApiError;

/// The issuer of the admin's instance: what a session end the admin causes records as its
/// origin (the logout tokens' `iss`), whatever host the admin request came in on.
pub async fn instance_issuer(state: &AppState, admin: &AdminPrincipal) -> Result<String, ApiError> {
    Ok(state
        .domain
        .instance(&admin.instance_id)
        .await?
        .external_url)
}

/// The admin a request acts as, from its `Authorization: Bearer` header.
pub struct Admin(pub AdminPrincipal);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let mut values = parts.headers.get_all(AUTHORIZATION).iter();
        let (Some(value), None) = (values.next(), values.next()) else {
            return Err(ApiError::Unauthorized {
                token_presented: false,
            });
        };
        let token = value
            .to_str()
            .ok()
            .and_then(protocol::bearer::bearer_token)
            .ok_or(ApiError::Unauthorized {
                token_presented: false,
            })?;
        match state.domain.authenticate_admin(token).await? {
            Some(principal) => Ok(Admin(principal)),
            None => Err(ApiError::Unauthorized {
                token_presented: true,
            }),
        }
    }
}
