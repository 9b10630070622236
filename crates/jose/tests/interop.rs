//! Interoperability with an independent implementation, `jsonwebtoken` (a dev-dependency
//! only): what we sign and publish verifies there through a `DecodingKey` built from our JWK,
//! and what it signs with our keys verifies here.

use std::sync::LazyLock;

use getrandom::SysRng;
use jose::rand_core::UnwrapErr;
use jose::{Algorithm, JwkSet, SigningKey, Validation, Verifier};
use jsonwebtoken as jwt;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use serde_json::{Value, json};

const NOW: i64 = 1_800_000_000;

/// RSA generation is the slow part; one set of keys for the whole binary.
static KEYS: LazyLock<[SigningKey; 3]> = LazyLock::new(|| {
    let mut rng = UnwrapErr(SysRng);
    [
        SigningKey::generate(Algorithm::RS256, "rsa-1", &mut rng).unwrap(),
        SigningKey::generate(Algorithm::ES256, "ec-1", &mut rng).unwrap(),
        SigningKey::generate(Algorithm::EdDSA, "okp-1", &mut rng).unwrap(),
    ]
});

fn published_jwks_json() -> String {
    let set: JwkSet = KEYS.iter().map(|key| key.public_jwk().clone()).collect();
    serde_json::to_string(&set).unwrap()
}

fn library_algorithm(alg: Algorithm) -> jwt::Algorithm {
    match alg {
        Algorithm::RS256 => jwt::Algorithm::RS256,
        Algorithm::ES256 => jwt::Algorithm::ES256,
        Algorithm::EdDSA => jwt::Algorithm::EdDSA,
    }
}

/// Signature and algorithm checks only: `jsonwebtoken` reads the system clock for `exp`.
fn signature_only(alg: Algorithm) -> jwt::Validation {
    let mut validation = jwt::Validation::new(library_algorithm(alg));
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    validation
}

#[test]
fn our_tokens_verify_with_a_decoding_key_built_from_our_jwk() {
    let their_jwks: jwt::jwk::JwkSet = serde_json::from_str(&published_jwks_json()).unwrap();
    let claims = json!({"iss": "https://id.example.com", "sid": "s-1", "exp": NOW});
    for key in KEYS.iter() {
        let token = key.sign(Some("logout+jwt"), &claims).unwrap();
        let jwk = their_jwks.find(key.kid()).expect("kid published");
        let decoding_key = jwt::DecodingKey::from_jwk(jwk).unwrap();
        let data = jwt::decode::<Value>(&token, &decoding_key, &signature_only(key.alg()))
            .unwrap_or_else(|error| panic!("{}: {error}", key.alg()));
        assert_eq!(data.claims, claims);
        assert_eq!(data.header.typ.as_deref(), Some("logout+jwt"));
        assert_eq!(data.header.kid.as_deref(), Some(key.kid()));

        let mut tampered = token.clone();
        tampered.insert(token.find('.').unwrap() + 2, 'A');
        assert!(
            jwt::decode::<Value>(&tampered, &decoding_key, &signature_only(key.alg())).is_err()
        );
    }
}

#[test]
fn their_tokens_signed_with_our_keys_verify_here() {
    let verifier = Verifier::new(&serde_json::from_str(&published_jwks_json()).unwrap()).unwrap();
    let claims = json!({"iss": "https://id.example.com", "aud": "client-1", "exp": NOW + 60});
    for key in KEYS.iter() {
        let pkcs8 = key.to_pkcs8_der().unwrap();
        let encoding_key = match key.alg() {
            // jsonwebtoken takes RSA keys as PKCS#1, the others as PKCS#8.
            Algorithm::RS256 => {
                let pkcs1 = rsa::PrivateKey::from_pkcs8_der(&pkcs8)
                    .unwrap()
                    .to_pkcs1_der()
                    .unwrap();
                jwt::EncodingKey::from_rsa_der(pkcs1.as_bytes())
            }
            Algorithm::ES256 => jwt::EncodingKey::from_ec_der(&pkcs8),
            Algorithm::EdDSA => jwt::EncodingKey::from_ed_der(&pkcs8),
        };
        let mut header = jwt::Header::new(library_algorithm(key.alg()));
        header.kid = Some(key.kid().to_owned());
        let token = jwt::encode(&header, &claims, &encoding_key).unwrap();

        let validation = Validation::new()
            .issuer("https://id.example.com")
            .audience("client-1")
            .typ("JWT");
        let verified = verifier
            .verify(&token, &validation, NOW)
            .unwrap_or_else(|error| panic!("{}: {error}", key.alg()));
        assert_eq!(Value::Object(verified.claims), claims);
    }
}
