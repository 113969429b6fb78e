//! The object API (`to_df`, `obs_vector`, `var_vector`, `transpose`, typed access) on every
//! fixture: backed handles give what the object in memory gives, and the in-memory results
//! agree with the matrix they come from.

use annpage::data::{ArrayData, Column, Matrix, SparseFormat};
use annpage::{read_h5ad, read_h5ad_backed, AnnData, BackedOptions, Mode};
use annpage_tests::fixtures_dir;

/// The current-layout fixtures that have an `X`, with unique names (what `to_df` needs).
fn fixtures() -> Vec<(std::path::PathBuf, AnnData)> {
    let mut out: Vec<_> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "h5ad"))
        .filter_map(|p| read_h5ad(&p).ok().map(|a| (p, a)))
        .filter(|(_, a)| a.x().is_some_and(|x| x.to_dense().is_ok()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        out.len() >= 5,
        "expected several fixtures, found {}",
        out.len()
    );
    out
}

fn unique(names: &[annpage::data::CompactString]) -> bool {
    names.iter().collect::<std::collections::HashSet<_>>().len() == names.len()
}

#[test]
fn to_df_columns_are_the_columns_of_x() {
    for (path, adata) in fixtures() {
        if !unique(adata.var_names()) {
            assert!(
                adata.to_df(None).is_err(),
                "{}: repeated names refused",
                path.display()
            );
            continue;
        }
        let df = adata.to_df(None).unwrap();
        let dense = adata.x().unwrap().to_dense().unwrap();
        assert_eq!(df.nrows(), adata.n_obs());
        assert_eq!(df.index_names().unwrap(), adata.obs_names());
        assert_eq!(
            df.columns().keys().collect::<Vec<_>>(),
            adata.var_names().iter().collect::<Vec<_>>()
        );
        for (j, name) in adata.var_names().iter().enumerate() {
            let want = reshape_1d(dense.select(1, &[j]));
            let Some(Column::Array(got)) = df.column(name) else {
                panic!("column {name}")
            };
            assert!(same(got, &want), "{}: column {name}", path.display());
        }
        let backed = read_h5ad_backed(&path, Mode::Read, BackedOptions::default()).unwrap();
        let from_backed = backed.to_df(None, usize::MAX).unwrap();
        assert_eq!(from_backed.index_names(), df.index_names());
        for (name, column) in df.columns() {
            let (Column::Array(a), Some(Column::Array(b))) = (column, from_backed.column(name))
            else {
                panic!("{}: column {name}", path.display())
            };
            assert!(same(a, b), "{}: backed column {name}", path.display());
        }
        let bytes = adata.n_obs() * adata.n_vars() * dense.dtype().size();
        if bytes > 0 {
            let err = backed.to_df(None, bytes - 1).unwrap_err().to_string();
            assert!(err.contains("above the limit"), "{err}");
        }
    }
}

#[test]
fn vectors_match_between_memory_and_backed() {
    for (path, adata) in fixtures() {
        let backed = read_h5ad_backed(&path, Mode::Read, BackedOptions::default()).unwrap();
        let dense = adata.x().unwrap().to_dense().unwrap();
        for (j, gene) in adata.var_names().iter().enumerate().take(5) {
            let mem = adata.obs_vector(gene, None);
            if adata.var_names().iter().filter(|n| *n == gene).count() > 1
                || adata.obs().column(gene).is_some()
            {
                assert!(mem.is_err(), "{}: ambiguous key {gene}", path.display());
                continue;
            }
            let Column::Array(values) = mem.unwrap() else {
                panic!("an array")
            };
            let want = reshape_1d(dense.select(1, &[j]));
            assert!(same(&values, &want), "{}: {gene}", path.display());
            let Column::Array(b) = backed.obs_vector(gene, None).unwrap() else {
                panic!("an array")
            };
            assert!(same(&b, &values), "{}: backed {gene}", path.display());
        }
        for (i, cell) in adata.obs_names().iter().enumerate().take(3) {
            let Ok(Column::Array(mem)) = adata.var_vector(cell, None) else {
                continue;
            };
            let want = reshape_1d(dense.select(0, &[i]));
            assert!(same(&mem, &want), "{}: {cell}", path.display());
            let Column::Array(b) = backed.var_vector(cell, None).unwrap() else {
                panic!("an array")
            };
            assert!(same(&b, &mem), "{}: backed {cell}", path.display());
        }
        for (name, column) in adata.obs().columns().iter().take(3) {
            if adata.var_names().iter().any(|v| v == name) {
                continue;
            }
            let (mem, b) = (
                adata.obs_vector(name, None).unwrap(),
                backed.obs_vector(name, None).unwrap(),
            );
            if let (Column::Array(m), Column::Array(c), Column::Array(b)) = (&mem, column, &b) {
                assert!(
                    same(m, c) && same(b, c),
                    "{}: obs column {name}",
                    path.display()
                );
            } else {
                assert!(
                    mem == *column && b == *column,
                    "{}: obs column {name}",
                    path.display()
                );
            }
        }
        let err = adata
            .obs_vector("no such key", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("could not find key 'no such key'"), "{err}");
    }
}

/// Equal arrays, NaN equal to NaN.
fn same(a: &ArrayData, b: &ArrayData) -> bool {
    match (a.to_f64(), b.to_f64()) {
        (Some(x), Some(y)) => {
            a.dtype() == b.dtype()
                && x.shape() == y.shape()
                && x.iter()
                    .zip(y.iter())
                    .all(|(p, q)| p == q || (p.is_nan() && q.is_nan()))
        }
        _ => a == b,
    }
}

/// A one-row or one-column array as a 1-d one.
fn reshape_1d(a: ArrayData) -> ArrayData {
    let n = a.len();
    annpage_engine::map_array!(a, a => a.into_shape_with_order(ndarray::IxDyn(&[n])).expect("n values"))
}

#[test]
fn transpose_twice_is_the_object_without_raw() {
    for (path, adata) in fixtures() {
        // Whole objects compare with `==`, where NaN differs from itself: those fixtures are
        // compared with anndata's `.T` by the interop tests (tests/interop/test_transform.py).
        if format!("{adata:?}").contains("NaN") {
            continue;
        }
        let back = adata.transpose().transpose();
        let mut want = adata.clone();
        want.set_raw(None).unwrap();
        // Sparse matrices come back in their own format over the same arrays; dense ones equal.
        assert_eq!(back, want, "{}", path.display());
        let t = adata.transpose();
        assert_eq!(t.shape(), (adata.n_vars(), adata.n_obs()));
        assert_eq!(t.obs_names(), adata.var_names());
        if let (Some(Matrix::Sparse(x)), Some(Matrix::Sparse(tx))) = (adata.x(), t.x()) {
            let other = match x.format() {
                SparseFormat::Csr => SparseFormat::Csc,
                SparseFormat::Csc => SparseFormat::Csr,
            };
            assert_eq!(tx.format(), other);
            assert_eq!(tx.data(), x.data(), "values are not moved");
        }
    }
}

/// Values compared with NaN equal to NaN: their debug form without the memory layout.
fn shown(v: &impl std::fmt::Debug) -> String {
    let text = format!("{v:?}");
    let mut parts = text.split(", strides=");
    let mut out = parts.next().unwrap_or_default().to_owned();
    for part in parts {
        out.push_str(
            part.split_once(", dynamic ndim=")
                .map_or(part, |(_, rest)| rest),
        );
    }
    out
}

/// The lazy transposed handle: its selections, matrices and chunks equal the in-memory
/// transpose of the same selection, on every fixture with an X.
#[test]
fn backed_transpose_equals_the_transpose_in_memory() {
    use annpage::Selection;
    for (path, adata) in fixtures() {
        let backed = read_h5ad_backed(&path, Mode::Read, BackedOptions::default()).unwrap();
        let t = backed.transpose();
        let want = adata.transpose();
        assert_eq!(t.shape(), want.shape(), "{path:?}");
        assert_eq!(t.obs_names().unwrap(), want.obs_names(), "{path:?}");
        assert_eq!(shown(&t.obs().unwrap()), shown(want.obs()), "{path:?}");
        assert_eq!(shown(&t.to_memory().unwrap()), shown(&want), "{path:?}");
        assert_eq!(t.transpose().shape(), adata.shape());

        // A selection of genes (rows here) in reverse, every other cell.
        let rows = Selection::slice(None, None, -1);
        let cols = Selection::slice(None, None, 2);
        let sub = t.slice(&rows, &cols).unwrap();
        let x = want.x().unwrap().subset(
            &rows.resolve(want.n_obs(), None).unwrap(),
            &cols.resolve(want.n_vars(), None).unwrap(),
        );
        assert_eq!(
            shown(&sub.x().unwrap().to_memory().unwrap()),
            shown(&x.unwrap()),
            "{path:?}"
        );
        match want.subset(&rows, &cols) {
            Ok(expected) => {
                assert_eq!(
                    shown(&sub.to_memory().unwrap()),
                    shown(&expected),
                    "{path:?}"
                )
            }
            // Elements kept verbatim (awkward arrays) cannot be cut, lazily or not.
            Err(_) => assert!(sub.to_memory().is_err(), "{path:?}"),
        }

        // Chunks of rows put back together give the whole matrix, densely compared.
        let dense = want.x().unwrap().to_dense().unwrap();
        let mut seen = 0;
        for chunk in t.chunk_x(3).unwrap() {
            let (range, m) = chunk.unwrap();
            let part = want
                .x()
                .unwrap()
                .subset(
                    &annpage::AxisIndex::range(range.clone(), want.n_obs()).unwrap(),
                    &annpage::AxisIndex::full(want.n_vars()),
                )
                .unwrap();
            assert_eq!(
                shown(&m.to_dense().unwrap()),
                shown(&part.to_dense().unwrap()),
                "{path:?}"
            );
            seen = range.end;
        }
        assert_eq!(seen, want.n_obs());
        assert_eq!(dense.shape(), &[want.n_obs(), want.n_vars()]);
        assert!(t.x().unwrap().chunks(0).is_err());
    }
}

/// `obs_keys`/`var_keys` name a frame's columns from metadata, and `frame_column` reads one
/// obs/var column alone: what `obs()`/`var()` hold under its name,
/// in the whole file and in a view (categories the view's rows do not use pruned alike), in
/// every fixture, legacy layouts included; a name the frame lacks gives `None`.
#[test]
fn frame_column_is_the_frames_column() {
    use annpage::{Axis, Selection};
    let mut columns_seen = 0;
    for entry in std::fs::read_dir(fixtures_dir()).expect("fixtures") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "h5ad") {
            continue;
        }
        let Ok(b) = read_h5ad_backed(&path, Mode::Read, BackedOptions::default()) else {
            continue;
        };
        let every_other = |n: usize| Selection::positions((0..n).rev().step_by(2));
        let view = b
            .slice(&every_other(b.n_obs()), &every_other(b.n_vars()))
            .expect("view");
        for handle in [&b, &view] {
            for axis in [Axis::Obs, Axis::Var] {
                let frame = handle.frame(axis).expect("frame");
                let keys = match axis {
                    Axis::Obs => handle.obs_keys(),
                    Axis::Var => handle.var_keys(),
                };
                assert!(keys.iter().eq(frame.columns().keys()), "{}", path.display());
                for (name, column) in frame.columns() {
                    let alone = handle.frame_column(axis, name).expect("column");
                    // Compared as printed: NaN values (nullable floats) print alike.
                    assert_eq!(
                        format!("{:?}", alone.as_ref()),
                        format!("{:?}", Some(column)),
                        "{}: {name}",
                        path.display()
                    );
                    columns_seen += 1;
                }
                assert!(handle
                    .frame_column(axis, "no such column")
                    .expect("absent")
                    .is_none());
            }
        }
    }
    assert!(columns_seen > 50, "only {columns_seen} columns compared");
}

#[test]
fn a_frame_of_strings_is_sized_by_its_strings() {
    // A layer of strings as a dense frame: 32 bytes a value count against the limit, not the
    // 8 of a reference.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("words.h5ad");
    let mut a = AnnData::new(50, 4);
    let words = ndarray::Array2::from_shape_fn((50, 4), |(i, j)| format!("w{i}_{j}"));
    a.insert_layer("words", Matrix::Dense(ArrayData::from(words.into_dyn())))
        .unwrap();
    a.write_h5ad(&path, &annpage::WriteOptions::default())
        .unwrap();
    let backed = read_h5ad_backed(&path, Mode::Read, BackedOptions::default()).unwrap();
    let err = backed
        .to_df(Some("words"), 50 * 4 * 8)
        .unwrap_err()
        .to_string();
    assert!(err.contains("above the limit"), "{err}");
    let df = backed.to_df(Some("words"), 50 * 4 * 32).unwrap();
    assert_eq!(df.columns().len(), 4);
}
