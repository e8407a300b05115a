//! The template's parameters, the rule that needs the GitHub ones with the
//! pipeline, and the pipeline's on/off condition.

use super::*;

pub(super) fn parameters(
    doc: &mut Document,
    settings: &StackSettings,
) -> Result<(), TemplateError> {
    let mut artifact_bucket = Parameter::string(
        "The S3 bucket holding the Lambda zip (`deployer bootstrap` creates it).",
    )
    .allowed_pattern(
        "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
        "an S3 bucket name: 3 to 63 lowercase letters, digits, dots and hyphens",
    );
    // The settings were checked when the declaration was loaded
    // (`declaration.rs`); the template only states them.
    if let Some(bucket) = &settings.artifact_bucket {
        artifact_bucket = artifact_bucket.default_value(bucket);
    }
    // The pipeline's GitHub values are parameters, not baked in, so the
    // template has one shape whatever the declaration says: the deployer
    // always passes the same parameters, cfn-lint and checkov always see the
    // pipeline, and a stack can switch it off. Their defaults come from
    // `stack.pipeline` in
    // infra/app.yaml, and CloudFormation uses a parameter's default whenever a
    // deploy does not pass it, so the declaration stays the source of truth.
    let pipeline = settings.pipeline.as_ref();
    let default = |value: Option<&String>| value.cloned().unwrap_or_default();
    let entries = [
        (PARAM_ARTIFACT_BUCKET, artifact_bucket),
        (
            PARAM_ARTIFACT_KEY,
            Parameter::string(
                "The S3 key of the Lambda zip, named by its SHA-256: a new build is a new key, \
                 an unchanged build no change.",
            )
            .allowed_pattern("^\\S+$", "a non-empty S3 key without spaces"),
        ),
        (
            PARAM_ENABLE_PIPELINE,
            Parameter::string(
                "Whether to create the CodeBuild project that redeploys on every push.",
            )
            .allowed_values(&["true", "false"])
            .default_value(if pipeline.is_some() { "true" } else { "false" }),
        ),
        (
            PARAM_GITHUB_REPOSITORY,
            Parameter::string(
                "The GitHub repository CodeBuild builds (stack.pipeline.repository).",
            )
            .default_value(default(pipeline.map(|p| &p.repository)))
            .allowed_pattern(
                "^(https://github\\.com/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)?$",
                "https://github.com/OWNER/REPO",
            ),
        ),
        (
            PARAM_GITHUB_BRANCH,
            Parameter::string("The branch whose pushes deploy (stack.pipeline.branch).")
                .default_value(default(pipeline.map(|p| &p.branch)))
                .allowed_pattern("^[A-Za-z0-9._/-]*$", "a branch name"),
        ),
        (
            PARAM_GITHUB_TOKEN_SECRET_ARN,
            Parameter::string(
                "The ARN of the Secrets Manager secret holding the GitHub token, never the \
                 token itself, or empty without a pipeline: `deployer deploy` looks up \
                 stack.pipeline.github_token_secret and always passes it.",
            )
            .allowed_pattern(
                "^(arn:[a-z-]+:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+)?$",
                "the ARN of a Secrets Manager secret",
            ),
        ),
    ];
    for (name, parameter) in entries {
        doc.parameters
            .insert(name, parameter)
            .map_err(duplicate_entry)?;
    }

    // Switching the pipeline on without its GitHub values is refused before
    // anything changes, rather than failing halfway through the deploy.
    let is_set =
        |parameter: &str| Expr::negate(Expr::equals(Expr::reference(parameter), Expr::literal("")));
    doc.rules
        .insert(
            RULE_PIPELINE,
            Rule {
                rule_condition: Some(pipeline_switch()),
                assertions: [
                    (PARAM_GITHUB_REPOSITORY, "stack.pipeline.repository"),
                    (PARAM_GITHUB_BRANCH, "stack.pipeline.branch"),
                    (
                        PARAM_GITHUB_TOKEN_SECRET_ARN,
                        "stack.pipeline.github_token_secret",
                    ),
                ]
                .into_iter()
                .map(|(parameter, setting)| Assertion {
                    assert: is_set(parameter),
                    assert_description: format!(
                        "EnablePipeline=true needs {parameter}: set {setting} in infra/app.yaml"
                    ),
                })
                .collect(),
            },
        )
        .map_err(duplicate_entry)?;
    doc.conditions
        .insert(CONDITION_PIPELINE, pipeline_switch())
        .map_err(duplicate_entry)
}

pub(super) fn pipeline_switch() -> Expr {
    Expr::equals(
        Expr::reference(PARAM_ENABLE_PIPELINE),
        Expr::literal("true"),
    )
}
