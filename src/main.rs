//! The `warden` binary; see `warden --help`.

// mimalloc: glibc's per-thread arenas fragmented under load (tokio workers,
// the blocking pool, one thread per SQLite connection) and resident memory
// grew past 300 MiB; mimalloc returns freed memory and is faster here.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
#[tokio::main]
async fn main() {
    std::process::exit(warden::cli::main().await);
}
