//! What values take in memory: the bytes a cache or a budget charges for them (their
//! allocations' sizes; a string counts its `String` and its capacity, allocators' overheads
//! aside).

use std::mem::{size_of, size_of_val};

use super::{
    ArrayData, Categorical, Column, DataFrame, Element, Matrix, Nullable, RawData, RawNode,
    SparseMatrix,
};

impl ArrayData {
    /// About the bytes the values take in memory.
    ///
    /// ```
    /// use annpage_engine::data::ArrayData;
    /// assert_eq!(ArrayData::from(vec![1.0f32; 10]).heap_bytes(), 40);
    /// // Short strings are held inline, longer ones in an allocation of their own.
    /// assert_eq!(ArrayData::from(vec!["a"; 2]).heap_bytes(), 2 * 24);
    /// assert!(ArrayData::from(vec!["a".repeat(100)]).heap_bytes() >= 24 + 100);
    /// ```
    pub fn heap_bytes(&self) -> usize {
        match self {
            ArrayData::String(s) => s.iter().map(|v| size_of_val(v) + spilled(v)).sum(),
            other => other.len() * other.dtype().size(),
        }
    }
}

/// The bytes of a string held outside its inline space (none up to 24 bytes).
fn spilled(s: &super::CompactString) -> usize {
    if s.is_heap_allocated() {
        s.capacity()
    } else {
        0
    }
}

impl SparseMatrix {
    /// About the bytes the matrix takes in memory (offsets, indices and values).
    pub fn heap_bytes(&self) -> usize {
        size_of_val(self.indptr()) + size_of_val(self.indices()) + self.data().heap_bytes()
    }
}

impl Matrix {
    /// About the bytes the matrix takes in memory.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Matrix::Dense(a) => a.heap_bytes(),
            Matrix::Sparse(s) => s.heap_bytes(),
        }
    }
}

impl Categorical {
    /// About the bytes the codes and categories take in memory.
    pub fn heap_bytes(&self) -> usize {
        self.codes.len() * size_of::<i32>() + self.categories.heap_bytes()
    }
}

impl Nullable {
    /// About the bytes the values and the mask take in memory.
    pub fn heap_bytes(&self) -> usize {
        self.values().heap_bytes() + self.mask().len()
    }
}

impl Column {
    /// About the bytes the column takes in memory.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Column::Array(a) => a.heap_bytes(),
            Column::Categorical(c) => c.heap_bytes(),
            Column::Nullable(n) => n.heap_bytes(),
        }
    }
}

impl DataFrame {
    /// About the bytes the index and columns take in memory.
    pub fn heap_bytes(&self) -> usize {
        let columns: usize = self
            .columns()
            .iter()
            .map(|(name, c)| name.len() + c.heap_bytes())
            .sum();
        self.index().heap_bytes() + columns
    }
}

impl Element {
    /// About the bytes the element takes in memory (a mapping's entries counted in full).
    pub fn heap_bytes(&self) -> usize {
        match self {
            Element::Array(a) => a.heap_bytes(),
            Element::Sparse(s) => s.heap_bytes(),
            Element::DataFrame(d) => d.heap_bytes(),
            Element::Categorical(c) => c.heap_bytes(),
            Element::Nullable(n) => n.heap_bytes(),
            Element::Scalar(_) => size_of::<Element>(),
            Element::Dict(m) => m.iter().map(|(k, v)| k.len() + v.heap_bytes()).sum(),
            Element::Opaque(node) => node.heap_bytes(),
        }
    }
}

impl RawNode {
    /// About the bytes the node, its attributes and members take in memory.
    pub fn heap_bytes(&self) -> usize {
        let (attrs, own) = match self {
            RawNode::Group { attrs, children } => (
                attrs,
                children
                    .iter()
                    .map(|(k, c)| k.len() + c.heap_bytes())
                    .sum::<usize>(),
            ),
            RawNode::Dataset { attrs, data } => (
                attrs,
                match data {
                    RawData::Array(a) => a.heap_bytes(),
                    RawData::Compound { fields, .. } => {
                        fields.iter().map(|(k, a)| k.len() + a.heap_bytes()).sum()
                    }
                },
            ),
        };
        own + attrs
            .iter()
            .map(|(k, v)| k.len() + v.heap_bytes())
            .sum::<usize>()
    }
}
