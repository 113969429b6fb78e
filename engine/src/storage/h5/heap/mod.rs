//! Variable-length strings read straight from the file's global heap.
//!
//! libhdf5 reads a variable-length string dataset one value at a time: for each, it looks up
//! the value's global heap collection in its metadata cache and copies the bytes into a fresh
//! allocation that the caller frees again. For the 300,000 names of an obs index that is most
//! of the time an open takes. A contiguous dataset of such strings is read here instead: its
//! stored references (per value: a 4-byte length, the address of a collection and
//! a 4-byte object index) with one positioned read, then each collection they point into once,
//! in address order, parsed and sliced into the strings.
//!
//! A chunked dataset (anndata's `compression="gzip"` obs names; chunks of any rank) is read
//! the same way once its chunks are decoded here (deflate, LZF and shuffle, as the direct chunk
//! reader does; references are shuffled by their stored size, 16 bytes, as libhdf5 sets the
//! filter up for them), and a compact one from its header (`header.rs`). A file open for
//! writing is flushed first; in a file with a user block, storage offsets (from the file's
//! start) and addresses (from the block's end) are told apart. Anything else (other filters,
//! unusual address sizes) is left to libhdf5: [`read_strings`] answers `None`. Everything read from the file is checked before
//! it is used or sized from: spans lie in the file, collections do not overlap and parse as
//! libhdf5 parses them, objects lie in their collection, and the strings together hold no
//! more bytes than the file.
//!
//! The references of a string *attribute* are checked here too before libhdf5 reads it
//! ([`check_attributes`]): libhdf5 trusts the heap it finds them pointing at.

use std::fs::File;
use std::os::unix::fs::FileExt;

use hdf5::Dataset;

use super::chunks::{self, check_span, Placement};
use super::claim::check_whole_read;
use super::filters::{Pipeline, Scratch};
use super::slots::Slots;
use super::types::StoredType;
use crate::data::{ArrayData, CompactString};
use crate::memory::check_memory;
use crate::storage::utf8;
use crate::{Error, Result};

/// The signature a global heap collection starts with.
const SIGNATURE: &[u8; 4] = b"GCOL";

/// A collection's header: signature, version, 3 reserved bytes, then its size (`size_len`
/// bytes, little-endian, the header included).
fn header_len(size_len: usize) -> usize {
    8 + size_len
}

/// An object's header: index (2 bytes), reference count (2), reserved (4), then its size.
fn object_header_len(size_len: usize) -> usize {
    8 + size_len
}

/// The widths of the file's addresses and lengths (its superblock's "size of offsets" and
/// "size of lengths").
#[derive(Clone, Copy, Debug)]
struct Widths {
    addr: usize,
    size: usize,
}

/// One stored reference: the string's length, and where its bytes are.
#[derive(Clone, Copy, Debug)]
struct Reference {
    len: u32,
    collection: u64,
    object: u32,
}

/// Reads a whole variable-length string dataset from its stored bytes, or `None` when its
/// storage is not one this reader handles (libhdf5 must read it). The strings are decoded as
/// UTF-8 and end at their first NUL, as libhdf5's are.
pub(super) fn read_strings(ds: &Dataset) -> Result<Option<ArrayData>> {
    if !matches!(StoredType::of(&ds.dtype()?)?, StoredType::VarString { .. }) {
        return Ok(None);
    }
    let space = ds.space()?;
    if space.is_null() {
        return Ok(None);
    }
    let shape = space.shape();
    let Some(img) = beside_libhdf5(&ds.file()?)? else {
        return Ok(None);
    };
    let file_len = img.len;
    let stride = 8 + WIDTHS.addr;
    // The values' count checked against what the dataset stores, and their bytes against the
    // memory there is.
    let stored = check_whole_read(ds, stride)?;
    // The stored references and a string each are held at once; a compressed dataset can
    // claim far more values than its file holds bytes.
    let values = (stored / stride) as u64;
    check_memory(
        (stored as u64).saturating_add(values.saturating_mul(24)),
        "reading its strings",
    )?;
    let Some(raw) = stored_bytes(ds, &img, &shape, stride, stored)? else {
        return Ok(None);
    };
    // At most 2^32 × 2^32 bytes: no overflow in u64, but checked all the same.
    let total = references(&raw)
        .try_fold(0u64, |t, r| t.checked_add(u64::from(r.len)))
        .unwrap_or(u64::MAX);
    if total > file_len {
        return Err(Error::malformed(format!(
            "its strings claim {total} bytes, more than the file's {file_len}"
        )));
    }
    // A sparse file can claim a length it does not hold: the strings are checked against
    // the memory there is too (their text and one string each).
    check_memory(
        total.saturating_add(24u64.saturating_mul(values)),
        "reading its strings",
    )?;
    let strings = decode(&img, &raw)?;
    let array = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&shape), strings)
        .map_err(|e| Error::malformed(format!("strings of shape {shape:?}: {e}")))?;
    Ok(Some(ArrayData::String(array)))
}

/// The stored references in `raw`, one per `8 + WIDTHS.addr` bytes.
fn references(raw: &[u8]) -> impl Iterator<Item = Reference> + '_ {
    raw.chunks_exact(8 + WIDTHS.addr).map(|r| Reference {
        len: le(&r[..4]) as u32,
        collection: le(&r[4..4 + WIDTHS.addr]),
        object: le(&r[4 + WIDTHS.addr..]) as u32,
    })
}

/// The widths this module reads: libhdf5's default, which h5py and anndata never change (a
/// stored reference is then as large as the in-memory one that sizes are checked with).
const WIDTHS: Widths = Widths { addr: 8, size: 8 };

/// The file libhdf5 has open, read at libhdf5's addresses: from its base (the end of a user
/// block, if any), every span checked to lie in the file.
pub(super) struct Image {
    file: File,
    base: u64,
    /// The bytes from the base to the end of the file.
    len: u64,
}

impl Image {
    /// The bytes from the base to the end of the file, as far as an address can reach.
    pub(super) fn len(&self) -> u64 {
        self.len
    }

    /// Reads `buf.len()` bytes at address `addr`; `what` names them in the error when they do
    /// not lie in the file.
    pub(super) fn read(&self, addr: u64, buf: &mut [u8], what: &str) -> Result<()> {
        check_span(addr, buf.len() as u64, self.len, what)?;
        Ok(self.file.read_exact_at(buf, self.base + addr)?)
    }

    /// [`Image::read`] at `offset` from the start of the file, as libhdf5's API gives a
    /// dataset's storage (`H5Dget_offset`, chunk queries: its address plus the user block).
    fn read_offset(&self, offset: u64, buf: &mut [u8], what: &str) -> Result<()> {
        let addr = offset.checked_sub(self.base).ok_or_else(|| {
            Error::malformed(format!("{what} at {offset} lie in the file's user block"))
        })?;
        self.read(addr, buf, what)
    }
}

/// The file libhdf5 has open as `h5file`, when it can be read beside libhdf5: with [`WIDTHS`],
/// and as long as libhdf5 sees it. A file open for writing is flushed first, so that nothing
/// of it waits in libhdf5's caches.
pub(super) fn beside_libhdf5(h5file: &hdf5::File) -> Result<Option<Image>> {
    if !h5file.is_read_only() {
        h5file.flush()?;
    }
    // One copy of the creation properties (a copy costs libhdf5 more than the rest here).
    let fcpl = h5file.create_plist()?;
    let sizes = fcpl.sizes();
    if usize::from(sizes.sizeof_addr) != WIDTHS.addr
        || usize::from(sizes.sizeof_size) != WIDTHS.size
    {
        return Ok(None);
    }
    let Some(file) = super::same_file(h5file) else {
        return Ok(None);
    };
    let file_len = file.metadata()?.len();
    if file_len != h5file.size() {
        return Ok(None); // Not as libhdf5 sees it (grown or cut since).
    }
    let base = fcpl.userblock();
    Ok((base <= file_len).then(|| Image {
        file,
        base,
        len: file_len - base,
    }))
}

/// Checks the stored references of each attribute of `wanted` (name, type, count of values)
/// of `loc` before libhdf5 follows them, with one walk of the object's header for all of them:
/// each must point at an object of its length in a global heap collection that parses
/// (libhdf5 2.2 loops forever on some corrupt collections, and allocates whatever length a
/// reference claims before it reads the object). A result each, in order (`Err` alone when
/// the header cannot be walked).
///
/// Attributes [`super::header::attribute_data`] does not find (shared messages), types
/// whose stored layout is not read ([`super::slots`]), and files it does not read beside
/// libhdf5 ([`beside_libhdf5`]) are left unchecked.
pub(super) fn check_attributes(
    loc: &hdf5::Location,
    wanted: &[(&str, &StoredType, usize)],
) -> Result<Vec<Result<()>>> {
    let Some(img) = beside_libhdf5(&loc.file()?)? else {
        return Ok(wanted.iter().map(|_| Ok(())).collect());
    };
    let addr = super::header_address(loc)?;
    let found = super::header::attribute_data(&img, addr, |n| {
        wanted.iter().any(|(name, _, _)| name.as_bytes() == n)
    })?;
    let check = |name: &str, ty: &StoredType, count: usize| {
        let mut refs = Vec::new();
        // Every message of that name (libhdf5 reads the first it meets).
        for (_, stored) in found.iter().filter(|(n, _)| n == name.as_bytes()) {
            // A string's layout is known whatever its datatype message (shared or not).
            let slots = match ty {
                StoredType::VarString { .. } => Some(Slots::string()),
                _ => stored.slots.clone(),
            };
            if let Some(slots) = slots {
                element_references(&stored.data, count, &slots, &mut refs)?;
            }
        }
        check_references(&img, refs)
    };
    Ok(wanted
        .iter()
        .map(|&(name, ty, count)| check(name, ty, count))
        .collect())
}

/// Checks the stored references of a dataset whose type holds variable-length values before
/// libhdf5 reads it (see [`check_attributes`]): those of a dataset [`read_strings`] does not
/// read itself, of compound datasets with string fields (legacy layouts), of arrays of strings.
/// Storage not read here (see [`stored_bytes`]) is left unchecked.
pub(super) fn check_dataset(ds: &Dataset) -> Result<()> {
    let Some(img) = beside_libhdf5(&ds.file()?)? else {
        return Ok(());
    };
    let space = ds.space()?;
    if space.is_null() {
        return Ok(());
    }
    let addr = super::header_address(ds)?;
    let Some(slots) = super::header::dataset_slots(&img, addr)?.filter(|s| !s.vlen.is_empty())
    else {
        return Ok(());
    };
    let shape = space.shape();
    let Ok(stride) = usize::try_from(slots.size) else {
        return Ok(());
    };
    let stored = check_whole_read(ds, stride)?;
    // The stored elements, and a reference (40 bytes) for at most every 16 of their bytes.
    check_memory((stored as u64).saturating_mul(4), "checking its strings")?;
    let Some(raw) = stored_bytes(ds, &img, &shape, stride, stored)? else {
        return Ok(());
    };
    let mut refs = Vec::new();
    element_references(&raw, stored / stride.max(1), &slots, &mut refs)?;
    check_references(&img, refs)
}

/// The references of `count` elements laid out as `slots` in `data`, each with its value's
/// position and the size of its items, into `refs` (null ones, address 0, left out: libhdf5
/// reads them without the heap).
fn element_references(
    data: &[u8],
    count: usize,
    slots: &Slots,
    refs: &mut Vec<(usize, Reference, u64)>,
) -> Result<()> {
    let stride = 8 + WIDTHS.addr as u64;
    let needed = (count as u64).checked_mul(slots.size);
    if needed.is_none_or(|n| n > data.len() as u64) {
        return Err(Error::malformed(format!(
            "its {count} values of {} bytes are not all stored ({} bytes)",
            slots.size,
            data.len()
        )));
    }
    // Every slot inside the element, and no more of them than it holds (a type that says
    // otherwise is corrupt): at most one reference for every 16 stored bytes.
    let outside = |&(at, _): &(u64, u64)| at.checked_add(stride).is_none_or(|e| e > slots.size);
    if slots.vlen.iter().any(outside) || slots.vlen.len() as u64 * stride > slots.size {
        return Err(Error::malformed(format!(
            "a variable-length value lies outside its {}-byte element",
            slots.size
        )));
    }
    for e in 0..count {
        let start = e as u64 * slots.size;
        for &(at, item) in &slots.vlen {
            let from = (start + at) as usize;
            let r = references(&data[from..from + stride as usize])
                .next()
                .expect("a whole reference");
            if r.collection != 0 {
                refs.push((e, r, item));
            }
        }
    }
    Ok(())
}

/// Checks `refs` against the collections they point into: each read once, in address order,
/// none overlapping the one before (at most the file's bytes are read), each object present
/// and as long as its reference claims (an empty string's too: libhdf5 looks its object up
/// all the same). Together they may claim no more than the file's bytes: libhdf5 allocates
/// each value a reference claims, and many references to one large object would otherwise
/// make it allocate many times the file (a writer stores each value in an object of its own).
fn check_references(img: &Image, mut refs: Vec<(usize, Reference, u64)>) -> Result<()> {
    refs.sort_by_key(|(_, r, _)| r.collection);
    let mut heap = Collection::default();
    let mut total = 0u64;
    for (k, r, item) in refs {
        heap.visit(img, r.collection)?;
        object_of(&heap, k, &r, item)?;
        total = total.saturating_add(u64::from(r.len));
    }
    // Each object lies in the file; only many references to the same ones claim more.
    if total > img.len {
        return Err(Error::malformed(format!(
            "its strings claim {total} bytes, more than the file's {}",
            img.len
        )));
    }
    Ok(())
}

/// The stored elements of `ds` (`stored` bytes, `stride` each), from one contiguous span, from
/// its chunks (deflate, shuffle, LZF and Fletcher-32 undone here) or from its header (compact), or `None`
/// for storage left to libhdf5.
fn stored_bytes(
    ds: &Dataset,
    img: &Image,
    shape: &[usize],
    stride: usize,
    stored: usize,
) -> Result<Option<Vec<u8>>> {
    let Ok(pipeline) = Pipeline::new(&ds.filters(), stride) else {
        return Ok(None);
    };
    // Offsets from the start of the file (see `Image::read_offset`).
    let file_len = img.base + img.len;
    let placement = match chunks::index(ds, shape, stride, file_len)? {
        Ok(p) => p,
        Err(_) if ds.layout() == hdf5::dataset::Layout::Compact => {
            let addr = super::header_address(ds)?;
            return Ok(super::header::compact_data(img, addr)?.filter(|raw| raw.len() == stored));
        }
        Err(_) => return Ok(None), // External, unwritten chunks: libhdf5's.
    };
    match placement {
        Placement::Contiguous { addr } => {
            if stored as u64 != ds.storage_size() {
                return Ok(None); // Not laid out as expected: libhdf5 knows better.
            }
            let mut raw = vec![0u8; stored];
            img.read_offset(addr, &mut raw, "the dataset's values")?;
            Ok(Some(raw))
        }
        Placement::Chunked {
            chunk,
            grid,
            entries,
        } => {
            // A chunk far larger than the dataset (allowed: it may be resizable) is libhdf5's
            // to read; this reader sizes nothing from the file beyond the values' own bytes.
            let Some(chunk_bytes) = chunk
                .iter()
                .try_fold(stride, |acc, &c| acc.checked_mul(c))
                .filter(|&b| b <= stored.max(1 << 20))
            else {
                return Ok(None);
            };
            let mut raw = vec![0u8; stored];
            let (mut decoded, mut scratch) = (vec![0u8; chunk_bytes], Scratch::new());
            let mut packed = Vec::new();
            for (i, entry) in entries.iter().enumerate() {
                // Compressed data never takes much more room than it holds.
                if entry.size > (chunk_bytes as u64) * 2 + 4096 {
                    return Err(Error::malformed(format!(
                        "chunk {i} stores {} bytes for {chunk_bytes} of values",
                        entry.size
                    )));
                }
                packed.resize(entry.size as usize, 0);
                img.read_offset(entry.addr, &mut packed, "a chunk of the dataset")?;
                pipeline
                    .decode(&packed, entry.mask, &mut decoded, &mut scratch)
                    .map_err(|e| Error::malformed(format!("chunk {i}: {e}")))?;
                place(
                    &decoded,
                    &mut raw,
                    shape,
                    &chunk,
                    &grid_position(i, &grid),
                    stride,
                );
            }
            Ok(Some(raw))
        }
    }
}

/// The position in the chunk grid `grid` of the `i`-th chunk in row-major order.
fn grid_position(mut i: usize, grid: &[usize]) -> Vec<usize> {
    let mut at = vec![0; grid.len()];
    for (a, &g) in at.iter_mut().zip(grid).rev() {
        (*a, i) = (i % g, i / g);
    }
    at
}

/// Copies the elements (`stride` bytes each) of the chunk at grid position `at` (chunks of
/// `chunk` elements, row-major in `decoded`) that lie inside `shape` into `out`, the whole
/// dataset in row-major order.
fn place(
    decoded: &[u8],
    out: &mut [u8],
    shape: &[usize],
    chunk: &[usize],
    at: &[usize],
    stride: usize,
) {
    let origin: Vec<usize> = at.iter().zip(chunk).map(|(&a, &c)| a * c).collect();
    let extent: Vec<usize> = (0..shape.len())
        .map(|d| chunk[d].min(shape[d] - origin[d]))
        .collect();
    let Some((&last, lead)) = extent.split_last() else {
        // 0-d: one value, one chunk.
        out.copy_from_slice(&decoded[..out.len()]);
        return;
    };
    // Every run along the last axis: its index in the leading axes, counted row-major.
    let mut idx = vec![0usize; lead.len()];
    loop {
        let (mut src, mut dst) = (0usize, 0usize);
        for d in 0..shape.len() {
            let i = if d < lead.len() { idx[d] } else { 0 };
            src = src * chunk[d] + i;
            dst = dst * shape[d] + origin[d] + i;
        }
        let n = last * stride;
        out[dst * stride..dst * stride + n]
            .copy_from_slice(&decoded[src * stride..src * stride + n]);
        // The next index over the leading axes, or done.
        let Some(d) = (0..lead.len()).rev().find(|&d| idx[d] + 1 < lead[d]) else {
            return;
        };
        idx[d] += 1;
        idx[d + 1..].fill(0);
    }
}

/// The strings the stored references `raw` point to, each collection they point into read and
/// parsed once.
fn decode(img: &Image, raw: &[u8]) -> Result<Vec<CompactString>> {
    let stride = 8 + WIDTHS.addr;
    let mut out = vec![CompactString::default(); raw.len() / stride];
    // Runs of consecutive values in one collection (libhdf5 fills a collection with the
    // values written one after the other), ordered by the collection's address, so that each
    // collection is read once and collections are seen to not overlap.
    let mut runs: Vec<(u64, std::ops::Range<usize>)> = Vec::new();
    for (k, r) in references(raw).enumerate() {
        if r.len == 0 {
            continue;
        }
        match runs.last_mut() {
            Some((c, range)) if *c == r.collection && range.end == k => range.end = k + 1,
            _ => runs.push((r.collection, k..k + 1)),
        }
    }
    runs.sort_unstable_by_key(|(c, range)| (*c, range.start));
    let mut heap = Collection::default();
    for (collection, range) in runs {
        heap.visit(img, collection)?;
        let from = range.start;
        for (k, r) in (from..).zip(references(&raw[from * stride..range.end * stride])) {
            if r.len == 0 {
                continue;
            }
            let bytes = object_of(&heap, k, &r, 1)?;
            let bytes = bytes.split(|&b| b == 0).next().unwrap_or_default();
            out[k] = utf8(bytes)?;
        }
    }
    Ok(out)
}

/// The bytes value `k` refers to (`r`, items of `item` bytes) in `heap`, the collection it
/// points into.
fn object_of<'h>(heap: &'h Collection, k: usize, r: &Reference, item: u64) -> Result<&'h [u8]> {
    let bytes = heap.object(r.object).ok_or_else(|| {
        Error::malformed(format!(
            "value {k} refers to object {} of the global heap collection at {}, which has none",
            r.object, r.collection
        ))
    })?;
    // libhdf5 refuses a reference whose length is not its object's.
    if Some(bytes.len() as u64) != u64::from(r.len).checked_mul(item) {
        return Err(Error::malformed(format!(
            "value {k} claims {} bytes, its global heap object holds {}",
            u64::from(r.len).saturating_mul(item),
            bytes.len()
        )));
    }
    Ok(bytes)
}

/// One global heap collection, read whole, and where its objects are.
#[derive(Debug, Default)]
struct Collection {
    addr: Option<u64>,
    /// The end of the last collection read (see [`Collection::visit`]).
    end: u64,
    bytes: Vec<u8>,
    /// By object index: the object's bytes in `bytes` (`start..end`), empty for no object.
    objects: Vec<(u32, u32)>,
}

impl Collection {
    /// Makes the collection at `addr` the one held, reading it unless it already is. Called in
    /// increasing order of address: a collection overlapping the one before is refused, so
    /// that all of them together are read at most once from the file.
    fn visit(&mut self, img: &Image, addr: u64) -> Result<()> {
        if self.addr == Some(addr) {
            return Ok(());
        }
        if addr < self.end {
            return Err(Error::malformed(format!(
                "global heap collection at {addr} overlaps the one before it"
            )));
        }
        self.load(img, addr)?;
        self.end = addr + self.bytes.len() as u64;
        Ok(())
    }

    /// Reads and parses the collection at `addr`, reusing the memory of the one before.
    fn load(&mut self, img: &Image, addr: u64) -> Result<()> {
        let header = header_len(WIDTHS.size);
        // The header and, most often, the whole collection (4 KiB unless a value is larger) in
        // one read.
        let mut head = vec![0u8; 4096.min(img.len().saturating_sub(addr) as usize)];
        if head.len() < header {
            img.read(addr, &mut [0u8; 16][..header], "a global heap collection")?;
        }
        img.read(addr, &mut head, "a global heap collection")?;
        if &head[..4] != SIGNATURE || head[4] != 1 {
            return Err(Error::malformed(format!(
                "no global heap collection at {addr} (signature {:?}, version {})",
                String::from_utf8_lossy(&head[..4]),
                head[4]
            )));
        }
        let size = le(&head[8..header]);
        if size < header as u64 || size > u64::from(u32::MAX) {
            return Err(Error::malformed(format!(
                "global heap collection at {addr} claims {size} bytes"
            )));
        }
        check_span(addr, size, img.len, "a global heap collection")?;
        self.addr = None;
        self.bytes.clear();
        match head.get(..size as usize) {
            Some(whole) => self.bytes.extend_from_slice(whole),
            None => {
                self.bytes.resize(size as usize, 0);
                img.read(addr, &mut self.bytes, "a global heap collection")?;
            }
        }
        self.objects.clear();
        // Walked as libhdf5 walks it, so that what passes here cannot trap libhdf5 either:
        // an object is stepped over by its padded size, free space (index 0) by the size it
        // claims, its header included; a tail too short for an object's header is free space.
        let object_header = object_header_len(WIDTHS.size) as u64;
        let end_of = |what: std::fmt::Arguments| {
            Error::malformed(format!(
                "{what} of the global heap collection at {addr} ends past it"
            ))
        };
        let mut pos = header as u64;
        while pos + object_header <= size {
            let b = &self.bytes[pos as usize..(pos + object_header) as usize];
            let index = le(&b[..2]) as usize;
            let len = le(&b[8..]);
            let step = if index == 0 {
                len
            } else {
                len.checked_next_multiple_of(8)
                    .and_then(|l| l.checked_add(object_header))
                    .unwrap_or(u64::MAX)
            };
            if step == 0 {
                // libhdf5 2.2 never leaves such an object (it loops forever on it).
                return Err(Error::malformed(format!(
                    "free space of 0 bytes at {pos} of the global heap collection at {addr}"
                )));
            }
            if step > size - pos {
                return Err(if index == 0 {
                    end_of(format_args!("free space at {pos}"))
                } else {
                    end_of(format_args!("object {index}"))
                });
            }
            if index > 0 {
                if self.objects.len() <= index {
                    self.objects.resize(index + 1, (0, 0));
                }
                let start = pos + object_header;
                // Both below the collection's size, itself at most u32::MAX (checked above).
                self.objects[index] = (start as u32, (start + len) as u32);
            }
            pos += step;
        }
        self.addr = Some(addr);
        Ok(())
    }

    /// The bytes of object `index`, if the collection has it.
    fn object(&self, index: u32) -> Option<&[u8]> {
        let &(start, end) = self.objects.get(index as usize)?;
        (end > start || start > 0).then(|| &self.bytes[start as usize..end as usize])
    }
}

/// A little-endian unsigned integer of 1 to 8 bytes.
pub(super) fn le(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

#[cfg(test)]
mod tests;
