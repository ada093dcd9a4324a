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
pub mod memory;
pub mod monitor;
pub mod multi;
pub mod persist;
pub mod pubsub;
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
        slowlog::COMMANDS,
        acl::COMMANDS,
        latency::COMMANDS,
        monitor::COMMANDS,
        bloom::COMMANDS,
        throttle::COMMANDS,
        cache::COMMANDS,
    ]
    .into_iter()
    .flatten()
}

/// The assembled command table.
pub struct Table {
    /// Top-level commands by lower-case name.
    by_name: HashMap<&'static str, (usize, &'static Command)>,
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

/// The process-wide table, built on first use.
pub fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = Table {
            by_name: HashMap::default(),
            subs: HashMap::default(),
            flat: Vec::new(),
        };
        for cmd in families() {
            let id = t.flat.len();
            t.flat.push((cmd.name.to_string(), cmd));
            assert!(
                t.by_name.insert(cmd.name, (id, cmd)).is_none(),
                "duplicate command {}",
                cmd.name
            );
            for sub in cmd.subcommands {
                let sid = t.flat.len();
                t.flat.push((format!("{}|{}", cmd.name, sub.name), sub));
                t.subs.insert((id, sub.name), (sid, sub));
            }
        }
        t
    })
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

    /// The top-level commands, in table order.
    pub fn top_level(&self) -> impl Iterator<Item = &'static Command> + '_ {
        self.flat
            .iter()
            .filter(|(n, _)| !n.contains('|'))
            .map(|(_, c)| *c)
    }

    /// The full name (`config|get`) of a command id.
    pub fn full_name(&self, id: usize) -> &str {
        &self.flat[id].0
    }
}
