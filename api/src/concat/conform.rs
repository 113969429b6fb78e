//! How chunks of a streamed matrix of a concatenation become the result's: [`Conform`] (the
//! kind and dtype of the whole, found from a probe of every input), the bound of its stored
//! values, and [`write_stream`], which appends the chunks to the output.

use annpage_engine::data::{ArrayData, DType, Matrix, SparseFormat, SparseMatrix};
use annpage_engine::file::stream::{MatrixSpec, Values, Writer};
use annpage_engine::paged::MatrixKind;
use annpage_engine::Result;

use super::matrix::{self, Mat};
use super::plan::Reindexer;
use super::{sparse, values, FillValue};
use crate::BackedMatrixView;

/// The kind (sparse or dense) and dtype every chunk of a streamed matrix is given: anndata's
/// rules applied to an empty chunk of each input, so that chunks read one at a time stack
/// into what [`concat()`] gives for the whole.
#[derive(Clone, Copy, Debug)]
pub(super) struct Conform {
    sparse: bool,
    dtype: DType,
    fill: Option<FillValue>,
}

impl Conform {
    /// The result's kind and dtype for `pieces` (input `i`'s matrix, `None` when it lacks it)
    /// aligned by `reindexers`.
    pub(super) fn probe(
        pieces: &[Option<BackedMatrixView>],
        reindexers: &[Reindexer],
        fill: Option<FillValue>,
    ) -> Result<Conform> {
        let probe = pieces
            .iter()
            .zip(reindexers)
            .map(|(p, r)| {
                let empty = p.as_ref().map(|m| {
                    let cols = m.shape().1;
                    match m.kind() {
                        crate::backed::MatrixKind::Dense => {
                            Mat::Dense(ArrayData::zeros(m.dtype(), &[0, cols]))
                        }
                        crate::backed::MatrixKind::Sparse(f) => {
                            Mat::Sparse(SparseMatrix::empty(f, (0, cols), m.dtype()))
                        }
                    }
                });
                (empty, 0, r)
            })
            .collect();
        Ok(Conform::of(
            &matrix::stack_rows(probe, fill)?.into_matrix()?,
            fill,
        ))
    }

    /// The kind and dtype of `m`, a result of aligning a probe (an empty chunk) of each input.
    pub(super) fn of(m: &Matrix, fill: Option<FillValue>) -> Conform {
        let (sparse, dtype) = match m {
            Matrix::Dense(a) => (false, a.dtype()),
            Matrix::Sparse(s) => (true, s.data().dtype()),
        };
        Conform {
            sparse,
            dtype,
            fill,
        }
    }

    /// Whether the result is sparse (CSR).
    pub(super) fn sparse(&self) -> bool {
        self.sparse
    }

    /// The result's dtype.
    pub(super) fn dtype(&self) -> DType {
        self.dtype
    }

    /// `m`, `rows` rows of one input (`None` when the input lacks the matrix), aligned onto
    /// the result's columns by `r` and given the result's kind and dtype. With any sparse
    /// input the result is CSR and dense pieces (or missing ones) go through the sparse path,
    /// as they do in memory.
    pub(super) fn chunk(&self, m: Option<Matrix>, rows: usize, r: &Reindexer) -> Result<Matrix> {
        // Already the result's: the same genes in the same order, kind and dtype.
        let same = match &m {
            Some(Matrix::Sparse(s)) => {
                self.sparse && s.format() == SparseFormat::Csr && s.data().dtype() == self.dtype
            }
            Some(Matrix::Dense(a)) => !self.sparse && a.ndim() == 2 && a.dtype() == self.dtype,
            None => false,
        };
        let m = match m {
            Some(m) if same && r.keeps(m.shape().1) => return Ok(m),
            m => m,
        };
        let m = match (self.sparse, m.map(Mat::from_matrix)) {
            (true, Some(Mat::Dense(a))) => Mat::Sparse(sparse::dense_to_csr(&a)?),
            (true, None) => Mat::Sparse(SparseMatrix::empty(
                SparseFormat::Csr,
                (rows, 0),
                DType::Bool,
            )),
            (false, None) => Mat::Dense(ArrayData::zeros(DType::Bool, &[rows, 0])),
            (_, Some(m)) => m,
        };
        self.cast(matrix::stack_rows(vec![(Some(m), rows, r)], self.fill)?.into_matrix()?)
    }

    /// `m`, a chunk aligned as the result is, given the result's dtype (a chunk that holds no
    /// fill, or only fills, can have a narrower or another one).
    pub(super) fn cast(&self, m: Matrix) -> Result<Matrix> {
        Ok(match m {
            Matrix::Dense(a) if a.dtype() != self.dtype => {
                Matrix::Dense(values::cast(&a, self.dtype)?)
            }
            Matrix::Sparse(s) if s.data().dtype() != self.dtype => {
                let (format, shape, indptr, indices, data) = s.into_parts();
                let data = values::cast(&data, self.dtype)?;
                Matrix::Sparse(SparseMatrix::new(format, shape, indptr, indices, data)?)
            }
            m => m,
        })
    }
}

/// The values a non-zero fill stores in a sparse result besides the inputs' own: for each
/// input (whether it has the matrix, its length along the concatenation, and the reindexer of
/// the other axis), every position of the other axis it lacks (all of them when it lacks the
/// matrix), once per cell or gene along the axis. Counted in the bound that sets the index
/// dtype, so that a fill past 2^31 values keeps int64 indices.
pub(super) fn filled_values<'r>(
    conform: &Conform,
    inputs: impl Iterator<Item = ((bool, usize), &'r Reindexer)>,
) -> u64 {
    if !conform.sparse() || conform.fill.is_none_or(FillValue::is_zero) {
        return 0;
    }
    inputs
        .map(|((present, along), r)| {
            let kept = if present {
                r.old_to_new().iter().flatten().count()
            } else {
                0
            };
            ((r.new_len() - kept) as u64).saturating_mul(along as u64)
        })
        .fold(0u64, u64::saturating_add)
}

/// Writes matrix `name` of `shape` into the group at `parent` from the chunks of rows `feed`
/// pushes, in order, each already given `conform`'s kind and dtype; `bound` is at most the
/// number of stored values (it sets the index dtype of a sparse result, as scipy would from
/// the count: an inner join that drops values from more than 2^31 stored ones keeps int64).
pub(super) fn write_stream(
    w: &Writer<'_>,
    (parent, name): (&str, &str),
    conform: &Conform,
    shape: (usize, usize),
    bound: u64,
    feed: impl FnOnce(&mut dyn FnMut(&Matrix) -> Result<()>) -> Result<()>,
) -> Result<()> {
    let spec = MatrixSpec {
        kind: if conform.sparse {
            MatrixKind::Sparse(SparseFormat::Csr)
        } else {
            MatrixKind::Dense
        },
        shape,
        dtype: conform.dtype,
        values: Values::AtMost(bound),
    };
    let mut sink = w.matrix(parent, name, &spec)?;
    feed(&mut |m| sink.push(m))?;
    sink.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A non-zero fill stores every position an input lacks in a sparse result: they count
    /// in the bound that sets the index dtype; a zero fill, or a dense result, stores none.
    #[test]
    fn fills_count_in_the_bound_of_stored_values() {
        let sparse = Matrix::Sparse(SparseMatrix::empty(SparseFormat::Csr, (0, 4), DType::F32));
        let dense = Matrix::Dense(ArrayData::zeros(DType::F32, &[0, 4]));
        // Input 0 has 2 of the 4 result positions, input 1 lacks the matrix.
        let r0 = Reindexer::positions(3, vec![Some(0), None, Some(2), None]);
        let r1 = Reindexer::range(0, 4);
        let count = |m: &Matrix, fill: Option<FillValue>| {
            let inputs = [((true, 10usize), &r0), ((false, 5usize), &r1)];
            filled_values(&Conform::of(m, fill), inputs.into_iter())
        };
        assert_eq!(count(&sparse, Some(FillValue::Float(1.5))), 2 * 10 + 4 * 5);
        assert_eq!(count(&sparse, Some(FillValue::Int(0))), 0);
        assert_eq!(count(&sparse, None), 0);
        assert_eq!(count(&dense, Some(FillValue::Int(7))), 0);
    }
}
