//! Chunks lent to numpy. The arrays of a chunk handed to Python point into the chunk's own
//! buffers, owned by a [`Lent`] (their numpy base object); when Python drops the chunk's last
//! array, the buffers go back to the scan for a later chunk to be read into. Handing each
//! chunk over as fresh memory instead had the kernel zero the pages of every chunk (a fifth of
//! a large pass's CPU).

use annpage::backed::{ScanBuffers, WeakScanBuffers};
use annpage::data::{ArrayData, Matrix, SparseMatrix};
use ndarray::{ArrayD, ArrayViewMut1};
use numpy::{Element, IntoPyArray, PyArray, PyArray1};
use pyo3::prelude::*;

use crate::convert;

/// The buffers of a chunk lent to numpy: the base object of the chunk's arrays, which give
/// the buffers back to the scan when the last of them is dropped (or free them, once the
/// scan is gone: a chunk kept after the pass does not keep the pass's spare buffers).
#[pyclass(module = "annpage._annpage")]
pub struct Lent {
    parts: Option<Parts>,
    buffers: WeakScanBuffers,
}

/// A lent chunk's buffers.
enum Parts {
    /// A sparse chunk's offsets (not lent: Python's are `int32`), minor indices and values.
    Sparse {
        indptr: Vec<u64>,
        indices: Vec<u32>,
        data: ArrayData,
    },
    Dense(ArrayData),
}

impl Drop for Lent {
    fn drop(&mut self) {
        let Some(buffers) = self.buffers.upgrade() else {
            return;
        };
        match self.parts.take() {
            Some(Parts::Sparse {
                indptr,
                indices,
                data,
            }) => buffers.recycle_parts(indptr, indices, data),
            Some(Parts::Dense(values)) => buffers.recycle(Matrix::Dense(values)),
            None => {}
        }
    }
}

/// `m` as [`convert::matrix`] gives it, its arrays lent from `m`'s buffers (given back to
/// `buffers` once Python is done with them) where they can be: numbers in standard layout,
/// and a sparse matrix's indices where they fit `int32`. Anything else, or no `buffers`, is
/// handed over as [`convert::matrix`] does.
pub fn matrix<'py>(
    py: Python<'py>,
    m: Matrix,
    buffers: Option<&ScanBuffers>,
) -> PyResult<Bound<'py, PyAny>> {
    let Some(buffers) = buffers else {
        return convert::matrix(py, m);
    };
    match m {
        Matrix::Dense(values) if lendable(&values) => {
            let owner = owner(py, Parts::Dense(values), buffers)?;
            let mut lent = owner.borrow_mut();
            let Some(Parts::Dense(values)) = &mut lent.parts else {
                unreachable!("made dense just above")
            };
            Ok(lend(values, &owner))
        }
        Matrix::Sparse(s) if lendable(s.data()) && convert::int32_indices(&s) => {
            sparse(py, s, buffers)
        }
        m => convert::matrix(py, m),
    }
}

fn sparse<'py>(
    py: Python<'py>,
    s: SparseMatrix,
    buffers: &ScanBuffers,
) -> PyResult<Bound<'py, PyAny>> {
    let (format, shape, indptr, indices, data) = s.into_parts();
    // At most the number of stored values, which fits i32 (checked by the caller).
    let offsets: Vec<i32> = indptr.iter().map(|&p| p as i32).collect();
    let parts = Parts::Sparse {
        indptr,
        indices,
        data,
    };
    let owner = owner(py, parts, buffers)?;
    let mut lent = owner.borrow_mut();
    let Some(Parts::Sparse { indices, data, .. }) = &mut lent.parts else {
        unreachable!("made sparse just above")
    };
    // SAFETY: the view covers exactly the `indices.len()` initialised elements of the vector's
    // allocation, derived from a mutable borrow; `i32` has the size and alignment of `u32`,
    // and every bit pattern is a valid `i32` (equal to the `u32`: every index is below the
    // minor dimension, checked when the chunk was read, which the caller checked is at most
    // `i32::MAX`). The view is only read for its pointer, shape and strides by
    // `borrow_from_array` below.
    let view = unsafe {
        ArrayViewMut1::<i32>::from_shape_ptr(indices.len(), indices.as_mut_ptr().cast::<i32>())
    };
    // SAFETY: the array points into `owner`'s vector, which `owner` (the array's base object,
    // kept alive by it) never reallocates, moves out of or reads again until it is dropped,
    // which Python does only after the array is gone.
    let indices = unsafe { PyArray1::borrow_from_array(&view, owner.clone().into_any()) };
    let data = lend(data, &owner);
    let offsets = offsets.into_pyarray(py).into_any();
    convert::sparse_tuple(py, format, shape, [offsets, indices.into_any(), data])
}

fn owner<'py>(py: Python<'py>, parts: Parts, buffers: &ScanBuffers) -> PyResult<Bound<'py, Lent>> {
    Bound::new(
        py,
        Lent {
            parts: Some(parts),
            buffers: buffers.downgrade(),
        },
    )
}

/// `$body` with `$x` bound to the array inside an [`ArrayData`] of numbers; `$other` for bools
/// and text, which are not lent (Python could set a bool to a byte other than 0 or 1, which
/// reads do not refill).
macro_rules! numbers {
    ($a:expr, $x:ident => $body:expr, other => $other:expr) => {
        match $a {
            ArrayData::I8($x) => $body,
            ArrayData::I16($x) => $body,
            ArrayData::I32($x) => $body,
            ArrayData::I64($x) => $body,
            ArrayData::U8($x) => $body,
            ArrayData::U16($x) => $body,
            ArrayData::U32($x) => $body,
            ArrayData::U64($x) => $body,
            ArrayData::F16($x) => $body,
            ArrayData::F32($x) => $body,
            ArrayData::F64($x) => $body,
            ArrayData::Bool(_) | ArrayData::String(_) => $other,
        }
    };
}

/// Whether `a`'s buffer can back a numpy array as it is: numbers in standard layout.
fn lendable(a: &ArrayData) -> bool {
    numbers!(a, x => x.is_standard_layout(), other => false)
}

/// A numpy array over `a`'s buffer (numbers, standard layout), whose base object is `owner`.
fn lend<'py>(a: &mut ArrayData, owner: &Bound<'py, Lent>) -> Bound<'py, PyAny> {
    numbers!(a, x => lend_one(x, owner), other => unreachable!("only numbers are lent"))
}

fn lend_one<'py, T: Element>(a: &mut ArrayD<T>, owner: &Bound<'py, Lent>) -> Bound<'py, PyAny> {
    let view = a.view_mut();
    // SAFETY: the array points into `owner`'s buffer (a view of it taken through a mutable
    // borrow, so Python may write to it), which `owner` (the array's base object, kept alive
    // by it) never reallocates, moves out of or reads again until it is dropped, which Python
    // does only after the array is gone.
    unsafe { PyArray::borrow_from_array(&view, owner.clone().into_any()) }.into_any()
}
