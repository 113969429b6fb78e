//! Reading HDF5 datasets and attributes into [`crate::data::ArrayData`].
//!
//! Plain integer and float datasets are read straight into typed vectors by `hdf5-metno`.
//! Everything else (bools, half floats, strings of any kind, compounds, attributes) goes through
//! one raw path: the data is read with the *native* memory type of the stored type into a byte
//! buffer, decoded value by value (by offset for compound members), and any variable-length
//! strings HDF5 allocated are reclaimed when the buffer is dropped.
//!
//! Errors carry no element path: callers in [`crate::format`] add it.

use std::ffi::{c_char, CStr};
use std::ops::Range;

use hdf5::{
    Attribute, Dataset, Dataspace, Datatype, Hyperslab, Location, ReferencedObject, SliceOrIndex,
};
use hdf5_sys::h5a::H5Aread;
use hdf5_sys::h5d::H5Dread;
use hdf5_sys::h5p::H5P_DEFAULT;
use hdf5_sys::h5s::H5S_ALL;
use hdf5_sys::h5t::H5Treclaim;
use ndarray::{ArrayD, IxDyn};

use super::claim::{check_whole_read, element_count};
use super::types::{native_type, StoredType};
use crate::data::{ArrayData, Attrs, CompactString, DType, RawData};
use crate::storage::utf8;
use crate::{Error, Result};

/// The stored type of a dataset.
pub fn stored_type(ds: &Dataset) -> Result<StoredType> {
    StoredType::of(&ds.dtype()?)
}

/// The stored type of an attribute.
pub fn attr_type(loc: &Location, name: &str) -> Result<StoredType> {
    StoredType::of(&loc.attr(name)?.dtype()?)
}

/// Reads a whole dataset of numbers, bools or strings: n-dimensional, 0-d (a scalar, shape `[]`)
/// or empty. A dataset with a null dataspace (h5py's `Empty`) reads as an empty 1-d array.
///
/// Bools are h5py's int8 enum; other enums and bitfields read as
/// their integers; fixed-length byte strings are decoded as UTF-8 with trailing NULs removed.
/// Compound datasets are refused here (see [`read_raw_data`]). A dataset compressed with a filter
/// this build cannot decode gives an [`Error::Unsupported`] naming the filter.
pub fn read_array(ds: &Dataset) -> Result<ArrayData> {
    read_array_unexplained(ds).map_err(|e| explain_read_failure(ds, e))
}

/// Reads a dataset's contents, compound or not.
///
/// Compound datasets are decoded field by field into one array per field, whose leading axes are
/// the dataset's shape and whose trailing axes are the field's sub-array dimensions.
pub fn read_raw_data(ds: &Dataset) -> Result<RawData> {
    let read = || -> Result<RawData> {
        if matches!(stored_type(ds)?, StoredType::Compound { .. }) {
            let buf = NativeBuffer::read(Source::Dataset(ds))?;
            Ok(RawData::Compound {
                shape: buf.shape.clone(),
                fields: buf.decode_fields()?,
            })
        } else {
            read_array_unexplained(ds).map(RawData::Array)
        }
    };
    read().map_err(|e| explain_read_failure(ds, e))
}

/// Reads an attribute of any supported type (a scalar attribute gives a 0-d array); a missing
/// one is [`Error::NotFound`]. The tests' shorthand for [`read_attr_opt`].
#[cfg(test)]
pub(crate) fn read_attr(loc: &Location, name: &str) -> Result<ArrayData> {
    read_attr_opt(loc, name)?.ok_or_else(|| Error::not_found(format!("no attribute '{name}'")))
}

/// The values of an attribute whose strings are checked (or hold none).
fn decode_attr(attr: &Attribute) -> Result<ArrayData> {
    NativeBuffer::read(Source::Attribute(attr))?.decode_array()
}

/// `e` naming attribute `name`.
fn in_attribute(name: &str, e: Error) -> Error {
    match e {
        Error::Unsupported(msg) => Error::unsupported(format!("attribute '{name}': {msg}")),
        Error::Malformed(msg) => Error::malformed(format!("attribute '{name}': {msg}")),
        e => e,
    }
}

/// The stored type and count of values of an attribute holding variable-length values, whose
/// references are checked before libhdf5 follows them into the global heap (see
/// [`super::heap::check_attributes`]); `None` for other attributes.
fn variable_length(attr: &Attribute) -> Result<Option<(StoredType, usize)>> {
    let ty = StoredType::of(&attr.dtype()?)?;
    if !ty.has_vlen() {
        return Ok(None);
    }
    let space = attr.space()?;
    Ok(Some((ty, if space.is_null() { 0 } else { space.size() })))
}

/// Reads an attribute if it exists.
pub fn read_attr_opt(loc: &Location, name: &str) -> Result<Option<ArrayData>> {
    Ok(read_some_attrs(loc, &[name])?.pop().flatten())
}

/// The most attributes [`read_attrs`] reads from one object. libhdf5 finds an attribute by
/// name by walking the object's attribute messages, so reading every one of `n` costs `n²`
/// (20,000 took over ten minutes); anndata writes a handful per object.
pub const MAX_ATTRIBUTES: usize = 1024;

/// Reads every attribute of `loc`, in name order (at most [`MAX_ATTRIBUTES`]).
pub fn read_attrs(loc: &Location) -> Result<Attrs> {
    let names = loc.attr_names()?;
    if names.len() > MAX_ATTRIBUTES {
        return Err(Error::unsupported(format!(
            "the object has {} attributes, more than the {MAX_ATTRIBUTES} annpage reads from \
             one object",
            names.len()
        )));
    }
    let listed: Vec<&str> = names.iter().map(String::as_str).collect();
    let values = read_listed(loc, &listed)?;
    Ok(names.into_iter().zip(values).collect())
}

/// Reads the attributes `wanted` of `loc` that exist (`None` for the others), in `wanted`'s
/// order, as [`read_attr_opt`] of each would, with one walk of the object's header for all
/// their strings.
pub fn read_some_attrs(loc: &Location, wanted: &[&str]) -> Result<Vec<Option<ArrayData>>> {
    let present = loc.attr_names()?;
    let found: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|w| present.iter().any(|p| p == w))
        .collect();
    let mut values = read_listed(loc, &found)?.into_iter();
    Ok(wanted
        .iter()
        .map(|w| {
            if found.contains(w) {
                values.next()
            } else {
                None
            }
        })
        .collect())
}

/// The values of the attributes `names` of `loc` (each must exist), their strings checked
/// with one walk of the object's header, not one each.
fn read_listed(loc: &Location, names: &[&str]) -> Result<Vec<ArrayData>> {
    let attrs = names
        .iter()
        .map(|name| Ok(loc.attr(name)?))
        .collect::<Result<Vec<_>>>()?;
    let mut wanted = Vec::new();
    for (k, (name, attr)) in names.iter().zip(&attrs).enumerate() {
        if let Some((ty, count)) = variable_length(attr).map_err(|e| in_attribute(name, e))? {
            wanted.push((k, *name, ty, count));
        }
    }
    let listed: Vec<(&str, &StoredType, usize)> =
        wanted.iter().map(|(_, n, ty, c)| (*n, ty, *c)).collect();
    let mut checks: Vec<Result<()>> = names.iter().map(|_| Ok(())).collect();
    if let Some(&(_, first, _, _)) = wanted.first() {
        let results =
            super::heap::check_attributes(loc, &listed).map_err(|e| in_attribute(first, e))?;
        for ((k, ..), result) in wanted.iter().zip(results) {
            checks[*k] = result;
        }
    }
    names
        .iter()
        .zip(attrs)
        .zip(checks)
        .map(|((name, attr), check)| {
            check
                .and_then(|()| decode_attr(&attr))
                .map_err(|e| in_attribute(name, e))
        })
        .collect()
}

/// Follows the object reference stored in attribute `name` of `loc` (scalar or one-element).
pub fn read_ref_attr(loc: &Location, name: &str) -> Result<ReferencedObject> {
    let attr = loc.attr(name)?;
    let ty = StoredType::of(&attr.dtype()?)?;
    if ty != StoredType::ObjectReference {
        return Err(Error::malformed(format!(
            "attribute '{name}' should be an object reference, found {}",
            ty.describe()
        )));
    }
    let refs: Vec<hdf5::ObjectReference1> = attr.read_raw()?;
    let [r] = refs.as_slice() else {
        return Err(Error::malformed(format!(
            "attribute '{name}' holds {} references, expected one",
            refs.len()
        )));
    };
    Ok(loc.dereference(r)?)
}

/// The filter pipeline names annpage knows, by HDF5 filter id.
fn filter_name(id: i32) -> &'static str {
    match id {
        1 => "deflate (gzip)",
        2 => "shuffle",
        3 => "fletcher32",
        4 => "szip",
        5 => "nbit",
        6 => "scaleoffset",
        307 => "bzip2",
        32000 => "lzf",
        32001 => "blosc",
        32004 => "lz4",
        32008 => "bitshuffle",
        32013 => "zfp",
        32015 => "zstd",
        32017 => "sz",
        32026 => "blosc2",
        _ => "unknown",
    }
}

/// Replaces a read failure caused by a filter this build lacks with an error naming the filter,
/// and a failed filter with what it means.
fn explain_read_failure(ds: &Dataset, err: Error) -> Error {
    let filters = ds.filters();
    if let Some(f) = filters.iter().find(|f| !f.is_available()) {
        return Error::unsupported(format!(
            "the dataset is compressed with the {} filter (HDF5 filter id {}), which this build \
             of annpage cannot decode",
            filter_name(f.id()),
            f.id()
        ));
    }
    if err.to_string().contains("filter returned failure") {
        let names: Vec<&str> = filters.iter().map(|f| filter_name(f.id())).collect();
        return Error::malformed(format!(
            "a chunk does not decode through its filters ({}): corrupt, or decoding past the \
             chunk's size ({err})",
            names.join(", ")
        ));
    }
    err
}

fn read_array_unexplained(ds: &Dataset) -> Result<ArrayData> {
    let ty = stored_type(ds)?;
    let plain = matches!(
        ty,
        StoredType::Int { .. } | StoredType::Float { size: 2 | 4 | 8 }
    );
    match ty.dtype() {
        Some(dtype) if plain && !ds.space()?.is_null() => read_typed(ds, dtype),
        _ => match super::heap::read_strings(ds)? {
            Some(strings) => Ok(strings),
            None => NativeBuffer::read(Source::Dataset(ds))?.decode_array(),
        },
    }
}

/// Reads a whole dataset through libhdf5's conversion to the native type (what the global heap
/// reader is checked against).
#[cfg(test)]
pub(super) fn read_array_through_libhdf5(ds: &Dataset) -> Result<ArrayData> {
    NativeBuffer::read(Source::Dataset(ds))?.decode_array()
}

/// Reads a plain integer or float dataset straight into a typed array (HDF5 converts the byte
/// order).
fn read_typed(ds: &Dataset, dtype: DType) -> Result<ArrayData> {
    check_whole_read(ds, dtype.size())?;
    let shape = ds.space()?.shape();
    Ok(match dtype {
        DType::I8 => ArrayData::I8(shaped(&shape, ds.read_raw()?)?),
        DType::I16 => ArrayData::I16(shaped(&shape, ds.read_raw()?)?),
        DType::I32 => ArrayData::I32(shaped(&shape, ds.read_raw()?)?),
        DType::I64 => ArrayData::I64(shaped(&shape, ds.read_raw()?)?),
        DType::U8 => ArrayData::U8(shaped(&shape, ds.read_raw()?)?),
        DType::U16 => ArrayData::U16(shaped(&shape, ds.read_raw()?)?),
        DType::U32 => ArrayData::U32(shaped(&shape, ds.read_raw()?)?),
        DType::U64 => ArrayData::U64(shaped(&shape, ds.read_raw()?)?),
        DType::F16 => ArrayData::F16(shaped(&shape, ds.read_raw()?)?),
        DType::F32 => ArrayData::F32(shaped(&shape, ds.read_raw()?)?),
        DType::F64 => ArrayData::F64(shaped(&shape, ds.read_raw()?)?),
        DType::Bool | DType::String => NativeBuffer::read(Source::Dataset(ds))?.decode_array()?,
    })
}

/// What a raw read reads from.
#[derive(Clone, Copy)]
enum Source<'a> {
    Dataset(&'a Dataset),
    Attribute(&'a Attribute),
}

impl Source<'_> {
    fn dtype(self) -> Result<Datatype> {
        Ok(match self {
            Source::Dataset(d) => d.dtype()?,
            Source::Attribute(a) => a.dtype()?,
        })
    }
    fn space(self) -> Result<Dataspace> {
        Ok(match self {
            Source::Dataset(d) => d.space()?,
            Source::Attribute(a) => a.space()?,
        })
    }
}

/// The whole contents of a dataset or attribute in the native memory layout of its type.
///
/// Invariant: after construction, `words` holds exactly what a successful `H5Dread`/`H5Aread`
/// with `mem` wrote (or zeros for an empty selection), so every variable-length string slot is
/// either NULL or a pointer to a NUL-terminated string HDF5 allocated, valid until `Drop`
/// reclaims it.
struct NativeBuffer {
    /// 8-byte aligned storage, so HDF5 may write pointers into it.
    words: Vec<u64>,
    nbytes: usize,
    mem: Datatype,
    space: Dataspace,
    ty: StoredType,
    elem_size: usize,
    shape: Vec<usize>,
    /// Whether HDF5 allocated variable-length data into `words` that `Drop` must reclaim.
    needs_reclaim: bool,
}

impl NativeBuffer {
    fn read(src: Source<'_>) -> Result<Self> {
        let mem = native_type(&src.dtype()?)?;
        let ty = StoredType::of(&mem)?;
        if let StoredType::Unsupported(what) = &ty {
            return Err(Error::unsupported(format!("HDF5 datatype {what}")));
        }
        let space = src.space()?;
        let shape = if space.is_null() {
            vec![0]
        } else {
            space.shape()
        };
        let elem_size = mem.size();
        let nbytes = match src {
            Source::Dataset(d) => {
                if ty.has_vlen() {
                    super::heap::check_dataset(d)?;
                }
                check_whole_read(d, elem_size)?
            }
            // An attribute's values are all stored in its header: its size is what the file holds.
            Source::Attribute(_) => usize::try_from(element_count(&shape)?)
                .ok()
                .and_then(|n| n.checked_mul(elem_size))
                .ok_or_else(|| {
                    Error::malformed(format!("attribute of shape {shape:?} is too large"))
                })?,
        };
        let count = nbytes / elem_size.max(1);
        let mut buf = NativeBuffer {
            words: vec![0; nbytes.div_ceil(8)],
            nbytes,
            mem,
            space,
            ty,
            elem_size,
            shape,
            needs_reclaim: false,
        };
        if count > 0 {
            let ptr = buf.words.as_mut_ptr().cast();
            let status = hdf5::sync::sync(|| match src {
                // SAFETY: `ptr` points to `nbytes.div_ceil(8) * 8 >= count * elem_size` writable,
                // 8-byte aligned bytes; with H5S_ALL the library writes exactly `count` values
                // of the memory type `mem` (size `elem_size`). Both ids are valid open handles.
                Source::Dataset(d) => unsafe {
                    H5Dread(d.id(), buf.mem.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptr)
                },
                // SAFETY: as above; an attribute is always read whole.
                Source::Attribute(a) => unsafe { H5Aread(a.id(), buf.mem.id(), ptr) },
            });
            hdf5::h5check(status)?;
            buf.needs_reclaim = buf.ty.has_vlen();
        }
        Ok(buf)
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `words` owns `words.len() * 8 >= nbytes` initialised bytes; u64 has no padding
        // and every byte pattern is a valid u8; the slice borrows `self`.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), self.nbytes) }
    }

    fn count(&self) -> usize {
        self.shape.iter().product()
    }

    /// Decodes a non-compound buffer (sub-array types add trailing axes).
    fn decode_array(&self) -> Result<ArrayData> {
        if let StoredType::Compound { .. } = self.ty {
            return Err(Error::unsupported(format!(
                "a compound ({}) where an array was expected",
                self.ty.describe()
            )));
        }
        self.decode_member(&self.ty, 0)
    }

    /// Decodes each member of a compound buffer.
    fn decode_fields(&self) -> Result<Vec<(String, ArrayData)>> {
        let StoredType::Compound { fields, .. } = &self.ty else {
            return Err(Error::malformed("not a compound dataset"));
        };
        fields
            .iter()
            .map(|f| Ok((f.name.clone(), self.decode_member(&f.ty, f.offset)?)))
            .collect()
    }

    /// Decodes the value of type `ty` at byte `offset` inside each element.
    fn decode_member(&self, ty: &StoredType, offset: usize) -> Result<ArrayData> {
        let count = self.count();
        let stride = self.elem_size;
        match ty {
            StoredType::Array { base, dims } => {
                let inner: usize = dims.iter().product();
                let base_size = base
                    .size()
                    .ok_or_else(|| Error::unsupported(base.describe()))?;
                let mut shape = self.shape.clone();
                shape.extend_from_slice(dims);
                let total = count.checked_mul(inner).ok_or_else(|| {
                    Error::malformed(format!("sub-array of shape {shape:?} is too large"))
                })?;
                let pos = |k: usize| (k / inner) * stride + offset + (k % inner) * base_size;
                self.decode_values(base, total, pos, &shape)
            }
            _ => self.decode_values(ty, count, |k| k * stride + offset, &self.shape),
        }
    }

    /// Decodes `total` values of the scalar type `ty`, value `k` at byte `pos(k)`.
    fn decode_values(
        &self,
        ty: &StoredType,
        total: usize,
        pos: impl Fn(usize) -> usize,
        shape: &[usize],
    ) -> Result<ArrayData> {
        let bytes = self.bytes();
        macro_rules! numbers {
            ($t:ty, $variant:ident) => {{
                let mut out = Vec::with_capacity(total);
                for k in 0..total {
                    out.push(<$t>::from_ne_bytes(take(bytes, pos(k))?));
                }
                ArrayData::$variant(shaped(shape, out)?)
            }};
        }
        let integer = match *ty {
            StoredType::Int { signed, size } | StoredType::Enum { signed, size } => {
                Some((signed, size))
            }
            StoredType::Bitfield { size } => Some((false, size)),
            _ => None,
        };
        if let Some((signed, size)) = integer {
            return Ok(match (signed, size) {
                (true, 1) => numbers!(i8, I8),
                (true, 2) => numbers!(i16, I16),
                (true, 4) => numbers!(i32, I32),
                (true, 8) => numbers!(i64, I64),
                (false, 1) => numbers!(u8, U8),
                (false, 2) => numbers!(u16, U16),
                (false, 4) => numbers!(u32, U32),
                (false, 8) => numbers!(u64, U64),
                _ => return Err(Error::unsupported(ty.describe())),
            });
        }
        Ok(match *ty {
            StoredType::Bool => {
                let mut out = Vec::with_capacity(total);
                for k in 0..total {
                    let [b] = take::<1>(bytes, pos(k))?;
                    out.push(b != 0);
                }
                ArrayData::Bool(shaped(shape, out)?)
            }
            StoredType::Float { size: 2 } => {
                let mut out = Vec::with_capacity(total);
                for k in 0..total {
                    out.push(half::f16::from_bits(u16::from_ne_bytes(take(
                        bytes,
                        pos(k),
                    )?)));
                }
                ArrayData::F16(shaped(shape, out)?)
            }
            StoredType::Float { size: 4 } => numbers!(f32, F32),
            StoredType::Float { size: 8 } => numbers!(f64, F64),
            StoredType::VarString { .. } => {
                let mut out = Vec::with_capacity(total);
                for k in 0..total {
                    let addr = usize::from_ne_bytes(take(bytes, pos(k))?);
                    out.push(if addr == 0 {
                        CompactString::default()
                    } else {
                        // SAFETY: by the buffer's invariant, a non-zero variable-length string
                        // slot is a pointer to a NUL-terminated string HDF5 allocated during the
                        // read and that stays valid until `Drop` reclaims it, after this borrow.
                        let s = unsafe { CStr::from_ptr(addr as *const c_char) };
                        utf8(s.to_bytes())?
                    });
                }
                ArrayData::String(shaped(shape, out)?)
            }
            StoredType::FixedString { size } => {
                let mut out = Vec::with_capacity(total);
                for k in 0..total {
                    let start = pos(k);
                    let raw = bytes
                        .get(start..start.saturating_add(size))
                        .ok_or_else(|| Error::malformed("string value outside the buffer"))?;
                    let end = raw.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
                    out.push(utf8(&raw[..end])?);
                }
                ArrayData::String(shaped(shape, out)?)
            }
            StoredType::ObjectReference => {
                return Err(Error::unsupported(
                    "object references cannot be read as an array",
                ))
            }
            _ => {
                return Err(Error::unsupported(format!(
                    "values of type {}",
                    ty.describe()
                )))
            }
        })
    }
}

impl Drop for NativeBuffer {
    fn drop(&mut self) {
        if !self.needs_reclaim {
            return;
        }
        let ptr = self.words.as_mut_ptr().cast();
        // SAFETY: the buffer was filled by a successful read of `space`'s full selection with
        // memory type `mem`, so it holds exactly the variable-length allocations H5Treclaim
        // frees (NULL slots are skipped); it is reclaimed once, here, and the default transfer
        // property list matches the default one the read allocated with.
        let status = hdf5::sync::sync(|| unsafe {
            H5Treclaim(self.mem.id(), self.space.id(), H5P_DEFAULT, ptr)
        });
        // A failure here can only leak memory; there is nothing better to do in a destructor.
        let _ = hdf5::h5check(status);
    }
}

/// The `N` bytes at `at`, or an error if the buffer is too short.
fn take<const N: usize>(bytes: &[u8], at: usize) -> Result<[u8; N]> {
    bytes
        .get(at..at.saturating_add(N))
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| Error::malformed("value outside the read buffer"))
}

fn shaped<T>(shape: &[usize], values: Vec<T>) -> Result<ArrayD<T>> {
    ArrayD::from_shape_vec(IxDyn(shape), values)
        .map_err(|e| Error::malformed(format!("cannot shape values as {shape:?}: {e}")))
}

/// Rows `rows` of the first axis of `ds` (all of every other axis), whose `shape` (1-d or
/// 2-d) and numeric or bool `dtype` the caller has checked, converted by HDF5 from the stored
/// type. An empty selection reads nothing (HDF5 refuses empty hyperslabs).
pub fn read_hyperslab(
    ds: &Dataset,
    shape: &[usize],
    dtype: DType,
    rows: Range<usize>,
) -> Result<ArrayData> {
    let mut out = shape.to_vec();
    out[0] = rows.len();
    if out.contains(&0) {
        return Ok(ArrayData::zeros(dtype, &out));
    }
    Ok(match dtype {
        DType::Bool => ArrayData::Bool(hyperslab(ds, shape, &rows, &out)?),
        DType::I8 => ArrayData::I8(hyperslab(ds, shape, &rows, &out)?),
        DType::I16 => ArrayData::I16(hyperslab(ds, shape, &rows, &out)?),
        DType::I32 => ArrayData::I32(hyperslab(ds, shape, &rows, &out)?),
        DType::I64 => ArrayData::I64(hyperslab(ds, shape, &rows, &out)?),
        DType::U8 => ArrayData::U8(hyperslab(ds, shape, &rows, &out)?),
        DType::U16 => ArrayData::U16(hyperslab(ds, shape, &rows, &out)?),
        DType::U32 => ArrayData::U32(hyperslab(ds, shape, &rows, &out)?),
        DType::U64 => ArrayData::U64(hyperslab(ds, shape, &rows, &out)?),
        DType::F16 => ArrayData::F16(hyperslab(ds, shape, &rows, &out)?),
        DType::F32 => ArrayData::F32(hyperslab(ds, shape, &rows, &out)?),
        DType::F64 => ArrayData::F64(hyperslab(ds, shape, &rows, &out)?),
        DType::String => return Err(Error::unsupported("range reads of strings")),
    })
}

/// The hyperslab of `rows` (all of every other axis) of a 1-d or 2-d dataset of `shape`, as
/// `T`, into an array of shape `out`.
fn hyperslab<T: hdf5::H5Type + Copy>(
    ds: &Dataset,
    shape: &[usize],
    rows: &Range<usize>,
    out: &[usize],
) -> Result<ArrayD<T>> {
    let slice = |start, end| SliceOrIndex::SliceTo {
        start,
        step: 1,
        end,
        block: 1,
    };
    let mut dims = vec![slice(rows.start, rows.end)];
    dims.extend(shape[1..].iter().map(|&n| slice(0, n)));
    let slab = Hyperslab::from(dims);
    let reader = ds.as_reader();
    // hdf5-metno returns arrays of its own ndarray version: take their values in order.
    macro_rules! values {
        ($a:expr) => {{
            let a = $a;
            if a.is_standard_layout() {
                a.into_raw_vec_and_offset().0
            } else {
                a.iter().copied().collect()
            }
        }};
    }
    let values: Vec<T> = match shape.len() {
        1 => values!(reader.read_slice_1d::<T, _>(slab)?),
        2 => values!(reader.read_slice_2d::<T, _>(slab)?),
        n => return Err(Error::unsupported(format!("range reads of {n}-d arrays"))),
    };
    ArrayD::from_shape_vec(IxDyn(out), values)
        .map_err(|e| Error::malformed(format!("read returned the wrong number of values: {e}")))
}

#[cfg(test)]
mod tests;
