//! A browser as a benchmark needs one: it follows redirects itself (so every hop is visible and
//! the client's redirect URI is never fetched), keeps cookies by name, and signs in through
//! whichever sign-in step the server puts in the way.

use std::collections::HashMap;

use anyhow::{Context, Result, anyhow, bail};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

use crate::target::{CALLBACK, Client, LOGIN, PASSWORD, Server};

/// PKCE pair (RFC 7636 appendix B); every flow of the benchmark uses it with S256.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// Redirects followed for one authorization before giving up.
const MAX_HOPS: usize = 10;

/// One user agent: its own cookies, sharing the driver's connection pool.
pub struct Browser {
    http: reqwest::Client,
    cookies: HashMap<String, String>,
}

/// What a code exchange returned that the benchmark uses.
pub struct Tokens {
    pub id_token: String,
}

impl Browser {
    pub fn new(http: &reqwest::Client) -> Self {
        Browser {
            http: http.clone(),
            cookies: HashMap::new(),
        }
    }

    fn keep_cookies(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all(SET_COOKIE) {
            let Some(pair) = value.to_str().ok().and_then(|v| v.split(';').next()) else {
                continue;
            };
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() {
                    self.cookies.remove(name.trim());
                } else {
                    self.cookies
                        .insert(name.trim().to_owned(), value.to_owned());
                }
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

    /// GET `url` with this browser's cookies.
    pub async fn get(&mut self, url: &str) -> Result<reqwest::Response> {
        let response = self
            .http
            .get(url)
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        self.keep_cookies(&response);
        Ok(response)
    }

    /// POST a form to `url` with this browser's cookies.
    pub async fn post_form(
        &mut self,
        url: &str,
        pairs: &[(&str, &str)],
    ) -> Result<reqwest::Response> {
        let response = self
            .http
            .post(url)
            .header(COOKIE, self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(pairs))
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        self.keep_cookies(&response);
        Ok(response)
    }

    /// Runs an authorization request for `client` to the code, signing in and consenting on
    /// the way when the server asks.
    pub async fn authorize(&mut self, server: &Server, client: &Client) -> Result<String> {
        let mut url = format!(
            "{}?{}",
            server.endpoints.authorization,
            form(&[
                ("response_type", "code"),
                ("client_id", &client.id),
                ("redirect_uri", CALLBACK),
                ("scope", "openid"),
                ("state", "bench"),
                ("nonce", "bench"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ])
        );
        for _ in 0..MAX_HOPS {
            let response = self.get(&url).await?;
            let status = response.status();
            if !status.is_redirection() {
                let body = response.text().await.unwrap_or_default();
                bail!(
                    "authorization stopped at {url} with {status}: {}",
                    excerpt(&body)
                );
            }
            let location = location(&response)?;
            if let Some(query) = location.strip_prefix(CALLBACK) {
                return code_in(query);
            }
            let next = server.resolve(&location)?;
            url = if next.path() == "/login" {
                self.sign_in(next.as_str()).await?
            } else {
                next.to_string()
            };
        }
        bail!("no code after {MAX_HOPS} redirects (last: {url})")
    }

    /// Portcullis's sign-in page: fill in the form, return where it sends the browser next.
    async fn sign_in(&mut self, page_url: &str) -> Result<String> {
        let page = self.get(page_url).await?.text().await?;
        let (csrf, return_to) = (
            hidden_field(&page, "csrf")?,
            hidden_field(&page, "return_to")?,
        );
        let action = url::Url::parse(page_url)?.join("/login")?;
        let response = self
            .post_form(
                action.as_str(),
                &[
                    ("csrf", &csrf),
                    ("return_to", &return_to),
                    ("login", LOGIN),
                    ("password", PASSWORD),
                ],
            )
            .await?;
        if !response.status().is_redirection() {
            bail!("sign-in refused: {}", response.status());
        }
        Ok(action.join(&location(&response)?)?.to_string())
    }

    /// Exchanges a code at the token endpoint (client_secret_basic).
    pub async fn exchange(&self, server: &Server, client: &Client, code: &str) -> Result<Tokens> {
        let response = self
            .http
            .post(&server.endpoints.token)
            .basic_auth(&client.id, Some(&client.secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", CALLBACK),
                ("code_verifier", VERIFIER),
            ]))
            .send()
            .await
            .context("POST token")?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.context("token response")?;
        if !status.is_success() {
            bail!("token endpoint answered {status}: {body}");
        }
        let id_token = body["id_token"]
            .as_str()
            .ok_or_else(|| anyhow!("no id_token in {body}"))?
            .to_owned();
        Ok(Tokens { id_token })
    }

    /// One code flow: authorize (with the session this browser holds) and exchange.
    pub async fn code_flow(&mut self, server: &Server, client: &Client) -> Result<Tokens> {
        let code = self.authorize(server, client).await?;
        self.exchange(server, client, &code).await
    }
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

pub fn location(response: &reqwest::Response) -> Result<String> {
    Ok(response
        .headers()
        .get(LOCATION)
        .ok_or_else(|| anyhow!("a {} without Location", response.status()))?
        .to_str()?
        .to_owned())
}

fn code_in(query: &str) -> Result<String> {
    let query = query.trim_start_matches('?');
    let pairs: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    match (pairs.get("code"), pairs.get("error")) {
        (Some(code), _) => Ok(code.clone()),
        (None, Some(error)) => bail!(
            "authorization error: {error} {:?}",
            pairs.get("error_description")
        ),
        _ => bail!("a redirect to the client without code: {query}"),
    }
}

/// The value of a hidden form field, unescaped.
pub fn hidden_field(html: &str, name: &str) -> Result<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .ok_or_else(|| anyhow!("no {name} field on the page"))?
        + marker.len();
    let end = html[start..]
        .find('"')
        .ok_or_else(|| anyhow!("unterminated {name} field"))?;
    Ok(html[start..start + end]
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&"))
}

fn excerpt(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(300).collect()
}
