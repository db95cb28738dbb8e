"""Registry of `tools.reproduce` protocols: one module per protocol.

A protocol module defines `NAME`, `DESCRIPTION`, `default_settings()` and
`run(settings, output_dir, on_finished)`. Add a module and list it here.
"""

from nasty_tf.errors import InputError
from nasty_tf.protocols import (
    cifar10_cpu,
    digits_demo,
    fast_cifar10,
    table1_cifar10,
    table2_cifar100,
    table3_tiny_imagenet,
    table5_cifar100,
)

PROTOCOLS = {
    module.NAME: module
    for module in (
        digits_demo,
        cifar10_cpu,
        fast_cifar10,
        table1_cifar10,
        table2_cifar100,
        table3_tiny_imagenet,
        table5_cifar100,
    )
}
DEFAULT_PROTOCOL = digits_demo.NAME


def get_protocol(name):
    """The protocol module registered as `name`."""
    if name not in PROTOCOLS:
        raise InputError(
            f"protocol: unknown protocol {name!r}. Available: {', '.join(sorted(PROTOCOLS))}"
        )
    return PROTOCOLS[name]
