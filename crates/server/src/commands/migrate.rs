//! MIGRATE: moves (or, with COPY, copies) keys to another Redis-compatible server, as a
//! redis-server 7.0 without cluster mode does.
//!
//! ```text
//! MIGRATE host port key|"" destination-db timeout [COPY] [REPLACE]
//!         [AUTH password | AUTH2 username password] [KEYS key [key ...]]
//! ```
//!
//! Each key that exists is serialized exactly as DUMP serializes it and sent as
//! `RESTORE key ttl payload [REPLACE]`, after `AUTH` (if given) and `SELECT destination-db`,
//! all in one pipelined write; then the replies are read. Without COPY, the keys whose RESTORE
//! the target acknowledged are deleted here, and that deletion — not the MIGRATE — is what the
//! AOF and replicas get, as `DEL key...`.
//!
//! Talking to the target blocks this worker for at most `timeout` ms per connect, write and
//! read, as MIGRATE blocks the whole of Redis. The shard locks are not held meanwhile (no I/O
//! under a shard lock): the keys are serialized under the command's locks, the locks are let
//! go for the network round trip, and the acknowledged keys are locked again to delete them —
//! each only if it still holds what was sent, so a write that slipped in between is never
//! lost. Inside MULTI/EXEC or a script the locks belong to the transaction and stay held.
//!
//! Differences from Redis, none visible in replies: every MIGRATE opens its own connection
//! and closes it afterwards (Redis keeps one per `host:port` for 10 s, so INFO's
//! `migrate_cached_sockets` stays 0 here); hence there is no stale cached connection to retry
//! on a failed write or first read, which is all Redis's one retry is for; and the target is
//! always reached over plain TCP (Redis uses TLS when `tls-cluster` is on).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::ops::Range;
use std::time::Duration;

use flowkv_persist::aof::encode_command;
use flowkv_protocol::Args;
use flowkv_store::num::parse_i64;
use flowkv_store::ShardSet;

use crate::command::keyspec as ks;
use crate::command::{acl, flags::*, Command, Group, KeyPositions};
use crate::commands::persist;
use crate::config::notify::GENERIC;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::notify::event as notify;

/// How every key of a MIGRATE is accessed: read to serialize it, deleted once moved.
const KEY_FLAGS: u32 = ks::RW | ks::ACCESS | ks::DELETE;

pub static COMMANDS: &[Command] = &[Command::new("migrate", -6, Group::Generic)
    .flags(WRITE)
    .acl(acl::KEYSPACE | acl::DANGEROUS)
    .tips(&["nondeterministic_output"])
    .movable_keys(key_positions)
    .key_specs(&[
        ks::key_at(3, KEY_FLAGS),
        // Incomplete: a password can be the word KEYS, so only MIGRATE's own parsing
        // knows where the key list starts.
        ks::spec(
            KEY_FLAGS | ks::INCOMPLETE,
            ks::keyword("KEYS", -2),
            ks::range(-1, 1, 0),
        ),
    ])
    .handler(migrate)
    .doc(
        "Atomically transfer a key from a Redis instance to another one.",
        "2.6.0",
        "This command actually executes a DUMP+DEL in the source instance, and a RESTORE in the target instance. See the pages of these commands for time complexity. Also an O(N) data transfer between the two instances is performed.",
    )];

// ---------------------------------------------------------------------------------------
// Arguments

/// One option met walking MIGRATE's arguments from the sixth on.
#[derive(Debug, PartialEq, Eq)]
enum Opt {
    Copy,
    Replace,
    /// AUTH password / AUTH2 username password: the argument positions of the secrets.
    Auth {
        user: Option<usize>,
        pass: usize,
    },
    /// KEYS: the position of the first key; every argument from there on is a key.
    Keys(usize),
    /// A word that is no option, at this position.
    Unknown(usize),
    /// AUTH or AUTH2 without all its arguments (the walk ends there).
    Truncated,
}

/// Walks the options as Redis does: AUTH and AUTH2 take the next one or two arguments
/// whatever they say (a password may be `KEYS`), and KEYS ends the walk. The command, its key
/// finder and the redaction of secrets all read the arguments through this one walk, so they
/// can never disagree on where a password or the key list is.
fn options(args: Args<'_>) -> impl Iterator<Item = Opt> + '_ {
    let n = args.len();
    let mut i = 6;
    let mut done = false;
    std::iter::from_fn(move || {
        if done || i >= n {
            return None;
        }
        let word = args.get(i);
        let is = |w: &[u8]| word.eq_ignore_ascii_case(w);
        let (opt, used) = if is(b"copy") {
            (Opt::Copy, 1)
        } else if is(b"replace") {
            (Opt::Replace, 1)
        } else if is(b"auth") && i + 1 < n {
            let pass = i + 1;
            (Opt::Auth { user: None, pass }, 2)
        } else if is(b"auth2") && i + 2 < n {
            let (user, pass) = (Some(i + 1), i + 2);
            (Opt::Auth { user, pass }, 3)
        } else if is(b"auth") || is(b"auth2") {
            done = true;
            (Opt::Truncated, 0)
        } else if is(b"keys") {
            done = true;
            (Opt::Keys(i + 1), 0)
        } else {
            (Opt::Unknown(i), 1)
        };
        i += used;
        Some(opt)
    })
}

/// What a valid MIGRATE line asks for.
struct Request<'a> {
    copy: bool,
    replace: bool,
    /// (username, password) for AUTH / AUTH2.
    auth: Option<(Option<&'a [u8]>, &'a [u8])>,
    /// Argument positions of the keys to move.
    keys: Range<usize>,
    destination_db: i64,
    timeout: Duration,
}

impl<'a> Request<'a> {
    /// Parses a MIGRATE line with Redis's errors, in Redis's order: the options first, then
    /// the timeout, then the database.
    fn parse(args: Args<'a>) -> Result<Request<'a>, CmdError> {
        let mut req = Request {
            copy: false,
            replace: false,
            auth: None,
            keys: 3..4,
            destination_db: 0,
            timeout: Duration::ZERO,
        };
        for opt in options(args) {
            match opt {
                Opt::Copy => req.copy = true,
                Opt::Replace => req.replace = true,
                Opt::Auth { user, pass } => {
                    req.auth = Some((user.map(|u| args.get(u)), args.get(pass)));
                }
                Opt::Keys(_) if !args.get(3).is_empty() => {
                    return Err(CmdError::msg(
                        "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string",
                    ));
                }
                Opt::Keys(first) => req.keys = first..args.len(),
                Opt::Unknown(_) | Opt::Truncated => return Err(CmdError::Syntax),
            }
        }
        let timeout = parse_i64(args.get(5)).ok_or(CmdError::NotInteger)?;
        req.destination_db = parse_i64(args.get(4)).ok_or(CmdError::NotInteger)?;
        // A timeout of 0 or less means the default second, as in Redis.
        req.timeout = Duration::from_millis(if timeout <= 0 { 1000 } else { timeout as u64 });
        Ok(req)
    }
}

/// The keys of a MIGRATE line (locking, ACL checks, COMMAND GETKEYS), as Redis 7.0 finds
/// them: from the key specs, unless the incomplete KEYS spec finds its keyword (searching
/// from the second-to-last argument back to the second), in which case the command's own
/// parsing decides — the keys after KEYS, or none if the key argument is not empty (the
/// command then fails before touching any key).
fn key_positions(args: Args<'_>) -> KeyPositions {
    let n = args.len();
    if n < 4 {
        return KeyPositions::new();
    }
    let keyword_found = (2..n - 1).any(|i| args.get(i).eq_ignore_ascii_case(b"keys"));
    let keys_at = keyword_found
        .then(|| {
            options(args).find_map(|o| match o {
                Opt::Keys(first) => Some(first),
                _ => None,
            })
        })
        .flatten();
    match keys_at {
        None => std::iter::once(3).collect(),
        Some(first) if args.get(3).is_empty() => (first..n).collect(),
        Some(_) => KeyPositions::new(),
    }
}

/// The positions of the passwords (and AUTH2 user names) of a MIGRATE line, which the slow
/// log and MONITOR show as "(redacted)", as Redis does. Words that are no option are passed
/// over, so a line MIGRATE rejects still hides its secrets.
pub(crate) fn secret_positions(args: Args<'_>) -> impl Iterator<Item = usize> + '_ {
    options(args).flat_map(|o| match o {
        Opt::Auth { user, pass } => user.into_iter().chain(Some(pass)),
        _ => None.into_iter().chain(None),
    })
}

// ---------------------------------------------------------------------------------------
// The command

/// One key on its way to the target.
struct Outgoing {
    /// Its argument position.
    pos: usize,
    /// Its deadline (unix ms) when serialized.
    expire_at: Option<u64>,
    /// Its DUMP payload.
    payload: Vec<u8>,
}

fn migrate(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let req = Request::parse(args)?;
    let outgoing = serialize(ctx, args, req.keys.clone());
    if outgoing.is_empty() {
        // Nothing to move (often keys that just expired): not an error, as in Redis.
        ctx.prevent_propagation();
        ctx.out.simple(b"NOKEY");
        return Ok(());
    }
    // Inside EXEC or a script the locks are the transaction's and must stay.
    let released = !ctx.deny_blocking;
    if released {
        release_locks(ctx);
    }
    let (acked, outcome) = match connect(args.get(1), args.get(2), req.timeout) {
        Ok(sock) => exchange(
            &sock,
            &request(args, &req, ctx.now_ms, &outgoing),
            &req,
            outgoing.len(),
        ),
        Err(io) => (Vec::new(), Err(io.error())),
    };
    let deleted = if req.copy {
        Vec::new()
    } else {
        let moved: Vec<&Outgoing> = outgoing
            .iter()
            .zip(&acked)
            .filter(|(_, &ok)| ok)
            .map(|(o, _)| o)
            .collect();
        delete_moved(ctx, args, &moved, released)
    };
    if deleted.is_empty() {
        ctx.prevent_propagation();
    } else {
        let mut del: Vec<&[u8]> = Vec::with_capacity(deleted.len() + 1);
        del.push(b"DEL");
        del.extend(deleted);
        ctx.propagate_as(&del);
    }
    outcome?;
    ctx.out.ok();
    Ok(())
}

/// Looks the keys up (for reading, as Redis's lookupKeyRead: hits and misses count) and
/// serializes those that exist, with DUMP's own payload code.
fn serialize(ctx: &mut Ctx<'_>, args: Args<'_>, positions: Range<usize>) -> Vec<Outgoing> {
    if positions.is_empty() {
        return Vec::new();
    }
    let opts = persist::write_options(ctx.srv);
    let mut keys = ctx.keys();
    positions
        .filter_map(|pos| {
            keys.read(args.get(pos)).map(|e| Outgoing {
                pos,
                expire_at: e.expire_at(),
                payload: flowkv_persist::dump_payload(e, opts),
            })
        })
        .collect()
}

/// The whole pipelined request: AUTH, SELECT (always: the connection is new), then one
/// RESTORE per key with its remaining time to live in ms (0: none; at least 1 for a key
/// about to expire, as Redis sends).
fn request(args: Args<'_>, req: &Request<'_>, now_ms: u64, outgoing: &[Outgoing]) -> Vec<u8> {
    let size: usize = outgoing.iter().map(|o| o.payload.len() + 64).sum();
    let mut out = Vec::with_capacity(size + 64);
    match req.auth {
        Some((Some(user), pass)) => encode_command(&mut out, &[b"AUTH", user, pass]),
        Some((None, pass)) => encode_command(&mut out, &[b"AUTH", pass]),
        None => {}
    }
    let db = req.destination_db.to_string();
    encode_command(&mut out, &[b"SELECT", db.as_bytes()]);
    for o in outgoing {
        let ttl = o.expire_at.map_or(0, |at| at.saturating_sub(now_ms).max(1));
        let ttl = ttl.to_string();
        let key = args.get(o.pos);
        if req.replace {
            encode_command(
                &mut out,
                &[&b"RESTORE"[..], key, ttl.as_bytes(), &o.payload, b"REPLACE"],
            );
        } else {
            encode_command(
                &mut out,
                &[&b"RESTORE"[..], key, ttl.as_bytes(), &o.payload],
            );
        }
    }
    out
}

/// Lets go of the command's shard locks before talking to the target, after doing what
/// dispatch does when a command's locks go — WATCHers and tracking clients learn of keys the
/// lookups found expired, and those deletions reach the AOF and replicas — so nothing that
/// happened under these locks can be ordered after what other clients do next.
fn release_locks(ctx: &mut Ctx<'_>) {
    let Some(mut locked) = ctx.locked.take() else {
        return;
    };
    let srv = ctx.srv;
    let changed = crate::tracking::take_changes(srv, &mut locked);
    if srv.keyspace.tracking() {
        let worker = Some(ctx.client.shared.worker);
        srv.tracking()
            .invalidate(&changed, Some(ctx.client.id), worker);
    }
    crate::propagate::flush(ctx.cmd);
    drop(locked);
}

/// Deletes the keys the target acknowledged, as Redis's MIGRATE does (a `del` event each,
/// freed as `lazyfree-lazy-server-del` says). If the locks were let go for the transfer, the
/// keys' shards are locked again and a key is deleted only if it still holds exactly what was
/// sent: one written in between stays. Returns the deleted keys.
fn delete_moved<'a>(
    ctx: &mut Ctx<'_>,
    args: Args<'a>,
    moved: &[&Outgoing],
    released: bool,
) -> Vec<&'a [u8]> {
    if moved.is_empty() {
        return Vec::new();
    }
    if released {
        let mut set = ShardSet::new();
        ctx.srv
            .keyspace
            .add_shards(&mut set, moved.iter().map(|o| args.get(o.pos)));
        ctx.locked = Some(ctx.srv.keyspace.lock(&set));
    }
    let opts = persist::write_options(ctx.srv);
    let mut deleted = Vec::with_capacity(moved.len());
    for o in moved {
        let key = args.get(o.pos);
        let mut keys = ctx.keys();
        let unchanged = !released
            || keys.peek(key).is_some_and(|e| {
                e.expire_at() == o.expire_at && flowkv_persist::dump_payload(e, opts) == o.payload
            });
        if unchanged && keys.delete(key) {
            ctx.dirty += 1;
            notify(ctx, GENERIC, "del", key);
            deleted.push(key);
        }
    }
    deleted
}

// ---------------------------------------------------------------------------------------
// Talking to the target

/// A failed conversation with the target, told apart as Redis 7.0 tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Io {
    Connect,
    Write,
    Read,
}

impl Io {
    /// The reply, in Redis's words.
    fn error(self) -> CmdError {
        CmdError::msg(match self {
            Io::Connect => "IOERR error or timeout connecting to the client",
            Io::Write => "IOERR error or timeout writing to target instance",
            Io::Read => "IOERR error or timeout reading to target instance",
        })
    }
}

/// Opens a connection to the target, each attempt bounded by `timeout`, with the same
/// timeout on every later read and write.
///
/// Redis reads the port with `atoi` and starts a non-blocking connect; it learns that the
/// target refused or never answered only when it first writes, so it reports those as write
/// errors. Only failing to start at all (a host that does not resolve, a negative port) is
/// its connect error. Errors here follow the same split, so a script sees what Redis says.
fn connect(host: &[u8], port: &[u8], timeout: Duration) -> Result<TcpStream, Io> {
    let port = atoi(port);
    if port < 0 {
        return Err(Io::Connect);
    }
    // getaddrinfo keeps the low 16 bits of a larger number.
    let port = (port & 0xFFFF) as u16;
    let host = std::str::from_utf8(host).map_err(|_| Io::Connect)?;
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|_| Io::Connect)?
        .collect();
    if addrs.is_empty() {
        return Err(Io::Connect);
    }
    let sock = addrs
        .iter()
        .find_map(|a| TcpStream::connect_timeout(a, timeout).ok())
        .ok_or(Io::Write)?;
    let setup = sock
        .set_read_timeout(Some(timeout))
        .and_then(|()| sock.set_write_timeout(Some(timeout)))
        .and_then(|()| sock.set_nodelay(true));
    setup.map(|()| sock).map_err(|_| Io::Write)
}

/// C's `atoi`, which Redis reads MIGRATE's port with: leading blanks, an optional sign, the
/// digits up to the first non-digit (none: 0), the result cut to an `int`.
fn atoi(s: &[u8]) -> i64 {
    let s = s.trim_ascii_start();
    let (negative, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let n = digits
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .fold(0i64, |n, c| {
            n.wrapping_mul(10).wrapping_add(i64::from(c - b'0'))
        });
    i64::from((if negative { n.wrapping_neg() } else { n }) as i32)
}

/// The longest reply line read from the target: its replies are one short status or error
/// line each, and a target that sends more gets a read error rather than our memory.
const MAX_LINE: u64 = 64 * 1024;

/// Sends the request and reads one reply line per command in it, as Redis's MIGRATE does.
/// Returns, per RESTORE sent, whether the target acknowledged it, and the outcome: the
/// target's first error (an AUTH or SELECT error fails every RESTORE, and like any target
/// error counts only once a RESTORE reply was read), else an I/O error, else success. A RESTORE acknowledged before a later failure still counts as moved.
fn exchange(
    mut sock: &TcpStream,
    request: &[u8],
    req: &Request<'_>,
    restores: usize,
) -> (Vec<bool>, Result<(), CmdError>) {
    let failed = |io: Io| (Vec::new(), Err(io.error()));
    if sock.write_all(request).is_err() {
        return failed(Io::Write);
    }
    let mut replies = BufReader::new(sock);
    let mut setup_error = None;
    for _ in 0..1 + usize::from(req.auth.is_some()) {
        match read_line(&mut replies) {
            Some(line) => {
                if setup_error.is_none() && line.first() == Some(&b'-') {
                    setup_error = Some(line);
                }
            }
            None => return failed(Io::Read),
        }
    }
    let mut acked = Vec::with_capacity(restores);
    let mut target_error: Option<Vec<u8>> = None;
    let mut socket_error = false;
    for _ in 0..restores {
        let Some(line) = read_line(&mut replies) else {
            socket_error = true;
            break;
        };
        let refused = (line.first() == Some(&b'-')).then_some(&line);
        match setup_error.as_ref().or(refused) {
            Some(error) => {
                if target_error.is_none() {
                    target_error = Some(error.clone());
                }
                acked.push(false);
            }
            None => acked.push(true),
        }
    }
    let outcome = match (target_error, socket_error) {
        (Some(line), _) => Err(CmdError::msg(format!(
            "ERR Target instance replied with error: {}",
            String::from_utf8_lossy(&line[1..])
        ))),
        (None, true) => Err(Io::Read.error()),
        (None, false) => Ok(()),
    };
    (acked, outcome)
}

/// Reads one line, without its `\r\n`; `None` on an error, a timeout, the end of the stream
/// or a line longer than [`MAX_LINE`].
fn read_line(r: &mut BufReader<&TcpStream>) -> Option<Vec<u8>> {
    let mut line = Vec::new();
    r.by_ref()
        .take(MAX_LINE)
        .read_until(b'\n', &mut line)
        .ok()?;
    if line.pop() != Some(b'\n') {
        return None;
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Some(line)
}

#[cfg(test)]
mod tests {
    use flowkv_protocol::OwnedArgs;

    use super::*;

    fn line(words: &[&str]) -> OwnedArgs {
        OwnedArgs::from_slices(words.iter().map(|w| w.as_bytes()))
    }

    #[test]
    fn atoi_reads_ports_as_c_does() {
        assert_eq!(atoi(b"6379"), 6379);
        assert_eq!(atoi(b"  12x"), 12);
        assert_eq!(atoi(b"+7"), 7);
        assert_eq!(atoi(b"-1"), -1);
        assert_eq!(atoi(b"abc"), 0);
        assert_eq!(atoi(b""), 0);
    }

    #[test]
    fn secrets_are_the_auth_arguments_before_keys() {
        let secrets = |words: &[&str]| {
            let a = line(words);
            secret_positions(a.as_args()).collect::<Vec<_>>()
        };
        let base = ["MIGRATE", "h", "1", "", "0", "100"];
        let with = |rest: &[&'static str]| [&base[..], rest].concat();
        assert_eq!(secrets(&with(&["AUTH", "pw"])), [7]);
        assert_eq!(secrets(&with(&["COPY", "AUTH2", "u", "p"])), [8, 9]);
        // A password may be the word KEYS; key names after KEYS are never secrets.
        assert_eq!(secrets(&with(&["AUTH", "keys", "KEYS", "auth", "x"])), [7]);
        assert_eq!(secrets(&with(&["KEYS", "auth", "x"])), Vec::<usize>::new());
        // Unknown words are passed over, a truncated AUTH hides nothing past the end.
        assert_eq!(secrets(&with(&["bogus", "AUTH", "pw"])), [8]);
        assert_eq!(secrets(&with(&["AUTH2", "u"])), Vec::<usize>::new());
    }

    #[test]
    fn parse_errors_in_redis_order() {
        let parse = |words: &[&str]| {
            let a = line(words);
            Request::parse(a.as_args()).map(|r| (r.copy, r.replace, r.keys, r.timeout))
        };
        let ok = parse(&[
            "MIGRATE", "h", "1", "", "0", "0", "replace", "KEYS", "a", "b",
        ]);
        assert_eq!(ok, Ok((false, true, 8..10, Duration::from_millis(1000))));
        let syntax = parse(&["MIGRATE", "h", "1", "k", "x", "x", "FOO", "KEYS", "a"]);
        assert_eq!(syntax.unwrap_err(), CmdError::Syntax);
        let keys = parse(&["MIGRATE", "h", "1", "k", "x", "x", "KEYS", "a"]);
        assert!(keys.unwrap_err().to_string().contains("empty string"));
        let timeout = parse(&["MIGRATE", "h", "1", "k", "0", "x"]);
        assert_eq!(timeout.unwrap_err(), CmdError::NotInteger);
    }
}
