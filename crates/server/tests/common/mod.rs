//! A scripted browser and form helpers for the HTTP flow tests; `browser` drives a real
//! headless chromium for page tests.

#![allow(dead_code)]

pub mod browser;
pub mod exposition;
pub mod process;

use std::collections::HashMap;

use domain::application::OidcConfig;
use eventstore::testing::Harness;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use server::{Config, RunningServer};

/// The initial admin token of every server the tests start.
pub const TOKEN: &str = "test-admin-token-0123456789abcdef";
/// The redirect URI of the tests' applications.
pub const CALLBACK: &str = "https://app.example.com/callback";
/// The PKCE verifier of RFC 7636 Appendix B, and its S256 challenge.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// The S256 challenge of [`VERIFIER`].
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// An authorization request for `openid` with PKCE, back to [`CALLBACK`].
pub fn authorize_path(client_id: &str) -> String {
    format!(
        "/oauth/v2/authorize?{}",
        form(&[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", CALLBACK),
            ("scope", "openid"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ])
    )
}

/// A server on a random port over the harness' store, its data in the harness' temporary
/// directory, with [`TOKEN`] as its first admin token.
pub fn config(h: &Harness) -> Config {
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.admin.initial_token = Some(TOKEN.into());
    config.database.url = h.postgres_url();
    config.database.data_dir = h.data_dir().join("data");
    config
}

/// An application's settings: a confidential ES256 client with both grant types and an
/// hour-long access token, with `fields` (name, redirect URIs, …) set over these.
pub fn oidc_config(fields: serde_json::Value) -> OidcConfig {
    let mut config = serde_json::json!({
        "client_type": "confidential",
        "auth_method": "client_secret_basic",
        "post_logout_redirect_uris": [],
        "grant_types": ["authorization_code", "refresh_token"],
        "id_token_signing_alg": "ES256",
        "access_token_lifetime_secs": 3600,
        "id_token_lifetime_secs": 600,
        "refresh_token_lifetime_secs": 86400
    });
    for (name, value) in fields.as_object().expect("fields as an object") {
        config[name] = value.clone();
    }
    serde_json::from_value(config).expect("valid application settings")
}

/// Form-encodes pairs.
pub fn form(pairs: &[(&str, &str)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}

pub fn query_of(url: &str) -> HashMap<String, String> {
    let query = url
        .split_once('?')
        .map(|(_, query)| query)
        .unwrap_or_default();
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// A browser: follows no redirects by itself, keeps cookies by name.
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
    pub cookies: HashMap<String, String>,
}

impl Browser {
    pub fn new(server: &RunningServer) -> Self {
        Self::at(format!("http://{}", server.local_addr))
    }

    /// A browser for the server at `base` (`http://host:port`).
    pub fn at(base: String) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Browser {
            http,
            base,
            cookies: HashMap::new(),
        }
    }

    fn keep_cookies(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all(SET_COOKIE) {
            let pair = value.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn get(&mut self, path: &str) -> reqwest::Response {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let response = self
            .http
            .get(url)
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep_cookies(&response);
        response
    }

    pub async fn post_form(&mut self, path: &str, body: String) -> reqwest::Response {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header(COOKIE, self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        self.keep_cookies(&response);
        response
    }
}

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .expect("a redirect")
        .to_str()
        .unwrap()
        .to_owned()
}

pub fn hidden_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in {html}"))
        + marker.len();
    let value = &html[start..start + html[start..].find('"').unwrap()];
    value
        .replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

impl Browser {
    /// Follows an authorization URL through the sign-in form to the client's redirect and
    /// returns that redirect's URL.
    pub async fn sign_in(&mut self, authorize_url: &str, login: &str, password: &str) -> String {
        let response = self.get(authorize_url).await;
        let login_page = location(&response);
        assert!(
            login_page.starts_with("/login?"),
            "expected the sign-in page, got {login_page}"
        );
        let page = self.get(&login_page).await.text().await.unwrap();
        let (csrf, return_to) = (
            hidden_field(&page, "csrf"),
            hidden_field(&page, "return_to"),
        );
        let signed_in = self
            .post_form(
                "/login",
                form(&[
                    ("csrf", &csrf),
                    ("return_to", &return_to),
                    ("login", login),
                    ("password", password),
                ]),
            )
            .await;
        assert_eq!(
            signed_in.status(),
            reqwest::StatusCode::SEE_OTHER,
            "sign-in failed"
        );
        let response = self.get(&location(&signed_in)).await;
        location(&response)
    }
}
