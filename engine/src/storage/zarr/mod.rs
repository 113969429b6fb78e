//! Zarr (v2 and v3) directory stores as a storage backend, through `zarrs`.
pub(crate) mod write;
