//! The routes that show the server: `/stats` (JSON), `/metrics` (Prometheus text) and
//! `/dashboard` (a page that polls `/stats` once a second).
//!
//! `/stats` and `/metrics` describe the whole server, from a [`View`]: with
//! `--workers N` the one the supervisor sent last (see `feed.rs`), the same whichever
//! worker answers; in a lone process its own counters, live, in the same shape. A
//! worker that has no view yet says so with a 503 rather than pass off its own counters
//! as the server's.

use std::borrow::Cow;

use super::env::Env;
use super::prometheus;
use super::routes::{Route, NOT_FOUND};
use super::stats::rss_bytes;
use super::view::View;
use crate::protocol::handshake::Refusal;
use crate::protocol::http::Status;

/// The live view served at `GET /dashboard`.
const DASHBOARD: &str = include_str!("../../static/dashboard.html");

/// 503: a worker asked for the server's counters before its supervisor sent any.
const NO_VIEW_YET: Refusal = Refusal {
    status: Status::SERVICE_UNAVAILABLE,
    headers: &[("Retry-After", "1")],
    name: "stats_unavailable",
    reason: "this worker has no view of the whole server from its supervisor yet",
};

/// A 200 answer.
#[derive(Debug)]
pub struct Page {
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: Cow<'static, [u8]>,
}

impl Page {
    /// The response headers: counters are never cached, since they change every second.
    pub fn headers(&self) -> [(&'static str, &'static str); 2] {
        [
            ("Content-Type", self.content_type),
            ("Cache-Control", "no-store"),
        ]
    }
}

/// Answers `route` (one of this file's), or says why not.
pub fn answer(route: Route<'_>, env: &mut Env<'_>) -> Result<Page, Refusal> {
    let render: fn(&View, u32) -> Page = match route {
        Route::Dashboard => {
            return Ok(Page {
                content_type: "text/html; charset=utf-8",
                body: Cow::Borrowed(DASHBOARD.as_bytes()),
            })
        }
        Route::Stats => stats_json,
        Route::Metrics => metrics_text,
        // Not routes of this file.
        Route::Page | Route::Echo | Route::Chat(_) => return Err(NOT_FOUND),
    };
    match env.config.worker_id {
        Some(id) => Ok(render(env.view.ok_or(NO_VIEW_YET)?, id)),
        None => {
            // The gauges the reactor otherwise refreshes once a status interval.
            env.stats.rss_bytes = rss_bytes().unwrap_or(0);
            env.stats.rooms = env.rooms.len() as u64;
            let own = View::alone(env.stats, env.uptime_ms, std::process::id());
            Ok(render(&own, 0))
        }
    }
}

/// The `/stats` body, answered by worker `worker`.
fn stats_json(view: &View, worker: u32) -> Page {
    let report = view.report(worker, std::process::id());
    Page {
        content_type: "application/json",
        body: Cow::Owned(serde_json::to_vec_pretty(&report).expect("counters serialize")),
    }
}

/// The `/metrics` body (the same whichever worker answers).
fn metrics_text(view: &View, _worker: u32) -> Page {
    Page {
        content_type: prometheus::CONTENT_TYPE,
        body: Cow::Owned(prometheus::render(view).into_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::config::Config;
    use crate::server::rooms::Rooms;
    use crate::server::stats::Stats;

    fn ask(route: Route<'_>, config: &Config, view: Option<&View>) -> Result<Page, Refusal> {
        let (mut stats, mut rooms, mut outbox) = (Stats::default(), Rooms::default(), Vec::new());
        stats.websockets = 4;
        let mut env = Env {
            config,
            stats: &mut stats,
            rooms: &mut rooms,
            outbox: &mut outbox,
            codec: &mut None,
            now: 0,
            uptime_ms: 2_500,
            view,
        };
        answer(route, &mut env)
    }

    #[test]
    fn a_lone_process_answers_with_its_own_live_counters() {
        let config = Config::from_args(&[]);
        let page = ask(Route::Stats, &config, None).unwrap();
        assert_eq!(page.content_type, "application/json");
        let body: serde_json::Value = serde_json::from_slice(&page.body).unwrap();
        assert_eq!(body["websockets"], 4);
        assert_eq!(body["workers"][0]["websockets"], 4);
        assert_eq!(body["uptime_ms"], 2_500);
        assert!(body["rss_bytes"].as_u64() > Some(0), "{body}");
        let metrics = ask(Route::Metrics, &config, None).unwrap();
        assert!(metrics
            .content_type
            .starts_with("text/plain; version=0.0.4"));
        let text = String::from_utf8(metrics.body.into_owned()).unwrap();
        assert!(text.contains("\nwsreactor_websockets 4\n"), "{text}");
    }

    #[test]
    fn a_worker_answers_from_the_supervisors_view_or_503() {
        let config = Config::from_args(&["--worker-id", "1"]);
        let refusal = ask(Route::Stats, &config, None).unwrap_err();
        assert_eq!(refusal.status.0, 503);
        assert_eq!(
            ask(Route::Metrics, &config, None).unwrap_err().status.0,
            503
        );
        let view = View {
            uptime_ms: 9_000,
            ..View::alone(
                &Stats {
                    websockets: 40,
                    ..Stats::default()
                },
                0,
                1,
            )
        };
        let page = ask(Route::Stats, &config, Some(&view)).unwrap();
        let body: serde_json::Value = serde_json::from_slice(&page.body).unwrap();
        assert_eq!(
            body["websockets"], 40,
            "the view's, not this worker's own 4"
        );
        assert_eq!(body["worker"], 1);
        assert_eq!(body["uptime_secs"], 9);
    }

    #[test]
    fn the_dashboard_needs_no_view() {
        let config = Config::from_args(&["--worker-id", "0"]);
        let page = ask(Route::Dashboard, &config, None).unwrap();
        assert!(page.content_type.starts_with("text/html"));
        assert!(String::from_utf8_lossy(&page.body).contains("/stats"));
        assert_eq!(ask(Route::Page, &config, None).unwrap_err().status.0, 404);
    }
}
