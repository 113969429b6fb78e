//! [`BackedCollection`]: many files opened as one lazy concatenation along obs.
//!
//! The annotations (obs, var, obsm/varm, obsp/varp, uns) of every file are concatenated once,
//! in memory, by [`concat()`](fn@crate::concat) itself, when first needed (`annotations.rs`);
//! the matrices (X and layers) stay in the files, and so do the `obsm` entries that are
//! matrices in every file holding them (embeddings): a selection reads its rows of those. A
//! selection of cells and genes is two indexes into the concatenation; reading it splits the
//! cells into *runs* (consecutive cells of one file), reads each run from its file through the
//! file's backed reader (one cache and one worker pool for all files) and aligns its columns
//! onto the collection's genes as [`concat()`](fn@crate::concat) does ([`Conform`]).

mod annotations;
mod batches;
mod chunks;
mod export;

use std::ops::Range;
use std::path::{Path, PathBuf};

use super::files_label;
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use annpage_engine::data::{CompactString, DType, Matrix, SparseFormat};
use annpage_engine::error::ResultExt;
use annpage_engine::file::stream::{write_file, Writer};
use annpage_engine::format::WriteOptions;
use annpage_engine::paged::MemoryPolicy;
use annpage_engine::storage::StoreKind;
use annpage_engine::{Error, Result};

use super::conform::{self, Conform};
use super::ondisk::{self, Streamed};
use super::plan::Reindexer;
use super::ConcatOptions;
use crate::backed::{BackedOptions, BlockCache, CacheStats, MatrixKind};
use crate::{AnnData, Axis, AxisIndex, BackedAnnData, Selection};

pub use chunks::CollectionChunks;

/// Opens `paths` as one backed [`BackedCollection`]: what [`concat()`](fn@crate::concat) of the files read
/// whole would give with `options` (along obs only), with the matrices left on disk.
///
/// Every file is opened in backed mode with one [`BlockCache`] of `backed`'s budget (or
/// `backed.cache`) and `backed.read`'s worker threads. Only the cell and gene names are read
/// now (and the genes joined); the other annotations (obs and var columns, obsm, uns, …) of
/// all files are read and concatenated when first asked for, once. `raw` is left out, as
/// anndata's `AnnCollection` leaves it.
///
/// ```
/// use annpage::{read_collection, BackedOptions, ConcatOptions, Join, Selection};
/// # let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures");
/// # let a = format!("{dir}/pbmc_like_csr.h5ad");
/// let options = ConcatOptions { join: Join::Outer, label: Some("batch".into()),
///                               keys: Some(vec!["a".into(), "b".into()]),
///                               index_unique: Some("-".into()), ..Default::default() };
/// let both = read_collection(&[&a, &a], &options, &BackedOptions::default())?;
/// assert_eq!(both.shape(), (4000, 1000));
/// // 10 cells on each side of the boundary between the files; nothing read yet.
/// let view = both.slice(&Selection::from(1990..2010), &Selection::All)?;
/// let copy = view.to_memory()?;
/// assert!(copy.obs_names()[9].ends_with("-a") && copy.obs_names()[10].ends_with("-b"));
/// assert!(copy.obs().column("batch").is_some());
/// # Ok::<(), annpage::Error>(())
/// ```
pub fn read_collection(
    paths: &[impl AsRef<Path>],
    options: &ConcatOptions,
    backed: &BackedOptions,
) -> Result<BackedCollection> {
    if paths.is_empty() {
        return Err(Error::invalid("a collection needs at least one file"));
    }
    if options.axis != Axis::Obs {
        return Err(Error::unsupported(
            "a collection concatenates along obs; use concat_on_disk along var",
        ));
    }
    let (cache, files) = ondisk::open_inputs(paths, backed)?;
    let with_x = ondisk::check_x(&files, options.join);
    let ondisk::Axes {
        var_names,
        reindexers,
        layers,
    } = ondisk::Axes::new(&files, options)?;
    let mut starts = Vec::with_capacity(files.len() + 1);
    starts.push(0usize);
    for f in &files {
        starts.push(starts[starts.len() - 1] + f.n_obs());
    }
    let (n_obs, n_vars) = (starts[files.len()], var_names.len());
    Ok(BackedCollection {
        inner: Arc::new(Inner {
            files,
            starts,
            obs_names: OnceLock::new(),
            var_names: Arc::new(var_names),
            annotations: Mutex::new(None),
            reindexers,
            with_x,
            layers,
            options: options.clone(),
            cache,
        }),
        obs: AxisIndex::full(n_obs),
        var: AxisIndex::full(n_vars),
        view: false,
        columns: Arc::default(),
    })
}

/// Several `.h5ad` files opened as one lazy AnnData along obs (see [`read_collection`]):
/// anndata's `AnnCollection` over backed files, with any join of the genes.
///
/// Like a [`BackedAnnData`], it selects cells and genes ([`BackedCollection::slice`]: views
/// of views compose, across file boundaries and in any order) and reads only on
/// [`BackedCollection::to_memory`], [`BackedCollection::chunk_x`] or a streaming
/// [`BackedCollection::write_h5ad`], each equal to the same selection of [`concat()`](fn@crate::concat)'s
/// result. Cloning is cheap; handles are `Send + Sync`.
#[derive(Clone)]
pub struct BackedCollection {
    inner: Arc<Inner>,
    obs: AxisIndex,
    var: AxisIndex,
    /// Whether this is a selection (anything sliced, even everything in order): as anndata's
    /// views, it then drops unused categories.
    view: bool,
    /// Per file, the columns `var` needs (see `file_columns`), worked out once and shared by
    /// the views that keep the same genes.
    columns: Arc<OnceLock<FileColumns>>,
}

/// A file's matrix, and per gene of it the collection's gene.
pub(crate) type RenumberedFile = (crate::BackedMatrixView, Vec<Option<usize>>);

/// Per file: its columns a selection of genes needs, and how they map onto the selected genes.
type FileColumns = Vec<(Vec<usize>, Reindexer)>;

struct Inner {
    files: Vec<BackedAnnData>,
    /// Where each file's cells start in the collection, then the total (`files.len() + 1`).
    starts: Vec<usize>,
    /// The concatenation's cell names, read when first needed (see [`Inner::obs_names`]).
    obs_names: OnceLock<Arc<Vec<CompactString>>>,
    /// The concatenation's genes.
    var_names: Arc<Vec<CompactString>>,
    /// Everything else but the matrices, concatenated when first needed (see [`Annotations`]).
    annotations: Mutex<Option<Arc<annotations::Annotations>>>,
    /// Each file's genes → the collection's.
    reindexers: Vec<Reindexer>,
    with_x: bool,
    layers: Vec<String>,
    options: ConcatOptions,
    cache: Arc<BlockCache>,
}

impl std::fmt::Debug for BackedCollection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackedCollection")
            .field("files", &self.inner.files.len())
            .field("shape", &self.shape())
            .finish()
    }
}

/// One of the collection's matrices.
#[derive(Clone, Debug)]
pub(super) enum Which {
    X,
    Layer(String),
}

/// Consecutive cells of a selection that lie in one file.
#[derive(Clone, Debug)]
pub(super) struct Run {
    pub file: usize,
    /// The cells' positions in the selection.
    pub rows: Range<usize>,
    /// The cells' positions in the file.
    pub local: AxisIndex,
}

impl BackedCollection {
    /// Number of cells selected.
    pub fn n_obs(&self) -> usize {
        self.obs.len()
    }

    /// Number of genes selected.
    pub fn n_vars(&self) -> usize {
        self.var.len()
    }

    /// `(n_obs, n_vars)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.n_obs(), self.n_vars())
    }

    /// The files, in order (handles over each whole file).
    pub fn files(&self) -> &[BackedAnnData] {
        &self.inner.files
    }

    /// The concatenation options the collection was opened with.
    pub fn options(&self) -> &ConcatOptions {
        &self.inner.options
    }

    /// The shared cache's counters.
    pub fn cache_stats(&self) -> CacheStats {
        self.inner.cache.stats()
    }

    /// The layers (every file's with an inner join, any file's with an outer one).
    pub fn layer_names(&self) -> &[String] {
        &self.inner.layers
    }

    /// How `X` (`layer: None`) or a layer is stored in the result: CSR when any file's is
    /// sparse, else dense; and its dtype. Nothing is read.
    pub fn matrix_kind(&self, layer: Option<&str>) -> Result<(MatrixKind, DType)> {
        let which = self.which(layer)?;
        let c = self.conform(&which)?;
        let kind = if c.sparse() {
            MatrixKind::Sparse(SparseFormat::Csr)
        } else {
            MatrixKind::Dense
        };
        Ok((kind, c.dtype()))
    }

    /// Whether this handle is a selection of the concatenation (made by
    /// [`BackedCollection::slice`], even of everything).
    pub fn is_view(&self) -> bool {
        self.view
    }

    /// Whether the files have `X`.
    pub fn has_x(&self) -> bool {
        self.inner.with_x
    }

    /// A view of the cells `obs` and genes `var` of this selection (names are this
    /// selection's names). Nothing is read.
    pub fn slice(&self, obs: &Selection, var: &Selection) -> Result<BackedCollection> {
        let pick =
            |current: &AxisIndex, s: &Selection, names: &[CompactString]| -> Result<AxisIndex> {
                let inner = match s {
                    Selection::Names(_) => {
                        let here: Vec<CompactString> =
                            current.iter().map(|i| names[i].clone()).collect();
                        s.resolve(current.len(), Some(&here))?
                    }
                    _ => s.resolve(current.len(), None)?,
                };
                current.compose(&inner)
            };
        let columns = match var {
            Selection::All => Arc::clone(&self.columns),
            _ => Arc::default(),
        };
        let obs = match obs {
            Selection::Names(_) => pick(&self.obs, obs, self.inner.obs_names()?),
            _ => pick(&self.obs, obs, &[]),
        };
        Ok(BackedCollection {
            inner: Arc::clone(&self.inner),
            obs: obs.in_element("obs").in_file(self.label())?,
            var: pick(&self.var, var, &self.inner.var_names)
                .in_element("var")
                .in_file(self.label())?,
            view: true,
            columns,
        })
    }

    /// What errors about the collection as a whole name as their file (see [`files_label`]).
    fn label(&self) -> PathBuf {
        files_label(self.files().iter().map(BackedAnnData::path))
    }

    /// The values a read of X (`layer: None`) or a layer at the selection holds at most: for
    /// each file's run of selected cells, what its matrix stores in those rows (see
    /// [`BackedMatrixView::stored_values`](crate::BackedMatrixView::stored_values)); every
    /// entry when an outer join fills with a value other than 0. Read from the offsets.
    pub fn stored_values(&self, layer: Option<&str>) -> Result<u64> {
        let which = self.which(layer)?;
        let dense = (self.n_obs() as u64).saturating_mul(self.n_vars() as u64);
        if self.inner.options.fill_value.is_some_and(|v| !v.is_zero()) {
            return Ok(dense);
        }
        let mut total = 0u64;
        for run in self.runs(0..self.n_obs())? {
            let file = &self.inner.files[run.file];
            let rows = file.slice(&selection_of(&run.local), &Selection::All)?;
            let m = match &which {
                Which::X => rows.x(),
                Which::Layer(key) => rows.layer(key).ok(),
            };
            if let Some(m) = m {
                total = total.saturating_add(m.stored_values()?);
            }
        }
        Ok(total.min(dense))
    }

    /// Every element at the selection, in memory: [`concat()`](fn@crate::concat) of the files read whole, then
    /// [`AnnData::subset`] to the selection (without `raw`).
    pub fn to_memory(&self) -> Result<AnnData> {
        let mut elems = self.annotations()?.into_elements();
        if self.inner.with_x {
            elems.x = Some(self.read(&Which::X)?);
        }
        for key in &self.inner.layers {
            let m = self.read(&Which::Layer(key.clone()))?;
            elems.layers.insert(key.clone(), m);
        }
        AnnData::from_elements(elems)
    }

    /// `X` at the selection, in memory.
    pub fn x_to_memory(&self) -> Result<Matrix> {
        self.read(&self.which(None)?)
    }

    /// A layer at the selection, in memory.
    pub fn layer_to_memory(&self, name: &str) -> Result<Matrix> {
        self.read(&self.which(Some(name))?)
    }

    /// `X` at the selection in chunks of at most `chunk_rows` rows: `(range of the
    /// selection's rows, matrix)`. A selection that takes each file's cells in one stretch
    /// (any sorted one) is read file by file with each file's read-ahead (a chunk then stops
    /// at the end of a file); any other is gathered chunk by chunk.
    pub fn chunk_x(&self, chunk_rows: usize) -> Result<CollectionChunks> {
        CollectionChunks::new(self.clone(), self.which(None)?, chunk_rows)
    }

    /// A layer at the selection in chunks (see [`BackedCollection::chunk_x`]).
    pub fn chunk_layer(&self, name: &str, chunk_rows: usize) -> Result<CollectionChunks> {
        CollectionChunks::new(self.clone(), self.which(Some(name))?, chunk_rows)
    }

    /// Writes the selection to `path` as [`AnnData::write_h5ad`] would write
    /// [`BackedCollection::to_memory`]'s result, streaming X and the layers chunk by chunk
    /// (memory: the cache budget, one chunk and the annotations). The file is written beside
    /// `path` and renamed into place when complete.
    pub fn write_h5ad(&self, path: impl AsRef<Path>, options: &WriteOptions) -> Result<()> {
        let options = WriteOptions {
            store: StoreKind::H5ad,
            ..options.clone()
        };
        self.write_store(path.as_ref(), &options)
    }

    /// Like [`BackedCollection::write_h5ad`], a Zarr store as [`AnnData::write_zarr`] writes
    /// it (format, chunks and shards from `options.zarr`).
    pub fn write_zarr(&self, path: impl AsRef<Path>, options: &WriteOptions) -> Result<()> {
        let options = WriteOptions {
            store: StoreKind::Zarr,
            ..options.clone()
        };
        self.write_store(path.as_ref(), &options)
    }

    fn write_store(&self, path: &Path, options: &WriteOptions) -> Result<()> {
        let meta = self.annotations()?.into_elements();
        let layers = self.inner.layers.clone();
        write_file(path, options, ondisk::all_cores(), |w| {
            let matrices = ondisk::Matrices {
                layers: &layers,
                obsm: &[],
            };
            ondisk::write_root(w, &meta, self.inner.with_x, None, matrices, &mut |g, m| {
                let (name, which) = match m {
                    Streamed::Layer(key) => (key, Which::Layer(key.to_owned())),
                    _ => ("X", Which::X),
                };
                self.stream(w, (g, name), which)
            })
        })
    }

    fn stream(&self, w: &Writer<'_>, into: (&str, &str), which: Which) -> Result<()> {
        let bound = self.stored_bound(&which)?;
        // Chunks of concat_on_disk's size, at most WRITE_CHUNK_ROWS rows.
        let row_bytes = (bound / self.n_obs().max(1) as u64).max(1) * 12;
        let budget = MemoryPolicy::new(self.inner.cache.budget()).concat_chunk_bytes() as u64;
        let rows = (budget / row_bytes).clamp(1, WRITE_CHUNK_ROWS as u64) as usize;
        let chunks = CollectionChunks::new(self.clone(), which, rows)?;
        let conform = *chunks.conform();
        conform::write_stream(w, into, &conform, self.shape(), bound, |push| {
            let mut chunks = chunks;
            while let Some(chunk) = chunks.next() {
                let m = chunk?.1;
                push(&m)?;
                chunks.recycle(m);
            }
            Ok(())
        })
    }

    /// At most the values stored in the matrix at the selection: the stored values of the
    /// files' matrices (dense ones count every entry).
    fn stored_bound(&self, which: &Which) -> Result<u64> {
        let mut total = 0u64;
        for f in 0..self.inner.files.len() {
            if let Some(m) = self.file_matrix(f, which) {
                total = total.saturating_add(m.stored_values()?);
            }
        }
        // Filled entries of an outer join count too (a fill value other than 0 stores them).
        let dense = (self.n_obs() as u64).saturating_mul(self.n_vars() as u64);
        Ok(
            if self.inner.options.fill_value.is_some_and(|v| !v.is_zero()) {
                dense
            } else {
                total.min(dense)
            },
        )
    }

    /// X (`layer: None`) or the layer `layer`; an error when the collection lacks it.
    fn which(&self, layer: Option<&str>) -> Result<Which> {
        match layer {
            None if self.inner.with_x => Ok(Which::X),
            None => Err(Error::invalid("the collection's files have no X")),
            Some(name) if self.inner.layers.iter().any(|k| k == name) => {
                Ok(Which::Layer(name.to_owned()))
            }
            Some(name) => Err(Error::invalid(format!(
                "the collection has no layer '{name}' (layers: {:?})",
                self.inner.layers
            ))),
        }
    }

    /// File `f`'s matrix `which` over the whole file (`None` when the file lacks it).
    fn file_matrix(&self, f: usize, which: &Which) -> Option<crate::BackedMatrixView> {
        let file = &self.inner.files[f];
        match which {
            Which::X => file.x(),
            Which::Layer(key) => file.layer(key).ok(),
        }
    }

    /// When X (`layer: None`) or a layer of the whole collection is each file's matrix in
    /// turn with its columns renumbered and nothing more — no view, every file has the
    /// matrix, and what a file lacks is zeros (nothing filled) — each file's matrix and, per
    /// gene of it, the collection's gene (`None`: a gene an inner join drops); `None`
    /// otherwise.
    pub(crate) fn renumbered_files(
        &self,
        layer: Option<&str>,
    ) -> Result<Option<Vec<RenumberedFile>>> {
        let which = self.which(layer)?;
        let conform = self.conform(&which)?;
        let zeros = conform.sparse() || self.inner.reindexers.iter().all(|r| !r.fills());
        let everything = self.obs.is_full() && self.var.is_full();
        if !everything || self.inner.options.fill_value.is_some_and(|v| !v.is_zero()) || !zeros {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(self.inner.files.len());
        for (f, r) in self.inner.reindexers.iter().enumerate() {
            match self.file_matrix(f, &which) {
                Some(m) => out.push((m, r.old_to_new().to_vec())),
                None => return Ok(None),
            }
        }
        Ok(Some(out))
    }

    /// The kind and dtype of matrix `which` in the concatenation.
    fn conform(&self, which: &Which) -> Result<Conform> {
        let pieces: Vec<_> = (0..self.inner.files.len())
            .map(|f| self.file_matrix(f, which))
            .collect();
        let fill = match which {
            Which::Layer(_) => self.inner.options.layer_fill(),
            _ => self.inner.options.fill_value,
        };
        Conform::probe(&pieces, &self.inner.reindexers, fill)
    }

    /// Per file: the file's columns the selection needs, and how they map onto the selected
    /// genes.
    fn file_columns(&self) -> &FileColumns {
        self.columns.get_or_init(|| self.work_out_columns())
    }

    fn work_out_columns(&self) -> FileColumns {
        self.inner
            .reindexers
            .iter()
            .zip(&self.inner.files)
            .map(|(r, file)| {
                let map = r.new_to_old();
                let n = file.n_vars();
                // Every column of the file, each once?
                let mut seen = vec![false; n];
                let mut distinct = 0;
                for old in self.var.iter().filter_map(|c| map[c]) {
                    distinct += usize::from(!std::mem::replace(&mut seen[old], true));
                }
                if distinct == n && self.var.iter().filter(|&c| map[c].is_some()).count() == n {
                    // Every column of the file: read in the file's order (no column
                    // selection in the reader), placed by one reindexing.
                    let new_to_old = self.var.iter().map(|c| map[c]).collect();
                    return ((0..n).collect(), Reindexer::positions(n, new_to_old));
                }
                let mut cols = Vec::new();
                let new_to_old = self
                    .var
                    .iter()
                    .map(|c| {
                        map[c].map(|old| {
                            cols.push(old);
                            cols.len() - 1
                        })
                    })
                    .collect();
                let n = cols.len();
                (cols, Reindexer::positions(n, new_to_old))
            })
            .collect()
    }

    /// The selection's rows `rows` split into runs of consecutive cells of one file.
    fn runs(&self, rows: Range<usize>) -> Result<Vec<Run>> {
        let starts = &self.inner.starts;
        let file_of = |p: usize| file_of(starts, p);
        let picked = self
            .obs
            .compose(&AxisIndex::range(rows.clone(), self.obs.len())?)?;
        let mut runs = Vec::new();
        if let Some(range) = picked.as_range() {
            let mut p = range.start;
            while p < range.end {
                let f = file_of(p);
                let end = range.end.min(starts[f + 1]);
                let at = rows.start + (p - range.start);
                let n = starts[f + 1] - starts[f];
                runs.push(Run {
                    file: f,
                    rows: at..at + (end - p),
                    local: AxisIndex::range(p - starts[f]..end - starts[f], n)?,
                });
                p = end;
            }
            return Ok(runs);
        }
        let mut current: Option<(usize, usize, Vec<usize>)> = None;
        for (k, p) in picked.iter().enumerate() {
            let f = file_of(p);
            match &mut current {
                Some((cf, _, local)) if *cf == f => local.push(p - starts[f]),
                _ => {
                    if let Some((cf, at, local)) = current.take() {
                        runs.push(run(cf, at, local, starts)?);
                    }
                    current = Some((f, rows.start + k, vec![p - starts[f]]));
                }
            }
        }
        if let Some((cf, at, local)) = current {
            runs.push(run(cf, at, local, starts)?);
        }
        Ok(runs)
    }

    /// Matrix `which` at the selection, in memory.
    fn read(&self, which: &Which) -> Result<Matrix> {
        let rows = self.n_obs().max(1);
        let mut chunks = CollectionChunks::new(self.clone(), which.clone(), rows)?;
        let conform = *chunks.conform();
        let mut parts = Vec::new();
        for chunk in chunks.by_ref() {
            parts.push(chunk?.1);
        }
        chunks::stack(parts, &conform, self.shape())
    }
}

/// The run of `local` cells of file `file` (whose cells start at `starts[file]`), at
/// position `at` of the selection.
fn run(file: usize, at: usize, local: Vec<usize>, starts: &[usize]) -> Result<Run> {
    let rows = at..at + local.len();
    let local = AxisIndex::from_positions(local, starts[file + 1] - starts[file])?;
    Ok(Run { file, rows, local })
}

/// Rows per chunk of a streaming write.
const WRITE_CHUNK_ROWS: usize = 10_000;

/// The file holding cell `p` of the collection, whose files start at `starts` (the first at 0,
/// then one start per file and the total).
fn file_of(starts: &[usize], p: usize) -> usize {
    starts.partition_point(|&s| s <= p) - 1
}

/// The selection an index stands for.
pub(super) fn selection_of(index: &AxisIndex) -> Selection {
    match index.as_range() {
        Some(r) => Selection::from(r),
        None => Selection::positions(index.iter()),
    }
}
