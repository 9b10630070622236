//! The code flow as a client drives it over HTTP: sign in through the real form once, then
//! authorize (with the session cookie) and exchange the code, timed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The redirect URI every bench application registers.
pub const CALLBACK: &str = "https://app.example.com/callback";

/// `BENCH_SCALE`, 1 unless set: multiplies how much work a bench does.
pub fn scale() -> f64 {
    std::env::var("BENCH_SCALE")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1.0)
}

/// Concurrent code-flow clients: `BENCH_CLIENTS`, or `default` when unset.
pub fn clients(default: usize) -> usize {
    std::env::var("BENCH_CLIENTS")
        .ok()
        .and_then(|clients| clients.parse().ok())
        .filter(|clients| *clients > 0)
        .unwrap_or(default)
}

/// A form body.
pub fn form(pairs: &[(&str, &str)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}

/// A redirect's target.
pub fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// The query parameters of a URL.
pub fn query_of(url: &str) -> HashMap<String, String> {
    form_urlencoded::parse(url.split_once('?').unwrap().1.as_bytes())
        .into_owned()
        .collect()
}

/// A hidden form field's value.
fn hidden_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap() + marker.len();
    html[start..start + html[start..].find('"').unwrap()].replace("&amp;", "&")
}

/// A signed-in browser session: the cookie header to send with authorization requests.
pub async fn sign_in(http: &reqwest::Client, base: &str, authorize: &str) -> String {
    let cookie_of = |response: &reqwest::Response, name: &str| {
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|value| {
                value
                    .to_str()
                    .unwrap()
                    .split(';')
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .find(|pair| pair.starts_with(name))
    };
    let response = http.get(format!("{base}{authorize}")).send().await.unwrap();
    let login = location(&response);
    let page = http.get(format!("{base}{login}")).send().await.unwrap();
    let csrf_cookie = cookie_of(&page, "portcullis_csrf=").unwrap();
    let html = page.text().await.unwrap();
    let body = form(&[
        ("csrf", &hidden_field(&html, "csrf")),
        ("return_to", &hidden_field(&html, "return_to")),
        ("login", "alice"),
        ("password", "correct horse battery"),
    ]);
    let signed_in = http
        .post(format!("{base}/login"))
        .header("cookie", csrf_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    cookie_of(&signed_in, "portcullis_session=").expect("signed in")
}

pub struct Client {
    /// Its client_id.
    pub id: String,
    /// Its secret.
    pub secret: String,
    /// Its authorization request (path and query).
    pub authorize: String,
}

/// One iteration: authorize (session cookie) → code → token exchange. Returns its latency.
pub async fn iteration(
    http: &reqwest::Client,
    base: &str,
    cookie: &str,
    client: &Client,
) -> Duration {
    let started = Instant::now();
    let response = http
        .get(format!("{base}{}", client.authorize))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let code = query_of(&location(&response))
        .remove("code")
        .expect("a code");
    let tokens = http
        .post(format!("{base}/oauth/v2/token"))
        .basic_auth(&client.id, Some(&client.secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
        ]))
        .send()
        .await
        .unwrap();
    assert!(
        tokens.status().is_success(),
        "token exchange failed: {}",
        tokens.text().await.unwrap()
    );
    let _ = tokens.bytes().await.unwrap();
    started.elapsed()
}

/// Code flows by `clients` concurrent clients, each running iterations while `more(done)` says
/// so (`done`: its own iterations so far); returns (flows per second, p50, p99).
pub async fn drive(
    http: &reqwest::Client,
    base: &str,
    cookie: &str,
    client: Arc<Client>,
    clients: usize,
    more: impl Fn(usize) -> bool + Clone + Send + Sync + 'static,
) -> (f64, Duration, Duration) {
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (http, base, cookie, client, more) = (
                http.clone(),
                base.to_owned(),
                cookie.to_owned(),
                client.clone(),
                more.clone(),
            );
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while more(latencies.len()) {
                    latencies.push(iteration(&http, &base, &cookie, &client).await);
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |quantile: f64| {
        latencies[((latencies.len() as f64 * quantile) as usize).min(latencies.len() - 1)]
    };
    (
        latencies.len() as f64 / elapsed.as_secs_f64(),
        at(0.5),
        at(0.99),
    )
}
