//! MULTI/EXEC state and WATCH bookkeeping.
//!
//! Commands sent after MULTI are queued in the client; EXEC runs them back to back under the
//! locks of every shard their keys (and the client's WATCHed keys) live in, so no other
//! client, on any thread, sees the transaction half done.
//!
//! WATCH registers keys in [`Watches`]. While anything is watched, every change made through
//! the keyspace records its key in the changing command's locks; dispatch hands those to
//! [`Watches::touch`] *before* releasing the locks, which sets the watchers' DIRTY_CAS flag.
//! EXEC checks that flag holding the watched keys' shard locks, so a change that happened
//! before EXEC always fails it.

use std::collections::HashMap;
use std::sync::Arc;

use flowkv_protocol::OwnedArgs;
use flowkv_store::Locked;
use parking_lot::Mutex;

use crate::client::{flag, Client, ClientShared};
use crate::command::Command;
use crate::server::Server;

/// A command queued inside MULTI.
pub struct Queued {
    /// Its index in the command table (for commandstats).
    pub id: usize,
    pub cmd: &'static Command,
    pub args: OwnedArgs,
}

/// A client's open transaction.
#[derive(Default)]
pub struct MultiState {
    pub queued: Vec<Queued>,
    /// A command was rejected while queueing: EXEC answers EXECABORT.
    pub aborted: bool,
}

/// A key a client WATCHes.
pub struct Watched {
    pub db: usize,
    pub key: Box<[u8]>,
    /// Whether the key existed (and had not expired) when watched: a live key that has
    /// expired by EXEC time fails the transaction, as in Redis 7.0.
    pub live: bool,
}

/// The clients watching each (db, key).
type WatchMap = HashMap<(usize, Box<[u8]>), Vec<Arc<ClientShared>>>;

/// Every WATCHed key and the clients watching it.
#[derive(Default)]
pub struct Watches {
    inner: Mutex<WatchMap>,
}

impl Watches {
    /// Adds `client` as a watcher of (db, key). Called with the key's shard locked.
    pub fn watch(&self, srv: &Server, db: usize, key: &[u8], client: &Arc<ClientShared>) {
        let mut inner = self.inner.lock();
        inner
            .entry((db, key.into()))
            .or_default()
            .push(client.clone());
        srv.keyspace.set_watchers(inner.len());
    }

    /// Forgets every key `client` watches and clears its DIRTY_CAS flag (EXEC, DISCARD,
    /// UNWATCH, RESET, disconnect).
    pub fn unwatch_all(&self, srv: &Server, client: &mut Client) {
        client.shared.set_flag(flag::DIRTY_CAS, false);
        if client.watched.is_empty() {
            return;
        }
        let mut inner = self.inner.lock();
        for w in client.watched.drain(..) {
            let slot = (w.db, w.key);
            if let Some(list) = inner.get_mut(&slot) {
                list.retain(|c| c.id != client.id);
                if list.is_empty() {
                    inner.remove(&slot);
                }
            }
        }
        srv.keyspace.set_watchers(inner.len());
    }

    /// Marks the watchers of the keys changed under `locked`; called before the locks are
    /// released, so no EXEC can slip in between the change and the mark.
    pub fn touch_changed(&self, locked: &mut Locked<'_>) {
        let touched = locked.take_touched();
        if !touched.is_empty() {
            self.touch(&touched);
        }
    }

    /// Marks the watchers of these changed keys: their EXEC will fail.
    pub fn touch(&self, touched: &[(usize, Box<[u8]>)]) {
        let inner = self.inner.lock();
        for slot in touched {
            for c in inner.get(slot).into_iter().flatten() {
                c.set_flag(flag::DIRTY_CAS, true);
            }
        }
    }

    /// The watched keys of database `db` (FLUSHDB, FLUSHALL and SWAPDB touch those that
    /// exist).
    pub fn keys_in_db(&self, db: usize) -> Vec<Box<[u8]>> {
        self.inner
            .lock()
            .keys()
            .filter(|(d, _)| *d == db)
            .map(|(_, k)| k.clone())
            .collect()
    }
}
