//! The admin API over HTTP: one request per call, errors turned into one readable line.

use anyhow::{Context, bail};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Connection, SYSTEM_TOKEN_VAR, TOKEN_VAR};

/// A client of one server's admin API (or, built with [`ApiClient::system`], its system API).
pub struct ApiClient {
    http: reqwest::Client,
    base: url::Url,
    token: String,
    /// The API's path under the base URL: `admin/v1` or `system/v1`.
    api: [&'static str; 2],
}

/// An answer: its status and its JSON body (`Null` for 204).
pub struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body as JSON.
    pub body: Value,
}

impl Answer {
    /// The body as a typed response.
    pub fn parse<T: DeserializeOwned>(&self) -> anyhow::Result<T> {
        serde_json::from_value(self.body.clone())
            .context("the server's answer has an unexpected shape (is it a different version?)")
    }
}

impl ApiClient {
    /// A client for `connection`; fails early without a token or with an unusable URL.
    pub fn new(connection: &Connection) -> anyhow::Result<Self> {
        let Some(token) = connection
            .token
            .clone()
            .filter(|token| !token.trim().is_empty())
        else {
            bail!("no admin token: pass --token or set {TOKEN_VAR}");
        };
        Self::build(&connection.url, &token, ["admin", "v1"])
    }

    /// A client of the system API with the system token; fails early without one.
    pub fn system(connection: &Connection, system_token: Option<&str>) -> anyhow::Result<Self> {
        let Some(token) = system_token.filter(|token| !token.trim().is_empty()) else {
            bail!(
                "no system token: pass --system-token or set {SYSTEM_TOKEN_VAR} \
                 (the server's admin.system_token, not an instance admin token)"
            );
        };
        Self::build(&connection.url, token, ["system", "v1"])
    }

    fn build(url: &str, token: &str, api: [&'static str; 2]) -> anyhow::Result<Self> {
        let base = url::Url::parse(url).with_context(|| format!("--url {url:?} is not a URL"))?;
        match base.scheme() {
            // https for a server behind a TLS-terminating proxy.
            "http" | "https" => {}
            other => bail!("--url {url}: unsupported scheme {other:?}"),
        }
        if base.cannot_be_a_base() {
            bail!("--url {url:?} is not a base URL");
        }
        Ok(ApiClient {
            http: reqwest::Client::new(),
            base,
            token: token.trim().to_owned(),
            api,
        })
    }

    /// The URL of an API path, each segment percent-encoded.
    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> url::Url {
        let mut url = self.base.clone();
        {
            // `cannot_be_a_base` was ruled out in `new`, so the segments are available.
            let mut path = url
                .path_segments_mut()
                .expect("checked in ApiClient::new: the URL can be a base");
            path.pop_if_empty().extend(self.api).extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Sends one request and returns the answer if it succeeded; otherwise the API's error.
    pub async fn send(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> anyhow::Result<Answer> {
        let url = self.url(segments, query);
        let mut request = self
            .http
            .request(method, url.clone())
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.with_context(|| {
            format!(
                "cannot reach the server at {} (is it running? check --url)",
                self.base
            )
        })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .with_context(|| format!("reading the answer from {url}"))?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            return Ok(Answer { status, body });
        }
        bail!(describe_error(status, &body))
    }

    /// `GET`.
    pub async fn get(&self, segments: &[&str], query: &[(&str, String)]) -> anyhow::Result<Answer> {
        self.send(Method::GET, segments, query, None).await
    }

    /// `POST` with an optional JSON body.
    pub async fn post(&self, segments: &[&str], body: Option<&Value>) -> anyhow::Result<Answer> {
        self.send(Method::POST, segments, &[], body).await
    }

    /// `DELETE`.
    pub async fn delete(&self, segments: &[&str]) -> anyhow::Result<Answer> {
        self.send(Method::DELETE, segments, &[], None).await
    }
}

/// One line from an error answer: the API's description and the field it names.
fn describe_error(status: StatusCode, body: &Value) -> String {
    let description = body["error_description"].as_str();
    match (description, body["field"].as_str()) {
        (Some(description), Some(field)) => format!("{description} (field `{field}`)"),
        (Some(description), None) => description.to_owned(),
        (None, _) => {
            let detail = body.as_str().unwrap_or_default().trim();
            let detail: String = detail.chars().take(200).collect();
            format!("the server answered {status} {detail}")
                .trim_end()
                .to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn client(url: &str, token: Option<&str>) -> anyhow::Result<ApiClient> {
        ApiClient::new(&Connection {
            url: url.into(),
            token: token.map(Into::into),
            json: false,
        })
    }

    #[test]
    fn paths_are_encoded_under_the_base() {
        let client = client("http://127.0.0.1:8080", Some("t")).unwrap();
        assert_eq!(
            client.url(&["users", "a/b c"], &[]).as_str(),
            "http://127.0.0.1:8080/admin/v1/users/a%2Fb%20c"
        );
        let prefixed = self::client("http://proxy.local/portcullis/", Some("t")).unwrap();
        assert_eq!(
            prefixed
                .url(&["users"], &[("after", "bob".into())])
                .as_str(),
            "http://proxy.local/portcullis/admin/v1/users?after=bob"
        );
    }

    #[test]
    fn unusable_settings_fail_before_any_request() {
        for (url, token, expected) in [
            ("http://127.0.0.1:8080", None, "no admin token"),
            ("http://127.0.0.1:8080", Some(" "), "no admin token"),
            ("not a url", Some("t"), "is not a URL"),
            ("ftp://id.example.com", Some("t"), "unsupported scheme"),
        ] {
            let error = client(url, token).err().expect(url).to_string();
            assert!(error.contains(expected), "{url}: {error}");
        }
    }

    #[test]
    fn errors_are_one_line_naming_the_field() {
        let body = json!({"error": "invalid_request", "error_description": "too short", "field": "password"});
        assert_eq!(
            describe_error(StatusCode::BAD_REQUEST, &body),
            "too short (field `password`)"
        );
        assert_eq!(
            describe_error(
                StatusCode::BAD_GATEWAY,
                &Value::String("bad gateway".into())
            ),
            "the server answered 502 Bad Gateway bad gateway"
        );
        assert_eq!(
            describe_error(StatusCode::METHOD_NOT_ALLOWED, &Value::Null),
            "the server answered 405 Method Not Allowed"
        );
    }
}
