//! The page's static files, embedded in the binary.

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::App;

/// Path, content type and content of each file.
const FILES: [(&str, &str, &str); 4] = [
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("../static/index.html"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../static/app.js"),
    ),
    (
        "/style.css",
        "text/css; charset=utf-8",
        include_str!("../static/style.css"),
    ),
    (
        "/vendor/chart.umd.min.js",
        "text/javascript; charset=utf-8",
        include_str!("../static/vendor/chart.umd.min.js"),
    ),
];

pub(crate) fn routes() -> Router<Arc<App>> {
    let mut router = Router::new();
    for (path, content_type, body) in FILES {
        router =
            router.route(
                path,
                get(move || async move {
                    ([(header::CONTENT_TYPE, content_type)], body).into_response()
                }),
            );
    }
    router.fallback(|| async { crate::not_found() })
}
