//! `status`: the stack, its outputs and recent events, its last pipeline
//! builds, and how to read its API key (never the key itself).

use serde::Serialize;

use super::context::Context;
use super::{CommandError, Finished};
use crate::cloudformation::StackReport;
use crate::pipeline;
use crate::template;

/// What `status` reports: the stack and, when it has one, its pipeline and
/// its API key.
#[derive(Debug, Serialize)]
struct StatusReport {
    stack: StackReport,
    builds: Option<pipeline::RecentBuilds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key: Option<ApiKeyHint>,
}

/// How to read the stack's API key: its id and the command that prints the
/// value. The value itself is never fetched: a status goes into terminals,
/// CI logs and issues, and reading it needs `apigateway:GET` on the key,
/// which whoever runs the command can then use on purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct ApiKeyHint {
    id: String,
    read_with: String,
}

impl ApiKeyHint {
    fn new(id: &str, region: &str) -> Self {
        Self {
            id: id.to_owned(),
            read_with: format!(
                "aws apigateway get-api-key --api-key {id} --include-value --query value \
                 --output text --region {region}"
            ),
        }
    }
}

impl std::fmt::Display for ApiKeyHint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "API key {} (required as the x-api-key header; value not shown). Read it with:",
            self.id
        )?;
        write!(f, "  {}", self.read_with)
    }
}

impl std::fmt::Display for StatusReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.stack)?;
        if let Some(api_key) = &self.api_key {
            write!(f, "\n\n{api_key}")?;
        }
        if let Some(builds) = &self.builds {
            write!(f, "\n\n{builds}")?;
        }
        Ok(())
    }
}

pub(super) async fn status(context: &Context) -> Result<Finished, CommandError> {
    let stacks = context.stacks();
    let stack =
        stacks
            .describe(context.stack(), 10)
            .await?
            .ok_or_else(|| CommandError::NoStack {
                stack: context.stack().to_owned(),
            })?;
    let outputs = stacks.outputs(context.stack()).await?;
    let builds = match outputs.get(template::OUTPUT_BUILD_PROJECT) {
        Some(project) => {
            let codebuild = context.codebuild();
            Some(pipeline::recent_builds(&codebuild, project, 5).await?)
        }
        None => None,
    };
    let api_key = outputs
        .get(template::OUTPUT_API_KEY_ID)
        .map(|id| ApiKeyHint::new(id, context.region()));
    context.print(&StatusReport {
        stack,
        builds,
        api_key,
    })?;
    Ok(Finished::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_key_hint_says_how_to_read_the_key() {
        let hint = ApiKeyHint::new("abc123", "eu-west-1");
        assert_eq!(
            hint.read_with,
            "aws apigateway get-api-key --api-key abc123 --include-value --query value \
             --output text --region eu-west-1"
        );
        let text = hint.to_string();
        assert!(text.starts_with("API key abc123 (required as the x-api-key header"));
        assert!(text.contains("value not shown"));
    }
}
