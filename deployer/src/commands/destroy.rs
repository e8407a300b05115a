//! `destroy`: the stack deleted after confirmation; tables (retained by the
//! template) and the artifact bucket (never in the stack) stay.

use super::context::Context;
use super::{CommandError, Finished, confirm, event_printer};
use crate::cli::WaitOptions;

pub(super) async fn destroy(
    context: &mut Context,
    yes: bool,
    wait: &WaitOptions,
) -> Result<Finished, CommandError> {
    context.polling.timeout = wait.timeout();
    let question = format!(
        "Delete stack `{}`? Its tables and the artifact bucket are kept.",
        context.stack()
    );
    if !yes && !confirm("destroy the stack", &question)? {
        eprintln!("Nothing deleted.");
        return Ok(Finished::Success);
    }
    let outcome = context
        .stacks()
        .destroy(context.stack(), &mut event_printer())
        .await?;
    context.print(&outcome)?;
    if let Ok(bucket) = context.artifact_bucket().await {
        eprintln!(
            "The artifact bucket `{}` is not part of the stack and stays; empty and delete it \
             yourself when no stack uses it.",
            bucket.name
        );
    }
    Ok(Finished::Success)
}
