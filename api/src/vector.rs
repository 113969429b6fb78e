//! Values as frames and vectors, as anndata's `to_df`, `obs_vector` and `var_vector`, in
//! memory and backed.

use annpage_engine::data::{ArrayData, Column, CompactString, DType, DataFrame, Matrix};
use annpage_engine::select::Selection;
use annpage_engine::{map_array, Error, Result};

use crate::{AnnData, Axis, BackedAnnData, BackedMatrixView};

impl AnnData {
    /// `X` (or the layer `layer`) as a dense data frame, as anndata's `to_df(layer)`: the obs
    /// names as index, one column per variable named by the var names (sparse matrices are
    /// densified). An error without `X`, for an unknown layer, or when the var names repeat
    /// (call [`AnnData::var_names_make_unique`] first).
    ///
    /// ```
    /// use annpage::data::{ArrayData, Column, Matrix};
    /// use annpage::AnnData;
    /// let mut adata = AnnData::new(2, 2);
    /// adata.set_x(Some(Matrix::from(ndarray::arr2(&[[1.0f32, 2.0], [3.0, 4.0]]))))?;
    /// let df = adata.to_df(None)?;
    /// assert_eq!(df.index_names().unwrap(), ["0", "1"]);
    /// assert_eq!(df.column("1"), Some(&Column::Array(ArrayData::from(vec![2.0f32, 4.0]))));
    /// # Ok::<(), annpage::Error>(())
    /// ```
    pub fn to_df(&self, layer: Option<&str>) -> Result<DataFrame> {
        let m = self.matrix(layer)?;
        frame(&m.to_dense()?, self.obs(), self.var_names())
    }

    /// The values of `key` for every observation, as anndata's `obs_vector(key, layer)`: the
    /// `obs` column `key`, or the column of `X` (or of layer `layer`) of the variable named
    /// `key`. An error if `key` is both or neither.
    ///
    /// ```
    /// use annpage::data::{ArrayData, Column, Matrix};
    /// use annpage::AnnData;
    /// let mut adata = AnnData::new(2, 2);
    /// adata.set_var_names(vec!["CD3E", "LYZ"])?;
    /// adata.set_x(Some(Matrix::from(ndarray::arr2(&[[1i64, 2], [3, 4]]))))?;
    /// assert_eq!(adata.obs_vector("LYZ", None)?, Column::Array(ArrayData::from(vec![2i64, 4])));
    /// # Ok::<(), annpage::Error>(())
    /// ```
    pub fn obs_vector(&self, key: &str, layer: Option<&str>) -> Result<Column> {
        self.vector(Axis::Obs, key, layer)
    }

    /// The values of `key` for every variable, as anndata's `var_vector(key, layer)`: the
    /// `var` column `key`, or the row of the observation named `key`.
    pub fn var_vector(&self, key: &str, layer: Option<&str>) -> Result<Column> {
        self.vector(Axis::Var, key, layer)
    }

    fn vector(&self, axis: Axis, key: &str, layer: Option<&str>) -> Result<Column> {
        let (frame, names) = match axis {
            Axis::Obs => (self.obs(), self.var_names()),
            Axis::Var => (self.var(), self.obs_names()),
        };
        let Some(position) = locate(axis, frame, names, key)? else {
            let column = frame.column(key).cloned();
            return column.ok_or_else(|| Error::invalid("unreachable: the key was found"));
        };
        let m = self.matrix(layer)?;
        let pick = Selection::positions([position]);
        let (rows, cols) = match axis {
            Axis::Obs => (Selection::All, pick),
            Axis::Var => (pick, Selection::All),
        };
        let (n_obs, n_vars) = self.shape();
        let part = m.subset(&rows.resolve(n_obs, None)?, &cols.resolve(n_vars, None)?)?;
        flat(part)
    }

    /// `X` or a layer.
    fn matrix(&self, layer: Option<&str>) -> Result<&Matrix> {
        match layer {
            Some(name) => self
                .layers()
                .get(name)
                .ok_or_else(|| Error::invalid(format!("no layer named '{name}'"))),
            None => self
                .x()
                .ok_or_else(|| Error::invalid("X is None, there is nothing to read")),
        }
    }
}

impl BackedAnnData {
    /// `X` (or the layer `layer`) as a dense data frame, like [`AnnData::to_df`], read in row
    /// chunks through the cache. Refused before anything is read when the dense values would
    /// take more than `max_bytes` (the frame is built in memory: about twice its size at the
    /// peak).
    pub fn to_df(&self, layer: Option<&str>, max_bytes: usize) -> Result<DataFrame> {
        let m = self.matrix(layer)?;
        let (rows, cols) = m.shape();
        // A string takes its `String` and its text, not the 8 bytes of a reference.
        let per_value = match m.dtype() {
            DType::String => 32,
            d => d.size(),
        };
        let bytes = rows
            .checked_mul(cols)
            .and_then(|n| n.checked_mul(per_value))
            .unwrap_or(usize::MAX);
        if bytes > max_bytes {
            return Err(Error::invalid(format!(
                "{} as a dense frame of {rows} × {cols} {} takes {bytes} bytes, above the limit of {max_bytes}",
                m.element(),
                m.dtype()
            )));
        }
        let chunk_rows = (max_bytes / 8 / (cols * per_value).max(1)).clamp(1, 1 << 16);
        let mut parts = Vec::new();
        for chunk in m.chunks(chunk_rows)? {
            parts.push(chunk?.1.to_dense()?);
        }
        let dense = stack(parts, m.dtype(), cols)?;
        frame(&dense, &self.obs()?, &self.var_names()?)
    }

    /// The values of `key` for every observation, like [`AnnData::obs_vector`]: an `obs`
    /// column, or one variable's column of `X` (or `layer`) read through the cache (the
    /// gene-column path: only the blocks holding that column are read).
    pub fn obs_vector(&self, key: &str, layer: Option<&str>) -> Result<Column> {
        let obs = self.obs()?;
        match locate(Axis::Obs, &obs, &self.var_names()?, key)? {
            None => obs
                .column(key)
                .cloned()
                .ok_or_else(|| Error::invalid("unreachable: the key was found")),
            Some(j) => flat(self.matrix(layer)?.columns(&Selection::positions([j]))?),
        }
    }

    /// The values of `key` for every variable, like [`AnnData::var_vector`]: a `var` column,
    /// or one observation's row of `X` (or `layer`).
    pub fn var_vector(&self, key: &str, layer: Option<&str>) -> Result<Column> {
        let var = self.var()?;
        match locate(Axis::Var, &var, &self.obs_names()?, key)? {
            None => var
                .column(key)
                .cloned()
                .ok_or_else(|| Error::invalid("unreachable: the key was found")),
            Some(i) => flat(self.matrix(layer)?.rows(&Selection::positions([i]))?),
        }
    }

    fn matrix(&self, layer: Option<&str>) -> Result<BackedMatrixView> {
        match layer {
            Some(name) => self.layer(name),
            None => self.x().ok_or_else(|| {
                Error::invalid("X is None, there is nothing to read").in_file(self.path())
            }),
        }
    }
}

/// Where `key` is: `None` for a column of `frame`, `Some(position)` for one of `names` (the
/// other axis's names). An error if it is both, neither, or a repeated name.
fn locate(
    axis: Axis,
    frame: &DataFrame,
    names: &[CompactString],
    key: &str,
) -> Result<Option<usize>> {
    let other = axis.other().name();
    let mut found = names
        .iter()
        .enumerate()
        .filter(|(_, n)| *n == key)
        .map(|(i, _)| i);
    let (first, second) = (found.next(), found.next());
    match (frame.column(key).is_some(), first, second) {
        (true, Some(_), _) => Err(Error::invalid(format!(
            "key '{key}' is both a column of {} and one of {other}_names",
            axis.name()
        ))),
        (true, None, _) => Ok(None),
        (false, Some(_), Some(_)) => Err(Error::invalid(format!(
            "key '{key}' appears more than once in {other}_names"
        ))),
        (false, Some(i), None) => Ok(Some(i)),
        (false, None, _) => Err(Error::invalid(format!(
            "could not find key '{key}' in {other}_names or {}.columns",
            axis.name()
        ))),
    }
}

/// A one-row or one-column matrix as a 1-d column.
fn flat(m: Matrix) -> Result<Column> {
    let dense = m.to_dense()?;
    let n = dense.len();
    let flat = map_array!(dense, a => a.into_shape_with_order(ndarray::IxDyn(&[n])).map_err(|e| Error::shape(e.to_string()))?);
    Ok(Column::Array(flat))
}

/// Row blocks of a dense matrix (each `_ × cols`), stacked.
fn stack(parts: Vec<ArrayData>, dtype: DType, cols: usize) -> Result<ArrayData> {
    if parts.is_empty() {
        return Ok(ArrayData::zeros(dtype, &[0, cols]));
    }
    ArrayData::concat_rows(&parts)
}

/// A dense 2-d matrix as a frame indexed like `obs`, one column per variable.
fn frame(dense: &ArrayData, obs: &DataFrame, var_names: &[CompactString]) -> Result<DataFrame> {
    let mut df = DataFrame::with_index(obs.index().clone())?;
    df.set_index_name(obs.index_name().map(str::to_owned));
    df.set_index_string_na(obs.index_string_na())?;
    if dense.ndim() != 2 || dense.shape()[1] != var_names.len() {
        return Err(Error::shape(format!(
            "a matrix of shape {:?} for {} variables",
            dense.shape(),
            var_names.len()
        )));
    }
    for (j, name) in var_names.iter().enumerate() {
        if df.column(name).is_some() {
            return Err(Error::invalid(format!(
                "var name '{name}' repeats: a frame needs unique column names (make the names unique first)"
            )));
        }
        let column = map_array!(dense, a => a.index_axis(ndarray::Axis(1), j).to_owned());
        df.insert(name.clone(), Column::Array(column))?;
    }
    Ok(df)
}
