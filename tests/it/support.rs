//! Helpers shared by the topic modules: fixtures, handles, seeded selections, and comparing a
//! backed result with the same selection of the whole file read in memory.

pub(crate) use std::collections::BTreeSet;
pub(crate) use std::path::{Path, PathBuf};
pub(crate) use std::sync::Arc;

pub(crate) use annpage::backed::{
    read_h5ad_backed, BackedAnnData, BackedOptions, BatchOptions, BlockCache, Mode, ReadOptions,
    ReadPath,
};
pub(crate) use annpage::data::{
    ArrayData, Categorical, Column, CompactString, DataFrame, Element, Mapping, Matrix, Scalar,
    SparseFormat, SparseMatrix,
};
pub(crate) use annpage::inspect::{describe, ElementInfo};
pub(crate) use annpage::{read_h5ad, AnnData, Result, Selection, WriteOptions};
pub(crate) use annpage_engine::format::{write_h5ad, AnnDataElements, RawElements};
pub(crate) use annpage_engine::select::AxisIndex;
pub(crate) use indexmap::IndexMap;
pub(crate) use ndarray::Array2;

pub(crate) fn fixture(name: &str) -> PathBuf {
    annpage_tests::fixtures_dir().join(name)
}

/// `a` written to `path` with gzip (level 4, h5py's): a copy whose chunks are decoded whole.
pub(crate) fn write_gzip(a: &AnnData, path: &Path) {
    let options = WriteOptions {
        compression: annpage::Compression::Gzip(4),
        ..WriteOptions::default()
    };
    a.write_h5ad(path, &options).unwrap();
}

pub(crate) fn open(path: impl AsRef<Path>, budget: usize) -> BackedAnnData {
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
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// A selection of an axis of `n` positions named `names`: every kind, chosen by `seed`.
pub(crate) fn selection(seed: u64, n: usize, names: &[CompactString]) -> Selection {
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
pub(crate) fn fixed_selections(n: usize, names: &[CompactString]) -> Vec<Selection> {
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
pub(crate) fn assert_same(got: Result<AnnData>, want: Result<AnnData>, what: &str) {
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
pub(crate) fn assert_elements_eq(got: AnnDataElements, want: AnnDataElements, what: &str) {
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

pub(crate) const FIXTURES: &[&str] = &[
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
pub(crate) fn has_nan(name: &str) -> bool {
    matches!(
        name,
        "x_nan_inf.h5ad"
            | "obs_var_columns.h5ad"
            | "all_elements.h5ad"
            | "all_elements_gzip.h5ad"
            | "all_elements_lzf.h5ad"
    )
}

/// A copy of a fixture in a temporary directory.
pub(crate) fn scratch(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.h5ad");
    std::fs::copy(fixture(name), &path).unwrap();
    (dir, path)
}

pub(crate) fn strings(v: &[&str]) -> ArrayData {
    ArrayData::from(v.to_vec())
}

pub(crate) fn assert_same_layout(got: &ElementInfo, want: &ElementInfo, what: &str) {
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
