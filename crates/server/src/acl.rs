//! Users and their permissions (Redis 7.0 ACL): the rule grammar of ACL SETUSER / `user`
//! lines, the permission check dispatch runs before a command locks anything, the canonical
//! rule strings ACL LIST prints, the ACL log, and the aclfile.
//!
//! A user is shared (`Arc<User>`) by the registry and every client authenticated as it, so a
//! change reaches those clients at once, as in Redis. Its rules sit behind a lock, but a user
//! that may run everything (the default user out of the box) is marked `open`: dispatch then
//! pays one atomic load per command and nothing more.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use flowkv_protocol::Args;
use flowkv_store::glob::glob_match;
use parking_lot::{Mutex, RwLock};

use crate::client::Client;
use crate::command::{acl as cat, flags, keyspec as ks, Command};
use crate::commands::table;
use crate::server::Server;

/// Key pattern permissions (`%R~`, `%W~`, `~` = both).
const KEY_READ: u8 = 1;
const KEY_WRITE: u8 = 2;
const KEY_ALL: u8 = KEY_READ | KEY_WRITE;

/// Why a rule was refused; each has Redis's message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleError {
    UnknownName,
    Syntax,
    KeyAfterAll,
    ChannelAfterAll,
    NoSuchPassword,
    BadHash,
    Duplicate,
    FirstArgOfSub,
}

impl RuleError {
    pub fn message(self) -> &'static str {
        match self {
            RuleError::UnknownName => "Unknown command or category name in ACL",
            RuleError::Syntax => "Syntax error",
            RuleError::KeyAfterAll => {
                "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and \
                 does not have any effect. Try 'resetkeys' to start with an empty list of patterns"
            }
            RuleError::ChannelAfterAll => {
                "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid \
                 and does not have any effect. Try 'resetchannels' to start with an empty list \
                 of channels"
            }
            RuleError::NoSuchPassword => {
                "The password you are trying to remove from the user does not exist"
            }
            RuleError::BadHash => {
                "The password hash must be exactly 64 characters and contain only lowercase \
                 hexadecimal characters"
            }
            RuleError::Duplicate => {
                "Duplicate user found. A user can only be defined once in config files"
            }
            RuleError::FirstArgOfSub => "Allowing first-arg of a subcommand is not supported",
        }
    }
}

/// Why a command was denied (ordered as Redis ranks them when selectors disagree).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Denied {
    Command,
    Key,
    Auth,
    Channel,
}

impl Denied {
    fn reason(self) -> &'static str {
        match self {
            Denied::Command => "command",
            Denied::Key => "key",
            Denied::Auth => "auth",
            Denied::Channel => "channel",
        }
    }

    /// The `-NOPERM` line dispatch replies with.
    pub fn toplevel_error(self, full_name: &str) -> String {
        match self {
            Denied::Command => {
                format!("NOPERM this user has no permissions to run the '{full_name}' command")
            }
            Denied::Key => "NOPERM this user has no permissions to access one of the keys used \
                            as arguments"
                .into(),
            _ => "NOPERM this user has no permissions to access one of the channels used as \
                  arguments"
                .into(),
        }
    }

    /// The end of the error a script gets ("The user executing the script ...").
    pub fn script_text(self) -> &'static str {
        match self {
            Denied::Command => "can't run this command or subcommand",
            Denied::Key => {
                "can't access at least one of the keys mentioned in the command arguments"
            }
            _ => "can't publish to the channel mentioned in the command",
        }
    }

    /// The reason EXEC gives when permissions changed after queueing.
    pub fn exec_text(self) -> &'static str {
        match self {
            Denied::Command => "no permission to execute the command or subcommand",
            Denied::Key => "no permission to touch the specified keys",
            _ => "no permission to access one of the channels used as arguments",
        }
    }
}

/// Where a denial happened, for the ACL log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogContext {
    Toplevel,
    Multi,
    Lua,
}

impl LogContext {
    fn name(self) -> &'static str {
        match self {
            LogContext::Toplevel => "toplevel",
            LogContext::Multi => "multi",
            LogContext::Lua => "lua",
        }
    }
}

/// Command ids as ACL rules see them: each command's subcommand ids and parent, and names.
struct Ids {
    by_name: HashMap<String, usize>,
    parent: Vec<Option<usize>>,
    subs: Vec<std::ops::Range<usize>>,
    /// Categories of each id (flag-derived ones included).
    cats: Vec<u32>,
}

fn ids() -> &'static Ids {
    static IDS: OnceLock<Ids> = OnceLock::new();
    IDS.get_or_init(|| {
        let flat = &table().flat;
        let mut ids = Ids {
            by_name: HashMap::new(),
            parent: vec![None; flat.len()],
            subs: vec![0..0; flat.len()],
            cats: flat.iter().map(|(_, c)| c.acl_categories()).collect(),
        };
        let mut current = 0;
        for (id, (name, _)) in flat.iter().enumerate() {
            ids.by_name.insert(name.clone(), id);
            if name.contains('|') {
                ids.parent[id] = Some(current);
                ids.subs[current].end = id + 1;
            } else {
                current = id;
                ids.subs[id] = id + 1..id + 1;
            }
        }
        ids
    })
}

/// Bits per id plus one "future commands" bit set only by `+@all`.
fn bit_count() -> usize {
    table().flat.len() + 1
}

/// One set of permissions: the user's root one or a `(...)` selector.
#[derive(Clone, PartialEq, Eq)]
struct Selector {
    allkeys: bool,
    allchannels: bool,
    allcommands: bool,
    bits: Vec<u64>,
    /// Allowed first arguments of otherwise denied commands (`+select|0`), by id.
    firstargs: BTreeMap<usize, Vec<Vec<u8>>>,
    keys: Vec<(Vec<u8>, u8)>,
    channels: Vec<Vec<u8>>,
}

impl Selector {
    fn new(allchannels: bool) -> Selector {
        Selector {
            allkeys: false,
            allchannels,
            allcommands: false,
            bits: vec![0; bit_count().div_ceil(64)],
            firstargs: BTreeMap::new(),
            keys: Vec::new(),
            channels: Vec::new(),
        }
    }

    fn bit(&self, id: usize) -> bool {
        self.bits[id / 64] & (1 << (id % 64)) != 0
    }

    fn set_bit(&mut self, id: usize, on: bool) {
        if on {
            self.bits[id / 64] |= 1 << (id % 64);
        } else {
            self.bits[id / 64] &= !(1 << (id % 64));
            self.allcommands = false;
        }
    }

    fn future(&self) -> bool {
        self.bit(bit_count() - 1)
    }

    /// Allows or denies a command, and with a container all its subcommands.
    fn change(&mut self, id: usize, on: bool) {
        self.set_bit(id, on);
        self.firstargs.remove(&id);
        for sub in ids().subs[id].clone() {
            self.set_bit(sub, on);
        }
    }

    fn change_category(&mut self, flag: u32, on: bool) {
        for (id, c) in ids().cats.iter().enumerate() {
            if c & flag != 0 {
                self.change(id, on);
            }
        }
    }

    /// Applies one selector rule.
    fn apply(&mut self, op: &[u8]) -> Result<(), RuleError> {
        let is = |w: &str| op.eq_ignore_ascii_case(w.as_bytes());
        if is("allkeys") || op == b"~*" {
            self.allkeys = true;
            self.keys.clear();
        } else if is("resetkeys") {
            self.allkeys = false;
            self.keys.clear();
        } else if is("allchannels") || op == b"&*" {
            self.allchannels = true;
            self.channels.clear();
        } else if is("resetchannels") {
            self.allchannels = false;
            self.channels.clear();
        } else if is("allcommands") || is("+@all") {
            self.bits.iter_mut().for_each(|w| *w = u64::MAX);
            self.allcommands = true;
            self.firstargs.clear();
        } else if is("nocommands") || is("-@all") {
            self.bits.iter_mut().for_each(|w| *w = 0);
            self.allcommands = false;
            self.firstargs.clear();
        } else if op[0] == b'~' || op[0] == b'%' {
            self.add_key_pattern(op)?;
        } else if op[0] == b'&' {
            if self.allchannels {
                return Err(RuleError::ChannelAfterAll);
            }
            let pat = &op[1..];
            if has_spaces(pat) {
                return Err(RuleError::Syntax);
            }
            if !self.channels.iter().any(|c| c == pat) {
                self.channels.push(pat.to_vec());
            }
            self.allchannels = false;
        } else if (op[0] == b'+' || op[0] == b'-') && op.get(1) == Some(&b'@') {
            let flag = category(&op[2..]).ok_or(RuleError::UnknownName)?;
            self.change_category(flag, op[0] == b'+');
        } else if op[0] == b'+' {
            self.allow(&op[1..])?;
        } else if op[0] == b'-' {
            let id = command_id(&op[1..]).ok_or(RuleError::UnknownName)?;
            self.change(id, false);
        } else {
            return Err(RuleError::Syntax);
        }
        Ok(())
    }

    fn add_key_pattern(&mut self, op: &[u8]) -> Result<(), RuleError> {
        if self.allkeys {
            return Err(RuleError::KeyAfterAll);
        }
        let (mut perm, mut offset) = (0u8, 1usize);
        if op[0] == b'%' {
            while offset < op.len() {
                match op[offset].to_ascii_uppercase() {
                    b'R' if perm & KEY_READ == 0 => perm |= KEY_READ,
                    b'W' if perm & KEY_WRITE == 0 => perm |= KEY_WRITE,
                    b'~' => {
                        offset += 1;
                        break;
                    }
                    _ => return Err(RuleError::Syntax),
                }
                offset += 1;
            }
            if perm == 0 {
                return Err(RuleError::Syntax);
            }
        } else {
            perm = KEY_ALL;
        }
        let pat = &op[offset..];
        if has_spaces(pat) {
            return Err(RuleError::Syntax);
        }
        match self.keys.iter_mut().find(|(p, _)| p == pat) {
            Some((_, f)) => *f |= perm,
            None => self.keys.push((pat.to_vec(), perm)),
        }
        self.allkeys = false;
        Ok(())
    }

    /// `+cmd`, `+cmd|sub` or `+cmd|first-arg`.
    fn allow(&mut self, name: &[u8]) -> Result<(), RuleError> {
        let Some(bar) = name.iter().rposition(|&b| b == b'|') else {
            let id = command_id(name).ok_or(RuleError::UnknownName)?;
            self.change(id, true);
            return Ok(());
        };
        let (cmd, sub) = (&name[..bar], &name[bar + 1..]);
        let id = command_id(cmd).ok_or(RuleError::UnknownName)?;
        if ids().parent[id].is_some() {
            return Err(RuleError::FirstArgOfSub);
        }
        if sub.is_empty() {
            return Err(RuleError::Syntax);
        }
        if !ids().subs[id].is_empty() {
            let sid = command_id(name).ok_or(RuleError::UnknownName)?;
            self.change(sid, true);
        } else {
            let list = self.firstargs.entry(id).or_default();
            if !list.iter().any(|a| a.eq_ignore_ascii_case(sub)) {
                list.push(sub.to_vec());
            }
        }
        Ok(())
    }

    /// Key pattern string as rules show it (`~p`, `%R~p`, `%W~p`).
    fn key_rule(pat: &[u8], perm: u8, out: &mut Vec<u8>) {
        out.extend_from_slice(match perm {
            KEY_READ => b"%R~".as_slice(),
            KEY_WRITE => b"%W~",
            _ => b"~",
        });
        out.extend_from_slice(pat);
    }

    /// Commands allowed (on) and denied (off) among those in a category.
    fn count(&self, flag: u32) -> (usize, usize) {
        let mut on_off = (0, 0);
        for (id, c) in ids().cats.iter().enumerate() {
            if c & flag != 0 {
                if self.bit(id) {
                    on_off.0 += 1;
                } else {
                    on_off.1 += 1;
                }
            }
        }
        on_off
    }

    /// The command rules that rebuild this selector's bitmap, as Redis derives them: `+@all`
    /// or `-@all`, then the best-fitting categories one at a time, then single commands. Bytes:
    /// a first argument (`+select|0`) may be any bytes and is shown as given.
    fn command_rules(&self) -> Vec<u8> {
        let additive = !self.future();
        let mut rules = if additive { b"-@all " } else { b"+@all " }.to_vec();
        let mut fake = Selector::new(false);
        let _ = fake.apply(if additive { b"-@all" } else { b"+@all" });
        let mut temp = self.clone();
        let mut applied = [false; 32];
        loop {
            let mut best = None;
            let (mut mindiff, mut maxsame) = (usize::MAX, 0);
            for (j, &(flag, _)) in cat::NAMES.iter().enumerate() {
                if applied[j] {
                    continue;
                }
                let (on, off) = temp.count(flag);
                let (diff, same) = if additive { (off, on) } else { (on, off) };
                if same > diff && (diff < mindiff || (diff == mindiff && same > maxsame)) {
                    best = Some(j);
                    mindiff = diff;
                    maxsame = same;
                }
            }
            let Some(j) = best else { break };
            let (flag, name) = cat::NAMES[j];
            fake.change_category(flag, additive);
            temp.change_category(flag, !additive);
            rules.extend_from_slice(if additive { b"+@" } else { b"-@" });
            rules.extend_from_slice(name.as_bytes());
            rules.push(b' ');
            applied[j] = true;
        }
        for (id, (name, _)) in table().flat.iter().enumerate() {
            let user = self.bit(id);
            if user != fake.bit(id) {
                rules.push(if user { b'+' } else { b'-' });
                rules.extend_from_slice(name.as_bytes());
                rules.push(b' ');
                fake.change(id, user);
            }
            if let (false, Some(args)) = (user, self.firstargs.get(&id)) {
                for a in args {
                    rules.push(b'+');
                    rules.extend_from_slice(name.as_bytes());
                    rules.push(b'|');
                    rules.extend_from_slice(a);
                    rules.push(b' ');
                }
            }
        }
        rules.pop();
        rules
    }

    /// The whole selector as rules: keys, channels, commands.
    fn describe(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.allkeys {
            out.extend_from_slice(b"~* ");
        } else {
            for (p, f) in &self.keys {
                Selector::key_rule(p, *f, &mut out);
                out.push(b' ');
            }
        }
        if self.allchannels {
            out.extend_from_slice(b"&* ");
        } else {
            out.extend_from_slice(b"resetchannels ");
            for c in &self.channels {
                out.push(b'&');
                out.extend_from_slice(c);
                out.push(b' ');
            }
        }
        out.extend_from_slice(&self.command_rules());
        out
    }

    /// Checks one command line against this selector; on denial, the reason and the
    /// argument position at fault.
    fn check(&self, id: usize, cmd: &Command, args: Args<'_>) -> Result<(), (Denied, usize)> {
        if !self.allcommands && !cmd.has(flags::NO_AUTH) && !self.bit(id) {
            let idx = if ids().parent[id].is_some() { 2 } else { 1 };
            let allowed = match (self.firstargs.get(&id), args.try_get(idx)) {
                (Some(list), Some(arg)) => list.iter().any(|a| a.eq_ignore_ascii_case(arg)),
                _ => false,
            };
            if !allowed {
                return Err((Denied::Command, 0));
            }
        }
        if !self.allkeys {
            let specs = cmd.reported_key_specs();
            // Shard channels are described by `not_key` specs: channels, not keys.
            let positions = if specs.iter().any(|s| s.flags & ks::NOT_KEY == 0) {
                cmd.key_positions(args)
            } else {
                Default::default()
            };
            for pos in positions {
                let f = crate::commands::introspect::key_flags(&specs, args, pos);
                if !self.key_allowed(args.get(pos), access(variable_flags(cmd, args, f))) {
                    return Err((Denied::Key, pos));
                }
            }
        }
        if !self.allchannels {
            for (pos, pattern) in channels(id, args) {
                if !self.channel_allowed(args.get(pos), pattern) {
                    return Err((Denied::Channel, pos));
                }
            }
        }
        Ok(())
    }

    fn key_allowed(&self, key: &[u8], need: u8) -> bool {
        self.allkeys
            || self
                .keys
                .iter()
                .any(|(p, f)| f & need == need && glob_match(p, key, false))
    }

    /// A channel is matched against the patterns; a PSUBSCRIBE pattern only literally.
    fn channel_allowed(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.allchannels || channel_in(&self.channels, channel, is_pattern)
    }
}

fn channel_in(list: &[Vec<u8>], channel: &[u8], is_pattern: bool) -> bool {
    list.iter().any(|p| {
        if is_pattern {
            p == channel
        } else {
            glob_match(p, channel, false)
        }
    })
}

/// The flags of a key whose spec says `variable_flags`, for this invocation (as Redis's
/// getkeys functions give them): SET reads only with GET, BITFIELD writes only with
/// SET/INCRBY. ACL key checks and COMMAND GETKEYSANDFLAGS read them.
pub(crate) fn variable_flags(cmd: &Command, args: Args<'_>, f: u32) -> u32 {
    let has = |word: &[u8]| args.iter().skip(2).any(|a| a.eq_ignore_ascii_case(word));
    match cmd.name {
        "set" if !has(b"get") => ks::OW | ks::UPDATE,
        "bitfield" if !has(b"set") && !has(b"incrby") => ks::RO | ks::ACCESS,
        _ => f,
    }
}

/// The read/write permission a key spec's flags need.
fn access(f: u32) -> u8 {
    let mut need = 0;
    if f & ks::ACCESS != 0 {
        need |= KEY_READ;
    }
    if f & (ks::INSERT | ks::DELETE | ks::UPDATE) != 0 {
        need |= KEY_WRITE;
    }
    need
}

/// The channels a command names that ACLs check (publishing and subscribing), with whether
/// each is a pattern.
fn channels(id: usize, args: Args<'_>) -> Vec<(usize, bool)> {
    match table().full_name(id) {
        "publish" | "spublish" => vec![(1, false)],
        // Redis 7.0 treats shard channels as channels for ACLs.
        "subscribe" | "ssubscribe" => (1..args.len()).map(|i| (i, false)).collect(),
        "psubscribe" => (1..args.len()).map(|i| (i, true)).collect(),
        _ => Vec::new(),
    }
}

fn has_spaces(s: &[u8]) -> bool {
    s.iter().any(|&b| b == b' ' || b == 0)
}

/// A category flag by name (case-insensitive).
pub fn category(name: &[u8]) -> Option<u32> {
    cat::NAMES
        .iter()
        .find(|(_, n)| n.as_bytes().eq_ignore_ascii_case(name))
        .map(|(f, _)| *f)
}

/// A command or `container|sub` id by name (case-insensitive).
fn command_id(name: &[u8]) -> Option<usize> {
    let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
    ids().by_name.get(&lower).copied()
}

/// A user's rules.
#[derive(Clone)]
pub struct Rules {
    enabled: bool,
    nopass: bool,
    /// `Some(true)`: skip-sanitize-payload, `Some(false)`: sanitize-payload.
    skip_sanitize: Option<bool>,
    /// SHA-256 hashes, lower-case hex.
    passwords: Vec<String>,
    root: Selector,
    selectors: Vec<Selector>,
}

impl Rules {
    fn new(pubsub_all: bool) -> Rules {
        Rules {
            enabled: false,
            nopass: false,
            skip_sanitize: None,
            passwords: Vec::new(),
            root: Selector::new(pubsub_all),
            selectors: Vec::new(),
        }
    }

    /// Applies one rule.
    fn apply(&mut self, op: &[u8], pubsub_all: bool) -> Result<(), RuleError> {
        if op.is_empty() {
            return Ok(());
        }
        let is = |w: &str| op.eq_ignore_ascii_case(w.as_bytes());
        if is("on") {
            self.enabled = true;
        } else if is("off") {
            self.enabled = false;
        } else if is("skip-sanitize-payload") {
            self.skip_sanitize = Some(true);
        } else if is("sanitize-payload") {
            self.skip_sanitize = Some(false);
        } else if is("nopass") {
            self.nopass = true;
            self.passwords.clear();
        } else if is("resetpass") {
            self.nopass = false;
            self.passwords.clear();
        } else if op[0] == b'>' || op[0] == b'#' {
            let hash = password_hash(op)?;
            if !self.passwords.contains(&hash) {
                self.passwords.push(hash);
            }
            self.nopass = false;
        } else if op[0] == b'<' || op[0] == b'!' {
            let hash = password_hash(op)?;
            let at = self.passwords.iter().position(|p| *p == hash);
            self.passwords.remove(at.ok_or(RuleError::NoSuchPassword)?);
        } else if op[0] == b'(' && op[op.len() - 1] == b')' {
            let mut s = Selector::new(pubsub_all);
            for part in op[1..op.len() - 1]
                .split(|&b| b == b' ')
                .filter(|p| !p.is_empty())
            {
                s.apply(part)?;
            }
            self.selectors.push(s);
        } else if is("clearselectors") {
            self.selectors.clear();
        } else if is("reset") {
            self.nopass = false;
            self.passwords.clear();
            self.root.apply(b"resetkeys")?;
            self.root.allchannels = pubsub_all;
            self.root.channels.clear();
            self.enabled = false;
            self.skip_sanitize = Some(false);
            self.selectors.clear();
            self.root.apply(b"-@all")?;
        } else {
            self.root.apply(op)?;
        }
        Ok(())
    }

    fn all_selectors(&self) -> impl Iterator<Item = &Selector> {
        std::iter::once(&self.root).chain(&self.selectors)
    }

    /// Checks a command line; on denial the most relevant reason and position, picked as
    /// Redis picks among selectors.
    fn check(&self, id: usize, cmd: &Command, args: Args<'_>) -> Result<(), (Denied, usize)> {
        let mut worst = (Denied::Command, 0);
        for s in self.all_selectors() {
            match s.check(id, cmd, args) {
                Ok(()) => return Ok(()),
                Err(e) if e > worst => worst = e,
                Err(_) => {}
            }
        }
        Err(worst)
    }

    fn flag_names(&self) -> Vec<&'static str> {
        let mut out = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            out.push("nopass");
        }
        match self.skip_sanitize {
            Some(true) => out.push("skip-sanitize-payload"),
            Some(false) => out.push("sanitize-payload"),
            None => {}
        }
        out
    }

    /// The rules as ACL LIST and the aclfile show them (without `user <name>`).
    fn describe(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for f in self.flag_names() {
            out.extend_from_slice(f.as_bytes());
            out.push(b' ');
        }
        for p in &self.passwords {
            out.push(b'#');
            out.extend_from_slice(p.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(&self.root.describe());
        for s in &self.selectors {
            out.extend_from_slice(b" (");
            out.extend_from_slice(&s.describe());
            out.push(b')');
        }
        out
    }

    /// True if nothing can be denied: every command, key and channel.
    fn is_open(&self) -> bool {
        let r = &self.root;
        r.allcommands && r.allkeys && r.allchannels
    }

    fn password_ok(&self, pass: &[u8]) -> bool {
        if self.nopass {
            return true;
        }
        let hashed = hex(&sha256(pass));
        let mut ok = false;
        for p in &self.passwords {
            // Compare every byte of every hash, so timing tells nothing.
            let diff = p
                .bytes()
                .zip(hashed.bytes())
                .fold(0u8, |d, (a, b)| d | (a ^ b));
            ok |= diff == 0;
        }
        ok
    }
}

/// The stored hash of a `>pass`/`<pass` (hashed) or `#hash`/`!hash` (checked) rule.
fn password_hash(op: &[u8]) -> Result<String, RuleError> {
    if op[0] == b'>' || op[0] == b'<' {
        return Ok(hex(&sha256(&op[1..])));
    }
    let h = &op[1..];
    if h.len() != 64 || !h.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(RuleError::BadHash);
    }
    Ok(String::from_utf8_lossy(h).into_owned())
}

/// A selector as ACL GETUSER shows it.
pub struct SelectorText {
    pub commands: String,
    pub keys: Vec<u8>,
    pub channels: Vec<u8>,
}

/// A user as ACL GETUSER shows it.
pub struct UserDetails {
    pub flags: Vec<&'static str>,
    pub passwords: Vec<String>,
    pub root: SelectorText,
    pub selectors: Vec<SelectorText>,
}

impl Selector {
    fn text(&self) -> SelectorText {
        SelectorText {
            commands: String::from_utf8_lossy(&self.command_rules()).into_owned(),
            keys: self.keys_text(),
            channels: self.channels_text(),
        }
    }

    /// The key patterns as ACL GETUSER shows them.
    fn keys_text(&self) -> Vec<u8> {
        if self.allkeys {
            return b"~*".to_vec();
        }
        let mut out = Vec::new();
        for (i, (p, f)) in self.keys.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            Selector::key_rule(p, *f, &mut out);
        }
        out
    }

    fn channels_text(&self) -> Vec<u8> {
        if self.allchannels {
            return b"&*".to_vec();
        }
        let mut out = Vec::new();
        for (i, c) in self.channels.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            out.push(b'&');
            out.extend_from_slice(c);
        }
        out
    }
}

/// One user.
pub struct User {
    pub name: Vec<u8>,
    rules: RwLock<Rules>,
    /// Cached [`Rules::is_open`]: dispatch's whole check for such a user.
    open: AtomicBool,
}

impl User {
    fn new(name: &[u8], rules: Rules) -> Arc<User> {
        let open = rules.is_open();
        Arc::new(User {
            name: name.to_vec(),
            rules: RwLock::new(rules),
            open: AtomicBool::new(open),
        })
    }

    fn replace(&self, rules: Rules) {
        let mut r = self.rules.write();
        self.open.store(rules.is_open(), Relaxed);
        *r = rules;
    }

    /// True if this user may run anything: no check needed.
    #[inline]
    pub fn is_open(&self) -> bool {
        self.open.load(Relaxed)
    }

    pub fn name_str(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }

    /// Checks a command line (see [`Rules::check`]).
    pub fn check(&self, id: usize, cmd: &Command, args: Args<'_>) -> Result<(), (Denied, usize)> {
        if self.is_open() {
            return Ok(());
        }
        self.rules.read().check(id, cmd, args)
    }

    /// True if the user can use this channel (a pattern when `is_pattern`).
    pub fn channel_ok(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.rules
            .read()
            .all_selectors()
            .any(|s| s.channel_allowed(channel, is_pattern))
    }

    /// The rules as ACL LIST shows them.
    pub fn describe(&self) -> Vec<u8> {
        self.rules.read().describe()
    }

    /// What ACL GETUSER shows.
    pub fn details(&self) -> UserDetails {
        let r = self.rules.read();
        UserDetails {
            flags: r.flag_names(),
            passwords: r.passwords.clone(),
            root: r.root.text(),
            selectors: r.selectors.iter().map(Selector::text).collect(),
        }
    }

    /// A copy of the rules (to change and put back with [`Acl::set_user`]).
    pub fn rules(&self) -> Rules {
        self.rules.read().clone()
    }
}

/// One ACL log entry.
struct LogEntry {
    count: u64,
    reason: Denied,
    context: LogContext,
    object: Vec<u8>,
    username: Vec<u8>,
    ctime_ms: u64,
    client_info: String,
}

/// Entries denied within this many ms of each other with the same details are merged.
const LOG_GROUPING_MS: u64 = 60_000;

/// All users, the ACL log and what `requirepass` last set.
pub struct Acl {
    users: RwLock<BTreeMap<Vec<u8>, Arc<User>>>,
    pub default: Arc<User>,
    log: Mutex<VecDeque<LogEntry>>,
    requirepass: Mutex<Option<String>>,
    pub log_total: AtomicU64,
}

impl Default for Acl {
    fn default() -> Acl {
        let mut rules = Rules::new(true);
        for op in ["+@all", "~*", "&*", "on", "nopass"] {
            let _ = rules.apply(op.as_bytes(), true);
        }
        let default = User::new(b"default", rules);
        let mut users = BTreeMap::new();
        users.insert(b"default".to_vec(), default.clone());
        Acl {
            users: RwLock::new(users),
            default,
            log: Mutex::new(VecDeque::new()),
            requirepass: Mutex::new(None),
            log_total: AtomicU64::new(0),
        }
    }
}

/// True if `acl-pubsub-default` gives new users every channel.
fn pubsub_all(srv: &Server) -> bool {
    srv.config
        .get("acl-pubsub-default")
        .is_some_and(|v| v == "allchannels")
}

/// Joins selector rules given as several words (`(+get`, `~x)`) into one, as Redis does;
/// the error names the unmatched opening word.
pub fn merge_selectors(ops: &[&[u8]]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut open: Option<(usize, Vec<u8>)> = None;
    for (i, op) in ops.iter().enumerate() {
        if let Some((_, sel)) = open.as_mut() {
            sel.push(b' ');
            sel.extend_from_slice(op);
            if op.last() == Some(&b')') {
                out.push(open.take().map(|o| o.1).unwrap_or_default());
            }
            continue;
        }
        if op.first() == Some(&b'(') && op.last() != Some(&b')') {
            open = Some((i, op.to_vec()));
            continue;
        }
        if op.len() == 1 && op[0] == b'(' {
            open = Some((i, op.to_vec()));
            continue;
        }
        out.push(op.to_vec());
    }
    match open {
        Some((i, _)) => Err(format!(
            "Unmatched parenthesis in acl selector starting at '{}'.",
            String::from_utf8_lossy(ops[i])
        )),
        None => Ok(out),
    }
}

/// Applies ACL SETUSER's rule words to `rules`, selectors first merged across words; the
/// error is SETUSER's full reply text.
fn apply_setuser_ops(rules: &mut Rules, ops: &[&[u8]], all: bool) -> Result<(), String> {
    let merged = merge_selectors(ops).map_err(|e| format!("ERR {e}"))?;
    for op in &merged {
        rules.apply(op, all).map_err(|e| {
            format!(
                "ERR Error in ACL SETUSER modifier '{}': {}",
                String::from_utf8_lossy(op),
                e.message()
            )
        })?;
    }
    Ok(())
}

/// A new user's rules after ACL SETUSER's rule words, as ACL LIST prints them (without
/// `user <name>`), or SETUSER's error: the rule grammar alone, without a server (for the
/// fuzz targets and their regression tests).
pub fn setuser_rules_text(ops: &[&[u8]], pubsub_all: bool) -> Result<Vec<u8>, String> {
    let mut rules = Rules::new(pubsub_all);
    apply_setuser_ops(&mut rules, ops, pubsub_all)?;
    Ok(rules.describe())
}

impl Acl {
    /// A user by name.
    pub fn user(&self, name: &[u8]) -> Option<Arc<User>> {
        self.users.read().get(name).cloned()
    }

    /// Every user, by name.
    pub fn users(&self) -> Vec<Arc<User>> {
        self.users.read().values().cloned().collect()
    }

    /// ACL SETUSER: applies the rules to a copy of the user (a new one if absent) and
    /// stores it only if every rule is valid; pub/sub clients that lose a channel are
    /// disconnected. The error is the full reply text.
    pub fn set_user(&self, srv: &Server, name: &[u8], ops: &[&[u8]]) -> Result<(), String> {
        let all = pubsub_all(srv);
        let existing = self.user(name);
        let mut rules = existing
            .as_ref()
            .map_or_else(|| Rules::new(all), |u| u.rules());
        apply_setuser_ops(&mut rules, ops, all)?;
        match existing {
            Some(u) => {
                let revoked = channels_revoked(&u.rules(), &rules);
                u.replace(rules);
                if let Some(allowed) = revoked {
                    kill_pubsub_clients(srv, &u, &allowed);
                }
            }
            None => {
                self.users
                    .write()
                    .insert(name.to_vec(), User::new(name, rules));
            }
        }
        Ok(())
    }

    /// ACL DELUSER of one user: true if it existed. Its clients are disconnected.
    pub fn delete(&self, srv: &Server, me: &mut Client, name: &[u8]) -> bool {
        let Some(u) = self.users.write().remove(name) else {
            return false;
        };
        kill_clients_of(srv, Some(me), &u);
        true
    }

    /// Checks a username/password pair: the user, if valid and enabled.
    pub fn credentials(&self, name: &[u8], pass: &[u8]) -> Option<Arc<User>> {
        let u = self.user(name)?;
        let ok = {
            let r = u.rules.read();
            r.enabled && r.password_ok(pass)
        };
        ok.then_some(u)
    }

    /// True if new connections start authenticated (the default user is on and nopass).
    pub fn default_open_door(&self) -> bool {
        let r = self.default.rules.read();
        r.enabled && r.nopass
    }

    /// True if the default user has the nopass flag (protected mode, AUTH <pass>).
    pub fn default_nopass(&self) -> bool {
        self.default.rules.read().nopass
    }

    /// Applies `requirepass` to the default user when it changed (startup, CONFIG SET):
    /// empty makes it `nopass`, anything else its only password.
    pub fn sync_requirepass(&self, srv: &Server) {
        let pass = srv.config.get("requirepass").unwrap_or_default();
        let mut last = self.requirepass.lock();
        if last.as_ref() == Some(&pass) {
            return;
        }
        let mut rules = self.default.rules();
        let _ = rules.apply(b"resetpass", true);
        let op = if pass.is_empty() {
            b"nopass".to_vec()
        } else {
            format!(">{pass}").into_bytes()
        };
        let _ = rules.apply(&op, true);
        self.default.replace(rules);
        *last = Some(pass);
    }

    /// Adds a denial (or a failed AUTH) to the log, merging it with a recent similar entry.
    pub fn log(
        &self,
        srv: &Server,
        client: &Client,
        reason: Denied,
        context: LogContext,
        object: &[u8],
        username: Option<&[u8]>,
    ) {
        let now = crate::server::unix_ms();
        let username =
            username.map_or_else(|| client_user(srv, client).name.clone(), <[u8]>::to_vec);
        let client_info = crate::commands::connection::info_line(client, now);
        let max = srv.config.get_u64("acllog-max-len") as usize;
        self.log_total.fetch_add(1, Relaxed);
        let mut log = self.log.lock();
        let found = log.iter().take(10).position(|e| {
            e.reason == reason
                && e.context == context
                && e.ctime_ms.abs_diff(now) <= LOG_GROUPING_MS
                && e.object == object
                && e.username == username
        });
        if let Some(i) = found {
            if let Some(mut e) = log.remove(i) {
                e.count += 1;
                e.ctime_ms = now;
                e.client_info = client_info;
                log.push_front(e);
            }
            return;
        }
        log.push_front(LogEntry {
            count: 1,
            reason,
            context,
            object: object.to_vec(),
            username,
            ctime_ms: now,
            client_info,
        });
        log.truncate(max);
    }

    /// ACL LOG RESET.
    pub fn log_reset(&self) {
        self.log.lock().clear();
    }

    /// Writes the newest `count` log entries (ACL LOG).
    pub fn log_reply(&self, out: &mut flowkv_protocol::Reply<'_>, count: usize) {
        let log = self.log.lock();
        let now = crate::server::unix_ms();
        let n = count.min(log.len());
        out.array(n);
        for e in log.iter().take(n) {
            out.map(7);
            out.bulk(b"count");
            out.int(e.count as i64);
            out.bulk(b"reason");
            out.bulk(e.reason.reason().as_bytes());
            out.bulk(b"context");
            out.bulk(e.context.name().as_bytes());
            out.bulk(b"object");
            out.bulk(&e.object);
            out.bulk(b"username");
            out.bulk(&e.username);
            out.bulk(b"age-seconds");
            out.double(now.saturating_sub(e.ctime_ms) as f64 / 1000.0);
            out.bulk(b"client-info");
            out.bulk(e.client_info.as_bytes());
        }
    }

    /// The aclfile text: one `user` line per user.
    pub fn file_text(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for u in self.users() {
            out.extend_from_slice(b"user ");
            out.extend_from_slice(&u.name);
            out.push(b' ');
            out.extend_from_slice(&u.describe());
            out.push(b'\n');
        }
        out
    }

    /// Replaces every user with those of an aclfile's text (`name` is the file name used in
    /// errors). Nothing changes if any line is bad. The default user keeps its identity (its
    /// clients stay); every other old user's clients are disconnected.
    pub fn load_text(
        &self,
        srv: &Server,
        mut me: Option<&mut Client>,
        text: &str,
        name: &str,
    ) -> Result<(), String> {
        let all = pubsub_all(srv);
        let mut users: BTreeMap<Vec<u8>, Rules> = BTreeMap::new();
        let mut errors = String::new();
        for (i, line) in text.split('\n').enumerate() {
            let line = line.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
            if line.is_empty() {
                continue;
            }
            let words: Vec<&[u8]> = line
                .as_bytes()
                .split(|&b| b == b' ')
                .filter(|w| !w.is_empty())
                .collect();
            let n = i + 1;
            if words.len() < 2 || words[0] != b"user" {
                errors.push_str(&format!(
                    "{name}:{n} should start with user keyword followed by the username. "
                ));
                continue;
            }
            let uname = words[1];
            if users.contains_key(uname) {
                errors.push_str(&format!(
                    "WARNING: Duplicate user '{}' found on line {n}. ",
                    String::from_utf8_lossy(uname)
                ));
                continue;
            }
            let Ok(ops) = merge_selectors(&words[2..]) else {
                errors.push_str(&format!(
                    "{name}:{n}: Unmatched parenthesis in selector definition."
                ));
                continue;
            };
            let mut rules = Rules::new(all);
            let mut syntax = false;
            for op in &ops {
                let op = String::from_utf8_lossy(op);
                let op = op.trim_matches(|c| matches!(c, '\t' | '\r' | '\n'));
                match rules.apply(op.as_bytes(), all) {
                    Ok(()) => {}
                    Err(RuleError::UnknownName) => errors.push_str(&format!(
                        "{name}:{n}: Error in applying operation '{op}': {}. ",
                        RuleError::UnknownName.message()
                    )),
                    Err(e) if !syntax => {
                        errors.push_str(&format!("{name}:{n}: {}. ", e.message()));
                        syntax = true;
                    }
                    Err(_) => {}
                }
            }
            users.insert(uname.to_vec(), rules);
        }
        if !errors.is_empty() {
            errors.push_str(
                "WARNING: ACL errors detected, no change to the previously active ACL rules was \
                 performed",
            );
            return Err(errors);
        }
        let default_rules = users.remove(b"default".as_slice()).unwrap_or_else(|| {
            let mut r = Rules::new(all);
            for op in ["+@all", "~*", "&*", "on", "nopass"] {
                let _ = r.apply(op.as_bytes(), all);
            }
            r
        });
        self.default.replace(default_rules);
        let mut map = BTreeMap::new();
        map.insert(b"default".to_vec(), self.default.clone());
        for (n, r) in users {
            map.insert(n.clone(), User::new(&n, r));
        }
        let old = std::mem::replace(&mut *self.users.write(), map);
        for (n, u) in old {
            if n != b"default" {
                kill_clients_of(srv, me.as_deref_mut(), &u);
            }
        }
        Ok(())
    }
}

/// What a connection from `addr` gets instead of service in protected mode: on (the
/// default) while the default user needs no password, only loopback clients are served.
pub fn protected_mode_refusal(srv: &Server, addr: std::net::SocketAddr) -> Option<&'static [u8]> {
    let ip = addr.ip();
    let local = ip.is_loopback()
        || matches!(ip, std::net::IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()));
    if local || !srv.config.get_bool("protected-mode") || !srv.acl.default_nopass() {
        return None;
    }
    Some(PROTECTED_MODE_ERROR)
}

/// Redis's explanation, word for word (clients and operators search for it).
const PROTECTED_MODE_ERROR: &[u8] = b"-DENIED Redis is running in protected mode because \
protected mode is enabled and no password is set for the default user. In this mode \
connections are only accepted from the loopback interface. If you want to connect from \
external computers to Redis you may adopt one of the following solutions: 1) Just disable \
protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface \
by connecting to Redis from the same host the server is running, however MAKE SURE Redis is \
not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change \
permanent. 2) Alternatively you can just disable the protected mode by editing the Redis \
configuration file, and setting the protected mode option to 'no', and then restarting the \
server. 3) If you started the server manually just for testing, restart it with the \
'--protected-mode no' option. 4) Setup a an authentication password for the default user. \
NOTE: You only need to do one of the above things in order for the server to start accepting \
connections from the outside.\r\n";

/// The user a client is authenticated as.
pub fn client_user<'a>(srv: &'a Server, client: &'a Client) -> &'a Arc<User> {
    client.user.as_ref().unwrap_or(&srv.acl.default)
}

/// If the new rules may deny a channel the old ones allowed, the channel patterns the new
/// rules allow (to re-check subscribers against); `None` when nobody can lose anything.
fn channels_revoked(old: &Rules, new: &Rules) -> Option<Vec<Vec<u8>>> {
    if new.all_selectors().any(|s| s.allchannels) {
        return None;
    }
    let upcoming: Vec<Vec<u8>> = new
        .all_selectors()
        .flat_map(|s| s.channels.iter().cloned())
        .collect();
    let superset = old
        .all_selectors()
        .all(|s| !s.allchannels && s.channels.iter().all(|c| upcoming.contains(c)));
    (!superset).then_some(upcoming)
}

/// Disconnects the pub/sub clients of `user` subscribed to something `allowed` no longer
/// covers.
fn kill_pubsub_clients(srv: &Server, user: &Arc<User>, allowed: &[Vec<u8>]) {
    use crate::pubsub::Kind;
    let doomed = srv.pubsub().subscribers_where(|c, kind, name| {
        c.is_user(user) && !channel_in(allowed, name, kind == Kind::Pattern)
    });
    for c in &doomed {
        disconnect(srv, c);
    }
    if !doomed.is_empty() {
        srv.wake_workers();
    }
}

/// Asks a client's worker to close it; it leaves CLIENT LIST at once, as in Redis.
fn disconnect(srv: &Server, c: &crate::client::ClientShared) {
    c.killed.store(true, Relaxed);
    srv.clients.remove(c.id);
}

/// Disconnects every client authenticated as `user` (the caller after its reply).
fn kill_clients_of(srv: &Server, me: Option<&mut Client>, user: &Arc<User>) {
    let mut my_id = 0;
    if let Some(me) = me {
        my_id = me.id;
        if me.user.as_ref().is_some_and(|u| Arc::ptr_eq(u, user)) {
            me.user = None;
            *me.shared.user.lock() = None;
            me.authenticated = false;
            me.close_after_reply = true;
        }
    }
    let mut any = false;
    for c in srv.clients.all() {
        if c.id != my_id && c.is_user(user) {
            disconnect(srv, &c);
            any = true;
        }
    }
    if any {
        srv.wake_workers();
    }
}

/// Loads the users at startup: `user` lines of the config, or the aclfile (not both).
pub fn load_at_startup(srv: &Server) -> Result<(), String> {
    srv.acl.sync_requirepass(srv);
    let lines = srv.config.user_lines();
    let file = srv.config.get("aclfile").unwrap_or_default();
    if !file.is_empty() && !lines.is_empty() {
        return Err(
            "Configuring Redis with users defined in redis.conf and at the same setting \
                    an ACL file path is invalid. This setup is very likely to lead to \
                    configuration errors and security holes, please define either an ACL file \
                    or declare users directly in your redis.conf, but not both."
                .into(),
        );
    }
    let all = pubsub_all(srv);
    for words in lines {
        let Some((name, rest)) = words.split_first() else {
            continue;
        };
        let ops: Vec<&[u8]> = rest.iter().map(|w| w.as_bytes()).collect();
        let ops = merge_selectors(&ops)?;
        let mut rules = if name == "default" {
            Rules::new(all)
        } else {
            srv.acl
                .user(name.as_bytes())
                .map_or_else(|| Rules::new(all), |u| u.rules())
        };
        if name == "default" {
            let _ = rules.apply(b"reset", all);
        }
        for op in &ops {
            rules.apply(op, all).map_err(|e| {
                format!(
                    "Error loading ACL rule '{}' for the user named '{name}': {}",
                    String::from_utf8_lossy(op),
                    e.message()
                )
            })?;
        }
        if name == "default" {
            srv.acl.default.replace(rules);
        } else {
            srv.acl
                .users
                .write()
                .insert(name.as_bytes().to_vec(), User::new(name.as_bytes(), rules));
        }
    }
    if !file.is_empty() {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| format!("Error loading ACLs, opening file '{file}': {e}"))?;
        srv.acl
            .load_text(srv, None, &text, &file)
            .map_err(|e| format!("Aborting Redis startup because of ACL errors: {e}"))?;
    }
    Ok(())
}

/// Checks a command about to run for `client`. On denial it logs the event and returns
/// the reason (the caller words the error for its context).
#[inline]
pub fn check(
    srv: &Server,
    client: &Client,
    id: usize,
    cmd: &Command,
    args: Args<'_>,
    context: LogContext,
) -> Result<(), Denied> {
    let user = client_user(srv, client);
    if user.is_open() {
        return Ok(());
    }
    user.check(id, cmd, args).map_err(|(reason, pos)| {
        let object = match reason {
            Denied::Command => table().full_name(id).as_bytes().to_vec(),
            _ => args.get(pos).to_vec(),
        };
        srv.acl.log(srv, client, reason, context, &object, None);
        reason
    })
}

/// SHA-256 (FIPS 180-4) of `data`: password hashes are stored as Redis stores them. Written
/// here because the workspace has no SHA-2 crate yet; `sha2` should replace it.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 64];
        for (i, c) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let mut v = h;
        for i in 0..64 {
            let s1 = v[4].rotate_right(6) ^ v[4].rotate_right(11) ^ v[4].rotate_right(25);
            let ch = (v[4] & v[5]) ^ (!v[4] & v[6]);
            let t1 = v[7]
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = v[0].rotate_right(2) ^ v[0].rotate_right(13) ^ v[0].rotate_right(22);
            let maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
            let t2 = s0.wrapping_add(maj);
            v = [
                t1.wrapping_add(t2),
                v[0],
                v[1],
                v[2],
                v[3].wrapping_add(t1),
                v[4],
                v[5],
                v[6],
            ];
        }
        for (a, b) in h.iter_mut().zip(v) {
            *a = a.wrapping_add(b);
        }
    }
    let mut out = [0u8; 32];
    for (i, x) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

/// Lower-case hex of bytes.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_vectors() {
        assert_eq!(
            hex(&sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&sha256(b"p1")),
            "f64551fcd6f07823cb87971cfb91446425da18286b3ab1ef935e0cbd7a69f68a"
        );
        let long = vec![b'a'; 1000];
        assert_eq!(
            hex(&sha256(&long)),
            "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"
        );
    }

    #[test]
    fn describe_round_trips() {
        let mut r = Rules::new(false);
        for op in [
            "on",
            "~foo*",
            "%R~bar",
            "&ch",
            "+@read",
            "-get",
            "+select|0",
        ] {
            r.apply(op.as_bytes(), false).unwrap();
        }
        let text = String::from_utf8(r.describe()).unwrap();
        let mut again = Rules::new(false);
        for op in text.split(' ') {
            again.apply(op.as_bytes(), false).unwrap();
        }
        assert!(again.root == r.root, "{text}");
    }
}
