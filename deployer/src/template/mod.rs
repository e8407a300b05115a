//! The CloudFormation template of an app declaration, as typed Rust.
//!
//! `deployer render` writes it to `infra/template.yaml` (committed, kept fresh
//! by `tests/template.rs`); `deploy` and `diff` send the same text to
//! CloudFormation. Building it reads nothing but its two arguments: no AWS
//! call, no clock, no environment, so the same declaration always renders
//! byte-identical YAML. What `deploy` learns from AWS first (which indexes
//! DynamoDB can serve yet) comes in as an argument, [`ServingIndexes`].
//!
//! - [`intrinsic`]: `Ref`, `Fn::GetAtt`, `Fn::Sub`, `Fn::If`, ... as [`Expr`];
//! - [`model`]: template sections, parameters, rules, outputs, and resources
//!   with their attributes (`Condition`, `DependsOn`, deletion policies,
//!   checkov suppressions);
//! - [`resources`]: the typed properties of each resource type we use;
//! - [`iam`]: policy documents;
//! - `stack`: our stack, derived from the declaration and the settings.
//!
//! The names below are the contract with the rest of the deployer (and with
//! whoever reads the stack's outputs): parameters it passes, outputs it reads.

pub mod iam;
pub mod intrinsic;
pub mod model;
pub mod resources;
mod stack;

use std::collections::{BTreeMap, BTreeSet};

use api::AppConfig;
use thiserror::Error;

pub use intrinsic::Expr;
pub use model::Document;

use crate::settings::StackSettings;

/// Parameter: the S3 bucket holding the Lambda zip.
pub const PARAM_ARTIFACT_BUCKET: &str = "ArtifactBucket";
/// Parameter: the S3 key of the Lambda zip (its content hash).
pub const PARAM_ARTIFACT_KEY: &str = "ArtifactKey";
/// Parameter: `"true"` | `"false"`, whether the CodeBuild pipeline exists.
/// Its default is `"true"` exactly when app.yaml has `stack.pipeline`.
pub const PARAM_ENABLE_PIPELINE: &str = "EnablePipeline";
/// Parameter: the GitHub repository URL (default: `stack.pipeline.repository`).
pub const PARAM_GITHUB_REPOSITORY: &str = "GitHubRepository";
/// Parameter: the branch whose pushes deploy (default: `stack.pipeline.branch`).
pub const PARAM_GITHUB_BRANCH: &str = "GitHubBranch";
/// Parameter: the ARN of the secret holding the GitHub token
/// (`stack.pipeline.github_token_secret`, which the deployer looks up: an
/// ARN ends in a suffix Secrets Manager picks, so no default can name it).
pub const PARAM_GITHUB_TOKEN_SECRET_ARN: &str = "GitHubTokenSecretArn";

/// The CodeBuild environment variable holding the GitHub token (resolved by
/// CodeBuild from the secret, masked in its logs): the pipeline's deploy
/// reads the branch tip with it (`crate::pipeline_build`).
pub const GITHUB_TOKEN_VARIABLE: &str = "GITHUB_TOKEN";

/// The logical ids of the pipeline's own resources: its role (its rights),
/// its CodeBuild project and its log group. A deploy from the pipeline never
/// changes them (`crate::pipeline_build`).
pub const PIPELINE_OWN_RESOURCES: [&str; 3] = [
    stack::PIPELINE_ROLE,
    stack::PROJECT,
    stack::PIPELINE_LOG_GROUP,
];

/// Condition: the pipeline's resources exist (`EnablePipeline` is `"true"`).
pub const CONDITION_PIPELINE: &str = "PipelineEnabled";

/// Output: the API's base URL, `https://{api}.execute-api.{region}.{suffix}/prod/api`.
pub const OUTPUT_API_URL: &str = "ApiUrl";
/// Output: the Lambda function's name.
pub const OUTPUT_FUNCTION_NAME: &str = "FunctionName";
/// Output: the function's CloudWatch Logs group, which `deployer logs` reads.
pub const OUTPUT_FUNCTION_LOG_GROUP: &str = "FunctionLogGroupName";
/// Output: the CodeBuild project's name (only when the pipeline exists).
pub const OUTPUT_BUILD_PROJECT: &str = "BuildProjectName";
/// Output: the id of the API key (only with `stack.api_key: true`). The id,
/// never the value: outputs are readable by anyone who may describe the stack.
pub const OUTPUT_API_KEY_ID: &str = "ApiKeyId";

/// The API Gateway stage, the first segment of every URL path.
pub const STAGE_NAME: &str = "prod";

/// The capability a deploy must acknowledge: the roles have fixed names.
pub const REQUIRED_CAPABILITY: &str = "CAPABILITY_NAMED_IAM";

/// Where the rendered template is committed, relative to the repository root.
pub fn template_path() -> &'static str {
    "infra/template.yaml"
}

/// The output holding the table name of the `dynamodb` resource `resource`:
/// `users` → `UsersTableName`.
pub fn table_output_key(resource: &str) -> String {
    format!("{}Name", table_logical_id(resource))
}

/// The logical id of a resource's table: `users` → `UsersTable`,
/// `order_items` → `OrderItemsTable`.
pub fn table_logical_id(resource: &str) -> String {
    let mut id: String = resource
        .split(['_', '-'])
        .flat_map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase())
                .into_iter()
                .chain(chars)
        })
        .collect();
    id.push_str("Table");
    id
}

/// Why no template could be built.
#[derive(Debug, Error)]
pub enum TemplateError {
    #[error(
        "resources `{first}` and `{second}` would both be stored in the table with logical id \
         {logical_id}; rename one of them"
    )]
    DuplicateLogicalId {
        logical_id: String,
        first: String,
        second: String,
    },
    #[error(
        "resources `{first}` and `{second}` would both be stored in DynamoDB table {table}; \
         give one of them another `table:`"
    )]
    DuplicateTableName {
        table: String,
        first: String,
        second: String,
    },
    #[error("the {what} {name:?} is longer than {limit} characters; choose a shorter stack name")]
    NameTooLong {
        what: &'static str,
        name: String,
        limit: usize,
    },
    /// Two template entries with one logical id: a bug in the builder,
    /// reported rather than letting one silently replace the other.
    #[error("the template would have two entries named {0}")]
    Conflict(String),
    #[error("cannot render the template as JSON")]
    Json(#[from] serde_json::Error),
    #[error("cannot render the template as YAML")]
    Yaml(#[from] serde_yaml::Error),
}

/// A built template: the typed document and its rendered text.
///
/// Rendering happens once, in [`build`], so a failure is an error there and
/// [`Template::to_yaml`] / [`Template::to_json`] cannot fail.
#[derive(Debug, Clone)]
pub struct Template {
    document: Document,
    yaml: String,
    json: String,
}

/// What the YAML file says before the template itself.
const YAML_HEADER: &str = "\
# Rendered by `deployer render` from infra/app.yaml: change that file (or
# deployer/src/template/) and render again; never edit this one by hand.
# `cargo test -p deployer --test template` fails while this file is stale.
";

/// Which declared indexes the function may plan lists on (its
/// `API_RESOURCES`). Every declared index unless [`ServingIndexes::withhold`]
/// took one out: `deploy` withholds an index DynamoDB is still building, so
/// the function never plans a Query that DynamoDB would refuse. The table
/// (`GlobalSecondaryIndexes`) and the function's Query grant keep every
/// declared index whatever this says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServingIndexes {
    /// Resource → names of its declared indexes the function must not use.
    withheld: BTreeMap<String, BTreeSet<String>>,
}

impl ServingIndexes {
    /// Every declared index serves: what `render` and a first deploy use.
    pub fn all() -> Self {
        Self::default()
    }

    /// Keeps `index` of `resource` out of the function's `API_RESOURCES`.
    pub fn withhold(&mut self, resource: &str, index: &str) {
        self.withheld
            .entry(resource.to_owned())
            .or_default()
            .insert(index.to_owned());
    }

    /// Whether the function may plan lists of `resource` on `index`.
    pub fn serves(&self, resource: &str, index: &str) -> bool {
        self.withheld
            .get(resource)
            .is_none_or(|names| !names.contains(index))
    }

    /// Whether no index is withheld.
    pub fn is_all(&self) -> bool {
        self.withheld.values().all(BTreeSet::is_empty)
    }

    /// The withheld indexes, as `(resource, index)`, in name order.
    pub fn withheld(&self) -> impl Iterator<Item = (&str, &str)> {
        self.withheld.iter().flat_map(|(resource, names)| {
            names
                .iter()
                .map(move |name| (resource.as_str(), name.as_str()))
        })
    }
}

/// Builds the template of `app` deployed with `settings`, every declared
/// index serving. No AWS call.
pub fn build(app: &AppConfig, settings: &StackSettings) -> Result<Template, TemplateError> {
    build_serving(app, settings, &ServingIndexes::all())
}

/// Builds the template of `app` deployed with `settings`, where the
/// function learns only the `serving` indexes. No AWS call: the caller
/// found out which indexes serve.
pub fn build_serving(
    app: &AppConfig,
    settings: &StackSettings,
    serving: &ServingIndexes,
) -> Result<Template, TemplateError> {
    let document = stack::document(app, settings, serving)?;
    let yaml = format!("{YAML_HEADER}{}", serde_yaml::to_string(&document)?);
    let mut json = serde_json::to_string_pretty(&document)?;
    json.push('\n');
    Ok(Template {
        document,
        yaml,
        json,
    })
}

impl Template {
    /// The template as committed in `infra/template.yaml`.
    pub fn to_yaml(&self) -> String {
        self.yaml.clone()
    }

    /// The same template as JSON (what a `TemplateBody` may also be).
    pub fn to_json(&self) -> String {
        self.json.clone()
    }

    /// The typed document, for checks that read it.
    pub fn document(&self) -> &Document {
        &self.document
    }

    /// Whether the template declares the parameter `name`.
    pub fn has_parameter(&self, name: &str) -> bool {
        self.document.parameters.get(name).is_some()
    }

    /// The logical ids and table names of the tables a stack delete keeps.
    pub fn retained_tables(&self) -> Vec<(String, String)> {
        self.document
            .resources
            .iter()
            .filter_map(|(logical_id, resource)| match &resource.properties {
                resources::Properties::Table(table)
                    if resource.deletion_policy.is_some_and(|p| p.retains()) =>
                {
                    let name = table.table_name.as_literal()?;
                    Some((logical_id.to_owned(), name.to_owned()))
                }
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logical_ids_are_pascal_case() {
        for (resource, expected) in [
            ("users", "UsersTable"),
            ("order_items", "OrderItemsTable"),
            ("order-items", "OrderItemsTable"),
            ("v2", "V2Table"),
        ] {
            assert_eq!(table_logical_id(resource), expected);
        }
        assert_eq!(table_output_key("users"), "UsersTableName");
    }
}
