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
    // longer strings reserves more as it grows, waiting at most 2 s (a 503 when it cannot).
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
                out.index(&names, reader.index_name(axis), reservation)?;
            }
            Ok(Answer::json_bytes(out.finish(reservation)?))
        })
        .await?;
    Ok(answer.send(permit, &app))
}

/// `{"columns": [...], "index": [...], "index_name": ...}`, written a column at a time
/// straight from the values (no JSON tree: a column of a million cells is a million numbers,
/// not a million values). The answer's buffer grows only once the reservation holds its new
/// size and the column being written, never by doubling behind the reservation's back.
#[derive(Default)]
struct FrameWriter {
    out: Vec<u8>,
    columns: usize,
}

impl FrameWriter {
    fn column(&mut self, name: &str, column: &Column, r: &mut Reservation) -> Result<(), ApiError> {
        let open: &[u8] = match self.columns {
            0 => br#"{"columns":["#,
            _ => b",",
        };
        self.columns += 1;
        let (held, text) = match column {
            Column::Array(a) => (a.heap_bytes(), as_json(a)),
            Column::Categorical(c) => (c.heap_bytes(), as_json(&c.categories) + c.codes.len() * 12),
            Column::Nullable(n) => (n.heap_bytes(), as_json(n.values()) + n.mask().len() * 2),
        };
        self.write_raw(open, r)?;
        // The name, kind and dtype: a few dozen bytes more.
        self.write(
            &ColumnJson { name, column },
            held,
            text + 64 + 2 * name.len(),
            r,
        )
    }

    fn index(
        &mut self,
        names: &ArrayData,
        name: Option<String>,
        r: &mut Reservation,
    ) -> Result<(), ApiError> {
        let open: &[u8] = match self.columns {
            0 => br#"{"columns":[],"index":"#,
            _ => br#"],"index":"#,
        };
        self.columns = usize::MAX; // Closed.
        self.write_raw(open, r)?;
        let values = Values(names, None);
        self.write(&values, names.heap_bytes(), as_json(names) + 2, r)?;
        self.write_raw(br#","index_name":"#, r)?;
        self.write(&name, 0, 0, r)
    }

    /// Writes `value` as JSON, `held` bytes in memory whose text takes about `text`: room for
    /// that text is reserved first, and every growth past it too.
    fn write(
        &mut self,
        value: &(impl Serialize + ?Sized),
        held: usize,
        text: usize,
        r: &mut Reservation,
    ) -> Result<(), ApiError> {
        let mut out = self.growing(held, r);
        match out.room(text).is_ok() && serde_json::to_writer(&mut out, value).is_ok() {
            true => Ok(()),
            false => Err(out.failure()),
        }
    }

    fn finish(mut self, r: &mut Reservation) -> Result<Vec<u8>, ApiError> {
        let close: &[u8] = match self.columns {
            0 => b"{\"columns\":[]}\n",
            usize::MAX => b"}\n",
            _ => b"]}\n",
        };
        self.write_raw(close, r)?;
        // The answer keeps its body's length reserved: no spare capacity may outlive it.
        self.out.shrink_to_fit();
        Ok(self.out)
    }

    /// Appends bytes as they are.
    fn write_raw(&mut self, bytes: &[u8], r: &mut Reservation) -> Result<(), ApiError> {
        let mut out = self.growing(0, r);
        match std::io::Write::write_all(&mut out, bytes) {
            Ok(()) => Ok(()),
            Err(_) => Err(out.failure()),
        }
    }

    /// The answer's buffer as a writer, holding `held` bytes besides.
    fn growing<'a>(&'a mut self, held: usize, r: &'a mut Reservation) -> Growing<'a> {
        Growing {
            out: &mut self.out,
            held,
            r,
            refused: None,
        }
    }
}

/// The answer's buffer as a writer that reserves before it grows: `held` bytes (the column
/// being written) on top of its capacity.
struct Growing<'a> {
    out: &'a mut Vec<u8>,
    held: usize,
    r: &'a mut Reservation,
    refused: Option<ApiError>,
}

impl Growing<'_> {
    /// Why a write failed: the reservation's refusal, or else the serialiser's.
    fn failure(mut self) -> ApiError {
        self.refused
            .take()
            .unwrap_or_else(|| ApiError::internal("the frame could not be written as JSON"))
    }

    /// Makes room for `more` bytes, growing by at least an eighth of the capacity.
    fn room(&mut self, more: usize) -> std::io::Result<()> {
        let need = self.out.len() + more;
        if need <= self.out.capacity() {
            return Ok(());
        }
        let cap = need.max(self.out.capacity() + self.out.capacity() / 8);
        if let Err(e) = self.r.hold((cap + self.held) as u64) {
            self.refused = Some(e);
            return Err(std::io::Error::other("the answers' budget is full"));
        }
        self.out.reserve_exact(cap - self.out.len());
        Ok(())
    }
}

impl std::io::Write for Growing<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.room(buf.len())?;
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// About the bytes of `a`'s values as JSON, with their commas (a string's escapes aside).
fn as_json(a: &ArrayData) -> usize {
    let per_value = match a.dtype() {
        DType::String => {
            return a
                .as_strings()
                .map_or(0, |s| s.iter().map(|v| 3 + v.len()).sum())
        }
        DType::Bool => 6,                           // "false,"
        DType::I8 | DType::U8 => 5,                 // "-128,"
        DType::I16 | DType::U16 => 7,               // "-32768,"
        DType::I32 | DType::U32 => 12,              // "-2147483648,"
        DType::I64 | DType::U64 => 21,              // "-9223372036854775808,"
        DType::F16 | DType::F32 | DType::F64 => 25, // "-2.2250738585072014e-308,"
    };
    a.len() * per_value
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
            ArrayData::F16(a) => each!(a, |v: &half::f16| finite(f64::from(*v))),
            ArrayData::F32(a) => each!(a, |v: &f32| finite(f64::from(*v))),
            ArrayData::F64(a) => each!(a, |v: &f64| finite(*v)),
            ArrayData::String(a) => {
                each!(a, |v: &'a annpage::data::CompactString| Some(v.as_str()))
            }
        }
    }
}
