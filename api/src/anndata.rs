//! [`AnnData`]: an annotated matrix held in memory, whose shapes always agree.

pub use annpage_engine::data::Axis;
use annpage_engine::data::{ArrayData, CompactString, DataFrame, Element, Mapping, Matrix};
use annpage_engine::format::{AnnDataElements, RawElements};
use annpage_engine::{Error, Result};
use indexmap::IndexMap;

use crate::frame::FrameMut;
use crate::validate;
use crate::view::AnnDataView;
use crate::Selection;

/// An annotated data matrix: `n_obs` observations (cells) × `n_vars` variables (genes), with
/// their annotations, held in memory.
///
/// The object keeps anndata's invariants at all times: `X` and every layer are
/// `n_obs × n_vars`, `obsm` values have `n_obs` rows and `varm` values `n_vars`, `obsp` and
/// `varp` are square over their axis, `raw.X` has `n_obs` rows and one column per `raw.var`
/// row, and the `obs`/`var` indexes (the names) are strings. Every setter checks its value and
/// fails with [`Error::Shape`] (`obsm['X_pca'] has 99 rows, obs has 100`) rather than break
/// them.
///
/// ```
/// use annpage::data::{ArrayData, Element, Matrix};
/// use annpage::AnnData;
/// let mut adata = AnnData::new(3, 2);
/// adata.set_x(Some(Matrix::Dense(ArrayData::from(ndarray::Array2::<f32>::zeros((3, 2)))))).unwrap();
/// let pca = Element::Array(ArrayData::from(ndarray::Array2::<f64>::zeros((2, 5))));
/// let err = adata.insert_obsm("X_pca", pca).unwrap_err();
/// assert_eq!(err.to_string(), "shape mismatch: obsm['X_pca'] has 2 rows, obs has 3");
/// assert_eq!(adata.obs_names(), ["0", "1", "2"]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct AnnData {
    elems: AnnDataElements,
}

impl AnnData {
    /// An object of `n_obs` × `n_vars` with anndata's default names (`"0"`, `"1"`, …) and no
    /// other elements (in particular no `X`).
    pub fn new(n_obs: usize, n_vars: usize) -> Self {
        AnnData {
            elems: AnnDataElements::empty(n_obs, n_vars),
        }
    }

    /// Builds an object from its elements, checking every shape (see [`AnnData`]).
    ///
    /// `n_obs` and `n_vars` are the row counts of `obs` and `var`. Like anndata, this turns
    /// non-string `obs`/`var`/`raw.var` indexes into strings (`1.0`, `True`), reshapes 1-d
    /// arrays in `obsm`/`varm` into one-column matrices, and requires data frames in
    /// `obsm`/`varm` to be indexed by the axis's names.
    pub fn from_elements(mut elems: AnnDataElements) -> Result<Self> {
        validate::normalise(&mut elems)?;
        Ok(AnnData { elems })
    }

    /// Wraps elements already known to satisfy the invariants (subsets of a valid object).
    pub(crate) fn from_valid(elems: AnnDataElements) -> Self {
        AnnData { elems }
    }

    /// Takes the object apart into its elements.
    pub fn into_elements(self) -> AnnDataElements {
        self.elems
    }

    /// All elements, as they would be written.
    pub fn elements(&self) -> &AnnDataElements {
        &self.elems
    }

    /// Whether this is a view: never for an `AnnData` (see [`AnnDataView`]).
    pub fn is_view(&self) -> bool {
        false
    }

    /// Number of observations (rows).
    pub fn n_obs(&self) -> usize {
        self.elems.obs.nrows()
    }

    /// Number of variables (columns).
    pub fn n_vars(&self) -> usize {
        self.elems.var.nrows()
    }

    /// `(n_obs, n_vars)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.n_obs(), self.n_vars())
    }

    /// The observation names (the `obs` index).
    pub fn obs_names(&self) -> &[CompactString] {
        names_of(&self.elems.obs)
    }

    /// The variable names (the `var` index).
    pub fn var_names(&self) -> &[CompactString] {
        names_of(&self.elems.var)
    }

    /// Renames the observations; data frames in `obsm` are re-indexed too. As when anndata's
    /// `obs_names` is set from a list, the index loses its name.
    pub fn set_obs_names<S: Into<CompactString>>(&mut self, names: Vec<S>) -> Result<()> {
        self.set_names(Axis::Obs, names.into_iter().map(Into::into).collect())
    }

    /// Renames the variables; data frames in `varm` are re-indexed too. As when anndata's
    /// `var_names` is set from a list, the index loses its name.
    pub fn set_var_names<S: Into<CompactString>>(&mut self, names: Vec<S>) -> Result<()> {
        self.set_names(Axis::Var, names.into_iter().map(Into::into).collect())
    }

    fn set_names(&mut self, axis: Axis, names: Vec<CompactString>) -> Result<()> {
        let (frame, aligned) = self.axis_parts(axis);
        if names.len() != frame.nrows() {
            return Err(Error::shape(format!(
                "{} new names for {} rows of {}",
                names.len(),
                frame.nrows(),
                axis.name()
            )));
        }
        let names = ArrayData::from(names);
        frame.set_index(names.clone())?;
        frame.set_index_name(None);
        for value in aligned.values_mut() {
            if let Element::DataFrame(df) = value {
                df.set_index(names.clone())?;
                df.set_index_name(None);
            }
        }
        Ok(())
    }

    /// The frame and the aligned mapping of one axis.
    fn axis_parts(&mut self, axis: Axis) -> (&mut DataFrame, &mut Mapping) {
        match axis {
            Axis::Obs => (&mut self.elems.obs, &mut self.elems.obsm),
            Axis::Var => (&mut self.elems.var, &mut self.elems.varm),
        }
    }

    /// The main matrix, if any.
    pub fn x(&self) -> Option<&Matrix> {
        self.elems.x.as_ref()
    }

    /// Sets or removes the main matrix, which must be `n_obs × n_vars`.
    pub fn set_x(&mut self, x: Option<Matrix>) -> Result<()> {
        if let Some(m) = &x {
            validate::check_matrix("X", m, self.shape(), "obs × var")?;
        }
        self.elems.x = x;
        Ok(())
    }

    /// The observation annotations.
    pub fn obs(&self) -> &DataFrame {
        &self.elems.obs
    }

    /// Edits the observation annotations' columns (see [`FrameMut`]).
    pub fn obs_mut(&mut self) -> FrameMut<'_> {
        FrameMut::new(&mut self.elems.obs)
    }

    /// Replaces the observation annotations, which must have `n_obs` rows. As in anndata,
    /// a non-string index becomes strings and data frames in `obsm` take the new names.
    pub fn set_obs(&mut self, obs: DataFrame) -> Result<()> {
        self.set_frame(Axis::Obs, obs)
    }

    /// The variable annotations.
    pub fn var(&self) -> &DataFrame {
        &self.elems.var
    }

    /// Edits the variable annotations' columns (see [`FrameMut`]).
    pub fn var_mut(&mut self) -> FrameMut<'_> {
        FrameMut::new(&mut self.elems.var)
    }

    /// Replaces the variable annotations, which must have `n_vars` rows. As in anndata,
    /// a non-string index becomes strings and data frames in `varm` take the new names.
    pub fn set_var(&mut self, var: DataFrame) -> Result<()> {
        self.set_frame(Axis::Var, var)
    }

    fn set_frame(&mut self, axis: Axis, mut frame: DataFrame) -> Result<()> {
        let (old, aligned) = self.axis_parts(axis);
        if frame.nrows() != old.nrows() {
            return Err(Error::shape(format!(
                "the new {0} has {1} rows, {0} has {2}",
                axis.name(),
                frame.nrows(),
                old.nrows()
            )));
        }
        validate::string_index(&mut frame)?;
        for value in aligned.values_mut() {
            if let Element::DataFrame(df) = value {
                df.set_index(frame.index().clone())?;
                df.set_index_name(frame.index_name().map(str::to_owned));
            }
        }
        *old = frame;
        Ok(())
    }

    /// Multi-dimensional observation annotations (`n_obs` rows each).
    pub fn obsm(&self) -> &Mapping {
        &self.elems.obsm
    }

    /// Adds or replaces an `obsm` entry, which must have `n_obs` rows; returns the old one.
    ///
    /// As in anndata, a 1-d array is stored as an `n_obs × 1` matrix and a data frame must be
    /// indexed by the observation names.
    pub fn insert_obsm(
        &mut self,
        key: impl Into<String>,
        value: Element,
    ) -> Result<Option<Element>> {
        self.insert_aligned(Axis::Obs, key.into(), value)
    }

    /// Removes an `obsm` entry, returning it.
    pub fn remove_obsm(&mut self, key: &str) -> Option<Element> {
        self.elems.obsm.shift_remove(key)
    }

    /// Multi-dimensional variable annotations (`n_vars` rows each).
    pub fn varm(&self) -> &Mapping {
        &self.elems.varm
    }

    /// Adds or replaces a `varm` entry, which must have `n_vars` rows; returns the old one
    /// (see [`AnnData::insert_obsm`]).
    pub fn insert_varm(
        &mut self,
        key: impl Into<String>,
        value: Element,
    ) -> Result<Option<Element>> {
        self.insert_aligned(Axis::Var, key.into(), value)
    }

    /// Removes a `varm` entry, returning it.
    pub fn remove_varm(&mut self, key: &str) -> Option<Element> {
        self.elems.varm.shift_remove(key)
    }

    fn insert_aligned(
        &mut self,
        axis: Axis,
        key: String,
        mut value: Element,
    ) -> Result<Option<Element>> {
        let name = format!("{}m['{key}']", axis.name());
        let (frame, aligned) = self.axis_parts(axis);
        validate::align(&name, &mut value, frame, axis.name())?;
        Ok(aligned.insert(key, value))
    }

    /// Pairwise observation matrices (`n_obs × n_obs`).
    pub fn obsp(&self) -> &IndexMap<String, Matrix> {
        &self.elems.obsp
    }

    /// Adds or replaces an `obsp` matrix, which must be `n_obs × n_obs`; returns the old one.
    pub fn insert_obsp(&mut self, key: impl Into<String>, value: Matrix) -> Result<Option<Matrix>> {
        let key = key.into();
        let n = self.n_obs();
        validate::check_matrix(&format!("obsp['{key}']"), &value, (n, n), "obs × obs")?;
        Ok(self.elems.obsp.insert(key, value))
    }

    /// Removes an `obsp` matrix, returning it.
    pub fn remove_obsp(&mut self, key: &str) -> Option<Matrix> {
        self.elems.obsp.shift_remove(key)
    }

    /// Pairwise variable matrices (`n_vars × n_vars`).
    pub fn varp(&self) -> &IndexMap<String, Matrix> {
        &self.elems.varp
    }

    /// Adds or replaces a `varp` matrix, which must be `n_vars × n_vars`; returns the old one.
    pub fn insert_varp(&mut self, key: impl Into<String>, value: Matrix) -> Result<Option<Matrix>> {
        let key = key.into();
        let n = self.n_vars();
        validate::check_matrix(&format!("varp['{key}']"), &value, (n, n), "var × var")?;
        Ok(self.elems.varp.insert(key, value))
    }

    /// Removes a `varp` matrix, returning it.
    pub fn remove_varp(&mut self, key: &str) -> Option<Matrix> {
        self.elems.varp.shift_remove(key)
    }

    /// Matrices with the shape of `X` (`n_obs × n_vars`).
    pub fn layers(&self) -> &IndexMap<String, Matrix> {
        &self.elems.layers
    }

    /// Adds or replaces a layer, which must be `n_obs × n_vars`; returns the old one.
    pub fn insert_layer(
        &mut self,
        key: impl Into<String>,
        value: Matrix,
    ) -> Result<Option<Matrix>> {
        let key = key.into();
        validate::check_matrix(
            &format!("layers['{key}']"),
            &value,
            self.shape(),
            "obs × var",
        )?;
        Ok(self.elems.layers.insert(key, value))
    }

    /// Removes a layer, returning it.
    pub fn remove_layer(&mut self, key: &str) -> Option<Matrix> {
        self.elems.layers.shift_remove(key)
    }

    /// Unstructured annotations.
    pub fn uns(&self) -> &Mapping {
        &self.elems.uns
    }

    /// Unstructured annotations, to edit freely (they have no shape to keep).
    pub fn uns_mut(&mut self) -> &mut Mapping {
        &mut self.elems.uns
    }

    /// The raw (unfiltered) matrix and its variables, if kept.
    pub fn raw(&self) -> Option<&RawElements> {
        self.elems.raw.as_ref()
    }

    /// Sets or removes `raw`: `raw.x` must have `n_obs` rows and one column per `raw.var` row,
    /// and `raw.varm` values one row per `raw.var` row.
    pub fn set_raw(&mut self, raw: Option<RawElements>) -> Result<()> {
        let raw = match raw {
            Some(mut r) => {
                validate::normalise_raw(&mut r, self.n_obs())?;
                Some(r)
            }
            None => None,
        };
        self.elems.raw = raw;
        Ok(())
    }

    /// A lazy view of the selected observations and variables (see [`AnnDataView`]).
    ///
    /// Selections are checked here; nothing is copied until [`AnnDataView::to_adata`].
    ///
    /// ```
    /// use annpage::{AnnData, Selection};
    /// let adata = AnnData::new(10, 4);
    /// let v = adata.view(&Selection::slice(Some(-3), None, 1), &Selection::names(["2", "0"])).unwrap();
    /// assert_eq!(v.shape(), (3, 2));
    /// assert_eq!(v.obs_names().collect::<Vec<_>>(), ["7", "8", "9"]);
    /// assert!(adata.view(&Selection::positions([10]), &Selection::All).is_err());
    /// ```
    pub fn view(&self, obs: &Selection, var: &Selection) -> Result<AnnDataView<'_>> {
        AnnDataView::new(self, obs, var)
    }

    /// A new object holding the selected observations and variables: the same as
    /// `self.view(obs, var)?.to_adata()`, and as anndata's `adata[obs, var].copy()`.
    pub fn subset(&self, obs: &Selection, var: &Selection) -> Result<AnnData> {
        self.view(obs, var)?.to_adata()
    }
}

/// The names of an obs/var frame, whose index [`AnnData`] keeps as a contiguous string array.
pub(crate) fn names_of(frame: &DataFrame) -> &[CompactString] {
    frame.index_names().unwrap_or_else(|| {
        unreachable!("AnnData keeps obs and var indexes as contiguous string arrays")
    })
}

#[cfg(test)]
mod tests {
    use annpage_engine::data::{Column, SparseFormat};
    use annpage_engine::format::AnnDataElements;
    use ndarray::Array2;

    use super::*;
    use crate::testdata::{example, sparse};

    fn dense(rows: usize, cols: usize) -> Matrix {
        Matrix::Dense(ArrayData::from(Array2::<f32>::zeros((rows, cols))))
    }

    fn array(rows: usize, cols: usize) -> Element {
        Element::Array(ArrayData::from(Array2::<f64>::zeros((rows, cols))))
    }

    /// The message of the error `from_elements` gives after `change` is applied to a valid
    /// 100 × 10 object.
    fn invalid(change: impl FnOnce(&mut AnnDataElements)) -> String {
        let mut elems = AnnDataElements::empty(100, 10);
        elems.x = Some(dense(100, 10));
        change(&mut elems);
        AnnData::from_elements(elems).unwrap_err().to_string()
    }

    #[test]
    fn every_shape_is_checked() {
        assert_eq!(
            invalid(|e| e.x = Some(dense(100, 9))),
            "shape mismatch: X has shape (100, 9), obs × var is (100, 10)"
        );
        assert_eq!(
            invalid(|e| {
                e.layers.insert("counts".into(), dense(99, 10));
            }),
            "shape mismatch: layers['counts'] has shape (99, 10), obs × var is (100, 10)"
        );
        assert_eq!(
            invalid(|e| {
                e.obsm.insert("X_pca".into(), array(99, 50));
            }),
            "shape mismatch: obsm['X_pca'] has 99 rows, obs has 100"
        );
        assert_eq!(
            invalid(|e| {
                e.varm.insert("PCs".into(), array(100, 50));
            }),
            "shape mismatch: varm['PCs'] has 100 rows, var has 10"
        );
        assert_eq!(
            invalid(|e| {
                e.obsp.insert("distances".into(), dense(100, 99));
            }),
            "shape mismatch: obsp['distances'] has shape (100, 99), obs × obs is (100, 100)"
        );
        assert_eq!(
            invalid(|e| {
                e.varp.insert("corr".into(), dense(100, 100));
            }),
            "shape mismatch: varp['corr'] has shape (100, 100), var × var is (10, 10)"
        );
        assert_eq!(
            invalid(|e| e.x = Some(Matrix::Dense(ArrayData::from(vec![1.0f32; 100])))),
            "shape mismatch: X must be 2-d, got shape [100]"
        );
        assert_eq!(
            invalid(|e| {
                e.obsm.insert("n".into(), Element::Dict(Mapping::new()));
            }),
            "invalid argument: obsm['n'] is a dict, which has no rows to align with obs"
        );
        let csc = sparse(
            SparseFormat::Csc,
            (99, 10),
            &[0; 11],
            &[],
            ArrayData::from(Vec::<f32>::new()),
        );
        assert_eq!(
            invalid(|e| e.x = Some(Matrix::Sparse(csc))),
            "shape mismatch: X has shape (99, 10), obs × var is (100, 10)"
        );
    }

    #[test]
    fn raw_is_checked() {
        let raw = |rows, cols, var_rows| RawElements {
            x: dense(rows, cols),
            var: DataFrame::with_default_index(var_rows),
            varm: Mapping::new(),
        };
        assert_eq!(
            invalid(|e| e.raw = Some(raw(99, 12, 12))),
            "shape mismatch: raw.X has 99 rows, obs has 100"
        );
        assert_eq!(
            invalid(|e| e.raw = Some(raw(100, 12, 11))),
            "shape mismatch: raw.X has 12 columns, raw.var has 11 rows"
        );
        assert_eq!(
            invalid(|e| {
                let mut r = raw(100, 12, 12);
                r.varm.insert("PCs".into(), array(10, 3));
                e.raw = Some(r);
            }),
            "shape mismatch: raw.varm['PCs'] has 10 rows, raw.var has 12"
        );
        let mut a = AnnData::new(100, 10);
        assert!(a.set_raw(Some(raw(100, 12, 12))).is_ok());
        assert_eq!(a.raw().unwrap().x.shape(), (100, 12));
        assert!(a.set_raw(Some(raw(3, 12, 12))).is_err());
        a.set_raw(None).unwrap();
        assert!(a.raw().is_none());
    }

    /// pandas: `pd.Index([0.5, 2.0, 1e16]).astype(str)` is `['0.5', '2.0', '1e+16']`.
    #[test]
    fn indexes_become_strings() {
        let mut elems = AnnDataElements::empty(3, 2);
        elems.obs = DataFrame::with_index(ArrayData::from(vec![0.5f64, 2.0, 1e16])).unwrap();
        elems.var = DataFrame::with_index(ArrayData::from(vec![7i64, -1])).unwrap();
        let a = AnnData::from_elements(elems).unwrap();
        assert_eq!(a.obs_names(), ["0.5", "2.0", "1e+16"]);
        assert_eq!(a.var_names(), ["7", "-1"]);
    }

    #[test]
    fn aligned_values_are_normalised() {
        let mut a = AnnData::new(3, 2);
        a.set_obs_names(vec!["a", "b", "c"]).unwrap();
        // A 1-d array becomes one column.
        a.insert_obsm("score", Element::Array(ArrayData::from(vec![1i32, 2, 3])))
            .unwrap();
        assert_eq!(
            a.obsm()["score"],
            Element::Array(ArrayData::from(ndarray::arr2(&[[1i32], [2], [3]])))
        );
        // A data frame must be indexed by the names, and takes the index's name.
        a.obs_mut().set_index_name(Some("cell".into()));
        let frame = DataFrame::from_index(vec!["a", "b", "c"]);
        a.insert_obsm("frame", Element::DataFrame(frame)).unwrap();
        let Element::DataFrame(f) = &a.obsm()["frame"] else {
            panic!("frame expected")
        };
        assert_eq!(f.index_name(), Some("cell"));
        let other = DataFrame::from_index(vec!["a", "c", "b"]);
        let e = a
            .insert_obsm("other", Element::DataFrame(other))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid argument: obsm['other'] is a data frame whose index does not match the obs names"
        );
        // Renaming the observations re-indexes the frame.
        a.set_obs_names(vec!["x", "y", "z"]).unwrap();
        let Element::DataFrame(f) = &a.obsm()["frame"] else {
            panic!("frame expected")
        };
        assert_eq!(f.index_names().unwrap(), ["x", "y", "z"]);
        // anndata: setting `obs_names` from a list drops the index name, here and in obsm.
        assert_eq!((f.index_name(), a.obs().index_name()), (None, None));
        // Setting a whole frame takes its index and index name, in obsm too.
        let mut obs = DataFrame::from_index(vec!["p", "q", "r"]);
        obs.set_index_name(Some("nm".into()));
        a.set_obs(obs).unwrap();
        let Element::DataFrame(f) = &a.obsm()["frame"] else {
            panic!("frame expected")
        };
        assert_eq!(f.index_names().unwrap(), ["p", "q", "r"]);
        assert_eq!(f.index_name(), Some("nm"));
        assert!(a.set_obs_names(vec!["x"]).is_err());
        assert_eq!(a.remove_obsm("score").map(|e| e.nrows()), Some(Some(3)));
        assert!(a.remove_obsm("score").is_none());
    }

    #[test]
    fn setters_keep_the_shape() {
        let mut a = example();
        assert_eq!(a.shape(), (5, 4));
        let e = a.set_x(Some(dense(4, 5))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "shape mismatch: X has shape (4, 5), obs × var is (5, 4)"
        );
        a.set_x(None).unwrap();
        assert!(a.x().is_none());

        let e = a.set_obs(DataFrame::with_default_index(4)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "shape mismatch: the new obs has 4 rows, obs has 5"
        );
        let mut var = DataFrame::with_index(ArrayData::from(vec![1u8, 2, 3, 4])).unwrap();
        var.insert(
            "k",
            Column::Array(ArrayData::from(vec![true, false, true, true])),
        )
        .unwrap();
        a.set_var(var).unwrap();
        assert_eq!(a.var_names(), ["1", "2", "3", "4"]);
        assert_eq!(a.var().columns().len(), 1);

        assert!(a.insert_layer("bad", dense(5, 5)).is_err());
        assert!(a.insert_layer("ok", dense(5, 4)).unwrap().is_none());
        assert!(a.insert_layer("ok", dense(5, 4)).unwrap().is_some());
        assert!(a.remove_layer("ok").is_some());
        assert!(a.insert_obsp("bad", dense(5, 4)).is_err());
        assert!(a.insert_obsp("ok", dense(5, 5)).is_ok());
        assert!(a.remove_obsp("ok").is_some());
        assert!(a.insert_varp("bad", dense(5, 5)).is_err());
        assert!(a.insert_varp("ok", dense(4, 4)).is_ok());
        assert!(a.remove_varp("ok").is_some());
        assert!(a.insert_varm("bad", array(5, 1)).is_err());
        assert!(a.insert_varm("ok", array(4, 1)).is_ok());
        assert!(a.remove_varm("ok").is_some());

        a.uns_mut()
            .insert("note".into(), Element::Dict(Mapping::new()));
        assert!(a.uns().contains_key("note"));
    }

    #[test]
    fn frame_edits_keep_rows() {
        let mut a = AnnData::new(2, 1);
        let mut obs = a.obs_mut();
        obs.insert("v", Column::Array(ArrayData::from(vec![1i16, 2])))
            .unwrap();
        let e = obs
            .insert("w", Column::Array(ArrayData::from(vec![1i16])))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "shape mismatch: column 'w' has 1 values, the frame has 2 rows"
        );
        assert_eq!(obs.nrows(), 2);
        assert!(obs.remove("v").is_some());
        a.var_mut().set_index_name(Some("gene".into()));
        assert_eq!(a.var().index_name(), Some("gene"));
    }

    #[test]
    fn elements_round_trip() {
        let a = example();
        assert!(!a.is_view());
        assert_eq!(a.elements().obs.nrows(), 5);
        let back = AnnData::from_elements(a.clone().into_elements()).unwrap();
        assert_eq!(back, a);
    }
}
