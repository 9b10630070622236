//! The logout receipt: when the end-session response waits for the back-channel fan-out
//! (`back_channel.end_session_wait_ms`), the person then sees which applications were told
//! they signed out and which could not be reached in time, by name (never by client_id), and
//! continues by a link of their own instead of an automatic redirect. A plain page: headings,
//! lists and one real link, so it reads well in a screen reader and works with the keyboard.

use axum::http::StatusCode;
use axum::response::Response;
use domain::DomainError;
use domain::session_logout::{DeliveryStage, DeliveryView};
use protocol::response::escape_html;

use super::page;
use crate::http::AppState;

/// Whether the application heard of the logout. Only a delivered logout token counts: a
/// delivery still being tried and one given up alike mean "could not be reached in time".
/// The one place that reads a delivery's state for the receipt.
fn was_told(delivery: &DeliveryView) -> bool {
    delivery.stage == DeliveryStage::Sent
}

/// The applications of an ended session, by name, split by whether they were told.
pub struct Receipt {
    told: Vec<String>,
    unreachable: Vec<String>,
}

impl Receipt {
    /// Names each delivery's application (sorted, so the page reads the same every time).
    pub async fn of(state: &AppState, instance_id: &str, deliveries: &[DeliveryView]) -> Receipt {
        let mut told = Vec::new();
        let mut unreachable = Vec::new();
        for delivery in deliveries {
            let name = application_name(state, instance_id, &delivery.client_id).await;
            if was_told(delivery) {
                told.push(name);
            } else {
                unreachable.push(name);
            }
        }
        told.sort();
        unreachable.sort();
        Receipt { told, unreachable }
    }

    /// The page, with a link on to `continue_to` (the validated post-logout URI with its
    /// `state`, exactly as the redirect would carry it) or, without one, nowhere to go; and
    /// `frames` (front-channel logout's hidden iframes, already escaped) at its end.
    pub fn page(&self, continue_to: Option<&str>, frames: &str) -> Response {
        let mut body = String::from("<h1>You are signed out</h1>");
        if !self.told.is_empty() {
            body.push_str(&section(
                "told",
                "These applications know you signed out",
                &self.told,
            ));
        }
        if !self.unreachable.is_empty() {
            body.push_str(&section(
                "unreachable",
                "These applications could not be reached in time",
                &self.unreachable,
            ));
            body.push_str("<p>They may still show you as signed in.</p>");
        }
        match continue_to {
            // No autofocus: a screen reader starts at the top and reads the lists first; the
            // link is the page's only focusable element, one Tab away.
            Some(location) => body.push_str(&format!(
                "<p><a class=\"continue\" href=\"{}\">Continue</a></p>",
                escape_html(location)
            )),
            None => body.push_str("<p>You can close this window.</p>"),
        }
        body.push_str(frames);
        page::html(StatusCode::OK, "Signed out", &body)
    }
}

/// A heading and its list, tied together so assistive technology announces the list by it.
fn section(id: &str, heading: &str, names: &[String]) -> String {
    let items: String = names
        .iter()
        .map(|name| format!("<li>{}</li>", escape_html(name)))
        .collect();
    format!(
        "<h2 id=\"{id}-heading\">{heading}</h2>\
         <ul id=\"{id}\" class=\"applications\" aria-labelledby=\"{id}-heading\">{items}</ul>"
    )
}

/// The application's display name. An application removed since sign-in still gets a line
/// (the person should know something was not told), but a human one, not its client_id.
async fn application_name(state: &AppState, instance_id: &str, client_id: &str) -> String {
    match state.domain.application(instance_id, client_id).await {
        Ok(application) => application.config.name,
        Err(DomainError::NotFound(_)) => "A removed application".to_owned(),
        Err(error) => {
            tracing::warn!(%error, "could not name an application on the logout receipt");
            "An application".to_owned()
        }
    }
}
