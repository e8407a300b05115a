//! IAM policy documents, typed.
//!
//! Statements are built from lists of exact actions and resource ARNs, so a
//! reviewer (and `tests/template.rs`, which walks every statement) sees
//! precisely what each role may do. There is deliberately no helper that
//! produces `*`: the few actions AWS only authorises on `*` are spelled out
//! where they are used, with the reason.

use std::collections::BTreeMap;

use serde::Serialize;

use super::intrinsic::Expr;

/// The policy language version every document uses.
const VERSION: &str = "2012-10-17";

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyDocument {
    pub version: &'static str,
    pub statement: Vec<Statement>,
}

impl PolicyDocument {
    pub fn new(statement: Vec<Statement>) -> Self {
        Self {
            version: VERSION,
            statement,
        }
    }

    /// Who may assume a role: one AWS service, optionally only on behalf of
    /// this account (the confused-deputy guard AWS recommends).
    pub fn trust(service: &str, only_this_account: bool) -> Self {
        let mut statement = Statement::allow(&["sts:AssumeRole"], Vec::new());
        statement.principal = Some(Principal {
            service: vec![service.to_owned()],
        });
        if only_this_account {
            statement = statement.when(
                "StringEquals",
                "aws:SourceAccount",
                Expr::Pseudo(super::intrinsic::Pseudo::AccountId),
            );
        }
        Self::new(vec![statement])
    }
}

/// One `Allow` statement. We never write `Deny`: nothing is granted that a
/// deny would have to take back.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Statement {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    pub effect: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<Principal>,
    pub action: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resource: Vec<Expr>,
    /// Operator → key → value, e.g. `StringEquals: {iam:PassedToService: ...}`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub condition: BTreeMap<&'static str, BTreeMap<&'static str, Expr>>,
}

impl Statement {
    pub fn allow(actions: &[&str], resources: Vec<Expr>) -> Self {
        Self {
            sid: None,
            effect: "Allow",
            principal: None,
            action: actions.iter().map(|a| (*a).to_owned()).collect(),
            resource: resources,
            condition: BTreeMap::new(),
        }
    }

    /// Names the statement (letters and digits only, as IAM requires).
    pub fn sid(mut self, sid: impl Into<String>) -> Self {
        self.sid = Some(sid.into());
        self
    }

    pub fn when(mut self, operator: &'static str, key: &'static str, value: Expr) -> Self {
        self.condition
            .entry(operator)
            .or_default()
            .insert(key, value);
        self
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Principal {
    pub service: Vec<String>,
}

/// An inline policy of a role.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Policy {
    pub policy_name: String,
    pub policy_document: PolicyDocument,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_trust_policy_names_the_service_and_the_account() {
        let value =
            serde_json::to_value(PolicyDocument::trust("codebuild.amazonaws.com", true)).unwrap();
        assert_eq!(
            value,
            json!({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": {"Service": ["codebuild.amazonaws.com"]},
                    "Action": ["sts:AssumeRole"],
                    "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
                }]
            })
        );
    }

    #[test]
    fn a_statement_lists_exact_actions_and_resources() {
        let statement = Statement::allow(
            &["dynamodb:GetItem"],
            vec![Expr::get_att("UsersTable", "Arn")],
        )
        .sid("ReadUsers");
        assert_eq!(
            serde_json::to_value(statement).unwrap(),
            json!({
                "Sid": "ReadUsers",
                "Effect": "Allow",
                "Action": ["dynamodb:GetItem"],
                "Resource": [{"Fn::GetAtt": ["UsersTable", "Arn"]}]
            })
        );
    }
}
