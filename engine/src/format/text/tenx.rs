//! 10x Genomics outputs, read as scanpy's `read_10x_mtx` and `read_10x_h5` read them.
//!
//! Both return the elements as stored: the API then makes names unique and keeps only gene
//! expression features, as scanpy does by default.

use std::path::{Path, PathBuf};

use crate::data::{ArrayData, Column, DType, DataFrame, Matrix, SparseFormat, SparseMatrix};
use crate::error::{Error, Result, ResultExt};
use crate::format::AnnDataElements;
use crate::storage::h5;

use super::{mtx, read_records};

/// Which features column names the genes of a 10x directory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VarNames {
    /// The second column (symbols); the first becomes `var["gene_ids"]`. scanpy's default.
    #[default]
    GeneSymbols,
    /// The first column (Ensembl ids); the second becomes `var["gene_symbols"]`.
    GeneIds,
}

/// The files of a 10x matrix directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenxFiles {
    /// `matrix.mtx[.gz]`: features × barcodes.
    pub matrix: PathBuf,
    /// `features.tsv[.gz]` (Cell Ranger v3+) or `genes.tsv` (v2).
    pub features: PathBuf,
    /// `barcodes.tsv[.gz]`.
    pub barcodes: PathBuf,
    /// Whether the directory has the v2 layout (`genes.tsv`, no feature types).
    pub legacy: bool,
}

impl TenxFiles {
    /// Finds the files of `dir` whose names start with `prefix` (plain or gzipped).
    pub fn find(dir: &Path, prefix: &str) -> Result<TenxFiles> {
        let pick = |stem: &str| -> Option<PathBuf> {
            [format!("{prefix}{stem}.gz"), format!("{prefix}{stem}")]
                .into_iter()
                .map(|name| dir.join(name))
                .find(|p| p.is_file())
        };
        if let Err(e) = std::fs::read_dir(dir) {
            return Err(Error::Io(e).in_file(dir));
        }
        // A file missing is not found, as scanpy (and Python's FileNotFoundError) says.
        let missing = |what: &str| {
            let why = format!("no {prefix}{what}[.gz] in the directory");
            Error::Io(std::io::Error::new(std::io::ErrorKind::NotFound, why)).in_file(dir)
        };
        let genes = pick("genes.tsv");
        let legacy = genes.is_some();
        Ok(TenxFiles {
            matrix: pick("matrix.mtx").ok_or_else(|| missing("matrix.mtx"))?,
            features: genes
                .or_else(|| pick("features.tsv"))
                .ok_or_else(|| missing("features.tsv"))?,
            barcodes: pick("barcodes.tsv").ok_or_else(|| missing("barcodes.tsv"))?,
            legacy,
        })
    }
}

/// Reads a 10x matrix directory: X is the transposed matrix (cells × genes, CSC of float32),
/// obs names the barcodes, var names the chosen features column, var columns `gene_ids` (or
/// `gene_symbols`) and, for v3 directories, `feature_types`. Names are left as stored.
///
/// ```no_run
/// use annpage_engine::format::text::tenx::{read_10x_mtx, TenxFiles, VarNames};
/// let files = TenxFiles::find("filtered_feature_bc_matrix".as_ref(), "")?;
/// let elems = read_10x_mtx(&files, VarNames::GeneSymbols)?;
/// # Ok::<(), annpage_engine::Error>(())
/// ```
pub fn read_10x_mtx(files: &TenxFiles, var_names: VarNames) -> Result<AnnDataElements> {
    let m = mtx::read_mtx(&files.matrix, crate::data::DType::F32)?;
    let (n_features, n_barcodes) = m.shape();
    let features = read_records(&files.features, b'\t', n_features)?;
    let columns = if files.legacy { 2 } else { 3 };
    check_records(&files.features, &features, n_features, columns, "features")?;
    let barcodes = read_records(&files.barcodes, b',', n_barcodes)?;
    check_records(&files.barcodes, &barcodes, n_barcodes, 1, "barcodes")?;

    let column = |i: usize| -> Vec<String> { features.iter().map(|r| r[i].clone()).collect() };
    let (names, other, other_name) = match var_names {
        VarNames::GeneSymbols => (column(1), column(0), "gene_ids"),
        VarNames::GeneIds => (column(0), column(1), "gene_symbols"),
    };
    let mut var = DataFrame::from_index(names);
    var.insert(other_name, Column::Array(ArrayData::from(other)))?;
    if !files.legacy {
        var.insert("feature_types", Column::Array(ArrayData::from(column(2))))?;
    }
    let obs = DataFrame::from_index(barcodes.into_iter().map(|mut r| r.swap_remove(0)));
    let mut elems = AnnDataElements::empty(n_barcodes, n_features);
    elems.obs = obs;
    elems.var = var;
    elems.x = Some(Matrix::Sparse(m.transpose()));
    Ok(elems)
}

fn check_records(
    path: &Path,
    records: &[Vec<String>],
    expected: usize,
    columns: usize,
    what: &str,
) -> Result<()> {
    if records.len() != expected {
        return Err(Error::malformed(format!(
            "{} {what} for a matrix with {expected}",
            records.len()
        ))
        .in_file(path));
    }
    if let Some(i) = records.iter().position(|r| r.len() < columns) {
        return Err(Error::malformed(format!(
            "record {} has {} columns, expected at least {columns}",
            i + 1,
            records[i].len()
        ))
        .in_file(path));
    }
    Ok(())
}

/// Reads a 10x Genomics HDF5 matrix (`filtered_feature_bc_matrix.h5`): the Cell Ranger v3+
/// `matrix` group, or for v2 files the group of `genome` (needed when there are several).
/// X is CSR, cells × features, int32 counts as float32; var holds `gene_ids` (and `probe_ids`
/// for probe matrices), `feature_types` and the other feature datasets (such as `genome`) as
/// strings or bools; obs holds `filtered_barcodes` when the file has it.
///
/// ```no_run
/// let elems = annpage_engine::format::text::tenx::read_10x_h5("sample.h5".as_ref(), None)?;
/// # Ok::<(), annpage_engine::Error>(())
/// ```
pub fn read_10x_h5(path: &Path, genome: Option<&str>) -> Result<AnnDataElements> {
    read_h5(path, genome, true)
}

/// The file's annotations, and its counts as X with `with_counts`.
fn read_h5(path: &Path, genome: Option<&str>, with_counts: bool) -> Result<AnnDataElements> {
    let file = h5::open_read(path).in_file(path)?;
    let read = || -> Result<AnnDataElements> {
        let g = counts_group(&file, genome)?;
        let (n_features, n_barcodes) = counts_shape(&g).in_element(g.name())?;
        let (obs, var) = if g.name() == "/matrix" {
            annotations_v3(&g)?
        } else {
            annotations_v2(&g).in_element(g.name())?
        };
        if obs.nrows() != n_barcodes || var.nrows() != n_features {
            return Err(Error::shape(format!(
                "{} barcodes and {} features for a {n_barcodes} × {n_features} matrix",
                obs.nrows(),
                var.nrows()
            )));
        }
        let mut elems = AnnDataElements::empty(n_barcodes, n_features);
        elems.obs = obs;
        elems.var = var;
        if with_counts {
            elems.x = Some(Matrix::Sparse(counts(&g).in_element(g.name())?));
        }
        Ok(elems)
    };
    read().in_file(path)
}

/// The group holding the counts: v3's `matrix`, or the v2 group of `genome` (which must be
/// named when there are several).
fn counts_group(file: &hdf5::File, genome: Option<&str>) -> Result<hdf5::Group> {
    if file.link_exists("matrix") {
        return h5::open_group(file, "matrix");
    }
    let genomes = crate::storage::Group::member_names(&**file)?;
    let genome = match genome {
        Some(g) if genomes.iter().any(|n| n == g) => g.to_owned(),
        Some(g) => {
            return Err(Error::invalid(format!(
                "no genome '{g}'; the file has {genomes:?}"
            )))
        }
        None if genomes.len() == 1 => genomes[0].clone(),
        None => {
            return Err(Error::invalid(format!(
                "a v2 file with several genomes {genomes:?}: name one"
            )))
        }
    };
    h5::open_group(file, &genome)
}

/// `(features, barcodes)` from the group's `shape`.
fn counts_shape(group: &hdf5::Group) -> Result<(usize, usize)> {
    let shape = crate::data::integers_as_u64(&dataset(group, "shape")?)?;
    let &[n_features, n_barcodes] = shape.as_slice() else {
        return Err(Error::malformed("'shape' must hold two integers"));
    };
    match (usize::try_from(n_features), usize::try_from(n_barcodes)) {
        (Ok(f), Ok(b)) => Ok((f, b)),
        _ => Err(Error::malformed("'shape' does not fit this machine")),
    }
}

fn dataset(group: &hdf5::Group, name: &str) -> Result<ArrayData> {
    if !group.link_exists(name) {
        return Err(Error::malformed(format!("missing dataset '{name}'")));
    }
    let ds = h5::open_dataset(group, name)?;
    h5::read::read_array(&ds).in_element(format!("{}/{name}", group.name()))
}

fn strings(group: &hdf5::Group, name: &str) -> Result<Vec<String>> {
    Ok(dataset(group, name)?.to_python_strings())
}

/// The counts of a 10x group: its features × barcodes CSC is the barcodes × features CSR.
fn counts(group: &hdf5::Group) -> Result<SparseMatrix> {
    let (n_features, n_barcodes) = counts_shape(group)?;
    let indptr = crate::data::integers_as_u64(&dataset(group, "indptr")?)?;
    let indices = crate::data::integers_as_u64(&dataset(group, "indices")?)?;
    let indices = indices
        .into_iter()
        .map(|i| u32::try_from(i).map_err(|_| Error::malformed(format!("index {i} too large"))))
        .collect::<Result<Vec<u32>>>()?;
    let data = match dataset(group, "data")? {
        ArrayData::I32(a) => ArrayData::F32(a.mapv(|v| v as f32)),
        other => other,
    };
    SparseMatrix::new(
        SparseFormat::Csr,
        (n_barcodes, n_features),
        indptr,
        indices,
        data,
    )
}

fn annotations_v3(group: &hdf5::Group) -> Result<(DataFrame, DataFrame)> {
    let mut obs = DataFrame::from_index(strings(group, "barcodes")?);
    if group.link_exists("filtered_barcodes") {
        let flags = dataset(group, "filtered_barcodes")?;
        let flags: Vec<bool> = flags
            .to_f64()
            .ok_or_else(|| Error::malformed("'filtered_barcodes' must be numbers or bools"))?
            .iter()
            .map(|&v| v != 0.0)
            .collect();
        obs.insert("filtered_barcodes", Column::Array(ArrayData::from(flags)))?;
    }
    if !group.link_exists("features") {
        return Err(Error::malformed("10x h5 has no features group"));
    }
    let features = h5::open_group(group, "features")?;
    let mut var = DataFrame::from_index(strings(&features, "name")?);
    let text = |name: &str| -> Result<Column> {
        Ok(Column::Array(ArrayData::from(strings(&features, name)?)))
    };
    if features.link_exists("gene_id") {
        var.insert("gene_ids", text("gene_id")?)?;
        var.insert("probe_ids", text("id")?)?;
    } else {
        var.insert("gene_ids", text("id")?)?;
    }
    var.insert("feature_types", text("feature_type")?)?;
    let skip = ["name", "feature_type", "id", "gene_id", "_all_tag_keys"];
    for name in crate::storage::Group::member_names(&features)? {
        let kind = crate::storage::Group::member_kind(&features, &name)?;
        if skip.contains(&name.as_str()) || kind != Some(crate::storage::MemberKind::Array) {
            continue;
        }
        let column = match dataset(&features, &name)? {
            ArrayData::Bool(a) => Column::Array(ArrayData::Bool(a)),
            other => Column::Array(ArrayData::from(other.to_python_strings())),
        };
        var.insert(name, column)?;
    }
    Ok((obs, var))
}

fn annotations_v2(group: &hdf5::Group) -> Result<(DataFrame, DataFrame)> {
    let obs = DataFrame::from_index(strings(group, "barcodes")?);
    let mut var = DataFrame::from_index(strings(group, "gene_names")?);
    var.insert(
        "gene_ids",
        Column::Array(ArrayData::from(strings(group, "genes")?)),
    )?;
    Ok((obs, var))
}

/// The annotations of a 10x HDF5 matrix without its counts (as [`read_10x_h5`] reads them),
/// for [`write_10x_h5_counts`], which streams the counts.
pub fn read_10x_h5_annotations(path: &Path, genome: Option<&str>) -> Result<AnnDataElements> {
    read_h5(path, genome, false)
}

/// Writes the counts of the 10x HDF5 matrix `path` as the CSR `X` of `root` (cells × the
/// features `keep` selects, int32 counts as float32), a block of about 260,000 values at a
/// time: memory holds the offsets and one block, not the matrix.
pub fn write_10x_h5_counts(
    path: &Path,
    genome: Option<&str>,
    keep: &[bool],
    root: &dyn crate::storage::GroupWriter,
    options: &crate::format::WriteOptions,
) -> Result<()> {
    use crate::format::write::CsrAppender;
    const BLOCK: u64 = 1 << 18;

    let file = h5::open_read(path).in_file(path)?;
    let g = counts_group(&file, genome).in_file(path)?;
    let (n_features, n_barcodes) = counts_shape(&g).in_file(path)?;
    if keep.len() != n_features {
        return Err(Error::invalid(format!(
            "{} features kept of {n_features}",
            keep.len()
        )));
    }
    let mut next = 0u32;
    let remap: Vec<Option<u32>> = keep
        .iter()
        .map(|&k| {
            k.then(|| {
                next += 1;
                next - 1
            })
        })
        .collect();
    let n_kept = next as usize;
    let indptr = dataset(&g, "indptr")
        .and_then(|a| crate::data::integers_as_u64(&a))
        .map_err(|e| e.in_element(format!("{}/indptr", g.name())).in_file(path))?;
    let open = |name: &str| -> Result<hdf5::Dataset> {
        if !g.link_exists(name) {
            return Err(Error::malformed(format!("missing dataset '{name}'")).in_file(path));
        }
        h5::open_dataset(&g, name).in_file(path)
    };
    let (data_ds, indices_ds) = (open("data")?, open("indices")?);
    for ds in [&data_ds, &indices_ds] {
        // Their values are read a block at a time: what the shapes claim is checked first.
        h5::claim::check_claim(ds).in_file(path)?;
    }
    for (ds, name) in [(&data_ds, "data"), (&indices_ds, "indices")] {
        if ds.ndim() != 1 {
            let e = Error::shape(format!("a {}-d array where 1-d values belong", ds.ndim()));
            return Err(e.in_element(format!("{}/{name}", g.name())).in_file(path));
        }
    }
    let nnz = data_ds.size() as u64;
    if indptr.len() != n_barcodes + 1
        || indptr.first() != Some(&0)
        || indptr.last() != Some(&nnz)
        || indptr.windows(2).any(|w| w[0] > w[1])
        || indices_ds.size() as u64 != nnz
    {
        return Err(Error::malformed(format!(
            "indptr, indices and data do not describe {n_barcodes} barcodes of {nnz} values"
        ))
        .in_element(g.name())
        .in_file(path));
    }
    let dtype = match h5::read::stored_type(&data_ds).in_file(path)?.dtype() {
        Some(DType::I32) => DType::F32,
        Some(d) if d.is_integer() || d.is_float() => d,
        _ => return Err(Error::unsupported("counts that are not numbers").in_file(path)),
    };
    let mut out = CsrAppender::create(
        root,
        "X",
        (n_barcodes, n_kept),
        dtype,
        nnz as usize,
        options,
    )?;
    let mut row = 0usize;
    while row < n_barcodes {
        // Rows whose values make about a block (at least one row).
        let start = indptr[row];
        let mut end_row = row + 1;
        while end_row < n_barcodes && indptr[end_row + 1] - start <= BLOCK {
            end_row += 1;
        }
        let (lo, hi) = (start as usize, indptr[end_row] as usize);
        let in_input =
            |e: Error, name: &str| e.in_element(format!("{}/{name}", g.name())).in_file(path);
        let indices = read_range(&indices_ds, lo, hi)
            .and_then(|a| crate::data::integers_as_u64(&a))
            .map_err(|e| in_input(e, "indices"))?;
        // The positions in the block of the values kept, their new columns and row ends.
        let mut kept = Vec::with_capacity(hi - lo);
        let mut columns = Vec::with_capacity(hi - lo);
        let mut row_ends = Vec::with_capacity(end_row - row);
        for r in row..end_row {
            let span = (indptr[r] - start) as usize..(indptr[r + 1] - start) as usize;
            for (k, &index) in span.clone().zip(&indices[span]) {
                let j = usize::try_from(index)
                    .ok()
                    .filter(|&j| j < n_features)
                    .ok_or_else(|| {
                        Error::malformed(format!("feature index {index} past {n_features}"))
                            .in_element(g.name())
                            .in_file(path)
                    })?;
                if let Some(new) = remap[j] {
                    kept.push(k);
                    columns.push(new);
                }
            }
            row_ends.push(columns.len() as u64);
        }
        let data = read_range(&data_ds, lo, hi).map_err(|e| in_input(e, "data"))?;
        let values = match data.select(0, &kept) {
            ArrayData::I32(v) => ArrayData::F32(v.mapv(|c| c as f32)),
            other => other,
        };
        out.push(&values, &columns, &row_ends)?;
        row = end_row;
    }
    Ok(())
}

/// Values `lo..hi` of a 1-d numeric dataset.
fn read_range(ds: &hdf5::Dataset, lo: usize, hi: usize) -> Result<ArrayData> {
    macro_rules! read {
        ($t:ty) => {
            ArrayData::from(ds.read_slice_1d::<$t, _>(lo..hi)?.to_vec())
        };
    }
    Ok(match h5::read::stored_type(ds)?.dtype() {
        Some(DType::I8) => read!(i8),
        Some(DType::I16) => read!(i16),
        Some(DType::I32) => read!(i32),
        Some(DType::I64) => read!(i64),
        Some(DType::U8) => read!(u8),
        Some(DType::U16) => read!(u16),
        Some(DType::U32) => read!(u32),
        Some(DType::U64) => read!(u64),
        Some(DType::F16) => read!(half::f16),
        Some(DType::F32) => read!(f32),
        Some(DType::F64) => read!(f64),
        _ => return Err(Error::unsupported("a matrix dataset that is not numbers")),
    })
}
