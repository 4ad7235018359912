"""The error of evaluation: below every other module of ``eval/``, so metrics depend on nothing above them."""


class EvalError(ValueError):
    """A question or prediction file that cannot be scored as it is (named, with the record and the problem)."""
