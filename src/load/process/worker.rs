//! A worker process of a multi-process run: it runs the driver for its share, takes
//! `go` and `stop` from the parent on stdin, and writes progress and its final result
//! to stdout as JSON lines.
//!
//! A worker never outlives its parent by more than a close timeout: stdin reaching EOF
//! (the parent exited or died; the pipe's write end closed) stops it like `stop`, and a
//! failed write to stdout (EPIPE) does too.

use std::io::{self, BufRead, Write};
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use super::driver::{Control, Driver};
use super::seconds::unix_ms;
use super::settings::DriverConfig;
use super::{Layer, Plain, Secure};
use crate::load::wire::WorkerMsg;
use crate::signals::{self, Again};

/// The worker process's main: runs its part of the run (`cfg`) to completion, over
/// TLS if `cfg` says so.
pub fn main(cfg: DriverConfig) -> ExitCode {
    match cfg.conn.tls {
        Some(_) => run::<Secure>(cfg),
        None => run::<Plain>(cfg),
    }
}

fn run<L: Layer>(cfg: DriverConfig) -> ExitCode {
    let control = match signals::stop_flag(Again::Exits) {
        Ok(stop) => Control {
            stop,
            go: Default::default(),
        },
        Err(e) => {
            eprintln!("wsreactor load worker: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let driver = match Driver::<L>::new(cfg) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("wsreactor load worker: {e}");
            return ExitCode::FAILURE;
        }
    };
    let waker = driver.waker();
    let (go, stop) = (control.go.clone(), control.stop.clone());
    // A blocking reader on its own thread: the reactor stays single-threaded and the
    // waker brings it out of its poll at once.
    std::thread::spawn(move || {
        for line in io::stdin().lock().lines() {
            match line.as_deref().map(str::trim) {
                Ok("go") => go.store(true, Ordering::Relaxed),
                Ok("stop") => stop.store(true, Ordering::Relaxed),
                Ok(_) => continue,
                Err(_) => break,
            }
            let _ = waker.wake();
        }
        // EOF: the parent is gone.
        stop.store(true, Ordering::Relaxed);
        let _ = waker.wake();
    });
    let mut out = io::stdout().lock();
    let clock = WorkerMsg::Clock { unix_ms: unix_ms() };
    if write_line(&mut out, &clock).is_err() {
        return ExitCode::FAILURE;
    }
    let result = driver.run(&control, &mut |msg| write_line(&mut out, &msg).is_ok());
    match result {
        Ok(fin) => {
            // Nobody to tell if the parent is gone; nothing else to do either way.
            let _ = write_line(&mut out, &WorkerMsg::Final(Box::new(fin)));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wsreactor load worker: poll failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One message as one JSON line, flushed at once (the parent reads line by line).
fn write_line(out: &mut impl Write, msg: &WorkerMsg) -> io::Result<()> {
    serde_json::to_writer(&mut *out, msg)?;
    out.write_all(b"\n")?;
    out.flush()
}
