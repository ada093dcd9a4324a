//! HyperLogLog commands: PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST.
//!
//! HLLs are ordinary strings in Redis's exact format (see `flowkv_store::hll`), so GET, SET,
//! DUMP and RDB move them to and from Redis unchanged. Writes edit the stored string in place
//! (a dense HLL is 12KB; an add changes one register), keeping the key's TTL.

use flowkv_protocol::Args;
use flowkv_store::hll::{self, Encoding, HllError, REGISTERS};
use flowkv_store::{Entry, Keys, Value};

use crate::command::keyspec as ks;
use crate::command::{acl, flags::*, Command, Group};
use crate::config::notify::STRING;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::server::Server;

pub static COMMANDS: &[Command] = &[
    Command::new("pfadd", -2, Group::Hyperloglog)
        .flags(WRITE | DENYOOM | FAST)
        .acl(acl::HYPERLOGLOG)
        .keys(1, 1, 1)
        .key_specs(&[ks::key_at(1, ks::RW | ks::INSERT)])
        .handler(pfadd)
        .doc(
            "Adds the specified elements to the specified HyperLogLog.",
            "2.8.9",
            "O(1) to add every element.",
        ),
    Command::new("pfcount", -2, Group::Hyperloglog)
        .flags(READONLY | MAY_REPLICATE)
        .acl(acl::HYPERLOGLOG)
        .keys(1, -1, 1)
        .key_specs(&[
            ks::spec(ks::RW | ks::ACCESS, ks::index(1), ks::range(-1, 1, 0))
                .notes("RW because it may change the internal representation of the key, and propagate to replicas"),
        ])
        .handler(pfcount)
        .doc(
            "Return the approximated cardinality of the set(s) observed by the HyperLogLog at key(s).",
            "2.8.9",
            "O(1) with a very small average constant time when called with a single key. O(N) with N being the number of keys, and much bigger constant times, when called with multiple keys.",
        ),
    Command::new("pfmerge", -2, Group::Hyperloglog)
        .flags(WRITE | DENYOOM)
        .acl(acl::HYPERLOGLOG)
        .keys(1, -1, 1)
        .key_specs(&[
            ks::key_at(1, ks::RW | ks::ACCESS | ks::INSERT),
            ks::spec(ks::RO | ks::ACCESS, ks::index(2), ks::range(-1, 1, 0)),
        ])
        .handler(pfmerge)
        .doc(
            "Merge N different HyperLogLogs into a single one.",
            "2.8.9",
            "O(N) to merge N HyperLogLogs, but with high constant times.",
        ),
    Command::new("pfdebug", 3, Group::Hyperloglog)
        .flags(WRITE | DENYOOM | ADMIN)
        .acl(acl::HYPERLOGLOG)
        .keys(2, 2, 1)
        .key_specs(&[ks::key_at(2, ks::RW | ks::ACCESS)])
        .handler(pfdebug)
        .doc(
            "Internal commands for debugging HyperLogLog values",
            "2.8.9",
            "N/A",
        ),
    Command::new("pfselftest", 1, Group::Hyperloglog)
        .flags(ADMIN)
        .acl(acl::HYPERLOGLOG)
        .handler(pfselftest)
        .doc(
            "An internal command for testing HyperLogLog values",
            "2.8.9",
            "N/A",
        ),
];

impl From<HllError> for CmdError {
    fn from(e: HllError) -> CmdError {
        CmdError::msg(e.message())
    }
}

/// `hll-sparse-max-bytes`: past this size a sparse HLL is converted to dense. Read only when
/// a sparse HLL is edited (dense ones, the common case for busy keys, never need it).
fn sparse_max(srv: &Server) -> usize {
    srv.config.get_u64("hll-sparse-max-bytes") as usize
}

/// True for a sparse HLL (one that an edit may grow).
fn is_sparse(buf: &[u8]) -> bool {
    hll::check(buf) == Ok(Encoding::Sparse)
}

/// The string at `key` checked as an HLL, with its encoding: WRONGTYPE for another type,
/// "not a valid HyperLogLog" for a string that isn't one. `None` if the key is missing.
fn read_hll<'k>(
    keys: &'k mut Keys<'_, '_>,
    key: &[u8],
) -> Result<Option<(&'k [u8], Encoding)>, CmdError> {
    let Some(e) = keys.read(key) else {
        return Ok(None);
    };
    let s = e.string().ok_or(CmdError::WrongType)?;
    Ok(Some((s, hll::check(s)?)))
}

/// The HLL at `key` as an editable buffer; a new empty HLL is created if the key is missing.
/// Returns the buffer and whether it was created.
fn hll_for_write<'k>(
    keys: &'k mut Keys<'_, '_>,
    key: &[u8],
) -> Result<(&'k mut Vec<u8>, bool), CmdError> {
    let created = match keys.write(key) {
        None => {
            let v = Value::RawStr(Box::new(hll::new_sparse()));
            keys.insert(Entry::new_value(key, v, None, 0));
            true
        }
        Some(e) => {
            hll::check(e.string().ok_or(CmdError::WrongType)?)?;
            false
        }
    };
    let buf = keys
        .write(key)
        .and_then(Entry::string_mut)
        .ok_or(CmdError::WrongType)?;
    Ok((buf, created))
}

/// PFADD key [element ...]: 1 if the key was created or a register changed. Each change
/// counts as a dataset change, as in Redis.
fn pfadd(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let srv = ctx.srv;
    let updated = {
        let mut keys = ctx.keys();
        let (buf, created) = hll_for_write(&mut keys, args.get(1))?;
        let max = if is_sparse(buf) { sparse_max(srv) } else { 0 };
        let mut updated = u64::from(created);
        for ele in args.iter().skip(2) {
            updated += u64::from(hll::add(buf, ele, max)?);
        }
        if updated > 0 {
            hll::invalidate_cache(buf);
        }
        updated
    };
    if updated > 0 {
        crate::notify::event(ctx, STRING, "pfadd", args.get(1));
    }
    ctx.dirty += updated;
    ctx.out.int(i64::from(updated > 0));
    Ok(())
}

/// PFCOUNT key [key ...]: one key's estimate (cached in its header, which this read-only
/// command refreshes as Redis does), or the estimate of several keys' union, computed in a
/// scratch register array without touching them.
fn pfcount(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if args.len() > 2 {
        let mut max = [0u8; REGISTERS];
        let (mut keys, out) = ctx.keys_out();
        for key in args.iter().skip(1) {
            if let Some((s, _)) = read_hll(&mut keys, key)? {
                hll::merge_into(&mut max, s)?;
            }
        }
        out.int(hll::count_registers(&max) as i64);
        return Ok(());
    }
    let key = args.get(1);
    let (card, refreshed) = {
        let mut keys = ctx.keys();
        match read_hll(&mut keys, key)? {
            None => (0, false),
            Some((s, _)) => match hll::cached_card(s) {
                Some(card) => (card, false),
                None => {
                    let card = hll::count(s)?;
                    if let Some(buf) = keys.write(key).and_then(Entry::string_mut) {
                        hll::set_cached_card(buf, card);
                    }
                    (card, true)
                }
            },
        }
    };
    ctx.dirty += u64::from(refreshed);
    ctx.out.int(card as i64);
    Ok(())
}

/// PFMERGE dest [source ...]: dest becomes the union of itself and the sources (created if
/// missing). Like Redis 7.0, dest turns dense if any input is dense; otherwise the union's
/// registers are written into it one by one, so its bytes match Redis's.
fn pfmerge(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let srv = ctx.srv;
    {
        let mut keys = ctx.keys();
        let mut max = [0u8; REGISTERS];
        let mut any_dense = false;
        for key in args.iter().skip(1) {
            if let Some((s, enc)) = read_hll(&mut keys, key)? {
                any_dense |= enc == Encoding::Dense;
                hll::merge_into(&mut max, s)?;
            }
        }
        let (buf, _) = hll_for_write(&mut keys, args.get(1))?;
        if any_dense {
            hll::to_dense(buf)?;
        }
        let sparse = if is_sparse(buf) { sparse_max(srv) } else { 0 };
        for (i, &v) in max.iter().enumerate().filter(|(_, &v)| v > 0) {
            hll::set_register(buf, i, v, sparse)?;
        }
        hll::invalidate_cache(buf);
    }
    // Redis reports a merge as a mass PFADD on the destination.
    crate::notify::event(ctx, STRING, "pfadd", args.get(1));
    ctx.dirty += 1;
    ctx.out.ok();
    Ok(())
}

/// PFDEBUG GETREG|DECODE|ENCODING|TODENSE key: inspection for tests. GETREG and TODENSE
/// convert a sparse HLL to dense (a change, counted as such).
fn pfdebug(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (sub, key) = (args.get(1), args.get(2));
    let converted = pfdebug_on(ctx, sub, key)?;
    ctx.dirty += u64::from(converted);
    Ok(())
}

/// PFDEBUG's work on the key; true if it converted the HLL to dense.
fn pfdebug_on(ctx: &mut Ctx<'_>, sub: &[u8], key: &[u8]) -> Result<bool, CmdError> {
    let (mut keys, out) = ctx.keys_out();
    let Some(e) = keys.write(key) else {
        return Err(CmdError::msg("ERR The specified key does not exist"));
    };
    let enc = hll::check(e.string().ok_or(CmdError::WrongType)?)?;
    let mut converted = false;
    if sub.eq_ignore_ascii_case(b"getreg") || sub.eq_ignore_ascii_case(b"todense") {
        let buf = e.string_mut().ok_or(CmdError::WrongType)?;
        converted = hll::to_dense(buf)?;
        if sub.eq_ignore_ascii_case(b"getreg") {
            let regs = hll::dense_registers(buf);
            out.array(regs.len());
            regs.iter().for_each(|&r| out.int(i64::from(r)));
        } else {
            out.int(i64::from(converted));
        }
    } else if sub.eq_ignore_ascii_case(b"decode") {
        if enc != Encoding::Sparse {
            return Err(CmdError::msg("ERR HLL encoding is not sparse"));
        }
        out.bulk(hll::decode_sparse(e.string().unwrap_or_default()).as_bytes());
    } else if sub.eq_ignore_ascii_case(b"encoding") {
        out.simple(enc.name().as_bytes());
    } else {
        return Err(CmdError::msg(format!(
            "ERR Unknown PFDEBUG subcommand '{}'",
            String::from_utf8_lossy(sub)
        )));
    }
    Ok(converted)
}

/// PFSELFTEST: checks the register encoding and the estimator's error (about a second of
/// work, holding no key locks).
fn pfselftest(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    hll::self_test(&mut rand::thread_rng(), sparse_max(ctx.srv)).map_err(CmdError::msg)?;
    ctx.out.ok();
    Ok(())
}
