//! Command arguments as spans into a byte buffer.
//!
//! A parsed command is not copied out of the connection's query buffer: the
//! parser records `(start, end)` offsets and [`Args`] pairs them with the
//! buffer. That keeps the hot path free of per-argument allocations, and the
//! borrow ties the arguments' lifetime to the buffer so the buffer cannot be
//! compacted while a command still looks at it.
//!
//! Offsets are `u32` rather than `usize` to halve the span array (8 bytes per
//! argument instead of 16), which matters for million-argument commands. It
//! limits one source buffer to 4 GiB; the server's query buffer is capped far
//! below that (`client-query-buffer-limit`, 1 GiB by default, and
//! `proto-max-bulk-len`, 512 MiB by default), and the parser rejects any
//! command whose offsets would not fit instead of truncating them.

use std::fmt;
use std::iter::FusedIterator;

/// A borrowed view of one command's arguments: spans into a source buffer.
///
/// `Copy`, two words wide: pass it by value.
#[derive(Clone, Copy)]
pub struct Args<'a> {
    src: &'a [u8],
    spans: &'a [(u32, u32)],
}

impl<'a> Args<'a> {
    /// Pairs a source buffer with `(start, end)` offsets into it.
    ///
    /// Offsets are not validated here (this is called once per command on the
    /// hot path); an out-of-range span makes [`Args::get`] panic.
    #[inline]
    pub fn new(src: &'a [u8], spans: &'a [(u32, u32)]) -> Self {
        Args { src, spans }
    }

    /// Number of arguments, the command name included.
    #[inline]
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when there are no arguments.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Argument `i`. Panics if `i >= len()`: commands check their arity
    /// before reading arguments, so an out-of-range index is a bug.
    #[inline]
    pub fn get(&self, i: usize) -> &'a [u8] {
        let (start, end) = self.spans[i];
        &self.src[start as usize..end as usize]
    }

    /// Argument `i`, or `None` past the end.
    #[inline]
    pub fn try_get(&self, i: usize) -> Option<&'a [u8]> {
        let &(start, end) = self.spans.get(i)?;
        self.src.get(start as usize..end as usize)
    }

    /// Iterates the arguments in order.
    #[inline]
    pub fn iter(&self) -> ArgsIter<'a> {
        ArgsIter {
            src: self.src,
            spans: self.spans.iter(),
        }
    }

    /// `args[i..]`: e.g. the arguments after the command name, or the
    /// command inside `EXEC`/`SCRIPT` wrappers, without copying. Panics if
    /// `i > len()`.
    #[inline]
    pub fn slice_from(&self, i: usize) -> Args<'a> {
        Args {
            src: self.src,
            spans: &self.spans[i..],
        }
    }

    /// Copies the arguments into one owned buffer (for the MULTI queue,
    /// scripts, replication): one allocation for the bytes and one for the
    /// spans, however many arguments there are.
    pub fn to_owned(&self) -> OwnedArgs {
        let total: usize = self.spans.iter().map(|&(s, e)| (e - s) as usize).sum();
        let mut owned = OwnedArgs {
            data: Vec::with_capacity(total),
            spans: Vec::with_capacity(self.spans.len()),
        };
        for arg in self.iter() {
            owned.push(arg);
        }
        owned
    }
}

impl fmt::Debug for Args<'_> {
    /// Shows each argument as an escaped byte string, e.g. `["SET", "k\r\n"]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|a| a.escape_ascii().to_string()))
            .finish()
    }
}

impl<'a> IntoIterator for Args<'a> {
    type Item = &'a [u8];
    type IntoIter = ArgsIter<'a>;
    #[inline]
    fn into_iter(self) -> ArgsIter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &Args<'a> {
    type Item = &'a [u8];
    type IntoIter = ArgsIter<'a>;
    #[inline]
    fn into_iter(self) -> ArgsIter<'a> {
        self.iter()
    }
}

/// Iterator over [`Args`]; exact-size and double-ended.
#[derive(Clone)]
pub struct ArgsIter<'a> {
    src: &'a [u8],
    spans: std::slice::Iter<'a, (u32, u32)>,
}

impl<'a> Iterator for ArgsIter<'a> {
    type Item = &'a [u8];
    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        let &(s, e) = self.spans.next()?;
        Some(&self.src[s as usize..e as usize])
    }
    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.spans.size_hint()
    }
}

impl<'a> DoubleEndedIterator for ArgsIter<'a> {
    #[inline]
    fn next_back(&mut self) -> Option<&'a [u8]> {
        let &(s, e) = self.spans.next_back()?;
        Some(&self.src[s as usize..e as usize])
    }
}

impl ExactSizeIterator for ArgsIter<'_> {}
impl FusedIterator for ArgsIter<'_> {}

/// Owned arguments (MULTI queue, scripts, replication): one byte buffer plus
/// spans, so a queued command costs two allocations rather than one per
/// argument, and [`OwnedArgs::as_args`] gives back the same [`Args`] view
/// the command table already takes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnedArgs {
    data: Vec<u8>,
    spans: Vec<(u32, u32)>,
}

impl OwnedArgs {
    /// An empty argument list; allocates nothing until the first push.
    pub fn new() -> Self {
        Self::default()
    }

    /// True if an argument of `len` bytes can be pushed without passing the 4 GiB
    /// limit, for callers that must not panic (see [`OwnedArgs::push`]).
    pub fn fits(&self, len: usize) -> bool {
        self.data
            .len()
            .checked_add(len)
            .is_some_and(|end| u32::try_from(end).is_ok())
    }

    /// Appends one argument. Panics if the total size would exceed 4 GiB
    /// (see the module docs: offsets are `u32`).
    pub fn push(&mut self, arg: &[u8]) {
        let start = self.data.len();
        let end = start + arg.len();
        let end32 = u32::try_from(end).expect("OwnedArgs holds at most 4 GiB of argument bytes");
        self.data.extend_from_slice(arg);
        self.spans.push((start as u32, end32));
    }

    /// Builds from anything yielding byte slices, e.g.
    /// `OwnedArgs::from_slices(["SET", "k", "v"])`.
    pub fn from_slices<I>(it: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let mut owned = Self::new();
        for arg in it {
            owned.push(arg.as_ref());
        }
        owned
    }

    /// A borrowed view, so owned and freshly parsed commands share one
    /// execution path.
    #[inline]
    pub fn as_args(&self) -> Args<'_> {
        Args::new(&self.data, &self.spans)
    }

    /// Number of arguments.
    #[inline]
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when there are no arguments.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Removes all arguments but keeps the allocations for reuse.
    pub fn clear(&mut self) {
        self.data.clear();
        self.spans.clear();
    }
}

impl<T: AsRef<[u8]>> FromIterator<T> for OwnedArgs {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        Self::from_slices(iter)
    }
}

impl<'a> From<Args<'a>> for OwnedArgs {
    fn from(args: Args<'a>) -> Self {
        args.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrowed_view() {
        let src = b"SETkeyvalue";
        let spans = [(0, 3), (3, 6), (6, 11)];
        let args = Args::new(src, &spans);
        assert_eq!(args.len(), 3);
        assert!(!args.is_empty());
        assert_eq!(args.get(0), b"SET");
        assert_eq!(args.get(2), b"value");
        assert_eq!(args.try_get(3), None);
        let all: Vec<&[u8]> = args.iter().collect();
        assert_eq!(all, [&b"SET"[..], b"key", b"value"]);
        assert_eq!(args.iter().len(), 3);
        assert_eq!(args.iter().next_back(), Some(&b"value"[..]));
        let tail = args.slice_from(1);
        assert_eq!(tail.len(), 2);
        assert_eq!(tail.get(0), b"key");
        assert!(args.slice_from(3).is_empty());
        assert_eq!(format!("{args:?}"), r#"["SET", "key", "value"]"#);
    }

    #[test]
    #[should_panic]
    fn get_out_of_range_panics() {
        let spans = [(0, 1)];
        Args::new(b"a", &spans).get(1);
    }

    #[test]
    fn owned_round_trip() {
        let mut owned = OwnedArgs::new();
        assert!(owned.is_empty());
        owned.push(b"SET");
        owned.push(b"");
        owned.push(b"a\r\nb");
        assert_eq!(owned.len(), 3);
        let args = owned.as_args();
        assert_eq!(args.get(1), b"");
        assert_eq!(args.get(2), b"a\r\nb");
        let again = args.to_owned();
        assert_eq!(again, owned);
        assert_eq!(OwnedArgs::from_slices(["SET", "", "a\r\nb"]), owned);
        assert_eq!(
            owned.as_args().slice_from(2).to_owned(),
            OwnedArgs::from_slices(["a\r\nb"])
        );
        let collected: OwnedArgs = vec![b"x".to_vec()].into_iter().collect();
        assert_eq!(collected.as_args().get(0), b"x");
        owned.clear();
        assert!(owned.is_empty());
        assert_eq!(owned, OwnedArgs::new());
    }
}
