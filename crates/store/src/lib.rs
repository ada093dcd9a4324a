//! flowkv's keyspace: shards, entries, value encodings and expiry. No sockets, no protocol:
//! the server crate drives it, and it can be tested and benchmarked on its own.

pub mod bloom;
pub mod cache_value;
pub mod dict;
pub mod entry;
pub mod evict;
pub mod glob;
pub mod hash;
pub mod hash_value;
pub mod hll;
pub mod keyspace;
pub mod list_value;
pub mod listpack;
pub mod num;
pub mod set_value;
pub mod snapshot;
pub mod stream_value;
pub mod table;
pub mod value;
pub mod zset_value;

pub use entry::{Entry, Kind};
pub use keyspace::{Expire, KeyStats, Keys, Keyspace, Locked, ShardSet};
pub use value::{Value, ValueMut, ValueRef};
