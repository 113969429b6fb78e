//! `POST /datasets/{d}/subset`: a subset written through the backed plan to a scratch file
//! and streamed as an `.h5ad` download.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use annpage::query::Query;
use annpage::{Axis, Compression, Selection, WriteOptions};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{App, Weight};
use crate::body::FileBody;
use crate::error::ApiError;
use crate::source::Source;

/// Scratch files of this process get distinct names.
static SCRATCH: AtomicU64 = AtomicU64::new(0);

/// Writes the subset a JSON body asks for and streams it:
/// `{"obs_query": "n_genes > 200", "var_names": ["CD3E"], "compression": "gzip"}`; each axis
/// by `*_query`, `*_names` or `*_positions` (at most one), everything when none is given.
pub(super) async fn subset(
    State(app): State<Arc<App>>,
    Path(d): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let d = app.catalog.get(&d)?;
    let (body, held) = app.request_body(&headers, body).await?;
    // The read below reserves for the body and its parse: the body's own share goes back
    // first, so that no request holds part of the budget while it waits for more.
    drop(held);
    let name = format!("{}-subset.h5ad", d.name);
    let scratch = app.scratch.join(format!(
        "annpage-serve-{}-{}.h5ad",
        std::process::id(),
        SCRATCH.fetch_add(1, Ordering::Relaxed)
    ));
    // The parsed request (JSON values take about 40 bytes per number of the body); the
    // writer works within the cache's budget, and the answer is on disk.
    let reserve = (body.len() as u64 * 48).max(1 << 10);
    let ((file, len), _permit) = app
        .read("a subset request", reserve, Weight::Heavy, move || {
            let (obs, var, compression) = parse(&body)?;
            let obs = obs.resolve(d.reader())?;
            let var = var.resolve(d.reader())?;
            let view = d.reader().slice(&obs, &var)?;
            let options = WriteOptions {
                compression,
                ..WriteOptions::default()
            };
            view.write_h5ad(&scratch, &options)?;
            // Opened, then removed at once (here, so that a client gone meanwhile leaves no
            // file): the handle keeps it readable until the download ends or is dropped.
            let file = std::fs::File::open(&scratch);
            let _ = std::fs::remove_file(&scratch);
            let file = file.map_err(|e| ApiError::internal(format!("the subset file: {e}")))?;
            let len = file
                .metadata()
                .map_err(|e| ApiError::internal(format!("the subset file: {e}")))?
                .len();
            Ok((tokio::fs::File::from_std(file), len))
        })
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-hdf5".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        Body::new(FileBody::spawn(file, len, app.pace.idle)),
    )
        .into_response())
}

/// The request's two axes and compression; the error says which field is wrong.
fn parse(body: &[u8]) -> Result<(Axes, Axes, Compression), ApiError> {
    let request: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request is not JSON: {e}")))?;
    let Value::Object(request) = request else {
        return Err(ApiError::bad_request("the request is a JSON object"));
    };
    let known = [
        "obs_query",
        "var_query",
        "obs_names",
        "var_names",
        "obs_positions",
        "var_positions",
        "compression",
    ];
    if let Some(k) = request.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "unknown field '{k}' (expected one of {})",
            known.join(", ")
        )));
    }
    let compression = match request.get("compression").and_then(Value::as_str) {
        None | Some("none") => Compression::None,
        Some("gzip") => Compression::Gzip(4),
        Some("lzf") => Compression::Lzf,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "compression '{other}': expected none, gzip or lzf"
            )))
        }
    };
    let obs = Axes::parse(&request, Axis::Obs)?;
    let var = Axes::parse(&request, Axis::Var)?;
    Ok((obs, var, compression))
}

/// One axis of the request, checked before anything is read.
enum Axes {
    All,
    Query(Axis, Query),
    Names(Vec<String>),
    Positions(Vec<usize>),
}

impl Axes {
    /// `{axis}_query`, `{axis}_names` or `{axis}_positions` (at most one).
    fn parse(request: &serde_json::Map<String, Value>, axis: Axis) -> Result<Axes, ApiError> {
        let a = axis.name();
        let field = |k: &str| request.get(&format!("{a}_{k}"));
        let given = ["query", "names", "positions"]
            .iter()
            .filter(|k| field(k).is_some())
            .count();
        if given > 1 {
            return Err(ApiError::bad_request(format!(
                "give {a}_query, {a}_names or {a}_positions, not several"
            )));
        }
        if let Some(q) = field("query") {
            let q = q
                .as_str()
                .ok_or_else(|| ApiError::bad_request(format!("{a}_query is a string")))?;
            return Ok(Axes::Query(axis, q.parse()?));
        }
        if let Some(names) = field("names") {
            let names = names
                .as_array()
                .and_then(|v| v.iter().map(|n| n.as_str().map(str::to_string)).collect())
                .ok_or_else(|| ApiError::bad_request(format!("{a}_names is a list of strings")))?;
            return Ok(Axes::Names(names));
        }
        if let Some(positions) = field("positions") {
            let positions = positions
                .as_array()
                .and_then(|v| v.iter().map(|p| p.as_u64().map(|p| p as usize)).collect())
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "{a}_positions is a list of non-negative integers"
                    ))
                })?;
            return Ok(Axes::Positions(positions));
        }
        Ok(Axes::All)
    }

    /// The selection (a query is evaluated on the frame, read here).
    fn resolve(self, handle: &Source) -> Result<Selection, ApiError> {
        Ok(match self {
            Axes::All => Selection::All,
            Axes::Names(names) => Selection::names(names),
            Axes::Positions(p) => Selection::positions(p),
            Axes::Query(axis, query) => Selection::Mask(query.mask(&handle.frame(axis)?)?),
        })
    }
}
