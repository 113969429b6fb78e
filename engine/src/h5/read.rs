//! Reading HDF5 datasets and attributes into [`crate::data::ArrayData`].
