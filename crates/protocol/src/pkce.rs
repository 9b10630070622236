//! Proof Key for Code Exchange (RFC 7636), `S256` only: `plain` protects nothing against an
//! attacker who sees the authorization request, so we do not offer it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{ErrorCode, OAuthError};

/// The only `code_challenge_method` we accept.
pub const S256: &str = "S256";

/// A syntactically valid `code_verifier`: 43 to 128 characters of `[A-Za-z0-9-._~]`
/// (RFC 7636 §4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeVerifier(String);

impl CodeVerifier {
    /// Checks the RFC 7636 §4.1 syntax; a malformed verifier is `invalid_request`.
    pub fn parse(value: &str) -> Result<CodeVerifier, OAuthError> {
        let well_formed = (43..=128).contains(&value.len()) && value.bytes().all(is_unreserved);
        if well_formed {
            Ok(CodeVerifier(value.to_string()))
        } else {
            Err(OAuthError::invalid_request(
                "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
            ))
        }
    }

    /// The verifier as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An `S256` code challenge: the base64url (no padding) SHA-256 of a verifier, so exactly 43
/// characters of the base64url alphabet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    /// Checks that `value` can be an `S256` challenge; anything else is `invalid_request`.
    pub fn parse_s256(value: &str) -> Result<CodeChallenge, OAuthError> {
        let well_formed = value.len() == 43
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if well_formed {
            Ok(CodeChallenge(value.to_string()))
        } else {
            Err(OAuthError::invalid_request(
                "code_challenge is not a base64url-encoded SHA-256 value",
            ))
        }
    }

    /// The challenge for `verifier`: `BASE64URL(SHA256(ASCII(code_verifier)))`.
    pub fn from_verifier(verifier: &CodeVerifier) -> CodeChallenge {
        CodeChallenge(URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.0.as_bytes())))
    }

    /// The challenge as stored with the code.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `verifier` hashes to this challenge, compared in constant time.
    pub fn is_satisfied_by(&self, verifier: &CodeVerifier) -> bool {
        let computed = CodeChallenge::from_verifier(verifier);
        computed.0.as_bytes().ct_eq(self.0.as_bytes()).into()
    }
}

/// The token endpoint's PKCE check for a code issued with `challenge` (if any) and redeemed
/// with `verifier` (if any).
///
/// Both absent: no PKCE. A challenge without a verifier, or a verifier that does not match,
/// is `invalid_grant` (RFC 7636 §4.6). A verifier for a code issued without a challenge is
/// `invalid_grant` too: accepting it would let an attacker who injected a stolen code pass
/// off a PKCE-less code as protected (the PKCE downgrade of the OAuth security BCP).
pub fn verify(
    challenge: Option<&CodeChallenge>,
    verifier: Option<&CodeVerifier>,
) -> Result<(), OAuthError> {
    match (challenge, verifier) {
        (None, None) => Ok(()),
        (Some(challenge), Some(verifier)) if challenge.is_satisfied_by(verifier) => Ok(()),
        (Some(_), Some(_)) => Err(OAuthError::new(
            ErrorCode::InvalidGrant,
            "code_verifier does not match the code_challenge",
        )),
        (Some(_), None) => Err(OAuthError::new(
            ErrorCode::InvalidGrant,
            "code_verifier is missing",
        )),
        (None, Some(_)) => Err(OAuthError::new(
            ErrorCode::InvalidGrant,
            "code_verifier sent for a code issued without code_challenge",
        )),
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 Appendix B.
    const RFC_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const RFC_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc_7636_appendix_b_vector() {
        let verifier = CodeVerifier::parse(RFC_VERIFIER).unwrap();
        assert_eq!(
            CodeChallenge::from_verifier(&verifier).as_str(),
            RFC_CHALLENGE
        );
        let challenge = CodeChallenge::parse_s256(RFC_CHALLENGE).unwrap();
        assert!(challenge.is_satisfied_by(&verifier));
    }

    #[test]
    fn verifier_syntax_table() {
        let cases = [
            ("a".repeat(42), false),
            ("a".repeat(43), true),
            ("a".repeat(128), true),
            ("a".repeat(129), false),
            (format!("{}-._~", "A1".repeat(20)), true),
            (format!("{}+", "a".repeat(43)), false),
            (format!("{}/", "a".repeat(43)), false),
            (format!("{}=", "a".repeat(43)), false),
            (format!("{} ", "a".repeat(43)), false),
            (format!("{}\u{e9}", "a".repeat(43)), false),
        ];
        for (value, valid) in cases {
            let parsed = CodeVerifier::parse(&value);
            assert_eq!(parsed.is_ok(), valid, "{value:?}");
            if let Err(error) = parsed {
                assert_eq!(error.code, ErrorCode::InvalidRequest);
            }
        }
    }

    #[test]
    fn challenge_syntax_table() {
        let cases = [
            (RFC_CHALLENGE.to_string(), true),
            (RFC_VERIFIER.to_string(), true),
            (format!("{RFC_CHALLENGE}="), false),
            (RFC_CHALLENGE[..42].to_string(), false),
            (format!("{}~", &RFC_CHALLENGE[..42]), false),
            (format!("{}+", &RFC_CHALLENGE[..42]), false),
            ("a".repeat(128), false),
        ];
        for (value, valid) in cases {
            assert_eq!(
                CodeChallenge::parse_s256(&value).is_ok(),
                valid,
                "{value:?}"
            );
        }
    }

    #[test]
    fn verify_table() {
        let challenge = CodeChallenge::parse_s256(RFC_CHALLENGE).unwrap();
        let right = CodeVerifier::parse(RFC_VERIFIER).unwrap();
        let wrong = CodeVerifier::parse(&"a".repeat(43)).unwrap();
        let cases: [(
            Option<&CodeChallenge>,
            Option<&CodeVerifier>,
            Option<ErrorCode>,
        ); 5] = [
            (None, None, None),
            (Some(&challenge), Some(&right), None),
            (
                Some(&challenge),
                Some(&wrong),
                Some(ErrorCode::InvalidGrant),
            ),
            (Some(&challenge), None, Some(ErrorCode::InvalidGrant)),
            (None, Some(&right), Some(ErrorCode::InvalidGrant)),
        ];
        for (challenge, verifier, expected) in cases {
            let outcome = verify(challenge, verifier).err().map(|error| error.code);
            assert_eq!(outcome, expected, "{challenge:?} {verifier:?}");
        }
    }
}
