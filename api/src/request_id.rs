//! What a request id may be: the rule the server applies to a caller's
//! `x-request-id` (kept when it passes, replaced otherwise) and the deployer
//! to `deployer logs --request-id`. Its own module, outside the `server`
//! feature, so both share it.

/// Longest caller-supplied request id that is kept.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// Whether `id` can be a request id of ours: a caller's that is kept, or
/// one of our own (up to 128 of `A-Z a-z 0-9 - _ . = + /`).
pub fn is_plain_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_LEN
        && id.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'=' | b'+' | b'/')
        })
}
