//! Errors: [`ServeError`] for starting a server, [`ApiError`] for one request's answer.

use std::net::SocketAddr;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// A dataset did not open (the error names its file and element).
    #[error("{0}")]
    Open(#[from] annpage::Error),
    /// A dataset name that cannot be used, or is given twice.
    #[error("dataset name {0}")]
    Name(String),
    /// No dataset was given.
    #[error("no dataset to serve: give at least one FILE (or NAME=FILE)")]
    NoDatasets,
    /// The address could not be bound.
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    /// The runtime could not start or the server failed while running.
    #[error("I/O error: {0}")]
    Io(std::io::Error),
}

/// The answer to a request that failed: a status and a one-line message, sent as
/// `{"error": "..."}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }

    /// An answer larger than the server may hold at once.
    pub fn too_large(what: &str, bytes: u64, limit: u64) -> Self {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!(
                "{what} would take {bytes} bytes, more than this server answers at once \
                 ({limit} bytes): ask for less (fewer cells or genes, or max_points)"
            ),
        }
    }

    /// An answer that turned out larger than its reservation while the rest of the answers'
    /// budget is held by other requests: 503, to be retried. (Its read's caller leads the
    /// message with what was asked.)
    pub fn busy(bytes: u64) -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: format!(
                "the answer takes {bytes} bytes, more than the answers' budget has free now: \
                 retry later"
            ),
        }
    }

    /// A request whose body did not arrive in time: 408.
    pub fn timed_out(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::REQUEST_TIMEOUT,
            message: message.into(),
        }
    }

    /// Any other error answer (a route or a method that does not exist, a malformed URL)
    /// as one: its status, and its text or else the status's name as the message.
    pub fn from_status(status: StatusCode, text: &str) -> Self {
        let text = text.trim();
        let message = match text.is_empty() {
            true => status.canonical_reason().unwrap_or("error").to_owned(),
            false => text.to_owned(),
        };
        ApiError { status, message }
    }

    /// A request the file cannot answer as asked (values that are not numbers): 422.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: message.into(),
        }
    }

    /// The same error, its message led by what was asked (e.g. `obsm 'X_umap' of pbmc`).
    pub fn about(mut self, what: &str) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
        }
    }
}

impl From<annpage::Error> for ApiError {
    /// A caller's mistake (an index out of range, a bad query) is a 400, names the axis does
    /// not have a 404;
    /// anything the file itself is to blame for is a 500 naming the file and element.
    fn from(e: annpage::Error) -> Self {
        fn innermost(e: &annpage::Error) -> &annpage::Error {
            match e {
                annpage::Error::InFile { source, .. }
                | annpage::Error::InElement { source, .. } => innermost(source),
                e => e,
            }
        }
        let status = match innermost(&e) {
            annpage::Error::InvalidArgument(_) => StatusCode::BAD_REQUEST,
            annpage::Error::NotFound(_) => StatusCode::NOT_FOUND,
            annpage::Error::Unsupported(_) => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError {
            status,
            message: e.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let line = serde_json::json!({ "error": self.message.replace('\n', " ") }).to_string();
        (
            self.status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            line + "\n",
        )
            .into_response()
    }
}
