//! Child processes of this binary: `serve --workers N` and `load --procs N` both re-run
//! this same command line with a few arguments appended, read each child's stdout as
//! JSON lines, and must never leave a child behind.
//!
//! One job: start children, deliver what they report, stop them. What a report means
//! (server counters, load progress) and when to restart or stop belongs to the caller.
//!
//! Invariants: every child started is killed and reaped when [`Children`] drops (error
//! and panic paths included), and a slot never delivers lines of an earlier child that
//! ran in it (each start gets a new generation; stale lines are dropped).
//!
//! Why re-run the whole command line rather than rebuild it from parsed options: a new
//! option then reaches the children without anyone remembering to copy it. The caller
//! appends what differs (`--worker-id K`, `--worker K/P`, a resolved `--listen`); an
//! appended option must be new to the command line or one that overrides itself.
//!
//! Each child's stdout is read by a small thread that forwards lines over one channel:
//! a parent is a supervisor, not a reactor, so blocking reads there cost nothing.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

/// What a child's stdin is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdin {
    /// `/dev/null`: the child takes no orders from its parent.
    Null,
    /// A control pipe for [`Children::tell`]; EOF on it tells the child its parent is gone.
    Control,
}

/// What a child said, or that it stopped saying anything.
#[derive(Debug, PartialEq)]
pub enum Event<M> {
    /// One JSON line, parsed.
    Line(M),
    /// Its stdout closed: it exited or is about to. Reap it with [`Children::wait`] or
    /// notice it with [`Children::try_wait`].
    Closed,
}

/// A line from slot `index`'s child of start number `generation`; `None` at EOF.
type Report<M> = (usize, u64, Option<M>);

/// A fixed number of slots, each running at most one child at a time, all reporting
/// over one channel. Dropping it kills and reaps every child still running.
pub struct Children<M> {
    /// Names the children in log lines ("server worker 3").
    label: &'static str,
    slots: Vec<Option<Running>>,
    starts: u64,
    tx: Sender<Report<M>>,
    rx: Receiver<Report<M>>,
}

impl<M> fmt::Debug for Children<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Children")
            .field("label", &self.label)
            .field("slots", &self.slots)
            .field("starts", &self.starts)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    generation: u64,
}

impl<M: DeserializeOwned + Send + 'static> Children<M> {
    /// `slots` empty slots; `label` names their children in log lines.
    pub fn new(label: &'static str, slots: usize) -> Children<M> {
        let (tx, rx) = mpsc::channel();
        Children {
            label,
            slots: (0..slots).map(|_| None).collect(),
            starts: 0,
            tx,
            rx,
        }
    }

    /// Starts this binary in slot `index` with this process's own arguments followed by
    /// `extra`; returns its pid. The slot must be empty.
    pub fn spawn(&mut self, index: usize, extra: &[String], stdin: Stdin) -> io::Result<u32> {
        self.spawn_with_env(index, extra, &[], stdin)
    }

    /// [`Children::spawn`], with `env` added to that child's environment alone (what
    /// changes from one child to the next, or a secret that later children must not
    /// inherit as they would this process's own environment).
    pub fn spawn_with_env(
        &mut self,
        index: usize,
        extra: &[String],
        env: &[(&str, String)],
        stdin: Stdin,
    ) -> io::Result<u32> {
        let mut command = Command::new(std::env::current_exe()?);
        command.args(rerun_args(std::env::args_os(), extra));
        command.envs(env.iter().map(|(name, value)| (name, value)));
        self.spawn_command(index, command, stdin)
    }

    /// [`Self::spawn`] on another host: the words of `prefix` (`ssh HOST`, `ip netns exec
    /// NS`) then this binary's path (the same on that host) and arguments. The child's
    /// stdin and stdout cross through the prefix, so it takes orders and reports as a
    /// local one does; the pid is the prefix's.
    pub fn spawn_via(
        &mut self,
        index: usize,
        prefix: &[String],
        extra: &[String],
        stdin: Stdin,
    ) -> io::Result<u32> {
        let (program, words) = prefix
            .split_first()
            .ok_or_else(|| io::Error::other("an empty remote prefix"))?;
        let mut command = Command::new(program);
        command
            .args(words)
            .arg(std::env::current_exe()?)
            .args(rerun_args(std::env::args_os(), extra));
        self.spawn_command(index, command, stdin)
    }

    /// Starts `command` in slot `index` with stdout piped to a reader thread.
    fn spawn_command(
        &mut self,
        index: usize,
        mut command: Command,
        stdin: Stdin,
    ) -> io::Result<u32> {
        assert!(self.slots[index].is_none(), "slot {index} is taken");
        let mut child = command
            .stdin(match stdin {
                Stdin::Null => Stdio::null(),
                Stdin::Control => Stdio::piped(),
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().expect("stdout is piped");
        self.starts += 1;
        let generation = self.starts;
        let (tx, label) = (self.tx.clone(), self.label);
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<M>(&line) {
                    Ok(msg) => {
                        if tx.send((index, generation, Some(msg))).is_err() {
                            return;
                        }
                    }
                    Err(e) => log::warn!("{label} {index}: unreadable line ({e}): {line:.200}"),
                }
            }
            let _ = tx.send((index, generation, None));
        });
        let pid = child.id();
        self.slots[index] = Some(Running {
            stdin: child.stdin.take(),
            child,
            generation,
        });
        Ok(pid)
    }

    /// The next report of a running child, waiting at most `timeout` (zero: only what
    /// has arrived). Lines of a child that has since been reaped are dropped.
    pub fn next(&mut self, timeout: Duration) -> Option<(usize, Event<M>)> {
        let deadline = Instant::now() + timeout;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            let (index, generation, msg) = match self.rx.recv_timeout(wait) {
                Ok(report) => report,
                // We hold a sender ourselves, so the channel never disconnects.
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            };
            let current = self.slots[index]
                .as_ref()
                .is_some_and(|r| r.generation == generation);
            if current {
                return Some((index, msg.map_or(Event::Closed, Event::Line)));
            }
        }
    }

    /// The pid of slot `index`'s child, if one is running (or exited, not yet reaped).
    pub fn pid(&self, index: usize) -> Option<u32> {
        self.slots[index].as_ref().map(|r| r.child.id())
    }

    /// Slots holding a child not yet reaped.
    pub fn running(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    /// Whether slot `index`'s child has exited; reaps it (emptying the slot) if so.
    pub fn try_wait(&mut self, index: usize) -> io::Result<Option<ExitStatus>> {
        let Some(running) = self.slots[index].as_mut() else {
            return Ok(None);
        };
        let status = running.child.try_wait()?;
        if status.is_some() {
            self.slots[index] = None;
        }
        Ok(status)
    }

    /// Waits for slot `index`'s child to exit and reaps it, emptying the slot. Closes
    /// its control pipe first, so a child waiting for orders sees EOF and ends.
    pub fn wait(&mut self, index: usize) -> io::Result<ExitStatus> {
        let mut running = self.slots[index]
            .take()
            .ok_or_else(|| io::Error::other(format!("slot {index} is empty")))?;
        drop(running.stdin.take());
        running.child.wait()
    }

    /// Takes slot `index`'s control pipe for the caller to write to as it likes (the
    /// server's supervisor feeds its workers through it without blocking); [`Self::tell`]
    /// skips that child from then on.
    pub fn take_stdin(&mut self, index: usize) -> Option<ChildStdin> {
        self.slots[index].as_mut()?.stdin.take()
    }

    /// Sends `line` on every control pipe still open (a child that is gone cannot care;
    /// its pipe is closed and left so).
    pub fn tell(&mut self, line: &str) {
        for running in self.slots.iter_mut().flatten() {
            if let Some(stdin) = &mut running.stdin {
                if writeln!(stdin, "{line}")
                    .and_then(|()| stdin.flush())
                    .is_err()
                {
                    running.stdin = None;
                }
            }
        }
    }

    /// Sends `signal` to every child not yet reaped.
    pub fn signal(&self, signal: libc::c_int) {
        for running in self.slots.iter().flatten() {
            if let Ok(pid) = libc::pid_t::try_from(running.child.id()) {
                // SAFETY: kill has no memory preconditions; the pid is our own child,
                // not yet reaped, so it cannot have been reused by another process.
                unsafe { libc::kill(pid, signal) };
            }
        }
    }

    /// SIGKILL to every child not yet reaped; they are reaped later (by [`Self::wait`],
    /// [`Self::try_wait`], [`Self::stop`] or the drop).
    pub fn kill_all(&mut self) {
        for running in self.slots.iter_mut().flatten() {
            let _ = running.child.kill();
        }
    }

    /// Waits until every child has exited or `deadline` passes, then kills and reaps
    /// the rest. Every slot is empty afterwards.
    pub fn stop(&mut self, deadline: Instant) {
        for index in 0..self.slots.len() {
            while self.slots[index].is_some() {
                match self.try_wait(index) {
                    Ok(Some(_)) => {}
                    Ok(None) if Instant::now() < deadline => {
                        thread::sleep(Duration::from_millis(50));
                    }
                    Ok(None) | Err(_) => {
                        if let Some(mut running) = self.slots[index].take() {
                            let _ = running.child.kill();
                            let _ = running.child.wait();
                        }
                    }
                }
            }
        }
    }
}

impl<M> Drop for Children<M> {
    fn drop(&mut self) {
        for running in self.slots.iter_mut().flatten() {
            let _ = running.child.kill();
        }
        for mut running in self.slots.drain(..).flatten() {
            let _ = running.child.wait();
        }
    }
}

/// A child's arguments: this process's own (`argv` without the program name), then
/// `extra`.
fn rerun_args(argv: impl Iterator<Item = OsString>, extra: &[String]) -> Vec<OsString> {
    argv.skip(1)
        .chain(extra.iter().map(OsString::from))
        .collect()
}

/// Called first in a child: die with the parent (Linux PR_SET_PDEATHSIG, as SIGTERM so
/// the child still stops gracefully), so no child outlives a parent that was killed
/// without a chance to stop it.
pub fn die_with_parent() {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and touches no memory of ours.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) };
    // The parent may have died before the prctl: then we were re-parented.
    // SAFETY: getppid has no preconditions.
    if unsafe { libc::getppid() } == 1 {
        std::process::exit(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Msg {
        n: u32,
    }

    fn sh(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    /// Every event until `index` closes (or 10 s pass).
    fn until_closed(children: &mut Children<Msg>, index: usize) -> Vec<(usize, Event<Msg>)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut events = Vec::new();
        while Instant::now() < deadline {
            if let Some(event) = children.next(Duration::from_millis(100)) {
                let done = event == (index, Event::Closed);
                events.push(event);
                if done {
                    break;
                }
            }
        }
        events
    }

    fn alive(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| !stat.contains(") Z "))
    }

    #[test]
    fn lines_arrive_parsed_and_garbage_is_skipped() {
        let mut children = Children::<Msg>::new("test child", 1);
        let script = r#"echo '{"n":1}'; echo 'not json'; echo '{"n":2}'"#;
        children.spawn_command(0, sh(script), Stdin::Null).unwrap();
        let events = until_closed(&mut children, 0);
        let expected = [
            (0, Event::Line(Msg { n: 1 })),
            (0, Event::Line(Msg { n: 2 })),
            (0, Event::Closed),
        ];
        assert_eq!(events, expected);
        assert!(children.wait(0).unwrap().success());
        assert_eq!(children.running(), 0);
    }

    #[test]
    fn the_control_pipe_carries_lines_and_its_eof() {
        let mut children = Children::<Msg>::new("test child", 2);
        // Echo each order back as a message; stop at EOF.
        let script = r#"while read -r n; do echo "{\"n\":$n}"; done"#;
        children
            .spawn_command(0, sh(script), Stdin::Control)
            .unwrap();
        children
            .spawn_command(1, sh(script), Stdin::Control)
            .unwrap();
        children.tell("7");
        let mut got = Vec::new();
        while got.len() < 2 {
            if let Some(event) = children.next(Duration::from_secs(10)) {
                got.push(event);
            } else {
                panic!("no answer to the order: {got:?}");
            }
        }
        got.sort_by_key(|(index, _)| *index);
        let line = |index| (index, Event::Line(Msg { n: 7 }));
        assert_eq!(got, [line(0), line(1)]);
        // wait closes the pipe, so the loop ends.
        assert!(children.wait(0).unwrap().success());
        assert!(children.wait(1).unwrap().success());
    }

    #[test]
    fn a_restarted_slot_drops_the_lines_of_its_predecessor() {
        let mut children = Children::<Msg>::new("test child", 1);
        children
            .spawn_command(0, sh(r#"echo '{"n":1}'"#), Stdin::Null)
            .unwrap();
        // Reap the first child without reading its line, then start a second one.
        let deadline = Instant::now() + Duration::from_secs(10);
        while children.try_wait(0).unwrap().is_none() {
            assert!(Instant::now() < deadline, "the first child did not exit");
            thread::sleep(Duration::from_millis(10));
        }
        children
            .spawn_command(0, sh(r#"echo '{"n":2}'"#), Stdin::Null)
            .unwrap();
        let events = until_closed(&mut children, 0);
        assert_eq!(events, [(0, Event::Line(Msg { n: 2 })), (0, Event::Closed)]);
    }

    #[test]
    fn stop_and_drop_leave_no_child_behind() {
        let mut children = Children::<Msg>::new("test child", 2);
        let a = children
            .spawn_command(0, sh("exec sleep 600"), Stdin::Null)
            .unwrap();
        // This one ignores SIGTERM (once it says so): stop must kill it at the deadline.
        // (Short sleeps, so none outlives the shell by more than a moment.)
        let script = r#"trap '' TERM; echo '{"n":0}'; while :; do sleep 0.1; done"#;
        let b = children.spawn_command(1, sh(script), Stdin::Null).unwrap();
        assert_eq!(
            children.next(Duration::from_secs(10)),
            Some((1, Event::Line(Msg { n: 0 })))
        );
        let started = Instant::now();
        children.signal(libc::SIGTERM);
        children.stop(Instant::now() + Duration::from_millis(300));
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "b was waited for"
        );
        assert_eq!(children.running(), 0);
        assert!(!alive(a) && !alive(b));

        let mut children = Children::<Msg>::new("test child", 1);
        let c = children
            .spawn_command(0, sh("exec sleep 600"), Stdin::Control)
            .unwrap();
        assert!(alive(c));
        drop(children);
        assert!(!alive(c), "the drop reaps: no zombie either");
    }

    #[test]
    fn children_rerun_the_command_line_with_extra_arguments() {
        let argv = ["wsreactor", "load", "--connections", "5"].map(OsString::from);
        let extra = ["--worker".to_owned(), "1/2".to_owned()];
        let args = rerun_args(argv.into_iter(), &extra);
        assert_eq!(args, ["load", "--connections", "5", "--worker", "1/2"]);
    }
}
