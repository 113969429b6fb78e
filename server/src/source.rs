//! What a dataset reads from: one file, or several files as one collection (their lazy
//! concatenation along obs). Each read the routes make, whichever of the two it is.

use std::path::Path;

use annpage::data::{Column, DataFrame, Element, Matrix};
use annpage::{
    read_collection, read_h5ad_backed, Axis, BackedAnnData, BackedCollection, BackedOptions, Mode,
    Selection, WriteOptions,
};

use crate::error::ApiError;
use crate::DatasetSpec;

/// A served dataset's handle (cheap to clone: both kinds share their files and cache).
#[derive(Clone)]
pub(crate) enum Source {
    File(BackedAnnData),
    Collection(BackedCollection),
}

impl Source {
    /// Opens `spec` read-only: its one file, or its files as a collection.
    pub fn open(spec: &DatasetSpec, backed: BackedOptions) -> annpage::Result<Source> {
        match &spec.paths[..] {
            [one] if spec.concat.is_none() => {
                Ok(Source::File(read_h5ad_backed(one, Mode::Read, backed)?))
            }
            paths => {
                let options = spec.concat.clone().unwrap_or_default();
                let c = read_collection(paths, &options, &backed)?;
                // The annotations are concatenated now, once: `/datasets` lists them, and a
                // collection that cannot be concatenated is refused at start.
                c.uns_keys()?;
                Ok(Source::Collection(c))
            }
        }
    }

    /// The one file this reads, when it is not a collection.
    pub fn file(&self) -> Option<&BackedAnnData> {
        match self {
            Source::File(b) => Some(b),
            Source::Collection(_) => None,
        }
    }

    pub fn shape(&self) -> (usize, usize) {
        match self {
            Source::File(b) => b.shape(),
            Source::Collection(c) => c.shape(),
        }
    }

    pub fn n_obs(&self) -> usize {
        self.shape().0
    }

    pub fn n_vars(&self) -> usize {
        self.shape().1
    }

    /// The obs (`Axis::Obs`) or var names.
    pub fn names(&self, axis: Axis) -> annpage::Result<Vec<annpage::data::CompactString>> {
        match (self, axis) {
            (Source::File(b), Axis::Obs) => b.obs_names(),
            (Source::File(b), Axis::Var) => b.var_names(),
            (Source::Collection(c), Axis::Obs) => c.obs_names(),
            (Source::Collection(c), Axis::Var) => c.var_names(),
        }
    }

    /// pandas' name of the obs or var index.
    pub fn index_name(&self, axis: Axis) -> Option<String> {
        match self {
            Source::File(b) => b.index_name(axis),
            Source::Collection(c) => c.index_name(axis),
        }
    }

    /// The names of obs's (`Axis::Obs`) or var's columns, from metadata.
    pub fn keys(&self, axis: Axis) -> annpage::Result<Vec<String>> {
        match (self, axis) {
            (Source::File(b), Axis::Obs) => Ok(b.obs_keys()),
            (Source::File(b), Axis::Var) => Ok(b.var_keys()),
            (Source::Collection(c), Axis::Obs) => c.obs_keys(),
            (Source::Collection(c), Axis::Var) => c.var_keys(),
        }
    }

    /// obs or var, whole.
    pub fn frame(&self, axis: Axis) -> annpage::Result<DataFrame> {
        match (self, axis) {
            (Source::File(b), _) => b.frame(axis),
            (Source::Collection(c), Axis::Obs) => c.obs(),
            (Source::Collection(c), Axis::Var) => c.var(),
        }
    }

    /// One obs or var column (`None`: no such column).
    pub fn frame_column(&self, axis: Axis, name: &str) -> annpage::Result<Option<Column>> {
        match self {
            Source::File(b) => b.frame_column(axis, name),
            Source::Collection(c) => c.frame_column(axis, name),
        }
    }

    /// The cells `obs` and genes `var` of this selection; nothing is read but names.
    pub fn slice(&self, obs: &Selection, var: &Selection) -> annpage::Result<Source> {
        match self {
            Source::File(b) => Ok(Source::File(b.slice(obs, var)?)),
            Source::Collection(c) => Ok(Source::Collection(c.slice(obs, var)?)),
        }
    }

    pub fn has_x(&self) -> bool {
        match self {
            Source::File(b) => b.x().is_some(),
            Source::Collection(c) => c.has_x(),
        }
    }

    pub fn layer_names(&self) -> Vec<String> {
        match self {
            Source::File(b) => b.layer_names(),
            Source::Collection(c) => c.layer_names().to_vec(),
        }
    }

    pub fn obsm_keys(&self) -> annpage::Result<Vec<String>> {
        match self {
            Source::File(b) => Ok(b.obsm_keys()),
            Source::Collection(c) => c.obsm_keys(),
        }
    }

    /// The selected rows of an obsm entry.
    pub fn obsm(&self, key: &str) -> annpage::Result<Element> {
        match self {
            Source::File(b) => b.obsm(key),
            Source::Collection(c) => c.obsm(key),
        }
    }

    /// `/datasets`' description: shape, X's dtype, and every element by its path.
    pub fn describe(&self) -> annpage::Result<serde_json::Value> {
        let (x, groups, raw, uns) = match self {
            Source::File(b) => (
                b.x().map(|x| x.dtype().name()),
                [b.varm_keys(), b.obsp_keys(), b.varp_keys()],
                b.raw_x().is_some(),
                b.uns_keys(),
            ),
            Source::Collection(c) => (
                c.matrix_kind(None).ok().map(|(_, dtype)| dtype.name()),
                [c.varm_keys()?, c.obsp_keys()?, c.varp_keys()?],
                false,
                c.uns_keys()?,
            ),
        };
        let mut elements = vec![];
        if self.has_x() {
            elements.push("X".to_string());
        }
        let [varm, obsp, varp] = groups;
        for (group, keys) in [
            ("layers", self.layer_names()),
            ("obsm", self.obsm_keys()?),
            ("varm", varm),
            ("obsp", obsp),
            ("varp", varp),
        ] {
            elements.extend(keys.into_iter().map(|k| format!("{group}/{k}")));
        }
        if raw {
            elements.push("raw/X".to_string());
        }
        Ok(serde_json::json!({
            "shape": [self.n_obs(), self.n_vars()],
            "x": x,
            "elements": elements,
            "layers": self.layer_names(),
            "obsm": self.obsm_keys()?,
            "uns": uns,
        }))
    }

    /// Refuses a matrix this dataset lacks: X (`layer: None`) or a layer.
    pub fn check_matrix(&self, name: &str, layer: Option<&str>) -> Result<(), ApiError> {
        match layer {
            Some(l) if !self.layer_names().iter().any(|k| k == l) => {
                Err(ApiError::not_found(format!("no layer '{l}' in {name}")))
            }
            None if !self.has_x() => Err(ApiError::not_found(format!("{name} has no X"))),
            _ => Ok(()),
        }
    }

    /// The values reading this selection of X (or `layer`) holds at most.
    pub fn stored_values(&self, layer: Option<&str>) -> annpage::Result<u64> {
        match self {
            Source::File(b) => match layer {
                Some(l) => b.layer(l)?.stored_values(),
                None => b.x().map_or(Ok(0), |x| x.stored_values()),
            },
            Source::Collection(c) => c.stored_values(layer),
        }
    }

    /// This selection of X (or `layer`), in memory.
    pub fn read(&self, layer: Option<&str>) -> annpage::Result<Matrix> {
        match (self, layer) {
            (Source::File(b), Some(l)) => b.layer(l)?.to_memory(),
            (Source::File(b), None) => match b.x() {
                Some(x) => x.to_memory(),
                None => Err(annpage::Error::invalid("the file has no X")),
            },
            (Source::Collection(c), Some(l)) => c.layer_to_memory(l),
            (Source::Collection(c), None) => c.x_to_memory(),
        }
    }

    /// The genes `genes` (positions) of every selected cell of X (or `layer`).
    pub fn read_genes(&self, layer: Option<&str>, genes: &[usize]) -> annpage::Result<Matrix> {
        let genes = Selection::positions(genes.iter().copied());
        match (self, layer) {
            (Source::File(b), Some(l)) => b.layer(l)?.columns(&genes),
            (Source::File(b), None) => match b.x() {
                Some(x) => x.columns(&genes),
                None => Err(annpage::Error::invalid("the file has no X")),
            },
            (Source::Collection(_), _) => self.slice(&Selection::All, &genes)?.read(layer),
        }
    }

    /// Writes this selection as an `.h5ad` file, streaming its matrices.
    pub fn write_h5ad(&self, path: &Path, options: &WriteOptions) -> annpage::Result<()> {
        match self {
            Source::File(b) => b.write_h5ad(path, options),
            Source::Collection(c) => c.write_h5ad(path, options),
        }
    }
}
