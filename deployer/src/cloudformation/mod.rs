//! CloudFormation, as every stack command uses it: change sets, stack
//! events, stack states and outputs.
//!
//! - [`stacks`]: [`Stacks`], the engine: `settle_and_plan` (waits for the
//!   stack, recreates it or continues its rollback as asked, then makes a
//!   change set, described at property level), `execute` (streaming events
//!   until the stack settles),
//!   `discard`, `continue_update_rollback`, `describe`, `outputs`, `destroy`;
//! - [`change_sets`]: [`PlanRequest`] and the change set calls
//!   `settle_and_plan` makes;
//! - [`changes`]: [`ChangeSetPlan`], what a deployment would change;
//! - [`events`]: [`StackEvent`], one line each; [`event_cursor`]: the cursor
//!   that fetches only the new ones while an operation runs;
//! - [`state`]: [`StackState`], what a stack's status allows next;
//! - [`report`]: how commands end: outputs, outcomes, failures, reports;
//! - [`error`]: [`CloudFormationError`], written for the person deploying.
//!
//! The CLI builds one `aws_sdk_cloudformation::Client`, wraps it in
//! [`Stacks`], and prints what comes back with `Display` or serde.

pub mod change_sets;
pub mod changes;
pub mod error;
pub mod event_cursor;
pub mod events;
pub mod report;
pub mod stacks;
pub mod state;

#[cfg(test)]
mod tests;

pub use change_sets::PlanRequest;
pub use changes::{ChangeSetKind, ChangeSetPlan, PropertyChange, ResourceChange};
pub use error::CloudFormationError;
pub use events::{EventSink, StackEvent};
pub use report::{
    API_URL_OUTPUT, DeployOutcome, DestroyOutcome, FailedResource, OperationFailure,
    RetainedResource, StackOperation, StackOutputs, StackReport,
};
pub use stacks::{Polling, Stacks, TEMPLATE_BODY_LIMIT};
pub use state::StackState;
