//! The browser viewer: one page and one script, embedded in the binary (nothing is fetched
//! from elsewhere).

use axum::http::header;
use axum::response::IntoResponse;

/// `GET /`: the viewer's page.
pub(crate) async fn index() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        include_str!("../viewer/index.html"),
    )
}

/// `GET /viewer.js`: the viewer's script.
pub(crate) async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../viewer/viewer.js"),
    )
}
