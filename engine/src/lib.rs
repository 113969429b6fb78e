//! Storage layer of annpage.
//!
//! Layers, bottom up (see `docs/architecture.md`):
//! - [`storage`]: groups, attributes and arrays behind one seam (HDF5 its first backend; the
//!   HDF5 types stay inside the crate);
//! - [`data`]: in-memory values of AnnData elements (arrays, sparse matrices, data frames, trees);
//! - [`format`](mod@format): the AnnData on-disk encodings: reading and writing elements, legacy layouts;
//! - [`select`]: selections along one axis and the normalised indexes they resolve to;
//! - [`cache`]: a thread-safe LRU cache bounded in bytes;
//! - [`paged`]: the chunk manager: matrices paged in on demand, block by block, through that cache;
//! - [`file`](mod@file): a file as a tree of elements named by path: the one metadata probe, element
//!   reads, streaming writes and copies (nothing above it sees HDF5).
//!
//! Most users want the `annpage` crate, which builds `AnnData` on top of this one.
#![deny(missing_docs, missing_debug_implementations)]

pub mod cache;
pub mod data;
pub mod error;
pub mod file;
pub mod format;
pub mod memory;
pub mod paged;
pub mod select;
pub mod storage;
#[cfg(test)]
mod testutil;

pub use error::{Error, Result};
