//! Running `wsreactor load`: the checks that refuse a run that cannot work (before any
//! socket), the run's size (processes, sources), the settings each process gets, the
//! run itself (in this process when one has descriptors enough, else across worker
//! processes), and the report it prints and the exit status.

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::args::LoadArgs;
use super::parent::{self, Placement, Workers};
use super::process::addr::{self, SourceRange};
use super::process::chat_message;
use super::process::cpu::tree_cpu;
use super::process::driver::{Control, Driver};
use super::process::hosts;
use super::process::plan::{self, WorkerSlot};
use super::process::seconds::unix_ms;
use super::process::settings::{ChatConfig, ConnConfig, DriverConfig, WorkloadConfig};
use super::process::worker;
use super::process::{Layer, Plain, Secure};
use super::progress::Progress;
use super::report::{ChatInfo, RunInfo, Tally, Timeline};
use super::wire::{WorkerMsg, WorkloadMode};
use crate::limits::{self, sizing};
use crate::protocol::receiver::{ReceiverConfig, Role};
use crate::signals::{self, Again};

/// Runs `wsreactor load`; the exit status says whether every connection was
/// established and verified (0), not (1), the run was interrupted (130), or the
/// arguments or environment were unusable (2).
pub fn run(args: LoadArgs) -> ExitCode {
    match try_run(args) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("wsreactor load: {msg}");
            ExitCode::from(2)
        }
    }
}

/// [`run`], with the reason a run could not start as an error.
fn try_run(args: LoadArgs) -> Result<ExitCode, String> {
    let remote = !args.hosts.is_empty();
    for &target in std::iter::once(&args.addr).chain(&args.also_addr) {
        if remote {
            addr::check_remote_target(target)?;
        } else {
            addr::check_target(target)?;
        }
    }
    let ports = limits::port_range()
        .unwrap_or(limits::PortRange::LINUX_DEFAULT)
        .count;
    let sources = if remote {
        // Each worker binds its own host's sources (below); the run as a whole has none.
        None
    } else {
        addr::sources_for(args.addr, args.sources, args.connections, ports)?
    };
    let nofile = limits::raise_nofile().map_err(|e| format!("RLIMIT_NOFILE: {e}"))?;
    // A certificate file that does not load is an error before any socket.
    let tls = tls_config(&args)?;
    if let Some(slot) = args.worker {
        let sources = match remote {
            true => hosts::host_of(&args.hosts, slot).sources,
            false => sources,
        };
        let cfg = driver_config(&args, sources, slot, true, tls_config(&args)?);
        return Ok(worker::main(cfg));
    }
    // The soft limit, now raised to the hard one: what every process of the run gets
    // (a load host's own limit is taken to be this host's).
    let mut procs = plan::process_count(args.procs, args.connections, nofile.soft);
    if remote {
        procs = hosts::process_count(procs, args.hosts.len());
        // Each host's command must at least be buildable before anything starts.
        for host in &args.hosts {
            hosts::remote_prefix(&args.remote, &host.name)?;
        }
    }
    if args.chat.is_some() {
        check_chat(&args, procs, nofile.soft)?;
    }
    if let Some(w) = workload_config(&args) {
        check_workload(&w, procs, nofile.soft)?;
    }
    preflight(&args, sources, procs, nofile, ports);

    let started = Instant::now();
    let stop = signals::stop_flag(Again::Exits).map_err(|e| format!("signal handlers: {e}"))?;
    let mut tally = Tally::new(procs as usize, started);
    if let Some(path) = &args.timeline {
        let timeline = Timeline::create(path, procs as usize, unix_ms())
            .map_err(|e| format!("--timeline {}: {e}", path.display()))?;
        tally.timeline = Some(timeline);
    }
    let mut progress = Progress::new(args.json, u64::from(args.connections));
    let mut error = None;
    if procs == 1 && !remote {
        if let Some(t) = &mut tally.timeline {
            t.started(0, unix_ms());
        }
        let slot = WorkerSlot { index: 0, count: 1 };
        let cfg = driver_config(&args, sources, slot, false, tls);
        if let Err(e) = run_here(cfg, &stop, &mut tally, &mut progress) {
            error = Some(e);
        }
    } else {
        let placement = remote.then(|| Placement {
            hosts: &args.hosts,
            remote: &args.remote,
        });
        let workers = Workers {
            count: procs,
            placement,
        };
        error = parent::run(
            workers,
            args.close_timeout,
            &stop,
            &mut tally,
            &mut progress,
        )
        .error;
    }
    progress.finish();
    if let Some(t) = &mut tally.timeline {
        t.finish();
    }
    let interrupted = stop.load(std::sync::atomic::Ordering::Relaxed);
    let report = tally.report(RunInfo {
        target: args.addr.to_string(),
        path: args.request_path(),
        requested: u64::from(args.connections),
        processes: procs,
        sources: match remote {
            true => Some(hosts_list(&args.hosts)),
            false => sources.map(|s| s.to_string()),
        },
        source_count: match remote {
            true => args
                .hosts
                .iter()
                .filter_map(|h| h.sources)
                .map(|s| s.len())
                .sum(),
            false => sources.map_or(0, |s| s.len()),
        },
        elapsed: started.elapsed(),
        interrupted,
        chat: args.chat.as_ref().map(|room| ChatInfo {
            room: room.clone(),
            chat_window: args.chat_window,
            rate: args.chat_rate,
        }),
        payload: args.payload.name(),
        deflate: args.offer().is_some(),
        deflate_window: args.deflate_window,
        warmup_bytes: args.warmup_bytes,
    });
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    if let Some(e) = error {
        eprintln!("wsreactor load: {e}");
    }
    Ok(if interrupted {
        ExitCode::from(130)
    } else if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `--hosts` as given: every host with its sources.
fn hosts_list(hosts: &[hosts::LoadHost]) -> String {
    let names: Vec<String> = hosts.iter().map(ToString::to_string).collect();
    names.join(",")
}

/// Runs the whole load in this process (no workers, no barrier).
fn run_here(
    cfg: DriverConfig,
    stop: &Arc<AtomicBool>,
    tally: &mut Tally,
    progress: &mut Progress,
) -> Result<(), String> {
    match cfg.conn.tls {
        Some(_) => run_driver::<Secure>(cfg, stop, tally, progress),
        None => run_driver::<Plain>(cfg, stop, tally, progress),
    }
}

fn run_driver<L: Layer>(
    cfg: DriverConfig,
    stop: &Arc<AtomicBool>,
    tally: &mut Tally,
    progress: &mut Progress,
) -> Result<(), String> {
    let control = Control {
        stop: Arc::clone(stop),
        go: Arc::new(AtomicBool::new(true)),
    };
    let driver = Driver::<L>::new(cfg).map_err(|e| format!("poll: {e}"))?;
    let fin = driver
        .run(&control, &mut |msg| {
            tally.on_msg(0, msg);
            progress.update(&tally.totals());
            true
        })
        .map_err(|e| format!("poll: {e}"))?;
    tally.on_msg(0, WorkerMsg::Final(Box::new(fin)));
    Ok(())
}

/// Refuses a chat run that cannot work: more than one process (the chat window needs
/// every member in one), or messages too short for their header.
fn check_chat(args: &LoadArgs, procs: u32, nofile: u64) -> Result<(), String> {
    if procs > 1 {
        return Err(format!(
            "--chat runs in one process: at most {} connections here (RLIMIT_NOFILE \
             {nofile}), and --procs 1",
            sizing::per_process(nofile)
        ));
    }
    if (args.message_size as usize) < chat_message::HEADER_LEN {
        return Err(format!(
            "--chat needs --message-size of at least {} bytes (sequence number and time)",
            chat_message::HEADER_LEN
        ));
    }
    Ok(())
}

/// The workload of an `--echo-window` or `--churn` run.
fn workload_config(args: &LoadArgs) -> Option<WorkloadConfig> {
    let mode = match (args.echo_window, args.churn) {
        (Some(_), _) => WorkloadMode::Echo,
        (None, true) => WorkloadMode::Churn,
        (None, false) => return None,
    };
    Some(WorkloadConfig {
        mode,
        echo_window: args.echo_window.unwrap_or(1),
        message_size: args.message_size,
        warmup: args.warmup.unwrap_or(Duration::from_secs(1)),
        duration: args.duration.unwrap_or(Duration::from_secs(5)),
        server_pid: args.server_pid,
    })
}

/// Refuses a workload run that cannot work: more than one process (one process
/// measures the whole run's period), or a server process that cannot be read.
fn check_workload(w: &WorkloadConfig, procs: u32, nofile: u64) -> Result<(), String> {
    if procs > 1 {
        return Err(format!(
            "--echo-window and --churn run in one process: at most {} connections here \
             (RLIMIT_NOFILE {nofile}), and --procs 1",
            sizing::per_process(nofile)
        ));
    }
    if let Some(pid) = w.server_pid {
        tree_cpu(pid).map_err(|e| format!("--server-pid {pid}: /proc/{pid}/stat: {e}"))?;
    }
    Ok(())
}

/// Warns about limits the run will hit before it hits them.
fn preflight(
    args: &LoadArgs,
    sources: Option<SourceRange>,
    procs: u32,
    nofile: limits::NofileLimit,
    ports: u64,
) {
    let per_process = u64::from(args.connections).div_ceil(u64::from(procs));
    if per_process > sizing::per_process(nofile.soft) {
        log::warn!(
            "{per_process} connections per process but RLIMIT_NOFILE is {}: expect \
             fd_limit failures (use --procs auto)",
            nofile.soft
        );
    }
    let per_source = match sources {
        Some(range) => range.max_per_source(u64::from(args.connections)),
        None => u64::from(args.connections),
    };
    if per_source > ports {
        log::warn!(
            "{per_source} connections per source address but only {ports} ephemeral \
             ports per destination: expect ports_exhausted (widen --sources)"
        );
    } else if per_source > sizing::per_source_limit(ports) {
        log::warn!(
            "{per_source} connections per source address fill over a quarter of the {ports} \
             ephemeral ports: connects will cost more kernel CPU (widen --sources)"
        );
    }
}

/// `--tls`: rustls' client configuration, trusting the certificates in `--ca` (or,
/// with `--insecure`, any certificate), without resumption unless `--tls-resume`.
fn tls_config(args: &LoadArgs) -> Result<Option<Arc<rustls::ClientConfig>>, String> {
    if !args.tls {
        return Ok(None);
    }
    if args.ca.is_none() && !args.insecure {
        return Err("--tls needs --ca FILE, or --insecure for any certificate".into());
    }
    let config =
        crate::tls::config::client_config_offering(args.ca.as_deref(), args.tls_group.as_deref())?;
    // Every connection stands for a client of its own, on its first visit: a full
    // handshake, no session to resume (with rustls' ticket cache, shared by the process,
    // a ramp resumed a few in a hundred, as tickets came back: a mix no reader could
    // tell apart). `--tls-resume` asks for that store, for the resumed handshakes alone.
    if args.tls_resume {
        return Ok(Some(config));
    }
    let mut config = (*config).clone();
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Some(Arc::new(config)))
}

/// The driver settings of worker `slot` (or of the single in-process run).
fn driver_config(
    args: &LoadArgs,
    sources: Option<SourceRange>,
    slot: WorkerSlot,
    wait_for_go: bool,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> DriverConfig {
    let ms = |d: Duration| d.as_millis().min(u128::from(u32::MAX - 1)) as u32;
    let chat = args.chat.as_ref().map(|_| ChatConfig {
        messages: args.chat_messages,
        rate: args.chat_rate,
        chat_window: args.chat_window,
    });
    // The sender may have a whole chat window of messages unsent when the server is slow
    // to read; a member only ever sends pongs and the Close. So may an echo window.
    let frame = args.message_size as usize + 14;
    let in_flight = chat
        .as_ref()
        .map_or(args.echo_window.unwrap_or(1), |c| c.chat_window);
    let unsent = frame * in_flight as usize;
    let workload = workload_config(args);
    DriverConfig {
        target: args.addr,
        more_targets: args.also_addr.clone(),
        sources,
        share: plan::share(args.connections, args.rate, args.max_pending, slot),
        hold: workload
            .as_ref()
            .map_or(args.hold, |w| w.warmup + w.duration),
        conn: ConnConfig {
            host: args.addr.to_string(),
            path: args.request_path(),
            message_size: args.message_size,
            payload: args.payload,
            warmup_bytes: args.warmup_bytes,
            connect_timeout_ms: ms(args.connect_timeout),
            echo_timeout_ms: ms(args.echo_timeout),
            close_timeout_ms: ms(args.close_timeout),
            echo_every_ms: ms(args.echo_every),
            // No size limit here: a message larger than the echo fails the byte-for-byte
            // check at its first excess chunk, and nothing is ever buffered whole.
            receiver: ReceiverConfig {
                role: Role::Client,
                max_message_size: u64::MAX >> 1,
                deflate: args.offer().is_some(),
            },
            deflate: args.offer(),
            max_spill: unsent + 64 * 1024,
            chat,
            workload,
            tls,
        },
        wait_for_go,
        progress_every: Duration::from_millis(if wait_for_go { 500 } else { 250 }),
        timeline: args.timeline.is_some(),
        ramp_target: args.ramp_target,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::args::parse;

    #[test]
    fn chat_runs_that_cannot_work_are_refused_before_any_socket() {
        let chat = [
            "--addr",
            "127.0.0.1:9",
            "--connections",
            "10",
            "--chat",
            "x",
        ];
        let run = |extra: &[&str]| {
            let args: Vec<&str> = chat.iter().chain(extra).copied().collect();
            try_run(parse(&args).unwrap()).unwrap_err()
        };
        assert!(run(&["--procs", "2"]).contains("one process"));
        assert!(run(&["--message-size", "15"]).contains("at least 16"));
    }

    #[test]
    fn hosts_take_any_target_but_need_a_prefix_that_names_them() {
        let run = |addr: &str, extra: &[&str]| {
            let base = ["--addr", addr, "--connections", "1"];
            let args: Vec<&str> = base.iter().chain(extra).copied().collect();
            try_run(parse(&args).unwrap()).unwrap_err()
        };
        assert!(run("10.203.0.11:9001", &[]).contains("loopback"));
        let err = run("10.203.0.11:9001", &["--hosts", "c1", "--remote", "ssh c1"]);
        assert!(err.contains("{host}"), "{err}");
        let err = run("0.0.0.0:9001", &["--hosts", "c1"]);
        assert!(err.contains("--addr"), "{err}");
    }

    #[test]
    fn non_loopback_targets_fail_before_any_socket() {
        let a = parse(&["--addr", "10.1.2.3:80", "--connections", "1"]).unwrap();
        let err = try_run(a).unwrap_err();
        assert!(err.contains("loopback"), "{err}");
    }
}
