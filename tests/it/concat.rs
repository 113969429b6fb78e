//! `annpage::concat` through the public API: small objects whose expected results come from
//! `anndata.concat` (the Python that gives them is beside each test), the fixtures, and the
//! refusals. The random differential tests are in `tests/interop/test_concat.py`.

use annpage::data::{
    ArrayData, Categorical, Column, DataFrame, Element, Matrix, Scalar, SparseFormat, SparseMatrix,
};
use annpage::{concat, read_h5ad, AnnData, Axis, ConcatOptions, Join, MergeStrategy, Selection};
use ndarray::arr2;

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name)
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Every entry of a matrix as f64, row by row.
fn dense(m: &Matrix) -> Vec<Vec<f64>> {
    let (rows, cols) = m.shape();
    let mut out = vec![vec![0.0; cols]; rows];
    match m {
        Matrix::Dense(a) => {
            let v = a.to_f64().unwrap();
            for (i, row) in out.iter_mut().enumerate() {
                for (j, x) in row.iter_mut().enumerate() {
                    *x = v[[i, j]];
                }
            }
        }
        Matrix::Sparse(s) => {
            let d = s.data().to_f64().unwrap();
            let d: Vec<f64> = d.iter().copied().collect();
            for (major, w) in s.indptr().windows(2).enumerate() {
                let range = w[0] as usize..w[1] as usize;
                for (&minor, &v) in s.indices()[range.clone()].iter().zip(&d[range]) {
                    let (i, j) = match s.format() {
                        SparseFormat::Csr => (major, minor as usize),
                        SparseFormat::Csc => (minor as usize, major),
                    };
                    out[i][j] += v;
                }
            }
        }
    }
    out
}

/// ```python
/// a = ad.AnnData(sparse.csr_matrix(np.array([[1, 0], [0, 2]], dtype=np.float32)),
///     obs=pd.DataFrame({'ct': pd.Categorical(['T', 'B10'], categories=['T', 'B10', 'B2']),
///                       'n': np.array([3, 4])}, index=['a0', 'a1']),
///     var=pd.DataFrame({'sym': ['G1', 'G2']}, index=['g1', 'g2']))
/// b = ad.AnnData(np.array([[5., 6.]]), obs=pd.DataFrame({'ct': pd.Categorical(['B2'])},
///     index=['b0']), var=pd.DataFrame({'sym': ['G2', 'G3']}, index=['g2', 'g3']))
/// a.uns['k'] = 1; b.uns['k'] = 1.0; b.uns['z'] = 'x'
/// ```
fn pair() -> (AnnData, AnnData) {
    let mut a = AnnData::new(2, 2);
    a.set_obs_names(strings(&["a0", "a1"])).unwrap();
    a.set_var_names(strings(&["g1", "g2"])).unwrap();
    let x = SparseMatrix::new(
        SparseFormat::Csr,
        (2, 2),
        vec![0, 1, 2],
        vec![0, 1],
        ArrayData::from(vec![1.0f32, 2.0]),
    )
    .unwrap();
    a.set_x(Some(Matrix::Sparse(x))).unwrap();
    let ct = Categorical::new(vec![0, 1], ArrayData::from(vec!["T", "B10", "B2"]), false).unwrap();
    a.obs_mut().insert("ct", Column::Categorical(ct)).unwrap();
    a.obs_mut()
        .insert("n", Column::Array(ArrayData::from(vec![3i64, 4])))
        .unwrap();
    a.var_mut()
        .insert("sym", Column::Array(ArrayData::from(vec!["G1", "G2"])))
        .unwrap();
    a.uns_mut()
        .insert("k".into(), Element::Scalar(Scalar::I64(1)));

    let mut b = AnnData::new(1, 2);
    b.set_obs_names(strings(&["b0"])).unwrap();
    b.set_var_names(strings(&["g2", "g3"])).unwrap();
    b.set_x(Some(Matrix::Dense(ArrayData::from(arr2(&[[5.0f64, 6.0]])))))
        .unwrap();
    let ct = Categorical::new(vec![0], ArrayData::from(vec!["B2"]), false).unwrap();
    b.obs_mut().insert("ct", Column::Categorical(ct)).unwrap();
    b.var_mut()
        .insert("sym", Column::Array(ArrayData::from(vec!["G2", "G3"])))
        .unwrap();
    b.uns_mut()
        .insert("k".into(), Element::Scalar(Scalar::F64(1.0)));
    b.uns_mut()
        .insert("z".into(), Element::Scalar(Scalar::String("x".into())));
    (a, b)
}

/// `ad.concat([a, b], join='outer', label='batch', keys=['p', 'q'], index_unique='-',
/// merge='unique', uns_merge='same')`.
#[test]
fn outer_join_with_labels_keys_and_merges() {
    let (a, b) = pair();
    let r = concat(
        &[a, b],
        &ConcatOptions {
            join: Join::Outer,
            label: Some("batch".into()),
            keys: Some(strings(&["p", "q"])),
            index_unique: Some("-".into()),
            merge: Some(MergeStrategy::Unique),
            uns_merge: Some(MergeStrategy::Same),
            ..ConcatOptions::default()
        },
    )
    .unwrap();
    assert_eq!(r.obs_names(), ["a0-p", "a1-p", "b0-q"]);
    assert_eq!(r.var_names(), ["g1", "g2", "g3"]);
    // A sparse piece makes the result CSR; f32 and f64 give f64.
    let Some(Matrix::Sparse(x)) = r.x() else {
        panic!("sparse X expected")
    };
    assert_eq!(x.format(), SparseFormat::Csr);
    assert_eq!(x.data().dtype(), annpage::data::DType::F64);
    assert_eq!(
        dense(r.x().unwrap()),
        [[1., 0., 0.], [0., 2., 0.], [0., 5., 6.]]
    );
    // The first frame's categories are the union's set: its order is kept.
    let Some(Column::Categorical(ct)) = r.obs().column("ct") else {
        panic!("categorical expected")
    };
    assert_eq!(ct.categories, ArrayData::from(vec!["T", "B10", "B2"]));
    assert_eq!(ct.codes, [0, 1, 2]);
    // An int column some objects lack becomes float64 with NaN.
    let Some(Column::Array(ArrayData::F64(n))) = r.obs().column("n") else {
        panic!("float64 expected")
    };
    assert_eq!((n[0], n[1]), (3.0, 4.0));
    assert!(n[2].is_nan());
    let Some(Column::Categorical(batch)) = r.obs().column("batch") else {
        panic!("categorical expected")
    };
    assert_eq!(batch.categories, ArrayData::from(vec!["p", "q"]));
    assert_eq!(batch.codes, [0, 0, 1]);
    let cols: Vec<_> = r.obs().columns().keys().collect();
    assert_eq!(cols, ["ct", "n", "batch"]);
    // 'sym' differs once reindexed (NaN at g3 in a, at g1 in b): unique drops it.
    assert!(r.var().columns().is_empty());
    // 1 == 1.0, and 'z' is not in every object.
    assert_eq!(r.uns().len(), 1);
    assert_eq!(r.uns()["k"], Element::Scalar(Scalar::I64(1)));
}

/// `ad.concat([a, b], join='outer', fill_value=-1.0).X` and `ad.concat([a, b])`.
#[test]
fn fill_value_and_inner_join() {
    let (a, b) = pair();
    let r = concat(
        &[a.clone(), b.clone()],
        &ConcatOptions {
            join: Join::Outer,
            fill_value: Some((-1.0).into()),
            ..ConcatOptions::default()
        },
    )
    .unwrap();
    assert_eq!(
        dense(r.x().unwrap()),
        [[1., 0., -1.], [0., 2., -1.], [-1., 5., 6.]]
    );
    let inner = concat(&[a, b], &ConcatOptions::default()).unwrap();
    assert_eq!(inner.var_names(), ["g2"]);
    assert_eq!(dense(inner.x().unwrap()), [[0.], [2.], [5.]]);
    // Without a merge strategy the other axis keeps no columns, uns nothing.
    assert!(inner.var().columns().is_empty());
    assert!(inner.uns().is_empty());
}

/// `a.obsp['d'] = sparse.csr_matrix([[0, 1], [1, 0]], dtype=np.float32)`, then
/// `ad.concat([a, b], pairwise=True, join='outer').obsp['d']` is block-diagonal, CSR f32.
#[test]
fn pairwise_blocks_and_axis_var() {
    let (mut a, b) = pair();
    let d = Matrix::Dense(ArrayData::from(arr2(&[[0f32, 1.], [1., 0.]])));
    a.insert_obsp("d", d).unwrap();
    let with = concat(
        &[a.clone(), b.clone()],
        &ConcatOptions {
            join: Join::Outer,
            pairwise: true,
            ..ConcatOptions::default()
        },
    )
    .unwrap();
    let Matrix::Sparse(p) = &with.obsp()["d"] else {
        panic!("sparse expected")
    };
    assert_eq!(p.format(), SparseFormat::Csr);
    assert_eq!(p.data().dtype(), annpage::data::DType::F32);
    assert_eq!(
        dense(&with.obsp()["d"]),
        [[0., 1., 0.], [1., 0., 0.], [0., 0., 0.]]
    );
    let without = concat(&[a.clone(), b.clone()], &ConcatOptions::default()).unwrap();
    assert!(without.obsp().is_empty());

    // `ad.concat([a, b], axis='var', join='outer', merge='first')`: var names repeat, the
    // obs of the first object is kept, reindexed (b0 has no values).
    let r = concat(
        &[a, b],
        &ConcatOptions {
            axis: Axis::Var,
            join: Join::Outer,
            merge: Some(MergeStrategy::First),
            ..ConcatOptions::default()
        },
    )
    .unwrap();
    assert_eq!(r.obs_names(), ["a0", "a1", "b0"]);
    assert_eq!(r.var_names(), ["g1", "g2", "g2", "g3"]);
    let Some(Matrix::Sparse(x)) = r.x() else {
        panic!("sparse X expected")
    };
    assert_eq!(x.format(), SparseFormat::Csr);
    assert_eq!(
        dense(r.x().unwrap()),
        [[1., 0., 0., 0.], [0., 2., 0., 0.], [0., 0., 5., 6.]]
    );
    let Some(Column::Categorical(ct)) = r.obs().column("ct") else {
        panic!("categorical expected")
    };
    assert_eq!(ct.codes, [0, 1, -1]);
    assert!(matches!(
        r.obs().column("n"),
        Some(Column::Array(ArrayData::F64(_)))
    ));
}

/// A fixture concatenated with itself: every element is there twice along obs.
#[test]
fn a_fixture_with_itself() {
    let a = read_h5ad(fixture("all_elements.h5ad")).unwrap();
    let r = concat(
        &[a.clone(), a.clone()],
        &ConcatOptions {
            merge: Some(MergeStrategy::Same),
            uns_merge: Some(MergeStrategy::Same),
            index_unique: Some("_".into()),
            pairwise: true,
            ..ConcatOptions::default()
        },
    )
    .unwrap();
    assert_eq!(r.shape(), (2 * a.n_obs(), a.n_vars()));
    assert_eq!(r.var_names(), a.var_names());
    assert_eq!(r.obs_names()[0], format!("{}_0", a.obs_names()[0]));
    assert_eq!(r.obs_names()[a.n_obs()], format!("{}_1", a.obs_names()[0]));
    // Identical objects: merge "same" keeps all of var, varm, varp and uns.
    assert_eq!(r.var(), a.var());
    assert_eq!(r.varm().len(), a.varm().len());
    assert_eq!(r.varp().len(), a.varp().len());
    assert_eq!(r.uns().len(), a.uns().len());
    let layers: Vec<_> = r.layers().keys().collect();
    let expected: Vec<_> = a.layers().keys().collect();
    assert_eq!(layers.len(), expected.len());
    let x = dense(r.x().unwrap());
    let x1 = dense(a.x().unwrap());
    assert_eq!(&x[..a.n_obs()], &x1[..]);
    assert_eq!(&x[a.n_obs()..], &x1[..]);
    for (k, m) in r.obsp() {
        assert_eq!(m.shape(), (2 * a.n_obs(), 2 * a.n_obs()), "obsp {k}");
    }
    // raw is concatenated too, over the same raw variables.
    let (ra, rr) = (a.raw().unwrap(), r.raw().unwrap());
    assert_eq!(rr.x.shape(), (2 * a.n_obs(), ra.x.shape().1));
    assert!(rr.var.columns().is_empty(), "raw.var keeps no columns");
}

fn frame_obsm(a: &mut AnnData) {
    let mut df = DataFrame::from_index(a.obs_names().to_vec());
    df.insert("v", Column::Array(ArrayData::from(vec![1.0f64; a.n_obs()])))
        .unwrap();
    a.insert_obsm("m", Element::DataFrame(df)).unwrap();
}

#[test]
fn an_x_some_inputs_lack_is_dropped_by_inner_joins_and_filled_by_outer_ones() {
    // anndata 0.13 treats X as a layer here (0.12 refused the mix).
    let (a, b) = pair();
    let mut no_x = b.clone();
    no_x.set_x(None).unwrap();
    let inner = concat(&[a.clone(), no_x.clone()], &ConcatOptions::default()).unwrap();
    assert!(inner.x().is_none() && inner.n_obs() == 3);
    let outer = ConcatOptions {
        join: Join::Outer,
        ..ConcatOptions::default()
    };
    let got = concat(&[a.clone(), no_x], &outer).unwrap();
    let Some(Matrix::Sparse(x)) = got.x() else {
        panic!("an outer join keeps a sparse X")
    };
    assert_eq!(x.shape(), (3, got.n_vars()));
    // a's two values; b's row is empty (sparse fill: zeros).
    assert_eq!(x.nnz(), 2);
}

#[test]
fn refusals_name_the_problem() {
    let (a, b) = pair();

    let e = concat(
        &[a.clone(), b.clone()],
        &ConcatOptions {
            keys: Some(strings(&["only-one"])),
            ..ConcatOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "invalid argument: 1 keys for 2 objects");
    let e = concat(
        &[a.clone(), b.clone()],
        &ConcatOptions {
            keys: Some(strings(&["k", "k"])),
            ..ConcatOptions::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("'k' is given twice"), "{e}");
    assert!(concat(&[], &ConcatOptions::default()).is_err());

    // A data frame beside an array in obsm.
    let (mut fa, mut fb) = (a.clone(), b.clone());
    frame_obsm(&mut fa);
    fb.insert_obsm("m", Element::Array(ArrayData::from(arr2(&[[1.0f64, 2.0]]))))
        .unwrap();
    let e = concat(&[fa, fb], &ConcatOptions::default()).unwrap_err();
    assert_eq!(e.element(), Some("/obsm/m"));

    // Repeated names on the other axis cannot be aligned.
    let mut dup = b.clone();
    dup.set_var_names(strings(&["g2", "g2"])).unwrap();
    let e = concat(&[a, dup], &ConcatOptions::default()).unwrap_err();
    assert!(e.to_string().contains("'g2' twice"), "{e}");
}

/// Frames in obsm are concatenated like obs: `ad.concat` of two objects whose obsm['m'] has
/// a float column 'v' gives that column over all cells, indexed by the new names.
#[test]
fn obsm_frames_and_single_objects() {
    let (mut a, mut b) = pair();
    frame_obsm(&mut a);
    frame_obsm(&mut b);
    let r = concat(&[a.clone(), b], &ConcatOptions::default()).unwrap();
    let Element::DataFrame(m) = &r.obsm()["m"] else {
        panic!("frame expected")
    };
    assert_eq!(m.index_names().unwrap(), ["a0", "a1", "b0"]);
    assert_eq!(
        m.column("v"),
        Some(&Column::Array(ArrayData::from(vec![1.0f64; 3])))
    );
    // One object: the same object back, apart from what merging drops.
    let one = concat(std::slice::from_ref(&a), &ConcatOptions::default()).unwrap();
    assert_eq!(one.x(), a.x());
    assert_eq!(one.obs_names(), a.obs_names());
    assert!(one.var().columns().is_empty());
}

/// `concat_on_disk` writes what `concat` of the files read whole gives, for mixed CSR, CSC and
/// dense inputs, joins and options, with a cache far smaller than the files' matrices need.
#[test]
fn on_disk_equals_in_memory() {
    use annpage::{concat_on_disk, BackedOptions, WriteOptions};
    let sets: [&[&str]; 5] = [
        &["all_elements.h5ad", "all_elements_gzip.h5ad"],
        &["x_csr_f32.h5ad", "x_csc_f64.h5ad", "x_dense_f32.h5ad"],
        &["x_dense_i32.h5ad", "x_dense_u8.h5ad", "x_dense_bool.h5ad"],
        &["pbmc_like_csr.h5ad", "pbmc_like_csr.h5ad"],
        &["empty_obs.h5ad", "x_csr_f32.h5ad"],
    ];
    let dir = tempfile::tempdir().unwrap();
    for (k, set) in sets.iter().enumerate() {
        let paths: Vec<_> = set.iter().map(|n| fixture(n)).collect();
        let adatas: Vec<AnnData> = paths.iter().map(|p| read_h5ad(p).unwrap()).collect();
        for join in [Join::Inner, Join::Outer] {
            let options = ConcatOptions {
                join,
                label: Some("batch".into()),
                index_unique: Some("-".into()),
                merge: Some(MergeStrategy::Same),
                ..ConcatOptions::default()
            };
            let out = dir.path().join(format!("{k}-{join:?}.h5ad"));
            let small = BackedOptions {
                cache_bytes: 64 << 10,
                ..BackedOptions::default()
            };
            let streamed = concat_on_disk(&paths, &out, &options, &WriteOptions::default(), &small);
            match concat(&adatas, &options) {
                Ok(want) => {
                    streamed.unwrap_or_else(|e| panic!("{set:?} {join:?}: {e}"));
                    let got = read_h5ad(&out).unwrap().into_elements();
                    let want = want.into_elements();
                    // Compared through the debug form, where NaN equals NaN (unlike ==).
                    // Mappings in name order: the order of their keys is not part of the result.
                    fn sorted<V: std::fmt::Debug>(m: &indexmap::IndexMap<String, V>) -> String {
                        format!(
                            "{:?}",
                            m.iter().collect::<std::collections::BTreeMap<_, _>>()
                        )
                    }
                    let parts = |e: &annpage::AnnDataElements| {
                        [
                            format!("{:?}", e.x),
                            format!("{:?}", e.obs),
                            format!("{:?}", e.var),
                            sorted(&e.obsm),
                            sorted(&e.varm),
                            sorted(&e.obsp),
                            sorted(&e.varp),
                            sorted(&e.layers),
                            sorted(&e.uns),
                            format!("{:?}", e.raw),
                        ]
                    };
                    let names = [
                        "X", "obs", "var", "obsm", "varm", "obsp", "varp", "layers", "uns", "raw",
                    ];
                    for ((g, w), name) in parts(&got).iter().zip(parts(&want)).zip(names) {
                        if *g != w {
                            let at = g.bytes().zip(w.bytes()).take_while(|(a, b)| a == b).count();
                            let from = at.saturating_sub(200);
                            panic!(
                                "{set:?} {join:?}: {name} differs:\n got {}\nwant {}",
                                &g[from..(at + 200).min(g.len())],
                                &w[from..(at + 200).min(w.len())]
                            );
                        }
                    }
                }
                Err(e) => assert!(streamed.is_err(), "{set:?} {join:?}: in memory {e}"),
            }
        }
    }
}

/// Along var (read whole), `concat_on_disk` writes the store `WriteOptions::store` names, as
/// along obs: it used to write an HDF5 file under a `.zarr` name.
#[test]
fn on_disk_along_var_writes_the_store_asked_for() {
    use annpage::{concat_on_disk, read_zarr, BackedOptions, StoreKind, WriteOptions};
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = pair();
    let paths = [dir.path().join("a.h5ad"), dir.path().join("b.h5ad")];
    a.write_h5ad(&paths[0], &WriteOptions::default()).unwrap();
    b.write_h5ad(&paths[1], &WriteOptions::default()).unwrap();
    let options = ConcatOptions {
        axis: Axis::Var,
        index_unique: Some("-".into()),
        ..ConcatOptions::default()
    };
    let out = dir.path().join("all.zarr");
    let zarr = WriteOptions {
        store: StoreKind::Zarr,
        ..WriteOptions::default()
    };
    concat_on_disk(&paths, &out, &options, &zarr, &BackedOptions::default()).unwrap();
    assert!(out.join("zarr.json").is_file());
    assert_eq!(read_zarr(&out).unwrap(), concat(&[a, b], &options).unwrap());
}

#[test]
fn on_disk_refusals_name_the_input_file() {
    use annpage::{concat_on_disk, BackedOptions, WriteOptions};
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = pair();
    let mut twice = a.clone();
    twice.set_var_names(strings(&["g1", "g1"])).unwrap();
    let (pa, pb) = (dir.path().join("a.h5ad"), dir.path().join("twice.h5ad"));
    a.write_h5ad(&pa, &WriteOptions::default()).unwrap();
    twice.write_h5ad(&pb, &WriteOptions::default()).unwrap();
    let out = dir.path().join("out.h5ad");
    let e = concat_on_disk(
        &[pa, pb.clone()],
        &out,
        &ConcatOptions::default(),
        &WriteOptions::default(),
        &BackedOptions::default(),
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("{}: /var: ", pb.display())),
        "{msg}"
    );
    assert!(msg.contains("the var name 'g1' appears twice"), "{msg}");
    assert!(!out.exists());
}

/// `concat_on_disk_observed` reports the values of the streamed matrices read, from none to
/// all of them (every stored value of the inputs' X, layers and raw.X), never backwards;
/// along var, an inner join's left-out cells count once their matrix is done.
#[test]
fn on_disk_reports_progress_over_the_values_read() {
    use annpage::data::Matrix;
    use annpage::{concat_on_disk_observed, BackedOptions, ConcatProgress, WriteOptions};
    let names = [
        "x_csr_f32.h5ad",
        "x_csc_f64.h5ad",
        "x_dense_f32.h5ad",
        "all_elements.h5ad",
        "pbmc_like_csr.h5ad",
    ];
    let paths: Vec<_> = names.iter().map(|n| fixture(n)).collect();
    let values = |m: &Matrix| match m {
        Matrix::Sparse(s) => s.nnz() as u64,
        Matrix::Dense(a) => a.len() as u64,
    };
    let dir = tempfile::tempdir().unwrap();
    let sets = [&paths[..3], &paths[3..4], &paths[3..]];
    for (k, set) in sets.into_iter().enumerate() {
        let adatas: Vec<AnnData> = set.iter().map(|p| read_h5ad(p).unwrap()).collect();
        let cases = [Axis::Obs, Axis::Var].map(|a| [Join::Outer, Join::Inner].map(|j| (a, j)));
        for (axis, join) in cases.into_iter().flatten() {
            let options = ConcatOptions {
                axis,
                join,
                index_unique: Some("-".into()),
                ..ConcatOptions::default()
            };
            let seen = std::sync::Mutex::new(Vec::<ConcatProgress>::new());
            let observe = |p| seen.lock().unwrap().push(p);
            let small = BackedOptions {
                cache_bytes: 64 << 10,
                ..BackedOptions::default()
            };
            let out = dir.path().join(format!("{k}-{axis:?}-{join:?}.h5ad"));
            concat_on_disk_observed(
                set,
                &out,
                &options,
                &WriteOptions::default(),
                &small,
                &observe,
            )
            .unwrap();
            // The matrices the result has were streamed, from every input holding them (along
            // var, the rows of the cells the join keeps).
            let result = read_h5ad(&out).unwrap();
            let layers: Vec<&String> = result.layers().keys().collect();
            let (with_x, with_raw) = (result.x().is_some(), result.raw().is_some());
            let kept: std::collections::HashSet<_> = result.obs_names().iter().collect();
            let read: Vec<AnnData> = adatas
                .iter()
                .map(|a| match axis {
                    Axis::Obs => a.clone(),
                    Axis::Var => {
                        let names = a.obs_names().iter().filter(|n| kept.contains(n));
                        let rows = Selection::names(names.map(|n| n.to_string()));
                        a.subset(&rows, &Selection::All).unwrap()
                    }
                })
                .collect();
            let want: u64 = read
                .iter()
                .map(|a| {
                    a.x().filter(|_| with_x).map_or(0, values)
                        + a.raw().filter(|_| with_raw).map_or(0, |r| values(&r.x))
                        + layers
                            .iter()
                            .filter_map(|k| a.layers().get(*k))
                            .map(values)
                            .sum::<u64>()
                })
                .sum();
            let seen = seen.into_inner().unwrap();
            let (first, last) = (seen[0], *seen.last().unwrap());
            // Everything was counted before the closing report.
            assert_eq!(seen[seen.len() - 2].done, want, "{set:?} {axis:?} {join:?}");
            assert_eq!(
                first,
                ConcatProgress {
                    done: 0,
                    total: want
                },
                "{set:?} {axis:?}"
            );
            assert_eq!(
                last,
                ConcatProgress {
                    done: want,
                    total: want
                },
                "{set:?} {axis:?}"
            );
            assert!(seen.len() > 2 || want == 0, "{set:?} {axis:?}: {seen:?}");
            assert!(seen.windows(2).all(|w| w[0].done <= w[1].done), "{seen:?}");
        }
    }
}

/// Wide dense `obsm` entries stream in blocks of whole chunks of the result, across the
/// inputs' boundaries (files of 700 and 500 rows, 40 and 25 columns: an outer join fills the
/// second's), into HDF5 and into Zarr with inner chunks of 64 rows and columns cut into
/// chunks, as `concat` gives them in memory.
#[test]
fn on_disk_wide_obsm_streams_in_chunk_aligned_blocks() {
    use annpage::{concat_on_disk, read_zarr, BackedOptions, StoreKind, WriteOptions, ZarrOptions};
    let dir = tempfile::tempdir().unwrap();
    let make = |prefix: &str, n: usize, width: usize| {
        let mut a = AnnData::new(n, 1);
        a.set_obs_names((0..n).map(|i| format!("{prefix}{i}")).collect())
            .unwrap();
        a.set_var_names(strings(&["g"])).unwrap();
        let values = ndarray::Array2::from_shape_fn((n, width), |(i, j)| (i * 100 + j) as f64);
        a.insert_obsm("wide", Element::Array(ArrayData::from(values)))
            .unwrap();
        a
    };
    let inputs = [make("a", 700, 40), make("b", 500, 25)];
    let paths = [dir.path().join("a.h5ad"), dir.path().join("b.h5ad")];
    for (a, p) in inputs.iter().zip(&paths) {
        a.write_h5ad(p, &WriteOptions::default()).unwrap();
    }
    let options = ConcatOptions {
        join: Join::Outer,
        ..ConcatOptions::default()
    };
    let want = concat(&inputs, &options).unwrap();
    // 64 KiB of cache: blocks of 256 KiB, 819 rows of the result (40 float64 columns).
    let small = BackedOptions {
        cache_bytes: 64 << 10,
        ..BackedOptions::default()
    };
    let h5 = dir.path().join("all.h5ad");
    concat_on_disk(&paths, &h5, &options, &WriteOptions::default(), &small).unwrap();
    // Bit for bit, so that the fills (NaN) compare equal.
    let bits = |a: &AnnData| {
        let Element::Array(m) = &a.obsm()["wide"] else {
            panic!("obsm['wide'] is not an array")
        };
        let m = m.to_f64().unwrap();
        (
            m.shape().to_vec(),
            m.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        )
    };
    assert_eq!(bits(&read_h5ad(&h5).unwrap()), bits(&want));
    let zarr = WriteOptions {
        store: StoreKind::Zarr,
        zarr: ZarrOptions {
            chunk_rows: Some(64),
            ..ZarrOptions::default()
        },
        ..WriteOptions::default()
    };
    let z = dir.path().join("all.zarr");
    concat_on_disk(&paths, &z, &options, &zarr, &small).unwrap();
    assert_eq!(bits(&read_zarr(&z).unwrap()), bits(&want));
}
