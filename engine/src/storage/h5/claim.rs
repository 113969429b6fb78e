//! Checking the size a dataset claims before any memory is allocated for it.
//!
//! A dataset's shape is a claim the file makes, and a small file can claim anything: a chunked
//! dataset whose chunks were never written reads as its fill value, so a few KB can hold a
//! 2^31 × 2^20 "matrix". Every read that allocates from a dataset's shape goes through here
//! first:
//!
//! - [`check_claim`]: the element count must not overflow, and the elements the dataset's stored
//!   data cannot hold (never-written chunks, unallocated storage) may add up to at most
//!   [`MAX_FILL_BYTES`]: legal HDF5, but never what anndata writes, and reading more of it only
//!   turns a small file into a huge allocation or an endless scan; and a chunk, which is
//!   decoded (and allocated by libhdf5) whole, may not exceed the dataset's bytes by more than
//!   that either;
//! - [`check_memory`](crate::memory::check_memory): a buffer about to be allocated must fit in the memory available, so a
//!   request too large for the machine is a clear error rather than an abort.

use hdf5::dataset::Layout;
use hdf5::Dataset;

use crate::error::ResultExt;
use crate::memory::check_memory;
use crate::{Error, Result};

/// How many bytes of a dataset may be fill value (elements no stored data holds).
pub const MAX_FILL_BYTES: u64 = 256 << 20;

/// Checks what `ds` claims against what it stores; its element count when the claim holds.
///
/// Reads only the dataset's header and chunk index (the count of stored chunks). Unlike the
/// rest of this module's errors, its errors name the dataset (its path): the dataset may be a
/// member of the element a caller names, such as a sparse matrix's `indptr`.
pub fn check_claim(ds: &Dataset) -> Result<u64> {
    claim(ds).in_element(ds.name())
}

fn claim(ds: &Dataset) -> Result<u64> {
    // One copy of the creation properties (a copy costs more than the rest here).
    let dcpl = ds.dcpl()?;
    if dcpl.layout() == Layout::Virtual {
        // Its values are other datasets', in this file or any other it names (itself too:
        // libhdf5 then recurses until the stack overflows); anndata writes none.
        return Err(Error::unsupported(
            "a virtual dataset (its values are read from other datasets or files): annpage \
             reads the values a file stores",
        ));
    }
    if !dcpl.external().is_empty() {
        // Raw bytes of other files, any the dataset names (`/dev/zero`, `/etc/passwd`).
        return Err(Error::unsupported(
            "a dataset stored in external files: annpage reads the values a file stores",
        ));
    }
    let space = ds.space()?;
    if space.is_null() {
        return Ok(0);
    }
    let shape = space.shape();
    let count = element_count(&shape)?;
    let chunk = dcpl.chunk();
    let stored = stored_elements(ds, dcpl.layout(), chunk.as_deref(), count)?;
    let fill = count.saturating_sub(stored);
    let elem = ds.dtype()?.size() as u64;
    if let Some(chunk) = &chunk {
        check_chunk_size("chunk", chunk, &shape, count, elem)?;
    }
    let fill_bytes = fill.saturating_mul(elem);
    if fill_bytes > MAX_FILL_BYTES {
        return Err(Error::malformed(format!(
            "its shape {shape:?} claims {count} values ({} bytes), but its stored data holds \
             at most {stored}: the file claims more than it holds (the rest was never written \
             and would read as fill value)",
            count.saturating_mul(elem)
        )));
    }
    Ok(count)
}

/// A chunk (HDF5's, or a Zarr chunk or inner chunk: `what`) is decoded whole, and libhdf5
/// allocates it whole to read any of it: its size must stay near the array's `count` values of
/// `elem` bytes. A resizable dataset may have chunks larger than its values, but not by
/// [`MAX_FILL_BYTES`]: a 4 MB file whose 10 values lie in a chunk of 2^28 made libhdf5
/// allocate 2 GB.
pub(crate) fn check_chunk_size(
    what: &str,
    chunk: &[usize],
    shape: &[usize],
    count: u64,
    elem: u64,
) -> Result<()> {
    let allowed = count.saturating_mul(elem).saturating_add(MAX_FILL_BYTES);
    let bytes = element_count(chunk).ok().and_then(|n| n.checked_mul(elem));
    if bytes.is_none_or(|b| b > allowed) {
        return Err(Error::malformed(format!(
            "its {what} shape {chunk:?} claims chunks of {} bytes, far more than its shape \
             {shape:?} holds: each chunk is decoded whole",
            bytes.map_or_else(|| "more than 2^64".to_owned(), |b| b.to_string())
        )));
    }
    Ok(())
}

/// Checks a read of all of `ds` into memory, `elem_size` bytes a value: [`check_claim`], then
/// [`check_memory`] for the buffer; the buffer's size in bytes.
pub fn check_whole_read(ds: &Dataset, elem_size: usize) -> Result<usize> {
    let count = check_claim(ds)?;
    let bytes = count
        .checked_mul(elem_size as u64)
        .and_then(|b| usize::try_from(b).ok())
        .ok_or_else(|| {
            Error::malformed(format!(
                "its {count} values of {elem_size} bytes exceed the address space"
            ))
        })?;
    check_memory(bytes as u64, "reading it whole")?;
    Ok(bytes)
}

/// The number of elements of `shape`, refusing a count that overflows 64 bits.
pub fn element_count(shape: &[usize]) -> Result<u64> {
    shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or_else(|| {
            Error::malformed(format!(
                "its shape {shape:?} claims more values than a 64-bit count can hold"
            ))
        })
}

/// How many of the dataset's `count` elements its stored data (laid out as `layout`, in chunks
/// of `chunk`) can hold.
fn stored_elements(
    ds: &Dataset,
    layout: Layout,
    chunk: Option<&[usize]>,
    count: u64,
) -> Result<u64> {
    Ok(match layout {
        Layout::Chunked => {
            let chunk = chunk.unwrap_or_default();
            let per_chunk = chunk.iter().map(|&c| c as u64).product::<u64>();
            let written = ds.num_chunks().ok_or_else(|| {
                Error::malformed("the number of its stored chunks cannot be read")
            })?;
            (written as u64).saturating_mul(per_chunk)
        }
        Layout::Contiguous if ds.offset().is_none() => {
            // Storage never allocated: every element is the fill value.
            0
        }
        // Allocated contiguous storage holds every element (libhdf5 checks it lies in the
        // file); compact data lives in the header (virtual datasets are refused above).
        _ => count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::h5::read::{read_array, read_raw_data};
    use crate::testutil::py_file;

    /// Asserts that `e` says `what` about the dataset `name`.
    fn refused(e: Error, name: &str, what: &str) {
        let msg = e.to_string();
        assert!(msg.contains(what), "{msg}");
        assert_eq!(e.element(), Some(name), "{msg}");
    }

    #[test]
    fn claims_beyond_the_stored_data_are_refused() {
        let (_d, path) = py_file(
            "t.h5",
            "with h5py.File(path, 'w') as f:\n\
             \x20   f.create_dataset('huge', shape=(2**34,), dtype='f8', chunks=(4096,), maxshape=(None,))\n\
             \x20   f.create_dataset('wraps', shape=(2**32 + 2, 2**32), dtype='f4', chunks=(1, 1), maxshape=(None, None))\n\
             \x20   f.create_dataset('unallocated', shape=(2**30,), dtype='f8')\n\
             \x20   p = f.create_dataset('partly', shape=(2**22,), dtype='f8', chunks=(1024,))\n\
             \x20   p[:1024] = 1\n\
             \x20   f['whole'] = np.arange(10.0)\n\
             \x20   f.create_dataset('gz', data=np.arange(5000), chunks=(100,), compression='gzip')\n\
             \x20   f['empty'] = h5py.Empty('f')\n",
        );
        let f = hdf5::File::open(&path).unwrap();
        let claim = |n: &str| check_claim(&f.dataset(n).unwrap());
        let err = claim("huge").unwrap_err().to_string();
        assert!(err.contains("claims 17179869184 values"), "{err}");
        assert!(err.contains("holds at most 0"), "{err}");
        let err = claim("wraps").unwrap_err().to_string();
        assert!(err.contains("more values than a 64-bit count"), "{err}");
        let err = claim("unallocated").unwrap_err().to_string();
        assert!(err.contains("holds at most 0"), "{err}");
        // 32 MiB of fill around one stored chunk is within the allowance.
        assert_eq!(claim("partly").unwrap(), 1 << 22);
        assert_eq!(claim("whole").unwrap(), 10);
        assert_eq!(claim("gz").unwrap(), 5000);
        assert_eq!(claim("empty").unwrap(), 0);
    }

    #[test]
    fn every_read_checks_the_claim_before_allocating() {
        let (_d, path) = py_file(
            "t.h5",
            "with h5py.File(path, 'w') as f:\n\
             \x20   f.create_dataset('x', shape=(2**31, 2**20), dtype='f4', chunks=(256, 256))\n\
             \x20   f.create_dataset('s', shape=(2**40,), dtype=h5py.string_dtype(), chunks=(64,))\n\
             \x20   f.create_dataset('c', shape=(2**40,), dtype=[('a', 'f8'), ('b', 'i4')], chunks=(64,))\n",
        );
        let f = hdf5::File::open(&path).unwrap();
        let refused = |e: Error, name: &str| refused(e, name, "the file claims more than it holds");
        // Typed numbers, strings and compounds: each whole-read path.
        refused(read_array(&f.dataset("x").unwrap()).unwrap_err(), "/x");
        refused(read_array(&f.dataset("s").unwrap()).unwrap_err(), "/s");
        refused(read_raw_data(&f.dataset("c").unwrap()).unwrap_err(), "/c");
        // Backed mode, which reads blocks of the matrix on demand.
        refused(crate::paged::open_matrix(&*f, "x").unwrap_err(), "/x");
    }

    #[test]
    fn chunks_far_larger_than_their_dataset_are_refused() {
        // 'v' and 'x' never written (a written chunk is stored whole, 512 MB): refused first.
        let (_d, path) = py_file(
            "t.h5",
            "with h5py.File(path, 'w') as f:\n\
             \x20   f.create_dataset('roomy', data=np.arange(10.0), chunks=(2**20,), maxshape=(None,), compression='gzip')\n\
             \x20   f.create_dataset('v', shape=(10,), dtype='f8', chunks=(2**26,), maxshape=(None,))\n\
             \x20   f.create_dataset('x', shape=(10, 2), dtype='f8', chunks=(2**25, 2), maxshape=(None, 2))\n",
        );
        let f = hdf5::File::open(&path).unwrap();
        // 8 MB chunks for 80 bytes: within the allowance.
        assert_eq!(check_claim(&f.dataset("roomy").unwrap()).unwrap(), 10);
        let refused = |e: Error, name: &str| refused(e, name, "far more than its shape");
        // 512 MB chunks, which libhdf5 would allocate whole to read 10 values.
        refused(read_array(&f.dataset("v").unwrap()).unwrap_err(), "/v");
        refused(crate::paged::open_matrix(&*f, "x").unwrap_err(), "/x");
    }

    #[test]
    fn virtual_and_external_datasets_are_refused() {
        // 'self' maps its values from itself ('.' is the file the dataset is in); 'ext' reads
        // /dev/zero.
        let (_d, path) = py_file(
            "t.h5",
            "with h5py.File(path, 'w') as f:\n\
             \x20   lay = h5py.VirtualLayout(shape=(4,), dtype='f8')\n\
             \x20   lay[:] = h5py.VirtualSource('.', 'self', shape=(4,))\n\
             \x20   f.create_virtual_dataset('self', lay, fillvalue=0)\n\
             \x20   f.create_dataset('x', data=np.ones((4, 2)))\n\
             \x20   lay = h5py.VirtualLayout(shape=(4, 2), dtype='f8')\n\
             \x20   lay[:] = h5py.VirtualSource('.', 'x', shape=(4, 2))\n\
             \x20   f.create_virtual_dataset('view', lay, fillvalue=0)\n\
             \x20   f.create_dataset('ext', shape=(4,), dtype='f8', external=[('/dev/zero', 0, 32)])\n",
        );
        let f = hdf5::File::open(&path).unwrap();
        let refused = |e: Error, name: &str| refused(e, name, "unsupported: a virtual dataset");
        refused(
            read_array(&f.dataset("self").unwrap()).unwrap_err(),
            "/self",
        );
        refused(
            read_array(&f.dataset("view").unwrap()).unwrap_err(),
            "/view",
        );
        refused(crate::paged::open_matrix(&*f, "view").unwrap_err(), "/view");
        let err = read_array(&f.dataset("ext").unwrap()).unwrap_err();
        assert!(
            err.to_string().contains("stored in external files"),
            "{err}"
        );
        assert_eq!(check_claim(&f.dataset("x").unwrap()).unwrap(), 8);
    }

    #[test]
    fn counts_overflow_cleanly() {
        assert_eq!(element_count(&[]).unwrap(), 1);
        assert_eq!(element_count(&[3, 0, usize::MAX]).unwrap(), 0);
        assert_eq!(element_count(&[1 << 31, 1 << 20]).unwrap(), 1 << 51);
        assert!(element_count(&[(1 << 32) + 2, 1 << 32]).is_err());
    }
}
