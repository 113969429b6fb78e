//! How a concatenation cuts its inputs' rows into chunks: from each row's stored values (an
//! average row hides the skew of real data), a CSC input in runs of rows as long as fit.

use std::ops::Range;

use annpage_engine::data::SparseFormat;
use annpage_engine::paged::{MatrixKind, MemoryPolicy};
use annpage_engine::Result;

use super::ondisk::MAX_CHUNK_ROWS;
use crate::backed::slices;
use crate::BackedMatrixView;

/// How an input's rows are read, a chunk at a time.
pub(super) enum RowChunks {
    /// Chunks of this many rows, by a scan.
    Scan(usize),
    /// These runs of rows, each read alone (a CSC matrix: each visits all its columns, so
    /// runs are as long as fit).
    Runs(Vec<Range<usize>>),
}

/// How `piece`'s rows are read, by `policy`: no chunk holds more than its bytes (see
/// [`row_costs`]; a missing piece's rows are `cols` wide).
pub(super) fn chunk_rows(
    piece: Option<&BackedMatrixView>,
    n_obs: usize,
    cols: usize,
    policy: MemoryPolicy,
) -> Result<RowChunks> {
    let bytes = policy.concat_chunk_bytes();
    let Some(m) = piece else {
        return Ok(RowChunks::Scan(
            (bytes / (cols.max(1) * 8)).clamp(1, MAX_CHUNK_ROWS),
        ));
    };
    if is_csc(m) && m.backed_matrix()?.is_some() {
        let bytes = policy.concat_csc_chunk_bytes() as u64;
        return Ok(RowChunks::Runs(slices::groups(
            &row_costs(m, bytes)?,
            bytes,
        )));
    }
    let costs = row_costs(m, bytes as u64)?;
    debug_assert_eq!(costs.len(), n_obs);
    let per = slices::uniform_chunk(&costs, bytes as u64);
    Ok(RowChunks::Scan(per.min(MAX_CHUNK_ROWS)))
}

/// The bytes each row of `m` holds read: its stored values (see [`row_counts`]) with their
/// indices, or its entries.
pub(super) fn row_costs(m: &BackedMatrixView, bytes: u64) -> Result<Vec<u64>> {
    let per_value = m.dtype().size() as u64 + 4;
    let counts = row_counts(m, bytes)?;
    Ok(counts.into_iter().map(|n| n * per_value + 8).collect())
}

/// The values each row of `m` stores (counted in a pass over a CSC matrix, pieces of about
/// `bytes`), or its entries; a matrix in memory's average row.
pub(super) fn row_counts(m: &BackedMatrixView, bytes: u64) -> Result<Vec<u64>> {
    Ok(match m.backed_matrix()? {
        Some(b) => slices::values_per(&b, (m.row_index(), m.col_index()), true, bytes)?,
        None => {
            let (rows, _) = m.shape();
            vec![m.stored_values()? / rows.max(1) as u64 + 1; rows]
        }
    })
}

/// Whether `m` is stored CSC: its rows are spread over all its columns.
pub(super) fn is_csc(m: &BackedMatrixView) -> bool {
    m.kind() == MatrixKind::Sparse(SparseFormat::Csc)
}
