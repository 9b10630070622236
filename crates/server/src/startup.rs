//! Starting and stopping a server: bind, open the store, set up, serve.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use domain::{Clock, Domain, DomainOptions, SetupRequest};
use eventstore::{EventStore, PostgresEventStore, RunnerOptions, SqliteEventStore};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Config, DatabaseConfig};
use crate::http::{AppState, Settings, app};
use crate::keys::KeyRing;

/// The wall clock; the one place the domain's time comes from in production.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }
}

/// The SQLite file inside the data directory.
pub const SQLITE_FILE: &str = "portcullis.db";

/// Opens the configured store, creating the data directory for SQLite.
pub async fn open_store(config: &DatabaseConfig) -> anyhow::Result<Arc<dyn EventStore>> {
    Ok(match &config.url {
        Some(url) => Arc::new(PostgresEventStore::connect(url, config.max_connections).await?),
        None => {
            std::fs::create_dir_all(&config.data_dir).with_context(|| {
                format!(
                    "cannot create the data directory {} (set database.data_dir)",
                    config.data_dir.display()
                )
            })?;
            Arc::new(
                SqliteEventStore::open(
                    &config.data_dir.join(SQLITE_FILE),
                    config.sqlite_durability,
                )
                .await?,
            )
        }
    })
}

/// A server that is listening.
pub struct RunningServer {
    /// The address it listens on (useful with port 0).
    pub local_addr: SocketAddr,
    /// The default instance's issuer.
    pub external_url: String,
    /// The admin token generated on this (first) start, if any.
    pub generated_admin_token: Option<String>,
    domain: Arc<Domain>,
    shutdown: watch::Sender<bool>,
    serve: JoinHandle<std::io::Result<()>>,
    projections: JoinHandle<()>,
    notifier: JoinHandle<()>,
    expiry: JoinHandle<()>,
    sign_outs: JoinHandle<()>,
}

impl RunningServer {
    /// Binds, opens the store, installs read models, runs first-start setup, then serves.
    pub async fn start(config: Config) -> anyhow::Result<RunningServer> {
        let started = Instant::now();
        let listen = config.server.listen;
        let listener = TcpListener::bind(listen).await.map_err(|error| {
            anyhow::anyhow!(
                "cannot listen on {listen}: {error}; stop whatever uses it or choose another address with \
                 server.listen (PORTCULLIS_SERVER__LISTEN)"
            )
        })?;
        let local_addr = listener.local_addr()?;

        let store = open_store(&config.database).await?;
        let backend = store.backend();
        let mut system_features = config.features;
        // Development default: on a localhost issuer, applications on plain http may receive
        // logout tokens unless configuration says otherwise.
        if system_features.back_channel_logout_allow_http.is_none()
            && crate::config::is_localhost(&config.server.external_url)
        {
            system_features.back_channel_logout_allow_http = Some(true);
        }
        let options = DomainOptions {
            system_features,
            runner: RunnerOptions {
                batch_size: config.projections.batch_size,
                poll_interval: Duration::from_millis(config.projections.poll_interval_ms),
                ..RunnerOptions::default()
            },
            ..DomainOptions::default()
        };
        let back_channel_metrics = Arc::new(notify::back_channel::Metrics::new(
            config.back_channel.alert_consecutive_failures,
        ));
        let metrics = Arc::new(crate::metrics::ServerMetrics::new(&back_channel_metrics));
        let domain = Arc::new(
            Domain::new(store, Arc::new(SystemClock), options).with_observer(metrics.clone()),
        );
        domain
            .install()
            .await
            .context("cannot install read models")?;

        let (shutdown, stopped) = watch::channel(false);
        let projections = tokio::spawn(domain.run_projections(stopped.clone()));
        let setup = domain
            .setup(&SetupRequest {
                external_url: config.server.external_url.clone(),
                initial_admin_token: config.admin.initial_token.clone(),
                display_name: config.server.display_name.clone(),
            })
            .await
            .context("first-start setup failed")?;
        if let Some(token) = &setup.generated_admin_token {
            tracing::warn!(
                admin_token = %token,
                "generated the initial admin token; it is shown only this once, so store it now \
                 (or set admin.initial_token before the first start)"
            );
        }

        let master_key = crate::keys::load_master_key(
            config.keys.master_key.as_deref(),
            &config.database.data_dir,
        )
        .context("cannot load the master key (keys.master_key)")?;
        let keys = Arc::new(KeyRing::new(
            domain.clone(),
            master_key,
            chrono::Duration::days(i64::from(config.keys.rotation_days)),
            // Longer than any token's lifetime, so every token verifies while it lives.
            chrono::Duration::days(2),
        ));
        // Create the default instance's keys in the background, so neither startup nor the
        // first sign-in waits for RSA key generation.
        let warm = (keys.clone(), setup.instance.instance_id.clone());
        tokio::spawn(async move {
            for alg in jose::Algorithm::ALL {
                if let Err(error) = warm.0.signer(&warm.1, *alg).await {
                    tracing::warn!(%error, alg = alg.name(), "could not prepare a signing key");
                }
            }
        });
        let deliveries = Arc::new(notify::back_channel::DomainDeliveries::new(domain.clone()));
        let notifier = Arc::new(
            notify::back_channel::Notifier::new(
                deliveries.clone(),
                keys.clone(),
                config.back_channel.settings(&config.server.external_url)?,
                back_channel_metrics,
            )
            .context("cannot build the back-channel logout HTTP client")?,
        );
        let notifier = tokio::spawn(notifier.run(stopped.clone()));
        let expiry = tokio::spawn(expire_sessions(
            domain.clone(),
            Duration::from_millis(config.sessions.expiry_check_ms),
            stopped.clone(),
        ));
        let sign_out_wake = Arc::new(tokio::sync::Notify::new());
        let sign_outs = tokio::spawn(sign_out_everyone(
            domain.clone(),
            sign_out_wake.clone(),
            stopped.clone(),
        ));
        let settings = Arc::new(Settings {
            https: config.server.external_url.starts_with("https://"),
            session_lifetime: Duration::from_secs(u64::from(config.sessions.lifetime_hours) * 3600),
            end_session_wait: Duration::from_millis(config.back_channel.end_session_wait_ms),
            alert_consecutive_failures: config.back_channel.alert_consecutive_failures,
            system_token: config
                .admin
                .system_token
                .as_deref()
                .map(crate::http::system::SystemToken::new),
            instance_removal_wait: Duration::from_secs(30),
        });
        let throttle = Arc::new(crate::http::oidc::LoginThrottle::default());
        let router = app(AppState {
            domain: domain.clone(),
            keys,
            settings,
            throttle,
            metrics,
            deliveries,
            sign_out_wake,
            console: Arc::default(),
        });
        let mut stop = stopped;
        let serve = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|stop| *stop).await;
                })
                .await
        });
        // The default instance's value, so a first start says whether applications are told.
        let back_channel_logout = domain
            .feature(
                &setup.instance.instance_id,
                domain::Feature::BackChannelLogout,
            )
            .await
            .context("cannot read the back_channel_logout feature")?
            .effective;
        tracing::info!(
            address = %local_addr,
            issuer = %setup.instance.external_url,
            store = backend,
            back_channel_logout,
            startup_ms = started.elapsed().as_millis() as u64,
            "listening"
        );
        Ok(RunningServer {
            local_addr,
            external_url: setup.instance.external_url,
            generated_admin_token: setup.generated_admin_token,
            domain,
            shutdown,
            serve,
            projections,
            notifier,
            expiry,
            sign_outs,
        })
    }

    /// Serves until `stop_signal` resolves, then shuts down gracefully.
    pub async fn run_until(
        self,
        stop_signal: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        stop_signal.await;
        tracing::info!("shutting down");
        self.stop().await
    }

    /// The domain the server runs on (tests use it to arrange state).
    pub fn domain(&self) -> Arc<Domain> {
        self.domain.clone()
    }

    /// Stops accepting requests, finishes those in flight, stops the projections.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.serve.await??;
        self.projections.await?;
        self.notifier.await?;
        self.expiry.await?;
        self.sign_outs.await?;
        Ok(())
    }
}

/// Ends sessions whose lifetime ran out, every `interval`, until shutdown: their applications
/// hear of it like of any other end.
async fn expire_sessions(domain: Arc<Domain>, interval: Duration, mut stop: watch::Receiver<bool>) {
    const BATCH: u32 = 500;
    loop {
        loop {
            match domain.expire_sessions(BATCH).await {
                Ok(ended) if ended as u32 == BATCH => continue,
                Ok(_) => break,
                Err(error) => {
                    tracing::error!(%error, "could not end expired sessions");
                    break;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}

/// Works every instance's running "sign out everyone" operation, one chunk of sessions at a
/// time, until none is left; then moves instance removals along (they start such operations
/// and finish once their deliveries settled); then waits to be woken (an operation or removal
/// was started here) or looks again after a second (one started by another replica, or before
/// a restart) — after 50 ms while a removal waits for deliveries, so its caller is not held.
async fn sign_out_everyone(
    domain: Arc<Domain>,
    wake: Arc<tokio::sync::Notify>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        while !*stop.borrow() {
            match domain.continue_sign_outs().await {
                Ok(true) => continue,
                Ok(false) => break,
                Err(error) => {
                    tracing::error!(%error, "could not continue signing out everyone");
                    break;
                }
            }
        }
        let removal_waiting = match domain.continue_instance_removals().await {
            Ok(waiting) => waiting,
            Err(error) => {
                tracing::error!(%error, "could not continue removing instances");
                false
            }
        };
        let pause = if removal_waiting {
            Duration::from_millis(50)
        } else {
            Duration::from_secs(1)
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = wake.notified() => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled, so a signal arriving during startup is not lost (nor does it
/// kill the process with the default action).
pub fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate =
            signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
        let mut interrupt =
            signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
        Ok(async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
