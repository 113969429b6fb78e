//! Integration tests, one module per topic.

mod concat;
mod fixtures;
mod object_api;
