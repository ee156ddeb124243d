"""The method registry: every named method is plain data, one entry each.

A method is for one task (``single-label``: softmax over the classes, one finding per image, the
paper's benchmark; ``multi-label``: a sigmoid per class, any number of findings) and picks a loss
(``train.methods.losses``), a class weighting (``train.methods.weighting``), a sampler (``shards.samplers``),
a mixing (``train.methods.mixing``), whether the weighting is deferred (DRW), the classifier head
(``train.methods.heads``), and its stage (``train.loop.stages``): ``train`` (from scratch or ImageNet), ``crt``
(re-train the classifier of a stage-1 run) or ``tau-norm`` (adjust the classifier of a stage-1 run, no training).
Add a method by adding one entry to METHODS.
"""
from dataclasses import dataclass, field

from shards.errors import UsageError

from .heads import COSINE_SCALE
from .losses import get_loss
from .weighting import scheme_params


@dataclass(frozen=True)
class Method:
    name: str
    summary: str
    loss: str = "ce"
    weighting: str = "none"
    loss_params: dict = field(default_factory=dict)
    sampler: str = "instance"
    mixing: str = "none"            # none | mixup | balanced-mixup
    drw: bool = False
    head: str = "linear"            # a kind of ``train.methods.heads.HEADS``: linear | normed (cosine, LDAM)
    stage: str = "train"            # train | crt | tau-norm
    task: str = "single-label"      # single-label | multi-label


FOCAL = {"gamma": 2.0}
LDAM = {"max_m": 0.5, "s": COSINE_SCALE}  # the loss's s is the cosine head's scale
ML = "multi-label"

METHODS = {m.name: m for m in [
    Method("ce", "Softmax cross-entropy (the baseline)"),
    Method("cb-ce", "Class-balanced softmax: CE weighted by effective number, beta 0.9999", weighting="cb"),
    Method("rw-ce", "Re-weighted softmax: CE weighted by inverse frequency", weighting="rw"),
    Method("focal", "Focal loss, gamma 2", loss="focal", loss_params=FOCAL),
    Method("cb-focal", "Focal loss with class-balanced alpha", loss="focal", weighting="cb", loss_params=FOCAL),
    Method("rw-focal", "Focal loss with inverse-frequency alpha", loss="focal", weighting="rw", loss_params=FOCAL),
    Method("ldam", "LDAM margins on a cosine classifier, s 30", loss="ldam", loss_params=LDAM, head="normed"),
    Method("cb-ldam", "LDAM with class-balanced weights", loss="ldam", weighting="cb", loss_params=LDAM,
           head="normed"),
    Method("cb-ldam-drw", "LDAM, class-balanced weights deferred (DRW)", loss="ldam", weighting="cb",
           loss_params=LDAM, drw=True, head="normed"),
    Method("rw-ldam", "LDAM with inverse-frequency weights", loss="ldam", weighting="rw", loss_params=LDAM,
           head="normed"),
    Method("rw-ldam-drw", "LDAM, inverse-frequency weights deferred (DRW)", loss="ldam", weighting="rw",
           loss_params=LDAM, drw=True, head="normed"),
    Method("mixup", "MixUp, alpha 0.2", mixing="mixup"),
    Method("balanced-mixup", "Balanced-MixUp: instance batch mixed with a class-balanced batch, alpha 0.2",
           mixing="balanced-mixup"),
    Method("crt", "Decoupling: re-train a new classifier on class-balanced sampling, backbone frozen",
           sampler="class-balanced", stage="crt"),
    Method("tau-norm", "Decoupling: classifier rows divided by their norm^tau, tau tuned on balanced-val",
           stage="tau-norm"),
    Method("logit-adjusted", "Logit-adjusted CE, tau 1", loss="logit-adjusted",
           loss_params={"tau": 1.0}),
    Method("balanced-softmax", "Balanced softmax", loss="balanced-softmax"),
    Method("cb-sampling", "CE with class-balanced sampling", sampler="class-balanced"),
    Method("sqrt-sampling", "CE with square-root sampling", sampler="sqrt"),
    # multi-label: a sigmoid per class, multi-hot targets; the weightings count each class's positives
    Method("bce", "Binary cross-entropy per class (the multi-label baseline)", loss="bce", task=ML),
    Method("rw-bce", "BCE, positives weighted by inverse frequency", loss="bce", weighting="rw", task=ML),
    Method("cb-bce", "BCE, positives weighted by effective number, beta 0.9999", loss="bce", weighting="cb",
           task=ML),
    Method("focal-bce", "Sigmoid focal loss, gamma 2", loss="focal-bce", loss_params=FOCAL, task=ML),
    Method("asl", "Asymmetric loss: gamma+ 0, gamma- 4, probability margin 0.05", loss="asl", task=ML),
    Method("distribution-balanced", "Distribution-balanced loss: re-balanced weights, negative-tolerant "
           "regularisation", loss="distribution-balanced", task=ML),
    Method("logit-adjusted-bce", "BCE on logits shifted by the log prior odds, tau 1", loss="logit-adjusted-bce",
           task=ML),
    Method("ca-bce", "BCE with class-aware sampling: a class, then an image with it", loss="bce",
           sampler="class-balanced", task=ML),
    Method("mixup-bce", "MixUp on multi-hot targets, alpha 0.2", loss="bce", mixing="mixup", task=ML),
    Method("crt-bce", "Decoupling: re-train a new classifier with class-aware sampling, backbone frozen",
           loss="bce", sampler="class-balanced", stage="crt", task=ML),
]}
# Table 1 of the benchmark paper (arXiv 2208.13365), in its order
PAPER_METHODS = ("ce", "cb-ce", "rw-ce", "focal", "cb-focal", "rw-focal", "ldam", "cb-ldam", "cb-ldam-drw", "rw-ldam",
                 "rw-ldam-drw", "mixup", "balanced-mixup", "crt", "tau-norm")
# what a two-stage method of each task starts from, and the suite trains first
BASELINE = {"single-label": "ce", ML: "bce"}


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise UsageError(f"unknown method {name!r}; one of: {', '.join(METHODS)}")
    return METHODS[name]


def methods_for(task: str) -> list[str]:
    return [name for name, m in METHODS.items() if m.task == task]


def check_task(method: Method, task: str, shards, flag: str = "--method") -> None:
    """A method of the other task is refused, naming the methods that fit these shards."""
    if method.task != task:
        raise UsageError(f"{flag} {method.name} is a {method.task} method and --shards {shards} holds {task} "
                         f"data; use one of: {', '.join(methods_for(task))}")


def method_params(method: Method, given: dict) -> tuple[dict, dict]:
    """(the loss's parameters, the class weighting's) of a run: the method's own, with --loss-param's over them;
    a name neither takes is a UsageError naming those they take."""
    loss_names, weight_names = get_loss(method.loss).params, scheme_params(method.weighting)
    valid = param_names(method)
    unknown = [name for name in given if name not in valid]
    if unknown:
        takes = f"takes {', '.join(valid)}" if valid else "takes none"
        raise UsageError(f"--loss-param {unknown[0]}: the {method.name} method's loss ({method.loss}"
                         f"{', ' + method.weighting + ' weighting' if weight_names else ''}) {takes}")
    loss = {**method.loss_params, **{k: v for k, v in given.items() if k in loss_names}}
    return loss, {k: v for k, v in given.items() if k in weight_names and k not in loss_names}


def param_names(method: Method) -> tuple[str, ...]:
    """What --loss-param may set for ``method``: its loss's parameters, then its class weighting's."""
    loss_names = get_loss(method.loss).params
    return (*loss_names, *(n for n in scheme_params(method.weighting) if n not in loss_names))


def head_scale(method: Method, cfg: dict) -> float | None:
    """The cosine head's scale when --loss-param s sets it (it is the LDAM loss's s), else None (the default)."""
    return (cfg.get("loss_param") or {}).get("s") if method.head == "normed" else None

