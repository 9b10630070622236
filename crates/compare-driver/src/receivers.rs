//! Applications' back-channel logout endpoints: real HTTP listeners on 127.0.0.1, each on its
//! own port (a separate host as far as a provider's per-host limits go), answering 200 at once
//! and reporting which session each logout token names and when it came.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use axum::extract::State;
use axum::routing::post;
use base64::Engine;
use tokio::sync::mpsc;

/// A logout token's arrival: the `sid` it names, and when.
pub type Arrival = (String, Instant);

/// Listeners and the arrivals they report.
pub struct Receivers {
    pub uris: Vec<String>,
    arrivals: mpsc::UnboundedReceiver<Arrival>,
}

async fn receive(
    State(sender): State<mpsc::UnboundedSender<Arrival>>,
    body: String,
) -> &'static str {
    let at = Instant::now();
    let sid = form_urlencoded::parse(body.as_bytes())
        .find(|(name, _)| name == "logout_token")
        .and_then(|(_, token)| claim(&token, "sid"))
        .unwrap_or_default();
    let _ = sender.send((sid, at));
    ""
}

/// A claim of a compact JWT, unverified: the benchmark only needs to tell sessions apart.
pub fn claim(token: &str, name: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims[name].as_str().map(str::to_owned)
}

impl Receivers {
    /// `count` listeners, each on a port of its own.
    pub async fn start(count: usize) -> Result<Receivers> {
        let (sender, arrivals) = mpsc::unbounded_channel();
        let mut uris = Vec::with_capacity(count);
        for index in 0..count {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            uris.push(format!("http://{}/logout/{index}", listener.local_addr()?));
            let app = axum::Router::new()
                .route("/logout/{index}", post(receive))
                .with_state(sender.clone());
            tokio::spawn(async move { axum::serve(listener, app).await });
        }
        Ok(Receivers { uris, arrivals })
    }

    /// Forgets arrivals so far (late ones from an earlier run).
    pub fn drain(&mut self) {
        while self.arrivals.try_recv().is_ok() {}
    }

    /// Waits for `count` arrivals naming one of `sids` (others are ignored); returns the time of
    /// the last.
    pub async fn wait_for(
        &mut self,
        count: usize,
        sids: &std::collections::HashSet<String>,
        limit: Duration,
    ) -> Result<Instant> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut seen = 0;
        let mut last: Option<Instant> = None;
        while seen < count {
            match tokio::time::timeout_at(deadline, self.arrivals.recv()).await {
                Ok(Some((sid, at))) => {
                    if sids.contains(&sid) {
                        seen += 1;
                        last = Some(last.map_or(at, |last| last.max(at)));
                    }
                }
                _ => bail!("{seen} of {count} logout tokens arrived within {limit:?}"),
            }
        }
        Ok(last.unwrap_or_else(Instant::now))
    }
}
