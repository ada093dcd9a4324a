//! Geo commands: positions kept in sorted sets whose scores are 52-bit geohashes (see
//! [`crate::geohash`]), so every sorted-set command works on a geo key too.
//!
//! GEOADD adds like ZADD (NX/XX/CH); GEOPOS, GEODIST and GEOHASH decode scores; GEOSEARCH,
//! GEORADIUS and their variants scan the 9 cells around the centre and keep the points inside
//! the circle or box. Semantics, replies and error lines follow Redis 7.0's `geo.c`: distances
//! are bulk strings with 4 decimals (RESP2 and RESP3), coordinates are bulk strings in RESP2
//! and doubles in RESP3, both with up to 17 decimals.

use flowkv_protocol::{Args, Reply};
use flowkv_store::num::{parse_f64, parse_i64};
use flowkv_store::zset_value::{ScoreBound, ZSetLimits, ZSetValue};
use flowkv_store::{Entry, Keys, Value, ValueMut};

use super::zset::{as_zset, limits};
use crate::command::keyspec as ks;
use crate::command::{acl, flags::*, Command, Group, Handler, KeyPositions};
use crate::config::notify::{GENERIC, ZSET};
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::geohash::{self, HashBits, Shape, ShapeKind};

const fn geo_cmd(name: &'static str, arity: i32, flags: u32, h: Handler) -> Command {
    Command::new(name, arity, Group::Geo)
        .flags(flags)
        .acl(acl::GEO)
        .handler(h)
}

/// Complexity line of GEOSEARCH and GEOSEARCHSTORE.
const SEARCH_COMPLEXITY: &str = "O(N+log(M)) where N is the number of elements in the grid-aligned bounding box area around the shape provided as the filter and M is the number of items inside the shape";
/// Complexity line of the GEORADIUS family.
const RADIUS_COMPLEXITY: &str = "O(N+log(M)) where N is the number of elements inside the bounding box of the circular area delimited by center and radius and M is the number of items inside the index.";

pub static COMMANDS: &[Command] = &[
    geo_cmd("geoadd", -5, WRITE | DENYOOM, geoadd).keys(1, 1, 1).doc(
        "Add one or more geospatial items in the geospatial index represented using a sorted set",
        "3.2.0",
        "O(log(N)) for each item added, where N is the number of elements in the sorted set.",
    ),
    geo_cmd("geopos", -2, READONLY, geopos).keys(1, 1, 1).doc(
        "Returns longitude and latitude of members of a geospatial index",
        "3.2.0",
        "O(N) where N is the number of members requested.",
    ),
    geo_cmd("geodist", -4, READONLY, geodist).keys(1, 1, 1).doc(
        "Returns the distance between two members of a geospatial index",
        "3.2.0",
        "O(log(N))",
    ),
    geo_cmd("geohash", -2, READONLY, geohash_cmd).keys(1, 1, 1).doc(
        "Returns members of a geospatial index as standard geohash strings",
        "3.2.0",
        "O(log(N)) for each member requested, where N is the number of elements in the sorted set.",
    ),
    geo_cmd("geosearch", -7, READONLY, geosearch).keys(1, 1, 1).doc(
        "Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle.",
        "6.2.0",
        SEARCH_COMPLEXITY,
    ),
    geo_cmd("geosearchstore", -8, WRITE | DENYOOM, geosearchstore)
        .keys(1, 2, 1)
        .key_specs(&[ks::key_at(1, ks::OW | ks::UPDATE), ks::key_at(2, ks::RO | ks::ACCESS)])
        .doc(
            "Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle, and store the result in another key.",
            "6.2.0",
            SEARCH_COMPLEXITY,
        ),
    geo_cmd("georadius", -6, WRITE | DENYOOM, georadius)
        .movable_keys(georadius_keys)
        .key_specs(&[
            ks::key_at(1, ks::RO | ks::ACCESS),
            ks::spec(ks::OW | ks::UPDATE, ks::keyword("STORE", 6), ks::range(0, 1, 0)),
            ks::spec(ks::OW | ks::UPDATE, ks::keyword("STOREDIST", 6), ks::range(0, 1, 0)),
        ])
        .doc(
            "Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a point",
            "3.2.0",
            RADIUS_COMPLEXITY,
        ),
    geo_cmd("georadiusbymember", -5, WRITE | DENYOOM, georadiusbymember)
        .movable_keys(georadiusbymember_keys)
        .key_specs(&[
            ks::key_at(1, ks::RO | ks::ACCESS),
            ks::spec(ks::OW | ks::UPDATE, ks::keyword("STORE", 5), ks::range(0, 1, 0)),
            ks::spec(ks::OW | ks::UPDATE, ks::keyword("STOREDIST", 5), ks::range(0, 1, 0)),
        ])
        .doc(
            "Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a member",
            "3.2.0",
            RADIUS_COMPLEXITY,
        ),
    geo_cmd("georadius_ro", -6, READONLY, georadius_ro).keys(1, 1, 1).doc(
        "A read-only variant for GEORADIUS",
        "3.2.10",
        RADIUS_COMPLEXITY,
    ),
    geo_cmd("georadiusbymember_ro", -5, READONLY, georadiusbymember_ro)
        .keys(1, 1, 1)
        .doc(
            "A read-only variant for GEORADIUSBYMEMBER",
            "3.2.10",
            RADIUS_COMPLEXITY,
        ),
];

/// GEORADIUS keys (options start at argument 6).
fn georadius_keys(args: Args<'_>) -> KeyPositions {
    radius_keys(args, 6)
}

/// GEORADIUSBYMEMBER keys (options start at argument 5).
fn georadiusbymember_keys(args: Args<'_>) -> KeyPositions {
    radius_keys(args, 5)
}

/// The keys of a GEORADIUS[BYMEMBER] with options from `first_option` on: the source, then
/// what Redis 7.0's key specs report (the key after the first STORE, the key after the first
/// STOREDIST), then, if not already there, the destination the handler writes: the key after
/// the last STORE/STOREDIST. On every invocation the handler accepts, its parse picks that
/// same destination (option values before it are integers, never "store"), so it only
/// touches locked keys.
fn radius_keys(args: Args<'_>, first_option: usize) -> KeyPositions {
    let mut out = KeyPositions::new();
    if args.len() < 2 {
        return out;
    }
    out.push(1);
    let is_store = |i: usize| {
        let a = args.get(i);
        a.eq_ignore_ascii_case(b"store") || a.eq_ignore_ascii_case(b"storedist")
    };
    let keyword_key = |kw: &[u8]| {
        (first_option..args.len().saturating_sub(1))
            .find(|&i| args.get(i).eq_ignore_ascii_case(kw))
            .map(|i| i + 1)
    };
    out.extend(keyword_key(b"store"));
    out.extend(keyword_key(b"storedist"));
    let mut written = None;
    let mut i = first_option;
    while i + 1 < args.len() {
        if is_store(i) {
            written = Some(i + 1);
            i += 1;
        }
        i += 1;
    }
    if let Some(w) = written.filter(|w| !out.contains(w)) {
        out.push(w);
    }
    out
}

/// A float argument, or the given error line.
fn float_arg(arg: &[u8], err: &'static str) -> Result<f64, CmdError> {
    parse_f64(arg).ok_or(CmdError::msg(err))
}

/// The longitude and latitude at `args[i]`, `args[i + 1]`, inside the indexable limits.
fn lon_lat_arg(args: Args<'_>, i: usize) -> Result<(f64, f64), CmdError> {
    let lon = parse_f64(args.get(i)).ok_or(CmdError::NotFloat)?;
    let lat = parse_f64(args.get(i + 1)).ok_or(CmdError::NotFloat)?;
    if !geohash::valid_lon_lat(lon, lat) {
        return Err(invalid_pair(lon, lat));
    }
    Ok((lon, lat))
}

/// Redis's error for a position outside the limits (C's `%f` for both numbers).
fn invalid_pair(lon: f64, lat: f64) -> CmdError {
    CmdError::msg(format!(
        "ERR invalid longitude,latitude pair {lon:.6},{lat:.6}"
    ))
}

/// Metres per unit of a distance unit argument.
fn unit_arg(arg: &[u8]) -> Result<f64, CmdError> {
    geohash::unit_to_meters(arg).ok_or(CmdError::msg(
        "ERR unsupported unit provided. please use M, KM, FT, MI",
    ))
}

/// `radius unit` at `args[i]`: the circle and metres per unit.
fn radius_arg(args: Args<'_>, i: usize) -> Result<(ShapeKind, f64), CmdError> {
    let radius = float_arg(args.get(i), "ERR need numeric radius")?;
    if radius < 0.0 {
        return Err(CmdError::msg("ERR radius cannot be negative"));
    }
    Ok((ShapeKind::Circle { radius }, unit_arg(args.get(i + 1))?))
}

/// `width height unit` at `args[i]`: the box and metres per unit.
fn box_arg(args: Args<'_>, i: usize) -> Result<(ShapeKind, f64), CmdError> {
    let width = float_arg(args.get(i), "ERR need numeric width")?;
    let height = float_arg(args.get(i + 1), "ERR need numeric height")?;
    if width < 0.0 || height < 0.0 {
        return Err(CmdError::msg("ERR height or width cannot be negative"));
    }
    Ok((ShapeKind::Box { width, height }, unit_arg(args.get(i + 2))?))
}

/// The position of a member used as a search centre.
fn member_pos(z: &ZSetValue, member: &[u8]) -> Result<(f64, f64), CmdError> {
    z.score(member)
        .map(geohash::decode_score)
        .ok_or(CmdError::msg("ERR could not decode requested zset member"))
}

/// A distance as Redis prints it: fixed point with 4 decimals, rounded half to even.
fn format_distance(d: f64) -> String {
    let v = (d * 10000.0).round_ties_even() as i64;
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    format!("{sign}{}.{:04}", a / 10000, a % 10000)
}

/// A coordinate as Redis's "human" long double format prints it: 17 decimals, trailing
/// zeros dropped, never "-0".
fn format_coord(v: f64) -> String {
    let s = format!("{v:.17}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

/// A distance reply: a bulk string in both protocols.
fn reply_distance(out: &mut Reply<'_>, d: f64) {
    out.bulk(format_distance(d).as_bytes());
}

/// A coordinate reply: a bulk string in RESP2, a double (same text) in RESP3.
fn reply_coord(out: &mut Reply<'_>, v: f64) {
    let text = format_coord(v);
    if out.is_resp3() {
        out.raw(b",");
        out.raw(text.as_bytes());
        out.raw(b"\r\n");
    } else {
        out.bulk(text.as_bytes());
    }
}

/// GEOADD key [NX|XX] [CH] lon lat member...: ZADD with scores computed from positions. Every
/// position is checked before anything is added.
fn geoadd(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (mut nx, mut xx, mut ch) = (false, false, false);
    let mut first = 2;
    while first < args.len() {
        let opt = args.get(first);
        if opt.eq_ignore_ascii_case(b"nx") {
            nx = true;
        } else if opt.eq_ignore_ascii_case(b"xx") {
            xx = true;
        } else if opt.eq_ignore_ascii_case(b"ch") {
            ch = true;
        } else {
            break;
        }
        first += 1;
    }
    let rest = args.len() - first;
    if rest == 0 || !rest.is_multiple_of(3) || (nx && xx) {
        return Err(CmdError::Syntax);
    }
    let mut points = Vec::with_capacity(rest / 3);
    for i in (first..args.len()).step_by(3) {
        let (lon, lat) = lon_lat_arg(args, i)?;
        let score = geohash::score_of(lon, lat).ok_or_else(|| invalid_pair(lon, lat))?;
        points.push((args.get(i + 2), score as f64));
    }
    let limits = limits(ctx);
    let key = args.get(1);
    let mut keys = ctx.keys();
    let (added, updated) = match keys.write(key) {
        Some(e) => {
            let Some(ValueMut::ZSet(z)) = e.value_mut() else {
                return Err(CmdError::WrongType);
            };
            add_points(z, &points, nx, xx, limits)
        }
        None if xx => (0, 0),
        None => {
            let mut z = ZSetValue::default();
            let counts = add_points(&mut z, &points, nx, xx, limits);
            keys.insert(Entry::new_value(key, Value::ZSet(Box::new(z)), None, 0));
            counts
        }
    };
    if added + updated > 0 {
        crate::notify::event(ctx, ZSET, "zadd", key);
    }
    ctx.dirty += added + updated;
    ctx.out
        .int((if ch { added + updated } else { added }) as i64);
    Ok(())
}

/// Adds or moves members as ZADD with NX/XX would: (added, updated).
fn add_points(
    z: &mut ZSetValue,
    points: &[(&[u8], f64)],
    nx: bool,
    xx: bool,
    limits: ZSetLimits,
) -> (u64, u64) {
    let (mut added, mut updated) = (0, 0);
    for &(member, score) in points {
        match z.score(member) {
            Some(old) if !nx && old != score => {
                z.insert(member, score, limits);
                updated += 1;
            }
            Some(_) => {}
            None if !xx => {
                z.insert(member, score, limits);
                added += 1;
            }
            None => {}
        }
    }
    (added, updated)
}

/// GEOPOS key member...: [lon, lat] per member, a null array for a missing one.
fn geopos(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (mut keys, out) = ctx.keys_out();
    let z = keys.read(args.get(1)).map(as_zset).transpose()?;
    out.array(args.len() - 2);
    for m in args.iter().skip(2) {
        match z.and_then(|z| z.score(m)) {
            Some(score) => {
                let (lon, lat) = geohash::decode_score(score);
                out.array(2);
                reply_coord(out, lon);
                reply_coord(out, lat);
            }
            None => out.null_array(),
        }
    }
    Ok(())
}

/// GEODIST key member1 member2 [unit]: the distance, null if the key or a member is missing.
/// The unit is checked before the key.
fn geodist(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let to_meters = match args.len() {
        4 => 1.0,
        5 => unit_arg(args.get(4))?,
        _ => return Err(CmdError::Syntax),
    };
    let (mut keys, out) = ctx.keys_out();
    let z = keys.read(args.get(1)).map(as_zset).transpose()?;
    let pos = |m| z.and_then(|z| z.score(m)).map(geohash::decode_score);
    match (pos(args.get(2)), pos(args.get(3))) {
        (Some((lon1, lat1)), Some((lon2, lat2))) => {
            reply_distance(out, geohash::distance(lon1, lat1, lon2, lat2) / to_meters);
        }
        _ => out.null(),
    }
    Ok(())
}

/// GEOHASH key member...: the standard 11-character geohash per member, null if missing.
fn geohash_cmd(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (mut keys, out) = ctx.keys_out();
    let z = keys.read(args.get(1)).map(as_zset).transpose()?;
    out.array(args.len() - 2);
    for m in args.iter().skip(2) {
        match z.and_then(|z| z.score(m)) {
            Some(score) => {
                let (lon, lat) = geohash::decode_score(score);
                out.bulk(&geohash::geohash_string(lon, lat));
            }
            None => out.null(),
        }
    }
    Ok(())
}

/// Where a search command takes its centre and shape from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Centre {
    /// GEORADIUS: `lon lat radius unit` at arguments 2..6.
    Coords,
    /// GEORADIUSBYMEMBER: `member radius unit` at arguments 2..5.
    Member,
    /// GEOSEARCH[STORE]: FROMMEMBER/FROMLONLAT and BYRADIUS/BYBOX options.
    Options,
}

/// One search command's variant.
#[derive(Clone, Copy)]
struct Variant {
    centre: Centre,
    /// GEORADIUS[BYMEMBER]: STORE key / STOREDIST key accepted.
    store_options: bool,
    /// GEOSEARCHSTORE: destination at argument 1, source at 2, STOREDIST a flag.
    search_store: bool,
}

fn georadius(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    search(
        ctx,
        args,
        Variant {
            centre: Centre::Coords,
            store_options: true,
            search_store: false,
        },
    )
}

fn georadiusbymember(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    search(
        ctx,
        args,
        Variant {
            centre: Centre::Member,
            store_options: true,
            search_store: false,
        },
    )
}

fn georadius_ro(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    search(
        ctx,
        args,
        Variant {
            centre: Centre::Coords,
            store_options: false,
            search_store: false,
        },
    )
}

fn georadiusbymember_ro(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    search(
        ctx,
        args,
        Variant {
            centre: Centre::Member,
            store_options: false,
            search_store: false,
        },
    )
}

fn geosearch(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    search(
        ctx,
        args,
        Variant {
            centre: Centre::Options,
            store_options: false,
            search_store: false,
        },
    )
}

fn geosearchstore(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    search(
        ctx,
        args,
        Variant {
            centre: Centre::Options,
            store_options: false,
            search_store: true,
        },
    )
}

/// Result order.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    /// As found: cell by cell, by score within a cell.
    Unsorted,
    Asc,
    Desc,
}

/// A parsed search.
struct Query {
    /// The shape, known unless the source key is missing (then a member centre cannot be
    /// looked up).
    shape: Option<Shape>,
    with_dist: bool,
    with_hash: bool,
    with_coord: bool,
    order: Order,
    /// Stop scanning once COUNT matches are found (ANY).
    any: bool,
    /// COUNT, 0 for no limit.
    count: u64,
    /// The destination's argument index.
    store: Option<usize>,
    /// Store distances rather than geohash scores.
    store_dist: bool,
}

/// Parses a search's arguments in Redis's order, so the first error reported is Redis's.
/// `zset` is the source (None if missing): member centres are looked up while parsing.
fn parse_query(args: Args<'_>, v: Variant, zset: Option<&ZSetValue>) -> Result<Query, CmdError> {
    let mut centre = None;
    let mut extent = None;
    let mut q = Query {
        shape: None,
        with_dist: false,
        with_hash: false,
        with_coord: false,
        order: Order::Unsorted,
        any: false,
        count: 0,
        store: None,
        store_dist: false,
    };
    let base = match v.centre {
        Centre::Coords => {
            centre = Some(lon_lat_arg(args, 2)?);
            extent = Some(radius_arg(args, 4)?);
            6
        }
        Centre::Member => {
            if let Some(z) = zset {
                centre = Some(member_pos(z, args.get(2))?);
                extent = Some(radius_arg(args, 3)?);
            }
            5
        }
        Centre::Options if v.search_store => {
            q.store = Some(1);
            3
        }
        Centre::Options => 2,
    };
    let geosearch = v.centre == Centre::Options;
    let (mut from_member, mut from_lonlat, mut by_radius, mut by_box) =
        (false, false, false, false);
    let n = args.len();
    let mut i = base;
    while i < n {
        let arg = args.get(i);
        let is = |name: &str| arg.eq_ignore_ascii_case(name.as_bytes());
        if is("withdist") {
            q.with_dist = true;
        } else if is("withhash") {
            q.with_hash = true;
        } else if is("withcoord") {
            q.with_coord = true;
        } else if is("any") {
            q.any = true;
        } else if is("asc") {
            q.order = Order::Asc;
        } else if is("desc") {
            q.order = Order::Desc;
        } else if is("count") && i + 1 < n {
            let count = parse_i64(args.get(i + 1)).ok_or(CmdError::NotInteger)?;
            q.count = u64::try_from(count)
                .ok()
                .filter(|&c| c > 0)
                .ok_or(CmdError::msg("ERR COUNT must be > 0"))?;
            i += 1;
        } else if (is("store") || is("storedist")) && i + 1 < n && v.store_options {
            q.store = Some(i + 1);
            q.store_dist = is("storedist");
            i += 1;
        } else if is("storedist") && v.search_store {
            q.store_dist = true;
        } else if is("frommember") && i + 1 < n && geosearch && !from_lonlat {
            // With no source the member cannot be looked up; parsing goes on for the errors.
            if let Some(z) = zset {
                centre = Some(member_pos(z, args.get(i + 1))?);
            }
            from_member = true;
            i += 1;
        } else if is("fromlonlat") && i + 2 < n && geosearch && !from_member {
            centre = Some(lon_lat_arg(args, i + 1)?);
            from_lonlat = true;
            i += 2;
        } else if is("byradius") && i + 2 < n && geosearch && !by_box {
            extent = Some(radius_arg(args, i + 1)?);
            by_radius = true;
            i += 2;
        } else if is("bybox") && i + 3 < n && geosearch && !by_radius {
            extent = Some(box_arg(args, i + 1)?);
            by_box = true;
            i += 3;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if q.store.is_some() && (q.with_dist || q.with_hash || q.with_coord) {
        let what = if v.search_store {
            "GEOSEARCHSTORE"
        } else {
            "STORE option in GEORADIUS"
        };
        return Err(CmdError::msg(format!(
            "ERR {what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
        )));
    }
    let name = String::from_utf8_lossy(args.get(0));
    if geosearch && !(from_member || from_lonlat) {
        return Err(CmdError::msg(format!(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}"
        )));
    }
    if geosearch && !(by_radius || by_box) {
        return Err(CmdError::msg(format!(
            "ERR exactly one of BYRADIUS and BYBOX can be specified for {name}"
        )));
    }
    if q.any && q.count == 0 {
        return Err(CmdError::msg(
            "ERR the ANY argument requires COUNT argument",
        ));
    }
    // The nearest COUNT matches need sorting; ANY takes whichever come first.
    if q.count != 0 && q.order == Order::Unsorted && !q.any {
        q.order = Order::Asc;
    }
    q.shape = centre
        .zip(extent)
        .map(|((lon, lat), (kind, to_meters))| Shape {
            lon,
            lat,
            kind,
            to_meters,
        });
    Ok(q)
}

/// A match.
struct Point {
    member: Vec<u8>,
    lon: f64,
    lat: f64,
    /// Distance from the centre: metres while searching, the query's unit once reported.
    dist: f64,
    score: f64,
}

/// Runs a search command: parse, scan, then reply or store.
fn search(ctx: &mut Ctx<'_>, args: Args<'_>, v: Variant) -> CmdResult {
    let limits = limits(ctx);
    let dirty = {
        let (mut keys, out) = ctx.keys_out();
        run_search(&mut keys, out, args, v, limits)?
    };
    ctx.dirty += dirty;
    Ok(())
}

/// The body of [`search`]; returns the number of changes made to the dataset.
fn run_search(
    keys: &mut Keys<'_, '_>,
    out: &mut Reply<'_>,
    args: Args<'_>,
    v: Variant,
    limits: ZSetLimits,
) -> Result<u64, CmdError> {
    let src = args.get(if v.search_store { 2 } else { 1 });
    let zset = keys.read(src).map(as_zset).transpose()?;
    let q = parse_query(args, v, zset)?;
    let (Some(z), Some(shape)) = (zset, q.shape) else {
        // No source: an empty result, which for a store deletes the destination.
        return Ok(match q.store {
            Some(dst) => {
                out.int(0);
                deleted_store(keys, args.get(dst))
            }
            None => {
                out.array(0);
                0
            }
        });
    };
    let mut points = find(z, &shape, if q.any { q.count } else { 0 });
    match q.order {
        Order::Unsorted => {}
        Order::Asc => points.sort_by(|a, b| a.dist.total_cmp(&b.dist)),
        Order::Desc => points.sort_by(|a, b| b.dist.total_cmp(&a.dist)),
    }
    if q.count != 0 {
        points.truncate(usize::try_from(q.count).unwrap_or(usize::MAX));
    }
    for p in &mut points {
        p.dist /= shape.to_meters;
    }
    let Some(dst) = q.store else {
        reply_points(out, &points, &q);
        return Ok(0);
    };
    let dst = args.get(dst);
    out.int(points.len() as i64);
    if points.is_empty() {
        return Ok(deleted_store(keys, dst));
    }
    let mut result = ZSetValue::default();
    for p in &points {
        let score = if q.store_dist { p.dist } else { p.score };
        result.insert(&p.member, score, limits);
    }
    keys.insert(Entry::new_value(
        dst,
        Value::ZSet(Box::new(result)),
        None,
        0,
    ));
    let event = if v.search_store {
        "geosearchstore"
    } else {
        "georadiusstore"
    };
    keys.notify(ZSET, event, dst);
    Ok(points.len() as u64)
}

/// Deletes a store destination for an empty result; returns the change count (0 or 1).
fn deleted_store(keys: &mut Keys<'_, '_>, dst: &[u8]) -> u64 {
    let deleted = keys.delete(dst);
    if deleted {
        keys.notify(GENERIC, "del", dst);
    }
    u64::from(deleted)
}

/// The points inside `shape`, cell by cell; with `limit` > 0 the scan stops at that many.
fn find(z: &ZSetValue, shape: &Shape, limit: u64) -> Vec<Point> {
    let areas = shape.search_areas();
    let mut out = Vec::new();
    let full = |n: usize| limit != 0 && n as u64 >= limit;
    // Huge shapes can make adjacent neighbours the same cell: skip a repeat of the last one
    // scanned (as Redis does, never comparing with the centre cell).
    let mut last = 0;
    for (i, &area) in areas.iter().enumerate() {
        if area.is_none() || (last != 0 && area == areas[last]) {
            continue;
        }
        if full(out.len()) {
            break;
        }
        scan_cell(z, shape, area, &mut out, &full);
        last = i;
    }
    out
}

/// Appends the points of one cell that are inside `shape`, stopping once `full`.
fn scan_cell(
    z: &ZSetValue,
    shape: &Shape,
    cell: HashBits,
    out: &mut Vec<Point>,
    full: &dyn Fn(usize) -> bool,
) {
    let (min, max) = cell.score_range();
    let min = ScoreBound {
        value: min as f64,
        exclusive: false,
    };
    let max = ScoreBound {
        value: max as f64,
        exclusive: true,
    };
    for (member, score) in z.range_by_score(min, max) {
        let (lon, lat) = geohash::decode_score(score);
        if let Some(dist) = shape.distance_if_inside(lon, lat) {
            out.push(Point {
                member: member.to_vec(),
                lon,
                lat,
                dist,
                score,
            });
        }
        if full(out.len()) {
            break;
        }
    }
}

/// The search reply: members, or per member an array with the requested extras (distance,
/// hash, coordinates, in that order).
fn reply_points(out: &mut Reply<'_>, points: &[Point], q: &Query) {
    let extras = usize::from(q.with_dist) + usize::from(q.with_hash) + usize::from(q.with_coord);
    out.array(points.len());
    for p in points {
        if extras > 0 {
            out.array(extras + 1);
        }
        out.bulk(&p.member);
        if q.with_dist {
            reply_distance(out, p.dist);
        }
        if q.with_hash {
            out.int(p.score as i64);
        }
        if q.with_coord {
            out.array(2);
            reply_coord(out, p.lon);
            reply_coord(out, p.lat);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_text() {
        assert_eq!(format_distance(0.0), "0.0000");
        assert_eq!(format_distance(166274.15156960033), "166274.1516");
        assert_eq!(format_distance(0.00004), "0.0000");
        assert_eq!(format_distance(0.00005), "0.0000");
        // Ties round to even, as llrint does.
        assert_eq!(format_distance(0.000125), "0.0001");
        assert_eq!(format_distance(0.000375), "0.0004");
        assert_eq!(format_distance(56.4413), "56.4413");
        assert_eq!(format_distance(12.5), "12.5000");
    }

    #[test]
    fn coordinate_text() {
        assert_eq!(format_coord(13.361389338970184), "13.36138933897018433");
        assert_eq!(format_coord(-0.0), "0");
        assert_eq!(format_coord(180.0), "180");
        assert_eq!(format_coord(-12.5), "-12.5");
    }

    #[test]
    fn georadius_store_key_positions() {
        let keys = |parts: &[&str]| {
            let owned = flowkv_protocol::OwnedArgs::from_slices(parts.iter().map(|s| s.as_bytes()));
            match parts[0] {
                "georadius" => georadius_keys(owned.as_args()).to_vec(),
                _ => georadiusbymember_keys(owned.as_args()).to_vec(),
            }
        };
        let radius = |opts: &[&str]| {
            let mut v = vec!["georadius", "k", "1", "2", "3", "km"];
            v.extend_from_slice(opts);
            keys(&v)
        };
        assert_eq!(radius(&[]), [1]);
        assert_eq!(radius(&["STORE", "a", "storedist", "b"]), [1, 7, 9]);
        assert_eq!(radius(&["count", "1", "STOREDIST", "b"]), [1, 9]);
        // Redis reports the first STORE; the result goes to the last one.
        assert_eq!(radius(&["store", "a", "store", "b"]), [1, 7, 9]);
        assert_eq!(radius(&["store"]), [1]);
        assert_eq!(
            keys(&["georadiusbymember", "k", "m", "3", "km", "store", "d"]),
            [1, 6]
        );
        assert_eq!(keys(&["georadius"]), Vec::<usize>::new());
    }
}
