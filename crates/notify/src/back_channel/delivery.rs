//! One delivery attempt: POST the logout token and judge the answer as Back-Channel Logout
//! 1.0 §2.8 asks (200 or 204 is success; a refusal is not retried; only what may recover is).

use super::targets::{TargetPolicy, TargetRefused};

/// How much of a response body is read for an error message; the rest is not downloaded.
const BODY_LIMIT: usize = 16 * 1024;

/// What came of an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The application acknowledged the logout.
    Delivered,
    /// The application refused, or must never be contacted: record as failed, do not retry.
    Refused(String),
    /// May succeed later (connection error, timeout, 5xx, 429): retry after a delay.
    Recoverable(String),
}

/// Judges an HTTP answer; `body` is the start of the response body.
pub fn classify(status: u16, body: &[u8]) -> Outcome {
    match status {
        200 | 204 => Outcome::Delivered,
        429 => Outcome::Recoverable("HTTP 429 Too Many Requests".into()),
        500..=599 => Outcome::Recoverable(format!("HTTP {status}{}", describe_body(body))),
        300..=399 => Outcome::Refused(format!(
            "HTTP {status}: the application answered with a redirect, which is not followed"
        )),
        _ => Outcome::Refused(format!("HTTP {status}{}", describe_body(body))),
    }
}

/// `: error (error_description)` from an OAuth-style JSON error body, else a short, printable
/// excerpt, else nothing.
fn describe_body(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: String,
        #[serde(default)]
        error_description: Option<String>,
    }
    if let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body) {
        return match parsed.error_description {
            Some(description) => format!(": {} ({})", clean(&parsed.error), clean(&description)),
            None => format!(": {}", clean(&parsed.error)),
        };
    }
    let text = match std::str::from_utf8(body) {
        Ok(text) => text,
        // The read stopped in the middle of a character: the text up to it.
        Err(cut) if cut.error_len().is_none() => {
            std::str::from_utf8(&body[..cut.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return ": the body is not text".into(),
    };
    let excerpt = clean(text.trim());
    if excerpt.is_empty() {
        String::new()
    } else {
        format!(": {excerpt}")
    }
}

/// At most 200 printable characters.
fn clean(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// Sends `logout_token` to `uri` and judges the answer, with the HTTP status when the
/// application answered. Host names are checked by the client's resolver; an address written
/// into the URI is never resolved, so it is checked here.
pub(crate) async fn attempt(
    http: &reqwest::Client,
    policy: &TargetPolicy,
    uri: &str,
    logout_token: &str,
) -> (Outcome, Option<u16>) {
    let literal = url::Url::parse(uri).ok().and_then(|url| match url.host() {
        Some(url::Host::Ipv4(v4)) => Some(std::net::IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => Some(std::net::IpAddr::V6(v6)),
        _ => None,
    });
    if let Some(Err(refused)) = literal.map(|address| policy.check(address)) {
        return (Outcome::Refused(refused.to_string()), None);
    }
    let response = http
        .post(uri)
        .form(&[("logout_token", logout_token)])
        .send()
        .await;
    let mut response = match response {
        Ok(response) => response,
        Err(error) => return (transport_failure(&error), None),
    };
    let status = response.status().as_u16();
    let mut body = Vec::new();
    // Read only the start of the body: a huge or endless answer costs no memory.
    while body.len() < BODY_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk[..chunk.len().min(BODY_LIMIT - body.len())])
            }
            Ok(None) => break,
            // The status already arrived; a broken body does not change the verdict on success.
            Err(_) => break,
        }
    }
    (classify(status, &body), Some(status))
}

fn transport_failure(error: &reqwest::Error) -> Outcome {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<TargetRefused>() {
            return Outcome::Refused(refused.to_string());
        }
        source = cause.source();
    }
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    Outcome::Recoverable(format!("{kind}: {}", chain(error)))
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    clean(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_judged_as_the_spec_says() {
        assert_eq!(classify(200, b""), Outcome::Delivered);
        assert_eq!(classify(204, b""), Outcome::Delivered);
        assert!(matches!(classify(500, b""), Outcome::Recoverable(_)));
        assert!(matches!(classify(503, b"busy"), Outcome::Recoverable(_)));
        assert!(matches!(classify(429, b""), Outcome::Recoverable(_)));
        assert!(matches!(classify(302, b""), Outcome::Refused(_)));
        assert!(matches!(classify(404, b""), Outcome::Refused(_)));
        assert!(matches!(classify(202, b""), Outcome::Refused(_)));
        assert_eq!(
            classify(
                400,
                br#"{"error":"invalid_request","error_description":"bad sid"}"#
            ),
            Outcome::Refused("HTTP 400: invalid_request (bad sid)".into())
        );
        let Outcome::Refused(garbage) = classify(400, &[0xff, 0x00, b'x'].repeat(500)) else {
            panic!("refused")
        };
        assert_eq!(garbage, "HTTP 400: the body is not text");
        // A body cut inside a character keeps the text before it.
        assert_eq!(
            classify(400, "gone \u{e9}".as_bytes().split_last().unwrap().1),
            Outcome::Refused("HTTP 400: gone".into())
        );
    }
}

#[cfg(test)]
mod tls_tests {
    use super::*;

    /// An https target is attempted through TLS and a failed handshake is a readable,
    /// recoverable failure.
    #[tokio::test]
    async fn https_targets_go_through_tls() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            // Not a TLS server: accept and hang up.
            while let Ok((stream, _)) = listener.accept().await {
                drop(stream);
            }
        });
        let http = reqwest::Client::builder().build().unwrap();
        let policy = TargetPolicy {
            allowed: vec!["127.0.0.0/8".parse().unwrap()],
        };
        let (outcome, status) = attempt(
            &http,
            &policy,
            &format!("https://{address}/logout"),
            "token",
        )
        .await;
        assert!(matches!(outcome, Outcome::Recoverable(_)), "{outcome:?}");
        assert_eq!(status, None, "no HTTP answer came");
    }
}
