//! Concatenating AnnData objects along obs or var, with anndata's `concat` semantics.
//!
//! The work is split by kind of element: [`plan`] aligns the other axis (pandas' index union and
//! intersection, reindexers), [`matrix`] and [`sparse`] reindex and stack matrices and arrays, [`column`],
//! [`dtypes`] and [`frame`] concatenate data frames with pandas' dtype rules, and [`merge`] picks the
//! elements of the other axis and of `uns` with a merge strategy.

mod along_var;
mod chunking;
mod collection;
mod column;
mod conform;
mod dtypes;
mod frame;
mod matrix;
mod merge;
mod obsm;
mod ondisk;
mod options;
mod plan;
mod progress;
mod sparse;
pub(crate) use self::sparse::vstack_csr;
mod values;

pub use collection::{read_collection, BackedCollection, CollectionChunks};
pub use ondisk::{concat_on_disk, concat_on_disk_observed};
pub use options::{ConcatOptions, FillValue, Join, MergeStrategy};
pub use progress::ConcatProgress;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use annpage_engine::data::{CompactString, DataFrame, Element, Mapping, Matrix};
use annpage_engine::format::{AnnDataElements, RawElements};
use annpage_engine::{Error, Result};
use indexmap::IndexMap;

use crate::{AnnData, Axis};
use matrix::Mat;
use merge::AltValue;
use plan::Reindexer;

/// Concatenates objects along an axis, as `anndata.concat` does.
///
/// Every element follows anndata (0.13 where it changed concat): the other axis's names are
/// intersected (inner join, in the first object's order) or united (outer join, sorted unless
/// all equal); `X` and layers are aligned and stacked (sparse results are CSR, missing entries
/// 0 or `fill_value`; dense ones NaN or `fill_value`; an array that is filled takes numpy's
/// promotion of its dtype and the fill's, as anndata 0.13 does);
/// the axis's annotations are concatenated (categoricals over the natsorted union of their
/// categories, columns an object lacks filled as pandas does), then `label` is added; the
/// other axis's annotations, `varm`/`varp` (for obs) and `uns` are chosen with the merge
/// strategies; `obsm` arrays are cut to the narrowest (inner) or padded to the widest
/// (outer); `obsp` is block-diagonal with `pairwise`; `raw` is concatenated when every
/// object has one.
///
/// What anndata produces but cannot write (object columns mixing booleans and missing
/// values) is an error, as are the cases anndata
/// refuses (some objects with `X` and some without, data frames beside arrays in `obsm`,
/// names of the other axis that repeat, too few keys).
///
/// ```
/// use annpage::data::{ArrayData, Matrix};
/// use annpage::{concat, AnnData, ConcatOptions, Join};
///
/// let mut a = AnnData::new(2, 2);
/// a.set_var_names(vec!["g1", "g2"])?;
/// a.set_x(Some(Matrix::Dense(ArrayData::from(ndarray::arr2(&[[1.0f32, 2.], [3., 4.]])))))?;
/// let mut b = AnnData::new(1, 2);
/// b.set_obs_names(vec!["c"])?;
/// b.set_var_names(vec!["g2", "g3"])?;
/// b.set_x(Some(Matrix::Dense(ArrayData::from(ndarray::arr2(&[[5.0f32, 6.]])))))?;
///
/// let inner = concat(&[a.clone(), b.clone()], &ConcatOptions::default())?;
/// assert_eq!(inner.var_names(), ["g2"]);
/// assert_eq!(inner.obs_names(), ["0", "1", "c"]);
///
/// let outer = concat(&[a, b], &ConcatOptions { join: Join::Outer, ..Default::default() })?;
/// assert_eq!(outer.var_names(), ["g1", "g2", "g3"]);
/// // Filled with NaN: float32 and NaN's float64 make float64 (anndata 0.13).
/// let Some(Matrix::Dense(ArrayData::F64(x))) = outer.x() else { panic!() };
/// assert!(x[[2, 0]].is_nan()); // cell "c" has no g1
/// # Ok::<(), annpage::Error>(())
/// ```
pub fn concat(adatas: &[AnnData], options: &ConcatOptions) -> Result<AnnData> {
    concat_noting_strings(adatas, options).map(|c| c.adata)
}

/// What errors about several files as a whole name as their file: `a.h5ad + b.h5ad` (the
/// first three, then how many more).
pub(crate) fn files_label<'p>(paths: impl ExactSizeIterator<Item = &'p Path>) -> PathBuf {
    let n = paths.len();
    let mut label = paths
        .take(3)
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" + ");
    if n > 3 {
        label.push_str(&format!(" + {} more", n - 3));
    }
    PathBuf::from(label)
}

/// The obs and var columns of a concatenation that anndata writes through
/// `strings_to_categoricals` (see [`column::written_as_strings`]): name and whether they are
/// pandas strings.
pub(super) type StringColumns = [Vec<(String, bool)>; 2];

/// A concatenation and what the streamed writers need of how it was made.
struct Concatenated {
    /// The result.
    adata: AnnData,
    /// The columns of its obs and var that were strings before writing.
    strings: StringColumns,
    /// Each object's positions along the other axis → the result's.
    reindexers: Vec<Reindexer>,
}

/// [`concat()`], and the columns of its obs and var that were strings before writing.
fn concat_noting_strings(adatas: &[AnnData], options: &ConcatOptions) -> Result<Concatenated> {
    let strings_of = |cols: &frame::Columns| -> Vec<(String, bool)> {
        cols.iter()
            .filter_map(|(k, c)| column::written_as_strings(c).map(|n| (k.clone(), n)))
            .collect()
    };
    if adatas.is_empty() {
        return Err(Error::invalid("concat needs at least one object"));
    }
    let keys = resolve_keys(adatas.len(), options.keys.as_deref())?;
    let axis = options.axis;
    let alt = axis.other();
    let lens: Vec<usize> = adatas.iter().map(|a| len(a, axis)).collect();

    let mut names: Vec<CompactString> = Vec::with_capacity(lens.iter().sum());
    for (i, a) in adatas.iter().enumerate() {
        match &options.index_unique {
            Some(sep) => names.extend(
                names_of(a, axis)
                    .iter()
                    .map(|n| compact_str::format_compact!("{n}{sep}{}", keys[i])),
            ),
            None => names.extend(names_of(a, axis).iter().cloned()),
        }
    }
    let alt_lists: Vec<&[CompactString]> = adatas.iter().map(|a| names_of(a, alt)).collect();
    let (alt_names, reindexers) = plan::align(&alt_lists, options.join, alt.name())?;

    // Annotations of the axis.
    let frames: Vec<(Option<&DataFrame>, usize)> = adatas
        .iter()
        .map(|a| (Some(frame_of(a, axis)), len(a, axis)))
        .collect();
    let mut cols = frame::concat_frames(&frames, options.join, options.join)
        .map_err(|e| e.in_element(format!("/{}", axis.name())))?;
    let index_name =
        frame::common(adatas.iter().map(|a| frame_of(a, axis).index_name())).map(str::to_owned);
    // The label replaces a column of its name: a categorical, whatever was there.
    let annot_strings: Vec<(String, bool)> = strings_of(&cols)
        .into_iter()
        .filter(|(k, _)| options.label.as_ref() != Some(k))
        .collect();

    // Annotations of the other axis, merged.
    let alt_frames: Vec<frame::Columns> = adatas
        .iter()
        .zip(&reindexers)
        .map(|(a, r)| frame::reindex(frame_of(a, alt), r))
        .collect::<Result<_>>()?;
    let alt_cols = merge::merge(&alt_frames.iter().collect::<Vec<_>>(), options.merge)?;
    let alt_index_name =
        frame::common(adatas.iter().map(|a| frame_of(a, alt).index_name())).map(str::to_owned);
    let alt_strings = strings_of(&alt_cols);

    let x = concat_x(adatas, &reindexers, options, axis)?;
    let layers = concat_layers(adatas, &reindexers, options, axis)?;
    let aligned = concat_aligned(adatas, axis, options, &names, index_name.as_deref())?;
    let pairwise = if options.pairwise {
        concat_pairwise(adatas, axis, options.join)?
    } else {
        IndexMap::new()
    };
    let alt_aligned = merge_alt_aligned(
        adatas,
        alt,
        &reindexers,
        options.merge,
        &alt_names,
        alt_index_name.as_deref(),
    )?;
    let alt_pairwise = merge_alt_pairwise(adatas, alt, &reindexers, options.merge)?;
    let uns_maps: Vec<&Mapping> = adatas.iter().map(AnnData::uns).collect();
    let uns = merge::merge(&uns_maps, options.uns_merge).map_err(|e| e.in_element("/uns"))?;
    let raw = concat_raw(adatas, options, &keys)?;

    // The names go into the frames last, moved (along obs, every cell's name).
    let mut annot = frame::build(std::mem::take(&mut cols), names, index_name, true)
        .map_err(|e| e.in_element(format!("/{}", axis.name())))?;
    annot.set_index_string_na(frame::common(
        adatas.iter().map(|a| frame_of(a, axis).index_string_na()),
    ))?;
    if let Some(label) = &options.label {
        annot.insert(label.clone(), frame::label_column(&keys, &lens)?)?;
    }
    let mut alt_annot = frame::build(alt_cols, alt_names, alt_index_name, true)
        .map_err(|e| e.in_element(format!("/{}", alt.name())))?;
    alt_annot.set_index_string_na(frame::common(
        adatas.iter().map(|a| frame_of(a, alt).index_string_na()),
    ))?;
    let (obs, var) = obs_var(axis, annot, alt_annot);
    let (obsm, varm) = obs_var(axis, aligned, alt_aligned);
    let (obsp, varp) = obs_var(axis, pairwise, alt_pairwise);
    let (obs_strings, var_strings) = obs_var(axis, annot_strings, alt_strings);
    let strings = [obs_strings, var_strings];
    let adata = AnnData::from_elements(AnnDataElements {
        x,
        obs,
        var,
        obsm,
        varm,
        obsp,
        varp,
        layers,
        uns,
        raw,
    })?;
    Ok(Concatenated {
        adata,
        strings,
        reindexers,
    })
}

/// The keys: given (at least one per object, all different) or `"0"`, `"1"`, ….
fn resolve_keys(n: usize, keys: Option<&[String]>) -> Result<Vec<String>> {
    let Some(keys) = keys else {
        return Ok((0..n).map(|i| i.to_string()).collect());
    };
    if keys.len() < n {
        return Err(Error::invalid(format!(
            "{} keys for {n} objects",
            keys.len()
        )));
    }
    let mut seen = HashSet::new();
    if let Some(dup) = keys.iter().find(|k| !seen.insert(k.as_str())) {
        return Err(Error::invalid(format!(
            "the key '{dup}' is given twice (keys must be unique)"
        )));
    }
    Ok(keys.to_vec())
}

fn len(a: &AnnData, axis: Axis) -> usize {
    match axis {
        Axis::Obs => a.n_obs(),
        Axis::Var => a.n_vars(),
    }
}

fn names_of(a: &AnnData, axis: Axis) -> &[CompactString] {
    match axis {
        Axis::Obs => a.obs_names(),
        Axis::Var => a.var_names(),
    }
}

fn frame_of(a: &AnnData, axis: Axis) -> &DataFrame {
    match axis {
        Axis::Obs => a.obs(),
        Axis::Var => a.var(),
    }
}

fn aligned_of(a: &AnnData, axis: Axis) -> &Mapping {
    match axis {
        Axis::Obs => a.obsm(),
        Axis::Var => a.varm(),
    }
}

fn pairwise_of(a: &AnnData, axis: Axis) -> &IndexMap<String, Matrix> {
    match axis {
        Axis::Obs => a.obsp(),
        Axis::Var => a.varp(),
    }
}

/// `(obs, var)` from the value along the concatenation `axis` and the one along the other.
fn obs_var<T>(axis: Axis, along: T, other: T) -> (T, T) {
    match axis {
        Axis::Obs => (along, other),
        Axis::Var => (other, along),
    }
}

/// The length of `a` along `axis`.
fn len_along(a: &AnnData, axis: Axis) -> usize {
    match axis {
        Axis::Obs => a.n_obs(),
        Axis::Var => a.n_vars(),
    }
}

/// `X`: stacked when every object has one, absent when none has; when some lack it, treated
/// as anndata 0.13 treats it, like a layer: dropped by an inner join, filled by an outer one.
fn concat_x(
    adatas: &[AnnData],
    reindexers: &[Reindexer],
    options: &ConcatOptions,
    axis: Axis,
) -> Result<Option<Matrix>> {
    let with = adatas.iter().filter(|a| a.x().is_some()).count();
    if with == 0 || (with < adatas.len() && options.join == Join::Inner) {
        return Ok(None);
    }
    let fill = options.fill_value;
    let pieces = adatas
        .iter()
        .zip(reindexers)
        .map(|(a, r)| (a.x().cloned().map(Mat::from_matrix), len_along(a, axis), r))
        .collect();
    matrix::stack_axis(pieces, fill, axis)
        .map(Some)
        .map_err(|e| e.in_element("/X"))
}

/// The keys of mappings joined as anndata joins them (inner: every object's, in the last
/// object's order; outer: all, in order of appearance).
fn join_keys<V>(maps: &[&IndexMap<String, V>], join: Join) -> Vec<String> {
    match join {
        Join::Inner => merge::intersect_keys(maps),
        Join::Outer => merge::union_keys(maps),
    }
}

fn concat_layers(
    adatas: &[AnnData],
    reindexers: &[Reindexer],
    options: &ConcatOptions,
    axis: Axis,
) -> Result<IndexMap<String, Matrix>> {
    let maps: Vec<&IndexMap<String, Matrix>> = adatas.iter().map(AnnData::layers).collect();
    let fill = options.layer_fill();
    let mut out = IndexMap::new();
    for key in join_keys(&maps, options.join) {
        let pieces = adatas
            .iter()
            .zip(reindexers)
            .map(|(a, r)| {
                let n = len_along(a, axis);
                (a.layers().get(&key).cloned().map(Mat::from_matrix), n, r)
            })
            .collect();
        let m = matrix::stack_axis(pieces, fill, axis)
            .map_err(|e| e.in_element(format!("/layers/{key}")))?;
        out.insert(key, m);
    }
    Ok(out)
}

/// obsm (varm) along the axis: arrays cut to the narrowest or padded to the widest, frames
/// concatenated as the annotations are.
fn concat_aligned(
    adatas: &[AnnData],
    axis: Axis,
    options: &ConcatOptions,
    names: &[CompactString],
    index_name: Option<&str>,
) -> Result<Mapping> {
    let maps: Vec<&Mapping> = adatas.iter().map(|a| aligned_of(a, axis)).collect();
    let mut out = Mapping::new();
    for key in join_keys(&maps, options.join) {
        let path = format!("/{}m/{key}", axis.name());
        let els: Vec<(Option<&Element>, usize)> = adatas
            .iter()
            .map(|a| (aligned_of(a, axis).get(&key), len(a, axis)))
            .collect();
        let value =
            aligned_element(&els, options, names, index_name).map_err(|e| e.in_element(path))?;
        out.insert(key, value);
    }
    Ok(out)
}

fn aligned_element(
    els: &[(Option<&Element>, usize)],
    options: &ConcatOptions,
    names: &[CompactString],
    index_name: Option<&str>,
) -> Result<Element> {
    let present = || els.iter().filter_map(|(e, _)| *e);
    if present().any(|e| matches!(e, Element::DataFrame(_))) {
        if !present().all(|e| matches!(e, Element::DataFrame(_))) {
            return Err(Error::unsupported(
                "cannot concatenate a data frame with other array types (anndata refuses this too)",
            ));
        }
        let frames: Vec<(Option<&DataFrame>, usize)> = els
            .iter()
            .map(|(e, n)| match e {
                Some(Element::DataFrame(d)) => (Some(d), *n),
                _ => (None, *n),
            })
            .collect();
        // anndata reindexes the frames to the joined columns, then pd.concat joins outer.
        let cols = frame::concat_frames(&frames, options.join, Join::Outer)?;
        return Ok(Element::DataFrame(frame::build(
            cols,
            names.to_vec(),
            index_name.map(str::to_owned),
            false,
        )?));
    }
    let mats: Vec<(Option<Mat>, usize)> = els
        .iter()
        .map(|(e, n)| match e {
            None => Ok((None, *n)),
            Some(e) => Mat::from_element(Element::clone(e))
                .map(|m| (Some(m), *n))
                .ok_or_else(|| {
                    Error::unsupported(format!(
                        "concatenating a {} in an aligned mapping",
                        e.kind()
                    ))
                }),
        })
        .collect::<Result<_>>()?;
    let widths: Vec<Option<usize>> = mats
        .iter()
        .map(|(m, _)| m.as_ref().map(|m| m.len(1)))
        .collect();
    let (_, reindexers, fill) = aligned_columns(&widths, options);
    let pieces = mats
        .into_iter()
        .zip(&reindexers)
        .map(|((m, n), r)| (m, n, r))
        .collect();
    matrix::stack_rows(pieces, fill)?.into_element()
}

/// How the arrays of one aligned-mapping key (obsm, varm), of `widths` columns (`None` where
/// an object lacks it), line up: cut to the narrowest (inner join) or padded to the widest
/// with the fill value (outer). The result's width, each array's reindexer and the fill.
fn aligned_columns(
    widths: &[Option<usize>],
    options: &ConcatOptions,
) -> (usize, Vec<Reindexer>, Option<FillValue>) {
    let present = widths.iter().flatten().copied();
    let (width, fill) = match options.join {
        Join::Inner => (present.min(), None),
        Join::Outer => (present.max(), options.fill_value),
    };
    let width = width.unwrap_or(0);
    let reindexers = widths
        .iter()
        .map(|w| Reindexer::range(w.unwrap_or(0), width))
        .collect();
    (width, reindexers, fill)
}

/// obsp (varp) along the axis: block-diagonal matrices of every object's (inner) or any
/// object's (outer) keys.
fn concat_pairwise(adatas: &[AnnData], axis: Axis, join: Join) -> Result<IndexMap<String, Matrix>> {
    let maps: Vec<&IndexMap<String, Matrix>> =
        adatas.iter().map(|a| pairwise_of(a, axis)).collect();
    let mut out = IndexMap::new();
    for key in join_keys(&maps, join) {
        let pieces = adatas
            .iter()
            .map(|a| {
                (
                    pairwise_of(a, axis)
                        .get(&key)
                        .cloned()
                        .map(Mat::from_matrix),
                    len(a, axis),
                )
            })
            .collect();
        let m = matrix::block_diag(pieces)
            .map_err(|e| e.in_element(format!("/{}p/{key}", axis.name())))?;
        out.insert(key, Matrix::Sparse(m));
    }
    Ok(out)
}

/// varm (obsm) of the other axis: each object's reindexed onto the result's names, then
/// chosen with the merge strategy.
fn merge_alt_aligned(
    adatas: &[AnnData],
    alt: Axis,
    reindexers: &[Reindexer],
    strategy: Option<MergeStrategy>,
    alt_names: &[CompactString],
    alt_index_name: Option<&str>,
) -> Result<Mapping> {
    if strategy.is_none() {
        return Ok(Mapping::new());
    }
    let mut maps: Vec<IndexMap<String, AltValue>> = Vec::with_capacity(adatas.len());
    for (a, r) in adatas.iter().zip(reindexers) {
        let mut m = IndexMap::new();
        for (k, e) in aligned_of(a, alt) {
            let path = || format!("/{}m/{k}", alt.name());
            let v = match e {
                Element::DataFrame(d) => {
                    AltValue::Frame(frame::reindex(d, r).map_err(|e| e.in_element(path()))?)
                }
                other => {
                    let mat = Mat::from_element(other.clone()).ok_or_else(|| {
                        Error::unsupported(format!(
                            "merging a {} in an aligned mapping",
                            other.kind()
                        ))
                        .in_element(path())
                    })?;
                    AltValue::Mat(
                        matrix::reindex_alt(mat, r, false).map_err(|e| e.in_element(path()))?,
                    )
                }
            };
            m.insert(k.clone(), v);
        }
        maps.push(m);
    }
    let merged = merge::merge(&maps.iter().collect::<Vec<_>>(), strategy)?;
    merged
        .into_iter()
        .map(|(k, v)| {
            let path = format!("/{}m/{k}", alt.name());
            let e = match v {
                AltValue::Mat(m) => m.into_element(),
                AltValue::Frame(cols) => frame::build(
                    cols,
                    alt_names.to_vec(),
                    alt_index_name.map(str::to_owned),
                    false,
                )
                .map(Element::DataFrame),
            }
            .map_err(|e| e.in_element(path))?;
            Ok((k, e))
        })
        .collect()
}

/// varp (obsp) of the other axis: reindexed on both axes, then merged.
fn merge_alt_pairwise(
    adatas: &[AnnData],
    alt: Axis,
    reindexers: &[Reindexer],
    strategy: Option<MergeStrategy>,
) -> Result<IndexMap<String, Matrix>> {
    if strategy.is_none() {
        return Ok(IndexMap::new());
    }
    let maps: Vec<IndexMap<String, Mat>> = adatas
        .iter()
        .zip(reindexers)
        .map(|(a, r)| {
            pairwise_of(a, alt)
                .iter()
                .map(|(k, m)| {
                    let v = matrix::reindex_alt(Mat::from_matrix(m.clone()), r, true)
                        .map_err(|e| e.in_element(format!("/{}p/{k}", alt.name())))?;
                    Ok((k.clone(), v))
                })
                .collect::<Result<_>>()
        })
        .collect::<Result<_>>()?;
    merge::merge(&maps.iter().collect::<Vec<_>>(), strategy)?
        .into_iter()
        .map(|(k, m)| {
            let path = format!("/{}p/{k}", alt.name());
            Ok((k, m.into_matrix().map_err(|e| e.in_element(path))?))
        })
        .collect()
}

/// `raw`, when every object has one: anndata concatenates objects made of `raw.X`, the
/// names of obs, `raw.var` and `raw.varm` with the same join, label, keys, names and fill,
/// and no merge, so `raw.var` keeps no columns of the other axis and `raw.varm` nothing when
/// concatenating along obs.
/// Each input's raw (its obs names, raw.var, raw.varm and, in memory, raw.X) concatenated as
/// anndata concatenates raw (the keys, label and join of `options`, nothing merged); `None`
/// when the result has no observations (anndata tests `if not raw`, and an AnnData without
/// observations is false).
pub(super) fn concat_raw_parts(
    parts: &[AnnData],
    options: &ConcatOptions,
    keys: &[String],
) -> Result<Option<AnnData>> {
    let raw_options = ConcatOptions {
        keys: Some(keys.to_vec()),
        merge: None,
        uns_merge: None,
        pairwise: false,
        ..options.clone()
    };
    let r = concat(parts, &raw_options).map_err(|e| e.in_element("/raw"))?;
    Ok((r.n_obs() > 0).then_some(r))
}

fn concat_raw(
    adatas: &[AnnData],
    options: &ConcatOptions,
    keys: &[String],
) -> Result<Option<RawElements>> {
    if !adatas.iter().all(|a| a.raw().is_some()) {
        return Ok(None);
    }
    let parts = adatas
        .iter()
        .map(|a| {
            let raw = a.raw().expect("checked above");
            let mut e = AnnDataElements::empty(a.n_obs(), raw.var.nrows());
            e.obs = DataFrame::from_index(a.obs_names().to_vec());
            e.var = raw.var.clone();
            e.varm = raw.varm.clone();
            e.x = Some(raw.x.clone());
            AnnData::from_elements(e)
        })
        .collect::<Result<Vec<_>>>()
        .map_err(|e| e.in_element("/raw"))?;
    let Some(r) = concat_raw_parts(&parts, options, keys)? else {
        return Ok(None);
    };
    let e = r.into_elements();
    Ok(Some(RawElements {
        x: e.x.ok_or_else(|| Error::invalid("raw without X"))?,
        var: e.var,
        varm: e.varm,
    }))
}
