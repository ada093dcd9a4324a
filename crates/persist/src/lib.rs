//! flowkv's persistence formats: Redis-compatible RDB files and DUMP payloads, read and
//! written with Redis 7.0's exact byte layouts, so files and payloads move between flowkv
//! and Redis in both directions.
//!
//! - [`write`]: the encodings Redis 7.0 writes (RDB version 10).
//! - [`read`]: those plus every older encoding (RDB 9 and below), with bounds checks
//!   everywhere: corrupt input is an error, never a panic.
//! - [`listpack`], [`packed`]: Redis's listpack, intset, ziplist and zipmap blob formats.
#![forbid(unsafe_code)]

pub mod aof;
pub mod error;
pub mod format;
pub mod listpack;
mod lzf;
mod module;
pub mod packed;
pub mod read;
mod stream;
pub mod write;

pub use error::{Error, Result};
pub use format::RDB_VERSION;
pub use read::{load, load_with_aux, restore_payload, Limits, LoadInfo, Object, RestoreError};
pub use write::{
    dump_payload, write_entry, write_function, write_select_db, FileInfo, FileWriter, WriteOptions,
};

#[cfg(test)]
mod tests;
