//! The entry points the fuzz targets call, shared with the replay test of the main
//! workspace (`tests/fuzz_replay.rs` includes the same files).

#[path = "../../src/images.rs"]
#[allow(dead_code)]
pub mod images;

pub mod entries;
