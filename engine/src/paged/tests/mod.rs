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
        DType::F16 => values
            .iter()
            .map(|&v| half::f16::from_f64(v as f64 * 0.5))
            .collect::<Vec<_>>()
            .into(),
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
    /// Chunked, shuffled and deflated, with a Fletcher-32 checksum.
    ShuffleGzip(usize),
    /// Chunked and LZF-compressed.
    Lzf(usize),
    /// Chunks of this many rows and columns (2-d datasets; 1-d ones are chunked by rows),
    /// through libhdf5's N-bit filter when the flag is set (read through libhdf5).
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
            .fletcher32()
            .create(name)?,
        Storage::Lzf(rows) => builder.chunk(chunk(rows)).lzf().create(name)?,
        Storage::Tiled(rows, cols, nbit) => {
            let mut c = chunk(rows);
            if c.len() == 2 {
                c[1] = cols.min(shape[1]).max(1);
            }
            let b = builder.chunk(c);
            if nbit {
                b.nbit().create(name)?
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
        ArrayData::F16(v) => write!(v),
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

/// An in-memory reader of `a`, named `name`.
fn reader(name: &str, a: ArrayData) -> Box<dyn RangeReader> {
    Box::new(InMemoryReader::new(name, a).unwrap())
}

mod cache;
mod h5;
mod malformed;
mod peers;
mod props;
