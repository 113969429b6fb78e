//! The Zarr backend on stores written by the real zarr-python (v2 and v3 formats).

use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn};

use super::*;
use crate::testutil::{py_file, run_python};

const FORMATS: [u8; 2] = [2, 3];

/// A directory store written by `script` with zarr-python in format `fmt`: `root` is the
/// open root group, `put(name, data, dtype=None, **kw)` creates and fills an array.
fn store(fmt: u8, script: &str) -> (tempfile::TempDir, PathBuf) {
    py_file("t.zarr", &with_root(fmt, "path", script))
}

fn with_root(fmt: u8, store: &str, script: &str) -> String {
    format!(
        "import zarr, numcodecs\n\
         fmt = {fmt}\n\
         root = zarr.open_group({store}, mode='w', zarr_format=fmt)\n\
         def put(name, data, dtype=None, group=None, **kw):\n\
         \x20   a = (root if group is None else group).create_array(name, shape=data.shape, dtype=dtype or data.dtype, **kw)\n\
         \x20   if data.size: a[...] = data\n\
         \x20   return a\n\
         {script}"
    )
}

fn arr<T: Clone>(shape: &[usize], v: Vec<T>) -> ArrayD<T> {
    ArrayD::from_shape_vec(IxDyn(shape), v).unwrap()
}

fn scalar<T: Clone>(v: T) -> ArrayD<T> {
    ArrayD::from_elem(IxDyn(&[]), v)
}

fn strings(v: &[&str]) -> ArrayData {
    ArrayData::from(v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
}

fn read(root: &dyn Group, name: &str) -> ArrayData {
    root.array(name)
        .and_then(|a| a.read())
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn groups_members_and_attributes() {
    for fmt in FORMATS {
        let (_d, path) = store(
            fmt,
            "root.attrs.update({'zeta': 1, 'alpha': 'x', 'big': 2**64 - 1, 'f': 2.5, 'yes': True,\n\
             \x20   'ints': [5, 4], 'mixed': [1, 2.5], 'names': ['a', 'b'], 'flags': [True],\n\
             \x20   'empty': [], 'none': None, 'nested': {'q': 1}})\n\
             obs = root.create_group('obs')\n\
             obs.attrs['encoding-type'] = 'dataframe'\n\
             put('cell_type', np.arange(3), group=obs).attrs['k'] = 'v'\n\
             root.create_group('b_group').create_group('inner')\n\
             put('a_array', np.arange(2))\n\
             import os; os.makedirs(os.path.join(path, 'not_a_node', 'deeper'))\n\
             open(os.path.join(path, 'stray.txt'), 'w').write('x')\n",
        );
        let root = open(&path).unwrap();
        assert_eq!(root.path(), "/");
        assert_eq!(root.member_names().unwrap(), ["a_array", "b_group", "obs"]);
        assert_eq!(root.member_kind("obs").unwrap(), Some(MemberKind::Group));
        assert_eq!(
            root.member_kind("a_array").unwrap(),
            Some(MemberKind::Array)
        );
        for absent in ["nope", "not_a_node", "stray.txt", "..", "obs/cell_type", ""] {
            assert_eq!(root.member_kind(absent).unwrap(), None, "{absent}");
            assert!(!root.contains(absent).unwrap());
        }
        assert!(root
            .group("nope")
            .err()
            .unwrap()
            .to_string()
            .contains("missing member 'nope'"));
        assert!(root.group("a_array").is_err() && root.array("obs").is_err());
        assert_eq!(
            root.attr_names().unwrap(),
            [
                "zeta", "alpha", "big", "f", "yes", "ints", "mixed", "names", "flags", "empty",
                "none", "nested"
            ]
        );
        let attr = |n: &str| root.attr(n).unwrap().unwrap();
        assert_eq!(attr("zeta"), ArrayData::I64(scalar(1)));
        assert_eq!(attr("alpha"), ArrayData::String(scalar("x".into())));
        assert_eq!(attr("big"), ArrayData::U64(scalar(u64::MAX)));
        assert_eq!(attr("f"), ArrayData::F64(scalar(2.5)));
        assert_eq!(attr("yes"), ArrayData::Bool(scalar(true)));
        assert_eq!(attr("ints"), ArrayData::from(vec![5i64, 4]));
        assert_eq!(attr("mixed"), ArrayData::from(vec![1.0, 2.5]));
        assert_eq!(attr("names"), strings(&["a", "b"]));
        assert_eq!(attr("flags"), ArrayData::from(vec![true]));
        assert_eq!(attr("empty"), ArrayData::from(Vec::<f64>::new()));
        assert_eq!(root.attr("absent").unwrap(), None);
        for bad in ["none", "nested"] {
            let err = root.attr(bad).unwrap_err();
            assert!(matches!(err, Error::Unsupported(_)), "{err}");
            assert!(err.to_string().contains(&format!("'{bad}'")), "{err}");
        }
        let obs = root.group("obs").unwrap();
        assert_eq!(obs.path(), "/obs");
        assert_eq!(
            obs.string_attr("encoding-type").unwrap().as_deref(),
            Some("dataframe")
        );
        assert_eq!(obs.member_names().unwrap(), ["cell_type"]);
        let ct = obs.array("cell_type").unwrap();
        assert_eq!(ct.path(), "/obs/cell_type");
        assert_eq!(ct.attr_names().unwrap(), ["k"]);
        assert_eq!(ct.string_attr("k").unwrap().as_deref(), Some("v"));
        let inner = root.group("b_group").unwrap().group("inner").unwrap();
        assert_eq!(
            (inner.path(), inner.member_names().unwrap().len()),
            ("/b_group/inner".into(), 0)
        );
        // Directory groups are identified by their inode: the same directory, the same id.
        let again = open(&path).unwrap().group("obs").unwrap();
        assert_eq!(obs.object_id().unwrap(), again.object_id().unwrap());
        assert_ne!(obs.object_id().unwrap(), root.object_id().unwrap());
        assert!(obs.object_id().unwrap().is_some());
    }
}

#[test]
fn every_dtype_reads() {
    for fmt in FORMATS {
        let (_d, path) = store(
            fmt,
            "for t in ['i1', 'i2', 'i4', 'i8', 'u1', 'u2', 'u4', 'u8', 'f2', 'f4', 'f8']:\n\
             \x20   put(t, np.array([0, 1, 100], dtype=t))\n\
             put('extremes', np.array([-2**63, 2**63 - 1], dtype='i8'))\n\
             put('u8max', np.array([2**64 - 1], dtype='u8'))\n\
             put('bool', np.array([True, False, True]))\n\
             put('str', np.array(['a', 'bé', '', 'ünï'], dtype=object), dtype=str)\n\
             put('fixed', np.array(['ab', 'c'], dtype='<U3'))\n\
             put('i0', np.array(7, dtype='i8'))\n\
             put('f0', np.array(2.5))\n\
             put('b0', np.array(True))\n\
             put('s0', np.array('hello', dtype=object), dtype=str)\n\
             put('empty', np.zeros((0,), dtype='f4'))\n\
             put('empty2', np.zeros((0, 3), dtype='i4'))\n\
             put('estr', np.zeros((0,), dtype=object), dtype=str)\n\
             put('m', np.arange(35, dtype='f8').reshape(7, 5), chunks=(3, 2))\n\
             a = root.create_array('partial', shape=(6,), chunks=(2,), dtype='i4', fill_value=-1)\n\
             a[2:4] = [5, 6]\n\
             put('complex', np.array([1 + 2j]))\n\
             put('dates', np.array(['2020-01-01'], dtype='M8[D]'))\n\
             put('bytes', np.array([b'ab']))\n\
             put('rec', np.array([(1, 2.0)], dtype=[('a', 'i4'), ('b', 'f8')]))\n",
        );
        let root = open(&path).unwrap();
        let r = |n: &str| read(&*root, n);
        assert_eq!(r("i1"), ArrayData::from(vec![0i8, 1, 100]));
        assert_eq!(r("i2"), ArrayData::from(vec![0i16, 1, 100]));
        assert_eq!(r("i4"), ArrayData::from(vec![0i32, 1, 100]));
        assert_eq!(r("i8"), ArrayData::from(vec![0i64, 1, 100]));
        assert_eq!(r("u1"), ArrayData::from(vec![0u8, 1, 100]));
        assert_eq!(r("u2"), ArrayData::from(vec![0u16, 1, 100]));
        assert_eq!(r("u4"), ArrayData::from(vec![0u32, 1, 100]));
        assert_eq!(r("u8"), ArrayData::from(vec![0u64, 1, 100]));
        let halves: Vec<half::f16> = [0f32, 1.0, 100.0].map(half::f16::from_f32).to_vec();
        assert_eq!(r("f2"), ArrayData::from(halves));
        assert_eq!(r("f4"), ArrayData::from(vec![0f32, 1.0, 100.0]));
        assert_eq!(r("f8"), ArrayData::from(vec![0f64, 1.0, 100.0]));
        assert_eq!(r("extremes"), ArrayData::from(vec![i64::MIN, i64::MAX]));
        assert_eq!(r("u8max"), ArrayData::from(vec![u64::MAX]));
        assert_eq!(r("bool"), ArrayData::from(vec![true, false, true]));
        assert_eq!(r("str"), strings(&["a", "bé", "", "ünï"]));
        assert_eq!(r("fixed"), strings(&["ab", "c"]));
        assert_eq!(r("i0"), ArrayData::I64(scalar(7)));
        assert_eq!(r("f0"), ArrayData::F64(scalar(2.5)));
        assert_eq!(r("b0"), ArrayData::Bool(scalar(true)));
        assert_eq!(r("s0"), ArrayData::String(scalar("hello".into())));
        assert_eq!(r("empty"), ArrayData::from(Vec::<f32>::new()));
        assert_eq!(r("empty2"), ArrayData::I32(arr(&[0, 3], vec![])));
        assert_eq!(r("estr"), strings(&[]));
        assert_eq!(
            r("m"),
            ArrayData::F64(arr(&[7, 5], (0..35).map(f64::from).collect()))
        );
        assert_eq!(r("partial"), ArrayData::from(vec![-1i32, -1, 5, 6, -1, -1]));
        let ty = |n: &str| root.array(n).unwrap().stored_type().unwrap();
        assert_eq!(ty("f2"), StoredType::Float { size: 2 });
        assert_eq!(ty("bool"), StoredType::Bool);
        assert_eq!(ty("str"), StoredType::VarString { utf8: true });
        assert_eq!(ty("fixed"), StoredType::FixedString { size: 12 });
        let i0 = root.array("i0").unwrap();
        assert_eq!((i0.shape().unwrap(), i0.len().unwrap()), (vec![], 1));
        // Types annpage cannot read: listed and typed as unsupported, refused by name on read.
        for (name, dtype) in [
            ("complex", "complex"),
            (
                "dates",
                if fmt == 2 {
                    "<M8[D]"
                } else {
                    "numpy.datetime64"
                },
            ),
            (
                "bytes",
                if fmt == 2 {
                    "|S2"
                } else {
                    "null_terminated_bytes"
                },
            ),
        ] {
            assert_eq!(root.member_kind(name).unwrap(), Some(MemberKind::Array));
            let a = root.array(name).unwrap();
            assert!(matches!(
                a.stored_type().unwrap(),
                StoredType::Unsupported(_)
            ));
            let err = a.read().unwrap_err();
            assert!(matches!(err.root(), Error::Unsupported(_)), "{err}");
            assert!(err.to_string().contains(dtype), "{name}: {err}");
            assert_eq!(err.element(), Some(&*format!("/{name}")));
        }
        // Records are read whole, field by field.
        let rec = root.array("rec").unwrap();
        assert!(matches!(
            rec.read().unwrap_err().root(),
            Error::Unsupported(_)
        ));
        let RawData::Compound { shape, fields } = rec.read_raw().unwrap() else {
            panic!("records read as an array");
        };
        assert_eq!(shape, vec![1]);
        assert_eq!(
            fields,
            vec![
                ("a".to_owned(), ArrayData::from(vec![1i32])),
                ("b".to_owned(), ArrayData::from(vec![2.0f64]))
            ]
        );
    }
}

#[test]
fn compressors_and_shards_decode() {
    for fmt in FORMATS {
        let codecs = if fmt == 2 {
            "{'blosc': dict(compressors=numcodecs.Blosc(cname='lz4', shuffle=1)),\n\
             \x20'zlib': dict(compressors=numcodecs.Zlib(level=5)),\n\
             \x20'gzip': dict(compressors=numcodecs.GZip(level=5)),\n\
             \x20'zstd': dict(compressors=numcodecs.Zstd(level=3)),\n\
             \x20'none': dict(compressors=None)}"
        } else {
            "{'blosc': dict(compressors=zarr.codecs.BloscCodec(cname='lz4', shuffle='shuffle')),\n\
             \x20'zlib': dict(compressors=numcodecs.zarr3.Zlib(level=5)),\n\
             \x20'gzip': dict(compressors=zarr.codecs.GzipCodec(level=5)),\n\
             \x20'zstd': dict(compressors=zarr.codecs.ZstdCodec(level=3, checksum=True)),\n\
             \x20'crc32c': dict(compressors=[zarr.codecs.Crc32cCodec()]),\n\
             \x20'none': dict(compressors=None),\n\
             \x20'sharded': dict(shards=(20, 6), compressors=zarr.codecs.ZstdCodec(level=3)),\n\
             \x20'sharded_str': dict(shards=(20, 6), dtype=str)}"
        };
        let (_d, path) = store(
            fmt,
            &format!(
                "import numcodecs.zarr3\n\
                 m = np.arange(50 * 6, dtype='f4').reshape(50, 6) / 7\n\
                 for name, kw in {codecs}.items():\n\
                 \x20   data = m.astype(str).astype(object) if kw.get('dtype') is str else m\n\
                 \x20   put(name, data, chunks=(4, 3), **kw)\n"
            ),
        );
        let root = open(&path).unwrap();
        let expected: Vec<f32> = (0..300).map(|v| v as f32 / 7.0).collect();
        let mut names = root.member_names().unwrap();
        names.retain(|n| n != "sharded_str");
        assert_eq!(names.len(), if fmt == 2 { 5 } else { 7 });
        for name in names {
            let a = root.array(&name).unwrap();
            assert_eq!(
                a.read().unwrap(),
                ArrayData::F32(arr(&[50, 6], expected.clone())),
                "{name}"
            );
            assert_eq!(a.chunk_rows().unwrap(), Some(4), "{name}");
            let rows = a.read_rows(9..23).unwrap();
            assert_eq!(
                rows,
                ArrayData::F32(arr(&[14, 6], expected[54..138].to_vec())),
                "{name}"
            );
        }
        if fmt == 3 {
            let s = read(&*root, "sharded_str");
            let ArrayData::String(s) = s else {
                panic!("{s:?}")
            };
            assert_eq!(
                (s.shape(), s[[49, 5]].as_str()),
                (&[50, 6][..], "42.714287")
            );
        }
    }
}

#[test]
fn rows_of_1d_and_2d_arrays() {
    for fmt in FORMATS {
        let (_d, path) = store(
            fmt,
            "put('v', np.arange(10, dtype='i8'), chunks=(3,))\n\
             put('b', np.arange(10) % 3 == 0, chunks=(4,))\n\
             put('m', np.arange(12, dtype='f4').reshape(4, 3), chunks=(2, 3))\n\
             put('c', np.zeros((2, 2, 2)))\n\
             put('s', np.array(['a', 'b'], dtype=object), dtype=str)\n\
             put('z', np.array(1.0))\n",
        );
        let root = open(&path).unwrap();
        let v = root.array("v").unwrap();
        assert_eq!(v.read_rows(3..5).unwrap(), ArrayData::from(vec![3i64, 4]));
        assert_eq!(
            v.read_rows(7..10).unwrap(),
            ArrayData::from(vec![7i64, 8, 9])
        );
        assert_eq!(
            v.read_rows(4..4).unwrap(),
            ArrayData::from(Vec::<i64>::new())
        );
        assert_eq!(v.chunk_rows().unwrap(), Some(3));
        let b = root.array("b").unwrap();
        assert_eq!(
            b.read_rows(2..5).unwrap(),
            ArrayData::from(vec![false, true, false])
        );
        let m = root.array("m").unwrap();
        let expected: Vec<f32> = (3..9).map(|v| v as f32).collect();
        assert_eq!(
            m.read_rows(1..3).unwrap(),
            ArrayData::F32(arr(&[2, 3], expected))
        );
        assert_eq!(m.read_rows(2..2).unwrap().shape(), [0, 3]);
        assert_eq!(m.chunk_rows().unwrap(), Some(2));
        assert!(m.read_rows(3..5).is_err());
        #[allow(clippy::reversed_empty_ranges)]
        let backwards = 2..1;
        assert!(m.read_rows(backwards).is_err());
        assert!(root.array("c").unwrap().read_rows(0..1).is_err());
        let err = root.array("s").unwrap().read_rows(0..1).unwrap_err();
        assert!(err.to_string().contains("range reads"), "{err}");
        let z = root.array("z").unwrap();
        assert!(z.read_rows(0..0).is_err());
        assert_eq!(z.chunk_rows().unwrap(), None);
    }
}

#[test]
fn zip_stores_read() {
    for fmt in FORMATS {
        let (_d, path) = py_file(
            "t.zarr.zip",
            &with_root(
                fmt,
                "zip_store",
                "put('v', np.arange(10, dtype='i4'), chunks=(3,))\n\
                 g = root.create_group('g')\n\
                 g.attrs['encoding-type'] = 'dict'\n\
                 put('s', np.array(['x', 'y'], dtype=object), dtype=str, group=g)\n\
                 zip_store.close()\n",
            )
            .replace(
                "import zarr, numcodecs\n",
                "import zarr, numcodecs\nzip_store = zarr.storage.ZipStore(path, mode='w')\n",
            ),
        );
        assert!(path.is_file());
        let root = open(&path).unwrap();
        assert_eq!(root.member_names().unwrap(), ["g", "v"]);
        assert_eq!(root.object_id().unwrap(), None);
        let v = root.array("v").unwrap();
        assert_eq!(
            v.read().unwrap(),
            ArrayData::from((0..10).collect::<Vec<i32>>())
        );
        assert_eq!(
            v.read_rows(2..7).unwrap(),
            ArrayData::from(vec![2i32, 3, 4, 5, 6])
        );
        v.check_claim().unwrap();
        let g = root.group("g").unwrap();
        assert_eq!(
            g.string_attr("encoding-type").unwrap().as_deref(),
            Some("dict")
        );
        assert_eq!(g.member_kind("s").unwrap(), Some(MemberKind::Array));
        assert_eq!(read(&*g, "s"), strings(&["x", "y"]));
    }
}

#[test]
fn stores_that_are_not_zarr_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let missing = open(&dir.path().join("nope.zarr")).err().unwrap();
    assert!(missing.is_io(), "{missing}");
    let empty = open(dir.path()).err().unwrap();
    assert!(empty.to_string().contains("not a Zarr store"), "{empty}");
    let text = dir.path().join("notes.zarr.zip");
    std::fs::write(&text, "not a zip").unwrap();
    let foreign = open(&text).err().unwrap();
    assert!(
        foreign
            .to_string()
            .contains("not a readable Zarr zip store"),
        "{foreign}"
    );
    let (_d, path) = py_file(
        "a.zarr",
        "import zarr\nzarr.create_array(path, shape=(2,), dtype='i4', zarr_format=3)\n",
    );
    let root_array = open(&path).err().unwrap();
    assert!(
        root_array.to_string().contains("root is an array"),
        "{root_array}"
    );
}

/// Overwrites `key` of the store at `path`.
fn overwrite(path: &Path, key: &str, bytes: &[u8]) {
    std::fs::write(path.join(key), bytes).unwrap();
}

#[test]
fn claims_beyond_the_stored_chunks_are_refused() {
    for fmt in FORMATS {
        let (_d, path) = store(
            fmt,
            "root.create_array('huge', shape=(2**34,), chunks=(4096,), dtype='f8')\n\
             root.create_array('wraps', shape=(2**32 + 2, 2**32), chunks=(1, 1), dtype='f4')\n\
             p = root.create_array('partly', shape=(2**22,), chunks=(1024,), dtype='f8')\n\
             p[:1024] = 1\n\
             root.create_array('wide_chunks', shape=(10,), chunks=(2**40,), dtype='u1')\n\
             root.create_array('s', shape=(2**40,), chunks=(64,), dtype=str)\n\
             put('whole', np.arange(10.0), chunks=(3,))\n\
             if fmt == 3:\n\
             \x20   root.create_array('index', shape=(2**25,), shards=(2**25,), chunks=(1,), dtype='u1')\n",
        );
        let root = open(&path).unwrap();
        let refused = |name: &str, why: &str| {
            let a = root.array(name).unwrap();
            for e in [a.check_claim().unwrap_err(), a.read().unwrap_err()] {
                let msg = e.to_string();
                assert!(msg.contains(why), "{name}: {msg}");
                assert_eq!(e.element(), Some(&*format!("/{name}")), "{msg}");
            }
        };
        refused("huge", "the store claims more than it holds");
        refused("huge", "claims 17179869184 values");
        refused("s", "the store claims more than it holds");
        refused("wraps", "more values than a 64-bit count");
        refused("wide_chunks", "chunks of 1099511627776 bytes");
        if fmt == 3 {
            refused("index", "a shard index of 536870912 bytes");
        }
        let huge = root.array("huge").unwrap();
        assert!(huge
            .read_rows(0..10)
            .unwrap_err()
            .to_string()
            .contains("claims more"));
        // 32 MiB of fill around one stored chunk is within the allowance.
        let partly = root.array("partly").unwrap();
        partly.check_claim().unwrap();
        assert_eq!(
            partly.read_rows(1020..1026).unwrap(),
            ArrayData::from(vec![1.0, 1.0, 1.0, 1.0, 0.0, 0.0])
        );
        root.array("whole").unwrap().check_claim().unwrap();
    }
}

#[test]
fn corrupt_metadata_and_chunks_are_errors() {
    for fmt in FORMATS {
        let (_d, path) = store(
            fmt,
            "put('json', np.arange(4))\n\
             put('shape', np.arange(4))\n\
             put('chunk0', np.arange(4))\n\
             put('codec', np.arange(4))\n\
             put('chunk', np.arange(4, dtype='f8'), chunks=(4,))\n\
             put('raw', np.arange(4, dtype='f8'), chunks=(4,), compressors=None)\n\
             put('vlen', np.array(['ab', 'c'], dtype=object), dtype=str, compressors=None)\n\
             put('utf8', np.array(['ab', 'c'], dtype=object), dtype=str, compressors=None)\n",
        );
        let (meta, chunk0) = if fmt == 2 {
            (".zarray", "0")
        } else {
            ("zarr.json", "c/0")
        };
        let edit = |name: &str, from: &str, to: &str| {
            let file = path.join(name).join(meta);
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(text.contains(from), "{text}");
            std::fs::write(&file, text.replacen(from, to, 1)).unwrap();
        };
        overwrite(&path, &format!("json/{meta}"), b"{\"shape\": [4");
        edit("shape", "\"shape\": [\n    4", "\"shape\": [\n    -4");
        let chunks = if fmt == 2 {
            "\"chunks\": [\n    4"
        } else {
            "\"chunk_shape\": [\n        4"
        };
        edit("chunk0", chunks, &chunks.replace('4', "0"));
        let codec = if fmt == 2 { "\"blosc\"" } else { "\"zstd\"" };
        edit("codec", codec, "\"no-such-codec\"");
        overwrite(
            &path,
            &format!("chunk/{chunk0}"),
            b"\x00\x01 not compressed at all",
        );
        overwrite(
            &path,
            &format!("raw/{chunk0}"),
            b"\x00\x00\x00\x00\x00\x00\xf0\x3f",
        );
        // A vlen-utf8 chunk whose one length runs past its end.
        overwrite(
            &path,
            &format!("vlen/{chunk0}"),
            b"\x02\x00\x00\x00\x10\x00\x00\x00abcd",
        );
        // Two strings, the first not UTF-8.
        overwrite(
            &path,
            &format!("utf8/{chunk0}"),
            b"\x02\x00\x00\x00\x02\x00\x00\x00\xff\xfe\x01\x00\x00\x00c",
        );
        let root = open(&path).unwrap();
        let err = root.array("utf8").unwrap().read().unwrap_err();
        assert!(matches!(err.root(), Error::Malformed(_)), "{err}");
        assert!(err.to_string().contains("not valid UTF-8"), "{err}");
        assert_eq!(err.element(), Some("/utf8"), "{err}");
        for (name, why) in [
            ("json", "invalid metadata"),
            ("shape", "invalid metadata"),
            ("chunk0", "zero extent"),
        ] {
            let err = root.array(name).err().expect("refused");
            assert!(err.to_string().contains(why), "{name}: {err}");
            assert_eq!(err.element(), Some(&*format!("/{name}")), "{err}");
            assert!(root.member_kind(name).is_err());
        }
        // Unknown codecs: the array opens (shape, attributes), its values are refused.
        let codec = root.array("codec").unwrap();
        assert_eq!(codec.shape().unwrap(), [4]);
        let err = codec.read().unwrap_err();
        assert!(matches!(err.root(), Error::Unsupported(_)), "{err}");
        assert!(err.to_string().contains("no-such-codec"), "{err}");
        for name in ["chunk", "raw", "vlen"] {
            let err = root.array(name).unwrap().read().unwrap_err();
            assert!(matches!(err.root(), Error::Malformed(_)), "{name}: {err}");
            assert!(
                err.to_string().contains("cannot be decoded"),
                "{name}: {err}"
            );
        }
        // Broken members are still listed: reading them is what fails.
        assert_eq!(root.member_names().unwrap().len(), 8);
    }
}

/// Shards of 512 MiB around 4,000 bytes of values (as annbatch writes `indptr`): only inner
/// chunks are decoded, so the shard's size is no claim. The store's shard index takes 32 MiB,
/// too much to commit: zarr writes it when the test runs.
#[test]
#[ignore = "writes a 32 MiB store with zarr (the venv) when it runs; ./dev test runs it"]
fn a_shard_far_larger_than_its_array_is_no_claim() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.zarr");
    let script = "w = root.create_array('wide_shards', shape=(1000,), shards=(64 * 2**21,), \
                  chunks=(64,), dtype='i4')\n\
                  w[:] = np.arange(1000, dtype='i4')\n";
    run_python(&with_root(3, "path", script), &path);
    let wide = open(&path).unwrap().array("wide_shards").unwrap();
    wide.check_claim().unwrap();
    let all = ArrayData::from((0..1000).collect::<Vec<i32>>());
    assert_eq!(wide.read().unwrap(), all);
    assert_eq!(
        wide.read_rows(990..1000).unwrap(),
        all.select(0, &(990..1000).collect::<Vec<_>>())
    );
}

#[test]
fn symlinked_group_cycles_are_refused() {
    let (_d, path) = store(
        3,
        "g = root.create_group('g')\n\
         g.attrs.update({'encoding-type': 'dict', 'encoding-version': '0.1.0'})\n\
         put('x', np.arange(3), group=g)\n\
         import os; os.symlink('..', os.path.join(path, 'g', 'loop'))\n",
    );
    let root = open(&path).unwrap();
    let g = root.group("g").unwrap();
    assert_eq!(g.member_names().unwrap(), ["loop", "x"]);
    assert_eq!(
        g.group("loop").unwrap().object_id().unwrap(),
        root.object_id().unwrap()
    );
    let err = crate::format::read::read_element(&*root, "g").unwrap_err();
    assert!(err.to_string().contains("a link cycle"), "{err}");
}

#[test]
fn fortran_order_v2_arrays_are_refused() {
    let (_d, path) = py_file(
        "t.zarr",
        "import zarr\n\
         z = zarr.open_group(path, mode='w', zarr_format=2)\n\
         z.create_array('f', shape=(2, 2), dtype='i4', order='F')[...] = 1\n",
    );
    let err = read_err(&path, "f");
    assert!(
        err.contains("F-order") || err.contains("transpose"),
        "{err}"
    );
}

fn read_err(path: &Path, name: &str) -> String {
    let root = open(path).unwrap();
    root.array(name).unwrap().read().unwrap_err().to_string()
}

#[test]
fn zstd_frames_that_lie_about_their_size_are_refused() {
    // A 48-byte frame declaring a petabyte: decoding it would allocate that up front.
    let mut bomb = vec![0x28, 0xB5, 0x2F, 0xFD, 0xE0];
    bomb.extend_from_slice(&(1u64 << 50).to_le_bytes());
    bomb.extend_from_slice(&((32u32 << 3) | 1).to_le_bytes()[..3]);
    bomb.extend_from_slice(&[0u8; 32]);
    for fmt in FORMATS {
        let compressor = if fmt == 2 {
            "numcodecs.Zstd(level=3)"
        } else {
            "zarr.codecs.ZstdCodec(level=3)"
        };
        let (_d, path) = store(
            fmt,
            &format!(
                "put('z', np.arange(4, dtype='f8'), chunks=(4,), compressors={compressor})\n\
                 put('s', np.array(['a', 'b'], dtype=object), dtype=str, compressors={compressor})\n\
                 if fmt == 3:\n\
                 \x20   put('sh', np.arange(8, dtype='f8'), chunks=(2,), shards=(4,), compressors={compressor})\n"
            ),
        );
        let chunk0 = if fmt == 2 { "0" } else { "c/0" };
        let root = open(&path).unwrap();
        assert_eq!(read(&*root, "z"), ArrayData::from(vec![0.0, 1.0, 2.0, 3.0]));
        overwrite(&path, &format!("z/{chunk0}"), &bomb);
        overwrite(&path, &format!("s/{chunk0}"), &bomb);
        for (name, why) in [
            ("z", "more than the 32 bytes its chunk holds"),
            // Strings have no fixed size: bounded per string (guard::decoded_limit).
            ("s", "bytes its chunk holds"),
        ] {
            let err = root.array(name).unwrap().read().unwrap_err().to_string();
            assert!(
                err.contains("declaring 1125899906842624 decoded bytes") && err.contains(why),
                "{err}"
            );
        }
        // Frames whose bound zstd cannot tell (bytes after the frame) are decoded by zarrs as
        // a stream that grows with its output: the guard counts what they decode to first.
        let mut unbounded = zstd::bulk::compress(&vec![0u8; 1 << 20], 3).unwrap();
        unbounded.extend_from_slice(b"not a frame");
        assert_eq!(zstd::bulk::Decompressor::upper_bound(&unbounded), None);
        overwrite(&path, &format!("z/{chunk0}"), &unbounded);
        let err = root.array("z").unwrap().read().unwrap_err().to_string();
        assert!(
            err.contains("decodes past its chunk, more than the 32 bytes"),
            "{err}"
        );
        if fmt == 3 {
            assert_eq!(
                read(&*root, "sh"),
                ArrayData::from((0..8).map(f64::from).collect::<Vec<_>>())
            );
            // The first inner chunk of the first shard becomes the bomb: index entry 0 → it.
            let shard = std::fs::read(path.join("sh/c/0")).unwrap();
            let index = &shard[shard.len() - 2 * 16 - 4..];
            let rest = &shard[..shard.len() - 2 * 16 - 4];
            let second = u64::from_le_bytes(index[16..24].try_into().unwrap()) as usize;
            let second_len = u64::from_le_bytes(index[24..32].try_into().unwrap()) as usize;
            let mut forged = bomb.clone();
            forged.extend_from_slice(&rest[second..second + second_len]);
            let mut entries = Vec::new();
            for (offset, len) in [(0, bomb.len()), (bomb.len(), second_len)] {
                entries.extend_from_slice(&(offset as u64).to_le_bytes());
                entries.extend_from_slice(&(len as u64).to_le_bytes());
            }
            let crc = crc32c_of(&entries);
            forged.extend_from_slice(&entries);
            forged.extend_from_slice(&crc.to_le_bytes());
            overwrite(&path, "sh/c/0", &forged);
            let sh = root.array("sh").unwrap();
            for err in [sh.read().unwrap_err(), sh.read_rows(0..1).unwrap_err()] {
                assert!(
                    err.to_string()
                        .contains("more than the 16 bytes its chunk holds"),
                    "{err}"
                );
            }
            // The second shard is intact.
            assert_eq!(
                sh.read_rows(4..8).unwrap(),
                ArrayData::from(vec![4.0, 5.0, 6.0, 7.0])
            );
        }
    }
}

/// CRC-32C (Castagnoli), as the shard index checksum.
fn crc32c_of(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
