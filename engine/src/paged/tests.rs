//! Backed reads compared with the same subsets computed in memory, from HDF5 files written here
//! with `hdf5-metno`, from files written by h5py/scipy/anndata, and from in-memory readers.

use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hdf5::types::VarLenUnicode;
use proptest::prelude::*;

use super::*;
use crate::data::{ArrayData, DType, Matrix, SparseFormat, SparseMatrix};
use crate::select::{AxisIndex, Selection};
use crate::{map_array, Error};

// ---------------------------------------------------------------------------------------------
// Test matrices
// ---------------------------------------------------------------------------------------------

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Small integers as values of `dtype` (bools are odd numbers).
fn typed(values: &[i64], dtype: DType) -> ArrayData {
    match dtype {
        DType::Bool => values.iter().map(|v| v % 2 != 0).collect::<Vec<_>>().into(),
        DType::I8 => values.iter().map(|&v| v as i8).collect::<Vec<_>>().into(),
        DType::I16 => values.iter().map(|&v| v as i16).collect::<Vec<_>>().into(),
        DType::I32 => values.iter().map(|&v| v as i32).collect::<Vec<_>>().into(),
        DType::I64 => values.to_vec().into(),
        DType::U8 => values.iter().map(|&v| v as u8).collect::<Vec<_>>().into(),
        DType::U16 => values.iter().map(|&v| v as u16).collect::<Vec<_>>().into(),
        DType::U32 => values.iter().map(|&v| v as u32).collect::<Vec<_>>().into(),
        DType::U64 => values.iter().map(|&v| v as u64).collect::<Vec<_>>().into(),
        DType::F32 => values
            .iter()
            .map(|&v| v as f32 * 0.5)
            .collect::<Vec<_>>()
            .into(),
        DType::F64 => values
            .iter()
            .map(|&v| v as f64 * 0.25)
            .collect::<Vec<_>>()
            .into(),
        DType::String => values
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .into(),
    }
}

/// How a test matrix is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    Csr,
    Csc,
    Dense,
}

const LAYOUTS: [Layout; 3] = [Layout::Csr, Layout::Csc, Layout::Dense];

/// A random matrix of `shape` with about `density` (in 1/100) stored values, some of them
/// explicit zeros, with indices shuffled within each major slice.
fn random_matrix(
    rng: &mut Rng,
    layout: Layout,
    shape: (usize, usize),
    density: usize,
    dtype: DType,
) -> Matrix {
    let (rows, cols) = shape;
    if layout == Layout::Dense {
        let values: Vec<i64> = (0..rows * cols)
            .map(|_| rng.below(200) as i64 - 50)
            .collect();
        let flat = typed(&values, dtype);
        return Matrix::Dense(map_array!(flat, v => v
            .into_shape_with_order(ndarray::IxDyn(&[rows, cols]))
            .unwrap()));
    }
    let (format, major, minor) = match layout {
        Layout::Csr => (SparseFormat::Csr, rows, cols),
        _ => (SparseFormat::Csc, cols, rows),
    };
    let mut indptr = vec![0u64];
    let mut indices = Vec::new();
    let mut values = Vec::new();
    for _ in 0..major {
        let mut slice: Vec<u32> = (0..minor as u32)
            .filter(|_| rng.below(100) < density)
            .collect();
        // Unsorted indices, as a reader must accept.
        for i in (1..slice.len()).rev() {
            slice.swap(i, rng.below(i + 1));
        }
        for _ in &slice {
            // Explicit zeros now and then.
            values.push(if rng.below(10) == 0 {
                0
            } else {
                rng.below(120) as i64 + 1
            });
        }
        indices.extend(slice);
        indptr.push(indices.len() as u64);
    }
    Matrix::Sparse(
        SparseMatrix::new(format, shape, indptr, indices, typed(&values, dtype)).unwrap(),
    )
}

/// A battery of selections of an axis of `n`: all, a range, strides both ways, unsorted and
/// repeated positions, a single position, nothing, and a mask.
fn selections(n: usize, rng: &mut Rng) -> Vec<AxisIndex> {
    let n_i = n as isize;
    let mut out = vec![
        Selection::All,
        Selection::slice(Some(n_i / 3), Some(n_i - n_i / 4), 1),
        Selection::slice(Some(1), None, 3),
        Selection::slice(None, None, -2),
        Selection::positions([]),
        Selection::Mask((0..n).map(|_| rng.below(3) == 0).collect()),
    ];
    if n > 0 {
        out.push(Selection::positions([rng.below(n)]));
        let k = n + 3;
        out.push(Selection::positions((0..k).map(|_| rng.below(n))));
        // Runs in reverse order of runs.
        let mut runs = Vec::new();
        let mut start = n;
        while start > 0 {
            let len = 1 + rng.below(4).min(start - 1);
            runs.extend(start - len..start);
            start -= len;
        }
        out.push(Selection::positions(runs));
    }
    out.into_iter()
        .map(|s| s.resolve(n, None).unwrap())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Writing HDF5 files with hdf5-metno
// ---------------------------------------------------------------------------------------------

/// How a test dataset is stored.
#[derive(Clone, Copy, Debug)]
enum Storage {
    Contiguous,
    /// Chunks of this many rows (elements of 1-d datasets).
    Chunked(usize),
    /// Chunked and deflated.
    Gzip(usize),
    /// Chunked, shuffled and deflated.
    ShuffleGzip(usize),
    /// Chunked and LZF-compressed.
    Lzf(usize),
    /// Chunks of this many rows and columns (2-d datasets; 1-d ones are chunked by rows),
    /// with a Fletcher32 checksum when the flag is set (read through libhdf5).
    Tiled(usize, usize, bool),
}

const STORAGES: [Storage; 7] = [
    Storage::Contiguous,
    Storage::Chunked(7),
    Storage::Gzip(5),
    Storage::ShuffleGzip(6),
    Storage::Lzf(4),
    Storage::Tiled(3, 2, false),
    Storage::Tiled(5, 3, true),
];

fn write_typed<T: hdf5::H5Type>(
    g: &hdf5::Group,
    name: &str,
    values: &[T],
    shape: &[usize],
    storage: Storage,
) -> hdf5::Result<()> {
    let builder = g.new_dataset::<T>().shape(shape.to_vec());
    let chunk = |rows: usize| {
        let mut c = shape.to_vec();
        c[0] = rows.min(shape[0]);
        c
    };
    let ds = match storage {
        _ if shape.contains(&0) => builder.create(name)?,
        Storage::Contiguous => builder.create(name)?,
        Storage::Chunked(rows) => builder.chunk(chunk(rows)).create(name)?,
        Storage::Gzip(rows) => builder.chunk(chunk(rows)).deflate(4).create(name)?,
        Storage::ShuffleGzip(rows) => builder
            .chunk(chunk(rows))
            .shuffle()
            .deflate(4)
            .create(name)?,
        Storage::Lzf(rows) => builder.chunk(chunk(rows)).lzf().create(name)?,
        Storage::Tiled(rows, cols, checksum) => {
            let mut c = chunk(rows);
            if c.len() == 2 {
                c[1] = cols.min(shape[1]).max(1);
            }
            let b = builder.chunk(c);
            if checksum {
                b.fletcher32().create(name)?
            } else {
                b.create(name)?
            }
        }
    };
    if !values.is_empty() {
        ds.write_raw(values)?;
    }
    Ok(())
}

fn write_array(g: &hdf5::Group, name: &str, a: &ArrayData, storage: Storage) -> hdf5::Result<()> {
    let shape = a.shape().to_vec();
    macro_rules! write {
        ($v:expr) => {{
            let v = $v.as_standard_layout();
            write_typed(g, name, v.as_slice().unwrap(), &shape, storage)
        }};
    }
    match a {
        ArrayData::Bool(v) => write!(v),
        ArrayData::I8(v) => write!(v),
        ArrayData::I16(v) => write!(v),
        ArrayData::I32(v) => write!(v),
        ArrayData::I64(v) => write!(v),
        ArrayData::U8(v) => write!(v),
        ArrayData::U16(v) => write!(v),
        ArrayData::U32(v) => write!(v),
        ArrayData::U64(v) => write!(v),
        ArrayData::F32(v) => write!(v),
        ArrayData::F64(v) => write!(v),
        ArrayData::String(_) => {
            let values: Vec<VarLenUnicode> = a
                .to_python_strings()
                .iter()
                .map(|s| s.parse().unwrap())
                .collect();
            write_typed(g, name, &values, &shape, storage)
        }
    }
}

fn string_attr(loc: &hdf5::Location, name: &str, value: &str) {
    let v: VarLenUnicode = value.parse().unwrap();
    loc.new_attr::<VarLenUnicode>()
        .create(name)
        .unwrap()
        .write_scalar(&v)
        .unwrap();
}

/// How the sparse groups of a test file are marked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Marking {
    /// `encoding-type` and `encoding-version`, as anndata writes them.
    Encoded,
    /// `h5sparse_format` and `h5sparse_shape`, as anndata < 0.7 wrote them.
    H5Sparse,
    /// Only a `shape` attribute: the format is inferred from `indptr`'s length.
    Bare,
}

/// Writes `m` as element `name` of `parent`, with indices and indptr as `index_dtype`.
fn write_matrix(
    parent: &hdf5::Group,
    name: &str,
    m: &Matrix,
    storage: Storage,
    index_dtype: DType,
    marking: Marking,
) {
    match m {
        Matrix::Dense(a) => {
            write_array(parent, name, a, storage).unwrap();
            if marking == Marking::Encoded {
                let ds = parent.dataset(name).unwrap();
                string_attr(&ds, "encoding-type", "array");
                string_attr(&ds, "encoding-version", "0.2.0");
            }
        }
        Matrix::Sparse(s) => {
            let g = parent.create_group(name).unwrap();
            let as_ints = |v: Vec<i64>| typed(&v, index_dtype);
            let wide = |v: &[u32]| v.iter().map(|&x| i64::from(x)).collect();
            write_array(&g, "data", s.data(), storage).unwrap();
            write_array(&g, "indices", &as_ints(wide(s.indices())), storage).unwrap();
            let offsets = s.indptr().iter().map(|&x| x as i64).collect();
            write_array(&g, "indptr", &as_ints(offsets), Storage::Contiguous).unwrap();
            let (r, c) = s.shape();
            let shape_name = match marking {
                Marking::H5Sparse => "h5sparse_shape",
                _ => "shape",
            };
            g.new_attr::<i64>()
                .shape(2)
                .create(shape_name)
                .unwrap()
                .write_raw(&[r as i64, c as i64])
                .unwrap();
            let format = match s.format() {
                SparseFormat::Csr => "csr",
                SparseFormat::Csc => "csc",
            };
            match marking {
                Marking::Encoded => {
                    string_attr(&g, "encoding-type", s.format().encoding());
                    string_attr(&g, "encoding-version", "0.1.0");
                }
                Marking::H5Sparse => string_attr(&g, "h5sparse_format", format),
                Marking::Bare => {}
            }
        }
    }
}

/// A temporary file holding `m` as `/X`.
fn h5_file(
    m: &Matrix,
    storage: Storage,
    index_dtype: DType,
    marking: Marking,
) -> (tempfile::TempDir, hdf5::File) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.h5");
    let file = hdf5::File::create(&path).unwrap();
    write_matrix(&file, "X", m, storage, index_dtype, marking);
    drop(file);
    // Opened read-only, as backed mode opens files: reads take the direct path.
    (dir, hdf5::File::open(&path).unwrap())
}

fn open_x(file: &hdf5::File, budget: usize, block_bytes: usize) -> BackedMatrix {
    let cache = Arc::new(BlockCache::new(budget));
    BackedMatrix::with_block_bytes(open_matrix(&**file, "X").unwrap(), cache, block_bytes).unwrap()
}

/// Compares a backed read with the in-memory subset.
fn assert_reads_match(backed: &BackedMatrix, m: &Matrix, rows: &AxisIndex, cols: &AxisIndex) {
    let expected = m.subset(rows, cols).unwrap();
    let got = backed.read(rows, cols).unwrap();
    assert_eq!(got, expected, "rows {rows}, cols {cols}, {backed:?}");
}

// ---------------------------------------------------------------------------------------------
// HDF5 files
// ---------------------------------------------------------------------------------------------

#[test]
fn hdf5_reads_match_memory_for_every_layout_and_storage() {
    let mut rng = Rng::new(1);
    for layout in LAYOUTS {
        let m = random_matrix(&mut rng, layout, (23, 17), 30, DType::F32);
        let row_sel = selections(23, &mut rng);
        let col_sel = selections(17, &mut rng);
        for storage in STORAGES {
            let (_dir, file) = h5_file(&m, storage, DType::I32, Marking::Encoded);
            // One block per slice, a few slices per block, one block for everything.
            for block_bytes in [1, 100, 1 << 20] {
                let backed = open_x(&file, 4096, block_bytes);
                for (dataset, path) in backed.read_paths() {
                    let direct = matches!(path, ReadPath::Direct { .. });
                    let checksum = matches!(storage, Storage::Tiled(_, _, true));
                    assert_eq!(direct, !checksum, "{dataset} in {storage:?}: {path}");
                }
                for rows in &row_sel {
                    for cols in &col_sel {
                        assert_reads_match(&backed, &m, rows, cols);
                    }
                }
            }
        }
    }
}

#[test]
fn hdf5_reads_every_dtype_and_index_type() {
    let mut rng = Rng::new(2);
    let dtypes = [
        DType::Bool,
        DType::I8,
        DType::I16,
        DType::I32,
        DType::I64,
        DType::U8,
        DType::U16,
        DType::U32,
        DType::U64,
        DType::F32,
        DType::F64,
    ];
    let index_dtypes = [DType::I32, DType::I64, DType::U16, DType::U64, DType::I16];
    for (i, dtype) in dtypes.into_iter().enumerate() {
        for layout in LAYOUTS {
            let m = random_matrix(&mut rng, layout, (12, 9), 40, dtype);
            let index_dtype = index_dtypes[i % index_dtypes.len()];
            let (_dir, file) = h5_file(&m, Storage::Chunked(4), index_dtype, Marking::Encoded);
            let backed = open_x(&file, 1 << 20, 64);
            assert_eq!(backed.dtype(), dtype);
            assert_eq!(backed.to_memory().unwrap(), m, "{dtype} {layout:?}");
            let rows = Selection::positions([11, 0, 5, 5])
                .resolve(12, None)
                .unwrap();
            let cols = Selection::positions([8, 1, 1, 3]).resolve(9, None).unwrap();
            assert_reads_match(&backed, &m, &rows, &cols);
        }
    }
}

#[test]
fn legacy_sparse_groups_and_unencoded_datasets_open() {
    let mut rng = Rng::new(3);
    for layout in LAYOUTS {
        let m = random_matrix(&mut rng, layout, (8, 5), 50, DType::F64);
        for marking in [Marking::H5Sparse, Marking::Bare] {
            let (_dir, file) = h5_file(&m, Storage::Contiguous, DType::I64, marking);
            let backed = open_x(&file, 1 << 20, 1 << 20);
            let kind = match layout {
                Layout::Csr => MatrixKind::Sparse(SparseFormat::Csr),
                Layout::Csc => MatrixKind::Sparse(SparseFormat::Csc),
                Layout::Dense => MatrixKind::Dense,
            };
            assert_eq!(backed.kind(), kind, "{marking:?}");
            assert_eq!(backed.to_memory().unwrap(), m);
        }
    }
}

#[test]
fn metadata_is_read_on_open_and_reserved() {
    let mut rng = Rng::new(4);
    let m = random_matrix(&mut rng, Layout::Csr, (100, 10), 20, DType::F32);
    let (_dir, file) = h5_file(&m, Storage::Chunked(16), DType::I32, Marking::Encoded);
    let cache = Arc::new(BlockCache::new(1 << 20));
    let backed =
        BackedMatrix::with_block_bytes(open_matrix(&*file, "X").unwrap(), cache.clone(), 256)
            .unwrap();
    let Matrix::Sparse(s) = &m else {
        unreachable!()
    };
    assert_eq!(backed.indptr(), Some(s.indptr()));
    assert_eq!(backed.nnz(), Some(s.nnz() as u64));
    assert_eq!(backed.element(), "/X");
    // indptr and the block boundaries, reserved from the budget; nothing else read yet.
    let expected = 101 * 8 + (backed.n_blocks() + 1) * 8;
    assert!(
        backed.metadata_bytes() >= expected,
        "{}",
        backed.metadata_bytes()
    );
    let stats = cache.stats();
    assert_eq!(
        (stats.bytes_reserved, stats.bytes_read, stats.entries),
        (backed.metadata_bytes(), 0, 0)
    );
    // Blocks cover the rows in order, and rows map to their block.
    let mut next = 0;
    for b in 0..backed.n_blocks() {
        let r = backed.block_range(b).unwrap();
        assert_eq!(r.start, next);
        assert!(!r.is_empty());
        for row in r.clone() {
            assert_eq!(backed.block_of(row), Some(b));
        }
        next = r.end;
    }
    assert_eq!(next, 100);
    assert_eq!(
        (backed.block_of(100), backed.block_range(backed.n_blocks())),
        (None, None)
    );
    drop(backed);
    assert_eq!(cache.stats().bytes_reserved, 0);
}

#[test]
fn sparse_blocks_align_to_data_chunks() {
    // Every row holds 4 values; data chunks of 16 values; blocks of about 40 values.
    let shape = (50, 10);
    let indptr: Vec<u64> = (0..=50).map(|r| r * 4).collect();
    let indices: Vec<u32> = (0..200).map(|k| k % 10).collect();
    let m = Matrix::Sparse(
        SparseMatrix::new(
            SparseFormat::Csr,
            shape,
            indptr,
            indices,
            typed(&vec![1; 200], DType::F32),
        )
        .unwrap(),
    );
    let (_dir, file) = h5_file(&m, Storage::Chunked(16), DType::I32, Marking::Encoded);
    let backed = open_x(&file, 1 << 20, 40 * 8);
    let indptr = backed.indptr().unwrap().to_vec();
    for b in 0..backed.n_blocks() - 1 {
        let end = indptr[backed.block_range(b).unwrap().end];
        // 40 values rounded down to a multiple of 16 is 32: blocks end at chunk boundaries.
        assert_eq!(end % 16, 0, "block {b} ends at value {end}");
    }
    assert_eq!(backed.to_memory().unwrap(), m);
}

#[test]
fn chunks_cover_the_selection_in_order() {
    let mut rng = Rng::new(5);
    for layout in LAYOUTS {
        let m = random_matrix(&mut rng, layout, (31, 13), 30, DType::I64);
        let (_dir, file) = h5_file(&m, Storage::Gzip(6), DType::I32, Marking::Encoded);
        let backed = open_x(&file, 2048, 128);
        let row_sel = selections(31, &mut rng);
        let cols = Selection::positions([12, 0, 4, 4])
            .resolve(13, None)
            .unwrap();
        for rows in &row_sel {
            for chunk_rows in [1, 4, 7, 1000] {
                let chunks = backed.chunks(rows, &cols, chunk_rows).unwrap();
                let expected_n = rows.len().div_ceil(chunk_rows);
                assert_eq!(chunks.size_hint(), (expected_n, Some(expected_n)));
                let mut covered = 0;
                for chunk in chunks {
                    let (range, got) = chunk.unwrap();
                    assert_eq!(range.start, covered);
                    assert!(range.len() <= chunk_rows && !range.is_empty());
                    let sub = rows
                        .compose(&AxisIndex::range(range.clone(), rows.len()).unwrap())
                        .unwrap();
                    assert_eq!(got, m.subset(&sub, &cols).unwrap());
                    covered = range.end;
                }
                assert_eq!(covered, rows.len());
            }
        }
    }
    let backed = open_x(
        &h5_file(
            &random_matrix(&mut rng, Layout::Csr, (3, 3), 50, DType::F32),
            Storage::Contiguous,
            DType::I32,
            Marking::Encoded,
        )
        .1,
        100,
        100,
    );
    let e = backed
        .chunks(&AxisIndex::full(3), &AxisIndex::full(3), 0)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid argument: chunks must hold at least one row"
    );
}

#[test]
fn concurrent_reads_through_one_handle() {
    let mut rng = Rng::new(6);
    for layout in LAYOUTS {
        let m = random_matrix(&mut rng, layout, (60, 25), 25, DType::F64);
        let (_dir, file) = h5_file(&m, Storage::Gzip(9), DType::I32, Marking::Encoded);
        // A budget holding a few blocks: threads evict each other's blocks.
        let backed = open_x(&file, 3000, 300);
        let row_sel = selections(60, &mut rng);
        let col_sel = selections(25, &mut rng);
        std::thread::scope(|s| {
            for t in 0..4 {
                let (backed, m, row_sel, col_sel) = (&backed, &m, &row_sel, &col_sel);
                s.spawn(move || {
                    for (i, rows) in row_sel.iter().enumerate() {
                        let cols = &col_sel[(i + t) % col_sel.len()];
                        assert_reads_match(backed, m, rows, cols);
                        let s = backed.cache().stats();
                        assert!(s.bytes_held + s.bytes_reserved <= s.budget, "{s:?}");
                    }
                });
            }
        });
        let s = backed.cache().stats();
        assert!(s.misses > 0 && s.hits + s.misses > 0);
    }
}

// ---------------------------------------------------------------------------------------------
// Block reads, memory and the cache
// ---------------------------------------------------------------------------------------------

/// A reader that counts its reads, the values they returned and the spare buffers of its
/// dtype it was handed.
#[derive(Debug)]
struct Counting {
    inner: InMemoryReader,
    reads: Arc<AtomicUsize>,
    values: Arc<AtomicUsize>,
    spares: Arc<AtomicUsize>,
    /// What `decodes_whole_chunks` says.
    compressed: bool,
}

impl RangeReader for Counting {
    fn element(&self) -> &str {
        self.inner.element()
    }
    fn read_path(&self) -> ReadPath {
        self.inner.read_path()
    }
    fn shape(&self) -> &[usize] {
        self.inner.shape()
    }
    fn dtype(&self) -> DType {
        self.inner.dtype()
    }
    fn chunk_rows(&self) -> Option<usize> {
        self.inner.chunk_rows()
    }
    fn decodes_whole_chunks(&self) -> bool {
        self.compressed
    }
    fn read_rows(&self, rows: Range<usize>) -> crate::Result<ArrayData> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        let a = self.inner.read_rows(rows)?;
        self.values.fetch_add(a.len(), Ordering::SeqCst);
        Ok(a)
    }
    fn read_rows_reusing(&self, rows: Range<usize>, spare: ArrayData) -> crate::Result<ArrayData> {
        if spare.dtype() == self.dtype() && !spare.is_empty() {
            self.spares.fetch_add(1, Ordering::SeqCst);
        }
        self.read_rows(rows)
    }
}

impl Counting {
    fn new(name: &str, a: ArrayData) -> Self {
        Counting {
            inner: InMemoryReader::new(name, a).unwrap(),
            reads: Arc::default(),
            values: Arc::default(),
            spares: Arc::default(),
            compressed: false,
        }
    }
}

/// A source over `m` in memory whose data (or dense values) reads are counted.
fn counted_source(m: &Matrix) -> (MatrixSource, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let reads = Arc::new(AtomicUsize::new(0));
    let values = Arc::new(AtomicUsize::new(0));
    let counting = |name: &str, a: ArrayData| -> Box<dyn RangeReader> {
        Box::new(Counting {
            reads: reads.clone(),
            values: values.clone(),
            ..Counting::new(name, a)
        })
    };
    let plain = |name: &str, a: ArrayData| -> Box<dyn RangeReader> {
        Box::new(InMemoryReader::new(name, a).unwrap())
    };
    let source = match m {
        Matrix::Dense(a) => MatrixSource::dense("/X", counting("/X", a.clone())),
        Matrix::Sparse(s) => MatrixSource::sparse(
            "/X",
            s.format(),
            s.shape(),
            plain("/X/indptr", s.indptr().to_vec().into()),
            plain("/X/indices", s.indices().to_vec().into()),
            counting("/X/data", s.data().clone()),
        ),
    };
    (source, reads, values)
}

#[test]
fn scattered_rows_touching_most_compressed_chunks_read_the_block() {
    let mut rng = Rng::new(13);
    let m = random_matrix(&mut rng, Layout::Dense, (200, 8), 0, DType::F64);
    let Matrix::Dense(values) = &m else {
        unreachable!()
    };
    let all_cols = AxisIndex::full(8);
    for compressed in [false, true] {
        let reads = Arc::new(AtomicUsize::new(0));
        let reader = Counting {
            inner: InMemoryReader::new("/X", values.clone())
                .unwrap()
                .with_chunk_rows(4),
            reads: reads.clone(),
            values: Arc::new(AtomicUsize::new(0)),
            spares: Arc::default(),
            compressed,
        };
        let source = MatrixSource::dense("/X", Box::new(reader));
        // Blocks of 40 rows (10 chunks of 4); a cache that keeps nothing.
        let cache = Arc::new(BlockCache::new(0));
        let backed = BackedMatrix::with_block_bytes(source, cache, 40 * 64).unwrap();
        // Six scattered rows of block 0 (a sixth of it) in six of its ten chunks.
        let most = Selection::positions([1, 5, 9, 13, 17, 21])
            .resolve(200, None)
            .unwrap();
        assert_reads_match(&backed, &m, &most, &all_cols);
        let expected = if compressed { 1 } else { 6 };
        assert_eq!(reads.swap(0, Ordering::SeqCst), expected, "{compressed}");
        // Two rows in two chunks: read on their own either way.
        let few = Selection::positions([21, 1]).resolve(200, None).unwrap();
        assert_reads_match(&backed, &m, &few, &all_cols);
        assert_eq!(reads.swap(0, Ordering::SeqCst), 2, "{compressed}");
    }
}

#[test]
fn each_block_is_read_once_per_request() {
    let mut rng = Rng::new(7);
    for layout in LAYOUTS {
        let m = random_matrix(&mut rng, layout, (40, 40), 30, DType::F32);
        let (source, reads, _) = counted_source(&m);
        // A cache that keeps nothing: every block needed is read, once.
        let backed =
            BackedMatrix::with_block_bytes(source, Arc::new(BlockCache::new(0)), 64).unwrap();
        assert!(backed.n_blocks() > 4);
        let positions = [39, 0, 1, 2, 39, 20, 0, 21, 38, 38];
        let major = Selection::positions(positions).resolve(40, None).unwrap();
        let minor = Selection::positions([5, 3, 3, 30])
            .resolve(40, None)
            .unwrap();
        for (rows, cols) in [
            (&major, &minor),
            (&minor, &major),
            (&major, &AxisIndex::full(40)),
        ] {
            let (major_sel, _) = match layout {
                Layout::Csc => (cols, rows),
                _ => (rows, cols),
            };
            let plan = backed.plan(rows, cols).unwrap();
            let mut expected_blocks: Vec<usize> = major_sel
                .iter()
                .map(|p| backed.block_of(p).unwrap())
                .collect();
            expected_blocks.sort_unstable();
            expected_blocks.dedup();
            assert_eq!(plan.blocks().collect::<Vec<_>>(), expected_blocks);
            reads.store(0, Ordering::SeqCst);
            assert_reads_match(&backed, &m, rows, cols);
            assert_eq!(
                reads.load(Ordering::SeqCst),
                expected_blocks.len(),
                "{layout:?}"
            );
        }
    }
}

#[test]
fn column_reads_stream_over_row_blocks_within_the_budget() {
    let mut rng = Rng::new(8);
    let m = random_matrix(&mut rng, Layout::Csr, (400, 60), 30, DType::F32);
    let Matrix::Sparse(s) = &m else {
        unreachable!()
    };
    let (source, reads, values) = counted_source(&m);
    let budget = 8 << 10;
    let cache = Arc::new(BlockCache::new(budget));
    let backed = BackedMatrix::with_block_bytes(source, cache.clone(), 1024).unwrap();
    let matrix_bytes = s.nnz() * 8;
    assert!(
        matrix_bytes > 4 * budget,
        "the matrix must not fit the budget"
    );
    let cols = Selection::positions([59, 3, 3, 17])
        .resolve(60, None)
        .unwrap();
    let got = backed.read_columns(&cols).unwrap();
    assert_eq!(got, m.subset(&AxisIndex::full(400), &cols).unwrap());
    // Every block read once, every stored value once, nothing kept beyond the budget.
    assert_eq!(reads.load(Ordering::SeqCst), backed.n_blocks());
    assert_eq!(values.load(Ordering::SeqCst), s.nnz());
    let stats = cache.stats();
    assert!(
        stats.bytes_held + stats.bytes_reserved <= budget,
        "{stats:?}"
    );
    assert!(stats.bytes_read as usize >= matrix_bytes);
}

#[test]
fn large_reads_do_not_flush_the_cache() {
    let mut rng = Rng::new(9);
    let m = random_matrix(&mut rng, Layout::Dense, (200, 8), 0, DType::F64);
    let (source, reads, _) = counted_source(&m);
    let cache = Arc::new(BlockCache::new(4096));
    // 10 rows (640 bytes) per block: the cache holds a few blocks, not 20.
    let backed = BackedMatrix::with_block_bytes(source, cache.clone(), 640).unwrap();
    assert_eq!(backed.n_blocks(), 20);
    // A row or two of a block are read on their own, without the block (random access).
    let sparse = Selection::positions([51, 75]).resolve(200, None).unwrap();
    let all_cols = AxisIndex::full(8);
    assert_reads_match(&backed, &m, &sparse, &all_cols);
    assert_eq!(
        (cache.stats().entries, reads.load(Ordering::SeqCst)),
        (0, 2)
    );
    reads.store(0, Ordering::SeqCst);
    // A quarter of a block or more brings the block into the cache.
    let hot = Selection::positions([5, 6, 7, 8, 15, 16, 17, 18])
        .resolve(200, None)
        .unwrap();
    assert_reads_match(&backed, &m, &hot, &all_cols);
    assert_eq!(cache.stats().entries, 2);
    // The whole matrix is larger than the cache: it is read without being kept.
    assert_eq!(backed.to_memory().unwrap(), m);
    assert_eq!(cache.stats().entries, 2);
    // ... but blocks already cached were used, not read again.
    assert_eq!(reads.load(Ordering::SeqCst), 2 + 18);
    reads.store(0, Ordering::SeqCst);
    assert_reads_match(&backed, &m, &hot, &all_cols);
    assert_eq!(reads.load(Ordering::SeqCst), 0);
    // A chunked pass over everything reads each block once and keeps nothing new either.
    for chunk in backed.chunks(&AxisIndex::full(200), &all_cols, 7).unwrap() {
        chunk.unwrap();
    }
    assert_eq!(reads.load(Ordering::SeqCst), 18);
    assert_eq!(cache.stats().entries, 2);
}

#[test]
fn scans_larger_than_the_cache_read_each_chunk_whole() {
    let mut rng = Rng::new(12);
    for (layout, shape) in [(Layout::Csr, (4000, 400)), (Layout::Dense, (4000, 120))] {
        let m = random_matrix(&mut rng, layout, shape, 30, DType::F64);
        let (source, reads, _) = counted_source(&m);
        let cache = Arc::new(BlockCache::new(256 << 10));
        let backed = BackedMatrix::with_block_bytes(source, cache.clone(), 16 << 10).unwrap();
        let cols = AxisIndex::full(shape.1);
        // Chunks of 1,400 rows hold more than 1 MiB each: one read per chunk, not per block.
        for rows in [
            AxisIndex::full(4000),
            AxisIndex::range(150..3950, 4000).unwrap(),
        ] {
            reads.store(0, Ordering::SeqCst);
            let mut n = 0;
            for chunk in backed.chunks(&rows, &cols, 1400).unwrap() {
                let (range, got) = chunk.unwrap();
                let sub = rows
                    .compose(&AxisIndex::range(range, rows.len()).unwrap())
                    .unwrap();
                assert_eq!(got, m.subset(&sub, &cols).unwrap(), "{layout:?}");
                n += 1;
            }
            assert_eq!((n, reads.load(Ordering::SeqCst)), (3, 3), "{layout:?}");
            assert_eq!(cache.stats().entries, 0);
        }
        // Chunks of a few rows go through the blocks, as other reads do.
        reads.store(0, Ordering::SeqCst);
        let chunks = backed.chunks(&AxisIndex::full(4000), &cols, 10).unwrap();
        assert_eq!(chunks.count(), 400);
        assert!(reads.load(Ordering::SeqCst) < 400, "{layout:?}");
    }
}

#[test]
fn recycled_chunks_read_the_same_values() {
    let mut rng = Rng::new(13);
    for (layout, shape, storage) in [
        (Layout::Csr, (8000, 400), Storage::Gzip(5000)),
        (Layout::Csr, (8000, 400), Storage::Chunked(9000)),
        (Layout::Dense, (8000, 160), Storage::Contiguous),
    ] {
        let m = random_matrix(&mut rng, layout, shape, 30, DType::F64);
        let (_dir, file) = h5_file(&m, storage, DType::I32, Marking::Encoded);
        let backed = open_x(&file, 256 << 10, 16 << 10);
        let (all, cols) = (AxisIndex::full(8000), AxisIndex::full(shape.1));
        // Each chunk handed back, or a matrix of another dtype and shape instead: the next
        // chunks are the same.
        for junk in [false, true] {
            let mut chunks = backed.chunks(&all, &cols, 1000).unwrap();
            let mut n = 0;
            while let Some(chunk) = chunks.next() {
                let (range, got) = chunk.unwrap();
                let rows = AxisIndex::range(range, 8000).unwrap();
                assert_eq!(
                    got,
                    m.subset(&rows, &cols).unwrap(),
                    "{layout:?} {storage:?}"
                );
                n += 1;
                chunks.recycle(match junk {
                    false => got,
                    true => Matrix::Dense(ArrayData::zeros(DType::I8, &[3, 1])),
                });
            }
            assert_eq!(n, 8);
        }
    }
}

/// A sparse or dense source over `m` whose readers count the spares they are handed.
fn refilling_source(m: &Matrix, spares: &Arc<AtomicUsize>) -> MatrixSource {
    let refilling = |name: &str, a: ArrayData| -> Box<dyn RangeReader> {
        Box::new(Counting {
            spares: spares.clone(),
            ..Counting::new(name, a)
        })
    };
    match m {
        Matrix::Dense(a) => MatrixSource::dense("/X", refilling("/X", a.clone())),
        Matrix::Sparse(s) => {
            let wide: Vec<i64> = s.indices().iter().map(|&i| i64::from(i)).collect();
            MatrixSource::sparse(
                "/X",
                s.format(),
                s.shape(),
                reader("/X/indptr", s.indptr().to_vec().into()),
                refilling("/X/indices", typed(&wide, DType::I32)),
                refilling("/X/data", s.data().clone()),
            )
        }
    }
}

#[test]
fn blocks_read_for_one_request_are_refilled() {
    let mut rng = Rng::new(15);
    let m = random_matrix(&mut rng, Layout::Csr, (8000, 400), 30, DType::F64);
    let spares = Arc::new(AtomicUsize::new(0));
    let cache = Arc::new(BlockCache::new(256 << 10));
    let backed =
        BackedMatrix::with_block_bytes(refilling_source(&m, &spares), cache.clone(), 16 << 10)
            .unwrap();
    // Three columns of every row: all blocks, more than the cache holds, read once each and
    // not kept; each one copied out of is read into again.
    let (rows, cols) = (
        AxisIndex::full(8000),
        AxisIndex::from_positions(vec![7, 300, 2], 400).unwrap(),
    );
    assert_eq!(
        backed.read(&rows, &cols).unwrap(),
        m.subset(&rows, &cols).unwrap()
    );
    let n = backed.n_blocks();
    let got = spares.load(Ordering::SeqCst);
    assert!(got >= n, "{got} spares for {n} blocks of two datasets");
    assert_eq!(cache.stats().entries, 0);
    // A read the cache holds keeps its blocks: none is refilled.
    spares.store(0, Ordering::SeqCst);
    let few = AxisIndex::range(0..100, 8000).unwrap();
    backed.read(&few, &cols).unwrap();
    backed.read(&few, &cols).unwrap();
    assert_eq!(spares.load(Ordering::SeqCst), 0);
    assert!(cache.stats().entries > 0);
}

#[test]
fn a_scan_reads_into_the_buffers_handed_back() {
    let mut rng = Rng::new(14);
    for (layout, shape, readers) in [
        (Layout::Csr, (8000, 400), 2),
        (Layout::Dense, (8000, 160), 1),
    ] {
        let m = random_matrix(&mut rng, layout, shape, 30, DType::F64);
        let spares = Arc::new(AtomicUsize::new(0));
        let source = refilling_source(&m, &spares);
        let cache = Arc::new(BlockCache::new(256 << 10));
        let backed = BackedMatrix::with_block_bytes(source, cache, 16 << 10).unwrap();
        let (all, cols) = (AxisIndex::full(8000), AxisIndex::full(shape.1));
        for recycle in [false, true] {
            spares.store(0, Ordering::SeqCst);
            let mut chunks = backed.chunks(&all, &cols, 1000).unwrap();
            while let Some(chunk) = chunks.next() {
                let (_, got) = chunk.unwrap();
                if recycle {
                    chunks.recycle(got);
                }
            }
            // Eight chunks of over 1 MiB, read one ahead: taking chunk k starts reading
            // chunk k + 1, into the buffers of chunk k - 1 handed back just before (and chunk
            // 1 into those of chunk 0 if they are back before its read starts).
            let got = spares.load(Ordering::SeqCst);
            if recycle {
                assert!(
                    (6 * readers..=7 * readers).contains(&got),
                    "{layout:?}: {got}"
                );
            } else {
                assert_eq!(got, 0, "{layout:?}");
            }
        }
    }
}

#[test]
fn a_scan_reads_into_the_buffers_an_earlier_scan_handed_back() {
    let mut rng = Rng::new(16);
    for (layout, shape, readers) in [
        (Layout::Csr, (8000, 400), 2),
        (Layout::Dense, (8000, 160), 1),
    ] {
        // Two matrices read in turn, as a collection's files are.
        let (a, b) = (
            random_matrix(&mut rng, layout, shape, 30, DType::F64),
            random_matrix(&mut rng, layout, shape, 30, DType::F64),
        );
        let spares = Arc::new(AtomicUsize::new(0));
        let open = |m: &Matrix| {
            let cache = Arc::new(BlockCache::new(256 << 10));
            BackedMatrix::with_block_bytes(refilling_source(m, &spares), cache, 16 << 10).unwrap()
        };
        let (first, second) = (open(&a), open(&b));
        let (all, cols) = (AxisIndex::full(8000), AxisIndex::full(shape.1));
        let head = AxisIndex::range(0..1000, 8000).unwrap();
        // One chunk of the second matrix, read in one load: alone, its load has no buffers
        // to read into; after a pass over the first matrix sharing `buffers`, it has.
        let buffers = ScanBuffers::default();
        for earlier in [false, true] {
            if earlier {
                let mut chunks = first.scan_reusing(&all, &cols, 1000, &buffers).unwrap();
                while let Some(chunk) = chunks.next() {
                    let (range, got) = chunk.unwrap();
                    let rows = AxisIndex::range(range, 8000).unwrap();
                    assert_eq!(got, a.subset(&rows, &cols).unwrap(), "{layout:?}");
                    chunks.recycle(got);
                }
            }
            spares.store(0, Ordering::SeqCst);
            let mut chunks = second.scan_reusing(&head, &cols, 1000, &buffers).unwrap();
            let (_, got) = chunks.next().unwrap().unwrap();
            assert_eq!(got, b.subset(&head, &cols).unwrap(), "{layout:?}");
            assert!(chunks.next().is_none());
            let refilled = spares.load(Ordering::SeqCst);
            assert_eq!(refilled, if earlier { readers } else { 0 }, "{layout:?}");
        }
    }
}

#[test]
fn chunks_that_fit_keep_their_blocks() {
    let mut rng = Rng::new(10);
    let m = random_matrix(&mut rng, Layout::Csc, (30, 20), 40, DType::F32);
    let (source, reads, _) = counted_source(&m);
    let cache = Arc::new(BlockCache::new(1 << 20));
    let backed = BackedMatrix::with_block_bytes(source, cache.clone(), 64).unwrap();
    // Row chunks of a CSC matrix need every column block for each chunk: they come from the
    // cache after the first chunk.
    for chunk in backed
        .chunks(&AxisIndex::full(30), &AxisIndex::full(20), 4)
        .unwrap()
    {
        chunk.unwrap();
    }
    assert_eq!(reads.load(Ordering::SeqCst), backed.n_blocks());
    assert_eq!(cache.stats().entries, backed.n_blocks());
}

#[test]
fn closing_a_matrix_frees_its_blocks() {
    let mut rng = Rng::new(11);
    let m = random_matrix(&mut rng, Layout::Csr, (50, 10), 30, DType::F32);
    // Many times over: the read-ahead's worker tasks must not keep a closed matrix open.
    for _ in 0..20 {
        let cache = Arc::new(BlockCache::new(1 << 20));
        let (source, _, _) = counted_source(&m);
        let a = BackedMatrix::with_block_bytes(source, cache.clone(), 64).unwrap();
        let (source, _, _) = counted_source(&m);
        let b = BackedMatrix::new(source, cache.clone()).unwrap();
        assert_ne!(a.id(), b.id());
        a.to_memory().unwrap();
        b.to_memory().unwrap();
        let both = cache.stats();
        assert_eq!(both.entries, a.n_blocks() + b.n_blocks());
        let a2 = a.clone();
        drop(a);
        assert_eq!(
            cache.stats().entries,
            both.entries,
            "a clone keeps the matrix open"
        );
        drop(a2);
        let after = cache.stats();
        assert_eq!(after.entries, b.n_blocks());
        assert_eq!(after.bytes_reserved, b.metadata_bytes());
        assert!(after.bytes_held < both.bytes_held);
    }
}

// ---------------------------------------------------------------------------------------------
// Malformed input
// ---------------------------------------------------------------------------------------------

fn reader(name: &str, a: ArrayData) -> Box<dyn RangeReader> {
    Box::new(InMemoryReader::new(name, a).unwrap())
}

fn csr_source(
    indptr: ArrayData,
    indices: ArrayData,
    data: ArrayData,
    shape: (usize, usize),
) -> MatrixSource {
    MatrixSource::sparse(
        "/X",
        SparseFormat::Csr,
        shape,
        reader("/X/indptr", indptr),
        reader("/X/indices", indices),
        reader("/X/data", data),
    )
}

fn open_error(source: MatrixSource) -> Error {
    BackedMatrix::new(source, Arc::new(BlockCache::new(1 << 20))).unwrap_err()
}

#[test]
fn inconsistent_sparse_matrices_are_refused() {
    let f = |v: Vec<f32>| ArrayData::from(v);
    let cases = [
        (
            csr_source(
                vec![0i32, 1].into(),
                vec![0i32].into(),
                f(vec![1.0]),
                (2, 2),
            ),
            "/X: malformed element: 'indptr' has shape [2], expected [3] for 2 major slices",
        ),
        (
            csr_source(
                vec![0i32, 2, 1].into(),
                vec![0i32].into(),
                f(vec![1.0]),
                (2, 2),
            ),
            "/X: malformed element: 'indptr' is not non-decreasing",
        ),
        (
            csr_source(
                vec![1i32, 1, 1].into(),
                vec![0i32].into(),
                f(vec![1.0]),
                (2, 2),
            ),
            "/X: malformed element: 'indptr' must start at 0",
        ),
        (
            csr_source(
                vec![0i32, -1, 1].into(),
                vec![0i32].into(),
                f(vec![1.0]),
                (2, 2),
            ),
            "/X/indptr: malformed element: negative value -1",
        ),
        (
            csr_source(
                vec![0i32, 1, 2].into(),
                vec![0i32].into(),
                f(vec![1.0]),
                (2, 2),
            ),
            "/X: malformed element: 'indices' has shape [1], expected [2] (the last indptr value)",
        ),
        (
            csr_source(
                vec![0i32, 1, 1].into(),
                vec![0.0f64].into(),
                f(vec![1.0]),
                (2, 2),
            ),
            "/X: malformed element: 'indices' must hold integers, found float64",
        ),
        (
            csr_source(
                vec![0i32, 1, 1].into(),
                vec![0i32].into(),
                vec!["a"].into(),
                (2, 2),
            ),
            "/X: malformed element: sparse data cannot hold strings",
        ),
        (
            MatrixSource::dense("/X", reader("/X", vec![1.0f32].into())),
            "/X: shape mismatch: a matrix must be 2-d, this array has shape [1]",
        ),
    ];
    for (source, message) in cases {
        assert_eq!(open_error(source).to_string(), message);
    }
}

#[test]
fn bad_indices_fail_the_read_not_the_process() {
    let source = csr_source(
        vec![0i32, 1, 2].into(),
        vec![0i32, 7].into(),
        vec![1.0f32, 2.0].into(),
        (2, 2),
    );
    let backed = BackedMatrix::new(source, Arc::new(BlockCache::new(1 << 20))).unwrap();
    let e = backed.to_memory().unwrap_err();
    assert_eq!(
        e.to_string(),
        "/X/indices: malformed element: index 7 out of bounds for minor dimension 2"
    );
    assert_eq!(backed.cache().stats().entries, 0);
    let e = backed
        .read(&AxisIndex::full(3), &AxisIndex::full(2))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "/X: shape mismatch: the selection is for shape (3, 2), the matrix has (2, 2)"
    );
}

/// A CSR `/X` of `rows` rows of two stored entries each over `cols` columns, whose indices
/// are `indices` (possibly invalid) stored as `T` in gzip chunks of 16, read back directly.
fn h5_csr_with_indices<T: hdf5::H5Type>(
    indices: &[T],
    cols: usize,
) -> (tempfile::TempDir, hdf5::File) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.h5");
    let file = hdf5::File::create(&path).unwrap();
    let g = file.create_group("X").unwrap();
    let n = indices.len();
    let rows = n / 2;
    let data: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let indptr: Vec<i64> = (0..=rows as i64).map(|r| 2 * r).collect();
    write_typed(&g, "data", &data, &[n], Storage::Gzip(16)).unwrap();
    write_typed(&g, "indices", indices, &[n], Storage::Gzip(16)).unwrap();
    write_typed(&g, "indptr", &indptr, &[rows + 1], Storage::Contiguous).unwrap();
    g.new_attr::<i64>()
        .shape(2)
        .create("shape")
        .unwrap()
        .write_raw(&[rows as i64, cols as i64])
        .unwrap();
    string_attr(&g, "encoding-type", "csr_matrix");
    string_attr(&g, "encoding-version", "0.1.0");
    drop((g, file));
    (dir, hdf5::File::open(&path).unwrap())
}

#[test]
fn bad_indices_in_a_stored_chunk_fail_the_read() {
    // Blocks of a few rows, so that a read can stop short of the bad chunk.
    let open = |file: &hdf5::File| {
        let cache = Arc::new(BlockCache::new(1 << 20));
        BackedMatrix::with_block_bytes(open_matrix(&**file, "X").unwrap(), cache, 256).unwrap()
    };
    // 200 entries in 13 chunks; chunk 9 holds one bad index.
    let mut wide: Vec<i64> = (0..200).map(|i| (i % 2 + 2 * (i % 3)) as i64).collect();
    for (bad, shown) in [(9i64, "9"), (-3, "-3")] {
        wide[150] = bad;
        let ints: Vec<i32> = wide.iter().map(|&v| v as i32).collect();
        let (_dir, file) = h5_csr_with_indices(&ints, 6);
        let m = open(&file);
        let paths = m.read_paths();
        assert!(
            paths
                .iter()
                .all(|(_, p)| matches!(p, ReadPath::Direct { .. })),
            "{paths:?}"
        );
        assert_eq!(
            m.to_memory().unwrap_err().to_string(),
            format!(
                "/X/indices: malformed element: index {shown} out of bounds for minor dimension 6"
            )
        );
        // Rows before the bad chunk read fine.
        let first = AxisIndex::range(0..60, 100).unwrap();
        assert!(m.read(&first, &AxisIndex::full(6)).is_ok());
    }
    // uint32 indices, and int64 ones (converted after the read), are checked alike.
    wide[150] = 6;
    let unsigned: Vec<u32> = wide.iter().map(|&v| v as u32).collect();
    let (_d1, f1) = h5_csr_with_indices(&unsigned, 6);
    let (_d2, f2) = h5_csr_with_indices(&wide, 6);
    for file in [&f1, &f2] {
        assert_eq!(
            open(file).to_memory().unwrap_err().to_string(),
            "/X/indices: malformed element: index 6 out of bounds for minor dimension 6"
        );
    }
}

#[test]
fn hdf5_elements_that_are_not_matrices_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = hdf5::File::create(dir.path().join("bad.h5")).unwrap();
    let strings: ArrayData = vec!["a", "b"].into();
    write_array(&file, "strings", &strings, Storage::Contiguous).unwrap();
    let cube = ArrayData::zeros(DType::F32, &[2, 2, 2]);
    write_array(&file, "cube", &cube, Storage::Contiguous).unwrap();
    let frame = file.create_group("frame").unwrap();
    string_attr(&frame, "encoding-type", "dataframe");
    string_attr(&frame, "encoding-version", "0.2.0");
    let partial = file.create_group("partial").unwrap();
    string_attr(&partial, "encoding-type", "csr_matrix");
    string_attr(&partial, "encoding-version", "0.1.0");
    partial
        .new_attr::<i64>()
        .shape(2)
        .create("shape")
        .unwrap()
        .write_raw(&[2i64, 2])
        .unwrap();
    write_array(&partial, "data", &vec![1.0f32].into(), Storage::Contiguous).unwrap();
    let unversioned = file.create_group("unversioned").unwrap();
    string_attr(&unversioned, "encoding-type", "csr_matrix");
    let cases = [
        ("strings", "/strings: unsupported: a matrix of variable-length UTF-8 string values"),
        ("cube", "/cube: shape mismatch: a matrix must be 2-d, this array has shape [2, 2, 2]"),
        ("frame", "/frame: unknown or unexpected encoding-type 'dataframe' (version ''), expected a dense or sparse matrix"),
        ("unversioned", "/unversioned: unsupported: encoding-version '' of encoding-type 'csr_matrix' (anndata reads 0.1.0)"),
        ("partial", "/partial: malformed element: missing member 'indptr'"),
        ("missing", "/missing: malformed element: missing member 'missing'"),
    ];
    for (name, message) in cases {
        let e = open_matrix(&*file, name).unwrap_err();
        assert_eq!(e.to_string(), message, "{name}");
    }
}

// ---------------------------------------------------------------------------------------------
// Files written by h5py, scipy and anndata
// ---------------------------------------------------------------------------------------------

/// scipy's `m[rows][:, cols]` for unsorted, repeated selections of a CSR and a CSC matrix
/// with unsorted indices and explicit zeros, written by h5py beside the matrices.
#[test]
fn reads_match_scipy_fancy_indexing() {
    let script = r#"
import scipy.sparse as sp
rng = np.random.default_rng(0)
d = rng.integers(0, 4, size=(40, 12)).astype(np.float32)
d[d == 1] = 0
rows = np.array([39, 3, 3, 0, 17, 5, 4, 3])
cols = np.array([11, 2, 2, 0, 7, 5])
with h5py.File(path, 'w') as f:
    for name, m in [('csr', sp.csr_matrix(d)), ('csc', sp.csc_matrix(d))]:
        # Shuffle indices within slices and keep one explicit zero.
        m.data[0] = 0
        for i in range(len(m.indptr) - 1):
            lo, hi = m.indptr[i], m.indptr[i + 1]
            perm = rng.permutation(hi - lo) + lo
            m.indices[lo:hi] = m.indices[perm]
            m.data[lo:hi] = m.data[perm]
        g = f.create_group(name)
        g.attrs['encoding-type'] = name + '_matrix'
        g.attrs['encoding-version'] = '0.1.0'
        g.attrs['shape'] = np.array(m.shape)
        g.create_dataset('data', data=m.data, chunks=(16,), compression='gzip')
        g.create_dataset('indices', data=m.indices, chunks=(16,))
        g.create_dataset('indptr', data=m.indptr.astype(np.int64))
        e = m[rows][:, cols]
        x = f.create_group(name + '_expected')
        x.create_dataset('data', data=e.data)
        x.create_dataset('indices', data=e.indices)
        x.create_dataset('indptr', data=e.indptr)
"#;
    let (_dir, path) = crate::testutil::py_file("scipy.h5", script);
    let file = hdf5::File::open(&path).unwrap();
    let rows = Selection::positions([39, 3, 3, 0, 17, 5, 4, 3])
        .resolve(40, None)
        .unwrap();
    let cols = Selection::positions([11, 2, 2, 0, 7, 5])
        .resolve(12, None)
        .unwrap();
    for name in ["csr", "csc"] {
        let cache = Arc::new(BlockCache::new(1 << 20));
        let backed =
            BackedMatrix::with_block_bytes(open_matrix(&*file, name).unwrap(), cache, 64).unwrap();
        let Matrix::Sparse(got) = backed.read(&rows, &cols).unwrap() else {
            panic!("sparse expected")
        };
        let expected = file.group(&format!("{name}_expected")).unwrap();
        let read =
            |n: &str| crate::storage::h5::read::read_array(&expected.dataset(n).unwrap()).unwrap();
        let ints = |n: &str| crate::data::integers_as_u64(&read(n)).unwrap();
        assert_eq!(got.shape(), (8, 6));
        assert_eq!(got.indptr(), ints("indptr"), "{name}");
        let indices: Vec<u64> = got.indices().iter().map(|&i| u64::from(i)).collect();
        assert_eq!(indices, ints("indices"), "{name}");
        assert_eq!(got.data(), &read("data"), "{name}");
    }
}

/// Bools as h5py's int8 enum and half floats, as h5py writes them.
#[test]
fn reads_h5py_bools_and_half_floats() {
    let script = r#"
with h5py.File(path, 'w') as f:
    f.create_dataset('half', data=np.arange(12, dtype=np.float16).reshape(4, 3) / 4, chunks=(2, 3))
    g = f.create_group('flags')
    g.attrs['encoding-type'] = 'csr_matrix'
    g.attrs['encoding-version'] = '0.1.0'
    g.attrs['shape'] = np.array([3, 2])
    g.create_dataset('data', data=np.array([True, False, True]))
    g.create_dataset('indices', data=np.array([1, 0, 1], dtype=np.int32))
    g.create_dataset('indptr', data=np.array([0, 1, 1, 3], dtype=np.int32))
"#;
    let (_dir, path) = crate::testutil::py_file("h5py.h5", script);
    let file = hdf5::File::open(&path).unwrap();
    let cache = Arc::new(BlockCache::new(1 << 20));
    let half = BackedMatrix::new(open_matrix(&*file, "half").unwrap(), cache.clone()).unwrap();
    let expected = ndarray::Array2::from_shape_fn((4, 3), |(i, j)| (i * 3 + j) as f32 / 4.0);
    assert_eq!(
        half.to_memory().unwrap(),
        Matrix::Dense(ArrayData::from(expected))
    );
    let flags = BackedMatrix::new(open_matrix(&*file, "flags").unwrap(), cache).unwrap();
    let rows = Selection::positions([2, 0]).resolve(3, None).unwrap();
    let Matrix::Sparse(s) = flags.read(&rows, &AxisIndex::full(2)).unwrap() else {
        panic!("sparse expected")
    };
    assert_eq!(
        (s.indptr(), s.indices()),
        (&[0u64, 2, 3][..], &[0u32, 1, 1][..])
    );
    assert_eq!(s.data(), &ArrayData::from(vec![false, true, true]));
}

#[test]
fn reads_an_anndata_file() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/pbmc_like_csr.h5ad");
    let file = hdf5::File::open(&path).unwrap();
    let m = crate::format::read::read_matrix(&*file, "X").unwrap();
    let (r, c) = m.shape();
    let backed = BackedMatrix::with_block_bytes(
        open_matrix(&*file, "X").unwrap(),
        Arc::new(BlockCache::new(1 << 16)),
        512,
    )
    .unwrap();
    assert_eq!(backed.shape(), (r, c));
    assert!(backed.n_blocks() > 1);
    let mut rng = Rng::new(12);
    for rows in selections(r, &mut rng) {
        for cols in selections(c, &mut rng).iter().step_by(2) {
            assert_reads_match(&backed, &m, &rows, cols);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

fn dtype_strategy() -> impl Strategy<Value = DType> {
    prop::sample::select(vec![
        DType::F32,
        DType::F64,
        DType::I32,
        DType::U8,
        DType::Bool,
        DType::I64,
    ])
}

fn layout_strategy() -> impl Strategy<Value = Layout> {
    prop::sample::select(LAYOUTS.to_vec())
}

/// A selection of an axis of `n`, as a user could write it.
fn selection_strategy(n: usize) -> BoxedStrategy<Selection> {
    let n_i = n as isize;
    let bound = -(n_i + 2)..=(n_i + 2);
    let mut options = vec![
        Just(Selection::All).boxed(),
        (
            prop::option::of(bound.clone()),
            prop::option::of(bound),
            prop_oneof![-4isize..=-1, 1isize..=4],
        )
            .prop_map(|(start, stop, step)| Selection::slice(start, stop, step))
            .boxed(),
        prop::collection::vec(any::<bool>(), n)
            .prop_map(Selection::Mask)
            .boxed(),
    ];
    if n > 0 {
        options.push(
            prop::collection::vec(0..n, 0..2 * n + 2)
                .prop_map(Selection::positions)
                .boxed(),
        );
        // Sorted positions with runs.
        options.push(
            prop::collection::btree_set(0..n, 0..=n)
                .prop_map(Selection::positions)
                .boxed(),
        );
    }
    prop::strategy::Union::new(options).boxed()
}

/// A matrix and selections of both its axes.
fn case_strategy() -> impl Strategy<Value = (Matrix, Selection, Selection)> {
    (
        layout_strategy(),
        dtype_strategy(),
        0usize..25,
        0usize..25,
        0usize..100,
        any::<u64>(),
    )
        .prop_flat_map(|(layout, dtype, rows, cols, density, seed)| {
            let m = random_matrix(&mut Rng::new(seed), layout, (rows, cols), density, dtype);
            (Just(m), selection_strategy(rows), selection_strategy(cols))
        })
}

fn memory_source(m: &Matrix, chunk: usize) -> MatrixSource {
    let r = |name: &str, a: ArrayData| -> Box<dyn RangeReader> {
        Box::new(InMemoryReader::new(name, a).unwrap().with_chunk_rows(chunk))
    };
    match m {
        Matrix::Dense(a) => MatrixSource::dense("/X", r("/X", a.clone())),
        Matrix::Sparse(s) => MatrixSource::sparse(
            "/X",
            s.format(),
            s.shape(),
            r("/X/indptr", s.indptr().to_vec().into()),
            r(
                "/X/indices",
                typed(
                    &s.indices().iter().map(|&i| i as i64).collect::<Vec<_>>(),
                    DType::I32,
                ),
            ),
            r("/X/data", s.data().clone()),
        ),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn reads_equal_in_memory_subsets(
        (m, rows, cols) in case_strategy(),
        block_bytes in 1usize..400,
        budget in 0usize..3000,
        chunk in 1usize..9,
        chunk_rows in 1usize..8,
    ) {
        let (r, c) = m.shape();
        let rows = rows.resolve(r, None).unwrap();
        let cols = cols.resolve(c, None).unwrap();
        let cache = Arc::new(BlockCache::new(budget));
        let backed = BackedMatrix::with_block_bytes(memory_source(&m, chunk), cache.clone(), block_bytes).unwrap();
        let expected = m.subset(&rows, &cols).unwrap();
        prop_assert_eq!(backed.read(&rows, &cols).unwrap(), expected);
        let mut covered = 0;
        for chunk in backed.chunks(&rows, &cols, chunk_rows).unwrap() {
            let (range, got) = chunk.unwrap();
            prop_assert_eq!(range.start, covered);
            let sub = rows.compose(&AxisIndex::range(range.clone(), rows.len()).unwrap()).unwrap();
            prop_assert_eq!(got, m.subset(&sub, &cols).unwrap());
            covered = range.end;
        }
        prop_assert_eq!(covered, rows.len());
        let s = cache.stats();
        prop_assert!(s.bytes_held <= s.budget.saturating_sub(s.bytes_reserved));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn hdf5_reads_equal_in_memory_subsets(
        (m, rows, cols) in case_strategy(),
        block_bytes in 1usize..400,
        storage in prop::sample::select(STORAGES.to_vec()),
    ) {
        let (r, c) = m.shape();
        let rows = rows.resolve(r, None).unwrap();
        let cols = cols.resolve(c, None).unwrap();
        let (_dir, file) = h5_file(&m, storage, DType::I64, Marking::Encoded);
        let backed = open_x(&file, 1000, block_bytes);
        prop_assert_eq!(backed.read(&rows, &cols).unwrap(), m.subset(&rows, &cols).unwrap());
    }
}
