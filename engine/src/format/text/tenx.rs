//! 10x Genomics outputs, read as scanpy's `read_10x_mtx` and `read_10x_h5` read them.
//!
//! Both return the elements as stored: the API then makes names unique and keeps only gene
//! expression features, as scanpy does by default.

use std::path::{Path, PathBuf};

use crate::data::{ArrayData, Column, DataFrame, Matrix, SparseFormat, SparseMatrix};
use crate::error::{Error, Result, ResultExt};
use crate::format::AnnDataElements;
use crate::h5;

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
        let missing = |what: &str| {
            Error::invalid(format!("no {prefix}{what}[.gz] in the directory")).in_file(dir)
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
    let features = read_records(&files.features, b'\t')?;
    let columns = if files.legacy { 2 } else { 3 };
    check_records(&files.features, &features, n_features, columns, "features")?;
    let barcodes = read_records(&files.barcodes, b',')?;
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
    let obs = DataFrame::from_index(barcodes.into_iter().map(|mut r| r.swap_remove(0)).collect());
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
    let file = h5::open_read(path).in_file(path)?;
    let read = || -> Result<AnnDataElements> {
        if file.link_exists("matrix") {
            read_v3(&file.group("matrix")?)
        } else {
            let genomes = file.member_names()?;
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
            read_v2(&file.group(&genome)?).in_element(format!("/{genome}"))
        }
    };
    read().in_file(path)
}

fn dataset(group: &hdf5::Group, name: &str) -> Result<ArrayData> {
    let ds = group
        .dataset(name)
        .map_err(|_| Error::malformed(format!("missing dataset '{name}'")))?;
    h5::read::read_array(&ds).in_element(format!("{}/{name}", group.name()))
}

fn strings(group: &hdf5::Group, name: &str) -> Result<Vec<String>> {
    Ok(dataset(group, name)?.to_python_strings())
}

/// The counts of a 10x group: its features × barcodes CSC is the barcodes × features CSR.
fn counts(group: &hdf5::Group) -> Result<SparseMatrix> {
    let shape = h5::read::integers_as_u64(&dataset(group, "shape")?)?;
    let &[n_features, n_barcodes] = shape.as_slice() else {
        return Err(Error::malformed("'shape' must hold two integers"));
    };
    let indptr = h5::read::integers_as_u64(&dataset(group, "indptr")?)?;
    let indices = h5::read::integers_as_u64(&dataset(group, "indices")?)?;
    let indices = indices
        .into_iter()
        .map(|i| u32::try_from(i).map_err(|_| Error::malformed(format!("index {i} too large"))))
        .collect::<Result<Vec<u32>>>()?;
    let data = match dataset(group, "data")? {
        ArrayData::I32(a) => ArrayData::F32(a.mapv(|v| v as f32)),
        other => other,
    };
    let shape = (usize::try_from(n_barcodes), usize::try_from(n_features));
    let (Ok(rows), Ok(cols)) = shape else {
        return Err(Error::malformed("'shape' does not fit this machine"));
    };
    SparseMatrix::new(SparseFormat::Csr, (rows, cols), indptr, indices, data)
}

fn with_counts(x: SparseMatrix, obs: DataFrame, var: DataFrame) -> Result<AnnDataElements> {
    let (rows, cols) = x.shape();
    if obs.nrows() != rows || var.nrows() != cols {
        return Err(Error::shape(format!(
            "{} barcodes and {} features for a {rows} × {cols} matrix",
            obs.nrows(),
            var.nrows()
        )));
    }
    let mut elems = AnnDataElements::empty(rows, cols);
    elems.x = Some(Matrix::Sparse(x));
    elems.obs = obs;
    elems.var = var;
    Ok(elems)
}

fn read_v3(group: &hdf5::Group) -> Result<AnnDataElements> {
    let x = counts(group)?;
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
    let features = group
        .group("features")
        .map_err(|_| Error::malformed("10x h5 has no features group"))?;
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
    for name in features.member_names()? {
        if skip.contains(&name.as_str()) || features.dataset(&name).is_err() {
            continue;
        }
        let column = match dataset(&features, &name)? {
            ArrayData::Bool(a) => Column::Array(ArrayData::Bool(a)),
            other => Column::Array(ArrayData::from(other.to_python_strings())),
        };
        var.insert(name, column)?;
    }
    with_counts(x, obs, var)
}

fn read_v2(group: &hdf5::Group) -> Result<AnnDataElements> {
    let x = counts(group)?;
    let obs = DataFrame::from_index(strings(group, "barcodes")?);
    let mut var = DataFrame::from_index(strings(group, "gene_names")?);
    var.insert(
        "gene_ids",
        Column::Array(ArrayData::from(strings(group, "genes")?)),
    )?;
    with_counts(x, obs, var)
}
