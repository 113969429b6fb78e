//! `obsm` entries that are matrices in the files: left out of the annotations concatenated in
//! memory, and read (a collection's selection) or streamed (`concat_on_disk`) instead, each
//! piece aligned by [`concat()`]'s own rules (`matrix::stack_rows`: widths cut or padded,
//! numpy's dtype over every file's entry).

use annpage_engine::data::{ArrayData, DType, Element, Matrix};
use annpage_engine::file::stream::{MatrixSink, MatrixSpec, Values, Writer};
use annpage_engine::format::AnnDataElements;
use annpage_engine::paged::MatrixKind;
use annpage_engine::{Error, Result};

use super::matrix::{stack_rows, Mat};
use super::plan::Reindexer;
use super::{aligned_columns, concat, values, ConcatOptions, FillValue};
use crate::{AnnData, BackedAnnData, Selection};

/// The `obsm` keys whose entries are matrices in every file holding them (dense ones only
/// with `dense_only`).
pub(super) fn matrix_keys(files: &[BackedAnnData], dense_only: bool) -> Result<Vec<String>> {
    let mut keys: Vec<String> = Vec::new();
    for file in files {
        for key in file.obsm_keys() {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    let mut matrices = Vec::new();
    for key in keys {
        let mut all = true;
        for file in files.iter().filter(|f| f.obsm_keys().contains(&key)) {
            all &= match file.obsm_matrix_kind(&key)? {
                Some(MatrixKind::Dense) => true,
                Some(MatrixKind::Sparse(_)) => !dense_only,
                None => false,
            };
        }
        if all {
            matrices.push(key);
        }
    }
    Ok(matrices)
}

/// The concatenation's `obsm` keys in its order: [`concat()`] of stand-ins without rows, one
/// empty entry for each of a file's keys.
pub(super) fn key_order(files: &[BackedAnnData], options: &ConcatOptions) -> Result<Vec<String>> {
    let stand_ins = files
        .iter()
        .map(|file| {
            let mut e = AnnDataElements::empty(0, 0);
            for key in file.obsm_keys() {
                let empty = ArrayData::zeros(DType::F32, &[0, 1]);
                e.obsm.insert(key, Element::Array(empty));
            }
            AnnData::from_elements(e)
        })
        .collect::<Result<Vec<_>>>()?;
    let joined = concat(&stand_ins, &options_for(options))?;
    Ok(joined.obsm().keys().cloned().collect())
}

/// `options` as they apply to `obsm` alone: the join and the fill value.
pub(super) fn options_for(options: &ConcatOptions) -> ConcatOptions {
    ConcatOptions {
        join: options.join,
        fill_value: options.fill_value,
        ..ConcatOptions::default()
    }
}

/// Writes the `obsm` entry `key` (dense in every file holding it) of the concatenation of
/// `files` as `/obsm/key`, each file's rows read and aligned a block of about `chunk_bytes`
/// at a time: one block in memory, however large the entries.
pub(super) fn stream(
    w: &Writer<'_>,
    files: &[BackedAnnData],
    key: &str,
    options: &ConcatOptions,
    chunk_bytes: usize,
) -> Result<()> {
    let none = Selection::positions(std::iter::empty());
    let piece = |file: &BackedAnnData, rows: &Selection| -> Result<Option<Mat>> {
        if !file.obsm_keys().iter().any(|k| k == key) {
            return Ok(None);
        }
        let value = file.slice(rows, &Selection::All)?.obsm(key)?;
        Mat::from_element(value)
            .map(Some)
            .ok_or_else(|| Error::invalid("not a matrix").in_file(file.path()))
    };
    // Each file's entry without rows: the result's width and dtype, as concat() finds them.
    let empties = files
        .iter()
        .map(|f| piece(f, &none))
        .collect::<Result<Vec<_>>>()?;
    let widths: Vec<Option<usize>> = empties
        .iter()
        .map(|m| m.as_ref().map(|m| m.len(1)))
        .collect();
    let (width, reindexers, fill) = aligned_columns(&widths, options);
    let pieces = empties.into_iter().zip(&reindexers).map(|(m, r)| (m, 0, r));
    let Mat::Dense(target) = stack_rows(pieces.collect(), fill)? else {
        return Err(Error::invalid("the concatenated entry is not dense"));
    };
    let dtype = target.dtype();
    let total = files.iter().map(BackedAnnData::n_obs).sum();
    let spec = MatrixSpec {
        kind: MatrixKind::Dense,
        shape: (total, width),
        dtype,
        values: Values::Exactly(0),
    };
    let mut sink = w.matrix("/obsm", key, &spec)?;
    // Blocks of the result's rows, whole chunks of it (across the files' boundaries), so
    // that the writer stores each as it comes.
    let rows_per = sink.aligned_rows(chunk_bytes / (width.max(1) * dtype.size().max(1)));
    let mut block = Vec::new();
    let mut held = 0;
    for (file, r) in files.iter().zip(&reindexers) {
        let n = file.n_obs();
        let mut start = 0;
        while start < n {
            let end = n.min(start + rows_per - held);
            block.push((piece(file, &Selection::from(start..end))?, end - start, r));
            held += end - start;
            start = end;
            if held == rows_per {
                push_block(&mut sink, std::mem::take(&mut block), fill, dtype)?;
                held = 0;
            }
        }
    }
    if held > 0 {
        push_block(&mut sink, block, fill, dtype)?;
    }
    sink.check_complete()?;
    sink.finish()
}

/// Pushes the rows of `pieces` (of one or more files), aligned and of the result's `dtype`.
fn push_block(
    sink: &mut MatrixSink<'_>,
    pieces: Vec<(Option<Mat>, usize, &Reindexer)>,
    fill: Option<FillValue>,
    dtype: DType,
) -> Result<()> {
    let Mat::Dense(a) = stack_rows(pieces, fill)? else {
        return Err(Error::invalid("a dense entry gave sparse rows"));
    };
    let a = if a.dtype() == dtype {
        a
    } else {
        values::cast(&a, dtype)?
    };
    sink.push(&Matrix::Dense(a))
}
