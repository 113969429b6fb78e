//! Blocks: contiguous ranges of major positions (rows of CSR and dense matrices, columns of
//! CSC ones), the unit that is read, decoded and cached.
//!
//! [`Blocking`] cuts the major axis into blocks of about a target size in bytes, aligned to the
//! storage chunks of the values where it can be, and finds a position's block in O(1) (dense,
//! uniform blocks) or O(log n) (sparse blocks, which follow the nonzeros).

use std::mem::size_of;
use std::ops::Range;
use std::sync::Arc;

use super::io::{read_reusing, RangeReader};
use super::io::{ChunkBytes, ChunkCache, DecodedChunk};
use crate::cache::{BlockKey, ByteSize, Cache, MatrixId, Retention};
use crate::data::{ArrayData, DType, Matrix, SparseFormat, SparseMatrix};
use crate::error::ResultExt;
use crate::{map_array, Error, Result};

/// The decoded contents of one block of a backed matrix.
///
/// Blocks are created by [`super::BackedMatrix`] and shared through its cache; they are
/// immutable.
#[derive(Clone, Debug)]
pub struct Block {
    major: Range<usize>,
    content: Content,
}

/// What a block holds.
#[derive(Clone, Debug)]
pub(crate) enum Content {
    /// The rows of a dense matrix: a 2-d array in standard layout.
    Dense(ArrayData),
    /// Major slices of a sparse matrix.
    Sparse(SparseBlock),
    /// One decoded storage chunk of a dataset, kept by a reader that decodes chunks itself
    /// (its `major` range is the chunk's index).
    Chunk(ChunkBytes),
}

/// Major slices `major` of a CSR or CSC matrix.
#[derive(Clone, Debug)]
pub(crate) struct SparseBlock {
    /// Local offsets (starting at 0) of each slice into `indices`/`data`: `major.len() + 1`.
    pub(crate) indptr: Vec<u64>,
    /// Minor index of each stored value, each below the minor dimension.
    pub(crate) indices: Vec<u32>,
    /// The stored values: 1-d, standard layout.
    pub(crate) data: ArrayData,
}

impl Block {
    /// The major positions (rows, or columns of a CSC matrix) the block holds.
    pub fn major_range(&self) -> Range<usize> {
        self.major.clone()
    }

    /// Number of stored values of a sparse block (`None` for other blocks).
    pub fn nnz(&self) -> Option<usize> {
        match &self.content {
            Content::Sparse(s) => Some(s.indices.len()),
            Content::Dense(_) | Content::Chunk(_) => None,
        }
    }

    /// Major positions `runs` (increasing, disjoint) of a sparse matrix, read run by run and
    /// held as one block over `runs[0].start..runs[last].end` in which the positions between
    /// runs are empty: what a few scattered rows of a large block need.
    pub(crate) fn load_sparse_runs(
        indptr: &[u64],
        runs: &[Range<usize>],
        indices: &dyn RangeReader,
        data: &dyn RangeReader,
        minor: usize,
    ) -> Result<Block> {
        let (Some(first), Some(last)) = (runs.first(), runs.last()) else {
            return Err(Error::invalid("no positions to read"));
        };
        let major = first.start..last.end;
        let mut local = Vec::with_capacity(major.len() + 1);
        local.push(0u64);
        let mut parts = Vec::with_capacity(runs.len());
        let mut indices_out: Vec<u32> = Vec::new();
        let mut at = major.start;
        for run in runs {
            let held = *local.last().unwrap_or(&0);
            local.extend(std::iter::repeat_n(held, run.start - at));
            let block =
                Block::load_sparse(indptr, run.clone(), indices, data, minor, Spare::default())?;
            let Content::Sparse(s) = block.content else {
                return Err(Error::malformed("a sparse read returned a dense block"));
            };
            local.extend(s.indptr[1..].iter().map(|&p| held + p));
            indices_out.extend(s.indices);
            parts.push(s.data);
            at = run.end;
        }
        let data = concat(data.dtype(), &parts)?;
        Ok(Block {
            major,
            content: Content::Sparse(SparseBlock {
                indptr: local,
                indices: indices_out,
                data,
            }),
        })
    }

    /// Rows `runs` (increasing, disjoint) of a dense matrix with `ncols` columns, held as one
    /// block over their span in which the rows between runs are zeros.
    pub(crate) fn load_dense_runs(
        values: &dyn RangeReader,
        runs: &[Range<usize>],
        ncols: usize,
    ) -> Result<Block> {
        let (Some(first), Some(last)) = (runs.first(), runs.last()) else {
            return Err(Error::invalid("no positions to read"));
        };
        let major = first.start..last.end;
        let dtype = values.dtype();
        let mut out = ArrayData::zeros(dtype, &[major.len(), ncols]);
        for run in runs {
            let Content::Dense(part) =
                Block::load_dense(values, run.clone(), ncols, Spare::default())?.content
            else {
                return Err(Error::malformed("a dense read returned a sparse block"));
            };
            let at = run.start - major.start;
            crate::data::with_value!(dtype, V => {
                use crate::data::Value;
                let src = V::slice(&part).ok_or_else(|| Error::malformed("unexpected dtype"))?;
                let dst = V::slice_mut(&mut out).ok_or_else(|| Error::malformed("unexpected dtype"))?;
                dst[at * ncols..at * ncols + src.len()].copy_from_slice(src);
                Ok::<(), Error>(())
            })?;
        }
        Ok(Block {
            major,
            content: Content::Dense(out),
        })
    }

    /// A decoded storage chunk `index` of a dataset.
    pub(crate) fn chunk(index: usize, bytes: ChunkBytes) -> Block {
        Block {
            major: index..index + 1,
            content: Content::Chunk(bytes),
        }
    }

    /// The bytes of a decoded storage chunk (`None` for blocks of a matrix).
    pub(crate) fn chunk_bytes(&self) -> Option<&[u8]> {
        match &self.content {
            Content::Chunk(b) => Some(b.as_slice()),
            _ => None,
        }
    }

    pub(crate) fn into_content(self) -> Content {
        self.content
    }

    pub(crate) fn content(&self) -> &Content {
        &self.content
    }

    /// The block as a matrix of `rows` rows and `cols` columns of `dtype`: a dense block as it
    /// is, a sparse one as CSR (blocks of rows only: its offsets are local and its indices
    /// were checked when it was read).
    pub(crate) fn into_matrix(self, rows: usize, cols: usize, dtype: DType) -> Result<Matrix> {
        if self.major.len() != rows {
            return Err(Error::malformed(format!(
                "a block of {} rows, expected {rows}",
                self.major.len()
            )));
        }
        match self.content {
            Content::Dense(a) => Ok(Matrix::Dense(a)),
            Content::Sparse(s) if s.data.dtype() == dtype => {
                Ok(Matrix::Sparse(SparseMatrix::from_checked_parts(
                    SparseFormat::Csr,
                    (rows, cols),
                    s.indptr,
                    s.indices,
                    s.data,
                )))
            }
            Content::Sparse(_) | Content::Chunk(_) => {
                Err(Error::malformed("a block does not hold rows of the matrix"))
            }
        }
    }

    /// Reads rows `rows` of a dense matrix with `ncols` columns, into `spare`'s memory where
    /// it fits.
    pub(crate) fn load_dense(
        values: &dyn RangeReader,
        rows: Range<usize>,
        ncols: usize,
        spare: Spare,
    ) -> Result<Block> {
        let a = read_reusing(values, rows.clone(), spare.values)?;
        check_read(&a, values.dtype(), &[rows.len(), ncols]).in_element(values.element())?;
        Ok(Block {
            major: rows,
            content: Content::Dense(standard(a)),
        })
    }

    /// Reads major slices `major` of a sparse matrix whose global offsets are `indptr` and
    /// whose minor dimension is `minor`, into `spare`'s memory where it fits.
    pub(crate) fn load_sparse(
        indptr: &[u64],
        major: Range<usize>,
        indices: &dyn RangeReader,
        data: &dyn RangeReader,
        minor: usize,
        spare: Spare,
    ) -> Result<Block> {
        let offset = |i: usize| {
            usize::try_from(indptr[i])
                .map_err(|_| Error::malformed(format!("indptr value {} too large", indptr[i])))
        };
        let entries = offset(major.start)?..offset(major.end)?;
        let Spare {
            indptr: mut local,
            indices: spare_indices,
            values: spare_values,
        } = spare;
        let values = read_reusing(data, entries.clone(), spare_values)?;
        check_read(&values, data.dtype(), &[entries.len()]).in_element(data.element())?;
        let reader = indices;
        let indices = reader.read_minor_indices(entries.clone(), spare_indices, minor)?;
        if indices.len() != entries.len() {
            return Err(Error::malformed(format!(
                "read returned {} indices, expected {}",
                indices.len(),
                entries.len()
            ))
            .in_element(reader.element()));
        }
        let base = indptr[major.start];
        local.clear();
        local.extend(indptr[major.start..=major.end].iter().map(|&p| p - base));
        Ok(Block {
            major,
            content: Content::Sparse(SparseBlock {
                indptr: local,
                indices,
                data: standard(values),
            }),
        })
    }
}

impl ByteSize for Block {
    fn byte_size(&self) -> usize {
        let payload = match &self.content {
            Content::Dense(a) => a.heap_bytes(),
            Content::Sparse(s) => {
                s.indptr.len() * size_of::<u64>()
                    + s.indices.len() * size_of::<u32>()
                    + s.data.heap_bytes()
            }
            Content::Chunk(b) => b.as_slice().len(),
        };
        size_of::<Block>() + payload
    }
}

/// 1-d arrays of `dtype` end to end.
fn concat(dtype: DType, parts: &[ArrayData]) -> Result<ArrayData> {
    crate::data::with_value!(dtype, V => {
        use crate::data::Value;
        let mut out: Vec<V> = Vec::with_capacity(parts.iter().map(ArrayData::len).sum());
        for p in parts {
            out.extend_from_slice(V::slice(p).ok_or_else(|| Error::malformed("unexpected dtype"))?);
        }
        let n = out.len();
        V::wrap(out, &[n])
    })
}

/// Fails unless a read returned `dtype` values of `shape`.
fn check_read(a: &ArrayData, dtype: DType, shape: &[usize]) -> Result<()> {
    if a.dtype() != dtype || a.shape() != shape {
        return Err(Error::malformed(format!(
            "read returned {} values of shape {:?}, expected {dtype} of shape {shape:?}",
            a.dtype(),
            a.shape()
        )));
    }
    Ok(())
}

/// The array in standard (row-major, contiguous) layout.
fn standard(a: ArrayData) -> ArrayData {
    map_array!(a, x => if x.is_standard_layout() {
        x
    } else {
        x.as_standard_layout().into_owned()
    })
}

/// How the major axis is cut into blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Blocking {
    /// Blocks of `per_block` positions (the last one may be shorter) over `len` positions.
    Uniform { len: usize, per_block: usize },
    /// Block `b` is `bounds[b]..bounds[b + 1]`; `bounds` starts at 0, ends at the axis length
    /// and increases strictly.
    Bounds(Vec<usize>),
}

impl Blocking {
    /// Blocks of whole rows of a dense matrix, about `target` bytes each, in multiples of the
    /// storage chunk's rows when a chunk is smaller than the target.
    pub(crate) fn dense(
        rows: usize,
        row_bytes: usize,
        target: usize,
        chunk_rows: Option<usize>,
    ) -> Self {
        let mut per_block = target.checked_div(row_bytes).unwrap_or(rows).max(1);
        if let Some(c) = chunk_rows.filter(|&c| c > 0 && c <= per_block) {
            per_block = per_block / c * c;
        }
        Blocking::Uniform {
            len: rows,
            per_block,
        }
    }

    /// Blocks of whole major slices of a sparse matrix with offsets `indptr` (non-decreasing,
    /// starting at 0), about `target` bytes each counting `entry_bytes` per stored value and 8
    /// per slice. When the values are stored in chunks of `chunk_len` entries (no more than a
    /// block holds), a block's values end at a chunk boundary or as close before one as slice
    /// boundaries allow, so a block reads whole chunks but for the one it shares with the next
    /// block.
    ///
    /// A slice larger than the target makes a block of its own.
    pub(crate) fn sparse(
        indptr: &[u64],
        entry_bytes: usize,
        target: usize,
        chunk_len: Option<usize>,
    ) -> Self {
        let n = indptr.len().saturating_sub(1);
        let target_nnz = (target / entry_bytes.max(1)).max(1) as u64;
        let chunk = chunk_len
            .map(|c| c as u64)
            .filter(|&c| c > 0 && c <= target_nnz);
        let max_slices = (target / size_of::<u64>()).max(1);
        let mut bounds = vec![0];
        let mut start = 0;
        while start < n {
            let offset = indptr[start];
            let mut limit = offset.saturating_add(target_nnz);
            if let Some(c) = chunk {
                let aligned = limit / c * c;
                if aligned > offset {
                    limit = aligned;
                }
            }
            let last = n.min(start.saturating_add(max_slices));
            let fitting = indptr[start + 1..=last].partition_point(|&p| p <= limit);
            let end = start + fitting.max(1);
            bounds.push(end);
            start = end;
        }
        Blocking::Bounds(bounds)
    }

    /// Number of blocks.
    pub(crate) fn len(&self) -> usize {
        match self {
            Blocking::Uniform { len, per_block } => len.div_ceil(*per_block),
            Blocking::Bounds(b) => b.len() - 1,
        }
    }

    /// The length of the axis.
    pub(crate) fn axis_len(&self) -> usize {
        match self {
            Blocking::Uniform { len, .. } => *len,
            Blocking::Bounds(b) => b.last().copied().unwrap_or(0),
        }
    }

    /// The block holding position `i` (which must be below the axis length).
    pub(crate) fn block_of(&self, i: usize) -> usize {
        match self {
            Blocking::Uniform { per_block, .. } => i / per_block,
            Blocking::Bounds(b) => b.partition_point(|&s| s <= i) - 1,
        }
    }

    /// The positions of block `b` (which must be below [`Blocking::len`]).
    pub(crate) fn range(&self, b: usize) -> Range<usize> {
        match self {
            Blocking::Uniform { len, per_block } => b * per_block..((b + 1) * per_block).min(*len),
            Blocking::Bounds(bounds) => bounds[b]..bounds[b + 1],
        }
    }

    /// Heap memory of the description.
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            Blocking::Uniform { .. } => 0,
            Blocking::Bounds(b) => b.capacity() * size_of::<usize>(),
        }
    }
}

/// The cache of decoded blocks (and of the storage chunks the readers keep) that backed
/// matrices share.
pub type BlockCache = Cache<Block>;

impl DecodedChunk for Block {
    fn bytes(&self) -> &[u8] {
        self.chunk_bytes().unwrap_or_default()
    }
}

/// Readers keep their decoded chunks in the block cache, as blocks of their own.
impl ChunkCache for BlockCache {
    fn cached_chunk(&self, key: BlockKey) -> Option<Arc<dyn DecodedChunk>> {
        if !self.contains(key) {
            return None;
        }
        self.get(key).map(|b| b as Arc<dyn DecodedChunk>)
    }

    fn chunk_or_load(
        &self,
        key: BlockKey,
        load: &mut dyn FnMut() -> Result<ChunkBytes>,
    ) -> Result<Arc<dyn DecodedChunk>> {
        let block = self.get_or_load_with(key, Retention::Keep, || {
            load().map(|bytes| Block::chunk(key.block(), bytes))
        })?;
        Ok(block)
    }

    fn forget(&self, id: MatrixId) {
        self.remove_matrix(id);
    }
}

/// The buffers of a block or matrix read earlier that its owner is done with, for a load of
/// about the same size to fill again (see [`super::Chunks::recycle`]): refilling them skips
/// the allocation and the kernel's zeroing of fresh pages. Empty by default.
#[derive(Debug, Default)]
pub(crate) struct Spare {
    pub(crate) indptr: Vec<u64>,
    pub(crate) indices: Option<Vec<u32>>,
    pub(crate) values: Option<ArrayData>,
}

impl Spare {
    /// The buffers of `m`.
    pub(crate) fn from_matrix(m: Matrix) -> Spare {
        match m {
            Matrix::Dense(values) => Spare {
                values: Some(values),
                ..Spare::default()
            },
            Matrix::Sparse(s) => {
                let (_, _, indptr, indices, data) = s.into_parts();
                Spare {
                    indptr,
                    indices: Some(indices),
                    values: Some(data),
                }
            }
        }
    }
}

/// The spare buffers of one request or iteration, shared with the workers that load its next
/// blocks. Holds at most [`Spares::MAX`]: in a steady scan each block taken starts one load,
/// which takes the spare given back just before.
#[derive(Debug, Default)]
pub(crate) struct Spares {
    held: parking_lot::Mutex<Vec<Spare>>,
}

impl Spares {
    const MAX: usize = 2;

    /// Keeps the buffers of `block` if this is its last holder (a block in the cache is
    /// held there too, and stays).
    pub(crate) fn recycle(&self, block: Arc<Block>) {
        if let Ok(block) = Arc::try_unwrap(block) {
            let spare = match block.into_content() {
                Content::Dense(values) => Spare {
                    values: Some(values),
                    ..Spare::default()
                },
                Content::Sparse(s) => Spare {
                    indptr: s.indptr,
                    indices: Some(s.indices),
                    values: Some(s.data),
                },
                Content::Chunk(_) => return,
            };
            self.put(spare);
        }
    }

    /// Keeps `spare` for a later load (drops it when enough are held).
    pub(crate) fn put(&self, spare: Spare) {
        let mut held = self.held.lock();
        if held.len() < Self::MAX {
            held.push(spare);
        }
    }

    /// A spare, or else empty buffers of a matrix of `dtype` (with nothing to reuse, the
    /// load allocates with room to spare, so that its buffers fit the next loads).
    pub(crate) fn take(&self, dtype: DType) -> Spare {
        self.held.lock().pop().unwrap_or_else(|| Spare {
            indptr: Vec::new(),
            indices: Some(Vec::new()),
            values: Some(ArrayData::zeros(dtype, &[0])),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paged::InMemoryReader;

    fn ranges(b: &Blocking) -> Vec<Range<usize>> {
        (0..b.len()).map(|i| b.range(i)).collect()
    }

    #[test]
    fn budget_gives_clamped_block_sizes() {
        use crate::paged::MemoryPolicy;
        let block = |budget| MemoryPolicy::new(budget).block_bytes();
        assert_eq!(block(0), 64 << 10);
        assert_eq!(block(32 << 20), 1 << 20);
        assert_eq!(block(usize::MAX), 64 << 20);
    }

    #[test]
    fn dense_blocks_are_uniform_and_chunk_aligned() {
        // 10 rows of 8 bytes, 24 bytes per block: 3 rows each.
        let b = Blocking::dense(10, 8, 24, None);
        assert_eq!(ranges(&b), [0..3, 3..6, 6..9, 9..10]);
        assert_eq!((b.block_of(0), b.block_of(5), b.block_of(9)), (0, 1, 3));
        // Chunks of 2 rows: blocks of 2 rows (3 rounded down to a multiple of 2).
        let b = Blocking::dense(10, 8, 24, Some(2));
        assert_eq!(b.len(), 5);
        // A chunk larger than a block is ignored; rows larger than a block get a block each.
        assert_eq!(Blocking::dense(10, 8, 24, Some(7)).len(), 4);
        assert_eq!(Blocking::dense(10, 100, 24, None).len(), 10);
        assert_eq!(Blocking::dense(0, 8, 24, None).len(), 0);
        assert_eq!(Blocking::dense(5, 0, 24, None).range(0), 0..5);
        assert_eq!(Blocking::dense(5, 0, 24, None).len(), 1);
    }

    #[test]
    fn sparse_blocks_follow_the_nonzeros() {
        // Slices of 0, 5, 1, 1, 10, 0, 2 values; 8 bytes per value, 48-byte target: 6 values
        // and 6 slices at most per block.
        let indptr = [0, 0, 5, 6, 7, 17, 17, 19];
        let b = Blocking::sparse(&indptr, 8, 48, None);
        assert_eq!(ranges(&b), [0..3, 3..4, 4..5, 5..7]);
        for (i, expected) in [0, 0, 0, 1, 2, 3, 3].into_iter().enumerate() {
            assert_eq!(b.block_of(i), expected, "slice {i}");
        }
        // Chunks of 4 values: blocks end at or before offsets 4, 8, 12, ... when they can.
        let b = Blocking::sparse(&indptr, 8, 48, Some(4));
        assert_eq!(ranges(&b), [0..1, 1..2, 2..4, 4..5, 5..7]);
        assert_eq!(Blocking::sparse(&[0], 8, 48, None).len(), 0);
        // Empty slices are capped by their indptr cost: 48 / 8 = 6 per block.
        let empty = [0u64; 14];
        assert_eq!(
            ranges(&Blocking::sparse(&empty, 8, 48, None)),
            [0..6, 6..12, 12..13]
        );
    }

    #[test]
    fn sparse_blocks_load_and_check_their_indices() {
        let indptr = [0u64, 2, 3];
        let indices = InMemoryReader::new("/X/indices", ArrayData::from(vec![1i64, 0, 2])).unwrap();
        let data = InMemoryReader::new("/X/data", ArrayData::from(vec![1.5f32, 2.5, 3.5])).unwrap();
        let block =
            Block::load_sparse(&indptr, 1..2, &indices, &data, 3, Spare::default()).unwrap();
        assert_eq!((block.major_range(), block.nnz()), (1..2, Some(1)));
        let Content::Sparse(s) = block.content() else {
            panic!("sparse block expected")
        };
        assert_eq!(s.indptr, [0, 1]);
        assert_eq!(s.indices, [2]);
        assert_eq!(s.data, ArrayData::from(vec![3.5f32]));
        assert_eq!(block.byte_size(), size_of::<Block>() + 16 + 4 + 4);

        let e =
            Block::load_sparse(&indptr, 0..2, &indices, &data, 2, Spare::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/X/indices: malformed element: index 2 out of bounds for minor dimension 2"
        );
        let negative =
            InMemoryReader::new("/X/indices", ArrayData::from(vec![-1i32, 0, 2])).unwrap();
        assert!(Block::load_sparse(&indptr, 0..1, &negative, &data, 3, Spare::default()).is_err());
        let floats = InMemoryReader::new("/X/indices", ArrayData::from(vec![0.0f32; 3])).unwrap();
        assert!(Block::load_sparse(&indptr, 0..1, &floats, &data, 3, Spare::default()).is_err());
    }

    #[test]
    fn dense_blocks_check_the_read_shape() {
        let values =
            InMemoryReader::new("/X", ArrayData::from(ndarray::arr2(&[[1u8, 2], [3, 4]]))).unwrap();
        let block = Block::load_dense(&values, 1..2, 2, Spare::default()).unwrap();
        assert_eq!(block.byte_size(), size_of::<Block>() + 2);
        assert!(Block::load_dense(&values, 1..2, 3, Spare::default()).is_err());
        // Strings are charged what they hold: inline ones their 24 bytes, long ones their text.
        let long = "x".repeat(1000);
        let words = ArrayData::from(
            ndarray::arr2(&[["a", "b"], [long.as_str(), "c"]])
                .mapv(String::from)
                .into_dyn(),
        );
        let words = InMemoryReader::new("/layers/words", words).unwrap();
        let block = Block::load_dense(&words, 1..2, 2, Spare::default()).unwrap();
        assert!(block.byte_size() >= size_of::<Block>() + 2 * 24 + 1000);
    }
}
