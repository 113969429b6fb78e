//! Writing [`crate::data::ArrayData`] as HDF5 datasets and attributes, as h5py does.
