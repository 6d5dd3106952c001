"""Failure-path runs of the workers, started together: each mostly waits (on a timeout, or on the ranks
it stops), not on the CPU, so together they take about as long as the longest."""

import concurrent.futures
import multiprocessing


def failure_runs(runs):
    """Start the runs together (each mostly waits, on a timeout or on the ranks it stops, not on the CPU) and
    return {name: the RuntimeError it raised, or None}, with the processes still alive once all returned."""

    def error_of(run):
        try:
            run()
        except RuntimeError as err:
            return err
        return None

    with concurrent.futures.ThreadPoolExecutor(len(runs)) as pool:
        errors = dict(zip(runs, pool.map(error_of, runs.values()), strict=True))
    return errors, multiprocessing.active_children()
