//! Stack events: what CloudFormation reports while it works, as the user
//! sees them (one line each, elapsed times, reasons on one line). Fetching
//! them is `event_cursor.rs`'s job; this module makes no call.

use std::fmt;
use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::time_text::{clock, rfc3339};

/// The resource type of a stack's own events.
const STACK_RESOURCE_TYPE: &str = "AWS::CloudFormation::Stack";

/// One stack event, as shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StackEvent {
    /// When CloudFormation recorded it (RFC 3339, UTC).
    pub timestamp: Option<String>,
    /// Time since the first event of the operation being followed; absent
    /// for events listed outside an operation (`status`).
    #[serde(
        rename = "elapsed_seconds",
        serialize_with = "whole_seconds",
        skip_serializing_if = "Option::is_none"
    )]
    pub elapsed: Option<Duration>,
    pub logical_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub physical_id: Option<String>,
    pub resource_type: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Whether this is the stack's own event rather than one resource's.
    #[serde(skip)]
    pub is_stack: bool,
    /// CloudFormation's id of the event, unique within the stack.
    #[serde(skip)]
    pub event_id: String,
    #[serde(skip)]
    pub(crate) timestamp_millis: Option<i64>,
}

fn whole_seconds<S: Serializer>(elapsed: &Option<Duration>, out: S) -> Result<S::Ok, S::Error> {
    match elapsed {
        Some(elapsed) => out.serialize_u64(elapsed.as_secs()),
        None => out.serialize_none(),
    }
}

impl StackEvent {
    /// The event as CloudFormation gave it, for the stack `stack_id`.
    pub fn from_sdk(event: &aws_sdk_cloudformation::types::StackEvent, stack_id: &str) -> Self {
        let resource_type = event.resource_type().unwrap_or_default().to_owned();
        let physical_id = event
            .physical_resource_id()
            .filter(|id| !id.is_empty())
            .map(str::to_owned);
        // A nested stack's events also carry the stack type: the stack's own
        // events are the ones whose physical id is the stack itself.
        let is_stack = resource_type == STACK_RESOURCE_TYPE
            && (physical_id.as_deref() == Some(stack_id)
                || event.stack_id() == physical_id.as_deref());
        Self {
            timestamp: event.timestamp().and_then(rfc3339),
            elapsed: None,
            logical_id: event.logical_resource_id().unwrap_or_default().to_owned(),
            physical_id,
            resource_type,
            status: event
                .resource_status()
                .map(|status| status.as_str().to_owned())
                .unwrap_or_default(),
            reason: event
                .resource_status_reason()
                .filter(|reason| !reason.trim().is_empty())
                .map(str::to_owned),
            is_stack,
            event_id: event.event_id().unwrap_or_default().to_owned(),
            timestamp_millis: event.timestamp().and_then(|at| at.to_millis().ok()),
        }
    }

    /// Whether the event reports a failure (`CREATE_FAILED`, `UPDATE_FAILED`, ...).
    pub fn is_failure(&self) -> bool {
        self.status.ends_with("_FAILED")
    }
}

/// One line: `  0:42  UsersTable  AWS::DynamoDB::Table  CREATE_IN_PROGRESS  reason`.
/// The columns have fixed widths so a stream of lines lines up.
impl fmt::Display for StackEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let when = match (self.elapsed, &self.timestamp) {
            (Some(elapsed), _) => format!("{:>7}", clock(elapsed)),
            (None, Some(timestamp)) => timestamp.clone(),
            (None, None) => format!("{:>7}", "?"),
        };
        let line = format!(
            "{when}  {:<28} {:<32} {:<28} {}",
            self.logical_id,
            self.resource_type,
            self.status,
            self.reason.as_deref().map(one_line).unwrap_or_default()
        );
        f.write_str(line.trim_end())
    }
}

/// A reason may hold newlines (a Lambda's error, a policy document); one
/// event stays on one line.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Where the events of a running operation go as they arrive: the CLI
/// prints them, a test collects them.
pub trait EventSink: Send {
    fn stack_event(&mut self, event: &StackEvent);
}

impl<F: FnMut(&StackEvent) + Send> EventSink for F {
    fn stack_event(&mut self, event: &StackEvent) {
        self(event)
    }
}

impl EventSink for Vec<StackEvent> {
    fn stack_event(&mut self, event: &StackEvent) {
        self.push(event.clone());
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use aws_sdk_cloudformation::primitives::DateTime;
    use aws_sdk_cloudformation::types::{ResourceStatus, StackEvent as SdkEvent};

    use super::*;

    pub(crate) const STACK_ID: &str = "arn:aws:cloudformation:us-east-1:000000000000:stack/demo/1";

    fn sdk_event(id: &str, millis: i64, logical: &str, status: &str, reason: &str) -> SdkEvent {
        let stack = logical == "demo";
        SdkEvent::builder()
            .stack_id(STACK_ID)
            .stack_name("demo")
            .event_id(id)
            .logical_resource_id(logical)
            .physical_resource_id(if stack { STACK_ID } else { "" })
            .resource_type(if stack {
                "AWS::CloudFormation::Stack"
            } else {
                "AWS::DynamoDB::Table"
            })
            .resource_status(ResourceStatus::from(status))
            .resource_status_reason(reason)
            .timestamp(DateTime::from_millis(millis))
            .build()
    }

    /// An event of stack `demo` (`logical` "demo" is the stack itself).
    pub(crate) fn event(
        id: &str,
        millis: i64,
        logical: &str,
        status: &str,
        reason: &str,
    ) -> StackEvent {
        StackEvent::from_sdk(&sdk_event(id, millis, logical, status, reason), STACK_ID)
    }

    #[test]
    fn an_event_line_has_fixed_columns_and_one_line_reasons() {
        let mut line = event(
            "9",
            0,
            "UsersTable",
            "CREATE_FAILED",
            "Resource handler returned message:\n  \"Invalid\"",
        );
        line.elapsed = Some(Duration::from_secs(75));
        assert_eq!(
            line.to_string(),
            "   1:15  UsersTable                   AWS::DynamoDB::Table             \
             CREATE_FAILED                Resource handler returned message: \"Invalid\""
        );
        line.elapsed = None;
        line.reason = None;
        assert_eq!(
            line.to_string(),
            "1970-01-01T00:00:00Z  UsersTable                   AWS::DynamoDB::Table             \
             CREATE_FAILED"
        );
    }

    #[test]
    fn the_stack_own_events_are_told_from_nested_stacks() {
        assert!(event("1", 0, "demo", "UPDATE_COMPLETE", "").is_stack);
        assert!(!event("2", 0, "Table", "UPDATE_COMPLETE", "").is_stack);
        let nested = SdkEvent::builder()
            .stack_id(STACK_ID)
            .event_id("3")
            .logical_resource_id("Nested")
            .physical_resource_id("arn:aws:cloudformation:us-east-1:000000000000:stack/nested/2")
            .resource_type("AWS::CloudFormation::Stack")
            .resource_status(ResourceStatus::UpdateComplete)
            .build();
        assert!(!StackEvent::from_sdk(&nested, STACK_ID).is_stack);
    }

    #[test]
    fn events_serialise_for_scripts() {
        let mut line = event("1", 1_000, "Table", "CREATE_FAILED", "boom");
        line.elapsed = Some(Duration::from_millis(2_500));
        assert_eq!(
            serde_json::to_string(&line).unwrap(),
            r#"{"timestamp":"1970-01-01T00:00:01Z","elapsed_seconds":2,"logical_id":"Table","resource_type":"AWS::DynamoDB::Table","status":"CREATE_FAILED","reason":"boom"}"#
        );
    }
}
