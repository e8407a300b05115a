//! One global secondary index change per table per deploy, checked before
//! any change set exists.
//!
//! DynamoDB creates or deletes one global secondary index per table update
//! ("You can create or delete only one global secondary index per
//! UpdateTable operation": DynamoDB API reference, UpdateTable,
//! `GlobalSecondaryIndexUpdates`), and CloudFormation's table handler
//! follows it: "You can delete or add one global secondary index without
//! interruption. If you do both in the same update (for example, by
//! changing the index's logical ID), the update fails" (CloudFormation
//! template reference, AWS::DynamoDB::Table, `GlobalSecondaryIndexes`). A
//! change set with more would be created, shown and executed, then fail
//! mid-update and roll back; and "if your stack fails to update and is
//! rolled back while adding a new index, you must manually delete the
//! index" (same page). So `deploy` and `diff` compare the stack's deployed
//! template with the proposed one first ([`index_changes`]) and refuse
//! ([`check`]) a deploy that would make more than one such change to a
//! table, saying how to get there one index at a time.
//!
//! An index counts by its name and its definition (key attributes, their
//! key types and attribute types, projection): one declared under a name
//! the table already has, with other keys, is a deletion and a creation.
//! A new table, or one a new name replaces, is created with all its
//! indexes at once; that is never refused.

use std::collections::BTreeMap;
use std::fmt;

use api::AppConfig;
use serde::Serialize;
use serde_json::{Value, json};
use thiserror::Error;

use crate::template::table_logical_id;

const TABLE_TYPE: &str = "AWS::DynamoDB::Table";

/// Why a deploy stops before its change set is created.
#[derive(Debug, Error)]
pub enum IndexChangeError {
    #[error("{0}")]
    TooMany(TooManyIndexChanges),
    #[error("the {which} template of stack `{stack}` is not valid JSON")]
    Unreadable {
        /// `deployed` or `proposed`.
        which: &'static str,
        stack: String,
        #[source]
        source: serde_json::Error,
    },
}

/// The global secondary index changes one deploy would make to one table
/// that exists and keeps its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableIndexChanges {
    /// The `dynamodb` resource of the declaration stored in the table, when
    /// one is (a table the declaration dropped has none).
    pub resource: Option<String>,
    pub logical_id: String,
    pub table_name: String,
    /// Declared, not deployed.
    pub added: Vec<String>,
    /// Deployed, no longer declared.
    pub removed: Vec<String>,
    /// Deployed and declared under one name with another definition:
    /// DynamoDB deletes it and creates it again, two changes.
    pub redefined: Vec<String>,
}

impl TableIndexChanges {
    /// How many index creations and deletions the table's update needs.
    pub fn count(&self) -> usize {
        self.added.len() + self.removed.len() + 2 * self.redefined.len()
    }
}

/// `users (table shop-users): adds users-by-age; removes users-by-team`.
impl fmt::Display for TableIndexChanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.resource {
            Some(resource) => write!(f, "{resource} (table {})", self.table_name)?,
            None => write!(f, "{} (table {})", self.logical_id, self.table_name)?,
        }
        let mut parts = Vec::new();
        if !self.added.is_empty() {
            parts.push(format!("adds {}", self.added.join(", ")));
        }
        if !self.removed.is_empty() {
            parts.push(format!("removes {}", self.removed.join(", ")));
        }
        if !self.redefined.is_empty() {
            parts.push(format!(
                "changes the keys of {} (removed and added again)",
                self.redefined.join(", ")
            ));
        }
        write!(f, ": {}", parts.join("; "))
    }
}

/// A deploy that would change more than one index of some table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TooManyIndexChanges {
    /// The tables over the limit, each with every change it would get.
    pub tables: Vec<TableIndexChanges>,
}

impl fmt::Display for TooManyIndexChanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "refusing to deploy: DynamoDB adds or removes one global secondary index per table \
             in one stack update (CloudFormation fails the update otherwise), and this deploy \
             would make more:"
        )?;
        for table in &self.tables {
            writeln!(f, "  {table}")?;
        }
        write!(
            f,
            "Deploy one index change per table at a time: declare one new index (or remove \
             one) in the app declaration, deploy, then the next. To change an index's keys, \
             remove it and deploy, then declare it with its new keys (or under a new name) and \
             deploy. Nothing was changed."
        )
    }
}

/// What the deploy from `deployed` (the stack's current template, `None`
/// for a stack that does not exist yet) to `proposed` would change in the
/// indexes of each table that exists and keeps its name; the tables without
/// a change are left out. `app` names the resources.
pub fn index_changes(
    app: &AppConfig,
    deployed: Option<&Value>,
    proposed: &Value,
) -> Vec<TableIndexChanges> {
    let Some(deployed) = deployed else {
        return Vec::new();
    };
    let mut changes = Vec::new();
    for (logical_id, table) in tables(proposed) {
        let Some(before) = tables(deployed)
            .into_iter()
            .find_map(|(id, before)| (id == logical_id).then_some(before))
        else {
            continue;
        };
        let table_name = &table["Properties"]["TableName"];
        if before["Properties"]["TableName"] != *table_name {
            // A new name replaces the table: CloudFormation creates the new
            // one with every index it declares.
            continue;
        }
        let (old, new) = (indexes(before), indexes(table));
        let mut change = TableIndexChanges {
            resource: app
                .resources
                .keys()
                .find(|resource| table_logical_id(resource) == logical_id)
                .cloned(),
            logical_id: logical_id.to_owned(),
            table_name: table_name.as_str().unwrap_or_default().to_owned(),
            added: Vec::new(),
            removed: Vec::new(),
            redefined: Vec::new(),
        };
        for (name, definition) in &new {
            match old.get(name) {
                None => change.added.push(name.clone()),
                Some(deployed) if deployed != definition => change.redefined.push(name.clone()),
                Some(_) => {}
            }
        }
        change.removed = old
            .keys()
            .filter(|name| !new.contains_key(*name))
            .cloned()
            .collect();
        if change.count() > 0 {
            changes.push(change);
        }
    }
    changes
}

/// [`index_changes`], refused when any table would get more than one.
pub fn check(
    app: &AppConfig,
    deployed: Option<&Value>,
    proposed: &Value,
) -> Result<Vec<TableIndexChanges>, TooManyIndexChanges> {
    let changes = index_changes(app, deployed, proposed);
    let over: Vec<TableIndexChanges> = changes
        .iter()
        .filter(|table| table.count() > 1)
        .cloned()
        .collect();
    if over.is_empty() {
        Ok(changes)
    } else {
        Err(TooManyIndexChanges { tables: over })
    }
}

/// The template's tables, by logical id.
fn tables(template: &Value) -> Vec<(&str, &Value)> {
    template["Resources"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, resource)| resource["Type"] == TABLE_TYPE)
        .map(|(logical_id, resource)| (logical_id.as_str(), resource))
        .collect()
}

/// The table's global secondary indexes: name → what DynamoDB cannot
/// change in place (each key's attribute, key type and attribute type, and
/// the projection).
fn indexes(table: &Value) -> BTreeMap<String, Value> {
    let properties = &table["Properties"];
    let attribute_type = |name: &Value| -> Value {
        properties["AttributeDefinitions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|definition| definition["AttributeName"] == *name)
            .map(|definition| definition["AttributeType"].clone())
            .unwrap_or(Value::Null)
    };
    properties["GlobalSecondaryIndexes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|index| {
            let name = index["IndexName"].as_str()?.to_owned();
            let keys: Vec<Value> = index["KeySchema"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|key| {
                    json!([
                        key["AttributeName"],
                        key["KeyType"],
                        attribute_type(&key["AttributeName"])
                    ])
                })
                .collect();
            Some((
                name,
                json!({"keys": keys, "projection": index["Projection"]}),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::StackSettings;

    /// The declaration of resource `users` with `indexes` (YAML flow
    /// sequence items) and `extra` lines under it, and its rendered template.
    fn declared(indexes: &[&str], extra: &str) -> (AppConfig, Value) {
        let yaml = format!(
            "resources:\n  users:\n    backend: dynamodb\n{extra}    indexes: [{}]\n",
            indexes.join(", ")
        );
        let app: AppConfig = serde_yaml::from_str(&yaml).unwrap();
        let settings = StackSettings::from_section(app.stack.as_ref()).unwrap();
        let template = crate::template::build(&app, &settings).unwrap();
        let value = serde_json::from_str(&template.to_json()).unwrap();
        (app, value)
    }

    fn by(name: &str, partition: &str) -> String {
        format!("{{ name: {name}, partition_key: {{ name: {partition}, type: string }} }}")
    }

    /// The changes from the first declaration, deployed, to the second.
    fn changes(
        before: &[&str],
        after: &[&str],
    ) -> Result<Vec<TableIndexChanges>, TooManyIndexChanges> {
        let (_, deployed) = declared(before, "");
        let (app, proposed) = declared(after, "");
        check(&app, Some(&deployed), &proposed)
    }

    #[test]
    fn no_index_change_is_no_change() {
        let gender = by("users-by-gender", "gender");
        assert_eq!(changes(&[], &[]), Ok(Vec::new()));
        assert_eq!(changes(&[&gender], &[&gender]), Ok(Vec::new()));
    }

    #[test]
    fn one_added_index_deploys() {
        let gender = by("users-by-gender", "gender");
        let team = by("users-by-team", "team");
        let changed = changes(&[&gender], &[&gender, &team]).unwrap();
        assert_eq!(
            changed,
            [TableIndexChanges {
                resource: Some("users".to_owned()),
                logical_id: "UsersTable".to_owned(),
                table_name: "serverless-api-users".to_owned(),
                added: vec!["users-by-team".to_owned()],
                removed: Vec::new(),
                redefined: Vec::new(),
            }]
        );
        // Removing one alone is fine too.
        let removed = changes(&[&gender, &team], &[&team]).unwrap();
        assert_eq!(removed[0].removed, ["users-by-gender"]);
        assert_eq!(removed[0].count(), 1);
    }

    #[test]
    fn two_added_indexes_are_refused_naming_both() {
        let refused = changes(
            &[],
            &[
                &by("users-by-gender", "gender"),
                &by("users-by-team", "team"),
            ],
        )
        .unwrap_err();
        assert_eq!(refused.tables.len(), 1);
        assert_eq!(
            refused.tables[0].added,
            ["users-by-gender", "users-by-team"]
        );
        let message = IndexChangeError::TooMany(refused).to_string();
        assert!(
            message.contains(
                "  users (table serverless-api-users): adds users-by-gender, users-by-team\n"
            ),
            "{message}"
        );
        assert!(
            message.contains("declare one new index (or remove one) in the app declaration, deploy, then the next"),
            "{message}"
        );
        assert!(message.ends_with("Nothing was changed."), "{message}");
    }

    #[test]
    fn one_removed_and_one_added_are_refused() {
        let refused = changes(
            &[&by("users-by-gender", "gender")],
            &[&by("users-by-team", "team")],
        )
        .unwrap_err();
        let table = &refused.tables[0];
        assert_eq!(
            (table.added.as_slice(), table.removed.as_slice()),
            (
                ["users-by-team".to_owned()].as_slice(),
                ["users-by-gender".to_owned()].as_slice()
            )
        );
        assert!(
            refused
                .to_string()
                .contains(": adds users-by-team; removes users-by-gender\n"),
            "{refused}"
        );
    }

    /// Same name, other keys: DynamoDB cannot change an index in place.
    #[test]
    fn a_changed_definition_is_a_removal_and_an_addition() {
        let gender = by("users-by-gender", "gender");
        for redefined in [
            // Another partition key.
            by("users-by-gender", "sex"),
            // A sort key added.
            "{ name: users-by-gender, partition_key: { name: gender, type: string }, \
             sort_key: { name: age, type: number } }"
                .to_owned(),
            // The same key as a number.
            "{ name: users-by-gender, partition_key: { name: gender, type: number } }".to_owned(),
        ] {
            let refused = changes(&[&gender], &[&redefined]).unwrap_err();
            let table = &refused.tables[0];
            assert_eq!(table.redefined, ["users-by-gender"], "{redefined}");
            assert_eq!(table.count(), 2);
            assert!(
                refused
                    .to_string()
                    .contains("changes the keys of users-by-gender (removed and added again)"),
                "{refused}"
            );
        }
    }

    #[test]
    fn a_new_table_gets_all_its_indexes_at_once() {
        let three = [
            by("users-by-gender", "gender"),
            by("users-by-team", "team"),
            by("users-by-city", "city"),
        ];
        let three: Vec<&str> = three.iter().map(String::as_str).collect();
        // A first deploy: no stack yet.
        let (app, proposed) = declared(&three, "");
        assert_eq!(check(&app, None, &proposed), Ok(Vec::new()));
        // A stack without this table yet.
        let (_, without_users) = declared(&[], "");
        let mut deployed = without_users.clone();
        deployed["Resources"]
            .as_object_mut()
            .unwrap()
            .remove("UsersTable");
        assert_eq!(check(&app, Some(&deployed), &proposed), Ok(Vec::new()));
    }

    /// Only a table that keeps its name keeps its indexes: a new `table:`
    /// replaces it with one created with all of its own.
    #[test]
    fn a_renamed_table_is_created_with_its_indexes() {
        let (_, deployed) = declared(&[], "");
        let both = [by("users-by-gender", "gender"), by("users-by-team", "team")];
        let (app, renamed) = declared(&[&both[0], &both[1]], "    table: people\n");
        assert_eq!(check(&app, Some(&deployed), &renamed), Ok(Vec::new()));
        let (app, same_name) = declared(&[&both[0], &both[1]], "    table: serverless-api-users\n");
        assert!(check(&app, Some(&deployed), &same_name).is_err());
    }

    /// The limit is per table: two tables may each get one index.
    #[test]
    fn each_table_has_its_own_limit() {
        let yaml = |indexes: &str| {
            format!(
                "resources:\n  users: {{ backend: dynamodb, indexes: [{indexes}] }}\n  \
                 teams: {{ backend: dynamodb, indexes: [{indexes}] }}\n"
            )
        };
        let render = |yaml: String| {
            let app: AppConfig = serde_yaml::from_str(&yaml).unwrap();
            let settings = StackSettings::from_section(None).unwrap();
            let value: Value =
                serde_json::from_str(&crate::template::build(&app, &settings).unwrap().to_json())
                    .unwrap();
            (app, value)
        };
        let (_, deployed) = render(yaml(""));
        let (app, proposed) = render(yaml(&by("by-region", "region")));
        let changed = check(&app, Some(&deployed), &proposed).unwrap();
        assert_eq!(
            changed
                .iter()
                .map(|table| table.resource.as_deref().unwrap())
                .collect::<Vec<_>>(),
            ["teams", "users"]
        );
    }
}
