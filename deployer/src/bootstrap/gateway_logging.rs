//! API Gateway's CloudWatch role: one setting per account and region, which
//! the stage's access logs need, and which this deployer sets only where
//! nobody has.
//!
//! It is not a stack resource. As one (`AWS::ApiGateway::Account` with its
//! role), a failed first create deleted the role while the region's setting
//! kept pointing at it, silently stopping the logs of every REST API in the
//! region; and each stack would replace a role another stack (or the
//! console) had set. Here, before a deploy from a workstation:
//!
//! - a setting naming a role that exists is left alone, whoever set it;
//! - no setting, or one naming a role that no longer exists, gets this
//!   deployer's role for the region (created once, kept forever), and the
//!   setting is pointed at it.
//!
//! Nothing here ever deletes the role or clears the setting: `destroy`
//! leaves both, since other APIs of the region may log through them.

use std::fmt;
use std::time::Duration;

use aws_sdk_apigateway::types::{Op, PatchOperation};
use serde::Serialize;

use super::{ArtifactBucket, BootstrapError};

/// Where the setting lives in API Gateway's account resource.
const ROLE_PATH: &str = "/cloudwatchRoleArn";

/// What [`ensure_gateway_logging_role`] found or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoggingRoleOutcome {
    /// A role was set and exists: left as it is.
    Kept,
    /// No role was set: ours is now.
    Set,
    /// The role set no longer existed: ours replaced it.
    ReplacedMissing,
}

/// The region's API Gateway logging role after the check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoggingRoleReport {
    pub region: String,
    pub role_arn: String,
    pub outcome: LoggingRoleOutcome,
}

impl fmt::Display for LoggingRoleReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.outcome {
            LoggingRoleOutcome::Kept => "already set, left as is",
            LoggingRoleOutcome::Set => "was not set; set to this deployer's role",
            LoggingRoleOutcome::ReplacedMissing => {
                "named a role that no longer exists; set to this deployer's role"
            }
        };
        write!(
            f,
            "API Gateway CloudWatch role ({}): {what}: {}",
            self.region, self.role_arn
        )
    }
}

/// How long to wait for a new role to become usable by API Gateway: IAM is
/// eventually consistent, and UpdateAccount refuses a role it cannot assume
/// yet ("The role ARN does not have required permissions set to API
/// Gateway").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleWait {
    pub attempts: u32,
    pub delay: Duration,
}

impl Default for RoleWait {
    /// Up to a minute: IAM changes usually reach API Gateway in seconds.
    fn default() -> Self {
        Self {
            attempts: 12,
            delay: Duration::from_secs(5),
        }
    }
}

/// The name of this deployer's role for `region` (IAM names are global).
pub fn logging_role_name(region: &str) -> String {
    format!("apigateway-cloudwatch-logs-{region}")
}

/// Makes sure the region's API Gateway setting names a role that exists,
/// without replacing one that does (see the module's rules).
pub async fn ensure_gateway_logging_role(
    apigateway: &aws_sdk_apigateway::Client,
    iam: &aws_sdk_iam::Client,
    account: &ArtifactBucket,
    wait: RoleWait,
) -> Result<LoggingRoleReport, BootstrapError> {
    let failed = |operation: &'static str| {
        move |error: aws_sdk_apigateway::Error| BootstrapError::GatewayLogging {
            operation,
            source: error.into(),
        }
    };
    let current = apigateway
        .get_account()
        .send()
        .await
        .map_err(|error| failed("GetAccount")(error.into()))?
        .cloudwatch_role_arn()
        .filter(|arn| !arn.is_empty())
        .map(str::to_owned);
    let outcome = match &current {
        Some(arn) if role_exists(iam, role_name_of(arn)).await? => {
            return Ok(LoggingRoleReport {
                region: account.region.clone(),
                role_arn: arn.clone(),
                outcome: LoggingRoleOutcome::Kept,
            });
        }
        Some(_) => LoggingRoleOutcome::ReplacedMissing,
        None => LoggingRoleOutcome::Set,
    };
    let role_arn = ensure_role(iam, account).await?;
    let mut attempt = 1;
    loop {
        let result = apigateway
            .update_account()
            .patch_operations(
                PatchOperation::builder()
                    .op(Op::Replace)
                    .path(ROLE_PATH)
                    .value(&role_arn)
                    .build(),
            )
            .send()
            .await;
        match result {
            Ok(_) => break,
            Err(error)
                if attempt < wait.attempts
                    && error
                        .as_service_error()
                        .is_some_and(|e| e.is_bad_request_exception()) =>
            {
                attempt += 1;
                tokio::time::sleep(wait.delay).await;
            }
            Err(error) => return Err(failed("UpdateAccount")(error.into())),
        }
    }
    Ok(LoggingRoleReport {
        region: account.region.clone(),
        role_arn,
        outcome,
    })
}

/// `arn:aws:iam::123456789012:role/path/name` → `name`.
fn role_name_of(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

async fn role_exists(iam: &aws_sdk_iam::Client, name: &str) -> Result<bool, BootstrapError> {
    match iam.get_role().role_name(name).send().await {
        Ok(_) => Ok(true),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()) =>
        {
            Ok(false)
        }
        Err(error) => Err(iam_error("GetRole", error.into())),
    }
}

fn iam_error(operation: &'static str, error: aws_sdk_iam::Error) -> BootstrapError {
    BootstrapError::GatewayLogging {
        operation,
        source: error.into(),
    }
}

/// This deployer's role for the region, created if missing, its policy
/// (re)applied; returns its ARN.
async fn ensure_role(
    iam: &aws_sdk_iam::Client,
    account: &ArtifactBucket,
) -> Result<String, BootstrapError> {
    let name = logging_role_name(&account.region);
    let created = iam
        .create_role()
        .role_name(&name)
        .description(
            "API Gateway's CloudWatch role for this region (access and execution logs of every \
             REST API); set by `deployer` where none was, and never deleted by it.",
        )
        .assume_role_policy_document(trust_policy())
        .send()
        .await;
    let arn = match created {
        Ok(output) => output.role().map(|role| role.arn().to_owned()),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_entity_already_exists_exception()) =>
        {
            None
        }
        Err(error) => return Err(iam_error("CreateRole", error.into())),
    };
    let arn = match arn {
        Some(arn) => arn,
        None => iam
            .get_role()
            .role_name(&name)
            .send()
            .await
            .map_err(|error| iam_error("GetRole", error.into()))?
            .role()
            .map(|role| role.arn().to_owned())
            .unwrap_or_default(),
    };
    iam.put_role_policy()
        .role_name(&name)
        .policy_name("push-to-cloudwatch-logs")
        .policy_document(logs_policy(account))
        .send()
        .await
        .map_err(|error| iam_error("PutRolePolicy", error.into()))?;
    Ok(arn)
}

/// API Gateway may assume the role. No `aws:SourceAccount` condition: AWS
/// documents this role's trust without one, and a condition API Gateway does
/// not send would silently stop every API's logs.
fn trust_policy() -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "apigateway.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }],
    })
    .to_string()
}

/// What AWS's AmazonAPIGatewayPushToCloudWatchLogs grants, on this region's
/// log groups only: another API whose logging used an older role keeps
/// working with this one.
fn logs_policy(account: &ArtifactBucket) -> String {
    let groups = format!(
        "arn:{}:logs:{}:{}:log-group:*",
        account.partition, account.region, account.account_id
    );
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "WriteRegionLogs",
                "Effect": "Allow",
                "Action": [
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:DescribeLogStreams",
                    "logs:PutLogEvents",
                    "logs:GetLogEvents",
                    "logs:FilterLogEvents",
                ],
                "Resource": [groups],
            },
            {
                "Sid": "FindLogGroups",
                "Effect": "Allow",
                "Action": ["logs:DescribeLogGroups"],
                "Resource": ["*"],
            },
        ],
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use aws_sdk_apigateway::operation::get_account::GetAccountOutput;
    use aws_sdk_apigateway::operation::update_account::{UpdateAccountError, UpdateAccountOutput};
    use aws_sdk_apigateway::types::error::BadRequestException;
    use aws_sdk_iam::operation::create_role::CreateRoleOutput;
    use aws_sdk_iam::operation::get_role::{GetRoleError, GetRoleOutput};
    use aws_sdk_iam::operation::put_role_policy::PutRolePolicyOutput;
    use aws_sdk_iam::types::Role;
    use aws_sdk_iam::types::error::NoSuchEntityException;
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};

    use super::*;

    const OURS: &str = "arn:aws:iam::123456789012:role/apigateway-cloudwatch-logs-eu-west-1";
    const THEIRS: &str = "arn:aws:iam::123456789012:role/service-role/their-logs-role";

    fn account() -> ArtifactBucket {
        ArtifactBucket::new(
            "b-artifacts".to_owned(),
            "eu-west-1",
            "123456789012".to_owned(),
            "aws".to_owned(),
        )
        .unwrap()
    }

    fn role(arn: &str) -> Role {
        Role::builder()
            .path("/")
            .role_name(role_name_of(arn))
            .role_id("AROAEXAMPLE")
            .arn(arn)
            .create_date(aws_sdk_iam::primitives::DateTime::from_secs(0))
            .build()
            .unwrap()
    }

    fn current(arn: Option<&'static str>) -> Rule {
        mock!(aws_sdk_apigateway::Client::get_account).then_output(move || {
            GetAccountOutput::builder()
                .set_cloudwatch_role_arn(arn.map(str::to_owned))
                .build()
        })
    }

    fn no_wait() -> RoleWait {
        RoleWait {
            attempts: 3,
            delay: Duration::from_millis(1),
        }
    }

    /// IAM's side: which roles exist, and what creating ours does.
    struct Iam {
        get: Rule,
        create: Rule,
        policy: Rule,
    }

    fn iam(existing: &'static [&'static str]) -> Iam {
        Iam {
            get: mock!(aws_sdk_iam::Client::get_role)
                .match_requests(|input| input.role_name().is_some())
                .then_output(move || {
                    // Answered only for existing roles; the rule below
                    // (sequential fallback) says NoSuchEntity otherwise.
                    GetRoleOutput::builder().role(role(existing[0])).build()
                }),
            create: mock!(aws_sdk_iam::Client::create_role)
                .match_requests(|input| {
                    input.role_name() == Some("apigateway-cloudwatch-logs-eu-west-1")
                        && input
                            .assume_role_policy_document()
                            .is_some_and(|doc| doc.contains("apigateway.amazonaws.com"))
                })
                .then_output(|| CreateRoleOutput::builder().role(role(OURS)).build()),
            policy: mock!(aws_sdk_iam::Client::put_role_policy)
                .match_requests(|input| {
                    input.policy_document().is_some_and(|doc| {
                        doc.contains("arn:aws:logs:eu-west-1:123456789012:log-group:*")
                    })
                })
                .then_output(|| PutRolePolicyOutput::builder().build()),
        }
    }

    fn missing_role() -> Rule {
        mock!(aws_sdk_iam::Client::get_role).then_error(|| {
            GetRoleError::NoSuchEntityException(NoSuchEntityException::builder().build())
        })
    }

    fn update_to(arn: &'static str) -> Rule {
        mock!(aws_sdk_apigateway::Client::update_account)
            .match_requests(move |input| {
                let operation = &input.patch_operations()[0];
                operation.op() == Some(&Op::Replace)
                    && operation.path() == Some(ROLE_PATH)
                    && operation.value() == Some(arn)
            })
            .then_output(|| UpdateAccountOutput::builder().build())
    }

    /// Another stack (or the console) set a role that exists: untouched.
    #[tokio::test]
    async fn a_role_someone_set_is_kept() {
        let get_account = current(Some(THEIRS));
        let update = update_to(OURS);
        let apigateway = mock_client!(
            aws_sdk_apigateway,
            RuleMode::MatchAny,
            [&get_account, &update]
        );
        let iam_side = iam(&[THEIRS]);
        let iam_client = mock_client!(
            aws_sdk_iam,
            RuleMode::MatchAny,
            [&iam_side.get, &iam_side.create, &iam_side.policy]
        );
        let report = ensure_gateway_logging_role(&apigateway, &iam_client, &account(), no_wait())
            .await
            .unwrap();
        assert_eq!(report.outcome, LoggingRoleOutcome::Kept);
        assert_eq!(report.role_arn, THEIRS);
        assert_eq!(
            update.num_calls(),
            0,
            "the region's setting is not replaced"
        );
        assert_eq!(iam_side.create.num_calls(), 0);
        assert_eq!(
            report.to_string(),
            format!("API Gateway CloudWatch role (eu-west-1): already set, left as is: {THEIRS}")
        );
    }

    /// No role set: ours is created and set.
    #[tokio::test]
    async fn an_unset_region_gets_our_role() {
        let get_account = current(None);
        let update = update_to(OURS);
        let apigateway = mock_client!(
            aws_sdk_apigateway,
            RuleMode::MatchAny,
            [&get_account, &update]
        );
        let iam_side = iam(&[OURS]);
        let iam_client = mock_client!(
            aws_sdk_iam,
            RuleMode::MatchAny,
            [&iam_side.create, &iam_side.policy]
        );
        let report = ensure_gateway_logging_role(&apigateway, &iam_client, &account(), no_wait())
            .await
            .unwrap();
        assert_eq!(report.outcome, LoggingRoleOutcome::Set);
        assert_eq!(
            (
                iam_side.create.num_calls(),
                iam_side.policy.num_calls(),
                update.num_calls()
            ),
            (1, 1, 1)
        );
    }

    /// The defect this module exists for: a setting left pointing at a
    /// deleted role (by a rolled-back first create) is repaired, and a new
    /// role is usable by API Gateway only after IAM propagates it.
    #[tokio::test]
    async fn a_setting_naming_a_deleted_role_is_repaired_waiting_for_iam() {
        let get_account = current(Some(OURS));
        let update = mock!(aws_sdk_apigateway::Client::update_account)
            .sequence()
            .error(|| {
                UpdateAccountError::BadRequestException(
                    BadRequestException::builder()
                        .message(
                            "The role ARN does not have required permissions set to API Gateway",
                        )
                        .build(),
                )
            })
            .output(|| UpdateAccountOutput::builder().build())
            .build();
        let apigateway = mock_client!(
            aws_sdk_apigateway,
            RuleMode::MatchAny,
            [&get_account, &update]
        );
        let gone = missing_role();
        let iam_side = iam(&[OURS]);
        let iam_client = mock_client!(
            aws_sdk_iam,
            RuleMode::MatchAny,
            [&gone, &iam_side.create, &iam_side.policy]
        );
        let report = ensure_gateway_logging_role(&apigateway, &iam_client, &account(), no_wait())
            .await
            .unwrap();
        assert_eq!(report.outcome, LoggingRoleOutcome::ReplacedMissing);
        assert_eq!(report.role_arn, OURS);
        assert_eq!(update.num_calls(), 2, "retried once IAM caught up");
        assert_eq!(iam_side.create.num_calls(), 1);
    }

    #[test]
    fn role_names_come_from_their_arns() {
        assert_eq!(role_name_of(THEIRS), "their-logs-role");
        assert_eq!(role_name_of(OURS), "apigateway-cloudwatch-logs-eu-west-1");
        assert_eq!(
            logging_role_name("eu-west-1"),
            "apigateway-cloudwatch-logs-eu-west-1"
        );
    }
}
