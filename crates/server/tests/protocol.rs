//! The wire protocol end to end, against the real binary: deep pipelines, commands split
//! across writes, big values, every kind of malformed request (each must get Redis 7.0's
//! exact error, close only its own connection and leave everyone else's data alone), the
//! pre-authentication limits, RESP3 framing and `client-query-buffer-limit`.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::time::Duration;

use common::{Raw, Server};

/// True once the server has closed the connection: an orderly EOF, or a reset (the server
/// closes with our unread bytes still queued, which makes the kernel answer with RST).
/// False if the connection is still open when the read timeout expires.
fn gone(r: &mut Raw) -> bool {
    let mut b = [0u8; 4096];
    loop {
        match r.s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                return matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                )
            }
        }
    }
}

/// Writes `bytes`, ignoring failure: the server may close the connection (and reset it)
/// before a large malformed request has been fully written.
fn send_lossy(r: &mut Raw, bytes: &[u8]) {
    let _ = r.s.write_all(bytes);
}

/// A connection whose data must survive whatever other clients send.
struct Bystander {
    con: redis::Connection,
}

impl Bystander {
    /// Connects and stores a value to watch.
    fn new(srv: &Server) -> Bystander {
        let mut con = srv.client();
        redis::cmd("SET")
            .arg("bystander")
            .arg("intact")
            .query::<()>(&mut con)
            .unwrap();
        Bystander { con }
    }

    /// Asserts this connection still works and its value is unchanged.
    fn check(&mut self) {
        let v: String = redis::cmd("GET")
            .arg("bystander")
            .query(&mut self.con)
            .unwrap();
        assert_eq!(v, "intact");
    }
}

/// Sends `input` on a fresh connection, expects exactly `reply`, then the close; checks the
/// server survived with the bystander's data intact.
fn rejects(srv: &mut Server, by: &mut Bystander, input: &[u8], reply: &str) {
    let mut r = srv.raw();
    send_lossy(&mut r, input);
    r.expect(reply);
    assert!(gone(&mut r), "connection should close after {reply:?}");
    assert!(srv.alive());
    by.check();
}

/// Sends `input` then PING on a fresh connection: the input is skipped silently.
fn ignored(srv: &Server, input: &[u8]) {
    let mut r = srv.raw();
    r.send(input);
    r.send(b"PING\r\n");
    r.expect("+PONG\r\n");
}

/// `n` SET commands as one multibulk stream.
fn set_stream(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 40);
    for i in 0..n {
        let k = format!("k:{i}");
        let v = format!("v{i}");
        out.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n${}\r\n{v}\r\n",
                k.len(),
                v.len()
            )
            .as_bytes(),
        );
    }
    out
}

#[test]
fn pipeline_of_100k_sets_in_one_write() {
    const N: usize = 100_000;
    let srv = Server::start(&[]);
    let mut r = srv.raw();
    r.s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let stream = set_stream(N);
    // Write from another thread so neither side can stall on a full socket buffer while
    // the replies pile up unread.
    let mut w = r.s.try_clone().unwrap();
    let writer = std::thread::spawn(move || w.write_all(&stream));
    let replies = r.read_n(N * 5);
    writer
        .join()
        .unwrap()
        .expect("one write of the whole pipeline");
    assert!(
        replies.chunks(5).all(|c| c == b"+OK\r\n"),
        "every reply is +OK"
    );
    let mut con = srv.client();
    let n: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(n, N as i64);
    for i in [0, 1, 4_999, 77_777, N - 1] {
        let v: String = redis::cmd("GET")
            .arg(format!("k:{i}"))
            .query(&mut con)
            .unwrap();
        assert_eq!(v, format!("v{i}"));
    }
}

#[test]
fn mixed_inline_and_multibulk_pipeline() {
    let srv = Server::start(&[]);
    let mut r = srv.raw();
    r.send(
        b"SET a 1\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\nINCR a\n*1\r\n$4\r\nPING\r\n\
          GET a\r\n*3\r\n$6\r\nINCRBY\r\n$1\r\na\r\n$2\r\n10\r\n  get   \"a\"  \r\n",
    );
    r.expect("+OK\r\n$1\r\n1\r\n:2\r\n+PONG\r\n$1\r\n2\r\n:12\r\n$2\r\n12\r\n");
}

#[test]
fn command_split_byte_by_byte() {
    let srv = Server::start(&[]);
    let mut r = srv.raw();
    r.s.set_nodelay(true).unwrap();
    // A binary value holding CR LF, then an inline command, each byte its own write.
    let input: &[u8] =
        b"*3\r\n$3\r\nSET\r\n$5\r\nsplit\r\n$6\r\na\r\nb\0c\r\n*2\r\n$3\r\nGET\r\n$5\r\nsplit\r\nECHO hi\r\n";
    for (i, b) in input.iter().enumerate() {
        r.send(std::slice::from_ref(b));
        // Pausing now and then makes sure the server sees many partial reads.
        if i % 8 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    r.expect("+OK\r\n$6\r\na\r\nb\0c\r\n$2\r\nhi\r\n");
}

#[test]
fn ten_megabyte_value_round_trip() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    let value: Vec<u8> = (0..10 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    redis::cmd("SET")
        .arg("big")
        .arg(&value)
        .query::<()>(&mut con)
        .unwrap();
    let got: Vec<u8> = redis::cmd("GET").arg("big").query(&mut con).unwrap();
    assert_eq!(got.len(), value.len());
    assert!(got == value, "10 MB value came back changed");
    let len: i64 = redis::cmd("STRLEN").arg("big").query(&mut con).unwrap();
    assert_eq!(len, 10 * 1024 * 1024);
}

#[test]
fn proto_max_bulk_len_rejects_bigger_bulks() {
    let mut srv = Server::start(&["--proto-max-bulk-len", "2mb"]);
    let mut by = Bystander::new(&srv);
    // Exactly the limit is accepted.
    let value = vec![b'x'; 2 * 1024 * 1024];
    redis::cmd("SET")
        .arg("at-limit")
        .arg(&value)
        .query::<()>(&mut by.con)
        .unwrap();
    // One byte over is refused from the header alone, before any payload is sent.
    rejects(
        &mut srv,
        &mut by,
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2097153\r\n",
        "-ERR Protocol error: invalid bulk length\r\n",
    );
    let mut r = srv.raw();
    r.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3145728\r\n");
    send_lossy(&mut r, &vec![b'y'; 64 * 1024]);
    r.expect("-ERR Protocol error: invalid bulk length\r\n");
    assert!(gone(&mut r));
    let n: i64 = redis::cmd("EXISTS").arg("k").query(&mut by.con).unwrap();
    assert_eq!(n, 0);
    let len: i64 = redis::cmd("STRLEN")
        .arg("at-limit")
        .query(&mut by.con)
        .unwrap();
    assert_eq!(len, 2 * 1024 * 1024);
    by.check();
}

#[test]
fn malformed_requests_close_only_their_connection() {
    let mut srv = Server::start(&[]);
    let mut by = Bystander::new(&srv);
    let cases: &[(&[u8], &str)] = &[
        (
            b"*abc\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\n$1099511627776\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*3000000000\r\n",
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\nfoo\r\n",
            "-ERR Protocol error: expected '$', got 'f'\r\n",
        ),
        (
            b"*1\r\n$-1\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*2\r\n$3\r\nGET\r\n$x\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"set a \"b\r\n",
            "-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
        (
            b"set \"a\"b c\r\n",
            "-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
    ];
    for (input, reply) in cases {
        rejects(&mut srv, &mut by, input, reply);
    }
    // The commands before a bad one in the same pipeline still run and answer.
    rejects(
        &mut srv,
        &mut by,
        b"SET before ok\r\n*x\r\nSET after ok\r\n",
        "+OK\r\n-ERR Protocol error: invalid multibulk length\r\n",
    );
    let before: Option<String> = redis::cmd("GET").arg("before").query(&mut by.con).unwrap();
    let after: Option<String> = redis::cmd("GET").arg("after").query(&mut by.con).unwrap();
    assert_eq!(before.as_deref(), Some("ok"));
    assert_eq!(after, None, "nothing after a protocol error runs");
}

#[test]
fn oversized_lines_without_terminator() {
    let mut srv = Server::start(&[]);
    let mut by = Bystander::new(&srv);
    rejects(
        &mut srv,
        &mut by,
        &vec![b'a'; 70 * 1024],
        "-ERR Protocol error: too big inline request\r\n",
    );
    let mut bulk_count = b"*1\r\n$".to_vec();
    bulk_count.extend(std::iter::repeat_n(b'1', 70 * 1024));
    rejects(
        &mut srv,
        &mut by,
        &bulk_count,
        "-ERR Protocol error: too big bulk count string\r\n",
    );
    let mut mbulk_count = b"*".to_vec();
    mbulk_count.extend(std::iter::repeat_n(b'1', 70 * 1024));
    rejects(
        &mut srv,
        &mut by,
        &mbulk_count,
        "-ERR Protocol error: too big mbulk count string\r\n",
    );
}

#[test]
fn unterminated_multibulk_then_disconnect() {
    let mut srv = Server::start(&[]);
    let mut by = Bystander::new(&srv);
    for input in [
        &b"*2\r\n$3\r\nGET\r\n"[..],
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\npartial",
        b"*2\r\n$3",
        b"GET bystan",
    ] {
        let mut r = srv.raw();
        r.send(input);
        r.s.shutdown(Shutdown::Write).unwrap();
        assert!(gone(&mut r), "server closes after the peer's EOF");
        drop(r);
    }
    assert!(srv.alive());
    by.check();
    let n: i64 = redis::cmd("EXISTS").arg("k").query(&mut by.con).unwrap();
    assert_eq!(n, 0);
    ignored(&srv, b"");
}

#[test]
fn empty_requests_are_skipped() {
    let srv = Server::start(&[]);
    ignored(&srv, b"*-10\r\n");
    ignored(&srv, b"*0\r\n");
    ignored(&srv, b"*-1\r\n");
    ignored(&srv, b"\r\n");
    ignored(&srv, b"\n");
    ignored(&srv, b"   \t  \r\n");
    ignored(&srv, b"\r\n\r\n\n*0\r\n\r\n");
    // Redis skips the two bytes after a bulk's payload without looking at them.
    let mut r = srv.raw();
    r.send(b"*1\r\n$4\r\nPINGxx\r\nPING\r\n");
    r.expect("+PONG\r\n+PONG\r\n");
}

#[test]
fn unauthenticated_protocol_limits() {
    // The password is set at run time: connections made afterwards start unauthenticated.
    // (`--requirepass` is exercised by `noauth_before_auth`.)
    let mut srv = Server::start(&[]);
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("secret")
        .query::<()>(&mut srv.client())
        .unwrap();
    let mut r = srv.raw();
    r.send(b"*11\r\n");
    r.expect("-ERR Protocol error: unauthenticated multibulk length\r\n");
    assert!(gone(&mut r));

    let mut r = srv.raw();
    r.send(b"*1\r\n$16385\r\n");
    r.expect("-ERR Protocol error: unauthenticated bulk length\r\n");
    assert!(gone(&mut r));

    // At the limits themselves nothing is refused by the parser.
    let mut r = srv.raw();
    let mut ten = b"*10\r\n$4\r\nAUTH\r\n".to_vec();
    for _ in 0..9 {
        ten.extend_from_slice(b"$1\r\nx\r\n");
    }
    r.send(&ten);
    r.expect("-ERR syntax error\r\n");
    r.send(b"AUTH secret\r\n");
    r.expect("+OK\r\n");

    // Once authenticated, the normal limits apply on the same connection.
    let mut mset = b"*21\r\n$4\r\nMSET\r\n".to_vec();
    for i in 0..10 {
        mset.extend_from_slice(format!("$2\r\nk{i}\r\n$2\r\nv{i}\r\n").as_bytes());
    }
    r.send(&mset);
    r.expect("+OK\r\n");
    let big = vec![b'z'; 100_000];
    r.cmd(&[b"SET", b"big", &big]);
    r.expect("+OK\r\n");
    r.send(b"STRLEN big\r\nGET k9\r\n");
    r.expect(":100000\r\n$2\r\nv9\r\n");
    assert!(srv.alive());
}

#[test]
fn noauth_before_auth() {
    let srv = Server::start(&["--requirepass", "secret"]);
    let mut r = srv.raw();
    r.send(b"GET a\r\n");
    r.expect("-NOAUTH Authentication required.\r\n");
    r.send(b"PING\r\n");
    r.expect("-NOAUTH Authentication required.\r\n");
    // A bulk right at the pre-auth limit is parsed; the command is then refused.
    let arg = vec![b'a'; 16 * 1024];
    r.cmd(&[b"SET", b"k", &arg]);
    r.expect("-NOAUTH Authentication required.\r\n");
    // Lookup and arity errors come first, as in Redis 7.0.
    r.send(b"NOSUCHCMD\r\nGET\r\n");
    r.expect(
        "-ERR unknown command 'NOSUCHCMD', with args beginning with: \r\n\
         -ERR wrong number of arguments for 'get' command\r\n",
    );
    r.send(b"AUTH wrong\r\n");
    r.expect("-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    r.send(b"AUTH secret\r\nSET a 1\r\nGET a\r\nPING\r\nEXISTS k\r\n");
    r.expect("+OK\r\n+OK\r\n$1\r\n1\r\n+PONG\r\n:0\r\n");
}

#[test]
fn http_requests_are_dropped() {
    let mut srv = Server::start(&[]);
    let mut by = Bystander::new(&srv);
    // What a browser tricked into posting to the port sends: no reply at all, just a close.
    let mut r = srv.raw();
    r.send(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 9\r\n\r\nFLUSHALL\n");
    let mut b = [0u8; 64];
    let n = r.s.read(&mut b).unwrap_or(0);
    assert_eq!(&b[..n], b"", "no reply to an HTTP request");
    assert!(gone(&mut r));
    // "Host:" anywhere in a pipeline stops it: nothing after it runs.
    let mut r = srv.raw();
    r.send(b"SET a 1\r\nhost: x\r\nSET b 2\r\n");
    assert!(gone(&mut r));
    let b: Option<String> = redis::cmd("GET").arg("b").query(&mut by.con).unwrap();
    assert_eq!(b, None);
    assert!(srv.alive());
    by.check();
}

#[test]
fn resp3_framing() {
    let srv = Server::start(&[]);
    let mut r = srv.raw();
    r.send(b"GET nokey\r\n");
    r.expect("$-1\r\n");
    r.send(b"HELLO 3\r\n");
    r.expect("%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n");
    let vlen = r.line();
    assert!(vlen.starts_with('$'), "version is a bulk: {vlen:?}");
    let version = r.line();
    assert!(version.starts_with("7."), "Redis 7 version: {version:?}");
    r.expect("$5\r\nproto\r\n:3\r\n$2\r\nid\r\n");
    let id = r.line();
    assert!(
        id.starts_with(':') && id[1..id.len() - 2].parse::<u64>().is_ok(),
        "id is an integer: {id:?}"
    );
    r.expect(
        "$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n\
         $7\r\nmodules\r\n*0\r\n",
    );
    r.send(b"GET nokey\r\nSET a 1\r\nGET a\r\nINCR a\r\n");
    r.expect("_\r\n+OK\r\n$1\r\n1\r\n:2\r\n");
    r.send(b"HELLO 2\r\n");
    r.expect("*14\r\n");
    // Skip the 14 fields (flat bulks and integers, one modules array last).
    for _ in 0..13 {
        let head = r.line();
        if head.starts_with('$') {
            r.line();
        }
    }
    r.expect("*0\r\n");
    r.send(b"GET nokey\r\n");
    r.expect("$-1\r\n");
    r.send(b"HELLO 4\r\n");
    r.expect("-NOPROTO unsupported protocol version\r\n");
}

#[test]
fn client_query_buffer_limit_closes_the_connection() {
    let mut srv = Server::start(&["--client-query-buffer-limit", "1mb"]);
    let mut by = Bystander::new(&srv);
    let mut r = srv.raw();
    // Announce a 2 MB argument and send 1.5 MB of it: more than the 1 MB the query buffer
    // may hold, never completed.
    r.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2097152\r\n");
    send_lossy(&mut r, &vec![b'a'; 1536 * 1024]);
    assert!(gone(&mut r), "server closes an over-limit query buffer");
    assert!(srv.alive());
    by.check();
    let n: i64 = redis::cmd("EXISTS").arg("k").query(&mut by.con).unwrap();
    assert_eq!(n, 0);
    // Commands within the limit are fine.
    let value = vec![b'b'; 512 * 1024];
    redis::cmd("SET")
        .arg("k")
        .arg(&value)
        .query::<()>(&mut by.con)
        .unwrap();
    let got: Vec<u8> = redis::cmd("GET").arg("k").query(&mut by.con).unwrap();
    assert!(got == value);
}
