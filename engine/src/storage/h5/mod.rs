//! HDF5 as a storage backend, through `hdf5-metno`: groups and datasets implement the storage
//! traits ([`super::Group`], [`super::Array`]).
//!
//! [`read`] turns datasets and attributes of any dtype anndata (or a legacy writer) uses into
//! [`crate::data::ArrayData`]; [`write`](mod@write) creates datasets and attributes exactly as h5py does
//! (bools as an int8 enum, strings as variable-length UTF-8, chunked compressed datasets).
//! [`types`] classifies stored datatypes; [`claim`] checks the size a dataset claims before
//! anything is allocated for it.

mod bounded_filters;
pub(crate) mod chunks;
pub mod claim;
#[cfg(test)]
mod corrupt;
mod dense;
pub(crate) mod filters;
mod header;
mod heap;
mod local_heap;
pub(crate) use local_heap::check_group;
pub mod read;
mod seam;
mod slots;
pub mod types;
pub mod write;

use std::ops::Range;
use std::path::Path;

use super::{
    check_regular_file, Array, ArrayStorage, Group, MemberKind, Node, ObjectId, StoredType,
};
use crate::data::{AttrValue, DType, RawData};
use crate::{data::ArrayData, Error, Result};

/// Opens an HDF5 file read-only, with a plain I/O error when the path cannot be read at all
/// (missing, no permission), an invalid-argument error when it is not a regular file (see
/// [`check_regular_file`], done first) and a format error when it is not a readable HDF5 file
/// (truncated, or another format).
pub fn open_read(path: &Path) -> Result<hdf5::File> {
    check_regular_file(path)?;
    bounded_filters::install()?;
    let file = hdf5::File::open(path).map_err(|e| {
        let e = e.to_string();
        if e.contains("unable to lock file") {
            // Another process holds it open for writing (HDF5's file locking): not corrupt.
            return Error::Io(std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                format!("the file is locked by a process writing it (HDF5 file locking): {e}"),
            ));
        }
        Error::malformed(format!(
            "not a readable HDF5 file (truncated or another format): {e}"
        ))
    })?;
    check_group(&file)?;
    Ok(file)
}

/// Creates (or truncates) an HDF5 file for writing, with the same libhdf5 set-up as
/// [`open_read`] (its deflate and LZF filters bounded).
pub fn create(path: &Path) -> Result<hdf5::File> {
    bounded_filters::install()?;
    Ok(hdf5::File::create(path)?)
}

/// The file libhdf5 has open for `file`, as a handle of its own: a duplicate of libhdf5's
/// descriptor, so reads beside libhdf5 come from that very file whatever has happened to its
/// name since (renamed, replaced, a relative name after a change of directory). `None` when
/// the file is not open through libhdf5's POSIX driver (the only one whose handle is a
/// descriptor) or the descriptor cannot be duplicated.
pub(crate) fn same_file(file: &hdf5::File) -> Option<std::fs::File> {
    use std::os::fd::{BorrowedFd, RawFd};
    let fapl = file.access_plist().ok()?;
    if !matches!(
        fapl.get_driver(),
        Ok(hdf5::plist::file_access::FileDriver::Sec2)
    ) {
        return None;
    }
    hdf5::sync::sync(|| {
        let mut handle: *mut std::ffi::c_void = std::ptr::null_mut();
        // SAFETY: `file` and `fapl` are open ids and `handle` a valid place for the pointer the
        // call stores.
        let status = unsafe { hdf5_sys::h5f::H5Fget_vfd_handle(file.id(), fapl.id(), &mut handle) };
        if status < 0 || handle.is_null() {
            return None;
        }
        // SAFETY: for the POSIX driver (checked above) the handle points at the `int` descriptor
        // inside libhdf5's open-file struct, alive while `file` is open, which it is for this
        // whole call; libhdf5's lock (held) keeps any other thread from closing it meanwhile.
        let fd: RawFd = unsafe { *handle.cast::<RawFd>() };
        if fd < 0 {
            return None;
        }
        // SAFETY: `fd` is open (above) for the borrow, which ends in this statement: the clone
        // is a descriptor of its own, closed when the returned `File` drops.
        let owned = unsafe { BorrowedFd::borrow_raw(fd) }
            .try_clone_to_owned()
            .ok()?;
        Some(std::fs::File::from(owned))
    })
}

/// The id of the object `loc` is open on.
pub fn object_id(loc: &hdf5::Location) -> Result<ObjectId> {
    // SAFETY: a plain C struct of integers and byte arrays, for which all zeros is valid.
    let mut info: hdf5_sys::h5o::H5O_info2_t = unsafe { std::mem::zeroed() };
    // SAFETY: `loc` is an open handle and `info` is a valid struct the call fills (with
    // H5O_INFO_BASIC, the fields read below).
    let status = hdf5::sync::sync(|| unsafe {
        hdf5_sys::h5o::H5Oget_info3(loc.id(), &mut info, hdf5_sys::h5o::H5O_INFO_BASIC)
    });
    hdf5::h5check(status)?;
    // SAFETY: `H5O_token_t` is a plain 16-byte array (`H5O_MAX_TOKEN_SIZE`), any bits valid.
    let token = unsafe { std::mem::transmute::<hdf5_sys::h5o::H5O_token_t, [u8; 16]>(info.token) };
    Ok(ObjectId {
        volume: info.fileno,
        token,
    })
}

/// The file address of the object header `loc` is open on: the native file format's object
/// token holds it, little-endian, in its first 8 bytes (the address width annpage reads
/// beside libhdf5, see `heap::beside_libhdf5`).
pub(super) fn header_address(loc: &hdf5::Location) -> Result<u64> {
    Ok(heap::le(&object_id(loc)?.token[..8]))
}

/// Refuses member `name` of `g` when its link is external: following it opens another file,
/// any the link names (the same one again, without end: an external link from `/uns/x` to
/// the file's own `/uns`), and an AnnData file is one file (anndata writes no such link).
fn refuse_external_link(g: &hdf5::Group, name: &str) -> Result<()> {
    use hdf5_sys::h5l::{H5L_info2_t, H5L_type_t, H5Lget_info2};
    let c_name = std::ffi::CString::new(name)
        .map_err(|_| Error::malformed(format!("member name {name:?} holds a NUL byte")))?;
    let mut info = H5L_info2_t::default();
    // SAFETY: `g` is an open handle for the whole call, `c_name` a NUL-terminated string that
    // outlives it, and `info` a valid struct the call fills (plain C data, any bits valid).
    let status = hdf5::sync::sync(|| unsafe {
        H5Lget_info2(
            g.id(),
            c_name.as_ptr(),
            &mut info,
            hdf5_sys::h5p::H5P_DEFAULT,
        )
    });
    hdf5::h5check(status)?;
    if info.type_ == H5L_type_t::H5L_TYPE_EXTERNAL {
        return Err(Error::unsupported(format!(
            "'{name}' is an external link to another file (annpage reads one file)"
        )));
    }
    Ok(())
}

/// Opens group `name` of `parent` as every reader must: not through an external link, not
/// into another file, its local heap checked ([`check_group`]). Readers that work on
/// `hdf5` handles (loom, 10x) open their groups with it too.
pub fn open_group(parent: &hdf5::Group, name: &str) -> Result<hdf5::Group> {
    refuse_external_link(parent, name)?;
    let group = parent.group(name)?;
    refuse_other_file(parent, &group, name)?;
    check_group(&group)?;
    Ok(group)
}

/// Opens dataset `name` of `parent` as [`open_group`] opens a group.
pub fn open_dataset(parent: &hdf5::Group, name: &str) -> Result<hdf5::Dataset> {
    refuse_external_link(parent, name)?;
    let dataset = parent.dataset(name)?;
    refuse_other_file(parent, &dataset, name)?;
    Ok(dataset)
}

/// Refuses `child` (member `name` of `parent`) when it lies in another file: a soft link can
/// lead through an external link elsewhere in the file ([`refuse_external_link`] sees only
/// the member's own link).
fn refuse_other_file(parent: &hdf5::Location, child: &hdf5::Location, name: &str) -> Result<()> {
    if object_id(child)?.volume != object_id(parent)?.volume {
        return Err(Error::unsupported(format!(
            "'{name}' leads into another file, through an external link (annpage reads one \
             file)"
        )));
    }
    Ok(())
}

/// Groups and datasets are nodes alike: a path and attributes.
macro_rules! impl_node {
    ($($t:ty),*) => {$(
        impl Node for $t {
            fn path(&self) -> String {
                self.name()
            }

            fn attr_names(&self) -> Result<Vec<String>> {
                Ok(hdf5::Location::attr_names(self)?)
            }

            fn attr(&self, name: &str) -> Result<Option<AttrValue>> {
                read::read_attr_opt(self, name)
            }

            /// All of them checked with one walk of the object's header, not one walk each,
            /// and at most `MAX_ATTRIBUTES` of them (libhdf5 finds each by a walk of its own).
            fn attrs(&self) -> Result<crate::data::Attrs> {
                read::read_attrs(self)
            }

            /// Checked with one walk of the object's header for all of them.
            fn attrs_of(&self, names: &[&str]) -> Result<Vec<Option<AttrValue>>> {
                read::read_some_attrs(self, names)
            }
        }
    )*};
}

impl_node!(hdf5::Group, hdf5::Dataset);

impl Group for hdf5::Group {
    /// In h5py's order, which anndata reads in: by creation order where the group tracks it
    /// (h5py's `track_order`), else by name. (libhdf5's native order is neither in a group of
    /// the newer formats, whose links may be kept by hash.)
    fn member_names(&self) -> Result<Vec<String>> {
        use hdf5::plist::group_create::LinkCreationOrder;
        use hdf5::{IndexType, IterationOrder};
        let by_name = || self.member_names_by(IndexType::Name, IterationOrder::Increasing);
        let order = match self.create_plist() {
            Ok(gcpl) => gcpl.link_creation_order(),
            // A file's root, open as the file: its group opened for its properties.
            Err(_) => self.group(".")?.create_plist()?.link_creation_order(),
        };
        Ok(match order {
            LinkCreationOrder::Untracked => by_name()?,
            _ => self
                .member_names_by(IndexType::CreationOrder, IterationOrder::Increasing)
                .or_else(|_| by_name())?,
        })
    }

    fn member_kind(&self, name: &str) -> Result<Option<MemberKind>> {
        if !self.link_exists(name) {
            return Ok(None);
        }
        refuse_external_link(self, name)?;
        match self.loc_type_by_name(name)? {
            hdf5::LocationType::Group => Ok(Some(MemberKind::Group)),
            hdf5::LocationType::Dataset => Ok(Some(MemberKind::Array)),
            #[allow(unreachable_patterns)]
            _ => Err(Error::unsupported(format!(
                "'{name}' is neither a group nor a dataset"
            ))),
        }
    }

    fn group(&self, name: &str) -> Result<Box<dyn Group>> {
        Ok(Box::new(open_group(self, name)?))
    }

    fn array(&self, name: &str) -> Result<Box<dyn Array>> {
        Ok(Box::new(open_dataset(self, name)?))
    }

    fn object_id(&self) -> Result<Option<ObjectId>> {
        object_id(self).map(Some)
    }
}

impl Array for hdf5::Dataset {
    fn shape(&self) -> Result<Vec<usize>> {
        Ok(hdf5::Container::shape(self))
    }

    fn object_id(&self) -> Result<Option<ObjectId>> {
        object_id(self).map(Some)
    }

    fn stored_type(&self) -> Result<StoredType> {
        read::stored_type(self)
    }

    fn check_claim(&self) -> Result<()> {
        claim::check_claim(self).map(drop)
    }

    fn read(&self) -> Result<ArrayData> {
        read::read_array(self)
    }

    fn read_rows(&self, rows: Range<usize>) -> Result<ArrayData> {
        let shape = Array::shape(self)?;
        if rows.start > rows.end || shape.first().is_none_or(|&n| rows.end > n) {
            return Err(Error::invalid(format!(
                "rows {rows:?} are outside the first axis of shape {shape:?}"
            )));
        }
        let ty = read::stored_type(self)?;
        let dtype = ty
            .dtype()
            .filter(|d| *d != DType::String && !matches!(ty, StoredType::Compound { .. }))
            .ok_or_else(|| Error::unsupported(format!("range reads of {}", ty.describe())))?;
        read::read_hyperslab(self, &shape, dtype, rows)
    }

    fn storage(&self) -> Result<ArrayStorage> {
        let layout = match self.layout() {
            hdf5::dataset::Layout::Chunked => "chunked",
            hdf5::dataset::Layout::Compact => "compact",
            _ => "contiguous",
        };
        let filters = self
            .filters()
            .iter()
            .map(|f| match f {
                hdf5::filters::Filter::Deflate(level) => format!("gzip({level})"),
                hdf5::filters::Filter::Shuffle => "shuffle".into(),
                hdf5::filters::Filter::Fletcher32 => "fletcher32".into(),
                hdf5::filters::Filter::LZF => "lzf".into(),
                hdf5::filters::Filter::SZip(..) => "szip".into(),
                hdf5::filters::Filter::NBit => "nbit".into(),
                hdf5::filters::Filter::ScaleOffset(_) => "scaleoffset".into(),
                hdf5::filters::Filter::User(id, _) => format!("filter#{id}"),
            })
            .collect();
        Ok(ArrayStorage {
            layout,
            chunk: self.chunk(),
            filters,
        })
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn chunk_rows(&self) -> Result<Option<usize>> {
        Ok(self.chunk().and_then(|c| c.first().copied()))
    }

    fn read_raw(&self) -> Result<RawData> {
        read::read_raw_data(self)
    }

    fn referenced(&self, attr: &str) -> Result<Option<Box<dyn Array>>> {
        if read::attr_type(self, attr)? != StoredType::ObjectReference {
            return Ok(None);
        }
        match read::read_ref_attr(self, attr)? {
            hdf5::ReferencedObject::Dataset(d) => Ok(Some(Box::new(d))),
            _ => Err(Error::malformed(format!(
                "the '{attr}' reference does not point to a dataset"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_directory_and_foreign_files_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let missing = open_read(&dir.path().join("nope.h5ad")).unwrap_err();
        assert!(missing.is_io(), "{missing}");
        let is_dir = open_read(dir.path()).unwrap_err();
        assert!(is_dir.to_string().contains("is a directory"), "{is_dir}");
        let fifo = dir.path().join("pipe.h5ad");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // Opening the FIFO itself would block until a writer comes: refused before that.
        let err = open_read(&fifo).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let text = dir.path().join("notes.h5ad");
        std::fs::write(&text, "not hdf5").unwrap();
        let foreign = open_read(&text).unwrap_err();
        assert!(
            foreign.to_string().contains("not a readable HDF5 file"),
            "{foreign}"
        );
    }

    #[test]
    fn datasets_read_through_the_storage_traits() {
        let (_d, path) = crate::testutil::py_file(
            "t.h5",
            "f = h5py.File(path, 'w')\n\
             g = f.create_group('g')\n\
             g.attrs['encoding-type'] = 'dict'\n\
             g.create_dataset('m', data=np.arange(12, dtype='f4').reshape(4, 3), chunks=(2, 3))\n\
             g.create_dataset('v', data=np.arange(5, dtype='i8'))\n",
        );
        let file = open_read(&path).unwrap();
        let root: &dyn Group = &*file;
        assert_eq!(root.member_kind("g").unwrap(), Some(MemberKind::Group));
        assert_eq!(root.member_kind("nope").unwrap(), None);
        let g = root.group("g").unwrap();
        assert_eq!(g.path(), "/g");
        assert_eq!(
            g.string_attr("encoding-type").unwrap().as_deref(),
            Some("dict")
        );
        assert_eq!(g.member_names().unwrap(), ["m", "v"]);
        let m = g.array("m").unwrap();
        assert_eq!(
            (m.shape().unwrap(), m.chunk_rows().unwrap()),
            (vec![4, 3], Some(2))
        );
        let rows = m.read_rows(1..3).unwrap();
        let expected: Vec<f32> = (3..9).map(|v| v as f32).collect();
        assert_eq!(
            rows,
            ArrayData::F32(
                ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[2, 3]), expected).unwrap()
            )
        );
        assert_eq!(m.read_rows(2..2).unwrap().shape(), [0, 3]);
        assert!(m.read_rows(3..5).is_err());
        let v = g.array("v").unwrap();
        assert_eq!(v.read_rows(3..5).unwrap(), ArrayData::from(vec![3i64, 4]));
        assert_eq!(v.chunk_rows().unwrap(), None);
        assert_eq!(v.read().unwrap(), ArrayData::from(vec![0i64, 1, 2, 3, 4]));
    }

    #[test]
    fn members_come_in_h5py_order() {
        // Creation order where tracked (h5py's track_order), else by name, in the oldest and
        // newest formats, with links in the header and past 8 in dense storage.
        let script = "import os\n\
            os.makedirs(path)\n\
            names = ['z', 'y', 'x', 'w', 'v', 'u', 't', 's', 'r', 'q', 'p']\n\
            with open(os.path.join(path, 'orders.txt'), 'w') as out:\n\
            \x20   for libver in ('earliest', 'latest'):\n\
            \x20       file = os.path.join(path, libver + '.h5')\n\
            \x20       with h5py.File(file, 'w', libver=libver) as f:\n\
            \x20           for n, count in (('few', 2), ('many', 11)):\n\
            \x20               for tracked in (False, True):\n\
            \x20                   g = f.create_group(n + ('_tracked' if tracked else ''), track_order=tracked)\n\
            \x20                   for name in names[:count]:\n\
            \x20                       g.create_group(name)\n\
            \x20       with h5py.File(file) as f:\n\
            \x20           for g in sorted(f):\n\
            \x20               out.write(' '.join(f[g]) + '\\n')\n\
            with h5py.File(os.path.join(path, 'root.h5'), 'w', track_order=True) as f:\n\
            \x20   f.create_group('b'), f.create_group('a')\n";
        let (_d, dir) = crate::testutil::py_file("orders", script);
        let want = std::fs::read_to_string(dir.join("orders.txt")).unwrap();
        let mut got = String::new();
        for libver in ["earliest", "latest"] {
            let f = hdf5::File::open(dir.join(format!("{libver}.h5"))).unwrap();
            for g in ["few", "few_tracked", "many", "many_tracked"] {
                let members = Group::member_names(&f.group(g).unwrap()).unwrap();
                got += &(members.join(" ") + "\n");
            }
        }
        assert_eq!(got, want);
        assert!(want.starts_with("y z\nz y\np q"), "{want}");
        // A file's root, opened as the file, tracking creation order.
        let f = hdf5::File::open(dir.join("root.h5")).unwrap();
        assert_eq!(Group::member_names(&*f).unwrap(), ["b", "a"]);
    }
}
