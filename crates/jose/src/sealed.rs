//! Private keys sealed at rest with AES-256-GCM under a master key from configuration.
//!
//! The associated data binds the algorithm and key id, so a stored blob cannot be relabelled as
//! another key (or reused under another algorithm) without failing to open.

use std::fmt;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::{Algorithm, JoseError, SigningKey, b64};

/// Length of an AES-GCM nonce: 96 bits, the size GCM is designed for.
const NONCE_LEN: usize = 12;

/// Domain separation and a version, should the sealing scheme ever change.
const AAD_LABEL: &[u8] = b"portcullis/jose/sealed-key/v1";

/// The 256-bit key that seals signing keys at rest. Wiped from memory when dropped.
pub struct MasterKey(Zeroizing<[u8; MasterKey::LEN]>);

impl MasterKey {
    /// Length of a master key in bytes.
    pub const LEN: usize = 32;

    /// A fresh random master key.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> MasterKey {
        let mut bytes = Zeroizing::new([0u8; MasterKey::LEN]);
        rng.fill_bytes(bytes.as_mut());
        MasterKey(bytes)
    }

    /// A master key from its raw bytes.
    pub fn from_bytes(bytes: [u8; MasterKey::LEN]) -> MasterKey {
        MasterKey(Zeroizing::new(bytes))
    }

    /// Reads standard, padded base64 (what `openssl rand -base64 32` prints); surrounding
    /// whitespace is ignored.
    pub fn from_base64(text: &str) -> Result<MasterKey, JoseError> {
        let decoded = Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .map_err(|error| JoseError::InvalidMasterKey(format!("not base64: {error}")))?,
        );
        let bytes: [u8; MasterKey::LEN] = decoded.as_slice().try_into().map_err(|_| {
            JoseError::InvalidMasterKey(format!(
                "{} bytes, expected {}",
                decoded.len(),
                MasterKey::LEN
            ))
        })?;
        Ok(MasterKey::from_bytes(bytes))
    }

    /// The key as standard, padded base64 (the form `from_base64` reads).
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.0.as_ref()))
    }

    fn cipher(&self) -> Aes256Gcm {
        // The key is exactly 32 bytes by construction.
        Aes256Gcm::new_from_slice(self.0.as_ref()).expect("AES-256 key is 32 bytes")
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

/// A private signing key encrypted for storage (for instance in an event payload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedKey {
    /// The key's algorithm (authenticated, not secret).
    pub alg: Algorithm,
    /// The key id (authenticated, not secret).
    pub kid: String,
    /// The random 96-bit AES-GCM nonce, base64url in JSON.
    #[serde(with = "b64::serde_bytes")]
    pub nonce: Vec<u8>,
    /// The PKCS#8 DER key encrypted with its 128-bit tag appended, base64url in JSON.
    #[serde(with = "b64::serde_bytes")]
    pub ciphertext: Vec<u8>,
}

impl SealedKey {
    /// Encrypts `key` under `master` with a fresh random nonce from `rng`.
    pub fn seal<R: CryptoRng + ?Sized>(
        master: &MasterKey,
        key: &SigningKey,
        rng: &mut R,
    ) -> Result<SealedKey, JoseError> {
        let plaintext = key.to_pkcs8_der()?;
        let mut nonce = [0u8; NONCE_LEN];
        // Random nonces are safe for far more keys than an issuer will ever seal (2^32 per key).
        rng.fill_bytes(&mut nonce);
        let aad = associated_data(key.alg(), key.kid());
        let ciphertext = master
            .cipher()
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &plaintext,
                    aad: &aad,
                },
            )
            .map_err(|error| JoseError::SealingFailed {
                kid: key.kid().to_owned(),
                reason: error.to_string(),
            })?;
        Ok(SealedKey {
            alg: key.alg(),
            kid: key.kid().to_owned(),
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    /// Decrypts and parses the key; fails if `master` is not the key it was sealed with or if
    /// any field was altered.
    pub fn open(&self, master: &MasterKey) -> Result<SigningKey, JoseError> {
        let unreadable = || JoseError::SealedKeyUnreadable {
            kid: self.kid.clone(),
        };
        let nonce: [u8; NONCE_LEN] = self.nonce.as_slice().try_into().map_err(|_| unreadable())?;
        let aad = associated_data(self.alg, &self.kid);
        let plaintext = master
            .cipher()
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &self.ciphertext,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| unreadable())?;
        SigningKey::from_pkcs8_der(self.alg, self.kid.clone(), &plaintext)
    }
}

/// `label NUL alg NUL kid`: unambiguous because no algorithm name contains NUL.
fn associated_data(alg: Algorithm, kid: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_LABEL.len() + kid.len() + 8);
    aad.extend_from_slice(AAD_LABEL);
    aad.push(0);
    aad.extend_from_slice(alg.name().as_bytes());
    aad.push(0);
    aad.extend_from_slice(kid.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::test_keys;

    fn master() -> MasterKey {
        MasterKey::generate(&mut test_keys::rng())
    }

    fn assert_unreadable(sealed: &SealedKey, master: &MasterKey) {
        let error = sealed.open(master).unwrap_err();
        assert!(
            matches!(error, JoseError::SealedKeyUnreadable { .. }),
            "{error}"
        );
        assert_eq!(
            error.to_string(),
            format!(
                "sealed key {:?} could not be decrypted: wrong master key or corrupted data",
                sealed.kid
            )
        );
    }

    #[test]
    fn seal_and_open_round_trip() {
        let master = master();
        for key in test_keys::all() {
            let sealed = SealedKey::seal(&master, key, &mut test_keys::rng()).unwrap();
            assert_eq!((sealed.alg, sealed.kid.as_str()), (key.alg(), key.kid()));
            assert_eq!(sealed.nonce.len(), NONCE_LEN);
            let opened = sealed.open(&master).unwrap();
            assert_eq!(opened.public_jwk(), key.public_jwk());
        }
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let master = master();
        let key = test_keys::eddsa();
        let first = SealedKey::seal(&master, key, &mut test_keys::rng()).unwrap();
        let second = SealedKey::seal(&master, key, &mut test_keys::rng()).unwrap();
        assert_ne!(first.nonce, second.nonce);
        assert_ne!(first.ciphertext, second.ciphertext);
    }

    #[test]
    fn wrong_master_key_is_rejected() {
        let sealed = SealedKey::seal(&master(), test_keys::es256(), &mut test_keys::rng()).unwrap();
        assert_unreadable(&sealed, &master());
    }

    #[test]
    fn tampering_is_rejected() {
        let master = master();
        let sealed = SealedKey::seal(&master, test_keys::es256(), &mut test_keys::rng()).unwrap();

        let mut flipped = sealed.clone();
        flipped.ciphertext[3] ^= 0x80;
        let mut truncated = sealed.clone();
        truncated.ciphertext.pop();
        let mut nonce = sealed.clone();
        nonce.nonce[0] ^= 0x01;
        let mut short_nonce = sealed.clone();
        short_nonce.nonce.pop();
        let mut relabelled_kid = sealed.clone();
        relabelled_kid.kid = "ec-2".to_owned();
        let mut relabelled_alg = sealed.clone();
        relabelled_alg.alg = Algorithm::EdDSA;

        for tampered in [
            flipped,
            truncated,
            nonce,
            short_nonce,
            relabelled_kid,
            relabelled_alg,
        ] {
            assert_unreadable(&tampered, &master);
        }
    }

    #[test]
    fn sealed_key_json_uses_unpadded_base64url() {
        let sealed = SealedKey::seal(&master(), test_keys::eddsa(), &mut test_keys::rng()).unwrap();
        let json = serde_json::to_value(&sealed).unwrap();
        let object = json.as_object().unwrap();
        let mut names: Vec<&str> = object.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["alg", "ciphertext", "kid", "nonce"]);
        assert_eq!(json["alg"], "EdDSA");
        for field in ["nonce", "ciphertext"] {
            let text = json[field].as_str().unwrap();
            assert!(!text.contains(['=', '+', '/']), "{field}: {text}");
        }
        let parsed: SealedKey = serde_json::from_value(json).unwrap();
        assert_eq!(parsed, sealed);

        let bad = json!({"alg": "EdDSA", "kid": "k", "nonce": "not base64!", "ciphertext": ""});
        assert!(serde_json::from_value::<SealedKey>(bad).is_err());
        let _: Value = serde_json::to_value(&parsed).unwrap();
    }

    #[test]
    fn master_key_base64_round_trip_and_errors() {
        let master = master();
        let text = master.to_base64();
        assert_eq!(text.len(), 44, "32 bytes in padded base64");
        let parsed = MasterKey::from_base64(&format!("  {}\n", text.as_str())).unwrap();
        assert_eq!(parsed.to_base64(), text);

        let short = MasterKey::from_base64("AAAA").unwrap_err();
        assert_eq!(
            short.to_string(),
            "invalid master key: 3 bytes, expected 32"
        );
        let garbage = MasterKey::from_base64("not base64 at all!").unwrap_err();
        assert!(
            matches!(garbage, JoseError::InvalidMasterKey(_)),
            "{garbage}"
        );
        assert_eq!(format!("{master:?}"), "MasterKey([redacted])");
    }
}
