//! What the end-to-end tests share: reaching the AWS emulator.
//!
//! The emulator is found through the SDK's own `AWS_ENDPOINT_URL`, which
//! `tools/with-emulator` (and so `make test`) sets. Without it a test skips
//! with a message, unless `REQUIRE_EMULATOR` or `CI` is set: then it fails,
//! so CI can never pass by skipping. An endpoint off loopback is refused, so a
//! test can never reach real AWS.

#![allow(dead_code, clippy::unwrap_used)] // each test binary uses part of it

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
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

/// A table name no other test (or earlier run) uses.
pub fn unique_table(purpose: &str) -> String {
    format!("test-{purpose}-{}", uuid::Uuid::new_v4().simple())
}

/// Creates a table shaped as the stack makes them: hash key `id` (S), on demand.
pub async fn create_table(client: &Client, name: &str) {
    client
        .create_table()
        .table_name(name)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
}
