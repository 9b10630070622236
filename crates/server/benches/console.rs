//! The admin console's pages on a large instance (issue 15's figures), with the server in
//! this process on its embedded SQLite store: 10,000 users and 100,000 live sessions, each
//! signed in to one application, and a few thousand ended sessions whose back-channel
//! deliveries a real receiver on 127.0.0.1 took.
//!
//! For each page: its weight (bytes of HTML, headers not counted, plus the one style sheet
//! every page links), and its time to first byte (request sent → response headers in), median
//! and p95 over repeated loads by a signed-in admin.
//!
//! Run: `cargo bench -p server --bench console` (`BENCH_SCALE=0.1` for a tenth of the data;
//! `BENCH_LOADS` loads per page, 50 unless set). Figures are printed, never judged.

mod common;

use std::time::{Duration, Instant};

use common::flow::{form, scale};
use common::sessions::{Bench, back_channel_server, receiver};
use domain::{NewUser, Profile, TerminationReason};
use reqwest::header::{COOKIE, SET_COOKIE};
use tokio::sync::mpsc;

const TOKEN: &str = "bench-admin-token-0123456789abcdef";

/// A signed-in admin's browser: the console's cookies, carried by hand.
struct Admin {
    http: reqwest::Client,
    base: String,
    cookies: Vec<String>,
}

impl Admin {
    /// Keeps every cookie `response` sets (name=value), replacing one of the same name.
    fn keep_cookies(&mut self, response: &reqwest::Response) {
        for set in response.headers().get_all(SET_COOKIE) {
            let pair = set.to_str().unwrap().split(';').next().unwrap().to_owned();
            let name = pair.split('=').next().unwrap().to_owned();
            self.cookies
                .retain(|kept| kept.split('=').next() != Some(name.as_str()));
            self.cookies.push(pair);
        }
    }

    async fn get(&mut self, path: &str) -> reqwest::Response {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header(COOKIE, self.cookies.join("; "))
            .send()
            .await
            .unwrap();
        self.keep_cookies(&response);
        response
    }

    /// Signs in through the real form, as a person does.
    async fn sign_in(&mut self) {
        let page = self.get("/console/sign-in").await.text().await.unwrap();
        let csrf = hidden_field(&page, "csrf");
        let response = self
            .http
            .post(format!("{}/console/sign-in", self.base))
            .header(COOKIE, self.cookies.join("; "))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("csrf", &csrf), ("token", TOKEN)]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::SEE_OTHER);
        self.keep_cookies(&response);
    }
}

/// The value of the hidden input `name` in `html`.
fn hidden_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("the form has the field") + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

/// The `href` of the link marked `rel="next"`, unescaped.
fn next_link(html: &str) -> Option<String> {
    let end = html.find("\" rel=\"next\"")?;
    let start = html[..end].rfind("href=\"")? + "href=\"".len();
    Some(html[start..end].replace("&amp;", "&"))
}

/// One page's figures.
struct Figures {
    status: u16,
    bytes: usize,
    median: Duration,
    p95: Duration,
}

/// Loads `path` `loads` times (after one warm-up load).
async fn measure(admin: &mut Admin, path: &str, loads: usize) -> Figures {
    let mut times = Vec::with_capacity(loads);
    let (mut status, mut bytes) = (0, 0);
    for load in 0..=loads {
        let started = Instant::now();
        let response = admin.get(path).await;
        let first_byte = started.elapsed();
        status = response.status().as_u16();
        bytes = response.bytes().await.unwrap().len();
        if load > 0 {
            times.push(first_byte);
        }
    }
    times.sort();
    Figures {
        status,
        bytes,
        median: times[times.len() / 2],
        p95: times[(times.len() * 95 / 100).min(times.len() - 1)],
    }
}

/// Runs `read` `loads` times and prints its median time.
async fn profile<F, Fut>(what: &str, loads: usize, read: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut times = Vec::with_capacity(loads);
    for _ in 0..loads.max(1) {
        let started = Instant::now();
        read().await;
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "  {what}: {:.1} ms",
        times[times.len() / 2].as_secs_f64() * 1e3
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (server, _dir) = back_channel_server(TOKEN).await;
    let base = format!("http://{}", server.local_addr);
    let domain = server.domain();
    let admin = domain.authenticate_admin(TOKEN).await.unwrap().unwrap();
    let user_count = ((10_000.0 * scale()) as usize).max(10);
    let session_count = ((100_000.0 * scale()) as usize).max(100);
    let ended_count = session_count / 20;
    let loads: usize = std::env::var("BENCH_LOADS")
        .ok()
        .and_then(|loads| loads.parse().ok())
        .unwrap_or(50);

    let set_up = Instant::now();
    let (arrivals, mut arrived) = mpsc::unbounded_channel();
    let uri = receiver(0, arrivals, false).await;
    let bench = Bench {
        domain: domain.clone(),
        instance_id: admin.instance_id.clone(),
        admin: admin.clone(),
        user_id: String::new(),
    };
    let apps = bench.apps(&[uri], "ES256").await;

    // Users, several at a time (each password is an Argon2 hash).
    let mut user_ids = Vec::with_capacity(user_count);
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let (domain, admin) = (domain.clone(), admin.clone());
        tasks.spawn(async move {
            let mut ids = Vec::new();
            for index in (worker..user_count).step_by(8) {
                let user = domain
                    .add_user(
                        &admin,
                        NewUser {
                            username: format!("user{index:05}"),
                            profile: Profile::default(),
                            password: "correct horse battery".into(),
                        },
                    )
                    .await
                    .unwrap();
                ids.push(user.user_id);
            }
            ids
        });
    }
    while let Some(ids) = tasks.join_next().await {
        user_ids.extend(ids.unwrap());
    }

    // Sessions spread over the users, each signed in to the application.
    let per_user = session_count / user_count;
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in user_ids.chunks(user_ids.len().div_ceil(32)) {
        let (bench, apps, chunk) = (bench.clone(), apps.clone(), chunk.to_vec());
        tasks.spawn(async move {
            for user_id in chunk {
                let bench = Bench {
                    user_id,
                    ..bench.clone()
                };
                for _ in 0..per_user {
                    bench.session_with(&apps).await;
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }

    // Some ended sessions, so the delivery listing has rows: every session of the first users.
    let mut ended = 0;
    for user_id in &user_ids {
        if ended >= ended_count {
            break;
        }
        ended += domain
            .sign_out_user(
                &admin.instance_id,
                user_id,
                TerminationReason::Admin,
                &base,
                &admin.token_id,
            )
            .await
            .unwrap();
    }
    for _ in 0..ended {
        tokio::time::timeout(Duration::from_secs(120), arrived.recv())
            .await
            .expect("the receiver is told")
            .unwrap();
    }
    println!(
        "set-up: {user_count} users, {session_count} sessions ({ended} ended and delivered) in {:.0} s",
        set_up.elapsed().as_secs_f64()
    );

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut console = Admin {
        http,
        base,
        cookies: Vec::new(),
    };
    console.sign_in().await;
    let style_sheet = console.get(server::http::assets::STYLE_SHEET_PATH).await;
    let style_bytes = style_sheet.bytes().await.unwrap().len();

    // The pages, and a second page of each list that has one.
    let mut paths: Vec<String> = [
        "/console",
        "/console/users",
        "/console/applications",
        "/console/sessions",
        "/console/deliveries",
        "/console/instance",
    ]
    .map(String::from)
    .to_vec();
    paths.push(format!("/console/users/{}", user_ids[user_ids.len() / 2]));
    for list in ["/console/users", "/console/sessions", "/console/deliveries"] {
        let page = console.get(list).await.text().await.unwrap();
        if let Some(next) = next_link(&page) {
            paths.push(next);
        }
    }

    // The overview is made of several reads: each timed on its own, to say where its time goes.
    println!("overview's reads, each on its own (median of {loads}):");
    let instance = &admin.instance_id;
    profile("live sessions (count)", loads, || async {
        domain.live_sessions_of_instance(instance).await.unwrap();
    })
    .await;
    profile("sign-ins and session ends (activity)", loads, || async {
        domain.session_activity(instance).await.unwrap();
    })
    .await;
    profile("deliveries by outcome (counts)", loads, || async {
        domain.delivery_counts_of_instance(instance).await.unwrap();
    })
    .await;
    profile("delivery health per application", loads, || async {
        domain.delivery_health(instance, None).await.unwrap();
    })
    .await;
    profile("the chart's 24 hours", loads, || async {
        domain.delivery_hours(instance).await.unwrap();
    })
    .await;
    profile("applications (one page)", loads, || async {
        domain.applications(instance, "", 500).await.unwrap();
    })
    .await;

    println!("style sheet (linked by every page, cached after the first): {style_bytes} bytes");
    println!(
        "| page | status | HTML bytes | with style sheet | TTFB median | TTFB p95 |\n|---|---:|---:|---:|---:|---:|"
    );
    for path in &paths {
        let figures = measure(&mut console, path, loads).await;
        println!(
            "| `{path}` | {} | {} | {} | {:.1} ms | {:.1} ms |",
            figures.status,
            figures.bytes,
            figures.bytes + style_bytes,
            figures.median.as_secs_f64() * 1e3,
            figures.p95.as_secs_f64() * 1e3,
        );
    }
}
