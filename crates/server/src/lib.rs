//! flowkv-server: networking, the command table and one module per command family, on top of
//! the `flowkv-store` keyspace and the `flowkv-protocol` codec.

pub mod acl;
pub mod aof;
pub mod bgsave;
pub mod blocking;
pub mod client;
pub mod command;
pub mod commands;
pub mod config;
pub mod ctx;
pub mod dispatch;
pub mod error;
pub mod evict;
pub mod geohash;
pub mod info;
pub mod latency;
pub mod metrics;
pub mod net;
pub mod notify;
pub mod pause;
pub mod prefix_stats;
pub mod propagate;
pub mod pubsub;
pub mod replication;
pub mod scripting;
pub mod server;
pub mod tls;
pub mod tracking;
pub mod transaction;

use std::sync::Arc;

/// Starts a server with `config` and serves until shutdown is requested.
pub fn run(config: config::Config) -> std::io::Result<()> {
    // Before anything reads the command table.
    commands::apply_renames(config.renames())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let threads = match config.get_u64("threads") {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n as usize,
    };
    // Like redis-server, work inside `dir`: relative file names (dump.rdb, the AOF directory)
    // are relative to it.
    if let Some(dir) = config.get("dir").filter(|d| !d.is_empty()) {
        std::env::set_current_dir(&dir)
            .map_err(|e| std::io::Error::new(e.kind(), format!("Can't chdir to '{dir}': {e}")))?;
    }
    let port = config.get_u64("port") as u16;
    let bind = config.get("bind").unwrap_or_default();
    let tls_port = config.get_u64("tls-port") as u16;
    if tls_port != 0 {
        tls::configure_at_startup(&config)?;
    }
    let listeners = net::bind_all(&bind, port, tls_port)?;
    let srv = Arc::new(server::Server::new(config, threads));
    acl::load_at_startup(&srv)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    info::record_startup_memory();
    // Clients are served while the dataset loads, with -LOADING for what Redis refuses
    // then; the services that change or save the dataset start once it is loaded. A file
    // that cannot be loaded stops the server, as in Redis: never serve half a dataset.
    // With `appendonly yes` the AOF is the dataset, as in Redis; the RDB file is not read.
    commands::persist::LOADING.begin();
    if !srv.config.get_bool("appendonly") {
        // INFO shows the file's size to the first client already, not once the loader
        // thread has opened it.
        let size = std::fs::metadata(commands::persist::rdb_path(&srv)).map_or(0, |m| m.len());
        commands::persist::LOADING.set_total(size);
    }
    let workers = (0..threads)
        .map(|i| net::spawn_worker(srv.clone(), i))
        .collect::<std::io::Result<Vec<_>>>()?;
    metrics::spawn(srv.clone())?;
    install_signal_handlers(srv.clone())?;
    let loader = srv.clone();
    std::thread::Builder::new()
        .name("flowkv-load".into())
        .spawn(move || {
            let started = commands::persist::load_at_start(&loader).and_then(|()| {
                server::spawn_cron(loader.clone())
                    .and_then(|()| bgsave::spawn(loader.clone()))
                    .and_then(|()| aof::spawn(loader.clone()))
                    .and_then(|()| replication::master::spawn(loader.clone()))
                    .and_then(|()| replication::replica::spawn(loader.clone()))
                    .map_err(|e| e.to_string())
            });
            if let Err(e) = started {
                eprintln!("{e}");
                std::process::exit(1);
            }
            commands::persist::LOADING.end();
            eprintln!(
                "flowkv {} ready to accept connections on port {port} ({threads} threads)",
                env!("CARGO_PKG_VERSION")
            );
        })?;
    net::accept_loop(srv.clone(), listeners, workers)?;
    // Stopped by a signal: save as SHUTDOWN would when save points are configured.
    let settled = srv
        .shutdown_save_settled
        .load(std::sync::atomic::Ordering::Relaxed);
    if !settled && !srv.config.get("save").unwrap_or_default().is_empty() {
        eprintln!("Saving the final RDB snapshot before exiting.");
        if let Err(e) = commands::persist::save(&srv, &mut srv.keyspace.lock_all()) {
            eprintln!("{e}");
        }
    }
    eprintln!("flowkv is now ready to exit, bye bye...");
    Ok(())
}

/// SIGTERM and SIGINT stop the server cleanly, as SHUTDOWN does.
fn install_signal_handlers(srv: Arc<server::Server>) -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])?;
    std::thread::Builder::new()
        .name("flowkv-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
                eprintln!("Received {name} scheduling shutdown...");
                srv.request_shutdown();
            }
        })?;
    Ok(())
}
