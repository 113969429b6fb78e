//! Files written by h5py, scipy and anndata read as those packages read them.

use super::*;

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
    let expected = ndarray::Array2::from_shape_fn((4, 3), |(i, j)| {
        half::f16::from_f32((i * 3 + j) as f32 / 4.0)
    });
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
