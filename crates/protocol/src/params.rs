//! Raw request parameters: one value per name, as RFC 6749 §3.1 demands.
//!
//! Parameters arrive as a list of pairs rather than a map so that a repeated parameter is
//! visible: "Request and response parameters MUST NOT be included more than once", and
//! "Parameters sent without a value MUST be treated as if they were omitted from the request"
//! (RFC 6749 §3.1, §3.2). Unknown parameters are kept and ignored by the callers, as RFC 6749
//! §3.1 requires.

use std::collections::BTreeMap;

use crate::error::OAuthError;

/// The longest parameter value accepted, in bytes; longer values are `invalid_request`. Caps
/// what a client can make us store (state, nonce) or echo back.
pub const MAX_VALUE_LEN: usize = 4096;

/// Why raw parameters were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// The parameter appeared more than once with a value.
    #[error("parameter {name} is included more than once")]
    Duplicated {
        /// The parameter's name.
        name: String,
    },
    /// The parameter's value is longer than [`MAX_VALUE_LEN`].
    #[error("parameter {name} is longer than {MAX_VALUE_LEN} bytes")]
    TooLong {
        /// The parameter's name.
        name: String,
    },
}

impl ParamError {
    /// The parameter at fault.
    pub fn name(&self) -> &str {
        match self {
            ParamError::Duplicated { name } | ParamError::TooLong { name } => name,
        }
    }

    /// The OAuth error a client sees: always `invalid_request`.
    pub fn to_oauth_error(&self) -> OAuthError {
        OAuthError::invalid_request(self.to_string())
    }
}

impl From<ParamError> for OAuthError {
    fn from(error: ParamError) -> Self {
        error.to_oauth_error()
    }
}

/// Parameters with at most one non-empty value per name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    values: BTreeMap<String, String>,
}

impl Params {
    /// Parses raw pairs; the first repeated or overlong parameter (in request order) is the
    /// error. Empty values are dropped first, so `a=&a=x` is one `a`.
    pub fn parse(raw: &[(String, String)]) -> Result<Params, ParamError> {
        let mut values = BTreeMap::new();
        for (name, value) in raw {
            if value.is_empty() {
                continue;
            }
            if value.len() > MAX_VALUE_LEN {
                return Err(ParamError::TooLong { name: name.clone() });
            }
            if values.insert(name.clone(), value.clone()).is_some() {
                return Err(ParamError::Duplicated { name: name.clone() });
            }
        }
        Ok(Params { values })
    }

    /// The value of `name`, if it was sent with a value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The value of `name`, or `invalid_request` naming it when it is absent.
    pub fn required(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("{name} is missing")))
    }

    /// Whether `name` was sent with a value.
    pub fn contains(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }
}

/// The single non-empty value of `name` in raw pairs, checked on its own. Used where one
/// parameter decides how every other error is reported (the authorization request's
/// `client_id` and `redirect_uri`), before the whole set is parsed.
pub fn single<'a>(raw: &'a [(String, String)], name: &str) -> Result<Option<&'a str>, ParamError> {
    let mut found: Option<&str> = None;
    for (_, value) in raw
        .iter()
        .filter(|(candidate, value)| candidate == name && !value.is_empty())
    {
        if value.len() > MAX_VALUE_LEN {
            return Err(ParamError::TooLong {
                name: name.to_string(),
            });
        }
        if found.is_some() {
            return Err(ParamError::Duplicated {
                name: name.to_string(),
            });
        }
        found = Some(value);
    }
    Ok(found)
}

/// Splits an `application/x-www-form-urlencoded` body or query string into raw pairs
/// (`+` is a space, `%XX` a byte; invalid UTF-8 becomes U+FFFD).
pub fn parse_form_urlencoded(input: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(input.as_bytes())
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Owned pairs from a literal list, as parsed bodies and queries arrive.
    pub(crate) fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn parse_table() {
        let long = "x".repeat(MAX_VALUE_LEN + 1);
        let exact = "x".repeat(MAX_VALUE_LEN);
        type Expected<'a> = Result<Vec<(&'a str, &'a str)>, ParamError>;
        let cases: Vec<(Vec<(String, String)>, Expected)> = vec![
            (pairs(&[]), Ok(vec![])),
            (
                pairs(&[("a", "1"), ("b", "2")]),
                Ok(vec![("a", "1"), ("b", "2")]),
            ),
            (
                pairs(&[("a", "1"), ("a", "2")]),
                Err(ParamError::Duplicated { name: "a".into() }),
            ),
            // The same value twice is still a repetition.
            (
                pairs(&[("a", "1"), ("a", "1")]),
                Err(ParamError::Duplicated { name: "a".into() }),
            ),
            // Empty values count as absent, also for the duplicate check.
            (pairs(&[("a", ""), ("a", "2")]), Ok(vec![("a", "2")])),
            (pairs(&[("a", "")]), Ok(vec![])),
            (
                pairs(&[("a", &long)]),
                Err(ParamError::TooLong { name: "a".into() }),
            ),
            (pairs(&[("a", &exact)]), Ok(vec![("a", exact.as_str())])),
        ];
        for (raw, expected) in cases {
            let parsed = Params::parse(&raw);
            match expected {
                Ok(values) => {
                    let params = parsed.unwrap_or_else(|e| panic!("{raw:?}: {e}"));
                    for (name, value) in &values {
                        assert_eq!(params.get(name), Some(*value), "{raw:?}");
                    }
                    assert_eq!(params.values.len(), values.len(), "{raw:?}");
                }
                Err(error) => assert_eq!(parsed, Err(error), "{raw:?}"),
            }
        }
    }

    #[test]
    fn single_checks_one_name_only() {
        let raw = pairs(&[("client_id", "a"), ("state", "1"), ("state", "2")]);
        assert_eq!(single(&raw, "client_id"), Ok(Some("a")));
        assert_eq!(single(&raw, "redirect_uri"), Ok(None));
        assert_eq!(
            single(&raw, "state"),
            Err(ParamError::Duplicated {
                name: "state".into()
            })
        );
        let raw = pairs(&[("client_id", ""), ("client_id", "a")]);
        assert_eq!(single(&raw, "client_id"), Ok(Some("a")));
    }

    #[test]
    fn required_names_the_missing_parameter() {
        let params = Params::parse(&pairs(&[("a", "1")])).unwrap();
        assert_eq!(params.required("a"), Ok("1"));
        let error = params.required("code").unwrap_err();
        assert_eq!(error.code, crate::ErrorCode::InvalidRequest);
        assert_eq!(error.description.as_deref(), Some("code is missing"));
    }

    #[test]
    fn param_errors_are_invalid_request() {
        let error: OAuthError = ParamError::Duplicated {
            name: "scope".into(),
        }
        .into();
        assert_eq!(error.code, crate::ErrorCode::InvalidRequest);
        assert_eq!(
            error.description.as_deref(),
            Some("parameter scope is included more than once")
        );
    }

    #[test]
    fn form_urlencoded_decodes_plus_and_percent() {
        let cases = [
            ("", vec![]),
            ("a=1&b=2", vec![("a", "1"), ("b", "2")]),
            ("a=x+y&b=%2B%26%3D", vec![("a", "x y"), ("b", "+&=")]),
            ("a&b=", vec![("a", ""), ("b", "")]),
            ("a=1&a=2", vec![("a", "1"), ("a", "2")]),
            ("n=%C3%A9", vec![("n", "\u{e9}")]),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_form_urlencoded(input), pairs(&expected), "{input:?}");
        }
    }
}
