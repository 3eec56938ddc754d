//! The `wsreactor limits` report as text: what [`Report`]'s fields mean for a reader,
//! numbers grouped and sizes in binary units. The JSON (`--json`) is the same report
//! through serde.

use std::fmt;

use super::figures::{count, size};
use super::{sizing, Report};

impl fmt::Display for Report {
    /// One aligned row per limit (2 + 22 + 11 + 2 columns, 43 left for the note), so the
    /// report reads on an 80-column terminal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (nofile, c) = (self.nofile, &self.capacity);
        let raised = match nofile {
            Some(n) if n.soft > n.soft_before => {
                format!("raised from {}", count(Some(n.soft_before)))
            }
            Some(n) if n.soft >= n.hard => "already at the hard limit".into(),
            _ => "not raised".into(),
        };
        let (user, kernel) = (
            self.user_bytes_per_connection,
            self.kernel_bytes_per_connection,
        );
        let tcp_mem = self
            .tcp_mem_pages
            .zip(self.page_size)
            .map(|(t, p)| t.max.saturating_mul(p));
        let total = count(c.total);
        write!(
            f,
            "\
Limits on concurrent TCP connections

Server process: one connection holds one descriptor
  RLIMIT_NOFILE soft    {soft:>11}  per process; {raised}
  RLIMIT_NOFILE hard    {hard:>11}  ceiling for the soft limit
  probed (--probe)      {probed:>11}  descriptors opened until EMFILE
  fs.nr_open            {nr_open:>11}  kernel ceiling for any hard limit

System-wide
  fs.file-max           {file_max:>11}  open files, all processes together
  fs.file-nr            {file_nr:>11}  open files allocated now
  net.core.somaxconn    {somaxconn:>11}  accept queue per listener, not a cap
  tcp_max_syn_backlog   {syn_backlog:>11}  half-open handshakes, not a cap
  epoll max_user_watches{watches:>11}  watched sockets per user, all processes
  net.ipv4.tcp_mem max  {tcp_mem:>11}  socket buffers; an idle socket has none

Memory
  MemTotal              {mem_total:>11}
  MemAvailable          {mem_available:>11}
  per connection        {per_conn:>11}  {user} B user + {kernel} B kernel socket

Client side (the load generator), not the server
  ip_local_port_range   {range:>11}  ephemeral ports a client draws from
  ports per pair        {ports:>11}  per (source IP -> server IP:port)

  The server's port is shared by every connection: TCP tells them apart
  by (client IP, client port, server IP, server port), so the 16-bit
  \"65,535 port limit\" bounds one client address talking to one server
  address:port, never the server. More source addresses lift it.

Capacity (server side)
  per process           {per_process:>11}  soft limit minus {reserve} reserved
  free open files       {file_free:>11}  fs.file-max minus fs.file-nr
  by memory             {by_memory:>11}  MemAvailable / per connection
  {workers:<22}{total:>11}  least of {n} x per process and the above
  binds first: {binds}
  client source addresses for {total} connections: {sources} (1/4 full)
",
            soft = count(nofile.map(|n| n.soft)),
            hard = count(nofile.map(|n| n.hard)),
            probed = self
                .nofile_probed
                .map_or("not run".into(), |p| count(Some(p))),
            nr_open = count(self.nr_open),
            file_max = count(self.file_max),
            file_nr = count(self.file_nr),
            somaxconn = count(self.somaxconn),
            syn_backlog = count(self.tcp_max_syn_backlog),
            watches = count(self.epoll_max_user_watches),
            tcp_mem = size(tcp_mem),
            mem_total = size(self.mem_total_bytes),
            mem_available = size(self.mem_available_bytes),
            per_conn = size(Some(user + kernel)),
            kernel = count(Some(kernel)),
            range = self
                .port_range
                .map_or("unknown".into(), |r| format!("{}-{}", r.low, r.high)),
            ports = count(self.port_range.map(|r| r.count)),
            per_process = count(c.per_process),
            file_free = count(c.file_max_free),
            by_memory = count(c.by_memory),
            workers = format!(
                "with {} worker{}",
                c.workers,
                if c.workers == 1 { "" } else { "s" }
            ),
            n = c.workers,
            binds = c.binds_first.map_or("unknown".into(), |l| l.to_string()),
            sources = count(self.client_sources_needed),
            reserve = sizing::FD_RESERVE,
        )?;
        match &self.sizing {
            Some(sizing) => write!(f, "{sizing}"),
            None => Ok(()),
        }
    }
}
