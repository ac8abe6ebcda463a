//! `carehub`: serve the API (default), serve a demo clinic, or administer accounts.

use carehub_web::cli::{Cli, run};
use carehub_web::telemetry::init_logging;

/// mimalloc returns freed memory to the system, where glibc's allocator keeps each password
/// hash's 19 MiB around per thread.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::from_command_line();
    init_logging(&cli.settings.log, cli.settings.log_format);
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "carehub failed");
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
