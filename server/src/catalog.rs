//! The served datasets: backed handles opened read-only within one cache and one reader pool,
//! and what requests look up by name (datasets, genes).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use annpage::backed::{BlockCache, MatrixKind, ReadOptions};
use annpage::data::SparseFormat;
use annpage::{read_h5ad_backed, BackedAnnData, BackedOptions, Mode, WriteOptions};

use crate::error::ApiError;
use crate::{ServeError, ServeOptions};

/// One served dataset.
pub(crate) struct Dataset {
    pub name: String,
    pub path: PathBuf,
    /// Opened with [`Mode::Read`]: nothing is ever written to a served file.
    pub handle: BackedAnnData,
    pub var_names: Arc<Vec<String>>,
    /// The position of each gene name (the first, when a name is repeated).
    gene_positions: HashMap<String, usize>,
    /// A gene-major copy of X (see [`ServeOptions::gene_index`]) once it is ready.
    pub gene_major: OnceLock<BackedAnnData>,
}

impl Dataset {
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
    pub fn summary(&self) -> serde_json::Value {
        let h = &self.handle;
        let mut elements = vec![];
        if h.x().is_some() {
            elements.push("X".to_string());
        }
        for (group, keys) in [
            ("layers", h.layer_names()),
            ("obsm", h.obsm_keys()),
            ("varm", h.varm_keys()),
            ("obsp", h.obsp_keys()),
            ("varp", h.varp_keys()),
        ] {
            elements.extend(keys.into_iter().map(|k| format!("{group}/{k}")));
        }
        if h.raw_x().is_some() {
            elements.push("raw/X".to_string());
        }
        serde_json::json!({
            "name": self.name,
            "path": self.path.display().to_string(),
            "shape": [h.n_obs(), h.n_vars()],
            "x": h.x().map(|x| x.dtype().name()),
            "elements": elements,
            "layers": h.layer_names(),
            "obsm": h.obsm_keys(),
            "uns": h.uns_keys(),
            // Whether gene requests read a gene-major copy of X (see `--gene-index`).
            "gene_index": self.gene_major.get().is_some(),
        })
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
            let handle = read_h5ad_backed(&spec.path, Mode::Read, backed())?;
            let var_names = handle.var_names()?;
            let mut gene_positions = HashMap::with_capacity(var_names.len());
            for (i, name) in var_names.iter().enumerate() {
                gene_positions.entry(name.clone()).or_insert(i);
            }
            datasets.push(Arc::new(Dataset {
                name: spec.name.clone(),
                path: spec.path.clone(),
                handle,
                var_names: Arc::new(var_names),
                gene_positions,
                gene_major: OnceLock::new(),
            }));
        }
        if let Some(dir) = &options.gene_index {
            std::fs::create_dir_all(dir).map_err(ServeError::Io)?;
            for d in &datasets {
                gene_index(d, dir, options, &backed())?;
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

/// Opens the gene-major copy of `d`'s X in `dir` when it is there and newer than the file;
/// else writes it on a thread of its own (gene requests read X until it is ready). X that is
/// CSC already, or absent, needs none.
fn gene_index(
    d: &Arc<Dataset>,
    dir: &Path,
    options: &ServeOptions,
    backed: &BackedOptions,
) -> Result<(), ServeError> {
    let Some(x) = d.handle.x() else { return Ok(()) };
    if x.kind() == MatrixKind::Sparse(SparseFormat::Csc) {
        return Ok(());
    }
    let path = dir.join(format!("{}.genes.h5ad", d.name));
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let fresh =
        matches!((modified(&path), modified(&d.path)), (Some(copy), Some(file)) if copy >= file);
    if fresh {
        match read_h5ad_backed(&path, Mode::Read, backed.clone()) {
            Ok(copy) if copy.shape() == d.handle.shape() => {
                let _ = d.gene_major.set(copy);
                return Ok(());
            }
            // Unreadable or of another shape: written again below.
            _ => {}
        }
    }
    let (d, backed, log) = (d.clone(), backed.clone(), options.log_requests);
    // What one pass gathers: half the cache, at most 512 MiB.
    let memory = (options.cache_bytes / 2).clamp(1 << 20, 512 << 20);
    std::thread::Builder::new()
        .name(format!("gene-index-{}", d.name))
        .spawn(move || {
            let start = Instant::now();
            if log {
                eprintln!(
                    "INFO writing the gene index of {} to {}",
                    d.name,
                    path.display()
                );
            }
            let written = d
                .handle
                .write_gene_major(&path, memory, &WriteOptions::default())
                .and_then(|()| read_h5ad_backed(&path, Mode::Read, backed));
            match written {
                Ok(copy) => {
                    let _ = d.gene_major.set(copy);
                    if log {
                        eprintln!(
                            "INFO the gene index of {} is ready ({:.1} s)",
                            d.name,
                            start.elapsed().as_secs_f64()
                        );
                    }
                }
                // Gene requests keep reading X.
                Err(e) => eprintln!("WARN no gene index for {}: {e}", d.name),
            }
        })
        .map_err(ServeError::Io)?;
    Ok(())
}
