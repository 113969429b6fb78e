//! HDF5 groups and datasets as writers of the storage seam ([`GroupWriter`],
//! [`ArrayWriter`]), through the h5py-compatible writers of [`super::write`].

use std::any::Any;

use super::write;
use crate::data::{ArrayData, AttrValue, DType, RawData};
use crate::storage::{ArrayOptions, ArrayWriter, AttrWriter, GroupWriter};
use crate::Result;

impl AttrWriter for hdf5::Group {
    fn path(&self) -> String {
        self.name()
    }

    fn set_attr(&self, name: &str, value: &AttrValue) -> Result<()> {
        write::write_attr(self, name, value)
    }
}

impl GroupWriter for hdf5::Group {
    fn contains(&self, name: &str) -> Result<bool> {
        Ok(self.link_exists(name))
    }

    fn remove(&self, name: &str) -> Result<()> {
        if self.link_exists(name) {
            self.unlink(name)?;
        }
        Ok(())
    }

    fn create_group(&self, name: &str) -> Result<Box<dyn GroupWriter>> {
        Ok(Box::new(hdf5::Group::create_group(self, name)?))
    }

    fn open_group(&self, name: &str) -> Result<Box<dyn GroupWriter>> {
        Ok(Box::new(hdf5::Group::group(self, name)?))
    }

    fn create_array(
        &self,
        name: &str,
        dtype: DType,
        shape: &[usize],
        options: &ArrayOptions,
    ) -> Result<Box<dyn ArrayWriter>> {
        Ok(Box::new(write::create_array(
            self, name, dtype, shape, options,
        )?))
    }

    fn write_array(
        &self,
        name: &str,
        data: &ArrayData,
        options: &ArrayOptions,
    ) -> Result<Box<dyn ArrayWriter>> {
        Ok(Box::new(write::write_array(self, name, data, options)?))
    }

    fn write_null(&self, name: &str, dtype: DType) -> Result<Box<dyn ArrayWriter>> {
        Ok(Box::new(write::create_null_dataset(self, name, dtype)?))
    }

    fn write_raw(
        &self,
        name: &str,
        data: &RawData,
        options: &ArrayOptions,
    ) -> Result<Box<dyn ArrayWriter>> {
        Ok(Box::new(write::write_raw_data(self, name, data, options)?))
    }
}

impl AttrWriter for hdf5::Dataset {
    fn path(&self) -> String {
        self.name()
    }

    fn set_attr(&self, name: &str, value: &AttrValue) -> Result<()> {
        write::write_attr(self, name, value)
    }
}

impl ArrayWriter for hdf5::Dataset {
    fn write_rows(&self, start: usize, rows: &ArrayData) -> Result<()> {
        write::write_rows(self, start, rows)
    }

    fn append_rows(&self, rows: &ArrayData) -> Result<usize> {
        write::append_rows(self, rows)
    }

    fn chunk_rows(&self) -> Option<usize> {
        self.chunk().and_then(|c| c.first().copied())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
