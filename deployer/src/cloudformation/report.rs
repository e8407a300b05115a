//! What a stack command ends with: outputs, a finished deployment, a failure
//! with its causes, a deletion and what it kept, a stack's status.
//!
//! Each is one type that is both `Serialize` (for `--output json`) and
//! `Display` (for people), so the two outputs never disagree.

use std::collections::BTreeMap;
use std::fmt;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::events::{StackEvent, one_line};
use super::state::{StackState, next_step};

/// The output holding the API's URL, listed first wherever outputs are shown.
pub const API_URL_OUTPUT: &str = "ApiUrl";

/// A stack's outputs in the order they are shown: the API URL first, the rest
/// by key. Serialised as a JSON object in that order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackOutputs {
    entries: Vec<(String, String)>,
}

impl StackOutputs {
    /// Orders `outputs` (key, value): [`API_URL_OUTPUT`] first, the rest by key.
    pub fn new(outputs: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut entries: Vec<(String, String)> = outputs.into_iter().collect();
        entries.sort_by(|(a, _), (b, _)| {
            (a != API_URL_OUTPUT, a.as_str()).cmp(&(b != API_URL_OUTPUT, b.as_str()))
        });
        Self { entries }
    }

    pub(crate) fn from_sdk(outputs: &[aws_sdk_cloudformation::types::Output]) -> Self {
        Self::new(outputs.iter().filter_map(|output| {
            Some((
                output.output_key()?.to_owned(),
                output.output_value().unwrap_or_default().to_owned(),
            ))
        }))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.entries.iter().cloned().collect()
    }
}

impl Serialize for StackOutputs {
    fn serialize<S: Serializer>(&self, out: S) -> Result<S::Ok, S::Error> {
        let mut map = out.serialize_map(Some(self.entries.len()))?;
        for (key, value) in &self.entries {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// `Outputs:` and one aligned `key  value` line each; nothing when empty.
impl fmt::Display for StackOutputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.entries.is_empty() {
            return Ok(());
        }
        let width = self.entries.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        writeln!(f, "Outputs:")?;
        for (key, value) in &self.entries {
            writeln!(f, "  {key:<width$}  {value}")?;
        }
        Ok(())
    }
}

/// A change set executed to success (or nothing to execute).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeployOutcome {
    pub stack_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack_id: Option<String>,
    /// The stack's status at the end (`CREATE_COMPLETE`, `UPDATE_COMPLETE`...).
    pub status: String,
    /// False when the plan had no changes and nothing was executed.
    pub changed: bool,
    pub outputs: StackOutputs,
}

impl fmt::Display for DeployOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.changed {
            writeln!(f, "Stack `{}` is {}.", self.stack_name, self.status)?;
        } else {
            writeln!(
                f,
                "No changes: stack `{}` is already up to date ({}).",
                self.stack_name, self.status
            )?;
        }
        write!(f, "{}", self.outputs)
    }
}

/// A resource that failed during an operation, as its event reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedResource {
    pub logical_id: String,
    pub resource_type: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Which stack operation a failure is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StackOperation {
    Deployment,
    Deletion,
    RollbackContinuation,
    /// An operation started elsewhere that this command waited for.
    Running,
}

impl StackOperation {
    /// "the deployment", to be used in a sentence.
    pub(crate) fn described(self) -> &'static str {
        match self {
            Self::Deployment => "the deployment",
            Self::Deletion => "the deletion",
            Self::RollbackContinuation => "the continued rollback",
            Self::Running => "the operation in progress",
        }
    }
}

/// A stack operation that ran and did not succeed: the final status and
/// every resource that failed on the way, with CloudFormation's reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OperationFailure {
    pub stack_name: String,
    pub operation: StackOperation,
    /// The stack's status at the end, e.g. `ROLLBACK_COMPLETE`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    pub failed_resources: Vec<FailedResource>,
    /// What to do about the state the stack is left in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_step: Option<String>,
}

impl OperationFailure {
    /// The failure of `operation` on `stack_name`, which ended in `status`,
    /// from the events of the operation (oldest first).
    pub fn from_events(
        stack_name: &str,
        operation: StackOperation,
        status: &str,
        status_reason: Option<&str>,
        events: &[StackEvent],
    ) -> Self {
        let failed_resources = events
            .iter()
            .filter(|event| !event.is_stack && event.is_failure())
            .map(|event| FailedResource {
                logical_id: event.logical_id.clone(),
                resource_type: event.resource_type.clone(),
                status: event.status.clone(),
                reason: event.reason.clone(),
            })
            .collect();
        // Why the stack failed, in CloudFormation's words: the stack's own
        // event that started the rollback or reported the failure ("The
        // following resource(s) failed to create: [...]"), which also
        // explains stack-level failures no resource reports (a missing
        // capability, a hook). The status reason of the settled stack comes
        // second: it is often only "Rollback complete" or nothing.
        let status_reason = events
            .iter()
            .rev()
            .filter(|event| {
                event.is_stack
                    && (event.status.ends_with("ROLLBACK_IN_PROGRESS") || event.is_failure())
            })
            .find_map(|event| event.reason.clone())
            .or_else(|| {
                status_reason
                    .filter(|reason| !reason.trim().is_empty())
                    .map(str::to_owned)
            });
        Self {
            stack_name: stack_name.to_owned(),
            operation,
            status: status.to_owned(),
            status_reason,
            failed_resources,
            next_step: next_step(stack_name, status),
        }
    }
}

impl fmt::Display for OperationFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let operation = self.operation.described();
        let mut operation_chars = operation.chars();
        let capitalised: String = operation_chars
            .next()
            .map(|first| first.to_uppercase().chain(operation_chars).collect())
            .unwrap_or_default();
        write!(
            f,
            "{capitalised} of stack `{}` failed; the stack is now {}.",
            self.stack_name, self.status
        )?;
        if let Some(reason) = &self.status_reason {
            write!(f, "\nCloudFormation says: {}", one_line(reason))?;
        }
        if !self.failed_resources.is_empty() {
            write!(f, "\nFailed resources:")?;
            for failed in &self.failed_resources {
                write!(
                    f,
                    "\n  {} ({}) {}",
                    failed.logical_id, failed.resource_type, failed.status
                )?;
                if let Some(reason) = &failed.reason {
                    write!(f, ": {}", one_line(reason))?;
                }
            }
        }
        match &self.next_step {
            Some(step) => write!(f, "\nNext: {step}."),
            None if self.operation == StackOperation::Deployment => write!(
                f,
                "\nNext: CloudFormation put the stack back as it was; fix the cause above and \
                 deploy again."
            ),
            None => Ok(()),
        }
    }
}

/// A resource CloudFormation left in place when it deleted the stack
/// (`DeletionPolicy: Retain`): it still exists, with its data, and costs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetainedResource {
    pub logical_id: String,
    pub resource_type: String,
    /// Its name or ARN: the table name for a table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub physical_id: Option<String>,
}

/// A `destroy` that ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DestroyOutcome {
    pub stack_name: String,
    /// False when there was no stack to delete.
    pub deleted: bool,
    pub retained: Vec<RetainedResource>,
}

impl fmt::Display for DestroyOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.deleted {
            return writeln!(
                f,
                "Stack `{}` does not exist: nothing to delete.",
                self.stack_name
            );
        }
        writeln!(f, "Stack `{}` is deleted.", self.stack_name)?;
        if !self.retained.is_empty() {
            writeln!(
                f,
                "Kept by their DeletionPolicy (they still exist, with their data; delete them \
                 yourself if you no longer want them):"
            )?;
            for kept in &self.retained {
                writeln!(
                    f,
                    "  {} {} ({})",
                    kept.resource_type,
                    kept.physical_id.as_deref().unwrap_or("?"),
                    kept.logical_id
                )?;
            }
        }
        Ok(())
    }
}

/// A stack as `deployer status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StackReport {
    pub stack_name: String,
    pub stack_id: String,
    pub status: String,
    pub state: StackState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
    /// What to do about the stack's state, when something must be done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_step: Option<String>,
    pub outputs: StackOutputs,
    /// The most recent events, oldest first.
    pub recent_events: Vec<StackEvent>,
}

impl fmt::Display for StackReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Stack `{}`: {}", self.stack_name, self.status)?;
        if let Some(reason) = &self.status_reason {
            writeln!(f, "  reason:       {}", one_line(reason))?;
        }
        if let Some(created) = &self.created {
            writeln!(f, "  created:      {created}")?;
        }
        if let Some(updated) = &self.last_updated {
            writeln!(f, "  last updated: {updated}")?;
        }
        writeln!(f, "  id:           {}", self.stack_id)?;
        if let Some(step) = &self.next_step {
            writeln!(f, "Next: {step}.")?;
        }
        write!(f, "{}", self.outputs)?;
        if !self.recent_events.is_empty() {
            writeln!(f, "Recent events:")?;
            for event in &self.recent_events {
                writeln!(f, "  {event}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_cloudformation::primitives::DateTime;
    use aws_sdk_cloudformation::types::{ResourceStatus, StackEvent as SdkEvent};

    use super::*;

    const STACK_ID: &str = "arn:aws:cloudformation:us-east-1:000000000000:stack/demo/1";

    fn event(logical: &str, rtype: &str, status: &str, reason: &str) -> StackEvent {
        let stack = rtype == "AWS::CloudFormation::Stack";
        let sdk = SdkEvent::builder()
            .stack_id(STACK_ID)
            .event_id(format!("{logical}-{status}"))
            .logical_resource_id(logical)
            .physical_resource_id(if stack { STACK_ID } else { "" })
            .resource_type(rtype)
            .resource_status(ResourceStatus::from(status))
            .resource_status_reason(reason)
            .timestamp(DateTime::from_secs(0))
            .build();
        StackEvent::from_sdk(&sdk, STACK_ID)
    }

    #[test]
    fn outputs_put_the_api_url_first_then_sort_by_key() {
        let outputs = StackOutputs::new([
            ("UsersTable".to_owned(), "demo-users".to_owned()),
            ("FunctionName".to_owned(), "demo-api".to_owned()),
            (API_URL_OUTPUT.to_owned(), "https://x/prod/api".to_owned()),
        ]);
        let keys: Vec<&str> = outputs.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["ApiUrl", "FunctionName", "UsersTable"]);
        assert_eq!(
            outputs.to_string(),
            "Outputs:\n  ApiUrl        https://x/prod/api\n  FunctionName  demo-api\n  \
             UsersTable    demo-users\n"
        );
        assert_eq!(
            serde_json::to_string(&outputs).unwrap(),
            r#"{"ApiUrl":"https://x/prod/api","FunctionName":"demo-api","UsersTable":"demo-users"}"#
        );
        assert_eq!(outputs.get("UsersTable"), Some("demo-users"));
    }

    /// The events of a first creation that failed, as CloudFormation lists
    /// them: a resource fails, its sibling is cancelled, the stack rolls back.
    #[test]
    fn a_failed_creation_lists_each_failed_resource_and_what_to_do() {
        let stack = "AWS::CloudFormation::Stack";
        let events = [
            event("demo", stack, "CREATE_IN_PROGRESS", "User Initiated"),
            event("Table", "AWS::DynamoDB::Table", "CREATE_IN_PROGRESS", ""),
            event(
                "Function",
                "AWS::Lambda::Function",
                "CREATE_IN_PROGRESS",
                "",
            ),
            event(
                "Function",
                "AWS::Lambda::Function",
                "CREATE_FAILED",
                "Resource handler returned message: \"Error occurred while GetObject. S3 \
                 Error Code: NoSuchKey\"",
            ),
            event(
                "Table",
                "AWS::DynamoDB::Table",
                "CREATE_FAILED",
                "Resource creation cancelled",
            ),
            event(
                "demo",
                stack,
                "ROLLBACK_IN_PROGRESS",
                "The following resource(s) failed to create: [Function, Table].",
            ),
            event("Table", "AWS::DynamoDB::Table", "DELETE_SKIPPED", ""),
            event("demo", stack, "ROLLBACK_COMPLETE", ""),
        ];
        let failure = OperationFailure::from_events(
            "demo",
            StackOperation::Deployment,
            "ROLLBACK_COMPLETE",
            None,
            &events,
        );
        assert_eq!(
            failure.to_string(),
            "The deployment of stack `demo` failed; the stack is now ROLLBACK_COMPLETE.\n\
             CloudFormation says: The following resource(s) failed to create: [Function, Table].\n\
             Failed resources:\n  \
             Function (AWS::Lambda::Function) CREATE_FAILED: Resource handler returned message: \
             \"Error occurred while GetObject. S3 Error Code: NoSuchKey\"\n  \
             Table (AWS::DynamoDB::Table) CREATE_FAILED: Resource creation cancelled\n\
             Next: its first creation failed and CloudFormation cannot update it; fix the cause, \
             then run `deployer deploy --recreate` to delete it and create it again."
        );
        let json = serde_json::to_value(&failure).unwrap();
        assert_eq!(json["failed_resources"][0]["logical_id"], "Function");
        assert_eq!(json["operation"], "deployment");
    }

    #[test]
    fn a_rolled_back_update_says_the_stack_is_as_before() {
        let events = [event(
            "Function",
            "AWS::Lambda::Function",
            "UPDATE_FAILED",
            "Memory size out of range",
        )];
        let failure = OperationFailure::from_events(
            "demo",
            StackOperation::Deployment,
            "UPDATE_ROLLBACK_COMPLETE",
            None,
            &events,
        );
        assert_eq!(
            failure.to_string(),
            "The deployment of stack `demo` failed; the stack is now UPDATE_ROLLBACK_COMPLETE.\n\
             Failed resources:\n  \
             Function (AWS::Lambda::Function) UPDATE_FAILED: Memory size out of range\n\
             Next: CloudFormation put the stack back as it was; fix the cause above and deploy \
             again."
        );
    }

    #[test]
    fn a_deletion_reports_what_it_kept() {
        let outcome = DestroyOutcome {
            stack_name: "demo".into(),
            deleted: true,
            retained: vec![RetainedResource {
                logical_id: "UsersTable".into(),
                resource_type: "AWS::DynamoDB::Table".into(),
                physical_id: Some("demo-users".into()),
            }],
        };
        assert_eq!(
            outcome.to_string(),
            "Stack `demo` is deleted.\nKept by their DeletionPolicy (they still exist, with \
             their data; delete them yourself if you no longer want them):\n  \
             AWS::DynamoDB::Table demo-users (UsersTable)\n"
        );
    }

    #[test]
    fn a_deployment_prints_its_outputs() {
        let outcome = DeployOutcome {
            stack_name: "demo".into(),
            stack_id: Some(STACK_ID.into()),
            status: "UPDATE_COMPLETE".into(),
            changed: true,
            outputs: StackOutputs::new([(API_URL_OUTPUT.to_owned(), "https://x".to_owned())]),
        };
        assert_eq!(
            outcome.to_string(),
            "Stack `demo` is UPDATE_COMPLETE.\nOutputs:\n  ApiUrl  https://x\n"
        );
    }
}
