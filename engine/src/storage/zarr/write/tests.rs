//! Tests of the Zarr writer, its stores read back with zarr-python (and anndata where it has a
//! reader for what is written).

use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn};

use super::*;
use crate::storage::Compression;
use crate::testutil::run_python;

/// The layouts every test runs through: v2, v3 plain, v3 with anndata 0.13's automatic shards,
/// v3 with small explicit chunks and shards.
pub(super) fn layouts() -> Vec<(&'static str, ZarrOptions)> {
    vec![
        ("v2", ZarrOptions::unsharded(ZarrFormat::V2)),
        ("v3", ZarrOptions::unsharded(ZarrFormat::V3)),
        ("v3auto", ZarrOptions::default()),
        (
            "v3shards",
            ZarrOptions {
                chunk_rows: Some(2),
                shard_rows: Some(5),
                ..ZarrOptions::default()
            },
        ),
    ]
}

fn arr<T>(shape: &[usize], v: Vec<T>) -> ArrayD<T> {
    ArrayD::from_shape_vec(IxDyn(shape), v).unwrap()
}

fn scalar<T: Clone>(v: T) -> ArrayD<T> {
    ArrayD::from_elem(IxDyn(&[]), v)
}

fn strings(v: &[&str]) -> ArrayData {
    ArrayData::from(v.to_vec())
}

/// The metadata document of node `node` of the store at `store` (`.zarray`, `.zgroup` or
/// `zarr.json`), with v2 attributes under `attributes`.
fn metadata(store: &Path, node: &str) -> Value {
    let dir = store.join(node);
    let read = |f: &str| -> Option<Value> {
        let bytes = std::fs::read(dir.join(f)).ok()?;
        Some(serde_json::from_slice(&bytes).unwrap())
    };
    if let Some(v3) = read("zarr.json") {
        return v3;
    }
    let mut doc = read(".zarray").or_else(|| read(".zgroup")).unwrap();
    doc["attributes"] = read(".zattrs").unwrap_or(Value::Object(Map::new()));
    doc
}

/// Every file under `dir`, by relative path, with its bytes.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

/// Writes one array of every dtype (1-d, 2-d, 0-d, empty), strings with unicode, NUL and empty
/// values, and attributes of every kind on groups and arrays.
fn write_every_kind(root: &dyn GroupWriter) {
    let none = ArrayOptions::default();
    let w = |name: &str, a: ArrayData| {
        root.write_array(name, &a, &none).unwrap();
    };
    w("bool", ArrayData::from(vec![true, false, true]));
    w("i8", ArrayData::from(vec![-128i8, 0, 127]));
    w("i16", ArrayData::from(vec![-32768i16, 1, 32767]));
    w("i32", ArrayData::from(vec![i32::MIN, 2, i32::MAX]));
    w("i64", ArrayData::from(vec![i64::MIN, 3, i64::MAX]));
    w("u8", ArrayData::from(vec![0u8, 1, 255]));
    w("u16", ArrayData::from(vec![0u16, 1, 65535]));
    w("u32", ArrayData::from(vec![0u32, 1, u32::MAX]));
    w("u64", ArrayData::from(vec![0u64, 1, u64::MAX]));
    w("f32", ArrayData::from(vec![1.5f32, f32::NAN, -0.0]));
    w("f64", ArrayData::from(vec![f64::INFINITY, 1e-300, 0.1]));
    w("str", strings(&["a", "", "ünï 细胞 🧬", "nul\0in"]));
    w(
        "mat",
        ArrayData::F64(arr(&[4, 3], (0..12).map(f64::from).collect())),
    );
    w(
        "smat",
        ArrayData::String(arr(
            &[2, 2],
            vec!["a".into(), "b".into(), "c".into(), "".into()],
        )),
    );
    w("s0", ArrayData::String(scalar("hello ✓".into())));
    w("f0", ArrayData::F64(scalar(0.25)));
    w("i0", ArrayData::I64(scalar(0)));
    w("b0", ArrayData::Bool(scalar(true)));
    w("u0", ArrayData::U8(scalar(7)));
    w("e_f32", ArrayData::zeros(DType::F32, &[0]));
    w("e_str", ArrayData::zeros(DType::String, &[0]));
    w("e_2d", ArrayData::zeros(DType::I32, &[0, 3]));
    let a = root
        .write_array("tagged", &ArrayData::from(vec![1i32]), &none)
        .unwrap();
    a.set_str_attr("encoding-type", "array").unwrap();
    a.set_attr("n", &ArrayData::I64(scalar(5))).unwrap();

    root.set_str_attr("encoding-type", "anndata").unwrap();
    root.set_attr("strs", &strings(&["x", "ÿ"])).unwrap();
    root.set_attr("ints", &ArrayData::from(vec![20i64, 10]))
        .unwrap();
    root.set_attr("f", &ArrayData::F64(scalar(0.5))).unwrap();
    root.set_attr("f32", &ArrayData::F32(scalar(0.1))).unwrap();
    root.set_attr("b", &ArrayData::Bool(scalar(false))).unwrap();
    root.set_attr("empty", &ArrayData::zeros(DType::F64, &[0]))
        .unwrap();
    root.set_attr("big", &ArrayData::U64(scalar(u64::MAX)))
        .unwrap();
    root.set_attr("m", &ArrayData::from(ndarray::arr2(&[[1i32, 2], [3, 4]])))
        .unwrap();
    // Setting an attribute again replaces it.
    root.set_attr("b", &ArrayData::Bool(scalar(true))).unwrap();
    let g = root.create_group("g").unwrap();
    let h = g.create_group("h").unwrap();
    h.set_str_attr("encoding-type", "dict").unwrap();
    g.open_group("h").unwrap().set_str_attr("k", "v").unwrap();
}

/// Checks in zarr-python what [`write_every_kind`] wrote, in each store named in `names`.
const CHECK_EVERY_KIND: &str = r#"
import zarr, os
def check(store):
    g = zarr.open_group(store, mode='r')
    want = {'bool': ('bool', [True, False, True]), 'i8': ('int8', [-128, 0, 127]),
            'i16': ('int16', [-32768, 1, 32767]), 'i32': ('int32', [-2**31, 2, 2**31 - 1]),
            'i64': ('int64', [-2**63, 3, 2**63 - 1]), 'u8': ('uint8', [0, 1, 255]),
            'u16': ('uint16', [0, 1, 65535]), 'u32': ('uint32', [0, 1, 2**32 - 1]),
            'u64': ('uint64', [0, 1, 2**64 - 1]), 'f64': ('float64', [np.inf, 1e-300, 0.1])}
    for k, (dtype, values) in want.items():
        a = g[k]
        assert a.dtype == dtype and a.shape == (3,), (k, a.dtype, a.shape)
        assert a[...].tolist() == values, (k, a[...])
    f32 = g['f32'][...]
    assert f32.dtype == np.float32 and f32[0] == 1.5 and np.isnan(f32[1])
    assert f32[2] == 0 and np.signbit(f32[2])
    s = g['str']
    assert s.dtype.kind in 'OT' and s.shape == (4,), s.dtype
    assert s[...].tolist() == ['a', '', 'ünï 细胞 🧬', 'nul\0in']
    assert (g['mat'][...] == np.arange(12, dtype='f8').reshape(4, 3)).all()
    assert g['smat'][...].tolist() == [['a', 'b'], ['c', '']]
    assert g['s0'].shape == () and g['s0'][()] == 'hello ✓'
    for k, dtype, v in [('f0', 'float64', 0.25), ('i0', 'int64', 0), ('b0', 'bool', True),
                        ('u0', 'uint8', 7)]:
        a = g[k]
        assert a.shape == () and a.dtype == dtype and a[()] == v, (k, a.dtype, a[()])
    assert g['e_f32'].shape == (0,) and g['e_f32'].dtype == 'float32'
    assert g['e_str'].shape == (0,) and g['e_str'].dtype.kind in 'OT'
    assert g['e_2d'].shape == (0, 3) and g['e_2d'][...].shape == (0, 3)
    assert dict(g['tagged'].attrs) == {'encoding-type': 'array', 'n': 5}
    assert dict(g.attrs) == {'encoding-type': 'anndata', 'strs': ['x', 'ÿ'], 'ints': [20, 10],
                             'f': 0.5, 'f32': 0.1, 'b': True, 'empty': [], 'big': 2**64 - 1,
                             'm': [[1, 2], [3, 4]]}, dict(g.attrs)
    assert list(g.attrs) == ['encoding-type', 'strs', 'ints', 'f', 'f32', 'b', 'empty', 'big', 'm']
    assert dict(g['g/h'].attrs) == {'encoding-type': 'dict', 'k': 'v'}
    assert sorted(g['g'].group_keys()) == ['h']
for name in names:
    check(os.path.join(path, name))
"#;

#[test]
#[ignore = "checks the written file with h5py, zarr or anndata (the venv); ./dev test runs it"]
fn every_dtype_and_attribute_reads_back_in_zarr_python() {
    let dir = tempfile::tempdir().unwrap();
    let mut names = Vec::new();
    for (name, options) in layouts() {
        let root = create(&dir.path().join(name), &options).unwrap();
        write_every_kind(root.as_ref());
        names.push(format!("'{name}'"));
    }
    let script = format!("names = [{}]\n{CHECK_EVERY_KIND}", names.join(", "));
    run_python(&script, dir.path());
}

/// 11 rows of a 2-d float array and of strings, in blocks of uneven sizes, out of order.
fn blocks() -> (ArrayData, ArrayData, Vec<std::ops::Range<usize>>) {
    let mat = ArrayData::F64(arr(&[11, 3], (0..33).map(|v| f64::from(v) * 0.5).collect()));
    let words: Vec<String> = (0..11).map(|i| format!("w{}", "é".repeat(i))).collect();
    let words = ArrayData::from(arr(&[11], words));
    (mat, words, vec![7..8, 0..2, 2..7, 8..11])
}

#[test]
#[ignore = "checks the written file with h5py, zarr or anndata (the venv); ./dev test runs it"]
fn rows_written_in_pieces_equal_a_whole_write() {
    let dir = tempfile::tempdir().unwrap();
    let (mat, words, ranges) = blocks();
    for (name, options) in layouts() {
        for (tag, options) in [
            ("plain", options.clone()),
            (
                "rows3",
                ZarrOptions {
                    chunk_rows: Some(3),
                    ..options.clone()
                },
            ),
        ] {
            let gzip = ArrayOptions::compressed(Compression::Gzip(5));
            let whole = create(&dir.path().join(format!("{name}-{tag}-whole")), &options).unwrap();
            whole.write_array("mat", &mat, &gzip).unwrap();
            whole
                .write_array("words", &words, &ArrayOptions::default())
                .unwrap();
            let pieces = dir.path().join(format!("{name}-{tag}-pieces"));
            let root = create(&pieces, &options).unwrap();
            let m = root
                .create_array("mat", DType::F64, &[11, 3], &gzip)
                .unwrap();
            let w = root
                .create_array("words", DType::String, &[11], &ArrayOptions::default())
                .unwrap();
            for r in &ranges {
                m.write_rows(r.start, &mat.select(0, &r.clone().collect::<Vec<_>>()))
                    .unwrap();
                w.write_rows(r.start, &words.select(0, &r.clone().collect::<Vec<_>>()))
                    .unwrap();
            }
            // Rewriting rows in place changes nothing.
            m.write_rows(4, &mat.select(0, &[4, 5])).unwrap();
            let a = files(&dir.path().join(format!("{name}-{tag}-whole")));
            let b = files(&pieces);
            assert_eq!(
                a.iter().map(|f| &f.0).collect::<Vec<_>>(),
                b.iter().map(|f| &f.0).collect::<Vec<_>>(),
                "{name}-{tag}"
            );
            if options.format == ZarrFormat::V2
                || !(options.auto_shard || options.shard_rows.is_some())
            {
                // Chunks read, updated and encoded again end up as the whole write encodes them.
                assert!(a == b, "{name}-{tag}: the stores differ");
            } else {
                // Shards updated in place hold their inner chunks in another order: the same
                // metadata, the same values (checked below).
                let meta = |f: &[(PathBuf, Vec<u8>)]| {
                    f.iter()
                        .filter(|f| f.0.ends_with("zarr.json"))
                        .cloned()
                        .collect::<Vec<_>>()
                };
                assert!(meta(&a) == meta(&b), "{name}-{tag}: the metadata differ");
            }
        }
    }
    let script = r#"
import zarr, os
for d in sorted(os.listdir(path)):
    g = zarr.open_group(os.path.join(path, d), mode='r')
    assert (g['mat'][...] == np.arange(33, dtype='f8').reshape(11, 3) * 0.5).all(), d
    assert g['words'][...].tolist() == ['w' + 'é' * i for i in range(11)], d
"#;
    run_python(script, dir.path());
}

#[test]
#[ignore = "checks the written file with h5py, zarr or anndata (the venv); ./dev test runs it"]
fn sharded_arrays_have_zarr_python_s_layout() {
    let dir = tempfile::tempdir().unwrap();
    let (mat, _, _) = blocks();
    let options = ZarrOptions {
        chunk_rows: Some(2),
        shard_rows: Some(5),
        ..ZarrOptions::default()
    };
    let root = create(&dir.path().join("s.zarr"), &options).unwrap();
    root.write_array("mat", &mat, &ArrayOptions::default())
        .unwrap();
    let meta = metadata(&dir.path().join("s.zarr"), "mat");
    assert_eq!(
        meta["chunk_grid"]["configuration"]["chunk_shape"],
        serde_json::json!([6, 3])
    );
    let sharding = &meta["codecs"][0];
    assert_eq!(sharding["name"], "sharding_indexed");
    assert_eq!(
        sharding["configuration"]["chunk_shape"],
        serde_json::json!([2, 3])
    );
    assert_eq!(sharding["configuration"]["index_location"], "end");
    // Two shards of 6 rows: the second holds rows 6..11 and one row past the end.
    let shards: Vec<_> = files(&dir.path().join("s.zarr/mat"))
        .into_iter()
        .map(|f| f.0)
        .collect();
    assert_eq!(
        shards,
        [
            PathBuf::from("c/0/0"),
            PathBuf::from("c/1/0"),
            PathBuf::from("zarr.json")
        ]
    );
    let script = r#"
import zarr
a = zarr.open_array(path + '/mat', mode='r')
assert a.shards == (6, 3) and a.chunks == (2, 3), (a.shards, a.chunks)
assert (a[...] == np.arange(33, dtype='f8').reshape(11, 3) * 0.5).all()
assert (a[5:9, 1] == np.array([16, 19, 22, 25]) * 0.5).all()
"#;
    run_python(script, &dir.path().join("s.zarr"));
}

#[test]
#[ignore = "checks the written file with h5py, zarr or anndata (the venv); ./dev test runs it"]
fn resizable_arrays_grow_by_appended_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (mat, words, _) = blocks();
    for (name, options) in layouts() {
        let path = dir.path().join(name);
        let root = create(&path, &options).unwrap();
        let grow = ArrayOptions::default().resizable();
        let m = root
            .create_array("mat", DType::F64, &[0, 3], &grow)
            .unwrap();
        let w = root
            .create_array("words", DType::String, &[0], &grow)
            .unwrap();
        let mut lengths = Vec::new();
        for r in [0..3, 3..3, 3..8, 8..11] {
            let rows: Vec<usize> = r.collect();
            lengths.push(m.append_rows(&mat.select(0, &rows)).unwrap());
            w.append_rows(&words.select(0, &rows)).unwrap();
        }
        assert_eq!(lengths, [3, 3, 8, 11]);
        assert_eq!(metadata(&path, "mat")["shape"], serde_json::json!([11, 3]));
        // Rows of a grown array can still be rewritten.
        m.write_rows(10, &mat.select(0, &[10])).unwrap();
        let fixed = root
            .create_array("fixed", DType::I32, &[2], &ArrayOptions::default())
            .unwrap();
        let e = fixed.append_rows(&ArrayData::from(vec![1i32])).unwrap_err();
        assert!(e.to_string().contains("not created resizable"), "{e}");
        let e = m.append_rows(&ArrayData::from(vec![1.0f64])).unwrap_err();
        assert!(e.to_string().contains("do not fit"), "{e}");
    }
    let script = r#"
import zarr, os
for d in sorted(os.listdir(path)):
    g = zarr.open_group(os.path.join(path, d), mode='r')
    assert g['mat'].shape == (11, 3), (d, g['mat'].shape)
    assert (g['mat'][...] == np.arange(33, dtype='f8').reshape(11, 3) * 0.5).all(), d
    assert g['words'][...].tolist() == ['w' + 'é' * i for i in range(11)], d
"#;
    run_python(script, dir.path());
}

#[test]
#[ignore = "checks the written file with h5py, zarr or anndata (the venv); ./dev test runs it"]
fn compression_is_gzip_or_zstd_and_never_lzf() {
    let dir = tempfile::tempdir().unwrap();
    let values = ArrayData::from((0..1000).map(|v| v % 7).collect::<Vec<i32>>());
    let gzip = ArrayOptions::compressed(Compression::Gzip(5));
    for (name, format) in [("v2", ZarrFormat::V2), ("v3", ZarrFormat::V3)] {
        let path = dir.path().join(name);
        let root = create(&path, &ZarrOptions::unsharded(format)).unwrap();
        root.write_array("gz", &values, &gzip).unwrap();
        root.write_array("scalar", &ArrayData::I32(scalar(3)), &gzip)
            .unwrap();
        let e = root
            .write_array("lzf", &values, &ArrayOptions::compressed(Compression::Lzf))
            .err()
            .unwrap();
        assert!(matches!(e, Error::Unsupported(_)), "{e}");
        assert!(
            !root.contains("lzf").unwrap(),
            "nothing is left of a failed array"
        );
        let e = root
            .write_array(
                "g12",
                &values,
                &ArrayOptions::compressed(Compression::Gzip(12)),
            )
            .err()
            .unwrap();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
        let zpath = dir.path().join(format!("{name}-zstd"));
        let zopts = ZarrOptions {
            compression: Some(ZarrCompression::Zstd(3)),
            ..ZarrOptions::unsharded(format)
        };
        let zroot = create(&zpath, &zopts).unwrap();
        zroot.write_array("zs", &values, &gzip).unwrap();
        zroot
            .write_array("scalar", &ArrayData::I32(scalar(3)), &gzip)
            .unwrap();

        let (gz, plain, zs, zscalar) = (
            metadata(&path, "gz"),
            metadata(&path, "scalar"),
            metadata(&zpath, "zs"),
            metadata(&zpath, "scalar"),
        );
        match format {
            ZarrFormat::V2 => {
                assert_eq!(
                    gz["compressor"],
                    serde_json::json!({"id": "gzip", "level": 5})
                );
                assert_eq!(plain["compressor"], Value::Null);
                assert_eq!(
                    zs["compressor"],
                    serde_json::json!({"id": "zstd", "level": 3})
                );
                assert_eq!(zscalar["compressor"], zs["compressor"]);
            }
            ZarrFormat::V3 => {
                let gzip = serde_json::json!({"name": "gzip", "configuration": {"level": 5}});
                assert_eq!(gz["codecs"][1], gzip);
                assert_eq!(plain["codecs"].as_array().unwrap().len(), 1);
                let zstd = serde_json::json!(
                    {"name": "zstd", "configuration": {"level": 3, "checksum": false}});
                assert_eq!(zs["codecs"][1], zstd);
                assert_eq!(zscalar["codecs"][1], zstd);
            }
        }
    }
    let script = r#"
import zarr, os
for d in sorted(os.listdir(path)):
    g = zarr.open_group(os.path.join(path, d), mode='r')
    for k in g.array_keys():
        a = g[k][...]
        want = np.int32(3) if k == 'scalar' else np.arange(1000, dtype='i4') % 7
        assert (a == want).all() and a.dtype == 'i4', (d, k)
"#;
    run_python(script, dir.path());
}

#[test]
fn members_are_created_removed_and_reopened() {
    let dir = tempfile::tempdir().unwrap();
    for (name, options) in layouts() {
        let path = dir.path().join(name);
        let root = create(&path, &options).unwrap();
        let g = root.create_group("g").unwrap();
        g.set_str_attr("a", "1").unwrap();
        root.write_array("x", &ArrayData::from(vec![1u8]), &ArrayOptions::default())
            .unwrap();
        assert!(root.contains("g").unwrap() && root.contains("x").unwrap());
        assert!(!root.contains("y").unwrap());
        assert!(
            root.create_group("g").is_err(),
            "a member is never replaced silently"
        );
        assert!(root
            .write_array("x", &ArrayData::from(vec![2u8]), &ArrayOptions::default())
            .is_err());
        assert!(root.open_group("x").is_err() && root.open_group("y").is_err());
        // Reopening keeps the attributes set before.
        root.open_group("g")
            .unwrap()
            .set_str_attr("b", "2")
            .unwrap();
        let attrs = &metadata(&path, "g")["attributes"];
        assert_eq!(attrs, &serde_json::json!({"a": "1", "b": "2"}));
        assert_eq!(g.path(), "/g");
        root.remove("x").unwrap();
        root.remove("g").unwrap();
        root.remove("never").unwrap();
        assert!(!root.contains("x").unwrap() && !root.contains("g").unwrap());
        assert!(!path.join("x").exists() && !path.join("g").exists());
        // A removed member can be written anew.
        root.write_array(
            "x",
            &ArrayData::from(vec![3u8, 4]),
            &ArrayOptions::default(),
        )
        .unwrap();
        for bad in ["", ".", "..", "a/b", "zarr.json", ".zattrs"] {
            let e = root.create_group(bad).err().unwrap();
            assert!(matches!(e, Error::InvalidArgument(_)), "{bad:?}: {e}");
        }
    }
    let e = create(&dir.path().join("v2"), &ZarrOptions::default())
        .err()
        .unwrap();
    assert!(e.is_io(), "an existing path is never overwritten: {e}");
}

#[test]
fn what_zarr_cannot_store_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let bad_options = [
        ZarrOptions {
            shard_rows: Some(10),
            ..ZarrOptions::unsharded(ZarrFormat::V2)
        },
        ZarrOptions {
            chunk_rows: Some(0),
            ..ZarrOptions::default()
        },
        ZarrOptions {
            compression: Some(ZarrCompression::Gzip(10)),
            ..ZarrOptions::default()
        },
    ];
    for (i, options) in bad_options.iter().enumerate() {
        let path = dir.path().join(format!("bad{i}"));
        assert!(
            matches!(create(&path, options), Err(Error::InvalidArgument(_))),
            "{options:?}"
        );
        assert!(!path.exists());
    }
    let root = create(&dir.path().join("s.zarr"), &ZarrOptions::default()).unwrap();
    // Record fields must be one value a record (no sub-arrays): refused, nothing left.
    let compound = RawData::Compound {
        shape: vec![2],
        fields: vec![(
            "a".into(),
            ArrayData::I32(
                ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[2, 2]), vec![1, 2, 3, 4]).unwrap(),
            ),
        )],
    };
    let e = root
        .write_raw("rec", &compound, &ArrayOptions::default())
        .err()
        .unwrap();
    assert!(
        matches!(&e, Error::InvalidArgument(m) if m.contains("'a'")),
        "{e}"
    );
    assert!(!root.contains("rec").unwrap());
    let plain = RawData::Array(ArrayData::from(vec![1i32, 2]));
    root.write_raw("plain", &plain, &ArrayOptions::default())
        .unwrap();
    let e = root
        .set_attr("x", &ArrayData::from(vec![1.0, f64::NAN]))
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidArgument(m) if m.contains("JSON")),
        "{e}"
    );
    let a = root
        .create_array("a", DType::I32, &[4], &ArrayOptions::default())
        .unwrap();
    let e = a
        .write_rows(3, &ArrayData::from(vec![1i32, 2]))
        .unwrap_err();
    assert!(e.to_string().contains("outside"), "{e}");
    let e = a.write_rows(0, &ArrayData::from(vec![1i64])).unwrap_err();
    assert!(e.to_string().contains("int64"), "{e}");
    let s = root
        .write_array("s", &ArrayData::I32(scalar(1)), &ArrayOptions::default())
        .unwrap();
    assert!(s.write_rows(0, &ArrayData::from(vec![1i32])).is_err());
    let e = root.write_array(
        "m",
        &ArrayData::from(vec![1i32]),
        &ArrayOptions {
            chunks: Some(vec![1, 1]),
            ..ArrayOptions::default()
        },
    );
    assert!(e.is_err() && !root.contains("m").unwrap());
    let huge = ArrayOptions {
        chunks: Some(vec![usize::MAX / 2]),
        ..ArrayOptions::default()
    };
    let e = root
        .create_array("h", DType::F64, &[10], &huge)
        .err()
        .unwrap();
    assert!(e.to_string().contains("larger than 4 GiB"), "{e}");
    let rows = ZarrOptions {
        shard_rows: Some(usize::MAX),
        ..ZarrOptions::default()
    };
    let big = create(&dir.path().join("big.zarr"), &rows).unwrap();
    let e = big.write_array("a", &ArrayData::from(vec![1u8]), &ArrayOptions::default());
    assert!(e.err().unwrap().to_string().contains("shard"));
}

#[test]
#[ignore = "checks the written file with h5py, zarr or anndata (the venv); ./dev test runs it"]
fn none_is_written_as_anndata_writes_it() {
    let dir = tempfile::tempdir().unwrap();
    for (name, options) in layouts() {
        let root = create(&dir.path().join(name), &options).unwrap();
        let n = root.write_null("none", DType::F32).unwrap();
        n.set_str_attr("encoding-type", "null").unwrap();
        n.set_str_attr("encoding-version", "0.1.0").unwrap();
    }
    let script = r#"
import zarr, os, json
import anndata as ad
for d in sorted(os.listdir(path)):
    store = os.path.join(path, d)
    a = zarr.open_group(store, mode='r')['none']
    assert a.shape == () and a.dtype == 'bool', (d, a.shape, a.dtype)
    assert ad.io.read_elem(a) is None
    files = sorted(os.listdir(os.path.join(store, 'none')))
    assert files in (['.zarray', '.zattrs'], ['zarr.json']), files
"#;
    run_python(script, dir.path());
}

#[test]
#[ignore = "checks the written file with h5py, zarr or anndata (the venv); ./dev test runs it"]
fn blocks_aligned_to_inner_chunks_fill_shards_without_waste() {
    let dir = tempfile::tempdir().unwrap();
    let options = ZarrOptions {
        chunk_rows: Some(100),
        shard_rows: Some(10_000),
        ..ZarrOptions::default()
    };
    let values = ArrayData::from(
        (0..10_000)
            .map(|v| (v * 7 % 1000) as f32)
            .collect::<Vec<_>>(),
    );
    let gzip = ArrayOptions::compressed(Compression::Gzip(1));
    let whole = create(&dir.path().join("whole"), &options).unwrap();
    whole.write_array("a", &values, &gzip).unwrap();
    let pieces = create(&dir.path().join("pieces"), &options).unwrap();
    let a = pieces
        .create_array("a", DType::F32, &[10_000], &gzip)
        .unwrap();
    for start in (0..10_000).step_by(500) {
        let rows: Vec<usize> = (start..start + 500).collect();
        a.write_rows(start, &values.select(0, &rows)).unwrap();
    }
    let size = |p: &str| {
        std::fs::metadata(dir.path().join(p).join("a/c/0"))
            .unwrap()
            .len()
    };
    assert_eq!(
        size("whole"),
        size("pieces"),
        "the same inner chunks and index, reordered"
    );
    let script = r#"
import zarr
for d in ['whole', 'pieces']:
    a = zarr.open_array(path + '/' + d + '/a', mode='r')
    assert (a[...] == (np.arange(10_000) * 7 % 1000).astype('f4')).all(), d
"#;
    run_python(script, dir.path());
}

#[test]
#[ignore = "checks the written file with h5py, zarr or anndata (the venv); ./dev test runs it"]
fn blocks_that_cut_inner_chunks_fill_shards_without_waste() {
    // Row blocks of 37 (as a matrix's nonzeros come: no block boundary on a chunk's), one
    // rewritten and one out of order: each inner chunk is still stored once, whole.
    let dir = tempfile::tempdir().unwrap();
    let options = ZarrOptions {
        chunk_rows: Some(100),
        shard_rows: Some(10_000),
        ..ZarrOptions::default()
    };
    let values = ArrayData::from((0..10_000).map(|v| v * 3 % 1000).collect::<Vec<i32>>());
    let plain = ArrayOptions::default();
    let whole = create(&dir.path().join("whole"), &options).unwrap();
    whole.write_array("a", &values, &plain).unwrap();
    let pieces = create(&dir.path().join("pieces"), &options).unwrap();
    let a = pieces
        .create_array("a", DType::I32, &[10_000], &plain)
        .unwrap();
    let mut blocks: Vec<std::ops::Range<usize>> = (0..10_000)
        .step_by(37)
        .map(|s| s..(s + 37).min(10_000))
        .collect();
    blocks.swap(10, 200);
    blocks.insert(50, 0..37);
    for r in blocks {
        a.write_rows(r.start, &values.select(0, &r.collect::<Vec<_>>()))
            .unwrap();
    }
    drop(a);
    let size = |p: &str| {
        std::fs::metadata(dir.path().join(p).join("a/c/0"))
            .unwrap()
            .len()
    };
    // The two blocks out of order and the one written twice store a few chunks again.
    assert!(
        size("pieces") <= size("whole") + 6 * 400,
        "{} bytes against {}",
        size("pieces"),
        size("whole")
    );
    let script = r#"
import zarr
for d in ['whole', 'pieces']:
    a = zarr.open_array(path + '/' + d + '/a', mode='r')
    assert (a[...] == (np.arange(10_000) * 3 % 1000).astype('i4')).all(), d
"#;
    run_python(script, dir.path());
}

#[test]
fn rows_written_in_any_order_read_back_as_written() {
    // Random arrays (1-d and 2-d, inner chunks of 1-9 rows, shards of 1-4 chunks), written in
    // blocks out of order, rewritten, left incomplete, grown by appends: the pending rows of
    // sharded arrays are never lost nor stored in the wrong place.
    // xorshift
    let mut s: u64 = 0x9E3779B97F4A7C15;
    let mut rnd = move |n: usize| -> usize {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s % n.max(1) as u64) as usize
    };
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for case in 0..600 {
        let chunk = 1 + rnd(9);
        let shard = chunk * (1 + rnd(4));
        let len = rnd(60);
        let width = if rnd(2) == 0 { 0 } else { 1 + rnd(7) };
        let options = ZarrOptions {
            chunk_rows: Some(chunk),
            shard_rows: Some(shard),
            ..ZarrOptions::default()
        };
        let path = dir.path().join(format!("c{case}"));
        let root = create(&path, &options).unwrap();
        let shape: Vec<usize> = if width == 0 {
            vec![len]
        } else {
            vec![len, width]
        };
        let resizable = rnd(3) == 0;
        // Chunks of some of the columns: rows stored a slab of columns at a time (slabs of
        // `SLAB_BYTES`, 16 bytes in tests).
        let chunks = (width > 1 && rnd(2) == 0).then(|| vec![chunk, 1 + rnd(width)]);
        let opts = ArrayOptions {
            resizable,
            chunks: chunks.clone(),
            ..ArrayOptions::default()
        };
        let init = if resizable { rnd(len + 1) } else { len };
        let mut ishape = shape.clone();
        ishape[0] = init;
        let a = root.create_array("a", DType::I32, &ishape, &opts).unwrap();
        let per_row = width.max(1);
        let mut expect = vec![0i32; len * per_row];
        let val = |gen: usize, r: usize, c: usize| ((gen * 1000 + r * 10 + c) as i32) + 1;
        let mk = |gen: usize, r: std::ops::Range<usize>| -> ArrayData {
            let v: Vec<i32> = r
                .clone()
                .flat_map(|i| (0..per_row).map(move |c| val(gen, i, c)))
                .collect();
            let mut sh = shape.clone();
            sh[0] = r.len();
            ArrayData::I32(ArrayD::from_shape_vec(IxDyn(&sh), v).unwrap())
        };
        let mut log = Vec::new();
        let mut gen = 0;
        // in order blocks up to init, with random disorder / rewrites
        let mut blocks = Vec::new();
        let mut p = 0;
        while p < init {
            let n = 1 + rnd(12);
            let e = (p + n).min(init);
            blocks.push(p..e);
            p = e;
        }
        if !blocks.is_empty() {
            for _ in 0..rnd(3) {
                let i = rnd(blocks.len());
                let j = rnd(blocks.len());
                blocks.swap(i, j);
            }
            for _ in 0..rnd(3) {
                let i = rnd(blocks.len());
                let b = blocks[i].clone();
                blocks.insert(rnd(blocks.len() + 1), b);
            }
        }
        if rnd(3) == 0 && init > 0 {
            blocks.clear();
            for _ in 0..rnd(15) {
                let st = rnd(init);
                let e = (st + 1 + rnd(10)).min(init);
                blocks.push(st..e);
            }
        }
        for b in blocks {
            gen += 1;
            a.write_rows(b.start, &mk(gen, b.clone())).unwrap();
            for i in b.clone() {
                for c in 0..per_row {
                    expect[i * per_row + c] = val(gen, i, c);
                }
            }
            log.push(format!("w{:?}", b));
        }
        if resizable {
            let mut p = init;
            while p < len {
                let n = 1 + rnd(12);
                let e = (p + n).min(len);
                gen += 1;
                a.append_rows(&mk(gen, p..e)).unwrap();
                for i in p..e {
                    for c in 0..per_row {
                        expect[i * per_row + c] = val(gen, i, c);
                    }
                }
                log.push(format!("a{:?}", p..e));
                p = e;
            }
        }
        drop(a);
        drop(root);
        let g = crate::storage::zarr::open(&path).unwrap();
        let got = g.array("a").unwrap().read().unwrap();
        let ArrayData::I32(got) = got else { panic!() };
        let got: Vec<i32> = got.iter().copied().collect();
        if got != expect {
            failures.push(format!("case {case} chunk {chunk} shard {shard} chunks {chunks:?} len {len} width {width} resizable {resizable} init {init}: {log:?}\n got {got:?}\n want {expect:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
