//! `annpage::read_collection`: several files as one lazy concatenation along obs, judged by
//! `concat` of the files read whole, then `subset`. The differential tests against anndata are
//! in `tests/interop/test_collection.py`.

use std::path::PathBuf;

use annpage::backed::BackedOptions;
use annpage::data::Matrix;
use annpage::{
    concat, read_collection, read_h5ad, AnnData, Axis, ConcatOptions, Join, Selection, WriteOptions,
};

use crate::support::{fixture, write_gzip};

/// Three files cut from the pbmc-like fixture: uneven cells, gene sets that overlap and are
/// shuffled, a layer in two of them, and index names.
fn parts(dir: &std::path::Path) -> Vec<PathBuf> {
    let src = read_h5ad(fixture("pbmc_like_csr.h5ad")).unwrap();
    let genes: Vec<usize> = (0..1000).collect();
    let cuts: [(std::ops::Range<usize>, Vec<usize>); 3] = [
        (0..700, genes[100..].to_vec()),
        (700..750, genes[..900].iter().rev().copied().collect()),
        (
            750..2000,
            genes.iter().copied().filter(|g| g % 3 != 0).collect(),
        ),
    ];
    cuts.into_iter()
        .enumerate()
        .map(|(i, (cells, genes))| {
            let mut part = src
                .subset(&Selection::from(cells), &Selection::from(genes))
                .unwrap();
            part.set_raw(None).unwrap();
            // The cells' index names agree (kept), the genes' do not (dropped).
            part.obs_mut().set_index_name(Some("cell".into()));
            let gene = if i == 1 { "symbol" } else { "gene" };
            part.var_mut().set_index_name(Some(gene.into()));
            if i != 1 {
                let x = part.x().unwrap().clone();
                part.insert_layer("counts", x).unwrap();
            }
            let path = dir.join(format!("part{i}.h5ad"));
            part.write_h5ad(&path, &WriteOptions::default()).unwrap();
            path
        })
        .collect()
}

fn outer() -> ConcatOptions {
    ConcatOptions {
        join: Join::Outer,
        label: Some("batch".into()),
        keys: Some(vec!["p".into(), "q".into(), "r".into()]),
        index_unique: Some("-".into()),
        ..Default::default()
    }
}

fn whole(paths: &[PathBuf], options: &ConcatOptions) -> AnnData {
    let adatas: Vec<AnnData> = paths.iter().map(|p| read_h5ad(p).unwrap()).collect();
    concat(&adatas, options).unwrap()
}

#[test]
fn selections_equal_the_concatenation_subset() {
    let dir = tempfile::tempdir().unwrap();
    let paths = parts(dir.path());
    for options in [outer(), ConcatOptions::default()] {
        let all = whole(&paths, &options);
        let coll = read_collection(&paths, &options, &BackedOptions::default()).unwrap();
        assert_eq!(coll.shape(), all.shape());
        assert_eq!(all.obs().index_name(), Some("cell"));
        assert_eq!(all.var().index_name(), None);
        assert_eq!(coll.var_names().unwrap(), all.var_names());
        assert_eq!(coll.obs_names().unwrap(), all.obs_names());
        let shuffled: Vec<usize> = (0..300).map(|i| (i * 7919) % all.n_obs()).collect();
        let cases = [
            (Selection::All, Selection::All),
            // Across both boundaries, read file by file.
            (Selection::from(650..800), Selection::from(vec![5, 1, 3])),
            // Repeated genes (every gene, one twice).
            (
                Selection::from(690..760),
                Selection::from((0..all.n_vars()).chain([7]).collect::<Vec<_>>()),
            ),
            // Shuffled across files: gathered.
            (Selection::from(shuffled), Selection::slice(None, None, -7)),
            (
                Selection::Mask((0..all.n_obs()).map(|i| i % 5 == 0).collect()),
                Selection::All,
            ),
        ];
        for (obs, var) in cases {
            let expected = all.subset(&obs, &var).unwrap();
            let view = coll.slice(&obs, &var).unwrap();
            assert_eq!(view.to_memory().unwrap(), expected, "{obs:?}");
            assert_eq!(view.obs_names().unwrap(), expected.obs_names());
            assert_eq!(&view.obs().unwrap(), expected.obs());
            assert_eq!(&view.var().unwrap(), expected.var());
            for axis in [Axis::Obs, Axis::Var] {
                let frame = match axis {
                    Axis::Obs => expected.obs(),
                    Axis::Var => expected.var(),
                };
                assert_eq!(view.index_name(axis).as_deref(), frame.index_name());
            }
            // Chunked, the same rows.
            let chunks: Vec<(std::ops::Range<usize>, Matrix)> =
                view.chunk_x(37).unwrap().map(Result::unwrap).collect();
            let mut next = 0;
            for (rows, m) in &chunks {
                assert_eq!(rows.start, next);
                assert!(rows.len() <= 37);
                let part = expected.x().unwrap().subset(
                    &annpage::AxisIndex::range(rows.clone(), expected.n_obs()).unwrap(),
                    &annpage::AxisIndex::full(expected.n_vars()),
                );
                assert_eq!(m, &part.unwrap());
                next = rows.end;
            }
            assert_eq!(next, expected.n_obs());
            // Written by streaming, read back equal.
            let out = dir.path().join("out.h5ad");
            view.write_h5ad(&out, &WriteOptions::default()).unwrap();
            assert_eq!(read_h5ad(&out).unwrap(), expected);
        }
    }
}

#[test]
fn views_of_views_compose_and_names_select() {
    let dir = tempfile::tempdir().unwrap();
    let paths = parts(dir.path());
    let coll = read_collection(&paths, &outer(), &BackedOptions::default()).unwrap();
    let all = whole(&paths, &outer());
    let first = coll
        .slice(&Selection::from(600..900), &Selection::All)
        .unwrap();
    let names = vec![all.obs_names()[760].clone(), all.obs_names()[610].clone()];
    let second = first
        .slice(&Selection::names(names.clone()), &Selection::from(10..20))
        .unwrap();
    let expected = all
        .subset(&Selection::names(names), &Selection::from(10..20))
        .unwrap();
    assert_eq!(second.to_memory().unwrap(), expected);
    assert_eq!(
        second.layer_to_memory("counts").unwrap(),
        expected.layers()["counts"]
    );
}

#[test]
fn one_cache_for_every_file_and_clear_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let paths = parts(dir.path());
    let budget = BackedOptions {
        cache_bytes: 1 << 20,
        ..Default::default()
    };
    let coll = read_collection(&paths, &outer(), &budget).unwrap();
    let mut cells = 0;
    for chunk in coll.chunk_x(100).unwrap() {
        cells += chunk.unwrap().0.len();
    }
    assert_eq!(cells, 2000);
    let stats = coll.cache_stats();
    assert_eq!(stats.budget, 1 << 20);
    assert!(stats.bytes_held <= stats.budget);
    assert!(coll.files().iter().all(|f| f.cache_budget() == 1 << 20));

    let err = coll.layer_to_memory("nope").unwrap_err().to_string();
    assert!(
        err.contains("no layer 'nope'") && err.contains("counts"),
        "{err}"
    );
    let along_var = ConcatOptions {
        axis: Axis::Var,
        ..Default::default()
    };
    let err = read_collection(&paths, &along_var, &budget).unwrap_err();
    assert!(err.to_string().contains("along obs"), "{err}");
    let none: [PathBuf; 0] = [];
    assert!(read_collection(&none, &outer(), &budget).is_err());
    let missing = [paths[0].clone(), dir.path().join("missing.h5ad")];
    let err = read_collection(&missing, &outer(), &budget).unwrap_err();
    assert!(err.to_string().contains("missing.h5ad"), "{err}");
}

/// The reads a server answers from a collection alone: one obs/var column, one obsm entry and
/// the stored values of a block, each what the whole selection gives (columns equal to
/// `obs()`'s, obsm equal to `annotations()`'s, stored values at least the block's non-zeros).
#[test]
fn one_column_one_embedding_and_a_blocks_size_are_the_selections() {
    let dir = tempfile::tempdir().unwrap();
    let paths = parts(dir.path());
    for options in [ConcatOptions::default(), outer()] {
        let c = read_collection(&paths, &options, &BackedOptions::default()).unwrap();
        let picks = Selection::positions([1999, 3, 720, 701, 0, 1500]);
        let genes = Selection::positions([5, 1, 4]);
        for view in [c.clone(), c.slice(&picks, &genes).unwrap()] {
            for axis in [Axis::Obs, Axis::Var] {
                let frame = match axis {
                    Axis::Obs => view.obs().unwrap(),
                    Axis::Var => view.var().unwrap(),
                };
                let keys = match axis {
                    Axis::Obs => view.obs_keys().unwrap(),
                    Axis::Var => view.var_keys().unwrap(),
                };
                assert!(keys.iter().eq(frame.columns().keys()));
                // var keeps no columns without `merge`.
                assert!(axis == Axis::Var || !frame.columns().is_empty());
                for (name, column) in frame.columns() {
                    let alone = view.frame_column(axis, name).unwrap();
                    assert_eq!(
                        format!("{alone:?}"),
                        format!("{:?}", Some(column)),
                        "{name}"
                    );
                }
                assert!(view.frame_column(axis, "no such").unwrap().is_none());
            }
            let annotations = view.annotations().unwrap();
            assert!(!view.obsm_keys().unwrap().is_empty());
            for key in view.obsm_keys().unwrap() {
                assert_eq!(view.obsm(&key).unwrap(), annotations.obsm()[&key], "{key}");
            }
            assert!(view.obsm("no such").is_err());
            let layers = view.layer_names().to_vec();
            assert_eq!(layers.is_empty(), options.join == Join::Inner);
            for layer in std::iter::once(None).chain(layers.iter().map(|l| Some(l.as_str()))) {
                let m = match layer {
                    None => view.x_to_memory().unwrap(),
                    Some(l) => view.layer_to_memory(l).unwrap(),
                };
                let Matrix::Sparse(s) = m else {
                    panic!("sparse expected")
                };
                let bound = view.stored_values(layer).unwrap();
                assert!(bound >= s.nnz() as u64, "{bound} < {}", s.nnz());
                let (n, k) = view.shape();
                assert!(bound <= (n * k) as u64);
            }
        }
    }
}

#[test]
fn a_scattered_read_over_more_files_than_read_threads_equals_the_concatenation() {
    // Eleven files (more than the files read at once): the same three parts, repeated.
    let dir = tempfile::tempdir().unwrap();
    let three = parts(dir.path());
    let paths: Vec<PathBuf> = (0..11).map(|i| three[i % 3].clone()).collect();
    let options = ConcatOptions {
        join: Join::Outer,
        index_unique: Some("-".into()),
        ..Default::default()
    };
    let all = whole(&paths, &options);
    let coll = read_collection(&paths, &options, &BackedOptions::default()).unwrap();
    // Cells from every file, going back and forth between them.
    let n = all.n_obs();
    let cells: Vec<usize> = (0..400).map(|i| (i * 7919 + i / 3) % n).collect();
    let view = coll
        .slice(
            &Selection::positions(cells.iter().copied()),
            &Selection::All,
        )
        .unwrap();
    let expected = all
        .subset(
            &Selection::positions(cells.iter().copied()),
            &Selection::All,
        )
        .unwrap();
    assert_eq!(view.obs_names().unwrap(), expected.obs_names());
    assert_eq!(view.x_to_memory().unwrap(), *expected.x().unwrap());
}

#[test]
fn shuffled_batches_of_a_collection_equal_the_concatenations_rows() {
    let dir = tempfile::tempdir().unwrap();
    let paths = parts(dir.path());
    let want = whole(&paths, &outer());
    let c = read_collection(&paths, &outer(), &BackedOptions::default()).unwrap();
    let opts = annpage::backed::BatchOptions {
        batch_size: 128,
        run_rows: 32,
        preload_runs: 6,
        seed: 5,
        ..Default::default()
    };
    let mut seen = vec![false; c.n_obs()];
    for layer in [None, Some("counts")] {
        seen.fill(false);
        for batch in c.batches(layer, &opts).unwrap() {
            let batch = batch.unwrap();
            let rows = Selection::positions(batch.rows.iter().copied());
            let expected = want.subset(&rows, &Selection::All).unwrap();
            let m = match layer {
                None => expected.x().unwrap(),
                Some(k) => &expected.layers()[k],
            };
            assert_eq!(&batch.x, m);
            for r in batch.rows {
                assert!(!seen[r], "row {r} twice");
                seen[r] = true;
            }
        }
        assert!(seen.iter().all(|&s| s));
    }
    assert!(c.batches(Some("nope"), &opts).is_err());
}

#[test]
fn given_batches_of_a_collection_equal_the_concatenations_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = parts(dir.path());
    // Two of the three files compressed: batches are read in windows.
    for i in [0, 2] {
        let gz = paths[i].with_extension("gz.h5ad");
        write_gzip(&read_h5ad(&paths[i]).unwrap(), &gz);
        paths[i] = gz;
    }
    let want = whole(&paths, &outer());
    let backed = BackedOptions {
        cache_bytes: 256 << 10,
        ..BackedOptions::default()
    };
    let c = read_collection(&paths, &outer(), &backed).unwrap();
    let n = c.n_obs();
    let order: Vec<Vec<usize>> = (0..30)
        .map(|b| (0..50).map(|i| (b * 7_919 + i * 104_729) % n).collect())
        .collect();
    for layer in [None, Some("counts")] {
        // The files' offsets are held from their first read on; the window's room while the
        // batches last.
        drop(c.batches_of(layer, Vec::new()).unwrap());
        let before = c.cache_stats().bytes_reserved;
        let batches = c.batches_of(layer, order.clone()).unwrap();
        let window = (128 << 10).min(((256 << 10) - before) / 2);
        assert_eq!(c.cache_stats().bytes_reserved, before + window);
        for (batch, rows) in batches.zip(&order) {
            let batch = batch.unwrap();
            assert_eq!(&batch.rows, rows);
            let expected = want
                .subset(&Selection::positions(rows.iter().copied()), &Selection::All)
                .unwrap();
            let m = match layer {
                None => expected.x().unwrap(),
                Some(k) => &expected.layers()[k],
            };
            assert_eq!(&batch.x, m);
        }
        assert_eq!(c.cache_stats().bytes_reserved, before);
    }
    assert!(c.batches_of(None, vec![vec![n]]).is_err());
}

/// A collection's loom and CSV files, its matrices read a chunk of cells at a time through a
/// small cache, are the in-memory writers' files for `to_memory()`.
#[test]
fn loom_and_csvs_are_the_in_memory_writers_files() {
    let dir = tempfile::tempdir().unwrap();
    let paths = parts(dir.path());
    let backed = BackedOptions {
        cache_bytes: 256 << 10,
        ..BackedOptions::default()
    };
    let coll = read_collection(&paths, &outer(), &backed).unwrap();
    let view = coll
        .slice(&Selection::slice(None, None, -3), &Selection::All)
        .unwrap();
    let want = view.to_memory().unwrap();
    view.write_csvs(dir.path().join("ours"), false, ',')
        .unwrap();
    want.write_csvs(dir.path().join("theirs"), false, ',')
        .unwrap();
    for name in ["obs.csv", "var.csv", "X.csv", "obsm.csv"] {
        let read = |d: &str| std::fs::read(dir.path().join(d).join(name)).unwrap();
        assert_eq!(read("ours"), read("theirs"), "{name}");
    }
    view.write_loom(dir.path().join("ours.loom"), false)
        .unwrap();
    want.write_loom(dir.path().join("theirs.loom"), false)
        .unwrap();
    let back = |n: &str| {
        annpage::read_loom(dir.path().join(n), &Default::default())
            .unwrap()
            .into_elements()
    };
    let (ours, theirs) = (back("ours.loom"), back("theirs.loom"));
    assert_eq!(ours.x, theirs.x);
    assert_eq!(ours.obs, theirs.obs);
    assert_eq!(ours.layers, theirs.layers);
}
