//! Live progress on stderr while the load runs: a progress bar on a terminal, a plain
//! line every few seconds otherwise (logs, CI), nothing with `--json`.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::wire::Counters;

/// How often a plain progress line is printed when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// Where progress goes.
#[derive(Debug)]
enum Output {
    /// A terminal: a bar redrawn in place.
    Bar(ProgressBar),
    /// Logs or CI: a line at `next`, and every [`PLAIN_EVERY`] after.
    Plain { next: Instant },
    /// `--json`, or the run is over.
    Off,
}

/// The progress display of a run of `total` connections.
#[derive(Debug)]
pub struct Progress {
    output: Output,
    started: Instant,
    /// The previous rate sample: (time, established).
    sample: (Instant, u64),
    rate: f64,
}

impl Progress {
    /// The display for a run of `total` connections (none with `json`).
    pub fn new(json: bool, total: u64) -> Progress {
        let now = Instant::now();
        let output = if json {
            Output::Off
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {elapsed_precise} [{bar:20}] {pos}/{len} verified  {msg}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            Output::Bar(bar)
        } else {
            Output::Plain {
                next: now + PLAIN_EVERY,
            }
        };
        Progress {
            output,
            started: now,
            sample: (now, 0),
            rate: 0.0,
        }
    }

    /// Shows the latest totals (cheap to call often: the plain mode prints rarely).
    pub fn update(&mut self, c: &Counters) {
        let now = Instant::now();
        let (then, before) = self.sample;
        let dt = now.duration_since(then).as_secs_f64();
        if dt >= 1.0 {
            self.rate = c.established.saturating_sub(before) as f64 / dt;
            self.sample = (now, c.established);
        }
        match &mut self.output {
            Output::Bar(bar) => {
                bar.set_position(c.verified);
                bar.set_message(short_summary(c, self.rate));
            }
            Output::Plain { next } if now >= *next => {
                *next = now + PLAIN_EVERY;
                let secs = now.duration_since(self.started).as_secs_f64();
                eprintln!("[{secs:7.1}s] {}", summary(c, self.rate));
            }
            Output::Plain { .. } | Output::Off => {}
        }
    }

    /// Removes the bar before the report is printed.
    pub fn finish(&mut self) {
        if let Output::Bar(bar) = &self.output {
            bar.finish_and_clear();
        }
        self.output = Output::Off;
    }
}

/// The bar's message, short enough for an 80-column terminal beside the bar (the bar
/// itself shows the verified count).
fn short_summary(c: &Counters, rate: f64) -> String {
    let mut s = format!(
        "open {}  pending {}  failed {}",
        c.open,
        c.pending,
        c.failed()
    );
    if let Some((why, n)) = c.failures.iter().max_by_key(|(_, n)| **n) {
        s.push_str(&format!(" ({why} {n})"));
    }
    if c.chat_sent > 0 {
        s.push_str(&format!("  delivered {}", c.deliveries));
    }
    s.push_str(&format!("  {rate:.0}/s"));
    s
}

/// One line: established, open, pending, failures by reason, closes, current rate.
fn summary(c: &Counters, rate: f64) -> String {
    let mut s = format!(
        "established {}  verified {}  open {}  pending {}  failed {}",
        c.established,
        c.verified,
        c.open,
        c.pending,
        c.failed()
    );
    if !c.failures.is_empty() {
        let reasons: Vec<String> = c
            .failures
            .iter()
            .map(|(why, n)| format!("{why} {n}"))
            .collect();
        s.push_str(&format!(" ({})", reasons.join(", ")));
    }
    if c.chat_sent > 0 {
        s.push_str(&format!(
            "  chat sent {}  delivered {}",
            c.chat_sent, c.deliveries
        ));
    }
    if c.closing + c.closed_clean + c.close_timeout + c.close_unclean > 0 {
        s.push_str(&format!(
            "  closing {}  closed {}",
            c.closing, c.closed_clean
        ));
    }
    s.push_str(&format!("  {rate:.0}/s"));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::wire::Failure;

    #[test]
    fn summary_names_each_failure_reason() {
        let mut c = Counters {
            established: 10,
            verified: 9,
            open: 9,
            ..Counters::default()
        };
        c.fail(Failure::ConnectRefused);
        c.fail(Failure::ConnectRefused);
        c.fail(Failure::EchoTimeout);
        let line = summary(&c, 1234.4);
        assert!(line.contains("failed 3"), "{line}");
        assert!(line.contains("connect_refused 2"), "{line}");
        assert!(line.contains("echo_timeout 1"), "{line}");
        assert!(line.ends_with("1234/s"), "{line}");
        let short = short_summary(&c, 10.0);
        assert!(short.contains("(connect_refused 2)"), "{short}");
        assert!(short.len() < 60, "{short}");
    }
}
