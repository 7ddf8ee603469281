"""The scheduled run (`pkgreport run`): the output-folder lock, the run log and the run history."""
