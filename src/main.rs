//! The `wsreactor` command: parse the CLI, set up logging, dispatch.

#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use wsreactor::server::{self, Config};

#[cfg(feature = "alloc-mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(feature = "alloc-jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    /// Open, verify and hold N WebSocket connections against a loopback server.
    Load(wsreactor::load::LoadArgs),
    /// Report the limits that bound concurrent connections on this host.
    Limits(LimitsArgs),
}

#[derive(clap::Args)]
struct LimitsArgs {
    /// Measure the per-process descriptor limit by opening descriptors until EMFILE.
    #[arg(long)]
    probe: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Reactor processes to compute the capacity for (as `serve --workers N`; default:
    /// what --connections needs, else 1).
    #[arg(long)]
    workers: Option<u32>,
    /// Size a run of N connections here: server workers, load processes, source
    /// addresses (what scripts/scale.sh reads).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    connections: Option<u64>,
}

fn limits(args: LimitsArgs) -> std::io::Result<()> {
    let report = wsreactor::limits::report(args.workers, args.connections, args.probe);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    Ok(())
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Serve(config)) => server::serve(config),
        Some(Command::Limits(args)) => limits(args),
        Some(Command::Load(args)) => return wsreactor::load::run(args),
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
