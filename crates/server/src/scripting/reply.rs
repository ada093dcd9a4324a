//! Conversions between command replies and Lua values, with Redis's rules: a command's
//! RESP reply becomes a Lua value for `redis.call`, and a script's Lua return value becomes
//! the reply to EVAL / FCALL.

use flowkv_protocol::Reply;
use mlua::{Lua, Table, Value};

use crate::server::Server;

/// Nesting depth past which a returned Lua value is cut with an error, as Redis stops at its
/// Lua stack limit (a table that contains itself would otherwise recurse forever).
const MAX_DEPTH: usize = 400;

/// A Lua table with one field `name` = `v` (`{ok=...}`, `{double=...}`…).
fn single(lua: &Lua, name: &str, v: impl mlua::IntoLua) -> mlua::Result<Value> {
    let t = lua.create_table_with_capacity(0, 1)?;
    t.raw_set(name, v)?;
    Ok(Value::Table(t))
}

/// The `{err=...}` table Redis gives scripts for an error line (`CODE message`): the line
/// without CR/LF, with `ERR` added when it has no code.
pub fn error_table(lua: &Lua, line: &[u8], ignore_stats: bool) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, 2)?;
    t.raw_set("err", lua.create_string(error_text(line))?)?;
    if ignore_stats {
        t.raw_set("ignore_error_stats_update", true)?;
    }
    Ok(t)
}

/// Normalizes an error line as Redis's `luaPushErrorBuff` does: a leading `-` marks a line
/// that carries its own code; any other text gets the `ERR` code.
pub fn error_text(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len() + 4);
    match line.strip_prefix(b"-") {
        Some(rest) => match memchr::memchr(b' ', rest) {
            Some(_) => out.extend_from_slice(rest),
            None => {
                out.extend_from_slice(b"ERR ");
                out.extend_from_slice(rest);
            }
        },
        None => {
            out.extend_from_slice(b"ERR ");
            out.extend_from_slice(line);
        }
    }
    while matches!(out.last(), Some(b'\r' | b'\n')) {
        out.pop();
    }
    out
}

/// Decodes one RESP reply (as our own commands write them) into a Lua value.
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Decoder { buf, pos: 0 }
    }

    /// The line at the cursor (without CRLF), advancing past it.
    fn line(&mut self) -> &'a [u8] {
        let rest = &self.buf[self.pos.min(self.buf.len())..];
        let end = memchr::memchr(b'\r', rest).unwrap_or(rest.len());
        self.pos += end + 2;
        &rest[..end]
    }

    fn count(&mut self) -> i64 {
        flowkv_store::num::parse_i64(self.line()).unwrap_or(-1)
    }

    fn bulk(&mut self, len: i64) -> &'a [u8] {
        let start = self.pos.min(self.buf.len());
        let end = (start + len.max(0) as usize).min(self.buf.len());
        self.pos = end + 2;
        &self.buf[start..end]
    }

    /// True if the reply is an error line.
    pub fn is_error(&self) -> bool {
        self.buf.first() == Some(&b'-')
    }

    /// The next value.
    pub fn value(&mut self, lua: &Lua) -> mlua::Result<Value> {
        let Some(&kind) = self.buf.get(self.pos) else {
            return Ok(Value::Nil);
        };
        self.pos += 1;
        Ok(match kind {
            b'+' => single(lua, "ok", lua.create_string(self.line())?)?,
            b'-' => {
                let mut line = b"-".to_vec();
                line.extend_from_slice(self.line());
                Value::Table(error_table(lua, &line, true)?)
            }
            b':' => Value::Number(self.count() as f64),
            b'$' => match self.count() {
                n if n < 0 => Value::Boolean(false),
                n => Value::String(lua.create_string(self.bulk(n))?),
            },
            b'*' => match self.count() {
                n if n < 0 => Value::Boolean(false),
                n => {
                    let t = lua.create_table_with_capacity(n as usize, 0)?;
                    for i in 1..=n {
                        let v = self.value(lua)?;
                        t.raw_set(i, v)?;
                    }
                    Value::Table(t)
                }
            },
            b'_' => {
                self.line();
                Value::Nil
            }
            b'#' => Value::Boolean(self.line() == b"t"),
            b',' => {
                let text = String::from_utf8_lossy(self.line()).into_owned();
                let d = match text.as_str() {
                    "inf" => f64::INFINITY,
                    "-inf" => f64::NEG_INFINITY,
                    "nan" | "-nan" => f64::NAN,
                    t => t.parse().unwrap_or(0.0),
                };
                single(lua, "double", d)?
            }
            b'(' => single(lua, "big_number", lua.create_string(self.line())?)?,
            b'=' => {
                let n = self.count();
                let body = self.bulk(n);
                let (fmt, text) = if body.len() >= 4 {
                    (&body[..3], &body[4..])
                } else {
                    (&b"txt"[..], body)
                };
                let v = lua.create_table_with_capacity(0, 2)?;
                v.raw_set("format", lua.create_string(fmt)?)?;
                v.raw_set("string", lua.create_string(text)?)?;
                single(lua, "verbatim_string", v)?
            }
            b'%' => {
                let n = self.count();
                let m = lua.create_table()?;
                for _ in 0..n.max(0) {
                    let k = self.value(lua)?;
                    let v = self.value(lua)?;
                    if !k.is_nil() {
                        m.raw_set(k, v)?;
                    }
                }
                single(lua, "map", m)?
            }
            b'~' => {
                let n = self.count();
                let s = lua.create_table()?;
                for _ in 0..n.max(0) {
                    let k = self.value(lua)?;
                    if !k.is_nil() {
                        s.raw_set(k, true)?;
                    }
                }
                single(lua, "set", s)?
            }
            // Attributes are not shown to scripts: skip them and read the value they annotate.
            b'|' => {
                let n = self.count();
                for _ in 0..n.max(0) * 2 {
                    self.value(lua)?;
                }
                self.value(lua)?
            }
            _ => {
                self.line();
                Value::Nil
            }
        })
    }
}

/// Writes a script's return value as the reply, with Redis's rules: numbers are integers
/// (truncated), `false` and `nil` are null, `true` is 1 (RESP3 booleans when the script chose
/// RESP3), tables are arrays up to the first nil unless they are `{err=}`, `{ok=}`,
/// `{double=}`, `{big_number=}`, `{verbatim_string=}`, `{map=}` or `{set=}`.
pub struct Writer<'s> {
    pub srv: &'s Server,
    /// The script's own protocol (`redis.setresp`), which decides how booleans go out.
    pub script_resp3: bool,
}

impl Writer<'_> {
    /// Writes `v`; true if that wrote an error anywhere in the reply (the call then counts
    /// as failed, as in Redis).
    pub fn write(&self, out: &mut Reply<'_>, v: &Value, depth: usize) -> bool {
        if depth > MAX_DEPTH {
            self.error(out, "ERR reached lua stack limit", false);
            return true;
        }
        match v {
            Value::String(s) => out.bulk(&s.as_bytes()),
            Value::Boolean(b) => match (self.script_resp3, b) {
                (false, true) => out.int(1),
                (false, false) => out.null(),
                (true, b) => out.boolean(*b),
            },
            Value::Integer(i) => out.int(*i),
            Value::Number(n) => out.int(*n as i64),
            Value::Table(t) => return self.table(out, t, depth),
            _ => out.null(),
        }
        false
    }

    fn error(&self, out: &mut Reply<'_>, msg: &str, ignore_stats: bool) {
        if !ignore_stats {
            self.srv.count_error(msg.split(' ').next().unwrap_or("ERR"));
        }
        out.error(msg);
    }

    fn table(&self, out: &mut Reply<'_>, t: &Table, depth: usize) -> bool {
        let field = |name: &str| t.raw_get::<Value>(name).unwrap_or(Value::Nil);
        if let Value::String(e) = field("err") {
            let ignore = matches!(field("ignore_error_stats_update"), Value::Boolean(true));
            self.error(out, &String::from_utf8_lossy(&e.as_bytes()), ignore);
            return true;
        }
        if let Value::String(s) = field("ok") {
            let s: Vec<u8> = s
                .as_bytes()
                .iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
                .collect();
            out.simple(&s);
            return false;
        }
        if let Some(d) = as_number(&field("double")) {
            out.double(d);
            return false;
        }
        if let Value::String(s) = field("big_number") {
            let s: Vec<u8> = s
                .as_bytes()
                .iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
                .collect();
            out.big_number(&s);
            return false;
        }
        if let Value::Table(v) = field("verbatim_string") {
            if let (Ok(Value::String(f)), Ok(Value::String(s))) =
                (v.raw_get::<Value>("format"), v.raw_get::<Value>("string"))
            {
                let f = f.as_bytes();
                let mut fmt = *b"txt";
                for (d, s) in fmt.iter_mut().zip(f.iter()) {
                    *d = *s;
                }
                out.verbatim(&fmt, &s.as_bytes());
                return false;
            }
        }
        // Values are visited one at a time: mlua can hold only a few thousand at once.
        if let Value::Table(m) = field("map") {
            out.map(m.pairs::<Value, Value>().flatten().count());
            let mut failed = false;
            for (k, v) in m.pairs::<Value, Value>().flatten() {
                failed |= self.write(out, &k, depth + 1);
                failed |= self.write(out, &v, depth + 1);
            }
            return failed;
        }
        if let Value::Table(s) = field("set") {
            out.set(s.pairs::<Value, Value>().flatten().count());
            let mut failed = false;
            for (k, _) in s.pairs::<Value, Value>().flatten() {
                failed |= self.write(out, &k, depth + 1);
            }
            return failed;
        }
        let len = (1..)
            .take_while(|&i| !matches!(t.raw_get::<Value>(i), Ok(Value::Nil) | Err(_)))
            .count();
        out.array(len);
        let mut failed = false;
        for i in 1..=len {
            let v = t.raw_get::<Value>(i).unwrap_or(Value::Nil);
            failed |= self.write(out, &v, depth + 1);
        }
        failed
    }
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => Some(*n),
        Value::Integer(i) => Some(*i as f64),
        _ => None,
    }
}
