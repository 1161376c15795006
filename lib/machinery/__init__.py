"""The book's machinery: parameters and profiles (:mod:`.spec`, :mod:`.runtime`), the chapter
registry (:mod:`.chapters`), the runner and the seed sweep, the checks and claims ledger, errata, the
browser check, the benchmark and the mutation run. It imports the layers below it
(:mod:`lib.experiments`, :mod:`lib.nets`, :mod:`lib.theory`); nothing below imports it."""
