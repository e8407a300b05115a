//! `deployer logs`: the deployed function's log lines, read from its
//! CloudWatch Logs group (a stack resource, named by the stack's
//! `FunctionLogGroupName` output).
//!
//! The question it answers is "what happened to that request?": a client
//! that got `internal error (request id …)` hands over the id, and
//! [`FunctionLogs::request`] finds the API's line for it, then every line of
//! the Lambda invocation that served it (`START`, the error, `REPORT`). The
//! other modes list what came in recently, only the failures, or follow new
//! lines as they arrive.
//!
//! Everything goes through FilterLogEvents, which searches every stream of
//! the group (Lambda writes one per execution environment) in timestamp
//! order, so no stream has to be listed first. Filtering is done here as
//! well as by CloudWatch: a filter pattern only narrows what is fetched,
//! and which lines are shown is decided by [`lines::LogLine`], the same on
//! AWS and on an emulator whose patterns are looser.

pub mod lines;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::ops::ControlFlow;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::types::{FilteredLogEvent, OutputLogEvent};
use serde::Serialize;
use thiserror::Error;

pub use lines::{Human, LogLine, format_timestamp};

/// How long a line may reach CloudWatch Logs after a later one of another
/// stream and still be shown by `--follow`. Each poll asks again from this
/// far before the newest line seen and drops the lines it already printed:
/// concurrent execution environments write their own streams, and a line's
/// timestamp is when it was written, not when it arrived.
pub const LATE_ARRIVALS: Duration = Duration::from_secs(10);

/// At most this many streams go in one FilterLogEvents `logStreamNames`
/// (CloudWatch Logs API Reference, FilterLogEvents: a list of 1 to 100
/// stream names).
const MAX_STREAM_NAMES: usize = 100;

/// At most this many Lambda invocations are gathered for one request id (a
/// client may send the same `x-request-id` again on retries).
const MAX_INVOCATIONS: usize = 10;

/// Why the log lines could not be read.
#[derive(Debug, Error)]
pub enum LogsError {
    #[error(
        "the log group `{group}` does not exist: is the stack deployed? `deployer deploy` \
         creates it again"
    )]
    GroupNotFound {
        group: String,
        #[source]
        source: Box<aws_sdk_cloudwatchlogs::Error>,
    },
    #[error("CloudWatch Logs {operation} on `{group}` failed")]
    CloudWatchLogs {
        operation: &'static str,
        group: String,
        #[source]
        source: Box<aws_sdk_cloudwatchlogs::Error>,
    },
    #[error(
        "no line of `{group}` names request `{request_id}` in the last {since}: for an older \
         request, look further back (`--since 1d`)"
    )]
    RequestNotFound {
        request_id: String,
        group: String,
        since: Since,
    },
    #[error(
        "`{0}` is not a request id: the API's ids are at most 128 letters, digits and `-_.=+/` \
         (the `x-request-id` response header, or the id in `internal error (request id …)`)"
    )]
    NotARequestId(String),
}

/// How far back to look, as `30s`, `10m`, `2h` or `1d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Since {
    amount: u64,
    unit: TimeUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeUnit {
    Seconds,
    Minutes,
    Hours,
    Days,
}

impl TimeUnit {
    fn seconds(self) -> u64 {
        match self {
            Self::Seconds => 1,
            Self::Minutes => 60,
            Self::Hours => 3600,
            Self::Days => 86_400,
        }
    }

    fn suffix(self) -> char {
        match self {
            Self::Seconds => 's',
            Self::Minutes => 'm',
            Self::Hours => 'h',
            Self::Days => 'd',
        }
    }
}

impl Since {
    pub fn duration(self) -> Duration {
        // Bounded when parsed: no overflow.
        Duration::from_secs(self.amount * self.unit.seconds())
    }

    /// The first millisecond to show, counted back from `now`.
    pub fn start_millis(self, now: SystemTime) -> i64 {
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        });
        let back = i64::try_from(self.duration().as_millis()).unwrap_or(i64::MAX);
        now.saturating_sub(back).max(0)
    }
}

/// Ten years: CloudWatch Logs keeps nothing longer (its longest retention).
const MAX_SINCE_SECONDS: u64 = 10 * 366 * 86_400;

impl FromStr for Since {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let wrong = || format!("`{text}`: expected a number and a unit: 30s, 10m, 2h or 1d");
        let split = text.len().checked_sub(1).ok_or_else(wrong)?;
        let (digits, suffix) = text.split_at_checked(split).ok_or_else(wrong)?;
        let unit = match suffix {
            "s" => TimeUnit::Seconds,
            "m" => TimeUnit::Minutes,
            "h" => TimeUnit::Hours,
            "d" => TimeUnit::Days,
            _ => return Err(wrong()),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(wrong());
        }
        let amount: u64 = digits.parse().map_err(|_| wrong())?;
        if amount == 0 {
            return Err(format!("`{text}`: nothing is that recent; try 10m"));
        }
        if amount
            .checked_mul(unit.seconds())
            .is_none_or(|seconds| seconds > MAX_SINCE_SECONDS)
        {
            return Err(format!(
                "`{text}`: CloudWatch Logs keeps nothing that old (ten years at most)"
            ));
        }
        Ok(Self { amount, unit })
    }
}

impl fmt::Display for Since {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.amount, self.unit.suffix())
    }
}

/// One log event as CloudWatch Logs returned it: what `--output json`
/// prints, one object per line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogEvent {
    /// When the line was written, in milliseconds since the epoch.
    pub timestamp: i64,
    pub log_stream: String,
    /// CloudWatch's id of the event (FilterLogEvents gives one; GetLogEvents
    /// does not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The line as written.
    pub message: String,
}

/// What tells two sightings of one event apart from two events.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum EventKey {
    Id(String),
    /// For an event without an id: the same line, at the same time, in the
    /// same stream, is taken as the same event.
    Content(String, i64, String),
}

impl LogEvent {
    pub fn from_filtered(event: &FilteredLogEvent) -> Self {
        Self {
            timestamp: event.timestamp().unwrap_or_default(),
            log_stream: event.log_stream_name().unwrap_or_default().to_owned(),
            event_id: event.event_id().map(str::to_owned),
            message: event.message().unwrap_or_default().to_owned(),
        }
    }

    /// An event GetLogEvents returned from `stream`.
    pub fn from_output(event: &OutputLogEvent, stream: &str) -> Self {
        Self {
            timestamp: event.timestamp().unwrap_or_default(),
            log_stream: stream.to_owned(),
            event_id: None,
            message: event.message().unwrap_or_default().to_owned(),
        }
    }

    pub fn line(&self) -> LogLine {
        LogLine::parse(&self.message)
    }

    fn key(&self) -> EventKey {
        match &self.event_id {
            Some(id) if !id.is_empty() => EventKey::Id(id.clone()),
            _ => EventKey::Content(
                self.log_stream.clone(),
                self.timestamp,
                self.message.clone(),
            ),
        }
    }

    /// The line as a person reads it, with its time; `None` for a line not
    /// worth a line of its own (`END`, after which `REPORT` comes).
    pub fn human(&self) -> Option<String> {
        let line = self.line();
        line.is_shown()
            .then(|| format!("{} {}", format_timestamp(self.timestamp), Human(&line)))
    }
}

/// Which lines to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    All,
    /// `--errors`: see [`LogLine::is_failure`].
    Failures,
}

impl Selection {
    pub fn keeps(self, event: &LogEvent) -> bool {
        match self {
            Self::All => true,
            Self::Failures => event.line().is_failure(),
        }
    }
}

/// Checks a request id the way the API accepts a caller's, so that it can
/// go into a filter pattern between double quotes as it is.
pub fn check_request_id(id: &str) -> Result<&str, LogsError> {
    if api::request_id::is_plain_request_id(id) {
        Ok(id)
    } else {
        Err(LogsError::NotARequestId(id.to_owned()))
    }
}

/// A filter pattern matching events that contain `term` as it is. Terms
/// with characters other than letters and digits go between double quotes
/// (CloudWatch Logs User Guide, "Filter pattern syntax for metric filters,
/// subscription filters, filter log events, and Live Tail": matching terms
/// in unstructured log events). `term` is a checked request id: no quote.
fn exact_term(term: &str) -> String {
    format!("\"{term}\"")
}

/// The function's log group, read through one client.
#[derive(Debug, Clone)]
pub struct FunctionLogs {
    client: Client,
    group: String,
    poll_interval: Duration,
}

impl FunctionLogs {
    pub fn new(client: Client, group: impl Into<String>) -> Self {
        Self {
            client,
            group: group.into(),
            poll_interval: Duration::from_secs(2),
        }
    }

    /// How often `follow` asks for new lines (default 2 s).
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    /// Every line from `start_millis` on that `selection` keeps, oldest first.
    pub async fn recent(
        &self,
        start_millis: i64,
        selection: Selection,
    ) -> Result<Vec<LogEvent>, LogsError> {
        let mut events = self.filter(start_millis, None, &[]).await?;
        events.retain(|event| selection.keeps(event));
        Ok(events)
    }

    /// The lines of the request `request_id` (as the client got it in
    /// `x-request-id`) since `since` before `now`: the API's lines that
    /// name it, and every line of the Lambda invocations that served it.
    /// A Lambda `RequestId` (from a `REPORT` line) works too.
    pub async fn request(
        &self,
        request_id: &str,
        since: Since,
        now: SystemTime,
    ) -> Result<Vec<LogEvent>, LogsError> {
        let request_id = check_request_id(request_id)?;
        let start = since.start_millis(now);
        let named = [request_id.to_owned()];
        let mut found = self
            .filter(start, Some(exact_term(request_id)), &[])
            .await?;
        found.retain(|event| event.line().names_any(&named));
        if found.is_empty() {
            return Err(LogsError::RequestNotFound {
                request_id: request_id.to_owned(),
                group: self.group.clone(),
                since,
            });
        }
        let mut invocations: Vec<String> = Vec::new();
        for event in &found {
            if let Some(invocation) = event.line().invocation()
                && !invocations.iter().any(|known| known == invocation)
                && invocations.len() < MAX_INVOCATIONS
            {
                invocations.push(invocation.to_owned());
            }
        }
        // An invocation's lines are all in the stream of its environment.
        let mut streams: Vec<String> = Vec::new();
        for event in &found {
            if !streams.contains(&event.log_stream) {
                streams.push(event.log_stream.clone());
            }
        }
        if streams.len() > MAX_STREAM_NAMES {
            streams.clear();
        }
        let mut lines = Vec::new();
        for invocation in &invocations {
            let mut served = self
                .filter(start, Some(exact_term(invocation)), &streams)
                .await?;
            served.retain(|event| event.line().names_any(std::slice::from_ref(invocation)));
            lines.extend(served);
        }
        lines.extend(found);
        let mut seen = HashSet::new();
        lines.retain(|event| seen.insert(event.key()));
        // Stable: lines of one millisecond keep CloudWatch's order.
        lines.sort_by_key(|event| event.timestamp);
        Ok(lines)
    }

    /// Hands `sink` every line from `start_millis` on that `selection`
    /// keeps, then each new one as it arrives, once, until `stop` resolves
    /// (Ctrl-C) or `sink` breaks.
    ///
    /// Polls FilterLogEvents rather than a Live Tail session
    /// (StartLiveTail): Live Tail shows only lines ingested after it starts,
    /// samples down to 500 lines a second and drops the oldest when the
    /// reader is slow (CloudWatch Logs API Reference, StartLiveTail), while
    /// polling gives the lines since `--since` and then every line, and
    /// works the same on the emulator.
    pub async fn follow(
        &self,
        start_millis: i64,
        selection: Selection,
        sink: &mut dyn FnMut(&LogEvent) -> ControlFlow<()>,
        stop: impl Future<Output = ()>,
    ) -> Result<(), LogsError> {
        let mut stop = std::pin::pin!(stop);
        let late = i64::try_from(LATE_ARRIVALS.as_millis()).unwrap_or(i64::MAX);
        // Each line printed, with its timestamp, until it is too old to come again.
        let mut printed: HashMap<EventKey, i64> = HashMap::new();
        let mut newest = start_millis;
        loop {
            let from = start_millis.max(newest.saturating_sub(late));
            let events = tokio::select! {
                () = &mut stop => return Ok(()),
                events = self.filter(from, None, &[]) => events?,
            };
            for event in events {
                if printed.insert(event.key(), event.timestamp).is_some() {
                    continue;
                }
                newest = newest.max(event.timestamp);
                if selection.keeps(&event) && sink(&event).is_break() {
                    return Ok(());
                }
            }
            let horizon = newest.saturating_sub(late);
            printed.retain(|_, timestamp| *timestamp >= horizon);
            tokio::select! {
                () = &mut stop => return Ok(()),
                () = tokio::time::sleep(self.poll_interval) => {}
            }
        }
    }

    /// Every event from `start_millis` on (in `streams`, when given) that
    /// matches `pattern`, following `nextToken` until there is none: "A
    /// returned page might only be partially full, or even empty … If the
    /// results don't include a nextToken, then pagination is finished"
    /// (CloudWatch Logs API Reference, FilterLogEvents).
    async fn filter(
        &self,
        start_millis: i64,
        pattern: Option<String>,
        streams: &[String],
    ) -> Result<Vec<LogEvent>, LogsError> {
        let mut events = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let page = self
                .client
                .filter_log_events()
                .log_group_name(&self.group)
                .start_time(start_millis)
                .set_filter_pattern(pattern.clone())
                .set_log_stream_names((!streams.is_empty()).then(|| streams.to_vec()))
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(|error| self.error("FilterLogEvents", error.into()))?;
            events.extend(page.events().iter().map(LogEvent::from_filtered));
            match page.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
                _ => return Ok(events),
            }
        }
    }

    fn error(&self, operation: &'static str, error: aws_sdk_cloudwatchlogs::Error) -> LogsError {
        match error {
            aws_sdk_cloudwatchlogs::Error::ResourceNotFoundException(_) => {
                LogsError::GroupNotFound {
                    group: self.group.clone(),
                    source: Box::new(error),
                }
            }
            _ => LogsError::CloudWatchLogs {
                operation,
                group: self.group.clone(),
                source: Box::new(error),
            },
        }
    }
}

#[cfg(test)]
mod tests;
