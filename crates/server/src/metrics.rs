//! What `/metrics` serves: one `prometheus-client` registry with the server's series and the
//! back-channel notifier's (`notify::back_channel::Metrics`), in the Prometheus text format.
//!
//! Every label takes its values from a bounded set, never from a request's raw input:
//!
//! | series | labels | series at most |
//! |---|---|---|
//! | `portcullis_http_requests_total` | `method` (7 names or `other`), `route` (the route's template, `unmatched` for none), `status` (the codes the server answers) | routes × their methods × statuses seen |
//! | `portcullis_http_request_duration_seconds` | `method`, `route` | routes × their methods × 16 |
//! | `portcullis_sign_ins_total` | `outcome` (`succeeded`, `failed`) | 2 |
//! | `portcullis_tokens_issued_total` | `grant_type` (`authorization_code`, `refresh_token`, `client_credentials`) | 3 |
//! | `portcullis_sessions_started_total` | — | 1 |
//! | `portcullis_sessions_ended_total` | `reason` (the 8 termination reasons) | 8 |
//! | `portcullis_sessions_live` | — | 1 |
//! | `portcullis_back_channel_*` | `client_id` | 5 × applications, and 15 for the latency histogram |
//!
//! About 50 routes with their methods and a handful of statuses each make roughly 1,100 HTTP
//! series; the per-application ones grow by 5 with each application told of logouts.
//!
//! Counters and the histograms count what this process did (sum them over replicas).
//! `portcullis_sessions_live` is read from the store at each scrape and is the same on every
//! replica (take `max`, not `sum`).

use std::time::Duration;

use domain::{Observer, TerminationReason};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Upper bounds (seconds) of the HTTP latency histogram's buckets: from a cached discovery
/// document to a sign-in's password hashing under load.
const HTTP_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The route label of a request no route matched (so a scan of random paths adds no series).
pub const UNMATCHED: &str = "unmatched";

/// Labels of an HTTP request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpRequest {
    method: &'static str,
    route: String,
    status: u16,
}

/// Labels of an HTTP route.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpRoute {
    method: &'static str,
    route: String,
}

/// How a sign-in ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignIn {
    /// The credentials were right and a session started.
    Succeeded,
    /// Wrong login name or password (or the user may not sign in).
    Failed,
}

impl SignIn {
    fn label(self) -> &'static str {
        match self {
            SignIn::Succeeded => "succeeded",
            SignIn::Failed => "failed",
        }
    }
}

/// Labels of a sign-in.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignInLabels {
    outcome: &'static str,
}

/// The grant types the token endpoint issues tokens for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    /// `authorization_code`
    AuthorizationCode,
    /// `refresh_token`
    RefreshToken,
    /// `client_credentials`
    ClientCredentials,
}

impl GrantType {
    /// Every grant type, so each series exists from the start.
    const ALL: [GrantType; 3] = [
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
    ];

    fn label(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
        }
    }
}

/// Labels of issued tokens.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    grant_type: &'static str,
}

/// Labels of an ended session.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndLabels {
    reason: &'static str,
}

/// The reason as `session.terminated` spells it; exhaustive, so a new reason needs a name.
fn reason_label(reason: TerminationReason) -> &'static str {
    match reason {
        TerminationReason::RpInitiatedLogout => "rp_initiated_logout",
        TerminationReason::UserSignedOut => "user_signed_out",
        TerminationReason::Admin => "admin",
        TerminationReason::UserDeactivated => "user_deactivated",
        TerminationReason::UserRemoved => "user_removed",
        TerminationReason::CredentialChanged => "credential_changed",
        TerminationReason::Expired => "expired",
        TerminationReason::InstanceSignOut => "instance_sign_out",
    }
}

/// A request method as a label: the methods HTTP defines for the server's routes, `other`
/// for anything a client may invent.
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The server's metrics and the registry that serves them.
#[derive(Debug)]
pub struct ServerMetrics {
    registry: Registry,
    http_requests: Family<HttpRequest, Counter>,
    http_duration: Family<HttpRoute, Histogram, fn() -> Histogram>,
    sign_ins: Family<SignInLabels, Counter>,
    tokens_issued: Family<TokenLabels, Counter>,
    sessions_started: Counter,
    sessions_ended: Family<EndLabels, Counter>,
    sessions_live: Gauge,
}

impl ServerMetrics {
    /// The server's series, and `back_channel`'s, in one registry.
    pub fn new(back_channel: &notify::back_channel::Metrics) -> Self {
        let mut metrics = ServerMetrics {
            registry: Registry::default(),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(|| Histogram::new(HTTP_BUCKETS)),
            sign_ins: Family::default(),
            tokens_issued: Family::default(),
            sessions_started: Counter::default(),
            sessions_ended: Family::default(),
            sessions_live: Gauge::default(),
        };
        // The fixed label sets exist from the start at zero, so a rate or an alert on them
        // works before the first event.
        for outcome in [SignIn::Succeeded, SignIn::Failed] {
            let _ = metrics.sign_ins.get_or_create(&SignInLabels {
                outcome: outcome.label(),
            });
        }
        for grant in GrantType::ALL {
            let _ = metrics.tokens_issued.get_or_create(&TokenLabels {
                grant_type: grant.label(),
            });
        }
        for reason in [
            TerminationReason::RpInitiatedLogout,
            TerminationReason::UserSignedOut,
            TerminationReason::Admin,
            TerminationReason::UserDeactivated,
            TerminationReason::UserRemoved,
            TerminationReason::CredentialChanged,
            TerminationReason::Expired,
            TerminationReason::InstanceSignOut,
        ] {
            let _ = metrics.sessions_ended.get_or_create(&EndLabels {
                reason: reason_label(reason),
            });
        }
        let registry = &mut metrics.registry;
        registry.register(
            "portcullis_http_requests",
            "HTTP requests answered, by method, route template and status",
            metrics.http_requests.clone(),
        );
        registry.register(
            "portcullis_http_request_duration_seconds",
            "Time to answer an HTTP request (until the response head), by method and route template",
            metrics.http_duration.clone(),
        );
        registry.register(
            "portcullis_sign_ins",
            "Sign-ins at the sign-in page, by outcome",
            metrics.sign_ins.clone(),
        );
        registry.register(
            "portcullis_tokens_issued",
            "Token responses issued by the token endpoint, by grant type",
            metrics.tokens_issued.clone(),
        );
        registry.register(
            "portcullis_sessions_started",
            "Sessions started",
            metrics.sessions_started.clone(),
        );
        registry.register(
            "portcullis_sessions_ended",
            "Sessions ended, by reason",
            metrics.sessions_ended.clone(),
        );
        registry.register(
            "portcullis_sessions_live",
            "Sessions live now, in every instance (read from the store at each scrape)",
            metrics.sessions_live.clone(),
        );
        back_channel.register(registry);
        metrics
    }

    /// An HTTP request to `route` (a template, or [`UNMATCHED`]) was answered with `status`
    /// after `elapsed`.
    pub fn http_request(&self, method: &'static str, route: &str, status: u16, elapsed: Duration) {
        self.http_requests
            .get_or_create(&HttpRequest {
                method,
                route: route.to_owned(),
                status,
            })
            .inc();
        self.http_duration
            .get_or_create(&HttpRoute {
                method,
                route: route.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// A sign-in ended with `outcome`.
    pub fn sign_in(&self, outcome: SignIn) {
        self.sign_ins
            .get_or_create(&SignInLabels {
                outcome: outcome.label(),
            })
            .inc();
    }

    /// The token endpoint issued tokens for `grant`.
    pub fn tokens_issued(&self, grant: GrantType) {
        self.tokens_issued
            .get_or_create(&TokenLabels {
                grant_type: grant.label(),
            })
            .inc();
    }

    /// The exposition, with `live_sessions` (counted by the caller) as the live gauge.
    pub fn render(&self, live_sessions: Option<u64>) -> String {
        if let Some(live) = live_sessions {
            self.sessions_live
                .set(i64::try_from(live).unwrap_or(i64::MAX));
        }
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_text::encode(&mut text, &self.registry);
        text
    }
}

/// The domain reports sessions as it records them, whichever command started or ended them.
impl Observer for ServerMetrics {
    fn session_started(&self) {
        self.sessions_started.inc();
    }

    fn session_ended(&self, reason: TerminationReason) {
        self.sessions_ended
            .get_or_create(&EndLabels {
                reason: reason_label(reason),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_label_sets_start_at_zero_and_counts_land_in_their_series() {
        let metrics = ServerMetrics::new(&notify::back_channel::Metrics::default());
        metrics.http_request("POST", "/oauth/v2/token", 200, Duration::from_millis(3));
        metrics.tokens_issued(GrantType::AuthorizationCode);
        metrics.session_ended(TerminationReason::Expired);
        let text = metrics.render(Some(4));
        for line in [
            "portcullis_http_requests_total{method=\"POST\",route=\"/oauth/v2/token\",status=\"200\"} 1",
            "portcullis_http_request_duration_seconds_count{method=\"POST\",route=\"/oauth/v2/token\"} 1",
            "portcullis_sign_ins_total{outcome=\"failed\"} 0",
            "portcullis_tokens_issued_total{grant_type=\"authorization_code\"} 1",
            "portcullis_tokens_issued_total{grant_type=\"refresh_token\"} 0",
            "portcullis_tokens_issued_total{grant_type=\"client_credentials\"} 0",
            "portcullis_sessions_ended_total{reason=\"expired\"} 1",
            "portcullis_sessions_ended_total{reason=\"admin\"} 0",
            "portcullis_sessions_live 4",
        ] {
            assert!(text.contains(&format!("{line}\n")), "{line} in {text}");
        }
    }
}
