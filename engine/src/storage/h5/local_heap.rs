//! An old-style group's local heap (where its members' names are), checked before libhdf5
//! reads it.

use super::chunks::check_span;
use super::heap::{beside_libhdf5, le, Image};
use crate::memory::check_memory;
use crate::{Error, Result};

/// Checks the local heap of group `g` (an old-style group's names) before libhdf5 reads it:
/// libhdf5 2.2 follows the heap's list of free blocks without looking for a loop, allocating a
/// node a step, so a list that comes back on itself takes all the memory there is.
pub(crate) fn check_group(g: &hdf5::Group) -> Result<()> {
    let Some(img) = beside_libhdf5(&g.file()?)? else {
        return Ok(());
    };
    let addr = super::header_address(g)?;
    match super::header::symbol_table_heap(&img, addr)? {
        Some(heap) => check_local_heap(&img, heap),
        None => Ok(()),
    }
}

/// Walks the free list of the local heap at `addr` as libhdf5 does, refusing one that visits
/// more blocks than the heap can hold (at least 16 bytes each): a loop. What libhdf5 refuses
/// by itself (a bad signature, a block past the end) is left to it.
fn check_local_heap(img: &Image, addr: u64) -> Result<()> {
    /// libhdf5's end of the free list.
    const END: u64 = 1;
    let mut head = [0u8; 32];
    img.read(addr, &mut head, "a local heap")?;
    let (size, mut free, data) = (le(&head[8..16]), le(&head[16..24]), le(&head[24..32]));
    if &head[..4] != b"HEAP" || free == END {
        return Ok(());
    }
    check_span(data, size, img.len(), "a local heap's data")?;
    check_memory(size, "reading a local heap")?;
    let mut bytes = vec![0u8; size as usize];
    img.read(data, &mut bytes, "a local heap's data")?;
    let mut steps = 0u64;
    while free != END {
        steps += 1;
        if steps > size / 16 + 1 {
            return Err(Error::malformed(format!(
                "the free list of the local heap at {addr} loops"
            )));
        }
        let Some(block) = free
            .checked_add(16)
            .filter(|&end| end <= size)
            .map(|end| &bytes[free as usize..end as usize])
        else {
            return Ok(());
        };
        free = le(&block[..8]);
        if free == 0 {
            return Ok(());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::h5::open_read;
    use crate::testutil::py_file;

    #[test]
    fn a_free_list_that_loops_is_refused_before_libhdf5_follows_it() {
        // Old-style groups (h5py's default): each keeps its names in a local heap.
        let script = "with h5py.File(path, 'w') as f:\n\
            \x20   g = f.create_group('g')\n\
            \x20   for name in ['a', 'bb', 'ccc']:\n\
            \x20       g.create_group(name)\n";
        let (_dir, path) = py_file("groups.h5", script);
        let f = open_read(&path).unwrap();
        assert_eq!(
            f.group("g").unwrap().member_names().unwrap(),
            ["a", "bb", "ccc"]
        );
        drop(f);
        // Every heap with free blocks: its first free block made to point at itself.
        let mut bytes = std::fs::read(&path).unwrap();
        let heaps: Vec<usize> = bytes
            .windows(4)
            .enumerate()
            .filter(|(_, w)| w == b"HEAP")
            .map(|(i, _)| i)
            .collect();
        let mut looped = 0;
        for at in heaps {
            let free = le(&bytes[at + 16..at + 24]);
            let data = le(&bytes[at + 24..at + 32]) as usize;
            if free != 1 {
                let block = data + free as usize;
                bytes[block..block + 8].copy_from_slice(&free.to_le_bytes());
                looped += 1;
            }
        }
        assert!(looped > 0, "no heap with a free block");
        let copy = path.with_file_name("looped.h5");
        std::fs::write(&copy, bytes).unwrap();
        // The root's heap is checked as the file opens, a group's as it is opened.
        let err = open_read(&copy)
            .and_then(|f| crate::storage::Group::group(&*f, "g").map(drop))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("free list of the local heap at") && err.contains("loops"),
            "{err}"
        );
    }
}
