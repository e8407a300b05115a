#![allow(clippy::unwrap_used)]
//! The CloudFormation engine against the emulator (ministack), with small
//! templates of our own: create, update, plan again, discard, fail, recreate,
//! destroy — the stack lifecycle every `deployer` command relies on.
//!
//! Run with `tools/with-emulator cargo test -p deployer --test
//! cloudformation_emulator`; without an emulator the tests skip (or fail
//! under CI, see `support`). Each test uses stacks of its own, so they run in
//! parallel. The emulator gives no before/after property values in change
//! sets; the unit tests in `deployer/src/cloudformation/tests.rs` cover those
//! with AWS's answers.

#[path = "../../api/tests/support/mod.rs"]
mod support;

use std::time::Duration;

use deployer::cloudformation::{
    ChangeSetKind, CloudFormationError, PlanRequest, Polling, StackEvent, StackState, Stacks,
};

/// The engine over the emulator, polling fast: the emulator settles in
/// milliseconds, and a minute is far more than any of these operations takes.
async fn stacks() -> Option<(Stacks, aws_sdk_dynamodb::Client)> {
    let config = support::emulator_config().await?;
    let stacks = Stacks::new(aws_sdk_cloudformation::Client::new(&config)).with_polling(Polling {
        interval: Duration::from_millis(50),
        timeout: Duration::from_secs(60),
    });
    Some((stacks, aws_sdk_dynamodb::Client::new(&config)))
}

fn unique_stack(purpose: &str) -> String {
    format!("cfn-{purpose}-{}", uuid::Uuid::new_v4().simple())
}

/// A table kept on deletion and a parameter holding `value`; outputs in an
/// order the engine must rearrange (the API URL is not first by key).
fn template(value: &str) -> String {
    template_with_table(value, None)
}

/// [`template`], with the table's name fixed (as the stack's tables are).
fn template_with_table(value: &str, table: Option<&str>) -> String {
    let table_name = table
        .map(|table| format!(r#""TableName": "{table}","#))
        .unwrap_or_default();
    format!(
        r#"{{
  "Resources": {{
    "Table": {{
      "Type": "AWS::DynamoDB::Table",
      "DeletionPolicy": "Retain",
      "UpdateReplacePolicy": "Retain",
      "Properties": {{
        {table_name}
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{{"AttributeName": "id", "AttributeType": "S"}}],
        "KeySchema": [{{"AttributeName": "id", "KeyType": "HASH"}}]
      }}
    }},
    "Setting": {{
      "Type": "AWS::SSM::Parameter",
      "Properties": {{"Type": "String", "Value": "{value}"}}
    }}
  }},
  "Outputs": {{
    "TableName": {{"Value": {{"Ref": "Table"}}}},
    "SettingName": {{"Value": {{"Ref": "Setting"}}}},
    "ApiUrl": {{"Value": {{"Fn::Sub": "https://${{Table}}.example/prod/api"}}}}
  }}
}}"#
    )
}

/// A template whose creation fails: CloudFormation takes no SecureString
/// parameter, and the emulator rejects it while creating, as AWS does. The
/// table, named and retained like the stack's tables, is created first.
fn failing_template(table: &str) -> String {
    format!(
        r#"{{
  "Resources": {{
    "Table": {{
      "Type": "AWS::DynamoDB::Table",
      "DeletionPolicy": "Retain",
      "UpdateReplacePolicy": "Retain",
      "Properties": {{
        "TableName": "{table}",
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{{"AttributeName": "id", "AttributeType": "S"}}],
        "KeySchema": [{{"AttributeName": "id", "KeyType": "HASH"}}]
      }}
    }},
    "Secret": {{
      "Type": "AWS::SSM::Parameter",
      "DependsOn": "Table",
      "Properties": {{"Type": "SecureString", "Value": "not allowed"}}
    }}
  }}
}}"#
    )
}

/// Events of one operation arrive once each, oldest first, and end with the
/// stack's own settled event.
fn assert_streamed_in_order(events: &[StackEvent], stack: &str, last_status: &str) {
    assert!(!events.is_empty(), "no events streamed");
    // Elapsed times count from the operation's first event, by the
    // events' own timestamps: oldest first means they never decrease.
    let elapsed: Vec<Duration> = events.iter().map(|e| e.elapsed.unwrap()).collect();
    assert_eq!(elapsed[0], Duration::ZERO);
    assert!(
        elapsed.windows(2).all(|w| w[0] <= w[1]),
        "out of order: {events:#?}"
    );
    let mut ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), events.len(), "an event came twice: {events:#?}");
    let last = events.last().unwrap();
    assert_eq!(
        (last.logical_id.as_str(), last.status.as_str()),
        (stack, last_status)
    );
    assert!(last.is_stack);
    let lines: Vec<String> = events.iter().map(ToString::to_string).collect();
    assert!(lines.iter().all(|line| !line.contains('\n')));
}

#[tokio::test]
async fn a_stack_is_created_updated_planned_again_and_destroyed() {
    let Some((stacks, dynamodb)) = stacks().await else {
        return;
    };
    let name = unique_stack("lifecycle");
    assert_eq!(stacks.state(&name).await.unwrap(), StackState::Absent);

    // Create, through a change set.
    let plan = stacks
        .settle_and_plan(&PlanRequest::new(&name, template("one")), &mut Vec::new())
        .await
        .unwrap();
    assert_eq!(plan.kind, ChangeSetKind::Create);
    let added: Vec<(&str, &str)> = plan
        .changes
        .iter()
        .map(|c| (c.action.as_str(), c.logical_id.as_str()))
        .collect();
    assert_eq!(added, [("Add", "Setting"), ("Add", "Table")]);
    let mut events: Vec<StackEvent> = Vec::new();
    let created = stacks.execute(&plan, &mut events).await.unwrap();
    assert_eq!(created.status, "CREATE_COMPLETE");
    assert!(created.changed);
    assert_streamed_in_order(&events, &name, "CREATE_COMPLETE");
    assert_eq!(
        (events[0].logical_id.as_str(), events[0].status.as_str()),
        (name.as_str(), "CREATE_IN_PROGRESS")
    );
    let keys: Vec<&str> = created.outputs.iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["ApiUrl", "SettingName", "TableName"]);
    let table = created.outputs.get("TableName").unwrap().to_owned();
    assert_eq!(
        created.outputs.get("ApiUrl").unwrap(),
        format!("https://{table}.example/prod/api")
    );
    assert_eq!(stacks.outputs(&name).await.unwrap(), created.outputs);

    // Update one property: the plan shows exactly it.
    let plan = stacks
        .settle_and_plan(&PlanRequest::new(&name, template("two")), &mut Vec::new())
        .await
        .unwrap();
    assert_eq!(plan.kind, ChangeSetKind::Update);
    assert_eq!(plan.changes.len(), 1, "{plan}");
    let change = &plan.changes[0];
    assert_eq!(
        (
            change.action.as_str(),
            change.logical_id.as_str(),
            change.resource_type.as_str(),
            change.replacement.as_deref()
        ),
        ("Modify", "Setting", "AWS::SSM::Parameter", Some("False"))
    );
    let properties: Vec<String> = change.properties.iter().map(ToString::to_string).collect();
    assert_eq!(properties, ["/Properties/Value (DirectModification)"]);
    let text = plan.to_string();
    assert!(text.contains("  Modify  Setting"), "{text}");
    let mut events: Vec<StackEvent> = Vec::new();
    let updated = stacks.execute(&plan, &mut events).await.unwrap();
    assert_eq!(updated.status, "UPDATE_COMPLETE");
    assert_streamed_in_order(&events, &name, "UPDATE_COMPLETE");
    assert!(
        events.iter().all(|e| e.status != "CREATE_COMPLETE"),
        "only this operation's events: {events:#?}"
    );

    // The same template again: no changes, and the change set is gone.
    let plan = stacks
        .settle_and_plan(&PlanRequest::new(&name, template("two")), &mut Vec::new())
        .await
        .unwrap();
    assert!(plan.is_empty(), "{plan}");
    assert_eq!(plan.change_set_id, None);
    assert_eq!(
        plan.to_string(),
        format!("No changes: stack `{name}` already matches the template.\n")
    );
    let unchanged = stacks.execute(&plan, &mut Vec::new()).await.unwrap();
    assert!(!unchanged.changed);
    assert_eq!(unchanged.status, "UPDATE_COMPLETE");

    // A plan looked at and discarded (`diff`) changes nothing.
    let plan = stacks
        .settle_and_plan(&PlanRequest::new(&name, template("three")), &mut Vec::new())
        .await
        .unwrap();
    assert_eq!(plan.changes.len(), 1);
    stacks.discard(&plan).await.unwrap();
    let report = stacks.describe(&name, 5).await.unwrap().unwrap();
    assert_eq!(report.status, "UPDATE_COMPLETE");
    assert_eq!(report.state, StackState::Updatable);
    assert_eq!(report.recent_events.len(), 5);
    assert_eq!(
        report.recent_events.last().unwrap().status,
        "UPDATE_COMPLETE"
    );
    assert_eq!(report.outputs, created.outputs);

    // Destroy: the stack goes, the retained table stays and is reported.
    let mut events: Vec<StackEvent> = Vec::new();
    let destroyed = stacks.destroy(&name, &mut events).await.unwrap();
    assert!(destroyed.deleted);
    assert_streamed_in_order(&events, &name, "DELETE_COMPLETE");
    let kept: Vec<(&str, &str, Option<&str>)> = destroyed
        .retained
        .iter()
        .map(|r| {
            (
                r.logical_id.as_str(),
                r.resource_type.as_str(),
                r.physical_id.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        kept,
        [("Table", "AWS::DynamoDB::Table", Some(table.as_str()))]
    );
    assert!(destroyed.to_string().contains(&table));
    assert_eq!(stacks.state(&name).await.unwrap(), StackState::Absent);
    assert!(stacks.describe(&name, 5).await.unwrap().is_none());
    let again = stacks.destroy(&name, &mut Vec::new()).await.unwrap();
    assert!(!again.deleted);

    // The retained table exists; this test removes it.
    dynamodb
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    dynamodb
        .delete_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_failed_creation_is_reported_explained_and_recreated() {
    let Some((stacks, dynamodb)) = stacks().await else {
        return;
    };
    let name = unique_stack("failed");
    let table = format!("{name}-table");

    let plan = stacks
        .settle_and_plan(
            &PlanRequest::new(&name, failing_template(&table)),
            &mut Vec::new(),
        )
        .await
        .unwrap();
    let mut events: Vec<StackEvent> = Vec::new();
    let error = stacks.execute(&plan, &mut events).await.unwrap_err();
    let CloudFormationError::OperationFailed(failure) = &error else {
        panic!("expected a failed operation, got {error:?}");
    };
    assert_eq!(failure.status, "ROLLBACK_COMPLETE");
    assert_eq!(failure.failed_resources.len(), 1, "{failure}");
    let failed = &failure.failed_resources[0];
    assert_eq!(
        (failed.logical_id.as_str(), failed.status.as_str()),
        ("Secret", "CREATE_FAILED")
    );
    assert!(
        failed.reason.as_deref().unwrap().contains("SecureString"),
        "{failed:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("Secret (AWS::SSM::Parameter) CREATE_FAILED: "),
        "{message}"
    );
    assert!(
        message.contains("`deployer deploy --recreate`"),
        "{message}"
    );
    assert_streamed_in_order(&events, &name, "ROLLBACK_COMPLETE");
    // The rollback deleted the table it had just created, Retain or not,
    // so creating the stack again can reuse its name.
    let table_ends: Vec<&str> = events
        .iter()
        .filter(|e| e.logical_id == "Table")
        .map(|e| e.status.as_str())
        .collect();
    assert_eq!(
        table_ends.last(),
        Some(&"DELETE_COMPLETE"),
        "{table_ends:?}"
    );
    assert!(
        dynamodb
            .describe_table()
            .table_name(&table)
            .send()
            .await
            .is_err()
    );

    // Not updatable, and said so, until recreate is asked for.
    assert_eq!(
        stacks.state(&name).await.unwrap(),
        StackState::CreationFailed
    );
    let error = stacks
        .settle_and_plan(&PlanRequest::new(&name, template("one")), &mut Vec::new())
        .await
        .unwrap_err();
    assert!(
        matches!(error, CloudFormationError::CreationFailed { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().starts_with(&format!(
            "stack `{name}` is in ROLLBACK_COMPLETE: its first creation failed"
        )),
        "{error}"
    );

    let mut events: Vec<StackEvent> = Vec::new();
    let plan = stacks
        .settle_and_plan(
            &PlanRequest::new(&name, template_with_table("one", Some(&table))).recreate(true),
            &mut events,
        )
        .await
        .unwrap();
    assert_eq!(plan.recreated_from.as_deref(), Some("ROLLBACK_COMPLETE"));
    assert_eq!(plan.kind, ChangeSetKind::Create);
    assert_streamed_in_order(&events, &name, "DELETE_COMPLETE");
    let created = stacks.execute(&plan, &mut Vec::new()).await.unwrap();
    assert_eq!(created.status, "CREATE_COMPLETE");

    assert_eq!(created.outputs.get("TableName"), Some(table.as_str()));

    let destroyed = stacks.destroy(&name, &mut Vec::new()).await.unwrap();
    assert_eq!(destroyed.retained.len(), 1);
    assert_eq!(
        destroyed.retained[0].physical_id.as_deref(),
        Some(table.as_str())
    );
    dynamodb
        .delete_table()
        .table_name(table)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_creation_plan_discarded_leaves_no_stack_behind() {
    let Some((stacks, _)) = stacks().await else {
        return;
    };
    let name = unique_stack("discarded");

    let plan = stacks
        .settle_and_plan(&PlanRequest::new(&name, template("one")), &mut Vec::new())
        .await
        .unwrap();
    assert_eq!(plan.kind, ChangeSetKind::Create);
    assert_eq!(plan.changes.len(), 2);
    // Until executed, the stack exists only to hold the change set.
    assert_eq!(stacks.state(&name).await.unwrap(), StackState::Absent);
    assert_eq!(
        stacks.describe(&name, 1).await.unwrap().unwrap().status,
        "REVIEW_IN_PROGRESS"
    );

    stacks.discard(&plan).await.unwrap();

    assert!(stacks.describe(&name, 1).await.unwrap().is_none());
}

#[tokio::test]
async fn a_template_cloudformation_refuses_is_reported_with_its_reason() {
    let Some((stacks, _)) = stacks().await else {
        return;
    };
    let name = unique_stack("refused");
    // Real CloudFormation also refuses a Ref to nothing here; the emulator
    // accepts one, so the refusal tested is a body that is not a template.
    let broken = r#"{"Resources": {"Setting": "#;

    let error = stacks
        .settle_and_plan(&PlanRequest::new(&name, broken), &mut Vec::new())
        .await
        .unwrap_err();

    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "CloudFormation CreateChangeSet failed for stack `{name}`: ValidationError: "
        )),
        "{message}"
    );
    assert!(message.contains("Template format error"), "{message}");
    assert_eq!(stacks.state(&name).await.unwrap(), StackState::Absent);
}
