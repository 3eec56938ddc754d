//! SIGINT and SIGTERM as a stop request: a flag the loops of `serve` and `load` poll, so
//! a stop is graceful (open connections get their closing handshake) and never runs
//! code inside a signal handler. SIGHUP, for `serve`, is a request to reload the
//! certificate: a flag too.

use std::io;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// What another SIGINT/SIGTERM does once a stop is under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Again {
    /// Nothing more. For server processes: a worker can get the terminal's SIGINT and
    /// then its supervisor's forwarded SIGTERM for one Ctrl-C, and must still close its
    /// connections with 1001.
    Ignored,
    /// Exit at once with status 130: an impatient second Ctrl-C skips the closing
    /// handshakes of a load run.
    Exits,
}

/// Installs SIGINT/SIGTERM handlers that set the returned flag.
pub fn stop_flag(again: Again) -> io::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        if again == Again::Exits {
            // Registered first, so the first signal finds the flag unset and only sets it.
            signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&flag))?;
        }
        signal_hook::flag::register(signal, Arc::clone(&flag))?;
    }
    Ok(flag)
}

/// Installs a SIGHUP handler that sets the returned flag (and keeps SIGHUP from ending
/// the process, its default).
pub fn reload_flag() -> io::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(SIGHUP, Arc::clone(&flag))?;
    Ok(flag)
}
