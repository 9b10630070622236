//! A real headless browser for page tests: Debian's `chromium`, driven over WebDriver through
//! the `chromedriver` of the `chromium-driver` package. Each [`HeadlessBrowser`] starts its own
//! chromedriver on a port the system picks, with a fresh home directory and profile in a
//! temporary directory, and ends both when dropped, so tests run in parallel and leave nothing
//! behind.
//!
//! Without the two programs, [`HeadlessBrowser::start`] says the test did not run and returns
//! `None`; in CI (`CI=true`) it fails the test instead, naming the packages to install.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

/// The browser (Debian package `chromium`).
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Its WebDriver server (Debian package `chromium-driver`).
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A headless chromium session; derefs to the `fantoccini` client for everything not wrapped.
pub struct HeadlessBrowser {
    client: Option<Client>,
    driver: Child,
    /// Chromium's home and profile; dropped after the processes are ended, so nothing
    /// writes into it any more.
    home: tempfile::TempDir,
}

impl HeadlessBrowser {
    /// Starts chromedriver and a headless chromium session, or `None` (with a notice) when
    /// they are not installed outside CI.
    pub async fn start() -> Option<HeadlessBrowser> {
        let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
            .into_iter()
            .filter(|program| !Path::new(program).exists())
            .collect();
        if !missing.is_empty() {
            let message = format!(
                "{} missing: install the Debian packages `chromium` and `chromium-driver` \
                 (.ci/run does)",
                missing.join(" and ")
            );
            if std::env::var("CI").is_ok_and(|ci| ci == "true") {
                panic!("{message}; browser tests may not be skipped in CI");
            }
            // Written past the test harness' capture on purpose, so the skip is seen.
            let _ = writeln!(
                std::io::stderr(),
                "\nNOTICE: browser tests DID NOT RUN: {message}\n"
            );
            return None;
        }
        let home = tempfile::tempdir().expect("a temporary home directory");
        let (driver, port) = start_chromedriver(home.path());
        let mut browser = HeadlessBrowser {
            client: None,
            driver,
            home,
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities(&browser.home.path().join("profile")))
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|error| panic!("chromium did not start under chromedriver: {error}"));
        browser.client = Some(client);
        Some(browser)
    }

    /// Presses and releases one key on whatever has the focus, as a person at the keyboard.
    pub async fn press(&self, key: Key) {
        let key = char::from(key);
        let actions = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: key })
            .then(KeyAction::Up { value: key });
        self.perform_actions(actions)
            .await
            .expect("the key press reaches the page");
    }

    /// Presses Tab until the focused element matches the CSS `selector`, at most `presses`
    /// times; whether it got there.
    pub async fn tab_to(&self, selector: &str, presses: usize) -> bool {
        for _ in 0..presses {
            self.press(Key::Tab).await;
            let focused = self
                .execute(
                    "return document.activeElement !== null \
                     && document.activeElement.matches(arguments[0]);",
                    vec![json!(selector)],
                )
                .await
                .expect("the page answers a script");
            if focused == Value::Bool(true) {
                return true;
            }
        }
        false
    }

    /// The URLs of everything the current page loaded after the document itself (its resource
    /// timing entries: style sheets, scripts, images, fetches).
    pub async fn resource_urls(&self) -> Vec<String> {
        let names = self
            .execute(
                "return performance.getEntriesByType('resource').map(entry => entry.name);",
                vec![],
            )
            .await
            .expect("the page answers a script");
        serde_json::from_value(names).expect("a list of URLs")
    }

    /// Saves a screenshot of the page as `<name>.png` under the build's temporary directory
    /// (never the source tree) and returns its path, for a person looking into a failure.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client().screenshot().await.expect("a screenshot");
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        std::fs::create_dir_all(&dir).expect("a screenshot directory");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("the screenshot is written");
        path
    }

    /// Ends the WebDriver session (chromedriver then ends chromium) and chromedriver.
    pub async fn close(mut self) {
        if let Some(client) = self.client.take() {
            client.close().await.expect("the browser session ends");
        }
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("a started session")
    }
}

impl std::ops::Deref for HeadlessBrowser {
    type Target = Client;

    fn deref(&self) -> &Client {
        self.client()
    }
}

impl Drop for HeadlessBrowser {
    /// Ends chromedriver and, when a test failed before [`HeadlessBrowser::close`], the
    /// chromium it started: they share the process group chromedriver was given at spawn.
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.wait();
    }
}

/// Spawns chromedriver on a port the system picks (`--port=0`) in a process group of its own,
/// with `home` as the home directory of it and its chromium (which keeps a crash database
/// there, outside the profile); returns it and the port it reports.
fn start_chromedriver(home: &Path) -> (Child, u16) {
    let mut driver = Command::new(CHROMEDRIVER)
        .arg("--port=0")
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_CACHE_HOME")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|error| panic!("{CHROMEDRIVER} does not start: {error}"));
    let stdout = driver.stdout.take().expect("chromedriver's output");
    let (send, lines) = mpsc::channel();
    // Reads on until chromedriver exits, so its output never fills the pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = send.send(line);
        }
    });
    match reported_port(&lines) {
        Ok(port) => (driver, port),
        Err(seen) => {
            let _ = driver.kill();
            let _ = driver.wait();
            panic!("chromedriver did not report its port; it said {seen:?}");
        }
    }
}

/// The port in chromedriver's "started successfully" line, or what it said instead before it
/// exited or fell silent for 20 s.
fn reported_port(lines: &mpsc::Receiver<String>) -> Result<u16, Vec<String>> {
    let mut seen = Vec::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(20)) {
        let port = line
            .split_once("started successfully on port ")
            .and_then(|(_, rest)| rest.trim_end_matches('.').parse::<u16>().ok());
        if let Some(port) = port {
            return Ok(port);
        }
        seen.push(line);
    }
    Err(seen)
}

/// Headless chromium with a throw-away profile, kept from reaching the network on its own
/// (updates, sync), so a test's requests are the page's requests.
fn capabilities(profile: &Path) -> fantoccini::wd::Capabilities {
    let mut args = vec![
        "--headless=new".to_owned(),
        format!("--user-data-dir={}", profile.display()),
        "--window-size=1024,768".to_owned(),
        "--disable-gpu".to_owned(),
        // Containers often have a tiny /dev/shm; chromium then crashes tabs.
        "--disable-dev-shm-usage".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-sync".to_owned(),
        "--no-first-run".to_owned(),
        "--no-default-browser-check".to_owned(),
    ];
    if running_as_root() {
        // Chromium refuses to start its sandbox as root (CI and this project's machines).
        args.push("--no-sandbox".to_owned());
    }
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        "timeouts": { "pageLoad": 30_000, "script": 10_000 },
    });
    match capabilities {
        Value::Object(map) => map,
        _ => unreachable!("an object literal"),
    }
}

/// Whether this process runs as root: `/proc/self` belongs to the process' effective user.
fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}
