"""The chapters' experiments, each named by its concept (a table pass, a training comparison):
they build networks (:mod:`lib.nets`) and measure them with :mod:`lib.theory`. Nothing here imports
the book's machinery, so an experiment runs the same from a chapter, a test or a script."""
