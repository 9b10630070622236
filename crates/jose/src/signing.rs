//! Private signing keys, parsed once and kept in memory, and compact JWS signing (RFC 7515 §7.1).

use std::fmt;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::jwk::{EcCurve, JwkKey, KeyUse, OkpCurve, PublicJwk};
use crate::{Algorithm, JoseError, b64};

/// Size of the RSA keys we generate, and the smallest we load (RFC 7518 §3.3 requires ≥ 2048).
pub const RSA_KEY_BITS: usize = 2048;

/// A private signing key with its key id and public JWK.
///
/// The key is parsed when it is created or loaded; `sign` never decodes key bytes. (We sign
/// with aws-lc-rs key pairs directly rather than through `jsonwebtoken::encode`, because that
/// re-parses the DER key on every call.)
pub struct SigningKey {
    alg: Algorithm,
    kid: String,
    private: PrivateKey,
    public_jwk: PublicJwk,
}

/// The parsed private key; the variant always agrees with `SigningKey::alg`.
enum PrivateKey {
    Rs256(RsaKeyPair),
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
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
    /// Generates a new key for `alg` (RSA keys are [`RSA_KEY_BITS`] bits), from aws-lc's
    /// random generator (seeded by the operating system).
    pub fn generate(alg: Algorithm, kid: impl Into<String>) -> Result<SigningKey, JoseError> {
        let failed = |_| JoseError::KeyGeneration {
            alg,
            reason: "the crypto library could not generate a key".to_owned(),
        };
        let private = match alg {
            Algorithm::RS256 => {
                PrivateKey::Rs256(RsaKeyPair::generate(KeySize::Rsa2048).map_err(failed)?)
            }
            Algorithm::ES256 => PrivateKey::Es256(
                EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(failed)?,
            ),
            Algorithm::EdDSA => PrivateKey::EdDsa(Ed25519KeyPair::generate().map_err(failed)?),
        };
        SigningKey::from_parts(alg, kid.into(), private)
    }

    /// Loads a key from its PKCS#8 DER encoding (as produced by [`SigningKey::to_pkcs8_der`],
    /// or by the RustCrypto keys of earlier versions: Ed25519 as PKCS#8 v1 or v2); the key
    /// must be of the kind `alg` uses.
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
        let rejected = |error: aws_lc_rs::error::KeyRejected| invalid(error.to_string());
        let private = match alg {
            Algorithm::RS256 => {
                let key = RsaKeyPair::from_pkcs8(der).map_err(rejected)?;
                let bits = key.public_modulus_len() * 8;
                if bits < RSA_KEY_BITS {
                    return Err(invalid(format!(
                        "{bits}-bit RSA key is shorter than the {RSA_KEY_BITS} bits RS256 requires"
                    )));
                }
                PrivateKey::Rs256(key)
            }
            Algorithm::ES256 => PrivateKey::Es256(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(rejected)?,
            ),
            Algorithm::EdDSA => PrivateKey::EdDsa(
                Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(rejected)?,
            ),
        };
        SigningKey::from_parts(alg, kid, private)
    }

    /// The private key as PKCS#8 (v1) DER, for sealing; the buffer is wiped when dropped.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, JoseError> {
        let encoded = match &self.private {
            PrivateKey::Rs256(key) => {
                AsDer::<Pkcs8V1Der>::as_der(key).map(|der| der.as_ref().to_vec())
            }
            PrivateKey::Es256(key) => key.to_pkcs8v1().map(|der| der.as_ref().to_vec()),
            PrivateKey::EdDsa(key) => key.to_pkcs8v1().map(|der| der.as_ref().to_vec()),
        }
        .map_err(|_| JoseError::KeyEncoding {
            alg: self.alg,
            kid: self.kid.clone(),
            reason: "the crypto library could not encode the key".to_owned(),
        })?;
        Ok(Zeroizing::new(encoded))
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
        let failed = |_| JoseError::SigningFailed {
            alg: self.alg,
            kid: self.kid.clone(),
            reason: "the crypto library could not sign".to_owned(),
        };
        Ok(match &self.private {
            PrivateKey::Rs256(key) => {
                let mut signature = vec![0; key.public_modulus_len()];
                key.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    signing_input,
                    &mut signature,
                )
                .map_err(failed)?;
                signature
            }
            PrivateKey::Es256(key) => key
                .sign(&SystemRandom::new(), signing_input)
                .map_err(failed)?
                .as_ref()
                .to_vec(),
            PrivateKey::EdDsa(key) => key
                .try_sign(signing_input)
                .map_err(failed)?
                .as_ref()
                .to_vec(),
        })
    }

    fn from_parts(
        alg: Algorithm,
        kid: String,
        private: PrivateKey,
    ) -> Result<SigningKey, JoseError> {
        let key = match &private {
            PrivateKey::Rs256(key) => {
                let public = key.public_key();
                JwkKey::Rsa {
                    n: b64::encode(public.modulus().big_endian_without_leading_zero()),
                    e: b64::encode(public.exponent().big_endian_without_leading_zero()),
                }
            }
            PrivateKey::Es256(key) => {
                // SEC1 uncompressed: 0x04, then x and y, 32 octets each.
                let point = key.public_key().as_ref();
                let (x, y) = match point {
                    [0x04, coordinates @ ..] if coordinates.len() == 64 => coordinates.split_at(32),
                    _ => {
                        return Err(JoseError::KeyEncoding {
                            alg,
                            kid,
                            reason: "the P-256 public key is not an uncompressed point".to_owned(),
                        });
                    }
                };
                JwkKey::Ec {
                    crv: EcCurve::P256,
                    x: b64::encode(x),
                    y: b64::encode(y),
                }
            }
            PrivateKey::EdDsa(key) => JwkKey::Okp {
                crv: OkpCurve::Ed25519,
                x: b64::encode(key.public_key().as_ref()),
            },
        };
        let public_jwk = PublicJwk {
            key,
            kid: kid.clone(),
            alg,
            key_use: KeyUse::Sig,
        };
        Ok(SigningKey {
            alg,
            kid,
            private,
            public_jwk,
        })
    }
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
        let first = SigningKey::generate(Algorithm::ES256, "a").unwrap();
        let second = SigningKey::generate(Algorithm::ES256, "a").unwrap();
        assert_ne!(first.public_jwk(), second.public_jwk());
    }

    #[test]
    fn debug_output_hides_the_private_key() {
        let printed = format!("{:?}", test_keys::eddsa());
        assert_eq!(printed, "SigningKey { alg: EdDSA, kid: \"okp-1\", .. }");
    }
}
