//! Writing [`crate::data::ArrayData`] as HDF5 datasets and attributes, as h5py does.
//!
//! - Types: numbers keep their dtype; bools are h5py's enum over `int8` (`FALSE = 0`,
//!   `TRUE = 1`), which h5py reads back as numpy `bool`; strings are variable-length UTF-8
//!   (`h5py.string_dtype()`), in datasets and attributes alike.
//! - Storage ([`ArrayOptions`]): contiguous by default; compressed (deflate or LZF, no
//!   shuffle) and resizable datasets are chunked with the chunk shape h5py would pick
//!   ([`guess_chunk`]) unless one is given. 0-d (scalar) datasets are never chunked or
//!   compressed, whatever the options say.
//! - Filling in parts: [`create_array`] makes a dataset of a known final shape that
//!   [`write_rows`] fills block by block; a dataset created `resizable` grows along its first
//!   axis with [`append_rows`].
//! - Compound (record) datasets: [`write_compound`], and [`write_raw_data`] for either kind.
//! - Gzip on several threads: a [`RowWriter`] appends rows to a dataset, compressing its
//!   chunks on [`with_deflaters`]' threads and storing them with HDF5's direct chunk write.
//!
//! Errors carry no element path: callers in [`crate::format`] add it.

mod chunk;
mod compound;
mod deflate;

pub use chunk::guess_chunk;
pub use compound::write_compound;
pub use deflate::{with_deflaters, Deflaters, RowWriter};

use hdf5::dataset::FillTime;
use hdf5::types::{TypeDescriptor, VarLenUnicode};
use hdf5::{
    Container, Dataset, DatasetType, Dataspace, Datatype, Extent, Extents, Group, H5Type,
    Hyperslab, Location, SimpleExtents, SliceOrIndex,
};
use hdf5_sys::h5d::H5Dwrite;
use hdf5_sys::h5p::H5P_DEFAULT;
use ndarray::{ArrayD, IxDyn};

use super::types::StoredType;
use crate::data::{ArrayData, Attrs, CompactString, DType, RawData};
use crate::storage::write::{check_fit, row_range};
pub use crate::storage::write::{ArrayOptions, Compression};
use crate::{Error, Result};

/// Applies `$body` to the inner array of `$data` as `&ArrayD<T>` with `T: H5Type`: strings are
/// converted to h5py's variable-length UTF-8 strings first (failing on a NUL character).
macro_rules! with_h5_array {
    ($data:expr, $a:ident => $body:expr) => {
        match $data {
            ArrayData::Bool($a) => $body,
            ArrayData::I8($a) => $body,
            ArrayData::I16($a) => $body,
            ArrayData::I32($a) => $body,
            ArrayData::I64($a) => $body,
            ArrayData::U8($a) => $body,
            ArrayData::U16($a) => $body,
            ArrayData::U32($a) => $body,
            ArrayData::U64($a) => $body,
            ArrayData::F16($a) => $body,
            ArrayData::F32($a) => $body,
            ArrayData::F64($a) => $body,
            ArrayData::String(strings) => {
                let converted = vlen_strings(strings)?;
                let $a = &converted;
                $body
            }
        }
    };
}

/// The most strings converted to HDF5's (a C string each, and a pointer) at once: a larger
/// array is written a block of rows at a time (a million names took 46 MB whole).
const STRINGS_AT_ONCE: usize = 1 << 16;

/// Strings as HDF5 variable-length UTF-8 strings.
fn vlen_strings(strings: &ArrayD<CompactString>) -> Result<ArrayD<VarLenUnicode>> {
    let mut out = Vec::with_capacity(strings.len());
    for s in strings {
        out.push(s.parse::<VarLenUnicode>().map_err(|_| {
            Error::invalid(format!(
                "string {s:?} contains a NUL character, which HDF5 strings cannot hold"
            ))
        })?);
    }
    ArrayD::from_shape_vec(IxDyn(strings.shape()), out)
        .map_err(|e| Error::invalid(format!("cannot shape strings: {e}")))
}

/// The HDF5 type h5py uses for values of `dtype`.
fn type_descriptor(dtype: DType) -> TypeDescriptor {
    match dtype {
        DType::Bool => bool::type_descriptor(),
        DType::I8 => i8::type_descriptor(),
        DType::I16 => i16::type_descriptor(),
        DType::I32 => i32::type_descriptor(),
        DType::I64 => i64::type_descriptor(),
        DType::U8 => u8::type_descriptor(),
        DType::U16 => u16::type_descriptor(),
        DType::U32 => u32::type_descriptor(),
        DType::U64 => u64::type_descriptor(),
        DType::F16 => half::f16::type_descriptor(),
        DType::F32 => f32::type_descriptor(),
        DType::F64 => f64::type_descriptor(),
        DType::String => VarLenUnicode::type_descriptor(),
    }
}

/// The HDF5 datatype h5py uses for values of `dtype`.
fn datatype_of(dtype: DType) -> Result<Datatype> {
    Ok(Datatype::from_descriptor(&type_descriptor(dtype))?)
}

/// The chunk shape of a new dataset, or `None` for contiguous storage.
fn chunk_shape(
    shape: &[usize],
    typesize: usize,
    options: &ArrayOptions,
) -> Result<Option<Vec<usize>>> {
    if let Some(chunks) = &options.chunks {
        let fits = |(i, (&c, &d)): (usize, (&usize, &usize))| {
            c > 0 && (c <= d || d == 0 || (i == 0 && options.resizable))
        };
        if chunks.len() != shape.len() || !chunks.iter().zip(shape).enumerate().all(fits) {
            return Err(Error::invalid(format!(
                "chunk shape {chunks:?} does not fit a dataset of shape {shape:?}"
            )));
        }
        return Ok(Some(chunks.clone()));
    }
    let needs_chunks = options.compression != Compression::None || options.resizable;
    Ok(needs_chunks.then(|| guess_chunk(shape, typesize)))
}

/// Creates dataset `name` in `parent` of type `dtype` and `shape`, stored as `options` say
/// (`typesize` is the size in bytes h5py counts per element when it guesses chunks).
fn create_dataset(
    parent: &Group,
    name: &str,
    dtype: DatasetType,
    shape: &[usize],
    typesize: usize,
    options: &ArrayOptions,
) -> Result<Dataset> {
    let builder = parent.new_dataset_builder();
    if shape.is_empty() {
        return Ok(builder.no_chunk().empty_as(dtype).shape(()).create(name)?);
    }
    let builder = match chunk_shape(shape, typesize, options)? {
        // h5py leaves the fill time at HDF5's default when it chunks.
        Some(chunks) => builder.chunk(chunks).fill_time(FillTime::IfSet),
        None => builder.no_chunk(),
    };
    let builder = match options.compression {
        Compression::None => builder,
        Compression::Gzip(level) if level <= 9 => builder.deflate(level),
        Compression::Gzip(level) => {
            return Err(Error::invalid(format!(
                "gzip level {level} is out of range 0–9"
            )))
        }
        Compression::Lzf => builder.lzf(),
    };
    let extents: Vec<Extent> = shape
        .iter()
        .enumerate()
        .map(|(i, &d)| {
            if i == 0 && options.resizable {
                Extent::resizable(d)
            } else {
                Extent::fixed(d)
            }
        })
        .collect();
    let extents = Extents::Simple(SimpleExtents::from_vec(extents));
    Ok(builder.empty_as(dtype).shape(extents).create(name)?)
}

/// Creates an empty dataset for values of `dtype` and `shape`, to be filled with
/// [`write_rows`] (or grown with [`append_rows`] if `options.resizable`).
///
/// Chunks are guessed from `shape`: give the final shape when it is known, or set
/// `options.chunks` for a dataset that starts empty and grows.
pub fn create_array(
    parent: &Group,
    name: &str,
    dtype: DType,
    shape: &[usize],
    options: &ArrayOptions,
) -> Result<Dataset> {
    create_dataset(
        parent,
        name,
        DatasetType::Descriptor(type_descriptor(dtype)),
        shape,
        dtype.size(),
        options,
    )
}

/// Creates a dataset with a null dataspace (no shape, no values; h5py's `Empty`), as anndata
/// stores `None`.
pub fn create_null_dataset(parent: &Group, name: &str, dtype: DType) -> Result<Dataset> {
    Ok(parent
        .new_dataset_builder()
        .no_chunk()
        .empty_as(type_descriptor(dtype))
        .shape(Extents::Null)
        .create(name)?)
}

/// Writes `data` (any dtype and shape, including 0-d and empty) as dataset `name` in `parent`.
///
/// If writing the values fails after the dataset was created, the dataset is removed again.
pub fn write_array(
    parent: &Group,
    name: &str,
    data: &ArrayData,
    options: &ArrayOptions,
) -> Result<Dataset> {
    let ds = create_array(parent, name, data.dtype(), data.shape(), options)?;
    if !data.is_empty() {
        let write = || -> Result<()> {
            match data {
                ArrayData::String(s) if s.len() > STRINGS_AT_ONCE && s.ndim() > 0 => {
                    let n = s.shape()[0];
                    let per = (STRINGS_AT_ONCE / (s.len() / n).max(1)).max(1);
                    for start in (0..n).step_by(per) {
                        let rows = ndarray::Slice::from(start..(start + per).min(n));
                        let rows =
                            ArrayData::String(s.slice_axis(ndarray::Axis(0), rows).to_owned());
                        write_rows(&ds, start, &rows)?;
                    }
                    Ok(())
                }
                _ => with_h5_array!(data, a => write_whole(&ds, a)),
            }
        };
        if let Err(e) = write() {
            let _ = parent.unlink(name);
            return Err(e);
        }
    }
    Ok(ds)
}

/// Writes a raw dataset's contents: an array or a compound (see [`write_compound`]).
pub fn write_raw_data(
    parent: &Group,
    name: &str,
    data: &RawData,
    options: &ArrayOptions,
) -> Result<Dataset> {
    match data {
        RawData::Array(a) => write_array(parent, name, a, options),
        RawData::Compound { shape, fields } => write_compound(parent, name, shape, fields, options),
    }
}

/// The dataset's shape after checking that `rows` can be written into it: same dtype, same
/// number of axes, same trailing axes.
fn check_rows(ds: &Dataset, rows: &ArrayData) -> Result<Vec<usize>> {
    let shape = ds.shape();
    let stored = StoredType::of(&ds.dtype()?)?;
    if stored.dtype() != Some(rows.dtype()) {
        return Err(Error::invalid(format!(
            "cannot write {} values into a dataset of {}",
            rows.dtype(),
            stored.describe()
        )));
    }
    check_fit(&shape, rows, "a dataset")?;
    Ok(shape)
}

/// Writes `rows` into the dataset from row `start` on (along the first axis); the rows must
/// have the dataset's dtype and trailing axes, and end within its current length.
pub fn write_rows(ds: &Dataset, start: usize, rows: &ArrayData) -> Result<()> {
    let shape = check_rows(ds, rows)?;
    let end = row_range(shape[0], start, rows.nrows(), "a dataset")?.end;
    if rows.is_empty() {
        return Ok(());
    }
    let selection: Vec<SliceOrIndex> = std::iter::once(start..end)
        .chain(shape[1..].iter().map(|&d| 0..d))
        .map(SliceOrIndex::from)
        .collect();
    let selection = Hyperslab::from(selection);
    with_h5_array!(rows, a => write_selected(ds, a, selection))
}

/// Writes `block` into the region of the dataset that starts at `offset` (one position per
/// axis) and has the block's shape; the block must have the dataset's dtype and end within
/// its current shape.
pub fn write_block(ds: &Dataset, offset: &[usize], block: &ArrayData) -> Result<()> {
    let shape = ds.shape();
    if offset.len() != shape.len() || block.ndim() != shape.len() {
        return Err(Error::invalid(format!(
            "a {}-d block at a {}-d offset in a {}-d dataset",
            block.ndim(),
            offset.len(),
            shape.len()
        )));
    }
    let mut selection = Vec::with_capacity(shape.len());
    for ((&start, &n), &len) in offset.iter().zip(block.shape()).zip(&shape) {
        let end = start
            .checked_add(n)
            .filter(|&end| end <= len)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "a block of shape {:?} at {offset:?} is outside a dataset of shape {shape:?}",
                    block.shape()
                ))
            })?;
        selection.push(SliceOrIndex::from(start..end));
    }
    if block.is_empty() {
        return Ok(());
    }
    with_h5_array!(block, a => write_selected(ds, a, Hyperslab::from(selection)))
}

/// Writes the whole of `target` (a dataset or an attribute of `a`'s shape) from `a`.
fn write_whole<T: H5Type + Clone>(target: &Container, a: &ArrayD<T>) -> Result<()> {
    let standard = a.as_standard_layout();
    let values = standard
        .as_slice()
        .ok_or_else(|| Error::invalid("array is not contiguous"))?;
    Ok(target.write_raw(values)?)
}

/// Writes `a` into the part of `ds` that `selection` picks (of `a`'s shape).
fn write_selected<T: H5Type + Clone>(
    ds: &Dataset,
    a: &ArrayD<T>,
    selection: Hyperslab,
) -> Result<()> {
    let standard = a.as_standard_layout();
    let values = standard
        .as_slice()
        .ok_or_else(|| Error::invalid("array is not contiguous"))?;
    let file_space = ds.space()?.select(selection)?;
    let mem_space = Dataspace::try_new(a.shape())?;
    if file_space.selection_size() != values.len() || mem_space.size() != values.len() {
        return Err(Error::invalid(format!(
            "a selection of {} values cannot take {} values",
            file_space.selection_size(),
            values.len()
        )));
    }
    let mem_type = Datatype::from_type::<T>()?;
    let status = hdf5::sync::sync(|| {
        // SAFETY: `values` is a live, contiguous slice of `values.len()` values of `T`, laid out
        // as `mem_type` (built from `T`'s `H5Type` description) says; the memory space covers
        // exactly `values.len()` elements and the file selection as many (checked above). All
        // ids are open handles owned by this function or `ds`. The library only reads `values`
        // (for strings: pointers to NUL-terminated strings owned by `a`'s converted copy).
        unsafe {
            H5Dwrite(
                ds.id(),
                mem_type.id(),
                mem_space.id(),
                file_space.id(),
                H5P_DEFAULT,
                values.as_ptr().cast(),
            )
        }
    });
    hdf5::h5check(status)?;
    Ok(())
}

/// Appends `rows` at the end of a resizable dataset (see [`ArrayOptions::resizable`]),
/// returning its new length.
pub fn append_rows(ds: &Dataset, rows: &ArrayData) -> Result<usize> {
    let mut shape = check_rows(ds, rows)?;
    if !ds.is_resizable() {
        return Err(Error::invalid(
            "cannot append to a dataset that was not created resizable",
        ));
    }
    let start = shape[0];
    let end = start
        .checked_add(rows.nrows())
        .ok_or_else(|| Error::invalid("dataset length overflows"))?;
    shape[0] = end;
    ds.resize(shape)?;
    write_rows(ds, start, rows)?;
    Ok(end)
}

/// Writes attribute `name` of `loc` (replacing any attribute of that name): a 0-d array gives
/// a scalar attribute, strings are variable-length UTF-8 and bools h5py's enum.
pub fn write_attr(loc: &Location, name: &str, value: &ArrayData) -> Result<()> {
    if loc.attr_names()?.iter().any(|n| n == name) {
        loc.delete_attr(name)?;
    }
    let attr = loc
        .new_attr_builder()
        .empty_as(type_descriptor(value.dtype()))
        .shape(value.shape())
        .create(name)?;
    if !value.is_empty() {
        with_h5_array!(value, a => write_whole(&attr, a))?;
    }
    Ok(())
}

/// Writes every attribute of `attrs`.
pub fn write_attrs(loc: &Location, attrs: &Attrs) -> Result<()> {
    attrs
        .iter()
        .try_for_each(|(name, value)| write_attr(loc, name, value))
}

#[cfg(test)]
mod tests;
