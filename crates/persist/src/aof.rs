//! Redis 7's multi-part append-only file: the manifest that lists the parts, and the reader
//! of the parts that hold commands.
//!
//! An AOF directory (`appenddirname`) holds one *base* file (the dataset at the last rewrite:
//! an RDB file, `<name>.<seq>.base.rdb`, or commands, `<name>.<seq>.base.aof`), any number of
//! *incremental* files with the commands written since (`<name>.<seq>.incr.aof`), and the
//! manifest `<name>.manifest` naming them, one line each, in Redis's exact format
//! (`file <name> seq <n> type <b|h|i>`), so redis-server 7.0 and flowkv read each other's
//! directories. `h` (history) lines name files a rewrite replaced, which are deleted.

use std::fmt::Write as _;
use std::io::{BufRead, Read as _};

/// A part's role in the manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartKind {
    Base,
    History,
    Incr,
}

impl PartKind {
    fn letter(self) -> char {
        match self {
            PartKind::Base => 'b',
            PartKind::History => 'h',
            PartKind::Incr => 'i',
        }
    }
}

/// One line of the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    pub seq: u64,
    pub kind: PartKind,
}

/// The parsed manifest: which files make up the AOF, in load order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub base: Option<Part>,
    pub history: Vec<Part>,
    pub incr: Vec<Part>,
    /// Highest sequence numbers handed out so far (new files continue from them).
    pub base_seq: u64,
    pub incr_seq: u64,
}

/// Manifest lines longer than this are refused, as Redis refuses them.
const MAX_LINE: usize = 1024;

impl Manifest {
    /// The manifest's file name for `appendfilename` `prefix`.
    pub fn file_name(prefix: &str) -> String {
        format!("{prefix}.manifest")
    }

    /// Parses a manifest's text with Redis's rules: `#` comment lines, key/value pairs (at
    /// least file, seq and type; unknown keys ignored), one base at most, increasing
    /// incremental sequence numbers, plain file names only.
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let mut m = Manifest::default();
        let mut lines = 0;
        for raw in text.split_inclusive('\n') {
            lines += 1;
            if raw.starts_with('#') {
                continue;
            }
            if raw.len() > MAX_LINE || !raw.ends_with('\n') {
                return Err(if raw.len() > MAX_LINE {
                    "The AOF manifest file contains too long line".into()
                } else {
                    "Invalid AOF manifest file format".into()
                });
            }
            let words: Vec<String> = flowkv_protocol::split_words(raw.as_bytes())
                .filter(|w| w.len() >= 6 && w.len() % 2 == 0)
                .ok_or("Invalid AOF manifest file format")?
                .iter()
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect();
            let (mut name, mut seq, mut kind) = (None, 0u64, None);
            for kv in words.chunks_exact(2) {
                match kv[0].to_ascii_lowercase().as_str() {
                    "file" => name = Some(kv[1].clone()),
                    "seq" => seq = parse_seq(&kv[1]),
                    "type" => kind = kv[1].chars().next(),
                    _ => {}
                }
            }
            let (Some(name), Some(kind)) = (name, kind) else {
                return Err("Invalid AOF manifest file format".into());
            };
            if seq == 0 {
                return Err("Invalid AOF manifest file format".into());
            }
            if name.contains('/') || name.is_empty() {
                return Err("File can't be a path, just a filename".into());
            }
            match kind {
                'b' => {
                    if m.base.is_some() {
                        return Err("Found duplicate base file information".into());
                    }
                    m.base_seq = seq;
                    m.base = Some(Part {
                        name,
                        seq,
                        kind: PartKind::Base,
                    });
                }
                'h' => m.history.push(Part {
                    name,
                    seq,
                    kind: PartKind::History,
                }),
                'i' => {
                    if seq <= m.incr.last().map_or(0, |p| p.seq) {
                        return Err("Found a non-monotonic sequence number".into());
                    }
                    m.incr_seq = seq;
                    m.incr.push(Part {
                        name,
                        seq,
                        kind: PartKind::Incr,
                    });
                }
                _ => return Err("Unknown AOF file type".into()),
            }
        }
        if lines == 0 {
            return Err("Found an empty AOF manifest".into());
        }
        Ok(m)
    }

    /// The manifest's text: base, history, then incremental parts, one line each.
    pub fn format(&self) -> String {
        let mut out = String::new();
        for p in self.base.iter().chain(&self.history).chain(&self.incr) {
            let _ = writeln!(
                out,
                "file {} seq {} type {}",
                quote_if_needed(&p.name),
                p.seq,
                p.kind.letter()
            );
        }
        out
    }

    /// Names a new base file (`rdb`: RDB format, else commands) and moves the current base
    /// to history. Returns the new base's name.
    pub fn new_base(&mut self, prefix: &str, rdb: bool) -> String {
        if let Some(mut old) = self.base.take() {
            old.kind = PartKind::History;
            self.history.push(old);
        }
        self.base_seq += 1;
        let ext = if rdb { "rdb" } else { "aof" };
        let name = format!("{prefix}.{}.base.{ext}", self.base_seq);
        self.base = Some(Part {
            name: name.clone(),
            seq: self.base_seq,
            kind: PartKind::Base,
        });
        name
    }

    /// Names a new incremental file and appends it. Returns its name.
    pub fn new_incr(&mut self, prefix: &str) -> String {
        self.incr_seq += 1;
        let name = format!("{prefix}.{}.incr.aof", self.incr_seq);
        self.incr.push(Part {
            name: name.clone(),
            seq: self.incr_seq,
            kind: PartKind::Incr,
        });
        name
    }

    /// Moves every incremental part except the last `keep` to history (after a rewrite whose
    /// base covers them).
    pub fn retire_incr(&mut self, keep: usize) {
        let cut = self.incr.len().saturating_sub(keep);
        for mut p in self.incr.drain(..cut) {
            p.kind = PartKind::History;
            self.history.push(p);
        }
    }
}

fn parse_seq(s: &str) -> u64 {
    // Like atoll: leading digits, anything else gives 0 (refused as "invalid format").
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or(0)
}

/// A file name as the manifest writes it: quoted and escaped (Redis's `sdscatrepr`) if it
/// holds blanks, quotes or unprintable bytes.
fn quote_if_needed(name: &str) -> String {
    let plain = name
        .bytes()
        .all(|c| c.is_ascii_graphic() && c != b'"' && c != b'\'' && c != b'\\');
    if plain {
        return name.to_string();
    }
    let mut out = String::from("\"");
    for c in name.bytes() {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            7 => out.push_str("\\a"),
            8 => out.push_str("\\b"),
            c if c.is_ascii_graphic() || c == b' ' => out.push(c as char),
            c => {
                let _ = write!(out, "\\x{c:02x}");
            }
        }
    }
    out.push('"');
    out
}

/// Why reading an AOF command file stopped.
#[derive(Debug)]
pub enum ReadError {
    /// The file ends inside a command: everything up to `valid_len` bytes was whole.
    Truncated {
        valid_len: u64,
    },
    /// The bytes at `offset` are not an AOF command.
    Format {
        offset: u64,
        msg: String,
    },
    Io(std::io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Truncated { valid_len } => {
                write!(f, "unexpected end of file after {valid_len} valid bytes")
            }
            ReadError::Format { offset, msg } => {
                write!(
                    f,
                    "Bad file format reading the append only file at offset {offset}: {msg}"
                )
            }
            ReadError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Most arguments one command in an AOF may have, and the longest argument: bounds so a
/// corrupt length never makes the loader allocate without limit.
const MAX_ARGS: u64 = 1 << 24;
const MAX_ARG_LEN: u64 = 1 << 32;

/// Reads the commands of an AOF file (RESP arrays of bulk strings; `#` annotation lines, as
/// `aof-timestamp-enabled` writes them, are skipped).
pub struct CommandReader<R> {
    r: R,
    /// Bytes consumed through the last whole command.
    pub offset: u64,
}

impl<R: BufRead> CommandReader<R> {
    /// Reads from `r`, whose first `offset` bytes were consumed already (an RDB preamble).
    pub fn new(r: R, offset: u64) -> Self {
        CommandReader { r, offset }
    }

    /// The next command, or `None` at a clean end of file.
    pub fn next_command(&mut self) -> Result<Option<Vec<Vec<u8>>>, ReadError> {
        let mut pos = self.offset;
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = self.r.read_until(b'\n', &mut line).map_err(ReadError::Io)?;
            if n == 0 {
                return Ok(None);
            }
            if line[0] != b'#' {
                break;
            }
            if !line.ends_with(b"\n") {
                return Err(self.truncated());
            }
            pos += n as u64;
            self.offset = pos;
        }
        let argc = self.header(&line, b'*', pos)?;
        pos += line.len() as u64;
        if argc == 0 || argc > MAX_ARGS {
            return Err(format_err(pos, "invalid argument count"));
        }
        let mut args = Vec::with_capacity(argc.min(1024) as usize);
        for _ in 0..argc {
            line.clear();
            let n = self.r.read_until(b'\n', &mut line).map_err(ReadError::Io)?;
            let len = self.header(&line, b'$', pos)?;
            pos += n as u64;
            if len > MAX_ARG_LEN {
                return Err(format_err(pos, "argument too long"));
            }
            let mut arg = Vec::new();
            let got = (&mut self.r)
                .take(len + 2)
                .read_to_end(&mut arg)
                .map_err(ReadError::Io)?;
            if (got as u64) < len + 2 {
                return Err(self.truncated());
            }
            if !arg.ends_with(b"\r\n") {
                return Err(format_err(pos, "argument not followed by CRLF"));
            }
            arg.truncate(len as usize);
            pos += len + 2;
            args.push(arg);
        }
        self.offset = pos;
        Ok(Some(args))
    }

    /// Parses a `*<n>\r\n` or `$<n>\r\n` line.
    fn header(&self, line: &[u8], marker: u8, pos: u64) -> Result<u64, ReadError> {
        if !line.ends_with(b"\n") {
            return Err(self.truncated());
        }
        let body = line
            .strip_suffix(b"\r\n")
            .and_then(|l| l.strip_prefix(&[marker]))
            .ok_or_else(|| format_err(pos, "expected a RESP header"))?;
        std::str::from_utf8(body)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| format_err(pos, "invalid length"))
    }

    fn truncated(&self) -> ReadError {
        ReadError::Truncated {
            valid_len: self.offset,
        }
    }
}

fn format_err(offset: u64, msg: &str) -> ReadError {
    ReadError::Format {
        offset,
        msg: msg.into(),
    }
}

/// Appends `args` as an AOF (RESP) command.
pub fn encode_command<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) {
    out.push(b'*');
    out.extend_from_slice(args.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        let a = a.as_ref();
        out.push(b'$');
        out.extend_from_slice(a.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trip() {
        let text = "file appendonly.aof.1.base.rdb seq 1 type b\n\
                    file appendonly.aof.1.incr.aof seq 1 type h\n\
                    file appendonly.aof.2.incr.aof seq 2 type i\n";
        let m = Manifest::parse(text).unwrap();
        assert_eq!(m.base.as_ref().unwrap().name, "appendonly.aof.1.base.rdb");
        assert_eq!(m.incr.len(), 1);
        assert_eq!(m.history.len(), 1);
        assert_eq!(m.format(), text);
    }

    #[test]
    fn manifest_errors_and_quotes() {
        assert!(Manifest::parse("").is_err());
        assert!(Manifest::parse("file a seq 1\n").is_err());
        assert!(Manifest::parse("file a/b seq 1 type b\n").is_err());
        assert!(Manifest::parse("file a seq 2 type i\nfile b seq 1 type i\n").is_err());
        assert!(Manifest::parse("file a seq 1 type b").is_err());
        let m = Manifest::parse("# c\nfile \"a b\" seq 3 type i extra x\n").unwrap();
        assert_eq!(m.incr[0].name, "a b");
        assert_eq!(m.format(), "file \"a b\" seq 3 type i\n");
        let mut m = Manifest::default();
        assert_eq!(m.new_base("x", true), "x.1.base.rdb");
        assert_eq!(m.new_incr("x"), "x.1.incr.aof");
        assert_eq!(m.new_base("x", false), "x.2.base.aof");
        assert_eq!(m.history.len(), 1);
    }

    #[test]
    fn reads_commands_and_detects_truncation() {
        let mut buf = Vec::new();
        encode_command(&mut buf, &["SET", "k", "v"]);
        buf.extend_from_slice(b"#TS:1\r\n");
        encode_command(&mut buf, &["DEL", "k"]);
        let whole = buf.len() as u64;
        let mut r = CommandReader::new(&buf[..], 0);
        assert_eq!(r.next_command().unwrap().unwrap()[0], b"SET");
        assert_eq!(r.next_command().unwrap().unwrap()[1], b"k");
        assert!(r.next_command().unwrap().is_none());
        assert_eq!(r.offset, whole);
        for cut in 1..buf.len() {
            let mut r = CommandReader::new(&buf[..cut], 0);
            let mut last_ok = 0;
            loop {
                match r.next_command() {
                    Ok(Some(_)) => last_ok = r.offset,
                    Ok(None) => break,
                    Err(ReadError::Truncated { valid_len }) => {
                        // Whole commands (and whole annotation lines) before the cut.
                        assert!(valid_len >= last_ok && valid_len <= cut as u64);
                        break;
                    }
                    Err(e) => panic!("cut {cut}: {e}"),
                }
            }
        }
        let mut r = CommandReader::new(&b"+OK\r\n"[..], 0);
        assert!(matches!(r.next_command(), Err(ReadError::Format { .. })));
    }
}
