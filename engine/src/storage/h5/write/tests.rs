//! Datasets and attributes written here, checked with the real h5py (and the engine's reader).

use ndarray::{arr2, ArrayD, IxDyn};

use super::*;
use crate::storage::h5::read::{read_array, read_attr};
use crate::testutil::run_python;

fn arr<T>(shape: &[usize], v: Vec<T>) -> ArrayD<T> {
    ArrayD::from_shape_vec(IxDyn(shape), v).unwrap()
}

/// A fresh file in a temporary directory.
fn new_file(name: &str) -> (tempfile::TempDir, std::path::PathBuf, hdf5::File) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    let file = hdf5::File::create(&path).unwrap();
    (dir, path, file)
}

/// One array of every dtype, n-d, 0-d and empty.
fn samples() -> Vec<(&'static str, ArrayData)> {
    vec![
        ("b", ArrayData::from(vec![true, false, true])),
        ("i8", ArrayData::from(vec![-128i8, 0, 127])),
        ("i16", ArrayData::from(vec![-300i16, 7])),
        ("i32", ArrayData::from(arr2(&[[1i32, 2, 3], [4, 5, 6]]))),
        ("i64", ArrayData::from(vec![i64::MIN, i64::MAX])),
        ("u8", ArrayData::from(vec![0u8, 255])),
        ("u16", ArrayData::from(vec![65535u16])),
        ("u32", ArrayData::from(vec![4_000_000_000u32])),
        ("u64", ArrayData::from(vec![u64::MAX])),
        (
            "f32",
            ArrayData::F32(arr(&[2, 1, 2], vec![0.5, -1.5, 2.25, 1e30])),
        ),
        (
            "f64",
            ArrayData::from(vec![f64::NAN, f64::INFINITY, -0.0, 1e-300]),
        ),
        ("s", ArrayData::from(vec!["plain", "ünïcødé ✓", ""])),
        (
            "s2",
            ArrayData::String(arr(&[2, 2], ["a", "b", "c", "d"].map(Into::into).to_vec())),
        ),
        ("scalar_f", ArrayData::F64(arr(&[], vec![2.5]))),
        ("scalar_b", ArrayData::Bool(arr(&[], vec![true]))),
        ("scalar_s", ArrayData::String(arr(&[], vec!["hé".into()]))),
        ("empty_f", ArrayData::zeros(DType::F64, &[0])),
        ("empty_s", ArrayData::zeros(DType::String, &[0])),
        ("empty_2d", ArrayData::zeros(DType::F32, &[3, 0])),
    ]
}

const CHECK_SAMPLES: &str = "\
f = h5py.File(path)
def check(name, dtype, shape, values):
    d = f[name]
    assert d.dtype == np.dtype(dtype), (name, d.dtype)
    assert d.shape == shape, (name, d.shape)
    v = d.asstr()[()] if dtype == object else d[()]
    got = np.asarray(v, dtype=object if dtype == object else None)
    want = np.asarray(values, dtype=object if dtype == object else dtype).reshape(shape)
    if dtype in ('float32', 'float64'):
        assert np.array_equal(got, want, equal_nan=True), (name, got, want)
        assert np.array_equal(np.signbit(got), np.signbit(want)), (name, got)
    else:
        assert (got == want).all(), (name, got, want)
check('b', 'bool', (3,), [True, False, True])
check('i8', 'int8', (3,), [-128, 0, 127])
check('i16', 'int16', (2,), [-300, 7])
check('i32', 'int32', (2, 3), [1, 2, 3, 4, 5, 6])
check('i64', 'int64', (2,), [-2**63, 2**63 - 1])
check('u8', 'uint8', (2,), [0, 255])
check('u16', 'uint16', (1,), [65535])
check('u32', 'uint32', (1,), [4000000000])
check('u64', 'uint64', (1,), [2**64 - 1])
check('f32', 'float32', (2, 1, 2), [0.5, -1.5, 2.25, 1e30])
check('f64', 'float64', (4,), [np.nan, np.inf, -0.0, 1e-300])
check('s', object, (3,), ['plain', 'ünïcødé ✓', ''])
check('s2', object, (2, 2), ['a', 'b', 'c', 'd'])
check('scalar_f', 'float64', (), 2.5)
check('scalar_b', 'bool', (), True)
check('scalar_s', object, (), 'hé')
check('empty_f', 'float64', (0,), [])
check('empty_s', object, (0,), [])
check('empty_2d', 'float32', (3, 0), [])
for name in ('s', 's2', 'scalar_s', 'empty_s'):
    info = h5py.check_string_dtype(f[name].dtype)
    assert info is not None and info.encoding == 'utf-8' and info.length is None, (name, info)
    t = f[name].id.get_type()
    assert t.is_variable_str() and t.get_cset() == h5py.h5t.CSET_UTF8, name
for name in ('b', 'scalar_b'):
    t = f[name].id.get_type()
    assert t.get_class() == h5py.h5t.ENUM and t.get_size() == 1, name
    assert t.get_super().get_sign() == h5py.h5t.SGN_2, name
    assert sorted((t.get_member_name(i), t.get_member_value(i)) for i in range(2)) == [(b'FALSE', 0), (b'TRUE', 1)]
";

#[test]
#[ignore = "checks the written file with h5py, zarr or anndata (the venv); ./dev test runs it"]
fn every_dtype_round_trips_through_h5py() {
    let (_dir, path, file) = new_file("all.h5");
    for (name, data) in samples() {
        write_array(&file, name, &data, &ArrayOptions::default()).unwrap();
        let back = read_array(&file.dataset(name).unwrap()).unwrap();
        match (&back, &data) {
            // NaN is not equal to itself: compare the bits.
            (ArrayData::F64(b), ArrayData::F64(d)) => {
                let bits = |a: &ArrayD<f64>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(b), bits(d), "{name}");
            }
            _ => assert_eq!(back, data, "{name}"),
        }
        let ds = file.dataset(name).unwrap();
        assert!(!ds.is_chunked(), "{name} should be contiguous");
    }
    drop(file);
    run_python(CHECK_SAMPLES, &path);
}

#[test]
fn non_standard_layouts_are_written_in_logical_order() {
    let (_dir, _path, file) = new_file("t.h5");
    let t = arr2(&[[1i64, 2, 3], [4, 5, 6]]).reversed_axes().into_dyn();
    write_array(
        &file,
        "t",
        &ArrayData::I64(t.clone()),
        &ArrayOptions::default(),
    )
    .unwrap();
    assert_eq!(
        read_array(&file.dataset("t").unwrap()).unwrap(),
        ArrayData::I64(t)
    );
}

/// Storage as anndata/h5py lay it out: gzip and LZF chunked as h5py guesses (also for
/// strings and empty arrays), scalars contiguous and uncompressed.
#[test]
#[ignore = "checks the written file with h5py, zarr or anndata (the venv); ./dev test runs it"]
fn compression_and_chunking_follow_h5py() {
    let (_dir, path, file) = new_file("c.h5");
    let gz = ArrayOptions::compressed(Compression::Gzip(4));
    let lzf = ArrayOptions::compressed(Compression::Lzf);
    let big = ArrayData::F32(arr(&[1000, 50], (0..50_000).map(|v| v as f32).collect()));
    write_array(&file, "gz_big", &big, &gz).unwrap();
    write_array(&file, "lzf_big", &big, &lzf).unwrap();
    write_array(&file, "gz_s", &ArrayData::from(vec!["x", "y", "z"]), &gz).unwrap();
    write_array(&file, "lzf_s", &ArrayData::from(vec!["x", "y", "z"]), &lzf).unwrap();
    write_array(&file, "gz_empty", &ArrayData::zeros(DType::F64, &[0]), &gz).unwrap();
    write_array(
        &file,
        "gz_empty2",
        &ArrayData::zeros(DType::F32, &[3, 0]),
        &gz,
    )
    .unwrap();
    write_array(&file, "gz_scalar", &ArrayData::I64(arr(&[], vec![3])), &gz).unwrap();
    write_array(
        &file,
        "gz9",
        &ArrayData::from(vec![1u8; 100]),
        &ArrayOptions::compressed(Compression::Gzip(9)),
    )
    .unwrap();
    let sparse_like = ArrayOptions::default().resizable();
    write_array(
        &file,
        "grow",
        &ArrayData::from(vec![1i32; 10]),
        &sparse_like,
    )
    .unwrap();
    write_array(
        &file,
        "grow_empty",
        &ArrayData::zeros(DType::I32, &[0]),
        &sparse_like,
    )
    .unwrap();
    let e = write_array(
        &file,
        "bad",
        &big,
        &ArrayOptions::compressed(Compression::Gzip(10)),
    )
    .unwrap_err();
    assert!(e.to_string().contains("gzip level 10"), "{e}");
    assert_eq!(read_array(&file.dataset("lzf_big").unwrap()).unwrap(), big);
    drop(file);
    run_python(
        "from h5py._hl.filters import guess_chunk
f = h5py.File(path)
def check(name, comp, opts, chunks, maxshape=None):
    d = f[name]
    assert d.compression == comp, (name, d.compression)
    assert d.compression_opts == opts, (name, d.compression_opts)
    assert d.chunks == chunks, (name, d.chunks, chunks)
    assert not d.shuffle and not d.fletcher32, name
    if maxshape is not None:
        assert d.maxshape == maxshape, (name, d.maxshape)
check('gz_big', 'gzip', 4, guess_chunk((1000, 50), None, 4))
check('lzf_big', 'lzf', None, (250, 13))
check('gz_s', 'gzip', 4, (3,))
check('lzf_s', 'lzf', None, (3,))
check('gz_empty', 'gzip', 4, (1024,), (0,))
check('gz_empty2', 'gzip', 4, (2, 1024), (3, 0))
check('gz_scalar', None, None, None)
check('gz9', 'gzip', 9, (100,))
check('grow', None, None, (10,), (None,))
check('grow_empty', None, None, (1024,), (None,))
assert (f['lzf_big'][()] == np.arange(50000, dtype='f4').reshape(1000, 50)).all()
assert list(f['gz_s'].asstr()[()]) == ['x', 'y', 'z']
assert f['gz_scalar'][()] == 3
assert 'bad' not in f
",
        &path,
    );
}

/// The attribute types anndata writes: vlen UTF-8 scalar strings, vlen string arrays, an
/// int64 `shape`, a bool-enum scalar, an empty float64 array.
#[test]
#[ignore = "checks the written file with h5py, zarr or anndata (the venv); ./dev test runs it"]
fn attributes_are_typed_as_h5py_writes_them() {
    let (_dir, path, file) = new_file("a.h5");
    let g = file.create_group("g").unwrap();
    crate::storage::AttrWriter::set_str_attr(&g, "encoding-type", "dataframe").unwrap();
    write_attr(&g, "column-order", &ArrayData::from(vec!["a", "ß c"])).unwrap();
    write_attr(&g, "shape", &ArrayData::from(vec![5i64, 4])).unwrap();
    write_attr(&g, "ordered", &ArrayData::Bool(arr(&[], vec![true]))).unwrap();
    write_attr(&g, "empty", &ArrayData::zeros(DType::F64, &[0])).unwrap();
    write_attr(&g, "grid", &ArrayData::from(arr2(&[[1u16, 2], [3, 4]]))).unwrap();
    // Replacing an attribute changes its type too.
    write_attr(&g, "replaced", &ArrayData::from(vec![1.0f32])).unwrap();
    crate::storage::AttrWriter::set_str_attr(&g, "replaced", "now a string").unwrap();
    let mut attrs = Attrs::new();
    attrs.insert("x".into(), ArrayData::from(vec![true, false]));
    attrs.insert("y".into(), ArrayData::U8(arr(&[], vec![7])));
    write_attrs(&g, &attrs).unwrap();
    assert_eq!(
        read_attr(&g, "x").unwrap(),
        ArrayData::from(vec![true, false])
    );
    assert_eq!(
        read_attr(&g, "shape").unwrap(),
        ArrayData::from(vec![5i64, 4])
    );
    drop((g, file));
    run_python(
        "f = h5py.File(path)
g = f['g']
def kind(name):
    a = g.attrs.get_id(name)
    return a.get_type(), a.get_space()
t, s = kind('encoding-type')
assert t.get_class() == h5py.h5t.STRING and t.is_variable_str() and t.get_cset() == h5py.h5t.CSET_UTF8
assert s.get_simple_extent_type() == h5py.h5s.SCALAR
assert g.attrs['encoding-type'] == 'dataframe'
t, s = kind('column-order')
assert t.is_variable_str() and t.get_cset() == h5py.h5t.CSET_UTF8 and s.shape == (2,)
assert list(g.attrs['column-order']) == ['a', 'ß c']
assert g.attrs['shape'].dtype == np.int64 and list(g.attrs['shape']) == [5, 4]
o = g.attrs['ordered']
assert isinstance(o, np.bool_) and o, repr(o)
t, s = kind('ordered')
assert t.get_class() == h5py.h5t.ENUM and s.get_simple_extent_type() == h5py.h5s.SCALAR
e = g.attrs['empty']
assert e.dtype == np.float64 and e.shape == (0,), repr(e)
assert g.attrs['grid'].dtype == np.uint16 and g.attrs['grid'].tolist() == [[1, 2], [3, 4]]
assert g.attrs['replaced'] == 'now a string'
assert g.attrs['x'].dtype == np.bool_ and g.attrs['x'].tolist() == [True, False]
assert g.attrs['y'] == 7 and g.attrs['y'].dtype == np.uint8
",
        &path,
    );
}

/// A dataset of known final length filled in blocks, and a resizable one grown by appends.
#[test]
#[ignore = "checks the written file with h5py, zarr or anndata (the venv); ./dev test runs it"]
fn datasets_fill_in_slices_and_grow() {
    let (_dir, path, file) = new_file("s.h5");
    let fixed = create_array(
        &file,
        "fixed",
        DType::F32,
        &[7, 2],
        &ArrayOptions::default(),
    )
    .unwrap();
    let block = |lo: usize, n: usize| {
        ArrayData::F32(arr(
            &[n, 2],
            (lo * 2..(lo + n) * 2).map(|v| v as f32).collect(),
        ))
    };
    write_rows(&fixed, 4, &block(4, 3)).unwrap();
    write_rows(&fixed, 0, &block(0, 4)).unwrap();
    write_rows(&fixed, 7, &block(7, 0)).unwrap();
    assert_eq!(read_array(&fixed).unwrap(), block(0, 7));

    let opts = ArrayOptions {
        compression: Compression::Gzip(1),
        chunks: Some(vec![4]),
        ..ArrayOptions::default()
    }
    .resizable();
    let grow = create_array(&file, "grow", DType::String, &[0], &opts).unwrap();
    assert_eq!(
        append_rows(&grow, &ArrayData::from(vec!["a", "b", "c"])).unwrap(),
        3
    );
    assert_eq!(
        append_rows(&grow, &ArrayData::zeros(DType::String, &[0])).unwrap(),
        3
    );
    assert_eq!(
        append_rows(&grow, &ArrayData::from(vec!["d", "é"])).unwrap(),
        5
    );
    assert_eq!(
        read_array(&grow).unwrap(),
        ArrayData::from(vec!["a", "b", "c", "d", "é"])
    );

    // Refusals: wrong dtype, wrong trailing axes, past the end, growing a fixed dataset.
    let e = write_rows(&fixed, 0, &ArrayData::F64(arr(&[1, 2], vec![0.0, 1.0]))).unwrap_err();
    assert!(
        e.to_string()
            .contains("float64 values into a dataset of float32"),
        "{e}"
    );
    let e = write_rows(&fixed, 0, &ArrayData::F32(arr(&[1, 3], vec![0.0; 3]))).unwrap_err();
    assert!(e.to_string().contains("do not fit"), "{e}");
    let e = write_rows(&fixed, 6, &block(0, 2)).unwrap_err();
    assert!(
        e.to_string()
            .contains("rows 6..8 are outside a dataset of 7 rows"),
        "{e}"
    );
    let e = append_rows(&fixed, &block(0, 1)).unwrap_err();
    assert!(e.to_string().contains("not created resizable"), "{e}");
    assert_eq!(fixed.shape(), [7, 2]);
    let e = create_array(
        &file,
        "c",
        DType::I8,
        &[4],
        &ArrayOptions {
            chunks: Some(vec![5]),
            ..ArrayOptions::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("chunk shape [5]"), "{e}");
    drop((fixed, grow, file));
    run_python(
        "f = h5py.File(path)
d = f['fixed']
assert d.chunks is None and d[()].tolist() == np.arange(14, dtype='f4').reshape(7, 2).tolist()
g = f['grow']
assert g.maxshape == (None,) and g.chunks == (4,) and g.compression == 'gzip'
assert list(g.asstr()[()]) == ['a', 'b', 'c', 'd', 'é']
",
        &path,
    );
}

#[test]
fn strings_with_nul_are_refused_and_leave_nothing() {
    let (_dir, _path, file) = new_file("n.h5");
    let e = write_array(
        &file,
        "s",
        &ArrayData::from(vec!["ok", "bad\0"]),
        &ArrayOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    assert!(!file.link_exists("s"));
    let e = crate::storage::AttrWriter::set_str_attr(&*file, "a", "x\0y").unwrap_err();
    assert!(e.to_string().contains("NUL"), "{e}");
}

/// Strings beyond `STRINGS_AT_ONCE` are written a block of rows at a time: every row lands
/// in its place (1-d and 2-d, contiguous and chunked), and a NUL in a later block still
/// leaves nothing.
#[test]
fn many_strings_are_written_in_blocks_of_rows() {
    let (_dir, _path, file) = new_file("m.h5");
    let n = 2 * STRINGS_AT_ONCE + 7;
    let names: Vec<String> = (0..n).map(|i| format!("cell_{i}")).collect();
    let one = ArrayData::from(names.clone());
    let pairs = ArrayData::String(arr(
        &[n / 2, 2],
        names[..n / 2 * 2].iter().map(|s| s.into()).collect(),
    ));
    let chunked = ArrayOptions {
        chunks: Some(vec![1000]),
        ..ArrayOptions::default()
    };
    write_array(&file, "one", &one, &ArrayOptions::default()).unwrap();
    write_array(&file, "chunked", &one, &chunked).unwrap();
    write_array(&file, "pairs", &pairs, &ArrayOptions::default()).unwrap();
    for (name, want) in [("one", &one), ("chunked", &one), ("pairs", &pairs)] {
        assert_eq!(
            &read_array(&file.dataset(name).unwrap()).unwrap(),
            want,
            "{name}"
        );
    }
    let mut bad = names;
    bad[n - 1].push('\0');
    let e = write_array(
        &file,
        "bad",
        &ArrayData::from(bad),
        &ArrayOptions::default(),
    );
    assert!(e.is_err() && !file.link_exists("bad"));
}

#[test]
fn raw_data_writes_arrays_and_compounds() {
    let (_dir, _path, file) = new_file("r.h5");
    let a = RawData::Array(ArrayData::from(vec![1u32, 2]));
    write_raw_data(&file, "a", &a, &ArrayOptions::default()).unwrap();
    let c = RawData::Compound {
        shape: vec![2],
        fields: vec![("v".into(), ArrayData::from(vec![0.5f32, 1.5]))],
    };
    write_raw_data(&file, "c", &c, &ArrayOptions::default()).unwrap();
    let read =
        |n: &str| crate::storage::h5::read::read_raw_data(&file.dataset(n).unwrap()).unwrap();
    assert_eq!(read("a"), a);
    assert_eq!(read("c"), c);
}

#[test]
fn blocks_land_at_their_offsets_and_out_of_bounds_ones_are_refused() {
    let (_dir, _path, file) = new_file("b.h5");
    let ds = create_array(&file, "m", DType::I32, &[3, 5], &ArrayOptions::default()).unwrap();
    // Columns 0..2 and 2..5, as the loom writer fills a genes × cells matrix.
    write_block(
        &ds,
        &[0, 0],
        &ArrayData::I32(arr(&[3, 2], vec![0, 1, 5, 6, 10, 11])),
    )
    .unwrap();
    write_block(
        &ds,
        &[0, 2],
        &ArrayData::I32(arr(&[3, 3], vec![2, 3, 4, 7, 8, 9, 12, 13, 14])),
    )
    .unwrap();
    write_block(&ds, &[3, 0], &ArrayData::I32(arr(&[0, 5], vec![]))).unwrap();
    assert_eq!(
        read_array(&ds).unwrap(),
        ArrayData::I32(arr(&[3, 5], (0..15).collect()))
    );
    let one = ArrayData::I32(arr(&[1, 1], vec![0]));
    assert!(write_block(&ds, &[3, 0], &one).is_err());
    assert!(write_block(&ds, &[0, usize::MAX], &one).is_err());
    assert!(write_block(&ds, &[0], &one).is_err());
}
