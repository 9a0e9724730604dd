//! The one error type of this crate: it always names the operation and the object it was applied to
//! ("adding route 10.0.0.5/32 dev cali1234 scope link: File exists"), and classifies the cause into an
//! [`ErrorKind`] so callers can react (tolerate `Exists` on an idempotent add, `NotFound` on a delete).

use std::fmt;
use std::io;

use nix::errno::Errno;

/// What went wrong, independent of the exact errno. Callers match on this rather than on errno values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// EEXIST: the link/address/route is already there.
    Exists,
    /// ENOENT, ENODEV, ESRCH, EADDRNOTAVAIL, ENXIO: the object (or a netns path) is not there.
    NotFound,
    /// EPERM, EACCES: not enough privilege (or IPv6 disabled, for which the kernel answers EACCES).
    PermissionDenied,
    /// EBUSY: the object is in use.
    Busy,
    /// EINVAL, ERANGE, EAFNOSUPPORT, EOPNOTSUPP, ENETUNREACH and bad caller input.
    InvalidArgument,
    /// Anything else (I/O failure, malformed reply, verification mismatch, ...).
    Other,
}

impl ErrorKind {
    /// Classifies a (positive) errno value.
    pub fn from_errno(errno: i32) -> ErrorKind {
        match Errno::from_raw(errno) {
            Errno::EEXIST => ErrorKind::Exists,
            Errno::ENOENT | Errno::ENODEV | Errno::ESRCH | Errno::EADDRNOTAVAIL | Errno::ENXIO => {
                ErrorKind::NotFound
            }
            Errno::EPERM | Errno::EACCES => ErrorKind::PermissionDenied,
            Errno::EBUSY => ErrorKind::Busy,
            Errno::EINVAL
            | Errno::ERANGE
            | Errno::EAFNOSUPPORT
            | Errno::EOPNOTSUPP
            | Errno::ENETUNREACH
            | Errno::E2BIG
            | Errno::ENAMETOOLONG => ErrorKind::InvalidArgument,
            _ => ErrorKind::Other,
        }
    }
}

/// A failed netlink, namespace or sysctl operation.
///
/// `Display` is `"<operation>: <cause>"`, e.g. `adding address 10.0.0.5/32 to eth0 (index 2): File exists`.
#[derive(Debug, thiserror::Error)]
#[error("{op}: {detail}")]
pub struct NetlinkError {
    op: String,
    detail: String,
    kind: ErrorKind,
    errno: Option<i32>,
    #[source]
    source: Option<io::Error>,
}

impl NetlinkError {
    /// An error the kernel answered with `errno` (positive value).
    pub fn from_errno(op: impl Into<String>, errno: i32) -> NetlinkError {
        NetlinkError {
            op: op.into(),
            detail: Errno::from_raw(errno).desc().to_string(),
            kind: ErrorKind::from_errno(errno),
            errno: Some(errno),
            source: None,
        }
    }

    /// An error from a system call wrapped by std/nix.
    pub fn from_io(op: impl Into<String>, err: io::Error) -> NetlinkError {
        match err.raw_os_error() {
            Some(errno) => NetlinkError {
                source: None,
                ..NetlinkError::from_errno(op, errno)
            },
            None => NetlinkError {
                op: op.into(),
                detail: err.to_string(),
                kind: ErrorKind::Other,
                errno: None,
                source: Some(err),
            },
        }
    }

    /// An error from a nix call.
    pub fn from_nix(op: impl Into<String>, errno: Errno) -> NetlinkError {
        NetlinkError::from_errno(op, errno as i32)
    }

    /// An error that is not an errno (bad input, malformed reply, verification failure).
    pub fn new(op: impl Into<String>, kind: ErrorKind, detail: impl Into<String>) -> NetlinkError {
        NetlinkError {
            op: op.into(),
            detail: detail.into(),
            kind,
            errno: None,
            source: None,
        }
    }

    /// Bad caller input.
    pub fn invalid(op: impl Into<String>, detail: impl Into<String>) -> NetlinkError {
        NetlinkError::new(op, ErrorKind::InvalidArgument, detail)
    }

    /// Appends the kernel's extended-ACK explanation: `File exists (kernel: ...)`.
    pub(crate) fn with_kernel_message(mut self, text: &str) -> NetlinkError {
        self.detail = format!("{} (kernel: {text})", self.detail);
        self
    }

    /// The classification of the cause.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The errno the kernel (or a system call) answered, when there was one.
    pub fn errno(&self) -> Option<i32> {
        self.errno
    }

    /// The operation and object, e.g. `adding route 10.0.0.5/32 dev cali1 scope link`.
    pub fn operation(&self) -> &str {
        &self.op
    }

    /// The cause without the operation, e.g. `File exists`.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// Prefixes the operation with an outer step, keeping kind and errno:
    /// `setting up workload cali1/eth0: adding host route ...: File exists`.
    pub fn context(mut self, outer: impl fmt::Display) -> NetlinkError {
        self.op = format!("{outer}: {}", self.op);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_operation_and_cause() {
        let e = NetlinkError::from_errno("adding route 10.0.0.5/32 dev cali1 scope link", 17);
        assert_eq!(
            e.to_string(),
            "adding route 10.0.0.5/32 dev cali1 scope link: File exists"
        );
        assert_eq!(e.kind(), ErrorKind::Exists);
        assert_eq!(e.errno(), Some(17));
        let e = e.context("setting up workload cali1/eth0");
        assert_eq!(
            e.to_string(),
            "setting up workload cali1/eth0: adding route 10.0.0.5/32 dev cali1 scope link: File exists"
        );
        assert_eq!(e.kind(), ErrorKind::Exists);
    }

    #[test]
    fn errno_classification() {
        let table = [
            (Errno::EEXIST, ErrorKind::Exists),
            (Errno::ENOENT, ErrorKind::NotFound),
            (Errno::ENODEV, ErrorKind::NotFound),
            (Errno::ESRCH, ErrorKind::NotFound),
            (Errno::EADDRNOTAVAIL, ErrorKind::NotFound),
            (Errno::EPERM, ErrorKind::PermissionDenied),
            (Errno::EACCES, ErrorKind::PermissionDenied),
            (Errno::EBUSY, ErrorKind::Busy),
            (Errno::EINVAL, ErrorKind::InvalidArgument),
            (Errno::ERANGE, ErrorKind::InvalidArgument),
            (Errno::EIO, ErrorKind::Other),
        ];
        for (errno, kind) in table {
            assert_eq!(ErrorKind::from_errno(errno as i32), kind, "{errno:?}");
        }
    }

    #[test]
    fn io_errors_keep_errno() {
        let e = NetlinkError::from_io(
            "opening network namespace /run/netns/x",
            io::Error::from_raw_os_error(2),
        );
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(
            e.to_string(),
            "opening network namespace /run/netns/x: No such file or directory"
        );
        let e = NetlinkError::from_io("reading", io::Error::other("boom"));
        assert_eq!(e.kind(), ErrorKind::Other);
        assert_eq!(e.errno(), None);
    }
}
