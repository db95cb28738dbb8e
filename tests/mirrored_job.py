"""The job half of the mirrored-strategy scripts (tests/test_distribute*.py), for either backend."""

import os


def run_train_nasty_mirrored(out_dir):
    """`train_nasty` under --strategy=mirrored on 201 digits images (odd), and an uneven batch refused."""
    from nasty_tf import InputError, models
    from nasty_tf.training import NastyConfig, TrainConfig, load_data, train_nasty

    config = TrainConfig(
        dataset="digits",
        train_fraction=0.15,
        epochs=1,
        batch_size=64,
        verbose=0,
        strategy="mirrored",
        output_dir=os.path.join(out_dir, "nasty"),
    )
    dataset = load_data(config)
    adversary = os.path.join(out_dir, "adversary.keras")
    models.get_model("cnn", 10, (32, 32, 3), mean=dataset.mean, std=dataset.std).save(adversary)
    metrics = train_nasty(config, NastyConfig(adversary, omega=0.05), dataset)
    try:
        train_nasty(
            config.replace(batch_size=63, output_dir=out_dir + "/odd"),
            NastyConfig(adversary),
            dataset,
        )
        refusal = None
    except InputError as error:
        refusal = str(error)
    return {"metrics": metrics, "refusal": refusal, "train_images": len(dataset.x_train)}
