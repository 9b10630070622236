//! Private signing keys, parsed once and kept in memory, and compact JWS signing (RFC 7515 §7.1).

use std::fmt;

use p256::elliptic_curve::Generate;
use rand_core::CryptoRng;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rsa::sha2::Sha256;
use rsa::signature::Signer;
use rsa::traits::PublicKeyParts;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::jwk::{EcCurve, JwkKey, KeyUse, OkpCurve, PublicJwk};
use crate::{Algorithm, JoseError, b64};

/// Size of the RSA keys we generate, and the smallest we load (RFC 7518 §3.3 requires ≥ 2048).
pub const RSA_KEY_BITS: usize = 2048;

/// A private signing key with its key id and public JWK.
///
/// The key is parsed when it is created or loaded; `sign` never decodes key bytes. (We sign
/// with the RustCrypto keys directly rather than through `jsonwebtoken::encode`, because that
/// re-parses the DER key on every call.)
pub struct SigningKey {
    alg: Algorithm,
    kid: String,
    private: PrivateKey,
    public_jwk: PublicJwk,
}

/// The parsed private key; the variant always agrees with `SigningKey::alg`.
enum PrivateKey {
    // Boxed: an RSA key with its precomputed CRT values is far larger than the others.
    Rs256(Box<rsa::pkcs1v15::SigningKey<Sha256>>),
    Es256(p256::ecdsa::SigningKey),
    EdDsa(ed25519_dalek::SigningKey),
}

/// The protected header we write: only what a verifier needs.
#[derive(Serialize)]
struct HeaderOut<'a> {
    alg: Algorithm,
    #[serde(skip_serializing_if = "Option::is_none")]
    typ: Option<&'a str>,
    kid: &'a str,
}

impl SigningKey {
    /// Generates a new key for `alg` (RSA keys are [`RSA_KEY_BITS`] bits).
    pub fn generate<R: CryptoRng + ?Sized>(
        alg: Algorithm,
        kid: impl Into<String>,
        rng: &mut R,
    ) -> Result<SigningKey, JoseError> {
        let private = match alg {
            Algorithm::RS256 => {
                let key = rsa::PrivateKey::new(rng, RSA_KEY_BITS).map_err(|error| {
                    JoseError::KeyGeneration {
                        alg,
                        reason: error.to_string(),
                    }
                })?;
                PrivateKey::Rs256(Box::new(rsa::pkcs1v15::SigningKey::new(key)))
            }
            Algorithm::ES256 => PrivateKey::Es256(p256::ecdsa::SigningKey::generate_from_rng(rng)),
            Algorithm::EdDSA => PrivateKey::EdDsa(ed25519_dalek::SigningKey::generate(rng)),
        };
        Ok(SigningKey::from_parts(alg, kid.into(), private))
    }

    /// Loads a key from its PKCS#8 DER encoding (as produced by [`SigningKey::to_pkcs8_der`]);
    /// the key must be of the kind `alg` uses.
    pub fn from_pkcs8_der(
        alg: Algorithm,
        kid: impl Into<String>,
        der: &[u8],
    ) -> Result<SigningKey, JoseError> {
        let kid = kid.into();
        let invalid = |reason: String| JoseError::InvalidPrivateKey {
            alg,
            kid: kid.clone(),
            reason,
        };
        let private = match alg {
            Algorithm::RS256 => {
                let key = rsa::PrivateKey::from_pkcs8_der(der)
                    .map_err(|error| invalid(error.to_string()))?;
                let bits = key.size() * 8;
                if bits < RSA_KEY_BITS {
                    return Err(invalid(format!(
                        "{bits}-bit RSA key is shorter than the {RSA_KEY_BITS} bits RS256 requires"
                    )));
                }
                PrivateKey::Rs256(Box::new(rsa::pkcs1v15::SigningKey::new(key)))
            }
            Algorithm::ES256 => PrivateKey::Es256(
                p256::ecdsa::SigningKey::from_pkcs8_der(der)
                    .map_err(|error| invalid(error.to_string()))?,
            ),
            Algorithm::EdDSA => PrivateKey::EdDsa(
                ed25519_dalek::SigningKey::from_pkcs8_der(der)
                    .map_err(|error| invalid(error.to_string()))?,
            ),
        };
        Ok(SigningKey::from_parts(alg, kid, private))
    }

    /// The private key as PKCS#8 DER, for sealing; the buffer is wiped when dropped.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, JoseError> {
        let document = match &self.private {
            PrivateKey::Rs256(key) => rsa_private_key(key).to_pkcs8_der(),
            PrivateKey::Es256(key) => key.to_pkcs8_der(),
            PrivateKey::EdDsa(key) => key.to_pkcs8_der(),
        }
        .map_err(|error| JoseError::KeyEncoding {
            alg: self.alg,
            kid: self.kid.clone(),
            reason: error.to_string(),
        })?;
        Ok(Zeroizing::new(document.as_bytes().to_vec()))
    }

    /// The algorithm this key signs with.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The key id written into every token's `kid` header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half, as published in the JWK set.
    pub fn public_jwk(&self) -> &PublicJwk {
        &self.public_jwk
    }

    /// Signs `claims` (which must serialize to a JSON object) as a compact JWS whose protected
    /// header carries `alg`, `kid` and, if given, `typ` (`"JWT"` for ID tokens, `"logout+jwt"`
    /// for logout tokens).
    pub fn sign(&self, typ: Option<&str>, claims: &impl Serialize) -> Result<String, JoseError> {
        let payload = serde_json::to_vec(claims)
            .map_err(|error| JoseError::ClaimsNotSerializable(error.to_string()))?;
        // serde_json writes compactly, so an object is exactly an output starting with '{'.
        if payload.first() != Some(&b'{') {
            return Err(JoseError::ClaimsNotSerializable(
                "a JWT claims set must be a JSON object".to_owned(),
            ));
        }
        let header = HeaderOut {
            alg: self.alg,
            typ,
            kid: &self.kid,
        };
        // A struct of strings always serializes.
        let header = serde_json::to_vec(&header).expect("JWS header serializes");

        let mut token = b64::encode(header);
        token.push('.');
        token.push_str(&b64::encode(payload));
        let signature = self.sign_bytes(token.as_bytes())?;
        token.push('.');
        token.push_str(&b64::encode(signature));
        Ok(token)
    }

    /// The raw JWS signature over the signing input, in the JOSE encoding for the algorithm
    /// (ECDSA as fixed-width r‖s, not DER).
    fn sign_bytes(&self, signing_input: &[u8]) -> Result<Vec<u8>, JoseError> {
        let failed = |error: rsa::signature::Error| JoseError::SigningFailed {
            alg: self.alg,
            kid: self.kid.clone(),
            reason: error.to_string(),
        };
        Ok(match &self.private {
            PrivateKey::Rs256(key) => {
                let signature: rsa::pkcs1v15::Signature =
                    key.try_sign(signing_input).map_err(failed)?;
                rsa::signature::SignatureEncoding::to_vec(&signature)
            }
            PrivateKey::Es256(key) => {
                let signature: p256::ecdsa::Signature =
                    key.try_sign(signing_input).map_err(failed)?;
                signature.to_bytes().to_vec()
            }
            PrivateKey::EdDsa(key) => key.try_sign(signing_input).map_err(failed)?.to_vec(),
        })
    }

    fn from_parts(alg: Algorithm, kid: String, private: PrivateKey) -> SigningKey {
        let key = match &private {
            PrivateKey::Rs256(key) => {
                let public = rsa_private_key(key).as_public_key();
                JwkKey::Rsa {
                    n: b64::encode(public.n_bytes()),
                    e: b64::encode(public.e_bytes()),
                }
            }
            PrivateKey::Es256(key) => {
                let point = key.verifying_key().to_sec1_point(false);
                // An uncompressed, non-identity SEC1 point always has both coordinates.
                let (x, y) = (
                    point.x().expect("uncompressed point has x"),
                    point.y().expect("uncompressed point has y"),
                );
                JwkKey::Ec {
                    crv: EcCurve::P256,
                    x: b64::encode(x),
                    y: b64::encode(y),
                }
            }
            PrivateKey::EdDsa(key) => JwkKey::Okp {
                crv: OkpCurve::Ed25519,
                x: b64::encode(key.verifying_key().as_bytes()),
            },
        };
        let public_jwk = PublicJwk {
            key,
            kid: kid.clone(),
            alg,
            key_use: KeyUse::Sig,
        };
        SigningKey {
            alg,
            kid,
            private,
            public_jwk,
        }
    }
}

/// The RSA key inside a PKCS#1 v1.5 signing key (which is generic over `AsRef`, hence the help).
fn rsa_private_key(key: &rsa::pkcs1v15::SigningKey<Sha256>) -> &rsa::PrivateKey {
    key.as_ref()
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print private key material, even in test failures or logs.
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::test_keys;

    fn decode_part(part: &str) -> Value {
        serde_json::from_slice(&b64::decode(part).unwrap()).unwrap()
    }

    #[test]
    fn header_carries_alg_kid_and_typ() {
        for key in test_keys::all() {
            let token = key.sign(Some("logout+jwt"), &json!({"sub": "u"})).unwrap();
            let parts: Vec<&str> = token.split('.').collect();
            assert_eq!(parts.len(), 3);
            let header = decode_part(parts[0]);
            assert_eq!(
                header,
                json!({"alg": key.alg().name(), "kid": key.kid(), "typ": "logout+jwt"})
            );
            assert_eq!(decode_part(parts[1]), json!({"sub": "u"}));
        }
    }

    #[test]
    fn typ_is_left_out_when_not_given() {
        let token = test_keys::es256().sign(None, &json!({})).unwrap();
        let header = decode_part(token.split('.').next().unwrap());
        assert_eq!(header, json!({"alg": "ES256", "kid": "ec-1"}));
    }

    #[test]
    fn signatures_have_the_jose_encoding_length() {
        let table = [
            (test_keys::rs256(), 256),
            (test_keys::es256(), 64),
            (test_keys::eddsa(), 64),
        ];
        for (key, length) in table {
            let token = key.sign(Some("JWT"), &json!({})).unwrap();
            let signature = b64::decode(token.rsplit('.').next().unwrap()).unwrap();
            assert_eq!(signature.len(), length, "{}", key.alg());
        }
    }

    #[test]
    fn claims_must_be_a_json_object() {
        let error = test_keys::eddsa()
            .sign(Some("JWT"), &"just a string")
            .unwrap_err();
        assert!(
            matches!(error, JoseError::ClaimsNotSerializable(_)),
            "{error}"
        );
    }

    #[test]
    fn pkcs8_round_trip_keeps_the_key() {
        for key in test_keys::all() {
            let der = key.to_pkcs8_der().unwrap();
            let loaded = SigningKey::from_pkcs8_der(key.alg(), key.kid(), &der).unwrap();
            assert_eq!(loaded.public_jwk(), key.public_jwk(), "{}", key.alg());
        }
    }

    #[test]
    fn pkcs8_of_another_algorithm_is_rejected() {
        let table = [
            (Algorithm::RS256, test_keys::es256()),
            (Algorithm::ES256, test_keys::eddsa()),
            (Algorithm::EdDSA, test_keys::rs256()),
        ];
        for (alg, other_key) in table {
            let der = other_key.to_pkcs8_der().unwrap();
            let error = SigningKey::from_pkcs8_der(alg, "k", &der).unwrap_err();
            assert!(
                matches!(error, JoseError::InvalidPrivateKey { .. }),
                "{error}"
            );
        }
        let error = SigningKey::from_pkcs8_der(Algorithm::ES256, "k", b"garbage").unwrap_err();
        assert!(
            error.to_string().starts_with("invalid ES256 private key"),
            "{error}"
        );
    }

    #[test]
    fn generated_keys_differ() {
        let mut rng = test_keys::rng();
        let first = SigningKey::generate(Algorithm::ES256, "a", &mut rng).unwrap();
        let second = SigningKey::generate(Algorithm::ES256, "a", &mut rng).unwrap();
        assert_ne!(first.public_jwk(), second.public_jwk());
    }

    #[test]
    fn debug_output_hides_the_private_key() {
        let printed = format!("{:?}", test_keys::eddsa());
        assert_eq!(printed, "SigningKey { alg: EdDSA, kid: \"okp-1\", .. }");
    }
}
