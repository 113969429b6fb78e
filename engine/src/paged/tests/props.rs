//! Properties: random matrices, layouts and selections read from memory sources as subsets in
//! memory.

use super::*;

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
