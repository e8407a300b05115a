//! What a stack's status means for the next command.
//!
//! CloudFormation has two dozen stack statuses; a deploy needs to know only
//! a handful of things about them: create or update, wait, or stop and tell
//! the user what to do. [`StackState`] is that reading, made in one place so
//! `deploy`, `diff`, `destroy` and `status` agree on it.

use serde::Serialize;

/// What can be done with a stack now, read from its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StackState {
    /// No stack to update: none by that name, a deleted one
    /// (`DELETE_COMPLETE`), or one that holds only a change set under review
    /// (`REVIEW_IN_PROGRESS`). Deploying creates it.
    Absent,
    /// Settled, and CloudFormation accepts an update.
    Updatable,
    /// An operation is running; the next one must wait for it.
    InProgress,
    /// The first creation failed (`ROLLBACK_COMPLETE`, or `ROLLBACK_FAILED` /
    /// `CREATE_FAILED`): CloudFormation refuses to update such a stack, it can
    /// only be deleted and created again.
    CreationFailed,
    /// An update failed and so did its rollback (`UPDATE_ROLLBACK_FAILED`):
    /// the rollback must be continued before anything else.
    UpdateRollbackFailed,
    /// A deletion failed part-way (`DELETE_FAILED`): delete it again.
    DeletionFailed,
    /// A state this tool does not resolve by itself (`IMPORT_ROLLBACK_FAILED`,
    /// or a status newer than this tool).
    NeedsManualAttention,
}

impl StackState {
    /// The state of a stack in `status` (a CloudFormation `StackStatus`).
    pub fn from_status(status: &str) -> Self {
        match status {
            "REVIEW_IN_PROGRESS" | "DELETE_COMPLETE" => Self::Absent,
            "CREATE_COMPLETE"
            | "UPDATE_COMPLETE"
            | "UPDATE_ROLLBACK_COMPLETE"
            | "IMPORT_COMPLETE"
            | "IMPORT_ROLLBACK_COMPLETE"
            // Only a stack deployed with rollback disabled ends here, and
            // CloudFormation lets it be updated again (or rolled back).
            | "UPDATE_FAILED" => Self::Updatable,
            "ROLLBACK_COMPLETE" | "ROLLBACK_FAILED" | "CREATE_FAILED" => Self::CreationFailed,
            "UPDATE_ROLLBACK_FAILED" => Self::UpdateRollbackFailed,
            "DELETE_FAILED" => Self::DeletionFailed,
            // Every running operation's status ends so, including the ones
            // CloudFormation may add; waiting is always right for them.
            other if other.ends_with("_IN_PROGRESS") => Self::InProgress,
            _ => Self::NeedsManualAttention,
        }
    }

    /// Whether an operation is running (the stack will change by itself).
    pub fn is_in_progress(self) -> bool {
        self == Self::InProgress
    }
}

/// Whether a stack operation that ended in `status` succeeded.
pub(crate) fn is_success(status: &str) -> bool {
    matches!(
        status,
        "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "IMPORT_COMPLETE" | "DELETE_COMPLETE"
    )
}

/// Whether a stack in `status` is settled: no operation runs on it. A stack
/// under review holds a change set and nothing runs on it either.
pub(crate) fn is_settled(status: &str) -> bool {
    status == "REVIEW_IN_PROGRESS" || !status.ends_with("_IN_PROGRESS")
}

/// What the user should do about a stack left in `status`, when that is
/// more than "nothing" (the text ends without a full stop so callers can
/// quote it in a sentence).
pub(crate) fn next_step(stack: &str, status: &str) -> Option<String> {
    let step = match StackState::from_status(status) {
        StackState::CreationFailed => {
            "its first creation failed and CloudFormation cannot update it; fix the cause, then \
             run `deployer deploy --recreate` to delete it and create it again"
                .to_owned()
        }
        StackState::UpdateRollbackFailed => {
            "an update failed and CloudFormation could not roll it back; fix the cause (often a \
             resource changed or deleted outside CloudFormation), then run `deployer deploy \
             --continue-rollback` to finish the rollback and deploy"
                .to_owned()
        }
        StackState::DeletionFailed => {
            "its deletion failed part-way; fix the cause, then run `deployer destroy` again"
                .to_owned()
        }
        StackState::NeedsManualAttention => format!(
            "this tool cannot resolve that state by itself; look at the stack's events with \
             `deployer status` or in the CloudFormation console (stack `{stack}`)"
        ),
        StackState::Absent | StackState::Updatable | StackState::InProgress => return None,
    };
    Some(step)
}

#[cfg(test)]
mod tests {
    use aws_sdk_cloudformation::types::StackStatus;

    use super::*;

    /// Every status CloudFormation documents, with the state it means.
    const EXPECTED: &[(&str, StackState)] = &[
        ("CREATE_COMPLETE", StackState::Updatable),
        ("CREATE_FAILED", StackState::CreationFailed),
        ("CREATE_IN_PROGRESS", StackState::InProgress),
        ("DELETE_COMPLETE", StackState::Absent),
        ("DELETE_FAILED", StackState::DeletionFailed),
        ("DELETE_IN_PROGRESS", StackState::InProgress),
        ("IMPORT_COMPLETE", StackState::Updatable),
        ("IMPORT_IN_PROGRESS", StackState::InProgress),
        ("IMPORT_ROLLBACK_COMPLETE", StackState::Updatable),
        ("IMPORT_ROLLBACK_FAILED", StackState::NeedsManualAttention),
        ("IMPORT_ROLLBACK_IN_PROGRESS", StackState::InProgress),
        ("REVIEW_IN_PROGRESS", StackState::Absent),
        ("ROLLBACK_COMPLETE", StackState::CreationFailed),
        ("ROLLBACK_FAILED", StackState::CreationFailed),
        ("ROLLBACK_IN_PROGRESS", StackState::InProgress),
        ("UPDATE_COMPLETE", StackState::Updatable),
        (
            "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
            StackState::InProgress,
        ),
        ("UPDATE_FAILED", StackState::Updatable),
        ("UPDATE_IN_PROGRESS", StackState::InProgress),
        ("UPDATE_ROLLBACK_COMPLETE", StackState::Updatable),
        (
            "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
            StackState::InProgress,
        ),
        ("UPDATE_ROLLBACK_FAILED", StackState::UpdateRollbackFailed),
        ("UPDATE_ROLLBACK_IN_PROGRESS", StackState::InProgress),
    ];

    #[test]
    fn every_status_has_its_state() {
        for (status, expected) in EXPECTED {
            assert_eq!(StackState::from_status(status), *expected, "{status}");
        }
    }

    /// A status the SDK learns after this table was written fails here, so
    /// someone decides what it means instead of a guess.
    #[test]
    fn the_table_covers_every_status_the_sdk_knows() {
        let known: Vec<&str> = EXPECTED.iter().map(|(status, _)| *status).collect();
        for status in StackStatus::values() {
            assert!(known.contains(status), "{status} is not in the table");
        }
        assert_eq!(known.len(), StackStatus::values().len());
    }

    #[test]
    fn an_unknown_status_is_waited_for_when_running_and_shown_otherwise() {
        assert_eq!(
            StackState::from_status("EXPORT_IN_PROGRESS"),
            StackState::InProgress
        );
        assert_eq!(
            StackState::from_status("EXPORT_COMPLETE"),
            StackState::NeedsManualAttention
        );
    }

    #[test]
    fn settled_and_successful_statuses() {
        for (status, state) in EXPECTED {
            assert_eq!(
                is_settled(status),
                *state != StackState::InProgress,
                "{status}"
            );
        }
        let successes: Vec<&str> = EXPECTED
            .iter()
            .map(|(status, _)| *status)
            .filter(|status| is_success(status))
            .collect();
        assert_eq!(
            successes,
            [
                "CREATE_COMPLETE",
                "DELETE_COMPLETE",
                "IMPORT_COMPLETE",
                "UPDATE_COMPLETE"
            ]
        );
    }

    #[test]
    fn states_that_need_the_user_say_what_to_do() {
        let step = next_step("demo", "ROLLBACK_COMPLETE").unwrap();
        assert!(step.contains("deployer deploy --recreate"), "{step}");
        let step = next_step("demo", "UPDATE_ROLLBACK_FAILED").unwrap();
        assert!(step.contains("--continue-rollback"), "{step}");
        let step = next_step("demo", "DELETE_FAILED").unwrap();
        assert!(step.contains("deployer destroy"), "{step}");
        assert_eq!(next_step("demo", "UPDATE_COMPLETE"), None);
        assert_eq!(next_step("demo", "UPDATE_IN_PROGRESS"), None);
    }
}
