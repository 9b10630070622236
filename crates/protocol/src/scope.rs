//! Scope values: the space-separated `scope` parameter of RFC 6749 §3.3.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Serialize, Serializer};

/// The scope value that makes an OAuth 2.0 request an OpenID Connect request.
pub const OPENID: &str = "openid";
/// The scope value that asks for a refresh token usable after the session ends.
pub const OFFLINE_ACCESS: &str = "offline_access";

/// A set of scope tokens, in a stable (sorted) order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet(BTreeSet<String>);

/// The `scope` parameter held a character outside the RFC 6749 §3.3 `scope-token` grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scope contains a character not allowed in a scope token")]
pub struct InvalidScopeSyntax;

impl ScopeSet {
    /// Parses a `scope` value: tokens separated by spaces, each `1*( %x21 / %x23-5B / %x5D-7E )`.
    /// Repeated spaces are tolerated; order and repetition do not matter (RFC 6749 §3.3).
    pub fn parse(value: &str) -> Result<ScopeSet, InvalidScopeSyntax> {
        let mut tokens = BTreeSet::new();
        for token in value.split(' ').filter(|token| !token.is_empty()) {
            if !token.chars().all(is_scope_token_char) {
                return Err(InvalidScopeSyntax);
            }
            tokens.insert(token.to_string());
        }
        Ok(ScopeSet(tokens))
    }

    /// A set of the given tokens, trusted to be well formed (they come from our own records).
    pub fn from_tokens<I, S>(tokens: I) -> ScopeSet
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ScopeSet(tokens.into_iter().map(Into::into).collect())
    }

    /// Whether `token` is in the set.
    pub fn contains(&self, token: &str) -> bool {
        self.0.contains(token)
    }

    /// Whether every token of `self` is in `other` (a refresh may only narrow the scope).
    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The tokens, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for token in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(token)?;
            first = false;
        }
        Ok(())
    }
}

impl Serialize for ScopeSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

fn is_scope_token_char(c: char) -> bool {
    matches!(c, '\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let cases: &[(&str, Result<&str, InvalidScopeSyntax>)] = &[
            ("openid", Ok("openid")),
            ("openid profile email", Ok("email openid profile")),
            ("profile  openid ", Ok("openid profile")),
            ("openid openid", Ok("openid")),
            ("", Ok("")),
            ("openid\tprofile", Err(InvalidScopeSyntax)),
            ("open\"id", Err(InvalidScopeSyntax)),
            ("back\\slash", Err(InvalidScopeSyntax)),
            ("caf\u{e9}", Err(InvalidScopeSyntax)),
            ("urn:example:read!", Ok("urn:example:read!")),
        ];
        for (input, expected) in cases {
            let parsed = ScopeSet::parse(input).map(|set| set.to_string());
            assert_eq!(parsed.as_deref(), expected.as_deref(), "{input:?}");
        }
    }

    #[test]
    fn subset_and_contains() {
        let granted = ScopeSet::parse("openid profile email").unwrap();
        let narrower = ScopeSet::parse("openid email").unwrap();
        let wider = ScopeSet::parse("openid phone").unwrap();
        assert!(narrower.is_subset(&granted));
        assert!(!wider.is_subset(&granted));
        assert!(granted.contains(OPENID));
        assert!(!granted.contains(OFFLINE_ACCESS));
        assert_eq!(
            serde_json::to_string(&narrower).unwrap(),
            r#""email openid""#
        );
    }
}
