//! The `portcullis` binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use server::cli::{AdminCommand, Connection};
use server::{Config, RunningServer, telemetry};

/// Portcullis, an OpenID Connect provider whose logouts reach every application.
#[derive(Parser)]
#[command(name = "portcullis", version)]
struct Cli {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the server (embedded SQLite in ./data unless configured otherwise).
    Start {
        /// A TOML configuration file; `PORTCULLIS_*` environment variables override it.
        #[arg(long, short, env = "PORTCULLIS_CONFIG")]
        config: Option<PathBuf>,
    },
    // Boxed: the admin commands' arguments are far larger than `start`'s.
    #[command(flatten)]
    Admin(Box<AdminCommand>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    server::allocator::keep_large_allocations_out_of_the_heap();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line, the whole cause chain: what failed and why.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Start { config } => {
            // Handlers first: a signal during startup then stops the server gracefully.
            let stop = server::startup::shutdown_signal()?;
            let config = Config::load(config.as_deref())?;
            telemetry::init(&config.log);
            RunningServer::start(config).await?.run_until(stop).await
        }
        Command::Admin(command) => server::cli::run(&cli.connection, *command).await,
    }
}
