//! Argument parsing shared by the collection families (hashes, sets, sorted sets): the
//! options of HSCAN/SSCAN/ZSCAN and the count of HRANDFIELD/SRANDMEMBER/ZRANDMEMBER, which
//! Redis validates identically for all three types.

use flowkv_protocol::Args;

use super::string::int_arg;
use super::MAX_RANDOM_REPEATS;
use crate::error::CmdError;

/// `[MATCH pattern] [COUNT count]` from argument `from` on: (count, pattern), where the
/// pattern `*` (match everything) comes back as `None`.
pub(crate) fn scan_options(
    args: Args<'_>,
    from: usize,
) -> Result<(usize, Option<&[u8]>), CmdError> {
    let mut count = 10usize;
    let mut pattern = None;
    let mut i = from;
    while i < args.len() {
        let val = args.try_get(i + 1).ok_or(CmdError::Syntax)?;
        let opt = args.get(i);
        if opt.eq_ignore_ascii_case(b"count") {
            count = usize::try_from(int_arg(val)?)
                .ok()
                .filter(|&n| n >= 1)
                .ok_or(CmdError::Syntax)?;
        } else if opt.eq_ignore_ascii_case(b"match") {
            pattern = (val != b"*").then_some(val);
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    Ok((count, pattern))
}

/// The `count [WITHVALUES|WITHSCORES]` of a random-members command (argument 2 on), checked
/// in Redis's order: the integer, then the flag word (`pairs_word`; `None` for
/// SRANDMEMBER, which takes none and rejects any extra argument first), then the range.
/// Returns (count, whether the flag was given).
pub(crate) fn random_count(
    args: Args<'_>,
    pairs_word: Option<&[u8]>,
) -> Result<(i64, bool), CmdError> {
    if pairs_word.is_none() && args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let l = int_arg(args.get(2))?;
    if l == i64::MIN {
        return Err(CmdError::msg(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    let pairs = match (args.try_get(3), pairs_word) {
        (None, _) => false,
        (Some(w), Some(word)) if args.len() == 4 && w.eq_ignore_ascii_case(word) => true,
        _ => return Err(CmdError::Syntax),
    };
    let out_of_range = || CmdError::msg("ERR value is out of range");
    // Pairs double the reply: keep its length representable.
    if pairs && l.unsigned_abs() > (i64::MAX / 2) as u64 {
        return Err(out_of_range());
    }
    if l < 0 && l.unsigned_abs() > MAX_RANDOM_REPEATS {
        return Err(out_of_range());
    }
    Ok((l, pairs))
}
