//! The app declaration (`infra/app.yaml`) as every command gets it: loaded
//! and checked once, before any build, upload or AWS call.
//!
//! One place says whether a declaration can be deployed: its resources (the
//! `api` crate's own rules, the ones the server applies at start-up), its
//! `stack:` settings (what AWS would refuse), every seed file (it exists and
//! holds records a create would accept, index keys of the declared types
//! included: DynamoDB refuses a whole batch over one), and what the
//! template needs (table
//! names that fit and do not collide). Every problem is reported at once,
//! each with the file, the key path and the rule, so a typo in
//! `stack.pipeline.branch` costs a second, not a build and an upload.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use api::AppConfig;
use api::config::ConfigError;
use api::record::NewRecord;
use api::resource_map::read_seed;
use thiserror::Error;

use crate::settings::{Problem, StackSettings};
use crate::template::{self, TemplateError};

/// A declaration every command can use as it is.
#[derive(Debug, Clone)]
pub struct Declaration {
    pub file: PathBuf,
    pub app: AppConfig,
    pub settings: StackSettings,
    /// Each resource's seed records, by resource name (resources with a seed).
    pub seeds: BTreeMap<String, Vec<NewRecord>>,
}

/// Why a declaration cannot be used.
#[derive(Debug, Error)]
pub enum DeclarationError {
    /// Unreadable, not YAML, or resources the API itself refuses.
    #[error(transparent)]
    Resources(#[from] ConfigError),
    #[error("{} cannot be deployed:{}", file.display(), ProblemList(problems))]
    Invalid {
        file: PathBuf,
        problems: Vec<Problem>,
    },
}

/// One problem per line, indented under the file's name.
struct ProblemList<'a>(&'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for problem in self.0 {
            write!(f, "\n    {problem}")?;
        }
        Ok(())
    }
}

impl Declaration {
    /// Loads `file` and checks everything in it; `stack_name` (the
    /// `--stack-name` flag) replaces `stack.name` before the checks.
    pub fn load(file: &Path, stack_name: Option<&str>) -> Result<Self, DeclarationError> {
        let app = AppConfig::load(file)?;
        let invalid = |problems| DeclarationError::Invalid {
            file: file.to_owned(),
            problems,
        };
        let mut settings =
            StackSettings::from_section(app.stack.as_ref()).map_err(|p| invalid(vec![p]))?;
        if let Some(name) = stack_name {
            settings.name = name.to_owned();
        }
        let mut problems = settings.problems();

        let mut seeds = BTreeMap::new();
        for (resource, declared) in &app.resources {
            let Some(path) = app.seed_path(declared) else {
                continue;
            };
            match read_seed(resource, &path, &declared.indexes) {
                Ok(records) => {
                    seeds.insert(resource.clone(), records);
                }
                Err(error) => problems.push(Problem::new(
                    format!("resources.{resource}.seed"),
                    error_chain(&error),
                )),
            }
        }

        // Names the template derives (tables, roles) must fit and differ;
        // building it is pure and takes a millisecond.
        if problems.is_empty()
            && let Err(error) = template::build(&app, &settings)
        {
            problems.push(template_problem(&error));
        }

        if problems.is_empty() {
            Ok(Self {
                file: file.to_owned(),
                app,
                settings,
                seeds,
            })
        } else {
            Err(invalid(problems))
        }
    }
}

fn template_problem(error: &TemplateError) -> Problem {
    let key = match error {
        TemplateError::DuplicateLogicalId { second, .. }
        | TemplateError::DuplicateTableName { second, .. } => format!("resources.{second}"),
        TemplateError::NameTooLong { .. } => "stack.name".to_owned(),
        _ => "resources".to_owned(),
    };
    Problem::new(key, error.to_string())
}

/// `error`'s message and its causes', as one line.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `yaml` as `app.yaml` in a fresh directory, with `files` beside it.
    fn load(yaml: &str, files: &[(&str, &str)]) -> Result<Declaration, DeclarationError> {
        let dir = std::env::temp_dir().join(format!("declaration-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        let file = dir.join("app.yaml");
        std::fs::write(&file, yaml).unwrap();
        let loaded = Declaration::load(&file, None);
        // Everything is read at load: the files can go, however the test ends.
        let _ = std::fs::remove_dir_all(&dir);
        loaded
    }

    fn problems(yaml: &str, files: &[(&str, &str)]) -> Vec<String> {
        match load(yaml, files) {
            Err(DeclarationError::Invalid { problems, .. }) => {
                problems.iter().map(ToString::to_string).collect()
            }
            other => panic!("{yaml}: expected problems, got {other:?}"),
        }
    }

    #[test]
    fn the_repository_declaration_loads_with_its_seeds() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/app.yaml");
        let declaration = Declaration::load(&file, None).unwrap();
        assert_eq!(declaration.settings.name, "serverless-api");
        assert!(!declaration.seeds["users"].is_empty());
        assert!(!declaration.seeds["mocks"].is_empty());
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_key_path() {
        let found = problems(
            "resources:\n  users: { backend: dynamodb, seed: missing.json }\n\
             stack:\n  memory_mb: 64\n  timeout_seconds: 60\n  artifact_bucket: My_Bucket\n  \
             pipeline:\n    repository: https://gitlab.com/a/b\n    branch: 'feature..x'\n    \
             github_token_secret: 'a token'\n",
            &[],
        );
        let keys: Vec<&str> = found.iter().map(|p| p.split('`').nth(1).unwrap()).collect();
        assert_eq!(
            keys,
            [
                "stack.memory_mb",
                "stack.timeout_seconds",
                "stack.artifact_bucket",
                "stack.pipeline.repository",
                "stack.pipeline.branch",
                "stack.pipeline.github_token_secret",
                "resources.users.seed",
            ],
            "{found:#?}"
        );
        assert!(found[0].contains("64 is not allowed: Lambda allows 128 to 10240"));
        assert!(found[2].contains("lowercase letters"), "{}", found[2]);
        assert!(found[6].contains("missing.json"), "{}", found[6]);
    }

    #[test]
    fn branch_names_follow_git() {
        for (branch, valid) in [
            ("main", true),
            ("release/1.2", true),
            ("feature/x_y-z", true),
            ("ma in", false),
            ("-main", false),
            ("/main", false),
            ("main/", false),
            ("main.", false),
            ("main.lock", false),
            ("a..b", false),
            ("a//b", false),
            ("a/.hidden", false),
            ("", false),
        ] {
            let yaml = format!(
                "resources: {{}}\nstack:\n  pipeline:\n    repository: https://github.com/o/r\n    \
                 branch: '{branch}'\n"
            );
            let result = load(&yaml, &[]);
            assert_eq!(result.is_ok(), valid, "{branch:?}: {result:?}");
        }
    }

    #[test]
    fn seeds_must_be_arrays_of_records_a_create_accepts() {
        for (seed, fragment) in [
            ("{\"id\": \"a\"}", "invalid type: map, expected a sequence"),
            ("[1]", "item 0: request body must be a JSON object"),
            ("[{\"name\": \"x\"}]", "item 0: `id` is missing"),
            ("[{\"id\": \"a/b\"}]", "item 0: `id` contains `/`"),
            ("[{\"id\": \"a\"}, oops]", "expected value"),
        ] {
            let found = problems(
                "resources:\n  things: { backend: memory, seed: things.json }\n",
                &[("things.json", seed)],
            );
            assert_eq!(found.len(), 1, "{seed}: {found:?}");
            assert!(
                found[0].starts_with("`resources.things.seed`: "),
                "{found:?}"
            );
            assert!(found[0].contains(fragment), "{seed}: {found:?}");
        }
    }

    /// DynamoDB refuses an item whose index key has another type than
    /// declared, and with it the whole batch the seeding sends.
    #[test]
    fn seed_records_hold_index_keys_of_the_declared_types() {
        let yaml = "resources:\n  things:\n    backend: dynamodb\n    seed: things.json\n    \
                    indexes: [{ name: things-by-size, partition_key: { name: size, type: number } }]\n";
        let found = problems(
            yaml,
            &[(
                "things.json",
                r#"[{"id": "a", "size": 3}, {"id": "b"}, {"id": "c", "size": "large"}]"#,
            )],
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("`resources.things.seed`: "),
            "{found:?}"
        );
        assert!(
            found[0].ends_with(
                "things.json: item 2: attribute `size` is the partition key of index \
                 `things-by-size`: it must be a number, or absent; got a string of 5 bytes"
            ),
            "{found:?}"
        );
        assert!(
            load(
                yaml,
                &[("things.json", r#"[{"id": "a", "size": 3}, {"id": "b"}]"#)]
            )
            .is_ok()
        );
    }

    #[test]
    fn what_the_template_cannot_name_is_a_problem_of_the_declaration() {
        let found = problems(
            "resources:\n  a: { backend: dynamodb, table: t }\n  b: { backend: dynamodb, table: t }\n",
            &[],
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("`resources.b`: "), "{found:?}");
        let found = problems(
            &format!("resources: {{}}\nstack: {{ name: {} }}\n", "a".repeat(60)),
            &[],
        );
        assert!(found[0].starts_with("`stack.name`: "), "{found:?}");
    }

    #[test]
    fn the_message_names_the_file_then_one_problem_a_line() {
        let error = load(
            "resources: {}\nstack:\n  memory_mb: 1\n  throttle_rate: 0\n",
            &[],
        )
        .unwrap_err();
        let message = error.to_string();
        let lines: Vec<&str> = message.lines().collect();
        assert_eq!(lines.len(), 3, "{message}");
        assert!(
            lines[0].ends_with("app.yaml cannot be deployed:"),
            "{message}"
        );
        assert!(lines[1].starts_with("    `stack.memory_mb`: 1 is not allowed"));
        assert!(lines[2].starts_with("    `stack.throttle_rate`: 0 is not allowed"));
    }
}
