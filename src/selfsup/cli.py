"""Command line: a thin layer over :mod:`selfsup.api`. Every option is a config field."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import __version__
from .errors import SelfSupError

#: the documentation site (mkdocs.yml's site_url); each method has a page at methods/<name>/
DOCS_URL = "https://selfsup.readthedocs.io/en/latest/"

EPILOG_TRAIN = """examples:
  selfsup train                                   SimCLR on the built-in digits, then evaluation
  selfsup train --data /tmp/cifar10 --backbone resnet18 --epochs 100
  selfsup train --method simclr --set params.temperature=0.2 --set optim.name=lars
  selfsup train --method ts2vec --data ucr:BasicMotions   series defaults, svm beside kNN/linear
  selfsup train --resume runs/simclr-digits-20261129-120000

exit status: 0 done; 2 error (one line on stderr); 130 / 143 stopped by SIGINT / SIGTERM after
writing a checkpoint (continue with --resume; a second signal exits at once).
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, like every other error
        raise SelfSupError(f"{message} (see `{self.prog} --help`)")


def _positive_int(s: str) -> int:
    try:
        return int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got '{s}'") from None


def _float(s: str) -> float:
    try:
        return float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{s}'") from None


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="selfsup",
        description="Self-supervised representation learning: pretrain an encoder "
        "on unlabelled data, then measure what it learned.",
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    p.add_argument("--version", action="version", version=f"selfsup {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    t = sub.add_parser(
        "train",
        help="pretrain an encoder and evaluate it (default: SimCLR on digits)",
        epilog=EPILOG_TRAIN,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    t.add_argument("--method", help="method name (see `selfsup methods`); default simclr")
    t.add_argument(
        "--data",
        help="training data: 'digits' (built in), an image folder, a CIFAR batch "
        "folder, or an .npz file; tables: a .csv/.parquet file or 'breast_cancer', 'wine'; series: "
        "ucr:NAME (a UCR/UEA set shipped with sktime), a .ts file or NAME_TRAIN.ts/NAME_TEST.ts "
        "folder, an .npz with x (N, C, T); default digits",
    )
    t.add_argument(
        "--eval-data", help="labelled data for evaluation; default: the test split of --data"
    )
    t.add_argument(
        "--pair-channels",
        metavar="A:B",
        help="paired run: split a series source's channels into two modalities, e.g. 0,1,2:3,4,5 "
        "(with a paired method: clip, isogclr_pair, xhcl)",
    )
    t.add_argument(
        "--backbone",
        help="auto (the modality's default, or the one with what the method needs), or one of "
        "each modality's: " + _backbone_help(),
    )
    t.add_argument("--epochs", type=_positive_int)
    t.add_argument("--batch-size", type=_positive_int)
    t.add_argument("--lr", type=_float, help="base learning rate (default depends on optim.name)")
    t.add_argument("--seed", type=_positive_int)
    t.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    t.add_argument("--out", help="run directory; default runs/<method>-<data>-<timestamp>")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    t.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    t.add_argument(
        "--allow-changes",
        action="store_true",
        help="with --resume: continue although the data or config.yaml changed since the last "
        "checkpoint (recorded in summary.json)",
    )
    t.add_argument("--config", metavar="FILE.yaml", help="a YAML recipe (see configs/)")
    t.add_argument(
        "--plugin",
        action="append",
        metavar="FILE.py|MODULE",
        help="load a plug-in first: a modality, source, views section or method defined outside "
        "selfsup (repeatable; recorded in config.yaml; installed packages' selfsup.plugins entry "
        "points load by themselves)",
    )
    t.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set any config field, e.g. params.temperature=0.2 or optim.name=lars (repeatable)",
    )
    t.add_argument(
        "--label-column", metavar="NAME", help="tables (CSV/Parquet): the column holding the labels"
    )
    _add_data_options(t)
    t.add_argument(
        "--normal-label",
        metavar="VALUE",
        help="anomaly detection: train on the training samples of "
        "this class only; score the test split (other classes = anomalies) by AUROC/AUPRC",
    )
    t.add_argument(
        "--skip-corrupt",
        action="store_true",
        default=None,
        help="skip unreadable images or bad table rows (and count them) instead of stopping",
    )
    t.add_argument(
        "--logger",
        help="extra trackers besides metrics.jsonl: tensorboard, mlflow "
        "(comma-separated; optional extras)",
    )
    t.add_argument(
        "--nproc",
        type=_positive_int,
        help="processes on this machine (torchrun's launcher, "
        "DistributedDataParallel; gloo on CPU, one GPU each with NCCL); --batch-size stays the "
        "global batch; default 1",
    )

    e = sub.add_parser("eval", help="re-evaluate a finished run; writes RUN_DIR/eval.json")
    e.add_argument("run_dir", metavar="RUN_DIR")
    e.add_argument("--data", help="labelled data to evaluate on; default: the run's own")
    e.add_argument(
        "--protocol",
        default=None,
        help=f"comma-separated subset of: {_protocol_help()}; default: eval.protocols of the run",
    )
    e.add_argument("--device", default="auto")

    sub.add_parser("methods", help="list the methods with their papers and documentation pages")

    r = sub.add_parser("report", help="write a self-contained report.html for one or more runs")
    r.add_argument("run_dirs", metavar="RUN_DIR", nargs="+")
    r.add_argument(
        "--out", metavar="FILE", help="default RUN_DIR/report.html (one run) or ./report.html"
    )

    c = sub.add_parser(
        "compare", help="train several methods on the same data and budget; one report"
    )
    c.add_argument(
        "--methods", required=True, help="comma-separated method names, e.g. simclr,byol"
    )
    c.add_argument("--data", default="digits", help="training data (as for train); default digits")
    c.add_argument("--epochs", type=_positive_int, default=10)
    c.add_argument("--batch-size", type=_positive_int)
    c.add_argument("--backbone")
    c.add_argument("--seed", type=_positive_int)
    c.add_argument("--device")
    c.add_argument("--out", metavar="DIR", help="default runs/compare-<data>-<timestamp>")
    c.add_argument("--overwrite", action="store_true")
    c.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    _add_deploy_parsers(sub)
    return p


def _add_deploy_parsers(sub) -> None:
    """export, embed, finetune, predict: the path after pretraining (issue 25)."""
    x = sub.add_parser(
        "export", help="export a run's encoder: a portable model folder, or an ONNX file"
    )
    x.add_argument("run_dir", metavar="RUN_DIR")
    x.add_argument("--format", choices=["folder", "onnx"], default="folder")
    x.add_argument(
        "--out", required=True, help="the model folder (folder) or the .onnx file (onnx)"
    )
    x.add_argument("--overwrite", action="store_true", help="replace an existing --out")

    m = sub.add_parser(
        "embed", help="features of every sample of a source under a trained encoder, to a file"
    )
    m.add_argument("model", metavar="RUN_DIR", help="a run directory or a model folder")
    m.add_argument("--data", required=True, help="any source train accepts, of the same kind")
    m.add_argument("--out", required=True, metavar="FILE", help=".npy, .csv or .parquet")
    m.add_argument("--batch-size", type=_positive_int, default=256)
    m.add_argument("--device", default="cpu")
    m.add_argument("--label-column", metavar="NAME", help="tables: the label column to leave out")
    m.add_argument(
        "--pair-channels", metavar="A:B", help="paired encoders: split a series source's channels"
    )
    m.add_argument("--skip-corrupt", action="store_true", help="skip unreadable images")
    m.add_argument("--overwrite", action="store_true", help="replace an existing --out file")

    f = sub.add_parser(
        "finetune",
        help="fine-tune a pretrained encoder and a linear head into a classifier folder",
    )
    f.add_argument(
        "model",
        metavar="RUN_DIR",
        nargs="?",
        help="a run directory or a model folder (not with --resume)",
    )
    f.add_argument("--data", help="labelled data (any source train accepts, of the same kind)")
    f.add_argument("--out", help="the classifier folder; default RUN_DIR/classifier")
    f.add_argument(
        "--label-fraction",
        type=_float,
        help="a class-balanced fraction of the training labels to use (default 1)",
    )
    f.add_argument("--epochs", type=_positive_int, help="at most this many epochs (default 100)")
    f.add_argument("--batch-size", type=_positive_int)
    f.add_argument("--lr", type=_float, help="the head's learning rate (default 1e-3)")
    f.add_argument(
        "--patience",
        type=_positive_int,
        help="stop after this many epochs without a lower validation loss (default 20)",
    )
    f.add_argument("--seed", type=_positive_int)
    f.add_argument("--device", default="cpu")
    f.add_argument("--label-column", metavar="NAME", help="tables: the column holding the labels")
    f.add_argument(
        "--pair-channels", metavar="A:B", help="paired encoders: split a series source's channels"
    )
    f.add_argument(
        "--resume", metavar="CLASSIFIER_DIR", help="continue a fine-tuning from its last checkpoint"
    )
    f.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")

    q = sub.add_parser(
        "predict", help="class probabilities of a fine-tuned classifier for a source, to a file"
    )
    q.add_argument("classifier", metavar="CLASSIFIER_DIR")
    q.add_argument("--data", required=True)
    q.add_argument("--out", required=True, metavar="FILE", help=".csv, .parquet or .npy")
    q.add_argument("--batch-size", type=_positive_int, default=256)
    q.add_argument("--device", default="cpu")
    q.add_argument("--label-column", metavar="NAME", help="tables: the label column to leave out")
    q.add_argument(
        "--pair-channels", metavar="A:B", help="paired encoders: split a series source's channels"
    )
    q.add_argument("--skip-corrupt", action="store_true", help="skip unreadable images")
    q.add_argument("--overwrite", action="store_true", help="replace an existing --out file")


def _backbone_help() -> str:
    from .modalities import REGISTRY

    return "; ".join(
        f"{name}: {', '.join(mod.backbone_names())}"
        for name, mod in REGISTRY.items()
        if mod.backbone_names()
    )


def _protocol_help() -> str:
    from . import modalities  # noqa: F401  (modalities register their own protocols)
    from .eval.protocols import PROTOCOLS

    return ", ".join(PROTOCOLS)


def _add_data_options(p: argparse.ArgumentParser) -> None:
    """The source options modalities registered (``selfsup.data.register_option``) as flags."""
    from .data import DATA_OPTIONS

    for opt in DATA_OPTIONS.values():
        p.add_argument(
            opt.cli_flag, dest=f"data_option_{opt.key}", metavar=opt.metavar, help=opt.help
        )


def _data_options(args) -> dict | None:
    """``{key: value}`` of the source-option flags given (None when none was)."""
    got = {
        k[len("data_option_") :]: v
        for k, v in vars(args).items()
        if k.startswith("data_option_") and v is not None
    }
    return got or None


def _preload_plugins(argv: list[str]) -> None:
    """Load ``--plugin`` arguments (and installed entry points) before the parser is built, so
    that ``--help`` and the option checks know what the plug-ins register."""
    from .plugins import load_all

    specs = [
        argv[i + 1] if a == "--plugin" else a.split("=", 1)[1]
        for i, a in enumerate(argv)
        if (a == "--plugin" and i + 1 < len(argv)) or a.startswith("--plugin=")
    ]
    load_all(specs)


def _cmd_train(args) -> int:
    from rich.console import Console

    from . import api
    from .train import distributed as DIST

    if not DIST.launched():  # --nproc N > 1: start N workers that run this same command
        planned = _planned_launch(args)
        if planned is not None:
            from .train.launch import launch

            return launch(*planned)
    console = Console(stderr=True)
    run = api.train(
        args.config,
        overrides=args.overrides,
        resume=args.resume,
        overwrite=args.overwrite,
        allow_changes=args.allow_changes,
        console=console,
        method=args.method,
        data=args.data,
        eval_data=args.eval_data,
        backbone=args.backbone,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        out=args.out,
        skip_corrupt=args.skip_corrupt,
        label_column=args.label_column,
        normal_label=args.normal_label,
        logger=args.logger,
        pair_channels=args.pair_channels,
        nproc=args.nproc,
        plugins=args.plugin,
        data_options=_data_options(args),
    )
    if DIST.is_main():
        print_summary(run.summary, run.dir)
    return 0


def _planned_launch(args):
    """``(worker argv, nproc, run_dir)`` when the run asks for several processes, after checking
    (in one line, before anything is written) that this machine and batch can serve them."""
    from . import config as conf
    from . import resolve
    from .rundir import check_new, default_dir, require_run
    from .train.launch import check

    if args.resume is not None:
        stored = conf.load_yaml(require_run(Path(args.resume)) / "config.yaml")
        cfg = resolve.resolve_config(
            stored, epochs=args.epochs, device=args.device, nproc=args.nproc
        )
        run_dir = str(args.resume)
    else:
        cfg = resolve.resolve_config(
            args.config,
            args.overrides,
            method=args.method,
            data=args.data,
            eval_data=args.eval_data,
            backbone=args.backbone,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            device=args.device,
            out=args.out,
            skip_corrupt=args.skip_corrupt,
            logger=args.logger,
            label_column=args.label_column,
            normal_label=args.normal_label,
            pair_channels=args.pair_channels,
            nproc=args.nproc,
            plugins=args.plugin,
            data_options=_data_options(args),
        )
        run_dir = cfg.out or str(default_dir(cfg.method, cfg.data.source))
    nproc = cfg.train.nproc
    if nproc <= 1:
        return None
    check(nproc, cfg.train.batch_size, cfg.train.device, cfg.train.chunk_size, cfg.method)
    argv = list(args.argv)
    if args.resume is None:
        check_new(Path(run_dir), args.overwrite, resolve.protected_paths(cfg))
        if args.out is None:
            argv += ["--out", run_dir]
    if args.nproc is None:
        argv += ["--nproc", str(nproc)]
    return argv, nproc, run_dir


def print_summary(summary: dict, run_dir) -> None:
    from rich.console import Console
    from rich.table import Table

    out = Console()
    if "eval" not in summary:
        out.print(f"trained; no labels to evaluate with. Run directory: {run_dir}")
        return
    metrics = list(summary["eval"])
    table = Table(
        title=f"{summary['method']} on {summary['data']}, {summary['epochs']} epochs "
        f"(eval: {summary['eval_data']['bank_size']} bank / {summary['eval_data']['query_size']} "
        "query)"
    )
    rows = {f"pretrained ({summary['method']})": summary["eval"]}
    rows.update({name.replace("_", " "): res for name, res in summary.get("baselines", {}).items()})
    # columns as wide as their headers (a value is 6 characters), 3 for rich's borders and padding
    wide = max(map(len, rows)) + sum(max(len(m), 6) + 3 for m in metrics) + 4 > out.width
    if len(metrics) > 6 or wide:  # many or long metric names: one row per metric
        table.add_column("metric")
        for name in rows:
            table.add_column(name, justify="right")
        for m in metrics:
            table.add_row(m, *[f"{res[m]:.4f}" if m in res else "-" for res in rows.values()])
        out.print(table)
        out.print(f"run directory: {run_dir}")
        return
    table.add_column("encoder")
    for m in metrics:
        table.add_column(m, justify="right")
    for name, res in rows.items():
        table.add_row(name, *[f"{res[m]:.4f}" if m in res else "-" for m in metrics])
    out.print(table)
    out.print(f"run directory: {run_dir}")


def _cmd_eval(args) -> int:
    import json

    from . import api
    from .eval import protocols as EP

    # parsed before anything is loaded: an empty or unknown list is one line, never a silent default
    protocols = EP.parse(args.protocol) if args.protocol is not None else None
    res = api.evaluate(args.run_dir, data=args.data, protocols=protocols, device=args.device)
    print(json.dumps(res, indent=2))
    return 0


def _cmd_report(args) -> int:
    from .evaluation import write_run_report

    print(f"report: {write_run_report(args.run_dirs, args.out)}")
    return 0


def _cmd_compare(args) -> int:
    from rich.console import Console

    from . import compare

    path, runs = compare.compare(
        args.methods,
        args.data,
        args.epochs,
        args.out,
        args.overwrite,
        Console(stderr=True),
        args.overrides,
        batch_size=args.batch_size,
        backbone=args.backbone,
        seed=args.seed,
        device=args.device,
    )
    _print_ranking(runs)
    print(f"report: {path}")
    return 0


def _cmd_export(args) -> int:
    from .exporting import export

    r = export(args.run_dir, args.out, args.format, overwrite=args.overwrite)
    if args.format == "onnx":
        print(
            f"onnx: {r.path} (dynamic batch; checked against PyTorch on {r.batch} samples of "
            f"the run's data, input {tuple(r.input_shape)}: max abs difference "
            f"{r.max_abs_diff:.3g})"
        )
    else:
        print(f"model folder: {r}")
    return 0


def _cmd_embed(args) -> int:
    from .embedding import embed

    e = embed(
        args.model,
        args.data,
        args.out,
        batch_size=args.batch_size,
        device=args.device,
        label_column=args.label_column,
        pair_channels=args.pair_channels,
        skip_corrupt=args.skip_corrupt,
        overwrite=args.overwrite,
        progress=True,
    )
    print(f"embeddings: {e.path} ({e.features.shape[0]} x {e.features.shape[1]})")
    return 0


def _cmd_finetune(args) -> int:
    from rich.console import Console

    from .errors import ConfigError
    from .finetuning import finetune

    if args.resume is not None:
        if args.model is not None or args.out is not None:
            raise ConfigError(
                "--resume CLASSIFIER_DIR continues a fine-tuning with its own settings; give "
                "neither RUN_DIR nor --out with it"
            )
        out, model = args.resume, None
    else:
        if args.model is None or args.data is None:
            raise ConfigError("finetune needs RUN_DIR and --data SOURCE (labelled)")
        out, model = args.out or str(Path(args.model) / "classifier"), args.model
    options = {
        k: v
        for k, v in {
            "label_fraction": args.label_fraction,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "patience": args.patience,
            "seed": args.seed,
        }.items()
        if v is not None
    }
    r = finetune(
        model,
        args.data,
        out,
        epochs=args.epochs,
        device=args.device,
        label_column=args.label_column,
        pair_channels=args.pair_channels,
        overwrite=args.overwrite,
        resume=args.resume is not None,
        console=Console(stderr=True),
        **options,
    )
    s = r.summary
    parts = [f"epoch {s['epoch_kept']} of {s['epochs_run']} kept"]
    if "val_top1" in s:
        parts.append(f"val top-1 {s['val_top1']:.4f} ({s['val_samples']} samples)")
    if "test_top1" in s:
        parts.append(f"test top-1 {s['test_top1']:.4f} ({s['test_samples']} samples)")
    print(f"classifier: {r.dir} ({'; '.join(parts)})")
    return 0


def _cmd_predict(args) -> int:
    from .finetuning import predict

    p = predict(
        args.classifier,
        args.data,
        args.out,
        batch_size=args.batch_size,
        device=args.device,
        label_column=args.label_column,
        pair_channels=args.pair_channels,
        skip_corrupt=args.skip_corrupt,
        overwrite=args.overwrite,
        progress=True,
    )
    print(f"predictions: {p.path} ({len(p.ids)} samples, {len(p.classes)} classes)")
    return 0


def _print_ranking(runs) -> None:
    from rich.console import Console
    from rich.table import Table

    keys = [
        k
        for k in ("knn_top1", "linear_top1")
        if all(k in (r.summary.get("eval") or {}) for r in runs)
    ]
    order = sorted(runs, key=lambda r: -r.summary["eval"][keys[0]]) if keys else runs
    table = Table(title="compare" + (f" (ranked by {keys[0]})" if keys else ""))
    for col in ["rank", "method", "train s"] + keys:
        table.add_column(col, justify="right")
    for i, r in enumerate(order, 1):
        table.add_row(
            str(i),
            r.summary["method"],
            f"{r.summary['train_time_s']:.1f}",
            *[f"{r.summary['eval'][k]:.4f}" for k in keys],
        )
    Console().print(table)


def _cmd_methods(args) -> int:
    from .methods import REGISTRY

    for name in sorted(REGISTRY):
        print(f"{name:12s} {REGISTRY[name].paper}\n{'':12s} {method_url(name)}")
    return 0


def docs_url() -> str:
    """Where the documentation site lives (``$SELFSUP_DOCS_URL`` overrides it, e.g. a local
    build)."""
    import os

    return os.environ.get("SELFSUP_DOCS_URL", DOCS_URL).rstrip("/") + "/"


def method_url(name: str) -> str:
    """The documentation page of a method (one page per registered method, see docs/methods/)."""
    return f"{docs_url()}methods/{name}/"


def _one_line_warnings() -> None:
    """Show selfsup's own warnings (e.g. skipped unreadable images) as ``warning: ...`` lines."""
    import warnings

    from .errors import DataWarning

    warnings.simplefilter(
        "always", DataWarning
    )  # every run reports its own skips, not just the first
    default = warnings.showwarning
    if getattr(default, "_selfsup", False):
        return

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, DataWarning):
            from .errors import printable

            print(printable(f"warning: {message}"), file=file or sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    show._selfsup = True
    warnings.showwarning = show


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    _one_line_warnings()
    try:
        _preload_plugins(argv)
        parser = build_parser()
        args = parser.parse_args(argv)
        args.argv = argv
        if args.command is None:
            parser.print_help()
            return 0
        return {
            "train": _cmd_train,
            "eval": _cmd_eval,
            "methods": _cmd_methods,
            "report": _cmd_report,
            "compare": _cmd_compare,
            "export": _cmd_export,
            "embed": _cmd_embed,
            "finetune": _cmd_finetune,
            "predict": _cmd_predict,
        }[args.command](args)
    except SelfSupError as err:
        if debug:
            raise
        from .train.launch import worker_error

        if not worker_error(err):  # a worker under --nproc leaves its line to the launcher
            print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001
        import errno

        from .train import Interrupted

        if isinstance(err, Interrupted):  # checkpointed: 130 after SIGINT, 143 after SIGTERM
            if os.environ.get("RANK", "0") == "0":  # one line for the job, from rank 0
                print(f"interrupted: {err}", file=sys.stderr)
            return err.exit_code
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT) and not debug:
            from .io import storage_error

            print(f"error: {storage_error(err, err.filename or 'a file')}", file=sys.stderr)
            return 2
        return _last_resort(err, debug)


def _last_resort(err: Exception, debug: bool) -> int:
    """Any other exception: one ``error:`` line. Exit 2 when the cause is the input or the machine
    (a path that cannot be read, memory, a tensor shape or device the input implied), else 1 with
    "internal error, please report"; the traceback only under ``--debug``."""
    import traceback

    from .errors import printable

    first = printable((str(err).strip().splitlines() or [""])[0][:300])
    if isinstance(err, (OSError, MemoryError)) or (
        isinstance(err, RuntimeError)
        and type(err).__module__.startswith("torch")
        or type(err) is RuntimeError
    ):
        what = (
            printable(f"{err.strerror}: '{err.filename}'")
            if isinstance(err, OSError) and err.filename
            else first
        )
        print(
            f"error: {type(err).__name__}: {what or type(err).__name__} (run with "
            "--debug for the traceback)",
            file=sys.stderr,
        )
        code = 2
    else:
        print(
            "error: internal error, please report it with the output of --debug: "
            f"{type(err).__name__}: {first}",
            file=sys.stderr,
        )
        code = 1
    if debug:
        traceback.print_exception(err)
    return code


if __name__ == "__main__":
    sys.exit(main())
