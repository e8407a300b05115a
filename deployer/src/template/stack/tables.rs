//! One retained DynamoDB table per `dynamodb` resource, with a global
//! secondary index per declared index, and the DynamoDB actions each
//! operation's code path calls (what the function's role gets).

use super::*;

const TABLE_AWS_OWNED_KEY: Accepted = Accepted {
    id: "CKV_AWS_119",
    reason: "The table is encrypted at rest with DynamoDB's default AWS owned key, at no \
             charge. A KMS key (stack.kms: true, the AWS managed aws/dynamodb key) is billed \
             per request; a customer managed key adds a key policy too, without a requirement \
             for either.",
};

const TABLE_AWS_MANAGED_KEY: Accepted = Accepted {
    id: "CKV_AWS_119",
    reason: "The table is encrypted with the AWS managed KMS key aws/dynamodb (stack.kms: \
             true); a customer managed key would add a key policy to maintain without a \
             requirement for it.",
};

pub(super) fn table_resource(table: &TableSpec, settings: &StackSettings) -> Resource {
    let (encryption, accepted) = if settings.kms {
        (
            SseSpecification::aws_managed_kms_key(),
            TABLE_AWS_MANAGED_KEY,
        )
    } else {
        (SseSpecification::aws_owned_key(), TABLE_AWS_OWNED_KEY)
    };
    let mut properties = Table::keyed_by_id(Expr::literal(table.table_name.clone()), encryption);
    add_indexes(&mut properties, &table.indexes);
    Resource::new(properties)
        // The records outlive the stack: a delete or a replacement keeps the
        // table. RetainExceptOnCreate (not Retain) on delete, so a first deploy
        // that fails and rolls back removes the empty table it just made, and
        // `deployer deploy --recreate` does not then fail on "already exists".
        .policies(DeletionPolicy::RetainExceptOnCreate, DeletionPolicy::Retain)
        .accepting(&[accepted])
}

/// Declares `indexes` on the table: each key attribute defined once with
/// its type (`check_indexes` gave each name one type), and one index each,
/// every attribute projected.
fn add_indexes(table: &mut Table, indexes: &[IndexConfig]) {
    // By name after `id`, not in the order the indexes are declared: moving
    // an index in app.yaml then changes nothing in the table's definitions.
    let mut key_types: BTreeMap<&str, &'static str> = BTreeMap::new();
    for key in indexes.iter().flat_map(IndexConfig::keys) {
        key_types
            .entry(key.name.as_str())
            .or_insert(key.kind.attribute_type());
    }
    table
        .attribute_definitions
        .extend(
            key_types
                .into_iter()
                .map(|(name, attribute_type)| AttributeDefinition {
                    attribute_name: name.to_owned(),
                    attribute_type,
                }),
        );
    table.global_secondary_indexes = indexes
        .iter()
        .map(|index| {
            let mut key_schema = vec![KeySchemaElement::hash(&index.partition_key.name)];
            if let Some(sort_key) = &index.sort_key {
                key_schema.push(KeySchemaElement::range(&sort_key.name));
            }
            GlobalSecondaryIndex {
                index_name: index.name.clone(),
                key_schema,
                projection: Projection::all(),
            }
        })
        .collect();
}

/// What a list served from an index calls (`INDEX_LIST_ACTIONS`), on
/// exactly the table's declared indexes, for a resource that allows `list`;
/// `None` when it has no index or no list.
///
/// IAM authorises a Query on an index against the index's own ARN, not the
/// table's. Each is named: `table/<table>/index/*` would also cover an index
/// someone added to the table by hand.
pub(super) fn index_list_statement(table: &TableSpec) -> Option<Statement> {
    if table.indexes.is_empty() || !table.operations.contains(&Operation::List) {
        return None;
    }
    let index_arns = table
        .indexes
        .iter()
        .map(|index| {
            regional_arn(
                "dynamodb",
                &format!(
                    "table/{}/index/{}",
                    sub_literal(&table.table_name),
                    sub_literal(&index.name)
                ),
            )
        })
        .collect();
    Some(
        Statement::allow(api::backend::dynamodb::INDEX_LIST_ACTIONS, index_arns)
            .sid(format!("{}Indexes", table.logical_id)),
    )
}

/// The item actions the API calls for `operations`, and nothing else: the
/// union of what `api` declares per operation (`item_actions`, whose test
/// runs every variant of each operation against a faked table), in a
/// stable order.
pub(super) fn item_actions(operations: &[Operation]) -> Vec<&'static str> {
    let mut actions: Vec<&'static str> = Vec::new();
    for operation in Operation::all() {
        if !operations.contains(&operation) {
            continue;
        }
        for action in api::backend::dynamodb::item_actions(operation) {
            if !actions.contains(action) {
                actions.push(action);
            }
        }
    }
    actions
}
