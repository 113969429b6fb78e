//! The collection's names and annotations: gene names joined when it opens, cell names read
//! and everything else (obs and var columns, obsm, uns, …) concatenated when first asked for,
//! once, by [`concat()`](fn@crate::concat) itself.

use std::sync::Arc;

use annpage_engine::data::{Column, CompactString, DataFrame, Element, StringNa};
use annpage_engine::error::ResultExt;
use annpage_engine::format::AnnDataElements;
use annpage_engine::{Error, Result};

use super::{selection_of, BackedCollection, Inner};
use crate::backed::Names;
use crate::concat::{column, frame, obsm, ondisk, StringColumns};
use crate::subset::aligned_rows;
use crate::{AnnData, Axis, AxisIndex, Selection};

/// The concatenation of everything but the matrices, and but the `obsm` entries that are
/// matrices in every file holding them: those are read for a selection, only its rows
/// ([`BackedCollection::obsm`]).
pub(super) struct Annotations {
    meta: AnnData,
    /// The columns of `meta`'s obs and var that anndata writes through
    /// `strings_to_categoricals`: categorical or not depending on the rows kept.
    strings: StringColumns,
    /// The concatenation's `obsm` keys, in its order.
    obsm_keys: Vec<String>,
    /// Those not in `meta`: matrices in every file that holds them.
    obsm_read: Vec<String>,
}

impl Annotations {
    /// obs or var of the concatenation, its columns written through
    /// `strings_to_categoricals` and its element's path.
    fn side(&self, axis: Axis) -> (&DataFrame, &[(String, bool)], &'static str) {
        match axis {
            Axis::Obs => (self.meta.obs(), &self.strings[0], "/obs"),
            Axis::Var => (self.meta.var(), &self.strings[1], "/var"),
        }
    }
}

impl Inner {
    /// The concatenation's cell names, read from the files on the first call.
    pub(super) fn obs_names(&self) -> Result<&Arc<Vec<CompactString>>> {
        if let Some(names) = self.obs_names.get() {
            return Ok(names);
        }
        let names = ondisk::obs_names(&self.files, &self.options)?;
        Ok(self.obs_names.get_or_init(|| Arc::new(names)))
    }

    /// The annotations, concatenated on the first call (an error is not kept: the next call
    /// tries again).
    fn annotations(&self) -> Result<Arc<Annotations>> {
        let mut held = self.annotations.lock();
        if let Some(a) = &*held {
            return Ok(Arc::clone(a));
        }
        let obsm_read = obsm::matrix_keys(&self.files, false)?;
        let (meta, strings) =
            ondisk::annotations(&self.files, &self.options, &self.var_names, &obsm_read)?;
        if meta.obs_names() != &self.obs_names()?[..] {
            return Err(Error::invalid(
                "the concatenated annotations do not have the cell names the files gave",
            ));
        }
        let obsm_keys = obsm::key_order(&self.files, &self.options)?;
        let a = Arc::new(Annotations {
            meta,
            strings,
            obsm_keys,
            obsm_read,
        });
        *held = Some(Arc::clone(&a));
        Ok(a)
    }
}

impl BackedCollection {
    /// The selected cells' rows of the `obsm` entry `key`, which is a matrix in every file
    /// holding it: each file's selected rows read once (in its order), concatenated as
    /// [`concat()`](fn@crate::concat) concatenates the whole entries, then put in the
    /// selection's order.
    fn obsm_rows(&self, key: &str) -> Result<Element> {
        let inner = &self.inner;
        let file_of = |cell: usize| super::file_of(&inner.starts, cell);
        let mut picked: Vec<Vec<usize>> = vec![Vec::new(); inner.files.len()];
        for cell in self.obs.iter() {
            let f = file_of(cell);
            picked[f].push(cell - inner.starts[f]);
        }
        for rows in &mut picked {
            rows.sort_unstable();
            rows.dedup();
        }
        let mut parts = Vec::with_capacity(inner.files.len());
        for (file, rows) in inner.files.iter().zip(&picked) {
            let mut e = AnnDataElements::empty(rows.len(), 0);
            if file.obsm_keys().iter().any(|k| k == key) {
                let cut =
                    file.slice(&Selection::positions(rows.iter().copied()), &Selection::All)?;
                e.obsm.insert(key.to_owned(), cut.obsm(key)?);
            }
            parts.push(AnnData::from_elements(e).in_file(file.path())?);
        }
        let mut joined = crate::concat(&parts, &obsm::options_for(&inner.options))?.into_elements();
        let value = joined
            .obsm
            .shift_remove(key)
            .ok_or_else(|| Error::invalid(format!("the collection has no obsm '{key}'")))?;
        // Rows of `value` come file by file; the selection's order from them.
        let mut bases = Vec::with_capacity(picked.len());
        let mut base = 0;
        for rows in &picked {
            bases.push(base);
            base += rows.len();
        }
        let order = self
            .obs
            .iter()
            .map(|cell| {
                let f = file_of(cell);
                let local = cell - inner.starts[f];
                bases[f] + picked[f].binary_search(&local).unwrap_or(0)
            })
            .collect();
        let index = AxisIndex::from_positions(order, base)?;
        aligned_rows(&value, &index).in_element(format!("/obsm/{key}"))
    }

    /// The selected cells' names (the files' are read on the first call).
    pub fn obs_names(&self) -> Result<Vec<CompactString>> {
        self.names(Axis::Obs).map(Names::into_vec)
    }

    /// The selected genes' names.
    pub fn var_names(&self) -> Result<Vec<CompactString>> {
        self.names(Axis::Var).map(Names::into_vec)
    }

    /// The selected names along `axis`, without a copy when every name is selected (the
    /// collection's own); [`BackedCollection::obs_names`] gives a vector of their own.
    ///
    /// ```
    /// use annpage::{read_collection, Axis, BackedOptions, ConcatOptions};
    /// # let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures");
    /// # let paths = [format!("{dir}/all_elements.h5ad"), format!("{dir}/all_elements.h5ad")];
    /// let options = ConcatOptions { index_unique: Some("-".into()), ..Default::default() };
    /// let c = read_collection(&paths, &options, &BackedOptions::default())?;
    /// assert_eq!(c.names(Axis::Obs)?.len(), c.shape().0);
    /// # Ok::<(), annpage::Error>(())
    /// ```
    pub fn names(&self, axis: Axis) -> Result<Names> {
        let (all, selected) = match axis {
            Axis::Obs => (self.inner.obs_names()?, &self.obs),
            Axis::Var => (&self.inner.var_names, &self.var),
        };
        Ok(if selected.is_full() {
            Names::held(all)
        } else {
            Names::picked(selected.iter().map(|i| all[i].clone()).collect())
        })
    }

    /// The names of `obs`'s columns, in order (anndata's `obs_keys()`).
    pub fn obs_keys(&self) -> Result<Vec<String>> {
        Ok(self
            .inner
            .annotations()?
            .meta
            .obs()
            .columns()
            .keys()
            .cloned()
            .collect())
    }

    /// The names of `var`'s columns, in order (anndata's `var_keys()`).
    pub fn var_keys(&self) -> Result<Vec<String>> {
        Ok(self
            .inner
            .annotations()?
            .meta
            .var()
            .columns()
            .keys()
            .cloned()
            .collect())
    }

    /// The keys of `obsm` (the concatenation's: see [`concat()`](fn@crate::concat)).
    pub fn obsm_keys(&self) -> Result<Vec<String>> {
        Ok(self.inner.annotations()?.obsm_keys.clone())
    }

    /// The keys of `varm` (merged as `options().merge` says).
    pub fn varm_keys(&self) -> Result<Vec<String>> {
        Ok(self
            .inner
            .annotations()?
            .meta
            .varm()
            .keys()
            .cloned()
            .collect())
    }

    /// The keys of `obsp` (kept with `options().pairwise`).
    pub fn obsp_keys(&self) -> Result<Vec<String>> {
        Ok(self
            .inner
            .annotations()?
            .meta
            .obsp()
            .keys()
            .cloned()
            .collect())
    }

    /// The keys of `varp` (merged as `options().merge` says).
    pub fn varp_keys(&self) -> Result<Vec<String>> {
        Ok(self
            .inner
            .annotations()?
            .meta
            .varp()
            .keys()
            .cloned()
            .collect())
    }

    /// The keys of `uns` (merged as `options().uns_merge` says).
    pub fn uns_keys(&self) -> Result<Vec<String>> {
        Ok(self
            .inner
            .annotations()?
            .meta
            .uns()
            .keys()
            .cloned()
            .collect())
    }

    /// `uns` of the concatenation.
    pub fn uns(&self) -> Result<annpage_engine::data::Mapping> {
        Ok(self.inner.annotations()?.meta.uns().clone())
    }

    /// The selected cells' rows of the `obsm` entry `key`: what
    /// [`BackedCollection::annotations`] holds under it, without the other elements.
    pub fn obsm(&self, key: &str) -> Result<Element> {
        let a = self.inner.annotations()?;
        let missing = || {
            Error::invalid(format!(
                "the collection has no obsm '{key}' (obsm: {:?})",
                a.obsm_keys
            ))
        };
        if !a.obsm_keys.iter().any(|k| k == key) {
            return Err(missing());
        }
        if a.obsm_read.iter().any(|k| k == key) {
            return self.obsm_rows(key);
        }
        let value = a.meta.obsm().get(key).ok_or_else(missing)?;
        aligned_rows(value, &self.obs).in_element(format!("/obsm/{key}"))
    }

    /// The selected rows of one `obs` (`Axis::Obs`) or `var` column: what
    /// [`BackedCollection::obs`] (or `var`) holds under `name`, without the other columns.
    /// `None` when there is no such column.
    ///
    /// ```
    /// use annpage::{read_collection, Axis, BackedOptions, ConcatOptions, Selection};
    /// # let a = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/pbmc_like_csr.h5ad");
    /// let both = read_collection(&[a, a], &ConcatOptions::default(), &BackedOptions::default())?;
    /// let view = both.slice(&Selection::from(1990..2010), &Selection::All)?;
    /// let name = view.obs()?.columns().keys().next().unwrap().clone();
    /// assert_eq!(view.frame_column(Axis::Obs, &name)?.as_ref(), view.obs()?.column(&name));
    /// # Ok::<(), annpage::Error>(())
    /// ```
    pub fn frame_column(&self, axis: Axis, name: &str) -> Result<Option<Column>> {
        let a = self.inner.annotations()?;
        let (frame, strings, at) = a.side(axis);
        let rows = self.rows_of(axis);
        let Some(column) = frame.column(name) else {
            return Ok(None);
        };
        let at = format!("{at}/{name}");
        let mut cut = column.subset(rows).in_element(&at)?;
        if let (Column::Categorical(c), true) = (&mut cut, self.is_view()) {
            c.remove_unused_categories();
        }
        match strings.iter().find(|(s, _)| s == name) {
            Some((_, nullable)) => column::rewrite_strings(&cut, *nullable)
                .in_element(at)
                .map(Some),
            None => Ok(Some(cut)),
        }
    }

    /// Everything but the matrices at the selection, as [`AnnData::subset`] of the
    /// concatenation gives it (in a view, unused categories removed; the whole collection
    /// keeps them, as `anndata.concat` does).
    pub fn annotations(&self) -> Result<AnnData> {
        let held = self.inner.annotations()?;
        let mut a = match self.is_view() {
            true => held
                .meta
                .subset(&selection_of(&self.obs), &selection_of(&self.var))?,
            false => held.meta.clone(),
        };
        let [obs, var] = &held.strings;
        a.set_obs(rewrite(a.obs(), obs).in_element("/obs")?)?;
        a.set_var(rewrite(a.var(), var).in_element("/var")?)?;
        if held.obsm_read.is_empty() {
            return Ok(a);
        }
        // The entries read for the selection, in the concatenation's order.
        let mut e = a.into_elements();
        let mut held_obsm = std::mem::take(&mut e.obsm);
        for key in &held.obsm_keys {
            let value = match held_obsm.shift_remove(key) {
                Some(v) => v,
                None => self.obsm_rows(key)?,
            };
            e.obsm.insert(key.clone(), value);
        }
        AnnData::from_elements(e)
    }

    /// The selected cells' obs (see [`BackedCollection::annotations`]): the frame alone is
    /// cut, not the other annotations.
    pub fn obs(&self) -> Result<DataFrame> {
        self.frame(Axis::Obs)
    }

    /// The selected genes' var (see [`BackedCollection::annotations`]).
    pub fn var(&self) -> Result<DataFrame> {
        self.frame(Axis::Var)
    }

    /// pandas' name of the obs or var index, from the files' metadata: the name their
    /// indices share, as [`concat()`](fn@crate::concat) gives it (no annotations are read).
    pub fn index_name(&self, axis: Axis) -> Option<String> {
        let names: Vec<Option<String>> = self
            .inner
            .files
            .iter()
            .map(|f| f.index_name(axis))
            .collect();
        frame::common(names.iter().map(Option::as_deref)).map(str::to_owned)
    }

    /// How the files store their obs or var index, when they all store it alike
    /// ([`DataFrame::index_string_na`]), from metadata only.
    pub fn index_string_na(&self, axis: Axis) -> Option<StringNa> {
        frame::common(self.inner.files.iter().map(|f| f.index_string_na(axis)))
    }

    /// The selected positions along `axis`.
    fn rows_of(&self, axis: Axis) -> &AxisIndex {
        match axis {
            Axis::Obs => &self.obs,
            Axis::Var => &self.var,
        }
    }

    /// obs or var at the selection, as `AnnData::subset` cuts it (in a view, unused
    /// categories removed).
    fn frame(&self, axis: Axis) -> Result<DataFrame> {
        let held = self.inner.annotations()?;
        let (frame, strings, at) = held.side(axis);
        let mut cut = frame.subset_rows(self.rows_of(axis)).in_element(at)?;
        if self.is_view() {
            cut.remove_unused_categories();
        }
        rewrite(&cut, strings).in_element(at)
    }
}

/// `frame` with its `strings` columns written as anndata writes what is left of them.
fn rewrite(frame: &DataFrame, strings: &[(String, bool)]) -> Result<DataFrame> {
    let mut out = frame.clone();
    for (name, nullable) in strings {
        if let Some(c) = frame.column(name) {
            let c = column::rewrite_strings(c, *nullable).map_err(|e| frame::in_column(e, name))?;
            out.insert(name.clone(), c)?;
        }
    }
    Ok(out)
}
