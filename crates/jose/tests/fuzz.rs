//! Property-based fuzzing of token verification, which reads attacker-supplied text (for
//! example an `id_token_hint`): any input is an error or a verified token, never a panic, and
//! a token we signed stops verifying when any character of it changes.

use std::sync::LazyLock;

use jose::{Algorithm, JwkSet, SigningKey, Validation, Verifier};
use proptest::prelude::*;
use serde_json::json;

const NOW: i64 = 1_800_000_000;

static KEYS: LazyLock<Vec<SigningKey>> = LazyLock::new(|| {
    vec![
        SigningKey::generate(Algorithm::ES256, "ec-1").unwrap(),
        SigningKey::generate(Algorithm::EdDSA, "okp-1").unwrap(),
    ]
});

static VERIFIER: LazyLock<Verifier> = LazyLock::new(|| {
    let set: JwkSet = KEYS.iter().map(|key| key.public_jwk().clone()).collect();
    Verifier::new(&set).unwrap()
});

fn signed(key: usize) -> String {
    KEYS[key]
        .sign(
            Some("JWT"),
            &json!({"iss": "https://op", "aud": "rp", "exp": NOW + 60, "iat": NOW}),
        )
        .unwrap()
}

/// Text shaped like a compact JWS: base64url-ish segments separated by dots.
fn jws_like() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        "[A-Za-z0-9_-]{0,80}",
        Just("eyJhbGciOiJub25lIn0".to_owned()),
        Just("eyJhbGciOiJFUzI1NiIsImtpZCI6ImVjLTEifQ".to_owned()),
        ".{0,40}",
    ];
    proptest::collection::vec(segment, 0..6).prop_map(|parts| parts.join("."))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3_000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_verifies_nor_panics(token in jws_like()) {
        prop_assert!(VERIFIER.verify(&token, &Validation::new(), NOW).is_err());
    }

    #[test]
    fn any_changed_character_breaks_a_signed_token(key in 0usize..2, at in any::<prop::sample::Index>(), with in "[A-Za-z0-9_.-]") {
        let token = signed(key);
        prop_assert!(VERIFIER.verify(&token, &Validation::new(), NOW).is_ok());
        let at = at.index(token.len());
        let mut changed = token.clone();
        changed.replace_range(at..at + 1, &with);
        prop_assume!(changed != token);
        prop_assert!(VERIFIER.verify(&changed, &Validation::new(), NOW).is_err());
    }
}
