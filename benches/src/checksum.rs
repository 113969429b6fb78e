//! The checksums of the workloads, computed exactly as `benches/peers.py` computes them
//! (`benches/shared.py`).
//!
//! Every sum is a float64 sum; the values in the bench files are small integers, so the sums
//! are exact and agree to the last bit with the Python peers unless something else was read.

use std::collections::HashSet;
use std::ops::Range;

use annpage::data::{
    ArrayData, Column, CompactString, DataFrame, Matrix, NullableKind, SparseFormat,
};

use crate::BenchResult;

/// Formats numbers as one checksum token: comma-separated float64 values, as `fmt` in
/// `benches/peers.py` (Rust's shortest round-trip form, which Python's `float()` reads back).
pub fn fmt(values: &[f64]) -> String {
    values
        .iter()
        .map(|v| format!("{v:?}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A stored value converted to `f64` (bools as 0 and 1, as numpy converts them).
trait Value: Copy {
    fn to_f64(self) -> f64;
}

macro_rules! value_as {
    ($($t:ty),*) => {$(
        impl Value for $t {
            #[inline]
            fn to_f64(self) -> f64 {
                self as f64
            }
        }
    )*};
}
value_as!(i8, i16, i32, i64, u8, u16, u32, u64, f32, f64);

impl Value for half::f16 {
    #[inline]
    fn to_f64(self) -> f64 {
        self.into()
    }
}

impl Value for bool {
    #[inline]
    fn to_f64(self) -> f64 {
        f64::from(u8::from(self))
    }
}

/// Evaluates `$body` with `$values` bound to the stored values of sparse matrix `$s` as a
/// typed slice (`&[T]`, `T: Value`); an error for strings or non-contiguous data.
macro_rules! with_values {
    ($s:expr, $values:ident => $body:expr) => {{
        macro_rules! go {
            ($a:expr) => {{
                let $values = $a
                    .as_slice()
                    .ok_or("sparse data is not a contiguous 1-d array")?;
                $body
            }};
        }
        match $s.data() {
            ArrayData::Bool(a) => go!(a),
            ArrayData::I8(a) => go!(a),
            ArrayData::I16(a) => go!(a),
            ArrayData::I32(a) => go!(a),
            ArrayData::I64(a) => go!(a),
            ArrayData::U8(a) => go!(a),
            ArrayData::U16(a) => go!(a),
            ArrayData::U32(a) => go!(a),
            ArrayData::U64(a) => go!(a),
            ArrayData::F16(a) => go!(a),
            ArrayData::F32(a) => go!(a),
            ArrayData::F64(a) => go!(a),
            ArrayData::String(_) => return Err("sparse data holds strings".into()),
        }
    }};
}

/// The sparse matrix of `m` (the bench files store `X` sparse).
fn sparse(m: &Matrix) -> BenchResult<&annpage::data::SparseMatrix> {
    match m {
        Matrix::Sparse(s) => Ok(s),
        Matrix::Dense(_) => Err("expected a sparse matrix, got a dense one".into()),
    }
}

/// `(Σ v, count, Σ v · major_weight(major) · minor_weight(minor))` over compressed arrays:
/// per major slice `Σ v · minor_weight`, times the slice's weight (as `EntrySums.add_csr` in
/// `benches/peers.py` sums per row; exact, the values being small integers).
fn weighted_sums<T: Value>(
    indptr: &[u64],
    indices: &[u32],
    values: &[T],
    major_weight: impl Fn(usize) -> f64,
    minor_weight: impl Fn(usize) -> f64,
) -> (f64, f64, f64) {
    let (mut s, mut w) = (0.0, 0.0);
    for (major, bounds) in indptr.windows(2).enumerate() {
        let (mut slice_s, mut slice_w) = (0.0, 0.0);
        for k in bounds[0] as usize..bounds[1] as usize {
            let v = values[k].to_f64();
            slice_s += v;
            slice_w += v * minor_weight(indices[k] as usize);
        }
        s += slice_s;
        w += slice_w * major_weight(major);
    }
    (s, indices.len() as f64, w)
}

/// Per-gene sum and sum of squares (`GeneSums` in `benches/shared.py`): the `full_pass`
/// checksum `Σ_j s_j, Σ_j q_j, Σ_j (j mod 7 + 1) s_j`.
#[derive(Debug)]
pub struct GeneSums {
    /// Per gene, the sum and the sum of squares side by side: one cache line per update.
    sq: Vec<[f64; 2]>,
}

impl GeneSums {
    /// Zero sums for `n_vars` genes.
    pub fn new(n_vars: usize) -> Self {
        GeneSums {
            sq: vec![[0.0; 2]; n_vars],
        }
    }

    /// Adds every stored entry of a chunk of rows (columns are genes).
    pub fn add(&mut self, chunk: &Matrix) -> BenchResult<()> {
        if chunk.shape().1 != self.sq.len() {
            return Err(format!(
                "a chunk has {} columns, expected {}",
                chunk.shape().1,
                self.sq.len()
            )
            .into());
        }
        // CSR: a straight pass over the stored column indices and values, as numpy's bincount.
        if let Matrix::Sparse(s) = chunk {
            if s.format() == SparseFormat::Csr && self.add_csr(s.indices(), s.data(), 0..s.nnz()) {
                return Ok(());
            }
        }
        let m = sparse(chunk)?;
        let sq = &mut self.sq;
        let (indptr, indices) = (m.indptr(), m.indices());
        with_values!(m, values => {
            for (major, bounds) in indptr.windows(2).enumerate() {
                for k in bounds[0] as usize..bounds[1] as usize {
                    let j = match m.format() {
                        SparseFormat::Csr => indices[k] as usize,
                        SparseFormat::Csc => major,
                    };
                    let v = values[k].to_f64();
                    sq[j][0] += v;
                    sq[j][1] += v * v;
                }
            }
        });
        Ok(())
    }

    /// Adds the stored entries `range` of CSR arrays (columns are genes); `false` (nothing
    /// added) for a dtype other than f32, f64, i32 and i64 or non-contiguous data.
    pub fn add_csr(&mut self, indices: &[u32], data: &ArrayData, range: Range<usize>) -> bool {
        macro_rules! go {
            ($a:expr) => {{
                let Some(values) = $a.as_slice() else {
                    return false;
                };
                self.add_entries(&indices[range.clone()], &values[range]);
                true
            }};
        }
        match data {
            ArrayData::F32(a) => go!(a),
            ArrayData::F64(a) => go!(a),
            ArrayData::I32(a) => go!(a),
            ArrayData::I64(a) => go!(a),
            _ => false,
        }
    }

    /// The inner loop, four entries at a time (independent updates the CPU overlaps: about
    /// 1.5x faster than one at a time here).
    fn add_entries<T: Value>(&mut self, columns: &[u32], values: &[T]) {
        let sq = &mut self.sq[..];
        let mut add = |j: u32, v: T| {
            let v = v.to_f64();
            let e = &mut sq[j as usize];
            e[0] += v;
            e[1] += v * v;
        };
        let (js, vs) = (columns.chunks_exact(4), values.chunks_exact(4));
        let rest = js.remainder().iter().zip(vs.remainder());
        for (j, v) in js.zip(vs) {
            add(j[0], v[0]);
            add(j[1], v[1]);
            add(j[2], v[2]);
            add(j[3], v[3]);
        }
        for (&j, &v) in rest {
            add(j, v);
        }
    }

    /// The checksum token.
    pub fn checksum(&self) -> String {
        let weighted: f64 = self
            .sq
            .iter()
            .enumerate()
            .map(|(j, [s, _])| (j % 7 + 1) as f64 * s)
            .sum();
        let s: f64 = self.sq.iter().map(|e| e[0]).sum();
        let q: f64 = self.sq.iter().map(|e| e[1]).sum();
        fmt(&[s, q, weighted])
    }
}

/// `Σ v, count, Σ v · row_weight(row) · col_weight(col)` over stored entries (`EntrySums` in
/// `benches/peers.py`), rows and columns counted in the result matrix.
#[derive(Debug, Default)]
pub struct EntrySums {
    s: f64,
    n: f64,
    w: f64,
}

impl EntrySums {
    /// Adds every stored entry of `m`, with weights of its row and column positions.
    pub fn add(
        &mut self,
        m: &Matrix,
        row_weight: impl Fn(usize) -> f64,
        col_weight: impl Fn(usize) -> f64,
    ) -> BenchResult<()> {
        let x = sparse(m)?;
        let (indptr, indices) = (x.indptr(), x.indices());
        let (s, n, w) = with_values!(x, values => match x.format() {
            SparseFormat::Csr => weighted_sums(indptr, indices, values, row_weight, col_weight),
            SparseFormat::Csc => weighted_sums(indptr, indices, values, col_weight, row_weight),
        });
        self.s += s;
        self.n += n;
        self.w += w;
        Ok(())
    }

    /// The checksum token.
    pub fn checksum(&self) -> String {
        fmt(&[self.s, self.n, self.w])
    }
}

/// `k mod M + 1`, as a weight.
pub fn w_mod<const M: usize>(k: usize) -> f64 {
    (k % M + 1) as f64
}

/// `k + 1`, as a weight.
pub fn w_plus1(k: usize) -> f64 {
    (k + 1) as f64
}

/// What one `obs`/`var` column contributes to the `open_meta` checksum.
enum MetaColumn {
    /// The float64 sum of a numeric or boolean column.
    Numeric(f64),
    /// The number of distinct non-null values of a categorical or string column.
    Distinct(usize),
}

fn meta_column(name: &str, col: &Column) -> BenchResult<MetaColumn> {
    let distinct_strings = |a: &ArrayData, mask: Option<&[bool]>| -> BenchResult<MetaColumn> {
        let ArrayData::String(a) = a else {
            return Err(format!("column {name:?}: expected strings").into());
        };
        let set: HashSet<&str> = a
            .iter()
            .enumerate()
            .filter(|(i, _)| !mask.is_some_and(|m| m[*i]))
            .map(|(_, s)| s.as_str())
            .collect();
        Ok(MetaColumn::Distinct(set.len()))
    };
    let sum = |a: &ArrayData, mask: Option<&[bool]>| -> BenchResult<MetaColumn> {
        let v = a
            .to_f64()
            .ok_or_else(|| format!("column {name:?} is not numeric"))?;
        Ok(MetaColumn::Numeric(
            v.iter()
                .enumerate()
                .filter(|(i, _)| !mask.is_some_and(|m| m[*i]))
                .map(|(_, x)| x)
                .sum(),
        ))
    };
    Ok(match col {
        Column::Array(a) if a.dtype() == annpage::data::DType::String => distinct_strings(a, None)?,
        Column::Array(a) => sum(a, None)?,
        // pandas' nunique of a categorical: the categories in use (code -1 is missing).
        Column::Categorical(c) => {
            let mut used = vec![false; c.categories.len()];
            for &code in &c.codes {
                if let Ok(k) = usize::try_from(code) {
                    used[k] = true;
                }
            }
            MetaColumn::Distinct(used.iter().filter(|&&u| u).count())
        }
        Column::Nullable(n) => match n.kind() {
            NullableKind::String(_) => distinct_strings(n.values(), Some(n.mask()))?,
            NullableKind::Integer | NullableKind::Boolean => sum(n.values(), Some(n.mask()))?,
        },
    })
}

/// The names of a frame's index, as Python strings.
fn index_names(df: &DataFrame) -> Vec<CompactString> {
    match df.index_names() {
        Some(names) => names.to_vec(),
        None => df
            .index()
            .to_python_strings()
            .into_iter()
            .map(Into::into)
            .collect(),
    }
}

/// The `open_meta` checksum (`meta_checksum` in `benches/shared.py`): `n_obs, n_vars, number
/// of obs+var columns, Σ numeric and boolean columns, characters of the obs and var names,
/// Σ distinct non-null values of the other columns`.
pub fn meta_checksum(
    n_obs: usize,
    n_vars: usize,
    obs: &DataFrame,
    var: &DataFrame,
) -> BenchResult<String> {
    let (mut columns, mut num, mut distinct, mut chars) = (0usize, 0.0f64, 0usize, 0usize);
    for df in [obs, var] {
        for (name, col) in df.columns() {
            columns += 1;
            match meta_column(name, col)? {
                MetaColumn::Numeric(s) => num += s,
                MetaColumn::Distinct(d) => distinct += d,
            }
        }
        // Python's len(): characters (code points), not bytes.
        chars += index_names(df)
            .iter()
            .map(|s| s.chars().count())
            .sum::<usize>();
    }
    Ok(fmt(&[
        n_obs as f64,
        n_vars as f64,
        columns as f64,
        num,
        chars as f64,
        distinct as f64,
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use annpage::data::SparseMatrix;

    fn csr() -> Matrix {
        // [[1, 0, 2], [0, 3, 0]]
        Matrix::Sparse(
            SparseMatrix::new(
                SparseFormat::Csr,
                (2, 3),
                vec![0, 2, 3],
                vec![0, 2, 1],
                ArrayData::from(vec![1.0f32, 2.0, 3.0]),
            )
            .unwrap(),
        )
    }

    #[test]
    fn python_float_repr() {
        assert_eq!(
            fmt(&[80013096.0, 0.5, 80023592.7442286]),
            "80013096.0,0.5,80023592.7442286"
        );
    }

    #[test]
    fn gene_sums() {
        let mut g = GeneSums::new(3);
        g.add(&csr()).unwrap();
        // s = [1, 3, 2], q = [1, 9, 4]; weighted 1*1 + 2*3 + 3*2
        assert_eq!(g.checksum(), "6.0,14.0,13.0");
    }

    #[test]
    fn entry_sums_csr_and_csc() {
        let mut e = EntrySums::default();
        e.add(&csr(), w_mod::<7>, w_plus1).unwrap();
        // 1*1*1 + 2*1*3 + 3*2*2
        assert_eq!(e.checksum(), "6.0,3.0,19.0");
        let Matrix::Sparse(s) = csr() else {
            unreachable!()
        };
        let csc = Matrix::Sparse(s.transpose());
        let mut t = EntrySums::default();
        // The transpose: entry (i, j) of csr is (j, i) here.
        t.add(&csc, w_plus1, w_mod::<7>).unwrap();
        assert_eq!(t.checksum(), "6.0,3.0,19.0");
    }
}
