//! Streamed writes of backed selections: they read back as `to_memory()` gives, whole files as
//! `read_h5ad` reads them, gzip on several threads stored as h5py reads it, scipy's index
//! dtypes, and errors blamed on the input they come from.

use crate::support::*;

/// The streaming writer's file reads back as `to_memory()`, and (for whole major slices)
/// its HDF5 layout is the in-memory writer's, dataset by dataset, chunks included.
#[test]
fn written_files_read_back_as_to_memory() {
    let dir = tempfile::tempdir().unwrap();
    let options = [
        WriteOptions::default(),
        WriteOptions {
            compression: annpage::Compression::Gzip(4),
            ..Default::default()
        },
    ];
    for name in FIXTURES {
        let b = open(fixture(name), 512 << 10);
        let m = read_h5ad(fixture(name)).unwrap();
        for (k, (o, v)) in [
            (Selection::All, Selection::All),
            (Selection::slice(None, None, -2), Selection::All),
            (
                selection(3, m.n_obs(), m.obs_names()),
                selection(4, m.n_vars(), m.var_names()),
            ),
            (
                selection(8, m.n_obs(), m.obs_names()),
                selection(12, m.n_vars(), m.var_names()),
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let Ok(view) = b.slice(&o, &v) else { continue };
            let Ok(expected) = view.to_memory() else {
                assert!(view
                    .write_h5ad(dir.path().join("fail.h5ad"), &options[0])
                    .is_err());
                continue;
            };
            let opts = &options[k % 2];
            let out = dir.path().join(format!("{k}.h5ad"));
            view.write_h5ad(&out, opts).unwrap();
            let back = read_h5ad(&out).unwrap();
            let what = format!("{name}[{o}, {v}]");
            assert_elements_eq(
                back.clone().into_elements(),
                expected.clone().into_elements(),
                &what,
            );
            // Only whole rows of CSR matrices (and whole columns of CSC ones) are known in
            // length before writing; this fixture has both X and layers that are CSR/CSC.
            let whole_slices = matches!(v, Selection::All)
                && matches!(o, Selection::All | Selection::Slice { .. });
            if whole_slices && !name.starts_with("legacy") {
                let reference = dir.path().join(format!("{k}-memory.h5ad"));
                expected.write_h5ad(&reference, opts).unwrap();
                let csc = [
                    "x_csc_f64.h5ad",
                    "all_elements.h5ad",
                    "all_elements_gzip.h5ad",
                    "all_elements_lzf.h5ad",
                    "no_x.h5ad",
                ];
                if matches!(o, Selection::All) || !csc.contains(name) {
                    assert_same_layout(
                        &describe(&out).unwrap(),
                        &describe(&reference).unwrap(),
                        &what,
                    );
                }
            }
        }
    }
    // Nothing but the outputs is left in the directory.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// An unsliced handle is not a view: `to_memory()` is the file as `read_h5ad` reads it (unused
/// categories kept, as `empty_obs.h5ad` has them), and its streamed write (what `annpage
/// convert` does) reads back as that and has the layout `AnnData::write_h5ad` gives it.
#[test]
fn unsliced_handles_write_what_read_h5ad_reads() {
    let dir = tempfile::tempdir().unwrap();
    let gzip = WriteOptions {
        compression: annpage::Compression::Gzip(4),
        ..Default::default()
    };
    for name in FIXTURES {
        let b = open(fixture(name), 512 << 10);
        let m = read_h5ad(fixture(name)).unwrap();
        assert_same(b.to_memory(), Ok(m.clone()), name);
        for (k, opts) in [WriteOptions::default(), gzip.clone()].iter().enumerate() {
            let what = format!("{name} ({opts:?})");
            let out = dir.path().join(format!("{k}.h5ad"));
            b.write_h5ad(&out, opts).unwrap();
            assert_same(read_h5ad(&out), Ok(m.clone()), &what);
            if !name.starts_with("legacy") {
                let reference = dir.path().join(format!("{k}-memory.h5ad"));
                m.write_h5ad(&reference, opts).unwrap();
                let (got, want) = (describe(&out).unwrap(), describe(&reference).unwrap());
                assert_same_layout(&got, &want, &what);
            }
        }
    }
}

/// Gzip written on three compressing threads, in pieces far smaller than the matrices (a
/// 64 KiB budget), reads back equal, dense and sparse, whole and sliced, with HDF5's deflate
/// filter at the level asked on every matrix dataset.
/// Streamed gzip writes (compressed on several threads) read back equal, whole and sliced;
/// `tests/it/backed.rs` checks the datasets' filters.
#[test]
fn gzip_on_several_threads_reads_back_equal() {
    let dir = tempfile::tempdir().unwrap();
    let options = WriteOptions {
        compression: annpage::Compression::Gzip(6),
        ..Default::default()
    };
    let names = [
        "pbmc_like_csr.h5ad",
        "all_elements.h5ad",
        "x_csc_f64.h5ad",
        "x_dense_f32.h5ad",
        "x_dense_bool.h5ad",
        "x_nan_inf.h5ad",
    ];
    for name in names {
        let b = read_h5ad_backed(
            fixture(name),
            Mode::Read,
            BackedOptions {
                cache_bytes: 64 << 10,
                read: ReadOptions::with_threads(3),
                ..BackedOptions::default()
            },
        )
        .unwrap();
        let m = read_h5ad(fixture(name)).unwrap();
        let out = dir.path().join(name);
        b.write_h5ad(&out, &options).unwrap();
        assert_same(read_h5ad(&out), Ok(m.clone()), name);
        let sliced = b
            .slice(&Selection::slice(None, None, -3), &Selection::All)
            .unwrap();
        let out = dir.path().join(format!("sliced-{name}"));
        sliced.write_h5ad(&out, &options).unwrap();
        assert_same(read_h5ad(&out), sliced.to_memory(), name);
    }
}

/// A streamed gzip write (compressed on several threads, not by libhdf5) stores every dataset
/// of `X` with the deflate filter at the level asked for, as h5py reads it.
#[test]
fn gzip_writes_compress_every_matrix_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let options = WriteOptions {
        compression: annpage::Compression::Gzip(6),
        ..Default::default()
    };
    for name in ["pbmc_like_csr.h5ad", "x_csc_f64.h5ad", "x_dense_f32.h5ad"] {
        let b = read_h5ad_backed(
            annpage_tests::fixtures_dir().join(name),
            Mode::Read,
            BackedOptions {
                cache_bytes: 64 << 10,
                read: annpage::backed::ReadOptions::with_threads(3),
                ..BackedOptions::default()
            },
        )
        .unwrap();
        let out = dir.path().join(name);
        b.write_h5ad(&out, &options).unwrap();
        let f = hdf5::File::open(&out).unwrap();
        let x = f
            .group("X")
            .map(|g| ["data", "indices", "indptr"].map(|d| g.dataset(d)));
        let datasets: Vec<hdf5::Dataset> = match x {
            Ok(parts) => parts.into_iter().map(Result::unwrap).collect(),
            Err(_) => vec![f.dataset("X").unwrap()],
        };
        for ds in datasets {
            assert_eq!(
                ds.filters(),
                [hdf5::filters::Filter::Deflate(6)],
                "{name}: {}",
                ds.name()
            );
        }
    }
}

/// The sparse writer picks int64 indices exactly when scipy would.
#[test]
fn written_sparse_indices_have_scipy_dtypes() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(
        annpage_tests::fixtures_dir().join("x_csr_f32.h5ad"),
        1 << 20,
    );
    let out = dir.path().join("o.h5ad");
    b.slice(&Selection::All, &Selection::Positions(vec![3, 3, 0]))
        .unwrap()
        .write_h5ad(&out, &WriteOptions::default())
        .unwrap();
    let f = hdf5::File::open(&out).unwrap();
    for member in ["indices", "indptr"] {
        let ds = f.dataset(&format!("X/{member}")).unwrap();
        assert_eq!(ds.dtype().unwrap().size(), 4, "{member}");
        assert!(ds.is_resizable());
    }
}

/// An error met reading the input while streaming a selection out names the input file and
/// element, not the output being written (which is not left behind).
#[test]
fn streaming_blames_a_bad_input_not_the_output() {
    let (dir, path) = scratch("x_csr_f32.h5ad");
    {
        let file = hdf5::File::open_rw(&path).unwrap();
        let ds = file.dataset("X/indices").unwrap();
        let mut indices: Vec<i32> = ds.read_raw().unwrap();
        *indices.last_mut().unwrap() = 1_000_000;
        ds.write_raw(&indices).unwrap();
    }
    let out = dir.path().join("out.h5ad");
    let e = open(&path, 1 << 20)
        .write_h5ad(&out, &WriteOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.starts_with(&format!("{}: /X", path.display())), "{e}");
    assert!(e.contains("1000000"), "{e}");
    assert!(!out.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn a_gene_major_copy_holds_x_as_csc_whatever_x_was() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "pbmc_like_csr.h5ad",
        "x_csc_f64.h5ad",
        "x_dense_i32.h5ad",
        "x_csr_i64.h5ad",
    ] {
        let backed = open(fixture(name), 1 << 20);
        // A view: every other cell backwards, genes in another order.
        let n_vars = backed.n_vars();
        let genes: Vec<usize> = (0..n_vars).rev().step_by(2).collect();
        let view = backed
            .slice(
                &Selection::slice(None, None, -2),
                &Selection::positions(genes.clone()),
            )
            .unwrap();
        let out = dir.path().join(format!("{name}.genes.h5ad"));
        // A small bound: many passes, each gathering a few genes.
        view.write_gene_major(&out, 4 << 10, &WriteOptions::default())
            .unwrap();
        let copy = read_h5ad(&out).unwrap();
        let expected = read_h5ad(fixture(name))
            .unwrap()
            .subset(
                &Selection::slice(None, None, -2),
                &Selection::positions(genes),
            )
            .unwrap();
        // Canonical CSC: each gene's cells in ascending order.
        let Some(Matrix::Sparse(csc)) = copy.x() else {
            panic!("{name}: X is not sparse")
        };
        assert_eq!(csc.format(), SparseFormat::Csc);
        for g in 0..csc.shape().1 {
            let cells = &csc.indices()[csc.indptr()[g] as usize..csc.indptr()[g + 1] as usize];
            assert!(cells.windows(2).all(|w| w[0] < w[1]), "{name}: gene {g}");
        }
        let dense = |m: &Matrix| m.to_dense().unwrap();
        assert_eq!(
            dense(copy.x().unwrap()),
            dense(expected.x().unwrap()),
            "{name}"
        );
        assert_eq!(copy.obs_names(), expected.obs_names(), "{name}");
        assert_eq!(copy.var_names(), expected.var_names(), "{name}");
    }
}

#[test]
fn a_gzip_level_out_of_range_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.h5ad");
    let options = WriteOptions {
        compression: annpage::Compression::Gzip(12),
        ..WriteOptions::default()
    };
    let e = read_h5ad(fixture("all_elements.h5ad"))
        .unwrap()
        .write_h5ad(&out, &options)
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("{}: ", out.display()))
            && msg.contains("gzip level 12 is out of range 0–9"),
        "{msg}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// The backed loom and CSV writers, which read the matrices a block at a time, write what the
/// in-memory writers write for `to_memory()`: CSV files byte for byte, loom files that read
/// back equal.
#[test]
fn backed_loom_and_csvs_are_the_in_memory_writers_files() {
    let dir = tempfile::tempdir().unwrap();
    let (mut csvs, mut looms) = (0, 0);
    for name in FIXTURES {
        let b = open(fixture(name), 512 << 10);
        let m = read_h5ad(fixture(name)).unwrap();
        let selections = [
            (Selection::All, Selection::All),
            (
                selection(8, m.n_obs(), m.obs_names()),
                selection(12, m.n_vars(), m.var_names()),
            ),
        ];
        for (k, (o, v)) in selections.into_iter().enumerate() {
            let what = format!("{name}[{o}, {v}]");
            let Ok(view) = b.slice(&o, &v) else { continue };
            let Ok(expected) = view.to_memory() else {
                continue;
            };
            let (ours, theirs) = (
                dir.path().join(format!("{k}-b")),
                dir.path().join(format!("{k}-m")),
            );
            let written = view.write_csvs(&ours, false, '\t');
            assert_eq!(
                written.is_ok(),
                expected.write_csvs(&theirs, false, '\t').is_ok(),
                "{what}: {written:?}"
            );
            for entry in walk(&theirs) {
                let rel = entry.strip_prefix(&theirs).unwrap();
                let (a, b) = (std::fs::read(ours.join(rel)), std::fs::read(&entry));
                assert_eq!(a.unwrap(), b.unwrap(), "{what}: {}", rel.display());
                csvs += 1;
            }
            // Transposed: the blocks of the other axis, each transposed.
            let (t_ours, t_theirs) = (ours.with_extension("t"), theirs.with_extension("t"));
            if view.transpose().write_csvs(&t_ours, false, ',').is_ok() {
                expected
                    .transpose()
                    .write_csvs(&t_theirs, false, ',')
                    .unwrap();
                for entry in walk(&t_theirs) {
                    let rel = entry.strip_prefix(&t_theirs).unwrap();
                    let (a, b) = (std::fs::read(t_ours.join(rel)), std::fs::read(&entry));
                    assert_eq!(a.unwrap(), b.unwrap(), "{what}.T: {}", rel.display());
                    csvs += 1;
                }
            }
            let (ours, theirs) = (ours.with_extension("loom"), theirs.with_extension("loom"));
            match (
                view.write_loom(&ours, false),
                expected.write_loom(&theirs, false),
            ) {
                (Ok(()), Ok(())) => {
                    let options = annpage::LoomOptions::default();
                    let back = |p| annpage::read_loom(p, &options).unwrap().into_elements();
                    assert_elements_eq(back(&ours), back(&theirs), &what);
                    looms += 1;
                }
                (Err(a), Err(b)) => assert_eq!(
                    a.to_string().replace(&*ours.to_string_lossy(), ""),
                    b.to_string().replace(&*theirs.to_string_lossy(), ""),
                    "{what}"
                ),
                (a, b) => panic!("{what}: backed {a:?}, in memory {b:?}"),
            }
        }
    }
    assert!(
        csvs > 100 && looms > 10,
        "{csvs} CSV files, {looms} loom files compared"
    );
}

/// The files under `dir`, recursively.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// X.csv of a CSC matrix through a small cache reads the matrix in pieces as large as the
/// budget allows (about 18 times its size here), not once per block of rows (a block of text
/// holds a row or two of a wide matrix: a thousand times).
#[test]
fn csv_rows_of_a_matrix_stored_by_columns_read_it_a_few_times() {
    let dir = tempfile::tempdir().unwrap();
    let (n_obs, n_vars) = (3000, 400);
    let dense = Array2::from_shape_fn((n_obs, n_vars), |(i, j)| {
        if (i * 7 + j * 13) % 20 == 0 {
            (i + j) as f32
        } else {
            0.0
        }
    });
    let x = Matrix::from(dense).to_sparse(SparseFormat::Csc).unwrap();
    let mut adata = AnnData::new(n_obs, n_vars);
    adata.set_x(Some(x)).unwrap();
    let path = dir.path().join("csc.h5ad");
    adata.write_h5ad(&path, &WriteOptions::default()).unwrap();
    let b = open(&path, 256 << 10);
    let stored = b.x().unwrap().stored_values().unwrap() * 8;
    b.write_csvs(dir.path().join("out"), false, ',').unwrap();
    let read = b.cache_stats().bytes_read;
    assert!(read <= 40 * stored, "{read} bytes read for {stored} stored");
    let want = dir.path().join("memory");
    adata.write_csvs(&want, false, ',').unwrap();
    let x_csv = |d: &Path| std::fs::read(d.join("X.csv")).unwrap();
    assert_eq!(x_csv(&dir.path().join("out")), x_csv(&want));
}

/// `ZarrOptions::x_chunks` chunks a dense X at the root, written whole or streamed from a
/// backed handle (anndata's `write_zarr(chunks=...)`); the other arrays keep their guessed
/// chunks, and a zero is refused before anything is written.
#[test]
fn x_chunks_shape_a_dense_x_in_zarr() {
    use annpage::data::{ArrayData, Matrix};
    use annpage::{AnnData, StoreKind, WriteOptions, ZarrOptions};
    let dir = tempfile::tempdir().unwrap();
    let mut a = AnnData::new(40, 9);
    let x = ndarray::Array2::from_shape_fn((40, 9), |(i, j)| (i * 9 + j) as f32);
    a.set_x(Some(Matrix::Dense(ArrayData::from(x)))).unwrap();
    let chunked = |x_chunks| WriteOptions {
        store: StoreKind::Zarr,
        zarr: ZarrOptions {
            x_chunks,
            ..ZarrOptions::default()
        },
        ..WriteOptions::default()
    };
    let inner_chunks = |store: &std::path::Path, array: &str| -> serde_json::Value {
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(store.join(array).join("zarr.json")).unwrap())
                .unwrap();
        let sharding = &meta["codecs"][0]["configuration"]["chunk_shape"];
        if sharding.is_null() {
            meta["chunk_grid"]["configuration"]["chunk_shape"].clone()
        } else {
            sharding.clone()
        }
    };
    let whole = dir.path().join("whole.zarr");
    a.write_zarr(&whole, &chunked(Some([7, 4]))).unwrap();
    assert_eq!(inner_chunks(&whole, "X"), serde_json::json!([7, 4]));
    assert_eq!(annpage::read_zarr(&whole).unwrap(), a);
    let h5 = dir.path().join("a.h5ad");
    a.write_h5ad(&h5, &WriteOptions::default()).unwrap();
    let b = annpage::backed::read_h5ad_backed(&h5, annpage::backed::Mode::Read, Default::default())
        .unwrap();
    let streamed = dir.path().join("streamed.zarr");
    b.write_zarr(&streamed, &chunked(Some([5, 9]))).unwrap();
    assert_eq!(inner_chunks(&streamed, "X"), serde_json::json!([5, 9]));
    assert_eq!(annpage::read_zarr(&streamed).unwrap(), a);
    let bad = dir.path().join("bad.zarr");
    assert!(a.write_zarr(&bad, &chunked(Some([0, 4]))).is_err());
    assert!(!bad.exists());
}
