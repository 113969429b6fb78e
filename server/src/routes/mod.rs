//! The router: every endpoint, the middleware that logs and counts requests, and how an
//! answer reserves its memory and reads on a blocking thread.

mod download;
mod frames;
mod matrices;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Query, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::body::{HeldBody, Pace};
use crate::catalog::Catalog;
use crate::encode::{encode_parts, to_json, NamedArray};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::ServeOptions;

/// What every handler shares.
pub(crate) struct App {
    catalog: Catalog,
    metrics: Metrics,
    /// Answers in flight, in KiB: a request holds its answer's estimate until it is sent.
    /// Small answers have a share of their own, so that they never queue behind a large one
    /// waiting for room (the semaphores are first come, first served).
    answers: Answers,
    answer_limit_kib: u32,
    /// Reads that touch few blocks (obs/var, gene columns from a gene-major copy): many at once.
    light: Arc<Semaphore>,
    /// Reads whose blocks are many (cells, genes from a CSR X, obsm, subsets): one per pool
    /// thread, since the blocks a read holds while it gathers are on top of the cache.
    heavy: Arc<Semaphore>,
    pace: Pace,
    scratch: PathBuf,
    log: bool,
    /// How long a request's body may take to arrive (the time its head has).
    body_timeout: Duration,
}

/// The largest request body taken (`POST /subset`'s JSON).
const MAX_BODY: u64 = 2 << 20;

impl App {
    pub fn new(catalog: Catalog, options: &ServeOptions, threads: usize) -> Self {
        let answer_limit_kib = u32::try_from((options.response_bytes >> 10).max(1))
            .unwrap_or(Semaphore::MAX_PERMITS.min(u32::MAX as usize) as u32);
        App {
            catalog,
            metrics: Metrics::default(),
            answers: Answers::new(answer_limit_kib),
            answer_limit_kib,
            light: Arc::new(Semaphore::new(readers(threads) - threads)),
            heavy: Arc::new(Semaphore::new(threads)),
            pace: Pace {
                idle: options.send_timeout,
                min_rate: options.min_send_rate,
            },
            scratch: options
                .scratch_dir
                .clone()
                .unwrap_or_else(std::env::temp_dir),
            log: options.log_requests,
            body_timeout: options.header_timeout,
        }
    }

    /// Runs `read` on a blocking thread once `bytes` of answer memory are reserved and a
    /// reader of its weight is free; the reservation comes back with the answer (released when
    /// it is sent).
    async fn read<T: Send + 'static>(
        &self,
        what: &str,
        bytes: u64,
        weight: Weight,
        read: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
    ) -> Result<(T, OwnedSemaphorePermit), ApiError> {
        self.read_growing(what, bytes, weight, move |_| read())
            .await
    }

    /// [`App::read`] for a read whose peak is known only as it goes (strings): it starts with
    /// `bytes` reserved and holds more through the [`Reservation`] it is given.
    async fn read_growing<T: Send + 'static>(
        &self,
        what: &str,
        bytes: u64,
        weight: Weight,
        read: impl FnOnce(&mut Reservation) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<(T, OwnedSemaphorePermit), ApiError> {
        let kib = bytes.div_ceil(1024).max(1);
        let limit = u64::from(self.answers.largest());
        if kib > limit {
            return Err(ApiError::too_large(what, bytes, limit << 10));
        }
        let closed = |_| ApiError::internal("the server is shutting down");
        let permit = self
            .answers
            .pool(kib as u32)
            .clone()
            .acquire_many_owned(kib as u32)
            .await
            .map_err(closed)?;
        let queue = match weight {
            Weight::Light => &self.light,
            Weight::Heavy => &self.heavy,
        };
        let reader = queue.clone().acquire_owned().await.map_err(closed)?;
        let mut reservation = Reservation {
            permit,
            large: self.answers.large.clone(),
            small_max_kib: u64::from(self.answers.small_max),
            limit_kib: limit,
            what: what.to_owned(),
        };
        // The reservation travels with the read: a client that goes away drops this future,
        // not the memory the read is still building.
        let (value, reservation) = off_runtime(move || {
            let _reader = reader;
            Ok((read(&mut reservation), reservation))
        })
        .await
        .map_err(|e| e.about(what))?;
        // What was asked leads the message of a read that failed (the file's own errors name
        // the file and element; a caller's mistake is already 4xx and says what it was).
        let value = value.map_err(|e| match e.status.is_server_error() || e.status == 422 {
            true => e.about(what),
            false => e,
        })?;
        Ok((value, reservation.permit))
    }

    /// Runs a small read that sizes a request's answer (a view's stored values, an
    /// embedding's width) on a blocking thread once a light reader is free: reads of the file
    /// never outnumber the readers, whatever the requests.
    async fn probe<T: Send + 'static>(
        &self,
        probe: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let closed = |_| ApiError::internal("the server is shutting down");
        let reader = self.light.clone().acquire_owned().await.map_err(closed)?;
        off_runtime(move || {
            let _reader = reader;
            probe()
        })
        .await
    }

    /// The body of a request (`POST /subset`): at most [`MAX_BODY`] bytes (a larger declared
    /// length is a 413 at once), held within the answers' budget while it arrives (a 503 when
    /// the budget has no room for it in time), and arriving within the time a request's head
    /// has (else a 408): a client that stops sending pins neither memory nor a connection.
    async fn request_body(
        &self,
        headers: &HeaderMap,
        body: Body,
    ) -> Result<(Bytes, OwnedSemaphorePermit), ApiError> {
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        // What the answers' budget can hold at once, if that is less.
        let cap = MAX_BODY.min(u64::from(self.answers.largest()) << 10);
        if let Some(n) = declared.filter(|&n| n > cap) {
            return Err(ApiError::too_large("the request body", n, cap));
        }
        let kib = declared.unwrap_or(cap).div_ceil(1024).max(1) as u32;
        let room = self.answers.pool(kib).clone().acquire_many_owned(kib);
        let held = match tokio::time::timeout(self.body_timeout, room).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(ApiError::internal("the server is shutting down")),
            Err(_) => return Err(ApiError::busy(u64::from(kib) << 10).about("the request body")),
        };
        let limit = usize::try_from(cap).unwrap_or(usize::MAX);
        match tokio::time::timeout(self.body_timeout, axum::body::to_bytes(body, limit)).await {
            Ok(Ok(bytes)) => Ok((bytes, held)),
            Ok(Err(e)) => Err(ApiError::from_status(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the request body: {e} (at most {cap} bytes)"),
            )),
            Err(_) => Err(ApiError::timed_out(format!(
                "the request body did not arrive within {} s",
                self.body_timeout.as_secs_f64()
            ))),
        }
    }

    fn in_flight(&self) -> usize {
        let free = self.answers.small.available_permits() + self.answers.large.available_permits();
        (self.answer_limit_kib as usize - free) << 10
    }
}

/// The answers' budget a read holds while it builds its answer.
pub(crate) struct Reservation {
    permit: OwnedSemaphorePermit,
    /// The share of answers larger than a small one's most (see [`Answers`]).
    large: Arc<Semaphore>,
    small_max_kib: u64,
    limit_kib: u64,
    what: String,
}

impl Reservation {
    /// Makes sure `bytes` in all are held, taking what is missing from the budget (moving to
    /// the large answers' share once past a small answer's most). Waits for room at most
    /// [`GROW_WAIT`] (a read that waited long while holding part of the budget could wait for
    /// others doing the same): more than the server answers at once is a 413, more than comes
    /// free in that time a 503 to retry.
    pub fn hold(&mut self, bytes: u64) -> Result<(), ApiError> {
        let kib = bytes.div_ceil(1024);
        let have = self.permit.num_permits() as u64;
        if kib <= have {
            return Ok(());
        }
        if kib > self.limit_kib {
            return Err(ApiError::too_large(&self.what, bytes, self.limit_kib << 10));
        }
        let in_large = Arc::ptr_eq(self.permit.semaphore(), &self.large);
        let moving = !in_large && kib > self.small_max_kib;
        let (share, n) = match moving {
            false => (Arc::clone(self.permit.semaphore()), kib - have),
            true => (Arc::clone(&self.large), kib),
        };
        let n = n as u32; // At most the limit: a u32.
        let taken = share.clone().try_acquire_many_owned(n).ok().or_else(|| {
            // On a blocking thread of the runtime: room comes as other answers are sent.
            let runtime = tokio::runtime::Handle::try_current().ok()?;
            let wait = tokio::time::timeout(GROW_WAIT, share.acquire_many_owned(n));
            runtime.block_on(wait).ok()?.ok()
        });
        match taken {
            Some(p) if moving => self.permit = p,
            Some(p) => self.permit.merge(p),
            None => return Err(ApiError::busy(bytes)),
        }
        Ok(())
    }
}

/// How long a read waits for more of the answers' budget than it first reserved.
const GROW_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The answers' budget in two shares: an eighth for answers of at most a 64th of the budget,
/// the rest for the others (a small answer never waits behind a large one for room).
struct Answers {
    small: Arc<Semaphore>,
    large: Arc<Semaphore>,
    large_kib: u32,
    small_max: u32,
}

impl Answers {
    fn new(limit_kib: u32) -> Self {
        let small = limit_kib / 8;
        Answers {
            small: Arc::new(Semaphore::new(small as usize)),
            large: Arc::new(Semaphore::new((limit_kib - small) as usize)),
            large_kib: limit_kib - small,
            small_max: limit_kib / 64,
        }
    }

    /// The largest answer, in KiB: the large share (larger ones are refused, `App::read`).
    fn largest(&self) -> u32 {
        self.large_kib
    }

    /// The share an answer of `kib` waits in.
    fn pool(&self, kib: u32) -> &Arc<Semaphore> {
        if kib <= self.small_max {
            &self.small
        } else {
            &self.large
        }
    }
}

/// Runs `f` on tokio's blocking pool: anything that may read the file stays off the
/// runtime's workers.
pub(crate) async fn off_runtime<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("the read failed: {e}")))?
}

/// Requests reading at once for `threads` pool threads: `threads` heavy ones and the rest
/// light, so that a small read does not queue behind large ones.
pub(crate) fn readers(threads: usize) -> usize {
    (4 * threads).max(threads + 6)
}

/// How many blocks a read touches, which decides the queue it waits in.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Weight {
    /// A frame, or a gene column from a gene-major copy.
    Light,
    /// Anything that gathers from many blocks.
    Heavy,
}

/// How numbers are answered: `?format=json`, or the binary arrays of [`crate::encode`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Binary,
    Json,
}

impl Format {
    fn of(query: &HashMap<String, String>) -> Result<Format, ApiError> {
        match query.get("format").map(String::as_str) {
            None | Some("binary") => Ok(Format::Binary),
            Some("json") => Ok(Format::Json),
            Some(other) => Err(ApiError::bad_request(format!(
                "format '{other}': expected binary or json"
            ))),
        }
    }

    /// What the answer takes in memory per byte of binary values (JSON values take 32
    /// bytes each before they are spelled out).
    fn factor(self) -> u64 {
        match self {
            Format::Binary => 1,
            Format::Json => 12,
        }
    }
}

/// A finished answer: its bytes (in parts, sent one after the other) and their type.
struct Answer {
    parts: Vec<Bytes>,
    content_type: &'static str,
}

impl Answer {
    fn arrays(arrays: Vec<NamedArray>, format: Format) -> Answer {
        match format {
            Format::Binary => Answer {
                parts: encode_parts(arrays),
                content_type: "application/x-annpage-arrays",
            },
            Format::Json => Answer::json(&to_json(&arrays)),
        }
    }

    fn json(value: &impl serde::Serialize) -> Answer {
        let mut bytes = serde_json::to_vec(value).expect("JSON values serialise");
        bytes.push(b'\n');
        // The answer keeps its body's length reserved: no spare capacity may outlive it.
        bytes.shrink_to_fit();
        Answer::json_bytes(bytes)
    }

    /// A JSON answer already written (with its final newline).
    fn json_bytes(bytes: Vec<u8>) -> Answer {
        Answer {
            parts: vec![Bytes::from(bytes)],
            content_type: "application/json",
        }
    }

    fn len(&self) -> usize {
        self.parts.iter().map(Bytes::len).sum()
    }

    /// The response, holding `permit` until its body is sent or the send timeout passes. The
    /// reservation was the read's estimate of its peak (what it gathered, converted and
    /// encoded); what sending holds is the body alone, so the rest is given back now.
    fn send(self, mut permit: OwnedSemaphorePermit, app: &App) -> Response {
        let body_kib = self.len().div_ceil(1024).max(1);
        if let Some(excess) = permit.num_permits().checked_sub(body_kib) {
            drop(permit.split(excess));
        }
        self.respond(Some(permit), app)
    }

    /// A small answer built from what is in memory already (no reservation).
    fn send_unreserved(self, app: &App) -> Response {
        self.respond(None, app)
    }

    fn respond(self, permit: Option<OwnedSemaphorePermit>, app: &App) -> Response {
        let body = HeldBody::new(self.parts, permit, app.pace);
        ([(header::CONTENT_TYPE, self.content_type)], Body::new(body)).into_response()
    }
}

/// A comma-separated list of a query parameter (empty when absent).
fn list(query: &HashMap<String, String>, key: &str) -> Vec<String> {
    query
        .get(key)
        .map(|v| {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// A comma-separated list of positions below `len`.
pub(super) fn positions(
    query: &HashMap<String, String>,
    key: &str,
    len: usize,
    what: &str,
) -> Result<Vec<usize>, ApiError> {
    list(query, key)
        .iter()
        .map(|v| match v.parse::<usize>() {
            Ok(i) if i < len => Ok(i),
            Ok(i) => Err(ApiError::bad_request(format!(
                "{what} position {i} is out of range (0..{len})"
            ))),
            Err(_) => Err(ApiError::bad_request(format!(
                "{key}: '{v}' is not a position"
            ))),
        })
        .collect()
}

/// A non-negative integer query parameter.
fn number(query: &HashMap<String, String>, key: &str) -> Result<Option<usize>, ApiError> {
    query
        .get(key)
        .map(|v| {
            v.parse::<usize>().map_err(|_| {
                ApiError::bad_request(format!("{key}={v}: expected a non-negative integer"))
            })
        })
        .transpose()
}

pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(crate::viewer::index))
        .route("/viewer.js", get(crate::viewer::script))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/datasets", get(frames::datasets))
        .route("/datasets/{d}", get(frames::dataset))
        .route("/datasets/{d}/obs", get(frames::obs))
        .route("/datasets/{d}/var", get(frames::var))
        .route("/datasets/{d}/genes", get(matrices::genes))
        .route("/datasets/{d}/genes/{gene}", get(matrices::gene))
        .route("/datasets/{d}/cells", get(matrices::cells))
        .route("/datasets/{d}/obsm/{key}", get(matrices::obsm))
        .route("/datasets/{d}/subset", post(download::subset))
        .route_layer(axum::middleware::from_fn_with_state(app.clone(), observe))
        .fallback(unknown)
        .layer(axum::middleware::map_response(json_errors))
        .with_state(app)
}

/// Makes every error answer one line of JSON, as the handlers' own are: those axum gives
/// (a method a route does not take, a malformed path or query) carry text or nothing.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 << 10)
        .await
        .unwrap_or_default();
    let mut answer = ApiError::from_status(status, &String::from_utf8_lossy(&text)).into_response();
    // Keep what the status needs said (Allow on a 405).
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(v) = parts.headers.get(&name) {
            answer.headers_mut().insert(name, v.clone());
        }
    }
    answer
}

/// Counts and logs every routed request (one line at info level).
async fn observe(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("?", |p| p.as_str())
        .to_string();
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let start = Instant::now();
    let response = next.run(req).await;
    let elapsed = start.elapsed();
    let status = response.status().as_u16();
    // Any token is a method in HTTP: those it defines are counted apart, others as one, so
    // that requests cannot grow the counters without bound.
    let known = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::OPTIONS,
        Method::PATCH,
        Method::CONNECT,
        Method::TRACE,
    ];
    let label = if known.contains(&method) {
        method.as_str()
    } else {
        "OTHER"
    };
    app.metrics
        .record(&format!("{label} {route}"), status, elapsed);
    if app.log {
        eprintln!(
            "INFO {method} {uri} {status} {:.1} ms",
            elapsed.as_secs_f64() * 1e3
        );
    }
    response
}

async fn unknown(req: Request) -> ApiError {
    ApiError::not_found(format!("no endpoint {} {}", req.method(), req.uri().path()))
}

async fn metrics(
    State(app): State<Arc<App>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let cache = app.catalog.cache.stats();
    Ok(match Format::of(&query)? {
        Format::Json => (
            [(header::CONTENT_TYPE, "application/json")],
            app.metrics.json(&cache, app.in_flight()).to_string(),
        )
            .into_response(),
        Format::Binary => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            app.metrics.prometheus(&cache, app.in_flight()),
        )
            .into_response(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_answers_have_a_share_that_large_ones_cannot_hold_up() {
        let answers = Answers::new(1024);
        assert_eq!(answers.largest(), 896);
        assert!(Arc::ptr_eq(answers.pool(16), &answers.small));
        assert!(Arc::ptr_eq(answers.pool(17), &answers.large));
        // The large share taken whole: a small answer still finds room.
        let _large = answers
            .pool(896)
            .clone()
            .try_acquire_many_owned(896)
            .unwrap();
        assert!(answers.pool(16).clone().try_acquire_many_owned(16).is_ok());
        // A budget too small for a small share puts everything in the large one.
        let tiny = Answers::new(16);
        assert_eq!((tiny.largest(), tiny.small_max), (14, 0));
        assert!(Arc::ptr_eq(tiny.pool(1), &tiny.large));
    }
}
