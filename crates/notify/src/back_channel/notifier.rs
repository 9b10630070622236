//! The back-channel notifier's loop: find due deliveries, claim, deliver, record.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use domain::session_logout::{AttemptRecord, DeliveryView};
use protocol::claims::LogoutTokenClaims;
use tokio::sync::{Mutex, Semaphore, mpsc, watch};

use super::delivery::{self, Outcome};
use super::lifecycle::{self, DeliveryState, Step, Verdict};
use super::metrics::AlertChange;
use super::store::{AttemptDone, DeliveryStore};
use super::targets::CheckedResolver;
use super::{Metrics, Settings};

/// Deliveries fetched per look.
const BATCH: u32 = 256;

/// Outcomes recorded per transaction at most.
const RECORD_BATCH: usize = 512;

/// Deliveries that may wait in memory behind each turn at a busy host.
const LINE_PER_TURN: usize = 64;

/// How long a delivery to a busy host waits in the store before it is claimed again.
const HOST_BUSY_DELAY: chrono::Duration = chrono::Duration::milliseconds(250);

/// `host:port` of a URI: the unit of per-host concurrency.
fn host_of(uri: &str) -> String {
    url::Url::parse(uri)
        .ok()
        .map(|url| {
            let port = url.port_or_known_default().unwrap_or(0);
            format!("{}:{port}", url.host_str().unwrap_or(""))
        })
        .unwrap_or_default()
}

type Waiting = (DeliveryView, chrono::DateTime<chrono::Utc>);

/// Per host: deliveries in flight, and claimed ones waiting for a turn. One lock covers both,
/// so a delivery never joins a line just as its host's last turn ends.
#[derive(Default, Clone)]
struct Hosts(Arc<std::sync::Mutex<HashMap<String, HostState>>>);

/// Deliveries in flight to one host, and those waiting for a turn.
type HostState = (usize, VecDeque<Waiting>);

/// What [`Hosts::enter`] decided.
enum Entry {
    /// Deliver now (the delivery is handed back inside).
    Turn(HostTurn, Option<DeliveryView>),
    /// Parked behind the host's turns.
    InLine,
    /// The line is full.
    Full(DeliveryView),
}

impl Hosts {
    fn enter(
        &self,
        host: &str,
        limit: usize,
        delivery: DeliveryView,
        claimed_at: chrono::DateTime<chrono::Utc>,
    ) -> Entry {
        let mut hosts = self.0.lock().expect("hosts lock");
        let (in_flight, line) = hosts.entry(host.to_owned()).or_default();
        if *in_flight < limit {
            *in_flight += 1;
            let turn = HostTurn {
                host: host.to_owned(),
                hosts: self.clone(),
                active: true,
            };
            return Entry::Turn(turn, Some(delivery));
        }
        if line.len() >= limit * LINE_PER_TURN {
            return Entry::Full(delivery);
        }
        line.push_back((delivery, claimed_at));
        Entry::InLine
    }

    /// The next waiting delivery for the turn's host, or the end of the turn.
    fn next(&self, turn: &mut HostTurn) -> Option<Waiting> {
        let mut hosts = self.0.lock().expect("hosts lock");
        let (in_flight, line) = hosts.get_mut(&turn.host)?;
        if let Some(next) = line.pop_front() {
            return Some(next);
        }
        *in_flight -= 1;
        if *in_flight == 0 {
            hosts.remove(&turn.host);
        }
        turn.active = false;
        None
    }
}

/// A delivery's turn at its host.
struct HostTurn {
    host: String,
    hosts: Hosts,
    active: bool,
}

impl Drop for HostTurn {
    /// A turn that ends early (a panicking delivery) still frees its place.
    fn drop(&mut self) {
        if self.active {
            let hosts = self.hosts.clone();
            while hosts.next(self).is_some() {}
        }
    }
}

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
    queue: Arc<dyn DeliveryStore>,
    signer: Arc<dyn LogoutSigner>,
    http: reqwest::Client,
    settings: Settings,
    metrics: Arc<Metrics>,
    slots: Arc<Semaphore>,
    outcomes: mpsc::UnboundedSender<AttemptDone>,
    hosts: Hosts,
    recorded: Mutex<Option<mpsc::UnboundedReceiver<AttemptDone>>>,
}

impl Notifier {
    /// A notifier; its HTTP client follows no redirects, uses no proxy, and resolves names
    /// through the target policy.
    pub fn new(
        queue: Arc<dyn DeliveryStore>,
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
            queue,
            signer,
            http,
            settings,
            metrics,
            slots,
            outcomes,
            hosts: Hosts::default(),
            recorded: Mutex::new(Some(recorded)),
        })
    }

    /// Runs until `shutdown` turns true: looks for due deliveries whenever the deliveries read
    /// model changed in this process (a session ended, an outcome was recorded), when a retry
    /// falls due, and at least every second.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        if let Some(outcomes) = self.recorded.lock().await.take() {
            tokio::spawn(record_outcomes(self.queue.clone(), outcomes));
        }
        // Not on every append: most (codes, tokens) do not touch the deliveries at all, and
        // each look costs a few reads.
        let mut changed = self.queue.changes();
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
                woken = changed.changed() => if woken.is_err() { return },
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            changed.mark_unchanged();
        }
    }

    async fn until_next_due(&self) -> Duration {
        match self.queue.next_due_at().await {
            Ok(Some(at)) => (at - self.queue.now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(MAX_IDLE),
            _ => MAX_IDLE,
        }
    }

    /// Claims and starts as many due deliveries as there are free slots, until none is left.
    async fn dispatch_due(self: &Arc<Self>) -> Result<(), domain::DomainError> {
        self.queue.catch_up().await?;
        // Look with a read first: many wake-ups (a registration, an outcome) find nothing due,
        // and a claim is a write that waits for, and holds, SQLite's one write lock.
        if !self.queue.any_due(self.queue.now()).await? {
            return Ok(());
        }
        loop {
            // Take the slots before claiming: a claim is a promise to deliver now.
            let free = self.slots.available_permits().clamp(1, BATCH as usize);
            let Ok(slots) = self.slots.clone().acquire_many_owned(free as u32).await else {
                return Ok(());
            };
            let now = self.queue.now();
            let claimed = self
                .queue
                .claim_due(now, now + self.lease(), free as u32)
                .await?;
            let count = claimed.len();
            let mut slots = slots;
            for delivery in claimed {
                let host = host_of(&delivery.uri);
                let limit = self.settings.per_host_concurrency.max(1);
                let mut turn = match self.hosts.enter(&host, limit, delivery, now) {
                    Entry::Turn(turn, delivery) => (turn, delivery),
                    Entry::InLine => continue,
                    // The line is long: wait in the store, without counting an attempt.
                    Entry::Full(delivery) => {
                        self.queue.defer(&delivery, now + HOST_BUSY_DELAY).await?;
                        continue;
                    }
                };
                let slot = slots.split(1).expect("one slot per claimed delivery");
                let this = self.clone();
                tokio::spawn(async move {
                    // This turn also works the host's line, so a busy host is served in order
                    // while other hosts keep every other slot.
                    let (turn, first) = &mut turn;
                    let mut next = first.take();
                    while let Some(delivery) = next {
                        this.deliver(delivery).await;
                        next = this.next_in_line(turn).await;
                    }
                    drop(slot);
                });
            }
            if count < free {
                return Ok(());
            }
        }
    }

    /// The next delivery waiting for the turn's host whose claim is young enough to act on
    /// (older ones go back to the store, so a claim is never acted on after its lease); `None`
    /// ends the turn.
    async fn next_in_line(&self, turn: &mut HostTurn) -> Option<DeliveryView> {
        loop {
            let (delivery, claimed_at) = self.hosts.next(turn)?;
            let now = self.queue.now();
            if now - claimed_at < self.lease() / 2 {
                return Some(delivery);
            }
            if let Err(error) = self.queue.defer(&delivery, now).await {
                tracing::error!(%error, "could not hand a delivery back; its claim will run out");
            }
        }
    }

    /// How long a claim holds: longer than any attempt and its recording take.
    fn lease(&self) -> chrono::Duration {
        // Also how long deliveries claimed by a process that crashed wait before another takes
        // them up.
        let lease = self.settings.timeout * 2 + Duration::from_secs(2);
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
            self.queue.now().timestamp().max(0) as u64,
            self.settings.token_lifetime.as_secs(),
        )
        .map_err(|error| error.to_string())?;
        self.signer
            .sign(&delivery.instance_id, &delivery.signing_alg, &claims)
            .await
    }

    async fn deliver(&self, delivery: DeliveryView) {
        let started = self.queue.now();
        let clock = std::time::Instant::now();
        // Each attempt signs afresh: a new jti, and never a token that expired while waiting.
        let (outcome, status) = match self.logout_token(&delivery).await {
            Ok(token) => {
                delivery::attempt(&self.http, &self.settings.targets, &delivery.uri, &token).await
            }
            Err(reason) => (
                Outcome::Recoverable(format!("could not sign the logout token: {reason}")),
                None,
            ),
        };
        let (verdict, error) = match outcome {
            Outcome::Delivered => (Verdict::Delivered, None),
            Outcome::Refused(reason) => (Verdict::Refused, Some(reason)),
            Outcome::Recoverable(reason) => (Verdict::Recoverable, Some(reason)),
        };
        let attempt = AttemptRecord {
            at: started,
            duration_ms: u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX),
            status,
            error,
        };
        let in_flight = DeliveryState::InFlight {
            attempts: delivery.attempts,
            until: started + self.lease(),
        };
        let policy = lifecycle::RetryPolicy {
            max_attempts: self.settings.max_attempts,
            base: self.settings.retry_base,
            cap: self.settings.retry_cap,
        };
        let after = match lifecycle::next(
            &in_flight,
            &Step::Attempted(verdict),
            self.queue.now(),
            &policy,
            rand::random::<f64>(),
        ) {
            Ok(after) => after,
            Err(refused) => {
                // An attempt always follows a claim; this is a bug, and the claim runs out.
                tracing::error!(%refused, "back-channel attempt outcome does not fit the lifecycle");
                return;
            }
        };
        let last = attempt.error.clone().unwrap_or_default();
        let client_id = delivery.client_id.as_str();
        let (reason, alert) = match (&after, verdict) {
            (DeliveryState::Sent { .. }, _) => {
                let ended = delivery.ended_at.unwrap_or(delivery.registered_at);
                let latency = (self.queue.now() - ended).to_std().unwrap_or_default();
                (None, self.metrics.sent(client_id, latency))
            }
            (DeliveryState::Failed { attempts }, Verdict::Recoverable) => {
                tracing::warn!(client_id, session_id = %delivery.session_id, reason = %last, attempts, "back-channel logout given up");
                let reason = format!("gave up after {attempts} attempts; the last: {last}");
                (Some(reason), self.metrics.failed(client_id))
            }
            (DeliveryState::Failed { .. }, _) => {
                tracing::warn!(client_id, session_id = %delivery.session_id, reason = %last, "back-channel logout refused");
                (Some(last.clone()), self.metrics.failed(client_id))
            }
            _ => (None, self.metrics.retried(client_id)),
        };
        // One line when an application's alert is raised and one when it clears, however many
        // attempts fail in between (per process, like the gauge).
        match alert {
            Some(AlertChange::Raised {
                consecutive_failures,
            }) => tracing::warn!(
                instance_id = %delivery.instance_id,
                client_id,
                consecutive_failures,
                last_error = %last,
                "back-channel deliveries to an application keep failing; its alert is raised \
                 (portcullis_back_channel_alert)"
            ),
            Some(AlertChange::Cleared {
                consecutive_failures,
            }) => tracing::info!(
                instance_id = %delivery.instance_id,
                client_id,
                consecutive_failures,
                "an application acknowledges back-channel logouts again; its alert is cleared"
            ),
            None => {}
        }
        // Outcomes go to the recorder, which batches them; until it has written one, the
        // claim keeps the delivery from being worked again.
        let done = AttemptDone {
            instance_id: delivery.instance_id.clone(),
            session_id: delivery.session_id.clone(),
            client_id: delivery.client_id.clone(),
            after,
            attempt,
            reason,
        };
        if self.outcomes.send(done).is_err() {
            // The claim runs out and the delivery falls due again: late, never lost.
            tracing::error!(client_id = %delivery.client_id, session_id = %delivery.session_id, "the outcome recorder stopped; the delivery will be attempted again");
        }
    }
}

/// Writes outcomes as they come, as many per transaction as have queued up.
async fn record_outcomes(
    queue: Arc<dyn DeliveryStore>,
    mut outcomes: mpsc::UnboundedReceiver<AttemptDone>,
) {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    while outcomes.recv_many(&mut batch, RECORD_BATCH).await > 0 {
        if let Err(error) = queue.record(&batch).await {
            // Their claims run out and the deliveries fall due again: late, never lost.
            tracing::error!(%error, count = batch.len(), "could not record back-channel outcomes");
        }
        batch.clear();
    }
}
