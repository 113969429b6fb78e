//! Block reads, memory and the cache: what is read for a request, budgets, recycled buffers,
//! closing.

use super::*;

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
