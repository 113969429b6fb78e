//! A gene-major (CSC) copy of a matrix, written out of core: the copy a server reads whole
//! gene columns from without a pass over every cell.

use std::path::Path;

use annpage_engine::data::{DType, DataFrame, Matrix, Primitive, SparseFormat, SparseMatrix};
use annpage_engine::file::stream::{write_file, MatrixSpec, Values};
use annpage_engine::format::{Encoding, WriteOptions};
use annpage_engine::paged::MatrixKind;
use annpage_engine::{Error, Result};

use super::slices::groups;
use super::{BackedAnnData, BackedMatrixView};

/// Rows read at once: about this many bytes of stored values.
const CHUNK_BYTES: usize = 16 << 20;

impl BackedAnnData {
    /// Writes `X` at this handle's selection as a CSC matrix (one gene's values stored
    /// together) to a new `.h5ad` file at `path` holding only `X` and the obs and var names,
    /// out of core: one pass counts each gene's values, then each pass gathers the genes whose
    /// values fit in `memory_bytes` (a gene larger than that is gathered alone). Memory: the
    /// cache budget, `memory_bytes` and one chunk of rows. Reading a gene from the copy reads
    /// that gene's values only, where a CSR `X` needs a pass over every cell.
    ///
    /// ```
    /// use annpage::backed::{read_h5ad_backed, BackedOptions, Mode};
    /// use annpage::{Selection, WriteOptions};
    /// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/pbmc_like_csr.h5ad");
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let copy = dir.path().join("genes.h5ad");
    /// let adata = read_h5ad_backed(path, Mode::Read, BackedOptions::default())?;
    /// adata.write_gene_major(&copy, 64 << 10, &WriteOptions::default())?; // many small passes
    /// let genes = read_h5ad_backed(&copy, Mode::Read, BackedOptions::default())?;
    /// let gene = Selection::names(["GENE7"]);
    /// assert_eq!(genes.x().unwrap().columns(&gene)?.to_dense()?, adata.x().unwrap().columns(&gene)?.to_dense()?);
    /// # Ok::<(), annpage::Error>(())
    /// ```
    pub fn write_gene_major(
        &self,
        path: impl AsRef<Path>,
        memory_bytes: usize,
        options: &WriteOptions,
    ) -> Result<()> {
        let path = path.as_ref();
        let x = self.x().ok_or_else(|| {
            Error::invalid("the file has no X to copy gene by gene").in_file(self.path())
        })?;
        let (obs, var) = (self.obs_names()?, self.var_names()?);
        let threads = self.shared.read.workers.threads();
        write_file(path, options, threads, |w| {
            w.set_encoding("/", Encoding::AnnData)?;
            w.write_dataframe("/", "obs", &DataFrame::from_index(obs))?;
            w.write_dataframe("/", "var", &DataFrame::from_index(var))?;
            let counts = gene_counts(&x)?;
            let spec = MatrixSpec {
                kind: MatrixKind::Sparse(SparseFormat::Csc),
                shape: x.shape(),
                dtype: x.dtype(),
                values: Values::Exactly(counts.iter().sum()),
            };
            let mut sink = w.matrix("/", "X", &spec)?;
            let per_value = (x.dtype().size() + 4) as u64;
            let costs: Vec<u64> = counts.iter().map(|n| n * per_value).collect();
            for genes in groups(&costs, memory_bytes as u64) {
                sink.push(&Matrix::Sparse(gather(&x, genes, &counts)?))?;
            }
            sink.check_complete()?;
            sink.finish()
        })
    }
}

/// Rows a scan reads at once.
fn chunk_rows(x: &BackedMatrixView) -> Result<usize> {
    let (rows, cols) = x.shape();
    let per_row = match x.kind() {
        MatrixKind::Dense => cols as u64,
        MatrixKind::Sparse(_) => x.stored_values()? / rows.max(1) as u64 + 1,
    } * (x.dtype().size() as u64 + 4);
    Ok((CHUNK_BYTES as u64 / per_row.max(1)).clamp(1, rows.max(1) as u64) as usize)
}

/// How many values each gene stores.
fn gene_counts(x: &BackedMatrixView) -> Result<Vec<u64>> {
    let mut counts = vec![0u64; x.shape().1];
    let mut chunks = x.scan(chunk_rows(x)?)?;
    while let Some(chunk) = chunks.next() {
        let s = chunk?.1.into_sparse(SparseFormat::Csr)?;
        for &c in s.indices() {
            counts[c as usize] += 1;
        }
        chunks.recycle(Matrix::Sparse(s));
    }
    Ok(counts)
}

/// The genes `genes` of `x` as a CSC matrix (all cells × those genes), in one scan.
fn gather(
    x: &BackedMatrixView,
    genes: std::ops::Range<usize>,
    counts: &[u64],
) -> Result<SparseMatrix> {
    macro_rules! typed {
        ($($v:ident => $t:ty),*) => {
            match x.dtype() {
                $(DType::$v => gather_typed::<$t>(x, genes, counts),)*
                DType::String => Err(Error::unsupported("a matrix of strings")),
            }
        };
    }
    typed!(Bool => bool, I8 => i8, I16 => i16, I32 => i32, I64 => i64, U8 => u8, U16 => u16,
        U32 => u32, U64 => u64, F16 => half::f16, F32 => f32, F64 => f64)
}

fn gather_typed<T: Primitive + Copy + Default>(
    x: &BackedMatrixView,
    genes: std::ops::Range<usize>,
    counts: &[u64],
) -> Result<SparseMatrix> {
    let n_obs = x.shape().0;
    let mut indptr = Vec::with_capacity(genes.len() + 1);
    indptr.push(0u64);
    for g in genes.clone() {
        indptr.push(indptr[indptr.len() - 1] + counts[g]);
    }
    let total = indptr[genes.len()] as usize;
    let mut cursor: Vec<u64> = indptr[..genes.len()].to_vec();
    let mut cells = vec![0u32; total];
    let mut values = vec![T::default(); total];
    let mut chunks = x.scan(chunk_rows(x)?)?;
    while let Some(chunk) = chunks.next() {
        let (rows, chunk) = chunk?;
        let s = chunk.into_sparse(SparseFormat::Csr)?;
        let data = s
            .data()
            .as_array1::<T>()
            .ok_or_else(|| Error::malformed("a chunk of another dtype"))?;
        let (ip, idx) = (s.indptr(), s.indices());
        for (r, w) in ip.windows(2).enumerate() {
            let cell = u32::try_from(rows.start + r)
                .map_err(|_| Error::unsupported("a gene-major copy of more than 2^32 cells"))?;
            for p in w[0] as usize..w[1] as usize {
                let g = idx[p] as usize;
                if genes.contains(&g) {
                    let at = &mut cursor[g - genes.start];
                    // The counting pass saw the same values: more now means the file changed.
                    if *at >= indptr[g - genes.start + 1] {
                        return Err(Error::malformed("X changed while its genes were copied"));
                    }
                    cells[*at as usize] = cell;
                    values[*at as usize] = data[p];
                    *at += 1;
                }
            }
        }
        chunks.recycle(Matrix::Sparse(s));
    }
    // As many values as counted for every gene, or the file changed between the passes.
    if cursor.iter().zip(&indptr[1..]).any(|(at, end)| at != end) {
        return Err(Error::malformed("X changed while its genes were copied"));
    }
    SparseMatrix::new(
        SparseFormat::Csc,
        (n_obs, genes.len()),
        indptr,
        cells,
        T::wrap(ndarray::Array1::from(values).into_dyn()),
    )
}
