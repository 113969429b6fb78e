//! Compound (structured) datasets, written field by field as h5py writes numpy record arrays.
//!
//! The file type packs the fields one after the other (numpy's default, unaligned layout);
//! numbers and bools keep their dtype, strings become variable-length UTF-8 and fields with
//! trailing axes become HDF5 array members. The values are laid out in memory with each field
//! aligned to its own size and written with one `H5Dwrite`, HDF5 converting to the packed file
//! type by member name.

use std::ffi::{c_char, CString};

use hdf5::{Dataset, DatasetType, Datatype, Group};
use hdf5_sys::h5::hsize_t;
use hdf5_sys::h5d::H5Dwrite;
use hdf5_sys::h5i::hid_t;
use hdf5_sys::h5p::H5P_DEFAULT;
use hdf5_sys::h5s::H5S_ALL;
use hdf5_sys::h5t::{H5T_class_t, H5Tarray_create2, H5Tcreate, H5Tinsert};

use super::{create_dataset, datatype_of, ArrayOptions};
use crate::data::{ArrayData, DType};
use crate::{Error, Result};

/// Where one field lives in an element, in memory and in the file.
struct Field<'a> {
    name: CString,
    values: &'a ArrayData,
    /// The field's trailing axes (empty for a plain field).
    sub_shape: Vec<usize>,
    /// Number of values per element (product of `sub_shape`).
    per_element: usize,
    /// Size of one value in memory.
    value_size: usize,
    mem_offset: usize,
    file_offset: usize,
}

impl Field<'_> {
    fn size(&self) -> usize {
        self.value_size * self.per_element
    }
}

/// Size of one value of `dtype` in memory (a string is a `char *`).
fn value_size(dtype: DType) -> usize {
    match dtype {
        DType::String => std::mem::size_of::<*const c_char>(),
        other => other.size(),
    }
}

/// Writes a compound dataset of `shape` whose fields are `fields`, in order: each field's array
/// has `shape` as its leading axes, and any further axes make it a sub-array field.
///
/// Fails with [`Error::InvalidArgument`] for no fields, a field whose shape does not start with
/// `shape`, or a string holding a NUL character. Scalars (`shape == []`) are never chunked or
/// compressed.
pub fn write_compound(
    parent: &Group,
    name: &str,
    shape: &[usize],
    fields: &[(String, ArrayData)],
    options: &ArrayOptions,
) -> Result<Dataset> {
    let layout = Layout::new(shape, fields)?;
    let mem_type = layout.datatype(|f| f.mem_offset, layout.mem_size)?;
    let file_type = layout.datatype(|f| f.file_offset, layout.file_size)?;
    let ds = create_dataset(
        parent,
        name,
        DatasetType::Datatype(file_type),
        shape,
        layout.file_size,
        options,
    )?;
    if layout.count > 0 {
        if let Err(e) = layout.write(&ds, &mem_type) {
            // Do not leave a dataset of fill values behind.
            let _ = parent.unlink(name);
            return Err(e);
        }
    }
    Ok(ds)
}

/// The fields of a compound dataset with their offsets.
struct Layout<'a> {
    fields: Vec<Field<'a>>,
    /// Number of elements.
    count: usize,
    /// Size of one element in memory (a multiple of its largest alignment).
    mem_size: usize,
    /// Size of one element in the file (packed).
    file_size: usize,
}

impl<'a> Layout<'a> {
    fn new(shape: &[usize], fields: &'a [(String, ArrayData)]) -> Result<Self> {
        if fields.is_empty() {
            return Err(Error::invalid(
                "a compound dataset needs at least one field",
            ));
        }
        let count = shape.iter().product();
        let (mut mem_end, mut file_end, mut max_align) = (0usize, 0usize, 1usize);
        let mut laid = Vec::with_capacity(fields.len());
        for (name, values) in fields {
            let Some(sub_shape) = values.shape().strip_prefix(shape) else {
                return Err(Error::invalid(format!(
                    "compound field '{name}' has shape {:?}, which does not start with the \
                     dataset's shape {shape:?}",
                    values.shape()
                )));
            };
            let c_name = CString::new(name.as_str()).map_err(|_| {
                Error::invalid(format!("compound field name {name:?} contains a NUL"))
            })?;
            let size = value_size(values.dtype());
            let mem_offset = mem_end.next_multiple_of(size);
            let field = Field {
                name: c_name,
                values,
                sub_shape: sub_shape.to_vec(),
                per_element: sub_shape.iter().product(),
                value_size: size,
                mem_offset,
                file_offset: file_end,
            };
            mem_end = mem_offset + field.size();
            file_end += field.size();
            max_align = max_align.max(size);
            laid.push(field);
        }
        if file_end == 0 {
            return Err(Error::invalid(
                "a compound dataset's fields cannot all be empty",
            ));
        }
        Ok(Layout {
            fields: laid,
            count,
            mem_size: mem_end.next_multiple_of(max_align),
            file_size: file_end,
        })
    }

    /// The compound type of `size` bytes with each field at `offset(field)`.
    fn datatype(&self, offset: impl Fn(&Field) -> usize, size: usize) -> Result<Datatype> {
        hdf5::sync::sync(|| {
            // SAFETY: H5Tcreate only allocates a new type; a negative id is turned into an error
            // by `owned`, which otherwise takes over the one reference the caller owns.
            let compound = owned(unsafe { H5Tcreate(H5T_class_t::H5T_COMPOUND, size) })?;
            for field in &self.fields {
                let member = field_type(field)?;
                // SAFETY: both ids are valid open datatypes, `name` is a NUL-terminated string
                // that outlives the call, and `offset + member size <= size` by construction of
                // the layout; the library copies the member type, so `member` may be closed.
                hdf5::h5check(unsafe {
                    H5Tinsert(
                        compound.id(),
                        field.name.as_ptr(),
                        offset(field),
                        member.id(),
                    )
                })?;
            }
            Ok(compound)
        })
    }

    /// Encodes every element in the memory layout and writes them all.
    fn write(&self, ds: &Dataset, mem_type: &Datatype) -> Result<()> {
        let nbytes = self
            .count
            .checked_mul(self.mem_size)
            .ok_or_else(|| Error::invalid("compound dataset too large"))?;
        let mut bytes = vec![0u8; nbytes];
        // Owns the strings whose addresses are stored in `bytes` until the write is done.
        let mut strings: Vec<CString> = Vec::new();
        for field in &self.fields {
            let (stride, inner, size) = (self.mem_size, field.per_element.max(1), field.value_size);
            let at = |i: usize| (i / inner) * stride + field.mem_offset + (i % inner) * size;
            encode(&mut bytes, &mut strings, field.values, at)?;
        }
        let words = aligned(&bytes);
        let status = hdf5::sync::sync(|| {
            // SAFETY: `words` holds `count * mem_size` initialised bytes, 8-byte aligned, laid out
            // exactly as `mem_type` describes (each field at its aligned offset, every element
            // `mem_size` bytes); every string slot holds the address of a NUL-terminated string
            // owned by `strings`, which lives until after this call. With H5S_ALL the library
            // reads exactly `count` elements from the buffer and never writes to it.
            unsafe {
                H5Dwrite(
                    ds.id(),
                    mem_type.id(),
                    H5S_ALL,
                    H5S_ALL,
                    H5P_DEFAULT,
                    words.as_ptr().cast(),
                )
            }
        });
        hdf5::h5check(status)?;
        drop(strings);
        Ok(())
    }
}

/// The member type of a field: its value type, as an array type if it has trailing axes.
fn field_type(field: &Field) -> Result<Datatype> {
    let base = datatype_of(field.values.dtype())?;
    if field.sub_shape.is_empty() {
        return Ok(base);
    }
    let dims: Vec<hsize_t> = field.sub_shape.iter().map(|&d| d as hsize_t).collect();
    let rank = u32::try_from(dims.len())
        .map_err(|_| Error::invalid("compound field with too many axes"))?;
    // SAFETY: `base` is a valid datatype and `dims` holds exactly `rank` dimensions; the call
    // returns a new type (or a negative error) whose ownership `owned` takes over.
    owned(unsafe { H5Tarray_create2(base.id(), rank, dims.as_ptr()) })
}

/// Wraps a datatype id freshly returned by the library so it is closed on drop.
fn owned(id: hid_t) -> Result<Datatype> {
    let id = hdf5::h5check(id)?;
    // SAFETY: `id` is a valid datatype id (checked non-negative above) with one reference that
    // the caller owns and hands over; nothing else closes it.
    Ok(unsafe { hdf5::from_id::<Datatype>(id) }?)
}

/// Copies `src` into `bytes` at `at`.
fn put(bytes: &mut [u8], at: usize, src: &[u8]) -> Result<()> {
    bytes
        .get_mut(at..at.saturating_add(src.len()))
        .ok_or_else(|| Error::invalid("compound value outside its element"))?
        .copy_from_slice(src);
    Ok(())
}

/// Writes value `i` of `values` (in row-major order) at byte `at(i)` of `bytes`; strings are
/// stored as the addresses of NUL-terminated copies pushed onto `strings`.
fn encode(
    bytes: &mut [u8],
    strings: &mut Vec<CString>,
    values: &ArrayData,
    at: impl Fn(usize) -> usize,
) -> Result<()> {
    macro_rules! numbers {
        ($a:expr) => {{
            for (i, v) in $a.iter().enumerate() {
                put(bytes, at(i), &v.to_ne_bytes())?;
            }
        }};
    }
    match values {
        ArrayData::Bool(a) => {
            for (i, &v) in a.iter().enumerate() {
                put(bytes, at(i), &[u8::from(v)])?;
            }
        }
        ArrayData::I8(a) => numbers!(a),
        ArrayData::I16(a) => numbers!(a),
        ArrayData::I32(a) => numbers!(a),
        ArrayData::I64(a) => numbers!(a),
        ArrayData::U8(a) => numbers!(a),
        ArrayData::U16(a) => numbers!(a),
        ArrayData::U32(a) => numbers!(a),
        ArrayData::U64(a) => numbers!(a),
        ArrayData::F16(a) => numbers!(a),
        ArrayData::F32(a) => numbers!(a),
        ArrayData::F64(a) => numbers!(a),
        ArrayData::String(a) => {
            for (i, s) in a.iter().enumerate() {
                let c = CString::new(s.as_str()).map_err(|_| {
                    Error::invalid(format!("string {s:?} contains a NUL character"))
                })?;
                // The heap buffer of a CString does not move when the CString is moved.
                put(bytes, at(i), &(c.as_ptr() as usize).to_ne_bytes())?;
                strings.push(c);
            }
        }
    }
    Ok(())
}

/// `bytes` in 8-byte aligned storage (zero-padded to a whole word).
fn aligned(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks(8)
        .map(|chunk| {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            u64::from_ne_bytes(word)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::RawData;
    use crate::storage::h5::read::read_raw_data;
    use crate::testutil::run_python;
    use ndarray::{ArrayD, IxDyn};

    fn arr<T>(shape: &[usize], v: Vec<T>) -> ArrayD<T> {
        ArrayD::from_shape_vec(IxDyn(shape), v).unwrap()
    }

    /// A record array like pandas' `to_records` with a string, a bool, an int and a (2, 2)
    /// float sub-array field.
    fn fields() -> Vec<(String, ArrayData)> {
        vec![
            ("index".into(), ArrayData::from(vec!["a", "βγ", ""])),
            ("flag".into(), ArrayData::from(vec![true, false, true])),
            ("n".into(), ArrayData::from(vec![-1i16, 2, 300])),
            (
                "m".into(),
                ArrayData::F64(arr(&[3, 2, 2], (0..12).map(f64::from).collect())),
            ),
        ]
    }

    #[test]
    fn layouts_pack_in_the_file_and_align_in_memory() {
        let f = fields();
        let layout = Layout::new(&[3], &f).unwrap();
        let offsets: Vec<(usize, usize)> = layout
            .fields
            .iter()
            .map(|f| (f.mem_offset, f.file_offset))
            .collect();
        // memory: ptr at 0, bool at 8, i16 at 10, 4 f64 at 16 → 48; file: 8, 1, 2, 32 packed.
        assert_eq!(offsets, [(0, 0), (8, 8), (10, 9), (16, 11)]);
        assert_eq!((layout.mem_size, layout.file_size), (48, 43));
    }

    #[test]
    #[ignore = "checks the written file with h5py, zarr or anndata (the venv); ./dev test runs it"]
    fn h5py_reads_a_written_record_array() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.h5");
        {
            let file = hdf5::File::create(&path).unwrap();
            write_compound(&file, "rec", &[3], &fields(), &ArrayOptions::default()).unwrap();
            let complex = vec![
                ("r".to_string(), ArrayData::F64(arr(&[], vec![1.5]))),
                ("i".to_string(), ArrayData::F64(arr(&[], vec![-2.0]))),
            ];
            write_compound(&file, "z", &[], &complex, &ArrayOptions::default()).unwrap();
            // Reading back through the engine's reader gives the same fields.
            let back = read_raw_data(&file.dataset("rec").unwrap()).unwrap();
            assert_eq!(
                back,
                RawData::Compound {
                    shape: vec![3],
                    fields: fields()
                }
            );
        }
        run_python(
            "f = h5py.File(path)\n\
             d = f['rec']\n\
             assert d.dtype.names == ('index', 'flag', 'n', 'm'), d.dtype\n\
             assert d.dtype.itemsize == 43, d.dtype.itemsize\n\
             assert h5py.check_string_dtype(d.dtype['index']).encoding == 'utf-8'\n\
             assert d.dtype['flag'] == np.bool_ and d.dtype['n'] == np.int16\n\
             assert d.dtype['m'].subdtype == (np.dtype('float64'), (2, 2)), d.dtype['m']\n\
             v = d[()]\n\
             assert [s.decode() for s in v['index']] == ['a', 'βγ', ''], v['index']\n\
             assert v['flag'].tolist() == [True, False, True]\n\
             assert v['n'].tolist() == [-1, 2, 300]\n\
             assert (v['m'] == np.arange(12.0).reshape(3, 2, 2)).all()\n\
             z = f['z']\n\
             assert z.shape == () and z.chunks is None\n\
             assert z[()] == 1.5 - 2j, z[()]\n",
            &path,
        );
    }

    #[test]
    #[ignore = "checks the written file with h5py, zarr or anndata (the venv); ./dev test runs it"]
    fn empty_and_compressed_record_arrays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.h5");
        {
            let file = hdf5::File::create(&path).unwrap();
            let empty = vec![
                ("a".to_string(), ArrayData::zeros(DType::I32, &[0])),
                ("s".to_string(), ArrayData::zeros(DType::String, &[0])),
            ];
            write_compound(&file, "empty", &[0], &empty, &ArrayOptions::default()).unwrap();
            let gz = ArrayOptions {
                compression: super::super::Compression::Gzip(4),
                ..ArrayOptions::default()
            };
            write_compound(&file, "gz", &[3], &fields(), &gz).unwrap();
        }
        run_python(
            "f = h5py.File(path)\n\
             assert f['empty'].shape == (0,) and f['empty'].dtype.names == ('a', 's')\n\
             g = f['gz']\n\
             assert g.compression == 'gzip' and g.chunks == (3,), (g.compression, g.chunks)\n\
             assert g['n'].tolist() == [-1, 2, 300]\n",
            &path,
        );
    }

    #[test]
    fn bad_fields_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = hdf5::File::create(dir.path().join("bad.h5")).unwrap();
        let opts = ArrayOptions::default();
        let e = write_compound(&file, "a", &[2], &[], &opts).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
        let short = vec![("x".to_string(), ArrayData::from(vec![1i8]))];
        let e = write_compound(&file, "b", &[2], &short, &opts).unwrap_err();
        assert!(e.to_string().contains("does not start with"), "{e}");
        let nul = vec![("s".to_string(), ArrayData::from(vec!["a\0b", "c"]))];
        let e = write_compound(&file, "c", &[2], &nul, &opts).unwrap_err();
        assert!(e.to_string().contains("NUL"), "{e}");
        // The failed write leaves no dataset behind.
        assert!(!file.link_exists("c"));
    }
}
