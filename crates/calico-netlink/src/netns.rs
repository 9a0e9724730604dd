//! Network namespace handles.
//!
//! A [`NetNs`] is an open file descriptor of a network namespace (`/run/netns/<name>`, `/proc/<pid>/ns/net`).
//! Work "inside" a namespace runs on a scoped helper thread that `setns(2)`s into it and then exits, so the
//! caller's thread never changes namespace: a thread left in the wrong namespace is the classic bug of CNI
//! plugins (the Go CNI library has to lock OS threads for the same reason; we simply never move the caller).

use std::fmt;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::sched::{CloneFlags, setns};
use nix::sys::statfs::{NSFS_MAGIC, fstatfs};

use crate::error::NetlinkError;

/// An open network namespace.
pub struct NetNs {
    fd: OwnedFd,
    path: PathBuf,
}

impl fmt::Debug for NetNs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetNs")
            .field("path", &self.path)
            .field("fd", &self.fd.as_raw_fd())
            .finish()
    }
}

impl NetNs {
    /// Opens the namespace at `path` (`/run/netns/x`, `/proc/<pid>/ns/net`, a bind mount).
    ///
    /// A missing path gives [`crate::ErrorKind::NotFound`]; a path that is not a network namespace is
    /// rejected with [`crate::ErrorKind::InvalidArgument`].
    pub fn open(path: impl AsRef<Path>) -> Result<NetNs, NetlinkError> {
        let path = path.as_ref();
        let op = || format!("opening network namespace {}", path.display());
        let file = File::open(path).map_err(|e| NetlinkError::from_io(op(), e))?;
        let ns = NetNs {
            fd: file.into(),
            path: path.to_path_buf(),
        };
        // Namespace files live on the nsfs pseudo filesystem; anything else (a regular file, a directory, a
        // not-yet-bind-mounted /run/netns entry) would only fail later, at setns time, with a vaguer EINVAL.
        let fs = fstatfs(&ns.fd).map_err(|e| NetlinkError::from_nix(op(), e))?;
        if fs.filesystem_type() != NSFS_MAGIC {
            return Err(NetlinkError::invalid(
                op(),
                "not a namespace file (not on nsfs)",
            ));
        }
        Ok(ns)
    }

    /// Like [`NetNs::open`], but `Ok(None)` when the path does not exist: a CNI DEL whose namespace is
    /// already gone has nothing to clean up inside it (Calico's `CleanUpNamespace` treats it the same).
    pub fn open_if_exists(path: impl AsRef<Path>) -> Result<Option<NetNs>, NetlinkError> {
        match NetNs::open(path) {
            Ok(ns) => Ok(Some(ns)),
            Err(e) if e.kind() == crate::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The network namespace of the calling thread.
    pub fn current() -> Result<NetNs, NetlinkError> {
        let op = "opening the calling thread's network namespace";
        // /proc/thread-self resolves to "<pid>/task/<tid>": keep that stable form as the path, since
        // /proc/thread-self means a different thread for whoever reads `path()` later.
        let task =
            std::fs::read_link("/proc/thread-self").map_err(|e| NetlinkError::from_io(op, e))?;
        let path = Path::new("/proc").join(task).join("ns/net");
        let file = File::open(&path).map_err(|e| NetlinkError::from_io(op, e))?;
        Ok(NetNs {
            fd: file.into(),
            path,
        })
    }

    /// The path this handle was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A second handle to the same namespace.
    pub fn try_clone(&self) -> Result<NetNs, NetlinkError> {
        Ok(NetNs {
            fd: self.fd.try_clone().map_err(|e| {
                NetlinkError::from_io(
                    format!(
                        "duplicating handle of network namespace {}",
                        self.path.display()
                    ),
                    e,
                )
            })?,
            path: self.path.clone(),
        })
    }

    /// The namespace's identity (device, inode) as the kernel reports it for the nsfs file. Two handles
    /// refer to the same namespace exactly when their identities are equal.
    pub fn id(&self) -> Result<(u64, u64), NetlinkError> {
        let file = File::from(self.fd.try_clone().map_err(|e| {
            NetlinkError::from_io(
                format!("inspecting network namespace {}", self.path.display()),
                e,
            )
        })?);
        let meta = file.metadata().map_err(|e| {
            NetlinkError::from_io(
                format!("inspecting network namespace {}", self.path.display()),
                e,
            )
        })?;
        Ok((meta.dev(), meta.ino()))
    }

    /// Whether `self` and `other` are the same namespace.
    pub fn same_as(&self, other: &NetNs) -> Result<bool, NetlinkError> {
        Ok(self.id()? == other.id()?)
    }

    /// The raw descriptor, for netlink attributes such as `IFLA_NET_NS_FD` (valid while `self` lives).
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Runs `f` on a scoped helper thread switched into this namespace (the caller's thread never moves).
    ///
    /// A panic in `f` is propagated to the caller. Sockets opened inside `f` stay bound to this namespace
    /// after the thread exits; that is how [`crate::RouteSocket::open_in`] works.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, NetlinkError> {
        std::thread::scope(|scope| {
            let handle = std::thread::Builder::new()
                .name("calico-netns".to_string())
                .spawn_scoped(scope, || {
                    setns(&self.fd, CloneFlags::CLONE_NEWNET).map_err(|e| {
                        NetlinkError::from_nix(
                            format!("entering network namespace {}", self.path.display()),
                            e,
                        )
                    })?;
                    Ok(f())
                })
                .map_err(|e| {
                    NetlinkError::from_io(
                        format!(
                            "starting a thread to enter network namespace {}",
                            self.path.display()
                        ),
                        e,
                    )
                })?;
            match handle.join() {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }
}

impl AsFd for NetNs {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
