//! `infra/app.yaml`: which resources exist and where their records live.
//!
//! The single declaration both crates read: the API builds its backends from
//! it, the deployer its tables, permissions and seeds. Everything is checked
//! when the file is loaded, so a bad declaration stops the process at start-up
//! rather than failing a request later.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use crate::index::{IndexConfig, check_indexes};
use crate::record::{ID_FIELD, MAX_ATTRIBUTE_NAME_LEN};

/// The parsed `app.yaml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// Resource name (the `{resource}` of `/api/{resource}`) → its declaration.
    pub resources: BTreeMap<String, ResourceConfig>,
    /// How the deployer builds the stack; the API reads only `api_key` (see
    /// [`AppConfig::api_key`]).
    #[serde(default)]
    pub stack: Option<serde_yaml::Value>,
    /// Whether API Gateway requires an API key (`x-api-key`) in front of the
    /// API: `stack.api_key` of the file, or [`API_KEY_ENV`] in Lambda. The
    /// API never checks the key itself; its OpenAPI document says it is needed.
    #[serde(skip)]
    pub api_key: bool,
    /// The directory relative paths (seeds) are resolved against: the file's own.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// One resource of `app.yaml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "DeclaredResource")]
pub struct ResourceConfig {
    pub backend: BackendKind,
    /// A JSON array of records loaded into the resource (memory) or its table.
    pub seed: Option<PathBuf>,
    /// The DynamoDB table name, when not the default `<stack>-<resource>`.
    pub table: Option<String>,
    /// What clients may do; all operations when absent, `[list, get]` when
    /// `read_only: true`. Others answer 405.
    pub operations: Vec<Operation>,
    /// Top-level attributes clients may not write (`ttl`, ...): a create or
    /// update body setting one is a 400 naming it. The API's own attributes
    /// ([`crate::record::SERVICE_ATTRIBUTES`]) are protected everywhere anyway.
    pub protected: Vec<String>,
    /// Secondary indexes: global secondary indexes of a `dynamodb` table,
    /// and on any backend what a list may be served from and ordered by.
    pub indexes: Vec<IndexConfig>,
}

/// A resource as written in the file, before `read_only` is resolved.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeclaredResource {
    backend: BackendKind,
    #[serde(default)]
    seed: Option<PathBuf>,
    #[serde(default)]
    table: Option<String>,
    #[serde(default)]
    operations: Option<Vec<Operation>>,
    /// Shorthand for `operations: [list, get]`.
    #[serde(default)]
    read_only: bool,
    #[serde(default)]
    protected: Vec<String>,
    #[serde(default)]
    indexes: Vec<IndexConfig>,
}

impl TryFrom<DeclaredResource> for ResourceConfig {
    type Error = String;

    fn try_from(declared: DeclaredResource) -> Result<Self, String> {
        let operations = match (declared.read_only, declared.operations) {
            (false, operations) => operations.unwrap_or_else(Operation::all),
            (true, None) => vec![Operation::List, Operation::Get],
            (true, Some(operations)) => {
                if let Some(write) = operations.iter().find(|op| !op.is_read()) {
                    return Err(format!(
                        "`read_only: true` contradicts `operations` allowing {write:?}"
                    ));
                }
                operations
            }
        };
        for name in &declared.protected {
            if name.is_empty() || name.chars().count() > MAX_ATTRIBUTE_NAME_LEN {
                return Err(format!(
                    "`protected`: {name:?} is not an attribute name (1 to \
                     {MAX_ATTRIBUTE_NAME_LEN} characters)"
                ));
            }
            if name == ID_FIELD {
                return Err("`protected` cannot hold `id`: a create must write it".to_owned());
            }
        }
        check_indexes(&declared.indexes)?;
        Ok(Self {
            backend: declared.backend,
            seed: declared.seed,
            table: declared.table,
            operations,
            protected: declared.protected,
            indexes: declared.indexes,
        })
    }
}

impl ResourceConfig {
    /// The DynamoDB table of the resource called `name`: its `table:`, else
    /// `<stack>-<name>`. The deployer names the tables it creates with this.
    pub fn table_name(&self, name: &str, stack_name: &str) -> String {
        self.table
            .clone()
            .unwrap_or_else(|| format!("{stack_name}-{name}"))
    }
}

/// Where a resource's records are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// In the process's memory: for tests, demos and reference data.
    Memory,
    /// One DynamoDB table per resource.
    Dynamodb,
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendKind::Memory => "memory",
            BackendKind::Dynamodb => "dynamodb",
        })
    }
}

/// An operation a resource may allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    List,
    Get,
    Create,
    Update,
    Delete,
}

impl Operation {
    /// Whether the operation only reads (list, get).
    pub fn is_read(self) -> bool {
        matches!(self, Operation::List | Operation::Get)
    }

    pub fn all() -> Vec<Operation> {
        vec![
            Operation::List,
            Operation::Get,
            Operation::Create,
            Operation::Update,
            Operation::Delete,
        ]
    }
}

/// The environment variable through which the deployer hands the Lambda its
/// resources: JSON of the same shape as app.yaml's `resources:`, with table
/// names resolved by CloudFormation.
pub const RESOURCES_ENV: &str = "API_RESOURCES";

/// The environment variable through which the deployer tells the Lambda
/// whether API Gateway requires an API key: `true` or `false`, as
/// `stack.api_key` says. Absent means `false` (a stack rendered before it).
pub const API_KEY_ENV: &str = "API_KEY_REQUIRED";

/// Resource names the router serves itself.
const RESERVED_NAMES: &[&str] = &["ping"];

/// Why `app.yaml` could not be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid app declaration")]
    Parse {
        path: PathBuf,
        source: serde_yaml::Error,
    },
    #[error("{RESOURCES_ENV} is not a valid JSON resources mapping")]
    Env(#[source] serde_json::Error),
    #[error("{path}: resource name {name:?} is invalid: {reason}")]
    ResourceName {
        path: PathBuf,
        name: String,
        reason: &'static str,
    },
    #[error("{path}: `stack.api_key` must be true or false")]
    ApiKeySetting { path: PathBuf },
    #[error("{API_KEY_ENV} is {value:?}; expected `true` or `false`")]
    ApiKeyEnv { value: String },
}

impl AppConfig {
    /// Reads and checks the declaration at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base_dir = path.parent().unwrap_or(Path::new(".")).to_owned();
        Self::parse(&text, base_dir).map_err(|error| match error {
            ParseError::Yaml(source) => ConfigError::Parse {
                path: path.to_owned(),
                source,
            },
            ParseError::ResourceName { name, reason } => ConfigError::ResourceName {
                path: path.to_owned(),
                name,
                reason,
            },
            ParseError::ApiKey => ConfigError::ApiKeySetting {
                path: path.to_owned(),
            },
        })
    }

    /// Reads the resources mapping from [`RESOURCES_ENV`]'s value; seed paths
    /// are resolved against `base_dir`. Whether an API key is required comes
    /// from [`API_KEY_ENV`], set beside it by the same template.
    pub fn from_resources_json(json: &str, base_dir: PathBuf) -> Result<Self, ConfigError> {
        let api_key = std::env::var(API_KEY_ENV).ok();
        Self::from_environment(json, api_key.as_deref(), base_dir)
    }

    /// [`AppConfig::from_resources_json`] with [`API_KEY_ENV`]'s value given.
    pub fn from_environment(
        json: &str,
        api_key: Option<&str>,
        base_dir: PathBuf,
    ) -> Result<Self, ConfigError> {
        let api_key = match api_key {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(ConfigError::ApiKeyEnv {
                    value: other.to_owned(),
                });
            }
        };
        let resources: BTreeMap<String, ResourceConfig> =
            serde_json::from_str(json).map_err(ConfigError::Env)?;
        for name in resources.keys() {
            check_resource_name(name).map_err(|reason| ConfigError::ResourceName {
                path: PathBuf::from(format!("${RESOURCES_ENV}")),
                name: name.to_string(),
                reason,
            })?;
        }
        Ok(Self {
            resources,
            stack: None,
            api_key,
            base_dir,
        })
    }

    fn parse(text: &str, base_dir: PathBuf) -> Result<Self, ParseError> {
        let mut config: AppConfig = serde_yaml::from_str(text).map_err(ParseError::Yaml)?;
        config.base_dir = base_dir;
        // The deployer owns the `stack:` section and its defaults; the API
        // only needs to know whether the gateway asks for a key.
        config.api_key = match config.stack.as_ref().and_then(|stack| stack.get("api_key")) {
            None => false,
            Some(value) => value.as_bool().ok_or(ParseError::ApiKey)?,
        };
        for name in config.resources.keys() {
            check_resource_name(name).map_err(|reason| ParseError::ResourceName {
                name: name.clone(),
                reason,
            })?;
        }
        Ok(config)
    }

    /// The seed file of `resource`, resolved against the declaration's directory.
    pub fn seed_path(&self, resource: &ResourceConfig) -> Option<PathBuf> {
        resource.seed.as_ref().map(|seed| self.base_dir.join(seed))
    }
}

enum ParseError {
    Yaml(serde_yaml::Error),
    ResourceName { name: String, reason: &'static str },
    ApiKey,
}

/// Resource names become URL segments, table names and CloudFormation logical
/// ids, so they are kept to what all three accept.
fn check_resource_name(name: &str) -> Result<(), &'static str> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Err("it is empty"),
        Some(first) if !first.is_ascii_lowercase() => {
            return Err("it must start with a lowercase ASCII letter");
        }
        Some(_) => {}
    }
    if name.len() > 64 {
        return Err("it is longer than 64 characters");
    }
    if !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-') {
        return Err("only lowercase ASCII letters, digits, `_` and `-` are allowed");
    }
    if RESERVED_NAMES.contains(&name) {
        return Err("it is reserved by the API (GET /api/ping)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AppConfig, String> {
        AppConfig::parse(text, PathBuf::from("infra")).map_err(|error| match error {
            ParseError::Yaml(e) => e.to_string(),
            ParseError::ResourceName { name, reason } => format!("{name}: {reason}"),
            ParseError::ApiKey => "api_key".to_owned(),
        })
    }

    #[test]
    fn reads_resources_with_defaults() {
        let config = parse(
            "resources:\n  mocks: { backend: memory, seed: seed/mocks.json }\n  \
             audit: { backend: dynamodb, table: audit-log, operations: [list, get] }\n",
        )
        .unwrap();
        let mocks = &config.resources["mocks"];
        assert_eq!(mocks.backend, BackendKind::Memory);
        assert_eq!(mocks.operations, Operation::all());
        assert_eq!(
            config.seed_path(mocks),
            Some(PathBuf::from("infra/seed/mocks.json"))
        );
        let audit = &config.resources["audit"];
        assert_eq!(audit.table.as_deref(), Some("audit-log"));
        assert_eq!(audit.operations, vec![Operation::List, Operation::Get]);
    }

    #[test]
    fn indexes_are_declared_per_resource_and_checked() {
        let config = parse(
            "resources:\n  users:\n    backend: dynamodb\n    indexes:\n      \
             - name: users-by-gender\n        partition_key: { name: gender, type: string }\n      \
             - name: users-by-team-age\n        partition_key: { name: team, type: string }\n        \
             sort_key: { name: age, type: number }\n",
        )
        .unwrap();
        let indexes = &config.resources["users"].indexes;
        assert_eq!(indexes.len(), 2);
        assert_eq!(indexes[0].partition_key.name, "gender");
        assert_eq!(indexes[0].sort_key, None);
        assert_eq!(
            indexes[1]
                .sort_key
                .as_ref()
                .map(|key| (key.name.as_str(), key.kind)),
            Some(("age", crate::index::KeyKind::Number))
        );
        assert!(
            parse("resources:\n  x: { backend: memory }\n")
                .unwrap()
                .resources["x"]
                .indexes
                .is_empty()
        );

        for (text, fragment) in [
            (
                "resources:\n  x: { backend: memory, indexes: [{ name: by, partition_key: { name: g, type: string } }] }\n",
                "3 to 255",
            ),
            (
                "resources:\n  x: { backend: memory, indexes: [{ name: by-g, partition_key: { name: g, type: binary } }] }\n",
                "unknown variant `binary`",
            ),
            (
                "resources:\n  x: { backend: memory, indexes: [{ name: by-g, partition: g }] }\n",
                "unknown field `partition`",
            ),
        ] {
            let message = parse(text).expect_err(text);
            assert!(message.contains(fragment), "{text}: {message}");
        }

        // The environment mapping carries them in the same form.
        let config = AppConfig::from_resources_json(
            r#"{"users":{"backend":"memory","indexes":[{"name":"users-by-gender","partition_key":{"name":"gender","type":"string"}}]}}"#,
            PathBuf::new(),
        )
        .unwrap();
        assert_eq!(config.resources["users"].indexes[0].name, "users-by-gender");
    }

    #[test]
    fn read_only_and_protected_attributes() {
        let config = parse(
            "resources:\n  codes: { backend: memory, read_only: true }\n  \
             audit: { backend: memory, read_only: true, operations: [list] }\n  \
             users: { backend: memory, protected: [ttl, role] }\n",
        )
        .unwrap();
        let codes = &config.resources["codes"];
        assert_eq!(codes.operations, vec![Operation::List, Operation::Get]);
        assert!(codes.protected.is_empty());
        assert_eq!(config.resources["audit"].operations, vec![Operation::List]);
        let users = &config.resources["users"];
        assert_eq!(users.operations, Operation::all());
        assert_eq!(users.protected, vec!["ttl".to_owned(), "role".to_owned()]);

        for (text, fragment) in [
            (
                "resources:\n  x: { backend: memory, read_only: true, operations: [list, create] }\n",
                "`read_only: true` contradicts `operations` allowing Create",
            ),
            (
                "resources:\n  x: { backend: memory, protected: [id] }\n",
                "`protected` cannot hold `id`",
            ),
            (
                "resources:\n  x: { backend: memory, protected: [\"\"] }\n",
                "is not an attribute name",
            ),
            (
                "resources:\n  x: { backend: memory, read_only: yes please }\n",
                "read_only",
            ),
            (
                "resources:\n  x: { backend: memory, protect: [ttl] }\n",
                "unknown field `protect`",
            ),
        ] {
            let message = parse(text).expect_err(text);
            assert!(message.contains(fragment), "{text}: {message}");
        }

        // The environment mapping takes the same fields.
        let config = AppConfig::from_resources_json(
            r#"{"users":{"backend":"memory","protected":["ttl"],"read_only":true}}"#,
            PathBuf::new(),
        )
        .unwrap();
        assert_eq!(config.resources["users"].protected, vec!["ttl".to_owned()]);
        assert_eq!(
            config.resources["users"].operations,
            vec![Operation::List, Operation::Get]
        );
    }

    #[test]
    fn refuses_what_it_cannot_serve() {
        let refused = |text: &str, fragment: &str| {
            let message = parse(text).expect_err(text);
            assert!(message.contains(fragment), "{text}: {message}");
        };
        refused(
            "resources:\n  x: { backend: redis }\n",
            "unknown variant `redis`",
        );
        refused(
            "resources:\n  x: { backend: memory, sed: a }\n",
            "unknown field `sed`",
        );
        refused(
            "resources:\n  x: { backend: memory, operations: [patch] }\n",
            "unknown variant `patch`",
        );
        refused("resource: {}\n", "unknown field `resource`");
        refused(
            "resources:\n  Users: { backend: memory }\n",
            "Users: it must start with a lowercase",
        );
        refused(
            "resources:\n  ping: { backend: memory }\n",
            "ping: it is reserved",
        );
        refused(
            "resources:\n  a/b: { backend: memory }\n",
            "a/b: only lowercase",
        );
    }

    #[test]
    fn reads_the_mapping_the_deployer_puts_in_the_environment() {
        let config = AppConfig::from_resources_json(
            r#"{"mocks":{"backend":"memory","seed":"seed/mocks.json"},"users":{"backend":"dynamodb","table":"shop-users","operations":["list","get"]}}"#,
            PathBuf::from("/var/task/infra"),
        )
        .unwrap();
        assert_eq!(
            config.seed_path(&config.resources["mocks"]),
            Some(PathBuf::from("/var/task/infra/seed/mocks.json"))
        );
        assert_eq!(
            config.resources["users"].table_name("users", "ignored"),
            "shop-users"
        );
        assert_eq!(
            config.resources["users"].operations,
            vec![Operation::List, Operation::Get]
        );

        let error =
            AppConfig::from_resources_json("{\"x\":{\"backend\":\"redis\"}}", PathBuf::new())
                .unwrap_err();
        assert_eq!(
            error.to_string(),
            "API_RESOURCES is not a valid JSON resources mapping"
        );
        let error =
            AppConfig::from_resources_json("{\"Bad\":{\"backend\":\"memory\"}}", PathBuf::new())
                .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("resource name \"Bad\" is invalid"),
            "{error}"
        );
    }

    #[test]
    fn the_api_key_setting_comes_from_the_stack_section_or_the_environment() {
        let api_key = |text: &str| parse(text).map(|config| config.api_key);
        let resources = "resources:\n  x: { backend: memory }\n";
        assert_eq!(api_key(resources), Ok(false));
        assert_eq!(
            api_key(&format!("{resources}stack:\n  name: s\n")),
            Ok(false)
        );
        assert_eq!(
            api_key(&format!("{resources}stack:\n  api_key: true\n")),
            Ok(true)
        );
        assert_eq!(
            api_key(&format!("{resources}stack: {{ api_key: false }}\n")),
            Ok(false)
        );
        assert_eq!(
            api_key(&format!("{resources}stack:\n  api_key: maybe\n")),
            Err("api_key".to_owned())
        );

        let json = r#"{"x":{"backend":"memory"}}"#;
        let from_env = |value| AppConfig::from_environment(json, value, PathBuf::new());
        assert!(!from_env(None).unwrap().api_key);
        assert!(!from_env(Some("false")).unwrap().api_key);
        assert!(from_env(Some("true")).unwrap().api_key);
        assert_eq!(
            from_env(Some("yes")).unwrap_err().to_string(),
            "API_KEY_REQUIRED is \"yes\"; expected `true` or `false`"
        );
    }

    #[test]
    fn the_repository_declaration_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/app.yaml");
        let config = AppConfig::load(&path).unwrap();
        assert!(config.resources.contains_key("mocks"));
    }
}
