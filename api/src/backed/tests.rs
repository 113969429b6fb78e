//! Tests of backed mode: every materialisation of a backed selection against the same
//! selection of the whole file read in memory.

use std::collections::BTreeSet;
use std::path::PathBuf;

use annpage_engine::data::{
    Categorical, Column, Element, Matrix, Scalar, SparseFormat, SparseMatrix,
};
use annpage_engine::format::inspect::{describe, ElementInfo};
use annpage_engine::format::AnnDataElements;
use annpage_engine::select::AxisIndex;
use ndarray::Array2;

use super::*;
use crate::{read_h5ad, AnnData};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name)
}

fn open(path: impl AsRef<Path>, budget: usize) -> BackedAnnData {
    read_h5ad_backed(
        path,
        Mode::Read,
        BackedOptions {
            cache_bytes: budget,
            ..BackedOptions::default()
        },
    )
    .unwrap()
}

/// A small deterministic generator (xorshift), for selections and matrices.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// A selection of an axis of `n` positions named `names`: every kind, chosen by `seed`.
fn selection(seed: u64, n: usize, names: &[String]) -> Selection {
    let mut r = Rng::new(seed);
    let bound = |r: &mut Rng| {
        let v = r.below(2 * n + 3) as isize - n as isize - 1;
        (r.below(4) != 0).then_some(v)
    };
    match seed % 7 {
        0 => Selection::All,
        1 | 2 => {
            let step = (r.below(4) as isize + 1) * if r.below(2) == 0 { 1 } else { -1 };
            Selection::slice(bound(&mut r), bound(&mut r), step)
        }
        3 if n > 0 => {
            // Unsorted, with repeats, some counted from the end.
            let k = r.below(2 * n + 1);
            Selection::Positions(
                (0..k)
                    .map(|_| {
                        let p = r.below(n) as isize;
                        if r.below(3) == 0 {
                            p - n as isize
                        } else {
                            p
                        }
                    })
                    .collect(),
            )
        }
        4 => Selection::Mask((0..n).map(|_| r.below(3) != 0).collect()),
        5 if n > 0 => {
            // Distinct names that occur once along the axis (others are ambiguous).
            let mut seen = std::collections::HashMap::new();
            for name in names {
                *seen.entry(name.as_str()).or_insert(0) += 1;
            }
            let mut picked: Vec<usize> = (0..n)
                .filter(|&i| seen[names[i].as_str()] == 1 && r.below(2) == 0)
                .collect();
            // A permutation of distinct names.
            for i in (1..picked.len()).rev() {
                picked.swap(i, r.below(i + 1));
            }
            Selection::names(picked.into_iter().map(|i| names[i].clone()))
        }
        _ => Selection::positions((0..n).rev().step_by(3)),
    }
}

/// Fixed selections covering each kind, for an axis of `n` positions named `names`.
fn fixed_selections(n: usize, names: &[String]) -> Vec<Selection> {
    let mut out = vec![
        Selection::All,
        Selection::slice(Some(1), None, 2),
        Selection::slice(None, None, -3),
        Selection::slice(Some(-5), Some(-1), 1),
        Selection::Mask((0..n).map(|i| i % 3 != 1).collect()),
        Selection::positions([]),
    ];
    if n > 0 {
        out.push(Selection::Positions(vec![
            (n - 1) as isize,
            0,
            (n / 2) as isize,
            0,
            -1,
        ]));
        let picked = [n - 1, n / 3, 0];
        let mut distinct: Vec<usize> = Vec::new();
        for p in picked {
            if !distinct.contains(&p) {
                distinct.push(p);
            }
        }
        out.push(Selection::names(distinct.iter().map(|&i| names[i].clone())));
    }
    out
}

/// Backed and in-memory results agree: both fail, or both give equal elements.
fn assert_same(got: Result<AnnData>, want: Result<AnnData>, what: &str) {
    match (got, want) {
        (Ok(g), Ok(w)) => assert_elements_eq(g.into_elements(), w.into_elements(), what),
        (Err(_), Err(_)) => {}
        (g, w) => panic!(
            "{what}: backed gave {:?}, in memory {:?}",
            g.map(|a| a.shape()),
            w.map(|a| a.shape())
        ),
    }
}

/// Compares two objects element by element (through their `Debug` form, so that NaN equals
/// NaN), naming the first element that differs.
fn assert_elements_eq(got: AnnDataElements, want: AnnDataElements, what: &str) {
    fn short(v: &impl std::fmt::Debug) -> String {
        let s = format!("{v:?}");
        if s.len() > 400 {
            format!(
                "{}…",
                &s[..s.char_indices().nth(400).map_or(s.len(), |(i, _)| i)]
            )
        } else {
            s
        }
    }
    /// `Debug` without the memory layout of arrays (strides of length-1 axes vary).
    fn layout_free(s: String) -> String {
        let mut out = String::with_capacity(s.len());
        let mut rest = s.as_str();
        while let Some(at) = rest.find(", strides=[") {
            out.push_str(&rest[..at]);
            let tail = &rest[at..];
            // Skip `, strides=[..], layout=.. (0x..)`.
            let end = tail.find(')').map_or(tail.len(), |e| e + 1);
            rest = &tail[end..];
        }
        out.push_str(rest);
        out
    }
    fn same<T: std::fmt::Debug + PartialEq>(a: &T, b: &T, what: &str, field: &str) {
        if a == b {
            return;
        }
        let (x, y) = (layout_free(format!("{a:?}")), layout_free(format!("{b:?}")));
        assert!(
            x == y,
            "{what}: {field} differs:\n got  {}\n want {}",
            short(a),
            short(b)
        );
    }
    fn maps<T: std::fmt::Debug + PartialEq>(
        a: &IndexMap<String, T>,
        b: &IndexMap<String, T>,
        what: &str,
        field: &str,
    ) {
        // anndata's mappings are unordered (HDF5 lists members in its own order).
        let keys = |m: &IndexMap<String, T>| m.keys().cloned().collect::<BTreeSet<_>>();
        assert_eq!(keys(a), keys(b), "{what}: {field} keys");
        for (k, v) in a {
            same(v, &b[k], what, &format!("{field}['{k}']"));
        }
    }
    same(&got.x, &want.x, what, "X");
    same(&got.obs.index(), &want.obs.index(), what, "obs index");
    same(
        &got.obs.index_name(),
        &want.obs.index_name(),
        what,
        "obs index name",
    );
    maps(got.obs.columns(), want.obs.columns(), what, "obs");
    same(&got.var.index(), &want.var.index(), what, "var index");
    maps(got.var.columns(), want.var.columns(), what, "var");
    maps(&got.obsm, &want.obsm, what, "obsm");
    maps(&got.varm, &want.varm, what, "varm");
    maps(&got.obsp, &want.obsp, what, "obsp");
    maps(&got.varp, &want.varp, what, "varp");
    maps(&got.layers, &want.layers, what, "layers");
    maps(&got.uns, &want.uns, what, "uns");
    same(&got.raw.is_some(), &want.raw.is_some(), what, "raw");
    if let (Some(a), Some(b)) = (&got.raw, &want.raw) {
        same(&a.x, &b.x, what, "raw.X");
        same(&a.var, &b.var, what, "raw.var");
        maps(&a.varm, &b.varm, what, "raw.varm");
    }
    // And exactly (NaN aside, Debug equality implies equality).
    let _ = (got, want);
}

const FIXTURES: &[&str] = &[
    "all_elements.h5ad",
    "all_elements_gzip.h5ad",
    "all_elements_lzf.h5ad",
    "awkward.h5ad",
    "empty_0x0.h5ad",
    "empty_obs.h5ad",
    "empty_var.h5ad",
    "no_x.h5ad",
    "nullable_strings.h5ad",
    "obs_var_columns.h5ad",
    "unicode.h5ad",
    "uns_none.h5ad",
    "uns_special.h5ad",
    "x_csc_f64.h5ad",
    "x_csr_f32.h5ad",
    "x_csr_i64.h5ad",
    "x_dense_bool.h5ad",
    "x_dense_f32.h5ad",
    "x_dense_f64.h5ad",
    "x_dense_i32.h5ad",
    "x_dense_i64.h5ad",
    "x_dense_u8.h5ad",
    "x_nan_inf.h5ad",
    "legacy/legacy_v0_5_csr.h5ad",
    "legacy/legacy_v0_5_dense.h5ad",
    "legacy/legacy_v0_6_csr.h5ad",
    "legacy/legacy_v0_6_dense.h5ad",
    "legacy/legacy_v0_7_csr.h5ad",
    "legacy/legacy_v0_7_dense.h5ad",
];

/// NaN ≠ NaN: fixtures with NaN values can only be compared through their bits.
fn has_nan(name: &str) -> bool {
    matches!(
        name,
        "x_nan_inf.h5ad"
            | "obs_var_columns.h5ad"
            | "all_elements.h5ad"
            | "all_elements_gzip.h5ad"
            | "all_elements_lzf.h5ad"
    )
}

#[test]
fn opening_reads_no_matrix_data() {
    for name in FIXTURES {
        let b = open(fixture(name), 1 << 20);
        let stats = b.cache_stats();
        assert_eq!(
            (stats.bytes_read, stats.misses, stats.entries),
            (0, 0, 0),
            "{name}"
        );
        assert!(!b.is_view());
        let m = read_h5ad(fixture(name)).unwrap();
        assert_eq!(b.shape(), m.shape(), "{name}");
        assert_eq!(b.obs_names().unwrap(), m.obs_names(), "{name}");
        assert_eq!(b.var_names().unwrap(), m.var_names(), "{name}");
        assert_eq!(
            b.layer_names(),
            m.layers().keys().cloned().collect::<Vec<_>>()
        );
        assert_eq!(b.obsm_keys(), m.obsm().keys().cloned().collect::<Vec<_>>());
        assert_eq!(b.varm_keys(), m.varm().keys().cloned().collect::<Vec<_>>());
        assert_eq!(b.obsp_keys(), m.obsp().keys().cloned().collect::<Vec<_>>());
        assert_eq!(b.varp_keys(), m.varp().keys().cloned().collect::<Vec<_>>());
        assert_eq!(b.x().map(|x| x.shape()), m.x().map(Matrix::shape), "{name}");
        // Names and frames are not matrix data either.
        assert_eq!(b.cache_stats().bytes_read, 0, "{name}");
    }
}

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
            let names_o: Vec<String> = first.obs_names().map(str::to_owned).collect();
            let names_v: Vec<String> = first.var_names().map(str::to_owned).collect();
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

/// anndata: in a view, a data frame in `obsm`/`varm` keeps only the categories its rows use
/// (`b[[3, 1], [2, 0]].obsm['df']`, its `to_memory()` and the file it writes); the file's own
/// handle keeps every category, there and in `obs` (`b.obsm['df']`, `b.to_memory()`).
#[test]
fn aligned_data_frames_lose_unused_categories_in_views_only() {
    let a = crate::testdata::example_with_aligned_frames();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("frames.h5ad");
    a.write_h5ad(&path, &WriteOptions::default()).unwrap();
    let b = open(&path, 1 << 20);
    let whole = read_h5ad(&path).unwrap();
    assert_eq!(b.obsm("df").unwrap(), whole.obsm()["df"]);
    assert_eq!(b.obs().unwrap(), *whole.obs());
    assert_eq!(b.to_memory().unwrap(), whole);
    let Some(Column::Categorical(ct)) = whole.obs().column("ct") else {
        panic!("categorical ct expected")
    };
    assert_eq!(ct.categories.len(), 4);

    let (o, v) = (Selection::positions([3, 1]), Selection::positions([2, 0]));
    let want = whole.subset(&o, &v).unwrap();
    let Element::DataFrame(df) = &want.obsm()["df"] else {
        panic!("data frame expected")
    };
    let Some(Column::Categorical(ct)) = df.column("ct") else {
        panic!("categorical ct expected")
    };
    assert_eq!(ct.categories, ArrayData::from(vec!["B", "NK"]));
    let view = b.slice(&o, &v).unwrap();
    assert_eq!(view.obsm("df").unwrap(), want.obsm()["df"]);
    assert_eq!(view.varm("df").unwrap(), want.varm()["df"]);
    assert_eq!(view.to_memory().unwrap(), want);
    let out = dir.path().join("cut.h5ad");
    view.write_h5ad(&out, &WriteOptions::default()).unwrap();
    assert_eq!(read_h5ad(&out).unwrap(), want);
    // The whole file as a view, like `b[:, :]`, drops `'unused'` as well.
    let all = b.slice(&Selection::All, &Selection::All).unwrap();
    assert_eq!(
        all.to_memory().unwrap(),
        whole.subset(&Selection::All, &Selection::All).unwrap()
    );
    assert_ne!(all.to_memory().unwrap(), whole);
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

/// The streaming writer's file reads back as `to_memory()`, and (for whole major slices)
/// its HDF5 layout is the in-memory writer's, dataset by dataset, chunks included.
#[test]
fn written_files_read_back_as_to_memory() {
    let dir = tempfile::tempdir().unwrap();
    let options = [
        WriteOptions::default(),
        WriteOptions {
            compression: crate::Compression::Gzip(4),
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
        compression: crate::Compression::Gzip(4),
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
        compression: crate::Compression::Gzip(6),
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

fn assert_same_layout(got: &ElementInfo, want: &ElementInfo, what: &str) {
    assert_eq!(got.path, want.path, "{what}");
    assert_eq!(
        (
            &got.encoding,
            &got.dtype,
            &got.shape,
            &got.nnz,
            &got.storage
        ),
        (
            &want.encoding,
            &want.dtype,
            &want.shape,
            &want.nnz,
            &want.storage
        ),
        "{what}: {}",
        got.path
    );
    let names = |e: &ElementInfo| {
        e.children
            .iter()
            .map(|c| c.path.clone())
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(names(got), names(want), "{what}: {}", got.path);
    for child in &got.children {
        let other = want.children.iter().find(|c| c.path == child.path).unwrap();
        assert_same_layout(child, other, what);
    }
}

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
    // Annotations are cached per handle and reserved from the budget, not read as blocks.
    let obs = b.obs().unwrap();
    let s1 = b.cache_stats();
    assert_eq!(s1.bytes_read, 0);
    assert!(s1.bytes_reserved > 0, "{s1:?}");
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

/// A copy of a fixture in a temporary directory.
fn scratch(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.h5ad");
    std::fs::copy(fixture(name), &path).unwrap();
    (dir, path)
}

fn strings(v: &[&str]) -> ArrayData {
    ArrayData::from(v.to_vec())
}

/// Every kind of change, applied through a ReadWrite handle and to the in-memory object: the
/// file read back equals the changed object, and anndata reads it.
#[test]
fn read_write_round_trip() {
    let (dir, path) = scratch("all_elements.h5ad");
    let mut expected = read_h5ad(&path).unwrap();
    let n_obs = expected.n_obs();
    let n_vars = expected.n_vars();
    let b = read_h5ad_backed(&path, Mode::ReadWrite, BackedOptions::default()).unwrap();
    assert_eq!(b.mode(), Mode::ReadWrite);
    let before = b.obs().unwrap();

    let score = Column::Array(ArrayData::from(
        (0..n_obs).map(|i| i as f64 * 0.5).collect::<Vec<_>>(),
    ));
    let replaced = Column::Array(ArrayData::from(vec![7i64; n_obs]));
    let group = Column::Categorical(
        Categorical::new(
            (0..n_obs).map(|i| (i % 2) as i32).collect(),
            strings(&["a", "b"]),
            false,
        )
        .unwrap(),
    );
    let first_var_column = expected.var().columns().keys().next().unwrap().clone();
    let replaced_name = before.columns().keys().next().unwrap().clone();
    let pcs = Element::Array(ArrayData::from(Array2::from_shape_fn(
        (n_obs, 3),
        |(i, j)| (i * 3 + j) as f32,
    )));
    let layer = Matrix::Sparse(
        SparseMatrix::new(
            SparseFormat::Csr,
            (n_obs, n_vars),
            (0..=n_obs as u64).collect(),
            (0..n_obs as u32).map(|i| i % n_vars as u32).collect(),
            ArrayData::from(vec![1.5f32; n_obs]),
        )
        .unwrap(),
    );
    let old_layer = b.layer_names()[0].clone();
    let old_varm = b.varm_keys()[0].clone();
    let old_uns = b.uns_keys()[0].clone();

    b.insert_obs_column("score", score.clone()).unwrap();
    b.insert_obs_column(replaced_name.clone(), replaced.clone())
        .unwrap();
    b.insert_obs_column("group", group.clone()).unwrap();
    b.remove_var_column(&first_var_column).unwrap();
    b.insert_uns("note", Element::Scalar(Scalar::String("hello".into())))
        .unwrap();
    b.remove_uns(&old_uns).unwrap();
    b.insert_obsm("X_new", pcs.clone()).unwrap();
    b.insert_obsm("vector", Element::Array(ArrayData::from(vec![1u8; n_obs])))
        .unwrap();
    b.remove_varm(&old_varm).unwrap();
    b.insert_layer("fresh", layer.clone()).unwrap();
    b.remove_layer(&old_layer).unwrap();
    assert!(b.has_pending_changes());

    expected.obs_mut().insert("score", score).unwrap();
    expected
        .obs_mut()
        .insert(replaced_name.clone(), replaced.clone())
        .unwrap();
    expected.obs_mut().insert("group", group).unwrap();
    expected.var_mut().remove(&first_var_column);
    expected.uns_mut().insert(
        "note".into(),
        Element::Scalar(Scalar::String("hello".into())),
    );
    expected.uns_mut().shift_remove(&old_uns);
    expected.insert_obsm("X_new", pcs).unwrap();
    expected
        .insert_obsm("vector", Element::Array(ArrayData::from(vec![1u8; n_obs])))
        .unwrap();
    expected.remove_varm(&old_varm);
    expected.insert_layer("fresh", layer).unwrap();
    expected.remove_layer(&old_layer);

    // Pending changes are visible before the flush, through clones and views.
    let clone = b.clone();
    assert_eq!(clone.obs().unwrap().column(&replaced_name), Some(&replaced));
    let view = clone
        .slice(&Selection::from(0..4), &Selection::All)
        .unwrap();
    assert_eq!(view.layer("fresh").unwrap().shape(), (4, n_vars));
    assert_same(
        b.to_memory(),
        expected.subset(&Selection::All, &Selection::All),
        "pending",
    );
    // Views cannot change the file.
    assert!(view
        .insert_uns("x", Element::Scalar(Scalar::I64(1)))
        .is_err());
    // Bad values are refused.
    assert!(b
        .insert_obs_column("short", Column::Array(ArrayData::from(vec![1i8])))
        .is_err());
    assert!(b
        .insert_layer(
            "bad",
            Matrix::Dense(ArrayData::from(Array2::<f32>::zeros((2, 2))))
        )
        .is_err());
    assert!(b
        .insert_uns("a/b", Element::Scalar(Scalar::I64(1)))
        .is_err());
    assert!(b.remove_layer("no_such_layer").is_err());
    assert!(b.remove_obs_column("no_such_column").is_err());

    b.flush().unwrap();
    assert!(!b.has_pending_changes());
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files, ["data.h5ad"]);
    // The handle now reads the new file; a fresh read gives the changed object.
    let back = read_h5ad(&path).unwrap();
    assert_elements_eq(
        back.clone().into_elements(),
        expected.clone().into_elements(),
        "after flush",
    );
    assert_eq!(b.obs().unwrap(), back.obs().clone());
    assert_eq!(
        b.layer("fresh").unwrap().to_memory().unwrap(),
        back.layers()["fresh"]
    );
    assert_eq!(b.uns().unwrap(), back.uns().clone());

    // A change then dropping the last handle writes it back.
    b.remove_obs_column("score").unwrap();
    drop(clone);
    drop(view);
    drop(b);
    let again = read_h5ad(&path).unwrap();
    assert!(again.obs().column("score").is_none());
    assert!(again.obs().column("group").is_some());

    // The real anndata reads the result.
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    if python.exists() {
        let out = std::process::Command::new(python)
            .arg("-c")
            .arg("import sys, anndata as ad; a = ad.read_h5ad(sys.argv[1]); assert 'fresh' in a.layers and a.obsm['vector'].shape[1] == 1 and a.uns['note'] == 'hello' and list(a.obs['group'].cat.categories) == ['a', 'b'], a")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn read_mode_refuses_changes() {
    let (_dir, path) = scratch("all_elements.h5ad");
    let b = open(&path, 1 << 20);
    let n = b.n_obs();
    let col = Column::Array(ArrayData::from(vec![0i64; n]));
    let errors = [
        b.insert_obs_column("x", col.clone()).unwrap_err(),
        b.insert_var_column("x", Column::Array(ArrayData::from(vec![0i64; b.n_vars()])))
            .unwrap_err(),
        b.remove_obs_column("n_counts").unwrap_err(),
        b.remove_var_column("x").unwrap_err(),
        b.insert_uns("x", Element::Scalar(Scalar::I64(1)))
            .unwrap_err(),
        b.remove_uns("x").unwrap_err(),
        b.insert_obsm("x", Element::Array(ArrayData::from(vec![0i64; n])))
            .unwrap_err(),
        b.remove_obsm("X_pca").unwrap_err(),
        b.insert_varm("x", Element::Array(ArrayData::from(vec![0i64; b.n_vars()])))
            .unwrap_err(),
        b.remove_varm("PCs").unwrap_err(),
        b.remove_layer("counts").unwrap_err(),
        b.flush().unwrap_err(),
    ];
    for e in errors {
        assert!(e.to_string().contains("read-only"), "{e}");
    }
    assert!(!b.has_pending_changes());
    let bytes = std::fs::read(&path).unwrap();
    drop(b);
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(fixture("all_elements.h5ad")).unwrap()
    );
}

#[test]
fn legacy_files_open_read_only() {
    let (_dir, path) = scratch("legacy/legacy_v0_6_csr.h5ad");
    let e = read_h5ad_backed(&path, Mode::ReadWrite, BackedOptions::default()).unwrap_err();
    assert!(e.to_string().contains("legacy layout"), "{e}");
    // In read mode, X is still paged.
    let b = open(&path, 1 << 20);
    assert_eq!(b.cache_stats().bytes_read, 0);
    b.obs().unwrap();
    assert_eq!(b.cache_stats().bytes_read, 0);
    b.x().unwrap().to_memory().unwrap();
    assert!(b.cache_stats().bytes_read > 0);
}

#[test]
fn missing_files_are_io_errors() {
    let e =
        read_h5ad_backed(fixture("nope.h5ad"), Mode::Read, BackedOptions::default()).unwrap_err();
    assert!(e.is_io(), "{e}");
    assert!(e.to_string().contains("nope.h5ad"));
}

#[test]
fn fifos_are_refused_before_any_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pipe.h5ad");
    let made = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap();
    assert!(made.success());
    // Opening a FIFO, for reading or writing, would block until the other end comes.
    for mode in [Mode::Read, Mode::ReadWrite] {
        let e = read_h5ad_backed(&path, mode, BackedOptions::default()).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("pipe.h5ad") && msg.contains("not a regular file"),
            "{msg}"
        );
    }
    let e = read_h5ad(&path).unwrap_err().to_string();
    assert!(
        e.contains("pipe.h5ad") && e.contains("not a regular file"),
        "{e}"
    );
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

    fn names(v: &AnnData, obs: bool) -> Vec<String> {
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

#[test]
fn read_options_choose_the_path_and_threads() {
    let path = fixture("all_elements_gzip.h5ad");
    let expected = open(&path, 1 << 20).to_memory().unwrap();
    let off = ReadOptions {
        direct: false,
        ..ReadOptions::with_threads(1)
    };
    for read in [off, ReadOptions::with_threads(3)] {
        let options = BackedOptions {
            cache_bytes: 1 << 20,
            read: read.clone(),
            ..BackedOptions::default()
        };
        let adata = read_h5ad_backed(&path, Mode::Read, options).unwrap();
        let paths = adata.x().unwrap().read_paths().unwrap();
        assert_eq!(paths.len(), 2, "{paths:?}");
        for (dataset, how) in paths {
            assert!(dataset.starts_with("/X/"), "{dataset}");
            match (read.direct, how) {
                (false, ReadPath::Hdf5 { reason }) => assert!(reason.contains("turned off")),
                (true, ReadPath::Direct { filters, threads }) => {
                    assert_eq!((filters.as_str(), threads), ("gzip", 3));
                }
                (_, how) => panic!("{dataset}: {how} with {read:?}"),
            }
        }
        assert_eq!(adata.to_memory().unwrap(), expected, "{read:?}");
    }
}
