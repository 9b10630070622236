//! JSON request bodies whose errors name the field at fault, and query parameters checked by
//! name. axum's own `Json` answers 415/422 with plain text; the admin API answers 400 with the
//! JSON error body instead, so clients (and the CLI) can show which field to fix.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;

use crate::http::error::ApiError;
use crate::http::media_type;

/// A JSON body, deserialized with unknown fields refused by the target type.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if request.headers().contains_key(CONTENT_TYPE) {
            let essence = media_type(request.headers()).unwrap_or_default();
            if essence != "application/json" && !essence.ends_with("+json") {
                return Err(ApiError::Invalid {
                    field: "Content-Type".into(),
                    message: format!("send the body as application/json, not {essence:?}"),
                });
            }
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| ApiError::Invalid {
                field: "body".into(),
                message: rejection.body_text(),
            })?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Deserializes a JSON document; a syntax error blames `body`, a data error the field at its
/// path (`redirect_uris[0]`), an unknown or missing field that field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde would also accept an array for a struct (fields by position): refuse anything but
    // an object up front, so a body means what its field names say.
    if bytes.iter().find(|byte| !byte.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::Invalid {
            field: "body".into(),
            message: "expected a JSON object as the request body".into(),
        });
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let inner = error.inner();
        if inner.is_syntax() || inner.is_eof() {
            return malformed(inner);
        }
        ApiError::Invalid {
            field: field_at_fault(&error.path().to_string(), &inner.to_string()),
            message: inner.to_string(),
        }
    })?;
    deserializer.end().map_err(|error| malformed(&error))?;
    Ok(value)
}

fn malformed(error: &serde_json::Error) -> ApiError {
    ApiError::Invalid {
        field: "body".into(),
        message: format!("the body is not valid JSON: {error}"),
    }
}

/// The path names the field at fault, except for a missing field: serde reports that at the
/// enclosing object's path and names the field only in its message ("missing field `name`").
fn field_at_fault(path: &str, message: &str) -> String {
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (path, missing) {
        (".", Some(name)) => name.to_owned(),
        (parent, Some(name)) => format!("{parent}.{name}"),
        (".", None) => "body".to_owned(),
        (path, None) => path.to_owned(),
    }
}

/// Query parameters, each allowed name at most once; unknown names are refused.
pub struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    /// Parses a raw query string, allowing only `allowed` names.
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> =
            form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        for (index, (name, _)) in pairs.iter().enumerate() {
            if !allowed.contains(&name.as_str()) {
                return Err(ApiError::Invalid {
                    field: name.clone(),
                    message: format!(
                        "unknown query parameter; known parameters: {}",
                        allowed.join(", ")
                    ),
                });
            }
            if pairs[..index].iter().any(|(earlier, _)| earlier == name) {
                return Err(ApiError::Invalid {
                    field: name.clone(),
                    message: "give this parameter at most once".into(),
                });
            }
        }
        Ok(QueryParams(pairs))
    }

    /// The value of `name`, if given.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(candidate, _)| candidate == name)
            .map(|(_, value)| value.as_str())
    }

    /// A boolean flag: absent is false; `true`/`false` (or `1`/`0`) otherwise.
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.text(name) {
            None | Some("false" | "0") => Ok(false),
            Some("true" | "1") => Ok(true),
            Some(other) => Err(ApiError::Invalid {
                field: name.to_owned(),
                message: format!("expected true or false, got {other:?}"),
            }),
        }
    }

    /// A time in RFC 3339 (`2026-11-29T10:00:00Z`), if given.
    pub fn time(&self, name: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
        self.text(name)
            .map(|raw| {
                chrono::DateTime::parse_from_rfc3339(raw)
                    .map(|at| at.to_utc())
                    .map_err(|_| ApiError::Invalid {
                        field: name.to_owned(),
                        message: format!(
                            "expected a time in RFC 3339 form such as 2026-11-29T10:00:00Z, got {raw:?}"
                        ),
                    })
            })
            .transpose()
    }

    /// A number in `min..=max`, or `default` when absent.
    pub fn number(&self, name: &str, min: u32, max: u32, default: u32) -> Result<u32, ApiError> {
        let Some(raw) = self.text(name) else {
            return Ok(default);
        };
        raw.parse::<u32>()
            .ok()
            .filter(|value| (min..=max).contains(value))
            .ok_or_else(|| ApiError::Invalid {
                field: name.to_owned(),
                message: format!("expected a whole number from {min} to {max}, got {raw:?}"),
            })
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
        uris: Vec<String>,
        #[serde(default)]
        flag: bool,
    }

    fn field_of(body: &str) -> String {
        match parse_json::<Sample>(body.as_bytes()) {
            Err(ApiError::Invalid { field, .. }) => field,
            other => panic!("{body}: expected an invalid request, got {other:?}"),
        }
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            ("", "body"),
            ("{not json", "body"),
            (r#"{"name": "a", "uris": []} trailing"#, "body"),
            ("[]", "body"),
            (r#"["a", ["x"]]"#, "body"),
            ("5", "body"),
            (r#"{"name": "a"}"#, "uris"),
            (r#"{"name": "a", "uris": [], "nmae": 1}"#, "nmae"),
            (r#"{"name": 5, "uris": []}"#, "name"),
            (r#"{"name": "a", "uris": ["x", 7]}"#, "uris[1]"),
            (r#"{"name": "a", "uris": [], "flag": "yes"}"#, "flag"),
        ];
        for (body, expected) in cases {
            assert_eq!(field_of(body), expected, "{body}");
        }
        assert!(parse_json::<Sample>(br#"{"name": "a", "uris": ["x"]}"#).is_ok());
    }

    #[test]
    fn query_parameters_are_checked_by_name() {
        let allowed = ["limit", "include_ended"];
        let query = QueryParams::parse(Some("limit=5&include_ended=true"), &allowed).unwrap();
        assert_eq!(query.number("limit", 1, 500, 100).unwrap(), 5);
        assert!(query.flag("include_ended").unwrap());
        let empty = QueryParams::parse(None, &allowed).unwrap();
        assert_eq!(empty.number("limit", 1, 500, 100).unwrap(), 100);
        assert!(!empty.flag("include_ended").unwrap());
        for (raw, field) in [
            ("limti=5", "limti"),
            ("limit=1&limit=2", "limit"),
            ("limit=0", "limit"),
            ("limit=x", "limit"),
            ("include_ended=maybe", "include_ended"),
        ] {
            let error = QueryParams::parse(Some(raw), &allowed).and_then(|query| {
                query.number("limit", 1, 500, 100)?;
                query.flag("include_ended")
            });
            match error {
                Err(ApiError::Invalid { field: got, .. }) => assert_eq!(got, field, "{raw}"),
                other => panic!("{raw}: expected invalid, got {other:?}"),
            }
        }
    }
}
