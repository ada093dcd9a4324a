//! The command table's types. One [`Command`] per command (and per subcommand) carries
//! everything the server needs to know about it: arity, flags, ACL categories, where its keys
//! are, its handler and its docs. Dispatch, `COMMAND`, ACL checks, MULTI queueing and the
//! shard locking all read this one description, so they can never disagree.
//!
//! Each command family (`commands/string.rs`…) exports a `COMMANDS` slice built with the
//! `const` builder below; [`crate::commands::table`] gathers them.

use flowkv_protocol::Args;
use smallvec::SmallVec;

use self::keyspec::KeySpecDef;

use crate::ctx::Ctx;
use crate::error::CmdResult;

/// A command implementation. It writes its reply into `ctx.out`, or returns an error that
/// dispatch writes.
pub type Handler = fn(&mut Ctx<'_>, Args<'_>) -> CmdResult;

/// Key positions (argument indexes) of one invocation.
pub type KeyPositions = SmallVec<[usize; 4]>;

/// Command flags, with the names `COMMAND INFO` reports.
pub mod flags {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const SKIP_MONITOR: u32 = 1 << 9;
    pub const SKIP_SLOWLOG: u32 = 1 << 10;
    pub const FAST: u32 = 1 << 11;
    pub const NO_AUTH: u32 = 1 << 12;
    pub const MAY_REPLICATE: u32 = 1 << 13;
    pub const NO_MANDATORY_KEYS: u32 = 1 << 14;
    pub const NO_ASYNC_LOADING: u32 = 1 << 15;
    pub const NO_MULTI: u32 = 1 << 16;
    pub const ALLOW_BUSY: u32 = 1 << 17;
    /// Not a Redis flag: the command works on the whole keyspace (KEYS, SCAN, FLUSHALL…)
    /// and locks every shard.
    pub const ALL_SHARDS: u32 = 1 << 31;
    /// Not a Redis flag: the command locks the keys of the commands queued by MULTI and the
    /// client's WATCHed keys (EXEC).
    pub const QUEUED_KEYS: u32 = 1 << 30;
    /// Not a Redis flag: the command reads every shard (INFO's keyspace section), so an
    /// EXEC that queues it locks them all rather than have it lock shards it may hold.
    pub const READS_ALL_SHARDS: u32 = 1 << 29;

    /// Flag names in `COMMAND INFO` order.
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (MAY_REPLICATE, "may_replicate"),
        (NO_MANDATORY_KEYS, "no_mandatory_keys"),
        (NO_ASYNC_LOADING, "no_async_loading"),
        (NO_MULTI, "no_multi"),
        (ALLOW_BUSY, "allow_busy"),
    ];
}

/// ACL categories. The ones Redis derives from flags (@write, @read, @admin, @dangerous,
/// @pubsub, @fast, @blocking, @slow) are added by [`Command::acl_categories`].
pub mod acl {
    pub const KEYSPACE: u32 = 1 << 0;
    pub const READ: u32 = 1 << 1;
    pub const WRITE: u32 = 1 << 2;
    pub const SET: u32 = 1 << 3;
    pub const SORTEDSET: u32 = 1 << 4;
    pub const LIST: u32 = 1 << 5;
    pub const HASH: u32 = 1 << 6;
    pub const STRING: u32 = 1 << 7;
    pub const BITMAP: u32 = 1 << 8;
    pub const HYPERLOGLOG: u32 = 1 << 9;
    pub const GEO: u32 = 1 << 10;
    pub const STREAM: u32 = 1 << 11;
    pub const PUBSUB: u32 = 1 << 12;
    pub const ADMIN: u32 = 1 << 13;
    pub const FAST: u32 = 1 << 14;
    pub const SLOW: u32 = 1 << 15;
    pub const BLOCKING: u32 = 1 << 16;
    pub const DANGEROUS: u32 = 1 << 17;
    pub const CONNECTION: u32 = 1 << 18;
    pub const TRANSACTION: u32 = 1 << 19;
    pub const SCRIPTING: u32 = 1 << 20;

    /// Category names, as ACL CAT and COMMAND INFO show them.
    pub const NAMES: &[(u32, &str)] = &[
        (KEYSPACE, "keyspace"),
        (READ, "read"),
        (WRITE, "write"),
        (SET, "set"),
        (SORTEDSET, "sortedset"),
        (LIST, "list"),
        (HASH, "hash"),
        (STRING, "string"),
        (BITMAP, "bitmap"),
        (HYPERLOGLOG, "hyperloglog"),
        (GEO, "geo"),
        (STREAM, "stream"),
        (PUBSUB, "pubsub"),
        (ADMIN, "admin"),
        (FAST, "fast"),
        (SLOW, "slow"),
        (BLOCKING, "blocking"),
        (DANGEROUS, "dangerous"),
        (CONNECTION, "connection"),
        (TRANSACTION, "transaction"),
        (SCRIPTING, "scripting"),
    ];
}

/// Where a command's keys are.
#[derive(Clone, Copy)]
pub enum KeySpec {
    /// No keys.
    None,
    /// Redis's legacy (first, last, step): `last` negative counts from the end (-1 = last
    /// argument).
    Range { first: i32, last: i32, step: i32 },
    /// Keys whose positions depend on other arguments (numkeys, STORE…): "movablekeys".
    /// The function may be given malformed arguments and must not panic.
    Custom(fn(Args<'_>) -> KeyPositions),
}

/// Redis 7 key specifications, declared per command for `COMMAND INFO` / `COMMAND
/// GETKEYSANDFLAGS` (cluster clients and proxies read them). They describe; they never drive
/// locking, which uses [`KeySpec`]. A command that declares none reports one spec derived from
/// its [`KeySpec`].
pub mod keyspec {
    pub const RO: u32 = 1 << 0;
    pub const RW: u32 = 1 << 1;
    pub const OW: u32 = 1 << 2;
    pub const RM: u32 = 1 << 3;
    pub const ACCESS: u32 = 1 << 4;
    pub const UPDATE: u32 = 1 << 5;
    pub const INSERT: u32 = 1 << 6;
    pub const DELETE: u32 = 1 << 7;
    pub const NOT_KEY: u32 = 1 << 8;
    pub const INCOMPLETE: u32 = 1 << 9;
    pub const VARIABLE_FLAGS: u32 = 1 << 10;

    /// Flag names in `COMMAND INFO` order.
    pub const NAMES: &[(u32, &str)] = &[
        (RO, "RO"),
        (RW, "RW"),
        (OW, "OW"),
        (RM, "RM"),
        (ACCESS, "access"),
        (UPDATE, "update"),
        (INSERT, "insert"),
        (DELETE, "delete"),
        (NOT_KEY, "not_key"),
        (INCOMPLETE, "incomplete"),
        (VARIABLE_FLAGS, "variable_flags"),
    ];

    /// Where the search for a spec's keys starts.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum BeginSearch {
        /// At this argument index.
        Index(i32),
        /// After the first `keyword` found scanning from `startfrom` (negative: from the end,
        /// backwards).
        Keyword {
            keyword: &'static str,
            startfrom: i32,
        },
        Unknown,
    }

    /// Which arguments from the start are keys.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum FindKeys {
        /// Up to `lastkey` (relative to the start; negative counts from the end) every
        /// `keystep`; `limit` > 1 stops at 1/limit of the remaining arguments.
        Range {
            lastkey: i32,
            keystep: i32,
            limit: i32,
        },
        /// The key count is at `keynumidx`, the first key at `firstkey` (both relative to
        /// the start), then every `keystep`.
        Keynum {
            keynumidx: i32,
            firstkey: i32,
            keystep: i32,
        },
        Unknown,
    }

    /// One key specification.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct KeySpecDef {
        /// Bits from this module.
        pub flags: u32,
        pub begin: BeginSearch,
        pub find: FindKeys,
        /// Free text shown as "notes" (empty: none).
        pub notes: &'static str,
    }

    /// A key spec without notes.
    pub const fn spec(flags: u32, begin: BeginSearch, find: FindKeys) -> KeySpecDef {
        KeySpecDef {
            flags,
            begin,
            find,
            notes: "",
        }
    }

    impl KeySpecDef {
        pub const fn notes(mut self, notes: &'static str) -> KeySpecDef {
            self.notes = notes;
            self
        }
    }

    pub const fn index(pos: i32) -> BeginSearch {
        BeginSearch::Index(pos)
    }

    pub const fn keyword(keyword: &'static str, startfrom: i32) -> BeginSearch {
        BeginSearch::Keyword { keyword, startfrom }
    }

    pub const fn range(lastkey: i32, keystep: i32, limit: i32) -> FindKeys {
        FindKeys::Range {
            lastkey,
            keystep,
            limit,
        }
    }

    pub const fn keynum(keynumidx: i32, firstkey: i32, keystep: i32) -> FindKeys {
        FindKeys::Keynum {
            keynumidx,
            firstkey,
            keystep,
        }
    }

    /// The single key at argument `pos`, the most common spec.
    pub const fn key_at(pos: i32, flags: u32) -> KeySpecDef {
        spec(flags, index(pos), range(0, 1, 0))
    }

    /// A spec whose keys only the command's own parsing finds (both parts unknown).
    pub const fn unknown(flags: u32) -> KeySpecDef {
        spec(flags, BeginSearch::Unknown, FindKeys::Unknown)
    }
}

/// The documentation group (`COMMAND DOCS` "group").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    Generic,
    String,
    List,
    Set,
    SortedSet,
    Hash,
    Pubsub,
    Transactions,
    Connection,
    Server,
    Scripting,
    Hyperloglog,
    Cluster,
    Geo,
    Stream,
    Bitmap,
    /// Commands a module adds in Redis; flowkv's RedisBloom- and redis-cell-compatible
    /// commands report it too, so tools see them where they would with the modules.
    Module,
}

impl Group {
    /// The name `COMMAND DOCS` uses.
    pub fn name(self) -> &'static str {
        match self {
            Group::Generic => "generic",
            Group::String => "string",
            Group::List => "list",
            Group::Set => "set",
            Group::SortedSet => "sorted-set",
            Group::Hash => "hash",
            Group::Pubsub => "pubsub",
            Group::Transactions => "transactions",
            Group::Connection => "connection",
            Group::Server => "server",
            Group::Scripting => "scripting",
            Group::Hyperloglog => "hyperloglog",
            Group::Cluster => "cluster",
            Group::Geo => "geo",
            Group::Stream => "stream",
            Group::Bitmap => "bitmap",
            Group::Module => "module",
        }
    }
}

/// One command or subcommand.
#[derive(Clone, Copy)]
pub struct Command {
    /// Lower-case name (for a subcommand, just the subcommand: `get` under `config`).
    pub name: &'static str,
    /// Redis arity: `n` exactly n arguments (name included), `-n` at least n.
    pub arity: i32,
    pub flags: u32,
    /// ACL categories besides the ones derived from flags.
    pub acl: u32,
    pub keys: KeySpec,
    /// For commands that reach keys their arguments don't name (SORT's BY/GET patterns):
    /// true when this invocation must lock every shard, like an ALL_SHARDS command.
    pub locks_all_when: Option<fn(Args<'_>) -> bool>,
    pub handler: Option<Handler>,
    /// Declared key specs (`None`: derived from `keys` when reported).
    pub key_specs: Option<&'static [KeySpecDef]>,
    /// Command tips (`nondeterministic_output`, `request_policy:all_shards`…).
    pub tips: &'static [&'static str],
    pub subcommands: &'static [Command],
    pub group: Group,
    pub summary: &'static str,
    pub since: &'static str,
    pub complexity: &'static str,
}

impl Command {
    /// A command with no flags, no keys and no handler yet.
    pub const fn new(name: &'static str, arity: i32, group: Group) -> Command {
        Command {
            name,
            arity,
            flags: 0,
            acl: 0,
            keys: KeySpec::None,
            locks_all_when: None,
            handler: None,
            key_specs: None,
            tips: &[],
            subcommands: &[],
            group,
            summary: "",
            since: "1.0.0",
            complexity: "",
        }
    }

    pub const fn flags(mut self, flags: u32) -> Command {
        self.flags = flags;
        self
    }

    pub const fn acl(mut self, acl: u32) -> Command {
        self.acl = acl;
        self
    }

    /// Keys at (first, last, step), Redis's legacy key positions.
    pub const fn keys(mut self, first: i32, last: i32, step: i32) -> Command {
        self.keys = KeySpec::Range { first, last, step };
        self
    }

    pub const fn movable_keys(mut self, f: fn(Args<'_>) -> KeyPositions) -> Command {
        self.keys = KeySpec::Custom(f);
        self
    }

    pub const fn locks_all_when(mut self, f: fn(Args<'_>) -> bool) -> Command {
        self.locks_all_when = Some(f);
        self
    }

    /// True if this invocation locks the whole keyspace rather than its keys' shards.
    #[inline]
    pub fn locks_all(&self, args: Args<'_>) -> bool {
        self.has(flags::ALL_SHARDS) || self.locks_all_when.is_some_and(|f| f(args))
    }

    pub const fn handler(mut self, h: Handler) -> Command {
        self.handler = Some(h);
        self
    }

    /// Redis's key specs for this command, as COMMAND INFO reports them.
    pub const fn key_specs(mut self, specs: &'static [KeySpecDef]) -> Command {
        self.key_specs = Some(specs);
        self
    }

    /// Redis's command tips, as COMMAND INFO reports them.
    pub const fn tips(mut self, tips: &'static [&'static str]) -> Command {
        self.tips = tips;
        self
    }

    pub const fn subcommands(mut self, subs: &'static [Command]) -> Command {
        self.subcommands = subs;
        self
    }

    /// Docs: one-line summary, version it appeared in, time complexity.
    pub const fn doc(
        mut self,
        summary: &'static str,
        since: &'static str,
        complexity: &'static str,
    ) -> Command {
        self.summary = summary;
        self.since = since;
        self.complexity = complexity;
        self
    }

    /// True if `flag` (from [`flags`]) is set.
    #[inline]
    pub const fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    /// True if the argument count `n` (name included) satisfies the arity.
    #[inline]
    pub fn arity_ok(&self, n: usize) -> bool {
        if self.arity >= 0 {
            n == self.arity as usize
        } else {
            n >= (-self.arity) as usize
        }
    }

    /// All ACL categories, including those Redis derives from the flags.
    pub fn acl_categories(&self) -> u32 {
        let mut c = self.acl;
        if self.has(flags::WRITE) {
            c |= acl::WRITE;
        }
        if self.has(flags::READONLY) && self.acl & acl::SCRIPTING == 0 {
            c |= acl::READ;
        }
        if self.has(flags::ADMIN) {
            c |= acl::ADMIN | acl::DANGEROUS;
        }
        if self.has(flags::PUBSUB) {
            c |= acl::PUBSUB;
        }
        if self.has(flags::FAST) {
            c |= acl::FAST;
        }
        if self.has(flags::BLOCKING) {
            c |= acl::BLOCKING;
        }
        if c & acl::FAST == 0 {
            c |= acl::SLOW;
        }
        c
    }

    /// The key specs COMMAND INFO reports: the declared ones, else one derived from the key
    /// positions (an `index` + `range` spec, or an `unknown` one marked `incomplete` for
    /// movable keys) with access flags from the read/write flags.
    pub fn reported_key_specs(&self) -> Vec<KeySpecDef> {
        use keyspec::*;
        if let Some(specs) = self.key_specs {
            return specs.to_vec();
        }
        let access = if self.has(flags::WRITE) {
            RW | UPDATE
        } else if self.has(flags::READONLY) {
            RO | ACCESS
        } else {
            RW | ACCESS
        };
        match self.keys {
            KeySpec::None => Vec::new(),
            KeySpec::Range { first, last, step } => {
                let lastkey = if last < 0 { last } else { last - first };
                vec![spec(access, index(first), range(lastkey, step, 0))]
            }
            KeySpec::Custom(_) => vec![unknown(access | INCOMPLETE)],
        }
    }

    /// Legacy (first, last, step) and the "movablekeys" flag, computed from the reported key
    /// specs as Redis does: one index + range spec is the range itself; otherwise the
    /// consecutive step-1 range specs are merged, and anything else (another kind of spec, a
    /// gap, a step, an incomplete spec) makes the keys movable.
    pub fn legacy_key_range(&self) -> ((i32, i32, i32), bool) {
        use keyspec::*;
        let specs = self.reported_key_specs();
        if specs.is_empty() {
            return ((0, 0, 0), false);
        }
        if let [s] = specs.as_slice() {
            if let (
                BeginSearch::Index(first),
                FindKeys::Range {
                    lastkey, keystep, ..
                },
            ) = (s.begin, s.find)
            {
                let last = if lastkey >= 0 {
                    lastkey + first
                } else {
                    lastkey
                };
                return ((first, last, keystep), s.flags & INCOMPLETE != 0);
            }
        }
        let mut movable = false;
        let (mut first, mut last, mut prev_last) = (i32::MAX, 0i32, 0i32);
        for s in &specs {
            let (
                BeginSearch::Index(pos),
                FindKeys::Range {
                    lastkey, keystep, ..
                },
            ) = (s.begin, s.find)
            else {
                movable = true;
                continue;
            };
            if keystep != 1 || (prev_last != 0 && prev_last != pos - 1) {
                movable = true;
                continue;
            }
            movable |= s.flags & INCOMPLETE != 0;
            first = first.min(pos);
            let abs = if lastkey >= 0 { lastkey + pos } else { lastkey };
            // Negative (from the end) wins over any absolute index, as in Redis.
            if (abs as u32) > (last as u32) {
                last = abs;
            }
            prev_last = last;
        }
        if first == i32::MAX {
            return ((0, 0, 0), true);
        }
        ((first, last, 1), movable)
    }

    /// The key positions of one invocation (for locking, COMMAND GETKEYS, ACL key checks).
    pub fn key_positions(&self, args: Args<'_>) -> KeyPositions {
        let mut out = KeyPositions::new();
        match self.keys {
            KeySpec::None => {}
            KeySpec::Range { first, last, step } => {
                let n = args.len() as i32;
                let last = if last < 0 { n + last } else { last.min(n - 1) };
                let mut i = first;
                while i <= last && i < n {
                    out.push(i as usize);
                    i += step.max(1);
                }
            }
            KeySpec::Custom(f) => out = f(args),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::commands::table;

    use super::KeySpec;

    /// Declared key specs are for reporting only, so for a command locked by a fixed range,
    /// the legacy range they give must be that range: COMMAND INFO and locking agree.
    #[test]
    fn declared_specs_agree_with_lock_ranges() {
        for (name, cmd) in &table().flat {
            if let (Some(_), KeySpec::Range { first, last, step }) = (cmd.key_specs, cmd.keys) {
                let (legacy, movable) = cmd.legacy_key_range();
                assert!(!movable, "{name}: fixed lock range but movable specs");
                assert_eq!(legacy, (first, last, step), "{name}");
            }
        }
    }
}
