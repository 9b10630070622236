//! The admin console at `/console` against the real server on a random port, on SQLite and on
//! PostgreSQL: signing in with an admin token, the session cookie, the checks every request
//! makes (a revoked token ends the session), CSRF on every form, the overview; and once in a
//! real headless browser, with the keyboard.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::post;
use common::{CALLBACK, VERIFIER, authorize_path};
use domain::session_logout::DeliveryStage;
use domain::{NewUser, Profile};
use tokio::sync::mpsc;

use common::browser::HeadlessBrowser;
use common::{Browser, TOKEN, config, form, hidden_field, location, oidc_config};
use eventstore::testing::Harness;
use fantoccini::Locator;
use fantoccini::key::Key;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, SET_COOKIE};
use serde_json::json;
use server::RunningServer;

eventstore::on_both_backends!(
    the_sign_in_page_asks_for_an_admin_token,
    a_wrong_token_gets_the_form_again_and_no_session,
    a_sign_in_without_the_forms_csrf_token_is_refused,
    the_right_token_signs_in_and_shows_the_overview,
    without_a_session_the_console_sends_to_sign_in,
    signing_out_needs_the_csrf_token_and_ends_the_session,
    a_revoked_token_ends_its_console_session,
    signing_in_again_replaces_the_session,
    over_https_the_console_cookie_is_secure,
    the_deliveries_page_lists_shows_and_redelivers,
    the_instance_page_sets_features_with_csrf,
    signing_out_everyone_needs_the_confirmation_and_shows_its_progress,
    the_users_page_adds_lists_and_shows_users,
    a_users_sessions_are_signed_out_with_the_csrf_token,
    a_user_is_deactivated_reactivated_and_removed_from_the_console,
    the_applications_page_creates_lists_and_edits_applications,
    invalid_application_settings_are_shown_next_to_the_field_and_nothing_is_saved,
    a_client_secret_is_replaced_and_an_application_removed_with_confirmation,
    an_applications_page_shows_its_delivery_health_and_recent_deliveries,
    the_sessions_page_lists_filters_and_ends_sessions,
    the_overview_counts_sign_ins_and_session_ends_and_charts_deliveries,
    many_deliveries_are_redelivered_from_the_console,
    users_are_found_by_the_start_of_their_login_name_or_e_mail,
);

const COOKIE: &str = "portcullis_console";

async fn start(h: &Harness) -> RunningServer {
    RunningServer::start(config(h)).await.unwrap()
}

/// The `Set-Cookie` header that sets `name`, if any.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .find(|value| value.starts_with(&format!("{name}=")))
}

/// Opens the sign-in page and submits `token` with the form's CSRF token.
async fn sign_in(browser: &mut Browser, token: &str) -> reqwest::Response {
    let page = browser.get("/console/sign-in").await.text().await.unwrap();
    let csrf = hidden_field(&page, "csrf");
    browser
        .post_form(
            "/console/sign-in",
            form(&[("csrf", &csrf), ("token", token)]),
        )
        .await
}

/// Signs in with `token` and returns the overview's CSRF token.
async fn signed_in(browser: &mut Browser, token: &str) -> String {
    let response = sign_in(browser, token).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let overview = browser.get("/console").await;
    assert_eq!(overview.status(), StatusCode::OK);
    hidden_field(&overview.text().await.unwrap(), "csrf")
}

fn assert_to_sign_in(response: &reqwest::Response) {
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(response), "/console/sign-in");
}

/// The sign-in page is a form with a password-type "Admin token" field, under the pages'
/// Content-Security-Policy, and has no inline script or style.
async fn the_sign_in_page_asks_for_an_admin_token(h: Harness) {
    let server = start(&h).await;
    let mut browser = Browser::new(&server);

    let response = browser.get("/console/sign-in").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[CONTENT_SECURITY_POLICY],
        server::http::security_headers::CONTENT_SECURITY_POLICY_VALUE
    );
    let html = response.text().await.unwrap();
    assert!(
        html.contains("<label for=\"token\">Admin token</label>"),
        "{html}"
    );
    assert!(
        html.contains("id=\"token\" name=\"token\" type=\"password\""),
        "{html}"
    );
    assert!(
        !html.contains("<script") && !html.contains("style="),
        "{html}"
    );
    server.stop().await.unwrap();
}

/// A wrong token gets the form again with 401, the field named in the error, the typed
/// token not echoed back, and no session cookie.
async fn a_wrong_token_gets_the_form_again_and_no_session(h: Harness) {
    let server = start(&h).await;
    let mut browser = Browser::new(&server);

    let response = sign_in(&mut browser, "not-the-token-0123456789").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&response, COOKIE).is_none());
    let html = response.text().await.unwrap();
    assert!(html.contains("role=\"alert\">Admin token:"), "{html}");
    assert!(
        !html.contains("not-the-token"),
        "the token is echoed: {html}"
    );
    assert_to_sign_in(&browser.get("/console").await);
    server.stop().await.unwrap();
}

/// A sign-in form posted without the form's CSRF token (as another site would) signs nobody
/// in, even with the right token.
async fn a_sign_in_without_the_forms_csrf_token_is_refused(h: Harness) {
    let server = start(&h).await;
    let mut browser = Browser::new(&server);

    let response = browser
        .post_form("/console/sign-in", form(&[("token", TOKEN)]))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(&response, COOKIE).is_none());
    server.stop().await.unwrap();
}

/// The right token: 303 to the overview with an HttpOnly, SameSite=Strict cookie for
/// `/console` only (not Secure over http); the overview shows the instance's figures and
/// the delivery health of its applications, escaped.
async fn the_right_token_signs_in_and_shows_the_overview(h: Harness) {
    let server = start(&h).await;
    let domain = server.domain();
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    let settings = oidc_config(json!({
        "name": "Notes & <Tasks>",
        "redirect_uris": ["https://app.example.com/callback"],
        "back_channel_logout_uri": "https://app.example.com/logout",
    }));
    domain.add_application(&admin, settings).await.unwrap();
    let mut browser = Browser::new(&server);

    let response = sign_in(&mut browser, TOKEN).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/console");
    let cookie = set_cookie(&response, COOKIE).expect("a console cookie");
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert_eq!(attributes[0].len(), COOKIE.len() + 1 + 64, "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(attributes.contains(&attribute), "{attribute} in {cookie}");
    }
    assert!(!attributes.contains(&"Secure"), "{cookie}");
    assert!(!cookie.contains(TOKEN));

    let overview = browser.get("/console").await;
    assert_eq!(overview.status(), StatusCode::OK);
    assert!(overview.headers().contains_key(CONTENT_SECURITY_POLICY));
    let html = overview.text().await.unwrap();
    assert!(html.contains("<h1>Overview</h1>"), "{html}");
    assert!(
        html.contains("<dt id=\"live-sessions\">Live sessions</dt><dd aria-labelledby=\"live-sessions\">0</dd>"),
        "{html}"
    );
    assert!(html.contains("Deliveries failed"), "{html}");
    assert!(
        html.contains("<th scope=\"row\">Notes &amp; &lt;Tasks&gt;</th>"),
        "{html}"
    );
    assert!(html.contains("href=\"/console/users\""), "{html}");
    assert!(!html.contains(TOKEN) && !html.contains("style="), "{html}");
    server.stop().await.unwrap();
}

/// When the issuer is https, the console's cookies are Secure (and its pages get HSTS).
async fn over_https_the_console_cookie_is_secure(h: Harness) {
    let mut config = config(&h);
    config.server.external_url = "https://id.example.com".into();
    let server = RunningServer::start(config).await.unwrap();
    let mut browser = Browser::new(&server);

    let page = browser.get("/console/sign-in").await;
    assert!(page.headers().contains_key("strict-transport-security"));
    let csrf_cookie = set_cookie(&page, "portcullis_console_csrf").expect("a CSRF cookie");
    assert!(
        csrf_cookie
            .split(';')
            .any(|attribute| attribute.trim() == "Secure")
    );
    let response = sign_in(&mut browser, TOKEN).await;
    let cookie = set_cookie(&response, COOKIE).expect("a console cookie");
    assert!(
        cookie
            .split(';')
            .any(|attribute| attribute.trim() == "Secure"),
        "{cookie}"
    );
    server.stop().await.unwrap();
}

/// Without a console session, or with an unknown one, every console page redirects to
/// sign-in and shows nothing.
async fn without_a_session_the_console_sends_to_sign_in(h: Harness) {
    let server = start(&h).await;
    let mut browser = Browser::new(&server);

    for path in ["/console", "/console/users"] {
        let response = browser.get(path).await;
        assert_to_sign_in(&response);
        assert!(response.text().await.unwrap().is_empty());
    }
    browser.cookies.insert(COOKIE.into(), "0".repeat(64));
    assert_to_sign_in(&browser.get("/console").await);
    let response = browser
        .post_form("/console/sign-out", form(&[("csrf", "whatever")]))
        .await;
    assert_to_sign_in(&response);
    server.stop().await.unwrap();
}

/// Signing out takes the session's CSRF token: without it or with another, 403 and the
/// session stays; with it the session is gone, also for a copy of the cookie.
async fn signing_out_needs_the_csrf_token_and_ends_the_session(h: Harness) {
    let server = start(&h).await;
    let mut browser = Browser::new(&server);
    let csrf = signed_in(&mut browser, TOKEN).await;
    let session = browser.cookies[COOKIE].clone();

    let refused = browser.post_form("/console/sign-out", String::new()).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let refused = browser
        .post_form("/console/sign-out", form(&[("csrf", &"0".repeat(64))]))
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(browser.get("/console").await.status(), StatusCode::OK);

    let signed_out = browser
        .post_form("/console/sign-out", form(&[("csrf", &csrf)]))
        .await;
    assert_to_sign_in(&signed_out);
    assert!(
        !browser.cookies.contains_key(COOKIE),
        "the cookie is cleared"
    );
    browser.cookies.insert(COOKIE.into(), session);
    assert_to_sign_in(&browser.get("/console").await);
    server.stop().await.unwrap();
}

/// Signing in again in the same browser replaces its console session: the old id no longer
/// works.
async fn signing_in_again_replaces_the_session(h: Harness) {
    let server = start(&h).await;
    let mut browser = Browser::new(&server);
    signed_in(&mut browser, TOKEN).await;
    let first = browser.cookies[COOKIE].clone();
    signed_in(&mut browser, TOKEN).await;
    assert_ne!(browser.cookies[COOKIE], first);

    browser.cookies.insert(COOKIE.into(), first);
    assert_to_sign_in(&browser.get("/console").await);
    server.stop().await.unwrap();
}

/// Revoking the admin token a console session signed in with ends that session at its next
/// request.
async fn a_revoked_token_ends_its_console_session(h: Harness) {
    let server = start(&h).await;
    let domain = server.domain();
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    let second = domain.add_admin_token(&admin, "console").await.unwrap();
    let mut browser = Browser::new(&server);
    signed_in(&mut browser, &second.token).await;

    domain
        .revoke_admin_token(&admin, &second.view.token_id)
        .await
        .unwrap();
    assert_to_sign_in(&browser.get("/console").await);
    server.stop().await.unwrap();
}

/// A back-channel logout endpoint on a local port: answers the statuses queued (then 200) and
/// hands over every logout token it receives.
struct Receiver {
    uri: String,
    tokens: mpsc::UnboundedReceiver<String>,
}

#[derive(Clone)]
struct ReceiverState {
    sender: mpsc::UnboundedSender<String>,
    answers: Arc<Mutex<Vec<u16>>>,
}

async fn receive(
    State(state): State<ReceiverState>,
    Path(_app): Path<String>,
    body: String,
) -> axum::http::StatusCode {
    let token = form_urlencoded::parse(body.as_bytes())
        .find(|(name, _)| name == "logout_token")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    let _ = state.sender.send(token);
    let mut answers = state.answers.lock().unwrap();
    let status = if answers.is_empty() {
        200
    } else {
        answers.remove(0)
    };
    axum::http::StatusCode::from_u16(status).unwrap()
}

impl Receiver {
    async fn start(answers: &[u16]) -> Receiver {
        let (sender, tokens) = mpsc::unbounded_channel();
        let state = ReceiverState {
            sender,
            answers: Arc::new(Mutex::new(answers.to_vec())),
        };
        let app = axum::Router::new()
            .route("/logout/{app}", post(receive))
            .route(
                "/callback",
                axum::routing::get(|| async {
                    axum::response::Html(
                        "<!doctype html><title>Signed in</title><h1>Signed in</h1>",
                    )
                }),
            )
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri = format!("http://{}/logout/app", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { uri, tokens }
    }

    /// The next logout token, or a panic after 15 s.
    async fn next(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(15), self.tokens.recv())
            .await
            .expect("a logout request")
            .expect("the receiver runs")
    }

    /// Whether another logout token arrives within half a second.
    async fn more(&mut self) -> bool {
        tokio::time::timeout(Duration::from_millis(500), self.tokens.recv())
            .await
            .is_ok()
    }
}

/// Waits until the session's one delivery is at `stage`.
async fn wait_for_stage(
    server: &RunningServer,
    instance_id: &str,
    sid: &str,
    stage: DeliveryStage,
) {
    let domain = server.domain();
    for _ in 0..300 {
        let deliveries = domain
            .deliveries_of_session(instance_id, sid)
            .await
            .unwrap();
        if deliveries.iter().any(|delivery| delivery.stage == stage) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the delivery of {sid} never reached {stage:?}");
}

/// A session of alice's signed in to one application whose logout endpoint refuses once,
/// ended by an admin: the deliveries page lists the failed delivery (state=failed), its page
/// shows the attempt's HTTP status; redelivering without the CSRF token sends nothing, with it
/// the application gets a second logout token; a redelivery of what was sent is refused
/// (409) with the reason; an invalid `since` gets the form again with 400, naming the field.
async fn the_deliveries_page_lists_shows_and_redelivers(h: Harness) {
    let mut receiver = Receiver::start(&[400]).await;
    let (server, client_id, _alice, sid) = signed_in_to(&h, &receiver, "Notes", "alice").await;
    let domain = server.domain();
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    domain
        .terminate_session(
            &admin.instance_id,
            &sid,
            domain::TerminationReason::Admin,
            "http://localhost:8080",
            &admin.token_id,
        )
        .await
        .unwrap();
    let first = receiver.next().await;
    wait_for_stage(&server, &admin.instance_id, &sid, DeliveryStage::Failed).await;

    let mut browser = Browser::new(&server);
    let csrf = signed_in(&mut browser, TOKEN).await;
    let detail = format!("/console/deliveries/{sid}/{client_id}");

    // The list, filtered to failed deliveries; the navigation links to it.
    let list = browser.get("/console/deliveries?state=failed").await;
    assert_eq!(list.status(), StatusCode::OK);
    let html = list.text().await.unwrap();
    assert!(
        html.contains("<a href=\"/console/deliveries\" aria-current=\"page\">Deliveries</a>"),
        "{html}"
    );
    assert!(
        html.contains("<label for=\"state\">State</label>"),
        "{html}"
    );
    assert!(
        html.contains("<option value=\"failed\" selected>"),
        "{html}"
    );
    assert!(
        html.contains(&format!("<a href=\"{detail}\">{sid}</a>")),
        "{html}"
    );
    assert!(html.contains("<td>failed</td><td>1</td>"), "{html}");
    assert!(
        !html.contains("<script") && !html.contains("style="),
        "{html}"
    );
    let sent_only = browser.get("/console/deliveries?state=sent").await;
    let html = sent_only.text().await.unwrap();
    assert!(html.contains("No deliveries match."), "{html}");

    // The delivery's page: its attempt with the HTTP status, and a Redeliver form.
    let page = browser.get(&detail).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<td>attempt: failed</td><td>400</td>"),
        "{html}"
    );
    assert!(html.contains(">Redeliver</button>"), "{html}");

    // Without the CSRF token, or with another: 403 and nothing sent.
    let redeliver = format!("{detail}/redeliver");
    let refused = browser.post_form(&redeliver, String::new()).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let refused = browser
        .post_form(&redeliver, form(&[("csrf", &"0".repeat(64))]))
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(
        !receiver.more().await,
        "nothing is sent without the CSRF token"
    );

    // With it: back to the delivery's page, and a second, fresh logout token arrives.
    let done = browser
        .post_form(&redeliver, form(&[("csrf", &csrf)]))
        .await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&done), detail);
    let second = receiver.next().await;
    assert_ne!(second, first);
    wait_for_stage(&server, &admin.instance_id, &sid, DeliveryStage::Sent).await;
    let html = browser.get(&detail).await.text().await.unwrap();
    assert!(html.contains("redelivery requested by"), "{html}");
    assert!(
        html.contains("<td>attempt: sent</td><td>200</td>"),
        "{html}"
    );
    assert!(!html.contains(">Redeliver</button>"), "{html}");

    // What was sent is not sent again: the page with the reason, 409, and no attempt more.
    // (Counted from the history, not at the receiver: on a loaded machine an attempt can time
    // out after the receiver got the token, and the retry that follows is delivery working.)
    let attempts = || async {
        domain
            .deliveries_of_session(&admin.instance_id, &sid)
            .await
            .unwrap()[0]
            .attempts
    };
    let before = attempts().await;
    let again = browser
        .post_form(&redeliver, form(&[("csrf", &csrf)]))
        .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let html = again.text().await.unwrap();
    assert!(html.contains("role=\"alert\">Not redelivered:"), "{html}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        attempts().await,
        before,
        "the refused redelivery sent nothing"
    );

    // An invalid time: the form again with 400, the field named and what was typed kept.
    let invalid = browser
        .get("/console/deliveries?state=failed&since=yesterday%20%3Cnoon%3E")
        .await;
    assert_eq!(invalid.status(), StatusCode::BAD_REQUEST);
    let html = invalid.text().await.unwrap();
    assert!(
        html.contains("<p class=\"error\" id=\"since-error\" role=\"alert\">"),
        "{html}"
    );
    assert!(
        html.contains("value=\"yesterday &lt;noon&gt;\" placeholder=\"2026-11-29T10:00:00Z\" aria-invalid=\"true\" aria-describedby=\"since-error\""),
        "{html}"
    );
    for (query, field) in [("state=bogus", "state"), ("cursor=garbage", "cursor")] {
        let invalid = browser.get(&format!("/console/deliveries?{query}")).await;
        assert_eq!(invalid.status(), StatusCode::BAD_REQUEST, "{query}");
        let html = invalid.text().await.unwrap();
        assert!(
            html.contains(&format!("id=\"{field}-error\" role=\"alert\">")),
            "{html}"
        );
    }
    server.stop().await.unwrap();
}

/// The instance page lists every feature with its values; turning
/// `end_sessions_on_credential_change` off needs the CSRF token (without it: 403 and nothing
/// changed), and resetting it brings the system value back.
async fn the_instance_page_sets_features_with_csrf(h: Harness) {
    let server = start(&h).await;
    let domain = server.domain();
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    let feature = domain::Feature::EndSessionsOnCredentialChange;
    let mut browser = Browser::new(&server);
    let csrf = signed_in(&mut browser, TOKEN).await;

    let page = browser.get("/console/instance").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<a href=\"/console/instance\" aria-current=\"page\">Instance</a>"),
        "{html}"
    );
    for feature in domain::Feature::ALL {
        assert!(
            html.contains(&format!(
                "<th scope=\"row\"><code>{}</code></th>",
                feature.name()
            )),
            "{html}"
        );
    }
    assert!(
        html.contains("<th scope=\"col\">System value</th><th scope=\"col\">Instance value</th>"),
        "{html}"
    );
    assert!(
        !html.contains("<script") && !html.contains("style="),
        "{html}"
    );
    let before = domain.feature(&admin.instance_id, feature).await.unwrap();
    assert_eq!(before.instance, None);

    let path = "/console/instance/features/end_sessions_on_credential_change";
    let refused = browser.post_form(path, form(&[("action", "off")])).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let refused = browser
        .post_form(path, form(&[("csrf", &"0".repeat(64)), ("action", "off")]))
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        domain.feature(&admin.instance_id, feature).await.unwrap(),
        before
    );

    let done = browser
        .post_form(path, form(&[("csrf", &csrf), ("action", "off")]))
        .await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&done), "/console/instance");
    let now = domain.feature(&admin.instance_id, feature).await.unwrap();
    assert_eq!((now.instance, now.effective), (Some(false), false));
    let html = browser.get("/console/instance").await.text().await.unwrap();
    assert!(
        html.contains(&format!(
            "<code>{}</code></th><td>{}</td><td>off</td><td>off</td>",
            feature.name(),
            if before.system { "on" } else { "off" }
        )),
        "{html}"
    );
    assert!(
        html.contains("aria-label=\"Reset to the system value end_sessions_on_credential_change\""),
        "{html}"
    );

    let reset = browser
        .post_form(path, form(&[("csrf", &csrf), ("action", "reset")]))
        .await;
    assert_eq!(reset.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        domain.feature(&admin.instance_id, feature).await.unwrap(),
        before
    );

    let unknown = browser
        .post_form(
            "/console/instance/features/no_such_feature",
            form(&[("csrf", &csrf), ("action", "on")]),
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let bogus = browser
        .post_form(path, form(&[("csrf", &csrf), ("action", "maybe")]))
        .await;
    assert_eq!(bogus.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        domain.feature(&admin.instance_id, feature).await.unwrap(),
        before
    );
    server.stop().await.unwrap();
}

/// "Sign out everyone" without the confirmation: the page again with 422 and nothing
/// started; without the CSRF token: 403. With both: 303 to the operation's progress page,
/// which ends up `completed` with every session ended, and the instance page lists it.
async fn signing_out_everyone_needs_the_confirmation_and_shows_its_progress(h: Harness) {
    let server = start(&h).await;
    let domain = server.domain();
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    let user = domain
        .add_user(
            &admin,
            NewUser {
                username: "alice".into(),
                profile: Profile::default(),
                password: "correct horse battery".into(),
            },
        )
        .await
        .unwrap();
    for _ in 0..3 {
        domain
            .create_session(
                &admin.instance_id,
                &user.user_id,
                Duration::from_secs(3600),
                None,
            )
            .await
            .unwrap();
    }
    let mut browser = Browser::new(&server);
    let csrf = signed_in(&mut browser, TOKEN).await;
    let html = browser.get("/console/instance").await.text().await.unwrap();
    assert!(
        html.contains("name=\"confirm\" value=\"yes\" required>"),
        "{html}"
    );
    assert!(
        html.contains("Nobody has signed out everyone yet."),
        "{html}"
    );

    let path = "/console/instance/sign-out";
    let unconfirmed = browser.post_form(path, form(&[("csrf", &csrf)])).await;
    assert_eq!(unconfirmed.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = unconfirmed.text().await.unwrap();
    assert!(
        html.contains("<p class=\"error\" id=\"confirm-error\" role=\"alert\">"),
        "{html}"
    );
    let refused = browser.post_form(path, form(&[("confirm", "yes")])).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(
        domain
            .sign_out_operations(&admin.instance_id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        domain
            .live_sessions_of_instance(&admin.instance_id)
            .await
            .unwrap(),
        3
    );

    let started = browser
        .post_form(path, form(&[("csrf", &csrf), ("confirm", "yes")]))
        .await;
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    let progress = location(&started);
    let operations = domain
        .sign_out_operations(&admin.instance_id)
        .await
        .unwrap();
    assert_eq!(operations.len(), 1);
    assert_eq!(
        progress,
        format!(
            "/console/instance/sign-out/{}",
            operations[0].started.operation_id
        )
    );

    let mut html = String::new();
    for _ in 0..300 {
        let page = browser.get(&progress).await;
        assert_eq!(page.status(), StatusCode::OK);
        html = page.text().await.unwrap();
        assert!(html.contains("<progress id=\"sessions-ended\""), "{html}");
        if html.contains("<dd>completed</dd>") {
            break;
        }
        assert!(
            html.contains("<meta http-equiv=\"refresh\" content=\"1\">"),
            "{html}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(html.contains("<dd>completed</dd>"), "{html}");
    assert!(
        html.contains("<progress id=\"sessions-ended\" value=\"3\" max=\"3\">"),
        "{html}"
    );
    assert!(html.contains("<dd>3 of 3</dd>"), "{html}");
    assert!(html.contains("Logout notifications pending"), "{html}");
    assert!(!html.contains("http-equiv=\"refresh\""), "{html}");
    assert!(
        !html.contains("<script") && !html.contains("style="),
        "{html}"
    );
    assert_eq!(
        domain
            .live_sessions_of_instance(&admin.instance_id)
            .await
            .unwrap(),
        0
    );

    let html = browser.get("/console/instance").await.text().await.unwrap();
    assert!(html.contains(&format!("<a href=\"{progress}\">")), "{html}");
    assert!(html.contains("<td>completed</td><td>3 of 3</td>"), "{html}");
    let missing = browser.get("/console/instance/sign-out/nope").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    server.stop().await.unwrap();
}

/// Waits until the browser is on `url`.
async fn wait_for_url(browser: &HeadlessBrowser, url: &str) {
    for _ in 0..200 {
        if browser.current_url().await.unwrap().as_str() == url {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let current = browser.current_url().await.unwrap();
    panic!("the browser never reached {url}; it is on {current}");
}

/// In a real browser, with the keyboard only: type the token, Enter signs in; the overview
/// loads nothing from another origin; Tab reaches "Sign out" and Enter signs out.
#[tokio::test]
async fn an_admin_signs_in_and_out_with_the_keyboard() {
    let Some(browser) = HeadlessBrowser::start().await else {
        return;
    };
    let h = eventstore::testing::sqlite().await;
    let server = start(&h).await;
    let base = format!("http://{}", server.local_addr);
    let domain = server.domain();
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    let settings = oidc_config(json!({
        "name": "Notes",
        "redirect_uris": ["https://app.example.com/callback"],
        "back_channel_logout_uri": "https://app.example.com/logout",
    }));
    domain.add_application(&admin, settings).await.unwrap();

    browser
        .goto(&format!("{base}/console/sign-in"))
        .await
        .unwrap();
    browser
        .find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys(TOKEN)
        .await
        .unwrap();
    browser.press(Key::Enter).await;
    wait_for_url(&browser, &format!("{base}/console")).await;
    let screenshot = browser.screenshot("console-overview").await;
    let what = format!("the overview (screenshot: {})", screenshot.display());
    let heading = browser.find(Locator::Css("h1")).await.unwrap();
    assert_eq!(heading.text().await.unwrap(), "Overview", "{what}");

    let loaded = browser.resource_urls().await;
    assert!(
        loaded.contains(&format!("{base}/assets/page.css")),
        "{what} loaded {loaded:?}"
    );
    let foreign: Vec<&String> = loaded
        .iter()
        .filter(|url| !url.starts_with(&format!("{base}/")))
        .collect();
    assert!(
        foreign.is_empty(),
        "{what} loaded from elsewhere: {foreign:?}"
    );

    assert!(
        browser.tab_to("form.sign-out button", 10).await,
        "{what}: Tab never reached Sign out"
    );
    let outline = browser
        .execute(
            "const style = getComputedStyle(document.activeElement); \
             return [style.outlineStyle, style.outlineWidth];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(outline, json!(["solid", "3px"]), "{what}: focus ring");
    let row = browser
        .find(Locator::Css("tbody th[scope=row]"))
        .await
        .unwrap();
    assert_eq!(row.text().await.unwrap(), "Notes", "{what}");
    browser.press(Key::Enter).await;
    wait_for_url(&browser, &format!("{base}/console/sign-in")).await;
    browser.screenshot("console-signed-out").await;
    let heading = browser.find(Locator::Css("h1")).await.unwrap();
    assert_eq!(heading.text().await.unwrap(), "Sign in to the console");

    browser.close().await;
    server.stop().await.unwrap();
}

/// The path of the user page the console links `username` to, from the users list.
fn user_link(list: &str, username: &str) -> String {
    let end = list
        .find(&format!("\">{username}</a>"))
        .unwrap_or_else(|| panic!("{username} is not listed in {list}"));
    let start = list[..end].rfind("href=\"").unwrap() + "href=\"".len();
    list[start..end].to_owned()
}

/// The add form: an empty login name gets the page again with 422, the error next to the
/// field and the typed e-mail kept (never the password); a right one adds the user, who is
/// then listed and shown; without the CSRF token nothing is added.
async fn the_users_page_adds_lists_and_shows_users(h: Harness) {
    let server = start(&h).await;
    let mut browser = Browser::new(&server);
    let csrf = signed_in(&mut browser, TOKEN).await;

    let page = browser.get("/console/users").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("<h1>Users</h1>"), "{html}");
    assert!(html.contains("aria-current=\"page\">Users</a>"), "{html}");

    let bad = browser
        .post_form(
            "/console/users",
            form(&[
                ("csrf", &csrf),
                ("username", "  "),
                ("email", "bob@example.com"),
                ("password", "secret-password-1"),
            ]),
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = bad.text().await.unwrap();
    assert!(
        html.contains("<p class=\"error\" id=\"new-username-error\" role=\"alert\">"),
        "{html}"
    );
    assert!(html.contains("value=\"bob@example.com\""), "{html}");
    assert!(!html.contains("secret-password-1"), "{html}");

    let refused = browser
        .post_form(
            "/console/users",
            form(&[("username", "bob"), ("password", "secret-password-1")]),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let domain = server.domain();
    let instance = domain.default_instance().await.unwrap().instance_id;
    assert!(domain.users(&instance, "", 10).await.unwrap().is_empty());

    let added = browser
        .post_form(
            "/console/users",
            form(&[
                ("csrf", &csrf),
                ("username", "bob"),
                ("email", "bob@example.com"),
                ("password", "secret-password-1"),
            ]),
        )
        .await;
    assert_eq!(added.status(), StatusCode::SEE_OTHER);
    let users = domain.users(&instance, "", 10).await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].profile.email.as_deref(), Some("bob@example.com"));
    let user_path = format!("/console/users/{}", users[0].user_id);
    assert_eq!(location(&added), user_path);

    let list = browser.get("/console/users").await.text().await.unwrap();
    assert_eq!(user_link(&list, "bob"), user_path);
    assert!(
        list.contains("<td>bob@example.com</td><td>active</td>"),
        "{list}"
    );
    let shown = browser.get(&user_path).await;
    assert_eq!(shown.status(), StatusCode::OK);
    let html = shown.text().await.unwrap();
    assert!(html.contains("<h1>bob</h1>"), "{html}");
    assert!(html.contains("No live sessions."), "{html}");
    assert!(
        !html.contains("<script") && !html.contains("style="),
        "{html}"
    );
    assert_eq!(
        browser.get("/console/users/nobody").await.status(),
        StatusCode::NOT_FOUND
    );
    server.stop().await.unwrap();
}

/// Adds carol with two sessions; returns the instance, her id and the sessions' ids.
async fn carol_with_sessions(server: &RunningServer) -> (String, String, Vec<String>) {
    let domain = server.domain();
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    let user = domain
        .add_user(
            &admin,
            NewUser {
                username: "carol".into(),
                profile: Profile::default(),
                password: "correct horse battery".into(),
            },
        )
        .await
        .unwrap();
    let mut sessions = Vec::new();
    for _ in 0..2 {
        let (session, _) = domain
            .create_session(
                &admin.instance_id,
                &user.user_id,
                Duration::from_secs(3600),
                None,
            )
            .await
            .unwrap();
        sessions.push(session.session_id);
    }
    (admin.instance_id, user.user_id, sessions)
}

/// Whether each of the user's sessions (ended ones too) has ended, by id.
async fn ended(server: &RunningServer, instance: &str, user_id: &str) -> Vec<(String, bool)> {
    let mut sessions: Vec<(String, bool)> = server
        .domain()
        .sessions_of_user(instance, user_id, true)
        .await
        .unwrap()
        .into_iter()
        .map(|session| (session.session_id, session.terminated))
        .collect();
    sessions.sort();
    sessions
}

/// The user page lists the live sessions; the per-session "Sign out" form needs the CSRF
/// token (403 and nothing ends without it) and ends just that session; "Sign out of all
/// sessions" needs the ticked confirmation (422 without it) and ends the rest.
async fn a_users_sessions_are_signed_out_with_the_csrf_token(h: Harness) {
    let server = start(&h).await;
    let (instance, user_id, sessions) = carol_with_sessions(&server).await;
    let mut browser = Browser::new(&server);
    let csrf = signed_in(&mut browser, TOKEN).await;
    let user_path = format!("/console/users/{user_id}");

    let html = browser.get(&user_path).await.text().await.unwrap();
    for session in &sessions {
        assert!(
            html.contains(&format!("<th scope=\"row\">{session}</th>")),
            "{html}"
        );
    }
    let sign_out = format!("{user_path}/sessions/{}/sign-out", sessions[0]);
    assert!(html.contains(&format!("action=\"{sign_out}\"")), "{html}");
    let mut expected: Vec<(String, bool)> = sessions.iter().map(|id| (id.clone(), false)).collect();
    expected.sort();

    let refused = browser.post_form(&sign_out, String::new()).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let refused = browser
        .post_form(&sign_out, form(&[("csrf", &"0".repeat(64))]))
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(ended(&server, &instance, &user_id).await, expected);

    let done = browser.post_form(&sign_out, form(&[("csrf", &csrf)])).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&done), user_path);
    for entry in &mut expected {
        entry.1 = entry.0 == sessions[0];
    }
    assert_eq!(ended(&server, &instance, &user_id).await, expected);
    let html = browser.get(&user_path).await.text().await.unwrap();
    assert!(!html.contains(&sessions[0]), "{html}");

    let all = format!("{user_path}/sign-out");
    let unconfirmed = browser.post_form(&all, form(&[("csrf", &csrf)])).await;
    assert_eq!(unconfirmed.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = unconfirmed.text().await.unwrap();
    assert!(html.contains("id=\"sign-out-all-confirm-error\""), "{html}");
    assert!(html.contains(&sessions[1]), "{html}");
    let done = browser
        .post_form(&all, form(&[("csrf", &csrf), ("confirm", "yes")]))
        .await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    for entry in &mut expected {
        entry.1 = true;
    }
    assert_eq!(ended(&server, &instance, &user_id).await, expected);
    server.stop().await.unwrap();
}

/// Deactivating ends the sessions and shows the user inactive, reactivating makes them
/// active again, a new password is set, and removing (confirmed) takes the user off the list.
async fn a_user_is_deactivated_reactivated_and_removed_from_the_console(h: Harness) {
    let server = start(&h).await;
    let (instance, user_id, _sessions) = carol_with_sessions(&server).await;
    let mut browser = Browser::new(&server);
    let csrf = signed_in(&mut browser, TOKEN).await;
    let user_path = format!("/console/users/{user_id}");
    let domain = server.domain();

    let refused = browser
        .post_form(&format!("{user_path}/deactivate"), String::new())
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        domain.user(&instance, &user_id).await.unwrap().state,
        domain::UserState::Active
    );

    let done = browser
        .post_form(&format!("{user_path}/deactivate"), form(&[("csrf", &csrf)]))
        .await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        domain.user(&instance, &user_id).await.unwrap().state,
        domain::UserState::Inactive
    );
    assert!(
        ended(&server, &instance, &user_id)
            .await
            .iter()
            .all(|(_, ended)| *ended)
    );
    let list = browser.get("/console/users").await.text().await.unwrap();
    assert!(list.contains("<td></td><td>inactive</td>"), "{list}");
    let html = browser.get(&user_path).await.text().await.unwrap();
    assert!(html.contains(">Reactivate</button>"), "{html}");

    let done = browser
        .post_form(&format!("{user_path}/reactivate"), form(&[("csrf", &csrf)]))
        .await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        domain.user(&instance, &user_id).await.unwrap().state,
        domain::UserState::Active
    );

    let short = browser
        .post_form(
            &format!("{user_path}/password"),
            form(&[("csrf", &csrf), ("password", "short")]),
        )
        .await;
    assert_eq!(short.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = short.text().await.unwrap();
    assert!(html.contains("id=\"password-error\""), "{html}");
    assert!(!html.contains("value=\"short\""), "{html}");
    let before = domain
        .user(&instance, &user_id)
        .await
        .unwrap()
        .password_hash;
    let set = browser
        .post_form(
            &format!("{user_path}/password"),
            form(&[("csrf", &csrf), ("password", "a new long password")]),
        )
        .await;
    assert_eq!(set.status(), StatusCode::SEE_OTHER);
    assert_ne!(
        domain
            .user(&instance, &user_id)
            .await
            .unwrap()
            .password_hash,
        before
    );

    let remove = format!("{user_path}/remove");
    let unconfirmed = browser.post_form(&remove, form(&[("csrf", &csrf)])).await;
    assert_eq!(unconfirmed.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(domain.user(&instance, &user_id).await.is_ok());
    let done = browser
        .post_form(&remove, form(&[("csrf", &csrf), ("confirm", "yes")]))
        .await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&done), "/console/users");
    assert!(domain.user(&instance, &user_id).await.is_err());
    let list = browser.get("/console/users").await.text().await.unwrap();
    assert!(!list.contains("carol"), "{list}");
    server.stop().await.unwrap();
}

/// The new-application form's fields for a confidential web application, with `changes`
/// replacing or adding fields.
fn application_form(csrf: &str, changes: &[(&str, &str)]) -> String {
    let mut fields = vec![
        ("csrf", csrf),
        ("name", "Notes & <Tasks>"),
        ("client_type", "confidential"),
        ("auth_method", ""),
        (
            "redirect_uris",
            "https://app.example.com/callback\r\nhttps://app.example.com/cb2",
        ),
        ("post_logout_redirect_uris", "https://app.example.com/"),
        ("grant_authorization_code", "yes"),
        ("grant_refresh_token", "yes"),
        ("id_token_signing_alg", "RS256"),
        ("access_token_lifetime_secs", "3600"),
        ("id_token_lifetime_secs", "3600"),
        ("refresh_token_lifetime_secs", "2592000"),
        ("back_channel_logout_uri", "https://app.example.com/logout"),
        ("back_channel_logout_session_required", "yes"),
    ];
    for (name, value) in changes {
        match fields.iter_mut().find(|(field, _)| field == name) {
            Some(field) => field.1 = value,
            None => fields.push((name, value)),
        }
    }
    fields.retain(|(_, value)| !value.is_empty());
    form(&fields)
}

/// The client secret a page shows, if any.
fn shown_secret(html: &str) -> Option<String> {
    let start = html.find("<code class=\"secret\">")? + "<code class=\"secret\">".len();
    let end = start + html[start..].find("</code>")?;
    Some(html[start..end].to_owned())
}

/// The list and the new-application form; creating a confidential application shows its
/// secret once (201), which then authenticates the client, and never again (its page, the
/// list); the list shows name, client ID, type and back-channel logout; editing saves every
/// setting; a public application has no secret; a POST without the CSRF token changes nothing.
async fn the_applications_page_creates_lists_and_edits_applications(h: Harness) {
    let server = start(&h).await;
    let domain = server.domain();
    let instance = domain.default_instance().await.unwrap().instance_id;
    let mut browser = Browser::new(&server);
    let csrf = signed_in(&mut browser, TOKEN).await;

    let page = browser.get("/console/applications").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("<h1>Applications</h1>"), "{html}");
    assert!(
        html.contains("aria-current=\"page\">Applications</a>"),
        "{html}"
    );
    assert!(html.contains("No applications here."), "{html}");
    assert!(
        html.contains("<h2 id=\"create\">New application</h2>"),
        "{html}"
    );
    assert!(
        !html.contains("<script") && !html.contains("style="),
        "{html}"
    );

    // Without the CSRF token (or with another): 403, nothing created.
    let refused = browser
        .post_form("/console/applications", application_form("", &[]))
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let refused = browser
        .post_form(
            "/console/applications",
            application_form(&"0".repeat(64), &[]),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(
        domain
            .applications(&instance, "", 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Created: the secret is shown in the answer, and works.
    let created = browser
        .post_form("/console/applications", application_form(&csrf, &[]))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let html = created.text().await.unwrap();
    let secret = shown_secret(&html).expect("the secret is shown");
    assert!(html.contains("shown only this once"), "{html}");
    let apps = domain.applications(&instance, "", 10).await.unwrap();
    assert_eq!(apps.len(), 1);
    let app = &apps[0];
    let client_id = app.client_id.clone();
    assert_eq!(app.config.name, "Notes & <Tasks>");
    assert_eq!(
        app.config.redirect_uris,
        [
            "https://app.example.com/callback",
            "https://app.example.com/cb2"
        ]
    );
    assert_eq!(
        app.config.auth_method,
        domain::application::AuthMethod::ClientSecretBasic
    );
    assert!(app.config.back_channel_logout_session_required);
    assert!(
        domain
            .authenticate_client(&instance, &client_id, &secret)
            .await
            .unwrap()
            .is_some()
    );
    let app_path = format!("/console/applications/{client_id}");
    assert!(html.contains(&format!("href=\"{app_path}\"")), "{html}");

    // Never shown again: not on its page, not in the list.
    let list = browser
        .get("/console/applications")
        .await
        .text()
        .await
        .unwrap();
    assert!(!list.contains(&secret), "{list}");
    assert!(
        list.contains(&format!(
            "<tr><th scope=\"row\"><a href=\"{app_path}\">Notes &amp; &lt;Tasks&gt;</a></th>\
             <td>{client_id}</td><td>confidential</td><td>yes</td></tr>"
        )),
        "{list}"
    );
    let shown = browser.get(&app_path).await;
    assert_eq!(shown.status(), StatusCode::OK);
    let html = shown.text().await.unwrap();
    assert!(!html.contains(&secret), "{html}");
    assert!(shown_secret(&html).is_none(), "{html}");
    assert!(
        html.contains("<h1>Notes &amp; &lt;Tasks&gt;</h1>"),
        "{html}"
    );
    assert!(
        html.contains("https://app.example.com/callback\nhttps://app.example.com/cb2</textarea>"),
        "{html}"
    );
    assert!(
        !html.contains("<script") && !html.contains("style="),
        "{html}"
    );

    // Edited: every setting saved; without the CSRF token nothing changes.
    let edit = application_form(
        &csrf,
        &[
            ("name", "Notes"),
            ("client_type", "public"),
            ("auth_method", "client_secret_post"),
            ("post_logout_redirect_uris", ""),
            ("grant_refresh_token", ""),
            ("id_token_signing_alg", "EdDSA"),
            ("access_token_lifetime_secs", "60"),
            ("id_token_lifetime_secs", "120"),
            ("refresh_token_lifetime_secs", "180"),
            ("back_channel_logout_uri", ""),
            ("back_channel_logout_session_required", ""),
        ],
    );
    let refused = browser
        .post_form(&app_path, edit.replace(&format!("csrf={csrf}&"), ""))
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        domain
            .application(&instance, &client_id)
            .await
            .unwrap()
            .config,
        app.config
    );
    let saved = browser.post_form(&app_path, edit).await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&saved), app_path);
    let config = domain
        .application(&instance, &client_id)
        .await
        .unwrap()
        .config;
    assert_eq!(config.name, "Notes");
    assert_eq!(
        config.client_type,
        domain::application::ClientType::Confidential,
        "the type is fixed"
    );
    assert_eq!(
        config.auth_method,
        domain::application::AuthMethod::ClientSecretPost
    );
    assert!(config.post_logout_redirect_uris.is_empty());
    assert_eq!(
        config.grant_types,
        [domain::application::GrantType::AuthorizationCode]
    );
    assert_eq!(
        config.id_token_signing_alg,
        domain::application::SigningAlgorithm::EdDSA
    );
    assert_eq!(
        (
            config.access_token_lifetime_secs,
            config.id_token_lifetime_secs,
            config.refresh_token_lifetime_secs
        ),
        (60, 120, 180)
    );
    assert_eq!(config.back_channel_logout_uri, None);
    assert!(!config.back_channel_logout_session_required);
    let html = browser.get(&app_path).await.text().await.unwrap();
    assert!(html.contains("<option value=\"EdDSA\" selected>"), "{html}");
    assert!(
        html.contains("No back-channel logout URI is set."),
        "{html}"
    );

    // A public application: no secret, straight to its page.
    let public = browser
        .post_form(
            "/console/applications",
            application_form(
                &csrf,
                &[
                    ("name", "SPA"),
                    ("client_type", "public"),
                    ("redirect_uris", "http://localhost:3000/cb"),
                    ("back_channel_logout_uri", ""),
                ],
            ),
        )
        .await;
    assert_eq!(public.status(), StatusCode::SEE_OTHER);
    let public_path = location(&public);
    let html = browser.get(&public_path).await.text().await.unwrap();
    assert!(html.contains("A public client has no secret."), "{html}");
    assert!(!html.contains("/secret\""), "{html}");
    let list = browser
        .get("/console/applications")
        .await
        .text()
        .await
        .unwrap();
    assert!(list.contains("<td>public</td><td>no</td>"), "{list}");
    assert_eq!(
        browser.get("/console/applications/nobody").await.status(),
        StatusCode::NOT_FOUND
    );
    server.stop().await.unwrap();
}

/// Settings the domain refuses (a redirect URI with a fragment, a back-channel URI that is no
/// URL, a lifetime that is no number, a public client authenticating): 422, the error next to
/// the field (aria-invalid, aria-describedby), what was typed kept, nothing saved, on create
/// and on edit.
async fn invalid_application_settings_are_shown_next_to_the_field_and_nothing_is_saved(h: Harness) {
    let server = start(&h).await;
    let domain = server.domain();
    let instance = domain.default_instance().await.unwrap().instance_id;
    let mut browser = Browser::new(&server);
    let csrf = signed_in(&mut browser, TOKEN).await;

    for (field, value) in [
        ("redirect_uris", "https://app.example.com/cb#fragment"),
        ("post_logout_redirect_uris", "not a url"),
        ("back_channel_logout_uri", "not a url <at all>"),
        ("access_token_lifetime_secs", "an hour"),
        ("id_token_lifetime_secs", "0"),
        ("name", " "),
    ] {
        let refused = browser
            .post_form(
                "/console/applications",
                application_form(&csrf, &[(field, value)]),
            )
            .await;
        assert_eq!(
            refused.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}"
        );
        let html = refused.text().await.unwrap();
        assert!(
            html.contains(&format!(
                "<p class=\"error\" id=\"{field}-error\" role=\"alert\">"
            )),
            "{field}: {html}"
        );
        assert!(
            html.contains(&format!(
                "aria-invalid=\"true\" aria-describedby=\"{field}-error\""
            )),
            "{field}: {html}"
        );
        let kept = protocol::response::escape_html(value);
        assert!(
            html.contains(&format!("value=\"{kept}\""))
                || html.contains(&format!(">{kept}</textarea>")),
            "{field} keeps {value:?}: {html}"
        );
        assert!(html.contains("value=\"Notes &amp; &lt;Tasks&gt;\"") || field == "name");
    }
    let public_with_secret = browser
        .post_form(
            "/console/applications",
            application_form(
                &csrf,
                &[
                    ("client_type", "public"),
                    ("auth_method", "client_secret_basic"),
                ],
            ),
        )
        .await;
    assert_eq!(
        public_with_secret.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let html = public_with_secret.text().await.unwrap();
    assert!(html.contains("id=\"auth_method-error\""), "{html}");
    assert!(
        html.contains("<option value=\"public\" selected>"),
        "{html}"
    );
    assert!(
        domain
            .applications(&instance, "", 10)
            .await
            .unwrap()
            .is_empty()
    );

    // On edit: the same, and the stored settings stay.
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    let (app, _) = domain
        .add_application(
            &admin,
            oidc_config(json!({"name": "Notes", "redirect_uris": [CALLBACK]})),
        )
        .await
        .unwrap();
    let app_path = format!("/console/applications/{}", app.client_id);
    let refused = browser
        .post_form(
            &app_path,
            application_form(
                &csrf,
                &[
                    ("name", "Renamed"),
                    ("redirect_uris", "https://app.example.com/cb#fragment"),
                ],
            ),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = refused.text().await.unwrap();
    assert!(html.contains("id=\"redirect_uris-error\""), "{html}");
    assert!(html.contains("value=\"Renamed\""), "{html}");
    assert!(
        html.contains("https://app.example.com/cb#fragment</textarea>"),
        "{html}"
    );
    assert!(html.contains("<h1>Notes</h1>"), "{html}");
    assert_eq!(
        domain
            .application(&instance, &app.client_id)
            .await
            .unwrap()
            .config,
        app.config
    );
    server.stop().await.unwrap();
}

/// A new client secret needs the CSRF token and the ticked box (403 / 422 and the old secret
/// still works without them); then it is shown once and the old one stops working. Removing
/// needs both too, then the application is gone from the list.
async fn a_client_secret_is_replaced_and_an_application_removed_with_confirmation(h: Harness) {
    let server = start(&h).await;
    let domain = server.domain();
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    let instance = admin.instance_id.clone();
    let (app, old_secret) = domain
        .add_application(
            &admin,
            oidc_config(json!({"name": "Notes", "redirect_uris": [CALLBACK]})),
        )
        .await
        .unwrap();
    let old_secret = old_secret.unwrap();
    let client_id = app.client_id.clone();
    let works = |secret: String| {
        let domain = server.domain();
        let (instance, client_id) = (instance.clone(), client_id.clone());
        async move {
            domain
                .authenticate_client(&instance, &client_id, &secret)
                .await
                .unwrap()
                .is_some()
        }
    };
    let mut browser = Browser::new(&server);
    let csrf = signed_in(&mut browser, TOKEN).await;
    let app_path = format!("/console/applications/{client_id}");
    let html = browser.get(&app_path).await.text().await.unwrap();
    assert!(
        html.contains(&format!("action=\"{app_path}/secret\"")),
        "{html}"
    );
    assert!(
        html.contains(&format!("action=\"{app_path}/remove\"")),
        "{html}"
    );

    let secret_path = format!("{app_path}/secret");
    let refused = browser
        .post_form(&secret_path, form(&[("confirm", "yes")]))
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let unconfirmed = browser
        .post_form(&secret_path, form(&[("csrf", &csrf)]))
        .await;
    assert_eq!(unconfirmed.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = unconfirmed.text().await.unwrap();
    assert!(
        html.contains("<p class=\"error\" id=\"secret-confirm-error\" role=\"alert\">"),
        "{html}"
    );
    assert!(shown_secret(&html).is_none(), "{html}");
    assert!(works(old_secret.clone()).await);

    let replaced = browser
        .post_form(&secret_path, form(&[("csrf", &csrf), ("confirm", "yes")]))
        .await;
    assert_eq!(replaced.status(), StatusCode::OK);
    let html = replaced.text().await.unwrap();
    let new_secret = shown_secret(&html).expect("the new secret is shown");
    assert_ne!(new_secret, old_secret);
    assert!(works(new_secret.clone()).await);
    assert!(!works(old_secret).await);
    let html = browser.get(&app_path).await.text().await.unwrap();
    assert!(!html.contains(&new_secret), "{html}");

    let remove = format!("{app_path}/remove");
    let refused = browser
        .post_form(&remove, form(&[("confirm", "yes")]))
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let unconfirmed = browser.post_form(&remove, form(&[("csrf", &csrf)])).await;
    assert_eq!(unconfirmed.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = unconfirmed.text().await.unwrap();
    assert!(html.contains("id=\"remove-confirm-error\""), "{html}");
    assert!(domain.application(&instance, &client_id).await.is_ok());
    let removed = browser
        .post_form(&remove, form(&[("csrf", &csrf), ("confirm", "yes")]))
        .await;
    assert_eq!(removed.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&removed), "/console/applications");
    assert!(domain.application(&instance, &client_id).await.is_err());
    let list = browser
        .get("/console/applications")
        .await
        .text()
        .await
        .unwrap();
    assert!(!list.contains(&client_id), "{list}");
    assert_eq!(browser.get(&app_path).await.status(), StatusCode::NOT_FOUND);
    server.stop().await.unwrap();
}

/// An application whose logout endpoint refused a delivery: its page shows the delivery
/// health row (one failed in the last hour and in a row) and the delivery, linked to its page.
async fn an_applications_page_shows_its_delivery_health_and_recent_deliveries(h: Harness) {
    let mut receiver = Receiver::start(&[400]).await;
    let (server, client_id, _alice, sid) = signed_in_to(&h, &receiver, "Notes", "alice").await;
    let domain = server.domain();
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    domain
        .terminate_session(
            &admin.instance_id,
            &sid,
            domain::TerminationReason::Admin,
            "http://localhost:8080",
            &admin.token_id,
        )
        .await
        .unwrap();
    receiver.next().await;
    wait_for_stage(&server, &admin.instance_id, &sid, DeliveryStage::Failed).await;

    let mut browser = Browser::new(&server);
    signed_in(&mut browser, TOKEN).await;
    let html = browser
        .get(&format!("/console/applications/{client_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("<h2>Delivery health</h2>"), "{html}");
    assert!(
        html.contains(
            "<tr><th scope=\"row\">Notes</th><td>0</td><td>1</td><td>0</td><td>1</td><td>1</td>"
        ),
        "{html}"
    );
    assert!(
        html.contains(&format!(
            "<a href=\"/console/deliveries/{sid}/{client_id}\">{sid}</a>"
        )),
        "{html}"
    );
    assert!(html.contains("<td>failed</td><td>1</td>"), "{html}");
    assert!(
        html.contains(&format!(
            "href=\"/console/deliveries?client_id={client_id}\""
        )),
        "{html}"
    );
    server.stop().await.unwrap();
}

/// Types `text` into the input with id `id`.
async fn type_into(browser: &HeadlessBrowser, id: &str, text: &str) {
    let input = browser.find(Locator::Id(id)).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(text).await.unwrap();
}

/// Clicks the submit button whose text is `label`.
async fn click_button(browser: &HeadlessBrowser, label: &str) {
    browser
        .find(Locator::XPath(&format!(
            "//button[@type='submit' and normalize-space()='{label}']"
        )))
        .await
        .unwrap_or_else(|_| panic!("no {label} button"))
        .click()
        .await
        .unwrap();
}

/// Takes the page's screenshot as `name` and checks it loaded nothing from another origin;
/// returns a description of the page for assertion messages.
async fn looked_at(browser: &HeadlessBrowser, base: &str, name: &str) -> String {
    let screenshot = browser.screenshot(name).await;
    let what = format!("{name} (screenshot: {})", screenshot.display());
    let foreign: Vec<String> = browser
        .resource_urls()
        .await
        .into_iter()
        .filter(|url| !url.starts_with(&format!("{base}/")))
        .collect();
    assert!(
        foreign.is_empty(),
        "{what} loaded from elsewhere: {foreign:?}"
    );
    what
}

/// The text of the page's `<main>`.
async fn main_text(browser: &HeadlessBrowser) -> String {
    let main = browser.find(Locator::Css("main")).await.unwrap();
    main.text().await.unwrap()
}

/// The whole story in a real browser, as an admin lives it: sign in with the token, add a
/// user and an application through their forms (the secret shown once), the user signs in to
/// the application on the real sign-in page, the admin ends that session from the console,
/// the application's logout endpoint receives the logout token, and the delivery shows as
/// sent. Every page is screenshot (under the build's temporary directory) and loads nothing
/// from another origin.
#[tokio::test]
async fn an_admin_ends_a_users_session_from_the_console_and_the_application_is_told() {
    let Some(browser) = HeadlessBrowser::start().await else {
        return;
    };
    let h = eventstore::testing::sqlite().await;
    let mut receiver = Receiver::start(&[]).await;
    let applications = receiver.uri.trim_end_matches("/logout/app").to_owned();
    let mut config = config(&h);
    config.features.back_channel_logout = true;
    let server = RunningServer::start(config).await.unwrap();
    let base = format!("http://{}", server.local_addr);

    browser
        .goto(&format!("{base}/console/sign-in"))
        .await
        .unwrap();
    looked_at(&browser, &base, "console-sign-in").await;
    type_into(&browser, "token", TOKEN).await;
    browser.press(Key::Enter).await;
    wait_for_url(&browser, &format!("{base}/console")).await;
    looked_at(&browser, &base, "console-overview").await;

    // A user, through the Users page's form.
    browser
        .goto(&format!("{base}/console/users"))
        .await
        .unwrap();
    type_into(&browser, "new-username", "alice").await;
    type_into(&browser, "new-password", "correct horse battery").await;
    click_button(&browser, "Add user").await;
    for _ in 0..200 {
        if browser.current_url().await.unwrap().path() != "/console/users" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let user_page = browser.current_url().await.unwrap().to_string();
    let what = looked_at(&browser, &base, "console-user").await;
    assert!(main_text(&browser).await.contains("alice"), "{what}");
    browser
        .goto(&format!("{base}/console/users"))
        .await
        .unwrap();
    looked_at(&browser, &base, "console-users").await;

    // An application, through the Applications page's form; its secret is shown this once.
    browser
        .goto(&format!("{base}/console/applications"))
        .await
        .unwrap();
    type_into(&browser, "name", "Notes").await;
    type_into(
        &browser,
        "redirect_uris",
        &format!("{applications}/callback"),
    )
    .await;
    type_into(&browser, "back_channel_logout_uri", &receiver.uri).await;
    click_button(&browser, "Create application").await;
    let what = looked_at(&browser, &base, "console-client-secret").await;
    let codes = browser.find_all(Locator::Css("dd code")).await.unwrap();
    assert_eq!(codes.len(), 2, "{what}: the client id and secret");
    let client_id = codes[0].text().await.unwrap();
    let secret = codes[1].text().await.unwrap();
    browser
        .find(Locator::LinkText("Continue to the application"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_url(
        &browser,
        &format!("{base}/console/applications/{client_id}"),
    )
    .await;
    let what = looked_at(&browser, &base, "console-application").await;
    assert!(!main_text(&browser).await.contains(&secret), "{what}");

    // alice signs in to Notes on the real sign-in page; Notes redeems its code.
    let callback = format!("{applications}/callback");
    browser
        .goto(&format!(
            "{base}/oauth/v2/authorize?{}",
            form(&[
                ("response_type", "code"),
                ("client_id", &client_id),
                ("redirect_uri", &callback),
                ("scope", "openid"),
                ("code_challenge", common::CHALLENGE),
                ("code_challenge_method", "S256"),
            ])
        ))
        .await
        .unwrap();
    type_into(&browser, "login", "alice").await;
    type_into(&browser, "password", "correct horse battery").await;
    browser.press(Key::Enter).await;
    for _ in 0..200 {
        if browser
            .current_url()
            .await
            .unwrap()
            .as_str()
            .starts_with(&callback)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let landed = browser.current_url().await.unwrap();
    let code = landed
        .query_pairs()
        .find(|(name, _)| name == "code")
        .unwrap_or_else(|| panic!("no code at {landed}"))
        .1
        .into_owned();
    let tokens = reqwest::Client::new()
        .post(format!("{base}/oauth/v2/token"))
        .basic_auth(&client_id, Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &callback),
            ("code_verifier", VERIFIER),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(tokens.status(), StatusCode::OK);

    // The admin ends alice's session on her page.
    browser.goto(&user_page).await.unwrap();
    let what = looked_at(&browser, &base, "console-user-signed-in").await;
    assert!(main_text(&browser).await.contains("Notes"), "{what}");
    // The session's own form (the header's "Sign out" ends the console session instead).
    let end = browser
        .find(Locator::Css(
            "form[action$='/sign-out'][action*='/sessions/'] button",
        ))
        .await
        .unwrap();
    // The sessions table scrolls sideways in a narrow window: bring the button into view,
    // as a person would, before clicking it.
    browser
        .execute(
            "arguments[0].scrollIntoView({block: 'center', inline: 'center'});",
            vec![serde_json::to_value(&end).unwrap()],
        )
        .await
        .unwrap();
    end.click().await.unwrap();
    let logout_token = receiver.next().await;
    assert_eq!(logout_token.split('.').count(), 3, "a signed logout token");

    // The delivery shows as sent, on the deliveries page and on the application's.
    let mut sent = String::new();
    for _ in 0..100 {
        browser
            .goto(&format!("{base}/console/deliveries?state=sent"))
            .await
            .unwrap();
        sent = main_text(&browser).await;
        if sent.contains("Notes") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let what = looked_at(&browser, &base, "console-deliveries").await;
    assert!(sent.contains("Notes"), "{what}: {sent}");
    browser
        .goto(&format!("{base}/console/applications/{client_id}"))
        .await
        .unwrap();
    looked_at(&browser, &base, "console-application-delivered").await;
    browser.goto(&format!("{base}/console")).await.unwrap();
    let what = looked_at(&browser, &base, "console-overview-delivered").await;
    let chart = browser.find(Locator::Css("svg[role=img]")).await;
    assert!(chart.is_ok(), "{what}: the delivery chart");
    for page in ["applications", "sessions", "instance"] {
        browser
            .goto(&format!("{base}/console/{page}"))
            .await
            .unwrap();
        looked_at(&browser, &base, &format!("console-{page}")).await;
    }

    // On a phone's 360 px: every page fits the width (wide tables scroll inside their box).
    browser.set_window_size(360, 780).await.unwrap();
    let width = browser
        .execute("return window.innerWidth;", vec![])
        .await
        .unwrap();
    assert!(
        width.as_u64().unwrap() <= 400,
        "the window is narrow: {width}"
    );
    for page in [
        "",
        "/users",
        "/applications",
        "/sessions",
        "/deliveries",
        "/instance",
    ] {
        browser
            .goto(&format!("{base}/console{page}"))
            .await
            .unwrap();
        let name = format!("console{}-360px", page.replace('/', "-"));
        let what = looked_at(&browser, &base, &name).await;
        let overflow = browser
            .execute(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(overflow, json!(0), "{what}: wider than the window");
    }

    browser.close().await;
    server.stop().await.unwrap();
}

/// A server with back-channel logout on, an application `name` whose logout URI is
/// `receiver`'s, and `username` signed in to it in a browser (a code exchanged for tokens, so
/// the session is registered for a back-channel delivery); returns the server, the
/// application's client_id, the user's id and the session's id.
async fn signed_in_to(
    h: &Harness,
    receiver: &Receiver,
    name: &str,
    username: &str,
) -> (RunningServer, String, String, String) {
    let mut config = config(h);
    config.features.back_channel_logout = true;
    let server = RunningServer::start(config).await.unwrap();
    let domain = server.domain();
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    let account = domain
        .add_user(
            &admin,
            NewUser {
                username: username.into(),
                profile: Profile::default(),
                password: "correct horse battery".into(),
            },
        )
        .await
        .unwrap();
    let settings = oidc_config(json!({
        "name": name,
        "redirect_uris": [CALLBACK],
        "back_channel_logout_uri": receiver.uri,
    }));
    let (app, secret) = domain.add_application(&admin, settings).await.unwrap();
    let client_id = app.client_id;
    let mut user = Browser::new(&server);
    let redirect = user
        .sign_in(
            &authorize_path(&client_id),
            username,
            "correct horse battery",
        )
        .await;
    let code = common::query_of(&redirect)["code"].clone();
    let exchanged = user
        .http
        .post(format!("{}/oauth/v2/token", user.base))
        .basic_auth(&client_id, secret.as_deref())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(exchanged.status(), StatusCode::OK);
    let sessions = domain
        .sessions_of_user(&admin.instance_id, &account.user_id, false)
        .await
        .unwrap();
    let sid = sessions[0].session_id.clone();
    (server, client_id, account.user_id, sid)
}

/// [`signed_in_to`] for dave.
async fn dave_signed_in_to(
    h: &Harness,
    receiver: &Receiver,
    name: &str,
) -> (RunningServer, String, String, String) {
    signed_in_to(h, receiver, name, "dave").await
}

/// The Sessions page lists every live session newest first with its user (linked to the
/// user's page) and its applications by name; it filters by login name and by client_id
/// (labelled fields of a GET form). "End" needs the CSRF token (403 and the session lives
/// without it); with it the session ends, the application gets its back-channel logout token,
/// and the browser comes back (303) to the same filtered list, which no longer has it.
async fn the_sessions_page_lists_filters_and_ends_sessions(h: Harness) {
    let mut receiver = Receiver::start(&[]).await;
    let (server, client_id, dave_id, sid) = dave_signed_in_to(&h, &receiver, "Notes").await;
    let (instance, carol_id, carols) = carol_with_sessions(&server).await;
    let mut browser = Browser::new(&server);
    let csrf = signed_in(&mut browser, TOKEN).await;

    let list = browser.get("/console/sessions").await;
    assert_eq!(list.status(), StatusCode::OK);
    let html = list.text().await.unwrap();
    assert!(html.contains("<h1>Sessions</h1>"), "{html}");
    assert!(
        html.contains("href=\"/console/sessions\" aria-current=\"page\""),
        "{html}"
    );
    assert!(html.contains("<label for=\"user\">") && html.contains("<label for=\"client_id\">"));
    assert!(
        html.contains(&format!("<a href=\"/console/users/{dave_id}\">dave</a>")),
        "{html}"
    );
    assert!(
        html.contains(&format!("<a href=\"/console/users/{carol_id}\">carol</a>")),
        "{html}"
    );
    assert!(html.contains("<td>Notes</td>"), "{html}");
    // Newest first: carol signed in after dave.
    let position = |needle: &str| html.find(needle).unwrap_or_else(|| panic!("{needle}"));
    assert!(position(&carols[1]) < position(&sid), "{html}");
    assert!(
        !html.contains("style=") && !html.contains("<script"),
        "{html}"
    );

    let carol_only = browser
        .get("/console/sessions?user=Carol")
        .await
        .text()
        .await
        .unwrap();
    assert!(carol_only.contains(&carols[0]) && carol_only.contains(&carols[1]));
    assert!(!carol_only.contains(&sid), "{carol_only}");
    assert!(carol_only.contains("value=\"Carol\""), "{carol_only}");
    let notes_only = browser
        .get(&format!("/console/sessions?client_id={client_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(notes_only.contains(&sid), "{notes_only}");
    assert!(!notes_only.contains(&carols[0]), "{notes_only}");
    let nobody = browser
        .get("/console/sessions?user=nobody")
        .await
        .text()
        .await
        .unwrap();
    assert!(nobody.contains("No live sessions match."), "{nobody}");

    let end = format!("/console/sessions/{sid}/end");
    assert!(
        notes_only.contains(&format!("action=\"{end}\"")),
        "{notes_only}"
    );
    let refused = browser
        .post_form(&end, form(&[("client_id", &client_id)]))
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let refused = browser
        .post_form(&end, form(&[("csrf", &"0".repeat(64))]))
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(!receiver.more().await, "nothing ended without the token");
    assert_eq!(
        ended(&server, &instance, &dave_id).await,
        [(sid.clone(), false)]
    );

    let done = browser
        .post_form(&end, form(&[("csrf", &csrf), ("client_id", &client_id)]))
        .await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&done),
        format!("/console/sessions?client_id={client_id}")
    );
    assert_eq!(
        ended(&server, &instance, &dave_id).await,
        [(sid.clone(), true)]
    );
    let token = receiver.next().await;
    assert!(!token.is_empty());
    wait_for_stage(&server, &instance, &sid, DeliveryStage::Sent).await;
    let html = browser.get(&location(&done)).await.text().await.unwrap();
    assert!(!html.contains(&sid), "{html}");
    assert!(html.contains("No live sessions match."), "{html}");
    let unknown = browser
        .post_form(
            "/console/sessions/no-such-session/end",
            form(&[("csrf", &csrf)]),
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    server.stop().await.unwrap();
}

/// The overview counts the sign-ins and session ends of the last hour and day, and draws each
/// back-channel application's last 24 hours as an accessible `<svg role="img">` titled in
/// words with the application's name (escaped), beside the health table.
async fn the_overview_counts_sign_ins_and_session_ends_and_charts_deliveries(h: Harness) {
    let mut receiver = Receiver::start(&[]).await;
    let (server, _client_id, _dave_id, sid) =
        dave_signed_in_to(&h, &receiver, "Notes & <Tasks>").await;
    let (instance, _carol_id, carols) = carol_with_sessions(&server).await;
    let domain = server.domain();
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    for ended in [&sid, &carols[0]] {
        domain
            .terminate_session(
                &instance,
                ended,
                domain::TerminationReason::Admin,
                "http://localhost:8080",
                &admin.token_id,
            )
            .await
            .unwrap();
    }
    receiver.next().await;
    wait_for_stage(&server, &instance, &sid, DeliveryStage::Sent).await;
    let mut browser = Browser::new(&server);
    signed_in(&mut browser, TOKEN).await;

    let html = browser.get("/console").await.text().await.unwrap();
    let figure = |id: &str, value: u64| format!("<dd aria-labelledby=\"{id}\">{value}</dd>");
    for (id, value) in [
        ("live-sessions", 1),
        ("sign-ins-hour", 3),
        ("sign-ins-day", 3),
        ("ends-hour", 2),
        ("ends-day", 2),
        ("deliveries-sent", 1),
    ] {
        assert!(
            html.contains(&figure(id, value)),
            "{id} = {value} in {html}"
        );
    }
    assert!(html.contains("Sign-ins, last hour") && html.contains("Session ends, last day"));
    assert!(
        html.contains("<svg role=\"img\" aria-labelledby=\"chart-0-title\" class=\"chart\""),
        "{html}"
    );
    assert!(
        html.contains(
            "<title id=\"chart-0-title\">Notes &amp; &lt;Tasks&gt;, back-channel logout in the \
             last 24 hours: 1 delivery sent, 0 failed attempts; median latency"
        ),
        "{html}"
    );
    assert!(
        html.contains("<th scope=\"row\">Notes &amp; &lt;Tasks&gt;</th>"),
        "the health table stays: {html}"
    );
    assert!(!html.contains("style="), "{html}");
    server.stop().await.unwrap();
}

/// Redelivering many: an application's deliveries failed since a time (from the deliveries
/// list filtered by it), and a session's every failed or waiting one (from a delivery's page).
/// Without the CSRF token nothing is sent; an invalid time gets the form again with 422, the
/// field named and what was typed kept; a sent delivery is left as it was, with the reason.
async fn many_deliveries_are_redelivered_from_the_console(h: Harness) {
    let mut receiver = Receiver::start(&[400]).await;
    let (server, client_id, _dave, sid) = dave_signed_in_to(&h, &receiver, "Notes").await;
    let domain = server.domain();
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    domain
        .terminate_session(
            &admin.instance_id,
            &sid,
            domain::TerminationReason::Admin,
            "http://localhost:8080",
            &admin.token_id,
        )
        .await
        .unwrap();
    receiver.next().await;
    wait_for_stage(&server, &admin.instance_id, &sid, DeliveryStage::Failed).await;

    let mut browser = Browser::new(&server);
    let csrf = signed_in(&mut browser, TOKEN).await;
    let list = browser
        .get(&format!("/console/deliveries?client_id={client_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        list.contains("action=\"/console/deliveries/redeliver-failed\""),
        "{list}"
    );
    assert!(list.contains("<label for=\"failed-since\">"), "{list}");

    let path = "/console/deliveries/redeliver-failed";
    let hour_ago = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let refused = browser
        .post_form(
            path,
            form(&[("client_id", &client_id), ("failed_since", &hour_ago)]),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let invalid = browser
        .post_form(
            path,
            form(&[
                ("csrf", &csrf),
                ("client_id", &client_id),
                ("failed_since", "yesterday"),
            ]),
        )
        .await;
    assert_eq!(invalid.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = invalid.text().await.unwrap();
    assert!(html.contains("id=\"failed-since-error\""), "{html}");
    assert!(html.contains("value=\"yesterday\""), "{html}");
    assert!(!receiver.more().await, "nothing sent for refused forms");

    let done = browser
        .post_form(
            path,
            form(&[
                ("csrf", &csrf),
                ("client_id", &client_id),
                ("failed_since", &hour_ago),
            ]),
        )
        .await;
    assert_eq!(done.status(), StatusCode::OK);
    let html = done.text().await.unwrap();
    assert!(html.contains("1 queued again"), "{html}");
    receiver.next().await;
    wait_for_stage(&server, &admin.instance_id, &sid, DeliveryStage::Sent).await;

    // The session's every failed or waiting delivery: the sent one is left, with the reason.
    let detail = browser
        .get(&format!("/console/deliveries/{sid}/{client_id}"))
        .await
        .text()
        .await
        .unwrap();
    let all = format!("/console/deliveries/{sid}/redeliver-all");
    assert!(detail.contains(&format!("action=\"{all}\"")), "{detail}");
    let again = browser.post_form(&all, form(&[("csrf", &csrf)])).await;
    assert_eq!(again.status(), StatusCode::OK);
    let html = again.text().await.unwrap();
    assert!(html.contains("0 queued again"), "{html}");
    assert!(html.contains("1 left as they were"), "{html}");
    let unknown = browser
        .post_form(
            "/console/deliveries/no-such-session/redeliver-all",
            form(&[("csrf", &csrf)]),
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    server.stop().await.unwrap();
}

/// The Users page's search: login names or e-mail addresses that start with what was typed,
/// case-insensitive; `_` and `%` are taken literally; what was typed stays in the field.
async fn users_are_found_by_the_start_of_their_login_name_or_e_mail(h: Harness) {
    let server = start(&h).await;
    let domain = server.domain();
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    for (username, email) in [
        ("alice", Some("alice@example.com")),
        ("bob", Some("Alison.Bob@example.com")),
        ("carol", None),
        ("al_x", None),
    ] {
        let profile = Profile {
            email: email.map(str::to_owned),
            ..Profile::default()
        };
        domain
            .add_user(
                &admin,
                NewUser {
                    username: username.into(),
                    profile,
                    password: "correct horse battery".into(),
                },
            )
            .await
            .unwrap();
    }
    let mut browser = Browser::new(&server);
    signed_in(&mut browser, TOKEN).await;
    let listed = |html: &str| -> Vec<String> {
        ["alice", "bob", "carol", "al_x"]
            .into_iter()
            .filter(|name| html.contains(&format!(">{name}</a>")))
            .map(str::to_owned)
            .collect()
    };
    for (typed, expected) in [
        ("ALI", vec!["alice", "bob"]),
        ("al_", vec!["al_x"]),
        ("c", vec!["carol"]),
        ("%", vec![]),
        ("", vec!["alice", "bob", "carol", "al_x"]),
    ] {
        let page = browser
            .get(&format!("/console/users?{}", form(&[("find", typed)])))
            .await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        assert_eq!(listed(&html), expected, "find {typed:?}");
        assert!(html.contains("<label for=\"find\">"), "{html}");
        if !typed.is_empty() {
            assert!(html.contains(&format!("value=\"{typed}\"")), "{html}");
        }
    }
    server.stop().await.unwrap();
}
