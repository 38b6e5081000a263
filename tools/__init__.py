"""The project's command-line tools beside train.py, predict.py and evaluate.py, run
from the repository's top folder as `python -m tools.<name>`: each is a thin absl
script over the library, with its flags defined in `common_flags` or here."""
