//! CloudFormation intrinsic functions as one Rust value.
//!
//! A property that CloudFormation resolves at deploy time (an ARN, a name
//! built from the stack, a value behind a condition) is an [`Expr`], so the
//! builder cannot misspell `Fn::GetAtt` or nest a function where a literal
//! was meant. Expressions serialise in the long form
//! (`{"Fn::GetAtt": ["Api", "RootResourceId"]}`), which YAML and JSON both
//! carry unchanged; the short `!GetAtt` tags exist only in YAML.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// A value CloudFormation resolves: a literal or an intrinsic function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// A plain string.
    Literal(String),
    /// `Ref` to a parameter or a resource of the template.
    Ref(String),
    /// `Ref` to a pseudo parameter (`AWS::Region`, `AWS::NoValue`, ...).
    Pseudo(Pseudo),
    /// `Fn::GetAtt [resource, attribute]`.
    GetAtt(String, String),
    /// `Fn::Sub` of a string with `${Name}` / `${Resource.Attribute}` slots;
    /// literal text must go through [`sub_literal`].
    Sub(String),
    /// `Fn::If [condition, then, else]`.
    If(String, Box<Expr>, Box<Expr>),
    /// `Fn::Equals [a, b]`, for conditions and rules.
    Equals(Box<Expr>, Box<Expr>),
    /// `Fn::Not [condition]`, for conditions and rules.
    Not(Box<Expr>),
}

/// The pseudo parameters the stack uses; they keep ARNs free of a hard-coded
/// partition, region or account, so the template deploys anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pseudo {
    AccountId,
    Partition,
    Region,
    StackName,
    UrlSuffix,
    /// Removes the property it is the value of (inside `Fn::If`).
    NoValue,
}

impl Pseudo {
    /// The name `Ref` takes.
    pub fn name(self) -> &'static str {
        match self {
            Pseudo::AccountId => "AWS::AccountId",
            Pseudo::Partition => "AWS::Partition",
            Pseudo::Region => "AWS::Region",
            Pseudo::StackName => "AWS::StackName",
            Pseudo::UrlSuffix => "AWS::URLSuffix",
            Pseudo::NoValue => "AWS::NoValue",
        }
    }
}

impl Expr {
    pub fn literal(text: impl Into<String>) -> Self {
        Expr::Literal(text.into())
    }

    pub fn reference(logical_id: impl Into<String>) -> Self {
        Expr::Ref(logical_id.into())
    }

    pub fn get_att(logical_id: impl Into<String>, attribute: impl Into<String>) -> Self {
        Expr::GetAtt(logical_id.into(), attribute.into())
    }

    pub fn sub(template: impl Into<String>) -> Self {
        Expr::Sub(template.into())
    }

    pub fn if_(condition: impl Into<String>, then: Expr, otherwise: Expr) -> Self {
        Expr::If(condition.into(), Box::new(then), Box::new(otherwise))
    }

    pub fn equals(left: Expr, right: Expr) -> Self {
        Expr::Equals(Box::new(left), Box::new(right))
    }

    pub fn negate(condition: Expr) -> Self {
        Expr::Not(Box::new(condition))
    }

    /// The literal text, when this is one (tests and checks read it).
    pub fn as_literal(&self) -> Option<&str> {
        match self {
            Expr::Literal(text) => Some(text),
            _ => None,
        }
    }
}

impl From<&str> for Expr {
    fn from(text: &str) -> Self {
        Expr::Literal(text.to_owned())
    }
}

impl From<String> for Expr {
    fn from(text: String) -> Self {
        Expr::Literal(text)
    }
}

/// Escapes literal text for the inside of an `Fn::Sub` string: `${` would
/// open a slot, `${!` is CloudFormation's way to write it literally.
pub fn sub_literal(text: &str) -> String {
    text.replace("${", "${!")
}

/// `arn:${AWS::Partition}:<service>:${AWS::Region}:${AWS::AccountId}:<resource>`
/// as an `Fn::Sub` string; `resource` is Sub text (may hold slots).
pub fn regional_arn(service: &str, resource: &str) -> Expr {
    Expr::sub(format!(
        "arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:{resource}"
    ))
}

impl Serialize for Expr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Expr::Literal(text) => serializer.serialize_str(text),
            Expr::Ref(name) => single(serializer, "Ref", name),
            Expr::Pseudo(pseudo) => single(serializer, "Ref", pseudo.name()),
            Expr::GetAtt(logical_id, attribute) => {
                single(serializer, "Fn::GetAtt", &[logical_id, attribute])
            }
            Expr::Sub(template) => single(serializer, "Fn::Sub", template),
            Expr::If(condition, then, otherwise) => single(
                serializer,
                "Fn::If",
                &Arguments(&[&Expr::Literal(condition.clone()), then, otherwise]),
            ),
            Expr::Equals(left, right) => {
                single(serializer, "Fn::Equals", &Arguments(&[left, right]))
            }
            Expr::Not(condition) => single(serializer, "Fn::Not", &Arguments(&[condition])),
        }
    }
}

/// `{key: value}`: the shape of every intrinsic function.
fn single<S: Serializer, V: Serialize + ?Sized>(
    serializer: S,
    key: &str,
    value: &V,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(1))?;
    map.serialize_entry(key, value)?;
    map.end()
}

/// A function's argument list.
struct Arguments<'a>(&'a [&'a Expr]);

impl Serialize for Arguments<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for argument in self.0 {
            seq.serialize_element(argument)?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(expr: Expr, expected: serde_json::Value) {
        assert_eq!(serde_json::to_value(&expr).unwrap(), expected, "{expr:?}");
    }

    #[test]
    fn serialises_in_long_form() {
        check(Expr::literal("x"), json!("x"));
        check(Expr::reference("Api"), json!({"Ref": "Api"}));
        check(
            Expr::Pseudo(Pseudo::UrlSuffix),
            json!({"Ref": "AWS::URLSuffix"}),
        );
        check(
            Expr::get_att("Api", "RootResourceId"),
            json!({"Fn::GetAtt": ["Api", "RootResourceId"]}),
        );
        check(Expr::sub("${Api}/*"), json!({"Fn::Sub": "${Api}/*"}));
        check(
            Expr::if_(
                "PipelineEnabled",
                Expr::reference("Project"),
                Expr::Pseudo(Pseudo::NoValue),
            ),
            json!({"Fn::If": ["PipelineEnabled", {"Ref": "Project"}, {"Ref": "AWS::NoValue"}]}),
        );
        check(
            Expr::negate(Expr::equals(Expr::reference("Repo"), Expr::literal(""))),
            json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "Repo"}, ""]}]}),
        );
    }

    #[test]
    fn same_value_in_yaml_and_json() {
        let expr = Expr::get_att("Table", "Arn");
        let yaml: serde_json::Value =
            serde_yaml::from_str(&serde_yaml::to_string(&expr).unwrap()).unwrap();
        assert_eq!(yaml, serde_json::to_value(&expr).unwrap());
    }

    #[test]
    fn literal_text_cannot_open_a_slot() {
        assert_eq!(sub_literal("a${b}c"), "a${!b}c");
        assert_eq!(sub_literal("plain"), "plain");
        assert_eq!(
            regional_arn("logs", "log-group:x"),
            Expr::sub("arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:x")
        );
    }
}
