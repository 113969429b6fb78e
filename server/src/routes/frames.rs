//! Metadata answers: the dataset list and the `obs`/`var` frames as JSON.

use std::collections::HashMap;
use std::sync::Arc;

use annpage::data::{ArrayData, Column};
use annpage::{Axis, Selection};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use super::{list, positions, Answer, App, Weight};
use crate::error::ApiError;

/// `GET /datasets`: one object per dataset.
pub(super) async fn datasets(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    let all = app
        .catalog
        .datasets
        .iter()
        .map(|d| d.summary())
        .collect::<annpage::Result<Vec<Value>>>()?;
    Ok(Answer::json(&Value::Array(all)).send_unreserved(&app))
}

/// `GET /datasets/{d}`: one dataset's object.
pub(super) async fn dataset(
    State(app): State<Arc<App>>,
    Path(d): Path<String>,
) -> Result<Response, ApiError> {
    let d = app.catalog.get(&d)?;
    Ok(Answer::json(&d.summary()?).send_unreserved(&app))
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
    let len = match axis {
        Axis::Obs => n_obs,
        Axis::Var => n_vars,
    };
    // `rows` absent: every row; `rows=0,5`: those (`rows=`: none, the columns' kinds only).
    let rows = match query.contains_key("rows") {
        true => Some(positions(&query, "rows", len, axis.name())?),
        false => None,
    };
    let n_rows = rows.as_ref().map_or(len, Vec::len) as u64;
    // JSON spells each value out: about 24 bytes a value, the index included.
    let n_columns = match &columns {
        Some(c) => c.len(),
        None => d.handle.keys(axis)?.len(),
    } as u64;
    let values = (n_columns + u64::from(index)) * n_rows;
    let what = format!("{}'s {} frame", d.name, axis.name());
    let (answer, permit) = app
        .read(&what, values * 24, Weight::Light, move || {
            let reader = match rows {
                None => d.reader().clone(),
                Some(rows) => {
                    let rows = Selection::positions(rows);
                    match axis {
                        Axis::Obs => d.reader().slice(&rows, &Selection::All)?,
                        Axis::Var => d.reader().slice(&Selection::All, &rows)?,
                    }
                }
            };
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
            let index = match index {
                true => Some((reader.names(axis)?, reader.index_name(axis)?)),
                false => None,
            };
            let out = FrameJson {
                columns: &picked,
                index,
            };
            Ok(Answer::json(&out))
        })
        .await?;
    Ok(answer.send(permit, &app))
}

/// `{"columns": [...], "index": [...], "index_name": ...}`, written straight from the columns
/// (no JSON tree: a column of a million cells is a million numbers, not a million values).
struct FrameJson<'a> {
    columns: &'a [(String, Column)],
    index: Option<(Vec<String>, Option<String>)>,
}

impl Serialize for FrameJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        let columns: Vec<ColumnJson> = self
            .columns
            .iter()
            .map(|(name, column)| ColumnJson { name, column })
            .collect();
        map.serialize_entry("columns", &columns)?;
        if let Some((names, name)) = &self.index {
            map.serialize_entry("index", names)?;
            map.serialize_entry("index_name", name)?;
        }
        map.end()
    }
}

/// One column: `name`, `kind` (`array`, `categorical` with `codes` and `categories`, or
/// `nullable` with `null` where a value is missing) and its values.
struct ColumnJson<'a> {
    name: &'a str,
    column: &'a Column,
}

impl Serialize for ColumnJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("name", self.name)?;
        match self.column {
            Column::Array(a) => {
                map.serialize_entry("kind", "array")?;
                map.serialize_entry("dtype", a.dtype().name())?;
                map.serialize_entry("values", &Values(a, None))?;
            }
            Column::Categorical(c) => {
                map.serialize_entry("kind", "categorical")?;
                map.serialize_entry("categories", &Values(&c.categories, None))?;
                map.serialize_entry("ordered", &c.ordered)?;
                map.serialize_entry("codes", &c.codes)?;
            }
            Column::Nullable(n) => {
                map.serialize_entry("kind", "nullable")?;
                map.serialize_entry("dtype", n.values().dtype().name())?;
                map.serialize_entry("values", &Values(n.values(), Some(n.mask())))?;
            }
        }
        map.end()
    }
}

/// The values of a 1-d array, `null` where the mask says missing and for NaN and infinities.
struct Values<'a>(&'a ArrayData, Option<&'a [bool]>);

impl<'a> Serialize for Values<'a> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mask = self.1;
        let missing = |i: usize| mask.is_some_and(|m| m.get(i).copied().unwrap_or(false));
        macro_rules! each {
            ($a:expr, $f:expr) => {
                s.collect_seq(
                    $a.iter()
                        .enumerate()
                        .map(|(i, v)| if missing(i) { None } else { $f(v) }),
                )
            };
        }
        let finite = |v: f64| v.is_finite().then_some(v);
        match self.0 {
            ArrayData::Bool(a) => each!(a, |v: &bool| Some(*v)),
            ArrayData::I8(a) => each!(a, |v: &i8| Some(*v)),
            ArrayData::I16(a) => each!(a, |v: &i16| Some(*v)),
            ArrayData::I32(a) => each!(a, |v: &i32| Some(*v)),
            ArrayData::I64(a) => each!(a, |v: &i64| Some(*v)),
            ArrayData::U8(a) => each!(a, |v: &u8| Some(*v)),
            ArrayData::U16(a) => each!(a, |v: &u16| Some(*v)),
            ArrayData::U32(a) => each!(a, |v: &u32| Some(*v)),
            ArrayData::U64(a) => each!(a, |v: &u64| Some(*v)),
            ArrayData::F32(a) => each!(a, |v: &f32| finite(f64::from(*v))),
            ArrayData::F64(a) => each!(a, |v: &f64| finite(*v)),
            ArrayData::String(a) => each!(a, |v: &'a String| Some(v.as_str())),
        }
    }
}
