//! Pieces the benches share (a subfolder, so cargo does not take it for a bench of its own).
//! Each bench uses some of them, so the rest is dead code to that bench.
#![allow(dead_code)]

pub mod flow;
pub mod sessions;

/// This process's resident set size, from /proc.
pub fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: f64 = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    kib / 1024.0
}
