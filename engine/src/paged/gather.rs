//! Executing read plans: fetching each planned block once and copying its pieces into the
//! result, typed by the matrix's dtype.

use std::sync::Arc;

use super::block::{Block, Content, SparseBlock};
use super::plan::ReadPlan;
use crate::data::ArrayData;
use crate::select::MinorMap;
use crate::select::{AxisIndex, IndexKind};
use crate::{Error, Result};

pub(crate) use crate::data::{with_value, Value};

/// The arrays of a sparse result: `(indptr, indices, data)`.
pub(crate) type SparseParts = (Vec<u64>, Vec<u32>, ArrayData);

/// An error for a block that does not hold what its matrix stores (cannot happen for blocks
/// loaded by the matrix itself).
/// Fails unless `n` results of `bytes_each` bytes fit in the memory available.
fn check_memory(n: usize, bytes_each: usize) -> Result<()> {
    let bytes = (n as u64).saturating_mul(bytes_each as u64);
    crate::memory::check_memory(bytes, "the selection")
}

fn wrong_block() -> Error {
    Error::malformed("a cached block does not match its matrix")
}

fn dense_values<V: Value>(block: &Block) -> Result<&[V]> {
    match block.content() {
        Content::Dense(a) => V::slice(a).ok_or_else(wrong_block),
        _ => Err(wrong_block()),
    }
}

fn sparse_parts<V: Value>(block: &Block) -> Result<(&SparseBlock, &[V])> {
    match block.content() {
        Content::Sparse(s) => Ok((s, V::slice(&s.data).ok_or_else(wrong_block)?)),
        _ => Err(wrong_block()),
    }
}

/// The columns of a dense result, as they are copied from each row.
enum Columns {
    Range(std::ops::Range<usize>),
    List(Vec<usize>),
}

impl Columns {
    fn new(cols: &AxisIndex) -> Self {
        match cols.kind() {
            IndexKind::Range(r) => Columns::Range(r),
            _ => Columns::List(cols.to_vec()),
        }
    }

    fn copy<V: Value>(&self, row: &[V], out: &mut [V]) {
        match self {
            Columns::Range(r) => out.copy_from_slice(&row[r.clone()]),
            Columns::List(cs) => {
                for (o, &c) in out.iter_mut().zip(cs) {
                    *o = row[c];
                }
            }
        }
    }
}

/// Rows of a dense matrix with `ncols` columns: the rows planned, columns `cols`, as a 2-d
/// array in the plan's order.
pub(crate) fn dense<V: Value>(
    plan: &ReadPlan,
    fetch: &mut impl FnMut(usize) -> Result<Arc<Block>>,
    ncols: usize,
    cols: &AxisIndex,
) -> Result<ArrayData> {
    let width = cols.len();
    let total = plan
        .len()
        .checked_mul(width)
        .ok_or_else(|| Error::invalid("the selection is too large to hold in memory"))?;
    check_memory(total, std::mem::size_of::<V>())?;
    let mut out = vec![V::default(); total];
    let columns = Columns::new(cols);
    for (b, pieces) in plan.block_pieces() {
        let block = fetch(b)?;
        let values = dense_values::<V>(&block)?;
        let first = block.major_range().start;
        for p in pieces {
            for k in 0..p.len {
                let src = (p.src - first + k) * ncols;
                let dst = (p.dst + k) * width;
                columns.copy(&values[src..src + ncols], &mut out[dst..dst + width]);
            }
        }
    }
    V::wrap(out, &[plan.len(), width])
}

/// Whole major slices of a sparse matrix with global offsets `indptr`: the slices planned,
/// selected by `major`, in the plan's order.
pub(crate) fn sparse_whole<V: Value>(
    plan: &ReadPlan,
    fetch: &mut impl FnMut(usize) -> Result<Arc<Block>>,
    major: &AxisIndex,
    indptr: &[u64],
) -> Result<SparseParts> {
    // The result's offsets are known from indptr alone: every piece is copied to its place.
    let mut out_indptr = Vec::with_capacity(major.len() + 1);
    let mut total = 0u64;
    out_indptr.push(0);
    for s in major {
        total += indptr[s + 1] - indptr[s];
        out_indptr.push(total);
    }
    let nnz = usize::try_from(total)
        .map_err(|_| Error::invalid("the selection is too large to hold in memory"))?;
    check_memory(nnz, std::mem::size_of::<V>() + 4)?;
    let mut indices = vec![0u32; nnz];
    let mut data = vec![V::default(); nnz];
    for (b, pieces) in plan.block_pieces() {
        let block = fetch(b)?;
        let (s, values) = sparse_parts::<V>(&block)?;
        let first = block.major_range().start;
        for p in pieces {
            let lo = s.indptr[p.src - first] as usize;
            let hi = s.indptr[p.src - first + p.len] as usize;
            let at = out_indptr[p.dst] as usize;
            let n = hi - lo;
            data[at..at + n].copy_from_slice(&values[lo..hi]);
            indices[at..at + n].copy_from_slice(&s.indices[lo..hi]);
        }
    }
    Ok((out_indptr, indices, V::wrap(data, &[nnz])?))
}

/// Major slices of a sparse matrix restricted to the minor positions of `map`, for a plan
/// whose positions strictly increase (the result is built in reading order).
pub(crate) fn sparse_mapped<V: Value>(
    plan: &ReadPlan,
    fetch: &mut impl FnMut(usize) -> Result<Arc<Block>>,
    map: &MinorMap,
) -> Result<SparseParts> {
    debug_assert!(plan.is_in_order());
    let mut out_indptr = Vec::with_capacity(plan.len() + 1);
    let mut indices = Vec::new();
    let mut data = Vec::new();
    out_indptr.push(0);
    for (b, pieces) in plan.block_pieces() {
        let block = fetch(b)?;
        let (s, values) = sparse_parts::<V>(&block)?;
        let first = block.major_range().start;
        for p in pieces {
            for row in p.src - first..p.src - first + p.len {
                let (lo, hi) = (s.indptr[row] as usize, s.indptr[row + 1] as usize);
                let row_values = &values[lo..hi];
                map.for_each_hit(&s.indices[lo..hi], |k, t| {
                    // New positions are below the result's minor dimension, at most 2^32.
                    indices.push(t as u32);
                    data.push(row_values[k]);
                });
                out_indptr.push(indices.len() as u64);
            }
        }
    }
    let nnz = data.len();
    Ok((out_indptr, indices, V::wrap(data, &[nnz])?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paged::block::Blocking;

    #[test]
    fn selections_beyond_the_memory_available_are_refused_before_reading() {
        let rows = 1usize << 40;
        let blocking = Blocking::Uniform {
            len: rows,
            per_block: rows,
        };
        let all = AxisIndex::range(0..rows, rows).unwrap();
        let plan = ReadPlan::new(&all, &blocking, |_| 0);
        let mut fetch = |_: usize| -> Result<Arc<Block>> { panic!("nothing may be read") };
        let cols = AxisIndex::range(0..1 << 20, 1 << 20).unwrap();
        let err = dense::<f32>(&plan, &mut fetch, 1 << 20, &cols).unwrap_err();
        assert!(err.to_string().contains("memory available"), "{err}");
        let indptr = [0, 1u64 << 40];
        let one = AxisIndex::range(0..1, 1).unwrap();
        let one_plan = ReadPlan::new(
            &one,
            &Blocking::Uniform {
                len: 1,
                per_block: 1,
            },
            |_| 0,
        );
        let err = sparse_whole::<f64>(&one_plan, &mut fetch, &one, &indptr).unwrap_err();
        assert!(err.to_string().contains("memory available"), "{err}");
    }
}
