//! The engine every stack command uses: plan through a change set, execute
//! it while streaming events, delete, describe.
//!
//! Every wait polls with [`Polling::interval`] and gives up after
//! [`Polling::timeout`]; the stack's state is read before each operation and
//! handled ([`StackState`]), so a command never fails on a state it could
//! have dealt with, and never acts on one it should not.

use std::time::Duration;

use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::types::Stack;
use tokio::time::{Instant, sleep};

use super::change_sets::PlanRequest;
use super::changes::{ChangeSetKind, ChangeSetPlan};
use super::error::{CloudFormationError, api_error, is_missing_stack};
use super::event_cursor::EventCursor;
use super::events::{EventSink, StackEvent};
use super::report::{
    DeployOutcome, DestroyOutcome, OperationFailure, RetainedResource, StackOperation,
    StackOutputs, StackReport,
};
use super::state::{StackState, is_settled, is_success, next_step};
use crate::time_text::rfc3339;

/// The largest template CloudFormation takes inline (`TemplateBody`).
pub const TEMPLATE_BODY_LIMIT: usize = 51_200;

/// How many times a plan re-reads the stack's state after acting on it
/// (waiting, deleting, continuing a rollback) before giving up: each action
/// settles the stack, so two or three suffice unless someone else keeps
/// starting operations on it.
const MAX_STATE_TRANSITIONS: usize = 5;

/// How often to poll and how long to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Polling {
    /// Between two polls: 2 s against AWS keeps well within
    /// `DescribeStackEvents` throttling; tests on the emulator use less.
    pub interval: Duration,
    /// The longest any one wait lasts (`--timeout`).
    pub timeout: Duration,
}

impl Default for Polling {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(30 * 60),
        }
    }
}

/// The stacks of one account and region, driven through CloudFormation.
#[derive(Debug, Clone)]
pub struct Stacks {
    pub(super) client: Client,
    pub(super) polling: Polling,
}

impl Stacks {
    /// Over a client built once by the caller, polling as [`Polling::default`].
    pub fn new(client: Client) -> Self {
        Self {
            client,
            polling: Polling::default(),
        }
    }

    pub fn with_polling(mut self, polling: Polling) -> Self {
        self.polling = polling;
        self
    }

    /// The stack's state now ([`StackState::Absent`] when there is none).
    pub async fn state(&self, stack: &str) -> Result<StackState, CloudFormationError> {
        Ok(match self.find(stack).await? {
            Some(found) => StackState::from_status(status_of(&found)),
            None => StackState::Absent,
        })
    }

    /// Creates the change set that deploys `request`, waits for it and
    /// describes it; deletes it at once when it holds no changes.
    ///
    /// The stack's state decides the change set: a missing stack is created,
    /// a settled one updated; an operation in progress is waited for (its
    /// events go to `events`). A stack whose creation failed is deleted
    /// first when `request.recreate` is set, and a failed update rollback
    /// continued when `request.continue_rollback` is; otherwise they are an
    /// error that says what to do.
    pub async fn settle_and_plan(
        &self,
        request: &PlanRequest,
        events: &mut dyn EventSink,
    ) -> Result<ChangeSetPlan, CloudFormationError> {
        if request.template_body.len() > TEMPLATE_BODY_LIMIT {
            return Err(CloudFormationError::TemplateTooLarge {
                size: request.template_body.len(),
                limit: TEMPLATE_BODY_LIMIT,
            });
        }
        let name = request.stack_name.as_str();
        let mut recreated_from = None;
        for _ in 0..MAX_STATE_TRANSITIONS {
            let found = self.find(name).await?;
            let status = found.as_ref().map(status_of).unwrap_or("");
            let state = match &found {
                Some(_) => StackState::from_status(status),
                None => StackState::Absent,
            };
            let kind = match state {
                StackState::Absent => ChangeSetKind::Create,
                StackState::Updatable => ChangeSetKind::Update,
                StackState::InProgress => {
                    let stack = found.as_ref().map(stack_id_of).unwrap_or(name);
                    self.wait_until_settled(name, stack, StackOperation::Running, events)
                        .await?;
                    continue;
                }
                StackState::CreationFailed if request.recreate => {
                    let stack = found.as_ref().map(stack_id_of).unwrap_or(name);
                    self.delete_and_wait(name, stack, events).await?;
                    recreated_from = Some(status.to_owned());
                    continue;
                }
                StackState::UpdateRollbackFailed if request.continue_rollback => {
                    self.continue_update_rollback(name, events).await?;
                    continue;
                }
                _ => return Err(state_error(name, status, found.as_ref())),
            };
            let mut plan = self.create_change_set(request, kind).await?;
            plan.recreated_from = recreated_from;
            return Ok(plan);
        }
        Err(CloudFormationError::Unsettled {
            stack: name.to_owned(),
            status: self
                .find(name)
                .await?
                .as_ref()
                .map(status_of)
                .unwrap_or("absent")
                .to_owned(),
        })
    }

    /// Executes the plan's change set and streams the stack's events to
    /// `events` until the stack settles. Success gives the stack's outputs;
    /// a failed or rolled back deployment is
    /// [`CloudFormationError::OperationFailed`], with every failed resource.
    /// A plan without changes executes nothing.
    pub async fn execute(
        &self,
        plan: &ChangeSetPlan,
        events: &mut dyn EventSink,
    ) -> Result<DeployOutcome, CloudFormationError> {
        let name = plan.stack_name.as_str();
        let (Some(change_set), false) = (&plan.change_set_id, plan.is_empty()) else {
            let found = self.find(name).await?;
            return Ok(DeployOutcome {
                stack_name: name.to_owned(),
                stack_id: found.as_ref().map(|s| stack_id_of(s).to_owned()),
                status: found.as_ref().map(status_of).unwrap_or("absent").to_owned(),
                changed: false,
                outputs: found
                    .as_ref()
                    .map(|s| StackOutputs::from_sdk(s.outputs()))
                    .unwrap_or_default(),
            });
        };
        let stack = plan.stack_id.as_deref().unwrap_or(name);
        let mut cursor = EventCursor::after_latest(&self.client, stack, name).await?;
        self.client
            .execute_change_set()
            .change_set_name(change_set)
            .stack_name(stack)
            // A rollback deletes what this operation created, even under
            // `DeletionPolicy: Retain`: it holds no data yet, and a kept
            // table with a fixed name would make the next attempt (and
            // `--recreate`) fail with "already exists". What existed before
            // stays retained.
            .retain_except_on_create(true)
            .send()
            .await
            .map_err(|error| api_error("ExecuteChangeSet", name, error))?;
        let settled = self
            .follow(name, stack, &mut cursor, StackOperation::Deployment, events)
            .await?;
        let status = status_of(&settled);
        if !is_success(status) {
            return Err(failure(
                name,
                StackOperation::Deployment,
                &settled,
                cursor.seen(),
            ));
        }
        Ok(DeployOutcome {
            stack_name: name.to_owned(),
            stack_id: Some(stack_id_of(&settled).to_owned()),
            status: status.to_owned(),
            changed: true,
            outputs: StackOutputs::from_sdk(settled.outputs()),
        })
    }

    /// Deletes the plan's change set without executing it (`diff`, or a
    /// deployment the user declined). A stack that existed only to hold it
    /// (`REVIEW_IN_PROGRESS`) is deleted too, so nothing is left behind.
    pub async fn discard(&self, plan: &ChangeSetPlan) -> Result<(), CloudFormationError> {
        let name = plan.stack_name.as_str();
        let stack = plan.stack_id.as_deref().unwrap_or(name);
        if let Some(change_set) = &plan.change_set_id {
            self.delete_change_set(name, stack, change_set).await?;
        }
        if plan.kind == ChangeSetKind::Create {
            self.delete_placeholder(name, stack).await?;
        }
        Ok(())
    }

    /// Continues the rollback of a stack in `UPDATE_ROLLBACK_FAILED` and waits
    /// for it, streaming its events; returns the stack's status at the end.
    /// A stack in any other state is left alone.
    pub async fn continue_update_rollback(
        &self,
        stack: &str,
        events: &mut dyn EventSink,
    ) -> Result<String, CloudFormationError> {
        let Some(found) = self.find(stack).await? else {
            return Err(CloudFormationError::StackNotFound {
                stack: stack.to_owned(),
            });
        };
        let status = status_of(&found);
        if StackState::from_status(status) != StackState::UpdateRollbackFailed {
            return Ok(status.to_owned());
        }
        let id = stack_id_of(&found);
        let mut cursor = EventCursor::after_latest(&self.client, id, stack).await?;
        self.client
            .continue_update_rollback()
            .stack_name(id)
            .send()
            .await
            .map_err(|error| api_error("ContinueUpdateRollback", stack, error))?;
        let settled = self
            .follow(
                stack,
                id,
                &mut cursor,
                StackOperation::RollbackContinuation,
                events,
            )
            .await?;
        let status = status_of(&settled);
        if status != "UPDATE_ROLLBACK_COMPLETE" {
            return Err(failure(
                stack,
                StackOperation::RollbackContinuation,
                &settled,
                cursor.seen(),
            ));
        }
        Ok(status.to_owned())
    }

    /// The stack's status, outputs and last `recent_events` events; `None`
    /// when there is no such stack.
    pub async fn describe(
        &self,
        stack: &str,
        recent_events: usize,
    ) -> Result<Option<StackReport>, CloudFormationError> {
        let Some(found) = self.find(stack).await? else {
            return Ok(None);
        };
        let id = stack_id_of(&found);
        let mut events = Vec::new();
        let mut next_token: Option<String> = None;
        while events.len() < recent_events {
            let page = self
                .client
                .describe_stack_events()
                .stack_name(id)
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(|error| api_error("DescribeStackEvents", stack, error))?;
            events.extend(
                page.stack_events()
                    .iter()
                    .take(recent_events - events.len())
                    .map(|event| StackEvent::from_sdk(event, id)),
            );
            match page.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
                _ => break,
            }
        }
        events.reverse();
        let status = status_of(&found);
        Ok(Some(StackReport {
            stack_name: found.stack_name().unwrap_or(stack).to_owned(),
            stack_id: id.to_owned(),
            status: status.to_owned(),
            state: StackState::from_status(status),
            status_reason: found
                .stack_status_reason()
                .filter(|reason| !reason.trim().is_empty())
                .map(str::to_owned),
            created: found.creation_time().and_then(rfc3339),
            last_updated: found.last_updated_time().and_then(rfc3339),
            next_step: next_step(stack, status),
            outputs: StackOutputs::from_sdk(found.outputs()),
            recent_events: events,
        }))
    }

    /// The template the stack was last deployed with, as it was sent (the
    /// deployer sends JSON). `None` when the stack does not exist.
    pub async fn deployed_template(
        &self,
        stack: &str,
    ) -> Result<Option<String>, CloudFormationError> {
        match self
            .client
            .get_template()
            .stack_name(stack)
            .template_stage(aws_sdk_cloudformation::types::TemplateStage::Original)
            .send()
            .await
        {
            Ok(output) => Ok(output.template_body().map(str::to_owned)),
            Err(error) if is_missing_stack(&error) => Ok(None),
            Err(error) => Err(api_error("GetTemplate", stack, error)),
        }
    }

    /// The stack's outputs, the API URL first.
    pub async fn outputs(&self, stack: &str) -> Result<StackOutputs, CloudFormationError> {
        match self.find(stack).await? {
            Some(found) => Ok(StackOutputs::from_sdk(found.outputs())),
            None => Err(CloudFormationError::StackNotFound {
                stack: stack.to_owned(),
            }),
        }
    }

    /// Deletes the stack and waits, streaming its events; reports what
    /// CloudFormation kept (`DeletionPolicy: Retain`). An operation in
    /// progress is waited for first; a missing stack is not an error.
    pub async fn destroy(
        &self,
        stack: &str,
        events: &mut dyn EventSink,
    ) -> Result<DestroyOutcome, CloudFormationError> {
        let mut found = self.find(stack).await?;
        if let Some(running) = found
            .as_ref()
            .filter(|s| StackState::from_status(status_of(s)).is_in_progress())
        {
            let id = stack_id_of(running).to_owned();
            self.wait_until_settled(stack, &id, StackOperation::Running, events)
                .await?;
            found = self.find(stack).await?;
        }
        let Some(found) = found else {
            return Ok(DestroyOutcome {
                stack_name: stack.to_owned(),
                deleted: false,
                retained: Vec::new(),
            });
        };
        let retained = self
            .delete_and_wait(stack, stack_id_of(&found), events)
            .await?;
        Ok(DestroyOutcome {
            stack_name: stack.to_owned(),
            deleted: true,
            retained,
        })
    }

    // --- the steps ---

    /// The stack by name or id; `None` when CloudFormation has none (a
    /// deleted stack is found by id only, with status `DELETE_COMPLETE`).
    pub(super) async fn find(&self, stack: &str) -> Result<Option<Stack>, CloudFormationError> {
        match self.client.describe_stacks().stack_name(stack).send().await {
            Ok(output) => Ok(output.stacks().first().cloned()),
            Err(error) if is_missing_stack(&error) => Ok(None),
            Err(error) => Err(api_error("DescribeStacks", stack, error)),
        }
    }

    /// Waits for the operation running on the stack to end, streaming its
    /// events from now on; whatever state it ends in is for the caller to
    /// read again.
    async fn wait_until_settled(
        &self,
        name: &str,
        stack: &str,
        operation: StackOperation,
        events: &mut dyn EventSink,
    ) -> Result<(), CloudFormationError> {
        let mut cursor = EventCursor::after_latest(&self.client, stack, name).await?;
        // The operation may have ended before the cursor was placed, and then
        // no settling event is left to see; read after placing it, the status
        // cannot miss the end.
        match self.find(stack).await? {
            Some(current) if !is_settled(status_of(&current)) => {
                self.follow(name, stack, &mut cursor, operation, events)
                    .await?;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Deletes the stack, waits, and returns the resources it kept.
    async fn delete_and_wait(
        &self,
        name: &str,
        stack: &str,
        events: &mut dyn EventSink,
    ) -> Result<Vec<RetainedResource>, CloudFormationError> {
        let mut cursor = EventCursor::after_latest(&self.client, stack, name).await?;
        self.client
            .delete_stack()
            .stack_name(stack)
            .send()
            .await
            .map_err(|error| api_error("DeleteStack", name, error))?;
        let settled = self
            .follow(name, stack, &mut cursor, StackOperation::Deletion, events)
            .await?;
        if status_of(&settled) != "DELETE_COMPLETE" {
            return Err(failure(
                name,
                StackOperation::Deletion,
                &settled,
                cursor.seen(),
            ));
        }
        // CloudFormation reports a resource it keeps with a DELETE_SKIPPED
        // event instead of deleting it.
        Ok(cursor
            .seen()
            .iter()
            .filter(|event| !event.is_stack && event.status == "DELETE_SKIPPED")
            .map(|event| RetainedResource {
                logical_id: event.logical_id.clone(),
                resource_type: event.resource_type.clone(),
                physical_id: event.physical_id.clone(),
            })
            .collect())
    }

    /// Streams the stack's events until its operation ends, and returns the
    /// stack as it ended. The end is the stack's own settled event (so a
    /// status read before the operation took effect does not count) together
    /// with a settled status.
    pub(super) async fn follow(
        &self,
        name: &str,
        stack: &str,
        cursor: &mut EventCursor,
        operation: StackOperation,
        events: &mut dyn EventSink,
    ) -> Result<Stack, CloudFormationError> {
        let deadline = Instant::now() + self.polling.timeout;
        loop {
            for event in cursor.poll(&self.client, name).await? {
                events.stack_event(&event);
            }
            let current = if cursor.saw_stack_settle() {
                // By id: a deleted stack is no longer found by its name.
                self.find(stack).await?
            } else {
                None
            };
            if let Some(current) = current.filter(|s| is_settled(status_of(s))) {
                return Ok(current);
            }
            if Instant::now() >= deadline {
                let status = self
                    .find(stack)
                    .await
                    .ok()
                    .flatten()
                    .map(|s| status_of(&s).to_owned());
                return Err(CloudFormationError::Timeout {
                    stack: name.to_owned(),
                    activity: operation.described(),
                    timeout: self.polling.timeout,
                    status,
                });
            }
            self.pause(deadline).await;
        }
    }

    /// One polling interval, never past the deadline.
    pub(super) async fn pause(&self, deadline: Instant) {
        let left = deadline.saturating_duration_since(Instant::now());
        sleep(self.polling.interval.min(left)).await;
    }
}

pub(super) fn status_of(stack: &Stack) -> &str {
    stack.stack_status().map(|s| s.as_str()).unwrap_or("")
}

pub(super) fn stack_id_of(stack: &Stack) -> &str {
    stack.stack_id().or(stack.stack_name()).unwrap_or_default()
}

/// The failure of an operation that ended with the stack `settled`.
fn failure(
    name: &str,
    operation: StackOperation,
    settled: &Stack,
    events: &[StackEvent],
) -> CloudFormationError {
    CloudFormationError::OperationFailed(Box::new(OperationFailure::from_events(
        name,
        operation,
        status_of(settled),
        settled.stack_status_reason(),
        events,
    )))
}

/// The error for a stack whose state stops a deployment.
fn state_error(name: &str, status: &str, found: Option<&Stack>) -> CloudFormationError {
    let reason = found
        .and_then(|s| s.stack_status_reason())
        .filter(|reason| !reason.trim().is_empty())
        .map(str::to_owned);
    let next_step = next_step(name, status).unwrap_or_default();
    match StackState::from_status(status) {
        StackState::CreationFailed => CloudFormationError::CreationFailed {
            stack: name.to_owned(),
            status: status.to_owned(),
            reason,
            next_step,
        },
        StackState::UpdateRollbackFailed => CloudFormationError::UpdateRollbackFailed {
            stack: name.to_owned(),
            reason,
            next_step,
        },
        _ => CloudFormationError::NeedsAttention {
            stack: name.to_owned(),
            status: status.to_owned(),
            reason,
            next_step,
        },
    }
}
