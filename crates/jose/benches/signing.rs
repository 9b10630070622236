//! Time per signature and per verification for each algorithm, with keys parsed once (as the
//! server holds them). Figures are printed, never judged: `cargo bench -p jose --bench signing`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use jose::{Algorithm, JwkSet, SigningKey, Validation, Verifier};
use serde_json::json;

const NOW: i64 = 1_800_000_000;

/// Runs `operation` for at least a second (after a short warm-up); returns the time per call.
fn per_call(mut operation: impl FnMut()) -> Duration {
    for _ in 0..50 {
        operation();
    }
    let started = Instant::now();
    let mut calls = 0u32;
    while started.elapsed() < Duration::from_secs(1) {
        for _ in 0..50 {
            operation();
        }
        calls += 50;
    }
    started.elapsed() / calls
}

fn main() {
    // A logout token's claims, as the notifier signs them.
    let claims = json!({
        "iss": "https://id.example.com",
        "aud": "a-client-id-of-typical-length",
        "iat": NOW,
        "exp": NOW + 120,
        "jti": "0193c2b4-5f1e-7c3a-9d2e-8a1b2c3d4e5f",
        "sub": "0193c2b4-5f1e-7c3a-9d2e-000000000001",
        "sid": "0193c2b4-5f1e-7c3a-9d2e-000000000002",
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}}
    });
    println!("| alg | sign | verify |");
    println!("|---|---|---|");
    for alg in Algorithm::ALL {
        let key = SigningKey::generate(*alg, "bench").unwrap();
        let set: JwkSet = [key.public_jwk().clone()].into_iter().collect();
        let verifier = Verifier::new(&set).unwrap();
        let token = key.sign(Some("logout+jwt"), &claims).unwrap();
        let sign = per_call(|| {
            black_box(key.sign(Some("logout+jwt"), black_box(&claims)).unwrap());
        });
        let validation = Validation::new();
        let verify = per_call(|| {
            black_box(
                verifier
                    .verify(black_box(&token), &validation, NOW)
                    .unwrap(),
            );
        });
        println!(
            "| {} | {:.1} µs | {:.1} µs |",
            alg.name(),
            sign.as_secs_f64() * 1e6,
            verify.as_secs_f64() * 1e6
        );
    }
}
