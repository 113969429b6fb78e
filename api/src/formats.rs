//! Formats besides `.h5ad`: Matrix Market, 10x Genomics directories and HDF5 files, CSV/TSV
//! tables, read with the rules of anndata's and scanpy's readers, and the [`FileFormat`] a path
//! names.

use std::path::Path;

use annpage_engine::data::{ArrayData, Column, DType};
use annpage_engine::error::ResultExt;
use annpage_engine::format::loom;
use annpage_engine::format::text::{csv, mtx, strip_compression, tenx};
use annpage_engine::{Error, Result};

use crate::{AnnData, Selection};

pub use annpage_engine::format::loom::LoomOptions;
pub use annpage_engine::format::text::csv::CsvOptions;
pub use annpage_engine::format::text::tenx::VarNames;

/// Reads a Matrix Market file (`.mtx`, `.mtx.gz`) as `anndata.read_mtx(path, dtype)` does: X a
/// canonical CSR matrix of `dtype` (anndata's default is `DType::F32`), obs and var named
/// `0, 1, …`, nothing else.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("m.mtx");
/// std::fs::write(&path, "%%MatrixMarket matrix coordinate real general\n2 3 1\n2 3 0.5\n")?;
/// let adata = annpage::read_mtx(&path, annpage::data::DType::F32)?;
/// assert_eq!(adata.shape(), (2, 3));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_mtx(path: impl AsRef<Path>, dtype: DType) -> Result<AnnData> {
    let x = mtx::read_mtx(path.as_ref(), dtype)?;
    let mut adata = AnnData::new(x.shape().0, x.shape().1);
    adata.set_x(Some(annpage_engine::data::Matrix::Sparse(x)))?;
    Ok(adata)
}

/// Converts a Matrix Market file to `.h5ad` (or a Zarr store, as `write.store` says) as
/// [`read_mtx`] then [`AnnData::write_h5ad`] would. A `coordinate general` file whose entries come row by row (as scipy's `mmwrite`
/// writes a CSR matrix) is streamed a block of about a million values at a time; any other
/// is read whole first.
///
/// ```no_run
/// use annpage::data::DType;
/// annpage::convert_mtx("counts.mtx.gz", "counts.h5ad", DType::F32, &Default::default())?;
/// # Ok::<(), annpage::Error>(())
/// ```
pub fn convert_mtx(
    path: impl AsRef<Path>,
    out: impl AsRef<Path>,
    dtype: DType,
    write: &annpage_engine::format::WriteOptions,
) -> Result<()> {
    let (path, out) = (path.as_ref(), out.as_ref());
    let mut lines = annpage_engine::format::text::Lines::open(path)?;
    let header = mtx::read_header(&mut lines)?;
    drop(lines);
    let adata = AnnData::new(header.shape.0, header.shape.1);
    let streamed = std::cell::Cell::new(true);
    let result = write_streaming(out, &adata, write, |root, w| {
        if mtx::write_rows_sorted(path, dtype, root, w).in_element("/X")? {
            Ok(())
        } else {
            streamed.set(false);
            Err(Error::unsupported("not in row order"))
        }
    });
    match result {
        Err(_) if !streamed.get() => {
            annpage_engine::file::stream::write(out, read_mtx(path, dtype)?.elements(), write)
        }
        other => other,
    }
}

/// Writes `adata`, whose streamed matrices it leaves out, to `out` in the store `write.store`
/// names; then `matrices` writes those into the root (`X`) and its `layers` group.
fn write_streaming(
    out: &Path,
    adata: &AnnData,
    write: &annpage_engine::format::WriteOptions,
    matrices: impl FnOnce(
        &dyn annpage_engine::storage::GroupWriter,
        &annpage_engine::format::WriteOptions,
    ) -> Result<()>,
) -> Result<()> {
    annpage_engine::file::stream::write_file(out, write, 1, |w| {
        w.write_all(adata.elements())?;
        matrices(w.root(), w.options())
    })
}

/// Options of [`read_10x_mtx`], scanpy's `read_10x_mtx` arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenxMtxOptions {
    /// Which features column names the genes (scanpy: `var_names`).
    pub var_names: VarNames,
    /// With [`VarNames::GeneSymbols`], number repeated symbols `name-1`, `name-2`, …
    pub make_unique: bool,
    /// Keep only `Gene Expression` features (v3 directories).
    pub gex_only: bool,
    /// What comes before `matrix.mtx`, `features.tsv`, `barcodes.tsv` in the file names.
    pub prefix: String,
}

impl Default for TenxMtxOptions {
    fn default() -> Self {
        TenxMtxOptions {
            var_names: VarNames::GeneSymbols,
            make_unique: true,
            gex_only: true,
            prefix: String::new(),
        }
    }
}

/// Reads a 10x Genomics matrix directory (`matrix.mtx[.gz]`, `features.tsv[.gz]` or v2's
/// `genes.tsv`, `barcodes.tsv[.gz]`) as `scanpy.read_10x_mtx` does: cells × genes, X a CSC
/// matrix of float32 counts, obs named by barcode, var by gene symbol (made unique) with
/// `gene_ids` and, for v3, `feature_types`.
///
/// ```no_run
/// let adata = annpage::read_10x_mtx("filtered_feature_bc_matrix", &Default::default())?;
/// # Ok::<(), annpage::Error>(())
/// ```
pub fn read_10x_mtx(dir: impl AsRef<Path>, options: &TenxMtxOptions) -> Result<AnnData> {
    let dir = dir.as_ref();
    let files = tenx::TenxFiles::find(dir, &options.prefix)?;
    let elems = tenx::read_10x_mtx(&files, options.var_names)?;
    let mut adata = AnnData::from_elements(elems).in_file(dir)?;
    if options.make_unique && options.var_names == VarNames::GeneSymbols {
        adata.var_names_make_unique("-")?;
    }
    if options.gex_only && !files.legacy {
        adata = keep_vars_where(&adata, "feature_types", |v| v == "Gene Expression")?;
    }
    Ok(adata)
}

/// Options of [`read_10x_h5`], scanpy's `read_10x_h5` arguments (default: every genome,
/// gene expression only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenxH5Options {
    /// Keep the features of this genome (v3), or read this genome's group (v2; needed when the
    /// file has several).
    pub genome: Option<String>,
    /// Keep only `Gene Expression` features (v3 files).
    pub gex_only: bool,
}

impl Default for TenxH5Options {
    fn default() -> Self {
        TenxH5Options {
            genome: None,
            gex_only: true,
        }
    }
}

/// Reads a 10x Genomics HDF5 matrix (`filtered_feature_bc_matrix.h5`, Cell Ranger v2 or v3+)
/// as `scanpy.read_10x_h5` does: cells × features, X a CSR matrix (int32 counts as float32),
/// obs named by barcode, var by feature name (as stored: not made unique) with `gene_ids`,
/// `feature_types` and the file's other feature annotations; by default only gene expression
/// features are kept, as scanpy keeps them.
///
/// ```no_run
/// use annpage::TenxH5Options;
/// let adata = annpage::read_10x_h5("sample.h5", &TenxH5Options::default())?;
/// # Ok::<(), annpage::Error>(())
/// ```
pub fn read_10x_h5(path: impl AsRef<Path>, options: &TenxH5Options) -> Result<AnnData> {
    let path = path.as_ref();
    let elems = tenx::read_10x_h5(path, options.genome.as_deref())?;
    let adata = AnnData::from_elements(elems).in_file(path)?;
    match feature_mask(&adata, options).in_file(path)? {
        Some(keep) => adata.subset(&Selection::All, &Selection::Mask(keep)),
        None => Ok(adata),
    }
}

/// Converts a 10x Genomics HDF5 matrix to `.h5ad` (or a Zarr store, as `write.store` says) as
/// [`read_10x_h5`] then [`AnnData::write_h5ad`] would, streaming the counts a block at a time: memory holds the
/// annotations, the matrix's offsets and one block of about 260,000 values.
///
/// ```no_run
/// use annpage::{convert_10x_h5, TenxH5Options, WriteOptions};
/// convert_10x_h5("sample.h5", "sample.h5ad", &TenxH5Options::default(), &WriteOptions::default())?;
/// # Ok::<(), annpage::Error>(())
/// ```
pub fn convert_10x_h5(
    path: impl AsRef<Path>,
    out: impl AsRef<Path>,
    options: &TenxH5Options,
    write: &annpage_engine::format::WriteOptions,
) -> Result<()> {
    let path = path.as_ref();
    let genome = options.genome.as_deref();
    let elems = tenx::read_10x_h5_annotations(path, genome)?;
    let mut adata = AnnData::from_elements(elems).in_file(path)?;
    let keep = match feature_mask(&adata, options).in_file(path)? {
        Some(keep) => {
            adata = adata.subset(&Selection::All, &Selection::Mask(keep.clone()))?;
            keep
        }
        None => vec![true; adata.n_vars()],
    };
    write_streaming(out.as_ref(), &adata, write, |root, w| {
        tenx::write_10x_h5_counts(path, genome, &keep, root, w).in_element("/X")
    })
}

/// The features scanpy keeps in a v3 file: of `genome`, gene expression only with `gex_only`;
/// `None` when every feature is kept (v2 files, no filter).
fn feature_mask(adata: &AnnData, options: &TenxH5Options) -> Result<Option<Vec<bool>>> {
    if adata.var().column("feature_types").is_none() {
        return Ok(None);
    }
    let mut keep = vec![true; adata.n_vars()];
    if let Some(genome) = &options.genome {
        let genomes = strings(adata, "genome")?;
        if !genomes.iter().any(|g| g == genome) {
            let mut known = genomes.clone();
            known.sort();
            known.dedup();
            return Err(Error::invalid(format!(
                "no genome '{genome}'; the file has {known:?}"
            )));
        }
        keep.iter_mut()
            .zip(&genomes)
            .for_each(|(k, g)| *k &= g == genome);
    }
    if options.gex_only {
        let kinds = strings(adata, "feature_types")?;
        keep.iter_mut()
            .zip(&kinds)
            .for_each(|(k, t)| *k &= t == "Gene Expression");
    }
    Ok((options.genome.is_some() || options.gex_only).then_some(keep))
}

/// Reads a delimited text table as `anndata.read_csv` (and `read_text`) does: X a dense
/// float32 matrix; where the names are is decided from the first lines (see [`CsvOptions`]).
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// let path = dir.path().join("t.tsv");
/// std::fs::write(&path, "\tg1\tg2\nc1\t1\t2\n")?;
/// let options = annpage::CsvOptions { delimiter: Some('\t'), ..Default::default() };
/// let adata = annpage::read_csv(&path, &options)?;
/// assert_eq!(adata.obs_names(), ["c1"]);
/// assert_eq!(adata.var_names(), ["g1", "g2"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_csv(path: impl AsRef<Path>, options: &CsvOptions) -> Result<AnnData> {
    let path = path.as_ref();
    AnnData::from_elements(csv::read_csv(path, options)?).in_file(path)
}

impl AnnData {
    /// Writes the object as CSV files into `dir` as anndata's `write_csvs(dir, skip_data, sep)`
    /// does: `obs.csv`, `var.csv`, `obsm.csv`, `varm.csv`, `X.csv` unless `skip_data` (anndata's
    /// default skips it), and `uns/KEY.csv` for arrays and scalars of uns. Sparse obsm/varm/uns
    /// values are left out as anndata leaves them out; data-frame obsm/varm values and nested
    /// uns mappings are left out too (anndata writes unreadable text for them).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let adata = annpage::AnnData::new(3, 2);
    /// adata.write_csvs(dir.path().join("tables"), false, ',')?;
    /// // No X: an empty X.csv, as pandas writes a frame of None.
    /// assert_eq!(std::fs::read_to_string(dir.path().join("tables/X.csv"))?, "");
    /// assert_eq!(std::fs::read_to_string(dir.path().join("tables/obs.csv"))?, "\"\"\n0\n1\n2\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_csvs(&self, dir: impl AsRef<Path>, skip_data: bool, sep: char) -> Result<()> {
        annpage_engine::format::text::csvs::write_csvs(
            dir.as_ref(),
            self.elements(),
            skip_data,
            sep,
        )
    }
}

/// Reads a loom file as `anndata.io.read_loom` does (see [`LoomOptions`] for its arguments):
/// cells × genes, X float32 CSR from the `spliced` layer if there is one (else the main
/// matrix), the other layers float64 CSR, cell and gene attributes as obs/var (named by
/// `CellID` and `Gene`) and obsm/varm.
///
/// ```no_run
/// let adata = annpage::read_loom("cells.loom", &Default::default())?;
/// # Ok::<(), annpage::Error>(())
/// ```
pub fn read_loom(path: impl AsRef<Path>, options: &LoomOptions) -> Result<AnnData> {
    let path = path.as_ref();
    AnnData::from_elements(annpage_engine::format::loom::read_loom(path, options)?).in_file(path)
}

/// Converts a loom file to `.h5ad` (or a Zarr store, as `write.store` says) as [`read_loom`]
/// then [`AnnData::write_h5ad`] would. With `options.sparse` (anndata's default) the matrices
/// are streamed a block of cells at a time, so memory holds the annotations and one block
/// whatever the file's size; dense matrices are read whole first.
///
/// ```no_run
/// annpage::convert_loom("cells.loom", "cells.h5ad", &Default::default(), &Default::default())?;
/// # Ok::<(), annpage::Error>(())
/// ```
pub fn convert_loom(
    path: impl AsRef<Path>,
    out: impl AsRef<Path>,
    options: &LoomOptions,
    write: &annpage_engine::format::WriteOptions,
) -> Result<()> {
    let (path, out) = (path.as_ref(), out.as_ref());
    if !options.sparse {
        return annpage_engine::file::stream::write(
            out,
            read_loom(path, options)?.elements(),
            write,
        );
    }
    let rest = loom::read_loom_annotations(path, options)?;
    let adata = AnnData::from_elements(rest).in_file(path)?;
    write_streaming(out, &adata, write, |root, w| {
        loom::write_matrices(path, options, root, w)
    })
}

impl AnnData {
    /// Writes the object as a loom file, as anndata's `write_loom(path, write_obsm_varm)` does
    /// through loompy (X and layers transposed to genes × cells, obs/var columns as attributes
    /// in loompy's types, names under `obs_names`/`var_names` or the index's name). X must be
    /// set and hold numbers; a dense X must be finite.
    ///
    /// ```no_run
    /// let adata = annpage::read_h5ad("data.h5ad")?;
    /// adata.write_loom("data.loom", false)?;
    /// # Ok::<(), annpage::Error>(())
    /// ```
    pub fn write_loom(&self, path: impl AsRef<Path>, write_obsm_varm: bool) -> Result<()> {
        annpage_engine::format::loom::write_loom(path.as_ref(), self.elements(), write_obsm_varm)
    }
}

fn strings(adata: &AnnData, column: &str) -> Result<Vec<String>> {
    match adata.var().column(column) {
        Some(Column::Array(a @ ArrayData::String(_))) => Ok(a.to_python_strings()),
        _ => Err(Error::malformed(format!(
            "var has no string column '{column}'"
        ))),
    }
}

fn keep_vars_where(adata: &AnnData, column: &str, keep: impl Fn(&str) -> bool) -> Result<AnnData> {
    let mask = strings(adata, column)?.iter().map(|v| keep(v)).collect();
    adata.subset(&Selection::All, &Selection::Mask(mask))
}

/// The file formats annpage reads or writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    /// anndata's HDF5 format (`.h5ad`).
    H5ad,
    /// A Zarr store (`.zarr` directory, v2 or v3; `.zarr.zip` read only), as anndata's
    /// `write_zarr` writes it.
    Zarr,
    /// A delimited table (`.csv`, `.tsv`, `.txt`, also gzipped), read by [`read_csv`].
    Csv,
    /// A Matrix Market file (`.mtx`, `.mtx.gz`), read by [`read_mtx`].
    Mtx,
    /// A 10x Genomics matrix directory, read by [`read_10x_mtx`].
    TenxMtx,
    /// A 10x Genomics HDF5 matrix (`.h5`), read by [`read_10x_h5`].
    TenxH5,
    /// A directory of CSV files, written by [`AnnData::write_csvs`] (not read).
    Csvs,
    /// A loom file (`.loom`), read by [`read_loom`] and written by [`AnnData::write_loom`].
    Loom,
}

/// Whether `path` is a directory holding a Zarr hierarchy (v3 `zarr.json`, v2 `.zgroup`).
fn holds_anndata(path: &Path) -> bool {
    annpage_engine::file::File::open(path).is_ok_and(|f| f.holds_anndata())
}

fn is_zarr_dir(path: &Path) -> bool {
    path.join("zarr.json").is_file() || path.join(".zgroup").is_file()
}

impl FileFormat {
    /// Every format, in the order the CLI lists them.
    pub const ALL: [FileFormat; 8] = [
        FileFormat::H5ad,
        FileFormat::Zarr,
        FileFormat::Csv,
        FileFormat::Mtx,
        FileFormat::TenxMtx,
        FileFormat::TenxH5,
        FileFormat::Csvs,
        FileFormat::Loom,
    ];

    /// The name the CLI uses (`--from`, `--to`).
    pub fn name(self) -> &'static str {
        match self {
            FileFormat::H5ad => "h5ad",
            FileFormat::Zarr => "zarr",
            FileFormat::Csv => "csv",
            FileFormat::Mtx => "mtx",
            FileFormat::TenxMtx => "10x-mtx",
            FileFormat::TenxH5 => "10x-h5",
            FileFormat::Csvs => "csvs",
            FileFormat::Loom => "loom",
        }
    }

    /// The format a name given to the CLI names.
    pub fn from_name(name: &str) -> Option<FileFormat> {
        FileFormat::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The format a path names: by extension, and a directory holding `matrix.mtx[.gz]` (or
    /// `genes.tsv`) is a 10x directory.
    ///
    /// ```
    /// use annpage::FileFormat;
    /// assert_eq!(FileFormat::from_path("a/b.mtx.gz".as_ref()), Some(FileFormat::Mtx));
    /// assert_eq!(FileFormat::from_path("b.tsv".as_ref()), Some(FileFormat::Csv));
    /// ```
    pub fn from_path(path: &Path) -> Option<FileFormat> {
        let lower = path.to_string_lossy().to_ascii_lowercase();
        if lower.ends_with(".zarr") || lower.ends_with(".zarr.zip") || is_zarr_dir(path) {
            return Some(FileFormat::Zarr);
        }
        if path.is_dir() {
            let tenx = ["matrix.mtx", "matrix.mtx.gz", "genes.tsv"]
                .iter()
                .any(|f| path.join(f).is_file());
            return tenx.then_some(FileFormat::TenxMtx);
        }
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        let name = strip_compression(&name);
        let ext = name.rsplit_once('.')?.1;
        match ext {
            "h5ad" => Some(FileFormat::H5ad),
            "csv" | "tsv" | "txt" | "tab" | "data" => Some(FileFormat::Csv),
            "mtx" => Some(FileFormat::Mtx),
            // Cell Ranger's matrices, unless the file is an AnnData under that name (as
            // scanpy's `read` takes a `.h5`).
            "h5" if holds_anndata(path) => Some(FileFormat::H5ad),
            "h5" => Some(FileFormat::TenxH5),
            "loom" => Some(FileFormat::Loom),
            _ => None,
        }
    }

    /// Reads `path` in this format with the readers' options in `options` (by default
    /// anndata's and scanpy's: a `.tsv` is split at tabs, a `.txt` at whitespace, 10x files
    /// keep gene expression only).
    ///
    /// ```no_run
    /// use annpage::{FileFormat, FormatOptions};
    /// let path = std::path::Path::new("counts.mtx.gz");
    /// let format = FileFormat::from_path(path).expect("a known extension");
    /// let adata = format.read(path, &FormatOptions::default())?;
    /// # Ok::<(), annpage::Error>(())
    /// ```
    pub fn read(self, path: &Path, options: &FormatOptions) -> Result<AnnData> {
        match self {
            FileFormat::H5ad | FileFormat::Zarr => crate::read_h5ad(path),
            FileFormat::Csv => {
                let by_extension = CsvOptions::for_path(path);
                read_csv(path, options.csv.as_ref().unwrap_or(&by_extension))
            }
            FileFormat::Mtx => read_mtx(path, DType::F32),
            FileFormat::TenxMtx => read_10x_mtx(path, &options.tenx_mtx),
            FileFormat::TenxH5 => read_10x_h5(path, &options.tenx_h5),
            FileFormat::Loom => read_loom(path, &options.loom),
            FileFormat::Csvs => Err(Error::unsupported(
                "a directory of CSV files is written, not read (anndata has no reader for it)",
            )
            .in_file(path)),
        }
    }
}

/// The options of every reader, for [`FileFormat::read`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FormatOptions {
    /// For tables; `None`: anndata's defaults with the delimiter told by the extension
    /// (`.tsv`/`.tab` tabs, `.txt`/`.data` whitespace, otherwise commas).
    pub csv: Option<CsvOptions>,
    /// For 10x directories.
    pub tenx_mtx: TenxMtxOptions,
    /// For 10x HDF5 files.
    pub tenx_h5: TenxH5Options,
    /// For loom files.
    pub loom: LoomOptions,
}
