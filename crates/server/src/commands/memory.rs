//! MEMORY: what a key costs.

use flowkv_protocol::Args;

use crate::command::keyspec as ks;
use crate::command::{flags::*, Command, Group};
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};

pub static COMMANDS: &[Command] = &[Command::new("memory", -2, Group::Server)
    .doc(
        "A container for memory diagnostics commands",
        "4.0.0",
        "Depends on subcommand.",
    )
    .subcommands(&[
        Command::new("usage", -3, Group::Server)
            .flags(READONLY)
            .keys(2, 2, 1)
            .key_specs(&[ks::key_at(2, ks::RO)])
            .handler(usage)
            .doc(
                "Estimate the memory usage of a key",
                "4.0.0",
                "O(N) where N is the number of samples.",
            ),
        Command::new("help", 2, Group::Server)
            .flags(LOADING | STALE)
            .handler(help)
            .doc(
                "Show helpful text about the different subcommands",
                "4.0.0",
                "O(1)",
            ),
    ])];

/// Bytes jemalloc really hands out for a request of `n` bytes: its size classes are
/// multiples of 8/16 up to 128, then four classes per power of two.
pub fn alloc_size(n: usize) -> usize {
    match n {
        0 => 0,
        1..=8 => 8,
        9..=128 => n.div_ceil(16) * 16,
        _ => {
            let step = (n.next_power_of_two() / 8).max(16);
            n.div_ceil(step) * step
        }
    }
}

/// Bytes of one keyspace dict node (entry plus chain pointer) and its bucket slot.
const NODE_BYTES: usize = 48 + 8;

/// MEMORY USAGE key [SAMPLES count]: the node, the key/TTL/inline-value allocation and the
/// value's own heap, rounded to allocator size classes. Strings are measured exactly, so
/// SAMPLES is accepted and validated but has nothing to sample yet.
fn usage(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    match args.len() {
        3 => {}
        5 if args.get(3).eq_ignore_ascii_case(b"samples") => {
            let n = flowkv_store::num::parse_i64(args.get(4)).ok_or(CmdError::NotInteger)?;
            if n < 0 {
                return Err(CmdError::Syntax);
            }
        }
        _ => return Err(CmdError::Syntax),
    }
    let (mut keys, out) = ctx.keys_out();
    match keys.peek(args.get(2)) {
        None => out.null(),
        Some(e) => out.int((NODE_BYTES + alloc_size(e.heap_bytes())) as i64),
    }
    Ok(())
}

fn help(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    const LINES: &[&str] = &[
        "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "USAGE <key> [SAMPLES <count>]",
        "    Estimate the bytes <key> and its value take. Collections are sampled",
        "    <count> elements deep (default 5; 0 samples all).",
        "HELP",
        "    Print this help.",
    ];
    ctx.help(LINES);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::alloc_size;

    #[test]
    fn jemalloc_classes() {
        assert_eq!(alloc_size(5), 8);
        assert_eq!(alloc_size(17), 32);
        assert_eq!(alloc_size(116), 128);
        assert_eq!(alloc_size(129), 160);
        assert_eq!(alloc_size(33_016), 40_960);
    }
}
