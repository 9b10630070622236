//! The pages people see, over HTTP as a browser meets them: the sign-out confirmation (the
//! instance by its display name, the applications it signs out of, a way to stay signed in),
//! the headers browsers rely on, and which instance a request on an unknown host reaches.

mod common;

use common::{Browser, TOKEN, config, form, hidden_field, location, oidc_config, query_of};
use domain::{NewUser, Profile};
use eventstore::testing::Harness;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use server::{Config, RunningServer};
const CALLBACK: &str = "https://app.example.com/callback";
const SIGNED_OUT: &str = "https://app.example.com/signed-out";
const PASSWORD: &str = "correct horse battery";

/// Starts a server with alice and one application per name; returns the client_ids.
async fn arrange(config: Config, apps: &[&str]) -> (RunningServer, Vec<String>) {
    let server = RunningServer::start(config).await.unwrap();
    let domain = server.domain();
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    let alice = NewUser {
        username: "alice".into(),
        profile: Profile::default(),
        password: PASSWORD.into(),
    };
    domain.add_user(&admin, alice).await.unwrap();
    let mut client_ids = Vec::new();
    for name in apps {
        let app_config = oidc_config(json!({
            "name": name,
            "client_type": "public",
            "auth_method": "none",
            "redirect_uris": [CALLBACK],
            "post_logout_redirect_uris": [SIGNED_OUT],
            "grant_types": ["authorization_code"],
        }));
        let (app, _) = domain.add_application(&admin, app_config).await.unwrap();
        client_ids.push(app.client_id);
    }
    (server, client_ids)
}

fn authorize_url(client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", CALLBACK),
        ("scope", "openid"),
        (
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        ),
        ("code_challenge_method", "S256"),
    ];
    params.extend_from_slice(extra);
    format!("/oauth/v2/authorize?{}", form(&params))
}

/// Whether the browser's session is live: `prompt=none` yields a code, not `login_required`.
async fn signed_in(browser: &mut Browser, client_id: &str) -> bool {
    let response = browser
        .get(&authorize_url(client_id, &[("prompt", "none")]))
        .await;
    query_of(&location(&response)).contains_key("code")
}

/// The headers every HTML page carries.
fn assert_page_headers(headers: &HeaderMap, https: bool, what: &str) {
    let header = |name: &str| {
        headers
            .get(name)
            .map(|value| value.to_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("{what}: no {name} header"))
    };
    let csp = header("content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(csp.contains("script-src 'self'"), "{what}: {csp}");
    assert!(csp.contains("default-src 'none'"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert_eq!(header("x-frame-options"), "DENY", "{what}");
    assert_eq!(header("referrer-policy"), "no-referrer", "{what}");
    assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(header("cache-control"), "no-store", "{what}");
    assert_eq!(
        headers.contains_key("strict-transport-security"),
        https,
        "{what}: HSTS only for an https issuer"
    );
}

/// Nothing inline a strict CSP would block: no `<script>` or `<style>` element bodies, no
/// `style=` or `on…=` attributes.
fn assert_no_inline_code(html: &str, what: &str) {
    for forbidden in ["<script>", "<style", " style=", " onload=", " onclick="] {
        assert!(!html.contains(forbidden), "{what} has {forbidden}: {html}");
    }
}

/// The confirmation page for an end-session request without a hint.
async fn ask(browser: &mut Browser, request: &str) -> String {
    let response = browser
        .get(&format!("/oidc/v1/end_session?{request}"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

/// Answers a confirmation page with one of its buttons.
async fn answer(browser: &mut Browser, page: &str, answer: &str) -> reqwest::Response {
    let body = form(&[
        ("csrf", &hidden_field(page, "csrf")),
        ("request", &hidden_field(page, "request")),
        ("answer", answer),
    ]);
    browser
        .post_form("/oidc/v1/end_session/confirm", body)
        .await
}

eventstore::on_both_backends!(
    the_sign_out_page_names_the_instance_and_its_applications_and_can_be_cancelled,
    every_html_page_carries_the_security_headers,
    a_host_that_matches_no_instance_reaches_none_once_there_are_several,
);

async fn the_sign_out_page_names_the_instance_and_its_applications_and_can_be_cancelled(
    h: Harness,
) {
    let mut named = config(&h);
    named.server.display_name = Some("Example <ID>".into());
    let (server, apps) = arrange(named, &["Mail", "Calendar", "Unused"]).await;
    let mut browser = Browser::new(&server);
    browser
        .sign_in(&authorize_url(&apps[0], &[]), "alice", PASSWORD)
        .await;
    assert!(signed_in(&mut browser, &apps[1]).await, "single sign-on");

    // Without an id_token_hint the person is asked, and may stay signed in.
    let request = form(&[
        ("client_id", &apps[0]),
        ("post_logout_redirect_uri", SIGNED_OUT),
        ("state", "st"),
    ]);
    // The list comes from a read model; on PostgreSQL another test's open transaction can
    // hold its horizon back for a moment.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let page = loop {
        let page = ask(&mut browser, &request).await;
        if page.contains("<li>Calendar</li>") || tokio::time::Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(page.contains("Sign out of Example &lt;ID&gt;?"), "{page}");
    assert!(!page.contains("default"), "never the internal name: {page}");
    let listed = page
        .find("<li>Calendar</li>")
        .zip(page.find("<li>Mail</li>"));
    assert!(listed.is_some(), "both applications, sorted: {page}");
    assert!(!page.contains("Unused"), "{page}");
    // Keyboard use: two real buttons in one form, the first focused.
    assert!(
        page.contains("name=\"answer\" value=\"sign_out\" autofocus")
            && page.contains("name=\"answer\" value=\"stay_signed_in\""),
        "{page}"
    );
    assert_no_inline_code(&page, "the sign-out page");

    let stayed = answer(&mut browser, &page, "stay_signed_in").await;
    assert_eq!(stayed.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&stayed), format!("{SIGNED_OUT}?state=st"));
    assert!(
        signed_in(&mut browser, &apps[0]).await,
        "staying signed in leaves the session untouched"
    );

    // A confirmation form whose CSRF value does not match is refused and changes nothing.
    let page = ask(&mut browser, &request).await;
    let forged = browser
        .post_form(
            "/oidc/v1/end_session/confirm",
            form(&[
                ("csrf", "forged"),
                ("request", &hidden_field(&page, "request")),
                ("answer", "sign_out"),
            ]),
        )
        .await;
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    assert!(signed_in(&mut browser, &apps[0]).await);

    let page = ask(&mut browser, &request).await;
    let signed_out = answer(&mut browser, &page, "sign_out").await;
    assert_eq!(location(&signed_out), format!("{SIGNED_OUT}?state=st"));
    assert!(!signed_in(&mut browser, &apps[0]).await);

    // Staying signed in without a post-logout URI says so on a page.
    browser
        .sign_in(&authorize_url(&apps[0], &[]), "alice", PASSWORD)
        .await;
    let response = browser
        .get(&format!(
            "/oidc/v1/end_session?{}",
            form(&[("client_id", &apps[0])])
        ))
        .await;
    let page = response.text().await.unwrap();
    let stayed = answer(&mut browser, &page, "stay_signed_in").await;
    assert_eq!(stayed.status(), StatusCode::OK);
    assert!(stayed.text().await.unwrap().contains("still signed in"));
    assert!(signed_in(&mut browser, &apps[0]).await);
    server.stop().await.unwrap();

    // Unset, the display name is the issuer's host.
    let server = RunningServer::start(config(&h)).await.unwrap();
    let mut browser = Browser::new(&server);
    browser
        .sign_in(&authorize_url(&apps[1], &[]), "alice", PASSWORD)
        .await;
    let page = ask(&mut browser, &request).await;
    assert!(page.contains("Sign out of localhost:8080?"), "{page}");
    server.stop().await.unwrap();
}

async fn every_html_page_carries_the_security_headers(h: Harness) {
    let (server, apps) = arrange(config(&h), &["Mail"]).await;
    let mut browser = Browser::new(&server);
    let to_login = browser.get(&authorize_url(&apps[0], &[])).await;
    let login = browser.get(&location(&to_login)).await;
    assert_page_headers(login.headers(), false, "the sign-in page");
    let html = login.text().await.unwrap();
    assert_no_inline_code(&html, "the sign-in page");
    assert!(html.contains("<link rel=\"stylesheet\" href=\"/assets/page.css\">"));

    let error = browser
        .get("/oauth/v2/authorize?client_id=nobody&response_type=code")
        .await;
    assert_page_headers(error.headers(), false, "an error page");

    let callback = browser
        .sign_in(&authorize_url(&apps[0], &[]), "alice", PASSWORD)
        .await;
    assert!(callback.starts_with(CALLBACK));
    let form_post = browser
        .get(&authorize_url(&apps[0], &[("response_mode", "form_post")]))
        .await;
    assert_eq!(form_post.status(), StatusCode::OK);
    assert_page_headers(form_post.headers(), false, "the form_post page");
    let html = form_post.text().await.unwrap();
    assert_no_inline_code(&html, "the form_post page");
    assert!(
        html.contains("<script src=\"/assets/form-post.js\"></script>"),
        "{html}"
    );

    // The assets those pages load are served from this origin.
    for (path, media) in [
        ("/assets/page.css", "text/css"),
        ("/assets/form-post.js", "text/javascript"),
    ] {
        let asset = browser.get(path).await;
        assert_eq!(asset.status(), StatusCode::OK, "{path}");
        assert!(
            asset.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(media),
            "{path}"
        );
    }
    // JSON answers keep their own headers.
    let discovery = browser.get("/.well-known/openid-configuration").await;
    assert!(!discovery.headers().contains_key("content-security-policy"));
    server.stop().await.unwrap();

    // HSTS when the issuer is https.
    let mut config = config(&h);
    config.server.external_url = "https://id.example.com".into();
    let server = RunningServer::start(config).await.unwrap();
    let mut browser = Browser::new(&server);
    let to_login = browser.get(&authorize_url(&apps[0], &[])).await;
    let login = browser.get(&location(&to_login)).await;
    assert_page_headers(login.headers(), true, "the sign-in page over https");
    assert_eq!(
        login.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    server.stop().await.unwrap();
}

async fn a_host_that_matches_no_instance_reaches_none_once_there_are_several(h: Harness) {
    let (server, _) = arrange(config(&h), &[]).await;
    let http = reqwest::Client::new();
    let discovery = |host: &'static str| {
        let request = http
            .get(format!(
                "http://{}/.well-known/openid-configuration",
                server.local_addr
            ))
            .header("host", host);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    // One instance: an unknown host still reaches it (development on 127.0.0.1).
    let (status, doc) = discovery("unknown.example").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["issuer"], "http://localhost:8080");

    server
        .domain()
        // A second issuer on another host name of this machine (http only for loopback).
        .add_instance("second", "http://127.0.0.1:8080")
        .await
        .unwrap();
    let (status, doc) = discovery("127.0.0.1:8080").await;
    assert_eq!(
        (status, doc["issuer"].as_str()),
        (StatusCode::OK, Some("http://127.0.0.1:8080"))
    );
    let (status, doc) = discovery("localhost:8080").await;
    assert_eq!(
        (status, doc["issuer"].as_str()),
        (StatusCode::OK, Some("http://localhost:8080"))
    );
    let (status, _) = discovery("unknown.example").await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "never silently the default instance"
    );
    server.stop().await.unwrap();
}
