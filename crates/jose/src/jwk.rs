//! Public keys as JSON Web Keys (RFC 7517), with the RSA and EC members of RFC 7518 §6 and the
//! OKP members of RFC 8037 §2. Only what we publish at `jwks_uri` is modelled: signature keys
//! for RS256, ES256 and EdDSA (Ed25519).

use serde::{Deserialize, Serialize};

use crate::Algorithm;

/// One public signing key, as published in a JWK set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicJwk {
    /// The key type and its public parameters (`kty` and the members it implies).
    #[serde(flatten)]
    pub key: JwkKey,
    /// The key id, which tokens name in their `kid` header.
    pub kid: String,
    /// The one algorithm this key is used with; a token claiming another is rejected.
    pub alg: Algorithm,
    /// What the key is for; always `sig` here.
    #[serde(rename = "use")]
    pub key_use: KeyUse,
}

/// The `kty` of a JWK and its public parameters, each unpadded base64url.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kty")]
pub enum JwkKey {
    /// An RSA public key (RFC 7518 §6.3.1).
    #[serde(rename = "RSA")]
    Rsa {
        /// The modulus, big-endian, without leading zero octets.
        n: String,
        /// The public exponent, big-endian, without leading zero octets (65537 is `AQAB`).
        e: String,
    },
    /// An elliptic-curve public key (RFC 7518 §6.2.1).
    #[serde(rename = "EC")]
    Ec {
        /// The curve.
        crv: EcCurve,
        /// The x coordinate, the full 32 octets for P-256.
        x: String,
        /// The y coordinate, the full 32 octets for P-256.
        y: String,
    },
    /// An octet key pair's public half (RFC 8037 §2).
    #[serde(rename = "OKP")]
    Okp {
        /// The curve.
        crv: OkpCurve,
        /// The 32-octet public key.
        x: String,
    },
}

/// The curves of `kty: EC` keys we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EcCurve {
    /// NIST P-256, for ES256.
    #[serde(rename = "P-256")]
    P256,
}

/// The curves of `kty: OKP` keys we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OkpCurve {
    /// Ed25519, for EdDSA.
    Ed25519,
}

/// The JWK `use` member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyUse {
    /// The key verifies signatures.
    #[serde(rename = "sig")]
    Sig,
}

/// A JWK set: the document served at the `jwks_uri`, `{"keys": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    /// The keys, in publication order.
    pub keys: Vec<PublicJwk>,
}

impl JwkSet {
    /// The key with this key id, if present.
    pub fn find(&self, kid: &str) -> Option<&PublicJwk> {
        self.keys.iter().find(|jwk| jwk.kid == kid)
    }
}

impl FromIterator<PublicJwk> for JwkSet {
    fn from_iter<I: IntoIterator<Item = PublicJwk>>(keys: I) -> Self {
        JwkSet {
            keys: keys.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::test_keys;

    fn field_names(jwk: &Value) -> Vec<&str> {
        let mut names: Vec<&str> = jwk
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        names
    }

    fn assert_unpadded_base64url(value: &Value, decoded_len: Option<usize>) {
        let text = value.as_str().unwrap();
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{text:?} is not unpadded base64url"
        );
        if let Some(expected) = decoded_len {
            assert_eq!(
                crate::b64::decode(text).unwrap().len(),
                expected,
                "{text:?}"
            );
        }
    }

    #[test]
    fn rsa_jwk_has_the_rfc_7518_members() {
        let jwk = serde_json::to_value(test_keys::rs256().public_jwk()).unwrap();
        assert_eq!(field_names(&jwk), ["alg", "e", "kid", "kty", "n", "use"]);
        assert_eq!(jwk["kty"], "RSA");
        assert_eq!(jwk["alg"], "RS256");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["e"], "AQAB", "65537 without leading zero octets");
        assert_unpadded_base64url(&jwk["n"], Some(256));
    }

    #[test]
    fn ec_jwk_has_the_rfc_7518_members() {
        let jwk = serde_json::to_value(test_keys::es256().public_jwk()).unwrap();
        assert_eq!(
            field_names(&jwk),
            ["alg", "crv", "kid", "kty", "use", "x", "y"]
        );
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], "P-256");
        assert_eq!(jwk["alg"], "ES256");
        assert_eq!(jwk["use"], "sig");
        assert_unpadded_base64url(&jwk["x"], Some(32));
        assert_unpadded_base64url(&jwk["y"], Some(32));
    }

    #[test]
    fn okp_jwk_has_the_rfc_8037_members() {
        let jwk = serde_json::to_value(test_keys::eddsa().public_jwk()).unwrap();
        assert_eq!(field_names(&jwk), ["alg", "crv", "kid", "kty", "use", "x"]);
        assert_eq!(jwk["kty"], "OKP");
        assert_eq!(jwk["crv"], "Ed25519");
        assert_eq!(jwk["alg"], "EdDSA");
        assert_eq!(jwk["use"], "sig");
        assert_unpadded_base64url(&jwk["x"], Some(32));
    }

    #[test]
    fn jwk_set_serializes_as_keys_array_and_round_trips() {
        let set = test_keys::jwk_set();
        let json = serde_json::to_value(&set).unwrap();
        assert_eq!(field_names(&json), ["keys"]);
        assert_eq!(json["keys"].as_array().unwrap().len(), 3);
        let parsed: JwkSet = serde_json::from_value(json).unwrap();
        assert_eq!(parsed, set);
        assert_eq!(parsed.find("ec-1").unwrap().alg, Algorithm::ES256);
        assert!(parsed.find("nope").is_none());
    }

    #[test]
    fn parsing_rejects_unknown_key_types_curves_and_uses() {
        let rejected = [
            json!({"kty": "oct", "k": "AAAA", "kid": "a", "alg": "RS256", "use": "sig"}),
            json!({"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA", "kid": "a", "alg": "ES256", "use": "sig"}),
            json!({"kty": "OKP", "crv": "X25519", "x": "AA", "kid": "a", "alg": "EdDSA", "use": "sig"}),
            json!({"kty": "RSA", "n": "AA", "e": "AQAB", "kid": "a", "alg": "RS256", "use": "enc"}),
            json!({"kty": "RSA", "n": "AA", "e": "AQAB", "kid": "a", "alg": "none", "use": "sig"}),
        ];
        for jwk in rejected {
            assert!(
                serde_json::from_value::<PublicJwk>(jwk.clone()).is_err(),
                "{jwk}"
            );
        }
    }
}
