//! The inputs of `subset` and `stats`: one file in backed mode, or several opened as one
//! collection (their concatenation along obs); and the options of a concatenation, shared
//! with `concat`.

use std::path::{Path, PathBuf};

use annpage::backed::Names;
use annpage::data::DataFrame;
use annpage::stats::{collection_qc, QcAccumulator, QcStats};
use annpage::{
    read_collection, read_h5ad_backed, Axis, BackedAnnData, BackedCollection, BackedOptions,
    ConcatOptions, Error, Join, MergeStrategy, Mode, Selection, StoreKind, WriteOptions,
};
use clap::{Args, ValueEnum};

/// How several inputs are concatenated (as `anndata.concat`'s arguments).
#[derive(Args)]
pub struct JoinArgs {
    /// Keep the other axis's names every input has (inner, the default) or any input has
    /// (outer).
    #[arg(long, value_enum)]
    join: Option<JoinArg>,
    /// How the other axis's annotations and aligned elements are chosen (default: none).
    #[arg(long, value_enum)]
    merge: Option<MergeArg>,
    /// How uns entries are chosen, recursively (default: none).
    #[arg(long, value_enum)]
    uns_merge: Option<MergeArg>,
    /// Add a categorical column of this name holding each input's key.
    #[arg(long)]
    label: Option<String>,
    /// One key per input, comma-separated (default: 0,1,2,...).
    #[arg(long, value_delimiter = ',')]
    keys: Option<Vec<String>>,
    /// Make names unique as NAME{SEP}KEY.
    #[arg(long, value_name = "SEP", allow_hyphen_values = true)]
    index_unique: Option<String>,
    /// With --join outer, the value of missing entries (default: 0 sparse, NaN dense); an
    /// integer (`0`, `-1`) keeps integer matrices integers, `False`/`True` boolean ones
    /// boolean, as anndata's does.
    #[arg(long, allow_hyphen_values = true)]
    fill_value: Option<annpage::FillValue>,
    /// Keep obsp (varp) along the axis as block-diagonal matrices.
    #[arg(long)]
    pairwise: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum JoinArg {
    Inner,
    Outer,
}

#[derive(Clone, Copy, ValueEnum)]
enum MergeArg {
    Same,
    Unique,
    First,
    Only,
}

impl From<MergeArg> for MergeStrategy {
    fn from(m: MergeArg) -> Self {
        match m {
            MergeArg::Same => MergeStrategy::Same,
            MergeArg::Unique => MergeStrategy::Unique,
            MergeArg::First => MergeStrategy::First,
            MergeArg::Only => MergeStrategy::Only,
        }
    }
}

impl JoinArgs {
    /// The concatenation along `axis` these arguments ask for.
    pub fn options(&self, axis: Axis) -> ConcatOptions {
        ConcatOptions {
            axis,
            join: match self.join {
                Some(JoinArg::Outer) => Join::Outer,
                _ => Join::Inner,
            },
            merge: self.merge.map(MergeStrategy::from),
            uns_merge: self.uns_merge.map(MergeStrategy::from),
            label: self.label.clone(),
            keys: self.keys.clone(),
            index_unique: self.index_unique.clone(),
            fill_value: self.fill_value,
            pairwise: self.pairwise,
        }
    }

    /// Whether any option of the concatenation is given.
    fn given(&self) -> bool {
        self.join.is_some()
            || self.merge.is_some()
            || self.uns_merge.is_some()
            || self.label.is_some()
            || self.keys.is_some()
            || self.index_unique.is_some()
            || self.fill_value.is_some()
            || self.pairwise
    }
}

/// One file, or several as one collection.
pub enum Input {
    One(BackedAnnData),
    Many(BackedCollection),
}

impl Input {
    /// Opens `paths`: one file as it is, unless a concatenation option is given (then it is
    /// a collection of one, as `anndata.concat([adata], ...)`).
    pub fn open(
        paths: &[PathBuf],
        join: &JoinArgs,
        backed: BackedOptions,
    ) -> annpage::Result<Self> {
        match paths {
            [one] if !join.given() => Ok(Input::One(read_h5ad_backed(one, Mode::Read, backed)?)),
            _ => Ok(Input::Many(read_collection(
                paths,
                &join.options(Axis::Obs),
                &backed,
            )?)),
        }
    }

    /// The file errors are reported against (the first one of a collection).
    pub fn path(&self) -> &Path {
        match self {
            Input::One(b) => b.path(),
            Input::Many(c) => c.files()[0].path(),
        }
    }

    pub fn shape(&self) -> (usize, usize) {
        match self {
            Input::One(b) => b.shape(),
            Input::Many(c) => c.shape(),
        }
    }

    /// obs (`Axis::Obs`) or var.
    pub fn frame(&self, axis: Axis) -> annpage::Result<DataFrame> {
        match (self, axis) {
            (Input::One(b), _) => b.frame(axis),
            (Input::Many(c), Axis::Obs) => c.obs(),
            (Input::Many(c), Axis::Var) => c.var(),
        }
    }

    /// The obs and var names (the handle's own, not copied).
    pub fn names(&self) -> annpage::Result<(Names, Names)> {
        match self {
            Input::One(b) => Ok((b.names(Axis::Obs)?, b.names(Axis::Var)?)),
            Input::Many(c) => Ok((c.names(Axis::Obs)?, c.names(Axis::Var)?)),
        }
    }

    /// Writes the cells `obs` and genes `var` to `output`, streaming the matrices.
    pub fn write_subset(
        &self,
        obs: &Selection,
        var: &Selection,
        output: &Path,
        options: &WriteOptions,
    ) -> annpage::Result<()> {
        // Nothing selected: the whole input (not a view: unused categories are kept, as
        // anndata.concat keeps them).
        let all = matches!((obs, var), (Selection::All, Selection::All));
        match (self, options.store) {
            (Input::One(b), StoreKind::H5ad) => b.slice(obs, var)?.write_h5ad(output, options),
            (Input::One(b), StoreKind::Zarr) => b.slice(obs, var)?.write_zarr(output, options),
            (Input::Many(c), StoreKind::H5ad) if all => c.write_h5ad(output, options),
            (Input::Many(c), StoreKind::Zarr) if all => c.write_zarr(output, options),
            (Input::Many(c), StoreKind::H5ad) => c.slice(obs, var)?.write_h5ad(output, options),
            (Input::Many(c), StoreKind::Zarr) => c.slice(obs, var)?.write_zarr(output, options),
        }
    }

    /// The per-cell and per-gene statistics of X (or `layer`), read in chunks of `chunk_rows`
    /// rows and reduced on `threads` threads; `progress` is told the rows of each chunk done.
    pub fn qc(
        &self,
        layer: Option<&str>,
        chunk_rows: usize,
        threads: Option<usize>,
        progress: &mut (dyn FnMut(usize) + Send),
    ) -> annpage::Result<QcStats> {
        let b = match self {
            Input::Many(c) => return collection_qc(c, layer, chunk_rows, threads, progress),
            Input::One(b) => b,
        };
        let matrix = match layer {
            Some(name) => b.layer(name)?,
            None => b
                .x()
                .ok_or_else(|| Error::invalid("the file has no X").in_file(b.path()))?,
        };
        let (n_obs, n_vars) = b.shape();
        let mut acc = QcAccumulator::with_n_obs(n_obs, n_vars);
        if let Some(n) = threads {
            acc = acc.with_threads(n);
        }
        let rows = annpage::stats::reduction_rows(&matrix, chunk_rows, b.cache_budget())?;
        let mut chunks = matrix.chunks(rows)?;
        while let Some(chunk) = chunks.next() {
            let (rows, m) = chunk?;
            acc.add_chunk(&m)?;
            progress(rows.len());
            chunks.recycle(m);
        }
        Ok(acc.finish())
    }
}
