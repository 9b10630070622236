//! Verifying compact JWS tokens we issued (such as an `id_token_hint`) against our JWK set.
//!
//! Keys are parsed once, in [`Verifier::new`]. The current time is a parameter: nothing here
//! reads the clock.

use std::collections::HashSet;

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256,
    RsaPublicKeyComponents,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::jwk::{EcCurve, JwkKey, JwkSet, OkpCurve, PublicJwk};
use crate::signing::RSA_KEY_BITS;
use crate::{Algorithm, JoseError, b64};

/// Verifies tokens against a fixed set of public keys.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: Vec<VerificationKey>,
}

#[derive(Debug, Clone)]
struct VerificationKey {
    kid: String,
    alg: Algorithm,
    key: PublicKey,
}

/// A public key parsed once (aws-lc-rs), for the algorithm of its `VerificationKey`: RS256 as
/// PKCS#1 v1.5 with SHA-256 (2048 to 8192 bits), ES256 as fixed-width r‖s (RFC 7518 §3.4, never
/// DER), EdDSA as Ed25519.
#[derive(Debug, Clone)]
struct PublicKey(ParsedPublicKey);

/// What to check beyond the signature. Unset checks are skipped; the defaults check only the
/// times (`exp` required and not passed, `nbf` if present), with no leeway.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validation {
    issuer: Option<String>,
    audience: Option<String>,
    typ: Option<String>,
    leeway_seconds: i64,
    allow_expired: bool,
}

impl Validation {
    /// Checks only the times, with no leeway.
    pub fn new() -> Validation {
        Validation::default()
    }

    /// Requires `iss` to equal `issuer`.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Validation {
        self.issuer = Some(issuer.into());
        self
    }

    /// Requires `aud` (a string or an array of strings) to contain `audience`.
    pub fn audience(mut self, audience: impl Into<String>) -> Validation {
        self.audience = Some(audience.into());
        self
    }

    /// Requires the `typ` header to be `typ` (compared as RFC 7515 §4.1.9 says: ignoring case
    /// and an `application/` prefix).
    pub fn typ(mut self, typ: impl Into<String>) -> Validation {
        self.typ = Some(typ.into());
        self
    }

    /// Tolerates this much clock skew on `exp` and `nbf`.
    pub fn leeway_seconds(mut self, seconds: u32) -> Validation {
        self.leeway_seconds = i64::from(seconds);
        self
    }

    /// Accepts a token whose `exp` has passed: RP-Initiated Logout 1.0 §2 lets an expired
    /// `id_token_hint` identify the session. `exp` must still be present and well-formed.
    pub fn allow_expired(mut self) -> Validation {
        self.allow_expired = true;
        self
    }
}

/// The protected header of a verified token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwsHeader {
    /// The algorithm the token was signed with.
    pub alg: Algorithm,
    /// The key id it was signed under.
    pub kid: String,
    /// The token type, if the header has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
}

/// A token whose signature and claims passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified<T> {
    /// The protected header.
    pub header: JwsHeader,
    /// The claims.
    pub claims: T,
}

impl Verifier {
    /// Parses every key of `jwks` up front, so verifying decodes no key material.
    pub fn new(jwks: &JwkSet) -> Result<Verifier, JoseError> {
        let mut seen = HashSet::new();
        let mut keys = Vec::with_capacity(jwks.keys.len());
        for jwk in &jwks.keys {
            if !seen.insert(jwk.kid.as_str()) {
                return Err(JoseError::DuplicateKid(jwk.kid.clone()));
            }
            keys.push(VerificationKey {
                kid: jwk.kid.clone(),
                alg: jwk.alg,
                key: PublicKey::from_jwk(jwk)?,
            });
        }
        Ok(Verifier { keys })
    }

    /// Verifies `token` at time `now` (unix seconds), returning its header and claims as JSON.
    pub fn verify(
        &self,
        token: &str,
        validation: &Validation,
        now: i64,
    ) -> Result<Verified<Map<String, Value>>, JoseError> {
        let (header, claims) = self.verify_signature(token)?;
        check_claims(&header, &claims, validation, now)?;
        Ok(Verified { header, claims })
    }

    /// Verifies `token` like [`Verifier::verify`], then reads the claims as a `T`.
    pub fn verify_as<T: DeserializeOwned>(
        &self,
        token: &str,
        validation: &Validation,
        now: i64,
    ) -> Result<Verified<T>, JoseError> {
        let Verified { header, claims } = self.verify(token, validation, now)?;
        let claims = serde_json::from_value(Value::Object(claims))
            .map_err(|error| JoseError::ClaimsShape(error.to_string()))?;
        Ok(Verified { header, claims })
    }

    /// Checks the structure, header and signature; only then is the payload decoded, so nothing
    /// unauthenticated is interpreted beyond the header.
    fn verify_signature(&self, token: &str) -> Result<(JwsHeader, Map<String, Value>), JoseError> {
        let parts: Vec<&str> = token.split('.').collect();
        let [header_part, payload_part, signature_part] = parts[..] else {
            let reason = if parts.len() == 5 {
                "it has 5 parts, an encrypted JWT (JWE), which is not supported".to_owned()
            } else {
                format!(
                    "a compact JWS has 3 dot-separated parts, found {}",
                    parts.len()
                )
            };
            return Err(JoseError::MalformedToken(reason));
        };

        let header = parse_header(header_part)?;
        let key = self
            .keys
            .iter()
            .find(|key| key.kid == header.kid)
            .ok_or_else(|| JoseError::UnknownKid(header.kid.clone()))?;
        if key.alg != header.alg {
            return Err(JoseError::AlgorithmMismatch {
                kid: key.kid.clone(),
                key_alg: key.alg,
                token_alg: header.alg,
            });
        }

        let signature = b64::decode(signature_part)
            .map_err(|error| malformed("signature", &error.to_string()))?;
        // The signing input is the ASCII of the first two parts as received (RFC 7515 §5.2).
        let signing_input = &token[..header_part.len() + 1 + payload_part.len()];
        if !key.key.verifies(signing_input.as_bytes(), &signature) {
            return Err(JoseError::InvalidSignature {
                kid: key.kid.clone(),
            });
        }

        let payload =
            b64::decode(payload_part).map_err(|error| malformed("payload", &error.to_string()))?;
        let claims: Map<String, Value> = serde_json::from_slice(&payload)
            .map_err(|error| malformed("payload", &format!("not a JSON object: {error}")))?;
        Ok((header, claims))
    }
}

impl PublicKey {
    fn from_jwk(jwk: &PublicJwk) -> Result<PublicKey, JoseError> {
        let invalid = |reason: String| JoseError::InvalidJwk {
            kid: jwk.kid.clone(),
            reason,
        };
        let decode = |member: &str, value: &str| {
            b64::decode(value)
                .map_err(|error| invalid(format!("{member} is not base64url: {error}")))
        };
        match (&jwk.key, jwk.alg) {
            (JwkKey::Rsa { n, e }, Algorithm::RS256) => {
                let (n, e) = (decode("n", n)?, decode("e", e)?);
                let bits = n.iter().skip_while(|byte| **byte == 0).count() * 8;
                if bits < RSA_KEY_BITS {
                    return Err(invalid(format!(
                        "RSA modulus is shorter than {RSA_KEY_BITS} bits"
                    )));
                }
                RsaPublicKeyComponents { n, e }
                    .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
                    .map(PublicKey)
                    .map_err(|error| invalid(format!("not an RSA public key: {error}")))
            }
            (
                JwkKey::Ec {
                    crv: EcCurve::P256,
                    x,
                    y,
                },
                Algorithm::ES256,
            ) => {
                let (x, y) = (decode("x", x)?, decode("y", y)?);
                for (member, coordinate) in [("x", &x), ("y", &y)] {
                    if coordinate.len() != 32 {
                        return Err(invalid(format!("{member} must be 32 octets for P-256")));
                    }
                }
                // SEC1 uncompressed: 0x04, x, y.
                let point = [&[0x04][..], &x, &y].concat();
                ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                    .map(PublicKey)
                    .map_err(|_| invalid("(x, y) is not a point on P-256".to_owned()))
            }
            (
                JwkKey::Okp {
                    crv: OkpCurve::Ed25519,
                    x,
                },
                Algorithm::EdDSA,
            ) => {
                let x = decode("x", x)?;
                if x.len() != 32 {
                    return Err(invalid("x must be 32 octets for Ed25519".to_owned()));
                }
                ParsedPublicKey::new(&ED25519, x)
                    .map(PublicKey)
                    .map_err(|_| invalid("x is not an Ed25519 public key".to_owned()))
            }
            (key, alg) => Err(invalid(format!(
                "a {} key cannot be used with alg {alg}",
                key_description(key)
            ))),
        }
    }

    fn verifies(&self, signing_input: &[u8], signature: &[u8]) -> bool {
        self.0.verify_sig(signing_input, signature).is_ok()
    }
}

fn key_description(key: &JwkKey) -> &'static str {
    match key {
        JwkKey::Rsa { .. } => "kty RSA",
        JwkKey::Ec { .. } => "kty EC (P-256)",
        JwkKey::Okp { .. } => "kty OKP (Ed25519)",
    }
}

fn malformed(part: &str, reason: &str) -> JoseError {
    JoseError::MalformedToken(format!("{part}: {reason}"))
}

/// Reads the protected header; refuses `alg: none` and anything else we cannot verify.
fn parse_header(encoded: &str) -> Result<JwsHeader, JoseError> {
    let bytes = b64::decode(encoded).map_err(|error| malformed("header", &error.to_string()))?;
    // A map, not a struct: serde would let a struct be read from a JSON array.
    let header: Map<String, Value> = serde_json::from_slice(&bytes)
        .map_err(|error| malformed("header", &format!("not a JSON object: {error}")))?;

    let alg = match header.get("alg") {
        Some(Value::String(alg)) => alg,
        Some(_) => return Err(malformed("header", "alg is not a string")),
        None => return Err(malformed("header", "no alg")),
    };
    if alg.eq_ignore_ascii_case("none") {
        return Err(JoseError::UnsignedToken);
    }
    let alg: Algorithm = alg.parse()?;
    let kid = match header.get("kid") {
        Some(Value::String(kid)) => kid.clone(),
        Some(_) => return Err(malformed("header", "kid is not a string")),
        None => return Err(JoseError::MissingKid),
    };
    let typ = match header.get("typ") {
        Some(Value::String(typ)) => Some(typ.clone()),
        Some(_) => return Err(malformed("header", "typ is not a string")),
        None => None,
    };
    // RFC 7515 §4.1.11: a recipient must reject extensions it does not understand; we know none.
    if header.contains_key("crit") {
        return Err(JoseError::UnsupportedCriticalHeader);
    }
    Ok(JwsHeader { alg, kid, typ })
}

fn check_claims(
    header: &JwsHeader,
    claims: &Map<String, Value>,
    validation: &Validation,
    now: i64,
) -> Result<(), JoseError> {
    if let Some(expected) = &validation.typ
        && !header
            .typ
            .as_deref()
            .is_some_and(|found| same_media_type(found, expected))
    {
        return Err(JoseError::WrongType {
            expected: expected.clone(),
            found: header.typ.clone(),
        });
    }

    let leeway_seconds = validation.leeway_seconds;
    let exp = numeric_date(claims, "exp")?.ok_or(JoseError::MissingClaim("exp"))?;
    if !validation.allow_expired && now >= exp.saturating_add(leeway_seconds) {
        return Err(JoseError::Expired {
            exp,
            now,
            leeway_seconds,
        });
    }
    if let Some(nbf) = numeric_date(claims, "nbf")?
        && now.saturating_add(leeway_seconds) < nbf
    {
        return Err(JoseError::NotYetValid {
            nbf,
            now,
            leeway_seconds,
        });
    }

    if let Some(expected) = &validation.issuer {
        let issuer = match claims.get("iss") {
            Some(Value::String(issuer)) => issuer,
            Some(_) => return Err(invalid_claim("iss", "not a string")),
            None => return Err(JoseError::MissingClaim("iss")),
        };
        if issuer != expected {
            return Err(JoseError::WrongIssuer {
                expected: expected.clone(),
                found: issuer.clone(),
            });
        }
    }

    if let Some(expected) = &validation.audience {
        let audience = claims.get("aud").ok_or(JoseError::MissingClaim("aud"))?;
        let contains = match audience {
            Value::String(single) => single == expected,
            Value::Array(many) if many.iter().all(Value::is_string) => {
                many.iter().any(|value| value.as_str() == Some(expected))
            }
            _ => return Err(invalid_claim("aud", "not a string or an array of strings")),
        };
        if !contains {
            return Err(JoseError::WrongAudience {
                expected: expected.clone(),
                found: audience.to_string(),
            });
        }
    }
    Ok(())
}

/// A NumericDate claim (RFC 7519 §2): seconds, possibly fractional, which we truncate.
fn numeric_date(
    claims: &Map<String, Value>,
    claim: &'static str,
) -> Result<Option<i64>, JoseError> {
    match claims.get(claim) {
        None => Ok(None),
        Some(Value::Number(number)) => number
            .as_i64()
            // Fractional seconds: whole seconds are precise enough, and `as` saturates.
            .or_else(|| number.as_f64().map(|seconds| seconds.floor() as i64))
            .map(Some)
            .ok_or_else(|| invalid_claim(claim, "not a representable number of seconds")),
        Some(_) => Err(invalid_claim(claim, "not a number")),
    }
}

fn invalid_claim(claim: &'static str, reason: &str) -> JoseError {
    JoseError::InvalidClaim {
        claim,
        reason: reason.to_owned(),
    }
}

/// `typ` values compare case-insensitively, with an optional `application/` prefix.
fn same_media_type(found: &str, expected: &str) -> bool {
    fn strip(value: &str) -> &str {
        match value.get(..12) {
            Some(prefix) if prefix.eq_ignore_ascii_case("application/") => &value[12..],
            _ => value,
        }
    }
    strip(found).eq_ignore_ascii_case(strip(expected))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{SigningKey, test_keys};

    const NOW: i64 = 1_800_000_000;
    const ISSUER: &str = "https://id.example.com";

    fn claims(exp: i64) -> Value {
        json!({"iss": ISSUER, "sub": "user-1", "aud": "client-1", "iat": exp - 120, "exp": exp})
    }

    fn strict() -> Validation {
        Validation::new()
            .issuer(ISSUER)
            .audience("client-1")
            .typ("JWT")
    }

    /// Replaces one part of a compact JWS.
    fn with_part(token: &str, index: usize, part: &str) -> String {
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[index] = part;
        parts.join(".")
    }

    fn encode_json(value: &Value) -> String {
        b64::encode(serde_json::to_vec(value).unwrap())
    }

    #[test]
    fn round_trip_for_each_algorithm_through_the_published_jwk_set() {
        // Through JSON, as a relying party would fetch it from the jwks_uri.
        let published = serde_json::to_string(&test_keys::jwk_set()).unwrap();
        let verifier = Verifier::new(&serde_json::from_str(&published).unwrap()).unwrap();
        for key in test_keys::all() {
            let token = key.sign(Some("JWT"), &claims(NOW + 300)).unwrap();
            let verified = verifier.verify(&token, &strict(), NOW).unwrap();
            assert_eq!(
                verified.header,
                JwsHeader {
                    alg: key.alg(),
                    kid: key.kid().to_owned(),
                    typ: Some("JWT".to_owned()),
                }
            );
            assert_eq!(Value::Object(verified.claims), claims(NOW + 300));
        }
    }

    #[test]
    fn typed_claims() {
        #[derive(Debug, Deserialize, PartialEq)]
        struct LogoutClaims {
            sid: String,
            events: Value,
        }
        let token = test_keys::eddsa()
            .sign(
                Some("logout+jwt"),
                &json!({"sid": "s-1", "exp": NOW + 120, "events": {"http://schemas.openid.net/event/backchannel-logout": {}}}),
            )
            .unwrap();
        let verifier = test_keys::verifier();
        let verified: Verified<LogoutClaims> = verifier
            .verify_as(&token, &Validation::new().typ("logout+jwt"), NOW)
            .unwrap();
        assert_eq!(verified.claims.sid, "s-1");
        assert_eq!(verified.header.typ.as_deref(), Some("logout+jwt"));

        let error = verifier
            .verify_as::<LogoutClaims>(
                &test_keys::eddsa()
                    .sign(None, &json!({"exp": NOW + 1}))
                    .unwrap(),
                &Validation::new(),
                NOW,
            )
            .unwrap_err();
        assert!(matches!(error, JoseError::ClaimsShape(_)), "{error}");
    }

    #[test]
    fn tampered_payload_or_signature_is_rejected() {
        let verifier = test_keys::verifier();
        for key in test_keys::all() {
            let token = key.sign(Some("JWT"), &claims(NOW + 300)).unwrap();
            let mut forged_claims = claims(NOW + 300);
            forged_claims["sub"] = json!("admin");
            let forged_payload = with_part(&token, 1, &encode_json(&forged_claims));

            let mut signature = b64::decode(token.rsplit('.').next().unwrap()).unwrap();
            signature[10] ^= 0x01;
            let flipped_signature = with_part(&token, 2, &b64::encode(&signature));
            let truncated_signature = with_part(&token, 2, &b64::encode(&signature[..32]));
            let empty_signature = with_part(&token, 2, "");

            for forged in [
                forged_payload,
                flipped_signature,
                truncated_signature,
                empty_signature,
            ] {
                let error = verifier.verify(&forged, &strict(), NOW).unwrap_err();
                assert!(
                    matches!(&error, JoseError::InvalidSignature { kid } if kid == key.kid()),
                    "{}: {error}",
                    key.alg()
                );
            }
        }
    }

    #[test]
    fn unknown_or_missing_kid_is_rejected() {
        let other = SigningKey::generate(Algorithm::ES256, "ec-2").unwrap();
        let token = other.sign(Some("JWT"), &claims(NOW + 300)).unwrap();
        let error = test_keys::verifier()
            .verify(&token, &strict(), NOW)
            .unwrap_err();
        assert!(
            matches!(&error, JoseError::UnknownKid(kid) if kid == "ec-2"),
            "{error}"
        );
        assert_eq!(
            error.to_string(),
            "token kid \"ec-2\" is not a key of this issuer"
        );

        // Same kid as a published key, different key material: the signature fails.
        let impostor = SigningKey::generate(Algorithm::ES256, "ec-1").unwrap();
        let token = impostor.sign(Some("JWT"), &claims(NOW + 300)).unwrap();
        let error = test_keys::verifier()
            .verify(&token, &strict(), NOW)
            .unwrap_err();
        assert!(
            matches!(error, JoseError::InvalidSignature { .. }),
            "{error}"
        );

        let token = test_keys::es256()
            .sign(Some("JWT"), &claims(NOW + 300))
            .unwrap();
        let no_kid = with_part(
            &token,
            0,
            &encode_json(&json!({"alg": "ES256", "typ": "JWT"})),
        );
        let error = test_keys::verifier()
            .verify(&no_kid, &strict(), NOW)
            .unwrap_err();
        assert!(matches!(error, JoseError::MissingKid), "{error}");
    }

    #[test]
    fn unsigned_and_unsupported_algorithms_are_rejected() {
        let payload = encode_json(&claims(NOW + 300));
        for (alg, expected_unsigned) in [
            ("none", true),
            ("NONE", true),
            ("HS256", false),
            ("PS256", false),
        ] {
            let header = encode_json(&json!({"alg": alg, "kid": "rsa-1", "typ": "JWT"}));
            let token = format!("{header}.{payload}.");
            let error = test_keys::verifier()
                .verify(&token, &strict(), NOW)
                .unwrap_err();
            if expected_unsigned {
                assert!(matches!(error, JoseError::UnsignedToken), "{alg}: {error}");
            } else {
                assert!(
                    matches!(error, JoseError::UnsupportedAlgorithm(_)),
                    "{alg}: {error}"
                );
            }
        }
    }

    #[test]
    fn algorithm_must_match_the_key() {
        // An ES256 signature presented as RS256 under the RSA key's kid, and the reverse.
        let token = test_keys::es256()
            .sign(Some("JWT"), &claims(NOW + 300))
            .unwrap();
        let relabelled = with_part(
            &token,
            0,
            &encode_json(&json!({"alg": "RS256", "kid": "ec-1", "typ": "JWT"})),
        );
        let error = test_keys::verifier()
            .verify(&relabelled, &strict(), NOW)
            .unwrap_err();
        assert!(
            matches!(
                error,
                JoseError::AlgorithmMismatch {
                    key_alg: Algorithm::ES256,
                    token_alg: Algorithm::RS256,
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn expiry_is_checked_against_the_given_time() {
        let verifier = test_keys::verifier();
        let token = test_keys::rs256().sign(Some("JWT"), &claims(NOW)).unwrap();

        assert!(verifier.verify(&token, &strict(), NOW - 1).is_ok());
        let error = verifier.verify(&token, &strict(), NOW).unwrap_err();
        assert!(
            matches!(
                error,
                JoseError::Expired {
                    exp: NOW,
                    now: NOW,
                    ..
                }
            ),
            "{error}"
        );

        let lenient = strict().leeway_seconds(30);
        assert!(verifier.verify(&token, &lenient, NOW + 29).is_ok());
        assert!(verifier.verify(&token, &lenient, NOW + 30).is_err());

        // RP-Initiated Logout: an expired id_token_hint still identifies the session.
        let hint = strict().allow_expired();
        assert!(verifier.verify(&token, &hint, NOW + 86_400 * 365).is_ok());
    }

    #[test]
    fn exp_is_required_and_must_be_a_number_even_when_expired_tokens_are_allowed() {
        let key = test_keys::eddsa();
        let validation = Validation::new().allow_expired();
        let verifier = test_keys::verifier();

        let missing = key.sign(None, &json!({"sub": "u"})).unwrap();
        let error = verifier.verify(&missing, &validation, NOW).unwrap_err();
        assert!(matches!(error, JoseError::MissingClaim("exp")), "{error}");

        let string = key.sign(None, &json!({"exp": "1800000000"})).unwrap();
        let error = verifier.verify(&string, &validation, NOW).unwrap_err();
        assert!(
            matches!(error, JoseError::InvalidClaim { claim: "exp", .. }),
            "{error}"
        );

        let fractional = key.sign(None, &json!({"exp": NOW as f64 + 0.5})).unwrap();
        assert!(
            verifier
                .verify(&fractional, &Validation::new(), NOW - 1)
                .is_ok()
        );
        assert!(
            verifier
                .verify(&fractional, &Validation::new(), NOW)
                .is_err()
        );
    }

    #[test]
    fn not_before_is_checked() {
        let token = test_keys::es256()
            .sign(None, &json!({"exp": NOW + 600, "nbf": NOW + 60}))
            .unwrap();
        let verifier = test_keys::verifier();
        let error = verifier
            .verify(&token, &Validation::new(), NOW)
            .unwrap_err();
        assert!(
            matches!(error, JoseError::NotYetValid { nbf, .. } if nbf == NOW + 60),
            "{error}"
        );
        assert!(
            verifier
                .verify(&token, &Validation::new().leeway_seconds(60), NOW)
                .is_ok()
        );
    }

    #[test]
    fn wrong_issuer_is_rejected() {
        let verifier = test_keys::verifier();
        let token = test_keys::es256()
            .sign(Some("JWT"), &claims(NOW + 300))
            .unwrap();
        let error = verifier
            .verify(&token, &strict().issuer("https://evil.example.com"), NOW)
            .unwrap_err();
        assert!(matches!(error, JoseError::WrongIssuer { .. }), "{error}");
        assert_eq!(
            error.to_string(),
            "token issuer is \"https://id.example.com\", expected \"https://evil.example.com\""
        );

        let no_iss = test_keys::es256()
            .sign(None, &json!({"exp": NOW + 300}))
            .unwrap();
        let error = verifier
            .verify(&no_iss, &Validation::new().issuer(ISSUER), NOW)
            .unwrap_err();
        assert!(matches!(error, JoseError::MissingClaim("iss")), "{error}");
    }

    #[test]
    fn audience_may_be_a_string_or_an_array() {
        let verifier = test_keys::verifier();
        let key = test_keys::es256();
        let table = [
            (json!("client-1"), true),
            (json!(["client-2", "client-1"]), true),
            (json!("client-2"), false),
            (json!(["client-2"]), false),
            (json!([]), false),
        ];
        for (aud, accepted) in table {
            let token = key
                .sign(None, &json!({"aud": aud, "exp": NOW + 300}))
                .unwrap();
            let result = verifier.verify(&token, &Validation::new().audience("client-1"), NOW);
            match result {
                Ok(_) => assert!(accepted, "{aud} accepted"),
                Err(JoseError::WrongAudience { .. }) => assert!(!accepted, "{aud} rejected"),
                Err(error) => panic!("{aud}: {error}"),
            }
        }
        let token = key
            .sign(None, &json!({"aud": 7, "exp": NOW + 300}))
            .unwrap();
        let error = verifier
            .verify(&token, &Validation::new().audience("client-1"), NOW)
            .unwrap_err();
        assert!(
            matches!(error, JoseError::InvalidClaim { claim: "aud", .. }),
            "{error}"
        );
    }

    #[test]
    fn typ_is_compared_as_a_media_type() {
        let verifier = test_keys::verifier();
        let key = test_keys::eddsa();
        let table = [
            (Some("logout+jwt"), "logout+jwt", true),
            (Some("application/logout+JWT"), "logout+jwt", true),
            (Some("JWT"), "logout+jwt", false),
            (None, "logout+jwt", false),
            (Some("jwt"), "JWT", true),
        ];
        for (typ, expected, accepted) in table {
            let token = key.sign(typ, &json!({"exp": NOW + 300})).unwrap();
            let result = verifier.verify(&token, &Validation::new().typ(expected), NOW);
            assert_eq!(result.is_ok(), accepted, "{typ:?} vs {expected}");
            if let Err(error) = result {
                assert!(matches!(error, JoseError::WrongType { .. }), "{error}");
            }
        }
    }

    #[test]
    fn malformed_tokens_are_rejected() {
        let verifier = test_keys::verifier();
        let token = test_keys::es256()
            .sign(Some("JWT"), &claims(NOW + 300))
            .unwrap();
        let padded_header = with_part(&token, 0, &format!("{}=", token.split('.').next().unwrap()));
        let array_header = with_part(&token, 0, &encode_json(&json!(["ES256", "ec-1"])));
        let crit = with_part(
            &token,
            0,
            &encode_json(&json!({"alg": "ES256", "kid": "ec-1", "crit": ["exp"], "exp": 1})),
        );
        let cases = [
            "".to_owned(),
            "a.b".to_owned(),
            "a.b.c.d.e".to_owned(),
            padded_header,
            array_header,
        ];
        for case in cases {
            let error = verifier.verify(&case, &strict(), NOW).unwrap_err();
            assert!(
                matches!(error, JoseError::MalformedToken(_)),
                "{case}: {error}"
            );
        }
        let error = verifier.verify(&crit, &strict(), NOW).unwrap_err();
        assert!(
            matches!(error, JoseError::UnsupportedCriticalHeader),
            "{error}"
        );
    }

    #[test]
    fn jwk_sets_with_inconsistent_or_duplicate_keys_are_refused() {
        let mut duplicate = test_keys::jwk_set();
        duplicate.keys.push(test_keys::es256().public_jwk().clone());
        let error = Verifier::new(&duplicate).unwrap_err();
        assert!(
            matches!(&error, JoseError::DuplicateKid(kid) if kid == "ec-1"),
            "{error}"
        );

        let mut mislabelled = test_keys::es256().public_jwk().clone();
        mislabelled.alg = Algorithm::RS256;
        let error = Verifier::new(&JwkSet {
            keys: vec![mislabelled],
        })
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid JWK \"ec-1\": a kty EC (P-256) key cannot be used with alg RS256"
        );

        let mut off_curve = test_keys::es256().public_jwk().clone();
        if let JwkKey::Ec { y, .. } = &mut off_curve.key {
            *y = b64::encode([7u8; 32]);
        }
        let error = Verifier::new(&JwkSet {
            keys: vec![off_curve],
        })
        .unwrap_err();
        assert!(matches!(error, JoseError::InvalidJwk { .. }), "{error}");
    }
}
