//! A backup of a PostgreSQL database: `pg_dump` in the snapshot of a session of its own, which
//! meanwhile reads the row counts and migration state that describe exactly the dumped data.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::thread::JoinHandle;

use super::copycount::{self, CopyTarget};
use super::exclude;
use super::inspect::{Listed, inspect_via, list_tables_via, tables_from_copy};
use super::snapshot::SnapshotSession;
use super::tools::Tools;
use super::{DUMP_TRAILER, Postgres};
use crate::error::{Error, Kind, Remedy, Result};
use crate::format::Format;
use crate::pipeline::{Compression, TailReader};
use crate::provider::{DumpTo, Dumped, Inspection};

/// What the snapshot session's thread gives back: the tables a plain dump's counts are read
/// for, the inspection, and the session itself, to be closed once pg_dump is done.
type Counting = JoinHandle<(
    Result<Option<Vec<Listed>>>,
    Result<Inspection>,
    SnapshotSession,
)>;

/// Dumps the database in `format` into `to`, with the row counts and migration state of the
/// same snapshot; the rows of the tables `exclude_data` matches are left out.
pub(super) fn dump(
    pg: &Postgres,
    options: &crate::provider::DumpOptions<'_>,
    to: DumpTo<'_, '_>,
) -> Result<Dumped> {
    let crate::provider::DumpOptions {
        format,
        migrations_table: migrations_table_name,
        exclude_data,
        ..
    } = *options;
    let tools = pg.tools()?;
    // pg_dump shares this session's snapshot; counts and migration state are read in it
    // while the dump streams, so they describe exactly the dumped data.
    let session = SnapshotSession::open(pg)?;
    let migrations_table = migrations_table_name.map(str::to_string);
    let count_limit = pg.row_count_max_table_size;
    let excluded = exclude::resolve(&|sql| session.query(sql), exclude_data)?;
    let mut cmd = dump_command(pg, tools, &session.id, &to, format)?;
    cmd.args(excluded.args());
    let mut child = cmd.spawn().map_err(|e| {
        Error::new(
            Kind::ToolNotFound,
            format!("cannot run {}", tools.pg_dump.display()),
        )
        .caused_by(e)
    })?;
    let stderr_reader = crate::provider::tool::drain_stderr(&mut child);
    // A plain dump's rows are counted in the stream itself; the other formats are counted
    // with count(*) in the same snapshot, on this second connection, while pg_dump runs.
    let counting = count_in_snapshot(
        session,
        format == Format::Sql,
        migrations_table,
        count_limit,
    );
    let mut copied = BTreeMap::new();
    let (written, trailer_seen) = match to {
        DumpTo::Stream(sink) => {
            let stdout = child.stdout.take().expect("stdout is piped");
            crate::child::widen_pipe(&stdout);
            let mut source = crate::provider::Watched::new(
                copycount::CopyCounter::new(TailReader::new(stdout)),
                // Only plain SQL has its tables in the stream as COPY blocks.
                options.tables.filter(|_| format == Format::Sql),
            );
            let written = sink(&mut source);
            let source = source.inner;
            if written.is_err() {
                // Storing failed (a full disk, say): pg_dump must not be left blocked on the
                // pipe.
                let _ = child.kill();
            }
            copied = source.tables().clone();
            (
                Some(written),
                source.get_ref().ends_with_marker(DUMP_TRAILER),
            )
        }
        DumpTo::Directory { .. } => (None, false),
    };
    let status = crate::interrupt::wait_for(&mut child);
    // The snapshot's transaction ends only now that pg_dump is done with it.
    let inspection = counted(counting, &copied);
    let written = written.transpose().map_err(|e| {
        Error::io(
            Kind::Tool,
            "cannot write the backup of",
            Path::new(&pg.conn.dbname),
            e,
        )
    });
    let stderr = stderr_reader.join().unwrap_or_default();
    let status = status.map_err(|e| Error::tool("pg_dump did not finish").caused_by(e))?;
    // A failure to store comes first: it is why pg_dump was stopped.
    let written = written?;
    if !status.success() {
        return Err(dump_failed(status, &stderr));
    }
    if format == Format::Sql && !trailer_seen {
        return Err(Error::tool("pg_dump's output lacks its completion trailer")
            .with_hint("the dump is incomplete; back up again"));
    }
    let mut inspection = inspection?;
    // Their rows are not in the dump: no COPY block, or counted live in the snapshot.
    excluded.mark(&mut inspection.tables);
    Ok(Dumped {
        inspection,
        written,
        tool_version: tools.pg_dump_version.clone(),
        integrity_check: "ok".to_string(),
    })
}

/// `pg_dump` in the snapshot `snapshot`, writing `format` to where `to` says.
fn dump_command(
    pg: &Postgres,
    tools: &Tools,
    snapshot: &str,
    to: &DumpTo<'_, '_>,
    format: Format,
) -> Result<Command> {
    let mut cmd = pg.command(&tools.pg_dump, &pg.conn.dbname);
    cmd.arg(format!("--snapshot={snapshot}"))
        .arg("--no-password")
        .stderr(Stdio::piped());
    match (to, format) {
        (DumpTo::Stream(_), Format::Sql) => {
            cmd.arg("--format=plain").stdout(Stdio::piped());
        }
        (DumpTo::Stream(_), Format::Custom) => {
            // Uncompressed: the stream's compression (zstd on every core by default) does
            // it faster than pg_dump's zlib, and `--compression none` means none.
            cmd.arg("--format=custom")
                .arg("--compress=0")
                .stdout(Stdio::piped());
        }
        (
            DumpTo::Directory {
                path,
                jobs,
                compression,
            },
            Format::Directory,
        ) => {
            cmd.arg("--format=directory")
                .arg(format!("--jobs={}", (*jobs).max(1)))
                .arg(directory_compression(*compression, tools.pg_dump_major)?)
                .arg("--file")
                .arg(path)
                .stdout(Stdio::null());
        }
        _ => {
            return Err(Error::config(format!(
                "PostgreSQL cannot dump the {format} format this way"
            )));
        }
    }
    Ok(cmd)
}

/// Reads, on a thread of its own in `session`'s snapshot, the migration state and either the
/// tables a plain dump's rows are counted for (`from_stream`) or the tables' row counts.
fn count_in_snapshot(
    session: SnapshotSession,
    from_stream: bool,
    migrations_table: Option<String>,
    count_limit: u64,
) -> Counting {
    std::thread::spawn(move || {
        let run = |sql: &str| session.query(sql);
        let listed = if from_stream {
            list_tables_via(&run).map(Some)
        } else {
            Ok(None)
        };
        let counted = (!from_stream).then_some(count_limit);
        let inspection = inspect_via(&run, migrations_table.as_deref(), counted);
        (listed, inspection, session)
    })
}

/// What the snapshot session read, its session closed; a plain dump's counts from `copied`.
fn counted(counting: Counting, copied: &BTreeMap<CopyTarget, u64>) -> Result<Inspection> {
    match counting.join() {
        Ok((listed, inspection, session)) => {
            session.close();
            match (listed, inspection) {
                (Ok(Some(listed)), Ok(mut inspection)) => {
                    inspection.tables = tables_from_copy(&listed, copied);
                    Ok(inspection)
                }
                (Err(e), _) => Err(e),
                (_, inspection) => inspection,
            }
        }
        Err(_) => Err(Error::tool("counting rows failed")),
    }
}

/// The error of a pg_dump that failed: its exit, and the first lines it printed.
fn dump_failed(status: ExitStatus, stderr: &str) -> Error {
    let what = match status.code() {
        Some(code) => format!("pg_dump failed (exit {code})"),
        None => "pg_dump was killed".to_string(),
    };
    // pg_dump writing a directory dump itself runs out of room: exit 2, like a stream.
    let mut err = if stderr.contains("No space left on device") {
        Error::new(
            Kind::DiskSpace,
            format!("{what}: the backup directory is full"),
        )
        .with_hint(Remedy::DumpDirFull)
    } else {
        Error::tool(what)
    };
    for line in stderr.lines().filter(|l| !l.trim().is_empty()).take(5) {
        err = err.caused_by(line.trim_start_matches("pg_dump: ").trim());
    }
    err.add_hint("nothing was registered; fix the cause and back up again")
}

/// pg_dump's option for the compression of a directory dump's files. pg_dump before 16 knows
/// gzip levels only.
fn directory_compression(compression: Compression, pg_dump_major: u32) -> Result<String> {
    match compression {
        Compression::None => Ok("--compress=0".into()),
        Compression::Gzip => Ok("--compress=6".into()),
        Compression::Zstd if pg_dump_major >= 16 => Ok("--compress=zstd".into()),
        Compression::Zstd => Err(Error::config(format!(
            "pg_dump {pg_dump_major} cannot compress directory dumps with zstd"
        ))
        .with_hint("use --compression gzip (or none), or install the PostgreSQL 16+ client tools")),
    }
}
