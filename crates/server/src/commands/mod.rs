//! The command table: every family's commands gathered into one lookup structure that
//! dispatch, COMMAND, ACL and MULTI all read.

/// Command names are looked up once per command: a fast hasher matters more than DoS
/// resistance here, since the table's keys are fixed and clients can't add to it.
type HashMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;
use std::sync::OnceLock;

use flowkv_protocol::Args;
use flowkv_store::num::parse_i64;

use crate::command::{Command, KeyPositions};

pub mod acl;
pub mod bitmap;
pub mod bloom;
pub mod cache;
pub mod cluster;
pub mod collection_args;
pub mod config;
pub mod connection;
pub mod debug;
pub mod expire;
pub mod geo;
pub mod hash;
pub mod hll;
pub mod introspect;
pub mod keys;
pub mod latency;
pub mod list;
pub mod lolwut;
pub mod memory;
pub mod migrate;
pub mod module;
pub mod monitor;
pub mod multi;
pub mod persist;
pub mod pubsub;
pub mod replication;
pub mod scripting;
pub mod server;
pub mod set;
pub mod slowlog;
pub mod sort;
pub mod stream;
pub mod stream_group;
pub mod string;
pub mod throttle;
pub mod zset;

/// HRANDFIELD / SRANDMEMBER / ZRANDMEMBER with a negative count repeat elements; this caps
/// how many one command may return, so a reply can't grow without bound (Redis relies on the
/// output buffer limit there, which is off for normal clients by default).
pub(crate) const MAX_RANDOM_REPEATS: u64 = 1 << 24;

/// Key positions of a `numkeys key...` command (SINTERCARD, ZUNION, LMPOP…): the count is
/// at argument `at`, the keys follow it, and at least `trailing` arguments must remain after
/// them (1 for the MPOP commands' LEFT|RIGHT / MIN|MAX). A count that doesn't parse, is below
/// 1 or doesn't fit gives no keys: the handler then fails before touching any key, so nothing
/// needs locking.
pub(crate) fn numkeys_positions(args: Args<'_>, at: usize, trailing: usize) -> KeyPositions {
    let room = (args.len() as u64).saturating_sub((at + 1 + trailing) as u64);
    match args.try_get(at).and_then(parse_i64) {
        Some(n) if n >= 1 && n as u64 <= room => (at + 1..at + 1 + n as usize).collect(),
        _ => KeyPositions::new(),
    }
}

/// Every family's commands.
fn families() -> impl Iterator<Item = &'static Command> {
    [
        connection::COMMANDS,
        keys::COMMANDS,
        expire::COMMANDS,
        string::COMMANDS,
        bitmap::COMMANDS,
        hash::COMMANDS,
        list::COMMANDS,
        set::COMMANDS,
        zset::COMMANDS,
        stream::COMMANDS,
        stream_group::COMMANDS,
        hll::COMMANDS,
        geo::COMMANDS,
        sort::COMMANDS,
        multi::COMMANDS,
        scripting::COMMANDS,
        pubsub::COMMANDS,
        server::COMMANDS,
        memory::COMMANDS,
        config::COMMANDS,
        introspect::COMMANDS,
        debug::COMMANDS,
        persist::COMMANDS,
        migrate::COMMANDS,
        replication::COMMANDS,
        slowlog::COMMANDS,
        acl::COMMANDS,
        latency::COMMANDS,
        monitor::COMMANDS,
        bloom::COMMANDS,
        throttle::COMMANDS,
        cache::COMMANDS,
        cluster::COMMANDS,
        module::COMMANDS,
        lolwut::COMMANDS,
    ]
    .into_iter()
    .flatten()
}

/// The assembled command table.
pub struct Table {
    /// Top-level commands by lower-case name: the names clients call them by, so a
    /// `rename-command` changes this map (and nothing else).
    by_name: HashMap<&'static str, (usize, &'static Command)>,
    /// Names of the commands `rename-command` removed (an empty new name); usually empty.
    removed: Vec<&'static str>,
    /// Subcommands by (parent id, lower-case name).
    subs: HashMap<(usize, &'static str), (usize, &'static Command)>,
    /// Every command and subcommand with its full name (`config|get`), indexed by id.
    pub flat: Vec<(String, &'static Command)>,
}

/// The result of looking up a command line.
pub enum Lookup {
    /// Found: (id, command). For a container command, the subcommand.
    Found(usize, &'static Command),
    /// No such command.
    Unknown,
    /// The container exists but not this subcommand (the container's name is given).
    UnknownSub(&'static Command),
}

static TABLE: OnceLock<Table> = OnceLock::new();

/// The process-wide table, built on first use (without renames unless [`apply_renames`]
/// ran first).
pub fn table() -> &'static Table {
    TABLE.get_or_init(|| Table::build(&[]).unwrap_or_else(|e| panic!("{e}")))
}

/// Applies the configuration's `rename-command <name> <new-name>` lines, in order, as
/// Redis does when it reads its config file: the old name is unknown afterwards, the new
/// one calls the command, and an empty new name removes it. They change only the name
/// clients call the command by — COMMAND INFO, commandstats and ACL rules keep the
/// original name, as in Redis. Must run at start-up, before anything uses the table; with
/// no renames the table is the plain one and lookups cost exactly the same.
pub fn apply_renames(renames: &[(String, String)]) -> Result<(), String> {
    if renames.is_empty() {
        return Ok(());
    }
    let t = Table::build(renames)?;
    TABLE
        .set(t)
        .map_err(|_| "rename-command applied after the command table was built".to_string())
}

impl Table {
    /// Builds the table from every family, then applies `renames`.
    fn build(renames: &[(String, String)]) -> Result<Table, String> {
        let mut t = Table {
            by_name: HashMap::default(),
            removed: Vec::new(),
            subs: HashMap::default(),
            flat: Vec::new(),
        };
        for cmd in families() {
            let id = t.flat.len();
            t.flat.push((cmd.name.to_string(), cmd));
            if t.by_name.insert(cmd.name, (id, cmd)).is_some() {
                return Err(format!("duplicate command {}", cmd.name));
            }
            for sub in cmd.subcommands {
                let sid = t.flat.len();
                t.flat.push((format!("{}|{}", cmd.name, sub.name), sub));
                t.subs.insert((id, sub.name), (sid, sub));
            }
        }
        for (old, new) in renames {
            t.rename(old, new).map_err(|why| {
                format!(
                    "\n*** FATAL CONFIG FILE ERROR ***\n>>> 'rename-command {old} {new}'\n{why}"
                )
            })?;
        }
        Ok(t)
    }

    /// One `rename-command`, with Redis's errors.
    fn rename(&mut self, old: &str, new: &str) -> Result<(), &'static str> {
        let (id, cmd) = self
            .by_name
            .remove(old.to_ascii_lowercase().as_str())
            .ok_or("No such command in rename-command")?;
        if new.is_empty() {
            self.removed.push(cmd.name);
            return Ok(());
        }
        let new = new.to_ascii_lowercase();
        if self.by_name.contains_key(new.as_str()) {
            return Err("Target command name already exists");
        }
        // Leaked once at start-up, so the table keeps `&'static str` keys and lookups
        // cost the same with or without renames.
        self.by_name
            .insert(Box::leak(new.into_boxed_str()), (id, cmd));
        Ok(())
    }
}

/// Lower-cases a short name into a stack buffer; `None` if too long to be a command name.
fn lower<'b>(name: &[u8], buf: &'b mut [u8; 32]) -> Option<&'b str> {
    let b = buf.get_mut(..name.len())?;
    for (d, s) in b.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    std::str::from_utf8(b).ok()
}

impl Table {
    /// Finds the command (or subcommand) an argument vector names. Does not check arity.
    pub fn lookup(&self, args: Args<'_>) -> Lookup {
        let mut buf = [0u8; 32];
        let Some((id, cmd)) = lower(args.get(0), &mut buf).and_then(|n| self.by_name.get(n)) else {
            return Lookup::Unknown;
        };
        if cmd.subcommands.is_empty() || args.len() < 2 {
            return Lookup::Found(*id, cmd);
        }
        let mut buf = [0u8; 32];
        match lower(args.get(1), &mut buf).and_then(|n| self.subs.get(&(*id, n))) {
            Some((sid, sub)) => Lookup::Found(*sid, sub),
            None => Lookup::UnknownSub(cmd),
        }
    }

    /// A top-level command by name (case-insensitive).
    pub fn get(&self, name: &[u8]) -> Option<&'static Command> {
        let mut buf = [0u8; 32];
        lower(name, &mut buf)
            .and_then(|n| self.by_name.get(n))
            .map(|(_, c)| *c)
    }

    /// Every command and subcommand with its full name, in table order, without those
    /// `rename-command` removed (COMMAND LIST).
    pub fn listed(&self) -> impl Iterator<Item = &(String, &'static Command)> + '_ {
        self.flat.iter().filter(|(full, _)| {
            self.removed.is_empty() || {
                let top = full.split('|').next().unwrap_or_default();
                !self.removed.contains(&top)
            }
        })
    }

    /// The top-level commands, in table order, without those `rename-command` removed.
    pub fn top_level(&self) -> impl Iterator<Item = &'static Command> + '_ {
        self.listed()
            .filter(|(n, _)| !n.contains('|'))
            .map(|(_, c)| *c)
    }

    /// A command or subcommand (`config|get`) by the name clients call it (renames
    /// applied), with its full original name: what COMMAND INFO and COMMAND DOCS show.
    pub fn find(&self, name: &[u8]) -> Option<(&str, &'static Command)> {
        let name = std::str::from_utf8(name).ok()?.to_ascii_lowercase();
        let (top, sub) = match name.split_once('|') {
            Some((top, sub)) => (top, Some(sub)),
            None => (name.as_str(), None),
        };
        let &(id, _) = self.by_name.get(top)?;
        let id = match sub {
            None => id,
            Some(sub) => self.subs.get(&(id, sub))?.0,
        };
        Some((self.full_name(id), self.flat[id].1))
    }

    /// The full name (`config|get`) of a command id.
    pub fn full_name(&self, id: usize) -> &str {
        &self.flat[id].0
    }
}
