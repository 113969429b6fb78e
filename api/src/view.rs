//! [`AnnDataView`]: a lazy subset of an [`AnnData`].

use annpage_engine::data::CompactString;
use annpage_engine::error::ResultExt;
use annpage_engine::select::AxisIndex;
use annpage_engine::Result;

use crate::subset::subset_elements;
use crate::{AnnData, Selection};

/// A subset of an [`AnnData`] that copies nothing: the parent and, for each axis, the
/// selected positions (an [`AxisIndex`]).
///
/// Views are made by [`AnnData::view`] and refined with [`AnnDataView::view`], which composes
/// the selections, so a view of a view still refers to its root object by one index per axis.
/// [`AnnDataView::to_adata`] materialises the subset as a new, independent object, exactly as
/// anndata's `adata[obs, var].copy()` does (unused categories of `obs`/`var` columns and of
/// `obsm`/`varm` data frames removed, the `uns` colours of `obs`/`var` columns subset).
///
/// # Views and writes
///
/// In anndata, a view shares its parent's data and turns into a copy the first time it is
/// written to (copy-on-write), and the parent may change under it. Here a view borrows its
/// parent: while a view lives, Rust forbids modifying the parent, so a view always shows the
/// data it was made from. A view is read-only; to modify a subset, call
/// [`AnnDataView::to_adata`] and modify the copy.
///
/// ```
/// use annpage::{AnnData, Selection};
/// let adata = AnnData::new(6, 3);
/// let first_four = adata.view(&Selection::from(0..4), &Selection::All).unwrap();
/// let view = first_four.view(&Selection::slice(None, None, -2), &Selection::names(["2"])).unwrap();
/// assert!(view.is_view());
/// assert_eq!(view.obs_names().collect::<Vec<_>>(), ["3", "1"]);
/// let copy = view.to_adata().unwrap();
/// assert_eq!(copy.shape(), (2, 1));
/// assert!(!copy.is_view());
/// ```
#[derive(Clone, Debug)]
pub struct AnnDataView<'a> {
    parent: &'a AnnData,
    obs: AxisIndex,
    var: AxisIndex,
}

impl<'a> AnnDataView<'a> {
    /// The view of `parent` at `obs` × `var`, checked against its axes.
    pub(crate) fn new(parent: &'a AnnData, obs: &Selection, var: &Selection) -> Result<Self> {
        let whole = AnnDataView {
            parent,
            obs: AxisIndex::full(parent.n_obs()),
            var: AxisIndex::full(parent.n_vars()),
        };
        whole.view(obs, var)
    }

    /// A view of this view: `obs` and `var` select among this view's observations and
    /// variables (names are this view's names), composed into one index per axis of the
    /// parent.
    pub fn view(&self, obs: &Selection, var: &Selection) -> Result<AnnDataView<'a>> {
        Ok(AnnDataView {
            parent: self.parent,
            obs: refine(&self.obs, obs, self.parent.obs_names()).in_element("obs")?,
            var: refine(&self.var, var, self.parent.var_names()).in_element("var")?,
        })
    }

    /// Always `true` (see [`AnnData::is_view`]).
    pub fn is_view(&self) -> bool {
        true
    }

    /// The object this is a view of.
    pub fn parent(&self) -> &'a AnnData {
        self.parent
    }

    /// The selected observations, as positions in the parent.
    pub fn obs_index(&self) -> &AxisIndex {
        &self.obs
    }

    /// The selected variables, as positions in the parent.
    pub fn var_index(&self) -> &AxisIndex {
        &self.var
    }

    /// Number of selected observations.
    pub fn n_obs(&self) -> usize {
        self.obs.len()
    }

    /// Number of selected variables.
    pub fn n_vars(&self) -> usize {
        self.var.len()
    }

    /// `(n_obs, n_vars)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.n_obs(), self.n_vars())
    }

    /// The names of the selected observations, in order.
    pub fn obs_names(&self) -> impl ExactSizeIterator<Item = &'a str> + '_ {
        let names = self.parent.obs_names();
        self.obs.iter().map(move |i| names[i].as_str())
    }

    /// The names of the selected variables, in order.
    pub fn var_names(&self) -> impl ExactSizeIterator<Item = &'a str> + '_ {
        let names = self.parent.var_names();
        self.var.iter().map(move |i| names[i].as_str())
    }

    /// Copies the selected data into a new object (anndata's `view.copy()`).
    pub fn to_adata(&self) -> Result<AnnData> {
        let elems = subset_elements(self.parent.elements(), &self.obs, &self.var)?;
        Ok(AnnData::from_valid(elems))
    }
}

/// The positions of the parent axis that `selection` picks among those `current` selects;
/// `names` are the parent axis's names.
fn refine(
    current: &AxisIndex,
    selection: &Selection,
    names: &[CompactString],
) -> Result<AxisIndex> {
    let inner = match selection {
        Selection::Names(_) if current.is_full() => {
            selection.resolve(current.len(), Some(names))?
        }
        Selection::Names(_) => {
            let own: Vec<CompactString> = current.iter().map(|i| names[i].clone()).collect();
            selection.resolve(current.len(), Some(&own))?
        }
        _ => selection.resolve(current.len(), None)?,
    };
    current.compose(&inner)
}

#[cfg(test)]
mod tests {
    use annpage_engine::select::IndexKind;

    use super::*;
    use crate::testdata::{example, X};

    /// anndata: `a[1:, :][::-1, [True, False, True, True]][[0, 2], 1:]` has obs `['c4', 'c2']`,
    /// var `['g2', 'g3']` and X `[[0, 9], [4, 5]]`.
    #[test]
    fn views_of_views_compose_like_anndata() {
        let a = example();
        let v1 = a.view(&Selection::from(1..), &Selection::All).unwrap();
        let v2 = v1
            .view(
                &Selection::slice(None, None, -1),
                &Selection::Mask(vec![true, false, true, true]),
            )
            .unwrap();
        let v3 = v2
            .view(&Selection::positions([0, 2]), &Selection::from(1..))
            .unwrap();
        assert_eq!(v3.obs_names().collect::<Vec<_>>(), ["c4", "c2"]);
        assert_eq!(v3.var_names().collect::<Vec<_>>(), ["g2", "g3"]);
        // One index per axis of the parent, still ranges.
        assert_eq!(
            v3.obs_index().kind(),
            IndexKind::Strided {
                start: 4,
                step: -2,
                len: 2
            }
        );
        assert_eq!(v3.var_index().kind(), IndexKind::Range(2..4));
        assert!(std::ptr::eq(v3.parent(), &a));
        let x = v3.to_adata().unwrap();
        let dense: Vec<Vec<f32>> = x
            .obs_names()
            .iter()
            .map(|o| {
                let i = a.obs_names().iter().position(|n| n == o).unwrap();
                x.var_names()
                    .iter()
                    .map(|g| X[i][a.var_names().iter().position(|n| n == g).unwrap()])
                    .collect()
            })
            .collect();
        assert_eq!(dense, [[0., 9.], [4., 5.]]);
        assert_eq!(
            x,
            a.subset(
                &Selection::names(["c4", "c2"]),
                &Selection::names(["g2", "g3"])
            )
            .unwrap()
        );
    }

    #[test]
    fn names_resolve_among_the_view() {
        let a = example();
        let v = a
            .view(&Selection::names(["c3", "c1"]), &Selection::All)
            .unwrap();
        let w = v.view(&Selection::names(["c1"]), &Selection::All).unwrap();
        assert_eq!(w.obs_index().to_vec(), [1]);
        // c0 exists in the parent but not in the view.
        let e = v
            .view(&Selection::names(["c0"]), &Selection::All)
            .unwrap_err();
        assert_eq!(e.to_string(), "obs: 1 of 1 names not found: [\"c0\"]");
    }

    #[test]
    fn selections_are_checked_against_the_view() {
        let a = example();
        let v = a
            .view(&Selection::from(0..3), &Selection::from(0..2))
            .unwrap();
        assert_eq!((v.n_obs(), v.n_vars(), v.shape()), (3, 2, (3, 2)));
        let e = v
            .view(&Selection::All, &Selection::Mask(vec![true; 4]))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "var: invalid argument: boolean mask has 4 entries, the axis has 2"
        );
        let e = v
            .view(&Selection::Positions(vec![-4]), &Selection::All)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "obs: invalid argument: position -4 is out of range for an axis of length 3"
        );
    }

    #[test]
    fn a_view_does_not_copy_until_asked() {
        let a = example();
        let v = a.view(&Selection::All, &Selection::All).unwrap();
        assert!(v.is_view());
        assert!(v.obs_index().is_full() && v.var_index().is_full());
        assert_eq!(v.obs_names().len(), 5);
        assert!(!v.to_adata().unwrap().is_view());
    }
}
