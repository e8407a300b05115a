//! The shape of a CloudFormation template: sections, parameters, rules,
//! resources with their attributes, outputs.
//!
//! Each section keeps its entries in the order they were added, so the
//! rendered file reads top-down (data, function, API, pipeline) and a change
//! to the declaration moves as few lines as possible in a diff. Adding the
//! same logical id twice is an error, never a silent overwrite.

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use super::intrinsic::Expr;
use super::resources::Properties;

/// The whole template, as CloudFormation reads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Document {
    #[serde(rename = "AWSTemplateFormatVersion")]
    pub format_version: &'static str,
    pub description: String,
    #[serde(skip_serializing_if = "Section::is_empty")]
    pub parameters: Section<Parameter>,
    #[serde(skip_serializing_if = "Section::is_empty")]
    pub rules: Section<Rule>,
    #[serde(skip_serializing_if = "Section::is_empty")]
    pub conditions: Section<Expr>,
    pub resources: Section<Resource>,
    #[serde(skip_serializing_if = "Section::is_empty")]
    pub outputs: Section<Output>,
}

impl Document {
    pub fn new(description: impl Into<String>) -> Self {
        Self {
            format_version: "2010-09-09",
            description: description.into(),
            parameters: Section::default(),
            rules: Section::default(),
            conditions: Section::default(),
            resources: Section::default(),
            outputs: Section::default(),
        }
    }
}

/// A template section: logical id → entry, in insertion order.
#[derive(Debug, Clone, PartialEq)]
pub struct Section<T>(Vec<(String, T)>);

impl<T> Default for Section<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

/// The logical id that was already taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate(pub String);

impl<T> Section<T> {
    /// Adds an entry; refuses a logical id the section already has.
    pub fn insert(&mut self, logical_id: impl Into<String>, entry: T) -> Result<(), Duplicate> {
        let logical_id = logical_id.into();
        if self.get(&logical_id).is_some() {
            return Err(Duplicate(logical_id));
        }
        self.0.push((logical_id, entry));
        Ok(())
    }

    pub fn get(&self, logical_id: &str) -> Option<&T> {
        self.0
            .iter()
            .find(|(id, _)| id == logical_id)
            .map(|(_, entry)| entry)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &T)> {
        self.0.iter().map(|(id, entry)| (id.as_str(), entry))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(id, _)| id.as_str())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<T: Serialize> Serialize for Section<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (logical_id, entry) in &self.0 {
            map.serialize_entry(logical_id, entry)?;
        }
        map.end()
    }
}

/// A template parameter. Only strings: every value we take is one.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Parameter {
    #[serde(rename = "Type")]
    pub kind: &'static str,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_values: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_pattern: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constraint_description: Option<String>,
}

impl Parameter {
    pub fn string(description: impl Into<String>) -> Self {
        Self {
            kind: "String",
            description: description.into(),
            default: None,
            allowed_values: Vec::new(),
            allowed_pattern: None,
            constraint_description: None,
        }
    }

    pub fn default_value(mut self, value: impl Into<String>) -> Self {
        self.default = Some(value.into());
        self
    }

    pub fn allowed_values(mut self, values: &[&str]) -> Self {
        self.allowed_values = values.iter().map(|v| (*v).to_owned()).collect();
        self
    }

    pub fn allowed_pattern(mut self, pattern: &str, description: &str) -> Self {
        self.allowed_pattern = Some(pattern.to_owned());
        self.constraint_description = Some(description.to_owned());
        self
    }
}

/// A rule: parameter values CloudFormation checks before it changes anything.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Rule {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_condition: Option<Expr>,
    pub assertions: Vec<Assertion>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Assertion {
    pub assert: Expr,
    pub assert_description: String,
}

/// A stack output.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Output {
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    pub value: Expr,
}

/// What CloudFormation does with a resource's data when the resource leaves
/// the stack (`DeletionPolicy`) or is replaced (`UpdateReplacePolicy`, which
/// takes the same values but `RetainExceptOnCreate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DeletionPolicy {
    Delete,
    Retain,
    /// Retain, except when the operation that created the resource rolls
    /// back: a failed first deploy then leaves nothing behind that would make
    /// the next create fail with "already exists". `DeletionPolicy` only.
    RetainExceptOnCreate,
}

impl DeletionPolicy {
    /// Whether a stack delete leaves the resource (and its data) in place.
    pub fn retains(self) -> bool {
        matches!(
            self,
            DeletionPolicy::Retain | DeletionPolicy::RetainExceptOnCreate
        )
    }
}

/// A resource: its typed properties and the attributes around them.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub properties: Properties,
    pub condition: Option<String>,
    pub depends_on: Vec<String>,
    pub deletion_policy: Option<DeletionPolicy>,
    pub update_replace_policy: Option<DeletionPolicy>,
    pub metadata: Option<Metadata>,
}

impl Resource {
    pub fn new(properties: impl Into<Properties>) -> Self {
        Self {
            properties: properties.into(),
            condition: None,
            depends_on: Vec::new(),
            deletion_policy: None,
            update_replace_policy: None,
            metadata: None,
        }
    }

    /// Created only when `condition` holds.
    pub fn when(mut self, condition: Option<&str>) -> Self {
        self.condition = condition.map(str::to_owned);
        self
    }

    /// Created after `logical_ids`, when no `Ref`/`GetAtt` already says so.
    pub fn depends_on(mut self, logical_ids: &[&str]) -> Self {
        self.depends_on = logical_ids.iter().map(|id| (*id).to_owned()).collect();
        self
    }

    pub fn policies(mut self, deletion: DeletionPolicy, update_replace: DeletionPolicy) -> Self {
        self.deletion_policy = Some(deletion);
        self.update_replace_policy = Some(update_replace);
        self
    }

    /// Accepts checkov findings, each with the reason it does not apply.
    pub fn accepting(mut self, findings: &[Accepted]) -> Self {
        if !findings.is_empty() {
            let skip = findings
                .iter()
                .map(|finding| CheckovSkip {
                    id: finding.id,
                    comment: finding.reason,
                })
                .collect();
            self.metadata = Some(Metadata {
                checkov: Some(Checkov { skip }),
            });
        }
        self
    }

    /// The CloudFormation type, `AWS::Service::Thing`.
    pub fn type_name(&self) -> &'static str {
        self.properties.type_name()
    }
}

impl Serialize for Resource {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Attributes first, properties last: the order a reader wants.
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("Type", self.type_name())?;
        if let Some(condition) = &self.condition {
            map.serialize_entry("Condition", condition)?;
        }
        if !self.depends_on.is_empty() {
            map.serialize_entry("DependsOn", &self.depends_on)?;
        }
        if let Some(policy) = &self.deletion_policy {
            map.serialize_entry("DeletionPolicy", policy)?;
        }
        if let Some(policy) = &self.update_replace_policy {
            map.serialize_entry("UpdateReplacePolicy", policy)?;
        }
        if let Some(metadata) = &self.metadata {
            map.serialize_entry("Metadata", metadata)?;
        }
        map.serialize_entry("Properties", &self.properties)?;
        map.end()
    }
}

/// A checkov finding the stack accepts on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// The check id, `CKV_AWS_117`.
    pub id: &'static str,
    /// Why it does not apply here, for the next reader of the template.
    pub reason: &'static str,
}

/// Resource metadata: today only checkov's suppressions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkov: Option<Checkov>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Checkov {
    pub skip: Vec<CheckovSkip>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckovSkip {
    pub id: &'static str,
    pub comment: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::resources::LogGroup;
    use serde_json::json;

    #[test]
    fn a_section_keeps_insertion_order_and_refuses_duplicates() {
        let mut section = Section::default();
        section.insert("B", 1).unwrap();
        section.insert("A", 2).unwrap();
        assert_eq!(section.insert("B", 3), Err(Duplicate("B".to_owned())));
        assert_eq!(serde_json::to_string(&section).unwrap(), r#"{"B":1,"A":2}"#);
    }

    #[test]
    fn a_resource_puts_its_attributes_before_its_properties() {
        let resource = Resource::new(LogGroup {
            log_group_name: Expr::literal("/x"),
            retention_in_days: 7,
        })
        .when(Some("PipelineEnabled"))
        .depends_on(&["Other"])
        .policies(DeletionPolicy::RetainExceptOnCreate, DeletionPolicy::Retain)
        .accepting(&[Accepted {
            id: "CKV_AWS_1",
            reason: "because",
        }]);
        let value = serde_json::to_value(&resource).unwrap();
        assert_eq!(
            value,
            json!({
                "Type": "AWS::Logs::LogGroup",
                "Condition": "PipelineEnabled",
                "DependsOn": ["Other"],
                "DeletionPolicy": "RetainExceptOnCreate",
                "UpdateReplacePolicy": "Retain",
                "Metadata": {"checkov": {"skip": [{"id": "CKV_AWS_1", "comment": "because"}]}},
                "Properties": {"LogGroupName": "/x", "RetentionInDays": 7}
            })
        );
        let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        assert_eq!(keys.first().map(|k| k.as_str()), Some("Type"));
        assert_eq!(keys.last().map(|k| k.as_str()), Some("Properties"));
    }
}
