//! The commands: calicoctl's `ExecuteConfigCommand` flow (`commands/common/resources.go`) and
//! the result reporting of `crud_commands.go`, `get_command.go`, `label_command.go` and
//! `version.go`, with the same messages.

use anyhow::{anyhow, bail};
use calico_api::decode::DocumentLocation;
use calico_api::{KindInfo, Resource};
use calico_client::{ApiConfig, Client, ClientError, Patch, ResourceList};
use calico_k8s::DroppedRule;
use serde_json::Value;

use crate::CrudFlags;
use crate::input::{self, Check, Doc};
use crate::k8s::{self, KubeKind};
use crate::output;
use crate::table;

/// A write command run over resources read from `-f`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create { skip_exists: bool },
    Apply,
    Replace,
    Validate,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Action::Create { .. } => "create",
            Action::Apply => "apply",
            Action::Replace => "replace",
            Action::Validate => "validate",
        }
    }
    fn past(self) -> &'static str {
        match self {
            Action::Create { .. } => "created",
            Action::Apply => "applied",
            Action::Replace => "replaced",
            Action::Validate => "validated",
        }
    }
}

/// Opens the configured datastore. Like calicoctl, a failure here prints
/// `Failed to create Calico API client: ...` and exits 1.
async fn connect(config: &str) -> Client {
    let result = async {
        let cfg = ApiConfig::load(Some(std::path::Path::new(config)))?;
        cfg.connect().await
    }
    .await;
    match result {
        Ok(ds) => Client::new(ds),
        Err(e) => {
            println!("Failed to create Calico API client: {e}");
            std::process::exit(1);
        }
    }
}

/// calicoctl's `handleNamespace`: where a resource lives given its own namespace and the
/// `-n`/`-A` flags. Returns the namespace to use ("" = all namespaces).
fn resolve_namespace(
    ki: &KindInfo,
    res_ns: &str,
    cli_ns: Option<&str>,
    all_ns: bool,
) -> Result<String, String> {
    resolve_namespace_of(ki.kind, ki.namespaced, res_ns, cli_ns, all_ns)
}

/// [`resolve_namespace`] for any kind, named `kind` in messages.
fn resolve_namespace_of(
    kind: &str,
    namespaced: bool,
    res_ns: &str,
    cli_ns: Option<&str>,
    all_ns: bool,
) -> Result<String, String> {
    let cli = cli_ns.unwrap_or("");
    if namespaced {
        if all_ns && !cli.is_empty() {
            return Err(
                "cannot use both --namespace and --all-namespaces flags at the same time".into(),
            );
        }
        Ok(match (res_ns.is_empty(), cli.is_empty()) {
            _ if all_ns => String::new(),
            (true, false) => cli.to_string(),
            (true, true) => "default".to_string(),
            (false, true) => res_ns.to_string(),
            (false, false) if res_ns != cli => {
                return Err(format!(
                    "resource namespace does not match client namespace. {res_ns} != {cli}"
                ));
            }
            (false, false) => res_ns.to_string(),
        })
    } else if !res_ns.is_empty() {
        Err(format!(
            "namespace should not be specified for a non-namespaced resource. {} is not a \
             namespaced resource",
            kind
        ))
    } else if all_ns || !cli.is_empty() {
        Err(format!("{kind} is not namespaced"))
    } else {
        Ok(String::new())
    }
}

fn lookup(kind: &str) -> anyhow::Result<&'static KindInfo> {
    if let Some(kk) = KubeKind::lookup(kind) {
        bail!(
            "resource type '{kind}' ({}) can only be created, applied, replaced, deleted and \
             read: change the Kubernetes manifest and apply it again",
            kk.display()
        );
    }
    calico_api::lookup_kind(kind).ok_or_else(|| anyhow!("resource type '{kind}' is not supported"))
}

/// A kind named on the command line: Calico's (first, so `networkpolicy` stays Calico's) or
/// one of the Kubernetes kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TargetKind {
    Calico(&'static KindInfo),
    Kube(KubeKind),
}

impl TargetKind {
    fn lookup(kind: &str) -> anyhow::Result<TargetKind> {
        if let Some(ki) = calico_api::lookup_kind(kind) {
            return Ok(TargetKind::Calico(ki));
        }
        KubeKind::lookup(kind)
            .map(TargetKind::Kube)
            .ok_or_else(|| anyhow!("resource type '{kind}' is not supported"))
    }

    fn of(doc: &Doc) -> TargetKind {
        match doc {
            Doc::Calico(r) => TargetKind::Calico(r.kind_info()),
            Doc::Kube(r) => TargetKind::Kube(KubeKind::of(r)),
        }
    }

    /// The kind as messages name it.
    fn display(self) -> &'static str {
        match self {
            TargetKind::Calico(ki) => ki.kind,
            TargetKind::Kube(kk) => kk.display(),
        }
    }

    fn namespaced(self) -> bool {
        match self {
            TargetKind::Calico(ki) => ki.namespaced,
            TargetKind::Kube(kk) => kk.namespaced(),
        }
    }

    fn resolve_namespace(
        self,
        res_ns: &str,
        cli_ns: Option<&str>,
        all_ns: bool,
    ) -> Result<String, String> {
        resolve_namespace_of(self.display(), self.namespaced(), res_ns, cli_ns, all_ns)
    }

    /// The Calico kind, namespace and name stored for the object `ns/name` of this kind
    /// (`ns` resolved).
    fn stored(self, ns: &str, name: &str) -> (&'static str, String, String) {
        match self {
            TargetKind::Calico(ki) => (ki.kind, ns.to_string(), name.to_string()),
            TargetKind::Kube(kk) => {
                let (ns, name) = kk.stored_id(ns, name);
                (kk.stored_kind(), ns, name)
            }
        }
    }
}

/// Resolves a document's namespace against `-n` and turns it into what is written: a Calico
/// resource as is; a Kubernetes object converted as calico-kube-controllers would, with the
/// rules the conversion had to leave out.
fn prepare(doc: Doc, cli_ns: Option<&str>) -> Result<(Resource, Vec<DroppedRule>), String> {
    let tk = TargetKind::of(&doc);
    match doc {
        Doc::Calico(mut res) => {
            let ns = tk.resolve_namespace(&res.metadata().namespace, cli_ns, false)?;
            res.metadata_mut().namespace = ns;
            Ok((*res, Vec::new()))
        }
        Doc::Kube(mut r) => {
            let ns = tk.resolve_namespace(k8s::namespace_of(&r), cli_ns, false)?;
            k8s::set_namespace(&mut r, ns);
            k8s::to_calico(&r)
        }
    }
}

/// Go's `%v` of a `[]error`.
fn bracketed(errs: &[&str]) -> String {
    format!("[{}]", errs.join(" "))
}

/// The kind when every resource has the same one (calicoctl's `SingleKind`).
fn single_kind<'a>(kinds: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mut kinds = kinds.peekable();
    let first = *kinds.peek()?;
    kinds.all(|k| k == first).then_some(first)
}

pub async fn write_from_files(crud: &CrudFlags, action: Action) -> anyhow::Result<()> {
    let Some(filename) = crud.filename.as_deref() else {
        bail!("a file must be given with -f/--filename (use '-' for stdin)");
    };
    let located = input::load(filename, crud.recursive, crud.skip_empty, Check::Validate)
        .map_err(|e| anyhow!("failed to execute command: {e}"))?;
    if located.is_empty() {
        println!("No resources specified");
        return Ok(());
    }
    let total = located.len();
    let kind = single_kind(located.iter().map(|d| TargetKind::of(&d.doc).display()));
    // Namespaces are resolved (and Kubernetes objects converted) for every document before the
    // datastore is touched (even before `ensure_initialized` writes its defaults), so a
    // document whose namespace conflicts with `-n` (or names one for a cluster-scoped kind)
    // stops the whole file, as a validation error does (`input` module): nothing is
    // half-applied.
    let mut resolved = Vec::with_capacity(total);
    let mut ns_errs = Vec::new();
    for ld in located {
        match prepare(ld.doc, crud.namespace.as_deref()) {
            Ok((res, dropped)) => resolved.push((ld.location, res, dropped)),
            Err(e) => ns_errs.push(format!("{}: {e}", ld.location)),
        }
    }
    if !ns_errs.is_empty() {
        bail!("failed to execute command: {}", ns_errs.join("\n"));
    }
    let resolved: Vec<(DocumentLocation, Resource)> = resolved
        .into_iter()
        .map(|(location, res, dropped)| {
            warn_dropped(&location, &res, &dropped);
            (location, res)
        })
        .collect();

    let client = match action {
        Action::Validate => None,
        _ => Some(connect(&crud.config).await),
    };
    if let Some(c) = &client {
        // calicoctl's tryEnsureInitialized: best effort, errors only logged.
        if let Err(e) = c.ensure_initialized("", "").await {
            tracing::info!("Unable to initialize datastore: {e}");
        }
    }

    // What happened to each document, in file order. The datastore can still refuse a document
    // (exists, conflict, overlap, connection lost); create and apply go on with the rest as
    // calicoctl does, replace stops at the first failure.
    let mut outcomes: Vec<(DocumentLocation, Outcome)> = Vec::with_capacity(total);
    let mut stopped = false;
    for (location, res) in resolved {
        if stopped {
            outcomes.push((location, Outcome::NotAttempted));
            continue;
        }
        let result = match (&client, action) {
            (_, Action::Validate) | (None, _) => Ok(()),
            (Some(c), Action::Create { skip_exists }) => match c.create_from_manifest(res).await {
                Err(e) if skip_exists && e.is_already_exists() => Ok(()),
                r => r.map(|_| ()),
            },
            (Some(c), Action::Apply) => c.apply(res).await.map(|_| ()),
            (Some(c), Action::Replace) => c.replace(res).await.map(|_| ()),
        };
        let outcome = match result {
            Ok(()) => Outcome::Done,
            Err(e) => {
                stopped = action == Action::Replace;
                Outcome::Failed(e.to_string())
            }
        };
        outcomes.push((location, outcome));
    }
    report_writes(action, kind, &outcomes)
}

/// Says which Kubernetes rules were left out of a converted policy. calico-kube-controllers
/// stores the policy without them and only logs it (`policyConverter.Convert`); calicoctl does
/// the same but tells the user on stderr.
fn warn_dropped(location: &DocumentLocation, res: &Resource, dropped: &[DroppedRule]) {
    for d in dropped {
        eprintln!(
            "warning: {location}: {d} was left out of {} {}",
            res.kind(),
            res.display_name()
        );
    }
}

/// The fate of one document of a write command.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Done,
    Failed(String),
    /// Replace stopped before reaching it.
    NotAttempted,
}

/// calicoctl's `reportResults`/`reportReplaceResults` messages. When the documents written are
/// exactly the leading ones, calicoctl's "Partial success: applied the first N out of M" is
/// true and printed as is; when a document in the middle was refused and later ones went in,
/// that sentence would be false, so the line instead says how many were written and names every
/// document that was not.
fn report_writes(
    action: Action,
    kind: Option<&str>,
    outcomes: &[(DocumentLocation, Outcome)],
) -> anyhow::Result<()> {
    let (verb, past) = (action.verb(), action.past());
    let total = outcomes.len();
    let handled = outcomes.iter().filter(|(_, o)| *o == Outcome::Done).count();
    let errs: Vec<&str> = outcomes
        .iter()
        .filter_map(|(_, o)| match o {
            Outcome::Failed(e) => Some(e.as_str()),
            _ => None,
        })
        .collect();
    // Replace reports its single error bare, the others as a list (`%v` of `[]error`).
    let err_text = if action == Action::Replace {
        errs.first().map(|e| e.to_string()).unwrap_or_default()
    } else {
        bracketed(&errs)
    };
    if handled == 0 {
        return Err(match (total, kind) {
            (1, Some(k)) => anyhow!("failed to {verb} '{k}' resource: {err_text}"),
            (_, Some(k)) => anyhow!("failed to {verb} any '{k}' resources: {err_text}"),
            _ => anyhow!("failed to {verb} any resources: {err_text}"),
        });
    }
    if errs.is_empty() {
        match kind {
            Some(k) => println!("Successfully {past} {handled} '{k}' resource(s)"),
            None => println!("Successfully {past} {handled} resource(s)"),
        }
        return Ok(());
    }
    let resources = match kind {
        Some(k) => format!("'{k}' resources"),
        None => "resources".to_string(),
    };
    let leading = outcomes[..handled].iter().all(|(_, o)| *o == Outcome::Done);
    if leading {
        println!("Partial success: {past} the first {handled} out of {total} {resources}:");
    } else {
        let missed: Vec<String> = outcomes
            .iter()
            .filter(|(_, o)| *o != Outcome::Done)
            .map(|(loc, _)| loc.to_string())
            .collect();
        println!(
            "Partial success: {past} {handled} out of {total} {resources}, not {past}: {}:",
            missed.join(", ")
        );
    }
    Err(anyhow!("hit error: {err_text}"))
}

/// One object to act on by kind/namespace/name (from arguments or a file).
struct Target {
    kind: TargetKind,
    /// As given (resolved against `-n`/`-A` later).
    namespace: String,
    /// As given; for a Kubernetes kind, the Kubernetes object's name.
    name: String,
    resource_version: String,
    /// The document it came from, with `-f`.
    location: Option<DocumentLocation>,
}

fn targets_from_args(
    kind: Option<&str>,
    names: &[String],
) -> anyhow::Result<(TargetKind, Vec<Target>)> {
    let Some(kind) = kind else {
        bail!("no resources specified: give -f FILE or KIND [NAME...]");
    };
    let tk = TargetKind::lookup(kind)?;
    if names.iter().any(String::is_empty) {
        bail!("resource name may not be empty");
    }
    let targets = names
        .iter()
        .map(|n| Target {
            kind: tk,
            namespace: String::new(),
            name: n.clone(),
            resource_version: String::new(),
            location: None,
        })
        .collect();
    Ok((tk, targets))
}

fn targets_from_file(crud: &CrudFlags, filename: &str) -> anyhow::Result<Vec<Target>> {
    let located = input::load(filename, crud.recursive, crud.skip_empty, Check::Decode)
        .map_err(|e| anyhow!("failed to execute command: {e}"))?;
    Ok(located
        .into_iter()
        .map(|ld| {
            let kind = TargetKind::of(&ld.doc);
            let (m, resource_version) = match &ld.doc {
                Doc::Calico(r) => (r.metadata(), r.metadata().resource_version.clone()),
                // A Kubernetes resourceVersion is the API server's, not the datastore's.
                Doc::Kube(r) => (r.metadata(), String::new()),
            };
            Target {
                kind,
                namespace: m.namespace.clone(),
                name: m.name.clone(),
                resource_version,
                location: Some(ld.location.clone()),
            }
        })
        .collect())
}

pub async fn delete(
    crud: &CrudFlags,
    skip_not_exists: bool,
    kind: Option<String>,
    names: Vec<String>,
) -> anyhow::Result<()> {
    let targets = match crud.filename.as_deref() {
        Some(f) => targets_from_file(crud, f)?,
        None => targets_from_args(kind.as_deref(), &names)?.1,
    };
    if targets.is_empty() {
        bail!("no resources specified");
    }
    let kind = if crud.filename.is_some() {
        single_kind(targets.iter().map(|t| t.kind.display()))
    } else {
        targets.first().map(|t| t.kind.display())
    };
    // A file whose document has a namespace conflict deletes nothing (as for writes); from
    // arguments every target shares the kind and `-n`, so the error is reported per target.
    if crud.filename.is_some() {
        let bad: Vec<String> = targets
            .iter()
            .filter_map(|t| {
                let e = t
                    .kind
                    .resolve_namespace(&t.namespace, crud.namespace.as_deref(), false)
                    .err()?;
                Some(match &t.location {
                    Some(loc) => format!("{loc}: {e}"),
                    None => e,
                })
            })
            .collect();
        if !bad.is_empty() {
            bail!("failed to execute command: {}", bad.join("\n"));
        }
    }
    let client = connect(&crud.config).await;
    let mut handled = 0;
    let mut errs = Vec::new();
    // Namespaces whose contents go after every listed object is deleted, so a file holding a
    // Namespace and its ServiceAccounts and policies deletes each of them as listed.
    let mut emptied = Vec::new();
    for t in targets {
        let ns = match t
            .kind
            .resolve_namespace(&t.namespace, crud.namespace.as_deref(), false)
        {
            Ok(ns) => ns,
            Err(e) => {
                errs.push(e);
                continue;
            }
        };
        let (stored_kind, stored_ns, stored_name) = t.kind.stored(&ns, &t.name);
        let rv = (!t.resource_version.is_empty()).then_some(t.resource_version.as_str());
        let deleted = match client
            .delete(stored_kind, &stored_ns, &stored_name, rv)
            .await
        {
            Ok(_) => true,
            Err(e) if skip_not_exists && e.is_does_not_exist() => true,
            Err(e) => {
                errs.push(e.to_string());
                false
            }
        };
        if deleted {
            handled += 1;
            if t.kind == TargetKind::Kube(KubeKind::Namespace) {
                emptied.push(t.name);
            }
        }
    }
    for ns in emptied {
        errs.extend(delete_namespace_contents(&client, &ns).await);
    }
    if handled > 0 {
        match kind {
            Some(k) => println!("Successfully deleted {handled} '{k}' resource(s)"),
            None => println!("Successfully deleted {handled} resource(s)"),
        }
    }
    if !errs.is_empty() {
        let lines: Vec<String> = errs
            .iter()
            .map(|e| match kind {
                Some(k) => format!("Failed to delete '{k}' resource: {e}"),
                None => format!("Failed to delete resource: {e}"),
            })
            .collect();
        bail!("{}", lines.join("\n"));
    }
    Ok(())
}

/// Deleting a Kubernetes namespace deletes its NetworkPolicies and ServiceAccounts, and the
/// controllers then delete what they had written for them: every `knp.default.*` policy of the
/// namespace and every `ksa.<namespace>.*` profile. Returns what could not be deleted (an object
/// already gone is fine: something else removed it first).
async fn delete_namespace_contents(client: &Client, namespace: &str) -> Vec<String> {
    let mut errs = Vec::new();
    for kk in [KubeKind::NetworkPolicy, KubeKind::ServiceAccount] {
        let (scope, prefix) = kk.stored_scope(namespace);
        let list = match client.list(kk.stored_kind(), scope.as_deref()).await {
            Ok(l) => l,
            Err(e) => {
                errs.push(e.to_string());
                continue;
            }
        };
        for r in list.items {
            let m = r.metadata();
            if !m.name.starts_with(&prefix) {
                continue;
            }
            match client.delete(r.kind(), &m.namespace, &m.name, None).await {
                Ok(_) => {}
                Err(e) if e.is_does_not_exist() => {}
                Err(e) => errs.push(e.to_string()),
            }
        }
    }
    errs
}

pub struct GetArgs {
    pub crud: CrudFlags,
    pub output: String,
    pub all_namespaces: bool,
    pub export: bool,
    pub kind: Option<String>,
    pub names: Vec<String>,
}

/// How `get` prints.
enum Printer {
    Yaml,
    Json,
    Name,
    Table {
        wide: bool,
        headings: Option<Vec<String>>,
    },
}

fn printer(output: &str) -> anyhow::Result<Printer> {
    Ok(match output {
        "yaml" | "yml" => Printer::Yaml,
        "json" => Printer::Json,
        "name" => Printer::Name,
        "ps" => Printer::Table {
            wide: false,
            headings: None,
        },
        "wide" => Printer::Table {
            wide: true,
            headings: None,
        },
        other => match other.split_once('=') {
            Some(("custom-columns", "")) => bail!("need to specify at least one column"),
            Some(("custom-columns", cols)) => Printer::Table {
                wide: false,
                headings: Some(cols.split(',').map(str::to_string).collect()),
            },
            Some(("go-template" | "go-template-file", _)) => {
                bail!("output format '{other}' is not supported: Go templates are not implemented")
            }
            _ => bail!("unrecognized output format '{other}'"),
        },
    })
}

/// What `get` found for one request: an object, or a list of a kind.
enum Found {
    One(Box<Resource>),
    List(ResourceList),
}

impl Found {
    fn kind(&self) -> &'static str {
        match self {
            Found::One(r) => r.kind(),
            Found::List(l) => l.kind.kind,
        }
    }
    fn to_json(&self) -> Value {
        match self {
            Found::One(r) => calico_client::codec::to_calico_json(r),
            Found::List(l) => l.to_json_value(),
        }
    }
    fn objects(&self) -> Vec<Value> {
        match self {
            Found::One(r) => vec![calico_client::codec::to_calico_json(r)],
            Found::List(l) => l
                .items
                .iter()
                .map(calico_client::codec::to_calico_json)
                .collect(),
        }
    }
}

/// `--export`: drop what belongs to this cluster.
fn export(r: &mut Resource) {
    let m = r.metadata_mut();
    m.namespace.clear();
    m.uid.clear();
    m.resource_version.clear();
    m.creation_timestamp = None;
    m.deletion_timestamp = None;
    m.deletion_grace_period_seconds = None;
}

pub async fn get(args: GetArgs) -> anyhow::Result<()> {
    let print_namespace = args.all_namespaces || args.crud.namespace.is_some();
    let printer = printer(&args.output)?;
    let targets = match args.crud.filename.as_deref() {
        Some(f) => targets_from_file(&args.crud, f)?,
        None => {
            let (kind, mut t) = targets_from_args(args.kind.as_deref(), &args.names)?;
            if t.is_empty() {
                // No names: list the kind.
                t.push(Target {
                    kind,
                    namespace: String::new(),
                    name: String::new(),
                    resource_version: String::new(),
                    location: None,
                });
            }
            t
        }
    };
    let names_given = targets.iter().any(|t| !t.name.is_empty());
    let client = connect(&args.crud.config).await;
    let mut found = Vec::new();
    let mut errs = Vec::new();
    for t in targets {
        let ns = match t.kind.resolve_namespace(
            &t.namespace,
            args.crud.namespace.as_deref(),
            args.all_namespaces,
        ) {
            Ok(ns) => ns,
            Err(e) => {
                errs.push(e);
                continue;
            }
        };
        if t.name.is_empty() {
            match list_kind(&client, t.kind, &ns).await {
                Ok(l) => found.push(Found::List(l)),
                Err(e) => errs.push(e.to_string()),
            }
        } else {
            if t.kind.namespaced() && ns.is_empty() {
                errs.push("cannot use --all-namespace flag for getting a single resource".into());
                continue;
            }
            let (kind, stored_ns, name) = t.kind.stored(&ns, &t.name);
            match client.get(kind, &stored_ns, &name).await {
                Ok(mut r) => {
                    if args.export && names_given {
                        export(&mut r);
                    }
                    found.push(Found::One(Box::new(r)));
                }
                Err(e) => errs.push(e.to_string()),
            }
        }
    }
    print_found(&client, &printer, &found, print_namespace).await?;
    if !errs.is_empty() {
        bail!("{}", errs.join("\n"));
    }
    Ok(())
}

/// Every object of a kind in `ns` ("" = all namespaces). For a Kubernetes kind, the Calico
/// objects the controllers write for it (`knp.default.*` policies, `kns.*` / `ksa.<ns>.*`
/// profiles).
async fn list_kind(
    client: &Client,
    kind: TargetKind,
    ns: &str,
) -> Result<ResourceList, ClientError> {
    match kind {
        TargetKind::Calico(ki) => {
            let scope = (!ns.is_empty()).then_some(ns);
            client.list(ki.kind, scope).await
        }
        TargetKind::Kube(kk) => {
            let (scope, prefix) = kk.stored_scope(ns);
            let mut list = client.list(kk.stored_kind(), scope.as_deref()).await?;
            list.items
                .retain(|r| r.metadata().name.starts_with(&prefix));
            Ok(list)
        }
    }
}

async fn print_found(
    client: &Client,
    printer: &Printer,
    found: &[Found],
    print_namespace: bool,
) -> anyhow::Result<()> {
    let mut out = String::new();
    match printer {
        Printer::Yaml | Printer::Json => {
            // calicoctl marshals one object alone and anything else (also nothing) as a list.
            let v = if found.len() == 1 {
                found[0].to_json()
            } else {
                Value::Array(found.iter().map(Found::to_json).collect())
            };
            out = match printer {
                Printer::Yaml => output::to_yaml(&v),
                _ => output::to_json(&v),
            };
        }
        Printer::Name => {
            for f in found {
                for o in f.objects() {
                    let name = o
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    out.push_str(&format!("{}/{name}\n", f.kind().to_ascii_lowercase()));
                }
            }
        }
        Printer::Table { wide, headings } => {
            let needs_as = found.iter().any(|f| f.kind() == "Node");
            let ctx = table::CellContext {
                default_as: if needs_as {
                    default_as_number(client).await
                } else {
                    String::new()
                },
            };
            for f in found {
                let cols = table::columns(f.kind());
                let heads: Vec<String> = match headings {
                    Some(h) => h.clone(),
                    None => (if *wide { cols.wide } else { cols.default })
                        .iter()
                        .map(|s| s.to_string())
                        .collect(),
                };
                out.push_str(
                    &table::render(f.kind(), &f.objects(), &heads, print_namespace, &ctx)
                        .map_err(|e| anyhow!(e))?,
                );
            }
        }
    }
    write_stdout(&out)
}

/// Writes `get` output. A reader that went away (`calicoctl get ... | head -1`) ends the output
/// quietly, as the SIGPIPE that stops Go's calicoctl does, instead of `print!` panicking.
fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.map_err(|e| anyhow!("writing output: {e}")),
    }
}

/// calicoctl's `config "asnumber"` template function.
async fn default_as_number(client: &Client) -> String {
    match client.get("BGPConfiguration", "", "default").await {
        Ok(bgp) => bgp
            .to_json_value()
            .pointer("/spec/asNumber")
            .filter(|v| !v.is_null())
            .map(table::go_value)
            .unwrap_or_else(|| "64512".into()),
        Err(e) if e.is_does_not_exist() => "64512".into(),
        Err(_) => "unknown".into(),
    }
}

pub async fn patch(
    kind: &str,
    name: &str,
    patch_text: &str,
    patch_type: &str,
    config: &str,
    namespace: Option<String>,
) -> anyhow::Result<()> {
    let ki = lookup(kind)?;
    if name.is_empty() {
        bail!("resource name may not be empty");
    }
    let ns = resolve_namespace(ki, "", namespace.as_deref(), false).map_err(|e| anyhow!(e))?;
    let patch = Patch::parse(patch_type, patch_text).map_err(|e| anyhow!("hit error: {e}"))?;
    let client = connect(config).await;
    match client.patch(ki.kind, &ns, name, &patch).await {
        Ok(_) => {
            println!("Successfully patched 1 '{}' resource", ki.kind);
            Ok(())
        }
        Err(e) => Err(anyhow!("hit error: {e}")),
    }
}

pub async fn label(
    kind: &str,
    name: &str,
    label: &str,
    overwrite: bool,
    remove: bool,
    config: &str,
    namespace: Option<String>,
) -> anyhow::Result<()> {
    let (key, value) = if remove {
        (label.to_string(), String::new())
    } else {
        match label.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => bail!("invalid label {label}"),
        }
    };
    let ki = lookup(kind)?;
    let ns = resolve_namespace(ki, "", namespace.as_deref(), false)
        .map_err(|e| anyhow!("failed to get {kind} {name}, error {e}"))?;
    let client = connect(config).await;
    let mut res = client
        .get(ki.kind, &ns, name)
        .await
        .map_err(|e| anyhow!("failed to get {kind} {name}, error {e}"))?;
    let labels = &mut res.metadata_mut().labels;
    let mut overwritten = false;
    if remove {
        if labels.remove(&key).is_none() {
            bail!("cannot remove label of {kind} {name}, key {key} does not exist");
        }
    } else {
        match labels.get(&key) {
            Some(old) if overwrite || *old == value => {
                labels.insert(key.clone(), value);
                overwritten = true;
            }
            Some(_) => bail!(
                "failed to update label of {kind} {name}, key {key} is already present. please \
                 use '--overwrite' to set a new value"
            ),
            None => {
                labels.insert(key.clone(), value);
            }
        }
    }
    // The read resourceVersion makes this a compare-and-swap: a concurrent change fails.
    client.replace(res).await.map_err(|e: ClientError| {
        anyhow!("failed to update {kind} {name}, label not changed: {e}")
    })?;
    if remove {
        println!("Successfully removed label {key} from {kind} {name}");
    } else if overwritten {
        println!("Successfully updated label {key} on {kind} {name}");
    } else {
        println!("Successfully set label {key} on {kind} {name}");
    }
    Ok(())
}

pub async fn version(client_only: bool, config: Option<String>) -> anyhow::Result<()> {
    println!("Client Version:    v{}", env!("CARGO_PKG_VERSION"));
    println!(
        "Git commit:        {}",
        option_env!("CALICO_GIT_COMMIT").unwrap_or("unknown")
    );
    if client_only {
        return Ok(());
    }
    let path = config.unwrap_or_else(|| crate::DEFAULT_CONFIG.to_string());
    let cfg = ApiConfig::load(Some(std::path::Path::new(&path)))?;
    let ds = match cfg.connect().await {
        Ok(ds) => ds,
        Err(ClientError::Datastore(_)) => {
            println!("Unable to detect installed Calico version");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let client = Client::new(ds);
    match client.get("ClusterInformation", "", "default").await {
        Ok(ci) => {
            let v = ci.to_json_value();
            let field = |f: &str| {
                v.pointer(&format!("/spec/{f}"))
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .unwrap_or("unknown")
                    .to_string()
            };
            println!("Cluster Version:   {}", field("calicoVersion"));
            println!("Cluster Type:      {}", field("clusterType"));
            Ok(())
        }
        Err(e) => Err(anyhow!("unable to retrieve Cluster Version or Type: {e}")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn namespace_rules_follow_handle_namespace() {
        let np = calico_api::kind_info("NetworkPolicy").unwrap();
        let pool = calico_api::kind_info("IPPool").unwrap();
        assert_eq!(resolve_namespace(np, "", None, false).unwrap(), "default");
        assert_eq!(resolve_namespace(np, "", Some("a"), false).unwrap(), "a");
        assert_eq!(resolve_namespace(np, "b", None, false).unwrap(), "b");
        assert_eq!(resolve_namespace(np, "b", None, true).unwrap(), "");
        assert!(
            resolve_namespace(np, "b", Some("a"), false)
                .unwrap_err()
                .contains("b != a")
        );
        assert!(resolve_namespace(np, "", Some("a"), true).is_err());
        assert_eq!(resolve_namespace(pool, "", None, false).unwrap(), "");
        assert_eq!(
            resolve_namespace(pool, "", Some("x"), false).unwrap_err(),
            "IPPool is not namespaced"
        );
        assert!(resolve_namespace(pool, "x", None, false).is_err());
    }

    #[test]
    fn single_kind_detection() {
        assert_eq!(single_kind(["A", "A"].into_iter()), Some("A"));
        assert_eq!(single_kind(["A", "B"].into_iter()), None);
        assert_eq!(single_kind([].into_iter()), None);
    }
}
