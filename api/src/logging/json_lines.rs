//! The log line writer: one JSON object per event, handed to stdout whole.
//!
//! tracing-subscriber's JSON formatter wrote the same lines, but a third of a
//! get-by-id's instructions went into its one request line (callgrind: ~18k
//! of ~59k instructions per request): every field went through serde and a
//! fmt-to-io adapter, and the timestamp's calendar date was worked out anew
//! for each line. This layer escapes straight into a per-thread buffer that
//! every line reuses, works the date out once per second, and gives the sink
//! each line in one write (one `write(2)` through stdout's line buffer).
//!
//! The lines keep the shape they had:
//! `{"timestamp":"2026-11-25T04:03:13.740156Z","level":"INFO","message":"request",`
//! then the event's fields, `"target":"api::logging"`, and, inside a span (in
//! Lambda, the runtime's span per invocation), `"span":{<its fields>,"name":"…"}`.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::{LookupSpan, SpanRef};

/// Where finished lines go.
pub trait LineSink: Send + Sync + 'static {
    /// Writes one line, its newline included. Logging never fails a request,
    /// so a line the sink cannot take is dropped.
    fn write_line(&self, line: &[u8]);
}

impl LineSink for std::io::Stdout {
    fn write_line(&self, line: &[u8]) {
        let _ = self.lock().write_all(line);
    }
}

/// A [`Layer`] writing each event as one JSON line to a [`LineSink`].
#[derive(Debug)]
pub struct JsonLines<S> {
    sink: S,
}

impl<S: LineSink> JsonLines<S> {
    pub fn new(sink: S) -> Self {
        Self { sink }
    }
}

/// A span's fields, already written as JSON members, each followed by a comma.
struct SpanFields(String);

/// Per-thread state reused by every line the thread writes.
#[derive(Default)]
struct Scratch {
    line: String,
    clock: SecondCache,
}

/// A buffer that one oversized line grew is given back rather than kept.
const KEPT_BUFFER_CAPACITY: usize = 16 * 1024;

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

impl<R, S> Layer<R> for JsonLines<S>
where
    R: Subscriber + for<'a> LookupSpan<'a>,
    S: LineSink,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, R>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = String::new();
        attrs.record(&mut JsonMembers { out: &mut fields });
        span.extensions_mut().insert(SpanFields(fields));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, R>) {
        let Some(span) = ctx.span(id) else { return };
        if let Some(SpanFields(fields)) = span.extensions_mut().get_mut::<SpanFields>() {
            values.record(&mut JsonMembers { out: fields });
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, R>) {
        let now = SystemTime::now();
        let span = ctx.event_span(event);
        let write = |scratch: &mut Scratch| {
            let Scratch { line, clock } = scratch;
            line.clear();
            write_line(line, clock, now, event, span.as_ref());
            self.sink.write_line(line.as_bytes());
            if line.capacity() > KEPT_BUFFER_CAPACITY {
                *line = String::new();
            }
        };
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => write(&mut scratch),
            // An event raised while this thread writes a line (by a field's
            // Debug impl: the global dispatcher does not stop re-entry) gets
            // a buffer of its own.
            Err(_) => write(&mut Scratch::default()),
        });
    }
}

fn write_line<R>(
    line: &mut String,
    clock: &mut SecondCache,
    now: SystemTime,
    event: &Event<'_>,
    span: Option<&SpanRef<'_, R>>,
) where
    R: for<'a> LookupSpan<'a>,
{
    let metadata = event.metadata();
    line.push_str("{\"timestamp\":\"");
    clock.write_timestamp(line, now);
    line.push_str("\",\"level\":\"");
    line.push_str(metadata.level().as_str());
    line.push_str("\",");
    event.record(&mut JsonMembers { out: line });
    line.push_str("\"target\":");
    push_json_string(line, metadata.target());
    if let Some(span) = span {
        line.push_str(",\"span\":{");
        if let Some(SpanFields(fields)) = span.extensions().get::<SpanFields>() {
            line.push_str(fields);
        }
        line.push_str("\"name\":");
        push_json_string(line, span.name());
        line.push('}');
    }
    line.push_str("}\n");
}

/// Writes each field it visits as a JSON member followed by a comma.
struct JsonMembers<'a> {
    out: &'a mut String,
}

impl JsonMembers<'_> {
    fn key(&mut self, field: &Field) {
        push_json_string(self.out, field.name());
        self.out.push(':');
    }

    fn number(&mut self, field: &Field, value: impl fmt::Display) {
        self.key(field);
        let _ = write!(self.out, "{value},");
    }
}

impl Visit for JsonMembers<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        push_json_string(self.out, value);
        self.out.push(',');
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.number(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.number(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.number(field, value);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.number(field, value);
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.number(field, value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.number(field, value);
        } else {
            // JSON has no NaN or infinity.
            self.number(field, "null");
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field);
        self.out.push('"');
        let _ = write!(Escaping(self.out), "{value:?}");
        self.out.push_str("\",");
    }
}

fn push_json_string(out: &mut String, value: &str) {
    out.push('"');
    escape_into(out, value);
    out.push('"');
}

/// The bytes a JSON string escapes: `"`, `\` and the control characters.
const NEEDS_ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = true;
        byte += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// Appends `value` with JSON string escaping; runs needing none are copied whole.
fn escape_into(out: &mut String, value: &str) {
    let mut unescaped_from = 0;
    for (index, byte) in value.bytes().enumerate() {
        if !NEEDS_ESCAPE[usize::from(byte)] {
            continue;
        }
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            _ => "",
        };
        // Only ASCII bytes are escaped, so `index` is a char boundary.
        out.push_str(&value[unescaped_from..index]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escape);
        }
        unescaped_from = index + 1;
    }
    out.push_str(&value[unescaped_from..]);
}

/// Escapes what a `Debug` or `Display` impl writes, as it writes it.
struct Escaping<'a>(&'a mut String);

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        escape_into(self.0, text);
        Ok(())
    }
}

/// `YYYY-MM-DDTHH:MM:SS` of the last second a line was written in.
#[derive(Default)]
struct SecondCache {
    second: Option<u64>,
    formatted: String,
}

impl SecondCache {
    /// Appends `now` as RFC 3339 UTC with microseconds: `2026-11-25T04:03:13.740156Z`.
    fn write_timestamp(&mut self, out: &mut String, now: SystemTime) {
        // A clock set before 1970 is logged as the epoch.
        let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        let second = since_epoch.as_secs();
        if self.second != Some(second) {
            self.formatted.clear();
            write_date_time(&mut self.formatted, second);
            self.second = Some(second);
        }
        out.push_str(&self.formatted);
        let _ = write!(out, ".{:06}Z", since_epoch.subsec_micros());
    }
}

fn write_date_time(out: &mut String, unix_seconds: u64) {
    let (year, month, day) = civil_from_days(unix_seconds / 86_400);
    let of_day = unix_seconds % 86_400;
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    );
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for non-negative days): counted in 400-year eras of
/// 146,097 days, with years starting on March 1 so the leap day comes last.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let shifted = days + 719_468; // days since 0000-03-01
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::{Value, json};
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl LineSink for Captured {
        fn write_line(&self, line: &[u8]) {
            self.0.lock().unwrap().extend_from_slice(line);
        }
    }

    impl Captured {
        /// Each line, parsed; a line that is not one JSON object fails the test.
        fn lines(&self) -> Vec<Value> {
            let bytes = self.0.lock().unwrap().clone();
            let text = String::from_utf8(bytes).unwrap();
            assert!(text.ends_with('\n'), "{text:?}");
            text.lines()
                .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
                .collect()
        }
    }

    fn capture(log: impl FnOnce()) -> Vec<Value> {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::registry().with(JsonLines::new(captured.clone()));
        tracing::subscriber::with_default(subscriber, log);
        captured.lines()
    }

    #[test]
    fn a_line_has_the_event_fields_between_level_and_target() {
        let lines = capture(|| {
            tracing::info!(
                request_id = "abc",
                status = 200u16,
                latency_ms = 0.25,
                cold = true,
                delta = -3i64,
                "request"
            );
        });
        let line = &lines[0];
        let keys: Vec<&str> = line
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "timestamp",
                "level",
                "message",
                "request_id",
                "status",
                "latency_ms",
                "cold",
                "delta",
                "target"
            ]
        );
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "request");
        assert_eq!(line["request_id"], "abc");
        assert_eq!(line["status"], 200);
        assert_eq!(line["latency_ms"], 0.25);
        assert_eq!(line["cold"], true);
        assert_eq!(line["delta"], -3);
        assert_eq!(line["target"], module_path!());
        assert_eq!(line.get("span"), None, "no span, no span member");
    }

    #[test]
    fn any_text_comes_back_unchanged() {
        let texts = [
            "plain",
            "",
            "quote \" backslash \\ slash /",
            "new\nline\r\ttab",
            "\u{0}\u{1}\u{1f}\u{7f}",
            "é e\u{301} 日本 🦀",
            "\"},\"level\":\"ERROR",
        ];
        for text in texts {
            let lines = capture(|| {
                tracing::warn!(as_str = text, as_display = %text, as_debug = ?text, "{text}");
            });
            let line = &lines[0];
            assert_eq!(line["as_str"], text);
            assert_eq!(line["as_display"], text);
            assert_eq!(line["as_debug"], format!("{text:?}"));
            assert_eq!(line["message"], text);
            assert_eq!(line["level"], "WARN", "{text:?} cannot forge members");
        }
    }

    #[test]
    fn non_finite_numbers_are_null() {
        let lines = capture(|| tracing::info!(nan = f64::NAN, inf = f64::INFINITY, "x"));
        assert_eq!(lines[0]["nan"], Value::Null);
        assert_eq!(lines[0]["inf"], Value::Null);
    }

    #[test]
    fn a_line_inside_a_span_carries_its_fields_and_name() {
        let lines = capture(|| {
            let span = tracing::info_span!(
                "Lambda runtime invoke",
                requestId = "4f6c",
                xrayTraceId = tracing::field::Empty
            );
            span.record("xrayTraceId", "Root=1-2");
            let _entered = span.enter();
            tracing::info!("inside");
        });
        assert_eq!(
            lines[0]["span"],
            json!({"requestId": "4f6c", "xrayTraceId": "Root=1-2", "name": "Lambda runtime invoke"})
        );
    }

    #[test]
    fn a_line_raised_while_the_thread_buffer_is_in_use_is_still_written() {
        let lines = capture(|| {
            SCRATCH.with(|scratch| {
                let _in_use = scratch.borrow_mut();
                tracing::info!("while in use");
            });
        });
        assert_eq!(lines[0]["message"], "while in use");
    }

    #[test]
    fn timestamps_are_utc_with_microseconds() {
        let at = |seconds: u64, micros: u64| {
            let mut clock = SecondCache::default();
            let mut out = String::new();
            let now = UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_micros(micros);
            clock.write_timestamp(&mut out, now);
            out
        };
        // Expected values from `date -u -d @<seconds>`.
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400, 7), "2000-02-29T00:00:00.000007Z");
        assert_eq!(at(1_234_567_890, 999_999), "2009-02-13T23:31:30.999999Z");
        assert_eq!(at(1_709_164_800, 0), "2024-02-29T00:00:00.000000Z");
        assert_eq!(at(1_795_575_057, 123_456), "2026-11-25T02:50:57.123456Z");
        assert_eq!(at(4_102_444_799, 0), "2099-12-31T23:59:59.000000Z");
    }

    #[test]
    fn the_cached_second_follows_the_clock() {
        let mut clock = SecondCache::default();
        let mut out = String::new();
        for seconds in [86_399, 86_399, 86_400, 86_399] {
            clock.write_timestamp(&mut out, UNIX_EPOCH + Duration::from_secs(seconds));
            out.push(' ');
        }
        assert_eq!(
            out,
            "1970-01-01T23:59:59.000000Z 1970-01-01T23:59:59.000000Z \
             1970-01-02T00:00:00.000000Z 1970-01-01T23:59:59.000000Z "
        );
    }

    #[test]
    fn every_day_of_four_centuries_follows_the_one_before() {
        // Walks 1970-01-01 .. 2370-01-01 a day at a time: each date is the
        // next calendar day (month lengths, leap years, 2100's skipped leap day).
        let mut previous = civil_from_days(0);
        assert_eq!(previous, (1970, 1, 1));
        for days in 1..146_097 {
            let (year, month, day) = civil_from_days(days);
            let (py, pm, pd) = previous;
            let leap =
                |y: u64| y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400));
            let month_length = match pm {
                2 if leap(py) => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            let expected = if pd < month_length {
                (py, pm, pd + 1)
            } else if pm < 12 {
                (py, pm + 1, 1)
            } else {
                (py + 1, 1, 1)
            };
            assert_eq!((year, month, day), expected, "day {days}");
            previous = (year, month, day);
        }
        assert_eq!(previous, (2369, 12, 31));
    }
}
