//! Whole-object transformations with anndata's semantics: `transpose` (`.T`),
//! `obs_names_make_unique` / `var_names_make_unique`, `strings_to_categoricals`.

use std::collections::{HashMap, HashSet};

use annpage_engine::data::{
    ArrayData, Categorical, Column, CompactString, DataFrame, Matrix, NullableKind,
};
use annpage_engine::map_array;
use annpage_engine::Result;

use crate::natsort::natural_cmp;
use crate::{AnnData, Axis};

impl AnnData {
    /// The transposed object, as anndata's `adata.T`: observations and variables swap, with
    /// `obs` ↔ `var`, `obsm` ↔ `varm`, `obsp` ↔ `varp`; `X` and every layer are transposed
    /// (a CSR matrix becomes CSC over the same arrays, as scipy's `.T`); `uns` is kept and
    /// `raw` is dropped (anndata ignores it).
    ///
    /// ```
    /// use annpage::data::{ArrayData, Matrix};
    /// use annpage::AnnData;
    /// let mut adata = AnnData::new(2, 3);
    /// adata.set_x(Some(Matrix::from(ndarray::arr2(&[[1i32, 2, 3], [4, 5, 6]]))))?;
    /// let t = adata.transpose();
    /// assert_eq!(t.shape(), (3, 2));
    /// assert_eq!(t.obs_names(), ["0", "1", "2"]);
    /// assert_eq!(t.x(), Some(&Matrix::from(ndarray::arr2(&[[1i32, 4], [2, 5], [3, 6]]))));
    /// # Ok::<(), annpage::Error>(())
    /// ```
    pub fn transpose(&self) -> AnnData {
        let mut e = self.elements().clone();
        std::mem::swap(&mut e.obs, &mut e.var);
        std::mem::swap(&mut e.obsm, &mut e.varm);
        std::mem::swap(&mut e.obsp, &mut e.varp);
        e.x = e.x.map(transpose_matrix);
        for layer in e.layers.values_mut() {
            *layer = transpose_matrix(std::mem::replace(
                layer,
                Matrix::from(ndarray::Array2::<u8>::zeros((0, 0))),
            ));
        }
        e.raw = None;
        AnnData::from_valid(e)
    }

    /// Makes the observation names unique as anndata's `obs_names_make_unique(join)`: the
    /// second and later occurrences of a name become `name{join}1`, `name{join}2`, … (skipping
    /// names already taken). Nothing changes when the names are unique.
    ///
    /// ```
    /// use annpage::AnnData;
    /// let mut adata = AnnData::new(4, 1);
    /// adata.set_obs_names(vec!["a", "a", "b", "a"])?;
    /// adata.obs_names_make_unique("-")?;
    /// assert_eq!(adata.obs_names(), ["a", "a-1", "b", "a-2"]);
    /// # Ok::<(), annpage::Error>(())
    /// ```
    pub fn obs_names_make_unique(&mut self, join: &str) -> Result<()> {
        self.names_make_unique(Axis::Obs, join)
    }

    /// Makes the variable names unique, as [`AnnData::obs_names_make_unique`] does for
    /// observations (anndata's `var_names_make_unique`).
    pub fn var_names_make_unique(&mut self, join: &str) -> Result<()> {
        self.names_make_unique(Axis::Var, join)
    }

    fn names_make_unique(&mut self, axis: Axis, join: &str) -> Result<()> {
        let (names, frame) = match axis {
            Axis::Obs => (self.obs_names(), self.obs()),
            Axis::Var => (self.var_names(), self.var()),
        };
        let Some(unique) = make_unique(names, join) else {
            return Ok(());
        };
        // anndata sets the names from an index that keeps its name.
        let index_name = frame.index_name().map(str::to_owned);
        match axis {
            Axis::Obs => {
                self.set_obs_names(unique)?;
                self.obs_mut().set_index_name(index_name);
            }
            Axis::Var => {
                self.set_var_names(unique)?;
                self.var_mut().set_index_name(index_name);
            }
        }
        Ok(())
    }

    /// Turns the string columns of `obs` and `var` that repeat a value into categoricals, as
    /// anndata's `strings_to_categoricals()`: a column becomes categorical when it has fewer
    /// distinct values than rows; its categories are sorted naturally (`"c2"` before `"c10"`,
    /// as `natsort` sorts them); missing values of a nullable string column become missing
    /// codes. anndata also does this when it writes a file (its `write_h5ad` default); annpage
    /// writes what it holds, so call this first to write what anndata writes.
    ///
    /// ```
    /// use annpage::data::{ArrayData, Column};
    /// use annpage::AnnData;
    /// let mut adata = AnnData::new(3, 1);
    /// adata.obs_mut().insert("batch", Column::Array(ArrayData::from(vec!["b10", "b2", "b10"])))?;
    /// adata.obs_mut().insert("id", Column::Array(ArrayData::from(vec!["x", "y", "z"])))?;
    /// adata.strings_to_categoricals()?;
    /// let Some(Column::Categorical(c)) = adata.obs().column("batch") else { panic!() };
    /// assert_eq!((c.codes.as_slice(), &c.categories), (&[1, 0, 1][..], &ArrayData::from(vec!["b2", "b10"])));
    /// assert!(matches!(adata.obs().column("id"), Some(Column::Array(_))));
    /// # Ok::<(), annpage::Error>(())
    /// ```
    pub fn strings_to_categoricals(&mut self) -> Result<()> {
        for axis in [Axis::Obs, Axis::Var] {
            let frame: &DataFrame = match axis {
                Axis::Obs => self.obs(),
                Axis::Var => self.var(),
            };
            for (name, c) in categoricals_of(frame)? {
                let column = Column::Categorical(c);
                match axis {
                    Axis::Obs => self.obs_mut().insert(name, column)?,
                    Axis::Var => self.var_mut().insert(name, column)?,
                }
            }
        }
        Ok(())
    }

    /// The same for `raw.var` (anndata's `strings_to_categoricals(adata.raw.var)`, which its
    /// `write_h5ad` does after [`AnnData::strings_to_categoricals`]); nothing without raw.
    ///
    /// ```
    /// use annpage::data::{ArrayData, Column};
    /// use annpage::AnnData;
    /// let mut adata = AnnData::new(2, 3);
    /// adata.var_mut().insert("kind", Column::Array(ArrayData::from(vec!["a", "b", "a"])))?;
    /// let raw = annpage::RawElements {
    ///     x: annpage::data::Matrix::Dense(ArrayData::zeros(annpage::data::DType::F32, &[2, 3])),
    ///     var: adata.var().clone(),
    ///     varm: Default::default(),
    /// };
    /// adata.set_raw(Some(raw))?;
    /// adata.raw_strings_to_categoricals()?;
    /// assert!(matches!(adata.raw().unwrap().var.column("kind"), Some(Column::Categorical(_))));
    /// assert!(matches!(adata.var().column("kind"), Some(Column::Array(_))));
    /// # Ok::<(), annpage::Error>(())
    /// ```
    pub fn raw_strings_to_categoricals(&mut self) -> Result<()> {
        let Some(raw) = self.raw() else {
            return Ok(());
        };
        let mut raw = raw.clone();
        if frame_strings_to_categoricals(&mut raw.var)? {
            self.set_raw(Some(raw))?;
        }
        Ok(())
    }
}

/// [`AnnData::strings_to_categoricals`] of one frame; whether a column changed.
pub(crate) fn frame_strings_to_categoricals(frame: &mut DataFrame) -> Result<bool> {
    let changed = categoricals_of(frame)?;
    let any = !changed.is_empty();
    for (name, c) in changed {
        frame.insert(name, Column::Categorical(c))?;
    }
    Ok(any)
}

/// The columns of `frame` `strings_to_categoricals` changes, each with its categorical.
fn categoricals_of(frame: &DataFrame) -> Result<Vec<(String, Categorical)>> {
    let mut changed = Vec::new();
    for (name, column) in frame.columns() {
        if let Some(c) = categorical_of(column)? {
            changed.push((name.clone(), c));
        }
    }
    Ok(changed)
}

/// A matrix transposed: sparse ones change format over the same arrays, dense ones are
/// copied in row-major order.
pub(crate) fn transpose_matrix(m: Matrix) -> Matrix {
    match m {
        Matrix::Sparse(s) => Matrix::Sparse(s.transpose()),
        Matrix::Dense(a) if a.ndim() == 2 => {
            Matrix::Dense(map_array!(a, a => a.reversed_axes().as_standard_layout().into_owned()))
        }
        Matrix::Dense(a) => Matrix::Dense(a),
    }
}

/// anndata's `make_index_unique`, or `None` when the names are already unique.
fn make_unique(names: &[CompactString], join: &str) -> Option<Vec<CompactString>> {
    let mut seen = HashSet::with_capacity(names.len());
    let duplicated: Vec<bool> = names.iter().map(|n| !seen.insert(n.as_str())).collect();
    if !duplicated.contains(&true) {
        return None;
    }
    let mut taken: HashSet<CompactString> = names.iter().cloned().collect();
    let mut counter: HashMap<&str, u64> = HashMap::new();
    let mut out = names.to_vec();
    for (i, name) in names.iter().enumerate().filter(|&(i, _)| duplicated[i]) {
        let n = counter.entry(name.as_str()).or_insert(0);
        loop {
            *n += 1;
            let candidate = compact_str::format_compact!("{name}{join}{n}");
            if !taken.contains(&candidate) {
                taken.insert(candidate.clone());
                out[i] = candidate;
                break;
            }
        }
    }
    Some(out)
}

/// The categorical `strings_to_categoricals` makes of a string column, or `None` when it
/// leaves the column alone (not strings, or no value repeated).
fn categorical_of(column: &Column) -> Result<Option<Categorical>> {
    let (values, mask): (&[CompactString], Option<&[bool]>) = match column {
        Column::Array(a) => match a.as_strings() {
            Some(v) => (v, None),
            None => return Ok(None),
        },
        Column::Nullable(n) if matches!(n.kind(), NullableKind::String(_)) => {
            match n.values().as_strings() {
                Some(v) => (v, Some(n.mask())),
                None => return Ok(None),
            }
        }
        _ => return Ok(None),
    };
    let missing = |i: usize| mask.is_some_and(|m| m[i]);
    let mut categories: Vec<&str> = (0..values.len())
        .filter(|&i| !missing(i))
        .map(|i| values[i].as_str())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    // pandas counts missing values as rows, not categories.
    if categories.len() >= values.len() {
        return Ok(None);
    }
    // pandas sorts the categories; natsort then reorders them (a stable sort).
    categories.sort_unstable();
    categories.sort_by(|a, b| natural_cmp(a, b));
    let code: HashMap<&str, i32> = categories
        .iter()
        .enumerate()
        .map(|(i, &c)| (c, i as i32))
        .collect();
    let codes = (0..values.len())
        .map(|i| {
            if missing(i) {
                -1
            } else {
                code[values[i].as_str()]
            }
        })
        .collect();
    let categories = ArrayData::from(
        categories
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>(),
    );
    Categorical::new(codes, categories, false).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn make_unique_skips_taken_names() {
        let names: Vec<CompactString> = ["a", "a", "a-1", "a"].map(Into::into).to_vec();
        assert_eq!(
            make_unique(&names, "-").unwrap(),
            ["a", "a-2", "a-1", "a-3"]
        );
        assert_eq!(make_unique(&names[..1], "-"), None);
    }
}
