//! Malformed input: bad indices and elements that are not matrices fail the read with an
//! error, never the process.

use super::*;

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
        ("frame", "/frame: unknown or unexpected encoding-type 'dataframe' (version '0.2.0'), expected a dense or sparse matrix"),
        ("unversioned", "/unversioned: unsupported: encoding-version '' of encoding-type 'csr_matrix' (anndata reads 0.1.0)"),
        ("partial", "/partial: malformed element: missing member 'indptr'"),
        ("missing", "/missing: malformed element: missing member 'missing'"),
    ];
    for (name, message) in cases {
        let e = open_matrix(&*file, name).unwrap_err();
        assert_eq!(e.to_string(), message, "{name}");
    }
}
