//! A loom file's matrices written as CSR one block of cells at a time: the streaming half of
//! [`read_loom`](super::read_loom), whose memory holds one block whatever the file's size.

use std::ops::Range;
use std::path::Path;

use hdf5::{Dataset, Hyperslab, SliceOrIndex};

use super::{LoomOptions, Plan, Target};
use crate::data::{ArrayData, DType};
use crate::error::{Error, Result, ResultExt};
use crate::format::write::CsrAppender;
use crate::format::WriteOptions;
use crate::storage::{h5, GroupWriter};

/// Values read at a time: a block of cells of every gene (16 MiB as float64).
const BLOCK_VALUES: usize = 1 << 21;

/// Writes a loom file's matrices as `anndata.io.read_loom(path)` (`sparse=True`) makes them,
/// reading one block of cells of every gene at a time: X (float32 CSR, zeros left out) as
/// `root`'s `X`, the layers (float64 CSR) into `root`'s `layers` group, which must exist (see
/// [`read_loom_annotations`](super::read_loom_annotations) for the rest). Index arrays are
/// int64 when the matrix has more entries than int32 counts, whatever it stores.
///
/// Refused for `options.sparse == false` (dense matrices are read whole by
/// [`read_loom`](super::read_loom)) and for a file with more genes than one block holds.
///
/// ```no_run
/// use annpage_engine::file::stream::write_file;
/// use annpage_engine::format::loom::{read_loom_annotations, write_matrices, LoomOptions};
/// use annpage_engine::format::WriteOptions;
/// let (path, options) = ("cells.loom".as_ref(), LoomOptions::default());
/// let rest = read_loom_annotations(path, &options)?;
/// write_file("cells.h5ad".as_ref(), &WriteOptions::default(), 1, |w| {
///     w.write_all(&rest)?;
///     write_matrices(path, &options, w.root(), w.options())
/// })?;
/// # Ok::<(), annpage_engine::Error>(())
/// ```
pub fn write_matrices(
    path: &Path,
    options: &LoomOptions,
    root: &dyn GroupWriter,
    write: &WriteOptions,
) -> Result<()> {
    if !options.sparse {
        return Err(Error::invalid(
            "dense loom matrices are read whole, not streamed",
        ));
    }
    let file = h5::open_read(path).in_file(path)?;
    let plan = Plan::of(&file, options).in_file(path)?;
    if plan.n_genes > BLOCK_VALUES {
        let e = Error::unsupported(format!(
            "{} genes: more than one block of {BLOCK_VALUES} values holds",
            plan.n_genes
        ));
        return Err(e.in_element("/matrix").in_file(path));
    }
    for (target, dataset) in &plan.matrices {
        let source = || format!("/{dataset}");
        let ds = h5::open_dataset(&file, dataset)
            .in_element(source())
            .in_file(path)?;
        let mut read = |cells: Range<usize>| {
            read_cells(&ds, plan.n_genes, cells)
                .in_element(source())
                .in_file(path)
        };
        let shape = (plan.n_cells, plan.n_genes);
        match target {
            Target::X => stream(
                root,
                "X",
                DType::F32,
                shape,
                block_cells(&ds, plan.n_genes),
                write,
                &mut read,
            )?,
            Target::Layer(name) => {
                let layers = root.open_group("layers")?;
                let cells = block_cells(&ds, plan.n_genes);
                stream(
                    layers.as_ref(),
                    name,
                    DType::F64,
                    shape,
                    cells,
                    write,
                    &mut read,
                )?
            }
        }
    }
    Ok(())
}

/// Writes the cells × genes CSR `name` of `dtype` from the genes × cells blocks `read` gives,
/// `cells` at a time.
fn stream(
    parent: &dyn GroupWriter,
    name: &str,
    dtype: DType,
    (n_cells, n_genes): (usize, usize),
    cells: usize,
    write: &WriteOptions,
    read: &mut dyn FnMut(Range<usize>) -> Result<Vec<f64>>,
) -> Result<()> {
    let max_values = n_cells.saturating_mul(n_genes);
    let mut csr = CsrAppender::create(parent, name, (n_cells, n_genes), dtype, max_values, write)?;
    let mut start = 0;
    while start < n_cells {
        let end = n_cells.min(start + cells);
        let block = read(start..end)?;
        let (values, indices, ends) = transposed_csr(&block, n_genes, end - start);
        csr.push(&values_of(values, dtype), &indices, &ends)?;
        start = end;
    }
    Ok(())
}

/// A matrix's values as `dtype`: float32 for X (anndata's `astype`), float64 for layers.
pub(super) fn values_of(values: Vec<f64>, dtype: DType) -> ArrayData {
    match dtype {
        DType::F32 => ArrayData::from(values.into_iter().map(|v| v as f32).collect::<Vec<_>>()),
        _ => ArrayData::from(values),
    }
}

/// How many cells a block holds: as many as fit [`BLOCK_VALUES`] with every gene, rounded down
/// to whole chunks of the dataset when a chunk is narrower (each chunk is then read once).
fn block_cells(ds: &Dataset, n_genes: usize) -> usize {
    let cells = (BLOCK_VALUES / n_genes.max(1)).max(1);
    match ds.chunk().as_deref() {
        Some(&[_, width]) if width > 0 && width <= cells => cells / width * width,
        _ => cells,
    }
}

/// The genes × cells block of every gene and the cells `cells`, as float64 in row-major order
/// (HDF5 converts the stored numbers).
fn read_cells(ds: &Dataset, n_genes: usize, cells: Range<usize>) -> Result<Vec<f64>> {
    if n_genes == 0 || cells.is_empty() {
        return Ok(Vec::new()); // HDF5 refuses empty selections.
    }
    let slice = |start, end| SliceOrIndex::SliceTo {
        start,
        step: 1,
        end,
        block: 1,
    };
    let slab = Hyperslab::from(vec![slice(0, n_genes), slice(cells.start, cells.end)]);
    let block = ds.as_reader().read_slice_2d::<f64, _>(slab)?;
    // hdf5-metno's arrays are of its own ndarray version: take the values in order.
    Ok(if block.is_standard_layout() {
        block.into_raw_vec_and_offset().0
    } else {
        block.iter().copied().collect()
    })
}

/// The CSR rows (one per cell) of a genes × cells row-major block: the non-zero values, their
/// gene indices and where each cell's row ends.
pub(super) fn transposed_csr(
    block: &[f64],
    n_genes: usize,
    n_cells: usize,
) -> (Vec<f64>, Vec<u32>, Vec<u64>) {
    let (mut values, mut indices) = (Vec::new(), Vec::new());
    let mut ends = Vec::with_capacity(n_cells);
    for c in 0..n_cells {
        for g in 0..n_genes {
            let v = block[g * n_cells + c];
            if v != 0.0 {
                values.push(v);
                // Below n_genes, itself at most BLOCK_VALUES (checked): fits u32.
                indices.push(g as u32);
            }
        }
        ends.push(indices.len() as u64);
    }
    (values, indices, ends)
}

#[cfg(test)]
mod tests {
    use super::transposed_csr;

    #[test]
    fn blocks_become_the_rows_of_their_cells() {
        // 3 genes × 2 cells: cell 0 = [1, 0, 2], cell 1 = [0, 0, 3].
        let block = [1.0, 0.0, 0.0, 0.0, 2.0, 3.0];
        let (values, indices, ends) = transposed_csr(&block, 3, 2);
        assert_eq!(values, [1.0, 2.0, 3.0]);
        assert_eq!(indices, [0, 2, 2]);
        assert_eq!(ends, [2, 3]);
    }
}
