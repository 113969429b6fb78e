//! Attributes in dense storage: their messages kept in a fractal heap and indexed by name in a
//! version 2 B-tree, as libhdf5 stores them in a version 2 object header past 8 attributes or
//! for an attribute too large for the header.
//!
//! Read here only to find those messages (see [`super::header::attribute_data`]): every record
//! of the name index is visited, and the heap object it names is read from the direct block
//! (or, for a huge object, the span) that holds it, as libhdf5 finds it (each block's stored
//! offset must be the one worked out). Nothing is trusted: no B-tree node is read twice, all
//! reads together stay under twice the file's bytes, every count and offset is checked
//! against what holds it, and the doubling table's arithmetic is checked for overflow. What
//! libhdf5 would read another way than this module (a heap whose blocks are filtered, heap IDs
//! other than 8 bytes) is refused.

use std::collections::{HashMap, HashSet};

use super::chunks::check_span;
use super::heap::{le, Image};
use crate::{Error, Result};

/// Addresses and lengths are 8 bytes wide here (checked by the caller of the header walk).
const O: usize = 8;
/// An address no block has.
const UNDEFINED: u64 = u64::MAX;
/// The name index's record type, and that of a heap's index of huge objects.
const NAME_RECORDS: u8 = 8;
const HUGE_RECORDS: u8 = 1;
/// The flag of a name record whose message is shared (kept elsewhere, not read here).
const SHARED: u8 = 0x01;
/// The length of the heap IDs of attribute messages (libhdf5's `H5O_FHEAP_ID_LEN`).
const ID_LEN: usize = 8;

/// The bodies of the attribute messages stored densely: their heap's header at `heap`, their
/// name index's at `names`.
pub(super) fn attribute_messages(img: &Image, heap: u64, names: u64) -> Result<Vec<Vec<u8>>> {
    if heap == UNDEFINED {
        return Ok(Vec::new()); // Attributes in the header, if any.
    }
    let mut reads = Reads::new(img);
    let heap = Heap::read(&mut reads, heap)?;
    let mut messages = Vec::new();
    let mut huge = None;
    for record in records(&mut reads, names, NAME_RECORDS)? {
        // The heap ID (8 bytes, whatever the heap's header says: libhdf5 reads 8), the
        // message's flags, its creation order (4) and the name's hash (4).
        let (Some(id), Some(&flags)) = (record.get(..ID_LEN), record.get(ID_LEN)) else {
            return Err(bad(format!(
                "an attribute name record of {} bytes",
                record.len()
            )));
        };
        if flags & SHARED == 0 {
            messages.push(heap.object(&mut reads, id, &mut huge)?);
        }
    }
    Ok(messages)
}

/// The reads of one walk: each address read once, all of them together at most twice the
/// file's bytes.
struct Reads<'a> {
    img: &'a Image,
    seen: HashSet<u64>,
    left: u64,
}

impl<'a> Reads<'a> {
    fn new(img: &'a Image) -> Self {
        Reads {
            img,
            seen: HashSet::new(),
            left: img.len().saturating_mul(2),
        }
    }

    /// `len` bytes at `addr`, which no other read of this walk has started at.
    fn once(&mut self, addr: u64, len: u64, what: &str) -> Result<Vec<u8>> {
        if !self.seen.insert(addr) {
            return Err(bad(format!("{what} at {addr} is reached twice")));
        }
        self.span(addr, len, what)
    }

    /// `len` bytes at `addr`.
    fn span(&mut self, addr: u64, len: u64, what: &str) -> Result<Vec<u8>> {
        check_span(addr, len, self.img.len(), what)?;
        self.left = self.left.checked_sub(len).ok_or_else(|| {
            bad(format!(
                "its dense attribute storage claims more bytes than the file holds ({what} at {addr})"
            ))
        })?;
        let mut buf = vec![0u8; len as usize];
        self.img.read(addr, &mut buf, what)?;
        Ok(buf)
    }
}

fn bad(what: String) -> Error {
    Error::malformed(what)
}

/// The little-endian integer of `width` bytes at `at` in `b`, if it is there.
fn int(b: &[u8], at: usize, width: usize) -> Option<u64> {
    b.get(at..at + width).map(le)
}

/// Every record (its bytes) of the version 2 B-tree whose header is at `addr`, of records of
/// type `kind`.
fn records(reads: &mut Reads, addr: u64, kind: u8) -> Result<Vec<Vec<u8>>> {
    if addr == UNDEFINED {
        return Ok(Vec::new());
    }
    let h = reads.once(
        addr,
        (4 + 2 + 4 + 2 + 2 + 2 + O + 2 + O + 4) as u64,
        "a B-tree header",
    )?;
    let malformed = || bad(format!("no B-tree of type {kind} at {addr}"));
    if &h[..4] != b"BTHD" || h[4] != 0 || h[5] != kind {
        return Err(malformed());
    }
    let (node_size, record_size) = (le(&h[6..10]), le(&h[10..12]) as usize);
    let depth = le(&h[12..14]) as usize;
    let (root, root_records) = (le(&h[16..24]), le(&h[24..26]));
    // A node is its prefix (signature, version, type) and checksum around its contents.
    let capacity = node_size
        .checked_sub(10)
        .filter(|_| record_size > 0)
        .ok_or_else(malformed)?;
    // libhdf5's sizes of the counts in an internal node: of the records of a child, by the
    // most a leaf holds; of all records under a child, by the most under a node of its depth.
    let enc = |n: u64| (n.max(1).ilog2() / 8 + 1) as usize;
    let leaf_max = capacity / record_size as u64;
    let count_size = enc(leaf_max);
    if depth > 64 {
        return Err(malformed());
    }
    let mut under = vec![(leaf_max, 0usize)]; // (most records under a node, size of that count)
    for d in 1..=depth {
        let (below, below_size) = under[d - 1];
        // libhdf5's `H5B2_NUM_INT_REC`: room for one more child pointer than records.
        let pointer = (O + count_size + below_size) as u64;
        let max =
            capacity.checked_sub(pointer).ok_or_else(malformed)? / (record_size as u64 + pointer);
        let all = max
            .checked_add(1)
            .and_then(|m| m.checked_mul(below))
            .and_then(|m| m.checked_add(max))
            .ok_or_else(malformed)?;
        under.push((all, enc(all)));
    }
    let mut out = Vec::new();
    let mut pending = vec![(root, root_records, depth)];
    while let Some((node, count, depth)) = pending.pop() {
        if count == 0 || node == UNDEFINED {
            continue;
        }
        let b = reads.once(node, node_size, "a B-tree node")?;
        let signature: &[u8] = if depth == 0 { b"BTLF" } else { b"BTIN" };
        if &b[..4] != signature || b[5] != kind {
            return Err(bad(format!("no B-tree node at {node}")));
        }
        let cut = || bad(format!("the B-tree node at {node} is cut short"));
        let start = 6;
        let records_end = (count as usize)
            .checked_mul(record_size)
            .and_then(|n| n.checked_add(start))
            .filter(|&end| end as u64 <= node_size)
            .ok_or_else(cut)?;
        out.extend(
            b[start..records_end]
                .chunks_exact(record_size)
                .map(<[u8]>::to_vec),
        );
        if depth > 0 {
            let total_size = if depth > 1 { under[depth - 1].1 } else { 0 };
            let mut at = records_end;
            for _ in 0..=count {
                let child = int(&b, at, O).ok_or_else(cut)?;
                let n = int(&b, at + O, count_size).ok_or_else(cut)?;
                at += O + count_size + total_size;
                pending.push((child, n, depth - 1));
            }
        }
    }
    Ok(out)
}

/// What is needed of a fractal heap's header to find its objects.
struct Heap {
    addr: u64,
    /// The sizes of an object's offset and length in a managed object's ID.
    off_size: usize,
    len_size: usize,
    /// The doubling table: blocks per row, the first rows' block size, how many rows hold
    /// direct blocks.
    width: u64,
    start: u64,
    direct_rows: u64,
    /// Direct blocks hold a checksum after their block offset.
    checksummed: bool,
    root: u64,
    root_rows: u64,
    huge_index: u64,
}

impl Heap {
    /// The heap whose header is at `addr`.
    fn read(reads: &mut Reads, addr: u64) -> Result<Heap> {
        let b = reads.once(addr, 142, "a fractal heap header")?;
        let malformed = |what: &str| bad(format!("the fractal heap at {addr}: {what}"));
        if &b[..4] != b"FRHP" || b[4] != 0 {
            return Err(malformed("no fractal heap header"));
        }
        if le(&b[7..9]) != 0 {
            // libhdf5 never writes one for attributes (and reads it through its filters).
            return Err(malformed(
                "its blocks are filtered, which annpage does not read",
            ));
        }
        let (id_len, flags, max_managed) = (le(&b[5..7]), b[9], le(&b[10..14]));
        let (width, start, max_direct) = (le(&b[110..112]), le(&b[112..120]), le(&b[120..128]));
        let heap_bits = le(&b[128..130]);
        let pow2 = |n: u64| n.is_power_of_two();
        if !(pow2(width) && pow2(start) && pow2(max_direct) && start <= max_direct) {
            return Err(malformed("its doubling table is not one libhdf5 builds"));
        }
        if !(1..=64).contains(&heap_bits) || max_managed == 0 || id_len != ID_LEN as u64 {
            return Err(malformed("its sizes are not ones libhdf5 builds"));
        }
        let off_size = heap_bits.div_ceil(8) as usize;
        let len_size =
            (max_direct.ilog2().div_ceil(8) as usize).min((max_managed.ilog2() / 8 + 1) as usize);
        Ok(Heap {
            addr,
            off_size,
            len_size,
            width,
            start,
            direct_rows: u64::from(max_direct.ilog2() - start.ilog2()) + 2,
            checksummed: flags & 0x02 != 0,
            root: le(&b[132..140]),
            root_rows: le(&b[140..142]),
            huge_index: le(&b[22..30]),
        })
    }

    /// The object of heap ID `id`: managed (in a direct block) or huge (its own span, found
    /// through the heap's index of huge objects, read into `huge` once).
    fn object(
        &self,
        reads: &mut Reads,
        id: &[u8],
        huge: &mut Option<HashMap<u64, (u64, u64)>>,
    ) -> Result<Vec<u8>> {
        let malformed = || bad(format!("a heap ID of the fractal heap at {}", self.addr));
        match id[0] >> 4 {
            0 => {
                let off = int(id, 1, self.off_size).ok_or_else(malformed)?;
                let len = int(id, 1 + self.off_size, self.len_size).ok_or_else(malformed)?;
                self.managed(reads, off, len)
            }
            // Huge: an 8-byte ID has no room for the object's span (libhdf5 then keeps it in
            // an index of huge objects, by the ID's other 7 bytes).
            1 => {
                let key = le(&id[1..]);
                if huge.is_none() {
                    let mut index = HashMap::new();
                    for r in records(reads, self.huge_index, HUGE_RECORDS)? {
                        let [Some(addr), Some(len), Some(key)] = [0, 8, 16].map(|a| int(&r, a, 8))
                        else {
                            return Err(malformed());
                        };
                        if index.insert(key, (addr, len)).is_some() {
                            return Err(bad(format!(
                                "huge object {key} of the fractal heap at {} is indexed twice",
                                self.addr
                            )));
                        }
                    }
                    *huge = Some(index);
                }
                let &(addr, len) = huge.as_ref().and_then(|h| h.get(&key)).ok_or_else(|| {
                    bad(format!(
                        "huge object {key} of the fractal heap at {} is not in its index",
                        self.addr
                    ))
                })?;
                reads.span(addr, len, "a huge fractal heap object")
            }
            _ => Err(malformed()),
        }
    }

    /// The block size of row `row` of the doubling table, and the offset (in its block's
    /// space) where the row starts.
    fn row(&self, row: u64) -> Option<(u64, u64)> {
        if row == 0 {
            return Some((self.start, 0));
        }
        let doubled = 1u64.checked_shl(u32::try_from(row - 1).ok()?)?;
        let first = self.start.checked_mul(self.width)?;
        Some((
            self.start.checked_mul(doubled)?,
            first.checked_mul(doubled)?,
        ))
    }

    /// The `len` bytes at heap offset `off`, from the direct block holding them.
    fn managed(&self, reads: &mut Reads, off: u64, len: u64) -> Result<Vec<u8>> {
        let malformed = |what: &str| {
            bad(format!(
                "object at offset {off} of the fractal heap at {}: {what}",
                self.addr
            ))
        };
        // Down the indirect blocks from the root: (block, its offset in the heap, its rows).
        let (mut block, mut block_off, mut rows) = (self.root, 0u64, self.root_rows);
        let mut block_size = self.start;
        while rows > 0 {
            self.check_prefix(reads, block, b"FHIB", block_off)?;
            let rel = off - block_off;
            let (row, col) = self
                .locate(rel)
                .ok_or_else(|| malformed("outside the heap"))?;
            if row >= rows {
                return Err(malformed("outside its indirect block"));
            }
            let entry = self
                .entry(reads, block, rows, row * self.width + col)?
                .ok_or_else(|| malformed("in a block never written"))?;
            let (size, row_off) = self.row(row).ok_or_else(|| malformed("outside the heap"))?;
            block_off += row_off + col * size;
            (block, block_size) = (entry, size);
            // A child indirect block has fewer rows than its parent (`row` less the width's
            // bits): the descent ends.
            rows = if row < self.direct_rows {
                0
            } else {
                (size.ilog2() + 1)
                    .checked_sub(self.start.ilog2() + self.width.ilog2())
                    .map(u64::from)
                    .filter(|&r| r > 0)
                    .ok_or_else(|| malformed("in an indirect block of no rows"))?
            };
        }
        if block == UNDEFINED {
            return Err(malformed("the heap has no blocks"));
        }
        self.check_prefix(reads, block, b"FHDB", block_off)?;
        let prefix = 4 + 1 + O + self.off_size + if self.checksummed { 4 } else { 0 };
        let at = off - block_off;
        if at < prefix as u64 || at.saturating_add(len) > block_size {
            return Err(malformed("not inside its direct block"));
        }
        check_span(
            block,
            block_size,
            reads.img.len(),
            "a fractal heap direct block",
        )?;
        reads.span(block + at, len, "a fractal heap object")
    }

    /// The (row, column) of heap offset `rel` in a block's doubling table.
    fn locate(&self, rel: u64) -> Option<(u64, u64)> {
        let first = self.start.checked_mul(self.width)?;
        if rel < first {
            return Some((0, rel / self.start));
        }
        let high = u64::from(rel.ilog2());
        let row = high - u64::from(first.ilog2()) + 1;
        let (size, row_off) = self.row(row)?;
        Some((row, (rel - row_off) / size))
    }

    /// Checks that the block at `addr` starts as a block of this heap (`signature`, version 0,
    /// the heap's address) whose offset in the heap is `offset`: libhdf5 places objects by the
    /// offset a block stores, annpage by the one it works out, and the two must agree.
    fn check_prefix(
        &self,
        reads: &mut Reads,
        addr: u64,
        signature: &[u8; 4],
        offset: u64,
    ) -> Result<()> {
        let len = 4 + 1 + O + self.off_size;
        let b = reads.span(addr, len as u64, "a fractal heap block")?;
        let stored = le(&b[5 + O..]);
        if &b[..4] != signature || b[4] != 0 || le(&b[5..5 + O]) != self.addr || stored != offset {
            return Err(bad(format!(
                "no block of the fractal heap at {} at {addr} for heap offset {offset} ({} \
                 at {stored})",
                self.addr,
                String::from_utf8_lossy(&b[..4])
            )));
        }
        Ok(())
    }

    /// Entry `k` (a child's address) of the indirect block at `addr` of `rows` rows, or `None`
    /// for a child never written.
    fn entry(&self, reads: &mut Reads, addr: u64, rows: u64, k: u64) -> Result<Option<u64>> {
        let prefix = 4 + 1 + O as u64 + self.off_size as u64;
        let at = prefix + k * O as u64;
        let entries = rows.saturating_mul(self.width);
        if k >= entries {
            return Err(bad(format!(
                "the indirect block at {addr} has no entry {k}"
            )));
        }
        let child = le(&reads.span(addr + at, O as u64, "a fractal heap indirect block")?);
        Ok((child != UNDEFINED).then_some(child))
    }
}
