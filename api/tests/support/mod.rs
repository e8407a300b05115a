//! What the end-to-end tests share: reaching the AWS emulator.
//!
//! The emulator is found through the SDK's own `AWS_ENDPOINT_URL`, which
//! `tools/with-emulator` (and so `make test`) sets. Without it a test skips
//! with a message, unless `REQUIRE_EMULATOR` or `CI` is set: then it fails,
//! so CI can never pass by skipping. An endpoint off loopback is refused, so a
//! test can never reach real AWS.

#![allow(dead_code, clippy::unwrap_used)] // each test binary uses part of it

use std::path::{Path, PathBuf};

use api::index::IndexConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};

/// The SDK configuration for the emulator, or `None` when the test should skip.
pub async fn emulator_config() -> Option<aws_config::SdkConfig> {
    let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") else {
        let required =
            std::env::var_os("REQUIRE_EMULATOR").is_some() || std::env::var_os("CI").is_some();
        assert!(
            !required,
            "AWS_ENDPOINT_URL is not set but the emulator is required: run the tests \
             through `make test` (tools/with-emulator)"
        );
        eprintln!("skipping: no AWS emulator (AWS_ENDPOINT_URL unset); `make test` starts one");
        return None;
    };
    let host = endpoint
        .trim_start_matches("http://")
        .split([':', '/'])
        .next()
        .unwrap_or_default();
    assert!(
        matches!(host, "127.0.0.1" | "localhost" | "[::1]"),
        "AWS_ENDPOINT_URL={endpoint} is not a loopback address; tests never leave this machine"
    );
    Some(api::backend::dynamodb::sdk_config().await)
}

/// A directory of one test's own under the system's temporary directory,
/// removed with everything in it when dropped, so a test run leaves nothing
/// behind. An embedded store opened in it may outlive it: the store keeps
/// its file open, and on Unix an open file stays usable once unlinked.
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    pub fn new(purpose: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{purpose}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A table name no other test (or earlier run) uses.
pub fn unique_table(purpose: &str) -> String {
    format!("test-{purpose}-{}", uuid::Uuid::new_v4().simple())
}

/// Creates a table shaped as the stack makes them: hash key `id` (S), on demand.
pub async fn create_table(client: &Client, name: &str) {
    create_indexed_table(client, name, &[]).await;
}

/// A table as the stack makes one for a resource with `indexes`: each a
/// global secondary index projecting every attribute.
pub async fn create_indexed_table(client: &Client, name: &str, indexes: &[IndexConfig]) {
    let key = |name: &str, key_type: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
            .unwrap()
    };
    let definition = |name: &str, kind: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::from(kind))
            .build()
            .unwrap()
    };
    let mut definitions = vec![definition("id", "S")];
    let mut global_indexes = Vec::new();
    for index in indexes {
        let mut schema = vec![key(&index.partition_key.name, KeyType::Hash)];
        schema.extend(
            index
                .sort_key
                .iter()
                .map(|sort| key(&sort.name, KeyType::Range)),
        );
        for attribute in index.keys() {
            if !definitions
                .iter()
                .any(|d| d.attribute_name() == attribute.name)
            {
                definitions.push(definition(&attribute.name, attribute.kind.attribute_type()));
            }
        }
        global_indexes.push(
            GlobalSecondaryIndex::builder()
                .index_name(&index.name)
                .set_key_schema(Some(schema))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .unwrap(),
        );
    }
    client
        .create_table()
        .table_name(name)
        .set_attribute_definitions(Some(definitions))
        .key_schema(key("id", KeyType::Hash))
        .set_global_secondary_indexes((!global_indexes.is_empty()).then_some(global_indexes))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
}
