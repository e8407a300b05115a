//! Change sets: the request a deployment makes, and the calls that create
//! one, wait for CloudFormation to work out its changes, and delete it. The
//! plan-then-execute flow that uses them is `stacks.rs`.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_cloudformation::types::{Capability, ChangeSetStatus, Parameter};
use tokio::time::Instant;

use super::changes::{ChangeSetKind, ChangeSetPlan};
use super::error::{CloudFormationError, api_error};
use super::event_cursor::EventCursor;
use super::events::StackEvent;
use super::report::StackOperation;
use super::stacks::{Stacks, stack_id_of, status_of};

/// What to deploy, for [`Stacks::settle_and_plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRequest {
    pub stack_name: String,
    pub template_body: String,
    pub parameters: BTreeMap<String, String>,
    /// What the template does that CloudFormation wants acknowledged
    /// ([`PlanRequest::capability`]); the template knows which.
    pub capabilities: Vec<Capability>,
    /// Delete a stack whose first creation failed (`ROLLBACK_COMPLETE`), then
    /// create it again, instead of stopping with an explanation.
    pub recreate: bool,
    /// Continue a failed update rollback (`UPDATE_ROLLBACK_FAILED`) first,
    /// instead of stopping with an explanation.
    pub continue_rollback: bool,
}

impl PlanRequest {
    pub fn new(stack_name: impl Into<String>, template_body: impl Into<String>) -> Self {
        Self {
            stack_name: stack_name.into(),
            template_body: template_body.into(),
            parameters: BTreeMap::new(),
            capabilities: Vec::new(),
            recreate: false,
            continue_rollback: false,
        }
    }

    /// Acknowledges `capability` (`CAPABILITY_NAMED_IAM`, …).
    pub fn capability(mut self, capability: &str) -> Self {
        self.capabilities.push(Capability::from(capability));
        self
    }

    pub fn parameter(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.parameters.insert(key.into(), value.into());
        self
    }

    pub fn recreate(mut self, recreate: bool) -> Self {
        self.recreate = recreate;
        self
    }

    pub fn continue_rollback(mut self, continue_rollback: bool) -> Self {
        self.continue_rollback = continue_rollback;
        self
    }
}

impl Stacks {
    pub(super) async fn create_change_set(
        &self,
        request: &PlanRequest,
        kind: ChangeSetKind,
    ) -> Result<ChangeSetPlan, CloudFormationError> {
        let name = request.stack_name.as_str();
        let change_set_name = unique_change_set_name();
        let parameters = request.parameters.iter().map(|(key, value)| {
            Parameter::builder()
                .parameter_key(key)
                .parameter_value(value)
                .build()
        });
        let created = self
            .client
            .create_change_set()
            .stack_name(name)
            .change_set_name(&change_set_name)
            .change_set_type(kind.sdk())
            .template_body(&request.template_body)
            .set_parameters(Some(parameters.collect()))
            .set_capabilities(Some(request.capabilities.clone()))
            .description("deployer")
            .send()
            .await
            .map_err(|error| api_error("CreateChangeSet", name, error))?;
        let change_set = created.id().unwrap_or(&change_set_name).to_owned();
        let stack_id = created.stack_id().map(str::to_owned);
        let stack = stack_id.as_deref().unwrap_or(name);

        let changes = self
            .await_change_set(name, stack, &change_set, &change_set_name)
            .await;
        let changes = match changes {
            Ok(Some(changes)) => changes,
            Ok(None) => {
                // Nothing to do: CloudFormation will not execute such a
                // change set, so it goes now; the plan says "no changes".
                let mut plan = ChangeSetPlan::from_changes(name, &change_set_name, kind, &[]);
                plan.stack_id = stack_id;
                self.discard_quietly(&plan, &change_set).await;
                return Ok(plan);
            }
            Err(error) => {
                let mut plan = ChangeSetPlan::from_changes(name, &change_set_name, kind, &[]);
                plan.stack_id = stack_id;
                self.discard_quietly(&plan, &change_set).await;
                return Err(error);
            }
        };
        let mut plan = ChangeSetPlan::from_changes(name, &change_set_name, kind, &changes);
        plan.stack_id = stack_id;
        plan.change_set_id = Some(change_set);
        Ok(plan)
    }

    /// Waits for the change set to be ready and reads all its changes, with
    /// property values. `None` when it holds no changes.
    pub(super) async fn await_change_set(
        &self,
        name: &str,
        stack: &str,
        change_set: &str,
        change_set_name: &str,
    ) -> Result<Option<Vec<aws_sdk_cloudformation::types::Change>>, CloudFormationError> {
        let deadline = Instant::now() + self.polling.timeout;
        loop {
            let page = self.describe_change_set_page(name, stack, change_set, None);
            let page = page.await?;
            match page.status() {
                Some(ChangeSetStatus::CreateComplete) => break,
                Some(ChangeSetStatus::Failed) => {
                    let reason = page.status_reason().unwrap_or_default();
                    if means_no_changes(reason) {
                        return Ok(None);
                    }
                    return Err(CloudFormationError::ChangeSetFailed {
                        stack: name.to_owned(),
                        change_set: change_set_name.to_owned(),
                        reason: if reason.is_empty() {
                            "no reason given".to_owned()
                        } else {
                            reason.to_owned()
                        },
                    });
                }
                // CREATE_PENDING, CREATE_IN_PROGRESS: CloudFormation is still
                // working out the changes.
                other => {
                    if Instant::now() >= deadline {
                        return Err(CloudFormationError::Timeout {
                            stack: name.to_owned(),
                            activity: "CloudFormation to work out the change set",
                            timeout: self.polling.timeout,
                            status: other.map(|s| s.as_str().to_owned()),
                        });
                    }
                    self.pause(deadline).await;
                }
            }
        }
        // DescribeChangeSet pages its changes; a stack of ours has tens of
        // resources, but a page is whatever CloudFormation decides.
        let mut changes = Vec::new();
        let mut next_token = None;
        loop {
            let page = self
                .describe_change_set_page(name, stack, change_set, next_token.take())
                .await?;
            changes.extend(page.changes().iter().cloned());
            match page.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
                _ => return Ok(Some(changes)),
            }
        }
    }

    pub(super) async fn describe_change_set_page(
        &self,
        name: &str,
        stack: &str,
        change_set: &str,
        next_token: Option<String>,
    ) -> Result<
        aws_sdk_cloudformation::operation::describe_change_set::DescribeChangeSetOutput,
        CloudFormationError,
    > {
        self.client
            .describe_change_set()
            .change_set_name(change_set)
            .stack_name(stack)
            // Before and after values of every changed property: what makes
            // a plan readable at property level.
            .include_property_values(true)
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|error| api_error("DescribeChangeSet", name, error))
    }

    /// Cleans up after a plan that cannot be executed. A failure here must
    /// not hide the plan's own outcome: what is left is a change set that
    /// CloudFormation lists as failed, harmless and deleted with the stack.
    pub(super) async fn discard_quietly(&self, plan: &ChangeSetPlan, change_set: &str) {
        let name = plan.stack_name.as_str();
        let stack = plan.stack_id.as_deref().unwrap_or(name);
        let _ = self.delete_change_set(name, stack, change_set).await;
        if plan.kind == ChangeSetKind::Create {
            let _ = self.delete_placeholder(name, stack).await;
        }
    }

    pub(super) async fn delete_change_set(
        &self,
        name: &str,
        stack: &str,
        change_set: &str,
    ) -> Result<(), CloudFormationError> {
        self.client
            .delete_change_set()
            .change_set_name(change_set)
            .stack_name(stack)
            .send()
            .await
            .map_err(|error| api_error("DeleteChangeSet", name, error))?;
        Ok(())
    }

    /// Deletes the stack that CloudFormation made to hold a creation change
    /// set, if it still holds nothing else (`REVIEW_IN_PROGRESS`).
    pub(super) async fn delete_placeholder(
        &self,
        name: &str,
        stack: &str,
    ) -> Result<(), CloudFormationError> {
        let Some(found) = self.find(stack).await? else {
            return Ok(());
        };
        if status_of(&found) != "REVIEW_IN_PROGRESS" {
            return Ok(());
        }
        // Waited for, so the next command finds no stack rather than one
        // being deleted; it holds no resources, so there is nothing to show.
        let id = stack_id_of(&found);
        let mut cursor = EventCursor::after_latest(&self.client, id, name).await?;
        self.client
            .delete_stack()
            .stack_name(id)
            .send()
            .await
            .map_err(|error| api_error("DeleteStack", name, error))?;
        let mut unseen = |_: &StackEvent| {};
        self.follow(name, id, &mut cursor, StackOperation::Deletion, &mut unseen)
            .await?;
        Ok(())
    }
}

/// CloudFormation fails a change set that changes nothing, with one of
/// these reasons (the second for a stack whose template is unchanged but
/// whose parameters or tags were given again).
fn means_no_changes(reason: &str) -> bool {
    reason.contains("didn't contain changes") || reason.contains("No updates are to be performed")
}

/// `deployer-<seconds>-<process>-<nanoseconds>`: unique per stack while it
/// exists (a name may not repeat), and it says who made it and when.
/// Change set names are letters, digits and hyphens, starting with a letter.
fn unique_change_set_name() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "deployer-{}-{}-{:09}",
        now.as_secs(),
        std::process::id(),
        now.subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_set_names_are_valid_and_distinct() {
        let first = unique_change_set_name();
        let second = unique_change_set_name();
        for name in [&first, &second] {
            assert!(name.starts_with("deployer-"), "{name}");
            assert!(name.len() <= 128);
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                "{name}"
            );
        }
        assert_ne!(first, second);
    }

    #[test]
    fn both_no_change_reasons_are_recognised() {
        assert!(means_no_changes(
            "The submitted information didn't contain changes. Submit different information to \
             create a change set."
        ));
        assert!(means_no_changes("No updates are to be performed."));
        assert!(!means_no_changes(
            "Template format error: Unresolved resource dependencies"
        ));
    }
}
