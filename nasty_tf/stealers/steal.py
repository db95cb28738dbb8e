"""`steal`: train a student with a stealer on in-memory arrays, end to end.

The plain function the audit and the protocols call (they add run directories and caching
around it); it works on both backends and under `tf.distribute` when called in a strategy's
scope.
"""

from nasty_tf.errors import check_count
from nasty_tf.stealers.registry import Stealer, get_stealer
from nasty_tf.training.callbacks import StopOnNonFiniteLoss


def steal(
    stealer,
    student,
    served,
    x,
    y,
    epochs,
    batch_size=64,
    optimizer="adam",
    augmenter=None,
    validation_data=None,
    callbacks=(),
    verbose=0,
):
    """Trains `student` the way `stealer` clones a release, and returns it.

    Args:
        stealer: a `Stealer` (`get_stealer`) or a registered name (default parameters).
        student: the network to train (trained in place and returned).
        served: what the release serves, e.g. `nasty_tf.releases.stingy(teacher)`; the
            stealer sees nothing else of the teacher. Never called by `label_smoothing`.
        x: training images, uint8 or float pixels in [0, 255], `(N, H, W, C)`.
        y: integer labels, `(N,)`.
        epochs: epochs to train, >= 1 (train every stealer to the end of its schedule:
            issue 20).
        batch_size: batch size, >= 1.
        optimizer: a Keras optimizer or its name (default Adam 1e-3, the paper's CNN
            student optimizer).
        augmenter: optional Keras layer applied once per step before both student and release.
        validation_data: optional `(x, y)` evaluated each epoch.
        callbacks: extra Keras callbacks.
        verbose: Keras' `fit` verbosity.

    Returns:
        `student`, trained (the plain network: a skeptical student's heads are not in it).

    Raises:
        InputError: a bad argument. TrainingDiverged: the loss became NaN or infinite.

    Example:

    ```python
    student = steal("kd", models.get_model("cnn", 10), releases.stingy(teacher), x, y, epochs=10)
    ```
    """
    if not isinstance(stealer, Stealer):
        stealer = get_stealer(stealer)
    check_count("epochs", epochs)
    check_count("batch_size", batch_size)
    wrapper = stealer.build(student, served if stealer.needs_teacher else None, augmenter)
    wrapper.compile(optimizer=optimizer)
    wrapper.fit(
        x,
        y,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=validation_data,
        callbacks=[
            *callbacks,
            StopOnNonFiniteLoss(f"the {stealer.name} stealer: lower the learning rate"),
        ],
        verbose=verbose,
    )
    return wrapper.student
