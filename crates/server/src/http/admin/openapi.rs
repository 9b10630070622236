//! The admin API's OpenAPI document: generated from the handlers' `#[utoipa::path]`
//! annotations and the bodies' `ToSchema` derives, never written by hand.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::http::error::ErrorBody;

/// The name of the bearer security scheme in the document.
pub const SECURITY_SCHEME: &str = "admin_token";

/// The document's fixed parts; paths are added as the routers are assembled.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Portcullis admin API",
        description = "Manage users, OIDC applications, sessions, admin tokens and features of \
                       the instance the bearer admin token belongs to."
    ),
    modifiers(&BearerAdminToken),
    security(("admin_token" = [])),
    components(schemas(ErrorBody)),
    tags(
        (name = "users", description = "Human users"),
        (name = "applications", description = "OIDC applications (clients)"),
        (name = "sessions", description = "Browser sessions"),
        (name = "admin-tokens", description = "Bearer tokens of this API"),
        (name = "registration-tokens", description = "Initial access tokens for Dynamic Client Registration (RFC 7591)"),
        (name = "features", description = "Feature flags"),
    )
)]
pub struct AdminApiDoc;

/// Declares the `Authorization: Bearer <admin token>` scheme every operation requires.
struct BearerAdminToken;

impl Modify for BearerAdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            SECURITY_SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An admin token: the initial one from first start, or one issued by \
                         POST /admin/v1/admin-tokens",
                    ))
                    .build(),
            ),
        );
    }
}
