//! The libraries Redis gives scripts besides Lua's own: `bit` (LuaBitOp), `struct`
//! (lua-struct), `cjson` (lua-cjson) and `cmsgpack` (lua-cmsgpack), written here in Rust with
//! the behaviour of the C libraries Redis vendors.

use mlua::{Lua, MultiValue, Table, Value};

/// Adds the libraries to the globals table `g`.
pub fn register(lua: &Lua, g: &Table) -> mlua::Result<()> {
    g.raw_set("bit", bit(lua)?)?;
    g.raw_set("cjson", cjson(lua)?)?;
    g.raw_set("cmsgpack", cmsgpack(lua)?)?;
    g.raw_set("struct", lstruct(lua)?)?;
    Ok(())
}

/// LuaBitOp's argument conversion: a number taken modulo 2^32 as a signed 32-bit integer.
fn tobit(v: &Value) -> mlua::Result<i32> {
    let n = match v {
        Value::Integer(i) => *i as f64,
        Value::Number(n) => *n,
        Value::String(s) => s
            .to_str()?
            .trim()
            .parse::<f64>()
            .map_err(|_| mlua::Error::RuntimeError("bad argument (number expected)".into()))?,
        other => {
            return Err(mlua::Error::RuntimeError(format!(
                "bad argument (number expected, got {})",
                other.type_name()
            )))
        }
    };
    // LuaBitOp adds 2^52+2^51 and takes the low word, i.e. rounds to nearest.
    let r = (n + 6755399441055744.0).to_bits() as u32;
    Ok(r as i32)
}

fn bit(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "tobit",
        lua.create_function(|_, v: Value| Ok(tobit(&v)? as f64))?,
    )?;
    t.raw_set(
        "bnot",
        lua.create_function(|_, v: Value| Ok(!tobit(&v)? as f64))?,
    )?;
    fn fold(args: &MultiValue, f: fn(i32, i32) -> i32) -> mlua::Result<f64> {
        let mut it = args.iter();
        let mut acc = tobit(it.next().unwrap_or(&Value::Nil))?;
        for v in it {
            acc = f(acc, tobit(v)?);
        }
        Ok(acc as f64)
    }
    t.raw_set(
        "band",
        lua.create_function(|_, a: MultiValue| fold(&a, |x, y| x & y))?,
    )?;
    t.raw_set(
        "bor",
        lua.create_function(|_, a: MultiValue| fold(&a, |x, y| x | y))?,
    )?;
    t.raw_set(
        "bxor",
        lua.create_function(|_, a: MultiValue| fold(&a, |x, y| x ^ y))?,
    )?;
    fn shift(f: fn(u32, u32) -> u32) -> impl Fn(&Lua, (Value, Value)) -> mlua::Result<f64> {
        move |_, (x, n)| Ok(f(tobit(&x)? as u32, (tobit(&n)? & 31) as u32) as i32 as f64)
    }
    t.raw_set("lshift", lua.create_function(shift(|x, n| x << n))?)?;
    t.raw_set("rshift", lua.create_function(shift(|x, n| x >> n))?)?;
    t.raw_set(
        "arshift",
        lua.create_function(shift(|x, n| ((x as i32) >> n) as u32))?,
    )?;
    t.raw_set("rol", lua.create_function(shift(|x, n| x.rotate_left(n)))?)?;
    t.raw_set("ror", lua.create_function(shift(|x, n| x.rotate_right(n)))?)?;
    t.raw_set(
        "bswap",
        lua.create_function(|_, v: Value| Ok((tobit(&v)? as u32).swap_bytes() as i32 as f64))?,
    )?;
    t.raw_set(
        "tohex",
        lua.create_function(|_, (v, n): (Value, Option<Value>)| {
            let x = tobit(&v)? as u32;
            let n = match n {
                Some(n) => tobit(&n)?,
                None => 8,
            };
            let (upper, n) = if n < 0 { (true, -n) } else { (false, n) };
            let n = n.clamp(1, 8) as usize;
            let s = format!("{x:08x}");
            let s = s[8 - n..].to_string();
            Ok(if upper { s.to_uppercase() } else { s })
        })?,
    )?;
    Ok(t)
}

/// `printf("%.{prec}g", d)`: lua-cjson writes numbers with 14 significant digits.
fn fmt_g(d: f64, prec: usize) -> String {
    if d.is_nan() {
        return if d.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf" } else { "-inf" }.into();
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let sci = format!("{:.*e}", prec.saturating_sub(1), d);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= prec as i32 {
        let mant = if mant.contains('.') {
            mant.trim_end_matches('0').trim_end_matches('.')
        } else {
            mant
        };
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", exp.abs());
    }
    let decimals = (prec as i32 - 1 - exp).max(0) as usize;
    let fixed = format!("{d:.decimals$}");
    if fixed.contains('.') {
        fixed
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    } else {
        fixed
    }
}

fn rt(msg: impl Into<String>) -> mlua::Error {
    mlua::Error::RuntimeError(msg.into())
}

/// lua-cjson's settings that scripts may change.
struct JsonConfig {
    encode_max_depth: usize,
    decode_max_depth: usize,
    /// 0: error, 1: write nan/inf, -1: write null.
    encode_invalid_numbers: i8,
}

fn json_null() -> Value {
    Value::LightUserData(mlua::LightUserData(std::ptr::null_mut()))
}

fn cjson(lua: &Lua) -> mlua::Result<Table> {
    use std::cell::RefCell;
    use std::rc::Rc;
    let cfg = Rc::new(RefCell::new(JsonConfig {
        encode_max_depth: 1000,
        decode_max_depth: 1000,
        encode_invalid_numbers: 0,
    }));
    let t = lua.create_table()?;
    let c = cfg.clone();
    t.raw_set(
        "encode",
        lua.create_function(move |lua, v: Value| {
            let mut out = Vec::new();
            json_encode(&c.borrow(), &v, 0, &mut out)?;
            lua.create_string(out)
        })?,
    )?;
    let c = cfg.clone();
    t.raw_set(
        "decode",
        lua.create_function(move |lua, s: mlua::String| {
            let bytes = s.as_bytes();
            let mut d = JsonDecoder {
                s: &bytes,
                pos: 0,
                depth: 0,
                max_depth: c.borrow().decode_max_depth,
            };
            d.ws();
            let v = d.value(lua)?;
            d.ws();
            if d.pos < d.s.len() {
                return Err(d.err("the end", "invalid token"));
            }
            Ok(v)
        })?,
    )?;
    fn setting(
        lua: &Lua,
        cfg: Rc<RefCell<JsonConfig>>,
        f: fn(&mut JsonConfig, Option<f64>) -> f64,
    ) -> mlua::Result<mlua::Function> {
        lua.create_function(move |_, v: Option<Value>| {
            let n = match v {
                Some(Value::Number(n)) => Some(n),
                Some(Value::Integer(i)) => Some(i as f64),
                Some(Value::Boolean(b)) => Some(if b { 1.0 } else { 0.0 }),
                Some(Value::String(s)) => match s.to_str()?.as_ref() {
                    "on" => Some(1.0),
                    "off" => Some(0.0),
                    "null" => Some(-1.0),
                    other => other.parse().ok(),
                },
                _ => None,
            };
            Ok(f(&mut cfg.borrow_mut(), n))
        })
    }
    t.raw_set(
        "encode_max_depth",
        setting(lua, cfg.clone(), |c, n| {
            if let Some(n) = n.filter(|n| *n >= 1.0) {
                c.encode_max_depth = n as usize;
            }
            c.encode_max_depth as f64
        })?,
    )?;
    t.raw_set(
        "decode_max_depth",
        setting(lua, cfg.clone(), |c, n| {
            if let Some(n) = n.filter(|n| *n >= 1.0) {
                c.decode_max_depth = n as usize;
            }
            c.decode_max_depth as f64
        })?,
    )?;
    t.raw_set(
        "encode_invalid_numbers",
        setting(lua, cfg.clone(), |c, n| {
            if let Some(n) = n {
                c.encode_invalid_numbers = n.clamp(-1.0, 1.0) as i8;
            }
            f64::from(c.encode_invalid_numbers)
        })?,
    )?;
    for name in [
        "encode_keep_buffer",
        "encode_sparse_array",
        "encode_number_precision",
        "decode_invalid_numbers",
    ] {
        t.raw_set(name, lua.create_function(|_, _: MultiValue| Ok(true))?)?;
    }
    t.raw_set("null", json_null())?;
    t.raw_set("_NAME", "cjson")?;
    t.raw_set("_VERSION", "2.1.0")?;
    Ok(t)
}

fn json_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b if b < 0x20 || b == 0x7f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            b => out.push(b),
        }
    }
    out.push(b'"');
}

fn json_number(cfg: &JsonConfig, n: f64, out: &mut Vec<u8>) -> mlua::Result<()> {
    if !n.is_finite() {
        match cfg.encode_invalid_numbers {
            0 => return Err(rt("Cannot serialise number: must not be NaN or Inf")),
            -1 => {
                out.extend_from_slice(b"null");
                return Ok(());
            }
            _ if n.is_nan() => {
                out.extend_from_slice(b"nan");
                return Ok(());
            }
            _ => {}
        }
    }
    out.extend_from_slice(fmt_g(n, 14).as_bytes());
    Ok(())
}

fn json_encode(cfg: &JsonConfig, v: &Value, depth: usize, out: &mut Vec<u8>) -> mlua::Result<()> {
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::Number(n) => json_number(cfg, *n, out)?,
        Value::String(s) => json_string(&s.as_bytes(), out),
        Value::Table(t) => {
            let depth = depth + 1;
            if depth > cfg.encode_max_depth {
                return Err(rt(format!("Cannot serialise, excessive nesting ({depth})")));
            }
            let (array, max, count) = array_shape(t)?;
            if array && max > count * 2 && max > 10 {
                return Err(rt("Cannot serialise table: excessively sparse array"));
            }
            if array && max > 0 {
                out.push(b'[');
                for i in 1..=max {
                    if i > 1 {
                        out.push(b',');
                    }
                    json_encode(cfg, &t.raw_get::<Value>(i)?, depth, out)?;
                }
                out.push(b']');
            } else {
                out.push(b'{');
                for (i, pair) in t.pairs::<Value, Value>().enumerate() {
                    let (k, v) = pair?;
                    if i > 0 {
                        out.push(b',');
                    }
                    match &k {
                        Value::String(s) => json_string(&s.as_bytes(), out),
                        Value::Integer(_) | Value::Number(_) => {
                            out.push(b'"');
                            json_encode(cfg, &k, depth, out)?;
                            out.push(b'"');
                        }
                        _ => {
                            return Err(rt(
                                "Cannot serialise table: table key must be a number or string",
                            ))
                        }
                    }
                    out.push(b':');
                    json_encode(cfg, &v, depth, out)?;
                }
                out.push(b'}');
            }
        }
        other => {
            return Err(rt(format!(
                "Cannot serialise {}: type not supported",
                other.type_name()
            )))
        }
    }
    Ok(())
}

/// Whether a table's keys are all positive integers (an array), the largest of them, and
/// how many keys it has. Keys are visited one at a time (mlua holds few values at once).
fn array_shape(t: &Table) -> mlua::Result<(bool, usize, usize)> {
    let (mut array, mut max, mut count) = (true, 0usize, 0usize);
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair?;
        count += 1;
        match k {
            Value::Integer(i) if i >= 1 => max = max.max(i as usize),
            Value::Number(n) if n >= 1.0 && n.fract() == 0.0 => max = max.max(n as usize),
            _ => array = false,
        }
    }
    Ok((array, max, count))
}

struct JsonDecoder<'a> {
    s: &'a [u8],
    pos: usize,
    depth: usize,
    max_depth: usize,
}

impl JsonDecoder<'_> {
    fn err(&self, expected: &str, found: &str) -> mlua::Error {
        rt(format!(
            "Expected {expected} but found {found} at character {}",
            self.pos + 1
        ))
    }

    fn ws(&mut self) {
        while self
            .s
            .get(self.pos)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        {
            self.pos += 1;
        }
    }

    fn descend(&mut self) -> mlua::Result<()> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(rt(format!(
                "Found too many nested data structures ({}) at character {}",
                self.depth,
                self.pos + 1
            )));
        }
        Ok(())
    }

    fn value(&mut self, lua: &Lua) -> mlua::Result<Value> {
        let Some(&c) = self.s.get(self.pos) else {
            return Err(self.err("value", "the end"));
        };
        match c {
            b'{' => {
                self.descend()?;
                self.pos += 1;
                let t = lua.create_table()?;
                self.ws();
                if self.s.get(self.pos) == Some(&b'}') {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(Value::Table(t));
                }
                loop {
                    self.ws();
                    if self.s.get(self.pos) != Some(&b'"') {
                        return Err(self.err("object key string", "invalid token"));
                    }
                    let k = self.string(lua)?;
                    self.ws();
                    if self.s.get(self.pos) != Some(&b':') {
                        return Err(self.err("colon", "invalid token"));
                    }
                    self.pos += 1;
                    self.ws();
                    let v = self.value(lua)?;
                    t.raw_set(k, v)?;
                    self.ws();
                    match self.s.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            break;
                        }
                        _ => return Err(self.err("comma or object end", "invalid token")),
                    }
                }
                self.depth -= 1;
                Ok(Value::Table(t))
            }
            b'[' => {
                self.descend()?;
                self.pos += 1;
                let t = lua.create_table()?;
                self.ws();
                if self.s.get(self.pos) == Some(&b']') {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(Value::Table(t));
                }
                let mut i = 1;
                loop {
                    self.ws();
                    let v = self.value(lua)?;
                    t.raw_set(i, v)?;
                    i += 1;
                    self.ws();
                    match self.s.get(self.pos) {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            break;
                        }
                        _ => return Err(self.err("comma or array end", "invalid token")),
                    }
                }
                self.depth -= 1;
                Ok(Value::Table(t))
            }
            b'"' => self.string(lua),
            b't' if self.s[self.pos..].starts_with(b"true") => {
                self.pos += 4;
                Ok(Value::Boolean(true))
            }
            b'f' if self.s[self.pos..].starts_with(b"false") => {
                self.pos += 5;
                Ok(Value::Boolean(false))
            }
            b'n' if self.s[self.pos..].starts_with(b"null") => {
                self.pos += 4;
                Ok(json_null())
            }
            b'-' | b'0'..=b'9' => {
                let start = self.pos;
                while self.s.get(self.pos).is_some_and(|b| {
                    b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E')
                }) {
                    self.pos += 1;
                }
                std::str::from_utf8(&self.s[start..self.pos])
                    .ok()
                    .and_then(|t| t.parse::<f64>().ok())
                    .map(Value::Number)
                    .ok_or_else(|| {
                        self.pos = start;
                        self.err("value", "invalid number")
                    })
            }
            _ => Err(self.err("value", "invalid token")),
        }
    }

    fn string(&mut self, lua: &Lua) -> mlua::Result<Value> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(&b) = self.s.get(self.pos) else {
                return Err(self.err("value", "unexpected end of string"));
            };
            self.pos += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.s.get(self.pos) else {
                        return Err(self.err("value", "invalid escape code"));
                    };
                    self.pos += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let mut cp = self.hex4()?;
                            if (0xd800..0xdc00).contains(&cp)
                                && self.s.get(self.pos..self.pos + 2) == Some(b"\\u")
                            {
                                self.pos += 2;
                                let lo = self.hex4()?;
                                cp = 0x10000
                                    + ((cp - 0xd800) << 10)
                                    + (lo.wrapping_sub(0xdc00) & 0x3ff);
                            }
                            let ch = char::from_u32(cp).unwrap_or('\u{fffd}');
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return Err(self.err("value", "invalid escape code")),
                    }
                }
                b => out.push(b),
            }
        }
        Ok(Value::String(lua.create_string(out)?))
    }

    fn hex4(&mut self) -> mlua::Result<u32> {
        let h = self
            .s
            .get(self.pos..self.pos + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| self.err("value", "invalid unicode escape code"))?;
        self.pos += 4;
        Ok(h)
    }
}

/// lua-cmsgpack's limit: deeper tables are packed as nil.
const MSGPACK_MAX_NESTING: usize = 16;

fn msgpack_int(n: i64, out: &mut Vec<u8>) {
    if n >= 0 {
        let u = n as u64;
        if u <= 127 {
            out.push(u as u8);
        } else if u <= 0xff {
            out.extend_from_slice(&[0xcc, u as u8]);
        } else if u <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(u as u16).to_be_bytes());
        } else if u <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(u as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&u.to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2147483648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn msgpack_len(n: usize, small: u8, small_max: usize, codes: [u8; 2], out: &mut Vec<u8>) {
    if n <= small_max {
        out.push(small | n as u8);
    } else if n <= 0xffff {
        out.push(codes[0]);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(codes[1]);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn msgpack_encode(v: &Value, level: usize, out: &mut Vec<u8>) -> mlua::Result<()> {
    match v {
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => msgpack_int(*i, out),
        Value::Number(n) => {
            if n.is_finite() && (*n as i64) as f64 == *n {
                msgpack_int(*n as i64, out);
            } else if (*n as f32) as f64 == *n || n.is_nan() {
                out.push(0xca);
                out.extend_from_slice(&(*n as f32).to_be_bytes());
            } else {
                out.push(0xcb);
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
        Value::String(s) => {
            let s = s.as_bytes();
            let n = s.len();
            if n < 32 {
                out.push(0xa0 | n as u8);
            } else if n <= 0xff {
                out.extend_from_slice(&[0xd9, n as u8]);
            } else if n <= 0xffff {
                out.push(0xda);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            } else {
                out.push(0xdb);
                out.extend_from_slice(&(n as u32).to_be_bytes());
            }
            out.extend_from_slice(&s);
        }
        Value::Table(t) if level < MSGPACK_MAX_NESTING => {
            let (array, max, count) = array_shape(t)?;
            if array && max == count {
                msgpack_len(max, 0x90, 15, [0xdc, 0xdd], out);
                for i in 1..=max {
                    msgpack_encode(&t.raw_get::<Value>(i)?, level + 1, out)?;
                }
            } else {
                msgpack_len(count, 0x80, 15, [0xde, 0xdf], out);
                for pair in t.pairs::<Value, Value>() {
                    let (k, v) = pair?;
                    msgpack_encode(&k, level + 1, out)?;
                    msgpack_encode(&v, level + 1, out)?;
                }
            }
        }
        _ => out.push(0xc0),
    }
    Ok(())
}

struct MsgpackDecoder<'a> {
    s: &'a [u8],
    pos: usize,
}

impl MsgpackDecoder<'_> {
    fn take(&mut self, n: usize) -> mlua::Result<&[u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.s.len());
        let end = end.ok_or_else(|| rt("Missing bytes in input."))?;
        let b = &self.s[self.pos..end];
        self.pos = end;
        Ok(b)
    }

    fn uint(&mut self, n: usize) -> mlua::Result<u64> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| acc << 8 | u64::from(b)))
    }

    fn value(&mut self, lua: &Lua) -> mlua::Result<Value> {
        let c = self.take(1)?[0];
        let num = |n: f64| Ok(Value::Number(n));
        match c {
            0x00..=0x7f => num(f64::from(c)),
            0x80..=0x8f => self.map(lua, usize::from(c & 0x0f)),
            0x90..=0x9f => self.array(lua, usize::from(c & 0x0f)),
            0xa0..=0xbf => self.str(lua, usize::from(c & 0x1f)),
            0xc0 => Ok(Value::Nil),
            0xc2 => Ok(Value::Boolean(false)),
            0xc3 => Ok(Value::Boolean(true)),
            0xc4 | 0xd9 => {
                let n = self.uint(1)? as usize;
                self.str(lua, n)
            }
            0xc5 | 0xda => {
                let n = self.uint(2)? as usize;
                self.str(lua, n)
            }
            0xc6 | 0xdb => {
                let n = self.uint(4)? as usize;
                self.str(lua, n)
            }
            0xca => num(f64::from(f32::from_bits(self.uint(4)? as u32))),
            0xcb => num(f64::from_bits(self.uint(8)?)),
            0xcc => num(self.uint(1)? as f64),
            0xcd => num(self.uint(2)? as f64),
            0xce => num(self.uint(4)? as f64),
            0xcf => num(self.uint(8)? as f64),
            0xd0 => num(f64::from(self.uint(1)? as u8 as i8)),
            0xd1 => num(f64::from(self.uint(2)? as u16 as i16)),
            0xd2 => num(f64::from(self.uint(4)? as u32 as i32)),
            0xd3 => num(self.uint(8)? as i64 as f64),
            0xdc => {
                let n = self.uint(2)? as usize;
                self.array(lua, n)
            }
            0xdd => {
                let n = self.uint(4)? as usize;
                self.array(lua, n)
            }
            0xde => {
                let n = self.uint(2)? as usize;
                self.map(lua, n)
            }
            0xdf => {
                let n = self.uint(4)? as usize;
                self.map(lua, n)
            }
            0xe0..=0xff => num(f64::from(c as i8)),
            _ => Err(rt("Bad data format in input.")),
        }
    }

    fn str(&mut self, lua: &Lua, n: usize) -> mlua::Result<Value> {
        let b = self.take(n)?;
        Ok(Value::String(lua.create_string(b)?))
    }

    fn array(&mut self, lua: &Lua, n: usize) -> mlua::Result<Value> {
        let t = lua.create_table()?;
        for i in 1..=n {
            let v = self.value(lua)?;
            t.raw_set(i, v)?;
        }
        Ok(Value::Table(t))
    }

    fn map(&mut self, lua: &Lua, n: usize) -> mlua::Result<Value> {
        let t = lua.create_table()?;
        for _ in 0..n {
            let k = self.value(lua)?;
            let v = self.value(lua)?;
            if !k.is_nil() {
                t.raw_set(k, v)?;
            }
        }
        Ok(Value::Table(t))
    }
}

/// cmsgpack.unpack / unpack_one / unpack_limit: `limit` objects (0: all) from `offset`;
/// with `with_offset` the next offset (-1 at the end) comes first.
fn msgpack_unpack(
    lua: &Lua,
    s: &[u8],
    limit: usize,
    offset: usize,
    with_offset: bool,
) -> mlua::Result<MultiValue> {
    if offset > s.len() {
        return Err(rt("Start offset greater than input length."));
    }
    let mut d = MsgpackDecoder { s, pos: offset };
    let mut values = Vec::new();
    while d.pos < s.len() && (limit == 0 || values.len() < limit) {
        values.push(d.value(lua)?);
    }
    if with_offset {
        let next = if d.pos >= s.len() { -1.0 } else { d.pos as f64 };
        values.insert(0, Value::Number(next));
    }
    Ok(MultiValue::from_vec(values))
}

fn cmsgpack(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "pack",
        lua.create_function(|lua, args: MultiValue| {
            if args.is_empty() {
                return Err(rt("MessagePack pack needs input."));
            }
            let mut out = Vec::new();
            for v in args.iter() {
                msgpack_encode(v, 0, &mut out)?;
            }
            lua.create_string(out)
        })?,
    )?;
    t.raw_set(
        "unpack",
        lua.create_function(|lua, s: mlua::String| {
            msgpack_unpack(lua, &s.as_bytes(), 0, 0, false)
        })?,
    )?;
    t.raw_set(
        "unpack_one",
        lua.create_function(|lua, (s, off): (mlua::String, Option<f64>)| {
            msgpack_unpack(
                lua,
                &s.as_bytes(),
                1,
                off.unwrap_or(0.0).max(0.0) as usize,
                true,
            )
        })?,
    )?;
    t.raw_set(
        "unpack_limit",
        lua.create_function(
            |lua, (s, limit, off): (mlua::String, Option<f64>, Option<f64>)| {
                msgpack_unpack(
                    lua,
                    &s.as_bytes(),
                    limit.unwrap_or(0.0).max(0.0) as usize,
                    off.unwrap_or(0.0).max(0.0) as usize,
                    true,
                )
            },
        )?,
    )?;
    t.raw_set("_NAME", "cmsgpack")?;
    t.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    Ok(t)
}

/// One lua-struct format item: (kind, size).
fn struct_items(fmt: &[u8]) -> mlua::Result<Vec<(u8, usize, bool)>> {
    let mut items = Vec::new();
    let mut little = true;
    let mut i = 0;
    while i < fmt.len() {
        let c = fmt[i];
        i += 1;
        let mut num = None;
        while i < fmt.len() && fmt[i].is_ascii_digit() {
            num = Some(num.unwrap_or(0usize) * 10 + usize::from(fmt[i] - b'0'));
            i += 1;
        }
        let size = match c {
            b'<' => {
                little = true;
                continue;
            }
            b'>' => {
                little = false;
                continue;
            }
            b'=' | b'!' | b' ' => continue,
            b'x' | b'b' | b'B' => 1,
            b'h' | b'H' => 2,
            b'l' | b'L' | b'T' => 8,
            b'i' | b'I' => num.unwrap_or(4),
            b'f' => 4,
            b'd' => 8,
            b'c' => num.unwrap_or(1),
            b's' => 0,
            other => return Err(rt(format!("invalid format option '{}'", char::from(other)))),
        };
        if matches!(c, b'i' | b'I') && !(1..=8).contains(&size) {
            return Err(rt(format!(
                "integral size {size} is larger than limit of 8"
            )));
        }
        items.push((c, size, little));
    }
    Ok(items)
}

fn lstruct(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "pack",
        lua.create_function(|lua, (fmt, args): (mlua::String, MultiValue)| {
            let mut out = Vec::new();
            let mut args = args.into_iter();
            for (c, size, little) in struct_items(&fmt.as_bytes())? {
                match c {
                    b'x' => out.push(0),
                    b'f' | b'd' => {
                        let n = match args.next() {
                            Some(Value::Number(n)) => n,
                            Some(Value::Integer(i)) => i as f64,
                            _ => return Err(rt("bad argument to 'pack' (number expected)")),
                        };
                        let b: Vec<u8> = if c == b'f' {
                            let f = n as f32;
                            if little {
                                f.to_le_bytes().to_vec()
                            } else {
                                f.to_be_bytes().to_vec()
                            }
                        } else if little {
                            n.to_le_bytes().to_vec()
                        } else {
                            n.to_be_bytes().to_vec()
                        };
                        out.extend_from_slice(&b);
                    }
                    b'c' | b's' => {
                        let s = match args.next() {
                            Some(Value::String(s)) => s.as_bytes().to_vec(),
                            Some(v @ (Value::Number(_) | Value::Integer(_))) => lua
                                .coerce_string(v)?
                                .map(|s| s.as_bytes().to_vec())
                                .unwrap_or_default(),
                            _ => return Err(rt("bad argument to 'pack' (string expected)")),
                        };
                        if c == b's' {
                            out.extend_from_slice(&s);
                            out.push(0);
                        } else {
                            if s.len() < size {
                                return Err(rt("bad argument to 'pack' (string too short)"));
                            }
                            out.extend_from_slice(&s[..size]);
                        }
                    }
                    _ => {
                        let n = match args.next() {
                            Some(Value::Number(n)) => n as i64,
                            Some(Value::Integer(i)) => i,
                            _ => return Err(rt("bad argument to 'pack' (number expected)")),
                        };
                        let bytes = n.to_le_bytes();
                        let mut b = bytes[..size.min(8)].to_vec();
                        if !little {
                            b.reverse();
                        }
                        out.extend_from_slice(&b);
                    }
                }
            }
            lua.create_string(out)
        })?,
    )?;
    t.raw_set(
        "unpack",
        lua.create_function(
            |lua, (fmt, s, init): (mlua::String, mlua::String, Option<f64>)| {
                let data = s.as_bytes();
                let mut pos = init.unwrap_or(1.0).max(1.0) as usize - 1;
                let mut out = Vec::new();
                let short = || rt("bad argument to 'unpack' (data string too short)");
                for (c, size, little) in struct_items(&fmt.as_bytes())? {
                    match c {
                        b'x' => pos += 1,
                        b's' => {
                            let rest = data.get(pos..).ok_or_else(short)?;
                            let end = rest.iter().position(|&b| b == 0).ok_or_else(|| {
                                rt("bad argument to 'unpack' (unfinished string in data)")
                            })?;
                            out.push(Value::String(lua.create_string(&rest[..end])?));
                            pos += end + 1;
                        }
                        b'c' => {
                            let b = data.get(pos..pos + size).ok_or_else(short)?;
                            out.push(Value::String(lua.create_string(b)?));
                            pos += size;
                        }
                        _ => {
                            let b = data.get(pos..pos + size).ok_or_else(short)?;
                            let mut bytes = b.to_vec();
                            if !little {
                                bytes.reverse();
                            }
                            let v = match c {
                                b'f' => f64::from(f32::from_le_bytes(
                                    bytes.clone().try_into().map_err(|_| short())?,
                                )),
                                b'd' => f64::from_le_bytes(
                                    bytes.clone().try_into().map_err(|_| short())?,
                                ),
                                _ => {
                                    let mut u = 0u64;
                                    for (i, b) in bytes.iter().enumerate().take(8) {
                                        u |= u64::from(*b) << (8 * i);
                                    }
                                    let signed = c.is_ascii_lowercase();
                                    if signed && size < 8 && u & (1 << (8 * size - 1)) != 0 {
                                        (u as i64 - (1i64 << (8 * size))) as f64
                                    } else if signed {
                                        u as i64 as f64
                                    } else {
                                        u as f64
                                    }
                                }
                            };
                            out.push(Value::Number(v));
                            pos += size;
                        }
                    }
                }
                out.push(Value::Number((pos + 1) as f64));
                Ok(MultiValue::from_vec(out))
            },
        )?,
    )?;
    t.raw_set(
        "size",
        lua.create_function(|_, fmt: mlua::String| {
            let items = struct_items(&fmt.as_bytes())?;
            if items.iter().any(|i| i.0 == b's') {
                return Err(rt("options 'c0' - 's' have undefined sizes"));
            }
            Ok(items.iter().map(|i| i.1).sum::<usize>())
        })?,
    )?;
    Ok(t)
}
