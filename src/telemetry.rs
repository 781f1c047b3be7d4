//! Request telemetry: every request runs in a span (`tracing-actix-web`) that carries its request
//! id, method and route pattern, so every log line written while serving it names the request;
//! the id is sent back in `X-Request-Id`. Never the path or query: those carry session tokens.
//! Log lines go to stderr through a queue and a writer thread of their own (`init_logging`).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::HttpMessage;
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};

/// What the span of a request names, kept in the request's extensions for the request line,
/// the metrics and `X-Request-Id` (the route pattern is matched once per request).
#[derive(Clone)]
pub struct RequestInfo {
    /// As logged and sent back in `X-Request-Id`.
    pub id: String,
    /// The route pattern (`/checkout/{token}`), or `unmatched`: never the path.
    pub route: String,
}

/// A caller's own `X-Request-Id` (a proxy's, a client's) is kept when it is a plain token, so
/// the same id follows a request through every system; anything else is replaced.
static CALLER_ID: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"^[A-Za-z0-9._:-]{8,64}$").expect("valid pattern")
});

/// The span of one request: `request{request_id=… method=… route=…}`.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let from_caller = request
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| CALLER_ID.is_match(v))
            .map(str::to_string);
        let id = from_caller.unwrap_or_else(|| {
            request
                .extensions()
                .get::<RequestId>()
                .map(|id| id.to_string())
                .unwrap_or_default()
        });
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "unmatched".into());
        let span = tracing::info_span!(
            "request",
            request_id = %id,
            method = %request.method(),
            route = %route,
        );
        request.extensions_mut().insert(RequestInfo { id, route });
        span
    }

    fn on_request_end<B: MessageBody>(
        _span: Span,
        _outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        // One line per request is written by the service's own middleware, inside this span.
    }
}

/// A fifth of a second of lines at the most the service logs here (a line per request, 80 000
/// a second). The queue's places are allocated up front: tracing-appender's default of 128 000
/// lines held 4 MB of the idle process's 30.
const LOG_QUEUE_LINES: usize = 16_384;

/// Lines dropped because the queue was full, for `/metrics` (logging is the process's own).
static DROPPED: std::sync::OnceLock<tracing_appender::non_blocking::ErrorCounter> =
    std::sync::OnceLock::new();

/// How many log lines were dropped so far because whoever reads stderr did not keep up.
pub fn dropped_log_lines() -> u64 {
    DROPPED.get().map_or(0, |c| c.dropped_lines() as u64)
}

/// A writer to `sink` through a queue of `LOG_QUEUE_LINES` and a thread of its own. A request or
/// a transaction never waits for the sink: when the queue is full (a stalled log reader), the
/// line is dropped and counted instead (some lines are written while the SQLite writers' turn is
/// held, so a blocking queue stopped the service).
pub fn log_writer<W: std::io::Write + Send + 'static>(
    sink: W,
) -> (
    tracing_appender::non_blocking::NonBlocking,
    tracing_appender::non_blocking::WorkerGuard,
) {
    tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .finish(sink)
}

/// Logs to stderr through `log_writer`, as JSON or for people (`LOG_FORMAT`), filtered by
/// `RUST_LOG` (default `info`).
pub fn init_logging(
    format: Option<crate::config::LogFormat>,
) -> tracing_appender::non_blocking::WorkerGuard {
    use crate::config::LogFormat;
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let format = format.unwrap_or(if std::io::stderr().is_terminal() {
        LogFormat::Pretty
    } else {
        LogFormat::Json
    });
    let (writer, guard) = log_writer(std::io::stderr());
    let _ = DROPPED.set(writer.error_counter());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Json => builder.json().with_span_list(false).init(),
        LogFormat::Pretty => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    guard
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_caller_ids_are_kept() {
        for good in [
            "0b6a3c5e-1f2d-4c3b-9a8e-7d6c5b4a3f21",
            "req_12345678",
            "abc.def:12",
        ] {
            assert!(super::CALLER_ID.is_match(good), "{good}");
        }
        for bad in [
            "short",
            "has space here",
            "a\nb-injected-line",
            &"x".repeat(65),
        ] {
            assert!(!super::CALLER_ID.is_match(bad), "{bad}");
        }
    }

    /// A log reader that never reads: every write blocks until the test ends.
    struct Stalled(std::sync::Mutex<std::sync::mpsc::Receiver<()>>);

    impl std::io::Write for Stalled {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.0.lock().unwrap().recv();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_log_reader_drops_lines_and_never_blocks_the_writer() {
        let (release, stalled) = std::sync::mpsc::channel();
        let (writer, guard) = log_writer(Stalled(std::sync::Mutex::new(stalled)));
        let dropped = writer.error_counter();
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut writer = writer;
            for _ in 0..LOG_QUEUE_LINES * 2 {
                let _ = writer.write_all(b"a line\n");
            }
            let _ = done.send(());
        });
        // A blocking queue would never get here: the reader takes nothing.
        assert!(
            finished
                .recv_timeout(std::time::Duration::from_secs(30))
                .is_ok(),
            "writing lines waited for the stalled reader"
        );
        // What the queue could not hold (less the few lines the writer thread took out).
        assert!(dropped.dropped_lines() > LOG_QUEUE_LINES / 2);
        drop(release);
        drop(guard);
    }
}
