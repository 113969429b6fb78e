//! The served datasets: backed handles opened read-only within one cache and one reader pool,
//! and what requests look up by name (datasets, genes).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use annpage::backed::{BlockCache, ReadOptions};
use annpage::data::CompactString;
use annpage::{Axis, BackedAnnData, BackedOptions};

use crate::error::ApiError;
use crate::source::Source;
use crate::{ServeError, ServeOptions};

/// One served dataset.
pub(crate) struct Dataset {
    pub name: String,
    /// Its file, or the files of a collection.
    pub paths: Vec<PathBuf>,
    /// How a collection concatenates its files, as given.
    pub concat: Option<annpage::ConcatOptions>,
    /// Opened with [`Mode::Read`](annpage::Mode::Read): nothing is ever written to a served
    /// file.
    pub handle: Source,
    pub var_names: Arc<Vec<CompactString>>,
    /// The position of each gene name (the first, when a name is repeated).
    gene_positions: HashMap<CompactString, usize>,
    /// A gene-major copy of X (see [`ServeOptions::index_dir`]) once it is ready.
    pub gene_major: OnceLock<BackedAnnData>,
    /// An uncompressed copy of a compressed file or of a collection's concatenation (see
    /// [`ServeOptions::index_dir`]) once it is ready.
    pub plain: OnceLock<Source>,
}

impl Dataset {
    /// The handle reads go through: the uncompressed copy once it is ready, else the dataset.
    pub fn reader(&self) -> &Source {
        self.plain.get().unwrap_or(&self.handle)
    }

    /// A gene by name, or by position when `key` is a number that names no gene.
    pub fn gene(&self, key: &str) -> Result<usize, ApiError> {
        if let Some(&i) = self.gene_positions.get(key) {
            return Ok(i);
        }
        match key.parse::<usize>() {
            Ok(i) if i < self.var_names.len() => Ok(i),
            Ok(i) => Err(ApiError::bad_request(format!(
                "gene position {i} is out of range: {} has {} genes",
                self.name,
                self.var_names.len()
            ))),
            Err(_) => Err(ApiError::not_found(format!(
                "no gene named '{key}' in {}",
                self.name
            ))),
        }
    }

    /// The JSON object `/datasets` lists.
    pub fn summary(&self) -> annpage::Result<serde_json::Value> {
        let mut out = self.handle.describe()?;
        let paths: Vec<String> = self.paths.iter().map(|p| p.display().to_string()).collect();
        out["name"] = serde_json::json!(self.name);
        out["path"] = serde_json::json!(paths[0]);
        if paths.len() > 1 || self.handle.file().is_none() {
            out["collection"] = serde_json::json!(paths);
        }
        // Which copies of `--index` are ready: gene requests read the gene-major one, every
        // other read the uncompressed one.
        out["index"] = serde_json::json!({
            "genes": self.gene_major.get().is_some(),
            "plain": self.plain.get().is_some(),
        });
        Ok(out)
    }
}

/// Every served dataset, in the order given.
pub(crate) struct Catalog {
    pub datasets: Vec<Arc<Dataset>>,
    pub cache: Arc<BlockCache>,
}

impl Catalog {
    pub fn open(options: &ServeOptions, threads: usize) -> Result<Catalog, ServeError> {
        if options.datasets.is_empty() {
            return Err(ServeError::NoDatasets);
        }
        let cache = Arc::new(BlockCache::new(options.cache_bytes));
        let read = ReadOptions::with_threads(threads);
        let backed = || BackedOptions {
            cache: Some(cache.clone()),
            read: read.clone(),
            ..BackedOptions::default()
        };
        let mut datasets: Vec<Arc<Dataset>> = Vec::new();
        for spec in &options.datasets {
            if datasets.iter().any(|d| d.name == spec.name) {
                return Err(ServeError::Name(format!(
                    "'{}' is given twice: name them apart with NAME=FILE",
                    spec.name
                )));
            }
            let handle = Source::open(spec, backed())?;
            let var_names = handle.names(Axis::Var)?;
            let mut gene_positions = HashMap::with_capacity(var_names.len());
            for (i, name) in var_names.iter().enumerate() {
                gene_positions.entry(name.clone()).or_insert(i);
            }
            datasets.push(Arc::new(Dataset {
                name: spec.name.clone(),
                paths: spec.paths.clone(),
                concat: spec.concat.clone(),
                handle,
                var_names: Arc::new(var_names),
                gene_positions,
                gene_major: OnceLock::new(),
                plain: OnceLock::new(),
            }));
        }
        if let Some(dir) = &options.index_dir {
            std::fs::create_dir_all(dir).map_err(|e| {
                let why = format!("cannot make the --index directory: {e}");
                ServeError::Open(
                    annpage::Error::Io(std::io::Error::new(e.kind(), why)).in_file(dir),
                )
            })?;
            for d in &datasets {
                crate::index::open_or_write(d, dir, options, &backed())?;
            }
        }
        Ok(Catalog { datasets, cache })
    }

    pub fn get(&self, name: &str) -> Result<Arc<Dataset>, ApiError> {
        self.datasets
            .iter()
            .find(|d| d.name == name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("no dataset named '{name}'")))
    }
}
