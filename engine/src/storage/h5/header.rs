//! An object's header read from the file, to find the stored bytes of one of its attributes
//! or of a compact dataset.
//!
//! libhdf5 reads an attribute of variable-length strings by following each stored reference
//! into the file's global heap, and it trusts what it finds there: a corrupt collection can
//! make it loop forever, and a corrupt length makes it allocate what the length claims (see
//! [`super::heap::check_attributes`]). Before it does, the references are taken from the
//! attribute's message in the object header, read here, and checked.
//!
//! Read here: version 1 and version 2 object headers, their continuation blocks, attribute
//! messages of versions 1 to 3 stored in the header or in dense storage (through
//! [`super::dense`]), and compact layout messages (versions 3 and 4: what libhdf5 has written
//! since 1.6). Shared attribute messages (kept in the shared message heap) are not found:
//! [`attribute_data`] finds none. Every span is checked to lie in the file, and the walk is
//! bounded (each block read once, the blocks together no larger than the file).

use super::chunks::check_span;
use super::heap::{le, Image};
use super::slots::{slots, Slots};
use crate::{Error, Result};

/// The message types read here.
const CONTINUATION: u16 = 0x10;
const ATTRIBUTE: u16 = 0x0C;
const ATTRIBUTE_INFO: u16 = 0x15;
const LAYOUT: u16 = 0x08;
const DATATYPE: u16 = 0x03;
const SYMBOL_TABLE: u16 = 0x11;

/// A header message's flag: the message itself is shared (stored elsewhere).
const SHARED_MESSAGE: u8 = 0x02;

/// One block of header messages: where it lies and how its messages are framed.
#[derive(Clone, Copy, Debug)]
struct Block {
    addr: u64,
    len: u64,
    /// Bytes before the messages (a version 2 prefix or `OCHK`) and after them (a checksum).
    skip: usize,
    tail: usize,
    /// For a version 2 continuation block: the signature it starts with.
    signed: bool,
    version: Version,
}

/// The framing of an object header's messages.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Version {
    /// Version 1: 8-byte message headers (type u16, size u16, flags, 3 reserved).
    V1,
    /// Version 2 (`OHDR`/`OCHK`): type u8, size u16, flags, and a creation order (u16) when
    /// the header tracks it; 4 checksum bytes close each block.
    V2 { tracks_order: bool },
}

impl Version {
    fn message_header_len(self) -> usize {
        match self {
            Version::V1 => 8,
            Version::V2 { tracks_order } => 4 + if tracks_order { 2 } else { 0 },
        }
    }

    /// A continuation block of a header of this version.
    fn continuation(self, addr: u64, len: u64) -> Block {
        let v2 = self != Version::V1;
        Block {
            addr,
            len,
            skip: if v2 { 4 } else { 0 },
            tail: if v2 { 4 } else { 0 },
            signed: v2,
            version: self,
        }
    }
}

/// Every message of the attributes `wanted` names (by their stored name) of the object whose
/// header is at `addr`, in the header or in its dense storage (a corrupt header may hold a
/// name twice), with its attribute's name: its stored bytes, from the start of the
/// attribute's data to the end of its message (padding included), and their layout; none
/// for an attribute the header does not hold in a form read here. One walk of the header
/// serves every attribute. Addresses and lengths are 8 bytes wide (libhdf5's default,
/// checked by the caller).
pub(super) fn attribute_data(
    img: &Image,
    addr: u64,
    wanted: impl Fn(&[u8]) -> bool,
) -> Result<Vec<(Vec<u8>, Stored)>> {
    let mut found = Vec::new();
    let mut dense = None;
    let mut keep = |body: &[u8]| {
        if let Some(m) = attribute_message(body).filter(|m| wanted(m.name)) {
            let parts = (m.datatype.to_vec(), m.shared_type, m.data.to_vec());
            found.push((m.name.to_vec(), parts));
        }
    };
    walk(img, addr, |kind, flags, body| {
        if kind == ATTRIBUTE && flags & SHARED_MESSAGE == 0 {
            keep(body);
        }
        // The first, as libhdf5 reads it.
        if kind == ATTRIBUTE_INFO && dense.is_none() {
            dense = Some(dense_storage(body));
        }
    })?;
    // libhdf5 looks for dense storage in version 2 headers only.
    let mut signature = [0u8; 4];
    if dense.is_some() && img.len().saturating_sub(addr) >= 4 {
        img.read(addr, &mut signature, "an object header")?;
    }
    if let Some(at) = dense.filter(|_| &signature == b"OHDR") {
        let (heap, names) = at.ok_or_else(|| {
            Error::malformed(format!(
                "the attribute info message of the object header at {addr} is cut short"
            ))
        })?;
        for body in super::dense::attribute_messages(img, heap, names)? {
            keep(&body);
        }
    }
    found
        .into_iter()
        .map(|(name, (datatype, shared, data))| {
            let slots = if shared {
                committed_slots(img, &datatype)?
            } else {
                slots(&datatype)?
            };
            Ok((name, Stored { slots, data }))
        })
        .collect()
}

/// An attribute's stored values, and the layout of one of them when its datatype message
/// could be read.
pub(super) struct Stored {
    pub(super) slots: Option<Slots>,
    pub(super) data: Vec<u8>,
}

/// The layout of the elements of the dataset whose header is at `addr`, from its datatype
/// message (followed to the committed datatype it names when shared); `None` when it is not
/// understood.
pub(super) fn dataset_slots(img: &Image, addr: u64) -> Result<Option<Slots>> {
    match first_datatype(img, addr)? {
        Some((body, true)) => committed_slots(img, &body),
        Some((body, false)) => slots(&body),
        None => Ok(None),
    }
}

/// The first datatype message of the header at `addr` (as libhdf5 takes it), and whether it is
/// shared.
fn first_datatype(img: &Image, addr: u64) -> Result<Option<(Vec<u8>, bool)>> {
    let mut found = None;
    walk(img, addr, |kind, flags, body| {
        if kind == DATATYPE && found.is_none() {
            found = Some((body.to_vec(), flags & SHARED_MESSAGE != 0));
        }
    })?;
    Ok(found)
}

/// The layout of the committed datatype a shared datatype message (`body`) names: the first
/// datatype message of the object header at the address it holds (version 1: after a symbol
/// table entry's heap offset; versions 2 and 3: at once). A message kept in the shared message
/// heap (version 3, type 1) is not followed: `None`.
fn committed_slots(img: &Image, body: &[u8]) -> Result<Option<Slots>> {
    let at = match body {
        [1, ..] => le_at(body, 16),
        [2, ..] | [3, 2, ..] => le_at(body, 2),
        _ => None,
    };
    let Some(at) = at else {
        return Ok(None);
    };
    // A committed datatype's own message is never shared again; one that says so is not read.
    match first_datatype(img, at)? {
        Some((body, false)) => slots(&body),
        _ => Ok(None),
    }
}

/// The address of the local heap of the old-style group whose header is at `addr` (its symbol
/// table message: a B-tree address, then the heap's), or `None` for a group of another kind.
pub(super) fn symbol_table_heap(img: &Image, addr: u64) -> Result<Option<u64>> {
    let mut found = None;
    walk(img, addr, |kind, _, body| {
        if kind == SYMBOL_TABLE && found.is_none() {
            found = Some(le_at(body, 8));
        }
    })?;
    Ok(found.flatten())
}

/// The values of the compact dataset whose header is at `addr` (its layout message's data),
/// or `None` when its layout message is not one read here (versions 3 and 4) or not compact.
pub(super) fn compact_data(img: &Image, addr: u64) -> Result<Option<Vec<u8>>> {
    let mut found = Vec::new();
    walk(img, addr, |kind, flags, body| {
        // Version 3 or 4, class 0 (compact), the size (2 bytes), the values.
        if let (LAYOUT, 0, [3 | 4, 0, a, b, data @ ..]) = (kind, flags & SHARED_MESSAGE, body) {
            let len = usize::from(u16::from_le_bytes([*a, *b]));
            found.push(data.get(..len).map(<[u8]>::to_vec));
        }
    })?;
    match found.as_slice() {
        [Some(data)] => Ok(Some(data.clone())),
        [None] => Err(Error::malformed(format!(
            "the compact data in the header at {addr} is cut short"
        ))),
        _ => Ok(None),
    }
}

/// Calls `visit` with (type, flags, body) for every message of the header at `addr`, its
/// continuation blocks included.
fn walk(img: &Image, addr: u64, mut visit: impl FnMut(u16, u8, &[u8])) -> Result<()> {
    // The prefix and, most often, the whole first block in one read.
    let mut head = vec![0u8; HEAD_READ.min(img.len().saturating_sub(addr) as usize)];
    img.read(addr, &mut head, "an object header")?;
    // Blocks in the order the header names them, as libhdf5 reads them.
    let mut pending = std::collections::VecDeque::from([first_block(&head, addr)?]);
    let mut read = 0u64;
    let mut seen = std::collections::HashSet::new();
    let mut bytes = Vec::new();
    while let Some(block) = pending.pop_front() {
        if !seen.insert(block.addr) {
            return Err(Error::malformed(format!(
                "the object header at {addr} continues into {} twice",
                block.addr
            )));
        }
        read = read.saturating_add(block.len);
        if read > img.len() {
            return Err(Error::malformed(format!(
                "the object header at {addr} claims more bytes than the file holds"
            )));
        }
        check_span(block.addr, block.len, img.len(), "an object header block")?;
        if block.len < (block.skip + block.tail) as u64 {
            return Err(Error::malformed(format!(
                "the object header block at {} is too short ({} bytes)",
                block.addr, block.len
            )));
        }
        bytes.resize(block.len as usize, 0);
        let in_head = (block.addr - addr.min(block.addr)) as usize;
        match head.get(in_head..in_head + bytes.len()) {
            Some(done) if block.addr >= addr => bytes.copy_from_slice(done),
            _ => img.read(block.addr, &mut bytes, "an object header block")?,
        }
        if block.signed && &bytes[..4] != b"OCHK" {
            return Err(Error::malformed(format!(
                "no object header continuation block at {}",
                block.addr
            )));
        }
        let messages = &bytes[block.skip..bytes.len() - block.tail];
        for (kind, flags, body) in messages_of(messages, block.version) {
            if kind == CONTINUATION {
                let (Some(at), Some(len)) = (le_at(body, 0), le_at(body, 8)) else {
                    return Err(Error::malformed(format!(
                        "a continuation message of the object header at {addr} is cut short"
                    )));
                };
                pending.push_back(block.version.continuation(at, len));
            } else {
                visit(kind, flags, body);
            }
        }
    }
    Ok(())
}

/// The bytes read at a header's address at first: its prefix and, for the headers h5py writes,
/// its first block.
const HEAD_READ: usize = 1024;

/// The first block of messages of the header at `addr` (whose first bytes are `head`), after
/// its prefix.
fn first_block(head: &[u8], addr: u64) -> Result<Block> {
    let bad = || Error::malformed(format!("no object header at {addr}"));
    let mut prefix = [0u8; 32];
    let n = prefix.len().min(head.len());
    if n < 16 {
        return Err(bad());
    }
    prefix[..n].copy_from_slice(&head[..n]);
    if prefix[0] == 1 {
        // Version 1: version, reserved, message count (2), reference count (4), the first
        // block's size (4), then padding to 16 bytes.
        return Ok(Block {
            addr: addr + 16,
            len: le(&prefix[8..12]),
            skip: 0,
            tail: 0,
            signed: false,
            version: Version::V1,
        });
    }
    if &prefix[..4] != b"OHDR" || prefix[4] != 2 {
        return Err(bad());
    }
    let flags = prefix[5];
    // Optional times (4 × 4 bytes) and attribute phase change values (2 × 2 bytes), then the
    // first block's size in 1, 2, 4 or 8 bytes.
    let at = 6 + if flags & 0x20 != 0 { 16 } else { 0 } + if flags & 0x10 != 0 { 4 } else { 0 };
    let width = 1usize << (flags & 0x03);
    let size = prefix
        .get(at..at + width)
        .filter(|_| at + width <= n)
        .map(le)
        .ok_or_else(bad)?;
    let skip = at + width;
    Ok(Block {
        addr,
        len: size.checked_add(skip as u64 + 4).ok_or_else(bad)?,
        skip,
        tail: 4,
        signed: false,
        version: Version::V2 {
            tracks_order: flags & 0x04 != 0,
        },
    })
}

/// The messages of a block: (type, flags, body), until what is left is too short for one.
fn messages_of(bytes: &[u8], version: Version) -> impl Iterator<Item = (u16, u8, &[u8])> {
    let header = version.message_header_len();
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let head = bytes.get(at..at + header)?;
        let (kind, size, flags) = match version {
            Version::V1 => (le(&head[..2]) as u16, le(&head[2..4]) as usize, head[4]),
            Version::V2 { .. } => (u16::from(head[0]), le(&head[1..3]) as usize, head[3]),
        };
        let body = bytes.get(at + header..at + header + size)?;
        at += header + size;
        Some((kind, flags, body))
    })
}

/// The parts of an attribute message read here.
struct Message<'a> {
    name: &'a [u8],
    datatype: &'a [u8],
    /// The datatype message is shared: it names a committed datatype.
    shared_type: bool,
    data: &'a [u8],
}

/// The parts of an attribute message; a shared datatype or dataspace takes the size the
/// message gives it like any other.
fn attribute_message(body: &[u8]) -> Option<Message<'_>> {
    let version = *body.first()?;
    let sizes = [2, 4, 6].map(|at| body.get(at..at + 2).map(le));
    let [Some(name_len), Some(type_len), Some(space_len)] = sizes else {
        return None;
    };
    let (name_len, type_len, space_len) =
        (name_len as usize, type_len as usize, space_len as usize);
    let (start, padded) = match version {
        1 => (8, true),
        2 => (8, false),
        3 => (9, false),
        _ => return None,
    };
    let pad = |n: usize| if padded { n.div_ceil(8) * 8 } else { n };
    // The name is its first `name_len - 1` bytes, as libhdf5 takes it (the last, a NUL, is
    // not looked at).
    let stored_name = body.get(start..start + name_len.checked_sub(1)?)?;
    let name = stored_name.split(|&b| b == 0).next().unwrap_or_default();
    let datatype_at = start + pad(name_len);
    let shared_type = version > 1 && body[1] & 0x01 != 0;
    let datatype = body.get(datatype_at..datatype_at + type_len)?;
    let data = datatype_at + pad(type_len) + pad(space_len);
    Some(Message {
        name,
        datatype,
        shared_type,
        data: body.get(data..)?,
    })
}

/// The addresses of the fractal heap and the name index an attribute info message names:
/// version 0, flags, the largest creation order (2 bytes, when tracked), then both addresses.
fn dense_storage(body: &[u8]) -> Option<(u64, u64)> {
    let at = 2 + if *body.get(1)? & 0x01 != 0 { 2 } else { 0 };
    Some((le_at(body, at)?, le_at(body, at + 8)?))
}

/// The little-endian u64 at `at` in `bytes`, if it has 8 bytes there.
fn le_at(bytes: &[u8], at: usize) -> Option<u64> {
    bytes.get(at..at + 8).map(le)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ArrayData;
    use crate::storage::h5::corrupt::{no_free_space, without_free_space, written};
    use crate::storage::h5::read::read_attr;
    use crate::testutil::py_file;

    /// Attributes of variable-length strings in the headers h5py writes: version 1 (the
    /// default; 40 attributes grow it into continuation blocks) and version 2 (`libver=
    /// 'latest'`), with creation order tracked, grown into continuation blocks by large
    /// attributes, in dense storage past 8 attributes (direct blocks of a fractal heap under an indirect one), and one
    /// larger than the heap's objects (4 KiB: a huge object of the fractal heap).
    const SCRIPT: &str = "def fill(g, n):\n\
        \x20   for i in range(n):\n\
        \x20       g.attrs[f'a{i}'] = 'x' * i + 'é'\n\
        \x20   g.attrs['list'] = ['one', '', 'three']\n\
        \x20   g.attrs['empty'] = ''\n\
        with h5py.File(path, 'w') as f:\n\
        \x20   fill(f.create_group('few'), 3)\n\
        \x20   fill(f.create_group('many'), 40)\n\
        with h5py.File(path, 'a', libver='latest') as f:\n\
        \x20   fill(f.create_group('v2'), 3)\n\
        \x20   fill(f.create_group('ordered', track_order=True), 3)\n\
        \x20   fill(f.create_group('dense'), 40)\n\
        \x20   g = f.create_group('grown')\n\
        \x20   f.create_dataset('after', data=np.arange(10))\n\
        \x20   g.attrs['pad0'], g.attrs['pad1'] = np.arange(300), np.arange(400)\n\
        \x20   fill(g, 3)\n\
        \x20   g = f.create_group('huge')\n\
        \x20   fill(g, 9)\n\
        \x20   g.attrs['big'] = ['abc'] * 300\n";

    /// The lengths stored in the references of attribute `name` of `group`, as found here.
    fn stored_lengths(path: &std::path::Path, group: &str, name: &str) -> Option<Vec<u32>> {
        let f = hdf5::File::open(path).unwrap();
        let g = f.group(group).unwrap();
        let addr = crate::storage::h5::header_address(&g).unwrap();
        let img = crate::storage::h5::heap::beside_libhdf5(&f)
            .unwrap()
            .unwrap();
        let found = attribute_data(&img, addr, |n| n == name.as_bytes()).unwrap();
        let [(_, stored)] = &found[..] else {
            assert!(found.is_empty(), "{group}/{name} found twice");
            return None;
        };
        let slots = stored.slots.as_ref().expect("a datatype read");
        assert_eq!(
            (slots.size, &slots.vlen[..]),
            (16, &[(0, 1)][..]),
            "{group}/{name}"
        );
        Some(
            stored
                .data
                .chunks_exact(16)
                .map(|r| le(&r[..4]) as u32)
                .collect(),
        )
    }

    #[test]
    fn attributes_are_found_in_every_header_layout() {
        let (_d, path) = py_file("attrs.h5", SCRIPT);
        let f = hdf5::File::open(&path).unwrap();
        for (group, n) in [
            ("few", 3),
            ("many", 40),
            ("v2", 3),
            ("ordered", 3),
            ("grown", 3),
            ("dense", 40),
        ] {
            let g = f.group(group).unwrap();
            for name in (0..n).map(|i| format!("a{i}")).chain(["list".into()]) {
                let ArrayData::String(values) = read_attr(&g, &name).unwrap() else {
                    panic!("{group}/{name} is not strings");
                };
                let lengths = stored_lengths(&path, group, &name)
                    .unwrap_or_else(|| panic!("{group}/{name} not found"));
                let expected: Vec<u32> = values.iter().map(|s| s.len() as u32).collect();
                assert_eq!(lengths[..expected.len()], expected, "{group}/{name}");
            }
        }
        assert_eq!(stored_lengths(&path, "huge", "big"), Some(vec![3; 300]));
        assert_eq!(stored_lengths(&path, "dense", "nothing"), None);
    }

    /// A copy of the attributes file with `edit` applied to its bytes, given the offset of the
    /// collection holding `few`'s attribute `a2` and of that attribute's stored reference;
    /// then the error reading it.
    fn corrupted(edit: impl FnOnce(&mut Vec<u8>, usize, usize)) -> String {
        let (_dir, path) = py_file("attrs.h5", SCRIPT);
        let mut bytes = std::fs::read(&path).unwrap();
        let value = "xxé".as_bytes();
        let at = bytes.windows(value.len()).position(|w| w == value).unwrap();
        let heap = bytes[..at].windows(4).rposition(|w| w == b"GCOL").unwrap();
        let mut reference = (value.len() as u32).to_le_bytes().to_vec();
        reference.extend((heap as u64).to_le_bytes());
        let refs = bytes.windows(12).position(|w| w == reference).unwrap();
        edit(&mut bytes, heap, refs);
        refused(&written(&path, bytes), "few", "a2")
    }

    /// The error reading attribute `name` of `group` of `f`.
    fn refused(f: &hdf5::File, group: &str, name: &str) -> String {
        read_attr(&f.group(group).unwrap(), name)
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn references_libhdf5_would_trust_are_refused_before_it_reads_them() {
        let err = corrupted(|b, heap, _| no_free_space(b, heap));
        assert!(
            err.contains("attribute 'a2'") && err.contains("free space of 0 bytes"),
            "{err}"
        );
        // A length of 1 GiB, which libhdf5 allocates before reading the object.
        let err = corrupted(|b, _, refs| {
            b[refs..refs + 4].copy_from_slice(&(1u32 << 30).to_le_bytes());
        });
        assert!(err.contains("claims 1073741824 bytes"), "{err}");
        // A reference to a collection that is not one.
        let err = corrupted(|b, _, refs| {
            b[refs + 4..refs + 12].copy_from_slice(&64u64.to_le_bytes());
        });
        assert!(err.contains("no global heap collection at 64"), "{err}");
    }

    #[test]
    fn addresses_count_from_the_end_of_a_user_block() {
        let script = "with h5py.File(path, 'w', userblock_size=512) as f:\n\
            \x20   f.create_group('g').attrs['a'] = ['one', 'two']\n";
        let (_dir, path) = py_file("userblock.h5", script);
        assert_eq!(stored_lengths(&path, "g", "a"), Some(vec![3, 3]));
        let err = refused(&without_free_space(&path), "g", "a");
        assert!(err.contains("free space of 0 bytes"), "{err}");
    }

    #[test]
    fn an_empty_string_is_checked_too() {
        // libhdf5 looks an empty string's object up in its collection like any other.
        let (_dir, path) = py_file("attrs.h5", SCRIPT);
        let err = refused(&without_free_space(&path), "few", "empty");
        assert!(err.contains("free space of 0 bytes"), "{err}");
    }

    #[test]
    fn attributes_in_dense_storage_are_checked_too() {
        let (_dir, path) = py_file("attrs.h5", SCRIPT);
        let err = refused(&without_free_space(&path), "dense", "a7");
        assert!(err.contains("free space of 0 bytes"), "{err}");
    }

    #[test]
    fn corrupt_dense_storage_gives_errors_not_panics() {
        // Every byte of the B-trees' and fractal heaps' blocks set to 0xFF in turn, the
        // attributes then looked for directly (libhdf5 would refuse most of these copies by
        // their checksums first).
        let (_dir, path) = py_file("attrs.h5", SCRIPT);
        let bytes = std::fs::read(&path).unwrap();
        let signatures: [&[u8]; 6] = [b"BTHD", b"BTLF", b"BTIN", b"FRHP", b"FHIB", b"FHDB"];
        let starts: Vec<usize> = (0..bytes.len() - 4)
            .filter(|&i| signatures.contains(&&bytes[i..i + 4]))
            .collect();
        assert!(starts.len() >= 8, "{starts:?}");
        let (mut found, mut refused) = (0, 0);
        for &start in &starts {
            for at in start..(start + 160).min(bytes.len()) {
                let mut copy = bytes.clone();
                copy[at] = 0xFF;
                let f = written(&path, copy);
                let img = crate::storage::h5::heap::beside_libhdf5(&f)
                    .unwrap()
                    .unwrap();
                for group in ["dense", "huge"] {
                    let addr =
                        crate::storage::h5::header_address(&f.group(group).unwrap()).unwrap();
                    match attribute_data(&img, addr, |n| n == b"a7") {
                        Ok(_) => found += 1,
                        Err(_) => refused += 1,
                    }
                }
            }
        }
        assert!(found > 0 && refused > 0, "{found} found, {refused} refused");
    }

    #[test]
    fn dense_storage_libhdf5_would_read_otherwise_is_refused() {
        // Each edit makes libhdf5 find another object than the walk would (a block's stored
        // offset, a heap ID length other than 8) or read one the walk does not (filtered
        // blocks): refused rather than left unchecked.
        let (_dir, path) = py_file("attrs.h5", SCRIPT);
        let bytes = std::fs::read(&path).unwrap();
        let every = |sig: &[u8]| -> Vec<usize> {
            (0..bytes.len() - 4)
                .filter(|&i| &bytes[i..i + 4] == sig)
                .collect()
        };
        // (signature, offset in the block, value, the error)
        let edits: [(&[u8], usize, u8, &str); 3] = [
            (b"FHDB", 13, 1, "no block of the fractal heap"),
            (b"FRHP", 5, 9, "sizes are not ones libhdf5 builds"),
            (b"FRHP", 7, 1, "its blocks are filtered"),
        ];
        for (sig, at, value, want) in edits {
            let mut copy = bytes.clone();
            for block in every(sig) {
                copy[block + at] = value;
            }
            let f = written(&path, copy);
            let img = crate::storage::h5::heap::beside_libhdf5(&f)
                .unwrap()
                .unwrap();
            let addr = crate::storage::h5::header_address(&f.group("dense").unwrap()).unwrap();
            let err = attribute_data(&img, addr, |n| n == b"a7")
                .err()
                .expect(want)
                .to_string();
            assert!(err.contains(want), "{err}");
        }
    }

    #[test]
    fn every_attribute_is_read_and_checked_in_one_call() {
        use crate::storage::h5::read::read_attrs;
        let (_d, path) = py_file("attrs.h5", SCRIPT);
        let f = hdf5::File::open(&path).unwrap();
        for group in ["few", "many", "dense", "huge"] {
            let g = f.group(group).unwrap();
            let all = read_attrs(&g).unwrap();
            assert_eq!(all.len(), g.attr_names().unwrap().len(), "{group}");
            for (name, value) in &all {
                assert_eq!(value, &read_attr(&g, name).unwrap(), "{group}/{name}");
            }
        }
        // Refused as one attribute read is, naming an attribute.
        let err = read_attrs(&without_free_space(&path).group("dense").unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("attribute '") && err.contains("free space of 0 bytes"),
            "{err}"
        );
    }
}
