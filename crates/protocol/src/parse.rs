//! Resumable RESP request parser.
//!
//! Requests arrive in two shapes, chosen by the first byte of a command:
//!
//! * **multibulk** (`*`): `*<n>\r\n` followed by `n` times `$<len>\r\n<bytes>\r\n`.
//!   This is what every client library sends. Arguments are binary-safe and
//!   are returned as spans into the caller's buffer: nothing is copied.
//! * **inline** (anything else): one line split on whitespace with
//!   shell-like quoting, for humans typing into telnet. Quoting can change
//!   the bytes (escapes), so inline arguments are unescaped into a scratch
//!   buffer owned by the parser.
//!
//! The parser is *resumable*: when a command is not complete it records how
//! far it got (the offset of the next unparsed header, the length of a bulk
//! whose payload is still arriving, where the line-terminator search stopped)
//! and the next call continues from there. A command with a million
//! arguments trickling in over many reads therefore costs O(total bytes),
//! not O(bytes x reads).
//!
//! Error texts, limits and edge cases follow Redis 7.0's request reader; the
//! few places that knowingly differ are called out on [`Parser`].

use std::fmt;

use memchr::memchr;

use crate::args::Args;
use crate::num::parse_i64;

/// Longest header or inline line that may sit in the buffer without its
/// terminator before the request is rejected (Redis's inline-size limit,
/// 64 KiB). It bounds how much a client can make us buffer and rescan while
/// we wait for a newline that may never come.
pub const MAX_INLINE_SIZE: usize = 64 * 1024;

/// Before authentication a multibulk may have at most this many arguments,
/// so an unauthenticated client cannot make the server reserve big argument
/// arrays (same value as Redis).
pub const UNAUTH_MAX_MULTIBULK_LEN: i64 = 10;

/// Before authentication a bulk may be at most this long (same as Redis),
/// so an unauthenticated client cannot make the server buffer large payloads.
pub const UNAUTH_MAX_BULK_LEN: i64 = 16 * 1024;

/// Spans are `u32` offsets, so no more than this many bytes of a buffer
/// are ever looked at for one command.
const MAX_SPAN_OFFSET: usize = u32::MAX as usize;

/// Span arrays are reserved for at most this many arguments up front; a
/// header claiming a million arguments does not get to allocate for them
/// before it sends them.
const MAX_SPAN_PREALLOC: usize = 1024;

/// After a huge command, a span array bigger than this (in entries) is
/// shrunk back, so one `MSET` with a million keys does not pin 8 MB to an
/// idle connection forever.
const SPAN_SHRINK_THRESHOLD: usize = 64 * 1024;

/// Per-connection limits, checked while parsing so that oversized requests
/// are rejected before their payload is buffered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted bulk argument (`proto-max-bulk-len`, default 512 MiB).
    /// A replica's link to its master may set `u64::MAX` (Redis exempts the
    /// master from this check).
    pub max_bulk_len: u64,
    /// Largest accepted argument count in a multibulk header (default
    /// 1024 * 1024).
    pub max_multibulk_len: u64,
    /// Whether the client is authenticated (or no authentication is
    /// required). When false, the much tighter pre-auth limits apply:
    /// [`UNAUTH_MAX_MULTIBULK_LEN`] and [`UNAUTH_MAX_BULK_LEN`].
    pub authenticated: bool,
}

impl Default for Limits {
    /// Redis's defaults, for a connection that needs no authentication.
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            max_multibulk_len: 1024 * 1024,
            authenticated: true,
        }
    }
}

/// A malformed request. The connection should send `-ERR <Display text>`
/// and close after the reply, as Redis does: after a framing error the rest
/// of the stream cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// `*<n>` where `n` is not a number or exceeds `max_multibulk_len`.
    InvalidMultibulkLength,
    /// `*<n>` with `n > 10` before authentication.
    UnauthenticatedMultibulkLength,
    /// More than 64 KiB buffered without the `\r` that ends a `*` line.
    TooBigMbulkCount,
    /// A bulk header did not start with `$`; holds the byte found.
    ExpectedDollar(u8),
    /// `$<len>` where `len` is not a number, is negative, or exceeds
    /// `max_bulk_len` (or would not fit the 4 GiB span offsets).
    InvalidBulkLength,
    /// `$<len>` with `len > 16384` before authentication.
    UnauthenticatedBulkLength,
    /// More than 64 KiB buffered without the `\r` that ends a `$` line.
    TooBigBulkCount,
    /// More than 64 KiB buffered without the `\n` that ends an inline line.
    TooBigInline,
    /// An inline line with an unterminated quote, or a closing quote that is
    /// not followed by whitespace or the end of the line.
    UnbalancedQuotes,
}

impl fmt::Display for ProtocolError {
    /// Exactly Redis's error text, without the leading `-ERR `.
    ///
    /// For [`ProtocolError::ExpectedDollar`] the offending byte is written as
    /// the character with that code point (Latin-1), since a `&str` cannot
    /// hold a lone byte >= 0x80; Redis sends the raw byte there. CR/LF are
    /// written as-is and are turned into spaces by `Reply::error`, as Redis
    /// does when it formats this error.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            ProtocolError::InvalidMultibulkLength => "Protocol error: invalid multibulk length",
            ProtocolError::UnauthenticatedMultibulkLength => {
                "Protocol error: unauthenticated multibulk length"
            }
            ProtocolError::TooBigMbulkCount => "Protocol error: too big mbulk count string",
            ProtocolError::ExpectedDollar(b) => {
                return write!(f, "Protocol error: expected '$', got '{}'", char::from(*b));
            }
            ProtocolError::InvalidBulkLength => "Protocol error: invalid bulk length",
            ProtocolError::UnauthenticatedBulkLength => {
                "Protocol error: unauthenticated bulk length"
            }
            ProtocolError::TooBigBulkCount => "Protocol error: too big bulk count string",
            ProtocolError::TooBigInline => "Protocol error: too big inline request",
            ProtocolError::UnbalancedQuotes => "Protocol error: unbalanced quotes in request",
        };
        f.write_str(text)
    }
}

impl std::error::Error for ProtocolError {}

/// Result of one [`Parser::parse`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// A full command. Its arguments are available from [`Parser::args`]
    /// (pass the same buffer); the first `consumed` bytes of the buffer
    /// belong to it and can be dropped once the command has run.
    Command {
        /// Bytes of the buffer taken by the command.
        consumed: usize,
    },
    /// More bytes are needed. `hint`, when known, is the total buffer length
    /// (counted from the start of the buffer passed) needed to make
    /// progress, so the caller can reserve a large bulk in one allocation
    /// instead of growing the buffer read by read.
    Incomplete {
        /// Total buffer length needed to make progress, if known.
        hint: Option<usize>,
    },
    /// Input that holds no command (an empty or all-blank inline line,
    /// `*0`, `*-1`): skip `consumed` bytes and parse again.
    Empty {
        /// Bytes of the buffer to skip.
        consumed: usize,
    },
}

/// Where the parser is inside the current command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Nothing parsed yet; the first byte picks inline or multibulk.
    Idle,
    /// Looking for the `\n` ending an inline line.
    Inline,
    /// Looking for the end of the `*<n>` line.
    MultibulkHeader,
    /// Reading bulks; `remaining` of them are still to come.
    Bulks { remaining: usize },
    /// The last call returned a command, an empty request or an error. The
    /// results stay readable until the next `parse`, which starts afresh.
    Done,
}

/// Resumable RESP request parser; one per connection.
///
/// # Protocol
///
/// ```text
/// loop {
///     match parser.parse(&buf[start..], &limits)? {
///         Parsed::Command { consumed } => {
///             run(parser.args(&buf[start..]));
///             start += consumed;
///         }
///         Parsed::Empty { consumed } => start += consumed,
///         Parsed::Incomplete { hint } => break, // read more, then call again
///     }
/// }
/// ```
///
/// * After `Incomplete`, call again with a buffer that starts at the same
///   byte as before (the caller may move or compact its storage) and holds
///   at least the same bytes, plus whatever arrived since. Completed
///   arguments and already-searched bytes are not looked at again (only a
///   short `*<n>` line may be re-read), so a command arriving in many
///   pieces costs time linear in its size.
/// * There is no need to call [`Parser::reset`] between commands: a `parse`
///   that follows a `Command`, `Empty` or error starts a new command by
///   itself. This keeps `args()` usable until then. Call `reset` only to
///   abandon a partially parsed command.
/// * After an error the connection should be closed: the parser resets, but
///   the caller cannot know where the next command would start.
///
/// # Allocation
///
/// The span array and the inline scratch buffer are reused from command to
/// command, so a connection in steady state allocates nothing per command.
///
/// # Differences from Redis 7.0
///
/// Redis looks for line terminators with C string functions, which stop at
/// a NUL byte; a NUL inside a header or an inline line (before its
/// terminator) makes Redis wait for more input until the 64 KiB limit
/// trips. Here such a header is rejected at once as an invalid length, and
/// an inline line is cut at the NUL when split into arguments (which is
/// what Redis's splitter does once it does see the line).
#[derive(Debug, Clone)]
pub struct Parser {
    state: State,
    /// Offset of the next unparsed byte of the current command.
    pos: usize,
    /// Where the search for the current line's terminator resumes.
    scan: usize,
    /// Length of the bulk whose header has been read but whose payload is
    /// still incomplete.
    bulk_len: Option<usize>,
    /// Argument spans of the current command: into the caller's buffer for
    /// multibulk, into `scratch` for inline.
    spans: Vec<(u32, u32)>,
    /// Unescaped inline arguments.
    scratch: Vec<u8>,
    /// Whether the current command is inline (its spans index `scratch`).
    inline: bool,
}

impl Default for Parser {
    fn default() -> Self {
        Self::new()
    }
}

/// Outcome of parsing a header: continue with `(value, next offset)`, or
/// return this result to the caller.
enum Step {
    Go(usize, usize),
    Stop(Parsed),
}

/// Outcome of looking for a header line's terminator.
enum Line {
    /// The line ends with the `\r` at this offset, and the byte after it
    /// (the `\n`, which Redis skips without looking at it) is buffered.
    End(usize),
    /// Not complete; `Some(n)` if the `\r` is there but not the byte after.
    More(Option<usize>),
}

impl Parser {
    /// A parser with empty, unallocated buffers.
    pub fn new() -> Self {
        Parser {
            state: State::Idle,
            pos: 0,
            scan: 0,
            bulk_len: None,
            spans: Vec::new(),
            scratch: Vec::new(),
            inline: false,
        }
    }

    /// Forgets any partially parsed command. Keeps the buffers (trimming
    /// them if a huge command blew them up).
    pub fn reset(&mut self) {
        self.state = State::Idle;
        self.pos = 0;
        self.scan = 0;
        self.bulk_len = None;
        self.inline = false;
        self.spans.clear();
        if self.spans.capacity() > SPAN_SHRINK_THRESHOLD {
            self.spans.shrink_to(MAX_SPAN_PREALLOC);
        }
        self.scratch.clear();
        if self.scratch.capacity() > 2 * MAX_INLINE_SIZE {
            self.scratch.shrink_to(MAX_INLINE_SIZE);
        }
    }

    /// The arguments of the command returned by the last `parse`. Pass the
    /// same buffer that was passed to it: multibulk arguments are spans into
    /// it, while inline arguments live in the parser (and `buf` is unused).
    /// Only meaningful right after [`Parsed::Command`].
    #[inline]
    pub fn args<'a>(&'a self, buf: &'a [u8]) -> Args<'a> {
        let src = if self.inline { &self.scratch[..] } else { buf };
        Args::new(src, &self.spans)
    }

    /// The raw spans of the last command (see [`Parser::args`] for what
    /// they index).
    #[inline]
    pub fn spans(&self) -> &[(u32, u32)] {
        &self.spans
    }

    /// Whether the last command was inline, i.e. its spans index the
    /// parser's scratch buffer rather than the caller's buffer.
    #[inline]
    pub fn is_inline(&self) -> bool {
        self.inline
    }

    /// Parses the next command from the start of `buf`; see the type docs
    /// for the calling protocol.
    pub fn parse(&mut self, buf: &[u8], limits: &Limits) -> Result<Parsed, ProtocolError> {
        // A shorter buffer than last time breaks the resumption contract;
        // rather than index out of bounds, start the command over.
        if self.state == State::Done || buf.len() < self.scan.max(self.pos) {
            self.reset();
        }
        let result = match self.state {
            State::Idle => match buf.first() {
                None => return Ok(Parsed::Incomplete { hint: None }),
                Some(b'*') => {
                    self.state = State::MultibulkHeader;
                    self.parse_multibulk(buf, limits)
                }
                Some(_) => {
                    self.state = State::Inline;
                    self.inline = true;
                    self.parse_inline(buf)
                }
            },
            State::Inline => self.parse_inline(buf),
            State::MultibulkHeader | State::Bulks { .. } => self.parse_multibulk(buf, limits),
            State::Done => unreachable!("reset above"),
        };
        if !matches!(result, Ok(Parsed::Incomplete { .. })) {
            self.state = State::Done;
        }
        result
    }

    /// Finds the `\r` ending the header line that starts at `line_start`,
    /// resuming the search where the previous call left it (`scan` only
    /// ever points into the line currently being looked for: once a line
    /// completes, parsing continues past its end).
    #[inline]
    fn find_line_end(&mut self, buf: &[u8], line_start: usize) -> Line {
        let from = self.scan.max(line_start);
        match memchr(b'\r', &buf[from..]) {
            Some(i) => {
                let cr = from + i;
                if cr + 2 <= buf.len() {
                    Line::End(cr)
                } else {
                    self.scan = cr;
                    Line::More(Some(cr + 2))
                }
            }
            None => {
                self.scan = buf.len();
                Line::More(None)
            }
        }
    }

    fn parse_multibulk(&mut self, buf: &[u8], limits: &Limits) -> Result<Parsed, ProtocolError> {
        // Spans are u32 offsets (see `Args`). Looking at no more than 4 GiB
        // of the buffer guarantees every completed bulk fits, without a
        // check per argument; a bulk that cannot complete inside that window
        // is rejected below.
        let buf = &buf[..buf.len().min(MAX_SPAN_OFFSET)];
        let (mut remaining, mut pos) = match self.state {
            State::Bulks { remaining } => (remaining, self.pos),
            _ => match self.multibulk_header(buf, limits)? {
                Step::Go(count, next) => {
                    self.spans.reserve(count.min(MAX_SPAN_PREALLOC));
                    (count, next)
                }
                Step::Stop(parsed) => return Ok(parsed),
            },
        };
        // Pre-auth and configured limits folded into one bound, so a
        // well-formed header costs one comparison; anything above it takes
        // the slow path, which works out which error applies.
        let max_ok = if limits.authenticated {
            limits.max_bulk_len
        } else {
            limits.max_bulk_len.min(UNAUTH_MAX_BULK_LEN as u64)
        };
        // Only set when the previous call stopped inside a payload; kept in
        // a local so the loop does not touch `self` per argument.
        let mut pending = self.bulk_len.take();
        while remaining > 0 {
            let len = match pending.take() {
                Some(len) => len,
                None => match fast_header(buf, pos, b'$') {
                    Some((len, next)) if len <= max_ok => {
                        pos = next;
                        len as usize
                    }
                    _ => match self.bulk_header(buf, pos, limits)? {
                        Step::Go(len, next) => {
                            pos = next;
                            len
                        }
                        Step::Stop(parsed) => {
                            self.pos = pos;
                            self.state = State::Bulks { remaining };
                            return Ok(parsed);
                        }
                    },
                },
            };
            let end = pos.saturating_add(len);
            let needed = end.saturating_add(2);
            if needed > buf.len() {
                if needed > MAX_SPAN_OFFSET {
                    return Err(ProtocolError::InvalidBulkLength);
                }
                self.pos = pos;
                self.bulk_len = Some(len);
                self.state = State::Bulks { remaining };
                return Ok(Parsed::Incomplete { hint: Some(needed) });
            }
            // The payload is followed by two bytes that should be CRLF;
            // like Redis, skip them unchecked.
            self.spans.push((pos as u32, end as u32));
            pos = needed;
            remaining -= 1;
        }
        Ok(Parsed::Command { consumed: pos })
    }

    /// Parses the `*<n>` line at the start of `buf`.
    #[inline]
    fn multibulk_header(&mut self, buf: &[u8], limits: &Limits) -> Result<Step, ProtocolError> {
        let (count, next) = match fast_header(buf, 0, b'*') {
            Some((n, next)) => (n as i64, next),
            None => match self.find_line_end(buf, 0) {
                Line::End(cr) => match parse_i64(&buf[1..cr]) {
                    Some(n) => (n, cr + 2),
                    None => return Err(ProtocolError::InvalidMultibulkLength),
                },
                Line::More(hint) => {
                    if hint.is_none() && buf.len() > MAX_INLINE_SIZE {
                        return Err(ProtocolError::TooBigMbulkCount);
                    }
                    return Ok(Step::Stop(Parsed::Incomplete { hint }));
                }
            },
        };
        if count > 0 && count as u64 > limits.max_multibulk_len {
            return Err(ProtocolError::InvalidMultibulkLength);
        }
        if count > UNAUTH_MAX_MULTIBULK_LEN && !limits.authenticated {
            return Err(ProtocolError::UnauthenticatedMultibulkLength);
        }
        if count <= 0 {
            return Ok(Step::Stop(Parsed::Empty { consumed: next }));
        }
        let count = usize::try_from(count).map_err(|_| ProtocolError::InvalidMultibulkLength)?;
        Ok(Step::Go(count, next))
    }

    /// The general `$<len>` header path: incomplete lines, non-canonical
    /// numbers, lengths over a limit, and every error. Kept out of line so
    /// the per-argument fast path stays small.
    #[cold]
    #[inline(never)]
    fn bulk_header(
        &mut self,
        buf: &[u8],
        pos: usize,
        limits: &Limits,
    ) -> Result<Step, ProtocolError> {
        let len = match self.find_line_end(buf, pos) {
            Line::End(cr) => {
                let first = buf[pos];
                if first != b'$' {
                    return Err(ProtocolError::ExpectedDollar(first));
                }
                match parse_i64(&buf[pos + 1..cr]) {
                    Some(n) => (n, cr + 2),
                    None => return Err(ProtocolError::InvalidBulkLength),
                }
            }
            Line::More(hint) => {
                if hint.is_none() && buf.len() - pos > MAX_INLINE_SIZE {
                    return Err(ProtocolError::TooBigBulkCount);
                }
                return Ok(Step::Stop(Parsed::Incomplete { hint }));
            }
        };
        let (len, next) = len;
        if len < 0 || len as u64 > limits.max_bulk_len {
            return Err(ProtocolError::InvalidBulkLength);
        }
        if len > UNAUTH_MAX_BULK_LEN && !limits.authenticated {
            return Err(ProtocolError::UnauthenticatedBulkLength);
        }
        // Anything that cannot end inside the 4 GiB span window never will.
        match usize::try_from(len) {
            Ok(len) if len < MAX_SPAN_OFFSET => Ok(Step::Go(len, next)),
            _ => Err(ProtocolError::InvalidBulkLength),
        }
    }

    fn parse_inline(&mut self, buf: &[u8]) -> Result<Parsed, ProtocolError> {
        let from = self.scan;
        let Some(i) = memchr(b'\n', &buf[from..]) else {
            if buf.len() > MAX_INLINE_SIZE {
                return Err(ProtocolError::TooBigInline);
            }
            self.scan = buf.len();
            return Ok(Parsed::Incomplete { hint: None });
        };
        let newline = from + i;
        let mut end = newline;
        if end > 0 && buf[end - 1] == b'\r' {
            end -= 1;
        }
        let line = &buf[..end];
        if u32::try_from(line.len()).is_err() {
            return Err(ProtocolError::TooBigInline);
        }
        split_inline(line, &mut self.scratch, &mut self.spans)?;
        let consumed = newline + 1;
        if self.spans.is_empty() {
            Ok(Parsed::Empty { consumed })
        } else {
            Ok(Parsed::Command { consumed })
        }
    }
}

/// The common header shape, parsed without a separate terminator search:
/// `prefix`, canonical digits (no sign, no leading zero, at most 18 so no
/// overflow), `\r`, and one more byte. Anything else (including a header
/// that is not fully buffered) returns `None` and goes through the general
/// path, which implements the exact rules and error reporting; this only
/// saves a `memchr` call and a second pass over the digits per argument for
/// well-formed input.
#[inline(always)]
fn fast_header(buf: &[u8], pos: usize, prefix: u8) -> Option<(u64, usize)> {
    let line = buf.get(pos..)?;
    // Shortest header: prefix, one digit, CR, LF.
    if line.len() < 4 || line[0] != prefix {
        return None;
    }
    let first = line[1].wrapping_sub(b'0');
    if first > 9 {
        return None;
    }
    let mut n = u64::from(first);
    let mut i = 2;
    if first != 0 {
        let limit = line.len().min(19);
        while i < limit {
            let d = line[i].wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            n = n * 10 + u64::from(d);
            i += 1;
        }
    }
    // `line[i]` must be the CR and `line[i + 1]` must exist.
    if i + 1 >= line.len() || line[i] != b'\r' {
        return None;
    }
    Some((n, pos + i + 2))
}

/// Whitespace as C's `isspace` in the "C" locale.
#[inline]
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

#[inline]
fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Splits an inline request line into arguments the way Redis does
/// (its `sdssplitargs`), appending the unescaped bytes to `out` and one span
/// per argument to `spans`.
///
/// * Arguments are separated by whitespace; leading blanks are anything
///   `isspace` accepts, but an unquoted argument only ends at space, tab,
///   CR or LF (so a vertical tab or form feed inside a word is kept).
/// * `"..."` understands `\n \r \t \b \a`, `\xHH` (exactly two hex digits),
///   and `\c` for any other `c` gives `c`.
/// * `'...'` understands only `\'`; other backslashes are literal.
/// * Quotes may start mid-word (`ab"c d"` is `abc d`), but a closing quote
///   must be followed by whitespace or the end of the line.
/// * A NUL byte ends the line (Redis splits a C string).
///
/// Unterminated quotes and a closing quote followed by anything else give
/// [`ProtocolError::UnbalancedQuotes`]. Public so the server can reuse it
/// (e.g. for config lines), with identical behaviour.
pub fn split_inline(
    line: &[u8],
    out: &mut Vec<u8>,
    spans: &mut Vec<(u32, u32)>,
) -> Result<(), ProtocolError> {
    let line = match memchr(0, line) {
        Some(nul) => &line[..nul],
        None => line,
    };
    // Reads past the end as NUL, mirroring the C string the rules were
    // written for, so each rule below can look ahead without bounds checks.
    let at = |j: usize| line.get(j).copied().unwrap_or(0);
    let offset = |len: usize| -> Result<u32, ProtocolError> {
        u32::try_from(len).map_err(|_| ProtocolError::TooBigInline)
    };
    let mut i = 0;
    loop {
        while i < line.len() && is_space(line[i]) {
            i += 1;
        }
        if i >= line.len() {
            return Ok(());
        }
        let start = out.len();
        #[derive(PartialEq)]
        enum Quote {
            None,
            Double,
            Single,
        }
        let mut quote = Quote::None;
        loop {
            let c = at(i);
            match quote {
                Quote::None => match c {
                    0 => break,
                    b' ' | b'\n' | b'\r' | b'\t' => {
                        i += 1;
                        break;
                    }
                    b'"' => quote = Quote::Double,
                    b'\'' => quote = Quote::Single,
                    _ => {
                        // Copy the whole run of ordinary bytes at once
                        // (`c` itself is one of them).
                        let run = 1 + line[i + 1..]
                            .iter()
                            .position(|&b| matches!(b, b' ' | b'\n' | b'\r' | b'\t' | b'"' | b'\''))
                            .unwrap_or(line.len() - i - 1);
                        out.extend_from_slice(&line[i..i + run]);
                        i += run;
                        continue;
                    }
                },
                Quote::Double => {
                    if c == b'\\' && at(i + 1) == b'x' {
                        if let (Some(hi), Some(lo)) = (hex_val(at(i + 2)), hex_val(at(i + 3))) {
                            out.push(hi * 16 + lo);
                            i += 4;
                            continue;
                        }
                    }
                    if c == b'\\' && at(i + 1) != 0 {
                        out.push(match at(i + 1) {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'a' => 0x07,
                            other => other,
                        });
                        i += 2;
                        continue;
                    }
                    match c {
                        b'"' => {
                            let next = at(i + 1);
                            if next != 0 && !is_space(next) {
                                return Err(ProtocolError::UnbalancedQuotes);
                            }
                            i += 1;
                            break;
                        }
                        0 => return Err(ProtocolError::UnbalancedQuotes),
                        _ => {
                            // `c` is literal (possibly a backslash that ends
                            // the line): copy it and the bytes after it up to
                            // the next escape or quote in one go.
                            let run = 1 + memchr::memchr2(b'\\', b'"', &line[i + 1..])
                                .unwrap_or(line.len() - i - 1);
                            out.extend_from_slice(&line[i..i + run]);
                            i += run;
                            continue;
                        }
                    }
                }
                Quote::Single => {
                    if c == b'\\' && at(i + 1) == b'\'' {
                        out.push(b'\'');
                        i += 2;
                        continue;
                    }
                    match c {
                        b'\'' => {
                            let next = at(i + 1);
                            if next != 0 && !is_space(next) {
                                return Err(ProtocolError::UnbalancedQuotes);
                            }
                            i += 1;
                            break;
                        }
                        0 => return Err(ProtocolError::UnbalancedQuotes),
                        _ => out.push(c),
                    }
                }
            }
            i += 1;
        }
        spans.push((offset(start)?, offset(out.len())?));
    }
}

/// The words of a line split by [`split_inline`], each on its own (manifest lines, a
/// function library's shebang); `None` on unbalanced quotes.
pub fn split_words(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let (mut out, mut spans) = (Vec::new(), Vec::new());
    split_inline(line, &mut out, &mut spans).ok()?;
    Some(
        spans
            .iter()
            .map(|&(start, end)| out[start as usize..end as usize].to_vec())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unauth() -> Limits {
        Limits {
            authenticated: false,
            ..Limits::default()
        }
    }

    /// Parses one command from a complete buffer.
    fn one(input: &[u8]) -> Result<(Parsed, Vec<Vec<u8>>), ProtocolError> {
        one_with(input, &Limits::default())
    }

    fn one_with(input: &[u8], limits: &Limits) -> Result<(Parsed, Vec<Vec<u8>>), ProtocolError> {
        let mut p = Parser::new();
        let r = p.parse(input, limits)?;
        let args = match r {
            Parsed::Command { .. } => p.args(input).iter().map(<[u8]>::to_vec).collect(),
            _ => Vec::new(),
        };
        Ok((r, args))
    }

    fn err(input: &[u8]) -> String {
        err_with(input, &Limits::default())
    }

    fn err_with(input: &[u8], limits: &Limits) -> String {
        one_with(input, limits).unwrap_err().to_string()
    }

    fn inline(line: &str) -> Result<Vec<String>, ProtocolError> {
        let mut out = Vec::new();
        let mut spans = Vec::new();
        split_inline(line.as_bytes(), &mut out, &mut spans)?;
        Ok(Args::new(&out, &spans)
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect())
    }

    fn v(items: &[&str]) -> Vec<Vec<u8>> {
        items.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn multibulk_command() {
        let input = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nv\r\nxx\r\n*1\r\n";
        let (r, args) = one(input).unwrap();
        assert_eq!(r, Parsed::Command { consumed: 31 });
        assert_eq!(
            args,
            vec![b"SET".to_vec(), b"k".to_vec(), b"v\r\nxx".to_vec()]
        );
    }

    #[test]
    fn multibulk_empty_and_zero_length_args() {
        let (r, args) = one(b"*2\r\n$0\r\n\r\n$0\r\n\r\n").unwrap();
        assert_eq!(r, Parsed::Command { consumed: 16 });
        assert_eq!(args, vec![Vec::<u8>::new(), Vec::new()]);
        assert_eq!(one(b"*0\r\n").unwrap().0, Parsed::Empty { consumed: 4 });
        assert_eq!(one(b"*-1\r\n").unwrap().0, Parsed::Empty { consumed: 5 });
        assert_eq!(one(b"*-5\r\n").unwrap().0, Parsed::Empty { consumed: 5 });
    }

    #[test]
    fn crlf_after_payload_is_skipped_unchecked() {
        let (r, args) = one(b"*1\r\n$4\r\nPINGxx").unwrap();
        assert_eq!(r, Parsed::Command { consumed: 14 });
        assert_eq!(args, v(&["PING"]));
        // The byte after a header's '\r' is skipped unchecked as well.
        let (r, args) = one(b"*1\rx$4\rxPING\r\n").unwrap();
        assert_eq!(r, Parsed::Command { consumed: 14 });
        assert_eq!(args, v(&["PING"]));
    }

    #[test]
    fn incomplete_inputs_and_hints() {
        let mut p = Parser::new();
        let l = Limits::default();
        assert_eq!(p.parse(b"", &l), Ok(Parsed::Incomplete { hint: None }));
        assert_eq!(p.parse(b"*", &l), Ok(Parsed::Incomplete { hint: None }));
        assert_eq!(
            p.parse(b"*1\r", &l),
            Ok(Parsed::Incomplete { hint: Some(4) })
        );
        assert_eq!(
            p.parse(b"*1\r\n$10", &l),
            Ok(Parsed::Incomplete { hint: None })
        );
        assert_eq!(
            p.parse(b"*1\r\n$10\r\nab", &l),
            Ok(Parsed::Incomplete { hint: Some(21) })
        );
        assert_eq!(
            p.parse(b"*1\r\n$10\r\n0123456789\r", &l),
            Ok(Parsed::Incomplete { hint: Some(21) })
        );
        let full = b"*1\r\n$10\r\n0123456789\r\n";
        assert_eq!(p.parse(full, &l), Ok(Parsed::Command { consumed: 21 }));
        assert_eq!(p.args(full).get(0), b"0123456789");
        assert_eq!(p.parse(b"GET", &l), Ok(Parsed::Incomplete { hint: None }));
        assert_eq!(
            p.parse(b"GET k\r", &l),
            Ok(Parsed::Incomplete { hint: None })
        );
        assert_eq!(
            p.parse(b"GET k\r\n", &l),
            Ok(Parsed::Command { consumed: 7 })
        );
        assert_eq!(p.args(b"").len(), 2);
    }

    #[test]
    fn inline_commands() {
        let (r, args) = one(b"SET a \"b c\"\r\nrest").unwrap();
        assert_eq!(r, Parsed::Command { consumed: 13 });
        assert_eq!(args, v(&["SET", "a", "b c"]));
        let (r, args) = one(b"  ping\n").unwrap();
        assert_eq!(r, Parsed::Command { consumed: 7 });
        assert_eq!(args, v(&["ping"]));
        assert_eq!(one(b"\r\n").unwrap().0, Parsed::Empty { consumed: 2 });
        assert_eq!(one(b"\n").unwrap().0, Parsed::Empty { consumed: 1 });
        assert_eq!(one(b" \t \r\n").unwrap().0, Parsed::Empty { consumed: 5 });
        // A lone CR before the LF is stripped only at the end.
        let (_, args) = one(b"a\rb\r\r\n").unwrap();
        assert_eq!(args, v(&["a", "b"]));
        // An inline line longer than 64 KiB is fine if its newline is there.
        let mut long = vec![b'x'; 100_000];
        long.extend_from_slice(b"\r\n");
        let (r, args) = one(&long).unwrap();
        assert_eq!(r, Parsed::Command { consumed: 100_002 });
        assert_eq!(args[0].len(), 100_000);
    }

    #[test]
    fn inline_tokenizer() {
        assert_eq!(inline("set a \"b c\"").unwrap(), ["set", "a", "b c"]);
        assert_eq!(inline("'it\\'s'").unwrap(), ["it's"]);
        assert_eq!(inline("\"\\x41\"").unwrap(), ["A"]);
        assert_eq!(inline("\"\\x4a\\x4B\"").unwrap(), ["JK"]);
        assert_eq!(inline("\"\\xZZ\"").unwrap(), ["xZZ"]);
        assert_eq!(inline("\"\\x4\"").unwrap(), ["x4"]);
        assert_eq!(
            inline(r#""\n\r\t\b\a\\\"\q""#).unwrap(),
            ["\n\r\t\u{8}\u{7}\\\"q"]
        );
        assert_eq!(inline(r"'a\nb\\ c'").unwrap(), [r"a\nb\\ c"]);
        assert_eq!(inline("a  b\t\tc").unwrap(), ["a", "b", "c"]);
        assert_eq!(inline("ab\"c d\" e").unwrap(), ["abc d", "e"]);
        assert_eq!(inline("x'y z'").unwrap(), ["xy z"]);
        assert_eq!(inline("\"\"").unwrap(), [""]);
        assert_eq!(inline("'' \"\"").unwrap(), ["", ""]);
        assert_eq!(inline("\"a\"\x0bb").unwrap(), ["a", "b"]);
        assert_eq!(inline("a\x0bb").unwrap(), ["a\x0bb"]);
        assert_eq!(inline("\x0b\x0c a").unwrap(), ["a"]);
        assert_eq!(inline("a\0b c").unwrap(), ["a"]);
        assert_eq!(inline("\0 a").unwrap(), Vec::<String>::new());
        assert_eq!(inline("").unwrap(), Vec::<String>::new());
        assert_eq!(inline("   ").unwrap(), Vec::<String>::new());
        let mut out = Vec::new();
        let mut spans = Vec::new();
        split_inline(b"\"\\xff\\x00\"", &mut out, &mut spans).unwrap();
        assert_eq!(Args::new(&out, &spans).get(0), b"\xff\x00");
    }

    /// Byte-at-a-time transcription of the splitting rules, written
    /// independently of the run-copying fast paths in `split_inline`.
    fn split_reference(line: &[u8]) -> Result<Vec<Vec<u8>>, ProtocolError> {
        let end = line.iter().position(|&b| b == 0).unwrap_or(line.len());
        let line = &line[..end];
        let at = |j: usize| line.get(j).copied().unwrap_or(0);
        let mut args = Vec::new();
        let mut i = 0;
        loop {
            while at(i) != 0 && is_space(at(i)) {
                i += 1;
            }
            if at(i) == 0 {
                return Ok(args);
            }
            let mut cur = Vec::new();
            let (mut dq, mut sq) = (false, false);
            loop {
                let c = at(i);
                if dq {
                    if c == b'\\'
                        && at(i + 1) == b'x'
                        && hex_val(at(i + 2)).is_some()
                        && hex_val(at(i + 3)).is_some()
                    {
                        cur.push(hex_val(at(i + 2)).unwrap() * 16 + hex_val(at(i + 3)).unwrap());
                        i += 3;
                    } else if c == b'\\' && at(i + 1) != 0 {
                        i += 1;
                        cur.push(match at(i) {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 8,
                            b'a' => 7,
                            o => o,
                        });
                    } else if c == b'"' {
                        if at(i + 1) != 0 && !is_space(at(i + 1)) {
                            return Err(ProtocolError::UnbalancedQuotes);
                        }
                        i += 1;
                        break;
                    } else if c == 0 {
                        return Err(ProtocolError::UnbalancedQuotes);
                    } else {
                        cur.push(c);
                    }
                } else if sq {
                    if c == b'\\' && at(i + 1) == b'\'' {
                        i += 1;
                        cur.push(b'\'');
                    } else if c == b'\'' {
                        if at(i + 1) != 0 && !is_space(at(i + 1)) {
                            return Err(ProtocolError::UnbalancedQuotes);
                        }
                        i += 1;
                        break;
                    } else if c == 0 {
                        return Err(ProtocolError::UnbalancedQuotes);
                    } else {
                        cur.push(c);
                    }
                } else {
                    match c {
                        b' ' | b'\n' | b'\r' | b'\t' => {
                            i += 1;
                            break;
                        }
                        0 => break,
                        b'"' => dq = true,
                        b'\'' => sq = true,
                        _ => cur.push(c),
                    }
                }
                if at(i) != 0 {
                    i += 1;
                }
            }
            args.push(cur);
        }
    }

    proptest::proptest! {
        #[test]
        fn split_matches_reference(line in proptest::collection::vec(
            proptest::sample::select(b"ab \"'\\x41Fn\t\r\n\x0b\x0c\0\xff".to_vec()), 0..40)) {
            let mut out = Vec::new();
            let mut spans = Vec::new();
            let got = split_inline(&line, &mut out, &mut spans)
                .map(|()| Args::new(&out, &spans).iter().map(<[u8]>::to_vec).collect::<Vec<_>>());
            proptest::prop_assert_eq!(got, split_reference(&line));
        }
    }

    #[test]
    fn inline_unbalanced_quotes() {
        for bad in [
            "\"abc",
            "'abc",
            "\"abc\"def",
            "'abc'def",
            "a \"b",
            "\"a\\\"",
            "\"a\\",
            "'a\\'",
            "\"a\"\"b\"",
            "\"a\0\"",
        ] {
            assert_eq!(inline(bad), Err(ProtocolError::UnbalancedQuotes), "{bad:?}");
        }
        assert_eq!(
            err(b"SET \"a\r\n"),
            "Protocol error: unbalanced quotes in request"
        );
    }

    #[test]
    fn error_strings() {
        assert_eq!(err(b"*x\r\n"), "Protocol error: invalid multibulk length");
        assert_eq!(err(b"*01\r\n"), "Protocol error: invalid multibulk length");
        assert_eq!(err(b"*\r\n"), "Protocol error: invalid multibulk length");
        assert_eq!(
            err(b"*1048577\r\n"),
            "Protocol error: invalid multibulk length"
        );
        assert_eq!(
            err(b"*99999999999999999999\r\n"),
            "Protocol error: invalid multibulk length"
        );
        assert!(matches!(
            one(b"*1048576\r\n").unwrap().0,
            Parsed::Incomplete { .. }
        ));
        assert_eq!(
            err_with(b"*11\r\n", &unauth()),
            "Protocol error: unauthenticated multibulk length"
        );
        assert!(matches!(
            one_with(b"*10\r\n", &unauth()).unwrap().0,
            Parsed::Incomplete { .. }
        ));
        assert_eq!(
            one_with(b"*-1\r\n", &unauth()).unwrap().0,
            Parsed::Empty { consumed: 5 }
        );

        let mut big = b"*".to_vec();
        big.extend_from_slice(&[b'1'; MAX_INLINE_SIZE]);
        assert_eq!(err(&big), "Protocol error: too big mbulk count string");
        big.truncate(MAX_INLINE_SIZE);
        assert!(matches!(
            one(&big).unwrap().0,
            Parsed::Incomplete { hint: None }
        ));

        assert_eq!(
            err(b"*1\r\n:3\r\n"),
            "Protocol error: expected '$', got ':'"
        );
        assert_eq!(err(b"*1\r\n\r\n"), "Protocol error: expected '$', got '\r'");
        assert_eq!(
            err(b"*2\r\n$1\r\na\r\nfoo\r\n"),
            "Protocol error: expected '$', got 'f'"
        );
        // The '$' check waits for the header line to be complete.
        assert!(matches!(
            one(b"*1\r\nfoo").unwrap().0,
            Parsed::Incomplete { .. }
        ));

        for bad in [
            &b"*1\r\n$x\r\n"[..],
            b"*1\r\n$-1\r\n",
            b"*1\r\n$-0\r\n",
            b"*1\r\n$01\r\n",
            b"*1\r\n$\r\n",
            b"*1\r\n$ 1\r\n",
            b"*1\r\n$536870913\r\n",
            b"*1\r\n$99999999999999999999\r\n",
        ] {
            assert_eq!(err(bad), "Protocol error: invalid bulk length", "{bad:?}");
        }
        assert!(matches!(
            one(b"*1\r\n$536870912\r\n").unwrap().0,
            Parsed::Incomplete { .. }
        ));
        let small = Limits {
            max_bulk_len: 3,
            ..Limits::default()
        };
        assert_eq!(
            err_with(b"*1\r\n$4\r\n", &small),
            "Protocol error: invalid bulk length"
        );
        assert_eq!(
            err_with(b"*1\r\n$16385\r\n", &unauth()),
            "Protocol error: unauthenticated bulk length"
        );
        assert!(matches!(
            one_with(b"*1\r\n$16384\r\n", &unauth()).unwrap().0,
            Parsed::Incomplete { .. }
        ));
        // Invalid takes precedence over unauthenticated, as in Redis.
        assert_eq!(
            err_with(b"*1\r\n$536870913\r\n", &unauth()),
            "Protocol error: invalid bulk length"
        );

        let mut big = b"*1\r\n$".to_vec();
        big.extend_from_slice(&[b'1'; MAX_INLINE_SIZE]);
        assert_eq!(err(&big), "Protocol error: too big bulk count string");
        big.truncate(4 + MAX_INLINE_SIZE);
        assert!(matches!(
            one(&big).unwrap().0,
            Parsed::Incomplete { hint: None }
        ));

        let mut big = vec![b'a'; MAX_INLINE_SIZE + 1];
        assert_eq!(err(&big), "Protocol error: too big inline request");
        big.pop();
        assert!(matches!(
            one(&big).unwrap().0,
            Parsed::Incomplete { hint: None }
        ));
    }

    #[test]
    fn display_texts() {
        let all = [
            (
                ProtocolError::InvalidMultibulkLength,
                "Protocol error: invalid multibulk length",
            ),
            (
                ProtocolError::UnauthenticatedMultibulkLength,
                "Protocol error: unauthenticated multibulk length",
            ),
            (
                ProtocolError::TooBigMbulkCount,
                "Protocol error: too big mbulk count string",
            ),
            (
                ProtocolError::ExpectedDollar(b'x'),
                "Protocol error: expected '$', got 'x'",
            ),
            (
                ProtocolError::InvalidBulkLength,
                "Protocol error: invalid bulk length",
            ),
            (
                ProtocolError::UnauthenticatedBulkLength,
                "Protocol error: unauthenticated bulk length",
            ),
            (
                ProtocolError::TooBigBulkCount,
                "Protocol error: too big bulk count string",
            ),
            (
                ProtocolError::TooBigInline,
                "Protocol error: too big inline request",
            ),
            (
                ProtocolError::UnbalancedQuotes,
                "Protocol error: unbalanced quotes in request",
            ),
        ];
        for (e, text) in all {
            assert_eq!(e.to_string(), text);
        }
    }

    #[test]
    fn pipelined_commands_and_reuse() {
        let input = b"*1\r\n$4\r\nPING\r\n\r\nECHO hi\r\n*0\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
        let mut p = Parser::new();
        let l = Limits::default();
        let mut start = 0;
        let mut seen = Vec::new();
        loop {
            match p.parse(&input[start..], &l).unwrap() {
                Parsed::Command { consumed } => {
                    seen.push(format!("{:?}", p.args(&input[start..])));
                    start += consumed;
                }
                Parsed::Empty { consumed } => {
                    seen.push("empty".into());
                    start += consumed;
                }
                Parsed::Incomplete { hint } => {
                    assert_eq!(hint, None);
                    break;
                }
            }
        }
        assert_eq!(start, input.len());
        assert_eq!(
            seen,
            [
                r#"["PING"]"#,
                "empty",
                r#"["ECHO", "hi"]"#,
                "empty",
                r#"["GET", "k"]"#
            ]
        );
    }

    #[test]
    fn reset_abandons_partial_command() {
        let mut p = Parser::new();
        let l = Limits::default();
        assert!(matches!(
            p.parse(b"*2\r\n$3\r\nGET\r\n", &l),
            Ok(Parsed::Incomplete { .. })
        ));
        p.reset();
        assert_eq!(
            p.parse(b"*1\r\n$1\r\nx\r\n", &l),
            Ok(Parsed::Command { consumed: 11 })
        );
        // After an error the next parse starts afresh too.
        assert!(p.parse(b"*x\r\n", &l).is_err());
        assert_eq!(
            p.parse(b"PING\r\n", &l),
            Ok(Parsed::Command { consumed: 6 })
        );
        assert!(p.is_inline());
    }

    #[test]
    fn shorter_buffer_restarts_instead_of_panicking() {
        let mut p = Parser::new();
        let l = Limits::default();
        assert!(matches!(
            p.parse(b"*2\r\n$3\r\nGET\r\n", &l),
            Ok(Parsed::Incomplete { .. })
        ));
        assert_eq!(
            p.parse(b"*1\r\n$1\r\nx", &l),
            Ok(Parsed::Incomplete { hint: Some(11) })
        );
    }

    /// A million-argument command fed in small pieces must parse in linear
    /// time: with rescanning from scratch this would take hours.
    #[test]
    fn huge_multibulk_in_small_pieces_is_linear() {
        const N: usize = 1_000_000;
        let mut input = format!("*{N}\r\n").into_bytes();
        for i in 0..N {
            let arg = (i % 1000).to_string();
            input.extend_from_slice(format!("${}\r\n{}\r\n", arg.len(), arg).as_bytes());
        }
        let mut p = Parser::new();
        let l = Limits::default();
        let mut fed = 0;
        let consumed = loop {
            fed = (fed + 61).min(input.len());
            match p.parse(&input[..fed], &l).unwrap() {
                Parsed::Command { consumed } => break consumed,
                Parsed::Incomplete { .. } => assert!(fed < input.len()),
                Parsed::Empty { .. } => unreachable!(),
            }
        };
        assert_eq!(consumed, input.len());
        let args = p.args(&input);
        assert_eq!(args.len(), N);
        assert_eq!(args.get(999_999), b"999");
        // Big span arrays are trimmed once the command is done.
        p.reset();
        assert!(p.spans.capacity() <= SPAN_SHRINK_THRESHOLD);
    }

    #[test]
    fn fast_header_agrees_with_general_path() {
        assert_eq!(fast_header(b"$0\r\n", 0, b'$'), Some((0, 4)));
        assert_eq!(fast_header(b"$12\r\n", 0, b'$'), Some((12, 5)));
        assert_eq!(fast_header(b"$12\r", 0, b'$'), None);
        assert_eq!(fast_header(b"$012\r\n", 0, b'$'), None);
        assert_eq!(fast_header(b"$-1\r\n", 0, b'$'), None);
        assert_eq!(fast_header(b"$\r\n", 0, b'$'), None);
        assert_eq!(fast_header(b"$1x\r\n", 0, b'$'), None);
        assert_eq!(fast_header(b"*1\r\n", 0, b'$'), None);
        assert_eq!(fast_header(b"$1234567890123456789\r\n", 0, b'$'), None);
        assert_eq!(
            fast_header(b"$123456789012345678\r\n", 0, b'$'),
            Some((123_456_789_012_345_678, 21))
        );
    }
}
