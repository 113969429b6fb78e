//! Backed selections equal the same selections of the whole file read in memory: every kind
//! of selection, views of views, NaN, every accessor, chunked passes, the layouts `read_h5ad`
//! fixes up (crafted with libhdf5), and random matrices.

use crate::support::*;

/// For every fixture and many selection pairs, `slice(..).to_memory()` equals
/// `read_h5ad(..).subset(..)`; so does a slice of a slice and a view of a view.
#[test]
fn slices_equal_in_memory_subsets() {
    for name in FIXTURES {
        let b = open(fixture(name), 4 << 20);
        let m = read_h5ad(fixture(name)).unwrap();
        let obs_sel = fixed_selections(m.n_obs(), m.obs_names());
        let var_sel = fixed_selections(m.n_vars(), m.var_names());
        for (i, o) in obs_sel.iter().enumerate() {
            for (j, v) in var_sel.iter().enumerate() {
                if (i + j) % 2 == 1 && i != 0 && j != 0 {
                    continue; // half the pairs, every selection on both axes
                }
                let what = format!("{name}[{o}, {v}]");
                let got = b.slice(o, v).and_then(|s| s.to_memory());
                assert_same(got, m.subset(o, v), &what);
            }
        }
        // A subset of a subset, with names resolved among the first subset's names.
        for seed in 0..6u64 {
            let o1 = selection(seed * 3 + 1, m.n_obs(), m.obs_names());
            let v1 = selection(seed * 5 + 2, m.n_vars(), m.var_names());
            let Ok(first) = m.view(&o1, &v1) else {
                assert!(b.slice(&o1, &v1).is_err(), "{name}: {o1} {v1}");
                continue;
            };
            let names_o: Vec<CompactString> = first.obs_names().map(Into::into).collect();
            let names_v: Vec<CompactString> = first.var_names().map(Into::into).collect();
            let o2 = selection(seed * 7 + 3, first.n_obs(), &names_o);
            let v2 = selection(seed * 11 + 4, first.n_vars(), &names_v);
            let want = first.view(&o2, &v2).and_then(|v| v.to_adata());
            let got = b
                .slice(&o1, &v1)
                .and_then(|s| s.slice(&o2, &v2))
                .and_then(|s| s.to_memory());
            assert_same(got, want, &format!("{name}[{o1}, {v1}][{o2}, {v2}]"));
        }
    }
}

/// Matrices with NaN: compared by their bits (through the `Debug` form, which prints NaN).
#[test]
fn slices_with_nan_match_in_memory_subsets() {
    for name in FIXTURES.iter().filter(|n| has_nan(n)) {
        let b = open(fixture(name), 4 << 20);
        let m = read_h5ad(fixture(name)).unwrap();
        for seed in 0..8u64 {
            let o = selection(seed, m.n_obs(), m.obs_names());
            let v = selection(seed + 3, m.n_vars(), m.var_names());
            let got = b.slice(&o, &v).and_then(|s| s.to_memory());
            let want = m.subset(&o, &v);
            match (got, want) {
                (Ok(g), Ok(w)) => assert_elements_eq(
                    g.into_elements(),
                    w.into_elements(),
                    &format!("{name}[{o}, {v}]"),
                ),
                (Err(_), Err(_)) => {}
                (g, w) => panic!("{name}[{o}, {v}]: {:?} vs {:?}", g.is_ok(), w.is_ok()),
            }
        }
    }
}

#[test]
fn accessors_give_the_selection_of_each_element() {
    let b = open(fixture("all_elements.h5ad"), 1 << 20);
    let m = read_h5ad(fixture("all_elements.h5ad")).unwrap();
    let o = Selection::Positions(vec![39, 0, 7, 7, -2]);
    let v = Selection::slice(Some(10), None, -3);
    let view = b.slice(&o, &v).unwrap();
    let want = m.subset(&o, &v).unwrap();
    assert!(view.is_view());
    assert_eq!(view.shape(), want.shape());
    assert_eq!(view.obs_names().unwrap(), want.obs_names());
    assert_eq!(view.var_names().unwrap(), want.var_names());
    assert_eq!(&view.obs().unwrap(), want.obs());
    assert_eq!(&view.var().unwrap(), want.var());
    assert_eq!(&view.uns().unwrap(), want.uns());
    assert_eq!(Some(&view.x().unwrap().to_memory().unwrap()), want.x());
    for key in view.layer_names() {
        assert_eq!(
            view.layer(&key).unwrap().to_memory().unwrap(),
            want.layers()[&key]
        );
    }
    for key in view.obsm_keys() {
        assert_eq!(view.obsm(&key).unwrap(), want.obsm()[&key], "obsm {key}");
    }
    for key in view.varm_keys() {
        assert_eq!(view.varm(&key).unwrap(), want.varm()[&key], "varm {key}");
    }
    for key in view.obsp_keys() {
        assert_eq!(
            view.obsp(&key).unwrap().to_memory().unwrap(),
            want.obsp()[&key]
        );
    }
    for key in view.varp_keys() {
        assert_eq!(
            view.varp(&key).unwrap().to_memory().unwrap(),
            want.varp()[&key]
        );
    }
    let raw = view.raw_x().unwrap();
    assert_eq!(raw.to_memory().unwrap(), want.raw().unwrap().x);
    assert_eq!(raw.shape(), (5, 16));

    // The whole handle shows obs as stored: no category is pruned.
    assert_eq!(&b.obs().unwrap(), m.obs());
    assert_eq!(&b.uns().unwrap(), m.uns());

    // Unknown keys name what there is.
    let e = b.layer("nope").unwrap_err();
    assert!(e.to_string().contains("layers has no key 'nope'"), "{e}");
    assert!(e.to_string().contains("all_elements.h5ad"), "{e}");
    assert!(b.obsm("nope").is_err());
    assert!(b
        .slice(&Selection::names(["no_such_cell"]), &Selection::All)
        .is_err());
    assert!(b.chunk_x(0).is_err());
}

#[test]
fn rows_and_columns_of_a_view() {
    for name in ["all_elements.h5ad", "x_csc_f64.h5ad", "x_dense_f32.h5ad"] {
        let b = open(fixture(name), 1 << 20);
        let m = read_h5ad(fixture(name)).unwrap();
        let o = Selection::slice(None, None, -2);
        let v = Selection::Positions(vec![3, 1, 1, 0]);
        let view = b.slice(&o, &v).unwrap();
        let want = m.subset(&o, &v).unwrap();
        let x = view.x().unwrap();
        let (r, c) = view.shape();
        // Composed with the view's indexes, as anndata composes a view of a view.
        let whole = m.x().unwrap();
        let (vr, vc) = (view.obs_index(), view.var_index());
        for sel in fixed_selections(c, want.var_names()) {
            let Ok(cols) = sel.resolve(c, Some(want.var_names())) else {
                continue;
            };
            let expected = whole.subset(vr, &vc.compose(&cols).unwrap()).unwrap();
            assert_eq!(x.columns(&sel).unwrap(), expected, "{name} columns {sel}");
        }
        for sel in fixed_selections(r, want.obs_names()) {
            let Ok(rows) = sel.resolve(r, Some(want.obs_names())) else {
                continue;
            };
            let expected = whole.subset(&vr.compose(&rows).unwrap(), vc).unwrap();
            assert_eq!(x.rows(&sel).unwrap(), expected, "{name} rows {sel}");
        }
        // On the whole file, the selection is the only one.
        let x = b.x().unwrap();
        let cols = Selection::Positions(vec![2, 2, 0]);
        let idx = cols.resolve(m.n_vars(), None).unwrap();
        let expected = whole.subset(&AxisIndex::full(m.n_obs()), &idx).unwrap();
        assert_eq!(x.columns(&cols).unwrap(), expected, "{name}");
    }
}

/// Each chunk equals the same rows of the in-memory subset, and the chunks cover it.
#[test]
fn chunks_cover_the_selection() {
    for name in [
        "all_elements.h5ad",
        "x_csc_f64.h5ad",
        "x_dense_i64.h5ad",
        "pbmc_like_csr.h5ad",
    ] {
        let b = open(fixture(name), 256 << 10);
        let m = read_h5ad(fixture(name)).unwrap();
        for seed in 0..5u64 {
            let o = selection(seed, m.n_obs(), m.obs_names());
            let v = selection(seed + 1, m.n_vars(), m.var_names());
            let view = b.slice(&o, &v).unwrap();
            let want = m.subset(&o, &v).unwrap();
            let wx = want.x().unwrap();
            let (rows, cols) = wx.shape();
            let mut covered = 0;
            for chunk_rows in [1, 7, 1000] {
                covered = 0;
                for chunk in view.chunk_x(chunk_rows).unwrap() {
                    let (range, piece) = chunk.unwrap();
                    assert_eq!(range.start, covered);
                    assert!(range.len() <= chunk_rows);
                    let idx = AxisIndex::range(range.clone(), rows).unwrap();
                    let expected = wx.subset(&idx, &AxisIndex::full(cols)).unwrap();
                    assert_eq!(piece, expected, "{name} {o} {v} {range:?}");
                    covered = range.end;
                }
                assert_eq!(covered, rows);
            }
            assert_eq!(covered, rows);
        }
    }
    let b = open(fixture("all_elements.h5ad"), 1 << 20);
    let m = read_h5ad(fixture("all_elements.h5ad")).unwrap();
    let n: usize = b
        .chunk_layer("counts", 16)
        .unwrap()
        .map(|c| {
            let (r, piece) = c.unwrap();
            let idx = AxisIndex::range(r.clone(), 40).unwrap();
            assert_eq!(
                piece,
                m.layers()["counts"]
                    .subset(&idx, &AxisIndex::full(12))
                    .unwrap()
            );
            r.len()
        })
        .sum();
    assert_eq!(n, 40);
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
            assert_same(
                b.slice(&o, &v).and_then(|s| s.to_memory()),
                m.subset(&o, &v),
                &what,
            );
            let out = dir.path().join("out.h5ad");
            b.slice(&o, &v)
                .unwrap()
                .write_h5ad(&out, &WriteOptions::default())
                .unwrap();
            assert_same(
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

mod properties {
    use annpage_engine::data::DType;
    use annpage_engine::format::write_h5ad;
    use proptest::prelude::*;

    use super::*;

    /// A random matrix of `shape` in `format` (0 dense, 1 CSR, 2 CSC) of dtype `dtype`.
    fn matrix(seed: u64, shape: (usize, usize), format: u8, dtype: DType) -> Matrix {
        let mut r = super::Rng::new(seed);
        let density = r.below(4); // 0 = empty … 3 = about half
        let values: Vec<f64> = (0..shape.0 * shape.1)
            .map(|_| {
                if r.below(6) < density {
                    (r.below(2000) as f64 - 1000.0) / 8.0
                } else {
                    0.0
                }
            })
            .collect();
        let dense = Array2::from_shape_vec(shape, values).unwrap();
        let typed = |a: &Array2<f64>| match dtype {
            DType::F32 => ArrayData::from(a.mapv(|v| v as f32)),
            DType::I64 => ArrayData::from(a.mapv(|v| v as i64)),
            DType::Bool => ArrayData::from(a.mapv(|v| v != 0.0)),
            _ => ArrayData::from(a.clone()),
        };
        if format == 0 {
            return Matrix::Dense(typed(&dense));
        }
        // Major slices are rows of CSR, columns of CSC.
        let oriented = if format == 1 { dense.view() } else { dense.t() };
        let (mut indptr, mut indices, mut data) = (vec![0u64], Vec::new(), Vec::new());
        for slice in oriented.rows() {
            for (j, &v) in slice.iter().enumerate() {
                if v != 0.0 {
                    indices.push(j as u32);
                    data.push(v);
                }
            }
            indptr.push(indices.len() as u64);
        }
        let n = data.len();
        let data = typed(&Array2::from_shape_vec((n, 1), data).unwrap());
        let data = annpage_engine::map_array!(data, a => a.into_shape_with_order(ndarray::IxDyn(&[n])).unwrap());
        let format = if format == 1 {
            SparseFormat::Csr
        } else {
            SparseFormat::Csc
        };
        Matrix::Sparse(SparseMatrix::new(format, shape, indptr, indices, data).unwrap())
    }

    fn names(v: &AnnData, obs: bool) -> Vec<CompactString> {
        if obs {
            v.obs_names().to_vec()
        } else {
            v.var_names().to_vec()
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

        #[test]
        fn every_materialisation_equals_the_in_memory_subset(
            rows in 0usize..400,
            cols in 0usize..30,
            format in 0u8..3,
            dtype in prop::sample::select(vec![DType::F32, DType::F64, DType::I64, DType::Bool]),
            seeds in prop::array::uniform6(any::<u64>()),
            budget_kib in prop::sample::select(vec![0usize, 96, 4096]),
            chunk_rows in 1usize..150,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("m.h5ad");
            let mut elems = AnnDataElements::empty(rows, cols);
            elems.x = Some(matrix(seeds[0], (rows, cols), format, dtype));
            elems.layers.insert("other".into(), matrix(seeds[0] ^ 1, (rows, cols), (format + 1) % 3, DType::F64));
            write_h5ad(&path, &elems, &WriteOptions::default()).unwrap();
            let whole = AnnData::from_elements(elems).unwrap();
            let b = open(&path, budget_kib << 10);

            let o1 = selection(seeds[1], rows, whole.obs_names());
            let v1 = selection(seeds[2], cols, whole.var_names());
            let first = whole.subset(&o1, &v1).unwrap();
            let o2 = selection(seeds[3], first.n_obs(), &names(&first, true));
            let v2 = selection(seeds[4], first.n_vars(), &names(&first, false));
            let want = whole.view(&o1, &v1).unwrap().view(&o2, &v2).unwrap().to_adata().unwrap();
            let view = b.slice(&o1, &v1).unwrap().slice(&o2, &v2).unwrap();
            prop_assert_eq!(view.shape(), want.shape());

            // to_memory, and each matrix's own to_memory.
            prop_assert_eq!(view.to_memory().unwrap().into_elements(), want.clone().into_elements());
            let wx = want.x().unwrap();
            prop_assert_eq!(&view.x().unwrap().to_memory().unwrap(), wx);
            prop_assert_eq!(&view.layer("other").unwrap().to_memory().unwrap(), &want.layers()["other"]);

            // chunk_x: each chunk is the same rows of the subset.
            let (n, m) = wx.shape();
            let mut next = 0;
            for chunk in view.chunk_x(chunk_rows).unwrap() {
                let (range, piece) = chunk.unwrap();
                prop_assert_eq!(range.start, next);
                let idx = AxisIndex::range(range.clone(), n).unwrap();
                prop_assert_eq!(piece, wx.subset(&idx, &AxisIndex::full(m)).unwrap());
                next = range.end;
            }
            prop_assert_eq!(next, n);

            // columns and rows: a third selection, composed with the view's as anndata composes
            // a view of a view (scipy's stored order of a twice-cut sparse matrix may differ
            // from that of the matrix cut once with the composed index).
            let whole_x = whole.x().unwrap();
            let (vr, vc) = (view.obs_index(), view.var_index());
            let v3 = selection(seeds[5], m, want.var_names());
            let c3 = vc.compose(&v3.resolve(m, Some(want.var_names())).unwrap()).unwrap();
            prop_assert_eq!(view.x().unwrap().columns(&v3).unwrap(), whole_x.subset(vr, &c3).unwrap());
            let o3 = selection(seeds[5] ^ 7, n, want.obs_names());
            let r3 = vr.compose(&o3.resolve(n, Some(want.obs_names())).unwrap()).unwrap();
            prop_assert_eq!(view.x().unwrap().rows(&o3).unwrap(), whole_x.subset(&r3, vc).unwrap());

            // write_h5ad, then read back.
            let out = dir.path().join("out.h5ad");
            view.write_h5ad(&out, &WriteOptions::default()).unwrap();
            prop_assert_eq!(read_h5ad(&out).unwrap().into_elements(), want.into_elements());

            let s = b.cache_stats();
            prop_assert!(s.bytes_held <= s.budget);
        }
    }
}
