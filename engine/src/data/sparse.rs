//! Compressed sparse matrices (CSR and CSC).

use ndarray::ArrayD;

use super::ArrayData;
use crate::select::{AxisIndex, MinorMap};
use crate::{map_array, Error, Result};

/// Row-compressed or column-compressed storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SparseFormat {
    /// Compressed sparse rows: `indptr` runs over rows, `indices` are columns.
    Csr,
    /// Compressed sparse columns: `indptr` runs over columns, `indices` are rows.
    Csc,
}

impl SparseFormat {
    /// The anndata encoding name (`csr_matrix` / `csc_matrix`).
    pub fn encoding(self) -> &'static str {
        match self {
            SparseFormat::Csr => "csr_matrix",
            SparseFormat::Csc => "csc_matrix",
        }
    }
}

/// A compressed sparse matrix whose arrays are known to be consistent.
///
/// Indices within a major slice need not be sorted and explicit zeros may be stored, as in
/// scipy. Construction checks lengths and bounds, so a value of this type is always valid.
/// Minor indices are `u32`, as scipy's default `int32` (half the memory of 64-bit ones): the
/// minor dimension (columns of CSR, rows of CSC) is at most 2³²; offsets (`indptr`) are `u64`.
///
/// ```
/// use annpage_engine::data::{ArrayData, SparseFormat, SparseMatrix};
/// // [[1, 0], [0, 2]]
/// let m = SparseMatrix::new(SparseFormat::Csr, (2, 2), vec![0, 1, 2], vec![0, 1],
///     ArrayData::from(vec![1.0f32, 2.0])).unwrap();
/// assert_eq!(m.nnz(), 2);
/// assert!(SparseMatrix::new(SparseFormat::Csr, (2, 2), vec![0, 1], vec![0],
///     ArrayData::from(vec![1.0f32])).is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct SparseMatrix {
    format: SparseFormat,
    shape: (usize, usize),
    indptr: Vec<u64>,
    indices: Vec<u32>,
    data: ArrayData,
}

/// The largest minor dimension a [`SparseMatrix`] holds: its indices are `u32`.
pub const MAX_MINOR: u64 = 1 << 32;

impl SparseMatrix {
    /// Builds a matrix, checking that `indptr` has `major + 1` non-decreasing entries starting at
    /// 0 and ending at `nnz`, that `indices` and `data` (1-d, not strings) have `nnz` entries, and
    /// that every index is below the minor dimension (itself at most [`MAX_MINOR`]).
    pub fn new(
        format: SparseFormat,
        shape: (usize, usize),
        indptr: Vec<u64>,
        indices: Vec<u32>,
        data: ArrayData,
    ) -> Result<Self> {
        let (major, minor) = match format {
            SparseFormat::Csr => shape,
            SparseFormat::Csc => (shape.1, shape.0),
        };
        check_minor(minor)?;
        if data.ndim() != 1 {
            return Err(Error::malformed(format!(
                "sparse data must be 1-d, got shape {:?}",
                data.shape()
            )));
        }
        if data.dtype() == super::DType::String {
            return Err(Error::malformed("sparse data cannot hold strings"));
        }
        if indptr.len().checked_sub(1) != Some(major) {
            return Err(Error::malformed(format!(
                "indptr has {} entries, expected {} for a {} matrix of shape {:?}",
                indptr.len(),
                major as u128 + 1,
                format.encoding(),
                shape
            )));
        }
        let nnz = data.len();
        if indices.len() != nnz {
            return Err(Error::malformed(format!(
                "indices has {} entries but data has {}",
                indices.len(),
                nnz
            )));
        }
        if indptr[0] != 0 || indptr[major] != nnz as u64 {
            return Err(Error::malformed(format!(
                "indptr must run from 0 to nnz={nnz}, got {}..{}",
                indptr[0], indptr[major]
            )));
        }
        if indptr.windows(2).any(|w| w[0] > w[1]) {
            return Err(Error::malformed("indptr is not non-decreasing"));
        }
        // One vectorisable pass; the offending value is looked up only on failure.
        let largest = u64::from(indices.iter().copied().fold(0, u32::max));
        if !indices.is_empty() && largest >= minor as u64 {
            let bad = indices
                .iter()
                .map(|&i| u64::from(i))
                .find(|&i| i >= minor as u64)
                .unwrap_or(largest);
            return Err(Error::malformed(format!(
                "index {bad} out of bounds for minor dimension {minor}"
            )));
        }
        Ok(SparseMatrix {
            format,
            shape,
            indptr,
            indices,
            data,
        })
    }

    /// A matrix from arrays its builder has already checked (the invariants of [`Self::new`]):
    /// the backed reader, whose offsets are checked when the file is opened and whose indices
    /// are checked as they are read. Debug builds check again.
    pub(crate) fn from_checked_parts(
        format: SparseFormat,
        shape: (usize, usize),
        indptr: Vec<u64>,
        indices: Vec<u32>,
        data: ArrayData,
    ) -> Self {
        debug_assert!(SparseMatrix::new(
            format,
            shape,
            indptr.clone(),
            indices.clone(),
            data.clone()
        )
        .is_ok());
        SparseMatrix {
            format,
            shape,
            indptr,
            indices,
            data,
        }
    }

    /// An all-zero matrix with no stored values.
    pub fn empty(format: SparseFormat, shape: (usize, usize), dtype: super::DType) -> Self {
        let major = match format {
            SparseFormat::Csr => shape.0,
            SparseFormat::Csc => shape.1,
        };
        SparseMatrix {
            format,
            shape,
            indptr: vec![0; major + 1],
            indices: Vec::new(),
            data: ArrayData::zeros(dtype, &[0]),
        }
    }

    /// CSR or CSC.
    pub fn format(&self) -> SparseFormat {
        self.format
    }
    /// `(rows, columns)`.
    pub fn shape(&self) -> (usize, usize) {
        self.shape
    }
    /// Offsets of each major slice into `indices`/`data` (length major + 1).
    pub fn indptr(&self) -> &[u64] {
        &self.indptr
    }
    /// Minor index of each stored value.
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }
    /// The stored values (1-d).
    pub fn data(&self) -> &ArrayData {
        &self.data
    }
    /// Number of stored values.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }
    /// Takes the matrix apart into `(format, shape, indptr, indices, data)`.
    pub fn into_parts(self) -> (SparseFormat, (usize, usize), Vec<u64>, Vec<u32>, ArrayData) {
        (
            self.format,
            self.shape,
            self.indptr,
            self.indices,
            self.data,
        )
    }

    /// The rows `rows` and columns `cols` of the matrix, in the same format.
    ///
    /// Selecting along the compressed axis copies whole slices; selecting along the other axis
    /// maps each stored index to its new positions (a column selected twice is stored twice).
    /// The stored order within each slice follows scipy's fancy indexing: entries keep their
    /// order, and an entry selected several times appears once per new position, in increasing
    /// new position. Unsorted or repeated selections therefore give unsorted indices, as in
    /// scipy; explicit zeros are kept.
    ///
    /// ```
    /// use annpage_engine::data::{ArrayData, SparseFormat, SparseMatrix};
    /// use annpage_engine::select::Selection;
    /// // [[1, 0, 2], [0, 3, 0]]
    /// let m = SparseMatrix::new(SparseFormat::Csr, (2, 3), vec![0, 2, 3], vec![0, 2, 1],
    ///     ArrayData::from(vec![1i32, 2, 3])).unwrap();
    /// let rows = Selection::positions([1, 0]).resolve(2, None).unwrap();
    /// let cols = Selection::positions([2, 0]).resolve(3, None).unwrap();
    /// let s = m.subset(&rows, &cols).unwrap(); // [[0, 0], [2, 1]]
    /// assert_eq!(s.shape(), (2, 2));
    /// assert_eq!(s.indptr(), [0, 0, 2]);
    /// assert_eq!(s.indices(), [1, 0]);
    /// assert_eq!(s.data(), &ArrayData::from(vec![1i32, 2]));
    /// ```
    pub fn subset(&self, rows: &AxisIndex, cols: &AxisIndex) -> Result<Self> {
        for (what, index, n) in [
            ("rows", rows, self.shape.0),
            ("columns", cols, self.shape.1),
        ] {
            if index.axis_len() != n {
                return Err(Error::shape(format!(
                    "the selection of {what} is for {} {what}, the matrix has {n}",
                    index.axis_len()
                )));
            }
        }
        let (major, minor) = match self.format {
            SparseFormat::Csr => (rows, cols),
            SparseFormat::Csc => (cols, rows),
        };
        if major.is_full() && minor.is_full() {
            return Ok(self.clone());
        }
        check_minor(minor.len())?;
        let (indptr, indices, sources) = if minor.is_full() {
            self.gather_major(major)
        } else {
            self.map_minor(major, &MinorMap::new(minor))
        };
        let data = match sources {
            Sources::Runs(runs) => map_array!(&self.data, a => gather_runs(a, &runs)),
            Sources::Entries(entries) => map_array!(&self.data, a => gather(a, &entries)),
        };
        Ok(SparseMatrix {
            format: self.format,
            shape: (rows.len(), cols.len()),
            indptr,
            indices,
            data,
        })
    }

    /// The stored range of major slice `i`.
    fn slice_range(&self, i: usize) -> std::ops::Range<usize> {
        // indptr entries are offsets into in-memory vectors, so they fit in usize.
        self.indptr[i] as usize..self.indptr[i + 1] as usize
    }

    /// Selects major slices whole: indptr, indices and the runs of data to copy.
    fn gather_major(&self, major: &AxisIndex) -> (Vec<u64>, Vec<u32>, Sources) {
        let runs: Vec<_> = major.iter().map(|i| self.slice_range(i)).collect();
        let nnz = runs.iter().map(|r| r.len()).sum();
        let mut indptr = Vec::with_capacity(major.len() + 1);
        let mut indices = Vec::with_capacity(nnz);
        indptr.push(0);
        for r in &runs {
            indices.extend_from_slice(&self.indices[r.clone()]);
            indptr.push(indices.len() as u64);
        }
        (indptr, indices, Sources::Runs(runs))
    }

    /// Selects major slices and maps each stored minor index to its new positions.
    fn map_minor(&self, major: &AxisIndex, map: &MinorMap) -> (Vec<u64>, Vec<u32>, Sources) {
        let mut indptr = Vec::with_capacity(major.len() + 1);
        let mut indices = Vec::new();
        let mut entries = Vec::new();
        indptr.push(0);
        for i in major {
            let span = self.slice_range(i);
            let first = span.start;
            // Stored indices are below the minor dimension (checked on construction).
            // New positions are below the new minor dimension, checked to fit in u32.
            map.for_each_hit(&self.indices[span], |k, t| {
                indices.push(t as u32);
                entries.push(first + k);
            });
            indptr.push(indices.len() as u64);
        }
        (indptr, indices, Sources::Entries(entries))
    }

    /// The same matrix with rows and columns swapped (CSR becomes CSC over the same arrays).
    pub fn transpose(self) -> Self {
        SparseMatrix {
            format: match self.format {
                SparseFormat::Csr => SparseFormat::Csc,
                SparseFormat::Csc => SparseFormat::Csr,
            },
            shape: (self.shape.1, self.shape.0),
            ..self
        }
    }
}

/// Refuses a minor dimension whose indices would not fit in `u32`.
pub(crate) fn check_minor(minor: usize) -> Result<()> {
    if minor as u64 > MAX_MINOR {
        return Err(Error::unsupported(format!(
            "a sparse matrix whose minor dimension ({minor}) exceeds 2^32"
        )));
    }
    Ok(())
}

/// Stored minor indices of any integer dtype as `u32`, each checked to be below `minor` (itself
/// checked against [`MAX_MINOR`]). `int32` and `uint32` arrays are reused without a copy.
pub(crate) fn minor_indices(a: ArrayData, minor: usize) -> Result<Vec<u32>> {
    check_minor(minor)?;
    fn convert<T>(values: ArrayD<T>, minor: usize) -> Result<Vec<u32>>
    where
        T: Copy + TryInto<u64> + std::fmt::Display,
    {
        let mut out = Vec::with_capacity(values.len());
        for &v in values.iter() {
            match v.try_into() {
                // Below minor ≤ 2^32: fits.
                Ok(wide) if wide < minor as u64 => out.push(wide as u32),
                _ => return Err(out_of_bounds(&v, minor)),
            }
        }
        Ok(out)
    }
    match a {
        ArrayData::I32(v) => {
            // Same size and alignment: reinterpreted without a copy.
            let v: Vec<u32> = bytemuck::cast_vec(into_vec(v));
            check_indices_below(&v, true, minor).map(|()| v)
        }
        ArrayData::U32(v) => {
            let v = into_vec(v);
            check_indices_below(&v, false, minor).map(|()| v)
        }
        ArrayData::I8(v) => convert(v, minor),
        ArrayData::I16(v) => convert(v, minor),
        ArrayData::I64(v) => convert(v, minor),
        ArrayData::U8(v) => convert(v, minor),
        ArrayData::U16(v) => convert(v, minor),
        ArrayData::U64(v) => convert(v, minor),
        other => Err(Error::malformed(format!(
            "indices must be integers, found {}",
            other.dtype()
        ))),
    }
}

/// Checks 4-byte minor indices (`int32` ones when `signed`, read as `u32`) to lie below
/// `minor`: valid `int32` indices are below min(minor, 2^31), and negative ones, read as
/// `u32`, are at least 2^31. One vectorisable pass when they all do.
pub(crate) fn check_indices_below(values: &[u32], signed: bool, minor: usize) -> Result<()> {
    let limit = if signed { minor.min(1 << 31) } else { minor };
    match first_at_or_above(values, limit) {
        None => Ok(()),
        Some(bad) if signed => Err(out_of_bounds(&(bad as i32), minor)),
        Some(bad) => Err(out_of_bounds(&bad, minor)),
    }
}

/// The error for a stored minor index `v` that is not below `minor`.
fn out_of_bounds(v: &dyn std::fmt::Display, minor: usize) -> Error {
    Error::malformed(format!(
        "index {v} out of bounds for minor dimension {minor}"
    ))
}

/// The first value at least `limit`, found with one vectorisable pass when there is none.
fn first_at_or_above(values: &[u32], limit: usize) -> Option<u32> {
    let largest = values.iter().copied().fold(0, u32::max);
    if values.is_empty() || (largest as u64) < limit as u64 {
        return None;
    }
    values.iter().copied().find(|&v| v as u64 >= limit as u64)
}

/// The elements of an array in logical order, reusing its buffer when it is in standard layout.
fn into_vec<T: Clone>(a: ArrayD<T>) -> Vec<T> {
    if !a.is_standard_layout() {
        return a.iter().cloned().collect();
    }
    let n = a.len();
    let (mut v, offset) = a.into_raw_vec_and_offset();
    // Standard layout: the elements are contiguous from the offset.
    let start = offset.unwrap_or(0);
    if start == 0 && v.len() == n {
        return v;
    }
    v.truncate(start + n);
    v.drain(..start);
    v
}

/// Where the stored values of a subset come from.
enum Sources {
    /// Whole runs of stored values, in order.
    Runs(Vec<std::ops::Range<usize>>),
    /// One stored value per new entry.
    Entries(Vec<usize>),
}

/// The values at positions `runs` of a 1-d array, concatenated.
fn gather_runs<T: Clone>(a: &ArrayD<T>, runs: &[std::ops::Range<usize>]) -> ArrayD<T> {
    let a = a.as_standard_layout();
    let values = a.as_slice().unwrap_or_default();
    let mut out = Vec::with_capacity(runs.iter().map(|r| r.len()).sum());
    for r in runs {
        out.extend_from_slice(&values[r.clone()]);
    }
    ndarray::Array1::from(out).into_dyn()
}

/// The values at `positions` of a 1-d array.
fn gather<T: Clone>(a: &ArrayD<T>, positions: &[usize]) -> ArrayD<T> {
    let a = a.as_standard_layout();
    let values = a.as_slice().unwrap_or_default();
    ndarray::Array1::from_iter(positions.iter().map(|&k| values[k].clone())).into_dyn()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::Selection;

    /// scipy: `csr_matrix((data, indices, indptr), shape=(3, 4))`, i.e.
    /// `[[1, 0, 2, 0], [0, 3, 0, 4], [5, 0(explicit), 0, 6]]` with unsorted indices in rows 0 and 2.
    fn csr() -> SparseMatrix {
        SparseMatrix::new(
            SparseFormat::Csr,
            (3, 4),
            vec![0, 2, 4, 7],
            vec![2, 0, 1, 3, 3, 0, 1],
            ArrayData::from(vec![2.0f64, 1., 3., 4., 6., 5., 0.]),
        )
        .unwrap()
    }

    #[test]
    fn a_shape_at_the_limit_of_usize_is_an_error_not_an_overflow() {
        for format in [SparseFormat::Csr, SparseFormat::Csc] {
            let e = SparseMatrix::new(
                format,
                match format {
                    SparseFormat::Csr => (usize::MAX, 3),
                    SparseFormat::Csc => (3, usize::MAX),
                },
                vec![0],
                vec![],
                ArrayData::from(Vec::<f32>::new()),
            )
            .unwrap_err();
            assert!(e.to_string().contains("indptr has 1 entries"), "{e}");
        }
    }

    /// The same matrix as scipy's `.tocsc()` stores it.
    fn csc() -> SparseMatrix {
        SparseMatrix::new(
            SparseFormat::Csc,
            (3, 4),
            vec![0, 2, 4, 5, 7],
            vec![0, 2, 1, 2, 0, 1, 2],
            ArrayData::from(vec![1.0f64, 5., 3., 0., 2., 4., 6.]),
        )
        .unwrap()
    }

    fn parts(m: &SparseMatrix) -> (Vec<u64>, Vec<u32>, Vec<f64>, (usize, usize)) {
        let ArrayData::F64(d) = m.data() else {
            panic!("float data expected")
        };
        (
            m.indptr().to_vec(),
            m.indices().to_vec(),
            d.iter().copied().collect(),
            m.shape(),
        )
    }

    fn sub(m: &SparseMatrix, rows: Selection, cols: Selection) -> SparseMatrix {
        let (r, c) = m.shape();
        m.subset(
            &rows.resolve(r, None).unwrap(),
            &cols.resolve(c, None).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn minor_indices_are_checked_for_every_integer_dtype() {
        let ok = |a: ArrayData, minor| minor_indices(a, minor).unwrap();
        let err = |a: ArrayData, minor| minor_indices(a, minor).unwrap_err().to_string();
        assert_eq!(ok(ArrayData::from(vec![0i32, 4, 2]), 5), [0, 4, 2]);
        assert_eq!(ok(ArrayData::from(vec![3u32, 0]), 4), [3, 0]);
        assert_eq!(ok(ArrayData::from(vec![7i64, 1]), 8), [7, 1]);
        assert_eq!(ok(ArrayData::from(vec![1u8]), 2), [1]);
        assert_eq!(ok(ArrayData::from(Vec::<i32>::new()), 0), [0u32; 0]);
        // A transposed (non-standard) view is read in logical order.
        let t = ndarray::arr2(&[[0i32, 1], [2, 3]])
            .reversed_axes()
            .into_dyn();
        assert_eq!(ok(ArrayData::I32(t), 4), [0, 2, 1, 3]);
        assert!(err(ArrayData::from(vec![0i32, -3, 9]), 5).contains("index -3 out of bounds"));
        assert!(err(ArrayData::from(vec![0i32, 5]), 5).contains("index 5 out of bounds"));
        assert!(err(ArrayData::from(vec![4u32]), 4).contains("index 4 out of bounds"));
        assert!(err(ArrayData::from(vec![-1i64]), 4).contains("index -1 out of bounds"));
        assert!(err(ArrayData::from(vec![1.0f32]), 4).contains("must be integers"));
        assert!(err(ArrayData::from(vec![0i32]), 0).contains("out of bounds"));
        if let Ok(huge) = usize::try_from(MAX_MINOR + 1) {
            assert!(err(ArrayData::from(vec![0i64]), huge).contains("exceeds 2^32"));
        }
    }

    /// Expected arrays from `m[np.array(rows).reshape(-1, 1), cols]` in scipy 1.17.
    #[test]
    fn repeated_unsorted_selections_match_scipy() {
        let rows = || Selection::positions([2, 0, 0]);
        let cols = || Selection::positions([3, 0, 0, 2]);
        assert_eq!(
            parts(&sub(&csr(), rows(), cols())),
            (
                vec![0, 3, 6, 9],
                vec![0, 1, 2, 3, 1, 2, 3, 1, 2],
                vec![6., 5., 5., 2., 1., 1., 2., 1., 1.],
                (3, 4)
            )
        );
        let m = sub(&csc(), rows(), cols());
        assert_eq!(m.format(), SparseFormat::Csc);
        assert_eq!(
            parts(&m),
            (
                vec![0, 1, 4, 7, 9],
                vec![0, 1, 2, 0, 1, 2, 0, 1, 2],
                vec![6., 1., 1., 5., 1., 1., 5., 2., 2.],
                (3, 4)
            )
        );
    }

    /// Expected arrays from `m[::-1, ::-2]` in scipy 1.17 (the explicit zero is kept).
    #[test]
    fn negative_steps_match_scipy() {
        let rows = || Selection::slice(None, None, -1);
        let cols = || Selection::slice(None, None, -2);
        assert_eq!(
            parts(&sub(&csr(), rows(), cols())),
            (
                vec![0, 2, 4, 4],
                vec![0, 1, 1, 0],
                vec![6., 0., 3., 4.],
                (3, 2)
            )
        );
        assert_eq!(
            parts(&sub(&csc(), rows(), cols())),
            (
                vec![0, 2, 4],
                vec![1, 0, 1, 0],
                vec![4., 6., 3., 0.],
                (3, 2)
            )
        );
    }

    /// Expected arrays from `m[:, [1, 1, 3, 0]]` in scipy 1.17.
    #[test]
    fn minor_only_selection_matches_scipy() {
        let cols = || Selection::positions([1, 1, 3, 0]);
        assert_eq!(
            parts(&sub(&csr(), Selection::All, cols())),
            (
                vec![0, 1, 4, 8],
                vec![3, 0, 1, 2, 2, 3, 0, 1],
                vec![1., 3., 3., 4., 6., 5., 0., 0.],
                (3, 4)
            )
        );
        assert_eq!(
            parts(&sub(&csc(), Selection::All, cols())),
            (
                vec![0, 2, 4, 6, 8],
                vec![1, 2, 1, 2, 1, 2, 0, 2],
                vec![3., 0., 3., 0., 4., 6., 1., 5.],
                (3, 4)
            )
        );
    }

    #[test]
    fn major_only_selection_copies_slices() {
        // Rows 2 and 1 by mask order: a mask keeps increasing order, so rows 1, 2.
        let m = sub(
            &csr(),
            Selection::Mask(vec![false, true, true]),
            Selection::All,
        );
        assert_eq!(
            parts(&m),
            (
                vec![0, 2, 5],
                vec![1, 3, 3, 0, 1],
                vec![3., 4., 6., 5., 0.],
                (2, 4)
            )
        );
        // Columns of a CSC matrix are its major axis: column 2 then column 0.
        let m = sub(&csc(), Selection::All, Selection::positions([2, 0]));
        assert_eq!(
            parts(&m),
            (vec![0, 1, 3], vec![0, 0, 2], vec![2., 1., 5.], (3, 2))
        );
    }

    #[test]
    fn both_axes_strided_ranges() {
        // m[1:, 1:3] == [[3, 0], [0(explicit), 0]]
        let m = sub(&csr(), Selection::from(1..3), Selection::from(1..3));
        assert_eq!(parts(&m), (vec![0, 1, 2], vec![0, 0], vec![3., 0.], (2, 2)));
        let m = sub(&csc(), Selection::from(1..3), Selection::from(1..3));
        assert_eq!(parts(&m), (vec![0, 2, 2], vec![0, 1], vec![3., 0.], (2, 2)));
    }

    #[test]
    fn empty_selections_give_empty_matrices() {
        let m = sub(&csr(), Selection::positions([]), Selection::All);
        assert_eq!(parts(&m), (vec![0], vec![], vec![], (0, 4)));
        let m = sub(&csr(), Selection::All, Selection::positions([]));
        assert_eq!(parts(&m), (vec![0, 0, 0, 0], vec![], vec![], (3, 0)));
        assert_eq!(m.data().dtype(), crate::data::DType::F64);
    }

    #[test]
    fn full_selection_is_a_copy() {
        assert_eq!(sub(&csc(), Selection::All, Selection::All), csc());
    }

    #[test]
    fn subset_checks_lengths() {
        let e = csr()
            .subset(&AxisIndex::full(3), &AxisIndex::full(5))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "shape mismatch: the selection of columns is for 5 columns, the matrix has 4"
        );
    }
}
