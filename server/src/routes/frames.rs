//! Metadata answers: the dataset list and the `obs`/`var` frames as JSON.

use std::collections::HashMap;
use std::sync::Arc;

use annpage::data::{ArrayData, Column, DType};
use annpage::{Axis, Selection};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use super::{list, positions, Answer, App, Reservation, Weight};
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
    let names = match columns {
        Some(c) => c,
        None => d.handle.keys(axis)?,
    };
    // The answer is written a column at a time, each read alone and dropped once written.
    // Reserved at first (waiting for room like any read) for the most a frame of numbers
    // takes, every value's JSON and one column in memory; a frame of
    // longer strings reserves more as it grows, without waiting (a 503 when it cannot).
    let values = (names.len() as u64 + u64::from(index)) * n_rows;
    let first = values * 25 + n_rows * 8;
    let what = format!("{}'s {} frame", d.name, axis.name());
    let (answer, permit) = app
        .read_growing(&what, first, Weight::Light, move |reservation| {
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
            let mut out = FrameWriter::default();
            for name in names {
                let Some(column) = reader.frame_column(axis, &name)? else {
                    return Err(ApiError::not_found(format!(
                        "no {} column '{name}' in {}",
                        axis.name(),
                        d.name
                    )));
                };
                out.column(&name, &column, reservation)?;
            }
            if index {
                let names = ArrayData::from(reader.names(axis)?);
                out.index(&names, reader.index_name(axis)?, reservation)?;
            }
            Ok(Answer::json_bytes(out.finish(reservation)?))
        })
        .await?;
    Ok(answer.send(permit, &app))
}

/// `{"columns": [...], "index": [...], "index_name": ...}`, written a column at a time
/// straight from the values (no JSON tree: a column of a million cells is a million numbers,
/// not a million values), holding what the answer and the column being written take.
#[derive(Default)]
struct FrameWriter {
    out: Vec<u8>,
    columns: usize,
}

impl FrameWriter {
    fn column(&mut self, name: &str, column: &Column, r: &mut Reservation) -> Result<(), ApiError> {
        self.out.extend_from_slice(match self.columns {
            0 => br#"{"columns":["#.as_slice(),
            _ => b",",
        });
        self.columns += 1;
        let arrays: Vec<&ArrayData> = match column {
            Column::Array(a) => vec![a],
            Column::Categorical(c) => vec![&c.categories],
            Column::Nullable(n) => vec![n.values()],
        };
        let codes = match column {
            Column::Categorical(c) => c.codes.len() as u64,
            _ => 0,
        };
        let held = arrays.iter().map(|a| a.heap_bytes() as u64).sum::<u64>() + codes * 4;
        let text: u64 = arrays.iter().map(|a| as_json(a)).sum::<u64>() + codes * 12;
        self.write(&ColumnJson { name, column }, held, text, r)
    }

    fn index(
        &mut self,
        names: &ArrayData,
        name: Option<String>,
        r: &mut Reservation,
    ) -> Result<(), ApiError> {
        self.out.extend_from_slice(match self.columns {
            0 => br#"{"columns":[],"index":"#.as_slice(),
            _ => br#"],"index":"#,
        });
        self.columns = usize::MAX; // Closed.
        self.write(
            &Values(names, None),
            names.heap_bytes() as u64,
            as_json(names),
            r,
        )?;
        self.out.extend_from_slice(br#","index_name":"#);
        serde_json::to_writer(&mut self.out, &name).expect("JSON strings serialise");
        Ok(())
    }

    /// Writes `value`, `held` bytes in memory whose JSON takes about `text`, once the answer
    /// so far, the value and its text are reserved.
    fn write(
        &mut self,
        value: &impl Serialize,
        held: u64,
        text: u64,
        r: &mut Reservation,
    ) -> Result<(), ApiError> {
        self.out.reserve_exact(text as usize);
        r.hold(self.out.capacity() as u64 + held)?;
        serde_json::to_writer(&mut self.out, value).expect("JSON values serialise");
        r.hold(self.out.capacity() as u64 + held)
    }

    fn finish(mut self, r: &mut Reservation) -> Result<Vec<u8>, ApiError> {
        self.out.extend_from_slice(match self.columns {
            0 => br#"{"columns":[]}"#.as_slice(),
            usize::MAX => b"}",
            _ => b"]}",
        });
        self.out.push(b'\n');
        r.hold(self.out.capacity() as u64)?;
        // The answer keeps its body's length reserved: no spare capacity may outlive it.
        self.out.shrink_to_fit();
        Ok(self.out)
    }
}

/// About the bytes of `a`'s values as JSON, with their commas (a string's escapes aside).
fn as_json(a: &ArrayData) -> u64 {
    let per_value = match a.dtype() {
        DType::String => {
            return a
                .as_strings()
                .map_or(0, |s| s.iter().map(|v| 3 + v.len() as u64).sum())
        }
        DType::Bool => 6,              // "false,"
        DType::I8 | DType::U8 => 5,    // "-128,"
        DType::I16 | DType::U16 => 7,  // "-32768,"
        DType::I32 | DType::U32 => 12, // "-2147483648,"
        DType::I64 | DType::U64 => 21, // "-9223372036854775808,"
        DType::F32 | DType::F64 => 25, // "-2.2250738585072014e-308,"
    };
    a.len() as u64 * per_value
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
