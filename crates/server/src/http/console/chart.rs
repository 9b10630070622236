//! The overview's picture of one application's last 24 hours of back-channel deliveries: per
//! hour, attempts sent and failed as bars and the median latency as a line. Inline SVG made
//! here, with no script and no inline style (the shapes carry classes the embedded style sheet
//! colours), so the pages' Content-Security-Policy needs nothing new. The picture is
//! `role="img"` with its summary in words as its label; the health table beside it holds the
//! figures for whoever cannot see it.

use std::fmt::Write;

use domain::session_logout::DeliveryHour;
use protocol::response::escape_html;

/// The drawing's size in user units (it scales to its box).
const WIDTH: u32 = 480;
const HEIGHT: u32 = 140;
/// Room above the tallest bar and below the baseline (for the hour labels).
const TOP: f64 = 8.0;
const BOTTOM: f64 = 22.0;
/// Each hour's slot, and the width of each of its two bars.
const SLOT: f64 = 20.0;
const BAR: f64 = 7.0;

fn plot_height() -> f64 {
    f64::from(HEIGHT) - TOP - BOTTOM
}

fn baseline() -> f64 {
    f64::from(HEIGHT) - BOTTOM
}

/// The height of `value` on a scale whose top is `max`; at least one unit when not zero, so a
/// single failure beside thousands sent still shows.
fn scaled(value: u64, max: u64) -> f64 {
    if value == 0 || max == 0 {
        return 0.0;
    }
    (value as f64 / max as f64 * plot_height()).max(1.0)
}

fn plural(count: u64, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// The picture in words: totals, where failures were, and the latency's range.
pub fn summary(name: &str, hours: &[DeliveryHour]) -> String {
    let sent: u64 = hours.iter().map(|hour| hour.sent).sum();
    let failed: u64 = hours.iter().map(|hour| hour.failed).sum();
    if sent == 0 && failed == 0 {
        return format!("{name}: no back-channel logout deliveries in the last 24 hours.");
    }
    let mut text = format!(
        "{name}, back-channel logout in the last 24 hours: {} sent, {}",
        plural(sent, "delivery", "deliveries"),
        plural(failed, "failed attempt", "failed attempts"),
    );
    let failing = hours.iter().filter(|hour| hour.failed > 0).count() as u64;
    // The first of the hours with the most failures.
    let worst = hours
        .iter()
        .rev()
        .max_by_key(|hour| hour.failed)
        .filter(|hour| hour.failed > 0);
    if let Some(worst) = worst {
        let _ = write!(
            text,
            ", failures in {}, the most at {} UTC ({})",
            plural(failing, "hour", "hours"),
            worst.start.format("%H:00"),
            worst.failed
        );
    }
    let latencies: Vec<u64> = hours
        .iter()
        .filter_map(|hour| hour.median_latency_ms)
        .collect();
    if let (Some(low), Some(high)) = (latencies.iter().min(), latencies.iter().max()) {
        if low == high {
            let _ = write!(text, "; median latency {low} ms");
        } else {
            let _ = write!(text, "; hourly median latency {low} to {high} ms");
        }
    }
    text.push('.');
    text
}

/// The bars of one hour.
fn bars(svg: &mut String, slot: usize, hour: &DeliveryHour, max: u64) {
    let left = slot as f64 * SLOT;
    for (class, value, offset) in [("sent", hour.sent, 2.5), ("failed", hour.failed, 10.5)] {
        let height = scaled(value, max);
        if height > 0.0 {
            let _ = write!(
                svg,
                "<rect class=\"{class}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{BAR}\" height=\"{height:.1}\"/>",
                x = left + offset,
                y = baseline() - height,
            );
        }
    }
}

/// The latency line: one path, broken where an hour has no acknowledged delivery, and a dot
/// on every hour that has one (so a lone hour shows too).
fn latency_line(svg: &mut String, hours: &[DeliveryHour]) {
    let Some(max) = hours.iter().filter_map(|hour| hour.median_latency_ms).max() else {
        return;
    };
    let mut path = String::new();
    let mut dots = String::new();
    let mut drawing = false;
    for (slot, hour) in hours.iter().enumerate() {
        let Some(latency) = hour.median_latency_ms else {
            drawing = false;
            continue;
        };
        let x = slot as f64 * SLOT + SLOT / 2.0;
        let y = baseline() - scaled(latency, max);
        let _ = write!(path, "{}{x:.1} {y:.1} ", if drawing { "L" } else { "M" });
        let _ = write!(
            dots,
            "<circle class=\"latency\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2\"/>"
        );
        drawing = true;
    }
    let _ = write!(
        svg,
        "<path class=\"latency\" d=\"{}\"/>{dots}",
        path.trim_end()
    );
}

/// The chart of one application (`name`, shown as typed: escaped here) over `hours`, oldest
/// first; `id` makes the title's id unique on the page.
pub fn delivery_chart(id: &str, name: &str, hours: &[DeliveryHour]) -> String {
    let label = escape_html(&summary(name, hours));
    let max = hours
        .iter()
        .map(|hour| hour.sent.max(hour.failed))
        .max()
        .unwrap_or(0);
    let mut svg = format!(
        "<svg role=\"img\" aria-labelledby=\"{id}-title\" class=\"chart\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"{id}-title\">{label}</title>"
    );
    let _ = write!(
        svg,
        "<line class=\"axis\" x1=\"0\" y1=\"{y}\" x2=\"{WIDTH}\" y2=\"{y}\"/>",
        y = baseline()
    );
    for (slot, hour) in hours.iter().enumerate() {
        bars(&mut svg, slot, hour, max);
        // An hour label every six hours, under the slot it names.
        if slot % 6 == 0 {
            let _ = write!(
                svg,
                "<text class=\"tick\" x=\"{x:.1}\" y=\"{y:.1}\">{hour}</text>",
                x = slot as f64 * SLOT + 1.0,
                y = f64::from(HEIGHT) - 6.0,
                hour = hour.start.format("%H:00"),
            );
        }
    }
    latency_line(&mut svg, hours);
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;

    fn day() -> Vec<DeliveryHour> {
        let now: DateTime<Utc> = "2026-11-29T10:30:00Z".parse().unwrap();
        domain::session_logout::empty_day(now)
    }

    #[test]
    fn an_empty_day_draws_no_bars_and_says_so() {
        let svg = delivery_chart("c", "Notes", &day());
        assert!(svg.starts_with("<svg role=\"img\" aria-labelledby=\"c-title\""));
        assert!(!svg.contains("<rect") && !svg.contains("<path"), "{svg}");
        assert!(
            svg.contains(
                "<title id=\"c-title\">Notes: no back-channel logout deliveries in the last 24 hours.</title>"
            ),
            "{svg}"
        );
        assert!(svg.contains(">11:00</text>") && svg.contains(">05:00</text>"));
        assert!(!svg.contains("style"));
    }

    #[test]
    fn one_failing_hour_is_the_one_tall_red_bar_and_is_named() {
        let mut hours = day();
        hours[20].failed = 4;
        let svg = delivery_chart("c", "Notes", &hours);
        assert_eq!(svg.matches("class=\"failed\"").count(), 1, "{svg}");
        assert!(
            svg.contains(
                "<rect class=\"failed\" x=\"410.5\" y=\"8.0\" width=\"7\" height=\"110.0\"/>"
            ),
            "{svg}"
        );
        assert_eq!(
            summary("Notes", &hours),
            "Notes, back-channel logout in the last 24 hours: 0 deliveries sent, 4 failed \
             attempts, failures in 1 hour, the most at 07:00 UTC (4)."
        );
    }

    #[test]
    fn bars_share_one_scale_and_small_values_still_show() {
        let mut hours = day();
        hours[0].sent = 1_000;
        hours[1].sent = 500;
        hours[2].failed = 1;
        hours[1].median_latency_ms = Some(40);
        hours[2].median_latency_ms = Some(80);
        hours[5].median_latency_ms = Some(20);
        let svg = delivery_chart("c", "Notes", &hours);
        assert!(
            svg.contains("y=\"8.0\" width=\"7\" height=\"110.0\""),
            "{svg}"
        );
        assert!(
            svg.contains("y=\"63.0\" width=\"7\" height=\"55.0\""),
            "{svg}"
        );
        assert!(svg.contains("class=\"failed\" x=\"50.5\" y=\"117.0\" width=\"7\" height=\"1.0\""));
        // The line breaks where an hour has no latency and has a dot per measured hour.
        assert!(
            svg.contains("<path class=\"latency\" d=\"M30.0 63.0 L50.0 8.0 M110.0 90.5\"/>"),
            "{svg}"
        );
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(summary("Notes", &hours).ends_with("; hourly median latency 20 to 80 ms."));
    }

    #[test]
    fn the_name_is_escaped_and_the_hours_are_labelled_in_utc() {
        let mut hours = day();
        hours[23].sent = 1;
        let svg = delivery_chart("c", "<Notes & Tasks>", &hours);
        assert!(
            svg.contains("&lt;Notes &amp; Tasks&gt;, back-channel logout"),
            "{svg}"
        );
        assert!(!svg.contains("<Notes"));
        assert!(svg.contains("1 delivery sent, 0 failed attempts."), "{svg}");
    }
}
