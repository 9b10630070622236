//! The server process under test: started by the driver, timed to readiness, its resident
//! memory sampled, stopped with SIGTERM.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A started server.
pub struct ServerProcess {
    child: tokio::process::Child,
    pid: u32,
    peak_rss_kib: Arc<AtomicU64>,
}

/// Resident set size of `pid` in KiB, from /proc.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

impl ServerProcess {
    /// Starts `command` (the driver's environment passes through; its stdout goes to the
    /// driver's stderr so result lines stay clean) and waits until `ready_url` answers 200.
    /// Returns the process and the time from spawn to ready.
    pub async fn start(
        command: &[String],
        ready_url: &str,
        http: &reqwest::Client,
    ) -> Result<(ServerProcess, Duration)> {
        let (program, args) = command.split_first().context("no server command given")?;
        let started = Instant::now();
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::io::stderr())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {program}"))?;
        let pid = child.id().context("the server exited at once")?;
        loop {
            if let Some(status) = child.try_wait()? {
                bail!("the server exited before it was ready: {status}");
            }
            let ready = http
                .get(ready_url)
                .timeout(Duration::from_secs(1))
                .send()
                .await
                .is_ok_and(|response| response.status().is_success());
            if ready {
                break;
            }
            if started.elapsed() > Duration::from_secs(120) {
                bail!("the server was not ready after 120 s");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let ready = started.elapsed();
        let peak_rss_kib = Arc::new(AtomicU64::new(0));
        let peak = peak_rss_kib.clone();
        tokio::spawn(async move {
            while let Some(rss) = rss_kib(pid) {
                peak.fetch_max(rss, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Ok((
            ServerProcess {
                child,
                pid,
                peak_rss_kib,
            },
            ready,
        ))
    }

    pub fn rss_mib(&self) -> f64 {
        rss_kib(self.pid).unwrap_or(0) as f64 / 1024.0
    }

    /// The highest RSS seen since ready, sampled every 50 ms.
    pub fn peak_rss_mib(&self) -> f64 {
        self.peak_rss_kib.load(Ordering::Relaxed) as f64 / 1024.0
    }

    /// SIGTERM, then SIGKILL if it has not exited within 10 s.
    pub async fn stop(mut self) -> Result<()> {
        // SAFETY: kill(2) with a pid this driver spawned and has not reaped.
        unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGTERM) };
        match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => self.child.kill().await?,
        }
        Ok(())
    }
}
