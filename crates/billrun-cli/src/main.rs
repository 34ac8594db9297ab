use std::io::IsTerminal;
use std::process::ExitCode;

use billrun_cli::cli::{self, LogFormat};

/// See Cargo.toml: rendering and billing allocate many small values; mimalloc is cheaper at it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::parse_args();
    let filter = tracing_subscriber::EnvFilter::try_from_env("BILLRUN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Colours only for a person at a terminal: not in a file or a pipe, not with `NO_COLOR`
    // set to anything but the empty string (https://no-color.org).
    let ansi = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(cli::EXIT_CANNOT_RUN);
        }
    };
    match rt.block_on(cli::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", billrun::error_text::chain(&e));
            ExitCode::from(cli::exit_code_for(&e))
        }
    }
}
