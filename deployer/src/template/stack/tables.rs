//! One retained DynamoDB table per `dynamodb` resource, and the DynamoDB
//! actions each operation's code path calls (what the function's role gets).

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
    Resource::new(Table::keyed_by_id(
        Expr::literal(table.table_name.clone()),
        encryption,
    ))
    // The records outlive the stack: a delete or a replacement keeps the
    // table. RetainExceptOnCreate (not Retain) on delete, so a first deploy
    // that fails and rolls back removes the empty table it just made, and
    // `deployer deploy --recreate` does not then fail on "already exists".
    .policies(DeletionPolicy::RetainExceptOnCreate, DeletionPolicy::Retain)
    .accepting(&[accepted])
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
