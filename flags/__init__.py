"""absl flag groups. Each module holds `define_*_flags()` functions only: importing defines nothing."""
