//! Backed reads of HDF5 files written here with `hdf5-metno`: every layout, storage, dtype and
//! index type; legacy groups, metadata, chunk alignment, concurrency.

use super::*;

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
                    let nbit = matches!(storage, Storage::Tiled(_, _, true));
                    assert_eq!(direct, !nbit, "{dataset} in {storage:?}: {path}");
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
        DType::F16,
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
