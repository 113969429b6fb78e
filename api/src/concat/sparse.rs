//! Sparse matrices while concatenating: CSR/CSC conversion, anndata's sparse reindexing,
//! stacking rows, and equality by value.

use std::collections::HashMap;

use annpage_engine::data::{ArrayData, DType, SparseFormat, SparseMatrix};
use annpage_engine::{map_array, Error, Result};
use ndarray::{ArrayD, IxDyn};

use super::plan::Reindexer;
use super::values::{self, check_2d, concat_same};
use super::FillValue;

/// A 1-d array of all elements in row-major order.
fn flatten(a: &ArrayData) -> ArrayData {
    map_array!(a, x => {
        let v: Vec<_> = x.iter().cloned().collect();
        ArrayD::from_shape_vec(IxDyn(&[v.len()]), v).expect("1-d shape of its length")
    })
}

/// The CSR form of a 2-d dense array: its non-zero values (NaN included), as scipy's
/// `csr_matrix(a)`.
pub(super) fn dense_to_csr(a: &ArrayData) -> Result<SparseMatrix> {
    check_2d(a.shape())?;
    let (rows, cols) = (a.shape()[0], a.shape()[1]);
    let values = a
        .to_f64()
        .ok_or_else(|| Error::unsupported("a sparse matrix of strings"))?;
    let mut indptr = Vec::with_capacity(rows + 1);
    let mut indices = Vec::new();
    let mut keep = Vec::new();
    indptr.push(0u64);
    for (flat, v) in values.iter().enumerate() {
        if *v != 0.0 {
            indices.push((flat % cols.max(1)) as u32);
            keep.push(flat);
        }
        if cols > 0 && flat % cols == cols - 1 {
            indptr.push(indices.len() as u64);
        }
    }
    if cols == 0 {
        indptr.resize(rows + 1, 0);
    }
    let data = flatten(a).select(0, &keep);
    SparseMatrix::new(SparseFormat::Csr, (rows, cols), indptr, indices, data)
}

/// The same matrix in CSR form.
pub(super) fn to_csr(s: &SparseMatrix) -> Result<SparseMatrix> {
    if s.format() == SparseFormat::Csr {
        return Ok(s.clone());
    }
    // A CSC matrix is the CSR of its transpose: count entries per row, then place them.
    let (rows, cols) = s.shape();
    let mut counts = vec![0u64; rows + 1];
    for &r in s.indices() {
        counts[r as usize + 1] += 1;
    }
    for i in 0..rows {
        counts[i + 1] += counts[i];
    }
    let indptr = counts.clone();
    let mut next = counts;
    let mut indices = vec![0u32; s.nnz()];
    let mut order = vec![0usize; s.nnz()];
    for c in 0..cols {
        for k in s.indptr()[c] as usize..s.indptr()[c + 1] as usize {
            let r = s.indices()[k] as usize;
            let at = next[r] as usize;
            indices[at] = c as u32;
            order[at] = k;
            next[r] += 1;
        }
    }
    let data = s.data().select(0, &order);
    SparseMatrix::new(SparseFormat::Csr, (rows, cols), indptr, indices, data)
}

/// The same matrix in `format`.
pub(super) fn to_format(s: SparseMatrix, format: SparseFormat) -> Result<SparseMatrix> {
    match (s.format(), format) {
        (a, b) if a == b => Ok(s),
        (_, SparseFormat::Csr) => to_csr(&s),
        // The CSC form of s is the transpose of the CSR form of s's transpose.
        (_, SparseFormat::Csc) => Ok(to_csr(&s.transpose())?.transpose()),
    }
}

/// Reindexes a sparse matrix along `axis` (0: rows, 1: columns), keeping its format, as
/// anndata's `Reindexer._apply_to_sparse`: missing positions are empty, or every value of
/// them is `fill` when `fill` is not 0 (the dtype promoted by numpy with `fill`'s: int64 for an
/// integer, float64 for a float); a matrix with nothing along the axis becomes an empty
/// float64 CSR matrix (fill 0) or a full one of `fill`'s dtype.
pub(super) fn reindex_sparse(
    s: SparseMatrix,
    axis: usize,
    r: &Reindexer,
    fill: FillValue,
) -> Result<SparseMatrix> {
    let len = if axis == 0 { s.shape().0 } else { s.shape().1 };
    if r.keeps(len) {
        return Ok(s);
    }
    let mut shape = s.shape();
    if axis == 0 {
        shape.0 = r.new_len();
    } else {
        shape.1 = r.new_len();
    }
    if len == 0 {
        if fill.is_zero() {
            return Ok(SparseMatrix::empty(SparseFormat::Csr, shape, DType::F64));
        }
        let dense = values::full(values::fill_dtype(fill), &[shape.0, shape.1], fill)?;
        return to_format(dense_to_csr(&dense)?, s.format());
    }
    let filling = !fill.is_zero() && r.fills();
    let format = s.format();
    // Work on the compressed form whose minor axis is `axis` (CSR for columns).
    let target = if axis == 1 {
        SparseFormat::Csr
    } else {
        SparseFormat::Csc
    };
    let m = to_format(s, target)?;
    let old_to_new = r.old_to_new();
    if !filling && old_to_new.iter().all(Option::is_some) {
        // Nothing filled, nothing dropped: the same entries, renumbered in place.
        let (_, (rows, cols), indptr, mut indices, data) = m.into_parts();
        // A table of 4 bytes a gene stays in the core's cache (20,000 genes: 80 KiB).
        let map: Vec<u32> = old_to_new
            .iter()
            .map(|n| n.map_or(u32::MAX, |n| n as u32))
            .collect();
        for i in &mut indices {
            *i = map[*i as usize];
        }
        let shape = if axis == 1 {
            (rows, r.new_len())
        } else {
            (r.new_len(), cols)
        };
        let out = SparseMatrix::new(target, shape, indptr, indices, data)?;
        return to_format(out, format);
    }
    let (major, _) = if axis == 1 {
        m.shape()
    } else {
        (m.shape().1, m.shape().0)
    };
    let to_fill: Vec<u32> = if filling {
        r.new_to_old()
            .iter()
            .enumerate()
            .filter(|(_, o)| o.is_none())
            .map(|(i, _)| i as u32)
            .collect()
    } else {
        Vec::new()
    };
    let mut indptr = Vec::with_capacity(major + 1);
    let mut indices = Vec::new();
    let mut entries = Vec::new();
    indptr.push(0u64);
    for i in 0..major {
        for k in m.indptr()[i] as usize..m.indptr()[i + 1] as usize {
            if let Some(new) = old_to_new[m.indices()[k] as usize] {
                indices.push(new as u32);
                entries.push(Some(k));
            }
        }
        for &t in &to_fill {
            indices.push(t);
            entries.push(None);
        }
        indptr.push(indices.len() as u64);
    }
    let data = if filling {
        let dtype = values::result_type(m.data().dtype(), values::fill_dtype(fill))
            .ok_or_else(|| Error::unsupported("filling a sparse matrix of strings"))?;
        // The stored values, then the fill as the last value: each entry picks one.
        let values = ArrayData::concat_rows(&[
            values::cast(m.data(), dtype)?,
            values::full(dtype, &[1], fill)?,
        ])?;
        let at_fill = m.data().len();
        let picks: Vec<usize> = entries.iter().map(|e| e.unwrap_or(at_fill)).collect();
        values.select(0, &picks)
    } else {
        let keep: Vec<usize> = entries.iter().flatten().copied().collect();
        m.data().select(0, &keep)
    };
    let minor_shape = if axis == 1 {
        (major, r.new_len())
    } else {
        (r.new_len(), major)
    };
    let out = SparseMatrix::new(target, minor_shape, indptr, indices, data)?;
    to_format(out, format)
}

/// Stacks CSR matrices of equal width (scipy's `vstack(..., format="csr")`).
pub(crate) fn vstack_csr(parts: Vec<SparseMatrix>) -> Result<SparseMatrix> {
    let dtype = values::result_type_all(parts.iter().map(|p| p.data().dtype()))
        .ok_or_else(|| Error::unsupported("sparse matrices of strings"))?;
    let cols = parts.first().map_or(0, |p| p.shape().1);
    let rows = parts.iter().map(|p| p.shape().0).sum();
    let nnz = parts.iter().map(SparseMatrix::nnz).sum();
    let mut indptr = Vec::with_capacity(rows + 1);
    indptr.push(0u64);
    let mut indices = Vec::with_capacity(nnz);
    let mut data = Vec::with_capacity(parts.len());
    // Each part's arrays are moved (or freed once copied), not held beside the result's.
    for p in parts {
        let (_, (_, width), part_indptr, part_indices, values) = p.into_parts();
        if width != cols {
            return Err(Error::shape(format!(
                "cannot stack sparse matrices of {width} and {cols} columns"
            )));
        }
        let base = indices.len() as u64;
        indptr.extend(part_indptr[1..].iter().map(|&o| o + base));
        indices.extend_from_slice(&part_indices);
        drop(part_indices);
        data.push(if values.dtype() == dtype {
            values
        } else {
            values::cast(&values, dtype)?
        });
    }
    let data = if data.is_empty() {
        ArrayData::zeros(dtype, &[0])
    } else {
        concat_same(&data, 0)?
    };
    SparseMatrix::new(SparseFormat::Csr, (rows, cols), indptr, indices, data)
}

pub(super) fn sparse_equal(a: &SparseMatrix, b: &SparseMatrix) -> Result<bool> {
    let as_f64 = |s: &SparseMatrix| -> Result<Vec<f64>> {
        match values::cast(s.data(), DType::F64)? {
            ArrayData::F64(d) => Ok(d.iter().copied().collect()),
            _ => unreachable!("cast to f64"),
        }
    };
    let (da, db) = (as_f64(a)?, as_f64(b)?);
    let row = |s: &SparseMatrix, d: &[f64], i: usize| -> HashMap<u32, f64> {
        let range = s.indptr()[i] as usize..s.indptr()[i + 1] as usize;
        let mut m = HashMap::new();
        for (&j, &v) in s.indices()[range.clone()].iter().zip(&d[range]) {
            *m.entry(j).or_insert(0.0) += v;
        }
        m
    };
    for i in 0..a.shape().0 {
        let (ra, rb) = (row(a, &da, i), row(b, &db, i));
        for key in ra.keys().chain(rb.keys()) {
            let (x, y) = (
                ra.get(key).copied().unwrap_or(0.0),
                rb.get(key).copied().unwrap_or(0.0),
            );
            if x != y && !(x.is_nan() && y.is_nan()) {
                return Ok(false);
            }
        }
    }
    Ok(true)
}
