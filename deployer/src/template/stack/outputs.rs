//! The stack's outputs: the API's URL, the function, its log group, the
//! tables, the API key's id and the build project.

use super::*;

pub(super) fn outputs(
    doc: &mut Document,
    settings: &StackSettings,
    tables: &[TableSpec],
) -> Result<(), TemplateError> {
    let mut entries = vec![(
        OUTPUT_API_URL.to_owned(),
        Output {
            description: "The API's base URL: GET <ApiUrl>/ping answers pong.".to_owned(),
            condition: None,
            // `${ApiStage}` is the stage name: the URL exists once it does.
            value: Expr::sub(
                "https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${ApiStage}/api",
            ),
        },
    )];
    for table in tables {
        entries.push((
            table_output_key(&table.resource),
            Output {
                description: format!("The DynamoDB table of resource `{}`.", table.resource),
                condition: None,
                value: Expr::reference(table.logical_id.as_str()),
            },
        ));
    }
    entries.push((
        OUTPUT_FUNCTION_NAME.to_owned(),
        Output {
            description: "The Lambda function serving the API.".to_owned(),
            condition: None,
            value: Expr::reference(FUNCTION),
        },
    ));
    entries.push((
        OUTPUT_FUNCTION_LOG_GROUP.to_owned(),
        Output {
            description: "The CloudWatch Logs group of the function: `deployer logs` reads it."
                .to_owned(),
            condition: None,
            // A log group's `Ref` is its name, as `LoggingConfig.LogGroup` uses it.
            value: Expr::reference(FUNCTION_LOG_GROUP),
        },
    ));
    if settings.api_key {
        entries.push((
            OUTPUT_API_KEY_ID.to_owned(),
            Output {
                description: "The id of the API key (not its value): `aws apigateway get-api-key \
                              --api-key <id> --include-value` reads the value."
                    .to_owned(),
                condition: None,
                value: Expr::reference(API_KEY),
            },
        ));
    }
    entries.push((
        OUTPUT_BUILD_PROJECT.to_owned(),
        Output {
            description: "The CodeBuild project that deploys on every push.".to_owned(),
            condition: Some(CONDITION_PIPELINE.to_owned()),
            value: Expr::reference(PROJECT),
        },
    ));
    for (key, output) in entries {
        doc.outputs.insert(key, output).map_err(duplicate_entry)?;
    }
    Ok(())
}
