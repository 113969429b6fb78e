//! Data frames: `obs`/`var` along the concatenation axis (`pd.concat` after anndata's
//! `unify_dtypes`), frames in obsm/varm, and frames of the other axis reindexed for merging.

use annpage_engine::data::{ArrayData, Categorical, Column, CompactString, DataFrame};
use annpage_engine::{Error, Result};
use indexmap::IndexMap;

use super::column::PCol;
use super::dtypes;
use super::plan::{self, Reindexer};
use super::Join;

/// A frame's columns as pandas holds them.
pub(super) type Columns = IndexMap<String, PCol>;

/// The columns of a frame.
pub(super) fn columns(df: &DataFrame) -> Columns {
    df.columns()
        .iter()
        .map(|(k, c)| (k.clone(), PCol::from_column(c)))
        .collect()
}

/// `pd.concat(unify_dtypes(frames), join=concat_join, ignore_index=True)` over the frames
/// reindexed to the columns of `join`: `None` frames (an element one input lacks) have `len`
/// rows and no columns. The result's columns are the union of the frames' in order of
/// appearance (outer) or the first frame's that every frame has (inner).
pub(super) fn concat_frames(
    frames: &[(Option<&DataFrame>, usize)],
    join: Join,
    concat_join: Join,
) -> Result<Columns> {
    let names: Vec<Vec<String>> = frames
        .iter()
        .map(|(f, _)| f.map_or_else(Vec::new, |f| f.columns().keys().cloned().collect()))
        .collect();
    let result_names: Vec<String> = match join {
        Join::Outer => {
            let mut all: Vec<String> = Vec::new();
            for n in names.iter().flatten() {
                if !all.contains(n) {
                    all.push(n.clone());
                }
            }
            all
        }
        Join::Inner => names
            .iter()
            .skip(1)
            .fold(names.first().cloned().unwrap_or_default(), |acc, n| {
                plan::intersection(&acc, n)
            }),
    };
    // pd.concat leaves out frames with neither rows nor columns (outer join only), after
    // anndata's unify_dtypes has seen them.
    let empty: Vec<bool> = frames
        .iter()
        .zip(&names)
        .map(|((_, n), cols)| *n == 0 && cols.is_empty())
        .collect();
    let skip_empty = concat_join == Join::Outer && empty.iter().any(|e| !e);
    let mut out = Columns::new();
    for name in result_names {
        let mut pieces: Vec<Option<PCol>> = frames
            .iter()
            .map(|(f, _)| f.and_then(|f| f.column(&name)).map(PCol::from_column))
            .collect();
        dtypes::unify(&mut pieces).map_err(|e| in_column(e, &name))?;
        let pieces = pieces
            .into_iter()
            .zip(frames.iter().map(|(_, n)| *n))
            .zip(&empty)
            .filter(|(_, &e)| !(skip_empty && e))
            .map(|(p, _)| p)
            .collect();
        let col = dtypes::concat_column(pieces).map_err(|e| in_column(e, &name))?;
        out.insert(name, col);
    }
    Ok(out)
}

/// The frame's rows reindexed onto the result's names (`df.reindex(index=new_index)`).
pub(super) fn reindex(df: &DataFrame, r: &Reindexer) -> Result<Columns> {
    df.columns()
        .iter()
        .map(|(k, c)| {
            Ok((
                k.clone(),
                PCol::from_column(c)
                    .reindex(r)
                    .map_err(|e| in_column(e, k))?,
            ))
        })
        .collect()
}

/// Builds the frame anndata writes from columns (see [`PCol::into_column`]).
pub(super) fn build(
    cols: Columns,
    names: Vec<CompactString>,
    index_name: Option<String>,
    strings_to_categoricals: bool,
) -> Result<DataFrame> {
    let mut df = DataFrame::from_index(names);
    df.set_index_name(index_name);
    for (name, col) in cols {
        let c = col
            .into_column(strings_to_categoricals)
            .map_err(|e| in_column(e, &name))?;
        df.insert(name.clone(), c)?;
    }
    Ok(df)
}

/// Whether two frames are equal as pandas' `DataFrame.equals` has it: the same columns in the
/// same order, each equal as a series.
pub(super) fn frames_equal(a: &Columns, b: &Columns) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ka, ca), (kb, cb))| ka == kb && ca.equals(cb))
}

/// The label column: each input's key repeated over its rows, categories the keys in order.
pub(super) fn label_column(keys: &[String], lens: &[usize]) -> Result<Column> {
    let codes = lens
        .iter()
        .enumerate()
        .flat_map(|(i, &n)| std::iter::repeat_n(i as i32, n))
        .collect();
    Ok(Column::Categorical(Categorical::new(
        codes,
        ArrayData::from(keys.to_vec()),
        false,
    )?))
}

/// What the index of a concatenated or joined frame keeps (its name, how it is stored): the
/// inputs' common value, `None` when one differs or has none.
pub(super) fn common<T: PartialEq>(values: impl IntoIterator<Item = Option<T>>) -> Option<T> {
    let mut it = values.into_iter();
    let first = it.next()??;
    it.all(|v| v.as_ref() == Some(&first)).then_some(first)
}

/// `e` naming column `name` (its message prefixed) where it is about the values.
pub(super) fn in_column(e: Error, name: &str) -> Error {
    match e {
        Error::Unsupported(m) => Error::Unsupported(format!("column '{name}': {m}")),
        Error::InvalidArgument(m) => Error::InvalidArgument(format!("column '{name}': {m}")),
        other => other,
    }
}
