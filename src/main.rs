//! The `wsreactor` command line (minimal in this tree: only `load`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "wsreactor", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Open, verify, hold and close many WebSocket connections to a loopback server.
    Load(wsreactor::load::LoadArgs),
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match Cli::parse().command {
        Command::Load(args) => wsreactor::load::run(args),
    }
}
