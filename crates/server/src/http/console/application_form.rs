//! The console's application settings form: every setting the admin API's
//! `ApplicationSettings` accepts, as typed, read into that same type (so the API's defaults
//! apply) and handed to the same domain commands, which validate it. Only what a form cannot
//! say the way JSON does is read here: a number typed as text, one URI a line, ticked boxes.

use domain::application::OidcConfig;
use protocol::response::escape_html;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::form::{Invalid, checkbox, field_error, input, select, textarea};
use crate::http::admin::application_settings::{ApplicationConfig, ApplicationSettings, GrantType};

/// The form's fields with their own error place; named as the domain names the settings, so
/// a `DomainError::Invalid` lands next to its field.
pub(super) const FIELDS: [&str; 13] = [
    "name",
    "client_type",
    "auth_method",
    "redirect_uris",
    "post_logout_redirect_uris",
    "grant_types",
    "client_credentials_scopes",
    "id_token_signing_alg",
    "access_token_lifetime_secs",
    "id_token_lifetime_secs",
    "refresh_token_lifetime_secs",
    BACK_CHANNEL_FIELD,
    "front_channel_logout_uri",
];
/// The back-channel logout URI's field.
const BACK_CHANNEL_FIELD: &str = "back_channel_logout_uri";

/// The client types (the admin API's names) with their labels.
const CLIENT_TYPES: [(&str, &str); 2] = [
    (
        "confidential",
        "Confidential (a server that keeps a secret)",
    ),
    ("public", "Public (a browser or native app, with PKCE)"),
];
/// The token endpoint authentication methods; the empty value is the type's default.
const AUTH_METHODS: [(&str, &str); 4] = [
    (
        "",
        "The type's default (client_secret_basic, or none for a public client)",
    ),
    ("client_secret_basic", "client_secret_basic (HTTP Basic)"),
    (
        "client_secret_post",
        "client_secret_post (in the form body)",
    ),
    ("none", "none (public clients)"),
];
/// The ID token signing algorithms.
const ALGORITHMS: [(&str, &str); 3] = [
    ("RS256", "RS256 (every client supports it)"),
    ("ES256", "ES256"),
    ("EdDSA", "EdDSA (Ed25519)"),
];

/// The settings form as typed (also the CSRF token it carries).
#[derive(Clone, Default, Deserialize)]
pub struct ApplicationForm {
    pub(super) csrf: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    pub(super) client_type: String,
    #[serde(default)]
    auth_method: String,
    #[serde(default)]
    redirect_uris: String,
    #[serde(default)]
    post_logout_redirect_uris: String,
    grant_authorization_code: Option<String>,
    grant_refresh_token: Option<String>,
    #[serde(default)]
    id_token_signing_alg: String,
    #[serde(default)]
    access_token_lifetime_secs: String,
    #[serde(default)]
    id_token_lifetime_secs: String,
    #[serde(default)]
    refresh_token_lifetime_secs: String,
    #[serde(default)]
    back_channel_logout_uri: String,
    back_channel_logout_session_required: Option<String>,
    #[serde(default)]
    front_channel_logout_uri: String,
    front_channel_logout_session_required: Option<String>,
    grant_client_credentials: Option<String>,
    #[serde(default)]
    client_credentials_scopes: String,
}

/// A value's name as the admin API's JSON spells it.
fn wire_name(value: impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The value the admin API's JSON names `typed`, or the field's error.
fn from_wire<T: DeserializeOwned>(field: &str, typed: &str, what: &str) -> Result<T, Invalid> {
    serde_json::from_value(serde_json::Value::String(typed.to_owned()))
        .map_err(|_| Invalid::new(field, &format!("Choose one of the {what} offered.")))
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

fn seconds(field: &str, typed: &str) -> Result<u32, Invalid> {
    typed
        .trim()
        .parse()
        .map_err(|_| Invalid::new(field, "Enter a whole number of seconds."))
}

fn ticked(value: &Option<String>) -> bool {
    value.as_deref() == Some("yes")
}

impl ApplicationForm {
    /// The form filled in with `config`'s settings (an application's page, or the defaults).
    pub(super) fn of(config: ApplicationConfig) -> Self {
        let has = |grant: GrantType| {
            config
                .grant_types
                .contains(&grant)
                .then(|| "yes".to_owned())
        };
        ApplicationForm {
            csrf: None,
            grant_authorization_code: has(GrantType::AuthorizationCode),
            grant_refresh_token: has(GrantType::RefreshToken),
            grant_client_credentials: has(GrantType::ClientCredentials),
            client_credentials_scopes: config.client_credentials_scopes.join(" "),
            client_type: wire_name(config.client_type),
            auth_method: wire_name(config.auth_method),
            id_token_signing_alg: wire_name(config.id_token_signing_alg),
            access_token_lifetime_secs: config.access_token_lifetime_secs.to_string(),
            id_token_lifetime_secs: config.id_token_lifetime_secs.to_string(),
            refresh_token_lifetime_secs: config.refresh_token_lifetime_secs.to_string(),
            redirect_uris: config.redirect_uris.join("\n"),
            post_logout_redirect_uris: config.post_logout_redirect_uris.join("\n"),
            back_channel_logout_uri: config.back_channel_logout_uri.unwrap_or_default(),
            back_channel_logout_session_required: config
                .back_channel_logout_session_required
                .then(|| "yes".to_owned()),
            front_channel_logout_uri: config.front_channel_logout_uri.unwrap_or_default(),
            front_channel_logout_session_required: config
                .front_channel_logout_session_required
                .then(|| "yes".to_owned()),
            name: config.name,
        }
    }

    /// The new-application form: the admin API's defaults, with the authentication method
    /// left to the client type (as a request that omits it).
    pub(super) fn new_application() -> Self {
        let defaults = ApplicationSettings::defaults();
        let mut form = Self::of(ApplicationConfig::from(defaults.into_config()));
        form.auth_method = String::new();
        form
    }

    /// The settings as the admin API would read them, for the domain to validate; what a
    /// form cannot say (a number that is not one, an unknown choice) is this field's error.
    pub(super) fn settings(&self) -> Result<OidcConfig, Invalid> {
        let auth_method = match self.auth_method.as_str() {
            "" => None,
            typed => Some(from_wire("auth_method", typed, "methods")?),
        };
        let mut grant_types = Vec::new();
        for (value, grant) in [
            (&self.grant_authorization_code, GrantType::AuthorizationCode),
            (&self.grant_refresh_token, GrantType::RefreshToken),
            (&self.grant_client_credentials, GrantType::ClientCredentials),
        ] {
            if ticked(value) {
                grant_types.push(grant);
            }
        }
        let optional = |typed: &str| {
            let typed = typed.trim();
            (!typed.is_empty()).then(|| typed.to_owned())
        };
        let settings = ApplicationSettings {
            name: self.name.clone(),
            client_type: from_wire("client_type", &self.client_type, "types")?,
            auth_method,
            redirect_uris: lines(&self.redirect_uris),
            post_logout_redirect_uris: lines(&self.post_logout_redirect_uris),
            grant_types,
            id_token_signing_alg: from_wire(
                "id_token_signing_alg",
                &self.id_token_signing_alg,
                "algorithms",
            )?,
            access_token_lifetime_secs: seconds(
                "access_token_lifetime_secs",
                &self.access_token_lifetime_secs,
            )?,
            id_token_lifetime_secs: seconds(
                "id_token_lifetime_secs",
                &self.id_token_lifetime_secs,
            )?,
            refresh_token_lifetime_secs: seconds(
                "refresh_token_lifetime_secs",
                &self.refresh_token_lifetime_secs,
            )?,
            back_channel_logout_uri: optional(&self.back_channel_logout_uri),
            back_channel_logout_session_required: ticked(
                &self.back_channel_logout_session_required,
            ),
            front_channel_logout_uri: optional(&self.front_channel_logout_uri),
            front_channel_logout_session_required: ticked(
                &self.front_channel_logout_session_required,
            ),
            client_credentials_scopes: self
                .client_credentials_scopes
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
        };
        Ok(settings.into_config())
    }
}

/// What the form is for: a new application (its type is chosen) or an existing one (whose
/// type is fixed: the domain refuses to change it).
pub(super) enum Purpose {
    New,
    Existing,
}

/// The settings fields (without the `<form>`, CSRF field and button).
pub(super) fn fields(
    purpose: Purpose,
    typed: &ApplicationForm,
    invalid: Option<&Invalid>,
) -> String {
    let client_type = match purpose {
        Purpose::New => select(
            "client_type",
            "client_type",
            "Type",
            &CLIENT_TYPES,
            &typed.client_type,
            invalid,
        ),
        Purpose::Existing => {
            let (error, _) = field_error(invalid, "client_type", "client_type");
            format!(
                "<div>{error}<p>Type: {} (fixed: create a new application to change it)</p></div>",
                escape_html(&typed.client_type)
            )
        }
    };
    let (grants_error, grants_marker) = field_error(invalid, "grant_types", "grant_types");
    let grants = format!(
        "<fieldset{grants_marker}><legend>Grants</legend>{grants_error}{code}{refresh}{client}\
         </fieldset>",
        code = checkbox(
            "grant_authorization_code",
            "grant_authorization_code",
            "authorization_code",
            ticked(&typed.grant_authorization_code)
        ),
        refresh = checkbox(
            "grant_refresh_token",
            "grant_refresh_token",
            "refresh_token",
            ticked(&typed.grant_refresh_token)
        ),
        client = checkbox(
            "grant_client_credentials",
            "grant_client_credentials",
            "client_credentials (confidential applications only)",
            ticked(&typed.grant_client_credentials)
        ),
    );
    let lifetime = |field: &str, label: &str, value: &str| {
        input(field, field, label, "number", value, " min=\"1\"", invalid)
    };
    [
        input(
            "name",
            "name",
            "Name (shown on the sign-in page)",
            "text",
            &typed.name,
            " required",
            invalid,
        ),
        client_type,
        select(
            "auth_method",
            "auth_method",
            "Token endpoint authentication",
            &AUTH_METHODS,
            &typed.auth_method,
            invalid,
        ),
        textarea(
            "redirect_uris",
            "redirect_uris",
            "Redirect URIs (one a line, compared exactly)",
            &typed.redirect_uris,
            invalid,
        ),
        textarea(
            "post_logout_redirect_uris",
            "post_logout_redirect_uris",
            "Post-logout redirect URIs (one a line)",
            &typed.post_logout_redirect_uris,
            invalid,
        ),
        grants,
        input(
            "client_credentials_scopes",
            "client_credentials_scopes",
            "Scopes for the client credentials grant (space-separated)",
            "text",
            &typed.client_credentials_scopes,
            "",
            invalid,
        ),
        select(
            "id_token_signing_alg",
            "id_token_signing_alg",
            "ID token signing algorithm",
            &ALGORITHMS,
            &typed.id_token_signing_alg,
            invalid,
        ),
        lifetime(
            "access_token_lifetime_secs",
            "Access token lifetime (seconds, up to 86400)",
            &typed.access_token_lifetime_secs,
        ),
        lifetime(
            "id_token_lifetime_secs",
            "ID token lifetime (seconds, up to 86400)",
            &typed.id_token_lifetime_secs,
        ),
        lifetime(
            "refresh_token_lifetime_secs",
            "Refresh token lifetime (seconds, up to 31536000)",
            &typed.refresh_token_lifetime_secs,
        ),
        input(
            BACK_CHANNEL_FIELD,
            BACK_CHANNEL_FIELD,
            "Back-channel logout URI (optional)",
            "url",
            &typed.back_channel_logout_uri,
            "",
            invalid,
        ),
        checkbox(
            "back_channel_logout_session_required",
            "back_channel_logout_session_required",
            "The application requires sid in logout tokens",
            ticked(&typed.back_channel_logout_session_required),
        ),
        input(
            "front_channel_logout_uri",
            "front_channel_logout_uri",
            "Front-channel logout URI (optional; loaded in a hidden frame on sign-out)",
            "url",
            &typed.front_channel_logout_uri,
            "",
            invalid,
        ),
        checkbox(
            "front_channel_logout_session_required",
            "front_channel_logout_session_required",
            "The application requires iss and sid on its front-channel logout URI",
            ticked(&typed.front_channel_logout_session_required),
        ),
    ]
    .concat()
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::application::{AuthMethod, SigningAlgorithm};

    #[test]
    fn the_new_form_reads_as_the_admin_apis_defaults() {
        let mut form = ApplicationForm::new_application();
        form.name = "Web".into();
        let mut expected = ApplicationSettings::defaults();
        expected.name = "Web".into();
        assert_eq!(form.settings().ok(), Some(expected.into_config()));
    }

    #[test]
    fn a_typed_form_reads_into_the_settings_and_back() {
        let form = ApplicationForm {
            name: "Web".into(),
            client_type: "confidential".into(),
            auth_method: "client_secret_post".into(),
            redirect_uris: " https://a.example/cb \r\n\r\nhttps://b.example/cb\n".into(),
            grant_authorization_code: Some("yes".into()),
            id_token_signing_alg: "EdDSA".into(),
            access_token_lifetime_secs: " 60".into(),
            id_token_lifetime_secs: "120".into(),
            refresh_token_lifetime_secs: "180".into(),
            back_channel_logout_uri: " ".into(),
            back_channel_logout_session_required: Some("yes".into()),
            ..ApplicationForm::default()
        };
        let config = form.settings().unwrap_or_else(|_| panic!("valid"));
        assert_eq!(config.auth_method, AuthMethod::ClientSecretPost);
        assert_eq!(
            config.redirect_uris,
            ["https://a.example/cb", "https://b.example/cb"]
        );
        assert_eq!(
            config.grant_types,
            [domain::application::GrantType::AuthorizationCode]
        );
        assert_eq!(config.id_token_signing_alg, SigningAlgorithm::EdDSA);
        assert_eq!(config.access_token_lifetime_secs, 60);
        assert_eq!(config.back_channel_logout_uri, None);
        assert!(config.back_channel_logout_session_required);
        let again = ApplicationForm::of(config.clone().into());
        assert_eq!(again.settings().ok(), Some(config));

        for (field, broken) in [
            ("access_token_lifetime_secs", {
                let mut broken = form.clone();
                broken.access_token_lifetime_secs = "an hour".into();
                broken
            }),
            ("id_token_signing_alg", {
                let mut broken = form.clone();
                broken.id_token_signing_alg = "none".into();
                broken
            }),
        ] {
            let Err(invalid) = broken.settings() else {
                panic!("{field} is wrong");
            };
            assert_eq!(invalid.field, field);
        }
    }
}
