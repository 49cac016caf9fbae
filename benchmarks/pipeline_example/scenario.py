"""Two users, two branches, one merge: the MLCask story on digits with graphopt compiles.

    main   dataset(float64) -> preprocess(scale) -> model(MLP h32 on scale) -> compile(auto) -> evaluate
    alice  preprocessing: standardize (+ a model trained on it); pool2, a 16-feature schema
           (+ a model for it: committing pool2 alone is a schema conflict); dataset re-encoded uint8
    bob    model and compile options: MLP h64; planner greedy_by_size; planner smartpool
    merge  alice <- bob by accuracy (or a Pareto set): 2 x 3 x 4 x 3 x 1 = 72 candidates

`versions` trims the branches to fewer commits (tests use 1 per user).
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.pipeline_example.data import write_dataset
from benchmarks.pipeline_example.train import train_model
from graphopt.pipelines import repo as repo_mod
from graphopt.pipelines.components import make_spec
from graphopt.pipelines.errors import SchemaConflictError
from graphopt.pipelines.repo import Repository

PREPROCESS = "benchmarks.pipeline_example.steps:preprocess"
TIME_LIMIT = 2.0


def model_file(work: Path, method: str, hidden: int, epochs: int) -> Path:
    """Trains (once per work dir) the model a user would train for `method` features."""
    path = work / f"model-{method}-h{hidden}-e{epochs}.onnx"
    return path if path.is_file() else train_model(method, path, hidden=hidden, epochs=epochs)


class Scenario:
    """Builds the example repository step by step; each method is one user action."""

    def __init__(self, root: Path, work: Path, epochs: int = 150, say=print) -> None:
        self.work, self.epochs, self.say = Path(work), epochs, say
        self.work.mkdir(parents=True, exist_ok=True)
        self.repo: Repository = repo_mod.init(root)

    def stage(self, name: str, kind: str, **kw) -> None:
        self.repo.stage(name, make_spec(kind, self.repo.store, **kw))

    def stage_model(self, method: str, hidden: int = 32) -> None:
        self.stage("model", "model", files=[model_file(self.work, method, hidden, self.epochs)])

    def stage_compile(self, planner: str) -> None:
        self.stage("compile", "compile", inputs=["model"], params={"planner": planner, "time_limit": TIME_LIMIT})

    def commit(self, message: str) -> str:
        cid = self.repo.commit(message)
        names = {e["component"]: self.repo.version(e["version"])["name"] for e in self.repo.commit_row(cid).pipeline}
        acc = self.repo.commit_row(cid).metrics.get("accuracy")
        self.say(f"  [{self.repo.current_branch()}] {message}: accuracy {acc:.4f}  " +
                 " ".join(f"{k}={v}" for k, v in names.items()))
        return cid

    def base(self) -> None:
        self.stage("dataset", "dataset", files=[write_dataset(self.work / "f64" / "digits.npz")])
        self.stage("preprocess", "python", ref=PREPROCESS, inputs=["dataset"], params={"method": "scale"})
        self.stage_model("scale")
        self.stage_compile("auto")
        self.stage("evaluate", "evaluate", inputs=["preprocess", "compile"], params={"repeat": 3})
        self.commit("base pipeline")
        self.repo.create_branch("alice")
        self.repo.create_branch("bob")

    def alice(self, versions: int = 3) -> None:
        """The preprocessing user; shows the schema conflict when a model is not updated."""
        self.repo.checkout("alice")
        self.stage("preprocess", "python", ref=PREPROCESS, inputs=["dataset"], params={"method": "standardize"})
        self.stage_model("standardize")
        self.commit("standardize features (model retrained)")
        if versions < 2:
            return
        self.stage("preprocess", "python", ref=PREPROCESS, inputs=["dataset"], params={"method": "pool2"})
        try:
            self.repo.commit("pool2 without a new model")
        except SchemaConflictError as exc:
            self.say(f"  [alice] refused, as it should be: {exc}")
        self.stage_model("pool2")
        self.commit("pool2 features (16, new schema) + model for them")
        if versions < 3:
            return
        self.stage("dataset", "dataset", files=[write_dataset(self.work / "u8" / "digits.npz", "uint8")])
        self.commit("dataset re-encoded as uint8")

    def bob(self, versions: int = 3) -> None:
        """The model/compile user."""
        self.repo.checkout("bob")
        self.stage_model("scale", hidden=64)
        self.commit("wider MLP (h64)")
        if versions >= 2:
            self.stage_compile("greedy_by_size")
            self.commit("planner greedy_by_size")
        if versions >= 3:
            self.stage_compile("smartpool")
            self.commit("planner smartpool")

    def build(self, versions: int = 3) -> Repository:
        self.base()
        self.alice(versions)
        self.bob(versions)
        self.repo.checkout("alice")
        return self.repo
