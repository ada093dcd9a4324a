//! LATENCY: the latency monitor's events (LATEST, HISTORY, RESET, GRAPH, DOCTOR) and the
//! per-command latency histograms of `latency-tracking` (HISTOGRAM). The data lives in
//! [`crate::latency`]; this family only reports it.

use std::fmt::Write as _;

use flowkv_protocol::Args;

use crate::command::{flags::*, Command, Group};
use crate::commands::table;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::latency::Totals;
use crate::server::{unix_ms, Server};

pub static COMMANDS: &[Command] = &[Command::new("latency", -2, Group::Server)
    .subcommands(SUBCOMMANDS)
    .doc(
        "A container for latency diagnostics commands",
        "2.8.13",
        "Depends on subcommand.",
    )];

const ADMIN_FLAGS: u32 = ADMIN | NOSCRIPT | LOADING | STALE;
const SPECIAL: &[&str] = &[
    "nondeterministic_output",
    "request_policy:all_nodes",
    "response_policy:special",
];

static SUBCOMMANDS: &[Command] = &[
    Command::new("doctor", 2, Group::Server)
        .flags(ADMIN_FLAGS)
        .tips(SPECIAL)
        .handler(doctor)
        .doc(
            "Return a human readable latency analysis report.",
            "2.8.13",
            "O(1)",
        ),
    Command::new("reset", -2, Group::Server)
        .flags(ADMIN_FLAGS)
        .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"])
        .handler(reset)
        .doc(
            "Reset latency data for one or more events.",
            "2.8.13",
            "O(1)",
        ),
    Command::new("graph", 3, Group::Server)
        .flags(ADMIN_FLAGS)
        .tips(SPECIAL)
        .handler(graph)
        .doc("Return a latency graph for the event.", "2.8.13", "O(1)"),
    Command::new("help", 2, Group::Server)
        .flags(LOADING | STALE)
        .handler(help)
        .doc(
            "Show helpful text about the different subcommands.",
            "2.8.13",
            "O(1)",
        ),
    Command::new("histogram", -2, Group::Server)
        .flags(ADMIN_FLAGS)
        .tips(SPECIAL)
        .handler(histogram)
        .doc(
            "Return the cumulative distribution of latencies of a subset of commands or all.",
            "7.0.0",
            "O(N) where N is the number of commands with latency information being retrieved.",
        ),
    Command::new("latest", 2, Group::Server)
        .flags(ADMIN_FLAGS)
        .tips(SPECIAL)
        .handler(latest)
        .doc(
            "Return the latest latency samples for all events.",
            "2.8.13",
            "O(1)",
        ),
    Command::new("history", 3, Group::Server)
        .flags(ADMIN_FLAGS)
        .tips(SPECIAL)
        .handler(history)
        .doc(
            "Return timestamp-latency samples for the event.",
            "2.8.13",
            "O(1)",
        ),
];

/// LATENCY LATEST: [event, unix time, latest ms, all-time max ms] per event.
fn latest(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let events = ctx.srv.latency.latest();
    ctx.out.array(events.len());
    for (name, time, ms, max) in events {
        ctx.out.array(4);
        ctx.out.bulk(name.as_bytes());
        ctx.out.int(time as i64);
        ctx.out.int(ms as i64);
        ctx.out.int(max as i64);
    }
    Ok(())
}

/// LATENCY HISTORY event: [unix time, ms] per kept sample, oldest first.
fn history(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let samples = ctx.srv.latency.history(args.get(2));
    ctx.out.array(samples.len());
    for (time, ms) in samples {
        ctx.out.array(2);
        ctx.out.int(time as i64);
        ctx.out.int(ms as i64);
    }
    Ok(())
}

/// LATENCY RESET [event ...]: the number of event series dropped.
fn reset(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let events: Vec<&[u8]> = args.iter().skip(2).collect();
    let n = ctx.srv.latency.reset(&events);
    ctx.out.int(n as i64);
    Ok(())
}

/// Rows of the LATENCY GRAPH chart.
const GRAPH_ROWS: u64 = 4;
/// Columns (samples) LATENCY GRAPH shows at most: the newest ones.
const GRAPH_COLS: usize = 80;

/// LATENCY GRAPH event: a column chart of the event's samples, oldest on the left.
fn graph(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let event = args.get(2);
    let samples = ctx.srv.latency.history(event);
    let name = String::from_utf8_lossy(event);
    if samples.is_empty() {
        return Err(CmdError::msg(format!(
            "ERR No samples available for event '{name}'"
        )));
    }
    let all_time = ctx
        .srv
        .latency
        .latest()
        .into_iter()
        .find(|e| e.0.as_bytes() == event)
        .map_or(0, |e| e.3);
    let shown = &samples[samples.len().saturating_sub(GRAPH_COLS)..];
    ctx.out.verbatim(
        b"txt",
        render_graph(&name, shown, all_time, unix_ms() / 1000).as_bytes(),
    );
    Ok(())
}

/// The chart text: a header, a rule, [`GRAPH_ROWS`] rows where each column is one sample
/// (`#` up to its height, scaled between the lowest and highest shown), and the age of the
/// oldest and newest sample.
fn render_graph(name: &str, samples: &[(u64, u64)], all_time: u64, now: u64) -> String {
    let high = samples.iter().map(|s| s.1).max().unwrap_or(0);
    let low = samples.iter().map(|s| s.1).min().unwrap_or(0);
    let mut g = format!("{name} - high {high} ms, low {low} ms (all time high {all_time} ms)\n");
    g.push_str(&"-".repeat(GRAPH_COLS));
    g.push('\n');
    let height = |ms: u64| {
        if high == low {
            GRAPH_ROWS
        } else {
            1 + (ms - low) * (GRAPH_ROWS - 1) / (high - low)
        }
    };
    for row in (1..=GRAPH_ROWS).rev() {
        let line: String = samples
            .iter()
            .map(|s| if height(s.1) >= row { '#' } else { ' ' })
            .collect();
        g.push_str(line.trim_end());
        g.push('\n');
    }
    let age = |t: u64| ago(now.saturating_sub(t));
    let _ = writeln!(
        g,
        "oldest sample {} ago, newest {} ago",
        age(samples[0].0),
        age(samples[samples.len() - 1].0)
    );
    g
}

/// A duration in the largest whole unit: `42s`, `3m`, `5h`, `2d`.
fn ago(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// LATENCY DOCTOR: a plain-language report on the recorded events, with advice.
fn doctor(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let report = doctor_report(ctx.srv);
    ctx.out.verbatim(b"txt", report.as_bytes());
    Ok(())
}

fn doctor_report(srv: &Server) -> String {
    let threshold = srv
        .config
        .hot
        .latency_monitor_threshold
        .load(std::sync::atomic::Ordering::Relaxed);
    if threshold == 0 {
        return "The latency monitor is off: set latency-monitor-threshold to a number of \
                milliseconds (CONFIG SET latency-monitor-threshold 100) and flowkv will \
                record every event that takes at least that long.\n"
            .to_string();
    }
    let events = srv.latency.latest();
    if events.is_empty() {
        return format!(
            "No latency spike of {threshold} ms or more has been recorded since the monitor \
             was last reset. Nothing to worry about.\n"
        );
    }
    let mut r = format!(
        "Latency spikes of {threshold} ms or more were recorded for {} event(s):\n\n",
        events.len()
    );
    for (i, (name, _, _, max)) in events.iter().enumerate() {
        let samples = srv.latency.history(name.as_bytes());
        let sum: u64 = samples.iter().map(|s| s.1).sum();
        let avg = sum / samples.len().max(1) as u64;
        let _ = writeln!(
            r,
            "{}. {name}: {} spike(s) in the kept history, average {avg} ms, worst {max} ms.",
            i + 1,
            samples.len(),
        );
    }
    r.push_str("\nAdvice:\n");
    let has = |e: &str| events.iter().any(|x| x.0 == e);
    if has("command") || has("fast-command") {
        r.push_str(
            "- Slow commands: read SLOWLOG GET to find them. Avoid O(N) commands on big \
             values (KEYS, SMEMBERS, HGETALL, LRANGE 0 -1, SORT…); use SCAN and its \
             variants, and split big values.\n",
        );
    }
    if has("fast-command") {
        r.push_str(
            "- O(1) commands were slow: the machine may be overloaded or swapping, or a \
             worker shares its core with other busy processes.\n",
        );
    }
    if has("expire-cycle") {
        r.push_str(
            "- The active expiry cycle was slow: many keys expire at the same time, or \
             big values expire. Spread expiry times (add jitter to TTLs) and consider \
             lazyfree-lazy-expire yes.\n",
        );
    }
    if has("snapshot") {
        r.push_str("- Saving a snapshot held the keyspace: save less often or at quieter times.\n");
    }
    r
}

/// LATENCY HISTOGRAM [command ...]: per command with timed calls, its call count and
/// cumulative latency distribution. A container command's name includes its subcommands;
/// unknown names are skipped.
fn histogram(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let t = table();
    let wanted: Vec<String> = args
        .iter()
        .skip(2)
        .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
        .collect();
    let selected = |name: &str| {
        wanted.is_empty()
            || wanted
                .iter()
                .any(|w| name == w || name.split_once('|').is_some_and(|(parent, _)| parent == w))
    };
    let mut found = Vec::new();
    for (id, (name, _)) in t.flat.iter().enumerate() {
        if !selected(name) {
            continue;
        }
        let totals = Totals::of(ctx.srv.workers.iter().map(|w| &w.cmd[id].hist));
        if totals.count() > 0 {
            found.push((name.as_str(), totals));
        }
    }
    let out = &mut ctx.out;
    out.map(found.len());
    for (name, totals) in found {
        out.bulk(name.as_bytes());
        out.map(2);
        out.bulk(b"calls");
        out.int(totals.count() as i64);
        out.bulk(b"histogram_usec");
        let cdf = totals.cdf();
        out.map(cdf.len());
        for (us, n) in cdf {
            out.int(us as i64);
            out.int(n as i64);
        }
    }
    Ok(())
}

fn help(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    ctx.help(&[
        "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DOCTOR",
        "    Reply with a plain-language analysis of the recorded latency events.",
        "GRAPH <event>",
        "    Reply with a text chart of the samples of <event>.",
        "HISTORY <event>",
        "    Reply with the (unix time, milliseconds) samples kept for <event>.",
        "LATEST",
        "    Reply with the latest sample and the maximum of every event.",
        "RESET [<event> ...]",
        "    Drop the samples of the events given, or of all events.",
        "HISTOGRAM [<command> ...]",
        "    Reply with the call count and cumulative latency distribution (microseconds)",
        "    of the commands given, or of every command that has run.",
        "HELP",
        "    Print this help.",
    ]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_scales_columns() {
        let g = render_graph("command", &[(100, 10), (101, 40), (102, 25)], 50, 130);
        let lines: Vec<&str> = g.lines().collect();
        assert_eq!(
            lines[0],
            "command - high 40 ms, low 10 ms (all time high 50 ms)"
        );
        assert_eq!(lines[1].len(), GRAPH_COLS);
        assert_eq!(lines[2], " #");
        assert_eq!(lines[5], "###");
        assert_eq!(lines[6], "oldest sample 30s ago, newest 28s ago");
        assert_eq!(ago(7200), "2h");
    }
}
