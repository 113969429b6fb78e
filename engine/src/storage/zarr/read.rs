//! Decoding a region of a Zarr array into [`ArrayData`], through `zarrs`.
//!
//! `zarrs` retrieves the region as a `Vec` of elements (decoding the chunks it covers in
//! parallel, with rayon); the `ndarray` 0.16 array is built here. Half floats stay `float16`,
//! fixed-length UTF-32 strings lose their NUL padding, variable-length strings are built from
//! the decoded bytes and offsets. A decoder that panics on a corrupt chunk
//! becomes an error: the panic is caught at this boundary.

use std::any::Any;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};

use ndarray::{ArrayD, IxDyn};
use unsafe_cell_slice::UnsafeCellSlice;
use zarrs::array::{
    ArrayBytes, ArrayBytesDecodeIntoTarget, ArrayBytesFixedDisjointView, ArrayCreateError,
    ArrayError, ArrayMetadata, ArraySubset, CodecError, ElementOwned, FromArrayBytes,
};
use zarrs::storage::{ReadableStorage, ReadableStorageTraits, StorageError};

use super::store::storage_error;
use crate::data::{ArrayData, CompactString};
use crate::storage::utf8;
use crate::storage::StoredType;
use crate::{Error, Result};

/// A `zarrs` array over a type-erased store.
pub(crate) type ZarrsArray = zarrs::array::Array<dyn ReadableStorageTraits>;

/// Builds the `zarrs` array at `path` (`/obs/x`) from already-parsed metadata: codecs,
/// data type and fill value are checked here, nothing is read.
pub(crate) fn open_zarrs(
    storage: ReadableStorage,
    path: &str,
    metadata: ArrayMetadata,
) -> Result<ZarrsArray> {
    let path = super::store::zarrs_path(path);
    let opened = catch_unwind(AssertUnwindSafe(|| {
        ZarrsArray::new_with_metadata(storage, &path, metadata)
    }))
    .map_err(|p| panicked("its metadata", &p))?;
    opened.map_err(|e| match e {
        ArrayCreateError::CodecsCreateError(e) => {
            Error::unsupported(format!("its codecs cannot be decoded: {e}"))
        }
        ArrayCreateError::DataTypeCreateError(e) | ArrayCreateError::ChunkGridCreateError(e) => {
            Error::unsupported(format!("{e}"))
        }
        ArrayCreateError::UnsupportedZarrV2Array(e) => {
            Error::unsupported(format!("this Zarr v2 array: {e}"))
        }
        ArrayCreateError::StorageError(e) => storage_error(e),
        other => Error::malformed(format!("invalid array metadata: {other}")),
    })
}

/// Reads the region `ranges` (one range per axis, within the shape) of an array of type `ty`.
pub(crate) fn read_region(
    array: &ZarrsArray,
    ty: &StoredType,
    ranges: &[Range<u64>],
) -> Result<ArrayData> {
    let shape = ranges
        .iter()
        .map(|r| usize::try_from(r.end - r.start))
        .collect::<Result<Vec<usize>, _>>()
        .map_err(|_| Error::malformed("the region exceeds the address space"))?;
    let subset = ArraySubset::new_with_ranges(ranges);
    let int = |signed: bool, size: usize| (signed, size);
    Ok(match ty {
        StoredType::Bool => ArrayData::Bool(retrieve(array, &subset, &shape)?),
        StoredType::Int { signed, size } => match int(*signed, *size) {
            (true, 1) => ArrayData::I8(retrieve(array, &subset, &shape)?),
            (true, 2) => ArrayData::I16(retrieve(array, &subset, &shape)?),
            (true, 4) => ArrayData::I32(retrieve(array, &subset, &shape)?),
            (true, 8) => ArrayData::I64(retrieve(array, &subset, &shape)?),
            (false, 1) => ArrayData::U8(retrieve(array, &subset, &shape)?),
            (false, 2) => ArrayData::U16(retrieve(array, &subset, &shape)?),
            (false, 4) => ArrayData::U32(retrieve(array, &subset, &shape)?),
            (false, 8) => ArrayData::U64(retrieve(array, &subset, &shape)?),
            _ => return Err(unreadable(ty)),
        },
        StoredType::Float { size: 2 } => ArrayData::F16(retrieve(array, &subset, &shape)?),
        StoredType::Float { size: 4 } => ArrayData::F32(retrieve(array, &subset, &shape)?),
        StoredType::Float { size: 8 } => ArrayData::F64(retrieve(array, &subset, &shape)?),
        StoredType::VarString { .. } => ArrayData::String(strings(array, &subset, &shape)?),
        StoredType::FixedString { .. } => {
            let chars: ArrayD<Vec<char>> = retrieve(array, &subset, &shape)?;
            ArrayData::String(chars.mapv(|c| c.into_iter().collect()))
        }
        other => return Err(unreadable(other)),
    })
}

/// The whole array of fixed-size elements, as the bytes its chunks decode to (record arrays,
/// read as raw bytes: see [`super::records`]).
pub(crate) fn read_bytes(array: &ZarrsArray, shape: &[u64]) -> Result<Vec<u8>> {
    let subset = ArraySubset::new_with_shape(shape.to_vec());
    let bytes = decoded::<ArrayBytes<'static>>(array, &subset)?
        .into_fixed()
        .map_err(|_| Error::malformed("its records decoded to variable-length values"))?;
    Ok(bytes.into_owned())
}

/// Reads the region `ranges` (one range per axis, within the shape) of an array of fixed-size
/// elements of `size` bytes into `out`, which holds exactly the region's bytes: `zarrs` decodes
/// each chunk straight into its place (no buffer of its own, no copy).
pub(crate) fn read_region_into(
    array: &ZarrsArray,
    ranges: &[Range<u64>],
    size: usize,
    out: &mut [u8],
) -> Result<()> {
    let shape: Vec<u64> = ranges.iter().map(|r| r.end - r.start).collect();
    let subset = ArraySubset::new_with_ranges(ranges);
    let whole = ArraySubset::new_with_shape(shape.clone());
    // SAFETY: `ArrayBytesFixedDisjointView::new` requires that no other view of the same bytes
    // covers an overlapping subset while this one is used. `out` is borrowed mutably for the
    // whole of this function and this is the only view made of it (over its whole shape), so
    // neither another view nor any other reference to these bytes exists while `zarrs` writes
    // through it; `zarrs` divides it further only into views of disjoint chunks. The length of
    // `out` is checked against the shape by `new` itself (an error, not undefined behaviour).
    let view =
        unsafe { ArrayBytesFixedDisjointView::new(UnsafeCellSlice::new(out), size, &shape, whole) };
    let view = view.map_err(|e| {
        Error::shape(format!(
            "a buffer for the region {shape:?} does not fit it: {e}"
        ))
    })?;
    catch_unwind(AssertUnwindSafe(move || {
        let mut view = view;
        array.retrieve_array_subset_into(&subset, ArrayBytesDecodeIntoTarget::Fixed(&mut view))
    }))
    .map_err(|p| panicked("its chunks", &p))?
    .map_err(array_error)
}

fn unreadable(ty: &StoredType) -> Error {
    match ty {
        StoredType::Unsupported(what) => Error::unsupported(what.clone()),
        other => Error::unsupported(format!("reading Zarr arrays of {}", other.describe())),
    }
}

/// Retrieves `subset` as elements of `T`, shaped `shape`.
fn retrieve<T: ElementOwned>(
    array: &ZarrsArray,
    subset: &ArraySubset,
    shape: &[usize],
) -> Result<ArrayD<T>> {
    shaped(decoded::<Vec<T>>(array, subset)?, shape)
}

/// `subset` decoded by `zarrs` as a `T` (a decoder's panic is an error).
fn decoded<T: FromArrayBytes>(array: &ZarrsArray, subset: &ArraySubset) -> Result<T> {
    catch_unwind(AssertUnwindSafe(|| {
        array.retrieve_array_subset::<T>(subset)
    }))
    .map_err(|p| panicked("its chunks", &p))?
    .map_err(array_error)
}

/// The decoded `values` as an array of the region's `shape`.
fn shaped<T>(values: Vec<T>, shape: &[usize]) -> Result<ArrayD<T>> {
    let got = values.len();
    ArrayD::from_shape_vec(IxDyn(shape), values).map_err(|_| {
        Error::malformed(format!(
            "its chunks decoded to {got} values where the region {shape:?} needs {}",
            shape.iter().product::<usize>()
        ))
    })
}

/// A region of variable-length strings, each built from the decoded bytes where they lie
/// (short ones inline, none first copied into a `String` of its own).
fn strings(
    array: &ZarrsArray,
    subset: &ArraySubset,
    shape: &[usize],
) -> Result<ArrayD<CompactString>> {
    let (bytes, offsets) = decoded::<ArrayBytes<'static>>(array, subset)?
        .into_variable()
        .map_err(|_| Error::malformed("its strings decoded to fixed-size values"))?
        .into_parts();
    let values = offsets
        .windows(2)
        .map(|w| {
            let text = bytes
                .get(w[0]..w[1])
                .ok_or_else(|| Error::malformed("a string's offsets lie outside its bytes"))?;
            utf8(text)
        })
        .collect::<Result<Vec<_>>>()?;
    shaped(values, shape)
}

/// A `zarrs` read error as an engine error: I/O stays I/O, the rest is a corrupt array.
fn array_error(e: ArrayError) -> Error {
    match e {
        ArrayError::StorageError(e @ StorageError::IOError(_))
        | ArrayError::CodecError(CodecError::StorageError(e @ StorageError::IOError(_))) => {
            storage_error(e)
        }
        other => Error::malformed(format!(
            "its chunks cannot be decoded (corrupt or truncated): {other}"
        )),
    }
}

fn panicked(what: &str, payload: &Box<dyn Any + Send>) -> Error {
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned());
    Error::malformed(format!(
        "{what} cannot be decoded (corrupt or truncated; the decoder failed: {msg})"
    ))
}
