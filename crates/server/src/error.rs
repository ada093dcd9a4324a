//! Command errors as values. Each variant renders as the exact error line Redis sends, prefix
//! included, because clients branch on the prefix (`WRONGTYPE`, `NOAUTH`, `EXECABORT`…).

use std::borrow::Cow;
use std::fmt;

/// Why a command failed. The reply is `-{self}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmdError {
    WrongType,
    Syntax,
    NotInteger,
    NotFloat,
    Overflow,
    NoSuchKey,
    OutOfRange,
    /// "wrong number of arguments" for the full command name (e.g. `config|get`).
    Arity(String),
    /// Any other error: the full line including its prefix, e.g. "ERR invalid expire time in 'set' command".
    Msg(Cow<'static, str>),
}

/// The result every command handler returns; the reply itself is written into the context.
pub type CmdResult = Result<(), CmdError>;

impl CmdError {
    /// An error from a full message line (prefix included).
    pub fn msg(s: impl Into<Cow<'static, str>>) -> CmdError {
        CmdError::Msg(s.into())
    }
}

impl fmt::Display for CmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmdError::WrongType => {
                f.write_str("WRONGTYPE Operation against a key holding the wrong kind of value")
            }
            CmdError::Syntax => f.write_str("ERR syntax error"),
            CmdError::NotInteger => f.write_str("ERR value is not an integer or out of range"),
            CmdError::NotFloat => f.write_str("ERR value is not a valid float"),
            CmdError::Overflow => f.write_str("ERR increment or decrement would overflow"),
            CmdError::NoSuchKey => f.write_str("ERR no such key"),
            CmdError::OutOfRange => f.write_str("ERR index out of range"),
            CmdError::Arity(name) => {
                write!(f, "ERR wrong number of arguments for '{name}' command")
            }
            CmdError::Msg(m) => f.write_str(m),
        }
    }
}
