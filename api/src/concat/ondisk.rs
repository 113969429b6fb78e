//! [`concat_on_disk`]: the files' concatenation written without holding any matrix whole.
//!
//! The annotations (obs, var, obsm/varm, obsp/varp, uns, raw.var) are read and concatenated
//! by [`concat`] itself; `X`, every layer and `raw.X` are then streamed along the rows: each
//! input is read in row chunks through one shared block cache, each chunk goes through the
//! same column alignment as in memory ([`matrix::stack_rows`] on that chunk alone — rows are
//! aligned independently, so the chunks give the rows of the whole) and is cast to the dtype
//! the whole result has (found beforehand by aligning an empty chunk of every input), then
//! appended to the output, written beside its target and renamed into place when complete.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use annpage_engine::data::{CompactString, Matrix};
use annpage_engine::error::ResultExt;
use annpage_engine::file::stream::{write_file, Writer};
use annpage_engine::format::{AnnDataElements, Encoding, WriteOptions};
use annpage_engine::paged::{MemoryPolicy, ScanBuffers};
use annpage_engine::{Error, Result};
use indexmap::IndexMap;

use super::chunking::{chunk_rows, RowChunks};
use super::conform::{filled_values, write_stream, Conform};
use super::plan::{self, Reindexer};
use super::progress::{ConcatProgress, Tracker};
use super::{
    concat_noting_strings, join_keys, obsm, resolve_keys, ConcatOptions, FillValue, Join,
    StringColumns,
};
use crate::backed::slices;
use crate::backed::{BackedOptions, BlockCache};
use crate::{read_h5ad_backed, AnnData, Axis, AxisIndex, BackedAnnData, BackedMatrixView, Mode};

/// Rows read and written at once, at most; fewer when rows are wide (see [`chunk_rows`]).
pub(super) const MAX_CHUNK_ROWS: usize = 10_000;

/// Concatenates the files `inputs` into `output` as [`concat()`](super::concat) of the files
/// read whole and written with `write` would, without holding `X`, a layer, `raw.X` or a
/// dense `obsm` entry in memory: they are read in row chunks through one block cache of `backed`'s budget
/// (shared by every input) and appended to the output. The other elements — obs, var, sparse
/// obsm and obsm data frames, varm, obsp/varp, uns and raw.var — are read whole, as they are
/// small next to the matrices (obsp/varp can be large: they are held in memory too).
///
/// CSC inputs are read by rows through the cache, so mixed CSR/CSC inputs stream too (each
/// chunk of a CSC input's rows reads the column blocks holding them: its chunks take a
/// sixteenth of the budget, so a CSC input many times the budget is read that many times
/// sixteen). Along `Axis::Var` each block of the result's cells is gathered from every
/// input's rows (the join decides which). Chunks and blocks are sized from each row's stored
/// values (counted in a first pass over a CSC input), not an average row.
///
/// ```no_run
/// use annpage::{concat_on_disk, BackedOptions, ConcatOptions, Join, WriteOptions};
/// let options = ConcatOptions { join: Join::Outer, label: Some("batch".into()), ..Default::default() };
/// let budget = BackedOptions { cache_bytes: 256 << 20, ..Default::default() };
/// concat_on_disk(&["a.h5ad", "b.h5ad"], "ab.h5ad", &options, &WriteOptions::default(), &budget)?;
/// # Ok::<(), annpage::Error>(())
/// ```
pub fn concat_on_disk(
    inputs: &[impl AsRef<Path>],
    output: impl AsRef<Path>,
    options: &ConcatOptions,
    write: &WriteOptions,
    backed: &BackedOptions,
) -> Result<()> {
    concat_on_disk_observed(inputs, output, options, write, backed, &|_| {})
}

/// [`concat_on_disk`], telling `observe` how far it has got as the matrices are read (from
/// the reading threads; first with nothing read, last with everything).
///
/// ```
/// use std::sync::Mutex;
/// use annpage::{concat_on_disk_observed, BackedOptions, ConcatOptions, WriteOptions};
/// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/pbmc_like_csr.h5ad");
/// # let dir = tempfile::tempdir().unwrap();
/// # let out = dir.path().join("twice.h5ad");
/// let seen = Mutex::new(Vec::new());
/// let options = ConcatOptions { index_unique: Some("-".into()), ..Default::default() };
/// let observe = |p| seen.lock().unwrap().push(p);
/// concat_on_disk_observed(&[path, path], &out, &options, &WriteOptions::default(),
///                         &BackedOptions::default(), &observe)?;
/// let last = *seen.lock().unwrap().last().unwrap();
/// assert!(last.total > 0 && last.done == last.total);
/// # Ok::<(), annpage::Error>(())
/// ```
pub fn concat_on_disk_observed(
    inputs: &[impl AsRef<Path>],
    output: impl AsRef<Path>,
    options: &ConcatOptions,
    write: &WriteOptions,
    backed: &BackedOptions,
    observe: &(dyn Fn(ConcatProgress) + Sync),
) -> Result<()> {
    let output = output.as_ref();
    if inputs.is_empty() {
        return Err(Error::invalid("concat needs at least one file"));
    }
    if options.axis == Axis::Var {
        return super::along_var::concat_on_disk(inputs, output, options, (write, backed), observe);
    }
    let (cache, handles) = open_inputs(inputs, backed)?;
    let plan = Plan::new(&handles, options, MemoryPolicy::new(cache.budget()))?;
    write_file(output, write, all_cores(), |w| {
        plan.write(&handles, w, observe)
    })
}

/// The threads that compress gzip chunks of a written file: one per core (as `annpage
/// convert`), not the HDF5 library's one.
pub(super) fn all_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Opens `paths` in backed mode under one cache: `backed.cache`, or a new one of
/// `backed.cache_bytes`.
pub(super) fn open_inputs(
    paths: &[impl AsRef<Path>],
    backed: &BackedOptions,
) -> Result<(Arc<BlockCache>, Vec<BackedAnnData>)> {
    let cache = backed
        .cache
        .clone()
        .unwrap_or_else(|| Arc::new(BlockCache::new(backed.cache_bytes)));
    let shared = BackedOptions {
        cache: Some(Arc::clone(&cache)),
        ..backed.clone()
    };
    let handles = paths
        .iter()
        .map(|p| read_h5ad_backed(p, Mode::Read, shared.clone()))
        .collect::<Result<Vec<_>>>()?;
    Ok((cache, handles))
}

/// The genes of a concatenation of backed inputs along obs: what is decided from the
/// inputs' gene names alone, before any annotation or matrix is read.
pub(super) struct Axes {
    /// The result's genes: the inputs' joined.
    pub var_names: Vec<CompactString>,
    /// Each input's var names → the result's.
    pub reindexers: Vec<Reindexer>,
    /// The layers of the result.
    pub layers: Vec<String>,
}

impl Axes {
    /// The genes [`concat()`](super::concat) gives the inputs along obs with `options`.
    pub(super) fn new(handles: &[BackedAnnData], options: &ConcatOptions) -> Result<Self> {
        resolve_keys(handles.len(), options.keys.as_deref())?;
        let lists = handles
            .iter()
            .map(|h| h.names(Axis::Var))
            .collect::<Result<Vec<_>>>()?;
        for (h, names) in handles.iter().zip(&lists) {
            // Named by its file here (the alignment below counts inputs from 0).
            let mut seen = std::collections::HashSet::with_capacity(names.len());
            if let Some(twice) = names.iter().find(|n| !seen.insert(n.as_str())) {
                return Err(Error::invalid(format!(
                    "the var name '{twice}' appears twice: the var names of every input must \
                     be unique to be aligned"
                ))
                .in_element("/var")
                .in_file(h.path()));
            }
        }
        let borrowed: Vec<&[CompactString]> = lists.iter().map(|names| &**names).collect();
        let (var_names, reindexers) = plan::align(&borrowed, options.join, "var")?;
        Ok(Axes {
            var_names,
            reindexers,
            layers: layer_keys(handles, options.join),
        })
    }
}

/// The layers of a concatenation of backed inputs: their keys joined as [`join_keys`] joins
/// them.
pub(super) fn layer_keys(handles: &[BackedAnnData], join: Join) -> Vec<String> {
    let maps: Vec<IndexMap<String, ()>> = handles
        .iter()
        .map(|h| h.layer_names().into_iter().map(|k| (k, ())).collect())
        .collect();
    join_keys(&maps.iter().collect::<Vec<_>>(), join)
}

/// The cell names [`concat()`](super::concat) gives the inputs along obs with `options` (with
/// `index_unique`'s suffixes).
pub(super) fn obs_names(
    handles: &[BackedAnnData],
    options: &ConcatOptions,
) -> Result<Vec<CompactString>> {
    let keys = resolve_keys(handles.len(), options.keys.as_deref())?;
    let mut out = Vec::with_capacity(handles.iter().map(BackedAnnData::n_obs).sum());
    for (h, key) in handles.iter().zip(&keys) {
        // Read for this concatenation alone (the handle does not keep them).
        let names = h.taken_names(Axis::Obs)?;
        match &options.index_unique {
            Some(sep) => out.extend(
                names
                    .iter()
                    .map(|n| compact_str::format_compact!("{n}{sep}{key}")),
            ),
            None => out.extend(names),
        }
    }
    Ok(out)
}

/// [`concat()`](super::concat) of everything but the inputs' matrices along obs, and its obs
/// and var columns written through `strings_to_categoricals`; its genes are `var_names`.
pub(super) fn annotations(
    handles: &[BackedAnnData],
    options: &ConcatOptions,
    var_names: &[CompactString],
    without_obsm: &[String],
) -> Result<(AnnData, StringColumns)> {
    let lights = handles
        .iter()
        .map(|h| light(h, options, without_obsm))
        .collect::<Result<Vec<_>>>()?;
    let concatenated = concat_noting_strings(&lights, options)
        .in_file(super::files_label(handles.iter().map(BackedAnnData::path)))?;
    let (meta, strings) = (concatenated.adata, concatenated.strings);
    if meta.var_names() != var_names {
        return Err(Error::invalid(
            "the concatenated annotations do not have the names the files gave",
        ));
    }
    Ok((meta, strings))
}

/// Everything decided before the matrices are streamed.
struct Plan<'o> {
    options: &'o ConcatOptions,
    /// The concatenation of everything but the matrices.
    meta: AnnDataElements,
    /// Each input's var names → the output's.
    reindexers: Vec<Reindexer>,
    /// raw.var and raw.varm concatenated, and each input's raw var names → the output's.
    raw: Option<(AnnDataElements, Vec<Reindexer>)>,
    layers: Vec<String>,
    /// The `obsm` entries streamed (not in `meta`).
    obsm_streamed: Vec<String>,
    /// The budget's shares chunks take.
    policy: MemoryPolicy,
}

impl<'o> Plan<'o> {
    fn new(
        handles: &[BackedAnnData],
        options: &'o ConcatOptions,
        policy: MemoryPolicy,
    ) -> Result<Self> {
        let axes = Axes::new(handles, options)?;
        // Dense obsm entries are streamed as the matrices are, not held.
        let joined = obsm::key_order(handles, options)?;
        let obsm_streamed: Vec<String> = obsm::matrix_keys(handles, true)?
            .into_iter()
            .filter(|k| joined.contains(k))
            .collect();
        let (meta, _) = annotations(handles, options, &axes.var_names, &obsm_streamed)?;
        let raw = match raw_meta(handles, options)? {
            Some((raw, lists)) => Some((raw, align(&lists, options.join)?)),
            None => None,
        };
        Ok(Plan {
            options,
            meta: meta.into_elements(),
            reindexers: axes.reindexers,
            raw,
            layers: axes.layers,
            obsm_streamed,
            policy,
        })
    }

    /// Writes the members of the root group, telling `observe` how far it has got.
    fn write(
        &self,
        handles: &[BackedAnnData],
        w: &Writer<'_>,
        observe: &(dyn Fn(ConcatProgress) + Sync),
    ) -> Result<()> {
        let with_x = check_x(handles, self.options.join);
        let raw = self.raw.as_ref().map(|(raw, _)| raw);
        let streamed = (with_x, &self.layers[..], raw.is_some());
        let every = |_: usize, m: &BackedMatrixView| m.stored_values();
        let tracker = Tracker::new(handles, streamed, &every, observe)?;
        let matrices = Matrices {
            layers: &self.layers,
            obsm: &self.obsm_streamed,
        };
        write_root(w, &self.meta, with_x, raw, matrices, &mut |g, m| {
            let (pieces, reindexers, fill) = match m {
                Streamed::Obsm(key) => {
                    return obsm::stream(
                        w,
                        handles,
                        key,
                        self.options,
                        self.policy.concat_chunk_bytes(),
                    );
                }
                Streamed::X => (
                    handles.iter().map(BackedAnnData::x).collect(),
                    &self.reindexers,
                    self.options.fill_value,
                ),
                Streamed::RawX => (
                    handles.iter().map(BackedAnnData::raw_x).collect(),
                    self.raw.as_ref().map_or(&self.reindexers, |(_, r)| r),
                    self.options.fill_value,
                ),
                Streamed::Layer(key) => (
                    handles.iter().map(|h| h.layer(key).ok()).collect(),
                    &self.reindexers,
                    self.options.layer_fill(),
                ),
            };
            let sources = Sources {
                pieces,
                reindexers,
                fill,
            };
            let reading = (self.policy, &tracker);
            stream(w, (g, m.name()), &sources, handles, reading)
        })?;
        tracker.finish();
        Ok(())
    }
}

/// Whether the result has `X`: when every input has one, or (as anndata 0.13 treats X like a
/// layer) when some have one and the join is outer, which fills what the others lack; an
/// inner join drops an X some inputs lack.
pub(super) fn check_x(handles: &[BackedAnnData], join: Join) -> bool {
    let with_x = handles.iter().filter(|h| h.x().is_some()).count();
    with_x == handles.len() || (with_x > 0 && join == Join::Outer)
}

/// A matrix of the result that [`write_root`] has streamed in.
#[derive(Clone, Copy, Debug)]
pub(super) enum Streamed<'a> {
    X,
    RawX,
    Layer(&'a str),
    Obsm(&'a str),
}

/// The layers and `obsm` entries [`write_root`] has streamed in.
#[derive(Clone, Copy, Debug)]
pub(super) struct Matrices<'a> {
    pub layers: &'a [String],
    pub obsm: &'a [String],
}

impl Streamed<'_> {
    /// The matrix's name in its group.
    pub(super) fn name(&self) -> &str {
        match self {
            Streamed::X | Streamed::RawX => "X",
            Streamed::Layer(key) | Streamed::Obsm(key) => key,
        }
    }

    /// The matrix's path in the file.
    fn path(&self) -> String {
        match self {
            Streamed::X => "/X".into(),
            Streamed::RawX => "/raw/X".into(),
            Streamed::Layer(key) => format!("/layers/{key}"),
            Streamed::Obsm(key) => format!("/obsm/{key}"),
        }
    }
}

/// Writes the members of the root group, in the order `AnnData::write_h5ad` does: `meta`'s
/// annotations (its matrices are not written), and `X` (when `with_x`), `raw.X` (beside
/// `raw`'s var and varm, when given), the `layers` and the `obsm` entries of `matrices`
/// written by `stream` into the group whose path it is handed.
pub(super) fn write_root(
    w: &Writer<'_>,
    meta: &AnnDataElements,
    with_x: bool,
    raw: Option<&AnnDataElements>,
    matrices: Matrices<'_>,
    stream: &mut dyn FnMut(&str, Streamed<'_>) -> Result<()>,
) -> Result<()> {
    w.set_encoding("/", Encoding::AnnData)?;
    if with_x {
        stream("/", Streamed::X).in_element(Streamed::X.path())?;
    }
    if let Some(raw) = raw {
        w.create_group("/", "raw", Encoding::Raw)?;
        stream("/raw", Streamed::RawX).in_element(Streamed::RawX.path())?;
        w.write_dataframe("/raw", "var", &raw.var)?;
        w.write_mapping("/raw", "varm", &raw.varm)?;
    }
    w.write_dataframe("/", "obs", &meta.obs)?;
    w.write_dataframe("/", "var", &meta.var)?;
    w.write_mapping("/", "obsm", &meta.obsm)?;
    for key in matrices.obsm {
        let m = Streamed::Obsm(key);
        stream("/obsm", m).in_element(m.path())?;
    }
    w.write_mapping("/", "varm", &meta.varm)?;
    w.write_matrix_mapping("/", "obsp", &meta.obsp)?;
    w.write_matrix_mapping("/", "varp", &meta.varp)?;
    w.write_matrix_mapping("/", "layers", &IndexMap::new())?;
    for key in matrices.layers {
        let m = Streamed::Layer(key);
        stream("/layers", m).in_element(m.path())?;
    }
    w.write_mapping("/", "uns", &meta.uns)
}

/// An input's elements other than the matrices (X, layers, raw), as far as `options` use
/// them: the annotations of the concatenation's axis (its frame, its aligned arrays but the
/// `obsm` entries `without_obsm` left out, its pairwise matrices only with `pairwise`) and
/// of the other axis only with a merge strategy (its names otherwise), uns only with an uns
/// merge strategy (concat drops them otherwise).
pub(super) fn light(
    h: &BackedAnnData,
    options: &ConcatOptions,
    without_obsm: &[String],
) -> Result<AnnData> {
    // Frames set below: no default names made first.
    let mut e = AnnDataElements::empty(0, 0);
    let merged = options.merge.is_some();
    let whole = |axis: Axis| axis == options.axis || merged;
    let frame = |axis: Axis| -> Result<annpage_engine::data::DataFrame> {
        if whole(axis) {
            return match axis {
                Axis::Obs => h.obs(),
                Axis::Var => h.var(),
            };
        }
        // Read for this frame alone (not cached by the handle, then copied).
        let mut names = annpage_engine::data::DataFrame::from_index(h.taken_names(axis)?);
        names.set_index_name(h.index_name(axis));
        names.set_index_string_na(h.index_string_na(axis))?;
        Ok(names)
    };
    e.obs = frame(Axis::Obs)?;
    e.var = frame(Axis::Var)?;
    if whole(Axis::Obs) {
        for key in h
            .obsm_keys()
            .into_iter()
            .filter(|k| !without_obsm.contains(k))
        {
            let value = h.obsm(&key)?;
            e.obsm.insert(key, value);
        }
    }
    if whole(Axis::Var) {
        for key in h.varm_keys() {
            let value = h.varm(&key)?;
            e.varm.insert(key, value);
        }
    }
    // Pairwise matrices: the axis's only with `pairwise`, the other's only with a merge.
    let pairwise = |axis: Axis| {
        if axis == options.axis {
            options.pairwise
        } else {
            merged
        }
    };
    for key in h.obsp_keys().into_iter().filter(|_| pairwise(Axis::Obs)) {
        let value = h.obsp(&key)?.to_memory()?;
        e.obsp.insert(key, value);
    }
    for key in h.varp_keys().into_iter().filter(|_| pairwise(Axis::Var)) {
        let value = h.varp(&key)?.to_memory()?;
        e.varp.insert(key, value);
    }
    if options.uns_merge.is_some() {
        e.uns = h.uns()?;
    }
    AnnData::from_elements(e).in_file(h.path())
}

/// raw's annotations (raw.var, raw.varm) concatenated as [`concat()`](super::concat)
/// concatenates them, and each input's raw var names, when every input has a raw (and the
/// result has cells: as in memory, anndata drops a raw without observations).
pub(super) fn raw_meta(
    handles: &[BackedAnnData],
    options: &ConcatOptions,
) -> Result<Option<(AnnDataElements, Vec<Vec<CompactString>>)>> {
    let Some(parts) = raw_annotations(handles)? else {
        return Ok(None);
    };
    let lists: Vec<Vec<CompactString>> = parts.iter().map(|a| a.var_names().to_vec()).collect();
    let keys = resolve_keys(handles.len(), options.keys.as_deref())?;
    let raw = super::concat_raw_parts(&parts, options, &keys)?;
    Ok(raw.map(|r| (r.into_elements(), lists)))
}

/// Each input's raw (obs names, raw.var, raw.varm) when every input has one.
fn raw_annotations(handles: &[BackedAnnData]) -> Result<Option<Vec<AnnData>>> {
    let mut parts = Vec::with_capacity(handles.len());
    for h in handles {
        let Some((var, varm)) = h.raw_annotations()? else {
            return Ok(None);
        };
        let mut e = AnnDataElements::empty(h.n_obs(), var.nrows());
        e.obs = annpage_engine::data::DataFrame::from_index(h.obs_names()?);
        e.var = var;
        e.varm = varm;
        parts.push(
            AnnData::from_elements(e)
                .in_element("/raw")
                .in_file(h.path())?,
        );
    }
    Ok(Some(parts))
}

fn align(lists: &[Vec<CompactString>], join: Join) -> Result<Vec<Reindexer>> {
    let refs: Vec<&[CompactString]> = lists.iter().map(Vec::as_slice).collect();
    Ok(plan::align(&refs, join, "var")?.1)
}

/// One matrix of the result along obs: `pieces[i]` is input `i`'s (`None` when it lacks it),
/// `reindexers[i]` where its columns go, `fill` what an outer join puts where it has none.
struct Sources<'a> {
    pieces: Vec<Option<BackedMatrixView>>,
    reindexers: &'a [Reindexer],
    fill: Option<FillValue>,
}

/// Streams one matrix of the result, written as `into.1` in group `into.0`, in chunks the
/// policy sizes; the tracker counts what is read.
fn stream(
    w: &Writer<'_>,
    into: (&str, &str),
    sources: &Sources<'_>,
    handles: &[BackedAnnData],
    (policy, tracker): (MemoryPolicy, &Tracker<'_>),
) -> Result<()> {
    let Sources {
        pieces,
        reindexers,
        fill,
    } = sources;
    let (reindexers, fill) = (*reindexers, *fill);
    let conform = Conform::probe(pieces, reindexers, fill)?;
    let shape_cols = reindexers.first().map_or(0, Reindexer::new_len);
    let rows: usize = handles.iter().map(BackedAnnData::n_obs).sum();
    let stored: u64 = pieces
        .iter()
        .flatten()
        .map(BackedMatrixView::stored_values)
        .sum::<Result<u64>>()?;
    let present = pieces.iter().map(Option::is_some);
    let rows_of = handles.iter().map(BackedAnnData::n_obs);
    let bound = stored + filled_values(&conform, present.zip(rows_of).zip(reindexers));
    let per_input = |piece: Option<&BackedMatrixView>, n_obs: usize| {
        chunk_rows(piece, n_obs, shape_cols, policy)
    };
    let feed = |push: &mut dyn FnMut(&Matrix) -> Result<()>| -> Result<()> {
        // Chunks handed back are read into by the chunks after them, of any input.
        let buffers = ScanBuffers::default();
        // Chunks are read and aligned on a thread of their own while this one writes the
        // chunk before: at most two aligned chunks wait for the writer.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Matrix>(1);
        std::thread::scope(|s| {
            let reader = s.spawn(|| {
                let send = move |m| tx.send(m).is_ok();
                let reading = (&buffers, tracker);
                read_aligned(sources, handles, &conform, per_input, reading, send)
            });
            let written = rx.iter().try_for_each(|m| {
                push(&m)?;
                buffers.recycle(m);
                Ok(())
            });
            // A reader still sending stops once nobody receives.
            drop(rx);
            let read = reader
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            written.and(read)
        })
    };
    write_stream(w, into, &conform, (rows, shape_cols), bound, feed)
}

/// Reads each input's chunks of rows of one matrix (`sources.pieces[i]`, or none), aligned
/// onto the result's columns by `conform`, and hands them to `send` in order until it returns
/// `false`. `chunk_rows(piece, n_obs)` gives each input's rows per chunk; chunks handed back
/// to `buffers` are read into; `tracker` counts what is read.
fn read_aligned(
    sources: &Sources<'_>,
    handles: &[BackedAnnData],
    conform: &Conform,
    chunk_rows: impl Fn(Option<&BackedMatrixView>, usize) -> Result<RowChunks>,
    (buffers, tracker): (&ScanBuffers, &Tracker<'_>),
    send: impl Fn(Matrix) -> bool,
) -> Result<()> {
    let inputs = sources.pieces.iter().zip(handles).zip(sources.reindexers);
    for ((piece, h), r) in inputs {
        // Each chunk read, counted and aligned; `false` once nobody receives.
        let pass = |values: Option<Matrix>, rows: usize| -> Result<bool> {
            if let Some(values) = &values {
                tracker.read(values);
            }
            Ok(send(conform.chunk(values, rows, r)?))
        };
        let n = h.n_obs();
        match (piece, chunk_rows(piece.as_ref(), n)?) {
            (Some(m), RowChunks::Scan(per)) => {
                for chunk in m.scan_reusing(per, buffers)? {
                    let (range, values) = chunk?;
                    if !pass(Some(values), range.len())? {
                        return Ok(());
                    }
                }
            }
            (Some(m), RowChunks::Runs(runs)) => {
                let b = m
                    .backed_matrix()?
                    .ok_or_else(|| Error::malformed("not a matrix"))?;
                for rows in runs {
                    let picked = m.row_index().compose(&AxisIndex::range(rows.clone(), n)?)?;
                    let values = slices::read_once(&b, &picked, m.col_index())
                        .in_element(m.element())
                        .in_file(h.path())?;
                    if !pass(Some(values), rows.len())? {
                        return Ok(());
                    }
                }
            }
            (None, chunks) => {
                let per = match chunks {
                    RowChunks::Scan(per) => per,
                    RowChunks::Runs(runs) => runs.iter().map(Range::len).max().unwrap_or(1),
                };
                for start in (0..n).step_by(per.max(1)) {
                    if !pass(None, per.min(n - start))? {
                        return Ok(());
                    }
                }
            }
        }
    }
    Ok(())
}
