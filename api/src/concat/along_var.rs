//! [`concat_on_disk`](super::concat_on_disk) along var: the files' genes side by side, each
//! matrix written a block of the result's cells at a time.
//!
//! The annotations are concatenated by [`concat()`](super::concat) itself, as along obs. A
//! block of the result's cells takes, from each input, the rows its cells come from (the
//! join of the obs names decides which, and in which order), read through the shared block
//! cache; the pieces are put side by side by the same code as in memory
//! ([`matrix::stack_axis`] on the block alone: cells are aligned independently, so blocks
//! give the rows of the whole) and given the dtype the whole result has (found beforehand
//! from a probe with no genes of every input).
//!
//! A CSC input's rows are read through the cache as along obs (each block reads the column
//! blocks holding them).

use std::path::Path;

use annpage_engine::data::{ArrayData, Matrix, SparseMatrix};
use annpage_engine::error::ResultExt;
use annpage_engine::file::stream::{write_file, Writer};
use annpage_engine::paged::{MatrixKind, MemoryPolicy};
use annpage_engine::Result;

use super::chunking::{is_csc, row_costs, row_counts};
use super::conform::{filled_values, write_stream, Conform};
use super::matrix::{self, Mat};
use super::ondisk::{
    all_cores, check_x, layer_keys, light, open_inputs, raw_meta, write_root, Matrices, Streamed,
    MAX_CHUNK_ROWS,
};
use super::plan::Reindexer;
use super::progress::{ConcatProgress, Tracker};
use super::{concat_noting_strings, ConcatOptions, FillValue};
use crate::backed::{slices, BackedOptions};
use crate::{Axis, BackedAnnData, BackedMatrixView, Selection};

/// [`concat_on_disk`](super::concat_on_disk) with `options.axis` `Axis::Var`.
pub(super) fn concat_on_disk(
    inputs: &[impl AsRef<Path>],
    output: &Path,
    options: &ConcatOptions,
    (write, backed): (&annpage_engine::format::WriteOptions, &BackedOptions),
    observe: &(dyn Fn(ConcatProgress) + Sync),
) -> Result<()> {
    let (cache, handles) = open_inputs(inputs, backed)?;
    let plan = Plan::new(&handles, options, MemoryPolicy::new(cache.budget()))?;
    write_file(output, write, all_cores(), |w| {
        plan.write(&handles, w, observe)
    })
}

/// Everything decided before the matrices are streamed.
struct Plan<'o> {
    options: &'o ConcatOptions,
    /// The concatenation of everything but the matrices.
    meta: annpage_engine::format::AnnDataElements,
    /// raw.var and raw.varm concatenated (raw's cells are the inputs' own).
    raw: Option<annpage_engine::format::AnnDataElements>,
    /// Each input's cells → the result's.
    reindexers: Vec<Reindexer>,
    layers: Vec<String>,
    /// The budget's shares blocks take.
    policy: MemoryPolicy,
}

impl<'o> Plan<'o> {
    fn new(
        handles: &[BackedAnnData],
        options: &'o ConcatOptions,
        policy: MemoryPolicy,
    ) -> Result<Self> {
        let lights = handles
            .iter()
            .map(|h| light(h, options, &[]))
            .collect::<Result<Vec<_>>>()?;
        let label = super::files_label(handles.iter().map(BackedAnnData::path));
        // The cells aligned once, by the annotations' concatenation: its maps stream X.
        let concatenated = concat_noting_strings(&lights, options).in_file(label)?;
        drop(lights);
        let (meta, reindexers) = (concatenated.adata, concatenated.reindexers);
        Ok(Plan {
            options,
            meta: meta.into_elements(),
            raw: raw_meta(handles, options)?.map(|(raw, _)| raw),
            reindexers,
            layers: layer_keys(handles, options.join),
            policy,
        })
    }

    /// Writes the members of the root group, telling `observe` how far it has got.
    fn write(
        &self,
        handles: &[BackedAnnData],
        w: &Writer<'_>,
        observe: &(dyn Fn(ConcatProgress) + Sync),
    ) -> Result<()> {
        let with_x = check_x(handles, self.options.join);
        let streamed = (with_x, &self.layers[..], self.raw.is_some());
        // Only the rows of the cells the join keeps are read.
        let bytes = self.policy.concat_csc_chunk_bytes() as u64;
        let kept = |i: usize, m: &BackedMatrixView| -> Result<u64> {
            let counts = row_counts(m, bytes)?;
            Ok(self.reindexers[i].sources().map(|old| counts[old]).sum())
        };
        let tracker = Tracker::new(handles, streamed, &kept, observe)?;
        let matrices = Matrices {
            layers: &self.layers,
            obsm: &[],
        };
        write_root(
            w,
            &self.meta,
            with_x,
            self.raw.as_ref(),
            matrices,
            &mut |g, m| {
                let (pieces, widths, fill): (Vec<_>, Vec<_>, _) = match m {
                    Streamed::X => (
                        handles.iter().map(BackedAnnData::x).collect(),
                        handles.iter().map(BackedAnnData::n_vars).collect(),
                        self.options.fill_value,
                    ),
                    Streamed::RawX => (
                        handles.iter().map(BackedAnnData::raw_x).collect(),
                        handles
                            .iter()
                            .map(|h| h.raw_x().map_or(0, |m| m.shape().1))
                            .collect(),
                        self.options.fill_value,
                    ),
                    Streamed::Layer(key) => (
                        handles.iter().map(|h| h.layer(key).ok()).collect(),
                        handles.iter().map(BackedAnnData::n_vars).collect(),
                        self.options.layer_fill(),
                    ),
                    Streamed::Obsm(_) => unreachable!("no obsm entry is streamed along var"),
                };
                let columns = Columns {
                    pieces: &pieces,
                    widths: &widths,
                    reindexers: &self.reindexers,
                    fill,
                    tracker: &tracker,
                };
                columns.stream(w, (g, m.name()), self.policy)
            },
        )?;
        tracker.finish();
        Ok(())
    }
}

/// One matrix of the result: `pieces[i]` is input `i`'s (`None` when it lacks it),
/// `widths[i]` its number of genes, `reindexers[i]` where its cells go; `tracker` counts
/// what is read.
struct Columns<'a> {
    pieces: &'a [Option<BackedMatrixView>],
    widths: &'a [usize],
    reindexers: &'a [Reindexer],
    fill: Option<FillValue>,
    tracker: &'a Tracker<'a>,
}

impl Columns<'_> {
    /// Writes the matrix as `into.1` in group `into.0`, a block of cells at a time.
    fn stream(&self, w: &Writer<'_>, into: (&str, &str), policy: MemoryPolicy) -> Result<()> {
        let conform = self.conform()?;
        let rows = self.reindexers.first().map_or(0, Reindexer::new_len);
        let cols: usize = self.widths.iter().sum();
        let present = self.pieces.iter().map(Option::is_some);
        let inputs = present
            .zip(self.widths.iter().copied())
            .zip(self.reindexers);
        let mut bound = filled_values(&conform, inputs);
        // Every block reads all the column blocks of a CSC input's rows: the fewer the better.
        let (bytes, most) = if self.pieces.iter().flatten().any(is_csc) {
            (policy.concat_csc_chunk_bytes(), usize::MAX)
        } else {
            (policy.concat_chunk_bytes(), MAX_CHUNK_ROWS)
        };
        // What each of the result's cells holds: its row of every input.
        let mut costs = vec![8u64; rows];
        let inputs = self.pieces.iter().zip(self.widths).zip(self.reindexers);
        for ((piece, &width), r) in inputs {
            match piece {
                Some(m) => {
                    bound += m.stored_values()?;
                    let of_rows = row_costs(m, bytes as u64)?;
                    for (new, cost) in costs.iter_mut().enumerate() {
                        *cost += r.source(new).map_or(0, |old| of_rows[old]);
                    }
                }
                None => costs.iter_mut().for_each(|c| *c += width as u64 * 8),
            }
        }
        let blocks = slices::groups(&costs, bytes as u64);
        write_stream(w, into, &conform, (rows, cols), bound, |push| {
            for block in blocks {
                for start in block.clone().step_by(most) {
                    let cells = start..start.saturating_add(most).min(block.end);
                    push(&conform.cast(self.block(cells)?)?)?;
                }
            }
            Ok(())
        })
    }

    /// The result's kind and dtype: what aligning every input without its genes gives (the
    /// fills and promotions of the whole, none of its values).
    fn conform(&self) -> Result<Conform> {
        let probe = self
            .pieces
            .iter()
            .zip(self.reindexers)
            .map(|(piece, r)| {
                let empty = piece.as_ref().map(|m| {
                    let rows = m.shape().0;
                    match m.kind() {
                        MatrixKind::Dense => Mat::Dense(ArrayData::zeros(m.dtype(), &[rows, 0])),
                        MatrixKind::Sparse(f) => {
                            Mat::Sparse(SparseMatrix::empty(f, (rows, 0), m.dtype()))
                        }
                    }
                });
                (empty, 0, r)
            })
            .collect();
        let probe = matrix::stack_axis(probe, self.fill, Axis::Var)?;
        Ok(Conform::of(&probe, self.fill))
    }

    /// The result's cells `cells`, every gene: each input's rows for them, side by side.
    fn block(&self, cells: std::ops::Range<usize>) -> Result<Matrix> {
        let mut read = Vec::with_capacity(self.pieces.len());
        let mut aligns = Vec::with_capacity(self.pieces.len());
        for (piece, r) in self.pieces.iter().zip(self.reindexers) {
            let wanted: Vec<Option<usize>> = cells.clone().map(|k| r.source(k)).collect();
            let rows: Vec<usize> = wanted.iter().flatten().copied().collect();
            let mut next = 0;
            let map = wanted
                .iter()
                .map(|o| {
                    o.map(|_| {
                        next += 1;
                        next - 1
                    })
                })
                .collect();
            aligns.push(Reindexer::positions(rows.len(), map));
            read.push(match piece {
                Some(m) => {
                    let values = m.rows(&Selection::positions(rows.iter().copied()))?;
                    self.tracker.read(&values);
                    Some(Mat::from_matrix(values))
                }
                None => None,
            });
        }
        let pieces = read
            .into_iter()
            .zip(self.widths)
            .zip(&aligns)
            .map(|((m, &width), r)| (m, width, r))
            .collect();
        matrix::stack_axis(pieces, self.fill, Axis::Var)
    }
}
