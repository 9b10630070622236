//! `/metrics` against the real server: what a sign-in, a code exchange and a session's end
//! leave in the exposition, read back through a parser rather than by matching lines.

mod common;

use common::exposition::{Exposition, scrape};
use common::{
    Browser, CALLBACK, TOKEN, VERIFIER, authorize_path, config, form, hidden_field, location,
    oidc_config, query_of,
};
use domain::{NewUser, Profile};
use eventstore::testing::Harness;
use reqwest::StatusCode;
use serde_json::Value;
use server::RunningServer;

eventstore::on_both_backends!(a_sign_in_and_a_code_exchange_show_in_the_metrics);

/// A wrong password, a sign-in, a code exchange and an admin ending the session: each shows in
/// its series, HTTP requests under their route's template only.
async fn a_sign_in_and_a_code_exchange_show_in_the_metrics(h: Harness) {
    let server = RunningServer::start(config(&h)).await.unwrap();
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
    let (app, secret) = domain
        .add_application(
            &admin,
            oidc_config(serde_json::json!({ "name": "App", "redirect_uris": [CALLBACK] })),
        )
        .await
        .unwrap();
    let mut browser = Browser::new(&server);
    let before = scrape(&browser.base).await;
    // The fixed label sets are there before anything happened.
    assert_eq!(
        before.value("portcullis_sign_ins_total", &[("outcome", "failed")]),
        Some(0.0)
    );
    assert_eq!(
        before.value(
            "portcullis_tokens_issued_total",
            &[("grant_type", "refresh_token")]
        ),
        Some(0.0)
    );
    assert_eq!(before.value("portcullis_sessions_live", &[]), Some(0.0));

    // One wrong password, then the right one.
    let login_page = location(&browser.get(&authorize_path(&app.client_id)).await);
    let page = browser.get(&login_page).await.text().await.unwrap();
    let wrong = browser
        .post_form(
            "/login",
            form(&[
                ("csrf", &hidden_field(&page, "csrf")),
                ("return_to", &hidden_field(&page, "return_to")),
                ("login", "alice"),
                ("password", "not her password"),
            ]),
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let redirect = browser
        .sign_in(
            &authorize_path(&app.client_id),
            "alice",
            "correct horse battery",
        )
        .await;
    let code = query_of(&redirect)["code"].clone();
    let tokens = browser
        .http
        .post(format!("{}/oauth/v2/token", browser.base))
        .basic_auth(&app.client_id, secret.as_deref())
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
    assert_eq!(tokens.status(), StatusCode::OK);
    // A path no route matches, and an admin route with an id in it.
    let missing = browser.get("/no/such/path/4711").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let shown = browser
        .http
        .get(format!("{}/admin/v1/users/{}", browser.base, user.user_id))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(shown.status(), StatusCode::OK);

    let after = scrape(&browser.base).await;
    let token_route = [
        ("method", "POST"),
        ("route", "/oauth/v2/token"),
        ("status", "200"),
    ];
    assert_eq!(
        after.value("portcullis_http_requests_total", &token_route),
        Some(1.0)
    );
    assert_eq!(
        after.types["portcullis_http_request_duration_seconds"],
        "histogram"
    );
    assert_eq!(
        after.value(
            "portcullis_http_request_duration_seconds_count",
            &[("method", "POST"), ("route", "/oauth/v2/token")]
        ),
        Some(1.0)
    );
    assert_eq!(
        after.value(
            "portcullis_http_request_duration_seconds_bucket",
            &[
                ("method", "POST"),
                ("route", "/oauth/v2/token"),
                ("le", "+Inf")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        after.value(
            "portcullis_http_requests_total",
            &[("method", "POST"), ("route", "/login"), ("status", "401")]
        ),
        Some(1.0)
    );
    assert_eq!(
        after.value(
            "portcullis_http_requests_total",
            &[
                ("method", "GET"),
                ("route", "/admin/v1/users/{user_id}"),
                ("status", "200")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        after.value(
            "portcullis_http_requests_total",
            &[("method", "GET"), ("route", "unmatched"), ("status", "404")]
        ),
        Some(1.0)
    );
    assert_no_raw_paths(&after, &user.user_id);
    assert_eq!(
        after.value("portcullis_sign_ins_total", &[("outcome", "succeeded")]),
        Some(1.0)
    );
    assert_eq!(
        after.value("portcullis_sign_ins_total", &[("outcome", "failed")]),
        Some(1.0)
    );
    assert_eq!(
        after.value(
            "portcullis_tokens_issued_total",
            &[("grant_type", "authorization_code")]
        ),
        Some(1.0)
    );
    assert_eq!(
        after.value("portcullis_sessions_started_total", &[]),
        Some(1.0)
    );
    assert_eq!(after.value("portcullis_sessions_live", &[]), Some(1.0));

    // An admin ends the session: counted under its reason, and no longer live.
    let sessions: Value = browser
        .http
        .get(format!(
            "{}/admin/v1/users/{}/sessions",
            browser.base, user.user_id
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session_id = sessions["sessions"][0]["session_id"].as_str().unwrap();
    let ended = browser
        .http
        .delete(format!("{}/admin/v1/sessions/{session_id}", browser.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(ended.status().is_success(), "{}", ended.status());
    let ended = scrape(&browser.base).await;
    assert_eq!(
        ended.value("portcullis_sessions_ended_total", &[("reason", "admin")]),
        Some(1.0)
    );
    assert_eq!(
        ended.sum("portcullis_sessions_ended_total", &[]),
        1.0,
        "no other reason"
    );
    assert_eq!(ended.value("portcullis_sessions_live", &[]), Some(0.0));
    server.stop().await.unwrap();
}

/// No label carries a request's own path: ids and unknown paths stay out of the series.
fn assert_no_raw_paths(exposition: &Exposition, user_id: &str) {
    for sample in &exposition.samples {
        for value in sample.labels.values() {
            assert!(
                !value.contains(user_id) && !value.contains("4711"),
                "{sample:?}"
            );
        }
    }
}
