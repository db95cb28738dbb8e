"""Searches omega (and tau_A) with keras-tuner: the most damaging nasty teacher within an
accuracy budget, chosen on a validation split carved from the training split
(`--validation_fraction`); the test split only reports. Prints and writes the trade-off table of
all trials.

    python -m tools.tune --epochs=15 --omega_min=0.02 --omega_max=0.3 --max_trials=8 \
        --accuracy_budget=1 --output_dir=runs/tune

Distributed (keras-tuner's own mode): the same command in every process, --output_dir on a
shared filesystem; the chief serves the oracle and writes the report, the workers run trials.

    KERASTUNER_TUNER_ID=chief KERASTUNER_ORACLE_IP=10.0.0.1 KERASTUNER_ORACLE_PORT=8000 \
        python -m tools.tune ...
    KERASTUNER_TUNER_ID=tuner0 KERASTUNER_ORACLE_IP=10.0.0.1 KERASTUNER_ORACLE_PORT=8000 \
        python -m tools.tune ...
"""

from absl import flags as absl_flags

from flags import data, distribute, model, train, tune
from tools import common

data.define_data_flags()
model.define_model_flags()
train.define_train_flags("runs/tune")
tune.define_tune_flags()
distribute.define_distribute_flags()
FLAGS = absl_flags.FLAGS


def main():
    from nasty_tf import tuning

    config = common.train_config(FLAGS)
    tune_config = tuning.TuneConfig(
        omega_min=FLAGS.omega_min,
        omega_max=FLAGS.omega_max,
        temperatures=common.parse_floats(FLAGS.temperatures, "temperatures"),
        accuracy_budget=FLAGS.accuracy_budget,
        max_trials=FLAGS.max_trials,
        oracle=FLAGS.oracle,
        adversary=FLAGS.adversary,
        student_arch=FLAGS.student_arch,
        student_epochs=FLAGS.student_epochs,
        proxy_students=FLAGS.proxy_students,
        alpha=FLAGS.alpha,
        kd_temperature=FLAGS.kd_temperature,
        validation_fraction=FLAGS.validation_fraction,
        nasty_init_from_adversary=FLAGS.nasty_init_from_adversary,
        omega_warmup_epochs=FLAGS.omega_warmup_epochs,
    )
    report = tuning.tune(config, tune_config, overwrite=FLAGS.overwrite)
    if "worker" in report:
        # A distributed search's worker: the chief reports the search.
        ran = ", ".join(report["trials"]) or "none"
        print(f"worker {report['worker']} done: ran trials {ran}")
        return
    print(tuning.format_table(report), end="")
    best = report["best"]
    if best is not None:
        # Chosen on validation; its test accuracies are the result.
        result = (
            "diverged"
            if best.get("diverged")
            else f"test: teacher {best['teacher_accuracy']:.2f}%, student {best['student_accuracy']:.2f}% "
            f"(validation {best['teacher_validation_accuracy']:.2f}%, "
            f"{best['student_validation_accuracy']:.2f}%)"
        )
        print(
            f"best: omega {best['omega']:.4g}, tau_A {best['temperature']:g} "
            f"({'feasible' if best['feasible'] else 'no trial met the budget'}; chosen on the "
            f"validation split), {result} -> {config.output_dir}/tune_report.md"
        )


def console_main():
    """Console script `nasty-tf-tune`: what `python -m tools.tune` runs."""
    common.run(main)


if __name__ == "__main__":
    console_main()
