//! Request telemetry: every request runs in a span that carries its request id, method and
//! route pattern (`startup::server`), so every log line written while serving it names the
//! request; the id is sent back in `X-Request-Id`. Never the path or query: those carry session
//! tokens. Log lines go to stderr through a queue and a writer thread of their own
//! (`init_logging`), as JSON by a layer of the service's own (`json_lines`) or for people.

mod json_lines;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;

/// A caller's own `X-Request-Id` (a proxy's, a client's) is kept when it is a plain token, so
/// the same id follows a request through every system; anything else is replaced.
static CALLER_ID: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"^[A-Za-z0-9._:-]{8,64}$").expect("valid pattern"));

/// The id of a request with these headers: the caller's own when it is a plain token, else a
/// new one.
pub fn request_id(headers: &actix_web::http::header::HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| CALLER_ID.is_match(v))
        .map_or_else(new_request_id, str::to_string)
}

/// A new id in the shape of a version-4 UUID: 60 random bits drawn once per process, then a
/// count from a random start. Ids never repeat within a process (2^62 of them) and differ
/// between processes, without a call to the system's random source per request (a profile put
/// 2 % of a request's CPU in it).
fn new_request_id() -> String {
    const LOW: u64 = (1 << 62) - 1;
    static PROCESS: LazyLock<(u64, u64)> = LazyLock::new(|| (rand::random(), rand::random()));
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let (prefix, start) = *PROCESS;
    let low = start.wrapping_add(COUNT.fetch_add(1, Ordering::Relaxed)) & LOW | 1 << 63;
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        prefix >> 32,
        (prefix >> 16) & 0xffff,
        prefix & 0x0fff,
        low >> 48,
        low & 0xffff_ffff_ffff
    )
}

/// A fifth of a second of lines at the most the service logs here (a line per request, 80 000
/// a second). The queue's places are allocated up front: tracing-appender's default of 128 000
/// lines held 4 MB of the idle process's 30.
const LOG_QUEUE_LINES: usize = 16_384;

/// What the writer thread gathers before it writes to the sink; it writes what it has whenever
/// the queue is empty, so a line waits for nothing but the lines before it.
const LOG_BUFFER_BYTES: usize = 64 * 1024;

/// Lines dropped because the queue was full, for `/metrics` (logging is the process's own).
static DROPPED: std::sync::OnceLock<tracing_appender::non_blocking::ErrorCounter> =
    std::sync::OnceLock::new();

/// How many log lines were dropped so far because whoever reads stderr did not keep up.
pub fn dropped_log_lines() -> u64 {
    DROPPED.get().map_or(0, |c| c.dropped_lines() as u64)
}

/// A writer to `sink` through a queue of `LOG_QUEUE_LINES` and a thread of its own, which writes
/// the lines waiting together (one write to the sink for each time it empties the queue, instead
/// of one per line). A request or a transaction never waits for the sink: when the queue is full (a stalled log reader), the
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
        .finish(std::io::BufWriter::with_capacity(LOG_BUFFER_BYTES, sink))
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
    match format {
        LogFormat::Json => {
            use tracing_subscriber::layer::SubscriberExt;
            use tracing_subscriber::util::SubscriberInitExt;
            tracing_subscriber::registry()
                .with(filter)
                .with(json_lines::JsonLines::new(writer))
                .init();
        }
        LogFormat::Pretty => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(writer)
            .with_ansi(std::io::stderr().is_terminal())
            .init(),
    }
    guard
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_uuid_shaped_and_never_repeat() {
        let ids: std::collections::HashSet<String> =
            (0..10_000).map(|_| new_request_id()).collect();
        assert_eq!(ids.len(), 10_000);
        let shape = regex::Regex::new(
            "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
        )
        .unwrap();
        assert!(ids.iter().all(|id| shape.is_match(id)), "{ids:?}");
    }

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
            // Lines of a request line's length: the writer thread's buffer takes a few hundred.
            let line = format!("{}\n", "x".repeat(200));
            for _ in 0..LOG_QUEUE_LINES * 2 {
                let _ = writer.write_all(line.as_bytes());
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
