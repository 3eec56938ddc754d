//! The `wsreactor` command: parse the CLI, set up logging, dispatch.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wsreactor::server::{self, Config};

#[derive(Parser)]
#[command(
    version,
    about = "A WebSocket echo server on a hand-written mio reactor"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: Config,
}

#[derive(Subcommand)]
enum Command {
    /// Serve WebSocket echo (the default).
    Serve(Config),
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Serve(config)) => server::serve(config),
        None => server::serve(cli.serve),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
