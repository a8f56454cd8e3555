//! What every command starts from: the root, the clock, the flags; and for commands that work on
//! backups, the loaded config, variables and backup store.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::config::{self, Config, Environment, UrlSource};
use crate::error::{Error, Result};
use crate::events::Events;
use crate::provider::{self, DatabaseUrl, Provider};
use crate::registry::Store;
use crate::vars::Vars;

/// The clock can be fixed for tests and reproducible runs with `FABER_NOW` (RFC 3339).
pub const NOW_VAR: &str = "FABER_NOW";

/// The variables that name the environment when a command's ENV is left out, first first.
pub const DEFAULT_ENV_VARS: [&str; 2] = ["FABER_ENV", "ENV_MODE"];

pub struct Ctx {
    /// Where the engine reports its progress and warnings: the command line's `Ui`, the hook's,
    /// or a test's recorder. The engine knows it only as [`Events`].
    pub events: Arc<dyn Events>,
    pub yes: bool,
    pub root: PathBuf,
    pub config_path: Option<PathBuf>,
    pub now: DateTime<Utc>,
    /// This run's name in the audit log: an event that starts something and the one that says
    /// how it ended share it.
    pub run_id: String,
    /// A dotenv line that cannot be read is skipped, not an error (the hook).
    pub lenient_vars: bool,
}

impl Ctx {
    /// The context of a command line: the project at `root` (relative to the current
    /// directory) or the one the current directory is in, the config `config_path` names or
    /// the project's own, and whether `--yes` answered the confirmations.
    pub fn new(
        root: Option<&Path>,
        config_path: Option<PathBuf>,
        yes: bool,
        events: Arc<dyn Events>,
    ) -> Result<Ctx> {
        let cwd = std::env::current_dir()
            .map_err(|e| Error::config("cannot read the current directory").caused_by(e))?;
        let root = match root {
            Some(r) => {
                let r = cwd.join(r);
                if !r.is_dir() {
                    return Err(Error::config(format!(
                        "--root {} is not a directory",
                        r.display()
                    )));
                }
                r
            }
            None => config::find_root(&cwd),
        };
        Ok(Ctx {
            events,
            yes,
            root,
            config_path,
            now: now()?,
            run_id: run_id(),
            lenient_vars: false,
        })
    }

    /// A context for work that comes from no command line of its own (the Claude Code hook):
    /// the project at `root`, with the config `config` names (relative to `root`) or its own,
    /// and no confirmation answered.
    pub fn at(root: PathBuf, config_path: Option<PathBuf>, events: Arc<dyn Events>) -> Result<Ctx> {
        Ok(Ctx {
            events,
            yes: false,
            root,
            config_path,
            now: now()?,
            run_id: run_id(),
            lenient_vars: false,
        })
    }

    /// A context for engine unit tests: the project at `root` with its own config, the clock
    /// fixed at `now` (without `FABER_NOW`, which tests running in parallel must not set), no
    /// confirmation answered, and the reports going to `events`.
    #[cfg(test)]
    pub fn for_tests(root: PathBuf, now: DateTime<Utc>, events: Arc<dyn Events>) -> Ctx {
        Ctx {
            events,
            yes: false,
            root,
            config_path: None,
            now,
            run_id: run_id(),
            lenient_vars: false,
        }
    }

    /// Loads config, variables and store, and sweeps `.partial` files left by killed runs.
    pub fn session(&self) -> Result<Session<'_>> {
        self.open(config::load(&self.root, self.config_path.as_deref())?, true)
    }

    /// [`Ctx::session`] for a run that changes nothing on disk (a dry run): nothing is swept.
    pub fn session_unchanged(&self) -> Result<Session<'_>> {
        self.open(
            config::load(&self.root, self.config_path.as_deref())?,
            false,
        )
    }

    /// [`Ctx::session`] for a command that can run outside a project and changes nothing there:
    /// without a config file, the defaults with no environment; nothing is swept.
    pub fn session_anywhere(&self) -> Result<Session<'_>> {
        let config = config::load_or_defaults(&self.root, self.config_path.as_deref())?;
        self.open(config, false)
    }

    fn open(&self, config: Config, sweep: bool) -> Result<Session<'_>> {
        let vars = if self.lenient_vars {
            Vars::load_lenient(&self.root)
        } else {
            Vars::load(&self.root)?
        };
        let store = Store::new(config.backup_dir.clone());
        let swept = if sweep { store.sweep() } else { Vec::new() };
        // Removals a killed run left half-done are finished before anything else happens.
        let finished = if sweep {
            crate::removal::finish_interrupted(&store)
        } else {
            Vec::new()
        };
        for f in finished {
            match f.problem {
                None => self.events.warn(&format!(
                    "finished removing {}: its removal was interrupted",
                    f.id
                )),
                Some(p) => self.events.warn(&format!(
                    "could not finish removing {} (interrupted earlier): {p}",
                    f.id
                )),
            }
        }
        for swept in swept {
            if swept.finished {
                self.events.warn(&format!(
                    "finished {}: its backup was registered when its run was interrupted",
                    self.show(&swept.path)
                ));
            } else {
                self.events.warn(&format!(
                    "removed {}, left by an interrupted run",
                    self.show(&swept.path)
                ));
            }
        }
        let mut session = Session {
            ctx: self,
            config,
            vars,
            store,
        };
        if crate::agent::in_agent_shell() {
            session.protect_shared_databases();
        }
        Ok(session)
    }

    /// A path as shown to the user: relative to the root when inside it.
    pub fn show(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .display()
            .to_string()
    }
}

/// A name for this run in the audit log: the process and the time it started.
fn run_id() -> String {
    format!(
        "{}-{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    )
}

fn now() -> Result<DateTime<Utc>> {
    match std::env::var(NOW_VAR) {
        Ok(s) if !s.is_empty() => DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                Error::config(format!("{NOW_VAR}={s} is not an RFC 3339 time")).caused_by(e)
            }),
        _ => Ok(Utc::now()),
    }
}

pub struct Session<'a> {
    pub ctx: &'a Ctx,
    pub config: Config,
    pub vars: Vars,
    pub store: Store,
}

impl Session<'_> {
    /// Makes protected every environment whose database is a protected environment's: in an
    /// agent's shell, `DEV_DATABASE_URL=<production's URL> faber-db restore dev --yes` changes
    /// production, and is held as a change of it.
    pub fn protect_shared_databases(&mut self) {
        let urls: Vec<(String, bool, crate::provider::DatabaseUrl)> = self
            .config
            .environments
            .values()
            .filter_map(|e| Some((e.name.clone(), e.protected, self.url(e).ok()?)))
            .collect();
        let shared: Vec<String> = urls
            .iter()
            .filter(|(_, protected, url)| {
                !protected
                    && urls
                        .iter()
                        .any(|(_, p, other)| *p && crate::guard::same_database(url, other))
            })
            .map(|(name, _, _)| name.clone())
            .collect();
        for name in shared {
            if let Some(env) = self.config.environments.get_mut(&name) {
                env.protected = true;
            }
        }
    }

    /// Where the engine reports progress and warnings.
    pub fn events(&self) -> &dyn Events {
        self.ctx.events.as_ref()
    }

    pub fn env(&self, name: &str) -> Result<&Environment> {
        self.config.environment(name)
    }

    /// The environment a command acts on when ENV is left out, and where the name came from:
    /// `FABER_ENV`, else `ENV_MODE` (from the process or the dotenv files), else the config's
    /// `default_environment`. The name must be one of the environments.
    pub fn default_env(&self) -> Result<(String, String)> {
        let chosen = DEFAULT_ENV_VARS
            .iter()
            .find_map(|var| Some((self.vars.get(var)?.to_string(), var.to_string())))
            .or_else(|| {
                let name = self.config.default_environment.clone()?;
                Some((name, "default_environment".to_string()))
            });
        let names = || {
            self.config
                .environments
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        };
        let Some((name, source)) = chosen else {
            return Err(Error::config("no environment given").with_hint(format!(
                "name one ({}), or set FABER_ENV, ENV_MODE or default_environment in {}",
                names(),
                self.config.file.display()
            )));
        };
        if !self.config.environments.contains_key(&name) {
            return Err(Error::config(format!(
                "{source} names environment `{}`, which is not configured",
                crate::ids::shorten(&name)
            ))
            .with_hint(format!("environments: {}", names())));
        }
        Ok((name, source))
    }

    /// The environment's database URL, from its variable or the config.
    pub fn url(&self, env: &Environment) -> Result<DatabaseUrl> {
        DatabaseUrl::parse(&self.raw_url(env)?, &self.config.root)
    }

    /// The URL as written in the variable or config, password included: only ever handed to a
    /// child process's environment (`DATABASE_URL` of `migrate_command`), never shown.
    pub fn raw_url(&self, env: &Environment) -> Result<String> {
        Ok(match &env.url {
            UrlSource::Inline(url) => url.clone(),
            UrlSource::Var(var) => self.vars.get(var).map(str::to_string).ok_or_else(|| {
                Error::config(format!(
                    "variable {var} is not set (the database URL of environment `{}`)",
                    env.name
                ))
                .with_hint(format!(
                    "export {var}=postgres://user@host/db (or sqlite:path), or add it to .env"
                ))
            })?,
        })
    }

    pub fn provider(&self, env: &Environment) -> Result<(DatabaseUrl, Box<dyn Provider>)> {
        let url = self.url(env)?;
        let provider = provider::open(&url, self.provider_options(env))?;
        Ok((url, provider))
    }

    fn provider_options(&self, env: &Environment) -> provider::Options {
        provider::Options {
            row_count_max_table_size: env.row_count_max_table_size,
            ledger: Some(crate::scratch::Ledger::new(self.store.dir())),
        }
    }

    /// The server `verify --deep` and a migration's rehearsal load `env`'s backups into, when
    /// `verify_url_env` names one: the URL in that variable, with `database` (the environment's
    /// database) as the database its scratch databases are named after — as written, password
    /// included (only ever handed to a child process's environment), and opened. `None` when the
    /// key is not set.
    pub fn scratch_server(
        &self,
        env: &Environment,
        database: &str,
    ) -> Result<Option<(String, Box<dyn Provider>)>> {
        let Some(var) = &env.verify_url_env else {
            return Ok(None);
        };
        let raw = self.vars.get(var).ok_or_else(|| {
            Error::config(format!(
                "variable {var} is not set (verify_url_env of environment `{}`: the server deep checks load into)",
                env.name
            ))
            .with_hint(format!(
                "export {var}=postgres://admin@host/postgres (a role that may create databases), or add it to .env"
            ))
        })?;
        let (raw, url) = match DatabaseUrl::parse(raw, &self.config.root)? {
            DatabaseUrl::Server { kind, mut url } if kind == self.url(env)?.kind() => {
                let name = percent_encoding::utf8_percent_encode(
                    database,
                    percent_encoding::NON_ALPHANUMERIC,
                )
                .to_string();
                url.set_path(&format!("/{name}"));
                (url.to_string(), DatabaseUrl::Server { kind, url })
            }
            _ => {
                return Err(Error::config(format!(
                    "variable {var} (verify_url_env of environment `{}`) must hold a URL of a server like the environment's own ({})",
                    env.name,
                    self.url(env)?.kind().as_str()
                )));
            }
        };
        Ok(Some((
            raw,
            provider::open(&url, self.provider_options(env))?,
        )))
    }
}
