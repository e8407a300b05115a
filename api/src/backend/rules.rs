//! The write rules every backend follows, in one place, so no backend can
//! drift from them: what a create stores, when an update or a delete is
//! refused (`NotFound` whatever was expected, else `PreconditionFailed`),
//! that an update setting nothing writes nothing, and what an update stores.
//! A backend keeps only what is its own: how it stores records and how it
//! makes the check and the write one atomic step.

use super::{BackendError, Expected, VERSION_ATTRIBUTE, Version};
use crate::record::{Record, RecordChanges, RecordId, fits_item_limit};

/// The record a create stores: the client's attributes without
/// [`VERSION_ATTRIBUTE`], which only the backend writes.
pub fn record_to_create(mut record: Record) -> Record {
    record.shift_remove(VERSION_ATTRIBUTE);
    record
}

/// [`record_to_create`], refused when it exceeds the item size limit (the
/// stores that do not enforce DynamoDB's limit themselves).
pub fn record_to_create_within_limit(record: Record) -> Result<Record, BackendError> {
    let record = record_to_create(record);
    if fits_item_limit(&record) {
        Ok(record)
    } else {
        Err(BackendError::TooLarge)
    }
}

/// The refusal of a write to `id` whose stored version is `current` (`None`:
/// no record) and does not meet `expected`: a missing record is `NotFound`
/// whatever was expected.
pub fn refusal(id: &RecordId, current: Option<Version>, expected: &Expected) -> BackendError {
    match current {
        None => BackendError::NotFound(id.clone()),
        Some(current) => BackendError::PreconditionFailed {
            id: id.clone(),
            expected: expected.clone(),
            current,
        },
    }
}

/// The stored version if a write to `id` may go ahead: the record exists at
/// a version `expected` allows.
pub fn check_version(
    id: &RecordId,
    current: Option<Version>,
    expected: &Expected,
) -> Result<Version, BackendError> {
    match current {
        Some(version) if expected.allows(version) => Ok(version),
        other => Err(refusal(id, other, expected)),
    }
}

/// Whether an update writes at all: setting nothing (the version attribute
/// is ignored) writes nothing and keeps the version, as in DynamoDB.
pub fn sets_something(changes: &RecordChanges) -> bool {
    changes
        .fields()
        .keys()
        .any(|name| name != VERSION_ATTRIBUTE)
}

/// The record an update stores: `current` with `changes` merged in, without
/// [`VERSION_ATTRIBUTE`], within the item size limit.
pub fn updated_record(current: &Record, changes: &RecordChanges) -> Result<Record, BackendError> {
    let mut record = current.clone();
    changes.apply_to(&mut record);
    record_to_create_within_limit(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> RecordId {
        RecordId::parse("a").unwrap()
    }

    #[test]
    fn a_missing_record_is_not_found_whatever_was_expected() {
        for expected in [Expected::Any, Expected::OneOf(vec![Version::new(3)])] {
            assert!(matches!(
                check_version(&id(), None, &expected),
                Err(BackendError::NotFound(_))
            ));
        }
    }

    #[test]
    fn a_version_not_expected_is_a_failed_precondition_naming_it() {
        let expected = Expected::OneOf(vec![Version::new(2)]);
        assert_eq!(
            check_version(&id(), Some(Version::new(2)), &expected).unwrap(),
            Version::new(2)
        );
        match check_version(&id(), Some(Version::new(3)), &expected) {
            Err(BackendError::PreconditionFailed { current, .. }) => {
                assert_eq!(current, Version::new(3));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_version_attribute_is_never_stored_from_a_client_nor_counts_as_a_change() {
        let body = serde_json::json!({"a": 1, VERSION_ATTRIBUTE: 9});
        let record: Record = serde_json::from_value(body).unwrap();
        assert!(!record_to_create(record.clone()).contains_key(VERSION_ATTRIBUTE));
        let changes = RecordChanges::from_body(br#"{"_version": 9}"#, &id()).unwrap();
        assert!(!sets_something(&changes));
        let updated = updated_record(&record, &changes).unwrap();
        assert!(!updated.contains_key(VERSION_ATTRIBUTE));
    }
}
