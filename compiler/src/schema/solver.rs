//! The typed solver: a validated `SolverParameter` with Caffe's defaults,
//! the checks `Solver::Init` and the learning-rate code make, and the nets it
//! names (files resolved to candidate paths, inline nets upgraded).

use std::path::{Path, PathBuf};

use lvc_grammar::{Message, Span};

use super::descriptor::SOLVER_PARAMETER;
use super::extract::{extract_net, phase};
use super::net::{NetDef, NetFormat, NetState, Phase};
use super::suggest::did_you_mean;
use super::view::{ParamView, Spanned};
use super::{finish, kind, parse_error_diagnostics, prepare_net_tree, validate, LoadOptions};
use crate::diag::{Diagnostic, Diagnostics};
use crate::source::SourceFile;

/// `lr_policy` (a string in caffe.proto, not an enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LrPolicy {
    Fixed,
    Step,
    Exp,
    Inv,
    Multistep,
    Poly,
    Sigmoid,
}

impl LrPolicy {
    pub const NAMES: &'static [(&'static str, LrPolicy)] = &[
        ("fixed", LrPolicy::Fixed),
        ("step", LrPolicy::Step),
        ("exp", LrPolicy::Exp),
        ("inv", LrPolicy::Inv),
        ("multistep", LrPolicy::Multistep),
        ("poly", LrPolicy::Poly),
        ("sigmoid", LrPolicy::Sigmoid),
    ];
}

impl LrPolicy {
    /// The settings the policy's formula reads, each with why and an
    /// example line.
    pub fn needs(self) -> &'static [(&'static str, &'static str, &'static str)] {
        const STEPSIZE: (&str, &str, &str) =
            ("stepsize", "Caffe checks stepsize > 0", "stepsize: 10000");
        const GAMMA: (&str, &str, &str) =
            ("gamma", "unset it is 0 and the formula degenerates", "gamma: 0.1");
        const POWER: (&str, &str, &str) =
            ("power", "unset it is 0 and the rate never changes", "power: 0.75");
        match self {
            LrPolicy::Fixed => &[],
            LrPolicy::Step => &[STEPSIZE],
            LrPolicy::Exp => &[GAMMA],
            LrPolicy::Inv => &[GAMMA, POWER],
            LrPolicy::Multistep => {
                &[("stepvalue", "without any the rate never changes", "stepvalue: 10000")]
            }
            LrPolicy::Poly => &[POWER],
            LrPolicy::Sigmoid => &[GAMMA, STEPSIZE],
        }
    }
}

/// The solver `type` string (or the deprecated `solver_type` enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SolverType {
    Sgd,
    Nesterov,
    AdaGrad,
    RmsProp,
    AdaDelta,
    Adam,
}

impl SolverType {
    /// Type strings as Caffe registers them, with the `solver_type` enum
    /// name each one upgrades from.
    pub const NAMES: &'static [(&'static str, &'static str, SolverType)] = &[
        ("SGD", "SGD", SolverType::Sgd),
        ("Nesterov", "NESTEROV", SolverType::Nesterov),
        ("AdaGrad", "ADAGRAD", SolverType::AdaGrad),
        ("RMSProp", "RMSPROP", SolverType::RmsProp),
        ("AdaDelta", "ADADELTA", SolverType::AdaDelta),
        ("Adam", "ADAM", SolverType::Adam),
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Regularization {
    L1,
    L2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SolverMode {
    Cpu,
    Gpu,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotFormat {
    Hdf5,
    BinaryProto,
}

/// A net file named by the solver (`net:`, `train_net:`, `test_net:`).
#[derive(Debug, Clone, PartialEq)]
pub struct NetFile {
    /// The path as written, with its span.
    pub written: Spanned<String>,
    /// Where to look, in order: next to the solver file, then relative to
    /// the current directory (Caffe itself only uses the latter). An
    /// absolute path is its only candidate.
    pub candidates: Vec<PathBuf>,
}

impl NetFile {
    /// The first candidate that is a file: where `lvc train` and `lvc check`
    /// read the net from.
    pub fn found(&self) -> Option<&Path> {
        self.candidates.iter().find(|p| p.is_file()).map(PathBuf::as_path)
    }

    /// `lvc::solver::net_not_found` at the path as written, saying where it
    /// was looked for.
    pub fn not_found(&self, field: &str) -> Diagnostic {
        let tried: Vec<String> = self.candidates.iter().map(|p| p.display().to_string()).collect();
        Diagnostic::error(
            "lvc::solver::net_not_found",
            format!("net file '{}' not found (tried {})", self.written.value, tried.join(", ")),
        )
        .with_label(self.written.span, format!("`{field}` names no file"))
        .with_help(
            "give the net's path relative to the solver's folder (or to the current directory), or an absolute path",
        )
    }
}

/// Where a net comes from.
#[derive(Debug, Clone)]
pub enum NetSource {
    File(NetFile),
    /// `net_param { … }` / `train_net_param` / `test_net_param`, upgraded.
    Inline(Box<NetDef>),
}

/// Fields of a `NetState` the solver sets (`train_state`, `test_state`);
/// merged over the phase's base state as protobuf's `MergeFrom` does.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StateOverride {
    pub phase: Option<Phase>,
    pub level: Option<i64>,
    pub stages: Vec<String>,
}

impl StateOverride {
    fn of(view: ParamView<'_>) -> Self {
        StateOverride {
            phase: view.ident("phase").and_then(|p| phase(p.value)),
            level: view.int("level").map(|l| l.value),
            stages: view.strings("stage").into_iter().map(|s| s.value.to_string()).collect(),
        }
    }
    /// `{phase: base}` merged with this override (scalars replace, stages
    /// append).
    pub fn state_for(&self, base: Phase) -> NetState {
        NetState {
            phase: self.phase.unwrap_or(base),
            level: self.level.unwrap_or(0),
            stages: self.stages.clone(),
        }
    }
}

/// One test-net instance, in Caffe's order: every `test_net_param`, every
/// `test_net`, then the generic `net`/`net_param` once per remaining
/// `test_iter`.
#[derive(Debug, Clone)]
pub struct TestNet {
    pub source: NetSource,
    pub test_iter: i64,
    pub state: NetState,
}

/// A net the solver builds, with the field that names it and the state
/// Caffe builds it in: the train net, then each test-net instance.
#[derive(Debug, Clone)]
pub struct SolverNet {
    /// `net`, `train_net_param`, `test_net`, …
    pub field: &'static str,
    pub source: NetSource,
    pub state: NetState,
}

/// A solver with Caffe's defaults applied.
#[derive(Debug, Clone)]
pub struct SolverDef {
    pub train_net: NetSource,
    pub train_state: NetState,
    pub test_nets: Vec<TestNet>,
    pub test_interval: i64,
    pub test_initialization: bool,
    pub test_compute_loss: bool,
    pub base_lr: f64,
    pub lr_policy: LrPolicy,
    pub gamma: f64,
    pub power: f64,
    pub stepsize: i64,
    pub stepvalue: Vec<i64>,
    pub max_iter: i64,
    pub momentum: f64,
    pub momentum2: f64,
    pub delta: f64,
    pub rms_decay: f64,
    pub weight_decay: f64,
    pub regularization: Regularization,
    pub solver_type: SolverType,
    pub iter_size: i64,
    pub clip_gradients: f64,
    /// -1 = seed from the clock.
    pub random_seed: i64,
    pub display: i64,
    pub average_loss: i64,
    pub debug_info: bool,
    pub snapshot: i64,
    /// Default: the solver path without its extension.
    pub snapshot_prefix: String,
    pub snapshot_diff: bool,
    pub snapshot_after_train: bool,
    pub snapshot_format: SnapshotFormat,
    pub solver_mode: SolverMode,
    pub device_id: i64,
    pub weights: Vec<String>,
    /// The validated solver message, for spans of any field.
    pub body: Message,
}

impl SolverDef {
    pub fn view(&self) -> ParamView<'_> {
        ParamView::of(&self.body)
    }
}

/// Reads a `.prototxt` solver: parse, validate against `SolverParameter`,
/// upgrade `solver_type`, check the net fields and settings the way Caffe
/// does, and upgrade inline nets. Net files are not read here: their
/// candidate paths are returned for the caller to load.
pub fn load_solver(source: &SourceFile, opts: &LoadOptions) -> (Option<SolverDef>, Diagnostics) {
    let (def, _, diags) = load_solver_nets(source, opts);
    (def, diags)
}

/// [`load_solver`], also giving the nets the solver names: every one that
/// could be read even when some other setting is wrong (what `lvc check`
/// checks next).
pub fn load_solver_nets(
    source: &SourceFile,
    opts: &LoadOptions,
) -> (Option<SolverDef>, Vec<SolverNet>, Diagnostics) {
    let mut tree = match lvc_grammar::parse(&source.text) {
        Ok(tree) => tree,
        Err(err) => return (None, Vec::new(), parse_error_diagnostics(&err)),
    };
    let mut diags = Diagnostics::new();
    if let Some(diag) = kind::not_a_solver(&tree) {
        diags.push(diag);
        return (None, Vec::new(), diags);
    }
    validate::validate(&mut tree, &SOLVER_PARAMETER, opts, &mut diags);
    let mut nets = Vec::new();
    let solver = SolverReader { source, opts, diags: &mut diags }.read(tree, &mut nets);
    match solver {
        Some(solver) => {
            let (def, diags) = finish(solver, diags);
            (def, nets, diags)
        }
        None => (None, nets, diags),
    }
}

/// The fields that can name the train net (exactly one of them is given).
const TRAIN_NET_FIELDS: [&str; 4] = ["net", "net_param", "train_net", "train_net_param"];

struct SolverReader<'a> {
    source: &'a SourceFile,
    opts: &'a LoadOptions,
    diags: &'a mut Diagnostics,
}

impl SolverReader<'_> {
    /// The solver, and into `nets` every net it names that could be read.
    fn read(mut self, body: Message, nets: &mut Vec<SolverNet>) -> Option<SolverDef> {
        let v = ParamView::of(&body);
        let solver_type = self.solver_type(v);
        let lr_policy = self.lr_policy(v);
        let regularization = self.regularization(v);
        // The generic net (`net` / `net_param`) serves as the train net and
        // as every generic test-net instance; read (and upgrade) it once.
        let generic_field = ["net_param", "net"].into_iter().find(|f| v.has(f));
        let generic = generic_field.and_then(|f| self.net_source(v, f));
        let train_net = self.train_net(v, generic.as_ref());
        let test_nets = self.test_nets(v, generic_field.map(|_| generic));
        let train_state = StateOverride::of(v.sub("train_state")).state_for(Phase::Train);
        if let Some(source) = &train_net {
            let field = TRAIN_NET_FIELDS.into_iter().find(|f| v.has(f)).unwrap_or("net");
            nets.push(SolverNet { field, source: source.clone(), state: train_state.clone() });
        }
        // Caffe's order (see `test_nets`): inline, files, then the generic net.
        let inline = v.subs("test_net_param").len();
        let files = v.strings("test_net").len();
        for (i, test) in test_nets.iter().flatten().enumerate() {
            let field = match i {
                i if i < inline => "test_net_param",
                i if i < inline + files => "test_net",
                _ => generic_field.unwrap_or("net"),
            };
            nets.push(SolverNet { field, source: test.source.clone(), state: test.state.clone() });
        }
        let int = |name: &str, default: i64| v.int(name).map_or(default, |x| x.value);
        let float = |name: &str, default: f64| v.float(name).map_or(default, |x| x.value);
        let flag = |name: &str, default: bool| v.bool(name).map_or(default, |x| x.value);
        let stepvalue: Vec<i64> = v.ints("stepvalue").into_iter().map(|s| s.value).collect();
        let lr_policy = lr_policy?;
        self.check_policy_settings(v, lr_policy, &stepvalue);
        Some(SolverDef {
            train_net: train_net?,
            train_state,
            test_nets: test_nets?,
            test_interval: int("test_interval", 0),
            test_initialization: flag("test_initialization", true),
            test_compute_loss: flag("test_compute_loss", false),
            base_lr: float("base_lr", 0.0),
            lr_policy,
            gamma: float("gamma", 0.0),
            power: float("power", 0.0),
            stepsize: int("stepsize", 0),
            stepvalue,
            max_iter: int("max_iter", 0),
            momentum: float("momentum", 0.0),
            momentum2: float("momentum2", 0.999),
            delta: float("delta", 1e-8),
            rms_decay: float("rms_decay", 0.99),
            weight_decay: float("weight_decay", 0.0),
            regularization: regularization?,
            solver_type: solver_type?,
            iter_size: int("iter_size", 1),
            clip_gradients: float("clip_gradients", -1.0),
            random_seed: int("random_seed", -1),
            display: int("display", 0),
            average_loss: int("average_loss", 1),
            debug_info: flag("debug_info", false),
            snapshot: int("snapshot", 0),
            snapshot_prefix: snapshot_prefix(
                &self.source.path,
                v.string("snapshot_prefix").map(|s| s.value),
            ),
            snapshot_diff: flag("snapshot_diff", false),
            snapshot_after_train: flag("snapshot_after_train", true),
            snapshot_format: match v.ident("snapshot_format").map(|s| s.value) {
                Some("HDF5") => SnapshotFormat::Hdf5,
                _ => SnapshotFormat::BinaryProto,
            },
            solver_mode: match v.ident("solver_mode").map(|s| s.value) {
                Some("CPU") => SolverMode::Cpu,
                _ => SolverMode::Gpu,
            },
            device_id: int("device_id", 0),
            weights: v.strings("weights").into_iter().map(|s| s.value.to_string()).collect(),
            body,
        })
    }

    /// `type` string, or the deprecated `solver_type` enum upgraded to it
    /// (`UpgradeSolverType`); both set is an error.
    fn solver_type(&mut self, v: ParamView<'_>) -> Option<SolverType> {
        let legacy = v.ident("solver_type");
        let written = v.string("type");
        if let (Some(legacy), Some(written)) = (&legacy, &written) {
            self.diags.push(
                Diagnostic::error(
                    "lvc::schema::solver_type_conflict",
                    "Failed to upgrade solver: old solver_type field (enum) and new type field (string) cannot be both specified.",
                )
                .with_label(written.span, "new `type`")
                .with_label(legacy.span, "deprecated `solver_type`")
                .with_help("remove `solver_type`"),
            );
            return None;
        }
        if let Some(legacy) = legacy {
            // The validator admitted only SolverType names.
            return SolverType::NAMES
                .iter()
                .find(|(_, e, _)| *e == legacy.value)
                .map(|&(_, _, t)| t);
        }
        let Some(written) = written else {
            return Some(SolverType::Sgd);
        };
        if let Some(&(_, _, t)) = SolverType::NAMES.iter().find(|(s, _, _)| *s == written.value) {
            return Some(t);
        }
        let names: Vec<&str> = SolverType::NAMES.iter().map(|&(s, _, _)| s).collect();
        self.diags.push(
            Diagnostic::error(
                "lvc::schema::solver_type",
                format!("Unknown solver type: {}", written.value),
            )
            .with_label(written.span, "not a Caffe solver")
            .with_help(did_you_mean(
                written.value,
                &names,
                "solver types (case matters)",
            )),
        );
        None
    }

    fn lr_policy(&mut self, v: ParamView<'_>) -> Option<LrPolicy> {
        let names: Vec<&str> = LrPolicy::NAMES.iter().map(|&(s, _)| s).collect();
        let Some(policy) = v.string("lr_policy") else {
            self.diags.push(
                Diagnostic::error("lvc::schema::lr_policy", "no `lr_policy`: Caffe stops at the first iteration with \"Unknown learning rate policy: \"")
                    .with_help(format!("add e.g. `lr_policy: \"fixed\"`; {}", did_you_mean("", &names, "policies"))),
            );
            return None;
        };
        if let Some(&(_, p)) = LrPolicy::NAMES.iter().find(|(s, _)| *s == policy.value) {
            return Some(p);
        }
        self.diags.push(
            Diagnostic::error(
                "lvc::schema::lr_policy",
                format!("Unknown learning rate policy: {}", policy.value),
            )
            .with_label(policy.span, "not a Caffe lr_policy")
            .with_help(did_you_mean(policy.value, &names, "policies")),
        );
        None
    }

    /// Settings each policy reads (`SGDSolver::GetLearningRate`). Caffe
    /// checks only `stepsize > 0`; an unset `gamma`/`power` is 0 there and
    /// silently makes the schedule something else (exp drops to 0, inv and
    /// poly stay fixed), so each is an error here too.
    fn check_policy_settings(&mut self, v: ParamView<'_>, policy: LrPolicy, stepvalue: &[i64]) {
        let policy_span = v.value_span("lr_policy");
        let name = LrPolicy::NAMES.iter().find(|(_, p)| *p == policy).map_or("", |(n, _)| n);
        for &(field, why, example) in policy.needs() {
            let missing = match field {
                "stepsize" => v.int("stepsize").is_none_or(|s| s.value <= 0),
                "stepvalue" => stepvalue.is_empty(),
                _ => !v.has(field),
            };
            if !missing {
                continue;
            }
            let d = Diagnostic::error(
                "lvc::schema::lr_policy",
                format!("lr_policy \"{name}\" needs `{field}`: {why}"),
            )
            .with_help(format!("add `{example}` to the solver"));
            self.diags.push(match policy_span {
                Some(span) => d.with_label(span, "this policy"),
                None => d,
            });
        }
    }

    fn regularization(&mut self, v: ParamView<'_>) -> Option<Regularization> {
        match v.string("regularization_type") {
            None => Some(Regularization::L2),
            Some(r) if r.value == "L2" => Some(Regularization::L2),
            Some(r) if r.value == "L1" => Some(Regularization::L1),
            Some(r) => {
                self.diags.push(
                    Diagnostic::error(
                        "lvc::schema::regularization",
                        format!("Unknown regularization type: {}", r.value),
                    )
                    .with_label(r.span, "not L1 or L2")
                    .with_help(did_you_mean(
                        r.value,
                        &["L1", "L2"],
                        "regularization types",
                    )),
                );
                None
            }
        }
    }

    /// Exactly one of `net`, `net_param`, `train_net`, `train_net_param`.
    fn train_net(&mut self, v: ParamView<'_>, generic: Option<&NetSource>) -> Option<NetSource> {
        let given: Vec<&str> = TRAIN_NET_FIELDS.into_iter().filter(|f| v.has(f)).collect();
        match given.as_slice() {
            [] => {
                self.diags.push(
                    Diagnostic::error(
                        "lvc::schema::solver_net",
                        "SolverParameter must specify a train net using one of these fields: net, net_param, train_net, train_net_param",
                    )
                    .with_help("add `net: \"train_val.prototxt\"`"),
                );
                None
            }
            ["net" | "net_param"] => generic.cloned(),
            [field] => self.net_source(v, field),
            [_, second, ..] => {
                let mut d = Diagnostic::error(
                    "lvc::schema::solver_net",
                    "SolverParameter must not contain more than one of these fields specifying a train_net: net, net_param, train_net, train_net_param",
                )
                .with_help("keep one of them");
                for field in &given {
                    if let Some(span) = v.field_span(field) {
                        d = d.with_label(
                            span,
                            if field == second { "another train net" } else { "train net" },
                        );
                    }
                }
                self.diags.push(d);
                None
            }
        }
    }

    fn net_source(&mut self, v: ParamView<'_>, field: &str) -> Option<NetSource> {
        if let Some(inline) = v.sub(field).message() {
            return self.inline_net(inline).map(|n| NetSource::Inline(Box::new(n)));
        }
        let written = v.string(field)?;
        Some(NetSource::File(self.net_file(written)))
    }

    fn net_file(&self, written: Spanned<&str>) -> NetFile {
        let candidates = net_candidates(&self.source.path, written.value);
        NetFile { written: written.map(str::to_string), candidates }
    }

    /// An inline net, validated already (as part of the solver), upgraded
    /// with a warning when that changed it: real Caffe never upgrades inline
    /// nets.
    fn inline_net(&mut self, msg: &Message) -> Option<NetDef> {
        let before = self.diags.error_count();
        let (tree, report) = prepare_net_tree(msg.clone(), self.opts, self.diags)?;
        if report.changed_anything() {
            let what = match report.format {
                NetFormat::V0 => "is in the V0 format (`layers { layer { … } }`)",
                NetFormat::V1 => "is in the V1 format (`layers { type: ENUM }`)",
                NetFormat::Current => "uses the deprecated `input` fields",
            };
            let consequence = match report.format {
                NetFormat::Current => "its `input` fields would be ignored",
                _ => "it would see an empty net (no `layer` entries)",
            };
            self.diags.push(
                Diagnostic::warning("lvc::schema::inline_v1", format!("this inline net {what}; lvc upgrades it, but real Caffe does not upgrade inline nets: {consequence}"))
                    .with_label(Span::new(msg.span.start, msg.span.start + 1), "inline net")
                    .with_help("upgrade it to `layer { type: \"…\" }` blocks (e.g. with Caffe's upgrade_net_proto_text) or move it to its own file"),
            );
        }
        let net = extract_net(&tree, report.format, self.diags);
        (self.diags.error_count() == before).then_some(net)
    }

    /// Caffe's `InitTestNets` bookkeeping: instances, `test_iter` and
    /// `test_state` counts, `test_interval`.
    /// `generic` is `Some` when the solver has `net`/`net_param` (holding
    /// `None` if that net failed to load).
    fn test_nets(
        &mut self,
        v: ParamView<'_>,
        generic: Option<Option<NetSource>>,
    ) -> Option<Vec<TestNet>> {
        let mut sources: Vec<Option<NetSource>> = Vec::new();
        for inline in v.subs("test_net_param") {
            sources.push(
                inline
                    .message()
                    .and_then(|m| self.inline_net(m))
                    .map(|n| NetSource::Inline(Box::new(n))),
            );
        }
        for file in v.strings("test_net") {
            sources.push(Some(NetSource::File(self.net_file(file))));
        }
        let specific = sources.len();
        let test_iter: Vec<Spanned<i64>> = v.ints("test_iter");
        let iter_span = test_iter.first().map(|t| t.span);
        let count_ok = if generic.is_some() {
            test_iter.len() >= specific
        } else {
            test_iter.len() == specific
        };
        if !count_ok {
            let d = Diagnostic::error(
                "lvc::schema::solver_test_nets",
                format!("test_iter must be specified for each test network ({} `test_iter` for {specific} test nets)", test_iter.len()),
            )
            .with_help("give one `test_iter:` per `test_net`/`test_net_param`");
            self.diags.push(match iter_span {
                Some(span) => d.with_label(span, "test_iter"),
                None => d,
            });
            return None;
        }
        if let Some(generic) = generic {
            sources.extend(std::iter::repeat_n(generic, test_iter.len() - specific));
        }
        let states = v.subs("test_state");
        if !states.is_empty() && states.len() != sources.len() {
            let d = Diagnostic::error(
                "lvc::schema::solver_test_nets",
                format!("test_state must be unspecified or specified once per test net ({} states, {} test nets)", states.len(), sources.len()),
            )
            .with_help("give one `test_state { … }` per test net instance, or none");
            self.diags.push(match states[0].span() {
                Some(span) => d.with_label(span, "test_state"),
                None => d,
            });
            return None;
        }
        if !sources.is_empty() && v.int("test_interval").is_none_or(|t| t.value <= 0) {
            let d = Diagnostic::error(
                "lvc::schema::solver_test_nets",
                "test nets are given but test_interval is not > 0",
            )
            .with_help("add `test_interval: 500` (how many training iterations between tests)");
            self.diags.push(match iter_span {
                Some(span) => d.with_label(span, "test nets"),
                None => d,
            });
            return None;
        }
        let mut nets = Vec::with_capacity(sources.len());
        for (i, source) in sources.into_iter().enumerate() {
            let state =
                states.get(i).map_or_else(StateOverride::default, |s| StateOverride::of(*s));
            nets.push(TestNet {
                source: source?,
                test_iter: test_iter.get(i).map_or(0, |t| t.value),
                state: state.state_for(Phase::Test),
            });
        }
        Some(nets)
    }
}

/// Where a solver's relative net path may point: next to the solver file
/// first, then relative to the current directory.
pub fn net_candidates(solver_path: &Path, written: &str) -> Vec<PathBuf> {
    let path = Path::new(written);
    if path.is_absolute() {
        return vec![path.to_path_buf()];
    }
    let mut candidates = Vec::new();
    if let Some(dir) = solver_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        candidates.push(dir.join(path));
    }
    candidates.push(path.to_path_buf());
    candidates.dedup();
    candidates
}

/// `UpgradeSnapshotPrefixProperty`: unset → the solver path without its
/// extension; an existing directory → `<dir>/<solver stem>`.
pub fn snapshot_prefix(solver_path: &Path, written: Option<&str>) -> String {
    match written {
        None => solver_path.with_extension("").display().to_string(),
        Some(prefix) if Path::new(prefix).is_dir() => match solver_path.file_stem() {
            Some(stem) => Path::new(prefix).join(stem).display().to_string(),
            None => prefix.to_string(),
        },
        Some(prefix) => prefix.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solver(text: &str) -> (Option<SolverDef>, Diagnostics) {
        load_solver(&SourceFile::new("jobs/x/solver.prototxt", text), &LoadOptions::default())
    }

    #[test]
    fn caffe_defaults_apply() {
        let (s, diags) =
            solver("net: \"train_val.prototxt\"\nbase_lr: 0.01\nlr_policy: \"fixed\"\n");
        assert!(diags.is_empty());
        let s = s.expect("valid solver");
        assert_eq!(
            (s.base_lr, s.lr_policy, s.solver_type),
            (0.01, LrPolicy::Fixed, SolverType::Sgd)
        );
        assert_eq!((s.momentum, s.momentum2, s.delta, s.rms_decay), (0.0, 0.999, 1e-8, 0.99));
        assert_eq!((s.iter_size, s.average_loss, s.random_seed, s.test_interval), (1, 1, -1, 0));
        assert_eq!(
            (s.clip_gradients, s.regularization, s.solver_mode),
            (-1.0, Regularization::L2, SolverMode::Gpu)
        );
        assert!(s.test_initialization && s.snapshot_after_train && !s.snapshot_diff);
        assert_eq!(s.snapshot_format, SnapshotFormat::BinaryProto);
        assert_eq!(s.snapshot_prefix, Path::new("jobs/x/solver").display().to_string());
        assert_eq!(s.train_state, NetState { phase: Phase::Train, level: 0, stages: vec![] });
        assert!(s.test_nets.is_empty());
        let NetSource::File(file) = &s.train_net else { panic!("a file net") };
        assert_eq!(
            file.candidates,
            [Path::new("jobs/x/train_val.prototxt"), Path::new("train_val.prototxt")]
        );
    }

    #[test]
    fn legacy_solver_type_upgrades() {
        let (s, diags) =
            solver("net: \"n\"\nlr_policy: \"fixed\"\nsolver_type: NESTEROV\nsolver_mode: CPU\n");
        assert!(diags.is_empty());
        let s = s.expect("valid solver");
        assert_eq!((s.solver_type, s.solver_mode), (SolverType::Nesterov, SolverMode::Cpu));
    }

    #[test]
    fn test_net_instances_follow_caffe_order() {
        let (s, diags) = solver(concat!(
            "net: \"generic.prototxt\"\ntest_net: \"t.prototxt\"\nlr_policy: \"fixed\"\n",
            "test_iter: 5\ntest_iter: 6\ntest_iter: 7\ntest_interval: 100\n",
            "train_state { level: 2 stage: \"train\" }\n",
            "test_state { stage: \"a\" }\ntest_state { phase: TRAIN }\ntest_state { }\n",
        ));
        assert!(diags.is_empty(), "{diags:?}");
        let s = s.expect("valid solver");
        let files: Vec<String> = s
            .test_nets
            .iter()
            .map(|t| match &t.source {
                NetSource::File(f) => f.written.value.clone(),
                NetSource::Inline(_) => "inline".into(),
            })
            .collect();
        assert_eq!(files, ["t.prototxt", "generic.prototxt", "generic.prototxt"]);
        assert_eq!(s.test_nets.iter().map(|t| t.test_iter).collect::<Vec<_>>(), [5, 6, 7]);
        assert_eq!(
            s.test_nets[0].state,
            NetState { phase: Phase::Test, level: 0, stages: vec!["a".into()] }
        );
        assert_eq!(s.test_nets[1].state.phase, Phase::Train);
        assert_eq!(
            s.train_state,
            NetState { phase: Phase::Train, level: 2, stages: vec!["train".into()] }
        );
    }

    #[test]
    fn test_iter_must_match_specific_test_nets() {
        let (s, diags) =
            solver("train_net: \"a\"\ntest_net: \"b\"\nlr_policy: \"fixed\"\ntest_interval: 10\n");
        assert!(s.is_none());
        assert_eq!(diags.items[0].code, "lvc::schema::solver_test_nets");
    }

    #[test]
    fn net_candidates_and_snapshot_prefixes() {
        assert_eq!(
            net_candidates(Path::new("solver.prototxt"), "n.prototxt"),
            [Path::new("n.prototxt")]
        );
        assert_eq!(
            net_candidates(Path::new("/a/s.prototxt"), "/abs/n.prototxt"),
            [Path::new("/abs/n.prototxt")]
        );
        assert_eq!(snapshot_prefix(Path::new("a/b/solver.prototxt"), Some("snaps/x")), "snaps/x");
        let dir = std::env::temp_dir();
        assert_eq!(
            snapshot_prefix(Path::new("a/b/solver.prototxt"), dir.to_str()),
            dir.join("solver").display().to_string()
        );
    }

    #[test]
    fn missing_net_and_policy_are_errors() {
        let (s, diags) = solver("base_lr: 0.1\n");
        assert!(s.is_none());
        let found: Vec<&str> = diags.iter().map(|d| d.code).collect();
        assert_eq!(found, ["lvc::schema::lr_policy", "lvc::schema::solver_net"]);
    }

    #[test]
    fn each_policy_needs_its_settings() {
        let missing = |text: &str| -> Vec<String> {
            let (_, diags) = solver(&format!("net: \"n\"\n{text}"));
            diags.iter().map(|d| d.message.clone()).collect()
        };
        assert_eq!(
            missing("lr_policy: \"multistep\"\n"),
            ["lr_policy \"multistep\" needs `stepvalue`: without any the rate never changes"]
        );
        assert_eq!(missing("lr_policy: \"inv\"\ngamma: 0.1\n").len(), 1);
        assert_eq!(missing("lr_policy: \"inv\"\n").len(), 2);
        assert_eq!(missing("lr_policy: \"sigmoid\"\ngamma: 0.1\nstepsize: 0\n").len(), 1);
        assert_eq!(missing("lr_policy: \"exp\"\ngamma: 0.99\n").len(), 0);
        assert_eq!(missing("lr_policy: \"poly\"\npower: 1\n").len(), 0);
        assert_eq!(missing("lr_policy: \"step\"\nstepsize: 5\n").len(), 0);
    }

    #[test]
    fn nets_come_back_even_when_a_setting_is_wrong() {
        let (def, nets, _) = load_solver_nets(
            &SourceFile::new(
                "s/solver.prototxt",
                "net: \"n.prototxt\"\nlr_policy: \"stpe\"\ntest_iter: 2\ntest_interval: 5\n",
            ),
            &LoadOptions::default(),
        );
        assert!(def.is_none());
        let found: Vec<(&str, Phase)> = nets.iter().map(|n| (n.field, n.state.phase)).collect();
        assert_eq!(found, [("net", Phase::Train), ("net", Phase::Test)]);
        let NetSource::File(file) = &nets[0].source else { panic!("a file net") };
        assert!(file.found().is_none());
        assert_eq!(file.not_found("net").code, "lvc::solver::net_not_found");
    }
}
