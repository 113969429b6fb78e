//! The byte-bounded cache seen through backed handles: what reads charge it, and many threads
//! reading through one handle.

use crate::support::*;

#[test]
fn cache_stats_follow_the_reads() {
    let path = fixture("pbmc_like_csr.h5ad");
    let b = open(&path, 64 << 20);
    assert_eq!(b.cache_budget(), 64 << 20);
    let s0 = b.cache_stats();
    assert_eq!(
        (s0.bytes_read, s0.hits, s0.misses, s0.bytes_reserved),
        (0, 0, 0, 0)
    );
    // A whole frame is read into the caller's hands, nothing kept; columns and names asked
    // for alone are cached per handle and reserved from the budget, not read as blocks.
    let obs = b.obs().unwrap();
    assert_eq!(b.cache_stats().bytes_reserved, 0);
    assert_eq!(b.obs_names().unwrap(), obs.index_names().unwrap());
    let s1 = b.cache_stats();
    assert_eq!(s1.bytes_read, 0);
    assert!(s1.bytes_reserved > 0, "{s1:?}");
    // Once cached, the frame's index is copied from the cache.
    assert_eq!(b.obs().unwrap(), obs);
    assert_eq!(b.cache_stats().bytes_reserved, s1.bytes_reserved);
    // The first read of X loads blocks; the same read again hits them.
    let x = b.x().unwrap().to_memory().unwrap();
    let s2 = b.cache_stats();
    assert!(s2.bytes_read > 0 && s2.misses > 0, "{s2:?}");
    assert_eq!(b.x().unwrap().to_memory().unwrap(), x);
    let s3 = b.cache_stats();
    assert_eq!(s3.bytes_read, s2.bytes_read, "{s3:?}");
    assert!(s3.hits > s2.hits);
    // A slice shares the handle's cache.
    let cut = b.slice(&Selection::from(0..10), &Selection::All).unwrap();
    cut.x().unwrap().to_memory().unwrap();
    assert_eq!(cut.cache_stats().bytes_read, s2.bytes_read);

    // Under a budget far smaller than X, a pass holds at most the budget.
    let small = open(&path, 256 << 10);
    let mut rows = 0;
    for chunk in small.chunk_x(100).unwrap() {
        rows += chunk.unwrap().0.len();
        let s = small.cache_stats();
        assert!(s.bytes_held <= s.budget, "{s:?}");
    }
    assert_eq!(rows, 2000);
    let s = small.cache_stats();
    assert!(s.bytes_read as usize >= 99_794 * 4, "{s:?}");

    // A cache shared by two handles.
    let shared = Arc::new(BlockCache::new(8 << 20));
    let options = BackedOptions {
        cache_bytes: 0,
        cache: Some(Arc::clone(&shared)),
        ..BackedOptions::default()
    };
    let h1 = read_h5ad_backed(&path, Mode::Read, options.clone()).unwrap();
    let h2 = read_h5ad_backed(fixture("all_elements.h5ad"), Mode::Read, options).unwrap();
    h1.x().unwrap().rows(&Selection::from(0..5)).unwrap();
    h2.x().unwrap().to_memory().unwrap();
    assert_eq!(h1.cache_budget(), 8 << 20);
    assert_eq!(h1.cache_stats(), h2.cache_stats());
    assert_eq!(shared.stats().misses, h1.cache_stats().misses);
}

#[test]
fn many_threads_read_through_one_handle() {
    let path = fixture("pbmc_like_csr.h5ad");
    let b = open(&path, 2 << 20);
    let m = read_h5ad(&path).unwrap();
    std::thread::scope(|scope| {
        for t in 0..8u64 {
            let (b, m) = (&b, &m);
            scope.spawn(move || {
                for round in 0..3u64 {
                    let seed = t * 10 + round;
                    let o = selection(seed, m.n_obs(), m.obs_names());
                    let v = selection(seed + 5, m.n_vars(), m.var_names());
                    match t % 4 {
                        0 => {
                            let got = b.slice(&o, &v).unwrap().to_memory().unwrap();
                            assert_eq!(got.x(), m.subset(&o, &v).unwrap().x());
                        }
                        1 => {
                            let view = b.slice(&o, &v).unwrap();
                            let want = m.subset(&o, &v).unwrap();
                            let n: usize =
                                view.chunk_x(97).unwrap().map(|c| c.unwrap().0.len()).sum();
                            assert_eq!(n, want.n_obs());
                        }
                        2 => {
                            let view = b.slice(&o, &Selection::All).unwrap();
                            assert_eq!(
                                &view.obs().unwrap(),
                                m.subset(&o, &Selection::All).unwrap().obs()
                            );
                            assert_eq!(
                                view.obsm("X_pca").unwrap(),
                                m.subset(&o, &Selection::All).unwrap().obsm()["X_pca"]
                            );
                        }
                        _ => {
                            let x = b.x().unwrap();
                            let got = x.columns(&v).unwrap();
                            let cols = v.resolve(m.n_vars(), Some(m.var_names())).unwrap();
                            let want = m
                                .x()
                                .unwrap()
                                .subset(&AxisIndex::full(m.n_obs()), &cols)
                                .unwrap();
                            assert_eq!(got, want);
                        }
                    }
                }
            });
        }
    });
    let s = b.cache_stats();
    assert!(s.bytes_held <= s.budget, "{s:?}");
}

#[test]
fn shuffled_batches_take_every_row_once_and_decode_less_than_scattered_rows() {
    let path = fixture("pbmc_like_csr.h5ad");
    let m = read_h5ad(&path).unwrap();
    let x = m.x().unwrap();
    let all_cols = AxisIndex::full(m.n_vars());
    // Runs of 64 rows, 8 mixed at a time; a budget of a third of X.
    let b = open(&path, 256 << 10);
    let opts = BatchOptions {
        batch_size: 100,
        run_rows: 64,
        preload_runs: 8,
        seed: 11,
        ..BatchOptions::default()
    };
    let batches = b.x().unwrap().batches(&opts).unwrap();
    assert_eq!(batches.len(), m.n_obs().div_ceil(100));
    let mut seen = vec![0u32; m.n_obs()];
    for batch in batches {
        let batch = batch.unwrap();
        assert!(batch.rows.len() == 100 || batch.rows.len() == m.n_obs() % 100);
        let rows = Selection::positions(batch.rows.iter().copied())
            .resolve(m.n_obs(), None)
            .unwrap();
        assert_eq!(batch.x, x.subset(&rows, &all_cols).unwrap());
        // A batch mixes at most the 8 runs of its group (or two groups, across a boundary).
        let mut runs: Vec<usize> = batch.rows.iter().map(|r| r / 64).collect();
        runs.sort_unstable();
        runs.dedup();
        assert!(runs.len() <= 16, "{runs:?}");
        for r in batch.rows {
            seen[r] += 1;
        }
    }
    assert!(seen.iter().all(|&n| n == 1));
    // On a compressed copy, whose storage chunks are decoded whole and kept in the cache, rows
    // drawn one by one (runs of one row) decode much more than runs do (3× here).
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("gz.h5ad");
    write_gzip(&m, &gz);
    let runs = open(&gz, 256 << 10);
    for batch in runs.x().unwrap().batches(&opts).unwrap() {
        batch.unwrap();
    }
    let s = runs.cache_stats();
    let scattered = open(&gz, 256 << 10);
    let one_by_one = BatchOptions {
        run_rows: 1,
        preload_runs: 1,
        ..opts.clone()
    };
    for batch in scattered.x().unwrap().batches(&one_by_one).unwrap() {
        batch.unwrap();
    }
    let r = scattered.cache_stats();
    assert!(r.bytes_read > 2 * s.bytes_read, "runs {s:?}, rows {r:?}");

    // A view's rows, in order, without a last short batch; the same seed, the same batches.
    let view = b
        .slice(&Selection::from(10..1_010), &Selection::from(0..50))
        .unwrap();
    let plain = BatchOptions {
        shuffle: false,
        drop_last: true,
        batch_size: 300,
        ..BatchOptions::default()
    };
    let got = batch_rows(&view, &plain);
    assert_eq!(
        got,
        vec![
            (0..300).collect::<Vec<_>>(),
            (300..600).collect(),
            (600..900).collect()
        ]
    );
    assert_eq!(batch_rows(&b, &opts), batch_rows(&b, &opts));

    // Shuffled without the short last batch: the last group is cut short.
    let cut = BatchOptions {
        batch_size: 300,
        drop_last: true,
        ..opts.clone()
    };
    let mut rows = BTreeSet::new();
    for batch in b.x().unwrap().batches(&cut).unwrap() {
        let batch = batch.unwrap();
        assert_eq!((batch.rows.len(), batch.x.shape().0), (300, 300));
        rows.extend(batch.rows);
    }
    assert_eq!(rows.len(), m.n_obs() / 300 * 300);

    let err = b
        .x()
        .unwrap()
        .batches(&BatchOptions {
            batch_size: 0,
            ..BatchOptions::default()
        })
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("pbmc_like_csr.h5ad") && err.contains("at least 1"),
        "{err}"
    );
}

#[test]
fn given_batches_equal_their_rows_and_compressed_ones_decode_a_chunk_once_per_window() {
    let path = fixture("pbmc_like_csr.h5ad");
    let m = read_h5ad(&path).unwrap();
    let (n, x) = (m.n_obs(), m.x().unwrap());
    let all_cols = AxisIndex::full(m.n_vars());
    // Random rows, repeated within and across batches; an empty batch.
    let mut rng = Rng::new(3);
    let order: Vec<Vec<usize>> = (0..40)
        .map(|b| match b {
            5 => Vec::new(),
            _ => (0..60).map(|_| rng.below(n)).collect(),
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("gz.h5ad");
    write_gzip(&m, &gz);
    // A budget of a third of X: windows of about a sixth (half the budget, at most half of
    // what X's offsets leave of it), several of them.
    for (file, compressed) in [(&path, false), (&gz, true)] {
        let b = open(file, 256 << 10);
        let mut batches = b.x().unwrap().batches_of(order.clone()).unwrap();
        let during = b.cache_stats().bytes_reserved;
        assert_eq!(batches.len(), order.len());
        for (batch, rows) in batches.by_ref().zip(&order) {
            let batch = batch.unwrap();
            assert_eq!(&batch.rows, rows);
            let sel = Selection::positions(rows.iter().copied())
                .resolve(n, None)
                .unwrap();
            assert_eq!(batch.x, x.subset(&sel, &all_cols).unwrap());
            let s = b.cache_stats();
            assert!(s.bytes_held + s.bytes_reserved <= s.budget, "{s:?}");
        }
        let after = b.cache_stats().bytes_reserved;
        let window = match compressed {
            true => (128 << 10).min(((256 << 10) - after) / 2),
            false => 0,
        };
        assert!(window > 100 << 10 || !compressed, "{window}");
        assert_eq!(
            during - after,
            window,
            "the room, given back once every window is read"
        );
        drop(batches);
        assert_eq!(b.cache_stats().bytes_reserved, after);
        // Two orders read at once reserve no more than the budget together.
        let all: Vec<Vec<usize>> = vec![(0..n).collect()];
        let two = [0, 1].map(|_| b.x().unwrap().batches_of(all.clone()).unwrap());
        let s = b.cache_stats();
        assert!(s.bytes_reserved <= s.budget, "{s:?}");
        drop(two);
        // An order that takes less than half the budget reserves what it takes.
        let small = b.x().unwrap().batches_of(vec![vec![0, 1]]).unwrap();
        let room = b.cache_stats().bytes_reserved - after;
        match window {
            0 => assert_eq!(room, 0),
            _ => assert!(room > 0 && room < window / 8, "{room}"),
        }
        drop(small);
    }
    // Compressed chunks: a window decodes each chunk once for its batches; a read per batch
    // decodes every chunk the batch touches (here several times more).
    let windows = open(&gz, 256 << 10);
    for batch in windows.x().unwrap().batches_of(order.clone()).unwrap() {
        batch.unwrap();
    }
    let each = open(&gz, 256 << 10);
    for rows in &order {
        let rows = Selection::positions(rows.iter().copied());
        each.x().unwrap().rows(&rows).unwrap();
    }
    let (w, e) = (windows.cache_stats(), each.cache_stats());
    assert!(e.bytes_read > 3 * w.bytes_read, "windows {w:?}, each {e:?}");

    // Positions among a view's rows; out of range ones are refused up front.
    let view = windows
        .slice(&Selection::from(10..1_010), &Selection::from(0..50))
        .unwrap();
    let vx = view.x().unwrap();
    let batch = vx.batches_of(vec![vec![999, 0, 999]]).unwrap().next();
    let rows = Selection::positions([999, 0, 999]);
    assert_eq!(batch.unwrap().unwrap().x, vx.rows(&rows).unwrap());
    let err = vx
        .batches_of(vec![vec![0], vec![1_000]])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("gz.h5ad") && err.contains("batch 1 holds row 1000"),
        "{err}"
    );
}

/// The rows of each of X's batches, in order.
fn batch_rows(b: &BackedAnnData, opts: &BatchOptions) -> Vec<Vec<usize>> {
    let batches = b.x().unwrap().batches(opts).unwrap();
    batches.map(|batch| batch.unwrap().rows).collect()
}

#[test]
fn what_opening_reads_into_memory_is_charged_to_the_budget() {
    // A layer of strings is read whole when the file opens (the chunk manager pages numbers
    // only): its bytes are reserved from the handle's budget from then on.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("words.h5ad");
    let mut a = AnnData::new(100, 20);
    let words = Array2::from_shape_fn((100, 20), |(i, j)| format!("w{i}_{j}"));
    a.insert_layer("words", Matrix::Dense(ArrayData::from(words.into_dyn())))
        .unwrap();
    a.write_h5ad(&path, &WriteOptions::default()).unwrap();
    let b = open(&path, 64 << 20);
    let held = b.cache_stats().bytes_reserved;
    assert!(held >= 100 * 20 * 24, "{held}");
    drop(b);
    let plain = open(fixture("pbmc_like_csr.h5ad"), 64 << 20);
    assert_eq!(plain.cache_stats().bytes_reserved, 0);
}
