//! JOSE for Portcullis: signing ID tokens and logout tokens as compact JWS (RS256, ES256,
//! EdDSA/Ed25519), publishing the public keys as a JWK set, verifying tokens we issued (such as
//! an `id_token_hint`), and sealing private keys at rest under a master key.
//!
//! Keys are parsed once and kept in memory; signing never decodes key bytes.
//!
//! Why the compact JWS is assembled here rather than by `jsonwebtoken` 11: that crate re-parses
//! the key bytes on every `encode` (a cost on the logout fan-out's hot path), its RustCrypto
//! backend is pinned to `rsa` 0.9 (RUSTSEC-2023-0071, the Marvin timing leak), and its
//! validation reads the system clock. The signatures themselves come from aws-lc-rs (already in
//! the tree through rustls; built with the C compiler alone): P-256 signs in a fraction of the
//! time pure-Rust `p256` needs, and RSA signing is constant-time there. `tests/interop.rs`
//! proves that `jsonwebtoken` (on its RustCrypto backend, an independent implementation)
//! accepts our tokens and we accept its, and that keys sealed by earlier (RustCrypto) versions
//! still load.
//!
//! Deliberately absent: I/O, async, a database, the wall clock (verification takes the current
//! time as a parameter), and any other crate of ours. Randomness: key generation and signing
//! draw from aws-lc's generator (seeded by the OS); sealing takes the caller's RNG. One crypto
//! backend for signing: aws-lc-rs.

#![warn(missing_docs)]

mod algorithm;
mod b64;
mod error;
mod jwk;
mod sealed;
mod signing;
mod verify;

#[cfg(test)]
mod test_keys;

pub use algorithm::{Algorithm, HashFunction};
pub use error::JoseError;
pub use jwk::{EcCurve, JwkKey, JwkSet, KeyUse, OkpCurve, PublicJwk};
pub use sealed::{MasterKey, SealedKey};
pub use signing::{RSA_KEY_BITS, SigningKey};
pub use verify::{JwsHeader, Validation, Verified, Verifier};

/// The RNG traits `generate` and `seal` take (rand_core 0.10, shared with RustCrypto).
pub use rand_core;
/// The wrapper that wipes secret buffers on drop, as returned by `to_pkcs8_der`.
pub use zeroize::Zeroizing;
