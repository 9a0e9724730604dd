//! `/proc/sys` access.
//!
//! `/proc/sys/net/*` shows the network namespace of the thread that opens the file, so these functions
//! apply to the calling THREAD's namespace: call them inside [`crate::NetNs::run`] to act on another one.
//! Keys use the slash form (`net/ipv4/conf/cali1234/proxy_arp`), because interface names may contain dots
//! and the dotted `sysctl` form would be ambiguous.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

use crate::error::NetlinkError;

fn path_for(op: &str, key: &str) -> Result<PathBuf, NetlinkError> {
    let problem = if key.is_empty() {
        Some("the key is empty")
    } else if key.starts_with('/') || key.ends_with('/') {
        Some("the key must be relative to /proc/sys, like net/ipv4/ip_forward")
    } else if key
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        Some("the key has an empty, '.' or '..' component")
    } else if key.contains('\0') {
        Some("the key contains a NUL byte")
    } else {
        None
    };
    match problem {
        Some(p) => Err(NetlinkError::invalid(op, p)),
        None => Ok(PathBuf::from("/proc/sys").join(key)),
    }
}

/// Writes `value` to `/proc/sys/<key>` (no create, no truncate: as Calico's `writeProcSys`).
/// A missing key (e.g. an interface that does not exist) gives `ErrorKind::NotFound`.
pub fn write(key: &str, value: &str) -> Result<(), NetlinkError> {
    let op = format!("writing sysctl {key}={value}");
    let path = path_for(&op, key)?;
    let mut file = OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| NetlinkError::from_io(&op, e))?;
    file.write_all(value.as_bytes())
        .map_err(|e| NetlinkError::from_io(&op, e))?;
    Ok(())
}

/// Reads `/proc/sys/<key>`, without the trailing newline.
pub fn read(key: &str) -> Result<String, NetlinkError> {
    let op = format!("reading sysctl {key}");
    let path = path_for(&op, key)?;
    let text = std::fs::read_to_string(&path).map_err(|e| NetlinkError::from_io(&op, e))?;
    Ok(text.trim_end_matches('\n').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn keys_are_validated() {
        for bad in [
            "",
            "/net/ipv4/ip_forward",
            "net/ipv4/",
            "net//x",
            "net/../etc",
            "net/./x",
        ] {
            let e = read(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{bad}");
        }
        let e = write("net/../../etc/passwd", "x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(
            e.to_string()
                .starts_with("writing sysctl net/../../etc/passwd=x: "),
            "{e}"
        );
    }

    #[test]
    fn reads_existing_and_reports_missing_keys() {
        // Reading is harmless in any namespace.
        let v = read("net/ipv4/ip_forward").unwrap();
        assert!(v == "0" || v == "1", "{v:?}");
        let e = read("net/ipv4/conf/no-such-if-xyz/proxy_arp").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.to_string().contains("no-such-if-xyz"), "{e}");
    }
}
