//! The conditions of a list's `filters`, and their reference semantics.
//!
//! [`Filter::matches`] is what every backend reproduces: memory and the
//! embedded store call it, DynamoDB's expressions follow it (see
//! `backend/dynamodb/expression.rs`), and query planning keeps it true of
//! lists served from an index. The semantics are DynamoDB's condition
//! expressions': a comparison with a missing attribute or a value of
//! another type is false, numbers compare as numbers, strings by their
//! UTF-8 bytes.

use std::cmp::Ordering;

use serde_json::{Number, Value};

use crate::record::Record;

/// One condition of `filters`: an attribute and the test its value must pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub field: String,
    pub test: Test,
}

/// The operators of `filters`, each with the operand it needs. Comparisons and
/// `begins_with` only ever carry operands they can compare (checked at parse).
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    Eq(Scalar),
    Ne(Scalar),
    Lt(Scalar),
    Le(Scalar),
    Gt(Scalar),
    Ge(Scalar),
    BeginsWith(String),
    Contains(Scalar),
    Exists,
    NotExists,
}

/// A filter operand: a JSON scalar.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    String(String),
    Number(Number),
    Bool(bool),
    Null,
}

impl Scalar {
    pub fn to_json(&self) -> Value {
        match self {
            Scalar::String(s) => Value::String(s.clone()),
            Scalar::Number(n) => Value::Number(n.clone()),
            Scalar::Bool(b) => Value::Bool(*b),
            Scalar::Null => Value::Null,
        }
    }

    /// The operand's JSON type, as a message names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Scalar::String(_) => "a string",
            Scalar::Number(_) => "a number",
            Scalar::Bool(_) => "a boolean",
            Scalar::Null => "null",
        }
    }
}

impl Filter {
    /// Whether `record` passes this condition, with DynamoDB's semantics: a
    /// comparison with a missing attribute or a value of another type is false,
    /// numbers compare as numbers, strings by their UTF-8 bytes.
    pub fn matches(&self, record: &Record) -> bool {
        let value = record.get(&self.field);
        match (&self.test, value) {
            (Test::Exists, found) => found.is_some(),
            (Test::NotExists, found) => found.is_none(),
            (_, None) => false,
            (Test::Eq(operand), Some(value)) => scalar_eq(value, operand),
            (Test::Ne(operand), Some(value)) => !scalar_eq(value, operand),
            (Test::Lt(operand), Some(value)) => compare(value, operand) == Some(Ordering::Less),
            (Test::Le(operand), Some(value)) => {
                matches!(
                    compare(value, operand),
                    Some(Ordering::Less | Ordering::Equal)
                )
            }
            (Test::Gt(operand), Some(value)) => compare(value, operand) == Some(Ordering::Greater),
            (Test::Ge(operand), Some(value)) => matches!(
                compare(value, operand),
                Some(Ordering::Greater | Ordering::Equal)
            ),
            (Test::BeginsWith(prefix), Some(Value::String(s))) => s.starts_with(prefix.as_str()),
            (Test::BeginsWith(_), Some(_)) => false,
            (Test::Contains(Scalar::String(part)), Some(Value::String(s))) => {
                s.contains(part.as_str())
            }
            (Test::Contains(operand), Some(Value::Array(items))) => {
                items.iter().any(|item| scalar_eq(item, operand))
            }
            (Test::Contains(_), Some(_)) => false,
        }
    }
}

fn scalar_eq(value: &Value, operand: &Scalar) -> bool {
    match (value, operand) {
        (Value::String(a), Scalar::String(b)) => a == b,
        (Value::Number(a), Scalar::Number(b)) => compare_numbers(a, b) == Some(Ordering::Equal),
        (Value::Bool(a), Scalar::Bool(b)) => a == b,
        (Value::Null, Scalar::Null) => true,
        _ => false,
    }
}

fn compare(value: &Value, operand: &Scalar) -> Option<Ordering> {
    match (value, operand) {
        (Value::String(a), Scalar::String(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        (Value::Number(a), Scalar::Number(b)) => compare_numbers(a, b),
        _ => None,
    }
}

/// Compares integers exactly (a `u64` beyond 2^53 must not round) and falls
/// back to `f64` only when either side has a fraction or exponent.
pub fn compare_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    let as_int = |n: &Number| {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    };
    match (as_int(a), as_int(b)) {
        (Some(a), Some(b)) => Some(a.cmp(&b)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}
