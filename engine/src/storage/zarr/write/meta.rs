//! The metadata of Zarr nodes as zarr-python 3.1 writes it for anndata 0.12: data types,
//! fill values, codecs, chunk and shard shapes, and attributes as JSON.
//!
//! - v2: `.zarray` with numpy dtypes (`<f4`, `|b1`, `|O` with the `vlen-utf8` filter for
//!   strings), `order: "C"`, `dimension_separator: "."`, a numcodecs compressor or `null`;
//!   attributes in `.zattrs`.
//! - v3: `zarr.json` with `data_type` (`float32`, `bool`, `string`…), a regular chunk grid,
//!   the default chunk key encoding (`/`), codecs `bytes` (no endianness for one-byte types) or
//!   `vlen-utf8` then the compressor, wrapped in `sharding_indexed` when sharded.
//! - Fill values are zero, `false` or `""`, except that v2 scalars other than strings get
//!   `null`, as anndata's scalar writer leaves them.
//! - Chunks not given are guessed as zarr-python guesses them ([`guess_chunks`], h5py's
//!   algorithm with larger targets); automatic shards follow zarr-python's `shards="auto"` with
//!   anndata's 1 GB target.

use serde_json::{json, Map, Value};

use super::super::records;
use super::{ZarrCompression, ZarrFormat, ZarrOptions};
use crate::data::{ArrayData, CompactString, DType};
use crate::storage::{ArrayOptions, Compression, StoredType};
use crate::{Error, Result};

/// zarr-python's `_guess_chunks` step, in bytes.
const INCREMENT_BYTES: f64 = 256.0 * 1024.0;
/// zarr-python's soft lower bound on a guessed chunk, in bytes.
const MIN_BYTES: f64 = 128.0 * 1024.0;
/// zarr-python's upper bound on a guessed chunk of an unsharded array, in bytes.
const MAX_BYTES: f64 = 64.0 * 1024.0 * 1024.0;
/// zarr-python's upper bound on a guessed inner chunk of a sharded array, in bytes.
const MAX_SHARDED_CHUNK_BYTES: f64 = 1024.0 * 1024.0;
/// The shard size anndata asks zarr-python to aim at (`array.target_shard_size_bytes`).
const TARGET_SHARD_BYTES: f64 = 1e9;
/// The largest chunk or shard accepted, decoded, in bytes: a partial write holds one whole.
const MAX_CHUNK_BYTES: u64 = 4 << 30;
/// The length assumed for the empty first axis of a resizable array created to grow, when
/// guessing its chunks (h5py's choice; zarr-python would take 1).
const EMPTY_RESIZABLE_ROWS: usize = 1024;

/// How one array is laid out and encoded: everything its metadata says but its attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ArraySpec {
    /// v2 or v3 metadata.
    pub format: ZarrFormat,
    /// The element type.
    pub dtype: DType,
    /// The current shape.
    pub shape: Vec<usize>,
    /// The chunk shape (the inner chunks of a sharded array).
    pub chunks: Vec<usize>,
    /// The shard shape of a sharded (v3) array.
    pub shards: Option<Vec<usize>>,
    /// The compressor, if any.
    pub compressor: Option<ZarrCompression>,
    /// Whether the v2 fill value is `null` (anndata's scalars) rather than zero.
    pub null_fill: bool,
    /// Records of this compound type instead of values of `dtype` (then one byte, the base
    /// of the metadata): see [`records`](super::super::records).
    pub records: Option<StoredType>,
}

impl ArraySpec {
    /// The array's metadata document: `.zarray` (v2, without attributes) or `zarr.json` (v3,
    /// with `attrs`).
    pub fn metadata(&self, attrs: &Map<String, Value>) -> Value {
        let mut doc = match self.format {
            ZarrFormat::V2 => self.metadata_v2(),
            ZarrFormat::V3 => self.metadata_v3(attrs),
        };
        if let Some(ty) = &self.records {
            records::describe(&mut doc, ty, self.format);
        }
        doc
    }

    /// The metadata `zarrs` encodes the array's chunks with: [`Self::metadata`], but records as
    /// raw bytes.
    pub fn zarrs_metadata(&self, attrs: &Map<String, Value>) -> Value {
        let mut doc = self.metadata(attrs);
        if let Some(ty @ StoredType::Compound { size, .. }) = &self.records {
            records::as_raw_bytes(&mut doc, self.format, ty, *size);
        }
        doc
    }

    /// The `.zarray` document.
    fn metadata_v2(&self) -> Value {
        let fill = if self.null_fill && self.dtype != DType::String {
            Value::Null
        } else {
            fill_value(self.dtype)
        };
        let filters = if self.dtype == DType::String {
            json!([{ "id": "vlen-utf8" }])
        } else {
            Value::Null
        };
        let compressor = match self.compressor {
            None => Value::Null,
            Some(ZarrCompression::Gzip(level)) => json!({ "id": "gzip", "level": level }),
            Some(ZarrCompression::Zstd(level)) => json!({ "id": "zstd", "level": level }),
        };
        json!({
            "shape": self.shape,
            "chunks": self.chunks,
            "dtype": numpy_dtype(self.dtype),
            "fill_value": fill,
            "order": "C",
            "filters": filters,
            "dimension_separator": ".",
            "compressor": compressor,
            "zarr_format": 2,
        })
    }

    /// The `zarr.json` document of the array.
    fn metadata_v3(&self, attrs: &Map<String, Value>) -> Value {
        let mut codecs = vec![if self.dtype == DType::String {
            json!({ "name": "vlen-utf8", "configuration": {} })
        } else if self.dtype.size() == 1 {
            json!({ "name": "bytes" })
        } else {
            json!({ "name": "bytes", "configuration": { "endian": "little" } })
        }];
        match self.compressor {
            None => {}
            Some(ZarrCompression::Gzip(level)) => {
                codecs.push(json!({ "name": "gzip", "configuration": { "level": level } }));
            }
            Some(ZarrCompression::Zstd(level)) => codecs.push(json!({
                "name": "zstd",
                "configuration": { "level": level, "checksum": false }
            })),
        }
        let (grid, codecs) = match &self.shards {
            None => (&self.chunks, codecs),
            Some(shards) => (
                shards,
                vec![json!({
                    "name": "sharding_indexed",
                    "configuration": {
                        "chunk_shape": self.chunks,
                        "codecs": codecs,
                        "index_codecs": [
                            { "name": "bytes", "configuration": { "endian": "little" } },
                            { "name": "crc32c" }
                        ],
                        "index_location": "end"
                    }
                })],
            ),
        };
        json!({
            "shape": self.shape,
            "data_type": v3_data_type(self.dtype),
            "chunk_grid": { "name": "regular", "configuration": { "chunk_shape": grid } },
            "chunk_key_encoding": { "name": "default", "configuration": { "separator": "/" } },
            "fill_value": fill_value(self.dtype),
            "codecs": codecs,
            "attributes": attrs,
            "zarr_format": 3,
            "node_type": "array",
            "storage_transformers": [],
        })
    }
}

/// The `zarr.json` document of a v3 group.
pub(super) fn group_metadata_v3(attrs: &Map<String, Value>) -> Value {
    json!({ "attributes": attrs, "zarr_format": 3, "node_type": "group" })
}

/// The numpy dtype string of `dtype` in v2 metadata (`|O` for strings).
pub(in crate::storage::zarr) fn numpy_dtype(dtype: DType) -> &'static str {
    match dtype {
        DType::Bool => "|b1",
        DType::I8 => "|i1",
        DType::I16 => "<i2",
        DType::I32 => "<i4",
        DType::I64 => "<i8",
        DType::U8 => "|u1",
        DType::U16 => "<u2",
        DType::U32 => "<u4",
        DType::U64 => "<u8",
        DType::F16 => "<f2",
        DType::F32 => "<f4",
        DType::F64 => "<f8",
        DType::String => "|O",
    }
}

/// The v3 `data_type` of `dtype`.
pub(in crate::storage::zarr) fn v3_data_type(dtype: DType) -> &'static str {
    match dtype {
        DType::String => "string",
        other => other.name(),
    }
}

/// The fill value zarr-python gives an array of `dtype`: zero, `false` or `""`.
fn fill_value(dtype: DType) -> Value {
    match dtype {
        DType::Bool => json!(false),
        DType::F16 | DType::F32 | DType::F64 => json!(0.0),
        DType::String => json!(""),
        _ => json!(0),
    }
}

/// The size in bytes zarr-python counts per element when it guesses chunks (1 for strings).
fn typesize(dtype: DType) -> usize {
    match dtype {
        DType::String => 1,
        other => other.size(),
    }
}

/// The compressor of a new array: the store-wide override of `zopts`, else what `options` ask
/// (never any for a 0-d array, as anndata writes scalars).
pub(super) fn compressor(
    zopts: &ZarrOptions,
    options: &ArrayOptions,
    ndim: usize,
) -> Result<Option<ZarrCompression>> {
    if let Some(c) = zopts.compression {
        return Ok(Some(c));
    }
    if ndim == 0 {
        return Ok(None);
    }
    match options.compression {
        Compression::None => Ok(None),
        Compression::Gzip(level) if level <= 9 => Ok(Some(ZarrCompression::Gzip(level))),
        Compression::Gzip(level) => Err(Error::invalid(format!(
            "gzip level {level} is out of range 0–9"
        ))),
        Compression::Lzf => Err(Error::unsupported(
            "LZF compression is HDF5's (h5py's filter 32000): Zarr stores take gzip or zstd",
        )),
    }
}

/// The chunk shape and, for a sharded v3 array, the shard shape of a new array of `dtype` and
/// `shape`: the chunks `options` give, else `zopts.chunk_rows` rows (whole trailing axes), else
/// zarr-python's guess; shards of `zopts.shard_rows` rows, or zarr-python's automatic ones
/// when `zopts.auto_shard`.
///
/// An array created empty to grow (`growing`, resizable) has its chunks guessed as if it had
/// 1024 rows, as h5py guesses them, rather than zarr-python's one row.
pub(super) fn layout(
    zopts: &ZarrOptions,
    dtype: DType,
    shape: &[usize],
    options: &ArrayOptions,
    growing: bool,
) -> Result<(Vec<usize>, Option<Vec<usize>>)> {
    if shape.is_empty() {
        return Ok((Vec::new(), None));
    }
    let sharded =
        zopts.format == ZarrFormat::V3 && (zopts.shard_rows.is_some() || zopts.auto_shard);
    let chunks = if let Some(chunks) = &options.chunks {
        if chunks.len() != shape.len() || chunks.contains(&0) {
            return Err(Error::invalid(format!(
                "chunk shape {chunks:?} does not fit an array of shape {shape:?}"
            )));
        }
        chunks.clone()
    } else if let Some(rows) = zopts.chunk_rows {
        std::iter::once(rows)
            .chain(shape[1..].iter().map(|&d| d.max(1)))
            .collect()
    } else {
        let mut guess_shape = shape.to_vec();
        if growing && options.resizable && shape[0] == 0 {
            guess_shape[0] = EMPTY_RESIZABLE_ROWS;
        }
        let max = if sharded {
            MAX_SHARDED_CHUNK_BYTES
        } else {
            MAX_BYTES
        };
        guess_chunks(&guess_shape, typesize(dtype), max)
    };
    check_size("chunk", &chunks, dtype)?;
    if !sharded {
        return Ok((chunks, None));
    }
    let whole_chunks = |len: usize, c: usize| len.max(1).div_ceil(c).saturating_mul(c);
    let shards: Vec<usize> = match zopts.shard_rows {
        Some(rows) => std::iter::once(whole_chunks(rows, chunks[0]))
            .chain(
                shape[1..]
                    .iter()
                    .zip(&chunks[1..])
                    .map(|(&d, &c)| whole_chunks(d, c)),
            )
            .collect(),
        None => {
            let n = chunks_per_shard_axis(&chunks, typesize(dtype), shape);
            chunks.iter().map(|&c| c.saturating_mul(n)).collect()
        }
    };
    check_size("shard", &shards, dtype)?;
    Ok((chunks, Some(shards)))
}

/// Fails if one chunk (or shard) of `shape` would take more than [`MAX_CHUNK_BYTES`] decoded:
/// writing part of one holds it whole in memory.
fn check_size(what: &str, shape: &[usize], dtype: DType) -> Result<()> {
    let bytes = shape
        .iter()
        .try_fold(dtype.size() as u64, |acc, &d| acc.checked_mul(d as u64));
    match bytes {
        Some(b) if b <= MAX_CHUNK_BYTES => Ok(()),
        _ => Err(Error::invalid(format!(
            "a {what} of shape {shape:?} ({dtype}) is larger than {} GiB",
            MAX_CHUNK_BYTES >> 30
        ))),
    }
}

/// The chunk shape zarr-python (`zarr.core.chunk_grids._guess_chunks`) picks for an array of
/// `shape` whose elements take `typesize` bytes, with chunks of at most `max_bytes`: h5py's
/// algorithm (halve the axes in turn until near a target that grows with the array) with
/// zarr-python's bounds. Axes of length 0 count as 1.
pub(super) fn guess_chunks(shape: &[usize], typesize: usize, max_bytes: f64) -> Vec<usize> {
    let mut chunks: Vec<f64> = shape.iter().map(|&d| d.max(1) as f64).collect();
    let typesize = typesize as f64;
    let bytes = |c: &[f64]| c.iter().product::<f64>() * typesize;
    let target = (INCREMENT_BYTES * 2f64.powf((bytes(&chunks) / (1024.0 * 1024.0)).log10()))
        .clamp(MIN_BYTES, max_bytes);
    let ndim = chunks.len();
    let mut axis = 0;
    loop {
        let size = bytes(&chunks);
        let near_target = size < target || (size - target).abs() / target < 0.5;
        if near_target && size < max_bytes {
            break;
        }
        if chunks.iter().product::<f64>() <= 1.0 {
            break;
        }
        chunks[axis % ndim] = (chunks[axis % ndim] / 2.0).ceil();
        axis += 1;
    }
    chunks.into_iter().map(|c| c as usize).collect()
}

/// How many chunks along every axis one automatic shard holds (zarr-python's
/// `_guess_num_chunks_per_axis_shard` with anndata's 1 GB target): as many as keep the shard
/// within the target and within the array.
fn chunks_per_shard_axis(chunks: &[usize], typesize: usize, shape: &[usize]) -> usize {
    let chunk_bytes = chunks.iter().map(|&c| c as f64).product::<f64>() * typesize as f64;
    if TARGET_SHARD_BYTES < chunk_bytes {
        return 1;
    }
    let ndim = i32::try_from(chunks.len()).unwrap_or(i32::MAX);
    let mut n = 1usize;
    while chunk_bytes * ((n + 1) as f64).powi(ndim) <= TARGET_SHARD_BYTES
        && chunks
            .iter()
            .zip(shape)
            .all(|(&c, &d)| c.checked_mul(n + 1).is_some_and(|s| s <= d))
    {
        n += 1;
    }
    n
}

/// An attribute value as JSON: a 0-d array as a scalar, others as (nested) lists; bools as
/// JSON bools. Non-finite floats have no JSON form and are refused.
pub(super) fn attr_json(name: &str, value: &ArrayData) -> Result<Value> {
    fn nested<T>(
        shape: &[usize],
        values: &mut impl Iterator<Item = T>,
        f: &dyn Fn(T) -> Result<Value>,
    ) -> Result<Value> {
        match shape.split_first() {
            None => f(values
                .next()
                .ok_or_else(|| Error::invalid("attribute has too few values"))?),
            Some((&n, rest)) => (0..n)
                .map(|_| nested(rest, values, f))
                .collect::<Result<Vec<_>>>()
                .map(Value::Array),
        }
    }
    let float = |v: f64| {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "attribute '{name}' holds {v}, which JSON (Zarr attributes) cannot store"
                ))
            })
    };
    let shape = value.shape();
    match value {
        ArrayData::Bool(a) => nested(shape, &mut a.iter(), &|v: &bool| Ok(json!(*v))),
        ArrayData::I8(a) => nested(shape, &mut a.iter(), &|v: &i8| Ok(json!(*v))),
        ArrayData::I16(a) => nested(shape, &mut a.iter(), &|v: &i16| Ok(json!(*v))),
        ArrayData::I32(a) => nested(shape, &mut a.iter(), &|v: &i32| Ok(json!(*v))),
        ArrayData::I64(a) => nested(shape, &mut a.iter(), &|v: &i64| Ok(json!(*v))),
        ArrayData::U8(a) => nested(shape, &mut a.iter(), &|v: &u8| Ok(json!(*v))),
        ArrayData::U16(a) => nested(shape, &mut a.iter(), &|v: &u16| Ok(json!(*v))),
        ArrayData::U32(a) => nested(shape, &mut a.iter(), &|v: &u32| Ok(json!(*v))),
        ArrayData::U64(a) => nested(shape, &mut a.iter(), &|v: &u64| Ok(json!(*v))),
        // A half float as Python's `float()` widens it (zarr-python's JSON of a float16).
        ArrayData::F16(a) => nested(shape, &mut a.iter(), &|v: &half::f16| float(f64::from(*v))),
        // The shortest decimal that reads back as the same f32 ("0.1", not 0.10000000149…).
        ArrayData::F32(a) => nested(shape, &mut a.iter(), &|v: &f32| {
            float(v.to_string().parse::<f64>().unwrap_or(f64::from(*v)))
        }),
        ArrayData::F64(a) => nested(shape, &mut a.iter(), &|v: &f64| float(*v)),
        ArrayData::String(a) => nested(shape, &mut a.iter(), &|v: &CompactString| {
            Ok(json!(v.as_str()))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_guessed_as_zarr_python_guesses() {
        // zarr-python 3.1: create_array(shape, dtype) chunks.
        assert_eq!(guess_chunks(&[10_000_000], 4, MAX_BYTES), [156_250]);
        assert_eq!(guess_chunks(&[10_000_000], 1, MAX_BYTES), [625_000]);
        assert_eq!(guess_chunks(&[100_000, 3000], 4, MAX_BYTES), [3125, 188]);
        assert_eq!(guess_chunks(&[0], 8, MAX_BYTES), [1]);
        assert_eq!(guess_chunks(&[20, 3], 8, MAX_BYTES), [20, 3]);
        // With shards="auto": 1 MiB chunks, 31 chunks per axis per shard.
        let chunks = guess_chunks(&[100_000, 3000], 4, MAX_SHARDED_CHUNK_BYTES);
        assert_eq!(chunks, [1563, 94]);
        assert_eq!(chunks_per_shard_axis(&chunks, 4, &[100_000, 3000]), 31);
        assert_eq!(chunks_per_shard_axis(&[20], 4, &[20]), 1);
    }

    #[test]
    fn attributes_become_json() {
        let v = attr_json("a", &ArrayData::from(vec![1.5f32, 0.1])).unwrap();
        assert_eq!(v.to_string(), "[1.5,0.1]");
        let nan = attr_json("a", &ArrayData::from(vec![f64::NAN]));
        assert!(nan.unwrap_err().to_string().contains("'a'"));
        let m = ArrayData::from(ndarray::arr2(&[[1u8, 2], [3, 4]]));
        assert_eq!(attr_json("m", &m).unwrap().to_string(), "[[1,2],[3,4]]");
    }
}
