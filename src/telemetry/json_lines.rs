//! The JSON log line, written by a layer of its own: one object per event, in the shape
//! `tracing-subscriber`'s JSON format has (`timestamp`, `level`, `fields`, `target`, and `span`:
//! the current span's fields and name). That format stores each span's fields as JSON text,
//! then reads them back into a `serde_json::Value` for every line written inside the span; a
//! profile of the service under load put 17 % of its CPU there. Here a span's fields are kept
//! as the JSON fragment they are written as, and a line is built in a buffer of the thread's.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::Write as _;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// Writes every event as one JSON line to what `make_writer` makes.
pub struct JsonLines<W> {
    make_writer: W,
}

impl<W> JsonLines<W> {
    pub fn new(make_writer: W) -> Self {
        Self { make_writer }
    }
}

/// A span's fields as a JSON fragment: `"key":value,` for each.
struct SpanFields(String);

impl<S, W> tracing_subscriber::Layer<S> for JsonLines<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fragment(String::with_capacity(128));
        attrs.record(&mut fields);
        span.extensions_mut().insert(SpanFields(fields.0));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(SpanFields(fields)) = extensions.get_mut::<SpanFields>() {
            let mut more = Fragment(std::mem::take(fields));
            values.record(&mut more);
            *fields = more.0;
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        thread_local! {
            static LINE: RefCell<String> = RefCell::new(String::with_capacity(512));
        }
        LINE.with(|line| {
            let Ok(mut line) = line.try_borrow_mut() else {
                return; // an event written while writing one (never by this code)
            };
            line.clear();
            write_line(&mut line, event, &ctx);
            let _ = self.make_writer.make_writer().write_all(line.as_bytes());
        });
    }
}

fn write_line<S>(line: &mut String, event: &Event<'_>, ctx: &Context<'_, S>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let meta = event.metadata();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let _ = write!(
        line,
        r#"{{"timestamp":"{now}","level":"{}","fields":{{"#,
        meta.level()
    );
    let mut fields = Fragment(std::mem::take(line));
    event.record(&mut fields);
    *line = fields.0;
    close(line, '}');
    line.push_str(r#","target":"#);
    push_json_str(line, meta.target());
    if let Some(span) = ctx.event_span(event) {
        line.push_str(r#","span":{"#);
        if let Some(SpanFields(fields)) = span.extensions().get::<SpanFields>() {
            line.push_str(fields);
        }
        line.push_str(r#""name":"#);
        push_json_str(line, span.name());
        line.push('}');
    }
    line.push_str("}\n");
}

/// Ends a fragment's object: its trailing comma (if any) becomes `end`.
fn close(line: &mut String, end: char) {
    if line.ends_with(',') {
        line.pop();
    }
    line.push(end);
}

fn push_json_str(line: &mut String, value: &str) {
    // Writing into a String cannot fail.
    let _ = serde_json::to_writer(StringWriter(line), value);
}

/// `io::Write` into a String, for serde_json (it writes valid UTF-8 only).
struct StringWriter<'a>(&'a mut String);

impl std::io::Write for StringWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = std::str::from_utf8(buf)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        self.0.push_str(text);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Fields written as `"key":value,`.
struct Fragment(String);

impl Fragment {
    fn key(&mut self, field: &Field) {
        push_json_str(&mut self.0, field.name());
        self.0.push(':');
    }
}

impl Visit for Fragment {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        push_json_str(&mut self.0, value);
        self.0.push(',');
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(self.0, "{value},");
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        let _ = write!(self.0, "{value},");
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        let _ = write!(self.0, "{value},");
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        match serde_json::Number::from_f64(value) {
            Some(number) => {
                let _ = write!(self.0, "{number},");
            }
            None => self.0.push_str("null,"),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.key(field);
        push_json_str(&mut self.0, &format!("{value:?}"));
        self.0.push(',');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Lines {
        type Writer = Lines;
        fn make_writer(&'w self) -> Lines {
            self.clone()
        }
    }

    #[test]
    fn a_line_names_its_fields_target_and_current_span() {
        let lines = Lines::default();
        let subscriber = tracing_subscriber::registry().with(JsonLines::new(lines.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(quoted = "a \"b\"\n", n = 3_u64, "outside");
            let span = tracing::info_span!("request", request_id = %"r-1", route = "/x/{id}", status = tracing::field::Empty);
            let _in = span.enter();
            span.record("status", 200_i64);
            tracing::warn!(elapsed_ms = 2_u64, ok = true, ratio = 0.5_f64, "request");
        });
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let parsed: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert_eq!(parsed.len(), 2, "{text}");
        assert_eq!(parsed[0]["level"], "INFO");
        assert_eq!(
            parsed[0]["fields"],
            serde_json::json!({"message": "outside", "quoted": "a \"b\"\n", "n": 3})
        );
        assert!(parsed[0].get("span").is_none());
        assert_eq!(parsed[1]["level"], "WARN");
        assert_eq!(
            parsed[1]["fields"],
            serde_json::json!({"message": "request", "elapsed_ms": 2, "ok": true, "ratio": 0.5})
        );
        assert_eq!(
            parsed[1]["span"],
            serde_json::json!({"request_id": "r-1", "route": "/x/{id}", "status": 200, "name": "request"})
        );
        assert_eq!(
            parsed[1]["target"],
            "treefort_webpay::telemetry::json_lines::tests"
        );
        let stamp = parsed[1]["timestamp"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(stamp).is_ok() && stamp.ends_with('Z'),
            "{stamp}"
        );
    }
}
