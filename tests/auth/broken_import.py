"""An auth module that does not import."""

raise RuntimeError("cannot reach the secrets vault")
