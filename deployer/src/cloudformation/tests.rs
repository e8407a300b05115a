//! The engine against a faked CloudFormation (aws-smithy-mocks, no network):
//! what it asks, in which order, and what it makes of the answers, including
//! what the emulator never says (property values, paged change sets, rollback
//! continuation, timeouts).

use std::time::Duration;

use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::error::ErrorMetadata;
use aws_sdk_cloudformation::operation::continue_update_rollback::ContinueUpdateRollbackOutput;
use aws_sdk_cloudformation::operation::create_change_set::CreateChangeSetOutput;
use aws_sdk_cloudformation::operation::delete_change_set::DeleteChangeSetOutput;
use aws_sdk_cloudformation::operation::delete_stack::DeleteStackOutput;
use aws_sdk_cloudformation::operation::describe_change_set::DescribeChangeSetOutput;
use aws_sdk_cloudformation::operation::describe_stack_events::DescribeStackEventsOutput;
use aws_sdk_cloudformation::operation::describe_stacks::{
    DescribeStacksError, DescribeStacksOutput,
};
use aws_sdk_cloudformation::operation::execute_change_set::ExecuteChangeSetOutput;
use aws_sdk_cloudformation::primitives::DateTime;
use aws_sdk_cloudformation::types::{
    AttributeChangeType, Capability, Change, ChangeAction, ChangeSetStatus, ChangeSetType,
    ChangeSource, ChangeType, EvaluationType, ExecutionStatus, Output, Replacement,
    RequiresRecreation, ResourceAttribute, ResourceChange, ResourceChangeDetail, ResourceStatus,
    ResourceTargetDefinition, Stack, StackEvent as SdkEvent, StackStatus,
};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};

use super::*;

const NAME: &str = "demo";
const STACK_ID: &str = "arn:aws:cloudformation:us-east-1:123456789012:stack/demo/1";
const CHANGE_SET_ID: &str = "arn:aws:cloudformation:us-east-1:123456789012:changeSet/c/1";

fn engine(rules: &[&Rule]) -> Stacks {
    let client: Client = mock_client!(aws_sdk_cloudformation, RuleMode::MatchAny, rules);
    Stacks::new(client).with_polling(Polling {
        interval: Duration::from_millis(1),
        timeout: Duration::from_millis(200),
    })
}

fn stack(status: StackStatus) -> DescribeStacksOutput {
    DescribeStacksOutput::builder()
        .stacks(
            Stack::builder()
                .stack_name(NAME)
                .stack_id(STACK_ID)
                .stack_status(status)
                .creation_time(DateTime::from_secs(0))
                .outputs(output("UsersTable", "demo-users"))
                .outputs(output("ApiUrl", "https://abc.execute-api/prod/api"))
                .build(),
        )
        .build()
}

fn output(key: &str, value: &str) -> Output {
    Output::builder()
        .output_key(key)
        .output_value(value)
        .build()
}

fn missing_stack() -> DescribeStacksError {
    DescribeStacksError::generic(
        ErrorMetadata::builder()
            .code("ValidationError")
            .message("Stack with id demo does not exist")
            .build(),
    )
}

/// An event; `logical` equal to the stack's name makes it the stack's own.
fn event(id: &str, seconds: i64, logical: &str, status: &str, reason: &str) -> SdkEvent {
    let own = logical == NAME;
    SdkEvent::builder()
        .stack_id(STACK_ID)
        .stack_name(NAME)
        .event_id(id)
        .logical_resource_id(logical)
        .physical_resource_id(if own {
            STACK_ID.to_owned()
        } else {
            format!("demo-{}", logical.to_lowercase())
        })
        .resource_type(if own {
            "AWS::CloudFormation::Stack"
        } else {
            "AWS::DynamoDB::Table"
        })
        .resource_status(ResourceStatus::from(status))
        .resource_status_reason(reason)
        .timestamp(DateTime::from_secs(1_700_000_000 + seconds))
        .build()
}

/// DescribeStackEvents' answer: `newest_first`, as the API lists them.
fn events(newest_first: Vec<SdkEvent>) -> DescribeStackEventsOutput {
    DescribeStackEventsOutput::builder()
        .set_stack_events(Some(newest_first))
        .build()
}

fn modify_detail(name: &str, before: &str, after: &str) -> ResourceChangeDetail {
    ResourceChangeDetail::builder()
        .target(
            ResourceTargetDefinition::builder()
                .attribute(ResourceAttribute::Properties)
                .name(name)
                .path(format!("/Properties/{name}"))
                .requires_recreation(RequiresRecreation::Never)
                .before_value(before)
                .after_value(after)
                .attribute_change_type(AttributeChangeType::Modify)
                .build(),
        )
        .evaluation(EvaluationType::Static)
        .change_source(ChangeSource::DirectModification)
        .build()
}

fn modify(logical: &str, detail: ResourceChangeDetail) -> Change {
    Change::builder()
        .r#type(ChangeType::Resource)
        .resource_change(
            ResourceChange::builder()
                .action(ChangeAction::Modify)
                .logical_resource_id(logical)
                .resource_type("AWS::DynamoDB::Table")
                .replacement(Replacement::False)
                .details(detail)
                .build(),
        )
        .build()
}

fn change_set(status: ChangeSetStatus, reason: &str) -> DescribeChangeSetOutput {
    DescribeChangeSetOutput::builder()
        .change_set_id(CHANGE_SET_ID)
        .stack_id(STACK_ID)
        .status(status)
        .status_reason(reason)
        .execution_status(ExecutionStatus::Available)
        .build()
}

fn created_change_set() -> Rule {
    mock!(Client::create_change_set).then_output(|| {
        CreateChangeSetOutput::builder()
            .id(CHANGE_SET_ID)
            .stack_id(STACK_ID)
            .build()
    })
}

fn nothing_to_stream(_: &StackEvent) {}

#[tokio::test]
async fn a_missing_stack_is_created_and_every_page_of_changes_is_read_with_values() {
    let describe = mock!(Client::describe_stacks).then_error(missing_stack);
    let create = mock!(Client::create_change_set)
        .match_requests(|request| {
            request.change_set_type() == Some(&ChangeSetType::Create)
                && request.capabilities() == [Capability::CapabilityNamedIam]
                && request.parameters().len() == 1
                && request.parameters()[0].parameter_key() == Some("ArtifactKey")
                && request.parameters()[0].parameter_value() == Some("lambda/abc.zip")
        })
        .then_output(|| {
            CreateChangeSetOutput::builder()
                .id(CHANGE_SET_ID)
                .stack_id(STACK_ID)
                .build()
        });
    // Pending twice, then complete; the changes come in two pages.
    let pages = mock!(Client::describe_change_set)
        .match_requests(|request| request.include_property_values() == Some(true))
        .sequence()
        .output(|| change_set(ChangeSetStatus::CreatePending, ""))
        .output(|| change_set(ChangeSetStatus::CreateInProgress, ""))
        .output(|| change_set(ChangeSetStatus::CreateComplete, ""))
        .output(|| {
            let mut page = change_set(ChangeSetStatus::CreateComplete, "");
            page.changes = Some(vec![modify("A", modify_detail("BillingMode", "x", "y"))]);
            page.next_token = Some("page-2".into());
            page
        })
        .output(|| {
            let mut page = change_set(ChangeSetStatus::CreateComplete, "");
            page.changes = Some(vec![modify("B", modify_detail("TableClass", "p", "q"))]);
            page
        })
        .build();
    let stacks = engine(&[&describe, &create, &pages]);

    let request = PlanRequest::new(NAME, "Resources: {}")
        .capability("CAPABILITY_NAMED_IAM")
        .parameter("ArtifactKey", "lambda/abc.zip");
    let plan = stacks
        .settle_and_plan(&request, &mut nothing_to_stream)
        .await
        .unwrap();

    assert_eq!(plan.kind, ChangeSetKind::Create);
    assert_eq!(plan.stack_id.as_deref(), Some(STACK_ID));
    assert_eq!(plan.change_set_id.as_deref(), Some(CHANGE_SET_ID));
    let logical_ids: Vec<&str> = plan.changes.iter().map(|c| c.logical_id.as_str()).collect();
    assert_eq!(logical_ids, ["A", "B"]);
    assert_eq!(
        plan.changes[1].properties[0].to_string(),
        "/Properties/TableClass: p → q (DirectModification)"
    );
    assert_eq!(create.num_calls(), 1);
    assert_eq!(pages.num_calls(), 5);
}

#[tokio::test]
async fn a_change_set_without_changes_is_an_empty_plan_and_is_deleted() {
    for reason in [
        "The submitted information didn't contain changes. Submit different information to \
         create a change set.",
        "No updates are to be performed.",
    ] {
        let describe =
            mock!(Client::describe_stacks).then_output(|| stack(StackStatus::UpdateComplete));
        let create = created_change_set();
        let failed = mock!(Client::describe_change_set)
            .then_output(move || change_set(ChangeSetStatus::Failed, reason));
        let delete = mock!(Client::delete_change_set)
            .match_requests(|request| request.change_set_name() == Some(CHANGE_SET_ID))
            .then_output(|| DeleteChangeSetOutput::builder().build());
        let stacks = engine(&[&describe, &create, &failed, &delete]);

        let plan = stacks
            .settle_and_plan(&PlanRequest::new(NAME, "{}"), &mut nothing_to_stream)
            .await
            .unwrap();

        assert!(plan.is_empty(), "{reason}");
        assert_eq!(plan.kind, ChangeSetKind::Update);
        assert_eq!(plan.change_set_id, None);
        assert_eq!(delete.num_calls(), 1);
        // Executing it does nothing and says so.
        let outcome = stacks.execute(&plan, &mut nothing_to_stream).await.unwrap();
        assert!(!outcome.changed);
        assert_eq!(
            outcome.outputs.iter().next(),
            Some(("ApiUrl", "https://abc.execute-api/prod/api"))
        );
    }
}

#[tokio::test]
async fn a_change_set_that_fails_for_another_reason_is_an_error_with_it() {
    let describe =
        mock!(Client::describe_stacks).then_output(|| stack(StackStatus::UpdateComplete));
    let create = created_change_set();
    let failed = mock!(Client::describe_change_set).then_output(|| {
        change_set(
            ChangeSetStatus::Failed,
            "Template format error: Unresolved resource dependencies [Role] in the Resources block",
        )
    });
    let delete =
        mock!(Client::delete_change_set).then_output(|| DeleteChangeSetOutput::builder().build());
    let stacks = engine(&[&describe, &create, &failed, &delete]);

    let error = stacks
        .settle_and_plan(&PlanRequest::new(NAME, "{}"), &mut nothing_to_stream)
        .await
        .unwrap_err();

    let message = error.to_string();
    assert!(
        message.starts_with("CloudFormation could not work out the changes to stack `demo`"),
        "{message}"
    );
    assert!(message.ends_with("Unresolved resource dependencies [Role] in the Resources block"));
    assert_eq!(delete.num_calls(), 1, "the failed change set is cleaned up");
}

#[tokio::test]
async fn states_that_block_a_deployment_are_explained_not_acted_on() {
    for (status, expected) in [
        (
            StackStatus::RollbackComplete,
            "stack `demo` is in ROLLBACK_COMPLETE: its first creation failed and CloudFormation \
             cannot update it; fix the cause, then run `deployer deploy --recreate` to delete it \
             and create it again",
        ),
        (
            StackStatus::UpdateRollbackFailed,
            "stack `demo` is in UPDATE_ROLLBACK_FAILED: an update failed and CloudFormation could \
             not roll it back; fix the cause (often a resource changed or deleted outside \
             CloudFormation), then run `deployer deploy --continue-rollback` to finish the \
             rollback and deploy",
        ),
        (
            StackStatus::DeleteFailed,
            "stack `demo` is in DELETE_FAILED: its deletion failed part-way; fix the cause, then \
             run `deployer destroy` again",
        ),
    ] {
        let describe = mock!(Client::describe_stacks).then_output(move || stack(status.clone()));
        let create = created_change_set();
        let stacks = engine(&[&describe, &create]);

        let error = stacks
            .settle_and_plan(&PlanRequest::new(NAME, "{}"), &mut nothing_to_stream)
            .await
            .unwrap_err();

        assert_eq!(error.to_string(), expected);
        assert_eq!(create.num_calls(), 0);
    }
}

#[tokio::test]
async fn a_stack_in_progress_is_waited_for_then_updated() {
    let describe = mock!(Client::describe_stacks)
        .sequence()
        .output(|| stack(StackStatus::UpdateInProgress)) // the plan's first look
        .output(|| stack(StackStatus::UpdateInProgress)) // after placing the cursor
        .output(|| stack(StackStatus::UpdateComplete)) // once the stack's event settles
        .output(|| stack(StackStatus::UpdateComplete)) // the plan's second look
        .repeatedly()
        .build();
    let history = mock!(Client::describe_stack_events)
        .sequence()
        .output(|| {
            events(vec![event(
                "1",
                0,
                NAME,
                "UPDATE_IN_PROGRESS",
                "User Initiated",
            )])
        })
        .output(|| {
            events(vec![
                event("3", 9, NAME, "UPDATE_COMPLETE", ""),
                event("2", 8, "Table", "UPDATE_COMPLETE", ""),
                event("1", 0, NAME, "UPDATE_IN_PROGRESS", "User Initiated"),
            ])
        })
        .build();
    let create = mock!(Client::create_change_set)
        .match_requests(|request| request.change_set_type() == Some(&ChangeSetType::Update))
        .then_output(|| {
            CreateChangeSetOutput::builder()
                .id(CHANGE_SET_ID)
                .stack_id(STACK_ID)
                .build()
        });
    let ready = mock!(Client::describe_change_set).then_output(|| {
        let mut ready = change_set(ChangeSetStatus::CreateComplete, "");
        ready.changes = Some(vec![modify("Table", modify_detail("TableClass", "a", "b"))]);
        ready
    });
    let stacks = engine(&[&describe, &history, &create, &ready]);

    let mut streamed: Vec<StackEvent> = Vec::new();
    let plan = stacks
        .settle_and_plan(&PlanRequest::new(NAME, "{}"), &mut streamed)
        .await
        .unwrap();

    assert_eq!(plan.kind, ChangeSetKind::Update);
    assert_eq!(plan.changes.len(), 1);
    let seen: Vec<(&str, &str)> = streamed
        .iter()
        .map(|e| (e.logical_id.as_str(), e.status.as_str()))
        .collect();
    assert_eq!(
        seen,
        [("Table", "UPDATE_COMPLETE"), ("demo", "UPDATE_COMPLETE")]
    );
}

/// A deployment that rolls back: only the failures of this operation are
/// reported, not an older one still in the stack's history.
#[tokio::test]
async fn a_failed_execution_reports_the_failures_of_this_operation() {
    let describe =
        mock!(Client::describe_stacks).then_output(|| stack(StackStatus::UpdateRollbackComplete));
    let history = mock!(Client::describe_stack_events)
        .sequence()
        .output(|| {
            events(vec![
                event("2", 1, NAME, "UPDATE_COMPLETE", ""),
                event("1", 0, "Old", "UPDATE_FAILED", "an old failure"),
            ])
        })
        .output(|| {
            events(vec![
                event("7", 40, NAME, "UPDATE_ROLLBACK_COMPLETE", ""),
                event("6", 30, "Table", "UPDATE_COMPLETE", ""),
                event(
                    "5",
                    20,
                    NAME,
                    "UPDATE_ROLLBACK_IN_PROGRESS",
                    "The following resource(s) failed to update: [Table].",
                ),
                event(
                    "4",
                    12,
                    "Table",
                    "UPDATE_FAILED",
                    "Resource handler returned message: \"One or more parameter values were \
                     invalid\"",
                ),
                event("3", 10, NAME, "UPDATE_IN_PROGRESS", "User Initiated"),
                event("2", 1, NAME, "UPDATE_COMPLETE", ""),
                event("1", 0, "Old", "UPDATE_FAILED", "an old failure"),
            ])
        })
        .build();
    let execute = mock!(Client::execute_change_set)
        .match_requests(|request| request.change_set_name() == Some(CHANGE_SET_ID))
        .then_output(|| ExecuteChangeSetOutput::builder().build());
    let stacks = engine(&[&describe, &history, &execute]);
    let mut plan = ChangeSetPlan::from_changes(
        NAME,
        "c",
        ChangeSetKind::Update,
        &[modify("Table", modify_detail("TableClass", "a", "b"))],
    );
    plan.stack_id = Some(STACK_ID.into());
    plan.change_set_id = Some(CHANGE_SET_ID.into());

    let mut streamed: Vec<StackEvent> = Vec::new();
    let error = stacks.execute(&plan, &mut streamed).await.unwrap_err();

    let CloudFormationError::OperationFailed(failure) = error else {
        panic!("expected a failed operation, got {error:?}");
    };
    assert_eq!(failure.status, "UPDATE_ROLLBACK_COMPLETE");
    assert_eq!(failure.failed_resources.len(), 1);
    assert_eq!(failure.failed_resources[0].logical_id, "Table");
    assert_eq!(streamed.len(), 5, "the operation's events, and only them");
    let elapsed: Vec<u64> = streamed
        .iter()
        .map(|e| e.elapsed.unwrap().as_secs())
        .collect();
    assert_eq!(elapsed, [0, 2, 10, 20, 30]);
    assert_eq!(
        streamed[1].to_string(),
        "   0:02  Table                        AWS::DynamoDB::Table             UPDATE_FAILED                \
         Resource handler returned message: \"One or more parameter values were invalid\""
    );
}

#[tokio::test]
async fn a_successful_execution_returns_the_outputs_api_url_first() {
    let describe =
        mock!(Client::describe_stacks).then_output(|| stack(StackStatus::CreateComplete));
    let history = mock!(Client::describe_stack_events)
        .sequence()
        .output(|| events(vec![event("1", 0, NAME, "REVIEW_IN_PROGRESS", "")]))
        .output(|| {
            events(vec![
                event("4", 3, NAME, "CREATE_COMPLETE", ""),
                event("3", 2, "Table", "CREATE_COMPLETE", ""),
                event("2", 1, NAME, "CREATE_IN_PROGRESS", "User Initiated"),
                event("1", 0, NAME, "REVIEW_IN_PROGRESS", ""),
            ])
        })
        .build();
    // Whatever a failed attempt created is deleted by its rollback, so a
    // named table never blocks the next attempt.
    let execute = mock!(Client::execute_change_set)
        .match_requests(|request| request.retain_except_on_create() == Some(true))
        .then_output(|| ExecuteChangeSetOutput::builder().build());
    let stacks = engine(&[&describe, &history, &execute]);
    let mut plan = ChangeSetPlan::from_changes(
        NAME,
        "c",
        ChangeSetKind::Create,
        &[modify("Table", modify_detail("TableClass", "a", "b"))],
    );
    plan.stack_id = Some(STACK_ID.into());
    plan.change_set_id = Some(CHANGE_SET_ID.into());

    let outcome = stacks.execute(&plan, &mut nothing_to_stream).await.unwrap();

    assert!(outcome.changed);
    assert_eq!(outcome.status, "CREATE_COMPLETE");
    assert_eq!(
        outcome.to_string(),
        "Stack `demo` is CREATE_COMPLETE.\nOutputs:\n  ApiUrl      \
         https://abc.execute-api/prod/api\n  UsersTable  demo-users\n"
    );
}

#[tokio::test]
async fn a_wait_that_outlasts_the_timeout_says_which_and_where_the_stack_is() {
    let describe =
        mock!(Client::describe_stacks).then_output(|| stack(StackStatus::UpdateInProgress));
    let history = mock!(Client::describe_stack_events)
        .then_output(|| events(vec![event("1", 0, NAME, "UPDATE_IN_PROGRESS", "")]));
    let execute =
        mock!(Client::execute_change_set).then_output(|| ExecuteChangeSetOutput::builder().build());
    let stacks = engine(&[&describe, &history, &execute]);
    let mut plan = ChangeSetPlan::from_changes(
        NAME,
        "c",
        ChangeSetKind::Update,
        &[modify("Table", modify_detail("TableClass", "a", "b"))],
    );
    plan.stack_id = Some(STACK_ID.into());
    plan.change_set_id = Some(CHANGE_SET_ID.into());

    let started = std::time::Instant::now();
    let error = stacks
        .execute(&plan, &mut nothing_to_stream)
        .await
        .unwrap_err();

    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        error.to_string(),
        "gave up after 200ms waiting for the deployment of stack `demo` (it is still \
         UPDATE_IN_PROGRESS); CloudFormation carries on regardless: follow it with `deployer \
         status`, or wait longer with `--timeout`"
    );
}

#[tokio::test]
async fn a_failed_update_rollback_is_continued_and_waited_for() {
    let describe = mock!(Client::describe_stacks)
        .sequence()
        .output(|| stack(StackStatus::UpdateRollbackFailed))
        .output(|| stack(StackStatus::UpdateRollbackComplete))
        .repeatedly()
        .build();
    let history = mock!(Client::describe_stack_events)
        .sequence()
        .output(|| events(vec![event("1", 0, NAME, "UPDATE_ROLLBACK_FAILED", "x")]))
        .output(|| {
            events(vec![
                event("3", 5, NAME, "UPDATE_ROLLBACK_COMPLETE", ""),
                event(
                    "2",
                    1,
                    NAME,
                    "UPDATE_ROLLBACK_IN_PROGRESS",
                    "User Initiated",
                ),
                event("1", 0, NAME, "UPDATE_ROLLBACK_FAILED", "x"),
            ])
        })
        .build();
    let continued = mock!(Client::continue_update_rollback)
        .match_requests(|request| request.stack_name() == Some(STACK_ID))
        .then_output(|| ContinueUpdateRollbackOutput::builder().build());
    let stacks = engine(&[&describe, &history, &continued]);

    let mut streamed: Vec<StackEvent> = Vec::new();
    let status = stacks
        .continue_update_rollback(NAME, &mut streamed)
        .await
        .unwrap();

    assert_eq!(status, "UPDATE_ROLLBACK_COMPLETE");
    assert_eq!(continued.num_calls(), 1);
    assert_eq!(streamed.len(), 2);
}

/// AWS reports a resource kept by `DeletionPolicy: Retain` with a
/// DELETE_SKIPPED event; the emulator does too, this pins the AWS shape.
#[tokio::test]
async fn destroy_reports_what_deletion_policy_kept() {
    let describe = mock!(Client::describe_stacks)
        .sequence()
        .output(|| stack(StackStatus::UpdateComplete))
        .output(|| stack(StackStatus::DeleteComplete))
        .repeatedly()
        .build();
    let history = mock!(Client::describe_stack_events)
        .sequence()
        .output(|| events(vec![event("1", 0, NAME, "UPDATE_COMPLETE", "")]))
        .output(|| {
            events(vec![
                event("5", 9, NAME, "DELETE_COMPLETE", ""),
                event("4", 8, "Users", "DELETE_SKIPPED", ""),
                event("3", 2, "Function", "DELETE_COMPLETE", ""),
                event("2", 1, NAME, "DELETE_IN_PROGRESS", "User Initiated"),
                event("1", 0, NAME, "UPDATE_COMPLETE", ""),
            ])
        })
        .build();
    let delete = mock!(Client::delete_stack)
        .match_requests(|request| request.stack_name() == Some(STACK_ID))
        .then_output(|| DeleteStackOutput::builder().build());
    let stacks = engine(&[&describe, &history, &delete]);

    let outcome = stacks.destroy(NAME, &mut nothing_to_stream).await.unwrap();

    assert!(outcome.deleted);
    assert_eq!(
        outcome.retained,
        [RetainedResource {
            logical_id: "Users".into(),
            resource_type: "AWS::DynamoDB::Table".into(),
            physical_id: Some("demo-users".into()),
        }]
    );
}

#[tokio::test]
async fn destroying_a_missing_stack_is_not_an_error() {
    let describe = mock!(Client::describe_stacks).then_error(missing_stack);
    let delete = mock!(Client::delete_stack).then_output(|| DeleteStackOutput::builder().build());
    let stacks = engine(&[&describe, &delete]);

    let outcome = stacks.destroy(NAME, &mut nothing_to_stream).await.unwrap();

    assert!(!outcome.deleted);
    assert_eq!(delete.num_calls(), 0);
    assert!(stacks.describe(NAME, 10).await.unwrap().is_none());
    assert!(matches!(
        stacks.outputs(NAME).await,
        Err(CloudFormationError::StackNotFound { .. })
    ));
}

#[tokio::test]
async fn an_api_error_keeps_the_service_message_and_its_source() {
    let describe = mock!(Client::describe_stacks).then_error(|| {
        DescribeStacksError::generic(
            ErrorMetadata::builder()
                .code("AccessDenied")
                .message("User: arn:aws:iam::1:user/x is not authorized to perform: cloudformation:DescribeStacks")
                .build(),
        )
    });
    let stacks = engine(&[&describe]);

    let error = stacks.outputs(NAME).await.unwrap_err();

    assert_eq!(
        error.to_string(),
        "CloudFormation DescribeStacks failed for stack `demo`: AccessDenied: User: \
         arn:aws:iam::1:user/x is not authorized to perform: cloudformation:DescribeStacks"
    );
    assert!(std::error::Error::source(&error).is_some());
}

#[tokio::test]
async fn a_status_report_lists_recent_events_oldest_first() {
    let describe =
        mock!(Client::describe_stacks).then_output(|| stack(StackStatus::RollbackComplete));
    let history = mock!(Client::describe_stack_events).then_output(|| {
        events(vec![
            event("3", 2, NAME, "ROLLBACK_COMPLETE", ""),
            event("2", 1, "Table", "CREATE_FAILED", "bad"),
            event("1", 0, NAME, "CREATE_IN_PROGRESS", ""),
        ])
    });
    let stacks = engine(&[&describe, &history]);

    let report = stacks.describe(NAME, 2).await.unwrap().unwrap();

    assert_eq!(report.state, StackState::CreationFailed);
    let ids: Vec<&str> = report
        .recent_events
        .iter()
        .map(|e| e.status.as_str())
        .collect();
    assert_eq!(ids, ["CREATE_FAILED", "ROLLBACK_COMPLETE"]);
    let text = report.to_string();
    assert!(
        text.starts_with("Stack `demo`: ROLLBACK_COMPLETE\n"),
        "{text}"
    );
    assert!(text.contains("Next: its first creation failed"), "{text}");
    assert!(
        text.contains("  ApiUrl      https://abc.execute-api/prod/api\n"),
        "{text}"
    );
    assert!(text.contains("  2023-11-14T22:13:21Z  Table"), "{text}");
}

/// The CLI may run a stack command on any runtime thread (or spawn it next to
/// a Ctrl-C handler): every operation's future is `Send`.
#[test]
fn the_operations_can_run_on_any_thread() {
    fn send<T: Send>(_: T) {}
    let stacks = engine(&[]);
    let request = PlanRequest::new(NAME, "{}");
    let plan = ChangeSetPlan::from_changes(NAME, "c", ChangeSetKind::Update, &[]);
    let mut sink = nothing_to_stream;
    send(stacks.settle_and_plan(&request, &mut sink));
    send(stacks.execute(&plan, &mut sink));
    send(stacks.discard(&plan));
    send(stacks.continue_update_rollback(NAME, &mut sink));
    send(stacks.describe(NAME, 10));
    send(stacks.outputs(NAME));
    send(stacks.destroy(NAME, &mut sink));
}
