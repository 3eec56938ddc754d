//! A `redis-server` of the test's own (Debian's), on a free loopback port with nothing
//! saved to disk, killed by its PID when the guard drops (panics included), and
//! `redis-cli` to look at it and to publish like another service would.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A running `redis-server`; killed and reaped on drop.
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
}

impl Redis {
    /// Starts one on a free port and waits until it answers. A port found free can be
    /// taken by another test's process before Redis binds it: then Redis exits, and
    /// another port is tried.
    pub fn start() -> Redis {
        for _ in 0..5 {
            let mut redis = Redis {
                child: None,
                port: free_port(),
            };
            if redis.try_start() {
                return redis;
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    /// `redis://127.0.0.1:PORT`, for `--pubsub`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The PID of the running server.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("redis runs").id()
    }

    /// Kills the server (SIGKILL): connections to it end at once.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (after [`Redis::kill`]).
    pub fn restart(&mut self) {
        assert!(
            self.try_start(),
            "redis-server did not start again on {}",
            self.port
        );
    }

    /// Starts the server on `self.port`; false if it exited (the port was taken).
    fn try_start(&mut self) -> bool {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--protected-mode", "no", "--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server (Debian's redis-server package)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let child = self.child.as_mut().expect("just started");
            if let Ok(Some(_)) = child.try_wait() {
                self.child = None;
                return false;
            }
            // Our own server answers: something else on the port would not say PONG,
            // or would leave ours to exit.
            if self
                .cli_output(&["PING"])
                .is_some_and(|out| out.trim() == "PONG")
            {
                let child = self.child.as_mut().expect("just started");
                if let Ok(None) = child.try_wait() {
                    return true;
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not answer");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` (SIGSTOP, SIGCONT) to the server.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill has no preconditions; the PID is our own child's.
        assert_eq!(unsafe { libc::kill(self.pid() as i32, signal) }, 0);
    }

    /// Runs `redis-cli` with `args` against this server; its output.
    pub fn cli(&self, args: &[&str]) -> String {
        self.cli_output(args)
            .unwrap_or_else(|| panic!("redis-cli {args:?} failed"))
    }

    fn cli_output(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("run redis-cli");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        // redis-cli exits 0 on a refused connection too, saying so on stderr.
        (out.status.success() && out.stderr.is_empty()).then_some(text)
    }

    /// How many connections subscribe to `channel`.
    pub fn subscribers(&self, channel: &str) -> u64 {
        let out = self.cli(&["PUBSUB", "NUMSUB", channel]);
        out.lines()
            .nth(1)
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        // SIGKILL ends a stopped server too.
        self.kill();
    }
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().unwrap().port()
}
