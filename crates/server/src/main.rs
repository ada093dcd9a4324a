//! The `flowkv-server` binary: `flowkv-server [/path/to/redis.conf] [--directive value ...]`.

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-v" || a == "--version") {
        println!("flowkv-server v={}", env!("CARGO_PKG_VERSION"));
        return;
    }
    let config = match flowkv_server::config::Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = flowkv_server::run(config) {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
