//! Whole and range reads of HDF5 datasets and attributes: every dtype, shape and string kind.

use super::*;
use crate::testutil::py_file;

fn open(path: &std::path::Path) -> hdf5::File {
    hdf5::File::open(path).unwrap()
}

#[test]
fn reads_every_numeric_dtype_and_shape() {
    let (_d, path) = py_file(
        "t.h5",
        "with h5py.File(path, 'w') as f:\n\
         \x20   for t in ['i1','i2','i4','i8','u1','u2','u4','u8','f4','f8','>i4','>f8']:\n\
         \x20       f[t] = np.array([[1, 2, 3], [4, 5, 6]], dtype=t)\n\
         \x20   f['scalar'] = np.float64(2.5)\n\
         \x20   f['empty'] = np.zeros((0, 3), dtype='f4')\n\
         \x20   f['nan'] = np.array([np.nan, -np.inf, 0.5])\n\
         \x20   f['nd'] = np.arange(24, dtype='i2').reshape(2, 3, 4)\n",
    );
    let f = open(&path);
    let expect = [
        ("i1", DType::I8),
        ("i2", DType::I16),
        ("i4", DType::I32),
        ("i8", DType::I64),
        ("u1", DType::U8),
        ("u2", DType::U16),
        ("u4", DType::U32),
        ("u8", DType::U64),
        ("f4", DType::F32),
        ("f8", DType::F64),
        (">i4", DType::I32),
        (">f8", DType::F64),
    ];
    for (name, dtype) in expect {
        let a = read_array(&f.dataset(name).unwrap()).unwrap();
        assert_eq!(a.dtype(), dtype, "{name}");
        assert_eq!(a.shape(), &[2, 3], "{name}");
        assert_eq!(
            a.to_f64().unwrap().iter().copied().collect::<Vec<_>>(),
            [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            "{name}"
        );
    }
    let s = read_array(&f.dataset("scalar").unwrap()).unwrap();
    assert_eq!(s, ArrayData::F64(ArrayD::from_elem(IxDyn(&[]), 2.5)));
    let e = read_array(&f.dataset("empty").unwrap()).unwrap();
    assert_eq!((e.dtype(), e.shape()), (DType::F32, &[0usize, 3][..]));
    let ArrayData::F64(n) = read_array(&f.dataset("nan").unwrap()).unwrap() else {
        panic!("nan: wrong dtype")
    };
    assert!(n[0].is_nan());
    assert_eq!((n[1], n[2]), (f64::NEG_INFINITY, 0.5));
    let nd = read_array(&f.dataset("nd").unwrap()).unwrap();
    assert_eq!(nd.shape(), &[2, 3, 4]);
    let ArrayData::I16(nd) = nd else {
        panic!("nd: wrong dtype")
    };
    assert_eq!(nd[[1, 2, 3]], 23);
}

#[test]
fn reads_bools_half_floats_enums_and_bitfields() {
    let (_d, path) = py_file(
        "t.h5",
        "with h5py.File(path, 'w') as f:\n\
         \x20   f['b'] = np.array([True, False, True])\n\
         \x20   f['b0'] = np.bool_(True)\n\
         \x20   f['h'] = np.array([1.5, -2.0, 65504.0, 6e-08, np.inf], dtype='f2')\n\
         \x20   dt = h5py.enum_dtype({'RED': 0, 'GREEN': 7}, basetype='i2')\n\
         \x20   f.create_dataset('enum', data=np.array([7, 0], dtype='i2'), dtype=dt)\n\
         \x20   bt = h5py.h5t.NATIVE_B8\n\
         \x20   sp = h5py.h5s.create_simple((2,))\n\
         \x20   ds = h5py.h5d.create(f.id, b'bits', bt, sp)\n\
         \x20   ds.write(h5py.h5s.ALL, h5py.h5s.ALL, np.array([3, 250], dtype='u1'))\n",
    );
    let f = open(&path);
    assert_eq!(
        read_array(&f.dataset("b").unwrap()).unwrap(),
        ArrayData::from(vec![true, false, true])
    );
    assert_eq!(
        read_array(&f.dataset("b0").unwrap()).unwrap(),
        ArrayData::Bool(ArrayD::from_elem(IxDyn(&[]), true))
    );
    let ArrayData::F16(h) = read_array(&f.dataset("h").unwrap()).unwrap() else {
        panic!("half floats should read as float16")
    };
    let h: Vec<f32> = h.iter().map(|&v| v.into()).collect();
    assert_eq!(h[..3], [1.5, -2.0, 65504.0]);
    assert!((h[3] - 5.96e-8).abs() < 1e-9, "subnormal half: {}", h[3]);
    assert_eq!(h[4], f32::INFINITY);
    assert_eq!(
        read_array(&f.dataset("enum").unwrap()).unwrap(),
        ArrayData::from(vec![7i16, 0])
    );
    assert_eq!(
        read_array(&f.dataset("bits").unwrap()).unwrap(),
        ArrayData::from(vec![3u8, 250])
    );
}

#[test]
fn reads_strings_of_every_kind() {
    let (_d, path) = py_file(
        "t.h5",
        "with h5py.File(path, 'w') as f:\n\
         \x20   f.create_dataset('vlen', data=['a', 'héllo wörld', '', '細胞'], dtype=h5py.string_dtype())\n\
         \x20   f.create_dataset('ascii', data=[b'x', b'yz'], dtype=h5py.string_dtype('ascii'))\n\
         \x20   f['fixed'] = np.array([b'AAACCTG-1', b'b', b''], dtype='S13')\n\
         \x20   f['fixed2d'] = np.array([[b'a', b'b'], [b'c', b'd']], dtype='S1')\n\
         \x20   f.create_dataset('scalar', data='só', dtype=h5py.string_dtype())\n\
         \x20   f.create_dataset('empty', shape=(0,), dtype=h5py.string_dtype())\n\
         \x20   f.create_dataset('utf8fixed', data=np.array(['é'.encode()], dtype='S4'))\n",
    );
    let f = open(&path);
    let read = |n: &str| read_array(&f.dataset(n).unwrap()).unwrap();
    assert_eq!(
        read("vlen"),
        ArrayData::from(vec!["a", "héllo wörld", "", "細胞"])
    );
    assert_eq!(read("ascii"), ArrayData::from(vec!["x", "yz"]));
    assert_eq!(read("fixed"), ArrayData::from(vec!["AAACCTG-1", "b", ""]));
    let fixed2d = read("fixed2d");
    assert_eq!(fixed2d.shape(), &[2, 2]);
    assert_eq!(
        fixed2d,
        ArrayData::String(
            ArrayD::from_shape_vec(
                IxDyn(&[2, 2]),
                vec!["a".into(), "b".into(), "c".into(), "d".into()]
            )
            .unwrap()
        )
    );
    assert_eq!(
        read("scalar"),
        ArrayData::String(ArrayD::from_elem(IxDyn(&[]), "só".into()))
    );
    assert_eq!(
        read("empty"),
        ArrayData::String(ArrayD::from_elem(IxDyn(&[0]), Default::default()))
    );
    assert_eq!(read("utf8fixed"), ArrayData::from(vec!["é"]));
}

#[test]
fn reads_compound_datasets_field_by_field() {
    let (_d, path) = py_file(
        "t.h5",
        "dt = np.dtype([('index', 'S8'), ('n', '<i8'), ('pca', '<f4', (3,)), ('flag', '?'), \
         ('name', h5py.string_dtype()), ('h', '<f2')])\n\
         a = np.array([(b'c1', 5, [1, 2, 3], True, 'x', 0.5), (b'c2', -1, [4, 5, 6], False, 'ÿz', 2)], dtype=dt)\n\
         with h5py.File(path, 'w') as f:\n\
         \x20   f['rec'] = a\n\
         \x20   f['rec0'] = a[:0]\n",
    );
    let f = open(&path);
    let ds = f.dataset("rec").unwrap();
    assert!(read_array(&ds).is_err(), "a compound is not an array");
    let RawData::Compound { shape, fields } = read_raw_data(&ds).unwrap() else {
        panic!("not read as a compound")
    };
    assert_eq!(shape, [2]);
    let names: Vec<&str> = fields.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(names, ["index", "n", "pca", "flag", "name", "h"]);
    assert_eq!(fields[0].1, ArrayData::from(vec!["c1", "c2"]));
    assert_eq!(fields[1].1, ArrayData::from(vec![5i64, -1]));
    assert_eq!(
        fields[2].1,
        ArrayData::from(ndarray::array![[1f32, 2., 3.], [4., 5., 6.]])
    );
    assert_eq!(fields[3].1, ArrayData::from(vec![true, false]));
    assert_eq!(fields[4].1, ArrayData::from(vec!["x", "ÿz"]));
    assert_eq!(fields[5].1, ArrayData::from(vec![0.5f32, 2.0]));
    let RawData::Compound { shape, fields } = read_raw_data(&f.dataset("rec0").unwrap()).unwrap()
    else {
        panic!("empty compound")
    };
    assert_eq!(shape, [0]);
    assert_eq!(fields[2].1.shape(), &[0, 3]);
}

#[test]
fn reads_attributes_of_every_kind() {
    let (_d, path) = py_file(
        "t.h5",
        "with h5py.File(path, 'w') as f:\n\
         \x20   g = f.create_group('g')\n\
         \x20   g.attrs['s'] = 'dataframe'\n\
         \x20   g.attrs['order'] = np.array(['a', 'é b'], dtype=object)\n\
         \x20   g.attrs['empty'] = np.array([], dtype='f8')\n\
         \x20   g.attrs['shape'] = np.array([3, 4], dtype='i8')\n\
         \x20   g.attrs['ordered'] = np.bool_(False)\n\
         \x20   g.attrs['i'] = 7\n\
         \x20   g.attrs['fixed'] = np.bytes_(b'csr')\n\
         \x20   g.attrs['fixedarr'] = np.array([b'ab', b'c'], dtype='S2')\n\
         \x20   g.attrs['ref'] = f['g'].ref\n",
    );
    let f = open(&path);
    let g = f.group("g").unwrap();
    assert_eq!(
        crate::storage::Node::string_attr(&g, "s")
            .unwrap()
            .as_deref(),
        Some("dataframe")
    );
    assert_eq!(
        crate::storage::Node::string_attr(&g, "fixed")
            .unwrap()
            .as_deref(),
        Some("csr")
    );
    assert_eq!(
        crate::storage::Node::string_attr(&g, "missing").unwrap(),
        None
    );
    assert!(crate::storage::Node::string_attr(&g, "i").is_err());
    assert_eq!(
        read_attr(&g, "order").unwrap(),
        ArrayData::from(vec!["a", "é b"])
    );
    assert_eq!(
        read_attr(&g, "fixedarr").unwrap(),
        ArrayData::from(vec!["ab", "c"])
    );
    let empty = read_attr(&g, "empty").unwrap();
    assert_eq!((empty.dtype(), empty.len()), (DType::F64, 0));
    assert_eq!(
        read_attr(&g, "shape").unwrap(),
        ArrayData::from(vec![3i64, 4])
    );
    assert_eq!(
        read_attr(&g, "ordered").unwrap(),
        ArrayData::Bool(ArrayD::from_elem(IxDyn(&[]), false))
    );
    assert_eq!(attr_type(&g, "ref").unwrap(), StoredType::ObjectReference);
    let ReferencedObject::Group(target) = read_ref_attr(&g, "ref").unwrap() else {
        panic!("reference to a group expected")
    };
    assert_eq!(target.name(), "/g");
    assert!(read_ref_attr(&g, "s").is_err());
    let err = read_attrs(&g).unwrap_err();
    assert!(err.to_string().contains("attribute 'ref'"), "{err}");
}

#[test]
fn missing_filter_is_named_and_lzf_reads() {
    let (_d, path) = py_file(
        "t.h5",
        "with h5py.File(path, 'w') as f:\n\
         \x20   d = f.create_dataset('blosc', shape=(4,), dtype='f4', chunks=(4,), compression=32001, allow_unknown_filter=True)\n\
         \x20   d.id.write_direct_chunk((0,), b'not really blosc')\n\
         \x20   f.create_dataset('lzf', data=np.arange(1000, dtype='i4'), compression='lzf')\n\
         \x20   f.create_dataset('gz', data=np.arange(1000, dtype='f8'), compression='gzip', shuffle=True)\n",
    );
    let f = open(&path);
    let err = read_array(&f.dataset("blosc").unwrap()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("blosc") && msg.contains("32001"), "{msg}");
    assert!(matches!(err, Error::Unsupported(_)));
    let ArrayData::I32(lzf) = read_array(&f.dataset("lzf").unwrap()).unwrap() else {
        panic!("lzf: wrong dtype")
    };
    assert_eq!((lzf.len(), lzf[999]), (1000, 999));
    let gz = read_array(&f.dataset("gz").unwrap()).unwrap();
    assert_eq!(gz.to_f64().unwrap()[500], 500.0);
}

#[test]
fn null_dataspace_reads_as_empty() {
    let (_d, path) = py_file(
        "t.h5",
        "with h5py.File(path, 'w') as f:\n\
         \x20   f['e'] = h5py.Empty('f')\n\
         \x20   f['es'] = h5py.Empty(h5py.string_dtype())\n",
    );
    let f = open(&path);
    let e = read_array(&f.dataset("e").unwrap()).unwrap();
    assert_eq!((e.dtype(), e.shape()), (DType::F32, &[0usize][..]));
    let es = read_array(&f.dataset("es").unwrap()).unwrap();
    assert_eq!((es.dtype(), es.shape()), (DType::String, &[0usize][..]));
}

#[test]
fn objects_with_more_attributes_than_the_limit_are_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let f = hdf5::File::create(dir.path().join("t.h5")).unwrap();
    let (few, many) = (
        f.create_group("few").unwrap(),
        f.create_group("many").unwrap(),
    );
    for (g, n) in [(&few, MAX_ATTRIBUTES), (&many, MAX_ATTRIBUTES + 1)] {
        for i in 0..n {
            let a = g
                .new_attr::<i32>()
                .create(format!("a{i}").as_str())
                .unwrap();
            a.write_scalar(&(i as i32)).unwrap();
        }
    }
    let all = read_attrs(&few).unwrap();
    assert_eq!(all.len(), MAX_ATTRIBUTES);
    assert_eq!(all["a7"], ArrayData::I32(ArrayD::from_elem(IxDyn(&[]), 7)));
    let err = read_attrs(&many).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Unsupported(_)), "{msg}");
    assert!(msg.contains("1025 attributes"), "{msg}");
    // Reading a node whole goes through the same reader.
    assert_eq!(crate::storage::Node::attrs(&few).unwrap(), all);
    assert!(crate::storage::Node::attrs(&many).is_err());
}

#[test]
fn attributes_asked_for_together_read_as_one_by_one() {
    use crate::storage::Node;
    let dir = tempfile::tempdir().unwrap();
    let f = hdf5::File::create(dir.path().join("t.h5")).unwrap();
    let g = f.create_group("g").unwrap();
    let kind: hdf5::types::VarLenUnicode = "csr_matrix".parse().unwrap();
    g.new_attr::<hdf5::types::VarLenUnicode>()
        .create("encoding-type")
        .unwrap()
        .write_scalar(&kind)
        .unwrap();
    g.new_attr::<i32>()
        .create("n")
        .unwrap()
        .write_scalar(&3)
        .unwrap();
    let names = ["n", "missing", "encoding-type", "n"];
    let together = g.attrs_of(&names).unwrap();
    let one_by_one: Vec<_> = names.iter().map(|n| g.attr(n).unwrap()).collect();
    assert_eq!(together, one_by_one);
    assert_eq!(together[1], None);
    assert_eq!(
        g.string_attrs(&["encoding-type", "missing"]).unwrap(),
        [Some("csr_matrix".to_string()), None]
    );
    let err = g.string_attrs(&["n"]).unwrap_err().to_string();
    assert!(err.contains("attribute 'n' should be a string"), "{err}");
}
