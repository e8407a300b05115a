//! The resource map (the product's "mapper"): each resource name to the
//! backend that stores it.
//!
//! Built once at start-up from [`AppConfig`] and a [`DynamoDbTarget`] saying
//! where `dynamodb` resources live in this process (real DynamoDB, or the
//! local embedded store). A resource that cannot be served (no target, an
//! unreadable seed) stops the process with a message naming it, instead of
//! failing its first request.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use thiserror::Error;

use crate::backend::dynamodb::DynamoDbBackend;
#[cfg(feature = "embedded-store")]
use crate::backend::embedded::{EmbeddedStore, EmbeddedStoreError};
use crate::backend::memory::MemoryBackend;
use crate::backend::{Backend, BackendError};
use crate::config::{AppConfig, BackendKind, Operation};
use crate::index::{IndexConfig, IndexKeyProblem, check_index_keys};
use crate::record::{InvalidBody, NewRecord, Record, check_protected};

/// A served resource: its backend and what clients may do with it.
#[derive(Debug, Clone)]
pub struct ServedResource {
    pub backend: Arc<dyn Backend>,
    pub operations: Vec<Operation>,
    /// Attributes clients may not write (app.yaml's `protected:`).
    pub protected: Vec<String>,
    /// Secondary indexes (app.yaml's `indexes:`): what lists are planned on,
    /// and what key values a write must respect.
    pub indexes: Vec<IndexConfig>,
}

/// Why a create or update body may not be written to this resource.
#[derive(Debug, Error)]
pub enum Unwritable {
    #[error(transparent)]
    Protected(#[from] InvalidBody),
    #[error(transparent)]
    IndexKey(#[from] IndexKeyProblem),
}

impl ServedResource {
    /// A resource allowing every operation, protecting only the API's own attributes.
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Self {
            backend,
            operations: Operation::all(),
            protected: Vec::new(),
            indexes: Vec::new(),
        }
    }

    pub fn allows(&self, operation: Operation) -> bool {
        self.operations.contains(&operation)
    }

    /// Refuses a create or update body that sets a protected attribute
    /// (this resource's, or one the API maintains itself), or an index key
    /// to a value DynamoDB would not store under that index.
    pub fn check_writable(&self, attributes: &Record) -> Result<(), Unwritable> {
        check_protected(attributes, &self.protected)?;
        check_index_keys(attributes, &self.indexes)?;
        Ok(())
    }
}

/// Every served resource by name, and whether API Gateway asks callers for
/// an API key in front of them (which only the OpenAPI document states).
#[derive(Debug, Clone, Default)]
pub struct ResourceMap {
    resources: HashMap<String, ServedResource>,
    api_key_required: bool,
}

/// Where this process serves `dynamodb` resources from.
#[derive(Debug, Clone)]
pub enum DynamoDbTarget {
    /// None: a declaration with a `dynamodb` resource is refused.
    Unavailable,
    /// DynamoDB (or an emulator) through one client for the whole process;
    /// tables are named as [`crate::config::ResourceConfig::table_name`] says for `stack_name`.
    Aws {
        client: aws_sdk_dynamodb::Client,
        stack_name: String,
    },
    /// The local embedded store, seeded from the resources' seed files.
    #[cfg(feature = "embedded-store")]
    Embedded(EmbeddedStore),
}

/// Why a resource could not be set up.
#[derive(Debug, Error)]
pub enum ResourceMapError {
    #[error(
        "resource `{resource}` uses backend `{backend}`, which this process was not given \
         a target for"
    )]
    BackendUnavailable {
        resource: String,
        backend: BackendKind,
    },
    #[error("resource `{resource}`: its seed records cannot be loaded")]
    MemorySeed {
        resource: String,
        source: BackendError,
    },
    #[cfg(feature = "embedded-store")]
    #[error("resource `{resource}` cannot be served from the embedded store")]
    EmbeddedStore {
        resource: String,
        source: EmbeddedStoreError,
    },
    #[error("resource `{resource}`: cannot read seed file {path}")]
    SeedRead {
        resource: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("resource `{resource}`: seed file {path}: {reason}")]
    SeedInvalid {
        resource: String,
        path: PathBuf,
        reason: String,
    },
}

impl ResourceMap {
    /// Sets up every resource of `config`, `dynamodb` ones on `dynamodb`.
    pub fn from_config(
        config: &AppConfig,
        dynamodb: &DynamoDbTarget,
    ) -> Result<Self, ResourceMapError> {
        let mut map = Self::default().requiring_api_key(config.api_key);
        for (name, declared) in &config.resources {
            let seed = || match config.seed_path(declared) {
                Some(path) => read_seed(name, &path, &declared.indexes),
                None => Ok(Vec::new()),
            };
            let backend: Arc<dyn Backend> = match (declared.backend, dynamodb) {
                (BackendKind::Memory, _) => {
                    Arc::new(MemoryBackend::with_records(seed()?).map_err(|source| {
                        ResourceMapError::MemorySeed {
                            resource: name.clone(),
                            source,
                        }
                    })?)
                }
                (BackendKind::Dynamodb, DynamoDbTarget::Aws { client, stack_name }) => {
                    // Seeding real tables is the deployer's job, never a start-up side effect.
                    Arc::new(DynamoDbBackend::new(
                        client.clone(),
                        declared.table_name(name, stack_name),
                    ))
                }
                #[cfg(feature = "embedded-store")]
                (BackendKind::Dynamodb, DynamoDbTarget::Embedded(store)) => {
                    Arc::new(store.resource(name, seed()?).map_err(|source| {
                        ResourceMapError::EmbeddedStore {
                            resource: name.clone(),
                            source,
                        }
                    })?)
                }
                (backend @ BackendKind::Dynamodb, DynamoDbTarget::Unavailable) => {
                    return Err(ResourceMapError::BackendUnavailable {
                        resource: name.clone(),
                        backend,
                    });
                }
            };
            map = map.with(
                name,
                ServedResource {
                    backend,
                    operations: declared.operations.clone(),
                    protected: declared.protected.clone(),
                    indexes: declared.indexes.clone(),
                },
            );
        }
        Ok(map)
    }

    /// Adds (or replaces) a resource; for building maps in code and tests.
    pub fn with(mut self, name: &str, resource: ServedResource) -> Self {
        self.resources.insert(name.to_owned(), resource);
        self
    }

    /// Says whether API Gateway requires an API key (`stack.api_key`).
    pub fn requiring_api_key(mut self, required: bool) -> Self {
        self.api_key_required = required;
        self
    }

    /// Whether API Gateway requires an API key (`x-api-key`) on every path.
    pub fn api_key_required(&self) -> bool {
        self.api_key_required
    }

    pub fn get(&self, name: &str) -> Option<&ServedResource> {
        self.resources.get(name)
    }

    /// Resource names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.resources.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}

/// Reads a seed file: a JSON array of records, each valid as a create body
/// on a resource with `indexes`.
pub fn read_seed(
    resource: &str,
    path: &Path,
    indexes: &[IndexConfig],
) -> Result<Vec<NewRecord>, ResourceMapError> {
    let invalid = |reason: String| ResourceMapError::SeedInvalid {
        resource: resource.to_owned(),
        path: path.to_owned(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|source| ResourceMapError::SeedRead {
        resource: resource.to_owned(),
        path: path.to_owned(),
        source,
    })?;
    let items: Vec<serde_json::Value> = serde_json::from_slice(&bytes)
        .map_err(|err| invalid(format!("not a JSON array of records: {err}")))?;
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            // Seeds obey the same rules as a POST body, so every seeded record
            // can be read, updated and deleted over HTTP.
            let body = serde_json::to_vec(item).map_err(|err| invalid(err.to_string()))?;
            let record = NewRecord::from_body(&body)
                .map_err(|err: InvalidBody| invalid(format!("item {index}: {err}")))?;
            check_index_keys(&record.record, indexes)
                .map_err(|err| invalid(format!("item {index}: {err}")))?;
            Ok(record)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str, dir: &Path) -> AppConfig {
        let path = dir.join("app.yaml");
        std::fs::write(&path, yaml).unwrap();
        AppConfig::load(&path).unwrap()
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("api-mapper-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn an_unavailable_backend_fails_at_start_up_naming_the_resource() {
        let dir = temp_dir("unavailable");
        let error = ResourceMap::from_config(
            &config("resources:\n  users: { backend: dynamodb }\n", &dir),
            &DynamoDbTarget::Unavailable,
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "resource `users` uses backend `dynamodb`, which this process was not given a target for"
        );
    }

    #[test]
    fn seed_errors_name_the_file_and_the_item() {
        let dir = temp_dir("seed");
        std::fs::write(dir.join("bad.json"), r#"[{"id":"a"},{"name":"no id"}]"#).unwrap();
        let error = ResourceMap::from_config(
            &config(
                "resources:\n  things: { backend: memory, seed: bad.json }\n",
                &dir,
            ),
            &DynamoDbTarget::Unavailable,
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with("resource `things`: seed file "),
            "{error}"
        );
        assert!(
            error.ends_with("item 1: `id` is missing from the request body"),
            "{error}"
        );

        let error = ResourceMap::from_config(
            &config(
                "resources:\n  things: { backend: memory, seed: missing.json }\n",
                &dir,
            ),
            &DynamoDbTarget::Unavailable,
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("cannot read seed file"), "{error}");
    }
}
