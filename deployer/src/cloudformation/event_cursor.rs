//! Following one stack's events while an operation runs.
//!
//! `DescribeStackEvents` lists a stack's whole history, newest first, one
//! page at a time. An `EventCursor` remembers the newest event it has seen
//! and, on each poll, returns only the events after it, oldest first. It
//! starts at the newest event before an operation begins, so the events of
//! that operation are exactly the ones it returns: no clock is compared, and
//! the client's clock may be off from AWS's without losing or repeating a line.

use std::time::Duration;

use aws_sdk_cloudformation::Client;

use super::error::{CloudFormationError, api_error};
use super::events::StackEvent;

/// Follows one stack's events from a starting point on.
#[derive(Debug)]
pub(crate) struct EventCursor {
    stack_id: String,
    /// The newest event already returned (or present before the start).
    newest_seen: Option<String>,
    /// The time of the operation's first event, that elapsed times count from.
    origin_millis: Option<i64>,
    /// Every event returned so far: the operation's record, for reporting
    /// what failed.
    seen: Vec<StackEvent>,
}

impl EventCursor {
    /// A cursor after the newest event the stack has now.
    pub(crate) async fn after_latest(
        client: &Client,
        stack_id: &str,
        stack_name: &str,
    ) -> Result<Self, CloudFormationError> {
        let newest = client
            .describe_stack_events()
            .stack_name(stack_id)
            .send()
            .await
            .map_err(|error| api_error("DescribeStackEvents", stack_name, error))?
            .stack_events()
            .first()
            .and_then(|event| event.event_id())
            .map(str::to_owned);
        Ok(Self::after(stack_id, newest))
    }

    /// A cursor after the event `newest_seen` (from the beginning for `None`).
    pub(crate) fn after(stack_id: &str, newest_seen: Option<String>) -> Self {
        Self {
            stack_id: stack_id.to_owned(),
            newest_seen,
            origin_millis: None,
            seen: Vec::new(),
        }
    }

    /// The events recorded since the last poll, oldest first.
    pub(crate) async fn poll(
        &mut self,
        client: &Client,
        stack_name: &str,
    ) -> Result<Vec<StackEvent>, CloudFormationError> {
        let mut fresh = Vec::new();
        let mut next_token: Option<String> = None;
        'pages: loop {
            let page = client
                .describe_stack_events()
                .stack_name(&self.stack_id)
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(|error| api_error("DescribeStackEvents", stack_name, error))?;
            for event in page.stack_events() {
                if event.event_id().is_some() && event.event_id() == self.newest_seen.as_deref() {
                    break 'pages;
                }
                fresh.push(StackEvent::from_sdk(event, &self.stack_id));
            }
            match page.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
                _ => break,
            }
        }
        Ok(self.accept(fresh))
    }

    /// Takes a batch of new events, newest first as the API lists them, and
    /// returns it oldest first with elapsed times.
    pub(crate) fn accept(&mut self, mut newest_first: Vec<StackEvent>) -> Vec<StackEvent> {
        if let Some(newest) = newest_first.first() {
            self.newest_seen = Some(newest.event_id.clone());
        }
        newest_first.reverse();
        let mut oldest_first = newest_first;
        for event in &mut oldest_first {
            if self.origin_millis.is_none() {
                self.origin_millis = event.timestamp_millis;
            }
            event.elapsed = match (event.timestamp_millis, self.origin_millis) {
                (Some(at), Some(origin)) => Some(Duration::from_millis(
                    u64::try_from(at.saturating_sub(origin)).unwrap_or(0),
                )),
                _ => None,
            };
        }
        self.seen.extend(oldest_first.iter().cloned());
        oldest_first
    }

    /// Whether the stack's own events show the operation has ended: a stack
    /// event with a settled status after the start.
    pub(crate) fn saw_stack_settle(&self) -> bool {
        self.seen
            .iter()
            .any(|event| event.is_stack && super::state::is_settled(&event.status))
    }

    /// Every event since the start, oldest first.
    pub(crate) fn seen(&self) -> &[StackEvent] {
        &self.seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudformation::events::tests::{STACK_ID, event};

    #[test]
    fn a_cursor_returns_new_events_oldest_first_with_elapsed_times() {
        let mut cursor = EventCursor::after(STACK_ID, Some("0".into()));
        let first = cursor.accept(vec![
            event("2", 1_700_000_003_500, "Table", "CREATE_IN_PROGRESS", ""),
            event(
                "1",
                1_700_000_000_000,
                "demo",
                "CREATE_IN_PROGRESS",
                "User Initiated",
            ),
        ]);
        let ids: Vec<&str> = first.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(ids, ["1", "2"]);
        assert_eq!(first[0].elapsed, Some(Duration::ZERO));
        assert_eq!(first[1].elapsed, Some(Duration::from_millis(3_500)));
        assert!(!cursor.saw_stack_settle());

        let second = cursor.accept(vec![
            event("4", 1_700_000_065_000, "demo", "CREATE_COMPLETE", ""),
            event("3", 1_700_000_064_000, "Table", "CREATE_COMPLETE", ""),
        ]);
        assert_eq!(second[1].elapsed, Some(Duration::from_secs(65)));
        assert_eq!(cursor.newest_seen.as_deref(), Some("4"));
        assert!(cursor.saw_stack_settle());
        assert_eq!(cursor.seen().len(), 4);
    }
}
