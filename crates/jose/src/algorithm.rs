//! The signing algorithms we implement, by their JOSE names (RFC 7518, RFC 8037).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::JoseError;

/// A JWS signing algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3); mandatory for OpenID Providers.
    RS256,
    /// ECDSA on P-256 with SHA-256 (RFC 7518 §3.4).
    ES256,
    /// EdDSA on Ed25519 (RFC 8037); the only curve we use under this name.
    EdDSA,
}

/// A hash function, as used for OIDC's `at_hash` and `c_hash`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashFunction {
    /// SHA-256.
    Sha256,
    /// SHA-512.
    Sha512,
}

impl Algorithm {
    /// Every algorithm, RS256 first because OpenID Connect requires it.
    pub const ALL: &'static [Algorithm] = &[Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

    /// The JOSE name (`alg` header and JWK `alg` value).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::ES256 => "ES256",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    /// The algorithm with this JOSE name, if we implement it. Names are case-sensitive
    /// (RFC 7515 §4.1.1), so `"rs256"` is not RS256.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL
            .iter()
            .copied()
            .find(|algorithm| algorithm.name() == name)
    }

    /// The hash for `at_hash` / `c_hash` (OIDC Core §3.1.3.6): the one the `alg` uses, which for
    /// Ed25519 is SHA-512 (the choice OpenID Foundation certification settled on).
    pub fn token_hash_function(self) -> HashFunction {
        match self {
            Algorithm::RS256 | Algorithm::ES256 => HashFunction::Sha256,
            Algorithm::EdDSA => HashFunction::Sha512,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = JoseError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Algorithm::from_name(name).ok_or_else(|| JoseError::UnsupportedAlgorithm(name.to_owned()))
    }
}

impl Serialize for Algorithm {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Algorithm {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_case_sensitive() {
        for &algorithm in Algorithm::ALL {
            assert_eq!(algorithm.name().parse::<Algorithm>().unwrap(), algorithm);
            assert_eq!(algorithm.to_string(), algorithm.name());
        }
        for rejected in ["none", "rs256", "HS256", "Ed25519", "ES384", ""] {
            let error = rejected.parse::<Algorithm>().unwrap_err();
            assert!(
                matches!(error, JoseError::UnsupportedAlgorithm(_)),
                "{rejected}"
            );
        }
    }

    #[test]
    fn token_hash_follows_the_algorithm() {
        let table = [
            (Algorithm::RS256, HashFunction::Sha256),
            (Algorithm::ES256, HashFunction::Sha256),
            (Algorithm::EdDSA, HashFunction::Sha512),
        ];
        for (algorithm, hash) in table {
            assert_eq!(algorithm.token_hash_function(), hash, "{algorithm}");
        }
    }

    #[test]
    fn serde_uses_the_jose_name() {
        assert_eq!(
            serde_json::to_string(&Algorithm::EdDSA).unwrap(),
            "\"EdDSA\""
        );
        let parsed: Algorithm = serde_json::from_str("\"ES256\"").unwrap();
        assert_eq!(parsed, Algorithm::ES256);
        assert!(serde_json::from_str::<Algorithm>("\"none\"").is_err());
    }
}
