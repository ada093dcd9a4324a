//! Shared end-to-end harness: starts the real `flowkv-server` binary on a free port and
//! connects real clients to it.
#![allow(dead_code)] // each test file uses a different subset

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server, killed on drop.
pub struct Server {
    child: Child,
    pub port: u16,
    pub dir: std::path::PathBuf,
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Server {
    /// Starts the server with extra `--directive value` arguments.
    pub fn start(extra: &[&str]) -> Server {
        Self::start_with(None, extra)
    }

    /// Starts the server with an optional config file and extra arguments.
    pub fn start_with(config: Option<&std::path::Path>, extra: &[&str]) -> Server {
        for _ in 0..5 {
            let port = free_port();
            let dir =
                std::env::temp_dir().join(format!("flowkv-test-{port}-{}", std::process::id()));
            let _ = std::fs::create_dir_all(&dir);
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_flowkv-server"));
            if let Some(c) = config {
                cmd.arg(c);
            }
            cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
                .arg(&dir)
                .args(extra)
                .current_dir(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let child = cmd.spawn().expect("spawn flowkv-server");
            let mut s = Server { child, port, dir };
            if s.wait_ready() {
                return s;
            }
        }
        panic!("flowkv-server did not start");
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                if s.write_all(b"PING\r\n").is_ok() {
                    let mut buf = [0u8; 7];
                    if s.read_exact(&mut buf).is_ok()
                        && (&buf == b"+PONG\r\n" || &buf == b"-NOAUTH")
                    {
                        return true;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// A redis-rs connection.
    pub fn client(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .and_then(|c| c.get_connection())
            .expect("connect")
    }

    /// A raw socket with a read timeout, for protocol-level tests.
    pub fn raw(&self) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Raw { s }
    }

    /// True while the process runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        unsafe_free_kill(self.child.id(), "TERM");
        self.child.wait().expect("wait")
    }
}

/// Sends a signal with the `kill` command (no libc in tests).
fn unsafe_free_kill(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status();
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A raw RESP connection.
pub struct Raw {
    pub s: TcpStream,
}

impl Raw {
    pub fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).expect("write");
    }

    /// Sends a command as a RESP multibulk.
    pub fn cmd(&mut self, args: &[&[u8]]) {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.send(&out);
    }

    /// Reads exactly `n` bytes.
    pub fn read_n(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        self.s.read_exact(&mut buf).expect("read");
        buf
    }

    /// Reads until `expected.len()` bytes arrived and returns them as a string.
    pub fn expect(&mut self, expected: &str) {
        let got = self.read_n(expected.len());
        assert_eq!(String::from_utf8_lossy(&got), expected);
    }

    /// Reads one line (through \r\n).
    pub fn line(&mut self) -> String {
        let mut out = Vec::new();
        let mut b = [0u8; 1];
        while !out.ends_with(b"\r\n") {
            self.s.read_exact(&mut b).expect("read line");
            out.push(b[0]);
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Switches to RESP3 and skips the HELLO reply (a map whose size varies), so the next
    /// read starts at the next command's reply.
    pub fn hello3(&mut self) {
        self.cmd(&[b"HELLO", b"3"]);
        self.cmd(&[b"PING"]);
        while self.line() != "+PONG\r\n" {}
    }

    /// True if nothing arrives within `d` (the usual read timeout is restored afterwards).
    pub fn silent_for(&mut self, d: Duration) -> bool {
        self.s.set_read_timeout(Some(d)).unwrap();
        let mut b = [0u8; 1];
        let silent = matches!(self.s.peek(&mut b), Err(e)
            if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut));
        self.s
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        silent
    }

    /// True if the server closed the connection (read returns 0) within the timeout.
    pub fn closed(&mut self) -> bool {
        let mut b = [0u8; 64];
        loop {
            match self.s.read(&mut b) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(_) => return false,
            }
        }
    }
}

/// Runs a command given as words (text or bytes) on a redis-rs connection.
pub fn q<A: AsRef<[u8]>>(
    con: &mut redis::Connection,
    args: &[A],
) -> redis::RedisResult<redis::Value> {
    let mut c = redis::cmd(std::str::from_utf8(args[0].as_ref()).expect("command name"));
    for a in &args[1..] {
        c.arg(a.as_ref());
    }
    c.query(con)
}

/// Runs a command that must reply with an integer.
pub fn int<A: AsRef<[u8]> + std::fmt::Debug>(con: &mut redis::Connection, args: &[A]) -> i64 {
    match q(con, args) {
        Ok(redis::Value::Int(n)) => n,
        other => panic!("{args:?}: expected an integer, got {other:?}"),
    }
}

/// Runs a command that must reply +OK.
pub fn ok<A: AsRef<[u8]> + std::fmt::Debug>(con: &mut redis::Connection, args: &[A]) {
    assert_eq!(q(con, args), Ok(redis::Value::Okay), "{args:?}");
}

/// The full error line (code and message) of a failed reply.
pub fn err_line(r: redis::RedisResult<redis::Value>) -> String {
    let e = r.expect_err("expected an error");
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        (Some(code), None) => code.to_string(),
        _ => e.to_string(),
    }
}

/// Runs a command that must fail; returns its full error line.
pub fn err<A: AsRef<[u8]>>(con: &mut redis::Connection, args: &[A]) -> String {
    err_line(q(con, args))
}

/// Runs a command whose reply is a bulk string or null.
pub fn bulk(con: &mut redis::Connection, args: &[&str]) -> Option<String> {
    match q(con, args) {
        Ok(redis::Value::BulkString(b)) => Some(String::from_utf8(b).expect("utf8")),
        Ok(redis::Value::Nil) => None,
        other => panic!("{args:?}: expected a bulk string, got {other:?}"),
    }
}

/// Runs a command whose reply is an array of bulk strings.
pub fn strings(con: &mut redis::Connection, args: &[&str]) -> Vec<String> {
    match q(con, args) {
        Ok(redis::Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                redis::Value::BulkString(b) => String::from_utf8(b).expect("utf8"),
                other => panic!("{args:?}: expected bulks, got {other:?}"),
            })
            .collect(),
        other => panic!("{args:?}: expected an array, got {other:?}"),
    }
}

/// OBJECT ENCODING of a key.
pub fn encoding(con: &mut redis::Connection, key: &str) -> String {
    bulk(con, &["OBJECT", "ENCODING", key]).expect("encoding")
}

/// Changes counted since the last save (INFO rdb_changes_since_last_save).
pub fn dirty(con: &mut redis::Connection) -> i64 {
    let info = bulk(con, &["INFO", "persistence"]).expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix("rdb_changes_since_last_save:"))
        .expect("rdb_changes_since_last_save")
        .trim()
        .parse()
        .expect("a number")
}
