//! Zarr arrays being written: created from an [`ArraySpec`], filled row block by row block,
//! grown along their first axis, given attributes.
//!
//! Values go through `zarrs`, which splits a block of rows into chunks (or shards): chunks the
//! block covers whole are encoded and stored directly, chunks at its edges are read, updated
//! and stored again, and chunks left all fill value are not stored (as zarr-python does). The
//! metadata documents are written here, from the spec, so that they read as zarr-python's.

use std::any::Any;
use std::sync::Arc;

use ndarray::ArrayD;
use parking_lot::Mutex;
use serde_json::{Map, Value};
use zarrs::array::{Array, ArrayMetadata, ArraySubset, CodecOptions, Element};

use super::meta::{attr_json, ArraySpec};
use super::{Store, ZarrFormat};
use crate::data::{ArrayData, AttrValue, DType};
use crate::storage::write::{check_fit, row_range};
use crate::storage::{ArrayWriter, AttrWriter};
use crate::{Error, Result};

/// An array of a Zarr store being written.
pub(crate) struct ZarrArrayWriter {
    /// The store the array is in.
    store: Arc<Store>,
    /// The array's path from the root (`/obs/cell_type`).
    path: String,
    /// Whether the first axis may grow ([`ArrayWriter::append_rows`]).
    resizable: bool,
    /// The metadata and the `zarrs` array behind it, changed together.
    state: Mutex<State>,
}

/// What changes as the array is written: its spec (the shape grows), its attributes, and the
/// `zarrs` array built from both.
struct State {
    /// Layout and encoding.
    spec: ArraySpec,
    /// Attributes, in the order they were set.
    attrs: Map<String, Value>,
    /// The `zarrs` view of the same metadata, that encodes and stores chunks.
    array: Array<super::Unmarked>,
    /// Rows of a sharded array written last that end inside an inner chunk, kept (their first
    /// row, the pieces as they came) until the rows after them complete it (see
    /// [`write_rows_locked`]). Joined once, when stored.
    pending: Option<(usize, Vec<ArrayData>)>,
    /// How many rows have been written in all (rows written twice count twice).
    written: usize,
}

impl ZarrArrayWriter {
    /// Creates array `path` (which must not exist yet) from `spec`: writes its metadata.
    pub(super) fn create(
        store: Arc<Store>,
        path: String,
        spec: ArraySpec,
        resizable: bool,
    ) -> Result<Self> {
        let attrs = Map::new();
        let array = zarrs_array(&store, &path, &spec, &attrs)?;
        let writer = ZarrArrayWriter {
            store,
            path,
            resizable,
            state: Mutex::new(State {
                spec,
                attrs,
                array,
                pending: None,
                written: 0,
            }),
        };
        writer.store_metadata(&writer.state.lock())?;
        Ok(writer)
    }

    /// Writes the metadata documents of the array as `state` describes it.
    fn store_metadata(&self, state: &State) -> Result<()> {
        let meta = state.spec.metadata(&state.attrs);
        match state.spec.format {
            ZarrFormat::V2 => {
                self.store.set_json(&self.path, ".zarray", &meta)?;
                self.store
                    .set_json(&self.path, ".zattrs", &Value::Object(state.attrs.clone()))
            }
            ZarrFormat::V3 => self.store.set_json(&self.path, "zarr.json", &meta),
        }
    }

    /// Writes `data` (of the array's shape) as the whole array.
    pub(super) fn write_all(&self, data: &ArrayData) -> Result<()> {
        let state = self.state.lock();
        check_dtype(&state.spec, data)?;
        if data.shape() != state.spec.shape.as_slice() {
            return Err(Error::invalid(format!(
                "values of shape {:?} do not fit an array of shape {:?}",
                data.shape(),
                state.spec.shape
            )));
        }
        if data.is_empty() {
            return Ok(());
        }
        if data.ndim() == 0 {
            let subset = ArraySubset::new_with_shape(to_u64(data.shape()));
            return store_subset(&state.array, &subset, data, false);
        }
        // Blocks of whole chunks' rows, about `SLAB_BYTES` each, so that `zarrs`' buffers (and
        // the `&str`s of strings) hold a block, not the array (a million names: 180 MB).
        let rows = data.nrows();
        let chunk = state.spec.chunks.first().copied().unwrap_or(rows).max(1);
        let row_bytes = (data.len() / rows)
            .max(1)
            .saturating_mul(element_bytes(data.dtype()));
        let per = (SLAB_BYTES / row_bytes / chunk)
            .max(1)
            .saturating_mul(chunk);
        let sharded = state.spec.shards.is_some();
        if per >= rows {
            return store_rows(&state, 0, &[data], sharded);
        }
        for start in (0..rows).step_by(per) {
            let block = rows_in(data, start..(start + per).min(rows));
            store_rows(&state, start, &[&block], sharded)?;
        }
        Ok(())
    }
}

impl ZarrArrayWriter {
    /// Writes the whole array of records as the bytes [`records::encode`] packed.
    ///
    /// [`records::encode`]: super::super::records::encode
    pub(super) fn write_records(&self, bytes: &[u8]) -> Result<()> {
        let state = self.state.lock();
        if bytes.is_empty() {
            return Ok(());
        }
        let subset = ArraySubset::new_with_shape(to_u64(&state.spec.shape));
        state
            .array
            .store_array_subset(&subset, zarrs::array::ArrayBytes::from(bytes))
            .map_err(zarr_error)
    }
}

/// The `zarrs` array for `spec` at `path`, built from the same metadata this module writes.
fn zarrs_array(
    store: &Store,
    path: &str,
    spec: &ArraySpec,
    attrs: &Map<String, Value>,
) -> Result<Array<super::Unmarked>> {
    let meta = spec.zarrs_metadata(attrs);
    let metadata = match spec.format {
        ZarrFormat::V2 => ArrayMetadata::V2(serde_json::from_value(meta).map_err(zarr_error)?),
        ZarrFormat::V3 => ArrayMetadata::V3(serde_json::from_value(meta).map_err(zarr_error)?),
    };
    let path = crate::storage::zarr::store::zarrs_path(path);
    Array::new_with_metadata(store.fs.clone(), &path, metadata).map_err(zarr_error)
}

/// A `zarrs` error (or one of its metadata) as an engine error.
pub(super) fn zarr_error(e: impl std::fmt::Display) -> Error {
    Error::Io(std::io::Error::other(format!("Zarr: {e}")))
}

/// The shape as `zarrs` counts it.
fn to_u64(shape: &[usize]) -> Vec<u64> {
    shape.iter().map(|&d| d as u64).collect()
}

/// Fails unless `data` holds values of the array's dtype.
fn check_dtype(spec: &ArraySpec, data: &ArrayData) -> Result<()> {
    if data.dtype() != spec.dtype {
        return Err(Error::invalid(format!(
            "cannot write {} values into an array of {}",
            data.dtype(),
            spec.dtype
        )));
    }
    Ok(())
}

/// Stores `data` (of the subset's shape) into `subset` of `array`. 0-d arrays store their
/// one chunk even when it holds the fill value, since v2 scalars have a `null` fill value.
///
/// With `partial_shards`, a shard the subset covers in part is updated in place (`zarrs`'
/// partial encoding): the inner chunks the subset touches are encoded again and appended to
/// the shard with a new index, instead of the whole shard being read, decoded, encoded and
/// written again. Filling a shard block by block then costs what the blocks hold, not the
/// shard each time. The shard keeps the superseded bytes of inner chunks that a block
/// boundary cut through, unreferenced (readers go by the index).
fn store_subset(
    array: &Array<super::Unmarked>,
    subset: &ArraySubset,
    data: &ArrayData,
    partial_shards: bool,
) -> Result<()> {
    let options = CodecOptions::default()
        .with_store_empty_chunks(data.ndim() == 0)
        .with_experimental_partial_encoding(partial_shards);
    let o = &options;
    match data {
        ArrayData::Bool(a) => store_values(array, subset, a, o),
        ArrayData::I8(a) => store_values(array, subset, a, o),
        ArrayData::I16(a) => store_values(array, subset, a, o),
        ArrayData::I32(a) => store_values(array, subset, a, o),
        ArrayData::I64(a) => store_values(array, subset, a, o),
        ArrayData::U8(a) => store_values(array, subset, a, o),
        ArrayData::U16(a) => store_values(array, subset, a, o),
        ArrayData::U32(a) => store_values(array, subset, a, o),
        ArrayData::U64(a) => store_values(array, subset, a, o),
        ArrayData::F16(a) => store_values(array, subset, a, o),
        ArrayData::F32(a) => store_values(array, subset, a, o),
        ArrayData::F64(a) => store_values(array, subset, a, o),
        // zarrs stores strings from `&str`s: no copy of each.
        ArrayData::String(a) => store_values(array, subset, &a.map(|s| s.as_str()), o),
    }
}

/// [`store_subset`] for one element type.
fn store_values<T: Element + Clone>(
    array: &Array<super::Unmarked>,
    subset: &ArraySubset,
    values: &ArrayD<T>,
    options: &CodecOptions,
) -> Result<()> {
    let standard = values.as_standard_layout();
    let slice = standard
        .as_slice()
        .ok_or_else(|| Error::invalid("array is not contiguous"))?;
    array
        .store_array_subset_opt(subset, slice, options)
        .map_err(zarr_error)
}

impl AttrWriter for ZarrArrayWriter {
    fn path(&self) -> String {
        self.path.clone()
    }

    fn set_attr(&self, name: &str, value: &AttrValue) -> Result<()> {
        let json = attr_json(name, value)?;
        let mut state = self.state.lock();
        state.attrs.insert(name.to_owned(), json);
        self.store_metadata(&state)
    }
}

impl ArrayWriter for ZarrArrayWriter {
    fn write_rows(&self, start: usize, rows: &ArrayData) -> Result<()> {
        let mut state = self.state.lock();
        write_rows_locked(&mut state, start, rows)
    }

    fn append_rows(&self, rows: &ArrayData) -> Result<usize> {
        let mut state = self.state.lock();
        check_rows(&state.spec, rows)?;
        if !self.resizable {
            return Err(Error::invalid(
                "cannot append to an array that was not created resizable",
            ));
        }
        let start = state.spec.shape[0];
        let end = start
            .checked_add(rows.nrows())
            .ok_or_else(|| Error::invalid("array length overflows"))?;
        if rows.nrows() == 0 {
            return Ok(start);
        }
        let mut shape = state.spec.shape.clone();
        shape[0] = end;
        state.array.set_shape(to_u64(&shape)).map_err(zarr_error)?;
        state.spec.shape = shape;
        let written =
            write_rows_locked(&mut state, start, rows).and_then(|()| self.store_metadata(&state));
        if let Err(e) = written {
            // Back to the length the stored metadata has.
            let mut shape = state.spec.shape.clone();
            shape[0] = start;
            state.array.set_shape(to_u64(&shape)).map_err(zarr_error)?;
            state.spec.shape = shape;
            return Err(e);
        }
        Ok(end)
    }

    fn chunk_rows(&self) -> Option<usize> {
        self.state.lock().spec.chunks.first().copied()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Fails unless `rows` can be written into the array: its dtype, as many axes, the same
/// trailing axes (and the array not 0-d).
fn check_rows(spec: &ArraySpec, rows: &ArrayData) -> Result<()> {
    check_dtype(spec, rows)?;
    check_fit(&spec.shape, rows, "an array")
}

/// [`ArrayWriter::write_rows`] with the state locked.
///
/// Rows of a sharded array are stored whole inner chunks at a time: the rows a write leaves
/// inside an inner chunk wait in `state.pending` for the next write to complete the chunk.
/// Stored as they come, every row block that ends inside an inner chunk would store that
/// chunk again, appended to its shard (see [`store_subset`]): a 1-d `indptr` in one inner
/// chunk, written a block of rows at a time, took 144 times its size. Nothing waits once
/// every row of the array has been written (counted, in any order), nor across a write that
/// does not continue the pending rows (they are stored first), nor when the writer is dropped.
fn write_rows_locked(state: &mut State, start: usize, rows: &ArrayData) -> Result<()> {
    check_rows(&state.spec, rows)?;
    let len = state.spec.shape[0];
    let end = row_range(len, start, rows.nrows(), "an array")?.end;
    if rows.is_empty() {
        return Ok(());
    }
    if state.spec.shards.is_none() {
        return store_rows(state, start, &[rows], false);
    }
    let chunk = state.spec.chunks.first().copied().unwrap_or(1).max(1);
    state.written = state.written.saturating_add(rows.nrows());
    let all_written = state.written >= len;
    let mut begin = start;
    if let Some((first, mut pieces)) = state.pending.take() {
        let held: usize = pieces.iter().map(ArrayData::nrows).sum();
        if first + held != start {
            store_rows(state, first, &pieces.iter().collect::<Vec<_>>(), true)?;
        } else {
            // The pending rows, completed up to their chunk's end with these rows' first ones.
            let boundary = ((first / chunk + 1) * chunk).min(len);
            let head = (boundary - start).min(rows.nrows());
            pieces.push(rows_in(rows, 0..head));
            begin = start + head;
            if begin < boundary && !all_written {
                state.pending = Some((first, pieces));
                return Ok(());
            }
            store_rows(state, first, &pieces.iter().collect::<Vec<_>>(), true)?;
        }
    }
    // Rows `begin..end` remain, with nothing pending before them.
    let cut = if all_written || end == len {
        end
    } else {
        (end / chunk * chunk).max(begin)
    };
    if cut > begin {
        let whole = begin == start && cut == end;
        let stored = if whole {
            std::borrow::Cow::Borrowed(rows)
        } else {
            std::borrow::Cow::Owned(rows_in(rows, begin - start..cut - start))
        };
        store_rows(state, begin, &[&stored], true)?;
    }
    if cut < end {
        state.pending = Some((cut, vec![rows_in(rows, cut - start..end - start)]));
    }
    Ok(())
}

/// The most bytes one call stores: the rows of a wide array are stored a slab of whole
/// chunks' columns at a time, each slab joined from the pieces, so that the copy and `zarrs`'
/// buffers (the slab's chunks cut out, filled, encoded) hold a slab, not every column of the
/// rows (a 1,000-column float64 `obsm` in chunks of 3,125 rows: 25 MB a buffer). Tests take
/// 16 bytes, so that small arrays are stored in slabs too.
const SLAB_BYTES: usize = if cfg!(test) { 16 } else { 4 << 20 };

/// Stores the rows of `pieces`, one after the other, from row `start` on (see
/// [`store_subset`]), a slab of columns at a time when they exceed [`SLAB_BYTES`].
fn store_rows(
    state: &State,
    start: usize,
    pieces: &[&ArrayData],
    partial_shards: bool,
) -> Result<()> {
    let Some(first) = pieces.first() else {
        return Ok(());
    };
    let rows: usize = pieces.iter().map(|p| p.nrows()).sum();
    let shape = first.shape();
    let subset = |columns: std::ops::Range<usize>| {
        let ranges: Vec<std::ops::Range<u64>> =
            std::iter::once(start as u64..(start + rows) as u64)
                .chain((shape.len() > 1).then_some(columns.start as u64..columns.end as u64))
                .chain(shape.iter().skip(2).map(|&d| 0..d as u64))
                .collect();
        ArraySubset::new_with_ranges(&ranges)
    };
    let width = shape.get(1).copied().unwrap_or(1);
    let column_bytes = rows
        .saturating_mul(shape.iter().skip(2).product::<usize>())
        .saturating_mul(element_bytes(first.dtype()));
    let chunk = state.spec.chunks.get(1).copied().unwrap_or(width).max(1);
    let slab = (SLAB_BYTES / column_bytes.max(1) / chunk).max(1) * chunk;
    if shape.len() < 2 || slab >= width {
        let joined = match pieces {
            [one] => std::borrow::Cow::Borrowed(*one),
            _ => std::borrow::Cow::Owned(ArrayData::concat_rows(pieces)?),
        };
        return store_subset(&state.array, &subset(0..width), &joined, partial_shards);
    }
    for from in (0..width).step_by(slab) {
        let columns = from..(from + slab).min(width);
        let parts: Vec<ArrayData> = pieces
            .iter()
            .map(|p| columns_in(p, columns.clone()))
            .collect();
        let values = match parts.len() {
            1 => parts.into_iter().next().expect("one piece"),
            _ => ArrayData::concat_rows(&parts)?,
        };
        store_subset(&state.array, &subset(columns), &values, partial_shards)?;
    }
    Ok(())
}

/// What a value takes in `zarrs`' buffers, about: a string's `&str` and bytes count 32.
fn element_bytes(dtype: DType) -> usize {
    match dtype {
        DType::String => 32,
        dtype => dtype.size().max(1),
    }
}

/// Rows `range` of `a` (along the first axis), copied.
fn rows_in(a: &ArrayData, range: std::ops::Range<usize>) -> ArrayData {
    crate::map_array!(a, x => x.slice_axis(ndarray::Axis(0), ndarray::Slice::from(range)).to_owned())
}

/// Columns `range` of `a` (along the second axis), copied in standard layout.
fn columns_in(a: &ArrayData, range: std::ops::Range<usize>) -> ArrayData {
    crate::map_array!(a, x => x
        .slice_axis(ndarray::Axis(1), ndarray::Slice::from(range))
        .as_standard_layout()
        .into_owned())
}

impl Drop for ZarrArrayWriter {
    /// Stores rows still pending: only a writer that did not write every row of its array
    /// has any (the store is then usually abandoned, on an error).
    fn drop(&mut self) {
        let state = self.state.get_mut();
        if let Some((first, pieces)) = state.pending.take() {
            let _ = store_rows(state, first, &pieces.iter().collect::<Vec<_>>(), true);
        }
    }
}
