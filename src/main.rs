//! The `warden` binary; see `warden --help`.
#[tokio::main]
async fn main() {
    std::process::exit(warden::cli::main().await);
}
