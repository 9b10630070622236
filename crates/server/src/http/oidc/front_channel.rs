//! Front-Channel Logout 1.0 in the person's browser: when a session ends at the end-session
//! endpoint, the signed-out page holds one hidden iframe per application of the session that
//! registered a `front_channel_logout_uri` (with `iss` and `sid` when it requires them), and
//! its Content-Security-Policy allows framing exactly those origins. With a post-logout URI
//! the page moves on by itself once the frames have loaded (a script from this origin, or a
//! `<noscript>` refresh) and always offers a Continue link.
//!
//! Browsers increasingly withhold an application's cookies inside a third-party iframe, so
//! an application that finds its session by cookie may not be able to end it this way;
//! back-channel logout does not depend on the browser and is the reliable path (see
//! `docs/design/front-channel-logout.md`).

use axum::http::HeaderValue;
use axum::http::header::CONTENT_SECURITY_POLICY;
use axum::response::Response;
use protocol::front_channel::{FrontChannelClient, frame_sources, logout_url};
use protocol::response::escape_html;
use url::Url;

use super::Issuer;
use crate::http::AppState;
use crate::http::security_headers::CONTENT_SECURITY_POLICY_VALUE;

/// Where the server serves [`SCRIPT`].
pub const SCRIPT_PATH: &str = "/assets/front-channel.js";

/// Follows the page's Continue link once the window (and so every frame in it) has loaded,
/// or after five seconds if a frame never does.
pub const SCRIPT: &str = "(function () {\n\
  var link = document.querySelector('a.continue[data-after-frames]');\n\
  if (!link) { return; }\n\
  var gone = false;\n\
  function go() { if (!gone) { gone = true; window.location.replace(link.href); } }\n\
  if (document.readyState === 'complete') { go(); } else { window.addEventListener('load', go); }\n\
  window.setTimeout(go, 5000);\n\
})();\n";

/// Seconds before the `<noscript>` refresh moves on (the frames have usually loaded by then).
const NOSCRIPT_DELAY_SECS: u32 = 3;

/// The front-channel logout URLs of an ended session's applications.
#[derive(Debug, Default)]
pub struct FrontChannel {
    urls: Vec<Url>,
}

impl FrontChannel {
    /// The URLs for session `sid`'s applications. A failure to read them is logged and gives
    /// none: the person is signed out either way, and back-channel delivery is unaffected.
    pub async fn of(state: &AppState, issuer: &Issuer, sid: &str) -> FrontChannel {
        let instance = &issuer.instance;
        let applications = match state
            .domain
            .applications_signed_in(&instance.instance_id, sid)
            .await
        {
            Ok(applications) => applications,
            Err(error) => {
                tracing::error!(%error, "could not read the session's applications for front-channel logout");
                return FrontChannel::default();
            }
        };
        let urls = applications
            .iter()
            .filter_map(|application| {
                let config = &application.config;
                let client = FrontChannelClient {
                    logout_uri: config.front_channel_logout_uri.as_deref()?,
                    session_required: config.front_channel_logout_session_required,
                };
                logout_url(&client, &instance.external_url, sid)
            })
            .collect();
        FrontChannel { urls }
    }

    /// Whether no application gets a frame.
    pub fn is_empty(&self) -> bool {
        self.urls.is_empty()
    }

    /// The hidden iframes, one per application.
    pub fn frames(&self) -> String {
        self.urls
            .iter()
            .map(|url| {
                format!(
                    "<iframe class=\"front-channel\" src=\"{}\" title=\"Signing you out\" \
                     hidden></iframe>",
                    escape_html(url.as_str())
                )
            })
            .collect()
    }

    /// What the page's `<head>` needs to move on to `location` by itself after the frames.
    pub fn continue_head(location: &str) -> String {
        format!(
            "<noscript><meta http-equiv=\"refresh\" content=\"{NOSCRIPT_DELAY_SECS};url={}\">\
             </noscript><script src=\"{SCRIPT_PATH}\" defer></script>",
            escape_html(location)
        )
    }

    /// The Continue link the script follows after the frames.
    pub fn continue_link(location: &str) -> String {
        format!(
            "<p><a class=\"continue\" href=\"{}\" data-after-frames>Continue</a></p>",
            escape_html(location)
        )
    }

    /// `response` with a Content-Security-Policy that also allows framing these origins (the
    /// page headers keep a policy a response already has).
    pub fn allow_frames(&self, mut response: Response) -> Response {
        if self.is_empty() {
            return response;
        }
        let policy = format!(
            "{CONTENT_SECURITY_POLICY_VALUE}; frame-src {}",
            frame_sources(&self.urls).join(" ")
        );
        if let Ok(value) = HeaderValue::from_str(&policy) {
            response
                .headers_mut()
                .insert(CONTENT_SECURITY_POLICY, value);
        }
        response
    }
}
