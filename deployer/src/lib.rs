//! The deployer: builds the CloudFormation stack of an app declaration from
//! typed Rust and drives it on AWS (render, diff, deploy, seed, destroy).
//!
//! Only the command-line surface exists so far; every command reports that it
//! is not implemented yet instead of pretending to work.

pub mod cli;
