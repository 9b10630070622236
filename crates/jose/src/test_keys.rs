//! Keys shared by the unit tests: RSA generation is slow, so each key is made once per test
//! binary.

use std::sync::LazyLock;

use getrandom::SysRng;
use rand_core::UnwrapErr;

use crate::{Algorithm, JwkSet, SigningKey, Verifier};

static RS256: LazyLock<SigningKey> = LazyLock::new(|| generate(Algorithm::RS256, "rsa-1"));
static ES256: LazyLock<SigningKey> = LazyLock::new(|| generate(Algorithm::ES256, "ec-1"));
static EDDSA: LazyLock<SigningKey> = LazyLock::new(|| generate(Algorithm::EdDSA, "okp-1"));

/// The operating system's RNG.
pub(crate) fn rng() -> UnwrapErr<SysRng> {
    UnwrapErr(SysRng)
}

fn generate(alg: Algorithm, kid: &str) -> SigningKey {
    SigningKey::generate(alg, kid).unwrap()
}

pub(crate) fn rs256() -> &'static SigningKey {
    &RS256
}

pub(crate) fn es256() -> &'static SigningKey {
    &ES256
}

pub(crate) fn eddsa() -> &'static SigningKey {
    &EDDSA
}

pub(crate) fn all() -> [&'static SigningKey; 3] {
    [rs256(), es256(), eddsa()]
}

/// The three keys' public halves.
pub(crate) fn jwk_set() -> JwkSet {
    all().iter().map(|key| key.public_jwk().clone()).collect()
}

/// A verifier for the three keys.
pub(crate) fn verifier() -> Verifier {
    Verifier::new(&jwk_set()).unwrap()
}
