"""Hydra plugin: zoo's Optuna sweeper (``hydra/sweeper=optuna``) and its samplers (``hydra/sweeper/sampler=tpe``,
``random``, ``nsgaii``, ``cmaes``, ``gp``, ``grid``). Hydra finds plugins only under the ``hydra_plugins``
package; the sweeper itself is :mod:`zoo.sweeper`."""

from hydra.core.config_store import ConfigStore

import zoo.sweeper as _zoo_sweeper


class OptunaSweeper(_zoo_sweeper.OptunaSweeper):
    __doc__ = _zoo_sweeper.OptunaSweeper.__doc__


_store = ConfigStore.instance()
_store.store(group="hydra/sweeper", name="optuna", node=_zoo_sweeper.OptunaSweeperConf, provider="zoo")
for _name, _conf in _zoo_sweeper.SAMPLERS.items():
    _store.store(group="hydra/sweeper/sampler", name=_name, node=_conf, provider="zoo")
