//! Keyspace notifications (`notify-keyspace-events`).
//!
//! Command handlers (and the store itself, for `expired`, `new` and `keymiss`) record events
//! in the worker's [`KeyStats::events`] while the command runs; recording costs one atomic
//! load when notifications are off. The connection's worker publishes them once the command
//! is done and its shard locks are released: for an event `e` on key `k` of database `n`, `e`
//! on `__keyspace@n__:k` (flag `K`) and `k` on `__keyevent@n__:e` (flag `E`). Keys the
//! active expiry cycle deletes are collected by the keyspace and published by whichever
//! worker takes them first.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::OnceLock;

use flowkv_protocol::Args;
use flowkv_store::keyspace::KeyEvent;

use crate::client::Client;
use crate::config::{keyspace_events_flags, notify};
use crate::ctx::Ctx;
use crate::server::Server;

/// Records event `event` of class `class` (a [`notify`] bit) on `key` in the client's
/// database, if that class is enabled.
#[inline]
pub fn event(ctx: &mut Ctx<'_>, class: u32, event: &'static str, key: &[u8]) {
    let db = ctx.client.db;
    event_in(ctx, db, class, event, key);
}

/// [`event`] on a key of database `db` (COPY and MOVE's target).
#[inline]
pub fn event_in(ctx: &mut Ctx<'_>, db: usize, class: u32, event: &'static str, key: &[u8]) {
    if ctx.srv.keyspace.notifies(class) {
        ctx.stats.event(class, event, db, key);
    }
}

/// Applies the configuration: which classes the keyspace records (none unless `K` or `E`
/// is set, since nothing would be published).
pub fn refresh(srv: &Server) {
    let value = srv.config.get("notify-keyspace-events").unwrap_or_default();
    apply_flags(srv, keyspace_events_flags(&value).unwrap_or(0));
}

/// Records the classes of `flags` in the keyspace (nothing without `K` or `E`).
fn apply_flags(srv: &Server, flags: u32) {
    let enabled = if flags & (notify::KEYSPACE | notify::KEYEVENT) != 0 {
        flags
    } else {
        0
    };
    srv.keyspace.set_notify_classes(enabled);
}

/// The command-table id of CONFIG SET, after which [`refresh`] runs.
pub fn config_set_id() -> usize {
    static ID: OnceLock<usize> = OnceLock::new();
    *ID.get_or_init(|| {
        crate::commands::table()
            .flat
            .iter()
            .position(|(name, _)| name == "config|set")
            .unwrap_or(usize::MAX)
    })
}

/// Re-applies the configuration if the command `client` just ran (`args`) was CONFIG SET.
///
/// The canonical value CONFIG GET shows drops `n` next to `A` (as Redis prints it), so the
/// flags are taken from the argument when it is the value that was stored.
pub fn after_command(srv: &Server, client: &Client, args: Args<'_>) {
    if client.shared.last_cmd.load(Relaxed) as usize != config_set_id().wrapping_add(1) {
        return;
    }
    refresh(srv);
    let stored = srv.config.get("notify-keyspace-events").unwrap_or_default();
    let stored = keyspace_events_flags(&stored).unwrap_or(0);
    let given = (2..args.len())
        .step_by(2)
        .filter(|&i| args.get(i).eq_ignore_ascii_case(b"notify-keyspace-events"))
        .filter_map(|i| args.try_get(i + 1))
        .filter_map(|v| keyspace_events_flags(std::str::from_utf8(v).ok()?))
        .next_back();
    if let Some(flags) = given {
        let shown = if flags & notify::ALL == notify::ALL {
            flags & !notify::NEW
        } else {
            flags
        };
        if shown == stored {
            apply_flags(srv, flags);
        }
    }
}

/// Publishes (and empties) `events`. `me` is the client whose command raised them, if any,
/// and `worker` the publishing worker (see [`crate::pubsub::Hub::publish`]).
pub fn publish(
    srv: &Server,
    events: &mut Vec<KeyEvent>,
    mut me: Option<&mut Client>,
    worker: Option<usize>,
) {
    let hub = srv.pubsub();
    let ks = &srv.keyspace;
    let (space, event) = (ks.notifies(notify::KEYSPACE), ks.notifies(notify::KEYEVENT));
    if hub.is_idle() || !(space || event) {
        events.clear();
        return;
    }
    let mut channel = Vec::new();
    for ev in events.drain(..) {
        if space {
            channel.clear();
            channel.extend_from_slice(format!("__keyspace@{}__:", ev.db).as_bytes());
            channel.extend_from_slice(&ev.key);
            let msg = ev.event.as_bytes();
            hub.publish(srv, false, &channel, msg, me.as_deref_mut(), worker);
        }
        if event {
            channel.clear();
            channel.extend_from_slice(format!("__keyevent@{}__:{}", ev.db, ev.event).as_bytes());
            hub.publish(srv, false, &channel, &ev.key, me.as_deref_mut(), worker);
        }
    }
}
