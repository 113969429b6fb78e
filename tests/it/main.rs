//! Integration tests, one module per topic.

mod cache;
mod collection;
mod concat;
mod edit;
mod fixtures;
mod object_api;
mod open;
mod parity;
mod serve;
mod support;
mod write;
