//! CL.THROTTLE, redis-cell's rate limiter: the generic cell rate algorithm (GCRA).
//!
//! `CL.THROTTLE key max_burst count period [quantity]` allows `count` actions per `period`
//! seconds with bursts of up to `max_burst + 1`. The state is one number per key, the
//! "theoretical arrival time" (TAT, unix nanoseconds, as redis-cell stores it), kept as a
//! plain string key whose TTL is the time until the limit is fully reset: an idle limiter
//! disappears on its own. The command runs under its key's shard lock, so concurrent calls
//! on any threads are serialized and admit exactly the burst.
//!
//! Reply (redis-cell's): [limited 0/1, limit (max_burst + 1), remaining, retry after
//! (seconds, -1 when allowed), reset after (seconds)], seconds rounded up.

use flowkv_protocol::Args;
use flowkv_store::num::parse_i64;
use flowkv_store::Expire;

use crate::command::{acl, flags::*, Command, Group};
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};

pub static COMMANDS: &[Command] = &[Command::new("cl.throttle", -5, Group::Module)
    .flags(WRITE | DENYOOM | FAST)
    .acl(acl::STRING)
    .keys(1, 1, 1)
    .handler(throttle)
    .doc(
        "Rate-limits an action with the generic cell rate algorithm (redis-cell compatible)",
        "7.0.0",
        "O(1)",
    )];

const NS_PER_SEC: i128 = 1_000_000_000;
const NS_PER_MS: i128 = 1_000_000;

/// A limit: one token every `interval` ns, `tolerance` ns of burst (interval × limit).
#[derive(Clone, Copy, Debug)]
struct Limit {
    interval: i128,
    tolerance: i128,
    limit: i64,
}

/// The outcome of one GCRA step.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    limited: bool,
    remaining: i64,
    /// Nanoseconds; -1 s when allowed (or when the request can never fit).
    retry_after: i128,
    /// Nanoseconds until the limit is back to full.
    reset_after: i128,
    /// The TAT to store (and its TTL, `reset_after`), if the request was allowed.
    new_tat: Option<i128>,
}

impl Limit {
    /// redis-cell's rate: `count` per `period` seconds, emission interval truncated to ns.
    fn new(max_burst: i64, count: i64, period: i64) -> Result<Limit, CmdError> {
        if count == 0 || period == 0 {
            return Err(CmdError::msg("Cell error: Zero rates are not supported"));
        }
        let interval = ((i128::from(period) * NS_PER_SEC) as f64 / count as f64) as i128;
        let limit = max_burst
            .checked_add(1)
            .ok_or(CmdError::msg("Cell error: max_burst is too large"))?;
        Ok(Limit {
            interval,
            tolerance: interval * i128::from(limit),
            limit,
        })
    }

    /// Applies `quantity` tokens at `now` (ns) to a key whose stored TAT is `tat`.
    fn apply(&self, now: i128, tat: Option<i128>, quantity: i64) -> Outcome {
        let increment = self.interval * i128::from(quantity);
        let tat = tat.unwrap_or(now);
        let new_tat = tat.max(now) + increment;
        let diff = now - (new_tat - self.tolerance);
        let (limited, retry_after, ttl) = if diff < 0 {
            let retry = if increment <= self.tolerance {
                -diff
            } else {
                -NS_PER_SEC
            };
            (true, retry, tat - now)
        } else {
            (false, -NS_PER_SEC, new_tat - now)
        };
        let next = self.tolerance - ttl;
        let remaining = if next > -self.interval {
            // redis-cell divides whole microseconds.
            let unit = if self.interval >= 1000 { 1000 } else { 1 };
            ((next / unit) as f64 / (self.interval / unit) as f64) as i64
        } else {
            0
        };
        Outcome {
            limited,
            remaining,
            retry_after,
            reset_after: ttl,
            new_tat: (!limited).then_some(new_tat),
        }
    }
}

/// Whole seconds of `ns`, plus one if a millisecond or more is left over (redis-cell's
/// rounding; negative fractions are truncated).
fn round_up_secs(ns: i128) -> i64 {
    let secs = ns / NS_PER_SEC;
    let ms_left = (ns % NS_PER_SEC) / NS_PER_MS;
    (secs + i128::from(ms_left > 0)) as i64
}

fn int_arg(arg: &[u8]) -> Result<i64, CmdError> {
    let v = parse_i64(arg).ok_or_else(|| {
        CmdError::msg(format!(
            "Cell error: Couldn't parse as integer: {}",
            String::from_utf8_lossy(arg)
        ))
    })?;
    if v < 0 {
        return Err(CmdError::msg(
            "Cell error: max_burst, count per period, period and quantity must not be negative",
        ));
    }
    Ok(v)
}

/// CL.THROTTLE key max_burst count_per_period period [quantity].
fn throttle(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if args.len() > 6 {
        return Err(CmdError::msg(
            "Cell error: Usage: cl.throttle <key> <max_burst> <count per period> <period> [<quantity>]",
        ));
    }
    let limit = Limit::new(
        int_arg(args.get(2))?,
        int_arg(args.get(3))?,
        int_arg(args.get(4))?,
    )?;
    let quantity = args.try_get(5).map_or(Ok(1), int_arg)?;
    let key = args.get(1);
    let now_ms = ctx.now_ms;
    let mut keys = ctx.keys();
    let tat = match keys.read(key) {
        None => None,
        Some(e) => {
            let s = e.string().ok_or(CmdError::WrongType)?;
            let v = std::str::from_utf8(s)
                .ok()
                .and_then(|s| s.parse::<u64>().ok());
            Some(i128::from(v.ok_or(CmdError::msg(
                "Cell error: invalid digit found in string",
            ))?))
        }
    };
    let out = limit.apply(i128::from(now_ms) * NS_PER_MS, tat, quantity);
    if let Some(new_tat) = out.new_tat {
        let ttl_ms = out.reset_after / NS_PER_MS;
        if ttl_ms > 0 {
            let at = now_ms.saturating_add(u64::try_from(ttl_ms).unwrap_or(u64::MAX));
            keys.set_string(key, new_tat.to_string().as_bytes(), Expire::At(at));
        } else {
            keys.remove(key);
        }
        ctx.dirty += 1;
        // The clock-derived state replays as it is, not recomputed at replay time.
        crate::propagate::key_state(ctx, key);
    }
    ctx.prevent_propagation();
    ctx.out.array(5);
    ctx.out.int(i64::from(out.limited));
    ctx.out.int(limit.limit);
    ctx.out.int(out.remaining);
    ctx.out.int(round_up_secs(out.retry_after));
    ctx.out.int(round_up_secs(out.reset_after));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i128 = NS_PER_SEC;
    const MS: i128 = NS_PER_MS;

    /// redis-cell's `it_rate_limits` cases: limit 5 (max_burst 4), 1 per second. Each case
    /// is (offset from start in ms, quantity, remaining, reset after, retry after, limited).
    #[test]
    fn redis_cell_cases() {
        let limit = Limit::new(4, 1, 1).unwrap();
        let start = 1_700_000_000 * S;
        let cases: [(i128, i64, i64, i128, i128, bool); 15] = [
            (0, 6, 5, 0, -S, true),
            (0, 1, 4, S, -S, false),
            (0, 1, 3, 2 * S, -S, false),
            (0, 1, 2, 3 * S, -S, false),
            (0, 1, 1, 4 * S, -S, false),
            (0, 1, 0, 5 * S, -S, false),
            (0, 1, 0, 5 * S, S, true),
            (3000, 1, 2, 3000 * MS, -S, false),
            (3100, 1, 1, 3900 * MS, -S, false),
            (4000, 1, 1, 4000 * MS, -S, false),
            (8000, 1, 4, 1000 * MS, -S, false),
            (9500, 1, 4, 1000 * MS, -S, false),
            (9500, 0, 4, S, -S, false),
            (9500, 2, 2, 3 * S, -S, false),
            (9500, 5, 2, 3 * S, 3 * S, true),
        ];
        let mut tat = None;
        for (i, (at, qty, remaining, reset, retry, limited)) in cases.into_iter().enumerate() {
            let out = limit.apply(start + at * MS, tat, qty);
            assert_eq!(
                (out.limited, out.remaining, out.reset_after, out.retry_after),
                (limited, remaining, reset, retry),
                "case {i}"
            );
            tat = out.new_tat.or(tat);
        }
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(round_up_secs(-S), -1);
        assert_eq!(round_up_secs(2 * S), 2);
        assert_eq!(round_up_secs(2 * S + MS), 3);
        assert_eq!(round_up_secs(2 * S + MS / 2), 2);
    }
}
