//! [`MatrixBlocks`]: a matrix handed to a writer a block of rows or columns at a time, so that
//! writers laying a matrix out in their own order (loom's genes × cells datasets, CSV lines)
//! take a matrix in memory and one read through a cache alike.

use std::ops::Range;

use crate::data::{ArrayData, Axis, DType, Matrix, SparseFormat};
use crate::select::AxisIndex;
use crate::{Error, Result};

/// Blocks of a matrix, in order.
pub type Blocks<'a> = Box<dyn Iterator<Item = Result<Matrix>> + 'a>;

/// A matrix read in consecutive blocks of rows (along [`Axis::Obs`]) or columns (along
/// [`Axis::Var`]).
///
/// ```
/// use annpage_engine::data::{ArrayData, Axis, Matrix};
/// use annpage_engine::format::MatrixBlocks;
/// let m = Matrix::Dense(ArrayData::from(ndarray::arr2(&[[1u8, 2], [3, 4], [5, 6]])));
/// let blocks: Vec<Matrix> = m.blocks(Axis::Obs, 2)?.collect::<Result<_, _>>()?;
/// assert_eq!(blocks.iter().map(|b| b.shape()).collect::<Vec<_>>(), [(2, 2), (1, 2)]);
/// assert_eq!(m.stored_along(), Axis::Obs);
/// # Ok::<(), annpage_engine::Error>(())
/// ```
pub trait MatrixBlocks {
    /// `(rows, columns)`.
    fn shape(&self) -> (usize, usize);

    /// The values' type.
    fn dtype(&self) -> DType;

    /// The axis whose slices are stored together (columns of a CSC matrix, else rows):
    /// blocks along it read each stored value once, blocks across it may read every value
    /// for each block.
    fn stored_along(&self) -> Axis;

    /// The rows (`along` [`Axis::Obs`]) or columns `range` of the matrix.
    fn block(&self, along: Axis, range: Range<usize>) -> Result<Matrix>;

    /// The matrix in blocks of `per` rows (`along` [`Axis::Obs`]) or columns, the last
    /// holding what remains; fails if `per` is 0. Readers of a file override it to read
    /// ahead; [`MatrixBlocks::block`] reads nothing it does not return.
    fn blocks(&self, along: Axis, per: usize) -> Result<Blocks<'_>> {
        let n = match along {
            Axis::Obs => self.shape().0,
            Axis::Var => self.shape().1,
        };
        Ok(Box::new(
            block_ranges(n, per)?.map(move |range| self.block(along, range)),
        ))
    }
}

/// The ranges of `per` positions out of `n`, in order.
pub fn block_ranges(n: usize, per: usize) -> Result<impl Iterator<Item = std::ops::Range<usize>>> {
    if per == 0 {
        return Err(Error::invalid(
            "blocks must hold at least one row or column",
        ));
    }
    Ok((0..n)
        .step_by(per)
        .map(move |start| start..start.saturating_add(per).min(n)))
}

/// Named matrices as the writers take them: each as [`MatrixBlocks`] under its name, in order.
pub fn named_blocks<'a, M: MatrixBlocks + 'a>(
    named: impl IntoIterator<Item = (&'a String, &'a M)>,
) -> Vec<(String, &'a dyn MatrixBlocks)> {
    named
        .into_iter()
        .map(|(k, m)| (k.clone(), m as &dyn MatrixBlocks))
        .collect()
}

impl MatrixBlocks for Matrix {
    fn shape(&self) -> (usize, usize) {
        Matrix::shape(self)
    }

    fn dtype(&self) -> DType {
        match self {
            Matrix::Dense(a) => a.dtype(),
            Matrix::Sparse(s) => s.data().dtype(),
        }
    }

    fn stored_along(&self) -> Axis {
        match self {
            Matrix::Sparse(s) if s.format() == SparseFormat::Csc => Axis::Var,
            _ => Axis::Obs,
        }
    }

    fn block(&self, along: Axis, range: Range<usize>) -> Result<Matrix> {
        let (rows, cols) = Matrix::shape(self);
        match along {
            Axis::Obs => self.subset(&AxisIndex::range(range, rows)?, &AxisIndex::full(cols)),
            Axis::Var => self.subset(&AxisIndex::full(rows), &AxisIndex::range(range, cols)?),
        }
    }
}

/// A 2-d array (an obsm or varm value) in blocks, as the dense matrix it is.
impl MatrixBlocks for ArrayData {
    fn shape(&self) -> (usize, usize) {
        let s = ArrayData::shape(self);
        (
            s.first().copied().unwrap_or(0),
            s.get(1).copied().unwrap_or(1),
        )
    }

    fn dtype(&self) -> DType {
        ArrayData::dtype(self)
    }

    fn stored_along(&self) -> Axis {
        Axis::Obs
    }

    fn block(&self, along: Axis, range: Range<usize>) -> Result<Matrix> {
        if self.ndim() != 2 {
            return Err(Error::invalid(format!(
                "a matrix must be 2-d, got shape {:?}",
                ArrayData::shape(self)
            )));
        }
        let (axis, n) = match along {
            Axis::Obs => (0, MatrixBlocks::shape(self).0),
            Axis::Var => (1, MatrixBlocks::shape(self).1),
        };
        Ok(Matrix::Dense(
            self.subset(axis, &AxisIndex::range(range, n)?)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::MatrixBlocks;
    use crate::data::{ArrayData, Axis, Matrix, SparseFormat};

    #[test]
    fn blocks_along_either_axis_cover_the_matrix_in_order() {
        let a = ArrayData::from(ndarray::Array2::from_shape_fn((5, 3), |(i, j)| {
            (i * 3 + j) as f32
        }));
        let dense = Matrix::Dense(a.clone());
        let csc = dense.to_sparse(SparseFormat::Csc).unwrap();
        assert_eq!(csc.stored_along(), Axis::Var);
        for m in [&dense as &dyn MatrixBlocks, &a, &csc] {
            let rows: Vec<Matrix> = m
                .blocks(Axis::Obs, 2)
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert_eq!(
                rows.iter().map(Matrix::shape).collect::<Vec<_>>(),
                [(2, 3), (2, 3), (1, 3)]
            );
            assert_eq!(
                rows[2].clone().to_dense().unwrap(),
                a.subset(0, &crate::select::AxisIndex::range(4..5, 5).unwrap())
                    .unwrap()
            );
            let cols: Vec<Matrix> = m
                .blocks(Axis::Var, 2)
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert_eq!(
                cols.iter().map(Matrix::shape).collect::<Vec<_>>(),
                [(5, 2), (5, 1)]
            );
            assert!(m.blocks(Axis::Obs, 0).is_err());
        }
    }
}
