//! Claims of the tokens we sign: the ID token (OpenID Connect Core §2, §3.1.3.6), the logout
//! token (Back-Channel Logout 1.0 §2.4), and the standard user claims released per scope
//! (Core §5.1, §5.4). Signing is the JOSE crate's job; these are the payloads.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::{self, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256, Sha512};

use crate::scope::ScopeSet;

/// A JWS algorithm we sign ID tokens and logout tokens with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JwsAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256; mandatory to implement (Core §15.1).
    RS256,
    /// ECDSA with P-256 and SHA-256.
    ES256,
    /// EdDSA; we sign with Ed25519 keys only.
    EdDSA,
}

impl JwsAlgorithm {
    /// The `alg` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            JwsAlgorithm::RS256 => "RS256",
            JwsAlgorithm::ES256 => "ES256",
            JwsAlgorithm::EdDSA => "EdDSA",
        }
    }
}

impl Serialize for JwsAlgorithm {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The `at_hash` of `access_token` for an ID token signed with `alg` (Core §3.1.3.6): the
/// base64url (no padding) of the left half of the hash "used in the alg Header Parameter".
///
/// RS256 and ES256 hash with SHA-256. EdDSA names no hash itself; Ed25519 uses SHA-512
/// (RFC 8032 §5.1), which the OpenID Connect working group confirmed is the one to use
/// (connect issue 1125), so an Ed25519 `at_hash` is 32 bytes of SHA-512.
pub fn at_hash(alg: JwsAlgorithm, access_token: &str) -> String {
    let digest: Vec<u8> = match alg {
        JwsAlgorithm::RS256 | JwsAlgorithm::ES256 => {
            Sha256::digest(access_token.as_bytes()).to_vec()
        }
        JwsAlgorithm::EdDSA => Sha512::digest(access_token.as_bytes()).to_vec(),
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

/// The claims of an ID token (Core §2). Times are seconds since the epoch, given by the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    /// The issuer, exactly as in the discovery document.
    pub iss: String,
    /// The subject: the user's stable identifier.
    pub sub: String,
    /// The audience: the client's `client_id`.
    pub aud: String,
    /// Expiry.
    pub exp: u64,
    /// Issue time.
    pub iat: u64,
    /// When the user last actively authenticated; required when `max_age` was requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
    /// The authorization request's `nonce`, passed through unmodified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The session id, which logout tokens carry too (Back-Channel Logout §2.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The access token hash; see [`at_hash`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    /// The authorized party: the client the token was issued to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
}

/// The event type URI that makes a Security Event Token a logout token.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// The `events` claim of a logout token: `{"http://schemas.openid.net/event/backchannel-logout":
/// {}}`. A unit type because the spec fixes its value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackChannelLogoutEvents;

impl Serialize for BackChannelLogoutEvents {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(BACKCHANNEL_LOGOUT_EVENT, &Map::new())?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for BackChannelLogoutEvents {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Back-Channel Logout §2.6: the events member must hold the logout event, a JSON object.
        let events = Map::<String, Value>::deserialize(deserializer)?;
        match events.get(BACKCHANNEL_LOGOUT_EVENT) {
            Some(Value::Object(_)) => Ok(BackChannelLogoutEvents),
            _ => Err(de::Error::custom(
                "events does not contain the back-channel logout event as an object",
            )),
        }
    }
}

/// The claims of a logout token (Back-Channel Logout 1.0 §2.4, with errata 1: `exp` required).
///
/// There is no `nonce` field at all: §2.4 says a logout token "MUST NOT contain a nonce Claim",
/// and a type without the field cannot carry one by mistake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogoutTokenClaims {
    /// The issuer: the origin the session was ended on.
    pub iss: String,
    /// The receiving client's `client_id`.
    pub aud: String,
    /// Issue time.
    pub iat: u64,
    /// Expiry; keep it short (about two minutes).
    pub exp: u64,
    /// A unique id, so the client can drop a duplicate delivery.
    pub jti: String,
    /// The subject, as in the client's ID tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The session id, as in the client's ID tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Always the back-channel logout event.
    pub events: BackChannelLogoutEvents,
}

/// A logout token must name a subject, a session or both (Back-Channel Logout §2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a logout token needs sub, sid or both")]
pub struct NeitherSubNorSid;

impl LogoutTokenClaims {
    /// The claims for one delivery. `now` and `jti` come from the caller's clock and random
    /// source; `exp` is `now + lifetime_seconds`.
    pub fn new(
        iss: String,
        aud: String,
        sub: Option<String>,
        sid: Option<String>,
        jti: String,
        now: u64,
        lifetime_seconds: u64,
    ) -> Result<LogoutTokenClaims, NeitherSubNorSid> {
        if sub.is_none() && sid.is_none() {
            return Err(NeitherSubNorSid);
        }
        Ok(LogoutTokenClaims {
            iss,
            aud,
            iat: now,
            exp: now.saturating_add(lifetime_seconds),
            jti,
            sub,
            sid,
            events: BackChannelLogoutEvents,
        })
    }
}

/// A postal address (Core §5.1.1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// The full address, formatted for display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formatted: Option<String>,
    /// Street and house number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_address: Option<String>,
    /// City or locality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    /// State, province or region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Postal code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// Country.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// What we know about a user, as OpenID Connect standard claims (Core §5.1). `None` means
/// unknown; unknown claims are never released.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandardClaims {
    /// Full name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Given name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    /// Family name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// Middle name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    /// Casual name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
    /// The name the user likes to be called by, such as a login name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// Profile page URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Picture URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    /// Web page URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    /// Gender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<String>,
    /// Birthday, `YYYY-MM-DD` or `YYYY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birthdate: Option<String>,
    /// Time zone, such as `Europe/Zurich`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zoneinfo: Option<String>,
    /// Locale, a BCP 47 tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// When the profile last changed, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<u64>,
    /// Email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether the email address was verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// Postal address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    /// Phone number, E.164 recommended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// Whether the phone number was verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number_verified: Option<bool>,
}

/// Which claims each scope value releases (Core §5.4).
pub const CLAIMS_BY_SCOPE: &[(&str, &[&str])] = &[
    (
        "profile",
        &[
            "name",
            "family_name",
            "given_name",
            "middle_name",
            "nickname",
            "preferred_username",
            "profile",
            "picture",
            "website",
            "gender",
            "birthdate",
            "zoneinfo",
            "locale",
            "updated_at",
        ],
    ),
    ("email", &["email", "email_verified"]),
    ("address", &["address"]),
    ("phone", &["phone_number", "phone_number_verified"]),
];

impl StandardClaims {
    /// The claims `scope` releases, with `sub` (which UserInfo must always return, Core
    /// §5.3.2), as a JSON object for the UserInfo response or an ID token.
    pub fn released_for(&self, sub: &str, scope: &ScopeSet) -> Map<String, Value> {
        let mut released = Map::new();
        released.insert("sub".into(), Value::String(sub.to_string()));
        let Ok(Value::Object(all)) = serde_json::to_value(self) else {
            // A struct of strings, booleans and integers always serializes to an object.
            unreachable!("StandardClaims serializes to a JSON object");
        };
        let allowed: BTreeMap<&str, ()> = CLAIMS_BY_SCOPE
            .iter()
            .filter(|(scope_value, _)| scope.contains(scope_value))
            .flat_map(|(_, claims)| claims.iter().map(|claim| (*claim, ())))
            .collect();
        for (name, value) in all {
            if allowed.contains_key(name.as_str()) {
                released.insert(name, value);
            }
        }
        released
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn at_hash_vectors() {
        let cases = [
            // OpenID Connect Core Appendix A.3 (RS256).
            (
                JwsAlgorithm::RS256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y",
                "77QmUPtjPfzWtF2AnpK9RQ",
            ),
            (
                JwsAlgorithm::RS256,
                "dNZX1hEZ9wBCzNL40Upu646bdzQA",
                "wfgvmE9VxjAudsl9lc6TqA",
            ),
            // ES256 uses the same hash as RS256.
            (
                JwsAlgorithm::ES256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y",
                "77QmUPtjPfzWtF2AnpK9RQ",
            ),
            (JwsAlgorithm::ES256, "test", "n4bQgYhMfWWaL-qgxVrQFQ"),
            // Ed25519: left 32 bytes of SHA-512, computed independently with Python hashlib.
            (
                JwsAlgorithm::EdDSA,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y",
                "q7nS86GgvvFaZkzALLWqJYaJIKw2wCDAVfCAsm5CrBM",
            ),
            (
                JwsAlgorithm::EdDSA,
                "test",
                "7iaw3Ur350mqGo7jwQrpkj9hiYB3Lkc_iBml1JQODbI",
            ),
            (JwsAlgorithm::RS256, "", "47DEQpj8HBSa-_TImW-5JA"),
        ];
        for (alg, token, expected) in cases {
            assert_eq!(at_hash(alg, token), expected, "{alg:?} {token}");
        }
    }

    #[test]
    fn id_token_claims_skip_absent_optionals() {
        let minimal = IdTokenClaims {
            iss: "https://op.example".into(),
            sub: "u1".into(),
            aud: "web".into(),
            exp: 1_700_000_300,
            iat: 1_700_000_000,
            auth_time: None,
            nonce: None,
            sid: None,
            at_hash: None,
            azp: None,
        };
        assert_eq!(
            serde_json::to_value(&minimal).unwrap(),
            json!({"iss": "https://op.example", "sub": "u1", "aud": "web",
                   "exp": 1_700_000_300u64, "iat": 1_700_000_000u64})
        );
        let full = IdTokenClaims {
            auth_time: Some(1_699_999_990),
            nonce: Some("n-0S6".into()),
            sid: Some("s1".into()),
            at_hash: Some("77QmUPtjPfzWtF2AnpK9RQ".into()),
            azp: Some("web".into()),
            ..minimal
        };
        let value = serde_json::to_value(&full).unwrap();
        assert_eq!(value["auth_time"], json!(1_699_999_990u64));
        assert_eq!(value["nonce"], json!("n-0S6"));
        assert_eq!(value["sid"], json!("s1"));
        assert_eq!(value["at_hash"], json!("77QmUPtjPfzWtF2AnpK9RQ"));
        assert_eq!(value["azp"], json!("web"));
        let back: IdTokenClaims = serde_json::from_value(value).unwrap();
        assert_eq!(back, full);
    }

    #[test]
    fn logout_token_claims_match_back_channel_logout_2_4() {
        let claims = LogoutTokenClaims::new(
            "https://op.example".into(),
            "web".into(),
            Some("u1".into()),
            Some("s1".into()),
            "jti-1".into(),
            1_700_000_000,
            120,
        )
        .unwrap();
        let value = serde_json::to_value(&claims).unwrap();
        assert_eq!(
            value,
            json!({
                "iss": "https://op.example",
                "aud": "web",
                "iat": 1_700_000_000u64,
                "exp": 1_700_000_120u64,
                "jti": "jti-1",
                "sub": "u1",
                "sid": "s1",
                "events": {"http://schemas.openid.net/event/backchannel-logout": {}}
            })
        );
        assert!(value.get("nonce").is_none());
        let back: LogoutTokenClaims = serde_json::from_value(value).unwrap();
        assert_eq!(back, claims);
    }

    #[test]
    fn logout_token_needs_sub_or_sid() {
        let make = |sub: Option<&str>, sid: Option<&str>| {
            LogoutTokenClaims::new(
                "https://op.example".into(),
                "web".into(),
                sub.map(Into::into),
                sid.map(Into::into),
                "j".into(),
                0,
                120,
            )
        };
        assert_eq!(make(None, None), Err(NeitherSubNorSid));
        let only_sid = serde_json::to_value(make(None, Some("s1")).unwrap()).unwrap();
        assert!(only_sid.get("sub").is_none());
        assert_eq!(only_sid["sid"], json!("s1"));
        let only_sub = serde_json::to_value(make(Some("u1"), None).unwrap()).unwrap();
        assert!(only_sub.get("sid").is_none());
    }

    #[test]
    fn logout_events_must_hold_the_logout_event() {
        let cases = [
            (json!({BACKCHANNEL_LOGOUT_EVENT: {}}), true),
            (json!({BACKCHANNEL_LOGOUT_EVENT: {}, "urn:other": {}}), true),
            (json!({BACKCHANNEL_LOGOUT_EVENT: "x"}), false),
            (json!({}), false),
            (json!([BACKCHANNEL_LOGOUT_EVENT]), false),
        ];
        for (events, valid) in cases {
            let parsed: Result<BackChannelLogoutEvents, _> = serde_json::from_value(events.clone());
            assert_eq!(parsed.is_ok(), valid, "{events}");
        }
    }

    #[test]
    fn claims_are_released_by_scope() {
        let user = StandardClaims {
            name: Some("Alice Example".into()),
            given_name: Some("Alice".into()),
            family_name: Some("Example".into()),
            preferred_username: Some("alice".into()),
            email: Some("alice@example.com".into()),
            email_verified: Some(true),
            phone_number: Some("+41 00 000 00 00".into()),
            address: Some(Address {
                country: Some("CH".into()),
                ..Address::default()
            }),
            ..StandardClaims::default()
        };
        let cases = [
            ("openid", json!({"sub": "u1"})),
            (
                "openid email",
                json!({"sub": "u1", "email": "alice@example.com", "email_verified": true}),
            ),
            (
                "openid profile",
                json!({"sub": "u1", "name": "Alice Example", "given_name": "Alice",
                       "family_name": "Example", "preferred_username": "alice"}),
            ),
            (
                "openid address",
                json!({"sub": "u1", "address": {"country": "CH"}}),
            ),
            (
                "openid phone",
                json!({"sub": "u1", "phone_number": "+41 00 000 00 00"}),
            ),
            ("openid unknown_scope", json!({"sub": "u1"})),
        ];
        for (scope, expected) in cases {
            let released = user.released_for("u1", &ScopeSet::parse(scope).unwrap());
            assert_eq!(Value::Object(released), expected, "{scope}");
        }
    }

    #[test]
    fn every_scope_claim_is_a_field() {
        // Guards the table against typos: each listed claim must be a StandardClaims field.
        let everything = StandardClaims {
            name: Some(String::new()),
            given_name: Some(String::new()),
            family_name: Some(String::new()),
            middle_name: Some(String::new()),
            nickname: Some(String::new()),
            preferred_username: Some(String::new()),
            profile: Some(String::new()),
            picture: Some(String::new()),
            website: Some(String::new()),
            gender: Some(String::new()),
            birthdate: Some(String::new()),
            zoneinfo: Some(String::new()),
            locale: Some(String::new()),
            updated_at: Some(0),
            email: Some(String::new()),
            email_verified: Some(false),
            address: Some(Address::default()),
            phone_number: Some(String::new()),
            phone_number_verified: Some(false),
        };
        let Value::Object(all) = serde_json::to_value(&everything).unwrap() else {
            panic!("not an object");
        };
        let listed: Vec<&str> = CLAIMS_BY_SCOPE
            .iter()
            .flat_map(|(_, claims)| claims.iter().copied())
            .collect();
        assert_eq!(listed.len(), all.len());
        for claim in listed {
            assert!(all.contains_key(claim), "{claim}");
        }
    }
}
