//! Kernel wake-ups for the watch poller, so an idle watcher costs nothing and a commit by any
//! process reaches the watchers of every process at once (Linux: inotify and an eventfd).
//!
//! Why a sidecar file rather than inotify on the `-wal` file: SQLite writes a transaction's
//! frames into the WAL (write(2), which raises IN_MODIFY), fsyncs them under
//! `synchronous=FULL`, and only then publishes the commit in the wal-index header in the `-shm`
//! file, which every process has mapped into memory (`sqlite3WalFrames` in SQLite's wal.c:
//! frames, sync, `walIndexAppend`, `walIndexWriteHdr`). Stores into a shared mapping raise no
//! inotify event, and nothing is written to the WAL or the main file after the commit becomes
//! visible, so a poller woken by a WAL event checks `PRAGMA data_version` up to an fsync too
//! early, finds nothing, and sleeps through the commit. Hence every writer of this backend,
//! once its COMMIT has returned, writes one byte to the sidecar file `<db>-notify`
//! ([`CommitSignal`]): that write happens strictly after the commit is visible. Pollers watch
//! the sidecar (IN_MODIFY) and its directory (IN_CREATE/IN_MOVED_TO of its name, should the
//! file be deleted and recreated), and keep a slow safety poll for whatever else (an event lost
//! to a queue overflow, a writer that does not signal). Writes of the poller's own process wake
//! it through an eventfd ([`Kick`]).
//!
//! Elsewhere, and where inotify can't be set up (e.g. `fs.inotify.max_user_instances`, 128 by
//! default, is used up), the poller falls back to polling every `watch_poll_interval`.

pub(crate) use imp::{CommitSignal, KernelWait, Kick};

/// The sidecar's name: the database file's name with this suffix, in the same directory (next
/// to SQLite's own `-wal` and `-shm`).
pub(crate) const NOTIFY_SUFFIX: &str = "-notify";

#[cfg(target_os = "linux")]
mod imp {
    use std::ffi::OsString;
    use std::fs::OpenOptions;
    use std::io;
    use std::mem::MaybeUninit;
    use std::os::fd::OwnedFd;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use rustix::event::{EventfdFlags, PollFd, PollFlags, Timespec};
    use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
    use rustix::io::Errno;

    use super::NOTIFY_SUFFIX;

    /// The writer side: tells the pollers of every process that a commit happened.
    pub(crate) struct CommitSignal {
        path: PathBuf,
        mode: u32,
        /// Warn once, not on every commit, when the sidecar can't be written.
        warned: AtomicBool,
    }

    impl CommitSignal {
        /// The sidecar of the database at `db` (which must exist), created if missing.
        pub fn new(db: &Path) -> io::Result<Self> {
            // SQLite resolves symlinks and keeps its -wal and -shm next to the real file; do
            // the same so every process agrees on one sidecar.
            let db = std::fs::canonicalize(db)?;
            let mut name = db.file_name().map(OsString::from).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "database path has no file name",
                )
            })?;
            name.push(NOTIFY_SUFFIX);
            let path = db.with_file_name(name);
            // The same permissions as the database, as SQLite does for its -wal and -shm, so
            // every process that may write the store may also signal.
            let mode = std::fs::metadata(&db)?.permissions().mode() & 0o777;
            let signal = CommitSignal {
                path,
                mode,
                warned: AtomicBool::new(false),
            };
            signal.open()?;
            Ok(signal)
        }

        pub fn path(&self) -> &Path {
            &self.path
        }

        fn open(&self) -> io::Result<std::fs::File> {
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(self.mode)
                .open(&self.path)
        }

        /// Writes one byte at offset 0 (the file stays one byte long): IN_MODIFY for every
        /// poller. Opened by name each time, so a deleted sidecar comes back with the next
        /// commit and writers never keep signalling into an unlinked file.
        pub fn signal(&self) {
            let res = self.open().and_then(|f| f.write_at(b"\n", 0));
            if let Err(e) = res
                && !self.warned.swap(true, Ordering::Relaxed)
            {
                tracing::warn!(
                    file = %self.path.display(),
                    error = %e,
                    "embedded datastore: cannot signal commits to other processes; their \
                     watchers will see this process's writes only at their safety poll"
                );
            }
        }
    }

    /// Wakes this process's poller (an eventfd it polls together with the inotify instance).
    pub(crate) struct Kick {
        fd: OwnedFd,
    }

    impl Kick {
        pub fn new() -> io::Result<Self> {
            let fd = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
            Ok(Kick { fd })
        }

        pub fn kick(&self) {
            // EAGAIN only when the counter is about to overflow: a wake-up is pending anyway.
            let _ = rustix::io::write(&self.fd, &1u64.to_ne_bytes());
        }

        fn drain(&self) {
            let mut buf = [0u8; 8];
            let _ = rustix::io::read(&self.fd, &mut buf);
        }
    }

    /// The poller side: an inotify instance watching the sidecar and its directory.
    pub(crate) struct KernelWait {
        inotify: OwnedFd,
        sidecar: PathBuf,
        sidecar_name: OsString,
        sidecar_wd: Option<i32>,
        dir_wd: i32,
        buf: Vec<MaybeUninit<u8>>,
    }

    const SIDECAR_EVENTS: WatchFlags = WatchFlags::MODIFY;

    impl KernelWait {
        pub fn new(signal: &CommitSignal) -> io::Result<Self> {
            let sidecar = signal.path().to_path_buf();
            let (Some(dir), Some(name)) = (sidecar.parent(), sidecar.file_name()) else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "sidecar path has no directory",
                ));
            };
            let inotify = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)?;
            // The directory first: a sidecar recreated between the two calls is still seen.
            let dir_wd = inotify::add_watch(
                &inotify,
                dir,
                WatchFlags::CREATE | WatchFlags::MOVED_TO | WatchFlags::ONLYDIR,
            )?;
            let sidecar_wd = Some(inotify::add_watch(&inotify, &sidecar, SIDECAR_EVENTS)?);
            Ok(KernelWait {
                inotify,
                sidecar_name: name.to_os_string(),
                sidecar,
                sidecar_wd,
                dir_wd,
                // Room for many events per read(2) (each is 16 bytes plus its name).
                buf: vec![MaybeUninit::uninit(); 4096],
            })
        }

        /// Blocks until a commit signal, a kick or `timeout`, then consumes what woke it. The
        /// caller checks the store after every return, so spurious returns are harmless.
        pub fn wait(&mut self, kick: &Kick, timeout: Duration) -> io::Result<()> {
            let ts = Timespec {
                tv_sec: timeout.as_secs().try_into().unwrap_or(i64::MAX),
                tv_nsec: timeout.subsec_nanos().into(),
            };
            let mut fds = [
                PollFd::new(&self.inotify, PollFlags::IN),
                PollFd::new(&kick.fd, PollFlags::IN),
            ];
            match rustix::event::poll(&mut fds, Some(&ts)) {
                Ok(_) | Err(Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
            let (inotify_ready, kicked) =
                (!fds[0].revents().is_empty(), !fds[1].revents().is_empty());
            if kicked {
                kick.drain();
            }
            if inotify_ready {
                self.drain_events()?;
            }
            Ok(())
        }

        /// Reads every queued event; re-adds the sidecar watch when the file was replaced.
        fn drain_events(&mut self) -> io::Result<()> {
            let mut rewatch = false;
            let mut reader = inotify::Reader::new(&self.inotify, &mut self.buf);
            loop {
                let ev = match reader.next() {
                    Ok(ev) => ev,
                    Err(Errno::WOULDBLOCK | Errno::INTR) => break,
                    Err(e) => return Err(e.into()),
                };
                let flags = ev.events();
                if ev.wd() == self.dir_wd {
                    let ours = ev
                        .file_name()
                        .is_some_and(|n| n.to_bytes() == self.sidecar_name.as_bytes());
                    if ours && flags.intersects(ReadFlags::CREATE | ReadFlags::MOVED_TO) {
                        rewatch = true;
                    }
                } else if Some(ev.wd()) == self.sidecar_wd && flags.contains(ReadFlags::IGNORED) {
                    // The watched file is gone (deleted, or its filesystem unmounted).
                    self.sidecar_wd = None;
                    rewatch = true;
                }
                // Anything else (IN_MODIFY, IN_Q_OVERFLOW) only means "check the store".
            }
            if rewatch {
                // Watching the same inode again returns the same descriptor; a new file gets a
                // new one and the old watch ends with IN_IGNORED once that inode is freed.
                self.sidecar_wd =
                    match inotify::add_watch(&self.inotify, &self.sidecar, SIDECAR_EVENTS) {
                        Ok(wd) => Some(wd),
                        // Deleted and not recreated yet: the directory watch reports its return.
                        Err(Errno::NOENT) => None,
                        Err(e) => return Err(e.into()),
                    };
            }
            Ok(())
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    //! No kernel notifications here: the poller polls every `watch_poll_interval`.

    use std::io;
    use std::path::Path;
    use std::time::Duration;

    fn unsupported() -> io::Error {
        io::Error::new(
            io::ErrorKind::Unsupported,
            "kernel wake-ups for watchers need Linux (inotify)",
        )
    }

    pub(crate) struct CommitSignal;

    impl CommitSignal {
        pub fn new(_db: &Path) -> io::Result<Self> {
            Err(unsupported())
        }

        pub fn signal(&self) {}
    }

    pub(crate) struct Kick;

    impl Kick {
        pub fn new() -> io::Result<Self> {
            Err(unsupported())
        }

        pub fn kick(&self) {}
    }

    pub(crate) struct KernelWait;

    impl KernelWait {
        pub fn new(_signal: &CommitSignal) -> io::Result<Self> {
            Err(unsupported())
        }

        pub fn wait(&mut self, _kick: &Kick, _timeout: Duration) -> io::Result<()> {
            Err(unsupported())
        }
    }
}
