//! What a stored HDF5 datatype is, in the terms annpage reads it in.
//!
//! [`StoredType::of`] classifies any datatype (a file type or a memory type) by walking it with
//! the HDF5 C API: integers, floats (including half precision), bool enums, strings (variable-
//! and fixed-length, ASCII or UTF-8), compounds with their member offsets, sub-arrays and object
//! references. [`native_type`] gives the memory layout that raw reads decode (see
//! [`super::read`]).

use std::ffi::CStr;

use hdf5::Datatype;
use hdf5_sys::h5::H5free_memory;
use hdf5_sys::h5i::hid_t;
use hdf5_sys::h5t::{
    H5T_class_t, H5T_cset_t, H5T_direction_t, H5T_sign_t, H5Tequal, H5Tget_array_dims2,
    H5Tget_array_ndims, H5Tget_class, H5Tget_cset, H5Tget_ebias, H5Tget_fields, H5Tget_member_name,
    H5Tget_member_offset, H5Tget_member_type, H5Tget_member_value, H5Tget_native_type,
    H5Tget_nmembers, H5Tget_sign, H5Tget_size, H5Tget_super, H5Tis_variable_str,
};

pub(crate) use crate::storage::types::{CompoundField, StoredType};
use crate::{Error, Result};

impl StoredType {
    /// Classifies an HDF5 datatype.
    pub fn of(dtype: &Datatype) -> Result<StoredType> {
        hdf5::sync::sync(|| classify(dtype.id()))
    }
}

/// The native memory type matching a stored type (native byte order and alignment; strings,
/// enums and references unchanged in kind). Raw reads use it as the memory type and decode the
/// result with the [`StoredType`] of the returned type.
pub fn native_type(dtype: &Datatype) -> Result<Datatype> {
    hdf5::sync::sync(|| {
        // SAFETY: `dtype.id()` is a valid open datatype id for the lifetime of `dtype`, and
        // H5Tget_native_type only reads it; it returns a new id (or a negative error code, which
        // `h5check` turns into an error) whose ownership `from_id` takes over, closing it on drop.
        let id = hdf5::h5check(unsafe {
            H5Tget_native_type(dtype.id(), H5T_direction_t::H5T_DIR_ASCEND)
        })?;
        // SAFETY: `id` is a freshly created datatype id with reference count 1, owned by no one else.
        Ok(unsafe { hdf5::from_id::<Datatype>(id) }?)
    })
}

/// Wraps a datatype id returned by the library (owned by the caller) so it is closed on drop.
fn owned(id: hid_t) -> Result<Datatype> {
    let id = hdf5::h5check(id)?;
    // SAFETY: the caller passes an id it owns (freshly returned by H5Tget_super /
    // H5Tget_member_type), checked non-negative above; `from_id` takes over that reference.
    Ok(unsafe { hdf5::from_id::<Datatype>(id) }?)
}

/// Whether the 2-byte float type `id` is IEEE 754 half precision (numpy's `float16`): sign bit
/// 15, 5 exponent bits from bit 10 with bias 15, 10 mantissa bits from bit 0. Must run under the
/// HDF5 lock.
fn ieee_half(id: hid_t) -> bool {
    let mut fields = [0usize; 5];
    let [spos, epos, esize, mpos, msize] = &mut fields;
    // SAFETY: `id` is a valid float datatype; the call writes one value through each pointer,
    // all of which point at distinct live `usize`s (`size_t`).
    let status = unsafe { H5Tget_fields(id, spos, epos, esize, mpos, msize) };
    // SAFETY: a query on a valid float datatype.
    let bias = unsafe { H5Tget_ebias(id) };
    status >= 0 && fields == [15, 10, 5, 0, 10] && bias == 15
}

/// Classifies the datatype `id`. Must run under the HDF5 lock.
fn classify(id: hid_t) -> Result<StoredType> {
    // SAFETY: `id` is a valid datatype id (callers hold a `Datatype` for it); these calls only
    // query it and return plain values or error codes.
    let (class, size) = unsafe { (H5Tget_class(id), H5Tget_size(id)) };
    Ok(match class {
        H5T_class_t::H5T_INTEGER => {
            // SAFETY: as above, a query on a valid integer datatype.
            let signed = unsafe { H5Tget_sign(id) } == H5T_sign_t::H5T_SGN_2;
            integer(signed, size)
        }
        H5T_class_t::H5T_BITFIELD => match integer(false, size) {
            StoredType::Int { size, .. } => StoredType::Bitfield { size },
            other => other,
        },
        H5T_class_t::H5T_FLOAT => match size {
            2 if !ieee_half(id) => StoredType::Unsupported(
                "a 2-byte float that is not IEEE half precision (bfloat16?)".into(),
            ),
            2 | 4 | 8 => StoredType::Float { size },
            n => StoredType::Unsupported(format!("{}-byte float", n)),
        },
        H5T_class_t::H5T_ENUM => classify_enum(id, size)?,
        H5T_class_t::H5T_STRING => {
            // SAFETY: queries on a valid string datatype.
            let (variable, cset) = unsafe { (H5Tis_variable_str(id), H5Tget_cset(id)) };
            if hdf5::h5check(variable)? > 0 {
                StoredType::VarString {
                    utf8: cset == H5T_cset_t::H5T_CSET_UTF8,
                }
            } else {
                StoredType::FixedString { size }
            }
        }
        H5T_class_t::H5T_COMPOUND => classify_compound(id, size)?,
        H5T_class_t::H5T_ARRAY => classify_array(id)?,
        H5T_class_t::H5T_REFERENCE => {
            // SAFETY: H5Tequal compares two valid datatype ids (the global is initialised by the
            // library before any file can be opened).
            let is_obj = unsafe { H5Tequal(id, *hdf5::globals::H5T_STD_REF_OBJ) };
            if hdf5::h5check(is_obj)? > 0 {
                StoredType::ObjectReference
            } else {
                StoredType::Unsupported("region or new-style reference".into())
            }
        }
        H5T_class_t::H5T_OPAQUE => StoredType::Unsupported("opaque".into()),
        H5T_class_t::H5T_TIME => StoredType::Unsupported("time".into()),
        H5T_class_t::H5T_VLEN => StoredType::Unsupported("variable-length sequence".into()),
        other => StoredType::Unsupported(format!("{other:?}")),
    })
}

fn integer(signed: bool, size: usize) -> StoredType {
    match size {
        1 | 2 | 4 | 8 => StoredType::Int { signed, size },
        n => StoredType::Unsupported(format!("{n}-byte integer")),
    }
}

/// A member name returned by the library, copied and freed.
fn member_name(id: hid_t, idx: u32) -> Result<String> {
    // SAFETY: `idx` is below the member count of the valid compound/enum `id`.
    let ptr = unsafe { H5Tget_member_name(id, idx) };
    if ptr.is_null() {
        return Err(hdf5::Error::query().unwrap_or_else(|e| e).into());
    }
    // SAFETY: a non-null result is a NUL-terminated string allocated by the library; we copy it
    // before freeing it with the library's own deallocator, and never use `ptr` afterwards.
    let name = unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: see above; freed exactly once.
    unsafe { H5free_memory(ptr.cast()) };
    Ok(name)
}

fn member_count(id: hid_t) -> Result<u32> {
    // SAFETY: a query on a valid compound or enum datatype.
    let n = hdf5::h5check(unsafe { H5Tget_nmembers(id) })?;
    u32::try_from(n).map_err(|_| Error::malformed(format!("negative member count {n}")))
}

fn classify_enum(id: hid_t, size: usize) -> Result<StoredType> {
    // SAFETY: returns a new id for the base type of a valid enum, owned by `base`.
    let base = owned(unsafe { H5Tget_super(id) })?;
    let base_type = classify(base.id())?;
    let n = member_count(id)?;
    if size == 1 && n == 2 {
        let mut members = Vec::with_capacity(2);
        for idx in 0..n {
            let mut value = 0u8;
            // SAFETY: `idx` < member count; the enum is 1 byte wide (checked above), so the
            // library writes exactly one byte into `value`.
            hdf5::h5check(unsafe {
                H5Tget_member_value(id, idx, std::ptr::addr_of_mut!(value).cast())
            })?;
            members.push((member_name(id, idx)?.to_ascii_lowercase(), value));
        }
        members.sort_by_key(|m| m.1);
        if members == [("false".to_owned(), 0), ("true".to_owned(), 1)] {
            return Ok(StoredType::Bool);
        }
    }
    Ok(match base_type {
        StoredType::Int { signed, size } => StoredType::Enum { signed, size },
        other => other,
    })
}

fn classify_compound(id: hid_t, size: usize) -> Result<StoredType> {
    let n = member_count(id)?;
    let mut fields = Vec::with_capacity(n as usize);
    for idx in 0..n {
        let name = member_name(id, idx)?;
        // SAFETY: `idx` < member count of the valid compound `id`.
        let offset = unsafe { H5Tget_member_offset(id, idx) };
        // SAFETY: returns a new id for the member's type, owned by `member`.
        let member = owned(unsafe { H5Tget_member_type(id, idx) })?;
        let ty = classify(member.id())?;
        fields.push(CompoundField { name, offset, ty });
    }
    Ok(StoredType::Compound { size, fields })
}

fn classify_array(id: hid_t) -> Result<StoredType> {
    // SAFETY: a query on a valid array datatype.
    let ndims = hdf5::h5check(unsafe { H5Tget_array_ndims(id) })?;
    let ndims = usize::try_from(ndims).unwrap_or(0);
    let mut dims = vec![0 as hdf5_sys::h5::hsize_t; ndims];
    // SAFETY: `dims` has room for exactly `ndims` entries, the rank the library reported.
    hdf5::h5check(unsafe { H5Tget_array_dims2(id, dims.as_mut_ptr()) })?;
    // SAFETY: returns a new id for the element type, owned by `base`.
    let base = owned(unsafe { H5Tget_super(id) })?;
    let dims = dims
        .into_iter()
        .map(|d| usize::try_from(d).map_err(|_| Error::malformed("sub-array dimension too large")))
        .collect::<Result<Vec<_>>>()?;
    Ok(StoredType::Array {
        base: Box::new(classify(base.id())?),
        dims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::DType;
    use hdf5::types::{FixedAscii, VarLenAscii, VarLenUnicode};

    fn of<T: hdf5::H5Type>() -> StoredType {
        StoredType::of(&Datatype::from_type::<T>().unwrap()).unwrap()
    }

    #[test]
    fn classifies_scalars() {
        assert_eq!(
            of::<i8>(),
            StoredType::Int {
                signed: true,
                size: 1
            }
        );
        assert_eq!(
            of::<u64>(),
            StoredType::Int {
                signed: false,
                size: 8
            }
        );
        assert_eq!(of::<f32>(), StoredType::Float { size: 4 });
        assert_eq!(of::<bool>(), StoredType::Bool);
        assert_eq!(of::<bool>().dtype(), Some(DType::Bool));
        assert_eq!(of::<VarLenUnicode>(), StoredType::VarString { utf8: true });
        assert_eq!(of::<VarLenAscii>(), StoredType::VarString { utf8: false });
        assert_eq!(of::<FixedAscii<13>>(), StoredType::FixedString { size: 13 });
        assert_eq!(of::<FixedAscii<13>>().dtype(), Some(DType::String));
    }

    #[derive(hdf5::H5Type, Clone, Copy)]
    #[repr(C)]
    struct Rec {
        a: i32,
        v: [f32; 3],
        b: bool,
    }

    #[test]
    fn classifies_compounds_with_offsets_and_subarrays() {
        let t = of::<Rec>();
        let StoredType::Compound { size, fields } = &t else {
            panic!("not a compound: {t:?}");
        };
        assert_eq!(*size, std::mem::size_of::<Rec>());
        let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a", "v", "b"]);
        assert_eq!(fields[1].offset, 4);
        assert_eq!(
            fields[1].ty,
            StoredType::Array {
                base: Box::new(StoredType::Float { size: 4 }),
                dims: vec![3]
            }
        );
        assert_eq!(fields[2].ty, StoredType::Bool);
        assert!(!t.has_vlen());
        assert_eq!(t.dtype(), None);
        assert_eq!(t.describe(), "compound{a: int32, v: [3] float32, b: bool}");
    }

    #[test]
    fn native_type_keeps_the_kind() {
        let t = Datatype::from_type::<VarLenUnicode>().unwrap();
        let n = native_type(&t).unwrap();
        assert_eq!(
            StoredType::of(&n).unwrap(),
            StoredType::VarString { utf8: true }
        );
        assert!(StoredType::of(&n).unwrap().has_vlen());
    }

    #[test]
    fn only_ieee_half_floats_are_float16() {
        assert_eq!(of::<half::f16>(), StoredType::Float { size: 2 });
        use hdf5_sys::h5t::{H5Tclose, H5Tcopy, H5Tset_fields, H5Tset_precision, H5Tset_size};
        let ty = hdf5::sync::sync(|| {
            // SAFETY: a copy of a predefined type, changed into bfloat16 (sign bit 15, 8
            // exponent bits from bit 7, 7 mantissa bits) by calls on that copy alone, which is
            // closed after being classified.
            unsafe {
                let id = H5Tcopy(*hdf5_sys::h5t::H5T_IEEE_F32LE);
                assert!(H5Tset_fields(id, 15, 7, 8, 0, 7) >= 0);
                assert!(H5Tset_precision(id, 16) >= 0);
                assert!(H5Tset_size(id, 2) >= 0);
                let ty = classify(id);
                H5Tclose(id);
                ty
            }
        });
        assert!(matches!(ty, Ok(StoredType::Unsupported(m)) if m.contains("bfloat16")));
    }

    #[test]
    fn classifies_an_unsigned_int() {
        let t = hdf5::Datatype::from_type::<u16>().unwrap();
        assert_eq!(
            StoredType::of(&t).unwrap(),
            StoredType::Int {
                signed: false,
                size: 2
            }
        );
    }
}
