//! The back-channel notifier's loop: find due deliveries, claim, deliver, record.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use domain::Domain;
use domain::session_logout::{
    BackChannelFailed, BackChannelSent, DeliveryView, SessionLogoutEvent, retry_at,
};
use protocol::claims::LogoutTokenClaims;
use tokio::sync::{Mutex, Semaphore, mpsc, watch};

use super::delivery::{self, Outcome};
use super::targets::CheckedResolver;
use super::{Metrics, Settings};

/// The read model the notifier works from.
const DELIVERIES: &str = "back_channel_deliveries";

/// Deliveries fetched per look.
const BATCH: u32 = 256;

/// Outcomes recorded per transaction at most.
const RECORD_BATCH: usize = 512;

/// An outcome waiting to be recorded: (instance id, session id, event).
type PendingOutcome = (String, String, SessionLogoutEvent);

/// The longest the loop sleeps without looking, whatever the schedule says.
const MAX_IDLE: Duration = Duration::from_secs(1);

/// Signs logout tokens with an instance's keys (the server's key ring implements it).
#[async_trait]
pub trait LogoutSigner: Send + Sync {
    /// `claims` as a compact JWS with header `typ: logout+jwt` and the key id, signed with the
    /// instance's current key for `alg` (`RS256`, `ES256` or `EdDSA`).
    async fn sign(
        &self,
        instance_id: &str,
        alg: &str,
        claims: &LogoutTokenClaims,
    ) -> Result<String, String>;
}

/// Delivers logout tokens for ended sessions.
pub struct Notifier {
    domain: Arc<Domain>,
    signer: Arc<dyn LogoutSigner>,
    http: reqwest::Client,
    settings: Settings,
    metrics: Arc<Metrics>,
    slots: Arc<Semaphore>,
    outcomes: mpsc::UnboundedSender<PendingOutcome>,
    recorded: Mutex<Option<mpsc::UnboundedReceiver<PendingOutcome>>>,
}

impl Notifier {
    /// A notifier; its HTTP client follows no redirects, uses no proxy, and resolves names
    /// through the target policy.
    pub fn new(
        domain: Arc<Domain>,
        signer: Arc<dyn LogoutSigner>,
        settings: Settings,
        metrics: Arc<Metrics>,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .dns_resolver(Arc::new(CheckedResolver(Arc::new(
                settings.targets.clone(),
            ))))
            .user_agent(concat!(
                "Portcullis/",
                env!("CARGO_PKG_VERSION"),
                " back-channel logout"
            ))
            .build()?;
        let slots = Arc::new(Semaphore::new(settings.concurrency.max(1)));
        let (outcomes, recorded) = mpsc::unbounded_channel();
        Ok(Notifier {
            domain,
            signer,
            http,
            settings,
            metrics,
            slots,
            outcomes,
            recorded: Mutex::new(Some(recorded)),
        })
    }

    /// Runs until `shutdown` turns true: looks for due deliveries on every append (the ending
    /// of a session is one), when a retry falls due, and at least every second.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        if let Some(outcomes) = self.recorded.lock().await.take() {
            tokio::spawn(record_outcomes(self.domain.clone(), outcomes));
        }
        let mut appended = self.domain.store().subscribe();
        loop {
            let wait = match self.dispatch_due().await {
                Ok(()) => self.until_next_due().await,
                Err(error) => {
                    tracing::error!(%error, "back-channel notifier could not read its work");
                    MAX_IDLE
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                changed = appended.changed() => if changed.is_err() { return },
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            appended.mark_unchanged();
        }
    }

    async fn until_next_due(&self) -> Duration {
        match DeliveryView::next_due_at(self.domain.store().as_ref()).await {
            Ok(Some(at)) => (at - self.domain.now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(MAX_IDLE),
            _ => MAX_IDLE,
        }
    }

    /// Claims and starts as many due deliveries as there are free slots, until none is left.
    async fn dispatch_due(self: &Arc<Self>) -> Result<(), domain::DomainError> {
        let store = self.domain.store().clone();
        self.domain.runner().catch_up(DELIVERIES).await?;
        loop {
            // Take the slots before claiming: a claim is a promise to deliver now.
            let free = self.slots.available_permits().clamp(1, BATCH as usize);
            let Ok(slots) = self.slots.clone().acquire_many_owned(free as u32).await else {
                return Ok(());
            };
            let now = self.domain.now();
            let claim = uuid::Uuid::new_v4().simple().to_string();
            let claimed = DeliveryView::claim_due(
                store.as_ref(),
                now,
                now + self.lease(),
                &claim,
                free as u32,
            )
            .await?;
            let count = claimed.len();
            let mut slots = slots;
            for delivery in claimed {
                let slot = slots.split(1).expect("one slot per claimed delivery");
                let this = self.clone();
                tokio::spawn(async move {
                    this.deliver(delivery).await;
                    drop(slot);
                });
            }
            if count < free {
                return Ok(());
            }
        }
    }

    /// How long a claim holds: longer than any attempt and its recording take.
    fn lease(&self) -> chrono::Duration {
        let lease = self.settings.timeout * 2 + Duration::from_secs(10);
        chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX)
    }

    async fn logout_token(&self, delivery: &DeliveryView) -> Result<String, String> {
        let issuer = delivery
            .triggered_at_origin
            .clone()
            .ok_or("the session's end carries no origin")?;
        let claims = LogoutTokenClaims::new(
            issuer,
            delivery.client_id.clone(),
            Some(delivery.user_id.clone()),
            Some(delivery.session_id.clone()),
            uuid::Uuid::new_v4().simple().to_string(),
            self.domain.now().timestamp().max(0) as u64,
            self.settings.token_lifetime.as_secs(),
        )
        .map_err(|error| error.to_string())?;
        self.signer
            .sign(&delivery.instance_id, &delivery.signing_alg, &claims)
            .await
    }

    async fn deliver(&self, delivery: DeliveryView) {
        let attempts = delivery.attempts + 1;
        // Each attempt signs afresh: a new jti, and never a token that expired while waiting.
        let outcome = match self.logout_token(&delivery).await {
            Ok(token) => {
                delivery::attempt(&self.http, &self.settings.targets, &delivery.uri, &token).await
            }
            Err(reason) => {
                Outcome::Recoverable(format!("could not sign the logout token: {reason}"))
            }
        };
        // Outcomes go to the recorder, which batches them; until it has written one, the
        // claim keeps the delivery from being worked again.
        let record = |event| {
            let pending = (
                delivery.instance_id.clone(),
                delivery.session_id.clone(),
                event,
            );
            let sent = self.outcomes.send(pending);
            async move {
                sent.map_err(|_| {
                    domain::DomainError::NotFound("the outcome recorder stopped".into())
                })
            }
        };
        let client_id = delivery.client_id.clone();
        let recorded = match outcome {
            Outcome::Delivered => {
                let result = record(SessionLogoutEvent::Sent(BackChannelSent {
                    client_id,
                    attempts,
                }))
                .await;
                let ended = delivery.ended_at.unwrap_or(delivery.registered_at);
                self.metrics
                    .sent((self.domain.now() - ended).to_std().unwrap_or_default());
                result
            }
            Outcome::Refused(reason) => {
                tracing::warn!(client_id = %delivery.client_id, session_id = %delivery.session_id, %reason, "back-channel logout refused");
                self.metrics.failed();
                record(SessionLogoutEvent::Failed(BackChannelFailed {
                    client_id,
                    attempts,
                    reason,
                }))
                .await
            }
            Outcome::Recoverable(reason) if attempts >= self.settings.max_attempts => {
                tracing::warn!(client_id = %delivery.client_id, session_id = %delivery.session_id, %reason, attempts, "back-channel logout given up");
                self.metrics.failed();
                let reason = format!("gave up after {attempts} attempts; the last: {reason}");
                record(SessionLogoutEvent::Failed(BackChannelFailed {
                    client_id,
                    attempts,
                    reason,
                }))
                .await
            }
            Outcome::Recoverable(reason) => {
                self.metrics.retried();
                let at = retry_at(
                    self.domain.now(),
                    attempts,
                    self.settings.retry_base,
                    self.settings.retry_cap,
                    rand::random::<f64>(),
                );
                delivery
                    .schedule_retry(self.domain.store().as_ref(), attempts, at, &reason)
                    .await
            }
        };
        if let Err(error) = recorded {
            // The claim runs out and the delivery falls due again: late, never lost.
            tracing::error!(%error, client_id = %delivery.client_id, session_id = %delivery.session_id, "could not record a back-channel outcome");
        }
    }
}

/// Writes outcomes as they come, as many per transaction as have queued up.
async fn record_outcomes(
    domain: Arc<Domain>,
    mut outcomes: mpsc::UnboundedReceiver<PendingOutcome>,
) {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    while outcomes.recv_many(&mut batch, RECORD_BATCH).await > 0 {
        if let Err(error) = domain.record_back_channel_outcomes(&batch).await {
            // Their claims run out and the deliveries fall due again: late, never lost.
            tracing::error!(%error, count = batch.len(), "could not record back-channel outcomes");
        }
        batch.clear();
    }
}
