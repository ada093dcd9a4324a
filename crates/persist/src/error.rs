//! Errors of the RDB reader and writer.

use std::fmt;

/// Why reading or writing an RDB file or DUMP payload failed.
#[derive(Debug)]
pub enum Error {
    /// The underlying file or socket failed.
    Io(std::io::Error),
    /// The data is not a valid RDB (bad bytes, bad checksum, impossible lengths…).
    Corrupt(String),
    /// Valid RDB data of a kind flowkv cannot hold yet (streams, module values…).
    Unsupported(String),
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// A corruption error with a short description of what was wrong.
pub fn corrupt(what: impl Into<String>) -> Error {
    Error::Corrupt(what.into())
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "{e}"),
            Error::Corrupt(what) => write!(f, "corrupt RDB data: {what}"),
            Error::Unsupported(what) => write!(f, "{what}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    /// A file that ends early is corrupt (truncated), not an I/O failure.
    fn from(e: std::io::Error) -> Error {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            corrupt("unexpected end of data (truncated file?)")
        } else {
            Error::Io(e)
        }
    }
}
