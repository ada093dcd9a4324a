//! Lua scripting and functions end to end: the jobs applications give scripts (locks with
//! owner-checked release, rate limiters, read-modify-write), Redis's conversion rules both
//! ways, error lines byte for byte, the sandbox, the script cache, functions, BUSY and
//! SCRIPT KILL, and atomicity across worker threads.

mod common;

use std::time::{Duration, Instant};

use common::{err_line, int, ok, q, Server};
use redis::Value;

/// Sends one command on a raw connection and reads one reply line.
fn raw_line(r: &mut common::Raw, args: &[&str]) -> String {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    r.cmd(&args);
    r.line()
}

#[test]
fn lock_with_owner_checked_release() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    let release = redis::Script::new(
        "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end",
    );
    let got: bool = redis::cmd("SET")
        .arg("lock")
        .arg("owner-a")
        .arg("NX")
        .arg("PX")
        .arg(10_000)
        .query(&mut con)
        .unwrap();
    assert!(got);
    // Another owner can't release it; the owner can, once.
    let n: i64 = release.key("lock").arg("owner-b").invoke(&mut con).unwrap();
    assert_eq!(n, 0);
    let n: i64 = release.key("lock").arg("owner-a").invoke(&mut con).unwrap();
    assert_eq!(n, 1);
    let n: i64 = release.key("lock").arg("owner-a").invoke(&mut con).unwrap();
    assert_eq!(n, 0);
}

#[test]
fn lock_race_has_one_owner_at_a_time() {
    let srv = Server::start(&["--threads", "2"]);
    let holders = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let mut con = srv.client();
            let holders = holders.clone();
            std::thread::spawn(move || {
                let release = redis::Script::new(
                    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end",
                );
                let me = format!("owner-{i}");
                let mut acquired = 0;
                for _ in 0..200 {
                    let got: Option<String> = redis::cmd("SET")
                        .arg("race-lock")
                        .arg(&me)
                        .arg("NX")
                        .arg("PX")
                        .arg(5000)
                        .query(&mut con)
                        .unwrap();
                    if got.is_some() {
                        assert_eq!(holders.fetch_add(1, std::sync::atomic::Ordering::SeqCst), 0);
                        acquired += 1;
                        holders.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                        let n: i64 = release.key("race-lock").arg(&me).invoke(&mut con).unwrap();
                        assert_eq!(n, 1);
                    }
                }
                acquired
            })
        })
        .collect();
    let total: i32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(total > 0);
}

#[test]
fn rate_limiter_admits_exactly_the_limit() {
    let srv = Server::start(&["--threads", "2"]);
    let limiter = "local n = redis.call('incr', KEYS[1]) \
                   if n == 1 then redis.call('pexpire', KEYS[1], ARGV[2]) end \
                   if n > tonumber(ARGV[1]) then return 0 end return 1";
    let handles: Vec<_> = (0..10)
        .map(|_| {
            let mut con = srv.client();
            std::thread::spawn(move || {
                let s = redis::Script::new(limiter);
                (0..20)
                    .map(|_| {
                        s.key("rl")
                            .arg(50)
                            .arg(60_000)
                            .invoke::<i64>(&mut con)
                            .unwrap()
                    })
                    .sum::<i64>()
            })
        })
        .collect();
    let admitted: i64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(admitted, 50);
}

#[test]
fn read_modify_write_never_loses_an_update() {
    let srv = Server::start(&["--threads", "2"]);
    let script = "local v = tonumber(redis.call('get', KEYS[1]) or '0') \
                  redis.call('set', KEYS[1], v + 1) return v + 1";
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let mut con = srv.client();
            std::thread::spawn(move || {
                let s = redis::Script::new(script);
                for _ in 0..200 {
                    let _: i64 = s.key("counter").invoke(&mut con).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut con = srv.client();
    let v: i64 = redis::cmd("GET").arg("counter").query(&mut con).unwrap();
    assert_eq!(v, 1200);
}

#[test]
fn keys_argv_and_conversions_resp2() {
    let srv = Server::start(&[]);
    let mut r = srv.raw();
    r.cmd(&[
        b"EVAL",
        b"return {KEYS[1],KEYS[2],ARGV[1],ARGV[2]}",
        b"2",
        b"a",
        b"b",
        b"c",
        b"d",
    ]);
    r.expect("*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n");
    for (script, reply) in [
        ("return 100.5", ":100\r\n"),
        ("return 'hello'", "$5\r\nhello\r\n"),
        ("return true", ":1\r\n"),
        ("return false", "$-1\r\n"),
        ("return nil", "$-1\r\n"),
        ("return {ok='fine'}", "+fine\r\n"),
        (
            "return {err='ERR this is an error'}",
            "-ERR this is an error\r\n",
        ),
        (
            "return {1,2,3,'ciao',{1,2}}",
            "*5\r\n:1\r\n:2\r\n:3\r\n$4\r\nciao\r\n*2\r\n:1\r\n:2\r\n",
        ),
        ("return {1,2,nil,4}", "*2\r\n:1\r\n:2\r\n"),
        ("return {double=1.5}", "$3\r\n1.5\r\n"),
        ("return redis.status_reply('PONG')", "+PONG\r\n"),
        ("return redis.error_reply('My Error')", "-My Error\r\n"),
        (
            "return redis.sha1hex('')",
            "$40\r\nda39a3ee5e6b4b0d3255bfef95601890afd80709\r\n",
        ),
    ] {
        r.cmd(&[b"EVAL", script.as_bytes(), b"0"]);
        r.expect(reply);
    }
    // Redis -> Lua: integers, bulks, nil bulk as false, status and error tables.
    r.cmd(&[b"SET", b"x", b"10"]);
    r.expect("+OK\r\n");
    for (script, reply) in [
        ("return type(redis.call('incr','x'))", "$6\r\nnumber\r\n"),
        ("return redis.call('get','nokey') == false", ":1\r\n"),
        ("return redis.call('set','y','1').ok", "$2\r\nOK\r\n"),
        (
            "return redis.pcall('hget','x','f').err",
            "$65\r\nWRONGTYPE Operation against a key holding the wrong kind of value\r\n",
        ),
        (
            "redis.call('select','1'); return redis.call('exists','x')",
            ":0\r\n",
        ),
        // Lua -> Redis arguments: numbers as %.17g prints them, as Redis converts them.
        // (Lua shares one constant for 0 and -0.0 in a chunk, so LRANGE gets strings.)
        (
            "redis.call('rpush','nums',1e17,3.0,0.1,-0.0,7) return redis.call('lrange','nums','0','-1')",
            "*5\r\n$5\r\n1e+17\r\n$1\r\n3\r\n$19\r\n0.10000000000000001\r\n$2\r\n-0\r\n$1\r\n7\r\n",
        ),
        // Thousands of arguments, as `unpack` spreads them.
        (
            "local t = {} for i = 1, 5000 do t[i] = i end return redis.call('sadd','many',unpack(t))",
            ":5000\r\n",
        ),
        (
            "return redis.pcall('set','k',{}).err",
            "$63\r\nERR Lua redis lib command arguments must be strings or integers\r\n",
        ),
        (
            "return redis.pcall().err",
            "$64\r\nERR Please specify at least one argument for this redis lib call\r\n",
        ),
    ] {
        r.cmd(&[b"EVAL", script.as_bytes(), b"0"]);
        r.expect(reply);
    }
    // SELECT inside the script did not change the caller's database.
    r.cmd(&[b"GET", b"x"]);
    r.expect("$2\r\n11\r\n");
}

#[test]
fn conversions_resp3() {
    let srv = Server::start(&[]);
    let mut r = srv.raw();
    r.hello3();
    r.cmd(&[b"HSET", b"h", b"f", b"v"]);
    r.expect(":1\r\n");
    for (script, reply) in [
        (
            "redis.setresp(3); return redis.call('hgetall','h')",
            "%1\r\n$1\r\nf\r\n$1\r\nv\r\n",
        ),
        (
            "return redis.call('hgetall','h')",
            "*2\r\n$1\r\nf\r\n$1\r\nv\r\n",
        ),
        (
            "redis.setresp(3); return redis.call('hgetall','h').map.f",
            "$1\r\nv\r\n",
        ),
        ("redis.setresp(3); return true", "#t\r\n"),
        ("redis.setresp(3); return false", "#f\r\n"),
        ("return true", ":1\r\n"),
        ("return nil", "_\r\n"),
        ("return {double=1.5}", ",1.5\r\n"),
        (
            "return {big_number='123456789012345678901234567890'}",
            "(123456789012345678901234567890\r\n",
        ),
        (
            "return {verbatim_string={format='txt', string='hi'}}",
            "=6\r\ntxt:hi\r\n",
        ),
        ("return {set={a=true}}", "~1\r\n$1\r\na\r\n"),
        (
            "redis.setresp(3); return redis.call('get','none') == nil",
            "#t\r\n",
        ),
    ] {
        r.cmd(&[b"EVAL", script.as_bytes(), b"0"]);
        r.expect(reply);
    }
}

#[test]
fn error_lines_match_redis() {
    let srv = Server::start(&[]);
    let mut r = srv.raw();
    let cases = [
        ("return a", "-ERR user_script:1: Script attempted to access nonexistent global variable 'a' script: bbfcd1ececc90deec823f7fb730e4bfb2a4ba625, on @user_script:1.\r\n"),
        ("a=1", "-ERR user_script:1: Attempt to modify a readonly table script: 86eda770a6060824b090dd4df091e3bd4121279c, on @user_script:1.\r\n"),
        ("error('x')", "-ERR user_script:1: x script: 9851144f39f03a0d597a980c5aa79c80cb696891, on @user_script:1.\r\n"),
        ("error({err='My Error'})", "-My Error script: e115b36aa4ca34249363168860134d6f8b667d30, on @user_script:1.\r\n"),
        ("return redis.call('nosuch')", "-ERR Unknown Redis command called from script script: 206396248e12c6e742fd7296250433c8d7343b74, on @user_script:1.\r\n"),
        ("return redis.call('get')", "-ERR Wrong number of args calling Redis command from script script: f187dee77f607f7cff00bbabc9df38507582c78d, on @user_script:1.\r\n"),
        ("return redis.pcall('nosuch')", "-ERR Unknown Redis command called from script\r\n"),
        ("return redis.call('blpop','x',0)", "-ERR This Redis command is not allowed from script script: dc8544b16dbbf6be3c0abd9cf77dabeba2686fd6, on @user_script:1.\r\n"),
        ("return 'x", "-ERR Error compiling script (new function): user_script:1: unfinished string near '<eof>'\r\n"),
        ("os.exit()", "-ERR user_script:1: Script attempted to access nonexistent global variable 'os' script: cfee573beed45589563480460931ee2e6ab1a8ab, on @user_script:1.\r\n"),
        ("string.x = 1", "-ERR user_script:1: Attempt to modify a readonly table script: c3eb0a2a15b3d4790b323c4104029c1ae425a769, on @user_script:1.\r\n"),
    ];
    for (script, line) in cases {
        r.cmd(&[b"EVAL", script.as_bytes(), b"0"]);
        assert_eq!(r.line(), line, "{script}");
    }
    assert_eq!(
        raw_line(&mut r, &["EVAL_RO", "return redis.call('set','x','y')", "1", "x"]),
        "-ERR Write commands are not allowed from read-only scripts. script: 71e6319f97b0fe8bdfa1c5df3ce4489946dda479, on @user_script:1.\r\n"
    );
    assert_eq!(
        raw_line(&mut r, &["EVAL", "return 1", "2", "a"]),
        "-ERR Number of keys can't be greater than number of args\r\n"
    );
    assert_eq!(
        raw_line(&mut r, &["EVAL", "return 1", "-1"]),
        "-ERR Number of keys can't be negative\r\n"
    );
    for trick in [
        "setmetatable(_G, {})",
        "local g = getmetatable(_G); g.__index = {}",
        "redis = function() return 1 end",
        "_G = {}",
        "redis.call = function() return 1 end",
        "cjson.encode = function() return 1 end",
        "cmsgpack.pack = function() return 1 end",
        "bit.lshift = function() return 1 end",
    ] {
        let line = raw_line(&mut r, &["EVAL", trick, "0"]);
        assert!(
            line.contains("Attempt to modify a readonly table"),
            "{trick}: {line}"
        );
    }
    for name in ["loadfile", "dofile", "print", "io", "require"] {
        let line = raw_line(&mut r, &["EVAL", &format!("{name}('x')"), "0"]);
        assert!(
            line.contains(&format!("nonexistent global variable '{name}'")),
            "{name}: {line}"
        );
    }
}

#[test]
fn script_cache_and_noscript() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg("return 1")
        .query(&mut con)
        .unwrap();
    assert_eq!(sha, "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
    assert_eq!(int(&mut con, &["EVALSHA", &sha.to_uppercase(), "0"]), 1);
    let exists: Vec<i64> = redis::cmd("SCRIPT")
        .arg("EXISTS")
        .arg(&sha)
        .arg("ffffffffffffffffffffffffffffffffffffffff")
        .query(&mut con)
        .unwrap();
    assert_eq!(exists, vec![1, 0]);
    assert_eq!(
        err_line(q(
            &mut con,
            &["EVALSHA", "ffffffffffffffffffffffffffffffffffffffff", "0"]
        )),
        "NOSCRIPT No matching script. Please use EVAL."
    );
    assert_eq!(
        err_line(q(&mut con, &["EVALSHA", "abc", "0"])),
        "NOSCRIPT No matching script. Please use EVAL."
    );
    assert_eq!(q(&mut con, &["SCRIPT", "FLUSH"]), Ok(Value::Okay));
    assert_eq!(
        err_line(q(&mut con, &["EVALSHA", &sha, "0"])),
        "NOSCRIPT No matching script. Please use EVAL."
    );
    // A script that fails to compile is not cached.
    let bad = "return 'x";
    let _ = q(&mut con, &["EVAL", bad, "0"]);
    let exists: Vec<i64> = redis::cmd("SCRIPT")
        .arg("EXISTS")
        .arg(sha1_of(&mut con, bad))
        .query(&mut con)
        .unwrap();
    assert_eq!(exists, vec![0]);
}

/// SHA1 of `text`, computed by the server itself.
fn sha1_of(con: &mut redis::Connection, text: &str) -> String {
    redis::cmd("EVAL")
        .arg("return redis.sha1hex(ARGV[1])")
        .arg(0)
        .arg(text)
        .query(con)
        .unwrap()
}

#[test]
fn libraries_cjson_cmsgpack_bit_struct() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    let s: String = redis::cmd("EVAL")
        .arg("return table.concat(cjson.decode('[0.0, -5e3, -1, 0.3e-3, 1023.2, 0e10]'), ' ')")
        .arg(0)
        .query(&mut con)
        .unwrap();
    assert_eq!(s, "0 -5000 -1 0.0003 1023.2 0");
    let s: String = redis::cmd("EVAL")
        .arg("return cjson.encode({1, 'a', {x=true}})")
        .arg(0)
        .query(&mut con)
        .unwrap();
    assert_eq!(s, r#"[1,"a",{"x":true}]"#);
    let hex = "local e = ARGV[1] == 'd' and cmsgpack.pack(0.1) or cmsgpack.pack(-1099511627776) \
               local h = '' for i = 1, #e do h = h .. string.format('%02x', string.byte(e, i)) end return h";
    let d: String = redis::cmd("EVAL")
        .arg(hex)
        .arg(0)
        .arg("d")
        .query(&mut con)
        .unwrap();
    assert_eq!(d, "cb3fb999999999999a");
    let i: String = redis::cmd("EVAL")
        .arg(hex)
        .arg(0)
        .arg("i")
        .query(&mut con)
        .unwrap();
    assert_eq!(i, "d3ffffff0000000000");
    assert_eq!(
        int(
            &mut con,
            &[
                "EVAL",
                "return bit.bor(1,2,4,8,16,32,64,128) + bit.bxor(1,2)",
                "0"
            ]
        ),
        258
    );
    assert_eq!(
        int(
            &mut con,
            &[
                "EVAL",
                "local a, b = struct.unpack('>I2', struct.pack('>I2', 513)) return a + b",
                "0"
            ]
        ),
        516
    );
    assert_eq!(
        int(
            &mut con,
            &[
                "EVAL",
                "return cmsgpack.unpack(cmsgpack.pack({1,2,3}))[3]",
                "0"
            ]
        ),
        3
    );
}

#[test]
fn functions_load_call_list_delete() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    let code = "#!lua name=mylib\n\
                redis.register_function('myset', function(keys, args) return redis.call('set', keys[1], args[1]) end)\n\
                redis.register_function{function_name='myget', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}, description='reads'}";
    let name: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(code)
        .query(&mut con)
        .unwrap();
    assert_eq!(name, "mylib");
    assert_eq!(
        err_line(q(&mut con, &["FUNCTION", "LOAD", code])),
        "ERR Library 'mylib' already exists"
    );
    assert_eq!(
        q(&mut con, &["FCALL", "myset", "1", "k", "v"]),
        Ok(Value::Okay)
    );
    assert_eq!(
        q(&mut con, &["FCALL_RO", "MYGET", "1", "k"]),
        Ok(Value::BulkString(b"v".to_vec()))
    );
    assert_eq!(
        err_line(q(&mut con, &["FCALL_RO", "myset", "1", "k", "v"])),
        "ERR Can not execute a script with write flag using *_ro command."
    );
    assert_eq!(
        err_line(q(&mut con, &["FCALL", "nosuch", "0"])),
        "ERR Function not found"
    );
    let mut r = srv.raw();
    assert_eq!(
        raw_line(&mut r, &["FUNCTION", "LOAD", "#!lua name=t1\nlocal a = b"]),
        "-ERR Error registering functions: ERR user_function:2: Script attempted to access nonexistent global variable 'b'\r\n"
    );
    assert_eq!(
        raw_line(&mut r, &["FUNCTION", "LOAD", "#!lua name=t1\nbad script"]),
        "-ERR Error compiling function: user_function:2: '=' expected near 'script'\r\n"
    );
    assert_eq!(
        raw_line(
            &mut r,
            &[
                "FUNCTION",
                "LOAD",
                "#!lua name=t1\nredis.register_function('f', function() return x end)"
            ]
        ),
        "$2\r\n"
    );
    r.line();
    assert_eq!(
        raw_line(&mut r, &["FCALL", "f", "0"]),
        "-ERR user_function:2: Script attempted to access nonexistent global variable 'x' script: f, on @user_function:2.\r\n"
    );
    r.cmd(&[b"FUNCTION", b"LIST", b"LIBRARYNAME", b"myl*"]);
    r.expect("*1\r\n*6\r\n$12\r\nlibrary_name\r\n$5\r\nmylib\r\n$6\r\nengine\r\n$3\r\nLUA\r\n$9\r\nfunctions\r\n*2\r\n");
    // DUMP / RESTORE round trip.
    let dump: Vec<u8> = redis::cmd("FUNCTION").arg("DUMP").query(&mut con).unwrap();
    assert_eq!(
        q(&mut con, &["FUNCTION", "DELETE", "mylib"]),
        Ok(Value::Okay)
    );
    assert_eq!(
        err_line(q(&mut con, &["FUNCTION", "DELETE", "mylib"])),
        "ERR Library not found"
    );
    assert_eq!(
        err_line(q(&mut con, &["FCALL", "myget", "1", "k"])),
        "ERR Function not found"
    );
    let restored: redis::RedisResult<Value> = redis::cmd("FUNCTION")
        .arg("RESTORE")
        .arg(&dump)
        .arg("REPLACE")
        .query(&mut con);
    assert_eq!(restored, Ok(Value::Okay));
    assert_eq!(
        q(&mut con, &["FCALL", "myget", "1", "k"]),
        Ok(Value::BulkString(b"v".to_vec()))
    );
    assert_eq!(q(&mut con, &["FUNCTION", "FLUSH"]), Ok(Value::Okay));
    let list: Vec<Value> = redis::cmd("FUNCTION").arg("LIST").query(&mut con).unwrap();
    assert!(list.is_empty());
    // The shebang is split like a command line: quotes are removed, unbalanced ones refused.
    let mut r = srv.raw();
    assert_eq!(
        raw_line(
            &mut r,
            &[
                "FUNCTION",
                "LOAD",
                "#!lua name=\"q\"\nredis.register_function('fq', function() return 1 end)"
            ]
        ),
        "$1\r\n"
    );
    assert_eq!(r.line(), "q\r\n");
    assert_eq!(
        raw_line(&mut r, &["FUNCTION", "LOAD", "#!lua name=\"q\nreturn 1"]),
        "-ERR Invalid library metadata\r\n"
    );
}

#[test]
fn busy_script_kill_and_function_kill() {
    let srv = Server::start(&["--threads", "2", "--busy-reply-threshold", "50"]);
    // Two connections opened one after the other land on different workers.
    let mut runner = srv.raw();
    let mut other = srv.raw();
    runner.cmd(&[b"EVAL", b"local i = 0 while true do i = i + 1 end", b"0"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let line = raw_line(&mut other, &["PING"]);
        if line.starts_with("-BUSY") {
            assert_eq!(
                line,
                "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n"
            );
            break;
        }
        assert!(Instant::now() < deadline, "never got BUSY");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        raw_line(&mut other, &["FUNCTION", "KILL"]),
        "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n"
    );
    assert_eq!(raw_line(&mut other, &["SCRIPT", "KILL"]), "+OK\r\n");
    let line = runner.line();
    assert!(
        line.starts_with("-ERR Script killed by user with SCRIPT KILL..."),
        "{line}"
    );
    assert_eq!(raw_line(&mut other, &["PING"]), "+PONG\r\n");
    assert_eq!(
        raw_line(&mut other, &["SCRIPT", "KILL"]),
        "-NOTBUSY No scripts in execution right now.\r\n"
    );
    // A script that wrote can't be killed; pcall can't swallow a kill either.
    runner.cmd(&[
        b"EVAL",
        b"redis.call('set','w','1') while true do end",
        b"0",
    ]);
    std::thread::sleep(Duration::from_millis(200));
    let line = raw_line(&mut other, &["SCRIPT", "KILL"]);
    assert!(
        line.starts_with("-UNKILLABLE Sorry the script already executed write commands"),
        "{line}"
    );
    // SHUTDOWN NOSAVE still works: the server exits.
    other.cmd(&[b"SHUTDOWN", b"NOSAVE"]);
    assert!(other.closed());
}

/// Waits until `other` gets BUSY for a PING.
fn wait_busy(other: &mut common::Raw) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !raw_line(other, &["PING"]).starts_with("-BUSY") {
        assert!(Instant::now() < deadline, "never got BUSY");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn busy_script_answers_clients_of_its_own_worker() {
    // One worker: every client shares the thread that runs the script.
    let srv = Server::start(&["--threads", "1", "--busy-reply-threshold", "20"]);
    let mut con = srv.client();
    common::ok(&mut con, &["SET", "xx", "1"]);
    let mut runner = srv.raw();
    let mut other = srv.raw();
    let mut watcher = srv.raw();
    let mut killer = srv.raw();
    // A transaction open before the script: a command refused with BUSY aborts it.
    other.cmd(&[b"MULTI"]);
    other.expect("+OK\r\n");
    other.cmd(&[b"INCR", b"xx"]);
    other.expect("+QUEUED\r\n");
    runner.cmd(&[b"EVAL", b"while true do end", b"0"]);
    wait_busy(&mut watcher);
    // MULTI is allowed while busy; what it would queue is refused and taints it.
    assert_eq!(
        raw_line(&mut other, &["INCR", "xx"]),
        "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n"
    );
    assert_eq!(
        raw_line(&mut other, &["EXEC"]),
        "-EXECABORT Transaction discarded because of: BUSY Redis is busy running a script. \
         You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n"
    );
    assert_eq!(raw_line(&mut other, &["MULTI"]), "+OK\r\n");
    assert!(raw_line(&mut other, &["GET", "xx"]).starts_with("-BUSY"));
    // WATCH locks its key: it waits for the script, and so does what follows it.
    watcher.cmd(&[b"WATCH", b"xx"]);
    watcher.cmd(&[b"PING"]);
    assert!(watcher.silent_for(Duration::from_millis(100)));
    assert_eq!(raw_line(&mut killer, &["SCRIPT", "KILL"]), "+OK\r\n");
    assert!(runner.line().starts_with("-ERR Script killed by user"));
    watcher.expect("+OK\r\n+PONG\r\n");
    assert_eq!(
        raw_line(&mut other, &["EXEC"]),
        "-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    other.cmd(&[b"PING", b"asdf"]);
    other.expect("$4\r\nasdf\r\n");
    assert_eq!(common::bulk(&mut con, &["GET", "xx"]).as_deref(), Some("1"));
    // A client that hangs up meanwhile is closed once the script is over.
    let mut gone = srv.raw();
    runner.cmd(&[b"EVAL", b"while true do end", b"0"]);
    wait_busy(&mut watcher);
    drop(std::mem::replace(&mut gone, srv.raw()));
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(raw_line(&mut killer, &["SCRIPT", "KILL"]), "+OK\r\n");
    assert!(runner.line().starts_with("-ERR Script killed by user"));
    // The old connection goes and the new one (accepted meanwhile) comes.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let list = common::bulk(&mut con, &["CLIENT", "LIST"]).unwrap();
        if list.lines().count() == 6 {
            break;
        }
        assert!(Instant::now() < deadline, "{list}");
        std::thread::sleep(Duration::from_millis(10));
    }
    runner.cmd(&[b"EVAL", b"while true do end", b"0"]);
    wait_busy(&mut watcher);
    // SHUTDOWN without NOSAVE can't save under the script; NOSAVE exits.
    let line = raw_line(&mut killer, &["SHUTDOWN", "SAVE"]);
    assert!(line.starts_with("-BUSY"), "{line}");
    killer.cmd(&[b"SHUTDOWN", b"NOSAVE"]);
    assert!(killer.closed());
}

#[test]
fn kill_is_not_swallowed_by_pcall() {
    let srv = Server::start(&["--threads", "2", "--busy-reply-threshold", "50"]);
    let mut runner = srv.raw();
    let mut other = srv.raw();
    runner.cmd(&[
        b"EVAL",
        b"while true do pcall(function() while true do end end) end",
        b"0",
    ]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(raw_line(&mut other, &["SCRIPT", "KILL"]), "+OK\r\n");
    assert!(runner.line().contains("Script killed by user"));
}

#[test]
fn eval_inside_multi() {
    let srv = Server::start(&[]);
    let mut r = srv.raw();
    r.cmd(&[b"MULTI"]);
    r.expect("+OK\r\n");
    r.cmd(&[b"EVAL", b"return redis.call('incr', KEYS[1])", b"1", b"n"]);
    r.expect("+QUEUED\r\n");
    r.cmd(&[b"EVAL", b"return redis.call('incr', 'other')", b"0"]);
    r.expect("+QUEUED\r\n");
    r.cmd(&[b"EXEC"]);
    r.expect("*2\r\n:1\r\n:1\r\n");
}

/// The `INFO commandstats` line of one command.
fn cmdstat(con: &mut redis::Connection, name: &str) -> String {
    let text: String = redis::cmd("INFO").arg("commandstats").query(con).unwrap();
    let prefix = format!("cmdstat_{name}:");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
        .unwrap_or_default()
}

#[test]
fn script_call_stats_count_rejections_and_failures() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    ok(&mut con, &["CONFIG", "SET", "maxmemory", "1"]);
    ok(&mut con, &["CONFIG", "RESETSTAT"]);
    // A write refused for OOM inside a script is a rejected SET, and a failed EVAL.
    let e = err_line(
        redis::cmd("EVAL")
            .arg("return redis.call('set','x','y')")
            .arg(1)
            .arg("x")
            .query(&mut con),
    );
    assert!(e.starts_with("OOM command not allowed"), "{e}");
    let set = cmdstat(&mut con, "set");
    assert!(set.contains("rejected_calls=1,failed_calls=0"), "{set}");
    assert!(set.starts_with("calls=0,"), "{set}");
    let eval = cmdstat(&mut con, "eval");
    assert!(eval.contains("rejected_calls=0,failed_calls=1"), "{eval}");
    // An error table returned by the script fails the EVAL too (counted once, as OOM).
    ok(&mut con, &["CONFIG", "RESETSTAT"]);
    let e = err_line(
        redis::cmd("EVAL")
            .arg("return redis.pcall('set','x','y')")
            .arg(1)
            .arg("x")
            .query(&mut con),
    );
    assert!(e.starts_with("OOM command not allowed"), "{e}");
    let eval = cmdstat(&mut con, "eval");
    assert!(eval.contains("failed_calls=1"), "{eval}");
    let errors: String = redis::cmd("INFO")
        .arg("errorstats")
        .query(&mut con)
        .unwrap();
    assert!(errors.contains("errorstat_OOM:count=1"), "{errors}");
    // ... while a pcall that catches it and returns normally doesn't.
    ok(&mut con, &["CONFIG", "RESETSTAT"]);
    let n: i64 = redis::cmd("EVAL")
        .arg("local t = redis.pcall('set','x','y'); return t['err'] and 1 or 0")
        .arg(1)
        .arg("x")
        .query(&mut con)
        .unwrap();
    assert_eq!(n, 1);
    let eval = cmdstat(&mut con, "eval");
    assert!(eval.contains("failed_calls=0"), "{eval}");
}

#[test]
fn scripts_get_deterministic_or_refused_commands() {
    let srv = Server::start(&[]);
    let mut con = srv.client();
    // An unsorted set comes back sorted to a script, as Redis does.
    let members = ["e", "c", "aa", "b", "a", "d", "z", "y", "ab"];
    let mut cmd = redis::cmd("SADD");
    cmd.arg("s").arg(&members);
    let _: i64 = cmd.query(&mut con).unwrap();
    let sorted: Vec<String> = redis::cmd("EVAL")
        .arg("return redis.call('sort', KEYS[1], 'by', 'nosort')")
        .arg(1)
        .arg("s")
        .query(&mut con)
        .unwrap();
    assert_eq!(sorted, ["a", "aa", "ab", "b", "c", "d", "e", "y", "z"]);
    // XREAD / XREADGROUP with BLOCK are refused in scripts; without, they answer.
    ok(&mut con, &["XGROUP", "CREATE", "st", "g", "$", "MKSTREAM"]);
    for (call, name) in [
        ("redis.pcall('xread','BLOCK',0,'STREAMS','st','$')", "xread"),
        (
            "redis.pcall('XREADGROUP','GROUP','g','c','BLOCK',0,'STREAMS','st','>')",
            "XREADGROUP",
        ),
    ] {
        let e = err_line(
            redis::cmd("EVAL")
                .arg(format!("return {call}"))
                .arg(1)
                .arg("st")
                .query(&mut con),
        );
        assert_eq!(
            e,
            format!("ERR {name} command is not allowed with BLOCK option from scripts")
        );
    }
    let v: Value = redis::cmd("EVAL")
        .arg("return redis.pcall('xread','STREAMS','st','$')")
        .arg(1)
        .arg("st")
        .query(&mut con)
        .unwrap();
    assert_eq!(v, Value::Nil);
}

#[test]
fn acl_check_cmd_answers_for_the_calling_user() {
    let srv = Server::start(&[]);
    let mut admin = srv.client();
    ok(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            "bob",
            "on",
            ">pw",
            "+@scripting",
            "+set",
            "~x*",
        ],
    );
    let mut bob = srv.client();
    ok(&mut bob, &["AUTH", "bob", "pw"]);
    let check = |con: &mut redis::Connection, args: &str, keys: &[&str]| -> Value {
        redis::cmd("EVAL")
            .arg(format!("return redis.acl_check_cmd({args})"))
            .arg(keys.len())
            .arg(keys)
            .query(con)
            .unwrap()
    };
    assert_eq!(check(&mut bob, "'set','xx',1", &["xx"]), Value::Int(1));
    // A command, then a key, the user may not use: false (nil in RESP2).
    assert_eq!(check(&mut bob, "'hset','xx','f',1", &["xx"]), Value::Nil);
    assert_eq!(check(&mut bob, "'set','yy',1", &[]), Value::Nil);
    // The default user may do anything.
    assert_eq!(check(&mut admin, "'hset','yy','f',1", &[]), Value::Int(1));
    let e = err_line(
        redis::cmd("EVAL")
            .arg("return redis.acl_check_cmd('nosuch','a')")
            .arg(0)
            .query(&mut bob),
    );
    assert!(
        e.starts_with("ERR Invalid command passed to redis.acl_check_cmd()"),
        "{e}"
    );
}

#[test]
fn lua_memory_stays_bounded_and_goes_with_script_flush() {
    let srv = Server::start(&["--threads", "2"]);
    let mut con = srv.client();
    let memory_field = |con: &mut redis::Connection, name: &str| -> u64 {
        let text: String = redis::cmd("INFO").arg("memory").query(con).unwrap();
        let prefix = format!("{name}:");
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let lua_memory = |con: &mut redis::Connection| memory_field(con, "used_memory_lua");
    // Functions have interpreters of their own, counted apart (used_memory_vm_functions).
    let lib = "#!lua name=big\nlocal t = {} for i = 1, 20000 do t[i] = i end\n\
               redis.register_function('size', function() return #t end)";
    let name: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(lib)
        .query(&mut con)
        .unwrap();
    assert_eq!(name, "big");
    let _: i64 = redis::cmd("FCALL")
        .arg("size")
        .arg(0)
        .query(&mut con)
        .unwrap();
    let functions = memory_field(&mut con, "used_memory_vm_functions");
    assert!(functions > 200 * 1024, "{functions}");
    assert!(lua_memory(&mut con) < 100 * 1024);
    assert_eq!(
        memory_field(&mut con, "used_memory_vm_total"),
        functions + lua_memory(&mut con)
    );
    // Many distinct scripts, run on the other worker too.
    let mut other = srv.client();
    for i in 0..1000 {
        let _: i64 = redis::cmd("EVAL")
            .arg(format!("return {i}"))
            .arg(0)
            .query(if i % 2 == 0 { &mut con } else { &mut other })
            .unwrap();
    }
    assert!(lua_memory(&mut con) > 200 * 1024);
    ok(&mut con, &["SCRIPT", "FLUSH"]);
    // Every worker lets its interpreter go at once, not at its next script.
    let deadline = Instant::now() + Duration::from_secs(5);
    while lua_memory(&mut con) > 100 * 1024 {
        assert!(Instant::now() < deadline, "{}", lua_memory(&mut con));
        std::thread::sleep(Duration::from_millis(10));
    }
    // The garbage of many runs of one script is collected as it goes.
    let mut pipe = redis::pipe();
    for _ in 0..10_000 {
        pipe.cmd("EVAL")
            .arg("return redis.call('incr', KEYS[1])")
            .arg(1)
            .arg("n")
            .ignore();
    }
    let () = pipe.query(&mut con).unwrap();
    let n: i64 = redis::cmd("GET").arg("n").query(&mut con).unwrap();
    assert_eq!(n, 10_000);
    assert!(
        lua_memory(&mut con) < 100 * 1024,
        "{}",
        lua_memory(&mut con)
    );
}
