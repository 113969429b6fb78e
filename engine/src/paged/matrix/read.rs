//! Executing a read plan: the blocks a selection needs fetched through the cache, and the
//! rows and columns asked for gathered out of them.

use std::mem::size_of;
use std::ops::Range;
use std::sync::Arc;

use crate::cache::{BlockKey, Retention};
use crate::data::{ArrayData, Matrix, SparseFormat, SparseMatrix, MAX_MINOR};
use crate::error::ResultExt;
use crate::paged::ahead::Want;
use crate::paged::block::Block;
use crate::paged::block::{Spare, Spares};
use crate::paged::gather::{self, with_value, SparseParts};
use crate::paged::plan::{is_increasing, ReadPlan};
use crate::select::AxisIndex;
use crate::select::MinorMap;
use crate::{Error, Result};

use super::chunks::Fetcher;
use super::{Datasets, Inner};

impl Inner {
    pub(super) fn check(&self, rows: &AxisIndex, cols: &AxisIndex) -> Result<()> {
        let (r, c) = self.shape;
        if rows.axis_len() != r || cols.axis_len() != c {
            return Err(Error::shape(format!(
                "the selection is for shape ({}, {}), the matrix has ({r}, {c})",
                rows.axis_len(),
                cols.axis_len()
            )))
            .in_element(&self.element);
        }
        Ok(())
    }

    /// `(major, minor)` of a selection: rows first unless the matrix is CSC.
    pub(super) fn axes<'a>(
        &self,
        rows: &'a AxisIndex,
        cols: &'a AxisIndex,
    ) -> (&'a AxisIndex, &'a AxisIndex) {
        match &self.datasets {
            Datasets::Sparse {
                format: SparseFormat::Csc,
                ..
            } => (cols, rows),
            _ => (rows, cols),
        }
    }

    pub(super) fn plan(&self, major: &AxisIndex) -> ReadPlan {
        ReadPlan::new(major, &self.blocking, |b| self.block_bytes(b))
    }

    /// The bytes block `b` (which must exist) takes once decoded.
    pub(super) fn block_bytes(&self, b: usize) -> usize {
        size_of::<Block>() + self.range_bytes(self.blocking.range(b))
    }

    /// The bytes major positions `r` take once decoded.
    pub(super) fn range_bytes(&self, r: Range<usize>) -> usize {
        match &self.datasets {
            Datasets::Dense { .. } => r.len() * self.shape.1 * self.dtype.size(),
            Datasets::Sparse {
                indptr,
                entry_bytes,
                ..
            } => {
                let nnz = (indptr[r.end] - indptr[r.start]) as usize;
                nnz * entry_bytes + (r.len() + 1) * size_of::<u64>()
            }
        }
    }

    /// The length of the minor axis: columns of CSR and dense matrices, rows of CSC ones.
    fn minor_len(&self) -> usize {
        match &self.datasets {
            Datasets::Sparse {
                format: SparseFormat::Csc,
                ..
            } => self.shape.0,
            _ => self.shape.1,
        }
    }

    /// Reads major positions `range` (a block or part of one) from storage, into `spare`'s
    /// buffers where they fit.
    pub(super) fn load_range(&self, range: Range<usize>, spare: Spare) -> Result<Block> {
        let block = match &self.datasets {
            Datasets::Dense { values } => {
                Block::load_dense(values.as_ref(), range, self.shape.1, spare)
            }
            Datasets::Sparse {
                indptr,
                indices,
                data,
                ..
            } => {
                let minor = self.minor_len();
                Block::load_sparse(indptr, range, indices.as_ref(), data.as_ref(), minor, spare)
            }
        };
        block.in_element(&self.element)
    }

    /// Reads runs of major positions (increasing, disjoint) as one block over their span (a
    /// single run into a spare's buffers if there is one).
    pub(super) fn load_runs(&self, runs: &[Range<usize>], spares: &Spares) -> Result<Block> {
        if let [run] = runs {
            return self.load_range(run.clone(), spares.take(self.dtype));
        }
        let block = match &self.datasets {
            Datasets::Dense { values } => {
                Block::load_dense_runs(values.as_ref(), runs, self.shape.1)
            }
            Datasets::Sparse {
                indptr,
                indices,
                data,
                ..
            } => {
                let minor = self.minor_len();
                Block::load_sparse_runs(indptr, runs, indices.as_ref(), data.as_ref(), minor)
            }
        };
        block.in_element(&self.element)
    }

    /// Fetches a want: a whole block through the cache, or a span read on its own. What is
    /// loaded and not kept goes into a spare's buffers if there is one (kept blocks are
    /// charged to the cache by length, so they get buffers of exactly their size).
    pub(super) fn fetch_want(
        &self,
        want: &Want,
        retention: Retention,
        spares: &Spares,
    ) -> Result<Arc<Block>> {
        match &want.span {
            None => {
                let b = want.block;
                let key = BlockKey::new(self.id, b);
                self.cache.get_or_load_with(key, retention, || {
                    let spare = match retention {
                        Retention::Discard => spares.take(self.dtype),
                        Retention::Keep => Spare::default(),
                    };
                    self.load_range(self.blocking.range(b), spare)
                })
            }
            Some(runs) => Ok(Arc::new(self.load_runs(runs, spares)?)),
        }
    }

    /// The plan [`Inner::read`] executes for a selection (`None` when it reads nothing): the
    /// major positions themselves, or their distinct values in increasing order when a sparse
    /// selection along both axes is unsorted.
    pub(super) fn plan_for(
        &self,
        major: &AxisIndex,
        minor: &AxisIndex,
    ) -> Result<Option<ReadPlan>> {
        if major.is_empty() || minor.is_empty() {
            return Ok(None);
        }
        let sparse_mapped = matches!(self.datasets, Datasets::Sparse { .. }) && !minor.is_full();
        if sparse_mapped && !is_increasing(major) {
            let mut distinct = major.to_vec();
            distinct.sort_unstable();
            distinct.dedup();
            let unique = AxisIndex::from_positions(distinct, major.axis_len())?;
            return Ok(Some(self.plan(&unique)));
        }
        Ok(Some(self.plan(major)))
    }

    /// Reads a checked selection.
    pub(super) fn read(
        self: &Arc<Self>,
        rows: &AxisIndex,
        cols: &AxisIndex,
        fetcher: &mut Fetcher,
    ) -> Result<Matrix> {
        let out_shape = (rows.len(), cols.len());
        let (major, minor) = self.axes(rows, cols);
        let (format, indptr) = match &self.datasets {
            Datasets::Dense { .. } => {
                if major.is_empty() || minor.is_empty() {
                    return Ok(Matrix::Dense(ArrayData::zeros(
                        self.dtype,
                        &[rows.len(), cols.len()],
                    )));
                }
                let plan = self.plan(major);
                let mut fetch = fetcher.for_plan(self, &plan);
                let ncols = self.shape.1;
                let a = with_value!(self.dtype, V => gather::dense::<V>(&plan, &mut fetch, ncols, cols))?;
                return Ok(Matrix::Dense(a));
            }
            Datasets::Sparse { format, indptr, .. } => (*format, indptr),
        };
        if major.is_empty() || minor.is_empty() {
            return Ok(Matrix::Sparse(SparseMatrix::empty(
                format, out_shape, self.dtype,
            )));
        }
        if minor.len() as u64 > MAX_MINOR {
            return Err(Error::unsupported(format!(
                "a sparse result whose minor dimension ({}) exceeds 2^32",
                minor.len()
            )));
        }
        let (out_indptr, indices, data) = if minor.is_full() {
            let plan = self.plan(major);
            let mut fetch = fetcher.for_plan(self, &plan);
            with_value!(self.dtype, V => gather::sparse_whole::<V>(&plan, &mut fetch, major, indptr))?
        } else if is_increasing(major) {
            self.read_mapped(major, minor, fetcher)?
        } else {
            // Read the distinct slices in increasing order once, then arrange them as asked.
            let mut distinct = major.to_vec();
            distinct.sort_unstable();
            distinct.dedup();
            let unique = AxisIndex::from_positions(distinct.clone(), major.axis_len())?;
            let (p, i, d) = self.read_mapped(&unique, minor, fetcher)?;
            let compact = self.sparse(format, unique.len(), minor.len(), p, i, d)?;
            let at = major
                .iter()
                .map(|s| distinct.binary_search(&s).unwrap_or_default())
                .collect();
            let picked = AxisIndex::from_positions(at, unique.len())?;
            let full = AxisIndex::full(minor.len());
            let (r, c) = match format {
                SparseFormat::Csr => (&picked, &full),
                SparseFormat::Csc => (&full, &picked),
            };
            return Ok(Matrix::Sparse(compact.subset(r, c)?));
        };
        Ok(Matrix::Sparse(self.sparse(
            format,
            major.len(),
            minor.len(),
            out_indptr,
            indices,
            data,
        )?))
    }

    /// Slices `major` (strictly increasing) restricted to the minor positions `minor`.
    pub(super) fn read_mapped(
        self: &Arc<Self>,
        major: &AxisIndex,
        minor: &AxisIndex,
        fetcher: &mut Fetcher,
    ) -> Result<SparseParts> {
        let plan = self.plan(major);
        let map = MinorMap::new(minor);
        let mut fetch = fetcher.for_plan(self, &plan);
        with_value!(self.dtype, V => gather::sparse_mapped::<V>(&plan, &mut fetch, &map))
    }

    /// A result matrix from its major and minor lengths, built from gathered parts (offsets
    /// from the checked `indptr`, indices checked on load or mapped below `minor`).
    pub(super) fn sparse(
        &self,
        format: SparseFormat,
        major: usize,
        minor: usize,
        indptr: Vec<u64>,
        indices: Vec<u32>,
        data: ArrayData,
    ) -> Result<SparseMatrix> {
        let shape = match format {
            SparseFormat::Csr => (major, minor),
            SparseFormat::Csc => (minor, major),
        };
        Ok(SparseMatrix::from_checked_parts(
            format, shape, indptr, indices, data,
        ))
    }
}
