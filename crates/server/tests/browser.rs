//! Pages in a real headless browser (Debian's chromium, through chromedriver): what a person
//! sees, what they can do with the keyboard alone, and that a page loads nothing from another
//! origin. The sign-in is always the real sign-in page, typed into.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::{get, post};
use common::browser::HeadlessBrowser;
use common::{CHALLENGE, TOKEN, VERIFIER, config, form, oidc_config, query_of};
use domain::{NewUser, Profile};
use fantoccini::Locator;
use fantoccini::key::Key;
use serde_json::{Value, json};
use server::RunningServer;

const PASSWORD: &str = "correct horse battery";

/// The applications' side on one local port (an origin of its own): the redirect and
/// post-logout pages, and back-channel logout endpoints, one that acknowledges and one that
/// refuses.
async fn start_applications() -> String {
    let page = |title: &'static str| async move {
        axum::response::Html(format!(
            "<!doctype html><html lang=\"en\"><title>{title}</title><h1>{title}</h1></html>"
        ))
    };
    let app = axum::Router::new()
        .route("/callback", get(move || page("Signed in")))
        .route("/signed-out", get(move || page("Back at the application")))
        .route("/logout/told", post(|| async { StatusCode::OK }))
        // A refusal is recorded as failed at once, so the receipt is the same on a slow
        // machine as on a fast one; the person reads it as "could not be reached in time"
        // either way (a dead endpoint's deadline is tested over HTTP in back_channel.rs).
        .route(
            "/logout/refuses",
            post(|| async { StatusCode::BAD_REQUEST }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

struct App {
    client_id: String,
    secret: String,
}

/// A server that waits for the back-channel fan-out, with alice and one confidential
/// application per (name, logout endpoint) on the applications' origin.
async fn arrange(
    h: &eventstore::testing::Harness,
    applications: &str,
    apps: &[(&str, &str)],
) -> (RunningServer, Vec<App>) {
    let mut config = config(h);
    config.features.back_channel_logout = true;
    // Long enough never to be reached here: both deliveries settle at once.
    config.back_channel.end_session_wait_ms = 10_000;
    let server = RunningServer::start(config).await.unwrap();
    let domain = server.domain();
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    let alice = NewUser {
        username: "alice".into(),
        profile: Profile::default(),
        password: PASSWORD.into(),
    };
    domain.add_user(&admin, alice).await.unwrap();
    let mut created = Vec::new();
    for (name, endpoint) in apps {
        let settings = oidc_config(json!({
            "name": name,
            "redirect_uris": [format!("{applications}/callback")],
            "post_logout_redirect_uris": [format!("{applications}/signed-out")],
            "back_channel_logout_uri": format!("{applications}/logout/{endpoint}"),
        }));
        let (app, secret) = domain.add_application(&admin, settings).await.unwrap();
        created.push(App {
            client_id: app.client_id,
            secret: secret.unwrap(),
        });
    }
    (server, created)
}

fn authorize_url(server: &str, applications: &str, client_id: &str) -> String {
    format!(
        "{server}/oauth/v2/authorize?{}",
        form(&[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", &format!("{applications}/callback")),
            ("scope", "openid"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ])
    )
}

/// Waits until the browser is on a page whose URL starts with `prefix`; returns the URL.
async fn wait_for_url(browser: &HeadlessBrowser, prefix: &str) -> String {
    for _ in 0..200 {
        let url = browser.current_url().await.unwrap().to_string();
        if url.starts_with(prefix) {
            return url;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = browser.current_url().await.unwrap();
    panic!("the browser never reached {prefix}; it is on {url}");
}

/// The application's half of the code flow, over HTTP: the code for its ID token.
async fn id_token(server: &str, applications: &str, app: &App, callback_url: &str) -> String {
    let code = query_of(callback_url)["code"].clone();
    let tokens: Value = reqwest::Client::new()
        .post(format!("{server}/oauth/v2/token"))
        .basic_auth(&app.client_id, Some(&app.secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &format!("{applications}/callback")),
            ("code_verifier", VERIFIER),
        ]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tokens["id_token"].as_str().expect("an ID token").to_owned()
}

/// The texts of the elements matching `selector`.
async fn texts(browser: &HeadlessBrowser, selector: &str) -> Vec<String> {
    let mut texts = Vec::new();
    for element in browser.find_all(Locator::Css(selector)).await.unwrap() {
        texts.push(element.text().await.unwrap());
    }
    texts
}

/// The scheme, host and port of a URL.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |index| index + 3);
    let end = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |index| after_scheme + index);
    &url[..end]
}

/// alice signs in on the real page in the browser, to two applications; one of them ends the
/// session with an id_token_hint and a post-logout URI. The receipt names the application that
/// was told and the one that was not (never by client_id), loads nothing from elsewhere, and
/// its Continue link is reached with Tab and followed with Enter to the post-logout URI with
/// the request's state.
#[tokio::test]
async fn the_logout_receipt_names_the_applications_and_continues_by_keyboard() {
    let Some(browser) = HeadlessBrowser::start().await else {
        return;
    };
    let h = eventstore::testing::sqlite().await;
    let applications = start_applications().await;
    let apps = [("Notes & Tasks", "told"), ("Calendar", "refuses")];
    let (server, apps) = arrange(&h, &applications, &apps).await;
    let base = format!("http://{}", server.local_addr);

    // Sign in on the real page, with the keyboard: type, then Enter submits the form.
    browser
        .goto(&authorize_url(&base, &applications, &apps[0].client_id))
        .await
        .unwrap();
    wait_for_url(&browser, &format!("{base}/login?")).await;
    browser
        .find(Locator::Id("login"))
        .await
        .unwrap()
        .send_keys("alice")
        .await
        .unwrap();
    browser
        .find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    browser.press(Key::Enter).await;
    let callback = wait_for_url(&browser, &format!("{applications}/callback?")).await;
    let hint = id_token(&base, &applications, &apps[0], &callback).await;
    // Single sign-on into the second application with the browser's session cookie.
    browser
        .goto(&authorize_url(&base, &applications, &apps[1].client_id))
        .await
        .unwrap();
    let callback = wait_for_url(&browser, &format!("{applications}/callback?")).await;
    id_token(&base, &applications, &apps[1], &callback).await;

    let signed_out = format!("{applications}/signed-out");
    let logout = format!(
        "{base}/oidc/v1/end_session?{}",
        form(&[
            ("id_token_hint", &hint),
            ("post_logout_redirect_uri", &signed_out),
            ("state", "af0ifjsldkj"),
        ])
    );
    browser.goto(&logout).await.unwrap();
    let screenshot = browser.screenshot("logout-receipt").await;
    let what = format!("the receipt (screenshot: {})", screenshot.display());

    assert_eq!(
        texts(&browser, "h1").await,
        ["You are signed out"],
        "{what}"
    );
    assert_eq!(
        texts(&browser, "#told li").await,
        ["Notes & Tasks"],
        "{what}"
    );
    assert_eq!(
        texts(&browser, "#unreachable li").await,
        ["Calendar"],
        "{what}"
    );
    let html = browser.source().await.unwrap();
    for app in &apps {
        assert!(!html.contains(&app.client_id), "{what} shows a client_id");
    }
    let lang = browser.find(Locator::Css("html")).await.unwrap();
    assert_eq!(lang.attr("lang").await.unwrap().as_deref(), Some("en"));

    // Everything the page loaded came from the server's own origin (and it did load its style
    // sheet, so the list is not empty by accident).
    let loaded = browser.resource_urls().await;
    assert!(
        loaded.contains(&format!("{base}/assets/page.css")),
        "{what} loaded {loaded:?}"
    );
    let foreign: Vec<&String> = loaded.iter().filter(|url| origin(url) != base).collect();
    assert!(
        foreign.is_empty(),
        "{what} loaded from elsewhere: {foreign:?}"
    );

    // Keyboard only: Tab reaches the link, which shows where the focus is, and Enter follows it.
    assert!(
        browser.tab_to("a.continue", 5).await,
        "{what}: Tab never reached the Continue link"
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
    browser.press(Key::Enter).await;
    let arrived = wait_for_url(&browser, &signed_out).await;
    assert_eq!(arrived, format!("{signed_out}?state=af0ifjsldkj"));

    browser.close().await;
    server.stop().await.unwrap();
}

/// A front-channel logout page on an origin of its own: hands over the query of every load.
async fn front_channel_page() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let (sender, loads) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/front-channel",
        get(
            move |axum::extract::RawQuery(query): axum::extract::RawQuery| {
                let sender = sender.clone();
                async move {
                    let _ = sender.send(query.unwrap_or_default());
                    ([("cache-control", "no-cache, no-store")], "signed out here")
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (origin, loads)
}

/// The next front-channel load's query, or a panic after 10 s.
async fn next_load(loads: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(Duration::from_secs(10), loads.recv())
        .await
        .expect("the browser loaded the front-channel logout URI")
        .unwrap()
}

/// Front-Channel Logout 1.0 in a real browser: alice signs in to two applications whose
/// front-channel logout pages live on two other origins, one requiring `iss` and `sid` (and
/// also told over the back channel), one with a registered query of its own. Ending the
/// session with a post-logout URI shows a page whose hidden frames load both pages (the one
/// that requires them with the issuer and alice's `sid`, the other with its own query kept
/// and nothing added), then moves on by itself to the post-logout URI with the state.
#[tokio::test]
async fn front_channel_logout_loads_each_applications_page_then_continues() {
    let Some(browser) = HeadlessBrowser::start().await else {
        return;
    };
    let h = eventstore::testing::sqlite().await;
    let applications = start_applications().await;
    let (notes_origin, mut notes_loads) = front_channel_page().await;
    let (calendar_origin, mut calendar_loads) = front_channel_page().await;
    let mut config = config(&h);
    config.features.back_channel_logout = true;
    let server = RunningServer::start(config).await.unwrap();
    let base = format!("http://{}", server.local_addr);
    let domain = server.domain();
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    let alice = NewUser {
        username: "alice".into(),
        profile: Profile::default(),
        password: PASSWORD.into(),
    };
    let alice = domain.add_user(&admin, alice).await.unwrap();
    let mut apps = Vec::new();
    for settings in [
        json!({
            "name": "Notes",
            "back_channel_logout_uri": format!("{applications}/logout/told"),
            "front_channel_logout_uri": format!("{notes_origin}/front-channel"),
            "front_channel_logout_session_required": true,
        }),
        json!({
            "name": "Calendar",
            "front_channel_logout_uri": format!("{calendar_origin}/front-channel?app=calendar"),
        }),
    ] {
        let mut settings = settings;
        settings["redirect_uris"] = json!([format!("{applications}/callback")]);
        settings["post_logout_redirect_uris"] = json!([format!("{applications}/signed-out")]);
        let (app, secret) = domain
            .add_application(&admin, oidc_config(settings))
            .await
            .unwrap();
        apps.push(App {
            client_id: app.client_id,
            secret: secret.unwrap(),
        });
    }

    browser
        .goto(&authorize_url(&base, &applications, &apps[0].client_id))
        .await
        .unwrap();
    wait_for_url(&browser, &format!("{base}/login?")).await;
    browser
        .find(Locator::Id("login"))
        .await
        .unwrap()
        .send_keys("alice")
        .await
        .unwrap();
    browser
        .find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    browser.press(Key::Enter).await;
    let callback = wait_for_url(&browser, &format!("{applications}/callback?")).await;
    let hint = id_token(&base, &applications, &apps[0], &callback).await;
    browser
        .goto(&authorize_url(&base, &applications, &apps[1].client_id))
        .await
        .unwrap();
    let callback = wait_for_url(&browser, &format!("{applications}/callback?")).await;
    id_token(&base, &applications, &apps[1], &callback).await;
    let sessions = domain
        .sessions_of_user(&admin.instance_id, &alice.user_id, false)
        .await
        .unwrap();
    assert_eq!(sessions.len(), 1);
    let sid = sessions[0].session_id.clone();

    let signed_out = format!("{applications}/signed-out");
    let logout = format!(
        "{base}/oidc/v1/end_session?{}",
        form(&[
            ("id_token_hint", &hint),
            ("post_logout_redirect_uri", &signed_out),
            ("state", "af0ifjsldkj"),
        ])
    );
    browser.goto(&logout).await.unwrap();
    let discovery: Value = reqwest::get(format!("{base}/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["frontchannel_logout_supported"], true);
    assert_eq!(discovery["frontchannel_logout_session_supported"], true);
    let issuer = discovery["issuer"].as_str().unwrap();
    let notes = next_load(&mut notes_loads).await;
    assert_eq!(
        notes,
        form(&[("iss", issuer), ("sid", &sid)]),
        "Notes requires iss and sid"
    );
    assert_eq!(next_load(&mut calendar_loads).await, "app=calendar");
    let arrived = wait_for_url(&browser, &signed_out).await;
    assert_eq!(arrived, format!("{signed_out}?state=af0ifjsldkj"));
    browser.screenshot("front-channel-continued").await;

    browser.close().await;
    server.stop().await.unwrap();
}
