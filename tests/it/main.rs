//! Integration tests, one module per topic.

mod backed;
mod collection;
mod concat;
mod fixtures;
mod object_api;
