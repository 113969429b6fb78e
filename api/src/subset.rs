//! Materialising a subset: every element of an object cut to the same observations and
//! variables, with the clean-ups anndata makes on `adata[obs, var].copy()`.

use annpage_engine::data::{ArrayData, DataFrame, Element, Mapping, Matrix};
use annpage_engine::error::ResultExt;
use annpage_engine::format::{AnnDataElements, RawElements};
use annpage_engine::select::AxisIndex;
use annpage_engine::{map_array, Result};
use indexmap::IndexMap;

/// The elements of `src` at observations `obs` and variables `var` (both resolved against
/// `src`'s axes).
///
/// Matrices (`X`, layers) are cut on both axes, `obsm`/`varm` on their rows, `obsp`/`varp` on
/// both axes of their own axis, `raw.X` on its rows only (`raw.var` and `raw.varm` are kept
/// whole, as in anndata). Categorical `obs`/`var` columns lose the categories no selected row
/// uses, and their `uns['<column>_colors']` follow (see [`prune_categories`]); so do the
/// categorical columns of `obsm`/`varm` data frames, without colours (see [`aligned_rows`]);
/// the rest of `uns` is copied.
pub(crate) fn subset_elements(
    src: &AnnDataElements,
    obs: &AxisIndex,
    var: &AxisIndex,
) -> Result<AnnDataElements> {
    let mut obs_frame = src.obs.subset_rows(obs).in_element("/obs")?;
    let mut var_frame = src.var.subset_rows(var).in_element("/var")?;
    let mut uns = src.uns.clone();
    prune_categories(&mut obs_frame, &mut uns);
    prune_categories(&mut var_frame, &mut uns);
    Ok(AnnDataElements {
        x: src
            .x
            .as_ref()
            .map(|x| x.subset(obs, var))
            .transpose()
            .in_element("/X")?,
        obs: obs_frame,
        var: var_frame,
        obsm: rows_of_each("obsm", &src.obsm, obs)?,
        varm: rows_of_each("varm", &src.varm, var)?,
        obsp: each_matrix("obsp", &src.obsp, obs, obs)?,
        varp: each_matrix("varp", &src.varp, var, var)?,
        layers: each_matrix("layers", &src.layers, obs, var)?,
        uns,
        raw: src.raw.as_ref().map(|r| raw_rows(r, obs)).transpose()?,
    })
}

/// Every value of an aligned mapping cut to the rows `index` (see [`aligned_rows`]).
fn rows_of_each(name: &str, mapping: &Mapping, index: &AxisIndex) -> Result<Mapping> {
    mapping
        .iter()
        .map(|(key, value)| {
            let cut = aligned_rows(value, index).in_element(format!("/{name}/{key}"))?;
            Ok((key.clone(), cut))
        })
        .collect()
}

/// Every matrix of a mapping cut to `rows` × `cols`.
fn each_matrix(
    name: &str,
    mapping: &IndexMap<String, Matrix>,
    rows: &AxisIndex,
    cols: &AxisIndex,
) -> Result<IndexMap<String, Matrix>> {
    mapping
        .iter()
        .map(|(key, m)| {
            let cut = m.subset(rows, cols).in_element(format!("/{name}/{key}"))?;
            Ok((key.clone(), cut))
        })
        .collect()
}

/// The rows `index` of an `obsm`/`varm` value as anndata's view shows them: the categorical
/// columns of a data frame lose the categories no selected row uses (anndata's `as_view` of a
/// data frame; unlike `obs`/`var` columns, no `uns` colours follow them).
pub(crate) fn aligned_rows(value: &Element, index: &AxisIndex) -> Result<Element> {
    let mut cut = value.subset_rows(index)?;
    if let Element::DataFrame(frame) = &mut cut {
        frame.remove_unused_categories();
    }
    Ok(cut)
}

/// `raw` at the observations `obs`: anndata never subsets raw's variables.
fn raw_rows(raw: &RawElements, obs: &AxisIndex) -> Result<RawElements> {
    let all_vars = AxisIndex::full(raw.x.shape().1);
    Ok(RawElements {
        x: raw.x.subset(obs, &all_vars).in_element("/raw/X")?,
        var: raw.var.clone(),
        varm: raw.varm.clone(),
    })
}

/// Drops unused categories from the categorical columns of a subset frame and fixes the
/// colours scanpy keeps for them in `uns['<column>_colors']`, as anndata does for views:
///
/// - a single colour (a 0-d value) becomes a one-element array;
/// - a colour array whose length is not the number of categories before pruning is removed;
/// - otherwise the colours of the kept categories are kept.
///
/// Colours stored as anything other than an array or a scalar are left alone.
pub(crate) fn prune_categories(frame: &mut DataFrame, uns: &mut Mapping) {
    for (column, kept) in frame.remove_unused_categories() {
        let key = format!("{column}_colors");
        let Some(colors) = uns.get_mut(&key) else {
            continue;
        };
        match colors {
            Element::Scalar(s) => *colors = Element::Array(as_vector(&s.to_array())),
            Element::Array(a) if a.ndim() == 0 => *a = as_vector(a),
            Element::Array(a) if a.nrows() != kept.len() => {
                uns.shift_remove(&key);
            }
            Element::Array(a) => {
                let positions: Vec<usize> = (0..kept.len()).filter(|&i| kept[i]).collect();
                *a = a.select(0, &positions);
            }
            _ => {}
        }
    }
}

/// A 0-d array as a one-element 1-d array.
fn as_vector(a: &ArrayData) -> ArrayData {
    map_array!(a, x => x.clone().insert_axis(ndarray::Axis(0)))
}

#[cfg(test)]
mod tests {
    use annpage_engine::data::{Categorical, Column, Scalar};

    use super::*;
    use crate::testdata::{dense_rows, example, example_with_aligned_frames, sparse_parts};
    use crate::{AnnData, Selection};

    fn categorical<'a>(frame: &'a DataFrame, name: &str) -> &'a Categorical {
        match frame.column(name) {
            Some(Column::Categorical(c)) => c,
            other => panic!("categorical column expected, got {other:?}"),
        }
    }

    fn strings(v: &[&str]) -> ArrayData {
        ArrayData::from(v.to_vec())
    }

    /// Expected values from `a[['c4', 'c2', 'c0'], [3, 1]].copy()` with anndata 0.12.19 (see
    /// `testdata`); `::-2` selects the same variables (anndata itself fails on a negative-step
    /// slice with a sparse X, a scipy reshape error).
    #[test]
    fn names_and_backward_slice_match_anndata() {
        let a = example();
        let s = a
            .subset(
                &Selection::names(["c4", "c2", "c0"]),
                &Selection::slice(None, None, -2),
            )
            .unwrap();
        assert_eq!(s.obs_names(), ["c4", "c2", "c0"]);
        assert_eq!(s.var_names(), ["g3", "g1"]);
        assert_eq!(
            sparse_parts(s.x().unwrap()),
            (
                vec![0, 2, 3, 5],
                vec![1, 0, 0, 1, 0],
                vec![8., 9., 5., 1., 2.],
                (3, 2)
            )
        );
        assert_eq!(
            dense_rows(&s.layers()["dense"]),
            [[90., 80.], [50., 0.], [20., 10.]]
        );
        let csc = &s.layers()["csc"];
        assert!(
            matches!(csc, Matrix::Sparse(m) if m.format() == annpage_engine::data::SparseFormat::Csc)
        );
        assert_eq!(
            sparse_parts(csc),
            (
                vec![0, 3, 5],
                vec![2, 1, 0, 2, 0],
                vec![2., 5., 9., 1., 8.],
                (3, 2)
            )
        );
        assert_eq!(
            s.obsm()["X_pca"],
            Element::Array(ArrayData::from(ndarray::arr2(&[
                [8.0f64, 9.],
                [4., 5.],
                [0., 1.]
            ])))
        );
        assert_eq!(
            s.varm()["PCs"],
            Element::Array(ArrayData::from(ndarray::arr2(&[[6i32, 7], [2, 3]])))
        );
        assert_eq!(
            sparse_parts(&s.obsp()["distances"]),
            (vec![0, 1, 2, 2], vec![0, 1], vec![24., 12.], (3, 3))
        );
        assert_eq!(dense_rows(&s.varp()["corr"]), [[15., 13.], [7., 5.]]);

        let ct = categorical(s.obs(), "ct");
        assert_eq!(ct.categories, strings(&["B", "T"]));
        assert_eq!(ct.codes, [0, 1, 1]);
        assert_eq!(
            s.obs().column("n"),
            Some(&Column::Array(ArrayData::from(vec![50i64, 30, 10])))
        );
        let kind = categorical(s.var(), "kind");
        assert_eq!(kind.categories, strings(&["b", "c"]));
        assert_eq!(kind.codes, [1, 0]);

        // kind_colors had 2 colours for 3 categories: dropped. n is not categorical.
        let uns: Vec<_> = s.uns().iter().collect();
        assert_eq!(
            uns,
            [
                (
                    &"ct_colors".to_string(),
                    &Element::Array(strings(&["#b", "#t"]))
                ),
                (&"n_colors".to_string(), &Element::Array(strings(&["x"]))),
            ]
        );

        let raw = s.raw().unwrap();
        assert_eq!(
            sparse_parts(&raw.x),
            (
                vec![0, 2, 4, 6],
                vec![1, 5, 1, 5, 1, 5],
                vec![25., 29., 13., 17., 1., 5.],
                (3, 6)
            )
        );
        assert_eq!(raw.var, a.raw().unwrap().var);
    }

    /// Expected values from
    /// `a[np.array([False, True, True, False, True]), [2, 2, 0]].copy()` with anndata 0.12.19.
    #[test]
    fn mask_and_repeated_positions_match_anndata() {
        let s = example()
            .subset(
                &Selection::Mask(vec![false, true, true, false, true]),
                &Selection::positions([2, 2, 0]),
            )
            .unwrap();
        assert_eq!(s.obs_names(), ["c1", "c2", "c4"]);
        assert_eq!(s.var_names(), ["g2", "g2", "g0"]);
        assert_eq!(
            sparse_parts(s.x().unwrap()),
            (vec![0, 1, 3, 3], vec![2, 0, 1], vec![3., 4., 4.], (3, 3))
        );
        assert_eq!(
            sparse_parts(&s.layers()["csc"]),
            (vec![0, 1, 2, 3], vec![1, 1, 0], vec![4., 4., 3.], (3, 3))
        );
        let ct = categorical(s.obs(), "ct");
        assert_eq!(
            (ct.categories.clone(), ct.codes.clone()),
            (strings(&["B", "T"]), vec![0, 1, 0])
        );
        let kind = categorical(s.var(), "kind");
        assert_eq!(
            (kind.categories.clone(), kind.codes.clone()),
            (strings(&["a"]), vec![0, 0, 0])
        );
        assert_eq!(s.uns()["ct_colors"], Element::Array(strings(&["#b", "#t"])));
        assert!(!s.uns().contains_key("kind_colors"));
        assert_eq!(
            dense_rows(&s.varp()["corr"]),
            [[10., 10., 8.], [10., 10., 8.], [2., 2., 0.]]
        );
    }

    /// anndata's `a[:, :].copy()` still drops categories no row uses (`'unused'`) and their
    /// colours.
    #[test]
    fn whole_selection_still_prunes_categories() {
        let a = example();
        let s = a.subset(&Selection::All, &Selection::All).unwrap();
        let ct = categorical(s.obs(), "ct");
        assert_eq!(ct.categories, strings(&["B", "NK", "T"]));
        assert_eq!(ct.codes, [2, 0, 2, 1, 0]);
        assert_eq!(
            s.uns()["ct_colors"],
            Element::Array(strings(&["#b", "#nk", "#t"]))
        );
        assert_eq!(s.x(), a.x());
        assert_eq!(s.obsm(), a.obsm());
    }

    /// anndata, on [`example_with_aligned_frames`]: `a[[3, 1], [2, 0]].copy()` keeps in each frame only the categories still
    /// used (`['B', 'NK']`, `['a']`), as anndata's views show them, and `uns['ct_colors']` only
    /// follows `obs['ct']` (`['#b', '#nk']`). `a[:, :].copy()` drops `'unused'` too.
    #[test]
    fn aligned_data_frames_lose_unused_categories() {
        let a = example_with_aligned_frames();
        let frame = |e: &Element| match e {
            Element::DataFrame(d) => d.clone(),
            other => panic!("data frame expected, got {other:?}"),
        };
        let s = a
            .subset(&Selection::positions([3, 1]), &Selection::positions([2, 0]))
            .unwrap();
        let ct = categorical(&frame(&s.obsm()["df"]), "ct").clone();
        assert_eq!(
            (ct.categories, ct.codes),
            (strings(&["B", "NK"]), vec![1, 0])
        );
        let kind = categorical(&frame(&s.varm()["df"]), "kind").clone();
        assert_eq!((kind.categories, kind.codes), (strings(&["a"]), vec![0, 0]));
        assert_eq!(
            s.uns()["ct_colors"],
            Element::Array(strings(&["#b", "#nk"]))
        );
        let whole = a.subset(&Selection::All, &Selection::All).unwrap();
        let ct = categorical(&frame(&whole.obsm()["df"]), "ct").clone();
        assert_eq!(ct.categories, strings(&["B", "NK", "T"]));
        // The object itself keeps them, as anndata's `a.obsm['df']` does.
        let ct = categorical(&frame(&a.obsm()["df"]), "ct").clone();
        assert_eq!(ct.categories, strings(&["B", "NK", "T", "unused"]));
    }

    /// anndata: a colour given as one value becomes a one-element array; a colour array of the
    /// wrong length is dropped; other kinds of values are left alone.
    #[test]
    fn colours_of_every_shape() {
        let mut frame = DataFrame::from_index(vec!["a", "b"]);
        for name in ["s", "z", "d", "m"] {
            let c = Categorical::new(vec![0, 0], strings(&["x", "y"]), false).unwrap();
            frame.insert(name, Column::Categorical(c)).unwrap();
        }
        let mut uns = Mapping::new();
        uns.insert(
            "s_colors".into(),
            Element::Scalar(Scalar::String("solo".into())),
        );
        uns.insert(
            "z_colors".into(),
            Element::Array(ArrayData::from(
                ndarray::arr0("zero".to_string()).into_dyn(),
            )),
        );
        uns.insert("d_colors".into(), Element::Dict(Mapping::new()));
        uns.insert("m_colors".into(), Element::Array(strings(&["p", "q", "r"])));
        prune_categories(&mut frame, &mut uns);
        assert_eq!(uns["s_colors"], Element::Array(strings(&["solo"])));
        assert_eq!(uns["z_colors"], Element::Array(strings(&["zero"])));
        assert_eq!(uns["d_colors"], Element::Dict(Mapping::new()));
        assert!(!uns.contains_key("m_colors"));
    }

    #[test]
    fn empty_selections_keep_every_element() {
        let s = example()
            .subset(&Selection::positions([]), &Selection::All)
            .unwrap();
        assert_eq!(s.shape(), (0, 4));
        assert_eq!(
            sparse_parts(s.x().unwrap()),
            (vec![0], vec![], vec![], (0, 4))
        );
        assert_eq!(categorical(s.obs(), "ct").categories, strings(&[]));
        // anndata keeps an empty colour array.
        assert_eq!(s.uns()["ct_colors"], Element::Array(strings(&[])));
        assert_eq!(s.raw().unwrap().x.shape(), (0, 6));
        assert_eq!(s.obsp()["distances"].shape(), (0, 0));
    }

    #[test]
    fn subsets_are_valid_objects() {
        let s = example()
            .subset(&Selection::positions([3, 3, 1]), &Selection::from(1..))
            .unwrap();
        let again = AnnData::from_elements(s.clone().into_elements()).unwrap();
        assert_eq!(again, s);
    }

    #[test]
    fn opaque_elements_are_kept_only_whole() {
        use annpage_engine::data::{Attrs, RawData, RawNode};
        let mut a = example();
        let node = RawNode::Dataset {
            attrs: Attrs::new(),
            data: RawData::Array(ArrayData::from(vec![1i8, 2, 3, 4, 5])),
        };
        a.insert_obsm("rec", Element::Opaque(node)).unwrap();
        let kept = a.subset(&Selection::All, &Selection::from(0..2)).unwrap();
        assert_eq!(kept.obsm()["rec"], a.obsm()["rec"]);
        let e = a
            .subset(&Selection::from(0..2), &Selection::All)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "/obsm/rec: unsupported: selecting rows of this element (opaque element)"
        );
    }
}
