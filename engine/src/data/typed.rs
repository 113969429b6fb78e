//! Typed access: an [`ArrayData`] as an `ndarray` array of a given element type, a sparse
//! [`Matrix`] as a `sprs` matrix, conversions back, and dense ↔ sparse conversion.

use ndarray::{Array2, ArrayD, ArrayView1, ArrayView2, ArrayViewD, Ix1, Ix2};
use sprs::{CsMatBase, CsMatI, CsMatViewI, SpIndex};

use super::{ArrayData, CompactString, DType, Matrix, SparseFormat, SparseMatrix};
use crate::{Error, Result};

/// An element type that an [`ArrayData`] variant holds (`bool`, the integers, `f32`, `f64`,
/// `String`): the link between a Rust type and its variant.
///
/// ```
/// use annpage_engine::data::{ArrayData, Primitive};
/// let a = ArrayData::from(vec![1.5f32, 2.0]);
/// assert_eq!(f32::DTYPE, a.dtype());
/// assert!(f32::array(&a).is_some() && f64::array(&a).is_none());
/// ```
pub trait Primitive: Clone + Sized + 'static {
    /// The dtype of arrays of this type.
    const DTYPE: DType;
    /// The array inside `a` if it holds this type.
    fn array(a: &ArrayData) -> Option<&ArrayD<Self>>;
    /// Wraps an array of this type.
    fn wrap(a: ArrayD<Self>) -> ArrayData;
}

macro_rules! primitive {
    ($($t:ty => $v:ident),*) => {$(
        impl Primitive for $t {
            const DTYPE: DType = DType::$v;
            fn array(a: &ArrayData) -> Option<&ArrayD<Self>> {
                match a {
                    ArrayData::$v(a) => Some(a),
                    _ => None,
                }
            }
            fn wrap(a: ArrayD<Self>) -> ArrayData {
                ArrayData::$v(a)
            }
        }
    )*};
}
primitive!(bool => Bool, i8 => I8, i16 => I16, i32 => I32, i64 => I64, u8 => U8, u16 => U16,
    u32 => U32, u64 => U64, half::f16 => F16, f32 => F32, f64 => F64, CompactString => String);

impl ArrayData {
    /// The values as an array of `T`, if they are of that type.
    pub fn as_array<T: Primitive>(&self) -> Option<ArrayViewD<'_, T>> {
        T::array(self).map(|a| a.view())
    }

    /// The values as a 1-d array of `T`, if they are of that type and 1-d.
    ///
    /// ```
    /// use annpage_engine::data::ArrayData;
    /// let a = ArrayData::from(vec![1i64, 2, 3]);
    /// assert_eq!(a.as_array1::<i64>().unwrap().sum(), 6);
    /// assert!(a.as_array2::<i64>().is_none());
    /// ```
    pub fn as_array1<T: Primitive>(&self) -> Option<ArrayView1<'_, T>> {
        self.as_array()?.into_dimensionality::<Ix1>().ok()
    }

    /// The values as a 2-d array of `T`, if they are of that type and 2-d.
    ///
    /// ```
    /// use annpage_engine::data::ArrayData;
    /// let a = ArrayData::from(ndarray::arr2(&[[1.0f32, 2.0], [3.0, 4.0]]));
    /// assert_eq!(a.as_array2::<f32>().unwrap()[[1, 0]], 3.0);
    /// ```
    pub fn as_array2<T: Primitive>(&self) -> Option<ArrayView2<'_, T>> {
        self.as_array()?.into_dimensionality::<Ix2>().ok()
    }
}

impl<T: Primitive> From<Array2<T>> for Matrix {
    /// A dense matrix.
    fn from(a: Array2<T>) -> Self {
        Matrix::Dense(T::wrap(a.into_dyn()))
    }
}

impl SparseMatrix {
    /// The matrix as a `sprs` view of its arrays (no copy), if its values are of type `T`.
    /// CSR and CSC map to the same `sprs` storage. An error if the values are of another
    /// type, or if a major slice's indices are not sorted (scipy allows that; `sprs` not).
    ///
    /// ```
    /// use annpage_engine::data::{ArrayData, SparseFormat, SparseMatrix};
    /// let m = SparseMatrix::new(SparseFormat::Csr, (2, 3), vec![0, 1, 3], vec![2, 0, 1],
    ///     ArrayData::from(vec![5.0f32, 6.0, 7.0]))?;
    /// let v = m.as_sprs::<f32>()?;
    /// assert_eq!(v.get(1, 1), Some(&7.0));
    /// assert!(v.is_csr());
    /// # Ok::<(), annpage_engine::Error>(())
    /// ```
    pub fn as_sprs<T: Primitive>(&self) -> Result<CsMatViewI<'_, T, u32, u64>> {
        let data = T::array(self.data())
            .and_then(|a| a.as_slice())
            .ok_or_else(|| {
                Error::invalid(format!(
                    "the matrix holds {} values, not {}",
                    self.data().dtype(),
                    T::DTYPE
                ))
            })?;
        let (indptr, indices) = (self.indptr(), self.indices());
        let view = match self.format() {
            SparseFormat::Csr => CsMatViewI::try_new(self.shape(), indptr, indices, data),
            SparseFormat::Csc => CsMatViewI::try_new_csc(self.shape(), indptr, indices, data),
        };
        view.map_err(|(_, _, _, e)| Error::invalid(format!("not a sprs matrix: {e}")))
    }

    /// A matrix from a `sprs` matrix of any storage and index types (copied).
    ///
    /// ```
    /// use annpage_engine::data::{SparseFormat, SparseMatrix};
    /// let m = sprs::CsMat::new_csc((2, 2), vec![0, 1, 2], vec![1, 0], vec![3i32, 4]);
    /// let s = SparseMatrix::from_sprs(&m)?;
    /// assert_eq!((s.format(), s.shape(), s.nnz()), (SparseFormat::Csc, (2, 2), 2));
    /// # Ok::<(), annpage_engine::Error>(())
    /// ```
    pub fn from_sprs<T, I, Iptr, IptrS, IS, DS>(
        m: &CsMatBase<T, I, IptrS, IS, DS, Iptr>,
    ) -> Result<Self>
    where
        T: Primitive,
        I: SpIndex,
        Iptr: SpIndex,
        IptrS: std::ops::Deref<Target = [Iptr]>,
        IS: std::ops::Deref<Target = [I]>,
        DS: std::ops::Deref<Target = [T]>,
    {
        let format = if m.is_csr() {
            SparseFormat::Csr
        } else {
            SparseFormat::Csc
        };
        // A view of some major slices keeps offsets into the whole arrays (its indices and
        // data are already the slices' own).
        let raw = m.indptr();
        let raw = raw.raw_storage();
        let start = raw.first().map_or(0, |p| p.index());
        let indptr: Vec<u64> = raw.iter().map(|p| (p.index() - start) as u64).collect();
        let indices = m
            .indices()
            .iter()
            .map(|i| {
                u32::try_from(i.index()).map_err(|_| Error::unsupported("an index above 2^32"))
            })
            .collect::<Result<Vec<u32>>>()?;
        let data = T::wrap(ndarray::Array1::from(m.data().to_vec()).into_dyn());
        SparseMatrix::new(format, m.shape(), indptr, indices, data)
    }

    /// The same matrix stored in `format` (a copy that moves every value when the format
    /// changes; indices come out sorted within each major slice).
    ///
    /// ```
    /// use annpage_engine::data::{ArrayData, SparseFormat, SparseMatrix};
    /// let m = SparseMatrix::new(SparseFormat::Csr, (2, 3), vec![0, 1, 3], vec![2, 0, 1],
    ///     ArrayData::from(vec![5u8, 6, 7]))?;
    /// let c = m.to_format(SparseFormat::Csc);
    /// assert_eq!((c.indptr(), c.indices()), (&[0, 1, 2, 3][..], &[1, 1, 0][..]));
    /// assert_eq!(c.data(), &ArrayData::from(vec![6u8, 7, 5]));
    /// # Ok::<(), annpage_engine::Error>(())
    /// ```
    pub fn to_format(&self, format: SparseFormat) -> SparseMatrix {
        if format == self.format() {
            return self.clone();
        }
        let (major, minor) = match self.format() {
            SparseFormat::Csr => self.shape(),
            SparseFormat::Csc => (self.shape().1, self.shape().0),
        };
        // Counting sort by minor index: positions of the values in the new order.
        let mut indptr = vec![0u64; minor + 1];
        for &i in self.indices() {
            indptr[i as usize + 1] += 1;
        }
        for k in 0..minor {
            indptr[k + 1] += indptr[k];
        }
        let mut next = indptr.clone();
        let mut order = vec![0usize; self.nnz()];
        let mut indices = vec![0u32; self.nnz()];
        for m in 0..major {
            for k in self.indptr()[m] as usize..self.indptr()[m + 1] as usize {
                let slot = &mut next[self.indices()[k] as usize];
                order[*slot as usize] = k;
                indices[*slot as usize] = m as u32;
                *slot += 1;
            }
        }
        let data = self.data().select(0, &order);
        SparseMatrix::from_checked_parts(format, self.shape(), indptr, indices, data)
    }
}

/// The arithmetic dense ↔ sparse conversion needs, as numpy does it.
trait Number: Primitive + Default {
    /// Whether a dense → sparse conversion stores the value (numpy's `x != 0`).
    fn is_nonzero(&self) -> bool;
    /// `self + other` (integers wrap, bools or), for duplicated sparse entries.
    fn add(&mut self, other: &Self);
}

macro_rules! integer {
    ($($t:ty),*) => {$(
        impl Number for $t {
            fn is_nonzero(&self) -> bool {
                *self != 0
            }
            fn add(&mut self, other: &Self) {
                *self = self.wrapping_add(*other);
            }
        }
    )*};
}
integer!(i8, i16, i32, i64, u8, u16, u32, u64);

macro_rules! float {
    ($($t:ty),*) => {$(
        impl Number for $t {
            fn is_nonzero(&self) -> bool {
                *self != 0.0
            }
            fn add(&mut self, other: &Self) {
                *self += *other;
            }
        }
    )*};
}
float!(f32, f64);

impl Number for half::f16 {
    fn is_nonzero(&self) -> bool {
        *self != half::f16::ZERO
    }
    fn add(&mut self, other: &Self) {
        *self += *other;
    }
}

impl Number for bool {
    fn is_nonzero(&self) -> bool {
        *self
    }
    fn add(&mut self, other: &Self) {
        *self |= *other;
    }
}

fn dense_to_sparse<T: Number>(a: ArrayView2<'_, T>, format: SparseFormat) -> Result<SparseMatrix> {
    let (rows, cols) = a.dim();
    let lanes = match format {
        SparseFormat::Csr => a,
        SparseFormat::Csc => a.reversed_axes(),
    };
    let minor = lanes.ncols();
    super::check_minor(minor)?;
    let mut indptr = Vec::with_capacity(lanes.nrows() + 1);
    indptr.push(0u64);
    let (mut indices, mut values) = (Vec::new(), Vec::new());
    for lane in lanes.rows() {
        for (j, x) in lane.iter().enumerate() {
            if x.is_nonzero() {
                indices.push(j as u32);
                values.push(x.clone());
            }
        }
        indptr.push(indices.len() as u64);
    }
    let data = T::wrap(ndarray::Array1::from(values).into_dyn());
    SparseMatrix::new(format, (rows, cols), indptr, indices, data)
}

fn sparse_to_dense<T: Number>(m: &SparseMatrix, values: &[T]) -> ArrayData {
    let (rows, cols) = m.shape();
    let mut out = Array2::<T>::default((rows, cols));
    for (major, span) in m.indptr().windows(2).enumerate() {
        let span = span[0] as usize..span[1] as usize;
        for (&minor, x) in m.indices()[span.clone()].iter().zip(&values[span]) {
            let at = match m.format() {
                SparseFormat::Csr => [major, minor as usize],
                SparseFormat::Csc => [minor as usize, major],
            };
            // scipy's toarray sums duplicated entries.
            out[at].add(x);
        }
    }
    T::wrap(out.into_dyn())
}

impl Matrix {
    /// The matrix as a 2-d array of `T` if it is dense and of that type.
    pub fn as_array2<T: Primitive>(&self) -> Option<ArrayView2<'_, T>> {
        match self {
            Matrix::Dense(a) => a.as_array2(),
            Matrix::Sparse(_) => None,
        }
    }

    /// The matrix as a `sprs` CSR view (no copy) if it is stored as CSR with values of type
    /// `T`; see [`SparseMatrix::as_sprs`] for the errors.
    ///
    /// ```
    /// use annpage_engine::data::{ArrayData, Matrix, SparseFormat};
    /// let m = Matrix::from(ndarray::arr2(&[[0.0f32, 2.0], [3.0, 0.0]])).to_sparse(SparseFormat::Csr)?;
    /// assert_eq!(m.as_csr::<f32>()?.nnz(), 2);
    /// assert!(m.as_csc::<f32>().is_err());
    /// # Ok::<(), annpage_engine::Error>(())
    /// ```
    pub fn as_csr<T: Primitive>(&self) -> Result<CsMatViewI<'_, T, u32, u64>> {
        self.as_compressed(SparseFormat::Csr)
    }

    /// The matrix as a `sprs` CSC view (no copy), like [`Matrix::as_csr`].
    pub fn as_csc<T: Primitive>(&self) -> Result<CsMatViewI<'_, T, u32, u64>> {
        self.as_compressed(SparseFormat::Csc)
    }

    fn as_compressed<T: Primitive>(
        &self,
        format: SparseFormat,
    ) -> Result<CsMatViewI<'_, T, u32, u64>> {
        match self {
            Matrix::Sparse(s) if s.format() == format => s.as_sprs(),
            _ => Err(Error::invalid(format!(
                "the matrix is not stored as {}",
                format.encoding()
            ))),
        }
    }

    /// The matrix as a dense 2-d array (a copy; a dense matrix is returned as is). Sparse
    /// values absent from storage are zeros (`false` for bools); duplicated entries are
    /// summed, as scipy's `toarray` does.
    ///
    /// ```
    /// use annpage_engine::data::{ArrayData, Matrix, SparseFormat};
    /// let dense = Matrix::from(ndarray::arr2(&[[0i32, 2], [3, 0]]));
    /// let sparse = dense.to_sparse(SparseFormat::Csc)?;
    /// assert_eq!(Matrix::Dense(sparse.to_dense()?), dense);
    /// # Ok::<(), annpage_engine::Error>(())
    /// ```
    pub fn to_dense(&self) -> Result<ArrayData> {
        let m = match self {
            Matrix::Dense(a) => return Ok(a.clone()),
            Matrix::Sparse(m) => m,
        };
        // Its shape, not its values, sizes the result: 100,000 × 100,000 is 40 GB of zeros.
        let (rows, cols) = m.shape();
        let bytes = (rows as u64)
            .checked_mul(cols as u64)
            .and_then(|n| n.checked_mul(m.data().dtype().size() as u64))
            .ok_or_else(|| Error::invalid(format!("a dense {rows} × {cols} matrix")))?;
        crate::memory::check_memory(bytes, &format!("a dense {rows} × {cols} matrix"))?;
        macro_rules! go {
            ($($v:ident),*) => {
                match m.data() {
                    $(ArrayData::$v(a) => {
                        let values = a.as_slice().ok_or_else(|| Error::invalid("sparse data is not contiguous"))?;
                        Ok(sparse_to_dense(m, values))
                    })*
                    ArrayData::String(_) => Err(Error::invalid("a sparse matrix of strings")),
                }
            };
        }
        go!(Bool, I8, I16, I32, I64, U8, U16, U32, U64, F16, F32, F64)
    }

    /// The matrix stored as `format` (a copy): a dense one keeps its non-zero values (as
    /// scipy's `csr_matrix(array)`), a sparse one is converted with
    /// [`SparseMatrix::to_format`].
    pub fn to_sparse(&self, format: SparseFormat) -> Result<Matrix> {
        match self {
            Matrix::Sparse(m) => Ok(Matrix::Sparse(m.to_format(format))),
            Matrix::Dense(a) => dense_array_to_sparse(a, format).map(Matrix::Sparse),
        }
    }

    /// The matrix as a sparse matrix stored as `format`, without a copy when it is one
    /// already (else as [`Matrix::to_sparse`]).
    ///
    /// ```
    /// use annpage_engine::data::{Matrix, SparseFormat};
    /// let dense = Matrix::from(ndarray::arr2(&[[0i32, 2], [3, 0]]));
    /// let csr = dense.into_sparse(SparseFormat::Csr)?;
    /// assert_eq!((csr.indptr(), csr.indices()), (&[0u64, 1, 2][..], &[1u32, 0][..]));
    /// # Ok::<(), annpage_engine::Error>(())
    /// ```
    pub fn into_sparse(self, format: SparseFormat) -> Result<SparseMatrix> {
        match self {
            Matrix::Sparse(m) if m.format() == format => Ok(m),
            Matrix::Sparse(m) => Ok(m.to_format(format)),
            Matrix::Dense(a) => dense_array_to_sparse(&a, format),
        }
    }
}

/// A dense 2-d array's non-zero values as a sparse matrix stored as `format`.
fn dense_array_to_sparse(a: &ArrayData, format: SparseFormat) -> Result<SparseMatrix> {
    if a.ndim() != 2 {
        return Err(Error::invalid(format!(
            "a dense matrix must be 2-d, got shape {:?}",
            a.shape()
        )));
    }
    macro_rules! go {
        ($($v:ident),*) => {
            match a {
                $(ArrayData::$v(a) => {
                    let a = a.view().into_dimensionality::<Ix2>().map_err(|e| Error::shape(e.to_string()))?;
                    dense_to_sparse(a, format)
                })*
                ArrayData::String(_) => Err(Error::invalid("a matrix of strings cannot be sparse")),
            }
        };
    }
    go!(Bool, I8, I16, I32, I64, U8, U16, U32, U64, F16, F32, F64)
}

impl<T: Primitive> TryFrom<CsMatI<T, u32, u64>> for Matrix {
    type Error = Error;

    /// A sparse matrix from an owned `sprs` matrix of `u32` indices and `u64` offsets.
    fn try_from(m: CsMatI<T, u32, u64>) -> Result<Self> {
        SparseMatrix::from_sprs(&m).map(Matrix::Sparse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dense() -> impl Strategy<Value = Array2<i32>> {
        (0usize..6, 0usize..6).prop_flat_map(|(r, c)| {
            proptest::collection::vec(prop_oneof![3 => Just(0i32), 1 => -5i32..5], r * c)
                .prop_map(move |v| Array2::from_shape_vec((r, c), v).expect("r × c values"))
        })
    }

    proptest! {
        #[test]
        fn dense_sparse_round_trips(a in dense()) {
            let m = Matrix::from(a.clone());
            for format in [SparseFormat::Csr, SparseFormat::Csc] {
                let s = m.to_sparse(format).unwrap();
                let Matrix::Sparse(sp) = &s else { panic!("sparse") };
                prop_assert_eq!(sp.nnz(), a.iter().filter(|&&x| x != 0).count());
                prop_assert_eq!(&Matrix::Dense(s.to_dense().unwrap()), &m);
                let other = match format {
                    SparseFormat::Csr => SparseFormat::Csc,
                    SparseFormat::Csc => SparseFormat::Csr,
                };
                let t = sp.to_format(other);
                prop_assert_eq!(&Matrix::Dense(Matrix::Sparse(t.clone()).to_dense().unwrap()), &m);
                prop_assert_eq!(t.to_format(format), sp.clone());
                let back = SparseMatrix::from_sprs(&sp.as_sprs::<i32>().unwrap()).unwrap();
                prop_assert_eq!(&back, sp);
            }
        }
    }

    #[test]
    fn sprs_views_of_some_rows_convert_with_their_offsets() {
        let m = sprs::CsMat::new(
            (3, 2),
            vec![0, 1, 2, 4],
            vec![0, 1, 0, 1],
            vec![1.0, 2.0, 3.0, 4.0],
        );
        let rows = m.slice_outer(1..3);
        let s = SparseMatrix::from_sprs(&rows).unwrap();
        assert_eq!(s.indptr(), [0, 1, 3]);
        assert_eq!(s.data(), &ArrayData::from(vec![2.0f64, 3.0, 4.0]));
    }

    #[test]
    fn wrong_types_and_unsorted_indices_are_errors() {
        let m = SparseMatrix::new(
            SparseFormat::Csr,
            (1, 3),
            vec![0, 2],
            vec![2, 0],
            ArrayData::from(vec![1u8, 2]),
        )
        .unwrap();
        assert!(m
            .as_sprs::<f32>()
            .unwrap_err()
            .to_string()
            .contains("uint8"));
        assert!(m.as_sprs::<u8>().is_err());
        // Duplicates are summed and the order of the entries does not matter.
        let dup = SparseMatrix::new(
            SparseFormat::Csr,
            (1, 2),
            vec![0, 2],
            vec![1, 1],
            ArrayData::from(vec![1u8, 2]),
        )
        .unwrap();
        assert_eq!(
            Matrix::Sparse(dup).to_dense().unwrap(),
            ArrayData::from(ndarray::arr2(&[[0u8, 3]]))
        );
        assert!(Matrix::Dense(ArrayData::from(vec!["a"]))
            .to_sparse(SparseFormat::Csr)
            .is_err());
    }

    #[test]
    fn densifying_past_the_memory_available_is_refused() {
        // 2^20 × 2^20 float64 (8 TiB) without a stored value: its shape sizes the result.
        let empty = SparseMatrix::new(
            SparseFormat::Csr,
            (1 << 20, 1 << 20),
            vec![0; (1 << 20) + 1],
            vec![],
            ArrayData::from(Vec::<f64>::new()),
        )
        .unwrap();
        let e = Matrix::Sparse(empty).to_dense().unwrap_err();
        assert!(
            e.to_string()
                .contains("a dense 1048576 × 1048576 matrix needs"),
            "{e}"
        );
    }
}
