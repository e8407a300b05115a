//! `seed`: each `dynamodb` resource's seed file written into its table,
//! found through the stack's outputs.

use api::config::BackendKind;

use super::context::Context;
use super::{CommandError, Finished};
use crate::seed::{self, Backoff, TableSeed, TableSeedReport};
use crate::template;

/// The seeds of every `dynamodb` resource, with its table from the outputs.
async fn table_seeds(context: &Context) -> Result<Vec<TableSeed>, CommandError> {
    let stacks = context.stacks();
    if stacks.describe(context.stack(), 0).await?.is_none() {
        return Err(CommandError::NoStack {
            stack: context.stack().to_owned(),
        });
    }
    let outputs = stacks.outputs(context.stack()).await?;
    let mut seeds = Vec::new();
    for (resource, declared) in &context.app.resources {
        if declared.backend != BackendKind::Dynamodb {
            continue;
        }
        let Some(records) = context.seeds.get(resource) else {
            continue;
        };
        let key = template::table_output_key(resource);
        let table = outputs
            .get(&key)
            .ok_or_else(|| CommandError::MissingOutput {
                stack: context.stack().to_owned(),
                output: key.clone(),
            })?
            .to_owned();
        seeds.push(TableSeed {
            resource: resource.clone(),
            table,
            records: records.clone(),
        });
    }
    Ok(seeds)
}

pub(super) async fn seed(context: &Context) -> Result<Finished, CommandError> {
    let seeds = table_seeds(context).await?;
    let dynamodb = context.dynamodb();
    // Progress while a table fills; the report on stdout has the final lines.
    let mut progress = |report: &TableSeedReport| {
        if report.items_written < report.items_total {
            eprintln!("{report}");
        }
    };
    let report = seed::seed_tables(&dynamodb, &seeds, &Backoff::default(), &mut progress).await?;
    context.print(&report)?;
    Ok(Finished::Success)
}
