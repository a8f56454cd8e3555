//! Child processes (pg_dump, pg_restore, psql, …) that never outlive faber-db: a dump tool left
//! running after faber-db was killed would keep loading the server and writing into a `.partial`
//! directory the next run sweeps away.

use std::process::Command;

/// A database tool as faber-db runs it: in a process group of its own, so that Ctrl-C at the
/// terminal reaches faber-db alone (which stops the tool itself, at a point it chooses — never
/// halfway through swapping a database in), and ended when faber-db dies.
pub fn tool(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    dies_with_us(cmd)
}

/// Lets the child inherit `fd` (every other descriptor stays close-on-exec): a lock held through
/// it then lasts as long as the child and whatever it starts, even if faber-db dies first.
pub fn inherit_fd(cmd: &mut Command, fd: std::os::fd::RawFd) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: fcntl is async-signal-safe; the descriptor is open in the parent.
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// Makes the child receive SIGTERM when the thread that spawns it ends (Linux): spawn from a
/// thread that lives as long as the child is needed — the main thread, in faber-db.
pub fn dies_with_us(cmd: &mut Command) -> &mut Command {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let parent = std::process::id().cast_signed();
        // SAFETY: between fork and exec the closure makes only async-signal-safe calls (prctl,
        // getppid) and allocates nothing but the error on failure.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // faber-db may have died before the signal was armed.
                if libc::getppid() != parent {
                    return Err(std::io::Error::other("faber-db exited"));
                }
                Ok(())
            });
        }
    }
    cmd
}

/// Widens a pipe to a tool to 1 MiB (Linux; the default is 64 KiB), so that the tool and
/// faber-db wake each other sixteen times less often on a stream of gigabytes. Best effort: a
/// system that refuses keeps its default.
pub fn widen_pipe(pipe: &impl std::os::fd::AsRawFd) {
    #[cfg(target_os = "linux")]
    // SAFETY: F_SETPIPE_SZ on a descriptor this process owns; it only changes the capacity.
    unsafe {
        libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = pipe;
}
