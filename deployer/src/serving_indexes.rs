//! Which declared global secondary indexes can serve a Query now, and the
//! wait for those that cannot yet.
//!
//! CloudFormation adds an index to an existing table by starting its
//! creation and goes on without waiting for DynamoDB to fill it from the
//! table's items (CloudFormation template reference, AWS::DynamoDB::Table,
//! `GlobalSecondaryIndexes`: the index cannot be used until its status is
//! ACTIVE). While it fills, DynamoDB refuses every Query on it ("Cannot read
//! from backfilling global secondary index"), and the API would answer such
//! lists 503. So `deploy` reads each table first ([`serving`]): an index is
//! given to the function only when DescribeTable shows it with
//! `IndexStatus` ACTIVE (DynamoDB API reference,
//! GlobalSecondaryIndexDescription: "ACTIVE - The index is ready for use";
//! CREATING, with `Backfilling` true while items are read into it, is not)
//! and with the declared keys. A table that does not exist yet is created
//! with all its indexes, which are ACTIVE once CloudFormation reports the
//! table created: they all serve. After the deploy, [`wait_until_serving`]
//! polls until the withheld ones are ACTIVE, and `deploy` gives them to the
//! function in a second change set.

use std::fmt;
use std::time::{Duration, Instant};

use api::AppConfig;
use api::config::BackendKind;
use api::index::IndexConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, GlobalSecondaryIndexDescription, IndexStatus, KeyType,
};
use thiserror::Error;

use crate::cloudformation::Polling;
use crate::settings::StackSettings;
use crate::template::ServingIndexes;

/// Progress lines during a wait come at most this often.
const PROGRESS_EVERY: Duration = Duration::from_secs(30);

/// Why the serving indexes are unknown, or did not all come.
#[derive(Debug, Error)]
pub enum ServingIndexError {
    #[error("cannot read table `{table}` (DescribeTable) to see which of its indexes serve")]
    Describe {
        table: String,
        #[source]
        source: Box<aws_sdk_dynamodb::Error>,
    },
    #[error(
        "stack `{stack}` is deployed, but after {waited_seconds} s {pending} {verb} still not \
         ACTIVE: until then the API serves those lists by scanning the table; run `deployer \
         deploy` again later to let the function use {pronoun}",
        pending = list(pending),
        verb = if pending.len() == 1 { "is" } else { "are" },
        pronoun = if pending.len() == 1 { "it" } else { "them" },
    )]
    TimedOut {
        stack: String,
        waited_seconds: u64,
        pending: Vec<PendingIndex>,
    },
}

/// `index a of table t, index b of table t`.
pub fn list(pending: &[PendingIndex]) -> String {
    pending
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A declared index that cannot serve yet, and what DynamoDB says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingIndex {
    pub resource: String,
    pub index: String,
    pub table: String,
    /// `backfilling`, `creating`, `not in the table`, ...
    pub state: String,
}

/// `index users-by-age of table shop-users`.
impl fmt::Display for PendingIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "index {} of table {}", self.index, self.table)
    }
}

/// What [`serving`] found: the set the template takes, and why each
/// withheld index is.
#[derive(Debug, Clone, Default)]
pub struct Serving {
    pub indexes: ServingIndexes,
    pub pending: Vec<PendingIndex>,
}

/// Reads every existing table of a `dynamodb` resource with declared
/// indexes, and withholds each declared index that is not ACTIVE there with
/// the declared keys.
pub async fn serving(
    dynamodb: &aws_sdk_dynamodb::Client,
    app: &AppConfig,
    settings: &StackSettings,
) -> Result<Serving, ServingIndexError> {
    let mut found = Serving::default();
    for (resource, declared) in &app.resources {
        if declared.backend != BackendKind::Dynamodb || declared.indexes.is_empty() {
            continue;
        }
        // The template names each table with a literal, this same name.
        let table = declared.table_name(resource, &settings.name);
        let output = match dynamodb.describe_table().table_name(&table).send().await {
            Ok(output) => output,
            Err(error) => {
                let error = aws_sdk_dynamodb::Error::from(error);
                if matches!(error, aws_sdk_dynamodb::Error::ResourceNotFoundException(_)) {
                    // Created by this deploy with all its indexes.
                    continue;
                }
                return Err(ServingIndexError::Describe {
                    table,
                    source: Box::new(error),
                });
            }
        };
        let description = output.table();
        let existing = description
            .map(|t| t.global_secondary_indexes())
            .unwrap_or_default();
        let attributes = description
            .map(|t| t.attribute_definitions())
            .unwrap_or_default();
        for index in &declared.indexes {
            let state = match existing
                .iter()
                .find(|e| e.index_name() == Some(index.name.as_str()))
            {
                Some(described) => index_state(index, described, attributes),
                None => Some("not in the table yet".to_owned()),
            };
            if let Some(state) = state {
                found.indexes.withhold(resource, &index.name);
                found.pending.push(PendingIndex {
                    resource: resource.clone(),
                    index: index.name.clone(),
                    table: table.clone(),
                    state,
                });
            }
        }
    }
    Ok(found)
}

/// `None` when `described` can serve the declared `index`; otherwise what
/// keeps it from serving.
fn index_state(
    index: &IndexConfig,
    described: &GlobalSecondaryIndexDescription,
    attributes: &[AttributeDefinition],
) -> Option<String> {
    // One name, other keys: the old index is being replaced (deleted, then
    // created again); the one there does not answer the declared Queries.
    if !same_keys(index, described, attributes) {
        return Some("being replaced (other keys)".to_owned());
    }
    if described.backfilling() == Some(true) {
        return Some("backfilling".to_owned());
    }
    match described.index_status() {
        // DynamoDB reports every index's status; a table an emulator's
        // CloudFormation wrote directly has none, and there the index
        // exists and serves with its table.
        Some(IndexStatus::Active) | None => None,
        Some(status) => Some(status.as_str().to_lowercase()),
    }
}

/// Whether the described index has the declared key attributes, roles and
/// types (the projection is always ALL).
fn same_keys(
    index: &IndexConfig,
    described: &GlobalSecondaryIndexDescription,
    attributes: &[AttributeDefinition],
) -> bool {
    let declared = std::iter::once((KeyType::Hash, &index.partition_key))
        .chain(index.sort_key.iter().map(|key| (KeyType::Range, key)));
    let schema = described.key_schema();
    let declared: Vec<_> = declared.collect();
    schema.len() == declared.len()
        && declared.iter().all(|(role, key)| {
            schema
                .iter()
                .any(|e| e.key_type() == role && e.attribute_name() == key.name)
                && attributes.iter().any(|a| {
                    a.attribute_name() == key.name
                        && a.attribute_type().as_str() == key.kind.attribute_type()
                })
        })
}

/// Polls the tables every `polling.interval` until every declared index
/// serves, for at most `polling.timeout`; `progress` gets a line per
/// pending index on the first poll and at most every 30 s after.
pub async fn wait_until_serving(
    dynamodb: &aws_sdk_dynamodb::Client,
    app: &AppConfig,
    settings: &StackSettings,
    polling: Polling,
    progress: &mut dyn FnMut(&str),
) -> Result<(), ServingIndexError> {
    let started = Instant::now();
    let mut last_progress: Option<Instant> = None;
    loop {
        let found = serving(dynamodb, app, settings).await?;
        if found.pending.is_empty() {
            return Ok(());
        }
        if started.elapsed() >= polling.timeout {
            return Err(ServingIndexError::TimedOut {
                stack: settings.name.clone(),
                waited_seconds: started.elapsed().as_secs(),
                pending: found.pending,
            });
        }
        if last_progress.is_none_or(|at| at.elapsed() >= PROGRESS_EVERY) {
            for pending in &found.pending {
                progress(&format!("{pending}: {}…", pending.state));
            }
            last_progress = Some(Instant::now());
        }
        tokio::time::sleep(polling.interval).await;
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::operation::describe_table::{DescribeTableError, DescribeTableOutput};
    use aws_sdk_dynamodb::types::error::ResourceNotFoundException;
    use aws_sdk_dynamodb::types::{KeySchemaElement, ScalarAttributeType, TableDescription};
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};

    use super::*;

    /// `users` with two indexes, `orders` with one, `notes` with none.
    fn declaration() -> (AppConfig, StackSettings) {
        let yaml = r#"
resources:
  users:
    backend: dynamodb
    indexes:
      - name: users-by-age
        partition_key: {name: age, type: number}
      - name: users-by-team
        partition_key: {name: team, type: string}
        sort_key: {name: age, type: number}
  orders:
    backend: dynamodb
    indexes:
      - name: orders-by-user
        partition_key: {name: user, type: string}
  notes:
    backend: dynamodb
stack:
  name: shop
"#;
        let app: AppConfig = serde_yaml::from_str(yaml).unwrap();
        let settings = StackSettings::from_section(app.stack.as_ref()).unwrap();
        (app, settings)
    }

    fn described(
        name: &str,
        keys: &[(&str, KeyType)],
        status: IndexStatus,
        backfilling: Option<bool>,
    ) -> GlobalSecondaryIndexDescription {
        let mut builder = GlobalSecondaryIndexDescription::builder()
            .index_name(name)
            .index_status(status)
            .set_backfilling(backfilling);
        for (attribute, role) in keys {
            builder = builder.key_schema(
                KeySchemaElement::builder()
                    .attribute_name(*attribute)
                    .key_type(role.clone())
                    .build()
                    .unwrap(),
            );
        }
        builder.build()
    }

    fn table(name: &str, indexes: Vec<GlobalSecondaryIndexDescription>) -> DescribeTableOutput {
        let mut table = TableDescription::builder()
            .table_name(name)
            .set_global_secondary_indexes(Some(indexes));
        for (attribute, kind) in [
            ("id", ScalarAttributeType::S),
            ("age", ScalarAttributeType::N),
            ("team", ScalarAttributeType::S),
            ("user", ScalarAttributeType::S),
        ] {
            table = table.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(attribute)
                    .attribute_type(kind)
                    .build()
                    .unwrap(),
            );
        }
        DescribeTableOutput::builder().table(table.build()).build()
    }

    fn by_age(status: IndexStatus, backfilling: Option<bool>) -> GlobalSecondaryIndexDescription {
        described(
            "users-by-age",
            &[("age", KeyType::Hash)],
            status,
            backfilling,
        )
    }

    fn by_team() -> GlobalSecondaryIndexDescription {
        described(
            "users-by-team",
            &[("team", KeyType::Hash), ("age", KeyType::Range)],
            IndexStatus::Active,
            None,
        )
    }

    /// DescribeTable of `name` answers `output`.
    fn describe(name: &'static str, output: DescribeTableOutput) -> Rule {
        mock!(aws_sdk_dynamodb::Client::describe_table)
            .match_requests(move |request| request.table_name() == Some(name))
            .then_output(move || output.clone())
    }

    fn no_table(name: &'static str) -> Rule {
        mock!(aws_sdk_dynamodb::Client::describe_table)
            .match_requests(move |request| request.table_name() == Some(name))
            .then_error(|| {
                DescribeTableError::ResourceNotFoundException(
                    ResourceNotFoundException::builder().build(),
                )
            })
    }

    fn withheld(serving: &Serving) -> Vec<(&str, &str)> {
        serving.indexes.withheld().collect()
    }

    #[tokio::test]
    async fn a_table_not_created_yet_gets_all_its_indexes() {
        let (app, settings) = declaration();
        let users = no_table("shop-users");
        let orders = no_table("shop-orders");
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&users, &orders]);
        let found = serving(&client, &app, &settings).await.unwrap();
        assert!(found.indexes.is_all());
        assert!(found.pending.is_empty());
        // `notes` declares no index: its table is never read.
        assert_eq!(users.num_calls() + orders.num_calls(), 2);
    }

    #[tokio::test]
    async fn only_active_indexes_with_the_declared_keys_serve() {
        let (app, settings) = declaration();
        // users-by-age backfills; users-by-team is ACTIVE; orders-by-user
        // is declared but not in the table (this deploy adds it).
        let users = describe(
            "shop-users",
            table(
                "shop-users",
                vec![by_age(IndexStatus::Creating, Some(true)), by_team()],
            ),
        );
        let orders = describe("shop-orders", table("shop-orders", vec![]));
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&users, &orders]);
        let found = serving(&client, &app, &settings).await.unwrap();
        assert_eq!(
            withheld(&found),
            vec![("orders", "orders-by-user"), ("users", "users-by-age")]
        );
        assert!(found.indexes.serves("users", "users-by-team"));
        let lines: Vec<String> = found
            .pending
            .iter()
            .map(|p| format!("{p}: {}", p.state))
            .collect();
        assert_eq!(
            lines,
            vec![
                "index orders-by-user of table shop-orders: not in the table yet",
                "index users-by-age of table shop-users: backfilling",
            ]
        );
    }

    #[tokio::test]
    async fn creating_without_backfill_and_other_keys_do_not_serve() {
        let (app, settings) = declaration();
        // users-by-team ACTIVE but keyed on other attributes: the old
        // definition, which this deploy replaces.
        let old_team = described(
            "users-by-team",
            &[("team", KeyType::Hash)],
            IndexStatus::Active,
            None,
        );
        let users = describe(
            "shop-users",
            table(
                "shop-users",
                vec![by_age(IndexStatus::Creating, Some(false)), old_team],
            ),
        );
        let orders = no_table("shop-orders");
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&users, &orders]);
        let found = serving(&client, &app, &settings).await.unwrap();
        assert_eq!(
            withheld(&found),
            vec![("users", "users-by-age"), ("users", "users-by-team")]
        );
        assert_eq!(found.pending[0].state, "creating");
        assert_eq!(found.pending[1].state, "being replaced (other keys)");
    }

    /// DynamoDB always reports a status; an emulator's CloudFormation
    /// writes tables whose indexes have none, and those serve.
    #[tokio::test]
    async fn an_index_without_a_status_serves_unless_it_backfills() {
        let (app, settings) = declaration();
        let no_status = |name: &str, keys: &[(&str, KeyType)]| {
            let mut described = described(name, keys, IndexStatus::Active, None);
            described.index_status = None;
            described
        };
        let users = describe(
            "shop-users",
            table(
                "shop-users",
                vec![
                    no_status("users-by-age", &[("age", KeyType::Hash)]),
                    no_status(
                        "users-by-team",
                        &[("team", KeyType::Hash), ("age", KeyType::Range)],
                    ),
                ],
            ),
        );
        let orders = no_table("shop-orders");
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&users, &orders]);
        let found = serving(&client, &app, &settings).await.unwrap();
        assert!(found.indexes.is_all(), "{:?}", found.pending);
    }

    fn quick(timeout: Duration) -> Polling {
        Polling {
            interval: Duration::from_millis(1),
            timeout,
        }
    }

    #[tokio::test]
    async fn the_wait_ends_when_the_index_is_active() {
        let (app, settings) = declaration();
        let backfilling = table(
            "shop-users",
            vec![by_age(IndexStatus::Creating, Some(true)), by_team()],
        );
        let active = table(
            "shop-users",
            vec![by_age(IndexStatus::Active, Some(false)), by_team()],
        );
        let users = mock!(aws_sdk_dynamodb::Client::describe_table)
            .match_requests(|request| request.table_name() == Some("shop-users"))
            .sequence()
            .output({
                let backfilling = backfilling.clone();
                move || backfilling.clone()
            })
            .output(move || backfilling.clone())
            .output(move || active.clone())
            .build();
        let orders = no_table("shop-orders");
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&users, &orders]);
        let mut lines = Vec::new();
        wait_until_serving(
            &client,
            &app,
            &settings,
            quick(Duration::from_secs(60)),
            &mut |line| lines.push(line.to_owned()),
        )
        .await
        .unwrap();
        assert_eq!(users.num_calls(), 3);
        // Two polls found it backfilling; progress is said once per 30 s.
        assert_eq!(
            lines,
            vec!["index users-by-age of table shop-users: backfilling…"]
        );
    }

    #[tokio::test]
    async fn a_wait_that_times_out_says_the_stack_is_deployed() {
        let (app, settings) = declaration();
        let backfilling = table(
            "shop-users",
            vec![by_age(IndexStatus::Creating, Some(true)), by_team()],
        );
        let users = describe("shop-users", backfilling);
        let orders = no_table("shop-orders");
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&users, &orders]);
        let error = wait_until_serving(
            &client,
            &app,
            &settings,
            quick(Duration::from_millis(20)),
            &mut |_| {},
        )
        .await
        .unwrap_err();
        assert!(matches!(error, ServingIndexError::TimedOut { .. }));
        let message = error.to_string();
        assert!(
            message.starts_with("stack `shop` is deployed, but after 0 s index users-by-age of table shop-users is still not ACTIVE"),
            "{message}"
        );
        assert!(
            message.contains("serves those lists by scanning"),
            "{message}"
        );
        assert!(
            message.ends_with("run `deployer deploy` again later to let the function use it"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_failing_describe_is_an_error() {
        let (app, settings) = declaration();
        let users = mock!(aws_sdk_dynamodb::Client::describe_table).then_error(|| {
            DescribeTableError::InternalServerError(
                aws_sdk_dynamodb::types::error::InternalServerError::builder().build(),
            )
        });
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&users]);
        let error = serving(&client, &app, &settings).await.unwrap_err();
        assert!(
            error.to_string().starts_with("cannot read table `shop-"),
            "{error}"
        );
    }
}
