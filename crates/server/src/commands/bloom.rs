//! Bloom filter commands (BF.*), compatible with RedisBloom: the same arguments, defaults
//! (error rate 0.01, capacity 100, expansion 2), replies (booleans in RESP3), error lines and
//! scaling, and the same `MBbloom--` value layout (see `flowkv_store::bloom`), so BF.SCANDUMP
//! output and RDB files move between flowkv and Redis with RedisBloom.
//!
//! RedisBloom's quirks are kept where clients could notice them: BF.EXISTS on a key of
//! another type answers 0 rather than WRONGTYPE, some errors have no `ERR` prefix, and an
//! insert into a full non-scaling filter ends BF.MADD's reply with an error element.

use flowkv_protocol::Args;
use flowkv_store::bloom::{BloomError, BloomValue};
use flowkv_store::num::{parse_f64, parse_i64};
use flowkv_store::{Entry, Keys, Value, ValueMut, ValueRef};

use crate::command::{acl, flags::*, Command, Group};
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};

pub static COMMANDS: &[Command] = &[
    Command::new("bf.reserve", -4, Group::Module)
        .flags(WRITE | DENYOOM)
        .acl(acl::FAST)
        .keys(1, 1, 1)
        .handler(reserve)
        .doc("Creates a new Bloom Filter", "1.0.0", "O(1)"),
    Command::new("bf.add", 3, Group::Module)
        .flags(WRITE | DENYOOM)
        .keys(1, 1, 1)
        .handler(add)
        .doc(
            "Adds an item to a Bloom Filter",
            "1.0.0",
            "O(k), where k is the number of hash functions used by the last sub-filter",
        ),
    Command::new("bf.madd", -3, Group::Module)
        .flags(WRITE | DENYOOM)
        .keys(1, 1, 1)
        .handler(madd)
        .doc(
            "Adds one or more items to a Bloom Filter. A filter will be created if it does not exist",
            "1.0.0",
            "O(k * n), where k is the number of hash functions and n is the number of items",
        ),
    Command::new("bf.insert", -4, Group::Module)
        .flags(WRITE | DENYOOM)
        .keys(1, 1, 1)
        .handler(insert)
        .doc(
            "Adds one or more items to a Bloom Filter. A filter will be created if it does not exist",
            "1.0.0",
            "O(k * n), where k is the number of hash functions and n is the number of items",
        ),
    Command::new("bf.exists", 3, Group::Module)
        .flags(READONLY | FAST)
        .keys(1, 1, 1)
        .handler(exists)
        .doc(
            "Checks whether an item exists in a Bloom Filter",
            "1.0.0",
            "O(k), where k is the number of hash functions used by the last sub-filter",
        ),
    Command::new("bf.mexists", -3, Group::Module)
        .flags(READONLY | FAST)
        .keys(1, 1, 1)
        .handler(mexists)
        .doc(
            "Checks whether one or more items exist in a Bloom Filter",
            "1.0.0",
            "O(k * n), where k is the number of hash functions and n is the number of items",
        ),
    Command::new("bf.info", -2, Group::Module)
        .flags(READONLY | FAST)
        .keys(1, 1, 1)
        .handler(info)
        .doc("Returns information about a Bloom Filter", "1.0.0", "O(1)"),
    Command::new("bf.card", 2, Group::Module)
        .flags(READONLY | FAST)
        .keys(1, 1, 1)
        .handler(card)
        .doc("Returns the cardinality of a Bloom filter", "2.4.4", "O(1)"),
    Command::new("bf.scandump", 3, Group::Module)
        .flags(READONLY | FAST)
        .keys(1, 1, 1)
        .handler(scandump)
        .doc(
            "Begins an incremental save of the bloom filter",
            "1.0.0",
            "O(n), where n is the capacity",
        ),
    Command::new("bf.loadchunk", 4, Group::Module)
        .flags(WRITE | DENYOOM)
        .keys(1, 1, 1)
        .handler(loadchunk)
        .doc(
            "Restores a filter previously saved using SCANDUMP",
            "1.0.0",
            "O(n), where n is the capacity",
        ),
    Command::new("bf.debug", 2, Group::Module)
        .flags(READONLY | FAST)
        .keys(1, 1, 1)
        .handler(debug)
        .doc(
            "Returns internal debug information about a Bloom Filter",
            "1.0.0",
            "O(n), where n is the number of sub-filters",
        ),
];

/// RedisBloom's defaults.
const DEFAULT_ERROR: f64 = 0.01;
const DEFAULT_CAPACITY: u64 = 100;
const DEFAULT_EXPANSION: i64 = 2;
/// Error rates above this are lowered to it.
const ERROR_CAP: f64 = 0.25;
/// Ranges RedisBloom accepts.
const MAX_CAPACITY: i64 = 1 << 30;
const MAX_EXPANSION: i64 = 32768;
/// Largest chunk BF.SCANDUMP returns.
const MAX_SCANDUMP_CHUNK: usize = 16 << 20;

fn not_found() -> CmdError {
    CmdError::msg("ERR not found")
}

/// The filter at `key`: `Ok(None)` if missing, WRONGTYPE for another type.
fn filter(e: Option<&Entry>) -> Result<Option<&BloomValue>, CmdError> {
    match e.map(Entry::value) {
        None => Ok(None),
        Some(ValueRef::Bloom(bf)) => Ok(Some(bf)),
        Some(_) => Err(CmdError::WrongType),
    }
}

/// An existing filter, for commands that need one ("ERR not found" otherwise).
fn existing(e: Option<&Entry>) -> Result<&BloomValue, CmdError> {
    filter(e)?.ok_or_else(not_found)
}

/// The error for a filter that could not be created.
fn create_error(e: BloomError) -> CmdError {
    CmdError::msg(match e {
        BloomError::TooLarge => "ERR Insufficient memory to create filter",
        BloomError::Invalid => "ERR could not create filter",
    })
}

/// Creation parameters (BF.RESERVE, and BF.INSERT/BF.ADD when they create the filter).
struct Params {
    error: f64,
    capacity: u64,
    expansion: u32,
    scaling: bool,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            error: DEFAULT_ERROR,
            capacity: DEFAULT_CAPACITY,
            expansion: DEFAULT_EXPANSION as u32,
            scaling: true,
        }
    }
}

impl Params {
    fn create(&self) -> Result<BloomValue, CmdError> {
        BloomValue::new(self.capacity, self.error, self.expansion, self.scaling)
            .map_err(create_error)
    }
}

/// A valid error rate (in (0, 1), capped at 0.25), or `None`.
fn error_rate(arg: &[u8]) -> Option<f64> {
    parse_f64(arg)
        .filter(|e| *e > 0.0 && *e < 1.0)
        .map(|e| e.min(ERROR_CAP))
}

fn in_range(arg: &[u8], min: i64, max: i64) -> Option<Result<i64, ()>> {
    parse_i64(arg).map(|v| {
        if (min..=max).contains(&v) {
            Ok(v)
        } else {
            Err(())
        }
    })
}

/// BF.RESERVE key error_rate capacity [EXPANSION expansion] [NONSCALING]: creates an empty
/// filter; "ERR item exists" if the key exists. Like RedisBloom, options are looked up
/// anywhere after the capacity and unknown words are ignored.
fn reserve(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if args.len() > 7 {
        return Err(CmdError::Arity("bf.reserve".into()));
    }
    let error = match parse_f64(args.get(2)) {
        None => return Err(CmdError::msg("ERR bad error rate")),
        Some(_) => error_rate(args.get(2)).ok_or(CmdError::msg(
            "ERR error rate must be in the range (0.000000, 1.000000)",
        ))?,
    };
    let capacity = match in_range(args.get(3), 1, MAX_CAPACITY) {
        None => return Err(CmdError::msg("ERR bad capacity")),
        Some(Err(())) => {
            return Err(CmdError::msg(format!(
                "ERR capacity must be in the range [1, {MAX_CAPACITY}]"
            )))
        }
        Some(Ok(c)) => c as u64,
    };
    let opts: Vec<&[u8]> = args.iter().skip(4).collect();
    let mut p = Params {
        error,
        capacity,
        scaling: !opts.iter().any(|o| o.eq_ignore_ascii_case(b"nonscaling")),
        ..Params::default()
    };
    if let Some(i) = opts
        .iter()
        .position(|o| o.eq_ignore_ascii_case(b"expansion"))
    {
        let arg = opts.get(i + 1).ok_or(CmdError::msg("ERR no expansion"))?;
        let v = parse_i64(arg).ok_or(CmdError::msg("ERR bad expansion"))?;
        if v == 0 {
            p.scaling = false;
        } else if !p.scaling {
            return Err(CmdError::msg("Nonscaling filters cannot expand"));
        }
        if !(0..=MAX_EXPANSION).contains(&v) {
            return Err(CmdError::msg(format!(
                "ERR expansion must be in the range [0, {MAX_EXPANSION}]"
            )));
        }
        p.expansion = v as u32;
    }
    let key = args.get(1);
    let mut keys = ctx.keys();
    if filter(keys.peek(key))?.is_some() {
        return Err(CmdError::msg("ERR item exists"));
    }
    keys.insert(Entry::new_value(
        key,
        Value::Bloom(Box::new(p.create()?)),
        None,
        0,
    ));
    ctx.dirty += 1;
    ctx.out.ok();
    Ok(())
}

/// Adds `items` to the filter at `key`, creating it with `p` unless `p` is `None`
/// (NOCREATE). Returns each item's outcome: new or not, or the error that stopped the
/// inserts (a full non-scaling filter, or a link that can't be added).
fn add_items(
    keys: &mut Keys<'_, '_>,
    key: &[u8],
    items: Args<'_>,
    from: usize,
    p: Option<&Params>,
) -> Result<Vec<Result<bool, &'static str>>, CmdError> {
    let bf = match keys.write(key) {
        Some(e) => match e.value_mut() {
            Some(ValueMut::Bloom(bf)) => bf,
            _ => return Err(CmdError::WrongType),
        },
        None => {
            let bf = p.ok_or_else(not_found)?.create()?;
            keys.insert(Entry::new_value(key, Value::Bloom(Box::new(bf)), None, 0));
            match keys.write(key).and_then(Entry::value_mut) {
                Some(ValueMut::Bloom(bf)) => bf,
                _ => unreachable!("inserted above"),
            }
        }
    };
    let mut out = Vec::with_capacity(items.len() - from);
    for item in items.iter().skip(from) {
        let r = bf.add(item).map_err(|e| match e {
            None => "ERR non scaling filter is full",
            Some(_) => "ERR problem inserting into filter",
        });
        let stop = r.is_err();
        out.push(r);
        if stop {
            break;
        }
    }
    Ok(out)
}

/// Writes add results: booleans (RESP3) or 0/1, an error element where inserting stopped.
fn reply_adds(ctx: &mut Ctx<'_>, results: &[Result<bool, &'static str>], multi: bool) {
    if multi {
        ctx.out.array(results.len());
    }
    for r in results {
        match r {
            Ok(b) => ctx.out.boolean(*b),
            Err(msg) => {
                ctx.srv.count_error("ERR");
                ctx.out.error(msg);
            }
        }
    }
    let added = results.iter().filter(|r| matches!(r, Ok(true))).count();
    ctx.dirty += added as u64;
}

/// BF.ADD key item: 1 if the item is new, 0 if it (or a collision) was already there.
/// Creates the filter with the defaults if needed.
fn add(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let results = add_items(
        &mut ctx.keys(),
        args.get(1),
        args,
        2,
        Some(&Params::default()),
    )?;
    match results.first() {
        Some(Err(msg)) => Err(CmdError::msg(*msg)),
        _ => {
            reply_adds(ctx, &results, false);
            Ok(())
        }
    }
}

/// BF.MADD key item...: an array of BF.ADD's answers.
fn madd(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let results = add_items(
        &mut ctx.keys(),
        args.get(1),
        args,
        2,
        Some(&Params::default()),
    )?;
    reply_adds(ctx, &results, true);
    Ok(())
}

/// BF.INSERT key [CAPACITY c] [ERROR e] [EXPANSION x] [NOCREATE] [NONSCALING] ITEMS item...:
/// BF.MADD with the creation parameters given.
fn insert(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let arity = || CmdError::Arity("bf.insert".into());
    let mut p = Params::default();
    let mut create = true;
    let mut i = 2;
    let items = loop {
        let Some(opt) = args.try_get(i) else {
            return Err(arity());
        };
        let value = args.try_get(i + 1);
        let opt = opt.to_ascii_lowercase();
        match opt.as_slice() {
            b"items" => break i + 1,
            b"nocreate" => create = false,
            b"nonscaling" => p.scaling = false,
            b"error" | b"expansion" | b"capacity" => {
                let v = value.ok_or_else(arity)?;
                match opt.as_slice() {
                    b"error" => p.error = error_rate(v).ok_or(CmdError::msg("Bad error rate"))?,
                    b"expansion" => {
                        p.expansion = match in_range(v, 0, MAX_EXPANSION) {
                            Some(Ok(x)) => x as u32,
                            _ => return Err(CmdError::msg("Bad expansion")),
                        }
                    }
                    _ => {
                        p.capacity = match in_range(v, 1, MAX_CAPACITY) {
                            Some(Ok(c)) => c as u64,
                            _ => return Err(CmdError::msg("Bad capacity")),
                        }
                    }
                }
                i += 1;
            }
            _ => return Err(CmdError::msg("Unknown argument received")),
        }
        i += 1;
    };
    if items >= args.len() {
        return Err(arity());
    }
    if p.expansion == 0 {
        p.scaling = false;
    }
    let results = add_items(
        &mut ctx.keys(),
        args.get(1),
        args,
        items,
        create.then_some(&p),
    )?;
    reply_adds(ctx, &results, true);
    Ok(())
}

/// Writes whether each item may be in the filter at `key` (a missing key, or one of another
/// type, holds nothing, as in RedisBloom).
fn check(ctx: &mut Ctx<'_>, args: Args<'_>, multi: bool) -> CmdResult {
    let (mut keys, out) = ctx.keys_out();
    let bf = match keys.read(args.get(1)).map(Entry::value) {
        Some(ValueRef::Bloom(bf)) => Some(bf),
        _ => None,
    };
    if multi {
        out.array(args.len() - 2);
    }
    for item in args.iter().skip(2) {
        out.boolean(bf.is_some_and(|bf| bf.contains(item)));
    }
    Ok(())
}

/// BF.EXISTS key item: 1 if the item may have been added, 0 if it certainly was not.
fn exists(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    check(ctx, args, false)
}

/// BF.MEXISTS key item...: an array of BF.EXISTS's answers.
fn mexists(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    check(ctx, args, true)
}

/// BF.INFO key [CAPACITY | SIZE | FILTERS | ITEMS | EXPANSION]: the filter's parameters (a
/// map in RESP3), or one of them (a one-element array, or one-entry map in RESP3).
fn info(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::Arity("bf.info".into()));
    }
    let (mut keys, out) = ctx.keys_out();
    let bf = existing(keys.read(args.get(1)))?;
    let expansion = bf.is_scaling().then_some(i64::from(bf.growth));
    let fields = [
        ("capacity", "Capacity", Some(bf.capacity() as i64)),
        ("size", "Size", Some(bf.reported_size() as i64)),
        ("filters", "Number of filters", Some(bf.links.len() as i64)),
        ("items", "Number of items inserted", Some(bf.size as i64)),
        ("expansion", "Expansion rate", expansion),
    ];
    let write = |out: &mut flowkv_protocol::Reply<'_>, v: Option<i64>| match v {
        Some(n) => out.int(n),
        None => out.null(),
    };
    let Some(which) = args.try_get(2) else {
        out.map(fields.len());
        for (_, name, v) in fields {
            out.simple(name.as_bytes());
            write(out, v);
        }
        return Ok(());
    };
    let (_, name, v) = fields
        .into_iter()
        .find(|(arg, _, _)| which.eq_ignore_ascii_case(arg.as_bytes()))
        .ok_or(CmdError::msg("Invalid information value"))?;
    if out.is_resp3() {
        out.map(1);
        out.simple(name.as_bytes());
    } else {
        out.array(1);
    }
    write(out, v);
    Ok(())
}

/// BF.CARD key: the number of items added; 0 for a missing key.
fn card(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (mut keys, out) = ctx.keys_out();
    let n = filter(keys.read(args.get(1)))?.map_or(0, |bf| bf.size);
    out.int(n as i64);
    Ok(())
}

/// BF.SCANDUMP key iterator: [next iterator, data]. Iterator 0 gives the header (next is
/// 1); each later call gives up to 16 MiB of bit array; [0, ""] marks the end.
fn scandump(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (mut keys, out) = ctx.keys_out();
    let bf = existing(keys.read(args.get(1)))?;
    let iter = parse_i64(args.get(2)).ok_or(CmdError::msg("Second argument must be numeric"))?;
    out.array(2);
    if iter == 0 {
        out.int(1);
        out.bulk(&bf.dump_header());
        return Ok(());
    }
    match u64::try_from(iter)
        .ok()
        .and_then(|it| bf.chunk_at(it, MAX_SCANDUMP_CHUNK))
    {
        Some(chunk) => {
            out.int(iter + chunk.len() as i64);
            out.bulk(chunk);
        }
        None => {
            out.int(0);
            out.bulk(b"");
        }
    }
    Ok(())
}

/// BF.LOADCHUNK key iterator data: restores what BF.SCANDUMP returned, in order; iterator 1
/// (the header) creates the filter.
fn loadchunk(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let iter =
        parse_i64(args.get(2)).ok_or(CmdError::msg("ERR Second argument must be numeric"))?;
    let (key, data) = (args.get(1), args.get(3));
    let mut keys = ctx.keys();
    match keys.write(key) {
        None if iter == 1 => {
            let bf =
                BloomValue::from_dump_header(data).ok_or(CmdError::msg("ERR received bad data"))?;
            keys.insert(Entry::new_value(key, Value::Bloom(Box::new(bf)), None, 0));
        }
        None => return Err(not_found()),
        Some(e) => {
            let Some(ValueMut::Bloom(bf)) = e.value_mut() else {
                return Err(CmdError::WrongType);
            };
            let iter = u64::try_from(iter).unwrap_or(0);
            bf.load_chunk(iter, data).map_err(CmdError::msg)?;
        }
    }
    ctx.dirty += 1;
    ctx.out.ok();
    Ok(())
}

/// BF.DEBUG key: the item count, then one line per link, as RedisBloom prints them (the
/// ratio in Rust's shortest form rather than C's `%g`).
fn debug(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (mut keys, out) = ctx.keys_out();
    let bf = existing(keys.read(args.get(1)))?;
    let width = if bf.options & flowkv_store::bloom::OPT_FORCE64 != 0 {
        64
    } else {
        32
    };
    out.array(1 + bf.links.len());
    out.bulk(format!("size:{}", bf.size).as_bytes());
    for l in &bf.links {
        let line = format!(
            "bytes:{} bits:{} hashes:{} hashwidth:{width} capacity:{} size:{} ratio:{}",
            l.bytes.len(),
            l.bits,
            l.hashes,
            l.entries,
            l.size,
            l.error,
        );
        out.bulk(line.as_bytes());
    }
    Ok(())
}
