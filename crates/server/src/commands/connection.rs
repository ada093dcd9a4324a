//! Connection commands: PING, ECHO, SELECT, QUIT, HELLO, AUTH, RESET and the CLIENT family.
//!
//! AUTH and HELLO AUTH authenticate against the ACL users (`crate::acl`); `requirepass` is
//! the default user's password, as in Redis.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use flowkv_protocol::{Args, Proto};
use flowkv_store::num::parse_i64;

use crate::client::{flag, ClientShared, ClientType, ReplyMode};
use crate::command::{acl, flags::*, Command, Group};
use crate::commands::table;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::pause::Kind;
use crate::server::Server;

/// The user of connections that never authenticated.
const DEFAULT_USER: &[u8] = b"default";

/// Flags of the commands a client may send before authenticating.
const CONN_NO_AUTH: u32 = NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY;
/// Flags of the CLIENT subcommands that act on other connections.
const CLIENT_ADMIN: u32 = ADMIN | NOSCRIPT | LOADING | STALE;
/// Flags of the CLIENT subcommands that act on the caller's connection.
const CLIENT_SELF: u32 = NOSCRIPT | LOADING | STALE;

pub static COMMANDS: &[Command] = &[
    Command::new("ping", -1, Group::Connection)
        .flags(FAST)
        .acl(acl::CONNECTION)
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"])
        .handler(ping)
        .doc("Ping the server", "1.0.0", "O(1)"),
    Command::new("echo", 2, Group::Connection)
        .flags(LOADING | STALE | FAST)
        .acl(acl::CONNECTION)
        .handler(echo)
        .doc("Echo the given string", "1.0.0", "O(1)"),
    Command::new("select", 2, Group::Connection)
        .flags(LOADING | STALE | FAST)
        .acl(acl::CONNECTION)
        .handler(select)
        .doc(
            "Change the selected database for the current connection",
            "1.0.0",
            "O(1)",
        ),
    Command::new("quit", -1, Group::Connection)
        .flags(CONN_NO_AUTH)
        .acl(acl::CONNECTION)
        .handler(quit)
        .doc("Close the connection", "1.0.0", "O(1)"),
    Command::new("hello", -1, Group::Connection)
        .flags(CONN_NO_AUTH)
        .acl(acl::CONNECTION)
        .handler(hello)
        .doc("Handshake with Redis", "6.0.0", "O(1)"),
    Command::new("auth", -2, Group::Connection)
        .flags(CONN_NO_AUTH)
        .acl(acl::CONNECTION)
        .handler(auth)
        .doc(
            "Authenticate to the server",
            "1.0.0",
            "O(N) where N is the number of passwords defined for the user",
        ),
    Command::new("reset", 1, Group::Connection)
        .flags(CONN_NO_AUTH)
        .acl(acl::CONNECTION)
        .handler(reset)
        .doc("Reset the connection", "6.2.0", "O(1)"),
    Command::new("client", -2, Group::Connection)
        .subcommands(CLIENT_SUBCOMMANDS)
        .doc(
            "A container for client connection commands",
            "2.4.0",
            "Depends on subcommand.",
        ),
];

static CLIENT_SUBCOMMANDS: &[Command] = &[
    Command::new("caching", 3, Group::Connection)
        .flags(CLIENT_SELF)
        .acl(acl::CONNECTION)
        .handler(client_caching)
        .doc(
            "Instruct the server about tracking or not keys in the next request",
            "6.0.0",
            "O(1)",
        ),
    Command::new("getredir", 2, Group::Connection)
        .flags(CLIENT_SELF)
        .acl(acl::CONNECTION)
        .handler(client_getredir)
        .doc(
            "Get tracking notifications redirection client ID if any",
            "6.0.0",
            "O(1)",
        ),
    Command::new("getname", 2, Group::Connection)
        .flags(CLIENT_SELF)
        .acl(acl::CONNECTION)
        .handler(client_getname)
        .doc("Get the current connection name", "2.6.9", "O(1)"),
    Command::new("help", 2, Group::Connection)
        .flags(LOADING | STALE)
        .acl(acl::CONNECTION)
        .handler(client_help)
        .doc(
            "Show helpful text about the different subcommands",
            "5.0.0",
            "O(1)",
        ),
    Command::new("id", 2, Group::Connection)
        .flags(CLIENT_SELF)
        .acl(acl::CONNECTION)
        .handler(client_id)
        .doc(
            "Returns the client ID for the current connection",
            "5.0.0",
            "O(1)",
        ),
    Command::new("info", 2, Group::Connection)
        .flags(CLIENT_SELF)
        .acl(acl::CONNECTION)
        .tips(&["nondeterministic_output"])
        .handler(client_info)
        .doc(
            "Returns information about the current client connection.",
            "6.2.0",
            "O(1)",
        ),
    Command::new("kill", -3, Group::Connection)
        .flags(CLIENT_ADMIN)
        .acl(acl::CONNECTION)
        .handler(client_kill)
        .doc(
            "Kill the connection of a client",
            "2.4.0",
            "O(N) where N is the number of client connections",
        ),
    Command::new("list", -2, Group::Connection)
        .flags(CLIENT_ADMIN)
        .acl(acl::CONNECTION)
        .tips(&["nondeterministic_output"])
        .handler(client_list)
        .doc(
            "Get the list of client connections",
            "2.4.0",
            "O(N) where N is the number of client connections",
        ),
    Command::new("tracking", -3, Group::Connection)
        .flags(CLIENT_SELF)
        .acl(acl::CONNECTION)
        .handler(client_tracking)
        .doc(
            "Enable or disable server assisted client side caching support",
            "6.0.0",
            "O(1). Some options may introduce additional complexity.",
        ),
    Command::new("trackinginfo", 2, Group::Connection)
        .flags(CLIENT_SELF)
        .acl(acl::CONNECTION)
        .handler(client_trackinginfo)
        .doc(
            "Return information about server assisted client side caching for the current \
             connection",
            "6.2.0",
            "O(1)",
        ),
    Command::new("unblock", -3, Group::Connection)
        .flags(CLIENT_ADMIN)
        .acl(acl::CONNECTION)
        .handler(client_unblock)
        .doc(
            "Unblock a client blocked in a blocking command from a different connection",
            "5.0.0",
            "O(log N) where N is the number of client connections",
        ),
    Command::new("no-evict", 3, Group::Connection)
        .flags(CLIENT_ADMIN)
        .acl(acl::CONNECTION)
        .handler(client_no_evict)
        .doc(
            "Set client eviction mode for the current connection",
            "7.0.0",
            "O(1)",
        ),
    Command::new("no-touch", 3, Group::Connection)
        .flags(CLIENT_SELF)
        .acl(acl::CONNECTION)
        .handler(client_no_touch)
        .doc(
            "Controls whether commands sent by the client will alter the LRU/LFU of the keys they access.",
            "7.2.0",
            "O(1)",
        ),
    Command::new("pause", -3, Group::Connection)
        .flags(CLIENT_ADMIN)
        .acl(acl::CONNECTION)
        .handler(client_pause)
        .doc(
            "Stop processing commands from clients for some time",
            "2.9.50",
            "O(1)",
        ),
    Command::new("reply", 3, Group::Connection)
        .flags(CLIENT_SELF)
        .acl(acl::CONNECTION)
        .handler(client_reply)
        .doc(
            "Instruct the server whether to reply to commands",
            "3.2.0",
            "O(1)",
        ),
    Command::new("unpause", 2, Group::Connection)
        .flags(CLIENT_ADMIN)
        .acl(acl::CONNECTION)
        .handler(client_unpause)
        .doc(
            "Resume processing of clients that were paused",
            "6.2.0",
            "O(N) Where N is the number of paused clients",
        ),
    Command::new("setinfo", 4, Group::Connection)
        .flags(CLIENT_SELF)
        .acl(acl::CONNECTION)
        .handler(client_setinfo)
        .doc(
            "Sets information specific to the client or connection.",
            "7.2.0",
            "O(1)",
        ),
    Command::new("setname", 3, Group::Connection)
        .flags(CLIENT_SELF)
        .acl(acl::CONNECTION)
        .handler(client_setname)
        .doc("Set the current connection name", "2.6.9", "O(1)"),
];

/// PING: PONG, or the argument echoed. A RESP2 client in subscribed mode can only receive
/// arrays, so it gets `["pong", msg]` instead.
fn ping(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if args.len() > 2 {
        return Err(CmdError::Arity("ping".into()));
    }
    let msg = args.try_get(1);
    if ctx.client.proto == Proto::Resp2 && ctx.client.shared.has_flag(flag::PUBSUB) {
        ctx.out.array(2);
        ctx.out.bulk(b"pong");
        ctx.out.bulk(msg.unwrap_or(b""));
    } else {
        match msg {
            None => ctx.out.simple(b"PONG"),
            Some(m) => ctx.out.bulk(m),
        }
    }
    Ok(())
}

fn echo(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    ctx.out.bulk(args.get(1));
    Ok(())
}

/// SELECT: the index must fit a C int before it is checked against `databases`.
fn select(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let db = parse_i64(args.get(1)).ok_or(CmdError::NotInteger)?;
    if i32::try_from(db).is_err() {
        return Err(CmdError::msg(format!(
            "ERR value is out of range, value must between {} and {}",
            i32::MIN,
            i32::MAX
        )));
    }
    match usize::try_from(db) {
        Ok(db) if db < ctx.srv.keyspace.num_dbs() => {
            ctx.client.select(db);
            ctx.out.ok();
            Ok(())
        }
        _ => Err(CmdError::msg("ERR DB index is out of range")),
    }
}

fn quit(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    ctx.client.close_after_reply = true;
    ctx.out.ok();
    Ok(())
}

/// Authenticates the client as `user`, or logs the failure and returns WRONGPASS.
fn authenticate(ctx: &mut Ctx<'_>, args: Args<'_>, user: &[u8], pass: &[u8]) -> CmdResult {
    let Some(u) = ctx.srv.acl.credentials(user, pass) else {
        let context = if ctx.client.multi.is_some() {
            crate::acl::LogContext::Multi
        } else {
            crate::acl::LogContext::Toplevel
        };
        let srv = ctx.srv;
        srv.acl.log(
            srv,
            ctx.client,
            crate::acl::Denied::Auth,
            context,
            args.get(0),
            Some(user),
        );
        return Err(CmdError::msg(
            "WRONGPASS invalid username-password pair or user is disabled.",
        ));
    };
    ctx.client.set_user(Some(u));
    Ok(())
}

/// AUTH [username] password.
fn auth(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let (user, pass) = match args.len() {
        2 => {
            if ctx.srv.acl.default_nopass() {
                return Err(CmdError::msg(
                    "ERR AUTH <password> called without any password configured for the \
                     default user. Are you sure your configuration is correct?",
                ));
            }
            (DEFAULT_USER, args.get(1))
        }
        3 => (args.get(1), args.get(2)),
        _ => return Err(CmdError::Syntax),
    };
    authenticate(ctx, args, user, pass)?;
    ctx.out.ok();
    Ok(())
}

/// HELLO [protover [AUTH user pass] [SETNAME name]]: options apply left to right; the
/// reply (in the new protocol) describes the server.
fn hello(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut proto = None;
    if let Some(v) = args.try_get(1) {
        let v = parse_i64(v).ok_or_else(|| {
            CmdError::msg("ERR Protocol version is not an integer or out of range")
        })?;
        proto = Some(match v {
            2 => Proto::Resp2,
            3 => Proto::Resp3,
            _ => return Err(CmdError::msg("NOPROTO unsupported protocol version")),
        });
    }
    let mut i = 2;
    while i < args.len() {
        let opt = args.get(i);
        let more = args.len() - 1 - i;
        if opt.eq_ignore_ascii_case(b"auth") && more >= 2 {
            authenticate(ctx, args, args.get(i + 1), args.get(i + 2))?;
            i += 3;
        } else if opt.eq_ignore_ascii_case(b"setname") && more >= 1 {
            set_name(&ctx.client.shared, args.get(i + 1))?;
            i += 2;
        } else {
            return Err(CmdError::msg(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(opt)
            )));
        }
    }
    if !ctx.client.authenticated {
        return Err(CmdError::msg(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
             HELLO AUTH <user> <pass> option can be used to authenticate the client and select \
             the RESP protocol version at the same time",
        ));
    }
    if let Some(p) = proto {
        ctx.client.set_proto(p);
        ctx.out.proto = p;
    }
    let out = &mut ctx.out;
    out.map(7);
    out.bulk(b"server");
    out.bulk(b"redis");
    out.bulk(b"version");
    out.bulk(crate::info::REDIS_VERSION.as_bytes());
    out.bulk(b"proto");
    out.int(if ctx.client.proto == Proto::Resp3 {
        3
    } else {
        2
    });
    out.bulk(b"id");
    out.int(ctx.client.id as i64);
    out.bulk(b"mode");
    out.bulk(b"standalone");
    out.bulk(b"role");
    out.bulk(b"master");
    out.bulk(b"modules");
    out.array(0);
    Ok(())
}

/// RESET: back to a fresh connection's state (RESP2, database 0, replies on, no name,
/// default-user authentication), as a pooled connection expects.
fn reset(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    ctx.srv.watches.unwatch_all(ctx.srv, ctx.client);
    ctx.srv.tracking().disable(ctx.srv, ctx.client);
    ctx.srv.pubsub().unsubscribe_all(ctx.client);
    if ctx.client.shared.has_flag(flag::MONITOR) {
        ctx.srv.monitors.remove(ctx.client.id);
        ctx.client
            .shared
            .set_flag(flag::MONITOR | flag::REPLICA, false);
    }
    let client = &mut *ctx.client;
    client.multi = None;
    client.shared.set_flag(flag::MULTI, false);
    client
        .shared
        .multi
        .store(-1, std::sync::atomic::Ordering::Relaxed);
    client.select(0);
    client.set_proto(Proto::Resp2);
    ctx.out.proto = Proto::Resp2;
    client.user = None;
    *client.shared.user.lock() = None;
    client.authenticated = ctx.srv.acl.default_open_door();
    // A RESET whose own reply is being skipped stays silent, as in Redis.
    if client.reply_mode != ReplyMode::SkipThis {
        client.reply_mode = ReplyMode::On;
    }
    *client.shared.name.lock() = None;
    client.shared.set_flag(flag::READONLY, false);
    ctx.out.simple(b"RESET");
    Ok(())
}

/// True if `s` may be shown in CLIENT LIST's space-separated fields: printable ASCII, no
/// spaces.
fn printable(s: &[u8]) -> bool {
    s.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

/// Sets (or, with an empty name, clears) the connection name.
fn set_name(shared: &ClientShared, name: &[u8]) -> CmdResult {
    if !printable(name) {
        return Err(CmdError::msg(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    *shared.name.lock() = (!name.is_empty()).then(|| name.to_vec());
    Ok(())
}

fn client_setname(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    set_name(&ctx.client.shared, args.get(2))?;
    ctx.out.ok();
    Ok(())
}

fn client_getname(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    match ctx.client.shared.name.lock().as_deref() {
        Some(n) => ctx.out.bulk(n),
        None => ctx.out.null(),
    }
    Ok(())
}

fn client_id(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    ctx.out.int(ctx.client.id as i64);
    Ok(())
}

/// CLIENT SETINFO LIB-NAME|LIB-VER value (Redis 7.2): what client library is connected,
/// shown in CLIENT LIST. An empty value clears it.
fn client_setinfo(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let attr = args.get(2);
    let slot = if attr.eq_ignore_ascii_case(b"lib-name") {
        &ctx.client.shared.lib_name
    } else if attr.eq_ignore_ascii_case(b"lib-ver") {
        &ctx.client.shared.lib_ver
    } else {
        return Err(CmdError::msg(format!(
            "ERR Unrecognized option '{}'",
            String::from_utf8_lossy(attr)
        )));
    };
    let value = args.get(3);
    if !printable(value) {
        return Err(CmdError::msg(format!(
            "ERR {} cannot contain spaces, newlines or special characters.",
            String::from_utf8_lossy(attr)
        )));
    }
    *slot.lock() = (!value.is_empty()).then(|| value.to_vec());
    ctx.out.ok();
    Ok(())
}

/// CLIENT REPLY ON|OFF|SKIP. Dispatch drops the replies; OFF and SKIP send none themselves.
fn client_reply(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mode = args.get(2);
    let client = &mut *ctx.client;
    if mode.eq_ignore_ascii_case(b"on") {
        client.reply_mode = ReplyMode::On;
        ctx.out.ok();
    } else if mode.eq_ignore_ascii_case(b"off") {
        client.reply_mode = ReplyMode::Off;
    } else if mode.eq_ignore_ascii_case(b"skip") {
        if client.reply_mode != ReplyMode::Off {
            client.reply_mode = ReplyMode::Skip;
        }
    } else {
        return Err(CmdError::Syntax);
    }
    Ok(())
}

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p]... [BCAST] [OPTIN] [OPTOUT] [NOLOOP]:
/// options are parsed (and REDIRECT's target checked) before ON/OFF, in Redis's order.
fn client_tracking(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut opts = crate::tracking::Opts::default();
    let mut i = 3;
    while i < args.len() {
        let opt = args.get(i);
        let more = i + 1 < args.len();
        if opt.eq_ignore_ascii_case(b"redirect") && more {
            i += 1;
            if opts.redirect != 0 {
                return Err(CmdError::msg(
                    "ERR A client can only redirect to a single other client",
                ));
            }
            let id = parse_i64(args.get(i)).ok_or(CmdError::NotInteger)?;
            let exists = u64::try_from(id).is_ok_and(|id| ctx.srv.clients.get(id).is_some());
            if !exists {
                return Err(CmdError::msg(
                    "ERR The client ID you want redirect to does not exist",
                ));
            }
            opts.redirect = id as u64;
        } else if opt.eq_ignore_ascii_case(b"bcast") {
            opts.bcast = true;
        } else if opt.eq_ignore_ascii_case(b"optin") {
            opts.optin = true;
        } else if opt.eq_ignore_ascii_case(b"optout") {
            opts.optout = true;
        } else if opt.eq_ignore_ascii_case(b"noloop") {
            opts.noloop = true;
        } else if opt.eq_ignore_ascii_case(b"prefix") && more {
            i += 1;
            opts.prefixes.push(args.get(i).into());
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    let tracking = ctx.srv.tracking();
    let mode = args.get(2);
    if mode.eq_ignore_ascii_case(b"on") {
        let existing = tracking.prefixes(ctx.client.id);
        crate::tracking::check_on(&ctx.client.shared, &existing, &opts).map_err(CmdError::msg)?;
        tracking.enable(ctx.srv, ctx.client, opts);
    } else if mode.eq_ignore_ascii_case(b"off") {
        tracking.disable(ctx.srv, ctx.client);
    } else {
        return Err(CmdError::Syntax);
    }
    ctx.out.ok();
    Ok(())
}

/// CLIENT CACHING YES|NO: whether the next command's keys are cached (OPTIN / OPTOUT).
fn client_caching(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let shared = &ctx.client.shared;
    if !shared.has_flag(flag::TRACKING) {
        return Err(CmdError::msg(
            "ERR CLIENT CACHING can be called only when the client is in tracking mode with \
             OPTIN or OPTOUT mode enabled",
        ));
    }
    let opt = args.get(2);
    if opt.eq_ignore_ascii_case(b"yes") {
        if !shared.has_flag(flag::OPTIN) {
            return Err(CmdError::msg(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            ));
        }
    } else if opt.eq_ignore_ascii_case(b"no") {
        if !shared.has_flag(flag::OPTOUT) {
            return Err(CmdError::msg(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            ));
        }
    } else {
        return Err(CmdError::Syntax);
    }
    shared.set_flag(flag::CACHING, true);
    ctx.out.ok();
    Ok(())
}

/// CLIENT GETREDIR: the redirect id, 0 when tracking without one, -1 when not tracking.
fn client_getredir(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    ctx.out.int(ctx.client.shared.redir.load(Relaxed));
    Ok(())
}

/// CLIENT TRACKINGINFO: the tracking flags, redirect and BCAST prefixes.
fn client_trackinginfo(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let shared = &ctx.client.shared;
    let has = |f| shared.has_flag(f);
    let mut names: Vec<&[u8]> = vec![if has(flag::TRACKING) { b"on" } else { b"off" }];
    if has(flag::BCAST) {
        names.push(b"bcast");
    }
    if has(flag::OPTIN) {
        names.push(b"optin");
        if has(flag::CACHING) {
            names.push(b"caching-yes");
        }
    }
    if has(flag::OPTOUT) {
        names.push(b"optout");
        if has(flag::CACHING) {
            names.push(b"caching-no");
        }
    }
    if has(flag::NOLOOP) {
        names.push(b"noloop");
    }
    if has(flag::BROKEN_REDIR) {
        names.push(b"broken_redirect");
    }
    let redir = shared.redir.load(Relaxed);
    let prefixes = ctx.srv.tracking().prefixes(ctx.client.id);
    let out = &mut ctx.out;
    out.map(3);
    out.bulk(b"flags");
    out.set(names.len());
    for n in names {
        out.bulk(n);
    }
    out.bulk(b"redirect");
    out.int(redir);
    out.bulk(b"prefixes");
    out.array(prefixes.len());
    for p in &prefixes {
        out.bulk(p);
    }
    Ok(())
}

/// CLIENT NO-EVICT ON|OFF: exempts the connection from `maxmemory-clients` eviction.
fn client_no_evict(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let on = parse_on_off(args.get(2))?;
    ctx.client.shared.set_flag(flag::NO_EVICT, on);
    ctx.out.ok();
    Ok(())
}

/// CLIENT NO-TOUCH ON|OFF (Redis 7.2): this connection's commands, except TOUCH, leave
/// the LRU/LFU bits of the keys they read, so a monitoring or backup client does not keep
/// keys from being evicted.
fn client_no_touch(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let on = parse_on_off(args.get(2))?;
    ctx.client.shared.set_flag(flag::NO_TOUCH, on);
    ctx.out.ok();
    Ok(())
}

/// CLIENT PAUSE timeout [WRITE|ALL]: holds back every client's commands (ALL, the default)
/// or those that may write (WRITE) for `timeout` ms; see [`crate::pause`].
fn client_pause(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    if args.len() > 4 {
        return Err(CmdError::msg(
            "ERR unknown subcommand or wrong number of arguments for 'pause'. Try CLIENT HELP.",
        ));
    }
    let kind = match args.len() {
        3 => Kind::All,
        _ if args.get(3).eq_ignore_ascii_case(b"write") => Kind::Write,
        _ if args.get(3).eq_ignore_ascii_case(b"all") => Kind::All,
        _ => return Err(CmdError::msg("ERR CLIENT PAUSE mode must be WRITE or ALL")),
    };
    let end_ms = crate::blocking::parse_timeout_ms(args.get(2), ctx.now_ms)?;
    ctx.srv.pause.pause(ctx.srv, kind, end_ms, ctx.now_ms);
    ctx.out.ok();
    Ok(())
}

/// CLIENT UNPAUSE: ends a CLIENT PAUSE now; the held commands run.
fn client_unpause(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    ctx.srv.pause.unpause(ctx.srv);
    ctx.out.ok();
    Ok(())
}

fn parse_on_off(v: &[u8]) -> Result<bool, CmdError> {
    if v.eq_ignore_ascii_case(b"on") {
        Ok(true)
    } else if v.eq_ignore_ascii_case(b"off") {
        Ok(false)
    } else {
        Err(CmdError::Syntax)
    }
}

/// Appends one CLIENT LIST line (without the newline). `argv_mem` is given for the calling
/// client only: it is the one running a command now, so it is also never idle.
fn describe(c: &ClientShared, now_ms: u64, argv_mem: Option<usize>, out: &mut String) {
    let name = c.name.lock().clone().unwrap_or_default();
    let lib_name = c.lib_name.lock().clone().unwrap_or_default();
    let lib_ver = c.lib_ver.lock().clone().unwrap_or_default();
    let idle = if argv_mem.is_some() {
        0
    } else {
        c.idle_ms(now_ms) / 1000
    };
    let argv_mem = argv_mem.unwrap_or(0);
    let qbuf = c.qbuf.load(Relaxed);
    let qbuf_free = c.qbuf_free.load(Relaxed);
    let omem = c.obuf.load(Relaxed);
    let (obl, oll) = c.reply_blocks();
    let cmd = match c.last_cmd.load(Relaxed) {
        0 => "NULL",
        id => table().full_name(id as usize - 1),
    };
    // What its worker counts it holds (buffers, transaction, subscriptions: the figure
    // `maxmemory-clients` adds up), plus the arguments of the command running now.
    let tot_mem = c.mem.load(Relaxed) + argv_mem;
    let _ = write!(
        out,
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} \
         ssub={} multi={} qbuf={qbuf} qbuf-free={qbuf_free} argv-mem={argv_mem} multi-mem=0 \
         rbs=0 rbp=0 obl={obl} oll={oll} omem={omem} tot-mem={tot_mem} events={} cmd={cmd} user={} redir={} \
         resp={} lib-name={} lib-ver={}",
        c.id,
        c.addr,
        c.laddr,
        c.fd,
        String::from_utf8_lossy(&name),
        now_ms.saturating_sub(c.created_ms) / 1000,
        idle,
        c.flag_letters(),
        c.db.load(Relaxed),
        c.sub.load(Relaxed),
        c.psub.load(Relaxed),
        c.ssub.load(Relaxed),
        c.multi.load(Relaxed),
        if omem > 0 { "rw" } else { "r" },
        c.user_name(),
        c.redir.load(Relaxed),
        c.resp.load(Relaxed),
        String::from_utf8_lossy(&lib_name),
        String::from_utf8_lossy(&lib_ver),
    );
}

/// Appends `c`'s line and a newline, describing the caller specially (see [`describe`]).
fn describe_line(ctx: &Ctx<'_>, args: Args<'_>, c: &ClientShared, out: &mut String) {
    let argv_mem = (c.id == ctx.client.id).then(|| args.iter().map(<[u8]>::len).sum());
    describe(c, ctx.now_ms, argv_mem, out);
    out.push('\n');
}

/// A client's CLIENT LIST line, as the ACL log records it.
pub fn info_line(client: &crate::client::Client, now_ms: u64) -> String {
    let mut out = String::new();
    describe(&client.shared, now_ms, Some(0), &mut out);
    out
}

fn client_info(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut text = String::new();
    describe_line(ctx, args, &ctx.client.shared, &mut text);
    ctx.out.verbatim(b"txt", text.as_bytes());
    Ok(())
}

/// CLIENT LIST [TYPE type | ID id...]: one line per client, in connection order.
fn client_list(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let mut text = String::new();
    let opt = args.try_get(2);
    if args.len() == 4 && opt.is_some_and(|o| o.eq_ignore_ascii_case(b"type")) {
        let ty = parse_type(args.get(3))?;
        for c in ctx.srv.clients.all() {
            if c.client_type() == ty {
                describe_line(ctx, args, &c, &mut text);
            }
        }
    } else if args.len() > 3 && opt.is_some_and(|o| o.eq_ignore_ascii_case(b"id")) {
        let ids = args
            .iter()
            .skip(3)
            .map(parse_i64)
            .collect::<Option<Vec<i64>>>()
            .ok_or_else(|| CmdError::msg("ERR Invalid client ID"))?;
        for id in ids {
            let found = u64::try_from(id)
                .ok()
                .and_then(|id| ctx.srv.clients.get(id));
            if let Some(c) = found {
                describe_line(ctx, args, &c, &mut text);
            }
        }
    } else if args.len() == 2 {
        for c in ctx.srv.clients.all() {
            describe_line(ctx, args, &c, &mut text);
        }
    } else {
        return Err(CmdError::Syntax);
    }
    ctx.out.verbatim(b"txt", text.as_bytes());
    Ok(())
}

fn parse_type(name: &[u8]) -> Result<ClientType, CmdError> {
    ClientType::parse(name).ok_or_else(|| {
        CmdError::msg(format!(
            "ERR Unknown client type '{}'",
            String::from_utf8_lossy(name)
        ))
    })
}

/// Which clients a CLIENT KILL targets.
#[derive(Default)]
struct KillFilter<'a> {
    addr: Option<&'a [u8]>,
    laddr: Option<&'a [u8]>,
    ty: Option<ClientType>,
    id: Option<u64>,
    /// Only connections older than this many seconds (MAXAGE, Redis 7.4).
    max_age: Option<u64>,
    user: Option<std::sync::Arc<crate::acl::User>>,
    skip_me: bool,
}

impl KillFilter<'_> {
    /// Parses `CLIENT KILL <option> <value> ...` (arguments from index 2).
    fn parse<'a>(srv: &Server, args: Args<'a>) -> Result<KillFilter<'a>, CmdError> {
        let mut f = KillFilter {
            skip_me: true,
            ..KillFilter::default()
        };
        let mut i = 2;
        while i < args.len() {
            let (opt, value) = match (args.get(i), args.try_get(i + 1)) {
                (opt, Some(v)) => (opt.to_ascii_lowercase(), v),
                _ => return Err(CmdError::Syntax),
            };
            match opt.as_slice() {
                b"id" => {
                    let id = parse_i64(value)
                        .filter(|&id| id > 0)
                        .ok_or_else(|| CmdError::msg("ERR client-id should be greater than 0"))?;
                    f.id = Some(id as u64);
                }
                b"type" => f.ty = Some(parse_type(value)?),
                b"addr" => f.addr = Some(value),
                b"laddr" => f.laddr = Some(value),
                b"maxage" => {
                    let age = parse_i64(value)
                        .filter(|&a| a >= 0)
                        .ok_or(CmdError::NotInteger)?;
                    f.max_age = Some(age as u64);
                }
                b"user" => {
                    let Some(u) = srv.acl.user(value) else {
                        return Err(CmdError::msg(format!(
                            "ERR No such user '{}'",
                            String::from_utf8_lossy(value)
                        )));
                    };
                    f.user = Some(u);
                }
                b"skipme" if value.eq_ignore_ascii_case(b"yes") => f.skip_me = true,
                b"skipme" if value.eq_ignore_ascii_case(b"no") => f.skip_me = false,
                _ => return Err(CmdError::Syntax),
            }
            i += 2;
        }
        Ok(f)
    }

    fn matches(&self, c: &ClientShared, me: u64, now_ms: u64) -> bool {
        self.addr.is_none_or(|a| a == c.addr.to_string().as_bytes())
            && self
                .laddr
                .is_none_or(|a| a == c.laddr.to_string().as_bytes())
            && self.ty.is_none_or(|t| t == c.client_type())
            && self.id.is_none_or(|id| id == c.id)
            && self.user.as_ref().is_none_or(|u| c.is_user(u))
            && self
                .max_age
                .is_none_or(|age| now_ms.saturating_sub(c.created_ms) / 1000 > age)
            && !(self.skip_me && c.id == me)
    }
}

/// CLIENT KILL addr (old form: +OK or an error) or CLIENT KILL <filters> (the number
/// killed). Other connections are closed by their own worker, woken here; the caller's
/// own connection closes after this reply.
fn client_kill(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let old_form = args.len() == 3;
    let filter = if old_form {
        KillFilter {
            addr: Some(args.get(2)),
            ..KillFilter::default()
        }
    } else {
        KillFilter::parse(ctx.srv, args)?
    };
    let me = ctx.client.id;
    let mut killed = 0;
    for c in ctx.srv.clients.all() {
        if !filter.matches(&c, me, ctx.now_ms) {
            continue;
        }
        killed += 1;
        if c.id == me {
            ctx.client.close_after_reply = true;
        } else {
            c.killed.store(true, Relaxed);
            // Gone from CLIENT LIST at once, as in Redis, even before its worker closes it.
            ctx.srv.clients.remove(c.id);
        }
    }
    if killed > 0 {
        ctx.srv.wake_workers();
    }
    if !old_form {
        ctx.out.int(killed);
    } else if killed == 0 {
        return Err(CmdError::msg("ERR No such client"));
    } else {
        ctx.out.ok();
    }
    Ok(())
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR]: 1 if that client was blocked and now is not.
fn client_unblock(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let id = parse_i64(args.get(2)).ok_or(CmdError::NotInteger)?;
    let error = match args.try_get(3) {
        None => false,
        Some(a) if a.eq_ignore_ascii_case(b"timeout") => false,
        Some(a) if a.eq_ignore_ascii_case(b"error") => true,
        Some(_) => {
            return Err(CmdError::msg(
                "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
            ))
        }
    };
    let done = u64::try_from(id).is_ok_and(|id| ctx.srv.blocked.unblock_client(ctx.srv, id, error));
    ctx.out.int(i64::from(done));
    Ok(())
}

/// CLIENT HELP: the subcommands this server implements.
fn client_help(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    const LINES: &[&str] = &[
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CACHING (YES|NO)",
        "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
        "GETREDIR",
        "    Return the client ID we are redirecting to when tracking is enabled.",
        "GETNAME",
        "    Reply with this connection's name, or nil if it has none.",
        "ID",
        "    Reply with this connection's unique ID.",
        "INFO",
        "    Describe this connection, in the format of CLIENT LIST.",
        "KILL <ip:port>",
        "    Close the connection coming from <ip:port>.",
        "KILL <option> <value> [<option> <value> [...]]",
        "    Close every connection matching all the options given; reply with their count:",
        "    * ID <client-id>",
        "      The connection with this ID.",
        "    * ADDR <ip:port>",
        "      Connections from this remote address.",
        "    * LADDR <ip:port>",
        "      Connections to this local address.",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
        "      Connections of this type.",
        "    * USER <username>",
        "      Connections authenticated as this user.",
        "    * MAXAGE <seconds>",
        "      Connections older than this.",
        "    * SKIPME (YES|NO)",
        "      Whether to spare this connection (default: YES).",
        "LIST [TYPE (NORMAL|MASTER|REPLICA|PUBSUB)] [ID <client-id> [...]]",
        "    Describe every connection, or those of one type, or those with these IDs.",
        "NO-EVICT (ON|OFF)",
        "    Exempt this connection from client eviction, or not.",
        "NO-TOUCH (ON|OFF)",
        "    Leave the LRU/LFU of the keys this connection reads alone, or not.",
        "PAUSE <timeout> [WRITE|ALL]",
        "    Suspend all, or just write, clients for <timeout> milliseconds.",
        "REPLY (ON|OFF|SKIP)",
        "    Send replies to this connection, send none, or skip the next one.",
        "SETINFO (LIB-NAME|LIB-VER) <value>",
        "    Record the client library's name or version (shown by CLIENT LIST).",
        "SETNAME <name>",
        "    Name this connection (an empty name removes it).",
        "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
        "         [OPTIN] [OPTOUT] [NOLOOP]",
        "    Control server assisted client side caching.",
        "TRACKINGINFO",
        "    Report tracking status for the current connection.",
        "UNPAUSE",
        "    Stop the current client pause, resuming traffic.",
        "UNBLOCK <client-id> [TIMEOUT|ERROR]",
        "    Unblock a client blocked in a blocking command: it gets the reply of a timeout,",
        "    or an -UNBLOCKED error.",
        "HELP",
        "    Print this help.",
    ];
    ctx.help(LINES);
    Ok(())
}
