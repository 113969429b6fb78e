//! Backed handles over files crafted with libhdf5: layouts `read_h5ad` fixes up, and inputs
//! broken in ways the writers cannot produce; how streamed writes store their datasets.

use std::path::{Path, PathBuf};

use annpage::backed::{read_h5ad_backed, BackedAnnData, BackedOptions, Mode};
use annpage::data::{ArrayData, Column, DataFrame, Element, Mapping, Matrix, Scalar};
use annpage::data::{SparseFormat, SparseMatrix};
use annpage::{read_h5ad, AnnData, Result, Selection, WriteOptions};
use annpage_engine::format::{write_h5ad, AnnDataElements, RawElements};
use ndarray::Array2;

fn open(path: impl AsRef<Path>, budget: usize) -> BackedAnnData {
    let options = BackedOptions {
        cache_bytes: budget,
        ..BackedOptions::default()
    };
    read_h5ad_backed(path, Mode::Read, options).unwrap()
}

fn scratch(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.h5ad");
    std::fs::copy(annpage_tests::fixtures_dir().join(name), &path).unwrap();
    (dir, path)
}

fn strings(v: &[&str]) -> ArrayData {
    ArrayData::from(v.to_vec())
}

/// Both succeed with equal objects, or both fail.
fn assert_same_object(got: Result<AnnData>, want: Result<AnnData>, what: &str) {
    match (got, want) {
        (Ok(g), Ok(w)) => {
            let debug = |a: AnnData| annpage_tests::layout_free_debug(&a.into_elements());
            assert!(debug(g) == debug(w), "{what}: the objects differ");
        }
        (Err(_), Err(_)) => {}
        (g, w) => panic!(
            "{what}: backed gave {:?}, in memory {:?}",
            g.map(|a| a.shape()),
            w.map(|a| a.shape())
        ),
    }
}

/// Layouts `read_h5ad` fixes up: neighbour graphs kept in `uns['neighbors']` (moved to
/// `obsp`), multi-column keys of anndata's oldest files (columns moved to `obsm`), and a
/// `raw` group without `X` (a copy of the main `X`, `var` and `varm`).
#[test]
fn fixed_up_layouts_match_read_h5ad() {
    let dir = tempfile::tempdir().unwrap();
    let (n_obs, n_vars) = (9, 5);
    let x = Matrix::Dense(ArrayData::from(Array2::from_shape_fn(
        (n_obs, n_vars),
        |(i, j)| (i * 10 + j) as f32,
    )));
    let graph = SparseMatrix::new(
        SparseFormat::Csr,
        (n_obs, n_obs),
        (0..=n_obs as u64).collect(),
        (0..n_obs as u32).rev().collect(),
        ArrayData::from((0..n_obs).map(|i| i as f64).collect::<Vec<_>>()),
    )
    .unwrap();
    let mut elems = AnnDataElements::empty(n_obs, n_vars);
    elems.x = Some(x.clone());
    let mut neighbors = Mapping::new();
    neighbors.insert("distances".into(), Element::Sparse(graph.clone()));
    neighbors.insert(
        "connectivities".into(),
        Element::Array(ArrayData::from(Array2::<f64>::eye(n_obs))),
    );
    neighbors.insert(
        "params".into(),
        Element::Scalar(Scalar::String("umap".into())),
    );
    elems
        .uns
        .insert("neighbors".into(), Element::Dict(neighbors));
    elems.varm.insert(
        "PCs".into(),
        Element::Array(ArrayData::from(Array2::<f64>::ones((n_vars, 2)))),
    );
    elems.raw = Some(RawElements {
        x: x.clone(),
        var: DataFrame::with_default_index(n_vars),
        varm: Mapping::new(),
    });
    let graphs = dir.path().join("graphs.h5ad");
    write_h5ad(&graphs, &elems, &WriteOptions::default()).unwrap();
    {
        // A raw group without X.
        let f = hdf5::File::open_rw(&graphs).unwrap();
        f.group("raw").unwrap().unlink("X").unwrap();
    }

    let mut multicol = AnnDataElements::empty(n_obs, n_vars);
    multicol.x = Some(x);
    for k in ["pc1", "pc2"] {
        multicol
            .obs
            .insert(k, Column::Array(ArrayData::from(vec![1.5f64; n_obs])))
            .unwrap();
    }
    multicol
        .obs
        .insert("kept", Column::Array(ArrayData::from(vec![2i64; n_obs])))
        .unwrap();
    multicol
        .uns
        .insert("obs_keys_multicol".into(), Element::Array(strings(&["pc"])));
    let old = dir.path().join("multicol.h5ad");
    write_h5ad(&old, &multicol, &WriteOptions::default()).unwrap();

    for path in [&graphs, &old] {
        let m = read_h5ad(path).unwrap();
        let b = open(path, 1 << 20);
        assert_eq!(b.obsp_keys().len(), m.obsp().len());
        assert_eq!(b.obsm_keys().len(), m.obsm().len());
        for (o, v) in [
            (Selection::All, Selection::All),
            (
                Selection::Positions(vec![8, 1, 1, 4]),
                Selection::slice(None, None, -2),
            ),
        ] {
            let what = format!("{}[{o}, {v}]", path.display());
            assert_same_object(
                b.slice(&o, &v).and_then(|s| s.to_memory()),
                m.subset(&o, &v),
                &what,
            );
            let out = dir.path().join("out.h5ad");
            b.slice(&o, &v)
                .unwrap()
                .write_h5ad(&out, &WriteOptions::default())
                .unwrap();
            assert_same_object(
                read_h5ad(&out),
                m.subset(&o, &v),
                &format!("{what} written"),
            );
        }
    }
    let m = read_h5ad(&graphs).unwrap();
    assert!(m.obsp().contains_key("distances") && m.raw().is_some());
    let b = open(&graphs, 1 << 20);
    assert_eq!(b.cache_stats().bytes_read, 0);
    assert_eq!(b.uns().unwrap(), m.uns().clone());
    assert_eq!(
        b.cache_stats().bytes_read,
        0,
        "uns without its graphs reads no matrix"
    );
    assert_eq!(
        b.obsp("distances").unwrap().to_memory().unwrap(),
        Matrix::Sparse(graph)
    );
    assert!(b.cache_stats().bytes_read > 0);
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

/// A streamed gzip write (compressed on several threads, not by libhdf5) stores every dataset
/// of `X` with the deflate filter at the level asked for, as h5py reads it.
#[test]
fn gzip_writes_compress_every_matrix_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let options = WriteOptions {
        compression: annpage::Compression::Gzip(6),
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
