//! Arranging back-channel benches: receivers on their own ports, applications that point at
//! them, and many sessions each signed in to some applications.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::routing::post;
use domain::application::{ApplicationView, OidcConfig};
use domain::{CodeRequest, Domain};
use tokio::sync::mpsc;

use super::flow::CALLBACK;

/// Receivers report (receiver index, arrival time).
pub type Arrivals = mpsc::UnboundedSender<(usize, Instant)>;

async fn receive(
    State((index, arrivals)): State<(usize, Arrivals)>,
    Path(_): Path<String>,
    _body: String,
) -> &'static str {
    let _ = arrivals.send((index, Instant::now()));
    ""
}

async fn hang(Path(_): Path<String>, _body: String) -> &'static str {
    std::future::pending::<()>().await;
    ""
}

/// A receiver on its own port; returns its logout URI.
pub async fn receiver(index: usize, arrivals: Arrivals, hanging: bool) -> String {
    let app = if hanging {
        axum::Router::new().route("/logout/{app}", post(hang))
    } else {
        axum::Router::new()
            .route("/logout/{app}", post(receive))
            .with_state((index, arrivals))
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}/logout/{index}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    uri
}

/// An application whose back-channel logout URI is `uri`.
pub fn app_config(name: &str, alg: &str, uri: &str) -> OidcConfig {
    serde_json::from_value(serde_json::json!({
        "name": name,
        "client_type": "confidential",
        "auth_method": "client_secret_basic",
        "redirect_uris": [CALLBACK],
        "grant_types": ["authorization_code"],
        "id_token_signing_alg": alg,
        "access_token_lifetime_secs": 3600,
        "id_token_lifetime_secs": 600,
        "refresh_token_lifetime_secs": 86400,
        "back_channel_logout_uri": uri,
    }))
    .unwrap()
}

/// A server in this process on a fresh SQLite store in a temporary directory (dropped with
/// the returned guard), with back-channel logout on, 128 deliveries in flight, and `token` as
/// its first admin token.
pub async fn back_channel_server(token: &str) -> (server::RunningServer, tempfile::TempDir) {
    server::allocator::keep_large_allocations_out_of_the_heap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = server::Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.admin.initial_token = Some(token.into());
    config.database.data_dir = dir.path().join("data");
    config.features.back_channel_logout = true;
    config.back_channel.concurrency = 128;
    config.log.level = "error".into();
    server::telemetry::init(&config.log);
    (server::RunningServer::start(config).await.unwrap(), dir)
}

/// Makes sessions in one instance for one user.
#[derive(Clone)]
pub struct Bench {
    /// The server's domain.
    pub domain: Arc<Domain>,
    /// The instance.
    pub instance_id: String,
    /// Its admin.
    pub admin: domain::AdminPrincipal,
    /// Whose sessions are made.
    pub user_id: String,
}

impl Bench {
    /// A new live session with tokens issued to each of `apps` (so each is registered).
    pub async fn session_with(&self, apps: &[ApplicationView]) -> String {
        let (session, _) = self
            .domain
            .create_session(
                &self.instance_id,
                &self.user_id,
                Duration::from_secs(3600),
                None,
            )
            .await
            .unwrap();
        for app in apps {
            let code = self
                .domain
                .issue_code(
                    &self.instance_id,
                    CodeRequest {
                        session_id: session.session_id.clone(),
                        client_id: app.client_id.clone(),
                        user_id: self.user_id.clone(),
                        redirect_uri: CALLBACK.into(),
                        scopes: vec!["openid".into()],
                        nonce: None,
                        code_challenge: None,
                        auth_time: chrono::Utc::now(),
                    },
                )
                .await
                .unwrap();
            self.domain
                .redeem_code(&self.instance_id, app, &code, Some(CALLBACK), &|_| true)
                .await
                .unwrap();
        }
        session.session_id
    }

    /// `count` sessions, each signed in to `apps`, set up by several tasks at once (the set-up
    /// is not what is measured; one at a time, 100,000 of them took more than 18 minutes).
    pub async fn sessions_with(&self, apps: &[ApplicationView], count: usize) {
        let workers = 32.min(count);
        let mut tasks = tokio::task::JoinSet::new();
        for worker in 0..workers {
            let (bench, apps) = (self.clone(), apps.to_vec());
            let share = count / workers + usize::from(worker < count % workers);
            tasks.spawn(async move {
                for _ in 0..share {
                    bench.session_with(&apps).await;
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
    }

    /// Applications pointing at `uris`, signing with `alg`.
    pub async fn apps(&self, uris: &[String], alg: &str) -> Vec<ApplicationView> {
        let mut apps = Vec::new();
        for (index, uri) in uris.iter().enumerate() {
            let (app, _) = self
                .domain
                .add_application(
                    &self.admin,
                    app_config(&format!("app {alg} {index}"), alg, uri),
                )
                .await
                .unwrap();
            apps.push(app);
        }
        apps
    }
}
