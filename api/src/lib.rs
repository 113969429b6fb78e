//! annpage: an out-of-core storage engine for AnnData (`.h5ad`) files.
//!
//! Build an [`AnnData`] in memory (or read one with [`read_h5ad`]), select cells and genes,
//! and take the subset:
//!
//! ```
//! use annpage::data::{ArrayData, Column, Matrix};
//! use annpage::{AnnData, Selection};
//!
//! // 4 cells × 3 genes.
//! let mut adata = AnnData::new(4, 3);
//! adata.set_var_names(vec!["CD3E", "MS4A1", "LYZ"])?;
//! let counts = ndarray::arr2(&[[1.0f32, 0., 2.], [0., 3., 7.], [4., 0., 5.], [8., 6., 0.]]);
//! adata.set_x(Some(Matrix::Dense(ArrayData::from(counts))))?;
//! adata.obs_mut().insert("n_counts", Column::Array(ArrayData::from(vec![3i64, 10, 9, 14])))?;
//!
//! // Every other cell, backwards; two genes by name.
//! let sub = adata.subset(&Selection::slice(None, None, -2), &Selection::names(["LYZ", "CD3E"]))?;
//! assert_eq!(sub.shape(), (2, 2));
//! assert_eq!(sub.obs_names(), ["3", "1"]);
//! assert_eq!(
//!     sub.x(),
//!     Some(&Matrix::Dense(ArrayData::from(ndarray::arr2(&[[0.0f32, 8.], [7., 0.]]))))
//! );
//! assert_eq!(sub.obs().column("n_counts"), Some(&Column::Array(ArrayData::from(vec![14i64, 10]))));
//! # Ok::<(), annpage::Error>(())
//! ```
//!
//! Selections ([`Selection`]) follow numpy and anndata: Python slices with negative bounds and
//! steps, positions in any order with repeats, boolean masks and names. A [`AnnDataView`] is
//! a lazy subset that borrows its object; [`AnnDataView::to_adata`] (or [`AnnData::subset`])
//! copies it out, as `adata[obs, var].copy()` does in anndata.
#![deny(missing_docs, missing_debug_implementations)]

mod anndata;
pub mod backed;
mod concat;
mod formats;
mod frame;
mod io;
mod natsort;
pub mod panics;
pub mod query;
pub mod stats;
mod subset;
#[cfg(test)]
mod testdata;
mod transform;
mod validate;
mod vector;
mod view;

pub use annpage_engine::data;
pub use annpage_engine::error::ResultExt;
/// Describing a file's element tree from its metadata alone (what `annpage info` prints).
pub use annpage_engine::file::inspect;
pub use annpage_engine::format::write::staging::remove_own_temporaries;
pub use annpage_engine::format::{AnnDataElements, Compression, RawElements, WriteOptions};
pub use annpage_engine::select::{AxisIndex, IndexKind, Selection};
pub use annpage_engine::storage::{StoreKind, ZarrCompression, ZarrFormat, ZarrOptions};
pub use annpage_engine::{Error, Result};

pub use crate::anndata::{AnnData, Axis};
pub use crate::backed::{
    read_h5ad_backed, read_zarr_backed, BackedAnnData, BackedMatrixView, BackedOptions, Batch,
    BatchOptions, Batches, MatrixChunks, Mode, TransposedBacked, TransposedChunks,
    TransposedMatrix,
};
pub use crate::concat::{
    concat, concat_on_disk, concat_on_disk_observed, read_collection, BackedCollection,
    CollectionChunks, ConcatOptions, ConcatProgress, FillValue, Join, MergeStrategy,
};
pub use crate::formats::{
    convert_10x_h5, convert_loom, convert_mtx, read_10x_h5, read_10x_mtx, read_csv, read_loom,
    read_mtx, CsvOptions, FileFormat, FormatOptions, LoomOptions, TenxH5Options, TenxMtxOptions,
    VarNames,
};
pub use crate::frame::FrameMut;
pub use crate::io::{read_h5ad, read_zarr};
pub use crate::view::AnnDataView;

// Both can be shared across threads: they are plain data and borrows of it.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<AnnData>();
    assert_send_sync::<AnnDataView<'static>>();
    // Backed handles are shared by reader threads; chunk iterators move to worker threads.
    assert_send_sync::<BackedAnnData>();
    assert_send_sync::<BackedMatrixView>();
    assert_send_sync::<TransposedBacked>();
    const fn assert_send<T: Send>() {}
    assert_send::<MatrixChunks>();
};

/// The README's Rust examples, compiled by `cargo test --doc` so that they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExamples;
