//! The few static files the server's own pages load: the pages' style sheet and the script
//! that submits a `form_post` authorization response. Embedded in the binary and served from
//! the server's own origin, so every page's Content-Security-Policy can forbid inline code.

use axum::Router;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::IntoResponse;
use axum::routing::get;
use protocol::response::{AUTO_SUBMIT_SCRIPT, AUTO_SUBMIT_SCRIPT_PATH};

use super::oidc::front_channel;

use super::AppState;

/// Where the pages' style sheet is served.
pub const STYLE_SHEET_PATH: &str = "/assets/page.css";

/// The sign-in, sign-out, logout receipt, error and console pages' style: readable at 360 px and on a
/// large screen, with a visible focus ring (inputs, buttons, links) for keyboard use.
const STYLE_SHEET: &str = "body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;\
display:flex;min-height:100vh;align-items:center;justify-content:center}\
main{background:#fff;padding:2rem 2.5rem;border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.15);\
width:min(22rem,90vw)}h1{font-size:1.3rem;margin-top:0}\
label{display:block;margin:.8rem 0 .3rem;font-weight:600}\
input{width:100%;box-sizing:border-box;padding:.55rem;font-size:1rem;border:1px solid #999;\
border-radius:4px}input:focus,button:focus{outline:3px solid #2a6df4;outline-offset:1px}\
button{margin-top:1.2rem;width:100%;padding:.6rem;font-size:1rem;border:0;border-radius:4px;\
background:#2a6df4;color:#fff;cursor:pointer}\
button.secondary{background:#fff;color:#1f4fb5;border:1px solid #2a6df4}\
.error{color:#a00;background:#fdecec;padding:.5rem;border-radius:4px}\
ul.applications{padding-left:1.2rem}h2{font-size:1.05rem;margin:1.2rem 0 .4rem}\
a.continue{display:block;margin-top:1.2rem;padding:.6rem;border-radius:4px;background:#2a6df4;\
color:#fff;text-align:center;text-decoration:none;font-size:1rem}\
a.continue:hover{text-decoration:underline}a:focus{outline:3px solid #2a6df4;outline-offset:2px}\
body.console{display:block;min-height:0}small.id{display:block;color:#555;font-size:.8em}body.console main{box-sizing:border-box;\
width:min(72rem,calc(100% - 2rem));margin:1.5rem auto}body.console main.narrow{width:min(26rem,90vw)}\
header.console{display:flex;flex-wrap:wrap;align-items:center;justify-content:space-between;\
gap:.5rem;background:#1f2a44;padding:.4rem 1rem}header.console ul{list-style:none;margin:0;\
padding:0;display:flex;flex-wrap:wrap;gap:.2rem}header.console a{display:block;color:#fff;\
padding:.45rem .7rem;border-radius:4px;text-decoration:none}header.console a:hover{\
text-decoration:underline}header.console a[aria-current=page]{background:#2a6df4}\
header.console a:focus,header.console button:focus{outline:3px solid #ffbf47;outline-offset:1px}\
form.sign-out button{margin:0;width:auto;padding:.4rem .9rem}\
dl.figures{display:flex;flex-wrap:wrap;gap:1rem;margin:0}dl.figures div{flex:1 1 9rem;\
border:1px solid #ccd;border-radius:6px;padding:.6rem .8rem}dl.figures dt{font-size:.85rem;\
color:#444}dl.figures dd{margin:0;font-size:1.6rem;font-weight:600}\
div.table{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:.9rem}\
caption{text-align:left;font-weight:600;padding:.4rem 0}th,td{text-align:left;\
padding:.4rem .5rem;border-bottom:1px solid #dde}thead th{background:#eef0f5}\
.alerting{color:#a00;font-weight:600}\
select{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem;border:1px solid #999;\
border-radius:4px;background:#fff}select:focus{outline:3px solid #2a6df4;outline-offset:1px}\
form.filters{display:flex;flex-wrap:wrap;gap:.2rem 1rem;align-items:flex-end;margin-bottom:1rem}\
form.filters div{flex:1 1 12rem}form.filters button{width:auto;padding:.55rem 1.2rem}\
form.redeliver button{width:auto;padding:.5rem 1.2rem}\
dl.fields{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem}\
dl.fields dt{font-weight:600}dl.fields dd{margin:0;overflow-wrap:anywhere}\
div.actions{display:flex;flex-wrap:wrap;gap:.4rem}div.actions button{margin:0;width:auto;\
padding:.35rem .8rem;font-size:.9rem}div.confirm{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem;\
margin-top:.8rem}div.confirm input{width:auto;margin:0}div.confirm label{margin:0}\
input[type=checkbox]:focus{outline:3px solid #2a6df4;outline-offset:2px}\
form.sign-out-everyone button{width:auto;padding:.5rem 1.2rem;background:#a00}\
progress{display:block;width:100%;height:1.2rem;margin:.3rem 0 1rem}\
form.action{margin:.6rem 0}form.action button{width:auto;padding:.5rem 1.2rem;margin-top:.6rem}\
td form.action{margin:0}td form.action button{margin:0;padding:.3rem .8rem}\
div.confirm p.error{flex-basis:100%}\
textarea{width:100%;box-sizing:border-box;padding:.55rem;font-size:.95rem;font-family:monospace;\
border:1px solid #999;border-radius:4px}textarea:focus{outline:3px solid #2a6df4;outline-offset:1px}\
fieldset{border:1px solid #ccd;border-radius:6px;margin:.8rem 0 0;padding:.2rem .8rem .6rem}\
legend{font-weight:600;padding:0 .3rem}form.settings{max-width:40rem}\
form.settings button{width:auto;padding:.55rem 1.2rem}code{overflow-wrap:anywhere}\
code.secret{font-size:1.05rem;background:#fff8d6;padding:.2rem .4rem;border-radius:4px}\
div.charts{display:flex;flex-wrap:wrap;gap:1rem;margin-bottom:1rem}\
figure.chart{flex:1 1 22rem;margin:0;border:1px solid #ccd;border-radius:6px;padding:.5rem}\
figure.chart figcaption{font-weight:600;font-size:.9rem}svg.chart{display:block;width:100%;height:auto}\
svg.chart .sent{fill:#2a6f97}svg.chart .failed{fill:#c0392b}\
svg.chart path.latency{fill:none;stroke:#e69f00;stroke-width:2}svg.chart circle.latency{fill:#e69f00}\
svg.chart .axis{stroke:#888;stroke-width:1}svg.chart .tick{font-size:10px;fill:#444}\
p.legend .sent,p.legend .failed,p.legend .latency{font-weight:600}\
p.legend .sent{color:#2a6f97}p.legend .failed{color:#c0392b}p.legend .latency{color:#8a5a00}\n";

/// One embedded file with its media type; a day in caches (the content changes only with the
/// binary).
fn asset(media_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, media_type),
            (CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
}

/// `GET /assets/…`
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            STYLE_SHEET_PATH,
            get(|| async { asset("text/css; charset=utf-8", STYLE_SHEET) }),
        )
        .route(
            AUTO_SUBMIT_SCRIPT_PATH,
            get(|| async { asset("text/javascript; charset=utf-8", AUTO_SUBMIT_SCRIPT) }),
        )
        .route(
            front_channel::SCRIPT_PATH,
            get(|| async { asset("text/javascript; charset=utf-8", front_channel::SCRIPT) }),
        )
}
