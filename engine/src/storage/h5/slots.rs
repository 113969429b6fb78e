//! Where the variable-length values of a stored element lie, read from its datatype message.
//!
//! libhdf5 hands a variable-length type to the caller in its memory form (a string is a
//! pointer, 8 bytes) and moves compound members to match, so the file's layout of an element
//! (each variable-length value a 16-byte reference: length, collection address, object index)
//! cannot be had from its API. It is read here from the datatype message the file stores
//! (HDF5 file format, "Datatype Message", versions 1 to 5), every class walked so that the
//! members after it are found. Anything not understood gives `None`: the element is then left
//! unchecked, never refused.

use super::heap::le;

/// The layout of one stored element: its size, and where its variable-length values are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Slots {
    /// The element's stored size in bytes.
    pub(super) size: u64,
    /// Per variable-length value: its offset in the element, and the size of one of its
    /// items (1 for a string's bytes).
    pub(super) vlen: Vec<(u64, u64)>,
}

impl Slots {
    /// One variable-length string: a 16-byte reference to its bytes.
    pub(super) fn string() -> Slots {
        Slots {
            size: 16,
            vlen: vec![(0, 1)],
        }
    }
}

/// The most slots a type's walk finds, all its nested lists together (an element of 65,536
/// strings is not an attribute or a column anyone writes; a crafted type could claim billions):
/// the walk's time and memory are bounded whatever the type claims.
const MAX_SLOTS: usize = 1 << 16;

/// The layout of the datatype encoded at the start of `b` (a datatype message's body).
///
/// A type holding more than [`MAX_SLOTS`] variable-length values an element is refused: left
/// unchecked, libhdf5 would follow them all.
pub(super) fn slots(b: &[u8]) -> crate::Result<Option<Slots>> {
    let mut out = Slots::default();
    let mut budget = MAX_SLOTS;
    match walk(b, 0, &mut out.vlen, 0, &mut budget) {
        Some((size, _)) => {
            out.size = size;
            Ok(Some(out))
        }
        None if budget == 0 => Err(crate::Error::unsupported(format!(
            "its type holds more than {MAX_SLOTS} variable-length values an element"
        ))),
        None => Ok(None),
    }
}

/// Walks the type at the start of `b` (nested `depth` deep), pushing its variable-length
/// slots (offset from `at`); gives its size and the bytes its encoding takes.
/// Every slot found, at any depth, spends one of `budget`.
fn walk(
    b: &[u8],
    at: u64,
    out: &mut Vec<(u64, u64)>,
    depth: u32,
    budget: &mut usize,
) -> Option<(u64, usize)> {
    if depth > 32 {
        return None;
    }
    let head = b.get(..8)?;
    let (class, version) = (head[0] & 0x0F, head[0] >> 4);
    let bits = u32::from(head[1]) | u32::from(head[2]) << 8 | u32::from(head[3]) << 16;
    let size = le(&head[4..8]);
    let props = &b[8..];
    let used = match class {
        0 | 4 => 4,                  // fixed-point, bitfield: offset and precision
        1 => 12,                     // floating-point
        2 => 2,                      // time
        3 | 7 => 0,                  // string, reference
        5 => (bits & 0xFF) as usize, // opaque: its tag, padded
        6 => compound(
            props,
            at,
            (size, bits & 0xFFFF, version),
            out,
            depth,
            budget,
        )?,
        8 => {
            // Enumeration: the base type (an integer), then the names, then the values.
            let (base, mut n) = plain(props, depth, budget)?;
            for _ in 0..bits & 0xFFFF {
                n = skip_name(props, n, version < 3)?;
            }
            n.checked_add(usize::try_from(base.checked_mul(u64::from(bits & 0xFFFF))?).ok()?)?
        }
        9 => {
            // Variable-length: one reference here; its items are of the base type (whose own
            // references, inside the heap's objects, are not followed here: left unchecked).
            let (base, n) = plain(props, depth, budget)?;
            let item = if bits & 0x0F == 1 { 1 } else { base };
            push(out, (at, item), budget)?;
            n
        }
        10 => {
            // Array: dimensions (and permutations before version 3), then the base type.
            let rank = usize::from(*props.first()?);
            let mut n = if version < 3 { 4 } else { 1 };
            let mut count = 1u64;
            for _ in 0..rank {
                count = count.checked_mul(le(props.get(n..n + 4)?))?;
                n += 4;
            }
            if version < 3 {
                n += 4 * rank;
            }
            if count == 0 {
                return None; // libhdf5 refuses such an array.
            }
            let mut inner = Vec::new();
            let (base, used) = walk(props.get(n..)?, 0, &mut inner, depth + 1, budget)?;
            repeat(out, &inner, at, base, count, budget)?;
            n + used
        }
        11 => plain(props, depth, budget)?.1, // complex: its base type (a float)
        _ => return None,
    };
    (used <= props.len()).then_some((size, 8 + used))
}

/// The members of a compound type of `size` bytes (`props`, `members` of them): each a name,
/// an offset and a type, in the encoding of `version`; gives the bytes they take.
fn compound(
    props: &[u8],
    at: u64,
    (size, members, version): (u64, u32, u8),
    out: &mut Vec<(u64, u64)>,
    depth: u32,
    budget: &mut usize,
) -> Option<usize> {
    // Version 3 stores offsets in as few bytes as the compound's size needs.
    let offset_len = match size {
        0..=0xFF => 1,
        0x100..=0xFFFF => 2,
        0x1_0000..=0xFF_FFFF => 3,
        _ => 4,
    };
    let mut n = 0;
    for _ in 0..members {
        n = skip_name(props, n, version < 3)?;
        let width = if version < 3 { 4 } else { offset_len };
        let offset = le(props.get(n..n + width)?);
        n += width;
        // Version 1: a member may be an array of up to 4 dimensions, given here.
        let mut count = 1u64;
        if version == 1 {
            let rank = usize::from(*props.get(n)?);
            for d in 0..rank.min(4) {
                let at = n + 12 + 4 * d;
                count = count.checked_mul(le(props.get(at..at + 4)?))?;
            }
            n += 28;
        }
        if count == 0 {
            return None;
        }
        let mut inner = Vec::new();
        let (member, used) = walk(props.get(n..)?, 0, &mut inner, depth + 1, budget)?;
        repeat(out, &inner, at.checked_add(offset)?, member, count, budget)?;
        n += used;
    }
    Some(n)
}

/// `count` copies of `inner` (the slots of an element of `size` bytes), one after the other
/// from `at`.
fn repeat(
    out: &mut Vec<(u64, u64)>,
    inner: &[(u64, u64)],
    at: u64,
    size: u64,
    count: u64,
    budget: &mut usize,
) -> Option<()> {
    if inner.is_empty() {
        return Some(());
    }
    for i in 0..count {
        let start = at.checked_add(i.checked_mul(size)?)?;
        for &(offset, item) in inner {
            push(out, (start.checked_add(offset)?, item), budget)?;
        }
    }
    Some(())
}

/// Adds a slot, if the walk's budget allows one more.
fn push(out: &mut Vec<(u64, u64)>, slot: (u64, u64), budget: &mut usize) -> Option<()> {
    *budget = budget.checked_sub(1)?;
    out.push(slot);
    Some(())
}

/// The size and encoded length of a type that holds no variable-length values (the base of an
/// enum, a complex number, a sequence); `None` when it does.
fn plain(b: &[u8], depth: u32, budget: &mut usize) -> Option<(u64, usize)> {
    let mut inner = Vec::new();
    let found = walk(b, 0, &mut inner, depth + 1, budget)?;
    inner.is_empty().then_some(found)
}

/// The position after the NUL-terminated name at `n` in `b` (padded to 8 bytes when `padded`).
fn skip_name(b: &[u8], n: usize, padded: bool) -> Option<usize> {
    let len = b.get(n..)?.iter().position(|&c| c == 0)? + 1;
    Some(n + if padded { len.div_ceil(8) * 8 } else { len })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::h5::corrupt::without_free_space;
    use crate::storage::h5::header::dataset_slots;
    use crate::storage::h5::heap::beside_libhdf5;
    use crate::storage::h5::read::read_raw_data;
    use crate::testutil::py_file;

    /// Datasets of every kind of element h5py writes with strings in it (as legacy anndata's
    /// compound obs and var), and some without.
    const SCRIPT: &str = "s = h5py.string_dtype()\n\
        kinds = {\n\
        \x20   'strings': s,\n\
        \x20   'compound': np.dtype([('a', '<i4'), ('s', s), ('b', '<f8'), ('t', s)]),\n\
        \x20   'nested': np.dtype([('x', '<i2'), ('inner', [('s', s), ('c', 'u1')]), ('arr', s, (2,))]),\n\
        \x20   'enum': np.dtype([('e', h5py.enum_dtype({'a': 0, 'b': 1}, basetype='i1')), ('s', s)]),\n\
        \x20   'sequences': h5py.vlen_dtype(np.dtype('<i4')),\n\
        \x20   'numbers': np.dtype('<f8'),\n\
        \x20   'fixed': np.dtype('S5'),\n\
        }\n\
        with h5py.File(path, 'w') as f:\n\
        \x20   for name, dt in kinds.items():\n\
        \x20       d = f.create_dataset(name, shape=(3,), dtype=dt)\n\
        \x20       if name == 'strings': d[...] = ['a', 'bb', '']\n\
        \x20       if name == 'compound': d[...] = [(i, 'x' * i, 0.5, 'é') for i in range(3)]\n\
        \x20       if name == 'nested': d[...] = [(i, ('y' * i, i), ('p', 'qq')) for i in range(3)]\n\
        \x20       if name == 'enum': d[...] = [(i % 2, 'z' * i) for i in range(3)]\n\
        \x20       if name == 'sequences': d[...] = [np.arange(i, dtype='<i4') for i in range(3)]\n";

    fn of(path: &std::path::Path, name: &str) -> Option<Slots> {
        let f = hdf5::File::open(path).unwrap();
        let ds = f.dataset(name).unwrap();
        let img = beside_libhdf5(&f).unwrap().unwrap();
        let addr = crate::storage::h5::header_address(&ds).unwrap();
        dataset_slots(&img, addr).unwrap()
    }

    #[test]
    fn the_stored_layout_of_every_kind_of_element() {
        let (_d, path) = py_file("kinds.h5", SCRIPT);
        let slots = |size, vlen: &[(u64, u64)]| {
            Some(Slots {
                size,
                vlen: vlen.to_vec(),
            })
        };
        assert_eq!(of(&path, "strings"), slots(16, &[(0, 1)]));
        // Each string 16 bytes in the file (8 in memory, where libhdf5 moves the members).
        assert_eq!(of(&path, "compound"), slots(44, &[(4, 1), (28, 1)]));
        assert_eq!(of(&path, "nested"), slots(51, &[(2, 1), (19, 1), (35, 1)]));
        assert_eq!(of(&path, "enum"), slots(17, &[(1, 1)]));
        assert_eq!(of(&path, "sequences"), slots(16, &[(0, 4)]));
        assert_eq!(of(&path, "numbers"), slots(8, &[]));
        assert_eq!(of(&path, "fixed"), slots(5, &[]));
        // And every one annpage reads (not compounds in compounds) reads as libhdf5 reads it:
        // no reference is refused.
        let f = hdf5::File::open(&path).unwrap();
        for name in ["strings", "compound", "enum", "numbers", "fixed"] {
            read_raw_data(&f.dataset(name).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    /// A committed (named) compound type with a string field, used by a dataset and an
    /// attribute: their datatype messages are shared, naming the type's own header.
    const COMMITTED: &str = "s = h5py.string_dtype()\n\
        with h5py.File(path, 'w') as f:\n\
        \x20   f['t'] = np.dtype([('a', '<i4'), ('s', s)])\n\
        \x20   t = f['t']\n\
        \x20   d = f.create_dataset('d', shape=(3,), dtype=t)\n\
        \x20   d[...] = [(i, 'x' * i) for i in range(3)]\n\
        \x20   f.attrs.create('a', data=np.array([(1, 'one')], dtype=t.dtype), dtype=t)\n";

    #[test]
    fn a_committed_datatype_is_followed_to_its_header() {
        let (_dir, path) = py_file("committed.h5", COMMITTED);
        assert_eq!(
            of(&path, "d"),
            Some(Slots {
                size: 20,
                vlen: vec![(4, 1)]
            })
        );
        let f = hdf5::File::open(&path).unwrap();
        let img = beside_libhdf5(&f).unwrap().unwrap();
        let root = crate::storage::h5::header_address(&f).unwrap();
        let attr = crate::storage::h5::header::attribute_data(&img, root, |n| n == b"a").unwrap();
        assert_eq!(attr.len(), 1);
        assert_eq!(attr[0].1.slots, of(&path, "d"));
        read_raw_data(&f.dataset("d").unwrap()).unwrap();
        // Over a collection that traps libhdf5: both refused.
        let f = without_free_space(&path);
        let err = read_raw_data(&f.dataset("d").unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("free space of 0 bytes"), "{err}");
        let err = crate::storage::h5::read::read_attr(&f, "a")
            .unwrap_err()
            .to_string();
        assert!(err.contains("free space of 0 bytes"), "{err}");
    }

    /// An array (version 3) of `count` variable-length strings, as a datatype message encodes
    /// it.
    fn array_of_strings(count: u32) -> Vec<u8> {
        let mut b = vec![0x3A, 0, 0, 0];
        b.extend(count.wrapping_mul(16).to_le_bytes());
        b.push(1); // rank
        b.extend(count.to_le_bytes());
        b.extend([0x19, 0x01, 0, 0, 16, 0, 0, 0]); // vlen string, 16 bytes
        b.extend([0x10, 0, 0, 0, 1, 0, 0, 0, 0, 0, 8, 0]); // its 1-byte characters
        b
    }

    #[test]
    fn claims_beyond_the_walks_budget_are_not_followed() {
        let two = slots(&array_of_strings(2)).unwrap().unwrap();
        assert_eq!((two.size, two.vlen), (32, vec![(0, 1), (16, 1)]));
        // Four billion strings: refused once the budget is spent (without it, 64 GiB of
        // slots).
        let err = slots(&array_of_strings(u32::MAX)).unwrap_err().to_string();
        assert!(
            err.contains("more than 65536 variable-length values"),
            "{err}"
        );
        // An empty array, which libhdf5 refuses.
        assert_eq!(slots(&array_of_strings(0)).unwrap(), None);
        // Cut short anywhere: not understood, never a panic.
        let b = array_of_strings(2);
        for n in 0..b.len() {
            assert_eq!(slots(&b[..n]).unwrap(), None, "{n} bytes");
        }
    }

    #[test]
    fn a_compound_over_a_collection_that_traps_libhdf5_is_refused() {
        let (_dir, path) = py_file("kinds.h5", SCRIPT);
        let f = without_free_space(&path);
        for name in ["compound", "nested", "enum"] {
            let err = read_raw_data(&f.dataset(name).unwrap())
                .unwrap_err()
                .to_string();
            assert!(err.contains("free space of 0 bytes"), "{name}: {err}");
        }
    }
}
