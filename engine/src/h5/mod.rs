//! Typed access to HDF5 files through `hdf5-metno`: the only module that talks to libhdf5.
//!
//! [`read`] turns datasets and attributes of any dtype anndata (or a legacy writer) uses into
//! [`crate::data::ArrayData`]; [`write`] creates datasets and attributes exactly as h5py does
//! (bools as an int8 enum, strings as variable-length UTF-8, chunked compressed datasets).
//! [`types`] classifies stored datatypes.

pub mod read;
pub mod types;
pub mod write;
