"""Pure computations over validated frames: no I/O, no clock, inputs never modified."""
