//! What a command handler gets: the server, its client, the reply writer and the locks its
//! keys need.

use flowkv_protocol::Reply;
use flowkv_store::{KeyStats, Keys, Locked};

use crate::client::Client;
use crate::command::Command;
use crate::server::Server;

/// The execution context of one command.
pub struct Ctx<'a> {
    pub srv: &'a Server,
    pub client: &'a mut Client,
    pub out: Reply<'a>,
    /// Shards locked for this command, per its key spec (`None` for keyless commands).
    pub locked: Option<Locked<'a>>,
    /// This worker's keyspace counters.
    pub stats: &'a mut KeyStats,
    /// The command's fixed "now" (unix ms), as Redis caches it per command.
    pub now_ms: u64,
    /// The command being run.
    pub cmd: &'static Command,
    /// Changes this command made to the dataset, as Redis counts them in `server.dirty`
    /// (write commands add to it; persistence and replication read the total).
    pub dirty: u64,
    /// Inside EXEC (or a script): blocking commands answer at once as if they timed out,
    /// as Redis does.
    pub deny_blocking: bool,
    /// Called by a script (Redis's CLIENT_SCRIPT): a few commands make their replies
    /// deterministic for it, as Redis does.
    pub in_script: bool,
    /// The handler wrote an error reply itself and returned `Ok` (a script returning an
    /// error, already counted in errorstats): the call still counts as failed.
    pub error_replied: bool,
}

impl<'a> Ctx<'a> {
    /// The client's selected database through this command's locks.
    ///
    /// Panics if the command locked nothing: its key spec in the command table is wrong.
    pub fn keys(&mut self) -> Keys<'_, 'a> {
        self.keys_out().0
    }

    /// Replies to a HELP subcommand: one status line per text line, as Redis does.
    pub fn help(&mut self, lines: &[&str]) {
        self.out.array(lines.len());
        for l in lines {
            self.out.simple(l.as_bytes());
        }
    }

    /// The keys and the reply writer at once, so a handler can reply with borrowed data.
    pub fn keys_out(&mut self) -> (Keys<'_, 'a>, &mut Reply<'a>) {
        let locked = self
            .locked
            .as_mut()
            .expect("command touched keys without locking them (check its key spec)");
        (
            locked.db(self.client.db, self.now_ms, self.stats),
            &mut self.out,
        )
    }
}
