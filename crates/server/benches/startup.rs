//! Time from process start to ready, and idle resident memory, of `portcullis start` on its
//! embedded SQLite store: a first start (empty data directory: migrations, setup) and a
//! restart. Run with `cargo bench -p server --bench startup`; figures are printed, not judged.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_portcullis");
const RUNS: usize = 10;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn is_ready(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let request =
        format!("GET /readyz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.1 200")
}

fn rss_kib(child: &Child) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Starts the server in `dir`, returns (time to ready, idle RSS in KiB).
fn start_once(dir: &std::path::Path) -> (Duration, u64) {
    let port = free_port();
    let started = Instant::now();
    let mut child = Command::new(BINARY)
        .arg("start")
        .current_dir(dir)
        .env("PORTCULLIS_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("PORTCULLIS_LOG__LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while !is_ready(port) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "server did not become ready"
        );
        std::thread::sleep(Duration::from_micros(500));
    }
    let ready = started.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    let rss = rss_kib(&child);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    (ready, rss)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument is a filter we do not use.
    let mut first_ms = Vec::new();
    let mut restart_ms = Vec::new();
    let mut rss_mib = Vec::new();
    for _ in 0..RUNS {
        let dir = tempfile::tempdir().unwrap();
        let (ready, rss) = start_once(dir.path());
        first_ms.push(ready.as_secs_f64() * 1e3);
        rss_mib.push(rss as f64 / 1024.0);
        let (ready, rss) = start_once(dir.path());
        restart_ms.push(ready.as_secs_f64() * 1e3);
        rss_mib.push(rss as f64 / 1024.0);
    }
    let max = |values: &[f64]| values.iter().copied().fold(f64::MIN, f64::max);
    println!("| figure ({RUNS} runs each) | median | worst | aim |");
    println!("|---|---|---|---|");
    println!(
        "| start to ready, first start (empty ./data) | {:.1} ms | {:.1} ms | < 200 ms |",
        median(first_ms.clone()),
        max(&first_ms)
    );
    println!(
        "| start to ready, restart | {:.1} ms | {:.1} ms | < 200 ms |",
        median(restart_ms.clone()),
        max(&restart_ms)
    );
    println!(
        "| idle resident memory (2 s after ready) | {:.1} MiB | {:.1} MiB | < 30 MB |",
        median(rss_mib.clone()),
        max(&rss_mib)
    );
}
