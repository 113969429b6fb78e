//! Metadata answers: the dataset list and the `obs`/`var` frames as JSON.

use std::collections::HashMap;
use std::sync::Arc;

use annpage::data::{ArrayData, Column};
use annpage::Axis;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde_json::{json, Value};

use super::{list, Answer, App, Weight};
use crate::error::ApiError;

/// `GET /datasets`: one object per dataset.
pub(super) async fn datasets(State(app): State<Arc<App>>) -> Response {
    let all: Vec<Value> = app.catalog.datasets.iter().map(|d| d.summary()).collect();
    Answer::json(&Value::Array(all)).send_unreserved(&app)
}

/// `GET /datasets/{d}`: one dataset's object.
pub(super) async fn dataset(
    State(app): State<Arc<App>>,
    Path(d): Path<String>,
) -> Result<Response, ApiError> {
    let d = app.catalog.get(&d)?;
    Ok(Answer::json(&d.summary()).send_unreserved(&app))
}

/// `GET /datasets/{d}/obs?columns=a,b&index=false`.
pub(super) async fn obs(
    state: State<Arc<App>>,
    d: Path<String>,
    query: Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    frame(state, d, query, Axis::Obs).await
}

/// `GET /datasets/{d}/var?columns=a,b&index=false`.
pub(super) async fn var(
    state: State<Arc<App>>,
    d: Path<String>,
    query: Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    frame(state, d, query, Axis::Var).await
}

async fn frame(
    State(app): State<Arc<App>>,
    Path(d): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    axis: Axis,
) -> Result<Response, ApiError> {
    let d = app.catalog.get(&d)?;
    // `columns` absent: every column; `columns=` (empty): none, only the index.
    let columns = query
        .contains_key("columns")
        .then(|| list(&query, "columns"));
    let index = match query.get("index").map(String::as_str) {
        None | Some("true") | Some("1") => true,
        Some("false") | Some("0") => false,
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "index={v}: expected true or false"
            )))
        }
    };
    let (n_obs, n_vars) = d.handle.shape();
    let rows = match axis {
        Axis::Obs => n_obs,
        Axis::Var => n_vars,
    } as u64;
    // JSON spells each value out: about 24 bytes a value, the index included; without
    // `columns` the frame is read whole.
    let n_columns = columns.as_ref().map_or(32, |c| c.len()) as u64;
    let values = (n_columns + u64::from(index)) * rows;
    let what = format!("{}'s {} frame", d.name, axis.name());
    let (answer, permit) = app
        .read(&what, values * 24, Weight::Light, move || {
            let reader = d.reader();
            let picked = match columns {
                None => {
                    let df = reader.frame(axis)?;
                    let all = df.columns().iter().map(|(n, c)| (n.clone(), c.clone()));
                    all.collect()
                }
                // Only the columns asked for are read.
                Some(names) => {
                    let mut picked = Vec::with_capacity(names.len());
                    for name in names {
                        let Some(column) = reader.frame_column(axis, &name)? else {
                            return Err(ApiError::not_found(format!(
                                "no {} column '{name}' in {}",
                                axis.name(),
                                d.name
                            )));
                        };
                        picked.push((name, column));
                    }
                    picked
                }
            };
            let columns: Vec<Value> = picked
                .iter()
                .map(|(name, column)| {
                    let mut c = column_json(column);
                    c["name"] = json!(name);
                    c
                })
                .collect();
            let mut out = json!({ "columns": columns });
            if index {
                out["index"] = json!(reader.names(axis)?);
                out["index_name"] = json!(reader.index_name(axis)?);
            }
            Ok(Answer::json(&out))
        })
        .await?;
    Ok(answer.send(permit, &app))
}

fn column_json(column: &Column) -> Value {
    match column {
        Column::Array(a) => {
            json!({ "kind": "array", "dtype": a.dtype().name(), "values": values(a) })
        }
        Column::Categorical(c) => json!({
            "kind": "categorical",
            "categories": values(&c.categories),
            "ordered": c.ordered,
            "codes": c.codes,
        }),
        Column::Nullable(n) => {
            let mut v = values(n.values());
            for (value, &missing) in v.iter_mut().zip(n.mask()) {
                if missing {
                    *value = Value::Null;
                }
            }
            json!({ "kind": "nullable", "dtype": n.values().dtype().name(), "values": v })
        }
    }
}

/// The values of a 1-d array as JSON (NaN and infinities as `null`).
fn values(a: &ArrayData) -> Vec<Value> {
    fn float(v: f64) -> Value {
        serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
    }
    macro_rules! each {
        ($a:expr, $f:expr) => {
            $a.iter().map($f).collect()
        };
    }
    match a {
        ArrayData::Bool(a) => each!(a, |v| json!(v)),
        ArrayData::I8(a) => each!(a, |v| json!(v)),
        ArrayData::I16(a) => each!(a, |v| json!(v)),
        ArrayData::I32(a) => each!(a, |v| json!(v)),
        ArrayData::I64(a) => each!(a, |v| json!(v)),
        ArrayData::U8(a) => each!(a, |v| json!(v)),
        ArrayData::U16(a) => each!(a, |v| json!(v)),
        ArrayData::U32(a) => each!(a, |v| json!(v)),
        ArrayData::U64(a) => each!(a, |v| json!(v)),
        ArrayData::F32(a) => each!(a, |&v| float(f64::from(v))),
        ArrayData::F64(a) => each!(a, |&v| float(v)),
        ArrayData::String(a) => each!(a, |v| json!(v)),
    }
}
