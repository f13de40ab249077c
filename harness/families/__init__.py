"""Model families shipped with the harness, one package each. A family registers itself
(``register_family``) when its package is imported; the harness finds the shipped ones,
like any installed family, through the ``avatarbench.families`` entry points."""
