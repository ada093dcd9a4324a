//! RESP request parsing and reply encoding for flowkv.
//!
//! This crate is the wire layer of the server and nothing else: it never
//! touches sockets or the keyspace, so it can be tested, fuzzed and
//! benchmarked on plain byte buffers.
//!
//! * [`Parser`] turns the bytes a client sent into commands. It is
//!   resumable (partial input is never rescanned) and zero-copy: a command's
//!   [`Args`] are spans into the connection's query buffer.
//! * [`Reply`] appends RESP2 or RESP3 replies to the connection's output
//!   buffer; RESP3-only types are downgraded for RESP2 clients.
//! * [`num`] holds the strict integer parser and the allocation-free
//!   integer formatting both sides share.
//!
//! Behaviour (limits, error texts, inline quoting rules, number formats)
//! follows Redis 7.0 so that existing clients and test suites see the same
//! bytes.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod args;
pub mod num;
pub mod parse;
pub mod reply;

pub use args::{Args, ArgsIter, OwnedArgs};
pub use parse::{split_inline, split_words, Limits, Parsed, Parser, ProtocolError};
pub use reply::{format_double, Proto, Reply};
