//! End-to-end tests of the bitmap commands: SETBIT/GETBIT, BITCOUNT, BITPOS, BITOP and
//! BITFIELD, with Redis's exact replies and error lines.

mod common;

use common::{err_line, Server};
use redis::{cmd, Connection, RedisResult, Value};

fn q(con: &mut Connection, args: &[&[u8]]) -> RedisResult<Value> {
    let mut c = cmd(std::str::from_utf8(args[0]).unwrap());
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(con)
}

fn i(con: &mut Connection, args: &[&[u8]]) -> i64 {
    let mut c = cmd(std::str::from_utf8(args[0]).unwrap());
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(con).expect("command failed")
}

fn bytes(con: &mut Connection, key: &str) -> Option<Vec<u8>> {
    cmd("GET").arg(key).query(con).unwrap()
}

const BAD_OFFSET: &str = "ERR bit offset is not an integer or out of range";
const BAD_TYPE: &str =
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";

#[test]
fn setbit_getbit() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    assert_eq!(i(&mut c, &[b"SETBIT", b"b", b"7", b"1"]), 0);
    assert_eq!(i(&mut c, &[b"SETBIT", b"b", b"7", b"1"]), 1);
    assert_eq!(bytes(&mut c, "b"), Some(vec![0x01]));
    assert_eq!(i(&mut c, &[b"SETBIT", b"b", b"16", b"1"]), 0);
    assert_eq!(bytes(&mut c, "b"), Some(vec![0x01, 0x00, 0x80]));
    assert_eq!(i(&mut c, &[b"SETBIT", b"b", b"7", b"0"]), 1);
    assert_eq!(i(&mut c, &[b"GETBIT", b"b", b"16"]), 1);
    assert_eq!(i(&mut c, &[b"GETBIT", b"b", b"7"]), 0);
    assert_eq!(i(&mut c, &[b"GETBIT", b"b", b"1000000"]), 0);
    assert_eq!(i(&mut c, &[b"GETBIT", b"missing", b"3"]), 0);
    for off in [&b"-1"[..], b"4294967296", b"abc", b"#1"] {
        assert_eq!(
            err_line(q(&mut c, &[b"SETBIT", b"b", off, b"1"])),
            BAD_OFFSET
        );
        assert_eq!(err_line(q(&mut c, &[b"GETBIT", b"b", off])), BAD_OFFSET);
    }
    for v in [&b"-1"[..], b"2", b"10", b"x"] {
        assert_eq!(
            err_line(q(&mut c, &[b"SETBIT", b"b", b"1", v])),
            "ERR bit is not an integer or out of range"
        );
    }
    // The largest offset proto-max-bulk-len allows (512MB) is accepted by GETBIT.
    assert_eq!(i(&mut c, &[b"GETBIT", b"b", b"4294967295"]), 0);
    // SETBIT on an integer-looking string edits its bytes.
    q(&mut c, &[b"SET", b"n", b"1"]).unwrap();
    assert_eq!(i(&mut c, &[b"SETBIT", b"n", b"6", b"1"]), 0);
    assert_eq!(bytes(&mut c, "n"), Some(b"3".to_vec()));
    assert_eq!(i(&mut c, &[b"GETBIT", b"n", b"2"]), 1);
}

#[test]
fn bitcount_ranges() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    q(&mut c, &[b"SET", b"s", b"foobar"]).unwrap();
    assert_eq!(i(&mut c, &[b"BITCOUNT", b"s"]), 26);
    assert_eq!(i(&mut c, &[b"BITCOUNT", b"s", b"0", b"0"]), 4);
    assert_eq!(i(&mut c, &[b"BITCOUNT", b"s", b"1", b"1"]), 6);
    assert_eq!(i(&mut c, &[b"BITCOUNT", b"s", b"1", b"1", b"BYTE"]), 6);
    assert_eq!(i(&mut c, &[b"BITCOUNT", b"s", b"5", b"30", b"BIT"]), 17);
    assert_eq!(i(&mut c, &[b"BITCOUNT", b"s", b"-2", b"-1", b"bit"]), 1);
    assert_eq!(i(&mut c, &[b"BITCOUNT", b"s", b"-1", b"-2"]), 0);
    assert_eq!(i(&mut c, &[b"BITCOUNT", b"s", b"0", b"4294967296"]), 26);
    assert_eq!(i(&mut c, &[b"BITCOUNT", b"missing", b"0"]), 0);
    assert_eq!(
        err_line(q(&mut c, &[b"BITCOUNT", b"s", b"0"])),
        "ERR syntax error"
    );
    assert_eq!(
        err_line(q(&mut c, &[b"BITCOUNT", b"s", b"0", b"1", b"hello"])),
        "ERR syntax error"
    );
    assert_eq!(
        err_line(q(&mut c, &[b"BITCOUNT", b"s", b"a", b"1"])),
        "ERR value is not an integer or out of range"
    );
}

#[test]
fn bitpos() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    q(&mut c, &[b"SET", b"p", b"\xff\xf0\x00"]).unwrap();
    assert_eq!(i(&mut c, &[b"BITPOS", b"p", b"0"]), 12);
    assert_eq!(i(&mut c, &[b"BITPOS", b"p", b"1"]), 0);
    assert_eq!(i(&mut c, &[b"BITPOS", b"p", b"1", b"2"]), -1);
    assert_eq!(i(&mut c, &[b"BITPOS", b"p", b"1", b"7", b"15", b"BIT"]), 7);
    assert_eq!(i(&mut c, &[b"BITPOS", b"p", b"0", b"7", b"15", b"BIT"]), 12);
    assert_eq!(i(&mut c, &[b"BITPOS", b"p", b"0", b"0", b"0"]), -1);
    q(&mut c, &[b"SET", b"ones", b"\xff\xff"]).unwrap();
    // Without an explicit end, the string is followed by zeros.
    assert_eq!(i(&mut c, &[b"BITPOS", b"ones", b"0"]), 16);
    assert_eq!(i(&mut c, &[b"BITPOS", b"ones", b"0", b"0"]), 16);
    assert_eq!(i(&mut c, &[b"BITPOS", b"ones", b"0", b"0", b"-1"]), -1);
    assert_eq!(i(&mut c, &[b"BITPOS", b"missing", b"0"]), 0);
    assert_eq!(i(&mut c, &[b"BITPOS", b"missing", b"1"]), -1);
    assert_eq!(
        err_line(q(&mut c, &[b"BITPOS", b"p", b"2"])),
        "ERR The bit argument must be 1 or 0."
    );
    assert_eq!(
        err_line(q(&mut c, &[b"BITPOS", b"p", b"0", b"1", b"2", b"BITS"])),
        "ERR syntax error"
    );
    assert_eq!(
        err_line(q(
            &mut c,
            &[b"BITPOS", b"p", b"0", b"1", b"2", b"BIT", b"x"]
        )),
        "ERR syntax error"
    );
}

#[test]
fn bitop() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    q(&mut c, &[b"SET", b"a", b"\x0f\xf0\xaa"]).unwrap();
    q(&mut c, &[b"SET", b"b", b"\xff\x0f"]).unwrap();
    assert_eq!(i(&mut c, &[b"BITOP", b"AND", b"d", b"a", b"b"]), 3);
    assert_eq!(bytes(&mut c, "d"), Some(vec![0x0f, 0x00, 0x00]));
    assert_eq!(i(&mut c, &[b"BITOP", b"or", b"d", b"a", b"b"]), 3);
    assert_eq!(bytes(&mut c, "d"), Some(vec![0xff, 0xff, 0xaa]));
    assert_eq!(i(&mut c, &[b"BITOP", b"XOR", b"d", b"b", b"a"]), 3);
    assert_eq!(bytes(&mut c, "d"), Some(vec![0xf0, 0xff, 0xaa]));
    assert_eq!(
        i(&mut c, &[b"BITOP", b"XOR", b"d", b"missing", b"a", b"a"]),
        3
    );
    assert_eq!(bytes(&mut c, "d"), Some(vec![0, 0, 0]));
    assert_eq!(i(&mut c, &[b"BITOP", b"AND", b"d", b"missing", b"a"]), 3);
    assert_eq!(bytes(&mut c, "d"), Some(vec![0, 0, 0]));
    assert_eq!(i(&mut c, &[b"BITOP", b"NOT", b"d", b"b"]), 2);
    assert_eq!(bytes(&mut c, "d"), Some(vec![0x00, 0xf0]));
    // An empty result deletes the destination.
    assert_eq!(i(&mut c, &[b"BITOP", b"OR", b"d", b"missing"]), 0);
    assert_eq!(i(&mut c, &[b"EXISTS", b"d"]), 0);
    assert_eq!(
        err_line(q(&mut c, &[b"BITOP", b"NOT", b"d", b"a", b"b"])),
        "ERR BITOP NOT must be called with a single source key."
    );
    assert_eq!(
        err_line(q(&mut c, &[b"BITOP", b"NAND", b"d", b"a"])),
        "ERR syntax error"
    );
}

#[test]
fn bitfield() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    let v: Vec<Option<i64>> = cmd("BITFIELD")
        .arg(&[
            "bf", "SET", "i8", "0", "100", "GET", "i8", "0", "INCRBY", "i8", "0", "100",
        ])
        .arg(&["OVERFLOW", "SAT", "INCRBY", "i8", "0", "100"])
        .arg(&["OVERFLOW", "FAIL", "INCRBY", "i8", "0", "100"])
        .query(&mut c)
        .unwrap();
    assert_eq!(v, vec![Some(0), Some(100), Some(-56), Some(44), None]);
    let v: Vec<Option<i64>> = cmd("BITFIELD")
        .arg(&[
            "bf", "SET", "u8", "#1", "-1", "GET", "u8", "#1", "INCRBY", "u4", "#3", "20",
        ])
        .arg(&[
            "SET", "i64", "8", "-1", "GET", "i64", "8", "GET", "u63", "8",
        ])
        .query(&mut c)
        .unwrap();
    assert_eq!(
        v,
        vec![
            Some(0),
            Some(255),
            Some(3),
            Some(-936748722493063168),
            Some(-1),
            Some(i64::MAX)
        ]
    );
    let v: Vec<Option<i64>> = cmd("BITFIELD")
        .arg(&[
            "bf", "OVERFLOW", "FAIL", "SET", "u8", "0", "256", "INCRBY", "u2", "100", "1",
        ])
        .arg(&[
            "OVERFLOW",
            "SAT",
            "INCRBY",
            "i64",
            "0",
            "-9223372036854775808",
        ])
        .arg(&["INCRBY", "i64", "0", "-9223372036854775808"])
        .query(&mut c)
        .unwrap();
    assert_eq!(
        v,
        vec![None, Some(1), Some(-5980780305148018689), Some(i64::MIN)]
    );
    let v: Vec<i64> = cmd("BITFIELD_RO")
        .arg(&["bf", "GET", "i8", "0", "GET", "u16", "4"])
        .query(&mut c)
        .unwrap();
    assert_eq!(v, vec![-128, 0]);
    let v: Vec<i64> = cmd("BITFIELD_RO")
        .arg(&["missing", "GET", "u8", "0"])
        .query(&mut c)
        .unwrap();
    assert_eq!(v, vec![0]);
    assert_eq!(
        q(&mut c, &[b"BITFIELD", b"bf"]).unwrap(),
        Value::Array(vec![])
    );
    assert_eq!(
        err_line(q(
            &mut c,
            &[b"BITFIELD_RO", b"bf", b"SET", b"i8", b"0", b"1"]
        )),
        "ERR BITFIELD_RO only supports the GET subcommand"
    );
    for ty in [&b"u64"[..], b"i65", b"i0", b"x8", b"I8", b"i"] {
        assert_eq!(
            err_line(q(&mut c, &[b"BITFIELD", b"bf", b"GET", ty, b"0"])),
            BAD_TYPE
        );
    }
    for off in [&b"-1"[..], b"#-1", b"4294967296", b"x"] {
        assert_eq!(
            err_line(q(&mut c, &[b"BITFIELD", b"bf", b"GET", b"i8", off])),
            BAD_OFFSET
        );
    }
    assert_eq!(
        err_line(q(&mut c, &[b"BITFIELD", b"bf", b"OVERFLOW", b"foo"])),
        "ERR Invalid OVERFLOW type specified"
    );
    assert_eq!(
        err_line(q(&mut c, &[b"BITFIELD", b"bf", b"GET", b"i8"])),
        "ERR syntax error"
    );
    assert_eq!(
        err_line(q(&mut c, &[b"BITFIELD", b"bf", b"SET", b"i8", b"0", b"x"])),
        "ERR value is not an integer or out of range"
    );
    // Nothing was written by the failed commands.
    let v: Vec<i64> = cmd("BITFIELD_RO")
        .arg(&["bf", "GET", "i8", "0"])
        .query(&mut c)
        .unwrap();
    assert_eq!(v, vec![-128]);
}

#[test]
fn wrong_type_and_key_specs() {
    let srv = Server::start(&[]);
    let mut c = srv.client();
    let has_coll = q(&mut c, &[b"RPUSH", b"l", b"a"]).is_ok();
    if has_coll {
        let wt = "WRONGTYPE Operation against a key holding the wrong kind of value";
        assert_eq!(err_line(q(&mut c, &[b"SETBIT", b"l", b"0", b"1"])), wt);
        assert_eq!(err_line(q(&mut c, &[b"GETBIT", b"l", b"0"])), wt);
        assert_eq!(err_line(q(&mut c, &[b"BITCOUNT", b"l"])), wt);
        assert_eq!(err_line(q(&mut c, &[b"BITOP", b"OR", b"d", b"l"])), wt);
        assert_eq!(
            err_line(q(&mut c, &[b"BITFIELD", b"l", b"GET", b"u8", b"0"])),
            wt
        );
    }
    // Key positions as COMMAND GETKEYS reports them, when COMMAND exists.
    if let Ok(keys) = cmd("COMMAND")
        .arg(&["GETKEYS", "BITOP", "AND", "d", "s1", "s2"])
        .query::<Vec<String>>(&mut c)
    {
        assert_eq!(keys, vec!["d", "s1", "s2"]);
    }
}
