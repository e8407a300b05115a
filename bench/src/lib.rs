//! `make bench`: what the api and the deployer cost, measured and printed,
//! never asserted. The `bench` binary (`src/main.rs`) runs the sections in
//! order (each module below with a `run` is one) and writes one table; the `hello` binary (`src/bin/hello.rs`) is the
//! bare axum floor the api is compared with.
//!
//! - [`setup`]: the options, paths, scratch directories and local api every
//!   section shares;
//! - [`report`]: rows of the table (Markdown on stdout, JSON on disk), medians;
//! - [`http`]: a free loopback port and one HTTP/1.1 request, no client library;
//! - [`process`]: a child process killed on drop, its peak RSS from `/proc`;
//! - [`cold_start`]: spawn → first answered request;
//! - [`lambda_init`]: the api in Lambda mode against a Runtime API stub;
//! - [`load`]: `wrk` runs and their output parsed;
//! - [`instructions`]: a request's instructions, counted by callgrind;
//! - [`package`]: the Lambda zip's size and the release profile;
//! - [`seeding`]: `deployer seed` against the AWS CLI, on the emulator;
//! - [`deploy`]: a no-op `deployer deploy` on the emulator;
//! - [`index`]: a filtered list by Scan and from a secondary index, on the
//!   emulator, as the table grows.

pub mod cold_start;
pub mod deploy;
pub mod http;
pub mod index;
pub mod instructions;
pub mod lambda_init;
pub mod load;
pub mod package;
pub mod process;
pub mod report;
pub mod seeding;
pub mod setup;
