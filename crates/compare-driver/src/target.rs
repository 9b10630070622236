//! What differs between the servers under test: how a client is registered, how the user comes
//! to exist, and how an RP-initiated logout is confirmed. Everything else is the same protocol.

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

use crate::browser::{Browser, form, hidden_field};

/// The redirect URI of every client; nothing listens there, the driver reads the code off the
/// redirect.
pub const CALLBACK: &str = "http://127.0.0.1:9/cb";
/// The one user of the benchmark.
pub const LOGIN: &str = "alice";
pub const PASSWORD: &str = "correct horse battery staple";

/// The server kinds the driver knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Portcullis,
    OidcProvider,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Portcullis => "portcullis",
            Kind::OidcProvider => "oidc-provider",
        }
    }
}

/// Endpoints, from the discovery document.
pub struct Endpoints {
    pub authorization: String,
    pub token: String,
    pub end_session: String,
    pub registration: Option<String>,
}

/// A running server under test.
pub struct Server {
    pub kind: Kind,
    pub base: url::Url,
    pub endpoints: Endpoints,
    credential: String,
    http: reqwest::Client,
}

/// A registered client.
#[derive(Clone)]
pub struct Client {
    pub id: String,
    pub secret: String,
}

pub fn discovery_url(base: &url::Url) -> String {
    format!("{base}.well-known/openid-configuration")
}

impl Server {
    /// Reads discovery and makes sure the benchmark's user exists.
    pub async fn prepare(
        kind: Kind,
        base: url::Url,
        credential: String,
        http: &reqwest::Client,
    ) -> Result<Server> {
        let discovery: Value = http
            .get(discovery_url(&base))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let endpoint = |name: &str| {
            discovery[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| anyhow!("discovery names no {name}"))
        };
        let endpoints = Endpoints {
            authorization: endpoint("authorization_endpoint")?,
            token: endpoint("token_endpoint")?,
            end_session: endpoint("end_session_endpoint")?,
            registration: endpoint("registration_endpoint").ok(),
        };
        if discovery["backchannel_logout_supported"] != json!(true) {
            bail!("{} does not announce back-channel logout", kind.name());
        }
        let server = Server {
            kind,
            base,
            endpoints,
            credential,
            http: http.clone(),
        };
        if kind == Kind::Portcullis {
            // oidc-provider's interaction signs `alice` in without a user store.
            server
                .admin_post("users", json!({"username": LOGIN, "password": PASSWORD}))
                .await
                .context("creating the user")?;
        }
        Ok(server)
    }

    pub fn resolve(&self, location: &str) -> Result<url::Url> {
        Ok(self.base.join(location)?)
    }

    async fn admin_post(&self, resource: &str, body: Value) -> Result<Value> {
        let response = self
            .http
            .post(self.base.join(&format!("admin/v1/{resource}"))?)
            .bearer_auth(&self.credential)
            .json(&body)
            .send()
            .await?;
        answer(response).await
    }

    /// Registers a confidential client signing ID tokens with `alg`, with a back-channel
    /// logout URI if given.
    pub async fn register(
        &self,
        name: &str,
        alg: &str,
        logout_uri: Option<&str>,
    ) -> Result<Client> {
        let created = match self.kind {
            Kind::Portcullis => {
                self.admin_post(
                    "applications",
                    json!({
                        "name": name,
                        "client_type": "confidential",
                        "auth_method": "client_secret_basic",
                        "redirect_uris": [CALLBACK],
                        "grant_types": ["authorization_code"],
                        "id_token_signing_alg": alg,
                        "access_token_lifetime_secs": 3600,
                        "id_token_lifetime_secs": 3600,
                        "refresh_token_lifetime_secs": 86400,
                        "back_channel_logout_uri": logout_uri,
                        "back_channel_logout_session_required": logout_uri.is_some(),
                    }),
                )
                .await?
            }
            Kind::OidcProvider => {
                let endpoint = self
                    .endpoints
                    .registration
                    .as_ref()
                    .ok_or_else(|| anyhow!("oidc-provider without a registration endpoint"))?;
                let mut metadata = json!({
                    "client_name": name,
                    "redirect_uris": [CALLBACK],
                    "token_endpoint_auth_method": "client_secret_basic",
                    "id_token_signed_response_alg": alg,
                    "grant_types": ["authorization_code"],
                    "response_types": ["code"],
                });
                if let Some(uri) = logout_uri {
                    metadata["backchannel_logout_uri"] = json!(uri);
                    metadata["backchannel_logout_session_required"] = json!(true);
                }
                let response = self
                    .http
                    .post(endpoint)
                    .bearer_auth(&self.credential)
                    .json(&metadata)
                    .send()
                    .await?;
                answer(response).await?
            }
        };
        let field = |name: &str| {
            created[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| anyhow!("no {name} in {created}"))
        };
        Ok(Client {
            id: field("client_id")?,
            secret: field("client_secret")?,
        })
    }

    /// RP-initiated logout of the browser's session, confirmed where the server asks for it
    /// (oidc-provider shows a confirmation form; Portcullis ends the session on a valid hint).
    pub async fn end_session(&self, browser: &mut Browser, id_token: &str) -> Result<()> {
        let url = format!(
            "{}?{}",
            self.endpoints.end_session,
            form(&[("id_token_hint", id_token)])
        );
        let response = browser.get(&url).await?;
        let status = response.status();
        match self.kind {
            Kind::Portcullis => {
                if !(status.is_success() || status.is_redirection()) {
                    bail!("end_session answered {status}");
                }
            }
            Kind::OidcProvider => {
                let header = response
                    .headers()
                    .get("x-logout-xsrf")
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned);
                let page = response.text().await?;
                let xsrf = match header {
                    Some(xsrf) => xsrf,
                    None => hidden_field(&page, "xsrf")?,
                };
                let confirm = self.base.join("session/end/confirm")?;
                let confirmed = browser
                    .post_form(confirm.as_str(), &[("xsrf", &xsrf), ("logout", "yes")])
                    .await?;
                if !confirmed.status().is_redirection() {
                    bail!("logout confirmation answered {}", confirmed.status());
                }
            }
        }
        Ok(())
    }
}

async fn answer(response: reqwest::Response) -> Result<Value> {
    let status = response.status();
    let body = response.text().await?;
    if !status.is_success() {
        bail!("{status}: {body}");
    }
    Ok(serde_json::from_str(&body)?)
}
