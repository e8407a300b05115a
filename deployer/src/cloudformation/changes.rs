//! The plan of a deployment: a change set, read back at property level.
//!
//! Deploys always go through a change set, so the user sees what will
//! change before it does, the way `cdk diff` and `sam deploy` show it. A
//! [`ChangeSetPlan`] is the change set described in our own terms: it
//! serialises for `--output json` and prints as a table for people, both from
//! the same values. It also keeps the change set's identity, so the same
//! plan is what gets executed or discarded.

use std::fmt;

use aws_sdk_cloudformation::types::{Change, ResourceChangeDetail};
use serde::Serialize;

use super::events::one_line;

/// Whether the change set creates the stack or updates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeSetKind {
    Create,
    Update,
}

impl ChangeSetKind {
    pub(crate) fn sdk(self) -> aws_sdk_cloudformation::types::ChangeSetType {
        match self {
            Self::Create => aws_sdk_cloudformation::types::ChangeSetType::Create,
            Self::Update => aws_sdk_cloudformation::types::ChangeSetType::Update,
        }
    }
}

/// What a deployment would change, and the change set that would do it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeSetPlan {
    pub stack_name: String,
    /// The stack's ARN; a new stack has one as soon as its change set exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack_id: Option<String>,
    pub change_set_name: String,
    /// The change set's ARN; `None` once it is gone (a plan without changes
    /// deletes its change set at once, as it cannot be executed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change_set_id: Option<String>,
    pub kind: ChangeSetKind,
    /// The status of a stack deleted to be created again (`--recreate`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recreated_from: Option<String>,
    pub changes: Vec<ResourceChange>,
}

impl ChangeSetPlan {
    /// A plan from the changes `DescribeChangeSet` listed (every page).
    pub fn from_changes(
        stack_name: &str,
        change_set_name: &str,
        kind: ChangeSetKind,
        changes: &[Change],
    ) -> Self {
        Self {
            stack_name: stack_name.to_owned(),
            stack_id: None,
            change_set_name: change_set_name.to_owned(),
            change_set_id: None,
            kind,
            recreated_from: None,
            changes: changes
                .iter()
                .filter_map(|change| change.resource_change())
                .map(ResourceChange::from_sdk)
                .collect(),
        }
    }

    /// True when deploying would change nothing.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    fn count(&self, action: &str) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }
}

/// One resource the change set adds, modifies, removes or imports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceChange {
    /// `Add`, `Modify`, `Remove`, `Import` (or `Dynamic`, `SyncWithActual`).
    pub action: String,
    pub logical_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub physical_id: Option<String>,
    pub resource_type: String,
    /// For a `Modify`: `True` (a new resource replaces it), `False` or
    /// `Conditional` (depends on a value known only while deploying).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
    /// What happens to the old resource: `Delete`, `Retain`,
    /// `ReplaceAndRetain`...; CloudFormation says it for removals and
    /// replacements.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_action: Option<String>,
    /// For a `Modify`: what changes in it, in CloudFormation's order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<PropertyChange>,
}

impl ResourceChange {
    pub(crate) fn from_sdk(change: &aws_sdk_cloudformation::types::ResourceChange) -> Self {
        Self {
            action: change
                .action()
                .map(|action| action.as_str().to_owned())
                .unwrap_or_default(),
            logical_id: change.logical_resource_id().unwrap_or_default().to_owned(),
            physical_id: change
                .physical_resource_id()
                .filter(|id| !id.is_empty())
                .map(str::to_owned),
            resource_type: change.resource_type().unwrap_or_default().to_owned(),
            replacement: change.replacement().map(|r| r.as_str().to_owned()),
            policy_action: change.policy_action().map(|p| p.as_str().to_owned()),
            properties: change
                .details()
                .iter()
                .map(PropertyChange::from_sdk)
                .collect(),
        }
    }

    fn is_replaced(&self) -> bool {
        self.action == "Modify" && self.replacement.as_deref() == Some("True")
    }

    /// A short note for the end of the resource's line, if it needs one.
    fn note(&self) -> Option<&'static str> {
        match (self.action.as_str(), self.policy_action.as_deref()) {
            ("Remove", Some("Retain")) => Some("kept: DeletionPolicy Retain"),
            ("Remove", Some("Snapshot")) => Some("deleted after a snapshot"),
            ("Modify", Some("ReplaceAndRetain")) => {
                Some("the old one is kept: UpdateReplacePolicy Retain")
            }
            ("Modify", Some("ReplaceAndSnapshot")) => Some("the old one is snapshotted"),
            _ => None,
        }
    }
}

/// One changed attribute or property of a modified resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PropertyChange {
    /// Where in the resource: `/Properties/MemorySize`, `/Tags`, `/Metadata`.
    pub path: String,
    /// `Add`, `Remove` or `Modify`, when CloudFormation says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change_type: Option<String>,
    /// The value before and after, when CloudFormation gives them (it does
    /// for change sets described with `IncludePropertyValues`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Whether changing it replaces the resource: `Never`, `Conditionally`, `Always`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requires_recreation: Option<String>,
    /// Why it changes: `DirectModification` (the template), `ParameterReference`,
    /// `ResourceReference`, `ResourceAttribute`...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change_source: Option<String>,
    /// The parameter or resource that causes it (`ArtifactKey`, `Role.Arn`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub causing_entity: Option<String>,
    /// `Static`, or `Dynamic` when the change is known only while deploying.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<String>,
}

impl PropertyChange {
    pub(crate) fn from_sdk(detail: &ResourceChangeDetail) -> Self {
        let target = detail.target();
        let attribute = target
            .and_then(|t| t.attribute())
            .map(|a| a.as_str())
            .unwrap_or("Properties");
        // With property values CloudFormation gives the full path
        // (`/Properties/Environment/Variables/TABLES`); without, only the
        // top-level property's name.
        let path = match (target.and_then(|t| t.path()), target.and_then(|t| t.name())) {
            (Some(path), _) if !path.is_empty() => path.to_owned(),
            (_, Some(name)) if !name.is_empty() => format!("/{attribute}/{name}"),
            _ => format!("/{attribute}"),
        };
        let text = |value: Option<&str>| value.map(str::to_owned);
        Self {
            path,
            change_type: target
                .and_then(|t| t.attribute_change_type())
                .map(|c| c.as_str().to_owned()),
            before: text(target.and_then(|t| t.before_value())),
            after: text(target.and_then(|t| t.after_value())),
            requires_recreation: target
                .and_then(|t| t.requires_recreation())
                .map(|r| r.as_str().to_owned()),
            change_source: detail.change_source().map(|s| s.as_str().to_owned()),
            causing_entity: text(detail.causing_entity()).filter(|e| !e.is_empty()),
            evaluation: detail.evaluation().map(|e| e.as_str().to_owned()),
        }
    }
}

/// `/Properties/MemorySize: 128 → 256 (DirectModification)`, with what the
/// API gave: values, the entity a reference points at, a replacement.
impl fmt::Display for PropertyChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path)?;
        if self.before.is_some() || self.after.is_some() {
            let value = |value: &Option<String>| match value {
                Some(value) => one_line(value),
                None => "(none)".to_owned(),
            };
            write!(f, ": {} → {}", value(&self.before), value(&self.after))?;
        }
        let mut why = Vec::new();
        match (&self.change_source, &self.causing_entity) {
            (Some(source), Some(entity)) => why.push(format!("{source} {entity}")),
            (Some(source), None) => why.push(source.clone()),
            (None, Some(entity)) => why.push(entity.clone()),
            (None, None) => {}
        }
        match self.requires_recreation.as_deref() {
            Some("Always") => why.push("replaces the resource".to_owned()),
            Some("Conditionally") => why.push("may replace the resource".to_owned()),
            _ => {}
        }
        if self.evaluation.as_deref() == Some("Dynamic") {
            why.push("known only while deploying".to_owned());
        }
        if !why.is_empty() {
            write!(f, " ({})", why.join("; "))?;
        }
        Ok(())
    }
}

/// The plan as a table: one line per resource, its changed properties
/// under it, then a count.
impl fmt::Display for ChangeSetPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(status) = &self.recreated_from {
            writeln!(
                f,
                "Stack `{}` was in {status}; it has been deleted, to be created again.",
                self.stack_name
            )?;
        }
        if self.is_empty() {
            return writeln!(
                f,
                "No changes: stack `{}` already matches the template.",
                self.stack_name
            );
        }
        match self.kind {
            ChangeSetKind::Create => writeln!(
                f,
                "Stack `{}` does not exist yet; change set {} creates it:",
                self.stack_name, self.change_set_name
            )?,
            ChangeSetKind::Update => writeln!(
                f,
                "Changes to stack `{}` (change set {}):",
                self.stack_name, self.change_set_name
            )?,
        }
        let header = ["Action", "Logical ID", "Type", "Replacement"];
        let rows: Vec<[&str; 4]> = self
            .changes
            .iter()
            .map(|change| {
                [
                    change.action.as_str(),
                    change.logical_id.as_str(),
                    change.resource_type.as_str(),
                    change.replacement.as_deref().unwrap_or("-"),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.len());
            }
        }
        let line = |cells: [&str; 4], note: Option<&str>| {
            let padded: Vec<String> = cells
                .iter()
                .zip(widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            let mut text = format!("  {}", padded.join("  "));
            if let Some(note) = note {
                text.push_str(&format!("  ({note})"));
            }
            text.trim_end().to_owned()
        };
        writeln!(f, "{}", line(header, None))?;
        for (change, row) in self.changes.iter().zip(rows) {
            writeln!(f, "{}", line(row, change.note()))?;
            for property in &change.properties {
                writeln!(f, "      {property}")?;
            }
        }
        let mut summary = Vec::new();
        for (action, verb) in [
            ("Add", "to add"),
            ("Modify", "to modify"),
            ("Remove", "to remove"),
            ("Import", "to import"),
        ] {
            let count = self.count(action);
            if count > 0 {
                summary.push(format!("{count} {verb}"));
            }
        }
        let replaced = self.changes.iter().filter(|c| c.is_replaced()).count();
        if replaced > 0 {
            summary.push(format!("{replaced} replaced"));
        }
        writeln!(f, "{}.", summary.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_cloudformation::types::{
        AttributeChangeType, ChangeAction, ChangeSource, ChangeType, EvaluationType, PolicyAction,
        Replacement, RequiresRecreation, ResourceAttribute, ResourceChange as SdkResourceChange,
        ResourceTargetDefinition,
    };

    use super::*;

    fn change(resource: SdkResourceChange) -> Change {
        Change::builder()
            .r#type(ChangeType::Resource)
            .resource_change(resource)
            .build()
    }

    fn detail(
        name: &str,
        path: Option<&str>,
        values: Option<(&str, &str)>,
        recreation: RequiresRecreation,
        source: ChangeSource,
        entity: Option<&str>,
    ) -> ResourceChangeDetail {
        let mut target = ResourceTargetDefinition::builder()
            .attribute(ResourceAttribute::Properties)
            .name(name)
            .requires_recreation(recreation)
            .set_path(path.map(str::to_owned));
        if let Some((before, after)) = values {
            target = target
                .before_value(before)
                .after_value(after)
                .attribute_change_type(AttributeChangeType::Modify);
        }
        ResourceChangeDetail::builder()
            .target(target.build())
            .evaluation(EvaluationType::Static)
            .change_source(source)
            .set_causing_entity(entity.map(str::to_owned))
            .build()
    }

    /// What AWS returns for an update described with IncludePropertyValues:
    /// a modified function, a replaced table kept by its policy, an added
    /// table, a removed one.
    fn aws_update() -> Vec<Change> {
        vec![
            change(
                SdkResourceChange::builder()
                    .action(ChangeAction::Modify)
                    .logical_resource_id("Function")
                    .physical_resource_id("demo-api")
                    .resource_type("AWS::Lambda::Function")
                    .replacement(Replacement::False)
                    .scope(ResourceAttribute::Properties)
                    .details(detail(
                        "MemorySize",
                        Some("/Properties/MemorySize"),
                        Some(("128", "256")),
                        RequiresRecreation::Never,
                        ChangeSource::DirectModification,
                        None,
                    ))
                    .details(detail(
                        "Code",
                        Some("/Properties/Code/S3Key"),
                        Some(("lambda/aaa.zip", "lambda/bbb.zip")),
                        RequiresRecreation::Never,
                        ChangeSource::ParameterReference,
                        Some("ArtifactKey"),
                    ))
                    .build(),
            ),
            change(
                SdkResourceChange::builder()
                    .action(ChangeAction::Modify)
                    .logical_resource_id("UsersTable")
                    .physical_resource_id("demo-users")
                    .resource_type("AWS::DynamoDB::Table")
                    .replacement(Replacement::True)
                    .policy_action(PolicyAction::ReplaceAndRetain)
                    .details(detail(
                        "TableName",
                        Some("/Properties/TableName"),
                        Some(("demo-users", "demo-people")),
                        RequiresRecreation::Always,
                        ChangeSource::DirectModification,
                        None,
                    ))
                    .build(),
            ),
            change(
                SdkResourceChange::builder()
                    .action(ChangeAction::Add)
                    .logical_resource_id("OrdersTable")
                    .resource_type("AWS::DynamoDB::Table")
                    .build(),
            ),
            change(
                SdkResourceChange::builder()
                    .action(ChangeAction::Remove)
                    .logical_resource_id("MocksTable")
                    .physical_resource_id("demo-mocks")
                    .resource_type("AWS::DynamoDB::Table")
                    .policy_action(PolicyAction::Retain)
                    .build(),
            ),
        ]
    }

    #[test]
    fn an_update_prints_each_resource_and_its_changed_properties() {
        let plan =
            ChangeSetPlan::from_changes("demo", "deployer-1", ChangeSetKind::Update, &aws_update());
        assert_eq!(
            plan.to_string(),
            "\
Changes to stack `demo` (change set deployer-1):
  Action  Logical ID   Type                   Replacement
  Modify  Function     AWS::Lambda::Function  False
      /Properties/MemorySize: 128 → 256 (DirectModification)
      /Properties/Code/S3Key: lambda/aaa.zip → lambda/bbb.zip (ParameterReference ArtifactKey)
  Modify  UsersTable   AWS::DynamoDB::Table   True         (the old one is kept: UpdateReplacePolicy Retain)
      /Properties/TableName: demo-users → demo-people (DirectModification; replaces the resource)
  Add     OrdersTable  AWS::DynamoDB::Table   -
  Remove  MocksTable   AWS::DynamoDB::Table   -            (kept: DeletionPolicy Retain)
1 to add, 2 to modify, 1 to remove, 1 replaced.
"
        );
    }

    /// What the emulator (and AWS without property values) returns: the
    /// property's name, no values.
    #[test]
    fn without_values_a_property_shows_its_path_and_source() {
        let changes = [change(
            SdkResourceChange::builder()
                .action(ChangeAction::Modify)
                .logical_resource_id("Parameter")
                .physical_resource_id("/demo/Parameter")
                .resource_type("AWS::SSM::Parameter")
                .replacement(Replacement::False)
                .details(detail(
                    "Value",
                    None,
                    None,
                    RequiresRecreation::Never,
                    ChangeSource::DirectModification,
                    None,
                ))
                .build(),
        )];
        let plan =
            ChangeSetPlan::from_changes("demo", "deployer-2", ChangeSetKind::Update, &changes);
        assert_eq!(
            plan.to_string(),
            "\
Changes to stack `demo` (change set deployer-2):
  Action  Logical ID  Type                 Replacement
  Modify  Parameter   AWS::SSM::Parameter  False
      /Properties/Value (DirectModification)
1 to modify.
"
        );
    }

    /// A declared index: AWS lists the added array items (the index and its
    /// key's definition) with their values; the emulator names the property.
    #[test]
    fn an_added_index_shows_with_its_definition() {
        let added = |name: &str, path: &str, value: &str| {
            ResourceChangeDetail::builder()
                .target(
                    ResourceTargetDefinition::builder()
                        .attribute(ResourceAttribute::Properties)
                        .name(name)
                        .path(path)
                        .after_value(value)
                        .attribute_change_type(AttributeChangeType::Add)
                        .requires_recreation(RequiresRecreation::Never)
                        .build(),
                )
                .evaluation(EvaluationType::Static)
                .change_source(ChangeSource::DirectModification)
                .build()
        };
        let table = |details: Vec<ResourceChangeDetail>| {
            change(
                SdkResourceChange::builder()
                    .action(ChangeAction::Modify)
                    .logical_resource_id("UsersTable")
                    .physical_resource_id("demo-users")
                    .resource_type("AWS::DynamoDB::Table")
                    .replacement(Replacement::False)
                    .set_details(Some(details))
                    .build(),
            )
        };
        let with_values = table(vec![
            added(
                "AttributeDefinitions",
                "/Properties/AttributeDefinitions/2",
                r#"{"AttributeName":"team","AttributeType":"S"}"#,
            ),
            added(
                "GlobalSecondaryIndexes",
                "/Properties/GlobalSecondaryIndexes/1",
                "{\"IndexName\":\"users-by-team\",\n \"KeySchema\":[{\"AttributeName\":\"team\",\
                 \"KeyType\":\"HASH\"}],\"Projection\":{\"ProjectionType\":\"ALL\"}}",
            ),
        ]);
        let plan = ChangeSetPlan::from_changes(
            "demo",
            "deployer-5",
            ChangeSetKind::Update,
            &[with_values],
        );
        assert_eq!(
            plan.to_string(),
            "\
Changes to stack `demo` (change set deployer-5):
  Action  Logical ID  Type                  Replacement
  Modify  UsersTable  AWS::DynamoDB::Table  False
      /Properties/AttributeDefinitions/2: (none) → {\"AttributeName\":\"team\",\"AttributeType\":\"S\"} (DirectModification)
      /Properties/GlobalSecondaryIndexes/1: (none) → {\"IndexName\":\"users-by-team\", \"KeySchema\":[{\"AttributeName\":\"team\",\"KeyType\":\"HASH\"}],\"Projection\":{\"ProjectionType\":\"ALL\"}} (DirectModification)
1 to modify.
"
        );

        let by_name = table(vec![detail(
            "GlobalSecondaryIndexes",
            None,
            None,
            RequiresRecreation::Never,
            ChangeSource::DirectModification,
            None,
        )]);
        let plan =
            ChangeSetPlan::from_changes("demo", "deployer-6", ChangeSetKind::Update, &[by_name]);
        assert!(
            plan.to_string()
                .contains("\n      /Properties/GlobalSecondaryIndexes (DirectModification)\n"),
            "{plan}"
        );
    }

    #[test]
    fn a_creation_and_an_empty_plan() {
        let changes = [change(
            SdkResourceChange::builder()
                .action(ChangeAction::Add)
                .logical_resource_id("Table")
                .resource_type("AWS::DynamoDB::Table")
                .build(),
        )];
        let mut plan =
            ChangeSetPlan::from_changes("demo", "deployer-3", ChangeSetKind::Create, &changes);
        plan.recreated_from = Some("ROLLBACK_COMPLETE".into());
        assert_eq!(
            plan.to_string(),
            "\
Stack `demo` was in ROLLBACK_COMPLETE; it has been deleted, to be created again.
Stack `demo` does not exist yet; change set deployer-3 creates it:
  Action  Logical ID  Type                  Replacement
  Add     Table       AWS::DynamoDB::Table  -
1 to add.
"
        );

        let empty = ChangeSetPlan::from_changes("demo", "deployer-4", ChangeSetKind::Update, &[]);
        assert!(empty.is_empty());
        assert_eq!(
            empty.to_string(),
            "No changes: stack `demo` already matches the template.\n"
        );
    }

    #[test]
    fn the_plan_serialises_for_scripts() {
        let plan = ChangeSetPlan::from_changes(
            "demo",
            "deployer-1",
            ChangeSetKind::Update,
            &aws_update()[..1],
        );
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "stack_name": "demo",
                "change_set_name": "deployer-1",
                "kind": "update",
                "changes": [{
                    "action": "Modify",
                    "logical_id": "Function",
                    "physical_id": "demo-api",
                    "resource_type": "AWS::Lambda::Function",
                    "replacement": "False",
                    "properties": [
                        {
                            "path": "/Properties/MemorySize",
                            "change_type": "Modify",
                            "before": "128",
                            "after": "256",
                            "requires_recreation": "Never",
                            "change_source": "DirectModification",
                            "evaluation": "Static"
                        },
                        {
                            "path": "/Properties/Code/S3Key",
                            "change_type": "Modify",
                            "before": "lambda/aaa.zip",
                            "after": "lambda/bbb.zip",
                            "requires_recreation": "Never",
                            "change_source": "ParameterReference",
                            "causing_entity": "ArtifactKey",
                            "evaluation": "Static"
                        }
                    ]
                }]
            })
        );
    }
}
