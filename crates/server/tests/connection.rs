//! Connection commands end to end: PING, ECHO, SELECT, QUIT, HELLO (RESP2 and RESP3 on the
//! wire), AUTH, RESET and the CLIENT family, plus the `timeout` and `maxclients` limits.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{Raw, Server};
use redis::Value;

/// Runs a command on a redis-rs connection and returns the error text it failed with.
fn err(con: &mut redis::Connection, args: &[&str]) -> String {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    let e = c.query::<Value>(con).expect_err("command should fail");
    // redis-rs splits "CODE detail"; put the line back together.
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        (Some(code), None) => code.to_string(),
        _ => e.to_string(),
    }
}

fn query<T: redis::FromRedisValue>(con: &mut redis::Connection, args: &[&str]) -> T {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(con).unwrap()
}

/// Reads one bulk (or RESP3 verbatim) reply from a raw socket.
fn read_bulk(r: &mut Raw) -> String {
    let head = r.line();
    let len: usize = head[1..head.len() - 2].parse().expect("bulk length");
    let body = r.read_n(len + 2);
    String::from_utf8(body[..len].to_vec()).unwrap()
}

/// The fields of one CLIENT LIST line, in order.
fn fields(line: &str) -> Vec<(String, String)> {
    line.trim_end()
        .split(' ')
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("key=value");
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn field_map(line: &str) -> HashMap<String, String> {
    fields(line).into_iter().collect()
}

/// The CLIENT LIST line of client `id`, if listed.
fn line_of(list: &str, id: i64) -> Option<String> {
    list.lines()
        .find(|l| l.starts_with(&format!("id={id} ")))
        .map(str::to_string)
}

fn hello_bytes(resp3: bool, id: i64) -> String {
    let head = if resp3 { "%7" } else { "*14" };
    let proto = if resp3 { 3 } else { 2 };
    format!(
        "{head}\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n\
         $5\r\nproto\r\n:{proto}\r\n$2\r\nid\r\n:{id}\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n\
         $4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"
    )
}

/// The client id of a raw connection.
fn raw_id(r: &mut Raw) -> i64 {
    r.cmd(&[b"CLIENT", b"ID"]);
    let l = r.line();
    l[1..l.len() - 2].parse().unwrap()
}

#[test]
fn ping_echo_select_quit() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(query::<String>(&mut c, &["PING"]), "PONG");
    assert_eq!(query::<String>(&mut c, &["PING", "hello"]), "hello");
    assert_eq!(
        err(&mut c, &["PING", "a", "b"]),
        "ERR wrong number of arguments for 'ping' command"
    );
    assert_eq!(query::<String>(&mut c, &["ECHO", "x y"]), "x y");
    assert_eq!(
        err(&mut c, &["ECHO"]),
        "ERR wrong number of arguments for 'echo' command"
    );
    assert_eq!(query::<String>(&mut c, &["SELECT", "15"]), "OK");
    assert_eq!(
        err(&mut c, &["SELECT", "16"]),
        "ERR DB index is out of range"
    );
    assert_eq!(
        err(&mut c, &["SELECT", "-1"]),
        "ERR DB index is out of range"
    );
    assert_eq!(
        err(&mut c, &["SELECT", "1.5"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(&mut c, &["SELECT", "99999999999"]),
        "ERR value is out of range, value must between -2147483648 and 2147483647"
    );

    let mut r = s.raw();
    r.send(b"PING\r\n");
    r.expect("+PONG\r\n");
    r.cmd(&[b"PING", b"hi"]);
    r.expect("$2\r\nhi\r\n");
    r.cmd(&[b"QUIT"]);
    r.expect("+OK\r\n");
    assert!(r.closed());
}

#[test]
fn hello_switches_protocol_on_the_wire() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    let id = raw_id(&mut r);
    r.cmd(&[b"HELLO"]);
    r.expect(&hello_bytes(false, id));
    r.cmd(&[b"HELLO", b"3"]);
    r.expect(&hello_bytes(true, id));
    // RESP3 shapes: null, map-free simple replies, verbatim text.
    r.cmd(&[b"PING"]);
    r.expect("+PONG\r\n");
    r.cmd(&[b"CLIENT", b"GETNAME"]);
    r.expect("_\r\n");
    r.cmd(&[b"CLIENT", b"INFO"]);
    let head = r.line();
    assert!(head.starts_with('='), "{head}");
    let len: usize = head[1..head.len() - 2].parse().unwrap();
    let body = String::from_utf8(r.read_n(len + 2)).unwrap();
    assert!(body.starts_with(&format!("txt:id={id} ")), "{body}");
    assert!(body.contains(" resp=3 "), "{body}");
    assert!(body.ends_with("\n\r\n"));
    r.cmd(&[b"HELLO", b"2"]);
    r.expect(&hello_bytes(false, id));
    r.cmd(&[b"CLIENT", b"GETNAME"]);
    r.expect("$-1\r\n");

    r.cmd(&[b"HELLO", b"1"]);
    r.expect("-NOPROTO unsupported protocol version\r\n");
    r.cmd(&[b"HELLO", b"4"]);
    r.expect("-NOPROTO unsupported protocol version\r\n");
    r.cmd(&[b"HELLO", b"x"]);
    r.expect("-ERR Protocol version is not an integer or out of range\r\n");
    r.cmd(&[b"HELLO", b"3", b"foo"]);
    r.expect("-ERR Syntax error in HELLO option 'foo'\r\n");
    r.cmd(&[b"HELLO", b"3", b"AUTH", b"default"]);
    r.expect("-ERR Syntax error in HELLO option 'AUTH'\r\n");
    // A failed HELLO leaves the protocol alone.
    r.cmd(&[b"CLIENT", b"GETNAME"]);
    r.expect("$-1\r\n");
}

#[test]
fn hello_auth_and_setname_without_password() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    let id = raw_id(&mut r);
    // The default user needs no password: any password is accepted for it.
    r.cmd(&[
        b"HELLO",
        b"3",
        b"AUTH",
        b"default",
        b"anything",
        b"SETNAME",
        b"me",
    ]);
    r.expect(&hello_bytes(true, id));
    r.cmd(&[b"CLIENT", b"GETNAME"]);
    r.expect("$2\r\nme\r\n");
    r.cmd(&[b"HELLO", b"3", b"AUTH", b"nobody", b"pw"]);
    r.expect("-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    r.cmd(&[b"HELLO", b"2", b"SETNAME", b"a b"]);
    r.expect("-ERR Client names cannot contain spaces, newlines or special characters.\r\n");

    let mut c = s.client();
    assert_eq!(
        err(&mut c, &["AUTH", "pw"]),
        "ERR AUTH <password> called without any password configured for the default user. \
         Are you sure your configuration is correct?"
    );
    assert_eq!(query::<String>(&mut c, &["AUTH", "default", "pw"]), "OK");
    assert_eq!(
        err(&mut c, &["AUTH", "nobody", "pw"]),
        "WRONGPASS invalid username-password pair or user is disabled."
    );
    assert_eq!(err(&mut c, &["AUTH", "a", "b", "c"]), "ERR syntax error");
}

#[test]
fn auth_with_requirepass() {
    let s = Server::start(&["--requirepass", "s3cret"]);
    let mut r = s.raw();
    let noauth = "-NOAUTH HELLO must be called with the client already authenticated, \
                  otherwise the HELLO AUTH <user> <pass> option can be used to authenticate \
                  the client and select the RESP protocol version at the same time\r\n";
    r.cmd(&[b"HELLO", b"3"]);
    r.expect(noauth);
    let wrongpass = "-WRONGPASS invalid username-password pair or user is disabled.\r\n";
    for bad in [&b"s3cre"[..], b"s3crets", b"", b"S3CRET"] {
        r.cmd(&[b"AUTH", bad]);
        r.expect(wrongpass);
    }
    r.cmd(&[b"HELLO", b"3", b"AUTH", b"default", b"nope"]);
    r.expect(wrongpass);
    r.cmd(&[b"AUTH", b"s3cret"]);
    r.expect("+OK\r\n");
    r.cmd(&[b"HELLO", b"3"]);
    assert_eq!(r.line(), "%7\r\n");

    // RESET drops the authentication along with the rest of the state.
    let mut r = s.raw();
    r.cmd(&[b"HELLO", b"2", b"AUTH", b"default", b"s3cret"]);
    let id = raw_id_after_hello(&mut r);
    r.cmd(&[b"RESET"]);
    r.expect("+RESET\r\n");
    r.cmd(&[b"HELLO"]);
    r.expect(noauth);
    r.cmd(&[b"HELLO", b"3", b"AUTH", b"default", b"s3cret"]);
    r.expect(&hello_bytes(true, id));
}

/// Consumes one whole reply of any type and returns its bytes.
fn read_reply(r: &mut Raw) -> String {
    let head = r.line();
    let n = || head[1..head.len() - 2].parse::<i64>().unwrap();
    let mut out = head.clone();
    match head.as_bytes()[0] {
        b'$' | b'=' if n() >= 0 => {
            out.push_str(&String::from_utf8(r.read_n(n() as usize + 2)).unwrap())
        }
        b'*' | b'~' | b'>' => (0..n().max(0)).for_each(|_| out.push_str(&read_reply(r))),
        b'%' => (0..2 * n()).for_each(|_| out.push_str(&read_reply(r))),
        _ => {}
    }
    out
}

/// Reads a HELLO reply and returns the client id in it.
fn raw_id_after_hello(r: &mut Raw) -> i64 {
    let reply = read_reply(r);
    let pat = "$2\r\nid\r\n:";
    let at = reply.find(pat).expect("id field") + pat.len();
    let rest = &reply[at..];
    rest[..rest.find('\r').unwrap()].parse().unwrap()
}

#[test]
fn reset_restores_a_fresh_connection() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    let id = raw_id(&mut r);
    r.cmd(&[b"HELLO", b"3", b"SETNAME", b"pooled"]);
    read_reply(&mut r);
    r.cmd(&[b"SELECT", b"5"]);
    r.expect("+OK\r\n");
    r.cmd(&[b"CLIENT", b"NO-EVICT", b"on"]);
    r.expect("+OK\r\n");
    r.cmd(&[b"CLIENT", b"REPLY", b"OFF"]);
    r.cmd(&[b"PING", b"silenced"]);
    r.cmd(&[b"RESET"]);
    r.expect("+RESET\r\n");
    r.cmd(&[b"CLIENT", b"INFO"]);
    let info = field_map(&read_bulk(&mut r));
    assert_eq!(info["id"], id.to_string());
    assert_eq!(info["db"], "0");
    assert_eq!(info["resp"], "2");
    assert_eq!(info["name"], "");
    // Redis 7.0 keeps NO-EVICT across RESET.
    assert_eq!(info["flags"], "e");
    r.cmd(&[b"CLIENT", b"GETNAME"]);
    r.expect("$-1\r\n");
}

#[test]
fn client_id_setname_getname() {
    let s = Server::start(&[]);
    let mut a = s.client();
    let mut b = s.client();
    let ida: i64 = query(&mut a, &["CLIENT", "ID"]);
    let idb: i64 = query(&mut b, &["CLIENT", "ID"]);
    assert!(idb > ida && ida > 0);
    assert_eq!(
        query::<Option<String>>(&mut a, &["CLIENT", "GETNAME"]),
        None
    );
    assert_eq!(
        query::<String>(&mut a, &["CLIENT", "SETNAME", "worker-1"]),
        "OK"
    );
    assert_eq!(
        query::<Option<String>>(&mut a, &["CLIENT", "GETNAME"]).as_deref(),
        Some("worker-1")
    );
    let bad = "ERR Client names cannot contain spaces, newlines or special characters.";
    for name in ["a b", "a\nb", "tab\there", "caf\u{e9}"] {
        assert_eq!(err(&mut a, &["CLIENT", "SETNAME", name]), bad);
    }
    // An invalid name leaves the old one; an empty name removes it.
    assert_eq!(
        query::<Option<String>>(&mut a, &["CLIENT", "GETNAME"]).as_deref(),
        Some("worker-1")
    );
    assert_eq!(query::<String>(&mut a, &["CLIENT", "SETNAME", ""]), "OK");
    assert_eq!(
        query::<Option<String>>(&mut a, &["CLIENT", "GETNAME"]),
        None
    );

    assert_eq!(
        err(&mut a, &["CLIENT", "ID", "x"]),
        "ERR wrong number of arguments for 'client|id' command"
    );
    assert_eq!(
        err(&mut a, &["CLIENT"]),
        "ERR wrong number of arguments for 'client' command"
    );
    assert_eq!(
        err(&mut a, &["CLIENT", "FOO"]),
        "ERR unknown subcommand 'FOO'. Try CLIENT HELP."
    );
    let help: Vec<String> = query(&mut a, &["CLIENT", "HELP"]);
    assert_eq!(
        help[0],
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    );
    assert!(help.iter().any(|l| l.starts_with("KILL <ip:port>")));
    assert_eq!(
        help.last().map(String::as_str),
        Some("    Print this help.")
    );
}

#[test]
fn client_list_and_info_fields() {
    let s = Server::start(&[]);
    let mut a = s.client();
    let mut b = s.client();
    let ida: i64 = query(&mut a, &["CLIENT", "ID"]);
    let idb: i64 = query(&mut b, &["CLIENT", "ID"]);
    let _: String = query(&mut b, &["SELECT", "3"]);
    let _: String = query(&mut b, &["CLIENT", "SETNAME", "other"]);
    let _: String = query(&mut b, &["PING"]);

    let list: String = query(&mut a, &["CLIENT", "LIST"]);
    assert!(list.ends_with('\n'));
    let mine = line_of(&list, ida).expect("own line");
    let keys: Vec<String> = fields(&mine).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys.join(" "),
        "id addr laddr fd name age idle flags db sub psub ssub multi qbuf qbuf-free argv-mem \
         multi-mem rbs rbp obl oll omem tot-mem events cmd user redir resp lib-name lib-ver"
    );
    let m = field_map(&mine);
    assert_eq!(m["laddr"], format!("127.0.0.1:{}", s.port));
    assert!(m["addr"].starts_with("127.0.0.1:"));
    assert_eq!(m["name"], "");
    assert_eq!(m["flags"], "N");
    assert_eq!(m["db"], "0");
    assert_eq!(m["multi"], "-1");
    // "*2\r\n$6\r\nCLIENT\r\n$4\r\nLIST\r\n" is 26 bytes.
    assert_eq!(m["qbuf"], "26");
    assert_eq!(m["argv-mem"], "10");
    assert_eq!(m["idle"], "0");
    assert_eq!(m["events"], "r");
    assert_eq!(m["cmd"], "client|list");
    assert_eq!(m["user"], "default");
    assert_eq!(m["redir"], "-1");
    assert_eq!(m["resp"], "2");

    let other = field_map(&line_of(&list, idb).expect("other line"));
    assert_eq!(other["name"], "other");
    assert_eq!(other["db"], "3");
    assert_eq!(other["cmd"], "ping");
    assert_eq!(other["argv-mem"], "0");

    let info: String = query(&mut a, &["CLIENT", "INFO"]);
    assert!(info.ends_with('\n') && info.lines().count() == 1);
    let i = field_map(&info);
    assert_eq!(i["id"], ida.to_string());
    assert_eq!(i["cmd"], "client|info");

    // Filters.
    let normal: String = query(&mut a, &["CLIENT", "LIST", "TYPE", "NORMAL"]);
    assert!(line_of(&normal, ida).is_some() && line_of(&normal, idb).is_some());
    for ty in ["pubsub", "master", "replica", "slave"] {
        assert_eq!(query::<String>(&mut a, &["CLIENT", "LIST", "TYPE", ty]), "");
    }
    assert_eq!(
        err(&mut a, &["CLIENT", "LIST", "TYPE", "foo"]),
        "ERR Unknown client type 'foo'"
    );
    let by_id: String = query(
        &mut a,
        &["CLIENT", "LIST", "ID", &idb.to_string(), "99999", "-1"],
    );
    assert_eq!(by_id.lines().count(), 1);
    assert!(by_id.starts_with(&format!("id={idb} ")));
    assert_eq!(
        err(&mut a, &["CLIENT", "LIST", "ID", "1", "x"]),
        "ERR Invalid client ID"
    );
    assert_eq!(err(&mut a, &["CLIENT", "LIST", "ID"]), "ERR syntax error");
    assert_eq!(err(&mut a, &["CLIENT", "LIST", "foo"]), "ERR syntax error");
    assert_eq!(
        err(&mut a, &["CLIENT", "LIST", "TYPE", "normal", "x"]),
        "ERR syntax error"
    );

    // A closed connection leaves the list.
    drop(b);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let list: String = query(&mut a, &["CLIENT", "LIST"]);
        if line_of(&list, idb).is_none() {
            break;
        }
        assert!(Instant::now() < deadline, "closed client still listed");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn client_no_evict_and_setinfo() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(query::<String>(&mut c, &["CLIENT", "NO-EVICT", "ON"]), "OK");
    let info: String = query(&mut c, &["CLIENT", "INFO"]);
    assert_eq!(field_map(&info)["flags"], "e");
    assert_eq!(
        query::<String>(&mut c, &["CLIENT", "NO-EVICT", "off"]),
        "OK"
    );
    let info: String = query(&mut c, &["CLIENT", "INFO"]);
    assert_eq!(field_map(&info)["flags"], "N");
    assert_eq!(
        err(&mut c, &["CLIENT", "NO-EVICT", "maybe"]),
        "ERR syntax error"
    );

    assert_eq!(
        query::<String>(&mut c, &["CLIENT", "SETINFO", "LIB-NAME", "redis-rs"]),
        "OK"
    );
    assert_eq!(
        query::<String>(&mut c, &["CLIENT", "SETINFO", "lib-ver", "0.27.0"]),
        "OK"
    );
    let info: String = query(&mut c, &["CLIENT", "INFO"]);
    let m = field_map(&info);
    assert_eq!(
        (m["lib-name"].as_str(), m["lib-ver"].as_str()),
        ("redis-rs", "0.27.0")
    );
    assert_eq!(
        err(&mut c, &["CLIENT", "SETINFO", "lib-name", "a b"]),
        "ERR lib-name cannot contain spaces, newlines or special characters."
    );
    assert_eq!(
        err(&mut c, &["CLIENT", "SETINFO", "color", "red"]),
        "ERR Unrecognized option 'color'"
    );
    assert_eq!(
        query::<String>(&mut c, &["CLIENT", "SETINFO", "lib-ver", ""]),
        "OK"
    );
    let info: String = query(&mut c, &["CLIENT", "INFO"]);
    assert_eq!(field_map(&info)["lib-ver"], "");
}

#[test]
fn client_reply_off_and_skip() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    r.cmd(&[b"CLIENT", b"REPLY", b"OFF"]);
    r.cmd(&[b"PING", b"one"]);
    r.cmd(&[b"SET", b"k", b"v"]);
    r.cmd(&[b"CLIENT", b"REPLY", b"SKIP"]);
    r.cmd(&[b"CLIENT", b"REPLY", b"ON"]);
    r.expect("+OK\r\n");
    r.cmd(&[b"CLIENT", b"REPLY", b"SKIP"]);
    r.cmd(&[b"PING", b"skipped"]);
    r.cmd(&[b"PING", b"shown"]);
    r.expect("$5\r\nshown\r\n");
    // SKIP then ON: ON's own reply is sent.
    r.cmd(&[b"CLIENT", b"REPLY", b"SKIP"]);
    r.cmd(&[b"CLIENT", b"REPLY", b"ON"]);
    r.expect("+OK\r\n");
    r.cmd(&[b"CLIENT", b"REPLY", b"maybe"]);
    r.expect("-ERR syntax error\r\n");
    // The silenced SET still ran.
    r.cmd(&[b"GET", b"k"]);
    r.expect("$1\r\nv\r\n");
}

#[test]
fn client_kill_closes_other_connections() {
    let s = Server::start(&[]);
    let mut admin = s.client();
    let mut victim = s.raw();
    let vid = raw_id(&mut victim);
    let list: String = query(&mut admin, &["CLIENT", "LIST"]);
    let vaddr = field_map(&line_of(&list, vid).unwrap())["addr"].clone();

    // Old form: by address.
    assert_eq!(
        query::<String>(&mut admin, &["CLIENT", "KILL", &vaddr]),
        "OK"
    );
    assert!(victim.closed());
    assert_eq!(
        err(&mut admin, &["CLIENT", "KILL", &vaddr]),
        "ERR No such client"
    );
    let list: String = query(&mut admin, &["CLIENT", "LIST"]);
    assert!(line_of(&list, vid).is_none());

    // New form: by id, with a count.
    let mut v2 = s.raw();
    let id2 = raw_id(&mut v2);
    assert_eq!(
        query::<i64>(&mut admin, &["CLIENT", "KILL", "ID", &id2.to_string()]),
        1
    );
    assert!(v2.closed());
    assert_eq!(
        query::<i64>(&mut admin, &["CLIENT", "KILL", "ID", &id2.to_string()]),
        0
    );

    // By type and laddr, sparing the caller by default.
    let mut v3 = s.raw();
    let mut v4 = s.raw();
    raw_id(&mut v3);
    raw_id(&mut v4);
    let laddr = format!("127.0.0.1:{}", s.port);
    assert_eq!(
        query::<i64>(
            &mut admin,
            &["CLIENT", "KILL", "TYPE", "normal", "LADDR", &laddr, "USER", "default"]
        ),
        2
    );
    assert!(v3.closed() && v4.closed());
    assert_eq!(query::<String>(&mut admin, &["PING"]), "PONG");

    // SKIPME no: the caller goes too, after its reply.
    let mut r = s.raw();
    r.cmd(&[b"CLIENT", b"KILL", b"SKIPME", b"no"]);
    r.expect(":2\r\n");
    assert!(r.closed());

    let mut c = s.client();
    for (args, want) in [
        (
            &["CLIENT", "KILL"][..],
            "ERR wrong number of arguments for 'client|kill' command",
        ),
        (&["CLIENT", "KILL", "ID", "10", "extra"], "ERR syntax error"),
        (
            &["CLIENT", "KILL", "ID", "x"],
            "ERR client-id should be greater than 0",
        ),
        (
            &["CLIENT", "KILL", "ID", "0"],
            "ERR client-id should be greater than 0",
        ),
        (
            &["CLIENT", "KILL", "ID", "-1"],
            "ERR client-id should be greater than 0",
        ),
        (
            &["CLIENT", "KILL", "TYPE", "foo"],
            "ERR Unknown client type 'foo'",
        ),
        (&["CLIENT", "KILL", "USER", "bob"], "ERR No such user 'bob'"),
        (&["CLIENT", "KILL", "SKIPME", "maybe"], "ERR syntax error"),
        (
            &["CLIENT", "KILL", "MAXAGE", "x"],
            "ERR value is not an integer or out of range",
        ),
        (&["CLIENT", "KILL", "1.2.3.4:5"], "ERR No such client"),
    ] {
        assert_eq!(err(&mut c, args), want, "{args:?}");
    }
    // MAXAGE (Redis 7.4's filter): no connection here is 100 s old.
    assert_eq!(
        query::<i64>(&mut c, &["CLIENT", "KILL", "MAXAGE", "100"]),
        0
    );
}

#[test]
fn idle_clients_are_closed_after_timeout() {
    let s = Server::start(&["--timeout", "1"]);
    let mut idle = s.raw();
    let mut busy = s.raw();
    let started = Instant::now();
    // Keep one connection active while the other sits idle.
    while started.elapsed() < Duration::from_millis(2500) {
        busy.cmd(&[b"PING"]);
        busy.expect("+PONG\r\n");
        std::thread::sleep(Duration::from_millis(200));
    }
    idle.s
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    assert!(idle.closed(), "idle client was not closed");
    busy.cmd(&[b"PING"]);
    busy.expect("+PONG\r\n");
}

/// A raw connection that got past `maxclients`, retrying while an earlier connection's slot
/// is still being released (closing is asynchronous on the server side).
fn admitted(s: &Server) -> Raw {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut r = s.raw();
        r.cmd(&[b"PING"]);
        let line = r.line();
        if line == "+PONG\r\n" {
            return r;
        }
        assert_eq!(line, "-ERR max number of clients reached\r\n");
        assert!(Instant::now() < deadline, "never admitted");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn maxclients_rejects_extra_connections() {
    let s = Server::start(&["--maxclients", "2"]);
    let mut a = admitted(&s);
    let _b = admitted(&s);
    let mut c = s.raw();
    c.expect("-ERR max number of clients reached\r\n");
    assert!(c.closed());
    // Once a slot frees up, a new client gets in.
    a.cmd(&[b"QUIT"]);
    a.expect("+OK\r\n");
    assert!(a.closed());
    admitted(&s);
}

#[test]
fn idle_clients_time_out_unless_the_cron_is_paused() {
    let srv = Server::start(&["--timeout", "1", "--enable-debug-command", "yes"]);
    let mut admin = srv.raw();
    admin.cmd(&[b"DEBUG", b"PAUSE-CRON", b"1"]);
    admin.expect("+OK\r\n");
    let mut idle = srv.raw();
    std::thread::sleep(Duration::from_millis(2500));
    // Past its timeout, but nothing checked while the cron stood still.
    idle.cmd(&[b"PING"]);
    idle.expect("+PONG\r\n");
    admin.cmd(&[b"DEBUG", b"PAUSE-CRON", b"0"]);
    admin.expect("+OK\r\n");
    // Running again, the cron closes it once it has been idle a second.
    assert!(idle.closed());
}
