//! RP-Initiated Logout 1.0: the logout request (§2) and where the user goes afterwards (§3).
//!
//! Like the authorization request this is decided in two steps: [`EndSessionRequest::client_to_resolve`]
//! says which client the server must load, then [`EndSessionRequest::decide`] takes that client.
//! The `id_token_hint` arrives already verified by the JOSE crate (signature by one of our
//! keys; expiry deliberately not checked, since §2 says an expired hint SHOULD be accepted).
//!
//! An error here means: show an error page and never redirect to `post_logout_redirect_uri`
//! (§3: the OP "MUST NOT perform post-logout redirection" unless the URI is registered and
//! the request is legitimate).

use crate::client::ClientPolicy;
use crate::error::OAuthError;
use crate::params::{ParamError, Params};
use crate::response::append_query;

/// A parsed logout request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndSessionRequest {
    /// The ID token previously issued to the RP, as sent.
    pub id_token_hint: Option<String>,
    /// A hint at the user to log out.
    pub logout_hint: Option<String>,
    /// The RP's client identifier.
    pub client_id: Option<String>,
    /// Where the RP wants the user sent after logout.
    pub post_logout_redirect_uri: Option<String>,
    /// Opaque RP state to pass back on that redirect.
    pub state: Option<String>,
    /// Preferred languages for our pages, most preferred first.
    pub ui_locales: Vec<String>,
}

/// The claims of an `id_token_hint` whose signature the server has verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdTokenHint {
    /// The token's audiences.
    pub aud: Vec<String>,
    /// The authorized party, if the token names one.
    pub azp: Option<String>,
    /// The subject.
    pub sub: String,
    /// The session id, if the token carries one.
    pub sid: Option<String>,
}

impl VerifiedIdTokenHint {
    /// The client the token was issued to: `azp` if present, else the single audience.
    fn issued_to(&self) -> Option<&str> {
        match (&self.azp, self.aud.as_slice()) {
            (Some(azp), _) => Some(azp),
            (None, [only]) => Some(only),
            _ => None,
        }
    }
}

/// The session the browser is signed in with, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentSession {
    /// The signed-in user's subject.
    pub sub: String,
    /// The session id.
    pub sid: String,
}

/// Why a logout request cannot be followed as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndSessionError {
    /// A parameter is repeated or too long.
    #[error("{0}")]
    Malformed(ParamError),
    /// `client_id` names another client than the `id_token_hint` was issued to (§2: the OP
    /// "MUST verify that the Client Identifier matches the one used when issuing the ID Token").
    #[error("client_id does not match the id_token_hint")]
    ClientMismatch,
    /// The hint has several audiences and no `azp`, and no `client_id` picks one.
    #[error("the id_token_hint does not identify one client")]
    AmbiguousHint,
    /// The identified client is not registered.
    #[error("the client is not registered")]
    UnknownClient,
    /// `post_logout_redirect_uri` without `id_token_hint` or `client_id`: no client to check
    /// the URI against.
    #[error("post_logout_redirect_uri needs id_token_hint or client_id")]
    RedirectWithoutClient,
    /// `post_logout_redirect_uri` is not exactly one of the client's registered URIs.
    #[error("post_logout_redirect_uri is not registered for the client")]
    UnregisteredRedirectUri,
}

impl EndSessionError {
    /// The OAuth error for the error page: always `invalid_request`.
    pub fn to_oauth_error(&self) -> OAuthError {
        OAuthError::invalid_request(self.to_string())
    }
}

/// Whether the user must confirm before being logged out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    /// Ask first: §2 requires it when there is no `id_token_hint`, or the hint does not belong
    /// to the current session and user.
    Required,
    /// The hint proves the RP asks for its own user's session: log out directly.
    NotRequired,
}

/// Where the user goes once logged out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterLogout {
    /// Redirect here: the validated `post_logout_redirect_uri` with `state` added.
    Redirect {
        /// The complete target URL.
        location: String,
    },
    /// Show our own "you are signed out" page.
    ShowLoggedOutPage,
}

/// What the server does with a logout request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndSessionDecision {
    /// Ask the user first, or not.
    pub confirmation: Confirmation,
    /// Where the user goes afterwards.
    pub after_logout: AfterLogout,
    /// The client the request came from, if identified.
    pub client_id: Option<String>,
}

impl EndSessionRequest {
    /// Parses raw parameters (query or form): repeated or overlong parameters are refused.
    pub fn parse(raw: &[(String, String)]) -> Result<EndSessionRequest, EndSessionError> {
        let params = Params::parse(raw).map_err(EndSessionError::Malformed)?;
        let text = |name: &str| params.get(name).map(str::to_string);
        Ok(EndSessionRequest {
            id_token_hint: text("id_token_hint"),
            logout_hint: text("logout_hint"),
            client_id: text("client_id"),
            post_logout_redirect_uri: text("post_logout_redirect_uri"),
            state: text("state"),
            ui_locales: params
                .get("ui_locales")
                .map(|v| {
                    v.split(' ')
                        .filter(|l| !l.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// Step one: the client the server must load, from the verified hint or `client_id`
    /// (which must agree when both are given); `None` when neither identifies one.
    pub fn client_to_resolve<'a>(
        &'a self,
        hint: Option<&'a VerifiedIdTokenHint>,
    ) -> Result<Option<&'a str>, EndSessionError> {
        let requested = self.client_id.as_deref();
        let Some(hint) = hint else {
            return Ok(requested);
        };
        match (hint.issued_to(), requested) {
            (Some(issued_to), Some(requested)) if issued_to != requested => {
                Err(EndSessionError::ClientMismatch)
            }
            (Some(issued_to), _) => Ok(Some(issued_to)),
            // Several audiences, no azp: client_id may pick one of them.
            (None, Some(requested)) if hint.aud.iter().any(|aud| aud == requested) => {
                Ok(Some(requested))
            }
            (None, Some(_)) => Err(EndSessionError::ClientMismatch),
            (None, None) => Err(EndSessionError::AmbiguousHint),
        }
    }

    /// Step two: decides, given the client loaded for [`Self::client_to_resolve`] (`None` if
    /// there is no such client) and the browser's current session.
    pub fn decide(
        &self,
        hint: Option<&VerifiedIdTokenHint>,
        client: Option<&ClientPolicy>,
        current: Option<&CurrentSession>,
    ) -> Result<EndSessionDecision, EndSessionError> {
        let client_id = self.client_to_resolve(hint)?;
        let client = match (client_id, client) {
            (None, _) => None,
            (Some(id), Some(client)) if client.client_id == id => Some(client),
            (Some(_), _) => return Err(EndSessionError::UnknownClient),
        };

        let after_logout = match (&self.post_logout_redirect_uri, client) {
            (None, _) => AfterLogout::ShowLoggedOutPage,
            (Some(_), None) => return Err(EndSessionError::RedirectWithoutClient),
            (Some(uri), Some(client)) if client.has_post_logout_redirect_uri(uri) => {
                let state: Vec<(&str, &str)> =
                    self.state.iter().map(|s| ("state", s.as_str())).collect();
                AfterLogout::Redirect {
                    location: append_query(uri, &state),
                }
            }
            (Some(_), Some(_)) => return Err(EndSessionError::UnregisteredRedirectUri),
        };

        Ok(EndSessionDecision {
            confirmation: confirmation(hint, current),
            after_logout,
            client_id: client.map(|c| c.client_id.clone()),
        })
    }
}

fn confirmation(
    hint: Option<&VerifiedIdTokenHint>,
    current: Option<&CurrentSession>,
) -> Confirmation {
    let Some(hint) = hint else {
        return Confirmation::Required;
    };
    match current {
        // Nothing to end: the hint alone legitimizes the redirect.
        None => Confirmation::NotRequired,
        Some(session) => {
            let same_user = hint.sub == session.sub;
            let same_session = hint.sid.as_ref().is_none_or(|sid| *sid == session.sid);
            if same_user && same_session {
                Confirmation::NotRequired
            } else {
                Confirmation::Required
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::tests::{native_client, web_client};
    use crate::params::tests::pairs;

    fn hint(aud: &[&str], azp: Option<&str>, sid: Option<&str>) -> VerifiedIdTokenHint {
        VerifiedIdTokenHint {
            aud: aud.iter().map(|a| a.to_string()).collect(),
            azp: azp.map(Into::into),
            sub: "u1".into(),
            sid: sid.map(Into::into),
        }
    }

    fn session(sub: &str, sid: &str) -> CurrentSession {
        CurrentSession {
            sub: sub.into(),
            sid: sid.into(),
        }
    }

    #[test]
    fn parse_reads_every_parameter_and_refuses_duplicates() {
        let raw = pairs(&[
            ("id_token_hint", "h.p.s"),
            ("logout_hint", "alice"),
            ("client_id", "web"),
            ("post_logout_redirect_uri", "https://rp.example/bye"),
            ("state", "st"),
            ("ui_locales", "fr de"),
        ]);
        assert_eq!(
            EndSessionRequest::parse(&raw),
            Ok(EndSessionRequest {
                id_token_hint: Some("h.p.s".into()),
                logout_hint: Some("alice".into()),
                client_id: Some("web".into()),
                post_logout_redirect_uri: Some("https://rp.example/bye".into()),
                state: Some("st".into()),
                ui_locales: vec!["fr".into(), "de".into()],
            })
        );
        let duplicated = pairs(&[("state", "a"), ("state", "b")]);
        assert_eq!(
            EndSessionRequest::parse(&duplicated),
            Err(EndSessionError::Malformed(ParamError::Duplicated {
                name: "state".into()
            }))
        );
    }

    #[test]
    fn client_to_resolve_table() {
        let single = hint(&["web"], None, None);
        let with_azp = hint(&["web", "api"], Some("web"), None);
        let ambiguous = hint(&["web", "api"], None, None);
        type Resolved<'a> = Result<Option<&'a str>, EndSessionError>;
        let cases: Vec<(Option<&str>, Option<&VerifiedIdTokenHint>, Resolved)> = vec![
            (None, None, Ok(None)),
            (Some("web"), None, Ok(Some("web"))),
            (None, Some(&single), Ok(Some("web"))),
            (Some("web"), Some(&single), Ok(Some("web"))),
            (
                Some("native"),
                Some(&single),
                Err(EndSessionError::ClientMismatch),
            ),
            (None, Some(&with_azp), Ok(Some("web"))),
            (
                Some("api"),
                Some(&with_azp),
                Err(EndSessionError::ClientMismatch),
            ),
            (None, Some(&ambiguous), Err(EndSessionError::AmbiguousHint)),
            (Some("api"), Some(&ambiguous), Ok(Some("api"))),
            (
                Some("other"),
                Some(&ambiguous),
                Err(EndSessionError::ClientMismatch),
            ),
        ];
        for (client_id, hint, expected) in cases {
            let request = EndSessionRequest {
                client_id: client_id.map(Into::into),
                ..EndSessionRequest::parse(&[]).unwrap()
            };
            assert_eq!(
                request.client_to_resolve(hint),
                expected,
                "{client_id:?} {hint:?}"
            );
        }
    }

    #[test]
    fn decide_table() {
        let web = web_client();
        let native = native_client();
        let web_hint = hint(&["web"], None, Some("s1"));
        let here = session("u1", "s1");
        let other_session = session("u1", "s2");
        let other_user = session("u2", "s1");
        let redirect = |location: &str| AfterLogout::Redirect {
            location: location.into(),
        };
        struct Case<'a> {
            params: Vec<(&'a str, &'a str)>,
            hint: Option<&'a VerifiedIdTokenHint>,
            client: Option<&'a ClientPolicy>,
            current: Option<&'a CurrentSession>,
            expected: Result<(Confirmation, AfterLogout), EndSessionError>,
        }
        let cases = vec![
            // Hint for the current session, registered URI: log out and redirect with state.
            Case {
                params: vec![
                    ("post_logout_redirect_uri", "https://rp.example/bye"),
                    ("state", "st"),
                ],
                hint: Some(&web_hint),
                client: Some(&web),
                current: Some(&here),
                expected: Ok((
                    Confirmation::NotRequired,
                    redirect("https://rp.example/bye?state=st"),
                )),
            },
            // An expired hint is still a hint; no session left: still redirect.
            Case {
                params: vec![("post_logout_redirect_uri", "https://rp.example/bye")],
                hint: Some(&web_hint),
                client: Some(&web),
                current: None,
                expected: Ok((
                    Confirmation::NotRequired,
                    redirect("https://rp.example/bye"),
                )),
            },
            // The hint belongs to another session or user: ask.
            Case {
                params: vec![],
                hint: Some(&web_hint),
                client: Some(&web),
                current: Some(&other_session),
                expected: Ok((Confirmation::Required, AfterLogout::ShowLoggedOutPage)),
            },
            Case {
                params: vec![],
                hint: Some(&web_hint),
                client: Some(&web),
                current: Some(&other_user),
                expected: Ok((Confirmation::Required, AfterLogout::ShowLoggedOutPage)),
            },
            // No hint: always ask; client_id alone may still allow the redirect after that.
            Case {
                params: vec![
                    ("client_id", "web"),
                    ("post_logout_redirect_uri", "https://rp.example/bye"),
                ],
                hint: None,
                client: Some(&web),
                current: Some(&here),
                expected: Ok((Confirmation::Required, redirect("https://rp.example/bye"))),
            },
            Case {
                params: vec![],
                hint: None,
                client: None,
                current: Some(&here),
                expected: Ok((Confirmation::Required, AfterLogout::ShowLoggedOutPage)),
            },
            // Never redirect to a URI not registered exactly.
            Case {
                params: vec![("post_logout_redirect_uri", "https://rp.example/bye?x=1")],
                hint: Some(&web_hint),
                client: Some(&web),
                current: Some(&here),
                expected: Err(EndSessionError::UnregisteredRedirectUri),
            },
            Case {
                params: vec![("post_logout_redirect_uri", "https://rp.example/cb")],
                hint: Some(&web_hint),
                client: Some(&web),
                current: Some(&here),
                expected: Err(EndSessionError::UnregisteredRedirectUri),
            },
            Case {
                params: vec![("post_logout_redirect_uri", "https://rp.example/bye")],
                hint: None,
                client: None,
                current: Some(&here),
                expected: Err(EndSessionError::RedirectWithoutClient),
            },
            Case {
                params: vec![("client_id", "native")],
                hint: Some(&web_hint),
                client: Some(&native),
                current: Some(&here),
                expected: Err(EndSessionError::ClientMismatch),
            },
            // The loaded client must be the identified one.
            Case {
                params: vec![],
                hint: Some(&web_hint),
                client: Some(&native),
                current: Some(&here),
                expected: Err(EndSessionError::UnknownClient),
            },
            Case {
                params: vec![("client_id", "gone")],
                hint: None,
                client: None,
                current: None,
                expected: Err(EndSessionError::UnknownClient),
            },
        ];
        for case in cases {
            let request = EndSessionRequest::parse(&pairs(&case.params)).unwrap();
            let outcome = request
                .decide(case.hint, case.client, case.current)
                .map(|decision| (decision.confirmation, decision.after_logout));
            assert_eq!(outcome, case.expected, "{:?} {:?}", case.params, case.hint);
        }
    }

    #[test]
    fn decision_names_the_client_and_errors_are_invalid_request() {
        let web = web_client();
        let request = EndSessionRequest::parse(&pairs(&[("client_id", "web")])).unwrap();
        let decision = request.decide(None, Some(&web), None).unwrap();
        assert_eq!(decision.client_id.as_deref(), Some("web"));
        assert_eq!(
            EndSessionError::ClientMismatch.to_oauth_error().code,
            crate::ErrorCode::InvalidRequest
        );
    }
}
