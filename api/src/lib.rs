//! annpage: an out-of-core storage engine for AnnData.
#![deny(missing_docs)]

pub use annpage_engine::data;
pub use annpage_engine::{Error, Result};
