//! The deployer: builds the CloudFormation stack of an app declaration from
//! typed Rust and drives it on AWS (render, diff, deploy, seed, logs, destroy).
//!
//! - [`declaration`]: `infra/app.yaml` loaded and checked once, before
//!   anything is built or called; [`settings`]: its `stack:` section;
//! - [`template`]: the typed CloudFormation model and the stack built from
//!   the declaration; rendering makes no AWS call;
//! - [`cloudformation`]: change sets, stack events, states and outputs;
//! - [`artifacts`]: the Lambda zip, built and uploaded under its content hash;
//! - [`bootstrap`]: the artifact bucket and the GitHub token secret;
//! - [`index_changes`]: one global secondary index change per table per
//!   deploy, checked before the change set is created;
//! - [`seed`]: seed files into the deployed tables;
//! - [`logs`]: the deployed function's log lines, a request's found by its id;
//! - [`pipeline`]: the CodeBuild project's builds; [`pipeline_log`]: a
//!   build's log, followed to the build's end;
//! - [`pipeline_build`]: what a deploy from the pipeline's own build may
//!   change, and whether its commit is still the branch tip;
//! - [`cli`]: the command line; [`commands`]: the only place these meet;
//! - [`verbose`]: `--verbose`, a line per AWS call (never its contents);
//! - [`diagnosis`]: what a failed command prints, and what to do next.

pub mod artifacts;
pub mod bootstrap;
pub mod cli;
pub mod cloudformation;
pub mod commands;
pub mod declaration;
pub mod diagnosis;
pub mod index_changes;
pub mod logs;
pub mod pipeline;
pub mod pipeline_build;
pub mod pipeline_log;
pub mod seed;
pub mod serving_indexes;
pub mod settings;
pub mod template;
pub mod time_text;
pub mod verbose;
