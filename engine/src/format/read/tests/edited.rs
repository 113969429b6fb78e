//! Files edited from a minimal current one with h5py: malformed or broken (errors naming the
//! file and the element), and odd but valid layouts that anndata reads.

use super::*;

/// The script of a minimal current file (X 2×3 CSR, obs c0..c1 with a categorical, var
/// g0..g2).
const BASE: &str =
    "a = ad.AnnData(X=sp.csr_matrix(np.array([[1, 0, 2], [0, 3, 0]], dtype='f4')),\n\
         \x20   obs=pd.DataFrame({'c': pd.Categorical(['u', 'v'])}, index=['c0', 'c1']),\n\
         \x20   var=pd.DataFrame(index=['g0', 'g1', 'g2']))\n\
         a.write_h5ad(path)\n";

/// Python lines run with the file open for appending as `f`.
fn edit_script(extra: &str) -> String {
    let body: String = extra.lines().map(|l| format!("    {l}\n")).collect();
    format!("with h5py.File(path, 'a') as f:\n{body}")
}

/// The minimal current file with `extra` applied (see [`edit_script`]).
fn current_file_with(extra: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    anndata_file(&format!("{BASE}{}", edit_script(extra)))
}

/// Copies of the minimal current file (written once), each edited by a few h5py lines.
struct Variants {
    /// Holds `base` and the edited copies.
    _dir: tempfile::TempDir,
    base: std::path::PathBuf,
}

impl Variants {
    fn new() -> Self {
        let (dir, base) = anndata_file(BASE);
        Variants { _dir: dir, base }
    }

    fn with(&self, extra: &str) -> std::path::PathBuf {
        crate::testutil::py_edit(&self.base, &edit_script(extra))
    }

    fn read_err(&self, extra: &str) -> (String, Error) {
        let path = self.with(extra);
        let err = read_h5ad(&path).expect_err("reading should fail");
        let msg = err.to_string();
        assert!(
            msg.starts_with(&path.display().to_string()),
            "the message should name the file: {msg}"
        );
        (msg, err)
    }
}

#[test]
fn malformed_files_give_errors_naming_file_and_element() {
    let v = Variants::new();
    let (msg, err) = v.read_err("del f['X/indptr']");
    assert!(
        msg.ends_with("/X: malformed element: missing member 'indptr'"),
        "{msg}"
    );
    assert_eq!(err.element(), Some("/X"));

    let (msg, _) = v.read_err("del f['X/indptr']; f['X/indptr'] = np.array([0, 1], dtype='i4')");
    assert!(
        msg.contains("/X: malformed element: indptr has 2 entries, expected 3"),
        "{msg}"
    );

    let (msg, _) =
        v.read_err("v = f['X/indptr'][:]; del f['X/indptr']; f['X/indptr'] = v.reshape(1, -1)");
    assert!(
        msg.contains("/X: malformed element: indptr has shape [1, 3], expected [3] (1-d)"),
        "{msg}"
    );

    let (msg, _) =
        v.read_err("f['X'].attrs.update({'encoding-type': 'array', 'encoding-version': '0.2.0'})");
    assert!(
        msg.contains("/X: unknown or unexpected encoding-type 'array' (version '0.2.0'), expected a dense or sparse matrix"),
        "{msg}"
    );

    let (msg, _) = v.read_err("f['X/indices'][0] = 7");
    assert!(
        msg.contains("/X: malformed element: 'indices': index 7 out of bounds"),
        "{msg}"
    );

    let (msg, err) = v.read_err("f['X'].attrs['encoding-type'] = 'zarr-thing'");
    assert!(
        msg.contains("/X: unknown or unexpected encoding-type 'zarr-thing'"),
        "{msg}"
    );
    assert!(matches!(
        err.root(),
        Error::UnexpectedEncoding {
            expected: "a dense or sparse matrix",
            ..
        }
    ));

    let (msg, _) =
        v.read_err("f['obs'].attrs.update({'encoding-type': 'dict', 'encoding-version': '0.1.0'})");
    assert!(msg.contains("/obs: unknown or unexpected encoding-type 'dict' (version '0.1.0'), expected a dataframe"), "{msg}");

    let (msg, _) = v.read_err("f['obs'].attrs['encoding-type'] = 'dict'");
    assert!(msg.contains("/obs: unsupported: encoding-version '0.2.0' of encoding-type 'dict' (anndata reads 0.1.0)"), "{msg}");

    let (msg, _) =
        v.read_err("f['obs'].attrs['column-order'] = np.array(['c', 'nope'], dtype=object)");
    assert!(
        msg.contains("/obs/nope: malformed element: missing member 'nope'"),
        "{msg}"
    );

    // An external link would open another file (here one that is gone).
    let (msg, _) = v.read_err("f['uns/ext'] = h5py.ExternalLink('elsewhere.h5ad', '/uns')");
    assert!(
        msg.contains("/uns/ext: unsupported: 'ext' is an external link to another file"),
        "{msg}"
    );

    // anndata reads a column listed n times n times (and writes no such frame).
    let (msg, _) =
        v.read_err("f['obs'].attrs['column-order'] = np.array(['c', 'c'], dtype=object)");
    assert!(
        msg.ends_with("/obs: malformed element: 'column-order' lists column 'c' twice"),
        "{msg}"
    );

    let (msg, _) = v.read_err("f['obs/c/codes'][0] = 5");
    assert!(
        msg.contains("/obs/c: malformed element: categorical code 5 out of range"),
        "{msg}"
    );

    // What anndata refuses: duplicate categories, an unknown, empty or unreadable
    // encoding at the root or below, no obs.
    for (edit, expected) in [
        (
            "f['obs/c/categories'][1] = 'u'",
            "/obs/c: malformed element: category 'u' appears twice",
        ),
        (
            "f.attrs['encoding-type'] = 'foo'",
            "/: unknown or unexpected encoding-type 'foo' (version '0.1.0'), expected anndata",
        ),
        (
            "f.attrs['encoding-type'] = ''",
            "/: malformed element: empty encoding-type with encoding-version '0.1.0'",
        ),
        (
            "f.attrs['encoding-version'] = '9.9.9'",
            "/: unsupported: encoding-version '9.9.9' of encoding-type 'anndata'",
        ),
        (
            "f['X'].attrs['encoding-version'] = '9.9.9'",
            "/X: unsupported: encoding-version '9.9.9' of encoding-type 'csr_matrix'",
        ),
        ("del f['obs']", "/: malformed element: missing member 'obs'"),
    ] {
        let (msg, _) = v.read_err(edit);
        assert!(msg.contains(expected), "{edit}: {msg}");
    }

    let (msg, _) = v.read_err("del f['X']; f['X'] = np.arange(3.0)");
    assert!(
        msg.contains("/X: shape mismatch: a matrix must be 2-d"),
        "{msg}"
    );

    let (msg, _) =
            v.read_err("f.create_group('layers/bad').attrs.update({'encoding-type': 'dataframe', 'encoding-version': '0.2.0'})");
    assert!(
        msg.contains("/layers/bad: unknown or unexpected encoding-type 'dataframe'"),
        "{msg}"
    );

    let (msg, _) = v.read_err("del f['obs/c/codes']; f['obs/c/codes'] = np.array([0.5, 1.0])");
    assert!(
        msg.contains("/obs/c/codes: malformed element: categorical codes must be integers"),
        "{msg}"
    );

    let (msg, _) = v.read_err(
            "d = f['X/data'][()]; del f['X/data']\n\
             ds = f.create_dataset('X/data', shape=d.shape, dtype='f4', chunks=d.shape, compression=32001, allow_unknown_filter=True)\n\
             ds.id.write_direct_chunk((0,), b'not blosc')",
        );
    assert!(
        msg.contains("/X/data: unsupported: the dataset is compressed with the blosc filter"),
        "{msg}"
    );
}

#[test]
fn broken_files_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.h5ad");
    let err = read_h5ad(&missing).unwrap_err();
    assert!(err.is_io(), "{err}");
    assert!(err.to_string().contains("missing.h5ad"), "{err}");

    let text = dir.path().join("text.h5ad");
    std::fs::write(&text, "this is not HDF5").unwrap();
    let err = read_h5ad(&text).unwrap_err();
    assert!(
        err.to_string().starts_with(&text.display().to_string()),
        "{err}"
    );

    let (_d, good) = current_file_with("f['uns'].create_dataset('big', data=np.arange(10000))");
    let bytes = std::fs::read(&good).unwrap();
    let truncated = dir.path().join("truncated.h5ad");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = read_h5ad(&truncated).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&truncated.display().to_string()),
        "{err}"
    );
}

#[test]
fn nullable_string_indices_read_as_anndata_0_13_writes_them() {
    let nullable_index = |values: &str, mask: &str| {
        format!(
                "del f['obs/_index']\n\
                 ns = f['obs'].create_group('_index')\n\
                 ns.attrs['encoding-type'] = 'nullable-string-array'; ns.attrs['encoding-version'] = '0.1.0'\n\
                 ns.create_dataset('values', data={values}, dtype=h5py.string_dtype())\n\
                 ns['mask'] = np.array({mask})"
            )
    };
    let (_d, path) = current_file_with(&nullable_index("['c0', 'c1']", "[False, False]"));
    let obs = read_h5ad(&path).unwrap().obs;
    assert_eq!(strings(obs.index()), ["c0", "c1"]);
    // No `na-value`: pandas' `string` (anndata 0.12's reading), kept for the next write.
    assert_eq!(obs.index_string_na(), Some(crate::data::StringNa::Na));
    let (_d, path) = current_file_with(&nullable_index("['c0', '']", "[False, True]"));
    let e = read_h5ad(&path).unwrap_err();
    assert_eq!(e.element(), Some("/obs/_index"), "{e}");
    assert!(
        e.to_string()
            .contains("missing values in a data frame index"),
        "{e}"
    );
}

#[test]
fn odd_but_valid_layouts_read() {
    let (_d, path) = current_file_with(
            "del f['var/_index']; f['var/_index'] = np.array([10, 20, 30])\n\
             f['var/_index'].attrs['encoding-type'] = 'array'; f['var/_index'].attrs['encoding-version'] = '0.2.0'\n\
             f['obs'].attrs['column-order'] = np.array([b'c'], dtype='S1')\n\
             f['obs/c'].attrs['ordered'] = 1\n\
             u = f['uns']\n\
             g = u.create_group('awk')\n\
             g.attrs['encoding-type'] = 'awkward-array'; g.attrs['encoding-version'] = '0.1.0'\n\
             g.attrs['length'] = 2; g.attrs['form'] = '{}'\n\
             g['node0-offsets'] = np.array([0, 1, 3], dtype='i8')\n\
             w = u.create_dataset('weird', data=np.arange(4, dtype='f2'))\n\
             w.attrs['encoding-type'] = 'future-thing'; w.attrs['encoding-version'] = '9.9.9'\n\
             ns = u.create_group('nstr')\n\
             ns.attrs['encoding-type'] = 'nullable-string-array'; ns.attrs['encoding-version'] = '0.1.0'\n\
             ns.create_dataset('values', data=['a', ''], dtype=h5py.string_dtype())\n\
             ns['mask'] = np.array([False, True])\n\
             cx = u.create_dataset('complex', data=np.complex128(1 + 2j))\n\
             cx.attrs['encoding-type'] = 'numeric-scalar'; cx.attrs['encoding-version'] = '0.2.0'\n\
             s = u.create_group('old_sparse')\n\
             s.attrs['h5sparse_format'] = 'csc'; s.attrs['h5sparse_shape'] = np.array([2, 2])\n\
             s['data'] = np.array([5.0]); s['indices'] = np.array([1], dtype='i2'); s['indptr'] = np.array([0, 0, 1], dtype='u4')\n\
             n = u.create_group('neighbors'); n.attrs['encoding-type'] = 'dict'; n.attrs['encoding-version'] = '0.1.0'\n\
             n['connectivities'] = np.eye(2); n['connectivities'].attrs['encoding-type'] = 'array'; n['connectivities'].attrs['encoding-version'] = '0.2.0'",
        );
    let ad = read_h5ad(&path).unwrap();
    // A non-string obs/var index becomes strings, as anndata makes it.
    assert_eq!(strings(ad.var.index()), ["10", "20", "30"]);
    let Column::Categorical(c) = col(&ad.obs, "c") else {
        panic!("obs.c should be categorical")
    };
    assert!(c.ordered, "ordered stored as an integer");
    let Some(Element::Opaque(RawNode::Group { attrs, children })) = ad.uns.get("awk") else {
        panic!("awkward array should be opaque")
    };
    assert_eq!(
        attrs.get("length"),
        Some(&ArrayData::I64(ArrayD::from_elem(IxDyn(&[]), 2)))
    );
    assert_eq!(ad.uns.get("awk").and_then(Element::nrows), Some(2));
    let Some(RawNode::Dataset {
        data: crate::data::RawData::Array(offsets),
        ..
    }) = children.get("node0-offsets")
    else {
        panic!("awkward child dataset")
    };
    assert_eq!(offsets, &ArrayData::from(vec![0i64, 1, 3]));
    let Some(Element::Opaque(RawNode::Dataset {
        data: crate::data::RawData::Array(w),
        ..
    })) = ad.uns.get("weird")
    else {
        panic!("unknown encoding should be opaque")
    };
    let halves: Vec<half::f16> = (0..4).map(|i| half::f16::from_f32(i as f32)).collect();
    assert_eq!(w, &ArrayData::from(halves));
    let Some(Element::Nullable(ns)) = ad.uns.get("nstr") else {
        panic!("nullable string array")
    };
    assert_eq!(
        (ns.kind(), ns.mask()),
        (
            NullableKind::String(crate::data::StringNa::Na),
            &[false, true][..]
        )
    );
    let Some(Element::Opaque(RawNode::Dataset {
        data: crate::data::RawData::Compound { fields, .. },
        ..
    })) = ad.uns.get("complex")
    else {
        panic!("complex scalar should be opaque")
    };
    assert_eq!(
        fields[0],
        (
            "r".to_string(),
            ArrayData::F64(ArrayD::from_elem(IxDyn(&[]), 1.0))
        )
    );
    let Some(Element::Sparse(old)) = ad.uns.get("old_sparse") else {
        panic!("h5sparse group in uns should be sparse")
    };
    assert_eq!(
        (old.format(), old.shape(), old.indices()),
        (SparseFormat::Csc, (2, 2), &[1u32][..])
    );
    // A dense connectivities matrix in uns['neighbors'] moves to obsp.
    assert!(matches!(
        ad.obsp.get("connectivities"),
        Some(Matrix::Dense(_))
    ));
    assert!(matches!(ad.uns.get("neighbors"), Some(Element::Dict(n)) if n.is_empty()));
}

#[test]
fn element_level_readers_check_the_encoding() {
    let (_d, path) =
            current_file_with("f['uns/s'] = 'x'; f['uns/s'].attrs.update({'encoding-type': 'string', 'encoding-version': '0.2.0'})");
    let f = hdf5::File::open(&path).unwrap();
    assert!(matches!(read_matrix(&*f, "X"), Ok(Matrix::Sparse(_))));
    assert_eq!(read_dataframe(&*f, "obs").unwrap().nrows(), 2);
    let err = read_dataframe(&*f, "X").unwrap_err();
    assert_eq!(err.element(), Some("/X"));
    assert!(matches!(
        err.root(),
        Error::UnexpectedEncoding {
            expected: "a dataframe",
            ..
        }
    ));
    let err = read_matrix(&*f, "obs").unwrap_err();
    assert_eq!(err.to_string(), "/obs: unknown or unexpected encoding-type 'dataframe' (version '0.2.0'), expected a dense or sparse matrix");
    let uns = f.group("uns").unwrap();
    assert_eq!(
        read_element(&uns, "s").unwrap(),
        Element::Scalar(Scalar::String("x".into()))
    );
    let err = read_element(&uns, "absent").unwrap_err();
    assert_eq!(
        err.to_string(),
        "/uns/absent: malformed element: missing member 'absent'"
    );
    assert!(read_mapping(&*f, "uns").unwrap().contains_key("s"));
    assert!(read_mapping(&*f, "X").is_err());
}

#[test]
fn compound_frames_and_multicol_keys_follow_anndata() {
    let (_d, path) = py_file(
            "multicol.h5ad",
            "with h5py.File(path, 'w') as f:\n\
             \x20   f['X'] = np.zeros((2, 1), dtype='f4')\n\
             \x20   f['obs'] = np.array([(1, 0.5, 1.0, 3), (2, 1.5, 2.0, 4)],\n\
             \x20       dtype=[('index', 'i8'), ('X_tsne0', 'f8'), ('X_tsne1', 'f8'), ('other', 'i4')])\n\
             \x20   f['var'] = np.array([(0.25, 1)], dtype=[('index', 'f8'), ('mix1', 'f4')])\n\
             \x20   f.create_group('uns')['obs_keys_multicol'] = np.array([b'X_tsne', b'none'], dtype='S6')\n\
             \x20   f['uns']['var_keys_multicol'] = np.array([b'mi'], dtype='S2')\n",
        );
    let ad = read_h5ad(&path).unwrap();
    assert_eq!(strings(ad.obs.index()), ["1", "2"]);
    assert_eq!(strings(ad.var.index()), ["0.25"]);
    assert_eq!(ad.obs.columns().keys().collect::<Vec<_>>(), ["other"]);
    assert_eq!(
        ad.obsm.get("X_tsne"),
        Some(&Element::Array(ArrayData::from(ndarray::array![
            [0.5, 1.0],
            [1.5, 2.0]
        ])))
    );
    assert_eq!(
        ad.obsm.get("none"),
        Some(&Element::Array(ArrayData::zeros(DType::F64, &[2, 0])))
    );
    // A single (one-element byte string) key is split into characters, as `list(str)`.
    assert_eq!(ad.varm.keys().collect::<Vec<_>>(), ["m", "i"]);
    assert_eq!(
        ad.varm.get("m"),
        Some(&Element::Array(ArrayData::from(ndarray::array![[1.0f32]])))
    );
    assert!(ad.var.columns().is_empty());
    assert!(ad.uns.is_empty());
}

#[test]
fn link_cycles_and_deep_nesting_are_refused_by_every_reading_walk() {
    let v = Variants::new();
    let dict = "g.attrs['encoding-type'] = 'dict'\ng.attrs['encoding-version'] = '0.1.0'";
    let cases = [
        (
            format!("g = f.create_group('uns/pca')\n{dict}\ng['loop'] = g"),
            "/uns/pca/loop",
            "already read at /uns/pca (a link cycle",
        ),
        (
            "f['uns/root'] = f['/']".to_string(),
            "/uns/root",
            "already read at / (a link cycle",
        ),
        (
            "g = f['uns']\nfor _ in range(100):\n    g = g.create_group('d')".to_string(),
            "/uns/d/d/d",
            "nested more than 64 levels deep",
        ),
    ];
    for (i, (edit, element, what)) in cases.iter().enumerate() {
        let path = v.with(edit);
        let mut errors = vec![read_h5ad(&path).unwrap_err()];
        match i {
            // Describing shows the group reached again as a link instead of entering it.
            0 | 1 => {
                let info = crate::file::inspect::describe(&path).unwrap();
                let target = what.split("at ").nth(1).unwrap().split(' ').next().unwrap();
                let shown = format!("{info:?}");
                assert!(
                    shown.contains(&format!("link to {target}")),
                    "{edit}: {shown}"
                );
            }
            _ => errors.push(crate::file::inspect::describe(&path).unwrap_err()),
        }
        for err in errors {
            let msg = err.to_string();
            assert!(msg.contains(what), "{edit}: {msg}");
            assert!(err.element().unwrap().starts_with(element), "{edit}: {msg}");
            assert!(msg.starts_with(&path.display().to_string()), "{msg}");
        }
    }
    // Elements kept verbatim are walked under the same guard.
    let (msg, err) = v.read_err(
        "g = f.create_group('uns/aw')\ng.attrs['encoding-type'] = 'awkward-array'\n\
             g.attrs['encoding-version'] = '0.1.0'\ng['x/back'] = g",
    );
    assert_eq!(err.element(), Some("/uns/aw/x/back"), "{msg}");
    assert!(msg.contains("a link cycle"), "{msg}");
}
