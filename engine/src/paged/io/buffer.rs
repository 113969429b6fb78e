//! Result buffers for large reads, and arrays of any dtype filled through their bytes.
//!
//! A read of tens of megabytes into memory fresh from the kernel pays a page fault per page
//! when first written, so the readers reuse buffers a caller is done with ([`reused`]). Fresh
//! buffers are plain 4 KiB pages: transparent huge pages (`madvise(MADV_HUGEPAGE)`) were
//! advised here once, and measured slower on a virtual machine whose free memory goes back to
//! the host (a 2 MiB page then comes back cold: 320 MB first touched in 0.7 s against 0.16 s
//! in 4 KiB pages), while the reuse leaves only a scan's first few buffers fresh.

use ndarray::{ArrayD, IxDyn};

use crate::data::{ArrayData, DType};
use crate::{Error, Result};

/// `n` values in the memory of `spare` (whose contents are overwritten) when it is an owned,
/// contiguous array with room for them: reusing a buffer skips the allocation and the
/// first-touch page faults, and only values beyond `spare`'s length are zeroed. Otherwise
/// fresh zeroed memory, with room for a thirty-second more: a scan's chunks differ a little in
/// size, and growing a buffer (by `realloc`) may copy it.
pub(crate) fn reused<T: bytemuck::Zeroable + Clone>(spare: ndarray::ArrayD<T>, n: usize) -> Vec<T> {
    let len = spare.len();
    if spare.is_standard_layout() {
        let (v, offset) = spare.into_raw_vec_and_offset();
        // Standard layout from offset 0 over the whole vector: the values are `v` itself.
        if offset.unwrap_or(0) == 0 && v.len() == len {
            return reused_vec(v, n);
        }
    }
    reused_vec(Vec::new(), n)
}

/// [`reused`] for a vector.
pub(crate) fn reused_vec<T: bytemuck::Zeroable + Clone>(mut spare: Vec<T>, n: usize) -> Vec<T> {
    if spare.capacity() >= n {
        spare.resize(n, T::zeroed());
        return spare;
    }
    // Zero bits: `vec!` asks the allocator for zeroed memory (fresh pages from the kernel for
    // large sizes), untouched until written.
    let mut fresh = vec![T::zeroed(); n.saturating_add(n / 32)];
    fresh.truncate(n);
    fresh
}

/// An array of `dtype` and `shape` whose little-endian bytes `fill` writes (the whole of
/// them: every byte is overwritten), in the memory of `spare` where it fits (see [`reused`]);
/// bools are filled as bytes 0 or 1. What every reader that decodes bytes returns.
pub(crate) fn filled(
    dtype: DType,
    shape: &[usize],
    spare: Option<ArrayData>,
    fill: impl FnOnce(&mut [u8]) -> Result<()>,
) -> Result<ArrayData> {
    let n: usize = shape.iter().product();
    if n == 0 {
        return Ok(ArrayData::zeros(dtype, shape));
    }
    macro_rules! typed {
        ($t:ty, $v:ident) => {{
            let mut values: Vec<$t> = match spare {
                Some(ArrayData::$v(a)) => reused(a, n),
                // Of another dtype: as a spare too small (fresh, with room to spare).
                Some(_) => reused_vec(Vec::new(), n),
                None => vec![<$t as bytemuck::Zeroable>::zeroed(); n],
            };
            fill(bytemuck::cast_slice_mut(&mut values))?;
            ArrayData::$v(ArrayD::from_shape_vec(IxDyn(shape), values).map_err(shape_err)?)
        }};
    }
    Ok(match dtype {
        DType::I8 => typed!(i8, I8),
        DType::I16 => typed!(i16, I16),
        DType::I32 => typed!(i32, I32),
        DType::I64 => typed!(i64, I64),
        DType::U8 => typed!(u8, U8),
        DType::U16 => typed!(u16, U16),
        DType::U32 => typed!(u32, U32),
        DType::U64 => typed!(u64, U64),
        DType::F16 => typed!(half::f16, F16),
        DType::F32 => typed!(f32, F32),
        DType::F64 => typed!(f64, F64),
        DType::Bool => {
            let mut raw = vec![0u8; n];
            fill(&mut raw)?;
            let values = raw.into_iter().map(|b| b != 0).collect();
            ArrayData::Bool(ArrayD::from_shape_vec(IxDyn(shape), values).map_err(shape_err)?)
        }
        DType::String => return Err(Error::unsupported("backed reads of strings")),
    })
}

fn shape_err(e: ndarray::ShapeError) -> Error {
    Error::shape(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spare_arrays_are_reused_when_they_have_room() {
        let spare = |n: usize| ndarray::Array1::from_vec(vec![7u32; n]).into_dyn();
        // Same memory, shorter or longer within capacity; the new tail is zeroed.
        let a = spare(100);
        let ptr = a.as_ptr();
        let v = reused(a, 60);
        assert_eq!((v.as_ptr(), v.len()), (ptr, 60));
        let a = ndarray::Array1::from_vec(v).into_dyn();
        let v = reused(a, 100);
        assert_eq!((v.as_ptr(), v.len()), (ptr, 100));
        assert!(v[..60].iter().all(|&x| x == 7) && v[60..].iter().all(|&x| x == 0));
        // Too small, empty, or a view into the middle of its vector: fresh zeroed memory,
        // with room to spare.
        let fresh = reused(spare(10), 64);
        assert_eq!((fresh.len(), fresh.capacity()), (64, 66));
        assert_eq!(fresh, vec![0; 64]);
        assert_eq!(reused(spare(0), 5), vec![0; 5]);
        let mut sliced = spare(10);
        sliced.slice_collapse(ndarray::s![2..]);
        assert_eq!(reused(sliced, 5), vec![0; 5]);
        let t = ndarray::Array2::from_shape_vec((2, 3), vec![1u32; 6])
            .unwrap()
            .reversed_axes();
        assert_eq!(reused(t.into_dyn(), 6), vec![0; 6]);
    }
}
