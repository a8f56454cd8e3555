//! Whether this run is a command of an AI agent's shell (issue 24): Claude Code sets
//! `CLAUDECODE=1` and `CLAUDE_CODE_SESSION_ID` in every process of its Bash tool. There a
//! protected environment changes only with a one-time approval (the `approval` module), and an
//! environment pointed at a protected one's database is protected too (the session does that
//! when it opens).

/// The variable holding the Claude Code session's ID.
pub const SESSION_VAR: &str = "CLAUDE_CODE_SESSION_ID";

/// The variables that say a run is an agent's (either one set: unsetting one is not enough).
pub const AGENT_VARS: [&str; 2] = ["CLAUDECODE", SESSION_VAR];

/// Whether this run is an agent's.
pub fn in_agent_shell() -> bool {
    AGENT_VARS
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()))
}
