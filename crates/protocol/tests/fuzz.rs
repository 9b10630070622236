//! Property-based fuzzing of every parser that reads untrusted input: whatever arrives, each
//! answers with a value or a spec error, never a panic. (cargo-fuzz needs a nightly toolchain,
//! which this project's machines cannot fetch; proptest runs on stable inside `cargo test`.)

use proptest::prelude::*;
use protocol::authorize::{self, AuthorizeError};
use protocol::client::{ClientPolicy, ClientType, GrantType, TokenEndpointAuthMethod};
use protocol::end_session::EndSessionRequest;
use protocol::introspection::IntrospectionRequest;
use protocol::params::parse_form_urlencoded;
use protocol::pkce::{CodeChallenge, CodeVerifier};
use protocol::revocation::RevocationRequest;
use protocol::scope::ScopeSet;
use protocol::token::TokenRequest;

const NAMES: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "prompt",
    "max_age",
    "response_mode",
    "code_challenge",
    "code_challenge_method",
    "grant_type",
    "code",
    "code_verifier",
    "refresh_token",
    "client_secret",
    "token",
    "token_type_hint",
    "id_token_hint",
    "post_logout_redirect_uri",
    "logout_hint",
    "ui_locales",
    "request",
];

const VALUES: &[&str] = &[
    "",
    "code",
    "openid",
    "openid profile email offline_access",
    "client-1",
    "https://app.example.com/cb",
    "none",
    "login",
    "consent",
    "0",
    "-1",
    "99999999999999999999",
    "form_post",
    "query",
    "fragment",
    "S256",
    "plain",
    "authorization_code",
    "refresh_token",
    "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGjSstw-cM",
    "%00",
    "\u{0}",
    "é",
    " openid ",
];

/// A parameter list: known names and values mixed with arbitrary text, duplicates allowed.
fn raw_params() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![
        3 => proptest::sample::select(NAMES).prop_map(str::to_owned),
        1 => ".{0,20}",
    ];
    let value = prop_oneof![
        3 => proptest::sample::select(VALUES).prop_map(str::to_owned),
        1 => ".{0,64}",
        1 => proptest::collection::vec(any::<char>(), 0..3000).prop_map(String::from_iter),
    ];
    proptest::collection::vec((name, value), 0..24)
}

fn policy() -> ClientPolicy {
    ClientPolicy {
        client_id: "client-1".into(),
        redirect_uris: vec!["https://app.example.com/cb".into()],
        post_logout_redirect_uris: vec!["https://app.example.com/bye".into()],
        client_type: ClientType::Public,
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        token_endpoint_auth_method: TokenEndpointAuthMethod::None,
        require_pkce: true,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn form_bodies_always_parse(body in ".{0,400}") {
        let _ = parse_form_urlencoded(&body);
    }

    #[test]
    fn authorization_requests_never_redirect_to_an_unregistered_uri(raw in raw_params()) {
        match authorize::validate(&raw, Some(&policy())) {
            Ok(request) => prop_assert_eq!(request.redirect_uri.as_str(), "https://app.example.com/cb"),
            Err(AuthorizeError::Redirect { redirect_uri, .. }) => {
                prop_assert_eq!(redirect_uri.as_str(), "https://app.example.com/cb")
            }
            Err(AuthorizeError::MustNotRedirect(_)) => {}
        }
    }

    #[test]
    fn token_requests_never_panic(raw in raw_params(), header in proptest::option::of(".{0,200}")) {
        let _ = TokenRequest::parse(header.as_deref(), &raw);
        let _ = IntrospectionRequest::parse(header.as_deref(), &raw);
        let _ = RevocationRequest::parse(header.as_deref(), &raw);
    }

    #[test]
    fn end_session_requests_never_panic(raw in raw_params()) {
        let _ = EndSessionRequest::parse(&raw);
    }

    #[test]
    fn scopes_and_pkce_values_never_panic(value in ".{0,300}") {
        let _ = ScopeSet::parse(&value);
        let _ = CodeVerifier::parse(&value);
        let _ = CodeChallenge::parse_s256(&value);
    }
}
