//! Front-Channel Logout 1.0: the URL the provider's signed-out page loads, in a hidden
//! iframe, for each application of the ended session (§3), and what the page's
//! Content-Security-Policy must allow for those frames to load.

use url::Url;

/// An application's registered front-channel logout URI and whether it requires `iss` and
/// `sid` (its `frontchannel_logout_session_required`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontChannelClient<'a> {
    /// The registered `frontchannel_logout_uri` (absolute, no fragment: checked at
    /// registration).
    pub logout_uri: &'a str,
    /// Whether `iss` and `sid` must be added.
    pub session_required: bool,
}

/// The URL to load for `client` when session `sid` of the provider `issuer` ends, or `None`
/// when the registered URI does not parse (it did at registration, so this is a stored
/// value from an older rule). The registered query is kept and `iss` and `sid` are appended
/// when the client requires them (§2: "if either is included, both MUST be").
pub fn logout_url(client: &FrontChannelClient<'_>, issuer: &str, sid: &str) -> Option<Url> {
    let mut url = Url::parse(client.logout_uri).ok()?;
    url.set_fragment(None);
    if client.session_required {
        url.query_pairs_mut()
            .append_pair("iss", issuer)
            .append_pair("sid", sid);
    }
    Some(url)
}

/// The `frame-src` sources for `urls`: each one's origin (scheme, host and port), once, in
/// order. Origins serialize without spaces, quotes or semicolons, so each is one CSP source.
pub fn frame_sources(urls: &[Url]) -> Vec<String> {
    let mut sources: Vec<String> = Vec::new();
    for url in urls {
        let origin = url.origin().ascii_serialization();
        if origin != "null" && !sources.contains(&origin) {
            sources.push(origin);
        }
    }
    sources
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(uri: &str, session_required: bool) -> String {
        logout_url(
            &FrontChannelClient {
                logout_uri: uri,
                session_required,
            },
            "https://op.example/tenant",
            "08a5019c-17e1",
        )
        .unwrap()
        .to_string()
    }

    #[test]
    fn iss_and_sid_are_added_only_when_required_keeping_the_registered_query() {
        let cases = [
            ("https://rp.example/fc", false, "https://rp.example/fc"),
            (
                "https://rp.example/fc",
                true,
                "https://rp.example/fc?iss=https%3A%2F%2Fop.example%2Ftenant&sid=08a5019c-17e1",
            ),
            (
                "https://rp.example/fc?tenant=a",
                true,
                "https://rp.example/fc?tenant=a&iss=https%3A%2F%2Fop.example%2Ftenant&sid=08a5019c-17e1",
            ),
            (
                "http://127.0.0.1:8080/fc?x=1",
                false,
                "http://127.0.0.1:8080/fc?x=1",
            ),
        ];
        for (registered, required, expected) in cases {
            assert_eq!(url(registered, required), expected, "{registered}");
        }
    }

    #[test]
    fn an_unparsable_uri_gives_no_url() {
        let client = FrontChannelClient {
            logout_uri: "not a url",
            session_required: true,
        };
        assert!(logout_url(&client, "https://op.example", "s").is_none());
    }

    #[test]
    fn frame_sources_are_distinct_origins() {
        let urls: Vec<Url> = [
            "https://a.example/fc?sid=1",
            "https://a.example/other",
            "http://127.0.0.1:8080/fc",
            "https://a.example:8443/fc",
        ]
        .iter()
        .map(|u| Url::parse(u).unwrap())
        .collect();
        assert_eq!(
            frame_sources(&urls),
            [
                "https://a.example",
                "http://127.0.0.1:8080",
                "https://a.example:8443"
            ]
        );
    }
}
