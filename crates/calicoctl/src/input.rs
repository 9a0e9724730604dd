//! Reading `-f FILE|DIR|-` the way calicoctl does (`commands/file`, `resourcemgr
//! CreateResourcesFromFile`): a file, every `.yaml`/`.yml`/`.json` file of a directory (of its
//! subdirectories too with `-R`), or stdin; multi-document YAML, JSON, `List` kinds.
//!
//! Unlike calicoctl, every document of every file is decoded (and, for writes, defaulted and
//! validated) before anything is sent to the datastore: one bad document means nothing is
//! applied, and the error names the file, the document and the field.

use std::io::Read;
use std::path::{Path, PathBuf};

use calico_api::decode::{DocumentError, LocatedResource, decode_and_validate, decode_documents};

/// How strictly to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Decode only (delete/get by file only need kinds and names).
    Decode,
    /// Decode, default and validate (create/apply/replace/validate).
    Validate,
}

fn is_resource_file(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

fn collect_dir(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if recursive {
                collect_dir(&p, recursive, out)?;
            }
        } else if is_resource_file(&p) {
            out.push(p);
        }
    }
    Ok(())
}

/// Reads every resource named by `filename`. Errors are complete messages.
pub fn load(
    filename: &str,
    recursive: bool,
    skip_empty: bool,
    check: Check,
) -> Result<Vec<LocatedResource>, String> {
    let mut sources: Vec<(String, String)> = Vec::new();
    if filename == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("reading stdin: {e}"))?;
        // Documents read from stdin are reported as `stdin doc N: ...`.
        sources.push(("stdin".into(), text));
    } else {
        let path = Path::new(filename);
        let files = if path.is_dir() {
            let mut files = Vec::new();
            collect_dir(path, recursive, &mut files)?;
            if files.is_empty() && !skip_empty {
                return Err(format!("no resources specified in directory {filename}"));
            }
            files
        } else {
            vec![path.to_path_buf()]
        };
        for f in files {
            let text =
                std::fs::read_to_string(&f).map_err(|e| format!("open {}: {e}", f.display()))?;
            sources.push((f.display().to_string(), text));
        }
    }
    let mut out = Vec::new();
    for (name, text) in sources {
        let decoded = match check {
            Check::Decode => decode_documents(&name, &text),
            Check::Validate => decode_and_validate(&name, &text),
        };
        match decoded {
            Ok(rs) => out.extend(rs),
            Err(DocumentError::Empty { .. }) if skip_empty => {}
            Err(DocumentError::Empty { file }) => {
                return Err(format!("no resources specified in file {file}"));
            }
            Err(e) => return Err(massage(&e.to_string())),
        }
    }
    Ok(out)
}

/// calicoctl's `MassageError`: an unknown field is reported as "field in document is not
/// recognized or is in the wrong location".
fn massage(msg: &str) -> String {
    if let Some(i) = msg.find("unknown field `") {
        let rest = &msg[i + "unknown field `".len()..];
        if let Some(end) = rest.find('`') {
            return format!(
                "{}field in document is not recognized or is in the wrong location: {}",
                &msg[..i],
                &rest[..end]
            );
        }
    }
    msg.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_massaged() {
        assert_eq!(
            massage("f.yaml doc 1: spec: unknown field `cidrx`, expected one of `cidr`"),
            "f.yaml doc 1: spec: field in document is not recognized or is in the wrong location: cidrx"
        );
        assert_eq!(massage("other"), "other");
    }
}
