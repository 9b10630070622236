//! The one error type of this crate.

use crate::Algorithm;

/// Everything that can go wrong while handling keys or tokens. Messages say what was wrong and,
/// where it matters, whose fault it is (a bad token from outside, a bad key we hold, a misuse).
#[derive(Debug, thiserror::Error)]
pub enum JoseError {
    /// An algorithm name this crate does not implement (only RS256, ES256 and EdDSA are).
    #[error("unsupported JWS algorithm {0:?}: expected one of RS256, ES256, EdDSA")]
    UnsupportedAlgorithm(String),

    /// A private key could not be generated (the random number generator failed).
    #[error("could not generate a {alg} key: {reason}")]
    KeyGeneration {
        /// The algorithm of the key.
        alg: Algorithm,
        /// What the crypto library reported.
        reason: String,
    },

    /// Stored private key bytes are not a usable PKCS#8 key for the algorithm.
    #[error("invalid {alg} private key (PKCS#8 DER) for kid {kid:?}: {reason}")]
    InvalidPrivateKey {
        /// The algorithm the key was loaded for.
        alg: Algorithm,
        /// The key id it was loaded under.
        kid: String,
        /// What was wrong.
        reason: String,
    },

    /// A private key could not be encoded as PKCS#8.
    #[error("could not encode the {alg} key {kid:?} as PKCS#8: {reason}")]
    KeyEncoding {
        /// The algorithm of the key.
        alg: Algorithm,
        /// The key id.
        kid: String,
        /// What the encoder reported.
        reason: String,
    },

    /// The claims given to `sign` could not be serialized as a JSON object.
    #[error("token claims could not be serialized as a JSON object: {0}")]
    ClaimsNotSerializable(String),

    /// The signature primitive failed (for RSA: the blinding RNG failed).
    #[error("signing with the {alg} key {kid:?} failed: {reason}")]
    SigningFailed {
        /// The algorithm of the key.
        alg: Algorithm,
        /// The key id.
        kid: String,
        /// What the crypto library reported.
        reason: String,
    },

    /// A JWK is inconsistent (kty, crv and alg disagree) or its key material is unusable.
    #[error("invalid JWK {kid:?}: {reason}")]
    InvalidJwk {
        /// The key id of the JWK.
        kid: String,
        /// What was wrong.
        reason: String,
    },

    /// Two keys of one JWK set share a key id, so a token's `kid` would be ambiguous.
    #[error("the JWK set has more than one key with kid {0:?}")]
    DuplicateKid(String),

    /// The token is not a compact JWS (three base64url parts, JSON header and payload).
    #[error("malformed token: {0}")]
    MalformedToken(String),

    /// The token is unsecured (`alg: none`); only signed tokens are accepted.
    #[error("token is unsigned (alg \"none\"); only signed tokens are accepted")]
    UnsignedToken,

    /// The token's header names no key.
    #[error("token header has no kid, so no key can be chosen to verify it")]
    MissingKid,

    /// The token names a key that is not in the key set.
    #[error("token kid {0:?} is not a key of this issuer")]
    UnknownKid(String),

    /// The token's `alg` differs from the algorithm of the key its `kid` names.
    #[error("token alg {token_alg} does not match key {kid:?}, which is for {key_alg}")]
    AlgorithmMismatch {
        /// The key id.
        kid: String,
        /// The algorithm the key is published for.
        key_alg: Algorithm,
        /// The algorithm the token claims.
        token_alg: Algorithm,
    },

    /// The token's header carries critical extensions (`crit`), none of which we understand.
    #[error("token header lists critical extensions (crit), which are not supported")]
    UnsupportedCriticalHeader,

    /// The signature does not match the header and payload under the named key.
    #[error("token signature is invalid for key {kid:?}")]
    InvalidSignature {
        /// The key id the token named.
        kid: String,
    },

    /// The token's `typ` header is not the one expected.
    #[error("token typ is {found:?}, expected {expected:?}")]
    WrongType {
        /// The expected `typ`.
        expected: String,
        /// The `typ` found, if any.
        found: Option<String>,
    },

    /// A claim the checks need is absent.
    #[error("token has no {0} claim")]
    MissingClaim(&'static str),

    /// A claim has the wrong JSON type.
    #[error("token claim {claim} is malformed: {reason}")]
    InvalidClaim {
        /// The claim name.
        claim: &'static str,
        /// What was wrong.
        reason: String,
    },

    /// The token expired (`exp` plus leeway is not after the current time).
    #[error("token expired at {exp} (now {now}, leeway {leeway_seconds}s)")]
    Expired {
        /// The token's `exp`.
        exp: i64,
        /// The current time given to the verifier.
        now: i64,
        /// The leeway allowed.
        leeway_seconds: i64,
    },

    /// The token is not valid yet (`nbf` minus leeway is after the current time).
    #[error("token not valid before {nbf} (now {now}, leeway {leeway_seconds}s)")]
    NotYetValid {
        /// The token's `nbf`.
        nbf: i64,
        /// The current time given to the verifier.
        now: i64,
        /// The leeway allowed.
        leeway_seconds: i64,
    },

    /// The token's `iss` is not the expected issuer.
    #[error("token issuer is {found:?}, expected {expected:?}")]
    WrongIssuer {
        /// The expected issuer.
        expected: String,
        /// The issuer found.
        found: String,
    },

    /// The token's `aud` does not contain the expected audience.
    #[error("token audience {found} does not include {expected:?}")]
    WrongAudience {
        /// The expected audience.
        expected: String,
        /// The `aud` found, as JSON.
        found: String,
    },

    /// The verified claims do not have the shape of the requested type.
    #[error("token claims do not have the expected shape: {0}")]
    ClaimsShape(String),

    /// A master key is not 32 bytes of standard base64.
    #[error("invalid master key: {0}")]
    InvalidMasterKey(String),

    /// Encrypting a key for storage failed.
    #[error("sealing key {kid:?} failed: {reason}")]
    SealingFailed {
        /// The key id.
        kid: String,
        /// What was wrong.
        reason: String,
    },

    /// A sealed key did not decrypt: the master key is not the one it was sealed with, or the
    /// stored blob (ciphertext, nonce, alg or kid) was altered.
    #[error("sealed key {kid:?} could not be decrypted: wrong master key or corrupted data")]
    SealedKeyUnreadable {
        /// The key id recorded with the sealed key.
        kid: String,
    },
}
