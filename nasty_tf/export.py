"""SavedModel export for serving: the released network only, never the adversary.

`export_saved_model` loads a `.keras` file (a bare network, or a saved `NastyTeacher` /
`KnowledgeDistiller` wrapper, which is unwrapped to its trained network) and writes a
TensorFlow SavedModel with these signatures:

- `serving_default`: `images` (uint8, `[None, H, W, C]`) -> `logits` (float32) and
  `probabilities` (softmax of the logits, temperature 1), as the chosen release serves them
  (`nasty_tf.releases`: `plain`, or `stingy`, whose logits are `-inf` outside each row's top k
  so that exactly k probabilities are non-zero). The served model is the defence, and the audit
  attacks the same release code. The pixel normalisation travels inside the network
  (DESIGN.md section 6), so clients send raw pixels.
- `top_k` (only when `top_k` is given): `images` -> `classes` (int32, `[None, k]`, most
  probable first) and `scores` (their served probabilities).

The SavedModel's root is a `tf.Module` that holds only the network's variables (revived as
`.variables`, `.trainable_variables`, `.non_trainable_variables`), so nothing of a training
wrapper, and in particular no adversary weight, can end up in the artifact (DESIGN.md
section 3, "Never ship the adversary"). TensorFlow-only (DESIGN.md section 5, rule 5).

Example:

```python
from nasty_tf.export import export_saved_model

export_saved_model("runs/nasty/model.keras", "exports/nasty", top_k=3)

import tensorflow as tf
served = tf.saved_model.load("exports/nasty")
outputs = served.signatures["serving_default"](images=tf.zeros([1, 32, 32, 3], tf.uint8))
outputs["probabilities"]  # shape [1, num_classes]
```
"""

import os
import shutil
import uuid

import keras

from nasty_tf import releases
from nasty_tf.errors import InputError
from nasty_tf.training.checkpoints import load_network

SERVING_SIGNATURE = "serving_default"
TOP_K_SIGNATURE = "top_k"
# What marks a directory as a SavedModel: the only kind of non-empty directory that
# `overwrite=True` may replace, so a mistyped --export_dir can never delete other data.
_SAVED_MODEL_FILE = "saved_model.pb"


def _check_export_dir(export_dir, overwrite):
    """Refuses an unusable `export_dir` before any expensive work."""
    if not export_dir:
        raise InputError("export_dir is required")
    if os.path.exists(export_dir) and not os.path.isdir(export_dir):
        raise InputError(f"export_dir {export_dir!r} is a file, not a directory")
    if not os.path.isdir(export_dir) or not os.listdir(export_dir):
        return
    if not overwrite:
        raise InputError(f"export_dir {export_dir!r} is not empty; set `overwrite` to replace it")
    if not os.path.isfile(os.path.join(export_dir, _SAVED_MODEL_FILE)):
        raise InputError(
            f"export_dir {export_dir!r} is not empty and holds no SavedModel; "
            "refusing to replace it even with `overwrite`"
        )


def _check_top_k(top_k, num_classes):
    if top_k is None:
        return
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= num_classes:
        raise InputError(
            f"top_k must be an integer in [1, {num_classes}] (the number of classes). "
            f"Received: top_k={top_k!r}"
        )


def _serving_module(network, top_k):
    """A `tf.Module` whose only state is `network`'s variables, plus the serving functions.

    `network` is the release: `images -> {"logits", "probabilities"}` (`nasty_tf.releases`).
    """
    import tensorflow as tf  # TensorFlow-only module: JAX hosts never import it

    class ServingModule(tf.Module):
        # tf.Module derives these from its attributes and does not save them; as plain
        # saved lists (what Keras' own exports do) a revived export exposes them too.
        variables = None
        trainable_variables = None
        non_trainable_variables = None

        def __init__(self):
            super().__init__(name="served_network")
            # The network object itself is deliberately not an attribute: only these lists
            # are tracked, so the artifact holds exactly the network's variables.
            self.variables = list(network.variables)
            self.trainable_variables = list(network.trainable_variables)
            self.non_trainable_variables = list(network.non_trainable_variables)

    module = ServingModule()
    spec = tf.TensorSpec([None, *network.input_shape[1:]], tf.uint8, name="images")

    def served(images):
        outputs = network(tf.cast(images, tf.float32), training=False)
        return {name: tf.cast(outputs[name], tf.float32) for name in ("logits", "probabilities")}

    @tf.function(input_signature=[spec])
    def serve(images):
        return served(images)

    module.serve = serve
    signatures = {SERVING_SIGNATURE: serve}
    if top_k is not None:

        @tf.function(input_signature=[spec])
        def serve_top_k(images):
            scores, classes = tf.math.top_k(served(images)["probabilities"], k=top_k)
            return {"classes": classes, "scores": scores}

        module.serve_top_k = serve_top_k
        signatures[TOP_K_SIGNATURE] = serve_top_k
    return module, signatures


def _move_into_place(written, export_dir):
    """Renames the finished export onto `export_dir`; the old one goes only after that worked."""
    if not os.path.isdir(export_dir) or not os.listdir(export_dir):
        os.replace(written, export_dir)  # POSIX rename replaces an empty directory
        return
    previous = written + "-previous"
    os.rename(export_dir, previous)
    try:
        os.rename(written, export_dir)
    except BaseException:
        os.rename(previous, export_dir)
        raise
    shutil.rmtree(previous, ignore_errors=True)


def export_saved_model(
    model_path, export_dir, overwrite=False, top_k=None, release="plain", top_k_ratio=None
):
    """Writes the network in `model_path` as a TensorFlow SavedModel for serving.

    The SavedModel is written to a temporary sibling of `export_dir` and renamed into place
    when complete, so `export_dir` never holds a half-written export.

    Args:
        model_path: a `.keras` file: a bare network, or a saved `NastyTeacher` /
            `KnowledgeDistiller` (its trained network is exported, never the partner).
        export_dir: the SavedModel directory to write.
        overwrite: replace an existing SavedModel in `export_dir`. A non-empty directory that
            holds no SavedModel is never replaced.
        top_k: if given, also write the `top_k` signature returning the `top_k` most probable
            classes and their probabilities.
        release: what `serving_default` serves, a name of `nasty_tf.releases`: "plain" (the
            logits) or "stingy" (the top `top_k_ratio` x classes logits, the rest -inf).
        top_k_ratio: the stingy release's share of classes, in (0, 1]; None: its default.

    Returns:
        A dict: `export_dir`, `signatures` (names), `input_shape` (`[None, H, W, C]`, uint8),
        `num_classes`, `variables` (how many the SavedModel holds), `parameters`, `release`
        and, for a stingy release, `served_classes` (k).

    Raises:
        InputError: `export_dir` is unusable (a file, or not empty without `overwrite`),
            `model_path` is missing or not a Keras model, `top_k` is out of range, or the
            Keras backend is not TensorFlow.
    """
    if keras.backend.backend() != "tensorflow":
        raise InputError(
            "export writes a TensorFlow SavedModel and needs the TensorFlow backend; unset "
            f"KERAS_BACKEND. Received: KERAS_BACKEND={keras.backend.backend()!r}"
        )
    import tensorflow as tf

    _check_export_dir(export_dir, overwrite)
    network = load_network(model_path, "model_path")
    num_classes = int(network.output_shape[-1])
    _check_top_k(top_k, num_classes)
    if None in network.input_shape[1:]:
        raise InputError(
            f"model_path: {model_path!r} has no fixed image shape to serve. "
            f"Received: input_shape={network.input_shape}"
        )
    params = {}
    if top_k_ratio is not None:
        if release != "stingy":
            raise InputError(
                f"top_k_ratio is for the stingy release only. Received: release={release!r}, "
                f"top_k_ratio={top_k_ratio!r}"
            )
        params["top_k_ratio"] = top_k_ratio
    served = releases.get_release(release, network, **params)
    module, signatures = _serving_module(served, top_k)

    export_dir = os.path.abspath(export_dir)
    parent, name = os.path.split(export_dir)
    os.makedirs(parent, exist_ok=True)
    # Not tempfile.mkdtemp: its mode 0700 would follow the rename and lock out a server
    # running as another user; os.mkdir honours the umask like any other directory.
    written = os.path.join(parent, f".tmp-{name}-{uuid.uuid4().hex[:12]}")
    os.mkdir(written)
    try:
        tf.saved_model.save(module, written, signatures=signatures)
        _move_into_place(written, export_dir)
    finally:
        shutil.rmtree(written, ignore_errors=True)
    return {
        "export_dir": export_dir,
        "signatures": sorted(signatures),
        "input_shape": [None, *map(int, network.input_shape[1:])],
        "num_classes": num_classes,
        "variables": len(module.variables),
        "parameters": int(network.count_params()),
        "release": release,
        **(
            {"served_classes": releases.top_k_count(num_classes, top_k_ratio)}
            if release == "stingy"
            else {}
        ),
    }
